//! The load driver against `chimera emulate`, whose timing is known: closed-loop users find
//! the emulator's knee (two slots per listener: a third user waits a whole reply for a slot),
//! and an open-loop Poisson load sends at its scheduled times.

use std::sync::Arc;
use std::time::Duration;

use chimera::backend::{Client, LlmRequest};
use chimera::load::{
    Arrivals, Level, Load, MakeRequest, Mode, Slo, SloMetric, Stop, drive, frontier, summarise,
};
use chimera::manifest::{Api, EndpointKind, Options};

use crate::support::{Emulator, knee_profile};

/// The knee profile with 40 ms replies (16 tokens at 400 tok/s).
fn knee() -> String {
    knee_profile(400)
}

fn make() -> MakeRequest {
    Arc::new(|i| {
        (
            LlmRequest {
                api: Api::Generate,
                model: "gemma3:270m".into(),
                prompt: format!("request {i}: say something"),
                stream: true,
                options: Options::default(),
                keep_alive: None,
                timeout: Duration::from_secs(30),
                max_response_bytes: 1 << 20,
            },
            None,
        )
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn closed_loop_users_find_the_emulators_knee() {
    let t = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::start(t.path(), "knee", &knee(), 1);
    let url = format!("http://{}", emu.addrs[0]);
    let client = Arc::new(Client::new(EndpointKind::Ollama, &url).expect("client"));
    let rt = runtime();
    let users = [1u32, 2, 4, 8];
    let mut runs: Vec<(f64, Vec<Vec<chimera::load::Sample>>)> = Vec::new();
    for &u in &users {
        let mut reps = Vec::new();
        for _ in 0..3 {
            let load = Load {
                mode: Mode::Closed { users: u },
                stop: Stop::Requests(u64::from(u) * 6 + 2),
                warmup: Some(Stop::Requests(2)),
            };
            let samples = rt
                .block_on(drive(&load, client.clone(), make()))
                .expect("drive");
            assert_eq!(samples.len() as u32, u * 6 + 2);
            assert!(samples.iter().all(|s| s.ok), "{samples:?}");
            assert!(samples.iter().all(|s| s.output_tokens == Some(16)));
            assert_eq!(samples.iter().filter(|s| s.warmup).count(), 2);
            // Each user sends one request at a time.
            for user in 0..u {
                let mut mine: Vec<_> = samples.iter().filter(|s| s.user == Some(user)).collect();
                mine.sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
                for w in mine.windows(2) {
                    assert!(
                        w[1].sent_ms >= w[0].done_ms,
                        "user {user} overlapped itself"
                    );
                }
            }
            reps.push(samples);
        }
        runs.push((f64::from(u), reps));
    }
    let levels: Vec<Level<'_>> = runs
        .iter()
        .map(|(u, reps)| Level {
            level: *u,
            runs: reps.iter().map(Vec::as_slice).collect(),
        })
        .collect();
    // The bound sits between the two regimes: about 3 ms to the first token without a wait,
    // about 40 ms more with one.
    let slo = Slo {
        metric: SloMetric::TtftMs,
        max_ms: 25.0,
        percentile: 99.0,
    };
    let f = frontier(&levels, &[slo]);
    // Four users wait for a slot and fail; below, a stall on a loaded machine can leave two
    // users unsure, so the frontier is 2 users, or 1.
    assert_eq!(f.first_failing, Some(4.0), "{f:#?}");
    assert!(
        matches!(f.largest_meeting, Some(x) if x == 2.0 || x == 1.0),
        "{f:#?}"
    );
    // The time per output token is the emulator's 2.5 ms whatever the load (one GPU per
    // listener, each slot decoding at 400 tok/s), within timer resolution.
    for (_, reps) in &runs {
        let s = summarise(&reps[0], &[slo]);
        let tpot = s.tpot.expect("tpot").p50;
        assert!((2.3..4.0).contains(&tpot), "TPOT p50 {tpot}");
    }
    // Goodput at 8 users: only the requests that did not wait for a slot are good.
    let s8 = summarise(&runs[3].1[0], &[slo]);
    assert!(s8.good < s8.ok, "{s8:?}");
}

#[test]
fn an_open_loop_sends_at_its_scheduled_times() {
    let t = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::start(
        t.path(),
        "open",
        knee()
            .replace("num_parallel: 2", "num_parallel: 0")
            .as_str(),
        1,
    );
    let url = format!("http://{}", emu.addrs[0]);
    let client = Arc::new(Client::new(EndpointKind::Ollama, &url).expect("client"));
    let arrivals = Arrivals::Poisson {
        rate_per_s: 100.0,
        seed: 11,
    };
    let load = Load {
        mode: Mode::Open {
            arrivals: arrivals.clone(),
        },
        stop: Stop::Requests(150),
        warmup: Some(Stop::DurationMs(100.0)),
    };
    let samples = runtime()
        .block_on(drive(&load, client, make()))
        .expect("drive");
    let schedule = arrivals.schedule(Stop::Requests(150)).expect("schedule");
    assert_eq!(samples.len(), 150);
    for (s, at) in samples.iter().zip(&schedule) {
        assert_eq!(s.scheduled_ms, Some(*at));
        assert!(s.lateness_ms().expect("lateness") >= -1e-6, "{s:?}");
        assert!(s.ok && s.user.is_none());
        assert_eq!(s.warmup, *at < 100.0);
    }
    // Open loop: requests overlap (at 100/s, 40 ms replies), unlike one closed-loop user.
    let overlapping = samples
        .windows(2)
        .filter(|w| w[1].sent_ms < w[0].done_ms)
        .count();
    assert!(overlapping > 0);
    let s = summarise(&samples, &[]);
    assert!(s.requests < 150 && s.requests > 100);
    // Sent on time, give or take a loaded machine: the median lateness is far below the
    // 10 ms between requests.
    let late = s.lateness.expect("lateness");
    assert!(late.p50 < 5.0, "{late:?}");
}

/// `chimera load` on the command line: the sweep as JSON, the knee as the frontier, and a
/// mistyped SLO refused with the form to write.
#[test]
fn the_load_command_prints_the_sweep_and_its_frontier() {
    let t = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::start(t.path(), "cli", &knee(), 1);
    let url = format!("http://{}", emu.addrs[0]);
    let args = [
        "load",
        url.as_str(),
        "--kind",
        "ollama",
        "--model",
        "gemma3:270m",
        "--users",
        "4,1,2",
        "--requests",
        "14",
        "--warmup-requests",
        "2",
        "--repetitions",
        "3",
        "--input-tokens",
        "60",
        "--slo",
        "ttft_ms<=25@p99",
        "--format",
        "json",
    ];
    let out = crate::support::chimera(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let levels: Vec<f64> = r["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| l["level"].as_f64().expect("level"))
        .collect();
    assert_eq!(levels, [1.0, 2.0, 4.0], "ascending");
    for l in r["levels"].as_array().expect("levels") {
        assert_eq!(l["runs"].as_array().expect("runs").len(), 3);
        // The calibrated prompts are within a token or two of the 60 asked for.
        let input = l["input_tokens"].as_f64().expect("input tokens");
        assert!((input - 60.0).abs() <= 2.0, "{input}");
    }
    assert_eq!(r["frontier"]["first_failing"], 4.0, "{}", r["frontier"]);
    let bad = crate::support::chimera(&[
        "load",
        url.as_str(),
        "--model",
        "m",
        "--users",
        "1",
        "--requests",
        "3",
        "--slo",
        "ttft<500",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("METRIC<=MS"), "{}", bad.stderr);
    // A model the server does not have: every request fails, the table says so, and the
    // exit status too.
    let none = crate::support::chimera(&[
        "load",
        url.as_str(),
        "--kind",
        "ollama",
        "--model",
        "no-such-model",
        "--users",
        "1",
        "--requests",
        "3",
    ]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(
        none.stderr.contains("no request succeeded at level(s) 1"),
        "{}",
        none.stderr
    );
}

/// A trace is replayed with its timing and its lengths: every request at its time (scaled by
/// the speed), its prompt within a couple of tokens of the trace's length as the server counts
/// it, its reply exactly the trace's length (forced on the OpenAI route).
#[test]
fn a_trace_is_replayed_with_its_timing_and_lengths() {
    let t = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::start(
        t.path(),
        "trace",
        &knee().replace("num_parallel: 2", "num_parallel: 0"),
        1,
    );
    let url = format!("http://{}", emu.addrs[0]);
    let mut text = String::from("# a small trace\n");
    for i in 0..40u32 {
        text.push_str(&format!(
            "{{\"timestamp\": {}, \"input_length\": {}, \"output_length\": {}}}\n",
            1000 + i * 25,
            [40, 90, 200][(i % 3) as usize],
            [4, 8, 12][(i % 3) as usize]
        ));
    }
    let trace = t.path().join("trace.jsonl");
    std::fs::write(&trace, text).expect("write");
    let out = crate::support::chimera(&[
        "load",
        url.as_str(),
        "--model",
        "gemma3:270m",
        "--trace",
        trace.to_str().expect("utf-8"),
        "--trace-speed",
        "1,2",
        "--repetitions",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    for l in r["levels"].as_array().expect("levels") {
        let speed = l["level"].as_f64().expect("speed");
        let run = &l["runs"][0];
        assert_eq!(run["requests"], 40, "{run}");
        // 40 requests 25 ms apart: 975 ms at speed 1, half at speed 2.
        let window = run["window_s"].as_f64().expect("window");
        assert!(
            window > 0.975 / speed && window < 0.975 / speed + 1.0,
            "{window}"
        );
        assert_eq!(l["output_tokens_off"].as_f64(), Some(0.0), "{l}");
        let off = l["input_tokens_off"].as_f64().expect("input off");
        assert!(off <= 2.0, "{off}");
        // 14 replies of 4 tokens, 13 of 8 and 13 of 12.
        let mean = l["output_tokens"].as_f64().expect("output tokens");
        assert!((mean - 316.0 / 40.0).abs() < 1e-9, "{mean}");
    }
    let bad = t.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"timestamp\": 1, \"input_length\": 5}\n").expect("write");
    let out = crate::support::chimera(&[
        "load",
        url.as_str(),
        "--model",
        "m",
        "--trace",
        bad.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("bad.jsonl:1: missing field `output_length`"),
        "{}",
        out.stderr
    );
}

/// A load whose future is dropped (a cell timeout, a stop) stops: its scheduling thread sends
/// nothing more and its requests in flight are aborted (their connections closed), so nothing
/// of it overlaps what runs next.
#[test]
fn a_dropped_open_loop_stops_and_aborts_its_requests() {
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A server that reads each request and never answers; it counts the connections it
    // accepted and those the client closed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (seen, gone) = (accepted.clone(), closed.clone());
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let gone = gone.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                gone.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    let client =
        Arc::new(Client::new(EndpointKind::Ollama, &format!("http://{addr}")).expect("client"));
    let rt = runtime();
    // 100 requests per second for a second: about 10 are sent in the first 100 ms.
    let load = Load {
        mode: Mode::Open {
            arrivals: Arrivals::Constant { rate_per_s: 100.0 },
        },
        stop: Stop::Requests(100),
        warmup: None,
    };
    rt.block_on(async {
        let r =
            tokio::time::timeout(Duration::from_millis(100), drive(&load, client, make())).await;
        assert!(r.is_err(), "the load was cut short");
        tokio::time::sleep(Duration::from_millis(700)).await;
    });
    let n = accepted.load(Ordering::SeqCst);
    assert!(
        (1..40).contains(&n),
        "{n} connections: the scheduling thread went on after the load was dropped"
    );
    assert_eq!(
        closed.load(Ordering::SeqCst),
        n,
        "requests in flight were left running"
    );
}
