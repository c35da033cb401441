//! Questions the scheduler asks the plan about a cell: is it a cell at all, which resources
//! (GPUs) and endpoint URLs it needs, and how it is named in progress lines.

use petgraph::graph::NodeIndex;

use crate::manifest::ServerFlags;
use crate::plan::{NodeKind, Plan};

/// The resources a node needs: those of the endpoints its agents (or its warm-up) use.
pub(crate) fn resources(plan: &Plan, ni: NodeIndex) -> Vec<String> {
    let n = &plan.graph[ni];
    let spec = &plan.reports[n.report as usize].manifest.spec;
    let mut r: Vec<String> = match n.kind {
        NodeKind::Warmup => {
            let w = plan.warmup_key(n);
            spec.endpoints
                .iter()
                .filter(|e| e.url == w.url)
                .map(|e| e.resource.to_string())
                .collect()
        }
        NodeKind::Isolated => {
            let c = plan.cell_config(n);
            c.agents
                .get(n.agent as usize)
                .map(|a| spec.endpoints[a.endpoint].resource.to_string())
                .into_iter()
                .collect()
        }
        NodeKind::Single | NodeKind::Concurrent => {
            let c = plan.cell_config(n);
            c.agents
                .iter()
                .map(|a| spec.endpoints[a.endpoint].resource.to_string())
                .collect()
        }
        NodeKind::Analysis | NodeKind::Report => Vec::new(),
    };
    r.sort();
    r.dedup();
    r
}

/// True for the nodes the scheduler runs (not analysis or report nodes).
pub(crate) fn is_cell(plan: &Plan, ni: NodeIndex) -> bool {
    !matches!(plan.graph[ni].kind, NodeKind::Analysis | NodeKind::Report)
}

/// The endpoints (indexes into the report's `endpoints`) of a measured cell's agents, in
/// the order of its agents: the agent's own for an isolated cell, every agent's otherwise;
/// none for warm-ups and analysis/report nodes.
pub(crate) fn agent_endpoints(plan: &Plan, ni: NodeIndex) -> Vec<usize> {
    let n = &plan.graph[ni];
    match n.kind {
        NodeKind::Isolated => plan
            .cell_config(n)
            .agents
            .get(n.agent as usize)
            .map(|a| a.endpoint)
            .into_iter()
            .collect(),
        NodeKind::Single | NodeKind::Concurrent => plan
            .cell_config(n)
            .agents
            .iter()
            .map(|a| a.endpoint)
            .collect(),
        NodeKind::Warmup | NodeKind::Analysis | NodeKind::Report => Vec::new(),
    }
}

/// The endpoint URLs a cell talks to.
pub(crate) fn node_urls(plan: &Plan, ni: NodeIndex) -> Vec<String> {
    let n = &plan.graph[ni];
    let spec = &plan.reports[n.report as usize].manifest.spec;
    let mut urls: Vec<String> = match n.kind {
        NodeKind::Warmup => plan
            .warmup_of(n)
            .map(|w| w.url.clone())
            .into_iter()
            .collect(),
        _ => agent_endpoints(plan, ni)
            .into_iter()
            .map(|e| spec.endpoints[e].url.clone())
            .collect(),
    };
    for u in &mut urls {
        let t = u.trim_end_matches('/').len();
        u.truncate(t);
    }
    urls.sort();
    urls.dedup();
    urls
}

/// How a cell is named in progress lines.
pub(crate) fn label(plan: &Plan, ni: NodeIndex) -> String {
    let n = &plan.graph[ni];
    let r = &plan.reports[n.report as usize].report;
    if n.config.is_none() {
        let w = plan.warmup_key(n);
        let o = |x: Option<u32>| x.map_or("default".to_owned(), |v| v.to_string());
        return format!(
            "{} {r} {} gpu={} ctx={}",
            n.kind.name(),
            w.url,
            o(w.num_gpu),
            o(w.num_ctx)
        );
    }
    crate::plan::render::label(plan, n)
}

/// The `server` settings of the first of `cells` (in order) that talks to each managed
/// endpoint URL: what its server starts with, so that the first cell needs no restart. URLs
/// no cell of `cells` uses are absent (their servers start with `managed.defaults`).
pub(crate) fn first_settings(plan: &Plan, cells: &[NodeIndex]) -> Vec<(String, ServerFlags)> {
    let mut out: Vec<(String, ServerFlags)> = Vec::new();
    for &ni in cells {
        let Some(c) = plan.config_of(&plan.graph[ni]) else {
            continue;
        };
        for u in node_urls(plan, ni) {
            if !out.iter().any(|(x, _)| *x == u) {
                out.push((u, c.server.clone()));
            }
        }
    }
    out
}
