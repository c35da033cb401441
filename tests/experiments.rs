//! The shipped manifests: all valid, editor-ready, and TR114_v2 planned as published.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{chimera, root, yaml_files};

#[test]
fn every_manifest_starts_with_the_schema_comment_and_validates() {
    let files = yaml_files(&root().join("experiments"));
    assert!(
        files.len() >= 9,
        "nine reports expected, found {}",
        files.len()
    );
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/manifest.schema.json\n"),
            "{} lacks the schema comment on its first line",
            f.display()
        );
    }
    let mut args = vec!["validate".to_owned()];
    args.extend(files.iter().map(|f| {
        format!(
            "experiments/{}",
            f.file_name().and_then(|n| n.to_str()).expect("name")
        )
    }));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = chimera(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reports: BTreeSet<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    for r in [
        "TR108:",
        "TR109:",
        "TR110:",
        "TR111_v2:",
        "TR112_v2:",
        "TR113:",
        "TR114_v2:",
        "TR115_v2:",
        "TR116:",
    ] {
        assert!(reports.contains(r), "{r} missing from: {}", run.stdout);
    }
}

#[test]
fn tr114_plans_27_tests_by_5_concurrent_cells_with_baselines_and_warmups() {
    let run = chimera(&["plan", "experiments/tr114.yaml", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let nodes = v["nodes"].as_array().expect("nodes");
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for n in nodes {
        *kinds.entry(n["kind"].as_str().expect("kind")).or_default() += 1;
    }
    assert_eq!(kinds.get("concurrent"), Some(&135));
    assert_eq!(kinds.get("isolated"), Some(&270));
    assert_eq!(kinds.get("analysis"), Some(&1));
    assert_eq!(kinds.get("report"), Some(&1));
    assert!(kinds.get("warmup").copied().unwrap_or(0) > 0);
    let tests: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| n["kind"] == "concurrent")
        .map(|n| n["config"].as_str().expect("config"))
        .collect();
    let expected: BTreeSet<String> = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 100, 103, 104, 106, 107,
        108, 200, 201, 202,
    ]
    .iter()
    .map(|n| format!("test{n:03}"))
    .collect();
    assert_eq!(tests, expected.iter().map(String::as_str).collect());
    assert_eq!(
        v["reports"][0]["missing"],
        serde_json::json!(["test101", "test102", "test105"])
    );
    // Every concurrent cell depends on its two isolated baselines of the same repetition.
    let by_id: BTreeMap<&str, &serde_json::Value> = nodes
        .iter()
        .map(|n| (n["id"].as_str().expect("id"), n))
        .collect();
    for n in nodes.iter().filter(|n| n["kind"] == "concurrent") {
        let iso: Vec<&&serde_json::Value> = n["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .map(|d| by_id.get(d.as_str().expect("dep")).expect("dep exists"))
            .filter(|d| d["kind"] == "isolated")
            .collect();
        assert_eq!(iso.len(), 2, "{n}");
        for d in iso {
            assert_eq!(d["config"], n["config"]);
            assert_eq!(d["repetition"], n["repetition"]);
        }
    }
}

#[test]
fn tr114_plan_summary() {
    let run = chimera(&["plan", "experiments/tr114.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("plan_summary_tr114", run.stdout);
}

#[test]
fn explain_shows_key_and_provenance_of_a_cell() {
    let plan = chimera::plan::build(&[root().join("experiments/tr114.yaml")]).expect("plan");
    let ni = plan
        .order
        .iter()
        .copied()
        .find(|&i| {
            let n = &plan.graph[i];
            n.kind == chimera::plan::NodeKind::Concurrent
                && &*plan.cell_config(n).id == "test011"
                && n.repetition == 1
        })
        .expect("test011 rep 1");
    let id = plan.graph[ni].id.hex();
    let run = chimera(&["plan", "experiments/tr114.yaml", "--explain", &id[..10]]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("key (hashed into the id)"));
    assert!(run.stdout.contains("provenance only (not in the id)"));
    assert!(run.stdout.contains("configuration   test011"));
    insta::assert_snapshot!("explain_tr114_test011_rep1", run.stdout);
}

#[test]
fn tr112_pulls_in_the_reports_it_depends_on() {
    let plan = chimera::plan::build(&[root().join("experiments/tr112.yaml")]).expect("plan");
    let ids: Vec<&str> = plan.reports.iter().map(|r| r.report.as_str()).collect();
    assert_eq!(ids.last(), Some(&"TR112_v2"));
    assert!(
        ids.contains(&"TR109") && ids.contains(&"TR111_v2"),
        "{ids:?}"
    );
    assert!(chimera::plan::is_topological(&plan));
}
