//! The typed records that flow from a run (or an import) to the tables and the analysis: a
//! finished cell ([`CellRecord`]), its agents' runs ([`AgentRun`]) and their requests
//! ([`RequestRow`]), with the kinds and statuses as enums ([`CellKind`], [`Status`]), the
//! metrics only a multi-agent cell has grouped in [`MultiAgentMetrics`], and the metadata
//! committed with a cell ([`CellMeta`]).
//!
//! This room sits below `table`, `run` and `analysis`: it uses only the manifest, plan,
//! backend, workload, telemetry and metrics types.

mod cell;
pub mod checks;
mod kind;
mod meta;

pub use cell::{
    AgentRun, Baseline, CellAxes, CellKey, CellPlacement, CellRecord, LoadRequest,
    MultiAgentMetrics, ProcessStats, RequestRow, agent_deltas, isolated_result, server_flags_of,
};
pub use kind::{CellKind, Status, UnknownName};
pub use meta::{AgentMeta, CellMeta};

/// The per-agent aggregate a record carries (defined with the metrics).
pub use crate::metrics::AgentAggregate;
