//! Per-request lengths drawn around a target (`fixed`, `uniform`, `normal`), from a seed and
//! the request's number, so that a run's lengths are reproducible and each request's own.

use crate::manifest::LengthDistribution;
use crate::util::rng::{SplitMix64, mix};

/// The length request `index` asks for: `target` drawn by `d` from `seed` (at least 1).
pub fn draw(d: &LengthDistribution, target: u32, seed: u64, index: u64) -> u32 {
    let mut rng = SplitMix64::new(mix(seed ^ mix(index)));
    let t = f64::from(target);
    let x = match *d {
        LengthDistribution::Fixed => return target,
        LengthDistribution::Uniform { spread } => t * (1.0 + spread * (2.0 * rng.unit() - 1.0)),
        LengthDistribution::Normal { cv } => {
            // Box–Muller; 1 − unit() is in (0, 1], so the logarithm is finite.
            let (u1, u2) = (1.0 - rng.unit(), rng.unit());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (t + t * cv * z).clamp(1.0, 2.0 * t)
        }
    };
    if x.is_finite() {
        x.round().max(1.0) as u32
    } else {
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats;

    fn many(d: LengthDistribution, target: u32) -> Vec<f64> {
        (0..20_000)
            .map(|i| f64::from(draw(&d, target, 7, i)))
            .collect()
    }

    #[test]
    fn fixed_is_the_target_and_draws_are_reproducible() {
        assert!(
            many(LengthDistribution::Fixed, 128)
                .iter()
                .all(|x| *x == 128.0)
        );
        let d = LengthDistribution::Uniform { spread: 0.5 };
        assert_eq!(draw(&d, 100, 1, 5), draw(&d, 100, 1, 5));
        assert_ne!(
            many(d, 100),
            (0..20_000)
                .map(|i| f64::from(draw(&d, 100, 8, i)))
                .collect::<Vec<_>>()
        );
    }

    /// Uniform ±25 % around 200: within [150, 250], mean 200, standard deviation
    /// 50 / √3 ≈ 28.9 (both within sampling error of 20 000 draws).
    #[test]
    fn uniform_hits_its_range_mean_and_spread() {
        let xs = many(LengthDistribution::Uniform { spread: 0.25 }, 200);
        assert!(xs.iter().all(|x| (150.0..=250.0).contains(x)));
        let m = stats::mean(&xs).expect("mean");
        let sd = stats::mean_sd(&xs).1.expect("sd");
        assert!((m - 200.0).abs() < 1.0, "mean {m}");
        assert!((sd - 50.0 / 3f64.sqrt()).abs() < 1.0, "sd {sd}");
    }

    /// Normal with cv 0.1 around 500: mean 500, standard deviation 50, about 68 % within one
    /// standard deviation, and never outside [1, 1000].
    #[test]
    fn normal_hits_its_mean_and_spread() {
        let xs = many(LengthDistribution::Normal { cv: 0.1 }, 500);
        let m = stats::mean(&xs).expect("mean");
        let sd = stats::mean_sd(&xs).1.expect("sd");
        assert!((m - 500.0).abs() < 1.5, "mean {m}");
        assert!((sd - 50.0).abs() < 1.5, "sd {sd}");
        let within = xs.iter().filter(|x| (**x - 500.0).abs() <= 50.0).count() as f64;
        assert!((within / xs.len() as f64 - 0.6827).abs() < 0.015);
        assert!(xs.iter().all(|x| (1.0..=1000.0).contains(x)));
        assert!(
            many(LengthDistribution::Normal { cv: 0.9 }, 1)
                .iter()
                .all(|x| *x == 1.0 || *x == 2.0)
        );
    }
}
