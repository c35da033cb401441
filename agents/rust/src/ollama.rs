//! Ollama's native API (`POST /api/generate`, `/api/chat`): the request body and the NDJSON
//! reply, read as chimera's own client reads it (`src/backend/ollama.rs`).
//!
//! Each non-blank line is one JSON chunk and counts in `chunks`; its text is `response`
//! (generate) or `message.content` (chat); the line with `"done": true` carries the server's
//! numbers (nanoseconds, converted to ms) and `done_reason`. A line with `error` is a
//! `stream_error`; a stream that ends without `done: true` is `truncated`. Not streamed: the
//! body is one such object.

use std::time::Instant;

use chimera::manifest::Options;
use serde::Deserialize;
use serde_json::Value;

use crate::measure::{
    Failure, Fed, Kind, Parser, Reply, TextTimer, cut_mid_line, error_message, error_text, fail,
    lossy_prefix, map_status, parse_json, stream_error,
};
use crate::request::{Api, Request};

/// The path of an API.
pub(crate) fn path(api: Api) -> &'static str {
    match api {
        Api::Generate => "/api/generate",
        Api::Chat => "/api/chat",
    }
}

/// The JSON body: `model`, `prompt` or one user message, `stream`, `options` (only the set
/// fields, and none at all when empty) and `keep_alive` when set.
pub(crate) fn body(req: &Request) -> Value {
    let mut m = req.base_body();
    if let Some(o) = options_value(&req.options) {
        m.insert("options".into(), o);
    }
    if let Some(k) = &req.keep_alive {
        m.insert("keep_alive".into(), keep_alive_value(k));
    }
    Value::Object(m)
}

/// The `options` object: `None` when no option is set.
fn options_value(options: &Options) -> Option<Value> {
    if options.is_empty() {
        return None;
    }
    match serde_json::to_value(options) {
        Ok(Value::Object(m)) if !m.is_empty() => Some(Value::Object(m)),
        _ => None,
    }
}

/// `keep_alive` on the wire, as chimera sends it: a plain number (`-1`, `300`, `0.5`) as a
/// JSON number, anything else (`"5m"`) as a string.
fn keep_alive_value(k: &str) -> Value {
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
fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// One NDJSON chunk (or the non-streamed reply) as far as the agent reads it.
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

/// The parsing state of one reply.
#[derive(Debug)]
pub(crate) struct NdjsonParser {
    api: Api,
    stream: bool,
    timer: TextTimer,
    done: bool,
}

impl NdjsonParser {
    /// A parser for a reply to a request sent at `t0`; text bounded by `max`.
    pub(crate) fn new(api: Api, stream: bool, max: usize, t0: Instant) -> Self {
        NdjsonParser {
            api,
            stream,
            timer: TextTimer::new(t0, stream, max),
            done: false,
        }
    }
}

impl Parser for NdjsonParser {
    fn on_line(&mut self, line: &[u8], at: Instant, reply: &mut Reply) -> Fed {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let chunk: Chunk = parse_json(line, "line")?;
        if let Some(e) = chunk.error {
            return Err(stream_error(&error_text(&e)));
        }
        let Some(done) = chunk.done else {
            return Err(fail(
                Kind::MalformedResponse,
                format!("a line without `done`: {}", lossy_prefix(line)),
            ));
        };
        let missing = |what: &str| {
            fail(
                Kind::MalformedResponse,
                format!("a line without `{what}`: {}", lossy_prefix(line)),
            )
        };
        let text = match self.api {
            Api::Generate => chunk.response.ok_or_else(|| missing("response"))?,
            Api::Chat => chunk
                .message
                .ok_or_else(|| missing("message"))?
                .content
                .unwrap_or_default(),
        };
        reply.chunks = reply.chunks.saturating_add(1);
        self.timer.on_text(&text, at, reply)?;
        if done {
            self.done = true;
            reply.done_reason = chunk.done_reason;
            reply.load_ms = chunk.load_duration.map(ns_to_ms);
            reply.prompt_tokens = chunk.prompt_eval_count;
            reply.prompt_eval_ms = chunk.prompt_eval_duration.map(ns_to_ms);
            reply.output_tokens = chunk.eval_count;
            reply.eval_ms = chunk.eval_duration.map(ns_to_ms);
            reply.total_ms = chunk.total_duration.map(ns_to_ms);
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.done
    }

    fn finish(&mut self, rest: &[u8], end: Instant, reply: &mut Reply) -> Fed {
        if !rest.iter().all(u8::is_ascii_whitespace) {
            // A partial last line: the stream was cut mid-object, unless it happens to be
            // complete JSON without its newline.
            if self.stream && serde_json::from_slice::<Value>(rest).is_err() {
                return Err(cut_mid_line(rest));
            }
            self.on_line(rest, end, reply)?;
        }
        if !self.done {
            return Err(fail(
                Kind::Truncated,
                format!(
                    "the stream ended without `done: true` after {} chunk(s)",
                    reply.chunks
                ),
            ));
        }
        Ok(())
    }

    fn end_marker(&self) -> &'static str {
        "done: true"
    }

    fn status_error(&self, status: u16, reason: &str, body: &[u8]) -> Failure {
        map_status(status, error_message(status, reason, body), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::LineSplitter;
    use std::time::Duration;

    fn request(api: Api, stream: bool, options: Options, keep_alive: Option<&str>) -> Request {
        Request {
            api,
            model: "m:1b".into(),
            prompt: "hi".into(),
            stream,
            options,
            keep_alive: keep_alive.map(str::to_owned),
            force_output_tokens: None,
        }
    }

    #[test]
    fn bodies_send_only_what_is_set() {
        let b = body(&request(Api::Generate, true, Options::default(), None));
        assert_eq!(
            b,
            serde_json::json!({"model": "m:1b", "prompt": "hi", "stream": true})
        );
        let o = Options {
            num_ctx: Some(4096),
            temperature: Some(0.0),
            seed: Some(7),
            ..Options::default()
        };
        let b = body(&request(Api::Chat, false, o, Some("5m")));
        assert_eq!(
            b,
            serde_json::json!({
                "model": "m:1b",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": false,
                "options": {"num_ctx": 4096, "temperature": 0.0, "seed": 7},
                "keep_alive": "5m"
            })
        );
        assert_eq!(keep_alive_value("-1"), serde_json::json!(-1));
        assert_eq!(keep_alive_value("1.5"), serde_json::json!(1.5));
        assert_eq!(path(Api::Chat), "/api/chat");
    }

    /// Feeds `body` in pieces of `piece` bytes, each 10 ms after the previous; then ends it.
    pub(crate) fn run(api: Api, stream: bool, body: &[u8], piece: usize) -> (Reply, Fed) {
        let t0 = Instant::now();
        let mut p = NdjsonParser::new(api, stream, 1 << 16, t0);
        let mut lines = LineSplitter::new(1 << 16);
        let mut reply = Reply::default();
        for (i, part) in body.chunks(piece.max(1)).enumerate() {
            let at = t0 + Duration::from_millis(10 * (i as u64 + 1));
            lines.feed(part);
            if !stream {
                continue;
            }
            while let Some(line) = lines.next_line().expect("cap") {
                if let Err(e) = p.on_line(&line, at, &mut reply) {
                    return (reply, Err(e));
                }
                if p.done() {
                    return (reply, Ok(()));
                }
            }
        }
        let rest = lines.take_rest();
        let r = p.finish(&rest, t0 + Duration::from_secs(1), &mut reply);
        (reply, r)
    }

    pub(crate) const GENERATE: &str = concat!(
        "{\"model\":\"m\",\"response\":\"\",\"done\":false}\n",
        "{\"model\":\"m\",\"response\":\"Hello\",\"done\":false}\n",
        "{\"model\":\"m\",\"response\":\" world\",\"done\":false}\n",
        "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",",
        "\"total_duration\":5000000000,\"load_duration\":1500000,\"prompt_eval_count\":12,",
        "\"prompt_eval_duration\":20000000,\"eval_count\":2,\"eval_duration\":312904117}\n",
    );

    #[test]
    fn generate_stream_parses_the_same_whatever_the_reads() {
        let (r, res) = run(Api::Generate, true, GENERATE.as_bytes(), usize::MAX);
        assert_eq!(res, Ok(()));
        assert_eq!(r.text, "Hello world");
        assert_eq!(r.chunks, 4);
        assert_eq!((r.prompt_tokens, r.output_tokens), (Some(12), Some(2)));
        assert_eq!(r.eval_ms, Some(312.904117));
        assert_eq!(r.load_ms, Some(1.5));
        assert_eq!(r.prompt_eval_ms, Some(20.0));
        assert_eq!(r.total_ms, Some(5000.0));
        assert_eq!(r.done_reason.as_deref(), Some("stop"));
        assert_eq!(r.ttft_ms, Some(10.0));
        assert_eq!(r.itl_ms, vec![0.0], "both texts arrived in the same read");
        for piece in 1..60 {
            let (r, res) = run(Api::Generate, true, GENERATE.as_bytes(), piece);
            assert_eq!(res, Ok(()), "piece {piece}");
            assert_eq!(
                (r.text.as_str(), r.chunks, r.output_tokens, r.itl_ms.len()),
                ("Hello world", 4, Some(2), 1),
                "piece {piece}"
            );
            assert!(r.ttft_ms.is_some_and(|t| t > 0.0), "piece {piece}");
        }
    }

    #[test]
    fn chat_and_unstreamed() {
        let body = concat!(
            "{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n",
            "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"eval_count\":1}\n"
        );
        let (r, res) = run(Api::Chat, true, body.as_bytes(), 7);
        assert_eq!(res, Ok(()));
        assert_eq!(
            (r.text.as_str(), r.chunks, r.output_tokens),
            ("Hi", 2, Some(1))
        );
        let one = b"{\"response\":\"All of it\",\"done\":true,\"eval_count\":3}";
        let (r, res) = run(Api::Generate, false, one, 5);
        assert_eq!(res, Ok(()));
        assert_eq!(r.text, "All of it");
        assert_eq!((r.ttft_ms, r.chunks, r.output_tokens), (None, 1, Some(3)));
    }

    #[test]
    fn errors_map_to_kinds() {
        let kind = |body: &str| {
            run(Api::Generate, true, body.as_bytes(), 3)
                .1
                .map_err(|e| e.kind)
        };
        let text = "{\"response\":\"a\",\"done\":false}\n";
        assert_eq!(kind(text), Err(Kind::Truncated));
        assert_eq!(kind(&format!("{text}{{\"resp")), Err(Kind::Truncated));
        assert_eq!(
            kind(&format!("{text}{{\"response\":\"\",\"done\":true}}")),
            Ok(()),
            "a complete last line without its newline"
        );
        assert_eq!(
            kind(&format!("{text}not json\n")),
            Err(Kind::MalformedResponse)
        );
        assert_eq!(kind("{\"response\":\"a\"}\n"), Err(Kind::MalformedResponse));
        assert_eq!(kind("{\"done\":false}\n"), Err(Kind::MalformedResponse));
        let (r, res) = run(
            Api::Generate,
            true,
            format!("{text}{{\"error\":\"out of memory\"}}\n").as_bytes(),
            4,
        );
        let e = res.expect_err("stream error");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (Kind::StreamError, "out of memory")
        );
        assert_eq!(r.text, "a");
        let e = run(Api::Generate, true, b"{\"error\":\"\"}\n", 4)
            .1
            .expect_err("stream error");
        assert_eq!(e.message, "the server streamed an error without a message");
        let (_, res) = run(Api::Generate, false, b"  ", 4);
        assert_eq!(res.map_err(|e| e.kind), Err(Kind::Truncated));
    }

    #[test]
    fn statuses() {
        let p = NdjsonParser::new(Api::Generate, true, 64, Instant::now());
        let e = p.status_error(404, "Not Found", br#"{"error":"model 'x' not found"}"#);
        assert_eq!(
            (e.kind, e.status, e.message.as_str()),
            (Kind::ModelNotFound, Some(404), "model 'x' not found")
        );
    }
}
