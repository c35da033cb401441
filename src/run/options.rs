//! What a campaign run is asked to do ([`CampaignOptions`]) and what it did
//! ([`CampaignSummary`]).

use std::path::PathBuf;
use std::time::Duration;

use super::force::ForceSelector;
use crate::plan::{ShardBy, ShardSpec};

/// Settings of a campaign run.
#[derive(Debug, Clone)]
pub struct CampaignOptions {
    /// Data directory (campaigns live in `<data>/<name>/`).
    pub data: PathBuf,
    /// Campaign name.
    pub name: String,
    /// Selectors of committed cells to run again.
    pub force: Vec<ForceSelector>,
    /// Stop at the first cell that fails for good.
    pub fail_fast: bool,
    /// Reuse cells from the shared cache when the environment fingerprint matches.
    pub use_cache: bool,
    /// Check every committed part's SHA-256 before resuming (not only its size); cells that
    /// fail are set aside as `cells/.broken-<id>-<n>/` and run again.
    pub verify: bool,
    /// Per-cell time limit (all attempts of one try).
    pub cell_timeout: Option<Duration>,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Test instrument: sample this many deterministic fake GPUs instead of the manifest's
    /// telemetry source (never set by the command line).
    pub fake_gpus: Option<u32>,
    /// Test instrument: the NVML throttle reasons the fake GPUs report in every sample (0:
    /// none besides idle).
    pub fake_gpu_throttle: u64,
    /// Run only this shard of the plan (`--shard I/N`), split this way.
    pub shard: Option<(ShardSpec, ShardBy)>,
}

/// What a campaign run did.
#[derive(Debug, Clone, Default)]
pub struct CampaignSummary {
    /// Cells of the plan (warm-ups included).
    pub total: usize,
    /// Cells already committed when the run started.
    pub committed_before: usize,
    /// Cells committed by this run (measured).
    pub ran: usize,
    /// Cells adopted from the shared cache.
    pub cached: usize,
    /// Cells that failed for good: (cell id, error).
    pub failed: Vec<(String, String)>,
    /// Cells not started because a dependency failed.
    pub blocked: usize,
    /// Managed servers started again after they had died.
    pub server_restarts: u32,
    /// Managed servers stopped and started again for a cell's `server` settings.
    pub server_setting_restarts: u32,
}
