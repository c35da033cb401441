//! OpenAI-compatible API client (llama.cpp `llama-server`, vLLM): `/v1/completions`,
//! `/v1/chat/completions`, `/v1/models`, and `/props` / `/version` for provenance.
//!
//! Same shape and guarantees as [`super::ollama::OllamaClient`]: one [`OpenAiClient::send`] is
//! one request and one [`RequestRecord`]; it never panics and never returns an error; timing,
//! deadline, stall detection and size cap are the shared ones of the `stream` module.
//!
//! # Request
//! `POST /v1/completions` (`Api::Generate`: `prompt`) or `POST /v1/chat/completions`
//! (`Api::Chat`: one user message), with `model`, `stream` and, when streamed,
//! `"stream_options": {"include_usage": true}`. Options: `num_predict` → `max_tokens` (a
//! negative value, Ollama's "unlimited", is not sent), `temperature`, `top_p`, `top_k`,
//! `repeat_penalty`, `seed` under their own names (`top_k` and `repeat_penalty` are
//! llama-server extensions; vLLM accepts `top_k` and ignores unknown keys or rejects them
//! depending on version). A forced output length ([`OpenAiClient::send_forced`], a
//! workload's `force_output_tokens: N`) sends `max_tokens: N` (instead of `num_predict`),
//! `ignore_eos: true` and `min_tokens: N`. `num_gpu` and `num_ctx` are startup settings of these servers, and
//! `keep_alive` is Ollama's: none of them is sent, and the first request that sets any of them
//! logs one warning per client.
//!
//! # Stream (Server-Sent Events)
//! The body is split into lines as bytes arrive (a line may span reads; `\r\n` is accepted).
//! `data: {json}` lines are chunks, `data: [DONE]` ends the reply, `:` comment lines, blank
//! lines, `id:`/`retry:` fields are skipped, `event: error` makes the next `data:` an error,
//! and an `error:` field (older llama-server) or a chunk with an `error` object is a
//! [`ErrorKind::StreamError`]. Each `data:` line is one chunk (these servers never split a
//! JSON object over several `data:` lines).
//!
//! # Record
//! - `ttft_ms`: send → first chunk whose text delta is non-empty (`choices[0].text` for
//!   completions, `choices[0].delta.content` for chat; role-only chunks are not tokens);
//!   `itl_ms` the gaps between text chunks; `chunks` every `data:` chunk but `[DONE]`;
//!   `e2e_ms` send → end of the body. Not streamed: no TTFT, no ITL, `chunks` = 1.
//! - `output_tokens` = `usage.completion_tokens`, `prompt_tokens` = `usage.prompt_tokens`
//!   (the final usage chunk); without usage, llama-server's `timings.predicted_n` and
//!   `timings.prompt_n`.
//! - `prompt_eval_ms` = `timings.prompt_ms`, `eval_ms` = `timings.predicted_ms` (llama-server
//!   only; the last `timings` seen wins); `load_ms`, `total_ms`: `None` (not reported).
//! - `done_reason` = the last non-null `finish_reason`.
//! - `timing_source`: `llama-server timings` when a `timings` object came, else `usage only`
//!   when token counts came, else `None`.
//!
//! A reply is complete at `data: [DONE]`, or when the body ends cleanly after a chunk with a
//! `finish_reason`; otherwise it is [`ErrorKind::Truncated`].
//!
//! # Errors
//! HTTP statuses as for Ollama (400 bad request, 503 queue full/"Loading model" (retryable),
//! other 5xx server error, anything else http status), except that 404 is
//! [`ErrorKind::ModelNotFound`] only when the server's message says a model was not found or
//! does not exist (llama-server answers 404 for unknown routes too). The message is the
//! server's `error.message` (or `error`, or vLLM's top-level `message`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::stream::{
    ClientError, Fed, Protocol, ServerHttp, TextTimer, base_body, cut_mid_line, err, error_message,
    lossy_prefix, map_status, measure_json, parse_json, truncate_chars,
};
use super::{ErrorKind, LlmRequest, RequestError, RequestRecord};
use crate::manifest::Api;

/// [`RequestRecord::timing_source`] of a reply that carried llama-server's `timings` object.
pub const TIMING_LLAMA_SERVER: &str = "llama-server timings";
/// [`RequestRecord::timing_source`] of a reply with token counts (`usage`) but no durations.
pub const TIMING_USAGE_ONLY: &str = "usage only";

/// Client of one OpenAI-compatible server (pooled connections, no client-wide timeout).
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    /// The server; its base URL has no trailing `/` and no `/v1`, e.g.
    /// `http://127.0.0.1:8080`.
    pub(super) server: ServerHttp,
    /// The "settings ignored" warning was logged (shared by clones).
    warned: Arc<AtomicBool>,
}

impl OpenAiClient {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`; the `/v1` paths
    /// are appended). Only plain `http`; system proxies are ignored.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let server = ServerHttp::new(base_url, false, status_error)?;
        Ok(OpenAiClient {
            server,
            warned: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The base URL (no trailing `/`).
    pub fn base_url(&self) -> &str {
        self.server.base()
    }

    /// Sends one request and measures it. Never fails: errors are in the record.
    pub async fn send(&self, req: &LlmRequest) -> RequestRecord {
        self.send_forced(req, None).await
    }

    /// [`OpenAiClient::send`], asking the server to generate exactly `force_output_tokens`
    /// tokens when set (see [`request_body_forced`]).
    pub async fn send_forced(
        &self,
        req: &LlmRequest,
        force_output_tokens: Option<u32>,
    ) -> RequestRecord {
        let ignored = ignored_settings(req);
        if !ignored.is_empty() && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{}: {} not sent: an OpenAI-compatible server takes them as startup settings (llama-server `-ngl`, `-c`), not per request; they are ignored for every request to this server",
                self.server.base(),
                ignored.join(", ")
            );
        }
        let request = self
            .server
            .measured_post(api_path(req.api), "text/event-stream, application/json");
        let body = request_body_forced(req, force_output_tokens);
        measure_json(request, &body, req, |t0| {
            SseState::new(req.api, req.stream, req.max_response_bytes, t0)
        })
        .await
    }

    /// The server's version: llama-server's `GET /props` → `build_info` (e.g.
    /// `b6523-1a2b3c4d`), else `GET /version` → `version` (vLLM), else `GET /api/version` →
    /// `version` (Ollama serving its `/v1` routes), else the first `owned_by` of
    /// `GET /v1/models` (e.g. `vllm`, `llamacpp`: a name, not a version). A refused connection
    /// or a timeout is returned at once; when no route gives a version, the error says what
    /// each answered.
    pub async fn version(&self) -> Result<String, RequestError> {
        let mut tried = Vec::new();
        let fatal =
            |e: &RequestError| matches!(e.kind, ErrorKind::ConnectionRefused | ErrorKind::Timeout);
        match self.server.get_json("/props").await {
            Ok(v) => match v.get("build_info").and_then(Value::as_str) {
                Some(s) if !s.is_empty() => return Ok(s.to_owned()),
                _ => tried.push("/props: no `build_info`".to_owned()),
            },
            Err(e) if fatal(&e) => return Err(e),
            Err(e) => tried.push(format!("/props: {}", e.message)),
        }
        // vLLM's `/version`; Ollama's `/api/version` when Ollama is used through its `/v1`.
        for path in ["/version", "/api/version"] {
            match self.server.get_json(path).await {
                Ok(v) => match v.get("version").and_then(Value::as_str) {
                    Some(s) if !s.is_empty() => return Ok(s.to_owned()),
                    _ => tried.push(format!("{path}: no `version`")),
                },
                Err(e) if fatal(&e) => return Err(e),
                Err(e) => tried.push(format!("{path}: {}", e.message)),
            }
        }
        let last = match self.server.get_json("/v1/models").await {
            Ok(v) => {
                let owner = v
                    .get("data")
                    .and_then(Value::as_array)
                    .and_then(|d| d.first())
                    .and_then(|m| m.get("owned_by"))
                    .and_then(Value::as_str);
                match owner {
                    Some(s) if !s.is_empty() => return Ok(s.to_owned()),
                    _ => {
                        tried.push("/v1/models: no `owned_by`".to_owned());
                        err(ErrorKind::MalformedResponse, Some(200), String::new())
                    }
                }
            }
            Err(e) => {
                if fatal(&e) {
                    return Err(e);
                }
                tried.push(format!("/v1/models: {}", e.message));
                e
            }
        };
        Err(RequestError {
            message: truncate_chars(&format!(
                "the server does not report a version (no llama-server `/props`, vLLM `/version`, Ollama `/api/version` or `/v1/models` `owned_by`): {}",
                tried.join("; ")
            )),
            ..last
        })
    }

    /// The model ids the server lists (`GET /v1/models` → `data[].id`): llama-server lists
    /// its `--alias` or model path, vLLM its served model name(s).
    pub async fn models(&self) -> Result<Vec<String>, RequestError> {
        let data = self.server.get_array("/v1/models", "data").await?;
        Ok(data
            .iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// Always `None`: OpenAI-compatible servers expose no model digest (use
    /// [`OpenAiClient::models`] to see what is served).
    pub async fn model_digest(&self, _model: &str) -> Result<Option<String>, RequestError> {
        Ok(None)
    }

    /// True when the server is `chimera emulate` (its `/props` or `/api/version` carries the
    /// `chimera_emulator` marker), a test instrument.
    pub async fn is_chimera_emulator(&self) -> bool {
        for path in ["/props", "/api/version"] {
            if let Ok(v) = self.server.get_json(path).await
                && v.get("chimera_emulator").and_then(Value::as_bool) == Some(true)
            {
                return true;
            }
        }
        false
    }
}

/// The request path of an API.
pub fn api_path(api: Api) -> &'static str {
    match api {
        Api::Generate => "/v1/completions",
        Api::Chat => "/v1/chat/completions",
    }
}

/// The JSON body: `model`, `prompt` or `messages`, `stream` (+ `stream_options` when
/// streamed), and the set options under their OpenAI/llama-server names.
pub fn request_body(req: &LlmRequest) -> Value {
    let mut m = base_body(req);
    if req.stream {
        m.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
    }
    let o = &req.options;
    if let Some(n) = o.num_predict.filter(|n| *n >= 0) {
        m.insert("max_tokens".into(), Value::from(n));
    }
    if let Some(t) = o.temperature {
        m.insert("temperature".into(), Value::from(t));
    }
    if let Some(p) = o.top_p {
        m.insert("top_p".into(), Value::from(p));
    }
    if let Some(k) = o.top_k {
        m.insert("top_k".into(), Value::from(k));
    }
    if let Some(r) = o.repeat_penalty {
        m.insert("repeat_penalty".into(), Value::from(r));
    }
    if let Some(s) = o.seed {
        m.insert("seed".into(), Value::from(s));
    }
    Value::Object(m)
}

/// [`request_body`], asking for exactly `n` output tokens when `force_output_tokens` is
/// `Some(n)`: `max_tokens: n` (replacing what `num_predict` asked), `ignore_eos: true` and
/// `min_tokens: n`. llama-server honours `ignore_eos` (and ignores `min_tokens`); vLLM honours
/// both; either way the reply has `n` tokens unless the context fills first.
pub fn request_body_forced(req: &LlmRequest, force_output_tokens: Option<u32>) -> Value {
    let mut body = request_body(req);
    if let (Some(n), Value::Object(m)) = (force_output_tokens, &mut body) {
        m.insert("max_tokens".into(), Value::from(n));
        m.insert("ignore_eos".into(), Value::Bool(true));
        m.insert("min_tokens".into(), Value::from(n));
    }
    body
}

/// The settings of `req` an OpenAI-compatible server cannot take per request.
pub fn ignored_settings(req: &LlmRequest) -> Vec<&'static str> {
    let mut v = Vec::new();
    if req.options.num_gpu.is_some() {
        v.push("num_gpu");
    }
    if req.options.num_ctx.is_some() {
        v.push("num_ctx");
    }
    if req.keep_alive.is_some() {
        v.push("keep_alive");
    }
    v
}

/// True when `model` is among the ids a server lists (case-insensitive; `x` = `x:latest`).
pub fn model_listed(served: &[String], model: &str) -> bool {
    fn norm(s: &str) -> String {
        let s = s.trim().to_ascii_lowercase();
        match s.strip_suffix(":latest") {
            Some(base) => base.to_owned(),
            None => s,
        }
    }
    let want = norm(model);
    served.iter().any(|s| norm(s) == want)
}

/// Maps a non-2xx status and its body.
fn status_error(status: StatusCode, body: &[u8]) -> RequestError {
    let message = error_message(status, body);
    let model_missing = says_model_missing(&message);
    map_status(status, message, model_missing)
}

/// True when an error message says that a model does not exist.
fn says_model_missing(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("model")
        && (m.contains("not found") || m.contains("does not exist") || m.contains("not exist"))
}

/// One line of an SSE stream, classified.
#[derive(Debug, PartialEq, Eq)]
enum SseLine<'a> {
    /// An empty line: the end of an event.
    Blank,
    /// `:` comment (keep-alive pings).
    Comment,
    /// `event: name`.
    Event(&'a [u8]),
    /// `data: payload` (one optional space after the colon removed).
    Data(&'a [u8]),
    /// `error: payload` (older llama-server builds streamed errors as this field).
    Error(&'a [u8]),
    /// Any other field (`id`, `retry`, unknown ones): ignored.
    Other,
}

fn sse_line(line: &[u8]) -> SseLine<'_> {
    if line.is_empty() {
        return SseLine::Blank;
    }
    if line[0] == b':' {
        return SseLine::Comment;
    }
    let (field, value) = match line.iter().position(|&b| b == b':') {
        Some(i) => {
            let v = &line[i + 1..];
            (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
        }
        None => (line, &line[line.len()..]),
    };
    match field {
        b"data" => SseLine::Data(value),
        b"event" => SseLine::Event(value),
        b"error" => SseLine::Error(value),
        _ => SseLine::Other,
    }
}

/// One chunk (or the non-streamed reply) as far as the client reads it.
#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    delta: Option<Content>,
    #[serde(default)]
    message: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct Timings {
    #[serde(default)]
    prompt_n: Option<u64>,
    #[serde(default)]
    prompt_ms: Option<f64>,
    #[serde(default)]
    predicted_n: Option<u64>,
    #[serde(default)]
    predicted_ms: Option<f64>,
}

/// Per-request parsing state.
#[derive(Debug)]
pub(crate) struct SseState {
    api: Api,
    stream: bool,
    timer: TextTimer,
    /// The current event's `event:` name.
    event: Option<Vec<u8>>,
    /// `data: [DONE]` arrived (or the non-streamed reply was read).
    done: bool,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    timings: Option<Timings>,
}

impl SseState {
    pub(crate) fn new(api: Api, stream: bool, max_text: usize, t0: Instant) -> Self {
        SseState {
            api,
            stream,
            timer: TextTimer::new(t0, stream, max_text),
            event: None,
            done: false,
            finish_reason: None,
            usage: None,
            timings: None,
        }
    }

    /// Handles one SSE line that arrived at `at`.
    fn on_sse_line(&mut self, line: &[u8], at: Instant, rec: &mut RequestRecord) -> Fed {
        match sse_line(line) {
            SseLine::Blank => {
                self.event = None;
                Ok(())
            }
            SseLine::Comment | SseLine::Other => Ok(()),
            SseLine::Event(name) => {
                self.event = Some(name.trim_ascii().to_vec());
                Ok(())
            }
            SseLine::Error(payload) => Err(stream_error(payload)),
            SseLine::Data(payload) => {
                if self.event.as_deref() == Some(b"error") {
                    return Err(stream_error(payload));
                }
                let payload = payload.trim_ascii();
                if payload == b"[DONE]" {
                    self.done = true;
                    self.complete(rec);
                    return Ok(());
                }
                if payload.is_empty() {
                    return Ok(());
                }
                self.on_payload(payload, at, rec)
            }
        }
    }

    /// One JSON chunk (streamed) or the whole reply (not streamed).
    fn on_payload(&mut self, payload: &[u8], at: Instant, rec: &mut RequestRecord) -> Fed {
        let reply: Reply = parse_json(payload, "chunk")?;
        if let Some(e) = reply.error {
            let text = error_text(&e);
            let text = if text.trim().is_empty() {
                "the server streamed an error without a message".to_owned()
            } else {
                text
            };
            return Err(err(ErrorKind::StreamError, None, truncate_chars(&text)));
        }
        if reply.choices.is_none() && reply.usage.is_none() && reply.timings.is_none() {
            return Err(err(
                ErrorKind::MalformedResponse,
                None,
                format!(
                    "a chunk without `choices`, `usage` or `timings`: {}",
                    lossy_prefix(payload)
                ),
            ));
        }
        rec.chunks = rec.chunks.saturating_add(1);
        if let Some(choice) = reply.choices.as_ref().and_then(|c| c.first()) {
            let text = match self.api {
                Api::Generate => choice.text.as_deref(),
                Api::Chat if self.stream => {
                    choice.delta.as_ref().and_then(|d| d.content.as_deref())
                }
                Api::Chat => choice.message.as_ref().and_then(|d| d.content.as_deref()),
            };
            self.timer.on_text(text.unwrap_or_default(), at, rec)?;
            if let Some(r) = &choice.finish_reason {
                self.finish_reason = Some(r.clone());
            }
        }
        if reply.usage.is_some() {
            self.usage = reply.usage;
        }
        if reply.timings.is_some() {
            self.timings = reply.timings;
        }
        Ok(())
    }

    /// Fills the record's server numbers once the reply is complete.
    fn complete(&self, rec: &mut RequestRecord) {
        rec.done_reason = self.finish_reason.clone();
        rec.load_ms = None;
        rec.total_ms = None;
        let usage = self.usage;
        let timings = self.timings;
        rec.output_tokens = usage
            .and_then(|u| u.completion_tokens)
            .or(timings.and_then(|t| t.predicted_n));
        rec.prompt_tokens = usage
            .and_then(|u| u.prompt_tokens)
            .or(timings.and_then(|t| t.prompt_n));
        rec.prompt_eval_ms = timings.and_then(|t| t.prompt_ms);
        rec.eval_ms = timings.and_then(|t| t.predicted_ms);
        rec.timing_source = if timings.is_some() {
            Some(TIMING_LLAMA_SERVER.to_owned())
        } else if usage.is_some() {
            Some(TIMING_USAGE_ONLY.to_owned())
        } else {
            None
        };
    }
}

impl Protocol for SseState {
    fn on_line(&mut self, line: &[u8], at: Instant, rec: &mut RequestRecord) -> Fed {
        self.on_sse_line(line, at, rec)
    }

    fn done(&self) -> bool {
        self.done
    }

    fn finish(&mut self, rest: &[u8], end: Instant, rec: &mut RequestRecord) -> Fed {
        if !self.stream {
            if rest.iter().all(u8::is_ascii_whitespace) {
                return Err(err(
                    ErrorKind::Truncated,
                    None,
                    "the reply body is empty".to_owned(),
                ));
            }
            self.on_payload(rest.trim_ascii(), end, rec)?;
            self.done = true;
            self.complete(rec);
            return Ok(());
        }
        if !rest.iter().all(u8::is_ascii_whitespace) {
            // A last line without its newline: complete only if it is `[DONE]` or a whole
            // JSON chunk; anything else was cut mid-line.
            let complete = match sse_line(rest.trim_ascii_end()) {
                SseLine::Data(p) => {
                    let p = p.trim_ascii();
                    p == b"[DONE]" || serde_json::from_slice::<Value>(p).is_ok()
                }
                _ => true,
            };
            if !complete {
                return Err(cut_mid_line(rest));
            }
            self.on_sse_line(rest.trim_ascii_end(), end, rec)?;
        }
        if !self.done {
            if self.finish_reason.is_none() {
                return Err(err(
                    ErrorKind::Truncated,
                    None,
                    format!(
                        "the stream ended without `data: [DONE]` or a `finish_reason` after {} chunk(s)",
                        rec.chunks
                    ),
                ));
            }
            self.done = true;
            self.complete(rec);
        }
        Ok(())
    }

    fn end_marker(&self) -> &'static str {
        "data: [DONE]"
    }

    fn status_error(&self, status: StatusCode, body: &[u8]) -> RequestError {
        status_error(status, body)
    }
}

/// A streamed error: the payload's `error.message`, `error`, `message`, or the payload.
fn stream_error(payload: &[u8]) -> RequestError {
    let text = match serde_json::from_slice::<Value>(payload.trim_ascii()) {
        Ok(v) => match v.get("error") {
            Some(e) => error_text(e),
            None => error_text(&v),
        },
        Err(_) => String::from_utf8_lossy(payload).trim().to_owned(),
    };
    let text = if text.is_empty() {
        "the server streamed an error without a message".to_owned()
    } else {
        text
    };
    err(ErrorKind::StreamError, None, truncate_chars(&text))
}

/// The text of an error value: a string, or an object's `message`, or its JSON.
pub fn error_text(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| e.to_string(), str::to_owned),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::stream::{LineSplitter, test_request};
    use super::*;
    use crate::manifest::Options;
    use std::time::Duration;

    #[test]
    fn sse_lines_are_classified() {
        assert_eq!(sse_line(b""), SseLine::Blank);
        assert_eq!(sse_line(b": ping"), SseLine::Comment);
        assert_eq!(sse_line(b":"), SseLine::Comment);
        assert_eq!(sse_line(b"data: {\"a\":1}"), SseLine::Data(b"{\"a\":1}"));
        assert_eq!(sse_line(b"data:{\"a\":1}"), SseLine::Data(b"{\"a\":1}"));
        assert_eq!(sse_line(b"data:  x"), SseLine::Data(b" x"));
        assert_eq!(sse_line(b"data"), SseLine::Data(b""));
        assert_eq!(sse_line(b"data: [DONE]"), SseLine::Data(b"[DONE]"));
        assert_eq!(sse_line(b"event: error"), SseLine::Event(b"error"));
        assert_eq!(sse_line(b"error: {}"), SseLine::Error(b"{}"));
        assert_eq!(sse_line(b"id: 7"), SseLine::Other);
        assert_eq!(sse_line(b"retry: 100"), SseLine::Other);
    }

    /// Feeds `body` in pieces of `piece` bytes through the line splitter into an SSE state,
    /// each piece arriving 10 ms after the previous; then ends the body.
    fn run(
        api: Api,
        stream: bool,
        body: &[u8],
        piece: usize,
    ) -> (RequestRecord, Result<(), RequestError>) {
        let t0 = Instant::now();
        let mut st = SseState::new(api, stream, 1 << 16, t0);
        let mut lines = LineSplitter::new(1 << 16);
        let mut rec = RequestRecord::default();
        for (i, part) in body.chunks(piece.max(1)).enumerate() {
            let at = t0 + Duration::from_millis(10 * (i as u64 + 1));
            lines.feed(part);
            if !stream {
                continue;
            }
            while let Some(line) = lines.next_line().expect("line cap") {
                if let Err(e) = st.on_line(&line, at, &mut rec) {
                    return (rec, Err(e));
                }
                if st.done() {
                    return (rec, Ok(()));
                }
            }
        }
        let rest = lines.take_rest();
        let r = st.finish(&rest, t0 + Duration::from_secs(1), &mut rec);
        (rec, r)
    }

    const CHAT: &str = concat!(
        ": keep-alive comment\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":null}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "id: 3\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7},",
        "\"timings\":{\"prompt_n\":4,\"prompt_ms\":12.5,\"predicted_n\":2,\"predicted_ms\":30.25}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn chat_stream_parses_the_same_whatever_the_chunking() {
        let whole = run(Api::Chat, true, CHAT.as_bytes(), usize::MAX);
        assert_eq!(whole.1, Ok(()));
        let rec = whole.0;
        assert_eq!(rec.text, "Hi there");
        assert_eq!(rec.chunks, 5, "role, 2 texts, finish, usage; not [DONE]");
        assert_eq!(rec.output_tokens, Some(2));
        assert_eq!(
            rec.prompt_tokens,
            Some(5),
            "usage wins over timings.prompt_n"
        );
        assert_eq!(rec.prompt_eval_ms, Some(12.5));
        assert_eq!(rec.eval_ms, Some(30.25));
        assert_eq!(rec.done_reason.as_deref(), Some("length"));
        assert_eq!(rec.timing_source.as_deref(), Some(TIMING_LLAMA_SERVER));
        assert_eq!((rec.load_ms, rec.total_ms), (None, None));
        assert_eq!(rec.ttft_ms, Some(10.0));
        assert_eq!(rec.itl_ms, vec![0.0], "both texts arrived in the same read");
        // Every split of the body across reads (lines cut anywhere, CRLF split from LF) gives
        // the same parse.
        for piece in 1..40 {
            let (r, res) = run(Api::Chat, true, CHAT.as_bytes(), piece);
            assert_eq!(res, Ok(()), "piece {piece}");
            assert_eq!(
                (
                    r.text.as_str(),
                    r.chunks,
                    r.output_tokens,
                    r.eval_ms,
                    r.itl_ms.len()
                ),
                ("Hi there", 5, Some(2), Some(30.25), 1),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn completions_without_timings_are_usage_only_and_without_usage_use_timings() {
        let body = concat!(
            "data: {\"choices\":[{\"text\":\"a\",\"index\":0,\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"text\":\" b\",\"index\":0,\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n",
            "data: [DONE]\n\n",
        );
        let (rec, r) = run(Api::Generate, true, body.as_bytes(), 7);
        assert_eq!(r, Ok(()));
        assert_eq!(rec.text, "a b");
        assert_eq!(
            (rec.output_tokens, rec.prompt_tokens, rec.eval_ms),
            (Some(2), Some(3), None)
        );
        assert_eq!(rec.timing_source.as_deref(), Some(TIMING_USAGE_ONLY));
        assert_eq!(rec.done_reason.as_deref(), Some("stop"));
        assert!(rec.ttft_ms.is_some());
        assert_eq!(rec.itl_ms.len(), 1);

        let body = concat!(
            "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":\"stop\"}],",
            "\"timings\":{\"prompt_n\":9,\"prompt_ms\":1.0,\"predicted_n\":1,\"predicted_ms\":2.0}}\n\n",
            "data: [DONE]"
        );
        let (rec, r) = run(Api::Generate, true, body.as_bytes(), 5);
        assert_eq!(r, Ok(()), "[DONE] without its newline completes the reply");
        assert_eq!((rec.output_tokens, rec.prompt_tokens), (Some(1), Some(9)));
        assert_eq!(rec.timing_source.as_deref(), Some(TIMING_LLAMA_SERVER));
    }

    #[test]
    fn an_error_payload_without_text_still_says_it_is_an_error() {
        for body in [
            "data: {\"error\":\"\"}\n\n",
            "data: {\"error\":{\"message\":\" \"}}\n\n",
        ] {
            let e = run(Api::Chat, true, body.as_bytes(), 4).1.expect_err(body);
            assert_eq!(e.kind, ErrorKind::StreamError);
            assert_eq!(e.message, "the server streamed an error without a message");
        }
        let body = "data: {\"error\":{\"message\":\"boom\"}}\n\n";
        let e = run(Api::Chat, true, body.as_bytes(), 4).1.expect_err(body);
        assert_eq!(e.message, "boom");
    }

    #[test]
    fn stream_ends_and_errors_map_to_kinds() {
        let kind = |body: &str| {
            run(Api::Generate, true, body.as_bytes(), 3)
                .1
                .map_err(|e| e.kind)
        };
        let text = "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}\n\n";
        assert_eq!(
            kind(text),
            Err(ErrorKind::Truncated),
            "no [DONE], no finish_reason"
        );
        assert_eq!(
            kind(&format!("{text}data: {{\"choices\":[{{\"te")),
            Err(ErrorKind::Truncated),
            "cut inside a line"
        );
        assert_eq!(
            kind(&format!(
                "{text}data: {{\"choices\":[{{\"text\":\"\",\"finish_reason\":\"stop\"}}]}}\n\n"
            )),
            Ok(()),
            "a finish_reason then a clean end is complete"
        );
        assert_eq!(
            kind(&format!("{text}data: {{\"choices\":[{{\"te\n\n")),
            Err(ErrorKind::MalformedResponse)
        );
        assert_eq!(kind("data: [1,2]\n\n"), Err(ErrorKind::MalformedResponse));
        assert_eq!(
            kind("data: {\"id\":1}\n\n"),
            Err(ErrorKind::MalformedResponse)
        );
        for bad in [
            format!(
                "{text}data: {{\"error\":{{\"code\":500,\"message\":\"boom\",\"type\":\"server_error\"}}}}\n\n"
            ),
            format!("{text}error: {{\"message\":\"boom\"}}\n\n"),
            format!("{text}event: error\ndata: {{\"message\":\"boom\"}}\n\n"),
        ] {
            let (rec, r) = run(Api::Generate, true, bad.as_bytes(), 4);
            let e = r.expect_err("stream error");
            assert_eq!(
                (e.kind, e.message.as_str()),
                (ErrorKind::StreamError, "boom"),
                "{bad}"
            );
            assert_eq!(rec.text, "a", "the text before the error is kept");
            assert_eq!(rec.output_tokens, None, "no usage from a failed stream");
        }
        let big = format!(
            "data: {{\"choices\":[{{\"text\":\"{}\"}}]}}\n\n",
            "x".repeat(70_000)
        );
        let t0 = Instant::now();
        let mut st = SseState::new(Api::Generate, true, 64, t0);
        let mut rec = RequestRecord::default();
        assert_eq!(
            st.on_line(big.trim_end().as_bytes(), t0, &mut rec)
                .map_err(|e| e.kind),
            Err(ErrorKind::TooLarge)
        );
    }

    #[test]
    fn unstreamed_replies_are_one_object() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":3}}"#;
        let (rec, r) = run(Api::Chat, false, body, 11);
        assert_eq!(r, Ok(()));
        assert_eq!(rec.text, "Hello!");
        assert_eq!((rec.ttft_ms, rec.itl_ms.len(), rec.chunks), (None, 0, 1));
        assert_eq!(rec.output_tokens, Some(3));
        assert_eq!(rec.timing_source.as_deref(), Some(TIMING_USAGE_ONLY));
        let (_, r) = run(Api::Generate, false, b"{\"choices\":[{\"text\":", 4);
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::MalformedResponse));
        let (_, r) = run(Api::Generate, false, b"", 4);
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::Truncated));
    }

    #[test]
    fn bodies_send_openai_names_and_never_load_options() {
        let o = Options {
            num_gpu: Some(80),
            num_ctx: Some(4096),
            num_predict: Some(16),
            temperature: Some(0.0),
            top_p: Some(0.9),
            top_k: Some(40),
            repeat_penalty: Some(1.1),
            seed: Some(7),
        };
        let mut r = test_request(Api::Chat, "m", o);
        r.keep_alive = Some("5m".into());
        assert_eq!(
            request_body(&r),
            serde_json::json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 16, "temperature": 0.0, "top_p": 0.9, "top_k": 40,
                "repeat_penalty": 1.1, "seed": 7
            })
        );
        assert_eq!(
            ignored_settings(&r),
            vec!["num_gpu", "num_ctx", "keep_alive"]
        );
        let mut r = test_request(
            Api::Generate,
            "m",
            Options {
                num_predict: Some(-1),
                ..Options::default()
            },
        );
        r.stream = false;
        assert_eq!(
            request_body(&r),
            serde_json::json!({"model": "m", "prompt": "hi", "stream": false})
        );
        assert!(ignored_settings(&r).is_empty());
    }

    #[test]
    fn a_forced_length_replaces_num_predict_and_adds_ignore_eos_and_min_tokens() {
        let r = test_request(
            Api::Chat,
            "m",
            Options {
                num_predict: Some(16),
                temperature: Some(0.5),
                ..Options::default()
            },
        );
        assert_eq!(request_body_forced(&r, None), request_body(&r));
        assert_eq!(
            request_body_forced(&r, Some(48)),
            serde_json::json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 48, "temperature": 0.5,
                "ignore_eos": true, "min_tokens": 48
            })
        );
        let mut r = test_request(Api::Generate, "m", Options::default());
        r.stream = false;
        assert_eq!(
            request_body_forced(&r, Some(1)),
            serde_json::json!({
                "model": "m", "prompt": "hi", "stream": false,
                "max_tokens": 1, "ignore_eos": true, "min_tokens": 1
            })
        );
    }

    #[test]
    fn statuses_map_like_ollama_but_404_needs_a_missing_model() {
        let e = status_error(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":404,"message":"The model `x` does not exist.","type":"not_found_error"}}"#,
        );
        assert_eq!(
            (e.kind, e.status, e.message.as_str()),
            (
                ErrorKind::ModelNotFound,
                Some(404),
                "The model `x` does not exist."
            )
        );
        let e = status_error(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::HttpStatus);
        let e = status_error(
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#,
        );
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::QueueFull, "Loading model")
        );
    }

    #[test]
    fn listed_models_match_loosely() {
        let served = vec!["gemma3:270m".to_owned(), "Qwen/Qwen2.5-7B".to_owned()];
        assert!(model_listed(&served, "gemma3:270m"));
        assert!(model_listed(&served, "GEMMA3:270M"));
        assert!(model_listed(&served, "qwen/qwen2.5-7b:latest"));
        assert!(!model_listed(&served, "gemma3"));
    }
}
