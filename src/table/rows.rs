//! The rows of the five tables, declared once with [`table_row!`]: each field is a column
//! (name, type, nullability, order), used to write the parts and to read them back. Units are
//! in the column names; timestamps are UTC milliseconds; a nullable column is null when the
//! value was not available.

use crate::backend::ErrorKind;
use crate::manifest::{Options, Role};
use crate::metrics::AgentAggregate;
use crate::record::{CellAxes, CellKind, CellPlacement, CellRecord, ProcessStats, Status};
use crate::telemetry::TelemetryAggregate;
use crate::workload::Stage;

use super::columns::{UtcMs, column_group, table_row};

column_group!(TelemetryAggregate {
    gpu_util_mean_pct,
    gpu_util_max_pct,
    power_mean_w,
    power_max_w,
    energy_j,
    mem_peak_mib,
    throttled,
});

column_group!(CellAxes {
    runtime,
    language,
    block,
    harness,
});

column_group!(CellPlacement {
    host,
    shard,
    gpu_name,
    gpu_uuid,
});

column_group!(ProcessStats {
    process_wall_ms,
    process_user_cpu_ms,
    process_sys_cpu_ms,
    process_peak_rss_mib,
    process_exit_code,
    start_offset_ms,
});

column_group!(Options {
    num_gpu,
    num_ctx,
    temperature,
    top_p,
    top_k,
    repeat_penalty,
    num_predict,
    seed,
});

column_group!(AgentAggregate {
    requests,
    failed as failed_requests,
    throughput_mean_tok_s,
    throughput_sd_tok_s,
    ttft_mean_ms,
    ttft_sd_ms,
    e2e_sum_ms,
    output_tokens,
    load_sum_ms,
    prompt_eval_sum_ms,
    eval_sum_ms,
    published_ttft_mean_ms,
});

table_row! {
    /// One row of `cells`: one per cell.
    #[derive(Debug, Clone, PartialEq)]
    pub struct CellsRow: "cells" {
        /// Report id.
        pub report: String,
        /// Campaign name.
        pub campaign: String,
        /// Cell id.
        pub cell_id: String,
        /// Cell kind.
        pub kind: CellKind,
        /// Configuration id.
        pub config_id: Option<String>,
        /// Repetition (from 1).
        pub repetition: u32,
        /// Scenario id.
        pub scenario: Option<String>,
        /// Model tag.
        pub model: Option<String>,
        /// Status.
        pub status: Status,
        /// First error.
        pub error: Option<String>,
        /// Kind of the first error.
        pub error_kind: Option<ErrorKind>,
        /// Attempt (1 = first try).
        pub attempt: u32,
        /// Start.
        pub started_at: UtcMs,
        /// Wall, ms.
        pub wall_ms: f64,
        /// Published speedup.
        pub published_speedup: Option<f64>,
        /// Published efficiency, %.
        pub published_efficiency_pct: Option<f64>,
        /// Contention flag.
        pub contention: Option<bool>,
        /// Σ isolated durations, ms.
        pub isolated_sum_ms: Option<f64>,
        /// True speedup.
        pub true_speedup: Option<f64>,
        /// True efficiency, %.
        pub true_efficiency_pct: Option<f64>,
        /// Aggregate throughput, tok/s.
        pub aggregate_tok_s: Option<f64>,
        /// Aggregate throughput of the agents alone, tok/s.
        pub isolated_aggregate_tok_s: Option<f64>,
        /// Throughput delta B − A.
        pub throughput_delta_tok_s: Option<f64>,
        /// TTFT delta A − B.
        pub ttft_delta_ms: Option<f64>,
        /// GPU telemetry aggregates (`gpu_util_mean_pct` to `throttled`): null without
        /// telemetry (no GPU, no library, or source none).
        pub telemetry: TelemetryAggregate,
        /// Output tokens per joule.
        pub output_tokens_per_j: Option<f64>,
        /// The configuration's `runtime`, `language`, `block` and `harness` (schema version 3; null
        /// where the manifest does not set one).
        pub axes: CellAxes,
        /// Largest start offset between the cell's agent programs, ms (`command` workloads,
        /// schema version 4).
        pub start_skew_ms: Option<f64>,
        /// Spread of the agents' first measured requests in a concurrent cell, ms (schema
        /// version 5, as every column below).
        pub first_request_skew_ms: Option<f64>,
        /// Σ of the times the agents alone would have taken for this run's work, ms.
        pub equal_work_alone_ms: Option<f64>,
        /// Equal-work speedup: `equal_work_alone_ms` / wall.
        pub equal_work_speedup: Option<f64>,
        /// Equal-work efficiency, %.
        pub equal_work_efficiency_pct: Option<f64>,
        /// Σ of the agents' throughputs alone, tok/s.
        pub isolated_sum_tok_s: Option<f64>,
        /// `aggregate_tok_s` / `isolated_sum_tok_s`, %.
        pub throughput_efficiency_pct: Option<f64>,
        /// Decode time per output token of the agents alone, ms.
        pub alone_per_output_token_ms: Option<f64>,
        /// Decode time per output token of the agents in this run, ms.
        pub together_per_output_token_ms: Option<f64>,
        /// A self-check failed (null in parts written before schema version 5: not checked).
        pub suspect: Option<bool>,
        /// Why, `; `-separated.
        pub suspect_reasons: Option<String>,
        /// Where it ran: `host`, `shard` (`I/N`), `gpu_name`, `gpu_uuid` (schema version 6).
        pub placement: CellPlacement,
        /// The configuration's managed-server settings (`parallel=4`; schema version 8).
        pub server_flags: Option<String>,
    }
}

table_row! {
    /// One row of `agents`: one per agent run.
    #[derive(Debug, Clone, PartialEq)]
    pub struct AgentsRow: "agents" {
        /// Cell id.
        pub cell_id: String,
        /// Report id.
        pub report: String,
        /// Campaign name.
        pub campaign: String,
        /// Agent id.
        pub agent: String,
        /// Role.
        pub role: Role,
        /// Endpoint id.
        pub endpoint: String,
        /// Ran alone.
        pub isolated: bool,
        /// Options sent (`num_gpu` to `seed`; null = server default).
        pub options: Options,
        /// Duration, ms.
        pub duration_ms: f64,
        /// Files ingested.
        pub files_ingested: Option<u32>,
        /// Server version.
        pub server_version: Option<String>,
        /// Model digest.
        pub model_digest: Option<String>,
        /// Aggregate over its requests, warm-ups excluded (`requests` to
        /// `published_ttft_mean_ms`; `failed` is the column `failed_requests`).
        pub aggregate: AgentAggregate,
        /// Model tag of the cell (schema version 3).
        pub model: Option<String>,
        /// The cell's `runtime`, `language`, `block` and `harness`, as in `cells` (schema version 3).
        pub axes: CellAxes,
        /// The agent program's process (`command` workloads, schema version 4): wall, user and
        /// system CPU, peak RSS, exit code, start offset; null for in-process agents.
        pub process: ProcessStats,
        /// Σ (end-to-end − TTFT) / Σ output tokens of its measured requests, ms (streamed
        /// requests; schema version 5).
        pub decode_per_output_token_ms: Option<f64>,
        /// Σ TTFT / Σ prompt tokens of its measured requests, ms (schema version 5).
        pub prefill_per_prompt_token_ms: Option<f64>,
    }
}

table_row! {
    /// One row of `requests`: one per LLM call. The generated text is not stored, only its
    /// length in characters.
    #[derive(Debug, Clone, PartialEq)]
    pub struct RequestsRow: "requests" {
        /// Cell id.
        pub cell_id: String,
        /// Report id.
        pub report: String,
        /// Campaign name.
        pub campaign: String,
        /// Agent id.
        pub agent: String,
        /// Stage.
        pub stage: Stage,
        /// Index within the agent run.
        pub request_index: u32,
        /// Warm-up (excluded).
        pub warmup: bool,
        /// When it was sent.
        pub sent_at: UtcMs,
        /// TTFT, ms.
        pub ttft_ms: Option<f64>,
        /// End to end, ms.
        pub e2e_ms: f64,
        /// Prompt tokens.
        pub prompt_tokens: Option<u64>,
        /// Output tokens.
        pub output_tokens: Option<u64>,
        /// Load, ms.
        pub load_ms: Option<f64>,
        /// Prompt evaluation, ms.
        pub prompt_eval_ms: Option<f64>,
        /// Evaluation, ms.
        pub eval_ms: Option<f64>,
        /// Server total, ms.
        pub total_ms: Option<f64>,
        /// Server throughput.
        pub throughput_tok_s: Option<f64>,
        /// Client throughput.
        pub client_tok_s: Option<f64>,
        /// p50 inter-chunk gap, ms.
        pub itl_p50_ms: Option<f64>,
        /// p99 inter-chunk gap, ms.
        pub itl_p99_ms: Option<f64>,
        /// Chunks received.
        pub chunks: u32,
        /// Characters of the response.
        pub response_chars: u64,
        /// Why generation stopped.
        pub done_reason: Option<String>,
        /// Error kind when failed.
        pub error_kind: Option<ErrorKind>,
        /// HTTP status of the error.
        pub error_status: Option<u16>,
        /// Error message.
        pub error_message: Option<String>,
        /// Where the timings come from (schema version 2).
        pub timing_source: Option<String>,
        /// TTFT as the report's harness defined it, ms (null in files written before it).
        pub published_ttft_ms: Option<f64>,
        /// The closed-loop user that sent a load request (schema version 8; null
        /// otherwise).
        pub load_user: Option<u32>,
        /// When an open-loop schedule said to send it, ms after its load began.
        pub scheduled_ms: Option<f64>,
        /// When a load request was sent, ms after its load began.
        pub load_sent_ms: Option<f64>,
        /// Send lateness of an open-loop request: `load_sent_ms − scheduled_ms`, ms.
        pub lateness_ms: Option<f64>,
        /// Prompt tokens a load request asked for (compare `prompt_tokens`).
        pub input_tokens_requested: Option<u32>,
        /// Output tokens a load request asked for (compare `output_tokens`).
        pub output_tokens_requested: Option<u32>,
        /// Every gap between chunks with text, ms, for the pooled ITL percentiles (load
        /// requests; empty for the others).
        pub itl_ms: Vec<f64>,
    }
}

table_row! {
    /// One row of `telemetry`: one per GPU sample, `t_ms` since the cell's start.
    #[derive(Debug, Clone, PartialEq)]
    pub struct TelemetryRow: "telemetry" {
        /// Cell id.
        pub cell_id: String,
        /// Report id.
        pub report: String,
        /// GPU index.
        pub gpu: u32,
        /// ms since the cell's start.
        pub t_ms: f64,
        /// Utilisation, %.
        pub util_pct: Option<f64>,
        /// Memory used, MiB.
        pub mem_used_mib: Option<f64>,
        /// Power, W.
        pub power_w: Option<f64>,
        /// Energy counter, mJ.
        pub energy_mj: Option<u64>,
        /// Temperature, °C.
        pub temp_c: Option<f64>,
        /// SM clock, MHz.
        pub sm_clock_mhz: Option<u32>,
    }
}

table_row! {
    /// One row of `server_metrics`: one reading of one series of a server's Prometheus
    /// `/metrics` (or one failed scrape) while a cell ran, `t_ms` since the cell's start.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ServerMetricsRow: "server_metrics" {
        /// Cell id.
        pub cell_id: String,
        /// Report id.
        pub report: String,
        /// Endpoint id (manifest).
        pub endpoint: String,
        /// ms since the cell's start (when the scrape started).
        pub t_ms: f64,
        /// Metric name as the server publishes it (empty for a gap).
        pub metric: String,
        /// Labels: `k=v` pairs sorted by key, joined by `,` (empty without labels).
        pub labels: String,
        /// `counter`, `gauge`, `untyped`, or `gap` for a scrape that failed.
        pub kind: String,
        /// The value (null for a gap).
        pub value: Option<f64>,
        /// Why the scrape failed (gaps only).
        pub error: Option<String>,
    }
}

table_row! {
    /// One row of `provenance`: what served an endpoint in a campaign.
    #[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
    pub struct ProvenanceRow: "provenance" {
        /// Campaign name.
        pub campaign: String,
        /// Endpoint id (manifest).
        pub endpoint: String,
        /// Endpoint URL.
        pub url: String,
        /// Host name of the server machine.
        pub host: Option<String>,
        /// Operating system.
        pub os: Option<String>,
        /// GPU name.
        pub gpu_name: Option<String>,
        /// GPU UUID.
        pub gpu_uuid: Option<String>,
        /// GPU driver version.
        pub driver: Option<String>,
        /// CUDA driver version (e.g. `13.0`).
        pub cuda_driver_version: Option<String>,
        /// Server kind (`ollama`, `emulator`, `openai`).
        pub server_kind: String,
        /// Server version (`/api/version`).
        pub server_version: Option<String>,
        /// Model tag.
        pub model_tag: Option<String>,
        /// Model digest (`/api/tags`).
        pub model_digest: Option<String>,
        /// chimera version that ran the campaign.
        pub chimera_version: String,
        /// Git commit of chimera, when known.
        pub git_sha: Option<String>,
    }
}

impl CellsRow {
    /// The row of one cell.
    pub fn of(rec: &CellRecord, campaign: &str) -> Self {
        let t = rec.telemetry.clone().unwrap_or_default();
        let m = rec.multi_agent.clone().unwrap_or_default();
        CellsRow {
            report: rec.key.report.clone(),
            campaign: campaign.to_owned(),
            cell_id: rec.key.cell_id.clone(),
            kind: rec.key.kind,
            config_id: rec.key.config.clone(),
            repetition: rec.key.repetition,
            scenario: rec.key.scenario.clone(),
            model: rec.key.model.clone(),
            status: rec.status,
            error: rec.error.clone(),
            error_kind: rec.error_kind,
            attempt: rec.attempt,
            started_at: UtcMs::from_f64(rec.started_at_unix_ms),
            wall_ms: rec.wall_ms,
            published_speedup: m.published_speedup,
            published_efficiency_pct: m.published_efficiency_pct,
            contention: m.contention,
            isolated_sum_ms: m.isolated_sum_ms,
            true_speedup: m.true_speedup,
            true_efficiency_pct: m.true_efficiency_pct,
            aggregate_tok_s: rec.aggregate_tok_s,
            isolated_aggregate_tok_s: m.isolated_aggregate_tok_s,
            throughput_delta_tok_s: m.throughput_delta_tok_s,
            ttft_delta_ms: m.ttft_delta_ms,
            output_tokens_per_j: t
                .energy_j
                .filter(|e| *e > 0.0)
                .map(|e| rec.output_tokens() as f64 / e),
            telemetry: t,
            axes: rec.key.axes.clone(),
            start_skew_ms: rec.start_skew_ms,
            first_request_skew_ms: rec.first_request_skew_ms,
            equal_work_alone_ms: m.equal_work_alone_ms,
            equal_work_speedup: m.equal_work_speedup,
            equal_work_efficiency_pct: m.equal_work_efficiency_pct,
            isolated_sum_tok_s: m.isolated_sum_tok_s,
            throughput_efficiency_pct: m.throughput_efficiency_pct,
            alone_per_output_token_ms: m.alone_per_output_token_ms,
            together_per_output_token_ms: m.together_per_output_token_ms,
            suspect: Some(rec.suspect()),
            suspect_reasons: rec.suspect().then(|| rec.suspect_reasons.join("; ")),
            placement: rec.placement.clone(),
            server_flags: rec.key.server_flags.clone(),
        }
    }

    /// A measured run: a single or concurrent cell (not a warm-up or isolated baseline).
    pub fn is_run(&self) -> bool {
        self.kind.is_run()
    }

    /// Status ok.
    pub fn ok(&self) -> bool {
        self.status == Status::Ok
    }
}

impl AgentsRow {
    /// The rows of one cell's agents.
    pub fn of(rec: &CellRecord, campaign: &str) -> Vec<Self> {
        rec.agents
            .iter()
            .map(|a| (a, a.work()))
            .map(|(a, w)| AgentsRow {
                cell_id: rec.key.cell_id.clone(),
                report: rec.key.report.clone(),
                campaign: campaign.to_owned(),
                agent: a.agent.clone(),
                role: a.role,
                endpoint: a.endpoint.clone(),
                isolated: a.isolated,
                options: a.options.clone(),
                duration_ms: a.duration_ms,
                files_ingested: a.files_ingested,
                server_version: a.server_version.clone(),
                model_digest: a.model_digest.clone(),
                aggregate: a.aggregate.clone(),
                model: rec.key.model.clone(),
                axes: rec.key.axes.clone(),
                process: a.process.clone().unwrap_or_default(),
                decode_per_output_token_ms: w.ms_per_output_token(),
                prefill_per_prompt_token_ms: w.prefill_per_prompt_token_ms(),
            })
            .collect()
    }
}

impl RequestsRow {
    /// The rows of one cell's requests, agent by agent in request order.
    pub fn of(rec: &CellRecord, campaign: &str) -> Vec<Self> {
        let row = |agent: &str, x: &crate::record::RequestRow| {
            let r = &x.record;
            RequestsRow {
                cell_id: rec.key.cell_id.clone(),
                report: rec.key.report.clone(),
                campaign: campaign.to_owned(),
                agent: agent.to_owned(),
                stage: x.stage,
                request_index: x.index,
                warmup: x.warmup,
                sent_at: UtcMs::from_f64(r.sent_at_unix_ms),
                ttft_ms: r.ttft_ms,
                e2e_ms: r.e2e_ms,
                prompt_tokens: r.prompt_tokens,
                output_tokens: r.output_tokens,
                load_ms: r.load_ms,
                prompt_eval_ms: r.prompt_eval_ms,
                eval_ms: r.eval_ms,
                total_ms: r.total_ms,
                throughput_tok_s: x.throughput_tok_s,
                client_tok_s: x.client_tok_s,
                itl_p50_ms: x.itl_p50_ms,
                itl_p99_ms: x.itl_p99_ms,
                chunks: r.chunks,
                response_chars: x
                    .response_chars
                    .unwrap_or_else(|| r.text.chars().count() as u64),
                done_reason: r.done_reason.clone(),
                error_kind: r.error.as_ref().map(|e| e.kind),
                error_status: r.error.as_ref().and_then(|e| e.status),
                error_message: r.error.as_ref().map(|e| e.message.clone()),
                timing_source: r.timing_source.clone(),
                published_ttft_ms: x.published_ttft_ms,
                load_user: x.load.and_then(|l| l.user),
                scheduled_ms: x.load.and_then(|l| l.scheduled_ms),
                load_sent_ms: x.load.map(|l| l.sent_ms),
                lateness_ms: x.load.and_then(|l| l.scheduled_ms.map(|s| l.sent_ms - s)),
                input_tokens_requested: x.load.and_then(|l| l.input_tokens_requested),
                output_tokens_requested: x.load.and_then(|l| l.output_tokens_requested),
                itl_ms: match x.load {
                    Some(_) => r.itl_ms.clone(),
                    None => Vec::new(),
                },
            }
        };
        rec.agents
            .iter()
            .flat_map(|a| a.requests.iter().map(move |x| row(&a.agent, x)))
            .collect()
    }
}

impl TelemetryRow {
    /// The rows of one cell's GPU samples.
    pub fn of(rec: &CellRecord) -> Vec<Self> {
        rec.gpu_samples
            .iter()
            .map(|s| TelemetryRow {
                cell_id: rec.key.cell_id.clone(),
                report: rec.key.report.clone(),
                gpu: s.gpu,
                t_ms: s.t_unix_ms - rec.started_at_unix_ms,
                util_pct: s.util_pct,
                mem_used_mib: s.mem_used_mib,
                power_w: s.power_w,
                energy_mj: s.energy_mj,
                temp_c: s.temp_c,
                sm_clock_mhz: s.sm_clock_mhz,
            })
            .collect()
    }
}

impl ServerMetricsRow {
    /// The rows of one cell's server samples.
    pub fn of(rec: &CellRecord) -> Vec<Self> {
        rec.server_samples
            .iter()
            .map(|s| {
                let r = s.reading.as_ref();
                ServerMetricsRow {
                    cell_id: rec.key.cell_id.clone(),
                    report: rec.key.report.clone(),
                    endpoint: s.endpoint.clone(),
                    t_ms: s.t_unix_ms - rec.started_at_unix_ms,
                    metric: r.map(|r| r.name.clone()).unwrap_or_default(),
                    labels: r.map(|r| r.labels.clone()).unwrap_or_default(),
                    kind: r.map_or(GAP_KIND, |r| r.kind.name()).to_owned(),
                    value: r.map(|r| r.value),
                    error: s.error.clone(),
                }
            })
            .collect()
    }
}

/// The `kind` of a `server_metrics` row that records a failed scrape.
pub const GAP_KIND: &str = "gap";
