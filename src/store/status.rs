//! `chimera status`: what a campaign holds, what failed and why, and what a resume would do.
//! Reads the store without taking its lock, so it works while a run is going on.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::campaign::{CampaignInfo, open_existing};
use super::cells::{Committed, Verify};
use super::error::StoreError;
use super::journal::JournalEvent;
use crate::plan::{NodeKind, Plan};

/// Errors of `chimera status`.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manifests recorded in the campaign no longer plan.
    #[error("the manifests recorded in campaign `{campaign}` do not plan any more:\n{message}")]
    Plan {
        /// Campaign.
        campaign: String,
        /// Why.
        message: String,
    },
    /// No campaign given and none or several found.
    #[error("{0}")]
    Choose(String),
}

/// Campaign names under a data directory (directories holding a `campaign.json`).
pub fn campaigns(data: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join("campaign.json").is_file())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Rebuilds the plan from the manifest texts recorded in the campaign: for each report, the
/// manifest it was last run with (`CampaignInfo::current_manifests`).
pub fn replan(info: &CampaignInfo) -> Result<Plan, String> {
    let mut manifests = Vec::new();
    let mut errors = String::new();
    for e in info.current_manifests() {
        match crate::manifest::from_bytes(Path::new(&e.path), e.text.as_bytes()) {
            Ok(m) => manifests.push(m),
            Err(err) => {
                let _ = writeln!(errors, "{err}");
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    crate::plan::build_loaded(manifests).map_err(|e| e.to_string())
}

/// Latest final failure per cell: (kind, message, attempt).
type Failures = HashMap<String, (String, String, u32)>;

/// The campaign `name` names, or the only one under `data`.
fn choose(data: &Path, name: Option<&str>) -> Result<String, StatusError> {
    Ok(match name {
        Some(n) => n.to_owned(),
        None => {
            let all = campaigns(data);
            match all.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(StatusError::Choose(format!(
                        "no campaign in `{}`\n  = help: run `chimera run <manifest> --data {}` first, or pass the right --data",
                        data.display(),
                        data.display()
                    )));
                }
                many => {
                    return Err(StatusError::Choose(format!(
                        "`{}` holds {} campaigns: {}\n  = help: pick one with --campaign NAME",
                        data.display(),
                        many.len(),
                        many.join(", ")
                    )));
                }
            }
        }
    })
}

/// How each run ended, and the latest final failure per cell (a later commit clears it).
fn read_journal(events: &[JournalEvent]) -> (Vec<(&str, RunEnd)>, Failures) {
    // Latest final failure per cell (a later commit clears it).
    let mut last_failure: Failures = HashMap::new();
    // How each run ended: finished, interrupted (Ctrl-C / SIGTERM), or without a word
    // (killed, crashed, or still running).
    let mut runs: Vec<(&str, RunEnd)> = Vec::new();
    for ev in events {
        match ev {
            JournalEvent::Started { run_id, .. } => runs.push((run_id, RunEnd::Silent)),
            JournalEvent::Interrupted { run_id, .. } => {
                mark_run(&mut runs, run_id, RunEnd::Interrupted);
            }
            JournalEvent::Finished { run_id, .. } => {
                mark_run(&mut runs, run_id, RunEnd::Finished);
            }
            JournalEvent::Aborted { run_id, .. } => {
                mark_run(&mut runs, run_id, RunEnd::Error);
            }
            JournalEvent::CellFailed {
                cell,
                kind,
                message,
                attempt,
                final_attempt: true,
                ..
            } => {
                last_failure.insert(cell.clone(), (kind.clone(), message.clone(), *attempt));
            }
            JournalEvent::CellCommitted { cell, .. } => {
                last_failure.remove(cell);
            }
            _ => {}
        }
    }
    (runs, last_failure)
}

/// The status report of one campaign, as text.
/// Also returns how many cells a resume would run (0: complete).
pub fn status(
    data: &Path,
    name: Option<&str>,
    verify: bool,
) -> Result<(String, usize), StatusError> {
    let name = choose(data, name)?;
    let view = open_existing(data, &name)?;
    let info = view.info().clone();
    // What a plain resume keeps (sizes checked) and, with --verify, what survives the
    // checksums too; cells in the first set but not the second are what only
    // `chimera run --verify` sets aside.
    let by_size = view.committed()?;
    let committed = if verify {
        view.verify(Verify::Full)?
    } else {
        by_size.clone()
    };
    let checksum_only: Vec<&std::path::PathBuf> = committed
        .broken
        .iter()
        .filter(|p| !by_size.broken.contains(p))
        .collect();
    // The campaign's journal and its shards': one campaign.
    let events = view.all_journal_events()?;
    let plan = replan(&info).map_err(|message| StatusError::Plan {
        campaign: name.clone(),
        message,
    })?;

    let (runs, last_failure) = read_journal(&events);
    let mut out = String::new();
    let shards = shards_of(view.dir(), &plan, &committed);
    let running = match running_holder(view.dir()) {
        Some(h) => Some((1, h)),
        None => {
            let live: Vec<String> = shards
                .iter()
                .filter(|s| s.running.is_some())
                .map(|s| s.record.spec().to_string())
                .collect();
            (!live.is_empty()).then(|| (live.len(), format!("shards {}", live.join(", "))))
        }
    };
    header_lines(&mut out, data, &name, &info, &runs, running);
    broken_lines(&mut out, &by_size.broken, &checksum_only);
    let (total_todo, total_failed) = report_tables(&mut out, &plan, &committed, &last_failure);
    failure_lines(&mut out, &plan, &committed, &last_failure);
    shard_lines(&mut out, data, &name, &shards);
    let _ = writeln!(out);
    resume_line(&mut out, &plan, &checksum_only, total_todo, total_failed);
    Ok((out, total_todo))
}

/// The first line: the campaign and how its runs ended.
fn header_lines(
    out: &mut String,
    data: &Path,
    name: &str,
    info: &CampaignInfo,
    runs: &[(&str, RunEnd)],
    running: Option<(usize, String)>,
) {
    let count = |how: RunEnd| runs.iter().filter(|(_, h)| *h == how).count();
    let silent = count(RunEnd::Silent);
    let _ = writeln!(
        out,
        "campaign `{name}` in {}: chimera {}, {} run(s) started: {} finished, {} stopped by \
         an error, {} interrupted (Ctrl-C / SIGTERM), {}",
        data.join(name).display(),
        info.chimera_version,
        runs.len(),
        count(RunEnd::Finished),
        count(RunEnd::Error),
        count(RunEnd::Interrupted),
        match (&running, silent) {
            (Some((live, holder)), n) if n >= *live => format!(
                "{} ended without a word (killed or crashed), {live} running now ({holder})",
                n - live
            ),
            (_, n) => format!("{n} ended without a word (killed or crashed)"),
        }
    );
}

/// The cell directories that failed verification (sizes, and with `--verify` checksums).
fn broken_lines(out: &mut String, by_size: &[PathBuf], checksum_only: &[&PathBuf]) {
    let list = |v: &[&std::path::PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // "y"/"ies" and "it"/"them" for `n` cell directories.
    let plural = |n: usize| if n == 1 { ("y", "it") } else { ("ies", "them") };
    if !by_size.is_empty() {
        let (y, it) = plural(by_size.len());
        let _ = writeln!(
            out,
            "  {} cell director{y} failed verification (missing or short files); the next \
             `chimera run` sets {it} aside and measures {it} again: {}",
            by_size.len(),
            list(&by_size.iter().collect::<Vec<_>>())
        );
    }
    if !checksum_only.is_empty() {
        let (y, it) = plural(checksum_only.len());
        let _ = writeln!(
            out,
            "  {} cell director{y} failed checksum verification (SHA-256 differs): {}\n  \
             = help: `chimera run --verify` (same manifests and --data) sets {it} aside as \
             cells/.broken-<id>-<n>/ and measures {it} again; a plain `chimera run` checks sizes \
             only and keeps {it}",
            checksum_only.len(),
            list(checksum_only),
        );
    }
}

/// Per report: cells by kind and by scenario (total, committed, failed, remaining). Returns
/// the cells a resume would run and how many of them failed before.
fn report_tables(
    out: &mut String,
    plan: &Plan,
    committed: &Committed,
    last_failure: &Failures,
) -> (usize, usize) {
    let mut total_todo = 0;
    let mut total_failed = 0;
    for (ri, rp) in plan.reports.iter().enumerate() {
        // (kind or scenario) → (total, committed, failed)
        let mut by_kind: BTreeMap<NodeKind, (usize, usize, usize)> = BTreeMap::new();
        let mut by_scenario: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for n in plan.graph.node_weights() {
            if n.report as usize != ri || matches!(n.kind, NodeKind::Analysis | NodeKind::Report) {
                continue;
            }
            let id = n.id.hex();
            let is_done = committed.ids.contains(&id);
            let is_failed = !is_done && last_failure.contains_key(&id);
            let e = by_kind.entry(n.kind).or_default();
            e.0 += 1;
            e.1 += usize::from(is_done);
            e.2 += usize::from(is_failed);
            if n.config.is_some() {
                let s = by_scenario
                    .entry(plan.cell_config(n).scenario.to_string())
                    .or_default();
                s.0 += 1;
                s.1 += usize::from(is_done);
                s.2 += usize::from(is_failed);
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{}  {}", rp.report, rp.manifest.spec.title);
        let _ = writeln!(
            out,
            "  {:<24} {:>7} {:>10} {:>7} {:>10}",
            "cells", "total", "committed", "failed", "remaining"
        );
        for (k, (t, c, f)) in &by_kind {
            let _ = writeln!(
                out,
                "  {:<24} {t:>7} {c:>10} {f:>7} {:>10}",
                k.name(),
                t - c
            );
            total_todo += t - c;
            total_failed += f;
        }
        if !by_scenario.is_empty() {
            let _ = writeln!(out, "  {:<24}", "per scenario");
            for (s, (t, c, f)) in &by_scenario {
                let _ = writeln!(out, "    {s:<22} {t:>7} {c:>10} {f:>7} {:>10}", t - c);
            }
        }
    }
    (total_todo, total_failed)
}

/// The cells whose last attempt failed for good, with what went wrong.
fn failure_lines(out: &mut String, plan: &Plan, committed: &Committed, last_failure: &Failures) {
    let mut failures: Vec<(&String, &(String, String, u32))> = last_failure
        .iter()
        .filter(|(id, _)| !committed.ids.contains(*id))
        .collect();
    failures.sort();
    if !failures.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "failed cells (last attempt):");
        let labels: HashMap<String, String> = plan
            .graph
            .node_weights()
            .map(|n| {
                let what = if n.config.is_none() {
                    n.kind.name().to_owned()
                } else {
                    format!(
                        "{} {} rep {}",
                        n.kind.name(),
                        plan.cell_config(n).id,
                        n.repetition
                    )
                };
                (n.id.hex(), what)
            })
            .collect();
        for (id, (kind, message, attempt)) in failures {
            let what = labels
                .get(id)
                .cloned()
                .unwrap_or_else(|| "(not in the current plan)".into());
            let _ = writeln!(
                out,
                "  {}  {what}  attempt {attempt}: {kind}: {message}",
                &id[..12.min(id.len())]
            );
        }
    }
}

/// What a resume would do.
fn resume_line(
    out: &mut String,
    plan: &Plan,
    checksum_only: &[&PathBuf],
    total_todo: usize,
    total_failed: usize,
) {
    // Cells of the plan whose directory only the checksum check rejects: a plain resume keeps
    // them, `chimera run --verify` runs them again.
    let checksum_ids: std::collections::HashSet<String> = checksum_only
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .collect();
    let checksum_todo = plan
        .graph
        .node_weights()
        .filter(|n| checksum_ids.contains(&n.id.hex()))
        .count();
    if total_todo == 0 {
        let _ = writeln!(
            out,
            "complete: every cell is committed; a resume would run nothing"
        );
    } else if checksum_todo > 0 {
        let _ = writeln!(
            out,
            "a resume with `chimera run --verify` (same manifests and --data) would run \
             {total_todo} cell(s), {total_failed} of them failed before; a plain `chimera run` \
             would run {}",
            total_todo - checksum_todo
        );
    } else {
        let _ = writeln!(
            out,
            "a resume (`chimera run` with the same manifests and --data) would run {total_todo} cell(s), {total_failed} of them failed before"
        );
    }
}

/// How a run recorded in the journal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunEnd {
    Finished,
    /// An `aborted` event: stopped on an error.
    Error,
    Interrupted,
    /// No `finished` or `interrupted` event: killed, crashed, or still running.
    Silent,
}

/// Records how the latest run with `id` ended; an interrupted run stays interrupted.
fn mark_run(runs: &mut [(&str, RunEnd)], id: &str, how: RunEnd) {
    if let Some(r) = runs.iter_mut().rev().find(|(r, _)| *r == id)
        && r.1 != RunEnd::Interrupted
    {
        r.1 = how;
    }
}

/// The holder of the campaign's lock when it is a live process on this host: the `.lock`
/// file's "pid N on HOST, …" line, checked against `/proc`. (Read, never locked: status must
/// not get in a run's way.)
fn running_holder(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".lock")).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("pid ")?;
    let (pid, rest) = rest.split_once(' ')?;
    let pid: u32 = pid.parse().ok()?;
    let host = rest.strip_prefix("on ")?.split(',').next()?.trim();
    let here = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    (host == here.trim() && Path::new(&format!("/proc/{pid}")).exists())
        .then(|| format!("pid {pid}"))
}

/// The shards of a sharded campaign: each one's state and cells, the cells two shards
/// measured, and how to finish the campaign.
fn shard_lines(out: &mut String, data: &Path, name: &str, states: &[super::ShardState]) {
    if states.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "shards ({}):", states.len());
    for s in states {
        let r = &s.record;
        let _ = write!(
            out,
            "  {:<7} {:<11} {:>13}{}{}",
            r.spec().to_string(),
            s.word(),
            format!("{}/{} cells", s.committed, r.cells.len()),
            if r.host.is_empty() {
                String::new()
            } else {
                format!("  on {}", r.host)
            },
            r.slurm_job
                .as_ref()
                .map_or_else(String::new, |j| format!(", Slurm job {j}"))
        );
        match (&s.running, &s.last_run) {
            (Some(holder), _) => {
                let _ = write!(out, " ({holder})");
            }
            (None, super::LastRun::Error(m)) if !s.done() => {
                let _ = write!(out, " (stopped by an error: {m})");
            }
            _ => {}
        }
        let _ = writeln!(out);
        if !s.done() && s.running.is_none() {
            let shown: Vec<String> = s
                .missing
                .iter()
                .take(8)
                .map(|c| {
                    let why = s
                        .failed
                        .iter()
                        .find(|(f, _)| f == c)
                        .map_or(String::new(), |(_, m)| format!(" ({m})"));
                    format!("{}{why}", &c[..12.min(c.len())])
                })
                .collect();
            let more = s.missing.len().saturating_sub(shown.len());
            let _ = writeln!(
                out,
                "          {} cell(s) left: {}{}",
                s.missing.len(),
                shown.join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                }
            );
        }
    }
    let dups: Vec<(String, &String)> = states
        .iter()
        .flat_map(|s| {
            s.duplicates
                .iter()
                .map(|c| (s.record.spec().to_string(), c))
        })
        .collect();
    if !dups.is_empty() {
        let _ = writeln!(
            out,
            "  {} measurement(s) of cells already committed were discarded (a requeued or \
             resubmitted shard ran them again); the first commit of each is kept: {}",
            dups.len(),
            dups.iter()
                .map(|(s, c)| format!("{} by {s}", &c[..12.min(c.len())]))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let unfinished: Vec<String> = states
        .iter()
        .filter(|s| !s.done() && s.running.is_none())
        .map(|s| s.record.index.to_string())
        .collect();
    let first = states.iter().find(|s| !s.done());
    if !unfinished.is_empty() {
        let _ = writeln!(
            out,
            "  = help: run the unfinished shards again: `chimera slurm resubmit --data {} \
             --campaign {name}` (Slurm), or `chimera run <manifests> --data {} --campaign \
             {name} --shard I/{}{}` for I in {}",
            data.display(),
            data.display(),
            first.map_or(0, |s| s.record.count),
            match first.map(|s| s.record.by) {
                Some(crate::plan::ShardBy::Configuration) => " --shard-by configuration",
                _ => "",
            },
            unfinished.join(", ")
        );
    }
}

/// Every shard of the campaign in `dir`: the recorded ones and those that never started.
fn shards_of(dir: &Path, plan: &Plan, committed: &Committed) -> Vec<super::ShardState> {
    let mut shards = super::shard::states(dir, &committed.ids);
    never_started(plan, committed, &mut shards);
    shards
}

/// The shards of a submission that never started (no record yet): their cells come from the
/// plan, split as the recorded shards of the same count were.
fn never_started(plan: &Plan, committed: &Committed, shards: &mut Vec<super::ShardState>) {
    let mut counts: Vec<(u32, crate::plan::ShardBy)> = shards
        .iter()
        .map(|s| (s.record.count, s.record.by))
        .collect();
    counts.sort_by_key(|c| c.0);
    counts.dedup_by_key(|c| c.0);
    for (count, by) in counts {
        let missing_indices: Vec<u32> = (0..count)
            .filter(|&i| {
                !shards
                    .iter()
                    .any(|s| s.record.count == count && s.record.index == i)
            })
            .collect();
        if missing_indices.is_empty() {
            continue;
        }
        // One split and one pass over the plan for every shard that never started.
        let split = crate::plan::shard::split(plan, count, by);
        let mut per_shard: Vec<Vec<String>> = vec![Vec::new(); count as usize];
        for &ni in &plan.order {
            if let Some(s) = split.shard_of(ni)
                && missing_indices.contains(&s)
            {
                per_shard[s as usize].push(plan.graph[ni].id.hex());
            }
        }
        for index in missing_indices {
            let cells = std::mem::take(&mut per_shard[index as usize]);
            let missing: Vec<String> = cells
                .iter()
                .filter(|c| !committed.ids.contains(*c))
                .cloned()
                .collect();
            shards.push(super::ShardState {
                committed: cells.len() - missing.len(),
                missing,
                running: None,
                last_run: super::LastRun::None,
                failed: Vec::new(),
                duplicates: Vec::new(),
                record: super::ShardRecord {
                    index,
                    count,
                    by,
                    work: split.work[index as usize],
                    split: String::new(),
                    cells,
                    warmups: Vec::new(),
                    host: String::new(),
                    pid: 0,
                    started_at_unix_ms: 0.0,
                    slurm_job: None,
                },
            });
        }
    }
    shards.sort_by_key(|s| (s.record.count, s.record.index));
}

/// Every shard of a campaign (the recorded ones, and those of a recorded shard count that
/// never started), with what is committed now.
pub fn shard_overview(data: &Path, name: &str) -> Result<Vec<super::ShardState>, StatusError> {
    let view = open_existing(data, name)?;
    let committed = view.committed()?;
    let plan = replan(view.info()).map_err(|message| StatusError::Plan {
        campaign: name.to_owned(),
        message,
    })?;
    Ok(shards_of(view.dir(), &plan, &committed))
}
