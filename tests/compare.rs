//! `chimera compare A B` on emulator campaigns whose difference is known: B's emulated GPUs
//! decode at 200 tok/s instead of A's 400, so every 16-token reply takes 16 × (1/200 − 1/400) s
//! = 40 ms longer, and a run (each agent makes one request, side by side) 40 ms longer too.

use std::path::Path;

use crate::shards::{chimera_in, manifest};
use crate::support::{chimera_cmd_in, root, run_command};

/// Runs the shard fixture into `data/<campaign>` under `dir` with the emulator decoding at
/// `tok_s`, its ports moved by `offset`.
fn campaign(dir: &Path, campaign: &str, tok_s: u32, offset: &str) {
    let profile = dir.join(format!("profile-{tok_s}.yaml"));
    let text = std::fs::read_to_string(root().join("tests/fixtures/shards/profile.yaml"))
        .expect("profile")
        .replace("output_tok_s: 400", &format!("output_tok_s: {tok_s}"));
    std::fs::write(&profile, text).expect("write");
    let m = manifest();
    let mut cmd = chimera_in(
        dir,
        &[
            "run",
            m.to_str().expect("utf-8"),
            "--data",
            "data",
            "--campaign",
            campaign,
            "--no-cache",
            "--port-offset",
            offset,
        ],
    );
    cmd.env("CHIMERA_SHARD_PROFILE", &profile);
    let out = run_command(&mut cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

fn compare(dir: &Path, args: &[&str]) -> crate::support::Run {
    let mut all = vec!["compare"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data", "data"]);
    run_command(&mut chimera_cmd_in(dir, &all))
}

#[test]
fn compare_finds_a_known_slowdown_and_no_difference_between_identical_campaigns() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    campaign(d, "fast", 400, "5000");
    campaign(d, "slow", 200, "5000");

    let out = compare(d, &["fast", "slow", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(c["differing"], serde_json::json!([]), "the same settings");
    let rows = c["rows"].as_array().expect("rows");
    let wall: Vec<&serde_json::Value> = rows.iter().filter(|r| r["metric"] == "wall_ms").collect();
    assert_eq!(wall.len(), 6, "one row per configuration");
    for r in &wall {
        assert_eq!(r["verdict"], "slower", "{r}");
        let diff = r["difference"].as_f64().expect("difference");
        assert!((30.0..50.0).contains(&diff), "{r}");
    }
    // The CI of one configuration's difference covers the ground truth, 40 ms (widened by
    // the emulator's timer resolution, 2 ms).
    let t05 = wall.iter().find(|r| r["a"] == "TR990/t05").expect("t05");
    let (lo, hi) = (
        t05["ci95"][0].as_f64().expect("lo"),
        t05["ci95"][1].as_f64().expect("hi"),
    );
    assert!(lo - 2.0 <= 40.0 && 40.0 <= hi + 2.0, "{t05}");
    for r in rows.iter().filter(|r| r["metric"] == "throughput_tok_s") {
        assert_eq!(r["verdict"], "slower", "half the decode rate: {r}");
    }

    // --fail-if-slower: the slowdown fails it; the other way round (B faster) passes.
    let out = compare(d, &["fast", "slow", "--fail-if-slower", "10"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("B is slower than A by more than 10 %: TR990/t01 wall_ms"),
        "{}",
        out.stderr
    );
    let out = compare(d, &["slow", "fast", "--fail-if-slower", "10"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("faster (n 3/3)"), "{}", out.stdout);

    // Identical campaigns (a copy of one): no difference anywhere, and nothing fails.
    copy_dir(&d.join("data/fast"), &d.join("data/fast-copy"));
    std::fs::write(
        d.join("data/fast-copy/campaign.json"),
        std::fs::read_to_string(d.join("data/fast/campaign.json"))
            .expect("campaign.json")
            .replace("\"name\": \"fast\"", "\"name\": \"fast-copy\""),
    )
    .expect("write");
    let out = compare(
        d,
        &[
            "fast",
            "fast-copy",
            "--format",
            "json",
            "--fail-if-slower",
            "0",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let rows = c["rows"].as_array().expect("rows");
    assert!(!rows.is_empty());
    for r in rows {
        assert_eq!(r["verdict"], "no_detectable_difference", "{r}");
        assert_eq!(r["difference"].as_f64(), Some(0.0), "{r}");
    }
    let md = compare(d, &["fast", "slow", "--format", "markdown"]);
    assert!(
        md.stdout.starts_with("# slow against fast\n"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout
            .contains("| `TR990/t01` → `TR990/t01` | wall_ms |"),
        "{}",
        md.stdout
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// Campaigns that share no configuration are refused, naming the settings that differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_refuses_campaigns_with_nothing_in_common() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path().to_path_buf();
    // A single-inference campaign beside the TR114-shaped one: nothing in common.
    let emu = crate::support::emulate(&crate::support::fast_profile(3), 1).await;
    let text = crate::support::two_context_sizes("TR961", "compare refusal", emu.addrs[0], 2);
    crate::support::campaign(&d, "single", &text, false, None).await;
    let dd = d.clone();
    tokio::task::spawn_blocking(move || campaign(&dd, "emulated", 400, "5100"))
        .await
        .expect("campaign");
    let out = compare(&d, &["emulated", "single"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no configuration of `emulated` matches one of `single`: they differ in"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("scenario_kind"), "{}", out.stderr);
}
