//! The HTTP/1.1 wire format the agent needs, as pure functions over bytes: base-URL parsing,
//! the request bytes, the response head, the body framing (`Transfer-Encoding: chunked`,
//! `Content-Length`, or read to the end of the connection) and the `--rechunk` buffer.
//!
//! Nothing here touches a socket: [`crate::client`] reads the bytes on the executor's own
//! sockets and hands them to these types, so every executor runs the very same parsing.

/// Largest response head accepted, in bytes.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A plain `http://` base URL: where to connect and what to prefix request paths with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    /// `host:port` as the `Host` header and the connect call take it (IPv6 in brackets).
    pub(crate) authority: String,
    /// The path before the API path, without a trailing `/` (usually empty).
    pub(crate) prefix: String,
}

/// Parses a base URL: `http://host[:port][/prefix]` (default port 80). Anything else, `https`
/// included, is refused with the reason.
pub(crate) fn parse_base_url(url: &str) -> Result<BaseUrl, String> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{url}` is not an absolute http:// URL"));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "`{url}`: scheme `{scheme}` is not supported (chimera-agent speaks plain http:// only, no TLS)"
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(format!("`{url}`: a query or fragment is not allowed"));
    }
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if hostport.contains('@') {
        return Err(format!("`{url}`: credentials in the URL are not supported"));
    }
    let (host, port) = split_host_port(hostport).map_err(|e| format!("`{url}`: {e}"))?;
    Ok(BaseUrl {
        authority: format!("{host}:{port}"),
        prefix: path.trim_end_matches('/').to_owned(),
    })
}

/// `host` (IPv6 kept in brackets) and the port (80 when absent).
fn split_host_port(hostport: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err("an IPv6 address without its closing `]`".to_owned());
        };
        let host = &hostport[..end + 2];
        match &rest[end + 1..] {
            "" => (host, None),
            p => match p.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected `{p}` after the IPv6 address")),
            },
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("no host".to_owned());
    }
    let port = match port {
        None | Some("") => 80,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port number"))?,
    };
    Ok((host, port))
}

/// The bytes of one `POST` with a JSON body on its own connection (`Connection: close`).
pub(crate) fn post_request(base: &BaseUrl, path: &str, accept: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: chimera-agent/{}\r\nContent-Type: application/json\r\nAccept: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        base.prefix,
        path,
        base.authority,
        env!("CARGO_PKG_VERSION"),
        accept,
        body.len()
    );
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    out
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length: n`.
    Length(u64),
    /// Neither: the body ends with the connection.
    Eof,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// The status code.
    pub(crate) status: u16,
    /// The reason phrase (may be empty).
    pub(crate) reason: String,
    /// The body framing.
    pub(crate) framing: Framing,
}

/// Parses a response head at the start of `buf`: `Ok(None)` while it is incomplete, else the
/// head and the number of bytes it took (the body starts there). Lines may end in `\r\n` or
/// `\n`.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, String> {
    let Some(end) = head_end(buf) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") {
        return Err(format!("not an HTTP response: `{}`", clip(status_line)));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| format!("bad status line `{}`", clip(status_line)))?;
    let reason = parts.next().unwrap_or_default().trim().to_owned();
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line `{}`", clip(line)));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked |= value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .map_err(|_| format!("bad Content-Length `{}`", clip(value)))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers".to_owned());
            }
            length = Some(n);
        }
    }
    let framing = if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Eof
    };
    Ok(Some((
        ResponseHead {
            status,
            reason,
            framing,
        },
        end,
    )))
}

/// The end of the head (after its blank line), if `buf` holds all of it.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        // The next line is empty (`\n` or `\r\n`): the head ends after it.
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line (its bytes are in `line`).
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data: its `\r\n` (or `\n`).
    DataEnd,
    /// After the last chunk: trailer lines until a blank one.
    Trailer,
}

/// Decodes a response body from the bytes read off the connection: hands out the body bytes
/// and says when the body is complete.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    framing: Framing,
    state: Chunk,
    /// A pending chunk-size or trailer line.
    line: Vec<u8>,
    /// Body bytes still expected (`Content-Length`).
    left: u64,
    done: bool,
}

impl BodyDecoder {
    /// A decoder for a body of this framing.
    pub(crate) fn new(framing: Framing) -> Self {
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        BodyDecoder {
            framing,
            state: Chunk::Size,
            line: Vec::new(),
            left,
            done: framing == Framing::Length(0),
        }
    }

    /// True once the whole body arrived (never for a body read to the end of the connection:
    /// its end is [`BodyDecoder::eof`]).
    pub(crate) fn done(&self) -> bool {
        self.done
    }

    /// Decodes `input`, appending the body bytes to `out`. Bytes after the end of the body are
    /// ignored. An error names what is wrong with the framing.
    pub(crate) fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        match self.framing {
            Framing::Eof => {
                out.extend_from_slice(input);
                return Ok(());
            }
            Framing::Length(_) => {
                let take = input
                    .len()
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                out.extend_from_slice(&input[..take]);
                self.left -= take as u64;
                self.done = self.left == 0;
                return Ok(());
            }
            Framing::Chunked => {}
        }
        while !input.is_empty() && !self.done {
            match self.state {
                Chunk::Size | Chunk::Trailer => {
                    let Some(nl) = input.iter().position(|&b| b == b'\n') else {
                        self.line.extend_from_slice(input);
                        if self.line.len() > 4096 {
                            return Err("a chunk-size or trailer line over 4096 bytes".to_owned());
                        }
                        return Ok(());
                    };
                    self.line.extend_from_slice(&input[..nl]);
                    input = &input[nl + 1..];
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    if self.state == Chunk::Trailer {
                        if line.is_empty() {
                            self.done = true;
                        }
                        continue;
                    }
                    let size = chunk_size(line)?;
                    self.state = if size == 0 {
                        Chunk::Trailer
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::Data(left) => {
                    let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    };
                }
                Chunk::DataEnd => {
                    // `\r\n` (a bare `\n` is tolerated); the `\r` may end one read and the
                    // `\n` start the next.
                    match input[0] {
                        b'\r' if self.line.is_empty() => {
                            self.line.push(b'\r');
                            input = &input[1..];
                        }
                        b'\n' => {
                            self.line.clear();
                            input = &input[1..];
                            self.state = Chunk::Size;
                        }
                        other => {
                            return Err(format!(
                                "expected the end of a chunk, found byte 0x{other:02x}"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The connection ended: `Ok` when that ends the body, else why the body is incomplete.
    pub(crate) fn eof(&self) -> Result<(), String> {
        match self.framing {
            _ if self.done => Ok(()),
            Framing::Eof => Ok(()),
            Framing::Length(n) => Err(format!(
                "the connection closed {} bytes before the end of a {n}-byte body",
                self.left
            )),
            Framing::Chunked => {
                Err("the connection closed before the end of the chunked body".to_owned())
            }
        }
    }
}

/// The size of a chunk-size line (hex, extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let text = String::from_utf8_lossy(line);
    let hex = text.split(';').next().unwrap_or_default().trim();
    if hex.is_empty() || hex.len() > 15 {
        return Err(format!("bad chunk size `{}`", clip(&text)));
    }
    u64::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size `{}`", clip(&text)))
}

/// The `--rechunk` buffer: body bytes are held back until at least `min` bytes are pending,
/// then handed on together (the rest at the end of the body). `min == 0` passes every read
/// through as it is.
#[derive(Debug, Default)]
pub(crate) struct Rechunker {
    min: usize,
    buf: Vec<u8>,
}

impl Rechunker {
    /// A buffer handing on pieces of at least `min` bytes.
    pub(crate) fn new(min: usize) -> Self {
        Rechunker {
            min,
            buf: Vec::new(),
        }
    }

    /// True when nothing is held back (`min` 0): the caller may skip the buffer.
    pub(crate) fn passes_through(&self) -> bool {
        self.min == 0
    }

    /// Adds `bytes`; returns the pending bytes once there are at least `min` of them (and at
    /// least one).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        if !self.buf.is_empty() && self.buf.len() >= self.min {
            Some(std::mem::take(&mut self.buf))
        } else {
            None
        }
    }

    /// Whatever is still pending (the end of the body).
    pub(crate) fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let u = parse_base_url("http://127.0.0.1:11434").expect("valid");
        assert_eq!(u.authority, "127.0.0.1:11434");
        assert_eq!(u.prefix, "");
        let u = parse_base_url("http://localhost/").expect("valid");
        assert_eq!(
            (u.authority.as_str(), u.prefix.as_str()),
            ("localhost:80", "")
        );
        let u = parse_base_url("HTTP://h:8080/proxy/llm/").expect("valid");
        assert_eq!(
            (u.authority.as_str(), u.prefix.as_str()),
            ("h:8080", "/proxy/llm")
        );
        let u = parse_base_url("http://[::1]:8080").expect("valid");
        assert_eq!(u.authority, "[::1]:8080");
        let u = parse_base_url("http://[::1]").expect("valid");
        assert_eq!(u.authority, "[::1]:80");
        for bad in [
            "https://127.0.0.1:8080",
            "127.0.0.1:11434",
            "http://",
            "http://:80",
            "http://h:99999",
            "http://h:x",
            "http://h/?q=1",
            "http://u:p@h:1",
            "http://[::1",
            "http://[::1]x",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
        let e = parse_base_url("https://h").expect_err("refused");
        assert!(e.contains("https") && e.contains("http://"), "{e}");
    }

    #[test]
    fn request_bytes() {
        let u = parse_base_url("http://h:1/p").expect("valid");
        let r = post_request(&u, "/api/generate", "application/x-ndjson", b"{}");
        let text = String::from_utf8(r).expect("utf8");
        assert!(text.starts_with("POST /p/api/generate HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }

    #[test]
    fn heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nA: b\r\n"), Ok(None));
        let buf = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\nrest";
        let (h, n) = parse_head(buf).expect("valid").expect("complete");
        assert_eq!(h.status, 200);
        assert_eq!(h.reason, "OK");
        assert_eq!(h.framing, Framing::Chunked);
        assert_eq!(&buf[n..], b"rest");
        let buf = b"HTTP/1.0 404 Not Found\ncontent-length: 12\n\nbody";
        let (h, n) = parse_head(buf).expect("valid").expect("complete");
        assert_eq!(
            (h.status, h.reason.as_str(), h.framing),
            (404, "Not Found", Framing::Length(12))
        );
        assert_eq!(&buf[n..], b"body");
        let (h, _) = parse_head(b"HTTP/1.1 503\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!(
            (h.status, h.reason.as_str(), h.framing),
            (503, "", Framing::Eof)
        );
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
    }

    fn decode_in_pieces(framing: Framing, wire: &[u8], piece: usize) -> (Vec<u8>, bool) {
        let mut d = BodyDecoder::new(framing);
        let mut out = Vec::new();
        for p in wire.chunks(piece) {
            d.feed(p, &mut out).expect("valid framing");
        }
        (out, d.done())
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_reads() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nGARBAGE";
        for piece in 1..wire.len() {
            let (out, done) = decode_in_pieces(Framing::Chunked, wire, piece);
            assert_eq!(out, b"hello, world", "piece {piece}");
            assert!(done, "piece {piece}");
        }
        let (out, done) = decode_in_pieces(Framing::Chunked, b"a\nabcdefghij\n0\n\n", 3);
        assert_eq!((out.as_slice(), done), (&b"abcdefghij"[..], true));
        let (out, done) = decode_in_pieces(Framing::Chunked, b"3\r\nabc\r\n", 2);
        assert_eq!((out.as_slice(), done), (&b"abc"[..], false));
        let mut d = BodyDecoder::new(Framing::Chunked);
        assert!(d.eof().is_err());
        let mut out = Vec::new();
        assert!(d.feed(b"zz\r\n", &mut out).is_err());
        let mut d = BodyDecoder::new(Framing::Chunked);
        assert!(d.feed(b"2\r\nabX", &mut out).is_err());
    }

    #[test]
    fn length_and_eof_bodies() {
        let (out, done) = decode_in_pieces(Framing::Length(5), b"hello world", 2);
        assert_eq!((out.as_slice(), done), (&b"hello"[..], true));
        let mut d = BodyDecoder::new(Framing::Length(5));
        let mut out = Vec::new();
        d.feed(b"hel", &mut out).expect("valid");
        assert!(!d.done());
        assert!(d.eof().is_err());
        assert!(BodyDecoder::new(Framing::Length(0)).done());
        let (out, done) = decode_in_pieces(Framing::Eof, b"all of it", 4);
        assert_eq!((out.as_slice(), done), (&b"all of it"[..], false));
        assert!(BodyDecoder::new(Framing::Eof).eof().is_ok());
    }

    #[test]
    fn rechunking_holds_bytes_back() {
        let mut r = Rechunker::new(4);
        assert_eq!(r.push(b"ab"), None);
        assert_eq!(r.push(b"c"), None);
        assert_eq!(r.push(b"de"), Some(b"abcde".to_vec()));
        assert_eq!(r.push(b"f"), None);
        assert_eq!(r.flush(), b"f".to_vec());
        assert_eq!(r.flush(), Vec::<u8>::new());
        let mut pass = Rechunker::new(0);
        assert_eq!(pass.push(b"x"), Some(b"x".to_vec()));
        assert_eq!(pass.push(b""), None);
    }
}
