//! The notebook examples against a real campaign: `chimera run` against a `chimera emulate`
//! child process (a baseline_vs_chimera scenario, so that agent A sends no options and B sends
//! all six, and a chimera_homo one), `chimera compact`, then `examples/load_tables.py --check`,
//! which loads the tables with pandas, polars and DuckDB and asserts UTC timestamps, integer
//! columns and option nulls.
//!
//! Needs python3 with pyarrow, pandas, polars and duckdb. Without them the test prints why it
//! is skipped and passes, unless `CHIMERA_REQUIRE_PYTHON_TESTS=1` (set by `.ci/run`).

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::support::{self, Emulator, Manifest, fast_profile, s};

const REQUIRE_ENV: &str = "CHIMERA_REQUIRE_PYTHON_TESTS";
const MODULES: &str = "pyarrow, pandas, polars, duckdb";
const PIP: &str = "python3 -m pip install pyarrow pandas polars duckdb";

fn manifest(a: SocketAddr, b: SocketAddr) -> String {
    Manifest::two_agent_workflow(
        "TR916",
        "notebook tables check",
        [a, b],
        ["local:gpu0", "local:gpu1"],
        1,
    )
    .homo("baseline_vs_chimera", "baseline_vs_chimera", "emu_a", "emu_b")
    .repetitions(2)
    .block(
        "workload: workflow\n  model: gemma3\n  scenario: baseline_vs_chimera\n  apply_to: [B]\n  \
         options: {num_gpu: 80, num_ctx: 512, temperature: 1.0, top_p: 0.9, top_k: 40, repeat_penalty: 1.1}\n  \
         configurations:\n    - {id: bvc}",
    )
    .block(
        "workload: workflow\n  model: gemma3\n  scenario: chimera_homo\n  apply_to: [A, B]\n  \
         options: {num_gpu: 80, num_ctx: 1024, temperature: 0.8}\n  configurations:\n    - {id: homo}",
    )
    .yaml()
}

/// `Ok` when python3 imports every module the script needs, else why not.
fn python_ready() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", &format!("import {MODULES}")])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Err(format!("python3 cannot be started: {e}")),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The last line of the traceback: `ModuleNotFoundError: No module named 'polars'`.
            let last = stderr.trim().lines().last().unwrap_or_default().to_owned();
            Err(format!("python3 cannot import {MODULES} ({last})"))
        }
        Ok(_) => Ok(()),
    }
}

#[test]
fn notebook_script_loads_the_compacted_tables_with_pandas_polars_and_duckdb() {
    if let Err(why) = python_ready() {
        assert!(
            std::env::var(REQUIRE_ENV).as_deref() != Ok("1"),
            "{why}; {REQUIRE_ENV}=1 requires this test: {PIP}"
        );
        eprintln!(
            "SKIPPED notebook_script_loads_the_compacted_tables_with_pandas_polars_and_duckdb: \
             {why}; `{PIP}` to run it ({REQUIRE_ENV}=1 makes this a failure)"
        );
        return;
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::start(dir.path(), "notebooks", &fast_profile(11), 2);
    let path = emu.write_manifest(dir.path(), "notebooks.yaml", |a| manifest(a[0], a[1]));
    let data = dir.path().join("data");

    let run = support::chimera(&["run", s(&path), "--data", s(&data), "--campaign", "nb"]);
    assert_eq!(run.code, 0, "chimera run: {}\n{}", run.stdout, run.stderr);
    drop(emu);
    let compact = support::chimera(&["compact", "--data", s(&data), "--campaign", "nb"]);
    assert_eq!(
        compact.code, 0,
        "chimera compact: {}\n{}",
        compact.stdout, compact.stderr
    );

    let script = support::root().join("examples/load_tables.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(data.join("nb"))
        .arg("--check")
        .current_dir(support::root())
        .stdin(Stdio::null())
        .output()
        .expect("run python3 examples/load_tables.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "load_tables.py --check failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    for line in ["baseline_vs_chimera", "chimera_homo"] {
        assert!(stdout.contains(line), "summary lacks {line}:\n{stdout}");
    }
    // 2 configurations × 2 repetitions: 4 concurrent + 8 isolated cells, and the warm-ups.
    let cells_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("cells "))
        .unwrap_or_default();
    let counts: Vec<&str> = cells_line.split_whitespace().skip(1).collect();
    assert!(
        counts.len() == 4 && counts.iter().all(|c| *c == counts[0]),
        "row counts differ between libraries: {cells_line}"
    );
    assert!(
        counts[0].parse::<u32>().is_ok_and(|n| n >= 12),
        "{cells_line}"
    );
}
