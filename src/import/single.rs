//! The single-agent harnesses: H5 (Rust, TR111_v2) and H2 (Python, TR109).
//!
//! ```text
//! TR111_v2  <config>/data/metrics.json      {baseline, chimera, delta}: each agent 3 runs × 2 calls
//!           (<config>_v2 is a re-run that replaced <config>)
//! TR109     run_<config>/data/metrics.json  a list of runs {baseline_results, chimera_results, …}
//!           **/*.md                         generated reports, not runs
//! ```
//!
//! A `single` cell holds both agents of one invocation and repetition k, in the manifest's
//! agent order, each `isolated` (run alone) as chimera's runner records single cells. The
//! originals ran all runs of one agent and then all runs of the other; the cell's wall time
//! is the sum of its two agents' recorded durations (what a sequential cell measures), and its
//! start is the earlier of the two agents' starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::context::{Ctx, Imported, LayoutText, RAW_FOLDER_HELP};
use super::convert::{aggregate_rows, close};
use super::error::ImportError;
use super::h6::{CallMetrics, RustAggregate, Workflow, check_aggregate, stage};
use super::tr110::PyAgent;

#[derive(Debug, Deserialize)]
struct H5File {
    baseline: H5Agent,
    chimera: H5Agent,
    #[serde(default)]
    delta: Option<H5Delta>,
}

#[derive(Debug, Deserialize)]
struct H5Agent {
    #[serde(default)]
    configuration: serde_json::Map<String, serde_json::Value>,
    llm_calls: Vec<H5Call>,
    aggregate_metrics: RustAggregate,
    workflow_runs: Vec<H5Run>,
    timestamp: String,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct H5Call {
    run_number: u32,
    stage: String,
    metrics: CallMetrics,
    #[serde(default)]
    response: Option<String>,
}

#[derive(Debug, Deserialize)]
struct H5Run {
    run_number: u32,
    #[serde(default)]
    benchmark_data_count: Option<u32>,
    workflow: Workflow,
}

#[derive(Debug, Deserialize)]
struct H5Delta {
    throughput_delta_absolute: f64,
    ttft_delta_absolute_ms: f64,
}

#[derive(Debug, Deserialize)]
struct H2Run {
    run_number: u32,
    baseline_results: H2Result,
    chimera_results: H2Result,
    performance_delta: H2Delta,
}

/// One agent's result of an H2 run. The Oct-2025 runner (TR109) stored `execution_time` and
/// `start_time`; the Nov-2025 rewrite (TR116 single add-on) an `execution_summary` instead.
#[derive(Debug, Deserialize)]
struct H2Result {
    metrics: PyAgent,
    #[serde(default)]
    benchmark_data_count: Option<u32>,
    #[serde(default)]
    execution_time: Option<f64>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    execution_summary: Option<H2Execution>,
    /// Recorded by the Nov-2025 runner only.
    #[serde(default)]
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct H2Execution {
    start_time: String,
    duration_seconds: f64,
}

impl H2Result {
    /// (start time, duration in seconds), from whichever of the two shapes the file has.
    fn timing(&self, path: &Path, key: &str) -> Result<(&str, f64), ImportError> {
        match (&self.start_time, self.execution_time, &self.execution_summary) {
            (Some(t), Some(d), _) => Ok((t, d)),
            (_, _, Some(e)) => Ok((&e.start_time, e.duration_seconds)),
            _ => Err(ImportError::Key {
                path: path.to_path_buf(),
                key: key.to_owned(),
                message: "neither `start_time` + `execution_time` nor `execution_summary`".into(),
                help: "an H2 run records when each agent started and how long it ran; restore the file".into(),
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
struct H2Delta {
    throughput_delta_absolute: f64,
    ttft_delta_absolute_ms: f64,
}

/// `<something>/data/metrics.json` files, the Markdown count, or the first unknown file.
fn classify(
    ctx: &mut Ctx,
    files: &[PathBuf],
    expected: &str,
    known: impl Fn(&Ctx, &str) -> bool,
) -> Result<Vec<(PathBuf, String)>, ImportError> {
    let mut runs = Vec::new();
    let mut unknown = Vec::new();
    let (files, markdown) = super::context::without_markdown(ctx, files);
    for (f, c) in files {
        match c.as_slice() {
            [folder, d, m] if d == "data" && m == "metrics.json" => {
                runs.push((f.clone(), folder.clone()))
            }
            _ => unknown.push(f.clone()),
        }
    }
    let text = LayoutText {
        expected,
        holds: &format!("runs are `{expected}`; Markdown reports are recognised"),
        help: RAW_FOLDER_HELP,
    };
    let any_run = runs.iter().any(|(_, folder)| known(ctx, folder));
    super::context::settle(ctx, &text, any_run, &unknown, markdown)?;
    Ok(runs)
}

/// `_v2` (any `_vN`) suffix of a re-run folder: (base name, N).
fn rerun(folder: &str) -> Option<(&str, u32)> {
    let i = folder.rfind("_v")?;
    let n: u32 = folder[i + 2..].parse().ok()?;
    Some((&folder[..i], n))
}

/// Reads TR111_v2 (H5).
pub(crate) fn read_tr111(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<Imported>, ImportError> {
    let expected = "`<config>/data/metrics.json` (e.g. `baseline_default/data/metrics.json`)";
    let known = |ctx: &Ctx, folder: &str| {
        let base = rerun(folder).map_or(folder, |(b, _)| b);
        ctx.configs()
            .iter()
            .any(|c| *c.id == *folder || *c.id == *base)
    };
    let found = classify(ctx, files, expected, known)?;
    let chosen = choose_tr111(ctx, found)?;
    let sleep_ms = ctx.spec().between_runs.sleep_ms as f64;
    let mut out = Vec::new();
    for (ci, (path, _, _)) in chosen {
        out.extend(read_h5(ctx, ci, &path, sleep_ms)?);
    }
    Ok(out)
}

/// One agent of an H5 invocation, prepared: its name, index, record, options, and the start
/// time of each of its runs.
type PreparedAgent<'f> = (
    &'static str,
    usize,
    &'f H5Agent,
    crate::manifest::Options,
    BTreeMap<u32, f64>,
);

/// Folder → configuration; a `_vN` re-run replaces the folder it re-ran.
fn choose_tr111(
    ctx: &mut Ctx,
    found: Vec<(PathBuf, String)>,
) -> Result<BTreeMap<usize, (PathBuf, String, u32)>, ImportError> {
    let mut chosen: BTreeMap<usize, (PathBuf, String, u32)> = BTreeMap::new();
    for (path, folder) in found {
        let dir = ctx.source.join(&folder);
        let (ci, version) = if ctx.configs().iter().any(|c| *c.id == *folder) {
            (ctx.config(&folder, &dir, "configuration folder")?, 0)
        } else if let Some((base, n)) = rerun(&folder)
            && ctx.configs().iter().any(|c| *c.id == *base)
        {
            (ctx.config(base, &dir, "configuration folder")?, n)
        } else {
            return Err(ctx
                .config(&folder, &dir, "configuration folder")
                .err()
                .unwrap_or_else(|| ImportError::Invalid {
                    path: dir.clone(),
                    message: "unknown configuration folder".into(),
                    help: String::new(),
                }));
        };
        if version > 0 {
            ctx.notes.push(format!(
                "`{folder}` is a re-run of configuration `{}` (imported as it)",
                ctx.plan.configs[ci].id
            ));
        }
        match chosen.get(&ci) {
            Some((other, of, ov)) if *ov >= version => {
                let msg = format!(
                    "`{}` is superseded by the re-run `{of}` of configuration `{}` and is not imported",
                    ctx.rel(&path).display(),
                    ctx.plan.configs[ci].id
                );
                if *ov == version {
                    return Err(ImportError::Duplicate {
                        first: other.clone(),
                        second: path,
                        config: ctx.plan.configs[ci].id.to_string(),
                        repetition: 1,
                    });
                }
                ctx.warn(msg);
            }
            Some((other, _, _)) => {
                let msg = format!(
                    "`{}` is superseded by the re-run `{folder}` of configuration `{}` and is not imported",
                    ctx.rel(other).display(),
                    ctx.plan.configs[ci].id
                );
                ctx.warn(msg);
                chosen.insert(ci, (path, folder, version));
            }
            None => {
                chosen.insert(ci, (path, folder, version));
            }
        }
    }

    Ok(chosen)
}

/// The cells of one H5 invocation (`<config>/data/metrics.json`): one per run number.
pub(super) fn read_h5(
    ctx: &mut Ctx,
    ci: usize,
    path: &Path,
    sleep_ms: f64,
) -> Result<Vec<Imported>, ImportError> {
    let path = path.to_path_buf();
    let f: H5File = ctx.read_json(&path)?;
    ctx.files += 1;
    ctx.two_agents(ci, &path, "a baseline + chimera invocation")?;
    // Per source agent: its index in the configuration, and per run k its pieces.
    let mut per_agent: Vec<PreparedAgent> = Vec::new();
    for (name, a) in [("baseline", &f.baseline), ("chimera", &f.chimera)] {
        per_agent.push(h5_agent(ctx, ci, name, a, &path, sleep_ms)?);
    }
    if let Some(d) = &f.delta {
        let tp = f.chimera.aggregate_metrics.average_tokens_per_second
            - f.baseline.aggregate_metrics.average_tokens_per_second;
        let ttft = f.baseline.aggregate_metrics.average_ttft_ms
            - f.chimera.aggregate_metrics.average_ttft_ms;
        if !close(tp, d.throughput_delta_absolute, 1e-6)
            || !close(ttft, d.ttft_delta_absolute_ms, 1e-6)
        {
            let msg = format!(
                "`{}`: `delta` ({}, {} ms) does not follow from the agents' aggregates ({tp}, {ttft} ms)",
                ctx.rel(&path).display(),
                d.throughput_delta_absolute,
                d.ttft_delta_absolute_ms
            );
            ctx.warn(msg);
        }
    }
    let mut reps: Vec<u32> = per_agent
        .iter()
        .flat_map(|(_, _, a, _, _)| a.workflow_runs.iter().map(|r| r.run_number))
        .collect();
    reps.sort_unstable();
    reps.dedup();
    let mut out = Vec::new();
    for k in reps {
        let rec = h5_cell(ctx, ci, k, &path, &per_agent)?;
        out.push(ctx.imported(&path, rec));
    }
    Ok(out)
}

/// One agent of an H5 invocation: checked against its recorded aggregate, with the start of
/// each of its runs (runs end at the agent's timestamp; the harness sleeps between runs).
fn h5_agent<'f>(
    ctx: &mut Ctx,
    ci: usize,
    name: &'static str,
    a: &'f H5Agent,
    path: &Path,
    sleep_ms: f64,
) -> Result<PreparedAgent<'f>, ImportError> {
    let path = path.to_path_buf();
    let ai = ctx.agent_index(ci, name, &path)?;
    let options = ctx.recorded_options(
        ci,
        ai,
        &a.configuration,
        &path,
        &format!("{name}.configuration"),
    )?;
    ctx.check_model(ci, a.model.as_deref(), &path, &format!("{name}.model"));
    let end = ctx.timestamp(&a.timestamp, &path, format!("{name}.timestamp"))?;
    let mut runs: Vec<&H5Run> = a.workflow_runs.iter().collect();
    runs.sort_by_key(|r| r.run_number);
    // Runs end at the agent's timestamp; the harness sleeps between runs, not after.
    let mut starts = BTreeMap::new();
    let mut t = end;
    for (i, r) in runs.iter().enumerate().rev() {
        t -= r.workflow.total_seconds * 1000.0;
        starts.insert(r.run_number, t);
        if i > 0 {
            t -= sleep_ms;
        }
    }
    // Pooled check: the agent's recorded aggregate over all its calls.
    let mut all_rows = Vec::new();
    for (i, c) in a.llm_calls.iter().enumerate() {
        let st = stage(&c.stage, &path, &format!("{name}.llm_calls[{i}].stage"))?;
        all_rows.push(c.metrics.row(st, i as u32, 0.0, None));
    }
    check_aggregate(
        ctx,
        &aggregate_rows(&all_rows),
        &a.aggregate_metrics,
        name,
        &path,
    );
    Ok((name, ai, a, options, starts))
}

/// The cell of run `k` of an H5 invocation.
fn h5_cell(
    ctx: &mut Ctx,
    ci: usize,
    k: u32,
    path: &Path,
    per_agent: &[PreparedAgent],
) -> Result<crate::record::CellRecord, ImportError> {
    let path = path.to_path_buf();
    let ni = ctx.node(ci, k, &path)?;
    let mut agents = Vec::new();
    let mut start = f64::INFINITY;
    for (name, ai, a, options, starts) in per_agent {
        let wr = a
            .workflow_runs
            .iter()
            .find(|r| r.run_number == k)
            .ok_or_else(|| ImportError::Key {
                path: path.clone(),
                key: format!("{name}.workflow_runs"),
                message: format!("no run {k} (the other agent has one)"),
                help:
                    "both agents of an H5 invocation run the same number of runs; restore the file"
                        .into(),
            })?;
        let run_start = starts.get(&k).copied().unwrap_or(f64::NAN);
        start = start.min(run_start);
        let mut t = run_start + wr.workflow.ingest_seconds * 1000.0;
        let mut rows = Vec::new();
        for (i, c) in a
            .llm_calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.run_number == k)
        {
            let st = stage(&c.stage, &path, &format!("{name}.llm_calls[{i}].stage"))?;
            rows.push(
                c.metrics
                    .row(st, rows.len() as u32, t, c.response.as_deref()),
            );
            t += c.metrics.e2e_ms();
        }
        let aggregate = aggregate_rows(&rows);
        agents.push((
            *ai,
            ctx.agent(
                ci,
                *ai,
                true,
                options.clone(),
                wr.workflow.total_seconds * 1000.0,
                wr.benchmark_data_count,
                aggregate,
                rows,
            ),
        ));
    }
    agents.sort_by_key(|(ai, _)| *ai);
    let agents: Vec<_> = agents.into_iter().map(|(_, a)| a).collect();
    let wall: f64 = agents.iter().map(|a| a.duration_ms).sum();
    let mut rec = ctx.record(ni, agents, wall, start);
    // No per-run delta is stored (only the pooled `delta`): computed as calc_delta did,
    // from the agents' means, in chimera's convention (B − A, TTFT A − B).
    if let [a, b] = rec.agents.as_slice() {
        let (tp, ttft) = crate::metrics::deltas_rust(&a.aggregate, &b.aggregate);
        let m = rec.multi_agent_mut();
        (m.throughput_delta_tok_s, m.ttft_delta_ms) = (tp, ttft);
    }
    Ok(rec)
}

/// Reads TR109 (H2).
pub(crate) fn read_tr109(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<Imported>, ImportError> {
    let expected =
        "`run_<config>/data/metrics.json` (e.g. `run_gpu60_ctx512_temp0p8/data/metrics.json`)";
    let known = |ctx: &Ctx, folder: &str| {
        folder
            .strip_prefix("run_")
            .is_some_and(|id| ctx.configs().iter().any(|c| *c.id == *id))
    };
    let found = classify(ctx, files, expected, known)?;
    let mut out = Vec::new();
    let mut negated = false;
    for (path, folder) in found {
        let id = folder.strip_prefix("run_").unwrap_or(&folder).to_owned();
        let ci = ctx.config(&id, &ctx.source.join(&folder), "configuration folder")?;
        let (cells, neg) = read_h2(ctx, ci, &path)?;
        out.extend(cells);
        negated |= neg;
    }
    if negated {
        note_h2_negated(ctx);
    }
    Ok(out)
}

/// Notes that H2 deltas were negated (see [`read_h2`]).
pub(super) fn note_h2_negated(ctx: &mut Ctx) {
    ctx.notes.push(
        "the manifest lists the chimera agent first (it ran first), so the cells' throughput_delta_tok_s (B − A) is baseline − chimera and ttft_delta_ms (A − B) chimera − baseline: the negatives of the files' `performance_delta`".into(),
    );
}

/// The cells of one H2 file (`<config>/data/metrics.json`, a list of runs) of configuration
/// `ci`, and whether their stored deltas were negated (the chimera agent is agent A).
pub(super) fn read_h2(
    ctx: &mut Ctx,
    ci: usize,
    path: &Path,
) -> Result<(Vec<Imported>, bool), ImportError> {
    let path = path.to_path_buf();
    let mut out = Vec::new();
    let mut negated = false;
    let runs: Vec<H2Run> = ctx.read_json(&path)?;
    ctx.files += 1;
    ctx.two_agents(ci, &path, "a baseline + chimera run")?;
    if runs.is_empty() {
        ctx.warn(format!("`{}` holds no run", ctx.rel(&path).display()));
    }
    for (i, run) in runs.iter().enumerate() {
        let ni = ctx.node(ci, run.run_number, &path)?;
        let mut agents = Vec::new();
        let mut start = f64::INFINITY;
        for (name, r) in [
            ("baseline", &run.baseline_results),
            ("chimera", &run.chimera_results),
        ] {
            let ai = ctx.agent_index(ci, name, &path)?;
            let key = format!("[{i}].{name}_results");
            let options = ctx.recorded_options(
                ci,
                ai,
                &r.metrics.configuration,
                &path,
                &format!("{key}.metrics.configuration"),
            )?;
            ctx.check_model(ci, r.model.as_deref(), &path, &format!("{key}.model"));
            let (started, seconds) = r.timing(&path, &key)?;
            let t = ctx.timestamp(started, &path, format!("{key}.start_time"))?;
            start = start.min(t);
            agents.push((
                ai,
                ctx.agent(
                    ci,
                    ai,
                    true,
                    options,
                    seconds * 1000.0,
                    r.benchmark_data_count,
                    r.metrics.aggregate_metrics.aggregate(),
                    Vec::new(),
                ),
            ));
        }
        agents.sort_by_key(|(ai, _)| *ai);
        let baseline_first = agents
            .first()
            .is_some_and(|(ai, _)| *ai == ctx.agent_index(ci, "baseline", &path).unwrap_or(0));
        let agents: Vec<_> = agents.into_iter().map(|(_, a)| a).collect();
        let wall: f64 = agents.iter().map(|a| a.duration_ms).sum();
        let mut rec = ctx.record(ni, agents, wall, start);
        // Stored: throughput chimera − baseline, TTFT baseline − chimera. chimera's columns
        // are positional (B − A, TTFT A − B): the same numbers when baseline is agent A,
        // negated when the manifest lists the chimera agent first (TR109 runs it first).
        let d = &run.performance_delta;
        let sign = if baseline_first { 1.0 } else { -1.0 };
        negated |= !baseline_first;
        let stored = (
            Some(sign * d.throughput_delta_absolute),
            Some(sign * d.ttft_delta_absolute_ms),
        );
        ctx.store_deltas(&mut rec, stored, &path);
        out.push(ctx.imported(&path, rec));
    }
    Ok((out, negated))
}
