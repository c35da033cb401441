//! The shared cache: `<data>/.cache/<fingerprint>/<cell-id>/`, reused across campaigns that
//! run on the same environment fingerprint.
//!
//! Entries are written with the same temporary-directory-and-rename protocol as campaign
//! cells, with a per-process temporary name, so several processes may insert at once: the
//! first rename wins. Files are hard-linked where the filesystem allows (cells are
//! write-once), otherwise copied.

use std::fs;
use std::path::{Path, PathBuf};

use super::cells::{self, Verdict, Verify};
use super::error::{StoreError, io_at};
use super::layout::CACHE_DIR;

/// The shared cache of one data directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// Fingerprint directories already swept of dead inserts by this handle.
    swept: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Cache {
    /// The cache of `data` (`<data>/.cache`); nothing is created until the first insert.
    pub fn new(data: &Path) -> Cache {
        Cache {
            root: data.join(CACHE_DIR),
            swept: std::sync::Arc::default(),
        }
    }

    /// `<data>/.cache`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The environment fingerprint of `parts` (server versions, model digests, GPU names, …):
    /// the SHA-256, in hex, of the sorted parts, each length-prefixed. Order does not matter;
    /// every byte of every part does.
    pub fn fingerprint(parts: &[&str]) -> String {
        let mut sorted: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
        sorted.sort_unstable();
        let mut all = Vec::with_capacity(sorted.len() + 1);
        all.push(b"chimera-cache-v1".as_slice());
        all.extend(sorted);
        crate::plan::key::hex32(&crate::plan::key::digest(&all))
    }

    /// The cached directory of `cell_id` under `fp`, if present and every part's SHA-256
    /// verifies. (Entries are hard links of committed cells, so damage to a campaign's copy is
    /// damage to the cache's: a size check would hand a corrupted cell straight back to the
    /// run that set it aside.) A damaged entry is moved aside to `.broken-<id>-<n>` (never
    /// deleted) so that the next insert replaces it.
    pub fn lookup(&self, fp: &str, cell_id: &str) -> Option<PathBuf> {
        if !valid_fingerprint(fp) || !cells::is_cell_id(cell_id) {
            return None;
        }
        let dir = self.root.join(fp).join(cell_id);
        match cells::verify_dir(&dir, cell_id, Verify::Full) {
            Ok(Verdict::Good(_)) => Some(dir),
            Ok(Verdict::Broken(why)) => {
                if fs::symlink_metadata(&dir).is_ok() {
                    match cells::move_aside_to(&self.root.join(fp), cell_id, "broken", &dir) {
                        Ok(to) => tracing::warn!(
                            "cache entry {} is unusable ({why}); moved to {}",
                            dir.display(),
                            to.display()
                        ),
                        Err(e) => {
                            tracing::warn!("cache entry {} is unusable ({why}); {e}", dir.display())
                        }
                    }
                }
                None
            }
            Err(e) => {
                tracing::warn!("cache lookup: {e}");
                None
            }
        }
    }

    /// Stores the committed cell directory `committed_dir` under `fp`. An entry that is
    /// already there (from this or another process) is kept.
    pub fn insert(&self, fp: &str, cell_id: &str, committed_dir: &Path) -> Result<(), StoreError> {
        if !valid_fingerprint(fp) {
            return Err(StoreError::InvalidName {
                what: "fingerprint",
                name: fp.to_owned(),
                why: "a fingerprint is 1 to 128 hex digits (see `Cache::fingerprint`)",
            });
        }
        cells::check_cell_id(cell_id)?;
        let dir = self.root.join(fp);
        fs::create_dir_all(&dir).map_err(io_at(&dir, "create the cache directory"))?;
        let first = self
            .swept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(fp.to_owned());
        if first {
            sweep_dead_inserts(&dir);
        }
        let tag = format!(
            "{}-{}-{}",
            std::process::id(),
            crate::util::host_tag(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        cells::commit(&dir, cell_id, &tag, |tmp| {
            cells::link_cell(committed_dir, cell_id, tmp)
        })?;
        Ok(())
    }
}

impl Cache {
    /// Removes, in every fingerprint directory, the unfinished inserts of processes that are
    /// gone (see [`sweep_dead_inserts`]); a campaign run calls it once at its start, so a
    /// killed insert never outlives the next run, whether or not that run inserts anything.
    pub fn sweep_dead_inserts(&self) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        let mut swept = self
            .swept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if valid_fingerprint(&name) && e.path().is_dir() {
                sweep_dead_inserts(&e.path());
                swept.insert(name);
            }
        }
    }
}

/// Removes the `.tmp-<cell>-<pid>-<host>-<nanos>` directories of this host's inserts whose
/// process is gone (a `kill -9` during an insert); those of live processes (concurrent
/// campaigns) and of other hosts (shards on a shared filesystem) are left alone.
fn sweep_dead_inserts(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut removed = 0;
    let here = crate::util::host_tag();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".tmp-") else {
            continue;
        };
        // <cell-id (hex)>-<pid>-<host tag>-<nanos>[.<n>] (before the host tag:
        // <cell-id>-<pid>-<nanos>). An insert of another host (a shared filesystem) is that
        // host's business: its process cannot be looked up here.
        let fields: Vec<&str> = rest.split('-').collect();
        let Some(pid) = fields.get(1).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if fields.len() >= 4 && fields[2] != here {
            continue;
        }
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            "shared cache {}: removed {removed} unfinished insert(s) left by a killed run",
            dir.display()
        );
    }
}

fn valid_fingerprint(fp: &str) -> bool {
    !fp.is_empty() && fp.len() <= 128 && fp.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn inserts_of_dead_processes_are_swept_once() {
        let data = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(data.path());
        let fp = "ab12";
        let dir = data.path().join(CACHE_DIR).join(fp);
        fs::create_dir_all(&dir).expect("dir");
        // pid 4194304 is above Linux's largest pid: never a live process.
        let dead = dir.join(".tmp-0123abcd-4194304-17");
        let live = dir.join(format!(".tmp-0123abcd-{}-18", std::process::id()));
        // Another host's insert: its process cannot be looked up here, so it stays.
        let elsewhere = dir.join(".tmp-0123abcd-4194304-zz-19");
        let dead_here = dir.join(format!(
            ".tmp-0123abcd-4194304-{}-20",
            crate::util::host_tag()
        ));
        for d in [&dead, &live, &elsewhere, &dead_here] {
            fs::create_dir(d).expect("dir");
        }
        let cell = data.path().join("cell");
        fs::create_dir(&cell).expect("cell");
        let _ = cache.insert(fp, "00000000000000000000000000000001", &cell);
        assert!(!dead.exists(), "a dead process's insert is removed");
        assert!(live.exists(), "a live process's insert is kept");
        assert!(elsewhere.exists(), "another host's insert is kept");
        assert!(
            !dead_here.exists(),
            "a dead process of this host is removed"
        );
    }

    #[test]
    fn fingerprint_is_order_free_and_unambiguous() {
        let a = Cache::fingerprint(&["ollama 0.6.2", "NVIDIA H100"]);
        assert_eq!(a, Cache::fingerprint(&["NVIDIA H100", "ollama 0.6.2"]));
        assert_eq!(a.len(), 64);
        assert_ne!(a, Cache::fingerprint(&["ollama 0.6.3", "NVIDIA H100"]));
        assert_ne!(
            Cache::fingerprint(&["ab", "c"]),
            Cache::fingerprint(&["a", "bc"])
        );
        assert_ne!(Cache::fingerprint(&[]), Cache::fingerprint(&[""]));
    }
}
