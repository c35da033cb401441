//! The journal and the summary of a campaign run, as [`RunSink`]s of its events (the
//! progress display is the third, in `progress.rs`).

use std::sync::Arc;

use super::events::{RunEvent, RunSink};
use super::options::CampaignSummary;
use crate::plan::Plan;
use crate::store::{Campaign, JournalEvent, StoreError};
use crate::util::clock::now_unix_ms;

/// Writes a run's events to the campaign journal (what `chimera status` reads back).
pub(crate) struct JournalSink {
    /// The campaign.
    pub(crate) campaign: Arc<Campaign>,
    /// This run's id.
    pub(crate) run_id: String,
}

/// The journal event of a failed attempt (`final_attempt`: no retry follows).
fn cell_failed(
    cell: String,
    attempt: u32,
    kind: &str,
    message: &str,
    retryable: bool,
    final_attempt: bool,
) -> JournalEvent {
    JournalEvent::CellFailed {
        at_unix_ms: now_unix_ms(),
        cell,
        attempt,
        kind: kind.to_owned(),
        message: message.to_owned(),
        retryable,
        final_attempt,
    }
}

impl RunSink for JournalSink {
    fn on_event(&mut self, plan: &Plan, ev: &RunEvent) -> Result<(), StoreError> {
        let id = |ni: &petgraph::graph::NodeIndex| plan.graph[*ni].id.hex();
        let event = match ev {
            RunEvent::CellStarted { ni, attempt } => JournalEvent::CellStarted {
                at_unix_ms: now_unix_ms(),
                cell: id(ni),
                attempt: *attempt,
            },
            RunEvent::CellRetrying {
                ni,
                attempt,
                kind,
                message,
                ..
            } => cell_failed(id(ni), *attempt, kind, message, true, false),
            RunEvent::CellFinished {
                ni,
                attempt,
                duplicate: true,
                ..
            } => {
                // A warm-up that another shard committed first is expected: each shard warms
                // its own servers.
                if plan.graph[*ni].kind == crate::plan::NodeKind::Warmup {
                    return Ok(());
                }
                tracing::warn!(
                    "cell {} was already committed (by another shard, or an earlier run of this \
                     one): the first commit is kept and this measurement discarded",
                    id(ni)
                );
                JournalEvent::CellDuplicate {
                    at_unix_ms: now_unix_ms(),
                    cell: id(ni),
                    attempt: *attempt,
                }
            }
            RunEvent::CellFinished { ni, attempt, .. } => JournalEvent::CellCommitted {
                at_unix_ms: now_unix_ms(),
                cell: id(ni),
                attempt: *attempt,
                cached: false,
            },
            RunEvent::CellCached { ni, .. } => JournalEvent::CellCommitted {
                at_unix_ms: now_unix_ms(),
                cell: id(ni),
                attempt: 0,
                cached: true,
            },
            RunEvent::CellFailed {
                ni,
                attempt,
                kind,
                message,
                retryable,
            } => cell_failed(id(ni), *attempt, kind, message, *retryable, true),
            RunEvent::RunInterrupted => JournalEvent::Interrupted {
                at_unix_ms: now_unix_ms(),
                run_id: self.run_id.clone(),
            },
            RunEvent::RunFinished { committed, failed } => JournalEvent::Finished {
                at_unix_ms: now_unix_ms(),
                run_id: self.run_id.clone(),
                committed: *committed,
                failed: *failed,
            },
            RunEvent::ServerRestarted { .. }
            | RunEvent::CellScheduled
            | RunEvent::CellBlocked { .. } => return Ok(()),
        };
        self.campaign.journal(&event)
    }
}

/// The run's counts, as `chimera run` reports them at the end.
impl RunSink for CampaignSummary {
    fn on_event(&mut self, plan: &Plan, ev: &RunEvent) -> Result<(), StoreError> {
        match ev {
            RunEvent::CellFinished {
                duplicate: false, ..
            } => self.ran += 1,
            RunEvent::CellCached { .. } => self.cached += 1,
            RunEvent::CellFailed {
                ni, kind, message, ..
            } => self
                .failed
                .push((plan.graph[*ni].id.hex(), format!("{kind}: {message}"))),
            RunEvent::CellBlocked { .. } => self.blocked += 1,
            _ => {}
        }
        Ok(())
    }
}
