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
