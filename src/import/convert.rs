//! Values of the raw files converted into chimera's: options, request rows, aggregates, JSON.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::error::ImportError;
use crate::backend::RequestRecord;
use crate::manifest::{Options, TtftDefinition};
use crate::metrics::{self, AgentAggregate};
use crate::record::RequestRow;

/// The tolerance of the published-efficiency cross-check, percentage points.
pub const EFFICIENCY_TOLERANCE_PP: f64 = 0.01;

pub(super) fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

pub(super) fn list(ids: &[&str]) -> String {
    if ids.is_empty() {
        return "(none)".to_owned();
    }
    ids.iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value the Rust harnesses serialised from an `f32` (0.6000000238418579) read back as the
/// decimal that was typed (0.6); other values unchanged.
pub(super) fn f32_decimal(x: f64) -> f64 {
    let f = x as f32;
    if f64::from(f) == x {
        f.to_string().parse().unwrap_or(x)
    } else {
        x
    }
}

/// Options from a recorded `configuration` / `options` object.
pub(super) fn options_from_json(
    map: &serde_json::Map<String, serde_json::Value>,
    path: &Path,
    key: &str,
) -> Result<Options, ImportError> {
    let bad = |k: &str, want: &str| {
        ImportError::Key {
        path: path.to_path_buf(),
        key: format!("{key}.{k}"),
        message: format!("expected {want}, found {}", map[k]),
        help: "the recorded options are Ollama options (num_gpu, num_ctx, temperature, top_p, top_k, repeat_penalty)".into(),
    }
    };
    let mut o = Options::default();
    for (k, v) in map {
        if v.is_null() {
            continue;
        }
        let uint = || {
            v.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| bad(k, "an unsigned integer"))
        };
        let float = || {
            v.as_f64()
                .map(f32_decimal)
                .ok_or_else(|| bad(k, "a number"))
        };
        match k.as_str() {
            "num_gpu" => o.num_gpu = Some(uint()?),
            "num_ctx" => o.num_ctx = Some(uint()?),
            "top_k" => o.top_k = Some(uint()?),
            "temperature" => o.temperature = Some(float()?),
            "top_p" => o.top_p = Some(float()?),
            "repeat_penalty" => o.repeat_penalty = Some(float()?),
            "num_predict" => o.num_predict = Some(v.as_i64().ok_or_else(|| bad(k, "an integer"))?),
            "seed" => o.seed = Some(v.as_u64().ok_or_else(|| bad(k, "an unsigned integer"))?),
            _ => {
                return Err(ImportError::Key {
                    path: path.to_path_buf(),
                    key: format!("{key}.{k}"),
                    message: format!("unknown option `{k}`"),
                    help: "chimera's options are num_gpu, num_ctx, temperature, top_p, top_k, repeat_penalty, num_predict and seed; a file with other options is not a chimeraforge run".into(),
                });
            }
        }
    }
    Ok(o)
}

pub(super) fn same_options(a: &Options, b: &Options) -> bool {
    let f = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-6,
        (None, None) => true,
        _ => false,
    };
    a.num_gpu == b.num_gpu
        && a.num_ctx == b.num_ctx
        && a.top_k == b.top_k
        && a.num_predict == b.num_predict
        && a.seed == b.seed
        && f(a.temperature, b.temperature)
        && f(a.top_p, b.top_p)
        && f(a.repeat_penalty, b.repeat_penalty)
}

pub(super) fn options_text(o: &Options) -> String {
    if o.is_empty() {
        return "{} (server defaults)".to_owned();
    }
    serde_json::to_string(o).unwrap_or_default()
}

/// One request row as recorded (no client-side chunk timings: the originals kept none), with
/// the TTFT the original harness published (`published_ttft_ms`: the client TTFT of the Rust
/// harnesses, TR108's `ttft_s`).
pub(super) fn request_row(
    stage: crate::workload::Stage,
    index: u32,
    throughput: Option<f64>,
    published_ttft_ms: Option<f64>,
    record: RequestRecord,
) -> RequestRow {
    RequestRow {
        stage,
        index,
        warmup: false,
        throughput_tok_s: throughput,
        client_tok_s: metrics::client_tok_s(record.output_tokens, record.e2e_ms, record.ttft_ms),
        itl_p50_ms: None,
        itl_p99_ms: None,
        published_ttft_ms,
        response_chars: None,
        load: None,
        record,
    }
}

/// The aggregate of an agent's recorded requests, as the Rust harness's
/// `aggregate_llm_metrics`; per-request throughput and published TTFT as the source recorded
/// them.
pub(super) fn aggregate_rows(rows: &[RequestRow]) -> AgentAggregate {
    let recs: Vec<&RequestRecord> = rows.iter().map(|r| &r.record).collect();
    let mut agg = metrics::aggregate(&recs, TtftDefinition::ClientFirstChunk);
    let of_ok = |f: fn(&RequestRow) -> Option<f64>| -> Vec<f64> {
        rows.iter()
            .filter(|r| r.record.ok())
            .filter_map(f)
            .collect()
    };
    agg.published_ttft_mean_ms = metrics::mean(&of_ok(|r| r.published_ttft_ms));
    let tps = of_ok(|r| r.throughput_tok_s);
    agg.throughput_mean_tok_s = metrics::mean(&tps);
    agg.throughput_sd_tok_s = metrics::sample_sd(&tps);
    agg
}

/// Deserialises one JSON file's bytes (read with [`super::Ctx::read`]); errors name the file
/// and the line/column (syntax) or the key path (missing key, wrong type).
pub(super) fn parse_json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, ImportError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end().map_err(|e| json_error(path, String::new(), &e))?;
            Ok(v)
        }
        Err(e) => {
            let key = e.path().to_string();
            Err(json_error(path, key, e.inner()))
        }
    }
}

pub(super) fn json_error(path: &Path, key: String, e: &serde_json::Error) -> ImportError {
    match e.classify() {
        serde_json::error::Category::Data => ImportError::Key {
            path: path.to_path_buf(),
            key: if key.is_empty() || key == "." { "(top level)".to_owned() } else { key },
            message: format!(
                "{} (line {}, column {})",
                strip_position(&e.to_string()),
                e.line(),
                e.column()
            ),
            help: "this file does not have the shape the original harness wrote (tr-spec §3–§8); restore it from the original repository".into(),
        },
        _ => ImportError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        },
    }
}

/// serde_json messages end in " at line L column C"; the error prints those itself.
pub(super) fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}
