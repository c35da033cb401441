//! A finished cell, its agents' runs and their requests.

use serde::Serialize;

use super::kind::{CellKind, Status};
use crate::backend::{ErrorKind, RequestRecord};
use crate::manifest::{Options, Role, TtftDefinition};
use crate::metrics::{self, AgentAggregate};
use crate::plan::{Configuration, Plan};
use crate::workload::Stage;

/// One request as recorded in a cell.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRow {
    /// Workflow stage.
    pub stage: Stage,
    /// Index of the request within the agent run.
    pub index: u32,
    /// True for warm-up requests (never averaged in).
    pub warmup: bool,
    /// Server throughput, eval_count / eval_duration.
    pub throughput_tok_s: Option<f64>,
    /// Client throughput, tokens / (e2e − TTFT).
    pub client_tok_s: Option<f64>,
    /// p50 of the inter-chunk gaps, ms.
    pub itl_p50_ms: Option<f64>,
    /// p99 of the inter-chunk gaps, ms.
    pub itl_p99_ms: Option<f64>,
    /// TTFT as the report's harness defined it (client TTFT, or server load + prompt eval,
    /// or prompt eval: [`metrics::published_ttft_ms`]), ms.
    pub published_ttft_ms: Option<f64>,
    /// The length of the generated text when the text itself is not kept (an agent
    /// program's record says it); `None`: the length of `record.text`.
    pub response_chars: Option<u64>,
    /// Where a serving load put the request (`load` workloads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadRequest>,
    /// What the backend measured.
    #[serde(flatten)]
    pub record: RequestRecord,
}

/// A request of a serving load: its user or schedule, its send time within the load, and
/// the lengths it asked for (`docs/serving-metrics.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LoadRequest {
    /// The closed-loop user that sent it (open loop: none).
    pub user: Option<u32>,
    /// When the open-loop schedule said to send it, ms after the load began.
    pub scheduled_ms: Option<f64>,
    /// When it was sent, ms after the load began.
    pub sent_ms: f64,
    /// Prompt tokens asked for.
    pub input_tokens_requested: Option<u32>,
    /// Output tokens asked for.
    pub output_tokens_requested: Option<u32>,
}

impl RequestRow {
    /// A request measured by chimera, with its derived metrics (server and client
    /// throughput, inter-chunk percentiles, the TTFT as `ttft` defines it) computed from
    /// `record`.
    pub fn measured(
        stage: Stage,
        index: u32,
        warmup: bool,
        record: RequestRecord,
        ttft: TtftDefinition,
    ) -> Self {
        RequestRow {
            stage,
            index,
            warmup,
            throughput_tok_s: metrics::throughput_tok_s(record.output_tokens, record.eval_ms),
            client_tok_s: metrics::client_tok_s(
                record.output_tokens,
                record.e2e_ms,
                record.ttft_ms,
            ),
            itl_p50_ms: metrics::percentile(&record.itl_ms, 50.0),
            itl_p99_ms: metrics::percentile(&record.itl_ms, 99.0),
            published_ttft_ms: metrics::published_ttft_ms(ttft, &record),
            response_chars: None,
            load: None,
            record,
        }
    }
}

/// One agent's run within a cell.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRun {
    /// Agent id.
    pub agent: String,
    /// Role.
    pub role: Role,
    /// Endpoint id.
    pub endpoint: String,
    /// True when the agent ran alone (isolated baseline or single cell).
    pub isolated: bool,
    /// Options sent.
    pub options: Options,
    /// Agent duration (ingest + calls), ms, as the harnesses measured it.
    pub duration_ms: f64,
    /// Files the ingest step found (agent workflows).
    pub files_ingested: Option<u32>,
    /// Server version (`/api/version`) of the agent's endpoint, when it answered.
    pub server_version: Option<String>,
    /// Digest of the model on that endpoint (`/api/tags`), when listed.
    pub model_digest: Option<String>,
    /// Aggregate over its requests.
    pub aggregate: AgentAggregate,
    /// Its requests.
    pub requests: Vec<RequestRow>,
    /// What chimera measured of the agent's process (`command` workloads; `None` for
    /// in-process agents and imports).
    pub process: Option<ProcessStats>,
}

impl AgentRun {
    /// What the agent did, over its measured (not warm-up) requests.
    pub fn work(&self) -> metrics::AgentWork {
        metrics::AgentWork::of(
            self.duration_ms,
            self.requests
                .iter()
                .filter(|r| !r.warmup)
                .map(|r| &r.record),
        )
    }
}

/// What chimera measured of an agent program's process (the `process_*` and
/// `start_offset_ms` columns of `agents`, `docs/agent-protocol.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProcessStats {
    /// Spawn → exit, ms.
    pub process_wall_ms: Option<f64>,
    /// User CPU time of the process and the children it waited for, ms.
    pub process_user_cpu_ms: Option<f64>,
    /// System CPU time of the process and the children it waited for, ms.
    pub process_sys_cpu_ms: Option<f64>,
    /// Peak resident set size (`VmHWM`, sampled every 10 ms), MiB.
    pub process_peak_rss_mib: Option<f64>,
    /// Exit code (`None` when killed by a signal).
    pub process_exit_code: Option<i64>,
    /// Start of this agent's process after the cell's first agent start, ms.
    pub start_offset_ms: Option<f64>,
}

/// The metrics only a multi-agent cell has: for a concurrent cell, how its agents did
/// together, against their durations in the cell (published) and alone (true), and the
/// deltas between its first two agents; an imported two-agent single cell (TR109/TR111)
/// has the deltas only. Every field is `None` when it cannot be computed (no wall, no
/// isolated baseline, fewer than two agents).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MultiAgentMetrics {
    /// Published speedup: Σ agent durations during the concurrent run / wall.
    pub published_speedup: Option<f64>,
    /// Published efficiency, %.
    pub published_efficiency_pct: Option<f64>,
    /// Published contention flag (speedup < threshold).
    pub contention: Option<bool>,
    /// Σ durations of the agents run alone (isolated cells of this configuration and repetition).
    pub isolated_sum_ms: Option<f64>,
    /// True speedup: isolated sum / concurrent wall.
    pub true_speedup: Option<f64>,
    /// True efficiency, %.
    pub true_efficiency_pct: Option<f64>,
    /// Aggregate throughput of the agents run alone: Σ tokens / Σ durations, tok/s.
    pub isolated_aggregate_tok_s: Option<f64>,
    /// How long the agents alone would have taken for the work they did in this run, summed
    /// ([`metrics::equal_work_alone_ms`]), ms.
    pub equal_work_alone_ms: Option<f64>,
    /// Equal-work speedup: `equal_work_alone_ms` / wall.
    pub equal_work_speedup: Option<f64>,
    /// Equal-work efficiency, %: the honest efficiency on the same work.
    pub equal_work_efficiency_pct: Option<f64>,
    /// Σ of the agents' throughputs alone (tokens / duration each), tok/s.
    pub isolated_sum_tok_s: Option<f64>,
    /// Aggregate throughput of this run / `isolated_sum_tok_s`, %.
    pub throughput_efficiency_pct: Option<f64>,
    /// Decode time per output token of the agents alone (Σ decode / Σ output tokens of
    /// their isolated runs), ms.
    pub alone_per_output_token_ms: Option<f64>,
    /// The same of the agents in this run, ms.
    pub together_per_output_token_ms: Option<f64>,
    /// Throughput delta B − A (Rust sign convention).
    pub throughput_delta_tok_s: Option<f64>,
    /// TTFT delta A − B (Rust sign convention).
    pub ttft_delta_ms: Option<f64>,
}

impl MultiAgentMetrics {
    /// The published speedup, efficiency and contention of `agents` run at once in `wall_ms`
    /// (tr-spec §1.5); the rest is left `None`.
    pub fn published(agents: &[AgentRun], wall_ms: f64, contention_threshold: f64) -> Self {
        let durations: Vec<f64> = agents.iter().map(|a| a.duration_ms).collect();
        let speedup = metrics::published_speedup(&durations, wall_ms);
        MultiAgentMetrics {
            published_speedup: speedup,
            published_efficiency_pct: speedup
                .and_then(|s| metrics::efficiency_pct(s, durations.len())),
            contention: speedup.map(|s| metrics::contention(s, contention_threshold)),
            ..MultiAgentMetrics::default()
        }
    }

    /// Sets the duration-based true speedup and efficiency, and the equal-work ones, from
    /// the agents' runs alone (`alone[i]`: isolated baseline of agent i) and in this run
    /// (`together[i]`), `wall_ms` being this run's wall and `aggregate_tok_s` its aggregate
    /// throughput.
    pub fn set_isolated(
        &mut self,
        alone: &[metrics::AgentWork],
        together: &[metrics::AgentWork],
        wall_ms: f64,
        aggregate_tok_s: Option<f64>,
    ) {
        let durations: Vec<f64> = alone.iter().map(|x| x.duration_ms).collect();
        let tokens = metrics::sum_tokens(alone.iter().map(|x| x.output_tokens));
        let sum: f64 = durations.iter().sum();
        let n = durations.len();
        self.isolated_sum_ms = Some(sum);
        self.true_speedup = metrics::true_speedup(&durations, wall_ms);
        self.true_efficiency_pct = self
            .true_speedup
            .and_then(|s| metrics::efficiency_pct(s, n));
        self.isolated_aggregate_tok_s = metrics::aggregate_tok_s(tokens, sum);
        self.equal_work_speedup = metrics::equal_work_speedup(alone, together, wall_ms);
        self.equal_work_alone_ms = self.equal_work_speedup.map(|s| s * wall_ms);
        self.equal_work_efficiency_pct = self
            .equal_work_speedup
            .and_then(|s| metrics::efficiency_pct(s, n));
        self.isolated_sum_tok_s = metrics::isolated_sum_tok_s(alone);
        self.throughput_efficiency_pct = match (aggregate_tok_s, self.isolated_sum_tok_s) {
            (Some(t), Some(i)) if i > 0.0 => Some(t / i * 100.0),
            _ => None,
        };
        self.alone_per_output_token_ms = metrics::decode_per_output_token_ms(alone);
        self.together_per_output_token_ms = metrics::decode_per_output_token_ms(together);
    }
}

/// The axes of the configuration a cell measures, as its manifest sets them (the matrix
/// block's name, the runtime and language from the block, an axis or the configuration, and
/// the harness of its workload):
/// columns a notebook can group by without parsing the configuration id. `None` where the
/// manifest does not set one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CellAxes {
    /// Runtime (`tokio-default`, `smol-1kb`...).
    pub runtime: Option<String>,
    /// Language of the original harness (`rust`, `python`).
    pub language: Option<String>,
    /// Name of the matrix block the configuration comes from.
    pub block: Option<String>,
    /// The original harness its workload reproduces (`H1`…`H6v2`), as the manifest names it.
    pub harness: Option<String>,
}

impl CellAxes {
    /// The axes of configuration `c` of `plan`.
    pub fn of(plan: &Plan, c: &Configuration) -> Self {
        CellAxes {
            runtime: c.runtime.map(|r| r.to_string()),
            language: c.language.map(|l| l.to_string()),
            block: plan.block_name(c).map(str::to_owned),
            harness: plan.reports[c.report].manifest.spec.workloads[c.workload]
                .harness
                .clone(),
        }
    }
}

/// Where a cell ran: the host, the shard of a sharded campaign (`I/N`) and the GPU behind
/// its endpoints' resource, when telemetry saw one. `None` where not known (imported cells,
/// parts written before table schema version 6).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CellPlacement {
    /// Host name of the machine that ran the cell.
    pub host: Option<String>,
    /// The shard that ran it (`I/N`); null for a whole-campaign run.
    pub shard: Option<String>,
    /// Name of the GPU behind the cell's first resource.
    pub gpu_name: Option<String>,
    /// Its UUID.
    pub gpu_uuid: Option<String>,
}

/// What identifies a cell and where it belongs: the part of a [`CellRecord`] the plan gives.
#[derive(Debug, Clone, Serialize)]
pub struct CellKey {
    /// Cell id.
    pub cell_id: String,
    /// Kind.
    pub kind: CellKind,
    /// Report id.
    pub report: String,
    /// Configuration id.
    pub config: Option<String>,
    /// Scenario id.
    pub scenario: Option<String>,
    /// Repetition (from 1).
    pub repetition: u32,
    /// Model tag.
    pub model: Option<String>,
    /// Runtime, language, block and harness of the configuration.
    #[serde(flatten)]
    pub axes: CellAxes,
    /// The configuration's managed-server settings (the `server` axis), `name=value` pairs
    /// joined by `+` (`parallel=4`); `None` without any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_flags: Option<String>,
}

/// The `server` settings of configuration `c` as the `cells` table shows them.
pub fn server_flags_of(c: &Configuration) -> Option<String> {
    (!c.server.is_empty()).then(|| c.server.to_string())
}

/// One finished cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellRecord {
    /// Identity and place in the plan.
    #[serde(flatten)]
    pub key: CellKey,
    /// When the cell started, ms since the Unix epoch (UTC).
    pub started_at_unix_ms: f64,
    /// Attempt number (1 = first try).
    pub attempt: u32,
    /// Whether every request succeeded.
    pub status: Status,
    /// First error of the cell.
    pub error: Option<String>,
    /// Kind of the first error.
    pub error_kind: Option<ErrorKind>,
    /// GPU telemetry aggregates over the cell (None without telemetry).
    pub telemetry: Option<crate::telemetry::TelemetryAggregate>,
    /// The GPU samples taken while the cell ran (the `telemetry` table).
    pub gpu_samples: Vec<crate::telemetry::GpuSample>,
    /// The servers' Prometheus readings (and gaps) taken while the cell ran (the
    /// `server_metrics` table).
    #[serde(skip)]
    pub server_samples: Vec<crate::telemetry::ServerSample>,
    /// Wall clock of the cell (concurrent: around the join), ms.
    pub wall_ms: f64,
    /// Largest start offset between the agent programs of the cell (`command` workloads
    /// with more than one agent), ms.
    pub start_skew_ms: Option<f64>,
    /// Spread of the agents' first measured requests in a concurrent cell, ms
    /// ([`first_request_skew_ms`]).
    pub first_request_skew_ms: Option<f64>,
    /// Why the cell is suspect ([`super::checks`]); empty when every self-check passed.
    pub suspect_reasons: Vec<String>,
    /// Σ output tokens / wall, tok/s.
    pub aggregate_tok_s: Option<f64>,
    /// The metrics of a multi-agent cell (`None` for one agent).
    pub multi_agent: Option<MultiAgentMetrics>,
    /// The agents.
    pub agents: Vec<AgentRun>,
    /// Where it ran.
    pub placement: CellPlacement,
}

impl CellRecord {
    /// The record of a cell whose `agents` ran in `wall_ms` from `started_at_unix_ms`: its
    /// status and first error come from the requests, its aggregate throughput from the
    /// agents' output tokens; no telemetry and no concurrent metrics yet. A failed request of
    /// a serving load (a row with its `load` placement) is data, not a failure of the cell:
    /// an overloaded level fails requests, and the analysis counts them against the SLOs; a
    /// load that could not run at all is one failed row without a placement, and fails it,
    /// and so does a load whose every measured request failed (a dead server).
    pub fn new(key: CellKey, agents: Vec<AgentRun>, wall_ms: f64, started_at_unix_ms: f64) -> Self {
        let rows = || agents.iter().flat_map(|a| a.requests.iter());
        let load_rows = rows().filter(|r| r.load.is_some() && !r.warmup).count();
        let load_failed = rows()
            .filter(|r| r.load.is_some() && !r.warmup && !r.record.ok())
            .count();
        let all_failed = load_rows > 0 && load_failed == load_rows;
        let first_error = rows()
            .filter(|r| r.load.is_none() || all_failed)
            .find_map(|r| r.record.error.as_ref());
        let error = first_error.map(|e| format!("{}: {}", e.kind.name(), e.message));
        let error_kind = first_error.map(|e| e.kind);
        let tokens = metrics::sum_tokens(agents.iter().map(|a| a.aggregate.output_tokens));
        let concurrent = key.kind == CellKind::Concurrent;
        CellRecord {
            key,
            started_at_unix_ms,
            attempt: 1,
            status: Status::of(error.is_none()),
            error,
            error_kind,
            telemetry: None,
            gpu_samples: Vec::new(),
            server_samples: Vec::new(),
            wall_ms,
            start_skew_ms: None,
            first_request_skew_ms: concurrent.then(|| first_request_skew_ms(&agents)).flatten(),
            suspect_reasons: Vec::new(),
            aggregate_tok_s: metrics::aggregate_tok_s(tokens, wall_ms),
            multi_agent: None,
            agents,
            placement: CellPlacement::default(),
        }
    }

    /// True when every request succeeded.
    pub fn ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// True when a self-check failed.
    pub fn suspect(&self) -> bool {
        !self.suspect_reasons.is_empty()
    }

    /// Adds the reason of a failed self-check (`None`: it passed).
    pub fn mark_suspect(&mut self, reason: Option<String>) {
        if let Some(r) = reason
            && !self.suspect_reasons.contains(&r)
        {
            self.suspect_reasons.push(r);
        }
    }

    /// The multi-agent metrics, created empty when missing.
    pub fn multi_agent_mut(&mut self) -> &mut MultiAgentMetrics {
        self.multi_agent.get_or_insert_default()
    }

    /// Σ output tokens of the agents.
    pub fn output_tokens(&self) -> u64 {
        metrics::sum_tokens(self.agents.iter().map(|a| a.aggregate.output_tokens))
    }
}

/// The spread of the agents' first measured requests (latest first send − earliest), ms;
/// `None` with fewer than two agents that sent one.
pub fn first_request_skew_ms(agents: &[AgentRun]) -> Option<f64> {
    let firsts: Vec<f64> = agents
        .iter()
        .filter_map(|a| {
            a.requests
                .iter()
                .filter(|r| !r.warmup)
                .map(|r| r.record.sent_at_unix_ms)
                .reduce(f64::min)
        })
        .collect();
    if firsts.len() < 2 {
        return None;
    }
    let lo = firsts.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = firsts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(hi - lo)
}

/// What an isolated cell contributes to the concurrent cells compared with it: its agent's
/// work, and whether the cell is suspect.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Baseline {
    /// What the agent did alone.
    pub work: metrics::AgentWork,
    /// The isolated cell failed a self-check.
    pub suspect: bool,
}

/// The agents-alone result an isolated cell contributes.
pub fn isolated_result(rec: &CellRecord) -> Option<Baseline> {
    rec.agents.first().map(|a| Baseline {
        work: a.work(),
        suspect: rec.suspect(),
    })
}

/// The throughput delta B − A and TTFT delta A − B of the first two agents (Rust sign
/// convention); `None` with fewer than two agents.
pub fn agent_deltas(agents: &[AgentRun]) -> (Option<f64>, Option<f64>) {
    match agents {
        [a, b, ..] => metrics::deltas_rust(&a.aggregate, &b.aggregate),
        _ => (None, None),
    }
}
