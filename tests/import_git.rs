//! `chimera import chimeraforge --git REPO`: the reports' raw results read straight from a git
//! repository (no checkout), at the commits that hold them. The repository is synthetic: the
//! fixtures committed at the original paths, then deleted as the original repository did
//! (`f399b15c`: TR110's folder; `970b0b91`: the bulky raw data), so its SHAs differ from the
//! original's and the commits must be found from the history. Git never reads the user's or
//! the system's configuration here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::import::{cell_rows, copy_dir, fixtures};
use crate::support::{Run, chimera_cmd, import_args, run_command, s, says};

/// The fixtures root, a temporary home and the [`original_like`] repository in it, or `None`
/// (with a skip message) when the fixtures or `git` are missing.
fn original_in_tmp(test: &str) -> Option<(PathBuf, tempfile::TempDir, PathBuf)> {
    let fx = fixtures(test)?;
    if Command::new("git").arg("--version").output().is_err() {
        return crate::import::skip(test, "no `git` on PATH");
    }
    let t = tempfile::tempdir().expect("tempdir");
    let repo = original_like(&fx, t.path());
    Some((fx, t, repo))
}

/// `git -C dir args` with no global or system configuration; panics unless it succeeds.
fn git(home: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=chimera tests",
            "-c",
            "user.email=tests@chimera.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
        .env("HOME", home)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The fixtures' folders and the paths the original repository kept them at.
const AT: &[(&str, &str)] = &[
    ("tr108/llama3", "outputs/reports/llama3"),
    ("tr108/gemma3", "outputs/reports/gemma3"),
    ("tr109", "benchmarks/python/chimera_sweep"),
    (
        "tr110",
        "src/python/banterhearts/demo_multiagent/comprehensive_test_results",
    ),
    ("tr111_v2", "data/research/tr109_rust_full"),
    ("tr114_v2", "data/research/tr110_rust_full"),
    (
        "tr115_v2",
        "experiments/TR115_runtime_optimization/results_v2",
    ),
    ("tr116", "experiments/TR116/results"),
];

/// A repository shaped like the original's history: the raw data added, TR110's folder
/// removed, the bulky raw data removed (TR116 keeps its summaries), then one more commit.
/// Returns the repository's folder.
fn original_like(fx: &Path, home: &Path) -> PathBuf {
    let repo = home.join("Chimeraforge");
    fs::create_dir_all(&repo).expect("mkdir");
    git(home, &repo, &["init", "-q"]);
    for (from, to) in AT {
        copy_dir(&fx.join(from), &repo.join(to));
    }
    // Stray files beside the data, as in the original TR108 and TR109 folders.
    fs::write(repo.join("outputs/reports/llama3/notes.txt"), "notes").expect("write");
    fs::write(
        repo.join("benchmarks/python/chimera_sweep/run_demo.py"),
        "pass\n",
    )
    .expect("write");
    git(home, &repo, &["add", "-A"]);
    git(
        home,
        &repo,
        &["commit", "-q", "-m", "data: add raw results"],
    );
    git(
        home,
        &repo,
        &[
            "rm",
            "-r",
            "-q",
            "src/python/banterhearts/demo_multiagent/comprehensive_test_results",
        ],
    );
    git(
        home,
        &repo,
        &["commit", "-q", "-m", "Clean stale docs and demo artifacts"],
    );
    for gone in [
        "data/research/tr109_rust_full",
        "data/research/tr110_rust_full",
        "experiments/TR115_runtime_optimization/results_v2",
    ] {
        git(home, &repo, &["rm", "-r", "-q", gone]);
    }
    git(
        home,
        &repo,
        &["rm", "-q", "experiments/TR116/results/**/metrics.json"],
    );
    git(
        home,
        &repo,
        &["commit", "-q", "-m", "Remove bulky benchmark artifacts"],
    );
    // One stray run file back at HEAD: the import must still read the commit that holds all
    // of TR114_v2's runs, not HEAD's single file.
    let stray = "data/research/tr110_rust_full/chimera-homo/test013/run_1/metrics.json";
    copy_dir(
        &fx.join("tr114_v2/chimera-homo/test013/run_1"),
        &repo.join("data/research/tr110_rust_full/chimera-homo/test013/run_1"),
    );
    assert!(repo.join(stray).is_file());
    fs::write(repo.join("README.md"), "Chimeraforge\n").expect("write");
    git(home, &repo, &["add", "README.md", stray]);
    git(home, &repo, &["commit", "-q", "-m", "docs: readme"]);
    repo
}

/// `chimera args` with git's configuration kept out.
fn chimera_git(home: &Path, args: &[&str]) -> Run {
    run_command(
        chimera_cmd(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
            .env("HOME", home),
    )
}

/// `chimera import chimeraforge --git repo --report report --data data`.
fn import_one(home: &Path, repo: &Path, report: &str, data: &Path) -> Run {
    chimera_git(home, &import_args(&["--git", s(repo)], report, s(data)))
}

/// `chimera analyze` of a campaign: what the verdicts say.
fn analyze(home: &Path, data: &Path, campaign: &str) -> String {
    let run = chimera_git(
        home,
        &[
            "analyze",
            "--data",
            &data.display().to_string(),
            "--campaign",
            campaign,
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // Everything but the line naming where the tables were written.
    run.stdout
        .lines()
        .filter(|l| !l.trim_start().starts_with("tables:"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn sorted_rows(campaign: &Path) -> Vec<crate::import::CellRow> {
    let mut rows = cell_rows(campaign);
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[test]
fn every_report_is_imported_from_the_commits_that_hold_it_like_the_folder_import() {
    let Some((fx, t, repo)) = original_in_tmp("git import") else {
        return;
    };
    let home = t.path();
    let data = home.join("data");
    let (repo_s, data_s) = (repo.display().to_string(), data.display().to_string());
    let run = chimera_git(
        home,
        &[
            "import",
            "chimeraforge",
            "--git",
            &repo_s,
            "--data",
            &data_s,
        ],
    );
    // TR113 is not in this repository: the run still succeeds.
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    let summary = &out[out.find("reports from").expect("a closing summary")..];
    for (report, runs, campaign, how) in [
        ("TR108", 150, "chimeraforge-tr108", "(HEAD)"),
        ("TR109", 18, "chimeraforge-tr109", "(HEAD)"),
        ("TR110", 150, "chimeraforge-tr110", "^):"),
        ("TR111", 57, "chimeraforge-tr111", "^):"),
        ("TR114", 135, "chimeraforge-tr114", "^):"),
        ("TR115", 30, "chimeraforge-tr115", "^):"),
        // TR116's folder survives at HEAD with summaries only: its runs come from 970b0b91^.
        ("TR116", 60, "chimeraforge-tr116", "^):"),
        // TR112 has no raw data of its own: TR109's (HEAD) and TR111_v2's (970b0b91^).
        ("TR112", 75, "chimeraforge-tr112", "TR109 + TR111"),
    ] {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(report))
            .unwrap_or_else(|| panic!("{report} in {summary}"));
        assert!(
            line.contains(&format!("imported  {runs} runs into {campaign}")),
            "{line}\n{out}"
        );
        assert!(line.contains(how), "{line}");
    }
    // TR113's raw results are not in this repository.
    says(
        summary,
        &[
            "TR113  FAILED    no commit of",
            "src/rust/demo_multiagent/Demo_rust_multiagent_results",
        ],
    );
    // The stray files beside the data are ignored and counted.
    says(
        out,
        &[
            "note: 1 file that is not data ignored (.txt 1)",
            "note: 1 file that is not data ignored (.py 1)",
        ],
    );

    // The same cells and verdicts as the folder import.
    let folder_data = home.join("folder-data");
    for (folder, manifest, campaign) in [
        ("tr114_v2", "tr114", "chimeraforge-tr114"),
        ("tr110", "tr110", "chimeraforge-tr110"),
    ] {
        let src = fx.join(folder);
        let run = chimera_git(home, &import_args(&[s(&src)], manifest, s(&folder_data)));
        assert_eq!(run.code, 0, "{}", run.stderr);
        let (git_rows, dir_rows) = (
            sorted_rows(&data.join(campaign)),
            sorted_rows(&folder_data.join(campaign)),
        );
        assert!(!git_rows.is_empty());
        assert_eq!(git_rows, dir_rows, "{campaign}");
        let verdicts = analyze(home, &data, campaign);
        assert_eq!(
            verdicts,
            analyze(home, &folder_data, campaign),
            "{campaign}"
        );
        if campaign == "chimeraforge-tr114" {
            assert!(
                verdicts
                    .contains("verdicts: 42 reproduced, 5 not reproduced, 0 not measured (of 47)"),
                "{verdicts}"
            );
        }
    }
    // TR114_v2's published overall mean efficiency reproduces from the git import.
    let rows = cell_rows(&data.join("chimeraforge-tr114"));
    let effs: Vec<f64> = rows.iter().filter_map(|r| r.3).collect();
    assert_eq!(effs.len(), 135);
    let mean = effs.iter().sum::<f64>() / effs.len() as f64;
    assert_eq!((mean * 1000.0).round() / 1000.0, 98.281);
    // The campaign records where the data came from: the commit and the folder.
    let info = fs::read_to_string(data.join("chimeraforge-tr114/campaign.json")).expect("read");
    says(
        &info,
        &[&format!("git {repo_s} "), ":data/research/tr110_rust_full"],
    );
}

#[test]
fn a_bare_clone_is_read_and_a_shallow_clone_says_which_commit_is_missing() {
    let Some((_, t, repo)) = original_in_tmp("git clones") else {
        return;
    };
    let home = t.path();
    let url = format!("file://{}", repo.display());

    // A bare clone: TR110, from the parent of the commit that removed its folder.
    let bare = home.join("bare.git");
    git(
        home,
        home,
        &["clone", "-q", "--bare", &url, &bare.display().to_string()],
    );
    let data = home.join("data");
    let run = import_one(home, &bare, "TR110", &data);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    says(&run.stdout, &["imported  150 runs into chimeraforge-tr110"]);

    // A shallow clone lacks the commit: the error names it and says how to fetch it.
    let shallow = home.join("shallow");
    git(
        home,
        home,
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &url,
            &shallow.display().to_string(),
        ],
    );
    let run = import_one(home, &shallow, "tr114_v2", &data);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    says(
        &format!("{}{}", run.stdout, run.stderr),
        &[
            "TR114 needs the parent of commit 970b0b91 (`970b0b915e64ac7f4506b667748bdd368454e084^`)",
            "is a shallow clone and lacks it",
            "fetch --unshallow",
            "no report was imported",
        ],
    );
}
