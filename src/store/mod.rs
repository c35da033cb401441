//! The crash-safe campaign store: committed cells, the resume index, the journal and the
//! shared cache.
//!
//! ```text
//! <data>/<campaign>/
//!   campaign.json              CampaignInfo: manifests (with their text), chimera version, …
//!   journal.jsonl              JournalEvent per line, fsync'd per event
//!   .lock                      exclusive lock of the running `chimera run` (pid, start time)
//!   cells/<cell-id>/           one committed cell: its part files + MANIFEST.json
//!   cells/.tmp-<cell-id>-<n>/  a commit in progress (removed on the next open)
//!   cells/.broken-<id>-<n>/    a cell that failed verification (kept, never deleted)
//!   cells/.forced-<id>-<n>/    a cell removed by `--force` (kept, never deleted)
//! <data>/.cache/<fingerprint>/<cell-id>/   the shared cache (same layout as a cell)
//! ```
//!
//! **A cell is committed iff `cells/<id>/` exists and verifies.** Parts and `MANIFEST.json`
//! are written and fsync'd in `cells/.tmp-<id>-<attempt>/`, the directory is fsync'd and
//! renamed into place, then `cells/` is fsync'd. A `kill -9` at any instant therefore leaves
//! either no `cells/<id>/` or a complete one; the journal is a record, never the source of
//! truth, so losing or tearing it never forces a rerun.
//!
//! **Test hook.** When the environment variable `CHIMERA_TEST_COMMIT_PAUSE_MS` (read once per
//! process) holds a positive number of milliseconds, every commit (campaign cells and shared
//! cache entries alike) sleeps that long after its `.tmp-*` directory is complete and fsync'd
//! and before the rename, so that crash tests can `kill -9` a run mid-commit. It exists only
//! for those tests; never set it otherwise.

mod cache;
mod campaign;
mod cells;
mod error;
mod fsx;
pub(crate) mod journal;
mod layout;
mod shard;
mod status;

pub use cache::Cache;
pub use campaign::{
    Campaign, CampaignInfo, CampaignView, DataOrigin, ManifestEntry, OpenAs, open_existing,
};
pub use cells::{CellManifest, CommitOutcome, Committed, PartEntry, Verify};
pub use error::StoreError;
pub use journal::JournalEvent;
pub use layout::STORE_FORMAT;
pub use shard::{
    LastRun, ShardRecord, ShardState, host_name, records as shard_records, slurm_job,
    states as shard_states,
};
pub use status::StatusError;
pub use status::shard_overview;
pub(crate) use status::{campaigns, replan, status};
