//! `chimera emulate` over real HTTP: protocol, timing model, reload rule, shared GPU, faults.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chimera::emulator::{EmulatorHandle, Profile, spawn};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOCAL: &str = "127.0.0.1:0";

async fn start(yaml: &str, listeners: usize) -> EmulatorHandle {
    let profile = Profile::from_yaml(yaml).expect("profile");
    let addr: SocketAddr = LOCAL.parse().expect("addr");
    spawn(profile, &vec![addr; listeners]).await.expect("spawn")
}

/// What `each` finds on two emulators started one after the other from the same `yaml` (so
/// with the same seed), each shut down after: a seeded behaviour finds the same twice.
async fn on_two_emulators<T, F>(
    yaml: &str,
    listeners: usize,
    each: impl Fn(EmulatorHandle) -> F,
) -> Vec<T>
where
    F: std::future::Future<Output = (EmulatorHandle, T)>,
{
    let mut found = Vec::new();
    for _ in 0..2 {
        let (h, x) = each(start(yaml, listeners).await).await;
        h.shutdown().await;
        found.push(x);
    }
    found
}

fn url(h: &EmulatorHandle, i: usize, path: &str) -> String {
    format!("http://{}{path}", h.addrs[i])
}

/// A response read chunk by chunk: status, content type, body, and whether the body ended
/// with a transport error (connection closed mid-body).
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    body_error: bool,
    /// Arrival time of each body chunk as reqwest delivered it.
    arrivals: Vec<Instant>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    /// Each NDJSON line, parsed (`Err` = the raw line when it is not JSON).
    fn lines(&self) -> Vec<Result<Value, String>> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).map_err(|_| l.to_owned()))
            .collect()
    }
}

async fn send(c: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Reply {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = c.request(m, url);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let mut resp = rb.send().await.expect("send");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut body = Vec::new();
    let mut arrivals = Vec::new();
    let mut body_error = false;
    loop {
        match resp.chunk().await {
            Ok(Some(b)) => {
                body.extend_from_slice(&b);
                arrivals.push(Instant::now());
            }
            Ok(None) => break,
            Err(_) => {
                body_error = true;
                break;
            }
        }
    }
    Reply {
        status,
        content_type,
        body,
        body_error,
        arrivals,
    }
}

async fn generate(c: &reqwest::Client, h: &EmulatorHandle, i: usize, body: Value) -> Reply {
    send(c, "POST", &url(h, i, "/api/generate"), Some(body)).await
}

fn final_chunk(r: &Reply) -> Value {
    let lines = r.lines();
    let last = lines.last().expect("a line").clone().expect("JSON");
    assert_eq!(last["done"], true, "{last}");
    last
}

const METRICS: [&str; 6] = [
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
];

const FAST: &str = "models:
  - name: fast:1b
    load_ms: 30
    prompt_tok_s: 100000
    output_tok_s: 2000
    output_tokens: 8
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_generate_has_chunks_metrics_and_truth() {
    let h = start(FAST, 1).await;
    let c = reqwest::Client::new();
    let r = generate(
        &c,
        &h,
        0,
        json!({"model": "fast:1b", "prompt": "one two three four five six seven eight nine ten"}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/x-ndjson");
    let lines = r.lines();
    assert_eq!(lines.len(), 9);
    let mut text = String::new();
    for l in &lines[..8] {
        let l = l.as_ref().expect("JSON line");
        assert_eq!(l["model"], "fast:1b");
        assert_eq!(l["done"], false);
        assert!(l["created_at"].as_str().expect("created_at").ends_with('Z'));
        let t = l["response"].as_str().expect("response");
        assert!(!t.is_empty());
        text.push_str(t);
        assert!(l.get("eval_count").is_none());
    }
    let last = final_chunk(&r);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["response"], "");
    for k in METRICS {
        assert!(last[k].as_u64().is_some_and(|v| v > 0), "{k} in {last}");
    }
    assert_eq!(last["eval_count"], 8);
    assert_eq!(last["prompt_eval_count"], 13); // 10 words × 1.3
    // Nanoseconds: the cold load of 30 ms.
    let load_ns = last["load_duration"].as_u64().expect("load");
    assert!((30_000_000..1_000_000_000).contains(&load_ns), "{load_ns}");
    let total = last["total_duration"].as_u64().expect("total");
    let parts = load_ns
        + last["prompt_eval_duration"].as_u64().expect("p")
        + last["eval_duration"].as_u64().expect("e");
    assert!(total >= parts, "{total} < {parts}");
    assert_eq!(
        last["context"].as_array().expect("context").len(),
        13 + 8,
        "prompt + output token ids"
    );

    let truth = h.truth.records();
    assert_eq!(truth.len(), 1);
    let t = &truth[0];
    assert_eq!((t.status, t.output_tokens, t.prompt_tokens), (200, 8, 13));
    assert_eq!(t.chunk_offsets_us.len(), 8);
    assert!(t.chunk_offsets_us.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(t.first_chunk_offset_us, Some(t.chunk_offsets_us[0]));
    assert!(t.first_chunk_offset_us.expect("ttft") >= 30_000);
    assert!(t.reloaded && t.stream && t.fault.is_none());
    assert_eq!(t.options, Value::Null);
    assert_eq!(t.model, "fast:1b");

    // num_predict caps the output: done_reason "length".
    let r = generate(
        &c,
        &h,
        0,
        json!({"model": "fast:1b", "prompt": "hi", "options": {"num_predict": 3}}),
    )
    .await;
    let last = final_chunk(&r);
    assert_eq!(
        (last["eval_count"].as_u64(), last["done_reason"].as_str()),
        (Some(3), Some("length"))
    );
    assert_eq!(h.truth.records()[1].options, json!({"num_predict": 3}));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streamed_and_chat_replies() {
    let h = start(FAST, 1).await;
    let c = reqwest::Client::new();
    let prompt = "why is the sky blue";
    let streamed = generate(&c, &h, 0, json!({"model": "fast:1b", "prompt": prompt})).await;
    let streamed_text: String = streamed
        .lines()
        .iter()
        .map(|l| {
            l.as_ref().expect("JSON")["response"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    let r = generate(
        &c,
        &h,
        0,
        json!({"model": "fast:1b", "prompt": prompt, "stream": false}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["done"], true);
    assert_eq!(v["eval_count"], 8);
    // Deterministic: the same prompt gives the same text, streamed or not.
    assert_eq!(v["response"].as_str(), Some(streamed_text.as_str()));
    assert_eq!(
        v["response"].as_str().map(|s| s.split(' ').count()),
        Some(8)
    );
    for k in METRICS {
        assert!(v[k].as_u64().is_some_and(|x| x > 0), "{k}");
    }

    let r = send(
        &c,
        "POST",
        &url(&h, 0, "/api/chat"),
        Some(json!({"model": "fast:1b", "messages": [{"role": "user", "content": "2+2?"}]})),
    )
    .await;
    assert_eq!(r.status, 200);
    let lines = r.lines();
    assert_eq!(lines.len(), 9);
    let first = lines[0].as_ref().expect("JSON");
    assert_eq!(first["message"]["role"], "assistant");
    assert!(
        !first["message"]["content"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    );
    assert!(first.get("response").is_none());
    let last = final_chunk(&r);
    assert!(last.get("context").is_none());
    assert_eq!(last["message"]["content"], "");
    assert_eq!(last["eval_count"], 8);

    let r = send(
        &c,
        "POST",
        &url(&h, 0, "/api/chat"),
        Some(json!({"model": "fast:1b", "stream": false, "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await;
    let v = r.json();
    assert_eq!(
        v["message"]["content"]
            .as_str()
            .map(|s| s.split(' ').count()),
        Some(8)
    );

    // Empty prompt: load only, no metrics.
    let r = generate(&c, &h, 0, json!({"model": "fast:1b"})).await;
    let v = r.json();
    assert_eq!(
        (v["done"].clone(), v["done_reason"].clone()),
        (json!(true), json!("load"))
    );
    assert!(v.get("eval_count").is_none());

    let truth = h.truth.records();
    assert_eq!(truth.len(), 5);
    assert!(!truth[1].stream);
    assert_eq!(truth[2].prompt, "2+2?");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_errors() {
    let h = start(FAST, 1).await;
    let c = reqwest::Client::new();
    let r = send(&c, "GET", &url(&h, 0, "/"), None).await;
    assert_eq!((r.status, r.text().as_str()), (200, "Ollama is running"));
    let r = send(&c, "HEAD", &url(&h, 0, "/"), None).await;
    assert_eq!((r.status, r.body.len()), (200, 0));
    let r = send(&c, "GET", &url(&h, 0, "/api/version"), None).await;
    assert_eq!(
        r.json(),
        json!({"version": "0.0.0-chimera-emulator", "chimera_emulator": true})
    );
    let r = send(&c, "GET", &url(&h, 0, "/api/tags"), None).await;
    let tags = r.json();
    let m = &tags["models"][0];
    assert_eq!(m["name"], "fast:1b");
    assert_eq!(m["digest"].as_str().map(str::len), Some(64));
    assert!(m["size"].as_u64().is_some() && m["details"]["family"] == "fast");

    let r = send(&c, "GET", &url(&h, 0, "/api/ps"), None).await;
    assert_eq!(r.json(), json!({"models": []}));
    generate(
        &c,
        &h,
        0,
        json!({"model": "FAST:1b", "prompt": "x", "options": {"num_ctx": 2048}}),
    )
    .await;
    let ps = send(&c, "GET", &url(&h, 0, "/api/ps"), None).await.json();
    let m = &ps["models"][0];
    assert_eq!(m["name"], "fast:1b");
    assert_eq!(m["context_length"], 2048);
    assert_eq!(m["size_vram"], m["size"]);
    assert!(m["expires_at"].as_str().is_some());

    let r = generate(&c, &h, 0, json!({"model": "nope:7b", "prompt": "x"})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"error": "model 'nope:7b' not found"}));
    let r = send(&c, "GET", &url(&h, 0, "/api/nothing"), None).await;
    assert_eq!((r.status, r.text().as_str()), (404, "404 page not found"));
    assert!(r.content_type.starts_with("text/plain"));
    let r = send(&c, "GET", &url(&h, 0, "/api/generate"), None).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (405, "405 method not allowed")
    );
    let r = send(&c, "POST", &url(&h, 0, "/api/tags"), None).await;
    assert_eq!(r.status, 405);
    let r = send(
        &c,
        "POST",
        &url(&h, 0, "/api/chat"),
        Some(json!({"messages": []})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (400, json!({"error": "model is required"}))
    );
    let r = generate(&c, &h, 0, json!({"prompt": "x"})).await;
    assert_eq!(r.status, 404);
    let r = generate(
        &c,
        &h,
        0,
        json!({"model": "fast:1b", "prompt": "x", "options": {"num_ctx": "big"}}),
    )
    .await;
    assert_eq!(r.status, 500);
    let r = c
        .post(url(&h, 0, "/api/generate"))
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    // Every generate/chat request is in the truth log, failures included.
    let statuses: Vec<u16> = h.truth.records().iter().map(|t| t.status).collect();
    assert_eq!(statuses, vec![200, 404, 400, 404, 500, 400]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_keep_alive_and_chunked_request_bodies() {
    let h = start(FAST, 1).await;
    let mut s = tokio::net::TcpStream::connect(h.addrs[0])
        .await
        .expect("connect");
    let body = r#"{"model":"fast:1b","prompt":"a b","stream":false}"#;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}GET /api/version HTTP/1.1\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut all = String::new();
    s.read_to_string(&mut all).await.expect("read");
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 3, "{all}");
    assert!(all.contains("Ollama is running") && all.contains("\"done\":true"));
    assert!(all.ends_with("{\"chimera_emulator\":true,\"version\":\"0.0.0-chimera-emulator\"}"));

    let mut s = tokio::net::TcpStream::connect(h.addrs[0])
        .await
        .expect("connect");
    s.write_all(
        b"POST /api/generate HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    .await
    .expect("write");
    let mut all = String::new();
    s.read_to_string(&mut all).await.expect("read");
    assert!(all.starts_with("HTTP/1.1 400 "), "{all}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rule_follows_num_ctx_and_num_gpu() {
    let h = start(
        "models:\n  - {name: m, load_ms: 120, prompt_tok_s: 100000, output_tok_s: 5000, output_tokens: 2}\n",
        1,
    )
    .await;
    let c = reqwest::Client::new();
    let mut load_ms = Vec::new();
    for options in [
        json!({"num_ctx": 2048, "num_gpu": 99}),
        json!({"num_ctx": 2048, "num_gpu": 99, "temperature": 0.1}),
        json!({"num_ctx": 2048}),
        json!({"num_ctx": 4096, "num_gpu": 99}),
        json!({"num_ctx": 4096, "num_gpu": 10}),
    ] {
        let r = generate(
            &c,
            &h,
            0,
            json!({"model": "m", "prompt": "p", "options": options}),
        )
        .await;
        load_ms.push(final_chunk(&r)["load_duration"].as_u64().expect("load") as f64 / 1e6);
    }
    let reloaded: Vec<bool> = h.truth.records().iter().map(|t| t.reloaded).collect();
    assert_eq!(
        reloaded,
        vec![true, false, false, true, true],
        "{load_ms:?}"
    );
    for (i, ms) in load_ms.iter().enumerate() {
        if reloaded[i] {
            assert!((120.0..400.0).contains(ms), "{i}: {ms}");
        } else {
            assert!(*ms < 20.0, "{i}: {ms}");
        }
    }
    h.shutdown().await;
}

const SHARED: &str = "shared_gpu: SHARED
models:
  - {name: m, load_ms: 0, prompt_tok_s: 1000000, output_tok_s: 400, output_tokens: 40}
";

/// Decode times (ms) of one stream alone, then of two concurrent streams on two listeners.
async fn decode_times(shared: bool) -> (f64, f64, f64) {
    let h = start(&SHARED.replace("SHARED", &shared.to_string()), 2).await;
    let c = reqwest::Client::new();
    let body = json!({"model": "m", "prompt": "p"});
    // Warm both listeners.
    generate(&c, &h, 0, body.clone()).await;
    generate(&c, &h, 1, body.clone()).await;
    let eval = |r: &Reply| final_chunk(r)["eval_duration"].as_f64().expect("eval") / 1e6;
    let alone = eval(&generate(&c, &h, 0, body.clone()).await);
    let (a, b) = tokio::join!(
        generate(&c, &h, 0, body.clone()),
        generate(&c, &h, 1, body.clone())
    );
    h.shutdown().await;
    (alone, eval(&a), eval(&b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_gpu_halves_each_stream() {
    let (alone, a, b) = decode_times(true).await;
    assert!((90.0..160.0).contains(&alone), "alone {alone}");
    for x in [a, b] {
        let ratio = x / alone;
        assert!(
            (1.6..2.6).contains(&ratio),
            "shared: {x} / {alone} = {ratio}"
        );
    }
    let (alone, a, b) = decode_times(false).await;
    for x in [a, b] {
        let ratio = x / alone;
        assert!(
            (0.8..1.3).contains(&ratio),
            "not shared: {x} / {alone} = {ratio}"
        );
    }
}

const FAULTS: &str = r#"
models:
  - {name: busy, fault: {kind: status, code: 503, message: "server busy, please try again.  maximum pending requests exceeded"}}
  - {name: bad, fault: {kind: status, code: 400, message: "invalid model name"}}
  - {name: err, output_tok_s: 5000, fault: {kind: error_after, tokens: 3, message: "an error was encountered while running the model: boom"}}
  - {name: cut, output_tok_s: 5000, fault: {kind: truncate_after, tokens: 3}}
  - {name: crash, output_tok_s: 5000, fault: {kind: truncate_after, tokens: 2, abrupt: true}}
  - {name: junk, output_tok_s: 5000, fault: {kind: malformed_after, tokens: 2}}
  - {name: stall, output_tok_s: 5000, output_tokens: 4, fault: {kind: stall_after, tokens: 2, ms: 150}}
  - {name: huge, output_tok_s: 5000, output_tokens: 10, fault: {kind: huge, bytes: 200000}}
  - {name: gone, fault: {kind: refuse_after_accept}}
"#;

fn texts(r: &Reply) -> Vec<Value> {
    r.lines()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|l| l.get("response").is_some_and(|t| t != ""))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_do_what_they_promise() {
    let yaml = FAULTS.replace("fault:", "load_ms: 0, prompt_tok_s: 100000, fault:");
    let h = start(&yaml, 1).await;
    let c = reqwest::Client::new();
    let req = |m: &str| json!({"model": m, "prompt": "hello there"});

    let r = generate(&c, &h, 0, req("busy")).await;
    assert_eq!(r.status, 503);
    assert!(r.content_type.starts_with("application/json"));
    assert_eq!(
        r.json(),
        json!({"error": "server busy, please try again.  maximum pending requests exceeded"})
    );
    let r = generate(&c, &h, 0, req("bad")).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid model name"))
    );

    // error_after: 200, three text chunks, one error line, no done.
    let r = generate(&c, &h, 0, req("err")).await;
    assert_eq!(r.status, 200);
    let lines = r.lines();
    assert_eq!(lines.len(), 4);
    assert_eq!(texts(&r).len(), 3);
    assert_eq!(
        lines[3].as_ref().expect("JSON")["error"],
        "an error was encountered while running the model: boom"
    );
    assert!(lines.iter().flatten().all(|l| l["done"] != true));
    assert!(!r.body_error);
    // Non-streamed: the error is a status code.
    let r = generate(
        &c,
        &h,
        0,
        json!({"model": "err", "prompt": "x", "stream": false}),
    )
    .await;
    assert_eq!(r.status, 500);

    // truncate_after: clean end of body, no done.
    let r = generate(&c, &h, 0, req("cut")).await;
    assert_eq!((r.status, texts(&r).len(), r.lines().len()), (200, 3, 3));
    assert!(!r.body_error);
    // abrupt: the connection drops mid-body.
    let r = generate(&c, &h, 0, req("crash")).await;
    assert_eq!((r.status, texts(&r).len()), (200, 2));
    assert!(r.body_error);

    // malformed_after: two good lines, then one that is not JSON.
    let r = generate(&c, &h, 0, req("junk")).await;
    let lines = r.lines();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].is_ok() && lines[1].is_ok() && lines[2].is_err());

    // stall_after: a 150 ms hole after the second chunk, in the truth and on the wire.
    let r = generate(&c, &h, 0, req("stall")).await;
    assert_eq!(texts(&r).len(), 4);
    assert_eq!(final_chunk(&r)["eval_count"], 4);
    let stall = h
        .truth
        .records()
        .into_iter()
        .find(|t| t.model == "stall")
        .expect("stall record");
    let o = &stall.chunk_offsets_us;
    assert_eq!(o.len(), 4);
    assert!(o[2] - o[1] >= 150_000, "{o:?}");
    assert!(o[1] - o[0] < 100_000 && o[3] - o[2] < 100_000, "{o:?}");
    let biggest_gap = r
        .arrivals
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .expect("gaps");
    assert!(biggest_gap >= Duration::from_millis(140), "{biggest_gap:?}");

    // huge: the text adds up to at least the size asked for.
    let r = generate(&c, &h, 0, req("huge")).await;
    let size: usize = texts(&r)
        .iter()
        .map(|l| l["response"].as_str().map_or(0, str::len))
        .sum();
    assert!(size >= 200_000, "{size}");
    assert_eq!(final_chunk(&r)["eval_count"], 10);

    // refuse_after_accept: the connection closes without a response.
    let sent = c
        .post(url(&h, 0, "/api/generate"))
        .body(req("gone").to_string())
        .send()
        .await;
    assert!(sent.is_err(), "{sent:?}");

    let faults: Vec<(String, Option<String>, u16)> = h
        .truth
        .records()
        .into_iter()
        .map(|t| (t.model, t.fault, t.status))
        .collect();
    assert!(faults.contains(&("gone".into(), Some("refuse_after_accept".into()), 0)));
    assert!(faults.contains(&("busy".into(), Some("status".into()), 503)));
    assert!(faults.contains(&("err".into(), Some("error_after".into()), 200)));
    h.shutdown().await;
}

/// `fault_rate`: about that fraction of a model's requests fail, and which ones is a
/// function of the seed (two emulators with the same seed fail the same requests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_rate_fails_a_seeded_fraction_of_requests() {
    let yaml = "seed: 11\nmodels:\n  - {name: m, load_ms: 0, prompt_tok_s: 1000000, output_tok_s: 100000, output_tokens: 1, fault: {kind: status, code: 503, message: busy}, fault_rate: 0.25}\n  - {name: ok, load_ms: 0, output_tok_s: 100000, output_tokens: 1}\n";
    let runs = on_two_emulators(yaml, 2, |h| async move {
        let c = reqwest::Client::new();
        let mut failed = Vec::new();
        for i in 0..200 {
            let body = json!({"model": "m", "prompt": "p", "stream": false});
            failed.push(generate(&c, &h, i % 2, body).await.status == 503);
            // Requests for another model neither fault nor shift the draws of `m`.
            let ok = generate(
                &c,
                &h,
                0,
                json!({"model": "ok", "prompt": "p", "stream": false}),
            );
            assert_eq!(ok.await.status, 200);
        }
        (h, failed)
    })
    .await;
    assert_eq!(runs[0], runs[1], "same seed, same requests fail");
    let n = runs[0].iter().filter(|f| **f).count();
    // Binomial(200, 0.25): mean 50, sd 6.1.
    assert!((25..=75).contains(&n), "{n} of 200 failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_is_seeded_and_truth_streams_to_a_writer() {
    let yaml = "seed: 7\nmodels:\n  - {name: j, load_ms: 0, output_tok_s: 2000, output_tokens: 6, jitter_pct: 50}\n";
    let texts_seen = on_two_emulators(yaml, 1, |h| async move {
        let body = json!({"model": "j", "prompt": "same", "stream": false});
        let r = generate(&reqwest::Client::new(), &h, 0, body).await;
        (h, r.json()["response"].clone())
    })
    .await;
    assert_eq!(texts_seen[0], texts_seen[1]);

    let c = reqwest::Client::new();
    let h = start(yaml, 1).await;
    let file = tempfile::NamedTempFile::new().expect("temp");
    h.truth.stream_to(Box::new(file.reopen().expect("reopen")));
    generate(&c, &h, 0, json!({"model": "j", "prompt": "a"})).await;
    generate(&c, &h, 0, json!({"model": "j", "prompt": "b"})).await;
    h.shutdown().await;
    let text = std::fs::read_to_string(file.path()).expect("read");
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1]["prompt"], "b");
    assert_eq!(
        recs[1]["chunk_offsets_us"].as_array().map(Vec::len),
        Some(6)
    );
}

/// The binary: addresses on stdout, the warning on stderr, exit 130 on SIGTERM.
#[cfg(unix)]
#[test]
fn cli_prints_addresses_and_exits_130_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let truth = dir.path().join("truth.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chimera"))
        .args(["emulate", "--listen", LOCAL, "--listen", LOCAL, "--truth"])
        .arg(&truth)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("CHIMERA_LOG")
        .spawn()
        .expect("spawn chimera emulate");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).expect("read address");
        addrs.push(
            line.trim()
                .parse::<SocketAddr>()
                .expect("an address per line"),
        );
    }
    let mut s = std::net::TcpStream::connect(addrs[1]).expect("connect");
    let body =
        r#"{"model":"gemma3:270m","prompt":"hi","stream":false,"options":{"num_predict":1}}"#;
    write!(
        s,
        "POST /api/generate HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read");
    assert!(
        reply.starts_with("HTTP/1.1 200 OK") && reply.contains("\"done\":true"),
        "{reply}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(err.contains("not an LLM"), "{err}");
    let lines = std::fs::read_to_string(&truth).expect("truth file");
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains(&format!("\"listener\":\"{}\"", addrs[1])));
}
