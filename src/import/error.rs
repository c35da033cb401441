//! Why an import stops.

use std::path::PathBuf;

use crate::plan::PlanError;
use crate::store::StoreError;
use crate::table::TableError;

/// Why an import stopped. Every message names the file (and the JSON key or CSV line) and
/// says what to change; nothing is written when any of these occurs before the commit.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] PlanError),
    /// `--report` names no manifest, or the manifest declares another report.
    #[error("{message}\n  = help: {help}")]
    Report {
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// No chimeraforge layout is known for the manifest's report.
    #[error(
        "report `{report}` (`{}`) has no chimeraforge raw-data layout\n  = expected: one of TR108, TR109, TR110, TR111_v2, TR113, TR114_v2, TR115_v2, TR116\n  = help: {help}",
        .manifest.display()
    )]
    UnsupportedReport {
        /// Report id.
        report: String,
        /// Manifest.
        manifest: PathBuf,
        /// What to do.
        help: String,
    },
    /// A file or directory could not be read.
    #[error("cannot read `{}`: {source}", .path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// A raw-data path is not a regular file (a FIFO, a device, a socket, a directory, or a
    /// symlink to one of them): it is never opened for reading.
    #[error(
        "cannot read `{}`: not a regular file (it is {kind})\n  = help: raw results are plain files; replace it with the file from the original repository, or move it out of the directory",
        .path.display()
    )]
    NotRegularFile {
        /// Path.
        path: PathBuf,
        /// What it is instead (`a FIFO (named pipe)`, `a character device`…).
        kind: &'static str,
    },
    /// A raw-data file is larger than any raw result.
    #[error(
        "cannot read `{}`: it is {size} bytes, over the limit of {limit} bytes for one raw-data file\n  = help: the original raw files are a few MiB at most; this is not one of them: restore it from the original repository, or move it out of the directory",
        .path.display()
    )]
    FileTooLarge {
        /// Path.
        path: PathBuf,
        /// Its size (or the bytes read before the limit was passed).
        size: u64,
        /// The limit (256 MiB).
        limit: u64,
    },
    /// The directory does not look like the report's layout.
    #[error(
        "`{}` does not look like the {layout} raw data of {report}\n  = expected: {expected}\n  = found: {found}\n  = help: {help}",
        .dir.display()
    )]
    Layout {
        /// The directory given.
        dir: PathBuf,
        /// Report id.
        report: String,
        /// Layout name.
        layout: String,
        /// What was expected.
        expected: String,
        /// What is there.
        found: String,
        /// What to do.
        help: String,
    },
    /// Without `--report`: the folder's layout is no report's, is two reports' (mixed), or
    /// could be either of two (ambiguous).
    #[error(
        "`{}` {message}\n  = expected: {expected}\n  = found: {found}\n  = help: {help}",
        .dir.display()
    )]
    Undetected {
        /// The directory given.
        dir: PathBuf,
        /// What is wrong.
        message: String,
        /// What was expected.
        expected: String,
        /// What is there.
        found: String,
        /// What to do.
        help: String,
    },
    /// A JSON file is not valid JSON (truncated, damaged).
    #[error(
        "`{}`: not valid JSON at line {line}, column {column}: {message}\n  = help: the file is truncated or damaged; restore it from the original repository (tr-spec §0.2 names the commit)",
        .path.display()
    )]
    Json {
        /// File.
        path: PathBuf,
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// serde_json's message.
        message: String,
    },
    /// A JSON key is missing or has the wrong type.
    #[error("`{}`: key `{key}`: {message}\n  = help: {help}", .path.display())]
    Key {
        /// File.
        path: PathBuf,
        /// Key path, e.g. `collector.result.llm_calls[0].metrics`.
        key: String,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A CSV file or line cannot be used.
    #[error("`{}`: line {line}: {message}\n  = help: {help}", .path.display())]
    Csv {
        /// File.
        path: PathBuf,
        /// Line (1-based; 1 is the header).
        line: usize,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A folder (or file) names a configuration, scenario or test the manifest does not have.
    #[error(
        "`{}`: {what} `{id}` is not in {report} (`{}`)\n  = expected one of: {expected}\n  = help: {help}",
        .path.display(), .manifest.display()
    )]
    UnknownId {
        /// The folder or file.
        path: PathBuf,
        /// "test folder", "scenario folder", "configuration folder"…
        what: &'static str,
        /// The id found.
        id: String,
        /// Report id.
        report: String,
        /// Manifest.
        manifest: PathBuf,
        /// The ids the manifest has.
        expected: String,
        /// What to do.
        help: String,
    },
    /// A run number outside the manifest's repetitions.
    #[error(
        "`{}`: run {found} of `{config}` is outside 1..={max} (the manifest's repetitions)\n  = help: raise `repetitions` for this configuration in `{}`, or remove the run",
        .path.display(), .manifest.display()
    )]
    RunNumber {
        /// File.
        path: PathBuf,
        /// Configuration id.
        config: String,
        /// Run number found.
        found: u32,
        /// Repetitions planned.
        max: u32,
        /// Manifest.
        manifest: PathBuf,
    },
    /// Two files are the same run of the same configuration.
    #[error(
        "`{}` and `{}` are both run {repetition} of `{config}`\n  = help: keep one of them (move the other out of the directory)",
        .first.display(), .second.display()
    )]
    Duplicate {
        /// First file.
        first: PathBuf,
        /// Second file.
        second: PathBuf,
        /// Configuration id.
        config: String,
        /// Run number.
        repetition: u32,
    },
    /// A file whose content or name this importer does not understand.
    #[error("`{}`: {message}\n  = help: {help}", .path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// The target campaign holds measured cells.
    #[error(
        "campaign `{name}` (`{}`) holds measured cells: its campaign.json has no `origin`, and imported runs are never mixed with measured ones\n  = help: pass --campaign with another name (the default is `chimeraforge-<manifest stem>`)",
        .dir.display()
    )]
    MeasuredCampaign {
        /// Campaign name.
        name: String,
        /// Its directory.
        dir: PathBuf,
    },
    /// A git repository could not be read (`import chimeraforge --git`), or lacks the commit
    /// that holds a report's raw results.
    #[error("{message}\n  = help: {help}")]
    Git {
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// The store refused (lock held, unwritable, newer format…).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cell's tables could not be encoded.
    #[error(transparent)]
    Table(#[from] TableError),
}
