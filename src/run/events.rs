//! What happens during a campaign run, as typed events: the workers and the scheduler emit
//! them, and separate sinks consume them (the progress display, the journal, the summary).

use std::time::Duration;

use petgraph::graph::NodeIndex;

use crate::plan::Plan;
use crate::record::CellRecord;
use crate::store::StoreError;

/// One thing that happened in a campaign run.
#[derive(Debug)]
pub(crate) enum RunEvent {
    /// A managed server of a cell had died, or runs with other `server` settings than the
    /// cell's, and was started again.
    ServerRestarted {
        /// Endpoint id.
        endpoint: String,
        /// How it had ended.
        exit: String,
        /// The settings it was started again with, when the restart was for them.
        settings: Option<String>,
    },
    /// The scheduler handed a cell to a worker (its dependencies are done, its resources
    /// taken).
    CellScheduled,
    /// An attempt of a cell started.
    CellStarted {
        /// The cell.
        ni: NodeIndex,
        /// Attempt number (from 1).
        attempt: u32,
    },
    /// An attempt failed and another follows after `delay`.
    CellRetrying {
        /// The cell.
        ni: NodeIndex,
        /// The attempt that failed.
        attempt: u32,
        /// Error kind.
        kind: String,
        /// What went wrong.
        message: String,
        /// Pause before the next attempt.
        delay: Duration,
    },
    /// A cell was measured and committed.
    CellFinished {
        /// The cell.
        ni: NodeIndex,
        /// The attempt that succeeded.
        attempt: u32,
        /// What it measured.
        record: Box<CellRecord>,
        /// Its isolated baseline (isolated cells).
        iso: Option<crate::record::Baseline>,
        /// Another run had committed it first.
        duplicate: bool,
    },
    /// A cell was adopted from the shared cache.
    CellCached {
        /// The cell.
        ni: NodeIndex,
        /// Its isolated baseline (isolated cells).
        iso: Option<crate::record::Baseline>,
    },
    /// A cell failed for good.
    CellFailed {
        /// The cell.
        ni: NodeIndex,
        /// Its last attempt.
        attempt: u32,
        /// Error kind.
        kind: String,
        /// What went wrong.
        message: String,
        /// Whether the policy would have retried it.
        retryable: bool,
    },
    /// A cell was not started because dependency `dep` failed.
    CellBlocked {
        /// The cell.
        ni: NodeIndex,
        /// The failed dependency.
        dep: NodeIndex,
    },
    /// Ctrl-C / SIGTERM: cells in flight were cancelled.
    RunInterrupted,
    /// Every cell was run (or failed, or was blocked).
    RunFinished {
        /// Cells committed by the run (measured or cached).
        committed: u64,
        /// Cells that failed for good.
        failed: u64,
    },
}

/// A consumer of [`RunEvent`]s. Only the journal can fail (and then the run stops).
pub(crate) trait RunSink {
    /// Takes one event.
    fn on_event(&mut self, plan: &Plan, ev: &RunEvent) -> Result<(), StoreError>;
}
