//! A lean HTTP/1.1 client for the measured requests (the POSTs whose TTFT and ITL chimera
//! reports). The task that measures a request owns its connection: it writes the request and
//! reads the reply itself, with no connection task and no channel between the socket and the
//! clock. A general-purpose client (reqwest over hyper) drives each connection from a task of
//! its own and hands the body over through a channel, so every chunk waits for two tasks to
//! be scheduled before its arrival is noted; under a heavy load (64 users on 2 cores) that
//! wait is the largest part of the client's error. The metadata calls (versions, digests,
//! `/tokenize`) keep the general client.
//!
//! What it speaks: `POST` with a `Content-Length` body; replies framed by `Content-Length`,
//! `Transfer-Encoding: chunked` or the end of the connection; interim `1xx` replies skipped.
//! Plain `http` only, as the rest of the client.
//!
//! Connections are kept for the next request where the server keeps them (`reuse`: Ollama)
//! and the reply does not say `Connection: close` (nor is HTTP/1.0, nor ends with the
//! connection). A pooled connection is dropped after [`IDLE_FOR`] idle and checked for a
//! close before reuse. No request is ever sent twice: a kept connection that fails before
//! any reply byte fails its request. OpenAI-compatible servers get a new connection per
//! request, as llama-server closes one right after a streamed reply while announcing
//! keep-alive (a pooled connection would race that close); the connect is kernel work on
//! both ends, microseconds on a loopback, and the arrival times below do not wait for the
//! server's accept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::util::stamp;

/// An idle connection older than this is closed rather than reused: shorter than any
/// server's keep-alive (llama-server closes idle connections after 5 s).
const IDLE_FOR: Duration = Duration::from_secs(2);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest reply head.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a reply head.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size line of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;
/// Bytes asked of the socket per read.
const READ_SIZE: usize = 16 * 1024;
/// Most idle connections kept per server.
const MAX_IDLE: usize = 1024;

/// Why a request got no reply head.
#[derive(Debug)]
pub(super) struct SendError {
    /// What kind of failure.
    pub(super) kind: SendFailure,
    /// What happened.
    pub(super) message: String,
}

/// The kinds of [`SendError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SendFailure {
    /// The connection was refused or failed.
    Connect,
    /// No connection within [`CONNECT_TIMEOUT`].
    ConnectTimeout,
    /// Connected, but the request could not be written or no reply head came.
    NoReply,
    /// A reply head came that is not HTTP/1.x.
    BadHead,
}

/// The server at one base URL.
#[derive(Debug)]
pub(super) struct RawHttp {
    /// Host and port to connect to.
    host: String,
    port: u16,
    /// The `Host` header.
    authority: String,
    /// The base URL's path, without a trailing `/` (empty for none).
    prefix: String,
    /// Keep connections for the next request.
    reuse: bool,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

/// A connection and its read buffers.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Whether the kernel stamps what it receives (see [`crate::util::stamp`]).
    stamps: bool,
    control: Vec<u8>,
    scratch: Box<[u8]>,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        Conn {
            stamps: stamp::enable(&stream),
            stream,
            control: stamp::control_buffer(),
            scratch: vec![0; READ_SIZE].into_boxed_slice(),
        }
    }

    /// Reads what has arrived (waiting for something) onto `buf`: how many bytes, and when
    /// the newest of them arrived (the kernel's receive time, else now).
    async fn read(&mut self, buf: &mut Vec<u8>) -> std::io::Result<(usize, Instant)> {
        let Conn {
            stream,
            stamps,
            control,
            scratch,
        } = self;
        let (n, at) = if *stamps {
            stream
                .async_io(Interest::READABLE, || stamp::recv(stream, scratch, control))
                .await?
        } else {
            use tokio::io::AsyncReadExt;
            (stream.read(scratch).await?, None)
        };
        buf.extend_from_slice(&scratch[..n]);
        Ok((n, stamp::instant_of(at).0))
    }
}

impl RawHttp {
    /// The server at `url` (an `http` URL already checked by the caller), keeping connections
    /// for the next request when `reuse`; why not.
    pub(super) fn new(url: &reqwest::Url, reuse: bool) -> Result<Arc<Self>, String> {
        let host = match url.host_str() {
            // An IPv6 literal comes in brackets, which connecting does not take.
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            _ => return Err("no host".to_owned()),
        };
        let port = url.port_or_known_default().ok_or("no port")?;
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        stamp::keep_on();
        Ok(Arc::new(RawHttp {
            host,
            port,
            authority,
            prefix: url.path().trim_end_matches('/').to_owned(),
            reuse,
            idle: Mutex::new(Vec::new()),
        }))
    }

    /// Sends `POST <prefix><path>` with the JSON `body` and reads the reply's head.
    pub(super) async fn post(
        self: &Arc<Self>,
        path: &str,
        accept: &str,
        body: &[u8],
    ) -> Result<RawResponse, SendError> {
        let mut message = format!(
            "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: {accept}\r\nContent-Length: {}\r\n\r\n",
            self.prefix,
            self.authority,
            body.len(),
        )
        .into_bytes();
        message.extend_from_slice(body);
        let (mut conn, pooled) = match self.checkout() {
            Some(c) => (c, true),
            None => (Conn::new(self.connect().await?), false),
        };
        match send_and_read_head(&mut conn, &message).await {
            Ok((head, rest, at)) => Ok(RawResponse::new(self.clone(), conn, head, (rest, at))),
            Err(e) => Err(SendError {
                kind: match e {
                    HeadError::Malformed(_) | HeadError::TooLarge => SendFailure::BadHead,
                    HeadError::Closed | HeadError::Io(_) => SendFailure::NoReply,
                },
                message: format!(
                    "{}: {e}{}",
                    self.authority,
                    if pooled {
                        " (on a connection kept from an earlier request)"
                    } else {
                        ""
                    }
                ),
            }),
        }
    }

    async fn connect(&self) -> Result<TcpStream, SendError> {
        let failed = |kind, what: String| SendError {
            kind,
            message: format!("{}: {what}", self.authority),
        };
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| {
            failed(
                SendFailure::ConnectTimeout,
                format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
            )
        })?
        .map_err(|e| failed(SendFailure::Connect, e.to_string()))?;
        Ok(stream)
    }

    /// The most recent idle connection that is young enough and still open.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() >= IDLE_FOR {
                continue;
            }
            // Open and quiet: reading would block. A close (0) or stray bytes retire it.
            let mut probe = [0u8; 1];
            if let Err(e) = conn.stream.try_read(&mut probe)
                && e.kind() == std::io::ErrorKind::WouldBlock
            {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, conn: Conn) {
        if !self.reuse {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|(_, since)| since.elapsed() < IDLE_FOR);
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }
}

/// Why no reply head was read.
#[derive(Debug, thiserror::Error)]
enum HeadError {
    #[error("the server closed the connection before replying")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed reply head: {0}")]
    Malformed(String),
    #[error("the reply head is larger than {MAX_HEAD} bytes")]
    TooLarge,
}

/// A reply head.
#[derive(Debug)]
struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    /// After this many more bytes.
    Length(u64),
    /// Chunked: where the decoder is.
    Chunked(Chunk),
    /// When the server closes the connection.
    Close,
    /// It has ended.
    Done,
}

/// The chunked decoder's place.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// In the trailer, before the empty line that ends it.
    Trailer,
}

/// Writes `message`, then reads until a final (non-1xx) reply head: the head, the bytes read
/// after it and when the newest of them arrived.
async fn send_and_read_head(
    conn: &mut Conn,
    message: &[u8],
) -> Result<(Head, Vec<u8>, Instant), HeadError> {
    if let Err(e) = conn.stream.write_all(message).await {
        return Err(match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                HeadError::Closed
            }
            _ => e.into(),
        });
    }
    let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
    let mut got_any = false;
    let mut arrived = Instant::now();
    loop {
        if let Some((head, used)) = parse_head(&buf)? {
            buf.drain(..used);
            if (100..200).contains(&head.status) && head.status != 101 {
                continue; // an interim reply (100 Continue, 103 Early Hints)
            }
            return Ok((head, buf, arrived));
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let n = match conn.read(&mut buf).await {
            Ok((n, at)) => {
                arrived = at;
                n
            }
            Err(e) if !got_any && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(HeadError::Closed);
            }
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(if got_any {
                HeadError::Malformed("the connection closed inside the reply head".into())
            } else {
                HeadError::Closed
            });
        }
        got_any = true;
    }
}

/// A complete head at the start of `buf` and its length, or `None` when more is needed.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let used = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    let mut keep_alive = resp.version == Some(1);
    let mut close = false;
    let mut length = None;
    // Some(true): the last coding is chunked; Some(false): another coding ends the list.
    let mut chunked = None;
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| HeadError::Malformed(format!("Content-Length `{value}`")))?;
            if length.is_some_and(|m| m != n) {
                return Err(HeadError::Malformed(
                    "two different Content-Length values".into(),
                ));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = Some(
                value
                    .rsplit(',')
                    .next()
                    .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked")),
            );
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            // `close` anywhere wins over `keep-alive` anywhere.
            close |= v.contains("close");
            keep_alive |= v.contains("keep-alive");
        }
    }
    keep_alive &= !close;
    let framing = if status == 101 {
        // Switching protocols: nothing more of HTTP on this connection.
        keep_alive = false;
        Framing::Length(0)
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if let Some(last_chunked) = chunked {
        // A Transfer-Encoding overrides any Content-Length (RFC 9112 §6.3); one that does not
        // end in `chunked` runs to the end of the connection.
        if last_chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            keep_alive = false;
            Framing::Close
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::Close
    };
    Ok(Some((
        Head {
            status,
            framing,
            keep_alive,
        },
        used,
    )))
}

/// A reply whose head was read; its body comes with [`RawResponse::chunk`].
#[derive(Debug)]
pub(super) struct RawResponse {
    server: Arc<RawHttp>,
    /// `None` once the body ended (the connection went back to the pool or was closed).
    conn: Option<Conn>,
    status: u16,
    framing: Framing,
    keep_alive: bool,
    /// Bytes read and not decoded yet.
    buf: Vec<u8>,
    /// When the newest bytes read arrived.
    arrived: Instant,
}

impl RawResponse {
    fn new(server: Arc<RawHttp>, conn: Conn, head: Head, (rest, at): (Vec<u8>, Instant)) -> Self {
        let mut r = RawResponse {
            server,
            conn: Some(conn),
            status: head.status,
            framing: head.framing,
            keep_alive: head.keep_alive,
            buf: rest,
            arrived: at,
        };
        if r.framing == Framing::Length(0) {
            r.framing = Framing::Done;
            r.release();
        }
        r
    }

    /// The reply's status code.
    pub(super) fn status(&self) -> u16 {
        self.status
    }

    /// The next bytes of the body as they arrive, and when they arrived: the kernel's receive
    /// time of the newest bytes of the read that brought them, where it gives one (see
    /// [`crate::util::stamp`]), else the read time (`None` at the body's end).
    pub(super) async fn chunk(&mut self) -> std::io::Result<Option<(Vec<u8>, Instant)>> {
        loop {
            let mut out = Vec::new();
            decode(&mut self.framing, &mut self.buf, &mut out)?;
            if self.framing == Framing::Done {
                self.release();
            }
            if !out.is_empty() {
                return Ok(Some((out, self.arrived)));
            }
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            if self.framing == Framing::Done {
                return Ok(None);
            }
            let (n, at) = conn.read(&mut self.buf).await?;
            self.arrived = at;
            if n == 0 {
                if self.framing == Framing::Close {
                    self.framing = Framing::Done;
                    self.conn = None;
                    continue;
                }
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the connection closed before the end of the body",
                ));
            }
        }
    }

    /// The body ended: the connection goes back to the pool when it can carry another
    /// request, else it is closed.
    fn release(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && self.buf.is_empty()
        {
            self.server.checkin(conn);
        }
    }
}

/// Moves the body bytes `buf` holds into `out`, as far as `framing` allows; `framing` becomes
/// [`Framing::Done`] at the body's end.
fn decode(framing: &mut Framing, buf: &mut Vec<u8>, out: &mut Vec<u8>) -> std::io::Result<()> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    match framing {
        Framing::Done => {}
        Framing::Close => out.append(buf),
        Framing::Length(left) => {
            let take = (*left).min(buf.len() as u64) as usize;
            out.extend(buf.drain(..take));
            *left -= take as u64;
            if *left == 0 {
                *framing = Framing::Done;
            }
        }
        Framing::Chunked(state) => {
            let mut at = 0;
            loop {
                match *state {
                    Chunk::Size | Chunk::Trailer => {
                        let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') else {
                            if buf.len() - at > MAX_CHUNK_LINE {
                                return Err(bad(if *state == Chunk::Trailer {
                                    "a trailer line is too long".into()
                                } else {
                                    "a chunk-size line is too long".into()
                                }));
                            }
                            break;
                        };
                        let line = buf[at..at + nl].trim_ascii();
                        at += nl + 1;
                        if *state == Chunk::Trailer {
                            if line.is_empty() {
                                *framing = Framing::Done;
                                break;
                            }
                            continue;
                        }
                        let size = line.split(|&b| b == b';').next().unwrap_or_default();
                        let size = std::str::from_utf8(size)
                            .ok()
                            .map(str::trim)
                            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
                            .and_then(|s| u64::from_str_radix(s, 16).ok())
                            .ok_or_else(|| {
                                bad(format!(
                                    "bad chunk size `{}`",
                                    String::from_utf8_lossy(line)
                                ))
                            })?;
                        *state = if size == 0 {
                            Chunk::Trailer
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Chunk::Data(left) => {
                        let take = left.min((buf.len() - at) as u64) as usize;
                        out.extend_from_slice(&buf[at..at + take]);
                        at += take;
                        *state = if left == take as u64 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left - take as u64)
                        };
                        if at == buf.len() {
                            break;
                        }
                    }
                    Chunk::DataEnd => match &buf[at..] {
                        [b'\r', b'\n', ..] => {
                            at += 2;
                            *state = Chunk::Size;
                        }
                        [b'\n', ..] => {
                            at += 1;
                            *state = Chunk::Size;
                        }
                        [] | [b'\r'] => break,
                        _ => return Err(bad("a chunk's data is not followed by CRLF".into())),
                    },
                }
            }
            buf.drain(..at);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, pieces: &[&[u8]]) -> (Vec<u8>, Framing) {
        let (mut f, mut buf, mut out) = (framing, Vec::new(), Vec::new());
        for p in pieces {
            buf.extend_from_slice(p);
            decode(&mut f, &mut buf, &mut out).expect("decodes");
        }
        (out, f)
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let whole = decode_all(Framing::Chunked(Chunk::Size), &[wire]);
        assert_eq!(whole, (b"hello, world".to_vec(), Framing::Done));
        // Every split point, and byte by byte.
        for cut in 0..wire.len() {
            let (a, b) = wire.split_at(cut);
            assert_eq!(
                decode_all(Framing::Chunked(Chunk::Size), &[a, b]),
                whole,
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(decode_all(Framing::Chunked(Chunk::Size), &bytes), whole);
        // Not at the end yet without the last chunk.
        let (out, f) = decode_all(Framing::Chunked(Chunk::Size), &[&wire[..22]]);
        assert_eq!(out, b"hello, w");
        assert_ne!(f, Framing::Done);
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        for wire in [
            &b"zz\r\nhello\r\n"[..],
            b"+5\r\nhello\r\n",
            b"5\r\nhelloXX",
            &[b'1'; 5000],
        ] {
            let (mut f, mut buf, mut out) = (Framing::Chunked(Chunk::Size), wire.to_vec(), vec![]);
            assert!(decode(&mut f, &mut buf, &mut out).is_err(), "{wire:?}");
        }
    }

    #[test]
    fn length_framing_stops_at_its_length() {
        let (out, f) = decode_all(Framing::Length(5), &[b"hel", b"loEXTRA"]);
        assert_eq!((out, f), (b"hello".to_vec(), Framing::Done));
    }

    #[test]
    fn heads_give_status_framing_and_keep_alive() {
        let (h, n) = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nrest")
            .expect("parses")
            .expect("complete");
        assert_eq!(
            (h.status, h.framing, h.keep_alive, n),
            (200, Framing::Chunked(Chunk::Size), true, 47)
        );
        let (h, _) =
            parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\n")
                .expect("parses")
                .expect("complete");
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (404, Framing::Length(3), false)
        );
        let (h, _) = parse_head(b"HTTP/1.0 200 OK\r\n\r\n")
            .expect("parses")
            .expect("complete");
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-")
                .expect("ok")
                .is_none()
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
        // `close` wins whatever the order; two lengths must agree; a Transfer-Encoding not
        // ending in chunked runs to the close, whatever the length says.
        let head = |h: &[u8]| parse_head(h).expect("parses").expect("complete").0;
        let h = head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert!(!h.keep_alive);
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")
                .is_err()
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n").is_err());
        let h = head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        let h = head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
        assert!(!h.keep_alive);
    }
}
