//! Matrix expansion: blocks of a manifest → fully resolved configurations.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::manifest::locate::KeyPath;
use crate::manifest::template::{self, Piece};
use crate::manifest::{
    Axis, AxisPoint, Block, Diagnostic, Execution, ExplicitConfig, Language, Manifest,
    ManifestSpec, Options, Role, Runtime, ScenarioKind, ServerFlags,
};

pub use super::key::LoadLevel;
use super::key::{AgentKey, ConfigKey, EndpointKey, WorkloadKey};

/// One agent of a configuration, with its effective options.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedAgent {
    /// Agent id (`A`, `B`, `baseline`...).
    pub id: Arc<str>,
    /// Role.
    pub role: Role,
    /// Index of the endpoint in the manifest.
    pub endpoint: usize,
    /// Effective options; empty means no `options` field is sent.
    pub options: Options,
}

/// One fully resolved point of a report's matrix.
#[derive(Debug, Clone)]
pub struct Configuration {
    /// Index of the report in the plan.
    pub report: usize,
    /// Configuration id (published, or generated from the block's `id_template`).
    pub id: Arc<str>,
    /// The enumerated configuration's own id, when crossed with axes.
    pub base_id: Option<Arc<str>>,
    /// Index of the block in `matrix`.
    pub block: usize,
    /// Index of the workload in the manifest.
    pub workload: usize,
    /// Scenario id.
    pub scenario: Arc<str>,
    /// Scenario kind.
    pub scenario_kind: ScenarioKind,
    /// Execution mode.
    pub execution: Execution,
    /// Model id.
    pub model: Arc<str>,
    /// Runtime.
    pub runtime: Option<Runtime>,
    /// Language.
    pub language: Option<Language>,
    /// Agents, in scenario order.
    pub agents: Vec<ResolvedAgent>,
    /// Repetitions.
    pub repetitions: u32,
    /// Digest of the configuration key.
    pub digest: [u8; 32],
    /// An earlier configuration of the same report with identical settings; this one is
    /// measured separately (its key carries a replicate number).
    pub same_as: Option<Arc<str>>,
    /// Replicate number in the key (0 unless `same_as` is set).
    pub replicate: u32,
    /// The level and lengths of a `load` workload (all `None` for other workloads).
    pub load: LoadLevel,
    /// The managed-server settings of the `server` axis (empty without it).
    pub server: ServerFlags,
}

impl Configuration {
    /// True when the agents run concurrently and isolated baselines are planned.
    pub fn is_multi_agent(&self) -> bool {
        self.execution == Execution::Concurrent && self.agents.len() > 1
    }
}

/// The points of a block's axes: full factorial, minus `exclude`, plus `include`.
/// A block without axes has one empty point.
pub fn points(m: &Manifest, bi: usize, diags: &mut Vec<Diagnostic>) -> Vec<AxisPoint> {
    let b = &m.spec.matrix[bi];
    let path = KeyPath::root().key("matrix").index(bi);
    let (names, lens): (Vec<Axis>, Vec<usize>) = Axis::ALL
        .into_iter()
        .filter_map(|a| b.axes.count(a).map(|n| (a, n)))
        .unzip();
    let mut out = Vec::new();
    let mut excluded_hits = vec![0usize; b.exclude.len()];
    if lens.contains(&0) {
        return out;
    }
    let mut idx = vec![0usize; names.len()];
    loop {
        let mut p = AxisPoint::default();
        for (k, axis) in names.iter().enumerate() {
            p.take(&b.axes, *axis, idx[k]);
        }
        let mut keep = true;
        for (j, ex) in b.exclude.iter().enumerate() {
            if ex.matches(&p) {
                excluded_hits[j] += 1;
                keep = false;
            }
        }
        if keep {
            out.push(p);
        }
        // Odometer: the last axis varies fastest.
        let mut done = true;
        let mut k = names.len();
        while k > 0 {
            k -= 1;
            idx[k] += 1;
            if idx[k] < lens[k] {
                done = false;
                break;
            }
            idx[k] = 0;
        }
        if done {
            break;
        }
    }
    for (j, hits) in excluded_hits.iter().enumerate() {
        if *hits == 0 {
            diags.push(
                Diagnostic::new(&m.path, format!("`exclude[{j}]` matches no configuration"))
                    .path(&m.source, &path.key("exclude").index(j), false)
                    .expected("a combination of values listed in `axes`")
                    .help("fix the values or remove the entry; it excludes nothing"),
            );
        }
    }
    for (j, inc) in b.include.iter().enumerate() {
        if out.iter().any(|p| p == inc) {
            diags.push(
                Diagnostic::new(
                    &m.path,
                    format!("`include[{j}]` is already in the factorial"),
                )
                .path(&m.source, &path.key("include").index(j), false)
                .help("remove it; `include` adds points the axes do not produce"),
            );
        } else {
            out.push(inc.clone());
        }
    }
    out
}

fn render_template(
    t: &str,
    explicit: Option<&ExplicitConfig>,
    p: &AxisPoint,
    resolved: &[(Axis, String)],
) -> String {
    let mut out = String::with_capacity(t.len() + 16);
    for piece in template::pieces(t) {
        match piece {
            Piece::Text(x) | Piece::Unclosed(x) => out.push_str(x),
            Piece::Field { name, p_style } => {
                let value = if name == "id" {
                    explicit.map(|c| c.id.clone())
                } else {
                    Axis::from_name(name).and_then(|a| {
                        p.label(a).or_else(|| {
                            resolved
                                .iter()
                                .find(|(k, _)| *k == a)
                                .map(|(_, v)| v.clone())
                        })
                    })
                }
                .unwrap_or_default();
                if p_style {
                    out.push_str(&value.replace('.', "p"));
                } else {
                    out.push_str(&value);
                }
            }
        }
    }
    out
}

fn default_label(p: &AxisPoint) -> String {
    Axis::ALL
        .iter()
        .filter_map(|a| p.label(*a).map(|v| format!("{a}={v}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Hands out one shared `Arc<str>` per distinct string (ids repeat across a million cells).
struct Interner<'a>(&'a mut HashMap<String, Arc<str>>);

impl Interner<'_> {
    fn get(&mut self, x: &str) -> Arc<str> {
        if let Some(a) = self.0.get(x) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(x);
        self.0.insert(x.to_owned(), a.clone());
        a
    }
}

/// The content key of configuration `c` of `spec` (its digest is the configuration's
/// address); `workload` is the hex digest of its workload's key.
pub fn config_key<'a>(
    spec: &'a ManifestSpec,
    c: &'a Configuration,
    workload: String,
) -> ConfigKey<'a> {
    let model = spec.models.iter().find(|x| *x.id == *c.model);
    ConfigKey {
        format: super::key::CELL_FORMAT,
        workload,
        model_tag: model.map_or("", |x| x.tag.as_str()),
        model_digest: model.and_then(|x| x.digest.as_deref()),
        scenario_kind: c.scenario_kind,
        execution: c.execution,
        runtime: c.runtime,
        language: c.language,
        agents: c
            .agents
            .iter()
            .map(|a| AgentKey {
                role: a.role,
                endpoint: EndpointKey {
                    kind: spec.endpoints[a.endpoint].kind,
                    url: &spec.endpoints[a.endpoint].url,
                },
                options: &a.options,
            })
            .collect(),
        warmup: spec.warmup.policy,
        warmup_requests: spec.warmup.requests,
        between_runs: &spec.between_runs,
        replicate: c.replicate,
        load: (!c.load.is_empty()).then_some(c.load),
        server: (!c.server.is_empty()).then_some(&c.server),
    }
}

/// The id of the configuration at point `p` of a block: its `id_template` filled in, the
/// enumerated id (with `@axis=value,...` when crossed with axes), or the axis labels.
fn config_id(b: &Block, ec: Option<&ExplicitConfig>, p: &AxisPoint, r: &Resolved) -> String {
    let resolved_names = [
        (Axis::Model, r.model.to_string()),
        (Axis::Scenario, r.scenario.to_string()),
        (
            Axis::Runtime,
            r.runtime
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        (
            Axis::Language,
            r.language
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
    ];
    match (&b.id_template, ec) {
        (Some(t), _) => render_template(t, ec, p, &resolved_names),
        (None, Some(c)) if *p == AxisPoint::default() => c.id.clone(),
        (None, Some(c)) => format!("{}@{}", c.id, default_label(p)),
        (None, None) => default_label(p),
    }
}

/// The expansion of one report's matrix, in progress.
struct Expander<'m, 'i> {
    m: &'m Manifest,
    report: usize,
    intern: Interner<'i>,
    workload_hex: Vec<String>,
    out: Vec<Configuration>,
    by_id: HashMap<Arc<str>, usize>,
    by_digest: HashMap<[u8; 32], (Arc<str>, u32)>,
    reported: HashSet<String>,
}

/// Expands every block of `m` into configurations for report index `report`.
/// Returns the configurations and the ids of configurations declared `missing`.
pub fn expand(
    m: &Manifest,
    report: usize,
    interner: &mut HashMap<String, Arc<str>>,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<Configuration>, Vec<String>) {
    let s = &m.spec;
    let mut x = Expander {
        m,
        report,
        intern: Interner(interner),
        workload_hex: s
            .workloads
            .iter()
            .map(|w| super::key::hex32(&WorkloadKey::of(w).digest()))
            .collect(),
        out: Vec::new(),
        by_id: HashMap::new(),
        by_digest: HashMap::new(),
        reported: HashSet::new(),
    };
    let mut missing = Vec::new();
    for (bi, b) in s.matrix.iter().enumerate() {
        let Some(wi) = s.workloads.iter().position(|w| w.id == b.workload) else {
            continue;
        };
        let pts = points(m, bi, diags);
        let explicit: Vec<Option<&ExplicitConfig>> = if b.configurations.is_empty() {
            vec![None]
        } else {
            b.configurations.iter().map(Some).collect()
        };
        for (ci, ec) in explicit.iter().enumerate() {
            if let Some(c) = ec
                && c.missing
            {
                missing.push(c.id.clone());
                continue;
            }
            for p in &pts {
                x.point(
                    Site {
                        bi,
                        ci,
                        wi,
                        ec: *ec,
                    },
                    p,
                    diags,
                );
            }
        }
    }
    (x.out, missing)
}

/// Where a point comes from: block `bi`, its enumerated configuration `ci` (`ec`, or none),
/// and the block's workload `wi`.
#[derive(Clone, Copy)]
struct Site<'m> {
    bi: usize,
    ci: usize,
    wi: usize,
    ec: Option<&'m ExplicitConfig>,
}

impl<'m> Expander<'m, '_> {
    /// Resolves point `p` of `site` into a configuration, unless its id repeats.
    fn point(&mut self, site: Site<'m>, p: &AxisPoint, diags: &mut Vec<Diagnostic>) {
        let m = self.m;
        let s = &m.spec;
        let b = &s.matrix[site.bi];
        let Some(r) = resolve(m, b, site.ec, p, &mut self.intern) else {
            return;
        };
        let id = self.intern.get(&config_id(b, site.ec, p, &r));
        let bpath = KeyPath::root().key("matrix").index(site.bi);
        let at = match site.ec {
            Some(_) => bpath.key("configurations").index(site.ci),
            None => bpath.clone(),
        };
        // One message per block or enumerated configuration is enough.
        if let Some(problem) = scenario_rule(r.kind, &r.agents)
            && self.reported.insert(at.to_string())
        {
            diags.push(
                Diagnostic::new(
                    &m.path,
                    format!("configuration `{id}` breaks its scenario kind"),
                )
                .path(&m.source, &at, false)
                .expected(problem.0)
                .found(problem.1)
                .help(problem.2),
            );
        }
        if let Some(&prev) = self.by_id.get(&id) {
            let at = match (&b.id_template, site.ec) {
                (None, Some(_)) => bpath.key("configurations").index(site.ci).key("id"),
                _ => bpath.key("id_template"),
            };
            diags.push(
                Diagnostic::new(
                    &m.path,
                    format!("configuration id `{id}` is produced twice"),
                )
                .path(&m.source, &at, false)
                .expected("configuration ids unique within the report")
                .found(format!(
                    "`{id}` again (first from matrix[{}])",
                    self.out[prev].block
                ))
                .help(
                    "make `id_template` use every axis of the block, or rename the configuration",
                ),
            );
            return;
        }
        let mut c = Configuration {
            report: self.report,
            id,
            base_id: site.ec.map(|c| self.intern.get(&c.id)),
            block: site.bi,
            workload: site.wi,
            scenario: r.scenario,
            scenario_kind: r.kind,
            execution: r.execution,
            model: r.model,
            runtime: r.runtime,
            language: r.language,
            agents: r.agents,
            repetitions: b.repetitions.unwrap_or(s.repetitions),
            digest: [0; 32],
            same_as: None,
            replicate: 0,
            load: LoadLevel::of(&s.workloads[site.wi].task, p),
            server: p.server.clone().unwrap_or_default(),
        };
        self.address(&mut c);
        self.by_id.insert(c.id.clone(), self.out.len());
        self.out.push(c);
    }

    /// Sets the digest of `c`; a configuration whose settings equal an earlier one's is
    /// `same_as` it and measured separately under the next replicate number.
    fn address(&mut self, c: &mut Configuration) {
        let spec = &self.m.spec;
        let key = config_key(spec, c, self.workload_hex[c.workload].clone());
        let base = key.digest();
        match self.by_digest.get_mut(&base) {
            Some((first, n)) => {
                *n += 1;
                let mut k = key;
                k.replicate = *n;
                let digest = k.digest();
                c.same_as = Some(first.clone());
                c.replicate = *n;
                c.digest = digest;
            }
            None => {
                self.by_digest.insert(base, (c.id.clone(), 0));
                c.digest = base;
            }
        }
    }
}

/// The option rule of a scenario kind, if `agents` break it: (expected, found, help).
fn scenario_rule(kind: ScenarioKind, agents: &[ResolvedAgent]) -> Option<(String, String, String)> {
    match kind {
        ScenarioKind::BaselineVsChimera => {
            let first = agents.first()?;
            (!first.options.is_empty()).then(|| {
                (
                    format!("the first agent (`{}`, the baseline) sends no options: server defaults", first.id),
                    format!("options {}", serde_json::to_string(&first.options).unwrap_or_default()),
                    format!(
                        "remove `{}` from `apply_to` and from the configuration's `options`, or use kind `chimera_hetero`",
                        first.id
                    ),
                )
            })
        }
        ScenarioKind::ChimeraHomo => {
            let first = agents.first()?;
            agents.iter().skip(1).find(|a| a.options != first.options).map(|a| {
                (
                    "every agent with the same options".to_owned(),
                    format!(
                        "`{}` {} but `{}` {}",
                        first.id,
                        serde_json::to_string(&first.options).unwrap_or_default(),
                        a.id,
                        serde_json::to_string(&a.options).unwrap_or_default()
                    ),
                    "give all agents the same options (e.g. `apply_to: [A, B]`), or use kind `chimera_hetero`".to_owned(),
                )
            })
        }
        ScenarioKind::Single | ScenarioKind::ChimeraHetero => None,
    }
}

/// A point's scenario, model, runtime, language and agents, with the block and
/// configuration defaults applied.
struct Resolved {
    scenario: Arc<str>,
    model: Arc<str>,
    runtime: Option<Runtime>,
    language: Option<Language>,
    agents: Vec<ResolvedAgent>,
    kind: ScenarioKind,
    execution: Execution,
}

fn resolve(
    m: &Manifest,
    b: &Block,
    c: Option<&ExplicitConfig>,
    p: &AxisPoint,
    intern: &mut Interner<'_>,
) -> Option<Resolved> {
    let s = &m.spec;
    let scenario_id = p
        .scenario
        .as_ref()
        .or(c.and_then(|c| c.scenario.as_ref()))
        .or(b.scenario.as_ref())?;
    let model_id = p
        .model
        .as_ref()
        .or(c.and_then(|c| c.model.as_ref()))
        .or(b.model.as_ref())?;
    let runtime = p.runtime.or(c.and_then(|c| c.runtime)).or(b.runtime);
    let language = p.language.or(c.and_then(|c| c.language)).or(b.language);
    let scenario = s.scenarios.iter().find(|x| &x.id == scenario_id)?;
    let point_opts = Options {
        num_gpu: p.num_gpu,
        num_ctx: p.num_ctx,
        temperature: p.temperature,
        top_p: p.top_p,
        top_k: p.top_k,
        repeat_penalty: p.repeat_penalty,
        num_predict: None,
        seed: None,
    };
    let mut agents = Vec::with_capacity(scenario.agents.len());
    for a in &scenario.agents {
        let endpoint = s.endpoints.iter().position(|e| e.id == a.endpoint)?;
        let mut o = a.base_options.clone();
        if b.apply_to.contains(&a.id) {
            o = o.merged(&b.options).merged(&point_opts);
        }
        if let Some(co) = c.and_then(|c| c.options.get(&a.id)) {
            o = o.merged(co);
        }
        agents.push(ResolvedAgent {
            id: intern.get(&a.id),
            role: a.role,
            endpoint,
            options: o,
        });
    }
    Some(Resolved {
        scenario: intern.get(scenario_id),
        model: intern.get(model_id),
        runtime,
        language,
        agents,
        kind: scenario.kind,
        execution: scenario.effective_execution(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(gpu: Option<u32>, temp: Option<f64>) -> AxisPoint {
        AxisPoint {
            num_gpu: gpu,
            temperature: temp,
            ..AxisPoint::default()
        }
    }

    #[test]
    fn templates_fill_axes_ids_and_resolved_names() {
        let p = point(Some(80), Some(0.6));
        let resolved = [
            (Axis::Model, "gemma3".to_owned()),
            (Axis::Runtime, "smol-1kb".to_owned()),
        ];
        assert_eq!(
            render_template("gpu{num_gpu}_temp{temperature:p}", None, &p, &resolved),
            "gpu80_temp0p6"
        );
        assert_eq!(
            render_template("{runtime}/{model}", None, &p, &resolved),
            "smol-1kb/gemma3"
        );
        assert_eq!(
            render_template("t{temperature}", None, &point(None, Some(1.0)), &resolved),
            "t1"
        );
        assert_eq!(
            render_template("open{brace", None, &p, &resolved),
            "open{brace"
        );
    }

    #[test]
    fn partial_points_match_by_the_keys_they_set() {
        let full = point(Some(60), Some(0.8));
        assert!(point(Some(60), None).matches(&full));
        assert!(!point(Some(80), None).matches(&full));
        assert!(AxisPoint::default().matches(&full));
        assert_eq!(default_label(&full), "num_gpu=60,temperature=0.8");
    }

    fn agent(id: &str, options: Options) -> ResolvedAgent {
        ResolvedAgent {
            id: Arc::from(id),
            role: Role::Collector,
            endpoint: 0,
            options,
        }
    }

    #[test]
    fn scenario_kinds_constrain_options() {
        let o = Options {
            num_gpu: Some(80),
            ..Options::default()
        };
        let bvc_ok = [agent("A", Options::default()), agent("B", o.clone())];
        let bvc_bad = [agent("A", o.clone()), agent("B", o.clone())];
        assert!(scenario_rule(ScenarioKind::BaselineVsChimera, &bvc_ok).is_none());
        assert!(scenario_rule(ScenarioKind::BaselineVsChimera, &bvc_bad).is_some());
        assert!(scenario_rule(ScenarioKind::ChimeraHomo, &bvc_bad).is_none());
        assert!(scenario_rule(ScenarioKind::ChimeraHomo, &bvc_ok).is_some());
        assert!(scenario_rule(ScenarioKind::ChimeraHetero, &bvc_ok).is_none());
        assert!(scenario_rule(ScenarioKind::Single, &bvc_bad).is_none());
    }
}
