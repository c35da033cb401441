//! H3, the Python multi-agent harness of TR110 (code lost; shapes from the output files).
//!
//! ```text
//! phase_N_test_NNN/run_k/metrics.json   one concurrent run: collector (A) + insight (B)
//! phase_N_test_NNN/summary.json         per-test runs and averages (cross-check)
//! test_execution_log.json               the test matrix and each test's start time
//! comprehensive_test_summary.json       overall summary (recognised, not a run)
//! **/*.md                               generated reports, not runs
//! ```
//!
//! Each agent recorded only aggregates over its two calls (means, sums, p95 of two values),
//! so the agents carry those and no request rows; SDs and server-time sums are `NaN` (not
//! recorded). The run files carry no timestamps: a run's start is its test's `start_time`
//! (test_execution_log.json) plus the wall times of the test's earlier runs, which the log's
//! test end times confirm within half a second.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::context::{Ctx, Imported, LayoutText};
use super::error::ImportError;
use crate::metrics::AgentAggregate;

/// A Python agent's recorded result (`metrics` of H2/H3).
#[derive(Debug, Deserialize)]
pub(super) struct PyAgent {
    #[serde(default)]
    pub(super) configuration: serde_json::Map<String, serde_json::Value>,
    pub(super) aggregate_metrics: PyAggregate,
}

/// `aggregate_metrics` of the Python collector (over the agent's calls).
#[derive(Debug, Deserialize)]
pub(super) struct PyAggregate {
    /// `request_count` in the Nov-2025 Python collector (TR116 single add-on).
    #[serde(alias = "request_count")]
    total_requests: usize,
    total_duration_ms: f64,
    total_tokens_generated: u64,
    #[serde(default)]
    average_ttft_ms: Option<f64>,
    #[serde(default)]
    average_tokens_per_second: Option<f64>,
}

impl PyAggregate {
    /// The agent aggregate: means and sums as recorded (the recorded TTFT is the published
    /// one; no client TTFT was measured); SDs and server-time sums `NaN` (the Python
    /// collector kept none).
    pub(super) fn aggregate(&self) -> AgentAggregate {
        AgentAggregate {
            requests: self.total_requests,
            failed: 0,
            throughput_mean_tok_s: self.average_tokens_per_second,
            throughput_sd_tok_s: f64::NAN,
            // The Python harnesses' TTFT came from server timings of non-streamed replies
            // (tr-spec §1.3): the published TTFT, not a client TTFT.
            ttft_mean_ms: None,
            ttft_sd_ms: f64::NAN,
            published_ttft_mean_ms: self.average_ttft_ms,
            e2e_sum_ms: self.total_duration_ms,
            output_tokens: self.total_tokens_generated,
            load_sum_ms: f64::NAN,
            prompt_eval_sum_ms: f64::NAN,
            eval_sum_ms: f64::NAN,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Run {
    collector: PyAgent,
    insight: PyAgent,
    summary: Summary,
    collector_execution_time: f64,
    insight_execution_time: f64,
}

#[derive(Debug, Deserialize)]
struct Summary {
    run_number: u32,
    throughput_delta: f64,
    ttft_delta_ms: f64,
    concurrent_wall_time: f64,
    concurrency_speedup: f64,
    resource_contention_detected: bool,
}

type TestSummary = super::h6::TestSummary<RunSummary>;

#[derive(Debug, Deserialize)]
struct RunSummary {
    run_number: u32,
    concurrent_wall_time: f64,
    concurrency_speedup: f64,
}

#[derive(Debug, Deserialize)]
struct ExecutionLog {
    test_results: Vec<LoggedTest>,
}

#[derive(Debug, Deserialize)]
struct LoggedTest {
    test_id: serde_json::Value,
    #[serde(default)]
    scenario: Option<String>,
    start_time: String,
}

/// `phase_2_test_105` → `test105`.
fn test_id(folder: &str) -> Option<String> {
    let rest = folder.strip_prefix("phase_")?;
    let (phase, test) = rest.split_once("_test_")?;
    (!phase.is_empty()
        && phase.bytes().all(|b| b.is_ascii_digit())
        && !test.is_empty()
        && test.bytes().all(|b| b.is_ascii_digit()))
    .then(|| format!("test{test}"))
}

/// The files of the tree: runs (path, test folder, run number), per-test summaries (path,
/// test folder), the execution log, other recognised files.
struct Tree {
    run_files: Vec<(PathBuf, String, u32)>,
    summaries: Vec<(PathBuf, String)>,
    log: Option<PathBuf>,
    others: Vec<PathBuf>,
}

/// Test id → start time (Unix ms), and test id → the scenario the log gives.
type Starts = (HashMap<String, f64>, HashMap<String, String>);

/// Reads every run of the tree.
pub(crate) fn read(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<Imported>, ImportError> {
    let src = ctx.source.to_path_buf();
    let Tree {
        run_files,
        summaries,
        log,
        others,
    } = classify(ctx, files)?;
    for f in &others {
        let _: serde_json::Value = ctx.read_json(f)?;
        ctx.files += 1;
    }

    // Test start times.
    let (starts, logged_scenario) = match &log {
        Some(p) => read_log(ctx, p)?,
        None => {
            ctx.warn(
                "no `test_execution_log.json`: run start times are taken from each test's summary.json `generated_at`".into(),
            );
            (HashMap::new(), HashMap::new())
        }
    };

    // Parse every run and summary first: start times need the walls of earlier runs.
    let mut parsed: Vec<(PathBuf, usize, u32, Run)> = Vec::new();
    for (path, folder, k) in &run_files {
        let id = test_id(folder).unwrap_or_default();
        let ci = ctx.config(&id, &src.join(folder), "test folder")?;
        let run: Run = ctx.read_json(path)?;
        ctx.files += 1;
        if run.summary.run_number != *k {
            return Err(ImportError::Key {
                path: path.clone(),
                key: "summary.run_number".into(),
                message: format!(
                    "the file says run {}, its folder says run_{k}",
                    run.summary.run_number
                ),
                help: "the folder and the file disagree: restore the file or rename the folder"
                    .into(),
            });
        }
        ctx.node(ci, *k, path)?;
        parsed.push((path.clone(), ci, *k, run));
    }
    let mut walls: HashMap<(usize, u32), f64> = HashMap::new();
    for (_, ci, k, run) in &parsed {
        walls.insert((*ci, *k), run.summary.concurrent_wall_time);
    }
    let mut test_summaries: BTreeMap<usize, (PathBuf, TestSummary)> = BTreeMap::new();
    for (path, folder) in &summaries {
        let id = test_id(folder).unwrap_or_default();
        let ci = ctx.config(&id, &src.join(folder), "test folder")?;
        let s: TestSummary = ctx.read_json(path)?;
        ctx.files += 1;
        for r in &s.runs {
            walls
                .entry((ci, r.run_number))
                .or_insert(r.concurrent_wall_time);
        }
        test_summaries.insert(ci, (path.clone(), s));
    }
    for (id, sc) in &logged_scenario {
        if let Some(c) = ctx.configs().iter().find(|c| &*c.id == id.as_str())
            && *c.scenario != *sc.as_str()
        {
            let msg = format!(
                "test_execution_log.json gives {id} scenario `{sc}`, the manifest `{}`",
                c.scenario
            );
            ctx.warn(msg);
        }
    }

    let mut out = Vec::new();
    let mut eff: HashMap<(usize, u32), f64> = HashMap::new();
    for (path, ci, k, run) in &parsed {
        let started = start_of(ctx, &starts, &walls, &test_summaries, *ci, *k);
        let (imported, stored_eff) = cell(ctx, path, *ci, *k, run, started)?;
        eff.insert((*ci, *k), stored_eff);
        out.push(imported);
    }
    check_summaries(ctx, &test_summaries, &eff);
    Ok(out)
}

/// The layout's files, for its errors.
const TEXT: LayoutText<'static> = LayoutText {
    expected: "test folders `phase_N_test_NNN/` holding `run_k/metrics.json`, and `test_execution_log.json`",
    holds: "runs are `phase_N_test_NNN/run_k/metrics.json`; also recognised: `summary.json` per test, `test_execution_log.json`, `comprehensive_test_summary.json`, Markdown reports",
    help: "move the file out of the directory, or point at the report's own raw-data folder (TR110: `comprehensive_test_results/`)",
};

/// The runs, summaries, log and other files of the tree; anything else is refused.
fn classify(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Tree, ImportError> {
    let mut run_files: Vec<(PathBuf, String, u32)> = Vec::new();
    let mut summaries: Vec<(PathBuf, String)> = Vec::new();
    let mut log: Option<PathBuf> = None;
    let mut others: Vec<PathBuf> = Vec::new();
    let mut unknown: Vec<PathBuf> = Vec::new();
    let (files, markdown) = super::context::without_markdown(ctx, files);
    for (f, c) in files {
        match c.as_slice() {
            [t, run, m]
                if m == "metrics.json"
                    && test_id(t).is_some()
                    && super::h6::run_folder(run).is_some() =>
            {
                run_files.push((
                    f.clone(),
                    t.clone(),
                    super::h6::run_folder(run).unwrap_or(0),
                ));
            }
            [t, s] if s == "summary.json" && test_id(t).is_some() => {
                summaries.push((f.clone(), t.clone()))
            }
            [l] if l == "test_execution_log.json" => log = Some(f.clone()),
            [l] if l == "comprehensive_test_summary.json" => others.push(f.clone()),
            _ => unknown.push(f.clone()),
        }
    }
    super::context::settle(ctx, &TEXT, !run_files.is_empty(), &unknown, markdown)?;
    Ok(Tree {
        run_files,
        summaries,
        log,
        others,
    })
}

/// The start time and scenario of every test in `test_execution_log.json`.
fn read_log(ctx: &mut Ctx, p: &Path) -> Result<Starts, ImportError> {
    let mut starts: HashMap<String, f64> = HashMap::new();
    let mut logged_scenario: HashMap<String, String> = HashMap::new();
    let l: ExecutionLog = ctx.read_json(p)?;
    ctx.files += 1;
    for (i, t) in l.test_results.iter().enumerate() {
        let n = match &t.test_id {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| ImportError::Key {
            path: p.to_path_buf(),
            key: format!("test_results[{i}].test_id"),
            message: format!("expected a test number, found {}", t.test_id),
            help: "restore the file from the original repository".into(),
        })?;
        let id = format!("test{n:03}");
        let ms = ctx.timestamp(&t.start_time, p, format!("test_results[{i}].start_time"))?;
        starts.insert(id.clone(), ms);
        if let Some(s) = &t.scenario {
            logged_scenario.insert(id, s.clone());
        }
    }
    Ok((starts, logged_scenario))
}

/// When run `k` of configuration `ci` started: the test's logged start plus the walls of the
/// earlier runs, or its summary's `generated_at` less the walls of this and later runs;
/// `NaN` when neither is known.
fn start_of(
    ctx: &Ctx,
    starts: &HashMap<String, f64>,
    walls: &HashMap<(usize, u32), f64>,
    test_summaries: &BTreeMap<usize, (PathBuf, TestSummary)>,
    ci: usize,
    k: u32,
) -> f64 {
    let id = ctx.plan.configs[ci].id.to_string();
    match starts.get(&id) {
        Some(t0) => (1..k)
            .map(|j| walls.get(&(ci, j)).copied())
            .sum::<Option<f64>>()
            .map(|s| t0 + s * 1000.0),
        None => test_summaries.get(&ci).and_then(|(_, s)| {
            let (end, _naive) = super::time::parse(s.generated_at.as_deref()?)?;
            let reps = ctx.plan.configs[ci].repetitions;
            let after: Option<f64> = (k..=reps).map(|j| walls.get(&(ci, j)).copied()).sum();
            after.map(|a| end - a * 1000.0)
        }),
    }
    .unwrap_or(f64::NAN)
}

/// The cell of run `k` of configuration `ci`, and its stored efficiency.
fn cell(
    ctx: &mut Ctx,
    path: &Path,
    ci: usize,
    k: u32,
    run: &Run,
    started: f64,
) -> Result<(Imported, f64), ImportError> {
    let ni = ctx.node(ci, k, path)?;
    ctx.two_agents(ci, path, "a two-agent run")?;
    let mut agents = Vec::new();
    for (ai, (name, a, secs)) in [
        ("collector", &run.collector, run.collector_execution_time),
        ("insight", &run.insight, run.insight_execution_time),
    ]
    .into_iter()
    .enumerate()
    {
        let options = ctx.recorded_options(
            ci,
            ai,
            &a.configuration,
            path,
            &format!("{name}.configuration"),
        )?;
        agents.push(ctx.agent(
            ci,
            ai,
            false,
            options,
            secs * 1000.0,
            None,
            a.aggregate_metrics.aggregate(),
            Vec::new(),
        ));
    }
    let wall_ms = run.summary.concurrent_wall_time * 1000.0;
    let mut rec = ctx.record(ni, agents, wall_ms, started);
    let stored_eff = run.summary.concurrency_speedup / 2.0 * 100.0;
    // H3: throughput_delta = chimera (insight, B) − baseline (collector, A); ttft_delta_ms =
    // baseline − chimera (A − B): chimera's convention already.
    let contention = run.summary.resource_contention_detected;
    let deltas = (run.summary.throughput_delta, run.summary.ttft_delta_ms);
    ctx.publish_with_deltas(&mut rec, stored_eff, contention, deltas, path);
    let imported = ctx.imported(path, rec);
    Ok((imported, stored_eff))
}

/// Cross-checks the per-test summaries with the runs read.
fn check_summaries(
    ctx: &mut Ctx,
    test_summaries: &BTreeMap<usize, (PathBuf, TestSummary)>,
    eff: &HashMap<(usize, u32), f64>,
) {
    for (ci, (path, s)) in test_summaries {
        let file = ctx.rel(path);
        let mut effs = Vec::new();
        for r in &s.runs {
            let e = r.concurrency_speedup / 2.0 * 100.0;
            effs.push(e);
            match eff.get(&(*ci, r.run_number)) {
                None => ctx.warn(super::h6::listed_but_absent(&file, r.run_number)),
                Some(in_run) if (in_run - e).abs() > super::convert::EFFICIENCY_TOLERANCE_PP => ctx
                    .warn(format!(
                        "`{}`: run {} speedup gives {e:.4} %, its metrics.json {in_run:.4} %",
                        file.display(),
                        r.run_number
                    )),
                Some(_) => {}
            }
        }
        s.check_average(ctx, &file, &effs);
    }
}
