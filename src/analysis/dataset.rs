//! Reading a campaign's Parquet parts for analysis, in parallel (rayon) across files. The
//! few rows of `cells`, `agents`, `telemetry` and `provenance` become the tables' typed rows
//! ([`crate::table::CellsRow`] and its siblings); `requests`, millions of rows in a large
//! campaign, is read as a projection of the columns the analysis uses ([`REQUEST_COLUMNS`]),
//! batch by batch, into compact per-cell columns ([`CellRequests`]): numbers in flat vectors,
//! agent ids and stages interned, nothing else kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use rayon::prelude::*;

use super::error::AnalysisError;
use crate::backend::ErrorKind;
use crate::table::{
    self, AgentsRow, CellsRow, Column, ColumnError, ProvenanceRow, Row, ServerMetricsRow,
    TableError, TelemetryRow,
};
use crate::workload::Stage;

/// Every row of one campaign that the analysis uses.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// `cells`.
    pub cells: Vec<CellsRow>,
    /// `agents`.
    pub agents: Vec<AgentsRow>,
    /// `requests`: the non-warm-up rows, one [`CellRequests`] per cell and file, in the order
    /// of the cell directories.
    pub requests: Vec<CellRequests>,
    /// `telemetry`.
    pub telemetry: Vec<TelemetryRow>,
    /// `provenance`.
    pub provenance: Vec<ProvenanceRow>,
    /// `server_metrics` (empty for campaigns without it).
    pub server_metrics: Vec<ServerMetricsRow>,
    /// Parquet files read.
    pub files: usize,
}

/// The columns of `requests` the analysis reads; the others are never decoded. The last
/// nine are kept for the rows of serving loads only (stage `load`).
pub const REQUEST_COLUMNS: [&str; 19] = [
    "cell_id",
    "agent",
    "stage",
    "warmup",
    "error_kind",
    "throughput_tok_s",
    "ttft_ms",
    "published_ttft_ms",
    "load_ms",
    "output_tokens",
    "e2e_ms",
    "prompt_tokens",
    "load_user",
    "scheduled_ms",
    "load_sent_ms",
    "input_tokens_requested",
    "output_tokens_requested",
    "itl_ms",
    "request_index",
];

/// Rows per decoded batch of `requests`.
const BATCH_ROWS: usize = 65_536;

/// The non-warm-up `requests` rows of one cell, column by column, in file order. A null
/// number (or NaN, "not recorded") is NaN here; the accessors of [`ReqRef`] give `None` for
/// it, as the nullable columns of [`crate::table::RequestsRow`] read.
#[derive(Debug, Clone, Default)]
pub struct CellRequests {
    /// Cell id.
    pub cell_id: String,
    /// The distinct agent ids; `agent` indexes it.
    pub agents: Vec<String>,
    /// Agent of each row (index into `agents`).
    pub agent: Vec<u32>,
    /// The distinct stages; `stage` indexes it.
    pub stages: Vec<Stage>,
    /// Stage of each row (index into `stages`).
    pub stage: Vec<u32>,
    /// `throughput_tok_s`.
    pub throughput_tok_s: Vec<f64>,
    /// `ttft_ms`.
    pub ttft_ms: Vec<f64>,
    /// `published_ttft_ms`.
    pub published_ttft_ms: Vec<f64>,
    /// `load_ms`.
    pub load_ms: Vec<f64>,
    /// `output_tokens`, as a float.
    pub output_tokens: Vec<f64>,
    /// The rows of stage `load` as serving samples, with their agent (index into
    /// `agents`); empty for cells of other workloads.
    pub load: Vec<(u32, crate::load::Sample)>,
    /// Rows with an `error_kind` (failed requests).
    pub failed: usize,
    /// Warm-up rows (counted, not kept).
    pub warmups: usize,
}

impl CellRequests {
    /// Non-warm-up rows.
    pub fn len(&self) -> usize {
        self.agent.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.agent.is_empty()
    }

    /// The index of agent id `agent` in `agents`.
    pub fn agent_code(&self, agent: &str) -> Option<u32> {
        self.agents
            .iter()
            .position(|a| a == agent)
            .map(|i| i as u32)
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> ReqRef<'_> {
        ReqRef { t: self, i }
    }
}

/// One row of a [`CellRequests`].
#[derive(Debug, Clone, Copy)]
pub struct ReqRef<'a> {
    t: &'a CellRequests,
    i: usize,
}

fn present(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

impl ReqRef<'_> {
    /// `throughput_tok_s`.
    pub fn throughput_tok_s(&self) -> Option<f64> {
        present(self.t.throughput_tok_s[self.i])
    }
    /// `published_ttft_ms`.
    pub fn published_ttft_ms(&self) -> Option<f64> {
        present(self.t.published_ttft_ms[self.i])
    }
}

/// The rows of table `R` in one file; a missing or mistyped column is an error naming it.
fn rows_of<R: Row>(path: &Path) -> Result<Vec<R>, AnalysisError> {
    table::read_rows(path).map_err(|e| match e {
        table::RowsError::Table(source) => table_err(path, source),
        table::RowsError::Column(e) => column_err(path, e),
    })
}

fn table_err(path: &Path, source: TableError) -> AnalysisError {
    AnalysisError::Table {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

fn column_err(path: &Path, e: ColumnError) -> AnalysisError {
    AnalysisError::Column {
        path: path.to_path_buf(),
        column: e.column.to_owned(),
        problem: e.problem,
    }
}

/// Column `name` of `batch` as indexes into `distinct` (extended with values not yet in it).
/// Each distinct text is read once, as [`Column::read`] reads it (so a null, a missing
/// column or an unknown value reads, or fails, exactly as in the typed rows).
fn interned<T: Column + PartialEq>(
    batch: &RecordBatch,
    name: &'static str,
    distinct: &mut Vec<T>,
) -> Result<Vec<u32>, ColumnError> {
    let err = |problem| ColumnError {
        column: name,
        problem,
    };
    let mut code_of = |v: T| -> u32 {
        match distinct.iter().position(|d| *d == v) {
            Some(i) => i as u32,
            None => {
                distinct.push(v);
                (distinct.len() - 1) as u32
            }
        }
    };
    let col = batch.column_by_name(name);
    let Some(strings) = col
        .filter(|c| *c.data_type() == DataType::Utf8)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
    else {
        // Missing or not text: the typed path (which fails or fills as the rows would).
        let vals = T::read(col, batch.num_rows()).map_err(err)?;
        return Ok(vals.into_iter().map(&mut code_of).collect());
    };
    let mut seen: Vec<(Option<&str>, u32)> = Vec::new();
    let mut last: Option<(Option<&str>, u32)> = None;
    let mut out = Vec::with_capacity(strings.len());
    for i in 0..strings.len() {
        let key = (!strings.is_null(i)).then(|| strings.value(i));
        if let Some((k, c)) = last
            && k == key
        {
            out.push(c);
            continue;
        }
        let code = match seen.iter().find(|(k, _)| *k == key) {
            Some(&(_, c)) => c,
            None => {
                let one: ArrayRef = Arc::new(StringArray::from(vec![key]));
                let v = T::read(Some(&one), 1)
                    .map_err(err)?
                    .pop()
                    .ok_or_else(|| err("reads as no value".into()))?;
                let c = code_of(v);
                seen.push((key, c));
                c
            }
        };
        last = Some((key, code));
        out.push(code);
    }
    Ok(out)
}

/// A nullable float column as floats, null (and NaN) as NaN.
fn floats(batch: &RecordBatch, name: &'static str) -> Result<Vec<f64>, ColumnError> {
    let col = batch.column_by_name(name);
    if let Some(a) = col.and_then(|c| c.as_any().downcast_ref::<Float64Array>()) {
        return Ok(a.iter().map(|v| v.unwrap_or(f64::NAN)).collect());
    }
    let vals = <Option<f64>>::read(col, batch.num_rows()).map_err(|problem| ColumnError {
        column: name,
        problem,
    })?;
    Ok(vals.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// `warmup` (a null reads as false, as in the typed rows).
fn flags(batch: &RecordBatch, name: &'static str) -> Result<Vec<bool>, ColumnError> {
    let col = batch.column_by_name(name);
    if let Some(a) = col.and_then(|c| c.as_any().downcast_ref::<BooleanArray>()) {
        return Ok((0..a.len()).map(|i| !a.is_null(i) && a.value(i)).collect());
    }
    bool::read(col, batch.num_rows()).map_err(|problem| ColumnError {
        column: name,
        problem,
    })
}

/// Appends the rows of one decoded batch of `requests` to `out` (one entry per cell id).
fn add_requests(batch: &RecordBatch, out: &mut Vec<CellRequests>) -> Result<(), ColumnError> {
    let mut cell_ids: Vec<String> = Vec::new();
    let cell = interned::<String>(batch, "cell_id", &mut cell_ids)?;
    let mut agent_ids: Vec<String> = Vec::new();
    let agent = interned::<String>(batch, "agent", &mut agent_ids)?;
    let mut stage_vals: Vec<Stage> = Vec::new();
    let stage = interned::<Stage>(batch, "stage", &mut stage_vals)?;
    let mut error_vals: Vec<Option<ErrorKind>> = Vec::new();
    let error = interned::<Option<ErrorKind>>(batch, "error_kind", &mut error_vals)?;
    let warmup = flags(batch, "warmup")?;
    let tput = floats(batch, "throughput_tok_s")?;
    let ttft = floats(batch, "ttft_ms")?;
    let pttft = floats(batch, "published_ttft_ms")?;
    let load = floats(batch, "load_ms")?;
    let tokens = read::<Option<u64>>(batch, "output_tokens")?;
    let mut served = LoadColumns::default();
    if stage_vals.contains(&Stage::Load) {
        served = LoadColumns::of(batch)?;
    }
    // Where each batch-local cell id lives in `out`.
    let slots: Vec<usize> = cell_ids
        .into_iter()
        .map(|id| match out.iter().position(|c| c.cell_id == id) {
            Some(i) => i,
            None => {
                out.push(CellRequests {
                    cell_id: id,
                    ..CellRequests::default()
                });
                out.len() - 1
            }
        })
        .collect();
    for i in 0..batch.num_rows() {
        let t = &mut out[slots[cell[i] as usize]];
        if warmup[i] {
            t.warmups += 1;
            continue;
        }
        let a = &agent_ids[agent[i] as usize];
        let a = match t.agent_code(a) {
            Some(c) => c,
            None => {
                t.agents.push(a.clone());
                (t.agents.len() - 1) as u32
            }
        };
        let s = stage_vals[stage[i] as usize];
        let s = match t.stages.iter().position(|x| *x == s) {
            Some(c) => c as u32,
            None => {
                t.stages.push(s);
                (t.stages.len() - 1) as u32
            }
        };
        t.agent.push(a);
        t.stage.push(s);
        t.throughput_tok_s.push(tput[i]);
        t.ttft_ms.push(ttft[i]);
        t.published_ttft_ms.push(pttft[i]);
        t.load_ms.push(load[i]);
        t.output_tokens
            .push(tokens[i].map_or(f64::NAN, |x| x as f64));
        let failed = error_vals[error[i] as usize].is_some();
        if failed {
            t.failed += 1;
        }
        if stage_vals[stage[i] as usize] == Stage::Load {
            let sample = served.sample(i, ttft[i], tokens[i], !failed);
            t.load.push((a, sample));
        }
    }
    Ok(())
}

/// Column `name` as `T` reads it (a missing column: as `T` reads absence).
fn read<T: Column>(batch: &RecordBatch, name: &'static str) -> Result<Vec<T>, ColumnError> {
    T::read(batch.column_by_name(name), batch.num_rows()).map_err(|problem| ColumnError {
        column: name,
        problem,
    })
}

/// The columns only rows of stage `load` use, decoded when a batch has such rows.
#[derive(Default)]
struct LoadColumns {
    e2e: Vec<f64>,
    prompt_tokens: Vec<Option<u64>>,
    user: Vec<Option<u32>>,
    scheduled: Vec<Option<f64>>,
    sent: Vec<Option<f64>>,
    input_requested: Vec<Option<u32>>,
    output_requested: Vec<Option<u32>>,
    itl: Vec<Vec<f64>>,
    index: Vec<u32>,
}

impl LoadColumns {
    fn of(batch: &RecordBatch) -> Result<Self, ColumnError> {
        Ok(LoadColumns {
            e2e: read::<f64>(batch, "e2e_ms")?,
            prompt_tokens: read(batch, "prompt_tokens")?,
            user: read(batch, "load_user")?,
            scheduled: read(batch, "scheduled_ms")?,
            sent: read(batch, "load_sent_ms")?,
            input_requested: read(batch, "input_tokens_requested")?,
            output_requested: read(batch, "output_tokens_requested")?,
            itl: read(batch, "itl_ms")?,
            index: read(batch, "request_index")?,
        })
    }

    /// Row `i` as the sample the load driver made of it.
    fn sample(&self, i: usize, ttft: f64, output: Option<u64>, ok: bool) -> crate::load::Sample {
        let sent = self.sent[i].unwrap_or(f64::NAN);
        crate::load::Sample {
            index: u64::from(self.index[i]),
            user: self.user[i],
            scheduled_ms: self.scheduled[i],
            sent_ms: sent,
            done_ms: sent + self.e2e[i],
            warmup: false,
            ok,
            ttft_ms: present(ttft),
            e2e_ms: self.e2e[i],
            itl_ms: self.itl[i].clone(),
            output_tokens: output,
            input_tokens: self.prompt_tokens[i],
            input_tokens_requested: self.input_requested[i],
            output_tokens_requested: self.output_requested[i],
        }
    }
}

/// The non-warm-up rows of one `requests` file, read as a projection batch by batch.
fn requests_of(path: &Path) -> Result<Vec<CellRequests>, AnalysisError> {
    let mut out = Vec::new();
    let mut bad: Option<ColumnError> = None;
    table::read_parquet_columns(path, &REQUEST_COLUMNS, BATCH_ROWS, |b| {
        if bad.is_none()
            && let Err(e) = add_requests(b, &mut out)
        {
            bad = Some(e);
        }
        Ok(())
    })
    .map_err(|source| table_err(path, source))?;
    if let Some(e) = bad {
        return Err(column_err(path, e));
    }
    for t in &mut out {
        t.shrink();
    }
    Ok(out)
}

impl CellRequests {
    fn shrink(&mut self) {
        self.agent.shrink_to_fit();
        self.stage.shrink_to_fit();
        self.throughput_tok_s.shrink_to_fit();
        self.ttft_ms.shrink_to_fit();
        self.published_ttft_ms.shrink_to_fit();
        self.load_ms.shrink_to_fit();
        self.output_tokens.shrink_to_fit();
        self.load.shrink_to_fit();
    }
}

/// What one cell directory holds.
#[derive(Default)]
struct Part {
    cells: Vec<CellsRow>,
    agents: Vec<AgentsRow>,
    requests: Vec<CellRequests>,
    telemetry: Vec<TelemetryRow>,
    server_metrics: Vec<ServerMetricsRow>,
    files: usize,
}

fn read_cell_dir(dir: &Path) -> Result<Part, AnalysisError> {
    let mut p = Part::default();
    let f = |name: &str| dir.join(name);
    let [cells, agents, requests] = table::CELL_PART_FILES;
    p.cells = rows_of(&f(cells))?;
    p.agents = rows_of(&f(agents))?;
    p.requests = requests_of(&f(requests))?;
    p.files = 3;
    let tel = f(table::TELEMETRY_PART_FILE);
    if tel.exists() {
        p.telemetry = rows_of(&tel)?;
        p.files += 1;
    }
    let sm = f(table::SERVER_METRICS_PART_FILE);
    if sm.exists() {
        p.server_metrics = rows_of(&sm)?;
        p.files += 1;
    }
    Ok(p)
}

/// Reads every committed cell of a campaign (`cell_dirs`: the committed cell directories)
/// and its `provenance.parquet`, in parallel across cells.
pub fn load(campaign_dir: &Path, cell_dirs: &[PathBuf]) -> Result<Dataset, AnalysisError> {
    let parts: Vec<Part> = cell_dirs
        .par_iter()
        .map(|d| read_cell_dir(d))
        .collect::<Result<_, _>>()?;
    let mut ds = Dataset::default();
    for p in parts {
        ds.cells.extend(p.cells);
        ds.agents.extend(p.agents);
        ds.requests.extend(p.requests);
        ds.telemetry.extend(p.telemetry);
        ds.server_metrics.extend(p.server_metrics);
        ds.files += p.files;
    }
    // The campaign's provenance and its shards' (each shard writes its own).
    for prov in crate::table::provenance_files(campaign_dir) {
        ds.provenance.extend(rows_of(&prov)?);
        ds.files += 1;
    }
    // Deterministic order whatever the parallel read order was.
    ds.cells
        .sort_by(|a, b| (a.started_at, &a.cell_id).cmp(&(b.started_at, &b.cell_id)));
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{AgentRun, CellAxes, CellKind, CellRecord};
    use crate::table::{CELL_PART_FILES, agents_batch, cells_batch, requests_batch};
    use arrow::array::RecordBatch;

    fn agent() -> AgentRun {
        AgentRun {
            agent: "A".into(),
            role: crate::manifest::Role::Client,
            endpoint: "gpu0".into(),
            isolated: true,
            options: crate::manifest::Options::default(),
            duration_ms: 10.0,
            files_ingested: None,
            server_version: None,
            model_digest: None,
            aggregate: Default::default(),
            requests: Vec::new(),
            process: None,
        }
    }

    /// `batch` without its last `drop` columns, written as a part of schema version 2.
    fn version_2_part(batch: &RecordBatch, table: &str, drop: usize) -> Vec<u8> {
        use parquet::arrow::ArrowWriter;
        use parquet::file::metadata::KeyValue;
        use parquet::file::properties::WriterProperties;
        let keep = batch.num_columns() - drop;
        let old = batch
            .project(&(0..keep).collect::<Vec<_>>())
            .expect("project");
        let kv = vec![
            KeyValue::new(table::META_SCHEMA_VERSION.to_owned(), "2".to_owned()),
            KeyValue::new(table::META_TABLE.to_owned(), table.to_owned()),
        ];
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(kv))
            .build();
        let mut w = ArrowWriter::try_new(Vec::new(), old.schema(), Some(props)).expect("writer");
        w.write(&old).expect("write");
        w.into_inner().expect("close")
    }

    fn write_cell(campaign: &Path, rec: &CellRecord, old: bool) -> PathBuf {
        let dir = campaign.join("cells").join(&rec.key.cell_id);
        std::fs::create_dir_all(&dir).expect("cell dir");
        let [c, a, r] = CELL_PART_FILES;
        let cells = cells_batch(rec, "camp").expect("cells");
        let agents = agents_batch(rec, "camp").expect("agents");
        let (cells, agents) = if old {
            (
                // Without the version-3 axes, the version-4 `start_skew_ms`, the 10
                // version-5 columns, the 4 version-6 placement columns and the version-8
                // `server_flags`.
                version_2_part(&cells, "cells", 20),
                // Also without `published_ttft_mean_ms` (version 3), the version-4
                // process columns and the 2 version-5 ones.
                version_2_part(&agents, "agents", 14),
            )
        } else {
            let bytes = |t, b| table::to_parquet_bytes(t, b).expect("part");
            (bytes("cells", &cells), bytes("agents", &agents))
        };
        let requests = requests_batch(rec, "camp").expect("requests");
        std::fs::write(dir.join(c), cells).expect("write cells");
        std::fs::write(dir.join(a), agents).expect("write agents");
        let requests = table::to_parquet_bytes("requests", &requests).expect("requests part");
        std::fs::write(dir.join(r), requests).expect("write requests");
        dir
    }

    /// A cell's axes reach the `cells` and `agents` rows; parts of schema version 2, written
    /// before those columns existed, load with them null.
    #[test]
    fn axis_columns_load_and_older_parts_read_them_as_null() {
        let t = tempfile::tempdir().expect("tempdir");
        let mut new = crate::fuzzing::sample_cell_record(
            "new".into(),
            CellKind::Single,
            "tr115",
            vec![agent()],
        );
        new.key.axes = CellAxes {
            runtime: Some("tokio-localset".into()),
            language: Some("rust".into()),
            block: Some("runtimes".into()),
            harness: Some("H6v2".into()),
        };
        let mut old = new.clone();
        old.key.cell_id = "old".into();
        old.started_at_unix_ms += 1.0;
        let dirs = [
            write_cell(t.path(), &new, false),
            write_cell(t.path(), &old, true),
        ];
        let ds = load(t.path(), &dirs).expect("load");
        let ids: Vec<_> = ds.cells.iter().map(|c| c.cell_id.as_str()).collect();
        assert_eq!(ids, ["new", "old"]);
        assert_eq!(ds.cells[0].axes, new.key.axes);
        assert_eq!(ds.cells[1].axes, CellAxes::default());
        assert_eq!(ds.cells[1].model.as_deref(), Some("gemma3:latest"));
        let agents: Vec<_> = ds
            .agents
            .iter()
            .map(|a| (a.cell_id.as_str(), a.model.as_deref(), a.axes.clone()))
            .collect();
        assert!(agents.contains(&("new", Some("gemma3:latest"), new.key.axes.clone())));
        assert!(agents.contains(&("old", None, CellAxes::default())));
    }

    fn request(i: u32, stage: Stage, warmup: bool, failed: bool) -> crate::record::RequestRow {
        use crate::backend::{ErrorKind, RequestError, RequestRecord};
        let x = f64::from(i);
        crate::record::RequestRow {
            stage,
            index: i,
            warmup,
            // A NaN reads as null, as in the typed rows.
            throughput_tok_s: (!failed).then_some(if i == 3 { f64::NAN } else { 40.0 + x }),
            client_tok_s: None,
            itl_p50_ms: None,
            itl_p99_ms: None,
            published_ttft_ms: i.is_multiple_of(2).then_some(100.0 + x),
            response_chars: Some(10),
            load: None,
            record: RequestRecord {
                sent_at_unix_ms: 1e12 + x,
                ttft_ms: (!failed).then_some(90.0 + x),
                e2e_ms: 900.0,
                itl_ms: Vec::new(),
                chunks: 3,
                text: String::new(),
                load_ms: (i != 5).then_some(0.5 * x),
                prompt_tokens: Some(4),
                prompt_eval_ms: None,
                output_tokens: (!failed).then_some(u64::from(i) * 7),
                eval_ms: None,
                total_ms: None,
                done_reason: None,
                timing_source: None,
                error: failed.then(|| RequestError {
                    kind: ErrorKind::Timeout,
                    status: None,
                    message: "slow".into(),
                }),
            },
        }
    }

    /// The columnar `requests` hold exactly the typed rows' values (non-warm-up rows, in file
    /// order, nulls and NaNs as "not recorded"), with the warm-ups and failures counted.
    #[test]
    fn columnar_requests_match_the_typed_rows() {
        let t = tempfile::tempdir().expect("tempdir");
        let mut a = agent();
        a.requests = (0..8)
            .map(|i| request(i, Stage::Single, i < 2, i == 6))
            .collect();
        let mut b = agent();
        b.agent = "B".into();
        b.requests = (0..6u32)
            .map(|i| {
                let stage = if i.is_multiple_of(2) {
                    Stage::Analysis
                } else {
                    Stage::Report
                };
                request(i, stage, i == 0, false)
            })
            .collect();
        let rec = crate::fuzzing::sample_cell_record(
            "cell".into(),
            CellKind::Single,
            "tr999",
            vec![a, b],
        );
        let dir = write_cell(t.path(), &rec, false);
        let ds = load(t.path(), std::slice::from_ref(&dir)).expect("load");
        let typed: Vec<table::RequestsRow> =
            rows_of(&dir.join(CELL_PART_FILES[2])).expect("typed rows");
        assert_eq!(ds.requests.len(), 1);
        let c = &ds.requests[0];
        assert_eq!(c.cell_id, "cell");
        assert_eq!(c.warmups, 3);
        assert_eq!(c.failed, 1);
        let kept: Vec<&table::RequestsRow> = typed.iter().filter(|r| !r.warmup).collect();
        assert_eq!(c.len(), kept.len());
        for (i, r) in kept.iter().enumerate() {
            let q = c.row(i);
            assert_eq!(c.agents[c.agent[i] as usize], r.agent, "row {i}");
            assert_eq!(c.stages[c.stage[i] as usize], r.stage, "row {i}");
            let same = |x: Option<f64>, y: Option<f64>| assert_eq!(x, y, "row {i}");
            same(q.throughput_tok_s(), r.throughput_tok_s);
            same(present(c.ttft_ms[i]), r.ttft_ms);
            same(q.published_ttft_ms(), r.published_ttft_ms);
            same(present(c.load_ms[i]), r.load_ms);
            same(
                present(c.output_tokens[i]),
                r.output_tokens.map(|t| t as f64),
            );
        }
        assert_eq!(c.row(1).throughput_tok_s(), None, "the NaN of request 3");
        assert_eq!(c.agent_code("B"), Some(1));
        assert_eq!(c.agent_code("nobody"), None);
    }

    /// A `requests` part without a column the analysis needs is an error naming the column.
    #[test]
    fn a_missing_request_column_is_named() {
        let t = tempfile::tempdir().expect("tempdir");
        let mut a = agent();
        a.requests = vec![request(0, Stage::Single, false, false)];
        let rec = crate::fuzzing::sample_cell_record("c".into(), CellKind::Single, "r", vec![a]);
        let dir = write_cell(t.path(), &rec, false);
        let batch = requests_batch(&rec, "camp").expect("batch");
        let keep: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| batch.schema().field(i).name() != "agent")
            .collect();
        let without = batch.project(&keep).expect("project");
        let bytes = table::to_parquet_bytes("requests", &without).expect("bytes");
        std::fs::write(dir.join(CELL_PART_FILES[2]), bytes).expect("write");
        let err = load(t.path(), &[dir]).expect_err("agent is missing");
        let msg = err.to_string();
        assert!(msg.contains("agent") && msg.contains("missing"), "{msg}");
    }
}
