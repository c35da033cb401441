//! Stage 2: manifests → [`Plan`]: configurations, content-addressed cells and the DAG.
//!
//! [`build`] loads the given manifests (and, for `depends_on`, the manifests beside them that
//! declare the named reports), expands every matrix ([`expand`]), gives every node a
//! content-addressed id ([`key`]), links warm-ups, isolated baselines, concurrent cells,
//! analyses and reports in a petgraph DAG, and fixes the schedule order (repetitions
//! interleaved, optionally shuffled with a recorded seed). Every problem is reported before
//! anything runs, as a located diagnostic; a dependency cycle is printed as its full path.

pub mod expand;
pub mod key;
pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::manifest::locate::KeyPath;
use crate::manifest::validate::is_report_id;
use crate::manifest::{self, Diagnostic, Manifest, ManifestError, OrderMode, Task, WarmupMode};

pub use expand::{Configuration, ResolvedAgent};
pub use key::{CellRole, NodeId, WarmupKey};
// Re-exported for tests and tools that replay a recorded shuffle.

/// Errors of the plan stage.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A manifest, or the set of manifests, is invalid.
    #[error(transparent)]
    Invalid(#[from] ManifestError),
    /// `--explain` matched no node.
    #[error(
        "no node id starts with `{prefix}`\n  = help: run `chimera plan --format json` to list the ids"
    )]
    UnknownNode {
        /// The prefix given.
        prefix: String,
    },
    /// `--explain` matched several nodes.
    #[error(
        "`{prefix}` matches {count} nodes ({examples}, ...)\n  = help: give more characters of the id"
    )]
    AmbiguousNode {
        /// The prefix given.
        prefix: String,
        /// How many matched.
        count: usize,
        /// A few of them.
        examples: String,
    },
}

/// Kinds of DAG nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// An excluded warm-up request per endpoint × model × load-affecting options.
    Warmup,
    /// A single-agent cell.
    Single,
    /// One agent of a multi-agent configuration, alone.
    Isolated,
    /// All agents of a multi-agent configuration at once.
    Concurrent,
    /// Per-report analysis.
    Analysis,
    /// Per-report report.
    Report,
}

impl NodeKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Warmup => "warmup",
            NodeKind::Single => "single",
            NodeKind::Isolated => "isolated",
            NodeKind::Concurrent => "concurrent",
            NodeKind::Analysis => "analysis",
            NodeKind::Report => "report",
        }
    }

    /// Every kind, in schedule-rank order.
    pub const ALL: [NodeKind; 6] = [
        NodeKind::Warmup,
        NodeKind::Single,
        NodeKind::Isolated,
        NodeKind::Concurrent,
        NodeKind::Analysis,
        NodeKind::Report,
    ];
}

/// One node of the DAG.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanNode {
    /// Content address.
    pub id: NodeId,
    /// Kind.
    pub kind: NodeKind,
    /// Report index (the first report that planned it).
    pub report: u32,
    /// Configuration index (cells only).
    pub config: Option<u32>,
    /// Repetition index from 1 (0 for non-cells).
    pub repetition: u32,
    /// Agent index within the configuration (isolated cells).
    pub agent: u8,
    /// Warm-up index (warm-ups only).
    pub warmup: Option<u32>,
}

/// One report in the plan.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    /// Report id.
    pub report: String,
    /// The manifest.
    pub manifest: Manifest,
    /// Configuration indices of this report.
    pub configs: std::ops::Range<usize>,
    /// Configurations the manifest declares `missing` (not planned).
    pub missing: Vec<String>,
    /// True when the report is in the plan only because another depends on it.
    pub pulled_in: bool,
    /// `compare_with` targets that are not in this plan.
    pub external_comparisons: Vec<String>,
}

/// The plan: reports, configurations, the DAG and the schedule order.
#[derive(Debug)]
pub struct Plan {
    /// Reports, in dependency order.
    pub reports: Vec<ReportPlan>,
    /// All configurations.
    pub configs: Vec<Configuration>,
    /// Warm-up keys.
    pub warmups: Vec<WarmupKey>,
    /// The DAG; edges point from a dependency to its dependent.
    pub graph: DiGraph<PlanNode, ()>,
    /// Schedule order: every dependency precedes its dependents.
    pub order: Vec<NodeIndex>,
}

impl Plan {
    /// Node count per kind.
    pub fn count(&self, kind: NodeKind) -> usize {
        self.graph.node_weights().filter(|n| n.kind == kind).count()
    }

    /// Dependencies of a node.
    pub fn deps(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.neighbors_directed(n, Direction::Incoming)
    }

    /// The configuration of a node: `Some` for cells (single, isolated, concurrent), `None`
    /// for warm-ups, analyses and reports.
    pub fn config_of(&self, n: &PlanNode) -> Option<&Configuration> {
        n.config.and_then(|c| self.configs.get(c as usize))
    }

    /// The configuration of a cell node.
    ///
    /// # Panics
    ///
    /// On a warm-up, analysis or report node: only cells carry a configuration.
    pub fn cell_config(&self, n: &PlanNode) -> &Configuration {
        self.config_of(n)
            .unwrap_or_else(|| panic!("{} node {} has no configuration", n.kind.name(), n.id.hex()))
    }

    /// The warm-up key of a warm-up node; `None` for every other kind.
    pub fn warmup_of(&self, n: &PlanNode) -> Option<&WarmupKey> {
        n.warmup.and_then(|w| self.warmups.get(w as usize))
    }

    /// The warm-up key of a warm-up node.
    ///
    /// # Panics
    ///
    /// On any other kind of node.
    pub fn warmup_key(&self, n: &PlanNode) -> &WarmupKey {
        self.warmup_of(n)
            .unwrap_or_else(|| panic!("{} node {} is not a warm-up", n.kind.name(), n.id.hex()))
    }

    /// LLM requests one agent run of configuration `c` makes.
    pub fn requests_per_agent_run(&self, c: &Configuration) -> u64 {
        let m = &self.reports[c.report].manifest.spec;
        match &m.workloads[c.workload].task {
            Task::SingleInference { prompts } => prompts.len() as u64,
            Task::AgentWorkflow { .. } => 2,
            Task::Persona { .. } => 1,
        }
    }

    /// Estimated LLM requests of a node.
    pub fn requests(&self, n: &PlanNode) -> u64 {
        match n.kind {
            NodeKind::Warmup => u64::from(
                self.reports[n.report as usize]
                    .manifest
                    .spec
                    .warmup
                    .requests,
            ),
            NodeKind::Single | NodeKind::Concurrent => {
                let c = self.cell_config(n);
                self.requests_per_agent_run(c) * c.agents.len() as u64
            }
            NodeKind::Isolated => self.requests_per_agent_run(self.cell_config(n)),
            NodeKind::Analysis | NodeKind::Report => 0,
        }
    }

    /// Nodes whose hex id starts with `prefix`.
    pub fn find(&self, prefix: &str) -> Result<NodeIndex, PlanError> {
        let p = prefix.to_ascii_lowercase();
        let hits: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|&i| self.graph[i].id.hex().starts_with(&p))
            .collect();
        match hits.len() {
            0 => Err(PlanError::UnknownNode {
                prefix: prefix.to_owned(),
            }),
            1 => Ok(hits[0]),
            n => Err(PlanError::AmbiguousNode {
                prefix: prefix.to_owned(),
                count: n,
                examples: hits
                    .iter()
                    .take(3)
                    .map(|&i| self.graph[i].id.hex())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// A small, stable PRNG (SplitMix64), so that a recorded shuffle seed reproduces the same
/// order in every chimera version.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

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
        ids.iter()
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", ")
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

/// Builds the plan from manifests already loaded (their directories are searched for the
/// reports named in `depends_on` and `compare_with`).
pub fn build_loaded(manifests: Vec<Manifest>) -> Result<Plan, PlanError> {
    let mut diags = Vec::new();
    let mut loaded: Vec<(Manifest, bool)> = manifests.into_iter().map(|m| (m, false)).collect();
    // Duplicate report ids.
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for (m, _) in &loaded {
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
    if !diags.is_empty() {
        return Err(ManifestError { diagnostics: diags }.into());
    }

    // Resolve depends_on transitively and check compare_with targets exist.
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (m, _) in &loaded {
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
                        let known: Vec<String> = idx.keys().cloned().collect();
                        let near = crate::manifest::diagnostic::nearest(
                            r,
                            known.iter().map(String::as_str),
                        );
                        let mut d =
                            Diagnostic::new(&path, format!("unknown report `{r}` in `{key}`"))
                                .path(&source, &KeyPath::root().key(key).index(j), false)
                                .expected(format!(
                                    "a report declared by a manifest in {}: {}",
                                    dirs.iter()
                                        .map(|d| format!("`{}`", d.display()))
                                        .collect::<Vec<_>>()
                                        .join(", "),
                                    report_list(&known)
                                ))
                                .found(format!("`{r}`"));
                        d = match near {
                            Some(n) => d.help(format!("did you mean `{n}`?")),
                            None if !broken.is_empty() => d.help(format!(
                                "manifests beside it that are invalid (their reports are unknown): {}; run `chimera validate` on them",
                                broken
                                    .iter()
                                    .map(|b| format!("`{}`", b.display()))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                            None => d.help(format!(
                                "add a manifest with `report: {r}` or remove the entry"
                            )),
                        };
                        diags.push(d);
                    }
                }
            }
        }
        i += 1;
    }
    if !diags.is_empty() {
        return Err(ManifestError { diagnostics: diags }.into());
    }

    // Report-level DAG and cycle check.
    let n = loaded.len();
    let pos: HashMap<&str, usize> = loaded
        .iter()
        .enumerate()
        .map(|(i, (m, _))| (m.spec.report.as_str(), i))
        .collect();
    let mut rg: DiGraph<usize, &'static str> = DiGraph::new();
    let rnodes: Vec<NodeIndex> = (0..n).map(|i| rg.add_node(i)).collect();
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
    let report_order: Vec<usize> = match petgraph::algo::toposort(&rg, None) {
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
            order
        }
        Err(cycle) => {
            let start = rg[cycle.node_id()];
            let path = find_cycle(&rg, &rnodes, start);
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
            let d = Diagnostic::new(
                &m.path,
                format!("report dependency cycle: {}", names.join(" → ")),
            )
            .path(&m.source, &KeyPath::root().key(key).index(j), false)
            .expected("reports that depend on each other in one direction only")
            .help("remove one of the `depends_on` / `compare_with` entries on this cycle");
            return Err(ManifestError {
                diagnostics: vec![d],
            }
            .into());
        }
    };

    // Expand every report.
    let mut interner = HashMap::new();
    let mut configs: Vec<Configuration> = Vec::new();
    let mut reports: Vec<ReportPlan> = Vec::new();
    for &li in &report_order {
        let (m, pulled) = &loaded[li];
        let ri = reports.len();
        let start = configs.len();
        let (cs, missing) = expand::expand(m, ri, &mut interner, &mut diags);
        configs.extend(cs);
        check_references(m, &configs[start..], &missing, &mut diags);
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
    if !diags.is_empty() {
        return Err(ManifestError { diagnostics: diags }.into());
    }
    Ok(link(reports, configs))
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
            let near = crate::manifest::diagnostic::nearest(c, ids.iter().copied());
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

/// Builds the DAG and the schedule order from expanded reports.
fn link(reports: Vec<ReportPlan>, configs: Vec<Configuration>) -> Plan {
    let mut graph: DiGraph<PlanNode, ()> = DiGraph::new();
    let mut by_id: HashMap<NodeId, NodeIndex> = HashMap::new();
    let mut warmups: Vec<WarmupKey> = Vec::new();
    let mut order: Vec<NodeIndex> = Vec::new();
    let mut analysis_of: Vec<NodeIndex> = Vec::new();

    fn add(
        graph: &mut DiGraph<PlanNode, ()>,
        by_id: &mut HashMap<NodeId, NodeIndex>,
        order: &mut Vec<NodeIndex>,
        node: PlanNode,
    ) -> (NodeIndex, bool) {
        if let Some(&i) = by_id.get(&node.id) {
            return (i, false);
        }
        let id = node.id;
        let i = graph.add_node(node);
        by_id.insert(id, i);
        order.push(i);
        (i, true)
    }

    for (ri, rp) in reports.iter().enumerate() {
        let spec = &rp.manifest.spec;
        let cidx: Vec<usize> = rp.configs.clone().collect();
        // Warm-ups, in first-use order.
        let mut warm_of: HashMap<(usize, usize), NodeIndex> = HashMap::new();
        if spec.warmup.policy == WarmupMode::PerOptionSet {
            for &ci in &cidx {
                let c = &configs[ci];
                for (ai, a) in c.agents.iter().enumerate() {
                    let e = &spec.endpoints[a.endpoint];
                    let model = spec.models.iter().find(|x| *x.id == *c.model);
                    let k = WarmupKey {
                        kind: e.kind,
                        url: e.url.clone(),
                        model_tag: model.map(|x| x.tag.clone()).unwrap_or_default(),
                        model_digest: model.and_then(|x| x.digest.clone()),
                        num_gpu: a.options.num_gpu,
                        num_ctx: a.options.num_ctx,
                        requests: spec.warmup.requests,
                        prompt: spec.warmup.prompt.clone(),
                    };
                    let id = k.id();
                    let wi = match by_id.get(&id) {
                        Some(&i) => i,
                        None => {
                            warmups.push(k);
                            let (i, _) = add(
                                &mut graph,
                                &mut by_id,
                                &mut order,
                                PlanNode {
                                    id,
                                    kind: NodeKind::Warmup,
                                    report: ri as u32,
                                    config: None,
                                    repetition: 0,
                                    agent: 0,
                                    warmup: Some((warmups.len() - 1) as u32),
                                },
                            );
                            i
                        }
                    };
                    warm_of.insert((ci, ai), wi);
                }
            }
        }
        // Cells, repetitions interleaved (or blocked), optionally shuffled per round.
        let max_reps = cidx
            .iter()
            .map(|&c| configs[c].repetitions)
            .max()
            .unwrap_or(0);
        let mut sequence: Vec<(usize, u32)> = Vec::new();
        match spec.order.mode {
            OrderMode::Interleaved => {
                for rep in 1..=max_reps {
                    let mut round: Vec<usize> = cidx
                        .iter()
                        .copied()
                        .filter(|&c| configs[c].repetitions >= rep)
                        .collect();
                    if let Some(seed) = spec.order.shuffle_seed {
                        SplitMix64(seed ^ u64::from(rep).wrapping_mul(0xA076_1D64_78BD_642F))
                            .shuffle(&mut round);
                    }
                    sequence.extend(round.into_iter().map(|c| (c, rep)));
                }
            }
            OrderMode::Blocked => {
                let mut cs = cidx.clone();
                if let Some(seed) = spec.order.shuffle_seed {
                    SplitMix64(seed).shuffle(&mut cs);
                }
                for c in cs {
                    for rep in 1..=configs[c].repetitions {
                        sequence.push((c, rep));
                    }
                }
            }
        }
        let mut report_cells: Vec<NodeIndex> = Vec::new();
        for (ci, rep) in sequence {
            let c = &configs[ci];
            let node = |kind, role, agent| PlanNode {
                id: key::cell_id(&c.digest, role, rep),
                kind,
                report: ri as u32,
                config: Some(ci as u32),
                repetition: rep,
                agent,
                warmup: None,
            };
            if c.is_multi_agent() {
                let mut isolated = Vec::new();
                for ai in 0..c.agents.len() {
                    let a8 = u8::try_from(ai).unwrap_or(u8::MAX);
                    let (i, new) = add(
                        &mut graph,
                        &mut by_id,
                        &mut order,
                        node(NodeKind::Isolated, CellRole::Isolated(a8), a8),
                    );
                    if new && let Some(&w) = warm_of.get(&(ci, ai)) {
                        graph.add_edge(w, i, ());
                    }
                    isolated.push(i);
                    report_cells.push(i);
                }
                let (i, new) = add(
                    &mut graph,
                    &mut by_id,
                    &mut order,
                    node(NodeKind::Concurrent, CellRole::Concurrent, 0),
                );
                if new {
                    for w in warmups_of(&warm_of, ci, c.agents.len()) {
                        graph.add_edge(w, i, ());
                    }
                    for iso in isolated {
                        graph.add_edge(iso, i, ());
                    }
                }
                report_cells.push(i);
            } else {
                let (i, new) = add(
                    &mut graph,
                    &mut by_id,
                    &mut order,
                    node(NodeKind::Single, CellRole::Single, 0),
                );
                if new {
                    for w in warmups_of(&warm_of, ci, c.agents.len()) {
                        graph.add_edge(w, i, ());
                    }
                }
                report_cells.push(i);
            }
        }
        // Analysis: every cell of the report, and the analyses of the reports it depends on.
        let (an, _) = add(
            &mut graph,
            &mut by_id,
            &mut order,
            PlanNode {
                id: key::report_node_id("analysis", &rp.report),
                kind: NodeKind::Analysis,
                report: ri as u32,
                config: None,
                repetition: 0,
                agent: 0,
                warmup: None,
            },
        );
        report_cells.sort_unstable();
        report_cells.dedup();
        for c in report_cells {
            graph.add_edge(c, an, ());
        }
        for dep in &spec.depends_on {
            if let Some(j) = reports.iter().position(|r| &r.report == dep) {
                graph.update_edge(analysis_of[j], an, ());
            }
        }
        analysis_of.push(an);
        let (rn, _) = add(
            &mut graph,
            &mut by_id,
            &mut order,
            PlanNode {
                id: key::report_node_id("report", &rp.report),
                kind: NodeKind::Report,
                report: ri as u32,
                config: None,
                repetition: 0,
                agent: 0,
                warmup: None,
            },
        );
        graph.update_edge(an, rn, ());
        for other in &spec.compare_with {
            if let Some(j) = reports.iter().position(|r| &r.report == other) {
                graph.update_edge(analysis_of[j], rn, ());
            }
        }
    }
    Plan {
        reports,
        configs,
        warmups,
        graph,
        order,
    }
}

/// The distinct warm-ups the agents of configuration `ci` need.
fn warmups_of(
    warm_of: &HashMap<(usize, usize), NodeIndex>,
    ci: usize,
    agents: usize,
) -> Vec<NodeIndex> {
    let mut v: Vec<NodeIndex> = (0..agents)
        .filter_map(|ai| warm_of.get(&(ci, ai)).copied())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Convenience for tests and benches: true when `order` is a topological order of `graph`.
pub fn is_topological(plan: &Plan) -> bool {
    let mut rank = vec![usize::MAX; plan.graph.node_count()];
    for (r, &n) in plan.order.iter().enumerate() {
        rank[n.index()] = r;
    }
    plan.order.len() == plan.graph.node_count()
        && plan.graph.edge_indices().all(|e| {
            let (a, b) = plan
                .graph
                .edge_endpoints(e)
                .unwrap_or((NodeIndex::new(0), NodeIndex::new(0)));
            rank[a.index()] < rank[b.index()]
        })
}

/// The ids of a report's configurations, shared with `Arc`.
pub fn config_ids(plan: &Plan, report: usize) -> Vec<Arc<str>> {
    plan.configs[plan.reports[report].configs.clone()]
        .iter()
        .map(|c| c.id.clone())
        .collect()
}
