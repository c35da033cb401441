//! Metric definitions: the published ones, exactly as the original harnesses computed them,
//! and the honest ones that compare concurrent runs with each agent run alone.
//!
//! Every function is pure, takes plain numbers or slices, and never panics (an empty input
//! gives `None` or 0 as documented).

use serde::Serialize;

use crate::backend::RequestRecord;
use crate::manifest::TtftDefinition;
use crate::stats;

/// Default contention threshold of the published harnesses: speedup < 1.5.
pub const CONTENTION_THRESHOLD: f64 = 1.5;

/// Arithmetic mean; `None` for an empty slice or a non-finite value
/// ([`stats::mean`](crate::stats::mean)).
pub fn mean(xs: &[f64]) -> Option<f64> {
    stats::mean(xs)
}

/// Sample standard deviation (n − 1); 0 when n < 2, as the Rust harnesses did (and 0 for a
/// non-finite value). [`stats::sample_sd`](crate::stats::sample_sd) otherwise.
pub fn sample_sd(xs: &[f64]) -> f64 {
    stats::sample_sd(xs).unwrap_or(0.0)
}

/// Percentile with linear interpolation between closest ranks (NumPy's default); `q` in 0–100
/// (clamped into that range). Non-finite values are left out; `None` when no finite value
/// remains or `q` is NaN or infinite. [`stats::percentile`](crate::stats::percentile)
/// over the finite values.
pub fn percentile(xs: &[f64], q: f64) -> Option<f64> {
    if !q.is_finite() {
        return None;
    }
    let finite: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    stats::percentile(&finite, q.clamp(0.0, 100.0))
}

/// Decode throughput of one request as the Rust harnesses computed it:
/// `eval_count / max(eval_duration_s, 1e-6)`; `None` without server timings, and `None` when
/// the server timed less than 1 ms of decoding for a non-empty reply (llama-server reports
/// ~0 ms for a one-token reply, whose token comes out of the prompt pass: no rate exists, and
/// the harness formula would give up to 10⁶ tok/s). A reply of 0 tokens is 0 tok/s, as the
/// harnesses averaged it.
pub fn throughput_tok_s(eval_count: Option<u64>, eval_ms: Option<f64>) -> Option<f64> {
    let n = eval_count? as f64;
    let ms = eval_ms?;
    if n > 0.0 && ms < 1.0 {
        return None;
    }
    let s = (ms / 1000.0).max(1e-6);
    Some(n / s)
}

/// TTFT of one request as a harness defined it (tr-spec §1.3): the client TTFT, or the
/// server's `load + prompt_eval` or `prompt_eval` durations; `None` when the request lacks
/// the timings the definition needs (a failed request, a server that reports none).
pub fn published_ttft_ms(def: TtftDefinition, r: &RequestRecord) -> Option<f64> {
    match def {
        TtftDefinition::ClientFirstChunk => r.ttft_ms,
        TtftDefinition::LoadPlusPromptEval => Some(r.load_ms? + r.prompt_eval_ms?),
        TtftDefinition::PromptEval => r.prompt_eval_ms,
    }
}

/// Client-side throughput: output tokens / (e2e − TTFT).
pub fn client_tok_s(output_tokens: Option<u64>, e2e_ms: f64, ttft_ms: Option<f64>) -> Option<f64> {
    let n = output_tokens? as f64;
    let decode_s = (e2e_ms - ttft_ms?) / 1000.0;
    (decode_s > 0.0).then(|| n / decode_s)
}

/// Per-agent aggregate over its requests (warm-ups excluded by the caller), as the Rust
/// harness's `aggregate_llm_metrics`: means of per-call throughput and TTFT, sums of
/// durations and tokens, sample SDs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentAggregate {
    /// Requests counted.
    pub requests: usize,
    /// Requests that failed.
    pub failed: usize,
    /// Mean of per-request throughput, tok/s.
    pub throughput_mean_tok_s: Option<f64>,
    /// Sample SD of per-request throughput.
    pub throughput_sd_tok_s: f64,
    /// Mean client TTFT, ms.
    pub ttft_mean_ms: Option<f64>,
    /// Sample SD of TTFT.
    pub ttft_sd_ms: f64,
    /// Mean TTFT as the configuration's harness defined it (see [`published_ttft_ms`]), ms;
    /// for imports, the TTFT the original harness stored.
    pub published_ttft_mean_ms: Option<f64>,
    /// Σ client end-to-end times, ms.
    pub e2e_sum_ms: f64,
    /// Σ output tokens.
    pub output_tokens: u64,
    /// Σ server load time, ms.
    pub load_sum_ms: f64,
    /// Σ prompt eval time, ms.
    pub prompt_eval_sum_ms: f64,
    /// Σ eval time, ms.
    pub eval_sum_ms: f64,
}

/// Aggregates one agent's requests. Failed requests are counted but contribute no timings;
/// `def` says how the published TTFT is derived.
pub fn aggregate(requests: &[&RequestRecord], def: TtftDefinition) -> AgentAggregate {
    let ok: Vec<&&RequestRecord> = requests.iter().filter(|r| r.ok()).collect();
    let tps: Vec<f64> = ok
        .iter()
        .filter_map(|r| throughput_tok_s(r.output_tokens, r.eval_ms))
        .collect();
    let ttft: Vec<f64> = ok.iter().filter_map(|r| r.ttft_ms).collect();
    let published: Vec<f64> = ok
        .iter()
        .filter_map(|r| published_ttft_ms(def, r))
        .collect();
    AgentAggregate {
        requests: requests.len(),
        failed: requests.len() - ok.len(),
        throughput_mean_tok_s: mean(&tps),
        throughput_sd_tok_s: sample_sd(&tps),
        ttft_mean_ms: mean(&ttft),
        ttft_sd_ms: sample_sd(&ttft),
        published_ttft_mean_ms: mean(&published),
        e2e_sum_ms: ok.iter().map(|r| r.e2e_ms).sum(),
        output_tokens: sum_tokens(ok.iter().filter_map(|r| r.output_tokens)),
        load_sum_ms: ok.iter().filter_map(|r| r.load_ms).sum(),
        prompt_eval_sum_ms: ok.iter().filter_map(|r| r.prompt_eval_ms).sum(),
        eval_sum_ms: ok.iter().filter_map(|r| r.eval_ms).sum(),
    }
}

/// Published speedup: Σ agents' durations measured *during the concurrent run* / wall.
pub fn published_speedup(agent_durations_ms: &[f64], wall_ms: f64) -> Option<f64> {
    (wall_ms > 0.0 && !agent_durations_ms.is_empty())
        .then(|| agent_durations_ms.iter().sum::<f64>() / wall_ms)
}

/// Efficiency, %: speedup / N × 100.
pub fn efficiency_pct(speedup: f64, agents: usize) -> Option<f64> {
    (agents > 0).then(|| speedup / agents as f64 * 100.0)
}

/// Published contention flag: speedup < threshold (1.5 in every original harness).
pub fn contention(speedup: f64, threshold: f64) -> bool {
    speedup < threshold
}

/// True speedup: Σ each agent's duration when run alone (isolated cells) / concurrent wall.
pub fn true_speedup(isolated_durations_ms: &[f64], concurrent_wall_ms: f64) -> Option<f64> {
    published_speedup(isolated_durations_ms, concurrent_wall_ms)
}

/// Rust sign conventions (H6): throughput delta = B − A; TTFT delta = A − B ("positive = B
/// faster") of the published TTFT (the harness's definition; the client TTFT for H5/H6).
pub fn deltas_rust(a: &AgentAggregate, b: &AgentAggregate) -> (Option<f64>, Option<f64>) {
    let tp = match (a.throughput_mean_tok_s, b.throughput_mean_tok_s) {
        (Some(x), Some(y)) => Some(y - x),
        _ => None,
    };
    let ttft = match (a.published_ttft_mean_ms, b.published_ttft_mean_ms) {
        (Some(x), Some(y)) => Some(x - y),
        _ => None,
    };
    (tp, ttft)
}

/// Σ token counts, saturating at `u64::MAX`: the counts come from servers and raw files, and a
/// damaged one near `u64::MAX` must not overflow (a panic in debug builds, a wrong small
/// total in release builds).
pub fn sum_tokens(counts: impl IntoIterator<Item = u64>) -> u64 {
    counts.into_iter().fold(0, u64::saturating_add)
}

/// Aggregate throughput of a set of agents over a wall-clock window: Σ output tokens / wall.
pub fn aggregate_tok_s(output_tokens: u64, wall_ms: f64) -> Option<f64> {
    (wall_ms > 0.0).then(|| output_tokens as f64 / (wall_ms / 1000.0))
}

/// Single-agent comparison (H2/H5): throughput improvement %, (chimera − baseline) / baseline.
pub fn throughput_improvement_pct(baseline: f64, chimera: f64) -> Option<f64> {
    (baseline != 0.0).then(|| (chimera - baseline) / baseline * 100.0)
}

/// Single-agent comparison: TTFT reduction %, (baseline − chimera) / baseline.
pub fn ttft_reduction_pct(baseline: f64, chimera: f64) -> Option<f64> {
    (baseline != 0.0).then(|| (baseline - chimera) / baseline * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ttft_follows_each_harness_definition() {
        let r = RequestRecord {
            ttft_ms: Some(250.0),
            load_ms: Some(1200.0),
            prompt_eval_ms: Some(80.0),
            ..RequestRecord::default()
        };
        // TR108 (H1) and the Python harnesses H2/H3: load + prompt eval.
        let h1 = TtftDefinition::of_harness("H1");
        assert_eq!(h1, TtftDefinition::LoadPlusPromptEval);
        assert_eq!(published_ttft_ms(h1, &r), Some(1280.0));
        assert_eq!(TtftDefinition::of_harness("h3"), h1);
        // TR116 Python (H4): prompt eval only.
        let h4 = TtftDefinition::of_harness("H4");
        assert_eq!(published_ttft_ms(h4, &r), Some(80.0));
        // The Rust harnesses and anything else: the client TTFT.
        for h in ["H5", "H6v1", "H6v2", "soak"] {
            let d = TtftDefinition::of_harness(h);
            assert_eq!(published_ttft_ms(d, &r), Some(250.0), "{h}");
        }
        // A definition whose timings are missing gives no value, not a partial sum.
        let no_load = RequestRecord {
            load_ms: None,
            ..r.clone()
        };
        assert_eq!(published_ttft_ms(h1, &no_load), None);
        // The aggregate averages the defined TTFT of the successful requests.
        let r2 = RequestRecord {
            load_ms: Some(0.0),
            prompt_eval_ms: Some(20.0),
            ..r.clone()
        };
        let a = aggregate(&[&r, &r2], h1);
        assert_eq!(a.published_ttft_mean_ms, Some(650.0));
        assert_eq!(a.ttft_mean_ms, Some(250.0));
    }

    #[test]
    fn token_sums_saturate_instead_of_overflowing() {
        assert_eq!(sum_tokens([1, 2, 3]), 6);
        assert_eq!(sum_tokens([u64::MAX - 1, 1]), u64::MAX);
        assert_eq!(sum_tokens([u64::MAX, u64::MAX, 5]), u64::MAX);
        let r = RequestRecord {
            output_tokens: Some(u64::MAX - 10),
            eval_ms: Some(1000.0),
            ..RequestRecord::default()
        };
        let a = aggregate(&[&r, &r], TtftDefinition::default());
        assert_eq!(a.output_tokens, u64::MAX);
        assert_eq!(a.requests, 2);
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn statistics_known_values() {
        // Expected values computed independently with Python's `statistics` module
        // (mean, stdev = sample SD, median) and the linear-interpolation rank formula.
        let xs = [98.904, 101.080, 99.34, 98.55, 114.54];
        assert!(close(mean(&xs).unwrap_or(f64::NAN), 102.4828, 1e-9));
        assert!(
            close(sample_sd(&xs), 6.809_842_817_569_29, 1e-12),
            "{}",
            sample_sd(&xs)
        );
        assert!(close(
            percentile(&xs, 50.0).unwrap_or(f64::NAN),
            99.34,
            1e-12
        ));
        assert!(close(
            percentile(&xs, 5.0).unwrap_or(f64::NAN),
            98.6208,
            1e-9
        ));
        assert_eq!(mean(&[]), None);
        assert_eq!(sample_sd(&[3.0]), 0.0);
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn throughput_as_the_rust_harness() {
        // TR108 check row: 267 tokens in 3.6029 s → 74.11 tok/s.
        let t = throughput_tok_s(Some(267), Some(3602.9)).unwrap_or(f64::NAN);
        assert!(close(t, 74.106, 1e-3), "{t}");
        assert_eq!(throughput_tok_s(None, Some(1.0)), None);
        // A reply whose decoding the server timed at under 1 ms has no rate (the harness's
        // 1 µs clamp would give 5,000,000 tok/s); an empty reply is 0 tok/s as it averaged.
        assert_eq!(throughput_tok_s(Some(5), Some(0.0)), None);
        assert_eq!(throughput_tok_s(Some(1), Some(0.001)), None);
        assert_eq!(throughput_tok_s(Some(0), Some(0.0)), Some(0.0));
        assert_eq!(throughput_tok_s(Some(2), Some(1.0)), Some(2000.0));
    }

    #[test]
    fn published_efficiency_is_a_balance_ratio_for_two_agents() {
        // TR110 test 001 run 1: durations 109.93 s and 91.61 s, wall 109.93 s → speedup 1.833.
        let s = published_speedup(&[109_930.0, 91_610.0], 109_930.0).unwrap_or(f64::NAN);
        assert!(close(s, 1.8333, 1e-4), "{s}");
        assert!(!contention(s, CONTENTION_THRESHOLD));
        // Identity: with wall = max(T_A, T_B), efficiency = 50 × (1 + min/max).
        for (a, b) in [
            (10.0, 10.0),
            (3.0, 7.0),
            (59_000.0, 56_800.0),
            (1.0, 1000.0),
        ] {
            let wall = f64::max(a, b);
            let e =
                efficiency_pct(published_speedup(&[a, b], wall).unwrap_or(0.0), 2).unwrap_or(0.0);
            let identity = 50.0 * (1.0 + f64::min(a, b) / f64::max(a, b));
            assert!(close(e, identity, 1e-9), "{a} {b}: {e} vs {identity}");
        }
        // Fully serialised agents: wall = T_A + T_B → 50 %.
        let e =
            efficiency_pct(published_speedup(&[4.0, 6.0], 10.0).unwrap_or(0.0), 2).unwrap_or(0.0);
        assert!(close(e, 50.0, 1e-12));
        assert_eq!(published_speedup(&[1.0], 0.0), None);
    }

    #[test]
    fn true_speedup_compares_with_agents_alone() {
        // Two agents that each take 10 s alone but 20 s together (one shared GPU): the
        // published efficiency says 100 %, the true efficiency 50 %.
        let published = efficiency_pct(
            published_speedup(&[20_000.0, 20_000.0], 20_000.0).unwrap_or(0.0),
            2,
        );
        let honest = efficiency_pct(
            true_speedup(&[10_000.0, 10_000.0], 20_000.0).unwrap_or(0.0),
            2,
        );
        assert_eq!(published, Some(100.0));
        assert_eq!(honest, Some(50.0));
    }

    #[test]
    fn deltas_follow_the_rust_sign_convention() {
        // The TTFT delta compares the TTFT the harness published (for the Rust harnesses,
        // the client TTFT itself).
        let agent = |tok_s, ttft, published| AgentAggregate {
            throughput_mean_tok_s: Some(tok_s),
            ttft_mean_ms: Some(ttft),
            published_ttft_mean_ms: Some(published),
            ..AgentAggregate::default()
        };
        let (a, b) = (agent(40.0, 1.0, 900.0), agent(44.0, 2.0, 500.0));
        assert_eq!(deltas_rust(&a, &b), (Some(4.0), Some(400.0)));
        assert_eq!(
            throughput_improvement_pct(98.904, 101.080).map(|x| (x * 100.0).round() / 100.0),
            Some(2.2)
        );
        assert_eq!(
            ttft_reduction_pct(1422.70, 448.95).map(|x| (x * 100.0).round() / 100.0),
            Some(68.44)
        );
    }

    #[test]
    fn aggregate_skips_failed_requests() {
        let ok = RequestRecord {
            ttft_ms: Some(100.0),
            e2e_ms: 1000.0,
            output_tokens: Some(100),
            eval_ms: Some(900.0),
            ..RequestRecord::default()
        };
        let failed = RequestRecord {
            error: Some(crate::backend::RequestError {
                kind: crate::backend::ErrorKind::Timeout,
                status: None,
                message: "stalled".into(),
            }),
            ..RequestRecord::default()
        };
        let agg = aggregate(&[&ok, &failed, &ok], TtftDefinition::default());
        assert_eq!(agg.requests, 3);
        assert_eq!(agg.failed, 1);
        assert_eq!(agg.output_tokens, 200);
        assert!(close(
            agg.throughput_mean_tok_s.unwrap_or(0.0),
            111.111,
            1e-3
        ));
        assert_eq!(agg.throughput_sd_tok_s, 0.0);
        assert_eq!(
            aggregate(&[], TtftDefinition::default()).throughput_mean_tok_s,
            None
        );
    }
}
