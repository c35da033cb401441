//! Running one agent of a `load` workload: its configuration's level (closed loop of
//! `concurrency` users, or open loop at `rate`) against its endpoint, through the load
//! driver, every request a row of stage `load` with its schedule, send time and requested
//! lengths (`docs/serving-metrics.md`).

use std::collections::HashMap;
use std::sync::Arc;

use super::AgentJob;
use crate::backend::{ErrorKind, LlmRequest};
use crate::load::prompt::{Calibration, calibrate, synthetic};
use crate::load::{Arrivals, Load, MakeRequest, Mode, Phase, Stop, drive_keeping};
use crate::manifest::{ArrivalProcess, LoadTask};
use crate::plan::LoadLevel;
use crate::record::{LoadRequest, RequestRow};
use crate::util::rng::mix;
use crate::workload::Stage;
use tokio::sync::OnceCell;

/// Prompt calibrations learned in this run, by (endpoint URL, model tag, server settings):
/// one calibration per server and model, whatever the number of cells.
pub(super) type Calibrations =
    std::sync::Mutex<HashMap<CalibrationKey, Arc<OnceCell<Calibration>>>>;

/// What a calibration depends on: the endpoint URL, the model tag and the managed server's
/// settings (a flag can change the chat template).
type CalibrationKey = (String, String, String);

/// What one agent run of a load needs beyond its job.
#[derive(Clone)]
pub(super) struct LoadJob {
    /// The task.
    pub task: LoadTask,
    /// The configuration's level and lengths.
    pub level: LoadLevel,
    /// This cell's own number: mixed into every prompt (so that no server cache serves one
    /// cell's requests from another's) and into the Poisson seed (each repetition its own
    /// arrival times).
    pub nonce: u64,
    /// The run's calibrations.
    pub calibrations: Arc<Calibrations>,
    /// The configuration's managed-server settings (`parallel=4`; empty without).
    pub server: String,
}

impl LoadJob {
    /// The warm-up (its requests all flagged, `None` without) and the measured load the
    /// level asks for: the warm-up runs to its end before the measured load starts.
    fn loads(&self) -> Result<(Option<Load>, Load), String> {
        let measured = self.load()?;
        let w = u64::from(self.task.warmup_requests);
        let warm = (w > 0).then(|| Load {
            mode: measured.mode.clone(),
            stop: Stop::Requests(w),
            warmup: Some(Stop::Requests(w)),
        });
        Ok((warm, measured))
    }

    /// The measured load the level asks for.
    fn load(&self) -> Result<Load, String> {
        let t = &self.task;
        let mode = match (self.level.concurrency, self.level.rate) {
            (Some(users), _) => Mode::Closed { users },
            (None, Some(rate)) => Mode::Open {
                arrivals: match t.arrivals {
                    ArrivalProcess::Poisson => Arrivals::Poisson {
                        rate_per_s: rate,
                        seed: mix(t.seed ^ self.nonce),
                    },
                    ArrivalProcess::Constant => Arrivals::Constant { rate_per_s: rate },
                    ArrivalProcess::Phases => Arrivals::Profile {
                        phases: t
                            .phases
                            .iter()
                            .map(|p| Phase {
                                duration_ms: p.duration_s * 1000.0,
                                rate_per_s: rate * p.rate_factor,
                            })
                            .collect(),
                        seed: Some(mix(t.seed ^ self.nonce)),
                    },
                },
            },
            (None, None) => {
                return Err(
                    "the configuration has no `concurrency` or `rate`: add one of them to the block's axes".into(),
                );
            }
        };
        let stop = match (t.requests, t.duration_s) {
            (Some(n), _) => Stop::Requests(u64::from(n)),
            (None, Some(s)) => Stop::DurationMs(s * 1000.0),
            (None, None) => {
                return Err(
                    "the load task has no `requests` or `duration_s`: add one of them".into(),
                );
            }
        };
        Ok(Load {
            mode,
            stop,
            warmup: None,
        })
    }
}

/// The lengths request `i` asks for: the targets, drawn around them by the task's
/// distribution.
fn lengths(job: &LoadJob, i: u64) -> (Option<u32>, Option<u32>) {
    let draw = |target: Option<u32>, salt: u64| {
        target
            .map(|n| crate::load::lengths::draw(&job.task.lengths, n, mix(job.task.seed ^ salt), i))
    };
    (
        draw(job.level.input_tokens, 0x696e),
        draw(job.level.output_tokens, 0x6f7574),
    )
}

/// The calibration of the agent's server and model, measured once per run.
async fn calibration(
    job: &AgentJob,
    base: &LlmRequest,
    lj: &LoadJob,
) -> Result<Calibration, String> {
    let key = (
        job.client.base_url().to_owned(),
        job.model.clone(),
        lj.server.clone(),
    );
    // One cell per key: calibrations of other servers never wait on this one, and two cells
    // of this one wait for the same probes (a failed calibration is tried again next time).
    let cell = {
        let mut known = lj
            .calibrations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known.entry(key).or_default().clone()
    };
    cell.get_or_try_init(|| async {
        calibrate(&job.client, base, (64, 256), lj.nonce)
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .copied()
}

/// Runs the agent's load once: its rows, in order of sending (a load that cannot run: one
/// failed row that says why).
pub(super) async fn run(job: &AgentJob, lj: &LoadJob) -> Vec<RequestRow> {
    let fail =
        |why: String| vec![job.row(Stage::Load, 0, super::failed(ErrorKind::BadRequest, why))];
    let (warm, load) = match lj.loads() {
        Ok(l) => l,
        Err(why) => return fail(why),
    };
    let base = job.request(String::new());
    let calib = match lj.level.input_tokens {
        Some(_) => match calibration(job, &base, lj).await {
            Ok(c) => Some(c),
            Err(why) => return fail(why),
        },
        None => None,
    };
    let openai = job.client.is_openai();
    let (nonce, lj2) = (lj.nonce, lj.clone());
    let make: MakeRequest = Arc::new(move |i| {
        let (input, output) = lengths(&lj2, i);
        let words = match (input, calib) {
            (Some(n), Some(c)) => c.words_for(n),
            _ => 8,
        };
        let mut req = base.clone();
        req.prompt = synthetic(words, mix(nonce ^ i));
        if let Some(n) = output {
            req.options.num_predict = Some(i64::from(n));
        }
        // Ollama cannot force a length: `num_predict` only caps it.
        (req, output.filter(|_| openai))
    });
    let mut rows = Vec::new();
    let mut offset = 0;
    for (part, load) in warm.iter().chain(std::iter::once(&load)).enumerate() {
        let first = offset;
        let make_part: MakeRequest = {
            let make = make.clone();
            Arc::new(move |i| make(first + i))
        };
        let driven = match drive_keeping(load, job.client.clone(), make_part).await {
            Ok(d) => d,
            Err(e) => {
                let what = if part == 0 && warm.is_some() {
                    "the warm-up"
                } else {
                    "the load"
                };
                rows.push(job.row(
                    Stage::Load,
                    offset as u32,
                    super::failed(ErrorKind::BadRequest, format!("{what}: {e}")),
                ));
                return rows;
            }
        };
        offset += driven.len() as u64;
        rows.extend(driven.into_iter().map(|(s, record)| {
            let i = first + s.index;
            let (input, output) = lengths(lj, i);
            let mut row =
                RequestRow::measured(Stage::Load, i as u32, s.warmup, record, job.ttft_def);
            row.load = Some(LoadRequest {
                user: s.user,
                scheduled_ms: s.scheduled_ms,
                sent_ms: s.sent_ms,
                input_tokens_requested: input,
                output_tokens_requested: output,
            });
            row
        }));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(arrivals: ArrivalProcess, level: LoadLevel) -> LoadJob {
        LoadJob {
            task: LoadTask {
                requests: Some(10),
                duration_s: None,
                warmup_requests: 2,
                arrivals,
                phases: vec![
                    crate::manifest::PhaseSpec {
                        duration_s: 8.0,
                        rate_factor: 0.5,
                    },
                    crate::manifest::PhaseSpec {
                        duration_s: 2.0,
                        rate_factor: 3.0,
                    },
                ],
                seed: 1,
                input_tokens: None,
                output_tokens: None,
                lengths: Default::default(),
            },
            level,
            nonce: 7,
            calibrations: Arc::default(),
            server: String::new(),
        }
    }

    /// A configuration's level becomes the load: users, a Poisson or constant rate, or the
    /// phases at their multiples of the rate; the warm-up is a load of its own before it.
    #[test]
    fn levels_become_loads() {
        let users = LoadLevel {
            concurrency: Some(4),
            ..LoadLevel::default()
        };
        let (warm, l) = job(ArrivalProcess::Poisson, users).loads().expect("load");
        assert_eq!(l.mode, Mode::Closed { users: 4 });
        assert_eq!((l.stop, l.warmup), (Stop::Requests(10), None));
        let warm = warm.expect("a warm-up first");
        assert_eq!(warm.mode, l.mode);
        assert_eq!(
            (warm.stop, warm.warmup),
            (Stop::Requests(2), Some(Stop::Requests(2)))
        );
        let rate = LoadLevel {
            rate: Some(2.0),
            ..LoadLevel::default()
        };
        let l = job(ArrivalProcess::Constant, rate).load().expect("load");
        assert_eq!(
            l.mode,
            Mode::Open {
                arrivals: Arrivals::Constant { rate_per_s: 2.0 }
            }
        );
        let Mode::Open {
            arrivals: Arrivals::Profile { phases, seed },
        } = job(ArrivalProcess::Phases, rate).load().expect("load").mode
        else {
            panic!("a profile");
        };
        assert_eq!(
            phases,
            [
                Phase {
                    duration_ms: 8000.0,
                    rate_per_s: 1.0
                },
                Phase {
                    duration_ms: 2000.0,
                    rate_per_s: 6.0
                }
            ]
        );
        assert!(seed.is_some(), "Poisson gaps within the phases");
        assert!(
            job(ArrivalProcess::Poisson, LoadLevel::default())
                .load()
                .is_err()
        );
    }
}
