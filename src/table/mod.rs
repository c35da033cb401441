//! Stage 5: the Parquet tables, chimera's public data interface (documented in `docs/data.md`).
//!
//! A finished cell becomes three small Parquet files ([`cell_parts`]: `cells.parquet`,
//! `agents.parquet`, `requests.parquet`, zstd, one row group each) that the store commits in
//! the cell's directory; those parts are the source of truth. [`compact`] gathers them into a
//! hive-partitioned dataset (`tables/<table>/report=<REPORT>/part-00000.parquet`) for
//! notebooks. Every file carries key-value metadata: `chimera.schema_version`
//! ([`SCHEMA_VERSION`]), `chimera.version` and `chimera.table`; readers refuse a file written
//! with a newer schema version.

mod compact;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt16Array, UInt32Array, UInt64Array,
};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::run::{AgentRun, CellRecord, RequestRow};

pub use compact::{CompactSummary, PARTITION_KEY, compact, partition_dir_name};
pub use schema::{
    agents_schema, cells_schema, provenance_schema, requests_schema, schema_of, telemetry_schema,
};

/// Version of the table schemas. Bump it on any change a reader could notice (a column
/// renamed, retyped, removed, or its meaning changed); adding a nullable column at the end
/// also bumps it. Readers accept files up to this version.
///
/// History: 1 = first release; 2 = `requests.timing_source` (nullable, last column). Parts of
/// an older version that lack trailing nullable columns are read with those columns null.
pub const SCHEMA_VERSION: u32 = 2;

/// Metadata key: the schema version a file was written with.
pub const META_SCHEMA_VERSION: &str = "chimera.schema_version";
/// Metadata key: the chimera version that wrote a file.
pub const META_CHIMERA_VERSION: &str = "chimera.version";
/// Metadata key: the table a file belongs to.
pub const META_TABLE: &str = "chimera.table";

/// File names of a cell's parts, in the order [`cell_parts`] returns them.
pub const CELL_PART_FILES: [&str; 3] = ["cells.parquet", "agents.parquet", "requests.parquet"];

/// zstd level of every file.
const ZSTD_LEVEL: i32 = 3;

/// Errors of the table layer; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A file or directory could not be read or written.
    #[error("{}: {source} (check that the path exists and is readable/writable)", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid Parquet, or could not be encoded.
    #[error("{}: {source} (the file is damaged or not Parquet; delete it and rerun the cell, or run `compact` again)", path.display())]
    Parquet {
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ParquetError,
    },
    /// A record batch could not be built or read.
    #[error("table `{table}` ({}): {source}", path.display())]
    Arrow {
        /// Which table.
        table: String,
        /// Which file (or `<in-memory>`).
        path: PathBuf,
        /// Why.
        #[source]
        source: ArrowError,
    },
    /// The file was written by a newer chimera with a newer table schema.
    #[error("{}: written with table schema version {found}, but this chimera reads versions up to {supported}; upgrade chimera to read it", path.display())]
    NewerSchema {
        /// Which file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The file has no (or an unreadable) `chimera.schema_version` key: not a chimera table.
    #[error("{}: {message} (not a chimera table; chimera only reads files it wrote)", path.display())]
    NotChimera {
        /// Which file.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// A part's columns differ from the table's schema.
    #[error("{}: its columns do not match table `{table}` of schema version {SCHEMA_VERSION}: {message} (rewrite the cell, or use the chimera version that wrote it)", path.display())]
    SchemaMismatch {
        /// Which file.
        path: PathBuf,
        /// Which table.
        table: String,
        /// The difference.
        message: String,
    },
}

/// One row of the `provenance` table: what served an endpoint in a campaign.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ProvenanceRow {
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

const IN_MEMORY: &str = "<in-memory>";

fn ms(unix_ms: f64) -> i64 {
    // `as` saturates (NaN → 0); sub-millisecond precision is dropped.
    unix_ms.round() as i64
}

fn strs<'a>(v: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn opt_strs<'a>(v: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(v.into_iter().collect::<StringArray>())
}

fn f64s(v: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

fn opt_f64s(v: impl IntoIterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(v.into_iter().collect::<Float64Array>())
}

fn u32s(v: impl IntoIterator<Item = u32>) -> ArrayRef {
    Arc::new(UInt32Array::from_iter_values(v))
}

fn opt_u32s(v: impl IntoIterator<Item = Option<u32>>) -> ArrayRef {
    Arc::new(v.into_iter().collect::<UInt32Array>())
}

fn u64s(v: impl IntoIterator<Item = u64>) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(v))
}

fn opt_u64s(v: impl IntoIterator<Item = Option<u64>>) -> ArrayRef {
    Arc::new(v.into_iter().collect::<UInt64Array>())
}

fn bools(v: impl IntoIterator<Item = bool>) -> ArrayRef {
    Arc::new(v.into_iter().map(Some).collect::<BooleanArray>())
}

fn opt_bools(v: impl IntoIterator<Item = Option<bool>>) -> ArrayRef {
    Arc::new(v.into_iter().collect::<BooleanArray>())
}

fn timestamps(v: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(
        TimestampMillisecondArray::from_iter_values(v.into_iter().map(ms)).with_timezone("UTC"),
    )
}

/// Builds a batch from named columns, checking the names against the table's schema.
fn batch(
    table: &str,
    schema: SchemaRef,
    cols: Vec<(&str, ArrayRef)>,
) -> Result<RecordBatch, TableError> {
    let arrow_err = |source| TableError::Arrow {
        table: table.to_string(),
        path: PathBuf::from(IN_MEMORY),
        source,
    };
    let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
    let expected: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if names != expected {
        return Err(arrow_err(ArrowError::SchemaError(format!(
            "internal error: columns {names:?} do not match the schema {expected:?}"
        ))));
    }
    RecordBatch::try_new(schema, cols.into_iter().map(|(_, a)| a).collect()).map_err(arrow_err)
}

fn role_name(role: crate::manifest::Role) -> String {
    role.to_string()
}

/// The `cells` row of one cell.
pub fn cells_batch(rec: &CellRecord, campaign: &str) -> Result<RecordBatch, TableError> {
    let t = rec.telemetry.clone().unwrap_or_default();
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("report", strs([rec.report.as_str()])),
        ("campaign", strs([campaign])),
        ("cell_id", strs([rec.cell_id.as_str()])),
        ("kind", strs([rec.kind])),
        ("config_id", opt_strs([rec.config.as_deref()])),
        ("repetition", u32s([rec.repetition])),
        ("scenario", opt_strs([rec.scenario.as_deref()])),
        ("model", opt_strs([rec.model.as_deref()])),
        ("status", strs([rec.status])),
        ("error", opt_strs([rec.error.as_deref()])),
        ("error_kind", opt_strs([rec.error_kind.map(|k| k.name())])),
        ("attempt", u32s([rec.attempt])),
        ("started_at", timestamps([rec.started_at_unix_ms])),
        ("wall_ms", f64s([rec.wall_ms])),
        ("published_speedup", opt_f64s([rec.published_speedup])),
        (
            "published_efficiency_pct",
            opt_f64s([rec.published_efficiency_pct]),
        ),
        ("contention", opt_bools([rec.contention])),
        ("isolated_sum_ms", opt_f64s([rec.isolated_sum_ms])),
        ("true_speedup", opt_f64s([rec.true_speedup])),
        ("true_efficiency_pct", opt_f64s([rec.true_efficiency_pct])),
        ("aggregate_tok_s", opt_f64s([rec.aggregate_tok_s])),
        (
            "isolated_aggregate_tok_s",
            opt_f64s([rec.isolated_aggregate_tok_s]),
        ),
        (
            "throughput_delta_tok_s",
            opt_f64s([rec.throughput_delta_tok_s]),
        ),
        ("ttft_delta_ms", opt_f64s([rec.ttft_delta_ms])),
        // Telemetry aggregates: null without telemetry (no GPU, no library, or source none).
        ("gpu_util_mean_pct", opt_f64s([t.gpu_util_mean_pct])),
        ("gpu_util_max_pct", opt_f64s([t.gpu_util_max_pct])),
        ("power_mean_w", opt_f64s([t.power_mean_w])),
        ("power_max_w", opt_f64s([t.power_max_w])),
        ("energy_j", opt_f64s([t.energy_j])),
        ("mem_peak_mib", opt_f64s([t.mem_peak_mib])),
        ("throttled", opt_bools([t.throttled])),
        (
            "output_tokens_per_j",
            opt_f64s([t.energy_j.filter(|e| *e > 0.0).map(|e| {
                crate::metrics::sum_tokens(rec.agents.iter().map(|a| a.aggregate.output_tokens))
                    as f64
                    / e
            })]),
        ),
    ];
    batch("cells", cells_schema(), cols)
}

/// The `agents` rows of one cell, one per agent run.
pub fn agents_batch(rec: &CellRecord, campaign: &str) -> Result<RecordBatch, TableError> {
    let a: &[AgentRun] = &rec.agents;
    let n = a.len();
    let roles: Vec<String> = a.iter().map(|x| role_name(x.role)).collect();
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "cell_id",
            strs(std::iter::repeat_n(rec.cell_id.as_str(), n)),
        ),
        ("report", strs(std::iter::repeat_n(rec.report.as_str(), n))),
        ("campaign", strs(std::iter::repeat_n(campaign, n))),
        ("agent", strs(a.iter().map(|x| x.agent.as_str()))),
        ("role", strs(roles.iter().map(String::as_str))),
        ("endpoint", strs(a.iter().map(|x| x.endpoint.as_str()))),
        ("isolated", bools(a.iter().map(|x| x.isolated))),
        ("num_gpu", opt_u32s(a.iter().map(|x| x.options.num_gpu))),
        ("num_ctx", opt_u32s(a.iter().map(|x| x.options.num_ctx))),
        (
            "temperature",
            opt_f64s(a.iter().map(|x| x.options.temperature)),
        ),
        ("top_p", opt_f64s(a.iter().map(|x| x.options.top_p))),
        ("top_k", opt_u32s(a.iter().map(|x| x.options.top_k))),
        (
            "repeat_penalty",
            opt_f64s(a.iter().map(|x| x.options.repeat_penalty)),
        ),
        (
            "num_predict",
            Arc::new(
                a.iter()
                    .map(|x| x.options.num_predict)
                    .collect::<Int64Array>(),
            ),
        ),
        ("seed", opt_u64s(a.iter().map(|x| x.options.seed))),
        ("duration_ms", f64s(a.iter().map(|x| x.duration_ms))),
        (
            "files_ingested",
            opt_u32s(a.iter().map(|x| x.files_ingested)),
        ),
        (
            "server_version",
            opt_strs(a.iter().map(|x| x.server_version.as_deref())),
        ),
        (
            "model_digest",
            opt_strs(a.iter().map(|x| x.model_digest.as_deref())),
        ),
        (
            "requests",
            u64s(a.iter().map(|x| x.aggregate.requests as u64)),
        ),
        (
            "failed_requests",
            u64s(a.iter().map(|x| x.aggregate.failed as u64)),
        ),
        (
            "throughput_mean_tok_s",
            opt_f64s(a.iter().map(|x| x.aggregate.throughput_mean_tok_s)),
        ),
        (
            "throughput_sd_tok_s",
            f64s(a.iter().map(|x| x.aggregate.throughput_sd_tok_s)),
        ),
        (
            "ttft_mean_ms",
            opt_f64s(a.iter().map(|x| x.aggregate.ttft_mean_ms)),
        ),
        ("ttft_sd_ms", f64s(a.iter().map(|x| x.aggregate.ttft_sd_ms))),
        ("e2e_sum_ms", f64s(a.iter().map(|x| x.aggregate.e2e_sum_ms))),
        (
            "output_tokens",
            u64s(a.iter().map(|x| x.aggregate.output_tokens)),
        ),
        (
            "load_sum_ms",
            f64s(a.iter().map(|x| x.aggregate.load_sum_ms)),
        ),
        (
            "prompt_eval_sum_ms",
            f64s(a.iter().map(|x| x.aggregate.prompt_eval_sum_ms)),
        ),
        (
            "eval_sum_ms",
            f64s(a.iter().map(|x| x.aggregate.eval_sum_ms)),
        ),
    ];
    batch("agents", agents_schema(), cols)
}

/// The `requests` rows of one cell, agent by agent in request order. The generated text is
/// not stored, only its length in characters.
pub fn requests_batch(rec: &CellRecord, campaign: &str) -> Result<RecordBatch, TableError> {
    let rows: Vec<(&str, &RequestRow)> = rec
        .agents
        .iter()
        .flat_map(|a| a.requests.iter().map(move |r| (a.agent.as_str(), r)))
        .collect();
    let n = rows.len();
    let r = || rows.iter().map(|(_, r)| *r);
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "cell_id",
            strs(std::iter::repeat_n(rec.cell_id.as_str(), n)),
        ),
        ("report", strs(std::iter::repeat_n(rec.report.as_str(), n))),
        ("campaign", strs(std::iter::repeat_n(campaign, n))),
        ("agent", strs(rows.iter().map(|(a, _)| *a))),
        ("stage", strs(r().map(|x| x.stage.name()))),
        ("request_index", u32s(r().map(|x| x.index))),
        ("warmup", bools(r().map(|x| x.warmup))),
        ("sent_at", timestamps(r().map(|x| x.record.sent_at_unix_ms))),
        ("ttft_ms", opt_f64s(r().map(|x| x.record.ttft_ms))),
        ("e2e_ms", f64s(r().map(|x| x.record.e2e_ms))),
        (
            "prompt_tokens",
            opt_u64s(r().map(|x| x.record.prompt_tokens)),
        ),
        (
            "output_tokens",
            opt_u64s(r().map(|x| x.record.output_tokens)),
        ),
        ("load_ms", opt_f64s(r().map(|x| x.record.load_ms))),
        (
            "prompt_eval_ms",
            opt_f64s(r().map(|x| x.record.prompt_eval_ms)),
        ),
        ("eval_ms", opt_f64s(r().map(|x| x.record.eval_ms))),
        ("total_ms", opt_f64s(r().map(|x| x.record.total_ms))),
        (
            "throughput_tok_s",
            opt_f64s(r().map(|x| x.throughput_tok_s)),
        ),
        ("client_tok_s", opt_f64s(r().map(|x| x.client_tok_s))),
        ("itl_p50_ms", opt_f64s(r().map(|x| x.itl_p50_ms))),
        ("itl_p99_ms", opt_f64s(r().map(|x| x.itl_p99_ms))),
        ("chunks", u32s(r().map(|x| x.record.chunks))),
        (
            "response_chars",
            u64s(r().map(|x| x.record.text.chars().count() as u64)),
        ),
        (
            "done_reason",
            opt_strs(r().map(|x| x.record.done_reason.as_deref())),
        ),
        (
            "error_kind",
            opt_strs(r().map(|x| x.record.error.as_ref().map(|e| e.kind.name()))),
        ),
        (
            "error_status",
            Arc::new(
                r().map(|x| x.record.error.as_ref().and_then(|e| e.status))
                    .collect::<UInt16Array>(),
            ),
        ),
        (
            "error_message",
            opt_strs(r().map(|x| x.record.error.as_ref().map(|e| e.message.as_str()))),
        ),
        (
            "timing_source",
            opt_strs(r().map(|x| x.record.timing_source.as_deref())),
        ),
    ];
    batch("requests", requests_schema(), cols)
}

/// The `provenance` rows.
pub fn provenance_batch(rows: &[ProvenanceRow]) -> Result<RecordBatch, TableError> {
    let s = |g: fn(&ProvenanceRow) -> &str| strs(rows.iter().map(g));
    let o = |g: fn(&ProvenanceRow) -> Option<&str>| opt_strs(rows.iter().map(g));
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("campaign", s(|r| &r.campaign)),
        ("endpoint", s(|r| &r.endpoint)),
        ("url", s(|r| &r.url)),
        ("host", o(|r| r.host.as_deref())),
        ("os", o(|r| r.os.as_deref())),
        ("gpu_name", o(|r| r.gpu_name.as_deref())),
        ("gpu_uuid", o(|r| r.gpu_uuid.as_deref())),
        ("driver", o(|r| r.driver.as_deref())),
        (
            "cuda_driver_version",
            o(|r| r.cuda_driver_version.as_deref()),
        ),
        ("server_kind", s(|r| &r.server_kind)),
        ("server_version", o(|r| r.server_version.as_deref())),
        ("model_tag", o(|r| r.model_tag.as_deref())),
        ("model_digest", o(|r| r.model_digest.as_deref())),
        ("chimera_version", s(|r| &r.chimera_version)),
        ("git_sha", o(|r| r.git_sha.as_deref())),
    ];
    batch("provenance", provenance_schema(), cols)
}

/// The key-value metadata written on every file of `table`.
pub fn file_metadata(table: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new(META_SCHEMA_VERSION.to_string(), SCHEMA_VERSION.to_string()),
        KeyValue::new(
            META_CHIMERA_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        KeyValue::new(META_TABLE.to_string(), table.to_string()),
    ]
}

fn writer_properties(table: &str) -> Result<WriterProperties, ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_key_value_metadata(Some(file_metadata(table)))
        // One row group per file: parts are small, compacted files are read whole.
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        .build())
}

/// Encodes `batches` (all with `schema`) as one Parquet file of `table` into `out`.
/// `path` only names the destination in errors.
pub(crate) fn write_batches<W: std::io::Write + Send>(
    out: W,
    table: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
    path: &Path,
) -> Result<W, TableError> {
    let pq = |source| TableError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let props = writer_properties(table).map_err(pq)?;
    let mut w = ArrowWriter::try_new(out, schema, Some(props)).map_err(pq)?;
    for b in batches {
        w.write(b).map_err(pq)?;
    }
    w.into_inner().map_err(pq)
}

/// Encodes one table's batch as Parquet bytes (zstd, one row group, chimera metadata).
pub fn to_parquet_bytes(table: &str, batch: &RecordBatch) -> Result<Vec<u8>, TableError> {
    write_batches(
        Vec::new(),
        table,
        batch.schema(),
        std::slice::from_ref(batch),
        Path::new(IN_MEMORY),
    )
}

/// The `telemetry` rows of one cell: its GPU samples, `t_ms` since the cell's start.
pub fn telemetry_batch(rec: &CellRecord) -> Result<RecordBatch, TableError> {
    let s = &rec.gpu_samples;
    let n = s.len();
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "cell_id",
            strs(std::iter::repeat_n(rec.cell_id.as_str(), n)),
        ),
        ("report", strs(std::iter::repeat_n(rec.report.as_str(), n))),
        ("gpu", u32s(s.iter().map(|x| x.gpu))),
        (
            "t_ms",
            f64s(s.iter().map(|x| x.t_unix_ms - rec.started_at_unix_ms)),
        ),
        ("util_pct", opt_f64s(s.iter().map(|x| x.util_pct))),
        ("mem_used_mib", opt_f64s(s.iter().map(|x| x.mem_used_mib))),
        ("power_w", opt_f64s(s.iter().map(|x| x.power_w))),
        ("energy_mj", opt_u64s(s.iter().map(|x| x.energy_mj))),
        ("temp_c", opt_f64s(s.iter().map(|x| x.temp_c))),
        ("sm_clock_mhz", opt_u32s(s.iter().map(|x| x.sm_clock_mhz))),
    ];
    batch("telemetry", telemetry_schema(), cols)
}

/// The Parquet parts of one finished cell, as `(file name, bytes)`: `cells.parquet` (one
/// row), `agents.parquet` (one row per agent run) and `requests.parquet` (one row per
/// request), in that order ([`CELL_PART_FILES`]). This is what the store commits per cell.
pub fn cell_parts(rec: &CellRecord, campaign: &str) -> Result<Vec<(String, Vec<u8>)>, TableError> {
    let [c, a, r] = CELL_PART_FILES;
    let mut parts = vec![
        (
            c.to_string(),
            to_parquet_bytes("cells", &cells_batch(rec, campaign)?)?,
        ),
        (
            a.to_string(),
            to_parquet_bytes("agents", &agents_batch(rec, campaign)?)?,
        ),
        (
            r.to_string(),
            to_parquet_bytes("requests", &requests_batch(rec, campaign)?)?,
        ),
    ];
    if !rec.gpu_samples.is_empty() {
        parts.push((
            TELEMETRY_PART_FILE.to_string(),
            to_parquet_bytes("telemetry", &telemetry_batch(rec)?)?,
        ));
    }
    Ok(parts)
}

/// The optional fourth part of a cell: its GPU samples (only when telemetry produced any).
pub const TELEMETRY_PART_FILE: &str = "telemetry.parquet";

/// The `provenance` table as Parquet bytes (suggested file: `data/<campaign>/provenance.parquet`,
/// which [`compact`] copies to `tables/provenance/part-00000.parquet`).
pub fn provenance_part(rows: &[ProvenanceRow]) -> Result<Vec<u8>, TableError> {
    to_parquet_bytes("provenance", &provenance_batch(rows)?)
}

/// Reads every batch of a chimera Parquet file after checking its schema version (a file
/// without rows gives one empty batch, so the columns are always known). The batches'
/// schema carries the file's key-value metadata (`chimera.*`).
pub fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, TableError> {
    let file = std::fs::File::open(path).map_err(|source| TableError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_from(file, path)
}

/// [`read_parquet`] over bytes in memory (errors name `<in-memory>`).
pub fn read_parquet_bytes(bytes: Bytes) -> Result<Vec<RecordBatch>, TableError> {
    read_from(bytes, Path::new(IN_MEMORY))
}

/// The `chimera.table` and `chimera.schema_version` of a file's key-value metadata, checked.
fn check_metadata(kv: Option<&Vec<KeyValue>>, path: &Path) -> Result<(), TableError> {
    let get = |k: &str| {
        kv.and_then(|kv| kv.iter().find(|e| e.key == k))
            .and_then(|e| e.value.as_deref())
    };
    let Some(v) = get(META_SCHEMA_VERSION) else {
        return Err(TableError::NotChimera {
            path: path.to_path_buf(),
            message: format!("no `{META_SCHEMA_VERSION}` metadata key"),
        });
    };
    let found: u32 = v.trim().parse().map_err(|_| TableError::NotChimera {
        path: path.to_path_buf(),
        message: format!("`{META_SCHEMA_VERSION}` is `{v}`, not a number"),
    })?;
    if found > SCHEMA_VERSION {
        return Err(TableError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn read_from<R: parquet::file::reader::ChunkReader + 'static>(
    reader: R,
    path: &Path,
) -> Result<Vec<RecordBatch>, TableError> {
    let pq = |source| TableError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(reader).map_err(pq)?;
    check_metadata(
        builder.metadata().file_metadata().key_value_metadata(),
        path,
    )?;
    let table = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == META_TABLE))
        .and_then(|e| e.value.clone())
        .unwrap_or_default();
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(pq)?;
    let arrow_err = |source| TableError::Arrow {
        table: table.clone(),
        path: path.to_path_buf(),
        source,
    };
    // The reader's batches lack the file's metadata; give them the file's schema.
    let batches = reader
        .map(|b| b.and_then(|b| b.with_schema(schema.clone())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow_err)?;
    if batches.is_empty() {
        // A file without rows still tells its columns.
        return Ok(vec![RecordBatch::new_empty(schema)]);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests;
