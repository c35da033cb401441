//! Suspect cells (a self-check failed when they ran, [`crate::record::checks`]): left out of
//! the statistics unless asked for, listed in the report, and a warning at its top when
//! they are many.

use serde::{Deserialize, Serialize};

use super::select::Pool;
use crate::record::CellKind;
use crate::table::CellsRow as CellRow;

/// The share of a report's measured cells (runs and isolated baselines) from which on the
/// report warns at its top that the self-checks fail often.
pub const OFTEN: f64 = 0.10;

/// One suspect cell and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspectCell {
    /// Cell id.
    pub cell_id: String,
    /// Cell kind (`single`, `concurrent`, `isolated`).
    pub kind: String,
    /// Configuration id.
    pub config: Option<String>,
    /// Repetition.
    pub repetition: u32,
    /// The failed self-checks, in the words the run recorded.
    pub reasons: Vec<String>,
}

/// Whether a cell is suspect (cells written before the checks existed are not).
pub fn is_suspect(c: &CellRow) -> bool {
    c.suspect == Some(true)
}

/// `pool` without its suspect runs, unless `include`.
pub(super) fn trusted<'a>(pool: Pool<'a>, include: bool) -> Pool<'a> {
    if include {
        return pool;
    }
    let runs = pool
        .runs
        .iter()
        .copied()
        .filter(|c| !is_suspect(c))
        .collect();
    pool.subset(runs)
}

/// `, N suspect (left out)` (or `(included)`) for a counts line; empty for 0.
pub fn count_words(suspect_runs: usize, included: bool) -> String {
    if suspect_runs == 0 {
        return String::new();
    }
    let how = if included { "included" } else { "left out" };
    format!(", {suspect_runs} suspect ({how})")
}

/// The suspect cells among `cells` (a report's), in their order.
pub(super) fn suspect_cells(cells: &[&CellRow]) -> Vec<SuspectCell> {
    cells
        .iter()
        .filter(|c| c.ok() && is_suspect(c))
        .map(|c| SuspectCell {
            cell_id: c.cell_id.clone(),
            kind: c.kind.name().to_owned(),
            config: c.config_id.clone(),
            repetition: c.repetition,
            reasons: c
                .suspect_reasons
                .as_deref()
                .unwrap_or("")
                .split("; ")
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
        })
        .collect()
}

/// The warning a report opens with when at least [`OFTEN`] of its measured cells (`cells`:
/// the report's) are suspect; `included` says whether the statistics kept them.
pub fn warning(cells: &[&CellRow], suspect: usize, included: bool) -> Option<String> {
    let measured = cells
        .iter()
        .filter(|c| c.ok() && (c.is_run() || c.kind == CellKind::Isolated))
        .count();
    if suspect == 0 || measured == 0 || (suspect as f64) < OFTEN * measured as f64 {
        return None;
    }
    let pct = 100.0 * suspect as f64 / measured as f64;
    let treated = if included {
        "they are included in the statistics below (--include-suspect)"
    } else {
        "they are left out of the statistics below"
    };
    Some(format!(
        "Self-checks failed often: {suspect} of {measured} measured cells ({pct:.0} %) are suspect; \
         {treated}. The list of suspect cells says why; fix the cause and measure again."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, kind: CellKind, reasons: Option<&str>) -> CellRow {
        let rec = crate::fuzzing::sample_cell_record(id.into(), kind, "tr114", Vec::new());
        let mut r = CellRow::of(&rec, "camp");
        r.suspect = Some(reasons.is_some());
        r.suspect_reasons = reasons.map(str::to_owned);
        r
    }

    #[test]
    fn a_tenth_suspect_is_often() {
        let mut cells: Vec<CellRow> = (0..9)
            .map(|i| row(&format!("c{i}"), CellKind::Concurrent, None))
            .collect();
        cells.push(row(
            "s",
            CellKind::Isolated,
            Some("start skew: x; model reload: y"),
        ));
        let refs: Vec<&CellRow> = cells.iter().collect();
        let listed = suspect_cells(&refs);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].reasons, ["start skew: x", "model reload: y"]);
        let w = warning(&refs, 1, false).expect("warning");
        assert!(
            w.starts_with("Self-checks failed often: 1 of 10 measured cells (10 %)"),
            "{w}"
        );
        assert!(w.contains("left out"), "{w}");
        assert_eq!(warning(&refs[..], 0, false), None);
        cells.push(row("t", CellKind::Single, None));
        let refs: Vec<&CellRow> = cells.iter().collect();
        assert_eq!(warning(&refs, 1, true), None);
    }
}
