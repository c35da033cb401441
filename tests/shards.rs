//! Sharded campaigns (`chimera run --shard I/N`) on one machine: four shards running at once
//! make the same campaign as one process, a killed shard is listed with its cells and its rerun
//! completes the campaign, a cell measured by two shards keeps its first commit, and a whole
//! run waits for running shards. The emulator is the server (managed by each shard, moved by
//! `--port-offset`); `tests/slurm.rs` does the same through a real Slurm cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chimera::table::CellsRow;

use crate::command::rows;
use crate::support::{chimera_cmd_in, root, run_command};

/// The fixture manifest: TR114-shaped, 6 configurations × 3 repetitions on two managed
/// emulators.
pub(crate) fn manifest() -> PathBuf {
    root().join("tests/fixtures/shards/emulated.yaml")
}

/// `chimera ARGS` in `dir`, with the variables the fixture manifest names.
pub(crate) fn chimera_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = chimera_cmd_in(dir, args);
    cmd.env("CHIMERA_BIN", env!("CARGO_BIN_EXE_chimera")).env(
        "CHIMERA_SHARD_PROFILE",
        root().join("tests/fixtures/shards/profile.yaml"),
    );
    cmd
}

/// `chimera run` of shard `i`/`n` of the fixture into `data`/`campaign`, ports moved by
/// `i × 100 + base`.
fn shard(dir: &Path, campaign: &str, i: u32, n: u32, base: u16) -> Command {
    let m = manifest();
    let offset = (u16::try_from(i).expect("small") * 100 + base).to_string();
    let spec = format!("{i}/{n}");
    chimera_in(
        dir,
        &[
            "run",
            m.to_str().expect("utf-8"),
            "--data",
            "data",
            "--campaign",
            campaign,
            "--shard",
            &spec,
            "--port-offset",
            &offset,
        ],
    )
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chimera")
}

fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The committed cells' rows by id (panics on an id seen twice).
pub(crate) fn cells_by_id(campaign: &Path) -> BTreeMap<String, CellsRow> {
    let mut out = BTreeMap::new();
    for r in rows::<CellsRow>(campaign) {
        let id = r.cell_id.clone();
        assert!(out.insert(id.clone(), r).is_none(), "cell {id} twice");
    }
    out
}

/// Each reference's verdict, by id.
pub(crate) fn verdicts(data: &Path, campaign: &str) -> BTreeMap<String, String> {
    let done = chimera::analysis::analyze(data, Some(campaign), None).expect("analyze");
    done[0].1.reports[0]
        .verdicts
        .iter()
        .map(|v| (v.id.clone(), format!("{:?}", v.verdict)))
        .collect()
}

/// `chimera status` of `campaign` under `dir/data`.
pub(crate) fn status(dir: &Path, campaign: &str) -> String {
    let out = run_command(&mut chimera_in(
        dir,
        &["status", "--data", "data", "--campaign", campaign],
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

/// Four shards at once equal one process: the same cells, each once, the same verdicts; each
/// cell says where it ran; the shards' provenance comes back together.
#[test]
fn four_shards_at_once_make_the_campaign_one_process_makes() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    let children: Vec<Child> = (0..4)
        .map(|i| spawn(shard(d, "sharded", i, 4, 0)))
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let (code, err) = finish(c);
        assert_eq!(code, 0, "{err}");
        if i > 0 {
            assert!(
                err.contains(&format!("--port-offset {i}00: managed servers listen on")),
                "{err}"
            );
        }
    }
    // The same manifest in one process, in a data directory of its own (no shared cache).
    let one = tempfile::tempdir().expect("tempdir");
    let m = manifest();
    let out = run_command(&mut chimera_in(
        one.path(),
        &[
            "run",
            m.to_str().expect("utf-8"),
            "--data",
            "data",
            "--campaign",
            "whole",
        ],
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);

    let sharded = cells_by_id(&d.join("data/sharded"));
    let whole = cells_by_id(&one.path().join("data/whole"));
    assert_eq!(
        sharded.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>()
    );
    assert_eq!(sharded.len(), 60, "54 cells and 6 warm-ups");
    let host = chimera::store::host_name();
    let mut by_shard: BTreeMap<String, usize> = BTreeMap::new();
    for c in sharded.values() {
        assert_eq!(c.placement.host.as_deref(), Some(host.as_str()));
        *by_shard
            .entry(c.placement.shard.clone().expect("shard"))
            .or_default() += 1;
    }
    assert_eq!(
        by_shard.keys().cloned().collect::<BTreeSet<_>>(),
        ["0/4", "1/4", "2/4", "3/4"].map(String::from).into()
    );
    assert!(whole.values().all(|c| c.placement.shard.is_none()));
    assert_eq!(
        verdicts(&d.join("data"), "sharded"),
        verdicts(&one.path().join("data"), "whole")
    );
    // Every shard's provenance, gathered by compact: each shard's emulators.
    let out = run_command(&mut chimera_in(
        d,
        &["compact", "--data", "data", "--campaign", "sharded"],
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let prov: Vec<chimera::table::ProvenanceRow> =
        chimera::table::read_rows(&d.join("data/sharded/tables/provenance/part-00000.parquet"))
            .expect("provenance");
    assert_eq!(
        prov.len(),
        8,
        "two endpoints in each shard's provenance: {prov:?}"
    );
    assert!(prov.iter().all(|p| p.server_kind == "emulator"));
    // The analysis reads them too: these are emulator numbers, and the report says so.
    let done = chimera::analysis::analyze(&d.join("data"), Some("sharded"), None).expect("analyze");
    assert!(matches!(
        done[0].1.reports[0].origin,
        chimera::analysis::model::Origin::Emulator
    ));
    let st = status(d, "sharded");
    assert!(st.contains("complete: every cell is committed"), "{st}");
    for i in 0..4 {
        assert!(st.contains(&format!("  {i}/4     done")), "{st}");
    }
    // A finished shard run again measures nothing.
    let out = run_command(&mut shard(d, "sharded", 2, 4, 0));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains(" 0 measured,"), "{}", out.stderr);
}

/// Waits until `path` holds `needle` (a journal event), or panics after `limit`.
fn wait_for(path: &Path, needle: &str, limit: Duration) {
    let t0 = Instant::now();
    while !std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
        assert!(
            t0.elapsed() < limit,
            "{} never held {needle}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A shard killed mid-run shows as killed with its cells left; a whole-campaign run is
/// refused while a shard runs; running the shard again completes the campaign with nothing
/// lost or measured twice.
#[test]
fn a_killed_shard_is_listed_and_its_rerun_completes_the_campaign() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    for i in [0, 1, 3] {
        let (code, err) = finish(spawn(shard(d, "c", i, 4, 1000)));
        assert_eq!(code, 0, "{err}");
    }
    // Shard 2, slowed at each commit, killed after its first commit.
    let mut slow = shard(d, "c", 2, 4, 1000);
    slow.env("CHIMERA_TEST_COMMIT_PAUSE_MS", "300");
    let mut child = spawn(slow);
    let journal = d.join("data/c/shards/2-of-4/journal.jsonl");
    wait_for(&journal, "\"cell_committed\"", Duration::from_secs(60));
    // While it runs, the whole campaign cannot be run.
    let m = manifest();
    let whole = run_command(&mut chimera_in(
        d,
        &[
            "run",
            m.to_str().expect("utf-8"),
            "--data",
            "data",
            "--campaign",
            "c",
        ],
    ));
    assert_eq!(whole.code, 2, "{}", whole.stderr);
    assert!(
        whole.stderr.contains("has shards running: 2/4 (pid "),
        "{}",
        whole.stderr
    );
    let st = status(d, "c");
    assert!(st.contains("  2/4     running"), "{st}");
    assert!(st.contains("1 running now (shards 2/4)"), "{st}");
    // A shard split another way (here: by configuration) while 2/4 runs is refused.
    let mut other = shard(d, "c", 1, 4, 1000);
    other.args(["--shard-by", "configuration"]);
    let out = run_command(&mut other);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("shard 1/4 is split differently from shard 2/4, which is running"),
        "{}",
        out.stderr
    );
    child.kill().expect("kill");
    let _ = child.wait();
    // Its managed emulators outlive it; the rerun stops them (they are in its journal).
    let st = status(d, "c");
    assert!(st.contains("  2/4     killed"), "{st}");
    assert!(st.contains("cell(s) left: "), "{st}");
    assert!(st.contains("--shard I/4` for I in 2"), "{st}");

    let out = run_command(&mut shard(d, "c", 2, 4, 1000));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("left running by an interrupted run"),
        "{}",
        out.stderr
    );
    let st = status(d, "c");
    assert!(st.contains("complete: every cell is committed"), "{st}");
    assert!(!st.contains("discarded"), "{st}");
    assert_eq!(cells_by_id(&d.join("data/c")).len(), 60);
}

/// Two shards that both measure a cell (here: shards of two different counts over the same
/// campaign) keep the first commit and say so.
#[test]
fn a_cell_measured_by_two_shards_keeps_its_first_commit() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    // Shard 0/4, slowed at every commit, has planned its cells before 0/2 commits any.
    let mut slow = shard(d, "c", 0, 4, 2000);
    slow.env("CHIMERA_TEST_COMMIT_PAUSE_MS", "600");
    let child = spawn(slow);
    wait_for(
        &d.join("data/c/shards/0-of-4/journal.jsonl"),
        "\"cell_started\"",
        Duration::from_secs(60),
    );
    let (code, err) = finish(spawn(shard(d, "c", 0, 2, 2500)));
    assert_eq!(code, 0, "{err}");
    let (code, err) = finish(child);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the first commit is kept"), "{err}");

    let cells = cells_by_id(&d.join("data/c"));
    let mut dups = 0;
    for (dir, spec) in [("0-of-4", "0/4"), ("0-of-2", "0/2")] {
        let journal =
            std::fs::read_to_string(d.join("data/c/shards").join(dir).join("journal.jsonl"))
                .expect("journal");
        for e in journal
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "cell_duplicate")
        {
            dups += 1;
            let id = e["cell"].as_str().expect("cell");
            let m: serde_json::Value = serde_json::from_slice(
                &std::fs::read(d.join("data/c/cells").join(id).join("MANIFEST.json"))
                    .expect("manifest"),
            )
            .expect("json");
            // The kept commit came first (before the discarded measurement was journaled), and
            // it is the other shard's.
            assert!(
                m["committed_at_unix_ms"].as_f64() < e["at_unix_ms"].as_f64(),
                "{m} {e}"
            );
            assert_ne!(cells[id].placement.shard.as_deref(), Some(spec));
        }
    }
    assert!(
        dups > 0,
        "the slowed shard measured cells the other committed first"
    );
    let st = status(d, "c");
    assert!(
        st.contains(&format!(
            "{dups} measurement(s) of cells already committed were discarded"
        )),
        "{st}"
    );
}
