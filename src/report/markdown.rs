//! The Markdown of one report, in the shape of the original technical reports, but with its
//! origin stated first, both efficiency definitions side by side, and a verdict per published
//! number. Every number is formatted from the analysis; none is typed in.

use std::fmt::Write as _;

use crate::analysis::model::{
    Analysis, Comparison, ConfigRow, Level, Origin, ReportAnalysis, Stat, SummaryRow, Verdict,
    VerdictKind,
};

use super::charts::Figure;
use super::effects;
use super::format::{
    DASH, cell, code, fixed, inline, metric_decimals, opt, opt_signed, p_value, signed, trimmed,
    unit_decimals, with_unit, written_decimals,
};

/// Decimals of percentages (efficiencies).
const PCT: usize = 3;
/// Decimals of tok/s.
const TOK_S: usize = 2;
/// Decimals of milliseconds.
const MS: usize = 1;
/// Decimals of speedups and tokens per joule.
const RATIO: usize = 3;

/// A Markdown table whose optional columns are dropped when every cell is empty.
struct Table {
    headers: Vec<(String, bool, bool)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns as (header, right-aligned, optional).
    fn new(headers: &[(&str, bool, bool)]) -> Self {
        Table {
            headers: headers
                .iter()
                .map(|(h, r, o)| ((*h).to_owned(), *r, *o))
                .collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let keep: Vec<usize> = (0..self.headers.len())
            .filter(|&i| {
                !self.headers[i].2
                    || self
                        .rows
                        .iter()
                        .any(|r| r.get(i).is_some_and(|c| !c.is_empty() && c != DASH))
            })
            .collect();
        let mut out = String::new();
        out.push('|');
        for &i in &keep {
            let _ = write!(out, " {} |", cell(&self.headers[i].0));
        }
        out.push_str("\n|");
        for &i in &keep {
            out.push_str(if self.headers[i].1 { "---:|" } else { "---|" });
        }
        out.push('\n');
        for r in &self.rows {
            out.push('|');
            for &i in &keep {
                let c = r.get(i).map_or(DASH, String::as_str);
                let _ = write!(out, " {} |", cell(c));
            }
            out.push('\n');
        }
        out
    }
}

/// A mean with the half-width of its CI: "98.281 ± 1.158" (the Student-t CI is symmetric).
fn stat(s: Option<&Stat>, dec: usize) -> String {
    match s {
        None => DASH.to_owned(),
        Some(s) if !s.mean.is_finite() => DASH.to_owned(),
        Some(s) => match s.ci95 {
            Some((lo, hi)) if lo.is_finite() && hi.is_finite() => {
                format!("{} ± {}", fixed(s.mean, dec), fixed((hi - lo) / 2.0, dec))
            }
            _ => fixed(s.mean, dec),
        },
    }
}

/// A CI as "[lo, hi]".
fn ci(c: Option<(f64, f64)>, dec: usize) -> String {
    c.map_or_else(
        || DASH.to_owned(),
        |(lo, hi)| format!("[{}, {}]", fixed(lo, dec), fixed(hi, dec)),
    )
}

/// Per-agent means: "A 102.35; B 101.20".
fn per_agent(m: &std::collections::BTreeMap<String, Stat>, dec: usize) -> String {
    if m.is_empty() {
        return DASH.to_owned();
    }
    m.iter()
        .map(|(a, s)| format!("{a} {}", fixed(s.mean, dec)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A list of items as inline code, joined with commas ("none" when empty).
fn code_list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.iter().map(|s| code(s)).collect::<Vec<_>>().join(", ")
    }
}

/// "1 run" / "2 runs".
fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The statement of where the numbers come from.
fn origin_statement(r: &ReportAnalysis) -> String {
    let mut s = match &r.origin {
        Origin::Imported {
            format,
            source,
            layout,
            files,
            runs,
            ..
        } => format!(
            "These numbers were not measured by chimera: they were imported from the original raw results ({}, {} files, {} runs, from {}). Importer: {}.",
            inline(layout),
            files,
            runs,
            code(source),
            code(format)
        ),
        Origin::Emulator => "These numbers come from chimera's emulator, a test instrument that serves a fixed token schedule. They are not LLM measurements and say nothing about any model or GPU.".to_owned(),
        Origin::Measured { server_kinds } => {
            let kinds = if server_kinds.is_empty() {
                "servers of an unrecorded kind".to_owned()
            } else {
                format!("{} server(s)", code_list(server_kinds))
            };
            format!("These numbers were measured by chimera against real {kinds}.")
        }
    };
    if matches!(r.origin, Origin::Measured { .. }) {
        if r.provenance.is_empty() {
            s.push_str(" No endpoint provenance was recorded, so the hardware is unknown.");
        } else if r.provenance.iter().all(|p| p.gpu_name.is_none()) {
            let mut models: Vec<String> = Vec::new();
            for m in r.provenance.iter().filter_map(|p| p.model_tag.as_ref()) {
                if !models.contains(m) {
                    models.push(m.clone());
                }
            }
            if models.is_empty() {
                models = r.method.models.clone();
            }
            let _ = write!(
                s,
                " No endpoint reported a GPU: this campaign ran on CPU, with the model(s) {}. Its timings are CPU timings and cannot be compared with the GPU results of the original report.",
                code_list(&models)
            );
        }
    }
    s
}

/// The verdict counts: (reproduced, not reproduced, not measured).
fn verdict_counts(v: &[Verdict]) -> (usize, usize, usize) {
    let count = |k: VerdictKind| v.iter().filter(|x| x.verdict == k).count();
    (
        count(VerdictKind::Reproduced),
        count(VerdictKind::NotReproduced),
        count(VerdictKind::NotMeasured),
    )
}

/// The line that counts the verdicts.
fn verdict_line(v: &[Verdict]) -> String {
    let (ok, bad, none) = verdict_counts(v);
    let contradicted = v.iter().filter(|x| x.contradicted_by_own_data).count();
    let own = if contradicted > 0 {
        format!(" ({contradicted} of those contradicted by the report's own raw data)")
    } else {
        String::new()
    };
    let few = v
        .iter()
        .filter(|x| x.verdict == VerdictKind::Inconclusive)
        .count();
    let few = if few > 0 {
        format!(", {few} too few runs to tell")
    } else {
        String::new()
    };
    format!(
        "{ok} reproduced, {bad} not reproduced{own}{few}, {none} not measured of {} published {}.",
        v.len(),
        if v.len() == 1 { "number" } else { "numbers" }
    )
}

/// The report's Markdown; figures are linked as `figures_dir/<file>`.
pub(crate) fn render(
    a: &Analysis,
    r: &ReportAnalysis,
    figures_dir: &str,
    figures: &[Figure],
) -> String {
    let mut md = String::new();
    let mut section = 0;
    let mut heading = |md: &mut String, title: &str| {
        section += 1;
        let _ = write!(md, "\n## {section}. {title}\n\n");
    };

    // Title and origin.
    let _ = writeln!(md, "# {}\n", inline(&r.title));
    let _ = writeln!(
        md,
        "Campaign {} · chimera {} · report {}\n",
        code(&a.campaign),
        inline(&a.chimera_version),
        code(&r.report)
    );
    let _ = writeln!(md, "> **Origin.** {}", origin_statement(r));
    if !r.verdicts.is_empty() {
        let _ = writeln!(md, ">\n> **Reproduction.** {}", verdict_line(&r.verdicts));
    }
    if let Some(line) = super::suspect::top_line(r) {
        let _ = writeln!(md, "{line}");
    }
    if let Some(d) = &r.description {
        let _ = writeln!(md, "\n{}", d.trim_end());
    }

    environment(&mut md, &mut heading, r);
    method(&mut md, &mut heading, r, &a.campaign);
    results(&mut md, &mut heading, r);
    super::serving::section(&mut md, &mut heading, r);
    if r.multi_agent {
        efficiency(&mut md, &mut heading, r);
    }
    comparisons(&mut md, &mut heading, &r.comparisons);
    super::suspect::section(&mut md, &mut heading, r);
    super::server_metrics::section(&mut md, &mut heading, r);

    heading(&mut md, "Findings");
    if r.findings.is_empty() {
        md.push_str("No finding was drawn from these data.\n");
    } else {
        for f in &r.findings {
            let _ = writeln!(md, "- {}", inline(f));
        }
    }

    verdicts(&mut md, &mut heading, &r.verdicts);

    heading(&mut md, "Figures");
    if figures.is_empty() {
        md.push_str("No chart: the data hold nothing to plot.\n");
    }
    let prefix = figures_dir.trim_end_matches('/');
    for (i, f) in figures.iter().enumerate() {
        let link = if prefix.is_empty() {
            f.file.clone()
        } else {
            format!("{prefix}/{}", f.file)
        };
        let _ = writeln!(
            md,
            "![Figure {}: {}]({link})\n\n*Figure {}.* {}\n",
            i + 1,
            inline(&f.title).replace(['[', ']'], ""),
            i + 1,
            inline(&f.caption)
        );
    }
    while md.ends_with("\n\n") {
        md.pop();
    }
    md
}

/// Section: the published environment and the measured provenance.
fn environment(md: &mut String, heading: &mut impl FnMut(&mut String, &str), r: &ReportAnalysis) {
    heading(md, "Environment and provenance");
    md.push_str("### As published\n\n");
    if r.published_environment.is_empty() {
        md.push_str("The original report states no environment.\n");
    } else {
        let mut t = Table::new(&[("Item", false, false), ("Published", false, false)]);
        for (k, v) in &r.published_environment {
            t.row(vec![k.clone(), v.clone()]);
        }
        md.push_str(&t.render());
        md.push_str("\nThis is the original report's own statement; chimera did not verify it.\n");
    }
    md.push_str("\n### As measured\n\n");
    if r.provenance.is_empty() {
        md.push_str(match r.origin {
            Origin::Imported { .. } => {
                "Nothing was measured by chimera: the data were imported, so no endpoint provenance exists.\n"
            }
            _ => "No endpoint provenance was recorded.\n",
        });
        return;
    }
    let mut t = Table::new(&[
        ("Endpoint", false, false),
        ("URL", false, false),
        ("Server", false, false),
        ("Version", false, false),
        ("Model", false, false),
        ("Digest", false, false),
        ("GPU", false, false),
        ("Driver", false, false),
        ("Host", false, false),
        ("OS", false, false),
        ("chimera", false, false),
    ]);
    let o = |s: &Option<String>| s.clone().unwrap_or_else(|| DASH.to_owned());
    for p in &r.provenance {
        t.row(vec![
            code(&p.endpoint),
            p.url.clone(),
            p.server_kind.clone(),
            o(&p.server_version),
            p.model_tag.as_deref().map_or_else(|| DASH.to_owned(), code),
            p.model_digest.as_deref().map_or_else(
                || DASH.to_owned(),
                |d| {
                    let d = d.strip_prefix("sha256:").unwrap_or(d);
                    code(&d.chars().take(12).collect::<String>())
                },
            ),
            p.gpu_name
                .clone()
                .unwrap_or_else(|| "none reported".to_owned()),
            o(&p.driver),
            o(&p.host),
            o(&p.os),
            p.chimera_version.clone(),
        ]);
    }
    md.push_str(&t.render());
}

/// Section: how the experiment ran and what the data hold.
fn method(
    md: &mut String,
    heading: &mut impl FnMut(&mut String, &str),
    r: &ReportAnalysis,
    campaign: &str,
) {
    heading(md, "Method");
    let m = &r.method;
    let c = &r.counts;
    let _ = writeln!(md, "- Harness(es): {}.", code_list(&m.harnesses));
    let _ = writeln!(md, "- Model(s): {}.", code_list(&m.models));
    let _ = writeln!(
        md,
        "- Configurations: {}, {} each (the most common count): {} planned.",
        m.configurations,
        plural(m.repetitions, "repetition", "repetitions"),
        plural(m.planned_runs as u64, "measured run", "measured runs"),
    );
    let _ = writeln!(md, "- Warm-up: {}.", inline(m.warmup.trim_end_matches('.')));
    let _ = writeln!(md, "- Order: {}.", inline(m.order.trim_end_matches('.')));
    if let Origin::Imported { skipped, .. } = &r.origin
        && !skipped.is_empty()
    {
        let _ = writeln!(
            md,
            "- Import: {} could not be read (truncated or damaged) and {} skipped; the other runs were imported: {}.",
            plural(skipped.len() as u64, "raw file", "raw files"),
            if skipped.len() == 1 { "was" } else { "were" },
            code_list(skipped)
        );
    }
    if r.multi_agent || m.planned_isolated > 0 {
        if m.planned_isolated == 0 {
            md.push_str("- Isolated baselines: none planned, so no agent was run alone and the true efficiency cannot be computed.\n");
        } else {
            let _ = writeln!(
                md,
                "- Isolated baselines: {} planned (each agent of a concurrent configuration run alone with the same options), {} with data.",
                m.planned_isolated, c.isolated_ok
            );
        }
    }
    let _ = writeln!(
        md,
        "- Configurations declared missing from the original data: {}.",
        code_list(&m.missing)
    );
    let _ = writeln!(
        md,
        "- Data: {} ok, {} failed, {} missing{}; {} agent runs; {} ({} failed); {}.",
        plural(c.runs_ok as u64, "run", "runs"),
        c.runs_failed,
        c.runs_missing,
        super::suspect::count_words(r),
        c.agent_runs,
        plural(c.requests as u64, "request", "requests"),
        c.requests_failed,
        plural(
            c.telemetry_samples as u64,
            "telemetry sample",
            "telemetry samples"
        ),
    );
    if let Some(cells) = &m.cells {
        md.push_str(&effects::cells_line(campaign, cells));
    }
    md.push_str(&effects::statistics_line(r));
    if !m.scenarios.is_empty() {
        md.push_str("\n| Scenario | Kind | Agents |\n|---|---|---|\n");
        for s in &m.scenarios {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                cell(&code(&s.id)),
                cell(&s.kind),
                cell(&s.agents.join("; "))
            );
        }
    }
}

/// Runs of a configuration: "5", or "4 + 1 failed".
fn runs(c: &ConfigRow) -> String {
    if c.failed == 0 {
        c.runs.to_string()
    } else {
        format!("{} + {} failed", c.runs, c.failed)
    }
}

/// Section: per-configuration and grouped tables.
fn results(md: &mut String, heading: &mut impl FnMut(&mut String, &str), r: &ReportAnalysis) {
    heading(md, "Results");
    md.push_str("### Per configuration\n\n");
    if r.configs.is_empty() {
        md.push_str("No configuration has data.\n");
    } else {
        md.push_str("Means over runs; ± is the half-width of the Student-t 95 % CI (none for a single run). Throughput and TTFT are per-agent request-level means; TTFT is the client TTFT, or, where the source measured none (imports of TR108–TR110 and of TR116's Python runs), the TTFT as the report defined it (`published_ttft_ms`).\n\n");
        let mut t = Table::new(&[
            ("Config", false, false),
            ("Scenario", false, false),
            ("Block", false, true),
            ("Model", false, false),
            ("Runtime", false, true),
            ("Language", false, true),
            ("Options", false, false),
            ("Runs", true, false),
            ("Published efficiency (%)", true, !r.multi_agent),
            ("Equal-work efficiency (%)", true, true),
            ("True efficiency (%)", true, true),
            ("Published speedup (×)", true, !r.multi_agent),
            ("Contention runs", true, !r.multi_agent),
            ("Throughput (tok/s)", false, false),
            ("TTFT (ms)", false, false),
            ("Tokens/J", true, true),
        ]);
        for c in &r.configs {
            let o = |s: &Option<String>| s.clone().unwrap_or_else(|| DASH.to_owned());
            t.row(vec![
                code(&c.config),
                c.scenario.clone(),
                o(&c.block),
                c.model.clone(),
                o(&c.runtime),
                o(&c.language),
                if c.options.is_empty() {
                    DASH.to_owned()
                } else {
                    c.options.clone()
                },
                runs(c),
                stat(c.published_efficiency.as_ref(), PCT),
                stat(c.equal_work_efficiency.as_ref(), PCT),
                stat(c.true_efficiency.as_ref(), PCT),
                stat(c.published_speedup.as_ref(), RATIO),
                c.contention_runs
                    .map_or_else(|| DASH.to_owned(), |n| format!("{n}/{}", c.runs)),
                per_agent(&c.throughput, TOK_S),
                per_agent(&c.ttft, MS),
                stat(c.tokens_per_j.as_ref(), RATIO),
            ]);
        }
        md.push_str(&t.render());
    }

    axes(md, r);
    let scen: Vec<&SummaryRow> = r
        .summaries
        .iter()
        .filter(|s| s.grouping == "report" || s.grouping == "scenario")
        .collect();
    md.push_str("\n### Per scenario\n\n");
    if scen.is_empty() {
        md.push_str("No per-scenario statistics.\n");
    } else {
        md.push_str(&summary_table(&scen, "Scenario"));
    }
    let mut groupings: Vec<&str> = vec!["runtime", "model", "language"];
    for s in &r.summaries {
        if !["report", "scenario", "config"].contains(&s.grouping.as_str())
            && !groupings.contains(&s.grouping.as_str())
        {
            groupings.push(&s.grouping);
        }
    }
    for g in groupings {
        let rows: Vec<&SummaryRow> = r.summaries.iter().filter(|s| s.grouping == g).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = write!(md, "\n### Per {}\n\n", inline(g));
        let mut header = inline(g);
        if let Some(f) = header.get_mut(0..1) {
            f.make_ascii_uppercase();
        }
        md.push_str(&summary_table(&rows, &header));
    }
}

/// Pools per-configuration means into one mean weighted by their `n`.
fn pooled<'a>(stats: impl Iterator<Item = &'a Stat>) -> Option<f64> {
    let (sum, n) = stats
        .filter(|s| s.mean.is_finite() && s.n > 0)
        .fold((0.0, 0u64), |(sum, n), s| {
            (sum + s.mean * s.n as f64, n + s.n)
        });
    (n > 0).then(|| sum / n as f64)
}

/// The axes the report is about (runtime, language, model), one row per combination and kind
/// of run: the published efficiency of its multi-agent runs and the throughput of its agents,
/// pooled over its configurations. Nothing when the report varies none of them.
fn axes(md: &mut String, r: &ReportAnalysis) {
    use std::collections::{BTreeMap, BTreeSet};
    let distinct = |f: &dyn Fn(&ConfigRow) -> Option<String>| -> BTreeSet<String> {
        r.configs.iter().filter_map(f).collect()
    };
    let runtimes = distinct(&|c| c.runtime.clone());
    let languages = distinct(&|c| c.language.clone());
    let models = distinct(&|c| Some(c.model.clone()));
    let show = (models.len() > 1, languages.len() > 1, runtimes.len() > 1);
    if !(show.0 || show.1 || show.2) {
        return;
    }
    type Key = (String, String, String, bool);
    let mut groups: BTreeMap<Key, Vec<&ConfigRow>> = BTreeMap::new();
    for c in &r.configs {
        let o = |s: &Option<String>| s.clone().unwrap_or_else(|| DASH.to_owned());
        let key = (
            c.model.clone(),
            o(&c.language),
            o(&c.runtime),
            // Multi-agent configurations count contention runs; single-agent ones do not.
            c.contention_runs.is_none(),
        );
        groups.entry(key).or_default().push(c);
    }
    let title = [("model", show.0), ("language", show.1), ("runtime", show.2)]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(" × ");
    let _ = write!(md, "\n### By {title}\n\n");
    md.push_str("The axes this report compares: runs pooled over the configurations of each combination (published efficiency: the mean over their runs; agent throughput: the mean over their agents' requests).\n\n");
    let kinds = groups.keys().map(|k| k.3).collect::<BTreeSet<_>>().len();
    let mut t = Table::new(&[
        ("Model", false, !show.0),
        ("Language", false, !show.1),
        ("Runtime", false, !show.2),
        ("Runs of", false, kinds < 2),
        ("Configs", true, false),
        ("Runs", true, false),
        ("Published efficiency (%)", true, true),
        ("Agent throughput (tok/s)", true, true),
    ]);
    for ((model, language, runtime, single), cs) in &groups {
        let blank = |on: bool, v: &str| if on { v.to_owned() } else { String::new() };
        let eff = pooled(cs.iter().filter_map(|c| c.published_efficiency.as_ref()));
        let tput = pooled(cs.iter().flat_map(|c| c.throughput.values()));
        t.row(vec![
            blank(show.0, model),
            blank(show.1, language),
            blank(show.2, runtime),
            match (kinds, *single) {
                (1, _) => String::new(),
                (_, true) => "one agent".to_owned(),
                _ => "concurrent agents".to_owned(),
            },
            cs.len().to_string(),
            cs.iter().map(|c| c.runs).sum::<u64>().to_string(),
            eff.map_or_else(|| DASH.to_owned(), |x| fixed(x, PCT)),
            tput.map_or_else(|| DASH.to_owned(), |x| fixed(x, TOK_S)),
        ]);
    }
    md.push_str(&t.render());
}

/// A table of descriptive statistics, grouped by metric and level (whole-report rows first).
fn summary_table(rows: &[&SummaryRow], group_header: &str) -> String {
    let mut keys: Vec<(&str, Level)> = Vec::new();
    for s in rows {
        if !keys.contains(&(s.metric.as_str(), s.level)) {
            keys.push((&s.metric, s.level));
        }
    }
    let mut t = Table::new(&[
        (group_header, false, false),
        ("Metric", false, false),
        ("Level", false, false),
        ("n", true, false),
        ("Mean", true, false),
        ("SD", true, false),
        ("CV (%)", true, false),
        ("Median", true, false),
        ("p95", true, false),
        ("Min", true, false),
        ("Max", true, false),
        ("95 % CI of the mean", true, false),
    ]);
    for (metric, level) in keys {
        let dec = metric_decimals(metric);
        let mut group: Vec<&&SummaryRow> = rows
            .iter()
            .filter(|s| s.metric == metric && s.level == level)
            .collect();
        group.sort_by_key(|s| s.grouping != "report");
        for s in group {
            let label = if s.grouping == "report" {
                format!("all ({})", s.group)
            } else {
                code(&s.group)
            };
            t.row(vec![
                label,
                code(&s.metric),
                s.level.to_string(),
                s.stats.n.to_string(),
                opt(s.stats.mean, dec),
                opt(s.stats.sd, dec),
                opt(s.stats.cv_pct, 2),
                opt(s.stats.median, dec),
                opt(s.stats.p95, dec),
                opt(s.stats.min, dec),
                opt(s.stats.max, dec),
                ci(s.stats.ci95, dec),
            ]);
        }
    }
    t.render()
}

/// Section: published vs honest efficiency, led by the equal-work figure.
fn efficiency(md: &mut String, heading: &mut impl FnMut(&mut String, &str), r: &ReportAnalysis) {
    heading(md, "Published vs honest efficiency");
    md.push_str(
        "The equal-work efficiency leads: it compares each concurrent run with the time each agent alone would have taken for the work it did in that run (its time to first token scaled by the prompt tokens, its decode time by the tokens decoded after each request's first, the rest of its duration by the requests, at the rates of its isolated run with the same options): equal-work speedup = Σ those times / concurrent wall time, efficiency = speedup / N × 100. The throughput ratio is the aggregate output throughput of the agents together / the sum of their throughputs alone. The duration-based true efficiency (Σ isolated durations / concurrent wall / N × 100) compares runs as they happened, so it moves with the replies' lengths whenever the isolated and the concurrent runs generated different numbers of tokens. The published efficiency is the sum of the agents' durations measured *during the concurrent run* / wall / N × 100; for two agents it equals 50 × (1 + min/max): a balance ratio that says how evenly the agents finished, not what concurrency gained.\n\n",
    );
    if r.efficiency.is_empty() {
        md.push_str("No multi-agent run has data.\n");
        return;
    }
    let measured = r.efficiency.iter().filter(|e| e.true_pct.is_some()).count();
    if measured == 0 {
        md.push_str("The agents were never run alone in this data, so neither the equal-work nor the true efficiency was measured: the published efficiency below is a balance ratio only, not a measure of what concurrency gained.\n\n");
    } else if measured < r.efficiency.len() {
        let _ = writeln!(
            md,
            "The agents were run alone for {measured} of {} configurations; for the others the equal-work and true efficiencies were not measured.\n",
            r.efficiency.len()
        );
    }
    let mut t = Table::new(&[
        ("Config", false, false),
        ("Scenario", false, false),
        ("Equal-work efficiency (%)", true, true),
        ("Throughput together / alone (%)", true, true),
        ("ms per output token alone → together", false, true),
        ("True efficiency, by durations (%)", true, false),
        ("Published efficiency (%)", true, false),
        ("True − published (pp)", true, false),
        ("Paired 95 % CI (pp)", true, true),
        ("n for 2 %", true, true),
        ("Reading", false, true),
        ("Slowdown together vs alone (×)", true, true),
    ]);
    let not_measured =
        |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| fixed(v, PCT));
    for e in &r.efficiency {
        let diff = e.true_pct.zip(e.published_pct).map(|(t, p)| t - p);
        let d = e.true_minus_published.as_ref();
        t.row(vec![
            code(&e.config),
            e.scenario.clone(),
            opt(e.equal_work_pct, PCT),
            opt(e.throughput_pct, PCT),
            match (e.alone_per_token_ms, e.together_per_token_ms) {
                (Some(a), Some(t)) => format!("{} → {}", fixed(a, MS + 1), fixed(t, MS + 1)),
                _ => DASH.to_owned(),
            },
            not_measured(e.true_pct),
            opt(e.published_pct, PCT),
            opt_signed(diff, PCT),
            ci(d.map(|d| d.ci95), PCT),
            d.map_or_else(|| DASH.to_owned(), |d| effects::needed(d.n_needed, d.n)),
            d.map_or_else(String::new, |d| d.reading.label().to_owned()),
            opt(e.slowdown, RATIO),
        ]);
    }
    md.push_str(&t.render());
    if r.efficiency
        .iter()
        .any(|e| e.true_minus_published.is_some())
    {
        md.push_str("\nThe paired CI is a one-sample t-interval of true − published over the runs that have both; *n for 2 %* is the runs that would detect a difference of 2 % of the published efficiency at the observed SD of those differences (α = 0.05, power 0.8), beside the runs at hand.\n");
    }
    let explained: Vec<_> = r
        .efficiency
        .iter()
        .filter_map(|e| e.explanation.as_ref().map(|x| (e, x)))
        .collect();
    if !explained.is_empty() {
        md.push('\n');
        for (e, x) in explained {
            let _ = writeln!(md, "- {}: {}", code(&e.config), inline(x));
        }
    }
}

/// Section: Welch comparisons.
fn comparisons(md: &mut String, heading: &mut impl FnMut(&mut String, &str), cs: &[Comparison]) {
    heading(md, "Comparisons");
    if cs.is_empty() {
        md.push_str("No comparison was made for this report.\n");
        return;
    }
    md.push_str("Welch's t-test (unequal variances), two-sided; the difference is mean B − mean A with its Welch 95 % CI; Hedges' g is the bias-corrected standardised difference. *n for 2 %*: repetitions per group that would detect a difference of 2 % of mean A at the observed SDs (α = 0.05 two-sided, power 0.8; see Method), beside the smaller group's n. *Reading*: \"different\" when the CI excludes 0; otherwise \"no difference found\" when the runs reach that n, \"too few runs to tell\" when they do not.\n\n");
    let mut t = Table::new(&[
        ("By", false, false),
        ("Metric", false, false),
        ("Level", false, false),
        ("A", false, false),
        ("B", false, false),
        ("n A", true, false),
        ("n B", true, false),
        ("Mean A", true, false),
        ("Mean B", true, false),
        ("B − A [95 % CI]", true, false),
        ("t", true, false),
        ("df", true, false),
        ("p", true, false),
        ("Hedges' g", true, false),
        ("n for 2 %", true, false),
        ("Reading", false, false),
    ]);
    for c in cs {
        let dec = metric_decimals(&c.metric);
        let diff = match (c.difference, c.diff_ci95) {
            (Some(d), Some(ci_)) => format!("{} {}", signed(d, dec), ci(Some(ci_), dec)),
            (d, _) => opt_signed(d, dec),
        };
        t.row(vec![
            c.by.clone(),
            code(&c.metric),
            c.level.to_string(),
            code(&c.a),
            code(&c.b),
            c.n_a.to_string(),
            c.n_b.to_string(),
            opt(c.mean_a, dec),
            opt(c.mean_b, dec),
            diff,
            opt(c.t, 2),
            opt(c.df, 1),
            p_value(c.p_value),
            opt(c.hedges_g, 2),
            effects::needed(c.n_needed, c.n_a.min(c.n_b)),
            c.reading
                .map_or_else(|| DASH.to_owned(), |r| r.label().to_owned()),
        ]);
    }
    md.push_str(&t.render());
}

/// The decimals a verdict's numbers are shown with: the unit's, or more when the published
/// number was written with more.
fn verdict_decimals(v: &Verdict) -> usize {
    if v.statistic == "count" {
        // A count is a whole number: as many decimals as the published one was written with.
        return written_decimals(v.published);
    }
    unit_decimals(&v.unit)
        .unwrap_or_else(|| metric_decimals(&v.metric))
        .max(written_decimals(v.published))
}

/// Section: the reproduction verdict per published number.
fn verdicts(md: &mut String, heading: &mut impl FnMut(&mut String, &str), vs: &[Verdict]) {
    heading(md, "Reproduction verdict");
    if vs.is_empty() {
        md.push_str("The manifest lists no published number to check for this report.\n");
        return;
    }
    let _ = writeln!(md, "**{}**\n", verdict_line(vs));
    md.push_str("The difference is recomputed − published, with, for a mean, its one-sample Student t 95 % CI; *n for 2 %* is the number of values that would detect a difference of 2 % of the published number at the observed SD (α = 0.05 two-sided, power 0.8; see Method), beside the values at hand. A new measurement whose CI includes the published number is \"reproduced\" only when it has that many values, else \"too few runs to tell\"; imported original data are judged to the published precision.\n\n");
    let mut t = Table::new(&[
        ("Id", false, false),
        ("Claim", false, false),
        ("Published", true, false),
        ("Recomputed [95 % CI]", true, false),
        ("Difference [95 % CI]", true, false),
        ("n for 2 %", true, true),
        ("Tolerance (basis)", true, false),
        ("Verdict", false, false),
        ("Raw data / note", false, true),
    ]);
    let mut notes: Vec<&str> = Vec::new();
    for v in vs {
        let dec = verdict_decimals(v);
        let recomputed = match (v.recomputed, v.ci95) {
            (Some(x), Some(c)) => format!(
                "{} {}",
                with_unit(&fixed(x, dec), &v.unit),
                ci(Some(c), dec)
            ),
            (x, _) => with_unit(&opt(x, dec), &v.unit),
        };
        let tolerance = match (v.tolerance, &v.tolerance_basis) {
            (Some(tol), Some(b)) => format!("± {} ({b})", trimmed(tol, dec + 3)),
            (Some(tol), None) => format!("± {}", trimmed(tol, dec + 3)),
            (None, Some(b)) => format!("({b})"),
            (None, None) => DASH.to_owned(),
        };
        let mut extra: Vec<String> = Vec::new();
        if let Some(d) = v.data_value {
            extra.push(format!("raw data: {}", with_unit(&fixed(d, dec), &v.unit)));
        }
        if let Some(n) = &v.note {
            notes.push(n);
            extra.push(format!("note {}", notes.len()));
        }
        let verdict = match v.verdict {
            VerdictKind::NotReproduced if v.contradicted_by_own_data => format!(
                "**{}: contradicted by the report's own data**",
                v.verdict.label()
            ),
            VerdictKind::NotReproduced if v.tolerance_basis.as_deref() == Some("ci95") => {
                format!("**{}: different**", v.verdict.label())
            }
            VerdictKind::NotReproduced => format!("**{}**", v.verdict.label()),
            k => k.label().to_owned(),
        };
        t.row(vec![
            code(&v.id),
            v.claim.clone(),
            // As written in the manifest: its decimals are the published precision.
            with_unit(&trimmed(v.published, 6), &v.unit),
            recomputed,
            match (v.difference, v.diff_ci95) {
                (Some(d), Some(c)) => format!("{} {}", signed(d, dec), ci(Some(c), dec)),
                (d, _) => opt_signed(d, dec),
            },
            effects::needed(v.n_needed, v.n),
            tolerance,
            verdict,
            extra.join("; "),
        ]);
    }
    md.push_str(&t.render());
    if !notes.is_empty() {
        md.push_str("\nNotes:\n\n");
        for (i, n) in notes.iter().enumerate() {
            let _ = writeln!(md, "{}. {}", i + 1, inline(n));
        }
    }
    md.push_str("\nHow each verdict was reached:\n\n");
    for v in vs {
        let what = if v.filter.is_empty() {
            "the whole report".to_owned()
        } else {
            inline(&v.filter)
        };
        let _ = writeln!(
            md,
            "- {} ({} of {} at the {} level, {}; n = {}; published in {}): {}",
            code(&v.id),
            inline(&v.statistic),
            code(&v.metric),
            inline(&v.over),
            what,
            v.n,
            inline(&v.source),
            inline(&v.explanation)
        );
    }
}
