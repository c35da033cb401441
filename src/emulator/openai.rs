//! The OpenAI-compatible routes of `chimera emulate`, shaped like llama.cpp's `llama-server`.
//!
//! Every listener answers them next to the Ollama routes:
//! `POST /v1/completions`, `POST /v1/chat/completions`, `GET /v1/models` (the profile's
//! models, `owned_by: chimera-emulator`), `GET /health` (`{"status":"ok"}`) and `GET /props`
//! (`build_info` = the profile's `version`, `model_path` = the first model, `total_slots`, and
//! the `chimera_emulator` marker).
//!
//! A completion uses the Ollama routes' seeded token schedule (same words and delays for the
//! same profile seed, model, prompt and request `seed`): prompt processing, then one token per
//! delay, sharing the decode budget with every other active stream when `shared_gpu`. What
//! differs is llama-server's: the model counts as loaded at startup (no load time, no reload:
//! `num_gpu`/`num_ctx` are not request fields there), `num_parallel` slots are not applied,
//! `stream` defaults to false, `max_tokens` (or `n_predict`) caps the reply with
//! `finish_reason: length`, and an empty or absent `model` is served by the first model (an
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::sleep_until;

use super::TruthRecord;
use super::http::{self, JSON, LAST_CHUNK, TEXT};
use super::profile::{Fault, ModelProfile};
use super::server::{ListenerState, Shared};
use super::util::{Rng, WORDS, fnv1a, prompt_tokens};

/// Content type of streamed replies.
const SSE: &str = "text/event-stream";
/// `system_fingerprint` of every reply.
const FINGERPRINT: &str = "chimera-emulator";

/// True for the paths served here.
pub(super) fn handles(path: &str) -> bool {
    matches!(
        path,
        "/v1/completions" | "/v1/chat/completions" | "/v1/models" | "/health" | "/props"
    )
}

/// Serves one request on an OpenAI-compatible path; returns whether the connection stays open.
pub(super) async fn route(
    wr: &mut OwnedWriteHalf,
    sh: &Shared,
    ls: &ListenerState,
    req: http::Request,
    received: Instant,
    received_unix_ms: f64,
) -> std::io::Result<bool> {
    let keep = req.keep_alive;
    let close = !keep;
    let path = req.path.as_str();
    let post = matches!(path, "/v1/completions" | "/v1/chat/completions");
    let head_only = req.method == "HEAD";
    let method_ok = if post {
        req.method == "POST"
    } else {
        matches!(req.method.as_str(), "GET" | "HEAD")
    };
    if !method_ok {
        http::write_full(wr, 405, TEXT, b"405 method not allowed", close, head_only).await?;
        return Ok(keep);
    }
    let body = match path {
        "/health" => json!({ "status": "ok" }),
        "/props" => props(sh),
        "/v1/models" => models(sh),
        _ => {
            let created = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let chat = path == "/v1/chat/completions";
            let mut x = Exchange {
                wr,
                sh,
                chat,
                keep,
                received,
                head_sent: false,
                committed: false,
                id: format!(
                    "{}-{:x}",
                    if chat { "chatcmpl" } else { "cmpl" },
                    fnv1a(&format!("{received_unix_ms}{}", ls.addr))
                ),
                created,
                rec: TruthRecord {
                    listener: ls.addr,
                    model: String::new(),
                    prompt: String::new(),
                    options: Value::Null,
                    stream: false,
                    status: 0,
                    fault: None,
                    received_unix_ms,
                    first_chunk_offset_us: None,
                    chunk_offsets_us: Vec::new(),
                    output_tokens: 0,
                    prompt_tokens: 0,
                    load_ms: 0.0,
                    reloaded: false,
                },
            };
            let result = x.run(&req.body).await;
            if !x.committed {
                if result.is_err() && x.rec.fault.is_none() {
                    x.rec.fault = Some("client_disconnected".to_owned());
                }
                x.commit();
            }
            return result;
        }
    };
    http::write_full(wr, 200, JSON, body.to_string().as_bytes(), close, head_only).await?;
    Ok(keep)
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
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
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

/// The profile's fault for this request of `model` (honouring `fault_first`, whose counter
/// the Ollama routes share).
fn fault_for(sh: &Shared, model: usize) -> Option<Fault> {
    let m = &sh.profile.models[model];
    let fault = m.fault.clone()?;
    match m.fault_first {
        None => Some(fault),
        Some(n) => {
            let seen = sh.faulted.get(model).map_or(u32::MAX, |c| {
                c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                    Some(v.saturating_add(1))
                })
                .unwrap_or(u32::MAX)
            });
            (seen < n).then_some(fault)
        }
    }
}

/// How many streams share the decode budget right now (1 when `shared_gpu` is off).
fn share(sh: &Shared) -> f64 {
    if sh.profile.shared_gpu {
        sh.active.load(Ordering::SeqCst).max(1) as f64
    } else {
        1.0
    }
}

/// Counts one stream as active on the GPU while alive.
struct Active<'a>(&'a AtomicUsize);

impl<'a> Active<'a> {
    fn enter(a: &'a AtomicUsize) -> Active<'a> {
        a.fetch_add(1, Ordering::SeqCst);
        Active(a)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Request fields that are not sampling settings (everything else goes to the truth's `options`).
const NOT_OPTIONS: [&str; 5] = ["model", "prompt", "messages", "stream", "stream_options"];
/// Fields that must be numbers when present.
const NUMERIC: [&str; 9] = [
    "max_tokens",
    "n_predict",
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
    max_tokens: Option<i64>,
    seed: u64,
}

/// One completion exchange. Its truth record is committed just before the last bytes of the
/// response are written.
struct Exchange<'a> {
    wr: &'a mut OwnedWriteHalf,
    sh: &'a Shared,
    chat: bool,
    keep: bool,
    received: Instant,
    head_sent: bool,
    committed: bool,
    id: String,
    created: u64,
    rec: TruthRecord,
}

type Reject = (u16, String);

impl Exchange<'_> {
    fn commit(&mut self) {
        if !self.committed {
            self.committed = true;
            self.sh.truth.push(self.rec.clone());
        }
    }

    /// Records a non-streamed body as one chunk written now, and commits.
    fn commit_body(&mut self) {
        let off = self.offset_us();
        self.rec.chunk_offsets_us.push(off);
        self.rec.first_chunk_offset_us = Some(off);
        self.commit();
    }

    fn offset_us(&self) -> u64 {
        u64::try_from(self.received.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Answers with `code` and the error envelope (before any chunk).
    async fn reject(&mut self, code: u16, msg: &str) -> std::io::Result<bool> {
        self.rec.status = code;
        self.commit();
        let body = error_body(code, msg);
        http::write_full(self.wr, code, JSON, body.as_bytes(), !self.keep, false).await?;
        Ok(self.keep)
    }

    fn parse(&mut self, body: &[u8]) -> Result<Parsed, Reject> {
        if body.is_empty() {
            return Err((400, "missing request body".into()));
        }
        let v: Value = serde_json::from_slice(body).map_err(|e| (400, e.to_string()))?;
        let Value::Object(obj) = v else {
            return Err((400, "request body must be a JSON object".into()));
        };
        self.rec.model = match obj.get("model") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err((400, "`model` must be a string".into())),
        };
        self.rec.stream = match obj.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err((400, "`stream` must be a boolean".into())),
        };
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
            self.rec.options = Value::Object(options);
        }
        for key in NUMERIC {
            if let Some(v) = obj.get(key)
                && !v.is_number()
                && !v.is_null()
            {
                return Err((400, format!("\"{key}\" must be a number")));
            }
        }
        self.rec.prompt = if self.chat {
            match obj.get("messages") {
                Some(Value::Array(msgs)) if !msgs.is_empty() => msgs
                    .iter()
                    .map(|m| m.get("content").and_then(Value::as_str).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n"),
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
        let model = if self.rec.model.is_empty() {
            0
        } else {
            self.sh
                .profile
                .models
                .iter()
                .position(|m| m.matches(&self.rec.model))
                .ok_or_else(|| {
                    (
                        404,
                        format!("The model `{}` does not exist.", self.rec.model),
                    )
                })?
        };
        let int = |k: &str| obj.get(k).and_then(Value::as_f64).map(|f| f as i64);
        Ok(Parsed {
            model,
            stream: self.rec.stream,
            include_usage,
            prompt: self.rec.prompt.clone(),
            max_tokens: int("max_tokens").or_else(|| int("n_predict")),
            seed: int("seed").unwrap_or(0) as u64,
        })
    }

    async fn run(&mut self, body: &[u8]) -> std::io::Result<bool> {
        let p = match self.parse(body) {
            Ok(p) => p,
            Err((code, msg)) => return self.reject(code, &msg).await,
        };
        let sh = self.sh;
        let m = &sh.profile.models[p.model];
        let fault = fault_for(sh, p.model);
        self.rec.fault = fault.as_ref().map(|f| f.name().to_owned());
        match &fault {
            Some(Fault::Status { code, message }) => return self.reject(*code, message).await,
            Some(Fault::RefuseAfterAccept) => {
                self.rec.status = 0;
                return Ok(false);
            }
            _ => {}
        }
        // llama-server loads its model at startup: the model is always ready.
        self.rec.load_ms = self.received.elapsed().as_secs_f64() * 1000.0;
        let _active = Active::enter(&sh.active);
        self.generate(m, &p, fault.as_ref()).await
    }

    /// One streamed chunk object.
    fn chunk(&self, text: Option<&str>, finish: Option<&str>, first: bool) -> Value {
        if self.chat {
            let delta = match text {
                Some(t) if first => json!({ "role": "assistant", "content": t }),
                Some(t) => json!({ "content": t }),
                None => json!({}),
            };
            json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.rec.model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
            })
        } else {
            json!({
                "id": self.id,
                "object": "text_completion",
                "created": self.created,
                "model": self.rec.model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{
                    "text": text.unwrap_or(""),
                    "index": 0,
                    "logprobs": null,
                    "finish_reason": finish,
                }],
            })
        }
    }

    /// Writes one SSE event (`data: <payload>\n\n`) as one HTTP chunk, with the head first.
    async fn write_event(&mut self, payload: &[u8], close: bool) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 160);
        if !self.head_sent {
            out.extend(http::head(200, SSE, None, close));
            self.head_sent = true;
            self.rec.status = 200;
        }
        out.extend(http::chunk(&sse(payload)));
        self.wr.write_all(&out).await?;
        self.wr.flush().await
    }

    async fn generate(
        &mut self,
        m: &ModelProfile,
        p: &Parsed,
        fault: Option<&Fault>,
    ) -> std::io::Result<bool> {
        let sh = self.sh;
        // The Ollama routes' seeding: the same request gives the same words and delays.
        let mut rng = Rng::new(
            sh.profile.seed
                ^ fnv1a(&m.name).rotate_left(17)
                ^ fnv1a(&p.prompt).rotate_left(31)
                ^ p.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );

        // Prompt processing.
        let ptoks = prompt_tokens(&p.prompt);
        self.rec.prompt_tokens = ptoks;
        let prefill_start = Instant::now();
        let prefill = f64::from(ptoks) / (m.prompt_tok_s / share(sh));
        sleep_until((prefill_start + Duration::from_secs_f64(prefill)).into()).await;
        let decode_start = Instant::now();
        let prompt_eval = decode_start - prefill_start;

        let mut n = m.output_tokens;
        let mut reason = "stop";
        if let Some(mt) = p.max_tokens.filter(|n| *n >= 0)
            && mt <= i64::from(n)
        {
            n = u32::try_from(mt).unwrap_or(0);
            reason = "length";
        }
        let (stop_after, stall) = match fault {
            Some(Fault::ErrorAfter { tokens, .. })
            | Some(Fault::TruncateAfter { tokens, .. })
            | Some(Fault::MalformedAfter { tokens }) => (Some(*tokens), None),
            Some(Fault::StallAfter { tokens, ms }) => (None, Some((*tokens, *ms))),
            _ => (None, None),
        };
        if let Some(k) = stop_after {
            n = k;
        }
        let per_token_bytes = match fault {
            Some(Fault::Huge { bytes }) if n > 0 => {
                usize::try_from(bytes.div_ceil(u64::from(n))).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        let closing = stop_after.is_some();
        if let (Some(0), Some(Fault::ErrorAfter { message, .. })) = (stop_after, fault) {
            return self.reject(500, message).await;
        }

        let mut text = String::new();
        let mut deadline = decode_start;
        let mut last_token = decode_start;
        for i in 0..n {
            if let Some((k, ms)) = stall
                && k == i
            {
                deadline = deadline.max(Instant::now()) + Duration::from_millis(ms);
            }
            let mut delay = share(sh) / m.output_tok_s;
            if m.jitter_pct > 0.0 {
                delay *= 1.0 + m.jitter_pct / 100.0 * rng.symmetric();
            }
            deadline += Duration::from_secs_f64(delay.max(0.0));
            sleep_until(deadline.into()).await;
            let id = rng.below(WORDS.len() as u64) as usize;
            let mut tok = if i == 0 {
                WORDS[id].to_owned()
            } else {
                format!(" {}", WORDS[id])
            };
            while tok.len() < per_token_bytes {
                tok.push(' ');
                tok.push_str(WORDS[id]);
            }
            if p.stream {
                let payload = self.chunk(Some(&tok), None, i == 0).to_string();
                self.write_event(payload.as_bytes(), !self.keep || closing)
                    .await?;
                let off = self.offset_us();
                self.rec.chunk_offsets_us.push(off);
                self.rec.first_chunk_offset_us.get_or_insert(off);
            } else {
                text.push_str(&tok);
            }
            self.rec.output_tokens = i + 1;
            last_token = Instant::now();
        }
        if let Some((k, ms)) = stall
            && k == n
        {
            deadline = deadline.max(Instant::now()) + Duration::from_millis(ms);
            sleep_until(deadline.into()).await;
        }
        let eval = last_token - decode_start;

        if let Some(
            f @ (Fault::ErrorAfter { .. }
            | Fault::TruncateAfter { .. }
            | Fault::MalformedAfter { .. }),
        ) = fault
        {
            return self.fault_end(f, p, &text).await;
        }

        let out_n = self.rec.output_tokens;
        let usage = json!({
            "prompt_tokens": ptoks,
            "completion_tokens": out_n,
            "total_tokens": ptoks + out_n,
        });
        let timings = sh
            .profile
            .openai_timings
            .then(|| timings_json(ptoks, prompt_eval, out_n, eval));
        if p.stream {
            let mut events = vec![self.chunk(None, Some(reason), false)];
            if p.include_usage {
                events.push(json!({
                    "id": self.id,
                    "object": if self.chat { "chat.completion.chunk" } else { "text_completion" },
                    "created": self.created,
                    "model": self.rec.model,
                    "system_fingerprint": FINGERPRINT,
                    "choices": [],
                    "usage": usage,
                }));
            }
            if let (Some(t), Some(Value::Object(last))) = (timings, events.last_mut()) {
                last.insert("timings".into(), t);
            }
            let mut out = Vec::new();
            if !self.head_sent {
                out.extend(http::head(200, SSE, None, !self.keep));
                self.head_sent = true;
                self.rec.status = 200;
            }
            for e in &events {
                out.extend(http::chunk(&sse(e.to_string().as_bytes())));
            }
            out.extend(http::chunk(&sse(b"[DONE]")));
            out.extend_from_slice(LAST_CHUNK);
            self.commit();
            self.wr.write_all(&out).await?;
            self.wr.flush().await?;
        } else {
            let mut body = self.whole_reply(&text, reason);
            if let Value::Object(o) = &mut body {
                o.insert("usage".into(), usage);
                if let Some(t) = timings {
                    o.insert("timings".into(), t);
                }
            }
            self.rec.status = 200;
            self.commit_body();
            http::write_full(
                self.wr,
                200,
                JSON,
                body.to_string().as_bytes(),
                !self.keep,
                false,
            )
            .await?;
        }
        Ok(self.keep)
    }

    /// The non-streamed reply object (without `usage`/`timings`).
    fn whole_reply(&self, text: &str, reason: &str) -> Value {
        if self.chat {
            json!({
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.rec.model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": text },
                    "finish_reason": reason,
                }],
            })
        } else {
            json!({
                "id": self.id,
                "object": "text_completion",
                "created": self.created,
                "model": self.rec.model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{ "text": text, "index": 0, "logprobs": null, "finish_reason": reason }],
            })
        }
    }

    /// Ends a reply the way an `error_after` / `truncate_after` / `malformed_after` fault says.
    async fn fault_end(&mut self, f: &Fault, p: &Parsed, text: &str) -> std::io::Result<bool> {
        if !p.stream {
            match f {
                Fault::ErrorAfter { message, .. } => {
                    self.rec.status = 500;
                    self.commit_body();
                    let body = error_body(500, message);
                    http::write_full(self.wr, 500, JSON, body.as_bytes(), true, false).await?;
                }
                Fault::TruncateAfter { .. } => {
                    let body = self.whole_reply(text, "stop").to_string().into_bytes();
                    let mut out = http::head(200, JSON, Some(body.len()), true);
                    out.extend_from_slice(&body[..body.len() / 2]);
                    self.rec.status = 200;
                    self.commit_body();
                    self.wr.write_all(&out).await?;
                    self.wr.flush().await?;
                }
                _ => {
                    let body = format!("{{\"id\":\"{}\",\"choices\":<<not json>>", self.id);
                    self.rec.status = 200;
                    self.commit_body();
                    http::write_full(self.wr, 200, JSON, body.as_bytes(), true, false).await?;
                }
            }
            return Ok(false);
        }
        match f {
            Fault::ErrorAfter { message, .. } => {
                let payload = json!({
                    "error": { "code": 500, "message": message, "type": "server_error" }
                })
                .to_string();
                self.commit();
                self.write_event(payload.as_bytes(), true).await?;
                self.wr.write_all(LAST_CHUNK).await?;
            }
            Fault::TruncateAfter { abrupt, .. } => {
                if !self.head_sent {
                    self.head_sent = true;
                    self.rec.status = 200;
                    self.wr.write_all(&http::head(200, SSE, None, true)).await?;
                }
                self.commit();
                if !abrupt {
                    self.wr.write_all(LAST_CHUNK).await?;
                }
            }
            _ => {
                let good = self.chunk(Some(" lorem"), None, false).to_string();
                let bad = &good.as_bytes()[..good.len() * 2 / 3];
                self.commit();
                self.write_event(bad, true).await?;
                self.wr.write_all(LAST_CHUNK).await?;
            }
        }
        self.wr.flush().await?;
        let _ = self.wr.shutdown().await;
        Ok(false)
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
        assert!(handles("/v1/chat/completions") && handles("/props") && !handles("/api/chat"));
    }
}
