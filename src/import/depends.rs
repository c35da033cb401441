//! A comparison report that runs nothing of its own (TR112_v2 compares TR109's Python data
//! with TR111_v2's Rust data, tr-spec §6): its import reads the raw data of every report it
//! depends on, each with that report's own layout, into one campaign that records all their
//! manifests, so that `chimera analyze` finds the rows its references select (by `language`,
//! `block`, `config`) in one place.
//!
//! Each dependency's folder is the one `--from REPORT=DIR` names, or else the folder named
//! after the report in the source directory (`tr109/`, `tr111_v2/`, as in the fixtures).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::context::Ctx;
use super::error::ImportError;
use super::layout::{Layout, normalize_report};
use super::{ImportOptions, ImportSummary, Source, read_runs, write};
use crate::plan::Plan;
use crate::store::ManifestEntry;

/// True when report `ri` plans no configuration of its own but depends on other reports.
pub(super) fn imports_dependencies(plan: &Plan, ri: usize) -> bool {
    let rp = &plan.reports[ri];
    rp.configs.is_empty() && !rp.manifest.spec.depends_on.is_empty()
}

/// The plan's reports that report `ri` depends on, in plan (dependency) order.
fn dependencies(plan: &Plan, ri: usize) -> Vec<usize> {
    let deps: Vec<String> = plan.reports[ri]
        .manifest
        .spec
        .depends_on
        .iter()
        .map(|d| normalize_report(d))
        .collect();
    (0..plan.reports.len())
        .filter(|&j| j != ri && deps.contains(&normalize_report(&plan.reports[j].report)))
        .collect()
}

/// The folder of dependency `report`: the `--from` one, or the subfolder of `root` named
/// after it.
fn folder_of(
    root: &Path,
    from: &[(String, PathBuf)],
    report: &str,
    main: &str,
) -> Result<PathBuf, ImportError> {
    let want = normalize_report(report);
    if let Some((_, dir)) = from.iter().find(|(r, _)| normalize_report(r) == want) {
        return Ok(dir.clone());
    }
    let hit = std::fs::read_dir(root).ok().and_then(|rd| {
        let mut names: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| normalize_report(n) == want)
            })
            .collect();
        names.sort();
        names.into_iter().next()
    });
    hit.ok_or_else(|| ImportError::Report {
        message: format!(
            "{main} compares the data of the reports it depends on, but there is no folder for {report}: neither `--from {report}=DIR` nor `{}`",
            root.join(report.to_ascii_lowercase()).display()
        ),
        help: format!(
            "pass the folder that holds one folder per report (`{}/`), or --from {report}=DIR for each",
            report.to_ascii_lowercase()
        ),
    })
}

/// Imports every report `ri` depends on into one campaign `name`.
pub(super) fn import(
    opts: &ImportOptions,
    plan: &Plan,
    ri: usize,
    name: &str,
    from: &[(String, PathBuf)],
) -> Result<ImportSummary, ImportError> {
    let rp = &plan.reports[ri];
    let deps = dependencies(plan, ri);
    for (r, _) in from {
        if !deps
            .iter()
            .any(|&j| normalize_report(&plan.reports[j].report) == normalize_report(r))
        {
            return Err(ImportError::Report {
                message: format!("--from {r}=…, but {} does not depend on {r}", rp.report),
                help: format!(
                    "{} depends on {}",
                    rp.report,
                    rp.manifest.spec.depends_on.join(", ")
                ),
            });
        }
    }
    let locate = |report: &str| -> Result<Source, ImportError> {
        let dir = folder_of(&opts.source, from, report, &rp.report)?;
        super::is_dir(&dir)?;
        Ok(Source::Dir(dir))
    };
    import_with(opts, plan, ri, name, &locate)
}

/// Imports every report `ri` depends on into one campaign `name`, each from the source
/// `locate` gives for its report id (a folder, or a tree of the original repository).
pub(super) fn import_with(
    opts: &ImportOptions,
    plan: &Plan,
    ri: usize,
    name: &str,
    locate: &dyn Fn(&str) -> Result<Source, ImportError>,
) -> Result<ImportSummary, ImportError> {
    let rp = &plan.reports[ri];
    let deps = dependencies(plan, ri);
    let mut all = Vec::new();
    let (mut notes, mut warnings) = (Vec::new(), Vec::new());
    let (mut sources, mut layouts) = (Vec::new(), Vec::new());
    let mut files = 0;
    let mut skipped = Vec::new();
    let mut per_config: BTreeMap<String, u64> = BTreeMap::new();
    let mut manifests = vec![ManifestEntry::new(
        &opts.manifest.display().to_string(),
        &rp.report,
        &rp.manifest.source,
    )];
    for j in deps {
        let dep = &plan.reports[j];
        let layout =
            Layout::of_report(&dep.report).ok_or_else(|| ImportError::UnsupportedReport {
                report: dep.report.clone(),
                manifest: dep.manifest.path.clone(),
                help: format!(
                    "{} depends on a report whose raw results cannot be imported",
                    rp.report
                ),
            })?;
        let src = locate(&dep.report)?;
        let mut ctx = Ctx::of_source(plan, j, &src, layout);
        let runs = read_runs(&mut ctx)?;
        files += ctx.files;
        skipped.extend(ctx.skipped.iter().map(|p| format!("{}: {p}", dep.report)));
        let tag = |m: String| format!("{}: {m}", dep.report);
        notes.extend(std::mem::take(&mut ctx.notes).into_iter().map(tag));
        warnings.extend(std::mem::take(&mut ctx.warnings).into_iter().map(tag));
        for r in &runs {
            let id = r.record.key.config.as_deref().unwrap_or_default();
            *per_config
                .entry(format!("{}/{id}", dep.report))
                .or_default() += 1;
        }
        sources.push(format!("{}={}", dep.report, src.describe()));
        layouts.push(format!("{}: {}", dep.report, layout.name()));
        let path =
            std::fs::canonicalize(&dep.manifest.path).unwrap_or_else(|_| dep.manifest.path.clone());
        manifests.push(ManifestEntry::new(
            &path.display().to_string(),
            &dep.report,
            &dep.manifest.source,
        ));
        all.extend(runs);
    }
    let target = write::Target {
        data: &opts.data,
        name,
        manifests,
        source: sources.join("; "),
        layout: layouts.join("; "),
        files,
        skipped: skipped.clone(),
    };
    let done = write::write(&mut warnings, &target, &all)?;
    Ok(ImportSummary {
        report: rp.report.clone(),
        campaign: name.to_owned(),
        campaign_dir: done.dir,
        layout: target.layout,
        files,
        runs: all.len() as u64,
        committed: done.committed,
        already_committed: done.already_committed,
        per_config,
        notes,
        warnings,
        skipped,
    })
}
