//! A manifest `load` workload against `chimera emulate`, whose timing is known: a concurrency
//! sweep and a rate sweep run as cells, every request lands in `requests` with its schedule,
//! send time and lengths, and the report's serving section finds the emulator's knee.

use std::net::SocketAddr;

use chimera::table::{RequestsRow, read_rows};
use chimera::workload::Stage;

use crate::support::{campaign, emulate, knee_profile};

fn manifest(addr: SocketAddr) -> String {
    format!(
        r#"format: 1
report: TR900_serving
title: Serving sweep on the emulator
endpoints:
  - {{id: emu, kind: emulator, url: "http://{addr}", resource: "local:gpu0"}}
models:
  - {{id: gemma3, tag: "gemma3:270m"}}
workloads:
  - id: serve
    task: {{kind: load, requests: 12, warmup_requests: 2, input_tokens: 100, output_tokens: 16, seed: 3}}
scenarios:
  - {{id: solo, kind: single, agents: [{{id: A, role: client, endpoint: emu}}]}}
matrix:
  - {{name: users, workload: serve, scenario: solo, model: gemma3, axes: {{concurrency: [1, 2, 4, 8]}}}}
  - {{name: rates, workload: serve, scenario: solo, model: gemma3, axes: {{rate: [4, 8]}}}}
repetitions: 3
warmup: {{policy: none}}
slos:
  - {{metric: ttft_ms, max_ms: 100}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_manifest_sweeps_levels_and_its_report_finds_the_knee() {
    // Replies of 160 ms (16 tokens at 100 tok/s): a wait for a slot is far above the 100 ms
    // SLO, so a scheduling stall on a loaded machine would have to last 100 ms to blur the knee.
    let emu = emulate(&knee_profile(100), 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // One fake GPU: deterministic telemetry with an energy counter (a test instrument, like
    // the emulator), so that the energy per output token is computed.
    let s = campaign(dir.path(), "serve", &manifest(emu.addrs[0]), false, Some(1)).await;
    assert!(s.failed.is_empty(), "{s:?}");
    let data = dir.path().join("data");

    // Every cell's requests: 2 warm-up + 12 measured, stage `load`, lengths asked for beside
    // the counted ones, the schedule of the open-loop cells.
    let mut cells = 0;
    let mut open = 0;
    for e in std::fs::read_dir(data.join("serve").join("cells")).expect("cells") {
        let d = e.expect("entry").path();
        let rows: Vec<RequestsRow> = read_rows(&d.join("requests.parquet")).expect("requests");
        cells += 1;
        assert_eq!(rows.len(), 14, "{}", d.display());
        assert_eq!(rows.iter().filter(|r| r.warmup).count(), 2);
        for r in &rows {
            assert_eq!(r.stage, Stage::Load);
            assert!(r.error_kind.is_none(), "{r:?}");
            assert_eq!(r.input_tokens_requested, Some(100));
            assert_eq!(r.output_tokens_requested, Some(16));
            assert_eq!(r.output_tokens, Some(16));
            let counted = r.prompt_tokens.expect("prompt tokens") as f64;
            assert!((counted - 100.0).abs() <= 3.0, "prompt tokens {counted}");
            assert_eq!(r.itl_ms.len(), 15, "one gap per token after the first");
            assert!(r.load_sent_ms.is_some());
        }
        if rows[0].scheduled_ms.is_some() {
            open += 1;
            for r in &rows {
                let late = r.lateness_ms.expect("lateness");
                let want = r.load_sent_ms.expect("sent") - r.scheduled_ms.expect("scheduled");
                assert!((late - want).abs() < 1e-9);
                assert!(late > -1.0, "sent {late} ms before its time");
            }
        } else {
            assert!(
                rows.iter()
                    .all(|r| r.load_user.is_some() && r.lateness_ms.is_none())
            );
        }
    }
    assert_eq!(
        (cells, open),
        (18, 6),
        "6 levels × 3 repetitions, 2 levels open loop"
    );

    let out = chimera::analysis::analyze(&data, Some("serve"), None).expect("analyze");
    let a = &out[0].1;
    let r = &a.reports[0];
    assert!(r.suspect.is_empty(), "{:#?}", r.suspect);
    let serving = r.serving.as_ref().expect("serving section");
    assert_eq!(serving.series.len(), 2, "{:#?}", serving.series);
    let closed = serving
        .series
        .iter()
        .find(|x| x.unit == "users")
        .expect("closed loop");
    let levels: Vec<f64> = closed.levels.iter().map(|l| l.result.level).collect();
    assert_eq!(levels, [1.0, 2.0, 4.0, 8.0]);
    // Four users wait for a slot and fail the 100 ms p99 TTFT; below, a stall on a loaded
    // machine could leave two users unsure.
    assert_eq!(
        closed.frontier.first_failing,
        Some(4.0),
        "{:#?}",
        closed.frontier
    );
    assert!(
        matches!(closed.frontier.largest_meeting, Some(x) if x == 1.0 || x == 2.0),
        "{:#?}",
        closed.frontier
    );
    for l in &closed.levels {
        let x = &l.result;
        assert_eq!(x.runs.len(), 3);
        assert_eq!(x.output_tokens, Some(16.0));
        assert_eq!(x.output_tokens_off, Some(0.0));
        assert!(x.input_tokens_off.expect("off") <= 3.0);
        let rate = x.request_rate.expect("rate").mean;
        let good = x.goodput.expect("goodput").mean;
        assert!(good <= rate + 1e-9);
        assert!(x.ttft_p99.expect("ttft").ci95.is_some(), "3 runs give a CI");
        let j = l.energy_j_per_token.expect("energy per token").mean;
        assert!(j.is_finite() && j > 0.0, "{j}");
    }
    // At 8 users most requests wait for a slot: goodput well below the request rate.
    let eight = &closed.levels[3].result;
    assert!(eight.goodput.expect("g").mean < 0.75 * eight.request_rate.expect("r").mean);
    let open_series = serving
        .series
        .iter()
        .find(|x| x.unit != "users")
        .expect("open");
    assert!(
        open_series
            .levels
            .iter()
            .all(|l| l.result.lateness_p99.is_some())
    );

    let md = chimera::report::render_markdown(a, r, "figures");
    for want in [
        ". Serving load\n",
        "### users (closed loop) · solo: agent A on `emu`",
        "### rates (open loop) · solo",
        "SLOs (manifest `slos`): p99 ttft_ms ≤ 100 ms",
        "SLO frontier: the largest level meeting every SLO",
        "first level that fails them: 4 users",
        "| 1 user | 3 | 36 / 36 |",
        "is chimera's emulator",
        "tr900_serving-latency-throughput.svg",
        "100 → ",
    ] {
        assert!(md.contains(want), "missing {want:?} in\n{md}");
    }
}

/// A load that runs for a duration instead of a request count: each run sends for the time
/// given (closed loop: users stop starting requests then; open loop: the schedule ends), every
/// request it started counts, and the request-count self-check does not apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_manifest_runs_for_a_duration() {
    let emu = emulate(&knee_profile(400), 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = manifest(emu.addrs[0])
        .replace("requests: 12,", "duration_s: 0.6,")
        .replace("concurrency: [1, 2, 4, 8]", "concurrency: [2]")
        .replace("rate: [4, 8]", "rate: [20]")
        .replace("repetitions: 3", "repetitions: 1");
    let s = campaign(dir.path(), "timed", &text, false, None).await;
    assert!(s.failed.is_empty(), "{s:?}");
    let data = dir.path().join("data");
    let mut by_kind = Vec::new();
    for e in std::fs::read_dir(data.join("timed").join("cells")).expect("cells") {
        let d = e.expect("entry").path();
        let rows: Vec<RequestsRow> = read_rows(&d.join("requests.parquet")).expect("requests");
        let measured: Vec<&RequestsRow> = rows.iter().filter(|r| !r.warmup).collect();
        assert_eq!(
            rows.len() - measured.len(),
            2,
            "the warm-up is still a count"
        );
        let sent: Vec<f64> = measured
            .iter()
            .map(|r| r.load_sent_ms.expect("sent"))
            .collect();
        let open = rows[0].scheduled_ms.is_some();
        if open {
            // Scheduled within the 600 ms, none after.
            assert!(
                measured
                    .iter()
                    .all(|r| r.scheduled_ms.expect("scheduled") < 600.0)
            );
        } else {
            // Started within the 600 ms (a little slack for the user's own step).
            assert!(sent.iter().all(|&t| t < 650.0), "{sent:?}");
        }
        assert!(measured.iter().all(|r| r.error_kind.is_none()));
        by_kind.push((open, measured.len()));
    }
    by_kind.sort();
    // Closed loop, 2 users, replies of 40 ms: about 2 × 600 / 40 = 30 requests; open loop at
    // 20/s for 0.6 s: 12 arrivals (Poisson, seeded), so between a few and about 25.
    let (closed, open) = (by_kind[0], by_kind[1]);
    assert!(!closed.0 && open.0, "{by_kind:?}");
    assert!(
        (8..=34).contains(&closed.1),
        "closed loop sent {}",
        closed.1
    );
    assert!((3..=30).contains(&open.1), "open loop sent {}", open.1);

    let out = chimera::analysis::analyze(&data, Some("timed"), None).expect("analyze");
    let r = &out[0].1.reports[0];
    assert!(
        r.suspect.is_empty(),
        "no request-count check on a timed load: {:#?}",
        r.suspect
    );
    assert_eq!(r.serving.as_ref().expect("serving").series.len(), 2);
}
