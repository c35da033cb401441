//! Listeners, connections and routes: the Ollama routes here, the OpenAI-compatible ones in
//! `openai.rs`, and what both share (truth bookkeeping, faults, the timing model) in
//! `exchange.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::io::BufReader;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use super::arrival::StampedRead;
use super::exchange::{
    ActiveGuard, Exchange, FaultEnd, Length, Reject, Schedule, Wire, ending_fault, joined_contents,
    json_object, stream_flag,
};
use super::http::{self, JSON, NDJSON, ReadOutcome, TEXT};
use super::profile::{Fault, ModelProfile};
use super::state::{ListenerState, Loaded, Shared};
use super::util::{Rng, fnv1a, requested_model, rfc3339, unix_ms};

/// `load_duration` floor is whatever a warm hit really takes; the idle keep-alive reported
/// by `/api/ps` (the emulator never unloads on its own).
const KEEP_ALIVE: Duration = Duration::from_secs(300);

/// Accepts connections until `stop` fires (or its sender is dropped), then aborts them all.
pub async fn serve_listener(
    listener: TcpListener,
    shared: Arc<Shared>,
    ls: Arc<ListenerState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    while !*stop.borrow() {
        tokio::select! {
            _ = stop.changed() => {}
            accepted = listener.accept() => match accepted {
                Ok((sock, _)) => {
                    conns.spawn(serve_conn(sock, shared.clone(), ls.clone()));
                }
                Err(e) => {
                    tracing::warn!(addr = %ls.addr, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
        if stop.has_changed().is_err() {
            break;
        }
    }
    conns.shutdown().await;
}

async fn serve_conn(sock: TcpStream, shared: Arc<Shared>, ls: Arc<ListenerState>) {
    let _ = sock.set_nodelay(true);
    let (rd, mut wr) = StampedRead::split(sock);
    let mut rd = BufReader::new(rd);
    loop {
        match http::read_request(&mut rd).await {
            Err(_) | Ok(ReadOutcome::Closed) => return,
            Ok(ReadOutcome::Bad(msg)) => {
                let body = json!({ "error": msg }).to_string();
                let _ = http::write_full(&mut wr, 400, JSON, body.as_bytes(), true, false).await;
                return;
            }
            Ok(ReadOutcome::Request(req)) => {
                // The truth starts when the request had arrived, not when it was read.
                let (received, arrived) = rd.get_mut().arrival();
                let received_unix_ms = unix_ms(arrived);
                let keep = route(&mut wr, &shared, &ls, req, received, received_unix_ms).await;
                if !matches!(keep, Ok(true)) {
                    return;
                }
            }
        }
    }
}

async fn route(
    wr: &mut OwnedWriteHalf,
    sh: &Shared,
    ls: &ListenerState,
    req: http::Request,
    received: Instant,
    received_unix_ms: f64,
) -> std::io::Result<bool> {
    let keep = req.keep_alive;
    let close = !keep;
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    let head_only = req.method == "HEAD";
    let path = req.path.as_str();
    let known_get = matches!(
        path,
        "/" | "/api/version" | "/api/tags" | "/api/ps" | "/metrics"
    ) || super::openai::GET.contains(&path);
    let known_post = matches!(
        path,
        "/api/generate" | "/api/chat" | "/api/show" | "/api/pull"
    ) || super::openai::POST.contains(&path)
        || (path == super::openai::TOKENIZE && sh.profile.openai_tokenize);
    if !known_get && !known_post {
        http::write_full(wr, 404, TEXT, b"404 page not found", close, head_only).await?;
        return Ok(keep);
    }
    if (known_get && !get) || (known_post && req.method != "POST") {
        http::write_full(wr, 405, TEXT, b"405 method not allowed", close, head_only).await?;
        return Ok(keep);
    }
    let body = match path {
        "/" => {
            http::write_full(wr, 200, TEXT, b"Ollama is running", close, head_only).await?;
            return Ok(keep);
        }
        "/metrics" => {
            let text = sh.metrics.exposition(ls.addr);
            http::write_full(wr, 200, TEXT, text.as_bytes(), close, head_only).await?;
            return Ok(keep);
        }
        // `chimera_emulator` lets chimera record that a campaign ran against this test
        // instrument, whatever version string the profile claims.
        "/api/version" => json!({ "version": sh.profile.version, "chimera_emulator": true }),
        "/api/tags" => tags(sh, ls),
        "/api/pull" => return super::pull::serve(wr, sh, ls, &req.body, keep).await,
        "/api/ps" => ps(sh, ls),
        "/api/show" => match show(sh, ls, &req.body) {
            Ok(v) => v,
            Err((code, msg)) => {
                let body = json!({ "error": msg }).to_string();
                http::write_full(wr, code, JSON, body.as_bytes(), close, false).await?;
                return Ok(keep);
            }
        },
        "/api/generate" | "/api/chat" => {
            let x = Exchange::new(wr, sh, ls.addr, keep, received, received_unix_ms, &WIRE);
            let mut g = Gen {
                x,
                ls,
                chat: path == "/api/chat",
            };
            let result = g.run(&req.body).await;
            g.x.end(&result);
            return result;
        }
        super::openai::TOKENIZE => match super::openai::tokenize(&req.body) {
            Ok(v) => v,
            Err((code, msg)) => {
                let body = super::openai::error_reply(code, &msg);
                http::write_full(wr, code, JSON, body.as_bytes(), close, false).await?;
                return Ok(keep);
            }
        },
        _ if known_post => {
            return super::openai::complete(wr, sh, ls, &req, received, received_unix_ms).await;
        }
        _ => super::openai::get(sh, path),
    };
    http::write_full(wr, 200, JSON, body.to_string().as_bytes(), close, head_only).await?;
    Ok(keep)
}

fn details(m: &ModelProfile) -> Value {
    let family = m
        .name
        .rsplit('/')
        .next()
        .unwrap_or(&m.name)
        .split(':')
        .next()
        .unwrap_or("emulated")
        .to_owned();
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "emulated",
        "quantization_level": "emulated",
    })
}

fn full_name(m: &ModelProfile) -> String {
    if m.name.rsplit('/').next().is_some_and(|l| l.contains(':')) {
        m.name.clone()
    } else {
        format!("{}:latest", m.name)
    }
}

fn tags(sh: &Shared, ls: &ListenerState) -> Value {
    let p = &sh.profile;
    let now = rfc3339(SystemTime::now());
    let models: Vec<Value> = p
        .models
        .iter()
        .enumerate()
        .filter(|(i, _)| super::pull::present(p, ls, *i))
        .map(|(i, m)| {
            json!({
                "name": full_name(m),
                "model": full_name(m),
                "modified_at": now,
                "size": m.size,
                "digest": sh.digest(i),
                "details": details(m),
                "capabilities": ["completion"],
            })
        })
        .collect();
    json!({ "models": models })
}

fn ps(sh: &Shared, ls: &ListenerState) -> Value {
    let p = &sh.profile;
    let loaded = ls.loaded().clone();
    let models: Vec<Value> = loaded
        .and_then(|l| p.models.get(l.model).map(|m| (l, m)))
        .map(|(l, m)| {
            json!({
                "name": full_name(m),
                "model": full_name(m),
                "size": m.size,
                "digest": sh.digest(l.model),
                "details": details(m),
                "expires_at": rfc3339(l.last_used + KEEP_ALIVE),
                "size_vram": m.size,
                "context_length": l.num_ctx.unwrap_or(i64::from(m.context_length)),
            })
        })
        .into_iter()
        .collect();
    json!({ "models": models })
}

fn show(sh: &Shared, ls: &ListenerState, body: &[u8]) -> Result<Value, (u16, String)> {
    let p = &sh.profile;
    let v: Value = serde_json::from_slice(body).map_err(|e| (400, e.to_string()))?;
    let name = requested_model(&v).ok_or_else(|| (400, "model is required".to_owned()))?;
    let (i, m) = p
        .models
        .iter()
        .enumerate()
        .find(|(i, m)| m.matches(name) && super::pull::present(p, ls, *i))
        .ok_or_else(|| (404, format!("model '{name}' not found")))?;
    let family = details(m)["family"]
        .as_str()
        .unwrap_or("emulated")
        .to_owned();
    Ok(json!({
        "license": "",
        "modelfile": format!("# chimera emulator model (not an LLM)\nFROM {}\n", m.name),
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": details(m),
        "model_info": {
            "general.architecture": family,
            format!("{family}.context_length"): m.context_length,
        },
        "capabilities": ["completion"],
        "modified_at": rfc3339(SystemTime::now()),
        "digest": sh.digest(i),
    }))
}

/// One line of a generate/chat reply. Zero metrics are omitted, as Go's `omitempty` does.
#[derive(Serialize)]
struct Line<'a> {
    model: &'a str,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Message<'a>>,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Vec<u32>>,
    #[serde(skip_serializing_if = "is_zero")]
    total_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    load_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    prompt_eval_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    prompt_eval_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    eval_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    eval_duration: u64,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl<'a> Line<'a> {
    fn new(model: &'a str, chat: bool, text: &'a str, done: bool) -> Line<'a> {
        Line {
            model,
            created_at: rfc3339(SystemTime::now()),
            response: (!chat).then_some(text),
            message: chat.then_some(Message {
                role: "assistant",
                content: text,
            }),
            done,
            done_reason: None,
            context: None,
            total_duration: 0,
            load_duration: 0,
            prompt_eval_count: 0,
            prompt_eval_duration: 0,
            eval_count: 0,
            eval_duration: 0,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Options whose JSON type Ollama checks (a mismatch is a 500).
const INT_OPTIONS: [&str; 11] = [
    "num_ctx",
    "num_gpu",
    "num_predict",
    "seed",
    "top_k",
    "num_batch",
    "num_thread",
    "main_gpu",
    "repeat_last_n",
    "num_keep",
    "draft_num_predict",
];
const FLOAT_OPTIONS: [&str; 7] = [
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
];

fn int_option(options: &Value, key: &str) -> Option<i64> {
    options.get(key).and_then(Value::as_f64).map(|f| f as i64)
}

/// True when a `keep_alive` value means "unload now" (0, "0", "0s", "0m").
fn keep_alive_zero(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => {
            let t = s.trim_end_matches(['s', 'm', 'h']);
            t.parse::<f64>().ok() == Some(0.0)
        }
        _ => false,
    }
}

/// A request parsed far enough to be served.
struct Parsed {
    model: usize,
    stream: bool,
    options: Value,
    prompt: String,
    /// No prompt (generate) or no messages (chat): load only.
    empty: bool,
    unload: bool,
}

/// The Ollama routes' wire: NDJSON streams, streamed unless the request says not to, errors as
/// `{"error": msg}`.
const WIRE: Wire = Wire {
    stream_type: NDJSON,
    stream_default: true,
    error_body: error_json,
};

/// Ollama's error body.
fn error_json(_code: u16, msg: &str) -> String {
    json!({ "error": msg }).to_string()
}

/// One generate/chat exchange.
struct Gen<'a> {
    x: Exchange<'a>,
    ls: &'a ListenerState,
    chat: bool,
}

impl Gen<'_> {
    fn parse(&mut self, body: &[u8]) -> Result<Parsed, Reject> {
        let obj = json_object(body)?;
        self.x.rec.model = obj
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        self.x.rec.stream = stream_flag(&obj, WIRE.stream_default)?;
        let options = obj.get("options").cloned().unwrap_or(Value::Null);
        self.x.rec.options = options.clone();
        match &options {
            Value::Null => {}
            Value::Object(o) => check_option_types(o)?,
            _ => return Err((400, "`options` must be an object".into())),
        }
        self.x.rec.prompt = if self.chat {
            match obj.get("messages") {
                None | Some(Value::Null) => String::new(),
                Some(Value::Array(msgs)) => joined_contents(msgs),
                Some(_) => return Err((400, "`messages` must be an array".into())),
            }
        } else {
            match obj.get("prompt") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err((400, "`prompt` must be a string".into())),
            }
        };
        let empty_request = if self.chat {
            obj.get("messages")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        } else {
            self.x.rec.prompt.is_empty()
        };
        let name = &self.x.rec.model;
        if name.is_empty() {
            return Err(if self.chat {
                (400, "model is required".into())
            } else {
                (404, "model '' not found".into())
            });
        }
        let profile = &self.x.sh.profile;
        let model = profile
            .models
            .iter()
            .position(|m| m.matches(name))
            .filter(|&i| super::pull::present(profile, self.ls, i))
            .ok_or_else(|| (404, format!("model '{name}' not found")))?;
        Ok(Parsed {
            model,
            stream: self.x.rec.stream,
            options,
            prompt: self.x.rec.prompt.clone(),
            empty: empty_request,
            unload: empty_request && keep_alive_zero(obj.get("keep_alive")),
        })
    }

    async fn run(&mut self, body: &[u8]) -> std::io::Result<bool> {
        let parsed = self.parse(body);
        let (p, fault) = match self.x.start(parsed, |p| p.model).await? {
            Ok(started) => started,
            Err(keep) => return Ok(keep),
        };
        if p.unload {
            *self.ls.loaded() = None;
            self.x.rec.status = 200;
            return self.write_special("unload").await;
        }
        self.load(p.model, &p.options).await;
        if p.empty {
            self.x.rec.status = 200;
            return self.write_special("load").await;
        }
        let _slot = match &self.ls.slots {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        let _active = ActiveGuard::enter(&self.x.sh.active);
        self.generate(&p, fault.as_ref()).await
    }

    /// Loads (or reuses) the model per Ollama's reload rule; fills `load_ms` / `reloaded`.
    async fn load(&mut self, model: usize, options: &Value) {
        let num_gpu = int_option(options, "num_gpu");
        let num_ctx = int_option(options, "num_ctx");
        let _serialised = self.ls.load_lock.lock().await;
        let current = self.ls.loaded().clone();
        let reload = match &current {
            None => true,
            Some(l) => {
                l.model != model
                    || l.num_ctx != num_ctx
                    || (num_gpu.is_some_and(|g| g >= 0) && l.num_gpu != num_gpu)
            }
        };
        if reload {
            *self.ls.loaded() = None;
            let load = self.x.sh.profile.models[model].load_ms;
            sleep_until((Instant::now() + Duration::from_secs_f64(load / 1000.0)).into()).await;
        }
        let mut guard = self.ls.loaded();
        let stored_gpu = if reload {
            num_gpu
        } else {
            current.as_ref().and_then(|l| l.num_gpu)
        };
        *guard = Some(Loaded {
            model,
            num_gpu: stored_gpu,
            num_ctx,
            last_used: SystemTime::now(),
        });
        self.x.rec.reloaded = reload;
        self.x.rec.load_ms = self.x.received.elapsed().as_secs_f64() * 1000.0;
    }

    /// The reply to an empty prompt: `done_reason` "load" or "unload", no metrics, not streamed.
    async fn write_special(&mut self, reason: &str) -> std::io::Result<bool> {
        let mut line = Line::new(&self.x.rec.model, self.chat, "", true);
        line.done_reason = Some(reason);
        let body = line.bytes();
        self.x.commit();
        http::write_full(
            self.x.wr,
            200,
            JSON,
            &body[..body.len() - 1],
            !self.x.keep,
            false,
        )
        .await?;
        Ok(self.x.keep)
    }

    async fn generate(&mut self, p: &Parsed, fault: Option<&Fault>) -> std::io::Result<bool> {
        let model_echo = self.x.rec.model.clone();
        let opt_seed = int_option(&p.options, "seed").unwrap_or(0) as u64;
        let num_predict = int_option(&p.options, "num_predict");
        let mut s = Schedule::prefill(
            &mut self.x,
            p.model,
            &p.prompt,
            opt_seed,
            Length::cap(num_predict),
            fault,
        )
        .await;
        let ptoks = s.prompt_tokens;
        let chat = self.chat;
        let close = s.closing;
        let frame = |_, tok: &str| Line::new(&model_echo, chat, tok, false).bytes();
        let Some(d) = s.decode(&mut self.x, p.stream, close, frame).await? else {
            return Ok(self.x.keep);
        };
        if let Some(f) = ending_fault(fault) {
            return self
                .fault_end(f, &model_echo, p, &d.text, ptoks, d.eval)
                .await;
        }

        let mut prompt_rng = Rng::new(fnv1a(&p.prompt));
        let context: Option<Vec<u32>> = (!self.chat).then(|| {
            (0..ptoks)
                .map(|_| prompt_rng.below(32_000) as u32)
                .chain(d.words.iter().map(|&w| 1000 + w as u32))
                .collect()
        });
        let mut line = Line::new(&model_echo, self.chat, &d.text, true);
        line.done_reason = Some(s.reason);
        line.context = context;
        line.load_duration = ns(Duration::from_secs_f64(self.x.rec.load_ms / 1000.0));
        line.prompt_eval_count = u64::from(ptoks);
        line.prompt_eval_duration = if ptoks > 0 { ns(s.prompt_eval) } else { 0 };
        line.eval_count = u64::from(self.x.rec.output_tokens);
        line.eval_duration = if self.x.rec.output_tokens > 0 {
            ns(d.eval)
        } else {
            0
        };
        line.total_duration = ns(self.x.received.elapsed());
        let bytes = line.bytes();
        if p.stream {
            self.x.finish_stream(&[bytes]).await?;
            Ok(self.x.keep)
        } else {
            self.x.write_reply(&bytes[..bytes.len() - 1]).await
        }
    }

    /// Ends a reply the way an `error_after` / `truncate_after` / `malformed_after` fault says.
    async fn fault_end(
        &mut self,
        f: &Fault,
        model_echo: &str,
        p: &Parsed,
        text: &str,
        ptoks: u32,
        eval: Duration,
    ) -> std::io::Result<bool> {
        let end = match (f, p.stream) {
            (Fault::ErrorAfter { message, .. }, false) => {
                FaultEnd::Whole(500, error_json(500, message).into_bytes())
            }
            (Fault::TruncateAfter { .. }, false) => {
                let mut line = Line::new(model_echo, self.chat, text, true);
                line.done_reason = Some("stop");
                line.prompt_eval_count = u64::from(ptoks);
                line.eval_count = u64::from(self.x.rec.output_tokens);
                line.eval_duration = ns(eval);
                FaultEnd::Half(line.bytes())
            }
            (_, false) => FaultEnd::Whole(
                200,
                format!("{{\"model\":\"{model_echo}\",\"response\":<<not json>>").into_bytes(),
            ),
            (Fault::ErrorAfter { message, .. }, true) => {
                let mut line = error_json(500, message).into_bytes();
                line.push(b'\n');
                FaultEnd::LastChunk(line)
            }
            (Fault::TruncateAfter { abrupt, .. }, true) => FaultEnd::Cut { abrupt: *abrupt },
            (_, true) => {
                let good = Line::new(model_echo, self.chat, " lorem", false).bytes();
                let mut bad = good[..good.len() * 2 / 3].to_vec();
                bad.push(b'\n');
                FaultEnd::LastChunk(bad)
            }
        };
        self.x.fault_end(end).await
    }
}

fn check_option_types(o: &Map<String, Value>) -> Result<(), Reject> {
    for key in INT_OPTIONS {
        if let Some(v) = o.get(key)
            && !v.is_number()
        {
            return Err((500, format!("option \"{key}\" must be of type integer")));
        }
    }
    for key in FLOAT_OPTIONS {
        if let Some(v) = o.get(key)
            && !v.is_number()
        {
            return Err((500, format!("option \"{key}\" must be of type float")));
        }
    }
    Ok(())
}
