//! What the listing of a source holds before a layout's reader sees it: files that are not
//! data (scripts and notes left beside the results) are ignored and counted in one note, and
//! a `metrics.json` that cannot be read (truncated, damaged) is named in a warning and skipped,
//! unless most of them are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::context::Ctx;
use super::error::ImportError;

/// The extensions of data files for `report`: TR108 kept CSVs (and JSON beside them), every
/// other harness JSON. Markdown is passed on too: the readers recognise the harnesses'
/// generated reports and count them.
fn data_extensions(report: &str) -> &'static [&'static str] {
    if super::layout::normalize_report(report) == "tr108" {
        &["csv", "json", "md"]
    } else {
        &["json", "md"]
    }
}

/// The extension of a file name, lower case (`""` for none).
fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// `files` without those that are not data for the report; one note says how many were
/// ignored, by extension.
pub(super) fn drop_not_data(ctx: &mut Ctx, files: Vec<PathBuf>) -> Vec<PathBuf> {
    let keep = data_extensions(ctx.report());
    let mut ignored: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = extension(&name);
        if keep.contains(&ext.as_str()) {
            out.push(f);
        } else {
            *ignored.entry(ext).or_default() += 1;
        }
    }
    let n: usize = ignored.values().sum();
    if n > 0 {
        let mut by: Vec<(String, usize)> = ignored.into_iter().collect();
        by.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let parts: Vec<String> = by
            .iter()
            .map(|(e, k)| {
                if e.is_empty() {
                    format!("no extension {k}")
                } else {
                    format!(".{e} {k}")
                }
            })
            .collect();
        ctx.notes.push(format!(
            "{n} file{} that {} not data ignored ({})",
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" },
            parts.join(", ")
        ));
    }
    out
}

/// `files` without the `metrics.json` files that cannot be read or are not JSON at all
/// (truncated, damaged): each is named in a warning and recorded in `ctx.skipped`. When more
/// than half of the `metrics.json` files are such, the source is refused: that is not a
/// damaged file among good ones but a damaged (or foreign) folder. A file that is not a
/// regular file, or is oversized, is still refused outright (it is never read).
pub(super) fn drop_unreadable(
    ctx: &mut Ctx,
    files: Vec<PathBuf>,
) -> Result<Vec<PathBuf>, ImportError> {
    let mut out = Vec::with_capacity(files.len());
    let mut bad: Vec<(PathBuf, ImportError)> = Vec::new();
    let mut runs = 0usize;
    for f in files {
        if f.file_name().is_none_or(|n| n != "metrics.json") {
            out.push(f);
            continue;
        }
        runs += 1;
        let parsed = match ctx.read(&f) {
            Ok(bytes) => {
                let mut de = serde_json::Deserializer::from_slice(&bytes);
                <serde::de::IgnoredAny as serde::Deserialize>::deserialize(&mut de)
                    .and_then(|_| de.end())
                    .map_err(|e| super::convert::json_error(&f, String::new(), &e))
            }
            Err(e @ ImportError::Io { .. }) => Err(e),
            Err(e) => return Err(e),
        };
        match parsed {
            Ok(()) => out.push(f),
            Err(e) => bad.push((f, e)),
        }
    }
    if bad.is_empty() {
        return Ok(out);
    }
    if bad.len() * 2 > runs {
        let (first, e) = bad.swap_remove(0);
        let n = bad.len() + 1;
        return Err(ImportError::Invalid {
            path: ctx.source.to_path_buf(),
            message: format!(
                "{n} of the {runs} `metrics.json` files cannot be read (the first, `{}`: {})",
                ctx.rel(&first).display(),
                e.to_string().lines().next().unwrap_or_default()
            ),
            help: "most of the runs are damaged: restore the folder from the original repository (tr-spec §0.2 names the commit); one damaged file among good ones is skipped".into(),
        });
    }
    for (f, e) in bad {
        let rel = ctx.rel(&f).display().to_string();
        let shown = f.display().to_string();
        let why = e.to_string();
        let why = why
            .lines()
            .next()
            .unwrap_or_default()
            .replace(&format!("`{shown}`: "), "")
            .replace(&format!(" `{shown}`"), "");
        ctx.warn(format!(
            "skipped `{rel}`: {why}; the other runs are imported and the run stays unrun"
        ));
        ctx.skipped.push(rel);
    }
    Ok(out)
}
