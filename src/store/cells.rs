//! Committed cell directories: the commit protocol, verification and the resume scan.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{StoreError, io_at};
use super::fsx;
use super::layout::{MANIFEST_FILE, STORE_FORMAT, TEST_COMMIT_PAUSE_ENV};

/// `cells/<id>/MANIFEST.json`, written last inside the temporary directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellManifest {
    /// The cell id (also the directory name).
    pub cell_id: String,
    /// Attempt that produced it (0 when adopted from elsewhere and unknown).
    pub attempt: u32,
    /// When the parts were sealed.
    pub committed_at_unix_ms: f64,
    /// [`STORE_FORMAT`] of the writer.
    pub store_format: u32,
    /// The part files, in the order given to `commit_cell`.
    pub parts: Vec<PartEntry>,
    /// The scheduler's metadata (provenance, timings, …).
    pub meta: serde_json::Value,
}

/// One part file of a cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    /// File name inside the cell directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
}

/// The manifest without `meta` (which the scan never needs to build).
#[derive(Deserialize)]
struct ManifestHead {
    cell_id: String,
    parts: Vec<PartEntry>,
}

/// How thoroughly to check committed cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// `MANIFEST.json` parses and every part exists with its listed size (fast; the default).
    #[default]
    Sizes,
    /// Also recompute every part's SHA-256 (reads every byte).
    Full,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The cell is now committed at this directory.
    Committed(PathBuf),
    /// A verified copy was already committed; the first commit wins and this one was dropped.
    AlreadyCommitted,
}

/// The resume index: which cells are committed (and verified).
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Ids of the committed cells that verified.
    pub ids: HashSet<String>,
    /// Cell directories that failed verification: where they are now (moved aside to
    /// `cells/.broken-<id>-<n>` by a locked `Campaign`; left in place by a read-only
    /// `CampaignView`). Their cells run again.
    pub broken: Vec<PathBuf>,
    cells: PathBuf,
}

impl Committed {
    /// True when `id` is committed.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Number of committed cells.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when nothing is committed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The directory of a committed cell.
    pub fn dir(&self, id: &str) -> Option<PathBuf> {
        self.ids.contains(id).then(|| self.cells.join(id))
    }

    /// The full manifest of a committed cell, read from disk now.
    pub fn manifest(&self, id: &str) -> Option<CellManifest> {
        let path = self.dir(id)?.join(MANIFEST_FILE);
        let bytes = fs::read(&path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The `meta` a committed cell was committed with, read from its manifest now.
    pub fn meta(&self, id: &str) -> Option<serde_json::Value> {
        self.manifest(id).map(|m| m.meta)
    }
}

/// Cell ids are 32 lowercase hex digits ([`crate::plan::NodeId`]).
pub(crate) fn check_cell_id(id: &str) -> Result<(), StoreError> {
    if is_cell_id(id) {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            what: "cell id",
            name: id.to_owned(),
            why: "a cell id is 32 lowercase hex digits",
        })
    }
}

pub(crate) fn is_cell_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn valid_part_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name != MANIFEST_FILE
        && !name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':' | '\0') || c.is_control())
}

/// Part names are plain, visible file names, unique within a cell, and not `MANIFEST.json`.
pub(crate) fn check_part_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for name in names {
        if !valid_part_name(name) {
            return Err(StoreError::InvalidName {
                what: "part name",
                name: name.to_owned(),
                why: "a part name is a plain file name (no `/`, `\\`, `:` or control \
                      characters, not starting with `.`, not `MANIFEST.json`)",
            });
        }
        if !seen.insert(name) {
            return Err(StoreError::InvalidName {
                what: "part name",
                name: name.to_owned(),
                why: "part names must be unique within a cell",
            });
        }
    }
    Ok(())
}

/// The verdict on one cell directory.
pub(crate) enum Verdict {
    Good(Vec<PartEntry>),
    Broken(String),
}

/// Checks one cell directory. Damage (missing or short files, bad JSON, digest mismatch) is a
/// [`Verdict::Broken`]; an I/O error that says nothing about the cell (EMFILE, EIO on the
/// directory) is an `Err`, so a flaky disk never gets good cells moved aside.
pub(crate) fn verify_dir(dir: &Path, id: &str, level: Verify) -> Result<Verdict, StoreError> {
    let mpath = dir.join(MANIFEST_FILE);
    let bytes = match fs::read(&mpath) {
        Ok(b) => b,
        Err(e) if is_damage(&e) => {
            return Ok(Verdict::Broken(format!("{MANIFEST_FILE} is missing ({e})")));
        }
        Err(e) => return Err(StoreError::io(mpath, "read the cell manifest", e)),
    };
    let head: ManifestHead = match serde_json::from_slice(&bytes) {
        Ok(h) => h,
        Err(e) => {
            return Ok(Verdict::Broken(format!(
                "{MANIFEST_FILE} is unreadable: {e}"
            )));
        }
    };
    if head.cell_id != id {
        return Ok(Verdict::Broken(format!(
            "{MANIFEST_FILE} names cell {} instead",
            head.cell_id
        )));
    }
    for part in &head.parts {
        if !valid_part_name(&part.name) {
            return Ok(Verdict::Broken(format!(
                "invalid part name `{}`",
                part.name
            )));
        }
        let p = dir.join(&part.name);
        match fs::symlink_metadata(&p) {
            Ok(m) if !m.is_file() => {
                return Ok(Verdict::Broken(format!("`{}` is not a file", part.name)));
            }
            Ok(m) if m.len() != part.bytes => {
                return Ok(Verdict::Broken(format!(
                    "`{}` has {} bytes, {} expected",
                    part.name,
                    m.len(),
                    part.bytes
                )));
            }
            Ok(_) => {}
            Err(e) if is_damage(&e) => {
                return Ok(Verdict::Broken(format!("`{}` is missing", part.name)));
            }
            Err(e) => return Err(StoreError::io(p, "inspect a cell part", e)),
        }
        if level == Verify::Full {
            let digest = match hash_file(&p) {
                Ok(d) => d,
                Err(e) if is_damage(&e) => {
                    return Ok(Verdict::Broken(format!("`{}` is missing", part.name)));
                }
                Err(e) => return Err(StoreError::io(p, "read a cell part", e)),
            };
            if !digest.eq_ignore_ascii_case(&part.sha256) {
                return Ok(Verdict::Broken(format!(
                    "`{}` has SHA-256 {digest}, {} expected",
                    part.name, part.sha256
                )));
            }
        }
    }
    Ok(Verdict::Good(head.parts))
}

fn is_damage(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidData
    )
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h)?;
    let d: [u8; 32] = h.finalize().into();
    Ok(crate::plan::key::hex32(&d))
}

/// Below this many cells the scan runs on the calling thread.
const PARALLEL_MIN: usize = 512;

/// Which broken cells a scan may move aside.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MoveAside<'a> {
    /// None: report them where they are (a read-only view).
    No,
    /// Every one (a whole-campaign run).
    All,
    /// Only these (a shard: the others are other shards' to handle).
    Only(&'a HashSet<String>),
}

/// Scans `cells`: every `<32-hex>` directory is verified at `level`. Broken ones that
/// `move_aside` allows are renamed to `.broken-<id>-<n>` (never deleted), after a second check
/// (another process may have committed the cell again since) and unless another process moved
/// them first.
pub(crate) fn scan(
    cells: &Path,
    level: Verify,
    move_aside: MoveAside<'_>,
) -> Result<Committed, StoreError> {
    let mut names = Vec::new();
    let rd = match fs::read_dir(cells) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Committed {
                cells: cells.to_owned(),
                ..Committed::default()
            });
        }
        Err(e) => return Err(StoreError::io(cells, "list the committed cells", e)),
    };
    for entry in rd {
        let entry = entry.map_err(io_at(cells, "list the committed cells"))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_cell_id(&name) {
            names.push(name);
        } else if !name.starts_with('.') {
            tracing::debug!("{}: ignoring `{name}` (not a cell id)", cells.display());
        }
    }

    let verdicts = verify_all(cells, &names, level)?;

    let mut out = Committed {
        ids: HashSet::with_capacity(names.len()),
        broken: Vec::new(),
        cells: cells.to_owned(),
    };
    let mut moved = false;
    for (name, verdict) in names.into_iter().zip(verdicts) {
        match verdict {
            Verdict::Good(_) => {
                out.ids.insert(name);
            }
            Verdict::Broken(why) => {
                let dir = cells.join(&name);
                let mine = match move_aside {
                    MoveAside::No => false,
                    MoveAside::All => true,
                    MoveAside::Only(own) => own.contains(&name),
                };
                if mine {
                    // Committed again since the scan read it: good after all.
                    if matches!(verify_dir(&dir, &name, level), Ok(Verdict::Good(_))) {
                        out.ids.insert(name);
                        continue;
                    }
                    let to = match move_aside_to(cells, &name, "broken", &dir) {
                        Ok(to) => to,
                        // Another process moved it first.
                        Err(_) if fs::symlink_metadata(&dir).is_err() => continue,
                        Err(e) => return Err(e),
                    };
                    tracing::warn!(
                        "cell {name} failed verification ({why}); moved to {} and it will run again",
                        to.display()
                    );
                    out.broken.push(to);
                    moved = true;
                } else {
                    tracing::warn!("cell {name} failed verification ({why}): {}", dir.display());
                    out.broken.push(dir);
                }
            }
        }
    }
    if moved {
        fsx::sync_dir(cells).map_err(io_at(cells, "sync the cells directory"))?;
    }
    Ok(out)
}

fn verify_all(cells: &Path, names: &[String], level: Verify) -> Result<Vec<Verdict>, StoreError> {
    // The scan only needs the verdict: each cell's part list is dropped where it was built,
    // so a store of N cells never holds N part lists at once (≈ 0.7 KB a cell, kept by the
    // scan threads' malloc arenas for the life of the process).
    let one = |name: &String| {
        verify_dir(&cells.join(name), name, level).map(|v| match v {
            Verdict::Good(_) => Verdict::Good(Vec::new()),
            broken => broken,
        })
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16)
        // Stat-bound work overlaps well beyond the core count.
        * 2;
    if names.len() < PARALLEL_MIN || threads <= 1 {
        return names.iter().map(one).collect();
    }
    let chunk = names.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(one).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut all = Vec::with_capacity(names.len());
        for h in handles {
            match h.join() {
                Ok(r) => all.extend(r?),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        Ok(all)
    })
}

/// Renames `cells/<id>` to `cells/.<what>-<id>-<n>`.
pub(crate) fn move_aside_to(
    cells: &Path,
    id: &str,
    what: &str,
    dir: &Path,
) -> Result<PathBuf, StoreError> {
    let to = fsx::free_name(cells, &format!(".{what}-{id}-"));
    fs::rename(dir, &to).map_err(io_at(dir, "move a cell directory aside"))?;
    Ok(to)
}

/// The commit protocol: `fill` writes the cell into a fresh `<root>/.tmp-<id>-<tag>/` (ending
/// with `MANIFEST.json`, every file fsync'd), which is fsync'd, renamed to `<root>/<id>/`, and
/// `<root>` fsync'd. A verified `<root>/<id>/` that already exists wins; one that does not
/// verify is moved aside first.
pub(crate) fn commit(
    root: &Path,
    id: &str,
    tag: &str,
    fill: impl FnOnce(&Path) -> Result<(), StoreError>,
) -> Result<CommitOutcome, StoreError> {
    let dest = root.join(id);
    if fs::symlink_metadata(&dest).is_ok() {
        match verify_dir(&dest, id, Verify::Sizes)? {
            Verdict::Good(_) => return Ok(CommitOutcome::AlreadyCommitted),
            Verdict::Broken(why) => {
                let to = move_aside_to(root, id, "broken", &dest)?;
                tracing::warn!(
                    "cell {id}: the existing directory failed verification ({why}); moved to {}",
                    to.display()
                );
            }
        }
    }
    let tmp = claim_tmp(root, id, tag)?;
    let sealed = fill(&tmp)
        .and_then(|()| fsx::sync_dir(&tmp).map_err(io_at(&tmp, "sync a temporary cell directory")));
    if let Err(e) = sealed {
        discard(&tmp);
        return Err(e);
    }
    test_commit_pause();
    if let Err(e) = fs::rename(&tmp, &dest) {
        if fs::symlink_metadata(dest.join(MANIFEST_FILE)).is_ok() {
            discard(&tmp);
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        discard(&tmp);
        return Err(StoreError::io(
            &dest,
            "commit a cell (rename into place)",
            e,
        ));
    }
    fsx::sync_dir(root).map_err(io_at(root, "sync the cells directory"))?;
    Ok(CommitOutcome::Committed(dest))
}

/// Test hook (see the module docs of [`super`]): sleeps for `CHIMERA_TEST_COMMIT_PAUSE_MS`
/// milliseconds, read once per process, between sealing a temporary directory and renaming
/// it, so that a test can kill the process mid-commit. Unset, empty or unparsable: no pause.
fn test_commit_pause() {
    static PAUSE: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        std::env::var(TEST_COMMIT_PAUSE_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map(std::time::Duration::from_millis)
    });
    if let Some(d) = pause {
        std::thread::sleep(*d);
    }
}

/// Creates `<root>/.tmp-<id>-<tag>/`, or `….<n>` when that name is taken (a concurrent commit
/// of the same cell and attempt, or a leftover the next open removes): `create_dir` is the
/// atomic claim, so two writers never share a temporary directory.
fn claim_tmp(root: &Path, id: &str, tag: &str) -> Result<PathBuf, StoreError> {
    let base = format!(".tmp-{id}-{tag}");
    let mut n = 1u32;
    loop {
        let tmp = if n == 1 {
            root.join(&base)
        } else {
            root.join(format!("{base}.{n}"))
        };
        match fs::create_dir(&tmp) {
            Ok(()) => return Ok(tmp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
            Err(e) => return Err(StoreError::io(tmp, "create a temporary cell directory", e)),
        }
    }
}

fn discard(tmp: &Path) {
    if let Err(e) = fsx::remove_any(tmp) {
        tracing::warn!(
            "cannot remove {} ({e}); it is removed on the next run",
            tmp.display()
        );
    }
}

/// Writes `parts` and `MANIFEST.json` into `tmp`.
pub(crate) fn write_parts(
    tmp: &Path,
    id: &str,
    attempt: u32,
    parts: &[(String, Vec<u8>)],
    meta: &serde_json::Value,
) -> Result<(), StoreError> {
    let mut entries = Vec::with_capacity(parts.len());
    for (name, bytes) in parts {
        let p = tmp.join(name);
        fsx::write_new_synced(&p, bytes).map_err(io_at(&p, "write a cell part"))?;
        entries.push(PartEntry {
            name: name.clone(),
            bytes: bytes.len() as u64,
            sha256: fsx::sha256_hex(bytes),
        });
    }
    let manifest = CellManifest {
        cell_id: id.to_owned(),
        attempt,
        committed_at_unix_ms: crate::util::clock::now_unix_ms(),
        store_format: STORE_FORMAT,
        parts: entries,
        meta: meta.clone(),
    };
    let mpath = tmp.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| StoreError::io(&mpath, "encode the cell manifest", io::Error::other(e)))?;
    fsx::write_new_synced(&mpath, &json).map_err(io_at(&mpath, "write the cell manifest"))
}

/// Links (or copies) a verified cell directory `src` into `tmp`, manifest last.
pub(crate) fn link_cell(src: &Path, id: &str, tmp: &Path) -> Result<(), StoreError> {
    let parts = match verify_dir(src, id, Verify::Sizes)? {
        Verdict::Good(parts) => parts,
        Verdict::Broken(why) => {
            return Err(StoreError::Damaged {
                path: src.to_owned(),
                message: format!("the cached cell {id} does not verify ({why})"),
                help: "remove that cache entry; the cell will be run instead",
            });
        }
    };
    for name in parts.iter().map(|p| p.name.as_str()).chain([MANIFEST_FILE]) {
        let (from, to) = (src.join(name), tmp.join(name));
        fsx::link_or_copy(&from, &to).map_err(io_at(&from, "link or copy a cached cell file"))?;
    }
    Ok(())
}
