//! TR113 (harness H6v1) imported from a synthetic `Demo_rust_multiagent_results/` tree and
//! analysed: the tree is written from tr-spec §7.3/§7.4 (19 configuration folders, one run
//! each, both agents on 11434), with agent durations chosen so that every configuration's
//! speedup and efficiency are the published ones and the scenario means, the overall mean
//! 72.01 % and the range 62.61–82.21 are those the original data give. The published
//! contention counts (prose 12/19, table 14/19) are contradicted by those data (13/19).

use std::fs;
use std::path::Path;

use chimera::analysis::model::VerdictKind;
use serde_json::{Value, json};

use crate::analysis::{check, verdict};
use crate::support::{chimera, s};

/// Scenario of a configuration: (folder prefix, scenario id).
fn scenario_of(id: &str) -> &'static str {
    if id.starts_with("hetero") {
        "chimera_hetero"
    } else if id.starts_with("homo") {
        "chimera_homo"
    } else {
        "baseline_vs_chimera"
    }
}

/// The 19 configurations with their efficiency (%, two decimals): each rounds to the
/// published efficiency (one decimal) and, halved, to the published speedup (three decimals).
const CONFIGS: &[(&str, f64)] = &[
    ("bvc_gpu60_ctx512_temp0p6", 77.87),
    ("bvc_gpu60_ctx512_temp0p8", 64.79),
    ("bvc_gpu60_ctx1024_temp0p6", 71.31),
    ("bvc_gpu60_ctx1024_temp0p8", 72.30),
    ("bvc_gpu80_ctx512_temp0p6", 62.61),
    ("bvc_gpu80_ctx512_temp0p8", 73.42),
    ("bvc_gpu80_ctx1024_temp0p6", 77.32),
    ("bvc_gpu80_ctx1024_temp0p8", 64.50),
    ("bvc_gpu120_ctx512_temp0p6", 78.14),
    ("bvc_gpu120_ctx512_temp0p8", 65.57),
    ("bvc_gpu120_ctx1024_temp0p6", 72.32),
    ("bvc_gpu120_ctx1024_temp0p8", 72.13),
    ("baseline_gpu80_ctx512_temp0p8", 73.37),
    ("hetero_het_g60c512t06__g120c1024t08", 78.63),
    ("hetero_het_g80c512t08__g120c1024t06", 67.43),
    ("homo_gpu80_ctx512_temp0p6", 77.36),
    ("homo_gpu80_ctx512_temp0p8", 69.20),
    ("homo_gpu80_ctx1024_temp0p6", 82.21),
    ("homo_gpu80_ctx1024_temp0p8", 67.71),
];

/// `(num_gpu, num_ctx, temperature)` of a `g60c512t06`-style token.
fn het_token(t: &str) -> (u32, u32, f64) {
    let (g, rest) = t[1..].split_once('c').expect("c");
    let (c, temp) = rest.split_once('t').expect("t");
    let temp: f64 = temp.parse::<f64>().expect("temp") / 10.0;
    (g.parse().expect("gpu"), c.parse().expect("ctx"), temp)
}

/// `(num_gpu, num_ctx, temperature)` of a `gpu80_ctx512_temp0p8` folder suffix.
fn sweep_token(id: &str) -> (u32, u32, f64) {
    let rest = &id[id.find("gpu").expect("gpu") + 3..];
    let (g, rest) = rest.split_once("_ctx").expect("ctx");
    let (c, t) = rest.split_once("_temp").expect("temp");
    (
        g.parse().expect("gpu"),
        c.parse().expect("ctx"),
        t.replace('p', ".").parse().expect("temp"),
    )
}

fn options((g, c, t): (u32, u32, f64), repeat_penalty: f64) -> Value {
    json!({"num_gpu": g, "num_ctx": c, "temperature": t, "top_p": 0.9, "top_k": 40,
           "repeat_penalty": repeat_penalty})
}

/// The recorded options of agents A and B (`None`: Ollama defaults, no `options`).
fn agent_options(id: &str) -> (Option<Value>, Option<Value>) {
    match scenario_of(id) {
        "chimera_hetero" => {
            let (a, b) = id["hetero_het_".len()..].split_once("__").expect("__");
            (
                Some(options(het_token(a), 1.1)),
                Some(options(het_token(b), 1.05)),
            )
        }
        "chimera_homo" => {
            let o = options(sweep_token(id), 1.1);
            (Some(o.clone()), Some(o))
        }
        _ => (None, Some(options(sweep_token(id), 1.1))),
    }
}

/// `2025-11-12T22:54:09.000+00:00` plus `ms`.
fn at(ms: f64) -> String {
    let total = 22.0 * 3_600_000.0 + 54.0 * 60_000.0 + 9_000.0 + ms;
    let ms_int = total.round() as u64;
    let (h, rest) = (ms_int / 3_600_000, ms_int % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    format!(
        "2025-11-12T{h:02}:{m:02}:{:02}.{:03}+00:00",
        rest / 1000,
        rest % 1000
    )
}

/// One agent's part of a run: config, execution time, result with its single persona call.
#[allow(clippy::too_many_arguments)]
fn agent(
    name: &str,
    label: &str,
    opts: &Option<Value>,
    secs: f64,
    ttft_ms: f64,
    tokens: u64,
    tok_s: f64,
    end: &str,
) -> Value {
    let eval_ms = tokens as f64 / tok_s * 1000.0;
    let call = json!({
        "ttft_ms": ttft_ms, "throughput_tokens_per_sec": tok_s,
        "total_duration_ms": secs * 1000.0 - 1.5, "tokens_generated": tokens,
        "prompt_eval_duration_ms": 42.5, "eval_duration_ms": eval_ms, "load_duration_ms": 118.0
    });
    json!({
        "config": {"id": name, "label": label, "model": "gemma3:latest",
                   "base_url": "http://localhost:11434", "options": opts, "prompt": "persona"},
        "execution_time_s": secs,
        "result": {
            "agent_type": label, "model": "gemma3:latest", "runs": 1,
            "configuration": opts.clone().unwrap_or_else(|| json!({})),
            "individual_runs": [call],
            "aggregate_metrics": {
                "average_tokens_per_second": tok_s, "average_ttft_ms": ttft_ms,
                "total_duration_ms": secs * 1000.0 - 1.5, "total_tokens_generated": tokens,
                "stddev_throughput": 0.0, "stddev_ttft": 0.0
            },
            "prompt": "persona",
            "system_info": {"os": "windows", "rust_version": "1.90.0"},
            "timestamp": end
        }
    })
}

/// Writes the 19 configuration folders of `Demo_rust_multiagent_results/` under `root`.
pub(crate) fn write_tr113_tree(root: &Path) {
    for (i, (id, eff)) in CONFIGS.iter().enumerate() {
        let scenario = scenario_of(id);
        let speedup = eff / 50.0;
        // One server: the requests are largely serialised; A (collector) waits and is slower.
        let wall = 9.5 + 0.25 * i as f64;
        let t_a = wall - 0.002;
        let t_b = speedup * wall - t_a;
        let t0 = 16_000.0 * i as f64;
        let (oa, ob) = agent_options(id);
        let (tok_a, tok_b) = (380 + 7 * i as u64, 520 + 5 * i as u64);
        let (tps_a, tps_b) = (97.5 + 0.05 * i as f64, 98.25 - 0.03 * i as f64);
        let (ttft_a, ttft_b) = ((t_a - t_b) * 1000.0 + 180.0, 191.0 + i as f64);
        let label_a = if scenario == "baseline_vs_chimera" {
            "Baseline Collector"
        } else {
            "Chimera Collector"
        };
        let summary = json!({
            "collector_throughput": tps_a, "collector_ttft_ms": ttft_a,
            "insight_throughput": tps_b, "insight_ttft_ms": ttft_b,
            "concurrency_speedup": speedup, "efficiency_percent": eff,
            "concurrent_wall_time_s": wall, "sequential_estimated_s": t_a + t_b,
            "throughput_delta": tps_b - tps_a, "ttft_delta_ms": ttft_a - ttft_b,
            "resource_contention_detected": speedup < 1.5, "run_number": 1, "scenario": scenario
        });
        let run = json!({
            "run_number": 1,
            "scenario": scenario,
            "collector": agent("collector", label_a, &oa, t_a, ttft_a, tok_a, tps_a, &at(t0 + t_a * 1000.0 + 0.5)),
            "insight": agent("insight", "Chimera Insight", &ob, t_b, ttft_b, tok_b, tps_b, &at(t0 + t_b * 1000.0 + 0.5)),
            "summary": summary,
        });
        let per_config = json!({
            "scenario": scenario,
            "runs": [summary],
            "aggregate": {
                "average_concurrency_speedup": speedup, "average_efficiency": eff,
                "average_throughput_delta": tps_b - tps_a, "average_ttft_delta_ms": ttft_a - ttft_b
            },
            "agent_a": {"id": "collector", "options": oa},
            "agent_b": {"id": "insight", "options": ob},
            "generated_at": at(t0 + wall * 1000.0 + 5.0)
        });
        let dir = root.join(id);
        let run_dir = dir.join("run_1");
        fs::create_dir_all(&run_dir).expect("mkdir");
        let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("json");
        fs::write(run_dir.join("metrics.json"), pretty(&run)).expect("write");
        fs::write(dir.join("summary.json"), pretty(&per_config)).expect("write");
        fs::write(dir.join("summary.md"), format!("# {id}\n")).expect("write");
        for md in [
            "collector_report.md",
            "insight_report.md",
            "combined_report.md",
        ] {
            fs::write(run_dir.join(md), "# report\n").expect("write");
        }
    }
}

#[test]
fn tr113_h6v1_tree_imports_and_reproduces_its_published_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("Demo_rust_multiagent_results");
    write_tr113_tree(&src);
    let data = dir.path().join("data");
    let r = chimera(&[
        "import",
        "chimeraforge",
        s(&src),
        "--report",
        "TR113",
        "--data",
        s(&data),
    ]);
    // 38 files: 19 runs and 19 summaries.
    r.assert_ok(&["H6v1", "19 imported into 19 configuration(s)", "38 read"]);
    assert!(!r.stdout.contains("warnings"), "{}", r.stdout);

    let mut v = chimera::analysis::analyze(&data, None, Some("TR113")).expect("analyze");
    let a = v.remove(0).1;
    let rep = &a.reports[0];
    assert_eq!(rep.counts.runs_ok, 19);
    use VerdictKind::*;
    // Every per-configuration efficiency and speedup.
    for (id, eff) in CONFIGS {
        check(&a, &format!("{id}_efficiency"), Reproduced, *eff, 1e-9);
        check(&a, &format!("{id}_speedup"), Reproduced, eff / 50.0, 1e-9);
    }
    check(&a, "run_count", Reproduced, 19.0, 0.0);
    check(&a, "overall_mean_efficiency", Reproduced, 72.01, 0.005);
    check(&a, "min_efficiency", Reproduced, 62.61, 1e-9);
    check(&a, "max_efficiency", Reproduced, 82.21, 1e-9);
    check(
        &a,
        "baseline_vs_chimera_mean_efficiency",
        Reproduced,
        71.2,
        0.05,
    );
    check(
        &a,
        "baseline_vs_chimera_efficiency_sd",
        Reproduced,
        5.28,
        0.005,
    );
    check(
        &a,
        "chimera_hetero_mean_efficiency",
        Reproduced,
        73.03,
        0.005,
    );
    check(&a, "chimera_homo_mean_efficiency", Reproduced, 74.12, 0.005);
    check(&a, "chimera_homo_mean_speedup", Reproduced, 1.482, 0.0005);
    check(&a, "best_homo", Reproduced, 82.21, 1e-9);
    check(&a, "best_bvc", Reproduced, 78.14, 1e-9);
    check(&a, "best_hetero", Reproduced, 78.63, 1e-9);
    check(&a, "contention_homo", Reproduced, 2.0, 0.0);

    // Contention: the prose's 12/19 (63 %) and the table's 14/19 against the data's 13/19.
    for (id, published, data_value) in [
        ("contention_count", 12.0, 13.0),
        ("contention_count_table", 14.0, 13.0),
        ("contention_bvc", 12.0, 10.0),
        ("contention_hetero", 0.0, 1.0),
    ] {
        check(&a, id, NotReproduced, data_value, 0.0);
        let v = verdict(&a, id);
        assert_eq!(v.published, published, "{id}");
        assert!(v.contradicted_by_own_data, "{id}: {}", v.explanation);
        assert!(
            v.explanation.contains("contradicted by them"),
            "{id}: {}",
            v.explanation
        );
    }
    check(&a, "contention_share", NotReproduced, 1300.0 / 19.0, 1e-9);
    let share = verdict(&a, "contention_share");
    assert!(share.contradicted_by_own_data, "{}", share.explanation);
    let contradicted = rep
        .verdicts
        .iter()
        .filter(|v| v.contradicted_by_own_data)
        .count();
    assert_eq!(contradicted, 5);
    let not_reproduced: Vec<&str> = rep
        .verdicts
        .iter()
        .filter(|v| v.verdict != Reproduced)
        .map(|v| v.id.as_str())
        .collect();
    assert_eq!(
        not_reproduced,
        [
            "contention_count",
            "contention_count_table",
            "contention_share",
            "contention_bvc",
            "contention_hetero"
        ]
    );

    // The terminal summary and the written report say so.
    chimera(&["analyze", "--data", s(&data), "--report", "TR113"])
        .assert_ok(&["5 published number(s) contradicted by the report's own raw data"]);
    let out = dir.path().join("report");
    let written = chimera::report::write_reports(&a, &out).expect("report");
    let md = fs::read_to_string(written[0].markdown.as_ref().expect("md")).expect("md");
    for want in [
        "5 not reproduced (5 of those contradicted by the report's own raw data)",
        "**not reproduced: contradicted by the report's own data**",
        "raw data: 13 runs",
    ] {
        assert!(md.contains(want), "{want}:\n{md}");
    }
}

#[test]
fn tr113_stored_values_are_checked_and_unknown_folders_named() {
    use chimera::import::{ImportOptions, import_chimeraforge};
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("Demo_rust_multiagent_results");
    write_tr113_tree(&src);
    let opts = |data: &str| ImportOptions {
        source: src.clone(),
        manifest: crate::support::root().join("experiments/tr113.yaml"),
        data: dir.path().join(data),
        campaign: None,
    };
    // A stored efficiency its durations do not give: warned, the recomputed one imported.
    let run = src.join("bvc_gpu60_ctx512_temp0p6/run_1/metrics.json");
    let mut v: Value =
        serde_json::from_str(&fs::read_to_string(&run).expect("read")).expect("json");
    v["summary"]["efficiency_percent"] = json!(70.0);
    fs::write(&run, serde_json::to_string(&v).expect("json")).expect("write");
    let sum = import_chimeraforge(&opts("a")).expect("import");
    assert_eq!(sum.runs, 19);
    let has = |want: &str| sum.warnings.iter().any(|w| w.contains(want));
    assert!(
        has("recomputed published efficiency 77.8700 % differs from the stored 70.0000 %"),
        "{:?}",
        sum.warnings
    );
    assert!(
        has("run 1 efficiency 77.8700 % differs from its metrics.json (70.0000 %)"),
        "{:?}",
        sum.warnings
    );
    assert_eq!(sum.warnings.len(), 2, "{:?}", sum.warnings);

    // A folder that is no configuration of the manifest: refused, with the nearest id.
    fs::rename(
        src.join("homo_gpu80_ctx512_temp0p6"),
        src.join("homo_gpu80_ctx512_tmp0p6"),
    )
    .expect("rename");
    let err = import_chimeraforge(&opts("b"))
        .expect_err("unknown folder")
        .to_string();
    assert!(err.contains("homo_gpu80_ctx512_tmp0p6"), "{err}");
    assert!(
        err.contains("did you mean `homo_gpu80_ctx512_temp0p6`?"),
        "{err}"
    );
    assert!(!dir.path().join("b").exists(), "nothing written: {err}");
}
