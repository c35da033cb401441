//! End to end: the built `chimera-agent` against a tiny in-test HTTP server (a
//! `std::net::TcpListener` on 127.0.0.1:0 answering in a thread), on every runtime, checking
//! the record lines, the exit statuses and the printed prompts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use chimera::manifest::{Corpus, Options, Role, Task};
use chimera::workload::protocol::{AgentRecord, RecordStage, parse_record};
use chimera::workload::{AgentWorkflow, IngestResult};
use serde_json::{Value, json};

const ANALYSIS_TEMPLATE: &str = "Analyse at temp {temperature}:\n{data_summary}\nend";
const REPORT_TEMPLATE: &str = "- Summary: {summary}\n- Recommendations:\n{recommendations}";
const RUNTIMES: [&str; 6] = [
    "tokio-default",
    "tokio-current-thread",
    "tokio-localset",
    "smol",
    "async-std",
    "smol-1kb",
];

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Value,
}

impl Seen {
    fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or_default()
    }

    fn prompt(&self) -> String {
        self.body
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

type Handler = fn(&Seen, &mut TcpStream) -> std::io::Result<()>;

/// A server answering every connection with `handler`, recording what it was sent.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    if let Some(req) = read_request(&mut conn) {
                        log.lock().expect("lock").push(req.clone());
                        let _ = handler(&req, &mut conn);
                    }
                });
            }
        });
        Server { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn read_request(conn: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut byte).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut byte).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
    Some(Seen { head, body })
}

/// Writes a chunked 200 head, then each piece as its own chunk a few ms apart, then the end.
fn chunked(conn: &mut TcpStream, content_type: &str, pieces: &[String]) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )?;
    conn.flush()?;
    for p in pieces {
        thread::sleep(Duration::from_millis(3));
        write!(conn, "{:x}\r\n{p}\r\n", p.len())?;
        conn.flush()?;
    }
    write!(conn, "0\r\n\r\n")?;
    conn.flush()
}

const ANALYSIS_REPLY: [&str; 4] = [
    "Executive Summary\n",
    "The runs are fast.\n",
    "## Recommendations\n",
    "- Keep the cache warm.\n",
];

/// Ollama `/api/generate`, streamed: four text chunks and a final one with the numbers.
fn ollama_stream(req: &Seen, conn: &mut TcpStream) -> std::io::Result<()> {
    assert_eq!(req.path(), "/api/generate");
    let mut pieces: Vec<String> = ANALYSIS_REPLY
        .iter()
        .map(|t| format!("{}\n", json!({"model": "m", "response": t, "done": false})))
        .collect();
    pieces.push(format!(
        "{}\n",
        json!({"model": "m", "response": "", "done": true, "done_reason": "stop",
               "total_duration": 90_000_000u64, "load_duration": 1_000_000u64,
               "prompt_eval_count": 11, "prompt_eval_duration": 5_000_000u64,
               "eval_count": 4, "eval_duration": 40_000_000u64})
    ));
    chunked(conn, "application/x-ndjson", &pieces)
}

/// OpenAI `/v1/completions`, streamed as SSE with usage and llama-server timings.
fn openai_stream(req: &Seen, conn: &mut TcpStream) -> std::io::Result<()> {
    assert_eq!(req.path(), "/v1/completions");
    let mut pieces: Vec<String> = ANALYSIS_REPLY
        .iter()
        .map(|t| {
            format!(
                "data: {}\n\n",
                json!({"choices": [{"text": t, "index": 0, "finish_reason": null}]})
            )
        })
        .collect();
    pieces.push(format!(
        "data: {}\n\n",
        json!({"choices": [{"text": "", "index": 0, "finish_reason": "stop"}]})
    ));
    pieces.push(format!(
        "data: {}\n\n",
        json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 4},
               "timings": {"prompt_n": 7, "prompt_ms": 2.5, "predicted_n": 4, "predicted_ms": 12.0}})
    ));
    pieces.push("data: [DONE]\n\n".to_owned());
    chunked(conn, "text/event-stream", &pieces)
}

fn not_found(_: &Seen, conn: &mut TcpStream) -> std::io::Result<()> {
    let body = r#"{"error":"model 'm' not found"}"#;
    write!(
        conn,
        "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn stalls(_: &Seen, conn: &mut TcpStream) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    )?;
    let line = "{\"response\":\"a\",\"done\":false}\n";
    write!(conn, "{:x}\r\n{line}\r\n", line.len())?;
    conn.flush()?;
    thread::sleep(Duration::from_secs(3));
    Ok(())
}

fn cut_short(_: &Seen, conn: &mut TcpStream) -> std::io::Result<()> {
    let line = "{\"response\":\"a\",\"done\":false}\n";
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{line}",
        line.len()
    )
}

/// A job for `url`, with `task`.
fn job(dir: &Path, url: &str, protocol: &str, task: Value) -> (Value, PathBuf) {
    let records = dir.join("records.jsonl");
    let job = json!({
        "protocol": 1,
        "cell_id": "c0ffee", "agent": "A", "role": "collector",
        "url": url, "protocol_kind": protocol,
        "model": "m", "api": "generate", "stream": true, "keep_alive": null,
        "options": {"num_ctx": 512, "temperature": 0.5},
        "timeout_s": 10.0,
        "task": task,
        "corpus_dir": null,
        "records": records.to_str().expect("utf8 path"),
        "seed": 1234,
        "runtime": null, "language": "rust"
    });
    (job, records)
}

fn workflow_task(expected_files: Option<u32>) -> Value {
    json!({"kind": "agent_workflow", "analysis_template": ANALYSIS_TEMPLATE,
           "report_template": REPORT_TEMPLATE, "expected_files": expected_files})
}

fn write_job(dir: &Path, job: &Value) -> PathBuf {
    let path = dir.join("job.json");
    std::fs::write(&path, serde_json::to_vec_pretty(job).expect("json")).expect("write job");
    path
}

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chimera-agent"))
        .args(args)
        .output()
        .expect("run chimera-agent")
}

fn run_job(dir: &Path, job: &Value, extra: &[&str]) -> Output {
    let path = write_job(dir, job);
    let mut args = vec!["--job", path.to_str().expect("utf8 path")];
    args.extend_from_slice(extra);
    agent(&args)
}

fn records(path: &Path) -> Vec<AgentRecord> {
    let text = std::fs::read_to_string(path).expect("records file");
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| parse_record(i + 1, l).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// chimera's own workflow for the test templates, to compare prompts with.
fn reference_workflow(options: &Options) -> AgentWorkflow {
    let task = Task::AgentWorkflow {
        corpus: Corpus::Empty,
        expected_files: None,
        analysis_template: ANALYSIS_TEMPLATE.into(),
        report_template: REPORT_TEMPLATE.into(),
        role_templates: Default::default(),
    };
    AgentWorkflow::new(&task, Role::Collector, options, IngestResult::empty()).expect("workflow")
}

fn job_options() -> Options {
    Options {
        num_ctx: Some(512),
        temperature: Some(0.5),
        ..Options::default()
    }
}

#[test]
fn the_workflow_runs_on_every_runtime() {
    let server = Server::start(ollama_stream);
    let wf = reference_workflow(&job_options());
    let analysis_text: String = ANALYSIS_REPLY.concat();
    for (i, runtime) in RUNTIMES.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (job, records_path) = job(dir.path(), &server.url(), "ollama", workflow_task(None));
        let out = run_job(dir.path(), &job, &["--runtime", runtime]);
        assert!(out.status.success(), "{runtime}: {}", stderr(&out));
        let recs = records(&records_path);
        assert_eq!(recs.len(), 2, "{runtime}");
        for (r, (stage, index)) in recs
            .iter()
            .zip([(RecordStage::Analysis, 0), (RecordStage::Report, 1)])
        {
            assert_eq!((r.stage, r.index), (stage, Some(index)), "{runtime}");
            assert_eq!(r.error, None, "{runtime}");
            assert_eq!(r.chunks, 5, "{runtime}");
            assert_eq!((r.prompt_tokens, r.output_tokens), (Some(11), Some(4)));
            assert_eq!((r.eval_ms, r.total_ms), (Some(40.0), Some(90.0)));
            assert_eq!((r.load_ms, r.prompt_eval_ms), (Some(1.0), Some(5.0)));
            assert_eq!(r.done_reason.as_deref(), Some("stop"));
            let ttft = r.ttft_ms.unwrap_or_else(|| panic!("{runtime}: no ttft"));
            assert!(
                ttft > 0.0 && ttft <= r.e2e_ms,
                "{runtime}: {ttft} {}",
                r.e2e_ms
            );
            assert_eq!(r.itl_ms.len(), 3, "{runtime}");
            assert!(r.sent_at_unix_ms > 1.6e12, "{runtime}");
            if *runtime == "smol-1kb" {
                // The whole reply is under 1 KiB: held back to the end, its texts arrive
                // together.
                assert!(
                    r.itl_ms.iter().all(|g| *g == 0.0),
                    "{runtime}: {:?}",
                    r.itl_ms
                );
            } else {
                assert!(
                    r.itl_ms.iter().any(|g| *g > 0.0),
                    "{runtime}: {:?}",
                    r.itl_ms
                );
            }
        }
        let seen = server.seen();
        let sent = &seen[2 * i..2 * i + 2];
        assert_eq!(sent[0].prompt(), wf.analysis_prompt(), "{runtime}");
        assert_eq!(
            sent[1].prompt(),
            wf.report_prompt(&analysis_text),
            "{runtime}"
        );
        assert_eq!(
            sent[0].body,
            json!({"model": "m", "prompt": wf.analysis_prompt(), "stream": true,
                   "options": {"num_ctx": 512, "temperature": 0.5}})
        );
        assert!(
            sent[0].head.contains("Connection: close"),
            "{}",
            sent[0].head
        );
    }
}

#[test]
fn openai_sse_single_inference_on_smol_and_async_std() {
    let server = Server::start(openai_stream);
    for runtime in ["smol", "async-std"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let task = json!({"kind": "single_inference", "prompts": ["one", "two"]});
        let (mut job, records_path) = job(dir.path(), &server.url(), "openai", task);
        job["options"] = json!({"num_gpu": 80, "num_predict": 32, "seed": 9});
        let out = run_job(dir.path(), &job, &["--runtime", runtime]);
        assert!(out.status.success(), "{}", stderr(&out));
        let recs = records(&records_path);
        assert_eq!(recs.len(), 2);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!((r.stage, r.index), (RecordStage::Single, Some(i as u32)));
            assert_eq!(r.error, None);
            assert_eq!(r.chunks, 6, "4 texts, the finish, the usage; not [DONE]");
            assert_eq!((r.prompt_tokens, r.output_tokens), (Some(7), Some(4)));
            assert_eq!((r.prompt_eval_ms, r.eval_ms), (Some(2.5), Some(12.0)));
            assert_eq!(r.done_reason.as_deref(), Some("stop"));
            assert!(r.ttft_ms.is_some());
        }
    }
    let bodies: Vec<Value> = server.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(
        bodies[0],
        json!({"model": "m", "prompt": "one", "stream": true,
               "stream_options": {"include_usage": true}, "max_tokens": 32, "seed": 9})
    );
    assert_eq!(bodies[1]["prompt"], "two");
}

#[test]
fn failed_requests_are_records_with_chimera_error_kinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let persona = json!({"kind": "persona", "prompt": "You are DataCollector-9000"});
    let kind_of = |url: &str, task: Value, timeout_s: f64, runtime: &str| {
        let (mut job, records_path) = job(dir.path(), url, "ollama", task);
        job["timeout_s"] = json!(timeout_s);
        let _ = std::fs::remove_file(&records_path);
        let out = run_job(dir.path(), &job, &["--runtime", runtime]);
        assert!(out.status.success(), "{}", stderr(&out));
        records(&records_path)
    };

    let missing = Server::start(not_found);
    let recs = kind_of(&missing.url(), workflow_task(None), 10.0, "tokio-default");
    assert_eq!(recs.len(), 1, "no report after a failed analysis");
    let e = recs[0].error.clone().expect("error");
    assert_eq!(
        (e.kind.as_str(), e.status, e.message.as_str()),
        ("model_not_found", Some(404), "model 'm' not found")
    );

    // A port nobody listens on.
    let free = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", free.local_addr().expect("addr"));
    drop(free);
    for runtime in ["tokio-current-thread", "smol", "async-std"] {
        let recs = kind_of(&url, persona.clone(), 10.0, runtime);
        let e = recs[0].error.clone().expect("error");
        assert_eq!(
            (recs[0].stage, e.kind.as_str()),
            (RecordStage::Persona, "connection_refused")
        );
    }

    let recs = kind_of("https://127.0.0.1:1", persona.clone(), 10.0, "smol");
    let e = recs[0].error.clone().expect("error");
    assert_eq!(e.kind, "connection_refused");
    assert!(e.message.contains("https"), "{}", e.message);

    let slow = Server::start(stalls);
    for runtime in ["tokio-localset", "smol", "async-std"] {
        let recs = kind_of(&slow.url(), persona.clone(), 0.3, runtime);
        let r = &recs[0];
        let e = r.error.clone().expect("error");
        assert_eq!(
            (e.kind.as_str(), e.status),
            ("timeout", Some(200)),
            "{runtime}"
        );
        assert_eq!(
            r.chunks, 1,
            "{runtime}: what arrived before the timeout is kept"
        );
        assert!(r.ttft_ms.is_some(), "{runtime}");
        assert!(
            r.e2e_ms >= 300.0 && r.e2e_ms < 2500.0,
            "{runtime}: {}",
            r.e2e_ms
        );
    }

    let short = Server::start(cut_short);
    let recs = kind_of(&short.url(), persona, 10.0, "tokio-default");
    assert_eq!(recs[0].error.clone().expect("error").kind, "truncated");
}

#[test]
fn exit_statuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = "http://127.0.0.1:1";

    // Layout drift: nothing written, exit 3.
    let (job_drift, records_path) = job(dir.path(), url, "ollama", workflow_task(Some(101)));
    let out = run_job(dir.path(), &job_drift, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("layout drift"), "{}", stderr(&out));
    assert!(!records_path.exists());

    // A malformed job names the file and the field.
    let (mut bad, _) = job(dir.path(), url, "ollama", workflow_task(None));
    bad["task"]["expected_files"] = json!("many");
    let out = run_job(dir.path(), &bad, &[]);
    assert_eq!(out.status.code(), Some(2));
    let msg = stderr(&out);
    assert!(
        msg.contains("job.json") && msg.contains("task.expected_files"),
        "{msg}"
    );
    let (mut bad, _) = job(dir.path(), url, "ollama", workflow_task(None));
    bad.as_object_mut().expect("object").remove("model");
    let out = run_job(dir.path(), &bad, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("model"), "{}", stderr(&out));
    let (mut bad, _) = job(dir.path(), url, "ollama", workflow_task(None));
    bad["api"] = json!("embed");
    assert_eq!(run_job(dir.path(), &bad, &[]).status.code(), Some(2));
    let (mut bad, _) = job(dir.path(), url, "ollama", workflow_task(None));
    bad["timeout_s"] = json!(-1.0);
    assert_eq!(run_job(dir.path(), &bad, &[]).status.code(), Some(2));
    std::fs::write(dir.path().join("job.json"), "{not json").expect("write");
    let out = agent(&["--job", dir.path().join("job.json").to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("job.json"));
    let out = agent(&["--job", "/nonexistent/job.json"]);
    assert_eq!(out.status.code(), Some(2));

    // Unknown runtimes, from the command line or the job.
    let (mut j, _) = job(dir.path(), url, "ollama", workflow_task(None));
    let out = run_job(dir.path(), &j, &["--runtime", "glommio"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("glommio") && stderr(&out).contains("smol-1kb"));
    j["runtime"] = json!("rayon");
    assert_eq!(run_job(dir.path(), &j, &[]).status.code(), Some(2));
    j["runtime"] = json!("");
    j["records"] = json!("/nonexistent/dir/records.jsonl");
    // An empty runtime is tokio-default; the records file cannot be created: exit 1.
    let out = run_job(dir.path(), &j, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/dir/records.jsonl"));

    // Usage errors.
    assert_eq!(agent(&[]).status.code(), Some(2));
    assert_eq!(agent(&["--job", "x", "--bogus"]).status.code(), Some(2));
    assert_eq!(agent(&["--help"]).status.code(), Some(0));
}

#[test]
fn printed_prompts_are_chimeras() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (j, records_path) = job(
        dir.path(),
        "http://127.0.0.1:1",
        "ollama",
        workflow_task(None),
    );
    let analysis = "\n\nExecutive Summary\nNo data.\n## Next\n- We should add data.\n";
    let text_path = dir.path().join("analysis.txt");
    std::fs::write(&text_path, analysis).expect("write");
    let out = run_job(
        dir.path(),
        &j,
        &[
            "--print-prompts",
            "--analysis-text",
            text_path.to_str().expect("utf8"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!records_path.exists(), "nothing is sent or recorded");
    let wf = reference_workflow(&job_options());
    let expected = format!(
        "{}\n",
        serde_json::to_string(&json!({
            "analysis_prompt": wf.analysis_prompt(),
            "report_prompt": wf.report_prompt(analysis),
        }))
        .expect("json")
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    let out = run_job(dir.path(), &j, &["--print-prompts"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["report_prompt"], "");

    let task = json!({"kind": "single_inference", "prompts": ["a \"quoted\" é", "b\n"]});
    let (j, _) = job(dir.path(), "http://127.0.0.1:1", "ollama", task);
    let out = run_job(dir.path(), &j, &["--print-prompts"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"prompts\":[\"a \\\"quoted\\\" é\",\"b\\n\"]}\n"
    );
    let (j, _) = job(
        dir.path(),
        "http://127.0.0.1:1",
        "ollama",
        json!({"kind": "persona", "prompt": "P"}),
    );
    let out = run_job(dir.path(), &j, &["--print-prompts"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"prompts\":[\"P\"]}\n"
    );
}

#[test]
fn a_corpus_is_ingested_as_chimera_ingests_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(corpus.join("reports")).expect("mkdir");
    std::fs::create_dir_all(corpus.join("csv_data")).expect("mkdir");
    std::fs::write(
        corpus.join("reports/run.json"),
        r#"{"throughput_tok_s": 41.5, "ttft_ms": 120}"#,
    )
    .expect("write");
    std::fs::write(
        corpus.join("csv_data/runs.csv"),
        "model,latency_ms\ngemma,35.2\n",
    )
    .expect("write");
    let (mut j, _) = job(
        dir.path(),
        "http://127.0.0.1:1",
        "ollama",
        workflow_task(Some(2)),
    );
    j["corpus_dir"] = json!(corpus.to_str().expect("utf8"));
    let out = run_job(dir.path(), &j, &["--print-prompts"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let task = Task::AgentWorkflow {
        corpus: Corpus::Empty,
        expected_files: Some(2),
        analysis_template: ANALYSIS_TEMPLATE.into(),
        report_template: REPORT_TEMPLATE.into(),
        role_templates: Default::default(),
    };
    let ingested = chimera::workload::ingest(&corpus);
    assert_eq!(ingested.files, 2);
    let wf = AgentWorkflow::new(&task, Role::Insight, &job_options(), ingested).expect("workflow");
    assert_eq!(v["analysis_prompt"], wf.analysis_prompt());
    assert!(wf.analysis_prompt().contains("Total files analyzed: 2"));
}
