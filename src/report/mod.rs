//! Stage 6: TR-style Markdown reports with SVG charts, rendered from an [`crate::analysis::model::Analysis`].
//!
//! One Markdown file per report (`<REPORT>.md`) and its charts (`figures/<report>-*.svg`),
//! and/or one self-contained HTML page (`<REPORT>.html`: the same sections, charts inline,
//! sortable tables, hover values; see `html`). The
//! report states first where its numbers come from (imported, emulator, measured; on CPU when
//! no endpoint reported a GPU), then the environment as published next to the provenance as
//! measured, the method, the results, the published efficiency next to the honest one, the
//! Welch comparisons, the findings, and a verdict per published number. Every number is
//! formatted from the analysis by the helpers in `format`; rendering is a pure function, so the
//! same analysis always gives the same bytes.

pub mod ab;
mod charts;
mod effects;
mod format;
mod html;
mod markdown;
mod server_metrics;
mod serving;
mod suspect;
mod svg;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::analysis::model::{Analysis, ReportAnalysis};

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A directory could not be created.
    #[error("cannot create the directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file could not be written (to its temporary name) or synced.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A written file could not be moved to its final name.
    #[error("cannot rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The final name.
        to: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Two reports of the analysis would write the same file.
    #[error(
        "reports `{first}` and `{second}` would both be written to {}",
        path.display()
    )]
    SameFile {
        /// The first report.
        first: String,
        /// The second report.
        second: String,
        /// The file both map to.
        path: PathBuf,
    },
}

/// The files written for one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Report id.
    pub report: String,
    /// The Markdown file (when Markdown was asked for).
    pub markdown: Option<PathBuf>,
    /// The HTML page (when HTML was asked for).
    pub html: Option<PathBuf>,
    /// The SVG charts the Markdown links, in the order it shows them (none without Markdown:
    /// the HTML page holds its charts).
    pub figures: Vec<PathBuf>,
}

impl Written {
    /// The report's files: the Markdown, then the HTML page, as written.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.markdown.iter().chain(self.html.iter())
    }
}

/// Which report files to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    /// `<REPORT>.md` and its `figures/*.svg`.
    pub markdown: bool,
    /// `<REPORT>.html`, self-contained.
    pub html: bool,
}

impl Formats {
    /// Markdown only (the default of `chimera report`).
    pub const MARKDOWN: Formats = Formats {
        markdown: true,
        html: false,
    };
}

/// The Markdown of one report. Charts are linked as `figures_dir/<file>` (a relative link
/// prefix such as `figures`; empty for the same directory), with the file names of
/// [`render_figures`].
pub fn render_markdown(a: &Analysis, r: &ReportAnalysis, figures_dir: &str) -> String {
    markdown::render(a, r, figures_dir, &charts::figures(r))
}

/// The self-contained HTML page of one report: the sections of [`render_markdown`], the
/// charts inline, sortable tables and hover values; nothing outside the file is loaded.
pub fn render_html(a: &Analysis, r: &ReportAnalysis) -> String {
    let figures = charts::figures(r);
    let md = markdown::render(a, r, "figures", &figures);
    html::render(&r.title, &md, "figures", &figures)
}

/// The charts of one report as (file name, SVG text); file names start with the report id in
/// lower case. A chart with no data is left out.
pub fn render_figures(r: &ReportAnalysis) -> Vec<(String, String)> {
    charts::figures(r)
        .into_iter()
        .map(|f| (f.file, f.svg))
        .collect()
}

/// Writes `out_dir/<REPORT>.md` and `out_dir/figures/*.svg` for every report of the analysis.
/// Each file is written to a temporary name in its directory, synced, then renamed, so a
/// reader never sees half a file.
pub fn write_reports(a: &Analysis, out_dir: &Path) -> Result<Vec<Written>, ReportError> {
    write_reports_as(a, out_dir, Formats::MARKDOWN)
}

/// Writes every report of the analysis in `formats`: `out_dir/<REPORT>.md` with
/// `out_dir/figures/*.svg`, and/or `out_dir/<REPORT>.html`; each file atomically (see
/// [`write_reports`]).
pub fn write_reports_as(
    a: &Analysis,
    out_dir: &Path,
    formats: Formats,
) -> Result<Vec<Written>, ReportError> {
    let fig_dir = out_dir.join("figures");
    let dirs: &[&Path] = if formats.markdown {
        &[out_dir, fig_dir.as_path()]
    } else {
        &[out_dir]
    };
    for d in dirs.iter().copied() {
        std::fs::create_dir_all(d).map_err(|source| ReportError::CreateDir {
            path: d.to_path_buf(),
            source,
        })?;
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in &a.reports {
        let stem = format::file_stem(&r.report).to_lowercase();
        if let Some((first, _)) = seen.iter().find(|(_, s)| *s == stem) {
            return Err(ReportError::SameFile {
                first: first.clone(),
                second: r.report.clone(),
                path: out_dir.join(format!("{}.md", format::file_stem(&r.report))),
            });
        }
        seen.push((r.report.clone(), stem));
    }
    let mut out = Vec::with_capacity(a.reports.len());
    for r in &a.reports {
        let figures = charts::figures(r);
        let text = markdown::render(a, r, "figures", &figures);
        let stem = format::file_stem(&r.report);
        let mut written = Written {
            report: r.report.clone(),
            markdown: None,
            html: None,
            figures: Vec::new(),
        };
        if formats.markdown {
            for f in &figures {
                let path = fig_dir.join(&f.file);
                write_atomic(&path, f.svg.as_bytes())?;
                written.figures.push(path);
            }
            let md = out_dir.join(format!("{stem}.md"));
            write_atomic(&md, text.as_bytes())?;
            written.markdown = Some(md);
        }
        if formats.html {
            let page = html::render(&r.title, &text, "figures", &figures);
            let path = out_dir.join(format!("{stem}.html"));
            write_atomic(&path, page.as_bytes())?;
            written.html = Some(path);
        }
        out.push(written);
    }
    Ok(out)
}

/// Writes `bytes` to `.<name>.tmp` beside `path`, syncs it, and renames it to `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(source) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ReportError::Write { path: tmp, source });
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Rename {
            from: tmp.clone(),
            to: path.to_path_buf(),
            source,
        }
    })
}
