//! `chimera import chimeraforge --git REPO`: every report's raw results read straight from a
//! clone of the original repository, with no checkout and no copy on disk.
//!
//! [`ORIGINS`] says where each report's raw results are (tr-spec §0.2, §15): a folder, and the
//! commit of the original repository that holds it. The commit is found from the clone's own
//! history ([`Repo::locate`]: the folder at HEAD, else the parent of the last commit that
//! deleted its files), so any clone works, whatever its SHAs; the known SHAs only serve the
//! error of a clone that lacks them (a shallow clone).
//!
//! Each report is imported into its own campaign (`chimeraforge-<trNNN>`) as a folder import
//! would. A report that fails (its commit missing from the clone, a file it cannot read) is reported as
//! failed with the reason and the others go on: the command fails only when none imported.

use std::path::PathBuf;

use super::error::ImportError;
use super::git::{GitTree, Located, NotFound, Repo, short};
use super::source::Source;
use super::{ImportOptions, ImportSummary};

/// Where one report's raw results are in the original repository.
struct Origin {
    /// Report id (`--report`; the manifest is `experiments/<trNNN>.yaml`).
    report: &'static str,
    /// The folder, from the repository root.
    base: &'static str,
    /// Only these subfolders of `base` (none: all of it).
    only: &'static [&'static str],
    /// What a raw-results file's name ends with (finds the commit that holds them).
    markers: &'static [&'static str],
    /// The commit of the original repository that holds them (`HEAD`, or `<sha>^`).
    known: &'static str,
}

/// The commit that deleted the bulky raw data (2026-03-11).
const REMOVE_BULKY: &str = "970b0b915e64ac7f4506b667748bdd368454e084^";

/// Every report whose raw results survive in the original repository.
const ORIGINS: &[Origin] = &[
    Origin {
        report: "TR108",
        base: "outputs/reports",
        only: &["llama3", "gemma3"],
        markers: &[".csv"],
        known: "HEAD",
    },
    Origin {
        report: "TR109",
        base: "benchmarks/python/chimera_sweep",
        only: &[],
        markers: &["metrics.json"],
        known: "HEAD",
    },
    Origin {
        report: "TR110",
        base: "src/python/banterhearts/demo_multiagent/comprehensive_test_results",
        only: &[],
        markers: &["metrics.json"],
        known: "f399b15c4a36e224f1488526637c8c7745de03c1^",
    },
    Origin {
        report: "TR111",
        base: "data/research/tr109_rust_full",
        only: &[],
        markers: &["metrics.json"],
        known: REMOVE_BULKY,
    },
    Origin {
        report: "TR113",
        base: "src/rust/demo_multiagent/Demo_rust_multiagent_results",
        only: &[],
        markers: &["metrics.json"],
        known: "HEAD",
    },
    Origin {
        report: "TR114",
        base: "data/research/tr110_rust_full",
        only: &[],
        markers: &["metrics.json"],
        known: REMOVE_BULKY,
    },
    Origin {
        report: "TR115",
        base: "experiments/TR115_runtime_optimization/results_v2",
        only: &[],
        markers: &["metrics.json"],
        known: REMOVE_BULKY,
    },
    Origin {
        report: "TR116",
        base: "experiments/TR116/results",
        only: &[],
        markers: &["metrics.json"],
        known: REMOVE_BULKY,
    },
];

/// What to import from a git repository, and where to.
#[derive(Debug, Clone)]
pub struct GitImport {
    /// A clone of the original repository (bare or not).
    pub repo: PathBuf,
    /// Data directory.
    pub data: PathBuf,
    /// Where the manifests are (`experiments/`).
    pub experiments: PathBuf,
    /// Only this report (`TR114`, `tr114_v2`…); `None`: every report of [`ORIGINS`].
    pub report: Option<String>,
}

/// One report of a `--git` import.
#[derive(Debug)]
pub struct GitOutcome {
    /// Report id (as `--report` takes it).
    pub report: String,
    /// `<commit>:<folder>` read, when found.
    pub from: Option<String>,
    /// The import, or why it failed.
    pub result: Result<ImportSummary, ImportError>,
}

/// Imports every report's raw results from the repository `opts.repo` (see the module docs).
/// Errs only when the repository cannot be read at all.
pub fn import_git(opts: &GitImport) -> Result<Vec<GitOutcome>, ImportError> {
    let repo = Repo::open(&opts.repo)?;
    if let Some(r) = &opts.report
        && super::normalize_report(r) != super::normalize_report(COMPARES.0)
        && origin_of(r).is_none()
    {
        return Err(ImportError::Report {
            message: format!("--report `{r}`: the original repository holds no raw results of it"),
            help: format!(
                "one of {}",
                ORIGINS
                    .iter()
                    .map(|o| o.report)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let mut out = Vec::new();
    for o in ORIGINS {
        if opts
            .report
            .as_ref()
            .is_some_and(|r| super::normalize_report(r) != super::normalize_report(o.report))
        {
            continue;
        }
        let (from, result) = match import_one(&repo, o, opts) {
            Ok((from, summary)) => (Some(from), Ok(summary)),
            Err((from, e)) => (from, Err(e)),
        };
        out.push(GitOutcome {
            report: o.report.to_owned(),
            from,
            result,
        });
    }
    if opts
        .report
        .as_ref()
        .is_none_or(|r| super::normalize_report(r) == super::normalize_report(COMPARES.0))
    {
        out.push(import_comparison(&repo, opts));
    }
    Ok(out)
}

/// The report with no raw data of its own, and the reports it compares (tr-spec §6).
const COMPARES: (&str, &[&str]) = ("TR112", &["TR109", "TR111"]);

/// TR112: the raw results of the reports it compares, each at the commit that holds them, into
/// one campaign.
fn import_comparison(repo: &Repo, opts: &GitImport) -> GitOutcome {
    let (report, deps) = COMPARES;
    let tree = |r: &str| -> Result<Source, ImportError> {
        let o = origin_of(r).ok_or_else(|| ImportError::Report {
            message: format!(
                "{report} depends on {r}, whose raw results are not in the original repository"
            ),
            help: format!("{report} compares {}", deps.join(" and ")),
        })?;
        let located = locate(repo, o)?;
        Ok(Source::Git(GitTree::open(
            repo,
            &located.commit,
            o.base,
            o.only,
        )?))
    };
    let result = super::resolve_manifest(report, None, &opts.experiments).and_then(|manifest| {
        super::import_dependent(
            &ImportOptions {
                source: repo.dir().to_path_buf(),
                manifest,
                data: opts.data.clone(),
                campaign: None,
            },
            &tree,
        )
    });
    GitOutcome {
        report: report.to_owned(),
        from: Some(format!("the raw results of {}", deps.join(" + "))),
        result,
    }
}

type Failed = (Option<String>, ImportError);

/// One report: its commit, its tree, its import.
fn import_one(
    repo: &Repo,
    o: &Origin,
    opts: &GitImport,
) -> Result<(String, ImportSummary), Failed> {
    let located = locate(repo, o).map_err(|e| (None, e))?;
    let from = format!("{} ({}):{}", short(&located.commit), located.how, o.base);
    let fail = |e| (Some(from.clone()), e);
    let manifest = super::resolve_manifest(o.report, None, &opts.experiments).map_err(fail)?;
    let tree = GitTree::open(repo, &located.commit, o.base, o.only).map_err(fail)?;
    let src = Source::Git(tree);
    let summary = super::import_from(
        &src,
        &ImportOptions {
            source: src.root().to_path_buf(),
            manifest,
            data: opts.data.clone(),
            campaign: None,
        },
    )
    .map_err(fail)?;
    Ok((from, summary))
}

/// The origin of report `r` (`TR114`, `tr114_v2`…), if the original repository holds its raw
/// results.
fn origin_of(r: &str) -> Option<&'static Origin> {
    let want = super::normalize_report(r);
    ORIGINS
        .iter()
        .find(|o| super::normalize_report(o.report) == want)
}

/// The commit of the clone that holds `o`'s raw results. A shallow clone whose HEAD holds a
/// few files of a report the original keeps only in its history is refused: the whole data are
/// in a commit the clone lacks, so no part of them is imported.
fn locate(repo: &Repo, o: &Origin) -> Result<Located, ImportError> {
    let located = repo
        .locate(o.base, o.only, o.markers)
        .map_err(|why| not_found(repo, o, &why))?;
    if located.how == "HEAD" && o.known != "HEAD" && repo.is_shallow() {
        return Err(not_found(repo, o, &NotFound::Shallow));
    }
    Ok(located)
}

/// The error of a report whose raw results no commit of the clone holds.
fn not_found(repo: &Repo, o: &Origin, why: &NotFound) -> ImportError {
    let known = match o.known.strip_suffix('^') {
        Some(sha) => format!("the parent of commit {} (`{}^`)", short(sha), sha),
        None => o.known.to_owned(),
    };
    match why {
        NotFound::Shallow => ImportError::Git {
            message: format!(
                "{} needs {known}, whose `{}` holds its raw results; `{}` is a shallow clone and lacks it",
                o.report,
                o.base,
                repo.dir().display()
            ),
            help: format!(
                "fetch the whole history: `git -C {} fetch --unshallow`, then import again",
                repo.dir().display()
            ),
        },
        NotFound::Absent => ImportError::Git {
            message: format!(
                "no commit of `{}` holds `{}` with raw results ({} needs {known} of the original repository)",
                repo.dir().display(),
                o.base,
                o.report
            ),
            help: "pass a full clone of the original repository".into(),
        },
    }
}

impl GitOutcome {
    /// One line: imported (runs, campaign) or failed (the first line of the reason).
    pub fn line(&self) -> String {
        let from = self.from.as_deref().unwrap_or("not found");
        match &self.result {
            Ok(s) => format!(
                "  {:<6} imported  {} runs into {} (from {from})",
                self.report, s.runs, s.campaign
            ),
            Err(e) => format!(
                "  {:<6} FAILED    {}",
                self.report,
                e.to_string().lines().next().unwrap_or_default()
            ),
        }
    }
}
