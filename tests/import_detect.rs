//! `chimera import chimeraforge DIR` without `--report`: the layout says which report a folder
//! is (ambiguous, mixed and unknown folders refused with the reports named); and the
//! tolerance of a folder with stray files that are not data. Uses the fixtures in
//! `../shared/fixtures/chimeraforge` (or `$CHIMERA_FIXTURES`); tests that need them print a
//! skip message and pass when they are absent.

use std::fs;
use std::path::Path;

use chimera::import::{ImportOptions, detect_report, import_chimeraforge};

use crate::import::{copy_dir, copy_test108, fixture_copy, fixtures, fixtures_and_tmp};
use crate::support::{chimera, root, says};

fn put(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(p, bytes).expect("write");
}

/// Asserts that no report is detected in `dir` and that the error says each of `wants`.
fn detection_refused(dir: &Path, wants: &[&str]) {
    match detect_report(dir) {
        Ok((r, _)) => panic!("expected an error, detected {r}"),
        Err(e) => says(&e.to_string(), wants),
    }
}

#[test]
fn every_fixture_folder_is_recognised_as_its_report() {
    let Some(fx) = fixtures("detection") else {
        return;
    };
    for (folder, report) in [
        ("tr108", "TR108"),
        ("tr109", "TR109"),
        ("tr110", "TR110"),
        ("tr111_v2", "TR111"),
        ("tr114_v2", "TR114"),
        ("tr115_v2", "TR115"),
        ("tr116", "TR116"),
    ] {
        let (got, pattern) = detect_report(&fx.join(folder)).expect(folder);
        assert_eq!(got, report, "{folder}: {pattern}");
    }
    // TR113 (no fixture): configuration folders holding run_1 only.
    let t = tempfile::tempdir().expect("tempdir");
    for c in [
        "bvc_gpu80_ctx512_temp0p8",
        "homo_gpu80_ctx1024_temp0p6",
        "hetero_het_g60c512t06__g120c1024t08",
    ] {
        put(t.path(), &format!("{c}/run_1/metrics.json"), b"{}");
        put(t.path(), &format!("{c}/summary.json"), b"{}");
    }
    assert_eq!(detect_report(t.path()).expect("TR113").0, "TR113");
    // A second run is not TR113's (it ran each configuration once).
    put(
        t.path(),
        "bvc_gpu80_ctx512_temp0p8/run_2/metrics.json",
        b"{}",
    );
    detection_refused(t.path(), &["does not look like the raw data of any report"]);
}

#[test]
fn a_folder_two_reports_could_be_names_both_and_asks_for_report() {
    let Some((fx, t)) = fixtures_and_tmp("ambiguous") else {
        return;
    };
    // TR109's folder name, TR111's Rust content: both harnesses' layouts fit.
    let rust = fs::read(fx.join("tr111_v2/baseline_default/data/metrics.json")).expect("read");
    put(
        t.path(),
        "run_gpu60_ctx512_temp0p6/data/metrics.json",
        &rust,
    );
    detection_refused(
        t.path(),
        &[
            "could be the raw data of TR109 or TR111",
            "pass --report (one of TR109, TR111)",
            "run_gpu60_ctx512_temp0p6/data/metrics.json",
        ],
    );
}

#[test]
fn a_folder_mixing_two_layouts_is_refused_with_both_named() {
    let Some((fx, t)) = fixtures_and_tmp("mixed") else {
        return;
    };
    copy_test108(&fx, t.path().to_path_buf());
    copy_dir(
        &fx.join("tr110/phase_1_test_001"),
        &t.path().join("phase_1_test_001"),
    );
    detection_refused(
        t.path(),
        &[
            "mixes the layouts of TR110 and TR114",
            "TR110 (`phase_N_test_NNN/run_k/metrics.json`: 5 files, e.g. `phase_1_test_001/run_1/metrics.json`",
            "TR114 (`<scenario>/<testNNN>/run_k/metrics.json`: 5 files, e.g. `chimera-homo/test108/run_1/metrics.json`",
        ],
    );
}

#[test]
fn an_unknown_layout_says_what_was_expected_and_what_was_found() {
    let t = tempfile::tempdir().expect("tempdir");
    put(t.path(), "results/a.json", b"{}");
    put(t.path(), "notes.json", b"{}");
    detection_refused(
        t.path(),
        &[
            "does not look like the raw data of any report",
            "= expected: TR108 `llama3/*.csv`, `gemma3/*.csv`; TR109",
            "= found: notes.json, results/",
            "pass --report",
        ],
    );
}

#[test]
fn the_command_line_without_report_imports_what_the_layout_says() {
    let Some((fx, t)) = fixtures_and_tmp("detected import") else {
        return;
    };
    let src = copy_test108(&fx, t.path().join("raw"));
    let data = t.path().join("data");
    let (src_s, data_s) = (src.display().to_string(), data.display().to_string());
    let run = chimera(&["import", "chimeraforge", &src_s, "--data", &data_s]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    says(
        &run.stdout,
        &[
            "report TR114 recognised from the layout (`<scenario>/<testNNN>/run_k/metrics.json`)\nimported TR114_v2",
            "5 committed now",
        ],
    );
    assert!(run.stdout.starts_with("report TR114"), "{}", run.stdout);
    // An unknown layout is invalid input.
    let empty = t.path().join("empty");
    fs::create_dir_all(&empty).expect("mkdir");
    chimera(&["import", "chimeraforge", &empty.display().to_string()]).assert_refused(&[
        "does not look like the raw data of any report",
        "an empty directory",
    ]);
}

#[test]
fn files_that_are_not_data_are_ignored_in_one_note() {
    let Some((_, t, src)) = fixture_copy("stray files", "tr109", "tr109") else {
        return;
    };
    put(&src, "notes.txt", b"scratch");
    put(&src, "run_gpu60_ctx512_temp0p6/analyze.py", b"print(1)\n");
    put(&src, "run_gpu80_ctx512_temp0p6/data/plot.py", b"print(2)\n");
    let s = import_chimeraforge(&ImportOptions {
        source: src.clone(),
        manifest: root().join("experiments/tr109.yaml"),
        data: t.path().join("data"),
        campaign: None,
    })
    .unwrap_or_else(|e| panic!("import: {e}"));
    assert_eq!(s.runs, 18, "{}", s.render());
    let notes: Vec<&String> = s.notes.iter().filter(|n| n.contains("not data")).collect();
    assert_eq!(
        notes,
        ["3 files that are not data ignored (.py 2, .txt 1)"],
        "{}",
        s.render()
    );
}
