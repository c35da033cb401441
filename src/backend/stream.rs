//! What every backend shares: the HTTP client and its URL rules, one measured request/response
//! exchange on a monotonic clock (deadline, stall detection, size cap, drain after the final
//! chunk), the line splitter the stream parsers sit on, TTFT/ITL bookkeeping, bounded JSON GETs
//! for provenance calls, and the mapping of transport failures to [`ErrorKind`]s.
//!
//! # The size cap
//! [`LlmRequest::max_response_bytes`] bounds everything one reply can make the client hold, and
//! a reply that would go past it fails with [`ErrorKind::TooLarge`]:
//! - the body on the wire: every line is charged its bytes including its terminator, and the
//!   lines read plus the pending bytes may not exceed the cap (not streamed: the whole body);
//! - hence the number of chunks: a chunk is a line, so a stream of tiny chunks (one-byte
//!   tokens, empty deltas, SSE comments) runs into the cap as surely as one big line, and the
//!   chunk count is at most the cap divided by the smallest line a protocol can send (about 30
//!   bytes for a text-bearing Ollama or OpenAI chunk);
//! - the accumulated text ([`TextTimer`]);
//! - the inter-token gaps (`itl_ms`, one `f64` per text chunk after the first): at most
//!   `cap / 8` entries, so their memory never exceeds the cap either. The body charge already
//!   keeps them far below that; the explicit bound holds whatever a protocol's smallest chunk.
//!
//! A wire protocol (Ollama NDJSON, OpenAI SSE) plugs in through [`Protocol`]: it sees each
//! complete line as it arrives, says when the reply is complete, and maps non-2xx statuses.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Map, Value};

pub use super::lines::{LineSplitter, Overflow};
use super::raw::RawHttp;
use super::{ErrorKind, LlmRequest, RequestError, RequestRecord};
use crate::manifest::Api;

/// Longest error message kept from a response body, in characters.
pub(super) const MAX_ERROR_CHARS: usize = 500;
/// Most bytes read from an error (non-2xx) body.
pub(super) const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Timeout of the provenance calls (`version`, `model_digest`, model lists).
pub(super) const META_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest provenance reply accepted (the model list of a big server is a few hundred KiB).
pub(super) const META_MAX_BYTES: usize = 8 * 1024 * 1024;
/// After the final chunk, how long to wait for the end of the body before giving up on it.
const DRAIN_AFTER_DONE: Duration = Duration::from_secs(1);

/// Failure to build a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an absolute `http://` URL.
    #[error("invalid server base URL `{url}`: {reason}")]
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

/// A pooled HTTP client (idle connections kept 2 s) for the server at `base_url`, the base
/// without a trailing `/`, and the parsed URL (for the measured requests' client).
/// Only plain `http` is supported (no TLS is compiled in); system proxies are ignored (a
/// benchmark talks to its server directly); no client-wide timeout (each call sets its own).
pub(super) fn http_client(
    base_url: &str,
    reuse_connections: bool,
) -> Result<(reqwest::Client, String, reqwest::Url), ClientError> {
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
    let mut builder = reqwest::Client::builder();
    if !reuse_connections {
        // llama-server closes a connection right after a streamed reply; a pooled one would
        // race that close and fail the next request before it is measured. (This client
        // makes the metadata calls; the measured requests follow the same rule in `raw.rs`.)
        builder = builder.pool_max_idle_per_host(0);
    }
    let http = builder
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        // Shorter than any server's keep-alive (llama-server closes idle connections after
        // 5 s): a pooled connection the server already closed would fail the next request
        // ("connection closed before message completed") instead of measuring it.
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| ClientError::Build(error_chain(&e)))?;
    let base = url.as_str().trim_end_matches('/').to_owned();
    Ok((http, base, url))
}

/// The part of a request body every protocol sends: `model`, `prompt` (generate) or one user
/// message in `messages` (chat), and `stream`.
pub(super) fn base_body(req: &LlmRequest) -> Map<String, Value> {
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
    m
}

/// The HTTP side of one server: a client (see [`http_client`]), the base URL without a
/// trailing `/`, and how the server's protocol reads a non-2xx status.
#[derive(Debug, Clone)]
pub(super) struct ServerHttp {
    http: reqwest::Client,
    /// The measured requests' client (see [`super::raw`]).
    raw: Arc<RawHttp>,
    base: String,
    status_error: fn(StatusCode, &[u8]) -> RequestError,
}

impl ServerHttp {
    /// The server at `base_url` (see [`http_client`]).
    pub(super) fn new(
        base_url: &str,
        reuse_connections: bool,
        status_error: fn(StatusCode, &[u8]) -> RequestError,
    ) -> Result<Self, ClientError> {
        let (http, base, url) = http_client(base_url, reuse_connections)?;
        Ok(ServerHttp {
            http,
            raw: RawHttp::new(&url, reuse_connections).map_err(|reason| {
                ClientError::InvalidUrl {
                    url: base_url.to_owned(),
                    reason,
                }
            })?,
            base,
            status_error,
        })
    }

    /// The base URL (no trailing `/`).
    pub(super) fn base(&self) -> &str {
        &self.base
    }

    /// A measured POST of a JSON body to the base URL + `path`, accepting `accept`: sent with
    /// [`measure_json`] on the lean client (see [`super::raw`]).
    pub(super) fn measured_post(&self, path: &'static str, accept: &'static str) -> Post {
        Post {
            raw: self.raw.clone(),
            path,
            accept,
        }
    }

    /// A POST of a JSON body to the base URL + `path`.
    pub(super) fn post_json(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
    }
}

/// A measured POST (see [`ServerHttp::measured_post`]), before its body.
#[derive(Debug)]
pub(super) struct Post {
    raw: Arc<RawHttp>,
    path: &'static str,
    accept: &'static str,
}

/// Sends `body` with `request` (see [`ServerHttp::measured_post`]) and measures it (see [`measure`]). Never
/// fails: a body that cannot be encoded gives the record of a request never sent.
pub(super) async fn measure_json<P: Protocol>(
    request: Post,
    body: &Value,
    req: &LlmRequest,
    protocol: impl FnOnce(Instant) -> P,
) -> RequestRecord {
    let body = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => {
            return RequestRecord {
                sent_at_unix_ms: crate::util::clock::now_unix_ms(),
                error: Some(err(
                    ErrorKind::BadRequest,
                    None,
                    format!("cannot encode the request: {e}"),
                )),
                ..RequestRecord::default()
            };
        }
    };
    measure(request, body, req, protocol).await
}

/// A wire protocol's reading of one response body.
/// What feeding bytes to a reply's parser gives: nothing, or why the reply is broken.
pub(crate) type Fed = Result<(), RequestError>;

/// `bytes` (a `what`: a line, a chunk) parsed as JSON; a malformed-response error quoting
/// their start otherwise.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, RequestError> {
    serde_json::from_slice(bytes).map_err(|e| {
        err(
            ErrorKind::MalformedResponse,
            None,
            format!("invalid JSON {what} ({e}): {}", lossy_prefix(bytes)),
        )
    })
}

pub(crate) trait Protocol {
    /// Handles one complete line (without `\n` and a trailing `\r`) that arrived at `at`.
    /// Only called for streamed requests.
    fn on_line(&mut self, line: &[u8], at: Instant, rec: &mut RequestRecord) -> Fed;
    /// True once the reply is complete (final chunk or end marker seen).
    fn done(&self) -> bool;
    /// The body ended and [`Protocol::done`] is false: `rest` holds the bytes after the last
    /// newline (streamed) or the whole body (not streamed). Completes the reply, or says why
    /// it is incomplete.
    fn finish(&mut self, rest: &[u8], end: Instant, rec: &mut RequestRecord) -> Fed;
    /// The end marker, for messages (`done: true`, `data: [DONE]`).
    fn end_marker(&self) -> &'static str;
    /// Maps a non-2xx status and its body.
    fn status_error(&self, status: StatusCode, body: &[u8]) -> RequestError;
}

/// Sends `request` and measures it into a fresh record. Never fails: errors are in the
/// record. `t0` is taken right before the request is handed to the HTTP stack; `protocol`
/// is built with it.
pub(super) async fn measure<P: Protocol>(
    request: Post,
    body: Vec<u8>,
    req: &LlmRequest,
    protocol: impl FnOnce(Instant) -> P,
) -> RequestRecord {
    let mut rec = RequestRecord {
        sent_at_unix_ms: crate::util::clock::now_unix_ms(),
        ..RequestRecord::default()
    };
    let t0 = Instant::now();
    let mut proto = protocol(t0);
    let deadline = t0
        .checked_add(req.timeout)
        .map(tokio::time::Instant::from_std);
    let mut status = None;
    let result = exchange(
        (request, body, t0),
        req,
        deadline,
        &mut proto,
        &mut rec,
        &mut status,
    )
    .await;
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

/// Sends `request` and reads the reply into `rec`; returns the instant the response ended.
/// `status` is set as soon as a response head arrives.
async fn exchange<P: Protocol>(
    (request, body, t0): (Post, Vec<u8>, Instant),
    req: &LlmRequest,
    deadline: Option<tokio::time::Instant>,
    proto: &mut P,
    rec: &mut RequestRecord,
    status: &mut Option<u16>,
) -> Result<Instant, RequestError> {
    let sent = request.raw.post(request.path, request.accept, &body);
    let mut resp = match within(deadline, sent).await {
        Err(()) => return Err(timeout_error(None, req.timeout)),
        Ok(Err(e)) => return Err(raw_send_error(&e)),
        Ok(Ok(r)) => r,
    };
    let code = StatusCode::from_u16(resp.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    *status = Some(resp.status());
    if !code.is_success() {
        let cap = req.max_response_bytes.min(MAX_ERROR_BODY_BYTES);
        let mut body = Vec::new();
        while body.len() < cap {
            match within(deadline, resp.chunk()).await {
                Ok(Ok(Some((b, _)))) => body.extend_from_slice(&b),
                _ => break,
            }
        }
        body.truncate(cap);
        return Err(proto.status_error(code, &body));
    }

    // Bounds the whole body, not only one line: see the module's "size cap".
    let mut lines = LineSplitter::new(req.max_response_bytes);
    let mut done_at: Option<Instant> = None;
    let mut last_bytes_at = Instant::now();
    let mut arrived: Option<Instant> = None;
    loop {
        // After the final chunk only the end of the body is awaited, briefly.
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
                None if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(err(
                        ErrorKind::MalformedResponse,
                        None,
                        format!("the reply's body is not valid HTTP/1.1 framing: {e}"),
                    ));
                }
                None => {
                    return Err(err(
                        ErrorKind::Truncated,
                        None,
                        format!("the connection failed before `{}`: {e}", proto.end_marker(),),
                    ));
                }
            },
            Ok(Ok(None)) => break,
            Ok(Ok(Some(b))) => b,
        };
        // Lines are timed by the arrival of the bytes that brought them (see
        // `RawResponse::chunk`): never later than their read, never before the request.
        let (bytes, now) = (bytes.0, bytes.1.min(now).max(t0));
        last_bytes_at = now;
        arrived = Some(now);
        if done_at.is_some() {
            continue; // ignore anything after the final chunk
        }
        lines.feed(&bytes);
        if req.stream {
            while let Some(line) = lines
                .next_line()
                .map_err(|o| too_large(o, req, rec.chunks))?
            {
                proto.on_line(&line, now, rec)?;
                if proto.done() {
                    done_at = Some(now);
                    break;
                }
            }
        } else {
            // A non-streamed reply is one object; only its size is checked until the end.
            lines
                .check_pending()
                .map_err(|o| too_large(o, req, rec.chunks))?;
        }
    }
    // The body ended with the arrival of its last bytes.
    let end = arrived.unwrap_or_else(Instant::now);
    if done_at.is_none() {
        let rest = lines.take_rest();
        proto.finish(&rest, end, rec)?;
    }
    Ok(end)
}

/// Client TTFT/ITL bookkeeping and the bounded text of one reply.
///
/// TTFT: `t0` → arrival of the first chunk with non-empty text; ITL: the gaps between
/// consecutive text-bearing chunks (chunks that arrived in the same read share its arrival
/// time, so their gap is 0). Not streamed: only the text is kept.
///
/// Both are bounded by the same cap `max_text` (the request's `max_response_bytes`): the text
/// holds at most `max_text` bytes, and `itl_ms` at most `max_text / 8` entries (8 bytes each);
/// the chunk that would go past either fails the request with [`ErrorKind::TooLarge`].
#[derive(Debug)]
pub(super) struct TextTimer {
    t0: Instant,
    stream: bool,
    max_text: usize,
    /// Most `itl_ms` entries: `max_text / size_of::<f64>()`.
    max_itl: usize,
    last_text_at: Option<Instant>,
}

impl TextTimer {
    pub(super) fn new(t0: Instant, stream: bool, max_text: usize) -> Self {
        TextTimer {
            t0,
            stream,
            max_text,
            max_itl: max_itl_entries(max_text),
            last_text_at: None,
        }
    }

    /// Records the text of one chunk that arrived at `at` (empty text is not a token).
    pub(super) fn on_text(
        &mut self,
        text: &str,
        at: Instant,
        rec: &mut RequestRecord,
    ) -> Result<(), RequestError> {
        if text.is_empty() {
            return Ok(());
        }
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
        if self.stream && self.last_text_at.is_some() && rec.itl_ms.len() >= self.max_itl {
            return Err(err(
                ErrorKind::TooLarge,
                None,
                format!(
                    "more than {} text chunks: their inter-token gaps (8 bytes each) exceed the cap of {} bytes",
                    self.max_itl + 1,
                    self.max_text
                ),
            ));
        }
        rec.text.push_str(text);
        if self.stream {
            match self.last_text_at {
                None => rec.ttft_ms = Some(ms_between(self.t0, at)),
                Some(prev) => rec.itl_ms.push(ms_between(prev, at)),
            }
            self.last_text_at = Some(at);
        }
        Ok(())
    }
}

/// The most inter-token gaps one reply under a cap of `max_bytes` may record: one `f64` each,
/// so their memory stays within the cap.
pub(super) fn max_itl_entries(max_bytes: usize) -> usize {
    max_bytes / std::mem::size_of::<f64>()
}

/// `f` bounded by `deadline` (none: unbounded); `Err(())` when the deadline passed.
pub(super) async fn within<F: Future>(
    deadline: Option<tokio::time::Instant>,
    f: F,
) -> Result<F::Output, ()> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, f).await.map_err(|_| ()),
        None => Ok(f.await),
    }
}

/// Reads at most `cap` bytes of an error body (best effort: a failure or the deadline ends it).
pub(super) async fn read_error_body(
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

/// The error of a metadata reply without the expected array.
fn no_array(key: &str, path: &str) -> RequestError {
    err(
        ErrorKind::MalformedResponse,
        Some(200),
        format!("no `{key}` array in the {path} reply"),
    )
}

impl ServerHttp {
    /// The array `key` of the JSON object at `path` (see [`ServerHttp::get_json`]); a reply
    /// without it is malformed.
    pub(super) async fn get_array(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Vec<Value>, RequestError> {
        match self.get_json(path).await? {
            Value::Object(mut o) => match o.remove(key) {
                Some(Value::Array(items)) => Ok(items),
                _ => Err(no_array(key, path)),
            },
            _ => Err(no_array(key, path)),
        }
    }

    /// GET the base URL + `path` and parse the (bounded) body as JSON; a non-2xx status is
    /// mapped by the server's `status_error`.
    pub(super) async fn get_json(&self, path: &str) -> Result<Value, RequestError> {
        let url = format!("{}{path}", self.base);
        self.json_reply(self.http.get(url), META_TIMEOUT, META_MAX_BYTES)
            .await
    }

    /// POST `body` to the base URL + `path` and parse the reply as JSON, within `timeout` and
    /// at most `max_bytes` of body; a non-2xx status is mapped by the server's `status_error`.
    pub(super) async fn post_for_json(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Value, RequestError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            err(
                ErrorKind::BadRequest,
                None,
                format!("cannot encode the request: {e}"),
            )
        })?;
        self.json_reply(self.post_json(path).body(bytes), timeout, max_bytes)
            .await
    }

    /// Sends `request` and parses its (bounded) body as JSON.
    async fn json_reply(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Value, RequestError> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .map(tokio::time::Instant::from_std);
        let mut resp = match within(deadline, request.send()).await {
            Err(()) => return Err(timeout_error(None, timeout)),
            Ok(Err(e)) => return Err(send_error(&e)),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if !status.is_success() {
            let body = read_error_body(&mut resp, MAX_ERROR_BODY_BYTES, deadline).await;
            return Err((self.status_error)(status, &body));
        }
        let mut body = Vec::new();
        loop {
            match within(deadline, resp.chunk()).await {
                Err(()) => return Err(timeout_error(Some(status.as_u16()), timeout)),
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
                    if body.len() > max_bytes {
                        return Err(err(
                            ErrorKind::TooLarge,
                            Some(status.as_u16()),
                            format!("reply larger than {max_bytes} bytes"),
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

pub(super) fn err(kind: ErrorKind, status: Option<u16>, message: String) -> RequestError {
    RequestError {
        kind,
        status,
        message,
    }
}

pub(super) fn timeout_error(status: Option<u16>, timeout: Duration) -> RequestError {
    err(
        ErrorKind::Timeout,
        status,
        format!(
            "no complete response within the timeout of {} ms",
            timeout.as_millis()
        ),
    )
}

/// The error of a body the [`LineSplitter`] refused, `chunks` chunks into the reply.
pub(super) fn too_large(overflow: Overflow, req: &LlmRequest, chunks: u32) -> RequestError {
    let cap = req.max_response_bytes;
    let message = match overflow {
        Overflow::Line(len) => {
            format!("a response line of at least {len} bytes exceeds the cap of {cap} bytes")
        }
        Overflow::Body(total) => format!(
            "the response body reached {total} bytes after {chunks} chunk(s), which exceeds the cap of {cap} bytes"
        ),
    };
    err(ErrorKind::TooLarge, None, message)
}

/// Maps a failure of the lean client before any response arrived.
fn raw_send_error(e: &super::raw::SendError) -> RequestError {
    use super::raw::SendFailure;
    let (kind, what) = match e.kind {
        SendFailure::Connect => (ErrorKind::ConnectionRefused, "cannot connect"),
        SendFailure::ConnectTimeout => (ErrorKind::Timeout, "cannot connect"),
        SendFailure::NoReply => (ErrorKind::ConnectionRefused, "no response"),
        SendFailure::BadHead => (ErrorKind::MalformedResponse, "no HTTP reply"),
    };
    err(kind, None, format!("{what}: {}", e.message))
}

/// Maps a failure before any response arrived.
pub(super) fn send_error(e: &reqwest::Error) -> RequestError {
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

/// Maps a non-2xx status and its error `message`: 404 is a missing model when
/// `model_missing` (the server says so), 400 a bad request, 503 a full queue (Ollama busy,
/// llama-server "Loading model" while it starts, vLLM overloaded: retryable), other 5xx a
/// server error, anything else an HTTP status.
pub(super) fn map_status(status: StatusCode, message: String, model_missing: bool) -> RequestError {
    let kind = match status.as_u16() {
        404 if model_missing => ErrorKind::ModelNotFound,
        400 => ErrorKind::BadRequest,
        503 => ErrorKind::QueueFull,
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::HttpStatus,
    };
    err(kind, Some(status.as_u16()), message)
}

/// A streamed body that ended inside a line: `rest` holds the bytes after the last newline.
pub(super) fn cut_mid_line(rest: &[u8]) -> RequestError {
    err(
        ErrorKind::Truncated,
        None,
        format!(
            "the stream ended inside a line ({} bytes after the last newline)",
            rest.len()
        ),
    )
}

/// The text of an error body: its `error` string, `error.message`, a top-level `message`
/// (vLLM's older envelope), or the body itself; trimmed and bounded, `HTTP <status>` when empty.
pub(super) fn error_message(status: StatusCode, body: &[u8]) -> String {
    let message = match serde_json::from_slice::<Value>(body) {
        Ok(v) => match v.get("error") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => o
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| Value::Object(o.clone()).to_string(), str::to_owned),
            Some(other) => other.to_string(),
            None => match v.get("message").and_then(Value::as_str) {
                Some(m) => m.to_owned(),
                None => String::from_utf8_lossy(body).into_owned(),
            },
        },
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let message = message.trim();
    if message.is_empty() {
        format!("HTTP {status}")
    } else {
        truncate_chars(message)
    }
}

/// At most [`MAX_ERROR_CHARS`] characters of `s`, with `…` when cut.
pub(super) fn truncate_chars(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The start of a line, for messages.
pub(super) fn lossy_prefix(line: &[u8]) -> String {
    truncate_chars(&String::from_utf8_lossy(
        &line[..line.len().min(4 * MAX_ERROR_CHARS)],
    ))
}

/// `e` and its sources, `: `-separated.
pub(super) fn error_chain(e: &dyn StdError) -> String {
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

pub(super) fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

fn ms_since(from: Instant) -> f64 {
    from.elapsed().as_secs_f64() * 1000.0
}

/// A streamed request of `model` for the protocols' unit tests.
#[cfg(test)]
pub(super) fn test_request(api: Api, model: &str, options: crate::manifest::Options) -> LlmRequest {
    LlmRequest {
        api,
        model: model.into(),
        prompt: "hi".into(),
        stream: true,
        options,
        keep_alive: None,
        timeout: Duration::from_secs(5),
        max_response_bytes: 1 << 20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let kind = |code: u16, missing: bool| {
            let status = StatusCode::from_u16(code).expect("status");
            map_status(status, String::new(), missing).kind
        };
        assert_eq!(kind(404, true), ErrorKind::ModelNotFound);
        assert_eq!(kind(404, false), ErrorKind::HttpStatus);
        assert_eq!(kind(400, false), ErrorKind::BadRequest);
        assert_eq!(kind(503, false), ErrorKind::QueueFull);
        assert_eq!(kind(502, false), ErrorKind::ServerError);
        assert_eq!(kind(429, false), ErrorKind::HttpStatus);
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
        s.feed(b"abc\nabcde\n");
        assert_eq!(s.next_line(), Ok(Some(b"abc".to_vec())));
        assert_eq!(s.next_line(), Err(Overflow::Line(5)));
        let mut s = LineSplitter::new(4);
        s.feed(b"abc");
        assert_eq!(s.next_line(), Ok(None));
        s.feed(b"de");
        assert_eq!(s.next_line(), Err(Overflow::Line(5)));
    }

    #[test]
    fn many_short_lines_are_refused_once_the_body_passes_the_cap() {
        // Ten bytes: "a\n" four times (8 bytes) fits, the fifth line does not.
        let mut s = LineSplitter::new(9);
        s.feed(b"a\na\na\na\na\n");
        for _ in 0..4 {
            assert_eq!(s.next_line(), Ok(Some(b"a".to_vec())));
        }
        assert_eq!(s.next_line(), Err(Overflow::Body(10)));
        // Pending bytes count with the lines already returned.
        let mut s = LineSplitter::new(9);
        s.feed(b"abcd\nabcde");
        assert_eq!(s.next_line(), Ok(Some(b"abcd".to_vec())));
        assert_eq!(s.next_line(), Err(Overflow::Body(10)));
        assert_eq!(s.check_pending(), Err(Overflow::Body(10)));
    }

    #[test]
    fn inter_token_gaps_are_bounded_by_the_cap() {
        // A 64-byte cap: 64 one-byte texts fit the text cap, but only 8 gaps (8 bytes each)
        // fit the cap, so the tenth text chunk fails.
        let t0 = Instant::now();
        let mut timer = TextTimer::new(t0, true, 64);
        let mut rec = RequestRecord::default();
        let mut failed = None;
        for i in 0..64u64 {
            if let Err(e) = timer.on_text("a", t0 + Duration::from_millis(i), &mut rec) {
                failed = Some((i, e.kind));
                break;
            }
        }
        assert_eq!(failed, Some((9, ErrorKind::TooLarge)));
        assert_eq!(rec.itl_ms.len(), max_itl_entries(64));
        assert_eq!(rec.text.len(), 9);
        // Not streamed: no gaps are recorded, only the text cap applies.
        let mut timer = TextTimer::new(t0, false, 64);
        let mut rec = RequestRecord::default();
        for _ in 0..64 {
            timer
                .on_text("a", t0, &mut rec)
                .expect("within the text cap");
        }
        assert!(rec.itl_ms.is_empty());
    }

    #[test]
    fn error_messages_from_every_envelope() {
        let st = StatusCode::NOT_FOUND;
        assert_eq!(
            error_message(st, br#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(
            error_message(
                st,
                br#"{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}"#
            ),
            "File Not Found"
        );
        assert_eq!(
            error_message(st, br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","code":404}"#),
            "The model `x` does not exist."
        );
        assert_eq!(error_message(st, b"  plain  "), "plain");
        assert_eq!(error_message(st, b""), "HTTP 404 Not Found");
    }

    #[test]
    fn client_rejects_bad_urls() {
        assert!(http_client("http://127.0.0.1:11434/", true).is_ok());
        assert!(http_client("https://x", true).is_err());
        assert!(http_client("127.0.0.1:11434", true).is_err());
        assert!(http_client("http://h:1/?q=1", true).is_err());
        assert_eq!(
            http_client("http://h:1/", true).map(|c| c.1).ok(),
            Some("http://h:1".to_owned())
        );
    }
}
