//! Parquet encoding and decoding of chimera's tables: zstd, one row group per file, and the
//! key-value metadata (`chimera.schema_version`, `chimera.version`, `chimera.table`) every file
//! carries; readers refuse a file written with a newer schema version.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

/// Version of the table schemas. Bump it on any change a reader could notice (a column
/// renamed, retyped, removed, or its meaning changed); adding a nullable column at the end
/// also bumps it. Readers accept files up to this version.
///
/// History: 1 = first release; 2 = `requests.timing_source` (nullable, last column); 3 =
/// `requests.published_ttft_ms` and `agents.published_ttft_mean_ms` (the TTFT as the report's
/// harness defined it), `cells.runtime`, `language`, `block`, `harness` and `agents.model`,
/// `runtime`, `language`, `block`, `harness` (nullable, last columns); 4 = `cells.start_skew_ms`
/// and `agents.process_wall_ms`, `process_user_cpu_ms`, `process_sys_cpu_ms`,
/// `process_peak_rss_mib`, `process_exit_code`, `start_offset_ms` (`command` workloads); 5 =
/// `cells.first_request_skew_ms`, the equal-work columns (`equal_work_alone_ms`,
/// `equal_work_speedup`, `equal_work_efficiency_pct`, `isolated_sum_tok_s`,
/// `throughput_efficiency_pct`, `alone_per_output_token_ms`, `together_per_output_token_ms`),
/// the self-checks (`suspect`, `suspect_reasons`) and
/// `agents.decode_per_output_token_ms`, `prefill_per_prompt_token_ms`; 6 = where each cell
/// ran: `cells.host`, `shard`, `gpu_name`, `gpu_uuid`; 7 = the optional `server_metrics` table (a
/// server's Prometheus readings while a cell ran; campaigns without it load as before); 8 = the
/// serving-load columns of `requests` (`load_user`, `scheduled_ms`, `load_sent_ms`,
/// `lateness_ms`, `input_tokens_requested`, `output_tokens_requested`, `itl_ms`) and
/// `cells.server_flags` (a configuration's managed-server settings). Parts
/// of an older version that lack trailing nullable columns are read with those columns null.
pub const SCHEMA_VERSION: u32 = 8;

/// Metadata key: the schema version a file was written with.
pub const META_SCHEMA_VERSION: &str = "chimera.schema_version";
/// Metadata key: the chimera version that wrote a file.
pub const META_CHIMERA_VERSION: &str = "chimera.version";
/// Metadata key: the table a file belongs to.
pub const META_TABLE: &str = "chimera.table";

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

pub(crate) const IN_MEMORY: &str = "<in-memory>";

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

/// Reads only the columns `columns` of a chimera Parquet file (a projection: the file's other
/// columns are neither decompressed nor decoded), one batch at a time: `each` sees every
/// batch of `batch_rows` rows or fewer as it is decoded, row group after row group, so no
/// more than one batch of the projected columns is held. The schema version is checked as
/// [`read_parquet`] does. Names the file lacks are left out of the batches (a trailing
/// column an older schema version did not have), as are unknown names.
pub fn read_parquet_columns(
    path: &Path,
    columns: &[&str],
    batch_rows: usize,
    mut each: impl FnMut(&RecordBatch) -> Result<(), TableError>,
) -> Result<(), TableError> {
    let pq = |source| TableError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| TableError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let kv = builder.metadata().file_metadata().key_value_metadata();
    check_metadata(kv, path)?;
    let table = kv
        .and_then(|kv| kv.iter().find(|e| e.key == META_TABLE))
        .and_then(|e| e.value.clone())
        .unwrap_or_default();
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(batch_rows.max(1))
        .build()
        .map_err(pq)?;
    for batch in reader {
        let batch = batch.map_err(|source| TableError::Arrow {
            table: table.clone(),
            path: path.to_path_buf(),
            source,
        })?;
        each(&batch)?;
    }
    Ok(())
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
