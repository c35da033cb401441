//! Stage 3 (first cut): execute a plan's cells against the servers, in memory.
//!
//! Cells run one at a time in the plan's schedule order (the durable store, resume, cache and
//! the resource-aware parallel scheduler come with the campaign stage). Within a concurrent
//! cell every agent runs on its own tokio task, truly at once, and the wall clock is taken
//! around the join. Every finished cell becomes a [`CellRecord`]: its agents, their requests,
//! and the published and honest metrics.

pub mod campaign;
pub mod managed;
pub mod status;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::{Client, ErrorKind, LlmRequest, RequestError, RequestRecord};
use crate::manifest::{Corpus, EndpointKind, Options, Role, Task};
use crate::metrics::{self, AgentAggregate};
use crate::plan::{NodeKind, Plan, PlanNode};
use crate::workload::{self, Stage};
use petgraph::graph::NodeIndex;

/// Errors that stop a run before or between cells.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The corpus could not be generated or read.
    #[error("cannot prepare the corpus in `{path}`: {source}")]
    Corpus {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An endpoint cannot be used.
    #[error("endpoint `{endpoint}` ({url}): {message}")]
    Endpoint {
        /// Endpoint id.
        endpoint: String,
        /// Its URL.
        url: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Writing records failed.
    #[error("cannot write cell records: {0}")]
    Output(#[source] std::io::Error),
}

/// One request as recorded in a cell.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRow {
    /// Workflow stage.
    pub stage: Stage,
    /// Index of the request within the agent run.
    pub index: u32,
    /// True for warm-up requests (never averaged in).
    pub warmup: bool,
    /// Server throughput, eval_count / eval_duration.
    pub throughput_tok_s: Option<f64>,
    /// Client throughput, tokens / (e2e − TTFT).
    pub client_tok_s: Option<f64>,
    /// p50 of the inter-chunk gaps, ms.
    pub itl_p50_ms: Option<f64>,
    /// p99 of the inter-chunk gaps, ms.
    pub itl_p99_ms: Option<f64>,
    /// What the backend measured.
    #[serde(flatten)]
    pub record: RequestRecord,
}

/// One agent's run within a cell.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRun {
    /// Agent id.
    pub agent: String,
    /// Role.
    pub role: Role,
    /// Endpoint id.
    pub endpoint: String,
    /// True when the agent ran alone (isolated baseline or single cell).
    pub isolated: bool,
    /// Options sent.
    pub options: Options,
    /// Agent duration (ingest + calls), ms, as the harnesses measured it.
    pub duration_ms: f64,
    /// Files the ingest step found (agent workflows).
    pub files_ingested: Option<u32>,
    /// Server version (`/api/version`) of the agent's endpoint, when it answered.
    pub server_version: Option<String>,
    /// Digest of the model on that endpoint (`/api/tags`), when listed.
    pub model_digest: Option<String>,
    /// Aggregate over its requests.
    pub aggregate: AgentAggregate,
    /// Its requests.
    pub requests: Vec<RequestRow>,
}

/// One finished cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellRecord {
    /// Cell id.
    pub cell_id: String,
    /// Node kind.
    pub kind: &'static str,
    /// Report id.
    pub report: String,
    /// Configuration id.
    pub config: Option<String>,
    /// Scenario id.
    pub scenario: Option<String>,
    /// Repetition (from 1).
    pub repetition: u32,
    /// Model tag.
    pub model: Option<String>,
    /// When the cell started, ms since the Unix epoch (UTC).
    pub started_at_unix_ms: f64,
    /// Attempt number (1 = first try).
    pub attempt: u32,
    /// `ok` or `failed`.
    pub status: &'static str,
    /// First error of the cell.
    pub error: Option<String>,
    /// Kind of the first error.
    pub error_kind: Option<ErrorKind>,
    /// GPU telemetry aggregates over the cell (None without telemetry).
    pub telemetry: Option<crate::telemetry::TelemetryAggregate>,
    /// The GPU samples taken while the cell ran (the `telemetry` table).
    pub gpu_samples: Vec<crate::telemetry::GpuSample>,
    /// Wall clock of the cell (concurrent: around the join), ms.
    pub wall_ms: f64,
    /// Published speedup: Σ agent durations during the concurrent run / wall.
    pub published_speedup: Option<f64>,
    /// Published efficiency, %.
    pub published_efficiency_pct: Option<f64>,
    /// Published contention flag (speedup < 1.5).
    pub contention: Option<bool>,
    /// Σ durations of the agents run alone (isolated cells of this configuration and repetition).
    pub isolated_sum_ms: Option<f64>,
    /// True speedup: isolated sum / concurrent wall.
    pub true_speedup: Option<f64>,
    /// True efficiency, %.
    pub true_efficiency_pct: Option<f64>,
    /// Σ output tokens / wall, tok/s.
    pub aggregate_tok_s: Option<f64>,
    /// Aggregate throughput of the agents run alone: Σ tokens / Σ durations, tok/s.
    pub isolated_aggregate_tok_s: Option<f64>,
    /// Throughput delta B − A (Rust sign convention).
    pub throughput_delta_tok_s: Option<f64>,
    /// TTFT delta A − B (Rust sign convention).
    pub ttft_delta_ms: Option<f64>,
    /// The agents.
    pub agents: Vec<AgentRun>,
}

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where generated corpora are written.
    pub work_dir: PathBuf,
    /// Largest response accepted per request, bytes.
    pub max_response_bytes: usize,
    /// Contention threshold (published rule: 1.5).
    pub contention_threshold: f64,
}

impl RunOptions {
    /// Defaults under `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        Self {
            work_dir: work_dir.into(),
            max_response_bytes: 16 * 1024 * 1024,
            contention_threshold: metrics::CONTENTION_THRESHOLD,
        }
    }
}

/// What an agent needs to run.
#[derive(Clone)]
struct AgentJob {
    client: Arc<Client>,
    endpoint: String,
    agent: String,
    role: Role,
    model: String,
    task: Task,
    api: crate::manifest::Api,
    stream: bool,
    keep_alive: Option<String>,
    options: Options,
    timeout: Duration,
    max_bytes: usize,
    corpus_root: Option<PathBuf>,
}

pub use crate::util::clock::now_unix_ms;

fn failed(kind: ErrorKind, message: String) -> RequestRecord {
    RequestRecord {
        error: Some(RequestError {
            kind,
            status: None,
            message,
        }),
        ..RequestRecord::default()
    }
}

fn row(stage: Stage, index: u32, warmup: bool, record: RequestRecord) -> RequestRow {
    RequestRow {
        stage,
        index,
        warmup,
        throughput_tok_s: metrics::throughput_tok_s(record.output_tokens, record.eval_ms),
        client_tok_s: metrics::client_tok_s(record.output_tokens, record.e2e_ms, record.ttft_ms),
        itl_p50_ms: metrics::percentile(&record.itl_ms, 50.0),
        itl_p99_ms: metrics::percentile(&record.itl_ms, 99.0),
        record,
    }
}

impl AgentJob {
    fn request(&self, prompt: String) -> LlmRequest {
        LlmRequest {
            api: self.api,
            model: self.model.clone(),
            prompt,
            stream: self.stream,
            options: self.options.clone(),
            keep_alive: self.keep_alive.clone(),
            timeout: self.timeout,
            max_response_bytes: self.max_bytes,
        }
    }

    /// Runs the agent's workload once; the duration covers ingest and every call.
    async fn run(self, isolated: bool) -> AgentRun {
        let t0 = Instant::now();
        let mut rows = Vec::new();
        let mut files = None;
        match &self.task {
            Task::SingleInference { prompts } => {
                for (i, p) in prompts.iter().enumerate() {
                    let rec = self.client.send(&self.request(p.clone())).await;
                    rows.push(row(Stage::Single, i as u32, false, rec));
                }
            }
            Task::Persona { .. } => {
                let rec = match workload::persona_prompt(&self.task, self.role) {
                    Some(p) => self.client.send(&self.request(p)).await,
                    None => failed(
                        ErrorKind::BadRequest,
                        format!("no persona prompt for role {:?}", self.role),
                    ),
                };
                rows.push(row(Stage::Persona, 0, false, rec));
            }
            Task::AgentWorkflow { .. } => {
                let root = self.corpus_root.clone();
                let ingest = tokio::task::spawn_blocking(move || match root {
                    Some(r) => workload::ingest::ingest(&r),
                    None => workload::ingest::IngestResult::empty(),
                })
                .await;
                let ingest = match ingest {
                    Ok(i) => i,
                    Err(e) => {
                        rows.push(row(
                            Stage::Analysis,
                            0,
                            false,
                            failed(ErrorKind::BadRequest, format!("ingest task failed: {e}")),
                        ));
                        return self.finish(isolated, t0, rows, files);
                    }
                };
                files = Some(ingest.files);
                let wf = match workload::AgentWorkflow::new(
                    &self.task,
                    self.role,
                    &self.options,
                    ingest,
                ) {
                    Ok(wf) => wf,
                    Err(e) => {
                        rows.push(row(
                            Stage::Analysis,
                            0,
                            false,
                            failed(ErrorKind::BadRequest, e.to_string()),
                        ));
                        return self.finish(isolated, t0, rows, files);
                    }
                };
                let analysis = self.client.send(&self.request(wf.analysis_prompt())).await;
                let ok = analysis.ok();
                let text = analysis.text.clone();
                rows.push(row(Stage::Analysis, 0, false, analysis));
                if ok {
                    let report = self
                        .client
                        .send(&self.request(wf.report_prompt(&text)))
                        .await;
                    rows.push(row(Stage::Report, 1, false, report));
                }
            }
        }
        self.finish(isolated, t0, rows, files)
    }

    fn finish(
        self,
        isolated: bool,
        t0: Instant,
        rows: Vec<RequestRow>,
        files: Option<u32>,
    ) -> AgentRun {
        let duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let recs: Vec<&RequestRecord> = rows
            .iter()
            .filter(|r| !r.warmup)
            .map(|r| &r.record)
            .collect();
        AgentRun {
            agent: self.agent,
            role: self.role,
            endpoint: self.endpoint,
            isolated,
            options: self.options,
            duration_ms,
            files_ingested: files,
            server_version: None,
            model_digest: None,
            aggregate: metrics::aggregate(&recs),
            requests: rows,
        }
    }
}

/// What an endpoint has loaded: (model tag, num_gpu, num_ctx).
type LoadedSet = (String, Option<u32>, Option<u32>);
/// Server version and model digest.
type Provenance = (Option<String>, Option<String>);

/// Durations and output tokens of agents run alone, by (configuration, repetition, agent).
pub type IsolatedResults = HashMap<(u32, u32, u8), (f64, u64)>;

/// What running cells needs: one client per endpoint URL (Ollama's protocol for `ollama` and
/// `emulator` endpoints, the OpenAI-compatible one for `openai`), the prepared corpora, what
/// each endpoint has loaded, and the provenance learned so far. Shared by the sequential
/// [`execute`] and the campaign scheduler.
pub struct Runner {
    clients: HashMap<String, Arc<Client>>,
    corpora: HashMap<(usize, usize), PathBuf>,
    /// What each endpoint has loaded: (model tag, num_gpu, num_ctx).
    loaded: tokio::sync::Mutex<HashMap<String, LoadedSet>>,
    /// Server version and model digest per (endpoint URL, model tag).
    provenance: tokio::sync::Mutex<HashMap<(String, String), Provenance>>,
    opts: RunOptions,
}

impl Runner {
    /// Creates clients for every endpoint of the plan and prepares every corpus.
    ///
    /// One URL speaks one protocol: an URL declared both as `openai` and as `ollama` or
    /// `emulator` (in any of the plan's manifests) is refused.
    pub fn prepare(plan: &Plan, opts: &RunOptions) -> Result<Runner, RunError> {
        let mut clients: HashMap<String, Arc<Client>> = HashMap::new();
        // URL → (endpoint id, OpenAI protocol), for the one-protocol-per-URL rule.
        let mut declared: HashMap<String, (String, bool)> = HashMap::new();
        let mut corpora = HashMap::new();
        let mut cache = HashMap::new();
        for (ri, rp) in plan.reports.iter().enumerate() {
            let spec = &rp.manifest.spec;
            for e in &spec.endpoints {
                let openai = e.kind == EndpointKind::Openai;
                if openai && spec.between_runs.unload_model {
                    tracing::info!(
                        "endpoint `{}` ({}): `between_runs.unload_model` is skipped, it is an Ollama request (`keep_alive: 0`) and an OpenAI-compatible server keeps the model it was started with",
                        e.id,
                        e.url
                    );
                }
                if let Some((other, was_openai)) = declared.get(&e.url) {
                    if *was_openai != openai {
                        let protocol = match was_openai {
                            true => "OpenAI-compatible",
                            false => "Ollama",
                        };
                        return Err(RunError::Endpoint {
                            endpoint: e.id.clone(),
                            url: e.url.clone(),
                            message: format!(
                                "endpoint `{other}` declares the same URL with the {protocol} protocol; one URL speaks one protocol in a run (give the other server its own URL)"
                            ),
                        });
                    }
                    continue;
                }
                declared.insert(e.url.clone(), (e.id.clone(), openai));
                let c = Client::new(e.kind, &e.url).map_err(|err| RunError::Endpoint {
                    endpoint: e.id.clone(),
                    url: e.url.clone(),
                    message: err.to_string(),
                })?;
                clients.insert(e.url.clone(), Arc::new(c));
            }
            for (wi, w) in spec.workloads.iter().enumerate() {
                if let Task::AgentWorkflow { corpus, .. } = &w.task {
                    let dir = prepare_corpus(corpus, &rp.manifest.path, opts, &mut cache)?;
                    corpora.insert((ri, wi), dir);
                }
            }
        }
        Ok(Runner {
            clients,
            corpora,
            loaded: tokio::sync::Mutex::new(HashMap::new()),
            provenance: tokio::sync::Mutex::new(HashMap::new()),
            opts: opts.clone(),
        })
    }

    /// The client of an endpoint URL.
    pub fn client(&self, url: &str) -> Option<&Arc<Client>> {
        self.clients.get(url)
    }

    /// Forgets what endpoints have loaded (after a failure the server may have restarted).
    pub async fn forget_loaded(&self, url: &str) {
        self.loaded.lock().await.remove(url);
    }

    /// Runs one warm-up, single, isolated or concurrent node and returns its record.
    /// `isolated` supplies the agents-alone results a concurrent cell is compared with.
    pub async fn run_cell(
        &self,
        plan: &Plan,
        ni: NodeIndex,
        isolated: &IsolatedResults,
    ) -> CellRecord {
        let node = &plan.graph[ni];
        let rp = &plan.reports[node.report as usize];
        let spec = &rp.manifest.spec;
        if node.kind == NodeKind::Warmup {
            let w = &plan.warmups[node.warmup as usize];
            self.loaded
                .lock()
                .await
                .insert(w.url.clone(), (w.model_tag.clone(), w.num_gpu, w.num_ctx));
            return run_warmup(plan, node, &self.clients, &self.opts).await;
        }
        let c = &plan.configs[node.config as usize];
        let w = &spec.workloads[c.workload];
        let corpus_root = self
            .corpora
            .get(&(node.report as usize, c.workload))
            .cloned();
        let model = spec
            .models
            .iter()
            .find(|m| *m.id == *c.model)
            .map(|m| m.tag.clone())
            .unwrap_or_default();
        let jobs: Vec<AgentJob> = c
            .agents
            .iter()
            .map(|a| {
                let e = &spec.endpoints[a.endpoint];
                AgentJob {
                    client: self.clients[&e.url].clone(),
                    endpoint: e.id.clone(),
                    agent: a.id.to_string(),
                    role: a.role,
                    model: model.clone(),
                    task: w.task.clone(),
                    api: w.api,
                    stream: w.stream,
                    keep_alive: w.keep_alive.clone(),
                    options: a.options.clone(),
                    timeout: Duration::from_secs_f64(spec.request_timeout_s),
                    max_bytes: self.opts.max_response_bytes,
                    corpus_root: corpus_root.clone(),
                }
            })
            .collect();
        // Ollama reloads the model when num_gpu/num_ctx change: with repetitions interleaved,
        // re-warm an endpoint whose loaded option set differs, before the timers start. These
        // requests are recorded, flagged and never averaged in.
        let mut pre: Vec<Vec<RequestRow>> = vec![Vec::new(); jobs.len()];
        if spec.warmup.policy == crate::manifest::WarmupMode::PerOptionSet {
            for (i, j) in jobs.iter().enumerate() {
                if node.kind == NodeKind::Isolated && i != node.agent as usize {
                    continue;
                }
                let url = &spec.endpoints[c.agents[i].endpoint].url;
                // An OpenAI-compatible server cannot reload with other load options (they
                // are startup settings, never sent): nothing to re-warm.
                if j.client.is_openai() {
                    continue;
                }
                let want = (j.model.clone(), j.options.num_gpu, j.options.num_ctx);
                if self.loaded.lock().await.get(url) == Some(&want) {
                    continue;
                }
                for k in 0..spec.warmup.requests {
                    let req = LlmRequest {
                        prompt: spec.warmup.prompt.clone(),
                        options: Options {
                            num_gpu: want.1,
                            num_ctx: want.2,
                            ..Options::default()
                        },
                        ..j.request(String::new())
                    };
                    pre[i].push(row(Stage::Warmup, k, true, j.client.send(&req).await));
                }
                self.loaded.lock().await.insert(url.clone(), want);
            }
        }
        let started_at = now_unix_ms();
        let t0 = Instant::now();
        let mut agents: Vec<AgentRun> = match node.kind {
            NodeKind::Isolated => {
                let job = jobs[node.agent as usize].clone();
                vec![job.run(true).await]
            }
            NodeKind::Concurrent => {
                let handles: Vec<_> = jobs
                    .into_iter()
                    .map(|j| tokio::spawn(j.run(false)))
                    .collect();
                let mut out = Vec::new();
                for h in handles {
                    match h.await {
                        Ok(a) => out.push(a),
                        Err(e) => tracing::error!("agent task failed: {e}"),
                    }
                }
                out
            }
            _ => {
                let mut out = Vec::new();
                for j in jobs {
                    out.push(j.run(true).await);
                }
                out
            }
        };
        let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
        for a in agents.iter_mut() {
            let i = c.agents.iter().position(|x| *x.id == *a.agent).unwrap_or(0);
            let mut rows = std::mem::take(&mut pre[i]);
            rows.append(&mut a.requests);
            a.requests = rows;
            let url = spec.endpoints[c.agents[i].endpoint].url.clone();
            let key = (url.clone(), model.clone());
            let known = self.provenance.lock().await.get(&key).cloned();
            let found = match known {
                Some(p) => p,
                None => {
                    let client = &self.clients[&url];
                    let p = (
                        client.version().await.ok(),
                        client.model_digest(&model).await.ok().flatten(),
                    );
                    self.provenance.lock().await.insert(key, p.clone());
                    p
                }
            };
            (a.server_version, a.model_digest) = found;
        }
        let mut rec = cell_record(plan, node, agents, wall_ms, started_at, &self.opts);
        if node.kind == NodeKind::Concurrent {
            let iso: Option<Vec<(f64, u64)>> = (0..c.agents.len())
                .map(|i| {
                    isolated
                        .get(&(node.config, node.repetition, i as u8))
                        .copied()
                })
                .collect();
            if let Some(iso) = iso {
                let durations: Vec<f64> = iso.iter().map(|x| x.0).collect();
                let tokens = metrics::sum_tokens(iso.iter().map(|x| x.1));
                let sum: f64 = durations.iter().sum();
                rec.isolated_sum_ms = Some(sum);
                rec.true_speedup = metrics::true_speedup(&durations, wall_ms);
                rec.true_efficiency_pct = rec
                    .true_speedup
                    .and_then(|s| metrics::efficiency_pct(s, durations.len()));
                rec.isolated_aggregate_tok_s = metrics::aggregate_tok_s(tokens, sum);
            }
        }
        rec
    }
}

/// The agents-alone result an isolated cell contributes: (duration, output tokens).
pub fn isolated_result(rec: &CellRecord) -> Option<(f64, u64)> {
    rec.agents
        .first()
        .map(|a| (a.duration_ms, a.aggregate.output_tokens))
}

/// Executes every runnable node of `plan` in schedule order, one at a time and in memory,
/// handing each finished cell to `sink`. Analysis and report nodes are skipped (later
/// stages). Returns the number of failed cells.
pub async fn execute(
    plan: &Plan,
    opts: &RunOptions,
    mut sink: impl FnMut(&CellRecord) -> Result<(), RunError>,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<usize, RunError> {
    let runner = Runner::prepare(plan, opts)?;
    let mut isolated: IsolatedResults = HashMap::new();
    let mut failed_cells = 0;
    for &ni in &plan.order {
        if *cancel.borrow() {
            break;
        }
        let node = &plan.graph[ni];
        if matches!(node.kind, NodeKind::Analysis | NodeKind::Report) {
            continue;
        }
        let record = runner.run_cell(plan, ni, &isolated).await;
        if node.kind == NodeKind::Isolated
            && record.status == "ok"
            && let Some(r) = isolated_result(&record)
        {
            isolated.insert((node.config, node.repetition, node.agent), r);
        }
        if record.status != "ok" {
            failed_cells += 1;
        }
        sink(&record)?;
    }
    Ok(failed_cells)
}

fn prepare_corpus(
    corpus: &Corpus,
    manifest: &Path,
    opts: &RunOptions,
    cache: &mut HashMap<String, PathBuf>,
) -> Result<PathBuf, RunError> {
    match corpus {
        Corpus::Directory { path } => {
            let p = Path::new(path);
            Ok(if p.is_absolute() {
                p.to_path_buf()
            } else {
                manifest.parent().unwrap_or(Path::new(".")).join(p)
            })
        }
        Corpus::Empty => {
            let dir = opts.work_dir.join("corpus-empty");
            std::fs::create_dir_all(&dir).map_err(|source| RunError::Corpus {
                path: dir.clone(),
                source,
            })?;
            Ok(dir)
        }
        Corpus::Generated {
            csv,
            json,
            md,
            seed,
        } => {
            let key = format!("{csv}-{json}-{md}-{seed}");
            if let Some(p) = cache.get(&key) {
                return Ok(p.clone());
            }
            let dir = opts.work_dir.join(format!("corpus-{key}"));
            if !dir.exists() {
                workload::corpus::generate(&dir, *csv, *json, *md, *seed).map_err(|source| {
                    RunError::Corpus {
                        path: dir.clone(),
                        source,
                    }
                })?;
            }
            cache.insert(key, dir.clone());
            Ok(dir)
        }
    }
}

async fn run_warmup(
    plan: &Plan,
    node: &PlanNode,
    clients: &HashMap<String, Arc<Client>>,
    opts: &RunOptions,
) -> CellRecord {
    let w = &plan.warmups[node.warmup as usize];
    let spec = &plan.reports[node.report as usize].manifest.spec;
    let started_at = now_unix_ms();
    let t0 = Instant::now();
    let mut rows = Vec::new();
    if let Some(client) = clients.get(&w.url) {
        for i in 0..w.requests {
            let req = LlmRequest {
                api: crate::manifest::Api::Generate,
                model: w.model_tag.clone(),
                prompt: w.prompt.clone(),
                stream: true,
                options: Options {
                    num_gpu: w.num_gpu,
                    num_ctx: w.num_ctx,
                    ..Options::default()
                },
                keep_alive: None,
                timeout: Duration::from_secs_f64(spec.request_timeout_s),
                max_response_bytes: opts.max_response_bytes,
            };
            rows.push(row(Stage::Warmup, i, true, client.send(&req).await));
        }
    }
    let endpoint = spec
        .endpoints
        .iter()
        .find(|e| e.url == w.url)
        .map(|e| e.id.clone())
        .unwrap_or_default();
    let agent = AgentRun {
        agent: "warmup".into(),
        role: Role::Client,
        endpoint,
        isolated: true,
        options: Options {
            num_gpu: w.num_gpu,
            num_ctx: w.num_ctx,
            ..Options::default()
        },
        duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
        files_ingested: None,
        server_version: None,
        model_digest: None,
        aggregate: AgentAggregate::default(),
        requests: rows,
    };
    cell_record(
        plan,
        node,
        vec![agent],
        t0.elapsed().as_secs_f64() * 1000.0,
        started_at,
        opts,
    )
}

fn cell_record(
    plan: &Plan,
    node: &PlanNode,
    agents: Vec<AgentRun>,
    wall_ms: f64,
    started_at_unix_ms: f64,
    opts: &RunOptions,
) -> CellRecord {
    let c = (node.config != crate::plan::NONE).then(|| &plan.configs[node.config as usize]);
    let first_error = agents
        .iter()
        .flat_map(|a| a.requests.iter())
        .find_map(|r| r.record.error.as_ref());
    let error = first_error.map(|e| format!("{}: {}", e.kind.name(), e.message));
    let error_kind = first_error.map(|e| e.kind);
    let mut rec = CellRecord {
        cell_id: node.id.hex(),
        kind: node.kind.name(),
        report: plan.reports[node.report as usize].report.clone(),
        config: c.map(|c| c.id.to_string()),
        scenario: c.map(|c| c.scenario.to_string()),
        repetition: node.repetition,
        model: c.and_then(|c| {
            plan.reports[node.report as usize]
                .manifest
                .spec
                .models
                .iter()
                .find(|m| *m.id == *c.model)
                .map(|m| m.tag.clone())
        }),
        started_at_unix_ms,
        attempt: 1,
        status: if error.is_none() { "ok" } else { "failed" },
        error,
        error_kind,
        telemetry: None,
        gpu_samples: Vec::new(),
        wall_ms,
        published_speedup: None,
        published_efficiency_pct: None,
        contention: None,
        isolated_sum_ms: None,
        true_speedup: None,
        true_efficiency_pct: None,
        aggregate_tok_s: None,
        isolated_aggregate_tok_s: None,
        throughput_delta_tok_s: None,
        ttft_delta_ms: None,
        agents,
    };
    let tokens = metrics::sum_tokens(rec.agents.iter().map(|a| a.aggregate.output_tokens));
    rec.aggregate_tok_s = metrics::aggregate_tok_s(tokens, wall_ms);
    if node.kind == NodeKind::Concurrent {
        let durations: Vec<f64> = rec.agents.iter().map(|a| a.duration_ms).collect();
        rec.published_speedup = metrics::published_speedup(&durations, wall_ms);
        rec.published_efficiency_pct = rec
            .published_speedup
            .and_then(|s| metrics::efficiency_pct(s, durations.len()));
        rec.contention = rec
            .published_speedup
            .map(|s| metrics::contention(s, opts.contention_threshold));
        if let [a, b, ..] = rec.agents.as_slice() {
            let (tp, ttft) = metrics::deltas_rust(&a.aggregate, &b.aggregate);
            rec.throughput_delta_tok_s = tp;
            rec.ttft_delta_ms = ttft;
        }
    }
    rec
}
