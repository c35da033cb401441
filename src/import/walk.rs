//! The walk of the source tree: every file below it, bounded in depth and size.

use std::path::{Path, PathBuf};

use super::error::ImportError;

/// Every file under `dir` (sorted, absolute), skipping hidden entries. Directories deeper than
/// [`MAX_DEPTH`] (a symlink loop, or not a report's folder) and more than [`MAX_ENTRIES`]
/// entries are an error.
pub(super) fn walk(dir: &Path, hidden: &mut u64) -> Result<Vec<PathBuf>, ImportError> {
    walk_at_most(dir, hidden, MAX_ENTRIES)
}

fn walk_at_most(
    dir: &Path,
    hidden: &mut u64,
    max_entries: usize,
) -> Result<Vec<PathBuf>, ImportError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut seen = 0usize;
    while let Some((d, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(ImportError::Invalid {
                path: d,
                message: format!("more than {MAX_DEPTH} directory levels below the source"),
                help: "point at one report's raw-data folder (and check for a symlink loop)".into(),
            });
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImportError::Io { path, source }
        };
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let p = e.path();
            seen += 1;
            if seen > max_entries {
                return Err(ImportError::Invalid {
                    path: dir.to_path_buf(),
                    message: format!(
                        "more than {max_entries} entries below the source (a symlink to a large \
                         tree?)"
                    ),
                    help: "point at one report's raw-data folder".into(),
                });
            }
            if e.file_name().to_string_lossy().starts_with('.') {
                *hidden += 1;
                continue;
            }
            if std::fs::metadata(&p).map_err(io(&p))?.is_dir() {
                stack.push((p, depth + 1));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// How deep [`walk`] goes (the deepest layout has 4 levels).
pub(super) const MAX_DEPTH: usize = 16;

/// How many entries [`walk`] looks at before it gives up: a whole report's raw data is a few
/// thousand files, so this only stops a symlink into a large tree (`/`, a home directory).
pub(super) const MAX_ENTRIES: usize = 1_000_000;

/// The top-level entries of a directory, for "found:" in layout errors.
pub(super) fn top_level(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() {
                        format!("{n}/")
                    } else {
                        n
                    }
                })
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    name_list(&names)
}

/// Sorted entry names as "found:" shows them: at most 12, then the count.
pub(super) fn name_list(names: &[String]) -> String {
    match names.len() {
        0 => "an empty directory".to_owned(),
        n if n > 12 => format!("{}, … ({n} entries)", names[..12].join(", ")),
        _ => names.join(", "),
    }
}

/// Components of `p` relative to `base`, as strings.
pub(super) fn components(base: &Path, p: &Path) -> Vec<String> {
    p.strip_prefix(base)
        .unwrap_or(p)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
}

/// Markdown files are the harnesses' generated reports: never runs.
pub(super) fn is_markdown(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".md")
}

#[cfg(test)]
mod walk_tests {
    use super::*;

    #[test]
    fn the_walk_stops_at_its_entry_limit_and_says_why() {
        let t = tempfile::tempdir().expect("tempdir");
        for i in 0..10 {
            std::fs::write(t.path().join(format!("f{i}.json")), "{}").expect("write");
        }
        std::fs::write(t.path().join(".hidden"), "").expect("write");
        let mut hidden = 0;
        let all = walk_at_most(t.path(), &mut hidden, 11).expect("within the limit");
        assert_eq!((all.len(), hidden), (10, 1));
        let e = walk_at_most(t.path(), &mut 0, 5).expect_err("over the limit");
        assert!(e.to_string().contains("more than 5 entries"), "{e}");
    }
}
