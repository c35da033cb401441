//! The workload layer end to end on disk: the generated corpus, its ingest, and the
//! prompts built from the shipped manifests' templates.

use std::path::Path;

use chimera::manifest::{Options, Role, Task};
use chimera::workload::corpus::{self, CorpusStats};
use chimera::workload::{AgentWorkflow, Stage, Step};
use chimera::workload::{DataType, ingest};
use sha2::{Digest, Sha256};

use crate::support::root;

/// The data summary recorded in the TR111_v2 / TR114_v2 prompts (101 files).
const RECORDED_SUMMARY: &str = "Total files analyzed: 101

CSV Files (28)
  - reports/gemma3/gemma3_1b-it-qat_baseline.csv
  - reports/gemma3/gemma3_1b-it-qat_param_tuning.csv
  - reports/gemma3/gemma3_1b-it-qat_param_tuning_summary.csv
  - reports/gemma3/gemma3_270m_baseline.csv
  - reports/gemma3/gemma3_270m_param_tuning.csv
  ... and 23 more
  Latest modified: 2025-11-14 18:53:30 UTC

JSON Files (44)
  - reports/ascii_demo_20251004_143244.json
  - reports/ascii_demo_20251004_170151.json
  - reports/ascii_demo_20251004_175024.json
  - reports/compilation/conv_bench_20251002-170837.json
  - reports/compilation/conv_cuda_bench_20251002-172037.json
  ... and 39 more
  Latest modified: 2025-10-08 17:20:51 UTC

MARKDOWN Files (29)
  - reports/compilation/compilation_benchmark_lessons_20251002.md
  - reports/compilation/conv_bench_20251002-170837.md
  - reports/compilation/conv_cuda_bench_20251002-172037.md
  - reports/compilation/mlp_bench_20251002-165750.md
  - reports/compilation/mlp_cuda_bench_20251002-171845.md
  ... and 24 more
  Latest modified: 2025-11-14 18:54:07 UTC

";

/// SHA-256 over every file's relative path, bytes and modification time, in path order.
fn digest(dir: &Path, stats: &CorpusStats) -> String {
    let mut paths = stats.paths.clone();
    paths.sort();
    let mut h = Sha256::new();
    for p in paths {
        let full = dir.join(&p);
        h.update(p.as_bytes());
        h.update(std::fs::read(&full).expect("read"));
        let m = std::fs::metadata(&full)
            .and_then(|m| m.modified())
            .expect("mtime");
        let secs = m
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after epoch")
            .as_secs();
        h.update(secs.to_le_bytes());
    }
    format!("{:x}", h.finalize())
}

fn generated(seed: u64) -> (tempfile::TempDir, CorpusStats) {
    let dir = tempfile::tempdir().expect("tempdir");
    let stats = corpus::generate(dir.path(), 28, 44, 29, seed).expect("generate");
    (dir, stats)
}

fn workflow_task(manifest: &str) -> Task {
    let m = chimera::manifest::load(&root().join("experiments").join(manifest))
        .unwrap_or_else(|e| panic!("{manifest}: {e}"));
    m.spec.workloads[0].task.clone()
}

#[test]
fn workload_default_corpus_ingests_as_the_original() {
    let (dir, stats) = generated(101);
    assert_eq!(
        (stats.files, stats.csv, stats.json, stats.md),
        (101, 28, 44, 29)
    );
    let r = ingest(dir.path());
    assert_eq!(r.files, 101);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(r.by_type[&DataType::Csv].files, 28);
    assert_eq!(r.by_type[&DataType::Json].files, 44);
    assert_eq!(r.by_type[&DataType::Markdown].files, 29);
    assert_eq!(r.total_bytes, stats.total_bytes);
    assert_eq!(r.latest_modified, Some(corpus::MD_LATEST_UNIX));
    // Exactly the summary recorded in the original runs.
    assert_eq!(r.summary_text, RECORDED_SUMMARY);

    // performance_metrics: the fixed keys and first values of metric-named columns/paths.
    let m = &r.metrics;
    assert_eq!(m["total_files_analyzed"], 101);
    assert_eq!(m["total_file_size_bytes"], stats.total_bytes);
    assert_eq!(
        m["data_types"],
        serde_json::json!(["csv", "json", "markdown"])
    );
    assert_eq!(m["json_documents"], 44);
    assert!(m["markdown_heading_count"].as_u64().unwrap_or(0) >= 29 * 4);
    for key in [
        "csv_tokens_per_second",
        "csv_ttft_ms",
        "csv_latency_ms",
        "csv_ttft_s",
        "csv_tokens_s",
        "csv_mean_tokens_s",
        "csv_sm_throughput_pct",
        "json_results.eager.latency_ms.mean",
        "json_results.compiled.throughput_samples_s",
        "json_render_latency_ms[0]",
        "json_metrics.tokens_per_second.mean",
        "json_summary.ttft_s.mean",
        "json_per_prompt[0].tokens_s",
    ] {
        assert!(
            m.get(key).is_some_and(|v| v.is_f64()),
            "{key}: {:?}",
            m.get(key)
        );
    }
    // Non-metric columns are not captured.
    assert!(!m.contains_key("csv_model"));
    assert!(!m.contains_key("csv_load_s"));
}

#[test]
fn workload_generation_is_deterministic_per_seed() {
    let (a, sa) = generated(101);
    let (b, sb) = generated(101);
    let (c, sc) = generated(102);
    assert_eq!(sa, sb);
    let (da, db, dc) = (
        digest(a.path(), &sa),
        digest(b.path(), &sb),
        digest(c.path(), &sc),
    );
    assert_eq!(da, db);
    assert_ne!(da, dc);
    // The summary only depends on names, counts and the pinned newest times.
    assert_eq!(ingest(c.path()).summary_text, RECORDED_SUMMARY);
    assert_ne!(ingest(a.path()).metrics, ingest(c.path()).metrics);
}

#[test]
fn workload_analysis_prompt_from_tr114() {
    let task = workflow_task("tr114.yaml");
    let Task::AgentWorkflow {
        corpus:
            chimera::manifest::Corpus::Generated {
                csv,
                json,
                md,
                seed,
            },
        analysis_template,
        ..
    } = &task
    else {
        panic!("tr114 workload is not a generated-corpus agent workflow");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    corpus::generate(dir.path(), *csv, *json, *md, *seed).expect("generate");
    let r = ingest(dir.path());
    let opts = Options {
        num_gpu: Some(80),
        num_ctx: Some(1024),
        temperature: Some(0.8),
        ..Options::default()
    };
    let mut w = AgentWorkflow::new(&task, Role::Insight, &opts, r).expect("workflow");
    let Some(Step::Call { stage, prompt }) = w.next_step(None) else {
        panic!("no analysis step");
    };
    assert_eq!(stage, Stage::Analysis);
    let first_line = analysis_template.lines().next().unwrap_or_default();
    assert_eq!(
        first_line,
        "You are a performance analysis expert. Analyze the following benchmark data and provide insights."
    );
    assert!(prompt.starts_with(first_line));
    assert!(prompt.contains(RECORDED_SUMMARY));
    assert!(prompt.ends_with("Format your response as structured analysis with clear sections."));
    // The spec's measured analysis-prompt length for 101 files.
    assert_eq!(prompt.chars().count(), 1393);

    let analysis = "# Performance Analysis\n\n## 1. Executive Summary\n\nThe 101 files cover Gemma 3 tuning.\n\n## 2. Key Performance Findings\n\n* **Key insight:** throughput peaks at num_gpu=80.\n\n## 4. Recommendations\n\n1. **Consider** pinning num_ctx to 1024.\n";
    let Some(Step::Call { stage, prompt }) = w.next_step(Some(analysis)) else {
        panic!("no report step");
    };
    assert_eq!(stage, Stage::Report);
    assert!(prompt.starts_with(
        "Generate a comprehensive technical report in the style of Technical Report 108.\n\nAnalysis Results:\n- Summary: The 101 files cover Gemma 3 tuning.\n- Key Findings:\n1. **Key insight:** throughput peaks at num_gpu=80.\n- Performance Metrics: {\n  \"csv_"
    ));
    assert!(prompt.contains("\n}\n- Recommendations:\n1. **Consider** pinning num_ctx to 1024.\n\nCreate a professional technical report"));
    assert!(prompt.contains("  \"total_files_analyzed\": 101\n}"));
    assert!(
        prompt.ends_with("Use markdown formatting and include specific metrics and data points.")
    );
    assert_eq!(w.next_step(None), None);
}

#[test]
fn workload_tr111_templates_equal_tr114() {
    let (a, b) = (workflow_task("tr111.yaml"), workflow_task("tr114.yaml"));
    let (
        Task::AgentWorkflow {
            analysis_template: a1,
            report_template: r1,
            ..
        },
        Task::AgentWorkflow {
            analysis_template: a2,
            report_template: r2,
            ..
        },
    ) = (&a, &b)
    else {
        panic!("not agent workflows");
    };
    assert_eq!(a1, a2);
    assert_eq!(r1, r2);
}

#[test]
fn workload_empty_and_missing_corpora() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = ingest(dir.path());
    assert_eq!(r.files, 0);
    assert_eq!(r.summary_text, "Total files analyzed: 0\n\n");
    let e =
        chimera::workload::ingest_corpus(&chimera::manifest::Corpus::Empty, dir.path(), dir.path())
            .expect("ingest");
    assert_eq!(e, r);
}
