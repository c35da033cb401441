//! Serving-load benchmarks: offered load, and the serving metrics a load gives.
//!
//! - `arrivals`: when an open-loop load sends (constant, seeded Poisson, phase profiles);
//! - `driver`: closed loop (N users) and open loop (a schedule) against one endpoint, every
//!   request a [`serving::Sample`] with its scheduled and actual send time;
//! - `serving`: TTFT, ITL, TPOT, end-to-end latency percentiles, request and token
//!   throughput, send lateness and goodput against SLOs (`docs/serving-metrics.md`);
//! - `frontier`: the largest level of a sweep that meets every SLO, with its uncertainty;
//! - `lengths`: per-request lengths drawn around a target (fixed, uniform, normal);
//! - `prompt`: synthetic prompts of a length in the server's own tokens (calibrated on it);
//! - `sweep`: levels × interleaved repetitions, summarised with CIs, and the frontier
//!   (`chimera load`);
//! - `trace`: a request trace (JSONL of send time, prompt and reply lengths) to replay.

pub mod arrivals;
pub mod driver;
pub mod frontier;
pub mod lengths;
pub mod prompt;
pub mod serving;
pub mod sweep;
pub mod trace;

pub use arrivals::{Arrivals, MAX_REQUESTS, Phase, Stop};
pub use driver::{Load, MakeRequest, Mode, drive, drive_keeping};
pub use frontier::{Frontier, Level, Standing, frontier};
pub use serving::{Percentiles, Sample, Slo, SloMetric, Summary, summarise};
