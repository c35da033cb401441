//! The OpenAI-compatible backend against the emulator's OpenAI routes over real HTTP on
//! 127.0.0.1: the wire format, every error kind (with its status and the partial timings
//! kept), the success paths checked against the emulator's ground truth, the timing source,
//! and a small campaign on two `kind: openai` endpoints end to end into Parquet.

use arrow::array::Array;
use chimera::backend::{Client, ErrorKind, ModelPresence, RequestRecord};
use chimera::backend::{OpenAiClient, TIMING_LLAMA_SERVER, TIMING_USAGE_ONLY};
use chimera::emulator::{EmulatorHandle, Profile};
use chimera::manifest::{Api, EndpointKind, Options};

use crate::support::{self, SLACK_MS, request, truth};
use serde_json::{Value, json};

/// The models the emulator answers with an HTTP status, and what the client makes of them.
const STATUS_FAULTS: &[support::StatusFault] = &[
    ("no-route", ErrorKind::HttpStatus, 404, "File Not Found"),
    (
        "bad",
        ErrorKind::BadRequest,
        400,
        "'messages' must be an array",
    ),
    ("broken", ErrorKind::ServerError, 500, "llama_decode failed"),
    ("loading", ErrorKind::QueueFull, 503, "Loading model"),
    ("limited", ErrorKind::HttpStatus, 429, "too many requests"),
];

fn profile(timings: bool) -> Profile {
    let yaml = format!(
        r#"
seed: 7
version: 9.9.9-test
shared_gpu: false
openai_timings: {timings}
models:
  - name: fast:1b
    load_ms: 0
    prompt_tok_s: 100000
    output_tok_s: 200
    output_tokens: 12
  - name: crashes
    output_tok_s: 1000
    fault: {{kind: error_after, tokens: 3, message: "slot 0: context shift failed"}}
{statuses}{faults}"#,
        statuses = support::status_fault_models(STATUS_FAULTS),
        faults = support::stream_fault_models("")
    );
    Profile::from_yaml(&yaml).expect("test profile")
}

async fn start_with(timings: bool) -> (EmulatorHandle, OpenAiClient) {
    let emu = support::emulate_profile(profile(timings), 1).await;
    let client = OpenAiClient::new(&format!("http://{}", emu.addrs[0])).expect("client");
    (emu, client)
}

async fn start() -> (EmulatorHandle, OpenAiClient) {
    start_with(true).await
}

fn assert_error(rec: &RequestRecord, kind: ErrorKind, status: Option<u16>) {
    support::assert_failed(rec, kind, status);
    assert_eq!(
        rec.timing_source, None,
        "a failed reply has no server timings"
    );
}

/// Three text chunks arrived before the fault: their timings are kept.
fn assert_three_chunks_kept(rec: &RequestRecord) {
    support::assert_three_chunks_timed(rec);
    assert_eq!(rec.text.split_whitespace().count(), 3, "{rec:?}");
}

/// GET `url`.
async fn get(http: &reqwest::Client, url: &str) -> reqwest::Response {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// GET `url` and parse the body as JSON.
async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let body = get(http, url).await.text().await.expect("body");
    serde_json::from_str(&body).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_format_is_llama_server_sse() {
    let (emu, _) = start().await;
    let base = format!("http://{}", emu.addrs[0]);
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(
            json!({
                "model": "fast:1b",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 3
            })
            .to_string(),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let body = resp.text().await.expect("body");
    let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert!(events.iter().all(|e| e.starts_with("data: ")), "{body}");
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e["data: ".len()..]).expect("json chunk"))
        .collect();
    assert_eq!(chunks.len(), 5, "3 tokens, finish, usage: {body}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[4]["choices"], json!([]));
    assert_eq!(chunks[4]["usage"]["completion_tokens"], 3);
    assert_eq!(chunks[4]["timings"]["predicted_n"], 3);
    assert!(chunks[4]["timings"]["predicted_ms"].as_f64().expect("ms") > 0.0);

    let models = get_json(&http, &format!("{base}/v1/models")).await;
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "fast:1b");
    let health = get_json(&http, &format!("{base}/health")).await;
    assert_eq!(health, json!({"status": "ok"}));
    let props = get_json(&http, &format!("{base}/props")).await;
    assert_eq!(props["build_info"], "9.9.9-test");
    assert_eq!(props["chimera_emulator"], true);
    let wrong = get(&http, &format!("{base}/v1/completions")).await;
    assert_eq!(wrong.status(), 405);
    // The Ollama routes still answer on the same listener.
    let tags = get(&http, &format!("{base}/api/tags")).await;
    assert_eq!(tags.status(), 200);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_completions_and_chat_match_the_truth() {
    let (emu, client) = start().await;
    for (n, api) in [Api::Generate, Api::Chat].into_iter().enumerate() {
        let rec = client.send(&request(api, "fast:1b")).await;
        assert!(rec.ok(), "{api:?}: {rec:?}");
        let t = truth(&emu, n).await;
        assert_eq!(t.status, 200);
        assert!(t.stream);
        assert_eq!(t.prompt, "Why is the sky blue? Answer briefly.");
        assert_eq!(t.options, Value::Null, "no sampling settings were sent");

        // TTFT > 0, ≤ e2e, close to the server's first write.
        let ttft = rec.ttft_ms.expect("client TTFT");
        assert!(ttft > 0.0 && ttft <= rec.e2e_ms, "{rec:?}");
        let first = t.first_chunk_offset_us.expect("truth TTFT") as f64 / 1000.0;
        assert!(
            (ttft - first).abs() <= SLACK_MS,
            "client {ttft} vs truth {first}"
        );

        // One text chunk per token; the server's count equals the streamed count.
        let text_chunks = t.chunk_offsets_us.len();
        assert_eq!(text_chunks, 12);
        assert_eq!(t.output_tokens as usize, text_chunks);
        assert_eq!(rec.output_tokens, Some(text_chunks as u64));
        assert_eq!(rec.itl_ms.len(), text_chunks - 1);
        assert_eq!(
            rec.chunks as usize,
            text_chunks + 2,
            "text chunks, the finish chunk and the usage chunk; [DONE] is not a chunk"
        );
        assert_eq!(rec.text.split_whitespace().count(), 12, "{:?}", rec.text);
        let itl_sum: f64 = rec.itl_ms.iter().sum();
        let span = (t.chunk_offsets_us[11] - t.chunk_offsets_us[0]) as f64 / 1000.0;
        assert!((itl_sum - span).abs() <= SLACK_MS, "{itl_sum} vs {span}");

        // Server numbers from usage and llama-server's timings.
        assert_eq!(rec.prompt_tokens, Some(u64::from(t.prompt_tokens)));
        let eval = rec.eval_ms.expect("timings.predicted_ms");
        assert!(eval > 0.0 && eval < rec.e2e_ms, "{rec:?}");
        assert!(rec.prompt_eval_ms.is_some(), "timings.prompt_ms");
        assert_eq!(rec.timing_source.as_deref(), Some(TIMING_LLAMA_SERVER));
        assert_eq!(rec.done_reason.as_deref(), Some("stop"));
        assert_eq!((rec.load_ms, rec.total_ms), (None, None));
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_map_to_openai_names_and_load_options_are_not_sent() {
    let (emu, client) = start().await;
    let mut req = request(Api::Chat, "fast:1b");
    req.options = Options {
        num_predict: Some(5),
        seed: Some(42),
        temperature: Some(0.0),
        num_gpu: Some(80),
        num_ctx: Some(2048),
        ..Options::default()
    };
    req.keep_alive = Some("5m".into());
    let rec = client.send(&req).await;
    assert!(rec.ok(), "{rec:?}");
    assert_eq!(rec.output_tokens, Some(5));
    assert_eq!(rec.done_reason.as_deref(), Some("length"));
    let t = truth(&emu, 0).await;
    assert_eq!(
        t.options,
        json!({"max_tokens": 5, "seed": 42, "temperature": 0.0}),
        "num_gpu, num_ctx and keep_alive are never sent"
    );
    // The same request twice gives the same words (the seeded schedule).
    let again = client.send(&req).await;
    assert_eq!(again.text, rec.text);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_timings_the_source_is_usage_only() {
    let (emu, client) = start_with(false).await;
    for api in [Api::Generate, Api::Chat] {
        let rec = client.send(&request(api, "fast:1b")).await;
        assert!(rec.ok(), "{rec:?}");
        assert_eq!(rec.timing_source.as_deref(), Some(TIMING_USAGE_ONLY));
        assert_eq!(rec.output_tokens, Some(12));
        assert!(rec.prompt_tokens.is_some());
        assert_eq!((rec.eval_ms, rec.prompt_eval_ms), (None, None));
        assert!(rec.ttft_ms.is_some());
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstreamed_replies_are_one_object_without_ttft() {
    let (emu, client) = start().await;
    support::unstreamed_replies(&Client::OpenAi(client), |rec| {
        assert!(rec.eval_ms.is_some());
        assert_eq!(rec.timing_source.as_deref(), Some(TIMING_LLAMA_SERVER));
    })
    .await;
    let t = truth(&emu, 1).await;
    assert!(!t.stream);
    assert_eq!(
        t.options,
        Value::Null,
        "no stream_options without streaming"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_models_digest_and_emulator_marker() {
    let (emu, client) = start().await;
    assert_eq!(client.version().await.as_deref(), Ok("9.9.9-test"));
    let models = client.models().await.expect("models");
    assert!(models.contains(&"fast:1b".to_owned()), "{models:?}");
    assert_eq!(client.model_digest("fast:1b").await, Ok(None));
    assert!(client.is_chimera_emulator().await);
    let any =
        Client::new(EndpointKind::Openai, &format!("http://{}", emu.addrs[0])).expect("client");
    assert!(any.is_openai());
    assert_eq!(
        any.model_presence("FAST:1b").await,
        Ok(ModelPresence::Present)
    );
    assert!(matches!(
        any.model_presence("gemma3:270m").await,
        Ok(ModelPresence::NotListed { .. })
    ));
    let ollama =
        Client::new(EndpointKind::Emulator, &format!("http://{}", emu.addrs[0])).expect("client");
    assert_eq!(
        ollama.model_presence("gemma3:270m").await,
        Ok(ModelPresence::Missing)
    );
    emu.shutdown().await;
}

/// A server that answers 404 to everything: no route tells a version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_says_clearly_when_no_route_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = br#"{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}"#;
                let head = format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            });
        }
    });
    let client = OpenAiClient::new(&format!("http://{addr}")).expect("client");
    let e = client.version().await.expect_err("no version");
    assert_eq!((e.kind, e.status), (ErrorKind::HttpStatus, Some(404)));
    assert!(
        e.message.contains("does not report a version")
            && e.message.contains("/props")
            && e.message.contains("/v1/models"),
        "{}",
        e.message
    );
    assert!(!client.is_chimera_emulator().await);
    server.abort();
}

support::client_fault_tests!(
    Client::OpenAi,
    EndpointKind::Openai,
    Api::Chat,
    STATUS_FAULTS,
    "does not exist"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_chunk_after_200() {
    let (emu, client) = start().await;
    for api in [Api::Generate, Api::Chat] {
        let rec = client.send(&request(api, "crashes")).await;
        assert_error(&rec, ErrorKind::StreamError, Some(200));
        let msg = &rec.error.as_ref().expect("error").message;
        assert!(msg.contains("context shift failed"), "{msg}");
        assert_three_chunks_kept(&rec);
    }
    let mut req = request(Api::Chat, "crashes");
    req.stream = false;
    let rec = client.send(&req).await;
    assert_error(&rec, ErrorKind::ServerError, Some(500));
    emu.shutdown().await;
}

/// An unstreamed reply cut halfway is half a JSON body: truncated or malformed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_unstreamed_body() {
    let (emu, client) = start().await;
    let mut req = request(Api::Generate, "truncates");
    req.stream = false;
    let rec = client.send(&req).await;
    assert!(
        matches!(
            rec.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::Truncated | ErrorKind::MalformedResponse)
        ),
        "half a JSON body: {rec:?}"
    );
    emu.shutdown().await;
}

/// A chimera_homo campaign with two `kind: openai` endpoints on two emulator listeners runs
/// end to end; its requests table says where the timings came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_on_two_openai_endpoints() {
    let emu = crate::support::emulate(&crate::run_e2e::profile(), 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = crate::run_e2e::manifest(emu.addrs[0], emu.addrs[1])
        .replace("kind: emulator", "kind: openai")
        .lines()
        .filter(|l| !l.contains("id: test103"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(text.matches("kind: openai").count(), 2);
    let summary = crate::support::campaign(dir.path(), "oai", &text, false, None).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);

    let cells_dir = dir.path().join("data/oai/cells");
    let (mut measured, mut concurrent) = (0, 0);
    for entry in std::fs::read_dir(&cells_dir).expect("cells") {
        let cell = entry.expect("entry").path();
        if !cell.join("MANIFEST.json").exists() {
            continue;
        }
        let c = &chimera::table::read_parquet(&cell.join("cells.parquet")).expect("cells")[0];
        let kind = c
            .column_by_name("kind")
            .and_then(|a| a.as_any().downcast_ref::<arrow::array::StringArray>())
            .map(|a| a.value(0).to_owned())
            .expect("kind");
        if kind == "concurrent" {
            concurrent += 1;
            let eff = c
                .column_by_name("true_efficiency_pct")
                .and_then(|a| a.as_any().downcast_ref::<arrow::array::Float64Array>())
                .expect("true efficiency");
            assert!(eff.is_valid(0), "true efficiency computed");
        }
        for b in chimera::table::read_parquet(&cell.join("requests.parquet")).expect("requests") {
            let source = b
                .column_by_name("timing_source")
                .and_then(|a| a.as_any().downcast_ref::<arrow::array::StringArray>())
                .expect("timing_source column");
            let tokens = b
                .column_by_name("output_tokens")
                .and_then(|a| a.as_any().downcast_ref::<arrow::array::UInt64Array>())
                .expect("output_tokens");
            let eval = b
                .column_by_name("eval_ms")
                .and_then(|a| a.as_any().downcast_ref::<arrow::array::Float64Array>())
                .expect("eval_ms");
            for i in 0..b.num_rows() {
                assert_eq!(source.value(i), TIMING_LLAMA_SERVER);
                assert_eq!(tokens.value(i), 40);
                assert!(eval.value(i) > 0.0);
                measured += 1;
            }
        }
    }
    assert_eq!(concurrent, 2, "1 configuration × 2 repetitions");
    assert!(measured >= 16, "requests measured: {measured}");
    // Every request went to the OpenAI routes; none to Ollama's.
    let truth = emu.truth.records();
    assert!(!truth.is_empty());
    assert!(
        truth.iter().all(|t| t.options.get("num_ctx").is_none()),
        "load options are never sent"
    );
    let prov = chimera::table::read_parquet(&dir.path().join("data/oai/provenance.parquet"))
        .expect("provenance");
    let kinds = prov[0]
        .column_by_name("server_kind")
        .and_then(|a| a.as_any().downcast_ref::<arrow::array::StringArray>())
        .expect("server_kind");
    assert_eq!(
        kinds.value(0),
        "emulator",
        "the emulator is labelled as such"
    );
    emu.shutdown().await;
}
