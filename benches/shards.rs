//! `make bench-shards`: the cost of sharding, printed as figures against their targets.
//!
//! 1. Splitting a 1,000,000-cell plan into 64 shards, against planning it (target: plan +
//!    split within 1.3× of the plan alone).
//! 2. The balance of the split (largest shard's expected work / the mean) on TR114_v2 and
//!    TR116 for 4 and 8 shards (target: at most 1.10 for the default `comparison` units).
//! 3. The status of 64 shards holding 100,000 committed cells: `store::shard_overview`
//!    re-plans the campaign, scans its cells and reads every shard's record and journal
//!    (target: under 2 s). The store is generated once under `target/bench-shards/`.
//!
//! Times are the best of three runs on this machine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chimera::plan::{ShardBy, shard};
use chimera::store::{CellManifest, JournalEvent, ShardRecord};

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t0 = Instant::now();
        let v = f();
        best = best.min(t0.elapsed());
        last = Some(v);
    }
    (best, last.expect("at least one run"))
}

fn list(n: impl Iterator<Item = String>) -> String {
    n.collect::<Vec<_>>().join(", ")
}

/// A single-inference manifest of `configs` configurations (num_gpu × num_ctx × temperature ×
/// top_k) × `reps` repetitions.
fn manifest(report: &str, axes: [usize; 4], reps: u32) -> String {
    let [g, c, t, k] = axes;
    let mut s = String::new();
    let _ = write!(
        s,
        "format: 1\nreport: {report}\ntitle: shard benchmark\nendpoints:\n  - {{id: ollama, kind: \
         ollama, url: \"http://127.0.0.1:11434\", resource: \"local:gpu0\"}}\nmodels:\n  - {{id: \
         gemma3, tag: \"gemma3:latest\"}}\nworkloads:\n  - id: prompts\n    task: {{kind: \
         single_inference, prompts: [\"Give a battle quote for a co-op shooter win.\"]}}\n\
         scenarios:\n  - id: single\n    kind: single\n    agents: [{{id: client, role: client, \
         endpoint: ollama}}]\nrepetitions: {reps}\norder: {{mode: interleaved, shuffle_seed: \
         42}}\nmatrix:\n  - workload: prompts\n    scenario: single\n    model: gemma3\n    \
         apply_to: [client]\n    id_template: \"g{{num_gpu}}_c{{num_ctx}}_t{{temperature:p}}_k{{top_k}}\"\n    \
         axes:\n      num_gpu: [{}]\n      num_ctx: [{}]\n      temperature: [{}]\n      top_k: [{}]\n",
        list((1..=g).map(|v| v.to_string())),
        list((1..=c).map(|v| (v * 256).to_string())),
        list((1..=t).map(|v| format!("{:.2}", v as f64 * 0.05))),
        list((1..=k).map(|v| (v * 10).to_string())),
    );
    s
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-shards")
}

/// 1. Planning 1,000,000 cells against splitting them into 64 shards.
fn split_cost() -> bool {
    let path = root().join("million.yaml");
    write(&path, &manifest("TR997", [50, 40, 20, 5], 5));
    let (plan_t, plan) = best(3, || {
        chimera::plan::build(std::slice::from_ref(&path)).expect("plan")
    });
    let cells = plan.graph.node_count();
    // What a shard does before it runs: the split, its fingerprint and its own nodes.
    let (split_t, (split, mine)) = best(3, || {
        let s = shard::split(&plan, 64, ShardBy::Comparison);
        let f = s.fingerprint().to_owned();
        let mine = s.nodes(&plan, 0).len();
        assert_eq!(f.len(), 16);
        (s, mine)
    });
    let ratio = (plan_t + split_t).as_secs_f64() / plan_t.as_secs_f64();
    println!(
        "split {cells} nodes into 64 shards: plan {:.2} s, split + fingerprint + one shard's \
         {mine} nodes {:.3} s, together {ratio:.2}× the plan (target ≤ 1.30×; balance {:.3})",
        plan_t.as_secs_f64(),
        split_t.as_secs_f64(),
        split.balance()
    );
    ratio <= 1.30
}

/// 2. Balance on the reports' own plans.
fn balance() -> bool {
    let mut ok = true;
    for m in ["experiments/tr114.yaml", "experiments/tr116.yaml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(m);
        let plan = chimera::plan::build(&[path]).expect("plan");
        for n in [4, 8] {
            let c = shard::split(&plan, n, ShardBy::Comparison).balance();
            let g = shard::split(&plan, n, ShardBy::Configuration).balance();
            ok &= c <= 1.10;
            println!(
                "balance {} N={n}: {c:.3} by comparison (target ≤ 1.10), {g:.3} by configuration",
                plan.reports[0].report
            );
        }
    }
    ok
}

/// The campaign of 100,000 committed cells in 64 shards, generated once.
fn merge_store() -> (PathBuf, usize) {
    let data = root().join("data");
    let dir = data.join("merge");
    let path = root().join("hundred-k.yaml");
    let text = manifest("TR996", [50, 40, 10, 1], 5);
    write(&path, &text);
    let plan = chimera::plan::build(std::slice::from_ref(&path)).expect("plan");
    let split = shard::split(&plan, 64, ShardBy::Comparison);
    let done = dir.join(".generated");
    let cells: Vec<_> = plan
        .order
        .iter()
        .copied()
        .filter(|&ni| split.shard_of(ni).is_some())
        .collect();
    if done.exists() {
        return (data, cells.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let info = chimera::store::CampaignInfo::new(
        "merge",
        vec![chimera::store::ManifestEntry::new(
            &path.display().to_string(),
            "TR996",
            &text,
        )],
    );
    drop(chimera::store::Campaign::open(&data, "merge", info).expect("campaign"));
    for &ni in &cells {
        let id = plan.graph[ni].id.hex();
        let m = CellManifest {
            cell_id: id.clone(),
            attempt: 1,
            committed_at_unix_ms: 1.0,
            store_format: chimera::store::STORE_FORMAT,
            parts: Vec::new(),
            meta: serde_json::json!({}),
        };
        write(
            &dir.join("cells").join(&id).join("MANIFEST.json"),
            &serde_json::to_string(&m).expect("json"),
        );
    }
    for i in 0..64u32 {
        let mine: Vec<String> = split
            .nodes(&plan, i)
            .into_iter()
            .filter(|&ni| split.shard_of(ni).is_some())
            .map(|ni| plan.graph[ni].id.hex())
            .collect();
        let sdir = dir.join("shards").join(format!("{i}-of-64"));
        let mut journal = String::new();
        let ev = |e: &JournalEvent, j: &mut String| {
            j.push_str(&serde_json::to_string(e).expect("json"));
            j.push('\n');
        };
        ev(
            &JournalEvent::Started {
                run_id: format!("r{i}"),
                cells_total: mine.len() as u64,
                committed: 0,
                to_run: mine.len() as u64,
                at_unix_ms: 1.0,
            },
            &mut journal,
        );
        for id in &mine {
            for e in [
                JournalEvent::CellStarted {
                    cell: id.clone(),
                    attempt: 1,
                    at_unix_ms: 2.0,
                },
                JournalEvent::CellCommitted {
                    cell: id.clone(),
                    attempt: 1,
                    cached: false,
                    at_unix_ms: 3.0,
                },
            ] {
                ev(&e, &mut journal);
            }
        }
        ev(
            &JournalEvent::Finished {
                run_id: format!("r{i}"),
                committed: mine.len() as u64,
                failed: 0,
                at_unix_ms: 4.0,
            },
            &mut journal,
        );
        write(&sdir.join("journal.jsonl"), &journal);
        let record = ShardRecord {
            index: i,
            count: 64,
            by: ShardBy::Comparison,
            work: split.work[i as usize],
            split: split.fingerprint().to_owned(),
            cells: mine,
            warmups: Vec::new(),
            host: "bench".into(),
            pid: 1,
            started_at_unix_ms: 1.0,
            slurm_job: Some(format!("1_{i}")),
        };
        write(
            &sdir.join("shard.json"),
            &serde_json::to_string(&record).expect("json"),
        );
    }
    write(&done, "");
    (data, cells.len())
}

/// 3. The status of 64 shards and 100,000 committed cells.
fn merge_cost() -> bool {
    let (data, cells) = merge_store();
    let (t, states) = best(3, || {
        chimera::store::shard_overview(&data, "merge").expect("overview")
    });
    let committed: usize = states.iter().map(|s| s.committed).sum();
    assert_eq!(
        committed, cells,
        "every generated cell is seen as committed"
    );
    assert!(states.iter().all(|s| s.word() == "done"));
    println!(
        "status of {} shards holding {committed} committed cells: {:.2} s (target < 2 s)",
        states.len(),
        t.as_secs_f64()
    );
    t < Duration::from_secs(2)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this as a test: skip there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let results = [
        ("split", split_cost()),
        ("balance", balance()),
        ("status", merge_cost()),
    ];
    let missed: Vec<&str> = results.iter().filter(|r| !r.1).map(|r| r.0).collect();
    if missed.is_empty() {
        println!("bench-shards: every target met");
    } else {
        println!("bench-shards: targets missed: {}", missed.join(", "));
    }
}
