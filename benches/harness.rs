//! `make bench-harness`: how accurately and how cheaply the client measures a streamed
//! response, against the emulator's ground truth, next to the `ollama` Python client.
//!
//! The emulator runs as its own process (`chimera emulate --truth FILE`), so the CPU time this
//! process spends is the client's alone. For 2 and 64 concurrent streams of 200 tokens at
//! 200 tokens/s each, both clients stream the same load; every request's TTFT and
//! inter-chunk gaps are compared with the emulator's recorded send times (request received →
//! chunk written), matched by prompt. Printed: p50/p99 of |error| and CPU µs per token.
//!
//! First, `command` workloads: chimera's own cost of running an agent program — per start
//! (the same tiny program spawned and waited for bare, and run the way the runner runs it:
//! process group, RSS polling, CPU read at exit, records read back) and per record (a program
//! copying a prepared file of 1 or 200,000 records).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chimera::backend::LlmRequest;
use chimera::backend::OllamaClient;
use chimera::manifest::{Api, Options};
use chimera::stats::percentile;

const TOKENS: u32 = 200;
const RATE: f64 = 200.0;
/// Rounds per load: enough tokens that the CPU clock (10 ms ticks) resolves the cost.
fn rounds(streams: usize) -> usize {
    if streams <= 2 { 20 } else { 3 }
}

struct Measured {
    prompt: String,
    ttft_ms: Option<f64>,
    gaps_ms: Vec<f64>,
    tokens: u64,
}

struct Truth {
    first_ms: f64,
    gaps_ms: Vec<f64>,
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) of this process, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat are utime and stime; `after` starts at field 3.
    (ticks(11) + ticks(12)) / clk_tck()
}

fn start_emulator(dir: &std::path::Path) -> (Child, String) {
    let profile = dir.join("bench-profile.yaml");
    std::fs::write(
        &profile,
        format!(
            "seed: 1\nshared_gpu: false\nmodels:\n  - name: bench\n    load_ms: 1\n    prompt_tok_s: 1000000\n    output_tok_s: {RATE}\n    output_tokens: {TOKENS}\n"
        ),
    )
    .expect("write profile");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chimera"))
        .args(["emulate", "--listen", "127.0.0.1:0", "--profile"])
        .arg(&profile)
        .arg("--truth")
        .arg(dir.join("truth.jsonl"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chimera emulate");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read emulator address");
    (child, format!("http://{}", line.trim()))
}

fn rust_load(url: &str, streams: usize) -> (Vec<Measured>, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = std::sync::Arc::new(OllamaClient::new(url).expect("client"));
        let _ = client.version().await;
        let c0 = cpu_seconds();
        let mut out = Vec::new();
        for round in 0..rounds(streams) {
            let mut handles = Vec::new();
            for i in 0..streams {
                let client = client.clone();
                let prompt = format!("bench chimera {streams} round {round} stream {i}");
                handles.push(tokio::spawn(async move {
                    let req = LlmRequest {
                        api: Api::Generate,
                        model: "bench".into(),
                        prompt: prompt.clone(),
                        stream: true,
                        options: Options::default(),
                        keep_alive: None,
                        timeout: Duration::from_secs(60),
                        max_response_bytes: 1 << 24,
                    };
                    let r = client.send(&req).await;
                    Measured {
                        prompt,
                        ttft_ms: r.ttft_ms,
                        gaps_ms: r.itl_ms,
                        tokens: r.output_tokens.unwrap_or(0),
                    }
                }));
            }
            for h in handles {
                out.push(h.await.expect("task"));
            }
        }
        (out, cpu_seconds() - c0)
    })
}

fn python_load(url: &str, streams: usize) -> Option<(Vec<Measured>, f64)> {
    // The reference Python agent's environment (`make agents`: the pinned `ollama` client)
    // when it exists, else the system's python3.
    let venv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/agents/python/.venv/bin/python"
    );
    let python = if std::path::Path::new(venv).exists() {
        venv
    } else {
        "python3"
    };
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/bench_peer.py"
        ))
        .args([
            "--url",
            url,
            "--model",
            "bench",
            "--streams",
            &streams.to_string(),
        ])
        .args([
            "--rounds",
            &rounds(streams).to_string(),
            "--prefix",
            &format!("bench python {streams}"),
        ])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    if let Some(e) = v.get("error") {
        eprintln!("python peer: {e}");
        return None;
    }
    let reqs = v["requests"].as_array()?;
    let m = reqs
        .iter()
        .map(|r| Measured {
            prompt: r["prompt"].as_str().unwrap_or("").to_owned(),
            ttft_ms: r["ttft_ms"].as_f64(),
            gaps_ms: r["gaps_ms"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default(),
            tokens: r["output_tokens"].as_u64().unwrap_or(0),
        })
        .collect();
    Some((m, v["cpu_s"].as_f64().unwrap_or(f64::NAN)))
}

fn read_truth(path: &std::path::Path) -> HashMap<String, Truth> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut map = HashMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let offs: Vec<f64> = v["chunk_offsets_us"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_f64())
                    .map(|us| us / 1000.0)
                    .collect()
            })
            .unwrap_or_default();
        let Some(first) = v["first_chunk_offset_us"].as_f64() else {
            continue;
        };
        let gaps = offs.windows(2).map(|w| w[1] - w[0]).collect();
        map.insert(
            v["prompt"].as_str().unwrap_or("").to_owned(),
            Truth {
                first_ms: first / 1000.0,
                gaps_ms: gaps,
            },
        );
    }
    map
}

struct Row {
    ttft_p50: f64,
    ttft_p99: f64,
    itl_p50: f64,
    itl_p99: f64,
    cpu_us_per_token: f64,
    requests: usize,
    tokens: u64,
}

fn score(measured: &[Measured], cpu_s: f64, truth: &HashMap<String, Truth>) -> Row {
    let mut ttft_err = Vec::new();
    let mut itl_err = Vec::new();
    let mut tokens = 0;
    for m in measured {
        tokens += m.tokens;
        let Some(t) = truth.get(&m.prompt) else {
            continue;
        };
        if let Some(c) = m.ttft_ms {
            ttft_err.push((c - t.first_ms).abs());
        }
        for (c, g) in m.gaps_ms.iter().zip(&t.gaps_ms) {
            itl_err.push((c - g).abs());
        }
    }
    Row {
        ttft_p50: percentile(&ttft_err, 50.0).unwrap_or(f64::NAN),
        ttft_p99: percentile(&ttft_err, 99.0).unwrap_or(f64::NAN),
        itl_p50: percentile(&itl_err, 50.0).unwrap_or(f64::NAN),
        itl_p99: percentile(&itl_err, 99.0).unwrap_or(f64::NAN),
        cpu_us_per_token: cpu_s * 1e6 / tokens.max(1) as f64,
        requests: ttft_err.len(),
        tokens,
    }
}

/// chimera's overhead per agent-program start and per record (`command` workloads): the same
/// tiny program run bare (spawn + wait) and the way the runner runs it, and a program that
/// copies a prepared file of N records, for two values of N.
fn command_overhead() {
    const STARTS: usize = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let record = r#"{"stage":"single","sent_at_unix_ms":1700000000000.5,"ttft_ms":12.25,"e2e_ms":250.5,"chunks":40,"prompt_tokens":30,"output_tokens":40,"load_ms":1.5,"prompt_eval_ms":3.5,"eval_ms":200.25,"total_ms":205.0,"done_reason":"stop"}"#;
    // `sh -c` writes one record; both sides run exactly the same program.
    let script =
        r#"echo '{"stage":"single","sent_at_unix_ms":1,"e2e_ms":2}' >> "$CHIMERA_RECORDS""#;
    let argv = vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
    let records = d.join("records.jsonl");
    let mut bare = Vec::new();
    let mut chimera = Vec::new();
    for i in 0..STARTS {
        // Alternate, so that both see the same machine state.
        if i % 2 == 0 {
            let t0 = std::time::Instant::now();
            let st = Command::new("sh")
                .args(["-c", script])
                .env("CHIMERA_RECORDS", &records)
                .current_dir(d)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .expect("bare run");
            bare.push(t0.elapsed().as_secs_f64() * 1000.0);
            assert!(st.status.success());
            let _ = std::fs::remove_file(&records);
        } else {
            let r = chimera::fuzzing::agent_program(d, argv.clone());
            assert_eq!(r.failure, None);
            assert_eq!(r.records, 1);
            chimera.push(r.wall.as_secs_f64() * 1000.0);
        }
    }
    let p = |xs: &[f64], q| percentile(xs, q).unwrap_or(f64::NAN);
    let start_p50 = p(&chimera, 50.0) - p(&bare, 50.0);
    println!(
        "agent start: bare spawn+wait p50 {:.2} ms, chimera's run p50 {:.2} ms p99 {:.2} ms: added p50 {:.2} ms per start (target < 5 ms)",
        p(&bare, 50.0),
        p(&chimera, 50.0),
        p(&chimera, 99.0),
        start_p50
    );
    // Per record: a program that appends a prepared file of N records; the difference between
    // two N is the cost of reading, parsing and validating the extra records.
    let mut per_n = Vec::new();
    for n in [1usize, 200_000] {
        let src = d.join(format!("src-{n}.jsonl"));
        let mut text = String::with_capacity(n * (record.len() + 1));
        for _ in 0..n {
            text.push_str(record);
            text.push('\n');
        }
        std::fs::write(&src, text).expect("records");
        let argv = vec![
            "cp".to_owned(),
            src.display().to_string(),
            records.display().to_string(),
        ];
        let mut walls = Vec::new();
        for _ in 0..5 {
            let r = chimera::fuzzing::agent_program(d, argv.clone());
            assert_eq!(r.failure, None);
            assert_eq!(r.records, n);
            walls.push(r.wall.as_secs_f64() * 1000.0);
        }
        per_n.push((n, p(&walls, 50.0)));
    }
    let ((n1, w1), (n2, w2)) = (per_n[0], per_n[1]);
    println!(
        "agent records: {n1} record {w1:.2} ms, {n2} records {w2:.2} ms: {:.2} µs per record read, parsed and validated (target < 20 µs)",
        (w2 - w1) * 1000.0 / (n2 - n1) as f64
    );
}

fn main() {
    command_overhead();
    println!();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut emu, url) = start_emulator(dir.path());
    println!(
        "emulator (test instrument, not an LLM) at {url}: {TOKENS} tokens per request at {RATE} tok/s per stream; {} rounds of 2 streams, {} of 64",
        rounds(2),
        rounds(64)
    );
    println!();
    println!(
        "{:>7}  {:<8} {:>8} {:>8} {:>13} {:>13} {:>12} {:>12} {:>13}",
        "streams",
        "client",
        "requests",
        "tokens",
        "TTFT err p50",
        "TTFT err p99",
        "ITL err p50",
        "ITL err p99",
        "CPU µs/token"
    );
    let mut results = Vec::new();
    for streams in [2usize, 64] {
        let (rust, rust_cpu) = rust_load(&url, streams);
        let py = python_load(&url, streams);
        std::thread::sleep(Duration::from_millis(300));
        let truth = read_truth(&dir.path().join("truth.jsonl"));
        let r = score(&rust, rust_cpu, &truth);
        let p = py.map(|(m, cpu)| score(&m, cpu, &truth));
        for (name, row) in [("chimera", Some(&r)), ("python", p.as_ref())] {
            match row {
                Some(x) => println!(
                    "{streams:>7}  {name:<8} {:>8} {:>8} {:>10.3} ms {:>10.3} ms {:>9.3} ms {:>9.3} ms {:>13.1}",
                    x.requests,
                    x.tokens,
                    x.ttft_p50,
                    x.ttft_p99,
                    x.itl_p50,
                    x.itl_p99,
                    x.cpu_us_per_token
                ),
                None => println!(
                    "{streams:>7}  {name:<8} (not run: install the `ollama` Python package)"
                ),
            }
        }
        results.push((streams, r, p));
    }
    println!();
    for (streams, r, p) in &results {
        let limit = if *streams <= 2 { 1.0 } else { 5.0 };
        let verdict = if r.ttft_p99 <= limit && r.itl_p99 <= limit {
            "within"
        } else {
            "OUTSIDE"
        };
        println!("{streams} streams: chimera p99 errors {verdict} the {limit} ms target");
        if let Some(p) = p {
            println!(
                "{streams} streams: python/chimera  CPU per token ×{:.2}, p99 TTFT error ×{:.2}, p99 ITL error ×{:.2}",
                p.cpu_us_per_token / r.cpu_us_per_token,
                p.ttft_p99 / r.ttft_p99,
                p.itl_p99 / r.itl_p99
            );
        }
    }
    let _ = emu.kill();
    let _ = emu.wait();
}
