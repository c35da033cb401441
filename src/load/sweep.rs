//! A sweep: one load per level (users, or requests per second), each repeated, repetitions
//! interleaved (every level once, then every level again), summarised per level with CIs over
//! the repetitions, and the SLO frontier.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::arrivals::{Arrivals, Stop};
use super::driver::{DriveError, Load, MakeRequest, Mode, drive};
use super::frontier::{Frontier, Level, frontier};
use super::prompt::{Calibration, CalibrationError, CalibrationSource, calibrate, synthetic};
use super::serving::{Sample, Slo, Summary, summarise};
use super::trace::TraceEntry;
use crate::backend::{Client, LlmRequest};
use crate::stats;

/// What a sweep varies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Levels {
    /// Closed loop, these numbers of users.
    Users(Vec<u32>),
    /// Open loop, a trace replayed with its timing and lengths, at each of these speeds (2:
    /// twice as fast).
    Trace {
        /// The trace.
        entries: Vec<TraceEntry>,
        /// Speed factors.
        speeds: Vec<f64>,
    },
    /// Open loop, these rates (requests per second): Poisson with `seed`, or constant spacing.
    Rates {
        /// Requests per second.
        rates: Vec<f64>,
        /// Seed of the Poisson gaps (constant spacing without).
        seed: Option<u64>,
    },
}

/// A sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The levels.
    pub levels: Levels,
    /// Where each load stops.
    pub stop: Stop,
    /// Each load's warm-up.
    pub warmup: Option<Stop>,
    /// Repetitions of every level.
    pub repetitions: u32,
    /// Prompt length in the server's tokens (None: a fixed short prompt).
    pub input_tokens: Option<u32>,
    /// Output length to force (None: the server's choice).
    pub output_tokens: Option<u32>,
    /// The SLOs.
    pub slos: Vec<Slo>,
    /// The request every load sends, its prompt replaced.
    pub base: LlmRequest,
    /// Mixed into every prompt (and each repetition's Poisson seed), so that one run's prompts
    /// are not another's: a server's prompt cache cannot serve a request from an earlier run.
    pub nonce: u64,
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A load could not run.
    #[error(transparent)]
    Drive(#[from] DriveError),
    /// Prompt lengths could not be calibrated.
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
    /// Nothing to sweep.
    #[error("the sweep has no level: give --users or --rate a list of values")]
    NoLevels,
}

/// A mean over repetitions with its Student-t 95 % CI.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mean {
    /// Mean.
    pub mean: f64,
    /// 95 % CI (None with one repetition).
    pub ci95: Option<(f64, f64)>,
}

/// The mean of `xs` with its Student-t 95 % CI (none below two values; `None` when empty).
pub fn mean_of(xs: &[f64]) -> Option<Mean> {
    Some(Mean {
        mean: stats::mean(xs)?,
        ci95: if xs.len() >= 2 {
            stats::t_ci95(xs)
        } else {
            None
        },
    })
}

/// One level's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelResult {
    /// The level.
    pub level: f64,
    /// Each repetition's summary.
    pub runs: Vec<Summary>,
    /// Successful requests per second, over the repetitions.
    pub request_rate: Option<Mean>,
    /// Output tokens per second.
    pub output_tok_s: Option<Mean>,
    /// Goodput.
    pub goodput: Option<Mean>,
    /// p50 and p99 TTFT.
    pub ttft_p50: Option<Mean>,
    /// p99 TTFT.
    pub ttft_p99: Option<Mean>,
    /// p50 ITL.
    pub itl_p50: Option<Mean>,
    /// p99 ITL.
    pub itl_p99: Option<Mean>,
    /// p50 TPOT.
    pub tpot_p50: Option<Mean>,
    /// p99 TPOT.
    #[serde(default)]
    pub tpot_p99: Option<Mean>,
    /// p99 end-to-end latency.
    pub e2e_p99: Option<Mean>,
    /// p99 send lateness (open loop).
    pub lateness_p99: Option<Mean>,
    /// Mean prompt tokens the server counted (requested: the sweep's `input_tokens`).
    pub input_tokens: Option<f64>,
    /// Mean output tokens the server counted.
    pub output_tokens: Option<f64>,
    /// Mean |counted − asked| prompt tokens, over the requests that asked for a length.
    pub input_tokens_off: Option<f64>,
    /// Mean |counted − asked| output tokens.
    pub output_tokens_off: Option<f64>,
}

/// A sweep's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    /// `users` or `requests per second`.
    pub unit: String,
    /// Repetitions of every level.
    pub repetitions: u32,
    /// The prompt calibration (when `input_tokens` was asked for).
    pub calibration: Option<Calibration>,
    /// Requested prompt and output tokens.
    pub requested: (Option<u32>, Option<u32>),
    /// The nonce the prompts were drawn with (the same nonce, the same prompts).
    pub nonce: u64,
    /// Per level, ascending.
    pub levels: Vec<LevelResult>,
    /// The SLOs.
    pub slos: Vec<Slo>,
    /// The SLO frontier.
    pub frontier: Frontier,
}

/// Runs `sweep` against `client`.
pub async fn run(sweep: &Sweep, client: Arc<Client>) -> Result<SweepResult, SweepError> {
    let trace: Vec<TraceEntry> = match &sweep.levels {
        Levels::Trace { entries, .. } => entries.clone(),
        _ => Vec::new(),
    };
    let (unit, modes): (&str, Vec<(f64, Mode)>) = match &sweep.levels {
        Levels::Trace { entries, speeds } => (
            "× trace speed",
            speeds
                .iter()
                .map(|&x| {
                    let at_ms = entries.iter().map(|e| e.at_ms / x).collect();
                    (
                        x,
                        Mode::Open {
                            arrivals: Arrivals::Times { at_ms },
                        },
                    )
                })
                .collect(),
        ),
        Levels::Users(u) => (
            "users",
            u.iter()
                .map(|&n| (f64::from(n), Mode::Closed { users: n }))
                .collect(),
        ),
        Levels::Rates { rates, seed } => (
            "requests per second",
            rates
                .iter()
                .map(|&r| {
                    let arrivals = match seed {
                        Some(s) => Arrivals::Poisson {
                            rate_per_s: r,
                            seed: *s,
                        },
                        None => Arrivals::Constant { rate_per_s: r },
                    };
                    (r, Mode::Open { arrivals })
                })
                .collect(),
        ),
    };
    if modes.is_empty() {
        return Err(SweepError::NoLevels);
    }
    let calibration = if sweep.input_tokens.is_some() || !trace.is_empty() {
        Some(calibrate(&client, &sweep.base, (64, 256), sweep.nonce).await?)
    } else {
        None
    };
    // Per request (low 32 bits of its number: its index in the load): the lengths asked for.
    let lengths = {
        let trace = trace.clone();
        let (input, output) = (sweep.input_tokens, sweep.output_tokens);
        move |i: u64| -> (Option<u32>, Option<u32>) {
            match trace.get((i & 0xffff_ffff) as usize) {
                Some(e) => (Some(e.input_tokens), Some(e.output_tokens)),
                None if !trace.is_empty() => (None, None),
                None => (input, output),
            }
        }
    };
    let words_of = move |n: Option<u32>| match (n, calibration) {
        (Some(n), Some(c)) => c.words_for(n),
        _ => 8,
    };
    let base = sweep.base.clone();
    // Ollama cannot force a length: `num_predict` only caps it. Only OpenAI-compatible
    // servers are asked to force one.
    let openai = client.is_openai();
    let nonce = sweep.nonce;
    let asked = lengths.clone();
    let make: MakeRequest = Arc::new(move |i| {
        let (input, cap) = asked(i);
        let mut req = base.clone();
        req.prompt = synthetic(words_of(input), crate::util::rng::mix(nonce ^ i));
        if let Some(n) = cap {
            req.options.num_predict = Some(i64::from(n));
        }
        (req, cap.filter(|_| openai))
    });
    let mut samples: Vec<Vec<Vec<Sample>>> = vec![Vec::new(); modes.len()];
    for rep in 0..sweep.repetitions.max(1) {
        for (k, (_, mode)) in modes.iter().enumerate() {
            // Each repetition its own arrival times (the same across levels within it).
            let mode = match mode {
                Mode::Open {
                    arrivals: Arrivals::Poisson { rate_per_s, seed },
                } => Mode::Open {
                    arrivals: Arrivals::Poisson {
                        rate_per_s: *rate_per_s,
                        seed: crate::util::rng::mix(*seed ^ u64::from(rep)),
                    },
                },
                m => m.clone(),
            };
            let load = Load {
                mode,
                stop: sweep.stop,
                warmup: sweep.warmup,
            };
            // Each repetition its own requests (and prompts), so no cache serves a repeat.
            let offset = (u64::from(rep) * modes.len() as u64 + k as u64) << 32;
            let make_rep = make.clone();
            let make_k: MakeRequest = Arc::new(move |i| make_rep(offset + i));
            let mut got = drive(&load, client.clone(), make_k).await?;
            for s in &mut got {
                (s.input_tokens_requested, s.output_tokens_requested) = lengths(s.index);
            }
            samples[k].push(got);
        }
    }
    let mut order: Vec<usize> = (0..modes.len()).collect();
    order.sort_by(|a, b| modes[*a].0.total_cmp(&modes[*b].0));
    let levels: Vec<LevelResult> = order
        .iter()
        .map(|&k| level_result(modes[k].0, &samples[k], &sweep.slos))
        .collect();
    let for_frontier: Vec<Level<'_>> = order
        .iter()
        .map(|&k| Level {
            level: modes[k].0,
            runs: samples[k].iter().map(Vec::as_slice).collect(),
        })
        .collect();
    Ok(SweepResult {
        unit: unit.to_owned(),
        repetitions: sweep.repetitions.max(1),
        calibration,
        requested: (sweep.input_tokens, sweep.output_tokens),
        nonce: sweep.nonce,
        frontier: frontier(&for_frontier, &sweep.slos),
        levels,
        slos: sweep.slos.clone(),
    })
}

/// A level's summaries and means over its repetitions (each repetition's requests).
pub fn level_result(level: f64, runs: &[Vec<Sample>], slos: &[Slo]) -> LevelResult {
    let sums: Vec<Summary> = runs.iter().map(|r| summarise(r, slos)).collect();
    let over = |f: &dyn Fn(&Summary) -> Option<f64>| {
        mean_of(&sums.iter().filter_map(f).collect::<Vec<_>>())
    };
    let measured = || runs.iter().flatten().filter(|s| s.ok && !s.warmup);
    let avg = |xs: Vec<f64>| stats::mean(&xs);
    LevelResult {
        level,
        request_rate: over(&|s| Some(s.request_rate)),
        output_tok_s: over(&|s| Some(s.output_tok_s)),
        goodput: over(&|s| Some(s.goodput)),
        ttft_p50: over(&|s| s.ttft.map(|p| p.p50)),
        ttft_p99: over(&|s| s.ttft.map(|p| p.p99)),
        itl_p50: over(&|s| s.itl.map(|p| p.p50)),
        itl_p99: over(&|s| s.itl.map(|p| p.p99)),
        tpot_p50: over(&|s| s.tpot.map(|p| p.p50)),
        tpot_p99: over(&|s| s.tpot.map(|p| p.p99)),
        e2e_p99: over(&|s| s.e2e.map(|p| p.p99)),
        lateness_p99: over(&|s| s.lateness.map(|p| p.p99)),
        input_tokens: avg(measured()
            .filter_map(|s| s.input_tokens)
            .map(|n| n as f64)
            .collect()),
        output_tokens: avg(measured()
            .filter_map(|s| s.output_tokens)
            .map(|n| n as f64)
            .collect()),
        input_tokens_off: avg(measured()
            .filter_map(|s| {
                Some((s.input_tokens? as f64 - f64::from(s.input_tokens_requested?)).abs())
            })
            .collect()),
        output_tokens_off: avg(measured()
            .filter_map(|s| {
                Some((s.output_tokens? as f64 - f64::from(s.output_tokens_requested?)).abs())
            })
            .collect()),
        runs: sums,
    }
}

/// `mean [lo, hi]` with `dec` decimals, or `—`.
fn cell(m: Option<Mean>, dec: usize) -> String {
    match m {
        None => "—".to_owned(),
        Some(Mean { mean, ci95: None }) => format!("{mean:.dec$}"),
        Some(Mean {
            mean,
            ci95: Some((lo, hi)),
        }) => format!("{mean:.dec$} [{lo:.dec$}, {hi:.dec$}]"),
    }
}

/// The sweep as a table for the terminal, then the frontier.
pub fn render_text(r: &SweepResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} level(s) × {} repetition(s); each value the mean over repetitions [Student-t 95 % CI]",
        r.levels.len(),
        r.repetitions
    );
    if let Some(c) = r.calibration {
        let asked = match r.requested.0 {
            Some(n) => format!("{n} token(s) asked"),
            None => "lengths from the trace".to_owned(),
        };
        let _ = writeln!(
            out,
            "prompts: {asked}; the server counts {:.3} token(s) per word + {:.1} (calibrated by {})",
            c.per_word,
            c.overhead,
            match c.source {
                CalibrationSource::Tokenize => "its /tokenize and one probe request",
                CalibrationSource::Probe => "two probe requests",
            }
        );
    }
    let _ = writeln!(
        out,
        "{:>8}  {:>22}  {:>22}  {:>22}  {:>20}  {:>20}  {:>18}  {:>12}  {:>12}",
        r.unit.split(' ').next().unwrap_or("level"),
        "req/s",
        "output tok/s",
        "goodput req/s",
        "TTFT p99 ms",
        "ITL p99 ms",
        "TPOT p50 ms",
        "lateness p99",
        "in/out tok"
    );
    for l in &r.levels {
        let toks = format!(
            "{}/{}",
            l.input_tokens.map_or("—".into(), |x| format!("{x:.0}")),
            l.output_tokens.map_or("—".into(), |x| format!("{x:.0}"))
        );
        let _ = writeln!(
            out,
            "{:>8}  {:>22}  {:>22}  {:>22}  {:>20}  {:>20}  {:>18}  {:>12}  {:>12}",
            trim(l.level),
            cell(l.request_rate, 1),
            cell(l.output_tok_s, 0),
            cell(l.goodput, 1),
            cell(l.ttft_p99, 1),
            cell(l.itl_p99, 2),
            cell(l.tpot_p50, 2),
            l.lateness_p99
                .map_or("—".into(), |m| format!("{:.3} ms", m.mean)),
            toks
        );
    }
    out.push_str(&frontier_words(r));
    out
}

/// A level as written: no decimals when whole.
fn trim(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// The frontier in one or two sentences.
fn frontier_words(r: &SweepResult) -> String {
    if r.slos.is_empty() {
        return "no SLO given (--slo ttft_ms<=500@p99): no frontier\n".to_owned();
    }
    let slos: Vec<String> = r
        .slos
        .iter()
        .map(|s| {
            format!(
                "{} p{} ≤ {} ms",
                s.metric.name(),
                trim(s.percentile),
                trim(s.max_ms)
            )
        })
        .collect();
    let f = &r.frontier;
    let mut out = format!("SLOs: {}\n", slos.join(", "));
    match (f.largest_meeting, f.first_failing) {
        (Some(m), Some(x)) => {
            let _ = writeln!(
                out,
                "frontier: {} {} meet every SLO; {} {} fail one (the crossing lies between)",
                trim(m),
                r.unit,
                trim(x),
                r.unit
            );
        }
        (Some(m), None) => {
            let _ = writeln!(
                out,
                "frontier: every level up to {} {} meets every SLO (the highest level swept; \
                 sweep higher to find the crossing)",
                trim(m),
                r.unit
            );
        }
        (None, Some(x)) if f.levels.first().map(|l| l.level) == Some(x) => {
            let _ = writeln!(
                out,
                "frontier: none; already {} {} fails an SLO",
                trim(x),
                r.unit
            );
        }
        (None, Some(x)) => {
            let _ = writeln!(
                out,
                "frontier: unsure below {} {}, which fails an SLO; run more repetitions",
                trim(x),
                r.unit
            );
        }
        (None, None) => {
            let _ = writeln!(
                out,
                "frontier: unsure at the lowest level with {} repetition(s); run more repetitions",
                r.repetitions
            );
        }
    }
    out
}
