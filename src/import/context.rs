//! The shared state of one import: the plan, the report, the source, and what was learned.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use petgraph::graph::NodeIndex;

use super::convert::{
    EFFICIENCY_TOLERANCE_PP, close, list, options_from_json, options_text, same_options,
};
use super::error::ImportError;
use super::layout::Layout;
use super::source::Source;
use super::time;
use super::walk::{components, is_markdown};
use crate::manifest::Options;
use crate::metrics::{self, AgentAggregate};
use crate::plan::{Configuration, NodeKind, Plan};
use crate::record::{
    AgentRun, CellAxes, CellKey, CellKind, CellRecord, MultiAgentMetrics, RequestRow,
};

/// The source of a [`Ctx`]: its own, or one the caller keeps.
pub(crate) enum SourceRef<'a> {
    Owned(Source),
    Borrowed(&'a Source),
}

impl std::ops::Deref for SourceRef<'_> {
    type Target = Source;
    fn deref(&self) -> &Source {
        match self {
            SourceRef::Owned(s) => s,
            SourceRef::Borrowed(s) => s,
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
    /// The root the files are below (for a git source, `<repo>@<commit>:<path>`).
    pub(crate) source: &'a Path,
    /// Where the files are read from: readers read every file through [`Ctx::read`].
    pub(crate) src: SourceRef<'a>,
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
    /// Raw files that could not be read and were skipped (paths below the source).
    pub(crate) skipped: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// A fresh import of report `ri` of `plan` from the folder `source`, read as `layout`.
    pub(crate) fn new(plan: &'a Plan, ri: usize, source: &'a Path, layout: Layout) -> Ctx<'a> {
        let src = SourceRef::Owned(Source::Dir(source.to_path_buf()));
        Ctx::with_source(plan, ri, source, src, layout)
    }

    /// A fresh import of report `ri` of `plan` from `src` (a folder or a git tree).
    pub(crate) fn of_source(plan: &'a Plan, ri: usize, src: &'a Source, layout: Layout) -> Ctx<'a> {
        Ctx::with_source(plan, ri, src.root(), SourceRef::Borrowed(src), layout)
    }

    fn with_source(
        plan: &'a Plan,
        ri: usize,
        source: &'a Path,
        src: SourceRef<'a>,
        layout: Layout,
    ) -> Ctx<'a> {
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
        Ctx {
            plan,
            ri,
            source,
            src,
            layout,
            nodes,
            files: 0,
            warnings: Vec::new(),
            warned: HashSet::new(),
            notes: Vec::new(),
            naive_times: 0,
            no_start: 0,
            skipped: Vec::new(),
        }
    }

    /// The bytes of the raw file `path` (a path the reader was given): the one way a reader
    /// reads a file, whether the source is a folder or a git tree.
    pub(crate) fn read(&self, path: &Path) -> Result<Vec<u8>, ImportError> {
        self.src.read(path)
    }

    /// The raw file `path` deserialised from JSON; errors name the file and the line/column
    /// (syntax) or the key path (missing key, wrong type).
    pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<T, ImportError> {
        super::convert::parse_json(path, &self.read(path)?)
    }

    /// The text of the raw file `path`; not UTF-8 is an error naming the file.
    pub(crate) fn read_to_string(&self, path: &Path) -> Result<String, ImportError> {
        super::raw::text(path, self.read(path)?)
    }

    pub(super) fn report(&self) -> &str {
        &self.plan.reports[self.ri].report
    }

    pub(super) fn manifest_path(&self) -> &Path {
        &self.plan.reports[self.ri].manifest.path
    }

    pub(super) fn spec(&self) -> &crate::manifest::ManifestSpec {
        &self.plan.reports[self.ri].manifest.spec
    }

    pub(super) fn configs(&self) -> &'a [Configuration] {
        &self.plan.configs[self.plan.reports[self.ri].configs.clone()]
    }

    /// Path relative to the source directory, for messages and provenance.
    pub(super) fn rel(&self, p: &Path) -> PathBuf {
        p.strip_prefix(self.source).unwrap_or(p).to_path_buf()
    }

    /// The run of `rec` read from `path`.
    pub(super) fn imported(&self, path: &Path, rec: CellRecord) -> Imported {
        Imported {
            file: self.rel(path),
            record: rec,
        }
    }

    pub(super) fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }

    /// A warning given once per `key`.
    pub(super) fn warn_once(&mut self, key: String, msg: String) {
        if self.warned.insert(key) {
            self.warnings.push(msg);
        }
    }

    /// The expected configuration ids, for messages.
    pub(super) fn expected_ids(&self) -> String {
        let ids: Vec<&str> = self.configs().iter().map(|c| &*c.id).collect();
        list(&ids)
    }

    /// The configuration with this id, or an error naming the folder and the expected ids.
    pub(super) fn config(
        &self,
        id: &str,
        path: &Path,
        what: &'static str,
    ) -> Result<usize, ImportError> {
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
        Err(self.unknown_id(path, what, id, self.expected_ids(), help))
    }

    /// The error for folder `path` whose name `id` (a `what`: "scenario folder"…) is not in the
    /// manifest, which has the `expected` ones.
    pub(super) fn unknown_id(
        &self,
        path: &Path,
        what: &'static str,
        id: &str,
        expected: String,
        help: String,
    ) -> ImportError {
        ImportError::UnknownId {
            path: path.to_path_buf(),
            what,
            id: id.to_owned(),
            report: self.report().to_owned(),
            manifest: self.manifest_path().to_path_buf(),
            expected,
            help,
        }
    }

    /// The planned cell of (configuration, repetition).
    pub(super) fn node(&self, ci: usize, rep: u32, path: &Path) -> Result<NodeIndex, ImportError> {
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

    pub(super) fn model_tag(&self, c: &Configuration) -> Option<String> {
        self.spec()
            .models
            .iter()
            .find(|m| *m.id == *c.model)
            .map(|m| m.tag.clone())
    }

    /// Warns (once per configuration) when a file records another model than the one its
    /// configuration plans: a folder filed under the wrong model.
    pub(super) fn check_model(
        &mut self,
        ci: usize,
        recorded: Option<&str>,
        path: &Path,
        key: &str,
    ) {
        let c = &self.plan.configs[ci];
        let (Some(r), Some(tag)) = (recorded, self.model_tag(c)) else {
            return;
        };
        if r != tag {
            let msg = format!(
                "`{}`: `{key}` records model `{r}`, but the manifest's `{}` is for `{tag}` (model `{}`); imported as planned",
                self.rel(path).display(),
                c.id,
                c.model
            );
            self.warn_once(format!("model {}", c.id), msg);
        }
    }

    /// An agent run of configuration `ci`'s agent `ai`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn agent(
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
            process: None,
        }
    }

    /// The agent index of configuration `ci` with this id (or, failing that, this role name).
    pub(super) fn agent_index(
        &self,
        ci: usize,
        name: &str,
        path: &Path,
    ) -> Result<usize, ImportError> {
        let c = &self.plan.configs[ci];
        c.agents
            .iter()
            .position(|a| &*a.id == name)
            .or_else(|| {
                c.agents
                    .iter()
                    .position(|a| <&str>::from(a.role).eq_ignore_ascii_case(name))
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
    pub(super) fn recorded_options(
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
    pub(super) fn record(
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
            axes: CellAxes::of(self.plan, c),
            server_flags: crate::record::server_flags_of(c),
        };
        CellRecord::new(key, agents, wall_ms, started_at_unix_ms)
    }

    /// Recomputes the published speedup, efficiency and contention of a concurrent cell from
    /// its agents' durations and wall (tr-spec §1.5) and compares them with the stored values.
    pub(super) fn publish(
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
    pub(super) fn timestamp(
        &mut self,
        text: &str,
        path: &Path,
        key: String,
    ) -> Result<f64, ImportError> {
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
    pub(super) fn two_agents(&self, ci: usize, path: &Path, what: &str) -> Result<(), ImportError> {
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
    pub(super) fn check_average_efficiency(
        &mut self,
        file: &Path,
        average: Option<f64>,
        runs: &[f64],
    ) {
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
    pub(super) fn publish_with_deltas(
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
    pub(super) fn store_deltas(
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

/// The files of the source with their path components below it, Markdown reports left out,
/// and how many of those there were (see [`note_markdown`]).
pub(super) fn without_markdown<'f>(
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
pub(super) fn layout_error(ctx: &Ctx, expected: &str) -> ImportError {
    ImportError::Layout {
        dir: ctx.source.to_path_buf(),
        report: ctx.report().to_owned(),
        layout: ctx.layout.name().to_owned(),
        expected: expected.to_owned(),
        found: ctx.src.top_level(),
        help: ctx.src.suggest_subfolder(ctx.report()),
    }
}

/// Refuses the first of `unknown`, files that are not part of the layout: `holds` says what
/// the layout holds, `help` what to do.
pub(super) fn refuse_unknown(
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
pub(super) fn note_markdown(ctx: &mut Ctx, markdown: usize) {
    if markdown > 0 {
        ctx.notes.push(format!(
            "{markdown} Markdown report(s) recognised and not imported (generated text, not measurements)"
        ));
    }
}

/// What a layout's files look like, for its errors: `expected` when no run is found, `holds`
/// and `help` for a file that is not part of it.
pub(super) struct LayoutText<'a> {
    pub(super) expected: &'a str,
    pub(super) holds: &'a str,
    pub(super) help: &'a str,
}

/// The usual [`LayoutText::help`]: what to do about a file that is not part of the layout.
pub(super) const RAW_FOLDER_HELP: &str =
    "move the file out of the directory, or point at the report's own raw-data folder";

/// The end of a layout's classification: no run at all is a layout error, an `unknown` file is
/// refused, the `markdown` reports are noted.
pub(super) fn settle(
    ctx: &mut Ctx,
    text: &LayoutText<'_>,
    any_run: bool,
    unknown: &[PathBuf],
    markdown: usize,
) -> Result<(), ImportError> {
    if !any_run {
        return Err(layout_error(ctx, text.expected));
    }
    refuse_unknown(ctx, unknown, text.holds, text.help)?;
    note_markdown(ctx, markdown);
    Ok(())
}
