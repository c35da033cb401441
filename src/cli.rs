//! The command line (clap derive). Parsing only; [`crate::commands`] does the work.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// chimera: reproducible LLM inference performance research.
///
/// Manifests in `experiments/` describe the technical reports; chimera validates them, plans
/// them into a DAG of benchmark cells, and (in later stages) runs, analyses and reports them.
#[derive(Debug, Parser)]
#[command(name = "chimera", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log filter for stderr, e.g. `info` or `chimera=debug` (default: `warn`; env CHIMERA_LOG).
    #[arg(long, global = true, env = "CHIMERA_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of `chimera plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A readable summary: counts per node kind and scenario, estimated requests.
    Text,
    /// Every node with its id, kind, configuration and dependencies, in schedule order.
    Json,
    /// Graphviz `dot`.
    Dot,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests (and the reports they depend on); exit 2 with located errors if invalid.
    Validate(ValidateArgs),
    /// Expand manifests into configurations, cells and the DAG, and print it (a dry run).
    Plan(PlanArgs),
    /// Run manifests into a campaign: resumes what is committed, runs the rest.
    Run(RunArgs),
    /// Show a campaign's progress, its failures and what a resume would do.
    Status(StatusArgs),
    /// Write the hive-partitioned dataset `tables/` of a campaign for notebooks.
    Compact(CompactArgs),
    /// Statistics and reproduction verdicts from campaigns' tables (writes `<campaign>/analysis/`).
    Analyze(AnalyzeArgs),
    /// TR-style Markdown reports with SVG charts and reproduction verdicts.
    Report(ReportArgs),
    /// Campaign B against campaign A, configuration by configuration: each metric's difference
    /// with its 95 % CI and a verdict (faster, slower, no detectable difference).
    Compare(CompareArgs),
    /// Import the original reports' raw results into a campaign (`chimera import chimeraforge`).
    Import(ImportArgs),
    /// A serving-load sweep against one endpoint: closed-loop users or open-loop request
    /// rates, TTFT/ITL/TPOT/latency percentiles, throughput, goodput and the SLO frontier.
    Load(LoadArgs),
    /// Serve the Ollama protocol from a deterministic emulator (a test instrument, not an LLM).
    Emulate(EmulateArgs),
    /// Print the manifest JSON Schema generated from chimera's types (`--agent-record`: the
    /// schema of an agent program's record line, docs/agent-protocol.md).
    Schema {
        /// Print the schema of an agent program's record line instead.
        #[arg(long)]
        agent_record: bool,
    },
    /// GPU telemetry (NVML or dcgm-exporter): `chimera telemetry probe`.
    Telemetry(TelemetryArgs),
    /// A campaign's shards as a Slurm job array, and a report job after them.
    Slurm(SlurmArgs),
    /// A campaign's shards as a Kubernetes Indexed Job (printed, not applied).
    K8s(K8sArgs),
}

/// Arguments of `chimera slurm`.
#[derive(Debug, clap::Args)]
pub struct SlurmArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SlurmAction,
}

/// `chimera slurm` subcommands.
#[derive(Debug, Subcommand)]
pub enum SlurmAction {
    /// Write the job scripts into `<DATA>/<CAMPAIGN>/slurm/`, submit one array task per shard
    /// and a report job that runs once every shard has succeeded; print their job ids.
    Submit(SlurmSubmitArgs),
    /// Submit again the shards that are neither done nor running (failed, cancelled, killed,
    /// never started), and a new report job after them.
    Resubmit(SlurmResubmitArgs),
}

/// Arguments of `chimera slurm submit`.
#[derive(Debug, clap::Args)]
pub struct SlurmSubmitArgs {
    /// The manifests.
    #[command(flatten)]
    pub files: ManifestFiles,
    /// The data directory (on a filesystem every node shares).
    #[command(flatten)]
    pub store: StoreDir,
    /// The campaign and its shards (array tasks, each `chimera run --shard
    /// $SLURM_ARRAY_TASK_ID/N`).
    #[command(flatten)]
    pub sharding: Sharding,
    /// Slurm partition.
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// Generic resources per shard, e.g. `gpu:1`.
    #[arg(long, value_name = "GRES")]
    pub gres: Option<String>,
    /// Time limit per shard, e.g. `02:00:00`.
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// Task I runs with `--port-offset I × K`, so tasks that share a node do not collide on
    /// their managed servers' ports; 0 when every task has a node of its own.
    #[arg(long, value_name = "K", default_value_t = 100)]
    pub port_offset_step: u16,
    /// A further sbatch option for every job, e.g. `--account=lab` (repeatable).
    #[arg(long = "sbatch-arg", value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Print the job scripts; write and submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A sharded campaign on a cluster: its name, its shard count and what a shard keeps together
/// (`slurm submit`, `k8s manifest`).
#[derive(Debug, clap::Args)]
pub struct Sharding {
    /// Campaign name (default: the manifests' file stems joined with `+`).
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// Shards: one Slurm array task (`--shard $SLURM_ARRAY_TASK_ID/N`) or one Kubernetes pod
    /// (`--shard $JOB_COMPLETION_INDEX/N`) each.
    #[arg(long, value_name = "N")]
    pub shards: u32,
    /// What a shard keeps together (see `chimera run --shard-by`).
    #[arg(long, value_enum, default_value_t = crate::plan::ShardBy::Comparison)]
    pub shard_by: crate::plan::ShardBy,
}

/// Arguments of `chimera slurm resubmit`.
#[derive(Debug, clap::Args)]
pub struct SlurmResubmitArgs {
    /// The campaign.
    #[command(flatten)]
    pub select: CampaignSelect,
    /// Only these shards (repeatable; default: every shard neither done nor running).
    #[arg(long = "shard", value_name = "I")]
    pub shards: Vec<u32>,
    /// Say which shards would be submitted; submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `chimera k8s`.
#[derive(Debug, clap::Args)]
pub struct K8sArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: K8sAction,
}

/// `chimera k8s` subcommands.
#[derive(Debug, Subcommand)]
pub enum K8sAction {
    /// Print a ConfigMap with the manifests and an Indexed Job with one pod per shard
    /// (`--shard $JOB_COMPLETION_INDEX/N`) on a shared volume claim; `--report` prints the job
    /// that reports once they completed.
    Manifest(K8sManifestArgs),
}

/// Arguments of `chimera k8s manifest`.
#[derive(Debug, clap::Args)]
pub struct K8sManifestArgs {
    /// The manifests.
    #[command(flatten)]
    pub files: ManifestFiles,
    /// The campaign and its shards (the Job's completions, one pod each).
    #[command(flatten)]
    pub sharding: Sharding,
    /// Container image with `chimera` on PATH (and the servers the manifests manage).
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// PersistentVolumeClaim (ReadWriteMany) every pod mounts: the data directory.
    #[arg(long, value_name = "NAME", default_value = "chimera-data")]
    pub claim: String,
    /// Where the claim is mounted in the pods (the data directory there).
    #[arg(long, value_name = "PATH", default_value = "/data")]
    pub data_mount: String,
    /// GPUs per shard (`nvidia.com/gpu`).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub gpus: u32,
    /// Namespace of the objects.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Print the report Job (apply it once the shard Job has completed) instead.
    #[arg(long)]
    pub report: bool,
}

/// The manifest files a command reads (`validate`, `plan`, `run`).
#[derive(Debug, clap::Args)]
pub struct ManifestFiles {
    /// Manifest files.
    #[arg(required = true, value_name = "MANIFEST")]
    pub manifests: Vec<PathBuf>,
}

/// A campaign store to write into: `--data` (`run`, `import chimeraforge`).
#[derive(Debug, clap::Args)]
pub struct StoreDir {
    /// Data directory; the campaign lives in `<DATA>/<CAMPAIGN>/`.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
}

/// One campaign of a data directory: `--data` and `--campaign` (`status`, `compact`).
#[derive(Debug, clap::Args)]
pub struct CampaignSelect {
    /// Data directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Campaign name (optional when the data directory holds one campaign).
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
}

/// The campaigns and reports an analysis reads: `--data`, `--campaign` and `--report`
/// (`analyze`, `report`).
#[derive(Debug, clap::Args)]
pub struct DatasetSelect {
    /// A data directory (every campaign in it) or one campaign directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Only this campaign of the data directory.
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// Only this report (`TR114`, `tr114` and `TR114_v2` all match TR114_v2).
    #[arg(long, value_name = "TRNNN")]
    pub report: Option<String>,
    /// Keep suspect cells (a self-check failed while they ran) in the statistics; by
    /// default they are left out and listed in the report.
    #[arg(long)]
    pub include_suspect: bool,
}

/// Arguments of `chimera validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The manifests.
    #[command(flatten)]
    pub files: ManifestFiles,
}

/// Arguments of `chimera plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The manifests.
    #[command(flatten)]
    pub files: ManifestFiles,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Show the full key of the node whose id starts with this prefix.
    #[arg(long, value_name = "ID_PREFIX", conflicts_with = "format")]
    pub explain: Option<String>,
}

/// Arguments of `chimera emulate`.
#[derive(Debug, clap::Args)]
pub struct EmulateArgs {
    /// Address to listen on (repeatable; port 0 picks a free port). Default: 127.0.0.1:11434.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<std::net::SocketAddr>,
    /// Profile YAML (models, timing, faults). Default: one model `gemma3:270m` with defaults.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Append one JSON line of ground truth per finished generate/chat request to this file.
    #[arg(long, value_name = "FILE.jsonl")]
    pub truth: Option<PathBuf>,
    /// Worker threads of the emulator. One keeps its ground truth tight: a request is read,
    /// and its chunks written, by the thread that also notes their times, with no hand-over
    /// between threads whose delay the truth would miss (one thread serves about 10,000
    /// requests per second of 16 chunks). More threads serve more, with looser truth.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub worker_threads: usize,
}

/// Arguments of `chimera telemetry`.
#[derive(Debug, clap::Args)]
pub struct TelemetryArgs {
    /// The telemetry subcommand.
    #[command(subcommand)]
    pub command: TelemetryCommand,
}

/// Subcommands of `chimera telemetry`.
#[derive(Debug, Subcommand)]
pub enum TelemetryCommand {
    /// Show the GPUs, which readings work on each, and the cost of one sample (exit 0 without
    /// a GPU: the telemetry columns are then null).
    Probe {
        /// Also read PCIe throughput (blocks ~20 ms per call and GPU).
        #[arg(long)]
        pcie: bool,
        /// Read a dcgm-exporter endpoint instead of local NVML, e.g. `http://host:9400/metrics`.
        #[arg(long, value_name = "URL")]
        dcgm: Option<String>,
    },
}

/// Arguments of `chimera run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The manifests.
    #[command(flatten)]
    pub files: ManifestFiles,
    /// The data directory.
    #[command(flatten)]
    pub store: StoreDir,
    /// Campaign name (default: the manifests' file stems joined with `+`).
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// Run committed cells again: `all`, a cell-id prefix, `config=<id>`, `report=<id>`,
    /// `kind=<kind>` (repeatable). Forced cells are measured again: the shared cache is not
    /// consulted in that run.
    #[arg(long, value_name = "SELECTOR")]
    pub force: Vec<crate::run::ForceSelector>,
    /// Stop at the first cell that fails for good.
    #[arg(long)]
    pub fail_fast: bool,
    /// Do not reuse cells from the shared cache (`<DATA>/.cache`).
    #[arg(long)]
    pub no_cache: bool,
    /// Before resuming, check every committed part's SHA-256 (not only its size): cells that
    /// fail are set aside as `cells/.broken-<id>-<n>/` and measured again (what
    /// `chimera status --verify` predicts).
    #[arg(long)]
    pub verify: bool,
    /// Time limit per cell attempt, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub cell_timeout: Option<f64>,
    /// Directory for generated corpora (default: `<DATA>/.work`).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Use the servers already listening at the endpoints' URLs: do not start the manifests'
    /// `managed` servers (nor pull models into them). For a manifest that declares managed
    /// servers run against servers started another way (e.g. `chimera emulate`).
    #[arg(long)]
    pub unmanaged: bool,
    /// Run one shard of the plan: I/N, I from 0 to N-1 (Slurm: `$SLURM_ARRAY_TASK_ID/N`,
    /// Kubernetes: `$JOB_COMPLETION_INDEX/N`). Shards of one campaign share its directory on a
    /// shared filesystem; `status`, `analyze` and `report` see them as one campaign.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::plan::ShardSpec>,
    /// What a shard keeps together: a concurrent cell with its isolated baselines
    /// (`comparison`), or every repetition of a configuration (`configuration`). Every shard
    /// of a campaign must be given the same.
    #[arg(long, value_enum, default_value_t = crate::plan::ShardBy::Comparison, requires = "shard")]
    pub shard_by: crate::plan::ShardBy,
    /// Managed servers on this host listen this many ports above their manifest URL (for
    /// shards that share a machine); cell ids keep the manifest's URL.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub port_offset: u16,
}

/// Arguments of `chimera status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The campaign.
    #[command(flatten)]
    pub select: CampaignSelect,
    /// Recompute every part's SHA-256 (slower).
    #[arg(long)]
    pub verify: bool,
    /// Exit 1 when cells remain to run (for scripts: the report job of `chimera slurm`).
    #[arg(long)]
    pub require_complete: bool,
}

/// Arguments of `chimera analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The campaigns and reports.
    #[command(flatten)]
    pub select: DatasetSelect,
    /// Print every verdict, not only the ones that were not reproduced.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Arguments of `chimera report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The campaigns and reports.
    #[command(flatten)]
    pub select: DatasetSelect,
    /// Where to write (default: `<campaign>/report/`); one sub-directory per campaign when
    /// several campaigns are reported.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to write: `markdown` (`<REPORT>.md` and `figures/*.svg`), `html` (one
    /// self-contained `<REPORT>.html`: charts inline, sortable tables, hover values), or both
    /// (`--format markdown,html`).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        num_args = 1..,
        default_value = "markdown"
    )]
    pub format: Vec<ReportFormat>,
}

/// A file format of `chimera report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// `<REPORT>.md` with its charts in `figures/`.
    Markdown,
    /// `<REPORT>.html`, one self-contained page.
    Html,
}

/// Output format of `chimera compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// A table for the terminal.
    Text,
    /// A Markdown section.
    Markdown,
    /// The comparison as JSON.
    Json,
}

/// Arguments of `chimera compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Campaign A (the baseline): a campaign directory, or a campaign name under --data.
    pub a: String,
    /// Campaign B (compared against A).
    pub b: String,
    /// Data directory the names are looked up in.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    pub format: CompareFormat,
    /// Exit 1 when B is slower than A by more than PCT % on any speed metric (wall time,
    /// TTFT, throughput) whose 95 % CI excludes no difference (for CI pipelines).
    #[arg(long, value_name = "PCT")]
    pub fail_if_slower: Option<f64>,
}

/// Arguments of `chimera load`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("levels").required(true).args(["users", "rate", "trace"])))]
#[command(group(clap::ArgGroup::new("until").args(["requests", "duration_s"])))]
pub struct LoadArgs {
    /// The server's base URL, e.g. http://127.0.0.1:8080.
    pub url: String,
    /// Model to ask for.
    #[arg(long)]
    pub model: String,
    /// Protocol: `openai` (llama-server, vLLM) or `ollama`.
    #[arg(long, default_value = "openai")]
    pub kind: String,
    /// Closed loop: these numbers of concurrent users (a list: 1,4,16,64).
    #[arg(long, value_delimiter = ',', value_name = "N,…")]
    pub users: Vec<u32>,
    /// Open loop: these request rates per second (a list: 5,10,20).
    #[arg(long, value_delimiter = ',', value_name = "R,…")]
    pub rate: Vec<f64>,
    /// Open loop: Poisson arrivals with this seed (constant spacing without).
    #[arg(long, value_name = "SEED")]
    pub poisson: Option<u64>,
    /// Open loop: replay this trace (JSONL: `{"timestamp": MS, "input_length": TOKENS,
    /// "output_length": TOKENS}` per line) with its timing and lengths.
    #[arg(long, value_name = "FILE.jsonl")]
    pub trace: Option<std::path::PathBuf>,
    /// With --trace: replay at these speeds (2: twice as fast), one level each.
    #[arg(long, value_delimiter = ',', value_name = "X,…", default_value = "1")]
    pub trace_speed: Vec<f64>,
    /// Each load sends this many requests (warm-up included; with --trace, at most this many
    /// of the trace's).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Each load lasts this long, seconds.
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// The first requests of each load are warm-up, left out of the metrics.
    #[arg(long, default_value_t = 0)]
    pub warmup_requests: u64,
    /// Repetitions of every level (interleaved), for CIs.
    #[arg(long, default_value_t = 3)]
    pub repetitions: u32,
    /// Prompt length in the server's tokens (calibrated on the server: its `/tokenize` and one
    /// probe request, or two probe requests where it has none).
    #[arg(long)]
    pub input_tokens: Option<u32>,
    /// Output length to force (`max_tokens` + `ignore_eos` on OpenAI-compatible servers;
    /// Ollama can only cap it).
    #[arg(long)]
    pub output_tokens: Option<u32>,
    /// A service-level objective, `METRIC<=MS[@pP]` with METRIC one of ttft_ms, tpot_ms,
    /// itl_ms, e2e_ms (repeatable; the percentile defaults to p99): e.g. `ttft_ms<=500@p99`.
    #[arg(long, value_name = "SLO")]
    pub slo: Vec<String>,
    /// Chat API instead of completions/generate.
    #[arg(long)]
    pub chat: bool,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub timeout_s: f64,
    /// Draw the prompts with this nonce (default: a new one per run, printed in the JSON), so
    /// that a second run can send the very same prompts.
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LoadFormat::Text)]
    pub format: LoadFormat,
}

/// Output format of `chimera load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadFormat {
    /// A table for the terminal and the frontier.
    Text,
    /// The sweep's result as JSON (every repetition's summary included).
    Json,
}

/// Arguments of `chimera import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Where the raw results come from.
    #[command(subcommand)]
    pub source: ImportSource,
}

/// Sources `chimera import` understands.
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// The raw files of the original harnesses (public repository `Chimeraforge`): one
    /// report's folder, e.g. `tr114_v2/` (`<scenario>/<testNNN>/run_k/metrics.json`), or every
    /// report's raw results straight from a clone of the repository (`--git`).
    #[command(
        override_usage = "chimera import chimeraforge <DIR> [--report TRNNN] [OPTIONS]\n       chimera import chimeraforge --git <REPO> [--report TRNNN] [--data DIR]"
    )]
    Chimeraforge(ChimeraforgeArgs),
}

/// Arguments of `chimera import chimeraforge`.
#[derive(Debug, clap::Args)]
pub struct ChimeraforgeArgs {
    /// The folder holding one report's raw files; for a report that compares others (TR112:
    /// TR109 + TR111_v2), the folder holding one folder per report (`tr109/`, `tr111_v2/`).
    #[arg(
        value_name = "DIR",
        required_unless_present_any = ["git", "from"],
        conflicts_with = "git"
    )]
    pub dir: Option<PathBuf>,
    /// Read every report's raw results straight from a clone (bare or not) of the original
    /// repository, at the commits that hold them (no checkout); one campaign per report. A
    /// report that fails is listed and the others go on; the exit code is non-zero only when
    /// none imported.
    #[arg(long, value_name = "REPO")]
    pub git: Option<PathBuf>,
    /// For a report that compares others (TR112): the raw-data folder of one report it
    /// depends on, as REPORT=DIR (repeatable; overrides the folder found in DIR).
    #[arg(long = "from", value_name = "REPORT=DIR", conflicts_with = "git")]
    pub from: Vec<String>,
    /// The report (`TR114`, `tr114` and `TR114_v2` all mean TR114_v2); selects the layout and,
    /// unless --manifest is given, the manifest `experiments/<trNNN>.yaml`. Without it, the
    /// folder's layout says which report it is. With --git: only this report.
    #[arg(long, value_name = "TRNNN")]
    pub report: Option<String>,
    /// The report's manifest (default: `experiments/<trNNN>.yaml`).
    #[arg(long, value_name = "PATH", conflicts_with = "git")]
    pub manifest: Option<PathBuf>,
    /// The data directory.
    #[command(flatten)]
    pub store: StoreDir,
    /// Campaign name (default: `chimeraforge-<manifest file stem>`).
    #[arg(long, value_name = "NAME", conflicts_with = "git")]
    pub campaign: Option<String>,
}

/// Arguments of `chimera compact`.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// The campaign.
    #[command(flatten)]
    pub select: CampaignSelect,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
