//! What users do to a campaign over time, against the real binary and `chimera emulate`:
//! a corrupted part found by `status --verify` and acted on with `run --verify`, a resume
//! through another spelling of the manifest path (and from another directory), a campaign
//! extended with an edited manifest (also when that run fails its health check), a campaign
//! that an earlier chimera recorded the same manifest in twice, and how `status` tells killed
//! runs from finished ones.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Emulator, chimera_cmd, chimera_in, s, says, two_context_sizes};

const PROFILE: &str = "
seed: 5
models:
  - name: gemma3:270m
    load_ms: 1
    prompt_tok_s: 1000000
    output_tok_s: 5000
    output_tokens: 6
";

/// Two configurations × `reps` repetitions of single inference on one endpoint.
fn manifest(a: SocketAddr, reps: u32) -> String {
    two_context_sizes("TR930", "a campaign users come back to", a, reps)
}

fn campaign_json(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("campaign.json")).expect("campaign.json"))
        .expect("campaign.json is JSON")
}

fn committed_ids(cells: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(cells)
        .expect("cells")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.len() == 32)
        .collect();
    v.sort();
    v
}

fn entries_starting(cells: &Path, prefix: &str) -> Vec<String> {
    fs::read_dir(cells)
        .expect("cells")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// A temp dir with an emulator (`<name>-profile.yaml`) and `m.yaml` (2 repetitions) run once
/// into campaign `c` under `d`, which must succeed. Returns the dir, the emulator (killed when
/// dropped), the manifest and the data directory.
fn first_run(name: &str) -> (tempfile::TempDir, Emulator, PathBuf, PathBuf) {
    let t = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::start(t.path(), name, PROFILE, 1);
    let m = emu.write_manifest(t.path(), "m.yaml", |a| manifest(a[0], 2));
    let data = t.path().join("d");
    let first = chimera_in(
        t.path(),
        &["run", s(&m), "--data", s(&data), "--campaign", "c"],
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    (t, emu, m, data)
}

/// The probe: one byte of a committed part flipped (same size). `status --verify` names it
/// and predicts both resumes; a plain run keeps it (sizes only), `run --verify` sets it aside
/// and measures it again; afterwards everything verifies.
#[test]
fn a_bit_flip_found_by_status_verify_is_set_aside_and_run_again_by_run_verify() {
    let (t, _emu, m, data) = first_run("flip");
    let run = ["run", s(&m), "--data", s(&data), "--campaign", "c"];
    let cells = data.join("c/cells");
    let ids = committed_ids(&cells);
    let total = ids.len();
    assert!(total >= 4, "{ids:?}");

    // Flip one byte in the middle of the first part of one cell.
    let victim = &ids[0];
    let man: Value = serde_json::from_slice(
        &fs::read(cells.join(victim).join("MANIFEST.json")).expect("MANIFEST.json"),
    )
    .expect("manifest JSON");
    let part = cells
        .join(victim)
        .join(man["parts"][0]["name"].as_str().expect("part name"));
    let mut bytes = fs::read(&part).expect("part");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs::write(&part, &bytes).expect("write part");

    let status = ["status", "--data", s(&data), "--campaign", "c"];
    let plain = chimera_in(t.path(), &status);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(plain.stdout.contains("complete:"), "{}", plain.stdout);

    let verify = chimera_in(t.path(), &[&status[..], &["--verify"]].concat());
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(
        verify
            .stdout
            .contains("1 cell directory failed checksum verification"),
        "{}",
        verify.stdout
    );
    assert!(verify.stdout.contains(victim.as_str()), "{}", verify.stdout);
    assert!(
        verify.stdout.contains(
            "a resume with `chimera run --verify` (same manifests and --data) would run 1 \
             cell(s), 0 of them failed before; a plain `chimera run` would run 0"
        ),
        "{}",
        verify.stdout
    );
    // Status reads; it moves nothing.
    assert!(cells.join(victim).is_dir());

    // A plain run does what status said: it keeps the cell.
    let again = chimera_in(t.path(), &run);
    again.assert_says(0, format!("{total} committed, 0 to run"));

    // `run --verify` sets it aside and measures it again.
    let fixed = chimera_in(t.path(), &[&run[..], &["--verify"]].concat());
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    assert!(
        fixed.stderr.contains(&format!(
            "{} committed, 1 to run (1 cell directory failed verification and was set aside",
            total - 1
        )),
        "{}",
        fixed.stderr
    );
    let broken = entries_starting(&cells, ".broken-");
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].starts_with(&format!(".broken-{victim}-")));
    // The set-aside copy still holds the flipped byte (nothing is deleted).
    assert_eq!(
        fs::read(cells.join(&broken[0]).join(part.file_name().expect("name"))).expect("kept"),
        bytes
    );
    assert_eq!(committed_ids(&cells), ids);

    let after = chimera_in(t.path(), &[&status[..], &["--verify"]].concat());
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert!(
        !after.stdout.contains("failed checksum") && !after.stdout.contains("failed verification"),
        "{}",
        after.stdout
    );
    assert!(after.stdout.contains("complete:"), "{}", after.stdout);
}

/// The probe: `run m.yaml --data d`, then `run /abs/m.yaml --data /abs/d` from another
/// directory. One manifest record, and status / analyze / report keep working.
#[test]
fn resuming_through_another_spelling_of_the_path_keeps_one_manifest_record() {
    let t = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::start(t.path(), "paths", PROFILE, 1);
    let work = t.path().join("work");
    let elsewhere = t.path().join("elsewhere");
    fs::create_dir_all(&work).expect("work");
    fs::create_dir_all(&elsewhere).expect("elsewhere");
    fs::write(work.join("m.yaml"), manifest(emu.addrs[0], 2)).expect("manifest");

    let rel = chimera_in(&work, &["run", "m.yaml", "--data", "d", "--campaign", "c"]);
    assert_eq!(rel.code, 0, "{}", rel.stderr);
    let abs_m = work.join("m.yaml");
    let abs_d = work.join("d");
    for spelling in [
        s(&abs_m).to_owned(),
        format!("{}/../work/./m.yaml", s(&work)),
    ] {
        let again = chimera_in(
            &elsewhere,
            &["run", &spelling, "--data", s(&abs_d), "--campaign", "c"],
        );
        again.assert_says(0, "0 to run");
    }
    let info = campaign_json(&abs_d.join("c"));
    let recorded = info["manifests"].as_array().expect("manifests");
    assert_eq!(recorded.len(), 1, "{info:#}");
    assert_eq!(
        recorded[0]["path"],
        s(&fs::canonicalize(&abs_m).expect("abs"))
    );

    for args in [
        vec!["status", "--data", s(&abs_d), "--campaign", "c"],
        vec!["analyze", "--data", s(&abs_d), "--campaign", "c"],
        vec!["report", "--data", s(&abs_d), "--campaign", "c"],
    ] {
        let out = chimera_in(&elsewhere, &args);
        assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    }
}

/// Extending a campaign: the manifest edited (repetitions 2 → 3) and run into the same
/// campaign, first against a dead server (the run fails its health check), then for real. The
/// campaign is never bricked; the new cells run, the old ones stay.
#[test]
fn an_edited_manifest_extends_the_campaign_even_after_a_failed_run() {
    let (t, emu, m, data) = first_run("extend");
    let run = ["run", s(&m), "--data", s(&data), "--campaign", "c"];
    let status = ["status", "--data", s(&data), "--campaign", "c"];
    let cells = data.join("c/cells");
    let before = committed_ids(&cells);

    // The edited manifest against a port nothing listens on: the health check fails.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    fs::write(&m, manifest(dead_addr, 3)).expect("edited manifest");
    let failed = chimera_in(t.path(), &run);
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    let st = chimera_in(t.path(), &status);
    assert_eq!(st.code, 0, "{}", st.stderr);
    assert!(st.stdout.contains("1 stopped by an error"), "{}", st.stdout);
    assert_eq!(committed_ids(&cells), before);

    // The same edit against the live server: only the new repetition's cells run.
    fs::write(&m, manifest(emu.addrs[0], 3)).expect("edited manifest");
    let extended = chimera_in(t.path(), &run);
    assert_eq!(extended.code, 0, "{}", extended.stderr);
    let after = committed_ids(&cells);
    assert!(before.iter().all(|id| after.contains(id)));
    assert!(after.len() > before.len());
    assert!(
        extended.stderr.contains(&format!(
            "{} committed, {} to run",
            before.len(),
            after.len() - before.len()
        )),
        "{}",
        extended.stderr
    );
    let st = chimera_in(t.path(), &status);
    assert_eq!(st.code, 0, "{}", st.stderr);
    assert!(st.stdout.contains("complete:"), "{}", st.stdout);
    let info = campaign_json(&data.join("c"));
    // Three texts were run (reps 2; reps 3 on the dead port; reps 3 on the live one).
    assert_eq!(info["manifests"].as_array().expect("manifests").len(), 3);
    let analyze = chimera_in(
        t.path(),
        &["analyze", "--data", s(&data), "--campaign", "c"],
    );
    assert_eq!(analyze.code, 0, "{}{}", analyze.stdout, analyze.stderr);

    // Back to the first version: it becomes current again without a new record.
    fs::write(&m, manifest(emu.addrs[0], 2)).expect("first manifest");
    let back = chimera_in(t.path(), &run);
    assert_eq!(back.code, 0, "{}", back.stderr);
    let info = campaign_json(&data.join("c"));
    let recorded = info["manifests"].as_array().expect("manifests");
    assert_eq!(recorded.len(), 3);
    assert!(
        recorded[2]["text"]
            .as_str()
            .expect("text")
            .contains("repetitions: 2")
    );
}

/// A campaign bricked by chimera 0.1 (the same manifest recorded twice under two paths, and
/// two versions of one report) opens read-only and is repaired by the next run.
#[test]
fn a_campaign_with_a_manifest_recorded_twice_is_read_and_repaired() {
    let (t, _emu, m, data) = first_run("bricked");
    let run = ["run", s(&m), "--data", s(&data), "--campaign", "c"];

    // What chimera 0.1 left: the entry again under another path.
    let dir = data.join("c");
    let mut info = campaign_json(&dir);
    let mut twin = info["manifests"][0].clone();
    twin["path"] = Value::from("m.yaml");
    info["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(twin);
    fs::write(
        dir.join("campaign.json"),
        serde_json::to_vec_pretty(&info).expect("json"),
    )
    .expect("write campaign.json");

    for args in [
        vec!["status", "--data", s(&data), "--campaign", "c"],
        vec!["analyze", "--data", s(&data), "--campaign", "c"],
    ] {
        let out = chimera_in(t.path(), &args);
        assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(!out.stderr.contains("declared twice"), "{}", out.stderr);
    }
    let again = chimera_in(t.path(), &run);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        campaign_json(&dir)["manifests"]
            .as_array()
            .expect("manifests")
            .len(),
        1
    );
}

/// `status` counts a `kill -9`ed run as ended without a word, not as finished or
/// interrupted.
#[cfg(unix)]
#[test]
fn status_tells_a_killed_run_from_finished_and_interrupted_ones() {
    let t = tempfile::tempdir().expect("tempdir");
    let slow = "
models:
  - name: gemma3:270m
    load_ms: 1
    output_tok_s: 100
    output_tokens: 20
";
    let emu = Emulator::start(t.path(), "killed", slow, 1);
    let m = emu.write_manifest(t.path(), "m.yaml", |a| manifest(a[0], 3));
    let data = t.path().join("d");
    let mut child = chimera_cmd(&["run", s(&m), "--data", s(&data), "--campaign", "c"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait for its `started` event, then kill it.
    let journal = data.join("c/journal.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(&journal).is_ok_and(|j| j.contains("\"started\""))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let st = child.wait().expect("wait");
    assert!(st.code().is_none(), "the run ended before its kill: {st}");

    let status = ["status", "--data", s(&data), "--campaign", "c"];
    let out = chimera_in(t.path(), &status);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "1 run(s) started: 0 finished, 0 stopped by an error, 0 interrupted (Ctrl-C / \
             SIGTERM), 1 ended without a word (killed or crashed)"
        ),
        "{}",
        out.stdout
    );
    let done = chimera_in(
        t.path(),
        &["run", s(&m), "--data", s(&data), "--campaign", "c"],
    );
    assert_eq!(done.code, 0, "{}", done.stderr);
    let out = chimera_in(t.path(), &status);
    says(&out.stdout, &["2 run(s) started: 1 finished"]);
}

/// A campaign name over the limit is refused with the limit in the message.
#[test]
fn a_long_campaign_name_is_refused_with_its_length_and_the_limit() {
    let t = tempfile::tempdir().expect("tempdir");
    let name = "n".repeat(230);
    let out = chimera_in(
        t.path(),
        &[
            "run",
            s(&crate::support::root().join("experiments/tr114.yaml")),
            "--data",
            s(&t.path().join("d")),
            "--campaign",
            &name,
        ],
    );
    out.assert_refused(&["is 230 characters long; the limit is 200"]);
    assert!(!t.path().join("d").join(&name).exists());
}
