//! What one request measures ([`Reply`]), how it fails ([`Failure`] with chimera's error
//! kinds), and the pieces the two stream parsers share: TTFT/ITL bookkeeping ([`TextTimer`]),
//! the bounded line splitter ([`LineSplitter`]) and the reading of error bodies. The
//! definitions are chimera's own (`src/backend/stream.rs`), so a record means the same
//! whichever side measured it.

use std::time::Instant;

use chimera::workload::protocol::{AgentRecord, RecordError, RecordStage};
use serde_json::Value;

/// Largest response accepted (body on the wire, text, inter-token gaps), in bytes.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Longest error message kept, in characters.
const MAX_ERROR_CHARS: usize = 500;

/// chimera's error kinds (`RecordError::kind`), with the names chimera stores.
pub(crate) use chimera::backend::ErrorKind as Kind;

/// A failed request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    /// Kind.
    pub(crate) kind: Kind,
    /// HTTP status, when a response head arrived.
    pub(crate) status: Option<u16>,
    /// What went wrong.
    pub(crate) message: String,
}

/// A failure of `kind` without a status.
pub(crate) fn fail(kind: Kind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        status: None,
        message: message.into(),
    }
}

/// What feeding a parser gives: nothing, or why the reply is broken.
pub(crate) type Fed = Result<(), Failure>;

/// A wire protocol's reading of one response body (Ollama NDJSON, OpenAI SSE).
pub(crate) trait Parser {
    /// Handles one complete line (without `\n` and a trailing `\r`) that arrived at `at`.
    /// Only called for streamed requests.
    fn on_line(&mut self, line: &[u8], at: Instant, reply: &mut Reply) -> Fed;
    /// True once the reply is complete (final chunk or end marker seen).
    fn done(&self) -> bool;
    /// The body ended and [`Parser::done`] is false: `rest` holds the bytes after the last
    /// newline (streamed) or the whole body (not streamed). Completes the reply, or says why
    /// it is incomplete.
    fn finish(&mut self, rest: &[u8], end: Instant, reply: &mut Reply) -> Fed;
    /// The end marker, for messages (`done: true`, `data: [DONE]`).
    fn end_marker(&self) -> &'static str;
    /// Maps a non-2xx status, its reason phrase and its body.
    fn status_error(&self, status: u16, reason: &str, body: &[u8]) -> Failure;
}

/// Everything measured of one reply so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reply {
    /// The generated text (the report prompt is built from the analysis text).
    pub(crate) text: String,
    /// Send → first chunk with non-empty text, ms (streamed only).
    pub(crate) ttft_ms: Option<f64>,
    /// Gaps between consecutive text chunks, ms (streamed only).
    pub(crate) itl_ms: Vec<f64>,
    /// Chunks received.
    pub(crate) chunks: u32,
    /// Server prompt tokens.
    pub(crate) prompt_tokens: Option<u64>,
    /// Server output tokens.
    pub(crate) output_tokens: Option<u64>,
    /// Server load time, ms.
    pub(crate) load_ms: Option<f64>,
    /// Server prompt evaluation time, ms.
    pub(crate) prompt_eval_ms: Option<f64>,
    /// Server generation time, ms.
    pub(crate) eval_ms: Option<f64>,
    /// Server total time, ms.
    pub(crate) total_ms: Option<f64>,
    /// `done_reason` / `finish_reason`.
    pub(crate) done_reason: Option<String>,
}

/// One finished request: what was measured, when, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// When the request was sent, ms since the Unix epoch.
    pub(crate) sent_at_unix_ms: f64,
    /// Send → end of the response (or the failure), ms.
    pub(crate) e2e_ms: f64,
    /// The measurements.
    pub(crate) reply: Reply,
    /// The failure, if any.
    pub(crate) error: Option<Failure>,
}

impl Outcome {
    /// A request that failed before it could be sent.
    pub(crate) fn unsent(failure: Failure) -> Self {
        Outcome {
            sent_at_unix_ms: now_unix_ms(),
            e2e_ms: 0.0,
            reply: Reply::default(),
            error: Some(failure),
        }
    }

    /// True when the request succeeded.
    pub(crate) fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// The record line of this request.
    pub(crate) fn record(&self, stage: RecordStage, index: u32) -> AgentRecord {
        let r = &self.reply;
        AgentRecord {
            stage,
            index: Some(index),
            sent_at_unix_ms: self.sent_at_unix_ms,
            ttft_ms: r.ttft_ms,
            e2e_ms: self.e2e_ms,
            chunks: r.chunks,
            itl_ms: r.itl_ms.clone(),
            prompt_tokens: r.prompt_tokens,
            output_tokens: r.output_tokens,
            load_ms: r.load_ms,
            prompt_eval_ms: r.prompt_eval_ms,
            eval_ms: r.eval_ms,
            total_ms: r.total_ms,
            done_reason: r.done_reason.clone(),
            response_chars: Some(r.text.chars().count() as u64),
            files_ingested: None,
            error: self.error.as_ref().map(|e| RecordError {
                kind: e.kind.name().to_owned(),
                message: e.message.clone(),
                status: e.status,
            }),
        }
    }
}

/// Wall-clock now, ms since the Unix epoch.
pub(crate) fn now_unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// `to - from` in ms (0 when `to` is earlier).
pub(crate) fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// Client TTFT/ITL bookkeeping and the bounded text of one reply (chimera's `TextTimer`).
///
/// TTFT: `t0` → arrival of the first chunk with non-empty text; ITL: the gaps between
/// consecutive text chunks (chunks of the same read share its arrival time, so their gap is
/// 0). Not streamed: only the text is kept. The text holds at most `max` bytes and `itl_ms` at
/// most `max / 8` entries; the chunk that would go past either fails with `too_large`.
#[derive(Debug)]
pub(crate) struct TextTimer {
    t0: Instant,
    stream: bool,
    max: usize,
    last_text_at: Option<Instant>,
}

impl TextTimer {
    /// A timer from `t0` (the send).
    pub(crate) fn new(t0: Instant, stream: bool, max: usize) -> Self {
        TextTimer {
            t0,
            stream,
            max,
            last_text_at: None,
        }
    }

    /// Records the text of one chunk that arrived at `at` (empty text is not a token).
    pub(crate) fn on_text(&mut self, text: &str, at: Instant, reply: &mut Reply) -> Fed {
        if text.is_empty() {
            return Ok(());
        }
        if reply.text.len() + text.len() > self.max {
            return Err(fail(
                Kind::TooLarge,
                format!("the generated text exceeds the cap of {} bytes", self.max),
            ));
        }
        let max_itl = self.max / std::mem::size_of::<f64>();
        if self.stream && self.last_text_at.is_some() && reply.itl_ms.len() >= max_itl {
            return Err(fail(
                Kind::TooLarge,
                format!(
                    "more than {} text chunks: their inter-token gaps exceed the cap of {} bytes",
                    max_itl + 1,
                    self.max
                ),
            ));
        }
        reply.text.push_str(text);
        if self.stream {
            match self.last_text_at {
                None => reply.ttft_ms = Some(ms_between(self.t0, at)),
                Some(prev) => reply.itl_ms.push(ms_between(prev, at)),
            }
            self.last_text_at = Some(at);
        }
        Ok(())
    }
}

/// Splits a byte stream into `\n`-terminated lines (a trailing `\r` removed): chimera's own
/// splitter, whose overflow (a line or the whole stream past `max`) is a `too_large` failure.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    inner: chimera::backend::LineSplitter,
    max: usize,
}

impl LineSplitter {
    /// A splitter for a body of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter {
            inner: chimera::backend::LineSplitter::new(max),
            max,
        }
    }

    /// Appends bytes.
    pub(crate) fn feed(&mut self, data: &[u8]) {
        self.inner.feed(data);
    }

    /// The next complete line, `Ok(None)` when none is complete yet.
    pub(crate) fn next_line(&mut self) -> Result<Option<Vec<u8>>, Failure> {
        self.inner.next_line().map_err(|o| self.too_large(o))
    }

    /// An error when the lines returned and the pending bytes exceed the limit.
    pub(crate) fn check_pending(&self) -> Fed {
        self.inner.check_pending().map_err(|o| self.too_large(o))
    }

    fn too_large(&self, o: chimera::backend::Overflow) -> Failure {
        let total = match o {
            chimera::backend::Overflow::Line(n) | chimera::backend::Overflow::Body(n) => n,
        };
        fail(
            Kind::TooLarge,
            format!(
                "the response body reached {total} bytes, which exceeds the cap of {} bytes",
                self.max
            ),
        )
    }

    /// Everything not yet returned as a line.
    pub(crate) fn take_rest(&mut self) -> Vec<u8> {
        self.inner.take_rest()
    }
}

/// Maps a non-2xx status: 404 is a missing model when `model_missing`, 400 a bad request, 503
/// a full queue, other 5xx a server error, anything else an HTTP status.
pub(crate) fn map_status(status: u16, message: String, model_missing: bool) -> Failure {
    let kind = match status {
        404 if model_missing => Kind::ModelNotFound,
        400 => Kind::BadRequest,
        503 => Kind::QueueFull,
        500..=599 => Kind::ServerError,
        _ => Kind::HttpStatus,
    };
    Failure {
        kind,
        status: Some(status),
        message,
    }
}

/// The text of an error body: its `error` string, `error.message`, a top-level `message`, or
/// the body itself; trimmed and bounded, `HTTP <status> <reason>` when empty.
pub(crate) fn error_message(status: u16, reason: &str, body: &[u8]) -> String {
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
        format!("HTTP {status} {reason}").trim_end().to_owned()
    } else {
        truncate_chars(message)
    }
}

/// At most 500 characters of `s`, with `…` when cut.
pub(crate) fn truncate_chars(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The start of a line, for messages.
pub(crate) fn lossy_prefix(line: &[u8]) -> String {
    truncate_chars(&String::from_utf8_lossy(
        &line[..line.len().min(4 * MAX_ERROR_CHARS)],
    ))
}

/// `bytes` parsed as JSON; a `malformed_response` quoting their start otherwise.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| {
        fail(
            Kind::MalformedResponse,
            format!("invalid JSON {what} ({e}): {}", lossy_prefix(bytes)),
        )
    })
}

/// A stream that ended inside a line: `rest` holds the bytes after the last newline.
pub(crate) fn cut_mid_line(rest: &[u8]) -> Failure {
    fail(
        Kind::Truncated,
        format!(
            "the stream ended inside a line ({} bytes after the last newline)",
            rest.len()
        ),
    )
}

/// The text of an error value: a string, an object's `message`, or its JSON (chimera's).
pub(crate) use chimera::backend::error_text;

/// A `stream_error` with `text`, or a message saying the server sent none.
pub(crate) fn stream_error(text: &str) -> Failure {
    let text = if text.trim().is_empty() {
        "the server streamed an error without a message"
    } else {
        text
    };
    fail(Kind::StreamError, truncate_chars(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lines_of(s: &mut LineSplitter) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = s.next_line().expect("within limit") {
            out.push(String::from_utf8(l).expect("utf8"));
        }
        out
    }

    #[test]
    fn lines_split_across_reads() {
        let mut s = LineSplitter::new(1024);
        s.feed(b"{\"a\":1}\n{\"b\"");
        assert_eq!(lines_of(&mut s), vec!["{\"a\":1}"]);
        s.feed(b":2");
        assert!(lines_of(&mut s).is_empty());
        s.feed(b"}\r");
        assert!(lines_of(&mut s).is_empty());
        s.feed(b"\n\n{\"c\":3}\n{\"d\"");
        assert_eq!(lines_of(&mut s), vec!["{\"b\":2}", "", "{\"c\":3}"]);
        assert_eq!(s.take_rest(), b"{\"d\"".to_vec());
    }

    #[test]
    fn the_cap_bounds_the_whole_body() {
        let mut s = LineSplitter::new(9);
        s.feed(b"a\na\na\na\na\n");
        for _ in 0..4 {
            assert_eq!(s.next_line(), Ok(Some(b"a".to_vec())));
        }
        assert_eq!(s.next_line().map_err(|e| e.kind), Err(Kind::TooLarge));
        let mut s = LineSplitter::new(4);
        s.feed(b"abcde");
        assert_eq!(s.next_line().map_err(|e| e.kind), Err(Kind::TooLarge));
    }

    #[test]
    fn ttft_and_gaps() {
        let t0 = Instant::now();
        let mut timer = TextTimer::new(t0, true, 1024);
        let mut r = Reply::default();
        timer
            .on_text("", t0 + Duration::from_millis(5), &mut r)
            .expect("ok");
        assert_eq!(r.ttft_ms, None, "empty text is not a token");
        timer
            .on_text("a", t0 + Duration::from_millis(10), &mut r)
            .expect("ok");
        timer
            .on_text("b", t0 + Duration::from_millis(25), &mut r)
            .expect("ok");
        assert_eq!(r.ttft_ms, Some(10.0));
        assert_eq!(r.itl_ms, vec![15.0]);
        assert_eq!(r.text, "ab");
        let mut small = TextTimer::new(t0, true, 2);
        let mut r = Reply::default();
        assert_eq!(
            small.on_text("abc", t0, &mut r).map_err(|e| e.kind),
            Err(Kind::TooLarge)
        );
    }

    #[test]
    fn statuses_and_messages() {
        let kind = |s, m| map_status(s, String::new(), m).kind;
        assert_eq!(kind(404, true), Kind::ModelNotFound);
        assert_eq!(kind(404, false), Kind::HttpStatus);
        assert_eq!(kind(400, false), Kind::BadRequest);
        assert_eq!(kind(503, false), Kind::QueueFull);
        assert_eq!(kind(502, false), Kind::ServerError);
        assert_eq!(kind(429, false), Kind::HttpStatus);
        assert_eq!(
            error_message(404, "Not Found", br#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(
            error_message(
                404,
                "",
                br#"{"error":{"code":404,"message":"File Not Found"}}"#
            ),
            "File Not Found"
        );
        assert_eq!(
            error_message(404, "", br#"{"object":"error","message":"gone"}"#),
            "gone"
        );
        assert_eq!(error_message(500, "", b"  plain  "), "plain");
        assert_eq!(error_message(404, "Not Found", b""), "HTTP 404 Not Found");
        assert_eq!(error_message(502, "", b""), "HTTP 502");
        assert_eq!(truncate_chars(&"é".repeat(600)).chars().count(), 501);
    }

    #[test]
    fn records_carry_the_error_kind() {
        let o = Outcome {
            sent_at_unix_ms: 1.0,
            e2e_ms: 2.0,
            reply: Reply {
                chunks: 3,
                ..Reply::default()
            },
            error: Some(Failure {
                kind: Kind::QueueFull,
                status: Some(503),
                message: "busy".into(),
            }),
        };
        let r = o.record(RecordStage::Single, 4);
        assert_eq!(r.index, Some(4));
        assert_eq!(r.chunks, 3);
        let e = r.error.expect("error");
        assert_eq!((e.kind.as_str(), e.status), ("queue_full", Some(503)));
    }
}
