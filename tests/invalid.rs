//! One invalid manifest per mistake in `tests/fixtures/invalid/`: each must exit 2 with a
//! located message (snapshotted), and none may panic.

use std::io::Write;

use crate::support::{chimera, root, write_file, yaml_files};

#[test]
fn every_invalid_manifest_is_rejected_with_a_located_message() {
    let dir = root().join("tests/fixtures/invalid");
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 25,
        "expected at least 25 invalid fixtures, found {}",
        files.len()
    );
    let mut mismatched = Vec::new();
    for f in files {
        let name = f
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_owned();
        let rel = format!("tests/fixtures/invalid/{name}.yaml");
        let run = chimera(&["validate", &rel]);
        assert_eq!(
            run.code, 2,
            "{rel}: exit code {} (stderr: {})",
            run.code, run.stderr
        );
        assert!(
            run.stdout.is_empty(),
            "{rel}: printed to stdout: {}",
            run.stdout
        );
        assert!(!run.stderr.contains("panicked"), "{rel}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{rel}: {}", run.stderr);
        assert!(
            run.stderr.contains("  --> tests/fixtures/invalid/"),
            "{rel}: no file named: {}",
            run.stderr
        );
        // Check every snapshot, then fail once, naming all that changed.
        let snap = std::panic::catch_unwind(|| {
            insta::assert_snapshot!(format!("invalid__{name}"), run.stderr);
        });
        if snap.is_err() {
            mismatched.push(name);
        }
    }
    assert!(
        mismatched.is_empty(),
        "snapshots differ for: {}",
        mismatched.join(", ")
    );
}

#[test]
fn a_50_mib_manifest_is_refused_without_parsing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.yaml");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    writeln!(f, "format: 1\nreport: TR900\ntitle: huge\ndescription: |").expect("write");
    let line = format!("  {}\n", "x".repeat(1022));
    for _ in 0..(50 * 1024) {
        f.write_all(line.as_bytes()).expect("write");
    }
    drop(f);
    chimera(&["validate", path.to_str().expect("utf-8 path")]).assert_refused(&[
        "manifest file is too large",
        "found: 50.0 MiB",
        "expected: at most 4 MiB",
    ]);
}

#[test]
fn a_missing_file_is_invalid_input() {
    chimera(&["validate", "experiments/no-such-report.yaml"])
        .assert_refused(&["cannot open manifest", "experiments/no-such-report.yaml"]);
}

#[test]
fn all_mistakes_of_one_file_are_reported_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = std::fs::read_to_string(root().join("tests/fixtures/invalid/unknown_model.yaml"))
        .expect("read");
    let src = src
        .replace("endpoint: ollama_11435}", "endpoint: ollama_11436}")
        .replace("repetitions: 5", "repetitions: 0");
    let path = write_file(dir.path(), "several.yaml", &src);
    let run = chimera(&["validate", path.to_str().expect("path")]);
    run.assert_refused(&[
        "unknown endpoint `ollama_11436`",
        "`repetitions` must be at least 1",
        "unknown model `gemma4`",
    ]);
    assert_eq!(run.stderr.matches("error: ").count(), 3, "{}", run.stderr);
}
