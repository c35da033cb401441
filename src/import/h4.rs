//! H4, the Python multi-agent harness of TR116 (HEAD `run_multiagent_demo.py`, tr-spec §10.3).
//!
//! ```text
//! <scenario>_gpu80_ctx512_temp10/run_k/metrics.json   one concurrent pair: collector (A) + insight (B)
//! <scenario>_gpu80_ctx512_temp10/summary.json         the runs and their means (cross-check)
//! ```
//!
//! Each agent made ONE non-streamed persona call and recorded its server-side durations: `ttft_ms`
//! is `prompt_eval_duration`, `total_duration_ms` is `eval_duration + prompt_eval_duration`, and
//! `wall_clock_ms` the client's time for the call. H4's sequential estimate is the sum of the
//! agents' server-side `total_duration_ms`, so an agent's duration here is that server time: the
//! published speedup and efficiency recomputed from the agents' durations and the wall are then
//! exactly H4's (the client time stays in the request's `e2e_ms`). H4 kept no timestamps, computes
//! no contention flag, and stores the TTFT delta as B − A (chimera: A − B, so it is negated).

use std::path::Path;

use serde::Deserialize;

use super::context::{Ctx, Imported};
use super::convert::aggregate_rows;
use super::error::ImportError;
use crate::backend::RequestRecord;
use crate::record::AgentRun;
use crate::workload::Stage;

#[derive(Debug, Deserialize)]
struct Run {
    collector: Agent,
    insight: Agent,
    run_number: u32,
    concurrent_wall_time_ms: f64,
    sequential_estimate_ms: f64,
    efficiency_percent: f64,
    throughput_delta: f64,
    ttft_delta_ms: f64,
    #[serde(default)]
    scenario: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Agent {
    #[serde(default)]
    options: serde_json::Map<String, serde_json::Value>,
    metrics: Metrics,
    #[serde(default)]
    response: Option<String>,
}

/// `extract_metrics` of H4: one call's numbers.
#[derive(Debug, Deserialize)]
struct Metrics {
    tokens_generated: u64,
    throughput_tokens_per_sec: f64,
    /// `prompt_eval_duration` (server side), ms.
    ttft_ms: f64,
    /// `eval_duration + prompt_eval_duration` (server side), ms.
    total_duration_ms: f64,
    /// Client time of the call, ms.
    wall_clock_ms: f64,
}

/// The note that says what an H4 agent's duration is.
const DURATION_NOTE: &str = "H4 (Python multi-agent) agent durations are the server-side eval + prompt_eval times that H4's sequential estimate summed (tr-spec §10.3), so the recomputed published efficiency is H4's; each call's client time is its request's e2e_ms";

/// One H4 run of configuration `ci`, repetition `k` (its folder's number): the cell, and its
/// (recomputed, stored) efficiency.
pub(super) fn read_run(
    ctx: &mut Ctx,
    ci: usize,
    path: &Path,
    k: u32,
) -> Result<(Imported, (Option<f64>, f64)), ImportError> {
    let run: Run = ctx.read_json(path)?;
    ctx.files += 1;
    let ni = super::h6::check_run(
        ctx,
        ci,
        path,
        (k, k),
        run.run_number,
        run.scenario.as_deref(),
    )?;
    if ctx.warned.insert("h4 durations".into()) {
        ctx.notes.push(DURATION_NOTE.into());
    }
    let mut agents = Vec::new();
    for (ai, (name, a)) in [("collector", &run.collector), ("insight", &run.insight)]
        .into_iter()
        .enumerate()
    {
        agents.push(agent(ctx, a, (ci, ai), name, path)?);
    }
    let sequential: f64 = agents.iter().map(|a| a.duration_ms).sum();
    if !super::convert::close(sequential, run.sequential_estimate_ms, 1e-6) {
        ctx.warn(format!(
            "`{}`: sequential_estimate_ms {} is not the sum of the agents' total_duration_ms ({sequential})",
            ctx.rel(path).display(),
            run.sequential_estimate_ms
        ));
    }
    let mut rec = ctx.record(ni, agents, run.concurrent_wall_time_ms, f64::NAN);
    ctx.publish(&mut rec, Some(run.efficiency_percent), None, path);
    // Stored: throughput B − A (chimera's sign), TTFT B − A (chimera: A − B).
    let stored = (Some(run.throughput_delta), Some(-run.ttft_delta_ms));
    ctx.store_deltas(&mut rec, stored, path);
    let efficiencies = (
        rec.multi_agent
            .as_ref()
            .and_then(|m| m.published_efficiency_pct),
        run.efficiency_percent,
    );
    Ok((ctx.imported(path, rec), efficiencies))
}

/// One agent of an H4 run: its one persona call.
fn agent(
    ctx: &mut Ctx,
    a: &Agent,
    (ci, ai): (usize, usize),
    name: &str,
    path: &Path,
) -> Result<AgentRun, ImportError> {
    let options = ctx.recorded_options(ci, ai, &a.options, path, &format!("{name}.options"))?;
    let m = &a.metrics;
    let row = super::convert::request_row(
        Stage::Persona,
        0,
        Some(m.throughput_tokens_per_sec),
        // H4's TTFT is the server's prompt eval time of a non-streamed reply: the published
        // TTFT; no client TTFT was measured.
        Some(m.ttft_ms),
        RequestRecord {
            sent_at_unix_ms: f64::NAN,
            ttft_ms: None,
            e2e_ms: m.wall_clock_ms,
            itl_ms: Vec::new(),
            chunks: 0,
            text: a.response.clone().unwrap_or_default(),
            load_ms: None,
            prompt_tokens: None,
            prompt_eval_ms: Some(m.ttft_ms),
            output_tokens: Some(m.tokens_generated),
            eval_ms: Some(m.total_duration_ms - m.ttft_ms),
            total_ms: None,
            done_reason: None,
            timing_source: None,
            error: None,
        },
    );
    let rows = vec![row];
    let aggregate = aggregate_rows(&rows);
    Ok(ctx.agent(
        ci,
        ai,
        false,
        options,
        m.total_duration_ms,
        None,
        aggregate,
        rows,
    ))
}
