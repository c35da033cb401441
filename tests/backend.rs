//! The Ollama client against the emulator over real HTTP on 127.0.0.1: every error kind (with
//! its status and the partial timings kept) and the success paths checked against the
//! emulator's ground truth.

use std::net::SocketAddr;

use chimera::backend::OllamaClient;
use chimera::backend::{Client, ErrorKind, LlmRequest, RequestRecord};
use chimera::emulator::{self, EmulatorHandle, Profile};
use chimera::manifest::{Api, EndpointKind, Options};

use crate::support::{
    self, connection_refused as connection_refused_with, huge_reply_fits_the_default_cap, request,
    status_errors as status_errors_of, too_large_under_a_small_cap, truth,
};

const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Slack allowed between the client's timings and the emulator's truth: both run in this
/// process on a small, possibly busy machine.
const SLACK_MS: f64 = 50.0;

fn profile() -> Profile {
    let yaml = format!(
        r#"
seed: 7
version: 9.9.9-test
shared_gpu: false
models:
  - name: fast:1b
    digest: "{DIGEST}"
    load_ms: 0
    prompt_tok_s: 100000
    output_tok_s: 200
    output_tokens: 12
  - name: plain
    load_ms: 0
    output_tok_s: 1000
    output_tokens: 4
  - name: hangs-up
    fault: {{kind: refuse_after_accept}}
  - name: bad
    fault: {{kind: status, code: 400, message: "invalid model name"}}
  - name: broken
    fault: {{kind: status, code: 500, message: "llama runner process has terminated"}}
  - name: busy
    fault: {{kind: status, code: 503, message: "server busy, please try again.  maximum pending requests exceeded"}}
  - name: limited
    fault: {{kind: status, code: 429, message: "too many requests"}}
  - name: crashes
    load_ms: 0
    output_tok_s: 1000
    fault: {{kind: error_after, tokens: 3, message: "an error was encountered while running the model: unexpected EOF"}}
  - name: truncates
    load_ms: 0
    output_tok_s: 1000
    fault: {{kind: truncate_after, tokens: 3}}
  - name: dies
    load_ms: 0
    output_tok_s: 1000
    fault: {{kind: truncate_after, tokens: 3, abrupt: true}}
  - name: garbles
    load_ms: 0
    output_tok_s: 1000
    fault: {{kind: malformed_after, tokens: 3}}
  - name: stalls
    load_ms: 0
    output_tok_s: 1000
    fault: {{kind: stall_after, tokens: 3, ms: 2000}}
  - name: verbose
    load_ms: 0
    output_tok_s: 1000
    output_tokens: 8
    fault: {{kind: huge, bytes: 100000}}
"#
    );
    Profile::from_yaml(&yaml).expect("test profile")
}

async fn start() -> (EmulatorHandle, OllamaClient) {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let emu = emulator::spawn(profile(), &[addr])
        .await
        .expect("spawn emulator");
    let client = OllamaClient::new(&format!("http://{}", emu.addrs[0])).expect("client");
    (emu, client)
}

fn assert_error(rec: &RequestRecord, kind: ErrorKind, status: Option<u16>) {
    let e = rec
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("expected {kind:?}, got success: {rec:?}"));
    assert_eq!(e.kind, kind, "{rec:?}");
    assert_eq!(e.status, status, "{rec:?}");
    assert!(!e.message.is_empty());
    assert!(!rec.ok());
    assert!(rec.sent_at_unix_ms > 1.0e12, "{rec:?}");
    assert!(rec.e2e_ms > 0.0, "{rec:?}");
}

/// Three text chunks arrived before the fault: their timings are kept.
fn assert_three_chunks_kept(rec: &RequestRecord) {
    assert!(rec.ttft_ms.is_some(), "{rec:?}");
    assert_eq!(rec.itl_ms.len(), 2, "{rec:?}");
    assert!(rec.chunks >= 3, "{rec:?}");
    assert!(!rec.text.is_empty());
    assert!(rec.e2e_ms >= rec.ttft_ms.unwrap_or(f64::MAX));
    assert_eq!(rec.output_tokens, None, "no final chunk, no server metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_generate_matches_the_truth() {
    let (emu, client) = start().await;
    let rec = client.send(&request(Api::Generate, "fast:1b")).await;
    assert!(rec.ok(), "{rec:?}");
    let t = truth(&emu, 0).await;
    assert_eq!(t.status, 200);
    assert_eq!(t.output_tokens, 12);
    assert_eq!(rec.output_tokens, Some(u64::from(t.output_tokens)));
    assert_eq!(rec.prompt_tokens, Some(u64::from(t.prompt_tokens)));
    assert_eq!(t.prompt, "Why is the sky blue? Answer briefly.");
    assert_eq!(rec.done_reason.as_deref(), Some("stop"));
    assert_eq!(rec.text.split_whitespace().count(), 12, "{:?}", rec.text);

    // TTFT: the client clock starts before the server's and stops after it, but the truth is
    // stamped after the server's write returns, which a loaded 2-core machine can delay past
    // the client's read: allow the same slack on both sides.
    let first = t.first_chunk_offset_us.expect("truth TTFT") as f64 / 1000.0;
    let ttft = rec.ttft_ms.expect("client TTFT");
    assert!(ttft >= first - SLACK_MS, "client {ttft} ≪ truth {first}");
    assert!(ttft <= first + SLACK_MS, "client {ttft} ≫ truth {first}");

    // One ITL per gap between text chunks, each close to the server's gap.
    assert_eq!(t.chunk_offsets_us.len(), 12);
    assert_eq!(rec.itl_ms.len(), t.chunk_offsets_us.len() - 1);
    let itl_sum: f64 = rec.itl_ms.iter().sum();
    let truth_span = (t.chunk_offsets_us[11] - t.chunk_offsets_us[0]) as f64 / 1000.0;
    assert!(
        (itl_sum - truth_span).abs() <= SLACK_MS,
        "{itl_sum} vs {truth_span}"
    );
    for (i, g) in rec.itl_ms.iter().enumerate() {
        let truth_gap = (t.chunk_offsets_us[i + 1] - t.chunk_offsets_us[i]) as f64 / 1000.0;
        assert!(
            *g >= 0.0 && (g - truth_gap).abs() <= SLACK_MS,
            "gap {i}: {g} vs {truth_gap}"
        );
    }

    // Server timings arrive in ms; e2e covers the whole stream.
    let eval = rec.eval_ms.expect("eval_duration");
    assert!(eval > 0.0 && eval < rec.e2e_ms, "{rec:?}");
    assert!(rec.total_ms.expect("total_duration") <= rec.e2e_ms + 1.0);
    assert!(rec.e2e_ms >= ttft + itl_sum - 1.0);
    assert!(
        rec.chunks >= 13,
        "12 text chunks and the final one: {}",
        rec.chunks
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_chat_and_options_only_when_set() {
    let (emu, client) = start().await;
    let rec = client.send(&request(Api::Chat, "fast:1b")).await;
    assert!(rec.ok(), "{rec:?}");
    assert_eq!(rec.output_tokens, Some(12));
    assert_eq!(rec.itl_ms.len(), 11);
    assert!(rec.ttft_ms.is_some());
    let t = truth(&emu, 0).await;
    assert_eq!(
        t.options,
        serde_json::Value::Null,
        "empty options are not sent"
    );
    assert_eq!(t.prompt, "Why is the sky blue? Answer briefly.");

    let mut req = request(Api::Chat, "fast:1b");
    req.options = Options {
        num_predict: Some(5),
        seed: Some(42),
        ..Options::default()
    };
    let rec = client.send(&req).await;
    assert!(rec.ok(), "{rec:?}");
    assert_eq!(rec.output_tokens, Some(5));
    assert_eq!(rec.done_reason.as_deref(), Some("length"));
    let t = truth(&emu, 1).await;
    assert_eq!(t.options, serde_json::json!({"num_predict": 5, "seed": 42}));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstreamed_replies_have_no_ttft() {
    let (emu, client) = start().await;
    for api in [Api::Generate, Api::Chat] {
        let mut req = request(api, "fast:1b");
        req.stream = false;
        let rec = client.send(&req).await;
        assert!(rec.ok(), "{api:?}: {rec:?}");
        assert_eq!(rec.ttft_ms, None);
        assert!(rec.itl_ms.is_empty());
        assert_eq!(rec.chunks, 1);
        assert_eq!(rec.output_tokens, Some(12));
        assert_eq!(rec.text.split_whitespace().count(), 12);
        assert!(rec.e2e_ms > 0.0 && rec.eval_ms.is_some());
    }
    assert!(!truth(&emu, 1).await.stream);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_model_digest() {
    let (emu, client) = start().await;
    assert_eq!(client.version().await.as_deref(), Ok("9.9.9-test"));
    assert_eq!(
        client
            .model_digest("fast:1b")
            .await
            .expect("tags")
            .as_deref(),
        Some(DIGEST)
    );
    let expected = profile().model("plain").expect("plain").digest.clone();
    assert_eq!(expected.len(), 64);
    assert_eq!(
        client.model_digest("plain").await,
        Ok(Some(expected.clone()))
    );
    assert_eq!(
        client.model_digest("PLAIN:latest").await,
        Ok(Some(expected))
    );
    assert_eq!(client.model_digest("absent:7b").await, Ok(None));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused() {
    connection_refused_with(EndpointKind::Emulator, Api::Generate, assert_error).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_without_a_response_counts_as_refused() {
    let (emu, client) = start().await;
    let rec = client.send(&request(Api::Generate, "hangs-up")).await;
    assert_error(&rec, ErrorKind::ConnectionRefused, None);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_errors() {
    let (emu, client) = start().await;
    let cases = [
        ("unknown:7b", ErrorKind::ModelNotFound, 404, "not found"),
        ("bad", ErrorKind::BadRequest, 400, "invalid model name"),
        (
            "broken",
            ErrorKind::ServerError,
            500,
            "llama runner process has terminated",
        ),
        ("busy", ErrorKind::QueueFull, 503, "server busy"),
        ("limited", ErrorKind::HttpStatus, 429, "too many requests"),
    ];
    status_errors_of(&Client::Ollama(client), &cases, assert_error).await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_line_after_200() {
    let (emu, client) = start().await;
    let rec = client.send(&request(Api::Generate, "crashes")).await;
    assert_error(&rec, ErrorKind::StreamError, Some(200));
    assert!(
        rec.error
            .as_ref()
            .expect("error")
            .message
            .contains("unexpected EOF")
    );
    assert_three_chunks_kept(&rec);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_streams() {
    let (emu, client) = start().await;
    support::truncated_streams(
        &Client::Ollama(client),
        assert_error,
        assert_three_chunks_kept,
    )
    .await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_line() {
    let (emu, client) = start().await;
    let rec = client.send(&request(Api::Generate, "garbles")).await;
    assert_error(&rec, ErrorKind::MalformedResponse, Some(200));
    assert_three_chunks_kept(&rec);
    let mut req = request(Api::Generate, "garbles");
    req.stream = false;
    let rec = client.send(&req).await;
    assert_error(&rec, ErrorKind::MalformedResponse, Some(200));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_times_out() {
    let (emu, client) = start().await;
    support::stall_times_out(
        &Client::Ollama(client),
        Api::Generate,
        assert_error,
        assert_three_chunks_kept,
    )
    .await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_with_a_small_cap() {
    let (emu, client) = start().await;
    let client = Client::Ollama(client);
    too_large_under_a_small_cap(&client, assert_error).await;
    // Lines (one padded token each, ~12.5 kB) fit a 20 kB cap, the whole body does not: the
    // chunks before the overflow keep their timings.
    let mut req = request(Api::Generate, "verbose");
    req.max_response_bytes = 20_000;
    let rec = client.send(&req).await;
    assert_error(&rec, ErrorKind::TooLarge, Some(200));
    assert!(rec.text.len() <= 20_000 && !rec.text.is_empty());
    assert!(rec.ttft_ms.is_some());
    huge_reply_fits_the_default_cap(&client).await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_client_serves_concurrent_requests() {
    let (emu, client) = start().await;
    let reqs: Vec<_> = (0..4).map(|_| request(Api::Generate, "plain")).collect();
    let recs = futures_join(&client, &reqs).await;
    assert!(recs.iter().all(RequestRecord::ok), "{recs:?}");
    assert!(
        recs.iter()
            .all(|r| r.output_tokens == Some(4) && r.itl_ms.len() == 3)
    );
    emu.shutdown().await;
}

async fn futures_join(client: &OllamaClient, reqs: &[LlmRequest]) -> Vec<RequestRecord> {
    let mut handles = Vec::new();
    for r in reqs {
        let c = client.clone();
        let r = r.clone();
        handles.push(tokio::spawn(async move { c.send(&r).await }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
