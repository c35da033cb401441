//! `make bench-store`: the store, the tables and the orchestrator, measured.
//!
//! 1. **Resume.** A campaign of `CHIMERA_BENCH_CELLS` (default 100,000) committed cells, 3
//!    parts of ~200 bytes each, is generated once through `Campaign::commit_cell` (fsync'd,
//!    from 16 threads) under `target/bench-store/` and reused by later runs; an interrupted
//!    generation resumes, as a campaign does. Printed: commits per second while generating,
//!    then the time of the resume scan (`committed()`, `Verify::Sizes`, target < 1 s) and of
//!    `Verify::Full`. The page cache is warm (the scan follows generation or an earlier run);
//!    a cold scan after a reboot is slower.
//! 2. **Parquet writes.** `table::cell_parts` of `CHIMERA_BENCH_PARQUET_CELLS` (default 2,000)
//!    synthetic cells of 2 agents × 2 requests (7 rows over the three tables per cell), and
//!    writing the parts to files (no fsync: the store's commit cost is figure 1's): rows/s
//!    and MB/s of Parquet written.
//! 3. **Orchestrator RSS.** A `chimera emulate` process serves; a separate `chimera run`
//!    process runs a 1,000-cell single-agent campaign (250 configurations × 4 repetitions,
//!    one short prompt, 4 output tokens) against it into a fresh store. Printed: cells, wall
//!    time, cells/s and the peak RSS of the `chimera run` process alone (`/usr/bin/time -f %M`,
//!    else `VmHWM` polled from `/proc/<pid>/status`), target < 50 MB.
//!
//! A summary table of every figure closes the output.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chimera::backend::RequestRecord;
use chimera::manifest::{Options, Role};
use chimera::record::AgentAggregate;
use chimera::record::{AgentRun, CellKind, CellRecord, MultiAgentMetrics, RequestRow};
use chimera::store::{Campaign, CampaignInfo, CommitOutcome, Verify, open_existing};
use chimera::table;
use chimera::workload::Stage;

const NAME: &str = "bench";
const THREADS: u64 = 16;

fn data_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-store")
}

fn cell_id(n: u64) -> String {
    // Spread over the id space like real (hashed) ids.
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (n << 7);
    format!("{h:016x}{n:016x}")
}

fn parts(n: u64) -> Vec<(String, Vec<u8>)> {
    let body = |tag: &str| {
        let mut s = format!("{tag} of cell {n}: ");
        while s.len() < 200 {
            s.push_str(&format!("{:x}", n.wrapping_mul(s.len() as u64 + 1)));
        }
        s.into_bytes()
    };
    vec![
        ("requests.parquet".to_owned(), body("requests")),
        ("telemetry.parquet".to_owned(), body("telemetry")),
        ("summary.json".to_owned(), body("summary")),
    ]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// What figure 1 measured.
struct Resume {
    cells: usize,
    scan_median: Duration,
    view: Duration,
    full: Duration,
    one_commit: Duration,
}

fn resume(total: u64) -> BenchResult<Resume> {
    let data = data_dir();
    let campaign = Campaign::open(&data, NAME, CampaignInfo::new(NAME, vec![]))?;
    let have = campaign.committed()?;
    let missing: Vec<u64> = (0..total)
        .filter(|&n| !have.contains(&cell_id(n)))
        .collect();
    println!(
        "campaign {}: {} of {total} cells committed",
        campaign.dir().display(),
        have.len()
    );
    drop(have);

    if !missing.is_empty() {
        println!(
            "generating {} cells (3 parts of ~200 B, fsync'd) from {THREADS} threads …",
            missing.len()
        );
        let done = AtomicU64::new(0);
        let start = Instant::now();
        let step = (missing.len() as u64 / 20).max(1000);
        std::thread::scope(|s| -> Result<(), String> {
            let handles: Vec<_> = (0..THREADS)
                .map(|k| {
                    let (campaign, missing, done) = (&campaign, &missing, &done);
                    s.spawn(move || -> Result<(), String> {
                        for &n in missing.iter().skip(k as usize).step_by(THREADS as usize) {
                            let meta = serde_json::json!({"n": n, "report": "TR999"});
                            match campaign.commit_cell(&cell_id(n), 1, &parts(n), &meta) {
                                Ok(
                                    CommitOutcome::Committed(_) | CommitOutcome::AlreadyCommitted,
                                ) => {}
                                Err(e) => return Err(e.to_string()),
                            }
                            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if d % step == 0 {
                                let secs = start.elapsed().as_secs_f64();
                                println!(
                                    "  {d:>7} / {}  {:>6.0} commits/s",
                                    missing.len(),
                                    d as f64 / secs
                                );
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| "a generator thread panicked".to_owned())??;
            }
            Ok(())
        })?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "generated {} cells in {secs:.1} s: {:.0} commits/s ({THREADS} threads)",
            missing.len(),
            missing.len() as f64 / secs
        );
    }

    // Single-threaded commit latency, for the record (a scheduler commits one cell at a time
    // per finished cell).
    let probe = 50u64;
    let start = Instant::now();
    for n in total..total + probe {
        campaign.commit_cell(&cell_id(n), 1, &parts(n), &serde_json::json!({"n": n}))?;
    }
    let per = start.elapsed() / probe as u32;
    for n in total..total + probe {
        campaign.remove_cell(&cell_id(n))?;
    }
    println!("one commit, one thread: {:.2} ms", per.as_secs_f64() * 1e3);
    drop(campaign);
    remove_forced(&data)?;

    let mut sizes = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let c = Campaign::open(&data, NAME, CampaignInfo::new(NAME, vec![]))?;
        let start = Instant::now();
        let done = c.committed()?;
        sizes.push(start.elapsed());
        count = done.len();
        assert!(done.broken.is_empty(), "broken cells: {:?}", done.broken);
    }
    let view = open_existing(&data, NAME)?;
    let start = Instant::now();
    let v = view.committed()?;
    let view_t = start.elapsed();
    assert_eq!(v.len(), count);
    let start = Instant::now();
    let full = view.verify(Verify::Full)?;
    let full_t = start.elapsed();
    assert_eq!(full.len(), count);
    assert!(full.broken.is_empty());

    let med = median(sizes.clone());
    println!();
    println!("resume scan of {count} committed cells (warm page cache):");
    println!(
        "  committed() / Verify::Sizes   median {:>7.1} ms   min {:>7.1} ms   ({} runs)  target < 1000 ms: {}",
        med.as_secs_f64() * 1e3,
        sizes.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        sizes.len(),
        if med < Duration::from_secs(1) {
            "ok"
        } else {
            "MISSED"
        }
    );
    println!(
        "  open_existing().committed()          {:>7.1} ms",
        view_t.as_secs_f64() * 1e3
    );
    println!(
        "  Verify::Full (SHA-256 of every part) {:>7.1} ms",
        full_t.as_secs_f64() * 1e3
    );
    Ok(Resume {
        cells: count,
        scan_median: med,
        view: view_t,
        full: full_t,
        one_commit: per,
    })
}

/// Removes the `.forced-*` directories the latency probe leaves (bench data only).
fn remove_forced(data: &std::path::Path) -> std::io::Result<()> {
    let cells = data.join(NAME).join("cells");
    for e in std::fs::read_dir(&cells)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with(".forced-") {
            std::fs::remove_dir_all(e.path())?;
        }
    }
    Ok(())
}

/// A synthetic finished cell: `agents` agents × `requests` requests, realistic column values.
fn synthetic_cell(n: u64, agents: usize, requests: u32) -> CellRecord {
    let t0 = 1_800_000_000_000.0 + n as f64 * 250.0;
    let agents: Vec<AgentRun> = (0..agents)
        .map(|a| {
            let rows: Vec<RequestRow> = (0..requests)
                .map(|i| {
                    let e2e = 900.0 + (n % 97) as f64 + f64::from(i);
                    RequestRow {
                        stage: Stage::Single,
                        index: i,
                        warmup: false,
                        throughput_tok_s: Some(48.0 + (n % 13) as f64),
                        client_tok_s: Some(47.5),
                        itl_p50_ms: Some(20.1),
                        itl_p99_ms: Some(31.7),
                        published_ttft_ms: Some(110.0 + (n % 7) as f64),
                        response_chars: None,
                        load: None,
                        record: RequestRecord {
                            sent_at_unix_ms: t0 + f64::from(i) * e2e,
                            ttft_ms: Some(110.0 + (n % 7) as f64),
                            e2e_ms: e2e,
                            itl_ms: Vec::new(),
                            chunks: 40,
                            text: "lorem ipsum dolor sit amet ".repeat(8),
                            load_ms: Some(0.05),
                            prompt_tokens: Some(23),
                            prompt_eval_ms: Some(12.0),
                            output_tokens: Some(40),
                            eval_ms: Some(800.0),
                            total_ms: Some(e2e - 5.0),
                            done_reason: Some("stop".into()),
                            timing_source: Some("ollama".into()),
                            error: None,
                        },
                    }
                })
                .collect();
            AgentRun {
                agent: ["A", "B", "C", "D"][a % 4].into(),
                role: if a == 0 {
                    Role::Collector
                } else {
                    Role::Insight
                },
                endpoint: format!("ollama_1143{}", 4 + a),
                isolated: false,
                options: Options {
                    num_gpu: Some(80),
                    num_ctx: Some(2048),
                    temperature: Some(0.8),
                    ..Options::default()
                },
                duration_ms: 1_900.0,
                files_ingested: None,
                server_version: Some("0.12.3".into()),
                model_digest: Some(format!("{:064x}", 0xfeed_u64)),
                aggregate: AgentAggregate {
                    requests: requests as usize,
                    throughput_mean_tok_s: Some(50.0),
                    ttft_mean_ms: Some(112.0),
                    e2e_sum_ms: 1_850.0,
                    output_tokens: 40 * u64::from(requests),
                    ..AgentAggregate::default()
                },
                requests: rows,
                process: None,
            }
        })
        .collect();
    let mut rec =
        chimera::fuzzing::sample_cell_record(cell_id(n), CellKind::Concurrent, "TR999", agents);
    rec.key.config = Some(format!("test{:03}", n % 250));
    rec.key.repetition = (n / 250) as u32 + 1;
    rec.started_at_unix_ms = t0;
    rec.wall_ms = 1_950.0;
    rec.aggregate_tok_s = Some(82.0);
    rec.multi_agent = rec.multi_agent.map(|published| MultiAgentMetrics {
        isolated_sum_ms: Some(1_800.0),
        true_speedup: Some(0.92),
        true_efficiency_pct: Some(46.2),
        isolated_aggregate_tok_s: Some(88.9),
        throughput_delta_tok_s: Some(-0.4),
        ttft_delta_ms: Some(3.1),
        ..published
    });
    rec
}

/// What figure 2 measured.
struct ParquetWrite {
    cells: u64,
    rows: u64,
    bytes: u64,
    encode: Duration,
    total: Duration,
}

fn parquet_write(cells: u64) -> BenchResult<ParquetWrite> {
    let (agents, requests) = (2usize, 2u32);
    let records: Vec<CellRecord> = (0..cells)
        .map(|n| synthetic_cell(n, agents, requests))
        .collect();
    let rows_per_cell = 1 + agents as u64 + agents as u64 * u64::from(requests);
    let dir = tempfile::Builder::new()
        .prefix("parquet-write-")
        .tempdir_in(data_dir().parent().unwrap_or(std::path::Path::new(".")))?;
    // Warm up the allocator and the zstd contexts.
    for rec in records.iter().take(20) {
        table::cell_parts(rec, NAME)?;
    }
    println!();
    println!(
        "Parquet: encoding and writing {cells} cells of {agents} agents × {requests} requests ({rows_per_cell} rows per cell over cells/agents/requests) …"
    );
    let mut encode = Duration::ZERO;
    let mut bytes = 0u64;
    let start = Instant::now();
    for (n, rec) in records.iter().enumerate() {
        let t = Instant::now();
        let parts = table::cell_parts(rec, NAME)?;
        encode += t.elapsed();
        for (name, body) in &parts {
            bytes += body.len() as u64;
            std::fs::write(dir.path().join(format!("{n:06}-{name}")), body)?;
        }
    }
    let total = start.elapsed();
    let rows = cells * rows_per_cell;
    println!(
        "  {rows} rows, {:.2} MB in {:.0} ms (encode {:.0} ms): {:.0} rows/s, {:.2} MB/s, {:.0} cells/s",
        bytes as f64 / 1e6,
        total.as_secs_f64() * 1e3,
        encode.as_secs_f64() * 1e3,
        rows as f64 / total.as_secs_f64(),
        bytes as f64 / 1e6 / total.as_secs_f64(),
        cells as f64 / total.as_secs_f64()
    );
    Ok(ParquetWrite {
        cells,
        rows,
        bytes,
        encode,
        total,
    })
}

const RSS_PROFILE: &str = "
seed: 1
shared_gpu: true
models:
  - name: gemma3:270m
    load_ms: 1
    prompt_tok_s: 1000000
    output_tok_s: 2000
    output_tokens: 4
";

/// 25 temperatures × 10 top_k = 250 configurations, × 4 repetitions = 1,000 single cells.
fn rss_manifest(addr: &str) -> String {
    let temps: Vec<String> = (0..25)
        .map(|i| format!("{:.2}", 0.05 * f64::from(i)))
        .collect();
    format!(
        r#"format: 1
report: TR998
title: orchestrator memory benchmark
endpoints:
  - {{id: emu, kind: emulator, url: "http://{addr}", resource: "local:gpu0"}}
models:
  - {{id: gemma3, tag: "gemma3:270m"}}
workloads:
  - id: one_prompt
    harness: H1
    stream: true
    task:
      kind: single_inference
      prompts: ["Say OK."]
scenarios:
  - id: single
    kind: single
    agents:
      - {{id: client, role: client, endpoint: emu}}
repetitions: 4
warmup: {{policy: none}}
matrix:
  - workload: one_prompt
    model: gemma3
    scenario: single
    apply_to: [client]
    axes:
      temperature: [{}]
      top_k: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
"#,
        temps.join(", ")
    )
}

/// What figure 3 measured.
struct CampaignRss {
    cells: usize,
    wall: Duration,
    peak_kib: u64,
    method: &'static str,
}

/// Kills the emulator child on every exit path.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn campaign_rss() -> BenchResult<CampaignRss> {
    let bin = env!("CARGO_BIN_EXE_chimera");
    let dir = tempfile::Builder::new()
        .prefix("campaign-rss-")
        .tempdir_in(data_dir().parent().unwrap_or(std::path::Path::new(".")))?;
    let profile = dir.path().join("profile.yaml");
    std::fs::write(&profile, RSS_PROFILE)?;
    let mut emu = Command::new(bin)
        .args(["emulate", "--listen", "127.0.0.1:0", "--profile"])
        .arg(&profile)
        .env_remove("CHIMERA_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = emu.stdout.take();
    let emu = KillOnDrop(emu);
    let mut addr = String::new();
    if let Some(out) = stdout {
        BufReader::new(out).read_line(&mut addr)?;
    }
    let addr = addr.trim().to_owned();
    if addr.is_empty() {
        return Err(format!("`{bin} emulate` printed no address").into());
    }
    let manifest = dir.path().join("tr998.yaml");
    std::fs::write(&manifest, rss_manifest(&addr))?;
    let data = dir.path().join("data");
    let log = dir.path().join("run.log");
    let time_out = dir.path().join("time.txt");
    let gnu_time = std::path::Path::new("/usr/bin/time");
    let use_time = gnu_time.exists();
    let mut cmd = if use_time {
        let mut c = Command::new(gnu_time);
        c.arg("-o").arg(&time_out).args(["-f", "%M", bin]);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg("run")
        .arg(&manifest)
        .arg("--data")
        .arg(&data)
        .args(["--campaign", "rss", "--no-cache"])
        .env_remove("CHIMERA_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(dir.path().join("run.err"))?);
    println!();
    println!(
        "orchestrator: `chimera run` of a 1,000-cell single-agent campaign against `chimera emulate` ({addr}) …"
    );
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let mut polled = 0u64;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if !use_time {
            polled = polled.max(vm_hwm_kib(child.id()).unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed();
    drop(emu);
    if !status.success() {
        let err = std::fs::read_to_string(dir.path().join("run.err")).unwrap_or_default();
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(format!(
            "`chimera run` failed ({status}):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
        .into());
    }
    let (peak_kib, method) = if use_time {
        let text = std::fs::read_to_string(&time_out)?;
        let kib = text
            .lines()
            .rev()
            .find_map(|l| l.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("/usr/bin/time wrote no peak RSS: {text:?}"))?;
        (kib, "/usr/bin/time -f %M")
    } else {
        (polled, "VmHWM, polled every 10 ms")
    };
    let cells = open_existing(&data, "rss")?.committed()?.len();
    println!(
        "  {cells} cells committed in {:.1} s: {:.0} cells/s; peak RSS of `chimera run` {:.1} MB ({method})",
        wall.as_secs_f64(),
        cells as f64 / wall.as_secs_f64(),
        peak_kib as f64 / 1024.0
    );
    Ok(CampaignRss {
        cells,
        wall,
        peak_kib,
        method,
    })
}

fn main() -> BenchResult<()> {
    let total = env_u64("CHIMERA_BENCH_CELLS", 100_000);
    let r = resume(total)?;
    let p = parquet_write(env_u64("CHIMERA_BENCH_PARQUET_CELLS", 2_000))?;
    let c = campaign_rss()?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let rss_mb = c.peak_kib as f64 / 1024.0;
    println!();
    println!("| figure | value | target |");
    println!("|---|---|---|");
    println!(
        "| resume scan, {} committed cells (median of 5) | {:.1} ms | < 1000 ms: {} |",
        r.cells,
        ms(r.scan_median),
        verdict(r.scan_median < Duration::from_secs(1))
    );
    println!("| resume scan, read-only view | {:.1} ms | |", ms(r.view));
    println!(
        "| Verify::Full, {} cells | {:.1} ms | |",
        r.cells,
        ms(r.full)
    );
    println!(
        "| one fsync'd commit, one thread | {:.2} ms | |",
        ms(r.one_commit)
    );
    println!(
        "| Parquet rows written ({} cells, 3 tables) | {:.0} rows/s | |",
        p.cells,
        p.rows as f64 / p.total.as_secs_f64()
    );
    println!(
        "| Parquet bytes written ({:.2} MB, encode {:.0} % of the time) | {:.2} MB/s | |",
        p.bytes as f64 / 1e6,
        100.0 * p.encode.as_secs_f64() / p.total.as_secs_f64(),
        p.bytes as f64 / 1e6 / p.total.as_secs_f64()
    );
    println!(
        "| emulator campaign: cells, wall time | {} cells in {:.1} s | |",
        c.cells,
        c.wall.as_secs_f64()
    );
    println!(
        "| emulator campaign throughput | {:.0} cells/s | |",
        c.cells as f64 / c.wall.as_secs_f64()
    );
    println!(
        "| orchestrator peak RSS ({}) | {rss_mb:.1} MB | < 50 MB: {} |",
        c.method,
        verdict(rss_mb < 50.0)
    );
    Ok(())
}
