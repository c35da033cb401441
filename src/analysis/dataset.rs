//! Reading a campaign's Parquet parts into the tables' typed rows ([`crate::table::CellsRow`]
//! and its siblings), in parallel (rayon) across files.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::error::AnalysisError;
use crate::table::{self, AgentsRow, CellsRow, ProvenanceRow, RequestsRow, Row, TelemetryRow};

/// Every row of one campaign.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// `cells`.
    pub cells: Vec<CellsRow>,
    /// `agents`.
    pub agents: Vec<AgentsRow>,
    /// `requests`.
    pub requests: Vec<RequestsRow>,
    /// `telemetry`.
    pub telemetry: Vec<TelemetryRow>,
    /// `provenance`.
    pub provenance: Vec<ProvenanceRow>,
    /// Parquet files read.
    pub files: usize,
}

/// The rows of table `R` in one file; a missing or mistyped column is an error naming it.
fn rows_of<R: Row>(path: &Path) -> Result<Vec<R>, AnalysisError> {
    let batches = table::read_parquet(path).map_err(|source| AnalysisError::Table {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    let mut out = Vec::new();
    for b in &batches {
        out.extend(R::from_batch(b).map_err(|e| AnalysisError::Column {
            path: path.to_path_buf(),
            column: e.column.to_owned(),
            problem: e.problem,
        })?);
    }
    Ok(out)
}

/// What one cell directory holds.
#[derive(Default)]
struct Part {
    cells: Vec<CellsRow>,
    agents: Vec<AgentsRow>,
    requests: Vec<RequestsRow>,
    telemetry: Vec<TelemetryRow>,
    files: usize,
}

fn read_cell_dir(dir: &Path) -> Result<Part, AnalysisError> {
    let mut p = Part::default();
    let f = |name: &str| dir.join(name);
    let [cells, agents, requests] = table::CELL_PART_FILES;
    p.cells = rows_of(&f(cells))?;
    p.agents = rows_of(&f(agents))?;
    p.requests = rows_of(&f(requests))?;
    p.files = 3;
    let tel = f(table::TELEMETRY_PART_FILE);
    if tel.exists() {
        p.telemetry = rows_of(&tel)?;
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
        ds.files += p.files;
    }
    let prov = campaign_dir.join("provenance.parquet");
    if prov.exists() {
        ds.provenance = rows_of(&prov)?;
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
                // Without the version-3 axes, the version-4 `start_skew_ms` and the 8
                // version-5 columns.
                version_2_part(&cells, "cells", 13),
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
}
