//! The top-level error and the documented exit codes.

use crate::plan::PlanError;

/// Success.
pub const EXIT_OK: i32 = 0;
/// The campaign finished, but some cells failed.
pub const EXIT_FAILED_CELLS: i32 = 1;
/// Invalid input: a manifest, a flag, a path, a missing file.
pub const EXIT_INVALID_INPUT: i32 = 2;
/// The subcommand exists but is not built yet.
pub const EXIT_NOT_BUILT: i32 = 3;
/// Interrupted (Ctrl-C / SIGTERM); committed cells are kept.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Everything that can stop a chimera command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Manifests or the plan are invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Writing output failed.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    /// The subcommand is not built yet.
    #[error("`chimera {command}` is not built yet ({what}).\n  = help: {help}")]
    NotBuilt {
        /// Subcommand.
        command: &'static str,
        /// What it will do.
        what: &'static str,
        /// What to use meanwhile.
        help: &'static str,
    },
    /// `chimera emulate` could not start (bad profile, address in use, truth file).
    #[error("chimera emulate: {0}")]
    Emulator(String),
    /// A flag that cannot be applied (its message names the flag and the fix).
    #[error("{0}")]
    Usage(String),
    /// Stopped by Ctrl-C / SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// A run could not go on.
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
    /// The campaign stopped (store, tables, runner).
    #[error(transparent)]
    Campaign(#[from] crate::run::campaign::CampaignError),
    /// `chimera status` could not report.
    #[error(transparent)]
    Status(#[from] crate::store::StatusError),
    /// Tables could not be read or written.
    #[error(transparent)]
    Table(crate::table::TableError),
    /// A report could not be written.
    #[error(transparent)]
    Report(crate::report::ReportError),
    /// The analysis could not read or write a campaign.
    #[error(transparent)]
    Analysis(#[from] crate::analysis::AnalysisError),
    /// `chimera import` refused or failed (nothing is written when the raw files do not
    /// validate).
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    /// `chimera slurm` could not submit (Slurm absent, sbatch refusing, bad options).
    #[error(transparent)]
    Slurm(#[from] crate::scale::slurm::SlurmError),
    /// `chimera k8s` could not write the objects.
    #[error(transparent)]
    K8s(#[from] crate::scale::k8s::K8sError),
    /// `compare` could not match the campaigns.
    #[error(transparent)]
    Compare(#[from] crate::analysis::ab::AbError),
    /// `compare --fail-if-slower`: B is slower beyond the threshold.
    #[error("B is slower than A by more than {threshold} %: {what}")]
    Regression {
        /// The threshold.
        threshold: f64,
        /// Which configurations and metrics, by how much.
        what: String,
    },
    /// `status --require-complete`: cells remain.
    #[error(
        "{remaining} cell(s) of the campaign are not committed\n  = help: run them (a resume, or \
         `chimera slurm resubmit` for a sharded campaign), then ask again"
    )]
    Incomplete {
        /// Cells a resume would run.
        remaining: usize,
    },
    /// The run finished, but some cells failed (their errors are in the records).
    #[error("{failed} of {total} cells failed; their errors are in the cell records")]
    FailedCells {
        /// Failed cells.
        failed: usize,
        /// All cells.
        total: usize,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Plan(_) => EXIT_INVALID_INPUT,
            Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
            Error::Output(_) => EXIT_INVALID_INPUT,
            Error::NotBuilt { .. } => EXIT_NOT_BUILT,
            Error::Emulator(_) | Error::Usage(_) => EXIT_INVALID_INPUT,
            Error::Interrupted => EXIT_INTERRUPTED,
            Error::Run(_) => EXIT_INVALID_INPUT,
            Error::FailedCells { .. } | Error::Incomplete { .. } => EXIT_FAILED_CELLS,
            Error::Regression { .. } => EXIT_FAILED_CELLS,
            Error::Compare(_) => EXIT_INVALID_INPUT,
            Error::Import(_) => EXIT_INVALID_INPUT,
            Error::Campaign(_) | Error::Status(_) | Error::Table(_) => EXIT_INVALID_INPUT,
            Error::Analysis(_) | Error::Report(_) => EXIT_INVALID_INPUT,
            Error::Slurm(_) | Error::K8s(_) => EXIT_INVALID_INPUT,
        }
    }
}
