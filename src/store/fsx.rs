//! Small filesystem helpers: durable writes, directory fsync, link-or-copy, free names.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let d: [u8; 32] = Sha256::digest(bytes).into();
    crate::plan::key::hex32(&d)
}

/// Creates `path` (which must not exist), writes `bytes` and flushes them to disk.
pub(crate) fn write_new_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::options().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes `path` atomically: `<path>.<host>.<pid>.<nanos>.tmp`, fsync, rename, fsync of the parent directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A name of this process's own: shards on other machines may write the same file.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", crate::util::unique_suffix()));
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    write_new_synced(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Flushes a directory's entries (a rename or a new file in it) to disk.
///
/// Platforms and filesystems that cannot fsync a directory (EINVAL, unsupported, Windows)
/// are skipped: there the rename itself is the best that can be had.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    if !cfg!(unix) {
        return Ok(());
    }
    const EINVAL: i32 = 22;
    match File::open(dir).and_then(|f| f.sync_all()) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) || e.raw_os_error() == Some(EINVAL) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Hard-links `src` to `dst`; where that fails (another filesystem, no link support), copies
/// and fsyncs the copy.
pub(crate) fn link_or_copy(src: &Path, dst: &Path) -> io::Result<()> {
    match fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(e) => {
            tracing::debug!("hard link {} failed ({e}); copying", src.display());
            fs::copy(src, dst)?;
            File::options().write(true).open(dst)?.sync_all()
        }
    }
}

/// `<dir>/<prefix><n>` for the smallest `n >= 1` that does not exist yet.
pub(crate) fn free_name(dir: &Path, prefix: &str) -> PathBuf {
    let mut n = 1u64;
    loop {
        let p = dir.join(format!("{prefix}{n}"));
        if fs::symlink_metadata(&p).is_err() {
            return p;
        }
        n += 1;
    }
}

/// Removes a file or a directory tree; a missing path is not an error.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_names_count_up() {
        let t = tempfile::tempdir().expect("tempdir");
        assert_eq!(free_name(t.path(), ".x-"), t.path().join(".x-1"));
        fs::create_dir(t.path().join(".x-1")).expect("create_dir");
        assert_eq!(free_name(t.path(), ".x-"), t.path().join(".x-2"));
    }
}
