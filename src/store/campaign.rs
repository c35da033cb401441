//! A campaign directory: `campaign.json`, the lock, and the locked ([`Campaign`]) and
//! read-only ([`CampaignView`]) handles.

use std::collections::HashSet;
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cells::{self, CommitOutcome, Committed, Verify};
use super::error::{StoreError, io_at};
use super::fsx;
use super::journal::{self, JournalEvent};
use super::layout::{
    CAMPAIGN_FILE, CELLS_DIR, JOURNAL_FILE, LOCK_FILE, MAX_CAMPAIGN_NAME, STORE_FORMAT,
};
use super::shard::{self, ShardRecord};
use crate::plan::ShardSpec;
use crate::util::clock::now_unix_ms;

/// `campaign.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignInfo {
    /// Campaign name (the directory name).
    pub name: String,
    /// Every manifest this campaign was run with; entries are appended when they change.
    pub manifests: Vec<ManifestEntry>,
    /// chimera version that created the campaign.
    pub chimera_version: String,
    /// When the campaign was created.
    pub created_at_unix_ms: f64,
    /// [`STORE_FORMAT`] that wrote it.
    pub store_format: u32,
    /// Where the data came from when chimera did not measure it (`chimera import`); absent for
    /// measured campaigns. Reports print it so imported numbers are never taken for new
    /// measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<DataOrigin>,
}

/// The source of an imported campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataOrigin {
    /// Importer format, e.g. `chimeraforge`.
    pub format: String,
    /// The directory the raw files were read from (as given).
    pub source: String,
    /// The harness and layout recognised, e.g. `H6v2 multi-agent (<scenario>/<testNNN>/run_k/metrics.json)`.
    pub layout: String,
    /// Raw files read.
    pub files: u64,
    /// Runs imported.
    pub runs: u64,
    /// Raw files that could not be read (truncated, damaged) and were skipped, by their path
    /// below the source; the rest was imported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl CampaignInfo {
    /// A new campaign's info: this chimera's version, now, [`STORE_FORMAT`].
    pub fn new(name: &str, manifests: Vec<ManifestEntry>) -> CampaignInfo {
        CampaignInfo {
            name: name.to_owned(),
            manifests,
            chimera_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at_unix_ms: now_unix_ms(),
            store_format: STORE_FORMAT,
            origin: None,
        }
    }
}

/// One manifest of a campaign, with its text (so `status` can re-plan after the file changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The path it was read from.
    pub path: String,
    /// Its report id.
    pub report: String,
    /// SHA-256 (hex) of its text.
    pub sha256: String,
    /// The full text.
    pub text: String,
}

impl ManifestEntry {
    /// An entry for `text` read from `path`, hashing the text.
    pub fn new(path: &str, report: &str, text: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            report: report.to_owned(),
            sha256: fsx::sha256_hex(text.as_bytes()),
            text: text.to_owned(),
        }
    }

    /// The same manifest: same report and same text. The path is not compared: one file
    /// reached through another spelling (`m.yaml`, `./m.yaml`, `/abs/m.yaml`) or moved to
    /// another directory is still the same manifest.
    fn same(&self, other: &ManifestEntry) -> bool {
        self.report == other.report && self.sha256 == other.sha256
    }
}

impl CampaignInfo {
    /// The manifests that define the campaign now: for each report, its most recently used
    /// manifest (the last entry of that report). Earlier versions stay in `manifests` as a
    /// record; their committed cells stay committed and are reused where the current plan has
    /// the same cells (cell ids are content addresses).
    pub fn current_manifests(&self) -> Vec<&ManifestEntry> {
        self.manifests
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                !self.manifests[i + 1..]
                    .iter()
                    .any(|later| later.report == m.report)
            })
            .map(|(_, m)| m)
            .collect()
    }

    /// Merges the manifests of a new run into the record: each one becomes the most recent
    /// entry of its report (moved to the end when it was recorded before, appended when it is
    /// new), and an entry recorded twice (the same report and text, which chimera 0.1 wrote
    /// when one manifest was reached through two path spellings) is kept once. Returns a
    /// description of what changed, `None` when nothing did.
    fn merge_manifests(&mut self, incoming: Vec<ManifestEntry>) -> Option<String> {
        let mut notes = Vec::new();
        // Repair: one entry per (report, text), at the place of its last use.
        let before = self.manifests.len();
        let mut kept: Vec<ManifestEntry> = Vec::with_capacity(before);
        for m in self.manifests.drain(..).rev() {
            if !kept.iter().any(|k| k.same(&m)) {
                kept.push(m);
            }
        }
        kept.reverse();
        self.manifests = kept;
        if self.manifests.len() < before {
            notes.push(format!(
                "removed {} duplicate manifest record(s) (the same manifest reached through \
                 another path)",
                before - self.manifests.len()
            ));
        }
        for m in incoming {
            let current = self
                .manifests
                .iter()
                .rposition(|s| s.report == m.report)
                .map(|i| self.manifests[i].same(&m));
            match current {
                Some(true) => {}
                Some(false) | None => {
                    let known = self.manifests.iter().position(|s| s.same(&m));
                    if let Some(i) = known {
                        self.manifests.remove(i);
                        notes.push(format!("{} {} (used again)", m.report, m.path));
                    } else if current.is_some() {
                        notes.push(format!("{} {} (changed)", m.report, m.path));
                    } else {
                        notes.push(format!("{} {} (added)", m.report, m.path));
                    }
                    self.manifests.push(m);
                }
            }
        }
        (!notes.is_empty()).then(|| notes.join(", "))
    }
}

/// An open campaign, locked for writing for as long as it lives.
#[derive(Debug)]
pub struct Campaign {
    dir: PathBuf,
    cells: PathBuf,
    info: CampaignInfo,
    journal: std::sync::Mutex<journal::JournalWriter>,
    journal_path: PathBuf,
    /// The shard this handle runs, `None` for the whole campaign.
    shard: Option<ShardSpec>,
    /// A shard's own cells and warm-ups: the only ones it cleans up after or sets aside.
    own: Option<HashSet<String>>,
    /// Holds the locks (the campaign's, and the shard's); released when dropped.
    _locks: Vec<File>,
}

/// What a [`Campaign`] handle is opened for.
#[derive(Debug, Clone)]
pub enum OpenAs {
    /// The whole campaign: the exclusive campaign lock.
    Whole,
    /// One shard: the campaign lock shared with the other shards, the shard's own lock,
    /// journal and record; leftover commits are cleaned up for its own cells only.
    Shard(ShardRecord),
}

impl Campaign {
    /// Opens (creating if needed) `<data>/<name>/` and locks it for this process.
    ///
    /// On first open `info` is written as `campaign.json`; later opens keep the stored
    /// `created_at_unix_ms` and version and append the manifest entries of `info` not already
    /// recorded. Leftover `cells/.tmp-*` directories of an interrupted run are removed.
    pub fn open(data: &Path, name: &str, info: CampaignInfo) -> Result<Campaign, StoreError> {
        Campaign::open_as(data, name, info, OpenAs::Whole)
    }

    /// [`Campaign::open`], for the whole campaign or one shard (see [`OpenAs`]).
    pub fn open_as(
        data: &Path,
        name: &str,
        info: CampaignInfo,
        how: OpenAs,
    ) -> Result<Campaign, StoreError> {
        check_campaign_name(name)?;
        let dir = data.join(name);
        fs::create_dir_all(&dir).map_err(io_at(&dir, "create the campaign directory"))?;
        let had_lock_file = dir.join(".lock").exists();
        let mut locks: Vec<File> = Vec::new();
        let (journal_path, own_cells) = match &how {
            OpenAs::Whole => {
                locks.extend(lock(&dir)?);
                (dir.join(JOURNAL_FILE), None)
            }
            OpenAs::Shard(record) => {
                locks.extend(shard::lock_campaign_shared(&dir)?);
                let sdir = shard::shard_dir(&dir, record.spec());
                fs::create_dir_all(&sdir).map_err(io_at(&sdir, "create the shard directory"))?;
                locks.extend(shard::lock_shard(&sdir, record.spec())?);
                shard::check_split(&dir, record)?;
                shard::write_record(&sdir, record)?;
                let own: HashSet<String> = record
                    .cells
                    .iter()
                    .chain(&record.warmups)
                    .cloned()
                    .collect();
                (shard::journal_path(&dir, record.spec()), Some(own))
            }
        };
        let stored = match read_info(&dir) {
            Ok(s) => s,
            Err(e) => {
                // A refused campaign (newer format, damaged campaign.json) is left as it was.
                drop(locks);
                if !had_lock_file {
                    let _ = fs::remove_file(dir.join(".lock"));
                }
                return Err(e);
            }
        };

        let info = match stored {
            Some(mut stored) => {
                if let Some(what) = stored.merge_manifests(info.manifests) {
                    tracing::info!(
                        "campaign {name}: manifests recorded in {CAMPAIGN_FILE}: {what}"
                    );
                    write_info(&dir, &stored)?;
                }
                stored
            }
            None => {
                let info = CampaignInfo {
                    name: name.to_owned(),
                    store_format: STORE_FORMAT,
                    ..info
                };
                write_info(&dir, &info)?;
                info
            }
        };

        let cells = dir.join(CELLS_DIR);
        fs::create_dir_all(&cells).map_err(io_at(&cells, "create the cells directory"))?;
        let removed = remove_tmp_dirs(&cells, own_cells.as_ref())?;
        if removed > 0 {
            tracing::info!(
                "campaign {name}: removed {removed} unfinished cell director{} left by an \
                 interrupted run",
                if removed == 1 { "y" } else { "ies" }
            );
        }
        let journal = std::sync::Mutex::new(journal::JournalWriter::open(&journal_path)?);
        Ok(Campaign {
            dir,
            cells,
            info,
            journal,
            journal_path,
            shard: match how {
                OpenAs::Whole => None,
                OpenAs::Shard(r) => Some(r.spec()),
            },
            own: own_cells,
            _locks: locks,
        })
    }

    /// The shard this handle runs; `None` for the whole campaign.
    pub fn shard(&self) -> Option<ShardSpec> {
        self.shard
    }

    /// Where this handle writes what is its own (`provenance.parquet`): the campaign
    /// directory, or the shard's.
    pub fn own_dir(&self) -> PathBuf {
        match self.shard {
            None => self.dir.clone(),
            Some(s) => shard::shard_dir(&self.dir, s),
        }
    }

    /// `<data>/<name>/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the campaign's import origin in `campaign.json` (a re-import of the same source
    /// records what it read this time: its files, runs and skipped files).
    pub fn record_origin(&mut self, origin: DataOrigin) -> Result<(), StoreError> {
        self.info.origin = Some(origin);
        write_info(&self.dir, &self.info)
    }

    /// `<data>/<name>/cells/`.
    pub fn cells_dir(&self) -> &Path {
        &self.cells
    }

    /// The campaign's `campaign.json` as stored (after merging this open's manifests).
    pub fn info(&self) -> &CampaignInfo {
        &self.info
    }

    /// Appends one event to `journal.jsonl` and fsyncs it.
    /// (Takes `&self`: commits and journal appends of one campaign can come from several
    /// threads; appends are serialised by an internal lock.)
    pub fn journal(&self, ev: &JournalEvent) -> Result<(), StoreError> {
        self.journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .append(&self.journal_path, ev)
    }

    /// Every readable journal event (a torn last line is skipped).
    pub fn journal_events(&self) -> Result<Vec<JournalEvent>, StoreError> {
        journal::read(&self.journal_path)
    }

    /// Commits one cell atomically (see the module docs). The first commit of an id wins:
    /// committing an id that is already committed returns [`CommitOutcome::AlreadyCommitted`]
    /// and leaves the first copy untouched.
    pub fn commit_cell(
        &self,
        cell_id: &str,
        attempt: u32,
        parts: &[(String, Vec<u8>)],
        meta: &serde_json::Value,
    ) -> Result<CommitOutcome, StoreError> {
        cells::check_cell_id(cell_id)?;
        cells::check_part_names(parts.iter().map(|(n, _)| n.as_str()))?;
        cells::commit(&self.cells, cell_id, &attempt.to_string(), |tmp| {
            cells::write_parts(tmp, cell_id, attempt, parts, meta)
        })
    }

    /// The resume index at [`Verify::Sizes`].
    pub fn committed(&self) -> Result<Committed, StoreError> {
        self.verify(Verify::Sizes)
    }

    /// The resume index at `level`; cells that fail are moved to `cells/.broken-<id>-<n>`.
    pub fn verify(&self, level: Verify) -> Result<Committed, StoreError> {
        let how = match &self.own {
            None => cells::MoveAside::All,
            Some(own) => cells::MoveAside::Only(own),
        };
        cells::scan(&self.cells, level, how)
    }

    /// Un-commits a cell (for `--force`): moves `cells/<id>/` to `cells/.forced-<id>-<n>/`.
    /// Returns false when it was not committed.
    pub fn remove_cell(&self, cell_id: &str) -> Result<bool, StoreError> {
        cells::check_cell_id(cell_id)?;
        let dir = self.cells.join(cell_id);
        match fs::symlink_metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::io(dir, "inspect a cell directory", e)),
        }
        let to = cells::move_aside_to(&self.cells, cell_id, "forced", &dir)?;
        fsx::sync_dir(&self.cells).map_err(io_at(&self.cells, "sync the cells directory"))?;
        tracing::info!("cell {cell_id} un-committed; kept as {}", to.display());
        Ok(true)
    }

    /// Commits `cell_id` from a cache directory (see [`crate::store::Cache::lookup`]), hard-linking or
    /// copying its files; the cell's `MANIFEST.json` is the original one.
    pub fn adopt_cached(
        &self,
        cell_id: &str,
        cached_dir: &Path,
    ) -> Result<CommitOutcome, StoreError> {
        cells::check_cell_id(cell_id)?;
        cells::commit(&self.cells, cell_id, "cache", |tmp| {
            cells::link_cell(cached_dir, cell_id, tmp)
        })
    }
}

/// A campaign opened read-only (for `chimera status`): no lock, no cleanup, nothing moved.
#[derive(Debug, Clone)]
pub struct CampaignView {
    dir: PathBuf,
    info: CampaignInfo,
}

/// Opens an existing campaign read-only.
pub fn open_existing(data: &Path, name: &str) -> Result<CampaignView, StoreError> {
    check_campaign_name(name)?;
    let dir = data.join(name);
    match read_info(&dir)? {
        Some(info) => Ok(CampaignView { dir, info }),
        None => Err(StoreError::NotFound { dir }),
    }
}

impl CampaignView {
    /// `<data>/<name>/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the campaign's import origin in `campaign.json` (a re-import of the same source
    /// records what it read this time: its files, runs and skipped files).
    pub fn record_origin(&mut self, origin: DataOrigin) -> Result<(), StoreError> {
        self.info.origin = Some(origin);
        write_info(&self.dir, &self.info)
    }

    /// `campaign.json`.
    pub fn info(&self) -> &CampaignInfo {
        &self.info
    }

    /// The resume index at [`Verify::Sizes`]; broken cells are reported where they are.
    pub fn committed(&self) -> Result<Committed, StoreError> {
        self.verify(Verify::Sizes)
    }

    /// The resume index at `level`; broken cells are reported, not moved.
    pub fn verify(&self, level: Verify) -> Result<Committed, StoreError> {
        cells::scan(&self.dir.join(CELLS_DIR), level, cells::MoveAside::No)
    }

    /// Every readable journal event (a torn last line is skipped).
    pub fn journal_events(&self) -> Result<Vec<JournalEvent>, StoreError> {
        journal::read(&self.dir.join(JOURNAL_FILE))
    }

    /// The events of the campaign's journal and of every shard's, in time order (a shard's
    /// unreadable journal is skipped).
    pub fn all_journal_events(&self) -> Result<Vec<JournalEvent>, StoreError> {
        let mut events = self.journal_events()?;
        for r in shard::records(&self.dir) {
            events.extend(
                journal::read(&shard::journal_path(&self.dir, r.spec())).unwrap_or_default(),
            );
        }
        events.sort_by(|a, b| a.at_unix_ms().total_cmp(&b.at_unix_ms()));
        Ok(events)
    }
}

fn check_campaign_name(name: &str) -> Result<(), StoreError> {
    if name.len() > MAX_CAMPAIGN_NAME {
        return Err(StoreError::NameTooLong {
            what: "campaign name",
            start: name.chars().take(24).collect(),
            len: name.len(),
            max: MAX_CAMPAIGN_NAME,
        });
    }
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            what: "campaign name",
            name: name.to_owned(),
            why: "a campaign name is 1 to 200 letters, digits, `.`, `_`, `-` and `+`, not \
                  starting with `.`",
        })
    }
}

/// Takes the exclusive lock on `<dir>/.lock` and records who holds it.
fn lock(dir: &Path) -> Result<Option<File>, StoreError> {
    let path = dir.join(LOCK_FILE);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_at(&path, "open the campaign lock"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let running = shard::running_shards(dir);
            if !running.is_empty() {
                return Err(StoreError::ShardsRunning {
                    dir: dir.to_owned(),
                    running: running
                        .iter()
                        .map(|(s, h)| format!("{s} ({h})"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let holder = shard::holder_of(&path);
            return Err(StoreError::Locked {
                dir: dir.to_owned(),
                holder,
            });
        }
        Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
            tracing::warn!(
                "{}: this filesystem cannot lock files; make sure no other `chimera run` uses \
                 this campaign",
                path.display()
            );
            return Ok(None);
        }
        Err(TryLockError::Error(e)) => {
            return Err(StoreError::io(path, "lock the campaign", e));
        }
    }
    shard::write_holder(&mut file, &path)?;
    Ok(Some(file))
}

/// Reads `campaign.json`; `None` when it does not exist. A newer store format is refused
/// before the rest of the file is interpreted.
fn read_info(dir: &Path) -> Result<Option<CampaignInfo>, StoreError> {
    let path = dir.join(CAMPAIGN_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path, "read the campaign description", e)),
    };
    let damaged = |message: String| StoreError::Damaged {
        path: path.clone(),
        message,
        help: "move it aside and run again: committed cells are kept, and a new campaign.json \
               is written",
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
    if let Some(found) = value.get("store_format").and_then(|v| v.as_u64())
        && found > u64::from(STORE_FORMAT)
    {
        return Err(StoreError::NewerFormat {
            dir: dir.to_owned(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: STORE_FORMAT,
        });
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| damaged(e.to_string()))
}

fn write_info(dir: &Path, info: &CampaignInfo) -> Result<(), StoreError> {
    let path = dir.join(CAMPAIGN_FILE);
    let mut json = serde_json::to_vec_pretty(info).map_err(|e| {
        StoreError::io(
            &path,
            "encode the campaign description",
            io::Error::other(e),
        )
    })?;
    json.push(b'\n');
    fsx::write_atomic(&path, &json).map_err(io_at(&path, "write the campaign description"))
}

/// Removes `cells/.tmp-*` (commits that never finished); returns how many. With `own`, only
/// those of these cells (the other shards' commits may be in progress).
fn remove_tmp_dirs(cells: &Path, own: Option<&HashSet<String>>) -> Result<usize, StoreError> {
    let mut n = 0;
    for entry in fs::read_dir(cells).map_err(io_at(cells, "list the cells directory"))? {
        let entry = entry.map_err(io_at(cells, "list the cells directory"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".tmp-") else {
            continue;
        };
        let mine =
            own.is_none_or(|own| rest.split_once('-').is_some_and(|(id, _)| own.contains(id)));
        if mine {
            let p = entry.path();
            fsx::remove_any(&p).map_err(io_at(&p, "remove an unfinished cell directory"))?;
            n += 1;
        }
    }
    Ok(n)
}
