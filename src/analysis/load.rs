//! Loading a campaign for analysis: its info, its re-planned manifests, the configurations
//! as the analysis sees them, and its rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::dataset::{self, Dataset};
use super::error::AnalysisError;
use super::model::Origin;
use super::select::{Cfg, options_text};
use crate::plan::{NodeKind, Plan};
use crate::record::CellAxes;
use crate::store;

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
    let plan = crate::store::replan(&info).map_err(|message| AnalysisError::Replan {
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
                    a.role.to_string(),
                    options_text(&a.options),
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
                scenario_kind: c.scenario_kind.to_string(),
                model_id: c.model.to_string(),
                model_tag,
                axes: CellAxes::of(plan, c),
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
            skipped: o.skipped.clone(),
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
                kinds.push(e.kind.to_string());
            }
        }
    }
    kinds.sort();
    kinds.dedup();
    let emulator = crate::manifest::EndpointKind::Emulator.to_string();
    if kinds.contains(&emulator) {
        return Origin::Emulator;
    }
    Origin::Measured {
        server_kinds: kinds,
    }
}

/// True when `want` names `report` (`TR114`, `tr114`, `TR114_v2`; `tr116-languages` for
/// `TR116_languages`, as the manifest's file is named).
pub fn report_matches(want: &str, report: &str) -> bool {
    let w = want.to_ascii_uppercase().replace('-', "_");
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
