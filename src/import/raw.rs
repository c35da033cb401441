//! The one way an importer reads a raw-data file: only a regular file (a symlink is followed
//! only when it ends at one), opened so that nothing can block the open, and at most
//! [`MAX_RAW_FILE_BYTES`] bytes of it.
//!
//! A raw-data tree is input from elsewhere: a `metrics.json` that is a FIFO would block the
//! open (and then the read) forever, and one that is a symlink to `/dev/zero` would be read
//! until memory runs out. Here the path's metadata is checked first (a FIFO, device, socket or
//! directory is refused before it is opened), the open uses `O_NONBLOCK` (a FIFO swapped in
//! after the check does not block it), the metadata of the opened handle is checked again,
//! and the read stops one byte past the limit (a file that grows while read is refused too).

use std::fs::{File, FileType, Metadata};
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::error::ImportError;

/// Largest raw-data file read, in bytes (256 MiB). The largest raw file of the original
/// reports is a few MiB; anything this big is not one of them.
pub(super) const MAX_RAW_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The bytes of the raw-data file `path` (see the module docs).
pub(super) fn read(path: &Path) -> Result<Vec<u8>, ImportError> {
    read_limited(path, MAX_RAW_FILE_BYTES)
}

/// The text of the raw-data file `path`; not UTF-8 is an error naming the file.
#[cfg(test)]
pub(super) fn read_to_string(path: &Path) -> Result<String, ImportError> {
    text(path, read(path)?)
}

/// `bytes` of the file `path` as text; not UTF-8 is an error naming the file.
pub(super) fn text(path: &Path, bytes: Vec<u8>) -> Result<String, ImportError> {
    String::from_utf8(bytes).map_err(|e| ImportError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })
}

/// [`read`] with the limit given.
pub(super) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ImportError> {
    let io = |source: std::io::Error| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Follows a symlink: what matters is what would be read.
    check(path, &std::fs::metadata(path).map_err(io)?, limit)?;
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    let file = File::from(fd);
    // The path may have been replaced between the check and the open.
    check(path, &file.metadata().map_err(io)?, limit)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(ImportError::FileTooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// A regular file of at most `limit` bytes.
fn check(path: &Path, meta: &Metadata, limit: u64) -> Result<(), ImportError> {
    if !meta.is_file() {
        return Err(ImportError::NotRegularFile {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    if meta.len() > limit {
        return Err(ImportError::FileTooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit,
        });
    }
    Ok(())
}

/// What a non-regular file is, for messages.
fn kind_of(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_whole_up_to_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("metrics.json");
        std::fs::write(&f, b"{\"a\":1}").expect("write");
        assert_eq!(read(&f).expect("read"), b"{\"a\":1}");
        assert_eq!(read_limited(&f, 7).expect("read"), b"{\"a\":1}");
        let e = read_limited(&f, 6).expect_err("over the limit").to_string();
        assert!(e.contains("metrics.json") && e.contains("7 bytes"), "{e}");
        assert!(e.contains("limit of 6 bytes"), "{e}");
        // A symlink to a regular file is followed.
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        assert_eq!(read(&link).expect("read"), b"{\"a\":1}");
    }

    #[test]
    fn devices_directories_and_fifos_are_refused_before_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zero = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        let e = read(&zero).expect_err("a device").to_string();
        assert!(
            e.contains("zero.json") && e.contains("not a regular file"),
            "{e}"
        );
        assert!(e.contains("character device"), "{e}");
        let e = read(dir.path()).expect_err("a directory").to_string();
        assert!(e.contains("not a regular file (it is a directory)"), "{e}");
        let fifo = dir.path().join("fifo.json");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let e = read(&fifo).expect_err("a FIFO").to_string();
        assert!(e.contains("fifo.json") && e.contains("FIFO"), "{e}");
        let e = read_to_string(&fifo).expect_err("a FIFO").to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn text_that_is_not_utf8_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.csv");
        std::fs::write(&f, [b'a', 0xff, b'\n']).expect("write");
        let e = read_to_string(&f).expect_err("not UTF-8").to_string();
        assert!(e.contains("a.csv") && e.contains("utf-8"), "{e}");
    }
}
