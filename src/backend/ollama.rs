//! Ollama native API client (`/api/generate`, `/api/chat`, `/api/version`, `/api/tags`).
//!
//! One [`OllamaClient::send`] call is one request and yields one [`RequestRecord`]; it never
//! panics and never returns an error: a failure is recorded in `RequestRecord::error` together
//! with every timing measured up to that point.
//!
//! Timing uses the monotonic clock ([`std::time::Instant`]); `t0` is taken right before the
//! request is handed to the HTTP stack.
//!
//! - TTFT: `t0` → arrival of the first chunk whose `response` (generate) or `message.content`
//!   (chat) is non-empty. Role-only, empty or thinking-only chunks are not tokens; `thinking`
//!   deltas do not count ("first visible token"). No text at all → `None`.
//! - ITL: the gaps between consecutive text-bearing chunks (lines that arrived in the same read
//!   share its arrival time, so their gap is 0).
//! - e2e: `t0` → end of the response body (or the failure).
//! - `stream: false`: TTFT is `None` (the client sees only the complete reply, as the Python
//!   harnesses, which had no client TTFT); e2e as usual; `itl_ms` empty.
//!
//! The body is parsed line by line as bytes arrive ([`reqwest::Response::chunk`]); the whole
//! body (every line charged its bytes), the accumulated text and the inter-token gaps are all
//! bounded by `max_response_bytes` (see the `stream` module's "size cap").
//!
//! Timeout: `req.timeout` bounds the whole request (a deadline at `t0 + timeout`), and every
//! wait for bytes (headers or body) is bounded by that deadline, so a stall of `timeout`
//! without bytes always fails too. Ollama sends no headers before its first chunk, so the
//! wait for the response head counts as a wait for bytes.

use std::time::Instant;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

pub use super::stream::ClientError;
use super::stream::{
    Fed, Protocol, ServerHttp, TextTimer, base_body, cut_mid_line, err, error_message,
    lossy_prefix, map_status, measure_json, parse_json, truncate_chars,
};
use super::{ErrorKind, LlmRequest, RequestError, RequestRecord};
use crate::manifest::{Api, Options};

/// What [`RequestRecord::timing_source`] says for replies whose final chunk carried Ollama's
/// server timings.
pub const TIMING_SOURCE: &str = "ollama";

/// Client of one Ollama server (pooled connections, no client-wide timeout).
#[derive(Debug, Clone)]
pub struct OllamaClient {
    /// The server; its base URL has no trailing `/`, e.g. `http://127.0.0.1:11434`.
    server: ServerHttp,
}

impl OllamaClient {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:11434`). Only plain
    /// `http` is supported (no TLS is compiled in). System proxies are ignored: a benchmark
    /// talks to its server directly.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let server = ServerHttp::new(base_url, true, status_error)?;
        Ok(OllamaClient { server })
    }

    /// The base URL (no trailing `/`).
    pub fn base_url(&self) -> &str {
        self.server.base()
    }

    /// Sends one request and measures it. Never fails: errors are in the record.
    pub async fn send(&self, req: &LlmRequest) -> RequestRecord {
        let request = self.server.measured_post(api_path(req.api), "*/*");
        measure_json(request, &request_body(req), req, |t0| {
            StreamState::new(req.api, req.stream, req.max_response_bytes, t0)
        })
        .await
    }

    /// The server's version (`GET /api/version`), e.g. `0.33.0`.
    pub async fn version(&self) -> Result<String, RequestError> {
        let v = self.server.get_json("/api/version").await?;
        match v.get("version").and_then(Value::as_str) {
            Some(s) => Ok(s.to_owned()),
            None => Err(err(
                ErrorKind::MalformedResponse,
                Some(200),
                format!("no `version` string in {}", truncate_chars(&v.to_string())),
            )),
        }
    }

    /// True when the server is `chimera emulate` (its `/api/version` says so), a test
    /// instrument whose numbers must never be reported as LLM measurements.
    pub async fn is_chimera_emulator(&self) -> bool {
        self.server
            .get_json("/api/version")
            .await
            .ok()
            .and_then(|v| v.get("chimera_emulator").and_then(Value::as_bool))
            .unwrap_or(false)
    }

    /// The digest of a local model (`GET /api/tags`), matching `name` or `model` against
    /// `model` (case-insensitive), also as `model:latest` when `model` has no tag. `None` when
    /// the server does not have the model or lists no digest for it.
    pub async fn model_digest(&self, model: &str) -> Result<Option<String>, RequestError> {
        let models = self.server.get_array("/api/tags", "models").await?;
        Ok(find_digest(&models, model))
    }
}

/// The request path of an API.
pub fn api_path(api: Api) -> &'static str {
    match api {
        Api::Generate => "/api/generate",
        Api::Chat => "/api/chat",
    }
}

/// The JSON body of a request: `model`, `prompt` (generate) or `messages` (chat), `stream`,
/// `options` only when some option is set (and then only the set ones), `keep_alive` only when
/// set.
pub fn request_body(req: &LlmRequest) -> Value {
    let mut m = base_body(req);
    if let Some(o) = options_value(&req.options) {
        m.insert("options".into(), o);
    }
    if let Some(k) = &req.keep_alive {
        m.insert("keep_alive".into(), keep_alive_value(k));
    }
    Value::Object(m)
}

/// The `options` object: `None` when no option is set.
pub fn options_value(options: &Options) -> Option<Value> {
    if options.is_empty() {
        return None;
    }
    match serde_json::to_value(options) {
        Ok(Value::Object(m)) if !m.is_empty() => Some(Value::Object(m)),
        _ => None,
    }
}

/// `keep_alive` on the wire: a plain number (`-1`, `300`, `0.5`) is sent as a JSON number
/// (Ollama rejects unit-less strings other than `"0"`), anything else (`"5m"`) as a string.
pub fn keep_alive_value(k: &str) -> Value {
    let t = k.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = t.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    Value::String(k.to_owned())
}

/// Nanoseconds → milliseconds.
pub fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The digest of `model` in an `/api/tags` list.
fn find_digest(models: &[Value], model: &str) -> Option<String> {
    let mut wanted = vec![model.to_owned()];
    if !model.contains(':') {
        wanted.push(format!("{model}:latest"));
    }
    models
        .iter()
        .find(|m| {
            ["name", "model"].iter().any(|k| {
                m.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|n| wanted.iter().any(|w| n.eq_ignore_ascii_case(w)))
            })
        })
        .and_then(|m| m.get("digest").and_then(Value::as_str).map(str::to_owned))
}

/// One NDJSON chunk (or the non-streamed reply) as far as the client reads it.
#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    response: Option<String>,
    #[serde(default)]
    message: Option<ChatMessage>,
    #[serde(default)]
    done: Option<bool>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    load_duration: Option<u64>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    prompt_eval_duration: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    eval_duration: Option<u64>,
    #[serde(default)]
    total_duration: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: Option<String>,
}

/// Per-request parsing state: the text so far and when its chunks arrived.
#[derive(Debug)]
pub(crate) struct StreamState {
    api: Api,
    stream: bool,
    timer: TextTimer,
    done: bool,
}

impl StreamState {
    pub(crate) fn new(api: Api, stream: bool, max_text: usize, t0: Instant) -> Self {
        StreamState {
            api,
            stream,
            timer: TextTimer::new(t0, stream, max_text),
            done: false,
        }
    }
}

impl Protocol for StreamState {
    /// Handles one line that arrived at `at`. Blank lines are skipped.
    fn on_line(&mut self, line: &[u8], at: Instant, rec: &mut RequestRecord) -> Fed {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let chunk: Chunk = parse_json(line, "line")?;
        if let Some(e) = chunk.error {
            let message = match e {
                Value::String(s) => s,
                Value::Object(ref o) if o.get("message").is_some_and(Value::is_string) => o
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                other => other.to_string(),
            };
            // As the OpenAI parser: an error that says nothing is still named as one.
            let message = if message.trim().is_empty() {
                "the server streamed an error without a message".to_owned()
            } else {
                message
            };
            return Err(err(ErrorKind::StreamError, None, truncate_chars(&message)));
        }
        let Some(done) = chunk.done else {
            return Err(err(
                ErrorKind::MalformedResponse,
                None,
                format!("a line without `done`: {}", lossy_prefix(line)),
            ));
        };
        let text = match self.api {
            Api::Generate => chunk.response.ok_or_else(|| {
                err(
                    ErrorKind::MalformedResponse,
                    None,
                    format!("a line without `response`: {}", lossy_prefix(line)),
                )
            })?,
            Api::Chat => chunk
                .message
                .ok_or_else(|| {
                    err(
                        ErrorKind::MalformedResponse,
                        None,
                        format!("a line without `message`: {}", lossy_prefix(line)),
                    )
                })?
                .content
                .unwrap_or_default(),
        };
        rec.chunks = rec.chunks.saturating_add(1);
        self.timer.on_text(&text, at, rec)?;
        if done {
            self.done = true;
            rec.done_reason = chunk.done_reason;
            rec.load_ms = chunk.load_duration.map(ns_to_ms);
            rec.prompt_tokens = chunk.prompt_eval_count;
            rec.prompt_eval_ms = chunk.prompt_eval_duration.map(ns_to_ms);
            rec.output_tokens = chunk.eval_count;
            rec.eval_ms = chunk.eval_duration.map(ns_to_ms);
            rec.total_ms = chunk.total_duration.map(ns_to_ms);
            rec.timing_source = Some(TIMING_SOURCE.to_owned());
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.done
    }

    fn finish(&mut self, rest: &[u8], end: Instant, rec: &mut RequestRecord) -> Fed {
        if !rest.iter().all(u8::is_ascii_whitespace) {
            // A partial last line: the stream was cut mid-object, unless it happens to be
            // complete JSON without its newline.
            if self.stream && serde_json::from_slice::<Value>(rest).is_err() {
                return Err(cut_mid_line(rest));
            }
            self.on_line(rest, end, rec)?;
        }
        if !self.done {
            return Err(err(
                ErrorKind::Truncated,
                None,
                format!(
                    "the stream ended without `done: true` after {} chunk(s)",
                    rec.chunks
                ),
            ));
        }
        Ok(())
    }

    fn end_marker(&self) -> &'static str {
        "done: true"
    }

    fn status_error(&self, status: StatusCode, body: &[u8]) -> RequestError {
        status_error(status, body)
    }
}

/// Maps a non-2xx status and its body.
fn status_error(status: StatusCode, body: &[u8]) -> RequestError {
    map_status(status, error_message(status, body), true)
}

#[cfg(test)]
mod tests {
    use super::super::stream::test_request;
    use super::*;
    use std::time::Duration;

    #[test]
    fn nanoseconds_to_milliseconds() {
        assert_eq!(ns_to_ms(0), 0.0);
        assert_eq!(ns_to_ms(1_500_000), 1.5);
        assert_eq!(ns_to_ms(312_904_117), 312.904117);
    }

    #[test]
    fn empty_options_send_no_options_key() {
        let body = request_body(&test_request(Api::Generate, "m:1b", Options::default()));
        assert_eq!(
            body,
            serde_json::json!({"model": "m:1b", "prompt": "hi", "stream": true})
        );
    }

    #[test]
    fn only_set_options_are_sent() {
        let o = Options {
            num_ctx: Some(4096),
            temperature: Some(0.0),
            seed: Some(7),
            ..Options::default()
        };
        let mut r = test_request(Api::Chat, "m:1b", o);
        r.keep_alive = Some("5m".into());
        r.stream = false;
        assert_eq!(
            request_body(&r),
            serde_json::json!({
                "model": "m:1b",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": false,
                "options": {"num_ctx": 4096, "temperature": 0.0, "seed": 7},
                "keep_alive": "5m"
            })
        );
    }

    #[test]
    fn keep_alive_numbers_are_numbers() {
        assert_eq!(keep_alive_value("-1"), serde_json::json!(-1));
        assert_eq!(keep_alive_value("0"), serde_json::json!(0));
        assert_eq!(keep_alive_value("1.5"), serde_json::json!(1.5));
        assert_eq!(keep_alive_value("10m"), serde_json::json!("10m"));
    }

    fn parse(
        api: Api,
        stream: bool,
        lines: &[&str],
    ) -> (RequestRecord, Result<bool, RequestError>) {
        let t0 = Instant::now();
        let mut st = StreamState::new(api, stream, 64, t0);
        let mut rec = RequestRecord::default();
        for (i, l) in lines.iter().enumerate() {
            let at = t0 + Duration::from_millis(10 * (i as u64 + 1));
            if let Err(e) = st.on_line(l.as_bytes(), at, &mut rec) {
                return (rec, Err(e));
            }
        }
        let done = st.done;
        (rec, Ok(done))
    }

    #[test]
    fn text_chunks_time_ttft_and_itl_and_the_final_chunk_fills_metrics() {
        let (rec, r) = parse(
            Api::Chat,
            true,
            &[
                r#"{"message":{"role":"assistant","content":""},"done":false}"#,
                r#"{"message":{"role":"assistant","content":"Hi"},"done":false}"#,
                r#"{"message":{"role":"assistant","content":" there"},"done":false}"#,
                r#"{"message":{"role":"assistant","content":"!"},"done":true,"done_reason":"stop","eval_count":3,"eval_duration":2000000,"load_duration":1000}"#,
            ],
        );
        assert_eq!(r, Ok(true));
        assert_eq!(rec.text, "Hi there!");
        assert_eq!(rec.chunks, 4);
        assert_eq!(rec.ttft_ms, Some(20.0));
        assert_eq!(rec.itl_ms, vec![10.0, 10.0]);
        assert_eq!(rec.output_tokens, Some(3));
        assert_eq!(rec.eval_ms, Some(2.0));
        assert_eq!(rec.load_ms, Some(0.001));
        assert_eq!(rec.prompt_tokens, None);
        assert_eq!(rec.total_ms, None);
        assert_eq!(rec.done_reason.as_deref(), Some("stop"));
        assert_eq!(rec.timing_source.as_deref(), Some(TIMING_SOURCE));
    }

    #[test]
    fn unstreamed_reply_has_no_ttft() {
        let (rec, r) = parse(
            Api::Generate,
            false,
            &[r#"{"response":"Hi!","done":true,"eval_count":3}"#],
        );
        assert_eq!(r, Ok(true));
        assert_eq!(rec.ttft_ms, None);
        assert!(rec.itl_ms.is_empty());
        assert_eq!(rec.text, "Hi!");
    }

    #[test]
    fn line_errors_map_to_kinds() {
        let kind = |lines: &[&str]| parse(Api::Generate, true, lines).1.map_err(|e| e.kind);
        assert_eq!(
            kind(&[r#"{"response":"a","done":false}"#, r#"{"error":"boom"}"#]),
            Err(ErrorKind::StreamError)
        );
        assert_eq!(kind(&["{not json"]), Err(ErrorKind::MalformedResponse));
        assert_eq!(
            kind(&[r#"{"done":false}"#]),
            Err(ErrorKind::MalformedResponse)
        );
        assert_eq!(
            kind(&[r#"{"response":"a"}"#]),
            Err(ErrorKind::MalformedResponse)
        );
        assert_eq!(kind(&[r#"[1,2]"#]), Err(ErrorKind::MalformedResponse));
        let big = format!(r#"{{"response":"{}","done":false}}"#, "x".repeat(65));
        assert_eq!(kind(&[&big]), Err(ErrorKind::TooLarge));
        assert_eq!(kind(&["", "  "]), Ok(false));
        // Found by the ollama_stream fuzz target: an empty error was recorded with no text.
        for line in [
            r#"{"error":""}"#,
            r#"{"error":" "}"#,
            r#"{"error":{"message":""}}"#,
        ] {
            let e = parse(Api::Chat, true, &[line]).1.expect_err(line);
            assert_eq!(e.kind, ErrorKind::StreamError);
            assert_eq!(e.message, "the server streamed an error without a message");
        }
        let e = parse(Api::Chat, true, &[r#"{"error":" boom "}"#])
            .1
            .expect_err("boom");
        assert_eq!(e.message, " boom ", "a message is kept as sent");
    }

    #[test]
    fn status_errors_take_the_error_field() {
        let e = status_error(StatusCode::NOT_FOUND, br#"{"error":"model 'x' not found"}"#);
        assert_eq!(
            (e.kind, e.status, e.message.as_str()),
            (ErrorKind::ModelNotFound, Some(404), "model 'x' not found")
        );
        let e = status_error(StatusCode::SERVICE_UNAVAILABLE, b"busy");
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::QueueFull, "busy"));
        let long = "é".repeat(2000);
        assert_eq!(
            status_error(StatusCode::INTERNAL_SERVER_ERROR, long.as_bytes())
                .message
                .chars()
                .count(),
            super::super::stream::MAX_ERROR_CHARS + 1
        );
    }

    #[test]
    fn digests_match_name_model_and_latest() {
        let models = serde_json::json!([
            {"name": "llama3.2:latest", "model": "llama3.2:latest", "digest": "aa"},
            {"name": "x", "model": "qwen3:8b", "digest": "bb"}
        ]);
        let models = models.as_array().expect("array");
        assert_eq!(find_digest(models, "llama3.2").as_deref(), Some("aa"));
        assert_eq!(
            find_digest(models, "LLAMA3.2:latest").as_deref(),
            Some("aa")
        );
        assert_eq!(find_digest(models, "qwen3:8b").as_deref(), Some("bb"));
        assert_eq!(find_digest(models, "qwen3"), None);
    }

    #[test]
    fn client_rejects_bad_urls() {
        assert!(OllamaClient::new("http://127.0.0.1:11434/").is_ok());
        assert!(OllamaClient::new("https://x").is_err());
        assert!(OllamaClient::new("127.0.0.1:11434").is_err());
        assert_eq!(
            OllamaClient::new("http://h:1/")
                .map(|c| c.base_url().to_owned())
                .ok(),
            Some("http://h:1".to_owned())
        );
    }
}
