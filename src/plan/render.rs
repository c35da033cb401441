//! Human and machine views of a plan: the summary, JSON, Graphviz and `--explain`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::key::{WorkloadKey, hex32};
use super::{NodeKind, Plan, PlanNode};

/// Node counts of a plan, per report: by kind, estimated requests (measured, warm-up) and
/// per scenario (configurations, single, isolated, concurrent). Each node counts once, for
/// the report that planned it.
#[derive(Default)]
struct Counts {
    per_kind: BTreeMap<(u32, NodeKind), usize>,
    requests: BTreeMap<u32, (u64, u64)>,
    per_scenario: BTreeMap<(u32, String), (usize, usize, usize, usize)>,
}

impl Counts {
    fn of(plan: &Plan) -> Self {
        let mut k = Counts::default();
        for n in plan.graph.node_weights() {
            *k.per_kind.entry((n.report, n.kind)).or_default() += 1;
            let r = k.requests.entry(n.report).or_default();
            if n.kind == NodeKind::Warmup {
                r.1 += plan.requests(n);
            } else {
                r.0 += plan.requests(n);
            }
            if let Some(c) = plan.config_of(n) {
                let e = k
                    .per_scenario
                    .entry((n.report, c.scenario.to_string()))
                    .or_default();
                match n.kind {
                    NodeKind::Single => e.1 += 1,
                    NodeKind::Isolated => e.2 += 1,
                    NodeKind::Concurrent => e.3 += 1,
                    NodeKind::Warmup | NodeKind::Analysis | NodeKind::Report => {}
                }
            }
        }
        for c in &plan.configs {
            k.per_scenario
                .entry((c.report as u32, c.scenario.to_string()))
                .or_default()
                .0 += 1;
        }
        k
    }
}

/// The readable summary printed by `chimera plan`.
pub fn summary(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let total_cells: usize = [NodeKind::Single, NodeKind::Isolated, NodeKind::Concurrent]
        .iter()
        .map(|&k| plan.count(k))
        .sum();
    let _ = writeln!(
        s,
        "plan: {} report(s), {} configuration(s), {} cell(s), {} node(s)",
        plan.reports.len(),
        plan.configs.len(),
        total_cells,
        plan.graph.node_count()
    );
    let counts = Counts::of(plan);
    for ri in 0..plan.reports.len() {
        report_summary(&mut s, plan, ri, &counts);
    }
    s
}

/// The summary of report `ri`.
fn report_summary(s: &mut String, plan: &Plan, ri: usize, counts: &Counts) {
    use std::fmt::Write as _;
    let rp = &plan.reports[ri];
    let ri32 = ri as u32;
    let spec = &rp.manifest.spec;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{}  {}{}",
        rp.report,
        spec.title,
        if rp.pulled_in {
            "  (needed by a report that depends on it)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "  manifest        {}", rp.manifest.path.display());
    let _ = write!(s, "  configurations  {}", rp.configs.len());
    if !rp.missing.is_empty() {
        let _ = write!(
            s,
            "  (+{} declared missing, not planned: {})",
            rp.missing.len(),
            rp.missing.join(", ")
        );
    }
    let _ = writeln!(s);
    let configs = &plan.configs[rp.configs.clone()];
    let _ = writeln!(s, "  repetitions     {}", repetitions(configs));
    let _ = writeln!(s, "  order           {}", order_name(&spec.order));
    let _ = writeln!(s, "  nodes");
    for k in NodeKind::ALL {
        let n = counts.per_kind.get(&(ri32, k)).copied().unwrap_or(0);
        if n > 0 {
            let _ = writeln!(s, "    {:<12} {n:>8}", k.name());
        }
    }
    let scen: Vec<_> = counts
        .per_scenario
        .iter()
        .filter(|((r, _), _)| *r == ri32)
        .collect();
    if !scen.is_empty() {
        let _ = writeln!(
            s,
            "  per scenario    configurations  single  isolated  concurrent"
        );
        for ((_, name), (nc, ns, ni, nco)) in scen {
            let _ = writeln!(s, "    {name:<24} {nc:>6} {ns:>7} {ni:>9} {nco:>11}");
        }
    }
    let shared: Vec<String> = configs
        .iter()
        .filter_map(|c| c.same_as.as_ref().map(|o| format!("{} = {}", c.id, o)))
        .collect();
    if !shared.is_empty() {
        let _ = writeln!(
            s,
            "  identical settings, measured separately: {}",
            shared.join("; ")
        );
    }
    let (req, warm) = counts.requests.get(&ri32).copied().unwrap_or((0, 0));
    let _ = writeln!(
        s,
        "  requests        ~{req} measured + {warm} warm-up (estimated)"
    );
    let rel = relations(rp);
    if !rel.is_empty() {
        let _ = writeln!(s, "  reports         {}", rel.join("; "));
    }
    let _ = writeln!(s, "  references      {}", spec.references.len());
}

/// The distinct repetition counts of `configs` (`-` for none).
fn repetitions(configs: &[super::Configuration]) -> String {
    let mut v: Vec<u32> = configs.iter().map(|c| c.repetitions).collect();
    v.sort_unstable();
    v.dedup();
    if v.is_empty() {
        return "-".to_owned();
    }
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// `interleaved`, `blocked, shuffled (seed 7)`...
fn order_name(order: &crate::manifest::RunOrder) -> String {
    let mode = match order.mode {
        crate::manifest::OrderMode::Interleaved => "interleaved",
        crate::manifest::OrderMode::Blocked => "blocked",
    };
    match order.shuffle_seed {
        None => mode.to_owned(),
        Some(seed) => format!("{mode}, shuffled (seed {seed})"),
    }
}

/// The report's `depends_on` and `compare_with`, in words.
fn relations(rp: &super::ReportPlan) -> Vec<String> {
    let spec = &rp.manifest.spec;
    let mut rel = Vec::new();
    if !spec.depends_on.is_empty() {
        rel.push(format!("depends on {}", spec.depends_on.join(", ")));
    }
    if !spec.compare_with.is_empty() {
        let parts: Vec<String> = spec
            .compare_with
            .iter()
            .map(|r| {
                if rp.external_comparisons.contains(r) {
                    format!("{r} (not in this plan: published values)")
                } else {
                    r.clone()
                }
            })
            .collect();
        rel.push(format!("compares with {}", parts.join(", ")));
    }
    rel
}

#[derive(Serialize)]
struct JsonAgent<'a> {
    id: &'a str,
    role: crate::manifest::Role,
    endpoint: &'a str,
    url: &'a str,
    resource: &'a str,
    options: &'a crate::manifest::Options,
}

#[derive(Serialize)]
struct JsonConfig<'a> {
    index: usize,
    report: &'a str,
    id: &'a str,
    base_id: Option<&'a str>,
    scenario: &'a str,
    scenario_kind: crate::manifest::ScenarioKind,
    execution: crate::manifest::Execution,
    model: &'a str,
    model_tag: &'a str,
    workload: &'a str,
    runtime: Option<crate::manifest::Runtime>,
    language: Option<crate::manifest::Language>,
    repetitions: u32,
    key: String,
    same_as: Option<&'a str>,
    agents: Vec<JsonAgent<'a>>,
}

#[derive(Serialize)]
struct JsonNode<'a> {
    id: String,
    kind: &'static str,
    report: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repetition: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warmup: Option<&'a super::WarmupKey>,
    deps: Vec<String>,
}

fn json_node<'a>(plan: &'a Plan, n: &'a PlanNode, deps: Vec<String>) -> JsonNode<'a> {
    let c = plan.config_of(n);
    JsonNode {
        id: n.id.hex(),
        kind: n.kind.name(),
        report: &plan.reports[n.report as usize].report,
        config: c.map(|c| &*c.id),
        config_index: n.config,
        repetition: c.map(|_| n.repetition),
        agent: (n.kind == NodeKind::Isolated)
            .then(|| {
                c.and_then(|c| c.agents.get(n.agent as usize))
                    .map(|a| &*a.id)
            })
            .flatten(),
        warmup: plan.warmup_of(n),
        deps,
    }
}

/// Writes the plan as one JSON document: reports, configurations, and every node in
/// schedule order with its dependencies. Streams; never builds the whole text in memory.
pub fn json(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"{\"format\":\"chimera-plan-v1\",\"reports\":[")?;
    for (i, rp) in plan.reports.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let v = serde_json::json!({
            "report": rp.report,
            "title": rp.manifest.spec.title,
            "manifest": rp.manifest.path.display().to_string(),
            "configurations": rp.configs.len(),
            "missing": rp.missing,
            "pulled_in": rp.pulled_in,
            "depends_on": rp.manifest.spec.depends_on,
            "compare_with": rp.manifest.spec.compare_with,
            "order": {"mode": rp.manifest.spec.order.mode, "shuffle_seed": rp.manifest.spec.order.shuffle_seed},
        });
        serde_json::to_writer(&mut *out, &v)?;
    }
    out.write_all(b"],\"configurations\":[")?;
    for (i, c) in plan.configs.iter().enumerate() {
        if i > 0 {
            out.write_all(b",\n")?;
        }
        let spec = &plan.reports[c.report].manifest.spec;
        let jc = JsonConfig {
            index: i,
            report: &plan.reports[c.report].report,
            id: &c.id,
            base_id: c.base_id.as_deref(),
            scenario: &c.scenario,
            scenario_kind: c.scenario_kind,
            execution: c.execution,
            model: &c.model,
            model_tag: spec
                .models
                .iter()
                .find(|m| *m.id == *c.model)
                .map_or("", |m| m.tag.as_str()),
            workload: &spec.workloads[c.workload].id,
            runtime: c.runtime,
            language: c.language,
            repetitions: c.repetitions,
            key: hex32(&c.digest),
            same_as: c.same_as.as_deref(),
            agents: c
                .agents
                .iter()
                .map(|a| {
                    let e = &spec.endpoints[a.endpoint];
                    JsonAgent {
                        id: &a.id,
                        role: a.role,
                        endpoint: &e.id,
                        url: &e.url,
                        resource: e.resource.as_str(),
                        options: &a.options,
                    }
                })
                .collect(),
        };
        serde_json::to_writer(&mut *out, &jc)?;
    }
    out.write_all(b"],\"nodes\":[")?;
    for (i, &ni) in plan.order.iter().enumerate() {
        if i > 0 {
            out.write_all(b",\n")?;
        }
        let deps: Vec<String> = plan.deps(ni).map(|d| plan.graph[d].id.hex()).collect();
        serde_json::to_writer(&mut *out, &json_node(plan, &plan.graph[ni], deps))?;
    }
    out.write_all(b"]}\n")?;
    Ok(())
}

/// How a node is named in plan listings (and, but for warm-ups, in run progress lines).
pub(crate) fn label(plan: &Plan, n: &PlanNode) -> String {
    let r = &plan.reports[n.report as usize].report;
    match n.kind {
        NodeKind::Warmup => {
            let w = plan.warmup_key(n);
            let o = |x: Option<u32>| x.map_or("default".to_owned(), |v| v.to_string());
            format!(
                "warmup {} {} gpu={} ctx={}",
                w.url,
                w.model_tag,
                o(w.num_gpu),
                o(w.num_ctx)
            )
        }
        NodeKind::Analysis | NodeKind::Report => format!("{} {r}", n.kind.name()),
        _ => {
            let c = plan.cell_config(n);
            let agent = if n.kind == NodeKind::Isolated {
                c.agents
                    .get(n.agent as usize)
                    .map(|a| format!(" agent {}", a.id))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            format!("{} {r} {} rep {}{agent}", n.kind.name(), c.id, n.repetition)
        }
    }
}

/// Writes the DAG as Graphviz.
pub fn dot(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "digraph chimera_plan {{")?;
    writeln!(out, "  rankdir=LR;")?;
    writeln!(out, "  node [shape=box, fontsize=10];")?;
    for &ni in &plan.order {
        let n = &plan.graph[ni];
        let shape = match n.kind {
            NodeKind::Warmup => "ellipse",
            NodeKind::Analysis | NodeKind::Report => "doubleoctagon",
            _ => "box",
        };
        let l = label(plan, n).replace('"', "\\\"");
        writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{}\", shape={shape}];",
            n.id.hex(),
            l,
            &n.id.hex()[..12]
        )?;
    }
    for e in plan.graph.edge_indices() {
        if let Some((a, b)) = plan.graph.edge_endpoints(e) {
            writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                plan.graph[a].id.hex(),
                plan.graph[b].id.hex()
            )?;
        }
    }
    writeln!(out, "}}")
}

/// `--explain`: the node's full key, what is provenance only, and its dependencies.
pub fn explain(plan: &Plan, ni: petgraph::graph::NodeIndex) -> String {
    use std::fmt::Write as _;
    let n = &plan.graph[ni];
    let rp = &plan.reports[n.report as usize];
    let mut s = String::new();
    let _ = writeln!(s, "node {}", n.id.hex());
    let _ = writeln!(s, "  {}", label(plan, n));
    let _ = writeln!(s);
    let pretty = |v: &dyn erased::Ser| v.to_pretty();
    match n.kind {
        NodeKind::Warmup => {
            let w = plan.warmup_key(n);
            let _ = writeln!(
                s,
                "key (hashed into the id, with the salt `{}` and the tag `warmup`):",
                super::key::CELL_FORMAT
            );
            let _ = writeln!(s, "{}", indent(&pretty(w)));
        }
        NodeKind::Analysis | NodeKind::Report => {
            let _ = writeln!(
                s,
                "key: `{}` of report `{}` (one per report)",
                n.kind.name(),
                rp.report
            );
        }
        NodeKind::Single | NodeKind::Isolated | NodeKind::Concurrent => {
            explain_cell(&mut s, plan, n);
        }
    }
    let deps: Vec<String> = plan
        .deps(ni)
        .map(|d| {
            format!(
                "{}  {}",
                plan.graph[d].id.hex(),
                label(plan, &plan.graph[d])
            )
        })
        .collect();
    let _ = writeln!(s);
    let _ = writeln!(s, "depends on ({}):", deps.len());
    for d in deps.iter().take(20) {
        let _ = writeln!(s, "  {d}");
    }
    if deps.len() > 20 {
        let _ = writeln!(s, "  ... and {} more", deps.len() - 20);
    }
    s
}

/// The key of a cell node: its role, repetition and configuration key.
fn explain_cell(s: &mut String, plan: &Plan, n: &PlanNode) {
    use std::fmt::Write as _;
    let spec = &plan.reports[n.report as usize].manifest.spec;
    let pretty = |v: &dyn erased::Ser| v.to_pretty();
    let c = plan.cell_config(n);
    let role = match n.kind {
        NodeKind::Isolated => format!(
            "isolated, agent index {} (`{}`)",
            n.agent,
            c.agents.get(n.agent as usize).map_or("", |a| &*a.id)
        ),
        k => k.name().to_owned(),
    };
    let _ = writeln!(s, "key (hashed into the id):");
    let _ = writeln!(s, "  cell            {role}, repetition {}", n.repetition);
    let _ = writeln!(s, "  configuration   digest {}", hex32(&c.digest));
    let w = &spec.workloads[c.workload];
    let ck = super::expand::config_key(spec, c, hex32(&WorkloadKey::of(w).digest()));
    let _ = writeln!(s, "{}", indent(&pretty(&ck)));
    let _ = writeln!(s, "  workload content (its digest is `workload` above):");
    let _ = writeln!(s, "{}", indent(&indent(&pretty(&WorkloadKey::of(w)))));
    let _ = writeln!(s);
    explain_provenance(s, plan, n);
}

/// `f(v)` for a present value, nothing for an absent one.
fn suffix<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_default()
}

/// What a cell node records for provenance only (not part of its id).
fn explain_provenance(s: &mut String, plan: &Plan, n: &PlanNode) {
    use std::fmt::Write as _;
    let rp = &plan.reports[n.report as usize];
    let spec = &rp.manifest.spec;
    let c = plan.cell_config(n);
    let w = &spec.workloads[c.workload];
    let _ = writeln!(s, "provenance only (not in the id):");
    let _ = writeln!(s, "  report          {}", rp.report);
    let _ = writeln!(
        s,
        "  configuration   {}{}",
        c.id,
        suffix(c.base_id.as_ref(), |b| format!(" (enumerated as `{b}`)"))
    );
    let block = &spec.matrix[c.block];
    let _ = writeln!(
        s,
        "  block           matrix[{}]{}",
        c.block,
        suffix(block.name.as_ref(), |n| format!(" `{n}`"))
    );
    let _ = writeln!(s, "  scenario id     {}", c.scenario);
    let _ = writeln!(s, "  model id        {}", c.model);
    let _ = writeln!(
        s,
        "  workload id     {}{}",
        w.id,
        suffix(w.harness.as_ref(), |h| format!(" (harness {h})"))
    );
    for a in &c.agents {
        let e = &spec.endpoints[a.endpoint];
        let _ = writeln!(
            s,
            "  agent {:<9} endpoint `{}` on resource `{}`{}",
            &*a.id,
            e.id,
            e.resource,
            if e.managed.is_some() {
                " (managed)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        s,
        "  request timeout {} s; retries {}; telemetry {:?} every {} ms",
        spec.request_timeout_s, spec.retry.retries, spec.telemetry.source, spec.telemetry.period_ms
    );
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

mod erased {
    pub trait Ser {
        fn to_pretty(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_pretty(&self) -> String {
            serde_json::to_string_pretty(self).unwrap_or_default()
        }
    }
}
