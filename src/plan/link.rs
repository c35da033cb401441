//! Linking expanded reports into the DAG: warm-ups, cells in schedule order, and each
//! report's analysis and report nodes.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::manifest::{ManifestSpec, OrderMode, WarmupMode};

use super::expand::Configuration;
use super::key::{self, CellRole, NodeId, WarmupKey};
use super::{NodeKind, Plan, PlanNode, ReportPlan, SplitMix64};

/// The DAG under construction: every node once (by content address), in insertion order.
#[derive(Default)]
struct Dag {
    graph: DiGraph<PlanNode, ()>,
    by_id: HashMap<NodeId, NodeIndex>,
    warmups: Vec<WarmupKey>,
    order: Vec<NodeIndex>,
}

impl Dag {
    /// Adds `node` unless a node with its id exists; returns its index and whether it is new.
    fn add(&mut self, node: PlanNode) -> (NodeIndex, bool) {
        if let Some(&i) = self.by_id.get(&node.id) {
            return (i, false);
        }
        let id = node.id;
        let i = self.graph.add_node(node);
        self.by_id.insert(id, i);
        self.order.push(i);
        (i, true)
    }

    /// Adds `node` and, when it is new, an edge from each of `deps`.
    fn add_after(&mut self, node: PlanNode, deps: &[NodeIndex]) -> NodeIndex {
        let (i, new) = self.add(node);
        if new {
            for &d in deps {
                self.graph.add_edge(d, i, ());
            }
        }
        i
    }
}

/// A node of report `ri` that is not a cell.
fn report_node(id: NodeId, kind: NodeKind, ri: usize, warmup: Option<u32>) -> PlanNode {
    PlanNode {
        id,
        kind,
        report: ri as u32,
        config: None,
        repetition: 0,
        agent: 0,
        warmup,
    }
}

/// Builds the DAG and the schedule order from expanded reports.
pub(super) fn link(reports: Vec<ReportPlan>, configs: Vec<Configuration>) -> Plan {
    let mut dag = Dag::default();
    let mut analysis_of: Vec<NodeIndex> = Vec::new();
    for (ri, rp) in reports.iter().enumerate() {
        let spec = &rp.manifest.spec;
        let cidx: Vec<usize> = rp.configs.clone().collect();
        let warm_of = if spec.warmup.policy == WarmupMode::PerOptionSet {
            add_warmups(&mut dag, ri, spec, &configs, &cidx)
        } else {
            HashMap::new()
        };
        let sequence = schedule(spec, &configs, &cidx);
        let cells = add_cells(&mut dag, ri, &configs, &sequence, &warm_of);
        let an = add_report_nodes(&mut dag, ri, &reports, &analysis_of, cells);
        analysis_of.push(an);
    }
    Plan {
        reports,
        configs,
        warmups: dag.warmups,
        graph: dag.graph,
        order: dag.order,
    }
}

/// One warm-up node per distinct warm-up key of the report's agents, in first-use order;
/// returns the warm-up of every (configuration, agent).
fn add_warmups(
    dag: &mut Dag,
    ri: usize,
    spec: &ManifestSpec,
    configs: &[Configuration],
    cidx: &[usize],
) -> HashMap<(usize, usize), NodeIndex> {
    let mut warm_of = HashMap::new();
    for &ci in cidx {
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
            let wi = match dag.by_id.get(&id) {
                Some(&i) => i,
                None => {
                    dag.warmups.push(k);
                    let w = Some((dag.warmups.len() - 1) as u32);
                    dag.add(report_node(id, NodeKind::Warmup, ri, w)).0
                }
            };
            warm_of.insert((ci, ai), wi);
        }
    }
    warm_of
}

/// The (configuration, repetition) pairs of a report in run order: repetitions interleaved
/// (or blocked), optionally shuffled per round with the recorded seed.
///
/// Configurations are first grouped by their `server` settings (groups in the order of
/// their first configuration, configurations in declared order within a group), and the
/// order mode applies within each group: a managed server is restarted when its settings
/// change, so every group runs to its end before the next. This trades some drift
/// protection (interleaving spreads a slow drift of the machine over every configuration,
/// and now only over those of one group) for restarts: interleaving across groups would
/// restart the servers before nearly every cell. Without a `server` axis there is one group
/// and the order is the plain interleaved (or blocked) one.
fn schedule(spec: &ManifestSpec, configs: &[Configuration], cidx: &[usize]) -> Vec<(usize, u32)> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &c in cidx {
        match groups
            .iter_mut()
            .find(|g| configs[g[0]].server == configs[c].server)
        {
            Some(g) => g.push(c),
            None => groups.push(vec![c]),
        }
    }
    groups
        .iter()
        .flat_map(|g| schedule_group(spec, configs, g))
        .collect()
}

/// The run order of one group of configurations (see [`schedule`]).
fn schedule_group(
    spec: &ManifestSpec,
    configs: &[Configuration],
    cidx: &[usize],
) -> Vec<(usize, u32)> {
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
            let mut cs = cidx.to_vec();
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
    sequence
}

/// The cells of `sequence`: a single cell, or one isolated cell per agent followed by the
/// concurrent cell; each after its warm-ups. Returns every cell of the report.
fn add_cells(
    dag: &mut Dag,
    ri: usize,
    configs: &[Configuration],
    sequence: &[(usize, u32)],
    warm_of: &HashMap<(usize, usize), NodeIndex>,
) -> Vec<NodeIndex> {
    let mut report_cells: Vec<NodeIndex> = Vec::new();
    for &(ci, rep) in sequence {
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
        let warm = warmups_of(warm_of, ci, c.agents.len());
        if !c.is_multi_agent() {
            report_cells.push(dag.add_after(node(NodeKind::Single, CellRole::Single, 0), &warm));
            continue;
        }
        let mut deps = Vec::new();
        for ai in 0..c.agents.len() {
            let a8 = u8::try_from(ai).unwrap_or(u8::MAX);
            let own: Vec<NodeIndex> = warm_of.get(&(ci, ai)).copied().into_iter().collect();
            let i = dag.add_after(node(NodeKind::Isolated, CellRole::Isolated(a8), a8), &own);
            deps.push(i);
            report_cells.push(i);
        }
        let mut after = warm;
        after.extend(deps);
        let i = dag.add_after(node(NodeKind::Concurrent, CellRole::Concurrent, 0), &after);
        report_cells.push(i);
    }
    report_cells
}

/// The report's analysis node (after every cell of the report and the analyses of the
/// reports it depends on) and its report node (after its analysis and the analyses it
/// compares with). Returns the analysis node.
fn add_report_nodes(
    dag: &mut Dag,
    ri: usize,
    reports: &[ReportPlan],
    analysis_of: &[NodeIndex],
    mut cells: Vec<NodeIndex>,
) -> NodeIndex {
    let rp = &reports[ri];
    let spec = &rp.manifest.spec;
    let analysis = key::report_node_id(NodeKind::Analysis.name(), &rp.report);
    let (an, _) = dag.add(report_node(analysis, NodeKind::Analysis, ri, None));
    cells.sort_unstable();
    cells.dedup();
    for c in cells {
        dag.graph.add_edge(c, an, ());
    }
    let earlier = |id: &String| reports.iter().position(|r| &r.report == id);
    for dep in &spec.depends_on {
        if let Some(j) = earlier(dep) {
            dag.graph.update_edge(analysis_of[j], an, ());
        }
    }
    let report = key::report_node_id(NodeKind::Report.name(), &rp.report);
    let (rn, _) = dag.add(report_node(report, NodeKind::Report, ri, None));
    dag.graph.update_edge(an, rn, ());
    for other in &spec.compare_with {
        if let Some(j) = earlier(other) {
            dag.graph.update_edge(analysis_of[j], rn, ());
        }
    }
    an
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
