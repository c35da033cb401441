//! One LLM request as the job resolves it, whatever the protocol.

use chimera::manifest::Options;
use serde_json::{Map, Value};

/// The API of a job (`api`): a completion or a one-message chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `generate`: Ollama `/api/generate`, OpenAI `/v1/completions`.
    Generate,
    /// `chat`: Ollama `/api/chat`, OpenAI `/v1/chat/completions`.
    Chat,
}

impl Api {
    /// The API a job names (`generate` or `chat`).
    pub(crate) fn parse(s: &str) -> Option<Api> {
        match s {
            "generate" => Some(Api::Generate),
            "chat" => Some(Api::Chat),
            _ => None,
        }
    }
}

/// One request: what the job fixes and the prompt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// The API.
    pub(crate) api: Api,
    /// The model name to send.
    pub(crate) model: String,
    /// The prompt (for chat: the one user message).
    pub(crate) prompt: String,
    /// Stream the reply.
    pub(crate) stream: bool,
    /// The options (only the set fields are sent).
    pub(crate) options: Options,
    /// Ollama `keep_alive`, sent when set.
    pub(crate) keep_alive: Option<String>,
    /// The job's `force_output_tokens`: exactly this many output tokens (OpenAI-compatible
    /// servers only: `max_tokens`, `ignore_eos`, `min_tokens`).
    pub(crate) force_output_tokens: Option<u32>,
}

impl Request {
    /// The fields every protocol sends: `model`, `prompt` (generate) or one user message in
    /// `messages` (chat), and `stream`.
    pub(crate) fn base_body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("model".into(), Value::String(self.model.clone()));
        match self.api {
            Api::Generate => {
                m.insert("prompt".into(), Value::String(self.prompt.clone()));
            }
            Api::Chat => {
                m.insert(
                    "messages".into(),
                    serde_json::json!([{"role": "user", "content": self.prompt}]),
                );
            }
        }
        m.insert("stream".into(), Value::Bool(self.stream));
        m
    }
}
