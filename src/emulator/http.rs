//! Just enough HTTP/1.1 for the emulator: request line, headers, `Content-Length` bodies,
//! keep-alive, fixed-length and chunked responses. Hand-written so that every byte and its
//! timing is under the emulator's control.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head (request line + headers).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One parsed request.
#[derive(Debug)]
pub struct Request {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The connection stays open after the response.
    pub keep_alive: bool,
    /// The body (empty when there was none).
    pub body: Vec<u8>,
}

/// What reading a request produced.
#[derive(Debug)]
pub enum ReadOutcome {
    /// A request.
    Request(Request),
    /// The peer closed the connection between requests.
    Closed,
    /// The request is not one the emulator accepts; answer 400 with this text and close.
    Bad(String),
}

/// Reads one request.
pub async fn read_request<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<ReadOutcome> {
    let mut head = Vec::new();
    // Skip blank lines between requests (RFC 9112 §2.2 tolerance).
    loop {
        let n = read_line(r, &mut head).await?;
        if n == 0 {
            return Ok(ReadOutcome::Closed);
        }
        if !head.trim_ascii().is_empty() {
            break;
        }
        head.clear();
    }
    let request_line = String::from_utf8_lossy(head.trim_ascii()).into_owned();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(ReadOutcome::Bad("malformed request line".into()));
    };
    if !version.starts_with("HTTP/1.") {
        return Ok(ReadOutcome::Bad(format!("unsupported version {version}")));
    }
    let mut keep_alive = version != "HTTP/1.0";
    let mut content_length: Option<usize> = None;
    let mut total = head.len();
    loop {
        let mut line = Vec::new();
        let n = read_line(r, &mut line).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        total += n;
        if total > MAX_HEAD {
            return Ok(ReadOutcome::Bad("request head too large".into()));
        }
        let line = line.trim_ascii();
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            return Ok(ReadOutcome::Bad("malformed header".into()));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => match value.parse::<usize>() {
                Ok(n) if n <= MAX_BODY => content_length = Some(n),
                _ => return Ok(ReadOutcome::Bad("bad Content-Length".into())),
            },
            "transfer-encoding" => {
                return Ok(ReadOutcome::Bad(
                    "Transfer-Encoding request bodies are not supported; send Content-Length"
                        .into(),
                ));
            }
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            _ => {}
        }
    }
    let mut body = vec![0; content_length.unwrap_or(0)];
    r.read_exact(&mut body).await?;
    let path = target.split('?').next().unwrap_or(target).to_owned();
    Ok(ReadOutcome::Request(Request {
        method: method.to_owned(),
        path,
        keep_alive,
        body,
    }))
}

async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut limited = r.take(MAX_HEAD as u64 + 1);
    limited.read_until(b'\n', buf).await
}

/// Reason phrase of a status code.
pub fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Content type of native JSON replies.
pub const JSON: &str = "application/json; charset=utf-8";
/// Content type of plain-text replies.
pub const TEXT: &str = "text/plain; charset=utf-8";
/// Content type of streamed replies.
pub const NDJSON: &str = "application/x-ndjson";

/// The head of a response, ending with the blank line.
pub fn head(code: u16, content_type: &str, length: Option<usize>, close: bool) -> Vec<u8> {
    let mut h = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\n",
        reason(code)
    );
    match length {
        Some(n) => h.push_str(&format!("Content-Length: {n}\r\n")),
        None => h.push_str("Transfer-Encoding: chunked\r\n"),
    }
    if close {
        h.push_str("Connection: close\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// Writes a complete fixed-length response (`head_only` for HEAD requests) and flushes.
pub async fn write_full<W: AsyncWrite + Unpin>(
    w: &mut W,
    code: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = head(code, content_type, Some(body.len()), close);
    if !head_only {
        out.extend_from_slice(body);
    }
    w.write_all(&out).await?;
    w.flush().await
}

/// One chunk of a chunked body holding `data`.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_requests_back_to_back() {
        let raw = b"POST /api/generate?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}GET / HTTP/1.0\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut r = tokio::io::BufReader::new(&raw[..]);
        let ReadOutcome::Request(a) = read_request(&mut r).await.expect("a") else {
            panic!("a")
        };
        assert_eq!(
            (a.method.as_str(), a.path.as_str()),
            ("POST", "/api/generate")
        );
        assert_eq!(a.body, b"{}");
        assert!(a.keep_alive);
        let ReadOutcome::Request(b) = read_request(&mut r).await.expect("b") else {
            panic!("b")
        };
        assert!(!b.keep_alive && b.body.is_empty());
        assert!(matches!(
            read_request(&mut r).await.expect("c"),
            ReadOutcome::Bad(_)
        ));
        assert!(matches!(
            read_request(&mut r).await.expect("d"),
            ReadOutcome::Closed
        ));
        assert_eq!(chunk(b"hi\n"), b"3\r\nhi\n\r\n");
    }
}
