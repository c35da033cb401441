//! One measured request over an executor's own sockets: connect, send the `POST` in one
//! write (`Connection: close`, one request per connection), read the head, decode the body
//! and feed its lines to the protocol's parser as they arrive.
//!
//! Timing (monotonic clock): `t0` is taken right before the connect, `sent_at_unix_ms` with
//! it; TTFT is `t0` → the read that brought the first chunk with non-empty text; ITL the
//! gaps between the reads that brought consecutive text chunks (chunks of one read share
//! its time); e2e is `t0` → the end of the body (after the final chunk, the end of the body
//! is awaited at most 1 s, else the final chunk's arrival is the end). The whole request is
//! bounded by the job's `timeout_s` on the executor's own timer; a request cut by it keeps
//! what it measured so far.

use std::time::{Duration, Instant};

use chimera::workload::protocol::ProtocolKind;

use crate::exec::{Conn, Exec};
use crate::http::{self, BaseUrl, BodyDecoder, MAX_HEAD_BYTES, Rechunker};
use crate::measure::{
    Failure, Fed, Kind, LineSplitter, Outcome, Parser, Reply, fail, ms_between, now_unix_ms,
};
use crate::ollama::{self, NdjsonParser};
use crate::openai::{self, SseParser};
use crate::request::Request;

/// Bytes asked of the socket per read.
const READ_BYTES: usize = 16 * 1024;
/// Most bytes kept of an error (non-2xx) body.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// After the final chunk, how long the end of the body is awaited.
const DRAIN_AFTER_DONE: Duration = Duration::from_secs(1);

/// Where and how requests are sent: the same for every request of a run.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The server's base URL, or why it cannot be used (every request then fails with it).
    pub(crate) url: Result<BaseUrl, String>,
    /// The protocol it speaks.
    pub(crate) protocol: ProtocolKind,
    /// The limit of one whole request.
    pub(crate) timeout: Duration,
    /// `--rechunk`: body bytes are handed to the parser in pieces of at least this many
    /// bytes (0: as they are read).
    pub(crate) rechunk: usize,
    /// The size cap of one reply.
    pub(crate) max_bytes: usize,
}

/// Sends `req` and measures it. Never fails: errors are in the outcome.
pub(crate) async fn send<E: Exec>(target: &Target, req: &Request) -> Outcome {
    let base = match &target.url {
        Ok(b) => b,
        Err(e) => {
            return Outcome::unsent(fail(
                Kind::ConnectionRefused,
                format!("cannot connect: {e}"),
            ));
        }
    };
    let (path, body, accept) = match target.protocol {
        ProtocolKind::Ollama => (
            ollama::path(req.api),
            ollama::body(req),
            "application/x-ndjson, application/json",
        ),
        ProtocolKind::Openai => (
            openai::path(req.api),
            openai::body(req),
            "text/event-stream, application/json",
        ),
    };
    let body = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(e) => {
            return Outcome::unsent(fail(
                Kind::BadRequest,
                format!("cannot encode the request: {e}"),
            ));
        }
    };
    let wire = http::post_request(base, path, accept, &body);
    let (api, stream, max) = (req.api, req.stream, target.max_bytes);
    match target.protocol {
        ProtocolKind::Ollama => {
            measure::<E, _>(target, base, &wire, stream, |t0| {
                NdjsonParser::new(api, stream, max, t0)
            })
            .await
        }
        ProtocolKind::Openai => {
            measure::<E, _>(target, base, &wire, stream, |t0| {
                SseParser::new(api, stream, max, t0)
            })
            .await
        }
    }
}

/// What one exchange learned, kept outside its future so that a timeout keeps it.
#[derive(Debug, Default)]
struct Exchange {
    reply: Reply,
    /// The status, once a head arrived.
    status: Option<u16>,
    /// Its reason phrase.
    reason: String,
    /// The error body read so far, for a non-2xx status.
    error_body: Option<Vec<u8>>,
}

async fn measure<E: Exec, P: Parser>(
    target: &Target,
    base: &BaseUrl,
    wire: &[u8],
    stream: bool,
    make: impl FnOnce(Instant) -> P,
) -> Outcome {
    let sent_at_unix_ms = now_unix_ms();
    let t0 = Instant::now();
    let mut parser = make(t0);
    let mut ex = Exchange::default();
    let run = exchange::<E, P>(base, wire, target, stream, &mut parser, &mut ex);
    let result = E::timeout(target.timeout, run).await;
    let (e2e_ms, error) = match result {
        Some(Ok(end)) => (ms_between(t0, end), None),
        Some(Err(mut f)) => {
            f.status = f.status.or(ex.status);
            (ms_between(t0, Instant::now()), Some(f))
        }
        None => {
            let e2e = ms_between(t0, Instant::now());
            let f = match (ex.status, &ex.error_body) {
                // A non-2xx status whose error body the deadline cut: the status says more.
                (Some(status), Some(body)) => parser.status_error(status, &ex.reason, body),
                _ => Failure {
                    kind: Kind::Timeout,
                    status: ex.status,
                    message: format!(
                        "no complete response within the timeout of {} ms ({} chunk(s) received)",
                        target.timeout.as_millis(),
                        ex.reply.chunks
                    ),
                },
            };
            (e2e, Some(f))
        }
    };
    Outcome {
        sent_at_unix_ms,
        e2e_ms,
        reply: ex.reply,
        error,
    }
}

/// Connects, sends and reads the reply into `ex`; returns the instant the response ended.
async fn exchange<E: Exec, P: Parser>(
    base: &BaseUrl,
    wire: &[u8],
    target: &Target,
    stream: bool,
    parser: &mut P,
    ex: &mut Exchange,
) -> Result<Instant, Failure> {
    let mut conn = E::connect(&base.authority).await.map_err(|e| {
        fail(
            Kind::ConnectionRefused,
            format!("cannot connect to {}: {e}", base.authority),
        )
    })?;
    conn.write_all(wire).await.map_err(|e| {
        fail(
            Kind::ConnectionRefused,
            format!("no response: sending the request failed: {e}"),
        )
    })?;
    let mut buf = vec![0u8; READ_BYTES];
    let mut pending = Vec::new();
    let head = loop {
        match http::parse_head(&pending).map_err(|e| fail(Kind::MalformedResponse, e))? {
            // An interim response (`100 Continue`): the real one follows.
            Some((interim, used)) if interim.status < 200 => {
                pending.drain(..used);
            }
            Some((head, used)) => {
                pending.drain(..used);
                break head;
            }
            None if pending.len() > MAX_HEAD_BYTES => {
                return Err(fail(
                    Kind::TooLarge,
                    format!("a response head over {MAX_HEAD_BYTES} bytes"),
                ));
            }
            None => {
                let n = conn
                    .read(&mut buf)
                    .await
                    .map_err(|e| fail(Kind::ConnectionRefused, format!("no response: {e}")))?;
                if n == 0 {
                    return Err(fail(
                        Kind::ConnectionRefused,
                        "no response: the server closed the connection before a response head",
                    ));
                }
                pending.extend_from_slice(&buf[..n]);
            }
        }
    };
    let head_at = Instant::now();
    ex.status = Some(head.status);
    let mut decoder = BodyDecoder::new(head.framing);
    if !(200..300).contains(&head.status) {
        ex.reason = head.reason.clone();
        read_error_body(&mut conn, &mut decoder, pending, &mut buf, ex).await;
        let body = ex.error_body.take().unwrap_or_default();
        return Err(parser.status_error(head.status, &head.reason, &body));
    }

    let mut body = BodyReader {
        decoder,
        rechunk: Rechunker::new(target.rechunk),
        lines: LineSplitter::new(target.max_bytes),
        scratch: Vec::new(),
        stream,
        done_at: None,
    };
    body.feed(&pending, head_at, parser, &mut ex.reply)?;
    while !parser.done() && !body.decoder.done() {
        let n = conn.read(&mut buf).await.map_err(|e| {
            fail(
                Kind::Truncated,
                format!(
                    "the connection failed before `{}`: {e}",
                    parser.end_marker()
                ),
            )
        })?;
        let at = Instant::now();
        if n == 0 {
            body.decoder.eof().map_err(|e| {
                fail(
                    Kind::Truncated,
                    format!("{e} (before `{}`)", parser.end_marker()),
                )
            })?;
            body.flush(at, parser, &mut ex.reply)?;
            break;
        }
        body.feed(&buf[..n], at, parser, &mut ex.reply)?;
    }
    if let Some(done_at) = body.done_at {
        if body.decoder.done() {
            return Ok(Instant::now());
        }
        // The final chunk arrived: the end of the body is awaited briefly.
        let drained = E::timeout(
            DRAIN_AFTER_DONE,
            drain(&mut conn, &mut body.decoder, &mut buf),
        )
        .await
        .unwrap_or(false);
        return Ok(if drained { Instant::now() } else { done_at });
    }
    let end = Instant::now();
    let rest = body.lines.take_rest();
    parser.finish(&rest, end, &mut ex.reply)?;
    Ok(end)
}

/// Reads at most [`MAX_ERROR_BODY_BYTES`] of an error body into `ex.error_body` (best
/// effort: a failure or the end of the connection ends it).
async fn read_error_body<C: Conn>(
    conn: &mut C,
    decoder: &mut BodyDecoder,
    pending: Vec<u8>,
    buf: &mut [u8],
    ex: &mut Exchange,
) {
    let mut body = Vec::new();
    let mut raw = pending;
    loop {
        if decoder.feed(&raw, &mut body).is_err() {
            break;
        }
        ex.error_body = Some(body.clone());
        if decoder.done() || body.len() >= MAX_ERROR_BODY_BYTES {
            break;
        }
        match conn.read(buf).await {
            Ok(n) if n > 0 => raw = buf[..n].to_vec(),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY_BYTES);
    ex.error_body = Some(body);
}

/// Reads and discards the rest of a body; true when it ended cleanly.
async fn drain<C: Conn>(conn: &mut C, decoder: &mut BodyDecoder, buf: &mut [u8]) -> bool {
    let mut sink = Vec::new();
    while !decoder.done() {
        match conn.read(buf).await {
            Ok(0) => return decoder.eof().is_ok(),
            Ok(n) => {
                sink.clear();
                if decoder.feed(&buf[..n], &mut sink).is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// The body side of a 2xx reply: framing → `--rechunk` buffer → lines → parser.
struct BodyReader {
    decoder: BodyDecoder,
    rechunk: Rechunker,
    lines: LineSplitter,
    /// Decoded bytes of the current read.
    scratch: Vec<u8>,
    stream: bool,
    /// When the parser saw the final chunk.
    done_at: Option<Instant>,
}

impl BodyReader {
    /// Decodes the bytes of one read that arrived at `at` and hands them on.
    fn feed<P: Parser>(
        &mut self,
        raw: &[u8],
        at: Instant,
        parser: &mut P,
        reply: &mut Reply,
    ) -> Fed {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let decoded = self.decoder.feed(raw, &mut scratch);
        let result = decoded
            .map_err(|e| fail(Kind::MalformedResponse, format!("bad body framing: {e}")))
            .and_then(|()| {
                if self.rechunk.passes_through() {
                    self.deliver(&scratch, at, parser, reply)
                } else {
                    match self.rechunk.push(&scratch) {
                        Some(piece) => self.deliver(&piece, at, parser, reply),
                        None => Ok(()),
                    }
                }
            });
        self.scratch = scratch;
        result?;
        if self.decoder.done() {
            self.flush(at, parser, reply)?;
        }
        Ok(())
    }

    /// The body ended: hands on what the `--rechunk` buffer still holds.
    fn flush<P: Parser>(&mut self, at: Instant, parser: &mut P, reply: &mut Reply) -> Fed {
        let rest = self.rechunk.flush();
        if rest.is_empty() {
            Ok(())
        } else {
            self.deliver(&rest, at, parser, reply)
        }
    }

    /// Splits `piece` into lines for the parser (streamed), or only checks the size cap.
    fn deliver<P: Parser>(
        &mut self,
        piece: &[u8],
        at: Instant,
        parser: &mut P,
        reply: &mut Reply,
    ) -> Fed {
        if self.done_at.is_some() {
            return Ok(()); // anything after the final chunk is ignored
        }
        self.lines.feed(piece);
        if !self.stream {
            return self.lines.check_pending();
        }
        while let Some(line) = self.lines.next_line()? {
            parser.on_line(&line, at, reply)?;
            if parser.done() {
                self.done_at = Some(at);
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Framing;
    use crate::request::Api;

    /// Feeds a chunked NDJSON reply through framing → rechunking → lines → parser, one wire
    /// chunk per read, read `i` arriving at `t0 + 10 ms × (i + 1)`.
    fn read_all(rechunk: usize) -> (Reply, Option<Instant>, Instant) {
        let lines = [
            "{\"response\":\"a\",\"done\":false}\n",
            "{\"response\":\"b\",\"done\":false}\n",
            "{\"response\":\"c\",\"done\":false}\n",
            "{\"response\":\"\",\"done\":true,\"eval_count\":3}\n",
        ];
        let t0 = Instant::now();
        let mut parser = NdjsonParser::new(Api::Generate, true, 1 << 20, t0);
        let mut reply = Reply::default();
        let mut body = BodyReader {
            decoder: BodyDecoder::new(Framing::Chunked),
            rechunk: Rechunker::new(rechunk),
            lines: LineSplitter::new(1 << 20),
            scratch: Vec::new(),
            stream: true,
            done_at: None,
        };
        for (i, l) in lines.iter().enumerate() {
            let wire = format!("{:x}\r\n{l}\r\n", l.len());
            let at = t0 + Duration::from_millis(10 * (i as u64 + 1));
            body.feed(wire.as_bytes(), at, &mut parser, &mut reply)
                .expect("valid reply");
        }
        let end = t0 + Duration::from_millis(50);
        body.feed(b"0\r\n\r\n", end, &mut parser, &mut reply)
            .expect("valid end");
        assert!(parser.done());
        (reply, body.done_at, t0)
    }

    #[test]
    fn every_read_reaches_the_parser_when_it_arrives() {
        let (r, done_at, t0) = read_all(0);
        assert_eq!(
            (r.text.as_str(), r.chunks, r.output_tokens),
            ("abc", 4, Some(3))
        );
        assert_eq!(r.ttft_ms, Some(10.0));
        assert_eq!(r.itl_ms, vec![10.0, 10.0]);
        assert_eq!(done_at, Some(t0 + Duration::from_millis(40)));
    }

    #[test]
    fn rechunking_holds_the_text_back() {
        // Each line is 30 bytes: with 64-byte pieces the first text reaches the parser with
        // the third read, and the rest with the end of the body.
        let (r, done_at, t0) = read_all(64);
        assert_eq!(
            (r.text.as_str(), r.chunks, r.output_tokens),
            ("abc", 4, Some(3))
        );
        assert_eq!(r.ttft_ms, Some(30.0));
        assert_eq!(r.itl_ms, vec![0.0, 0.0]);
        assert_eq!(done_at, Some(t0 + Duration::from_millis(50)));
        // Larger than the whole reply: everything arrives at the end.
        let (r, _, _) = read_all(4096);
        assert_eq!(r.ttft_ms, Some(50.0));
    }
}
