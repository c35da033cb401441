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
//! `--report` may be left out: [`detect_report`] finds the report from the folder's layout
//! (one detector per layout, `detect.rs`). `--git REPO` reads every report's raw results
//! straight from a clone of the original repository, at the commits that hold them
//! ([`import_git`], `repo.rs`).
//!
//! Readers get the source's file paths and read every file through [`Ctx::read`] (or
//! [`Ctx::read_json`], [`Ctx::read_to_string`]), whether the source is a folder or a git tree
//! (`source.rs`). Before a reader sees the list, files that are not data for the report are
//! dropped (one note), and a `metrics.json` that cannot be read is skipped with a warning and
//! recorded in the campaign's origin, unless most of them are (`screen.rs`).
//!
//! Otherwise the whole tree is read and validated first; nothing is written unless every file
//! is understood. Layouts, one per harness (the manifest's report id selects it):
//!
//! | report | harness | files |
//! |---|---|---|
//! | TR114_v2 | H6v2 Rust multi-agent | `<scenario>/<testNNN>/run_k/metrics.json` |
//! | TR113 | H6v1 Rust multi-agent, one persona call | `<config>/run_k/metrics.json` |
//! | TR115_v2 (and v1) | H6 per runtime | `runtime-<name>/<config>/run_k/run_1/metrics.json` |
//! | TR116 | H6v2 / H4 multi, H5 / H2 single | `multi/<language>/<model>/…/run_k/metrics.json`, `single/<language>/<model>/<config>/data/metrics.json` |
//! | TR110 | H3 Python multi-agent | `phase_N_test_NNN/run_k/metrics.json` |
//! | TR111_v2 | H5 Rust single agent | `<config>/data/metrics.json` |
//! | TR109 | H2 Python single agent | `run_<config>/data/metrics.json` |
//! | TR108 | H1 CSVs | `llama3/*.csv`, `gemma3/*.csv` |
//! | TR112_v2 | none of its own: TR109 + TR111_v2 | `tr109/…`, `tr111_v2/…` (or `--from REPORT=DIR`) |
//!
//! What the sources did not record stays empty: `None` where the column is nullable, and
//! `NaN` ("not recorded") in the few non-nullable float columns (the per-agent SDs of the
//! Python formats, which kept only means; TR108's durations). Published metrics are
//! recomputed with [`crate::metrics`] from the recorded agent durations and wall time, exactly
//! as the original code did, and compared with the values stored in the files: every
//! disagreement is a warning in the summary.

mod context;
mod convert;
mod csv;
mod depends;
mod detect;
mod error;
mod git;
pub(crate) mod h4;
pub(crate) mod h6;
mod h6v1;
mod layout;
mod raw;
mod repo;
mod screen;
pub(crate) mod single;
mod source;
mod time;
pub(crate) mod tr108;
pub(crate) mod tr110;
pub(crate) mod tr115;
pub(crate) mod tr116;
mod walk;
mod write;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;

pub(crate) use context::Ctx;
use context::Imported;
pub use convert::EFFICIENCY_TOLERANCE_PP;
use convert::list;
pub use error::ImportError;
pub(crate) use layout::Layout;
pub use layout::{normalize_report, resolve_manifest};
pub use repo::{GitImport, GitOutcome, import_git};
pub(crate) use source::Source;

use crate::store::ManifestEntry;

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
    /// Raw files that could not be read (truncated, damaged) and were skipped, by their path
    /// below the source; each is also a warning, and the campaign's origin records them.
    pub skipped: Vec<String>,
}

/// The report a folder of raw results holds, found from its layout (`import chimeraforge`
/// without `--report`): the report id (e.g. `TR114`, whose manifest is
/// `experiments/tr114.yaml`) and the layout's file pattern. Errors name every report that
/// would fit (ambiguous), both layouts of a mixed folder, or what was expected (unknown).
pub fn detect_report(dir: &std::path::Path) -> Result<(String, String), ImportError> {
    is_dir(dir)?;
    let d = detect::detect(&Source::Dir(dir.to_path_buf()))?;
    Ok((d.report.to_owned(), d.pattern.to_owned()))
}

fn is_dir(dir: &std::path::Path) -> Result<(), ImportError> {
    let meta = std::fs::metadata(dir).map_err(|source| ImportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ImportError::Invalid {
            path: dir.to_path_buf(),
            message: "not a directory".into(),
            help: "pass the folder that holds the report's raw files".into(),
        });
    }
    Ok(())
}

/// Imports the raw results in `opts.source` into a campaign (see the module docs).
pub fn import_chimeraforge(opts: &ImportOptions) -> Result<ImportSummary, ImportError> {
    import_chimeraforge_from(opts, &[])
}

/// [`import_chimeraforge`]; for a report that runs nothing of its own and depends on others
/// (TR112_v2: TR109 + TR111_v2), every report it depends on is imported into its one campaign,
/// each from the folder `from` names for it (`(TR109, DIR)`), or else from the folder named
/// after it in `opts.source` (`tr109/`, `tr111_v2/`).
pub fn import_chimeraforge_from(
    opts: &ImportOptions,
    from: &[(String, PathBuf)],
) -> Result<ImportSummary, ImportError> {
    let p = Prepared::of(opts)?;
    if depends::imports_dependencies(&p.plan, p.ri) {
        return depends::import(opts, &p.plan, p.ri, &p.name, from);
    }
    if let Some((r, _)) = from.first() {
        return Err(ImportError::Report {
            message: format!("--from {r}=…, but {} plans runs of its own", p.report),
            help: "--from names the raw data of the reports a comparison report depends on (TR112); give this report's folder as DIR".into(),
        });
    }
    is_dir(&opts.source)?;
    p.import(&Source::Dir(opts.source.clone()), opts)
}

/// Imports the raw results of `src` (a folder or a git tree; `opts.source` is not read) into a
/// campaign.
pub(crate) fn import_from(
    src: &Source,
    opts: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    Prepared::of(opts)?.import(src, opts)
}

/// Imports a report that runs nothing of its own (TR112) from the sources `locate` gives for
/// each report it depends on.
pub(crate) fn import_dependent(
    opts: &ImportOptions,
    locate: &dyn Fn(&str) -> Result<Source, ImportError>,
) -> Result<ImportSummary, ImportError> {
    let p = Prepared::of(opts)?;
    if !depends::imports_dependencies(&p.plan, p.ri) {
        return Err(ImportError::Report {
            message: format!("{} plans runs of its own", p.report),
            help: "import it from its own raw results".into(),
        });
    }
    depends::import_with(opts, &p.plan, p.ri, &p.name, locate)
}

/// The manifest of an import, planned, and the campaign's name.
struct Prepared {
    plan: crate::plan::Plan,
    ri: usize,
    report: String,
    manifest_text: String,
    name: String,
}

impl Prepared {
    fn of(opts: &ImportOptions) -> Result<Prepared, ImportError> {
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
        let name = opts.campaign.clone().unwrap_or_else(|| {
            format!(
                "chimeraforge-{}",
                opts.manifest
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("import")
            )
        });
        Ok(Prepared {
            plan,
            ri,
            report,
            manifest_text,
            name,
        })
    }

    /// Reads and validates the whole of `src`, then encodes every cell, refuses a measured
    /// campaign, and commits.
    fn import(self, src: &Source, opts: &ImportOptions) -> Result<ImportSummary, ImportError> {
        let Prepared {
            plan,
            ri,
            report,
            manifest_text,
            name,
        } = self;
        let layout = Layout::of_report(&report).ok_or_else(|| ImportError::UnsupportedReport {
            report: report.clone(),
            manifest: opts.manifest.clone(),
            help: "only the reports whose raw results survive in the Chimeraforge repository can be imported".into(),
        })?;
        let mut ctx = Ctx::of_source(&plan, ri, src, layout);
        let runs = read_runs(&mut ctx)?;
        let target = write::Target {
            data: &opts.data,
            name: &name,
            manifests: vec![ManifestEntry::new(
                &opts.manifest.display().to_string(),
                &report,
                &manifest_text,
            )],
            source: ctx.src.describe(),
            layout: layout.name().to_owned(),
            files: ctx.files,
            skipped: ctx.skipped.clone(),
        };
        let done = write::write(&mut ctx.warnings, &target, &runs)?;
        Ok(ImportSummary {
            report,
            campaign: name,
            campaign_dir: done.dir,
            layout: layout.name().to_owned(),
            files: ctx.files,
            runs: runs.len() as u64,
            committed: done.committed,
            already_committed: done.already_committed,
            per_config: done.per_config,
            notes: ctx.notes,
            warnings: ctx.warnings,
            skipped: ctx.skipped,
        })
    }
}

/// Reads every run of the source with the layout's reader, refuses two runs of one cell, and
/// notes what the source lacks (time zones, start times, configurations).
fn read_runs(ctx: &mut Ctx) -> Result<Vec<Imported>, ImportError> {
    let mut hidden = 0;
    let files = ctx.src.list(&mut hidden)?;
    if hidden > 0 {
        ctx.notes.push(format!(
            "{hidden} hidden entr{} (names starting with `.`) ignored",
            if hidden == 1 { "y" } else { "ies" }
        ));
    }
    let files = screen::drop_not_data(ctx, files);
    let files = screen::drop_unreadable(ctx, files)?;
    let runs = match ctx.layout {
        Layout::H6 => h6::read(ctx, &files)?,
        Layout::H6v1 => h6v1::read(ctx, &files)?,
        Layout::Tr110 => tr110::read(ctx, &files)?,
        Layout::Tr111 => single::read_tr111(ctx, &files)?,
        Layout::Tr109 => single::read_tr109(ctx, &files)?,
        Layout::Tr108 => tr108::read(ctx, &files)?,
        Layout::Tr115 => tr115::read(ctx, &files)?,
        Layout::Tr116 => tr116::read(ctx, &files)?,
    };
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for r in &runs {
        if let Some(first) = seen.insert(r.record.key.cell_id.clone(), r.file.clone()) {
            return Err(ImportError::Duplicate {
                first: ctx.source.join(first),
                second: ctx.source.join(&r.file),
                config: r.record.key.config.clone().unwrap_or_default(),
                repetition: r.record.key.repetition,
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
        .filter_map(|r| r.record.key.config.as_deref())
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
    Ok(runs)
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
        if !self.skipped.is_empty() {
            let _ = writeln!(
                s,
                "  skipped   {} unreadable file(s) (named in the warnings)",
                self.skipped.len()
            );
        }
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
