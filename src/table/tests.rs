use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType,
    UInt16Type, UInt32Type, UInt64Type,
};

use super::*;
use crate::backend::{ErrorKind, RequestError, RequestRecord};
use crate::manifest::{Options, Role};
use crate::metrics::AgentAggregate;
use crate::record::{AgentRun, CellKind, RequestRow, Status};
use crate::workload::Stage;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

fn request(stage: Stage, index: u32, ok: bool) -> RequestRow {
    let record = if ok {
        RequestRecord {
            sent_at_unix_ms: 1_700_000_000_123.4,
            ttft_ms: Some(120.5),
            e2e_ms: 2_000.0,
            itl_ms: vec![10.0, 12.0],
            chunks: 42,
            text: "héllo wörld".into(),
            load_ms: Some(5.0),
            prompt_tokens: Some(300),
            prompt_eval_ms: Some(80.0),
            output_tokens: Some(150),
            eval_ms: Some(1_800.0),
            total_ms: Some(1_900.0),
            done_reason: Some("stop".into()),
            timing_source: Some("ollama".into()),
            error: None,
        }
    } else {
        RequestRecord {
            sent_at_unix_ms: 1_700_000_001_000.0,
            e2e_ms: 30_000.0,
            error: Some(RequestError {
                kind: ErrorKind::QueueFull,
                status: Some(503),
                message: "server busy".into(),
            }),
            ..RequestRecord::default()
        }
    };
    RequestRow {
        stage,
        index,
        warmup: false,
        throughput_tok_s: ok.then_some(83.3),
        client_tok_s: ok.then_some(79.9),
        itl_p50_ms: ok.then_some(11.0),
        itl_p99_ms: ok.then_some(11.98),
        published_ttft_ms: ok.then_some(120.5),
        response_chars: None,
        load: None,
        record,
    }
}

pub(super) fn sample_cell() -> CellRecord {
    let agent = |id: &str, role, opts: Options, reqs: Vec<RequestRow>| AgentRun {
        agent: id.into(),
        role,
        endpoint: "gpu0".into(),
        isolated: false,
        options: opts,
        duration_ms: 4_000.0,
        files_ingested: Some(7),
        server_version: Some("0.6.1".into()),
        model_digest: None,
        aggregate: AgentAggregate {
            requests: reqs.len(),
            failed: 0,
            throughput_mean_tok_s: Some(83.3),
            throughput_sd_tok_s: 0.5,
            ttft_mean_ms: Some(120.5),
            ttft_sd_ms: 1.5,
            e2e_sum_ms: 4_000.0,
            output_tokens: 300,
            load_sum_ms: 10.0,
            prompt_eval_sum_ms: 160.0,
            eval_sum_ms: 3_600.0,
            published_ttft_mean_ms: Some(120.5),
        },
        requests: reqs,
        process: None,
    };
    let mut rec = crate::fuzzing::sample_cell_record(
        "c0ffee".into(),
        CellKind::Concurrent,
        "tr110",
        vec![
            agent(
                "A",
                Role::Collector,
                Options {
                    num_gpu: Some(80),
                    num_ctx: Some(2048),
                    temperature: Some(0.8),
                    num_predict: Some(-1),
                    seed: Some(u64::MAX),
                    ..Options::default()
                },
                vec![
                    request(Stage::Analysis, 0, true),
                    request(Stage::Report, 1, true),
                ],
            ),
            agent(
                "B",
                Role::Insight,
                Options::default(),
                vec![request(Stage::Analysis, 0, false)],
            ),
        ],
    );
    rec.key.config = Some("cfg-1".into());
    rec.key.scenario = Some("homo".into());
    rec.key.repetition = 2;
    rec.wall_ms = 4_100.0;
    rec.aggregate_tok_s = Some(146.3);
    let multi = rec.multi_agent.as_mut().expect("a concurrent cell");
    multi.throughput_delta_tok_s = Some(0.4);
    multi.ttft_delta_ms = Some(-3.0);
    rec
}

fn one(batches: Vec<RecordBatch>) -> RecordBatch {
    assert_eq!(batches.len(), 1);
    batches.into_iter().next().expect("one batch")
}

fn parts(rec: &CellRecord) -> Vec<(String, RecordBatch)> {
    cell_parts(rec, "camp")
        .expect("parts")
        .into_iter()
        .map(|(name, bytes)| {
            let b = one(read_parquet_bytes(Bytes::from(bytes)).expect("read back"));
            (name, b)
        })
        .collect()
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
}

fn s(b: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let c = col(b, name).as_string::<i32>();
    c.is_valid(i).then(|| c.value(i).to_string())
}

/// The value of the primitive column `name` at row `i` (not null).
fn num<T: ArrowPrimitiveType>(b: &RecordBatch, name: &str, i: usize) -> T::Native {
    col(b, name).as_primitive::<T>().value(i)
}

fn f(b: &RecordBatch, name: &str, i: usize) -> Option<f64> {
    let c = col(b, name).as_primitive::<Float64Type>();
    c.is_valid(i).then(|| c.value(i))
}

/// Each `(name, type, nullable)` of `expected` is a column of `schema` with that type and
/// nullability.
fn assert_columns(schema: &SchemaRef, expected: &[(&str, DataType, bool)]) {
    for (name, dt, nullable) in expected {
        let fld = schema.field_with_name(name).expect(name);
        assert_eq!(
            (fld.data_type(), fld.is_nullable()),
            (dt, *nullable),
            "{name}"
        );
    }
}

/// `requests` ends with the TTFT as published and the serving-load columns (schema 8), the
/// gaps a list of numbers.
#[test]
fn requests_end_with_the_serving_load_columns() {
    let schema = requests_schema();
    let requests: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(requests.len(), 35);
    assert_eq!(
        requests[27..],
        [
            "published_ttft_ms",
            "load_user",
            "scheduled_ms",
            "load_sent_ms",
            "lateness_ms",
            "input_tokens_requested",
            "output_tokens_requested",
            "itl_ms"
        ]
    );
    let itl = schema.field_with_name("itl_ms").expect("itl_ms");
    assert!(matches!(itl.data_type(), DataType::List(f) if *f.data_type() == DataType::Float64));
}

#[test]
fn schemas_have_the_documented_columns() {
    let names =
        |s: SchemaRef| -> Vec<String> { s.fields().iter().map(|f| f.name().clone()).collect() };
    let cells = names(cells_schema());
    assert_eq!((cells.len(), cells[51].as_str()), (52, "server_flags"));
    assert_eq!(
        cells[32..51],
        [
            "runtime",
            "language",
            "block",
            "harness",
            "start_skew_ms",
            "first_request_skew_ms",
            "equal_work_alone_ms",
            "equal_work_speedup",
            "equal_work_efficiency_pct",
            "isolated_sum_tok_s",
            "throughput_efficiency_pct",
            "alone_per_output_token_ms",
            "together_per_output_token_ms",
            "suspect",
            "suspect_reasons",
            "host",
            "shard",
            "gpu_name",
            "gpu_uuid"
        ]
    );
    let agents = names(agents_schema());
    assert_eq!(agents.len(), 44);
    assert_eq!(
        agents[30..],
        [
            "published_ttft_mean_ms",
            "model",
            "runtime",
            "language",
            "block",
            "harness",
            "process_wall_ms",
            "process_user_cpu_ms",
            "process_sys_cpu_ms",
            "process_peak_rss_mib",
            "process_exit_code",
            "start_offset_ms",
            "decode_per_output_token_ms",
            "prefill_per_prompt_token_ms"
        ]
    );
    assert_eq!(
        names(telemetry_schema()),
        [
            "cell_id",
            "report",
            "gpu",
            "t_ms",
            "util_pct",
            "mem_used_mib",
            "power_w",
            "energy_mj",
            "temp_c",
            "sm_clock_mhz"
        ]
    );
    assert_eq!(names(provenance_schema()).len(), 15);
    assert!(names(provenance_schema()).contains(&"cuda_driver_version".to_string()));
    let utc_ms = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let axes = [
        ("runtime", DataType::Utf8, true),
        ("language", DataType::Utf8, true),
        ("block", DataType::Utf8, true),
        ("harness", DataType::Utf8, true),
    ];
    assert_columns(&cells_schema(), &axes);
    assert_columns(&agents_schema(), &axes);
    assert_columns(
        &cells_schema(),
        &[
            ("started_at", utc_ms.clone(), false),
            ("report", DataType::Utf8, false),
            ("config_id", DataType::Utf8, true),
            ("repetition", DataType::UInt32, false),
            ("contention", DataType::Boolean, true),
            ("energy_j", DataType::Float64, true),
            ("throttled", DataType::Boolean, true),
        ],
    );
    assert_columns(
        &agents_schema(),
        &[
            ("isolated", DataType::Boolean, false),
            ("num_predict", DataType::Int64, true),
            ("seed", DataType::UInt64, true),
            ("top_k", DataType::UInt32, true),
            ("throughput_sd_tok_s", DataType::Float64, false),
            ("model", DataType::Utf8, true),
        ],
    );
    let req = requests_schema();
    assert!(
        req.field_with_name("text").is_err(),
        "the generated text is never stored"
    );
    assert_columns(
        &req,
        &[
            ("sent_at", utc_ms, false),
            ("error_status", DataType::UInt16, true),
            ("response_chars", DataType::UInt64, false),
            ("ttft_ms", DataType::Float64, true),
        ],
    );
    // Units in the names: every Float64 column but the ratios carries a unit suffix.
    for schema in [
        cells_schema(),
        agents_schema(),
        requests_schema(),
        telemetry_schema(),
    ] {
        for fld in schema.fields() {
            if fld.data_type() == &DataType::Float64 {
                let n = fld.name();
                let unit = ["_ms", "_tok_s", "_pct", "_w", "_j", "_mib", "_c"]
                    .iter()
                    .any(|u| n.ends_with(u));
                let ratio = matches!(
                    n.as_str(),
                    "published_speedup"
                        | "true_speedup"
                        | "equal_work_speedup"
                        | "temperature"
                        | "top_p"
                        | "repeat_penalty"
                );
                assert!(unit || ratio, "{n} has no unit");
            }
        }
    }
}

#[test]
fn cell_round_trips_through_parquet() {
    let rec = sample_cell();
    let p = parts(&rec);
    let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, CELL_PART_FILES);

    let cells = &p[0].1;
    assert_eq!(cells.num_rows(), 1);
    assert_eq!(s(cells, "report", 0).as_deref(), Some("tr110"));
    assert_eq!(s(cells, "campaign", 0).as_deref(), Some("camp"));
    assert_eq!(s(cells, "kind", 0).as_deref(), Some("concurrent"));
    assert_eq!(s(cells, "config_id", 0).as_deref(), Some("cfg-1"));
    assert_eq!(s(cells, "error", 0), None);
    assert_eq!(s(cells, "error_kind", 0), None);
    assert_eq!(num::<UInt32Type>(cells, "repetition", 0), 2);
    let ts = col(cells, "started_at").as_primitive::<TimestampMillisecondType>();
    assert_eq!(ts.value(0), 1_700_000_000_000);
    assert_eq!(ts.timezone(), Some("UTC"));
    assert_eq!(f(cells, "wall_ms", 0), Some(4_100.0));
    assert_eq!(f(cells, "published_efficiency_pct", 0), Some(97.5));
    assert_eq!(f(cells, "true_speedup", 0), None);
    assert_eq!(f(cells, "ttft_delta_ms", 0), Some(-3.0));
    assert!(!col(cells, "contention").as_boolean().value(0));
    for t in [
        "gpu_util_mean_pct",
        "power_mean_w",
        "energy_j",
        "mem_peak_mib",
        "throttled",
    ] {
        assert!(col(cells, t).is_null(0), "{t}");
    }

    let agents = &p[1].1;
    assert_eq!(agents.num_rows(), 2);
    assert_eq!(s(agents, "agent", 1).as_deref(), Some("B"));
    assert_eq!(s(agents, "role", 0).as_deref(), Some("collector"));
    assert_eq!(s(agents, "role", 1).as_deref(), Some("insight"));
    assert_eq!(s(agents, "cell_id", 1).as_deref(), Some("c0ffee"));
    let num_gpu = col(agents, "num_gpu").as_primitive::<UInt32Type>();
    assert_eq!((num_gpu.value(0), num_gpu.is_null(1)), (80, true));
    assert_eq!(f(agents, "temperature", 0), Some(0.8));
    assert_eq!(f(agents, "temperature", 1), None);
    assert!(col(agents, "top_k").is_null(0));
    assert_eq!(num::<Int64Type>(agents, "num_predict", 0), -1);
    assert_eq!(num::<UInt64Type>(agents, "seed", 0), u64::MAX);
    assert_eq!(num::<UInt64Type>(agents, "requests", 0), 2);
    assert_eq!(s(agents, "model_digest", 0), None);
    assert_eq!(s(agents, "server_version", 0).as_deref(), Some("0.6.1"));
    assert_eq!(f(agents, "throughput_mean_tok_s", 1), Some(83.3));

    let req = &p[2].1;
    assert_eq!(req.num_rows(), 3);
    let agent: Vec<Option<String>> = (0..3).map(|i| s(req, "agent", i)).collect();
    assert_eq!(
        agent,
        [Some("A".into()), Some("A".into()), Some("B".into())]
    );
    assert_eq!(s(req, "stage", 1).as_deref(), Some("report"));
    assert_eq!(num::<UInt32Type>(req, "request_index", 1), 1);
    let sent = col(req, "sent_at").as_primitive::<TimestampMillisecondType>();
    assert_eq!(sent.value(0), 1_700_000_000_123);
    assert_eq!(num::<UInt64Type>(req, "response_chars", 0), 11);
    assert_eq!(num::<UInt32Type>(req, "chunks", 0), 42);
    assert_eq!(f(req, "ttft_ms", 0), Some(120.5));
    assert_eq!(f(req, "ttft_ms", 2), None);
    assert_eq!(f(req, "itl_p99_ms", 0), Some(11.98));
    assert_eq!(s(req, "done_reason", 0).as_deref(), Some("stop"));
    assert_eq!(s(req, "error_kind", 0), None);
    assert_eq!(s(req, "error_kind", 2).as_deref(), Some("queue_full"));
    assert_eq!(num::<UInt16Type>(req, "error_status", 2), 503);
    assert!(col(req, "error_status").is_null(0));
    assert_eq!(s(req, "error_message", 2).as_deref(), Some("server busy"));
    assert_eq!(s(req, "timing_source", 0).as_deref(), Some("ollama"));
    assert_eq!(s(req, "timing_source", 2), None);
    assert_eq!(num::<UInt64Type>(req, "prompt_tokens", 0), 300);
    assert!(col(req, "output_tokens").is_null(2));
}

#[test]
fn a_cell_without_agents_gives_empty_tables() {
    let mut rec = sample_cell();
    rec.agents.clear();
    rec.key.kind = CellKind::Warmup;
    rec.status = Status::Failed;
    rec.error = Some("connection refused".into());
    rec.error_kind = Some(ErrorKind::ConnectionRefused);
    let p = parts(&rec);
    assert_eq!(p[0].1.num_rows(), 1);
    assert_eq!(
        s(&p[0].1, "error", 0).as_deref(),
        Some("connection refused")
    );
    assert_eq!(
        s(&p[0].1, "error_kind", 0).as_deref(),
        Some("connection_refused")
    );
    assert_eq!(p[1].1.num_rows(), 0);
    assert_eq!(p[2].1.num_rows(), 0);
}

#[test]
fn files_carry_metadata_zstd_and_one_row_group() {
    let rec = sample_cell();
    for ((name, bytes), table) in cell_parts(&rec, "camp")
        .expect("parts")
        .into_iter()
        .zip(["cells", "agents", "requests"])
    {
        let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).expect(&name);
        let md = builder.metadata();
        let kv = md.file_metadata().key_value_metadata().expect("kv");
        let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
        assert_eq!(get(META_SCHEMA_VERSION), Some(SCHEMA_VERSION.to_string()));
        assert_eq!(
            get(META_CHIMERA_VERSION).as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(get(META_TABLE).as_deref(), Some(table));
        assert_eq!(md.num_row_groups(), 1, "{name}");
        let rg = md.row_group(0);
        assert!(
            rg.columns()
                .iter()
                .all(|c| matches!(c.compression(), Compression::ZSTD(_))),
            "{name}"
        );
        // The Arrow schema read back equals the table's (metadata aside).
        let read = builder.schema().clone();
        let want = schema_of(table).expect("schema");
        assert_eq!(read.fields(), want.fields(), "{name}");
        assert_eq!(
            read.metadata().get(META_TABLE).map(String::as_str),
            Some(table)
        );
    }
}

#[test]
fn newer_schema_and_foreign_files_are_refused() {
    let b = cells_batch(&sample_cell(), "camp").expect("batch");
    let write = |kv: Option<Vec<KeyValue>>| {
        let props = WriterProperties::builder()
            .set_key_value_metadata(kv)
            .build();
        let mut w = ArrowWriter::try_new(Vec::new(), b.schema(), Some(props)).expect("writer");
        w.write(&b).expect("write");
        Bytes::from(w.into_inner().expect("close"))
    };
    let newer = write(Some(vec![KeyValue::new(
        META_SCHEMA_VERSION.to_string(),
        (SCHEMA_VERSION + 1).to_string(),
    )]));
    match read_parquet_bytes(newer) {
        Err(TableError::NewerSchema {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("foreign.parquet");
    std::fs::write(&path, write(None)).expect("write");
    let err = read_parquet(&path).expect_err("foreign");
    assert!(matches!(err, TableError::NotChimera { .. }), "{err:?}");
    assert!(err.to_string().contains("foreign.parquet"), "{err}");
    std::fs::write(&path, b"not parquet").expect("write");
    let err = read_parquet(&path).expect_err("garbage");
    assert!(matches!(err, TableError::Parquet { .. }), "{err}");
    let err = read_parquet(&dir.path().join("missing.parquet")).expect_err("missing");
    assert!(err.to_string().contains("missing.parquet"), "{err}");
}

#[test]
fn newer_schema_message_says_what_to_do() {
    let e = TableError::NewerSchema {
        path: "data/x/cells/c/cells.parquet".into(),
        found: 2,
        supported: 1,
    };
    let m = e.to_string();
    assert!(
        m.contains("data/x/cells/c/cells.parquet") && m.contains("upgrade chimera"),
        "{m}"
    );
}

#[test]
fn provenance_round_trips() {
    let rows = vec![
        ProvenanceRow {
            campaign: "camp".into(),
            endpoint: "gpu0".into(),
            url: "http://127.0.0.1:11434".into(),
            host: Some("box".into()),
            server_kind: "ollama".into(),
            server_version: Some("0.6.1".into()),
            model_tag: Some("gemma3:latest".into()),
            model_digest: Some("sha256:ab".into()),
            chimera_version: env!("CARGO_PKG_VERSION").into(),
            ..ProvenanceRow::default()
        },
        ProvenanceRow {
            campaign: "camp".into(),
            endpoint: "gpu1".into(),
            url: "http://127.0.0.1:11435".into(),
            server_kind: "emulator".into(),
            chimera_version: env!("CARGO_PKG_VERSION").into(),
            ..ProvenanceRow::default()
        },
    ];
    let b =
        one(read_parquet_bytes(Bytes::from(provenance_part(&rows).expect("part"))).expect("read"));
    assert_eq!(b.num_rows(), 2);
    assert_eq!(s(&b, "endpoint", 1).as_deref(), Some("gpu1"));
    assert_eq!(s(&b, "host", 0).as_deref(), Some("box"));
    assert_eq!(s(&b, "host", 1), None);
    assert_eq!(s(&b, "git_sha", 0), None);
    assert_eq!(s(&b, "model_digest", 0).as_deref(), Some("sha256:ab"));
}

#[test]
fn partition_names_are_hive_safe() {
    for (report, dir) in [
        ("tr110", "report=tr110"),
        ("TR_114-v2.1", "report=TR_114-v2.1"),
        ("a/b c", "report=a%2Fb%20c"),
        ("", "report=__HIVE_DEFAULT_PARTITION__"),
    ] {
        assert_eq!(partition_dir_name(report), dir);
    }
}

/// A cell committed by schema version 1 (no `requests.timing_source`, no
/// `requests.published_ttft_ms`) still compacts: the missing trailing nullable columns come
/// back as nulls.
#[test]
fn version_1_parts_without_timing_source_still_compact() {
    let rec = sample_cell();
    let dir = tempfile::tempdir().expect("tmp");
    let cell = dir.path().join("cells").join(&rec.key.cell_id);
    std::fs::create_dir_all(&cell).expect("cell dir");
    for (name, bytes) in cell_parts(&rec, "camp").expect("parts") {
        std::fs::write(cell.join(name), bytes).expect("write part");
    }
    let full = requests_batch(&rec, "camp").expect("requests");
    let n = full
        .schema()
        .index_of("timing_source")
        .expect("timing_source");
    assert_eq!(full.schema().field(n + 1).name(), "published_ttft_ms");
    let old = full.project(&(0..n).collect::<Vec<_>>()).expect("project");
    let kv = vec![
        KeyValue::new(META_SCHEMA_VERSION.to_string(), "1".to_string()),
        KeyValue::new(META_TABLE.to_string(), "requests".to_string()),
    ];
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(kv))
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), old.schema(), Some(props)).expect("writer");
    w.write(&old).expect("write");
    std::fs::write(
        cell.join("requests.parquet"),
        w.into_inner().expect("close"),
    )
    .expect("write v1 part");
    let summary = compact(dir.path()).expect("compact");
    assert_eq!(summary.rows_of("requests"), full.num_rows());
    let file = dir
        .path()
        .join("tables/requests")
        .join(partition_dir_name(&rec.key.report))
        .join("part-00000.parquet");
    let b = one(read_parquet(&file).expect("compacted"));
    for column in ["timing_source", "published_ttft_ms"] {
        assert_eq!(
            b.column_by_name(column).expect("column").null_count(),
            b.num_rows(),
            "{column}"
        );
    }
}

#[test]
fn server_samples_become_a_fifth_part_with_gaps() {
    use crate::telemetry::{MetricKind, MetricReading, ServerSample};
    let names: Vec<String> = server_metrics_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "cell_id", "report", "endpoint", "t_ms", "metric", "labels", "kind", "value", "error"
        ]
    );
    let mut rec = sample_cell();
    assert!(
        !parts(&rec)
            .iter()
            .any(|(n, _)| n == SERVER_METRICS_PART_FILE)
    );
    let t0 = rec.started_at_unix_ms;
    rec.server_samples = vec![
        ServerSample {
            endpoint: "llama_a".into(),
            t_unix_ms: t0 + 1.5,
            reading: Some(MetricReading {
                name: "llamacpp:requests_deferred".into(),
                labels: "slot=0".into(),
                kind: MetricKind::Gauge,
                value: 2.0,
            }),
            error: None,
        },
        ServerSample {
            endpoint: "llama_a".into(),
            t_unix_ms: t0 + 500.0,
            reading: None,
            error: Some("HTTP 404 Not Found".into()),
        },
    ];
    let p = parts(&rec);
    let (name, b) = p.last().expect("parts");
    assert_eq!(name, SERVER_METRICS_PART_FILE);
    assert_eq!(b.num_rows(), 2);
    assert_eq!(s(b, "endpoint", 0).as_deref(), Some("llama_a"));
    assert_eq!(f(b, "t_ms", 0), Some(1.5));
    assert_eq!(
        s(b, "metric", 0).as_deref(),
        Some("llamacpp:requests_deferred")
    );
    assert_eq!(s(b, "labels", 0).as_deref(), Some("slot=0"));
    assert_eq!(s(b, "kind", 0).as_deref(), Some("gauge"));
    assert_eq!(f(b, "value", 0), Some(2.0));
    assert_eq!(s(b, "kind", 1).as_deref(), Some(GAP_KIND));
    assert_eq!(f(b, "value", 1), None);
    assert_eq!(s(b, "error", 1).as_deref(), Some("HTTP 404 Not Found"));
    let rows: Vec<ServerMetricsRow> = ServerMetricsRow::from_batch(b).expect("rows");
    assert_eq!(rows, ServerMetricsRow::of(&rec));
}
