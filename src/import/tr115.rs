//! TR115 (v2, and the superseded v1): the H6 Rust multi-agent harness built once per async
//! runtime, every repetition a separate `--runs 1` invocation (tr-spec §9.2, §9.5).
//!
//! ```text
//! runtime-<name>/<config>/run_k/run_1/metrics.json   repetition k of <runtime>/<config>
//! runtime-<name>/<config>/run_k/summary.json         that invocation's summary (cross-check)
//! **/*.md                                            generated reports, not runs
//! ```
//!
//! The source is the folder holding the `runtime-<name>/` folders (`results_v2/`, `results/`),
//! or one `runtime-<name>/` folder itself (the runtime is then its name). A run maps onto the
//! manifest's configuration of that runtime whose enumerated id is the folder name
//! (`"{runtime}/{id}"`), repetition k; the rest is read as [`super::h6`] reads TR114_v2.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::context::{Ctx, Imported, LayoutText};
use super::error::ImportError;
use super::h6::{Efficiencies, check_summary, read_run, run_folder};
use crate::manifest::Runtime;

/// The prefix of a runtime folder.
const PREFIX: &str = "runtime-";

/// The layout's files, for its errors.
const TEXT: LayoutText<'static> = LayoutText {
    expected: "`runtime-<name>/` folders (e.g. `runtime-tokio-default/`) holding `<config>/run_k/run_1/metrics.json`, or one such folder",
    holds: "runs are `runtime-<name>/<config>/run_k/run_1/metrics.json`, invocation summaries `runtime-<name>/<config>/run_k/summary.json`",
    help: "move the file out of the directory, or point at the report's own raw-data folder (`results_v2/` or one `runtime-<name>/`)",
};

/// A run file: path, runtime folder, configuration folder, repetition, the file's run number.
type RunFile = (PathBuf, String, String, u32, u32);
/// An invocation summary: path, runtime folder, configuration folder, repetition.
type SummaryFile = (PathBuf, String, String, u32);

/// Reads every run of the tree.
pub(crate) fn read(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<Imported>, ImportError> {
    let (run_files, summaries) = classify(ctx, files)?;
    // (runtime folder, configuration folder) → configuration.
    let mut configs: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let folders = run_files.iter().map(|r| (&r.1, &r.2));
    for (rt, cfg) in folders.chain(summaries.iter().map(|s| (&s.1, &s.2))) {
        if let Entry::Vacant(e) = configs.entry((rt.as_str(), cfg.as_str())) {
            e.insert(config_of(ctx, rt, cfg)?);
        }
    }
    let mut eff: Efficiencies = HashMap::new();
    let mut out = Vec::new();
    for (path, rt, cfg, k, file_run) in &run_files {
        let ci = configs[&(rt.as_str(), cfg.as_str())];
        let (imported, e) = read_run(ctx, ci, path, *k, *file_run)?;
        eff.insert((ci, *k), e);
        out.push(imported);
    }
    for (path, rt, cfg, k) in &summaries {
        let ci = configs[&(rt.as_str(), cfg.as_str())];
        check_summary(ctx, &eff, ci, path, Some(*k))?;
    }
    Ok(out)
}

/// The runtime folder a source that *is* one (`…/runtime-smol/`) stands for.
fn source_runtime(ctx: &Ctx) -> Option<String> {
    let name = ctx.source.file_name()?.to_str()?;
    name.starts_with(PREFIX).then(|| name.to_owned())
}

/// The run files and invocation summaries of the tree; anything else is refused.
fn classify(
    ctx: &mut Ctx,
    files: &[PathBuf],
) -> Result<(Vec<RunFile>, Vec<SummaryFile>), ImportError> {
    let implied = source_runtime(ctx);
    let mut runs = Vec::new();
    let mut summaries = Vec::new();
    let mut unknown = Vec::new();
    let (files, markdown) = super::context::without_markdown(ctx, files);
    for (f, c) in files {
        let c: Vec<&str> = implied
            .as_deref()
            .into_iter()
            .chain(c.iter().map(String::as_str))
            .collect();
        match c.as_slice() {
            [rt, cfg, outer, inner, "metrics.json"] if rt.starts_with(PREFIX) => {
                match (run_folder(outer), run_folder(inner)) {
                    (Some(k), Some(n)) => {
                        runs.push((f.clone(), rt.to_string(), cfg.to_string(), k, n))
                    }
                    _ => unknown.push(f.clone()),
                }
            }
            [rt, cfg, outer, "summary.json"] if rt.starts_with(PREFIX) => match run_folder(outer) {
                Some(k) => summaries.push((f.clone(), rt.to_string(), cfg.to_string(), k)),
                None => unknown.push(f.clone()),
            },
            _ => unknown.push(f.clone()),
        }
    }
    super::context::settle(ctx, &TEXT, !runs.is_empty(), &unknown, markdown)?;
    Ok((runs, summaries))
}

/// The configuration of `runtime-<rt>/<cfg>`: the manifest's configuration of that runtime
/// whose enumerated id is `cfg`.
fn config_of(ctx: &Ctx, rt_folder: &str, cfg: &str) -> Result<usize, ImportError> {
    let rt_dir = match source_runtime(ctx) {
        Some(_) => ctx.source.to_path_buf(),
        None => ctx.source.join(rt_folder),
    };
    let runtime = runtime_of(ctx, rt_folder, &rt_dir)?;
    let dir = rt_dir.join(cfg);
    let base = ctx.plan.reports[ctx.ri].configs.start;
    let hit = ctx
        .configs()
        .iter()
        .position(|c| c.runtime == Some(runtime) && c.base_id.as_deref().unwrap_or(&*c.id) == cfg);
    match hit {
        Some(i) => Ok(base + i),
        // Not planned: the error names the id the folder stands for and the nearest one.
        None => ctx.config(&format!("{runtime}/{cfg}"), &dir, "configuration folder"),
    }
}

/// The runtime a `runtime-<name>` folder names, planned by the manifest.
fn runtime_of(ctx: &Ctx, folder: &str, dir: &Path) -> Result<Runtime, ImportError> {
    let name = folder.strip_prefix(PREFIX).unwrap_or(folder);
    let planned: Vec<Runtime> = {
        let mut v: Vec<Runtime> = ctx.configs().iter().filter_map(|c| c.runtime).collect();
        v.sort();
        v.dedup();
        v
    };
    match name.parse::<Runtime>() {
        Ok(r) if planned.contains(&r) => Ok(r),
        _ => {
            let folders = planned.iter().map(|r| format!("`{PREFIX}{r}`"));
            Err(ctx.unknown_id(
                dir,
                "runtime folder",
                folder,
                folders.collect::<Vec<_>>().join(", "),
                "runtime folders are `runtime-<runtime>` with a runtime of the manifest's `runtime` axis".into(),
            ))
        }
    }
}
