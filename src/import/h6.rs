//! H6v2, the Rust multi-agent harness (`src/rust/demo_multiagent`): TR114_v2, and TR115 /
//! TR116-rust where the folder names equal the manifest's ids (TR113's H6v1 folders: [`super::h6v1`]).
//!
//! ```text
//! <scenario>/<testNNN>/run_k/metrics.json   one concurrent run: collector (A) + insight (B)
//! <scenario>/<testNNN>/summary.json         per-test RunSummary list and averages (cross-check)
//! **/*.md                                   generated reports, not runs
//! ```
//!
//! A run becomes the `concurrent` cell (test id, k): agent A = `collector`, B = `insight`,
//! each with its two streamed calls (analysis, report) as recorded, its client execution
//! time as duration, and the wall time of the join. Published speedup, efficiency and
//! contention are recomputed from those durations and that wall and compared with the
//! stored `summary.efficiency_percent` / `resource_contention_detected`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use petgraph::graph::NodeIndex;
use serde::Deserialize;

use super::context::{Ctx, Imported, LayoutText, RAW_FOLDER_HELP};
use super::convert::{aggregate_rows, close};
use super::error::ImportError;
use crate::backend::RequestRecord;
use crate::record::{AgentRun, RequestRow};
use crate::workload::Stage;

/// One call's metrics as the Rust harnesses recorded them (`call_ollama_streaming`).
#[derive(Debug, Deserialize)]
pub(super) struct CallMetrics {
    ttft_ms: f64,
    throughput_tokens_per_sec: f64,
    total_duration_ms: f64,
    tokens_generated: u64,
    prompt_eval_duration_ms: f64,
    eval_duration_ms: f64,
    load_duration_ms: f64,
}

impl CallMetrics {
    /// The request row of this call. `e2e_ms` is the client's `total_duration_ms`; the
    /// server's `total_duration`, the prompt token count and the chunk timings were not kept.
    pub(super) fn row(
        &self,
        stage: Stage,
        index: u32,
        sent_at: f64,
        text: Option<&str>,
    ) -> RequestRow {
        super::convert::request_row(
            stage,
            index,
            Some(self.throughput_tokens_per_sec),
            // The Rust harnesses published the client TTFT.
            Some(self.ttft_ms),
            RequestRecord {
                sent_at_unix_ms: sent_at,
                ttft_ms: Some(self.ttft_ms),
                e2e_ms: self.total_duration_ms,
                itl_ms: Vec::new(),
                chunks: 0,
                text: text.unwrap_or_default().to_owned(),
                load_ms: Some(self.load_duration_ms),
                prompt_tokens: None,
                prompt_eval_ms: Some(self.prompt_eval_duration_ms),
                output_tokens: Some(self.tokens_generated),
                eval_ms: Some(self.eval_duration_ms),
                total_ms: None,
                done_reason: None,
                timing_source: None,
                error: None,
            },
        )
    }

    pub(super) fn e2e_ms(&self) -> f64 {
        self.total_duration_ms
    }
}

/// `workflow` of a Rust agent run.
#[derive(Debug, Deserialize)]
pub(super) struct Workflow {
    pub(super) ingest_seconds: f64,
    pub(super) total_seconds: f64,
}

/// `aggregate_metrics` of a Rust agent result (`aggregate_llm_metrics`).
#[derive(Debug, Deserialize)]
pub(super) struct RustAggregate {
    pub(super) average_tokens_per_second: f64,
    pub(super) average_ttft_ms: f64,
    pub(super) total_tokens_generated: u64,
    pub(super) stddev_throughput: f64,
    pub(super) stddev_ttft: f64,
}

/// Compares a recorded aggregate with the one recomputed from the recorded calls.
pub(super) fn check_aggregate(
    ctx: &mut Ctx,
    agg: &crate::metrics::AgentAggregate,
    recorded: &RustAggregate,
    what: &str,
    path: &Path,
) {
    let pairs = [
        (
            "average_tokens_per_second",
            agg.throughput_mean_tok_s,
            recorded.average_tokens_per_second,
        ),
        (
            "average_ttft_ms",
            agg.ttft_mean_ms,
            recorded.average_ttft_ms,
        ),
        (
            "stddev_throughput",
            Some(agg.throughput_sd_tok_s),
            recorded.stddev_throughput,
        ),
        ("stddev_ttft", Some(agg.ttft_sd_ms), recorded.stddev_ttft),
        (
            "total_tokens_generated",
            Some(agg.output_tokens as f64),
            recorded.total_tokens_generated as f64,
        ),
    ];
    for (key, mine, theirs) in pairs {
        if let Some(m) = mine
            && !close(m, theirs, 1e-6)
        {
            let file = ctx.rel(path);
            ctx.warn(format!(
                "`{}`: {what} `aggregate_metrics.{key}` is {theirs}, but its recorded calls give {m}",
                file.display()
            ));
        }
    }
}

pub(super) fn stage(name: &str, path: &Path, key: &str) -> Result<Stage, ImportError> {
    match name {
        "analysis" => Ok(Stage::Analysis),
        "report" => Ok(Stage::Report),
        "persona" => Ok(Stage::Persona),
        _ => Err(ImportError::Key {
            path: path.to_path_buf(),
            key: key.to_owned(),
            message: format!("unknown stage `{name}`"),
            help: "the Rust harnesses record `analysis` and `report` calls".into(),
        }),
    }
}

#[derive(Debug, Deserialize)]
struct Run {
    run_number: u32,
    #[serde(default)]
    scenario: Option<String>,
    collector: Agent,
    insight: Agent,
    summary: Summary,
}

#[derive(Debug, Deserialize)]
struct Agent {
    execution_time_s: f64,
    #[serde(default)]
    config: Option<AgentConfig>,
    result: AgentResult,
}

#[derive(Debug, Deserialize)]
struct AgentConfig {
    #[serde(default)]
    options: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct AgentResult {
    #[serde(default)]
    configuration: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    benchmark_data_count: Option<u32>,
    #[serde(default)]
    llm_calls: Option<Vec<Call>>,
    /// H6v1 (TR113, TR114 v1, TR115 v1): one persona call, no `llm_calls`.
    #[serde(default)]
    individual_runs: Option<Vec<CallMetrics>>,
    aggregate_metrics: RustAggregate,
    timestamp: String,
    #[serde(default)]
    workflow: Option<Workflow>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Call {
    stage: String,
    metrics: CallMetrics,
    #[serde(default)]
    response: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Summary {
    concurrent_wall_time_s: f64,
    efficiency_percent: f64,
    throughput_delta: f64,
    ttft_delta_ms: f64,
    resource_contention_detected: bool,
}

/// A per-test `summary.json` of a Rust (`R` = [`RunSummary`]) or Python (TR110) harness.
#[derive(Debug, Deserialize)]
pub(super) struct TestSummary<R> {
    pub(super) runs: Vec<R>,
    #[serde(default)]
    aggregate: Option<AggregateSummary>,
    /// When the summary was written (the Python harness's).
    #[serde(default)]
    pub(super) generated_at: Option<String>,
}

impl<R> TestSummary<R> {
    /// Warns when `aggregate.average_efficiency` is not the mean of `runs`, the runs'
    /// efficiencies (%) as the summary states or implies them.
    pub(super) fn check_average(&self, ctx: &mut Ctx, file: &Path, runs: &[f64]) {
        let average = self.aggregate.as_ref().and_then(|a| a.average_efficiency);
        ctx.check_average_efficiency(file, average, runs);
    }
}

/// The warning for a run a summary `file` lists whose `metrics.json` is not there.
pub(super) fn listed_but_absent(file: &Path, run: u32) -> String {
    format!(
        "`{}` lists run {run} but `run_{run}/metrics.json` is not there: that run is not imported",
        file.display()
    )
}

#[derive(Debug, Deserialize)]
struct RunSummary {
    run_number: u32,
    efficiency_percent: f64,
}

#[derive(Debug, Deserialize)]
struct AggregateSummary {
    #[serde(default)]
    average_efficiency: Option<f64>,
}

/// `run_3` → 3.
pub(super) fn run_folder(name: &str) -> Option<u32> {
    name.strip_prefix("run_").and_then(|n| {
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse().ok())
            .flatten()
    })
}

/// The scenario id a folder names: exact, or with `-` read as `_` (`baseline-vs-chimera`).
fn scenario_of(ctx: &Ctx, folder: &str, path: &Path) -> Result<String, ImportError> {
    let ids: Vec<&str> = ctx.spec().scenarios.iter().map(|s| s.id.as_str()).collect();
    if ids.contains(&folder) {
        return Ok(folder.to_owned());
    }
    let norm = |s: &str| s.replace('-', "_").to_ascii_lowercase();
    let hits: Vec<&&str> = ids.iter().filter(|i| norm(i) == norm(folder)).collect();
    if let [one] = hits.as_slice() {
        return Ok((**one).to_owned());
    }
    Err(ctx.unknown_id(
        path,
        "scenario folder",
        folder,
        super::convert::list(&ids),
        "scenario folders are named after the manifest's scenario ids (`-` and `_` are the same)"
            .into(),
    ))
}

/// A run file: path, scenario folder, test folder, run number.
type RunFile = (PathBuf, String, String, u32);
/// A per-test summary: path, scenario folder, test folder.
type SummaryFile = (PathBuf, String, String);
/// (config index, run) → (recomputed efficiency, stored efficiency)
pub(super) type Efficiencies = HashMap<(usize, u32), (Option<f64>, f64)>;

/// Reads every run of the tree.
pub(crate) fn read(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<Imported>, ImportError> {
    let (runs_files, summaries) = classify(ctx, files)?;
    let mut test_of: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut runs = Vec::with_capacity(runs_files.len());
    for (path, sc, test, k) in runs_files {
        let ci = config_of(ctx, &mut test_of, &sc, &test)?;
        runs.push((path, ci, k));
    }
    let mut sums = Vec::with_capacity(summaries.len());
    for (path, sc, test) in summaries {
        let ci = config_of(ctx, &mut test_of, &sc, &test)?;
        sums.push((path, ci));
    }
    read_resolved(ctx, &runs, &sums)
}

/// Reads the runs `(file, config index, run number)` and cross-checks the per-configuration
/// summaries `(file, config index)` with them (H6v2 and H6v1 share this).
pub(super) fn read_resolved(
    ctx: &mut Ctx,
    runs: &[(PathBuf, usize, u32)],
    summaries: &[(PathBuf, usize)],
) -> Result<Vec<Imported>, ImportError> {
    let mut out = Vec::with_capacity(runs.len());
    let mut eff: Efficiencies = HashMap::new();
    for (path, ci, k) in runs {
        let (imported, efficiencies) = read_run(ctx, *ci, path, *k, *k)?;
        eff.insert((*ci, *k), efficiencies);
        out.push(imported);
    }
    for (path, ci) in summaries {
        check_summary(ctx, &eff, *ci, path, None)?;
    }
    Ok(out)
}

/// The layout's files, for its errors.
const TEXT: LayoutText<'static> = LayoutText {
    expected: "scenario folders (e.g. `baseline-vs-chimera/`, `chimera-homo/`) holding `<testNNN>/run_k/metrics.json`",
    holds: "runs are `<scenario>/<testNNN>/run_k/metrics.json`, per-test summaries `<scenario>/<testNNN>/summary.json`",
    help: RAW_FOLDER_HELP,
};

/// The run files and summaries of the tree; anything else is refused.
fn classify(
    ctx: &mut Ctx,
    files: &[PathBuf],
) -> Result<(Vec<RunFile>, Vec<SummaryFile>), ImportError> {
    let src = ctx.source.to_path_buf();
    let mut runs_files: Vec<RunFile> = Vec::new();
    let mut summaries: Vec<SummaryFile> = Vec::new();
    let mut unknown: Vec<PathBuf> = Vec::new();
    let (files, markdown) = super::context::without_markdown(ctx, files);
    for (f, c) in files {
        match c.as_slice() {
            [sc, test, run, m] if m == "metrics.json" && run_folder(run).is_some() => {
                runs_files.push((
                    f.clone(),
                    sc.clone(),
                    test.clone(),
                    run_folder(run).unwrap_or(0),
                ));
            }
            [sc, test, s] if s == "summary.json" => {
                summaries.push((f.clone(), sc.clone(), test.clone()))
            }
            _ => unknown.push(f.clone()),
        }
    }
    let has_runs = runs_files
        .iter()
        .any(|(_, sc, _, _)| scenario_of(ctx, sc, &src).is_ok());
    super::context::settle(ctx, &TEXT, has_runs, &unknown, markdown)?;

    Ok((runs_files, summaries))
}

/// One run of configuration `ci`, repetition `k`: its cell, and its (recomputed, stored)
/// efficiency. `file_run` is the run number its folder gives (`k` itself, or 1 where every
/// repetition was a separate `--runs 1` invocation, TR115).
pub(super) fn read_run(
    ctx: &mut Ctx,
    ci: usize,
    path: &Path,
    k: u32,
    file_run: u32,
) -> Result<(Imported, (Option<f64>, f64)), ImportError> {
    let run: Run = ctx.read_json(path)?;
    ctx.files += 1;
    let ni = check_run(
        ctx,
        ci,
        path,
        (k, file_run),
        run.run_number,
        run.scenario.as_deref(),
    )?;
    let mut agents = Vec::new();
    let mut ends = Vec::new();
    for (ai, (name, a)) in [("collector", &run.collector), ("insight", &run.insight)]
        .into_iter()
        .enumerate()
    {
        let (agent, end) = read_agent(ctx, ci, ai, name, a, path)?;
        agents.push(agent);
        ends.push(end);
    }
    let wall_ms = run.summary.concurrent_wall_time_s * 1000.0;
    let started = ends.iter().copied().fold(f64::NEG_INFINITY, f64::max) - wall_ms;
    let mut rec = ctx.record(ni, agents, wall_ms, started);
    // Rust H6 conventions equal chimera's: throughput B − A, TTFT A − B.
    let summary = &run.summary;
    let deltas = (summary.throughput_delta, summary.ttft_delta_ms);
    ctx.publish_with_deltas(
        &mut rec,
        summary.efficiency_percent,
        summary.resource_contention_detected,
        deltas,
        path,
    );
    let efficiencies = (
        rec.multi_agent
            .as_ref()
            .and_then(|m| m.published_efficiency_pct),
        run.summary.efficiency_percent,
    );
    let imported = ctx.imported(path, rec);
    Ok((imported, efficiencies))
}

/// The planned cell of a two-agent run of configuration `ci`, repetition `k` whose folder says
/// `file_run`: the file's `run_number` must agree, and a recorded scenario that is not the
/// manifest's kind is a warning (once per configuration).
pub(super) fn check_run(
    ctx: &mut Ctx,
    ci: usize,
    path: &Path,
    (k, file_run): (u32, u32),
    run_number: u32,
    scenario: Option<&str>,
) -> Result<NodeIndex, ImportError> {
    if run_number != file_run {
        return Err(ImportError::Key {
            path: path.to_path_buf(),
            key: "run_number".into(),
            message: format!("the file says run {run_number}, its folder says run_{file_run}"),
            help: "the folder and the file disagree: restore the file or rename the folder".into(),
        });
    }
    let ni = ctx.node(ci, k, path)?;
    ctx.two_agents(ci, path, "a two-agent run")?;
    if let Some(s) = scenario {
        let kind = ctx.plan.configs[ci].scenario_kind.to_string();
        if s.replace('-', "_") != kind {
            let key = format!("scenario {}", ctx.plan.configs[ci].id);
            let msg = format!(
                "`{}`: the run records scenario `{s}`, but the manifest's `{}` is a `{kind}` scenario",
                ctx.rel(path).display(),
                ctx.plan.configs[ci].scenario
            );
            ctx.warn_once(key, msg);
        }
    }
    Ok(ni)
}

/// One agent of a run, and when it ended (Unix ms).
fn read_agent(
    ctx: &mut Ctx,
    ci: usize,
    ai: usize,
    name: &str,
    a: &Agent,
    path: &Path,
) -> Result<(AgentRun, f64), ImportError> {
    let empty = serde_json::Map::new();
    let (recorded, key) = match (
        &a.result.configuration,
        a.config.as_ref().and_then(|c| c.options.as_ref()),
    ) {
        (Some(m), _) => (m, format!("{name}.result.configuration")),
        (None, Some(m)) => (m, format!("{name}.config.options")),
        (None, None) => (&empty, format!("{name}.result.configuration")),
    };
    let options = ctx.recorded_options(ci, ai, recorded, path, &key)?;
    ctx.check_model(
        ci,
        a.result.model.as_deref(),
        path,
        &format!("{name}.result.model"),
    );
    let end = ctx.timestamp(
        &a.result.timestamp,
        path,
        format!("{name}.result.timestamp"),
    )?;
    let duration_ms = a.execution_time_s * 1000.0;
    let start = end - duration_ms;
    let mut t = start
        + a.result
            .workflow
            .as_ref()
            .map_or(0.0, |w| w.ingest_seconds * 1000.0);
    let mut rows = Vec::new();
    match (&a.result.llm_calls, &a.result.individual_runs) {
        (Some(calls), _) => {
            for (i, c) in calls.iter().enumerate() {
                let st = stage(
                    &c.stage,
                    path,
                    &format!("{name}.result.llm_calls[{i}].stage"),
                )?;
                rows.push(c.metrics.row(st, i as u32, t, c.response.as_deref()));
                t += c.metrics.e2e_ms();
            }
        }
        (None, Some(calls)) => {
            for (i, c) in calls.iter().enumerate() {
                rows.push(c.row(Stage::Persona, i as u32, t, None));
                t += c.e2e_ms();
            }
        }
        (None, None) => {
            return Err(ImportError::Key {
                        path: path.to_path_buf(),
                        key: format!("{name}.result"),
                        message: "missing field `llm_calls`".into(),
                        help: "an H6 run records its calls in `llm_calls` (H6v2) or `individual_runs` (H6v1); restore the file".into(),
                    });
        }
    }
    let aggregate = aggregate_rows(&rows);
    check_aggregate(ctx, &aggregate, &a.result.aggregate_metrics, name, path);
    let agent = ctx.agent(
        ci,
        ai,
        false,
        options,
        duration_ms,
        a.result.benchmark_data_count,
        aggregate,
        rows,
    );
    Ok((agent, end))
}

/// Cross-checks a per-test summary of configuration `ci` with the runs read. `only`: the
/// summary of one `--runs 1` invocation that was repetition k (TR115), whose run 1 is k.
pub(super) fn check_summary(
    ctx: &mut Ctx,
    eff: &Efficiencies,
    ci: usize,
    path: &Path,
    only: Option<u32>,
) -> Result<(), ImportError> {
    let s: TestSummary<RunSummary> = ctx.read_json(path)?;
    ctx.files += 1;
    let file = ctx.rel(path);
    let rep = |r: u32| only.map_or(r, |k| (k + r).saturating_sub(1));
    let mut stored = Vec::new();
    for r in &s.runs {
        stored.push(r.efficiency_percent);
        match eff.get(&(ci, rep(r.run_number))) {
            None => ctx.warn(listed_but_absent(&file, r.run_number)),
            Some((_, in_run))
                if (in_run - r.efficiency_percent).abs()
                    > super::convert::EFFICIENCY_TOLERANCE_PP =>
            {
                ctx.warn(format!(
                    "`{}`: run {} efficiency {:.4} % differs from its metrics.json ({in_run:.4} %)",
                    file.display(),
                    r.run_number,
                    r.efficiency_percent
                ));
            }
            Some(_) => {}
        }
    }
    let listed: Vec<u32> = s.runs.iter().map(|r| rep(r.run_number)).collect();
    let unlisted: Vec<u32> = eff
        .keys()
        .filter(|(c2, k)| *c2 == ci && only.is_none_or(|o| o == *k) && !listed.contains(k))
        .map(|(_, k)| *k)
        .collect();
    for k in unlisted {
        ctx.warn(format!(
            "`{}` does not list run {k}, which has a metrics.json (imported)",
            file.display()
        ));
    }
    s.check_average(ctx, &file, &stored);
    Ok(())
}

/// The configuration of `<scenario>/<test>`, checked against the scenario folder.
fn config_of(
    ctx: &Ctx,
    seen: &mut BTreeMap<(String, String), usize>,
    sc: &str,
    test: &str,
) -> Result<usize, ImportError> {
    if let Some(&ci) = seen.get(&(sc.to_owned(), test.to_owned())) {
        return Ok(ci);
    }
    let sc_dir = ctx.source.join(sc);
    let scenario = scenario_of(ctx, sc, &sc_dir)?;
    let test_dir = sc_dir.join(test);
    let ci = ctx.config(test, &test_dir, "test folder")?;
    let c = &ctx.plan.configs[ci];
    if *c.scenario != *scenario {
        return Err(ImportError::Invalid {
            path: test_dir,
            message: format!(
                "test `{test}` is in scenario folder `{sc}` (scenario `{scenario}`), but the manifest puts it in scenario `{}`",
                c.scenario
            ),
            help: format!(
                "move the folder under the `{}` scenario folder, or fix the configuration's `scenario` in `{}`",
                c.scenario,
                ctx.manifest_path().display()
            ),
        });
    }
    seen.insert((sc.to_owned(), test.to_owned()), ci);
    Ok(ci)
}
