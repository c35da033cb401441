//! Which report a folder of raw results is, from its layout (and, where two harnesses wrote
//! the same paths, a peek at one file): `chimera import chimeraforge DIR` without `--report`.
//!
//! One [`Detector`] per layout, in [`DETECTORS`]: a new layout plugs in by adding one entry.
//! A detector claims the run files of its layout; the source is that report when exactly one
//! detector claims files. Two detectors claiming the same files is ambiguous (the error names
//! both and asks for `--report`); two claiming different files is a folder mixing two
//! layouts, refused with both named; none is an unknown layout (expected vs found).

use std::collections::BTreeSet;

use super::error::ImportError;
use super::source::Source;

/// What a detector sees.
pub(crate) struct Seen<'a> {
    /// Every file's path components below the source (hidden entries left out), sorted.
    pub(crate) files: &'a [Vec<String>],
    /// The bytes of `files[i]` (`None` when it cannot be read).
    pub(crate) peek: &'a dyn Fn(usize) -> Option<Vec<u8>>,
}

/// One layout's detector.
pub(crate) struct Detector {
    /// The report id it stands for (the manifest is `experiments/<trNNN>.yaml`).
    pub(crate) report: &'static str,
    /// The layout, as the errors show it.
    pub(crate) pattern: &'static str,
    /// The indices of the files of this layout in `Seen::files` (empty: not this layout).
    pub(crate) claim: fn(&Seen) -> Vec<usize>,
}

/// Every layout the importer knows (detection only names the report; `Layout::of_report` maps
/// it to its reader).
pub(crate) const DETECTORS: &[Detector] = &[
    Detector {
        report: "TR108",
        pattern: "`llama3/*.csv`, `gemma3/*.csv`",
        claim: tr108,
    },
    Detector {
        report: "TR109",
        pattern: "`run_<config>/data/metrics.json` (Python)",
        claim: tr109,
    },
    Detector {
        report: "TR110",
        pattern: "`phase_N_test_NNN/run_k/metrics.json`",
        claim: tr110,
    },
    Detector {
        report: "TR111",
        pattern: "`<config>/data/metrics.json` (Rust: `\"language\": \"rust\"`)",
        claim: tr111,
    },
    Detector {
        report: "TR113",
        pattern: "`bvc_gpu…/`, `homo_gpu…/`, `hetero_het_…/`, `baseline_gpu…/` holding `run_1/metrics.json` only",
        claim: tr113,
    },
    Detector {
        report: "TR114",
        pattern: "`<scenario>/<testNNN>/run_k/metrics.json`",
        claim: tr114,
    },
    Detector {
        report: "TR115",
        pattern: "`runtime-<name>/<config>/run_k/run_1/metrics.json`",
        claim: tr115,
    },
    Detector {
        report: "TR116",
        pattern: "`multi/` and `single/` holding `rust/` and `python/`",
        claim: tr116,
    },
];

/// Indices of the files whose components satisfy `f`.
fn claim_where(seen: &Seen, f: impl Fn(&[String]) -> bool) -> Vec<usize> {
    (0..seen.files.len())
        .filter(|&i| f(&seen.files[i]))
        .collect()
}

/// `run_<k>` with a number k.
fn run_k(s: &str) -> bool {
    s.strip_prefix("run_")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// `<prefix><digits>`.
fn numbered(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn tr108(seen: &Seen) -> Vec<usize> {
    claim_where(seen, |c| match c {
        [d, f] => (d == "llama3" || d == "gemma3") && f.to_ascii_lowercase().ends_with(".csv"),
        _ => false,
    })
}

fn tr109(seen: &Seen) -> Vec<usize> {
    claim_where(
        seen,
        |c| matches!(c, [f, d, m] if f.starts_with("run_") && !run_k(f) && d == "data" && m == "metrics.json"),
    )
}

fn tr110(seen: &Seen) -> Vec<usize> {
    let phase_test = |t: &str| {
        t.strip_prefix("phase_")
            .and_then(|r| r.split_once("_test_"))
            .is_some_and(|(p, n)| numbered(p, "") && numbered(n, ""))
    };
    claim_where(
        seen,
        |c| matches!(c, [t, r, m] if phase_test(t) && run_k(r) && m == "metrics.json"),
    )
}

fn tr111(seen: &Seen) -> Vec<usize> {
    let files = claim_where(
        seen,
        |c| matches!(c, [_, d, m] if d == "data" && m == "metrics.json"),
    );
    // TR109's Python files and TR111's Rust files share the path: the Rust harness wrote an
    // object with `"language": "rust"` (the Python one a list of runs). A few files are
    // looked at, so that one damaged file does not hide the layout.
    let rust = files.iter().take(3).any(|&i| {
        (seen.peek)(i).is_some_and(|b| {
            serde_json::from_slice::<serde_json::Value>(&b)
                .is_ok_and(|v| v.get("language").and_then(|l| l.as_str()) == Some("rust"))
        })
    });
    if rust { files } else { Vec::new() }
}

fn tr113(seen: &Seen) -> Vec<usize> {
    let config = |s: &str| {
        ["bvc_gpu", "homo_gpu", "hetero_het_", "baseline_gpu"]
            .iter()
            .any(|p| s.starts_with(p))
    };
    let runs = claim_where(
        seen,
        |c| matches!(c, [f, r, m] if config(f) && run_k(r) && m == "metrics.json"),
    );
    // TR113 ran each configuration once: a `run_2` is another harness's.
    if runs.iter().all(|&i| seen.files[i][1] == "run_1") {
        runs
    } else {
        Vec::new()
    }
}

fn tr114(seen: &Seen) -> Vec<usize> {
    claim_where(
        seen,
        |c| matches!(c, [_, t, r, m] if numbered(t, "test") && run_k(r) && m == "metrics.json"),
    )
}

fn tr115(seen: &Seen) -> Vec<usize> {
    claim_where(seen, |c| match c {
        [rt, _, r, r1, m] => {
            rt.starts_with("runtime-") && run_k(r) && r1 == "run_1" && m == "metrics.json"
        }
        _ => false,
    })
}

fn tr116(seen: &Seen) -> Vec<usize> {
    claim_where(seen, |c| match c {
        [mode, lang, .., m] if c.len() >= 4 => {
            (mode == "multi" || mode == "single")
                && (lang == "rust" || lang == "python")
                && m == "metrics.json"
        }
        _ => false,
    })
}

/// A few example paths of the claimed files, for messages.
fn examples(seen: &Seen, claimed: &[usize]) -> String {
    let ex: Vec<String> = claimed
        .iter()
        .take(2)
        .map(|&i| format!("`{}`", seen.files[i].join("/")))
        .collect();
    format!(
        "{} file{}, e.g. {}",
        claimed.len(),
        if claimed.len() == 1 { "" } else { "s" },
        ex.join(", ")
    )
}

/// The detectors that claim files of `seen`, with their claims.
pub(crate) fn matches<'d>(seen: &Seen) -> Vec<(&'d Detector, Vec<usize>)> {
    DETECTORS
        .iter()
        .map(|d| (d, (d.claim)(seen)))
        .filter(|(_, c)| !c.is_empty())
        .collect()
}

/// The report whose raw results `src` holds (see the module docs).
pub(crate) fn detect(src: &Source) -> Result<&'static Detector, ImportError> {
    let mut hidden = 0;
    let paths = src.list(&mut hidden)?;
    let root = src.root();
    let files: Vec<Vec<String>> = paths
        .iter()
        .map(|p| super::walk::components(root, p))
        .collect();
    let peek = |i: usize| src.read(&paths[i]).ok();
    let seen = Seen {
        files: &files,
        peek: &peek,
    };
    let found = matches(&seen);
    let names = |ds: &[&(&Detector, Vec<usize>)]| {
        ds.iter()
            .map(|(d, c)| format!("{} ({}: {})", d.report, d.pattern, examples(&seen, c)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match found.as_slice() {
        [(d, _)] => Ok(d),
        [] => Err(ImportError::Undetected {
            dir: root.to_path_buf(),
            message: "does not look like the raw data of any report".into(),
            expected: DETECTORS
                .iter()
                .map(|d| format!("{} {}", d.report, d.pattern))
                .collect::<Vec<_>>()
                .join("; "),
            found: src.top_level(),
            help: "point at one report's raw-data folder (e.g. `tr114_v2/`), or pass --report to be told what that report's layout looks like".into(),
        }),
        all => {
            let sets: Vec<BTreeSet<usize>> =
                all.iter().map(|(_, c)| c.iter().copied().collect()).collect();
            let disjoint = sets
                .iter()
                .enumerate()
                .all(|(i, a)| sets[i + 1..].iter().all(|b| a.is_disjoint(b)));
            let refs: Vec<&(&Detector, Vec<usize>)> = all.iter().collect();
            let reports: Vec<&str> = all.iter().map(|(d, _)| d.report).collect();
            if disjoint {
                Err(ImportError::Undetected {
                    dir: root.to_path_buf(),
                    message: format!("mixes the layouts of {}", reports.join(" and ")),
                    expected: "one report's raw data per folder".into(),
                    found: names(&refs),
                    help: "import each report's folder on its own (move the other files out)"
                        .into(),
                })
            } else {
                Err(ImportError::Undetected {
                    dir: root.to_path_buf(),
                    message: format!(
                        "could be the raw data of {} (the layouts are alike)",
                        reports.join(" or ")
                    ),
                    expected: "one report".into(),
                    found: names(&refs),
                    help: format!(
                        "pass --report (one of {}) to say which",
                        reports.join(", ")
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One folder per report: its files, and the bytes a peek at each gives.
    const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
        (
            "TR108",
            &[
                ("llama3/ollama_quant_bench.csv", ""),
                ("gemma3/gemma3_baseline.csv", ""),
            ],
        ),
        (
            "TR109",
            &[("run_gpu60_ctx512_temp0p6/data/metrics.json", "[]")],
        ),
        (
            "TR110",
            &[
                ("phase_1_test_001/run_1/metrics.json", "{}"),
                ("test_execution_log.json", "{}"),
            ],
        ),
        (
            "TR111",
            &[(
                "baseline_default/data/metrics.json",
                r#"{"language": "rust"}"#,
            )],
        ),
        (
            "TR113",
            &[
                ("bvc_gpu80_ctx512_temp0p8/run_1/metrics.json", "{}"),
                (
                    "hetero_het_g60c512t06__g120c1024t08/run_1/metrics.json",
                    "{}",
                ),
            ],
        ),
        (
            "TR114",
            &[("chimera-homo/test108/run_1/metrics.json", "{}")],
        ),
        (
            "TR115",
            &[(
                "runtime-smol/chimera_homo_gpu80_ctx512/run_1/run_1/metrics.json",
                "{}",
            )],
        ),
        (
            "TR116",
            &[
                (
                    "multi/rust/gemma3_latest/chimera-homo_gpu80_ctx512_temp08/run_1/metrics.json",
                    "{}",
                ),
                (
                    "single/python/gemma3_latest/gpu60_ctx512_temp08/data/metrics.json",
                    "[]",
                ),
            ],
        ),
    ];

    fn reports_of(files: &[(&str, &str)]) -> Vec<&'static str> {
        let comps: Vec<Vec<String>> = files
            .iter()
            .map(|(p, _)| p.split('/').map(str::to_owned).collect())
            .collect();
        let peek = |i: usize| Some(files[i].1.as_bytes().to_vec());
        let seen = Seen {
            files: &comps,
            peek: &peek,
        };
        matches(&seen).iter().map(|(d, _)| d.report).collect()
    }

    #[test]
    fn every_detector_has_an_example_that_only_it_claims() {
        for d in DETECTORS {
            let (_, files) = EXAMPLES
                .iter()
                .find(|(r, _)| *r == d.report)
                .unwrap_or_else(|| panic!("add an example folder of {} to EXAMPLES", d.report));
            assert_eq!(reports_of(files), [d.report], "{files:?}");
        }
    }

    #[test]
    fn python_files_at_the_rust_path_are_not_tr111() {
        assert!(reports_of(&[("gpu60_ctx512_temp08/data/metrics.json", "[]")]).is_empty());
    }
}
