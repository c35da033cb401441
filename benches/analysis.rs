//! `make bench-analysis`, part 1: the dataset. Generates, once, a campaign-shaped dataset under
//! `target/bench-analysis/data/scale/`: a real chimera campaign (`campaign.json` with the
//! manifest text below, committed cell directories with `cells.parquet`, `agents.parquet` and
//! `requests.parquet` written by `table::cell_parts`, committed by `Campaign::commit_cell`,
//! exactly as `chimera run` writes them) that `chimera analyze` reads. Later runs reuse it when
//! it is complete (an interrupted generation resumes, as a campaign does).
//!
//! Shape (defaults; `CHIMERA_BENCH_ANALYSIS_CELLS`, `CHIMERA_BENCH_ANALYSIS_ROWS`): 4 models ×
//! 2 scenarios × 25 `top_k` values = 200 configurations × 5 repetitions = 1,000 single cells
//! of 10,000 request rows each (2 warm-ups among them) = 10,000,000 request rows. The numbers
//! are synthetic and seeded (SplitMix64, seed 991), drawn so that configurations differ:
//! throughput has a per-model base (32 to 140 tok/s), a scenario and a `top_k` effect, a
//! per-cell random factor and log-normal per-request noise; TTFT likewise. One cell in 97 has a
//! failed request (status failed: the analysis leaves it out). The endpoints are of kind
//! `emulator`: these are not measurements of any model.
//!
//! `scripts/bench-analysis.sh` then times `chimera analyze` against DuckDB on these files.
//! The last line printed is the campaign directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chimera::backend::{ErrorKind, RequestError, RequestRecord};
use chimera::manifest::Options;
use chimera::plan::{NodeKind, Plan, PlanNode, SplitMix64};
use chimera::record::{
    AgentAggregate, AgentRun, CellAxes, CellKey, CellKind, CellMeta, CellRecord, RequestRow,
};
use chimera::store::{Campaign, CampaignInfo, CommitOutcome, ManifestEntry};
use chimera::table;
use chimera::workload::Stage;

const NAME: &str = "scale";
const REPORT: &str = "TR991";
const SEED: u64 = 991;
const MODELS: [(&str, f64, f64); 4] = [
    // (id, throughput base tok/s, TTFT base ms)
    ("tiny", 140.0, 35.0),
    ("small", 95.0, 60.0),
    ("medium", 58.0, 110.0),
    ("large", 32.0, 180.0),
];
const SCENARIOS: [(&str, f64); 2] = [("on_a", 1.0), ("on_b", 0.92)];
const REPETITIONS: u64 = 5;
const WARMUPS: u32 = 2;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn data_dir() -> PathBuf {
    std::env::var_os("CHIMERA_BENCH_ANALYSIS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
                .join("bench-analysis")
        })
        .join("data")
}

/// The manifest: models × scenarios × `top_k` values, `REPETITIONS` each.
fn manifest(top_k: u64) -> String {
    let models: String = MODELS
        .iter()
        .map(|(id, _, _)| format!("  - {{id: {id}, tag: \"bench:{id}\"}}\n"))
        .collect();
    let ks: Vec<String> = (1..=top_k).map(|k| k.to_string()).collect();
    format!(
        r#"# `make bench-analysis`: synthetic rows (benches/analysis.rs), not a measurement.
format: 1
report: {REPORT}
title: "Analysis at scale: synthetic campaign for make bench-analysis"
description: >-
  Seeded synthetic request rows written through chimera's own writers, to time the
  analysis. Nothing here was measured.
endpoints:
  - {{id: emu_a, kind: emulator, url: "http://127.0.0.1:18534", resource: "local:gpu0"}}
  - {{id: emu_b, kind: emulator, url: "http://127.0.0.1:18535", resource: "local:gpu1"}}
models:
{models}workloads:
  - id: ping
    harness: bench
    task: {{kind: single_inference, prompts: ["Say OK."]}}
scenarios:
  - id: on_a
    kind: single
    agents: [{{id: client, role: client, endpoint: emu_a}}]
  - id: on_b
    kind: single
    agents: [{{id: client, role: client, endpoint: emu_b}}]
repetitions: {REPETITIONS}
telemetry: {{source: none}}
matrix:
  - name: scale
    workload: ping
    apply_to: [client]
    id_template: "{{model}}_{{scenario}}_k{{top_k}}"
    axes:
      model: [{}]
      scenario: [on_a, on_b]
      top_k: [{}]
"#,
        MODELS.map(|m| m.0).join(", "),
        ks.join(", ")
    )
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u = rng.unit().max(1e-12);
    let v = rng.unit();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The record of cell `node`, `rows` request rows, its numbers drawn from `seq`.
fn cell(plan: &Plan, node: &PlanNode, seq: u64, rows: u32) -> CellRecord {
    let c = plan
        .config_of(node)
        .expect("a single cell has a configuration");
    let rp = &plan.reports[node.report as usize];
    let model = rp
        .manifest
        .spec
        .models
        .iter()
        .find(|m| *m.id == *c.model)
        .expect("the configuration's model");
    let &(_, tput_base, ttft_base) = MODELS
        .iter()
        .find(|m| m.0 == &*c.model)
        .expect("a bench model");
    let scen = SCENARIOS
        .iter()
        .find(|s| s.0 == &*c.scenario)
        .map_or(1.0, |s| s.1);
    let top_k = c.agents[0].options.top_k.unwrap_or(1) as f64;
    let mut rng = SplitMix64::new(SEED ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let cell_factor = 1.0 + 0.03 * normal(&mut rng);
    let tput_mean = tput_base * scen * (1.0 + 0.004 * top_k) * cell_factor;
    let ttft_mean = ttft_base / scen * (1.0 + 0.002 * top_k);
    let t0 = 1_800_000_000_000.0 + seq as f64 * 60_000.0;
    let fail_at = (seq % 97 == 13).then(|| rng.below(u64::from(rows)) as u32);
    let mut t = t0;
    let requests: Vec<RequestRow> = (0..rows)
        .map(|i| {
            let warmup = i < WARMUPS;
            let tokens = 64 + rng.below(448);
            let tput = tput_mean * (0.12 * normal(&mut rng)).exp();
            let eval_ms = tokens as f64 / tput * 1000.0;
            let cold = if warmup { 8.0 } else { 1.0 };
            let ttft = ttft_mean * cold * (0.25 * normal(&mut rng)).exp();
            let e2e = ttft + eval_ms;
            let failed = fail_at == Some(i);
            let record = RequestRecord {
                sent_at_unix_ms: t,
                ttft_ms: (!failed).then_some(ttft),
                e2e_ms: e2e,
                itl_ms: Vec::new(),
                chunks: if failed { 0 } else { tokens as u32 },
                text: String::new(),
                load_ms: (!failed).then_some(if warmup { 900.0 } else { 0.05 }),
                prompt_tokens: Some(12),
                prompt_eval_ms: (!failed).then_some(4.0),
                output_tokens: (!failed).then_some(tokens),
                eval_ms: (!failed).then_some(eval_ms),
                total_ms: (!failed).then_some(e2e - 1.0),
                done_reason: (!failed).then(|| "stop".to_owned()),
                timing_source: Some("server".to_owned()),
                error: failed.then(|| RequestError {
                    kind: ErrorKind::Timeout,
                    status: None,
                    message: "no byte within 10 s (synthetic)".to_owned(),
                }),
            };
            t += e2e;
            RequestRow {
                stage: Stage::Single,
                index: i,
                warmup,
                throughput_tok_s: (!failed).then(|| tokens as f64 / (eval_ms / 1000.0)),
                client_tok_s: (!failed).then(|| tokens as f64 / ((e2e - ttft) / 1000.0)),
                itl_p50_ms: None,
                itl_p99_ms: None,
                published_ttft_ms: (!failed).then_some(ttft),
                response_chars: Some(tokens * 4),
                load: None,
                record,
            }
        })
        .collect();
    let measured: Vec<&RequestRow> = requests.iter().filter(|r| !r.warmup).collect();
    let ok: Vec<&&RequestRow> = measured
        .iter()
        .filter(|r| r.record.error.is_none())
        .collect();
    let mean = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let wall_ms = t - t0;
    let aggregate = AgentAggregate {
        requests: measured.len(),
        failed: measured.len() - ok.len(),
        throughput_mean_tok_s: mean(ok.iter().filter_map(|r| r.throughput_tok_s).collect()),
        ttft_mean_ms: mean(ok.iter().filter_map(|r| r.record.ttft_ms).collect()),
        published_ttft_mean_ms: mean(ok.iter().filter_map(|r| r.published_ttft_ms).collect()),
        e2e_sum_ms: ok.iter().map(|r| r.record.e2e_ms).sum(),
        output_tokens: ok.iter().filter_map(|r| r.record.output_tokens).sum(),
        eval_sum_ms: ok.iter().filter_map(|r| r.record.eval_ms).sum(),
        ..AgentAggregate::default()
    };
    let a = &c.agents[0];
    let agent = AgentRun {
        agent: a.id.to_string(),
        role: a.role,
        endpoint: a.endpoint.to_string(),
        isolated: true,
        options: Options {
            top_k: a.options.top_k,
            ..Options::default()
        },
        duration_ms: wall_ms,
        files_ingested: None,
        server_version: Some("emulator (synthetic)".into()),
        model_digest: None,
        aggregate,
        requests,
        process: None,
    };
    let key = CellKey {
        cell_id: node.id.hex(),
        kind: CellKind::Single,
        report: rp.report.clone(),
        config: Some(c.id.to_string()),
        scenario: Some(c.scenario.to_string()),
        repetition: node.repetition,
        model: Some(model.tag.clone()),
        axes: CellAxes::of(plan, c),
        server_flags: None,
    };
    CellRecord::new(key, vec![agent], wall_ms, t0)
}

fn main() -> BenchResult<()> {
    let cells = env_u64("CHIMERA_BENCH_ANALYSIS_CELLS", 1_000).max(40);
    let rows = env_u64("CHIMERA_BENCH_ANALYSIS_ROWS", 10_000_000);
    let per_config = (MODELS.len() * SCENARIOS.len()) as u64 * REPETITIONS;
    let top_k = cells.div_ceil(per_config);
    let text = manifest(top_k);
    let data = data_dir();
    let info = CampaignInfo::new(
        NAME,
        vec![ManifestEntry::new("bench-analysis.yaml", REPORT, &text)],
    );
    let campaign = Campaign::open(&data, NAME, info)?;
    // The plan as `chimera analyze` re-plans it from campaign.json.
    let manifests = campaign
        .info()
        .current_manifests()
        .into_iter()
        .map(|e| chimera::manifest::from_bytes(std::path::Path::new(&e.path), e.text.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = chimera::plan::build_loaded(manifests)?;
    let nodes: Vec<&PlanNode> = plan
        .graph
        .node_weights()
        .filter(|n| n.kind == NodeKind::Single)
        .collect();
    let per_cell = (rows / nodes.len() as u64).max(u64::from(WARMUPS) + 1) as u32;
    let have = campaign.committed()?;
    let missing: Vec<(u64, &PlanNode)> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !have.contains(&n.id.hex()))
        .map(|(i, n)| (i as u64, *n))
        .collect();
    println!(
        "campaign {}: {} single cells × {per_cell} request rows = {} rows; {} committed",
        campaign.dir().display(),
        nodes.len(),
        nodes.len() as u64 * u64::from(per_cell),
        nodes.len() - missing.len()
    );
    drop(have);
    if !missing.is_empty() {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        println!(
            "generating {} cells from {threads} threads (written once, reused) …",
            missing.len()
        );
        let start = Instant::now();
        let done = AtomicU64::new(0);
        let step = (missing.len() as u64 / 10).max(1);
        std::thread::scope(|s| -> BenchResult<()> {
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    let (campaign, missing, done, plan) = (&campaign, &missing, &done, &plan);
                    s.spawn(move || -> BenchResult<()> {
                        for &(seq, node) in missing.iter().skip(k).step_by(threads) {
                            let rec = cell(plan, node, seq, per_cell);
                            let parts = table::cell_parts(&rec, NAME)?;
                            let meta = CellMeta::of(&rec).to_value();
                            match campaign.commit_cell(&rec.key.cell_id, 1, &parts, &meta)? {
                                CommitOutcome::Committed(_) | CommitOutcome::AlreadyCommitted => {}
                            }
                            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if d % step == 0 {
                                println!(
                                    "  {d:>6} / {}  {:.1} s",
                                    missing.len(),
                                    start.elapsed().as_secs_f64()
                                );
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| "a generator thread panicked")??;
            }
            Ok(())
        })?;
        println!(
            "generated {} cells in {:.1} s",
            missing.len(),
            start.elapsed().as_secs_f64()
        );
    }
    println!("{}", campaign.dir().display());
    Ok(())
}
