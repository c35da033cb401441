//! The manifest language: the serde types a YAML manifest deserializes into.
//!
//! Every struct denies unknown keys, every default is written here (and appears in the
//! generated JSON Schema), and no type uses `untagged` or `flatten`, so that every error
//! names the key it is about. Cross-references (endpoint, model, workload, scenario and agent
//! ids) are checked afterwards by [`crate::manifest::validate`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kinds::{
    EndpointKind, Language, Level, Metric, Role, Runtime, ScenarioKind, Statistic, TtftDefinition,
};
use super::resource::Resource;
use super::serving::{LoadTask, ServerFlags, SloSpec};

/// The manifest format this build of chimera reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// One manifest: the experiment behind one technical report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    /// Manifest format version. Must be `1`.
    pub format: u32,
    /// Report id, e.g. `TR114_v2`: `TR` + three digits, optionally `_v` + a number and `_` + a
    /// lower-case tag (`TR114_demo`).
    pub report: String,
    /// Human title of the report.
    pub title: String,
    /// What the experiment measures, in a few sentences.
    #[serde(default)]
    pub description: Option<String>,
    /// Reports whose measured data this report needs (their cells and analysis run first).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Reports this report's findings are compared with (their analysis precedes this report).
    #[serde(default)]
    pub compare_with: Vec<String>,
    /// The environment the original report states (GPU, RAM, OS, server versions...).
    /// Provenance only: printed in reports, never part of a cell id.
    #[serde(default)]
    pub published_environment: BTreeMap<String, String>,
    /// The servers the experiment talks to.
    pub endpoints: Vec<Endpoint>,
    /// The models, by id.
    pub models: Vec<Model>,
    /// The workloads (what one agent does in one run), by id.
    pub workloads: Vec<Workload>,
    /// The scenarios (which agents run, where, and how), by id.
    pub scenarios: Vec<Scenario>,
    /// Blocks of configurations: full-factorial axes and/or enumerated configurations.
    pub matrix: Vec<Block>,
    /// Repetitions of every configuration (a block may override). Default: 1.
    #[serde(default = "default_repetitions")]
    pub repetitions: u32,
    /// Warm-up policy. Default: one excluded request per endpoint and load-affecting option set.
    #[serde(default)]
    pub warmup: WarmupPolicy,
    /// Order in which repetitions run. Default: interleaved, not shuffled.
    #[serde(default)]
    pub order: RunOrder,
    /// What happens between two runs on the same endpoint. Default: nothing.
    #[serde(default)]
    pub between_runs: BetweenRuns,
    /// Per-request timeout in seconds. Default: 300 (the Rust harnesses' reqwest timeout).
    #[serde(default = "default_request_timeout_s")]
    pub request_timeout_s: f64,
    /// Retry policy for failed cells. Default: 2 retries of transport errors.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// GPU telemetry settings. Default: NVML at 100 ms.
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// The published numbers this experiment should reproduce.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Service-level objectives of the report's `load` workloads: goodput counts the
    /// requests that meet every one, the SLO frontier the largest level whose percentiles
    /// do. Analysis only (changing them re-analyses, never re-runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slos: Vec<SloSpec>,
}

fn default_repetitions() -> u32 {
    1
}

fn default_request_timeout_s() -> f64 {
    300.0
}

/// A server endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Endpoint id, referenced by scenario agents.
    pub id: String,
    /// Protocol spoken by the server.
    pub kind: EndpointKind,
    /// Base URL, `http://host:port` (no path).
    pub url: String,
    /// The exclusive resource (a GPU of a host, e.g. `local:gpu0`) the server computes on.
    /// Cells acquire every resource of their endpoints before they start.
    #[schemars(with = "String")]
    pub resource: Resource,
    /// Settings for a server that chimera starts and stops itself. Absent: use a running server.
    #[serde(default)]
    pub managed: Option<ManagedServer>,
    /// Metrics URL of NVIDIA's dcgm-exporter on the host this endpoint's GPU sits on (e.g.
    /// `http://gpu-host:9400/metrics`). When set, the GPU named by `resource` (`...:gpuN`) is
    /// sampled from it instead of the local NVML. Provenance only (not part of cell ids).
    #[serde(default)]
    pub gpu_metrics_url: Option<String>,
    /// Sample the server's Prometheus `/metrics` during each measured cell (llama-server
    /// with `--metrics`, vLLM; Ollama has none). Sampling settings, not part of cell ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<super::ServerMetricsSettings>,
    /// Where the server really listens when it is not `url` (`chimera run --port-offset`, for
    /// shards that share a host): set at run time, never read from a manifest, not part of
    /// any id.
    #[serde(skip)]
    #[schemars(skip)]
    pub listen_url: Option<String>,
}

impl Endpoint {
    /// The URL to connect to: `listen_url` when set, else `url`.
    pub fn connect_url(&self) -> &str {
        self.listen_url.as_deref().unwrap_or(&self.url)
    }
}

/// A server chimera manages (starts before the cells that need it, stops at the end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagedServer {
    /// Program and arguments, e.g. `[ollama, serve]`.
    pub command: Vec<String>,
    /// Environment variables for the process, e.g. `OLLAMA_HOST`, `OLLAMA_MODELS`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seconds to wait for the server to answer before giving up. Default: 60.
    #[serde(default = "default_startup_timeout_s")]
    pub startup_timeout_s: f64,
    /// Values of the `{server.NAME}` placeholders of `command` and `env` for configurations
    /// whose `server` axis does not set NAME (e.g. `{parallel: 1}`).
    #[serde(default, skip_serializing_if = "ServerFlags::is_empty")]
    pub defaults: ServerFlags,
}

fn default_startup_timeout_s() -> f64 {
    60.0
}

/// A model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Model id, referenced by blocks and configurations.
    pub id: String,
    /// Server tag, e.g. `gemma3:latest`.
    pub tag: String,
    /// Optional digest pin (`sha256:` + 64 hex digits). None of the original reports pinned one.
    #[serde(default)]
    pub digest: Option<String>,
}

/// A workload: what one agent does in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Workload id, referenced by blocks.
    pub id: String,
    /// The original harness this workload reproduces (H1…H6v2 of the spec). Provenance only.
    #[serde(default)]
    pub harness: Option<String>,
    /// How the report defined TTFT (computed beside chimera's client TTFT as
    /// `published_ttft_ms`). Default: the definition of `harness` (H1, H2, H3:
    /// `load_plus_prompt_eval`; H4: `prompt_eval`), else `client_first_chunk`.
    #[serde(default)]
    pub published_ttft: Option<TtftDefinition>,
    /// Server API used. Default: `generate`.
    #[serde(default)]
    pub api: Api,
    /// Stream the response. Default: true.
    #[serde(default = "default_true")]
    pub stream: bool,
    /// Ollama `keep_alive` sent with every request; absent means not sent (server default).
    #[serde(default)]
    pub keep_alive: Option<String>,
    /// Ask the server to generate exactly this many tokens per request, so that every run of
    /// a configuration (concurrent or alone) does the same work: OpenAI-compatible endpoints
    /// (llama-server, vLLM) get `max_tokens: N`, `ignore_eos: true` and `min_tokens: N`
    /// (instead of any `num_predict`), agent programs get it in their job file
    /// (`force_output_tokens`). Refused for endpoints of kind `ollama` and `emulator`: Ollama's
    /// protocol cannot force an output length. Absent: each reply ends where the model stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_output_tokens: Option<u32>,
    /// Run each agent as an external program instead of chimera's in-process client
    /// (`docs/agent-protocol.md`). Absent: in-process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandAgent>,
    /// What the agent does.
    pub task: Task,
}

/// An agent program: what a `command` workload starts for each agent run. Placeholders
/// (`{job}`, `{records}`, `{url}`, `{protocol}`, `{model}`, `{options_json}`, `{corpus}`,
/// `{seed}`, `{runtime}`, `{language}`, `{agent}`, `{role}`, `{cell_id}`, `{manifest_dir}`,
/// `{work_dir}`) in the arguments and the environment are replaced per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandAgent {
    /// The program and its arguments.
    #[serde(default)]
    pub argv: Vec<String>,
    /// Another argv for configurations whose `language` axis is this language (the Rust and
    /// the Python reference agents of one workload).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_language: BTreeMap<Language, Vec<String>>,
    /// Extra environment of the program.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Largest records file accepted, bytes (the program is killed past it). Default 64 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_record_bytes: Option<u64>,
    /// Longest one run of the program may take, seconds, start-up included (its process
    /// group is killed past it). Default: `request_timeout_s` × the requests of its task
    /// + 30 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_s: Option<f64>,
}

impl CommandAgent {
    /// Default `max_record_bytes`.
    pub const DEFAULT_MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

    /// The placeholders an argument may use.
    pub const PLACEHOLDERS: &[&str] = &[
        "job",
        "records",
        "url",
        "protocol",
        "model",
        "options_json",
        "corpus",
        "seed",
        "runtime",
        "language",
        "agent",
        "role",
        "cell_id",
        "manifest_dir",
        "work_dir",
    ];

    /// The argv for a configuration of `language`.
    pub fn argv_for(&self, language: Option<Language>) -> &[String] {
        language
            .and_then(|l| self.by_language.get(&l))
            .unwrap_or(&self.argv)
    }

    /// The records-file cap, bytes.
    pub fn max_record_bytes(&self) -> u64 {
        self.max_record_bytes
            .unwrap_or(Self::DEFAULT_MAX_RECORD_BYTES)
    }
}

impl Workload {
    /// The TTFT definition of the report this workload reproduces (see `published_ttft`).
    pub fn ttft_definition(&self) -> TtftDefinition {
        self.published_ttft.unwrap_or_else(|| {
            self.harness
                .as_deref()
                .map_or(TtftDefinition::default(), TtftDefinition::of_harness)
        })
    }
}

fn default_true() -> bool {
    true
}

/// Server API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `/api/generate` (Ollama) or `/v1/completions` (OpenAI-compatible).
    #[default]
    Generate,
    /// `/api/chat` (Ollama) or `/v1/chat/completions` (OpenAI-compatible).
    Chat,
}

/// The task of a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// One request per prompt (TR108).
    SingleInference {
        /// The prompts, sent in order, one request each.
        prompts: Vec<String>,
    },
    /// Ingest a corpus, then an analysis call, then a report call (H2, H5, H6v2).
    AgentWorkflow {
        /// The corpus the ingest step reads.
        corpus: Corpus,
        /// Files the ingest step must find; a different count fails the run (layout drift).
        #[serde(default)]
        expected_files: Option<u32>,
        /// Analysis-call template; `{data_summary}` is replaced by the ingest summary, and
        /// `{num_gpu}`, `{num_ctx}`, `{temperature}`, `{top_p}`, `{top_k}`, `{repeat_penalty}`
        /// by the agent's effective options (`default` when not sent).
        analysis_template: String,
        /// Report-call template; `{summary}`, `{key_findings}`, `{performance_metrics}` and
        /// `{recommendations}` are replaced by what was extracted from the analysis, and the
        /// option placeholders as in `analysis_template`.
        report_template: String,
        /// Per-role template overrides (TR109/TR110 chimera agents used their own prompts).
        #[serde(default)]
        role_templates: BTreeMap<Role, RoleTemplates>,
    },
    /// One call per agent with the agent role's persona prompt (H4, H6v1).
    Persona {
        /// Persona prompt per role.
        prompts: BTreeMap<Role, String>,
    },
    /// A serving load against the agent's endpoint (`docs/serving-metrics.md`): a closed
    /// loop of the configuration's `concurrency` users, or an open loop at its `rate`
    /// (requests per second). Every run sends `warmup_requests` then `requests`.
    Load(LoadTask),
}

/// Template overrides for one role of an agent workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleTemplates {
    /// Analysis-call template for this role.
    pub analysis_template: String,
    /// Report-call template for this role.
    pub report_template: String,
}

/// The corpus an agent workflow ingests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Corpus {
    /// A deterministic generated corpus of benchmark-like files.
    Generated {
        /// CSV files. Default: 28.
        #[serde(default = "default_csv")]
        csv: u32,
        /// JSON files. Default: 44.
        #[serde(default = "default_json")]
        json: u32,
        /// Markdown files. Default: 29.
        #[serde(default = "default_md")]
        md: u32,
        /// Generator seed. Default: 0.
        #[serde(default)]
        seed: u64,
    },
    /// A real directory (relative paths are relative to the manifest).
    Directory {
        /// Directory path.
        path: String,
    },
    /// No files at all (what TR109 Python and TR116 Rust really ingested).
    Empty,
}

fn default_csv() -> u32 {
    28
}
fn default_json() -> u32 {
    44
}
fn default_md() -> u32 {
    29
}

impl Corpus {
    /// The name of a `generated` corpus, `<csv>-<json>-<md>-<seed>`: the same name, the same
    /// files. `None` for the other kinds.
    pub fn generated_name(&self) -> Option<String> {
        match self {
            Corpus::Generated {
                csv,
                json,
                md,
                seed,
            } => Some(format!("{csv}-{json}-{md}-{seed}")),
            Corpus::Directory { .. } | Corpus::Empty => None,
        }
    }
}

/// A scenario: which agents run, on which endpoints, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario id, referenced by blocks and configurations.
    pub id: String,
    /// What kind of comparison this scenario is.
    pub kind: ScenarioKind,
    /// How the agents run. Default: `sequential` for `single`, `concurrent` otherwise.
    #[serde(default)]
    pub execution: Option<Execution>,
    /// The agents, each bound explicitly to an endpoint.
    pub agents: Vec<AgentBinding>,
}

impl Scenario {
    /// The execution mode with the kind's default applied.
    pub fn effective_execution(&self) -> Execution {
        self.execution.unwrap_or(match self.kind {
            ScenarioKind::Single => Execution::Sequential,
            _ => Execution::Concurrent,
        })
    }
}

/// How the agents of a scenario run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Execution {
    /// One after the other, in the listed order.
    Sequential,
    /// All at once; the wall clock is taken around the join.
    Concurrent,
}

/// One agent of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBinding {
    /// Agent id (`A`, `B`, ...), referenced by configurations and `apply_to`.
    pub id: String,
    /// Role: selects the agent's prompts.
    pub role: Role,
    /// Endpoint id this agent talks to (never a default).
    pub endpoint: String,
    /// Options this agent always sends (e.g. the TR109 chimera agent's `top_p: 0.9`); the
    /// configuration's options are merged over them. Empty and no configuration options:
    /// no `options` field is sent at all (server defaults).
    #[serde(default)]
    pub base_options: Options,
}

/// Ollama model options. An absent field is not sent (the server default applies).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Layers offloaded to the GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_gpu: Option<u32>,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Repetition penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f64>,
    /// Maximum output tokens (`-1` = unlimited). None of the original reports set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i64>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Options {
    /// True when no option is set (nothing is sent).
    pub fn is_empty(&self) -> bool {
        *self == Options::default()
    }

    /// `self` with every field that `over` sets replaced by `over`'s value.
    pub fn merged(&self, over: &Options) -> Options {
        Options {
            num_gpu: over.num_gpu.or(self.num_gpu),
            num_ctx: over.num_ctx.or(self.num_ctx),
            temperature: over.temperature.or(self.temperature),
            top_p: over.top_p.or(self.top_p),
            top_k: over.top_k.or(self.top_k),
            repeat_penalty: over.repeat_penalty.or(self.repeat_penalty),
            num_predict: over.num_predict.or(self.num_predict),
            seed: over.seed.or(self.seed),
        }
    }
}

/// A block of configurations.
///
/// With `configurations`, each enumerated configuration is crossed with the block's `axes`
/// (if any). Without, the block is the full factorial of its `axes`, plus `include`, minus
/// `exclude`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// Block name, for messages and plan summaries.
    #[serde(default)]
    pub name: Option<String>,
    /// Workload id.
    pub workload: String,
    /// Scenario id for every configuration of the block (unless an axis or configuration sets it).
    #[serde(default)]
    pub scenario: Option<String>,
    /// Model id (unless an axis or configuration sets it).
    #[serde(default)]
    pub model: Option<String>,
    /// Runtime (unless an axis or configuration sets it).
    #[serde(default)]
    pub runtime: Option<Runtime>,
    /// Language of the original harness (unless an axis or configuration sets it).
    #[serde(default)]
    pub language: Option<Language>,
    /// Agent ids that receive the block's `options` and option axes.
    #[serde(default)]
    pub apply_to: Vec<String>,
    /// Fixed options for the `apply_to` agents (option axes override them).
    #[serde(default)]
    pub options: Options,
    /// Full-factorial axes.
    #[serde(default)]
    pub axes: Axes,
    /// Extra points added to the factorial (unset axes take the block's values).
    #[serde(default)]
    pub include: Vec<AxisPoint>,
    /// Points removed from the factorial: every point matching all given keys.
    #[serde(default)]
    pub exclude: Vec<AxisPoint>,
    /// Configuration id template, e.g. `gpu{num_gpu}_ctx{num_ctx}_temp{temperature:p}`
    /// (`:p` writes `0.6` as `0p6`; `{id}` is an enumerated configuration's id).
    /// Default: `axis=value` pairs joined with `,` (`{id}@axis=value,...` for enumerated ones).
    #[serde(default)]
    pub id_template: Option<String>,
    /// Enumerated configurations with their published ids.
    #[serde(default)]
    pub configurations: Vec<ExplicitConfig>,
    /// Repetitions for this block (overrides the manifest's).
    #[serde(default)]
    pub repetitions: Option<u32>,
}

/// Declares [`Axes`] (each axis a list of values) and [`AxisPoint`] (one value per axis)
/// from one list of axes: field, value type, and the doc line of each struct's field.
macro_rules! axis_types {
    ($($field:ident: $ty:ty, $axes_doc:literal, $point_doc:literal;)*) => {
        /// Full-factorial axes. An absent axis is not varied; a present one must not be empty.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct Axes {
            $(
                #[doc = $axes_doc]
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<Vec<$ty>>,
            )*
        }

        /// One point (or a partial point, for `exclude`) of a block's axes.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct AxisPoint {
            $(
                #[doc = $point_doc]
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }
    };
}

axis_types! {
    model: String, " Model ids.", " Model id.";
    scenario: String, " Scenario ids.", " Scenario id.";
    runtime: Runtime, " Runtimes.", " Runtime.";
    language: Language, " Languages.", " Language.";
    num_gpu: u32, " `num_gpu` values.", " `num_gpu`.";
    num_ctx: u32, " `num_ctx` values.", " `num_ctx`.";
    temperature: f64, " `temperature` values.", " `temperature`.";
    top_p: f64, " `top_p` values.", " `top_p`.";
    top_k: u32, " `top_k` values.", " `top_k`.";
    repeat_penalty: f64, " `repeat_penalty` values.", " `repeat_penalty`.";
    concurrency: u32, " Closed-loop users of a `load` workload.", " Closed-loop users.";
    rate: f64, " Open-loop requests per second of a `load` workload.", " Open-loop requests per second.";
    input_tokens: u32, " Prompt lengths (tokens) of a `load` workload.", " Prompt length (tokens).";
    output_tokens: u32, " Output lengths (tokens) of a `load` workload.", " Output length (tokens).";
    server: ServerFlags, " Managed-server settings (`{server.NAME}` in the endpoint's `command` and `env`).", " Managed-server settings.";
}

/// An enumerated configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplicitConfig {
    /// Configuration id, as published (e.g. `test011`).
    pub id: String,
    /// Scenario id (overrides the block's).
    #[serde(default)]
    pub scenario: Option<String>,
    /// Model id (overrides the block's).
    #[serde(default)]
    pub model: Option<String>,
    /// Runtime (overrides the block's).
    #[serde(default)]
    pub runtime: Option<Runtime>,
    /// Language (overrides the block's).
    #[serde(default)]
    pub language: Option<Language>,
    /// Options per agent id, merged over the agent's `base_options` and the block's
    /// `options`. An agent not listed sends only its base options.
    #[serde(default)]
    pub options: BTreeMap<String, Options>,
    /// True for a configuration the report lists but whose data does not exist; it is
    /// kept for the record and not planned.
    #[serde(default)]
    pub missing: bool,
    /// Free-text note (provenance only).
    #[serde(default)]
    pub note: Option<String>,
}

/// Warm-up policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WarmupPolicy {
    /// When to warm up. Default: `per_option_set`.
    #[serde(default = "default_warmup_mode")]
    pub policy: WarmupMode,
    /// Requests per warm-up (recorded, excluded from statistics). Default: 1.
    #[serde(default = "default_warmup_requests")]
    pub requests: u32,
    /// Prompt of the warm-up request. Default: `Say OK.`
    #[serde(default = "default_warmup_prompt")]
    pub prompt: String,
}

impl Default for WarmupPolicy {
    fn default() -> Self {
        Self {
            policy: default_warmup_mode(),
            requests: default_warmup_requests(),
            prompt: default_warmup_prompt(),
        }
    }
}

fn default_warmup_mode() -> WarmupMode {
    WarmupMode::PerOptionSet
}
fn default_warmup_requests() -> u32 {
    1
}
fn default_warmup_prompt() -> String {
    "Say OK.".to_owned()
}

/// When warm-up requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WarmupMode {
    /// No warm-up (what every original report did).
    None,
    /// One warm-up per endpoint × model × load-affecting options (`num_gpu`, `num_ctx`).
    PerOptionSet,
}

/// Order of the runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunOrder {
    /// Interleaved (repetition 1 of every configuration, then 2...) or blocked. Default: interleaved.
    #[serde(default)]
    pub mode: OrderMode,
    /// Seed for shuffling configurations within each repetition round; absent: declared order.
    #[serde(default)]
    pub shuffle_seed: Option<u64>,
}

/// Run order mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderMode {
    /// Repetition 1 of every configuration, then repetition 2, ...
    #[default]
    Interleaved,
    /// Every repetition of a configuration before the next configuration (as the originals did).
    Blocked,
}

/// What happens between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BetweenRuns {
    /// Pause before each run, in milliseconds. Default: 0.
    #[serde(default)]
    pub sleep_ms: u64,
    /// Unload the model before each run. Default: false.
    #[serde(default)]
    pub unload_model: bool,
}

/// Retry policy for a failed cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default: 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First backoff delay in milliseconds (doubles each retry). Default: 1000.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Largest backoff delay in milliseconds. Default: 30000.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Randomise each delay by up to ±50 %. Default: true.
    #[serde(default = "default_true")]
    pub jitter: bool,
    /// Error kinds that are retried. Default: connect, timeout, server_error.
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<RetryableError>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: default_retries(),
            backoff_ms: default_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            jitter: true,
            retry_on: default_retry_on(),
        }
    }
}

fn default_retries() -> u32 {
    2
}
fn default_backoff_ms() -> u64 {
    1000
}
fn default_max_backoff_ms() -> u64 {
    30_000
}
fn default_retry_on() -> Vec<RetryableError> {
    vec![
        RetryableError::Connect,
        RetryableError::Timeout,
        RetryableError::ServerError,
    ]
}

/// Error kinds a retry policy can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetryableError {
    /// Connection refused or reset.
    Connect,
    /// Request timed out or stalled.
    Timeout,
    /// HTTP 5xx (including 503 queue full).
    ServerError,
    /// Stream ended early or carried an error line.
    Stream,
}

/// GPU telemetry settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// Where samples come from. Default: `nvml`.
    #[serde(default = "default_telemetry_source")]
    pub source: TelemetrySource,
    /// Sampling period in milliseconds. Default: 100.
    #[serde(default = "default_period_ms")]
    pub period_ms: u64,
    /// Sample PCIe throughput (blocks ~20 ms per call). Default: false.
    #[serde(default)]
    pub pcie: bool,
    /// dcgm-exporter metrics URL, for `source: dcgm`.
    #[serde(default)]
    pub dcgm_url: Option<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            source: default_telemetry_source(),
            period_ms: default_period_ms(),
            pcie: false,
            dcgm_url: None,
        }
    }
}

fn default_telemetry_source() -> TelemetrySource {
    TelemetrySource::Nvml
}
fn default_period_ms() -> u64 {
    100
}

/// Telemetry source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TelemetrySource {
    /// Local GPUs through NVML.
    Nvml,
    /// A remote dcgm-exporter Prometheus endpoint.
    Dcgm,
    /// No telemetry.
    None,
}

/// A published number to reproduce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// Reference id, unique in the manifest.
    pub id: String,
    /// What the number is, in the report's words.
    pub claim: String,
    /// The metric.
    pub metric: Metric,
    /// The statistic taken over the group.
    pub statistic: Statistic,
    /// The percentile (0–100, linear interpolation between closest ranks) for
    /// `statistic: percentile`.
    #[serde(default)]
    pub percentile: Option<f64>,
    /// The level the statistic is taken over. Default: `run`.
    #[serde(default)]
    pub over: Level,
    /// The grouping that produces the number: only rows matching every key count.
    #[serde(default, rename = "where")]
    pub filter: Filter,
    /// The published value.
    pub value: f64,
    /// Unit of the value (`%`, `tok/s`, `ms`, `x`, `runs`...).
    pub unit: String,
    /// Where the number is published (report and section).
    pub source: String,
    /// Absolute tolerance for a `reproduced` verdict, in the value's unit; absent: the CI.
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// The value recomputed from the original raw data, where it differs from the published one.
    #[serde(default)]
    pub data_value: Option<f64>,
    /// Notes on the number (e.g. how prose and data disagree).
    #[serde(default)]
    pub note: Option<String>,
    /// Why no raw data can give this number (e.g. it comes from a run whose data are not in
    /// the repository, or from other data than the ones this report analyses): on imported
    /// data its verdict is `not measured`, with this one-line reason; a campaign chimera
    /// measured is judged as usual.
    #[serde(default)]
    pub not_measurable: Option<String>,
    /// Why no metric of chimera computes this number on any data (e.g. a comparison of two
    /// languages' runs, which the per-configuration metrics cannot express): its verdict is
    /// always `not measured`, with this one-line reason, on imported and measured campaigns.
    #[serde(default)]
    pub never_measurable: Option<String>,
}

/// A grouping filter: only rows whose fields equal every given value count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Configuration id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Scenario id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Model id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// Language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// Agent id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Agent role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Workflow stage of a request (`analysis`, `report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Block `name` of the matrix (e.g. a report's phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<String>,
}
