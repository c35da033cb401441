//! Server-side metrics wiring of a cell: which endpoints of a measured cell ask for their
//! Prometheus `/metrics` to be sampled (`server_metrics` in the manifest), and where.

use std::time::Duration;

use petgraph::graph::NodeIndex;

use crate::plan::Plan;
use crate::telemetry::ScrapeTarget;

/// The endpoints of measured cell `ni` that have `server_metrics`, each once, in the order
/// of the cell's agents. Warm-ups and analysis/report nodes sample nothing.
pub(crate) fn scrape_targets(plan: &Plan, ni: NodeIndex) -> Vec<ScrapeTarget> {
    let n = &plan.graph[ni];
    let spec = &plan.reports[n.report as usize].manifest.spec;
    let endpoints = super::cells::agent_endpoints(plan, ni);
    let mut out: Vec<ScrapeTarget> = Vec::new();
    for i in endpoints {
        let e = &spec.endpoints[i];
        let Some(sm) = &e.server_metrics else {
            continue;
        };
        if out.iter().any(|t| t.endpoint == e.id) {
            continue;
        }
        out.push(ScrapeTarget {
            endpoint: e.id.clone(),
            url: sm.scrape_url(e.connect_url()),
            interval: Duration::from_millis(sm.interval_ms.max(1)),
        });
    }
    out
}
