//! The command line end to end: exit codes, schema, formats, explain.

use crate::support::{chimera, root, write_file, yaml_files};

#[test]
fn analysis_commands_reject_a_manifest_path_with_usage_help() {
    for cmd in ["analyze", "report", "import"] {
        let run = chimera(&[cmd, "experiments/tr114.yaml"]);
        assert_eq!(run.code, 2, "{cmd}: {}", run.stderr);
        assert!(run.stderr.contains("Usage:"), "{cmd}: {}", run.stderr);
    }
}

#[test]
fn committed_schema_matches_the_types() {
    let committed =
        std::fs::read_to_string(root().join("schemas/manifest.schema.json")).expect("read schema");
    let run = chimera(&["schema"]);
    assert_eq!(run.code, 0);
    assert!(
        committed == run.stdout,
        "schemas/manifest.schema.json is stale: run `make schema` and commit it"
    );
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("schema is JSON");
    assert_eq!(v["additionalProperties"], serde_json::Value::Bool(false));
    let committed = std::fs::read_to_string(root().join("schemas/agent-record.schema.json"))
        .expect("read the agent record schema");
    let run = chimera(&["schema", "--agent-record"]);
    assert_eq!(run.code, 0);
    assert!(
        committed == run.stdout,
        "schemas/agent-record.schema.json is stale: run `make schema` and commit it"
    );
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("schema is JSON");
    assert_eq!(v["additionalProperties"], serde_json::Value::Bool(false));
    let required: Vec<&str> = v["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    assert_eq!(required, ["stage", "sent_at_unix_ms", "e2e_ms"]);
}

/// The schema and the loader agree, checked against each other rather than against
/// themselves: every top-level key of the shipped manifests is a schema property, and every
/// key the schema requires is one whose absence `chimera validate` refuses.
#[test]
fn schema_and_loader_agree_on_top_level_keys() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/manifest.schema.json")).expect("schema"),
    )
    .expect("schema is JSON");
    let props = schema["properties"].as_object().expect("properties");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .map(|r| r.as_str().expect("a key"))
        .collect();
    assert!(required.contains(&"report") && required.contains(&"format"));
    for path in yaml_files(&root().join("experiments")) {
        let text = std::fs::read_to_string(&path).expect("manifest");
        let m: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
        for key in m.as_object().expect("a mapping").keys() {
            assert!(
                props.contains_key(key),
                "{}: `{key}` is not in the schema",
                path.display()
            );
        }
    }
    let t = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(root().join("experiments/tr108.yaml")).expect("tr108");
    let full: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
    // The whole manifest, re-written as JSON (which YAML reads), validates.
    let whole = write_file(
        t.path(),
        "tr108.yaml",
        &serde_json::to_string(&full).expect("json"),
    );
    let ok = chimera(&["validate", whole.to_str().expect("utf-8")]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    for key in &required {
        let mut m = full.clone();
        m.as_object_mut().expect("mapping").remove(*key);
        let path = t.path().join(format!("tr108-without-{key}.yaml"));
        std::fs::write(&path, serde_json::to_string(&m).expect("json")).expect("write");
        let out = chimera(&["validate", path.to_str().expect("utf-8")]);
        assert_eq!(out.code, 2, "without `{key}`: {}", out.stderr);
        assert!(out.stderr.contains(key), "without `{key}`: {}", out.stderr);
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    chimera(&["plan", "experiments/tr114.yaml", "--format", "xml"])
        .assert_refused(&["possible values: text, json, dot"]);
}

#[test]
fn explain_unknown_prefix_is_invalid_input() {
    chimera(&["plan", "experiments/tr114.yaml", "--explain", "zzzz"])
        .assert_refused(&["no node id starts with `zzzz`"]);
}

#[test]
fn dot_output_is_a_digraph_with_every_edge() {
    let run = chimera(&["plan", "experiments/tr113.yaml", "--format", "dot"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("digraph chimera_plan {"));
    assert!(run.stdout.trim_end().ends_with('}'));
    let plan = chimera::plan::build(&[root().join("experiments/tr113.yaml")]).expect("plan");
    assert_eq!(run.stdout.matches(" -> ").count(), plan.graph.edge_count());
}
