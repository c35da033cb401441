//! Compaction: a campaign's per-cell parts → one hive-partitioned dataset for notebooks.
//!
//! ```text
//! data/<campaign>/cells/<cell-id>/{cells,agents,requests}.parquet   (source of truth)
//!   → data/<campaign>/tables/<table>/report=<REPORT>/part-00000.parquet
//! ```
//!
//! The partition column `report` lives in the folder name only (the hive convention, as
//! pyarrow, Spark, DuckDB and polars write it); readers with hive partitioning restore it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, RecordBatch, StringArray, new_null_array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;

use super::format::{TableError, read_parquet, write_batches};
use super::schema::schema_of;

/// The hive partition key of the compacted dataset.
pub const PARTITION_KEY: &str = "report";

/// Tables compacted from the per-cell parts, partitioned by report.
const CELL_TABLES: [&str; 5] = ["cells", "agents", "requests", "telemetry", "server_metrics"];

/// Per-cell parts that only some cells have: GPU samples, server metrics.
const OPTIONAL_TABLES: [&str; 2] = ["telemetry", "server_metrics"];

/// The one file per partition.
const PART_FILE: &str = "part-00000.parquet";

/// What [`compact`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactSummary {
    /// Cell directories read.
    pub cell_dirs: usize,
    /// Reports found (one partition each), sorted.
    pub reports: Vec<String>,
    /// Rows written per table (`cells`, `agents`, `requests`, and `provenance` when the
    /// campaign has a `provenance.parquet`).
    pub rows: BTreeMap<String, usize>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

impl CompactSummary {
    /// Rows written to `table` (0 when absent).
    pub fn rows_of(&self, table: &str) -> usize {
        self.rows.get(table).copied().unwrap_or(0)
    }
}

/// The folder name of a report's partition: `report=<value>`, with every byte outside
/// `[A-Za-z0-9._-]` percent-encoded (an empty value is `__HIVE_DEFAULT_PARTITION__`).
pub fn partition_dir_name(report: &str) -> String {
    if report.is_empty() {
        return format!("{PARTITION_KEY}=__HIVE_DEFAULT_PARTITION__");
    }
    let mut s = format!("{PARTITION_KEY}=");
    for b in report.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TableError + '_ {
    move |source| TableError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads one part and checks that its columns are those of `table` (names, order, types).
/// A part written with an older schema version that lacks only trailing nullable columns
/// (added by later versions) gets them as nulls.
fn read_part(path: &Path, table: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>, TableError> {
    let mismatch = |message: String| TableError::SchemaMismatch {
        path: path.to_path_buf(),
        table: table.to_string(),
        message,
    };
    read_parquet(path)?
        .into_iter()
        .map(|b| {
            let found: Vec<&str> = b
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            let want: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let older = found.len() < want.len()
                && want[..found.len()] == found[..]
                && schema.fields()[found.len()..]
                    .iter()
                    .all(|f| f.is_nullable());
            if found != want && !older {
                return Err(mismatch(format!("columns {found:?}, expected {want:?}")));
            }
            let mut columns = b.columns().to_vec();
            for f in &schema.fields()[found.len()..] {
                columns.push(new_null_array(f.data_type(), b.num_rows()));
            }
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| mismatch(e.to_string()))
        })
        .collect()
}

/// Splits `batch` by the values of its `report` column.
fn split_by_report(
    batch: &RecordBatch,
    path: &Path,
    table: &str,
    out: &mut BTreeMap<String, Vec<RecordBatch>>,
) -> Result<(), TableError> {
    let col = batch
        .column_by_name(PARTITION_KEY)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| TableError::SchemaMismatch {
            path: path.to_path_buf(),
            table: table.to_string(),
            message: format!("no string column `{PARTITION_KEY}`"),
        })?;
    let values: BTreeSet<&str> = (0..col.len())
        .filter(|&i| col.is_valid(i))
        .map(|i| col.value(i))
        .collect();
    if values.len() == 1 {
        if let Some(v) = values.first() {
            out.entry((*v).to_string()).or_default().push(batch.clone());
        }
        return Ok(());
    }
    for v in values {
        let mask: BooleanArray = (0..col.len())
            .map(|i| Some(col.is_valid(i) && col.value(i) == v))
            .collect();
        let part = filter_record_batch(batch, &mask).map_err(|source| TableError::Arrow {
            table: table.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
        out.entry(v.to_string()).or_default().push(part);
    }
    Ok(())
}

/// Writes `batches` as `path` atomically: a temporary sibling, fsync, rename, fsync of the
/// folder. A crash leaves either the old file or the new one, never half a file.
fn write_atomic(
    path: &Path,
    table: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), TableError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Ends in `.partial`, not `.parquet`, so that no glob over the dataset picks it up.
    let tmp = dir.join(format!(".tmp-{name}-{}.partial", std::process::id()));
    let file = fs::File::create(&tmp).map_err(io(&tmp))?;
    let result = (|| {
        let w = write_batches(std::io::BufWriter::new(file), table, schema, batches, path)?;
        let file = w.into_inner().map_err(|e| TableError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io(path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) -> Result<(), TableError> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes partitions of an older compaction that the new one does not have, and
/// temporary files left by a crashed one.
fn remove_stale(table_dir: &Path, keep: &BTreeSet<String>) -> Result<(), TableError> {
    let entries = match fs::read_dir(table_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(table_dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(table_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(".tmp-") {
            let _ = fs::remove_file(&path);
        } else if name.starts_with(&format!("{PARTITION_KEY}=")) && !keep.contains(&name) {
            fs::remove_dir_all(&path).map_err(io(&path))?;
        } else if path.is_dir() {
            for inner in fs::read_dir(&path).map_err(io(&path))?.flatten() {
                if inner.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = fs::remove_file(inner.path());
                }
            }
        }
    }
    Ok(())
}

/// Compacts a campaign: reads every committed cell's parts
/// (`<campaign_dir>/cells/<cell-id>/{cells,agents,requests}.parquet`; folders whose name
/// starts with `.tmp-` are in-flight commits and skipped) and writes
/// `<campaign_dir>/tables/<table>/report=<REPORT>/part-00000.parquet`, one file per table
/// and report (every report that has a `cells` row gets all three tables, possibly with zero
/// rows). Rows are in cell-id order. The partition column `report` is in the folder name,
/// not in the file. The `<campaign_dir>/provenance.parquet` and those of its shards
/// (`shards/*/provenance.parquet`), when present, are gathered into
/// `tables/provenance/part-00000.parquet`. An older compaction is replaced file by file
/// (each written to a temporary name, then renamed) and its partitions that no longer
/// exist are removed. The parts are never modified.
pub fn compact(campaign_dir: &Path) -> Result<CompactSummary, TableError> {
    let cells_dir = campaign_dir.join("cells");
    let mut cell_dirs: Vec<PathBuf> = Vec::new();
    match fs::read_dir(&cells_dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(io(&cells_dir))?;
                let name = entry.file_name();
                if name.to_string_lossy().starts_with(".tmp-") {
                    continue;
                }
                if entry.file_type().map_err(io(&entry.path()))?.is_dir() {
                    cell_dirs.push(entry.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&cells_dir)(e)),
    }
    cell_dirs.sort();

    // table → report → batches
    let mut by_table: BTreeMap<&str, BTreeMap<String, Vec<RecordBatch>>> = BTreeMap::new();
    for table in CELL_TABLES {
        let Some(schema) = schema_of(table) else {
            continue;
        };
        let groups = by_table.entry(table).or_default();
        for dir in &cell_dirs {
            let path = dir.join(format!("{table}.parquet"));
            if OPTIONAL_TABLES.contains(&table) && !path.exists() {
                continue;
            }
            for b in read_part(&path, table, &schema)? {
                split_by_report(&b, &path, table, groups)?;
            }
        }
    }
    let reports: BTreeSet<String> = by_table
        .get("cells")
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();

    let tables_dir = campaign_dir.join("tables");
    let mut summary = CompactSummary {
        cell_dirs: cell_dirs.len(),
        reports: reports.iter().cloned().collect(),
        ..CompactSummary::default()
    };
    for table in CELL_TABLES {
        let Some(schema) = schema_of(table) else {
            continue;
        };
        let keep_idx: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| schema.field(i).name() != PARTITION_KEY)
            .collect();
        let file_schema =
            std::sync::Arc::new(
                schema
                    .project(&keep_idx)
                    .map_err(|source| TableError::Arrow {
                        table: table.to_string(),
                        path: tables_dir.clone(),
                        source,
                    })?,
            );
        let groups = by_table.remove(table).unwrap_or_default();
        let all: BTreeSet<&String> = if OPTIONAL_TABLES.contains(&table) {
            groups.keys().collect()
        } else {
            reports.iter().chain(groups.keys()).collect()
        };
        let mut dirs = BTreeSet::new();
        let mut rows = 0;
        for report in all {
            let batches: Vec<RecordBatch> = groups
                .get(report)
                .map(|v| {
                    v.iter()
                        .map(|b| b.project(&keep_idx))
                        .collect::<Result<_, _>>()
                })
                .transpose()
                .map_err(|source| TableError::Arrow {
                    table: table.to_string(),
                    path: tables_dir.clone(),
                    source,
                })?
                .unwrap_or_default();
            let batches: Vec<RecordBatch> = batches
                .into_iter()
                .map(|b| RecordBatch::try_new(file_schema.clone(), b.columns().to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|source| TableError::Arrow {
                    table: table.to_string(),
                    path: tables_dir.clone(),
                    source,
                })?;
            rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
            let dir_name = partition_dir_name(report);
            let path = tables_dir.join(table).join(&dir_name).join(PART_FILE);
            write_atomic(&path, table, file_schema.clone(), &batches)?;
            dirs.insert(dir_name);
            summary.files.push(path);
        }
        remove_stale(&tables_dir.join(table), &dirs)?;
        summary.rows.insert(table.to_string(), rows);
    }

    let provs = super::provenance_files(campaign_dir);
    if !provs.is_empty()
        && let Some(schema) = schema_of("provenance")
    {
        let mut batches = Vec::new();
        for prov in &provs {
            batches.extend(read_part(prov, "provenance", &schema)?);
        }
        let path = tables_dir.join("provenance").join(PART_FILE);
        write_atomic(&path, "provenance", schema, &batches)?;
        summary.rows.insert(
            "provenance".to_string(),
            batches.iter().map(RecordBatch::num_rows).sum(),
        );
        summary.files.push(path);
    }
    Ok(summary)
}
