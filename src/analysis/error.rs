//! The errors of the analysis stage.

use std::path::PathBuf;

use crate::store;

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
