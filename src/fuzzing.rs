//! Entry points of the fuzz targets (`fuzz/`, `make fuzz`) and of their regression test
//! (`tests/fuzz_regressions.rs`, run by `make test`): one function per parser that takes the
//! fuzzer's bytes, runs chimera's own code on them exactly as the program would, and panics
//! only when an invariant is broken. A panic here is a bug found; `Ok` or `Err` is the
//! parser doing its job.
//!
//! | function | chimera code | invariants checked |
//! |---|---|---|
//! | [`manifest`] | [`crate::manifest::from_bytes`], [`crate::plan::build_loaded`] | diagnostics render; a plan is topologically ordered |
//! | [`manifest_spec`] | the same, from a typed spec written as JSON (a YAML subset) | the text parses back to the same spec |
//! | [`ollama_stream`] | the line splitter and the Ollama NDJSON parser, fed as `exchange` feeds them | lines within the cap; same reading whatever the chunking |
//! | [`openai_stream`] | the line splitter and the OpenAI SSE parser | the same |
//! | [`http_requests`] | the emulator's HTTP/1.1 request reader | every parsed request is well formed |
//! | [`import`] | the per-layout readers of `chimera import chimeraforge` on a one- or two-file tree | every imported run is a planned cell whose tables encode |
//! | [`journal`] | the campaign journal reader and writer | an append after any content reads back as the last event |
//!
//! Not a stable API: it exists for `fuzz/` and the tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::ollama::StreamState;
use crate::backend::openai::SseState;
use crate::backend::stream::{LineSplitter, Overflow, Protocol};
use crate::backend::{ErrorKind, RequestError, RequestRecord};
use crate::manifest::{Api, ManifestSpec};
use crate::plan::{NodeKind, Plan};

/// Where fuzzed manifests claim to live: a directory that does not exist, so that planning
/// finds no sibling manifests and reads nothing from the disk.
pub const MANIFEST_PATH: &str = "/nonexistent-chimera-fuzz/fuzz.yaml";

/// Parses, validates and plans one manifest. `Ok` holds the number of plan nodes, `Err` the
/// rendered diagnostics.
pub fn manifest(bytes: &[u8]) -> Result<usize, String> {
    let path = Path::new(MANIFEST_PATH);
    let m = crate::manifest::from_bytes(path, bytes).map_err(|e| rendered(&e))?;
    plan_one(m)
}

/// Writes `spec` as JSON (which YAML reads), parses the text back and checks that it gives
/// the same spec, then validates and plans it as [`manifest`] does.
pub fn manifest_spec(spec: &ManifestSpec) -> Result<usize, String> {
    let text = serde_json::to_string_pretty(spec).map_err(|e| e.to_string())?;
    let path = Path::new(MANIFEST_PATH);
    let back = match crate::manifest::load::parse(path, &text) {
        Ok(back) => back,
        Err(d) => panic!("a manifest chimera wrote does not parse: {d}\n{text}"),
    };
    assert!(
        back == *spec,
        "the manifest does not read back as written:\n{text}\nread back: {back:#?}"
    );
    // What `manifest::from_bytes` does after parsing.
    let m = crate::manifest::Manifest {
        path: path.to_owned(),
        source: text,
        spec: back,
    };
    let diagnostics = crate::manifest::validate::check(&m);
    if !diagnostics.is_empty() {
        return Err(rendered(&crate::manifest::ManifestError { diagnostics }));
    }
    plan_one(m)
}

fn plan_one(m: crate::manifest::Manifest) -> Result<usize, String> {
    let plan = crate::plan::build_loaded(vec![m]).map_err(|e| rendered(&e))?;
    assert!(
        crate::plan::is_topological(&plan),
        "plan order is not topological"
    );
    assert_eq!(
        plan.order.len(),
        plan.graph.node_count(),
        "plan order misses nodes"
    );
    let summary = crate::plan::render::summary(&plan);
    assert!(!summary.is_empty(), "empty plan summary");
    Ok(plan.graph.node_count())
}

fn rendered(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    assert!(!s.trim().is_empty(), "an error without a message");
    s
}

/// The reading of one response body by a protocol parser.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOutcome {
    /// What the parser recorded (timings included).
    pub record: RequestRecord,
    /// `Ok` when the reply was complete.
    pub result: Result<(), RequestError>,
}

/// Which reply shape a stream parser expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamMode {
    /// `/api/chat` (`/v1/chat/completions`) instead of generate (completions).
    pub chat: bool,
    /// A streamed request (NDJSON / SSE) instead of one JSON object.
    pub stream: bool,
    /// `max_response_bytes`: the line cap and the text cap.
    pub cap: usize,
}

/// Feeds `body` to the Ollama NDJSON parser, once whole and once in the pieces `split`
/// chooses (see [`chunks`]); both readings must agree. Returns the split reading.
pub fn ollama_stream(mode: StreamMode, split: u64, body: &[u8]) -> StreamOutcome {
    let api = if mode.chat { Api::Chat } else { Api::Generate };
    stream_both(mode, split, body, |t0| {
        StreamState::new(api, mode.stream, mode.cap, t0)
    })
}

/// Feeds `body` to the OpenAI SSE parser, once whole and once in pieces; see
/// [`ollama_stream`].
pub fn openai_stream(mode: StreamMode, split: u64, body: &[u8]) -> StreamOutcome {
    let api = if mode.chat { Api::Chat } else { Api::Generate };
    stream_both(mode, split, body, |t0| {
        SseState::new(api, mode.stream, mode.cap, t0)
    })
}

fn stream_both<P: Protocol>(
    mode: StreamMode,
    split: u64,
    body: &[u8],
    proto: impl Fn(Instant) -> P,
) -> StreamOutcome {
    let pieces = chunks(body, split);
    line_splitter(mode.cap, &pieces);
    let whole = drive(mode, &[body], &proto);
    let split = drive(mode, &pieces, &proto);
    // Timings depend on when pieces arrive; what was read must not.
    let strip = |o: &StreamOutcome| {
        let mut r = o.record.clone();
        r.ttft_ms = None;
        r.itl_ms.clear();
        r.error = None;
        (r, o.result.as_ref().map_err(|e| e.kind).copied())
    };
    assert_eq!(
        strip(&whole),
        strip(&split),
        "the reading depends on how the body was cut into pieces"
    );
    let rec = &split.record;
    assert!(
        rec.text.len() <= mode.cap,
        "text of {} bytes over the cap {}",
        rec.text.len(),
        mode.cap
    );
    if mode.stream {
        let gaps = rec.itl_ms.len();
        match rec.ttft_ms {
            None => assert_eq!(gaps, 0, "inter-chunk gaps without a first token"),
            Some(t) => assert!(t >= 0.0 && t.is_finite(), "bad ttft {t}"),
        }
        assert!(
            rec.itl_ms.iter().all(|g| *g >= 0.0 && g.is_finite()),
            "bad gaps"
        );
        assert!(gaps < rec.chunks as usize + 1, "more gaps than chunks");
    } else {
        assert!(rec.ttft_ms.is_none() && rec.itl_ms.is_empty());
    }
    split
}

/// `body` cut into pieces: whole for `split == 0`, else pieces of 1 to 2^(split % 13) bytes
/// drawn from a generator seeded with `split`.
pub fn chunks(body: &[u8], split: u64) -> Vec<&[u8]> {
    if split == 0 {
        return vec![body];
    }
    let limit = 1u64 << (split % 13);
    let mut state = split | 1;
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = usize::try_from(1 + state % limit)
            .unwrap_or(usize::MAX)
            .min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

/// The byte stream `pieces` through a [`LineSplitter`] of cap `cap`: every line returned is
/// the input up to a `\n` (less one `\r` before it), within the cap; what is left is the rest.
pub fn line_splitter(cap: usize, pieces: &[&[u8]]) {
    let input: Vec<u8> = pieces.concat();
    let mut s = LineSplitter::new(cap);
    let mut pos = 0; // start of the first byte not returned as a line
    let mut fed = 0;
    for piece in pieces {
        s.feed(piece);
        fed += piece.len();
        loop {
            match s.next_line() {
                Ok(Some(line)) => {
                    assert!(
                        line.len() <= cap,
                        "a line of {} bytes over the cap {cap}",
                        line.len()
                    );
                    let end = pos + line.len();
                    assert_eq!(&input[pos..end], &line[..], "a line that is not the input");
                    let eol = match input.get(end..) {
                        Some([b'\n', ..]) => 1,
                        Some([b'\r', b'\n', ..]) => 2,
                        _ => panic!("a line that does not end at a newline"),
                    };
                    assert!(line.len() + eol - 1 <= cap, "a line over the cap");
                    pos = end + eol;
                    assert!(pos <= fed, "a line past the bytes fed");
                    // The whole body is bounded, not only each line.
                    assert!(
                        pos <= cap,
                        "{pos} bytes of lines returned under the cap {cap}"
                    );
                }
                Ok(None) => {
                    assert!(fed - pos <= cap, "{} bytes pending over the cap", fed - pos);
                    assert!(
                        !input[pos..fed].contains(&b'\n'),
                        "a complete line left pending"
                    );
                    break;
                }
                Err(Overflow::Line(n)) => {
                    assert!(n > cap, "a line of {n} bytes refused under the cap {cap}");
                    return;
                }
                Err(Overflow::Body(total)) => {
                    assert!(
                        total > cap,
                        "a body of {total} bytes refused under the cap {cap}"
                    );
                    return;
                }
            }
        }
    }
    assert_eq!(
        s.take_rest(),
        &input[pos..],
        "the rest is not the unread input"
    );
}

/// One body through one protocol, as `backend::stream::exchange` reads it: pieces arrive 1 ms
/// apart, lines go to the protocol until it is done, the body's end goes to `finish`.
fn drive<P: Protocol>(
    mode: StreamMode,
    pieces: &[&[u8]],
    proto: &impl Fn(Instant) -> P,
) -> StreamOutcome {
    let t0 = Instant::now();
    let mut p = proto(t0);
    let mut rec = RequestRecord::default();
    let too_large = |o: Overflow| RequestError {
        kind: ErrorKind::TooLarge,
        status: None,
        message: match o {
            Overflow::Line(n) => format!("a response line of at least {n} bytes"),
            Overflow::Body(n) => format!("a response body of at least {n} bytes"),
        },
    };
    let mut lines = LineSplitter::new(mode.cap);
    let mut at = t0;
    let result = 'body: {
        for piece in pieces {
            at += Duration::from_millis(1);
            lines.feed(piece);
            if mode.stream {
                loop {
                    match lines.next_line() {
                        Err(n) => break 'body Err(too_large(n)),
                        Ok(None) => break,
                        Ok(Some(line)) => {
                            assert!(line.len() <= mode.cap);
                            if let Err(e) = p.on_line(&line, at, &mut rec) {
                                break 'body Err(e);
                            }
                            if p.done() {
                                break 'body Ok(());
                            }
                        }
                    }
                }
            } else if let Err(n) = lines.check_pending() {
                break 'body Err(too_large(n));
            }
        }
        let rest = lines.take_rest();
        p.finish(&rest, at + Duration::from_millis(1), &mut rec)
            .map(|()| assert!(p.done(), "finish succeeded on an incomplete reply"))
    };
    if let Err(e) = &result {
        assert!(!e.message.is_empty(), "an error without a message: {e:?}");
    }
    StreamOutcome {
        record: rec,
        result,
    }
}

/// What the emulator's HTTP reader made of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// A request: method, path, keep-alive, body length.
    Request(String, String, bool, usize),
    /// The connection ended between requests.
    Closed,
    /// Refused with 400 and this text.
    Bad(String),
    /// The reader failed (the bytes ended inside a request).
    Io(std::io::ErrorKind),
}

/// Reads requests from `bytes` back to back as one emulator connection does, until the
/// connection would close (at most 64 requests).
pub fn http_requests(bytes: &[u8]) -> Vec<HttpOutcome> {
    use crate::emulator::http::{ReadOutcome, read_request};
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut reader = tokio::io::BufReader::new(bytes);
    let mut out = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    while out.len() < 64 {
        let fut = std::pin::pin!(read_request(&mut reader));
        // In-memory bytes never make a read wait.
        let Poll::Ready(r) = fut.poll(&mut cx) else {
            panic!("reading in-memory bytes did not complete");
        };
        let o = match r {
            Ok(ReadOutcome::Request(req)) => {
                assert!(!req.method.is_empty(), "a request without a method");
                assert!(
                    !req.path.contains('?'),
                    "a path with its query: {}",
                    req.path
                );
                HttpOutcome::Request(req.method, req.path, req.keep_alive, req.body.len())
            }
            Ok(ReadOutcome::Closed) => HttpOutcome::Closed,
            Ok(ReadOutcome::Bad(m)) => {
                assert!(!m.is_empty(), "a 400 without a reason");
                HttpOutcome::Bad(m)
            }
            Err(e) => HttpOutcome::Io(e.kind()),
        };
        let last = !matches!(o, HttpOutcome::Request(_, _, true, _));
        out.push(o);
        if last {
            break;
        }
    }
    out
}

/// The raw-data layouts of `chimera import chimeraforge`, with the manifest each is read
/// against and the file paths (relative to the source folder) a fuzzed file is written at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportLayout {
    /// TR108 CSVs and JSON (experiments/tr108.yaml).
    Tr108,
    /// TR109 H2 Python single agent (experiments/tr109.yaml).
    Tr109,
    /// TR110 H3 Python multi-agent (experiments/tr110.yaml).
    Tr110,
    /// TR111_v2 H5 Rust single agent (experiments/tr111.yaml).
    Tr111,
    /// TR114_v2 H6v2 Rust multi-agent (experiments/tr114.yaml).
    H6,
}

impl ImportLayout {
    /// Every layout, in the order the fuzz input's layout byte picks them.
    pub const ALL: [ImportLayout; 5] = [
        ImportLayout::Tr108,
        ImportLayout::Tr109,
        ImportLayout::Tr110,
        ImportLayout::Tr111,
        ImportLayout::H6,
    ];

    fn manifest(self) -> &'static str {
        match self {
            ImportLayout::Tr108 => "tr108.yaml",
            ImportLayout::Tr109 => "tr109.yaml",
            ImportLayout::Tr110 => "tr110.yaml",
            ImportLayout::Tr111 => "tr111.yaml",
            ImportLayout::H6 => "tr114.yaml",
        }
    }

    fn layout(self) -> crate::import::Layout {
        use crate::import::Layout;
        match self {
            ImportLayout::Tr108 => Layout::Tr108,
            ImportLayout::Tr109 => Layout::Tr109,
            ImportLayout::Tr110 => Layout::Tr110,
            ImportLayout::Tr111 => Layout::Tr111,
            ImportLayout::H6 => Layout::H6,
        }
    }

    /// Where a fuzzed file may be written (as in the original raw data).
    pub fn slots(self) -> &'static [&'static str] {
        match self {
            ImportLayout::Tr108 => &[
                "llama3/ollama_quant_bench.csv",
                "llama3/ollama_param_tuning.csv",
                "llama3/ollama_param_tuning_summary.csv",
                "gemma3/gemma3_baseline.csv",
                "gemma3/gemma3_param_tuning.csv",
                "gemma3/gemma3_param_tuning_summary.csv",
                "gemma3/gemma3_baseline.json",
                "llama3/baseline_ml_metrics.json",
                "llama3/baseline_system_metrics.json",
            ],
            ImportLayout::Tr109 => &[
                "run_gpu60_ctx256_temp0p6/data/metrics.json",
                "run_gpu120_ctx1024_temp0p8/data/metrics.json",
            ],
            ImportLayout::Tr110 => &[
                "phase_1_test_001/run_1/metrics.json",
                "phase_1_test_001/summary.json",
                "test_execution_log.json",
                "comprehensive_test_summary.json",
                "phase_1_test_001/run_2/metrics.json",
            ],
            ImportLayout::Tr111 => &[
                "baseline_default/data/metrics.json",
                "gpu60_ctx256_temp0p6/data/metrics.json",
                "gpu80_ctx1024_temp0p6_v2/data/metrics.json",
            ],
            ImportLayout::H6 => &[
                "baseline-vs-chimera/test001/run_1/metrics.json",
                "baseline-vs-chimera/test001/summary.json",
                "baseline-vs-chimera/test001/run_2/metrics.json",
                "chimera-homo/test013/run_1/metrics.json",
            ],
        }
    }
}

/// The plans of the import layouts' manifests (`experiments/` of this source tree), built once.
fn import_plan(layout: ImportLayout) -> &'static Plan {
    static PLANS: OnceLock<Vec<Plan>> = OnceLock::new();
    let plans = PLANS.get_or_init(|| {
        ImportLayout::ALL
            .iter()
            .map(|l| {
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("experiments")
                    .join(l.manifest());
                crate::plan::build(&[path]).unwrap_or_else(|e| panic!("{}: {e}", l.manifest()))
            })
            .collect()
    });
    let i = ImportLayout::ALL
        .iter()
        .position(|l| *l == layout)
        .unwrap_or(0);
    &plans[i]
}

/// Writes `files` (slot index into [`ImportLayout::slots`], content) into a fresh source
/// folder and reads it with the layout's reader of `chimera import chimeraforge` (the
/// directory walk and the commit left out). A later file in the same slot replaces an earlier
/// one. `Ok` holds the runs imported; each is a planned single/concurrent cell of the
/// manifest and its tables encode.
pub fn import(layout: ImportLayout, files: &[(usize, &[u8])]) -> Result<usize, String> {
    let plan = import_plan(layout);
    let dir = TempDir::new();
    let slots = layout.slots();
    let mut paths: Vec<PathBuf> = Vec::new();
    for (slot, bytes) in files {
        let rel = slots[slot % slots.len()];
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the source folders");
        }
        std::fs::write(&path, bytes).expect("write a source file");
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    let ri = plan.reports.iter().position(|r| !r.pulled_in).unwrap_or(0);
    let mut ctx = crate::import::Ctx::new(plan, ri, dir.path(), layout.layout());
    let read = match layout {
        ImportLayout::Tr108 => crate::import::tr108::read(&mut ctx, &paths),
        ImportLayout::Tr109 => crate::import::single::read_tr109(&mut ctx, &paths),
        ImportLayout::Tr110 => crate::import::tr110::read(&mut ctx, &paths),
        ImportLayout::Tr111 => crate::import::single::read_tr111(&mut ctx, &paths),
        ImportLayout::H6 => crate::import::h6::read(&mut ctx, &paths),
    };
    let runs = read.map_err(|e| rendered(&e))?;
    let planned: std::collections::HashSet<String> = plan
        .graph
        .node_weights()
        .filter(|n| matches!(n.kind, NodeKind::Single | NodeKind::Concurrent))
        .map(|n| n.id.hex())
        .collect();
    for r in &runs {
        assert!(
            planned.contains(&r.record.key.cell_id),
            "an imported run of `{}` is no planned cell",
            r.file.display()
        );
        if let Err(e) = crate::table::cell_parts(&r.record, "fuzz") {
            panic!("the tables of an imported run do not encode: {e}");
        }
    }
    Ok(runs.len())
}

/// Writes `bytes` as a campaign's journal and reads it; then appends an event (as a resumed
/// run does) and reads again: the events read before are still there, in order, and the new
/// one is last, whatever the file held (a torn line, garbage, no newline at the end).
/// Returns the events read before the append.
pub fn journal(bytes: &[u8]) -> usize {
    use crate::store::JournalEvent;
    use crate::store::journal::{JournalWriter, read};
    let dir = TempDir::new();
    let path = dir.path().join("journal.jsonl");
    std::fs::write(&path, bytes).expect("write the journal");
    let before = read(&path).expect("a journal file that exists reads");
    let ev = JournalEvent::Interrupted {
        run_id: "fuzz".to_owned(),
        at_unix_ms: 1.0,
    };
    JournalWriter::open(&path)
        .and_then(|mut w| w.append(&path, &ev))
        .expect("append to the journal");
    let after = read(&path).expect("the journal reads after the append");
    assert_eq!(
        after.len(),
        before.len() + 1,
        "an append changed what the earlier lines read as"
    );
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "earlier events changed"
    );
    assert_eq!(after.last(), Some(&ev), "the appended event is not last");
    before.len()
}

/// A fresh folder under the system temporary directory (`TMPDIR`), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("chimera-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create a temporary folder");
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A cell record for tests and benchmarks: cell `cell_id` of `kind` for `report` with
/// `agents`, a successful first attempt of repetition 1 of config `cfg` on `gemma3:latest`,
/// started at 1.7e12 ms, without telemetry. A concurrent cell also gets the chimera_homo
/// scenario and published multi-agent numbers (1.95× speed-up, 97.5 % efficiency, no
/// contention); the caller overrides what it checks.
pub fn sample_cell_record(
    cell_id: String,
    kind: crate::record::CellKind,
    report: &str,
    agents: Vec<crate::record::AgentRun>,
) -> crate::record::CellRecord {
    use crate::record::{CellAxes, CellKey, CellKind, CellRecord, MultiAgentMetrics, Status};
    let concurrent = kind == CellKind::Concurrent;
    let key = CellKey {
        cell_id,
        kind,
        report: report.into(),
        config: Some("cfg".into()),
        scenario: concurrent.then(|| "chimera_homo".into()),
        repetition: 1,
        model: Some("gemma3:latest".into()),
        axes: CellAxes::default(),
        server_flags: None,
    };
    let mut rec = CellRecord::new(key, agents, 1_000.0, 1_700_000_000_000.0);
    rec.status = Status::Ok;
    rec.error = None;
    rec.error_kind = None;
    rec.aggregate_tok_s = None;
    rec.multi_agent = concurrent.then(|| MultiAgentMetrics {
        published_speedup: Some(1.95),
        published_efficiency_pct: Some(97.5),
        contention: Some(false),
        ..MultiAgentMetrics::default()
    });
    rec
}

/// What [`agent_program`] saw of one run.
#[derive(Debug)]
pub struct AgentProgramRun {
    /// From before the spawn to the end of reading the records, as the runner does it.
    pub wall: Duration,
    /// Valid records read.
    pub records: usize,
    /// Why the run failed, when it did.
    pub failure: Option<String>,
}

/// Runs `argv` once the way a `command` workload runs an agent program (own process group,
/// polled for RSS, deadline and records size, CPU time read at exit, records read back and
/// validated), with `dir` as its working directory and `CHIMERA_RECORDS` naming
/// `dir/records.jsonl`: for `make bench-harness`, which times chimera's overhead per agent
/// start and per record.
pub fn agent_program(dir: &Path, argv: Vec<String>) -> AgentProgramRun {
    let records = dir.join("records.jsonl");
    let spec = crate::run::command::ProgramSpec {
        argv,
        env: vec![("CHIMERA_RECORDS".into(), records.display().to_string())],
        work_dir: dir.to_path_buf(),
        records,
        deadline: Duration::from_secs(600),
        max_record_bytes: 1 << 30,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return AgentProgramRun {
                wall: Duration::ZERO,
                records: 0,
                failure: Some(e.to_string()),
            };
        }
    };
    let t0 = Instant::now();
    let o = rt.block_on(crate::run::command::run_program(&spec, t0, None));
    AgentProgramRun {
        wall: t0.elapsed(),
        records: o.records.len(),
        failure: o.failure,
    }
}
