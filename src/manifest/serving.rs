//! The manifest language of serving loads: the `load` task, its arrival process and length
//! distribution, the report's SLOs, and the settings the `server` axis gives a managed
//! server. Serde types like those of `spec`, every struct denying unknown keys.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most requests one load may send (a timed load's rate × duration included): every
/// request's record is kept in memory until the load ends.
pub const MAX_LOAD_REQUESTS: usize = 10_000_000;

/// The settings of a `load` task (the `concurrency`, `rate`, `input_tokens` and
/// `output_tokens` axes give each configuration its level and lengths).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadTask {
    /// Measured requests per run (after the warm-up). Give this or `duration_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u32>,
    /// Or: how long each run's measured load sends, s (after the warm-up): closed-loop users
    /// send no new request after it, an open-loop schedule ends there; the requests in flight
    /// then run to their end and count. Give this or `requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Requests sent first in every run and left out of the metrics. Default: 0.
    #[serde(default)]
    pub warmup_requests: u32,
    /// Open-loop arrival process: `poisson` (seeded exponential gaps), `constant` spacing,
    /// or `phases` (the rate changes phase by phase: bursts). Default: `poisson`.
    #[serde(default)]
    pub arrivals: ArrivalProcess,
    /// The phases of `arrivals: phases`, repeated until the load ends: each lasts
    /// `duration_s` at `rate_factor` × the configuration's `rate` (Poisson gaps), e.g. a
    /// burst of 3 × the rate for 2 s every 10 s. Only with `arrivals: phases`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseSpec>,
    /// Seed of drawn lengths (every cell asks for the same sequence of lengths) and of the
    /// Poisson gaps (mixed with each run's own nonce, so that each repetition has its own
    /// arrival times). Default: 0.
    #[serde(default)]
    pub seed: u64,
    /// Prompt length in the server's own tokens (an `input_tokens` axis overrides it).
    /// Absent: a short fixed prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u32>,
    /// Output length in tokens, forced on OpenAI-compatible servers and capped with
    /// `num_predict` on Ollama (an `output_tokens` axis overrides it). Absent: the model
    /// decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u32>,
    /// How each request's lengths vary around the targets. Default: `fixed`.
    #[serde(default, skip_serializing_if = "LengthDistribution::is_fixed")]
    pub lengths: LengthDistribution,
}

/// The arrival process of an open-loop load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalProcess {
    /// Exponential gaps (a Poisson process) from the task's seed.
    #[default]
    Poisson,
    /// Equal gaps of 1 / rate.
    Constant,
    /// The task's `phases`, one after the other, repeated: Poisson gaps at each phase's
    /// rate.
    Phases,
}

/// One phase of an `arrivals: phases` load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// How long the phase lasts, s.
    pub duration_s: f64,
    /// Its rate as a multiple of the configuration's `rate` (0: a pause).
    pub rate_factor: f64,
}

/// How a load's per-request lengths are drawn around their targets (seeded, so a run's
/// lengths are reproducible).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LengthDistribution {
    /// Every request asks for exactly the target.
    #[default]
    Fixed,
    /// Uniform in `target × [1 − spread, 1 + spread]`, rounded (at least 1).
    Uniform {
        /// Half-width as a fraction of the target, in [0, 1).
        spread: f64,
    },
    /// Normal with mean `target` and standard deviation `target × cv`, rounded and clamped
    /// to [1, 2 × target].
    Normal {
        /// Coefficient of variation, in [0, 1).
        cv: f64,
    },
}

impl LengthDistribution {
    /// True for `fixed`.
    pub fn is_fixed(&self) -> bool {
        *self == LengthDistribution::Fixed
    }
}

/// A service-level objective of a serving load: the metric's `percentile` over a run's
/// requests at most `max_ms` (the SLO frontier), and each request's own value at most
/// `max_ms` (goodput). Analysis only: changing it never changes a cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// The metric: `ttft_ms`, `tpot_ms`, `itl_ms` or `e2e_ms`.
    pub metric: SloMetricName,
    /// The bound, ms.
    pub max_ms: f64,
    /// The percentile the frontier checks. Default: 99.
    #[serde(default = "default_slo_percentile")]
    pub percentile: f64,
}

fn default_slo_percentile() -> f64 {
    99.0
}

/// A metric an SLO bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SloMetricName {
    /// Time to first token.
    TtftMs,
    /// Time per output token after the first.
    TpotMs,
    /// Inter-token latency (every gap; a request's own value is its largest gap).
    ItlMs,
    /// End-to-end latency.
    E2eMs,
}

/// The settings a configuration gives a managed server (the `server` axis): name → value,
/// substituted for `{server.NAME}` in the managed endpoint's `command` and `env`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServerFlags(pub BTreeMap<String, String>);

/// A map of names to scalars (a value is kept as its text), as the deserializer accepts.
impl JsonSchema for ServerFlags {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ServerFlags".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Managed-server settings: name → value (a string, number or boolean, substituted as its text for `{server.NAME}`).",
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]}
        })
    }
}

impl<'de> Deserialize<'de> for ServerFlags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A scalar (string, number or boolean), kept as its text.
        struct Text(String);
        impl<'de> Deserialize<'de> for Text {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = Text;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a string, number or boolean")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                        Ok(Text(v.to_owned()))
                    }
                    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let m = BTreeMap::<String, Text>::deserialize(d)?;
        Ok(ServerFlags(m.into_iter().map(|(k, v)| (k, v.0)).collect()))
    }
}

impl ServerFlags {
    /// True without settings.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for ServerFlags {
    /// `name=value` pairs joined by `+` (`parallel=4+batch_size=256`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (k, v) in &self.0 {
            if !first {
                f.write_str("+")?;
            }
            first = false;
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}
