//! Building a plan: load the manifests, pull in the reports they depend on, order the
//! reports, expand every matrix and check what the expansion alone can tell.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::manifest::diagnostic::{backticked, nearest};
use crate::manifest::locate::KeyPath;
use crate::manifest::validate::is_report_id;
use crate::manifest::{self, Diagnostic, Manifest, ManifestError};

use super::expand::{self, Configuration};
use super::link::link;
use super::{Plan, PlanError, ReportPlan};

/// A loaded manifest and whether it is in the plan only because another depends on it.
type Loaded = Vec<(Manifest, bool)>;

/// The report graph: one node per loaded manifest, edges from a report to those that
/// depend on or compare with it.
type ReportGraph = DiGraph<usize, &'static str>;

/// Manifests beside the given ones, indexed by the report they declare, and the files there
/// that could not be read as manifests.
fn sibling_index(dirs: &[PathBuf]) -> (BTreeMap<String, PathBuf>, Vec<PathBuf>) {
    let mut idx = BTreeMap::new();
    let mut broken = Vec::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        for f in files {
            match manifest::load(&f) {
                Ok(m) => {
                    idx.entry(m.spec.report.clone()).or_insert(f);
                }
                Err(_) => broken.push(f),
            }
        }
    }
    (idx, broken)
}

fn report_list(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        backticked(ids.iter())
    }
}

/// Loads manifests, resolves report dependencies and builds the plan.
pub fn build(paths: &[PathBuf]) -> Result<Plan, PlanError> {
    let mut diags = Vec::new();
    let mut loaded = Vec::new();
    for p in paths {
        match manifest::load(p) {
            Ok(m) => loaded.push(m),
            Err(e) => diags.extend(e.diagnostics),
        }
    }
    if !diags.is_empty() {
        return Err(ManifestError { diagnostics: diags }.into());
    }
    build_loaded(loaded)
}

/// A cycle through `start`, as report indices, first repeated at the end.
fn find_cycle(rg: &DiGraph<usize, &'static str>, rnodes: &[NodeIndex], start: usize) -> Vec<usize> {
    // DFS from start looking for a path back to start.
    let mut stack = vec![(start, vec![start])];
    let mut visited = vec![false; rnodes.len()];
    while let Some((node, path)) = stack.pop() {
        for s in rg.neighbors_directed(rnodes[node], Direction::Outgoing) {
            let s = rg[s];
            if s == start {
                let mut p = path.clone();
                p.push(start);
                return p;
            }
            if !visited[s] {
                visited[s] = true;
                let mut p = path.clone();
                p.push(s);
                stack.push((s, p));
            }
        }
    }
    vec![start, start]
}

fn check_references(
    m: &Manifest,
    configs: &[Configuration],
    missing: &[String],
    diags: &mut Vec<Diagnostic>,
) {
    if m.spec.matrix.is_empty() {
        return;
    }
    for (i, r) in m.spec.references.iter().enumerate() {
        let Some(c) = &r.filter.config else { continue };
        let hit = configs
            .iter()
            .any(|x| &*x.id == c || x.base_id.as_deref() == Some(c.as_str()));
        if hit {
            continue;
        }
        let path = KeyPath::root()
            .key("references")
            .index(i)
            .key("where")
            .key("config");
        let d = if missing.contains(c) {
            Diagnostic::new(
                &m.path,
                format!(
                    "reference `{}` groups by configuration `{c}`, which is marked missing",
                    r.id
                ),
            )
            .path(&m.source, &path, false)
            .help("a missing configuration has no data; remove the reference or the `missing` flag")
        } else {
            let ids: Vec<&str> = configs.iter().map(|x| &*x.id).collect();
            let near = nearest(c, ids.iter().copied());
            let d = Diagnostic::new(&m.path, format!("unknown configuration `{c}`"))
                .path(&m.source, &path, false)
                .expected("a configuration id of this report")
                .found(format!("`{c}`"));
            match near {
                Some(n) => d.help(format!("did you mean `{n}`?")),
                None => d.help("run `chimera plan --format json` to list the configuration ids"),
            }
        };
        diags.push(d);
    }
}

/// Builds the plan from manifests already loaded (their directories are searched for the
/// reports named in `depends_on` and `compare_with`).
pub fn build_loaded(manifests: Vec<Manifest>) -> Result<Plan, PlanError> {
    let mut loaded: Loaded = manifests.into_iter().map(|m| (m, false)).collect();
    fail_on(duplicate_reports(&loaded))?;
    fail_on(pull_in_dependencies(&mut loaded))?;
    let order = report_order(&loaded).map_err(ManifestError::from)?;
    let mut diags = Vec::new();
    let (reports, configs) = expand_reports(&loaded, &order, &mut diags);
    fail_on(diags)?;
    Ok(link(reports, configs))
}

/// `Err` with the diagnostics, when there are any.
fn fail_on(diagnostics: Vec<Diagnostic>) -> Result<(), PlanError> {
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(ManifestError { diagnostics }.into())
    }
}

/// Two manifests that declare the same report.
fn duplicate_reports(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for (m, _) in loaded {
        if let Some(first) = seen.insert(m.spec.report.clone(), m.path.clone()) {
            diags.push(
                Diagnostic::new(
                    &m.path,
                    format!("report `{}` is declared twice", m.spec.report),
                )
                .path(&m.source, &KeyPath::root().key("report"), false)
                .found(format!("also declared by `{}`", first.display()))
                .help("give each manifest its own report id, or pass only one of them"),
            );
        }
    }
    diags
}

/// The directories of the loaded manifests (`.` for a bare file name), each once.
fn manifest_dirs(loaded: &Loaded) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (m, _) in loaded {
        let d = m
            .path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let d = if d.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            d
        };
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// Loads the reports named in `depends_on` (transitively) from the manifests beside the
/// given ones, and checks that `compare_with` targets exist (a missing one is a warning).
fn pull_in_dependencies(loaded: &mut Loaded) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let dirs = manifest_dirs(loaded);
    let mut siblings: Option<(BTreeMap<String, PathBuf>, Vec<PathBuf>)> = None;
    let mut i = 0;
    while i < loaded.len() {
        let (deps, cmps, path, source) = {
            let m = &loaded[i].0;
            (
                m.spec.depends_on.clone(),
                m.spec.compare_with.clone(),
                m.path.clone(),
                m.source.clone(),
            )
        };
        for (key, list) in [("depends_on", &deps), ("compare_with", &cmps)] {
            for (j, r) in list.iter().enumerate() {
                if loaded.iter().any(|(m, _)| &m.spec.report == r) || !is_report_id(r) {
                    continue;
                }
                let (idx, broken) = siblings.get_or_insert_with(|| sibling_index(&dirs));
                match idx.get(r) {
                    Some(p) if key == "depends_on" => match manifest::load(p) {
                        Ok(m) => loaded.push((m, true)),
                        Err(e) => diags.extend(e.diagnostics),
                    },
                    Some(_) => {}
                    None if key == "compare_with" => {
                        tracing::warn!(
                            "{}: `compare_with` names `{r}`, but no manifest beside it declares that report; the comparison will use published values only",
                            path.display()
                        );
                    }
                    None => {
                        let at = Diagnostic::new(&path, format!("unknown report `{r}` in `{key}`"))
                            .path(&source, &KeyPath::root().key(key).index(j), false);
                        diags.push(unknown_report(at, r, &dirs, idx, broken));
                    }
                }
            }
        }
        i += 1;
    }
    diags
}

/// Completes the diagnostic `d` about report `r`, which no manifest in `dirs` declares.
fn unknown_report(
    d: Diagnostic,
    r: &str,
    dirs: &[PathBuf],
    idx: &BTreeMap<String, PathBuf>,
    broken: &[PathBuf],
) -> Diagnostic {
    let known: Vec<String> = idx.keys().cloned().collect();
    let near = nearest(r, known.iter().map(String::as_str));
    let d = d
        .expected(format!(
            "a report declared by a manifest in {}: {}",
            backticked(dirs.iter().map(|d| d.display())),
            report_list(&known)
        ))
        .found(format!("`{r}`"));
    match near {
        Some(n) => d.help(format!("did you mean `{n}`?")),
        None if !broken.is_empty() => d.help(format!(
            "manifests beside it that are invalid (their reports are unknown): {}; run `chimera validate` on them",
            backticked(broken.iter().map(|b| b.display()))
        )),
        None => d.help(format!(
            "add a manifest with `report: {r}` or remove the entry"
        )),
    }
}

/// The index of every loaded report by its id.
fn report_positions(loaded: &Loaded) -> HashMap<&str, usize> {
    loaded
        .iter()
        .enumerate()
        .map(|(i, (m, _))| (m.spec.report.as_str(), i))
        .collect()
}

/// The report graph of the loaded manifests and its node of every report.
fn report_graph(loaded: &Loaded) -> (ReportGraph, Vec<NodeIndex>) {
    let pos = report_positions(loaded);
    let mut rg: ReportGraph = DiGraph::new();
    let rnodes: Vec<NodeIndex> = (0..loaded.len()).map(|i| rg.add_node(i)).collect();
    for (i, (m, _)) in loaded.iter().enumerate() {
        for (key, list) in [
            ("depends_on", &m.spec.depends_on),
            ("compare_with", &m.spec.compare_with),
        ] {
            for r in list {
                if let Some(&j) = pos.get(r.as_str()) {
                    rg.add_edge(rnodes[j], rnodes[i], key);
                }
            }
        }
    }
    (rg, rnodes)
}

/// The order in which reports are expanded: every report after those it depends on or
/// compares with, otherwise in the given order; a cycle is an error naming its path.
fn report_order(loaded: &Loaded) -> Result<Vec<usize>, Diagnostic> {
    let n = loaded.len();
    let (rg, rnodes) = report_graph(loaded);
    match petgraph::algo::toposort(&rg, None) {
        Ok(o) => {
            // Stable: among ready reports keep the given order.
            let mut indeg: Vec<usize> = (0..n)
                .map(|i| {
                    rg.neighbors_directed(rnodes[i], Direction::Incoming)
                        .count()
                })
                .collect();
            let mut order = Vec::with_capacity(n);
            let mut done = vec![false; n];
            while order.len() < n {
                let Some(next) = (0..n).find(|&i| !done[i] && indeg[i] == 0) else {
                    break;
                };
                done[next] = true;
                order.push(next);
                for s in rg.neighbors_directed(rnodes[next], Direction::Outgoing) {
                    indeg[rg[s]] -= 1;
                }
            }
            debug_assert_eq!(order.len(), o.len());
            Ok(order)
        }
        Err(cycle) => {
            let start = rg[cycle.node_id()];
            Err(cycle_diagnostic(loaded, &find_cycle(&rg, &rnodes, start)))
        }
    }
}

/// The diagnostic of a report dependency cycle, at the first report's entry that names the
/// next one.
fn cycle_diagnostic(loaded: &Loaded, path: &[usize]) -> Diagnostic {
    let names: Vec<&str> = path
        .iter()
        .map(|&i| loaded[i].0.spec.report.as_str())
        .collect();
    let (m, _) = &loaded[path[0]];
    let next = &loaded[path[1 % path.len()]].0.spec.report;
    let key = if m.spec.depends_on.contains(next) {
        "depends_on"
    } else {
        "compare_with"
    };
    let j = if key == "depends_on" {
        &m.spec.depends_on
    } else {
        &m.spec.compare_with
    }
    .iter()
    .position(|x| x == next)
    .unwrap_or(0);
    Diagnostic::new(
        &m.path,
        format!("report dependency cycle: {}", names.join(" → ")),
    )
    .path(&m.source, &KeyPath::root().key(key).index(j), false)
    .expected("reports that depend on each other in one direction only")
    .help("remove one of the `depends_on` / `compare_with` entries on this cycle")
}

/// Expands every report in `order` into its configurations.
fn expand_reports(
    loaded: &Loaded,
    order: &[usize],
    diags: &mut Vec<Diagnostic>,
) -> (Vec<ReportPlan>, Vec<Configuration>) {
    let pos = report_positions(loaded);
    let mut interner = HashMap::new();
    let mut configs: Vec<Configuration> = Vec::new();
    let mut reports: Vec<ReportPlan> = Vec::new();
    for &li in order {
        let (m, pulled) = &loaded[li];
        let ri = reports.len();
        let start = configs.len();
        let (cs, missing) = expand::expand(m, ri, &mut interner, diags);
        configs.extend(cs);
        check_references(m, &configs[start..], &missing, diags);
        let external: Vec<String> = m
            .spec
            .compare_with
            .iter()
            .filter(|r| !pos.contains_key(r.as_str()))
            .cloned()
            .collect();
        reports.push(ReportPlan {
            report: m.spec.report.clone(),
            manifest: m.clone(),
            configs: start..configs.len(),
            missing,
            pulled_in: *pulled,
            external_comparisons: external,
        });
    }
    (reports, configs)
}
