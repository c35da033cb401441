//! The table layer end to end: per-cell parts on disk → `compact` → hive-partitioned dataset.

use std::fs;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use chimera::backend::{ErrorKind, RequestError, RequestRecord};
use chimera::manifest::{Options, Role};
use chimera::record::AgentAggregate;
use chimera::record::{AgentRun, CellKind, CellRecord, RequestRow};
use chimera::table::{self, ProvenanceRow, TableError};
use chimera::workload::Stage;

fn request(index: u32, ok: bool) -> RequestRow {
    RequestRow {
        stage: Stage::Single,
        index,
        warmup: false,
        throughput_tok_s: ok.then_some(50.0),
        client_tok_s: None,
        itl_p50_ms: None,
        itl_p99_ms: None,
        published_ttft_ms: ok.then_some(100.0),
        response_chars: None,
        load: None,
        record: RequestRecord {
            sent_at_unix_ms: 1_700_000_000_000.0 + f64::from(index),
            ttft_ms: ok.then_some(100.0),
            e2e_ms: 1_000.0,
            text: "abc".into(),
            output_tokens: ok.then_some(50),
            eval_ms: ok.then_some(1_000.0),
            error: (!ok).then(|| RequestError {
                kind: ErrorKind::Timeout,
                status: None,
                message: "stalled".into(),
            }),
            ..RequestRecord::default()
        },
    }
}

fn cell(id: &str, report: &str, agents: usize, requests: u32) -> CellRecord {
    let agents = (0..agents)
        .map(|a| AgentRun {
            agent: ["A", "B", "C"][a % 3].into(),
            role: Role::Client,
            endpoint: "gpu0".into(),
            isolated: agents == 1,
            options: Options {
                num_ctx: Some(4096),
                ..Options::default()
            },
            duration_ms: 1_000.0 * f64::from(requests),
            files_ingested: None,
            server_version: None,
            model_digest: None,
            aggregate: AgentAggregate {
                requests: requests as usize,
                ..AgentAggregate::default()
            },
            requests: (0..requests).map(|i| request(i, i % 2 == 0)).collect(),
            process: None,
        })
        .collect();
    let mut rec = chimera::fuzzing::sample_cell_record(id.into(), CellKind::Single, report, agents);
    rec.key.model = Some("m:latest".into());
    rec.wall_ms = 1_234.5;
    rec.aggregate_tok_s = Some(40.5);
    rec
}

/// Writes a cell's parts as the store would commit them.
fn commit(campaign: &Path, rec: &CellRecord) {
    let dir = campaign.join("cells").join(&rec.key.cell_id);
    fs::create_dir_all(&dir).expect("mkdir");
    for (name, bytes) in table::cell_parts(rec, "camp").expect("parts") {
        fs::write(dir.join(name), bytes).expect("write part");
    }
}

fn rows(path: &Path) -> usize {
    table::read_parquet(path)
        .expect("read")
        .iter()
        .map(RecordBatch::num_rows)
        .sum()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn part(campaign: &Path, table: &str, report: &str) -> PathBuf {
    campaign
        .join("tables")
        .join(table)
        .join(format!("report={report}"))
        .join("part-00000.parquet")
}

#[test]
fn compact_partitions_the_parts_by_report() {
    let tmp = tempfile::tempdir().expect("tmp");
    let camp = tmp.path().join("camp");
    let cells = [
        cell("aaa1", "tr108", 1, 3),
        cell("aaa2", "tr108", 2, 2),
        cell("bbb1", "tr110", 2, 1),
        cell("bbb2", "tr110", 0, 0), // e.g. a failed warm-up: no agents
    ];
    for c in &cells {
        commit(&camp, c);
    }
    // An in-flight commit must be ignored, even if it is garbage.
    let inflight = camp.join("cells").join(".tmp-ccc1-1");
    fs::create_dir_all(&inflight).expect("mkdir");
    fs::write(inflight.join("cells.parquet"), b"half a file").expect("write");
    fs::write(
        camp.join("provenance.parquet"),
        table::provenance_part(&[ProvenanceRow {
            campaign: "camp".into(),
            endpoint: "gpu0".into(),
            url: "http://127.0.0.1:11434".into(),
            server_kind: "emulator".into(),
            chimera_version: "0.1.0".into(),
            ..ProvenanceRow::default()
        }])
        .expect("provenance"),
    )
    .expect("write");

    let summary = table::compact(&camp).expect("compact");
    assert_eq!(summary.cell_dirs, 4);
    assert_eq!(summary.reports, ["tr108", "tr110"]);
    let n_agents: usize = cells.iter().map(|c| c.agents.len()).sum();
    let n_requests: usize = cells
        .iter()
        .flat_map(|c| &c.agents)
        .map(|a| a.requests.len())
        .sum();
    assert_eq!(summary.rows_of("cells"), 4);
    assert_eq!(summary.rows_of("agents"), n_agents);
    assert_eq!(summary.rows_of("requests"), n_requests);
    assert_eq!(summary.rows_of("provenance"), 1);
    assert_eq!(summary.files.len(), 3 * 2 + 1);

    let tables = camp.join("tables");
    assert_eq!(
        listing(&tables),
        ["agents", "cells", "provenance", "requests"]
    );
    for t in ["cells", "agents", "requests"] {
        assert_eq!(
            listing(&tables.join(t)),
            ["report=tr108", "report=tr110"],
            "{t}"
        );
        assert_eq!(
            listing(&tables.join(t).join("report=tr108")),
            ["part-00000.parquet"],
            "{t}"
        );
    }
    assert_eq!(listing(&tables.join("provenance")), ["part-00000.parquet"]);

    // Row counts per partition equal the sum of the parts.
    for report in ["tr108", "tr110"] {
        let mine: Vec<&CellRecord> = cells.iter().filter(|c| c.key.report == report).collect();
        assert_eq!(rows(&part(&camp, "cells", report)), mine.len());
        assert_eq!(
            rows(&part(&camp, "agents", report)),
            mine.iter().map(|c| c.agents.len()).sum::<usize>()
        );
        assert_eq!(
            rows(&part(&camp, "requests", report)),
            mine.iter()
                .flat_map(|c| &c.agents)
                .map(|a| a.requests.len())
                .sum::<usize>()
        );
    }

    // The partition column lives in the path only; everything else is the table's schema.
    let batches = table::read_parquet(&part(&camp, "cells", "tr110")).expect("read");
    let b = &batches[0];
    assert!(b.column_by_name("report").is_none());
    let want: Vec<String> = table::cells_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| n != "report")
        .collect();
    let got: Vec<String> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(got, want);
    let ids = b
        .column_by_name("cell_id")
        .expect("cell_id")
        .as_string::<i32>();
    let ids: Vec<&str> = (0..ids.len()).map(|i| ids.value(i)).collect();
    assert_eq!(ids, ["bbb1", "bbb2"], "cell-id order");
    assert_eq!(
        b.schema()
            .metadata()
            .get("chimera.table")
            .map(String::as_str),
        Some("cells")
    );
    let req = table::read_parquet(&part(&camp, "requests", "tr108")).expect("read");
    let errs = req[0]
        .column_by_name("error_kind")
        .expect("error_kind")
        .as_string::<i32>();
    assert_eq!(
        errs.null_count(),
        4,
        "requests 0 and 2 of aaa1, request 0 of each aaa2 agent succeeded"
    );
}

#[test]
fn compact_again_replaces_the_older_dataset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let camp = tmp.path().join("camp");
    commit(&camp, &cell("aaa1", "tr108", 1, 2));
    commit(&camp, &cell("bbb1", "tr110", 1, 2));
    table::compact(&camp).expect("first");
    // A crashed earlier compaction left a temporary file behind.
    let leftover = camp
        .join("tables/cells/report=tr108")
        .join(".tmp-part-00000.parquet-999.partial");
    fs::write(&leftover, b"junk").expect("write");

    fs::remove_dir_all(camp.join("cells").join("bbb1")).expect("rm");
    commit(&camp, &cell("aaa2", "tr108", 2, 1));
    let s = table::compact(&camp).expect("second");
    assert_eq!(s.reports, ["tr108"]);
    assert_eq!(s.rows_of("cells"), 2);
    assert_eq!(s.rows_of("requests"), 4);
    for t in ["cells", "agents", "requests"] {
        assert_eq!(
            listing(&camp.join("tables").join(t)),
            ["report=tr108"],
            "{t}"
        );
    }
    assert!(!leftover.exists());
    assert_eq!(rows(&part(&camp, "cells", "tr108")), 2);
    // The parts are untouched.
    assert_eq!(listing(&camp.join("cells")), ["aaa1", "aaa2"]);
}

#[test]
fn compact_of_an_empty_campaign_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = table::compact(tmp.path()).expect("compact");
    assert_eq!(s.cell_dirs, 0);
    assert!(s.reports.is_empty() && s.files.is_empty());
    assert_eq!(s.rows_of("cells"), 0);
}

#[test]
fn compact_names_a_damaged_part() {
    let tmp = tempfile::tempdir().expect("tmp");
    let camp = tmp.path().join("camp");
    commit(&camp, &cell("aaa1", "tr108", 1, 1));
    let bad = camp.join("cells/aaa1/agents.parquet");
    fs::write(&bad, b"PAR1 not really").expect("write");
    let err = table::compact(&camp).expect_err("damaged");
    assert!(matches!(err, TableError::Parquet { .. }), "{err:?}");
    assert!(err.to_string().contains("aaa1/agents.parquet"), "{err}");
    fs::remove_file(&bad).expect("rm");
    let err = table::compact(&camp).expect_err("missing");
    assert!(err.to_string().contains("agents.parquet"), "{err}");
}
