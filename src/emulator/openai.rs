//! The OpenAI-compatible routes of `chimera emulate`, shaped like llama.cpp's `llama-server`.
//!
//! Every listener answers them next to the Ollama routes:
//! `POST /v1/completions`, `POST /v1/chat/completions`, `GET /v1/models` (the profile's
//! models, `owned_by: chimera-emulator`), `GET /health` (`{"status":"ok"}`), `GET /props`
//! (`build_info` = the profile's `version`, `model_path` = the first model, `total_slots`, and
//! the `chimera_emulator` marker) and `POST /tokenize` (`{"content": TEXT}` or vLLM's
//! `{"prompt": TEXT}` → `{"tokens": [ids]}`, exactly as many as a completion of that prompt
//! reports in `usage.prompt_tokens`; see [`tokenize`]; 404 with `openai_tokenize: false`).
//!
//! A completion uses the Ollama routes' seeded token schedule (same words and delays for the
//! same profile seed, model, prompt and request `seed`): prompt processing, then one token per
//! delay, sharing the decode budget with every other active stream when `shared_gpu`. What
//! differs is llama-server's: the model counts as loaded at startup (no load time, no reload:
//! `num_gpu`/`num_ctx` are not request fields there), `num_parallel` slots are not applied,
//! `stream` defaults to false, `max_tokens` (or `n_predict`) caps the reply with
//! `finish_reason: length`, `ignore_eos: true` generates exactly `max_tokens` (without one,
//! until the model's `context_length` is full) and `min_tokens: N` at least N (within
//! `max_tokens`), as llama-server and vLLM do (the Ollama routes take neither: Ollama cannot
//! force a length), and an empty or absent `model` is served by the first model (an
//! unknown non-empty one is answered 404 "The model `x` does not exist.", as vLLM does).
//!
//! Streamed replies are Server-Sent Events (`Content-Type: text/event-stream`, one
//! `data: {json}\n\n` event per HTTP chunk): one chunk per token (`choices[0].text`, or
//! `choices[0].delta.content` with `role` on the first), a chunk with empty text/delta and the
//! `finish_reason`, a usage chunk (`choices: []`, `usage`) when
//! `stream_options.include_usage` is true, llama-server's `timings` object on the last of
//! these unless the profile sets `openai_timings: false`, then `data: [DONE]`. Non-streamed
//! replies are one JSON object with the whole text, `usage` and (unless switched off)
//! `timings`. Errors use the OpenAI envelope `{"error":{"code","message","type"}}`.
//!
//! Faults apply as on the Ollama routes: `status` answers with its code and message,
//! `refuse_after_accept` closes, `error_after` streams an `{"error":{…}}` chunk and ends the
//! body without `[DONE]` (500 when not streamed, or when `tokens` is 0), `truncate_after` ends
//! (or, `abrupt`, cuts) the body without a finish chunk or `[DONE]`, `malformed_after` sends a
//! `data:` line that is not JSON, `stall_after` pauses, `huge` pads the tokens. Every request
//! is recorded in the ground-truth log like a generate/chat request (`load_ms` ≈ 0,
//! `reloaded: false`, `options` = the request's fields other than model, prompt, messages,
//! stream and stream_options).

use std::time::{Duration, Instant};

use crate::util::clock::now_unix_secs;

use serde_json::{Map, Value, json};
use tokio::net::tcp::OwnedWriteHalf;

use super::exchange::{
    ActiveGuard, Exchange, FaultEnd, Length, Reject, Schedule, Wire, ending_fault, joined_contents,
    json_object, stream_flag,
};
use super::http;
use super::profile::Fault;
use super::state::{ListenerState, Shared};
use super::util::{fnv1a, prompt_tokens};

/// Content type of streamed replies.
const SSE: &str = "text/event-stream";
/// `system_fingerprint` of every reply.
const FINGERPRINT: &str = "chimera-emulator";

/// The GET routes served here.
pub(super) const GET: [&str; 3] = ["/v1/models", "/health", "/props"];
/// The completion routes (POST).
pub(super) const POST: [&str; 2] = ["/v1/completions", "/v1/chat/completions"];

/// llama-server's tokenizer route (POST), answered unless the profile sets
/// `openai_tokenize: false`.
pub(super) const TOKENIZE: &str = "/tokenize";

/// The reply to `POST /tokenize`: llama-server's `{"tokens": [ids]}`, as many ids as the
/// emulator counts for the same text in a completion's `usage.prompt_tokens` (and the Ollama
/// routes' `prompt_eval_count`): [`prompt_tokens`] of `content` (or of vLLM's `prompt`). The
/// ids are stand-ins (a hash of the word and its place, below 32,000). The emulator adds no
/// special tokens to a prompt, so `add_special` changes nothing; `with_pieces` is not served
/// (ids only). A body without a string `content` or `prompt` is answered 400.
pub(super) fn tokenize(body: &[u8]) -> Result<Value, (u16, String)> {
    let obj = json_object(body)?;
    let text = match (obj.get("content"), obj.get("prompt")) {
        (Some(Value::String(s)), _) => s,
        (None | Some(Value::Null), Some(Value::String(s))) => s,
        _ => return Err((400, "\"content\" must be a string".into())),
    };
    let n = prompt_tokens(text);
    let ids: Vec<u64> = (0..u64::from(n))
        .map(|i| (fnv1a(text) ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 32_000)
        .collect();
    Ok(json!({ "tokens": ids }))
}

/// The OpenAI error envelope of a rejected request (for the routes served outside a
/// completion exchange).
pub(super) fn error_reply(code: u16, message: &str) -> String {
    error_body(code, message)
}

/// The body of one of the [`GET`] routes.
pub(super) fn get(sh: &Shared, path: &str) -> Value {
    match path {
        "/props" => props(sh),
        "/v1/models" => models(sh),
        _ => json!({ "status": "ok" }),
    }
}

/// Serves one request on a [`POST`] route; returns whether the connection stays open.
pub(super) async fn complete(
    wr: &mut OwnedWriteHalf,
    sh: &Shared,
    ls: &ListenerState,
    req: &http::Request,
    received: Instant,
    received_unix_ms: f64,
) -> std::io::Result<bool> {
    let created = now_unix_secs();
    let chat = req.path == "/v1/chat/completions";
    let shape = Shape {
        chat,
        id: format!(
            "{}-{:x}",
            if chat { "chatcmpl" } else { "cmpl" },
            fnv1a(&format!("{received_unix_ms}{}", ls.addr))
        ),
        created,
    };
    let x = Exchange::new(
        wr,
        sh,
        ls.addr,
        req.keep_alive,
        received,
        received_unix_ms,
        &WIRE,
    );
    let mut c = Completion { x, shape };
    let result = c.run(&req.body).await;
    c.x.end(&result);
    result
}

fn props(sh: &Shared) -> Value {
    let first = sh.profile.models.first();
    json!({
        "build_info": sh.profile.version,
        "model_path": first.map(|m| m.name.as_str()),
        "total_slots": sh.profile.num_parallel.max(1),
        "default_generation_settings": { "n_ctx": first.map(|m| m.context_length) },
        "chimera_emulator": true,
    })
}

fn models(sh: &Shared) -> Value {
    let created = now_unix_secs();
    let data: Vec<Value> = sh
        .profile
        .models
        .iter()
        .map(|m| {
            json!({
                "id": m.name,
                "object": "model",
                "created": created,
                "owned_by": "chimera-emulator",
            })
        })
        .collect();
    json!({ "object": "list", "data": data })
}

/// The OpenAI error envelope.
fn error_body(code: u16, message: &str) -> String {
    let kind = match code {
        400 => "invalid_request_error",
        401 => "authentication_error",
        404 => "not_found_error",
        501 => "not_supported_error",
        503 => "unavailable_error",
        500..=599 => "server_error",
        _ => "api_error",
    };
    json!({ "error": { "code": code, "message": message, "type": kind } }).to_string()
}

/// Request fields that are not sampling settings (everything else goes to the truth's `options`).
const NOT_OPTIONS: [&str; 5] = ["model", "prompt", "messages", "stream", "stream_options"];
/// Fields that must be numbers when present.
const NUMERIC: [&str; 10] = [
    "max_tokens",
    "n_predict",
    "min_tokens",
    "seed",
    "top_k",
    "temperature",
    "top_p",
    "min_p",
    "repeat_penalty",
    "presence_penalty",
];

/// A request parsed far enough to be served.
struct Parsed {
    model: usize,
    stream: bool,
    include_usage: bool,
    prompt: String,
    length: Length,
    seed: u64,
}

/// The OpenAI routes' wire: SSE streams, not streamed unless the request asks, errors in the
/// OpenAI envelope.
const WIRE: Wire = Wire {
    stream_type: SSE,
    stream_default: false,
    error_body,
};

/// One completion exchange.
struct Completion<'a> {
    x: Exchange<'a>,
    shape: Shape,
}

/// What every reply object of one completion carries besides the model.
struct Shape {
    chat: bool,
    id: String,
    created: u64,
}

impl Shape {
    /// A reply object of kind `object` with `choices`.
    fn object(&self, object: &str, model: &str, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        })
    }

    /// A streamed chunk object with `choices`.
    fn chunk_object(&self, model: &str, choices: Value) -> Value {
        let object = if self.chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        self.object(object, model, choices)
    }

    /// One streamed chunk object.
    fn chunk(&self, model: &str, text: Option<&str>, finish: Option<&str>, first: bool) -> Value {
        let choice = if self.chat {
            let delta = match text {
                Some(t) if first => json!({ "role": "assistant", "content": t }),
                Some(t) => json!({ "content": t }),
                None => json!({}),
            };
            json!({ "index": 0, "delta": delta, "finish_reason": finish })
        } else {
            json!({
                "text": text.unwrap_or(""),
                "index": 0,
                "logprobs": null,
                "finish_reason": finish,
            })
        };
        self.chunk_object(model, json!([choice]))
    }

    /// The non-streamed reply object (without `usage`/`timings`).
    fn whole_reply(&self, model: &str, text: &str, reason: &str) -> Value {
        if self.chat {
            let choice = json!({
                "index": 0,
                "message": { "role": "assistant", "content": text },
                "finish_reason": reason,
            });
            self.object("chat.completion", model, json!([choice]))
        } else {
            let choice =
                json!({ "text": text, "index": 0, "logprobs": null, "finish_reason": reason });
            self.object("text_completion", model, json!([choice]))
        }
    }
}

impl Completion<'_> {
    fn parse(&mut self, body: &[u8]) -> Result<Parsed, Reject> {
        let obj = json_object(body)?;
        self.x.rec.model = match obj.get("model") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err((400, "`model` must be a string".into())),
        };
        self.x.rec.stream = stream_flag(&obj, WIRE.stream_default)?;
        let include_usage = obj
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let options: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| !NOT_OPTIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !options.is_empty() {
            self.x.rec.options = Value::Object(options);
        }
        for key in NUMERIC {
            if let Some(v) = obj.get(key)
                && !v.is_number()
                && !v.is_null()
            {
                return Err((400, format!("\"{key}\" must be a number")));
            }
        }
        self.x.rec.prompt = if self.shape.chat {
            match obj.get("messages") {
                Some(Value::Array(msgs)) if !msgs.is_empty() => joined_contents(msgs),
                Some(Value::Array(_)) => {
                    return Err((400, "'messages' must not be empty".into()));
                }
                None | Some(Value::Null) => {
                    return Err((400, "'messages' is required".into()));
                }
                Some(_) => return Err((400, "'messages' must be an array".into())),
            }
        } else {
            match obj.get("prompt") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n"),
                None | Some(Value::Null) => {
                    return Err((400, "\"prompt\" must be provided".into()));
                }
                Some(_) => return Err((400, "\"prompt\" must be a string".into())),
            }
        };
        let name = &self.x.rec.model;
        let model = if name.is_empty() {
            0
        } else {
            self.x
                .sh
                .profile
                .models
                .iter()
                .position(|m| m.matches(name))
                .ok_or_else(|| (404, format!("The model `{name}` does not exist.")))?
        };
        let ignore_eos = match obj.get("ignore_eos") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err((400, "\"ignore_eos\" must be a boolean".into())),
        };
        let int = |k: &str| obj.get(k).and_then(Value::as_f64).map(|f| f as i64);
        Ok(Parsed {
            model,
            stream: self.x.rec.stream,
            include_usage,
            prompt: self.x.rec.prompt.clone(),
            length: Length {
                cap: int("max_tokens").or_else(|| int("n_predict")),
                min: int("min_tokens"),
                ignore_eos,
            },
            seed: int("seed").unwrap_or(0) as u64,
        })
    }

    async fn run(&mut self, body: &[u8]) -> std::io::Result<bool> {
        let parsed = self.parse(body);
        let (p, fault) = match self.x.start(parsed, |p| p.model).await? {
            Ok(started) => started,
            Err(keep) => return Ok(keep),
        };
        // llama-server loads its model at startup: the model is always ready.
        self.x.rec.load_ms = self.x.received.elapsed().as_secs_f64() * 1000.0;
        let _active = ActiveGuard::enter(&self.x.sh.active);
        self.generate(&p, fault.as_ref()).await
    }

    async fn generate(&mut self, p: &Parsed, fault: Option<&Fault>) -> std::io::Result<bool> {
        let model = self.x.rec.model.clone();
        let mut s =
            Schedule::prefill(&mut self.x, p.model, &p.prompt, p.seed, p.length, fault).await;
        let ptoks = s.prompt_tokens;
        let shape = &self.shape;
        let close = !self.x.keep || s.closing;
        let frame = |i, tok: &str| {
            let chunk = shape.chunk(&model, Some(tok), None, i == 0);
            sse(chunk.to_string().as_bytes())
        };
        let Some(d) = s.decode(&mut self.x, p.stream, close, frame).await? else {
            return Ok(self.x.keep);
        };
        if let Some(f) = ending_fault(fault) {
            return self.fault_end(f, &model, p, &d.text).await;
        }

        let out_n = self.x.rec.output_tokens;
        let usage = json!({
            "prompt_tokens": ptoks,
            "completion_tokens": out_n,
            "total_tokens": ptoks + out_n,
        });
        let timings = self
            .x
            .sh
            .profile
            .openai_timings
            .then(|| timings_json(ptoks, s.prompt_eval, out_n, d.eval));
        if p.stream {
            let mut events = vec![shape.chunk(&model, None, Some(s.reason), false)];
            if p.include_usage {
                let mut u = shape.chunk_object(&model, json!([]));
                u["usage"] = usage;
                events.push(u);
            }
            if let (Some(t), Some(Value::Object(last))) = (timings, events.last_mut()) {
                last.insert("timings".into(), t);
            }
            let mut chunks: Vec<Vec<u8>> = events
                .iter()
                .map(|e| sse(e.to_string().as_bytes()))
                .collect();
            chunks.push(sse(b"[DONE]"));
            self.x.finish_stream(&chunks).await?;
            Ok(self.x.keep)
        } else {
            let mut body = shape.whole_reply(&model, &d.text, s.reason);
            if let Value::Object(o) = &mut body {
                o.insert("usage".into(), usage);
                if let Some(t) = timings {
                    o.insert("timings".into(), t);
                }
            }
            self.x.write_reply(body.to_string().as_bytes()).await
        }
    }

    /// Ends a reply the way an `error_after` / `truncate_after` / `malformed_after` fault says.
    async fn fault_end(
        &mut self,
        f: &Fault,
        model: &str,
        p: &Parsed,
        text: &str,
    ) -> std::io::Result<bool> {
        let shape = &self.shape;
        let end = match (f, p.stream) {
            (Fault::ErrorAfter { message, .. }, false) => {
                FaultEnd::Whole(500, error_body(500, message).into_bytes())
            }
            (Fault::TruncateAfter { .. }, false) => {
                let whole = shape.whole_reply(model, text, "stop");
                FaultEnd::Half(whole.to_string().into_bytes())
            }
            (_, false) => FaultEnd::Whole(
                200,
                format!("{{\"id\":\"{}\",\"choices\":<<not json>>", shape.id).into_bytes(),
            ),
            (Fault::ErrorAfter { message, .. }, true) => {
                FaultEnd::LastChunk(sse(error_body(500, message).as_bytes()))
            }
            (Fault::TruncateAfter { abrupt, .. }, true) => FaultEnd::Cut { abrupt: *abrupt },
            (_, true) => {
                let good = shape.chunk(model, Some(" lorem"), None, false).to_string();
                FaultEnd::LastChunk(sse(&good.as_bytes()[..good.len() * 2 / 3]))
            }
        };
        self.x.fault_end(end).await
    }
}

/// `data: <payload>\n\n`.
fn sse(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.extend_from_slice(b"data: ");
    v.extend_from_slice(payload);
    v.extend_from_slice(b"\n\n");
    v
}

/// llama-server's `timings` object from the measured prompt and decode times.
fn timings_json(prompt_n: u32, prompt: Duration, predicted_n: u32, eval: Duration) -> Value {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let per_token = |d: Duration, n: u32| (n > 0).then(|| ms(d) / f64::from(n));
    let per_second =
        |d: Duration, n: u32| (n > 0 && d > Duration::ZERO).then(|| f64::from(n) / d.as_secs_f64());
    json!({
        "cache_n": 0,
        "prompt_n": prompt_n,
        "prompt_ms": ms(prompt),
        "prompt_per_token_ms": per_token(prompt, prompt_n),
        "prompt_per_second": per_second(prompt, prompt_n),
        "predicted_n": predicted_n,
        "predicted_ms": ms(eval),
        "predicted_per_token_ms": per_token(eval, predicted_n),
        "predicted_per_second": per_second(eval, predicted_n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_and_timings() {
        let e: Value = serde_json::from_str(&error_body(503, "Loading model")).expect("json");
        assert_eq!(
            e,
            json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})
        );
        let t = timings_json(4, Duration::from_millis(2), 3, Duration::from_millis(30));
        assert_eq!(t["prompt_n"], 4);
        assert_eq!(t["predicted_n"], 3);
        assert_eq!(t["predicted_ms"], 30.0);
        assert_eq!(t["predicted_per_second"], 100.0);
        assert!(timings_json(0, Duration::ZERO, 0, Duration::ZERO)["prompt_per_second"].is_null());
        assert_eq!(sse(b"[DONE]"), b"data: [DONE]\n\n");
        assert!(POST.contains(&"/v1/chat/completions") && GET.contains(&"/props"));
        assert!(!POST.contains(&"/api/chat"));
    }
}
