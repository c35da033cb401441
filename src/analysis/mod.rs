//! Stage 5: analysis. Reads a campaign's Parquet tables (rayon across files), groups the rows
//! the way each report's reference values declare, computes descriptive statistics, Welch
//! comparisons and a reproduction verdict per published number (see [`model`]).
//!
//! The configurations' attributes (scenario, block, runtime, language, agents) come from
//! re-planning the manifest texts recorded in the campaign's `campaign.json`, so analysis
//! needs nothing but the campaign directory.

pub mod dataset;
pub mod model;
pub mod render;
pub mod select;
mod summary;
pub mod verdict;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use self::dataset::Dataset;
use self::model::{Analysis, Origin};
use self::select::{Cfg, enum_name};
use crate::plan::{NodeKind, Plan};
use crate::store;

pub use write::write_outputs;

/// Errors of the analysis stage.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// No campaign where one was expected.
    #[error(
        "{path}: no campaign here (no campaign.json). Pass the data directory that holds campaigns \
         (e.g. `--data data`) or one campaign directory; `chimera status --data DIR` lists them"
    )]
    NoCampaign {
        /// The directory.
        path: PathBuf,
    },
    /// The named report is not in the campaign(s).
    #[error("report `{report}` is in no analysed campaign (found: {found})")]
    NoReport {
        /// Asked for.
        report: String,
        /// Reports present.
        found: String,
    },
    /// The store refused.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The recorded manifests no longer plan.
    #[error("campaign `{campaign}`: its recorded manifests cannot be planned again:\n{message}")]
    Replan {
        /// Campaign.
        campaign: String,
        /// The planner's message.
        message: String,
    },
    /// A Parquet file could not be read.
    #[error("cannot read {path}: {source}")]
    Table {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::table::TableError>,
    },
    /// A column is missing or has an unexpected type.
    #[error(
        "{path}: column `{column}` {problem}; the file was not written by this chimera's table format (rerun `chimera compact` or re-import)"
    )]
    Column {
        /// The file.
        path: PathBuf,
        /// Column.
        column: String,
        /// What is wrong.
        problem: String,
    },
    /// Writing the outputs failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Encoding a summary table failed.
    #[error("cannot encode {path}: {message}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The campaign directories `dir` designates: itself when it holds `campaign.json`, else
/// `dir/<campaign>` when a name is given, else every campaign directly under it.
pub fn campaign_dirs(dir: &Path, campaign: Option<&str>) -> Result<Vec<PathBuf>, AnalysisError> {
    if dir.join("campaign.json").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    if let Some(name) = campaign {
        let d = dir.join(name);
        if d.join("campaign.json").is_file() {
            return Ok(vec![d]);
        }
        return Err(AnalysisError::NoCampaign { path: d });
    }
    let mut out: Vec<PathBuf> = crate::run::status::campaigns(dir)
        .into_iter()
        .map(|n| dir.join(n))
        .filter(|d| d.join("campaign.json").is_file())
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(AnalysisError::NoCampaign {
            path: dir.to_path_buf(),
        });
    }
    Ok(out)
}

/// One loaded campaign: its info, plan, configurations and rows.
pub struct Loaded {
    /// `campaign.json`.
    pub info: store::CampaignInfo,
    /// The directory.
    pub dir: PathBuf,
    /// The re-planned manifests.
    pub plan: Plan,
    /// Configurations by (report, id).
    pub cfgs: HashMap<(String, String), Cfg>,
    /// The rows.
    pub data: Dataset,
}

/// Loads one campaign directory (read-only: nothing is locked or moved).
pub fn load_campaign(dir: &Path) -> Result<Loaded, AnalysisError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = dir.parent().unwrap_or(Path::new("."));
    let view = store::open_existing(parent, &name)?;
    let info = view.info().clone();
    let plan = crate::run::status::replan(&info).map_err(|message| AnalysisError::Replan {
        campaign: name.clone(),
        message,
    })?;
    let committed = view.committed()?;
    let mut cell_dirs: Vec<PathBuf> = Vec::new();
    for n in plan.graph.node_weights() {
        let id = n.id.hex();
        if let Some(d) = committed.dir(&id) {
            cell_dirs.push(d);
        }
    }
    let data = dataset::load(dir, &cell_dirs)?;
    let cfgs = configurations(&plan);
    Ok(Loaded {
        info,
        dir: dir.to_path_buf(),
        plan,
        cfgs,
        data,
    })
}

/// The plan's configurations as the analysis sees them.
pub fn configurations(plan: &Plan) -> HashMap<(String, String), Cfg> {
    let mut out = HashMap::new();
    for (i, c) in plan.configs.iter().enumerate() {
        let rp = &plan.reports[c.report];
        let spec = &rp.manifest.spec;
        let agents = c
            .agents
            .iter()
            .map(|a| {
                (
                    a.id.to_string(),
                    enum_name(&a.role),
                    summary::options_text(&a.options),
                )
            })
            .collect();
        let model_tag = spec
            .models
            .iter()
            .find(|m| *m.id == *c.model)
            .map_or_else(|| c.model.to_string(), |m| m.tag.clone());
        out.insert(
            (rp.report.clone(), c.id.to_string()),
            Cfg {
                report: rp.report.clone(),
                id: c.id.to_string(),
                scenario: c.scenario.to_string(),
                scenario_kind: enum_name(&c.scenario_kind),
                block: spec.matrix.get(c.block).and_then(|b| b.name.clone()),
                model_id: c.model.to_string(),
                model_tag,
                runtime: c.runtime.map(|r| enum_name(&r)),
                language: c.language.map(|l| enum_name(&l)),
                agents,
                multi: c.is_multi_agent(),
                order: i,
            },
        );
    }
    out
}

/// The origin of a loaded campaign's numbers.
pub fn origin(l: &Loaded) -> Origin {
    if let Some(o) = &l.info.origin {
        return Origin::Imported {
            format: o.format.clone(),
            source: o.source.clone(),
            layout: o.layout.clone(),
            files: o.files,
            runs: o.runs,
        };
    }
    let mut kinds: Vec<String> = l
        .data
        .provenance
        .iter()
        .map(|p| p.server_kind.clone())
        .collect();
    if kinds.is_empty() {
        // No provenance file: fall back to the endpoints the manifests declare.
        for rp in &l.plan.reports {
            for e in &rp.manifest.spec.endpoints {
                kinds.push(enum_name(&e.kind));
            }
        }
    }
    kinds.sort();
    kinds.dedup();
    if kinds.iter().any(|k| k == "emulator") {
        return Origin::Emulator;
    }
    Origin::Measured {
        server_kinds: kinds,
    }
}

/// Analyses every campaign `dir` designates (see [`campaign_dirs`]); with `report`, only that
/// report (matched case-insensitively, `TR114` matches `TR114_v2`).
pub fn analyze(
    dir: &Path,
    campaign: Option<&str>,
    report: Option<&str>,
) -> Result<Vec<(PathBuf, Analysis)>, AnalysisError> {
    let dirs = campaign_dirs(dir, campaign)?;
    let loaded: Vec<Loaded> = dirs
        .iter()
        .map(|d| load_campaign(d))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for l in &loaded {
        let a = summary::analyze_loaded(l, &loaded, report);
        if !a.reports.is_empty() {
            out.push((l.dir.clone(), a));
        }
    }
    if let Some(r) = report
        && out.is_empty()
    {
        let mut found: Vec<String> = loaded
            .iter()
            .flat_map(|l| l.plan.reports.iter().map(|rp| rp.report.clone()))
            .collect();
        found.sort();
        found.dedup();
        return Err(AnalysisError::NoReport {
            report: r.to_owned(),
            found: found.join(", "),
        });
    }
    Ok(out)
}

/// True when `want` names `report` (`TR114`, `tr114`, `TR114_v2`).
pub fn report_matches(want: &str, report: &str) -> bool {
    let w = want.to_ascii_uppercase();
    let r = report.to_ascii_uppercase();
    r == w || r.split('_').next() == Some(w.as_str())
}

/// Measured cells a plan holds for a report (single + concurrent), and isolated ones.
pub(crate) fn planned_counts(plan: &Plan, report: usize) -> (usize, usize) {
    let mut runs = 0;
    let mut iso = 0;
    for n in plan.graph.node_weights() {
        if n.report as usize != report {
            continue;
        }
        match n.kind {
            NodeKind::Single | NodeKind::Concurrent => runs += 1,
            NodeKind::Isolated => iso += 1,
            _ => {}
        }
    }
    (runs, iso)
}
