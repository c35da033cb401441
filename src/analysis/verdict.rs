//! The reproduction verdict: each published number against the number recomputed from the
//! campaign's data.
//!
//! Tolerance: the manifest's `tolerance` when given. Otherwise, for imported original data
//! (the very numbers the report was computed from), the published number must agree to its
//! own precision: half a unit in its last printed digit. For new measurements the published
//! number must lie within the 95 % Student-t CI of the recomputed mean, or within its
//! rounding when no CI exists (n < 2, or a statistic other than the mean).
//!
//! The power line: for a mean, the difference carries its one-sample Student t 95 % CI and the
//! number of values needed to detect a difference of 2 % of the published value at the
//! observed SD (α = 0.05 two-sided, power 0.8; [`crate::stats::effect::n_one_sample`]). A new
//! measurement whose CI includes the published value is "reproduced" only when the values at
//! hand reach that number; otherwise, and for a single value (no variance), the verdict is
//! "too few runs to tell" ([`VerdictKind::Inconclusive`]). One whose CI excludes it differs.

use super::model::{Verdict, VerdictKind};
use super::select::{Pool, is_flag, values};
use crate::manifest::{Filter, Reference, Statistic};
use crate::stats::{self, effect};

/// Half a unit in the last digit `v` is written with (its shortest decimal form).
pub fn rounding_half_unit(v: f64) -> f64 {
    let s = format!("{v}");
    let decimals = s.split_once('.').map_or(0, |(_, d)| d.len());
    0.5 * 10f64.powi(-(decimals as i32))
}

/// `key=value` pairs of a filter, in key order.
pub fn filter_text(f: &Filter) -> String {
    let v = serde_json::to_value(f).unwrap_or_default();
    let Some(o) = v.as_object() else {
        return String::new();
    };
    o.iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A statistic in words (`mean`, `percentile 95`...).
pub fn statistic_text(r: &Reference) -> String {
    match r.statistic {
        Statistic::Percentile => format!("percentile {}", r.percentile.unwrap_or(f64::NAN)),
        s => s.to_string(),
    }
}

/// The statistic of a reference over `xs`.
pub fn apply(r: &Reference, xs: &[f64]) -> Option<f64> {
    let flagged = || xs.iter().filter(|x| **x > 0.0).count() as f64;
    match r.statistic {
        Statistic::Mean => stats::mean(xs),
        Statistic::Median => stats::median(xs),
        Statistic::Sd => stats::sample_sd(xs),
        Statistic::CvPct => stats::cv_pct(xs),
        Statistic::Min => stats::min(xs),
        Statistic::Max => stats::max(xs),
        Statistic::Sum => (!xs.is_empty()).then(|| stats::sum(xs)),
        Statistic::Percentile => stats::percentile(xs, r.percentile?),
        Statistic::Count => Some(if is_flag(r.metric) {
            flagged()
        } else {
            xs.len() as f64
        }),
        Statistic::SharePct => (!xs.is_empty()).then(|| flagged() / xs.len() as f64 * 100.0),
    }
}

/// The verdict on one reference.
pub fn judge(pool: &Pool<'_>, r: &Reference, imported: bool) -> Verdict {
    let (xs, level_note) = values(pool, r.metric, r.over, &r.filter);
    let recomputed = if xs.is_empty() { None } else { apply(r, &xs) };
    let is_mean = r.statistic == Statistic::Mean;
    let ci95 = if is_mean { stats::t_ci95(&xs) } else { None };
    let (one, detect, n_needed) = power_line(r, &xs);
    let mut v = Verdict {
        id: r.id.clone(),
        claim: r.claim.clone(),
        metric: r.metric.to_string(),
        statistic: statistic_text(r),
        over: r.over.to_string(),
        filter: filter_text(&r.filter),
        published: r.value,
        unit: r.unit.clone(),
        source: r.source.clone(),
        recomputed,
        ci95,
        n: xs.len() as u64,
        difference: recomputed.map(|x| x - r.value),
        diff_ci95: one.map(|o| o.diff_ci95),
        detect,
        n_needed,
        tolerance: None,
        tolerance_basis: None,
        verdict: VerdictKind::NotMeasured,
        data_value: r.data_value,
        contradicted_by_own_data: false,
        note: r.note.clone(),
        explanation: String::new(),
    };
    // `never_measurable` holds on any campaign; `not_measurable` only on the original data (a
    // campaign chimera measured is judged like any other).
    let reason = r
        .never_measurable
        .as_ref()
        .or(r.not_measurable.as_ref().filter(|_| imported));
    if let Some(reason) = reason {
        v.recomputed = None;
        v.difference = None;
        v.ci95 = None;
        v.diff_ci95 = None;
        v.n_needed = None;
        v.detect = None;
        v.explanation = format!(
            "not measurable from these data: {}",
            reason.trim_end_matches('.')
        );
        if let Some(x) = recomputed.filter(|_| !v.filter.is_empty()) {
            v.explanation.push_str(&format!(
                "; the same statistic over the {} value(s) selected here would be {}",
                xs.len(),
                fmt_num(x)
            ));
        }
        return v;
    }
    let Some(x) = recomputed else {
        v.explanation = if xs.is_empty() {
            let f = if v.filter.is_empty() {
                "this report".to_owned()
            } else {
                v.filter.clone()
            };
            format!("no {} value for {} in this data", v.metric, f)
        } else {
            format!("the {} is undefined for {} value(s)", v.statistic, xs.len())
        };
        return v;
    };
    let round = rounding_half_unit(r.value) * (1.0 + 1e-9) + 1e-12;
    let (tol, basis) = match (r.tolerance, imported, ci95) {
        (Some(t), _, _) => (t, "manifest"),
        (None, true, _) => (round, "rounding"),
        (None, false, Some((lo, hi))) => (((hi - lo) / 2.0).max(round), "ci95"),
        (None, false, None) => (round, "rounding"),
    };
    let diff = x - r.value;
    v.tolerance = Some(tol);
    v.tolerance_basis = Some(basis.to_owned());
    let ok = diff.abs() <= tol;
    // A new measurement of a mean: agreement needs the power to see a 2 % difference.
    let measured_mean = is_mean && !imported && r.tolerance.is_none();
    v.verdict = kind(ok, measured_mean, xs.len(), n_needed);
    let what = match basis {
        "manifest" => format!("the stated tolerance ±{}", fmt_num(tol)),
        "rounding" => format!("the published precision ±{}", fmt_num(tol)),
        _ => format!("the 95 % CI ±{}", fmt_num(tol)),
    };
    let unit = if r.unit == "%" {
        " %".to_owned()
    } else {
        format!(" {}", r.unit)
    };
    let mut e = if v.verdict == VerdictKind::Inconclusive {
        inconclusive_text(x, &unit, xs.len(), r.value, (&what, ok), (detect, n_needed))
    } else if ok {
        format!(
            "recomputed {}{unit} from {} value(s) agrees with the published {}{unit} within {what}",
            fmt_num(x),
            xs.len(),
            fmt_num(r.value)
        )
    } else {
        format!(
            "recomputed {}{unit} from {} value(s) differs from the published {}{unit} by {} (beyond {what})",
            fmt_num(x),
            xs.len(),
            fmt_num(r.value),
            fmt_num(diff)
        )
    };
    if measured_mean && !ok && basis == "ci95" {
        e.push_str(": different");
    }
    if v.verdict != VerdictKind::Inconclusive
        && let Some(p) = power_text(&unit, xs.len(), detect, n_needed)
    {
        e.push_str("; ");
        e.push_str(&p);
    }
    if let Some(dv) = r.data_value
        && !ok
        && (x - dv).abs() <= rounding_half_unit(dv) * 1.000_001 + 1e-12
    {
        e.push_str(&format!(
            "; it equals the value the original raw data give ({}), so the published number does not match its own data",
            fmt_num(dv)
        ));
        if imported {
            v.contradicted_by_own_data = true;
            e.push_str(
                ": these are the report's own raw results, so the published value is contradicted by them",
            );
        }
    }
    if let Some(n) = level_note {
        e.push_str("; ");
        e.push_str(&n);
    }
    v.explanation = e;
    v
}

/// For a mean: the one-sample t difference from the published value, the difference to detect
/// (2 % of it) and the values needed to detect it (α = 0.05, power 0.8).
fn power_line(
    r: &Reference,
    xs: &[f64],
) -> (Option<stats::effect::OneSampleT>, Option<f64>, Option<u64>) {
    if r.statistic != Statistic::Mean {
        return (None, None, None);
    }
    let one = effect::one_sample_t(xs, r.value);
    let detect = effect::detect_delta(r.value);
    let n_needed = one
        .zip(detect)
        .and_then(|(o, d)| effect::n_one_sample(o.sd, d, effect::ALPHA, effect::POWER));
    (one, detect, n_needed)
}

/// The verdict: within the tolerance (`ok`) or not; a new measurement of a mean
/// (`measured_mean`) agrees only with the power to see a 2 % difference (`n` values of the
/// `n_needed`), and a single value of one tells nothing.
fn kind(ok: bool, measured_mean: bool, n: usize, n_needed: Option<u64>) -> VerdictKind {
    let too_few = measured_mean && (n < 2 || n_needed.is_some_and(|k| k > n as u64));
    match (ok, too_few) {
        (_, true) if n < 2 => VerdictKind::Inconclusive,
        (true, true) => VerdictKind::Inconclusive,
        (true, false) => VerdictKind::Reproduced,
        (false, _) => VerdictKind::NotReproduced,
    }
}

/// The explanation of a [`VerdictKind::Inconclusive`] verdict.
fn inconclusive_text(
    x: f64,
    unit: &str,
    n: usize,
    published: f64,
    (what, within): (&str, bool),
    (detect, needed): (Option<f64>, Option<u64>),
) -> String {
    let head = format!(
        "recomputed {}{unit} from {n} value(s), published {}{unit}",
        fmt_num(x),
        fmt_num(published)
    );
    if n < 2 {
        return format!(
            "{head}: a single value has no variance, so neither a CI nor the runs needed to detect a difference can be computed: too few runs to tell"
        );
    }
    let agree = if within {
        format!("agrees within {what}")
    } else {
        format!("differs beyond {what}")
    };
    format!(
        "{head}: {agree}, but detecting a 2 % difference (±{}{unit}) at this variance would need {} values (α = 0.05 two-sided, power 0.8), not {n}: too few runs to tell",
        fmt_num(detect.unwrap_or(f64::NAN)),
        needed.map_or_else(|| "more".to_owned(), |k| k.to_string()),
    )
}

/// The power line of a mean's verdict: how many values would detect a 2 % difference.
fn power_text(unit: &str, n: usize, detect: Option<f64>, needed: Option<u64>) -> Option<String> {
    let (d, k) = (detect?, needed?);
    let enough = if k as usize <= n { "enough" } else { "too few" };
    Some(format!(
        "{k} values would detect a 2 % difference (±{}{unit}) at this variance (α = 0.05, power 0.8); {n} are {enough}",
        fmt_num(d)
    ))
}

/// A number with up to 4 significant decimals, trailing zeros removed.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let s = if x.abs() >= 1000.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `not_measurable` holds on imported data only; `never_measurable` on any campaign.
    #[test]
    fn unmeasurable_reasons_apply_where_they_say() {
        let reference = |extra: &str| -> Reference {
            let yaml = format!(
                "id: r\nclaim: c\nmetric: throughput_tok_s\nstatistic: mean\nvalue: 1.0\n\
                 unit: tok/s\nsource: s\n{extra}"
            );
            serde_saphyr::from_str(&yaml).expect("reference")
        };
        let ds = crate::analysis::dataset::Dataset::default();
        let cfgs = std::collections::HashMap::new();
        let pool = Pool::new(&ds, &cfgs, &[]);
        let lost = reference("not_measurable: \"the runs were never published\"");
        let never = reference("never_measurable: \"no metric compares two languages\"");
        let said = |r: &Reference, imported: bool| judge(&pool, r, imported).explanation;
        assert_eq!(
            said(&lost, true),
            "not measurable from these data: the runs were never published"
        );
        assert!(
            said(&lost, false).starts_with("no throughput_tok_s value"),
            "{}",
            said(&lost, false)
        );
        for imported in [true, false] {
            let v = judge(&pool, &never, imported);
            assert_eq!(v.verdict, VerdictKind::NotMeasured);
            assert_eq!(
                v.explanation,
                "not measurable from these data: no metric compares two languages"
            );
        }
    }

    #[test]
    fn rounding_follows_the_printed_digits() {
        for (printed, half_unit) in [
            (98.281, 0.0005),
            (98.4, 0.05),
            (1.0, 0.5),
            (7557.0, 0.5),
            (0.74, 0.005),
        ] {
            assert_eq!(rounding_half_unit(printed), half_unit, "{printed}");
        }
    }

    #[test]
    fn numbers_are_short() {
        for (x, want) in [
            (98.2810, "98.281"),
            (2.0, "2"),
            (-0.0, "0"),
            (0.00054, "0.0005"),
            (f64::NAN, "—"),
        ] {
            assert_eq!(fmt_num(x), want, "{x}");
        }
    }
}
