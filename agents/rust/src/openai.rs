//! The OpenAI-compatible API of llama-server and vLLM (`POST /v1/completions`,
//! `/v1/chat/completions`): the request body and the Server-Sent-Events reply, read as
//! chimera's own client reads it (`src/backend/openai.rs`).
//!
//! `data: {json}` lines are chunks (each counts in `chunks`), `data: [DONE]` ends the reply;
//! comments, blank lines and other fields are skipped; `event: error`, an `error:` field or a
//! chunk with `error` is a `stream_error`. Text: `choices[0].text` (completions) or
//! `choices[0].delta.content` (chat). Tokens: `usage`, else llama-server's `timings`
//! (`prompt_n`, `predicted_n`); `timings.prompt_ms` / `predicted_ms` are `prompt_eval_ms` /
//! `eval_ms`; the last `finish_reason` is `done_reason`. A reply is complete at
//! `data: [DONE]`, or when the body ends after a `finish_reason`; otherwise `truncated`.

use std::time::Instant;

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
        Api::Generate => "/v1/completions",
        Api::Chat => "/v1/chat/completions",
    }
}

/// The JSON body: `model`, `prompt` or `messages`, `stream` (+ `stream_options` asking for
/// usage when streamed), and the options these servers take per request under their names:
/// `num_predict` → `max_tokens` (a negative value, Ollama's "unlimited", is not sent),
/// `temperature`, `top_p`, `top_k`, `repeat_penalty`, `seed`. `num_gpu`, `num_ctx` and
/// `keep_alive` are not sent (server start-up settings / Ollama's). A forced length (the job's
/// `force_output_tokens: N`) sends `max_tokens: N` in place of `num_predict`, `ignore_eos:
/// true` and `min_tokens: N`, as chimera's own client does.
pub(crate) fn body(req: &Request) -> Value {
    let mut m = req.base_body();
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
    if let Some(n) = req.force_output_tokens {
        m.insert("max_tokens".into(), Value::from(n));
        m.insert("ignore_eos".into(), Value::Bool(true));
        m.insert("min_tokens".into(), Value::from(n));
    }
    Value::Object(m)
}

/// True when an error message says that a model does not exist (llama-server also answers
/// 404 for unknown routes, which is not a missing model).
fn says_model_missing(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("model")
        && (m.contains("not found") || m.contains("does not exist") || m.contains("not exist"))
}

/// One SSE line, classified.
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
    /// `error: payload` (older llama-server builds).
    Error(&'a [u8]),
    /// Any other field: ignored.
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

/// One chunk (or the non-streamed reply) as far as the agent reads it.
#[derive(Debug, Deserialize)]
struct Chunk {
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

/// The parsing state of one reply.
#[derive(Debug)]
pub(crate) struct SseParser {
    api: Api,
    stream: bool,
    timer: TextTimer,
    /// The current event's `event:` name.
    event: Option<Vec<u8>>,
    done: bool,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    timings: Option<Timings>,
}

impl SseParser {
    /// A parser for a reply to a request sent at `t0`; text bounded by `max`.
    pub(crate) fn new(api: Api, stream: bool, max: usize, t0: Instant) -> Self {
        SseParser {
            api,
            stream,
            timer: TextTimer::new(t0, stream, max),
            event: None,
            done: false,
            finish_reason: None,
            usage: None,
            timings: None,
        }
    }

    /// One JSON chunk (streamed) or the whole reply (not streamed).
    fn on_payload(&mut self, payload: &[u8], at: Instant, reply: &mut Reply) -> Fed {
        let chunk: Chunk = parse_json(payload, "chunk")?;
        if let Some(e) = chunk.error {
            return Err(stream_error(&error_text(&e)));
        }
        if chunk.choices.is_none() && chunk.usage.is_none() && chunk.timings.is_none() {
            return Err(fail(
                Kind::MalformedResponse,
                format!(
                    "a chunk without `choices`, `usage` or `timings`: {}",
                    lossy_prefix(payload)
                ),
            ));
        }
        reply.chunks = reply.chunks.saturating_add(1);
        if let Some(choice) = chunk.choices.as_ref().and_then(|c| c.first()) {
            let text = match self.api {
                Api::Generate => choice.text.as_deref(),
                Api::Chat if self.stream => {
                    choice.delta.as_ref().and_then(|d| d.content.as_deref())
                }
                Api::Chat => choice.message.as_ref().and_then(|d| d.content.as_deref()),
            };
            self.timer.on_text(text.unwrap_or_default(), at, reply)?;
            if let Some(r) = &choice.finish_reason {
                self.finish_reason = Some(r.clone());
            }
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if chunk.timings.is_some() {
            self.timings = chunk.timings;
        }
        Ok(())
    }

    /// Fills the server's numbers once the reply is complete.
    fn complete(&mut self, reply: &mut Reply) {
        self.done = true;
        reply.done_reason = self.finish_reason.clone();
        let (usage, timings) = (self.usage, self.timings);
        reply.output_tokens = usage
            .and_then(|u| u.completion_tokens)
            .or(timings.and_then(|t| t.predicted_n));
        reply.prompt_tokens = usage
            .and_then(|u| u.prompt_tokens)
            .or(timings.and_then(|t| t.prompt_n));
        reply.prompt_eval_ms = timings.and_then(|t| t.prompt_ms);
        reply.eval_ms = timings.and_then(|t| t.predicted_ms);
    }
}

/// A streamed error payload: its `error.message`, `error`, `message`, or the payload.
fn payload_error(payload: &[u8]) -> Failure {
    let text = match serde_json::from_slice::<Value>(payload.trim_ascii()) {
        Ok(v) => match v.get("error") {
            Some(e) => error_text(e),
            None => error_text(&v),
        },
        Err(_) => String::from_utf8_lossy(payload).trim().to_owned(),
    };
    stream_error(&text)
}

impl Parser for SseParser {
    fn on_line(&mut self, line: &[u8], at: Instant, reply: &mut Reply) -> Fed {
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
            SseLine::Error(payload) => Err(payload_error(payload)),
            SseLine::Data(payload) => {
                if self.event.as_deref() == Some(b"error") {
                    return Err(payload_error(payload));
                }
                let payload = payload.trim_ascii();
                if payload == b"[DONE]" {
                    self.complete(reply);
                    return Ok(());
                }
                if payload.is_empty() {
                    return Ok(());
                }
                self.on_payload(payload, at, reply)
            }
        }
    }

    fn done(&self) -> bool {
        self.done
    }

    fn finish(&mut self, rest: &[u8], end: Instant, reply: &mut Reply) -> Fed {
        if !self.stream {
            if rest.iter().all(u8::is_ascii_whitespace) {
                return Err(fail(Kind::Truncated, "the reply body is empty"));
            }
            self.on_payload(rest.trim_ascii(), end, reply)?;
            self.complete(reply);
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
            self.on_line(rest.trim_ascii_end(), end, reply)?;
        }
        if !self.done {
            if self.finish_reason.is_none() {
                return Err(fail(
                    Kind::Truncated,
                    format!(
                        "the stream ended without `data: [DONE]` or a `finish_reason` after {} chunk(s)",
                        reply.chunks
                    ),
                ));
            }
            self.complete(reply);
        }
        Ok(())
    }

    fn end_marker(&self) -> &'static str {
        "data: [DONE]"
    }

    fn status_error(&self, status: u16, reason: &str, body: &[u8]) -> Failure {
        let message = error_message(status, reason, body);
        let missing = says_model_missing(&message);
        map_status(status, message, missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::LineSplitter;
    use chimera::manifest::Options;
    use std::time::Duration;

    #[test]
    fn sse_lines_are_classified() {
        assert_eq!(sse_line(b""), SseLine::Blank);
        assert_eq!(sse_line(b": ping"), SseLine::Comment);
        assert_eq!(sse_line(b"data: {\"a\":1}"), SseLine::Data(b"{\"a\":1}"));
        assert_eq!(sse_line(b"data:{\"a\":1}"), SseLine::Data(b"{\"a\":1}"));
        assert_eq!(sse_line(b"data"), SseLine::Data(b""));
        assert_eq!(sse_line(b"event: error"), SseLine::Event(b"error"));
        assert_eq!(sse_line(b"error: {}"), SseLine::Error(b"{}"));
        assert_eq!(sse_line(b"id: 7"), SseLine::Other);
    }

    /// Feeds `body` in pieces of `piece` bytes, each 10 ms after the previous; then ends it.
    fn run(api: Api, stream: bool, body: &[u8], piece: usize) -> (Reply, Fed) {
        let t0 = Instant::now();
        let mut p = SseParser::new(api, stream, 1 << 16, t0);
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
    fn chat_stream_parses_the_same_whatever_the_reads() {
        let (r, res) = run(Api::Chat, true, CHAT.as_bytes(), usize::MAX);
        assert_eq!(res, Ok(()));
        assert_eq!(r.text, "Hi there");
        assert_eq!(r.chunks, 5, "role, 2 texts, finish, usage; not [DONE]");
        assert_eq!((r.output_tokens, r.prompt_tokens), (Some(2), Some(5)));
        assert_eq!((r.prompt_eval_ms, r.eval_ms), (Some(12.5), Some(30.25)));
        assert_eq!(r.done_reason.as_deref(), Some("length"));
        assert_eq!((r.load_ms, r.total_ms), (None, None));
        assert_eq!(r.ttft_ms, Some(10.0));
        assert_eq!(r.itl_ms, vec![0.0]);
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
    fn completions_use_timings_when_usage_is_absent() {
        let body = concat!(
            "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":\"stop\"}],",
            "\"timings\":{\"prompt_n\":9,\"prompt_ms\":1.0,\"predicted_n\":1,\"predicted_ms\":2.0}}\n\n",
            "data: [DONE]"
        );
        let (r, res) = run(Api::Generate, true, body.as_bytes(), 5);
        assert_eq!(
            res,
            Ok(()),
            "[DONE] without its newline completes the reply"
        );
        assert_eq!((r.output_tokens, r.prompt_tokens), (Some(1), Some(9)));
        assert_eq!(r.done_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn stream_ends_and_errors_map_to_kinds() {
        let kind = |body: &str| {
            run(Api::Generate, true, body.as_bytes(), 3)
                .1
                .map_err(|e| e.kind)
        };
        let text = "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}\n\n";
        assert_eq!(kind(text), Err(Kind::Truncated));
        assert_eq!(
            kind(&format!("{text}data: {{\"choices\":[{{\"te")),
            Err(Kind::Truncated)
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
            Err(Kind::MalformedResponse)
        );
        assert_eq!(kind("data: {\"id\":1}\n\n"), Err(Kind::MalformedResponse));
        for bad in [
            format!("{text}data: {{\"error\":{{\"code\":500,\"message\":\"boom\"}}}}\n\n"),
            format!("{text}error: {{\"message\":\"boom\"}}\n\n"),
            format!("{text}event: error\ndata: {{\"message\":\"boom\"}}\n\n"),
        ] {
            let (r, res) = run(Api::Generate, true, bad.as_bytes(), 4);
            let e = res.expect_err("stream error");
            assert_eq!(
                (e.kind, e.message.as_str()),
                (Kind::StreamError, "boom"),
                "{bad}"
            );
            assert_eq!(r.text, "a");
        }
    }

    #[test]
    fn unstreamed_replies_are_one_object() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":3}}"#;
        let (r, res) = run(Api::Chat, false, body, 11);
        assert_eq!(res, Ok(()));
        assert_eq!(r.text, "Hello!");
        assert_eq!((r.ttft_ms, r.itl_ms.len(), r.chunks), (None, 0, 1));
        assert_eq!(r.output_tokens, Some(3));
        let (_, res) = run(Api::Generate, false, b"", 4);
        assert_eq!(res.map_err(|e| e.kind), Err(Kind::Truncated));
    }

    #[test]
    fn bodies_use_openai_names_and_never_load_options() {
        let options = Options {
            num_gpu: Some(80),
            num_ctx: Some(4096),
            num_predict: Some(16),
            temperature: Some(0.0),
            top_p: Some(0.9),
            top_k: Some(40),
            repeat_penalty: Some(1.1),
            seed: Some(7),
        };
        let req = Request {
            api: Api::Chat,
            model: "m".into(),
            prompt: "hi".into(),
            stream: true,
            options,
            keep_alive: Some("5m".into()),
            force_output_tokens: None,
        };
        assert_eq!(
            body(&req),
            serde_json::json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 16, "temperature": 0.0, "top_p": 0.9, "top_k": 40,
                "repeat_penalty": 1.1, "seed": 7
            })
        );
        let req = Request {
            api: Api::Generate,
            stream: false,
            options: Options {
                num_predict: Some(-1),
                ..Options::default()
            },
            keep_alive: None,
            ..req
        };
        assert_eq!(
            body(&req),
            serde_json::json!({"model": "m", "prompt": "hi", "stream": false})
        );
        let forced = Request {
            options: Options {
                num_predict: Some(16),
                ..Options::default()
            },
            force_output_tokens: Some(48),
            ..req
        };
        assert_eq!(
            body(&forced),
            serde_json::json!({
                "model": "m", "prompt": "hi", "stream": false,
                "max_tokens": 48, "ignore_eos": true, "min_tokens": 48
            })
        );
    }

    #[test]
    fn a_404_is_a_missing_model_only_when_it_says_so() {
        let p = SseParser::new(Api::Generate, true, 64, Instant::now());
        let e = p.status_error(
            404,
            "Not Found",
            br#"{"error":{"code":404,"message":"The model `x` does not exist."}}"#,
        );
        assert_eq!(e.kind, Kind::ModelNotFound);
        let e = p.status_error(
            404,
            "Not Found",
            br#"{"error":{"message":"File Not Found"}}"#,
        );
        assert_eq!(e.kind, Kind::HttpStatus);
        let e = p.status_error(503, "", br#"{"error":{"message":"Loading model"}}"#);
        assert_eq!(
            (e.kind, e.message.as_str()),
            (Kind::QueueFull, "Loading model")
        );
    }
}
