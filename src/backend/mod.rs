//! LLM server backends: one request in, one [`RequestRecord`] out.
//!
//! The record carries the client's own timings (monotonic clock: TTFT to the first chunk with
//! non-empty text, every inter-chunk gap, end-to-end time), the server's timings (ns → ms),
//! token counts, `done_reason`, and a typed error. A backend never panics and never buffers a
//! whole stream: it parses line by line as bytes arrive.
//!
//! Two protocols: Ollama's native API ([`ollama::OllamaClient`], also used for `chimera
//! emulate`) and the OpenAI-compatible one of llama.cpp's `llama-server` and vLLM
//! ([`openai::OpenAiClient`]). [`Client`] is the one type the runner holds per endpoint URL.

mod lines;
pub(crate) mod manage;
pub(crate) mod ollama;
pub(crate) mod openai;
mod raw;
pub(crate) mod stream;
pub(crate) mod tokenize;

use std::time::Duration;

use serde::Serialize;

use crate::manifest::{Api, EndpointKind, Options};

pub use ollama::OllamaClient;
pub use openai::{
    OpenAiClient, TIMING_LLAMA_SERVER, TIMING_USAGE_ONLY, error_text, request_body_forced,
};
pub use stream::{ClientError, LineSplitter, Overflow};
pub use tokenize::{TOKENIZE_PATH, token_count, tokenize_body, tokenize_missing};

/// One LLM request, fully resolved.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    /// API (generate or chat).
    pub api: Api,
    /// Model tag, e.g. `gemma3:latest`.
    pub model: String,
    /// Prompt text (for chat: the single user message).
    pub prompt: String,
    /// Stream the response.
    pub stream: bool,
    /// Options; only the fields that are set are sent, and none at all when empty.
    pub options: Options,
    /// `keep_alive`, sent only when set.
    pub keep_alive: Option<String>,
    /// Per-request timeout: the request fails with [`ErrorKind::Timeout`] when no byte
    /// arrives for this long (a stall), and also when the whole request exceeds it.
    pub timeout: Duration,
    /// Largest response accepted, in bytes; beyond it the request fails with
    /// [`ErrorKind::TooLarge`].
    pub max_response_bytes: usize,
}

/// Distinct kinds of request failure, recorded as strings in tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection was refused or could not be made.
    ConnectionRefused,
    /// HTTP 404: unknown model (or route).
    ModelNotFound,
    /// HTTP 400: the server rejected the request.
    BadRequest,
    /// HTTP 500 (and other 5xx except 503).
    ServerError,
    /// HTTP 503: the server's queue is full.
    QueueFull,
    /// Another unexpected HTTP status.
    HttpStatus,
    /// An `{"error": ...}` line arrived after a 200 (mid-stream error).
    StreamError,
    /// The stream ended without a `done: true` chunk.
    Truncated,
    /// A line (or the body) was not the JSON expected.
    MalformedResponse,
    /// No byte arrived within the timeout (stall), or the request took longer than it.
    Timeout,
    /// The response exceeded the configured size cap.
    TooLarge,
    /// An agent program (`command` workload) failed: non-zero exit, bad records, no
    /// records, past its deadline, or a failure kind chimera does not know.
    AgentProgram,
}

impl ErrorKind {
    /// snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectionRefused => "connection_refused",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::ServerError => "server_error",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::StreamError => "stream_error",
            ErrorKind::Truncated => "truncated",
            ErrorKind::MalformedResponse => "malformed_response",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::AgentProgram => "agent_program",
        }
    }
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::ConnectionRefused,
        ErrorKind::ModelNotFound,
        ErrorKind::BadRequest,
        ErrorKind::ServerError,
        ErrorKind::QueueFull,
        ErrorKind::HttpStatus,
        ErrorKind::StreamError,
        ErrorKind::Truncated,
        ErrorKind::MalformedResponse,
        ErrorKind::Timeout,
        ErrorKind::TooLarge,
        ErrorKind::AgentProgram,
    ];

    /// The kind named `name` (its snake_case name).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A failed request: kind, HTTP status when there was one, and the server's or client's text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestError {
    /// Kind.
    pub kind: ErrorKind,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Message (the server's `error` text, or what the client saw).
    pub message: String,
}

/// Everything measured about one request. Times are milliseconds; server durations are
/// converted from nanoseconds. `None` means the value was not available.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestRecord {
    /// Wall-clock time the request was sent, ms since the Unix epoch (UTC).
    pub sent_at_unix_ms: f64,
    /// Client TTFT: send → first chunk with non-empty text.
    pub ttft_ms: Option<f64>,
    /// Client end-to-end time: send → end of the response.
    pub e2e_ms: f64,
    /// Gaps between consecutive chunks that carried text, ms (for ITL percentiles).
    pub itl_ms: Vec<f64>,
    /// Chunks received (streaming).
    pub chunks: u32,
    /// The generated text (kept for the agent workflow's next step; bounded by the size cap).
    pub text: String,
    /// Server `load_duration`, ms.
    pub load_ms: Option<f64>,
    /// Server `prompt_eval_count`.
    pub prompt_tokens: Option<u64>,
    /// Server `prompt_eval_duration`, ms.
    pub prompt_eval_ms: Option<f64>,
    /// Server `eval_count`.
    pub output_tokens: Option<u64>,
    /// Server `eval_duration`, ms.
    pub eval_ms: Option<f64>,
    /// Server `total_duration`, ms.
    pub total_ms: Option<f64>,
    /// Server `done_reason` (OpenAI-compatible servers: `finish_reason`).
    pub done_reason: Option<String>,
    /// Where the server-side numbers came from: `ollama` (the final chunk's durations and
    /// counts), `llama-server timings` (llama-server's `timings` object), `usage only` (an
    /// OpenAI-compatible server that gave token counts but no durations); `None` when the
    /// reply carried none (a failed request, or an import).
    pub timing_source: Option<String>,
    /// The failure, if the request failed.
    pub error: Option<RequestError>,
}

impl RequestRecord {
    /// True when the request succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Whether a server has the model a manifest asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelPresence {
    /// The server lists it.
    Present,
    /// The server lists its models and this one is not among them, and requests for it would
    /// fail (Ollama).
    Missing,
    /// An OpenAI-compatible server lists other names: it serves whatever model it was started
    /// with (llama-server answers any `model`), so this is worth a warning, not a failure.
    NotListed {
        /// What the server lists (`/v1/models` ids).
        served: Vec<String>,
    },
    /// The server lists nothing to check against.
    Unknown,
}

/// The client of one endpoint, whatever its protocol.
#[derive(Debug, Clone)]
pub enum Client {
    /// Ollama's native API (endpoints of kind `ollama` and `emulator`).
    Ollama(ollama::OllamaClient),
    /// The OpenAI-compatible API (endpoints of kind `openai`).
    OpenAi(openai::OpenAiClient),
}

impl Client {
    /// The client for an endpoint of `kind` at `base_url`.
    pub fn new(kind: EndpointKind, base_url: &str) -> Result<Client, ClientError> {
        Ok(match kind {
            EndpointKind::Openai => Client::OpenAi(openai::OpenAiClient::new(base_url)?),
            EndpointKind::Ollama | EndpointKind::Emulator => {
                Client::Ollama(ollama::OllamaClient::new(base_url)?)
            }
        })
    }

    /// True for the OpenAI-compatible protocol (no per-request load options, no unload, no
    /// digests).
    pub fn is_openai(&self) -> bool {
        matches!(self, Client::OpenAi(_))
    }

    /// The base URL (no trailing `/`).
    pub fn base_url(&self) -> &str {
        match self {
            Client::Ollama(c) => c.base_url(),
            Client::OpenAi(c) => c.base_url(),
        }
    }

    /// Sends one request and measures it. Never fails: errors are in the record.
    pub async fn send(&self, req: &LlmRequest) -> RequestRecord {
        self.send_forced(req, None).await
    }

    /// Sends one request that asks for exactly `force_output_tokens` tokens when set (a
    /// workload's `force_output_tokens`): an OpenAI-compatible server gets `max_tokens`,
    /// `ignore_eos` and `min_tokens` ([`openai::request_body_forced`]). Ollama cannot force an
    /// output length (manifest validation refuses the key for its endpoints): the request is
    /// sent as it is and a warning says so.
    pub async fn send_forced(
        &self,
        req: &LlmRequest,
        force_output_tokens: Option<u32>,
    ) -> RequestRecord {
        match self {
            Client::Ollama(c) => {
                if let Some(n) = force_output_tokens {
                    tracing::warn!(
                        "{}: an Ollama server cannot force {n} output tokens; the request is sent without",
                        c.base_url()
                    );
                }
                c.send(req).await
            }
            Client::OpenAi(c) => c.send_forced(req, force_output_tokens).await,
        }
    }

    /// How many tokens the server's own tokenizer makes of `text` for `base`'s model
    /// (`POST /tokenize`, see [`tokenize`]), within `base`'s timeout and size cap; `None` for
    /// a protocol without a tokenizer endpoint (Ollama's).
    pub async fn count_tokens(
        &self,
        base: &LlmRequest,
        text: &str,
    ) -> Option<Result<u64, RequestError>> {
        match self {
            Client::Ollama(_) => None,
            Client::OpenAi(c) => Some(c.count_tokens(base, text).await),
        }
    }

    /// The server's version (Ollama: `/api/version`; OpenAI-compatible: see
    /// [`openai::OpenAiClient::version`]).
    pub async fn version(&self) -> Result<String, RequestError> {
        match self {
            Client::Ollama(c) => c.version().await,
            Client::OpenAi(c) => c.version().await,
        }
    }

    /// The model's digest (Ollama `/api/tags`); always `None` on OpenAI-compatible servers,
    /// which expose none.
    pub async fn model_digest(&self, model: &str) -> Result<Option<String>, RequestError> {
        match self {
            Client::Ollama(c) => c.model_digest(model).await,
            Client::OpenAi(c) => c.model_digest(model).await,
        }
    }

    /// True when the server is `chimera emulate`, a test instrument.
    pub async fn is_chimera_emulator(&self) -> bool {
        match self {
            Client::Ollama(c) => c.is_chimera_emulator().await,
            Client::OpenAi(c) => c.is_chimera_emulator().await,
        }
    }

    /// Whether the server has `model`: Ollama by its `/api/tags` digest list; an
    /// OpenAI-compatible server by its `/v1/models` ids when it lists any.
    pub async fn model_presence(&self, model: &str) -> Result<ModelPresence, RequestError> {
        match self {
            Client::Ollama(c) => Ok(match c.model_digest(model).await? {
                Some(_) => ModelPresence::Present,
                None => ModelPresence::Missing,
            }),
            Client::OpenAi(c) => {
                let served = c.models().await?;
                Ok(if served.is_empty() {
                    ModelPresence::Unknown
                } else if openai::model_listed(&served, model) {
                    ModelPresence::Present
                } else {
                    ModelPresence::NotListed { served }
                })
            }
        }
    }

    /// What identifies the served model beyond its tag, for the cache fingerprint: the digest
    /// (Ollama) or the sorted `/v1/models` ids (OpenAI-compatible: the tag a request names
    /// does not choose the model there). `None` when unknown.
    pub async fn model_identity(&self, model: &str) -> Option<String> {
        match self {
            Client::Ollama(c) => c.model_digest(model).await.ok().flatten(),
            Client::OpenAi(c) => {
                let mut ids = c.models().await.ok()?;
                ids.sort();
                (!ids.is_empty()).then(|| format!("served={}", ids.join(",")))
            }
        }
    }
}
