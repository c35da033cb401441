//! The HTML report in a real browser: headless Chromium (Debian's `chromium`), driven by
//! Playwright from `tests/browser/check_report.py`, opens the pages `chimera report --format
//! html` writes for an emulator campaign, and pages of the report fixtures that hold every
//! kind of chart (GPU telemetry included), with every network request refused. It checks
//! that every chart renders with a non-empty box and fits its canvas, that hovering a point
//! shows its value, that a table sorts when its header is clicked, and that the page logs no
//! console error; it saves a screenshot of each page under `target/test-output/browser/`.
//!
//! The browser and Playwright are not Rust dependencies: `make browser-deps` installs
//! Playwright (pinned, `tests/browser/requirements.txt`) into `tests/browser/.venv`, and
//! `.ci/run` installs `chromium` with apt, runs it, and sets
//! `CHIMERA_REQUIRE_BROWSER_TESTS=1`, which turns a missing browser into a failure. Without
//! it the test says what is missing and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use chimera::report::{Formats, write_reports_as};

use crate::shards::{chimera_in, manifest};
use crate::support::{root, run_command};

/// The Python with Playwright and the browser, or why the test cannot run.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let python = std::env::var_os("CHIMERA_BROWSER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/browser/.venv/bin/python"));
    let chromium = std::env::var_os("CHIMERA_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !python.exists() {
        return Err(format!(
            "{} is missing: run `make browser-deps` (Playwright in a venv)",
            python.display()
        ));
    }
    if !chromium.exists() {
        return Err(format!(
            "{} is missing: install Debian's `chromium` (apt-get install chromium), or set CHIMERA_CHROMIUM",
            chromium.display()
        ));
    }
    Ok((python, chromium))
}

/// Where the screenshots go: kept after the test, for a person to look at.
fn output_dir() -> PathBuf {
    let dir = root().join("target/test-output/browser");
    std::fs::create_dir_all(&dir).expect("output directory");
    dir
}

/// An emulator campaign (the shard fixture, one process) reported as HTML by the CLI.
fn campaign_page(dir: &Path) -> PathBuf {
    let m = manifest();
    let m = m.to_str().expect("utf-8");
    let run = [
        "run",
        m,
        "--data",
        "data",
        "--campaign",
        "html",
        "--no-cache",
        "--port-offset",
        "5300",
    ];
    let out = run_command(&mut chimera_in(dir, &run));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = [
        "report",
        "--data",
        "data",
        "--campaign",
        "html",
        "--format",
        "html",
        "--out",
        "html-report",
    ];
    let out = run_command(&mut chimera_in(dir, &report));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pages: Vec<PathBuf> = out.stdout.lines().map(|l| dir.join(l.trim())).collect();
    assert_eq!(pages.len(), 1, "one page: {}", out.stdout);
    assert!(pages[0].extension().is_some_and(|e| e == "html"));
    assert!(
        !dir.join("html-report/figures").exists(),
        "HTML alone needs no figures"
    );
    pages[0].clone()
}

#[test]
fn html_reports_render_in_headless_chromium() {
    let (python, chromium) = match tools() {
        Ok(t) => t,
        Err(why) if std::env::var("CHIMERA_REQUIRE_BROWSER_TESTS").is_ok_and(|v| v == "1") => {
            panic!("CHIMERA_REQUIRE_BROWSER_TESTS=1 but {why}")
        }
        Err(why) => {
            eprintln!("browser test skipped: {why}");
            return;
        }
    };
    let t = tempfile::tempdir().expect("tempdir");
    let mut pages = vec![campaign_page(t.path())];
    // The fixtures: an emulator report with GPU telemetry, an imported one, one on CPU.
    for (name, a) in [
        ("emulator", crate::report::emulator()),
        ("imported", crate::report::imported()),
        ("cpu", crate::report::cpu()),
    ] {
        let dir = t.path().join(name);
        let html = Formats {
            markdown: false,
            html: true,
        };
        let written = write_reports_as(&a, &dir, html).expect("write");
        pages.extend(written.into_iter().filter_map(|w| w.html));
    }
    let out_dir = output_dir();
    let mut cmd = Command::new(&python);
    cmd.arg(root().join("tests/browser/check_report.py"))
        .arg(&out_dir)
        .args(&pages)
        .env("CHIMERA_CHROMIUM", &chromium);
    let out = run_command(&mut cmd);
    let results: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        (out.code, results.len()),
        (0, pages.len()),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let mut gpu_charts = 0;
    for r in &results {
        assert_eq!(r["failures"], serde_json::json!([]), "{r}");
        assert!(r["charts"].as_u64().expect("charts") >= 1, "{r}");
        assert_eq!(
            r["hovered"], r["charts"],
            "every chart has a point to hover: {r}"
        );
        let shot = PathBuf::from(r["screenshot"].as_str().expect("screenshot"));
        let size = std::fs::metadata(&shot).expect("screenshot written").len();
        assert!(size > 10_000, "{}: {size} bytes", shot.display());
        gpu_charts += usize::from(r["charts"].as_u64() == Some(4));
    }
    assert!(gpu_charts >= 1, "the GPU telemetry charts were checked too");
    // Some page had a numeric table column to sort.
    assert!(results.iter().any(|r| r["sorted"] == true), "{results:?}");

    // The checker fails a page that logs an error, fetches from the network, and draws
    // outside its canvas.
    let good = std::fs::read_to_string(&pages[0]).expect("page");
    let (head, tail) = good.split_once("viewBox=\"").expect("a chart");
    // (Without its security policy, which would stop the script and the image itself.)
    let policy = good
        .lines()
        .find(|l| l.contains("Content-Security-Policy"))
        .expect("a policy");
    let broken = format!("{head}viewBox=\"0 0 50 50\" data-x=\"{tail}")
        .replace(policy, "")
        .replacen(
            "<main>",
            "<main><script>console.error('broken on purpose');</script><img src=\"http://192.0.2.1/x.png\" alt=\"\">",
            1,
        );
    let bad_page = t.path().join("broken.html");
    std::fs::write(&bad_page, broken).expect("write");
    let mut cmd = Command::new(&python);
    cmd.arg(root().join("tests/browser/check_report.py"))
        .arg(t.path().join("shots"))
        .arg(&bad_page)
        .env("CHIMERA_CHROMIUM", &chromium);
    let out = run_command(&mut cmd);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    for says in [
        "broken on purpose",
        "outside the canvas",
        "the page requested ['http://192.0.2.1/x.png']",
    ] {
        assert!(out.stdout.contains(says), "{says}: {}", out.stdout);
    }
}
