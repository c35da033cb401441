//! Stage 5: analysis. Reads a campaign's Parquet tables (rayon across files), groups the rows
//! the way each report's reference values declare, computes descriptive statistics, Welch
//! comparisons and a reproduction verdict per published number (see [`model`]).
//!
//! The configurations' attributes (scenario, block, runtime, language, agents) come from
//! re-planning the manifest texts recorded in the campaign's `campaign.json`, so analysis
//! needs nothing but the campaign directory.

pub mod ab;
mod adoption;
mod compare;
pub(crate) mod dataset;
mod distributions;
mod efficiency;
mod error;
mod languages;
mod load;
pub mod model;
pub(crate) mod render;
pub(crate) mod select;
pub mod server_metrics;
pub mod serving;
mod summary;
pub mod suspect;
pub(crate) mod verdict;
mod write;

use std::path::{Path, PathBuf};

use self::model::Analysis;

pub use error::AnalysisError;
pub use load::{Loaded, configurations, load_campaign, origin, report_matches};
pub use write::write_outputs;

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
    let mut out: Vec<PathBuf> = crate::store::campaigns(dir)
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

/// How to analyse.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnalyzeOptions {
    /// Keep suspect cells (a self-check failed) in the statistics; by default they are left
    /// out and only listed.
    pub include_suspect: bool,
}

/// Analyses every campaign `dir` designates (see [`campaign_dirs`]); with `report`, only that
/// report (matched case-insensitively, `TR114` matches `TR114_v2`). Suspect cells are left
/// out ([`analyze_with`] can keep them).
pub fn analyze(
    dir: &Path,
    campaign: Option<&str>,
    report: Option<&str>,
) -> Result<Vec<(PathBuf, Analysis)>, AnalysisError> {
    analyze_with(dir, campaign, report, AnalyzeOptions::default())
}

/// [`analyze`] with options.
pub fn analyze_with(
    dir: &Path,
    campaign: Option<&str>,
    report: Option<&str>,
    opts: AnalyzeOptions,
) -> Result<Vec<(PathBuf, Analysis)>, AnalysisError> {
    let dirs = campaign_dirs(dir, campaign)?;
    let t0 = std::time::Instant::now();
    let loaded: Vec<Loaded> = dirs
        .iter()
        .map(|d| load_campaign(d))
        .collect::<Result<_, _>>()?;
    tracing::debug!("analysis: load done after {:?}", t0.elapsed());
    let mut out = Vec::new();
    for l in &loaded {
        let a = summary::analyze_loaded(l, &loaded, report, opts.include_suspect);
        tracing::debug!("analysis: analyze done after {:?}", t0.elapsed());
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
