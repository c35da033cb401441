//! TR112_v2 from the real TR109 (Python) and TR111_v2 (Rust) raw results: one
//! `chimera import chimeraforge --report TR112` reads both into one campaign (each with its own
//! layout), and the analysis gives every published comparison a verdict, or says why no raw
//! data can give it. Skipped (with a message) when the fixtures are absent.

use std::path::{Path, PathBuf};

use chimera::analysis::model::{Analysis, VerdictKind};

use crate::analysis::{check, verdict};
use crate::support::{Run, chimera, import_args, s};

/// The fixtures root holding `tr109/` and `tr111_v2/`, or `None` with a skip message.
fn fixtures() -> Option<PathBuf> {
    let dir = crate::analysis::fixtures()?;
    if dir.join("tr109").is_dir() && dir.join("tr111_v2").is_dir() {
        Some(dir)
    } else {
        crate::import::skip(
            "tr112",
            &format!("no tr109/ and tr111_v2/ in {}", dir.display()),
        )
    }
}

/// `chimera import chimeraforge ARGS --report REPORT --data DATA`.
fn import(report: &str, args: &[&str], data: &Path) -> Run {
    chimera(&import_args(args, report, s(data)))
}

fn not_measurable(a: &Analysis, id: &str, reason: &str) {
    let v = verdict(a, id);
    assert_eq!(
        v.verdict,
        VerdictKind::NotMeasured,
        "{id}: {}",
        v.explanation
    );
    assert_eq!(v.recomputed, None, "{id}");
    assert!(
        v.explanation
            .starts_with("not measurable from these data: ")
            && v.explanation.contains(reason),
        "{id}: {}",
        v.explanation
    );
}

fn analyse(data: &Path) -> Analysis {
    let mut v = chimera::analysis::analyze(data, None, Some("TR112")).expect("analyze");
    assert_eq!(v.len(), 1, "one campaign holds TR112");
    v.remove(0).1
}

fn assert_tr112_verdicts(a: &Analysis) {
    use VerdictKind::*;
    let r = &a.reports[0];
    assert_eq!(r.report, "TR112_v2");
    assert_eq!(
        r.findings[0],
        "TR112_v2 runs nothing of its own: its numbers come from the runs of TR109 (18 runs) and TR111_v2 (57 runs) in this campaign."
    );
    // Rust (TR111_v2 baseline_default, baseline agent, 6 calls).
    check(a, "rust_baseline_tok_s", Reproduced, 114.54, 0.005);
    check(a, "rust_baseline_tok_s_sd", Reproduced, 2.97, 0.005);
    check(a, "rust_baseline_tok_s_cv", Reproduced, 2.59, 0.005);
    check(a, "rust_baseline_ttft", Reproduced, 603.53, 0.005);
    check(a, "rust_best_config_tok_s", Reproduced, 114.98, 0.005);
    // Python (TR109 sweep, 18 configurations): 7 of 18, mean +0.0952 %, peak +2.20 %.
    check(a, "python_success_rate", Reproduced, 700.0 / 18.0, 1e-9);
    check(a, "python_mean_improvement", Reproduced, 0.0952, 0.00005);
    check(a, "python_peak_improvement", Reproduced, 2.2, 0.005);
    // The parity table's 101 files: the Python sweep ingested none.
    check(a, "python_files_ingested", NotReproduced, 0.0, 0.0);
    // What no raw data here can give, with the reason.
    not_measurable(a, "python_baseline_tok_s", "Phase-1");
    not_measurable(a, "python_baseline_ttft", "validation");
    not_measurable(a, "rust_faster_pct", "Phase-1");
    not_measurable(a, "ttft_reduction_pct", "validation");
    for id in [
        "rust_success_rate",
        "rust_mean_improvement",
        "rust_peak_improvement",
    ] {
        not_measurable(a, id, "v1 micro-benchmark");
    }
    // Over TR111_v2 the chimera agent beats the baseline agent in 15 of 18 configurations.
    let e = &verdict(a, "rust_success_rate").explanation;
    assert!(e.contains("would be 83.333"), "{e}");
    // Every reference selects rows that exist, or says why there are none.
    for v in &r.verdicts {
        assert!(
            v.n > 0 || v.explanation.starts_with("not measurable"),
            "{}: {}",
            v.id,
            v.explanation
        );
    }
}

#[test]
fn tr112_imports_tr109_and_tr111_and_gets_its_verdicts() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The fixtures root: TR112's dependencies are found as `tr109/` and `tr111_v2/`.
    let r = import("TR112", &[s(&fx)], &data);
    r.assert_ok(&[
        "75 imported into 37 configuration(s): 75 committed now",
        "TR109/gpu60_ctx512_temp0p8",
        "TR111_v2/baseline_default",
    ]);
    let a = analyse(&data);
    assert_tr112_verdicts(&a);

    // Re-importing adds nothing; analysing from another directory needs nothing beside it.
    import("TR112", &[s(&fx)], &data).assert_ok(&["0 committed now, 75 already committed"]);
    let args = ["analyze", "--data", s(&data), "--report", "TR112"];
    crate::support::chimera_in(dir.path(), &args)
        .assert_ok(&["not measurable from these data: TR109's Phase-1 run"]);
}

#[test]
fn tr112_takes_each_dependency_from_its_own_folder() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tr109 = format!("TR109={}", fx.join("tr109").display());
    let tr111 = format!("tr111={}", fx.join("tr111_v2").display());
    let from = [
        "--from",
        &tr109,
        "--from",
        &tr111,
        "--campaign",
        "rust-vs-python",
    ];
    import("TR112_v2", &from, &data).assert_ok(&["TR112_v2", "rust-vs-python"]);
    assert_tr112_verdicts(&analyse(&data));

    // A dependency without a folder, a --from that is not a dependency, a malformed --from.
    let empty = tempfile::tempdir().expect("tempdir");
    import("TR112", &[s(empty.path())], &data)
        .assert_refused(&["no folder for TR109", "--from TR109=DIR"]);
    let tr110 = format!("TR110={}", fx.join("tr109").display());
    import("TR112", &["--from", &tr110], &data)
        .assert_refused(&["TR112_v2 does not depend on TR110", "TR109, TR111_v2"]);
    import("TR112", &["--from", "TR109"], &data).assert_refused(&["is not REPORT=DIR"]);
    import("TR109", &["--from", &tr109], &data).assert_refused(&["TR109 plans runs of its own"]);
}
