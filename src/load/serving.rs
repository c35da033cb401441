//! Serving metrics of a load, by the definitions written down in `docs/serving-metrics.md`:
//! TTFT, ITL, TPOT and end-to-end latency at p50/p90/p95/p99, request and token throughput,
//! send lateness, and goodput against service-level objectives (SLOs).

use serde::{Deserialize, Serialize};

use crate::stats;

/// One request of a load, as the driver saw it (times in ms after the load started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Sequence number (order of sending).
    pub index: u64,
    /// The closed-loop user that sent it (open loop: none).
    pub user: Option<u32>,
    /// When the schedule said to send it (open loop only).
    pub scheduled_ms: Option<f64>,
    /// When it was sent.
    pub sent_ms: f64,
    /// When its reply ended (or it failed).
    pub done_ms: f64,
    /// In the warm-up, which the metrics leave out.
    pub warmup: bool,
    /// The request succeeded.
    pub ok: bool,
    /// Client TTFT: send → first chunk with text.
    pub ttft_ms: Option<f64>,
    /// Client end-to-end time: send → end of the reply.
    pub e2e_ms: f64,
    /// Gaps between consecutive chunks with text.
    pub itl_ms: Vec<f64>,
    /// Output tokens (the server's count).
    pub output_tokens: Option<u64>,
    /// Prompt tokens (the server's count).
    pub input_tokens: Option<u64>,
    /// Prompt tokens asked for (a sweep's `--input-tokens`, or the trace's length).
    #[serde(default)]
    pub input_tokens_requested: Option<u32>,
    /// Output tokens asked for.
    #[serde(default)]
    pub output_tokens_requested: Option<u32>,
}

impl Sample {
    /// Time per output token after the first: (e2e − TTFT) / (output tokens − 1), for a reply
    /// of at least two tokens.
    pub fn tpot_ms(&self) -> Option<f64> {
        let n = self.output_tokens?;
        let ttft = self.ttft_ms?;
        (n >= 2).then(|| (self.e2e_ms - ttft).max(0.0) / (n - 1) as f64)
    }

    /// How late the request was sent against its schedule (open loop), ms.
    pub fn lateness_ms(&self) -> Option<f64> {
        self.scheduled_ms.map(|s| self.sent_ms - s)
    }
}

/// A metric an SLO bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// Time to first token.
    TtftMs,
    /// Time per output token.
    TpotMs,
    /// Inter-token latency (pooled gaps; a request's own value is its largest gap).
    ItlMs,
    /// End-to-end latency.
    E2eMs,
}

impl SloMetric {
    /// The metric's name.
    pub fn name(self) -> &'static str {
        match self {
            SloMetric::TtftMs => "ttft_ms",
            SloMetric::TpotMs => "tpot_ms",
            SloMetric::ItlMs => "itl_ms",
            SloMetric::E2eMs => "e2e_ms",
        }
    }

    /// A request's own value of the metric (ITL: its largest gap).
    pub fn of(self, s: &Sample) -> Option<f64> {
        match self {
            SloMetric::TtftMs => s.ttft_ms,
            SloMetric::TpotMs => s.tpot_ms(),
            SloMetric::ItlMs => s
                .itl_ms
                .iter()
                .copied()
                .fold(None, |m, x| Some(m.map_or(x, |m: f64| m.max(x)))),
            SloMetric::E2eMs => Some(s.e2e_ms),
        }
    }

    /// The values a percentile of the metric is taken over: one per request (ITL: every gap).
    pub fn values(self, samples: &[&Sample]) -> Vec<f64> {
        match self {
            SloMetric::ItlMs => samples
                .iter()
                .flat_map(|s| s.itl_ms.iter().copied())
                .collect(),
            m => samples.iter().filter_map(|s| m.of(s)).collect(),
        }
    }
}

/// A service-level objective: the metric's `percentile` over a load's requests at most
/// `max_ms` (the SLO frontier), and each request's own value at most `max_ms` (goodput).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// The metric.
    pub metric: SloMetric,
    /// The bound, ms.
    pub max_ms: f64,
    /// The percentile the frontier checks (default 99).
    #[serde(default = "default_percentile")]
    pub percentile: f64,
}

fn default_percentile() -> f64 {
    99.0
}

impl Slo {
    /// Whether one request met the objective: it succeeded and its own value is at most the
    /// bound (a request without the value, e.g. no TPOT for a one-token reply, meets a TPOT
    /// objective; a failed request meets none).
    pub fn met_by(&self, s: &Sample) -> bool {
        s.ok && self.metric.of(s).is_none_or(|v| v <= self.max_ms)
            && (self.metric != SloMetric::TtftMs || s.ttft_ms.is_some())
    }
}

/// p50, p90, p95, p99 (type-7) and the mean of a metric, with the number of values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Percentiles {
    /// The percentiles of `xs` (None when empty).
    pub fn of(xs: &[f64]) -> Option<Percentiles> {
        let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        Some(Percentiles {
            n: v.len() as u64,
            mean: stats::mean(&v)?,
            p50: stats::percentile(&v, 50.0)?,
            p90: stats::percentile(&v, 90.0)?,
            p95: stats::percentile(&v, 95.0)?,
            p99: stats::percentile(&v, 99.0)?,
        })
    }
}

/// The serving metrics of one load (warm-up left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests measured (warm-up left out).
    pub requests: u64,
    /// Of them, succeeded.
    pub ok: u64,
    /// Of them, met every SLO.
    pub good: u64,
    /// From the first measured send to the last measured completion, s.
    pub window_s: f64,
    /// Successful requests per second over the window.
    pub request_rate: f64,
    /// Output tokens per second over the window (successful requests).
    pub output_tok_s: f64,
    /// Requests per second that met every SLO (goodput).
    pub goodput: f64,
    /// TTFT.
    pub ttft: Option<Percentiles>,
    /// ITL (every gap of every request).
    pub itl: Option<Percentiles>,
    /// TPOT.
    pub tpot: Option<Percentiles>,
    /// End-to-end latency.
    pub e2e: Option<Percentiles>,
    /// Send lateness against the schedule (open loop).
    pub lateness: Option<Percentiles>,
}

/// The summary of `samples` against `slos`.
pub fn summarise(samples: &[Sample], slos: &[Slo]) -> Summary {
    let measured: Vec<&Sample> = samples.iter().filter(|s| !s.warmup).collect();
    let ok: Vec<&Sample> = measured.iter().copied().filter(|s| s.ok).collect();
    let good = ok
        .iter()
        .filter(|s| slos.iter().all(|slo| slo.met_by(s)))
        .count() as u64;
    let start = measured
        .iter()
        .map(|s| s.sent_ms)
        .fold(f64::INFINITY, f64::min);
    let end = measured
        .iter()
        .map(|s| s.done_ms)
        .fold(f64::NEG_INFINITY, f64::max);
    let window_s = if end > start {
        (end - start) / 1000.0
    } else {
        0.0
    };
    let per_s = |x: f64| if window_s > 0.0 { x / window_s } else { 0.0 };
    let tokens: u64 = ok.iter().filter_map(|s| s.output_tokens).sum();
    let lateness: Vec<f64> = measured.iter().filter_map(|s| s.lateness_ms()).collect();
    Summary {
        requests: measured.len() as u64,
        ok: ok.len() as u64,
        good,
        window_s,
        request_rate: per_s(ok.len() as f64),
        output_tok_s: per_s(tokens as f64),
        goodput: per_s(good as f64),
        ttft: Percentiles::of(&SloMetric::TtftMs.values(&ok)),
        itl: Percentiles::of(&SloMetric::ItlMs.values(&ok)),
        tpot: Percentiles::of(&SloMetric::TpotMs.values(&ok)),
        e2e: Percentiles::of(&SloMetric::E2eMs.values(&ok)),
        lateness: Percentiles::of(&lateness),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(i: u64, sent: f64, ttft: f64, e2e: f64, tokens: u64) -> Sample {
        let gap = if tokens > 1 {
            (e2e - ttft) / (tokens - 1) as f64
        } else {
            0.0
        };
        Sample {
            index: i,
            user: None,
            scheduled_ms: Some(sent),
            sent_ms: sent + 0.25,
            done_ms: sent + 0.25 + e2e,
            warmup: false,
            ok: true,
            ttft_ms: Some(ttft),
            e2e_ms: e2e,
            itl_ms: vec![gap; tokens.saturating_sub(1) as usize],
            output_tokens: Some(tokens),
            input_tokens: Some(100),
            input_tokens_requested: Some(100),
            output_tokens_requested: Some(tokens as u32),
        }
    }

    #[test]
    fn tpot_and_lateness_follow_their_definitions() {
        let s = sample(0, 10.0, 100.0, 500.0, 5);
        assert_eq!(s.tpot_ms(), Some(100.0));
        assert_eq!(s.lateness_ms(), Some(0.25));
        assert_eq!(sample(0, 0.0, 100.0, 100.0, 1).tpot_ms(), None);
        assert_eq!(SloMetric::ItlMs.of(&s), Some(100.0));
    }

    /// Goodput counts exactly the requests that met every SLO: here the 7 of 10 with TTFT
    /// ≤ 500 ms and TPOT ≤ 50 ms (2 too slow to start, 1 too slow per token, and a failed
    /// and a warm-up request that do not count).
    #[test]
    fn goodput_counts_exactly_the_requests_that_met_every_slo() {
        let mut v: Vec<Sample> = (0..7)
            .map(|i| sample(i, i as f64 * 100.0, 200.0, 200.0 + 9.0 * 40.0, 10))
            .collect();
        v.push(sample(7, 700.0, 600.0, 900.0, 10)); // TTFT 600 > 500
        v.push(sample(8, 800.0, 501.0, 700.0, 10)); // TTFT 501 > 500
        v.push(sample(9, 900.0, 100.0, 100.0 + 9.0 * 60.0, 10)); // TPOT 60 > 50
        let mut failed = sample(10, 950.0, 100.0, 200.0, 10);
        failed.ok = false;
        v.push(failed);
        let mut warm = sample(11, 0.0, 100.0, 200.0, 10);
        warm.warmup = true;
        v.push(warm);
        let slos = [
            Slo {
                metric: SloMetric::TtftMs,
                max_ms: 500.0,
                percentile: 99.0,
            },
            Slo {
                metric: SloMetric::TpotMs,
                max_ms: 50.0,
                percentile: 99.0,
            },
        ];
        let s = summarise(&v, &slos);
        assert_eq!((s.requests, s.ok, s.good), (11, 10, 7));
        // Window: first measured send (0.25 ms) to the last completion.
        let end = v[..11].iter().map(|x| x.done_ms).fold(0.0, f64::max);
        assert!((s.window_s - (end - 0.25) / 1000.0).abs() < 1e-12);
        assert!((s.goodput - 7.0 / s.window_s).abs() < 1e-9);
        assert!((s.request_rate - 10.0 / s.window_s).abs() < 1e-9);
        assert!((s.output_tok_s - 100.0 / s.window_s).abs() < 1e-9);
        assert_eq!(s.lateness.map(|l| l.p99), Some(0.25));
        // Without SLOs every successful request is good.
        assert_eq!(summarise(&v, &[]).good, 10);
    }

    #[test]
    fn percentiles_are_type_7() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&xs).expect("p");
        assert_eq!((p.n, p.p50, p.mean), (100, 50.5, 50.5));
        assert!((p.p99 - 99.01).abs() < 1e-9);
        assert_eq!(Percentiles::of(&[]), None);
    }
}
