//! Reading a campaign's Parquet parts into typed rows, in parallel (rayon) across files.

use std::path::{Path, PathBuf};

use arrow::array::{
    Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt16Array, UInt32Array, UInt64Array,
};
use rayon::prelude::*;

use super::AnalysisError;
use crate::table;

/// One row of `cells`.
#[derive(Debug, Clone, Default)]
pub struct CellRow {
    /// Report id.
    pub report: String,
    /// Cell id.
    pub cell_id: String,
    /// Node kind (`single`, `concurrent`, `isolated`, `warmup`).
    pub kind: String,
    /// Configuration id.
    pub config: Option<String>,
    /// Repetition.
    pub repetition: u32,
    /// Scenario id.
    pub scenario: Option<String>,
    /// Model tag.
    pub model: Option<String>,
    /// `ok` or `failed`.
    pub status: String,
    /// Start, ms since the epoch.
    pub started_at_ms: i64,
    /// Wall, ms.
    pub wall_ms: f64,
    /// Published speedup.
    pub published_speedup: Option<f64>,
    /// Published efficiency, %.
    pub published_efficiency_pct: Option<f64>,
    /// Contention flag.
    pub contention: Option<bool>,
    /// Σ isolated durations, ms.
    pub isolated_sum_ms: Option<f64>,
    /// True speedup.
    pub true_speedup: Option<f64>,
    /// True efficiency, %.
    pub true_efficiency_pct: Option<f64>,
    /// Aggregate throughput, tok/s.
    pub aggregate_tok_s: Option<f64>,
    /// Throughput delta B − A.
    pub throughput_delta_tok_s: Option<f64>,
    /// TTFT delta A − B.
    pub ttft_delta_ms: Option<f64>,
    /// Output tokens per joule.
    pub output_tokens_per_j: Option<f64>,
    /// Mean GPU utilisation, %.
    pub gpu_util_mean_pct: Option<f64>,
    /// Mean power, W.
    pub power_mean_w: Option<f64>,
    /// Energy, J.
    pub energy_j: Option<f64>,
}

impl CellRow {
    /// A measured run: a single or concurrent cell (not a warm-up or isolated baseline).
    pub fn is_run(&self) -> bool {
        self.kind == "single" || self.kind == "concurrent"
    }

    /// Status ok.
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }
}

/// One row of `agents`.
#[derive(Debug, Clone, Default)]
pub struct AgentRow {
    /// Cell id.
    pub cell_id: String,
    /// Agent id.
    pub agent: String,
    /// Role.
    pub role: String,
    /// Endpoint id.
    pub endpoint: String,
    /// Ran alone.
    pub isolated: bool,
    /// Options (null = server default).
    pub num_gpu: Option<u64>,
    /// num_ctx.
    pub num_ctx: Option<u64>,
    /// temperature.
    pub temperature: Option<f64>,
    /// Duration, ms.
    pub duration_ms: f64,
    /// Files ingested.
    pub files_ingested: Option<u64>,
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub failed_requests: u64,
    /// Mean throughput over its requests.
    pub throughput_mean_tok_s: Option<f64>,
    /// Mean TTFT over its requests.
    pub ttft_mean_ms: Option<f64>,
    /// Σ output tokens.
    pub output_tokens: u64,
    /// Σ load, ms.
    pub load_sum_ms: f64,
}

/// One row of `requests`.
#[derive(Debug, Clone, Default)]
pub struct RequestRow {
    /// Cell id.
    pub cell_id: String,
    /// Agent id.
    pub agent: String,
    /// Stage.
    pub stage: String,
    /// Warm-up (excluded).
    pub warmup: bool,
    /// TTFT, ms.
    pub ttft_ms: Option<f64>,
    /// End to end, ms.
    pub e2e_ms: f64,
    /// Output tokens.
    pub output_tokens: Option<u64>,
    /// Load, ms.
    pub load_ms: Option<f64>,
    /// Server throughput.
    pub throughput_tok_s: Option<f64>,
    /// Error kind when failed.
    pub error_kind: Option<String>,
}

/// One row of `telemetry`.
#[derive(Debug, Clone, Default)]
pub struct TelemetryRow {
    /// Cell id.
    pub cell_id: String,
    /// GPU index.
    pub gpu: u32,
    /// ms since the cell's start.
    pub t_ms: f64,
    /// Utilisation, %.
    pub util_pct: Option<f64>,
    /// Power, W.
    pub power_w: Option<f64>,
}

/// One row of `provenance`.
#[derive(Debug, Clone, Default)]
pub struct ProvenanceRow {
    /// Endpoint id.
    pub endpoint: String,
    /// URL.
    pub url: String,
    /// Host.
    pub host: Option<String>,
    /// OS.
    pub os: Option<String>,
    /// GPU name.
    pub gpu_name: Option<String>,
    /// Driver.
    pub driver: Option<String>,
    /// Server kind.
    pub server_kind: String,
    /// Server version.
    pub server_version: Option<String>,
    /// Model tag.
    pub model_tag: Option<String>,
    /// Model digest.
    pub model_digest: Option<String>,
    /// chimera version.
    pub chimera_version: String,
}

/// Every row of one campaign.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// `cells`.
    pub cells: Vec<CellRow>,
    /// `agents`.
    pub agents: Vec<AgentRow>,
    /// `requests`.
    pub requests: Vec<RequestRow>,
    /// `telemetry`.
    pub telemetry: Vec<TelemetryRow>,
    /// `provenance`.
    pub provenance: Vec<ProvenanceRow>,
    /// Parquet files read.
    pub files: usize,
}

/// Column accessors over one batch; a missing or mistyped column is an error naming the file.
struct Cols<'a> {
    b: &'a RecordBatch,
    path: &'a Path,
}

impl<'a> Cols<'a> {
    fn column(&self, name: &str) -> Result<&'a arrow::array::ArrayRef, AnalysisError> {
        self.b
            .column_by_name(name)
            .ok_or_else(|| AnalysisError::Column {
                path: self.path.to_path_buf(),
                column: name.to_owned(),
                problem: "is missing".into(),
            })
    }
    fn col<T: 'static>(&self, name: &str) -> Result<&'a T, AnalysisError> {
        let c = self.column(name)?;
        c.as_any()
            .downcast_ref::<T>()
            .ok_or_else(|| AnalysisError::Column {
                path: self.path.to_path_buf(),
                column: name.to_owned(),
                problem: format!("has type {}", c.data_type()),
            })
    }
    fn str(&self, name: &str) -> Result<Vec<Option<String>>, AnalysisError> {
        let a = self.col::<StringArray>(name)?;
        Ok((0..a.len())
            .map(|i| (!a.is_null(i)).then(|| a.value(i).to_owned()))
            .collect())
    }
    fn f64(&self, name: &str) -> Result<Vec<Option<f64>>, AnalysisError> {
        let a = self.col::<Float64Array>(name)?;
        // NaN means "not recorded" (imported aggregates without per-call values).
        Ok((0..a.len())
            .map(|i| (!a.is_null(i) && !a.value(i).is_nan()).then(|| a.value(i)))
            .collect())
    }
    fn bool(&self, name: &str) -> Result<Vec<Option<bool>>, AnalysisError> {
        let a = self.col::<BooleanArray>(name)?;
        Ok((0..a.len())
            .map(|i| (!a.is_null(i)).then(|| a.value(i)))
            .collect())
    }
    fn ts(&self, name: &str) -> Result<Vec<Option<i64>>, AnalysisError> {
        let a = self.col::<TimestampMillisecondArray>(name)?;
        Ok((0..a.len())
            .map(|i| (!a.is_null(i)).then(|| a.value(i)))
            .collect())
    }
    /// Any integer column as u64 (negative values are dropped as null).
    fn int(&self, name: &str) -> Result<Vec<Option<u64>>, AnalysisError> {
        let c = self.column(name)?;
        macro_rules! take {
            ($t:ty) => {
                if let Some(a) = c.as_any().downcast_ref::<$t>() {
                    return Ok((0..a.len())
                        .map(|i| {
                            (!a.is_null(i))
                                .then(|| u64::try_from(a.value(i)).ok())
                                .flatten()
                        })
                        .collect());
                }
            };
        }
        take!(UInt32Array);
        take!(UInt64Array);
        take!(UInt16Array);
        take!(Int64Array);
        Err(AnalysisError::Column {
            path: self.path.to_path_buf(),
            column: name.to_owned(),
            problem: format!("has type {}", c.data_type()),
        })
    }
}

fn s(v: Option<String>) -> String {
    v.unwrap_or_default()
}

fn read(path: &Path) -> Result<Vec<RecordBatch>, AnalysisError> {
    table::read_parquet(path).map_err(|source| AnalysisError::Table {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

fn cells_of(path: &Path) -> Result<Vec<CellRow>, AnalysisError> {
    let mut out = Vec::new();
    for b in read(path)? {
        let c = Cols { b: &b, path };
        let (report, cell_id, kind, config) = (
            c.str("report")?,
            c.str("cell_id")?,
            c.str("kind")?,
            c.str("config_id")?,
        );
        let (rep, scenario, model, status) = (
            c.int("repetition")?,
            c.str("scenario")?,
            c.str("model")?,
            c.str("status")?,
        );
        let (started, wall, ps, pe) = (
            c.ts("started_at")?,
            c.f64("wall_ms")?,
            c.f64("published_speedup")?,
            c.f64("published_efficiency_pct")?,
        );
        let (cont, iso, ts_, te) = (
            c.bool("contention")?,
            c.f64("isolated_sum_ms")?,
            c.f64("true_speedup")?,
            c.f64("true_efficiency_pct")?,
        );
        let (agg, td, tt, tpj) = (
            c.f64("aggregate_tok_s")?,
            c.f64("throughput_delta_tok_s")?,
            c.f64("ttft_delta_ms")?,
            c.f64("output_tokens_per_j")?,
        );
        let (util, power, energy) = (
            c.f64("gpu_util_mean_pct")?,
            c.f64("power_mean_w")?,
            c.f64("energy_j")?,
        );
        for i in 0..b.num_rows() {
            out.push(CellRow {
                report: s(report[i].clone()),
                cell_id: s(cell_id[i].clone()),
                kind: s(kind[i].clone()),
                config: config[i].clone(),
                repetition: rep[i].unwrap_or(0) as u32,
                scenario: scenario[i].clone(),
                model: model[i].clone(),
                status: s(status[i].clone()),
                started_at_ms: started[i].unwrap_or(0),
                wall_ms: wall[i].unwrap_or(f64::NAN),
                published_speedup: ps[i],
                published_efficiency_pct: pe[i],
                contention: cont[i],
                isolated_sum_ms: iso[i],
                true_speedup: ts_[i],
                true_efficiency_pct: te[i],
                aggregate_tok_s: agg[i],
                throughput_delta_tok_s: td[i],
                ttft_delta_ms: tt[i],
                output_tokens_per_j: tpj[i],
                gpu_util_mean_pct: util[i],
                power_mean_w: power[i],
                energy_j: energy[i],
            });
        }
    }
    Ok(out)
}

fn agents_of(path: &Path) -> Result<Vec<AgentRow>, AnalysisError> {
    let mut out = Vec::new();
    for b in read(path)? {
        let c = Cols { b: &b, path };
        let (cell, agent, role, endpoint) = (
            c.str("cell_id")?,
            c.str("agent")?,
            c.str("role")?,
            c.str("endpoint")?,
        );
        let (iso, gpu, ctx, temp) = (
            c.bool("isolated")?,
            c.int("num_gpu")?,
            c.int("num_ctx")?,
            c.f64("temperature")?,
        );
        let (dur, files, reqs, failed) = (
            c.f64("duration_ms")?,
            c.int("files_ingested")?,
            c.int("requests")?,
            c.int("failed_requests")?,
        );
        let (tps, ttft, tokens, load) = (
            c.f64("throughput_mean_tok_s")?,
            c.f64("ttft_mean_ms")?,
            c.int("output_tokens")?,
            c.f64("load_sum_ms")?,
        );
        for i in 0..b.num_rows() {
            out.push(AgentRow {
                cell_id: s(cell[i].clone()),
                agent: s(agent[i].clone()),
                role: s(role[i].clone()),
                endpoint: s(endpoint[i].clone()),
                isolated: iso[i].unwrap_or(false),
                num_gpu: gpu[i],
                num_ctx: ctx[i],
                temperature: temp[i],
                duration_ms: dur[i].unwrap_or(f64::NAN),
                files_ingested: files[i],
                requests: reqs[i].unwrap_or(0),
                failed_requests: failed[i].unwrap_or(0),
                throughput_mean_tok_s: tps[i],
                ttft_mean_ms: ttft[i],
                output_tokens: tokens[i].unwrap_or(0),
                load_sum_ms: load[i].unwrap_or(0.0),
            });
        }
    }
    Ok(out)
}

fn requests_of(path: &Path) -> Result<Vec<RequestRow>, AnalysisError> {
    let mut out = Vec::new();
    for b in read(path)? {
        let c = Cols { b: &b, path };
        let (cell, agent, stage, warm) = (
            c.str("cell_id")?,
            c.str("agent")?,
            c.str("stage")?,
            c.bool("warmup")?,
        );
        let (ttft, e2e, tokens, load) = (
            c.f64("ttft_ms")?,
            c.f64("e2e_ms")?,
            c.int("output_tokens")?,
            c.f64("load_ms")?,
        );
        let (tps, err) = (c.f64("throughput_tok_s")?, c.str("error_kind")?);
        for i in 0..b.num_rows() {
            out.push(RequestRow {
                cell_id: s(cell[i].clone()),
                agent: s(agent[i].clone()),
                stage: s(stage[i].clone()),
                warmup: warm[i].unwrap_or(false),
                ttft_ms: ttft[i],
                e2e_ms: e2e[i].unwrap_or(f64::NAN),
                output_tokens: tokens[i],
                load_ms: load[i],
                throughput_tok_s: tps[i],
                error_kind: err[i].clone(),
            });
        }
    }
    Ok(out)
}

fn telemetry_of(path: &Path) -> Result<Vec<TelemetryRow>, AnalysisError> {
    let mut out = Vec::new();
    for b in read(path)? {
        let c = Cols { b: &b, path };
        let (cell, gpu, t, util, power) = (
            c.str("cell_id")?,
            c.int("gpu")?,
            c.f64("t_ms")?,
            c.f64("util_pct")?,
            c.f64("power_w")?,
        );
        for i in 0..b.num_rows() {
            out.push(TelemetryRow {
                cell_id: s(cell[i].clone()),
                gpu: gpu[i].unwrap_or(0) as u32,
                t_ms: t[i].unwrap_or(f64::NAN),
                util_pct: util[i],
                power_w: power[i],
            });
        }
    }
    Ok(out)
}

fn provenance_of(path: &Path) -> Result<Vec<ProvenanceRow>, AnalysisError> {
    let mut out = Vec::new();
    for b in read(path)? {
        let c = Cols { b: &b, path };
        let (endpoint, url, host, os) = (
            c.str("endpoint")?,
            c.str("url")?,
            c.str("host")?,
            c.str("os")?,
        );
        let (gpu, driver, kind, version) = (
            c.str("gpu_name")?,
            c.str("driver")?,
            c.str("server_kind")?,
            c.str("server_version")?,
        );
        let (tag, digest, chimera) = (
            c.str("model_tag")?,
            c.str("model_digest")?,
            c.str("chimera_version")?,
        );
        for i in 0..b.num_rows() {
            out.push(ProvenanceRow {
                endpoint: s(endpoint[i].clone()),
                url: s(url[i].clone()),
                host: host[i].clone(),
                os: os[i].clone(),
                gpu_name: gpu[i].clone(),
                driver: driver[i].clone(),
                server_kind: s(kind[i].clone()),
                server_version: version[i].clone(),
                model_tag: tag[i].clone(),
                model_digest: digest[i].clone(),
                chimera_version: s(chimera[i].clone()),
            });
        }
    }
    Ok(out)
}

/// What one cell directory holds.
#[derive(Default)]
struct Part {
    cells: Vec<CellRow>,
    agents: Vec<AgentRow>,
    requests: Vec<RequestRow>,
    telemetry: Vec<TelemetryRow>,
    files: usize,
}

fn read_cell_dir(dir: &Path) -> Result<Part, AnalysisError> {
    let mut p = Part::default();
    let f = |name: &str| dir.join(name);
    p.cells = cells_of(&f("cells.parquet"))?;
    p.agents = agents_of(&f("agents.parquet"))?;
    p.requests = requests_of(&f("requests.parquet"))?;
    p.files = 3;
    let tel = f(table::TELEMETRY_PART_FILE);
    if tel.exists() {
        p.telemetry = telemetry_of(&tel)?;
        p.files += 1;
    }
    Ok(p)
}

/// Reads every committed cell of a campaign (`cell_dirs`: the committed cell directories)
/// and its `provenance.parquet`, in parallel across cells.
pub fn load(campaign_dir: &Path, cell_dirs: &[PathBuf]) -> Result<Dataset, AnalysisError> {
    let parts: Vec<Part> = cell_dirs
        .par_iter()
        .map(|d| read_cell_dir(d))
        .collect::<Result<_, _>>()?;
    let mut ds = Dataset::default();
    for p in parts {
        ds.cells.extend(p.cells);
        ds.agents.extend(p.agents);
        ds.requests.extend(p.requests);
        ds.telemetry.extend(p.telemetry);
        ds.files += p.files;
    }
    let prov = campaign_dir.join("provenance.parquet");
    if prov.exists() {
        ds.provenance = provenance_of(&prov)?;
        ds.files += 1;
    }
    // Deterministic order whatever the parallel read order was.
    ds.cells
        .sort_by(|a, b| (a.started_at_ms, &a.cell_id).cmp(&(b.started_at_ms, &b.cell_id)));
    Ok(ds)
}
