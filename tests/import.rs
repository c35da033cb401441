//! `chimera import chimeraforge`: the original raw results (fixtures in
//! `../shared/fixtures/chimeraforge`, or `$CHIMERA_FIXTURES`) imported into campaigns and read
//! back from the committed Parquet parts; damaged inputs refused with messages naming the file.
//! Tests that need the fixtures print a skip message and pass when they are absent.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, UInt32Type};
use chimera::import::{ImportError, ImportOptions, ImportSummary, import_chimeraforge};
use chimera::store::{Campaign, CampaignInfo, JournalEvent, ManifestEntry};

use crate::support::{chimera, root};

/// The fixtures root and a new temporary directory, or `None` (with a skip message) when
/// the fixtures are not there.
pub(crate) fn fixtures_and_tmp(test: &str) -> Option<(PathBuf, tempfile::TempDir)> {
    let fx = fixtures(test)?;
    Some((fx, tempfile::tempdir().expect("tempdir")))
}

/// The fixtures root, or `None` (with a skip message) when it is not there;
/// `CHIMERA_REQUIRE_FIXTURES=1` turns the skip into a failure.
pub(crate) fn fixtures(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("CHIMERA_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/fixtures/chimeraforge"));
    if dir.join("tr114_v2").is_dir() {
        Some(dir)
    } else {
        skip(
            test,
            &format!(
                "no chimeraforge fixtures at {} (set CHIMERA_FIXTURES)",
                dir.display()
            ),
        )
    }
}

/// Skips `test` for `why`, or fails it when `CHIMERA_REQUIRE_FIXTURES=1`.
pub(crate) fn skip<T>(test: &str, why: &str) -> Option<T> {
    assert!(
        std::env::var_os("CHIMERA_REQUIRE_FIXTURES").is_none_or(|v| v != "1"),
        "{test}: {why}, and CHIMERA_REQUIRE_FIXTURES=1"
    );
    eprintln!("skipping {test}: {why}");
    None
}

pub(crate) fn opts(source: &Path, manifest: &str, data: &Path) -> ImportOptions {
    ImportOptions {
        source: source.to_path_buf(),
        manifest: root().join("experiments").join(manifest),
        data: data.to_path_buf(),
        campaign: None,
    }
}

pub(crate) fn import(source: &Path, manifest: &str, data: &Path) -> ImportSummary {
    import_chimeraforge(&opts(source, manifest, data)).unwrap_or_else(|e| panic!("import: {e}"))
}

/// The fixture folder `folder` imported with `manifest` into a new temporary directory (kept
/// alive by the caller), or `None` (with a skip message) when the fixtures are not there.
fn fixture_imported(
    test: &str,
    folder: &str,
    manifest: &str,
) -> Option<(tempfile::TempDir, ImportSummary)> {
    let (fx, tmp) = fixtures_and_tmp(test)?;
    let s = import(&fx.join(folder), manifest, tmp.path());
    Some((tmp, s))
}

pub(crate) fn import_err(source: &Path, manifest: &str, data: &Path) -> String {
    match import_chimeraforge(&opts(source, manifest, data)) {
        Ok(s) => panic!("expected an error, got:\n{}", s.render()),
        Err(e) => e.to_string(),
    }
}

/// Every committed part `name` of a campaign, one batch list per cell, in cell-id order.
pub(crate) fn parts(campaign: &Path, name: &str) -> Vec<RecordBatch> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(campaign.join("cells"))
        .expect("cells dir")
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.iter()
        .flat_map(|d| chimera::table::read_parquet(&d.join(name)).expect("read part"))
        .collect()
}

pub(crate) fn strs(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(col).expect("column");
    let a = a.as_string::<i32>();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i).to_owned()))
        .collect()
}

fn f64s(b: &RecordBatch, col: &str) -> Vec<Option<f64>> {
    let a = b.column_by_name(col).expect("column");
    let a = a.as_primitive::<Float64Type>();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect()
}

fn bools(b: &RecordBatch, col: &str) -> Vec<Option<bool>> {
    let a = b.column_by_name(col).expect("column");
    let a = a.as_boolean();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect()
}

/// One row per cell: (cell id, config, repetition, published efficiency, contention).
pub(crate) type CellRow = (String, String, u32, Option<f64>, Option<bool>);

pub(crate) fn cell_rows(campaign: &Path) -> Vec<CellRow> {
    let mut out = Vec::new();
    for b in parts(campaign, "cells.parquet") {
        let ids = strs(&b, "cell_id");
        let cfg = strs(&b, "config_id");
        let rep = b.column_by_name("repetition").expect("repetition");
        let rep = rep.as_primitive::<UInt32Type>();
        let eff = f64s(&b, "published_efficiency_pct");
        let cont = bools(&b, "contention");
        for i in 0..b.num_rows() {
            out.push((
                ids[i].clone().unwrap_or_default(),
                cfg[i].clone().unwrap_or_default(),
                rep.value(i),
                eff[i],
                cont[i],
            ));
        }
    }
    out
}

pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn sample_sd(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

pub(crate) fn round(x: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (x * p).round() / p
}

#[test]
fn tr114_v2_reproduces_the_published_efficiency_and_reimports_idempotently() {
    let Some((fx, tmp)) = fixtures_and_tmp("tr114_v2 import") else {
        return;
    };
    let data = tmp.path().join("data");
    let s = import(&fx.join("tr114_v2"), "tr114.yaml", &data);
    assert_eq!(s.report, "TR114_v2");
    assert_eq!(s.campaign, "chimeraforge-tr114");
    assert_eq!((s.runs, s.committed, s.already_committed), (135, 135, 0));
    assert_eq!(s.per_config.len(), 27);
    assert!(s.per_config.values().all(|&n| n == 5));
    assert_eq!(s.files, 135 + 27, "135 runs and 27 summary.json");
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert!(s.render().contains("chimeraforge-tr114"), "{}", s.render());

    let rows = cell_rows(&s.campaign_dir);
    assert_eq!(rows.len(), 135);
    let ids: HashSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids.len(), 135, "135 distinct cells");
    // Every id is the planned concurrent cell of (configuration, repetition).
    let plan = chimera::plan::build(&[root().join("experiments/tr114.yaml")]).expect("plan");
    for (id, cfg, rep, _, _) in &rows {
        let planned = plan
            .graph
            .node_weights()
            .find(|n| {
                n.kind == chimera::plan::NodeKind::Concurrent
                    && *plan.cell_config(n).id == **cfg
                    && n.repetition == *rep
            })
            .map(|n| n.id.hex());
        assert_eq!(planned.as_deref(), Some(id.as_str()), "{cfg} run {rep}");
    }

    let eff: Vec<f64> = rows.iter().filter_map(|r| r.3).collect();
    assert_eq!(eff.len(), 135);
    assert_eq!(round(mean(&eff), 3), 98.281, "overall mean {}", mean(&eff));
    let t011: Vec<f64> = rows
        .iter()
        .filter(|r| r.1 == "test011")
        .filter_map(|r| r.3)
        .collect();
    assert_eq!(round(mean(&t011), 3), 99.396);
    let max = rows
        .iter()
        .filter(|r| r.3.is_some())
        .max_by(|a, b| a.3.unwrap_or(0.0).total_cmp(&b.3.unwrap_or(0.0)))
        .expect("max");
    assert_eq!(
        (max.1.as_str(), round(max.3.unwrap_or(0.0), 3)),
        ("test108", 99.992)
    );
    assert_eq!(rows.iter().filter(|r| r.4 == Some(true)).count(), 1);
    let contended = rows.iter().find(|r| r.4 == Some(true)).expect("contention");
    assert_eq!(contended.1, "test005");

    // Agents and requests: two agents per cell, two calls each, as recorded.
    let agents: usize = parts(&s.campaign_dir, "agents.parquet")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    let requests: usize = parts(&s.campaign_dir, "requests.parquet")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!((agents, requests), (270, 540));

    // The manifest's axes are columns of `cells` and `agents`: each block is named after its
    // scenario (`chimera-homo` → `chimera_homo`), every block sets `language: rust`, none a runtime.
    for table in ["cells.parquet", "agents.parquet"] {
        for b in parts(&s.campaign_dir, table) {
            let blocks = strs(&b, "block");
            assert!(
                strs(&b, "language")
                    .iter()
                    .all(|l| l.as_deref() == Some("rust"))
            );
            assert!(strs(&b, "runtime").iter().all(Option::is_none), "{table}");
            let harness = strs(&b, "harness");
            assert!(
                harness.iter().all(|h| h.as_deref() == Some("H6v2")),
                "{table}"
            );
            if table == "cells.parquet" {
                let scenarios = strs(&b, "scenario");
                let named = |s: &Option<String>| s.as_ref().map(|s| s.replace('-', "_"));
                assert_eq!(blocks, scenarios.iter().map(named).collect::<Vec<_>>());
            }
            let names: HashSet<_> = blocks.iter().flatten().map(String::as_str).collect();
            assert!(
                names.is_subset(&HashSet::from([
                    "baseline_vs_chimera",
                    "chimera_hetero",
                    "chimera_homo"
                ])),
                "{names:?}"
            );
        }
    }

    // The campaign says where its numbers came from.
    let info = chimera::store::open_existing(&data, "chimeraforge-tr114").expect("campaign");
    let origin = info.info().origin.clone().expect("origin");
    assert_eq!((origin.format.as_str(), origin.runs), ("chimeraforge", 135));

    // Re-import: everything is already committed, nothing is rewritten.
    let again = import(&fx.join("tr114_v2"), "tr114.yaml", &data);
    assert_eq!((again.committed, again.already_committed), (0, 135));
    let committed = info
        .journal_events()
        .expect("journal")
        .iter()
        .filter(|e| matches!(e, JournalEvent::CellCommitted { .. }))
        .count();
    assert_eq!(
        committed, 135,
        "one committed event per cell, none on re-import"
    );
    assert_eq!(cell_rows(&s.campaign_dir).len(), 135);
}

#[test]
fn tr110_reproduces_the_per_test_and_overall_means() {
    let Some((_tmp, s)) = fixture_imported("tr110 import", "tr110", "tr110.yaml") else {
        return;
    };
    assert_eq!(s.runs, 150);
    assert_eq!(s.per_config.len(), 30);
    let rows = cell_rows(&s.campaign_dir);
    assert_eq!(rows.len(), 150);
    let eff: Vec<f64> = rows.iter().filter_map(|r| r.3).collect();
    assert_eq!(round(mean(&eff), 2), 93.21, "overall {}", mean(&eff));
    let t108: Vec<f64> = rows
        .iter()
        .filter(|r| r.1 == "test108")
        .filter_map(|r| r.3)
        .collect();
    assert_eq!(round(mean(&t108), 2), 99.25);
    // tr-spec §4.4: contention in 10 bvc runs and 7 hetero runs.
    assert_eq!(rows.iter().filter(|r| r.4 == Some(true)).count(), 17);
    // Aggregates only: no request rows, SDs not recorded (NaN).
    let agents = parts(&s.campaign_dir, "agents.parquet");
    assert!(agents.iter().all(|b| {
        f64s(b, "throughput_sd_tok_s")
            .iter()
            .all(|x| x.is_some_and(f64::is_nan))
    }));
    let requests: usize = parts(&s.campaign_dir, "requests.parquet")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(requests, 0);
}

#[test]
fn tr111_v2_baseline_agent_matches_the_report() {
    let Some((_tmp, s)) = fixture_imported("tr111_v2 import", "tr111_v2", "tr111.yaml") else {
        return;
    };
    assert_eq!(s.runs, 57);
    assert_eq!(s.per_config.len(), 19);
    assert!(s.per_config.values().all(|&n| n == 3));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // The baseline agent of baseline_default: 3 runs × 2 calls (tr-spec §5.5).
    let cells: HashSet<String> = cell_rows(&s.campaign_dir)
        .into_iter()
        .filter(|r| r.1 == "baseline_default")
        .map(|r| r.0)
        .collect();
    assert_eq!(cells.len(), 3);
    let mut tps = Vec::new();
    for b in parts(&s.campaign_dir, "requests.parquet") {
        let (ids, agent, tp) = (
            strs(&b, "cell_id"),
            strs(&b, "agent"),
            f64s(&b, "throughput_tok_s"),
        );
        for i in 0..b.num_rows() {
            if cells.contains(ids[i].as_deref().unwrap_or(""))
                && agent[i].as_deref() == Some("baseline")
            {
                tps.push(tp[i].expect("throughput"));
            }
        }
    }
    assert_eq!(tps.len(), 6);
    assert_eq!(round(mean(&tps), 2), 114.54);
    assert_eq!(round(sample_sd(&tps), 2), 2.97);
}

#[test]
fn tr109_single_agent_runs_carry_aggregates_only() {
    let Some((_tmp, s)) = fixture_imported("tr109 import", "tr109", "tr109.yaml") else {
        return;
    };
    assert_eq!(s.runs, 18);
    let cell = cell_rows(&s.campaign_dir)
        .into_iter()
        .find(|r| r.1 == "gpu60_ctx512_temp0p8")
        .expect("cell")
        .0;
    let mut chimera_tp = None;
    for b in parts(&s.campaign_dir, "agents.parquet") {
        let (ids, agent, tp, sd) = (
            strs(&b, "cell_id"),
            strs(&b, "agent"),
            f64s(&b, "throughput_mean_tok_s"),
            f64s(&b, "throughput_sd_tok_s"),
        );
        for i in 0..b.num_rows() {
            if ids[i].as_deref() == Some(cell.as_str()) && agent[i].as_deref() == Some("chimera") {
                chimera_tp = tp[i];
                assert!(sd[i].is_some_and(f64::is_nan), "SD not recorded");
                // tr-spec §3.5: chimera TTFT 448.95 ms, from server timings: published, not
                // a client TTFT.
                let published = f64s(&b, "published_ttft_mean_ms")[i];
                assert_eq!(published.map(|x| round(x, 2)), Some(448.95));
                assert_eq!(f64s(&b, "ttft_mean_ms")[i], None);
            }
        }
    }
    assert_eq!(chimera_tp.map(|x| round(x, 2)), Some(101.08));
    // The manifest lists chimera first: B − A = baseline − chimera = −2.18 tok/s.
    for b in parts(&s.campaign_dir, "cells.parquet") {
        let (ids, tp) = (strs(&b, "cell_id"), f64s(&b, "throughput_delta_tok_s"));
        if ids[0].as_deref() == Some(cell.as_str()) {
            assert_eq!(tp[0].map(|x| round(x, 2)), Some(-2.18));
        }
    }
}

#[test]
fn tr108_every_csv_row_maps_onto_a_configuration() {
    let Some((_tmp, s)) = fixture_imported("tr108 import", "tr108", "tr108.yaml") else {
        return;
    };
    // 6 Part A cells (5 prompts each) + 144 Part B cells (1 request each).
    assert_eq!(s.runs, 150);
    let requests: usize = parts(&s.campaign_dir, "requests.parquet")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(requests, 174, "tr-spec §2.1: 174 result rows");
    assert!(
        s.notes.iter().any(|n| n.contains("174 CSV result rows")),
        "{:?}",
        s.notes
    );
    // The two gemma3:270m cells that timed out are failed cells.
    let mut failed = BTreeMap::new();
    for b in parts(&s.campaign_dir, "cells.parquet") {
        let (cfg, status, kind) = (
            strs(&b, "config_id"),
            strs(&b, "status"),
            strs(&b, "error_kind"),
        );
        if status[0].as_deref() == Some("failed") {
            failed.insert(cfg[0].clone().unwrap_or_default(), kind[0].clone());
        }
    }
    assert_eq!(
        failed.keys().cloned().collect::<Vec<_>>(),
        [
            "gemma3_270m_gpu60_ctx1024_temp0p2",
            "gemma3_270m_gpu60_ctx1024_temp0p4"
        ]
    );
    assert!(failed.values().all(|k| k.as_deref() == Some("timeout")));
    // Llama q4_0 Part A: mean 76.59 tok/s over the 5 prompts (tr-spec §2.4).
    let cell = cell_rows(&s.campaign_dir)
        .into_iter()
        .find(|r| r.1 == "baseline_llama31_q4_0")
        .expect("cell")
        .0;
    for b in parts(&s.campaign_dir, "agents.parquet") {
        let (ids, tp) = (strs(&b, "cell_id"), f64s(&b, "throughput_mean_tok_s"));
        if ids[0].as_deref() == Some(cell.as_str()) {
            assert_eq!(tp[0].map(|x| round(x, 2)), Some(76.59));
            // TR108's TTFT (load + prompt eval, mean 0.0973 s) is the published TTFT; no
            // client TTFT was measured.
            let published = f64s(&b, "published_ttft_mean_ms")[0];
            assert_eq!(published.map(|x| round(x, 1)), Some(97.3));
            assert_eq!(f64s(&b, "ttft_mean_ms")[0], None);
        }
    }
    // Row by row: published TTFT = the CSV's ttft_s = load_s + prompt_eval_s (tr-spec §2.3).
    let mut checked = 0;
    for b in parts(&s.campaign_dir, "requests.parquet") {
        let (p, load, pe, client) = (
            f64s(&b, "published_ttft_ms"),
            f64s(&b, "load_ms"),
            f64s(&b, "prompt_eval_ms"),
            f64s(&b, "ttft_ms"),
        );
        for i in 0..b.num_rows() {
            assert_eq!(client[i], None, "no client TTFT in TR108");
            if let (Some(p), Some(l), Some(e)) = (p[i], load[i], pe[i]) {
                assert!((p - (l + e)).abs() < 1.0, "row {i}: {p} vs {l} + {e}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 170, "{checked} rows with a published TTFT");
}

/// Copies `from` (a directory) to `to`, recursively, as writable files.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read dir").filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::write(to.join(e.file_name()), fs::read(&p).expect("read")).expect("write");
        }
    }
}

/// The fixtures root, a temporary directory and a copy of the fixture folder `from` at `to` in
/// it, or `None` (with a skip message) when the fixtures are not there.
pub(crate) fn fixture_copy(
    test: &str,
    from: &str,
    to: &str,
) -> Option<(PathBuf, tempfile::TempDir, PathBuf)> {
    let (fx, tmp) = fixtures_and_tmp(test)?;
    let copy = tmp.path().join(to);
    copy_dir(&fx.join(from), &copy);
    Some((fx, tmp, copy))
}

/// Copies one test folder of the TR114 fixture, `chimera-homo/test108`, into `to`; returns `to`.
pub(crate) fn copy_test108(fx: &Path, to: PathBuf) -> PathBuf {
    copy_dir(
        &fx.join("tr114_v2/chimera-homo/test108"),
        &to.join("chimera-homo/test108"),
    );
    to
}

/// A temporary directory and a small TR114 tree in it (`tr114_v2/`: [`copy_test108`]), or
/// `None` (with a skip message) when the fixtures are not there.
fn small_tr114(test: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let (fx, tmp) = fixtures_and_tmp(test)?;
    let src = copy_test108(&fx, tmp.path().join("tr114_v2"));
    Some((tmp, src))
}

/// Truncates `run_<k>/metrics.json` of test108 to half its bytes.
fn truncate_run(src: &Path, k: u32) {
    let f = src.join(format!("chimera-homo/test108/run_{k}/metrics.json"));
    let bytes = fs::read(&f).expect("read");
    fs::write(&f, &bytes[..bytes.len() / 2]).expect("truncate");
}

#[test]
fn one_truncated_metrics_json_is_named_skipped_and_recorded_in_the_origin() {
    let Some((tmp, src)) = small_tr114("truncated input") else {
        return;
    };
    truncate_run(&src, 3);
    let data = tmp.path().join("data");
    let s = import(&src, "tr114.yaml", &data);
    assert_eq!((s.runs, s.committed), (4, 4));
    assert_eq!(s.skipped, ["chimera-homo/test108/run_3/metrics.json"]);
    assert!(
        s.render()
            .contains("  skipped   1 unreadable file(s) (named in the warnings)\n"),
        "{}",
        s.render()
    );
    let w = s
        .warnings
        .iter()
        .find(|w| w.starts_with("skipped"))
        .expect("a warning names the skipped file");
    assert!(
        w.contains("`chimera-homo/test108/run_3/metrics.json`"),
        "{w}"
    );
    assert!(
        w.contains("not valid JSON at line") && w.contains("EOF"),
        "{w}"
    );
    let info: serde_json::Value = serde_json::from_slice(
        &fs::read(data.join("chimeraforge-tr114/campaign.json")).expect("campaign.json"),
    )
    .expect("json");
    assert_eq!(
        info["origin"]["skipped"],
        serde_json::json!(["chimera-homo/test108/run_3/metrics.json"])
    );
    assert_eq!(info["origin"]["runs"], 4);
    // The report's method section says what was skipped.
    let out = tmp.path().join("report");
    let (data_s, out_s) = (data.display().to_string(), out.display().to_string());
    let run = chimera(&[
        "report",
        "--data",
        &data_s,
        "--campaign",
        "chimeraforge-tr114",
        "--out",
        &out_s,
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let md: String = fs::read_dir(&out)
        .expect("report dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
        .map(|e| fs::read_to_string(e.path()).expect("read md"))
        .collect();
    let method = &md[md.find(". Method\n").expect("a method section")..];
    assert!(
        method.contains(
            "- Import: 1 raw file could not be read (truncated or damaged) and was skipped; the other runs were imported: `chimera-homo/test108/run_3/metrics.json`."
        ),
        "{method}"
    );

    // The file restored and imported again: its run is committed now, and the origin no
    // longer lists it as skipped.
    let fx = fixtures("truncated input").expect("fixtures");
    let good = fx.join("tr114_v2/chimera-homo/test108/run_3/metrics.json");
    fs::copy(&good, src.join("chimera-homo/test108/run_3/metrics.json")).expect("restore");
    let again = import(&src, "tr114.yaml", &data);
    assert_eq!((again.committed, again.already_committed), (1, 4));
    assert!(again.skipped.is_empty());
    let info: serde_json::Value = serde_json::from_slice(
        &fs::read(data.join("chimeraforge-tr114/campaign.json")).expect("campaign.json"),
    )
    .expect("json");
    // An empty list is not written.
    assert_eq!(info["origin"]["skipped"], serde_json::Value::Null, "{info}");
    assert_eq!(info["origin"]["runs"], 5);
}

#[test]
fn a_folder_where_most_metrics_json_are_truncated_is_refused_and_nothing_is_written() {
    let Some((tmp, src)) = small_tr114("truncated input") else {
        return;
    };
    for k in [1, 3, 5] {
        truncate_run(&src, k);
    }
    let data = tmp.path().join("data");
    let msg = import_err(&src, "tr114.yaml", &data);
    assert!(
        msg.contains("3 of the 5 `metrics.json` files cannot be read"),
        "{msg}"
    );
    assert!(msg.contains("test108/run_1/metrics.json"), "{msg}");
    assert!(msg.contains("not valid JSON at line"), "{msg}");
    assert!(!data.join("chimeraforge-tr114").exists(), "nothing written");
}

#[test]
fn missing_key_is_named_by_its_path() {
    let Some((tmp, src)) = small_tr114("missing key") else {
        return;
    };
    let f = src.join("chimera-homo/test108/run_2/metrics.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&fs::read(&f).expect("read")).expect("json");
    v["insight"]["result"]["llm_calls"][1]["metrics"]
        .as_object_mut()
        .expect("metrics")
        .remove("ttft_ms");
    fs::write(&f, serde_json::to_vec(&v).expect("encode")).expect("write");
    let msg = import_err(&src, "tr114.yaml", &tmp.path().join("data"));
    assert!(msg.contains("run_2/metrics.json"), "{msg}");
    assert!(msg.contains("insight.result.llm_calls[1].metrics"), "{msg}");
    assert!(msg.contains("missing field `ttft_ms`"), "{msg}");
}

#[test]
fn unknown_test_folder_is_named_with_the_expected_ids() {
    let Some((tmp, src)) = small_tr114("unknown folder") else {
        return;
    };
    copy_dir(
        &src.join("chimera-homo/test108"),
        &src.join("chimera-homo/test999"),
    );
    let data = tmp.path().join("data");
    let msg = import_err(&src, "tr114.yaml", &data);
    assert!(msg.contains("test folder `test999`"), "{msg}");
    assert!(msg.contains("chimera-homo/test999"), "{msg}");
    assert!(
        msg.contains("`test108`") && msg.contains("`test001`"),
        "{msg}"
    );
    assert!(!data.join("chimeraforge-tr114").exists(), "nothing written");

    // A declared-missing test says how to import it.
    fs::rename(
        src.join("chimera-homo/test999"),
        src.join("chimera-homo/test101"),
    )
    .expect("rename");
    let msg = import_err(&src, "tr114.yaml", &data);
    assert!(msg.contains("`missing: true`"), "{msg}");
}

#[test]
fn a_run_number_beyond_the_repetitions_is_refused() {
    let Some((tmp, src)) = small_tr114("run number") else {
        return;
    };
    let dir = src.join("chimera-homo/test108");
    copy_dir(&dir.join("run_5"), &dir.join("run_6"));
    let f = dir.join("run_6/metrics.json");
    let text = fs::read_to_string(&f).expect("read");
    fs::write(&f, text.replace("\"run_number\": 5", "\"run_number\": 6")).expect("write");
    let msg = import_err(&src, "tr114.yaml", &tmp.path().join("data"));
    assert!(msg.contains("run_6/metrics.json"), "{msg}");
    assert!(msg.contains("outside 1..=5"), "{msg}");
}

#[test]
fn a_directory_of_another_layout_says_what_was_expected() {
    let Some((fx, tmp)) = fixtures_and_tmp("wrong layout") else {
        return;
    };
    let msg = import_err(&fx, "tr114.yaml", tmp.path());
    assert!(msg.contains("does not look like the H6v2"), "{msg}");
    assert!(msg.contains("found:") && msg.contains("tr110/"), "{msg}");
    assert!(
        msg.contains("did you mean") && msg.contains("tr114_v2"),
        "{msg}"
    );
    let msg = import_err(&fx.join("tr110"), "tr111.yaml", tmp.path());
    assert!(msg.contains("H5 Rust single agent"), "{msg}");
}

#[test]
fn a_measured_campaign_is_never_mixed_with_imported_runs() {
    let Some((tmp, src)) = small_tr114("measured campaign") else {
        return;
    };
    let data = tmp.path().join("data");
    let manifest = root().join("experiments/tr114.yaml");
    let text = fs::read_to_string(&manifest).expect("manifest");
    drop(
        Campaign::open(
            &data,
            "chimeraforge-tr114",
            CampaignInfo::new(
                "chimeraforge-tr114",
                vec![ManifestEntry::new(
                    &manifest.display().to_string(),
                    "TR114_v2",
                    &text,
                )],
            ),
        )
        .expect("measured campaign"),
    );
    let err = import_chimeraforge(&opts(&src, "tr114.yaml", &data)).expect_err("refused");
    assert!(matches!(err, ImportError::MeasuredCampaign { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("holds measured cells"), "{msg}");
    assert!(msg.contains("--campaign"), "{msg}");
    let cells = fs::read_dir(data.join("chimeraforge-tr114/cells"))
        .expect("cells")
        .count();
    assert_eq!(cells, 0, "nothing committed");
}

#[test]
fn the_command_line_imports_and_exits_2_on_bad_input() {
    let Some((tmp, src)) = small_tr114("command line") else {
        return;
    };
    let data = tmp.path().join("data");
    let (src_s, data_s) = (src.display().to_string(), data.display().to_string());
    let run = chimera(&[
        "import",
        "chimeraforge",
        &src_s,
        "--report",
        "tr114",
        "--data",
        &data_s,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("imported TR114_v2"), "{}", run.stdout);
    assert!(run.stdout.contains("5 committed now"), "{}", run.stdout);
    // --report TR114_v2 finds the same manifest; a report that is not there is invalid input.
    let run = chimera(&[
        "import",
        "chimeraforge",
        &src_s,
        "--report",
        "TR114_v2",
        "--data",
        &data_s,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("5 already committed"), "{}", run.stdout);
    chimera(&[
        "import",
        "chimeraforge",
        &src_s,
        "--report",
        "TR110",
        "--data",
        &data_s,
    ])
    .assert_refused(&["does not look like"]);
    chimera(&["import", "chimeraforge", &src_s, "--report", "TR999"])
        .assert_refused(&["no manifest at"]);
}

/// `chimera import chimeraforge SRC --report tr114 --data DATA` as a child process under a
/// watchdog and an address-space limit, so that a regression (a read that blocks, or that
/// never ends) fails this test instead of hanging the suite or exhausting the machine.
/// Returns the exit code and stderr.
fn import_cli_guarded(src: &Path, data: &Path) -> (i32, String) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_chimera"))
        .args(["import", "chimeraforge"])
        .arg(src)
        .args(["--report", "tr114", "--data"])
        .arg(data)
        .current_dir(root())
        .env_remove("CHIMERA_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chimera import");
    let watchdog = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > watchdog {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chimera import still running after the watchdog's 120 s: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    (status.code().unwrap_or(-1), stderr)
}

/// Replaces `run_<run>/metrics.json` of test108 in a small TR114 tree by what `replace` makes
/// of it; the import must then refuse that file by name, saying `reason`, and write nothing.
fn assert_metrics_json_refused(what: &str, run: u32, replace: impl FnOnce(&Path), reason: &str) {
    let Some((tmp, src)) = small_tr114(what) else {
        return;
    };
    let file = format!("test108/run_{run}/metrics.json");
    replace(&src.join("chimera-homo").join(&file));
    let data = tmp.path().join("data");
    let (code, stderr) = import_cli_guarded(&src, &data);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&file), "{stderr}");
    assert!(stderr.contains(reason), "{stderr}");
    assert!(!data.join("chimeraforge-tr114").exists(), "nothing written");
}

#[test]
fn a_metrics_json_linked_to_dev_zero_is_refused_by_name() {
    assert_metrics_json_refused(
        "metrics.json -> /dev/zero",
        3,
        |f| {
            fs::remove_file(f).expect("rm");
            std::os::unix::fs::symlink("/dev/zero", f).expect("symlink");
        },
        "not a regular file (it is a character device)",
    );
}

#[test]
fn a_fifo_named_metrics_json_is_refused_not_waited_on() {
    assert_metrics_json_refused(
        "metrics.json FIFO",
        2,
        |f| {
            fs::remove_file(f).expect("rm");
            let made = std::process::Command::new("mkfifo")
                .arg(f)
                .status()
                .expect("run mkfifo");
            assert!(made.success(), "mkfifo failed");
        },
        "not a regular file (it is a FIFO (named pipe))",
    );
}

#[test]
fn an_oversized_metrics_json_is_refused_with_its_size_and_the_limit() {
    // A sparse file one MiB over the 256 MiB limit: no disk is used.
    let size: u64 = 257 * 1024 * 1024;
    assert_metrics_json_refused(
        "oversized metrics.json",
        4,
        |f| {
            fs::File::create(f)
                .and_then(|file| file.set_len(size))
                .expect("sparse file");
        },
        &format!(
            "it is {size} bytes, over the limit of {} bytes",
            256 * 1024 * 1024
        ),
    );
}
