//! The campaign scheduler: runs a plan into a crash-safe store, resuming what is committed.
//!
//! One owner loop holds all run state. It starts a cell only when every dependency is
//! committed and it can take, all at once, every resource (GPU) behind the cell's endpoints;
//! cells on disjoint resources run in parallel. Workers run a cell (with retries per the
//! manifest's policy and an optional per-cell timeout), commit it, and report back over a
//! channel; the owner journals, releases resources and updates the progress display.
//! Ctrl-C stops starting cells, cancels the ones in flight and keeps every committed cell.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use tokio::sync::mpsc;

use super::managed::{ManagedError, ManagedServers};
use super::{IsolatedResults, RunError, RunOptions, Runner, now_unix_ms};
use crate::backend::{ErrorKind, ModelPresence};
use crate::manifest::{RetryPolicy, RetryableError};
use crate::plan::{NodeKind, Plan, SplitMix64};
use crate::record::{CellMeta, CellRecord, isolated_result};
use crate::store::{
    Cache, Campaign, CampaignInfo, CommitOutcome, JournalEvent, ManifestEntry, StoreError,
};
use crate::table::{self, TableError};

/// Errors that stop a campaign.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The store refused (lock held, newer format, read-only, full disk...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cell's tables could not be encoded.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The runner could not be prepared.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Ctrl-C / SIGTERM.
    #[error("interrupted; committed cells are kept, run the same command to resume")]
    Interrupted,
    /// An endpoint did not answer its health check.
    #[error(
        "endpoint `{endpoint}` ({url}) does not answer: {message}\n  = help: start the server (for Ollama: `OLLAMA_HOST={host} ollama serve`), or fix the endpoint's `url` in the manifest; nothing was run"
    )]
    Unreachable {
        /// Endpoint id.
        endpoint: String,
        /// URL.
        url: String,
        /// host:port.
        host: String,
        /// What the client saw.
        message: String,
    },
    /// A model is not on the server an endpoint points at.
    #[error(
        "endpoint `{endpoint}` ({url}) does not have model `{model}`\n  = help: pull it into that server (`OLLAMA_HOST={host} ollama pull {model}`; every Ollama instance has its own model store), or fix the model's `tag` in the manifest; nothing was run"
    )]
    ModelMissing {
        /// Endpoint id.
        endpoint: String,
        /// URL.
        url: String,
        /// host:port.
        host: String,
        /// Model tag.
        model: String,
    },
    /// The campaign holds imported data.
    #[error(
        "campaign `{name}` holds results imported from {format} raw files, not chimera measurements; new measurements go into another campaign\n  = help: pass `--campaign NAME` with a new name; nothing was run"
    )]
    Imported {
        /// Campaign.
        name: String,
        /// Importer format.
        format: String,
    },
    /// A `--force` selector matched nothing.
    #[error(
        "`--force {0}` matches no cell of this plan\n  = help: use `all`, a cell-id prefix, `config=<id>`, `report=<id>` or `kind=<kind>`"
    )]
    Selector(String),
    /// A managed server could not be started or given its models.
    #[error(transparent)]
    Managed(super::managed::ManagedError),
}

/// Settings of a campaign run.
#[derive(Debug, Clone)]
pub struct CampaignOptions {
    /// Data directory (campaigns live in `<data>/<name>/`).
    pub data: PathBuf,
    /// Campaign name.
    pub name: String,
    /// Selectors of committed cells to run again.
    pub force: Vec<String>,
    /// Stop at the first cell that fails for good.
    pub fail_fast: bool,
    /// Reuse cells from the shared cache when the environment fingerprint matches.
    pub use_cache: bool,
    /// Check every committed part's SHA-256 before resuming (not only its size); cells that
    /// fail are set aside as `cells/.broken-<id>-<n>/` and run again.
    pub verify: bool,
    /// Per-cell time limit (all attempts of one try).
    pub cell_timeout: Option<Duration>,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Test instrument: sample this many deterministic fake GPUs instead of the manifest's
    /// telemetry source (never set by the command line).
    pub fake_gpus: Option<u32>,
}

/// What a campaign run did.
#[derive(Debug, Clone, Default)]
pub struct CampaignSummary {
    /// Cells of the plan (warm-ups included).
    pub total: usize,
    /// Cells already committed when the run started.
    pub committed_before: usize,
    /// Cells committed by this run (measured).
    pub ran: usize,
    /// Cells adopted from the shared cache.
    pub cached: usize,
    /// Cells that failed for good: (cell id, error).
    pub failed: Vec<(String, String)>,
    /// Cells not started because a dependency failed.
    pub blocked: usize,
    /// Managed servers started again after they had died.
    pub server_restarts: u32,
}

/// The retry class of an error kind, if the policy may retry it.
pub fn retry_class(kind: ErrorKind) -> Option<RetryableError> {
    match kind {
        ErrorKind::ConnectionRefused => Some(RetryableError::Connect),
        ErrorKind::Timeout => Some(RetryableError::Timeout),
        ErrorKind::ServerError | ErrorKind::QueueFull | ErrorKind::HttpStatus => {
            Some(RetryableError::ServerError)
        }
        ErrorKind::StreamError | ErrorKind::Truncated | ErrorKind::MalformedResponse => {
            Some(RetryableError::Stream)
        }
        ErrorKind::ModelNotFound | ErrorKind::BadRequest | ErrorKind::TooLarge => None,
    }
}

/// Delay before retry `attempt` (1 = first retry): exponential from `backoff_ms`, capped at
/// `max_backoff_ms`, with ±50 % jitter drawn from a PRNG seeded by the cell id.
pub fn backoff(policy: &RetryPolicy, attempt: u32, cell_id: &str) -> Duration {
    let base = policy
        .backoff_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let capped = base.min(policy.max_backoff_ms) as f64;
    let factor = if policy.jitter {
        let seed = cell_id.bytes().fold(u64::from(attempt), |h, b| {
            h.wrapping_mul(31).wrapping_add(u64::from(b))
        });
        0.5 + (SplitMix64(seed).next_u64() % 1000) as f64 / 1000.0
    } else {
        1.0
    };
    Duration::from_millis((capped * factor) as u64)
}

/// The resources a node needs: those of the endpoints its agents (or its warm-up) use.
fn resources(plan: &Plan, ni: NodeIndex) -> Vec<String> {
    let n = &plan.graph[ni];
    let spec = &plan.reports[n.report as usize].manifest.spec;
    let mut r: Vec<String> = match n.kind {
        NodeKind::Warmup => {
            let w = &plan.warmups[n.warmup as usize];
            spec.endpoints
                .iter()
                .filter(|e| e.url == w.url)
                .map(|e| e.resource.clone())
                .collect()
        }
        NodeKind::Isolated => {
            let c = &plan.configs[n.config as usize];
            c.agents
                .get(n.agent as usize)
                .map(|a| spec.endpoints[a.endpoint].resource.clone())
                .into_iter()
                .collect()
        }
        NodeKind::Single | NodeKind::Concurrent => {
            let c = &plan.configs[n.config as usize];
            c.agents
                .iter()
                .map(|a| spec.endpoints[a.endpoint].resource.clone())
                .collect()
        }
        NodeKind::Analysis | NodeKind::Report => Vec::new(),
    };
    r.sort();
    r.dedup();
    r
}

fn is_cell(plan: &Plan, ni: NodeIndex) -> bool {
    !matches!(plan.graph[ni].kind, NodeKind::Analysis | NodeKind::Report)
}

/// Whether a `--force` selector matches a node.
fn selects(plan: &Plan, ni: NodeIndex, sel: &str) -> bool {
    let n = &plan.graph[ni];
    let config = (n.config != crate::plan::NONE).then(|| &*plan.configs[n.config as usize].id);
    match sel.split_once('=') {
        Some(("config", v)) => config == Some(v),
        Some(("report", v)) => plan.reports[n.report as usize].report == v,
        Some(("kind", v)) => n.kind.name() == v,
        Some(_) => false,
        None if sel == "all" => true,
        None => sel.len() >= 4 && n.id.hex().starts_with(&sel.to_ascii_lowercase()),
    }
}

enum Event {
    ServerRestarted {
        endpoint: String,
        exit: String,
    },
    Started {
        ni: NodeIndex,
        attempt: u32,
    },
    Retrying {
        ni: NodeIndex,
        attempt: u32,
        kind: String,
        message: String,
        delay: Duration,
    },
    Committed {
        ni: NodeIndex,
        attempt: u32,
        record: Option<Box<CellRecord>>,
        iso: Option<(f64, u64)>,
        cached: bool,
        duplicate: bool,
    },
    Failed {
        ni: NodeIndex,
        attempt: u32,
        kind: String,
        message: String,
        retryable: bool,
    },
}

/// What the progress display shows.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    failed: usize,
    running: usize,
}

impl Progress {
    fn new(total: usize, show_bar: bool) -> Self {
        let bar = (show_bar && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} cells  {msg}  ETA {eta}",
            ) {
                b.set_style(style);
            }
            b
        });
        Self {
            bar,
            total,
            done: 0,
            failed: 0,
            running: 0,
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(b) => {
                b.set_message(format!(
                    "running {}, failed {}, remaining {}",
                    self.running,
                    self.failed,
                    self.total
                        .saturating_sub(self.done + self.failed + self.running)
                ));
                b.set_position((self.done + self.failed) as u64);
                b.println(text);
            }
            None => {
                // Never panic on a closed stderr (e.g. piped into `head`).
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn label(plan: &Plan, ni: NodeIndex) -> String {
    let n = &plan.graph[ni];
    let r = &plan.reports[n.report as usize].report;
    if n.config == crate::plan::NONE {
        let w = &plan.warmups[n.warmup as usize];
        let o = |x: Option<u32>| x.map_or("default".to_owned(), |v| v.to_string());
        return format!(
            "{} {r} {} gpu={} ctx={}",
            n.kind.name(),
            w.url,
            o(w.num_gpu),
            o(w.num_ctx)
        );
    }
    let c = &plan.configs[n.config as usize];
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

/// Runs the plan into the campaign store. Returns what happened; cells that failed for good
/// are in the summary (and the journal), everything committed stays committed. The servers
/// the manifests ask chimera to manage are started first and stopped at the end, whatever
/// happened (success, an error, Ctrl-C / SIGTERM); see [`super::managed`].
pub async fn run_campaign(
    plan: Arc<Plan>,
    manifests: Vec<ManifestEntry>,
    opts: &CampaignOptions,
    run_opts: &RunOptions,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<CampaignSummary, CampaignError> {
    let servers = Arc::new(ManagedServers::new());
    let mut started = None;
    let result = campaign_body(
        plan,
        manifests,
        opts,
        run_opts,
        cancel,
        &servers,
        &mut started,
    )
    .await;
    // A run that stopped on an error after it was journaled as started says so (an
    // interruption has its own event), so `status` can tell errors from kills.
    if let (Err(e), Some((campaign, run_id))) = (&result, started)
        && !matches!(e, CampaignError::Interrupted)
    {
        let _ = campaign.journal(&JournalEvent::Aborted {
            run_id,
            message: e.to_string(),
            at_unix_ms: now_unix_ms(),
        });
    }
    servers.stop_all().await;
    result.map(|mut summary| {
        summary.server_restarts = servers.restarts();
        summary
    })
}

async fn campaign_body(
    plan: Arc<Plan>,
    manifests: Vec<ManifestEntry>,
    opts: &CampaignOptions,
    run_opts: &RunOptions,
    mut cancel: tokio::sync::watch::Receiver<bool>,
    servers: &Arc<ManagedServers>,
    started: &mut Option<(Arc<Campaign>, String)>,
) -> Result<CampaignSummary, CampaignError> {
    // Imported raw results and new measurements never share a campaign.
    if let Ok(view) = crate::store::open_existing(&opts.data, &opts.name)
        && let Some(o) = &view.info().origin
    {
        return Err(CampaignError::Imported {
            name: opts.name.clone(),
            format: o.format.clone(),
        });
    }
    let info = CampaignInfo::new(&opts.name, manifests);
    let campaign = Arc::new(Campaign::open(&opts.data, &opts.name, info)?);

    let cells: Vec<NodeIndex> = plan
        .order
        .iter()
        .copied()
        .filter(|&ni| is_cell(&plan, ni))
        .collect();
    for sel in &opts.force {
        let hits: Vec<NodeIndex> = cells
            .iter()
            .copied()
            .filter(|&ni| selects(&plan, ni, sel))
            .collect();
        if hits.is_empty() {
            return Err(CampaignError::Selector(sel.clone()));
        }
        let c = &campaign;
        let mut removed = 0;
        for ni in hits {
            if c.remove_cell(&plan.graph[ni].id.hex())? {
                removed += 1;
            }
        }
        tracing::info!("--force {sel}: {removed} committed cell(s) set aside to run again");
    }
    // One handle for the run: it remembers what it swept, so inserts do not sweep again.
    let shared_cache = Cache::new(&opts.data);
    if opts.use_cache {
        // Inserts into the shared cache that a killed run left unfinished.
        shared_cache.sweep_dead_inserts();
    }
    let committed = if opts.verify {
        campaign.verify(crate::store::Verify::Full)?
    } else {
        campaign.committed()?
    };
    let mut done: HashSet<NodeIndex> = HashSet::new();
    let mut isolated: IsolatedResults = HashMap::new();
    for &ni in &cells {
        let id = plan.graph[ni].id.hex();
        if committed.ids.contains(&id) {
            done.insert(ni);
            let n = &plan.graph[ni];
            if n.kind == NodeKind::Isolated
                && let Some(r) = committed.meta(&id).as_ref().and_then(CellMeta::isolated_of)
            {
                isolated.insert((n.config, n.repetition, n.agent), r);
            }
        }
    }
    let mut pending: Vec<NodeIndex> = cells
        .iter()
        .copied()
        .filter(|ni| !done.contains(ni))
        .collect();
    let mut summary = CampaignSummary {
        total: cells.len(),
        committed_before: done.len(),
        ..CampaignSummary::default()
    };
    let _ = writeln!(
        std::io::stderr(),
        "campaign `{}` in {}: {} committed, {} to run{}",
        opts.name,
        opts.data.join(&opts.name).display(),
        done.len(),
        pending.len(),
        match committed.broken.len() {
            0 => String::new(),
            n => format!(
                " ({n} cell director{} failed verification and {} set aside: {})",
                if n == 1 { "y" } else { "ies" },
                if n == 1 { "was" } else { "were" },
                committed
                    .broken
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    );
    let run_id = format!("{:x}", (now_unix_ms() as u64));
    campaign.journal(&JournalEvent::Started {
        at_unix_ms: now_unix_ms(),
        run_id: run_id.clone(),
        cells_total: cells.len() as u64,
        committed: done.len() as u64,
        to_run: pending.len() as u64,
    })?;
    *started = Some((campaign.clone(), run_id.clone()));
    if pending.is_empty() {
        campaign.journal(&JournalEvent::Finished {
            at_unix_ms: now_unix_ms(),
            run_id,
            committed: 0,
            failed: 0,
        })?;
        return Ok(summary);
    }

    let runner = Arc::new(Runner::prepare(&plan, run_opts)?);
    // Managed servers: started (and their models pulled) before the health check.
    if let Err(e) = servers.start(&plan, &campaign, cancel.clone()).await {
        if matches!(e, ManagedError::Interrupted) {
            campaign.journal(&JournalEvent::Interrupted {
                at_unix_ms: now_unix_ms(),
                run_id: run_id.clone(),
            })?;
        }
        return Err(e.into());
    }
    // Health check: a dead server fails fast, before any cell, with what to do.
    let mut checked: HashSet<String> = HashSet::new();
    for rp in &plan.reports {
        for e in &rp.manifest.spec.endpoints {
            if !checked.insert(e.url.clone()) {
                continue;
            }
            if let Some(client) = runner.client(&e.url)
                && let Err(err) = client.version().await
            {
                return Err(CampaignError::Unreachable {
                    endpoint: e.id.clone(),
                    url: e.url.clone(),
                    host: e
                        .url
                        .trim_start_matches("http://")
                        .trim_end_matches('/')
                        .to_owned(),
                    message: format!("{}: {}", err.kind.name(), err.message),
                });
            }
        }
    }
    // Every model a configuration uses must be on the endpoints its agents talk to.
    let mut needed: Vec<(String, String, String)> = Vec::new();
    for c in &plan.configs {
        let spec = &plan.reports[c.report].manifest.spec;
        let Some(tag) = spec
            .models
            .iter()
            .find(|m| *m.id == *c.model)
            .map(|m| m.tag.clone())
        else {
            continue;
        };
        for a in &c.agents {
            if let Some(e) = spec.endpoints.get(a.endpoint) {
                let k = (e.id.clone(), e.url.clone(), tag.clone());
                if !needed.contains(&k) {
                    needed.push(k);
                }
            }
        }
    }
    for (endpoint, url, model) in needed {
        let Some(client) = runner.client(&url) else {
            continue;
        };
        match client.model_presence(&model).await {
            Ok(ModelPresence::Missing) => {
                return Err(CampaignError::ModelMissing {
                    endpoint,
                    host: url
                        .trim_start_matches("http://")
                        .trim_end_matches('/')
                        .to_owned(),
                    url,
                    model,
                });
            }
            // llama-server answers any `model` with the one it was started with: say so once.
            Ok(ModelPresence::NotListed { served }) => tracing::warn!(
                "endpoint `{endpoint}` ({url}) lists {} but not `{model}`; an OpenAI-compatible server serves the model it was started with, whatever a request names: check that it is the one you mean",
                served.join(", ")
            ),
            _ => {}
        }
    }
    // GPU telemetry: one sampler thread per campaign (the first report's settings).
    let settings = plan
        .reports
        .first()
        .map(|r| r.manifest.spec.telemetry.clone())
        .unwrap_or_default();
    let source: Box<dyn crate::telemetry::GpuSource> = match opts.fake_gpus {
        Some(n) => Box::new(crate::telemetry::FakeSource::new(n, 1)),
        None => crate::telemetry::open(&settings),
    };
    let (source, gpu_ids) = telemetry_sources(&plan, source);
    let gpu_ids = Arc::new(gpu_ids);
    let sampler = Arc::new(crate::telemetry::Sampler::start(
        source,
        Duration::from_millis(settings.period_ms.max(10)),
    ));
    write_provenance(&plan, &runner, &sampler, &gpu_ids, &campaign, &opts.name).await;
    // `--force` means "measure again": the shared cache is not consulted in that run.
    let cache = if opts.use_cache && opts.force.is_empty() {
        fingerprint(&plan, &runner)
            .await
            .map(|fp| (shared_cache.clone(), fp))
    } else {
        None
    };
    let cache = Arc::new(cache);

    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let mut busy: HashSet<String> = HashSet::new();
    let mut inflight: HashMap<NodeIndex, (tokio::task::JoinHandle<()>, Vec<String>)> =
        HashMap::new();
    let mut failed: HashSet<NodeIndex> = HashSet::new();
    let mut stopping = false;
    let mut progress = Progress::new(pending.len(), opts.progress);
    let started_at = Instant::now();

    loop {
        if !stopping {
            let mut i = 0;
            while i < pending.len() {
                let ni = pending[i];
                let deps: Vec<NodeIndex> = plan
                    .graph
                    .neighbors_directed(ni, Direction::Incoming)
                    .filter(|&d| is_cell(&plan, d))
                    .collect();
                if let Some(bad) = deps.iter().find(|d| failed.contains(d)) {
                    summary.blocked += 1;
                    failed.insert(ni);
                    progress.failed += 1;
                    progress.line(format!(
                        "blocked   {}  (dependency {} failed)",
                        label(&plan, ni),
                        &plan.graph[*bad].id.hex()[..12]
                    ));
                    pending.remove(i);
                    continue;
                }
                let ready = deps.iter().all(|d| done.contains(d));
                let res = resources(&plan, ni);
                if ready && res.iter().all(|r| !busy.contains(r)) {
                    for r in &res {
                        busy.insert(r.clone());
                    }
                    let iso = isolated.clone();
                    let handle = tokio::spawn(worker(
                        plan.clone(),
                        ni,
                        sampler.clone(),
                        gpu_ids.clone(),
                        runner.clone(),
                        servers.clone(),
                        campaign.clone(),
                        cache.clone(),
                        iso,
                        opts.cell_timeout,
                        opts.name.clone(),
                        tx.clone(),
                    ));
                    inflight.insert(ni, (handle, res));
                    progress.running += 1;
                    pending.remove(i);
                    continue;
                }
                i += 1;
            }
        }
        if inflight.is_empty() {
            if !stopping && !pending.is_empty() {
                // Only possible if a dependency is outside the plan's cells: report, do not hang.
                tracing::error!("{} cell(s) could not be scheduled", pending.len());
            }
            break;
        }
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = cancel.changed() => {
                for (_, (h, _)) in inflight.drain() {
                    h.abort();
                }
                progress.finish();
                campaign.journal(&JournalEvent::Interrupted { at_unix_ms: now_unix_ms(), run_id: run_id.clone() })?;
                return Err(CampaignError::Interrupted);
            }
        };
        let Some(ev) = ev else { break };
        let c = &campaign;
        match ev {
            Event::ServerRestarted { endpoint, exit } => {
                progress.line(format!(
                    "restarted managed server `{endpoint}` (it had exited: {exit})"
                ));
            }
            Event::Started { ni, attempt } => {
                c.journal(&JournalEvent::CellStarted {
                    at_unix_ms: now_unix_ms(),
                    cell: plan.graph[ni].id.hex(),
                    attempt,
                })?;
            }
            Event::Retrying {
                ni,
                attempt,
                kind,
                message,
                delay,
            } => {
                c.journal(&cell_failed(
                    &plan, ni, attempt, &kind, &message, true, false,
                ))?;
                progress.line(format!(
                    "retry     {}  attempt {attempt} failed ({kind}: {message}); next in {:.1} s",
                    label(&plan, ni),
                    delay.as_secs_f64()
                ));
            }
            Event::Committed {
                ni,
                attempt,
                record,
                iso,
                cached,
                duplicate,
            } => {
                c.journal(&JournalEvent::CellCommitted {
                    at_unix_ms: now_unix_ms(),
                    cell: plan.graph[ni].id.hex(),
                    attempt,
                    cached,
                })?;
                let n = &plan.graph[ni];
                if n.kind == NodeKind::Isolated
                    && let Some(r) = iso
                {
                    isolated.insert((n.config, n.repetition, n.agent), r);
                }
                if cached {
                    summary.cached += 1;
                } else if !duplicate {
                    summary.ran += 1;
                }
                done.insert(ni);
                progress.done += 1;
                progress.running = progress.running.saturating_sub(1);
                let wall = record
                    .as_ref()
                    .map_or(String::new(), |r| format!("  {:.0} ms", r.wall_ms));
                let eff = record
                    .as_ref()
                    .and_then(|r| {
                        let m = r.multi_agent.as_ref()?;
                        m.published_efficiency_pct.map(|p| {
                            format!(
                                "  published {p:.1} %{}",
                                m.true_efficiency_pct
                                    .map(|t| format!(", true {t:.1} %"))
                                    .unwrap_or_default()
                            )
                        })
                    })
                    .unwrap_or_default();
                let gpu = record
                    .as_ref()
                    .and_then(|r| r.telemetry.as_ref())
                    .map(|t| {
                        let f = |x: Option<f64>, unit: &str| {
                            x.map_or(String::new(), |v| format!(" {v:.1} {unit}"))
                        };
                        format!(
                            "  gpu{}{}{}",
                            f(t.gpu_util_mean_pct, "%"),
                            f(t.power_mean_w, "W"),
                            f(t.energy_j, "J")
                        )
                    })
                    .unwrap_or_default();
                progress.line(format!(
                    "{}  {}{wall}{eff}{gpu}",
                    if cached { "cached   " } else { "committed" },
                    label(&plan, ni)
                ));
                release(&mut inflight, &mut busy, ni);
            }
            Event::Failed {
                ni,
                attempt,
                kind,
                message,
                retryable,
            } => {
                c.journal(&cell_failed(
                    &plan, ni, attempt, &kind, &message, retryable, true,
                ))?;
                failed.insert(ni);
                summary
                    .failed
                    .push((plan.graph[ni].id.hex(), format!("{kind}: {message}")));
                progress.failed += 1;
                progress.running = progress.running.saturating_sub(1);
                progress.line(format!(
                    "FAILED    {}  after {attempt} attempt(s): {kind}: {message}",
                    label(&plan, ni)
                ));
                release(&mut inflight, &mut busy, ni);
                if opts.fail_fast {
                    stopping = true;
                }
            }
        }
    }
    progress.finish();
    if let Ok(s) = Arc::try_unwrap(sampler) {
        s.stop();
    }
    campaign.journal(&JournalEvent::Finished {
        at_unix_ms: now_unix_ms(),
        run_id,
        committed: (summary.ran + summary.cached) as u64,
        failed: summary.failed.len() as u64,
    })?;
    tracing::info!(
        "campaign finished in {:.1} s",
        started_at.elapsed().as_secs_f64()
    );
    Ok(summary)
}

/// The journal event of a failed attempt (`final_attempt`: no retry follows).
fn cell_failed(
    plan: &Plan,
    ni: NodeIndex,
    attempt: u32,
    kind: &str,
    message: &str,
    retryable: bool,
    final_attempt: bool,
) -> JournalEvent {
    JournalEvent::CellFailed {
        at_unix_ms: now_unix_ms(),
        cell: plan.graph[ni].id.hex(),
        attempt,
        kind: kind.to_owned(),
        message: message.to_owned(),
        retryable,
        final_attempt,
    }
}

fn release(
    inflight: &mut HashMap<NodeIndex, (tokio::task::JoinHandle<()>, Vec<String>)>,
    busy: &mut HashSet<String>,
    ni: NodeIndex,
) {
    if let Some((_, res)) = inflight.remove(&ni) {
        for r in res {
            busy.remove(&r);
        }
    }
}

/// The GPU index of a resource such as `local:gpu0` or `gpu3` (used with the local sampler).
pub fn gpu_index(resource: &str) -> Option<u32> {
    crate::plan::resource_gpu(resource)
}

/// The telemetry source of a campaign and the sampler id of every GPU resource: local GPUs
/// through the manifest's source, and each endpoint with a `gpu_metrics_url` through its
/// host's dcgm-exporter.
fn telemetry_sources(
    plan: &Plan,
    local: Box<dyn crate::telemetry::GpuSource>,
) -> (Box<dyn crate::telemetry::GpuSource>, HashMap<String, u32>) {
    let mut remotes: Vec<Box<dyn crate::telemetry::GpuSource>> = Vec::new();
    let mut urls: Vec<String> = Vec::new();
    let mut ids: HashMap<String, u32> = HashMap::new();
    for rp in &plan.reports {
        for e in &rp.manifest.spec.endpoints {
            let Some(gpu) = gpu_index(&e.resource) else {
                continue;
            };
            match &e.gpu_metrics_url {
                Some(url) => {
                    let k = match urls.iter().position(|u| u == url) {
                        Some(k) => Some(k),
                        None => match crate::telemetry::DcgmSource::new(url) {
                            Ok(src) => {
                                urls.push(url.clone());
                                remotes.push(Box::new(src));
                                Some(urls.len() - 1)
                            }
                            Err(err) => {
                                tracing::warn!(
                                    "endpoint `{}`: dcgm-exporter {url}: {err}; its GPU telemetry will be null",
                                    e.id
                                );
                                None
                            }
                        },
                    };
                    if let Some(k) = k {
                        ids.insert(
                            e.resource.clone(),
                            crate::telemetry::RoutedSource::remote_id(k, gpu),
                        );
                    }
                }
                None => {
                    ids.entry(e.resource.clone()).or_insert(gpu);
                }
            }
        }
    }
    (
        Box::new(crate::telemetry::RoutedSource::new(local, remotes)),
        ids,
    )
}

/// Writes `provenance.parquet` in the campaign directory: one row per endpoint × model with
/// the server version, model digest and the GPU behind the endpoint's resource. Written to
/// a temporary name, then renamed; a failure is logged, never fatal.
async fn write_provenance(
    plan: &Plan,
    runner: &Runner,
    sampler: &crate::telemetry::Sampler,
    gpu_ids: &HashMap<String, u32>,
    campaign: &Campaign,
    name: &str,
) {
    let devices = sampler.devices();
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for rp in &plan.reports {
        let spec = &rp.manifest.spec;
        for e in &spec.endpoints {
            let Some(client) = runner.client(&e.url) else {
                continue;
            };
            let version = client.version().await.ok();
            let emulated = client.is_chimera_emulator().await;
            let gpu = gpu_ids
                .get(&e.resource)
                .and_then(|i| devices.iter().find(|d| d.index == *i));
            for m in &spec.models {
                if !seen.insert((e.url.clone(), m.tag.clone())) {
                    continue;
                }
                rows.push(table::ProvenanceRow {
                    campaign: name.to_owned(),
                    endpoint: e.id.clone(),
                    url: e.url.clone(),
                    host: e
                        .url
                        .split("//")
                        .nth(1)
                        .and_then(|h| h.rsplit_once(':'))
                        .map(|(h, _)| super::managed::provenance_host(h, e.managed.is_some())),
                    os: Some(std::env::consts::OS.to_owned()),
                    gpu_name: gpu.and_then(|g| g.name.clone()),
                    gpu_uuid: gpu.and_then(|g| g.uuid.clone()),
                    driver: gpu.and_then(|g| g.driver_version.clone()),
                    cuda_driver_version: gpu.and_then(|g| g.cuda_driver_version.clone()),
                    server_kind: if emulated {
                        "emulator".to_owned()
                    } else {
                        e.kind.to_string()
                    },
                    server_version: version.clone(),
                    model_tag: Some(m.tag.clone()),
                    model_digest: client.model_digest(&m.tag).await.ok().flatten(),
                    chimera_version: env!("CARGO_PKG_VERSION").to_owned(),
                    git_sha: None,
                });
            }
        }
    }
    let bytes = match table::provenance_part(&rows) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("cannot encode provenance: {e}");
            return;
        }
    };
    let dir = campaign.dir().to_path_buf();
    let tmp = dir.join(".tmp-provenance.parquet");
    let dst = dir.join("provenance.parquet");
    let res = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &dst));
    if let Err(e) = res {
        tracing::warn!("cannot write {}: {e}", dst.display());
    }
}

/// The environment fingerprint of the cache: server versions and model digests of every
/// endpoint. `None` when an endpoint does not answer (no reuse without knowing what ran).
async fn fingerprint(plan: &Plan, runner: &Runner) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for rp in &plan.reports {
        let spec = &rp.manifest.spec;
        for e in &spec.endpoints {
            let client = runner.client(&e.url)?;
            let version = match client.version().await {
                Ok(v) => v,
                Err(err) => {
                    tracing::warn!(
                        "endpoint `{}` ({}) did not report its version ({}); the shared cache is not used",
                        e.id,
                        e.url,
                        err.message
                    );
                    return None;
                }
            };
            parts.push(format!("{}={}", e.url, version));
            for m in &spec.models {
                let digest = client
                    .model_identity(&m.tag)
                    .await
                    .unwrap_or_else(|| "absent".into());
                parts.push(format!("{}:{}={}", e.url, m.tag, digest));
            }
        }
    }
    parts.push("gpus=unknown".into());
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Some(Cache::fingerprint(&refs))
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    plan: Arc<Plan>,
    ni: NodeIndex,
    sampler: Arc<crate::telemetry::Sampler>,
    gpu_ids: Arc<HashMap<String, u32>>,
    runner: Arc<Runner>,
    managed: Arc<ManagedServers>,
    campaign: Arc<Campaign>,
    cache: Arc<Option<(Cache, String)>>,
    isolated: IsolatedResults,
    cell_timeout: Option<Duration>,
    campaign_name: String,
    tx: mpsc::UnboundedSender<Event>,
) {
    let node = plan.graph[ni].clone();
    let id = node.id.hex();
    let spec = &plan.reports[node.report as usize].manifest.spec;
    // The shared cache first.
    if let Some((cache, fp)) = cache.as_ref()
        && let Some(dir) = cache.lookup(fp, &id)
    {
        let c2 = campaign.clone();
        let id2 = id.clone();
        let cached_dir = dir.clone();
        let adopted = tokio::task::spawn_blocking(move || c2.adopt_cached(&id2, &dir)).await;
        if let Ok(Ok(outcome)) = adopted {
            let iso = std::fs::read(dir_manifest(&cached_dir))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|m| m.get("meta").and_then(CellMeta::isolated_of));
            let _ = tx.send(Event::Committed {
                ni,
                attempt: 0,
                record: None,
                iso,
                cached: true,
                duplicate: matches!(outcome, CommitOutcome::AlreadyCommitted),
            });
            return;
        }
    }
    let policy = &spec.retry;
    let urls = super::managed::node_urls(&plan, ni);
    let mut attempt = 1u32;
    let record = loop {
        // A managed server of the cell that has died is started again first.
        match managed.ensure_alive(&urls).await {
            Ok(restarted) => {
                for r in restarted {
                    runner.forget_loaded(&r.url).await;
                    let _ = tx.send(Event::ServerRestarted {
                        endpoint: r.endpoint,
                        exit: r.exit,
                    });
                }
            }
            Err(ManagedError::Interrupted) => return,
            Err(e) => {
                let _ = tx.send(Event::Failed {
                    ni,
                    attempt,
                    kind: "server_down".into(),
                    message: e.to_string(),
                    retryable: false,
                });
                return;
            }
        }
        let _ = tx.send(Event::Started { ni, attempt });
        let gpus: Vec<u32> = resources(&plan, ni)
            .iter()
            .filter_map(|r| gpu_ids.get(r).copied())
            .collect();
        sampler.begin(&id, &gpus);
        let run = runner.run_cell(&plan, ni, &isolated);
        let outcome = match cell_timeout {
            Some(t) => tokio::time::timeout(t, run).await.map_err(|_| {
                format!(
                    "the cell exceeded its time limit of {:.0} s",
                    t.as_secs_f64()
                )
            }),
            None => Ok(run.await),
        };
        let (s2, id2) = (sampler.clone(), id.clone());
        let samples = tokio::task::spawn_blocking(move || s2.end(&id2))
            .await
            .map(|cs| cs.samples)
            .unwrap_or_default();
        // Samples that read nothing (no GPU, no library) are not telemetry.
        let samples: Vec<_> = samples.into_iter().filter(|s| s.has_reading()).collect();
        // One retry decision for a failed cell and a cell that ran out of time.
        let (kind, message, agents) = match outcome {
            Ok(mut record) if record.ok() => {
                record.attempt = attempt;
                if !samples.is_empty() {
                    record.telemetry = Some(crate::telemetry::aggregate(&samples));
                    record.gpu_samples = samples;
                }
                break record;
            }
            Ok(record) => {
                let kind = record.error_kind.unwrap_or(ErrorKind::HttpStatus);
                // `cells.error` reads "<kind>: <message>"; the journal and the progress line
                // carry the kind on its own, so the message goes without it.
                let error = record.error.clone().unwrap_or_default();
                let message = error
                    .strip_prefix(kind.name())
                    .and_then(|m| m.strip_prefix(": "))
                    .map_or(error.clone(), str::to_owned);
                (kind, message, record.agents)
            }
            Err(message) => (ErrorKind::Timeout, message, Vec::new()),
        };
        let mut retryable = retry_class(kind).is_some_and(|c| policy.retry_on.contains(&c));
        // A managed server that died mid-cell: a transport failure, retried (when the policy
        // retries connection failures) after the restart at the top of the loop.
        let dead = managed.exited(&urls, Duration::from_millis(200)).await;
        let message = if dead.is_empty() {
            message
        } else {
            retryable |= policy.retry_on.contains(&RetryableError::Connect);
            format!("{message} ({})", dead.join("; "))
        };
        if retryable && attempt <= policy.retries {
            // The server may have restarted or reloaded: warm it again.
            for a in &agents {
                if let Some(e) = spec.endpoints.iter().find(|e| e.id == a.endpoint) {
                    runner.forget_loaded(&e.url).await;
                }
            }
            let delay = backoff(policy, attempt, &id);
            let _ = tx.send(Event::Retrying {
                ni,
                attempt,
                kind: kind.name().into(),
                message,
                delay,
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
            continue;
        }
        let _ = tx.send(Event::Failed {
            ni,
            attempt,
            kind: kind.name().into(),
            message,
            retryable,
        });
        return;
    };
    // Commit: encode, write, rename (blocking I/O off the async workers). A cell that ran but
    // cannot be committed fails for good; what is already committed is untouched.
    let commit_failed = |message: String| {
        let _ = tx.send(Event::Failed {
            ni,
            attempt,
            kind: "commit_failed".into(),
            message,
            retryable: false,
        });
    };
    let parts = match table::cell_parts(&record, &campaign_name) {
        Ok(p) => p,
        Err(e) => {
            commit_failed(format!("cannot encode the cell's tables: {e}"));
            return;
        }
    };
    let meta = CellMeta::of(&record).to_value();
    let c2 = campaign.clone();
    let id2 = id.clone();
    let committed =
        tokio::task::spawn_blocking(move || c2.commit_cell(&id2, attempt, &parts, &meta)).await;
    match committed {
        Ok(Ok(outcome)) => {
            if let (Some((cache, fp)), CommitOutcome::Committed(path)) = (cache.as_ref(), &outcome)
                && let Err(e) = cache.insert(fp, &id, path)
            {
                tracing::warn!("cannot add cell {id} to the shared cache: {e}");
            }
            let duplicate = matches!(outcome, CommitOutcome::AlreadyCommitted);
            let iso = isolated_result(&record);
            let _ = tx.send(Event::Committed {
                ni,
                attempt,
                record: Some(Box::new(record)),
                iso,
                cached: false,
                duplicate,
            });
        }
        Ok(Err(e)) => {
            commit_failed(format!("commit failed: {e}"));
        }
        Err(e) => {
            commit_failed(format!("commit task failed: {e}"));
        }
    }
}

fn dir_manifest(dir: &std::path::Path) -> PathBuf {
    dir.join("MANIFEST.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_deterministically() {
        let p = RetryPolicy {
            jitter: false,
            backoff_ms: 100,
            max_backoff_ms: 1000,
            ..RetryPolicy::default()
        };
        assert_eq!(backoff(&p, 1, "a"), Duration::from_millis(100));
        assert_eq!(backoff(&p, 2, "a"), Duration::from_millis(200));
        assert_eq!(backoff(&p, 5, "a"), Duration::from_millis(1000));
        let j = RetryPolicy { jitter: true, ..p };
        let d = backoff(&j, 2, "abc");
        assert!(
            d >= Duration::from_millis(100) && d < Duration::from_millis(300),
            "{d:?}"
        );
        assert_eq!(d, backoff(&j, 2, "abc"));
    }

    #[test]
    fn retry_classes_follow_the_policy_vocabulary() {
        assert_eq!(
            retry_class(ErrorKind::ConnectionRefused),
            Some(RetryableError::Connect)
        );
        assert_eq!(
            retry_class(ErrorKind::QueueFull),
            Some(RetryableError::ServerError)
        );
        assert_eq!(
            retry_class(ErrorKind::Truncated),
            Some(RetryableError::Stream)
        );
        assert_eq!(retry_class(ErrorKind::ModelNotFound), None);
        assert_eq!(retry_class(ErrorKind::BadRequest), None);
    }
}
