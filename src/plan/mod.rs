//! Stage 2: manifests → [`Plan`]: configurations, content-addressed cells and the DAG.
//!
//! [`build`] loads the given manifests (and, for `depends_on`, the manifests beside them that
//! declare the named reports), expands every matrix ([`expand`]), gives every node a
//! content-addressed id ([`key`]), links warm-ups, isolated baselines, concurrent cells,
//! analyses and reports in a petgraph DAG, and fixes the schedule order (repetitions
//! interleaved, optionally shuffled with a recorded seed). Every problem is reported before
//! anything runs, as a located diagnostic; a dependency cycle is printed as its full path.

mod build;
pub(crate) mod expand;
pub(crate) mod key;
mod link;
pub(crate) mod render;
pub mod shard;

use std::sync::Arc;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::manifest::{Manifest, ManifestError, Task};

pub use build::{build, build_loaded};
pub use expand::{Configuration, LoadLevel, ResolvedAgent};
pub use key::{CellRole, NodeId, WarmupKey};
pub use shard::{ShardBy, ShardSpec, Split};
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

    /// The name of the matrix block configuration `c` comes from, when the manifest names it.
    pub fn block_name(&self, c: &Configuration) -> Option<&str> {
        let spec = &self.reports[c.report].manifest.spec;
        spec.matrix.get(c.block)?.name.as_deref()
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

    /// LLM requests one agent run of configuration `c` makes (estimated for a load that runs
    /// for a duration: its rate, or one request per user and second, over the duration).
    pub fn requests_per_agent_run(&self, c: &Configuration) -> u64 {
        let m = &self.reports[c.report].manifest.spec;
        match &m.workloads[c.workload].task {
            Task::SingleInference { prompts } => prompts.len() as u64,
            Task::AgentWorkflow { .. } => 2,
            Task::Persona { .. } => 1,
            // The measured ones (a load's own warm-up requests are rows flagged `warmup`).
            Task::Load(t) => match (t.requests, t.duration_s) {
                (Some(n), _) => u64::from(n),
                (None, d) => {
                    let per_s = c
                        .load
                        .rate
                        .or(c.load.concurrency.map(f64::from))
                        .unwrap_or(1.0);
                    (per_s * d.unwrap_or(0.0)).ceil().max(1.0) as u64
                }
            },
        }
    }

    /// The measured LLM requests one agent run of configuration `c` must make; `None` for a
    /// load that runs for a duration (it sends what the time allows).
    pub fn planned_requests_per_agent_run(&self, c: &Configuration) -> Option<u64> {
        let m = &self.reports[c.report].manifest.spec;
        match &m.workloads[c.workload].task {
            Task::Load(t) if t.requests.is_none() => None,
            _ => Some(self.requests_per_agent_run(c)),
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

pub use crate::util::rng::SplitMix64;

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
