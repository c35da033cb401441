//! When an open-loop load sends its requests: the arrival process.
//!
//! A schedule is a list of send times, in ms after the load starts, computed before the first
//! request: constant spacing, a Poisson process (exponential gaps from the seeded generator
//! every chimera component shares, so a seed gives the same times on every machine and in
//! every version), or a profile of phases, each at its own rate, for bursts. The schedule is
//! cut at a request count or a duration, whichever the load asks for.

use serde::{Deserialize, Serialize};

use crate::util::rng::SplitMix64;

/// How requests arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Arrivals {
    /// One request every `1000 / rate_per_s` ms.
    Constant {
        /// Requests per second.
        rate_per_s: f64,
    },
    /// A Poisson process: exponential gaps of mean `1000 / rate_per_s` ms.
    Poisson {
        /// Requests per second (the mean).
        rate_per_s: f64,
        /// Seed of the gaps.
        seed: u64,
    },
    /// These send times, ms after the start, ascending (a trace's).
    Times {
        /// The send times.
        at_ms: Vec<f64>,
    },
    /// Phases one after the other, each for `duration_ms` at its own rate (Poisson gaps when
    /// `seed` is set, constant spacing otherwise); after the last phase the profile repeats.
    Profile {
        /// The phases.
        phases: Vec<Phase>,
        /// Seed of Poisson gaps; constant spacing within each phase without it.
        #[serde(default)]
        seed: Option<u64>,
    },
}

/// One phase of an arrival profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// How long the phase lasts, ms.
    pub duration_ms: f64,
    /// Requests per second during the phase (0: a pause).
    pub rate_per_s: f64,
}

/// Where a load stops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// After this many requests.
    Requests(u64),
    /// At this time after the start, ms (no request is sent at or after it).
    DurationMs(f64),
}

/// Why an arrival process cannot be scheduled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArrivalError {
    /// A rate that is not a positive finite number (a profile's phase may be 0).
    #[error("`rate_per_s` must be a positive number of requests per second, not {0}")]
    Rate(f64),
    /// A profile without a phase that sends anything, or a phase with a bad duration.
    #[error(
        "a profile needs phases with positive `duration_ms` and at least one positive `rate_per_s`"
    )]
    Profile,
    /// A load that would never stop.
    #[error("the load needs a positive request count or duration")]
    Unbounded,
    /// Send times that are not ascending times in ms, or none.
    #[error("a trace's send times must be ascending times in ms, and at least one")]
    Times,
    /// More requests than one schedule holds.
    #[error(
        "about {0:.0} requests: more than the {MAX_REQUESTS} one load may send; lower the rate or the duration"
    )]
    TooMany(f64),
}

/// The most requests one schedule holds (a typo such as a rate of 1e9 for an hour must fail
/// rather than allocate without end).
pub const MAX_REQUESTS: usize = crate::manifest::MAX_LOAD_REQUESTS;

impl Arrivals {
    /// Checks the process's numbers.
    pub fn validate(&self) -> Result<(), ArrivalError> {
        // A rate whose gap (1000 / rate ms) is not a finite number cannot be scheduled.
        let rate_ok = |r: f64| r.is_finite() && r > 0.0 && (1000.0 / r).is_finite();
        match self {
            Arrivals::Constant { rate_per_s } | Arrivals::Poisson { rate_per_s, .. } => {
                if rate_ok(*rate_per_s) {
                    Ok(())
                } else {
                    Err(ArrivalError::Rate(*rate_per_s))
                }
            }
            Arrivals::Times { at_ms } => {
                let ok = !at_ms.is_empty()
                    && at_ms.iter().all(|t| t.is_finite() && *t >= 0.0)
                    && at_ms.windows(2).all(|w| w[0] <= w[1]);
                if ok { Ok(()) } else { Err(ArrivalError::Times) }
            }
            Arrivals::Profile { phases, .. } => {
                // At least a microsecond per phase, and a rate of 0 or one that sends at
                // least once a day: a profile must make progress.
                let durations_ok = phases
                    .iter()
                    .all(|p| p.duration_ms.is_finite() && p.duration_ms >= 0.001);
                let rates_ok = phases.iter().all(|p| {
                    p.rate_per_s == 0.0 || (rate_ok(p.rate_per_s) && p.rate_per_s >= 1.0 / 86_400.0)
                });
                if durations_ok && rates_ok && phases.iter().any(|p| p.rate_per_s > 0.0) {
                    Ok(())
                } else {
                    Err(ArrivalError::Profile)
                }
            }
        }
    }

    /// The mean rate, requests per second (a profile's over one pass of its phases).
    pub fn mean_rate(&self) -> f64 {
        match self {
            Arrivals::Times { at_ms } => match (at_ms.first(), at_ms.last()) {
                (Some(a), Some(b)) if b > a => (at_ms.len() - 1) as f64 * 1000.0 / (b - a),
                _ => 0.0,
            },
            Arrivals::Constant { rate_per_s } | Arrivals::Poisson { rate_per_s, .. } => *rate_per_s,
            Arrivals::Profile { phases, .. } => {
                let total: f64 = phases.iter().map(|p| p.duration_ms).sum();
                let sent: f64 = phases.iter().map(|p| p.duration_ms * p.rate_per_s).sum();
                if total > 0.0 { sent / total } else { 0.0 }
            }
        }
    }

    /// The highest rate of the process, requests per second.
    fn peak_rate(&self) -> f64 {
        match self {
            Arrivals::Times { .. } => self.mean_rate(),
            Arrivals::Constant { rate_per_s } | Arrivals::Poisson { rate_per_s, .. } => *rate_per_s,
            Arrivals::Profile { phases, .. } => {
                phases.iter().map(|p| p.rate_per_s).fold(0.0, f64::max)
            }
        }
    }

    /// The send times, ms after the start, ascending, until `stop`.
    pub fn schedule(&self, stop: Stop) -> Result<Vec<f64>, ArrivalError> {
        self.validate()?;
        match stop {
            Stop::Requests(0) => return Err(ArrivalError::Unbounded),
            Stop::DurationMs(d) if !(d.is_finite() && d > 0.0) => {
                return Err(ArrivalError::Unbounded);
            }
            Stop::Requests(n) if n as usize > MAX_REQUESTS => {
                return Err(ArrivalError::TooMany(n as f64));
            }
            Stop::DurationMs(d) if d / 1000.0 * self.peak_rate() > MAX_REQUESTS as f64 => {
                return Err(ArrivalError::TooMany(d / 1000.0 * self.peak_rate()));
            }
            _ => {}
        }
        let mut out = Vec::new();
        let done = |out: &Vec<f64>, t: f64| match stop {
            Stop::Requests(n) => out.len() as u64 >= n || out.len() >= MAX_REQUESTS,
            Stop::DurationMs(d) => t >= d || out.len() >= MAX_REQUESTS,
        };
        match self {
            Arrivals::Constant { rate_per_s } => {
                let gap = 1000.0 / rate_per_s;
                let mut k = 0u64;
                loop {
                    let t = k as f64 * gap;
                    if done(&out, t) {
                        break;
                    }
                    out.push(t);
                    k += 1;
                }
            }
            Arrivals::Poisson { rate_per_s, seed } => {
                let mut rng = SplitMix64::new(*seed);
                let mean = 1000.0 / rate_per_s;
                let mut t = 0.0;
                loop {
                    t += exponential(&mut rng, mean);
                    if done(&out, t) {
                        break;
                    }
                    out.push(t);
                }
            }
            Arrivals::Profile { phases, seed } => profile(phases, *seed, &mut out, done),
            Arrivals::Times { at_ms } => {
                for &t in at_ms {
                    if done(&out, t) {
                        break;
                    }
                    out.push(t);
                }
            }
        }
        if out.len() >= MAX_REQUESTS {
            return Err(ArrivalError::TooMany(out.len() as f64));
        }
        Ok(out)
    }
}

/// An exponential gap of mean `mean` (inverse transform of a uniform draw in (0, 1]).
fn exponential(rng: &mut SplitMix64, mean: f64) -> f64 {
    let u = 1.0 - rng.unit();
    -mean * u.ln()
}

/// A profile's send times: phase after phase, repeating. Seeded: Poisson within a phase (a
/// gap that runs past the phase's end is drawn afresh from the next phase's start, which is
/// exact for a Poisson process). Unseeded: constant spacing at each phase's rate, the next
/// send carried over from phase to phase (a phase shorter than its gap does not send at every
/// start).
fn profile(
    phases: &[Phase],
    seed: Option<u64>,
    out: &mut Vec<f64>,
    done: impl Fn(&Vec<f64>, f64) -> bool,
) {
    let mut rng = seed.map(SplitMix64::new);
    let mut start = 0.0;
    let mut next: f64 = 0.0;
    loop {
        for p in phases {
            let end = start + p.duration_ms;
            if p.rate_per_s > 0.0 {
                let mean = 1000.0 / p.rate_per_s;
                let mut t = start;
                next = next.max(start);
                loop {
                    t = match rng.as_mut() {
                        Some(r) => t + exponential(r, mean),
                        None => next,
                    };
                    if t >= end {
                        break;
                    }
                    if done(out, t) {
                        return;
                    }
                    out.push(t);
                    next = t + mean;
                }
            }
            start = end;
            if done(out, start) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Kolmogorov–Smirnov statistic of `xs` against the exponential distribution of mean
    /// `mean`.
    fn ks_exponential(xs: &[f64], mean: f64) -> f64 {
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        v.iter()
            .enumerate()
            .map(|(i, x)| {
                let f = 1.0 - (-x / mean).exp();
                (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
            })
            .fold(0.0, f64::max)
    }

    /// With a fixed seed, the gaps of a Poisson schedule pass a Kolmogorov–Smirnov test
    /// against the exponential distribution of the requested rate (α = 0.01: critical value
    /// 1.628 / √n), the mean rate is within 5 %, and the same seed gives the same times.
    #[test]
    fn poisson_arrivals_fit_the_exponential_distribution() {
        let a = Arrivals::Poisson {
            rate_per_s: 50.0,
            seed: 7,
        };
        let t = a.schedule(Stop::Requests(4000)).expect("schedule");
        assert_eq!(t.len(), 4000);
        let mut gaps = vec![t[0]];
        gaps.extend(t.windows(2).map(|w| w[1] - w[0]));
        assert!(gaps.iter().all(|g| *g >= 0.0));
        let d = ks_exponential(&gaps, 20.0);
        let critical = 1.628 / (gaps.len() as f64).sqrt();
        assert!(d < critical, "KS D = {d}, critical {critical}");
        let rate = t.len() as f64 / (t[t.len() - 1] / 1000.0);
        assert!((rate - 50.0).abs() < 2.5, "rate {rate}");
        assert_eq!(a.schedule(Stop::Requests(4000)).expect("again"), t);
        // The test can fail: constant spacing is far from exponential.
        let c = Arrivals::Constant { rate_per_s: 50.0 }
            .schedule(Stop::Requests(4000))
            .expect("constant");
        let mut cg = vec![20.0];
        cg.extend(c.windows(2).map(|w| w[1] - w[0]));
        assert!(ks_exponential(&cg, 20.0) > critical);
        // Another seed, other times.
        let b = Arrivals::Poisson {
            rate_per_s: 50.0,
            seed: 8,
        };
        assert_ne!(b.schedule(Stop::Requests(10)).expect("b"), t[..10]);
    }

    #[test]
    fn constant_arrivals_stop_at_a_count_or_a_duration() {
        let a = Arrivals::Constant { rate_per_s: 4.0 };
        assert_eq!(
            a.schedule(Stop::Requests(3)).expect("n"),
            vec![0.0, 250.0, 500.0]
        );
        assert_eq!(
            a.schedule(Stop::DurationMs(1000.0)).expect("d"),
            vec![0.0, 250.0, 500.0, 750.0]
        );
        assert_eq!(a.schedule(Stop::Requests(0)), Err(ArrivalError::Unbounded));
        assert_eq!(
            Arrivals::Constant { rate_per_s: 0.0 }.schedule(Stop::Requests(1)),
            Err(ArrivalError::Rate(0.0))
        );
        assert_eq!(
            Arrivals::Constant {
                rate_per_s: f64::NAN
            }
            .validate()
            .map_err(|e| e.to_string().contains("rate_per_s")),
            Err(true)
        );
    }

    #[test]
    fn a_profile_sends_each_phase_at_its_rate_and_repeats() {
        let a = Arrivals::Profile {
            phases: vec![
                Phase {
                    duration_ms: 1000.0,
                    rate_per_s: 10.0,
                },
                Phase {
                    duration_ms: 1000.0,
                    rate_per_s: 0.0,
                },
                Phase {
                    duration_ms: 500.0,
                    rate_per_s: 40.0,
                },
            ],
            seed: None,
        };
        assert_eq!(a.mean_rate(), (10.0 + 20.0) / 2.5);
        let t = a.schedule(Stop::DurationMs(5000.0)).expect("schedule");
        let in_range = |lo: f64, hi: f64| t.iter().filter(|x| **x >= lo && **x < hi).count();
        assert_eq!(in_range(0.0, 1000.0), 10);
        assert_eq!(in_range(1000.0, 2000.0), 0);
        assert_eq!(in_range(2000.0, 2500.0), 20);
        assert_eq!(in_range(2500.0, 3500.0), 10, "the profile repeats");
        // A phase shorter than its gap sends at its rate, not at every pass.
        let short = Arrivals::Profile {
            phases: vec![Phase {
                duration_ms: 100.0,
                rate_per_s: 1.0,
            }],
            seed: None,
        };
        assert_eq!(
            short.schedule(Stop::DurationMs(10_000.0)).expect("s").len(),
            10
        );
        // Too many requests, or a rate too small to schedule, are refused.
        let fast = Arrivals::Constant { rate_per_s: 1e9 };
        assert!(matches!(
            fast.schedule(Stop::DurationMs(3_600_000.0)),
            Err(ArrivalError::TooMany(_))
        ));
        assert!(
            Arrivals::Constant { rate_per_s: 1e-310 }
                .validate()
                .is_err()
        );
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        let seeded = Arrivals::Profile {
            phases: vec![Phase {
                duration_ms: 100_000.0,
                rate_per_s: 20.0,
            }],
            seed: Some(3),
        };
        let n = seeded
            .schedule(Stop::DurationMs(100_000.0))
            .expect("p")
            .len();
        assert!((1800..2200).contains(&n), "{n}");
        let empty = Arrivals::Profile {
            phases: vec![Phase {
                duration_ms: 10.0,
                rate_per_s: 0.0,
            }],
            seed: None,
        };
        assert_eq!(empty.validate(), Err(ArrivalError::Profile));
    }
}
