//! The analysis outputs under a campaign: `analysis/summary.parquet`, `verdicts.parquet`,
//! `comparisons.parquet` and `analysis.json` (everything, for scripts), each written to a
//! temporary name and renamed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};

use super::error::AnalysisError;
use super::model::{Analysis, Comparison, SummaryRow, Verdict};

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AnalysisError> {
    let err = |source| AnalysisError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// `value` as pretty JSON to `path`, streamed through a buffer (the text of a large campaign's
/// distributions is never held whole), to a temporary name and renamed.
fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), AnalysisError> {
    use std::io::Write;
    let err = |source| AnalysisError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp).map_err(err)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    serde_json::to_writer_pretty(&mut w, value).map_err(|e| AnalysisError::Encode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    w.flush().map_err(err)?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(err)
}

/// The columns of one output table over `rows`; every column is nullable.
struct Cols<'a, T> {
    rows: &'a [T],
    cols: Vec<(&'static str, DataType, ArrayRef)>,
}

impl<'a, T> Cols<'a, T> {
    fn new(rows: &'a [T]) -> Self {
        Cols {
            rows,
            cols: Vec::new(),
        }
    }
    /// A text column.
    fn s(mut self, name: &'static str, f: impl Fn(&T) -> Option<String>) -> Self {
        let a = self.rows.iter().map(f).collect::<StringArray>();
        self.cols.push((name, DataType::Utf8, Arc::new(a)));
        self
    }
    /// A float column.
    fn f(mut self, name: &'static str, f: impl Fn(&T) -> Option<f64>) -> Self {
        let a = self.rows.iter().map(f).collect::<Float64Array>();
        self.cols.push((name, DataType::Float64, Arc::new(a)));
        self
    }
    /// A count column.
    fn n(mut self, name: &'static str, f: impl Fn(&T) -> u64) -> Self {
        let a = self
            .rows
            .iter()
            .map(|r| Some(f(r)))
            .collect::<UInt64Array>();
        self.cols.push((name, DataType::UInt64, Arc::new(a)));
        self
    }

    /// An optional count column.
    fn o(mut self, name: &'static str, f: impl Fn(&T) -> Option<u64>) -> Self {
        let a = self.rows.iter().map(f).collect::<UInt64Array>();
        self.cols.push((name, DataType::UInt64, Arc::new(a)));
        self
    }

    /// Writes the columns as table `table` to `path`.
    fn write(self, table: &str, path: &Path) -> Result<(), AnalysisError> {
        let schema = Arc::new(Schema::new(
            self.cols
                .iter()
                .map(|(name, dt, _)| Field::new(*name, dt.clone(), true))
                .collect::<Vec<_>>(),
        ));
        let enc = |e: String| AnalysisError::Encode {
            path: path.to_path_buf(),
            message: e,
        };
        let batch = RecordBatch::try_new(schema, self.cols.into_iter().map(|c| c.2).collect())
            .map_err(|e| enc(e.to_string()))?;
        let bytes =
            crate::table::to_parquet_bytes(table, &batch).map_err(|e| enc(e.to_string()))?;
        write_atomic(path, &bytes)
    }
}

/// `summary.parquet`.
fn write_summary(path: &Path, rows: &[&SummaryRow]) -> Result<(), AnalysisError> {
    Cols::new(rows)
        .s("report", |r| Some(r.report.clone()))
        .s("grouping", |r| Some(r.grouping.clone()))
        .s("group", |r| Some(r.group.clone()))
        .s("level", |r| Some(r.level.to_string()))
        .s("metric", |r| Some(r.metric.clone()))
        .n("n", |r| r.stats.n)
        .f("mean", |r| r.stats.mean)
        .f("sd", |r| r.stats.sd)
        .f("cv_pct", |r| r.stats.cv_pct)
        .f("median", |r| r.stats.median)
        .f("p95", |r| r.stats.p95)
        .f("min", |r| r.stats.min)
        .f("max", |r| r.stats.max)
        .f("ci95_low", |r| r.stats.ci95.map(|c| c.0))
        .f("ci95_high", |r| r.stats.ci95.map(|c| c.1))
        .write("summary", path)
}

/// `verdicts.parquet`: (report, verdict) rows.
fn write_verdicts(path: &Path, rows: &[(&str, &Verdict)]) -> Result<(), AnalysisError> {
    Cols::new(rows)
        .s("report", |r| Some(r.0.to_owned()))
        .s("id", |r| Some(r.1.id.clone()))
        .s("claim", |r| Some(r.1.claim.clone()))
        .s("metric", |r| Some(r.1.metric.clone()))
        .s("statistic", |r| Some(r.1.statistic.clone()))
        .s("over", |r| Some(r.1.over.clone()))
        .s("filter", |r| Some(r.1.filter.clone()))
        .s("unit", |r| Some(r.1.unit.clone()))
        .f("published", |r| Some(r.1.published))
        .f("recomputed", |r| r.1.recomputed)
        .f("ci95_low", |r| r.1.ci95.map(|c| c.0))
        .f("ci95_high", |r| r.1.ci95.map(|c| c.1))
        .n("n", |r| r.1.n)
        .f("difference", |r| r.1.difference)
        .f("diff_ci95_low", |r| r.1.diff_ci95.map(|c| c.0))
        .f("diff_ci95_high", |r| r.1.diff_ci95.map(|c| c.1))
        .f("detect", |r| r.1.detect)
        .o("n_needed", |r| r.1.n_needed)
        .f("tolerance", |r| r.1.tolerance)
        .s("tolerance_basis", |r| r.1.tolerance_basis.clone())
        .s("verdict", |r| Some(r.1.verdict.label().to_owned()))
        .f("data_value", |r| r.1.data_value)
        .s("explanation", |r| Some(r.1.explanation.clone()))
        .write("verdicts", path)
}

/// `comparisons.parquet`.
fn write_comparisons(path: &Path, rows: &[&Comparison]) -> Result<(), AnalysisError> {
    Cols::new(rows)
        .s("report", |r| Some(r.report.clone()))
        .s("by", |r| Some(r.by.clone()))
        .s("metric", |r| Some(r.metric.clone()))
        .s("level", |r| Some(r.level.to_string()))
        .s("a", |r| Some(r.a.clone()))
        .s("b", |r| Some(r.b.clone()))
        .n("n_a", |r| r.n_a)
        .f("mean_a", |r| r.mean_a)
        .f("sd_a", |r| r.sd_a)
        .n("n_b", |r| r.n_b)
        .f("mean_b", |r| r.mean_b)
        .f("sd_b", |r| r.sd_b)
        .f("difference", |r| r.difference)
        .f("diff_ci95_low", |r| r.diff_ci95.map(|c| c.0))
        .f("diff_ci95_high", |r| r.diff_ci95.map(|c| c.1))
        .f("t", |r| r.t)
        .f("df", |r| r.df)
        .f("p_value", |r| r.p_value)
        .f("hedges_g", |r| r.hedges_g)
        .f("detect", |r| r.detect)
        .o("n_needed", |r| r.n_needed)
        .s("reading", |r| r.reading.map(|x| x.label().to_owned()))
        .write("comparisons", path)
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
    let p = dir.join("summary.parquet");
    write_summary(&p, &summaries)?;
    let v = dir.join("verdicts.parquet");
    write_verdicts(&v, &verdicts)?;
    let c = dir.join("comparisons.parquet");
    write_comparisons(&c, &comps)?;
    let j = dir.join("analysis.json");
    write_json_atomic(&j, a)?;
    Ok(vec![p, v, c, j])
}
