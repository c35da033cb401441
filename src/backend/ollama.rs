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
//! The body is parsed line by line as bytes arrive ([`reqwest::Response::chunk`]); the pending
//! line and the accumulated text are both bounded by `max_response_bytes`.
//!
//! Timeout: `req.timeout` bounds the whole request (a deadline at `t0 + timeout`), and every
//! wait for bytes (headers or body) is bounded by that deadline, so a stall of `timeout`
//! without bytes always fails too. Ollama sends no headers before its first chunk, so the
//! wait for the response head counts as a wait for bytes.

use std::error::Error as StdError;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ErrorKind, LlmRequest, RequestError, RequestRecord};
use crate::manifest::{Api, Options};

/// Longest error message kept from a response body, in characters.
const MAX_ERROR_CHARS: usize = 500;
/// Most bytes read from an error (non-2xx) body.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Timeout of the provenance calls ([`OllamaClient::version`], [`OllamaClient::model_digest`]).
const META_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest provenance reply accepted (the model list of a big server is a few hundred KiB).
const META_MAX_BYTES: usize = 8 * 1024 * 1024;
/// After `done: true`, how long to wait for the end of the body before giving up on it.
const DRAIN_AFTER_DONE: Duration = Duration::from_secs(1);

/// Failure to build a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an absolute `http://` URL.
    #[error("invalid Ollama base URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// Client of one Ollama server (pooled connections, no client-wide timeout).
#[derive(Debug, Clone)]
pub struct OllamaClient {
    http: reqwest::Client,
    /// Base URL without a trailing `/`, e.g. `http://127.0.0.1:11434`.
    base: String,
}

impl OllamaClient {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:11434`). Only plain
    /// `http` is supported (no TLS is compiled in). System proxies are ignored: a benchmark
    /// talks to its server directly.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let url = reqwest::Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if url.scheme() != "http" {
            return Err(invalid(format!(
                "scheme `{}` is not supported (only http)",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host".to_owned()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a query or fragment is not allowed".to_owned()));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| ClientError::Build(error_chain(&e)))?;
        Ok(OllamaClient {
            http,
            base: url.as_str().trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL (no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request and measures it. Never fails: errors are in the record.
    pub async fn send(&self, req: &LlmRequest) -> RequestRecord {
        let mut rec = RequestRecord::default();
        let body = match serde_json::to_vec(&request_body(req)) {
            Ok(b) => b,
            Err(e) => {
                rec.sent_at_unix_ms = unix_ms_now();
                rec.error = Some(err(
                    ErrorKind::BadRequest,
                    None,
                    format!("cannot encode the request: {e}"),
                ));
                return rec;
            }
        };
        let url = format!("{}{}", self.base, api_path(req.api));
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);

        rec.sent_at_unix_ms = unix_ms_now();
        let t0 = Instant::now();
        let deadline = t0
            .checked_add(req.timeout)
            .map(tokio::time::Instant::from_std);
        let mut status = None;
        let result = exchange(request, req, t0, deadline, &mut rec, &mut status).await;
        match result {
            Ok(end) => rec.e2e_ms = ms_between(t0, end),
            Err(mut e) => {
                rec.e2e_ms = ms_since(t0);
                e.status = e.status.or(status);
                rec.error = Some(e);
            }
        }
        rec
    }

    /// The server's version (`GET /api/version`), e.g. `0.33.0`.
    pub async fn version(&self) -> Result<String, RequestError> {
        let v = self.get_json("/api/version").await?;
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
        self.get_json("/api/version")
            .await
            .ok()
            .and_then(|v| v.get("chimera_emulator").and_then(Value::as_bool))
            .unwrap_or(false)
    }

    /// The digest of a local model (`GET /api/tags`), matching `name` or `model` against
    /// `model` (case-insensitive), also as `model:latest` when `model` has no tag. `None` when
    /// the server does not have the model or lists no digest for it.
    pub async fn model_digest(&self, model: &str) -> Result<Option<String>, RequestError> {
        let v = self.get_json("/api/tags").await?;
        let Some(models) = v.get("models").and_then(Value::as_array) else {
            return Err(err(
                ErrorKind::MalformedResponse,
                Some(200),
                "no `models` array in the /api/tags reply".to_owned(),
            ));
        };
        Ok(find_digest(models, model))
    }

    /// GET `path` and parse the (bounded) body as JSON.
    async fn get_json(&self, path: &str) -> Result<Value, RequestError> {
        let url = format!("{}{}", self.base, path);
        let deadline = Instant::now()
            .checked_add(META_TIMEOUT)
            .map(tokio::time::Instant::from_std);
        let mut resp = match within(deadline, self.http.get(url).send()).await {
            Err(()) => return Err(timeout_error(None, META_TIMEOUT)),
            Ok(Err(e)) => return Err(send_error(&e)),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if !status.is_success() {
            let body = read_error_body(&mut resp, MAX_ERROR_BODY_BYTES, deadline).await;
            return Err(status_error(status, &body));
        }
        let mut body = Vec::new();
        loop {
            match within(deadline, resp.chunk()).await {
                Err(()) => return Err(timeout_error(Some(status.as_u16()), META_TIMEOUT)),
                Ok(Err(e)) => {
                    return Err(err(
                        ErrorKind::Truncated,
                        Some(status.as_u16()),
                        format!("reading the body failed: {}", error_chain(&e)),
                    ));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(b))) => {
                    body.extend_from_slice(&b);
                    if body.len() > META_MAX_BYTES {
                        return Err(err(
                            ErrorKind::TooLarge,
                            Some(status.as_u16()),
                            format!("reply larger than {META_MAX_BYTES} bytes"),
                        ));
                    }
                }
            }
        }
        serde_json::from_slice(&body).map_err(|e| {
            err(
                ErrorKind::MalformedResponse,
                Some(status.as_u16()),
                format!("invalid JSON: {e}"),
            )
        })
    }
}

/// Sends `request` and reads the reply into `rec`; returns the instant the response ended.
/// `status` is set as soon as a response head arrives.
async fn exchange(
    request: reqwest::RequestBuilder,
    req: &LlmRequest,
    t0: Instant,
    deadline: Option<tokio::time::Instant>,
    rec: &mut RequestRecord,
    status: &mut Option<u16>,
) -> Result<Instant, RequestError> {
    let mut resp = match within(deadline, request.send()).await {
        Err(()) => return Err(timeout_error(None, req.timeout)),
        Ok(Err(e)) => return Err(send_error(&e)),
        Ok(Ok(r)) => r,
    };
    let code = resp.status();
    *status = Some(code.as_u16());
    if !code.is_success() {
        let cap = req.max_response_bytes.min(MAX_ERROR_BODY_BYTES);
        let body = read_error_body(&mut resp, cap, deadline).await;
        return Err(status_error(code, &body));
    }

    let mut lines = LineSplitter::new(req.max_response_bytes);
    let mut state = StreamState::new(req.api, req.stream, req.max_response_bytes, t0);
    let mut done_at: Option<Instant> = None;
    let mut last_bytes_at = Instant::now();
    loop {
        // After `done: true` only the end of the body is awaited, briefly.
        let wait_until = match done_at {
            Some(at) => {
                let drain = tokio::time::Instant::from_std(at + DRAIN_AFTER_DONE);
                Some(deadline.map_or(drain, |d| d.min(drain)))
            }
            None => deadline,
        };
        let next = within(wait_until, resp.chunk()).await;
        let now = Instant::now();
        let bytes = match next {
            Err(()) => match done_at {
                Some(at) => return Ok(at),
                None => {
                    let mut e = timeout_error(Some(code.as_u16()), req.timeout);
                    e.message.push_str(&format!(
                        " (no byte for the last {:.0} ms, {} chunk(s) received)",
                        ms_between(last_bytes_at, now),
                        rec.chunks
                    ));
                    return Err(e);
                }
            },
            Ok(Err(e)) => match done_at {
                Some(at) => return Ok(at),
                None => {
                    return Err(err(
                        ErrorKind::Truncated,
                        None,
                        format!(
                            "the connection failed before `done: true`: {}",
                            error_chain(&e)
                        ),
                    ));
                }
            },
            Ok(Ok(None)) => break,
            Ok(Ok(Some(b))) => b,
        };
        last_bytes_at = now;
        if done_at.is_some() {
            continue; // ignore anything after the final chunk
        }
        lines.feed(&bytes);
        if req.stream {
            while let Some(line) = lines.next_line().map_err(|n| too_large_line(n, req))? {
                state.on_line(&line, now, rec)?;
                if state.done {
                    done_at = Some(now);
                    break;
                }
            }
        } else {
            // The non-streamed reply is one object; only its size is checked until the end.
            lines.check_pending().map_err(|n| too_large_line(n, req))?;
        }
    }
    let end = Instant::now();
    if done_at.is_none() {
        let rest = lines.take_rest();
        if !rest.iter().all(u8::is_ascii_whitespace) {
            if req.stream {
                // A partial last line: the stream was cut mid-object, unless it happens to be
                // complete JSON without its newline.
                if serde_json::from_slice::<Value>(&rest).is_err() {
                    return Err(err(
                        ErrorKind::Truncated,
                        None,
                        format!(
                            "the stream ended inside a line ({} bytes after the last newline)",
                            rest.len()
                        ),
                    ));
                }
            }
            state.on_line(&rest, end, rec)?;
        }
        if !state.done {
            return Err(err(
                ErrorKind::Truncated,
                None,
                format!(
                    "the stream ended without `done: true` after {} chunk(s)",
                    rec.chunks
                ),
            ));
        }
    }
    Ok(end)
}

/// `f` bounded by `deadline` (none: unbounded); `Err(())` when the deadline passed.
async fn within<F: Future>(deadline: Option<tokio::time::Instant>, f: F) -> Result<F::Output, ()> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, f).await.map_err(|_| ()),
        None => Ok(f.await),
    }
}

/// Reads at most `cap` bytes of an error body (best effort: a failure or the deadline ends it).
async fn read_error_body(
    resp: &mut reqwest::Response,
    cap: usize,
    deadline: Option<tokio::time::Instant>,
) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < cap {
        match within(deadline, resp.chunk()).await {
            Ok(Ok(Some(b))) => body.extend_from_slice(&b),
            _ => break,
        }
    }
    body.truncate(cap);
    body
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
    let mut m = Map::new();
    m.insert("model".into(), Value::String(req.model.clone()));
    match req.api {
        Api::Generate => {
            m.insert("prompt".into(), Value::String(req.prompt.clone()));
        }
        Api::Chat => {
            m.insert(
                "messages".into(),
                serde_json::json!([{"role": "user", "content": req.prompt}]),
            );
        }
    }
    m.insert("stream".into(), Value::Bool(req.stream));
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

/// Splits a byte stream into `\n`-terminated lines; a line longer than `max` is an error.
#[derive(Debug)]
struct LineSplitter {
    buf: Vec<u8>,
    /// Start of the unconsumed part of `buf`.
    start: usize,
    /// Bytes of `buf[start..]` already known to hold no newline.
    scanned: usize,
    max: usize,
}

impl LineSplitter {
    fn new(max: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max,
        }
    }

    /// Appends bytes.
    fn feed(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete line (without `\n` and a trailing `\r`), `Ok(None)` when none is
    /// complete yet, `Err(len)` when a line exceeds the limit.
    fn next_line(&mut self) -> Result<Option<Vec<u8>>, usize> {
        let pending = &self.buf[self.start..];
        match pending[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let len = self.scanned + i;
                if len > self.max {
                    return Err(len);
                }
                let mut line = pending[..len].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.start += len + 1;
                self.scanned = 0;
                Ok(Some(line))
            }
            None => {
                self.scanned = pending.len();
                self.check_pending()?;
                Ok(None)
            }
        }
    }

    /// `Err(len)` when the unconsumed bytes exceed the limit.
    fn check_pending(&self) -> Result<(), usize> {
        let len = self.buf.len() - self.start;
        if len > self.max { Err(len) } else { Ok(()) }
    }

    /// Everything not yet returned as a line.
    fn take_rest(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.start);
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
        rest
    }
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
struct StreamState {
    api: Api,
    stream: bool,
    max_text: usize,
    t0: Instant,
    last_text_at: Option<Instant>,
    done: bool,
}

impl StreamState {
    fn new(api: Api, stream: bool, max_text: usize, t0: Instant) -> Self {
        StreamState {
            api,
            stream,
            max_text,
            t0,
            last_text_at: None,
            done: false,
        }
    }

    /// Handles one line that arrived at `at`. Blank lines are skipped.
    fn on_line(
        &mut self,
        line: &[u8],
        at: Instant,
        rec: &mut RequestRecord,
    ) -> Result<(), RequestError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let chunk: Chunk = serde_json::from_slice(line).map_err(|e| {
            err(
                ErrorKind::MalformedResponse,
                None,
                format!("invalid JSON line ({e}): {}", lossy_prefix(line)),
            )
        })?;
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
        if !text.is_empty() {
            if rec.text.len() + text.len() > self.max_text {
                return Err(err(
                    ErrorKind::TooLarge,
                    None,
                    format!(
                        "the generated text exceeds the cap of {} bytes",
                        self.max_text
                    ),
                ));
            }
            rec.text.push_str(&text);
            if self.stream {
                match self.last_text_at {
                    None => rec.ttft_ms = Some(ms_between(self.t0, at)),
                    Some(prev) => rec.itl_ms.push(ms_between(prev, at)),
                }
                self.last_text_at = Some(at);
            }
        }
        if done {
            self.done = true;
            rec.done_reason = chunk.done_reason;
            rec.load_ms = chunk.load_duration.map(ns_to_ms);
            rec.prompt_tokens = chunk.prompt_eval_count;
            rec.prompt_eval_ms = chunk.prompt_eval_duration.map(ns_to_ms);
            rec.output_tokens = chunk.eval_count;
            rec.eval_ms = chunk.eval_duration.map(ns_to_ms);
            rec.total_ms = chunk.total_duration.map(ns_to_ms);
        }
        Ok(())
    }
}

fn err(kind: ErrorKind, status: Option<u16>, message: String) -> RequestError {
    RequestError {
        kind,
        status,
        message,
    }
}

fn timeout_error(status: Option<u16>, timeout: Duration) -> RequestError {
    err(
        ErrorKind::Timeout,
        status,
        format!(
            "no complete response within the timeout of {} ms",
            timeout.as_millis()
        ),
    )
}

fn too_large_line(len: usize, req: &LlmRequest) -> RequestError {
    err(
        ErrorKind::TooLarge,
        None,
        format!(
            "a response line of at least {len} bytes exceeds the cap of {} bytes",
            req.max_response_bytes
        ),
    )
}

/// Maps a failure before any response arrived.
fn send_error(e: &reqwest::Error) -> RequestError {
    let chain = error_chain(e);
    if e.is_timeout() {
        return err(ErrorKind::Timeout, None, chain);
    }
    // Refused, unreachable, or accepted and closed before a response: the server could not
    // be talked to.
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "no response"
    };
    err(
        ErrorKind::ConnectionRefused,
        None,
        format!("{what}: {chain}"),
    )
}

/// Maps a non-2xx status and its body.
fn status_error(status: StatusCode, body: &[u8]) -> RequestError {
    let kind = match status.as_u16() {
        404 => ErrorKind::ModelNotFound,
        400 => ErrorKind::BadRequest,
        503 => ErrorKind::QueueFull,
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::HttpStatus,
    };
    let message = match serde_json::from_slice::<Value>(body) {
        Ok(v) => match v.get("error") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => o
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| Value::Object(o.clone()).to_string(), str::to_owned),
            Some(other) => other.to_string(),
            None => String::from_utf8_lossy(body).into_owned(),
        },
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let message = message.trim();
    let message = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        truncate_chars(message)
    };
    err(kind, Some(status.as_u16()), message)
}

/// At most [`MAX_ERROR_CHARS`] characters of `s`, with `…` when cut.
fn truncate_chars(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The start of a line, for messages.
fn lossy_prefix(line: &[u8]) -> String {
    truncate_chars(&String::from_utf8_lossy(
        &line[..line.len().min(4 * MAX_ERROR_CHARS)],
    ))
}

/// `e` and its sources, `: `-separated.
fn error_chain(e: &dyn StdError) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

fn ms_since(from: Instant) -> f64 {
    from.elapsed().as_secs_f64() * 1000.0
}

fn unix_ms_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(api: Api, options: Options) -> LlmRequest {
        LlmRequest {
            api,
            model: "m:1b".into(),
            prompt: "hi".into(),
            stream: true,
            options,
            keep_alive: None,
            timeout: Duration::from_secs(5),
            max_response_bytes: 1 << 20,
        }
    }

    fn lines_of(s: &mut LineSplitter) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = s.next_line().expect("within limit") {
            out.push(String::from_utf8(l).expect("utf8"));
        }
        out
    }

    #[test]
    fn lines_split_across_chunk_boundaries() {
        let mut s = LineSplitter::new(1024);
        s.feed(b"{\"a\":1}\n{\"b\"");
        assert_eq!(lines_of(&mut s), vec!["{\"a\":1}"]);
        s.feed(b":2");
        assert!(lines_of(&mut s).is_empty());
        s.feed(b"}\r\n\n{\"c\":3}\n{\"d\"");
        assert_eq!(lines_of(&mut s), vec!["{\"b\":2}", "", "{\"c\":3}"]);
        assert_eq!(s.take_rest(), b"{\"d\"".to_vec());
    }

    #[test]
    fn byte_by_byte_feeding_gives_the_same_lines() {
        let data = b"one\ntwo\n\nthree\n";
        let mut s = LineSplitter::new(16);
        let mut got = Vec::new();
        for b in data {
            s.feed(&[*b]);
            got.extend(lines_of(&mut s));
        }
        assert_eq!(got, vec!["one", "two", "", "three"]);
        assert!(s.take_rest().is_empty());
    }

    #[test]
    fn a_long_line_is_refused_whole_or_partial() {
        let mut s = LineSplitter::new(4);
        s.feed(b"abcd\nabcde\n");
        assert_eq!(s.next_line(), Ok(Some(b"abcd".to_vec())));
        assert_eq!(s.next_line(), Err(5));
        let mut s = LineSplitter::new(4);
        s.feed(b"abc");
        assert_eq!(s.next_line(), Ok(None));
        s.feed(b"de");
        assert_eq!(s.next_line(), Err(5));
    }

    #[test]
    fn nanoseconds_to_milliseconds() {
        assert_eq!(ns_to_ms(0), 0.0);
        assert_eq!(ns_to_ms(1_500_000), 1.5);
        assert_eq!(ns_to_ms(312_904_117), 312.904117);
    }

    #[test]
    fn empty_options_send_no_options_key() {
        let body = request_body(&req(Api::Generate, Options::default()));
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
        let mut r = req(Api::Chat, o);
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
        assert_eq!(
            status_error(StatusCode::BAD_GATEWAY, b"").kind,
            ErrorKind::ServerError
        );
        assert_eq!(
            status_error(StatusCode::TOO_MANY_REQUESTS, b"").kind,
            ErrorKind::HttpStatus
        );
        assert_eq!(
            status_error(StatusCode::BAD_REQUEST, b"").kind,
            ErrorKind::BadRequest
        );
        let long = "é".repeat(2000);
        assert_eq!(
            status_error(StatusCode::INTERNAL_SERVER_ERROR, long.as_bytes())
                .message
                .chars()
                .count(),
            MAX_ERROR_CHARS + 1
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
