//! Output lengths on the emulator: the seeded length distribution (`output_tokens_range`),
//! forcing on the OpenAI routes (`ignore_eos`, `min_tokens`, as chimera's client sends them for
//! a workload's `force_output_tokens`), the Ollama routes ignoring both, and the digest change
//! (`redigest_after`). Over real HTTP on 127.0.0.1, checked against the emulator's ground truth.

use chimera::backend::{Client, RequestRecord};
use chimera::emulator::{EmulatorHandle, redigested};
use chimera::manifest::{Api, EndpointKind, Options};
use serde_json::{Value, json};

use crate::support::{self, request, truth};

/// A model whose natural reply length is drawn from 1..=40, fast enough that a request takes
/// a few milliseconds, and a model whose digest changes after 2 requests.
fn profile(seed: u64) -> String {
    format!(
        "
seed: {seed}
shared_gpu: false
models:
  - name: varies:1b
    load_ms: 0
    prompt_tok_s: 1000000
    output_tok_s: 20000
    output_tokens_range: [1, 40]
    context_length: 512
  - name: repulled:1b
    load_ms: 0
    prompt_tok_s: 1000000
    output_tok_s: 20000
    output_tokens: 3
    redigest_after: 2
"
    )
}

fn url(emu: &EmulatorHandle) -> String {
    format!("http://{}", emu.addrs[0])
}

/// The output tokens of `n` sequential requests for `varies:1b` on the Ollama routes.
async fn ollama_lengths(emu: &EmulatorHandle, n: usize, num_predict: Option<i64>) -> Vec<u64> {
    let client = Client::new(EndpointKind::Emulator, &url(emu)).expect("client");
    let mut req = request(Api::Generate, "varies:1b");
    req.options = Options {
        num_predict,
        ..Options::default()
    };
    let mut out = Vec::new();
    for _ in 0..n {
        let rec = client.send(&req).await;
        assert!(rec.ok(), "{rec:?}");
        out.push(rec.output_tokens.expect("eval_count"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_lengths_are_deterministic_in_range_and_capped() {
    let emu = support::emulate(&profile(11), 1).await;
    let first = ollama_lengths(&emu, 16, None).await;
    assert!(first.iter().all(|n| (1..=40).contains(n)), "{first:?}");
    let mut distinct = first.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() >= 5, "the lengths vary: {first:?}");
    // The ground truth holds what was generated, request by request.
    for (i, n) in first.iter().enumerate() {
        assert_eq!(
            u64::from(truth(&emu, i).await.output_tokens),
            *n,
            "request {i}"
        );
    }
    // The cap applies to the draw of the next requests (17th on): none exceeds it, and the
    // ones that drew less keep their natural length.
    let capped = ollama_lengths(&emu, 16, Some(10)).await;
    assert!(capped.iter().all(|n| (1..=10).contains(n)), "{capped:?}");
    assert!(
        capped.iter().any(|n| *n < 10),
        "some drew fewer than the cap: {capped:?}"
    );
    emu.shutdown().await;

    // Same seed, a fresh emulator: the same lengths in the same order; another seed: others.
    let again = support::emulate(&profile(11), 1).await;
    assert_eq!(ollama_lengths(&again, 16, None).await, first);
    again.shutdown().await;
    let other = support::emulate(&profile(12), 1).await;
    assert_ne!(ollama_lengths(&other, 16, None).await, first);
    other.shutdown().await;
}

/// POSTs `body` to `path` and returns the JSON reply.
async fn post(emu: &EmulatorHandle, path: &str, body: Value) -> Value {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}{path}", url(emu)))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    assert!(r.status().is_success(), "{}", r.status());
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
}

fn completion_tokens(v: &Value) -> u64 {
    v["usage"]["completion_tokens"].as_u64().expect("usage")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_routes_honour_ignore_eos_and_min_tokens() {
    let emu = support::emulate(&profile(3), 1).await;
    let client = Client::new(EndpointKind::Openai, &url(&emu)).expect("client");
    for api in [Api::Generate, Api::Chat] {
        let mut req = request(api, "varies:1b");
        req.options.num_predict = Some(8);
        for n in [1u32, 33, 64] {
            let rec: RequestRecord = client.send_forced(&req, Some(n)).await;
            assert!(rec.ok(), "{rec:?}");
            assert_eq!(
                rec.output_tokens,
                Some(u64::from(n)),
                "{api:?} forced to {n}"
            );
            assert_eq!(
                rec.chunks,
                n + 2,
                "one chunk per token, the finish and usage chunks"
            );
            assert_eq!(rec.done_reason.as_deref(), Some("length"));
        }
    }
    let t = truth(&emu, 0).await;
    assert_eq!(t.output_tokens, 1);
    assert_eq!(
        t.options,
        json!({"max_tokens": 1, "ignore_eos": true, "min_tokens": 1}),
        "the forced length replaced num_predict"
    );

    // min_tokens alone: at least N, the natural length when longer, never past max_tokens.
    for i in 0..12 {
        let body = json!({"model": "varies:1b", "prompt": format!("p{i}"), "min_tokens": 30, "max_tokens": 35});
        let n = completion_tokens(&post(&emu, "/v1/completions", body).await);
        assert!((30..=35).contains(&n), "min_tokens 30, max_tokens 35: {n}");
    }
    // ignore_eos without max_tokens: until the context (512) is full.
    let v = post(
        &emu,
        "/v1/completions",
        json!({"model": "varies:1b", "prompt": "one two three four five six seven eight nine ten", "ignore_eos": true}),
    )
    .await;
    assert_eq!(
        completion_tokens(&v),
        512 - 13,
        "context 512 less 13 prompt tokens"
    );
    // Neither: the natural length (1..=40), ended by the model.
    let v = post(
        &emu,
        "/v1/completions",
        json!({"model": "varies:1b", "prompt": "x"}),
    )
    .await;
    assert!((1..=40).contains(&completion_tokens(&v)));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_routes_ignore_ignore_eos_and_min_tokens() {
    let emu = support::emulate(&profile(5), 1).await;
    for i in 0..8 {
        let body = json!({
            "model": "varies:1b", "prompt": format!("p{i}"), "stream": false,
            "ignore_eos": true, "min_tokens": 200,
            "options": {"ignore_eos": true, "min_tokens": 200},
        });
        let v = post(&emu, "/api/generate", body).await;
        let n = v["eval_count"].as_u64().expect("eval_count");
        assert!((1..=40).contains(&n), "Ollama cannot force a length: {n}");
        assert_eq!(v["done_reason"], "stop");
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_changes_after_redigest_after_requests() {
    let emu = support::emulate(&profile(0), 2).await;
    let http = reqwest::Client::new();
    let digest_at = |i: usize| {
        let http = http.clone();
        let base = format!("http://{}", emu.addrs[i]);
        async move {
            let json = |r: reqwest::Response| async move {
                let bytes = r.bytes().await.expect("body");
                serde_json::from_slice::<Value>(&bytes).expect("json")
            };
            let tags = json(
                http.get(format!("{base}/api/tags"))
                    .send()
                    .await
                    .expect("tags"),
            )
            .await;
            let show = json(
                http.post(format!("{base}/api/show"))
                    .body(json!({"model": "repulled:1b"}).to_string())
                    .send()
                    .await
                    .expect("show"),
            )
            .await;
            let tag = tags["models"]
                .as_array()
                .expect("models")
                .iter()
                .find(|m| m["name"] == "repulled:1b")
                .map(|m| m["digest"].as_str().unwrap_or_default().to_owned())
                .expect("listed");
            assert_eq!(show["digest"].as_str(), Some(tag.as_str()), "show = tags");
            tag
        }
    };
    let before = digest_at(0).await;
    assert_eq!(before, chimera::emulator::default_digest("repulled:1b"));
    let client = Client::new(EndpointKind::Emulator, &url(&emu)).expect("client");
    let req = request(Api::Generate, "repulled:1b");
    assert!(client.send(&req).await.ok());
    assert_eq!(digest_at(1).await, before, "one request: not yet");
    // The second request, on the other listener, counts for the model over all listeners.
    let other =
        Client::new(EndpointKind::Emulator, &format!("http://{}", emu.addrs[1])).expect("client");
    assert!(other.send(&req).await.ok());
    let after = digest_at(0).await;
    assert_ne!(after, before);
    assert_eq!(after, redigested(&before));
    assert_eq!(digest_at(1).await, after);
    assert_eq!(
        client.model_digest("repulled:1b").await,
        Ok(Some(after)),
        "what chimera records as the model digest"
    );
    emu.shutdown().await;
}

/// A campaign whose workload forces 24 output tokens, on an endpoint of kind `openai` served by
/// the emulator (natural lengths 1..=20): every request the runner sends asks for exactly 24
/// tokens and gets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_with_a_forced_length_sends_it_on_every_request() {
    let emu = support::emulate(
        "
seed: 4
shared_gpu: false
models:
  - name: gemma3:270m
    load_ms: 0
    prompt_tok_s: 1000000
    output_tok_s: 20000
    output_tokens_range: [1, 20]
",
        1,
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = format!(
        r#"
format: 1
report: TR901
title: forced length
endpoints:
  - {{id: e, kind: openai, url: "http://{addr}", resource: "local:gpu0"}}
models:
  - {{id: m, tag: "gemma3:270m"}}
workloads:
  - id: w
    force_output_tokens: 24
    task: {{kind: single_inference, prompts: [one, two, three]}}
scenarios:
  - {{id: single, kind: single, agents: [{{id: client, role: client, endpoint: e}}]}}
matrix:
  - {{workload: w, scenario: single, model: m, apply_to: [client], axes: {{temperature: [0.1, 0.5]}}}}
repetitions: 2
warmup: {{policy: none}}
telemetry: {{source: none}}
"#,
        addr = emu.addrs[0]
    );
    let summary = support::campaign(dir.path(), "forced", &manifest, false, None).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let truth = emu.truth.records();
    assert_eq!(
        truth.len(),
        2 * 2 * 3,
        "2 configurations × 2 repetitions × 3 prompts"
    );
    for t in &truth {
        assert_eq!(t.output_tokens, 24, "{t:?}");
        assert_eq!(t.options["ignore_eos"], true, "{t:?}");
        assert_eq!(t.options["min_tokens"], 24, "{t:?}");
        assert_eq!(t.options["max_tokens"], 24, "{t:?}");
    }
    emu.shutdown().await;
}
