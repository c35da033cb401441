//! A git repository read through the `git` binary itself, with no checkout and nothing
//! written to disk: `git ls-tree -r -z -l` lists a folder of a commit, one long-lived
//! `git cat-file --batch` child reads the blobs one at a time, and `git log` finds the commit
//! that holds a report's raw results (see [`Repo::locate`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::error::ImportError;
use super::raw::MAX_RAW_FILE_BYTES;

/// A git repository (a clone, bare or not).
pub(crate) struct Repo {
    dir: PathBuf,
    /// The folder above `dir`: git looks no higher (`GIT_CEILING_DIRECTORIES`), so a folder
    /// that is not a repository but lies inside one (a checkout's subfolder) is not taken for it.
    ceiling: Option<PathBuf>,
}

/// Where a report's raw results are: a commit, and how it was found.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// Full SHA of the commit read.
    pub(crate) commit: String,
    /// `HEAD`, or `<deleting commit>^` (the parent of the commit that deleted the files).
    pub(crate) how: String,
}

/// Why a report's raw results were not found.
#[derive(Debug, Clone)]
pub(crate) enum NotFound {
    /// No commit of the history holds them.
    Absent,
    /// The clone is shallow and its history ends before the files were deleted.
    Shallow,
}

/// One file of a commit's folder.
#[derive(Debug, Clone)]
struct Entry {
    mode: String,
    kind: String,
    object: String,
    size: Option<u64>,
}

impl Repo {
    /// The repository at `dir` (checked with `git rev-parse`).
    pub(crate) fn open(dir: &Path) -> Result<Repo, ImportError> {
        let repo = Repo {
            dir: dir.to_path_buf(),
            ceiling: std::fs::canonicalize(dir)
                .ok()
                .and_then(|d| d.parent().map(Path::to_path_buf)),
        };
        repo.output(["rev-parse", "--git-dir"])
            .map_err(|e| ImportError::Git {
                message: format!("`{}` is not a git repository: {e}", dir.display()),
                help: "pass a clone of the original repository (bare or not) to --git".into(),
            })?;
        Ok(repo)
    }

    /// The repository's folder, as given.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("git");
        if let Some(ceiling) = &self.ceiling {
            c.env("GIT_CEILING_DIRECTORIES", ceiling);
        }
        c.arg("-C")
            .arg(&self.dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        c
    }

    /// stdout of a git command that must succeed; the error is git's stderr.
    fn output<I, S>(&self, args: I) -> Result<Vec<u8>, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self
            .command(args)
            .output()
            .map_err(|e| format!("cannot run `git`: {e}"))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn git_error(&self, what: &str, e: String) -> ImportError {
        ImportError::Git {
            message: format!("`git {what}` failed in `{}`: {e}", self.dir.display()),
            help: "check that the repository is readable and `git` works there".into(),
        }
    }

    /// The full SHA of `rev`, if it names a commit here.
    pub(crate) fn commit(&self, rev: &str) -> Option<String> {
        let spec = format!("{rev}^{{commit}}");
        let out = self.output(["rev-parse", "--verify", "-q", &spec]).ok()?;
        let s = String::from_utf8_lossy(&out).trim().to_owned();
        (!s.is_empty()).then_some(s)
    }

    /// True when the clone's history is cut (`git clone --depth`).
    pub(crate) fn is_shallow(&self) -> bool {
        self.output(["rev-parse", "--is-shallow-repository"])
            .is_ok_and(|o| o.starts_with(b"true"))
    }

    /// The commit whose folder `base` holds raw results (files with a name ending in one of
    /// `markers`): HEAD when it does, else the parent of the last commit that deleted such a
    /// file below `base` (the original repository deleted its bulky raw data in March 2026,
    /// tr-spec §0.2). Found from the history, so it works on any clone whatever its SHAs.
    pub(crate) fn locate(
        &self,
        base: &str,
        only: &[&str],
        markers: &[&str],
    ) -> Result<Located, NotFound> {
        // The commit whose tree holds the most raw-results files: HEAD, or the parent of a
        // commit that deleted some (a stray file left at HEAD, or a later clean-up of a
        // leftover, must not win over the commit that holds the whole data).
        let count = |commit: &str| {
            self.tree(commit, base, only).map_or(0, |t| {
                t.keys()
                    .filter(|p| markers.iter().any(|m| p.ends_with(m)))
                    .count()
            })
        };
        let mut best: Option<(usize, Located)> = None;
        let mut consider = |n: usize, located: Located| {
            if n > 0 && best.as_ref().is_none_or(|(m, _)| n > *m) {
                best = Some((n, located));
            }
        };
        if let Some(head) = self.commit("HEAD") {
            consider(
                count(&head),
                Located {
                    commit: head,
                    how: "HEAD".into(),
                },
            );
        }
        let mut args: Vec<String> = [
            "log",
            "--diff-filter=D",
            "--no-renames",
            "--format=%H",
            "HEAD",
            "--",
        ]
        .map(String::from)
        .to_vec();
        let dirs: Vec<String> = if only.is_empty() {
            vec![base.to_owned()]
        } else {
            only.iter().map(|o| format!("{base}/{o}")).collect()
        };
        for d in &dirs {
            args.extend(markers.iter().map(|m| format!(":(glob){d}/**/*{m}")));
        }
        let deleters = self
            .output(&args)
            .map(|o| {
                String::from_utf8_lossy(&o)
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for deleter in deleters.iter().filter(|d| !d.is_empty()) {
            if let Some(parent) = self.commit(&format!("{deleter}^")) {
                let n = count(&parent);
                consider(
                    n,
                    Located {
                        commit: parent,
                        how: format!("{}^", short(deleter)),
                    },
                );
            }
        }
        match best {
            Some((_, located)) => Ok(located),
            None if self.is_shallow() => Err(NotFound::Shallow),
            None => Err(NotFound::Absent),
        }
    }

    /// The files below `base` (or below `base/<o>` for each of `only` when given) at
    /// `commit`, by their path below `base`.
    fn tree(
        &self,
        commit: &str,
        base: &str,
        only: &[&str],
    ) -> Result<BTreeMap<String, Entry>, ImportError> {
        let base = base.trim_end_matches('/');
        let mut args: Vec<String> = ["ls-tree", "-r", "-z", "-l", "--full-tree", commit, "--"]
            .map(String::from)
            .to_vec();
        if only.is_empty() {
            args.push(format!("{base}/"));
        } else {
            args.extend(only.iter().map(|o| format!("{base}/{o}/")));
        }
        let out = self
            .output(&args)
            .map_err(|e| self.git_error("ls-tree", e))?;
        let mut files = BTreeMap::new();
        for rec in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8_lossy(rec);
            let Some((meta, path)) = rec.split_once('\t') else {
                continue;
            };
            let f: Vec<&str> = meta.split_whitespace().collect();
            let [mode, kind, object, size] = f.as_slice() else {
                continue;
            };
            let Some(rel) = path.strip_prefix(base).and_then(|p| p.strip_prefix('/')) else {
                continue;
            };
            files.insert(
                rel.to_owned(),
                Entry {
                    mode: (*mode).to_owned(),
                    kind: (*kind).to_owned(),
                    object: (*object).to_owned(),
                    size: size.parse().ok(),
                },
            );
        }
        Ok(files)
    }
}

/// The first 8 hex digits of a SHA.
pub(crate) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(8)]
}

/// One folder of one commit, read through a `git cat-file --batch` child.
pub(crate) struct GitTree {
    repo: PathBuf,
    commit: String,
    base: String,
    root: PathBuf,
    files: BTreeMap<String, Entry>,
    batch: RefCell<Option<Batch>>,
}

impl GitTree {
    /// The folder `base` of `commit` (restricted to its subfolders `only`, when given).
    pub(crate) fn open(
        repo: &Repo,
        commit: &str,
        base: &str,
        only: &[&str],
    ) -> Result<GitTree, ImportError> {
        let files = repo.tree(commit, base, only)?;
        let base = base.trim_end_matches('/').to_owned();
        let root = PathBuf::from(format!("{}@{}:{base}", repo.dir().display(), short(commit)));
        Ok(GitTree {
            repo: repo.dir().to_path_buf(),
            commit: commit.to_owned(),
            base,
            root,
            files,
            batch: RefCell::new(None),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn describe(&self) -> String {
        format!("git {} {}:{}", self.repo.display(), self.commit, self.base)
    }

    /// The paths below the folder (`a/b/c`).
    pub(crate) fn rel_paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Every file (`root/rel`, sorted), hidden entries left out and counted.
    pub(crate) fn list(&self, hidden: &mut u64) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for rel in self.files.keys() {
            if rel.split('/').any(|c| c.starts_with('.')) {
                *hidden += 1;
            } else {
                out.push(self.root.join(rel));
            }
        }
        out
    }

    /// The bytes of the blob at `path` (a path from [`GitTree::list`]).
    pub(crate) fn read(&self, path: &Path) -> Result<Vec<u8>, ImportError> {
        let rel = path
            .strip_prefix(&self.root)
            .ok()
            .and_then(Path::to_str)
            .and_then(|r| self.files.get(r));
        let Some(e) = rel else {
            return Err(ImportError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not in this tree"),
            });
        };
        if e.kind != "blob" || e.mode == "120000" || e.mode == "160000" {
            return Err(ImportError::NotRegularFile {
                path: path.to_path_buf(),
                kind: match e.mode.as_str() {
                    "120000" => "a symbolic link",
                    "160000" => "a submodule",
                    _ => "not a plain file",
                },
            });
        }
        if let Some(size) = e.size
            && size > MAX_RAW_FILE_BYTES
        {
            return Err(ImportError::FileTooLarge {
                path: path.to_path_buf(),
                size,
                limit: MAX_RAW_FILE_BYTES,
            });
        }
        let mut batch = self.batch.borrow_mut();
        if batch.is_none() {
            *batch = Some(Batch::start(&self.repo).map_err(|source| ImportError::Io {
                path: path.to_path_buf(),
                source,
            })?);
        }
        let read = batch.as_mut().map(|b| b.read(&e.object));
        match read {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(source)) => {
                // A failed read leaves the child out of step: the next read starts a new one.
                *batch = None;
                Err(ImportError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
            None => unreachable!("started above"),
        }
    }
}

/// A `git cat-file --batch` child: one object id in, one header and its bytes out.
struct Batch {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Batch {
    fn start(repo: &Path) -> std::io::Result<Batch> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["cat-file", "--batch"])
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        Ok(Batch {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    fn read(&mut self, object: &str) -> std::io::Result<Vec<u8>> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("git cat-file has exited"))?;
        writeln!(stdin, "{object}")?;
        stdin.flush()?;
        let mut header = String::new();
        self.stdout.read_line(&mut header)?;
        let f: Vec<&str> = header.split_whitespace().collect();
        let size: u64 = match f.as_slice() {
            [_, "blob", size] => size
                .parse()
                .map_err(|_| std::io::Error::other(format!("git cat-file said `{header}`")))?,
            _ => {
                return Err(std::io::Error::other(format!(
                    "git cat-file said `{}`",
                    header.trim()
                )));
            }
        };
        if size > MAX_RAW_FILE_BYTES {
            return Err(std::io::Error::other(format!(
                "blob of {size} bytes, over the limit of {MAX_RAW_FILE_BYTES}"
            )));
        }
        let mut bytes = vec![0u8; size as usize];
        self.stdout.read_exact(&mut bytes)?;
        let mut nl = [0u8; 1];
        self.stdout.read_exact(&mut nl)?;
        Ok(bytes)
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // Closing stdin ends the child, unless it is blocked writing a blob nobody reads (a
        // read given up half-way): it only reads, so it is killed; then waited for, so that
        // no zombie is left.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
