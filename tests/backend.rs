//! The Ollama client against the emulator over real HTTP on 127.0.0.1: every error kind (with
//! its status and the partial timings kept) and the success paths checked against the
//! emulator's ground truth.

use chimera::backend::OllamaClient;
use chimera::backend::{Client, ErrorKind, LlmRequest, RequestRecord};
use chimera::emulator::{EmulatorHandle, Profile};
use chimera::manifest::{Api, EndpointKind, Options};

use crate::support::{self, SLACK_MS, request, truth};

const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The models the emulator answers with an HTTP status, and what the client makes of them.
const STATUS_FAULTS: &[support::StatusFault] = &[
    ("bad", ErrorKind::BadRequest, 400, "invalid model name"),
    (
        "broken",
        ErrorKind::ServerError,
        500,
        "llama runner process has terminated",
    ),
    (
        "busy",
        ErrorKind::QueueFull,
        503,
        "server busy, please try again.  maximum pending requests exceeded",
    ),
    ("limited", ErrorKind::HttpStatus, 429, "too many requests"),
];

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
  - name: crashes
    load_ms: 0
    output_tok_s: 1000
    fault: {{kind: error_after, tokens: 3, message: "an error was encountered while running the model: unexpected EOF"}}
{statuses}{faults}"#,
        statuses = support::status_fault_models(STATUS_FAULTS),
        faults = support::stream_fault_models("load_ms: 0")
    );
    Profile::from_yaml(&yaml).expect("test profile")
}

async fn start() -> (EmulatorHandle, OllamaClient) {
    let emu = support::emulate_profile(profile(), 1).await;
    let client = OllamaClient::new(&format!("http://{}", emu.addrs[0])).expect("client");
    (emu, client)
}

fn assert_error(rec: &RequestRecord, kind: ErrorKind, status: Option<u16>) {
    support::assert_failed(rec, kind, status);
}

/// Three text chunks arrived before the fault: their timings are kept.
fn assert_three_chunks_kept(rec: &RequestRecord) {
    support::assert_three_chunks_timed(rec);
    assert!(!rec.text.is_empty());
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
    support::unstreamed_replies(&Client::Ollama(client), |rec| {
        assert!(rec.e2e_ms > 0.0 && rec.eval_ms.is_some());
    })
    .await;
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

support::client_fault_tests!(
    Client::Ollama,
    EndpointKind::Emulator,
    Api::Generate,
    STATUS_FAULTS,
    "not found"
);

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

/// Lines (one padded token each, ~12.5 kB) fit a 20 kB cap, the whole body does not: the
/// chunks before the overflow keep their timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_fit_a_cap_the_whole_body_does_not() {
    let (emu, client) = start().await;
    let mut req = request(Api::Generate, "verbose");
    req.max_response_bytes = 20_000;
    let rec = client.send(&req).await;
    assert_error(&rec, ErrorKind::TooLarge, Some(200));
    assert!(rec.text.len() <= 20_000 && !rec.text.is_empty());
    assert!(rec.ttft_ms.is_some());
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
