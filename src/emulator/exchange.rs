//! What the Ollama generate/chat routes and the OpenAI-compatible completion routes share:
//! one exchange's truth record and response bookkeeping ([`Exchange`]), the fault decision
//! before any work, the active-stream guard, the seeded token schedule ([`Schedule`]) and
//! the first steps of reading a request body. Each protocol keeps its own wire format: it
//! builds the bodies, frames the chunks and says how its errors look.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::sleep_until;

use super::http::{self, JSON, LAST_CHUNK};
use super::profile::{Fault, ModelProfile};
use super::state::Shared;
use super::truth::TruthRecord;
use super::util::{Rng, WORDS, fnv1a, prompt_tokens};

/// A request that is not served: the status and the error message to answer with.
pub(super) type Reject = (u16, String);

/// What a protocol's exchanges do their own way.
pub(super) struct Wire {
    /// Content type of a streamed reply.
    pub(super) stream_type: &'static str,
    /// Streamed when the request does not say.
    pub(super) stream_default: bool,
    /// The error body for a status and a message.
    pub(super) error_body: fn(u16, &str) -> String,
}

/// One generate/chat/completion exchange. Its truth record is committed just before the last
/// bytes of the response are written, so a client that has read a whole response finds its
/// record.
pub(super) struct Exchange<'a> {
    pub(super) wr: &'a mut OwnedWriteHalf,
    pub(super) sh: &'a Shared,
    /// The connection stays open after the response.
    pub(super) keep: bool,
    /// When the request had fully arrived (the kernel's receive time of its last bytes where
    /// the kernel gives one, else when it was read; see `arrival.rs`).
    pub(super) received: Instant,
    wire: &'static Wire,
    head_sent: bool,
    committed: bool,
    /// The request's number among the model's generate/chat requests (0-based, over all
    /// listeners), once [`Exchange::start`] counted it.
    pub(super) nth: u32,
    pub(super) rec: TruthRecord,
}

impl<'a> Exchange<'a> {
    /// The exchange of a request that `listener` read completely at `received`
    /// (`received_unix_ms` on the wall clock), in the protocol `wire`.
    pub(super) fn new(
        wr: &'a mut OwnedWriteHalf,
        sh: &'a Shared,
        listener: SocketAddr,
        keep: bool,
        received: Instant,
        received_unix_ms: f64,
        wire: &'static Wire,
    ) -> Exchange<'a> {
        sh.metrics.begin(listener);
        Exchange {
            wr,
            sh,
            keep,
            received,
            wire,
            head_sent: false,
            committed: false,
            nth: 0,
            rec: TruthRecord {
                listener,
                model: String::new(),
                prompt: String::new(),
                options: Value::Null,
                stream: wire.stream_default,
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
        }
    }

    /// Adds the record to the truth log (once).
    pub(super) fn commit(&mut self) {
        if !self.committed {
            self.committed = true;
            let answered = (self.rec.status == 200 && self.rec.fault.is_none())
                .then_some((self.rec.output_tokens, self.rec.prompt_tokens));
            self.sh.metrics.end(self.rec.listener, answered);
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

    /// Records a text chunk as written now.
    pub(super) fn chunk_written(&mut self) {
        let off = self.offset_us();
        self.rec.chunk_offsets_us.push(off);
        self.rec.first_chunk_offset_us.get_or_insert(off);
    }

    /// Ends the exchange once its route returned `result`: a record not committed yet is
    /// committed now, as `client_disconnected` when a write failed and no fault was injected.
    pub(super) fn end(&mut self, result: &std::io::Result<bool>) {
        if !self.committed {
            if result.is_err() && self.rec.fault.is_none() {
                self.rec.fault = Some("client_disconnected".to_owned());
            }
            self.commit();
        }
    }

    /// Counts this request of the `model` that `parsed` asks for (its number goes to `nth`),
    /// draws the profile's fault for it and records its name. A request that did not parse, or whose fault is `status`, is answered
    /// at once with the protocol's error; `refuse_after_accept` closes without an answer.
    /// `Ok(Err(keep))`: answered (or refused); `keep` says whether the connection stays open.
    pub(super) async fn start<P>(
        &mut self,
        parsed: Result<P, Reject>,
        model: fn(&P) -> usize,
    ) -> std::io::Result<Result<(P, Option<Fault>), bool>> {
        let p = match parsed {
            Ok(p) => p,
            Err((code, msg)) => return self.reject(code, &msg).await.map(Err),
        };
        let m = model(&p);
        self.nth = self.sh.count_request(m);
        let fault = self.sh.fault_for(m, self.nth);
        self.rec.fault = fault.as_ref().map(|f| f.name().to_owned());
        match &fault {
            Some(Fault::Status { code, message }) => self.reject(*code, message).await.map(Err),
            Some(Fault::RefuseAfterAccept) => {
                self.rec.status = 0;
                Ok(Err(false))
            }
            _ => Ok(Ok((p, fault))),
        }
    }

    /// Answers with `code` and the protocol's error body (before any chunk).
    pub(super) async fn reject(&mut self, code: u16, msg: &str) -> std::io::Result<bool> {
        self.rec.status = code;
        self.commit();
        let body = (self.wire.error_body)(code, msg);
        http::write_full(self.wr, code, JSON, body.as_bytes(), !self.keep, false).await?;
        Ok(self.keep)
    }

    /// The head of the streamed reply the first time it is asked for (status 200 recorded),
    /// nothing after.
    fn stream_head(&mut self, close: bool) -> Vec<u8> {
        if self.head_sent {
            return Vec::new();
        }
        self.head_sent = true;
        self.rec.status = 200;
        http::head(200, self.wire.stream_type, None, close)
    }

    /// Writes one chunk of a streamed reply (`data` framed by the protocol), the head first.
    pub(super) async fn write_chunk(&mut self, data: &[u8], close: bool) -> std::io::Result<()> {
        let mut out = self.stream_head(close);
        out.extend(http::chunk(data));
        self.wr.write_all(&out).await?;
        self.wr.flush().await
    }

    /// Commits and writes the last chunks of a streamed reply and the end of its body.
    pub(super) async fn finish_stream(&mut self, chunks: &[Vec<u8>]) -> std::io::Result<()> {
        let mut out = self.stream_head(!self.keep);
        for c in chunks {
            out.extend(http::chunk(c));
        }
        out.extend_from_slice(LAST_CHUNK);
        self.commit();
        self.wr.write_all(&out).await?;
        self.wr.flush().await
    }

    /// Commits and writes a whole non-streamed reply with `code` (`close`: then close).
    async fn write_whole(&mut self, code: u16, body: &[u8], close: bool) -> std::io::Result<()> {
        self.rec.status = code;
        self.commit_body();
        http::write_full(self.wr, code, JSON, body, close, false).await
    }

    /// Commits and writes the whole non-streamed 200 reply.
    pub(super) async fn write_reply(&mut self, body: &[u8]) -> std::io::Result<bool> {
        self.write_whole(200, body, !self.keep).await?;
        Ok(self.keep)
    }

    /// Ends a reply the way an `error_after` / `truncate_after` / `malformed_after` fault
    /// says, with the protocol's bytes; the connection is closed.
    pub(super) async fn fault_end(&mut self, end: FaultEnd) -> std::io::Result<bool> {
        match end {
            FaultEnd::Whole(code, body) => {
                self.write_whole(code, &body, true).await?;
                return Ok(false);
            }
            FaultEnd::Half(body) => {
                let mut out = http::head(200, JSON, Some(body.len()), true);
                out.extend_from_slice(&body[..body.len() / 2]);
                self.rec.status = 200;
                self.commit_body();
                self.wr.write_all(&out).await?;
                self.wr.flush().await?;
                return Ok(false);
            }
            FaultEnd::LastChunk(data) => {
                self.commit();
                self.write_chunk(&data, true).await?;
                self.wr.write_all(LAST_CHUNK).await?;
            }
            FaultEnd::Cut { abrupt } => {
                let head = self.stream_head(true);
                self.wr.write_all(&head).await?;
                self.commit();
                if !abrupt {
                    self.wr.write_all(LAST_CHUNK).await?;
                }
            }
        }
        self.wr.flush().await?;
        let _ = self.wr.shutdown().await;
        Ok(false)
    }
}

/// How a fault ends a reply, in the protocol's bytes.
pub(super) enum FaultEnd {
    /// Not streamed: this status and whole body.
    Whole(u16, Vec<u8>),
    /// Not streamed: the head of this 200 body and its first half.
    Half(Vec<u8>),
    /// Streamed: this last (framed) chunk, then the end of the body.
    LastChunk(Vec<u8>),
    /// Streamed: the head if none was sent yet, then the end of the body unless `abrupt`.
    Cut {
        /// Close without ending the chunked body.
        abrupt: bool,
    },
}

/// Counts one stream as active on the GPU while alive.
pub(super) struct ActiveGuard<'a>(&'a AtomicUsize);

impl<'a> ActiveGuard<'a> {
    pub(super) fn enter(a: &'a AtomicUsize) -> ActiveGuard<'a> {
        a.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(a)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The request body as a JSON object.
pub(super) fn json_object(body: &[u8]) -> Result<Map<String, Value>, Reject> {
    if body.is_empty() {
        return Err((400, "missing request body".into()));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| (400, e.to_string()))?;
    let Value::Object(obj) = v else {
        return Err((400, "request body must be a JSON object".into()));
    };
    Ok(obj)
}

/// The request's `stream` flag (`default` when absent or null).
pub(super) fn stream_flag(obj: &Map<String, Value>, default: bool) -> Result<bool, Reject> {
    match obj.get("stream") {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err((400, "`stream` must be a boolean".into())),
    }
}

/// The prompt of a chat request: the message contents joined by newlines.
pub(super) fn joined_contents(msgs: &[Value]) -> String {
    msgs.iter()
        .map(|m| m.get("content").and_then(Value::as_str).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The message of an `error_after` fault due before the first token.
fn error_at_start(fault: Option<&Fault>) -> Option<&str> {
    match fault {
        Some(Fault::ErrorAfter { tokens: 0, message }) => Some(message),
        _ => None,
    }
}

/// The fault when it ends the reply early (`error_after`, `truncate_after`,
/// `malformed_after`).
pub(super) fn ending_fault(fault: Option<&Fault>) -> Option<&Fault> {
    fault.filter(|f| {
        matches!(
            f,
            Fault::ErrorAfter { .. } | Fault::TruncateAfter { .. } | Fault::MalformedAfter { .. }
        )
    })
}

/// What a request asks of its reply's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Length {
    /// `options.num_predict` (Ollama), `max_tokens` or `n_predict` (OpenAI routes): at most
    /// this many tokens; a negative value is no cap.
    pub(super) cap: Option<i64>,
    /// `min_tokens` (OpenAI routes, as vLLM): at least this many tokens, within the cap.
    pub(super) min: Option<i64>,
    /// `ignore_eos` (OpenAI routes, as llama-server and vLLM): exactly the cap; without a cap,
    /// until the context is full.
    pub(super) ignore_eos: bool,
}

impl Length {
    /// Only a cap (the Ollama routes: they honour `num_predict` and nothing else).
    pub(super) fn cap(cap: Option<i64>) -> Length {
        Length {
            cap,
            ..Length::default()
        }
    }
}

/// The tokens a reply generates and its finish reason, from the model's `natural` length,
/// what the request asks (`len`) and the `room` left in the context after the prompt:
/// `ignore_eos` generates exactly the cap (`length`), or `room` without a cap; otherwise the
/// natural length raised to `min_tokens`, then cut at the cap (`length` when the cap is
/// reached, `stop` when the model ended on its own).
pub(super) fn plan_length(natural: u32, len: Length, room: u32) -> (u32, &'static str) {
    let to_u32 = |c: i64| u32::try_from(c.max(0)).unwrap_or(u32::MAX);
    let cap = len.cap.filter(|c| *c >= 0).map(to_u32);
    if len.ignore_eos {
        return (cap.unwrap_or(room), "length");
    }
    let n = natural.max(len.min.map_or(0, to_u32));
    match cap {
        Some(c) if c <= n => (c, "length"),
        _ => (n, "stop"),
    }
}

/// The tokens of a reply as [`Schedule::decode`] produced them.
pub(super) struct Decoded {
    /// The whole text when not streamed (empty when streamed).
    pub(super) text: String,
    /// Each token's word (an index into [`WORDS`]).
    pub(super) words: Vec<usize>,
    /// Decode start → last token handled.
    pub(super) eval: Duration,
}

/// The seeded token schedule of a reply: the same profile seed, model, prompt and request
/// `seed` give the same words and delays, whatever the protocol.
pub(super) struct Schedule<'a> {
    sh: &'a Shared,
    m: &'a ModelProfile,
    rng: Rng,
    /// Tokens to generate.
    pub(super) n: u32,
    /// `stop`, or `length` when the request's cap ends the reply.
    pub(super) reason: &'static str,
    /// A fault ends the stream after the `n` tokens.
    pub(super) closing: bool,
    /// An `error_after` fault due before the first token: its message.
    error_at_start: Option<String>,
    stall: Option<(u32, u64)>,
    per_token_bytes: usize,
    /// Prompt tokens (see [`prompt_tokens`]).
    pub(super) prompt_tokens: u32,
    /// How long prompt processing took.
    pub(super) prompt_eval: Duration,
    decode_start: Instant,
    deadline: Instant,
    last_token: Instant,
}

impl<'a> Schedule<'a> {
    /// Processes `prompt` (sleeping `prompt_tokens / (prompt_tok_s / share)`, recorded in the
    /// truth) and plans the decode of profile model `model`: its natural length (see
    /// [`ModelProfile::natural_tokens`], for the exchange's request number), shaped by what
    /// the request asks ([`plan_length`]), or as many as the fault lets through.
    pub(super) async fn prefill(
        x: &mut Exchange<'a>,
        model: usize,
        prompt: &str,
        seed: u64,
        len: Length,
        fault: Option<&Fault>,
    ) -> Schedule<'a> {
        let sh = x.sh;
        let m = &sh.profile.models[model];
        let rng = Rng::new(
            sh.profile.seed
                ^ fnv1a(&m.name).rotate_left(17)
                ^ fnv1a(prompt).rotate_left(31)
                ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );

        let ptoks = prompt_tokens(prompt);
        x.rec.prompt_tokens = ptoks;
        let prefill_start = Instant::now();
        let prefill = f64::from(ptoks) / (m.prompt_tok_s / sh.share());
        sleep_until((prefill_start + Duration::from_secs_f64(prefill)).into()).await;
        let decode_start = Instant::now();

        // How many tokens, and what ends the stream.
        let natural = m.natural_tokens(sh.profile.seed, x.nth);
        let room = m.context_length.saturating_sub(ptoks);
        let (mut n, reason) = plan_length(natural, len, room);
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
        Schedule {
            sh,
            m,
            rng,
            n,
            reason,
            closing: stop_after.is_some(),
            error_at_start: error_at_start(fault).map(str::to_owned),
            stall,
            per_token_bytes,
            prompt_tokens: ptoks,
            prompt_eval: decode_start - prefill_start,
            decode_start,
            deadline: decode_start,
            last_token: decode_start,
        }
    }

    /// Generates the `n` tokens on schedule, each counted in the record's `output_tokens`.
    /// Streamed, each is written at once as the chunk `frame` makes of its index and text
    /// (`close`: the head says the connection closes) and recorded as written; not streamed,
    /// the texts are joined. Ends with the fault's stall when it falls at the end. An
    /// `error_after` fault due before the first token is answered with a 500 instead, as
    /// Ollama does: `None`.
    pub(super) async fn decode(
        &mut self,
        x: &mut Exchange<'_>,
        stream: bool,
        close: bool,
        frame: impl Fn(u32, &str) -> Vec<u8>,
    ) -> std::io::Result<Option<Decoded>> {
        if let Some(message) = self.error_at_start.take() {
            x.reject(500, &message).await?;
            return Ok(None);
        }
        let mut text = String::new();
        let mut words = Vec::with_capacity(self.n as usize);
        for i in 0..self.n {
            let (id, tok) = self.token(i).await;
            words.push(id);
            if stream {
                x.write_chunk(&frame(i, &tok), close).await?;
                x.chunk_written();
            } else {
                text.push_str(&tok);
            }
            x.rec.output_tokens = i + 1;
            self.last_token = Instant::now();
        }
        let eval = self.end().await;
        Ok(Some(Decoded { text, words, eval }))
    }

    /// Waits until token `i` is due (after the fault's stall when it falls here) and returns
    /// its word (an index into [`WORDS`]) and text.
    async fn token(&mut self, i: u32) -> (usize, String) {
        if let Some((k, ms)) = self.stall
            && k == i
        {
            self.deadline = self.deadline.max(Instant::now()) + Duration::from_millis(ms);
        }
        let m = self.m;
        let mut delay = self.sh.share() / m.output_tok_s;
        if m.jitter_pct > 0.0 {
            delay *= 1.0 + m.jitter_pct / 100.0 * self.rng.symmetric();
        }
        self.deadline += Duration::from_secs_f64(delay.max(0.0));
        sleep_until(self.deadline.into()).await;
        let id = self.rng.below(WORDS.len() as u64) as usize;
        let mut tok = if i == 0 {
            WORDS[id].to_owned()
        } else {
            format!(" {}", WORDS[id])
        };
        while tok.len() < self.per_token_bytes {
            tok.push(' ');
            tok.push_str(WORDS[id]);
        }
        (id, tok)
    }

    /// After the last token: the fault's stall when it falls at the end; returns the decode
    /// time (decode start → last token handled).
    async fn end(&mut self) -> Duration {
        if let Some((k, ms)) = self.stall
            && k == self.n
        {
            self.deadline = self.deadline.max(Instant::now()) + Duration::from_millis(ms);
            sleep_until(self.deadline.into()).await;
        }
        self.last_token - self.decode_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_is_natural_raised_to_min_tokens_cut_at_the_cap_or_forced() {
        let len = |cap: Option<i64>, min: Option<i64>, ignore_eos: bool| Length {
            cap,
            min,
            ignore_eos,
        };
        // The natural length, or the cap when it is reached first (Ollama's rule).
        assert_eq!(plan_length(20, Length::default(), 500), (20, "stop"));
        assert_eq!(plan_length(20, Length::cap(Some(8)), 500), (8, "length"));
        assert_eq!(plan_length(20, Length::cap(Some(20)), 500), (20, "length"));
        assert_eq!(plan_length(20, Length::cap(Some(30)), 500), (20, "stop"));
        assert_eq!(plan_length(20, Length::cap(Some(-1)), 500), (20, "stop"));
        // min_tokens raises a short reply, within the cap.
        assert_eq!(
            plan_length(5, len(None, Some(12), false), 500),
            (12, "stop")
        );
        assert_eq!(
            plan_length(5, len(Some(9), Some(12), false), 500),
            (9, "length")
        );
        assert_eq!(
            plan_length(40, len(Some(64), Some(12), false), 500),
            (40, "stop")
        );
        // ignore_eos: exactly the cap, whatever the natural length; without one, the room.
        assert_eq!(
            plan_length(5, len(Some(48), None, true), 500),
            (48, "length")
        );
        assert_eq!(
            plan_length(90, len(Some(48), Some(48), true), 500),
            (48, "length")
        );
        assert_eq!(plan_length(5, len(None, None, true), 500), (500, "length"));
        assert_eq!(plan_length(5, len(Some(0), None, true), 500), (0, "length"));
    }
}
