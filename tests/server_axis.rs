//! The `server` axis end to end: `chimera run` starts a managed `chimera emulate` with the
//! first configuration's settings (`{server.x}` in its env), restarts it once for the second
//! group of configurations, and records each cell's settings in `cells.server_flags`; a
//! setting no managed endpoint uses is refused before anything runs. Unix only.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use arrow::array::{Array, AsArray};
use serde_json::Value;

use crate::support::{Manifest, Run, run_command, write_file};

const BIN: &str = env!("CARGO_BIN_EXE_chimera");

const PROFILE: &str = "seed: 3\nshared_gpu: false\nmodels:\n  - name: m:latest\n    load_ms: 2\n    \
                       prompt_tok_s: 1000000\n    output_tok_s: 400\n    output_tokens: 8\n";

/// A manifest of one managed emulator whose env takes `{server.x}`, and one block with
/// `axes` (a YAML flow mapping body), 2 repetitions.
fn manifest(dir: &Path, axes: &str) -> PathBuf {
    let profile = write_file(dir, "server-axis-profile.yaml", PROFILE);
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let endpoint = format!(
        "id: emu\n  kind: emulator\n  url: \"http://127.0.0.1:{port}\"\n  resource: \"local:gpu0\"\n  \
         managed:\n    command: [\"${{CHIMERA_TEST_BIN}}\", emulate, --listen, \"127.0.0.1:{port}\", \
         --profile, \"{}\"]\n    env: {{CHIMERA_LOG: warn, EMU_X: \"{{server.x}}\"}}\n    \
         startup_timeout_s: 10",
        profile.display()
    );
    let text = Manifest::new("TR916", "server axis")
        .endpoint(&endpoint)
        .model("m", "m:latest")
        .prompts("prompts", "H1", &["one"])
        .single("emu")
        .repetitions(2)
        .setting("request_timeout_s: 10")
        .setting("telemetry: {source: none}")
        .block(&format!(
            "workload: prompts\n  scenario: single\n  model: m\n  axes: {{{axes}}}"
        ))
        .yaml();
    let path = dir.join("tr916.yaml");
    fs::write(&path, text).expect("manifest");
    path
}

fn run(dir: &Path, manifest: &Path) -> Run {
    run_command(
        Command::new(BIN)
            .arg("run")
            .arg(manifest)
            .arg("--data")
            .arg(dir.join("data"))
            .args(["--campaign", "axis"])
            .env("CHIMERA_TEST_BIN", BIN)
            .env_remove("CHIMERA_LOG")
            .stdin(Stdio::null()),
    )
}

fn events(campaign: &Path) -> Vec<Value> {
    fs::read_to_string(campaign.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// (kind, server_flags) of every committed cell.
fn cells(campaign: &Path) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(campaign.join("cells"))
        .expect("cells")
        .flatten()
    {
        let part = e.path().join("cells.parquet");
        if !part.is_file() {
            continue;
        }
        for b in chimera::table::read_parquet(&part).expect("cells part") {
            let kind = b.column_by_name("kind").expect("kind").as_string::<i32>();
            let flags = b
                .column_by_name("server_flags")
                .expect("server_flags column")
                .as_string::<i32>();
            for i in 0..b.num_rows() {
                let f = (!flags.is_null(i)).then(|| flags.value(i).to_owned());
                out.push((kind.value(i).to_owned(), f));
            }
        }
    }
    out
}

#[test]
fn a_server_axis_restarts_the_managed_server_once_per_group_and_records_the_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manifest(dir.path(), "server: [{x: 1}, {x: 2}]");
    let out = run(dir.path(), &m);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("1 managed-server restart for new settings"),
        "{}",
        out.stderr
    );
    let campaign = dir.path().join("data/axis");
    let evs = events(&campaign);
    let named = |n: &str| evs.iter().filter(|e| e["event"] == n).collect::<Vec<_>>();
    let started = named("server_started");
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["settings"], "x=1", "{started:?}");
    let restarted = named("server_restarted");
    assert_eq!(restarted.len(), 1, "{evs:#?}");
    assert_eq!(restarted[0]["settings"], "x=2");
    let exit = restarted[0]["exit"].as_str().unwrap_or_default();
    assert!(exit.starts_with("stopped for new settings"), "{exit}");
    assert_ne!(restarted[0]["pid"], started[0]["pid"]);
    // The restart comes after the two cells of `x=1` and before those of `x=2`.
    let order: Vec<&str> = evs
        .iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("cell_committed") => Some("cell"),
            Some("server_restarted") => Some("restart"),
            _ => None,
        })
        .collect();
    let at = order.iter().position(|e| *e == "restart").expect("restart");
    assert_eq!(order.len() - at - 1, 2, "{order:?}");
    // The server's log shows both starts; the env value is the rendered one.
    let log = fs::read_to_string(campaign.join("servers/emu.log")).expect("log");
    assert_eq!(
        log.matches("restarting with settings x=2 (was x=1)")
            .count(),
        1,
        "{log}"
    );
    // Each measured cell records its settings.
    let mut flags: Vec<Option<String>> = cells(&campaign)
        .into_iter()
        .filter(|(k, _)| k == "single")
        .map(|(_, f)| f)
        .collect();
    flags.sort();
    assert_eq!(
        flags,
        [Some("x=1"), Some("x=1"), Some("x=2"), Some("x=2")].map(|f| f.map(str::to_owned))
    );
}

#[test]
fn server_settings_no_managed_endpoint_uses_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manifest(dir.path(), "server: [{x: 1, parallel: 4}]");
    let out = run(dir.path(), &m);
    out.assert_refused(&[
        "`server` setting `parallel` would change nothing",
        "{server.NAME}",
    ]);
    // A placeholder without a value for every configuration is refused too.
    let m = manifest(dir.path(), "server: [{x: 1}, {y: 2}]");
    let out = run(dir.path(), &m);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no value for `{server.x}` of endpoint `emu`"),
        "{}",
        out.stderr
    );
}
