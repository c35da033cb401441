//! Measurement validity of the scheduler, read back from the committed Parquet tables: cells
//! that share an (emulated) GPU never overlap in time, and cells on different GPUs do run at
//! the same time.
//!
//! Two emulator processes (in-process instances) stand for two GPUs: each has two listeners
//! with `shared_gpu: true`, so both listeners of one instance share one decode budget, as two
//! Ollama servers on one GPU do. Four endpoints: two on `host:gpu0` (instance 1), two on
//! `host:gpu1` (instance 2); one `chimera_homo` scenario per GPU (3 configurations × 2
//! repetitions each). The campaign runs through `run_campaign` into a temporary store; the
//! `cells` parts give each cell's `started_at` (rounded to the millisecond) and `wall_ms`, the
//! `agents` parts its endpoints and hence its GPU.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampMillisecondType};
use chimera::store::open_existing;
use chimera::table::read_parquet;

use crate::support::{Manifest, campaign, emulate, shared_gpu_profile};

/// Slack for the millisecond rounding of `started_at` (wall_ms is exact).
const SLACK_MS: f64 = 1.0;

fn manifest(gpu0: &[SocketAddr], gpu1: &[SocketAddr]) -> String {
    let block = |scenario: &str, agents: &str, gpu: &str| {
        format!(
            "workload: one_prompt\n  model: gemma3\n  scenario: {scenario}\n  apply_to: [{agents}]\n  \
             axes: {{num_ctx: [512, 1024, 2048]}}\n  id_template: \"{gpu}_ctx{{num_ctx}}\""
        )
    };
    Manifest::new("TR990", "scheduler validity on two emulated GPUs")
        .emulator("g0a", gpu0[0], "host:gpu0")
        .emulator("g0b", gpu0[1], "host:gpu0")
        .emulator("g1a", gpu1[0], "host:gpu1")
        .emulator("g1b", gpu1[1], "host:gpu1")
        .model("gemma3", "gemma3:270m")
        .prompts("one_prompt", "H6v2", &["Say something short."])
        .homo("homo_gpu0", "chimera_homo", "g0a", "g0b")
        .scenario(
            "homo_gpu1",
            "chimera_homo",
            &[("C", "collector", "g1a"), ("D", "insight", "g1b")],
        )
        .repetitions(2)
        .block(&block("homo_gpu0", "A, B", "gpu0"))
        .block(&block("homo_gpu1", "C, D", "gpu1"))
        .yaml()
}

/// One committed cell as the tables tell it.
#[derive(Debug)]
struct Span {
    cell: String,
    kind: String,
    gpu: String,
    start_ms: f64,
    wall_ms: f64,
}

impl Span {
    fn end_ms(&self) -> f64 {
        self.start_ms + self.wall_ms
    }

    /// How long the two intervals overlap, ms (negative: the gap between them).
    fn overlap_ms(&self, other: &Span) -> f64 {
        self.end_ms().min(other.end_ms()) - self.start_ms.max(other.start_ms)
    }
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> &'a Arc<dyn Array> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column `{name}` missing"))
}

/// Reads every committed cell's `cells` and `agents` parts back.
fn read_spans(data: &std::path::Path, name: &str) -> Vec<Span> {
    let gpu_of = |endpoint: &str| match endpoint {
        "g0a" | "g0b" => "host:gpu0".to_owned(),
        "g1a" | "g1b" => "host:gpu1".to_owned(),
        other => panic!("unknown endpoint `{other}`"),
    };
    let view = open_existing(data, name).expect("open campaign");
    let committed = view.committed().expect("committed cells");
    assert!(committed.broken.is_empty(), "{:?}", committed.broken);
    let mut spans = Vec::new();
    for id in &committed.ids {
        let dir = committed.dir(id).expect("cell dir");
        let cells = read_parquet(&dir.join("cells.parquet")).expect("read cells part");
        let agents = read_parquet(&dir.join("agents.parquet")).expect("read agents part");
        let mut gpus = BTreeSet::new();
        for b in &agents {
            let ep = column(b, "endpoint").as_string::<i32>();
            for i in 0..b.num_rows() {
                gpus.insert(gpu_of(ep.value(i)));
            }
        }
        assert_eq!(gpus.len(), 1, "cell {id} spans GPUs {gpus:?}");
        let gpu = gpus.into_iter().next().expect("one GPU");
        let rows: usize = cells.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 1, "cell {id}: one `cells` row");
        let b = cells
            .iter()
            .find(|b| b.num_rows() == 1)
            .expect("the cells row");
        let started = column(b, "started_at").as_primitive::<TimestampMillisecondType>();
        let wall = column(b, "wall_ms").as_primitive::<Float64Type>();
        let kind = column(b, "kind").as_string::<i32>();
        let cell_id = column(b, "cell_id").as_string::<i32>();
        assert_eq!(cell_id.value(0), id);
        assert!(!started.is_null(0) && !wall.is_null(0));
        spans.push(Span {
            cell: id.clone(),
            kind: kind.value(0).to_owned(),
            gpu,
            start_ms: started.value(0) as f64,
            wall_ms: wall.value(0),
        });
    }
    spans.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cells_sharing_a_gpu_never_overlap_and_cells_on_different_gpus_do() {
    let gpu0 = emulate(&shared_gpu_profile(11), 2).await;
    let gpu1 = emulate(&shared_gpu_profile(11), 2).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let text = manifest(&gpu0.addrs, &gpu1.addrs);
    let data = dir.path().join("data");
    let name = "validity";
    let summary = campaign(dir.path(), name, &text, false, None).await;
    assert!(summary.failed.is_empty(), "{:#?}", summary.failed);
    assert_eq!(summary.blocked, 0);
    assert_eq!(summary.ran, summary.total);
    gpu0.shutdown().await;
    gpu1.shutdown().await;

    let spans = read_spans(&data, name);
    assert_eq!(spans.len(), summary.total, "every cell is in the tables");
    let mut per_gpu: HashMap<&str, Vec<&Span>> = HashMap::new();
    for s in &spans {
        per_gpu.entry(s.gpu.as_str()).or_default().push(s);
    }
    for gpu in ["host:gpu0", "host:gpu1"] {
        let cells = per_gpu.get(gpu).map_or(&[][..], Vec::as_slice);
        let kinds = |k: &str| cells.iter().filter(|s| s.kind == k).count();
        // 3 configurations × 2 repetitions: two isolated cells and one concurrent cell each.
        assert_eq!(kinds("isolated"), 12, "{gpu}: isolated cells");
        assert_eq!(kinds("concurrent"), 6, "{gpu}: concurrent cells");
        for s in cells {
            assert!(
                s.wall_ms > 0.0 && s.wall_ms < 5_000.0,
                "{gpu}: cell {} ({}) wall {} ms",
                s.cell,
                s.kind,
                s.wall_ms
            );
        }
    }
    let concurrent_walls: Vec<f64> = spans
        .iter()
        .filter(|s| s.kind == "concurrent")
        .map(|s| s.wall_ms)
        .collect();
    assert!(
        concurrent_walls
            .iter()
            .all(|w| (100.0..=1_000.0).contains(w)),
        "concurrent cells should take ~200 ms: {concurrent_walls:?}"
    );

    // Same GPU: never at the same time.
    for (gpu, cells) in &per_gpu {
        for (i, a) in cells.iter().enumerate() {
            for b in &cells[i + 1..] {
                let o = a.overlap_ms(b);
                assert!(
                    o <= SLACK_MS,
                    "{gpu}: cells {} ({}, {:.1}..{:.1}) and {} ({}, {:.1}..{:.1}) overlap by {o:.1} ms",
                    a.cell,
                    a.kind,
                    a.start_ms,
                    a.end_ms(),
                    b.cell,
                    b.kind,
                    b.start_ms,
                    b.end_ms()
                );
            }
        }
    }

    // Different GPUs: some cells ran in parallel (by clearly more than the rounding slack).
    let g0 = per_gpu.get("host:gpu0").map_or(&[][..], Vec::as_slice);
    let g1 = per_gpu.get("host:gpu1").map_or(&[][..], Vec::as_slice);
    let parallel = g0
        .iter()
        .flat_map(|a| g1.iter().map(move |b| a.overlap_ms(b)))
        .filter(|&o| o > 20.0)
        .count();
    let busy = |v: &[&Span]| v.iter().map(|s| s.wall_ms).sum::<f64>();
    let first = spans.first().map_or(0.0, |s| s.start_ms);
    let last = spans.iter().map(Span::end_ms).fold(first, f64::max);
    assert!(
        parallel > 0,
        "no cell on gpu0 overlapped a cell on gpu1 by more than 20 ms: the GPUs ran one after the other \
         (span {:.0} ms, busy gpu0 {:.0} ms + gpu1 {:.0} ms)",
        last - first,
        busy(g0),
        busy(g1)
    );
    // And they ran side by side throughout, not in one stretch: most cells of each GPU overlap
    // a cell of the other. (Counted, not timed: a loaded machine stretches every cell and the
    // gaps between them, but two queues served in parallel still overlap cell by cell.)
    let overlapping = |mine: &[&Span], other: &[&Span]| {
        mine.iter()
            .filter(|a| other.iter().any(|b| a.overlap_ms(b) > 20.0))
            .count()
    };
    for (name, mine, other) in [("gpu0", g0, g1), ("gpu1", g1, g0)] {
        assert!(
            2 * overlapping(mine, other) >= mine.len(),
            "only {} of {} cells on {name} overlapped a cell on the other GPU \
             (span {:.0} ms, busy gpu0 {:.0} ms + gpu1 {:.0} ms)",
            overlapping(mine, other),
            mine.len(),
            last - first,
            busy(g0),
            busy(g1)
        );
    }
}
