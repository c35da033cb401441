//! The writing half of an import: every cell encoded first, a measured campaign refused, then
//! the cells committed through the ordinary store with their journal events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::context::Imported;
use super::error::ImportError;
use crate::record::CellMeta;
use crate::store::{
    Campaign, CampaignInfo, CommitOutcome, DataOrigin, JournalEvent, ManifestEntry, StoreError,
};
use crate::util::clock::now_unix_ms;

/// Where the runs go, the manifests they are recorded with, and where they were read.
pub(super) struct Target<'a> {
    /// Data directory.
    pub(super) data: &'a Path,
    /// Campaign name.
    pub(super) name: &'a str,
    /// The manifests recorded in `campaign.json`: the report's, then those of the reports it
    /// depends on (so that the analysis re-plans without looking beside them).
    pub(super) manifests: Vec<ManifestEntry>,
    /// The source directory (or `REPORT=DIR` list) recorded as the origin.
    pub(super) source: String,
    /// The layout(s) recognised.
    pub(super) layout: String,
    /// Raw files read.
    pub(super) files: u64,
    /// Raw files that could not be read and were skipped.
    pub(super) skipped: Vec<String>,
}

/// What the commit did.
pub(super) struct Written {
    /// `<data>/<campaign>`.
    pub(super) dir: PathBuf,
    /// Cells committed now.
    pub(super) committed: u64,
    /// Cells that were committed before.
    pub(super) already_committed: u64,
    /// Runs per configuration id.
    pub(super) per_config: BTreeMap<String, u64>,
}

/// A cell ready to commit: id, encoded tables, metadata.
type Encoded = (String, Vec<(String, Vec<u8>)>, serde_json::Value);

/// Encodes every run, refuses a measured campaign of the same name, and commits.
pub(super) fn write(
    warnings: &mut Vec<String>,
    target: &Target,
    runs: &[Imported],
) -> Result<Written, ImportError> {
    let mut encoded = Vec::with_capacity(runs.len());
    let mut per_config: BTreeMap<String, u64> = BTreeMap::new();
    for r in runs {
        *per_config
            .entry(r.record.key.config.clone().unwrap_or_default())
            .or_default() += 1;
        let parts = crate::table::cell_parts(&r.record, target.name)?;
        let meta = CellMeta {
            imported_from: Some(r.file.display().to_string()),
            ..CellMeta::of(&r.record)
        }
        .to_value();
        encoded.push((r.record.key.cell_id.clone(), parts, meta));
    }
    refuse_measured(warnings, target)?;
    let mut campaign = open_campaign(target, runs.len() as u64)?;
    let (committed, already_committed) = commit(&campaign, &encoded)?;
    // A re-import of the same source: the origin says what this import read (a file skipped
    // before may be readable now, and its run committed).
    if let Some(o) = campaign.info().origin.clone()
        && o.source == target.source
        && o.layout == target.layout
        && (o.skipped != target.skipped || o.files != target.files)
    {
        campaign.record_origin(DataOrigin {
            files: target.files,
            runs: o.runs.max(runs.len() as u64),
            skipped: target.skipped.clone(),
            ..o
        })?;
    }
    Ok(Written {
        dir: campaign.dir().to_path_buf(),
        committed,
        already_committed,
        per_config,
    })
}

/// Never mix with measured cells: a campaign of that name without an import origin is
/// refused; one imported from elsewhere is a warning.
fn refuse_measured(warnings: &mut Vec<String>, target: &Target) -> Result<(), ImportError> {
    let name = target.name;
    match crate::store::open_existing(target.data, name) {
        Ok(view) => match &view.info().origin {
            None => Err(ImportError::MeasuredCampaign {
                name: name.to_owned(),
                dir: view.dir().to_path_buf(),
            }),
            Some(o) if o.source != target.source || o.layout != target.layout => {
                warnings.push(format!(
                    "campaign `{name}` was first imported from `{}` ({}); its campaign.json keeps that origin",
                    o.source, o.layout
                ));
                Ok(())
            }
            Some(_) => Ok(()),
        },
        Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Opens (or creates) the campaign with the import's origin.
fn open_campaign(target: &Target, runs: u64) -> Result<Campaign, ImportError> {
    let mut info = CampaignInfo::new(target.name, target.manifests.clone());
    info.origin = Some(DataOrigin {
        format: "chimeraforge".into(),
        source: target.source.clone(),
        layout: target.layout.clone(),
        files: target.files,
        runs,
        skipped: target.skipped.clone(),
    });
    let campaign = Campaign::open(target.data, target.name, info)?;
    if campaign.info().origin.is_none() {
        // Created between the check and the lock by a `chimera run`.
        return Err(ImportError::MeasuredCampaign {
            name: target.name.to_owned(),
            dir: campaign.dir().to_path_buf(),
        });
    }
    Ok(campaign)
}

/// Commits the cells not committed yet, between a started and a finished journal event;
/// returns (committed now, committed before).
fn commit(campaign: &Campaign, encoded: &[Encoded]) -> Result<(u64, u64), ImportError> {
    let committed = campaign.committed()?;
    let already_before = encoded
        .iter()
        .filter(|(id, _, _)| committed.contains(id))
        .count() as u64;
    let run_id = format!("import-{:x}", now_unix_ms() as u64);
    campaign.journal(&JournalEvent::Started {
        run_id: run_id.clone(),
        cells_total: encoded.len() as u64,
        committed: already_before,
        to_run: encoded.len() as u64 - already_before,
        at_unix_ms: now_unix_ms(),
    })?;
    let (mut new, mut already) = (0u64, 0u64);
    for (id, parts, meta) in encoded {
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
                    at_unix_ms: now_unix_ms(),
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
        at_unix_ms: now_unix_ms(),
    })?;
    Ok((new, already))
}
