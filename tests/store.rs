//! The campaign store: atomic commits, resume verification, crash leftovers, the lock, the
//! journal, unwritable data directories and the shared cache, all in temporary directories.

use std::fs;
use std::path::{Path, PathBuf};

use chimera::store::{
    Cache, Campaign, CampaignInfo, CommitOutcome, JournalEvent, ManifestEntry, STORE_FORMAT,
    StoreError, Verify, open_existing,
};
use serde_json::json;

fn id(n: u64) -> String {
    format!("{n:032x}")
}

fn info() -> CampaignInfo {
    CampaignInfo::new(
        "c1",
        vec![ManifestEntry::new(
            "experiments/tr114.yaml",
            "TR114",
            "format: 1\n",
        )],
    )
}

fn open(data: &Path) -> Campaign {
    Campaign::open(data, "c1", info()).expect("open campaign")
}

fn parts(n: u64) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "requests.parquet".to_owned(),
            format!("requests of {n}").repeat(20).into_bytes(),
        ),
        ("telemetry.parquet".to_owned(), vec![n as u8; 300]),
        (
            "summary.json".to_owned(),
            format!("{{\"n\":{n}}}").into_bytes(),
        ),
    ]
}

/// A campaign under `data` with cells 1 and 2 committed, and cell 1's directory.
fn two_committed(data: &Path) -> (Campaign, PathBuf) {
    let c = open(data);
    let dir = commit(&c, 1);
    commit(&c, 2);
    (c, dir)
}

fn commit(c: &Campaign, n: u64) -> PathBuf {
    match c
        .commit_cell(&id(n), 1, &parts(n), &json!({"n": n}))
        .expect("commit")
    {
        CommitOutcome::Committed(p) => p,
        CommitOutcome::AlreadyCommitted => panic!("cell {n} already committed"),
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = fs::read(path).expect("read");
    b[at] ^= 0x55;
    fs::write(path, b).expect("write");
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("into_string")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn store_commit_is_found_intact_and_verifies() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    let dir = commit(&c, 1);
    assert_eq!(dir, t.path().join("c1").join("cells").join(id(1)));
    for (name, bytes) in parts(1) {
        assert_eq!(fs::read(dir.join(&name)).expect("read"), bytes, "{name}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("MANIFEST.json")).expect("read"))
            .expect("from_slice");
    assert_eq!(manifest["cell_id"], id(1));
    assert_eq!(manifest["attempt"], 1);
    assert_eq!(manifest["store_format"], STORE_FORMAT);
    assert_eq!(manifest["parts"].as_array().expect("as_array").len(), 3);
    assert_eq!(manifest["parts"][1]["bytes"], 300);

    let done = c.committed().expect("committed");
    assert!(done.contains(&id(1)) && done.len() == 1 && done.broken.is_empty());
    assert_eq!(done.meta(&id(1)), Some(json!({"n": 1})));
    assert_eq!(done.meta(&id(2)), None);
    let full = c.verify(Verify::Full).expect("verify");
    assert!(full.contains(&id(1)) && full.broken.is_empty());
}

#[test]
fn store_corrupted_part_fails_full_verification_and_is_moved_aside() {
    let t = tempfile::tempdir().expect("tempdir");
    let (c, dir) = two_committed(t.path());
    flip_byte(&dir.join("telemetry.parquet"), 17);
    // Same size: the fast check cannot see it, the full one must.
    assert!(c.committed().expect("committed").contains(&id(1)));
    let full = c.verify(Verify::Full).expect("verify");
    assert!(!full.contains(&id(1)) && full.contains(&id(2)));
    let moved = t
        .path()
        .join("c1/cells")
        .join(format!(".broken-{}-1", id(1)));
    assert_eq!(full.broken, vec![moved.clone()]);
    assert!(!dir.exists());
    // Never deleted: the damaged data is still there for inspection.
    assert_eq!(
        fs::read(moved.join("summary.json")).expect("read"),
        b"{\"n\":1}"
    );
    // It reruns: a new commit of the same id succeeds.
    commit(&c, 1);
    assert!(c.verify(Verify::Full).expect("verify").contains(&id(1)));
}

#[test]
fn store_truncated_or_missing_part_fails_size_verification() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    let a = commit(&c, 1);
    let b = commit(&c, 2);
    let m = commit(&c, 3);
    let f = fs::File::options()
        .write(true)
        .open(a.join("requests.parquet"))
        .expect("open part");
    f.set_len(10).expect("set_len");
    drop(f);
    fs::remove_file(b.join("summary.json")).expect("remove_file");
    fs::write(m.join("MANIFEST.json"), b"{\"cell_id\": \"").expect("write");
    let done = c.committed().expect("committed");
    assert!(done.is_empty(), "{:?}", done.ids);
    assert_eq!(done.broken.len(), 3);
    let names = dir_names(&t.path().join("c1/cells"));
    assert!(names.iter().all(|n| n.starts_with(".broken-")), "{names:?}");
}

#[test]
fn store_leftover_tmp_dir_is_removed_on_open_and_never_counted() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    commit(&c, 1);
    // kill -9 mid-commit: a complete-looking directory under its temporary name, and a
    // half-written one.
    let cells = t.path().join("c1/cells");
    let done = cells.join(format!(".tmp-{}-1", id(2)));
    fs::create_dir(&done).expect("create_dir");
    for e in fs::read_dir(cells.join(id(1))).expect("read_dir") {
        let e = e.expect("dir entry");
        fs::copy(e.path(), done.join(e.file_name())).expect("copy");
    }
    fs::create_dir(cells.join(format!(".tmp-{}-3", id(3)))).expect("create_dir");
    fs::write(
        cells.join(format!(".tmp-{}-3/requests.parquet", id(3))),
        b"half",
    )
    .expect("write");
    let seen = c.committed().expect("committed");
    assert_eq!(seen.ids.len(), 1);
    assert!(seen.broken.is_empty());
    drop(c);

    let c = open(t.path());
    assert_eq!(dir_names(&cells), vec![id(1)]);
    assert_eq!(c.committed().expect("committed").ids.len(), 1);
}

#[test]
fn store_double_commit_keeps_the_first() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    let dir = commit(&c, 1);
    let before = fs::read(dir.join("MANIFEST.json")).expect("read");
    let other = vec![("requests.parquet".to_owned(), b"different".to_vec())];
    let again = c
        .commit_cell(&id(1), 2, &other, &json!({"second": true}))
        .expect("commit_cell");
    assert_eq!(again, CommitOutcome::AlreadyCommitted);
    assert_eq!(fs::read(dir.join("MANIFEST.json")).expect("read"), before);
    assert_eq!(
        fs::read(dir.join("requests.parquet")).expect("read"),
        parts(1)[0].1
    );
    assert_eq!(dir_names(&t.path().join("c1/cells")), vec![id(1)]);
}

#[test]
fn store_rejects_bad_ids_and_part_names() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    let p = parts(1);
    for bad in [
        "",
        "abc",
        &id(0xabc).to_uppercase(),
        &format!("{}0", id(1)),
        "../../../../etc/passwd0",
    ] {
        let e = c
            .commit_cell(bad, 1, &p, &json!(null))
            .expect_err("commit_cell should fail");
        assert!(
            matches!(
                e,
                StoreError::InvalidName {
                    what: "cell id",
                    ..
                }
            ),
            "{bad}: {e}"
        );
    }
    for bad in ["", "../x", "a/b", ".hidden", "MANIFEST.json", "a\nb"] {
        let e = c
            .commit_cell(&id(1), 1, &[(bad.to_owned(), vec![1])], &json!(null))
            .expect_err("value should fail");
        assert!(e.to_string().contains("invalid part name"), "{bad}: {e}");
    }
    let dup = vec![("a".to_owned(), vec![1]), ("a".to_owned(), vec![2])];
    assert!(c.commit_cell(&id(1), 1, &dup, &json!(null)).is_err());
    assert!(c.committed().expect("committed").is_empty());
    assert_eq!(dir_names(&t.path().join("c1/cells")), Vec::<String>::new());
    for bad in ["", ".cache", "a/b", ".."] {
        assert!(Campaign::open(t.path(), bad, info()).is_err(), "{bad}");
    }
}

#[test]
fn store_lock_excludes_a_second_writer_until_dropped() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    let e = Campaign::open(t.path(), "c1", info()).expect_err("open should fail");
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(matches!(e, StoreError::Locked { .. }), "{msg}");
    assert!(
        msg.contains(&t.path().join("c1").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("another `chimera run`"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(msg.contains(".lock"), "{msg}");
    // A read-only view does not need the lock.
    assert!(open_existing(t.path(), "c1").is_ok());
    drop(c);
    let c = open(t.path());
    drop(c);
}

#[test]
fn store_refuses_a_newer_store_format() {
    let t = tempfile::tempdir().expect("tempdir");
    drop(open(t.path()));
    let path = t.path().join("c1/campaign.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("read")).expect("from_slice");
    v["store_format"] = json!(STORE_FORMAT + 1);
    v["something_new"] = json!({"x": 1});
    fs::write(&path, serde_json::to_vec(&v).expect("to_vec")).expect("write");
    for e in [
        Campaign::open(t.path(), "c1", info()).expect_err("open should fail"),
        open_existing(t.path(), "c1").expect_err("open_existing should fail"),
    ] {
        let msg = e.to_string();
        eprintln!("{msg}");
        eprintln!("{msg}");
        assert!(
            matches!(e, StoreError::NewerFormat { found, supported, .. } if found == STORE_FORMAT + 1 && supported == STORE_FORMAT),
            "{msg}"
        );
        assert!(msg.contains("upgrade chimera"), "{msg}");
        assert!(msg.contains("--data"), "{msg}");
        assert!(
            msg.contains(&t.path().join("c1").display().to_string()),
            "{msg}"
        );
    }
}

#[test]
fn store_reopen_keeps_created_at_and_appends_changed_manifests() {
    let t = tempfile::tempdir().expect("tempdir");
    let first = open(t.path()).info().clone();
    let mut next = info();
    next.created_at_unix_ms += 5000.0;
    next.manifests.push(ManifestEntry::new(
        "experiments/tr115.yaml",
        "TR115",
        "format: 1\n# v2\n",
    ));
    let c = Campaign::open(t.path(), "c1", next).expect("open");
    assert_eq!(c.info().created_at_unix_ms, first.created_at_unix_ms);
    assert_eq!(c.info().manifests.len(), 2);
    drop(c);
    let view = open_existing(t.path(), "c1").expect("open_existing");
    assert_eq!(view.info().manifests.len(), 2);
    assert_eq!(view.info().manifests[1].text, "format: 1\n# v2\n");
    assert_eq!(view.info().name, "c1");
    let e = open_existing(t.path(), "nope").expect_err("open_existing should fail");
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
}

/// Every stored float reads back bit-identical: the timestamp that once failed
/// (1796387522386.3613 read back as …386.361), then a spread of awkward values through
/// `campaign.json`, the journal and a cell's `MANIFEST.json` meta.
#[test]
fn store_floats_survive_the_json_round_trip_exactly() {
    let mut values = vec![
        1796387522386.3613,
        1796387522386.361,
        0.1 + 0.2,
        f64::MIN_POSITIVE,
        5e-324,
        1.7976931348623157e308,
        123456789.12345679,
    ];
    let mut rng = chimera::plan::SplitMix64(0x5eed);
    for _ in 0..2000 {
        // Millisecond timestamps with a fractional part, and arbitrary finite bit patterns.
        values.push(1.7e12 + (rng.next_u64() % 10_000_000_000) as f64 / 10_000.0);
        let bits = f64::from_bits(rng.next_u64());
        if bits.is_finite() {
            values.push(bits);
        }
    }
    let t = tempfile::tempdir().expect("tempdir");
    for (i, v) in values.iter().copied().enumerate().step_by(97) {
        let name = format!("c{i}");
        let mut info = info();
        info.created_at_unix_ms = v;
        drop(Campaign::open(t.path(), &name, info).expect("open"));
        let back = open_existing(t.path(), &name).expect("reopen");
        assert_eq!(
            back.info().created_at_unix_ms.to_bits(),
            v.to_bits(),
            "{v:?}"
        );
    }
    // (Each journal append is fsync'd: a few hundred of them.)
    let journaled = &values[..400];
    let c = open(t.path());
    for (n, v) in journaled.iter().copied().enumerate() {
        c.journal(&JournalEvent::CellStarted {
            cell: id(n as u64),
            attempt: 1,
            at_unix_ms: v,
        })
        .expect("journal");
    }
    let back = c.journal_events().expect("events");
    assert_eq!(back.len(), journaled.len());
    for (ev, v) in back.iter().zip(journaled) {
        assert_eq!(ev.at_unix_ms().to_bits(), v.to_bits(), "{v:?}");
    }
    c.commit_cell(&id(1), 1, &parts(1), &json!({ "values": values }))
        .expect("commit");
    let meta = c
        .committed()
        .expect("committed")
        .meta(&id(1))
        .expect("meta");
    let read: Vec<f64> = serde_json::from_value(meta["values"].clone()).expect("floats");
    assert!(
        read.iter()
            .zip(&values)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}

/// The same manifest under another path is not a new record; a new text of one report is
/// appended and becomes current; a text used again moves back to the end.
#[test]
fn store_manifest_records_follow_the_text_not_the_path() {
    let t = tempfile::tempdir().expect("tempdir");
    // The campaign opened with one manifest, `path` with `text`.
    let open_with = |path: &str, text: &str| {
        let m = vec![ManifestEntry::new(path, "TR114", text)];
        Campaign::open(t.path(), "c1", CampaignInfo::new("c1", m)).expect("open")
    };
    drop(open_with("m.yaml", "format: 1\n"));
    let c = open_with("/abs/m.yaml", "format: 1\n");
    assert_eq!(c.info().manifests.len(), 1);
    drop(c);
    let c = open_with("m.yaml", "format: 1\n# v2\n");
    assert_eq!(c.info().manifests.len(), 2);
    let current = c.info().current_manifests();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].text, "format: 1\n# v2\n");
    drop(c);
    let c = open_with("x.yaml", "format: 1\n");
    assert_eq!(c.info().manifests.len(), 2);
    assert_eq!(c.info().current_manifests()[0].text, "format: 1\n");
    assert_eq!(c.info().manifests[1].text, "format: 1\n");
}

#[test]
fn store_view_reports_broken_cells_without_moving_them() {
    let t = tempfile::tempdir().expect("tempdir");
    let (_c, dir) = two_committed(t.path());
    flip_byte(&dir.join("summary.json"), 0);
    let view = open_existing(t.path(), "c1").expect("open_existing");
    assert_eq!(view.committed().expect("committed").len(), 2);
    let full = view.verify(Verify::Full).expect("verify");
    assert_eq!(full.ids.len(), 1);
    assert_eq!(full.broken, vec![dir.clone()]);
    assert!(dir.exists());
}

#[test]
fn store_remove_cell_moves_it_aside() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    commit(&c, 1);
    assert!(c.remove_cell(&id(1)).expect("remove_cell"));
    assert!(!c.remove_cell(&id(1)).expect("remove_cell"));
    assert!(c.committed().expect("committed").is_empty());
    let kept = t
        .path()
        .join("c1/cells")
        .join(format!(".forced-{}-1", id(1)));
    assert!(kept.join("MANIFEST.json").exists());
    commit(&c, 1);
    assert!(c.remove_cell(&id(1)).expect("remove_cell"));
    assert!(
        t.path()
            .join("c1/cells")
            .join(format!(".forced-{}-2", id(1)))
            .exists()
    );
}

fn events() -> Vec<JournalEvent> {
    vec![
        JournalEvent::Started {
            run_id: "r1".into(),
            cells_total: 4,
            committed: 1,
            to_run: 3,
            at_unix_ms: 1.5,
        },
        JournalEvent::CellStarted {
            cell: id(2),
            attempt: 1,
            at_unix_ms: 2.0,
        },
        JournalEvent::CellFailed {
            cell: id(2),
            attempt: 1,
            kind: "timeout".into(),
            message: "no first token within 60 s".into(),
            retryable: true,
            final_attempt: false,
            at_unix_ms: 3.0,
        },
        JournalEvent::CellCommitted {
            cell: id(2),
            attempt: 2,
            cached: false,
            at_unix_ms: 4.0,
        },
        JournalEvent::Interrupted {
            run_id: "r1".into(),
            at_unix_ms: 5.0,
        },
        JournalEvent::Finished {
            run_id: "r1".into(),
            committed: 2,
            failed: 0,
            at_unix_ms: 6.0,
        },
    ]
}

#[test]
fn store_journal_round_trips_and_skips_a_torn_last_line() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    for ev in &events() {
        c.journal(ev).expect("journal");
    }
    assert_eq!(c.journal_events().expect("journal_events"), events());
    let path = t.path().join("c1/journal.jsonl");
    let text = fs::read_to_string(&path).expect("read_to_string");
    assert!(
        text.lines()
            .nth(1)
            .expect("second line")
            .starts_with("{\"event\":\"cell_started\""),
        "{text}"
    );
    drop(c);

    // A crash mid-append leaves half a line.
    let mut f = fs::File::options().append(true).open(&path).expect("open");
    std::io::Write::write_all(&mut f, b"{\"event\":\"cell_started\",\"cell\":\"00")
        .expect("write_all");
    drop(f);
    assert_eq!(
        open_existing(t.path(), "c1")
            .expect("open_existing")
            .journal_events()
            .expect("journal_events"),
        events()
    );

    // The next run appends after it without losing its own first event.
    let c = open(t.path());
    let next = JournalEvent::Started {
        run_id: "r2".into(),
        cells_total: 4,
        committed: 2,
        to_run: 2,
        at_unix_ms: 7.0,
    };
    c.journal(&next).expect("journal");
    let mut want = events();
    want.push(next);
    assert_eq!(c.journal_events().expect("journal_events"), want);
    assert_eq!(want[3].at_unix_ms(), 4.0);
}

/// Opening campaign `c1` under `data` fails with an I/O error that names the campaign
/// directory and says each of `wants`; the message.
fn assert_open_fails_with_io(data: &Path, wants: &[&str]) -> String {
    let e = Campaign::open(data, "c1", info()).expect_err("open should fail");
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(matches!(e, StoreError::Io { .. }), "{msg}");
    let dir = data.join("c1").display().to_string();
    for want in std::iter::once(dir.as_str()).chain(wants.iter().copied()) {
        assert!(msg.contains(want), "{want}: {msg}");
    }
    msg
}

#[test]
fn store_data_path_under_a_file_names_the_path_and_the_fix() {
    let t = tempfile::tempdir().expect("tempdir");
    let file = t.path().join("not-a-dir");
    fs::write(&file, b"x").expect("write");
    let msg = assert_open_fails_with_io(&file, &["create the campaign directory"]);
    assert!(msg.contains("pass --data to a"), "{msg}");
}

#[test]
fn store_unwritable_data_directory_names_the_path_and_the_fix() {
    // Root ignores permission bits, so use places no one may create directories in.
    for data in ["/proc/chimera-test-data", "/sys/chimera-test-data"] {
        let data = Path::new(data);
        if !data.parent().is_some_and(Path::exists) || data.exists() {
            continue;
        }
        assert_open_fails_with_io(data, &["pass --data to a writable directory"]);
    }
}

#[test]
fn store_failed_commit_leaves_committed_cells_intact() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    for n in 1..=5 {
        commit(&c, n);
    }
    let cells = t.path().join("c1/cells");
    let aside = t.path().join("c1/cells-aside");
    fs::rename(&cells, &aside).expect("rename");
    fs::write(&cells, b"not a directory").expect("write");
    let e = c
        .commit_cell(&id(6), 1, &parts(6), &json!(null))
        .expect_err("value should fail");
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(matches!(e, StoreError::Io { .. }), "{msg}");
    assert!(msg.contains(&cells.display().to_string()), "{msg}");
    assert!(c.committed().is_err());
    fs::remove_file(&cells).expect("remove_file");
    fs::rename(&aside, &cells).expect("rename");
    let full = c.verify(Verify::Full).expect("verify");
    assert_eq!(full.ids.len(), 5);
    assert!(full.broken.is_empty());
    assert!(!full.contains(&id(6)));
    assert_eq!(dir_names(&cells).len(), 5);
}

#[test]
fn store_cache_insert_lookup_adopt() {
    let t = tempfile::tempdir().expect("tempdir");
    let a = open(t.path());
    let dir = commit(&a, 7);
    let cache = Cache::new(t.path());
    assert_eq!(cache.root(), t.path().join(".cache"));
    let fp = Cache::fingerprint(&["ollama 0.6.2", "gemma3:270m sha256:abc", "NVIDIA H100"]);
    assert_eq!(cache.lookup(&fp, &id(7)), None);
    cache.insert(&fp, &id(7), &dir).expect("insert");
    cache.insert(&fp, &id(7), &dir).expect("insert");
    let hit = cache.lookup(&fp, &id(7)).expect("cache hit");
    assert_eq!(hit, t.path().join(".cache").join(&fp).join(id(7)));
    // Another environment never hits.
    let other = Cache::fingerprint(&["ollama 0.6.3", "gemma3:270m sha256:abc", "NVIDIA H100"]);
    assert_ne!(other, fp);
    assert_eq!(cache.lookup(&other, &id(7)), None);
    assert_eq!(cache.lookup(&fp, &id(8)), None);
    assert_eq!(cache.lookup("../..", &id(7)), None);

    // Adopted into another campaign as a commit.
    let b = Campaign::open(t.path(), "c2", CampaignInfo::new("c2", vec![])).expect("open");
    let adopted = b.adopt_cached(&id(7), &hit).expect("adopt_cached");
    let bdir = t.path().join("c2/cells").join(id(7));
    assert_eq!(adopted, CommitOutcome::Committed(bdir.clone()));
    assert_eq!(
        b.adopt_cached(&id(7), &hit).expect("adopt_cached"),
        CommitOutcome::AlreadyCommitted
    );
    let full = b.verify(Verify::Full).expect("verify");
    assert!(full.contains(&id(7)));
    assert_eq!(full.meta(&id(7)), Some(json!({"n": 7})));
    for (name, bytes) in parts(7) {
        assert_eq!(fs::read(bdir.join(&name)).expect("read"), bytes);
    }
    // A cached directory for another cell is refused.
    let e = b
        .adopt_cached(&id(9), &hit)
        .expect_err("adopt_cached should fail");
    assert!(matches!(e, StoreError::Damaged { .. }), "{e}");
    assert!(!b.committed().expect("committed").contains(&id(9)));
    // The cache survives the campaign cell being forced away.
    a.remove_cell(&id(7)).expect("remove_cell");
    assert!(cache.lookup(&fp, &id(7)).is_some());
}

#[test]
fn store_commits_from_many_threads() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    std::thread::scope(|s| {
        for k in 0..8u64 {
            let c = &c;
            s.spawn(move || {
                for n in 0..20 {
                    // Every thread also races on the shared ids 0..20.
                    let outcome = c
                        .commit_cell(&id(n), 1, &parts(n), &json!({"n": n}))
                        .expect("commit_cell");
                    let _ = outcome;
                    commit(c, 1000 + k * 100 + n);
                }
            });
        }
    });
    let full = c.verify(Verify::Full).expect("verify");
    assert_eq!(full.ids.len(), 20 + 8 * 20);
    assert!(full.broken.is_empty());
}

/// A shard record owning cells `own` (shard 0 of 2).
fn shard_of(own: &[u64]) -> chimera::store::ShardRecord {
    chimera::store::ShardRecord {
        index: 0,
        count: 2,
        by: chimera::plan::ShardBy::Comparison,
        work: 1,
        split: "abc".into(),
        cells: own.iter().map(|&n| id(n)).collect(),
        warmups: Vec::new(),
        host: "h".into(),
        pid: 1,
        started_at_unix_ms: 0.0,
        slurm_job: None,
    }
}

/// A shard cleans up after and sets aside only its own cells: another shard's commit in
/// flight (`.tmp-*`) and its broken cell are left to it; the campaign lock is shared with the
/// other shards and excludes a whole-campaign run.
#[test]
fn store_a_shard_touches_only_its_own_cells() {
    let t = tempfile::tempdir().expect("tempdir");
    let c = open(t.path());
    commit(&c, 1);
    let theirs = commit(&c, 2);
    drop(c);
    let cells = t.path().join("c1/cells");
    let f = fs::File::options()
        .write(true)
        .open(theirs.join("requests.parquet"))
        .expect("open part");
    f.set_len(10).expect("set_len");
    drop(f);
    let mine_tmp = cells.join(format!(".tmp-{}-1", id(3)));
    let their_tmp = cells.join(format!(".tmp-{}-1", id(4)));
    fs::create_dir(&mine_tmp).expect("dir");
    fs::create_dir(&their_tmp).expect("dir");

    let open_shard = |own: &[u64]| {
        Campaign::open_as(
            t.path(),
            "c1",
            info(),
            chimera::store::OpenAs::Shard(shard_of(own)),
        )
    };
    let s = open_shard(&[1, 3]).expect("shard");
    assert!(!mine_tmp.exists(), "its own leftover commit is removed");
    assert!(
        their_tmp.exists(),
        "another shard's commit in flight is left"
    );
    let seen = s.committed().expect("committed");
    assert_eq!(seen.ids.len(), 1);
    assert_eq!(seen.broken, vec![theirs.clone()], "reported where it is");
    assert!(theirs.exists(), "another shard's broken cell is not moved");
    // A second copy of the shard is refused; a whole-campaign run too.
    match open_shard(&[1, 3]) {
        Err(StoreError::ShardRunning { shard, .. }) => assert_eq!(shard, "0/2"),
        other => panic!("expected ShardRunning, got {other:?}"),
    }
    match Campaign::open(t.path(), "c1", info()) {
        Err(e @ StoreError::ShardsRunning { .. }) => {
            assert!(
                e.to_string().contains("has shards running: 0/2 (pid "),
                "{e}"
            );
        }
        other => panic!("expected ShardsRunning, got {other:?}"),
    }
    drop(s);
    // The whole campaign sets it aside.
    let c = open(t.path());
    let seen = c.committed().expect("committed");
    assert_eq!(seen.ids.len(), 1);
    assert!(!theirs.exists());
}
