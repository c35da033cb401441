//! The analysis outputs under a campaign: `analysis/summary.parquet`, `verdicts.parquet`,
//! `comparisons.parquet` and `analysis.json` (everything, for scripts), each written to a
//! temporary name and renamed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};

use super::AnalysisError;
use super::model::Analysis;
use super::select::enum_name;

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AnalysisError> {
    let err = |source| AnalysisError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

type Col = (&'static str, DataType, ArrayRef);

fn s<T>(rows: &[T], f: impl Fn(&T) -> Option<String>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<StringArray>())
}
fn n<T>(rows: &[T], f: impl Fn(&T) -> Option<f64>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<Float64Array>())
}
fn u<T>(rows: &[T], f: impl Fn(&T) -> u64) -> ArrayRef {
    Arc::new(rows.iter().map(|r| Some(f(r))).collect::<UInt64Array>())
}

fn parquet(table: &str, path: &Path, cols: Vec<Col>) -> Result<(), AnalysisError> {
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(name, dt, _)| Field::new(*name, dt.clone(), true))
            .collect::<Vec<_>>(),
    ));
    let enc = |e: String| AnalysisError::Encode {
        path: path.to_path_buf(),
        message: e,
    };
    let batch = RecordBatch::try_new(schema, cols.into_iter().map(|c| c.2).collect())
        .map_err(|e| enc(e.to_string()))?;
    let bytes = crate::table::to_parquet_bytes(table, &batch).map_err(|e| enc(e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Writes the outputs of `a` under `<campaign_dir>/analysis/`; returns the files written.
pub fn write_outputs(campaign_dir: &Path, a: &Analysis) -> Result<Vec<PathBuf>, AnalysisError> {
    let dir = campaign_dir.join("analysis");
    std::fs::create_dir_all(&dir).map_err(|source| AnalysisError::Write {
        path: dir.clone(),
        source,
    })?;
    let summaries: Vec<_> = a.reports.iter().flat_map(|r| r.summaries.iter()).collect();
    let verdicts: Vec<_> = a
        .reports
        .iter()
        .flat_map(|r| r.verdicts.iter().map(move |v| (r.report.as_str(), v)))
        .collect();
    let comps: Vec<_> = a
        .reports
        .iter()
        .flat_map(|r| r.comparisons.iter())
        .collect();
    let utf8 = DataType::Utf8;
    let f64t = DataType::Float64;
    let u64t = DataType::UInt64;
    let p = dir.join("summary.parquet");
    parquet(
        "summary",
        &p,
        vec![
            (
                "report",
                utf8.clone(),
                s(&summaries, |r| Some(r.report.clone())),
            ),
            (
                "grouping",
                utf8.clone(),
                s(&summaries, |r| Some(r.grouping.clone())),
            ),
            (
                "group",
                utf8.clone(),
                s(&summaries, |r| Some(r.group.clone())),
            ),
            (
                "level",
                utf8.clone(),
                s(&summaries, |r| Some(enum_name(&r.level))),
            ),
            (
                "metric",
                utf8.clone(),
                s(&summaries, |r| Some(r.metric.clone())),
            ),
            ("n", u64t.clone(), u(&summaries, |r| r.n)),
            ("mean", f64t.clone(), n(&summaries, |r| r.mean)),
            ("sd", f64t.clone(), n(&summaries, |r| r.sd)),
            ("cv_pct", f64t.clone(), n(&summaries, |r| r.cv_pct)),
            ("median", f64t.clone(), n(&summaries, |r| r.median)),
            ("p95", f64t.clone(), n(&summaries, |r| r.p95)),
            ("min", f64t.clone(), n(&summaries, |r| r.min)),
            ("max", f64t.clone(), n(&summaries, |r| r.max)),
            ("ci95_low", f64t.clone(), n(&summaries, |r| r.ci95_low)),
            ("ci95_high", f64t.clone(), n(&summaries, |r| r.ci95_high)),
        ],
    )?;
    let v = dir.join("verdicts.parquet");
    parquet(
        "verdicts",
        &v,
        vec![
            (
                "report",
                utf8.clone(),
                s(&verdicts, |r| Some(r.0.to_owned())),
            ),
            ("id", utf8.clone(), s(&verdicts, |r| Some(r.1.id.clone()))),
            (
                "claim",
                utf8.clone(),
                s(&verdicts, |r| Some(r.1.claim.clone())),
            ),
            (
                "metric",
                utf8.clone(),
                s(&verdicts, |r| Some(r.1.metric.clone())),
            ),
            (
                "statistic",
                utf8.clone(),
                s(&verdicts, |r| Some(r.1.statistic.clone())),
            ),
            (
                "over",
                utf8.clone(),
                s(&verdicts, |r| Some(r.1.over.clone())),
            ),
            (
                "filter",
                utf8.clone(),
                s(&verdicts, |r| Some(r.1.filter.clone())),
            ),
            (
                "unit",
                utf8.clone(),
                s(&verdicts, |r| Some(r.1.unit.clone())),
            ),
            (
                "published",
                f64t.clone(),
                n(&verdicts, |r| Some(r.1.published)),
            ),
            ("recomputed", f64t.clone(), n(&verdicts, |r| r.1.recomputed)),
            (
                "ci95_low",
                f64t.clone(),
                n(&verdicts, |r| r.1.ci95.map(|c| c.0)),
            ),
            (
                "ci95_high",
                f64t.clone(),
                n(&verdicts, |r| r.1.ci95.map(|c| c.1)),
            ),
            ("n", u64t.clone(), u(&verdicts, |r| r.1.n)),
            ("difference", f64t.clone(), n(&verdicts, |r| r.1.difference)),
            ("tolerance", f64t.clone(), n(&verdicts, |r| r.1.tolerance)),
            (
                "tolerance_basis",
                utf8.clone(),
                s(&verdicts, |r| r.1.tolerance_basis.clone()),
            ),
            (
                "verdict",
                utf8.clone(),
                s(&verdicts, |r| Some(r.1.verdict.label().to_owned())),
            ),
            ("data_value", f64t.clone(), n(&verdicts, |r| r.1.data_value)),
            (
                "explanation",
                utf8.clone(),
                s(&verdicts, |r| Some(r.1.explanation.clone())),
            ),
        ],
    )?;
    let c = dir.join("comparisons.parquet");
    parquet(
        "comparisons",
        &c,
        vec![
            (
                "report",
                utf8.clone(),
                s(&comps, |r| Some(r.report.clone())),
            ),
            ("by", utf8.clone(), s(&comps, |r| Some(r.by.clone()))),
            (
                "metric",
                utf8.clone(),
                s(&comps, |r| Some(r.metric.clone())),
            ),
            (
                "level",
                utf8.clone(),
                s(&comps, |r| Some(enum_name(&r.level))),
            ),
            ("a", utf8.clone(), s(&comps, |r| Some(r.a.clone()))),
            ("b", utf8.clone(), s(&comps, |r| Some(r.b.clone()))),
            ("n_a", u64t.clone(), u(&comps, |r| r.n_a)),
            ("mean_a", f64t.clone(), n(&comps, |r| r.mean_a)),
            ("sd_a", f64t.clone(), n(&comps, |r| r.sd_a)),
            ("n_b", u64t.clone(), u(&comps, |r| r.n_b)),
            ("mean_b", f64t.clone(), n(&comps, |r| r.mean_b)),
            ("sd_b", f64t.clone(), n(&comps, |r| r.sd_b)),
            ("difference", f64t.clone(), n(&comps, |r| r.difference)),
            (
                "diff_ci95_low",
                f64t.clone(),
                n(&comps, |r| r.diff_ci95.map(|c| c.0)),
            ),
            (
                "diff_ci95_high",
                f64t.clone(),
                n(&comps, |r| r.diff_ci95.map(|c| c.1)),
            ),
            ("t", f64t.clone(), n(&comps, |r| r.t)),
            ("df", f64t.clone(), n(&comps, |r| r.df)),
            ("p_value", f64t.clone(), n(&comps, |r| r.p_value)),
            ("hedges_g", f64t.clone(), n(&comps, |r| r.hedges_g)),
        ],
    )?;
    let j = dir.join("analysis.json");
    let text = serde_json::to_string_pretty(a).map_err(|e| AnalysisError::Encode {
        path: j.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&j, text.as_bytes())?;
    Ok(vec![p, v, c, j])
}
