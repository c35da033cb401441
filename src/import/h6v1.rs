//! H6v1, the first Rust multi-agent harness (TR113: `Demo_rust_multiagent_results/`): one
//! folder per configuration, one run each, both agents on one Ollama server (tr-spec §7.4).
//!
//! ```text
//! <config>/run_k/metrics.json   one concurrent run: collector (A) + insight (B), each with
//!                               one streamed persona call (`individual_runs[1]`)
//! <config>/summary.json         the configuration's RunSummary list and averages (cross-check)
//! **/*.md                       generated reports, not runs
//! ```
//!
//! The folder names are the manifest's configuration ids (`bvc_gpu60_ctx512_temp0p6`,
//! `baseline_gpu80_ctx512_temp0p8`, `hetero_het_g60c512t06__g120c1024t08`,
//! `homo_gpu80_ctx1024_temp0p6`…). A run file is read exactly as an H6v2 one (the shapes are
//! the same but for `individual_runs` instead of `llm_calls` and no `workflow`): published
//! speedup, efficiency and contention are recomputed from the agents' client durations and
//! the wall, and compared with the stored ones.

use std::path::PathBuf;

use super::context::{Ctx, Imported, LayoutText, RAW_FOLDER_HELP};
use super::error::ImportError;
use super::h6::{read_resolved, run_folder};

/// Reads every run of the tree.
pub(crate) fn read(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<Imported>, ImportError> {
    let (run_files, summary_files) = classify(ctx, files)?;
    let mut runs = Vec::with_capacity(run_files.len());
    for (path, config, k) in run_files {
        let ci = ctx.config(&config, &ctx.source.join(&config), "configuration folder")?;
        runs.push((path, ci, k));
    }
    let mut summaries = Vec::with_capacity(summary_files.len());
    for (path, config) in summary_files {
        let ci = ctx.config(&config, &ctx.source.join(&config), "configuration folder")?;
        summaries.push((path, ci));
    }
    read_resolved(ctx, &runs, &summaries)
}

/// A run file: path, configuration folder, run number.
type RunFile = (PathBuf, String, u32);
/// A per-configuration summary: path, configuration folder.
type SummaryFile = (PathBuf, String);

/// The layout's files, for its errors.
const TEXT: LayoutText<'static> = LayoutText {
    expected: "configuration folders (e.g. `bvc_gpu60_ctx512_temp0p6/`, `homo_gpu80_ctx1024_temp0p6/`) holding `run_1/metrics.json` and `summary.json`",
    holds: "runs are `<config>/run_k/metrics.json`, per-configuration summaries `<config>/summary.json`",
    help: RAW_FOLDER_HELP,
};

/// The run files and summaries of the tree; anything else is refused.
fn classify(
    ctx: &mut Ctx,
    files: &[PathBuf],
) -> Result<(Vec<RunFile>, Vec<SummaryFile>), ImportError> {
    let (files, markdown) = super::context::without_markdown(ctx, files);
    let (mut runs, mut summaries, mut unknown): (Vec<RunFile>, Vec<SummaryFile>, Vec<PathBuf>) =
        Default::default();
    for (f, c) in files {
        match c.as_slice() {
            [config, run, m] if m == "metrics.json" => match run_folder(run) {
                Some(k) => runs.push((f.clone(), config.clone(), k)),
                None => unknown.push(f.clone()),
            },
            [config, s] if s == "summary.json" => summaries.push((f.clone(), config.clone())),
            _ => unknown.push(f.clone()),
        }
    }
    super::context::settle(ctx, &TEXT, !runs.is_empty(), &unknown, markdown)?;
    Ok((runs, summaries))
}
