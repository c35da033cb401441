//! One Welch comparison row between two samples, shared by the report's comparisons.

use super::model::Comparison;
use crate::manifest::Level;
use crate::stats;

/// The Welch comparison of `b` against `a` (difference = mean B − mean A).
pub(super) fn welch_row(
    report: &str,
    by: &str,
    metric: &str,
    level: Level,
    (a, xa): (&str, &[f64]),
    (b, xb): (&str, &[f64]),
) -> Comparison {
    let w = stats::welch(xa, xb);
    Comparison {
        report: report.to_owned(),
        by: by.to_owned(),
        metric: metric.to_owned(),
        level,
        a: a.to_owned(),
        b: b.to_owned(),
        n_a: xa.len() as u64,
        mean_a: stats::mean(xa),
        sd_a: stats::sample_sd(xa),
        n_b: xb.len() as u64,
        mean_b: stats::mean(xb),
        sd_b: stats::sample_sd(xb),
        difference: match (stats::mean(xa), stats::mean(xb)) {
            (Some(x), Some(y)) => Some(y - x),
            _ => None,
        },
        t: w.map(|w| w.t),
        df: w.map(|w| w.df),
        p_value: w.map(|w| w.p_value),
        diff_ci95: w.map(|w| w.diff_ci95),
        hedges_g: w.map(|w| w.hedges_g),
    }
}
