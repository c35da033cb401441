//! Server-side metrics (`server_metrics` on an endpoint): a campaign against two OpenAI-
//! protocol emulator listeners whose `/metrics` publish known counters. Per cell, the increase
//! of the emulator's completed-requests counter equals the requests the cell's table holds and
//! the increase of its tokens counter the tokens the cell generated; the report has a Server
//! metrics section that says the numbers are the emulator's. Without the key: no table, no
//! section, the same cell ids. A `/metrics` that answers 404 leaves the cells ok, one warning,
//! gaps in the table. `kind: ollama` with the key is refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use chimera::table::{
    GAP_KIND, RequestsRow, SERVER_METRICS_PART_FILE, ServerMetricsRow, read_rows,
};

use crate::support::{
    Manifest, campaign, chimera_cmd_in, chimera_in, emulate, fast_profile, homo_config,
    run_command, write_file,
};

const COMPLETED: &str = "chimera_emulator:requests_completed_total";
const TOKENS: &str = "chimera_emulator:tokens_generated_total";

/// A TR114-shaped campaign (one configuration, 2 repetitions, each agent also alone) on two
/// OpenAI-protocol emulator endpoints; `server_metrics` is appended to both when given.
fn manifest([a, b]: [SocketAddr; 2], server_metrics: Option<&str>) -> String {
    let text = Manifest::two_agent_workflow(
        "TR971",
        "server metrics check",
        [a, b],
        ["local:gpu0", "local:gpu1"],
        1,
    )
    .repetitions(2)
    .configurations("workflow", "gemma3", &[homo_config("c1", "num_ctx: 512")])
    .yaml()
    .replace("kind: emulator", "kind: openai");
    match server_metrics {
        Some(sm) => text
            .replace(
                "resource: \"local:gpu0\"}",
                &format!("resource: \"local:gpu0\", server_metrics: {sm}}}"),
            )
            .replace(
                "resource: \"local:gpu1\"}",
                &format!("resource: \"local:gpu1\", server_metrics: {sm}}}"),
            ),
        None => text,
    }
}

/// The committed cell directories of campaign `name` under `data`.
fn cell_dirs(data: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(data.join(name).join("cells"))
        .expect("cells")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

/// Per endpoint, the increase of `metric` over the cell (last reading − first).
fn increase(rows: &[ServerMetricsRow], metric: &str) -> BTreeMap<String, f64> {
    let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.metric == metric) {
        by.entry(r.endpoint.clone())
            .or_default()
            .push((r.t_ms, r.value.expect("a reading")));
    }
    by.into_iter()
        .map(|(e, mut v)| {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            (e, v[v.len() - 1].1 - v[0].1)
        })
        .collect()
}

fn report_md(data: &Path, name: &str) -> (String, String) {
    let out = chimera::analysis::analyze(data, Some(name), None).expect("analyze");
    let (_, a) = &out[0];
    let md = chimera::report::render_markdown(a, &a.reports[0], "figures");
    (md, serde_json::to_string(a).expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_metrics_count_exactly_what_each_cell_sent() {
    let emu = emulate(&fast_profile(21), 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let addrs = [emu.addrs[0], emu.addrs[1]];
    let text = manifest(addrs, Some("{interval_ms: 50}"));
    let s = campaign(dir.path(), "sm", &text, false, None).await;
    assert!(s.failed.is_empty(), "{s:?}");
    let data = dir.path().join("data");
    let mut measured = 0;
    for d in cell_dirs(&data, "sm") {
        let part = d.join(SERVER_METRICS_PART_FILE);
        let requests: Vec<RequestsRow> = read_rows(&d.join("requests.parquet")).expect("requests");
        if !part.exists() {
            // Warm-ups sample nothing.
            assert!(requests.iter().all(|r| r.warmup), "{}", d.display());
            continue;
        }
        measured += 1;
        let rows: Vec<ServerMetricsRow> = read_rows(&part).expect("server_metrics");
        assert!(rows.iter().all(|r| r.kind != GAP_KIND), "{rows:?}");
        let completed: f64 = increase(&rows, COMPLETED).values().sum();
        let tokens: f64 = increase(&rows, TOKENS).values().sum();
        let generated: u64 = requests.iter().filter_map(|r| r.output_tokens).sum();
        assert!(!requests.is_empty());
        assert_eq!(completed, requests.len() as f64, "{}", d.display());
        assert_eq!(tokens, generated as f64, "{}", d.display());
        // The in-flight gauge was read at the start and at the end, when nothing ran.
        let in_flight: Vec<f64> = rows
            .iter()
            .filter(|r| r.metric == "chimera_emulator:requests_in_flight")
            .filter_map(|r| r.value)
            .collect();
        assert!(in_flight.len() >= 2);
        assert_eq!(in_flight[0], 0.0);
    }
    assert_eq!(measured, 2 + 4, "2 concurrent runs and 4 isolated ones");

    let (md, _) = report_md(&data, "sm");
    let section = md
        .split("Server metrics\n")
        .nth(1)
        .expect("a Server metrics section");
    assert!(
        section.contains("requests completed (emulator)"),
        "{section}"
    );
    assert!(section.contains("tokens generated (emulator)"), "{section}");
    assert!(
        section.contains("served by chimera's emulator"),
        "{section}"
    );
    assert!(section.contains("endpoint `emu_a`") && section.contains("endpoint `emu_b`"));

    // Without the key: the same cells, no table, no section, no analysis field.
    let plain = manifest(addrs, None);
    let ids = |t: &str, n: &str| {
        let p = write_file(dir.path(), n, t);
        let plan = chimera::plan::build(&[p]).expect("plan");
        plan.graph
            .node_weights()
            .map(|n| n.id.hex())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&text, "with.yaml"), ids(&plain, "without.yaml"));
    let s = campaign(dir.path(), "plain", &plain, false, None).await;
    assert!(s.failed.is_empty(), "{s:?}");
    for d in cell_dirs(&data, "plain") {
        assert!(!d.join(SERVER_METRICS_PART_FILE).exists());
    }
    let (md, json) = report_md(&data, "plain");
    assert!(!md.contains("Server metrics"), "{md}");
    assert!(!json.contains("server_metrics"));
    let summary = chimera::table::compact(&data.join("plain")).expect("compact");
    assert_eq!(summary.rows_of("server_metrics"), 0);
    assert!(!data.join("plain/tables/server_metrics").exists());
    let summary = chimera::table::compact(&data.join("sm")).expect("compact");
    assert!(summary.rows_of("server_metrics") > 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_metrics_endpoint_leaves_the_cells_ok_with_one_warning_and_gaps() {
    let emu = emulate(&fast_profile(22), 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = manifest(
        [emu.addrs[0], emu.addrs[1]],
        Some("{path: /no-metrics-here, interval_ms: 50}"),
    );
    let path = write_file(dir.path(), "dead.yaml", &text);
    let out = chimera_in(
        dir.path(),
        &[
            "run",
            path.to_str().expect("utf-8"),
            "--data",
            "data",
            "--campaign",
            "dead",
            "--no-cache",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    for e in ["emu_a", "emu_b"] {
        let warned = out
            .stderr
            .lines()
            .filter(|l| l.contains(&format!("endpoint `{e}`: server metrics")))
            .count();
        assert_eq!(warned, 1, "one warning per endpoint: {}", out.stderr);
    }
    assert!(out.stderr.contains("404"), "{}", out.stderr);
    let data = dir.path().join("data");
    let mut gaps = 0;
    for d in cell_dirs(&data, "dead") {
        let part = d.join(SERVER_METRICS_PART_FILE);
        if part.exists() {
            let rows: Vec<ServerMetricsRow> = read_rows(&part).expect("rows");
            assert!(rows.iter().all(|r| r.kind == GAP_KIND && r.value.is_none()));
            assert!(
                rows.iter()
                    .all(|r| r.error.as_deref().is_some_and(|e| e.contains("404")))
            );
            gaps += rows.len();
        }
    }
    assert!(
        gaps >= 2 * 6,
        "a start and an end gap per endpoint and cell: {gaps}"
    );
    let (md, _) = report_md(&data, "dead");
    assert!(md.contains("scrapes failed (gaps)"), "{md}");
    emu.shutdown().await;
}

/// A proxy in the environment (one that refuses every connection) gets neither the requests
/// nor the scrapes of the endpoints: every scrape answers, no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proxy_in_the_environment_does_not_get_the_scrapes() {
    let emu = emulate(&fast_profile(23), 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = manifest([emu.addrs[0], emu.addrs[1]], Some("{interval_ms: 50}"));
    let path = write_file(dir.path(), "proxied.yaml", &text);
    let path = path.to_str().expect("utf-8");
    let args = [
        "run",
        path,
        "--data",
        "data",
        "--campaign",
        "proxied",
        "--no-cache",
    ];
    let mut cmd = chimera_cmd_in(dir.path(), &args);
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env(var, "http://127.0.0.1:9");
    }
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    let out = run_command(&mut cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("server metrics"), "{}", out.stderr);
    let mut rows = 0;
    for d in cell_dirs(&dir.path().join("data"), "proxied") {
        let part = d.join(SERVER_METRICS_PART_FILE);
        if part.exists() {
            let got: Vec<ServerMetricsRow> = read_rows(&part).expect("rows");
            assert!(got.iter().all(|r| r.kind != GAP_KIND), "{got:?}");
            rows += got.len();
        }
    }
    assert!(rows > 0);
    emu.shutdown().await;
}

#[test]
fn server_metrics_on_an_ollama_endpoint_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a: SocketAddr = "127.0.0.1:19671".parse().expect("addr");
    let b: SocketAddr = "127.0.0.1:19672".parse().expect("addr");
    let text = manifest([a, b], Some("{}")).replacen("kind: openai", "kind: ollama", 1);
    write_file(dir.path(), "ollama.yaml", &text);
    let out = chimera_in(dir.path(), &["validate", "ollama.yaml"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for want in [
        "ollama.yaml",
        "server_metrics",
        "endpoint `emu_a` is `kind: ollama`, and Ollama exposes no Prometheus `/metrics` endpoint",
        "remove `server_metrics`",
    ] {
        assert!(out.stderr.contains(want), "{want}: {}", out.stderr);
    }
    // The other endpoint (`kind: openai`) is accepted: one error only.
    assert_eq!(
        out.stderr.matches("Ollama exposes no").count(),
        1,
        "{}",
        out.stderr
    );
}
