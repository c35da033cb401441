//! One Welch comparison row between two samples, shared by the report's comparisons, and the
//! paired difference of two values per run; each with its power line (the repetitions needed
//! to detect a 2 % difference at the observed variance, α = 0.05 two-sided, power 0.8).

use super::model::{Comparison, Effect};
use crate::manifest::Level;
use crate::stats;
use crate::stats::effect::{self, CiMethod, Reading};

/// The Welch comparison of `b` against `a` (difference = mean B − mean A); the power line is
/// for 2 % of |mean A|, per group.
pub(super) fn welch_row(
    report: &str,
    by: &str,
    metric: &str,
    level: Level,
    (a, xa): (&str, &[f64]),
    (b, xb): (&str, &[f64]),
) -> Comparison {
    // Each sample's mean and SD once (the Welch statistics are built from them).
    let ((mean_a, sd_a), (mean_b, sd_b)) = (stats::mean_sd(xa), stats::mean_sd(xb));
    let w = match (mean_a, sd_a, mean_b, sd_b) {
        (Some(ma), Some(sa), Some(mb), Some(sb)) => {
            stats::welch_of((xa.len(), ma, sa), (xb.len(), mb, sb))
        }
        _ => None,
    };
    let detect = mean_a.and_then(effect::detect_delta);
    let n_needed = match (sd_a, sd_b, detect) {
        (Some(sa), Some(sb), Some(d)) => {
            effect::n_two_sample(sa, sb, d, effect::ALPHA, effect::POWER)
        }
        _ => None,
    };
    let n_have = xa.len().min(xb.len()) as u64;
    let reading = match w {
        Some(w) => Some(effect::reading(w.diff_ci95, 0.0, n_needed, n_have)),
        None if n_have < 2 => Some(Reading::TooFewRuns),
        None => None,
    };
    Comparison {
        report: report.to_owned(),
        by: by.to_owned(),
        metric: metric.to_owned(),
        level,
        a: a.to_owned(),
        b: b.to_owned(),
        n_a: xa.len() as u64,
        mean_a,
        sd_a,
        n_b: xb.len() as u64,
        mean_b,
        sd_b,
        difference: match (mean_a, mean_b) {
            (Some(x), Some(y)) => Some(y - x),
            _ => None,
        },
        t: w.map(|w| w.t),
        df: w.map(|w| w.df),
        p_value: w.map(|w| w.p_value),
        diff_ci95: w.map(|w| w.diff_ci95),
        hedges_g: w.map(|w| w.hedges_g),
        detect,
        n_needed,
        reading,
    }
}

/// True − published efficiency over `runs` (those with both): [`paired_effect`].
pub(super) fn true_minus_published(runs: &[&crate::table::CellsRow]) -> Option<Effect> {
    let pairs: Vec<(f64, f64)> = runs
        .iter()
        .filter_map(|c| Some((c.published_efficiency_pct?, c.true_efficiency_pct?)))
        .collect();
    paired_effect(&pairs)
}

/// ": too few runs to tell" for a comparison that reads so, else nothing (for findings).
pub(super) fn too_few_words(c: &Comparison) -> String {
    match c.reading {
        Some(r @ Reading::TooFewRuns) => format!(": {}", r.label()),
        _ => String::new(),
    }
}

/// The paired difference `after − before` over `pairs` of (before, after): a one-sample t
/// interval of the per-pair differences against 0, with the pairs needed to detect 2 % of
/// mean(before). `None` for fewer than 2 pairs.
pub(super) fn paired_effect(pairs: &[(f64, f64)]) -> Option<Effect> {
    let diffs: Vec<f64> = pairs.iter().map(|(b, a)| a - b).collect();
    let before: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let t = effect::one_sample_t(&diffs, 0.0)?;
    let detect = stats::mean(&before).and_then(effect::detect_delta);
    let n_needed = detect.and_then(|d| effect::n_one_sample(t.sd, d, effect::ALPHA, effect::POWER));
    Some(Effect {
        method: CiMethod::PairedT,
        difference: t.difference,
        ci95: t.diff_ci95,
        n: t.n,
        detect,
        n_needed,
        reading: effect::reading(t.diff_ci95, 0.0, n_needed, t.n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_welch_row_reads_its_interval_and_power_line() {
        let a = [100.0, 101.0, 99.0, 100.5, 99.5];
        // A clear difference.
        let far = [110.0, 111.0, 109.0, 110.5, 109.5];
        let r = welch_row("R", "x", "m", Level::Run, ("a", &a), ("b", &far));
        assert_eq!(r.reading, Some(Reading::Different));
        assert_eq!(r.detect, Some(2.0));
        // The same spread, no difference: 5 runs per group suffice to see 2 units (SD ≈ 0.79).
        let same = [100.2, 100.7, 99.2, 100.1, 99.8];
        let r = welch_row("R", "x", "m", Level::Run, ("a", &a), ("b", &same));
        assert_eq!(r.reading, Some(Reading::NoDifferenceFound), "{r:?}");
        assert!(r.n_needed.is_some_and(|n| n <= 5), "{:?}", r.n_needed);
        // Wide spread, no difference: too few runs.
        let wide = [80.0, 120.0, 95.0, 105.0, 100.0];
        let r = welch_row("R", "x", "m", Level::Run, ("a", &a), ("b", &wide));
        assert_eq!(r.reading, Some(Reading::TooFewRuns), "{r:?}");
        assert!(r.n_needed.is_some_and(|n| n > 5), "{:?}", r.n_needed);
        // One value in a group: no variance, too few runs.
        let r = welch_row("R", "x", "m", Level::Run, ("a", &a), ("b", &[100.0]));
        assert_eq!((r.reading, r.n_needed), (Some(Reading::TooFewRuns), None));
    }

    #[test]
    fn a_paired_effect_is_a_one_sample_t_of_the_differences() {
        let pairs = [(98.0, 60.0), (97.0, 61.0), (99.0, 59.5)];
        let e = paired_effect(&pairs).expect("effect");
        assert_eq!(e.method, CiMethod::PairedT);
        assert_eq!(e.n, 3);
        assert!((e.difference - (-37.833333333333336)).abs() < 1e-9);
        assert!(e.ci95.1 < 0.0);
        assert_eq!(e.reading, Reading::Different);
        assert!((e.detect.expect("δ") - 1.96).abs() < 1e-12);
        assert_eq!(paired_effect(&pairs[..1]), None);
    }
}
