//! The SLO frontier of a sweep: the largest load level (a rate or a number of users) whose
//! requests still meet every service-level objective, with its uncertainty.
//!
//! Each level ran `n` repetitions. For each SLO, each repetition gives one value, the SLO's
//! percentile of its metric over that repetition's requests; over the repetitions these give
//! a mean and a Student-t 95 % CI. A level **meets** an SLO when the whole CI is at or below
//! the bound, **fails** it when the whole CI is above, and is **unsure** otherwise (one
//! repetition: its value decides, and the level is marked as without a CI). A level meets
//! the SLOs when it meets every one, fails when it fails any.
//!
//! The frontier is the largest level that meets the SLOs with every lower level meeting them
//! too; the next level up that fails bounds it from above, and the levels between the two
//! are where the crossing lies, unsure at this number of repetitions.

use serde::{Deserialize, Serialize};

use super::serving::{Sample, Slo, SloMetric};
use crate::stats;

/// One level of a sweep and its repetitions' requests.
#[derive(Debug, Clone)]
pub struct Level<'a> {
    /// The level: requests per second, or users.
    pub level: f64,
    /// Each repetition's requests.
    pub runs: Vec<&'a [Sample]>,
}

/// How a level stands against the SLOs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Every SLO's CI at or below its bound.
    Meets,
    /// Some SLO's CI above its bound.
    Fails,
    /// Neither, at this number of repetitions.
    Unsure,
}

/// One SLO at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloAtLevel {
    /// The SLO's metric name.
    pub metric: String,
    /// The percentile checked.
    pub percentile: f64,
    /// The bound, ms.
    pub max_ms: f64,
    /// Mean over the repetitions of the percentile.
    pub mean: Option<f64>,
    /// Its Student-t 95 % CI (None with one repetition).
    pub ci95: Option<(f64, f64)>,
    /// Where it stands.
    pub standing: Standing,
}

/// One level's row of the frontier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelRow {
    /// The level.
    pub level: f64,
    /// Repetitions.
    pub runs: usize,
    /// Per SLO.
    pub slos: Vec<SloAtLevel>,
    /// Against all of them.
    pub standing: Standing,
}

/// The frontier of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frontier {
    /// Every level, ascending.
    pub levels: Vec<LevelRow>,
    /// The largest level that meets the SLOs, every lower level meeting them too (None when
    /// the lowest already does not).
    pub largest_meeting: Option<f64>,
    /// The first level above it that fails them (None when none does).
    pub first_failing: Option<f64>,
}

/// The percentile of `slo`'s metric over one repetition's measured requests. A failed
/// request, and a successful one without the metric's value where it must have one (no
/// first token), counts as infinitely slow, so a level that fails requests cannot meet an
/// SLO on the few that succeeded; a repetition with no measured request is infinitely slow.
fn per_run(slo: &Slo, run: &[Sample]) -> f64 {
    let measured: Vec<&Sample> = run.iter().filter(|s| !s.warmup).collect();
    if measured.is_empty() {
        return f64::INFINITY;
    }
    let mut v: Vec<f64> = Vec::new();
    for s in &measured {
        if !s.ok {
            v.push(f64::INFINITY);
            continue;
        }
        match slo.metric {
            SloMetric::ItlMs => v.extend(s.itl_ms.iter().copied()),
            SloMetric::TpotMs => v.extend(slo.metric.of(s)),
            m => v.push(m.of(s).unwrap_or(f64::INFINITY)),
        }
    }
    v.retain(|x| !x.is_nan());
    v.sort_by(f64::total_cmp);
    stats::percentile(&v, slo.percentile).unwrap_or(f64::INFINITY)
}

/// Where one SLO stands at one level.
fn slo_at(slo: &Slo, runs: &[&[Sample]]) -> SloAtLevel {
    let values: Vec<f64> = runs.iter().map(|r| per_run(slo, r)).collect();
    let infinite = values.iter().filter(|v| !v.is_finite()).count();
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (mean, ci95) = if infinite == 0 {
        let ci = if values.len() >= 2 {
            stats::t_ci95(&values)
        } else {
            None
        };
        (stats::mean(&values), ci)
    } else {
        (None, None)
    };
    let standing = if values.is_empty() {
        // No run (not run yet, or every attempt failed or was suspect): nothing is known.
        Standing::Unsure
    } else if infinite == values.len() {
        Standing::Fails
    } else if infinite > 0 {
        // Some repetitions failed their requests, others did not.
        if finite.iter().all(|v| *v > slo.max_ms) {
            Standing::Fails
        } else {
            Standing::Unsure
        }
    } else {
        match (mean, ci95) {
            (None, _) => Standing::Fails,
            (_, Some((_, hi))) if hi <= slo.max_ms => Standing::Meets,
            (_, Some((lo, _))) if lo > slo.max_ms => Standing::Fails,
            (_, Some(_)) => Standing::Unsure,
            (Some(m), None) if m <= slo.max_ms => Standing::Meets,
            (Some(_), None) => Standing::Fails,
        }
    };
    SloAtLevel {
        metric: slo.metric.name().to_owned(),
        percentile: slo.percentile,
        max_ms: slo.max_ms,
        mean,
        ci95,
        standing,
    }
}

/// The frontier of `levels` (any order) against `slos`.
pub fn frontier(levels: &[Level<'_>], slos: &[Slo]) -> Frontier {
    let mut sorted: Vec<&Level<'_>> = levels.iter().collect();
    sorted.sort_by(|a, b| a.level.total_cmp(&b.level));
    let rows: Vec<LevelRow> = sorted
        .iter()
        .map(|l| {
            let per: Vec<SloAtLevel> = slos.iter().map(|s| slo_at(s, &l.runs)).collect();
            let standing = if per.iter().any(|s| s.standing == Standing::Fails) {
                Standing::Fails
            } else if per.iter().all(|s| s.standing == Standing::Meets) {
                Standing::Meets
            } else {
                Standing::Unsure
            };
            LevelRow {
                level: l.level,
                runs: l.runs.len(),
                slos: per,
                standing,
            }
        })
        .collect();
    // Without an SLO there is no frontier.
    let meeting = rows
        .iter()
        .take_while(|r| r.standing == Standing::Meets && !slos.is_empty())
        .last()
        .map(|r| r.level);
    let first_failing = rows
        .iter()
        .filter(|r| meeting.is_none_or(|m| r.level > m))
        .find(|r| r.standing == Standing::Fails && !slos.is_empty())
        .map(|r| r.level);
    Frontier {
        levels: rows,
        largest_meeting: meeting,
        first_failing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests whose TTFT is `base` ms plus a jitter that differs per repetition.
    fn run(level: f64, rep: u64, base: f64) -> Vec<Sample> {
        (0..50)
            .map(|i| Sample {
                index: i,
                user: None,
                scheduled_ms: None,
                sent_ms: i as f64 * 10.0,
                done_ms: i as f64 * 10.0 + base + 50.0,
                warmup: false,
                ok: true,
                ttft_ms: Some(base + ((i * 7 + rep * 13) % 11) as f64 + level * 0.0),
                e2e_ms: base + 50.0,
                itl_ms: vec![5.0; 10],
                output_tokens: Some(11),
                input_tokens: None,
                input_tokens_requested: None,
                output_tokens_requested: None,
            })
            .collect()
    }

    /// A knee: TTFT stays near 100 ms up to 8 users and climbs past the 500 ms bound from 16;
    /// the frontier is 8, bounded by 16; a level whose repetitions straddle the bound is
    /// unsure and stops the frontier below it.
    #[test]
    fn the_frontier_is_the_last_level_before_the_knee() {
        let knee = |users: f64| {
            if users <= 8.0 {
                100.0
            } else {
                100.0 * users / 2.0
            }
        };
        let data: Vec<(f64, Vec<Vec<Sample>>)> = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
            .iter()
            .map(|&u| (u, (0..3).map(|r| run(u, r, knee(u))).collect()))
            .collect();
        let levels: Vec<Level<'_>> = data
            .iter()
            .map(|(u, runs)| Level {
                level: *u,
                runs: runs.iter().map(Vec::as_slice).collect(),
            })
            .collect();
        let slo = Slo {
            metric: SloMetric::TtftMs,
            max_ms: 500.0,
            percentile: 99.0,
        };
        let f = frontier(&levels, &[slo]);
        assert_eq!(
            (f.largest_meeting, f.first_failing),
            (Some(8.0), Some(16.0))
        );
        assert_eq!(f.levels.len(), 6);
        assert!(f.levels[..4].iter().all(|l| l.standing == Standing::Meets));
        assert!(f.levels[4..].iter().all(|l| l.standing == Standing::Fails));
        // A level whose repetitions straddle the bound (490 ms and 600 ms).
        let straddle: Vec<Vec<Sample>> = vec![run(12.0, 0, 490.0), run(12.0, 1, 600.0)];
        let mut with = levels.clone();
        with.push(Level {
            level: 12.0,
            runs: straddle.iter().map(Vec::as_slice).collect(),
        });
        let f = frontier(&with, &[slo]);
        let twelve = f.levels.iter().find(|l| l.level == 12.0).expect("12");
        assert_eq!(twelve.standing, Standing::Unsure);
        assert_eq!(
            (f.largest_meeting, f.first_failing),
            (Some(8.0), Some(16.0))
        );
        // The lowest level failing: no frontier.
        let f = frontier(
            &levels,
            &[Slo {
                metric: SloMetric::TtftMs,
                max_ms: 50.0,
                percentile: 50.0,
            }],
        );
        assert_eq!((f.largest_meeting, f.first_failing), (None, Some(1.0)));
        // No SLO, no frontier.
        let f = frontier(&levels, &[]);
        assert_eq!((f.largest_meeting, f.first_failing), (None, None));
    }

    /// A level whose requests fail cannot meet an SLO on the few that succeeded, and a
    /// repetition without a measured request is not left out.
    #[test]
    fn failed_requests_count_against_the_slo() {
        let slo = Slo {
            metric: SloMetric::TtftMs,
            max_ms: 500.0,
            percentile: 99.0,
        };
        let fast: Vec<Vec<Sample>> = (0..3).map(|r| run(1.0, r, 100.0)).collect();
        let mut failing: Vec<Vec<Sample>> = (0..3).map(|r| run(2.0, r, 100.0)).collect();
        for rep in &mut failing {
            for s in rep.iter_mut().take(10) {
                s.ok = false;
            }
        }
        let empty: Vec<Vec<Sample>> = vec![run(4.0, 0, 100.0), Vec::new(), run(4.0, 2, 100.0)];
        let levels = vec![
            Level {
                level: 1.0,
                runs: fast.iter().map(Vec::as_slice).collect(),
            },
            Level {
                level: 2.0,
                runs: failing.iter().map(Vec::as_slice).collect(),
            },
            Level {
                level: 4.0,
                runs: empty.iter().map(Vec::as_slice).collect(),
            },
        ];
        let f = frontier(&levels, &[slo]);
        assert_eq!(f.levels[0].standing, Standing::Meets);
        assert_eq!(f.levels[1].standing, Standing::Fails, "{:?}", f.levels[1]);
        assert_eq!(f.levels[2].standing, Standing::Unsure, "{:?}", f.levels[2]);
        assert_eq!((f.largest_meeting, f.first_failing), (Some(1.0), Some(2.0)));
    }
}
