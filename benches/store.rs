//! `make bench-store`: how fast the store decides what a 100,000-cell campaign has committed.
//!
//! A campaign of `CHIMERA_BENCH_CELLS` (default 100,000) committed cells, 3 parts of ~200 bytes
//! each, is generated once through `Campaign::commit_cell` (fsync'd, from 16 threads) under
//! `target/bench-store/` and reused by later runs; an interrupted generation resumes, as a
//! campaign does. Printed: commits per second while generating, then the time of the resume
//! scan (`committed()`, `Verify::Sizes`, target < 1 s) and of `Verify::Full`. The page cache
//! is warm (the scan follows generation or an earlier run); a cold scan after a reboot is slower.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chimera::store::{Campaign, CampaignInfo, CommitOutcome, Verify, open_existing};

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: u64 = std::env::var("CHIMERA_BENCH_CELLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
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
    Ok(())
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
