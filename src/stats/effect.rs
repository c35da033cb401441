//! Effect sizes a reader can use: a difference with its 95 % CI, and the power line — the
//! repetitions that would be needed to detect a given difference at the observed variance — so
//! that a CI that includes the reference can be read as "no difference found" or as "too few
//! runs to tell".
//!
//! Sample sizes use the t-based iteration: the smallest n with
//! n ≥ (t₁₋α⸝₂,ν + t_power,ν)² · V / δ², where ν and V are n − 1 and s² for one sample (or
//! paired differences) and 2n − 2 and s²_A + s²_B per group for two samples. The normal
//! approximation n = (z₁₋α⸝₂ + z_power)² · V / δ² ([`n_one_sample_normal`],
//! [`n_two_sample_normal`]) is its starting point and a lower bound. Quantiles come from
//! `statrs`. Like the rest of [`crate::stats`], nothing here panics: an undefined result is
//! `None`.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::{finite, mean, sample_sd, t_ci95};

/// The significance level of the power line (two-sided).
pub const ALPHA: f64 = 0.05;
/// The power of the power line.
pub const POWER: f64 = 0.8;
/// The difference the power line is for, as a fraction of the reference value (2 %).
pub const DETECT_FRACTION: f64 = 0.02;

/// Above this many degrees of freedom Student's t is taken as the standard normal (their
/// quantiles differ by less than 1e-6 there).
const NORMAL_DF: f64 = 1e7;

/// How a difference's 95 % CI was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiMethod {
    /// Welch's t (two independent groups, unequal variances).
    Welch,
    /// A one-sample Student t-interval of a mean against a constant (a published number).
    OneSampleT,
    /// A paired t-interval: a one-sample t-interval of the per-run differences.
    PairedT,
}

impl CiMethod {
    /// Words for tables.
    pub fn label(self) -> &'static str {
        match self {
            CiMethod::Welch => "Welch t",
            CiMethod::OneSampleT => "one-sample t",
            CiMethod::PairedT => "paired t",
        }
    }
}

/// What a difference, its CI and its power line say together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// The 95 % CI excludes the reference (the published value, or 0).
    Different,
    /// The CI includes the reference, and the runs at hand were enough to detect the
    /// difference the power line is for.
    NoDifferenceFound,
    /// The CI includes the reference, but more runs than there are would be needed to detect
    /// that difference (or the variance is unknown): the data cannot tell.
    TooFewRuns,
}

impl Reading {
    /// Words for tables.
    pub fn label(self) -> &'static str {
        match self {
            Reading::Different => "different",
            Reading::NoDifferenceFound => "no difference found",
            Reading::TooFewRuns => "too few runs to tell",
        }
    }
}

/// The reading of a difference's 95 % CI `ci` against `reference` (0 for a difference, the
/// published value for a recomputed mean), with `n_needed` runs (per group) needed to detect
/// the difference of interest and `n_have` at hand: [`Reading::Different`] when the CI
/// excludes the reference, else [`Reading::NoDifferenceFound`] when `n_have ≥ n_needed`, else
/// [`Reading::TooFewRuns`].
pub fn reading(ci: (f64, f64), reference: f64, n_needed: Option<u64>, n_have: u64) -> Reading {
    if reference < ci.0 || reference > ci.1 {
        Reading::Different
    } else if n_needed.is_some_and(|n| n <= n_have) {
        Reading::NoDifferenceFound
    } else {
        Reading::TooFewRuns
    }
}

/// The `p` quantile of the standard normal distribution; `None` unless `0 < p < 1`.
pub fn normal_quantile(p: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    finite(Normal::new(0.0, 1.0).ok()?.inverse_cdf(p))
}

/// The `p` quantile of Student's t with `df` degrees of freedom; `None` unless `0 < p < 1`
/// and `df > 0`. Beyond 10⁷ degrees of freedom, the normal quantile.
pub fn t_quantile(p: f64, df: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) || df.is_nan() || df <= 0.0 {
        return None;
    }
    if df > NORMAL_DF {
        return normal_quantile(p);
    }
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    finite(super::polished_quantile(&dist, p))
}

/// (z₁₋α⸝₂ + z_power)², or `None` for a level or power outside (0, 1).
fn z_factor(alpha: f64, power: f64) -> Option<f64> {
    Some((normal_quantile(1.0 - alpha / 2.0)? + normal_quantile(power)?).powi(2))
}

/// V / δ² for a variance given as SDs (`sds`: one, or the two groups'), computed without
/// overflow; `None` for a non-finite or negative SD or a zero or non-finite δ.
fn variance_ratio(sds: &[f64], delta: f64) -> Option<f64> {
    let d = delta.abs();
    if !(d.is_finite() && d > 0.0) || sds.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return None;
    }
    finite(sds.iter().map(|s| (s / d).powi(2)).sum())
}

/// The normal-approximation sample size for one sample (or paired differences) of SD `sd`:
/// (z₁₋α⸝₂ + z_power)² · (s / δ)², as a real number. `None` when undefined.
pub fn n_one_sample_normal(sd: f64, delta: f64, alpha: f64, power: f64) -> Option<f64> {
    finite(z_factor(alpha, power)? * variance_ratio(&[sd], delta)?)
}

/// The normal-approximation sample size per group for two samples of SDs `sd_a`, `sd_b`:
/// (z₁₋α⸝₂ + z_power)² · (s²_A + s²_B) / δ² (= 2((z₁₋α⸝₂ + z_power) s / δ)² for equal SDs).
pub fn n_two_sample_normal(
    sd_a: f64,
    sd_b: f64,
    delta: f64,
    alpha: f64,
    power: f64,
) -> Option<f64> {
    finite(z_factor(alpha, power)? * variance_ratio(&[sd_a, sd_b], delta)?)
}

/// The smallest n ≥ 2 with n ≥ (t₁₋α⸝₂,df(n) + t_power,df(n))² · `ratio`, starting from the
/// normal approximation `z_n` (a lower bound: t quantiles exceed z quantiles).
fn t_iteration(
    ratio: f64,
    z_n: f64,
    df: impl Fn(u64) -> f64,
    alpha: f64,
    power: f64,
) -> Option<u64> {
    // Beyond 10¹⁵ the t and z answers agree to far better than one run.
    if z_n > 1e15 {
        return Some(z_n.ceil() as u64);
    }
    let need = |n: u64| -> Option<f64> {
        let nu = df(n);
        finite((t_quantile(1.0 - alpha / 2.0, nu)? + t_quantile(power, nu)?).powi(2) * ratio)
    };
    let enough = |n: u64| need(n).map(|r| n as f64 >= r);
    let lo = (z_n.ceil() as u64).max(2);
    if enough(lo)? {
        return Some(lo);
    }
    // need() falls as n grows, so ceil(need(lo)) is enough; search (lo, hi].
    let (mut lo, mut hi) = (lo, (need(lo)?.ceil() as u64).max(lo + 1));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if enough(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// Repetitions needed to detect a difference `delta` in the mean of one sample (or of paired
/// differences) of SD `sd`, two-sided level `alpha`, with probability `power`: the smallest
/// n ≥ 2 with n ≥ (t₁₋α⸝₂,n₋₁ + t_power,n₋₁)² · (s / δ)². `None` for an undefined input
/// (δ = 0, a non-finite value, α or power outside (0, 1)).
pub fn n_one_sample(sd: f64, delta: f64, alpha: f64, power: f64) -> Option<u64> {
    let z_n = n_one_sample_normal(sd, delta, alpha, power)?;
    t_iteration(
        variance_ratio(&[sd], delta)?,
        z_n,
        |n| (n - 1) as f64,
        alpha,
        power,
    )
}

/// Repetitions needed per group to detect a difference `delta` between the means of two
/// independent groups of SDs `sd_a` and `sd_b` (equal group sizes): the smallest n ≥ 2 with
/// n ≥ (t₁₋α⸝₂,₂ₙ₋₂ + t_power,₂ₙ₋₂)² · (s²_A + s²_B) / δ². `None` when undefined.
pub fn n_two_sample(sd_a: f64, sd_b: f64, delta: f64, alpha: f64, power: f64) -> Option<u64> {
    let z_n = n_two_sample_normal(sd_a, sd_b, delta, alpha, power)?;
    t_iteration(
        variance_ratio(&[sd_a, sd_b], delta)?,
        z_n,
        |n| (2 * n - 2) as f64,
        alpha,
        power,
    )
}

/// A one-sample t comparison of a mean against a constant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OneSampleT {
    /// Values.
    pub n: u64,
    /// Sample SD (n − 1).
    pub sd: f64,
    /// mean − reference.
    pub difference: f64,
    /// 95 % Student-t CI of the difference: the mean's [`t_ci95`] shifted by the reference.
    pub diff_ci95: (f64, f64),
}

/// The one-sample t comparison of `xs` against `reference`; `None` when n < 2, a value is not
/// finite, or a result is not finite.
pub fn one_sample_t(xs: &[f64], reference: f64) -> Option<OneSampleT> {
    if !reference.is_finite() {
        return None;
    }
    let m = mean(xs)?;
    let sd = sample_sd(xs)?;
    let (lo, hi) = t_ci95(xs)?;
    let r = OneSampleT {
        n: xs.len() as u64,
        sd,
        difference: finite(m - reference)?,
        diff_ci95: (finite(lo - reference)?, finite(hi - reference)?),
    };
    Some(r)
}

/// The difference to detect for a reference value: [`DETECT_FRACTION`] (2 %) of its magnitude;
/// `None` for 0 or a non-finite reference.
pub fn detect_delta(reference: f64) -> Option<f64> {
    let d = finite(reference.abs() * DETECT_FRACTION)?;
    (d > 0.0).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "got {got}, want {want}");
    }

    // from scipy import stats
    // stats.norm.ppf(0.975), stats.norm.ppf(0.8), stats.t.ppf(0.975, 4), stats.t.ppf(0.8, 9)
    #[test]
    fn quantiles_match_the_tables() {
        close(normal_quantile(0.975).expect("z"), 1.959963984540054, 1e-12);
        close(normal_quantile(0.8).expect("z"), 0.8416212335729143, 1e-12);
        close(t_quantile(0.975, 4.0).expect("t"), 2.7764451051977987, 1e-9);
        close(t_quantile(0.8, 9.0).expect("t"), 0.8834, 5e-4);
        close(t_quantile(0.975, 1e9).expect("t"), 1.959963984540054, 1e-12);
        for p in [0.0, 1.0, -1.0, f64::NAN] {
            assert_eq!(normal_quantile(p), None);
            assert_eq!(t_quantile(p, 5.0), None);
        }
        assert_eq!(t_quantile(0.9, 0.0), None);
    }

    /// The textbook values: for a standardised effect d = δ / s of 0.5, the normal
    /// approximation gives 31.4 (one sample) and 62.8 per group (two samples: Cohen's 63);
    /// the t iteration 34 and 64 (G*Power's exact noncentral-t answers are 34 and 64). For
    /// d = 0.8, two samples: 24.5 by z, 26 by t (Cohen's table: 26).
    #[test]
    fn sample_sizes_match_textbook_values() {
        close(
            n_one_sample_normal(1.0, 0.5, ALPHA, POWER).expect("n"),
            31.3955,
            1e-3,
        );
        close(
            n_two_sample_normal(1.0, 1.0, 0.5, ALPHA, POWER).expect("n"),
            62.791,
            1e-3,
        );
        assert_eq!(n_one_sample(1.0, 0.5, ALPHA, POWER), Some(34));
        assert_eq!(n_two_sample(1.0, 1.0, 0.5, ALPHA, POWER), Some(64));
        assert_eq!(n_two_sample(1.0, 1.0, 0.8, ALPHA, POWER), Some(26));
        // A huge effect needs the minimum; no spread at all too.
        assert_eq!(n_one_sample(1.0, 100.0, ALPHA, POWER), Some(2));
        assert_eq!(n_two_sample(0.0, 0.0, 1.0, ALPHA, POWER), Some(2));
        // A 2 % difference in a mean of 100 with an SD of 5 (CV 5 %): 52 runs.
        let need = n_one_sample(5.0, detect_delta(100.0).expect("δ"), ALPHA, POWER);
        assert_eq!(need, Some(52));
        // Undefined inputs.
        assert_eq!(n_one_sample(1.0, 0.0, ALPHA, POWER), None);
        assert_eq!(n_one_sample(f64::NAN, 1.0, ALPHA, POWER), None);
        assert_eq!(n_one_sample(-1.0, 1.0, ALPHA, POWER), None);
        assert_eq!(n_two_sample(1.0, 1.0, 1.0, 0.0, POWER), None);
        assert_eq!(n_two_sample(1.0, 1.0, 1.0, ALPHA, 1.0), None);
        assert_eq!(
            n_one_sample(f64::MAX, f64::MIN_POSITIVE, ALPHA, POWER),
            None
        );
        // Very large answers stay finite and close to the normal approximation.
        let big = n_one_sample(1e4, 1.0, ALPHA, POWER).expect("n") as f64;
        let z = n_one_sample_normal(1e4, 1.0, ALPHA, POWER).expect("z");
        assert!(big >= z && big <= z * 1.0001 + 3.0, "{big} vs {z}");
    }

    /// The t answer is the smallest n that satisfies its inequality.
    #[test]
    fn the_t_iteration_finds_the_smallest_n() {
        for ratio in [0.01_f64, 0.3, 1.0, 2.5, 17.0, 400.0] {
            let sd = ratio.sqrt();
            let n = n_one_sample(sd, 1.0, ALPHA, POWER).expect("n");
            let rhs = |n: u64| {
                let df = (n - 1) as f64;
                (t_quantile(0.975, df).expect("t") + t_quantile(0.8, df).expect("t")).powi(2)
                    * ratio
            };
            assert!(n as f64 >= rhs(n), "{n} is enough for {ratio}");
            if n > 2 {
                assert!(
                    ((n - 1) as f64) < rhs(n - 1),
                    "{} is not, for {ratio}",
                    n - 1
                );
            }
        }
    }

    // from scipy import stats; import numpy as np
    // a = np.array([98.904, 101.080, 99.34, 98.55, 114.54])
    // stats.ttest_1samp(a, 100).confidence_interval(0.95)   # of the mean; minus 100
    #[test]
    fn one_sample_interval_matches_scipy() {
        let a = [98.904, 101.080, 99.34, 98.55, 114.54];
        let r = one_sample_t(&a, 100.0).expect("t");
        close(r.difference, 2.4828, 1e-9);
        close(r.diff_ci95.0, 94.02726333999773 - 100.0, 1e-9);
        close(r.diff_ci95.1, 110.93833666000226 - 100.0, 1e-9);
        assert_eq!(r.n, 5);
        assert_eq!(one_sample_t(&[1.0], 0.0), None);
        assert_eq!(one_sample_t(&a, f64::NAN), None);
    }

    #[test]
    fn readings_follow_the_interval_and_the_power_line() {
        assert_eq!(reading((1.0, 2.0), 0.0, Some(3), 2), Reading::Different);
        assert_eq!(
            reading((-1.0, 2.0), 0.0, Some(3), 3),
            Reading::NoDifferenceFound
        );
        assert_eq!(reading((-1.0, 2.0), 0.0, Some(30), 3), Reading::TooFewRuns);
        assert_eq!(reading((-1.0, 2.0), 0.0, None, 3), Reading::TooFewRuns);
        assert_eq!(
            reading((97.0, 99.0), 99.0, Some(2), 2),
            Reading::NoDifferenceFound
        );
        assert_eq!(detect_delta(-50.0), Some(1.0));
        assert_eq!(detect_delta(0.0), None);
    }
}
