//! The layouts of the original raw data, and the report and manifest an import is for.

use std::path::{Path, PathBuf};

use super::error::ImportError;

/// The layouts of the original raw data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    H6,
    H6v1,
    Tr110,
    Tr111,
    Tr109,
    Tr108,
    /// TR115: H6 runs per runtime (`runtime-<name>/<config>/run_k/run_1/metrics.json`).
    Tr115,
    /// TR116: H6 Rust and H4 Python multi-agent runs, H5/H2 single-agent runs, per model.
    Tr116,
}

impl Layout {
    pub(crate) fn of_report(report: &str) -> Option<Layout> {
        let r = report.to_ascii_uppercase();
        let base = r.split('_').next().unwrap_or("");
        Some(match base {
            "TR108" => Layout::Tr108,
            "TR109" => Layout::Tr109,
            "TR110" => Layout::Tr110,
            "TR111" => Layout::Tr111,
            "TR113" => Layout::H6v1,
            "TR114" => Layout::H6,
            "TR115" => Layout::Tr115,
            "TR116" => Layout::Tr116,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Layout::H6 => "H6v2 Rust multi-agent (<scenario>/<testNNN>/run_k/metrics.json)",
            Layout::H6v1 => {
                "H6v1 Rust multi-agent, one persona call per agent (<config>/run_k/metrics.json)"
            }
            Layout::Tr110 => "H3 Python multi-agent (phase_N_test_NNN/run_k/metrics.json)",
            Layout::Tr111 => "H5 Rust single agent (<config>/data/metrics.json)",
            Layout::Tr109 => "H2 Python single agent (run_<config>/data/metrics.json)",
            Layout::Tr108 => "H1 TR108 CSVs (llama3/*.csv, gemma3/*.csv)",
            Layout::Tr115 => {
                "H6 Rust multi-agent per runtime (runtime-<name>/<config>/run_k/run_1/metrics.json)"
            }
            Layout::Tr116 => {
                "TR116 per language and model (multi/<language>/<model>/…/run_k/metrics.json, single/<language>/<model>/<config>/data/metrics.json)"
            }
        }
    }
}

/// A subfolder whose name suggests this report's data (e.g. `tr114_v2/` inside the
/// fixtures root), for the help line of a layout error.
pub(super) fn suggest_subfolder(source: &Path, report: &str) -> String {
    let want = normalize_report(report);
    let hit = std::fs::read_dir(source).ok().and_then(|rd| {
        rd.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| normalize_report(n) == want)
        })
    });
    match hit {
        Some(p) => format!("did you mean `{}`?", p.display()),
        None => format!(
            "pass the folder that holds {}'s raw files (the fixtures keep them in `{}`)",
            report,
            report.to_ascii_lowercase()
        ),
    }
}

/// `TR114_v2`, `tr114`, `TR114` → `tr114`.
pub fn normalize_report(report: &str) -> String {
    let r = report.trim().to_ascii_lowercase();
    match r.find("_v") {
        Some(i) if r[i + 2..].chars().all(|c| c.is_ascii_digit()) => r[..i].to_owned(),
        _ => r,
    }
}

/// The manifest of `--report` (`TR114`, `tr114`, `TR114_v2` → `<experiments>/tr114.yaml`), or
/// `manifest` when given; checks that the manifest declares that report.
pub fn resolve_manifest(
    report: &str,
    manifest: Option<&Path>,
    experiments: &Path,
) -> Result<PathBuf, ImportError> {
    let norm = normalize_report(report);
    let ok =
        norm.len() > 2 && norm.starts_with("tr") && norm[2..].chars().all(|c| c.is_ascii_digit());
    if !ok {
        return Err(ImportError::Report {
            message: format!("--report `{report}` is not a report id"),
            help: "give a report id such as TR114, tr114 or TR114_v2".into(),
        });
    }
    let path = match manifest {
        Some(p) => p.to_path_buf(),
        None => experiments.join(format!("{norm}.yaml")),
    };
    if !path.is_file() {
        return Err(ImportError::Report {
            message: format!("--report `{report}`: no manifest at `{}`", path.display()),
            help: "run from the repository root (where `experiments/` is), or pass --manifest PATH"
                .into(),
        });
    }
    let m = crate::manifest::load(&path).map_err(|e| ImportError::Manifest(e.into()))?;
    if normalize_report(&m.spec.report) != norm {
        return Err(ImportError::Report {
            message: format!(
                "--report `{report}`, but `{}` declares report `{}`",
                path.display(),
                m.spec.report
            ),
            help: "pass the manifest of that report with --manifest, or fix --report".into(),
        });
    }
    Ok(path)
}
