//! Arrow schemas of the five tables. Units are in the column names; timestamps are UTC
//! milliseconds; a nullable column is null when the value was not available.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Milliseconds since the Unix epoch, UTC.
pub(crate) fn utc_ms() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

fn utf8(name: &str, nullable: bool) -> Field {
    f(name, DataType::Utf8, nullable)
}

fn f64c(name: &str, nullable: bool) -> Field {
    f(name, DataType::Float64, nullable)
}

static CELLS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("report", false),
        utf8("campaign", false),
        utf8("cell_id", false),
        utf8("kind", false),
        utf8("config_id", true),
        f("repetition", DataType::UInt32, false),
        utf8("scenario", true),
        utf8("model", true),
        utf8("status", false),
        utf8("error", true),
        utf8("error_kind", true),
        f("attempt", DataType::UInt32, false),
        f("started_at", utc_ms(), false),
        f64c("wall_ms", false),
        f64c("published_speedup", true),
        f64c("published_efficiency_pct", true),
        f("contention", DataType::Boolean, true),
        f64c("isolated_sum_ms", true),
        f64c("true_speedup", true),
        f64c("true_efficiency_pct", true),
        f64c("aggregate_tok_s", true),
        f64c("isolated_aggregate_tok_s", true),
        f64c("throughput_delta_tok_s", true),
        f64c("ttft_delta_ms", true),
        f64c("gpu_util_mean_pct", true),
        f64c("gpu_util_max_pct", true),
        f64c("power_mean_w", true),
        f64c("power_max_w", true),
        f64c("energy_j", true),
        f64c("mem_peak_mib", true),
        f("throttled", DataType::Boolean, true),
        f64c("output_tokens_per_j", true),
    ]))
});

static AGENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("cell_id", false),
        utf8("report", false),
        utf8("campaign", false),
        utf8("agent", false),
        utf8("role", false),
        utf8("endpoint", false),
        f("isolated", DataType::Boolean, false),
        f("num_gpu", DataType::UInt32, true),
        f("num_ctx", DataType::UInt32, true),
        f64c("temperature", true),
        f64c("top_p", true),
        f("top_k", DataType::UInt32, true),
        f64c("repeat_penalty", true),
        f("num_predict", DataType::Int64, true),
        f("seed", DataType::UInt64, true),
        f64c("duration_ms", false),
        f("files_ingested", DataType::UInt32, true),
        utf8("server_version", true),
        utf8("model_digest", true),
        f("requests", DataType::UInt64, false),
        f("failed_requests", DataType::UInt64, false),
        f64c("throughput_mean_tok_s", true),
        f64c("throughput_sd_tok_s", false),
        f64c("ttft_mean_ms", true),
        f64c("ttft_sd_ms", false),
        f64c("e2e_sum_ms", false),
        f("output_tokens", DataType::UInt64, false),
        f64c("load_sum_ms", false),
        f64c("prompt_eval_sum_ms", false),
        f64c("eval_sum_ms", false),
    ]))
});

static REQUESTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("cell_id", false),
        utf8("report", false),
        utf8("campaign", false),
        utf8("agent", false),
        utf8("stage", false),
        f("request_index", DataType::UInt32, false),
        f("warmup", DataType::Boolean, false),
        f("sent_at", utc_ms(), false),
        f64c("ttft_ms", true),
        f64c("e2e_ms", false),
        f("prompt_tokens", DataType::UInt64, true),
        f("output_tokens", DataType::UInt64, true),
        f64c("load_ms", true),
        f64c("prompt_eval_ms", true),
        f64c("eval_ms", true),
        f64c("total_ms", true),
        f64c("throughput_tok_s", true),
        f64c("client_tok_s", true),
        f64c("itl_p50_ms", true),
        f64c("itl_p99_ms", true),
        f("chunks", DataType::UInt32, false),
        f("response_chars", DataType::UInt64, false),
        utf8("done_reason", true),
        utf8("error_kind", true),
        f("error_status", DataType::UInt16, true),
        utf8("error_message", true),
        // Schema version 2.
        utf8("timing_source", true),
    ]))
});

static TELEMETRY: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("cell_id", false),
        utf8("report", false),
        f("gpu", DataType::UInt32, false),
        f64c("t_ms", false),
        f64c("util_pct", true),
        f64c("mem_used_mib", true),
        f64c("power_w", true),
        f("energy_mj", DataType::UInt64, true),
        f64c("temp_c", true),
        f("sm_clock_mhz", DataType::UInt32, true),
    ]))
});

static PROVENANCE: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("campaign", false),
        utf8("endpoint", false),
        utf8("url", false),
        utf8("host", true),
        utf8("os", true),
        utf8("gpu_name", true),
        utf8("gpu_uuid", true),
        utf8("driver", true),
        utf8("cuda_driver_version", true),
        utf8("server_kind", false),
        utf8("server_version", true),
        utf8("model_tag", true),
        utf8("model_digest", true),
        utf8("chimera_version", false),
        utf8("git_sha", true),
    ]))
});

/// `cells`: one row per cell.
pub fn cells_schema() -> SchemaRef {
    CELLS.clone()
}

/// `agents`: one row per agent run.
pub fn agents_schema() -> SchemaRef {
    AGENTS.clone()
}

/// `requests`: one row per LLM call.
pub fn requests_schema() -> SchemaRef {
    REQUESTS.clone()
}

/// `telemetry`: one row per GPU sample (schema only: nothing writes it yet).
pub fn telemetry_schema() -> SchemaRef {
    TELEMETRY.clone()
}

/// `provenance`: one row per campaign × endpoint (× model).
pub fn provenance_schema() -> SchemaRef {
    PROVENANCE.clone()
}

/// The schema of a table by name.
pub fn schema_of(table: &str) -> Option<SchemaRef> {
    match table {
        "cells" => Some(cells_schema()),
        "agents" => Some(agents_schema()),
        "requests" => Some(requests_schema()),
        "telemetry" => Some(telemetry_schema()),
        "provenance" => Some(provenance_schema()),
        _ => None,
    }
}
