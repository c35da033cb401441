//! A small TR114-shaped campaign (2 configurations × 2 repetitions, two agents on two emulator
//! listeners that share one emulated GPU) run end to end in memory.
//!
//! Two agents that share one GPU each take about twice as long together as alone: the
//! published efficiency (a balance ratio) says ~100 %, the honest one (against the agents run
//! alone) ~50 %. Token counts and TTFT must match the emulator's ground truth.

use std::collections::HashMap;

use arrow::array::{Array, StringArray};
use chimera::emulator::EmulatorHandle;
use chimera::record::{CellKind, CellRecord};
use chimera::run::{RunOptions, execute};

use crate::support::{
    Manifest, campaign, emulate, homo_config, shared_gpu_profile, try_campaign, write_file,
};

/// The shared-GPU emulator profile of the end-to-end runs (also used by analysis and openai).
pub(crate) fn profile() -> String {
    shared_gpu_profile(7)
}

pub(crate) fn manifest(a: std::net::SocketAddr, b: std::net::SocketAddr) -> String {
    Manifest::two_agent_workflow(
        "TR914",
        "TR114-shaped end-to-end check",
        [a, b],
        ["local:gpu0", "local:gpu0"],
        2,
    )
    .repetitions(2)
    .configurations(
        "workflow",
        "gemma3",
        &[
            homo_config("test100", "num_gpu: 80, num_ctx: 512"),
            homo_config("test103", "num_gpu: 80, num_ctx: 1024"),
        ],
    )
    .yaml()
}

/// The shared-GPU emulator on `listeners` listeners and a temporary directory.
async fn emulated(listeners: usize) -> (EmulatorHandle, tempfile::TempDir) {
    let emu = emulate(&profile(), listeners).await;
    (emu, tempfile::tempdir().expect("tempdir"))
}

/// The shared-GPU emulator on two listeners, a temporary directory, and the TR914 manifest
/// for that emulator.
async fn tr914() -> (EmulatorHandle, tempfile::TempDir, String) {
    let (emu, dir) = emulated(2).await;
    let text = manifest(emu.addrs[0], emu.addrs[1]);
    (emu, dir, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tr114_shaped_campaign_reports_published_and_honest_efficiency() {
    let (emu, dir, text) = tr914().await;
    let path = write_file(dir.path(), "tr914.yaml", &text);
    let plan = chimera::plan::build(&[path]).expect("plan");

    let (_tx, rx) = tokio::sync::watch::channel(false);
    let mut cells: Vec<CellRecord> = Vec::new();
    let failed = execute(
        &plan,
        &RunOptions::new(dir.path().join("work")),
        |c| {
            cells.push(c.clone());
            Ok(())
        },
        rx,
    )
    .await
    .expect("run");
    assert_eq!(
        failed,
        0,
        "{:#?}",
        cells.iter().filter(|c| !c.ok()).collect::<Vec<_>>()
    );

    let concurrent: Vec<&CellRecord> = cells
        .iter()
        .filter(|c| c.key.kind == CellKind::Concurrent)
        .collect();
    let isolated = cells
        .iter()
        .filter(|c| c.key.kind == CellKind::Isolated)
        .count();
    assert_eq!(concurrent.len(), 4, "2 configurations × 2 repetitions");
    assert_eq!(
        isolated, 8,
        "each agent alone, per configuration and repetition"
    );
    for c in &concurrent {
        let m = c.multi_agent.as_ref().expect("multi-agent metrics");
        let published = m.published_efficiency_pct.expect("published efficiency");
        let honest = m.true_efficiency_pct.expect("true efficiency");
        assert!(published > 90.0, "{}: published {published}", c.key.cell_id);
        assert!(
            (35.0..=65.0).contains(&honest),
            "{}: true {honest}",
            c.key.cell_id
        );
        assert_eq!(m.contention, Some(false));
        for a in &c.agents {
            assert_eq!(a.files_ingested, Some(6));
            assert!(a.server_version.is_some(), "provenance: server version");
            assert!(
                a.model_digest.as_deref().is_some_and(|d| d.len() == 64),
                "provenance: model digest"
            );
            assert_eq!(
                a.requests.iter().filter(|r| !r.warmup).count(),
                2,
                "analysis + report"
            );
        }
    }

    // Every request against the ground truth: on each listener requests arrive one at a time,
    // so the emulator's records in arrival order pair with the client's in execution order.
    let truth = emu.truth.records();
    let mut per_listener: HashMap<std::net::SocketAddr, Vec<_>> = HashMap::new();
    for t in &truth {
        per_listener.entry(t.listener).or_default().push(t);
    }
    for v in per_listener.values_mut() {
        v.sort_by(|x, y| x.received_unix_ms.total_cmp(&y.received_unix_ms));
    }
    let addr_of = |endpoint: &str| {
        if endpoint == "emu_a" {
            emu.addrs[0]
        } else {
            emu.addrs[1]
        }
    };
    let mut next: HashMap<std::net::SocketAddr, usize> = HashMap::new();
    let mut checked = 0;
    let mut diffs = Vec::new();
    for c in &cells {
        for a in &c.agents {
            for r in &a.requests {
                let addr = addr_of(&a.endpoint);
                let i = next.entry(addr).or_default();
                let t = per_listener[&addr][*i];
                *i += 1;
                assert_eq!(r.record.output_tokens, Some(u64::from(t.output_tokens)));
                let truth_ttft = t.first_chunk_offset_us.expect("first chunk") as f64 / 1000.0;
                let client_ttft = r.record.ttft_ms.expect("ttft");
                // The truth is stamped after the server's write returns; on a loaded 2-core
                // machine that stamp can come after the client already read the chunk, and a
                // stalled thread can delay either side, so single requests are checked loosely
                // and the median tightly (the tight bounds are measured by `make bench-harness`).
                let diff = (client_ttft - truth_ttft).abs();
                assert!(
                    diff < 500.0,
                    "client TTFT {client_ttft} vs truth {truth_ttft}"
                );
                diffs.push(diff);
                checked += 1;
            }
        }
    }
    diffs.sort_by(f64::total_cmp);
    let median = diffs[diffs.len() / 2];
    assert!(
        median < 25.0,
        "median |client TTFT − truth| {median} ms over {} requests: {diffs:?}",
        diffs.len()
    );
    assert!(
        checked >= 24,
        "checked {checked} requests against the truth"
    );
    emu.shutdown().await;
}

/// GPU telemetry flows from the sampler into the tables: with a deterministic fake GPU
/// (the test instrument for machines without one), every cell on `local:gpu0` gets its
/// aggregates in `cells` and its samples in `telemetry.parquet`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telemetry_aggregates_and_samples_reach_the_tables() {
    let (emu, dir, text) = tr914().await;
    let summary = campaign(dir.path(), "telemetry", &text, false, Some(1)).await;
    assert!(summary.failed.is_empty());
    let cells_dir = dir.path().join("data/telemetry/cells");
    let mut with_samples = 0;
    for entry in std::fs::read_dir(&cells_dir).expect("cells") {
        let cell = entry.expect("entry").path();
        if !cell.join("MANIFEST.json").exists() {
            continue;
        }
        let batches =
            chimera::table::read_parquet(&cell.join("cells.parquet")).expect("cells part");
        let b = &batches[0];
        for col in [
            "gpu_util_mean_pct",
            "power_mean_w",
            "energy_j",
            "mem_peak_mib",
        ] {
            let a = b.column_by_name(col).expect(col);
            assert_eq!(a.null_count(), 0, "{col} is null in {}", cell.display());
        }
        let t =
            chimera::table::read_parquet(&cell.join("telemetry.parquet")).expect("telemetry part");
        let rows: usize = t.iter().map(|b| b.num_rows()).sum();
        assert!(rows >= 2, "at least a start and an end sample, got {rows}");
        with_samples += 1;
    }
    let compacted = chimera::table::compact(&dir.path().join("data/telemetry")).expect("compact");
    assert!(
        compacted.rows_of("telemetry") >= 32,
        "telemetry compacted: {compacted:?}"
    );
    assert_eq!(
        with_samples, 16,
        "every cell (warm-ups included) on local:gpu0 is sampled"
    );
    let prov = chimera::table::read_parquet(&dir.path().join("data/telemetry/provenance.parquet"))
        .expect("provenance");
    assert!(
        prov.iter().map(|b| b.num_rows()).sum::<usize>() >= 2,
        "one row per endpoint × model"
    );
    emu.shutdown().await;
}

/// A second campaign on the same environment reuses every cell of the first from the shared
/// cache; a changed option changes the cell ids, so nothing stale is reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_campaign_reuses_cells_from_the_shared_cache() {
    let (emu, dir, text) = tr914().await;
    let first = campaign(dir.path(), "first", &text, true, None).await;
    assert_eq!((first.ran, first.cached), (16, 0));
    let second = campaign(dir.path(), "second", &text, true, None).await;
    assert_eq!(
        (second.ran, second.cached),
        (0, 16),
        "every cell adopted from the cache"
    );
    // One option changed: its configuration's cells (and warm-ups) are measured again.
    let changed = text.replace(
        "num_ctx: 1024}, B: {num_gpu: 80, num_ctx: 1024}",
        "num_ctx: 2048}, B: {num_gpu: 80, num_ctx: 2048}",
    );
    assert_ne!(changed, text);
    let third = campaign(dir.path(), "third", &changed, true, None).await;
    assert_eq!(
        third.cached, 8,
        "test100's cells and warm-ups are unchanged"
    );
    assert_eq!(third.ran, 8, "test103's cells and its two warm-ups are new");
    emu.shutdown().await;
}

/// The method section of `campaign`'s first report, and its cell sources.
fn method_of(
    data: &std::path::Path,
    campaign: &str,
) -> (String, chimera::analysis::model::CellSources) {
    let out = chimera::analysis::analyze(data, Some(campaign), None).expect("analyze");
    let (_, a) = &out[0];
    let r = &a.reports[0];
    let md = chimera::report::render_markdown(a, r, "figures");
    let method = md
        .split("## 2. Method")
        .nth(1)
        .and_then(|m| m.split("\n## ").next())
        .expect("a method section")
        .to_owned();
    (method, r.method.cells.clone().expect("cell sources"))
}

/// A campaign that adopts cells from the shared cache says so in its report's method section:
/// how many cells it measured, how many it adopted, from which campaign, measured when. So
/// does a campaign deleted and run again under its name (the cells come from its own earlier
/// life); `--force all` measures everything afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_report_names_the_campaign_its_adopted_cells_came_from() {
    let (emu, dir, text) = tr914().await;
    let data = dir.path().join("data");
    let first = campaign(dir.path(), "first", &text, true, None).await;
    assert_eq!((first.ran, first.cached), (16, 0));
    let (method, cells) = method_of(&data, "first");
    assert_eq!((cells.measured, cells.adopted), (16, 0), "{method}");
    assert!(
        method.contains("- Cells: all 16 measured by this campaign (`first`); none adopted"),
        "{method}"
    );

    let second = campaign(dir.path(), "second", &text, true, None).await;
    assert_eq!((second.ran, second.cached), (0, 16));
    let (method, cells) = method_of(&data, "second");
    assert_eq!((cells.measured, cells.adopted), (0, 16), "{method}");
    assert_eq!(cells.adopted_from.len(), 1);
    let from = &cells.adopted_from[0];
    assert_eq!((from.campaign.as_str(), from.cells), ("first", 16));
    let created = |name: &str| {
        chimera::store::open_existing(&data, name)
            .expect("campaign")
            .info()
            .created_at_unix_ms as i64
    };
    assert!(
        from.first_started_unix_ms >= created("first")
            && from.last_started_unix_ms < created("second"),
        "measured during the first campaign: {from:?}"
    );
    assert!(
        method.contains(
            "0 of 16 measured by this campaign (`second`), 16 adopted from the shared cache"
        ) && method.contains("16 from campaign `first`, measured "),
        "{method}"
    );
    assert!(method.contains("--force all"), "{method}");

    // Deleted and run again under the same name: every cell adopted from its earlier life.
    std::fs::remove_dir_all(data.join("first")).expect("rm -rf data/first");
    let again = campaign(dir.path(), "first", &text, true, None).await;
    assert_eq!((again.ran, again.cached), (0, 16));
    let (method, cells) = method_of(&data, "first");
    assert_eq!((cells.measured, cells.adopted), (0, 16), "{method}");
    assert!(
        method.contains("16 from an earlier campaign also named `first`, measured "),
        "{method}"
    );

    // `--force all` measures every cell afresh, without the shared cache.
    let fresh = try_campaign(dir.path(), "first", &text, |o| {
        o.use_cache = true;
        o.force = vec!["all".parse().expect("selector")];
    })
    .await
    .expect("forced campaign");
    assert_eq!((fresh.ran, fresh.cached), (16, 0));
    let (method, cells) = method_of(&data, "first");
    assert_eq!((cells.measured, cells.adopted), (16, 0), "{method}");
    emu.shutdown().await;
}

/// A model that is not on an endpoint stops the campaign before any cell, with the command
/// that fixes it; nothing is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_stops_the_campaign_with_the_pull_command() {
    let (emu, dir, text) = tr914().await;
    let text = text.replace("gemma3:270m", "gemma3:1b");
    let err = try_campaign(dir.path(), "missing", &text, |_| {})
        .await
        .expect_err("the model is missing");
    let msg = err.to_string();
    assert!(msg.contains("does not have model `gemma3:1b`"), "{msg}");
    assert!(
        msg.contains(&format!(
            "OLLAMA_HOST={} ollama pull gemma3:1b",
            emu.addrs[0]
        )),
        "{msg}"
    );
    let cells = std::fs::read_dir(dir.path().join("data/missing/cells"))
        .map(|d| d.filter_map(Result::ok).count())
        .unwrap_or(0);
    assert_eq!(cells, 0, "nothing committed");
    emu.shutdown().await;
}

/// Every measured request carries the client TTFT and, beside it, the TTFT as the report's
/// harness defined it: `load + prompt_eval` for the TR108 harness H1, the client TTFT itself
/// for a Rust harness.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_the_ttft_their_harness_published() {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Float64Type;
    let (emu, dir) = emulated(1).await;
    let h1 = crate::support::two_context_sizes("TR918", "published TTFT", emu.addrs[0], 1);
    for (name, text, harness) in [
        ("h1", h1.clone(), "H1"),
        ("h5", h1.replace("harness: H1", "harness: H5"), "H5"),
    ] {
        assert!(text.contains(&format!("harness: {harness}")));
        let s = campaign(dir.path(), name, &text, false, None).await;
        assert!(s.failed.is_empty(), "{name}: {:?}", s.failed);
        let t = chimera::table::compact(&dir.path().join("data").join(name)).expect("compact");
        assert!(t.rows_of("requests") >= 4, "{name}: {t:?}");
        let files = std::fs::read_dir(dir.path().join("data").join(name).join("cells"))
            .expect("cells")
            .map(|e| e.expect("entry").path().join("requests.parquet"))
            .filter(|p| p.exists());
        let mut measured = 0;
        for f in files {
            for b in chimera::table::read_parquet(&f).expect("requests part") {
                let col = |c: &str| b.column_by_name(c).expect(c).as_primitive::<Float64Type>();
                let (p, client, load, pe) = (
                    col("published_ttft_ms"),
                    col("ttft_ms"),
                    col("load_ms"),
                    col("prompt_eval_ms"),
                );
                let warmup = b.column_by_name("warmup").expect("warmup").as_boolean();
                for i in 0..b.num_rows() {
                    if warmup.value(i) {
                        continue;
                    }
                    assert!(client.is_valid(i) && p.is_valid(i), "{name} row {i}");
                    let want = if harness == "H1" {
                        load.value(i) + pe.value(i)
                    } else {
                        client.value(i)
                    };
                    assert!((p.value(i) - want).abs() < 1e-9, "{name} row {i}");
                    measured += 1;
                }
            }
        }
        assert_eq!(measured, 4, "{name}: 2 configurations × 2 prompts");
    }
    emu.shutdown().await;
}

/// The manifest's axes are columns of chimera's own runs: every cell and agent row of a block
/// named `runtimes` with `language: rust` and a `runtime` axis carries them, so a notebook
/// groups by runtime without parsing `config_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runtime_language_and_block_are_columns_of_a_run() {
    let (emu, dir) = emulated(2).await;
    let text = Manifest::two_agent_workflow(
        "TR915",
        "axes as columns",
        [emu.addrs[0], emu.addrs[1]],
        ["local:gpu0", "local:gpu1"],
        1,
    )
    .block(&format!(
        "name: runtimes\n  workload: workflow\n  model: gemma3\n  language: rust\n  \
         axes:\n    runtime: [tokio-default, smol]\n  id_template: \"{{runtime}}/{{id}}\"\n  \
         configurations:\n    - {}",
        homo_config("c", "num_ctx: 512")
    ))
    .yaml();
    let summary = campaign(dir.path(), "axes", &text, false, None).await;
    assert!(summary.failed.is_empty());
    let mut runtimes = Vec::new();
    for entry in std::fs::read_dir(dir.path().join("data/axes/cells")).expect("cells") {
        let cell = entry.expect("entry").path();
        let meta = std::fs::read_to_string(cell.join("MANIFEST.json")).unwrap_or_default();
        if meta.is_empty() || meta.contains("\"warmup\"") {
            continue; // in flight, or a warm-up: no configuration, no axes
        }
        for part in ["cells.parquet", "agents.parquet"] {
            for b in chimera::table::read_parquet(&cell.join(part)).expect(part) {
                let text = |col: &str| {
                    let a = b.column_by_name(col).expect(col);
                    let a = a.as_any().downcast_ref::<StringArray>().expect("utf8");
                    (0..a.len())
                        .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
                        .collect::<Vec<_>>()
                };
                let n = b.num_rows();
                assert_eq!(text("language"), vec![Some("rust".to_owned()); n], "{part}");
                assert_eq!(
                    text("block"),
                    vec![Some("runtimes".to_owned()); n],
                    "{part}"
                );
                assert_eq!(text("model"), vec![Some("gemma3:270m".to_owned()); n]);
                if part == "cells.parquet" {
                    let config = text("config_id");
                    for (r, c) in text("runtime").iter().zip(&config) {
                        let r = r.clone().expect("runtime");
                        assert_eq!(c.as_deref(), Some(format!("{r}/c").as_str()));
                        runtimes.push(r);
                    }
                }
            }
        }
    }
    runtimes.sort();
    runtimes.dedup();
    assert_eq!(runtimes, ["smol", "tokio-default"]);
    emu.shutdown().await;
}
