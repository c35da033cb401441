//! `chimera emulate`: a deterministic Ollama-protocol **test instrument** (never an LLM).
//!
//! It speaks Ollama's native HTTP API (hand-written HTTP/1.1 on Tokio, keep-alive included)
//! with a timing model driven by a [`Profile`], emits filler words, injects faults on demand,
//! and records the ground truth of every generate/chat request in a [`TruthLog`] so that a
//! client's measurements (TTFT, inter-chunk gaps, token counts) can be checked against it.
//!
//! # Routes
//! `GET|HEAD /` → `Ollama is running`; `GET /api/version`; `GET /api/tags`; `GET /api/ps` (the
//! model loaded on *this* listener); `POST /api/show`; `POST /api/generate`; `POST /api/chat`;
//! `POST /api/pull` (streamed progress ending in `{"status":"success"}`; see `models[].absent`).
//! Unknown route → 404 `404 page not found`, wrong method → 405 `405 method not allowed`.
//! The same listeners also speak the OpenAI-compatible protocol of llama.cpp's `llama-server`
//! (`POST /v1/completions`, `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`,
//! `GET /props`, `POST /tokenize`): SSE streams with the same token schedule, `usage`,
//! `timings`, and a tokenizer whose count is the one a completion reports; see `openai.rs`.
//! `GET /metrics` publishes each listener's own Prometheus counters (requests completed, tokens
//! generated, prompt tokens, requests in flight; see `metrics.rs`), as llama-server's
//! `--metrics` does; they count the emulator's bookkeeping, not an LLM's.
//! Request bodies need `Content-Length` (chunked request bodies → 400).
//!
//! # Profile (YAML, unknown keys rejected; see `example-profile.yaml` next to this file)
//! | key | default | meaning |
//! |---|---|---|
//! | `seed` | 0 | seeds token words and jitter |
//! | `version` | `0.0.0-chimera-emulator` | `/api/version` |
//! | `shared_gpu` | true | all listeners share one decode budget: the per-token rate is `output_tok_s / active streams` (recomputed per token); false = every stream at full speed |
//! | `num_parallel` | 0 | slots per listener (FIFO wait, shows only in `total_duration`); 0 = unlimited |
//! | `openai_timings` | true | OpenAI routes send llama-server's `timings` object; false = `usage` only (as vLLM) |
//! | `openai_tokenize` | true | `POST /tokenize` answers llama-server's `{"tokens": [ids]}`, as many as the prompt-token count of the same text; false = 404 (a server without one) |
//! | `models[].name` | (required) | e.g. `gemma3:270m`; a name without tag means `:latest`; case-insensitive |
//! | `models[].digest` | sha256(name) | 64 hex digits |
//! | `models[].size` | 1e9 | bytes, `/api/tags`, `/api/ps` |
//! | `models[].context_length` | 4096 | `/api/ps` when no `num_ctx` was sent |
//! | `models[].load_ms` | 500 | cold load |
//! | `models[].prompt_tok_s` | 2000 | prompt processing rate |
//! | `models[].output_tok_s` | 100 | decode rate of one stream alone |
//! | `models[].output_tokens` | 64 | tokens per reply (`options.num_predict` caps it → `done_reason: length`) |
//! | `models[].output_tokens_range` | none | `[min, max]`: each generate/chat request's natural length is drawn uniformly from `min..=max` instead, from the seed, the model and the request's number (over all listeners, load-only requests included); the request's cap still applies; the ground truth's `output_tokens` holds what was generated |
//! | `models[].jitter_pct` | 0 | ± percent on each per-token delay, seeded |
//! | `models[].fault` | none | `{kind: ...}`, see [`Fault`] |
//! | `models[].absent` | false | pullable but absent at start: not in `/api/tags`, 404 on generate/chat/show until `POST /api/pull` fetched it on that listener |
//! | `models[].pull_ms` | 200 | how long an emulated pull takes |
//! | `models[].fault_first` | none | inject `fault` only into the first N generate/chat requests for this model (load-only ones included, counted over all listeners), then serve normally: a transient fault; absent = every request |
//! | `models[].redigest_after` | none | after N generate/chat requests for this model (load-only ones included, counted over all listeners), `/api/tags`, `/api/show` (`digest`, an emulator extra) and `/api/ps` report another digest, SHA-256 of `<digest>+redigest` ([`redigested`]): the model re-pulled mid-campaign; `0` = from the start |
//! | `models[].fault_rate` | none | inject `fault` into this fraction (0–1) of the generate/chat requests for this model, drawn per request from the seed, the model and the request's number (over all listeners): an intermittent fault; excludes `fault_first` |
//!
//! # Timing model (deterministic given the seed, the model, the prompt and `options.seed`)
//! 1. **Load.** Each listener holds one loaded model. A request loads (sleeping `load_ms`) when
//!    nothing is loaded, another model is, `num_ctx` differs from the loaded one (absent counts
//!    as a value), or `num_gpu` differs (an absent or negative request `num_gpu` matches
//!    anything) — Ollama's reload rule. Loads on a listener are serialised; a request that
//!    waited for another's load finds the model warm. `load_duration` = request received → model
//!    ready (a warm hit reports the few microseconds that took). Models are never unloaded on a
//!    timer; an empty prompt with `keep_alive: 0` unloads. Simplification: a reload does not
//!    wait for streams still running on the old model (Ollama would).
//! 2. **Slot** (only with `num_parallel`), then the stream counts as active on the GPU.
//! 3. **Prompt.** prompt tokens = round(whitespace-separated words × 1.3), at least 1 for a
//!    non-empty prompt (chat: the message contents joined by newlines); sleeps
//!    `prompt_tokens / (prompt_tok_s / share)`.
//! 4. **Decode.** Token *i* is due `share / output_tok_s × (1 ± jitter)` after token *i−1*'s
//!    deadline (absolute deadlines: no drift); `share` = active streams in the process when
//!    `shared_gpu`, else 1. The first token follows prefill by one token delay. Texts are words
//!    of a 32-word lorem vocabulary, the first without a leading space.
//!    How many: the model's natural length (`output_tokens`, or the seeded draw from
//!    `output_tokens_range`), raised to the request's `min_tokens` (OpenAI routes), cut at its
//!    cap (`num_predict`, `max_tokens`, `n_predict`); with `ignore_eos: true` (OpenAI routes)
//!    exactly the cap, or the context left after the prompt without one. The Ollama routes
//!    ignore `ignore_eos` and `min_tokens`, as Ollama does: it cannot force a length.
//! 5. **Final chunk.** `done_reason` `stop` (or `length` when the cap ended the reply),
//!    the six metrics in nanoseconds measured from the real sleeps (`eval_duration` = decode
//!    start → last token written), `context` on generate. `stream: false` → one object with
//!    the whole text after the same delays.
//!
//! An empty prompt (generate) or no messages (chat) loads only and answers
//! `done_reason: "load"` without metrics (`"unload"` with `keep_alive: 0`), as Ollama does.
//!
//! # Ground truth
//! Every generate/chat request appends one [`TruthRecord`] when it ends. Offsets are
//! microseconds from "request fully arrived" (the kernel's receive time of its last bytes
//! where the kernel gives one, else when it was read: `arrival.rs`) to right after the write
//! of that chunk returned. The reported `load_duration` and `total_duration` count from the
//! same instant.

mod arrival;
mod exchange;
pub(crate) mod http;
mod metrics;
mod openai;
mod profile;
mod pull;
mod server;
mod state;
mod truth;
mod util;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use profile::{Fault, ModelProfile, Profile, default_digest, redigested};
pub use truth::{TruthLog, TruthRecord};
pub use util::prompt_tokens;

/// The printed warning: what this program is and is not.
pub const BANNER: &str = "chimera emulate: this is a TEST INSTRUMENT that speaks the Ollama protocol with a \
     deterministic timing model and emits filler words; it is not an LLM and its numbers \
     are not measurements of any model";

/// A running emulator. Dropping it stops the listeners too (their tasks end at the next poll).
#[derive(Debug)]
pub struct EmulatorHandle {
    /// The bound addresses, in the order given (port 0 resolved).
    pub addrs: Vec<SocketAddr>,
    /// Ground truth of the requests served.
    pub truth: TruthLog,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// Stops accepting, aborts open connections and waits for the listener tasks to end.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Binds every address (port 0 picks a free port) and serves `profile` on all of them until
/// the handle is shut down or dropped. Must be called inside a Tokio runtime.
pub async fn spawn(profile: Profile, listen: &[SocketAddr]) -> std::io::Result<EmulatorHandle> {
    profile
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // Receive stamps on before the first request (see `util::stamp::keep_on`).
    crate::util::stamp::keep_on();
    let mut listeners = Vec::with_capacity(listen.len());
    for addr in listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        listeners.push(l);
    }
    let num_parallel = profile.num_parallel;
    let truth = TruthLog::default();
    let shared = Arc::new(state::Shared {
        requests: profile.models.iter().map(|_| AtomicU32::new(0)).collect(),
        profile,
        truth: truth.clone(),
        active: AtomicUsize::new(0),
        metrics: metrics::Metrics::default(),
    });
    let (stop, _) = watch::channel(false);
    let mut addrs = Vec::with_capacity(listeners.len());
    let mut tasks = Vec::with_capacity(listeners.len());
    for l in listeners {
        let addr = l.local_addr()?;
        addrs.push(addr);
        let ls = Arc::new(state::ListenerState::new(addr, num_parallel));
        tasks.push(tokio::spawn(server::serve_listener(
            l,
            shared.clone(),
            ls,
            stop.subscribe(),
        )));
    }
    Ok(EmulatorHandle {
        addrs,
        truth,
        stop,
        tasks,
    })
}
