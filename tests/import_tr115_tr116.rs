//! `chimera import chimeraforge --report TR115 / TR116`: all runtimes, models and languages in one
//! go. The fixtures hold one runtime of TR115_v2 (tokio-default) and one model of TR116 (gemma3),
//! so a generator copies them under the other runtimes' and models' folder names (TR115's
//! async-std runs rewritten as the serialised runs they were: wall = the sum of the agents'
//! times, efficiency 50 %) and the imports are checked against the recomputed values of tr-spec
//! §9.4 and §10.4. Skipped (with a message) without the fixtures.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chimera::analysis::model::{Analysis, VerdictKind};
use serde_json::Value;

use crate::import::{
    CellRow, cell_rows, copy_dir, fixture_copy, fixtures, fixtures_and_tmp, import, import_err,
    mean, round,
};
use crate::support::chimera;

const RUNTIMES: [&str; 5] = [
    "tokio-default",
    "tokio-localset",
    "smol",
    "smol-1kb",
    "async-std",
];

/// TR116 models: (launcher slug of the model folder, model tag, manifest id). The Python runs
/// sit one level deeper, in a folder named after the tag with `:` → `_`.
const MODELS: [(&str, &str, &str); 3] = [
    ("gemma3_latest", "gemma3:latest", "gemma3"),
    (
        "llama3p1_8b_q4_0",
        "llama3.1:8b-instruct-q4_0",
        "llama31_q4_0",
    ),
    ("qwen2p5_7b", "qwen2.5:7b", "qwen25_7b"),
];

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).expect("read")).expect("json")
}

fn write_json(p: &Path, v: &Value) {
    fs::write(p, serde_json::to_vec_pretty(v).expect("encode")).expect("write");
}

/// Every file below `dir` whose name is `name`.
fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read dir").filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_named(&p, name));
        } else if e.file_name() == name {
            out.push(p);
        }
    }
    out
}

/// Rewrites an H6 run summary (`summary` of a metrics.json, or a `runs[]` entry) as a
/// serialised run: wall = Ta + Tb + 1 ms, so efficiency ≈ 50 % and contention.
fn serialise(summary: &mut Value, ta: f64, tb: f64) {
    let wall = ta + tb + 0.001;
    let speedup = (ta + tb) / wall;
    summary["concurrent_wall_time_s"] = wall.into();
    summary["concurrency_speedup"] = speedup.into();
    summary["efficiency_percent"] = (speedup / 2.0 * 100.0).into();
    summary["resource_contention_detected"] = true.into();
}

/// `results_v2/` with all five runtimes: copies of tokio-default, async-std serialised.
fn tr115_tree(fx: &Path, root: &Path) -> PathBuf {
    let src = root.join("results_v2");
    for rt in RUNTIMES {
        copy_dir(
            &fx.join("tr115_v2/runtime-tokio-default"),
            &src.join(format!("runtime-{rt}")),
        );
    }
    for m in files_named(&src.join("runtime-async-std"), "metrics.json") {
        let mut v = read_json(&m);
        let ta = v["collector"]["execution_time_s"].as_f64().expect("Ta");
        let tb = v["insight"]["execution_time_s"].as_f64().expect("Tb");
        serialise(&mut v["summary"], ta, tb);
        write_json(&m, &v);
        // The invocation's summary.json (one run) follows its run.
        let s = m.parent().and_then(Path::parent).expect("run_k");
        let mut sv = read_json(&s.join("summary.json"));
        serialise(&mut sv["runs"][0], ta, tb);
        let eff = sv["runs"][0]["efficiency_percent"].clone();
        sv["aggregate"]["average_efficiency"] = eff;
        write_json(&s.join("summary.json"), &sv);
    }
    src
}

/// `results/` of TR116 with all three models, both languages, multi and single, and the
/// generated Markdown reports beside them: 474 files, as many as the original tree.
fn tr116_tree(fx: &Path, root: &Path) -> PathBuf {
    let src = root.join("results");
    let base = fx.join("tr116");
    for (slug, tag, _) in MODELS {
        let copy = |from: &str, to: PathBuf| {
            copy_dir(&base.join(from), &to);
            // The files record their model: the copies record theirs.
            for m in files_named(&to, "metrics.json") {
                let text = fs::read_to_string(&m).expect("read");
                let text = text.replace("\"gemma3:latest\"", &format!("\"{tag}\""));
                fs::write(&m, text).expect("write");
            }
        };
        let multi = src.join("multi");
        copy("multi/rust/gemma3_latest", multi.join("rust").join(slug));
        copy(
            "multi/python/gemma3_latest/gemma3_latest",
            multi.join("python").join(slug).join(tag.replace(':', "_")),
        );
        for lang in ["rust", "python"] {
            copy(
                &format!("single/{lang}/gemma3_latest"),
                src.join("single").join(lang).join(slug),
            );
        }
    }
    // Markdown reports (never runs): 3 per Rust run, 2 per Python run, 1 per scenario folder,
    // 9 per single-agent configuration.
    let md = |dir: &Path, n: usize| {
        for i in 0..n {
            fs::write(dir.join(format!("report_{i}.md")), "# generated report\n").expect("md");
        }
    };
    for m in files_named(&src.join("multi"), "metrics.json") {
        let run = m.parent().expect("run_k");
        md(
            run,
            if m.to_string_lossy().contains("/rust/") {
                3
            } else {
                2
            },
        );
    }
    for s in files_named(&src.join("multi"), "summary.json") {
        md(s.parent().expect("scenario"), 1);
    }
    for m in files_named(&src.join("single"), "metrics.json") {
        let cfg = m.parent().and_then(Path::parent).expect("config");
        fs::create_dir_all(cfg.join("reports")).expect("mkdir");
        md(&cfg.join("reports"), 9);
    }
    src
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Published efficiencies of the rows whose configuration id starts with `prefix`.
fn efficiencies(rows: &[CellRow], prefix: &str) -> Vec<f64> {
    rows.iter()
        .filter(|r| r.1.starts_with(prefix))
        .filter_map(|r| r.3)
        .collect()
}

fn analyse(data: &Path, report: &str) -> Analysis {
    let mut v = chimera::analysis::analyze(data, None, Some(report)).expect("analyze");
    assert_eq!(v.len(), 1, "one campaign holds {report}");
    v.remove(0).1
}

/// (verdict, recomputed, n) of reference `id`.
fn verdict(a: &Analysis, id: &str) -> (VerdictKind, f64, u64) {
    let v = a
        .reports
        .iter()
        .flat_map(|r| r.verdicts.iter())
        .find(|v| v.id == id)
        .unwrap_or_else(|| panic!("no verdict {id}"));
    (v.verdict, v.recomputed.unwrap_or(f64::NAN), v.n)
}

/// Verdicts on the generated trees: (report, reference, verdict, recomputed value). Every
/// runtime of TR115 is a copy of tokio-default (async-std serialised), every TR116 model a copy
/// of gemma3, so only tokio-default, async-std and gemma3 reproduce.
const EXPECTED: [(&str, &str, VerdictKind, f64); 13] = {
    use VerdictKind::*;
    [
        ("TR115", "tokio_default_mean", Reproduced, 98.715),
        ("TR115", "tokio_default_peak", Reproduced, 99.888),
        ("TR115", "tokio_default_min", Reproduced, 94.796),
        ("TR115", "async_std_mean", Reproduced, 50.0),
        ("TR115", "async_std_contention", Reproduced, 30.0),
        ("TR115", "smol_mean", NotReproduced, 98.715),
        (
            "TR116",
            "rust_gemma3_baseline_vs_chimera_mean",
            Reproduced,
            97.314,
        ),
        ("TR116", "rust_gemma3_chimera_homo_mean", Reproduced, 99.219),
        (
            "TR116",
            "python_gemma3_baseline_vs_chimera_mean",
            Reproduced,
            80.236,
        ),
        (
            "TR116",
            "python_gemma3_chimera_homo_mean",
            Reproduced,
            84.855,
        ),
        (
            "TR116",
            "python_gemma3_chimera_homo_speedup",
            Reproduced,
            1.697,
        ),
        (
            "TR116",
            "rust_llama31_q4_0_chimera_homo_mean",
            NotReproduced,
            99.219,
        ),
        ("TR116", "rust_overall_mean", NotReproduced, 98.267),
    ]
};

/// Every reference of the report selects imported rows, and those of [`EXPECTED`] have their
/// verdicts and recomputed values.
fn check_verdicts(a: &Analysis, report: &str) {
    assert_all_measured(a);
    for (_, id, want, x) in EXPECTED.iter().filter(|e| e.0 == report) {
        let (v, got, _) = verdict(a, id);
        assert_eq!(v, *want, "{id}: {got}");
        assert!((got - x).abs() < 0.0005, "{id}: {got} vs {x}");
    }
}

/// Every reference of the report selects imported rows.
fn assert_all_measured(a: &Analysis) {
    let unmeasured: Vec<String> = a
        .reports
        .iter()
        .flat_map(|r| r.verdicts.iter())
        .filter(|v| v.verdict == VerdictKind::NotMeasured || v.n == 0)
        .map(|v| format!("{}: {}", v.id, v.explanation))
        .collect();
    assert!(unmeasured.is_empty(), "{unmeasured:#?}");
}

#[test]
fn tr115_all_five_runtimes_import_in_one_go() {
    let Some((fx, tmp)) = fixtures_and_tmp("tr115 runtimes") else {
        return;
    };
    let src = tr115_tree(&fx, tmp.path());
    let data = tmp.path().join("data");
    let s = import(&src, "tr115.yaml", &data);
    assert_eq!(s.report, "TR115_v2");
    assert_eq!((s.runs, s.committed), (150, 150));
    assert_eq!(s.files, 150 + 150, "150 runs and 150 invocation summaries");
    assert_eq!(s.per_config.len(), 30);
    assert!(s.per_config.values().all(|&n| n == 5), "{:?}", s.per_config);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);

    let rows = cell_rows(&s.campaign_dir);
    assert_eq!(rows.len(), 150);
    for rt in RUNTIMES {
        let eff = efficiencies(&rows, &format!("{rt}/"));
        assert_eq!(eff.len(), 30, "{rt}");
        let want = if rt == "async-std" { 50.0 } else { 98.715 };
        assert_eq!(round(mean(&eff), 3), want, "{rt} mean {}", mean(&eff));
    }
    let flagged: Vec<&str> = rows
        .iter()
        .filter(|r| r.4 == Some(true))
        .map(|r| r.1.as_str())
        .collect();
    assert_eq!(flagged.len(), 30);
    assert!(flagged.iter().all(|c| c.starts_with("async-std/")));

    let a = analyse(&data, "TR115");
    check_verdicts(&a, "TR115");
    assert_eq!(verdict(&a, "smol_mean").2, 30, "the runtime's 30 runs");
}

#[test]
fn tr115_one_runtime_folder_and_the_v1_results_import() {
    // DIR = one runtime-<name>/ folder: the runtime is its name.
    let Some((fx, tmp, smol)) = fixture_copy(
        "tr115 one runtime",
        "tr115_v2/runtime-tokio-default",
        "somewhere/runtime-smol",
    ) else {
        return;
    };
    let s = import(&smol, "tr115.yaml", &tmp.path().join("d1"));
    assert_eq!(s.runs, 30);
    assert!(s.per_config.keys().all(|c| c.starts_with("smol/")), "{s:?}");
    assert_eq!(
        round(mean(&efficiencies(&cell_rows(&s.campaign_dir), "smol/")), 3),
        98.715
    );

    // TR115 v1 (`results/`, H6v1: the calls in `individual_runs`, no `llm_calls`/`workflow`).
    let v1 = tmp.path().join("results");
    copy_dir(
        &fx.join("tr115_v2/runtime-tokio-default"),
        &v1.join("runtime-smol-1kb"),
    );
    for m in files_named(&v1, "metrics.json") {
        let mut v = read_json(&m);
        for agent in ["collector", "insight"] {
            let r = v[agent]["result"].as_object_mut().expect("result");
            r.remove("llm_calls");
            r.remove("workflow");
        }
        write_json(&m, &v);
    }
    let s = import(&v1, "tr115.yaml", &tmp.path().join("d2"));
    assert_eq!(s.runs, 30);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let rows = cell_rows(&s.campaign_dir);
    assert_eq!(round(mean(&efficiencies(&rows, "smol-1kb/")), 3), 98.715);
}

#[test]
fn tr115_tokio_default_fixture_reproduces_through_the_command_line() {
    let Some((fx, tmp)) = fixtures_and_tmp("tr115 cli") else {
        return;
    };
    let d = tmp.path().display().to_string();
    let src = fx.join("tr115_v2").display().to_string();
    let r = chimera(&[
        "import",
        "chimeraforge",
        &src,
        "--report",
        "TR115",
        "--data",
        &d,
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("30 imported into 6 configuration(s)"),
        "{}",
        r.stdout
    );
    let r = chimera(&["analyze", "--data", &d, "--verbose"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let line = |id: &str| {
        r.stdout
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} in {}", r.stdout))
            .to_owned()
    };
    assert!(line("tokio_default_mean ").contains("reproduced"));
    assert!(line("tokio_default_mean ").contains("98.715"));
    assert!(line("tokio_default_sd ").contains("1.207"));
    assert!(line("tokio_default_median ").contains("not reproduced"));
    let r = chimera(&["report", "--data", &d]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let md = fs::read_to_string(tmp.path().join("chimeraforge-tr115/report/TR115_v2.md"))
        .expect("report");
    let row = md
        .lines()
        .find(|l| l.starts_with("| `tokio_default_mean`"))
        .expect("verdict row");
    assert!(
        row.contains("98.715") && row.contains("| reproduced |"),
        "{row}"
    );
    // The axis the report is about: one row per runtime, the four without data say so.
    let by = &md[md.find("### By runtime").expect("a runtime table")..];
    let rows: Vec<&str> = by
        .lines()
        .skip(6)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(rows.len(), 5, "{by}");
    assert!(
        rows.iter()
            .any(|l| l.starts_with("| tokio-default |") && l.contains("| 30 | 98.715 |")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|l| l.starts_with("| async-std |") && l.contains("| 0 | — |"))
    );
}

#[test]
fn tr116_all_models_and_languages_import_in_one_go() {
    let Some(fx) = fixtures("tr116 models") else {
        return;
    };
    let tmp = match std::env::var_os("CHIMERA_TR116_TREE") {
        // Keeps the generated tree for a timing of the release binary.
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("mkdir");
            (None, dir)
        }
        None => {
            let t = tempfile::tempdir().expect("tempdir");
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let src = tr116_tree(&fx, &tmp.1);
    assert_eq!(count_files(&src), 474);
    let data = tmp.1.join("data");
    let s = import(&src, "tr116.yaml", &data);
    assert_eq!((s.runs, s.committed), (60 + 120, 180));
    assert_eq!(s.files, 60 + 12 + 24, "runs, summaries, single-agent files");
    assert_eq!(s.per_config.len(), 12 + 24);
    assert!(s.per_config.values().all(|&n| n == 5), "{:?}", s.per_config);
    assert!(
        s.render().contains("378 Markdown report(s)"),
        "{}",
        s.render()
    );
    // The Python files' local times, and H4's runs, which kept no time at all.
    let w = &s.warnings;
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("120 timestamp(s) carry no time zone"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("30 cell(s) have no recorded start time"),
        "{w:?}"
    );

    let rows = cell_rows(&s.campaign_dir);
    let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, id) in MODELS {
        for (lang, bvc, homo) in [("rust", 97.314, 99.219), ("python", 80.236, 84.855)] {
            let p = format!("{lang}/{id}/");
            let b = efficiencies(&rows, &format!("{p}baseline_vs_chimera"));
            let h = efficiencies(&rows, &format!("{p}chimera_homo"));
            assert_eq!((b.len(), h.len()), (5, 5), "{p}");
            assert_eq!(round(mean(&b), 3), bvc, "{p} bvc");
            assert_eq!(round(mean(&h), 3), homo, "{p} homo");
            let single = format!("single/{lang}/{id}/");
            *per_group.entry(single.clone()).or_default() +=
                rows.iter().filter(|r| r.1.starts_with(&single)).count();
        }
    }
    // Single-agent cells: 4 configurations × 5 runs per language and model, no efficiency.
    assert!(per_group.values().all(|&n| n == 20), "{per_group:?}");
    assert!(efficiencies(&rows, "single/").is_empty());

    let a = analyse(&data, "TR116");
    check_verdicts(&a, "TR116");
    assert_eq!(
        verdict(&a, "rust_overall_mean").2,
        30,
        "Rust multi-agent runs only"
    );

    // The report's axes: one row per model × language × kind of run, the concurrent rows with
    // the published efficiency pooled over both scenarios' runs.
    let r = chimera(&["report", "--data", &data.display().to_string()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let md = fs::read_to_string(data.join("chimeraforge-tr116/report/TR116.md")).expect("report");
    let by = &md[md
        .find("### By model × language")
        .expect("a model × language table")..];
    let rows: Vec<&str> = by
        .lines()
        .skip_while(|l| !l.starts_with("| Model"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(rows.len(), 12, "3 models × 2 languages × 2 kinds: {rows:?}");
    for (lang, pooled) in [("rust", "98.267"), ("python", "82.546")] {
        let concurrent: Vec<_> = rows
            .iter()
            .filter(|l| {
                l.contains(&format!(
                    "| {lang} | concurrent agents | 2 | 10 | {pooled} |"
                ))
            })
            .collect();
        assert_eq!(concurrent.len(), 3, "{lang}: {rows:?}");
    }
    let single = rows
        .iter()
        .filter(|l| l.contains("| one agent | 4 | 20 | — |"));
    assert_eq!(single.count(), 6, "{rows:?}");
}

#[test]
fn tr116_narrower_folders_import_their_part() {
    let Some((fx, tmp)) = fixtures_and_tmp("tr116 narrower") else {
        return;
    };
    let src = tr116_tree(&fx, tmp.path());
    for (sub, runs, prefix) in [
        ("multi", 60, ""),
        ("multi/python", 30, "python/"),
        ("multi/python/qwen2p5_7b", 10, "python/qwen25_7b/"),
        (
            "single/rust/llama3p1_8b_q4_0",
            20,
            "single/rust/llama31_q4_0/",
        ),
        (
            "multi/rust/qwen2p5_7b/chimera-homo_gpu80_ctx512_temp10",
            5,
            "rust/qwen25_7b/chimera_homo",
        ),
    ] {
        let data = tmp.path().join(format!("data-{}", sub.replace('/', "-")));
        let s = import(&src.join(sub), "tr116.yaml", &data);
        assert_eq!(s.runs, runs, "{sub}");
        assert!(
            s.per_config.keys().all(|c| c.starts_with(prefix)),
            "{sub}: {:?}",
            s.per_config
        );
    }

    // gemma3's runs filed under qwen: imported as planned, with a warning that names them.
    let qwen = src.join("single/rust/qwen2p5_7b");
    fs::remove_dir_all(&qwen).expect("rm");
    copy_dir(&fx.join("tr116/single/rust/gemma3_latest"), &qwen);
    let s = import(
        &src.join("single/rust"),
        "tr116.yaml",
        &tmp.path().join("misfiled"),
    );
    let misfiled: Vec<&String> = s
        .warnings
        .iter()
        .filter(|w| w.contains("records model `gemma3:latest`"))
        .collect();
    assert_eq!(misfiled.len(), 4, "one per configuration: {:?}", s.warnings);
    assert!(misfiled.iter().all(|w| w.contains("single/rust/qwen25_7b/")
        && w.contains("qwen2p5_7b/")
        && w.contains("`qwen2.5:7b`")));
}

#[test]
fn damaged_and_unknown_inputs_are_named() {
    let Some((fx, tmp)) = fixtures_and_tmp("tr115/tr116 errors") else {
        return;
    };
    let data = tmp.path().join("data");
    let src = tr115_tree(&fx, tmp.path());

    // A summary that disagrees with its run: a warning naming the summary.
    let sum = src.join("runtime-smol/chimera_homo_gpu80_ctx512/run_3/summary.json");
    let mut v = read_json(&sum);
    v["runs"][0]["efficiency_percent"] = 90.0.into();
    write_json(&sum, &v);
    let s = import(&src, "tr115.yaml", &tmp.path().join("ok"));
    // The run's efficiency, and the summary's average that no longer is its runs' mean.
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    let named = "runtime-smol/chimera_homo_gpu80_ctx512/run_3/summary.json";
    assert!(
        s.warnings.iter().all(|w| w.contains(named)),
        "{:?}",
        s.warnings
    );
    assert!(
        s.warnings[0].contains("run 1 efficiency 90.0000 % differs from its metrics.json"),
        "{:?}",
        s.warnings
    );

    // An unknown runtime folder: the runtimes the manifest plans.
    copy_dir(&src.join("runtime-smol"), &src.join("runtime-glommio"));
    let msg = import_err(&src, "tr115.yaml", &data);
    assert!(msg.contains("runtime folder `runtime-glommio`"), "{msg}");
    assert!(msg.contains("`runtime-smol-1kb`"), "{msg}");
    fs::remove_dir_all(src.join("runtime-glommio")).expect("rm");

    // A stray folder: not part of the layout.
    let stray = src.join("runtime-smol/notes/todo.json");
    fs::create_dir_all(stray.parent().expect("dir")).expect("mkdir");
    fs::write(&stray, "{}").expect("write");
    let msg = import_err(&src, "tr115.yaml", &data);
    assert!(msg.contains("runtime-smol/notes/todo.json"), "{msg}");
    assert!(
        msg.contains("not part of the H6 Rust multi-agent per runtime"),
        "{msg}"
    );
    fs::remove_dir_all(stray.parent().expect("dir")).expect("rm");

    // A truncated run among good ones: skipped, named in a warning, the rest imports.
    let f = src.join("runtime-async-std/chimera_homo_gpu80_ctx1024/run_4/run_1/metrics.json");
    let bytes = fs::read(&f).expect("read");
    fs::write(&f, &bytes[..bytes.len() / 3]).expect("truncate");
    let s = import(&src, "tr115.yaml", &data);
    assert_eq!((s.runs, s.skipped.len()), (149, 1), "{}", s.render());
    let name = "runtime-async-std/chimera_homo_gpu80_ctx1024/run_4/run_1/metrics.json";
    assert!(s.skipped[0].ends_with(name), "{:?}", s.skipped);
    assert!(
        s.warnings.iter().any(|w| w.contains(name)),
        "{:?}",
        s.warnings
    );
    assert_eq!(
        s.per_config.get("async-std/chimera_homo_gpu80_ctx1024"),
        Some(&4)
    );

    // TR116: an unknown model folder, and a truncated Python run.
    let src = tr116_tree(&fx, &tmp.path().join("t116"));
    copy_dir(
        &src.join("multi/rust/gemma3_latest"),
        &src.join("multi/rust/mistral_7b"),
    );
    let msg = import_err(&src, "tr116.yaml", &data);
    assert!(msg.contains("model folder `mistral_7b`"), "{msg}");
    assert!(msg.contains("llama3p1_8b_q4_0 (llama31_q4_0)"), "{msg}");
    fs::remove_dir_all(src.join("multi/rust/mistral_7b")).expect("rm");
    let f = src.join(
        "multi/python/qwen2p5_7b/qwen2.5_7b/baseline-vs-chimera_gpu80_ctx512_temp10/run_2/metrics.json",
    );
    fs::write(&f, b"{\"run_number\": 2, \"collector\": {").expect("truncate");
    let s = import(&src, "tr116.yaml", &data);
    assert_eq!(s.skipped.len(), 1, "{}", s.render());
    assert!(
        s.skipped[0]
            .ends_with("qwen2.5_7b/baseline-vs-chimera_gpu80_ctx512_temp10/run_2/metrics.json"),
        "{:?}",
        s.skipped
    );
    assert_eq!(
        s.per_config
            .get("python/qwen25_7b/baseline_vs_chimera_gpu80_ctx512_temp10"),
        Some(&4)
    );
}
