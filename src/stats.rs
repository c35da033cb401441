//! Statistics as pure functions over slices: mean, sample SD (n − 1), CV, percentiles with a
//! declared method, Student-t confidence intervals, Welch's t-test and Hedges' g; and, in
//! [`effect`], one-sample t differences, sample sizes for a given power and their reading.
//!
//! Callers pass finite values (the tables never hold NaN or infinities). Nothing here panics
//! on any input, though: every function that returns an `Option` gives `None` when the
//! statistic is undefined — too few values, a zero denominator, any NaN or infinite input,
//! or a result that is not a finite number (e.g. an SD beyond `f64::MAX`). A `Some` always
//! holds finite numbers. Large finite inputs (up to `f64::MAX`) are handled without
//! intermediate overflow: means and SDs are computed on values scaled by a power of two,
//! which is exact, so ordinary inputs give exactly the textbook two-pass results.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

pub mod effect;

/// True when the slice is non-empty and every value is finite.
fn all_finite(xs: &[f64]) -> bool {
    !xs.is_empty() && xs.iter().all(|x| x.is_finite())
}

/// A power of two close to `max |x|` (1 for an all-zero slice), within `2^±1000` so that
/// both it and its inverse are normal numbers: dividing by it is exact.
fn scale_of(xs: &[f64]) -> f64 {
    let m = xs.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    if m == 0.0 || !m.is_finite() {
        return 1.0;
    }
    let e = (m.log2().floor() as i32).clamp(-1000, 1000);
    2.0_f64.powi(e)
}

/// The mean of finite, non-empty `xs` divided by `scale`.
fn scaled_mean(xs: &[f64], scale: f64) -> f64 {
    xs.iter().map(|x| x / scale).sum::<f64>() / xs.len() as f64
}

/// Keeps `Some(x)` only for a finite `x`.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Arithmetic mean; `None` for an empty slice or a non-finite value.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if !all_finite(xs) {
        return None;
    }
    let s = scale_of(xs);
    // |mean| ≤ max |x| ≤ f64::MAX; the clamp only absorbs a last rounding at the very top.
    finite((scaled_mean(xs, s) * s).clamp(-f64::MAX, f64::MAX))
}

/// Sample variance (n − 1) of finite `xs` divided by `scale²`, for `n ≥ 2`.
fn scaled_variance(xs: &[f64], scale: f64) -> f64 {
    scaled_variance_about(xs, scale, scaled_mean(xs, scale))
}

/// [`scaled_variance`] given the scaled mean `m`.
fn scaled_variance_about(xs: &[f64], scale: f64, m: f64) -> f64 {
    xs.iter().map(|x| (x / scale - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
}

/// [`mean`] and [`sample_sd`] at once, sharing their passes (the same values, bit for bit).
pub fn mean_sd(xs: &[f64]) -> (Option<f64>, Option<f64>) {
    if !all_finite(xs) {
        return (None, None);
    }
    let s = scale_of(xs);
    let m = scaled_mean(xs, s);
    let mean = finite((m * s).clamp(-f64::MAX, f64::MAX));
    let sd = if xs.len() < 2 {
        None
    } else {
        finite(scaled_variance_about(xs, s, m).sqrt() * s)
    };
    (mean, sd)
}

/// Sample standard deviation (n − 1, two-pass); `None` when n < 2, for a non-finite value,
/// or when the SD itself exceeds `f64::MAX`.
pub fn sample_sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 || !all_finite(xs) {
        return None;
    }
    let s = scale_of(xs);
    finite(scaled_variance(xs, s).sqrt() * s)
}

/// Coefficient of variation, %: SD / mean × 100 (sample SD, n − 1). `None` when n < 2, when
/// the mean is 0, or for a non-finite value. The sign follows the mean.
pub fn cv_pct(xs: &[f64]) -> Option<f64> {
    let sd = sample_sd(xs)?;
    let m = mean(xs)?;
    if m == 0.0 {
        return None;
    }
    // Large for a mean near 0, and possibly beyond f64::MAX: then `None`.
    finite(sd / m * 100.0)
}

/// Sorted copy of finite `xs`; `None` when empty or a value is not finite.
fn sorted(xs: &[f64]) -> Option<Vec<f64>> {
    if !all_finite(xs) {
        return None;
    }
    let mut v = xs.to_vec();
    // Unstable is the same order here: values equal under `total_cmp` are the same bits.
    v.sort_unstable_by(f64::total_cmp);
    Some(v)
}

/// Percentile of sorted, finite, non-empty `v`, `q` in 0–100 (checked by the caller).
fn percentile_sorted(v: &[f64], q: f64) -> f64 {
    let (rank, lo, hi) = ranks(v.len(), q);
    interpolate(v[lo], v[hi], rank - lo as f64)
}

/// The rank of percentile `q` among `n` ≥ 1 sorted values and the closest ranks below and
/// above it.
fn ranks(n: usize, q: f64) -> (f64, usize, usize) {
    let rank = q / 100.0 * (n - 1) as f64;
    let lo = (rank.floor() as usize).min(n - 1);
    let hi = (rank.ceil() as usize).min(n - 1);
    (rank, lo, hi)
}

/// The value a fraction `t` of the way from `a` to `b` (a ≤ b), kept within [a, b].
fn interpolate(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    let x = if d.is_finite() {
        a + d * t
    } else {
        // b − a overflows only for values of opposite signs near f64::MAX: halve (exact).
        (a / 2.0 + (b / 2.0 - a / 2.0) * t) * 2.0
    };
    // Rounding may step an ulp outside [a, b]; clamping keeps the result monotone in q.
    x.clamp(a, b)
}

/// Percentile, `q` in 0–100, by linear interpolation between the closest ranks: the value at
/// rank `q / 100 × (n − 1)` of the sorted values (Hyndman & Fan type 7, NumPy's and R's
/// default). `None` for an empty slice, a non-finite value, or `q` outside 0–100 or NaN.
pub fn percentile(xs: &[f64], q: f64) -> Option<f64> {
    if !(0.0..=100.0).contains(&q) {
        return None;
    }
    Some(percentile_sorted(&sorted(xs)?, q))
}

/// The `k`-quantiles of `xs` (k ≥ 1): the `k + 1` [`percentile`]s at `100 i / k` for i =
/// 0..=k, from one sort. `None` as for [`percentile`] or when `k` is 0.
pub fn quantiles(xs: &[f64], k: usize) -> Option<Vec<f64>> {
    if k == 0 {
        return None;
    }
    let v = sorted(xs)?;
    Some(
        (0..=k)
            .map(|i| percentile_sorted(&v, 100.0 * i as f64 / k as f64))
            .collect(),
    )
}

/// Median: the 50th [`percentile`] (for an even n, the midpoint of the two middle values).
pub fn median(xs: &[f64]) -> Option<f64> {
    percentile(xs, 50.0)
}

/// Smallest value; `None` for an empty slice or a non-finite value.
pub fn min(xs: &[f64]) -> Option<f64> {
    all_finite(xs).then(|| xs.iter().copied().fold(f64::INFINITY, f64::min))
}

/// Largest value; `None` for an empty slice or a non-finite value.
pub fn max(xs: &[f64]) -> Option<f64> {
    all_finite(xs).then(|| xs.iter().copied().fold(f64::NEG_INFINITY, f64::max))
}

/// Plain sum (0 for an empty slice). Not an `Option`: it follows IEEE arithmetic, so a NaN
/// input gives NaN and a sum beyond `f64::MAX` gives ±∞.
pub fn sum(xs: &[f64]) -> f64 {
    xs.iter().sum()
}

/// The two-sided critical value of Student's t: the `(1 + level) / 2` quantile with `df`
/// degrees of freedom. `None` unless `0 < level < 1` and `df > 0`, or when it is infinite.
fn t_critical(level: f64, df: f64) -> Option<f64> {
    if !(level > 0.0 && level < 1.0) || df.is_nan() || df <= 0.0 {
        return None;
    }
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = (1.0 + level) / 2.0;
    if !(0.5..1.0).contains(&p) {
        return None;
    }
    finite(polished_quantile(&dist, p)).filter(|t| *t >= 0.0)
}

/// The `p` quantile of `dist`: statrs inverts the regularised incomplete beta function
/// iteratively; two Newton steps on the CDF polish it to the precision of the CDF itself.
pub(crate) fn polished_quantile(dist: &StudentsT, p: f64) -> f64 {
    let mut t = dist.inverse_cdf(p);
    for _ in 0..2 {
        let density = statrs::distribution::Continuous::pdf(dist, t);
        if !t.is_finite() || density.is_nan() || density <= 0.0 {
            break;
        }
        let next = t - (dist.cdf(t) - p) / density;
        if !next.is_finite() {
            break;
        }
        t = next;
    }
    t
}

/// Two-sided p-value of a t statistic with `df` degrees of freedom, in [0, 1].
fn t_p_value(t: f64, df: f64) -> Option<f64> {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return None;
    }
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    finite((2.0 * dist.sf(t.abs())).clamp(0.0, 1.0))
}

/// Student-t confidence interval of the mean at `level` (e.g. 0.95):
/// mean ± t₍₁₊ₗₑᵥₑₗ₎⸝₂,ₙ₋₁ × SD / √n. `None` when n < 2, `level` is not strictly between 0
/// and 1, a value is not finite, or a bound is not finite. The interval always contains the
/// mean; it is the single point `(mean, mean)` when all values are equal.
pub fn t_ci(xs: &[f64], level: f64) -> Option<(f64, f64)> {
    t_ci_of(xs.len(), mean(xs)?, sample_sd(xs)?, level)
}

/// [`t_ci`] from the sample's size, [`mean`] and [`sample_sd`] (n ≥ 2).
fn t_ci_of(n: usize, m: f64, sd: f64, level: f64) -> Option<(f64, f64)> {
    let t = t_critical(level, (n - 1) as f64)?;
    let half = t * (sd / (n as f64).sqrt());
    let (lo, hi) = (m - half, m + half);
    (lo.is_finite() && hi.is_finite() && half >= 0.0).then_some((lo, hi))
}

/// Student-t 95 % confidence interval of the mean: [`t_ci`] at 0.95.
pub fn t_ci95(xs: &[f64]) -> Option<(f64, f64)> {
    t_ci(xs, 0.95)
}

/// Welch's unequal-variance t-test of two samples, `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Welch {
    /// t statistic, (mean(b) − mean(a)) / √(s²_a/n_a + s²_b/n_b): positive when `b` is larger.
    /// Equals `scipy.stats.ttest_ind(b, a, equal_var=False).statistic`.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value from Student's t with `df` degrees of freedom, in [0, 1].
    pub p_value: f64,
    /// mean(b) − mean(a).
    pub difference: f64,
    /// 95 % confidence interval of `difference`: difference ± t₀.₉₇₅,df × standard error.
    pub diff_ci95: (f64, f64),
    /// Hedges' g: difference / pooled SD × J, pooled SD = √(((n_a−1)s²_a + (n_b−1)s²_b) /
    /// (n_a+n_b−2)), small-sample correction J = 1 − 3 / (4(n_a+n_b) − 9).
    pub hedges_g: f64,
}

/// Welch's t-test of `b` against `a` (see [`Welch`] for the definitions). `None` when either
/// sample has fewer than 2 values, both variances are 0 (t undefined), a value is not
/// finite, or a result is not finite (e.g. means of opposite signs near `f64::MAX`).
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    welch_of(
        (a.len(), mean(a)?, sample_sd(a)?),
        (b.len(), mean(b)?, sample_sd(b)?),
    )
}

/// [`welch`] from each sample's size, [`mean`] and [`sample_sd`] (as [`mean_sd`] gives them).
pub fn welch_of((na, ma, sa): (usize, f64, f64), (nb, mb, sb): (usize, f64, f64)) -> Option<Welch> {
    let (na, nb) = (na as f64, nb as f64);
    // Work with SDs scaled by the larger one so that neither the squares nor the
    // Welch–Satterthwaite ratio overflow or underflow.
    let s = sa.max(sb);
    if s.is_nan() || s <= 0.0 {
        return None;
    }
    let (ra, rb) = ((sa / s).powi(2) / na, (sb / s).powi(2) / nb);
    let se = (ra + rb).sqrt() * s;
    let df = (ra + rb).powi(2) / (ra.powi(2) / (na - 1.0) + rb.powi(2) / (nb - 1.0));
    let difference = mb - ma;
    let t = difference / se;
    let p_value = t_p_value(t, df)?;
    let half = t_critical(0.95, df)? * se;
    let diff_ci95 = (difference - half, difference + half);
    let pooled = ((((na - 1.0) * (sa / s).powi(2) + (nb - 1.0) * (sb / s).powi(2))
        / (na + nb - 2.0))
        .sqrt())
        * s;
    if pooled.is_nan() || pooled <= 0.0 {
        return None;
    }
    let j = 1.0 - 3.0 / (4.0 * (na + nb) - 9.0);
    let hedges_g = difference / pooled * j;
    let w = Welch {
        t,
        df,
        p_value,
        difference,
        diff_ci95,
        hedges_g,
    };
    [
        w.t,
        w.df,
        w.p_value,
        w.difference,
        w.diff_ci95.0,
        w.diff_ci95.1,
        w.hedges_g,
    ]
    .iter()
    .all(|x| x.is_finite())
    .then_some(w)
}

/// Descriptive statistics of one sample, as the reports tabulate them (the statistics
/// columns of `summary.parquet`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Describe {
    /// Number of values (all of them, finite or not).
    pub n: u64,
    /// [`mean`].
    pub mean: Option<f64>,
    /// [`sample_sd`] (n − 1).
    pub sd: Option<f64>,
    /// [`cv_pct`], %.
    pub cv_pct: Option<f64>,
    /// [`median`].
    pub median: Option<f64>,
    /// 95th [`percentile`] (linear interpolation, type 7).
    pub p95: Option<f64>,
    /// [`min`].
    pub min: Option<f64>,
    /// [`max`].
    pub max: Option<f64>,
    /// [`t_ci95`] of the mean; written as `ci95_low` and `ci95_high`, as the summary
    /// tabulates it.
    #[serde(flatten, with = "ci_bounds")]
    pub ci95: Option<(f64, f64)>,
}

/// An interval as its two ends, `ci95_low` and `ci95_high` (both null without one).
mod ci_bounds {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Bounds {
        ci95_low: Option<f64>,
        ci95_high: Option<f64>,
    }

    pub fn serialize<S: Serializer>(ci: &Option<(f64, f64)>, s: S) -> Result<S::Ok, S::Error> {
        let (ci95_low, ci95_high) = (ci.map(|c| c.0), ci.map(|c| c.1));
        Bounds {
            ci95_low,
            ci95_high,
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(f64, f64)>, D::Error> {
        let b = Bounds::deserialize(d)?;
        Ok(b.ci95_low.zip(b.ci95_high))
    }
}

/// All the descriptive statistics of `xs` at once (each field as its function defines it).
/// The mean and SD are computed once and shared by the CV and the interval, and the order
/// statistics come from selection (`select_nth_unstable`, linear time) on one copy rather
/// than from a full sort: the same values, bit for bit, as the separate functions give.
pub fn describe(xs: &[f64]) -> Describe {
    let (m, sd) = mean_sd(xs);
    let cv = match (sd, m) {
        (Some(sd), Some(m)) if m != 0.0 => finite(sd / m * 100.0),
        _ => None,
    };
    let ci95 = match (m, sd) {
        (Some(m), Some(sd)) => t_ci_of(xs.len(), m, sd, 0.95),
        _ => None,
    };
    let mut v = all_finite(xs).then(|| xs.to_vec());
    let mut pct = |q: f64| v.as_deref_mut().map(|v| percentile_select(v, q));
    let (median, p95) = (pct(50.0), pct(95.0));
    let ends = v.as_deref().map(|v| {
        v.iter().fold((v[0], v[0]), |(lo, hi), &x| {
            (
                if x.total_cmp(&lo).is_lt() { x } else { lo },
                if x.total_cmp(&hi).is_gt() { x } else { hi },
            )
        })
    });
    Describe {
        n: xs.len() as u64,
        mean: m,
        sd,
        cv_pct: cv,
        median,
        p95,
        min: ends.map(|e| e.0),
        max: ends.map(|e| e.1),
        ci95,
    }
}

/// [`percentile_sorted`] of finite, non-empty `v` in any order, by selection: the two closest
/// ranks are found without sorting (`v` is reordered).
fn percentile_select(v: &mut [f64], q: f64) -> f64 {
    let (rank, lo, hi) = ranks(v.len(), q);
    let (_, a, above) = v.select_nth_unstable_by(lo, f64::total_cmp);
    let a = *a;
    // The next rank up is the smallest value above rank `lo`.
    let b = if hi == lo {
        a
    } else {
        above.iter().copied().fold(
            f64::INFINITY,
            |m, x| if x.total_cmp(&m).is_lt() { x } else { m },
        )
    };
    interpolate(a, b, rank - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// |got − want| ≤ 1e-9 × max(|want|, 1e-300).
    fn close(got: Option<f64>, want: f64) {
        let got = got.expect("a value");
        let tol = 1e-9 * want.abs().max(1e-300);
        assert!((got - want).abs() <= tol, "got {got:?}, want {want:?}");
    }

    fn close2(got: Option<(f64, f64)>, want: (f64, f64)) {
        let got = got.expect("an interval");
        close(Some(got.0), want.0);
        close(Some(got.1), want.1);
    }

    const X: [f64; 10] = [12.5, 9.75, 14.0, 11.25, 10.5, 13.75, 8.0, 12.0, 15.5, 7.25];
    const A: [f64; 5] = [98.904, 101.080, 99.34, 98.55, 114.54];
    const B: [f64; 7] = [120.1, 135.7, 128.3, 141.9, 118.4, 131.2, 125.0];

    /// 50 + ((37 i) mod 101) / 8 for i = 1..=30 (exact in binary floating point).
    fn x30() -> Vec<f64> {
        (1..=30)
            .map(|i| 50.0 + f64::from((i * 37) % 101) / 8.0)
            .collect()
    }

    // import numpy as np
    // x = np.array([12.5, 9.75, 14.0, 11.25, 10.5, 13.75, 8.0, 12.0, 15.5, 7.25])
    // np.mean(x), np.std(x, ddof=1), np.std(x, ddof=1) / np.mean(x) * 100, np.median(x)
    // [np.percentile(x, q) for q in (0, 5, 50, 95, 99, 100)]   # method="linear" (default)
    #[test]
    fn descriptive_statistics_match_numpy() {
        close(mean(&X), 11.45);
        close(sample_sd(&X), 2.64522630831886);
        close(cv_pct(&X), 23.10241317309048);
        close(median(&X), 11.625);
        for (q, want) in [
            (0.0, 7.25),
            (5.0, 7.5875),
            (50.0, 11.625),
            (95.0, 14.825),
            (99.0, 15.365),
            (100.0, 15.5),
        ] {
            close(percentile(&X, q), want);
        }
        assert_eq!(min(&X), Some(7.25));
        assert_eq!(max(&X), Some(15.5));
        assert_eq!(sum(&X), 114.5);
        // Odd n: the middle value.
        assert_eq!(median(&A), Some(99.34));
    }

    // from scipy import stats; import numpy as np
    // def ci(v): return stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
    // ci([3.0, 5.5]); ci([98.904, 101.080, 99.34, 98.55, 114.54])
    // ci([50 + ((i * 37) % 101) / 8 for i in range(1, 31)])
    // stats.t.interval(0.90, 4, loc=np.mean(a), scale=stats.sem(a))   # a = the n = 5 sample
    #[test]
    fn t_confidence_intervals_match_scipy() {
        close2(
            t_ci95(&[3.0, 5.5]),
            (-11.632755920218369, 20.13275592021837),
        );
        close2(t_ci95(&A), (94.02726333999773, 110.93833666000226));
        close2(t_ci95(&x30()), (55.07700180549314, 57.83966486117353));
        close2(t_ci(&A, 0.90), (95.99035805632654, 108.97524194367345));
        // All values equal: a zero-width interval at the mean.
        assert_eq!(t_ci95(&[2.0, 2.0, 2.0]), Some((2.0, 2.0)));
        // Levels outside (0, 1) are refused.
        for level in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            assert_eq!(t_ci(&A, level), None, "level {level}");
        }
    }

    // from scipy import stats; import numpy as np
    // a = np.array([98.904, 101.080, 99.34, 98.55, 114.54])
    // b = np.array([120.1, 135.7, 128.3, 141.9, 118.4, 131.2, 125.0])
    // r = stats.ttest_ind(b, a, equal_var=False)            # t, p, df
    // r.confidence_interval(0.95)                          # CI of mean(b) - mean(a)
    // by hand: va, vb = a.var(ddof=1), b.var(ddof=1); na, nb = len(a), len(b)
    //   se = np.sqrt(va/na + vb/nb); d = b.mean() - a.mean()
    //   df = (va/na + vb/nb)**2 / ((va/na)**2/(na-1) + (vb/nb)**2/(nb-1))
    //   d -/+ stats.t.ppf(0.975, df) * se                  # the same CI
    //   sp = np.sqrt(((na-1)*va + (nb-1)*vb) / (na+nb-2)); J = 1 - 3/(4*(na+nb) - 9)
    //   d / sp * J                                         # Hedges' g
    #[test]
    fn welch_matches_scipy_and_the_hand_formulas() {
        let w = welch(&A, &B).expect("welch");
        close(Some(w.t), 5.94945186628849);
        close(Some(w.df), 9.745368161394824);
        close(Some(w.p_value), 0.00015681484620351193);
        close(Some(w.difference), 26.174342857142847);
        close2(Some(w.diff_ci95), (16.33691851675828, 36.01176719752741));
        close(Some(w.hedges_g), 3.0963520253387373);
        // Swapping the samples flips the signs and keeps df and p.
        let r = welch(&B, &A).expect("welch");
        close(Some(r.t), -5.94945186628849);
        close(Some(r.hedges_g), -3.0963520253387373);
        close(Some(r.p_value), w.p_value);
        close(Some(r.df), w.df);
        // One constant sample: still defined (df = n − 1 of the other).
        let c = welch(&[5.0, 5.0, 5.0], &A).expect("one variance is 0");
        close(Some(c.df), 4.0);
        // Both constant: t undefined.
        assert_eq!(welch(&[1.0, 1.0], &[2.0, 2.0, 2.0]), None);
    }

    #[test]
    fn too_few_values_give_none() {
        let empty: [f64; 0] = [];
        for xs in [&empty[..], &[4.0][..]] {
            assert_eq!(sample_sd(xs), None);
            assert_eq!(cv_pct(xs), None);
            assert_eq!(t_ci95(xs), None);
            assert_eq!(welch(xs, &A), None);
            assert_eq!(welch(&A, xs), None);
        }
        assert_eq!(mean(&empty), None);
        assert_eq!(median(&empty), None);
        assert_eq!(percentile(&empty, 50.0), None);
        assert_eq!(min(&empty), None);
        assert_eq!(max(&empty), None);
        assert_eq!(sum(&empty), 0.0);
        let d = describe(&empty);
        assert_eq!((d.n, d.mean, d.median, d.ci95), (0, None, None, None));
        // n = 1: the order statistics and the mean exist, the spread does not.
        let d = describe(&[4.0]);
        assert_eq!(d.n, 1);
        assert_eq!(
            (d.mean, d.median, d.p95, d.min, d.max),
            (Some(4.0), Some(4.0), Some(4.0), Some(4.0), Some(4.0))
        );
        assert_eq!((d.sd, d.cv_pct, d.ci95), (None, None, None));
        assert_eq!(cv_pct(&[0.0, 0.0, 0.0]), None, "mean 0");
    }

    #[test]
    fn describe_agrees_with_the_functions() {
        let d = describe(&X);
        assert_eq!(d.n, 10);
        assert_eq!(d.mean, mean(&X));
        assert_eq!(d.sd, sample_sd(&X));
        assert_eq!(d.cv_pct, cv_pct(&X));
        assert_eq!(d.median, median(&X));
        assert_eq!(d.p95, percentile(&X, 95.0));
        assert_eq!((d.min, d.max), (min(&X), max(&X)));
        assert_eq!(d.ci95, t_ci95(&X));
        let json = serde_json::to_value(d).expect("serialize");
        assert_eq!(json["n"], 10);
        let (low, high) = d.ci95.expect("an interval");
        assert_eq!(
            (json["ci95_low"].as_f64(), json["ci95_high"].as_f64()),
            (Some(low), Some(high))
        );
        let back: Describe = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, d);
    }

    #[test]
    fn non_finite_and_extreme_inputs() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let xs = [1.0, bad, 3.0];
            assert_eq!(mean(&xs), None);
            assert_eq!(sample_sd(&xs), None);
            assert_eq!(median(&xs), None);
            assert_eq!(min(&xs), None);
            assert_eq!(t_ci95(&xs), None);
            assert_eq!(welch(&xs, &A), None);
            assert_eq!(describe(&xs).n, 3);
        }
        for q in [-0.1, 100.1, f64::NAN] {
            assert_eq!(percentile(&X, q), None);
        }
        // Huge finite values: no intermediate overflow.
        let big = [f64::MAX, f64::MAX];
        assert_eq!(mean(&big), Some(f64::MAX));
        assert_eq!(sample_sd(&big), Some(0.0));
        assert_eq!(median(&[-f64::MAX, f64::MAX]), Some(0.0));
        assert_eq!(mean(&[-f64::MAX, f64::MAX]), Some(0.0));
        close(sample_sd(&[1e300, -1e300]), 2f64.sqrt() * 1e300);
        // An SD beyond f64::MAX is not representable.
        assert_eq!(sample_sd(&[-f64::MAX, f64::MAX]), None);
        assert_eq!(welch(&[-f64::MAX, f64::MAX], &[0.0, 1.0]), None);
        // Tiny values keep their precision.
        close(sample_sd(&[1e-300, 3e-300]), 2f64.sqrt() * 1e-300);
    }

    /// Finite floats of every magnitude, and everyday ones.
    fn finite_f64() -> impl Strategy<Value = f64> {
        use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
        prop_oneof![
            POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
            -1e6..1e6f64,
            (0u32..20).prop_map(f64::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn never_panics(
            xs in prop::collection::vec(any::<f64>(), 0..12),
            ys in prop::collection::vec(any::<f64>(), 0..12),
            q in any::<f64>(),
            level in any::<f64>(),
        ) {
            let d = describe(&xs);
            prop_assert_eq!(d.n, xs.len() as u64);
            let _ = (percentile(&xs, q), t_ci(&xs, level), sum(&xs));
            if let Some(w) = welch(&xs, &ys) {
                prop_assert!((0.0..=1.0).contains(&w.p_value));
            }
            // Every Some is finite.
            for v in [d.mean, d.sd, d.cv_pct, d.median, d.p95, d.min, d.max].into_iter().flatten() {
                prop_assert!(v.is_finite());
            }
        }

        /// `describe` (one mean and SD, selection for the order statistics) gives the very
        /// bits the separate functions and a full sort give, ties and signed zeros included.
        #[test]
        fn describe_is_the_functions_bit_for_bit(
            xs in prop::collection::vec(
                prop_oneof![finite_f64(), Just(0.0), Just(-0.0), Just(1.5), Just(-2.25)],
                0..60,
            ),
        ) {
            let d = describe(&xs);
            let v = sorted(&xs);
            let bits = |x: Option<f64>| x.map(f64::to_bits);
            prop_assert_eq!(bits(d.mean), bits(mean(&xs)));
            prop_assert_eq!(bits(d.sd), bits(sample_sd(&xs)));
            prop_assert_eq!(bits(d.cv_pct), bits(cv_pct(&xs)));
            prop_assert_eq!(bits(d.median), bits(median(&xs)));
            prop_assert_eq!(bits(d.p95), bits(percentile(&xs, 95.0)));
            prop_assert_eq!(bits(d.min), bits(v.as_deref().map(|v| v[0])));
            prop_assert_eq!(bits(d.max), bits(v.as_deref().map(|v| v[v.len() - 1])));
            let ci = |c: Option<(f64, f64)>| c.map(|(a, b)| (a.to_bits(), b.to_bits()));
            prop_assert_eq!(ci(d.ci95), ci(t_ci95(&xs)));
            let (m, sd) = mean_sd(&xs);
            prop_assert_eq!((bits(m), bits(sd)), (bits(mean(&xs)), bits(sample_sd(&xs))));
            let half = &xs[..xs.len() / 2];
            let of = |v: &[f64]| Some((v.len(), mean(v)?, sample_sd(v)?));
            let w = of(half).zip(of(&xs)).and_then(|(a, b)| welch_of(a, b));
            prop_assert_eq!(format!("{w:?}"), format!("{:?}", welch(half, &xs)));
        }

        #[test]
        fn order_and_interval_invariants(
            xs in prop::collection::vec(finite_f64(), 1..40),
            ys in prop::collection::vec(finite_f64(), 2..40),
            q1 in 0.0..=100.0f64,
            q2 in 0.0..=100.0f64,
        ) {
            let (lo, hi, med) = (min(&xs), max(&xs), median(&xs));
            prop_assert!(lo.is_some() && hi.is_some() && med.is_some());
            prop_assert!(lo <= med && med <= hi, "{:?} {:?} {:?}", lo, med, hi);
            let (qa, qb) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            let (pa, pb) = (percentile(&xs, qa), percentile(&xs, qb));
            prop_assert!(pa <= pb, "p{} = {:?} > p{} = {:?}", qa, pa, qb, pb);
            prop_assert!(lo <= pa && pb <= hi);
            prop_assert!(mean(&xs).is_some());
            if let (Some(m), Some((a, b))) = (mean(&xs), t_ci95(&xs)) {
                prop_assert!(a <= m && m <= b, "{} not in ({}, {})", m, a, b);
            }
            if xs.len() >= 2 {
                let m = mean(&xs).unwrap_or(f64::NAN);
                prop_assert!(lo.unwrap_or(f64::NAN) <= m && m <= hi.unwrap_or(f64::NAN));
                if let Some(sd) = sample_sd(&xs) {
                    prop_assert!(sd >= 0.0);
                }
            }
            if let Some(w) = welch(&xs, &ys) {
                prop_assert!((0.0..=1.0).contains(&w.p_value), "p = {}", w.p_value);
                prop_assert!(w.diff_ci95.0 <= w.difference && w.difference <= w.diff_ci95.1);
                prop_assert!(w.df > 0.0);
            }
        }
    }
}
