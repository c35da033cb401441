//! A server that never stops streaming (issue #12, probe A): endless one-byte tokens, empty
//! chunks or SSE comments must end in the size-cap error, with every per-chunk structure of
//! the record (chunk count, inter-token gaps, text) bounded by the same cap as the body.
//!
//! The server is a few lines of tokio here: the emulator always finishes its replies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chimera::backend::OllamaClient;
use chimera::backend::OpenAiClient;
use chimera::backend::{ErrorKind, LlmRequest, RequestRecord};
use chimera::manifest::{Api, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The cap of every probe.
const CAP: usize = 64 * 1024;
/// Lines written per chunked-encoding frame (one frame, many chunks for the client).
const LINES_PER_FRAME: usize = 64;

/// A server answering every request with a 200 and `line` repeated until the client goes
/// away. The flag turns true once a client has hung up on it.
async fn flood_server(
    content_type: &'static str,
    line: &'static str,
) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hung_up = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&hung_up);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let flag = Arc::clone(&flag);
            tokio::spawn(async move {
                // The request head (the small body fits the socket buffer; it is not read).
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                if sock.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
                let payload = line.repeat(LINES_PER_FRAME);
                let frame = format!("{:x}\r\n{payload}\r\n", payload.len());
                loop {
                    if sock.write_all(frame.as_bytes()).await.is_err() {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    (addr, hung_up)
}

fn request(api: Api) -> LlmRequest {
    LlmRequest {
        api,
        model: "flood".to_owned(),
        prompt: "go".to_owned(),
        stream: true,
        options: Options::default(),
        keep_alive: None,
        // A watchdog, not a measurement: without a bound on the chunks the flood of empty
        // chunks would only end here (as a timeout, which fails the assertions).
        timeout: Duration::from_secs(60),
        max_response_bytes: CAP,
    }
}

/// The probe's record must be the cap error, and every per-chunk structure must fit the cap:
/// each chunk was at least `line` on the wire, so `chunks * line.len() <= CAP`; the gaps are
/// at most `CAP / 8` (and one per text chunk after the first); the text at most `CAP`.
fn assert_capped(rec: &RequestRecord, line: &str, what: &str) {
    let summary = format!(
        "{what}: error {:?}, {} chunks, {} gaps, {} text bytes",
        rec.error,
        rec.chunks,
        rec.itl_ms.len(),
        rec.text.len()
    );
    let e = rec.error.as_ref().unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(e.kind, ErrorKind::TooLarge, "{summary}");
    assert_eq!(e.status, Some(200), "{summary}");
    assert!(e.message.contains("exceeds the cap"), "{summary}");
    assert!(rec.chunks as usize * line.len() <= CAP, "{summary}");
    assert!(rec.itl_ms.len() <= CAP / 8, "{summary}");
    assert!(rec.itl_ms.len() <= rec.chunks as usize, "{summary}");
    assert!(rec.text.len() <= CAP, "{summary}");
    assert!(rec.itl_ms.capacity() * 8 <= 2 * CAP, "{summary}");
}

/// Sends the probe and waits until the server saw the client hang up (the request really
/// ended; nothing keeps reading the flood in the background).
async fn probe(
    send: impl std::future::Future<Output = RequestRecord>,
    hung_up: &AtomicBool,
) -> RequestRecord {
    let rec = send.await;
    for _ in 0..600 {
        if hung_up.load(Ordering::SeqCst) {
            return rec;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the client never hung up on the flood");
}

const OLLAMA_TOKEN: &str = "{\"model\":\"flood\",\"response\":\"a\",\"done\":false}\n";
const OLLAMA_EMPTY: &str = "{\"model\":\"flood\",\"response\":\"\",\"done\":false}\n";
const SSE_TOKEN: &str = "data: {\"choices\":[{\"index\":0,\"text\":\"a\"}]}\n\n";
const SSE_COMMENT: &str = ": ping\n";

/// Floods a client with `line` served as `content_type` (an OpenAI client for
/// `text/event-stream`, an Ollama one otherwise); the request must end in the cap error.
async fn flooded(
    content_type: &'static str,
    line: &'static str,
    api: Api,
    what: &str,
) -> RequestRecord {
    let (addr, hung_up) = flood_server(content_type, line).await;
    let url = format!("http://{addr}");
    let req = request(api);
    let rec = if content_type == "text/event-stream" {
        let client = OpenAiClient::new(&url).expect("client");
        probe(client.send(&req), &hung_up).await
    } else {
        let client = OllamaClient::new(&url).expect("client");
        probe(client.send(&req), &hung_up).await
    };
    assert_capped(&rec, line, what);
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_one_byte_tokens_end_in_the_cap_error_with_bounded_gaps() {
    let rec = flooded(
        "application/x-ndjson",
        OLLAMA_TOKEN,
        Api::Generate,
        "ollama tokens",
    )
    .await;
    assert!(rec.ttft_ms.is_some() && !rec.itl_ms.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_empty_chunks_end_in_the_cap_error() {
    let rec = flooded(
        "application/x-ndjson",
        OLLAMA_EMPTY,
        Api::Generate,
        "ollama empty chunks",
    )
    .await;
    assert!(rec.text.is_empty() && rec.itl_ms.is_empty() && rec.chunks > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_one_byte_tokens_end_in_the_cap_error_with_bounded_gaps() {
    let rec = flooded("text/event-stream", SSE_TOKEN, Api::Generate, "sse tokens").await;
    assert!(rec.ttft_ms.is_some() && !rec.itl_ms.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_comment_lines_end_in_the_cap_error() {
    let rec = flooded("text/event-stream", SSE_COMMENT, Api::Chat, "sse comments").await;
    assert_eq!(rec.chunks, 0, "comments are not chunks");
}
