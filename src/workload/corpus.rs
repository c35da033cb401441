//! A deterministic stand-in for the 101-file corpus the Rust harnesses ingested.
//!
//! The original corpus was the pre-reorganisation `Banterhearts/reports` + `csv_data` tree
//! (28 CSV, 44 JSON, 29 Markdown files). Its file names are taken from the recorded data
//! summaries (e.g. `reports/gemma3/gemma3_1b-it-qat_baseline.csv`,
//! `reports/compilation/conv_bench_20251002-170837.json`) and from the surviving
//! `outputs/reports/` tree of the public repository; files beyond those are seeded names
//! under `csv_data/` and `reports/ollama/`. File contents are seeded synthetic benchmark
//! data (TR108-style CSV columns, nested JSON results, Markdown reports with bullet
//! metrics). Modification times are set as well: every type's newest file carries the
//! "Latest modified" time recorded in the TR111_v2/TR114_v2 prompts, so with the default
//! composition the data summary (and the analysis prompt) equals the recorded one.
//!
//! Same arguments → byte-identical files and identical modification times.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::manifest::Corpus;
use crate::util::rng::{SplitMix64, fnv1a};
use serde_json::{Value, json};

/// Newest CSV file's modification time in the recorded prompts: 2025-11-14 18:53:30 UTC.
pub const CSV_LATEST_UNIX: i64 = 1_763_146_410;
/// Newest JSON file's modification time in the recorded prompts: 2025-10-08 17:20:51 UTC.
pub const JSON_LATEST_UNIX: i64 = 1_759_944_051;
/// Newest Markdown file's modification time in the recorded prompts: 2025-11-14 18:54:07 UTC.
pub const MD_LATEST_UNIX: i64 = 1_763_146_447;

/// What [`generate`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorpusStats {
    /// Files written.
    pub files: u32,
    /// CSV files.
    pub csv: u32,
    /// JSON files.
    pub json: u32,
    /// Markdown files.
    pub md: u32,
    /// Bytes written.
    pub total_bytes: u64,
    /// Relative paths (`/`-separated), CSV first, then JSON, then Markdown.
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    CsvTuning,
    CsvSummary,
    CsvRuns,
    CsvNcu,
    JsonAscii,
    JsonCompile,
    JsonDiagnostics,
    JsonModel,
    JsonKernel,
    JsonSystem,
    JsonOllama,
    JsonQuant,
    Md,
}

const CSV_FILES: [(&str, Kind); 24] = [
    (
        "reports/gemma3/gemma3_1b-it-qat_baseline.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/gemma3/gemma3_1b-it-qat_param_tuning.csv",
        Kind::CsvTuning,
    ),
    (
        "reports/gemma3/gemma3_1b-it-qat_param_tuning_summary.csv",
        Kind::CsvSummary,
    ),
    ("reports/gemma3/gemma3_270m_baseline.csv", Kind::CsvRuns),
    (
        "reports/gemma3/gemma3_270m_param_tuning.csv",
        Kind::CsvTuning,
    ),
    (
        "reports/gemma3/gemma3_270m_param_tuning_summary.csv",
        Kind::CsvSummary,
    ),
    ("reports/gemma3/gemma3_baseline.csv", Kind::CsvRuns),
    ("reports/gemma3/gemma3_param_tuning.csv", Kind::CsvTuning),
    (
        "reports/gemma3/gemma3_param_tuning_summary.csv",
        Kind::CsvSummary,
    ),
    ("reports/llama3/ollama_param_tuning.csv", Kind::CsvTuning),
    (
        "reports/llama3/ollama_param_tuning_summary.csv",
        Kind::CsvSummary,
    ),
    ("reports/llama3/ollama_quant_bench.csv", Kind::CsvRuns),
    (
        "reports/ollama/20251002-151204/prompt_suite_runs.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/ollama/20251002-151446/prompt_suite_runs.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/ollama/20251002-151527/prompt_suite_runs.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/ollama/20251002-151615/prompt_suite_runs.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/ollama/20251002-151824/prompt_suite_runs.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/ollama/20251008-122701/gemma3_benchmark_runs.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/ollama/20251008-122714/llama3_q4_benchmark_runs.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/ollama/20251008-122728/llama3_q5_benchmark_runs.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/ollama/20251008-122911/gemma3_benchmark_fixed_runs.csv",
        Kind::CsvRuns,
    ),
    (
        "reports/ollama/20251008-122955/llama3_q4_benchmark_fixed_runs.csv",
        Kind::CsvRuns,
    ),
    ("reports/profiling/ncu_ollama_raw.csv", Kind::CsvNcu),
    ("reports/profiling/ncu_summary.csv", Kind::CsvNcu),
];

const JSON_FILES: [(&str, Kind); 30] = [
    ("reports/ascii_demo_20251004_143244.json", Kind::JsonAscii),
    ("reports/ascii_demo_20251004_170151.json", Kind::JsonAscii),
    ("reports/ascii_demo_20251004_175024.json", Kind::JsonAscii),
    (
        "reports/compilation/conv_bench_20251002-170837.json",
        Kind::JsonCompile,
    ),
    (
        "reports/compilation/conv_cuda_bench_20251002-172037.json",
        Kind::JsonCompile,
    ),
    (
        "reports/compilation/mlp_bench_20251002-165750.json",
        Kind::JsonCompile,
    ),
    (
        "reports/compilation/mlp_cuda_bench_20251002-171845.json",
        Kind::JsonCompile,
    ),
    (
        "reports/compilation/transformer_bench_20251002-170914.json",
        Kind::JsonCompile,
    ),
    (
        "reports/compilation/transformer_cuda_bench_20251002-172126.json",
        Kind::JsonCompile,
    ),
    (
        "reports/compilation/transformer_cuda_pytorch2508.json",
        Kind::JsonCompile,
    ),
    (
        "reports/compilation/transformer_cuda_torchtrt_20251003-033530.json",
        Kind::JsonCompile,
    ),
    (
        "reports/compilation/transformer_cuda_triton2508.json",
        Kind::JsonCompile,
    ),
    (
        "reports/diagnostics/self_healing_results_20251004_133717.json",
        Kind::JsonDiagnostics,
    ),
    (
        "reports/gemma3/gemma3_1b-it-qat_baseline.json",
        Kind::JsonModel,
    ),
    ("reports/gemma3/gemma3_270m_baseline.json", Kind::JsonModel),
    ("reports/gemma3/gemma3_baseline.json", Kind::JsonModel),
    (
        "reports/kernel_optimization/kernel_benchmarks.json",
        Kind::JsonKernel,
    ),
    ("reports/llama3/baseline_ml_metrics.json", Kind::JsonModel),
    (
        "reports/llama3/baseline_system_metrics.json",
        Kind::JsonSystem,
    ),
    (
        "reports/ollama/20251002-151204/prompt_suite_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/ollama/20251002-151446/prompt_suite_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/ollama/20251002-151527/prompt_suite_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/ollama/20251002-151615/prompt_suite_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/ollama/20251002-151824/prompt_suite_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/ollama/20251008-122701/gemma3_benchmark_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/ollama/20251008-122714/llama3_q4_benchmark_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/ollama/20251008-122728/llama3_q5_benchmark_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/ollama/20251008-122911/gemma3_benchmark_fixed_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/ollama/20251008-122955/llama3_q4_benchmark_fixed_summary.json",
        Kind::JsonOllama,
    ),
    (
        "reports/quantization/quantization_report.json",
        Kind::JsonQuant,
    ),
];

const MD_FILES: [&str; 23] = [
    "reports/compilation/compilation_benchmark_lessons_20251002.md",
    "reports/compilation/conv_bench_20251002-170837.md",
    "reports/compilation/conv_cuda_bench_20251002-172037.md",
    "reports/compilation/mlp_bench_20251002-165750.md",
    "reports/compilation/mlp_cuda_bench_20251002-171845.md",
    "reports/compilation/transformer_bench_20251002-170914.md",
    "reports/compilation/transformer_cuda_bench_20251002-172126.md",
    "reports/compilation/transformer_cuda_pytorch2508.md",
    "reports/compilation/transformer_cuda_torchtrt_20251003-033530.md",
    "reports/compilation/transformer_cuda_triton2508.md",
    "reports/compilation/transformer_cuda_triton2508_summary.md",
    "reports/compilation/triton_docker_summary.md",
    "reports/gemma3/Analysis_Summary.md",
    "reports/gemma3/BENCHMARK_COMPLETION_SUMMARY.md",
    "reports/gemma3/SUMMARY.md",
    "reports/integration/final_crimera_integration_test.md",
    "reports/integration/test_mcp_digest.md",
    "reports/mcp_integration_local4000.md",
    "reports/ollama/ollama_benchmark_summary.md",
    "reports/ollama/prompt_suite_lessons_20251002.md",
    "reports/performance_digest.md",
    "reports/quantization/quantization_report.md",
    "reports/test_datadog_digest.md",
];

const MODELS: [&str; 5] = [
    "gemma3:latest",
    "gemma3:1b-it-qat",
    "gemma3:270m",
    "llama3.1:8b-instruct-q4_0",
    "llama3.1:8b-instruct-q5_K_M",
];

/// The TR108 banter prompts (recorded in its CSVs).
const PROMPTS: [&str; 5] = [
    "banter prompt: Player failed a mission but needs encouragement.",
    "Give a battle quote for a co-op shooter win.",
    "Prompt for rare loot find celebration banter.",
    "Craft a witty remark after a close racing finish.",
    "Motivate a teammate before a final boss fight.",
];

/// The corpus's draws on the shared SplitMix64 (stable across platforms and versions).
struct Rng(SplitMix64);

impl Rng {
    /// A generator for one file: the seed mixed with FNV-1a of the path, one draw skipped.
    fn for_file(seed: u64, path: &str) -> Self {
        let mut r = Rng(SplitMix64(seed ^ fnv1a(path)));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [lo, hi), rounded to `dp` decimals.
    fn f(&mut self, lo: f64, hi: f64, dp: i32) -> f64 {
        let u = self.0.unit();
        round(lo + (hi - lo) * u, dp)
    }
    /// Uniform integer in [lo, hi].
    fn int(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn round(x: f64, dp: i32) -> f64 {
    let p = 10f64.powi(dp);
    (x * p).round() / p
}

/// `YYYYMMDD-HHMMSS` of a Unix time.
fn stamp(ts: i64) -> String {
    let f = super::ingest::format_utc(ts).unwrap_or_default();
    // "YYYY-MM-DD HH:MM:SS UTC"
    let digits: String = f.chars().filter(char::is_ascii_digit).collect();
    format!(
        "{}-{}",
        &digits[..8.min(digits.len())],
        &digits[8.min(digits.len())..]
    )
}

/// Writes the files of a manifest's `generated` corpus under `dir` (see [`generate`]); the
/// other kinds have no files to write.
pub fn generate_spec(dir: &Path, spec: &Corpus) -> io::Result<()> {
    if let &Corpus::Generated {
        csv,
        json,
        md,
        seed,
    } = spec
    {
        generate(dir, csv, json, md, seed)?;
    }
    Ok(())
}

/// Writes `csv` CSV, `json` JSON and `md` Markdown files under `dir` (`reports/...`,
/// `csv_data/...`), contents and modification times derived from `seed` only.
pub fn generate(dir: &Path, csv: u32, json: u32, md: u32, seed: u64) -> io::Result<CorpusStats> {
    let mut stats = CorpusStats::default();
    let mut extra = Rng(SplitMix64(seed ^ 0x5eed_c0de));
    // Seeded names beyond the catalogue, with increasing timestamps so they never collide.
    let mut ts: i64 = 1_759_708_800 + extra.int(0, 86_400) as i64; // 2025-10-06
    let mut next_name = |prefix: &str, ext: &str, rng: &mut Rng| {
        ts += rng.int(60, 7_200) as i64;
        let model = rng.pick(&["gemma3", "gemma3_1b-it-qat", "gemma3_270m", "llama3.1_q4"]);
        let what = rng.pick(&["sweep", "bench", "runs"]);
        match prefix {
            "" => format!("csv_data/{model}_{what}_{}.{ext}", stamp(ts)),
            p => format!("{p}_{}.{ext}", stamp(ts)),
        }
    };

    let mut plan: Vec<(String, Kind, i64)> = Vec::new();
    let mut add = |files: Vec<(String, Kind)>, latest: i64, seed: u64| {
        let n = files.len();
        for (i, (path, kind)) in files.into_iter().enumerate() {
            let mut r = Rng::for_file(seed ^ 0x6d74_696d, &path);
            // The last file of the type is the newest; the others are up to 30 days older.
            let mtime = if i + 1 == n {
                latest
            } else {
                latest - r.int(3_600, 30 * 86_400) as i64
            };
            plan.push((path, kind, mtime));
        }
    };

    let mut files = Vec::new();
    for i in 0..csv as usize {
        files.push(match CSV_FILES.get(i) {
            Some((p, k)) => (p.to_string(), *k),
            None => {
                let p = next_name("", "csv", &mut extra);
                let k = if i % 2 == 0 {
                    Kind::CsvTuning
                } else {
                    Kind::CsvRuns
                };
                (p, k)
            }
        });
    }
    add(files, CSV_LATEST_UNIX, seed);
    let mut files = Vec::new();
    for i in 0..json as usize {
        files.push(match JSON_FILES.get(i) {
            Some((p, k)) => (p.to_string(), *k),
            None => (next_name("", "json", &mut extra), Kind::JsonOllama),
        });
    }
    add(files, JSON_LATEST_UNIX, seed);
    let mut files = Vec::new();
    for i in 0..md as usize {
        files.push(match MD_FILES.get(i) {
            Some(p) => (p.to_string(), Kind::Md),
            None => (
                next_name("reports/ollama/sweep_notes", "md", &mut extra),
                Kind::Md,
            ),
        });
    }
    add(files, MD_LATEST_UNIX, seed);

    for (path, kind, mtime) in plan {
        let mut rng = Rng::for_file(seed, &path);
        let body = match kind {
            Kind::Md => markdown(&path, &mut rng),
            Kind::CsvTuning | Kind::CsvSummary | Kind::CsvRuns | Kind::CsvNcu => {
                csv_body(kind, &mut rng)
            }
            _ => {
                let v = json_body(kind, &path, &mut rng);
                let mut s = serde_json::to_string_pretty(&v).map_err(io::Error::other)?;
                s.push('\n');
                s
            }
        };
        let full = dir.join(&path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut f = fs::File::create(&full)?;
        f.write_all(body.as_bytes())?;
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64))?;
        stats.files += 1;
        match kind {
            Kind::Md => stats.md += 1,
            Kind::CsvTuning | Kind::CsvSummary | Kind::CsvRuns | Kind::CsvNcu => stats.csv += 1,
            _ => stats.json += 1,
        }
        stats.total_bytes += body.len() as u64;
        stats.paths.push(path);
    }
    Ok(stats)
}

fn csv_body(kind: Kind, r: &mut Rng) -> String {
    let mut s = String::new();
    match kind {
        Kind::CsvTuning => {
            // TR108 sweep columns; ttft_s = load_s + prompt_eval_s, tokens_s = eval_count / eval_s.
            s.push_str("model,num_gpu,num_ctx,temperature,run,ttft_s,tokens_s,load_s,prompt_eval_s,eval_s,eval_count,prompt_eval_count,response_chars\n");
            let model = r.pick(&MODELS);
            for i in 0..r.int(6, 18) {
                let num_gpu = [60, 80, 120][(i % 3) as usize];
                let num_ctx = [256, 512, 1024][(i / 3 % 3) as usize];
                let temp = [0.2, 0.4, 0.6, 0.8][(i % 4) as usize];
                let load = r.f(0.05, if i == 0 { 5.6 } else { 0.4 }, 4);
                let pe = r.f(0.02, 0.3, 4);
                let eval_count = r.int(60, 900);
                let eval = r.f(0.6, 12.0, 4);
                s.push_str(&format!(
                    "{model},{num_gpu},{num_ctx},{temp},{run},{:.4},{:.2},{load:.4},{pe:.4},{eval:.4},{eval_count},{},{}\n",
                    load + pe,
                    eval_count as f64 / eval,
                    r.int(20, 80),
                    eval_count * 4 + r.int(0, 200),
                    run = i % 5 + 1,
                ));
            }
        }
        Kind::CsvSummary => {
            s.push_str("num_gpu,num_ctx,temperature,runs,mean_tokens_s,stdev_tokens_s,mean_ttft_s,p95_latency_ms\n");
            for i in 0..r.int(4, 12) {
                s.push_str(&format!(
                    "{},{},{},{},{:.2},{:.2},{:.3},{:.1}\n",
                    [60, 80, 120][(i % 3) as usize],
                    [256, 512, 1024][(i / 3 % 3) as usize],
                    [0.2, 0.4, 0.6, 0.8][(i % 4) as usize],
                    r.int(3, 5),
                    r.f(40.0, 140.0, 2),
                    r.f(0.2, 6.0, 2),
                    r.f(0.08, 1.6, 3),
                    r.f(900.0, 16_000.0, 1),
                ));
            }
        }
        Kind::CsvRuns => {
            s.push_str("model,prompt_id,prompt,tokens_per_second,ttft_ms,latency_ms,eval_count,prompt_eval_count,response_chars\n");
            let model = r.pick(&MODELS);
            for i in 0..r.int(5, 15) {
                let id = (i % 5) as usize;
                let tps = r.f(35.0, 150.0, 2);
                let n = r.int(40, 700);
                let ttft = r.f(60.0, 1_800.0, 1);
                s.push_str(&format!(
                    "{model},{},\"{}\",{tps:.2},{ttft:.1},{:.1},{n},{},{}\n",
                    id + 1,
                    PROMPTS[id],
                    ttft + n as f64 / tps * 1000.0,
                    r.int(15, 60),
                    n * 4 + r.int(0, 150),
                ));
            }
        }
        _ => {
            s.push_str(
                "kernel,invocations,duration_us,sm_throughput_pct,dram_throughput_pct,registers\n",
            );
            let names = [
                "flash_attn_fwd",
                "gemm_f16_128x64",
                "rms_norm",
                "rope_f16",
                "softmax_f32",
                "dequantize_q4_0",
            ];
            for i in 0..r.int(4, 10) {
                s.push_str(&format!(
                    "{},{},{:.2},{:.1}%,{:.1}%,{}\n",
                    names[(i % 6) as usize],
                    r.int(1, 4_000),
                    r.f(1.5, 950.0, 2),
                    r.f(5.0, 95.0, 1),
                    r.f(5.0, 95.0, 1),
                    [32, 64, 96, 128][(i % 4) as usize],
                ));
            }
        }
    }
    s
}

fn iso(ts: i64) -> String {
    super::ingest::format_utc(ts)
        .map(|s| s.trim_end_matches(" UTC").replacen(' ', "T", 1))
        .unwrap_or_default()
}

fn json_body(kind: Kind, path: &str, r: &mut Rng) -> Value {
    let when = iso(1_759_363_200 + r.int(0, 40 * 86_400) as i64); // from 2025-10-02
    let stem = Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("bench")
        .to_string();
    match kind {
        Kind::JsonAscii => json!({
            "demo": "ascii",
            "timestamp": when,
            "frames": r.int(60, 600),
            "render_latency_ms": (0..5).map(|_| r.f(0.8, 12.0, 3)).collect::<Vec<_>>(),
            "fps": r.f(20.0, 240.0, 1),
        }),
        Kind::JsonCompile => {
            fn side(r: &mut Rng, speedup: f64) -> Value {
                let mean = r.f(0.4, 40.0, 3);
                json!({
                    "latency_ms": {"mean": round(mean / speedup, 3), "p50": round(mean * 0.97 / speedup, 3), "p95": round(mean * 1.18 / speedup, 3)},
                    "throughput_samples_s": round(1000.0 * speedup / mean, 2),
                })
            }
            let eager = side(r, 1.0);
            let speedup = r.f(0.8, 3.5, 3);
            let compiled = side(r, speedup);
            json!({
                "benchmark": stem,
                "timestamp": when,
                "device": if path.contains("cuda") { "cuda" } else { "cpu" },
                "config": {"batch_size": ([1, 8, 32, 64][r.int(0, 3) as usize]), "iterations": r.int(50, 500), "warmup": 10},
                "results": {"eager": eager, "compiled": compiled},
                "speedup": speedup,
            })
        }
        Kind::JsonDiagnostics => json!({
            "timestamp": when,
            "checks": [
                {"name": "ollama_health", "status": "ok", "latency_ms": r.f(1.0, 40.0, 2)},
                {"name": "gpu_memory", "status": "ok", "free_mb": r.int(1_000, 12_000)},
                {"name": "model_reload", "status": "recovered", "latency_ms": r.f(800.0, 5_600.0, 1)},
            ],
            "recovered": true,
        }),
        Kind::JsonModel => {
            let tps = r.f(40.0, 150.0, 3);
            let ttft = r.f(80.0, 1_500.0, 2);
            json!({
                "model": r.pick(&MODELS),
                "timestamp": when,
                "runs": r.int(3, 10),
                "metrics": {
                    "tokens_per_second": {"mean": tps, "p05": round(tps * 0.9, 3), "p95": round(tps * 1.06, 3)},
                    "ttft_ms": {"mean": ttft, "p95": round(ttft * 1.4, 2)},
                    "total_latency_ms": r.f(1_000.0, 20_000.0, 1),
                },
                "gpu": {"utilization_pct": r.f(40.0, 99.0, 1), "memory_used_mb": r.int(1_500, 11_000)},
            })
        }
        Kind::JsonKernel => json!({
            "timestamp": when,
            "kernels": (0..r.int(3, 6)).map(|i| json!({
                "name": (["attention", "gemm", "layernorm", "softmax", "rope", "matmul_q4"][i as usize]),
                "duration_us": r.f(2.0, 900.0, 2),
                "throughput_gbps": r.f(50.0, 900.0, 1),
            })).collect::<Vec<_>>(),
        }),
        Kind::JsonSystem => json!({
            "timestamp": when,
            "cpu_percent": r.f(5.0, 80.0, 1),
            "gpu_memory_mb": r.int(1_500, 11_000),
            "gpu_temperature_c": r.int(45, 83),
            "sampling": {"interval_ms": 100, "samples": r.int(100, 5_000)},
        }),
        Kind::JsonQuant => json!({
            "timestamp": when,
            "variants": (["q4_0", "q5_K_M", "q8_0", "fp16"].iter().map(|q| json!({
                "quant": q,
                "size_gb": r.f(0.5, 16.0, 2),
                "tokens_per_second": r.f(30.0, 160.0, 2),
                "perplexity": r.f(5.0, 9.0, 3),
            })).collect::<Vec<_>>()),
        }),
        _ => {
            let per_prompt: Vec<Value> = (1..=5)
                .map(|id| {
                    json!({"prompt_id": id, "tokens_s": r.f(35.0, 150.0, 2), "ttft_s": r.f(0.05, 1.8, 3), "eval_count": r.int(40, 700)})
                })
                .collect();
            json!({
                "model": r.pick(&MODELS),
                "timestamp": when,
                "options": {"num_gpu": ([60, 80, 120][r.int(0, 2) as usize]), "num_ctx": ([256, 512, 1024][r.int(0, 2) as usize]), "temperature": ([0.2, 0.4, 0.6, 0.8][r.int(0, 3) as usize])},
                "summary": {
                    "tokens_s": {"mean": r.f(40.0, 140.0, 3), "stdev": r.f(0.3, 9.0, 3)},
                    "ttft_s": {"mean": r.f(0.08, 1.2, 4), "p95": r.f(0.2, 4.0, 4)},
                    "latency_ms": {"p50": r.f(900.0, 9_000.0, 1), "p95": r.f(2_000.0, 16_000.0, 1)},
                },
                "per_prompt": per_prompt,
            })
        }
    }
}

fn markdown(path: &str, r: &mut Rng) -> String {
    let stem = Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("report");
    let title: String = stem
        .split(['_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut s = format!(
        "# {title}\n\n**Date:** {}\n**Model:** {}\n\n## Summary\n\n",
        &iso(1_759_363_200 + r.int(0, 40 * 86_400) as i64)[..10],
        r.pick(&MODELS)
    );
    let tps = r.f(40.0, 140.0, 2);
    s.push_str(&format!(
        "- Throughput: {tps} tok/s\n- TTFT: {} ms\n- Latency (p95): {} ms\n- Load duration: {} s\n\n",
        r.f(60.0, 1_500.0, 1),
        r.f(900.0, 16_000.0, 1),
        r.f(0.1, 5.6, 2)
    ));
    s.push_str("## Results\n\n| num_gpu | num_ctx | temperature | tok/s | ttft_ms |\n|---|---|---|---|---|\n");
    for i in 0..r.int(3, 8) {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            [60, 80, 120][(i % 3) as usize],
            [256, 512, 1024][(i / 3 % 3) as usize],
            [0.2, 0.4, 0.6, 0.8][(i % 4) as usize],
            r.f(40.0, 140.0, 2),
            r.f(60.0, 1_500.0, 1)
        ));
    }
    s.push_str("\n## Notes\n\n");
    for _ in 0..r.int(2, 4) {
        s.push_str(r.pick(&[
            "- The first request after an option change reloads the model (3-5 s load).\n",
            "- Full GPU offload gave the highest throughput.\n",
            "- Larger contexts raised TTFT without improving throughput.\n",
            "- Lower temperature shortened responses.\n",
            "- CUDA graphs reduced kernel launch overhead.\n",
        ]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(stamp(CSV_LATEST_UNIX), "20251114-185330");
        assert_eq!(iso(JSON_LATEST_UNIX), "2025-10-08T17:20:51");
    }

    #[test]
    fn small_compositions() -> io::Result<()> {
        let d = tempfile::tempdir()?;
        let s = generate(d.path(), 1, 0, 2, 7)?;
        assert_eq!((s.files, s.csv, s.json, s.md), (3, 1, 0, 2));
        assert_eq!(s.paths[0], "reports/gemma3/gemma3_1b-it-qat_baseline.csv");
        let big = tempfile::tempdir()?;
        let s = generate(big.path(), 30, 31, 24, 7)?;
        assert_eq!(s.files, 85);
        assert!(
            s.paths
                .iter()
                .filter(|p| p.starts_with("csv_data/"))
                .count()
                == 7
        );
        assert!(
            s.paths
                .iter()
                .any(|p| p.starts_with("reports/ollama/sweep_notes_"))
        );
        Ok(())
    }
}
