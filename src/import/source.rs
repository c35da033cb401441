//! Where an import reads its raw files from: a folder on disk, or a folder of a commit of a
//! git repository read through the `git` binary (see [`super::git`]), with no checkout.
//!
//! Readers see the same thing for both: a list of file paths (the source's root joined with
//! each file's path below it, sorted) and one function to read a file's bytes,
//! [`Source::read`] (through [`super::Ctx::read`] and [`super::Ctx::read_json`]). A git
//! source's root is not a path on disk: it reads `<repo>@<commit>:<path>`, so that messages
//! say where a file came from.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::error::ImportError;
use super::git::GitTree;
use super::{raw, walk};

/// A source of raw files (see the module docs).
pub(crate) enum Source {
    /// A folder on disk.
    Dir(PathBuf),
    /// A folder of one commit of a git repository.
    Git(GitTree),
}

impl Source {
    /// The root the listed paths are below (for git: `<repo>@<commit>:<path>`, not on disk).
    pub(crate) fn root(&self) -> &Path {
        match self {
            Source::Dir(d) => d,
            Source::Git(t) => t.root(),
        }
    }

    /// Where the data came from, as recorded in the campaign's origin.
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Dir(d) => d.display().to_string(),
            Source::Git(t) => t.describe(),
        }
    }

    /// Every file below the root (sorted, `root/rel`), leaving out hidden entries (a name
    /// starting with `.`), which are counted in `hidden`.
    pub(crate) fn list(&self, hidden: &mut u64) -> Result<Vec<PathBuf>, ImportError> {
        match self {
            Source::Dir(d) => walk::walk(d, hidden),
            Source::Git(t) => Ok(t.list(hidden)),
        }
    }

    /// The bytes of the file `path` (a path from [`Source::list`]); a file that is not a
    /// regular file, or larger than [`raw::MAX_RAW_FILE_BYTES`], is refused before it is read.
    pub(crate) fn read(&self, path: &Path) -> Result<Vec<u8>, ImportError> {
        match self {
            Source::Dir(_) => raw::read(path),
            Source::Git(t) => t.read(path),
        }
    }

    /// The top-level entries (folders end in `/`), for "found:" in layout errors.
    pub(crate) fn top_level(&self) -> String {
        match self {
            Source::Dir(d) => walk::top_level(d),
            Source::Git(t) => {
                let names: BTreeSet<String> = t
                    .rel_paths()
                    .filter_map(|rel| {
                        let mut c = rel.splitn(2, '/');
                        let first = c.next()?;
                        Some(match c.next() {
                            Some(_) => format!("{first}/"),
                            None => first.to_owned(),
                        })
                    })
                    .filter(|n| !n.starts_with('.'))
                    .collect();
                let names: Vec<String> = names.into_iter().collect();
                walk::name_list(&names)
            }
        }
    }

    /// The help line of a layout error: a subfolder whose name looks like the report's.
    pub(crate) fn suggest_subfolder(&self, report: &str) -> String {
        match self {
            Source::Dir(d) => super::layout::suggest_subfolder(d, report),
            Source::Git(t) => format!(
                "the tree at `{}` is not {report}'s raw data: check the path and commit (tr-spec §0.2)",
                t.describe()
            ),
        }
    }
}
