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
mod rows;
mod schema;

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::record::CellRecord;

pub use columns::{Column, ColumnError, Row, UtcMs};
pub use rows::{AgentsRow, CellsRow, ProvenanceRow, RequestsRow, TelemetryRow};

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

const IN_MEMORY: &str = "<in-memory>";

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
