//! The Slurm tier: `chimera slurm submit` on a real cluster. `scripts/slurm-local.sh up`
//! starts a one-host cluster (slurmctld, slurmd, munged from Debian's packages); `.ci/run`
//! does so and sets `CHIMERA_REQUIRE_SLURM_TESTS=1`, which turns a missing cluster into a
//! failure instead of a skip.
//!
//! A 4-shard campaign of emulators is submitted as an array job with a report job after it;
//! the merged campaign equals a one-process run of the same manifest (the same cells, each
//! once, the same verdicts). Then one array task is cancelled mid-run with `scancel`: the
//! report job is cancelled with it, `chimera status` lists the shard with its cells, and
//! `chimera slurm resubmit` completes the campaign with nothing lost or measured twice.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::shards::{cells_by_id, chimera_in, manifest, status, verdicts};
use crate::support::run_command;

/// True when a Slurm cluster answers here; panics when none does and the tier is required.
fn cluster_up() -> bool {
    let ok = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| matches!(l.trim(), "idle" | "mixed" | "allocated"))
        });
    if !ok && std::env::var("CHIMERA_REQUIRE_SLURM_TESTS").is_ok_and(|v| v == "1") {
        panic!(
            "CHIMERA_REQUIRE_SLURM_TESTS=1 but no Slurm cluster answers `sinfo`: start one with \
             `scripts/slurm-local.sh up` (as root)"
        );
    }
    if !ok {
        eprintln!("skipped: no Slurm cluster (scripts/slurm-local.sh up starts one)");
    }
    ok
}

/// The fixture manifest with its ports moved to `base` and `base + 1` (so this tier does not
/// collide with tests/shards.rs, which runs beside it), written into `dir`.
fn manifest_at(dir: &Path, base: u16) -> PathBuf {
    let text = std::fs::read_to_string(manifest())
        .expect("manifest")
        .replace("19411", &base.to_string())
        .replace("19412", &(base + 1).to_string());
    let path = dir.join("emulated.yaml");
    std::fs::write(&path, text).expect("write");
    path
}

/// `JobState` of a job (an array task: `<id>_<task>`), as `scontrol show job` says.
fn job_state(id: &str) -> String {
    let out = Command::new("scontrol")
        .args(["show", "job", id])
        .output()
        .expect("scontrol");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("JobState="))
        .unwrap_or("UNKNOWN")
        .to_owned()
}

/// Waits until job `id` has ended; its final state.
fn wait_job(id: &str, limit: Duration) -> String {
    let t0 = Instant::now();
    loop {
        let s = job_state(id);
        if !matches!(
            s.as_str(),
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED"
        ) {
            return s;
        }
        assert!(t0.elapsed() < limit, "job {id} still {s} after {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The (array job, report job) ids `chimera slurm submit|resubmit` printed.
fn job_ids(stdout: &str) -> (String, String) {
    let after = |key: &str| {
        stdout
            .split(key)
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("no `{key}` in {stdout}"))
            .to_owned()
    };
    (after("array job "), after("the report as job "))
}

/// The logs of a campaign's jobs, for a failure message.
fn logs(campaign: &Path) -> String {
    let mut out = String::new();
    if let Ok(rd) = std::fs::read_dir(campaign.join("slurm/logs")) {
        for e in rd.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            out.push_str(&format!("==> {}\n{}\n", e.path().display(), text));
        }
    }
    out
}

#[test]
fn a_four_shard_slurm_campaign_equals_one_process_and_survives_a_cancelled_task() {
    if !cluster_up() {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    let m = manifest_at(d, 23411);
    let m = m.to_str().expect("utf-8");
    let submit = |campaign: &str, pause: Option<&str>| {
        let mut cmd = chimera_in(
            d,
            &[
                "slurm",
                "submit",
                m,
                "--shards",
                "4",
                "--data",
                "data",
                "--campaign",
                campaign,
                "--partition",
                "debug",
                "--time",
                "00:10:00",
            ],
        );
        if let Some(ms) = pause {
            cmd.env("CHIMERA_TEST_COMMIT_PAUSE_MS", ms);
        }
        let out = run_command(&mut cmd);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        job_ids(&out.stdout)
    };

    // 1. Four shards and the report, on the cluster.
    let (array, report) = submit("slurm", None);
    let campaign = d.join("data/slurm");
    let end = wait_job(&report, Duration::from_secs(300));
    assert_eq!(end, "COMPLETED", "{}", logs(&campaign));
    for i in 0..4 {
        assert_eq!(job_state(&format!("{array}_{i}")), "COMPLETED");
    }
    assert!(campaign.join("report").is_dir(), "{}", logs(&campaign));
    let one = tempfile::tempdir().expect("tempdir");
    let out = run_command(&mut chimera_in(
        one.path(),
        &["run", m, "--data", "data", "--campaign", "whole"],
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sharded = cells_by_id(&campaign);
    let whole = cells_by_id(&one.path().join("data/whole"));
    assert_eq!(
        sharded.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>()
    );
    assert!(sharded.values().all(|c| c.placement.shard.is_some()));
    assert_eq!(
        verdicts(&d.join("data"), "slurm"),
        verdicts(&one.path().join("data"), "whole")
    );
    let st = status(d, "slurm");
    assert!(st.contains("complete: every cell is committed"), "{st}");
    assert!(st.contains(&format!("Slurm job {array}_2")), "{st}");

    // 2. One task cancelled mid-run (commits slowed so that it is caught running).
    let (array, report) = submit("cancel", Some("400"));
    let campaign = d.join("data/cancel");
    let journal = campaign.join("shards/2-of-4/journal.jsonl");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&journal).is_ok_and(|s| s.contains("\"cell_committed\"")) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{}",
            logs(&campaign)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new("scancel")
        .arg(format!("{array}_2"))
        .output()
        .expect("scancel");
    assert!(out.status.success());
    assert_eq!(
        wait_job(&format!("{array}_2"), Duration::from_secs(60)),
        "CANCELLED"
    );
    assert_eq!(wait_job(&report, Duration::from_secs(300)), "CANCELLED");
    for i in [0, 1, 3] {
        assert_eq!(
            wait_job(&format!("{array}_{i}"), Duration::from_secs(300)),
            "COMPLETED"
        );
    }
    let st = status(d, "cancel");
    assert!(
        st.contains("  2/4     interrupted") || st.contains("  2/4     killed"),
        "{st}"
    );
    assert!(st.contains("cell(s) left: "), "{st}");
    // Only the cancelled shard goes again, with a new report job.
    let out = run_command(&mut chimera_in(
        d,
        &[
            "slurm",
            "resubmit",
            "--data",
            "data",
            "--campaign",
            "cancel",
        ],
    ));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("shard(s) 2 of 4"), "{}", out.stdout);
    let (_, report) = job_ids(&out.stdout);
    assert_eq!(
        wait_job(&report, Duration::from_secs(300)),
        "COMPLETED",
        "{}",
        logs(&campaign)
    );
    let st = status(d, "cancel");
    assert!(st.contains("complete: every cell is committed"), "{st}");
    assert!(!st.contains("discarded"), "nothing measured twice: {st}");
    let cells = cells_by_id(&campaign);
    assert_eq!(
        cells.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>()
    );
    // Nothing left to resubmit.
    let out = run_command(&mut chimera_in(
        d,
        &[
            "slurm",
            "resubmit",
            "--data",
            "data",
            "--campaign",
            "cancel",
        ],
    ));
    assert!(out.stdout.contains("nothing to resubmit"), "{}", out.stdout);
}

/// Errors a user meets: a partition that does not exist is refused with sbatch's words and
/// the fix; `resubmit` of a campaign never submitted says how to submit it.
#[test]
fn slurm_refusals_say_what_to_change() {
    if !cluster_up() {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    let m = manifest_at(d, 23511);
    let out = run_command(&mut chimera_in(
        d,
        &[
            "slurm",
            "submit",
            m.to_str().expect("utf-8"),
            "--shards",
            "2",
            "--data",
            "data",
            "--partition",
            "nosuch",
        ],
    ));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("sbatch refused the shards job"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("invalid partition"), "{}", out.stderr);
    assert!(out.stderr.contains("sinfo -s"), "{}", out.stderr);
    std::fs::create_dir_all(d.join("data/plain")).expect("dir");
    std::fs::write(d.join("data/plain/campaign.json"), "{}").expect("write");
    let out = run_command(&mut chimera_in(
        d,
        &["slurm", "resubmit", "--data", "data", "--campaign", "plain"],
    ));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("was not submitted with `chimera slurm submit`"),
        "{}",
        out.stderr
    );
}
