//! A worker runs one cell: from the shared cache when it is there, else measured (with
//! retries per the manifest's policy and an optional time limit), then committed. It reports
//! what happened as [`RunEvent`]s on the scheduler's channel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use petgraph::graph::NodeIndex;
use tokio::sync::mpsc;

use super::cells::{node_urls, resources};
use super::events::RunEvent;
use super::retry::{backoff, retry_class};
use super::{IsolatedResults, Runner};
use crate::backend::ErrorKind;
use crate::manifest::RetryableError;
use crate::plan::Plan;
use crate::record::{AgentRun, CellMeta, CellRecord, isolated_result};
use crate::server::{ManagedError, ManagedServers};
use crate::store::{Cache, Campaign, CommitOutcome};
use crate::table;

/// What every worker of a run shares.
pub(crate) struct WorkerContext {
    pub(crate) plan: Arc<Plan>,
    pub(crate) sampler: Arc<crate::telemetry::Sampler>,
    /// Samples the servers' Prometheus `/metrics` of the endpoints that ask for it.
    pub(crate) scraper: Arc<crate::telemetry::ServerScraper>,
    pub(crate) gpu_ids: Arc<HashMap<String, u32>>,
    pub(crate) runner: Arc<Runner>,
    pub(crate) managed: Arc<ManagedServers>,
    pub(crate) campaign: Arc<Campaign>,
    /// The shared cache and the environment fingerprint, when it is used.
    pub(crate) cache: Option<(Cache, String)>,
    pub(crate) cell_timeout: Option<Duration>,
    pub(crate) campaign_name: String,
    pub(crate) tx: mpsc::UnboundedSender<RunEvent>,
}

impl WorkerContext {
    fn send(&self, ev: RunEvent) {
        let _ = self.tx.send(ev);
    }

    fn failed(&self, ni: NodeIndex, attempt: u32, kind: &str, message: String, retryable: bool) {
        self.send(RunEvent::CellFailed {
            ni,
            attempt,
            kind: kind.into(),
            message,
            retryable,
        });
    }
}

/// Runs cell `ni` to its end (committed, cached or failed for good).
pub(crate) async fn worker(ctx: Arc<WorkerContext>, ni: NodeIndex, isolated: IsolatedResults) {
    if adopt_cached(&ctx, ni).await {
        return;
    }
    if let Some((record, attempt)) = measure(&ctx, ni, &isolated).await {
        commit(&ctx, ni, record, attempt).await;
    }
}

/// Adopts the cell from the shared cache; false when it is not there (or cannot be adopted).
async fn adopt_cached(ctx: &WorkerContext, ni: NodeIndex) -> bool {
    let id = ctx.plan.graph[ni].id.hex();
    // A shard's warm-ups warm its own servers: they run even when another shard's (or
    // another campaign's) copy is in the cache.
    if ctx.campaign.shard().is_some() && ctx.plan.graph[ni].kind == crate::plan::NodeKind::Warmup {
        return false;
    }
    let Some((cache, fp)) = ctx.cache.as_ref() else {
        return false;
    };
    let Some(dir) = cache.lookup(fp, &id) else {
        return false;
    };
    let c2 = ctx.campaign.clone();
    let cached_dir = dir.clone();
    let adopted = tokio::task::spawn_blocking(move || c2.adopt_cached(&id, &dir)).await;
    let Ok(Ok(_)) = adopted else {
        return false;
    };
    let iso = std::fs::read(dir_manifest(&cached_dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m.get("meta").and_then(CellMeta::isolated_of));
    ctx.send(RunEvent::CellCached { ni, iso });
    true
}

/// Restarts the cell's managed servers that have died or run with other `server` settings
/// than the cell's; false (the cell is over) when that
/// is impossible or the run is stopping.
async fn servers_alive(ctx: &WorkerContext, ni: NodeIndex, urls: &[String], attempt: u32) -> bool {
    // A cell's servers run with its configuration's `server` settings (isolated and
    // concurrent cells of one configuration share them); a warm-up takes them as they are.
    let settings = ctx.plan.config_of(&ctx.plan.graph[ni]).map(|c| &c.server);
    match ctx.managed.ensure_alive(urls, settings).await {
        Ok(restarted) => {
            for r in restarted {
                ctx.runner.forget_loaded(&r.url).await;
                ctx.send(RunEvent::ServerRestarted {
                    endpoint: r.endpoint,
                    exit: r.exit,
                    settings: r.settings,
                });
            }
            true
        }
        Err(ManagedError::Interrupted) => false,
        Err(e) => {
            ctx.failed(ni, attempt, "server_down", e.to_string(), false);
            false
        }
    }
}

/// One attempt: the record when the cell ran well, else the error kind, message and the
/// agents that ran.
async fn attempt_once(
    ctx: &WorkerContext,
    ni: NodeIndex,
    attempt: u32,
    isolated: &IsolatedResults,
) -> Result<CellRecord, (ErrorKind, String, Vec<AgentRun>)> {
    let id = ctx.plan.graph[ni].id.hex();
    let gpus: Vec<u32> = resources(&ctx.plan, ni)
        .iter()
        .filter_map(|r| ctx.gpu_ids.get(r).copied())
        .collect();
    let scrape = ctx
        .scraper
        .begin(super::server_metrics::scrape_targets(&ctx.plan, ni))
        .await;
    ctx.sampler.begin(&id, &gpus);
    let run = ctx.runner.run_cell(&ctx.plan, ni, isolated);
    let outcome = match ctx.cell_timeout {
        Some(t) => tokio::time::timeout(t, run).await.map_err(|_| {
            format!(
                "the cell exceeded its time limit of {:.0} s",
                t.as_secs_f64()
            )
        }),
        None => Ok(run.await),
    };
    // The GPU sampler stops first, then the final scrape runs while it winds down: the
    // server's end scrape (up to `BOUNDARY_TIMEOUT`) never stretches the GPU window.
    let s2 = ctx.sampler.clone();
    let gpu_end = tokio::task::spawn_blocking(move || s2.end(&id));
    let server_samples = scrape.end().await;
    let samples = gpu_end.await.map(|cs| cs.samples).unwrap_or_default();
    // Samples that read nothing (no GPU, no library) are not telemetry.
    let samples: Vec<_> = samples.into_iter().filter(|s| s.has_reading()).collect();
    // One retry decision for a failed cell and a cell that ran out of time.
    match outcome {
        Ok(mut record) if record.ok() => {
            record.attempt = attempt;
            record.server_samples = server_samples;
            if !samples.is_empty() {
                record.telemetry = Some(crate::telemetry::aggregate(&samples));
                record.gpu_samples = samples;
                if record.key.kind != crate::record::CellKind::Warmup {
                    super::checks::check_gpu(&mut record);
                }
            }
            Ok(record)
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
            Err((kind, message, record.agents))
        }
        Err(message) => Err((ErrorKind::Timeout, message, Vec::new())),
    }
}

/// Runs the cell's attempts until one succeeds (its record and attempt number) or the cell
/// fails for good (`None`, reported).
async fn measure(
    ctx: &WorkerContext,
    ni: NodeIndex,
    isolated: &IsolatedResults,
) -> Option<(CellRecord, u32)> {
    let node = &ctx.plan.graph[ni];
    let id = node.id.hex();
    let spec = &ctx.plan.reports[node.report as usize].manifest.spec;
    let policy = &spec.retry;
    let urls = node_urls(&ctx.plan, ni);
    let mut attempt = 1u32;
    loop {
        // A managed server of the cell that has died is started again first.
        if !servers_alive(ctx, ni, &urls, attempt).await {
            return None;
        }
        ctx.send(RunEvent::CellStarted { ni, attempt });
        let (kind, message, agents) = match attempt_once(ctx, ni, attempt, isolated).await {
            Ok(record) => return Some((record, attempt)),
            Err(e) => e,
        };
        let mut retryable = retry_class(kind).is_some_and(|c| policy.retry_on.contains(&c));
        // A managed server that died mid-cell: a transport failure, retried (when the policy
        // retries connection failures) after the restart at the top of the loop.
        let dead = ctx.managed.exited(&urls, Duration::from_millis(200)).await;
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
                    ctx.runner.forget_loaded(&e.url).await;
                }
            }
            let delay = backoff(policy, attempt, &id);
            ctx.send(RunEvent::CellRetrying {
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
        ctx.failed(ni, attempt, kind.name(), message, retryable);
        return None;
    }
}

/// Commits a measured cell: encode, write, rename (blocking I/O off the async workers). A
/// cell that ran but cannot be committed fails for good; what is already committed is
/// untouched.
async fn commit(ctx: &WorkerContext, ni: NodeIndex, mut record: CellRecord, attempt: u32) {
    let id = ctx.plan.graph[ni].id.hex();
    record.placement = placement(ctx, ni);
    let commit_failed = |message: String| ctx.failed(ni, attempt, "commit_failed", message, false);
    let parts = match table::cell_parts(&record, &ctx.campaign_name) {
        Ok(p) => p,
        Err(e) => {
            commit_failed(format!("cannot encode the cell's tables: {e}"));
            return;
        }
    };
    let meta = CellMeta::of(&record).to_value();
    let c2 = ctx.campaign.clone();
    let id2 = id.clone();
    let committed =
        tokio::task::spawn_blocking(move || c2.commit_cell(&id2, attempt, &parts, &meta)).await;
    match committed {
        Ok(Ok(outcome)) => {
            if let (Some((cache, fp)), CommitOutcome::Committed(path)) =
                (ctx.cache.as_ref(), &outcome)
                && let Err(e) = cache.insert(fp, &id, path)
            {
                tracing::warn!("cannot add cell {id} to the shared cache: {e}");
            }
            let duplicate = matches!(outcome, CommitOutcome::AlreadyCommitted);
            let iso = isolated_result(&record);
            ctx.send(RunEvent::CellFinished {
                ni,
                attempt,
                record: Box::new(record),
                iso,
                duplicate,
            });
        }
        Ok(Err(e)) => commit_failed(format!("commit failed: {e}")),
        Err(e) => commit_failed(format!("commit task failed: {e}")),
    }
}

fn dir_manifest(dir: &std::path::Path) -> PathBuf {
    dir.join("MANIFEST.json")
}

/// Where cell `ni` ran: this host, the shard, and the GPU behind its first resource.
fn placement(ctx: &WorkerContext, ni: NodeIndex) -> crate::record::CellPlacement {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let gpu = super::cells::resources(&ctx.plan, ni)
        .iter()
        .find_map(|r| ctx.gpu_ids.get(r))
        .and_then(|i| ctx.sampler.devices().into_iter().find(|d| d.index == *i));
    crate::record::CellPlacement {
        host: Some(HOST.get_or_init(crate::store::host_name).clone()),
        shard: ctx.campaign.shard().map(|s| s.to_string()),
        gpu_name: gpu.as_ref().and_then(|g| g.name.clone()),
        gpu_uuid: gpu.and_then(|g| g.uuid),
    }
}
