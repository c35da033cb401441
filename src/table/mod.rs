//! Stage 5: the Parquet tables, chimera's public data interface (documented in `docs/data.md`).
//!
//! A finished cell becomes three small Parquet files ([`cell_parts`]: `cells.parquet`,
//! `agents.parquet`, `requests.parquet`, zstd, one row group each) that the store commits in
//! the cell's directory; those parts are the source of truth. [`compact`] gathers them into a
//! hive-partitioned dataset (`tables/<table>/report=<REPORT>/part-00000.parquet`) for
//! notebooks. Every file carries key-value metadata: `chimera.schema_version`
//! ([`SCHEMA_VERSION`]), `chimera.version` and `chimera.table`; readers refuse a file written
//! with a newer schema version.

pub(crate) mod columns;
mod compact;
mod format;
mod rows;
mod schema;

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;

use crate::record::CellRecord;

use format::IN_MEMORY;
pub use format::{
    META_CHIMERA_VERSION, META_SCHEMA_VERSION, META_TABLE, SCHEMA_VERSION, TableError,
    file_metadata, read_parquet, read_parquet_bytes, read_parquet_columns, to_parquet_bytes,
};

pub use columns::{Column, ColumnError, Row, UtcMs};
pub use rows::{
    AgentsRow, CellsRow, GAP_KIND, ProvenanceRow, RequestsRow, ServerMetricsRow, TelemetryRow,
};

pub use compact::{CompactSummary, PARTITION_KEY, compact, partition_dir_name};
pub use schema::{
    agents_schema, cells_schema, provenance_schema, requests_schema, schema_of,
    server_metrics_schema, telemetry_schema,
};

/// File names of a cell's parts, in the order [`cell_parts`] returns them.
pub const CELL_PART_FILES: [&str; 3] = ["cells.parquet", "agents.parquet", "requests.parquet"];

/// Why the rows of a file could not be read.
#[derive(Debug)]
pub enum RowsError {
    /// The file is not a readable chimera table.
    Table(TableError),
    /// A column is missing or of another type.
    Column(ColumnError),
}

impl std::fmt::Display for RowsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowsError::Table(e) => write!(f, "{e}"),
            RowsError::Column(e) => write!(f, "column `{}` {}", e.column, e.problem),
        }
    }
}

/// Every row of table `R` in the Parquet file at `path`.
pub fn read_rows<R: Row>(path: &std::path::Path) -> Result<Vec<R>, RowsError> {
    let mut out = Vec::new();
    for b in &read_parquet(path).map_err(RowsError::Table)? {
        out.extend(R::from_batch(b).map_err(RowsError::Column)?);
    }
    Ok(out)
}

/// The batch of `rows` of table `R`, with the table's schema.
pub fn rows_batch<R: Row>(rows: &[R]) -> Result<RecordBatch, TableError> {
    R::to_batch(rows).map_err(|source| TableError::Arrow {
        table: R::TABLE.to_string(),
        path: PathBuf::from(IN_MEMORY),
        source,
    })
}

/// The `cells` row of one cell.
pub fn cells_batch(rec: &CellRecord, campaign: &str) -> Result<RecordBatch, TableError> {
    rows_batch(&[CellsRow::of(rec, campaign)])
}

/// The `agents` rows of one cell, one per agent run.
pub fn agents_batch(rec: &CellRecord, campaign: &str) -> Result<RecordBatch, TableError> {
    rows_batch(&AgentsRow::of(rec, campaign))
}

/// The `requests` rows of one cell, agent by agent in request order. The generated text is
/// not stored, only its length in characters.
pub fn requests_batch(rec: &CellRecord, campaign: &str) -> Result<RecordBatch, TableError> {
    rows_batch(&RequestsRow::of(rec, campaign))
}

/// The `provenance` rows.
pub fn provenance_batch(rows: &[ProvenanceRow]) -> Result<RecordBatch, TableError> {
    rows_batch(rows)
}

/// The `telemetry` rows of one cell: its GPU samples, `t_ms` since the cell's start.
pub fn telemetry_batch(rec: &CellRecord) -> Result<RecordBatch, TableError> {
    rows_batch(&TelemetryRow::of(rec))
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
    if !rec.server_samples.is_empty() {
        parts.push((
            SERVER_METRICS_PART_FILE.to_string(),
            to_parquet_bytes("server_metrics", &rows_batch(&ServerMetricsRow::of(rec))?)?,
        ));
    }
    Ok(parts)
}

/// The optional fourth part of a cell: its GPU samples (only when telemetry produced any).
pub const TELEMETRY_PART_FILE: &str = "telemetry.parquet";

/// The optional part of a cell whose endpoints have `server_metrics`: the servers' readings.
pub const SERVER_METRICS_PART_FILE: &str = "server_metrics.parquet";

/// The `provenance` table as Parquet bytes (suggested file: `data/<campaign>/provenance.parquet`,
/// which [`compact`] copies to `tables/provenance/part-00000.parquet`).
pub fn provenance_part(rows: &[ProvenanceRow]) -> Result<Vec<u8>, TableError> {
    to_parquet_bytes("provenance", &provenance_batch(rows)?)
}

/// The campaign's `provenance.parquet` and its shards' (`shards/<I>-of-<N>/`), in name order.
pub fn provenance_files(campaign_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let own = campaign_dir.join("provenance.parquet");
    if own.is_file() {
        out.push(own);
    }
    if let Ok(rd) = std::fs::read_dir(campaign_dir.join("shards")) {
        let mut shards: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path().join("provenance.parquet"))
            .filter(|p| p.is_file())
            .collect();
        shards.sort();
        out.extend(shards);
    }
    out
}

#[cfg(test)]
mod tests;
