//! The command line end to end: exit codes, schema, formats, explain.

use crate::support::{chimera, root};

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
    assert_eq!(run.stdout, chimera::manifest::schema_json());
    assert!(
        committed == run.stdout,
        "schemas/manifest.schema.json is stale: run `make schema` and commit it"
    );
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("schema is JSON");
    assert_eq!(v["additionalProperties"], serde_json::Value::Bool(false));
}

#[test]
fn bad_flags_are_usage_errors() {
    let run = chimera(&["plan", "experiments/tr114.yaml", "--format", "xml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("possible values: text, json, dot"),
        "{}",
        run.stderr
    );
}

#[test]
fn explain_unknown_prefix_is_invalid_input() {
    let run = chimera(&["plan", "experiments/tr114.yaml", "--explain", "zzzz"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no node id starts with `zzzz`"),
        "{}",
        run.stderr
    );
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
