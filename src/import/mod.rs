//! `chimera import`: the original harnesses' raw results converted into chimera's tables.
//!
//! `chimera import chimeraforge <DIR> --report TR114` reads the raw files the original
//! harnesses wrote (the public `Chimeraforge` repository, tr-spec §2–§8), maps every recorded
//! run onto the planned cell of the report's manifest (configuration id × repetition), and
//! commits it into a campaign with the ordinary store, so that the analysis stage reads
//! imported and measured campaigns the same way. The campaign's `campaign.json` records the
//! origin, so imported numbers are never taken for new measurements, and an import never
//! writes into a measured campaign.
//!
//! The whole tree is read and validated first; nothing is written unless every file is
//! understood. Layouts, one per harness (the manifest's report id selects it):
//!
//! | report | harness | files |
//! |---|---|---|
//! | TR114_v2 (TR113, TR115, TR116 when ids match) | H6v2 Rust multi-agent | `<scenario>/<testNNN>/run_k/metrics.json` |
//! | TR110 | H3 Python multi-agent | `phase_N_test_NNN/run_k/metrics.json` |
//! | TR111_v2 | H5 Rust single agent | `<config>/data/metrics.json` |
//! | TR109 | H2 Python single agent | `run_<config>/data/metrics.json` |
//! | TR108 | H1 CSVs | `llama3/*.csv`, `gemma3/*.csv` |
//!
//! What the sources did not record stays empty: `None` where the column is nullable, and
//! `NaN` ("not recorded") in the few non-nullable float columns (the per-agent SDs of the
//! Python formats, which kept only means; TR108's durations). Published metrics are
//! recomputed with [`crate::metrics`] from the recorded agent durations and wall time, exactly
//! as the original code did, and compared with the values stored in the files: every
//! disagreement is a warning in the summary.

mod csv;
pub(crate) mod h6;
mod raw;
pub(crate) mod single;
mod time;
pub(crate) mod tr108;
pub(crate) mod tr110;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use petgraph::graph::NodeIndex;
use serde::de::DeserializeOwned;

use crate::backend::RequestRecord;
use crate::manifest::Options;
use crate::metrics::{self, AgentAggregate};
use crate::plan::{Configuration, NodeKind, Plan, PlanError};
use crate::record::{
    AgentRun, CellKey, CellKind, CellMeta, CellRecord, MultiAgentMetrics, RequestRow,
};
use crate::store::{
    Campaign, CampaignInfo, CommitOutcome, DataOrigin, JournalEvent, ManifestEntry, StoreError,
};
use crate::table::TableError;

/// What to import, and where to.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The directory holding the raw files of one report (e.g. `…/tr114_v2`).
    pub source: PathBuf,
    /// The report's manifest (e.g. `experiments/tr114.yaml`).
    pub manifest: PathBuf,
    /// Data directory; the campaign lives in `<data>/<campaign>/`.
    pub data: PathBuf,
    /// Campaign name (default `chimeraforge-<manifest file stem>`).
    pub campaign: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// Report id of the manifest.
    pub report: String,
    /// Campaign name.
    pub campaign: String,
    /// `<data>/<campaign>`.
    pub campaign_dir: PathBuf,
    /// The layout recognised (harness and file pattern).
    pub layout: String,
    /// Raw files read (runs and the summaries used for cross-checks).
    pub files: u64,
    /// Runs imported (one planned cell each).
    pub runs: u64,
    /// Cells committed by this import.
    pub committed: u64,
    /// Cells that were already committed (a re-import): counted, not rewritten.
    pub already_committed: u64,
    /// Runs per configuration id.
    pub per_config: BTreeMap<String, u64>,
    /// Layout-specific facts worth knowing (rows per file, files not imported and why).
    pub notes: Vec<String>,
    /// Disagreements between recomputed and stored values, options that differ from the
    /// manifest, timestamps without a time zone…: never silently ignored.
    pub warnings: Vec<String>,
}

/// Why an import stopped. Every message names the file (and the JSON key or CSV line) and
/// says what to change; nothing is written when any of these occurs before the commit.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] PlanError),
    /// `--report` names no manifest, or the manifest declares another report.
    #[error("{message}\n  = help: {help}")]
    Report {
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// No chimeraforge layout is known for the manifest's report.
    #[error(
        "report `{report}` (`{}`) has no chimeraforge raw-data layout\n  = expected: one of TR108, TR109, TR110, TR111_v2, TR113, TR114_v2, TR115_v2, TR116\n  = help: {help}",
        .manifest.display()
    )]
    UnsupportedReport {
        /// Report id.
        report: String,
        /// Manifest.
        manifest: PathBuf,
        /// What to do.
        help: String,
    },
    /// A file or directory could not be read.
    #[error("cannot read `{}`: {source}", .path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// A raw-data path is not a regular file (a FIFO, a device, a socket, a directory, or a
    /// symlink to one of them): it is never opened for reading.
    #[error(
        "cannot read `{}`: not a regular file (it is {kind})\n  = help: raw results are plain files; replace it with the file from the original repository, or move it out of the directory",
        .path.display()
    )]
    NotRegularFile {
        /// Path.
        path: PathBuf,
        /// What it is instead (`a FIFO (named pipe)`, `a character device`…).
        kind: &'static str,
    },
    /// A raw-data file is larger than any raw result.
    #[error(
        "cannot read `{}`: it is {size} bytes, over the limit of {limit} bytes for one raw-data file\n  = help: the original raw files are a few MiB at most; this is not one of them: restore it from the original repository, or move it out of the directory",
        .path.display()
    )]
    FileTooLarge {
        /// Path.
        path: PathBuf,
        /// Its size (or the bytes read before the limit was passed).
        size: u64,
        /// The limit (256 MiB).
        limit: u64,
    },
    /// The directory does not look like the report's layout.
    #[error(
        "`{}` does not look like the {layout} raw data of {report}\n  = expected: {expected}\n  = found: {found}\n  = help: {help}",
        .dir.display()
    )]
    Layout {
        /// The directory given.
        dir: PathBuf,
        /// Report id.
        report: String,
        /// Layout name.
        layout: String,
        /// What was expected.
        expected: String,
        /// What is there.
        found: String,
        /// What to do.
        help: String,
    },
    /// A JSON file is not valid JSON (truncated, damaged).
    #[error(
        "`{}`: not valid JSON at line {line}, column {column}: {message}\n  = help: the file is truncated or damaged; restore it from the original repository (tr-spec §0.2 names the commit)",
        .path.display()
    )]
    Json {
        /// File.
        path: PathBuf,
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// serde_json's message.
        message: String,
    },
    /// A JSON key is missing or has the wrong type.
    #[error("`{}`: key `{key}`: {message}\n  = help: {help}", .path.display())]
    Key {
        /// File.
        path: PathBuf,
        /// Key path, e.g. `collector.result.llm_calls[0].metrics`.
        key: String,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A CSV file or line cannot be used.
    #[error("`{}`: line {line}: {message}\n  = help: {help}", .path.display())]
    Csv {
        /// File.
        path: PathBuf,
        /// Line (1-based; 1 is the header).
        line: usize,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A folder (or file) names a configuration, scenario or test the manifest does not have.
    #[error(
        "`{}`: {what} `{id}` is not in {report} (`{}`)\n  = expected one of: {expected}\n  = help: {help}",
        .path.display(), .manifest.display()
    )]
    UnknownId {
        /// The folder or file.
        path: PathBuf,
        /// "test folder", "scenario folder", "configuration folder"…
        what: &'static str,
        /// The id found.
        id: String,
        /// Report id.
        report: String,
        /// Manifest.
        manifest: PathBuf,
        /// The ids the manifest has.
        expected: String,
        /// What to do.
        help: String,
    },
    /// A run number outside the manifest's repetitions.
    #[error(
        "`{}`: run {found} of `{config}` is outside 1..={max} (the manifest's repetitions)\n  = help: raise `repetitions` for this configuration in `{}`, or remove the run",
        .path.display(), .manifest.display()
    )]
    RunNumber {
        /// File.
        path: PathBuf,
        /// Configuration id.
        config: String,
        /// Run number found.
        found: u32,
        /// Repetitions planned.
        max: u32,
        /// Manifest.
        manifest: PathBuf,
    },
    /// Two files are the same run of the same configuration.
    #[error(
        "`{}` and `{}` are both run {repetition} of `{config}`\n  = help: keep one of them (move the other out of the directory)",
        .first.display(), .second.display()
    )]
    Duplicate {
        /// First file.
        first: PathBuf,
        /// Second file.
        second: PathBuf,
        /// Configuration id.
        config: String,
        /// Run number.
        repetition: u32,
    },
    /// A file whose content or name this importer does not understand.
    #[error("`{}`: {message}\n  = help: {help}", .path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// The target campaign holds measured cells.
    #[error(
        "campaign `{name}` (`{}`) holds measured cells: its campaign.json has no `origin`, and imported runs are never mixed with measured ones\n  = help: pass --campaign with another name (the default is `chimeraforge-<manifest stem>`)",
        .dir.display()
    )]
    MeasuredCampaign {
        /// Campaign name.
        name: String,
        /// Its directory.
        dir: PathBuf,
    },
    /// The store refused (lock held, unwritable, newer format…).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cell's tables could not be encoded.
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The layouts of the original raw data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    H6,
    Tr110,
    Tr111,
    Tr109,
    Tr108,
}

impl Layout {
    fn of_report(report: &str) -> Option<Layout> {
        let r = report.to_ascii_uppercase();
        let base = r.split('_').next().unwrap_or("");
        Some(match base {
            "TR108" => Layout::Tr108,
            "TR109" => Layout::Tr109,
            "TR110" => Layout::Tr110,
            "TR111" => Layout::Tr111,
            "TR113" | "TR114" | "TR115" | "TR116" => Layout::H6,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Layout::H6 => "H6v2 Rust multi-agent (<scenario>/<testNNN>/run_k/metrics.json)",
            Layout::Tr110 => "H3 Python multi-agent (phase_N_test_NNN/run_k/metrics.json)",
            Layout::Tr111 => "H5 Rust single agent (<config>/data/metrics.json)",
            Layout::Tr109 => "H2 Python single agent (run_<config>/data/metrics.json)",
            Layout::Tr108 => "H1 TR108 CSVs (llama3/*.csv, gemma3/*.csv)",
        }
    }
}

/// One run read from the source, mapped onto its planned cell.
pub(crate) struct Imported {
    /// The file it came from, relative to the source directory.
    pub(crate) file: PathBuf,
    pub(crate) record: CellRecord,
}

/// Shared state of one import: the plan, the report, the source, and what was learned.
pub(crate) struct Ctx<'a> {
    pub(crate) plan: &'a Plan,
    /// Index of the imported report in `plan.reports`.
    pub(crate) ri: usize,
    pub(crate) source: &'a Path,
    pub(crate) layout: Layout,
    /// (config index, repetition) → the planned single/concurrent node.
    pub(crate) nodes: HashMap<(usize, u32), NodeIndex>,
    pub(crate) files: u64,
    pub(crate) warnings: Vec<String>,
    pub(crate) warned: HashSet<String>,
    pub(crate) notes: Vec<String>,
    /// Timestamps without a time zone were read (taken as UTC).
    pub(crate) naive_times: u64,
    /// Cells without any recorded start time.
    pub(crate) no_start: u64,
}

impl<'a> Ctx<'a> {
    fn report(&self) -> &str {
        &self.plan.reports[self.ri].report
    }

    fn manifest_path(&self) -> &Path {
        &self.plan.reports[self.ri].manifest.path
    }

    fn spec(&self) -> &crate::manifest::ManifestSpec {
        &self.plan.reports[self.ri].manifest.spec
    }

    fn configs(&self) -> &'a [Configuration] {
        &self.plan.configs[self.plan.reports[self.ri].configs.clone()]
    }

    /// Path relative to the source directory, for messages and provenance.
    fn rel(&self, p: &Path) -> PathBuf {
        p.strip_prefix(self.source).unwrap_or(p).to_path_buf()
    }

    fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }

    /// A warning given once per `key`.
    fn warn_once(&mut self, key: String, msg: String) {
        if self.warned.insert(key) {
            self.warnings.push(msg);
        }
    }

    /// The expected configuration ids, for messages.
    fn expected_ids(&self) -> String {
        let ids: Vec<&str> = self.configs().iter().map(|c| &*c.id).collect();
        list(&ids)
    }

    /// The configuration with this id, or an error naming the folder and the expected ids.
    fn config(&self, id: &str, path: &Path, what: &'static str) -> Result<usize, ImportError> {
        let rp = &self.plan.reports[self.ri];
        if let Some(i) = self.configs().iter().position(|c| &*c.id == id) {
            return Ok(rp.configs.start + i);
        }
        let help = if rp.missing.iter().any(|m| m == id) {
            format!(
                "the manifest declares `{id}` `missing: true` (no data in the original); remove that line to import it"
            )
        } else {
            match crate::manifest::diagnostic::nearest(id, self.configs().iter().map(|c| &*c.id)) {
                Some(n) => format!(
                    "did you mean `{n}`? Rename the folder, or add the configuration to the manifest"
                ),
                None => {
                    "point at the raw data of this report, or add the configuration to the manifest"
                        .to_owned()
                }
            }
        };
        Err(ImportError::UnknownId {
            path: path.to_path_buf(),
            what,
            id: id.to_owned(),
            report: self.report().to_owned(),
            manifest: self.manifest_path().to_path_buf(),
            expected: self.expected_ids(),
            help,
        })
    }

    /// The planned cell of (configuration, repetition).
    fn node(&self, ci: usize, rep: u32, path: &Path) -> Result<NodeIndex, ImportError> {
        let c = &self.plan.configs[ci];
        match self.nodes.get(&(ci, rep)) {
            Some(&ni) if rep >= 1 && rep <= c.repetitions => Ok(ni),
            _ => Err(ImportError::RunNumber {
                path: path.to_path_buf(),
                config: c.id.to_string(),
                found: rep,
                max: c.repetitions,
                manifest: self.manifest_path().to_path_buf(),
            }),
        }
    }

    fn model_tag(&self, c: &Configuration) -> Option<String> {
        self.spec()
            .models
            .iter()
            .find(|m| *m.id == *c.model)
            .map(|m| m.tag.clone())
    }

    /// An agent run of configuration `ci`'s agent `ai`.
    #[allow(clippy::too_many_arguments)]
    fn agent(
        &self,
        ci: usize,
        ai: usize,
        isolated: bool,
        options: Options,
        duration_ms: f64,
        files_ingested: Option<u32>,
        aggregate: AgentAggregate,
        requests: Vec<RequestRow>,
    ) -> AgentRun {
        let a = &self.plan.configs[ci].agents[ai];
        AgentRun {
            agent: a.id.to_string(),
            role: a.role,
            endpoint: self.spec().endpoints[a.endpoint].id.clone(),
            isolated,
            options,
            duration_ms,
            files_ingested,
            server_version: None,
            model_digest: None,
            aggregate,
            requests,
        }
    }

    /// The agent index of configuration `ci` with this id (or, failing that, this role name).
    fn agent_index(&self, ci: usize, name: &str, path: &Path) -> Result<usize, ImportError> {
        let c = &self.plan.configs[ci];
        c.agents
            .iter()
            .position(|a| &*a.id == name)
            .or_else(|| {
                c.agents
                    .iter()
                    .position(|a| role_name(a.role).eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| ImportError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "the file holds agent `{name}`, but configuration `{}` of the manifest has agents {}",
                    c.id,
                    list(&c.agents.iter().map(|a| &*a.id).collect::<Vec<_>>())
                ),
                help: format!(
                    "use the manifest of this report; `{}` names agents `baseline` and `chimera`",
                    self.manifest_path().display()
                ),
            })
    }

    /// Options recorded by the source, compared with the plan's (a difference is a warning,
    /// given once per configuration and agent); the recorded ones are imported.
    fn recorded_options(
        &mut self,
        ci: usize,
        ai: usize,
        recorded: &serde_json::Map<String, serde_json::Value>,
        path: &Path,
        key: &str,
    ) -> Result<Options, ImportError> {
        let opts = options_from_json(recorded, path, key)?;
        let planned = self.plan.configs[ci].agents[ai].options.clone();
        if !same_options(&opts, &planned) {
            let c = &self.plan.configs[ci];
            let (cid, aid) = (c.id.to_string(), c.agents[ai].id.to_string());
            let msg = format!(
                "{}: {cid} agent {aid} recorded options {} but the manifest plans {}; the recorded options are imported (first seen in `{}`)",
                self.report(),
                options_text(&opts),
                options_text(&planned),
                self.rel(path).display()
            );
            self.warn_once(format!("options {cid} {aid}"), msg);
        }
        Ok(opts)
    }

    /// A cell record for planned node `ni` (published metrics for concurrent cells are
    /// recomputed by [`Ctx::publish`]).
    fn record(
        &mut self,
        ni: NodeIndex,
        agents: Vec<AgentRun>,
        wall_ms: f64,
        started_at_unix_ms: f64,
    ) -> CellRecord {
        let node = &self.plan.graph[ni];
        let c = self.plan.cell_config(node);
        if !started_at_unix_ms.is_finite() {
            self.no_start += 1;
        }
        let key = CellKey {
            cell_id: node.id.hex(),
            kind: CellKind::of(node.kind).expect("runs are imported into cell nodes"),
            report: self.report().to_owned(),
            config: Some(c.id.to_string()),
            scenario: Some(c.scenario.to_string()),
            repetition: node.repetition,
            model: self.model_tag(c),
        };
        CellRecord::new(key, agents, wall_ms, started_at_unix_ms)
    }

    /// Recomputes the published speedup, efficiency and contention of a concurrent cell from
    /// its agents' durations and wall (tr-spec §1.5) and compares them with the stored values.
    fn publish(
        &mut self,
        rec: &mut CellRecord,
        stored_efficiency_pct: Option<f64>,
        stored_contention: Option<bool>,
        path: &Path,
    ) {
        let m =
            MultiAgentMetrics::published(&rec.agents, rec.wall_ms, metrics::CONTENTION_THRESHOLD);
        let (efficiency, contention) = (m.published_efficiency_pct, m.contention);
        rec.multi_agent = Some(m);
        let file = self.rel(path);
        if let (Some(mine), Some(theirs)) = (efficiency, stored_efficiency_pct)
            && ((mine - theirs).abs() > EFFICIENCY_TOLERANCE_PP || !mine.is_finite())
        {
            self.warn(format!(
                "`{}`: recomputed published efficiency {mine:.4} % differs from the stored {theirs:.4} % by {:.4} pp (more than {EFFICIENCY_TOLERANCE_PP} pp); the recomputed value is imported",
                file.display(),
                (mine - theirs).abs()
            ));
        }
        if let (Some(mine), Some(theirs)) = (contention, stored_contention)
            && mine != theirs
        {
            self.warn(format!(
                "`{}`: recomputed contention flag {mine} (speedup < {}) differs from the stored {theirs}; the recomputed flag is imported",
                file.display(),
                metrics::CONTENTION_THRESHOLD
            ));
        }
    }

    /// Milliseconds of the ISO-8601 `text` stored at `key` of `path` (a text without a time
    /// zone is taken as UTC and counted).
    fn timestamp(&mut self, text: &str, path: &Path, key: String) -> Result<f64, ImportError> {
        let (ms, naive) = time::parse(text).ok_or_else(|| ImportError::Key {
            path: path.to_path_buf(),
            key,
            message: format!("`{text}` is not an ISO-8601 timestamp"),
            help: "restore the file from the original repository".into(),
        })?;
        self.naive_times += u64::from(naive);
        Ok(ms)
    }

    /// Refuses the file of `what` (e.g. "a two-agent run") when configuration `ci` does not
    /// have two agents in the manifest.
    fn two_agents(&self, ci: usize, path: &Path, what: &str) -> Result<(), ImportError> {
        let c = &self.plan.configs[ci];
        if c.agents.len() == 2 {
            return Ok(());
        }
        Err(ImportError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "{what}, but configuration `{}` has {} agent(s) in the manifest",
                c.id,
                c.agents.len()
            ),
            help: "use the manifest of this report".into(),
        })
    }

    /// Warns when a summary `file`'s stored `average` efficiency is not the mean of its runs'
    /// efficiencies `runs` (within [`EFFICIENCY_TOLERANCE_PP`]).
    fn check_average_efficiency(&mut self, file: &Path, average: Option<f64>, runs: &[f64]) {
        if let (Some(avg), Some(mean)) = (average, metrics::mean(runs))
            && (avg - mean).abs() > EFFICIENCY_TOLERANCE_PP
        {
            self.warn(format!(
                "`{}`: aggregate.average_efficiency {avg:.4} % is not the mean of its runs ({mean:.4} %)",
                file.display()
            ));
        }
    }

    /// [`Ctx::publish`] and [`Ctx::store_deltas`] for a concurrent cell whose file stores its
    /// efficiency, contention flag and deltas (throughput, TTFT).
    fn publish_with_deltas(
        &mut self,
        rec: &mut CellRecord,
        stored_efficiency_pct: f64,
        stored_contention: bool,
        stored_deltas: (f64, f64),
        path: &Path,
    ) {
        self.publish(
            rec,
            Some(stored_efficiency_pct),
            Some(stored_contention),
            path,
        );
        let (tp, ttft) = stored_deltas;
        self.store_deltas(rec, (Some(tp), Some(ttft)), path);
    }

    /// Compares stored deltas (already in the B − A / A − B convention) with the ones the
    /// agents' aggregates give, and imports the stored ones.
    fn store_deltas(
        &mut self,
        rec: &mut CellRecord,
        stored: (Option<f64>, Option<f64>),
        path: &Path,
    ) {
        if let [a, b] = rec.agents.as_slice() {
            let (tp, ttft) = metrics::deltas_rust(&a.aggregate, &b.aggregate);
            for (name, mine, theirs) in [
                ("throughput delta (tok/s)", tp, stored.0),
                ("TTFT delta (ms)", ttft, stored.1),
            ] {
                if let (Some(m), Some(t)) = (mine, theirs)
                    && !close(m, t, 1e-6)
                {
                    self.warn(format!(
                        "`{}`: stored {name} {t:.6} differs from the agents' aggregates ({m:.6})",
                        self.rel(path).display()
                    ));
                }
            }
        }
        let m = rec.multi_agent_mut();
        (m.throughput_delta_tok_s, m.ttft_delta_ms) = stored;
    }
}

/// The tolerance of the published-efficiency cross-check, percentage points.
pub const EFFICIENCY_TOLERANCE_PP: f64 = 0.01;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

fn list(ids: &[&str]) -> String {
    if ids.is_empty() {
        return "(none)".to_owned();
    }
    ids.iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn role_name(role: crate::manifest::Role) -> String {
    match serde_json::to_value(role) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{role:?}").to_lowercase(),
    }
}

fn kind_name(kind: crate::manifest::ScenarioKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{kind:?}").to_lowercase(),
    }
}

/// A value the Rust harnesses serialised from an `f32` (0.6000000238418579) read back as the
/// decimal that was typed (0.6); other values unchanged.
fn f32_decimal(x: f64) -> f64 {
    let f = x as f32;
    if f64::from(f) == x {
        f.to_string().parse().unwrap_or(x)
    } else {
        x
    }
}

/// Options from a recorded `configuration` / `options` object.
fn options_from_json(
    map: &serde_json::Map<String, serde_json::Value>,
    path: &Path,
    key: &str,
) -> Result<Options, ImportError> {
    let bad = |k: &str, want: &str| {
        ImportError::Key {
        path: path.to_path_buf(),
        key: format!("{key}.{k}"),
        message: format!("expected {want}, found {}", map[k]),
        help: "the recorded options are Ollama options (num_gpu, num_ctx, temperature, top_p, top_k, repeat_penalty)".into(),
    }
    };
    let mut o = Options::default();
    for (k, v) in map {
        if v.is_null() {
            continue;
        }
        let uint = || {
            v.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| bad(k, "an unsigned integer"))
        };
        let float = || {
            v.as_f64()
                .map(f32_decimal)
                .ok_or_else(|| bad(k, "a number"))
        };
        match k.as_str() {
            "num_gpu" => o.num_gpu = Some(uint()?),
            "num_ctx" => o.num_ctx = Some(uint()?),
            "top_k" => o.top_k = Some(uint()?),
            "temperature" => o.temperature = Some(float()?),
            "top_p" => o.top_p = Some(float()?),
            "repeat_penalty" => o.repeat_penalty = Some(float()?),
            "num_predict" => o.num_predict = Some(v.as_i64().ok_or_else(|| bad(k, "an integer"))?),
            "seed" => o.seed = Some(v.as_u64().ok_or_else(|| bad(k, "an unsigned integer"))?),
            _ => {
                return Err(ImportError::Key {
                    path: path.to_path_buf(),
                    key: format!("{key}.{k}"),
                    message: format!("unknown option `{k}`"),
                    help: "chimera's options are num_gpu, num_ctx, temperature, top_p, top_k, repeat_penalty, num_predict and seed; a file with other options is not a chimeraforge run".into(),
                });
            }
        }
    }
    Ok(o)
}

fn same_options(a: &Options, b: &Options) -> bool {
    let f = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-6,
        (None, None) => true,
        _ => false,
    };
    a.num_gpu == b.num_gpu
        && a.num_ctx == b.num_ctx
        && a.top_k == b.top_k
        && a.num_predict == b.num_predict
        && a.seed == b.seed
        && f(a.temperature, b.temperature)
        && f(a.top_p, b.top_p)
        && f(a.repeat_penalty, b.repeat_penalty)
}

fn options_text(o: &Options) -> String {
    if o.is_empty() {
        return "{} (server defaults)".to_owned();
    }
    serde_json::to_string(o).unwrap_or_default()
}

/// One request row as recorded (no client-side chunk timings: the originals kept none).
fn request_row(
    stage: crate::workload::Stage,
    index: u32,
    throughput: Option<f64>,
    record: RequestRecord,
) -> RequestRow {
    RequestRow {
        stage,
        index,
        warmup: false,
        throughput_tok_s: throughput,
        client_tok_s: metrics::client_tok_s(record.output_tokens, record.e2e_ms, record.ttft_ms),
        itl_p50_ms: None,
        itl_p99_ms: None,
        record,
    }
}

/// The aggregate of an agent's recorded requests, as the Rust harness's
/// `aggregate_llm_metrics`; per-request throughput as the source recorded it.
fn aggregate_rows(rows: &[RequestRow]) -> AgentAggregate {
    let recs: Vec<&RequestRecord> = rows.iter().map(|r| &r.record).collect();
    let mut agg = metrics::aggregate(&recs);
    let tps: Vec<f64> = rows
        .iter()
        .filter(|r| r.record.ok())
        .filter_map(|r| r.throughput_tok_s)
        .collect();
    agg.throughput_mean_tok_s = metrics::mean(&tps);
    agg.throughput_sd_tok_s = metrics::sample_sd(&tps);
    agg
}

/// Reads (a regular file of bounded size only: see [`raw`]) and deserialises one JSON file;
/// errors name the file and the line/column (syntax) or the key path (missing key, wrong type).
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ImportError> {
    let bytes = raw::read(path)?;
    parse_json(path, &bytes)
}

fn parse_json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, ImportError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end().map_err(|e| json_error(path, String::new(), &e))?;
            Ok(v)
        }
        Err(e) => {
            let key = e.path().to_string();
            Err(json_error(path, key, e.inner()))
        }
    }
}

fn json_error(path: &Path, key: String, e: &serde_json::Error) -> ImportError {
    match e.classify() {
        serde_json::error::Category::Data => ImportError::Key {
            path: path.to_path_buf(),
            key: if key.is_empty() || key == "." { "(top level)".to_owned() } else { key },
            message: format!(
                "{} (line {}, column {})",
                strip_position(&e.to_string()),
                e.line(),
                e.column()
            ),
            help: "this file does not have the shape the original harness wrote (tr-spec §3–§8); restore it from the original repository".into(),
        },
        _ => ImportError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        },
    }
}

/// serde_json messages end in " at line L column C"; the error prints those itself.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Every file under `dir` (sorted, absolute), skipping hidden entries. Directories deeper than
/// [`MAX_DEPTH`] (a symlink loop, or not a report's folder) and more than [`MAX_ENTRIES`]
/// entries are an error.
fn walk(dir: &Path, hidden: &mut u64) -> Result<Vec<PathBuf>, ImportError> {
    walk_at_most(dir, hidden, MAX_ENTRIES)
}

fn walk_at_most(
    dir: &Path,
    hidden: &mut u64,
    max_entries: usize,
) -> Result<Vec<PathBuf>, ImportError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut seen = 0usize;
    while let Some((d, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(ImportError::Invalid {
                path: d,
                message: format!("more than {MAX_DEPTH} directory levels below the source"),
                help: "point at one report's raw-data folder (and check for a symlink loop)".into(),
            });
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImportError::Io { path, source }
        };
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let p = e.path();
            seen += 1;
            if seen > max_entries {
                return Err(ImportError::Invalid {
                    path: dir.to_path_buf(),
                    message: format!(
                        "more than {max_entries} entries below the source (a symlink to a large \
                         tree?)"
                    ),
                    help: "point at one report's raw-data folder".into(),
                });
            }
            if e.file_name().to_string_lossy().starts_with('.') {
                *hidden += 1;
                continue;
            }
            if std::fs::metadata(&p).map_err(io(&p))?.is_dir() {
                stack.push((p, depth + 1));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// How deep [`walk`] goes (the deepest layout has 4 levels).
const MAX_DEPTH: usize = 16;

/// How many entries [`walk`] looks at before it gives up: a whole report's raw data is a few
/// thousand files, so this only stops a symlink into a large tree (`/`, a home directory).
const MAX_ENTRIES: usize = 1_000_000;

/// The top-level entries of a directory, for "found:" in layout errors.
fn top_level(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() {
                        format!("{n}/")
                    } else {
                        n
                    }
                })
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    match names.len() {
        0 => "an empty directory".to_owned(),
        n if n > 12 => format!("{}, … ({n} entries)", names[..12].join(", ")),
        _ => names.join(", "),
    }
}

/// Components of `p` relative to `base`, as strings.
fn components(base: &Path, p: &Path) -> Vec<String> {
    p.strip_prefix(base)
        .unwrap_or(p)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
}

/// Markdown files are the harnesses' generated reports: never runs.
fn is_markdown(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".md")
}

/// The files of the source with their path components below it, Markdown reports left out,
/// and how many of those there were (see [`note_markdown`]).
fn without_markdown<'f>(
    ctx: &Ctx,
    files: &'f [PathBuf],
) -> (Vec<(&'f PathBuf, Vec<String>)>, usize) {
    let mut kept = Vec::new();
    let mut markdown = 0;
    for f in files {
        let c = components(ctx.source, f);
        if c.last().is_some_and(|name| is_markdown(name)) {
            markdown += 1;
        } else {
            kept.push((f, c));
        }
    }
    (kept, markdown)
}

/// No run of the layout found: `expected` says what it looks like; the help suggests a
/// subfolder.
fn layout_error(ctx: &Ctx, expected: &str) -> ImportError {
    ImportError::Layout {
        dir: ctx.source.to_path_buf(),
        report: ctx.report().to_owned(),
        layout: ctx.layout.name().to_owned(),
        expected: expected.to_owned(),
        found: top_level(ctx.source),
        help: suggest_subfolder(ctx),
    }
}

/// Refuses the first of `unknown`, files that are not part of the layout: `holds` says what
/// the layout holds, `help` what to do.
fn refuse_unknown(
    ctx: &Ctx,
    unknown: &[PathBuf],
    holds: &str,
    help: &str,
) -> Result<(), ImportError> {
    match unknown.first() {
        Some(f) => Err(ImportError::Invalid {
            path: f.clone(),
            message: format!("not part of the {} layout ({holds})", ctx.layout.name()),
            help: help.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Notes the `markdown` reports found next to the runs (not imported).
fn note_markdown(ctx: &mut Ctx, markdown: usize) {
    if markdown > 0 {
        ctx.notes.push(format!(
            "{markdown} Markdown report(s) recognised and not imported (generated text, not measurements)"
        ));
    }
}

/// A subfolder whose name suggests this report's data (e.g. `tr114_v2/` inside the
/// fixtures root), for the help line of a layout error.
fn suggest_subfolder(ctx: &Ctx) -> String {
    let want = normalize_report(ctx.report());
    let hit = std::fs::read_dir(ctx.source).ok().and_then(|rd| {
        rd.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| normalize_report(n) == want)
        })
    });
    match hit {
        Some(p) => format!("did you mean `{}`?", p.display()),
        None => format!(
            "pass the folder that holds {}'s raw files (the fixtures keep them in `{}`)",
            ctx.report(),
            ctx.report().to_ascii_lowercase()
        ),
    }
}

/// `TR114_v2`, `tr114`, `TR114` → `tr114`.
pub fn normalize_report(report: &str) -> String {
    let r = report.trim().to_ascii_lowercase();
    match r.find("_v") {
        Some(i) if r[i + 2..].chars().all(|c| c.is_ascii_digit()) => r[..i].to_owned(),
        _ => r,
    }
}

/// The manifest of `--report` (`TR114`, `tr114`, `TR114_v2` → `<experiments>/tr114.yaml`), or
/// `manifest` when given; checks that the manifest declares that report.
pub fn resolve_manifest(
    report: &str,
    manifest: Option<&Path>,
    experiments: &Path,
) -> Result<PathBuf, ImportError> {
    let norm = normalize_report(report);
    let ok =
        norm.len() > 2 && norm.starts_with("tr") && norm[2..].chars().all(|c| c.is_ascii_digit());
    if !ok {
        return Err(ImportError::Report {
            message: format!("--report `{report}` is not a report id"),
            help: "give a report id such as TR114, tr114 or TR114_v2".into(),
        });
    }
    let path = match manifest {
        Some(p) => p.to_path_buf(),
        None => experiments.join(format!("{norm}.yaml")),
    };
    if !path.is_file() {
        return Err(ImportError::Report {
            message: format!("--report `{report}`: no manifest at `{}`", path.display()),
            help: "run from the repository root (where `experiments/` is), or pass --manifest PATH"
                .into(),
        });
    }
    let m = crate::manifest::load(&path).map_err(|e| ImportError::Manifest(e.into()))?;
    if normalize_report(&m.spec.report) != norm {
        return Err(ImportError::Report {
            message: format!(
                "--report `{report}`, but `{}` declares report `{}`",
                path.display(),
                m.spec.report
            ),
            help: "pass the manifest of that report with --manifest, or fix --report".into(),
        });
    }
    Ok(path)
}

/// Imports the raw results in `opts.source` into a campaign (see the module docs).
pub fn import_chimeraforge(opts: &ImportOptions) -> Result<ImportSummary, ImportError> {
    let manifest =
        crate::manifest::load(&opts.manifest).map_err(|e| ImportError::Manifest(e.into()))?;
    let report = manifest.spec.report.clone();
    let manifest_text = manifest.source.clone();
    let plan = crate::plan::build_loaded(vec![manifest])?;
    let ri = plan
        .reports
        .iter()
        .position(|r| r.report == report)
        .unwrap_or(0);
    let layout = Layout::of_report(&report).ok_or_else(|| ImportError::UnsupportedReport {
        report: report.clone(),
        manifest: opts.manifest.clone(),
        help: "only the reports whose raw results survive in the Chimeraforge repository can be imported".into(),
    })?;
    let meta = std::fs::metadata(&opts.source).map_err(|source| ImportError::Io {
        path: opts.source.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ImportError::Invalid {
            path: opts.source.clone(),
            message: "not a directory".into(),
            help: "pass the folder that holds the report's raw files".into(),
        });
    }

    let mut nodes = HashMap::new();
    for ni in plan.graph.node_indices() {
        let n = &plan.graph[ni];
        if let Some(c) = n.config.map(|c| c as usize)
            && matches!(n.kind, NodeKind::Single | NodeKind::Concurrent)
            && plan.reports[ri].configs.contains(&c)
        {
            nodes.insert((c, n.repetition), ni);
        }
    }
    let mut ctx = Ctx {
        plan: &plan,
        ri,
        source: &opts.source,
        layout,
        nodes,
        files: 0,
        warnings: Vec::new(),
        warned: HashSet::new(),
        notes: Vec::new(),
        naive_times: 0,
        no_start: 0,
    };

    // 1. Read and validate the whole tree.
    let mut hidden = 0;
    let files = walk(&opts.source, &mut hidden)?;
    if hidden > 0 {
        ctx.notes.push(format!(
            "{hidden} hidden entr{} (names starting with `.`) ignored",
            if hidden == 1 { "y" } else { "ies" }
        ));
    }
    let runs = match layout {
        Layout::H6 => h6::read(&mut ctx, &files)?,
        Layout::Tr110 => tr110::read(&mut ctx, &files)?,
        Layout::Tr111 => single::read_tr111(&mut ctx, &files)?,
        Layout::Tr109 => single::read_tr109(&mut ctx, &files)?,
        Layout::Tr108 => tr108::read(&mut ctx, &files)?,
    };
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for r in &runs {
        if let Some(first) = seen.insert(r.record.cell_id.clone(), r.file.clone()) {
            return Err(ImportError::Duplicate {
                first: opts.source.join(first),
                second: opts.source.join(&r.file),
                config: r.record.config.clone().unwrap_or_default(),
                repetition: r.record.repetition,
            });
        }
    }
    if ctx.naive_times > 0 {
        ctx.warn(format!(
            "{} timestamp(s) carry no time zone (the Python harnesses wrote local time); they are taken as UTC",
            ctx.naive_times
        ));
    }
    if ctx.no_start > 0 {
        ctx.warn(format!(
            "{} cell(s) have no recorded start time (the source kept none); their `started_at` is written as 1970-01-01T00:00:00Z",
            ctx.no_start
        ));
    }
    let configs_with_data: HashSet<&str> = runs
        .iter()
        .filter_map(|r| r.record.config.as_deref())
        .collect();
    let without: Vec<&str> = ctx
        .configs()
        .iter()
        .map(|c| &*c.id)
        .filter(|id| !configs_with_data.contains(id))
        .collect();
    if !without.is_empty() {
        ctx.notes.push(format!(
            "{} planned configuration(s) have no data in the source and stay unrun: {}",
            without.len(),
            list(&without)
        ));
    }

    // 2. Encode every cell before anything is written.
    let name = opts.campaign.clone().unwrap_or_else(|| {
        format!(
            "chimeraforge-{}",
            opts.manifest
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("import")
        )
    });
    let mut encoded = Vec::with_capacity(runs.len());
    let mut per_config: BTreeMap<String, u64> = BTreeMap::new();
    for r in &runs {
        *per_config
            .entry(r.record.config.clone().unwrap_or_default())
            .or_default() += 1;
        let parts = crate::table::cell_parts(&r.record, &name)?;
        let meta = CellMeta {
            imported_from: Some(r.file.display().to_string()),
            ..CellMeta::of(&r.record)
        }
        .to_value();
        encoded.push((r.record.cell_id.clone(), parts, meta));
    }

    // 3. Never mix with measured cells.
    match crate::store::open_existing(&opts.data, &name) {
        Ok(view) => match &view.info().origin {
            None => {
                return Err(ImportError::MeasuredCampaign {
                    name,
                    dir: view.dir().to_path_buf(),
                });
            }
            Some(o)
                if o.source != opts.source.display().to_string() || o.layout != layout.name() =>
            {
                ctx.warn(format!(
                    "campaign `{name}` was first imported from `{}` ({}); its campaign.json keeps that origin",
                    o.source, o.layout
                ));
            }
            Some(_) => {}
        },
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }

    // 4. Commit.
    let mut info = CampaignInfo::new(
        &name,
        vec![ManifestEntry::new(
            &opts.manifest.display().to_string(),
            &report,
            &manifest_text,
        )],
    );
    info.origin = Some(DataOrigin {
        format: "chimeraforge".into(),
        source: opts.source.display().to_string(),
        layout: layout.name().into(),
        files: ctx.files,
        runs: runs.len() as u64,
    });
    let campaign = Campaign::open(&opts.data, &name, info)?;
    if campaign.info().origin.is_none() {
        // Created between the check and the lock by a `chimera run`.
        return Err(ImportError::MeasuredCampaign {
            name,
            dir: campaign.dir().to_path_buf(),
        });
    }
    let committed = campaign.committed()?;
    let already_before = encoded
        .iter()
        .filter(|(id, _, _)| committed.contains(id))
        .count() as u64;
    let run_id = format!("import-{:x}", crate::store::now_unix_ms() as u64);
    campaign.journal(&JournalEvent::Started {
        run_id: run_id.clone(),
        cells_total: encoded.len() as u64,
        committed: already_before,
        to_run: encoded.len() as u64 - already_before,
        at_unix_ms: crate::store::now_unix_ms(),
    })?;
    let (mut new, mut already) = (0u64, 0u64);
    for (id, parts, meta) in &encoded {
        if committed.contains(id) {
            already += 1;
            continue;
        }
        match campaign.commit_cell(id, 1, parts, meta)? {
            CommitOutcome::Committed(_) => {
                campaign.journal(&JournalEvent::CellCommitted {
                    cell: id.clone(),
                    attempt: 1,
                    cached: false,
                    at_unix_ms: crate::store::now_unix_ms(),
                })?;
                new += 1;
            }
            CommitOutcome::AlreadyCommitted => already += 1,
        }
    }
    campaign.journal(&JournalEvent::Finished {
        run_id,
        committed: new + already,
        failed: 0,
        at_unix_ms: crate::store::now_unix_ms(),
    })?;

    Ok(ImportSummary {
        report,
        campaign: name,
        campaign_dir: campaign.dir().to_path_buf(),
        layout: layout.name().to_owned(),
        files: ctx.files,
        runs: runs.len() as u64,
        committed: new,
        already_committed: already,
        per_config,
        notes: ctx.notes,
        warnings: ctx.warnings,
    })
}

/// Warnings shown in full by [`ImportSummary::render`]; the rest are counted.
const SHOWN_WARNINGS: usize = 20;

impl ImportSummary {
    /// A human summary: report, layout, files read, runs per configuration, the campaign.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "imported {} (chimeraforge raw results)", self.report);
        let _ = writeln!(s, "  layout    {}", self.layout);
        let _ = writeln!(s, "  files     {} read", self.files);
        let _ = writeln!(
            s,
            "  runs      {} imported into {} configuration(s): {} committed now, {} already committed",
            self.runs,
            self.per_config.len(),
            self.committed,
            self.already_committed
        );
        let _ = writeln!(
            s,
            "  campaign  {} in {}",
            self.campaign,
            self.campaign_dir.display()
        );
        // Configurations grouped by their run count, ids wrapped.
        let mut by_count: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for (c, n) in &self.per_config {
            by_count.entry(*n).or_default().push(c);
        }
        let _ = writeln!(s, "runs per configuration:");
        for (n, ids) in by_count.iter().rev() {
            let mut line = format!(
                "  {n} run{} ({} configuration{}):",
                if *n == 1 { "" } else { "s" },
                ids.len(),
                if ids.len() == 1 { "" } else { "s" }
            );
            let indent = 4;
            let mut width = line.len();
            for id in ids {
                if width + 1 + id.len() > 100 {
                    let _ = writeln!(s, "{line}");
                    line = " ".repeat(indent);
                    width = indent;
                } else {
                    line.push(' ');
                    width += 1;
                }
                line.push_str(id);
                width += id.len();
            }
            let _ = writeln!(s, "{line}");
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "warnings ({}):", self.warnings.len());
            for w in self.warnings.iter().take(SHOWN_WARNINGS) {
                let _ = writeln!(s, "  - {w}");
            }
            if self.warnings.len() > SHOWN_WARNINGS {
                let _ = writeln!(s, "  … and {} more", self.warnings.len() - SHOWN_WARNINGS);
            }
        }
        s
    }
}

#[cfg(test)]
mod walk_tests {
    use super::*;

    #[test]
    fn the_walk_stops_at_its_entry_limit_and_says_why() {
        let t = tempfile::tempdir().expect("tempdir");
        for i in 0..10 {
            std::fs::write(t.path().join(format!("f{i}.json")), "{}").expect("write");
        }
        std::fs::write(t.path().join(".hidden"), "").expect("write");
        let mut hidden = 0;
        let all = walk_at_most(t.path(), &mut hidden, 11).expect("within the limit");
        assert_eq!((all.len(), hidden), (10, 1));
        let e = walk_at_most(t.path(), &mut 0, 5).expect_err("over the limit");
        assert!(e.to_string().contains("more than 5 entries"), "{e}");
    }
}
