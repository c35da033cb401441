//! Stage 3 (first cut): execute a plan's cells against the servers, in memory.
//!
//! Cells run one at a time in the plan's schedule order (the durable store, resume, cache and
//! the resource-aware parallel scheduler come with the campaign stage). Within a concurrent
//! cell every agent runs on its own tokio task, truly at once, and the wall clock is taken
//! around the join. Every finished cell becomes a [`CellRecord`]: its agents, their requests,
//! and the published and honest metrics.

pub(crate) mod campaign;
mod cells;
mod checks;
pub(crate) mod command;
mod error;
mod events;
mod fingerprint;
mod force;
mod gpu_telemetry;
mod load;
mod options;
mod preflight;
mod progress;
mod provenance;
mod retry;
mod scheduler;
mod server_metrics;
mod signal;
mod sinks;
mod worker;

pub use campaign::{CampaignError, CampaignOptions, CampaignSummary, run_campaign};
pub use force::{BadSelector, ForceSelector};
pub use signal::wait_for_stop;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{Client, ErrorKind, LlmRequest, RequestError, RequestRecord};
use crate::manifest::{Corpus, EndpointKind, Options, Role, Task, TtftDefinition};
use crate::metrics::{self, AgentAggregate, AgentWork};
use crate::plan::{NodeKind, Plan, PlanNode};
use crate::record::{
    AgentRun, CellAxes, CellKey, CellKind, CellRecord, MultiAgentMetrics, RequestRow, agent_deltas,
    isolated_result,
};
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
    /// The workload's `force_output_tokens`.
    force_output_tokens: Option<u32>,
    timeout: Duration,
    max_bytes: usize,
    corpus_root: Option<PathBuf>,
    /// How the report this workload reproduces defined TTFT.
    ttft_def: TtftDefinition,
    /// The agent program of a `command` workload, prepared (or why it could not be).
    program: Option<Result<command::ProgramSpec, String>>,
    /// Waited on right before an agent program starts: the programs of a concurrent cell
    /// start together.
    start: Option<Arc<tokio::sync::Barrier>>,
    /// The level of a `load` workload's agent.
    load: Option<load::LoadJob>,
}

use crate::util::clock::now_unix_ms;

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

    /// Sends `prompt` as one of this agent's requests (with the workload's forced length).
    async fn send(&self, prompt: String) -> RequestRecord {
        self.client
            .send_forced(&self.request(prompt), self.force_output_tokens)
            .await
    }

    /// A measured (not warm-up) request of this agent, with the TTFT its harness published.
    fn row(&self, stage: Stage, index: u32, record: RequestRecord) -> RequestRow {
        RequestRow::measured(stage, index, false, record, self.ttft_def)
    }

    /// Runs the agent's workload once; the duration covers ingest and every call (an agent
    /// program: its process, spawn to exit). `cell_t0` is the start of the cell's timers.
    async fn run(self, isolated: bool, cell_t0: Instant) -> AgentRun {
        if let Some(program) = self.program.clone() {
            return self.run_program(program, isolated, cell_t0).await;
        }
        let t0 = Instant::now();
        let mut rows = Vec::new();
        let mut files = None;
        match &self.task {
            Task::SingleInference { prompts } => {
                for (i, p) in prompts.iter().enumerate() {
                    let rec = self.send(p.clone()).await;
                    rows.push(self.row(Stage::Single, i as u32, rec));
                }
            }
            Task::Load(_) => match &self.load {
                Some(lj) => rows = load::run(&self, lj).await,
                None => rows.push(self.row(
                    Stage::Load,
                    0,
                    failed(
                        ErrorKind::BadRequest,
                        "a load agent without its level".into(),
                    ),
                )),
            },
            Task::Persona { .. } => {
                let rec = match workload::persona_prompt(&self.task, self.role) {
                    Some(p) => self.send(p).await,
                    None => failed(
                        ErrorKind::BadRequest,
                        format!("no persona prompt for role {:?}", self.role),
                    ),
                };
                rows.push(self.row(Stage::Persona, 0, rec));
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
                        rows.push(self.row(
                            Stage::Analysis,
                            0,
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
                        rows.push(self.row(
                            Stage::Analysis,
                            0,
                            failed(ErrorKind::BadRequest, e.to_string()),
                        ));
                        return self.finish(isolated, t0, rows, files);
                    }
                };
                let analysis = self.send(wf.analysis_prompt()).await;
                let ok = analysis.ok();
                let text = analysis.text.clone();
                rows.push(self.row(Stage::Analysis, 0, analysis));
                if ok {
                    let report = self.send(wf.report_prompt(&text)).await;
                    rows.push(self.row(Stage::Report, 1, report));
                }
            }
        }
        self.finish(isolated, t0, rows, files)
    }

    /// Runs the agent as its program; its records become the rows, a failure of the
    /// program one failed row more.
    async fn run_program(
        self,
        program: Result<command::ProgramSpec, String>,
        isolated: bool,
        cell_t0: Instant,
    ) -> AgentRun {
        let o = match &program {
            Ok(spec) => command::run_program(spec, cell_t0, self.start.as_deref()).await,
            Err(why) => command::ProgramOutcome {
                failure: Some(why.clone()),
                ..Default::default()
            },
        };
        let mut rows: Vec<RequestRow> = o
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut row = self.row(
                    r.stage.into(),
                    r.index.unwrap_or(i as u32),
                    command_record(r),
                );
                row.response_chars = Some(r.response_chars.unwrap_or(0));
                row
            })
            .collect();
        let files = o.records.iter().find_map(|r| r.files_ingested);
        // A clean exit must also have done the whole task: every prompt, or the workflow's
        // analysis and (after a successful analysis) its report.
        let failure = o
            .failure
            .or_else(|| command::check_records(&self.task, &o.records).err());
        match failure {
            Some(why) => {
                let stage = match &self.task {
                    Task::SingleInference { .. } => Stage::Single,
                    Task::Persona { .. } => Stage::Persona,
                    Task::Load(_) => Stage::Load,
                    Task::AgentWorkflow { .. } if rows.is_empty() => Stage::Analysis,
                    Task::AgentWorkflow { .. } => Stage::Report,
                };
                let index = rows.len() as u32;
                rows.push(self.row(stage, index, failed(ErrorKind::AgentProgram, why)));
            }
            None => {
                // Nothing to look at after a clean run: the job and records go.
                if let Ok(spec) = &program {
                    let _ = std::fs::remove_dir_all(&spec.work_dir);
                }
            }
        }
        let duration_ms = o.stats.process_wall_ms.unwrap_or(0.0);
        let mut run = self.finish_ms(isolated, duration_ms, rows, files);
        run.process = Some(o.stats);
        run
    }

    fn finish(
        self,
        isolated: bool,
        t0: Instant,
        rows: Vec<RequestRow>,
        files: Option<u32>,
    ) -> AgentRun {
        let duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
        self.finish_ms(isolated, duration_ms, rows, files)
    }

    fn finish_ms(
        self,
        isolated: bool,
        duration_ms: f64,
        rows: Vec<RequestRow>,
        files: Option<u32>,
    ) -> AgentRun {
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
            aggregate: metrics::aggregate(&recs, self.ttft_def),
            requests: rows,
            process: None,
        }
    }
}

/// A record an agent program wrote, as a request record.
fn command_record(r: &crate::workload::protocol::AgentRecord) -> RequestRecord {
    RequestRecord {
        sent_at_unix_ms: r.sent_at_unix_ms,
        ttft_ms: r.ttft_ms,
        e2e_ms: r.e2e_ms,
        itl_ms: r.itl_ms.clone(),
        chunks: r.chunks,
        text: String::new(),
        load_ms: r.load_ms,
        prompt_tokens: r.prompt_tokens,
        prompt_eval_ms: r.prompt_eval_ms,
        output_tokens: r.output_tokens,
        eval_ms: r.eval_ms,
        total_ms: r.total_ms,
        done_reason: r.done_reason.clone(),
        timing_source: Some(command::TIMING_SOURCE.into()),
        error: r.error.as_ref().map(|e| RequestError {
            kind: ErrorKind::from_name(&e.kind).unwrap_or(ErrorKind::AgentProgram),
            status: e.status,
            message: e.message.clone(),
        }),
    }
}

/// What an endpoint has loaded: (model tag, num_gpu, num_ctx).
type LoadedSet = (String, Option<u32>, Option<u32>);

/// What agents run alone did (their isolated baselines), by (configuration, repetition, agent).
pub type IsolatedResults = HashMap<(Option<u32>, u32, u8), crate::record::Baseline>;

/// What running cells needs: one client per endpoint URL (Ollama's protocol for `ollama` and
/// `emulator` endpoints, the OpenAI-compatible one for `openai`), the prepared corpora, what
/// each endpoint has loaded, and the provenance learned so far. Shared by the sequential
/// [`execute`] and the campaign scheduler.
pub struct Runner {
    clients: HashMap<String, Arc<Client>>,
    corpora: HashMap<(usize, usize), PathBuf>,
    /// What each endpoint has loaded: (model tag, num_gpu, num_ctx).
    loaded: tokio::sync::Mutex<HashMap<String, LoadedSet>>,
    /// Server version per endpoint URL (asked once per run).
    versions: tokio::sync::Mutex<HashMap<String, Option<String>>>,
    /// The campaign's model digest per (endpoint URL, model tag): the first any run of the
    /// campaign learned (`model-digests.json`).
    campaign_digests: std::sync::Mutex<HashMap<(String, String), String>>,
    /// Where the campaign's digests are kept (set when a campaign runs).
    digests_file: std::sync::OnceLock<PathBuf>,
    /// Prompt calibrations of `load` workloads, learned once per server, model and settings.
    calibrations: Arc<load::Calibrations>,
    /// This run's own number (time and process), mixed into every load's prompt nonce.
    load_seed: u64,
    /// Load runs started by this runner: each attempt of a cell its own nonce.
    load_runs: std::sync::atomic::AtomicU64,
    opts: RunOptions,
}

impl Runner {
    /// The prompt nonce of one run of a load cell: the cell's id, this run and the attempt,
    /// so that no attempt's prompts (a retry's, a `--force` rerun's) are in a server's prompt
    /// cache from another.
    fn load_nonce(&self, id: &crate::plan::NodeId) -> u64 {
        let cell = u64::from_le_bytes(id.0[..8].try_into().unwrap_or_default());
        let n = self
            .load_runs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::util::rng::mix(cell ^ self.load_seed ^ crate::util::rng::mix(n))
    }

    /// Creates clients for every endpoint of the plan and prepares every corpus.
    ///
    /// One URL speaks one protocol: an URL declared both as `openai` and as `ollama` or
    /// `emulator` (in any of the plan's manifests) is refused.
    pub fn prepare(plan: &Plan, opts: &RunOptions) -> Result<Runner, RunError> {
        let stale = command::stop_stale_programs(&opts.work_dir);
        if stale > 0 {
            tracing::warn!(
                "stopped {stale} agent program process(es) left running by an earlier chimera run that was killed"
            );
        }
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
                let c = Client::new(e.kind, e.connect_url()).map_err(|err| RunError::Endpoint {
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
            versions: tokio::sync::Mutex::new(HashMap::new()),
            calibrations: Arc::default(),
            load_seed: crate::util::rng::mix(
                (now_unix_ms() as u64) ^ (u64::from(std::process::id()) << 40),
            ),
            load_runs: std::sync::atomic::AtomicU64::new(0),
            campaign_digests: std::sync::Mutex::new(HashMap::new()),
            digests_file: std::sync::OnceLock::new(),
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

    /// Re-warms, before a cell's timers start, each endpoint of the cell whose loaded option
    /// set (model, num_gpu, num_ctx) differs from what its agent sends (warm-up policy
    /// `per_option_set`); the rows per agent.
    async fn rewarm(
        &self,
        plan: &Plan,
        node: &PlanNode,
        jobs: &[AgentJob],
    ) -> Vec<Vec<RequestRow>> {
        let spec = &plan.reports[node.report as usize].manifest.spec;
        let c = plan.cell_config(node);
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
                    pre[i].push(RequestRow::measured(
                        Stage::Warmup,
                        k,
                        true,
                        j.client.send(&req).await,
                        j.ttft_def,
                    ));
                }
                self.loaded.lock().await.insert(url.clone(), want);
            }
        }
        pre
    }

    /// The server version (asked once per run) and the model digest of the endpoint at `url`
    /// (asked every time).
    async fn server_identity(&self, url: String, model: &str) -> (Option<String>, Option<String>) {
        let client = &self.clients[&url];
        // The digest is asked after every cell: a model re-pulled mid-campaign shows.
        let digest = client.model_digest(model).await.ok().flatten();
        if let Some(d) = &digest {
            self.learn_digest(&url, model, d);
        }
        let known = self.versions.lock().await.get(&url).cloned();
        let version = match known {
            Some(v) => v,
            None => {
                let v = client.version().await.ok();
                self.versions.lock().await.insert(url, v.clone());
                v
            }
        };
        (version, digest)
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
            let w = plan.warmup_key(node);
            self.loaded
                .lock()
                .await
                .insert(w.url.clone(), (w.model_tag.clone(), w.num_gpu, w.num_ctx));
            return run_warmup(plan, node, &self.clients, &self.opts).await;
        }
        let c = plan.cell_config(node);
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
        let cell_id = node.id.hex();
        let jobs: Vec<AgentJob> = c
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let e = &spec.endpoints[a.endpoint];
                let timeout =
                    Duration::try_from_secs_f64(spec.request_timeout_s).unwrap_or(Duration::MAX);
                // An isolated cell runs one agent: only its program is prepared.
                let runs = node.kind != NodeKind::Isolated || i == node.agent as usize;
                let program = w.command.as_ref().filter(|_| runs).map(|cmd| {
                    command::prepare(&command::Prepare {
                        command: cmd,
                        task: &w.task,
                        cell_id: &cell_id,
                        agent: &a.id,
                        role: a.role,
                        endpoint: e,
                        model: &model,
                        api: w.api,
                        stream: w.stream,
                        keep_alive: &w.keep_alive,
                        options: &a.options,
                        timeout,
                        corpus: corpus_root.as_deref(),
                        runtime: c.runtime,
                        language: c.language,
                        manifest: &rp.manifest.path,
                        work_root: &self.opts.work_dir,
                        force_output_tokens: w.force_output_tokens,
                    })
                });
                AgentJob {
                    program,
                    start: None,
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
                    force_output_tokens: w.force_output_tokens,
                    timeout: Duration::from_secs_f64(spec.request_timeout_s),
                    max_bytes: self.opts.max_response_bytes,
                    corpus_root: corpus_root.clone(),
                    ttft_def: w.ttft_definition(),
                    load: match &w.task {
                        Task::Load(t) => Some(load::LoadJob {
                            task: t.clone(),
                            level: c.load,
                            nonce: self.load_nonce(&node.id),
                            calibrations: self.calibrations.clone(),
                            server: c.server.to_string(),
                        }),
                        _ => None,
                    },
                }
            })
            .collect();
        // Ollama reloads the model when num_gpu/num_ctx change: with repetitions interleaved,
        // re-warm an endpoint whose loaded option set differs, before the timers start. These
        // requests are recorded, flagged and never averaged in.
        let mut pre = self.rewarm(plan, node, &jobs).await;
        let started_at = now_unix_ms();
        let t0 = Instant::now();
        let mut agents = run_agents(node, jobs, t0).await;
        let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let start_skew_ms = start_offsets(&mut agents);
        for a in agents.iter_mut() {
            let i = c.agents.iter().position(|x| *x.id == *a.agent).unwrap_or(0);
            let mut rows = std::mem::take(&mut pre[i]);
            rows.append(&mut a.requests);
            a.requests = rows;
            let url = spec.endpoints[c.agents[i].endpoint].url.clone();
            (a.server_version, a.model_digest) = self.server_identity(url, &model).await;
        }
        let mut rec = cell_record(plan, node, agents, wall_ms, started_at, &self.opts);
        rec.start_skew_ms = start_skew_ms;
        self.self_check(plan, node, &mut rec).await;
        if node.kind == NodeKind::Concurrent {
            let baselines: Option<Vec<crate::record::Baseline>> = (0..c.agents.len())
                .map(|i| {
                    isolated
                        .get(&(node.config, node.repetition, i as u8))
                        .copied()
                })
                .collect();
            if baselines.iter().flatten().any(|b| b.suspect) {
                rec.mark_suspect(Some(
                    "baseline: an isolated baseline of this configuration and repetition is suspect"
                        .to_owned(),
                ));
            }
            let alone: Option<Vec<AgentWork>> =
                baselines.map(|b| b.iter().map(|b| b.work).collect());
            // The agents of the run in configuration order, as the baselines are.
            let together: Vec<AgentWork> = c
                .agents
                .iter()
                .filter_map(|a| rec.agents.iter().find(|r| *r.agent == *a.id))
                .map(AgentRun::work)
                .collect();
            if let Some(alone) = alone {
                let tok_s = rec.aggregate_tok_s;
                rec.multi_agent_mut()
                    .set_isolated(&alone, &together, wall_ms, tok_s);
            }
        }
        rec
    }
}

/// Tasks aborted when dropped.
struct AbortOnDrop<T>(Vec<tokio::task::JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Makes the agent programs' start offsets relative to the first one that started, and
/// returns the largest (the cell's start skew) when more than one program started.
fn start_offsets(agents: &mut [AgentRun]) -> Option<f64> {
    let offsets = || {
        agents
            .iter()
            .filter_map(|a| a.process.as_ref().and_then(|p| p.start_offset_ms))
    };
    let first = offsets().reduce(f64::min)?;
    let started = offsets().count();
    let mut skew: f64 = 0.0;
    for p in agents.iter_mut().filter_map(|a| a.process.as_mut()) {
        if let Some(o) = p.start_offset_ms.as_mut() {
            *o -= first;
            skew = skew.max(*o);
        }
    }
    (started > 1).then_some(skew)
}

/// Runs a cell's agents: the one of an isolated cell alone, a concurrent cell's all at once
/// (one task each), a single cell's in turn. `t0` is the start of the cell's timers.
async fn run_agents(node: &PlanNode, jobs: Vec<AgentJob>, t0: Instant) -> Vec<AgentRun> {
    match node.kind {
        NodeKind::Isolated => {
            let job = jobs[node.agent as usize].clone();
            vec![job.run(true, t0).await]
        }
        NodeKind::Concurrent => {
            // Cancelling the cell (Ctrl-C) drops this future: the agents' tasks go with it
            // (an agent program's process group is killed when its task is dropped).
            let programs = jobs.iter().filter(|j| j.program.is_some()).count();
            let start = (programs > 1).then(|| Arc::new(tokio::sync::Barrier::new(programs)));
            let mut handles = AbortOnDrop(
                jobs.into_iter()
                    .map(|mut j| {
                        if j.program.is_some() {
                            j.start = start.clone();
                        }
                        tokio::spawn(j.run(false, t0))
                    })
                    .collect(),
            );
            let mut out = Vec::new();
            for h in handles.0.iter_mut() {
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
                out.push(j.run(true, t0).await);
            }
            out
        }
    }
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
            && record.ok()
            && let Some(r) = isolated_result(&record)
        {
            isolated.insert((node.config, node.repetition, node.agent), r);
        }
        if !record.ok() {
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
        Corpus::Generated { .. } => {
            let key = corpus
                .generated_name()
                .expect("a generated corpus has a name");
            if let Some(p) = cache.get(&key) {
                return Ok(p.clone());
            }
            let dir = opts.work_dir.join(format!("corpus-{key}"));
            if !dir.exists() {
                workload::corpus::generate_spec(&dir, corpus).map_err(|source| {
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
    let w = plan.warmup_key(node);
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
            rows.push(RequestRow::measured(
                Stage::Warmup,
                i,
                true,
                client.send(&req).await,
                TtftDefinition::ClientFirstChunk,
            ));
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
        process: None,
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
    let c = plan.config_of(node);
    let rp = &plan.reports[node.report as usize];
    let key = CellKey {
        cell_id: node.id.hex(),
        kind: CellKind::of(node.kind)
            .expect("only warm-up, single, isolated and concurrent nodes run as cells"),
        report: rp.report.clone(),
        config: c.map(|c| c.id.to_string()),
        scenario: c.map(|c| c.scenario.to_string()),
        repetition: node.repetition,
        model: c.and_then(|c| {
            rp.manifest
                .spec
                .models
                .iter()
                .find(|m| *m.id == *c.model)
                .map(|m| m.tag.clone())
        }),
        axes: c.map(|c| CellAxes::of(plan, c)).unwrap_or_default(),
        server_flags: c.and_then(crate::record::server_flags_of),
    };
    let mut rec = CellRecord::new(key, agents, wall_ms, started_at_unix_ms);
    if node.kind == NodeKind::Concurrent {
        let mut m = MultiAgentMetrics::published(&rec.agents, wall_ms, opts.contention_threshold);
        (m.throughput_delta_tok_s, m.ttft_delta_ms) = agent_deltas(&rec.agents);
        rec.multi_agent = Some(m);
    }
    rec
}
