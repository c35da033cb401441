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

/// What one agent run did and how long it took, split the way the equal-work comparison
/// scales it: time to first token (prefill, queueing included), decode after it, and the
/// rest of the agent's duration (ingest, its own work between calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct AgentWork {
    /// The agent's duration, ms.
    pub duration_ms: f64,
    /// Σ output tokens of its successful measured requests.
    pub output_tokens: u64,
    /// Σ prompt tokens, when every successful measured request reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Successful measured requests (`None` in metadata committed before this was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u32>,
    /// Σ client TTFT of those requests, ms (`None` when not streamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_ms: Option<f64>,
    /// Σ (end-to-end − TTFT) of those requests, ms (`None` when not streamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_ms: Option<f64>,
}

impl AgentWork {
    /// The work of an agent whose successful measured (not warm-up) requests are `requests`.
    pub fn of<'a>(duration_ms: f64, requests: impl IntoIterator<Item = &'a RequestRecord>) -> Self {
        let ok: Vec<&RequestRecord> = requests.into_iter().filter(|r| r.ok()).collect();
        let streamed = !ok.is_empty() && ok.iter().all(|r| r.ttft_ms.is_some());
        let all_prompts = !ok.is_empty() && ok.iter().all(|r| r.prompt_tokens.is_some());
        let prefill: f64 = ok.iter().filter_map(|r| r.ttft_ms).sum();
        let e2e: f64 = ok.iter().map(|r| r.e2e_ms).sum();
        AgentWork {
            duration_ms,
            output_tokens: sum_tokens(ok.iter().filter_map(|r| r.output_tokens)),
            prompt_tokens: all_prompts
                .then(|| sum_tokens(ok.iter().filter_map(|r| r.prompt_tokens))),
            requests: Some(u32::try_from(ok.len()).unwrap_or(u32::MAX)),
            prefill_ms: streamed.then_some(prefill),
            decode_ms: streamed.then_some((e2e - prefill).max(0.0)),
        }
    }

    /// Decode time per output token, ms (`None` without streamed timings or tokens).
    pub fn ms_per_output_token(&self) -> Option<f64> {
        decode_per_output_token_ms(std::slice::from_ref(self))
    }

    /// Σ TTFT / Σ prompt tokens, ms (`None` without streamed timings or prompt tokens).
    pub fn prefill_per_prompt_token_ms(&self) -> Option<f64> {
        match (self.prefill_ms, self.prompt_tokens) {
            (Some(p), Some(n)) if n > 0 => Some(p / n as f64),
            _ => None,
        }
    }

    /// The tokens decoded after the first of each request (which arrives with the TTFT):
    /// what the decode time covers; `None` before the request count was recorded.
    fn tokens_after_first(&self) -> Option<u64> {
        self.requests
            .map(|n| self.output_tokens.saturating_sub(u64::from(n)))
    }
}

/// How long `alone` (an agent run alone) would have taken for the work of `together` (the
/// same agent in a concurrent run), at its alone rates: its prefill time (TTFT, which
/// includes each request's first token) scaled by the prompt tokens (by the request count
/// when prompt tokens are unknown), its decode time by the tokens decoded after each
/// request's first, the rest of its duration by the request count. Without streamed
/// timings the whole duration scales by the output tokens. `None` when the run alone
/// produced no output token, or a count needed to scale is missing or zero.
pub fn equal_work_alone_ms(alone: &AgentWork, together: &AgentWork) -> Option<f64> {
    let ratio = |t: u64, a: u64| (a > 0).then(|| t as f64 / a as f64);
    let tokens = ratio(together.output_tokens, alone.output_tokens)?;
    // A baseline committed before the split was recorded (no request count) is not scaled
    // by another formula than its neighbours': no figure.
    alone.requests?;
    let (Some(prefill), Some(decode)) = (alone.prefill_ms, alone.decode_ms) else {
        return Some(alone.duration_ms * tokens);
    };
    let requests = match (together.requests, alone.requests) {
        (Some(t), Some(a)) => ratio(u64::from(t), u64::from(a)),
        _ => None,
    };
    let tokens = match (together.tokens_after_first(), alone.tokens_after_first()) {
        (Some(t), Some(a)) if a > 0 => t as f64 / a as f64,
        _ => tokens,
    };
    let prompts = match (together.prompt_tokens, alone.prompt_tokens) {
        (Some(t), Some(a)) => ratio(t, a),
        _ => None,
    }
    .or(requests)?;
    let rest = (alone.duration_ms - prefill - decode).max(0.0);
    Some(prefill * prompts + decode * tokens + rest * requests.unwrap_or(1.0))
}

/// The equal-work speedup of a concurrent run: Σ over its agents of the time each would
/// have taken alone for the work it did in the run ([`equal_work_alone_ms`]) / the run's
/// wall. `alone[i]` and `together[i]` are the same agent. `None` when any agent cannot be
/// scaled or the wall is not positive.
pub fn equal_work_speedup(
    alone: &[AgentWork],
    together: &[AgentWork],
    wall_ms: f64,
) -> Option<f64> {
    if alone.len() != together.len() || alone.is_empty() || wall_ms <= 0.0 {
        return None;
    }
    let sum: Option<f64> = alone
        .iter()
        .zip(together)
        .map(|(a, t)| equal_work_alone_ms(a, t))
        .sum();
    Some(sum? / wall_ms)
}

/// Σ decode time / Σ tokens decoded after each request's first of `runs`, ms: the time per
/// output token; `None` when a run has no streamed timings or no such token was generated.
pub fn decode_per_output_token_ms(runs: &[AgentWork]) -> Option<f64> {
    let decode: Option<f64> = runs.iter().map(|w| w.decode_ms).sum();
    let tokens: Option<u64> = runs.iter().map(AgentWork::tokens_after_first).sum();
    let tokens = tokens?;
    (tokens > 0).then_some(decode? / tokens as f64)
}

/// Σ of the agents' throughputs alone (each agent's output tokens / its duration), tok/s:
/// what the agents would deliver together if running at once cost nothing.
pub fn isolated_sum_tok_s(alone: &[AgentWork]) -> Option<f64> {
    alone
        .iter()
        .map(|a| aggregate_tok_s(a.output_tokens, a.duration_ms))
        .sum()
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

    /// The work of one streamed agent run: `tokens` output tokens decoded in `decode` ms
    /// after `prefill` ms of TTFT, one request, nothing else.
    fn work(tokens: u64, prefill: f64, decode: f64) -> AgentWork {
        AgentWork {
            duration_ms: prefill + decode,
            output_tokens: tokens,
            prompt_tokens: Some(50),
            requests: Some(1),
            prefill_ms: Some(prefill),
            decode_ms: Some(decode),
        }
    }

    #[test]
    fn equal_work_compares_the_same_tokens_where_durations_do_not() {
        // A shared device decoding 100 tok/s in all: alone, A made 100 tokens in 1 s and B
        // 50 in 0.5 s (the first token of each with the TTFT); together they made 40 and
        // 160 tokens in 2 s, half speed each while both ran.
        let alone = [work(100, 10.0, 990.0), work(50, 10.0, 490.0)];
        let together = [work(40, 20.0, 780.0), work(160, 20.0, 1980.0)];
        let s = equal_work_speedup(&alone, &together, 2000.0).expect("speedup");
        assert!((s - 1.0).abs() < 1e-12, "{s}");
        assert_eq!(efficiency_pct(s, 2), Some(50.0));
        // The duration-based figure compares 1.5 s of other work with the 2 s wall.
        let t = true_speedup(&[1000.0, 500.0], 2000.0).expect("true");
        assert_eq!(efficiency_pct(t, 2), Some(37.5));
        assert_eq!(isolated_sum_tok_s(&alone), Some(200.0));
    }

    #[test]
    fn equal_work_scales_prefill_by_prompt_tokens_and_the_rest_by_requests() {
        let alone = AgentWork {
            duration_ms: 1000.0,
            output_tokens: 10,
            prompt_tokens: Some(100),
            requests: Some(2),
            prefill_ms: Some(200.0),
            decode_ms: Some(500.0),
        };
        let together = AgentWork {
            prompt_tokens: Some(300),
            output_tokens: 20,
            requests: Some(4),
            ..alone
        };
        // 200 × 3 + 500 × (20 − 4) / (10 − 2) + 300 × 2.
        assert_eq!(equal_work_alone_ms(&alone, &together), Some(2200.0));
        // Unknown prompt tokens: the prefill scales with the requests.
        let no_prompts = AgentWork {
            prompt_tokens: None,
            ..together
        };
        assert_eq!(equal_work_alone_ms(&alone, &no_prompts), Some(2000.0));
        // Not streamed: the whole duration scales with the output tokens.
        let plain = AgentWork {
            prefill_ms: None,
            decode_ms: None,
            ..alone
        };
        assert_eq!(equal_work_alone_ms(&plain, &together), Some(2000.0));
        // A baseline from before the split was recorded: no figure rather than another one.
        let old = AgentWork {
            requests: None,
            ..plain
        };
        assert_eq!(equal_work_alone_ms(&old, &together), None);
        // 500 ms over the 10 − 2 tokens after each request's first.
        assert_eq!(alone.ms_per_output_token(), Some(62.5));
        assert_eq!(plain.ms_per_output_token(), None);
    }

    #[test]
    fn equal_work_needs_tokens_alone_and_a_wall() {
        let none = work(0, 10.0, 0.0);
        assert_eq!(equal_work_alone_ms(&none, &work(5, 1.0, 1.0)), None);
        let a = [work(10, 0.0, 100.0)];
        assert_eq!(equal_work_speedup(&a, &a, 0.0), None);
        assert_eq!(equal_work_speedup(&a, &[], 100.0), None);
        assert_eq!(equal_work_speedup(&a, &a, 100.0), Some(1.0));
    }

    #[test]
    fn agent_work_sums_the_successful_measured_requests() {
        let ok = |ttft: Option<f64>, out: u64| RequestRecord {
            ttft_ms: ttft,
            e2e_ms: 100.0,
            prompt_tokens: Some(7),
            output_tokens: Some(out),
            ..RequestRecord::default()
        };
        let w = AgentWork::of(250.0, &[ok(Some(20.0), 5), ok(Some(30.0), 15)]);
        assert_eq!(w.output_tokens, 20);
        assert_eq!(w.prompt_tokens, Some(14));
        assert_eq!(w.requests, Some(2));
        assert_eq!(w.prefill_ms, Some(50.0));
        assert_eq!(w.decode_ms, Some(150.0));
        // One request without a TTFT: no split.
        let w = AgentWork::of(250.0, &[ok(Some(20.0), 5), ok(None, 15)]);
        assert_eq!((w.prefill_ms, w.decode_ms), (None, None));
    }
}
