//! [`StoreError`]: every message names the path, what was being done, and what to change.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("cannot {op} `{}`: {source}{}", .path.display(), Hint(.op, .source))]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("create the campaign directory", "write a cell part", …).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another process holds the campaign's lock.
    #[error(
        "campaign `{}` is in use by another `chimera run` ({holder}).\n  = help: wait for it to \
         finish or stop it (its pid and start time are in `{}`), or pass another campaign name \
         or --data",
        .dir.display(), .dir.join(super::layout::LOCK_FILE).display()
    )]
    Locked {
        /// The campaign directory.
        dir: PathBuf,
        /// What the lock file says about the holder ("pid 123, started at …"), or "holder unknown".
        holder: String,
    },
    /// Shards of the campaign are running, and a whole-campaign run was asked for.
    #[error(
        "campaign `{}` has shards running: {running}.\n  = help: wait for them (`chimera status` \
         follows them), or run another shard with --shard I/N",
        .dir.display()
    )]
    ShardsRunning {
        /// The campaign directory.
        dir: PathBuf,
        /// `0/4 (pid 12 on node1, …)`, comma-separated.
        running: String,
    },
    /// A running shard of the same count was split differently.
    #[error(
        "shard {shard} is split differently from shard {other}, which is running ({holder}): \
         the manifests or --shard-by differ, so cells would run twice or never.\n  = help: give \
         every shard of one campaign the same manifests and the same --shard-by"
    )]
    ShardSplitDiffers {
        /// `I/N` being started.
        shard: String,
        /// `I/N` running.
        other: String,
        /// What its lock file says.
        holder: String,
    },
    /// The shard is already running elsewhere.
    #[error(
        "shard {shard} of this campaign is already running ({holder}).\n  = help: wait for it, \
         or cancel that job first (Slurm: `scancel`) and run the shard again"
    )]
    ShardRunning {
        /// `I/N`.
        shard: String,
        /// What its lock file says.
        holder: String,
    },
    /// The campaign was written by a newer chimera.
    #[error(
        "campaign `{}` has store format {found}, but this chimera supports up to {supported}.\n  \
         = help: upgrade chimera, or pass --data to use another data directory",
        .dir.display()
    )]
    NewerFormat {
        /// The campaign directory.
        dir: PathBuf,
        /// The format in its `campaign.json`.
        found: u32,
        /// `STORE_FORMAT`.
        supported: u32,
    },
    /// `open_existing` found no campaign.
    #[error(
        "no campaign at `{}` (no campaign.json).\n  = help: check the campaign name and --data; \
         `chimera run` creates the campaign",
        .dir.display()
    )]
    NotFound {
        /// The campaign directory looked at.
        dir: PathBuf,
    },
    /// A store file exists but cannot be understood.
    #[error("`{}` is damaged: {message}.\n  = help: {help}", .path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// What to do.
        help: &'static str,
    },
    /// A name is longer than the store accepts.
    #[error(
        "{what} `{start}…` is {len} characters long; the limit is {max}\n  = help: pass a shorter \
         name (it becomes a directory name)"
    )]
    NameTooLong {
        /// "campaign name".
        what: &'static str,
        /// Its first characters.
        start: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A name handed to the store is not acceptable.
    #[error("invalid {what} `{name}`: {why}")]
    InvalidName {
        /// "cell id", "part name", "campaign name", "fingerprint".
        what: &'static str,
        /// The rejected name.
        name: String,
        /// What a valid one looks like.
        why: &'static str,
    },
}

impl StoreError {
    /// Wraps an I/O error with the path and the operation.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// True when the error is the disk (or quota) being full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if is_disk_full(source))
    }
}

/// `map_err` helper: `.map_err(io_at(&path, "read the cell manifest"))`.
pub(crate) fn io_at<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |e| StoreError::io(path, op, e)
}

const ENOSPC: i32 = 28;
const EROFS: i32 = 30;
const EDQUOT: i32 = 122;

fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || e.raw_os_error() == Some(ENOSPC)
        || e.raw_os_error() == Some(EDQUOT)
}

/// The fix for an I/O error, as a `\n  = help: …` suffix (empty when there is nothing to say).
struct Hint<'a>(&'a str, &'a io::Error);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, e) = (self.0, self.1);
        let help = if e.kind() == io::ErrorKind::ReadOnlyFilesystem
            || e.raw_os_error() == Some(EROFS)
        {
            "the data directory is read-only: pass --data to a writable directory"
        } else if e.kind() == io::ErrorKind::PermissionDenied {
            "the data directory is not writable by this user: pass --data to a writable \
             directory, or fix its permissions"
        } else if is_disk_full(e) {
            "the disk is full (or the quota is exceeded): free space, then run again; committed \
             cells are safe"
        } else if e.kind() == io::ErrorKind::NotADirectory {
            "a component of this path is a file, not a directory: pass --data to a directory"
        } else if e.kind() == io::ErrorKind::NotFound && op.starts_with("create") {
            "a parent directory does not exist or cannot be created here: pass --data to a \
             writable directory"
        } else {
            return Ok(());
        };
        write!(f, "\n  = help: {help}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(op: &'static str, e: io::Error) -> String {
        StoreError::io("/data/c1/cells/x", op, e).to_string()
    }

    #[test]
    fn io_errors_name_the_path_the_operation_and_the_fix() {
        let full = msg("write a cell part", io::Error::from_raw_os_error(ENOSPC));
        assert!(
            full.starts_with("cannot write a cell part `/data/c1/cells/x`: "),
            "{full}"
        );
        assert!(full.contains("the disk is full"), "{full}");
        assert!(full.contains("committed cells are safe"), "{full}");
        assert!(StoreError::io("/x", "y", io::Error::from_raw_os_error(ENOSPC)).is_disk_full());
        let quota = msg("write a cell part", io::Error::from_raw_os_error(EDQUOT));
        assert!(quota.contains("the disk is full"), "{quota}");
        let ro = msg(
            "create the campaign directory",
            io::Error::from_raw_os_error(EROFS),
        );
        assert!(
            ro.contains("the data directory is read-only: pass --data to a writable directory"),
            "{ro}"
        );
        let perm = msg(
            "create the campaign directory",
            io::ErrorKind::PermissionDenied.into(),
        );
        assert!(
            perm.contains("pass --data to a writable directory"),
            "{perm}"
        );
        let other = msg("read a cell part", io::ErrorKind::Interrupted.into());
        assert!(!other.contains("help"), "{other}");
        let missing = msg("read the journal", io::ErrorKind::NotFound.into());
        assert!(!missing.contains("help"), "{missing}");
    }
}
