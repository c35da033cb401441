//! The commands that read or fill a campaign store: `status`, `compact`, `analyze`, `report`
//! and `import`.

use crate::cli::{
    AnalyzeArgs, CompactArgs, ImportArgs, ImportSource, ReportArgs, ReportFormat, StatusArgs,
};
use crate::error::Error;
use crate::{analysis, import, report, store, table};

use super::with_stdout;

/// `chimera status`: a campaign's progress, failures and what a resume would do.
pub(super) fn status(args: &StatusArgs) -> Result<(), Error> {
    let s = &args.select;
    let (text, remaining) = store::status(&s.data, s.campaign.as_deref(), args.verify)?;
    with_stdout(|out| out.write_all(text.as_bytes()).map_err(Error::Output))?;
    if args.require_complete && remaining > 0 {
        return Err(Error::Incomplete { remaining });
    }
    Ok(())
}

/// The campaign `--campaign` names, or the only one of the data directory.
pub(super) fn only_campaign(
    data: &std::path::Path,
    campaign: Option<&str>,
) -> Result<String, Error> {
    if let Some(n) = campaign {
        return Ok(n.to_owned());
    }
    match store::campaigns(data).as_slice() {
        [one] => Ok(one.clone()),
        other => Err(Error::Status(store::StatusError::Choose(format!(
            "`{}` holds {} campaign(s){}\n  = help: pick one with --campaign NAME",
            data.display(),
            other.len(),
            if other.is_empty() {
                String::new()
            } else {
                format!(": {}", other.join(", "))
            }
        )))),
    }
}

/// `chimera compact`: the hive-partitioned `tables/` of one campaign.
pub(super) fn compact(args: &CompactArgs) -> Result<(), Error> {
    let s = &args.select;
    let name = only_campaign(&s.data, s.campaign.as_deref())?;
    let dir = s.data.join(&name);
    let summary = table::compact(&dir).map_err(Error::Table)?;
    with_stdout(|out| {
        writeln!(
            out,
            "compacted {} cell(s) of {} report(s) into {}",
            summary.cell_dirs,
            summary.reports.len(),
            dir.join("tables").display()
        )
        .map_err(Error::Output)?;
        for (t, n) in &summary.rows {
            writeln!(out, "  {t:<10} {n} row(s)").map_err(Error::Output)?;
        }
        Ok(())
    })
}

/// The analyses of the campaigns and reports `s` selects.
fn analyze_selected(
    s: &crate::cli::DatasetSelect,
) -> Result<Vec<(std::path::PathBuf, analysis::model::Analysis)>, Error> {
    Ok(analysis::analyze_with(
        &s.data,
        s.campaign.as_deref(),
        s.report.as_deref(),
        analysis::AnalyzeOptions {
            include_suspect: s.include_suspect,
        },
    )?)
}

/// `chimera analyze`: statistics and verdicts, written beside each campaign and printed.
pub(super) fn analyze(args: &AnalyzeArgs) -> Result<(), Error> {
    let done = analyze_selected(&args.select)?;
    with_stdout(|out| {
        for (dir, a) in &done {
            let t0 = std::time::Instant::now();
            let files = analysis::write_outputs(dir, a)?;
            tracing::debug!("analysis: write done after {:?}", t0.elapsed());
            out.write_all(analysis::render::text(a, args.verbose).as_bytes())
                .map_err(Error::Output)?;
            writeln!(
                out,
                "  tables: {}",
                files[0].parent().unwrap_or(dir).display()
            )
            .map_err(Error::Output)?;
        }
        Ok(())
    })
}

/// `chimera report`: Markdown reports with charts; prints the path of each.
pub(super) fn report(args: &ReportArgs) -> Result<(), Error> {
    let done = analyze_selected(&args.select)?;
    let several = done.len() > 1;
    with_stdout(|out| {
        for (dir, a) in &done {
            analysis::write_outputs(dir, a)?;
            let out_dir = match &args.out {
                Some(o) if several => o.join(&a.campaign),
                Some(o) => o.clone(),
                None => dir.join("report"),
            };
            let formats = report::Formats {
                markdown: args.format.contains(&ReportFormat::Markdown),
                html: args.format.contains(&ReportFormat::Html),
            };
            for w in report::write_reports_as(a, &out_dir, formats).map_err(Error::Report)? {
                for f in w.files() {
                    writeln!(out, "{}", f.display()).map_err(Error::Output)?;
                }
            }
        }
        Ok(())
    })
}

/// `chimera import`: the original reports' raw results into a campaign.
pub(super) fn import(args: ImportArgs) -> Result<(), Error> {
    let ImportSource::Chimeraforge(a) = args.source;
    let experiments = std::path::Path::new("experiments");
    if let Some(repo) = a.git {
        return import_git(import::GitImport {
            repo,
            data: a.store.data,
            experiments: experiments.to_path_buf(),
            report: a.report,
        });
    }
    let from = parse_from(&a.from)?;
    let dir = a.dir.unwrap_or_default();
    let mut text = String::new();
    let report = match a.report {
        Some(r) => r,
        None if !from.is_empty() => {
            return Err(import::ImportError::Report {
                message: "--from names the reports a comparison report depends on, but no --report says which one".into(),
                help: "add --report TR112".into(),
            }
            .into());
        }
        None => {
            let (report, pattern) = import::detect_report(&dir)?;
            text.push_str(&format!(
                "report {report} recognised from the layout ({pattern})\n"
            ));
            report
        }
    };
    let manifest = import::resolve_manifest(&report, a.manifest.as_deref(), experiments)?;
    let summary = import::import_chimeraforge_from(
        &import::ImportOptions {
            source: dir,
            manifest,
            data: a.store.data,
            campaign: a.campaign,
        },
        &from,
    )?;
    text.push_str(&summary.render());
    with_stdout(|out| out.write_all(text.as_bytes()).map_err(Error::Output))
}

/// `--from REPORT=DIR` arguments as (report, folder) pairs.
fn parse_from(args: &[String]) -> Result<Vec<(String, std::path::PathBuf)>, Error> {
    let mut from = Vec::with_capacity(args.len());
    for f in args {
        let Some((r, d)) = f
            .split_once('=')
            .filter(|(r, d)| !r.is_empty() && !d.is_empty())
        else {
            return Err(import::ImportError::Report {
                message: format!("--from `{f}` is not REPORT=DIR"),
                help: "write e.g. --from TR109=fixtures/tr109".into(),
            }
            .into());
        };
        from.push((r.to_owned(), std::path::PathBuf::from(d)));
    }
    Ok(from)
}

/// `chimera import chimeraforge --git REPO`: every report, one campaign each; fails only when
/// none imported.
fn import_git(opts: import::GitImport) -> Result<(), Error> {
    let outcomes = import::import_git(&opts)?;
    let mut text = String::new();
    for o in &outcomes {
        match &o.result {
            Ok(s) => {
                text.push_str(&format!(
                    "== {} from {}\n",
                    o.report,
                    o.from.as_deref().unwrap_or_default()
                ));
                text.push_str(&s.render());
            }
            Err(e) => text.push_str(&format!("== {} FAILED\n{e}\n", o.report)),
        }
        text.push('\n');
    }
    text.push_str(&format!("reports from `{}`:\n", opts.repo.display()));
    for o in &outcomes {
        text.push_str(&o.line());
        text.push('\n');
    }
    with_stdout(|out| out.write_all(text.as_bytes()).map_err(Error::Output))?;
    if outcomes.iter().any(|o| o.result.is_ok()) {
        return Ok(());
    }
    Err(import::ImportError::Git {
        message: format!("no report was imported from `{}`", opts.repo.display()),
        help: "see each report's reason above".into(),
    }
    .into())
}

/// A campaign directory given as a path, or as a name under `data`.
fn campaign_dir(data: &std::path::Path, given: &str) -> std::path::PathBuf {
    let p = std::path::PathBuf::from(given);
    if p.join("campaign.json").is_file() {
        p
    } else {
        data.join(given)
    }
}

/// `chimera compare A B`.
pub(super) fn compare(args: &crate::cli::CompareArgs) -> Result<(), Error> {
    let a = analysis::load_campaign(&campaign_dir(&args.data, &args.a))?;
    let b = analysis::load_campaign(&campaign_dir(&args.data, &args.b))?;
    let c = analysis::ab::compare(&a, &b)?;
    with_stdout(|out| {
        let text = match args.format {
            crate::cli::CompareFormat::Text => crate::report::ab::text(&c),
            crate::cli::CompareFormat::Markdown => crate::report::ab::markdown(&c),
            crate::cli::CompareFormat::Json => {
                let mut j = serde_json::to_string_pretty(&c).unwrap_or_default();
                j.push('\n');
                j
            }
        };
        out.write_all(text.as_bytes()).map_err(Error::Output)
    })?;
    if let Some(threshold) = args.fail_if_slower {
        let worse: Vec<String> = c
            .rows
            .iter()
            .filter(|r| r.metric.is_speed() && r.verdict == analysis::ab::AbVerdict::Slower)
            .filter_map(|r| r.slowdown_pct().filter(|p| *p > threshold).map(|p| (r, p)))
            .map(|(r, p)| format!("{} {} {p:.1} %", r.b, r.metric.name()))
            .collect();
        if !worse.is_empty() {
            return Err(Error::Regression {
                threshold,
                what: worse.join(", "),
            });
        }
    }
    Ok(())
}
