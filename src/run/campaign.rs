//! The campaign: runs a plan into a crash-safe store, resuming what is committed.
//!
//! [`run_campaign`] opens the store, sets aside the cells `--force` selects, starts the
//! managed servers ([`crate::server`]), checks the endpoints and their models, wires GPU
//! telemetry, writes provenance and hands the cells still to run to the scheduler loop
//! (`scheduler.rs`), whose typed events feed the journal, the summary and the progress
//! display. Ctrl-C stops starting cells, cancels the ones in flight and keeps every
//! committed cell.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use petgraph::graph::NodeIndex;
use tokio::sync::mpsc;

use super::cells::{first_settings, is_cell};
use super::events::RunEvent;
use super::fingerprint::fingerprint;
use super::gpu_telemetry::start_sampler;
use super::preflight::{check_endpoints, check_models, check_programs};
use super::progress::Progress;
use super::provenance::write_provenance;
use super::scheduler::{Scheduler, Sinks};
use super::sinks::JournalSink;
use super::worker::WorkerContext;
use super::{IsolatedResults, RunOptions, Runner};
use crate::plan::{NodeKind, Plan};
use crate::plan::{ShardBy, ShardSpec};
use crate::record::CellMeta;
use crate::server::{ManagedError, ManagedServers};
use crate::store::{
    Cache, Campaign, CampaignInfo, Committed, JournalEvent, ManifestEntry, OpenAs, ShardRecord,
};
use crate::util::clock::now_unix_ms;

pub use super::error::CampaignError;
pub use super::options::{CampaignOptions, CampaignSummary};

/// Runs the plan into the campaign store. Returns what happened; cells that failed for good
/// are in the summary (and the journal), everything committed stays committed. The servers
/// the manifests ask chimera to manage are started first and stopped at the end, whatever
/// happened (success, an error, Ctrl-C / SIGTERM); see [`crate::server`].
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
        summary.server_setting_restarts = servers.setting_restarts();
        summary
    })
}

/// Opens the campaign (refusing one that holds imported data) and sets aside the committed
/// cells `--force` selects.
fn open_campaign(
    plan: &Plan,
    cells: &[NodeIndex],
    manifests: Vec<ManifestEntry>,
    opts: &CampaignOptions,
    shard: Option<ShardRecord>,
) -> Result<Arc<Campaign>, CampaignError> {
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
    let how = match shard {
        None => OpenAs::Whole,
        Some(record) => OpenAs::Shard(record),
    };
    let sharded = matches!(how, OpenAs::Shard(_));
    let campaign = Arc::new(Campaign::open_as(&opts.data, &opts.name, info, how)?);
    for sel in &opts.force {
        let hits: Vec<NodeIndex> = cells
            .iter()
            .copied()
            .filter(|&ni| sel.selects(plan, ni))
            .collect();
        // A shard holds part of the plan: a selector may pick cells of other shards only.
        if hits.is_empty()
            && sharded
            && plan
                .graph
                .node_indices()
                .any(|ni| is_cell(plan, ni) && sel.selects(plan, ni))
        {
            continue;
        }
        if hits.is_empty() {
            return Err(CampaignError::Selector(sel.to_string()));
        }
        let mut removed = 0;
        for ni in hits {
            if campaign.remove_cell(&plan.graph[ni].id.hex())? {
                removed += 1;
            }
        }
        tracing::info!("--force {sel}: {removed} committed cell(s) set aside to run again");
    }
    Ok(campaign)
}

/// The cells already committed, and the isolated baselines they recorded.
fn committed_cells(
    plan: &Plan,
    cells: &[NodeIndex],
    committed: &Committed,
) -> (HashSet<NodeIndex>, IsolatedResults) {
    let mut done: HashSet<NodeIndex> = HashSet::new();
    let mut isolated: IsolatedResults = HashMap::new();
    for &ni in cells {
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
    (done, isolated)
}

/// `campaign `x` in DIR: 3 committed, 5 to run`, with the cell directories set aside.
fn announce(opts: &CampaignOptions, done: usize, to_run: usize, committed: &Committed) {
    let _ = writeln!(
        std::io::stderr(),
        "campaign `{}` in {}: {} committed, {} to run{}",
        opts.name,
        opts.data.join(&opts.name).display(),
        done,
        to_run,
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
}

/// Starts the managed servers (and pulls their models) before the health check, then checks
/// every endpoint and model. An interruption while starting is journaled.
async fn start_and_check(
    plan: &Plan,
    runner: &Runner,
    servers: &ManagedServers,
    campaign: &Arc<Campaign>,
    run_id: &str,
    cancel: &tokio::sync::watch::Receiver<bool>,
    pending: &[NodeIndex],
) -> Result<(), CampaignError> {
    // Before any server starts (minutes): a missing agent program is a quick refusal.
    check_programs(plan)?;
    let initial = first_settings(plan, pending);
    if let Err(e) = servers
        .start(plan, campaign, cancel.clone(), &initial)
        .await
    {
        if matches!(e, ManagedError::Interrupted) {
            campaign.journal(&JournalEvent::Interrupted {
                at_unix_ms: now_unix_ms(),
                run_id: run_id.to_owned(),
            })?;
        }
        return Err(e.into());
    }
    check_endpoints(plan, runner).await?;
    check_models(plan, runner).await
}

async fn campaign_body(
    plan: Arc<Plan>,
    manifests: Vec<ManifestEntry>,
    opts: &CampaignOptions,
    run_opts: &RunOptions,
    cancel: tokio::sync::watch::Receiver<bool>,
    servers: &Arc<ManagedServers>,
    started: &mut Option<(Arc<Campaign>, String)>,
) -> Result<CampaignSummary, CampaignError> {
    let (cells, shard) = match opts.shard {
        None => (
            plan.order
                .iter()
                .copied()
                .filter(|&ni| is_cell(&plan, ni))
                .collect(),
            None,
        ),
        Some((spec, by)) => {
            let (cells, record) = shard_cells(&plan, spec, by);
            (cells, Some(record))
        }
    };
    let campaign = open_campaign(&plan, &cells, manifests, opts, shard)?;
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
    let (mut done, isolated) = committed_cells(&plan, &cells, &committed);
    if opts.shard.is_some() {
        rewarm_shard(&plan, &cells, &mut done);
    }
    let pending: Vec<NodeIndex> = cells
        .iter()
        .copied()
        .filter(|ni| !done.contains(ni))
        .collect();
    let summary = CampaignSummary {
        total: cells.len(),
        committed_before: done.len(),
        ..CampaignSummary::default()
    };
    announce(opts, done.len(), pending.len(), &committed);
    let run_id = match campaign.shard() {
        None => format!("{:x}", (now_unix_ms() as u64)),
        Some(s) => format!("{:x}-shard-{}", (now_unix_ms() as u64), s.dir_name()),
    };
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
    start_and_check(
        &plan, &runner, servers, &campaign, &run_id, &cancel, &pending,
    )
    .await?;
    // GPU telemetry: one sampler thread per campaign (the first report's settings).
    let (sampler, gpu_ids) = start_sampler(&plan, opts.fake_gpus, opts.fake_gpu_throttle);
    // The digests earlier runs measured stay the campaign's (a model re-pulled since then
    // makes the cells of this run suspect) unless every cell is measured again;
    // `provenance.parquet` then says what runs now.
    let fresh = opts.force.contains(&super::ForceSelector::All);
    runner.learn_earlier_digests(campaign.dir(), fresh);
    write_provenance(&plan, &runner, &sampler, &gpu_ids, &campaign, &opts.name).await;
    if let Some(s) = campaign.shard() {
        tracing::info!("shard {s}: {} cells to run", pending.len());
    }
    // `--force` means "measure again": the shared cache is not consulted in that run.
    let cache = if opts.use_cache && opts.force.is_empty() {
        fingerprint(&plan, &runner)
            .await
            .map(|fp| (shared_cache.clone(), fp))
    } else {
        None
    };

    let (tx, rx) = mpsc::unbounded_channel::<RunEvent>();
    let ctx = Arc::new(WorkerContext {
        plan: plan.clone(),
        sampler: sampler.clone(),
        scraper: Arc::new(crate::telemetry::ServerScraper::new()),
        gpu_ids,
        runner,
        managed: servers.clone(),
        campaign: campaign.clone(),
        cache,
        cell_timeout: opts.cell_timeout,
        campaign_name: opts.name.clone(),
        tx,
    });
    let sinks = Sinks {
        journal: JournalSink { campaign, run_id },
        progress: Progress::new(pending.len(), opts.progress),
        summary,
    };
    let mut scheduler = Scheduler::new(plan, pending, done, isolated, opts.fail_fast, sinks);
    let started_at = Instant::now();
    scheduler.run(&ctx, rx, cancel).await?;
    drop(ctx);
    if let Ok(s) = Arc::try_unwrap(sampler) {
        s.stop();
    }
    let summary = scheduler.finish()?;
    tracing::info!(
        "campaign finished in {:.1} s",
        started_at.elapsed().as_secs_f64()
    );
    Ok(summary)
}

/// The nodes shard `spec` runs (its measured cells and the warm-ups they need, in schedule
/// order) and its record.
fn shard_cells(plan: &Plan, spec: ShardSpec, by: ShardBy) -> (Vec<NodeIndex>, ShardRecord) {
    let split = crate::plan::shard::split(plan, spec.count, by);
    let nodes = split.nodes(plan, spec.index);
    let record = ShardRecord {
        index: spec.index,
        count: spec.count,
        by,
        work: split.work[spec.index as usize],
        split: split.fingerprint().to_owned(),
        cells: nodes
            .iter()
            .filter(|&&ni| split.shard_of(ni).is_some())
            .map(|&ni| plan.graph[ni].id.hex())
            .collect(),
        warmups: nodes
            .iter()
            .filter(|&&ni| split.shard_of(ni).is_none())
            .map(|&ni| plan.graph[ni].id.hex())
            .collect(),
        host: crate::store::host_name(),
        pid: std::process::id(),
        started_at_unix_ms: now_unix_ms(),
        slurm_job: crate::store::slurm_job(),
    };
    let _ = writeln!(
        std::io::stderr(),
        "shard {spec} (by {}): {} of the plan's cells, expected work {} of {} requests",
        by.name(),
        record.cells.len(),
        record.work,
        split.work.iter().sum::<u64>()
    );
    (nodes, record)
}

/// A shard warms its own servers: the warm-ups its pending cells need run again even when
/// another shard (or an earlier run) committed them. A shard with nothing left to measure
/// runs nothing.
fn rewarm_shard(plan: &Plan, cells: &[NodeIndex], done: &mut HashSet<NodeIndex>) {
    let needed: HashSet<NodeIndex> = cells
        .iter()
        .filter(|&ni| !done.contains(ni) && plan.graph[*ni].kind != NodeKind::Warmup)
        .flat_map(|&ni| plan.deps(ni).collect::<Vec<_>>())
        .filter(|&d| plan.graph[d].kind == NodeKind::Warmup)
        .collect();
    done.retain(|ni| !needed.contains(ni));
}
