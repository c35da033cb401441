//! The on-disk layout: format version and the names of a campaign's files.

/// Version of the on-disk layout. A campaign written with a larger one is refused.
pub const STORE_FORMAT: u32 = 1;

pub(crate) const CAMPAIGN_FILE: &str = "campaign.json";
pub(crate) const JOURNAL_FILE: &str = "journal.jsonl";
pub(crate) const LOCK_FILE: &str = ".lock";
pub(crate) const CELLS_DIR: &str = "cells";
pub(crate) const MANIFEST_FILE: &str = "MANIFEST.json";
pub(crate) const CACHE_DIR: &str = ".cache";
/// The longest campaign name (bytes); the error message says so.
pub(crate) const MAX_CAMPAIGN_NAME: usize = 200;
/// The test hook's environment variable (see the module docs).
pub(crate) const TEST_COMMIT_PAUSE_ENV: &str = "CHIMERA_TEST_COMMIT_PAUSE_MS";
