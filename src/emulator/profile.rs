//! The emulator's profile: models, their timing and their faults (YAML, `deny_unknown_fields`).

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::util::rng::{SplitMix64, fnv1a};

/// Everything the emulator serves. Every key has a default; see the module documentation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Seed of every pseudo-random choice (token words, jitter). Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Served by `/api/version`. Default `0.0.0-chimera-emulator`.
    #[serde(default = "default_version")]
    pub version: String,
    /// All listeners share one decode budget (two concurrent streams run at half speed each).
    /// Default true. False: every stream runs at its model's full speed.
    #[serde(default = "default_true")]
    pub shared_gpu: bool,
    /// Requests served at once per listener (Ollama's `OLLAMA_NUM_PARALLEL`); later ones wait
    /// FIFO for a slot, and the wait shows only in `total_duration`. Default 0 = unlimited.
    #[serde(default)]
    pub num_parallel: u32,
    /// OpenAI-compatible routes: send llama-server's `timings` object in the last chunk (and
    /// in non-streamed replies). Default true. False: token counts (`usage`) only, as vLLM.
    #[serde(default = "default_true")]
    pub openai_timings: bool,
    /// OpenAI-compatible routes: answer llama-server's `POST /tokenize`. Default true. False:
    /// 404, as a server without a tokenizer endpoint.
    #[serde(default = "default_true")]
    pub openai_tokenize: bool,
    /// The models the emulator knows; any other name is answered with 404.
    #[serde(default = "default_models")]
    pub models: Vec<ModelProfile>,
}

/// One servable model and its timing.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    /// Name as requested, e.g. `gemma3:270m` (exact match; `x` also matches `x:latest`).
    pub name: String,
    /// 64 hex digits. Default: SHA-256 of the name.
    #[serde(default)]
    pub digest: String,
    /// Size in bytes reported by `/api/tags` and `/api/ps`. Default 1 GB.
    #[serde(default = "default_size")]
    pub size: u64,
    /// Trained context length: `/api/ps` `context_length` when no `num_ctx` was sent. Default 4096.
    #[serde(default = "default_context")]
    pub context_length: u32,
    /// Cold load time, ms. Default 500.
    #[serde(default = "default_load_ms")]
    pub load_ms: f64,
    /// Prompt processing rate, tokens/s. Default 2000.
    #[serde(default = "default_prompt_tok_s")]
    pub prompt_tok_s: f64,
    /// Decode rate of one stream alone, tokens/s. Default 100.
    #[serde(default = "default_output_tok_s")]
    pub output_tok_s: f64,
    /// Tokens generated per request (capped by `options.num_predict`). Default 64.
    #[serde(default = "default_output_tokens")]
    pub output_tokens: u32,
    /// `[min, max]`: instead of `output_tokens`, each generate/chat request draws its natural
    /// length uniformly from `min..=max` (inclusive) with the seeded generator; the draw
    /// depends only on `seed`, the model and the request's number (counted over all
    /// listeners, load-only requests included, as for `fault_rate`). The request's cap
    /// (`num_predict`, `max_tokens`) still applies. Absent: every reply is `output_tokens`
    /// long.
    #[serde(default)]
    pub output_tokens_range: Option<[u32; 2]>,
    /// ± jitter on every per-token delay, percent (seeded, deterministic). Default 0.
    #[serde(default)]
    pub jitter_pct: f64,
    /// A fault injected into every generate/chat request for this model (or only the first
    /// `fault_first`). Default none.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Inject `fault` only into the first N generate/chat requests for this model (load-only
    /// ones included, counted over all listeners of the emulator); later requests succeed.
    /// Absent: every request (a permanent fault). `0` disables the fault.
    #[serde(default)]
    pub fault_first: Option<u32>,
    /// Inject `fault` into this fraction (0–1) of the generate/chat requests for this model,
    /// each drawn from the seeded generator (the n-th request of the model faults or not
    /// depending only on `seed`, the model and n, counted over all listeners): an
    /// intermittent fault. Absent: every request (or the first `fault_first`).
    #[serde(default)]
    pub fault_rate: Option<f64>,
    /// Pullable but absent at start: `/api/tags` does not list it and generate/chat/show
    /// answer 404 until `POST /api/pull` has fetched it, per listener (each listener stands for
    /// an Ollama instance with its own model store). Default false.
    #[serde(default)]
    pub absent: bool,
    /// How long an emulated `/api/pull` of this model takes, ms. Default 200.
    #[serde(default = "default_pull_ms")]
    pub pull_ms: f64,
    /// After this many generate/chat requests for this model (counted over all listeners,
    /// load-only ones included, as for `fault_first`), `/api/tags`, `/api/show` and `/api/ps`
    /// report another digest ([`redigested`] of `digest`): the model was pulled again
    /// mid-campaign. Absent: the digest never changes. `0`: changed from the start.
    #[serde(default)]
    pub redigest_after: Option<u32>,
}

/// A fault injected into every generate/chat request of a model.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Read the request, then close the connection without any response.
    RefuseAfterAccept,
    /// Answer at once with this status and `{"error": message}` (before any chunk).
    Status {
        /// HTTP status code, e.g. 400, 404, 500, 503.
        code: u16,
        /// The `error` text.
        message: String,
    },
    /// Status 200, stream `tokens` chunks, then one `{"error": message}` line and close (no
    /// `done` chunk). Non-streamed: 500 with the error after the same time.
    ErrorAfter {
        /// Chunks before the error.
        tokens: u32,
        /// The `error` text.
        #[serde(default = "default_error_message")]
        message: String,
    },
    /// Stream `tokens` chunks, then end the body without a `done: true` chunk and close.
    /// Non-streamed: half of the JSON object, then close.
    TruncateAfter {
        /// Chunks before the end.
        tokens: u32,
        /// Close the TCP connection without ending the chunked body (a crashed server)
        /// instead of ending the HTTP body cleanly. Default false.
        #[serde(default)]
        abrupt: bool,
    },
    /// Stream `tokens` chunks, then one line that is not JSON, then close.
    /// Non-streamed: a body that is not JSON.
    MalformedAfter {
        /// Chunks before the bad line.
        tokens: u32,
    },
    /// After `tokens` chunks send nothing for at least `ms` milliseconds (measured from the
    /// write of chunk `tokens`), then continue normally.
    StallAfter {
        /// Chunks before the pause.
        tokens: u32,
        /// Length of the pause, ms.
        ms: u64,
    },
    /// Pad the token texts so that together they hold at least `bytes` bytes.
    Huge {
        /// Minimum total text size.
        bytes: u64,
    },
}

impl Fault {
    /// snake_case name of the kind (as in the YAML and in truth records).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::RefuseAfterAccept => "refuse_after_accept",
            Fault::Status { .. } => "status",
            Fault::ErrorAfter { .. } => "error_after",
            Fault::TruncateAfter { .. } => "truncate_after",
            Fault::MalformedAfter { .. } => "malformed_after",
            Fault::StallAfter { .. } => "stall_after",
            Fault::Huge { .. } => "huge",
        }
    }
}

fn default_version() -> String {
    "0.0.0-chimera-emulator".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_models() -> Vec<ModelProfile> {
    vec![ModelProfile::new("gemma3:270m")]
}
fn default_size() -> u64 {
    1_000_000_000
}
fn default_context() -> u32 {
    4096
}
fn default_load_ms() -> f64 {
    500.0
}
fn default_prompt_tok_s() -> f64 {
    2000.0
}
fn default_output_tok_s() -> f64 {
    100.0
}
fn default_output_tokens() -> u32 {
    64
}
fn default_pull_ms() -> f64 {
    200.0
}
fn default_error_message() -> String {
    "an error was encountered while running the model: emulated fault".to_owned()
}

/// The digest a model reports after `redigest_after` requests: SHA-256 of its digest and the
/// suffix `+redigest`, hex (another 64-hex digest, the same on every run).
pub fn redigested(digest: &str) -> String {
    default_digest(&format!("{digest}+redigest"))
}

/// SHA-256 of the model name, hex: the default digest.
pub fn default_digest(name: &str) -> String {
    let hash = Sha256::digest(name.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

impl ModelProfile {
    /// A model with every default (digest derived from the name).
    pub fn new(name: &str) -> ModelProfile {
        ModelProfile {
            name: name.to_owned(),
            digest: default_digest(name),
            size: default_size(),
            context_length: default_context(),
            load_ms: default_load_ms(),
            prompt_tok_s: default_prompt_tok_s(),
            output_tok_s: default_output_tok_s(),
            output_tokens: default_output_tokens(),
            output_tokens_range: None,
            jitter_pct: 0.0,
            fault: None,
            fault_first: None,
            fault_rate: None,
            absent: false,
            pull_ms: default_pull_ms(),
            redigest_after: None,
        }
    }

    /// The natural length of the `nth` generate/chat request of this model (0-based, over all
    /// listeners) under profile seed `seed`: `output_tokens`, or the seeded draw from
    /// `output_tokens_range`, a pure function of `seed`, the name and `nth`.
    pub fn natural_tokens(&self, seed: u64, nth: u32) -> u32 {
        let Some([lo, hi]) = self.output_tokens_range else {
            return self.output_tokens;
        };
        let mut rng = SplitMix64::new(
            seed ^ fnv1a(&self.name).rotate_left(23)
                ^ u64::from(nth).wrapping_mul(0xE703_7ED1_A0B4_28DB),
        );
        let span = u64::from(hi.saturating_sub(lo)) + 1;
        lo + u32::try_from(rng.below(span)).unwrap_or(0)
    }

    /// The digest `/api/tags`, `/api/show` and `/api/ps` report once `requests` generate/chat
    /// requests of this model have been counted (see `redigest_after`).
    pub fn digest_after(&self, requests: u32) -> String {
        match self.redigest_after {
            Some(n) if requests >= n => redigested(&self.digest),
            _ => self.digest.clone(),
        }
    }

    /// True when a requested name refers to this model (`x` = `x:latest`, case-insensitive).
    pub fn matches(&self, requested: &str) -> bool {
        fn norm(s: &str) -> String {
            let s = s.to_ascii_lowercase();
            if s.rsplit('/').next().is_some_and(|last| last.contains(':')) {
                s
            } else {
                format!("{s}:latest")
            }
        }
        !requested.is_empty() && norm(&self.name) == norm(requested)
    }
}

impl Default for Profile {
    fn default() -> Profile {
        Profile {
            seed: 0,
            version: default_version(),
            shared_gpu: true,
            num_parallel: 0,
            openai_timings: true,
            openai_tokenize: true,
            models: default_models(),
        }
    }
}

impl Profile {
    /// Parses and validates a YAML profile.
    pub fn from_yaml(text: &str) -> Result<Profile, String> {
        let mut p: Profile = if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            Profile::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| e.to_string())?
        };
        for m in &mut p.models {
            if m.digest.is_empty() {
                m.digest = default_digest(&m.name);
            }
        }
        p.validate()?;
        Ok(p)
    }

    /// Reads, parses and validates a YAML profile file.
    pub fn load(path: &Path) -> Result<Profile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read profile {}: {e}", path.display()))?;
        Profile::from_yaml(&text).map_err(|e| format!("profile {}: {e}", path.display()))
    }

    /// Checks the values serde cannot: rates, digests, duplicate names.
    pub fn validate(&self) -> Result<(), String> {
        if self.models.is_empty() {
            return Err("`models` is empty: the emulator needs at least one model".to_owned());
        }
        for (i, m) in self.models.iter().enumerate() {
            let at = format!("models[{i}] ({})", m.name);
            if m.name.trim().is_empty() {
                return Err(format!("models[{i}]: `name` is empty"));
            }
            if self.models[..i].iter().any(|o| o.matches(&m.name)) {
                return Err(format!("{at}: duplicate model name"));
            }
            if m.digest.len() != 64 || !m.digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("{at}: `digest` must be 64 hex digits"));
            }
            for (key, v) in [
                ("prompt_tok_s", m.prompt_tok_s),
                ("output_tok_s", m.output_tok_s),
            ] {
                if !(v.is_finite() && v > 0.0) {
                    return Err(format!("{at}: `{key}` must be a positive number, got {v}"));
                }
            }
            if !(m.load_ms.is_finite() && m.load_ms >= 0.0) {
                return Err(format!("{at}: `load_ms` must be >= 0"));
            }
            if !(m.pull_ms.is_finite() && m.pull_ms >= 0.0) {
                return Err(format!("{at}: `pull_ms` must be >= 0"));
            }
            if !(m.jitter_pct.is_finite() && (0.0..100.0).contains(&m.jitter_pct)) {
                return Err(format!("{at}: `jitter_pct` must be in [0, 100)"));
            }
            if let Some([lo, hi]) = m.output_tokens_range
                && lo > hi
            {
                return Err(format!(
                    "{at}: `output_tokens_range` [{lo}, {hi}] must be [min, max] with min <= max"
                ));
            }
            if m.fault_first.is_some() && m.fault.is_none() {
                return Err(format!("{at}: `fault_first` needs a `fault`"));
            }
            if let Some(r) = m.fault_rate {
                if m.fault.is_none() {
                    return Err(format!("{at}: `fault_rate` needs a `fault`"));
                }
                if m.fault_first.is_some() {
                    return Err(format!(
                        "{at}: `fault_rate` and `fault_first` exclude each other"
                    ));
                }
                if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
                    return Err(format!("{at}: `fault_rate` must be in [0, 1], got {r}"));
                }
            }
            if let Some(Fault::Status { code, .. }) = &m.fault
                && !(100..=599).contains(code)
            {
                return Err(format!(
                    "{at}: fault status code {code} is not an HTTP status"
                ));
            }
        }
        Ok(())
    }

    /// The model a request names, if the profile has it.
    pub fn model(&self, requested: &str) -> Option<&ModelProfile> {
        self.models.iter().find(|m| m.matches(requested))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_example_profile_parse() {
        let p = Profile::from_yaml("").expect("empty");
        assert_eq!(p, Profile::default());
        assert_eq!(p.models[0].name, "gemma3:270m");
        assert_eq!(p.models[0].digest.len(), 64);
        let ex = Profile::from_yaml(include_str!("example-profile.yaml")).expect("example");
        assert!(ex.models.len() >= 2);
        assert!(ex.models.iter().any(|m| m.fault.is_some()));
    }

    #[test]
    fn faults_parse_and_unknown_keys_are_rejected() {
        let p = Profile::from_yaml(
            "models:\n  - name: a\n    fault: {kind: status, code: 503, message: busy}\n  - name: b\n    fault: {kind: stall_after, tokens: 2, ms: 50}\n  - name: c\n    fault: {kind: refuse_after_accept}\n",
        )
        .expect("parse");
        assert_eq!(
            p.models[0].fault,
            Some(Fault::Status {
                code: 503,
                message: "busy".into()
            })
        );
        assert_eq!(p.models[2].fault, Some(Fault::RefuseAfterAccept));
        assert!(p.model("a:latest").is_some());
        assert!(p.model("A").is_some());
        assert!(p.model("b:7b").is_none());
        assert!(Profile::from_yaml("sead: 1\n").is_err());
        assert!(Profile::from_yaml("models:\n  - name: a\n    spead: 1\n").is_err());
        assert!(Profile::from_yaml("models:\n  - name: a\n    fault: {kind: nope}\n").is_err());
        assert!(Profile::from_yaml("models:\n  - name: a\n    output_tok_s: 0\n").is_err());
        assert!(Profile::from_yaml("models:\n  - name: a\n  - name: a\n").is_err());
        let t = Profile::from_yaml(
            "models:\n  - name: a\n    fault: {kind: refuse_after_accept}\n    fault_first: 2\n",
        )
        .expect("fault_first");
        assert_eq!(t.models[0].fault_first, Some(2));
        assert!(Profile::from_yaml("models:\n  - name: a\n    fault_first: 1\n").is_err());
        let r = Profile::from_yaml(
            "models:\n  - name: a\n    fault: {kind: refuse_after_accept}\n    fault_rate: 0.05\n",
        )
        .expect("fault_rate");
        assert_eq!(r.models[0].fault_rate, Some(0.05));
        for bad in [
            "models:\n  - name: a\n    fault_rate: 0.5\n",
            "models:\n  - name: a\n    fault: {kind: refuse_after_accept}\n    fault_rate: 1.5\n",
            "models:\n  - name: a\n    fault: {kind: refuse_after_accept}\n    fault_rate: 0.5\n    fault_first: 1\n",
        ] {
            assert!(Profile::from_yaml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_length_draw_is_seeded_and_in_range() {
        let p = Profile::from_yaml(
            "models:\n  - name: a\n    output_tokens_range: [3, 9]\n  - name: b\n    output_tokens_range: [7, 7]\n  - name: c\n",
        )
        .expect("range");
        let (a, b, c) = (&p.models[0], &p.models[1], &p.models[2]);
        let draws: Vec<u32> = (0..200).map(|n| a.natural_tokens(1, n)).collect();
        assert!(draws.iter().all(|n| (3..=9).contains(n)), "{draws:?}");
        for v in 3..=9 {
            assert!(draws.contains(&v), "{v} is drawn: {draws:?}");
        }
        let again: Vec<u32> = (0..200).map(|n| a.natural_tokens(1, n)).collect();
        assert_eq!(draws, again, "a pure function of seed, model and number");
        let reseeded: Vec<u32> = (0..200).map(|n| a.natural_tokens(2, n)).collect();
        assert_ne!(draws, reseeded);
        assert!((0..50).all(|n| b.natural_tokens(1, n) == 7));
        assert!(
            (0..50).all(|n| c.natural_tokens(1, n) == 64),
            "no range: output_tokens"
        );
        assert!(
            Profile::from_yaml("models:\n  - name: a\n    output_tokens_range: [9, 3]\n").is_err()
        );
        assert!(
            Profile::from_yaml("models:\n  - name: a\n    output_tokens_range: [3]\n").is_err()
        );
    }

    #[test]
    fn the_digest_changes_after_redigest_after_requests() {
        let p = Profile::from_yaml("models:\n  - name: a\n    redigest_after: 2\n  - name: b\n")
            .expect("redigest");
        let (a, b) = (&p.models[0], &p.models[1]);
        assert_eq!(a.digest_after(0), a.digest);
        assert_eq!(a.digest_after(1), a.digest);
        assert_eq!(a.digest_after(2), redigested(&a.digest));
        assert_ne!(redigested(&a.digest), a.digest);
        assert_eq!(redigested(&a.digest).len(), 64);
        assert_eq!(b.digest_after(1000), b.digest);
    }
}
