//! Self-checks that invalidate a cell (`src/record/checks.rs`): each one provoked on the
//! emulator, the cell marked suspect with its reason, left out of the analysis and listed in
//! the report.

use std::path::Path;

use chimera::table::CellsRow;

use crate::command::rows;
use crate::support::{Manifest, campaign, emulate, homo_config, single_config, try_campaign};

/// The campaign's cells that are suspect, with their reasons.
fn suspects(campaign: &Path) -> Vec<(CellsRow, String)> {
    rows::<CellsRow>(campaign)
        .into_iter()
        .filter(|c| c.suspect == Some(true))
        .map(|c| {
            let why = c.suspect_reasons.clone().unwrap_or_default();
            (c, why)
        })
        .collect()
}

/// The analysis and the report of campaign `name` under `data`.
fn report_of(data: &Path, name: &str) -> (chimera::analysis::model::ReportAnalysis, String) {
    let mut done = chimera::analysis::analyze(data, Some(name), None).expect("analyze");
    let (dir, a) = done.remove(0);
    let out = dir.join("report");
    let written = chimera::report::write_reports(&a, &out).expect("report");
    let md = std::fs::read_to_string(written[0].markdown.as_ref().expect("md")).expect("markdown");
    (a.reports[0].clone(), md)
}

/// GPU throttling: fake GPUs that report a power cap (NVML `0x4`) in every sample make every
/// measured cell suspect; the same campaign without it has none. The analysis leaves the
/// suspect runs out, the report lists them and warns at its top.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_power_capped_gpu_makes_its_cells_suspect() {
    let emu = emulate(&crate::support::fast_profile(11), 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let text = Manifest::single_inference("TR960", "throttle check", emu.addrs[0], &["one", "two"])
        .repetitions(2)
        .configurations("prompts", "gemma3", &[single_config("s1", "num_ctx: 512")])
        .yaml();
    let calm = campaign(d, "calm", &text, false, Some(1)).await;
    assert!(calm.failed.is_empty(), "{:?}", calm.failed);
    assert!(suspects(&d.join("data/calm")).is_empty());
    let capped = try_campaign(d, "capped", &text, |o| {
        o.fake_gpus = Some(1);
        o.fake_gpu_throttle = 0x4;
    })
    .await
    .expect("campaign");
    assert!(capped.failed.is_empty(), "{:?}", capped.failed);
    let s = suspects(&d.join("data/capped"));
    assert_eq!(s.len(), 2, "both runs are suspect: {s:?}");
    for (_, why) in &s {
        assert!(
            why.starts_with("GPU throttled: sw_power_cap on GPU 0 in "),
            "{why}"
        );
    }

    let (r, md) = report_of(&d.join("data"), "capped");
    assert_eq!(r.counts.runs_ok, 0, "suspect runs are left out");
    assert_eq!(r.counts.runs_suspect, 2);
    assert_eq!(r.suspect.len(), 2);
    assert!(
        md.contains(
            "**Self-checks.** Self-checks failed often: 2 of 2 measured cells (100 %) are suspect"
        ),
        "{md}"
    );
    assert!(md.contains("Suspect cells"), "{md}");
    assert!(md.contains("GPU throttled: sw_power_cap"), "{md}");
    // Asked for, they are kept.
    let kept = chimera::analysis::analyze_with(
        &d.join("data"),
        Some("capped"),
        None,
        chimera::analysis::AnalyzeOptions {
            include_suspect: true,
        },
    )
    .expect("analyze");
    assert_eq!(kept[0].1.reports[0].counts.runs_ok, 2);
    let (calm, md) = report_of(&d.join("data"), "calm");
    assert_eq!(calm.counts.runs_ok, 2);
    assert!(!md.contains("Suspect cells"), "{md}");
    emu.shutdown().await;
}

/// A reload inside measured requests: another client of the server unloads the model again
/// and again (`keep_alive: 0`) while a single-agent campaign runs, so its measured requests
/// wait 300 ms each for a reload and its cells are suspect. A baseline and a tuned agent
/// sharing one endpoint (a TR109-shaped cell) reload by design and are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_reloaded_inside_measured_requests_makes_the_cell_suspect() {
    let profile = crate::support::fast_profile(12).replace("load_ms: 2", "load_ms: 300");
    let emu = emulate(&profile, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let by_design = Manifest::new("TR961", "reload check")
        .emulator("emu", emu.addrs[0], "local:gpu0")
        .model("gemma3", "gemma3:270m")
        .prompts("prompts", "H1", &["one", "two", "three"])
        .homo("both", "chimera_hetero", "emu", "emu")
        .configurations(
            "prompts",
            "gemma3",
            &[
                "{id: mixed, scenario: both, options: {A: {num_ctx: 512}, B: {num_ctx: 1024}}}"
                    .to_owned(),
            ],
        )
        .yaml();
    let summary = campaign(d, "design", &by_design, false, None).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let loads: Vec<f64> = rows::<chimera::table::RequestsRow>(&d.join("data/design"))
        .iter()
        .filter(|r| !r.warmup)
        .filter_map(|r| r.load_ms)
        .collect();
    assert!(
        loads.iter().any(|l| *l > 250.0),
        "the agents reload: {loads:?}"
    );
    assert!(suspects(&d.join("data/design")).is_empty(), "by design");

    // Another client unloads the model every 20 ms.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let unloader = {
        let stop = stop.clone();
        let url = format!("http://{}/api/generate", emu.addrs[0]);
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = client
                    .post(&url)
                    .body(r#"{"model":"gemma3:270m","prompt":"","keep_alive":0}"#)
                    .send()
                    .await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let text = Manifest::single_inference(
        "TR961",
        "reload check",
        emu.addrs[0],
        &["a", "b", "c", "d", "e", "f"],
    )
    .repetitions(2)
    .configurations("prompts", "gemma3", &[single_config("s1", "num_ctx: 512")])
    .yaml();
    let summary = campaign(d, "reload", &text, false, None).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    unloader.await.expect("unloader");
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let s = suspects(&d.join("data/reload"));
    assert_eq!(s.len(), 2, "both runs reloaded: {s:?}");
    for (_, why) in &s {
        assert!(
            why.contains("model reload: agent client's request "),
            "{why}"
        );
        assert!(
            why.contains("for the model to load (bound 250 ms)"),
            "{why}"
        );
    }
    emu.shutdown().await;
}

/// A skewed start: agent B's program waits half a second before its first request, so the
/// two agents of each concurrent cell did not run together; those cells are suspect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_that_start_apart_make_the_cell_suspect() {
    let agent = crate::support::rust_agent();
    let emu = emulate(&crate::support::fast_profile(13), 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = Manifest::two_agent_workflow(
        "TR962",
        "start skew check",
        [emu.addrs[0], emu.addrs[1]],
        ["local:gpu0", "local:gpu1"],
        1,
    )
    .configurations("workflow", "gemma3", &[homo_config("c1", "num_ctx: 512")])
    .yaml();
    let script = format!(
        "if [ \\\"{{agent}}\\\" = B ]; then sleep 0.5; fi; exec '{}' --job '{{job}}'",
        agent.display()
    );
    let text = text.replacen(
        "  - id: workflow\n",
        &format!("  - id: workflow\n    command: {{argv: [sh, -c, \"{script}\"]}}\n"),
        1,
    );
    let summary = campaign(dir.path(), "skew", &text, false, None).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let cells = rows::<CellsRow>(&dir.path().join("data/skew"));
    let conc: Vec<&CellsRow> = cells
        .iter()
        .filter(|c| c.kind == chimera::record::CellKind::Concurrent)
        .collect();
    assert_eq!(conc.len(), 1);
    let skew = conc[0].first_request_skew_ms.expect("skew measured");
    assert!(skew >= 450.0, "B waited 500 ms: skew {skew}");
    assert_eq!(conc[0].suspect, Some(true));
    let why = conc[0].suspect_reasons.clone().unwrap_or_default();
    assert!(
        why.starts_with("start skew: the agents sent their first requests "),
        "{why}"
    );
    // The isolated baselines ran alone: nothing to skew.
    assert!(
        cells
            .iter()
            .filter(|c| c.kind == chimera::record::CellKind::Isolated)
            .all(|c| c.suspect == Some(false))
    );
    emu.shutdown().await;
}

/// Equal work: with a seeded spread of reply lengths (5–60 tokens at 100 tok/s) on one emulated GPU that
/// shares its decode rate between streams, the isolated and the concurrent runs generate
/// different numbers of tokens. The duration-based true efficiency swings with them; the
/// equal-work one stays within 2 points of the emulator's ground truth: the time the
/// emulator's timing model gives the cell's requests alone (their tokens at the model's
/// rates, from the ground-truth log) over the wall, / 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn equal_work_efficiency_holds_where_durations_swing() {
    let profile = "
seed: 21
shared_gpu: true
models:
  - name: gemma3:270m
    load_ms: 0
    prompt_tok_s: 1000000
    output_tok_s: 100
    output_tokens_range: [5, 60]
";
    let emu = emulate(profile, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = Manifest::two_agent_workflow(
        "TR963",
        "equal work check",
        [emu.addrs[0], emu.addrs[1]],
        ["local:gpu0", "local:gpu0"],
        1,
    )
    .repetitions(4)
    .configurations(
        "workflow",
        "gemma3",
        &[
            homo_config("c1", "num_ctx: 512"),
            homo_config("c2", "num_ctx: 1024"),
        ],
    )
    .yaml();
    let summary = campaign(dir.path(), "eq", &text, false, None).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let truth = emu.truth.records();
    let cells = rows::<CellsRow>(&dir.path().join("data/eq"));
    let conc: Vec<&CellsRow> = cells
        .iter()
        .filter(|c| c.kind == chimera::record::CellKind::Concurrent)
        .collect();
    assert_eq!(conc.len(), 8);
    let mut lines = Vec::new();
    let (mut worst, mut lo, mut hi) = (0.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for c in &conc {
        let start = c.started_at.0 as f64;
        let end = start + c.wall_ms;
        // The cell's requests as the emulator served them, and their time alone.
        let alone_ms: f64 = truth
            .iter()
            .filter(|t| t.received_unix_ms >= start - 1.0 && t.received_unix_ms <= end)
            .map(|t| {
                f64::from(t.output_tokens) / 100.0 * 1000.0
                    + f64::from(t.prompt_tokens) / 1_000_000.0 * 1000.0
            })
            .sum();
        let truth_pct = alone_ms / c.wall_ms / 2.0 * 100.0;
        let equal = c.equal_work_efficiency_pct.expect("equal work");
        let by_durations = c.true_efficiency_pct.expect("true");
        lines.push(format!(
            "{} rep {}: truth {truth_pct:.1} %, equal work {equal:.1} %, by durations {by_durations:.1} %",
            c.config_id.as_deref().unwrap_or(""),
            c.repetition
        ));
        worst = worst.max((equal - truth_pct).abs());
        lo = lo.min(by_durations - truth_pct);
        hi = hi.max(by_durations - truth_pct);
    }
    let lines = lines.join("\n");
    eprintln!("{lines}");
    assert!(
        worst <= 2.0,
        "equal work off the truth by {worst:.2} pp\n{lines}"
    );
    assert!(
        hi - lo >= 10.0,
        "the duration-based efficiency should swing\n{lines}"
    );
    assert!(lo.abs().max(hi.abs()) > 5.0, "{lines}");
    emu.shutdown().await;
}

/// A model re-pulled mid-campaign: after 6 requests the emulator reports another digest for
/// the model, and every later cell is suspect; the earlier ones are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_digest_change_mid_campaign_makes_the_later_cells_suspect() {
    let profile = format!(
        "{}    redigest_after: 6\n",
        crate::support::fast_profile(22)
    );
    let emu = emulate(&profile, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = Manifest::single_inference("TR964", "digest check", emu.addrs[0], &["one", "two"])
        .repetitions(5)
        .configurations("prompts", "gemma3", &[single_config("s1", "num_ctx: 512")])
        .yaml();
    let summary = campaign(dir.path(), "digest", &text, false, None).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let mut cells: Vec<CellsRow> = rows::<CellsRow>(&dir.path().join("data/digest"))
        .into_iter()
        .filter(|c| c.kind == chimera::record::CellKind::Single)
        .collect();
    cells.sort_by_key(|c| c.repetition);
    // 1 warm-up request, then 2 per run: the 6th request is the second of run 3, so the
    // digest read after run 3 is the new one.
    let flags: Vec<Option<bool>> = cells.iter().map(|c| c.suspect).collect();
    assert_eq!(
        flags,
        [Some(false), Some(false), Some(true), Some(true), Some(true)],
        "{cells:#?}"
    );
    let why = cells[2].suspect_reasons.clone().unwrap_or_default();
    assert!(
        why.starts_with("model digest: agent client's server (emu) now serves gemma3:270m as "),
        "{why}"
    );
    emu.shutdown().await;
}
