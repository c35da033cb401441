//! The errors that stop a campaign ([`CampaignError`]).

use super::RunError;
use crate::server::ManagedError;
use crate::store::StoreError;
use crate::table::TableError;

/// Errors that stop a campaign.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The store refused (lock held, newer format, read-only, full disk...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cell's tables could not be encoded.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The runner could not be prepared.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Ctrl-C / SIGTERM.
    #[error("interrupted; committed cells are kept, run the same command to resume")]
    Interrupted,
    /// An endpoint did not answer its health check.
    #[error(
        "endpoint `{endpoint}` ({url}) does not answer: {message}\n  = help: start the server (for Ollama: `OLLAMA_HOST={host} ollama serve`), or fix the endpoint's `url` in the manifest; nothing was run"
    )]
    Unreachable {
        /// Endpoint id.
        endpoint: String,
        /// URL.
        url: String,
        /// host:port.
        host: String,
        /// What the client saw.
        message: String,
    },
    /// A model is not on the server an endpoint points at.
    #[error(
        "endpoint `{endpoint}` ({url}) does not have model `{model}`\n  = help: pull it into that server (`OLLAMA_HOST={host} ollama pull {model}`; every Ollama instance has its own model store), or fix the model's `tag` in the manifest; nothing was run"
    )]
    ModelMissing {
        /// Endpoint id.
        endpoint: String,
        /// URL.
        url: String,
        /// host:port.
        host: String,
        /// Model tag.
        model: String,
    },
    /// The program of a `command` workload cannot be found.
    #[error(
        "workload `{workload}` of {manifest}: agent program `{program}` {problem}\n  = help: {help}; nothing was run"
    )]
    AgentProgramMissing {
        /// Workload id.
        workload: String,
        /// The manifest file.
        manifest: String,
        /// The program as resolved.
        program: String,
        /// What is wrong with it.
        problem: String,
        /// What to do.
        help: String,
    },
    /// The campaign holds imported data.
    #[error(
        "campaign `{name}` holds results imported from {format} raw files, not chimera measurements; new measurements go into another campaign\n  = help: pass `--campaign NAME` with a new name; nothing was run"
    )]
    Imported {
        /// Campaign.
        name: String,
        /// Importer format.
        format: String,
    },
    /// A `--force` selector matched nothing.
    #[error(
        "`--force {0}` matches no cell of this plan\n  = help: use `all`, a cell-id prefix, `config=<id>`, `report=<id>` or `kind=<kind>`"
    )]
    Selector(String),
    /// A managed server could not be started or given its models.
    #[error(transparent)]
    Managed(ManagedError),
}

impl From<ManagedError> for CampaignError {
    fn from(e: ManagedError) -> Self {
        match e {
            ManagedError::Interrupted => CampaignError::Interrupted,
            e => CampaignError::Managed(e),
        }
    }
}
