//! Listeners, connections, routes and the timing model.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use super::http::{self, JSON, LAST_CHUNK, NDJSON, ReadOutcome, TEXT};
use super::profile::{Fault, ModelProfile, Profile};
use super::util::{Rng, WORDS, fnv1a, prompt_tokens, rfc3339, unix_ms};
use super::{TruthLog, TruthRecord};

/// `load_duration` floor is whatever a warm hit really takes; the idle keep-alive reported
/// by `/api/ps` (the emulator never unloads on its own).
const KEEP_ALIVE: Duration = Duration::from_secs(300);

/// State shared by every listener of one emulator.
#[derive(Debug)]
pub struct Shared {
    /// The profile.
    pub profile: Profile,
    /// Ground truth.
    pub truth: TruthLog,
    /// Streams currently using the (shared) GPU.
    pub active: AtomicUsize,
    /// Per model (profile order): generate/chat requests counted against `fault_first`.
    pub faulted: Vec<AtomicU32>,
}

impl Shared {
    /// The fault to inject into this request for `model`: the profile's, unless `fault_first`
    /// is set and that many requests of the model have already been served.
    fn fault_for(&self, model: usize) -> Option<Fault> {
        let m = &self.profile.models[model];
        let fault = m.fault.clone()?;
        match m.fault_first {
            None => Some(fault),
            Some(n) => {
                let seen = self.faulted.get(model).map_or(u32::MAX, |c| {
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
    fn share(&self) -> f64 {
        if self.profile.shared_gpu {
            self.active.load(Ordering::SeqCst).max(1) as f64
        } else {
            1.0
        }
    }
}

/// Counts one stream as active on the GPU while alive.
struct ActiveGuard<'a>(&'a AtomicUsize);

impl<'a> ActiveGuard<'a> {
    fn enter(a: &'a AtomicUsize) -> ActiveGuard<'a> {
        a.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(a)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The model loaded on one listener and the Runner options it was loaded with.
#[derive(Debug, Clone)]
struct Loaded {
    model: usize,
    num_gpu: Option<i64>,
    num_ctx: Option<i64>,
    last_used: SystemTime,
}

/// One listener: its address, its loaded model, its slots.
#[derive(Debug)]
pub struct ListenerState {
    /// Bound address.
    pub addr: SocketAddr,
    loaded: Mutex<Option<Loaded>>,
    load_lock: tokio::sync::Mutex<()>,
    slots: Option<Semaphore>,
    /// Models (profile indices) fetched by `/api/pull` on this listener (see `absent`).
    pub(super) pulled: Mutex<std::collections::HashSet<usize>>,
}

impl ListenerState {
    /// A listener with nothing loaded.
    pub fn new(addr: SocketAddr, num_parallel: u32) -> ListenerState {
        ListenerState {
            addr,
            loaded: Mutex::new(None),
            load_lock: tokio::sync::Mutex::new(()),
            slots: (num_parallel > 0).then(|| Semaphore::new(num_parallel as usize)),
            pulled: Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, Option<Loaded>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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
    let (rd, mut wr) = sock.into_split();
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
                let received = Instant::now();
                let received_unix_ms = unix_ms(SystemTime::now());
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
    if super::openai::handles(path) {
        return super::openai::route(wr, sh, ls, req, received, received_unix_ms).await;
    }
    let known_get = matches!(path, "/" | "/api/version" | "/api/tags" | "/api/ps");
    let known_post = matches!(
        path,
        "/api/generate" | "/api/chat" | "/api/show" | "/api/pull"
    );
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
        // `chimera_emulator` lets chimera record that a campaign ran against this test
        // instrument, whatever version string the profile claims.
        "/api/version" => json!({ "version": sh.profile.version, "chimera_emulator": true }),
        "/api/tags" => tags(&sh.profile, ls),
        "/api/pull" => return super::pull::serve(wr, sh, ls, &req.body, keep).await,
        "/api/ps" => ps(&sh.profile, ls),
        "/api/show" => match show(&sh.profile, ls, &req.body) {
            Ok(v) => v,
            Err((code, msg)) => {
                let body = json!({ "error": msg }).to_string();
                http::write_full(wr, code, JSON, body.as_bytes(), close, false).await?;
                return Ok(keep);
            }
        },
        _ => {
            let chat = path == "/api/chat";
            let rec = TruthRecord {
                listener: ls.addr,
                model: String::new(),
                prompt: String::new(),
                options: Value::Null,
                stream: true,
                status: 0,
                fault: None,
                received_unix_ms,
                first_chunk_offset_us: None,
                chunk_offsets_us: Vec::new(),
                output_tokens: 0,
                prompt_tokens: 0,
                load_ms: 0.0,
                reloaded: false,
            };
            let mut g = Gen {
                wr,
                sh,
                ls,
                chat,
                keep,
                received,
                head_sent: false,
                rec,
                committed: false,
            };
            let result = g.run(&req.body).await;
            if !g.committed {
                if result.is_err() && g.rec.fault.is_none() {
                    g.rec.fault = Some("client_disconnected".to_owned());
                }
                g.commit();
            }
            return result;
        }
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

fn tags(p: &Profile, ls: &ListenerState) -> Value {
    let now = rfc3339(SystemTime::now());
    let models: Vec<Value> = p
        .models
        .iter()
        .enumerate()
        .filter(|(i, _)| super::pull::present(p, ls, *i))
        .map(|(_, m)| {
            json!({
                "name": full_name(m),
                "model": full_name(m),
                "modified_at": now,
                "size": m.size,
                "digest": m.digest,
                "details": details(m),
                "capabilities": ["completion"],
            })
        })
        .collect();
    json!({ "models": models })
}

fn ps(p: &Profile, ls: &ListenerState) -> Value {
    let loaded = ls.loaded().clone();
    let models: Vec<Value> = loaded
        .and_then(|l| p.models.get(l.model).map(|m| (l, m)))
        .map(|(l, m)| {
            json!({
                "name": full_name(m),
                "model": full_name(m),
                "size": m.size,
                "digest": m.digest,
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

fn show(p: &Profile, ls: &ListenerState, body: &[u8]) -> Result<Value, (u16, String)> {
    let v: Value = serde_json::from_slice(body).map_err(|e| (400, e.to_string()))?;
    let name = v
        .get("model")
        .or_else(|| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        return Err((400, "model is required".to_owned()));
    }
    let m = p
        .models
        .iter()
        .enumerate()
        .find(|(i, m)| m.matches(name) && super::pull::present(p, ls, *i))
        .map(|(_, m)| m)
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

/// One generate/chat exchange. Its truth record is committed just before the last bytes of
/// the response are written, so a client that has read a whole response finds its record.
struct Gen<'a> {
    wr: &'a mut OwnedWriteHalf,
    sh: &'a Shared,
    ls: &'a ListenerState,
    chat: bool,
    keep: bool,
    received: Instant,
    head_sent: bool,
    rec: TruthRecord,
    committed: bool,
}

type Reject = (u16, String);

impl Gen<'_> {
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

    /// Answers with `code` and `{"error": msg}` (before any chunk).
    async fn reject(&mut self, code: u16, msg: &str) -> std::io::Result<bool> {
        self.rec.status = code;
        self.commit();
        let body = json!({ "error": msg }).to_string();
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
        self.rec.model = obj
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        self.rec.stream = match obj.get("stream") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err((400, "`stream` must be a boolean".into())),
        };
        let options = obj.get("options").cloned().unwrap_or(Value::Null);
        self.rec.options = options.clone();
        match &options {
            Value::Null => {}
            Value::Object(o) => check_option_types(o)?,
            _ => return Err((400, "`options` must be an object".into())),
        }
        self.rec.prompt = if self.chat {
            match obj.get("messages") {
                None | Some(Value::Null) => String::new(),
                Some(Value::Array(msgs)) => msgs
                    .iter()
                    .map(|m| m.get("content").and_then(Value::as_str).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n"),
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
            self.rec.prompt.is_empty()
        };
        if self.rec.model.is_empty() {
            return Err(if self.chat {
                (400, "model is required".into())
            } else {
                (404, "model '' not found".into())
            });
        }
        let model = self
            .sh
            .profile
            .models
            .iter()
            .position(|m| m.matches(&self.rec.model))
            .filter(|&i| super::pull::present(&self.sh.profile, self.ls, i))
            .ok_or_else(|| (404, format!("model '{}' not found", self.rec.model)))?;
        Ok(Parsed {
            model,
            stream: self.rec.stream,
            options,
            prompt: self.rec.prompt.clone(),
            empty: empty_request,
            unload: empty_request && keep_alive_zero(obj.get("keep_alive")),
        })
    }

    async fn run(&mut self, body: &[u8]) -> std::io::Result<bool> {
        let p = match self.parse(body) {
            Ok(p) => p,
            Err((code, msg)) => return self.reject(code, &msg).await,
        };
        let sh = self.sh;
        let m = &sh.profile.models[p.model];
        let fault = sh.fault_for(p.model);
        self.rec.fault = fault.as_ref().map(|f| f.name().to_owned());
        match &fault {
            Some(Fault::Status { code, message }) => return self.reject(*code, message).await,
            Some(Fault::RefuseAfterAccept) => {
                self.rec.status = 0;
                return Ok(false);
            }
            _ => {}
        }
        if p.unload {
            *self.ls.loaded() = None;
            self.rec.status = 200;
            return self.write_special("unload").await;
        }
        self.load(p.model, &p.options).await;
        if p.empty {
            self.rec.status = 200;
            return self.write_special("load").await;
        }
        let _slot = match &self.ls.slots {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        let _active = ActiveGuard::enter(&sh.active);
        self.generate(m, &p, fault.as_ref()).await
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
            let load = self.sh.profile.models[model].load_ms;
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
        self.rec.reloaded = reload;
        self.rec.load_ms = self.received.elapsed().as_secs_f64() * 1000.0;
    }

    /// The reply to an empty prompt: `done_reason` "load" or "unload", no metrics, not streamed.
    async fn write_special(&mut self, reason: &str) -> std::io::Result<bool> {
        let mut line = Line::new(&self.rec.model, self.chat, "", true);
        line.done_reason = Some(reason);
        let body = line.bytes();
        self.commit();
        http::write_full(
            self.wr,
            200,
            JSON,
            &body[..body.len() - 1],
            !self.keep,
            false,
        )
        .await?;
        Ok(self.keep)
    }

    async fn write_chunk(&mut self, line: &[u8], close: bool) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(line.len() + 128);
        if !self.head_sent {
            out.extend(http::head(200, NDJSON, None, close));
            self.head_sent = true;
            self.rec.status = 200;
        }
        out.extend(http::chunk(line));
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
        let model_echo = self.rec.model.clone();
        let opt_seed = int_option(&p.options, "seed").unwrap_or(0) as u64;
        let mut rng = Rng::new(
            sh.profile.seed
                ^ fnv1a(&m.name).rotate_left(17)
                ^ fnv1a(&p.prompt).rotate_left(31)
                ^ opt_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );

        // Prompt processing.
        let ptoks = prompt_tokens(&p.prompt);
        self.rec.prompt_tokens = ptoks;
        let prefill_start = Instant::now();
        let prefill = f64::from(ptoks) / (m.prompt_tok_s / sh.share());
        sleep_until((prefill_start + Duration::from_secs_f64(prefill)).into()).await;
        let decode_start = Instant::now();
        let prompt_eval = decode_start - prefill_start;

        // How many tokens, and what ends the stream.
        let num_predict = int_option(&p.options, "num_predict").filter(|n| *n >= 0);
        let mut n = m.output_tokens;
        let mut reason = "stop";
        if let Some(np) = num_predict
            && np <= i64::from(n)
        {
            n = u32::try_from(np).unwrap_or(0);
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

        // Fault before the first chunk: a status code, as Ollama does.
        if let (Some(0), Some(Fault::ErrorAfter { message, .. })) = (stop_after, fault) {
            return self.reject(500, message).await;
        }

        let mut text = String::new();
        let mut out_ids = Vec::with_capacity(n as usize);
        let mut deadline = decode_start;
        let mut last_token = decode_start;
        for i in 0..n {
            if let Some((k, ms)) = stall
                && k == i
            {
                deadline = deadline.max(Instant::now()) + Duration::from_millis(ms);
            }
            let mut delay = sh.share() / m.output_tok_s;
            if m.jitter_pct > 0.0 {
                delay *= 1.0 + m.jitter_pct / 100.0 * rng.symmetric();
            }
            deadline += Duration::from_secs_f64(delay.max(0.0));
            sleep_until(deadline.into()).await;
            let id = rng.below(WORDS.len() as u64) as usize;
            out_ids.push(1000 + id as u32);
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
                let line = Line::new(&model_echo, self.chat, &tok, false).bytes();
                self.write_chunk(&line, closing).await?;
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
            return self.fault_end(f, &model_echo, p, &text, ptoks, eval).await;
        }

        let mut final_text = String::new();
        if !p.stream {
            final_text = text;
        }
        let mut prompt_rng = Rng::new(fnv1a(&p.prompt));
        let context: Option<Vec<u32>> = (!self.chat).then(|| {
            (0..ptoks)
                .map(|_| prompt_rng.below(32_000) as u32)
                .chain(out_ids.iter().copied())
                .collect()
        });
        let mut line = Line::new(&model_echo, self.chat, &final_text, true);
        line.done_reason = Some(reason);
        line.context = context;
        line.load_duration = ns(Duration::from_secs_f64(self.rec.load_ms / 1000.0));
        line.prompt_eval_count = u64::from(ptoks);
        line.prompt_eval_duration = if ptoks > 0 { ns(prompt_eval) } else { 0 };
        line.eval_count = u64::from(self.rec.output_tokens);
        line.eval_duration = if self.rec.output_tokens > 0 {
            ns(eval)
        } else {
            0
        };
        line.total_duration = ns(self.received.elapsed());
        let bytes = line.bytes();
        if p.stream {
            let mut out = Vec::with_capacity(bytes.len() + 16);
            if !self.head_sent {
                out.extend(http::head(200, NDJSON, None, !self.keep));
                self.head_sent = true;
                self.rec.status = 200;
            }
            out.extend(http::chunk(&bytes));
            out.extend_from_slice(LAST_CHUNK);
            self.commit();
            self.wr.write_all(&out).await?;
            self.wr.flush().await?;
        } else {
            self.rec.status = 200;
            self.commit_body();
            http::write_full(
                self.wr,
                200,
                JSON,
                &bytes[..bytes.len() - 1],
                !self.keep,
                false,
            )
            .await?;
        }
        Ok(self.keep)
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
        if !p.stream {
            match f {
                Fault::ErrorAfter { message, .. } => {
                    self.rec.status = 500;
                    self.commit_body();
                    let body = json!({ "error": message }).to_string();
                    http::write_full(self.wr, 500, JSON, body.as_bytes(), true, false).await?;
                }
                Fault::TruncateAfter { .. } => {
                    let mut line = Line::new(model_echo, self.chat, text, true);
                    line.done_reason = Some("stop");
                    line.prompt_eval_count = u64::from(ptoks);
                    line.eval_count = u64::from(self.rec.output_tokens);
                    line.eval_duration = ns(eval);
                    let body = line.bytes();
                    let mut out = http::head(200, JSON, Some(body.len()), true);
                    out.extend_from_slice(&body[..body.len() / 2]);
                    self.rec.status = 200;
                    self.commit_body();
                    self.wr.write_all(&out).await?;
                    self.wr.flush().await?;
                }
                _ => {
                    let body = format!("{{\"model\":\"{model_echo}\",\"response\":<<not json>>");
                    self.rec.status = 200;
                    self.commit_body();
                    http::write_full(self.wr, 200, JSON, body.as_bytes(), true, false).await?;
                }
            }
            return Ok(false);
        }
        match f {
            Fault::ErrorAfter { message, .. } => {
                let mut line = json!({ "error": message }).to_string().into_bytes();
                line.push(b'\n');
                self.commit();
                self.write_chunk(&line, true).await?;
                self.wr.write_all(LAST_CHUNK).await?;
            }
            Fault::TruncateAfter { abrupt, .. } => {
                if !self.head_sent {
                    self.write_head_only().await?;
                }
                self.commit();
                if !abrupt {
                    self.wr.write_all(LAST_CHUNK).await?;
                }
            }
            _ => {
                let good = Line::new(model_echo, self.chat, " lorem", false).bytes();
                let mut bad = good[..good.len() * 2 / 3].to_vec();
                bad.push(b'\n');
                self.commit();
                self.write_chunk(&bad, true).await?;
                self.wr.write_all(LAST_CHUNK).await?;
            }
        }
        self.wr.flush().await?;
        let _ = self.wr.shutdown().await;
        Ok(false)
    }

    async fn write_head_only(&mut self) -> std::io::Result<()> {
        self.head_sent = true;
        self.rec.status = 200;
        self.wr
            .write_all(&http::head(200, NDJSON, None, true))
            .await
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
