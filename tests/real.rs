//! The real-inference tier: a real `llama-server` (llama.cpp, CPU) serving Gemma 3 270M Q4_K_M.
//!
//! `scripts/install-llama-server.sh --env` prints the two variables these tests need
//! (`CHIMERA_LLAMA_SERVER`, `CHIMERA_GEMMA3_270M`); `.ci/run` installs both and sets
//! `CHIMERA_REQUIRE_REAL_TESTS=1`, which turns a skip into a failure. Without them the tests say
//! why they skip and pass.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chimera::backend::LlmRequest;
use chimera::manifest::{Api, Options};

#[allow(dead_code)]
mod support;

use support::{Manifest, homo_config, write_file};

const BIN: &str = env!("CARGO_BIN_EXE_chimera");

/// The server binary and model, or `None` (with a message) when they are not installed.
fn installed() -> Option<(PathBuf, PathBuf)> {
    let get = |k: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .filter(|p| p.is_file())
    };
    match (get("CHIMERA_LLAMA_SERVER"), get("CHIMERA_GEMMA3_270M")) {
        (Some(s), Some(m)) => Some((s, m)),
        _ => {
            let msg = "skipped: the real-inference tier needs CHIMERA_LLAMA_SERVER and \
                       CHIMERA_GEMMA3_270M (eval \"$(scripts/install-llama-server.sh --env)\")";
            assert!(
                std::env::var("CHIMERA_REQUIRE_REAL_TESTS").as_deref() != Ok("1"),
                "{msg}, and CHIMERA_REQUIRE_REAL_TESTS=1 requires it"
            );
            eprintln!("{msg}");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A llama-server child process, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(server: &Path, model: &Path, log: &Path) -> Server {
        let port = free_port();
        let log = std::fs::File::create(log).expect("log file");
        let child = Command::new(server)
            .args(["-m", &model.display().to_string()])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--threads", "1", "--ctx-size", "2048", "--parallel", "1"])
            .args(["--alias", "gemma3:270m"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start llama-server");
        let s = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(120) {
            if health(&s.url) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("llama-server at {} did not become healthy in 120 s", s.url);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET /health answered 200 (a raw HTTP/1.0 request: no client needed).
fn health(url: &str) -> bool {
    use std::io::Read as _;
    let addr = url.trim_start_matches("http://");
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

fn request(prompt: &str, n: i64) -> LlmRequest {
    LlmRequest {
        api: Api::Generate,
        model: "gemma3:270m".into(),
        prompt: prompt.into(),
        stream: true,
        options: Options {
            num_predict: Some(n),
            temperature: Some(0.7),
            seed: Some(7),
            ..Options::default()
        },
        keep_alive: None,
        timeout: Duration::from_secs(120),
        max_response_bytes: 1 << 20,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_llama_server_streams_real_tokens_with_its_own_timings() {
    let Some((server, model)) = installed() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&server, &model, &dir.path().join("server.log"));
    let client = chimera::backend::OpenAiClient::new(&s.url).expect("client");
    for (prompt, n) in [
        ("Write one sentence about GPUs.", 24),
        ("List three benchmark metrics and explain each briefly.", 48),
    ] {
        let r = client.send(&request(prompt, n)).await;
        assert!(r.error.is_none(), "{:?}", r.error);
        let ttft = r.ttft_ms.expect("a first token");
        assert!(
            ttft > 0.0 && ttft <= r.e2e_ms,
            "ttft {ttft} e2e {}",
            r.e2e_ms
        );
        let tokens = r.output_tokens.expect("usage.completion_tokens");
        assert!(
            tokens >= 1 && tokens <= n as u64,
            "{tokens} tokens for num_predict {n}"
        );
        // The server's own count equals what was streamed: one text chunk per token.
        let streamed = r.itl_ms.len() as u64 + 1;
        assert_eq!(tokens, streamed, "server count vs streamed text chunks");
        assert!(
            r.prompt_tokens.is_some_and(|p| p > 3),
            "{:?}",
            r.prompt_tokens
        );
        let eval = r.eval_ms.expect("timings.predicted_ms");
        let prompt_ms = r.prompt_eval_ms.expect("timings.prompt_ms");
        assert!(
            eval > 0.0 && prompt_ms > 0.0,
            "eval {eval} prompt {prompt_ms}"
        );
        assert!(
            eval <= r.e2e_ms,
            "server decode time within the client's end to end"
        );
        // A one-token reply has no decode time to speak of (its token comes out of the prompt
        // pass); the seeded prompts here give longer replies, but do not depend on it.
        if tokens > 1 {
            let tok_s = tokens as f64 / (eval / 1000.0);
            assert!(
                (1.0..5000.0).contains(&tok_s),
                "implausible decode speed {tok_s} tok/s"
            );
        }
        assert_eq!(r.timing_source.as_deref(), Some("llama-server timings"));
        assert!(!r.text.trim().is_empty(), "real text");
    }
}

/// A report-call prompt after which Gemma 3 270M often stops at once.
const REPORT_PROMPT: &str = "Generate a comprehensive technical report in the style of Technical Report 108.\n\nAnalysis Results:\n- Summary: Data shows stable latency.\n- Key Findings:\n- none\n- Performance Metrics: n/a\n- Recommendations:\n- none\n\nCreate a professional technical report with the following structure:\n1. Executive Summary\n2. Data Ingestion Summary\n\nUse markdown formatting and include specific metrics and data points.";

/// A forced output length (a workload's `force_output_tokens`: `max_tokens`, `ignore_eos`,
/// `min_tokens`) is honoured by the real server: exactly N tokens, streamed or not, on both
/// routes, even where a smaller `num_predict` was asked and the model would stop earlier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_llama_server_generates_exactly_the_forced_length() {
    let Some((server, model)) = installed() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&server, &model, &dir.path().join("server.log"));
    let client = chimera::backend::OpenAiClient::new(&s.url).expect("client");
    for (api, stream, n) in [
        (Api::Generate, true, 40u32),
        (Api::Chat, true, 17),
        (Api::Chat, false, 33),
    ] {
        // With this prompt and seed the model ends its reply after one token when not forced
        // (with the llama-server scripts/install-llama-server.sh builds, /v1/completions); the
        // forced reply must still have n.
        let mut req = request(REPORT_PROMPT, 4);
        req.api = api;
        req.stream = stream;
        req.options.temperature = Some(0.8);
        req.options.seed = Some(1);
        let natural = client.send(&req).await;
        eprintln!(
            "{api:?} stream {stream}: {:?} tokens unforced (num_predict 4)",
            natural.output_tokens
        );
        let r = client.send_forced(&req, Some(n)).await;
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(
            r.output_tokens,
            Some(u64::from(n)),
            "{api:?} stream {stream}: usage.completion_tokens"
        );
        assert_eq!(r.done_reason.as_deref(), Some("length"));
        if stream {
            let text_chunks = r.itl_ms.len() as u64 + 1;
            assert!(
                text_chunks <= u64::from(n),
                "{text_chunks} text chunks for {n} tokens"
            );
        }
    }
}

/// A small real campaign (two unmanaged llama-servers started here), killed with SIGKILL after
/// its first commits and resumed: every cell ends committed exactly once, the cells committed
/// before the kill are untouched, and the analysis finds real token counts.
#[test]
fn real_campaign_killed_and_resumed_loses_nothing() {
    let Some((server, model)) = installed() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Server::start(&server, &model, &dir.path().join("a.log"));
    let b = Server::start(&server, &model, &dir.path().join("b.log"));
    let manifest = write_file(dir.path(), "real.yaml", &real_manifest(&a.url, &b.url));
    let data = dir.path().join("data");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            "run".to_owned(),
            manifest.display().to_string(),
            "--data".into(),
            data.display().to_string(),
            "--campaign".into(),
            "real".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cells = data.join("real/cells");
    let committed = || -> Vec<String> {
        std::fs::read_dir(&cells)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut child = Command::new(BIN)
        .args(args(&[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chimera run");
    let t0 = Instant::now();
    while committed().len() < 3 && t0.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before: Vec<(String, Vec<u8>)> = committed()
        .into_iter()
        .map(|id| {
            let m = std::fs::read(cells.join(&id).join("MANIFEST.json")).expect("manifest");
            (id, m)
        })
        .collect();
    assert!(before.len() >= 3, "three cells committed before the kill");

    let out = Command::new(BIN).args(args(&[])).output().expect("resume");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (id, m) in &before {
        let now = std::fs::read(cells.join(id).join("MANIFEST.json")).expect("still there");
        assert_eq!(&now, m, "cell {id} committed before the kill is untouched");
    }
    let status = Command::new(BIN)
        .args([
            "status",
            "--data",
            &data.display().to_string(),
            "--campaign",
            "real",
            "--verify",
        ])
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{text}");
    // Each cell committed once in the journal.
    let journal = std::fs::read_to_string(data.join("real/journal.jsonl")).expect("journal");
    let mut ids: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("\"event\":\"cell_committed\""))
        .filter_map(|l| l.split("\"cell\":\"").nth(1)?.split('"').next())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no cell committed twice");
    // Every journaled commit is on disk. A cell is on disk before its journal line is written,
    // so a cell whose commit the SIGKILL interrupted between the two is committed without a
    // line: at most one per server (two here) that could be committing at that instant.
    let on_disk = committed();
    for id in &ids {
        assert!(
            on_disk.iter().any(|c| c == id),
            "journaled cell {id} is on disk"
        );
    }
    assert!(
        on_disk.len() >= n && on_disk.len() <= n + 2,
        "{} cells on disk, {n} commits journaled",
        on_disk.len()
    );

    let out = chimera::analysis::analyze(&data, Some("real"), None).expect("analyze");
    let r = &out[0].1.reports[0];
    assert_eq!(r.counts.runs_ok, 2, "{:?}", r.counts);
    assert!(matches!(
        &out[0].1.origin,
        chimera::analysis::model::Origin::Measured { server_kinds } if server_kinds == &["openai".to_owned()]
    ));
    let tput = r
        .summaries
        .iter()
        .find(|s| s.grouping == "report" && s.metric == "throughput_tok_s")
        .expect("throughput");
    // 2 runs × 2 agents × 2 calls. A one-token reply (the 270M model sometimes stops at once)
    // has no decode rate, so fewer requests than that may carry a throughput.
    assert_eq!(r.counts.requests, 8, "{:?}", r.counts);
    assert_eq!(r.counts.requests_failed, 0, "{:?}", r.counts);
    assert!(
        tput.stats.n >= 1 && tput.stats.mean.is_some_and(|m| m > 1.0),
        "{tput:?}"
    );
    assert!(
        r.configs[0].true_efficiency.is_some(),
        "isolated baselines measured"
    );
}

fn real_manifest(a: &str, b: &str) -> String {
    Manifest::new("TR114_real", "real llama-server kill and resume")
        .endpoint_at("a", "openai", a, "local:cpu")
        .endpoint_at("b", "openai", b, "local:cpu")
        .model("gemma3_270m", "gemma3:270m")
        .workflow(
            "workflow",
            1,
            "Summarise these benchmark files in two sentences.\\n{data_summary}",
            "Write a two-line report.\\n{summary}\\n{key_findings}\\n{performance_metrics}\\n{recommendations}",
        )
        .homo("chimera_homo", "chimera_homo", "a", "b")
        .repetitions(2)
        .setting("telemetry: {source: none}")
        .configurations(
            "workflow",
            "gemma3_270m",
            &[homo_config("real01", "num_predict: 16, temperature: 0.7")],
        )
        .yaml()
}

/// The reference agents of command workloads (agents/rust, agents/python) on real inference:
/// one single-agent workflow cell each, against one llama-server. Both must succeed, send
/// the same prompts (equal prompt token counts), read llama-server's own timings, and have
/// their process measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_reference_agents_run_one_cell_each() {
    let Some((server, model)) = installed() else {
        return;
    };
    let Some(python) = support::python_agent() else {
        return;
    };
    let rust = support::rust_agent();
    let script = support::root().join("agents/python/chimera_agent.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&server, &model, &dir.path().join("s.log"));
    let text = Manifest::new("TR116_real", "real reference agents")
        .endpoint_at("a", "openai", &s.url, "local:cpu")
        .model("gemma3_270m", "gemma3:270m")
        .workload(&format!(
            "id: workflow\n  harness: H6v2\n  command:\n    argv: [\"{}\", --job, \"{{job}}\"]\n    by_language:\n      python: [\"{}\", \"{}\", --job, \"{{job}}\"]\n  task:\n    kind: agent_workflow\n    corpus: {{kind: generated, csv: 1, json: 1, md: 1, seed: 1}}\n    expected_files: 3\n    analysis_template: \"Summarise these benchmark files in two sentences.\\n{{data_summary}}\"\n    report_template: \"Write a two-line report.\\n{{summary}}\\n{{recommendations}}\"",
            rust.display(),
            python.display(),
            script.display()
        ))
        .single("a")
        .setting("telemetry: {source: none}")
        .block(
            "name: languages\n  workload: workflow\n  scenario: single\n  model: gemma3_270m\n  apply_to: [client]\n  options: {num_predict: 12, temperature: 0.7}\n  axes:\n    language: [rust, python]\n  id_template: \"{language}\"",
        )
        .yaml();
    let data = dir.path().join("data");
    let summary = support::try_campaign(dir.path(), "agents", &text, |o| {
        o.data = data.clone();
    })
    .await
    .expect("campaign");
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let out = chimera::analysis::analyze(&data, Some("agents"), None).expect("analyze");
    let r = &out[0].1.reports[0];
    assert_eq!(
        r.counts.requests, 4,
        "2 cells × analysis + report: {:?}",
        r.counts
    );
    assert_eq!(r.counts.requests_failed, 0, "{:?}", r.counts);
    // Per language: the analysis call's prompt tokens (the same prompt), server timings, process.
    let campaign = data.join("agents");
    let mut analysis_prompt_tokens = Vec::new();
    for entry in std::fs::read_dir(campaign.join("cells")).expect("cells") {
        let cell = entry.expect("entry").path();
        if !cell.join("MANIFEST.json").exists() {
            continue;
        }
        for b in chimera::table::read_parquet(&cell.join("requests.parquet")).expect("requests") {
            use chimera::table::Row as _;
            for q in chimera::table::RequestsRow::from_batch(&b).expect("rows") {
                if q.warmup {
                    continue;
                }
                assert!(q.output_tokens.is_some_and(|t| t > 0), "{q:?}");
                assert!(
                    q.eval_ms.is_some_and(|t| t > 0.0),
                    "llama-server timings: {q:?}"
                );
                if q.stage == chimera::workload::Stage::Analysis {
                    analysis_prompt_tokens.push(q.prompt_tokens);
                }
            }
        }
        for b in chimera::table::read_parquet(&cell.join("agents.parquet")).expect("agents") {
            use chimera::table::Row as _;
            for a in chimera::table::AgentsRow::from_batch(&b).expect("rows") {
                if a.agent == "warmup" {
                    continue;
                }
                assert_eq!(a.process.process_exit_code, Some(0), "{a:?}");
                assert!(
                    a.process.process_peak_rss_mib.is_some_and(|m| m > 0.5),
                    "{a:?}"
                );
                assert!(a.process.process_user_cpu_ms.is_some(), "{a:?}");
            }
        }
    }
    assert_eq!(
        analysis_prompt_tokens.len(),
        2,
        "one analysis call per language"
    );
    assert_eq!(
        analysis_prompt_tokens[0], analysis_prompt_tokens[1],
        "Rust and Python send the same analysis prompt"
    );
}
