//! The scheduler loop: one owner of all run state. It starts a cell only when every
//! dependency is committed and it can take, all at once, every resource (GPU) behind the
//! cell's endpoints; cells on disjoint resources run in parallel. Workers report back as
//! [`RunEvent`]s, which the loop applies to its state and hands to its sinks (the journal,
//! the summary, the progress display). Ctrl-C stops starting cells and cancels the ones in
//! flight; every committed cell is kept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use tokio::sync::{mpsc, watch};

use super::IsolatedResults;
use super::cells::{is_cell, node_urls, resources};
use super::error::CampaignError;
use super::events::{RunEvent, RunSink};
use super::options::CampaignSummary;
use super::progress::Progress;
use super::sinks::JournalSink;
use super::worker::{WorkerContext, worker};
use crate::plan::{NodeKind, Plan};

/// A cell waiting to start, with what it waits for (computed once).
struct Waiting {
    ni: NodeIndex,
    /// Its dependencies that are cells.
    deps: Vec<NodeIndex>,
    /// The resources it takes while it runs.
    res: Vec<String>,
    /// The endpoint URLs it talks to.
    urls: Vec<String>,
}

/// The sinks of a run's events.
pub(crate) struct Sinks {
    /// The campaign journal.
    pub(crate) journal: JournalSink,
    /// The counts `chimera run` reports.
    pub(crate) summary: CampaignSummary,
    /// The progress display.
    pub(crate) progress: Progress,
}

impl Sinks {
    /// Hands `ev` to every sink (the journal first: when it fails, the run stops).
    pub(crate) fn emit(&mut self, plan: &Plan, ev: &RunEvent) -> Result<(), CampaignError> {
        self.journal.on_event(plan, ev)?;
        self.summary.on_event(plan, ev)?;
        self.progress.on_event(plan, ev)?;
        Ok(())
    }
}

/// The state of the scheduling loop.
pub(crate) struct Scheduler {
    plan: Arc<Plan>,
    pending: Vec<Waiting>,
    done: HashSet<NodeIndex>,
    failed: HashSet<NodeIndex>,
    busy: HashSet<String>,
    inflight: HashMap<NodeIndex, (tokio::task::JoinHandle<()>, Vec<String>)>,
    isolated: IsolatedResults,
    stopping: bool,
    fail_fast: bool,
    /// Where the run's events go.
    pub(crate) sinks: Sinks,
}

impl Scheduler {
    /// A scheduler of the `pending` cells; `done` are committed already, `isolated` holds
    /// their isolated baselines.
    pub(crate) fn new(
        plan: Arc<Plan>,
        pending: Vec<NodeIndex>,
        done: HashSet<NodeIndex>,
        isolated: IsolatedResults,
        fail_fast: bool,
        sinks: Sinks,
    ) -> Scheduler {
        let pending = pending
            .into_iter()
            .map(|ni| Waiting {
                ni,
                deps: plan
                    .graph
                    .neighbors_directed(ni, Direction::Incoming)
                    .filter(|&d| is_cell(&plan, d))
                    .collect(),
                res: resources(&plan, ni),
                urls: node_urls(&plan, ni),
            })
            .collect();
        Scheduler {
            plan,
            pending,
            done,
            failed: HashSet::new(),
            busy: HashSet::new(),
            inflight: HashMap::new(),
            isolated,
            stopping: false,
            fail_fast,
            sinks,
        }
    }

    fn emit(&mut self, ev: &RunEvent) -> Result<(), CampaignError> {
        self.sinks.emit(&self.plan, ev)
    }

    /// Blocks the cells whose dependency failed and hands to workers those that are ready
    /// and whose resources are free, in plan order. A cell does not overtake an earlier
    /// waiting cell on one of its endpoints whose configuration has other `server` settings
    /// (that would restart the endpoint's managed server twice).
    fn start_ready(&mut self, ctx: &Arc<WorkerContext>) -> Result<(), CampaignError> {
        let plan = self.plan.clone();
        let settings = |ni: NodeIndex| plan.config_of(&plan.graph[ni]).map(|c| &c.server);
        // The distinct settings of the earlier cells still waiting, by URL.
        let mut waiting: HashMap<String, Vec<&crate::manifest::ServerFlags>> = HashMap::new();
        let mut i = 0;
        while i < self.pending.len() {
            let w = &self.pending[i];
            let ni = w.ni;
            if let Some(&dep) = w.deps.iter().find(|d| self.failed.contains(d)) {
                self.failed.insert(ni);
                self.pending.remove(i);
                self.emit(&RunEvent::CellBlocked { ni, dep })?;
                continue;
            }
            let ready = w.deps.iter().all(|d| self.done.contains(d));
            let own = settings(ni);
            let overtakes = own.is_some_and(|f| {
                w.urls
                    .iter()
                    .filter_map(|u| waiting.get(u))
                    .any(|gs| gs.iter().any(|g| *g != f))
            });
            if ready && !overtakes && w.res.iter().all(|r| !self.busy.contains(r)) {
                let w = self.pending.remove(i);
                self.busy.extend(w.res.iter().cloned());
                let handle = tokio::spawn(worker(ctx.clone(), ni, self.isolated.clone()));
                self.inflight.insert(ni, (handle, w.res));
                self.emit(&RunEvent::CellScheduled)?;
                continue;
            }
            if let Some(f) = own {
                for u in &self.pending[i].urls {
                    let gs = waiting.entry(u.clone()).or_default();
                    if !gs.contains(&f) {
                        gs.push(f);
                    }
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Applies a worker's event to the run state.
    fn apply(&mut self, ev: &RunEvent) {
        match ev {
            RunEvent::CellFinished { ni, iso, .. } | RunEvent::CellCached { ni, iso, .. } => {
                let n = &self.plan.graph[*ni];
                if n.kind == NodeKind::Isolated
                    && let Some(r) = iso
                {
                    self.isolated.insert((n.config, n.repetition, n.agent), *r);
                }
                self.done.insert(*ni);
                self.release(*ni);
            }
            RunEvent::CellFailed { ni, .. } => {
                self.failed.insert(*ni);
                self.release(*ni);
                if self.fail_fast {
                    self.stopping = true;
                }
            }
            _ => {}
        }
    }

    fn release(&mut self, ni: NodeIndex) {
        if let Some((_, res)) = self.inflight.remove(&ni) {
            for r in res {
                self.busy.remove(&r);
            }
        }
    }

    /// Runs every pending cell (or stops early with `--fail-fast`); `Err(Interrupted)` on
    /// Ctrl-C / SIGTERM after the cells in flight were cancelled.
    pub(crate) async fn run(
        &mut self,
        ctx: &Arc<WorkerContext>,
        mut rx: mpsc::UnboundedReceiver<RunEvent>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<(), CampaignError> {
        loop {
            if !self.stopping {
                self.start_ready(ctx)?;
            }
            if self.inflight.is_empty() {
                if !self.stopping && !self.pending.is_empty() {
                    // Only possible if a dependency is outside the plan's cells: report, do
                    // not hang.
                    tracing::error!("{} cell(s) could not be scheduled", self.pending.len());
                }
                return Ok(());
            }
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                _ = cancel.changed() => {
                    for (_, (h, _)) in self.inflight.drain() {
                        h.abort();
                    }
                    self.emit(&RunEvent::RunInterrupted)?;
                    return Err(CampaignError::Interrupted);
                }
            };
            let Some(ev) = ev else { return Ok(()) };
            self.apply(&ev);
            self.emit(&ev)?;
        }
    }

    /// Ends the run: journals how many cells it committed and failed, clears the display,
    /// and returns the summary.
    pub(crate) fn finish(mut self) -> Result<CampaignSummary, CampaignError> {
        let s = &self.sinks.summary;
        let ev = RunEvent::RunFinished {
            committed: (s.ran + s.cached) as u64,
            failed: s.failed.len() as u64,
        };
        self.emit(&ev)?;
        Ok(self.sinks.summary)
    }
}
