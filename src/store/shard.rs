//! Shards of a campaign: `shards/<I>-of-<N>/` holds what only that shard writes.
//!
//! ```text
//! <data>/<campaign>/
//!   .lock                        held shared by every running shard, exclusively by a whole run
//!   cells/<cell-id>/             committed cells of every shard (first commit wins)
//!   shards/<I>-of-<N>/
//!     .lock                      exclusive lock of the running shard (pid, host, start time)
//!     shard.json                 ShardRecord: the split, the shard's cells, where it last ran
//!     journal.jsonl              the shard's own journal
//!     provenance.parquet         what the shard's endpoints ran (server, model, GPU)
//! ```
//!
//! Shards share the cells directory: a cell's commit is an atomic rename, so two shards that
//! measured the same cell (a requeued job that ran twice) keep the first commit, and the
//! second one journals a `cell_duplicate` event. Everything else a shard writes is in its
//! own directory, so shards on machines that share a filesystem never write the same file
//! (`campaign.json`, written when the manifests change, is replaced atomically with the same
//! content by every shard of one submission).

use std::fs::{self, File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{StoreError, io_at};
use super::fsx;
use super::layout::{JOURNAL_FILE, LOCK_FILE};
use crate::plan::{ShardBy, ShardSpec};
use crate::util::clock::now_unix_ms;

/// The directory of a campaign's shards.
pub(crate) const SHARDS_DIR: &str = "shards";
/// A shard's record.
pub(crate) const SHARD_FILE: &str = "shard.json";

/// `shards/<I>-of-<N>/shard.json`: written when the shard starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// This shard, from 0.
    pub index: u32,
    /// Shards in all.
    pub count: u32,
    /// What a unit of the split was.
    pub by: ShardBy,
    /// Expected work of this shard (estimated LLM requests).
    pub work: u64,
    /// Fingerprint of the whole split ([`crate::plan::Split::fingerprint`]): every shard of
    /// one submission has the same.
    #[serde(default)]
    pub split: String,
    /// The measured cells of this shard (warm-ups not included), in schedule order.
    pub cells: Vec<String>,
    /// The warm-ups they need.
    #[serde(default)]
    pub warmups: Vec<String>,
    /// The host it last started on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// When it last started.
    pub started_at_unix_ms: f64,
    /// The Slurm job it ran as (`<array job>_<task>`), when it ran under Slurm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

impl ShardRecord {
    /// The shard's spec.
    pub fn spec(&self) -> ShardSpec {
        ShardSpec {
            index: self.index,
            count: self.count,
        }
    }
}

/// `<campaign>/shards/<I>-of-<N>/`.
pub(crate) fn shard_dir(campaign: &Path, spec: ShardSpec) -> PathBuf {
    campaign.join(SHARDS_DIR).join(spec.dir_name())
}

/// This host's name ("an unknown host" when it cannot be read).
pub fn host_name() -> String {
    crate::util::host_name()
}

/// Records in a held lock file who holds it: pid, host, start time, chimera version.
pub(crate) fn write_holder(file: &mut File, path: &Path) -> Result<(), StoreError> {
    let host = host_name();
    let now = now_unix_ms();
    let text = format!(
        "pid {} on {host}, started at {} (chimera {})\n",
        std::process::id(),
        crate::util::clock::utc_string(now),
        env!("CARGO_PKG_VERSION")
    );
    file.set_len(0)
        .and_then(|()| file.write_all(text.as_bytes()))
        .map_err(io_at(path, "write the lock"))
}

/// The Slurm job this process runs in: `<array job id>_<task id>` for an array task, the job
/// id otherwise; `None` outside Slurm.
pub fn slurm_job() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(j), Some(t)) => Some(format!("{j}_{t}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// Writes `shard.json`.
pub(crate) fn write_record(dir: &Path, record: &ShardRecord) -> Result<(), StoreError> {
    let path = dir.join(SHARD_FILE);
    let mut json = serde_json::to_vec(record)
        .map_err(|e| StoreError::io(&path, "encode the shard record", io::Error::other(e)))?;
    json.push(b'\n');
    fsx::write_atomic(&path, &json).map_err(io_at(&path, "write the shard record"))
}

/// The shards recorded in a campaign directory, by (count, index); unreadable records are
/// skipped with a warning.
pub fn records(campaign: &Path) -> Vec<ShardRecord> {
    let root = campaign.join(SHARDS_DIR);
    let Ok(rd) = fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut out: Vec<ShardRecord> = rd
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(ShardSpec::from_dir_name)
                .is_some()
        })
        .filter_map(|e| {
            let path = e.path().join(SHARD_FILE);
            let bytes = fs::read(&path).ok()?;
            serde_json::from_slice(&bytes)
                .map_err(|err| tracing::warn!("{}: {err}; shard skipped", path.display()))
                .ok()
        })
        .collect();
    out.sort_by_key(|r| (r.count, r.index));
    out
}

/// The journal of a shard.
pub(crate) fn journal_path(campaign: &Path, spec: ShardSpec) -> PathBuf {
    shard_dir(campaign, spec).join(JOURNAL_FILE)
}

/// What a held lock file says about its holder ("pid 12 on node1, started at …"), or
/// "holder unknown".
pub(crate) fn holder_of(path: &Path) -> String {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "holder unknown".to_owned())
}

/// Whether a process holds the shard's lock now, and what its lock file says. Probes with a
/// shared lock, released at once.
pub fn running(campaign: &Path, spec: ShardSpec) -> Option<String> {
    let path = shard_dir(campaign, spec).join(LOCK_FILE);
    let file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => Some(holder_of(&path)),
        Err(TryLockError::Error(_)) => None,
    }
}

/// Takes the exclusive lock of a shard (retrying briefly: `status` probes it with a shared
/// lock) and records the holder.
pub(crate) fn lock_shard(dir: &Path, spec: ShardSpec) -> Result<Option<File>, StoreError> {
    let path = dir.join(LOCK_FILE);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_at(&path, "open the shard lock"))?;
    for attempt in 0.. {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if attempt < 20 => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                let holder = holder_of(&path);
                return Err(StoreError::ShardRunning {
                    shard: spec.to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                tracing::warn!(
                    "{}: this filesystem cannot lock files; make sure shard {spec} runs once",
                    path.display()
                );
                return Ok(None);
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::io(path, "lock the shard", e));
            }
        }
    }
    write_holder(&mut file, &path)?;
    Ok(Some(file))
}

/// Takes the campaign lock shared (every running shard holds it; a whole-campaign run holds
/// it exclusively).
pub(crate) fn lock_campaign_shared(dir: &Path) -> Result<Option<File>, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_at(&path, "open the campaign lock"))?;
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
            dir: dir.to_owned(),
            holder: holder_of(&path),
        }),
        Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => Ok(None),
        Err(TryLockError::Error(e)) => Err(StoreError::io(path, "lock the campaign", e)),
    }
}

/// The shards running now: their spec and what their lock files say.
pub(crate) fn running_shards(campaign: &Path) -> Vec<(ShardSpec, String)> {
    let Ok(rd) = fs::read_dir(campaign.join(SHARDS_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<(ShardSpec, String)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(ShardSpec::from_dir_name))
        .filter_map(|s| running(campaign, s).map(|h| (s, h)))
        .collect();
    out.sort();
    out
}

/// How a shard stands, for `chimera status` and `chimera slurm resubmit`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardState {
    /// Its record.
    pub record: ShardRecord,
    /// Its cells that are committed (by it or by any other shard).
    pub committed: usize,
    /// Its cells not committed, in schedule order.
    pub missing: Vec<String>,
    /// Running now: what its lock file says.
    pub running: Option<String>,
    /// How its last run ended, from its journal.
    pub last_run: LastRun,
    /// Its cells whose last attempt failed for good: (cell, kind: message).
    pub failed: Vec<(String, String)>,
    /// Cells it measured that another commit had already committed (`cell_duplicate`).
    pub duplicates: Vec<String>,
}

/// How a shard's last run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LastRun {
    /// No run recorded.
    None,
    /// It finished (`failed` cells failed for good).
    Finished {
        /// Cells that failed for good.
        failed: u64,
    },
    /// It stopped on an error.
    Error(String),
    /// Ctrl-C / SIGTERM (a `scancel`).
    Interrupted,
    /// No end recorded: killed (`scancel` past its grace time, a node lost) or running.
    Silent,
}

impl ShardState {
    /// Every cell of the shard is committed.
    pub fn done(&self) -> bool {
        self.missing.is_empty()
    }

    /// A one-word state: `done`, `running`, `failed`, `interrupted`, `killed`, `not started`.
    pub fn word(&self) -> &'static str {
        if self.running.is_some() {
            return "running";
        }
        if self.done() {
            return "done";
        }
        match self.last_run {
            LastRun::None => "not started",
            LastRun::Finished { .. } | LastRun::Error(_) => "failed",
            LastRun::Interrupted => "interrupted",
            LastRun::Silent => "killed",
        }
    }
}

/// The state of every shard recorded in `campaign`, given the committed cell ids.
pub fn states(campaign: &Path, committed: &std::collections::HashSet<String>) -> Vec<ShardState> {
    records(campaign)
        .into_iter()
        .map(|record| state_of(campaign, record, committed))
        .collect()
}

fn state_of(
    campaign: &Path,
    record: ShardRecord,
    committed: &std::collections::HashSet<String>,
) -> ShardState {
    use super::journal::JournalEvent as E;
    let spec = record.spec();
    let events = super::journal::read(&journal_path(campaign, spec)).unwrap_or_default();
    let mut last_run = LastRun::None;
    let mut failed: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    let mut duplicates = Vec::new();
    for ev in &events {
        match ev {
            E::Started { .. } => last_run = LastRun::Silent,
            E::Finished { failed, .. } => last_run = LastRun::Finished { failed: *failed },
            E::Aborted { message, .. } => last_run = LastRun::Error(message.clone()),
            E::Interrupted { .. } => last_run = LastRun::Interrupted,
            E::CellFailed {
                cell,
                kind,
                message,
                final_attempt: true,
                ..
            } => {
                failed.insert(cell, format!("{kind}: {message}"));
            }
            E::CellCommitted { cell, .. } => {
                failed.remove(cell.as_str());
            }
            E::CellDuplicate { cell, .. } => duplicates.push(cell.clone()),
            _ => {}
        }
    }
    let missing: Vec<String> = record
        .cells
        .iter()
        .filter(|c| !committed.contains(*c))
        .cloned()
        .collect();
    let failed = missing
        .iter()
        .filter_map(|c| failed.get(c.as_str()).map(|m| (c.clone(), m.clone())))
        .collect();
    ShardState {
        committed: record.cells.len() - missing.len(),
        missing,
        running: running(campaign, spec),
        last_run,
        failed,
        duplicates,
        record,
    }
}

/// Refuses a shard whose split differs from that of a running shard of the same count (the
/// manifests or `--shard-by` differ: cells would run twice or never), and warns when it
/// differs from a finished one.
pub(crate) fn check_split(campaign: &Path, record: &ShardRecord) -> Result<(), StoreError> {
    for r in records(campaign) {
        if r.count != record.count
            || r.index == record.index
            || r.split.is_empty()
            || r.split == record.split
        {
            continue;
        }
        if let Some(holder) = running(campaign, r.spec()) {
            return Err(StoreError::ShardSplitDiffers {
                shard: record.spec().to_string(),
                other: r.spec().to_string(),
                holder,
            });
        }
        tracing::warn!(
            "shard {} was split differently (other manifests or --shard-by) when it ran; \
             its cells and this shard's may overlap or leave gaps: run every shard of {} again \
             with the same manifests and --shard-by (committed cells are kept)",
            r.spec(),
            record.count
        );
    }
    Ok(())
}
