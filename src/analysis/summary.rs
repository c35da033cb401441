//! One report's analysis: per-configuration rows, grouped summaries, comparisons, published
//! vs honest efficiency, distributions, telemetry series and findings built from them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use super::compare::welch_row;
use super::distributions::{distributions, ttft_values};
use super::efficiency::efficiency_rows;
use super::load::Loaded;
use super::model::{
    Analysis, Comparison, ConfigRow, Counts, EndpointProvenance, Method, ReportAnalysis,
    ScenarioInfo, Stat, SummaryRow, TelemetrySeries, VerdictKind,
};
use super::select::{Pool, values};
use super::suspect::{suspect_cells, trusted};
use super::verdict::{fmt_num, judge};
use crate::manifest::{Filter, Level, Metric};
use crate::record::CellKind;
use crate::stats;
use crate::table::CellsRow as CellRow;

fn stat_of(xs: &[f64]) -> Option<Stat> {
    Some(Stat {
        n: xs.len() as u64,
        mean: stats::mean(xs)?,
        sd: stats::sample_sd(xs).unwrap_or(0.0),
        ci95: stats::t_ci95(xs),
    })
}

/// Summary metrics: (name, metric, level).
const SUMMARY_METRICS: &[(&str, Metric, Level)] = &[
    (
        "published_efficiency_pct",
        Metric::PublishedEfficiencyPct,
        Level::Run,
    ),
    ("published_speedup", Metric::PublishedSpeedup, Level::Run),
    (
        "equal_work_efficiency_pct",
        Metric::EqualWorkEfficiencyPct,
        Level::Run,
    ),
    (
        "throughput_efficiency_pct",
        Metric::ThroughputEfficiencyPct,
        Level::Run,
    ),
    ("true_efficiency_pct", Metric::TrueEfficiencyPct, Level::Run),
    ("true_speedup", Metric::TrueSpeedup, Level::Run),
    ("wall_s", Metric::WallS, Level::Run),
    ("throughput_tok_s", Metric::ThroughputTokS, Level::Request),
    ("ttft_ms", Metric::TtftMs, Level::Request),
    ("published_ttft_ms", Metric::PublishedTtftMs, Level::Request),
    ("agent_duration_s", Metric::AgentDurationS, Level::Agent),
    ("process_cpu_ms", Metric::ProcessCpuMs, Level::Agent),
    (
        "process_peak_rss_mib",
        Metric::ProcessPeakRssMib,
        Level::Agent,
    ),
];

fn summary_row(
    report: &str,
    grouping: &str,
    group: &str,
    level: Level,
    metric: &str,
    xs: &[f64],
) -> SummaryRow {
    SummaryRow {
        report: report.to_owned(),
        grouping: grouping.to_owned(),
        group: group.to_owned(),
        level,
        metric: metric.to_owned(),
        stats: stats::describe(xs),
    }
}

/// Values of a cell-table column over runs (for metrics outside the manifest's vocabulary).
fn cell_values(runs: &[&CellRow], f: impl Fn(&CellRow) -> Option<f64>) -> Vec<f64> {
    runs.iter().filter_map(|c| f(c)).collect()
}

fn summaries(pool: &Pool<'_>, report: &str) -> Vec<SummaryRow> {
    let cfgs: Vec<&super::select::Cfg> = {
        let mut v: Vec<_> = pool
            .runs
            .iter()
            .filter_map(|c| pool.cfg(c))
            .collect::<Vec<_>>();
        v.sort_by_key(|c| c.order);
        v.dedup_by_key(|c| c.order);
        v
    };
    // (grouping, values in first-seen order, filter builder)
    let mut groupings: Vec<(&str, Vec<(String, Filter)>)> =
        vec![("report", vec![(report.to_owned(), Filter::default())])];
    let distinct = |f: &dyn Fn(&super::select::Cfg) -> Option<String>| -> Vec<String> {
        let mut seen = Vec::new();
        for c in &cfgs {
            if let Some(v) = f(c)
                && !seen.contains(&v)
            {
                seen.push(v);
            }
        }
        seen
    };
    groupings.push((
        "config",
        groups(distinct(&|c| Some(c.id.clone())), |v| Filter {
            config: Some(v),
            ..Filter::default()
        }),
    ));
    groupings.push((
        "scenario",
        groups(distinct(&|c| Some(c.scenario.clone())), |v| Filter {
            scenario: Some(v),
            ..Filter::default()
        }),
    ));
    // Model, runtime and language tables only where the report varies them.
    let varied = |values: Vec<String>| (values.len() > 1).then_some(values);
    if let Some(models) = varied(distinct(&|c| Some(c.model_id.clone()))) {
        let f = |m| Filter {
            model: Some(m),
            ..Filter::default()
        };
        groupings.push(("model", groups(models, f)));
    }
    if let Some(rt) = varied(distinct(&|c| c.axes.runtime.clone())) {
        let f = |r| Filter {
            runtime: Some(r),
            ..Filter::default()
        };
        groupings.push(("runtime", enum_groups(rt, f)));
    }
    if let Some(lang) = varied(distinct(&|c| c.axes.language.clone())) {
        let f = |l| Filter {
            language: Some(l),
            ..Filter::default()
        };
        groupings.push(("language", enum_groups(lang, f)));
    }
    // One task per (group, metric), in parallel (rayon); the rows keep this order.
    let tasks: Vec<(&str, &str, &Filter, Option<usize>)> = groupings
        .iter()
        .flat_map(|(grouping, groups)| {
            groups.iter().flat_map(move |(group, f)| {
                (0..SUMMARY_METRICS.len())
                    .map(Some)
                    .chain([None])
                    .map(move |m| (*grouping, group.as_str(), f, m))
            })
        })
        .collect();
    tasks
        .par_iter()
        .filter_map(|&(grouping, group, f, m)| summary_of(pool, report, grouping, group, f, m))
        .collect()
}

/// The summary row of metric `m` of [`SUMMARY_METRICS`] (`None`: `output_tokens_per_j`) over
/// the rows `f` selects, if any has a value.
fn summary_of(
    pool: &Pool<'_>,
    report: &str,
    grouping: &str,
    group: &str,
    f: &Filter,
    m: Option<usize>,
) -> Option<SummaryRow> {
    let Some(m) = m else {
        let tpj = cell_values(&pool.runs_where(f), |c| c.output_tokens_per_j);
        return (!tpj.is_empty()).then(|| {
            summary_row(
                report,
                grouping,
                group,
                Level::Run,
                "output_tokens_per_j",
                &tpj,
            )
        });
    };
    let (name, metric, level) = SUMMARY_METRICS[m];
    let (xs, fallback) = values(pool, metric, level, f);
    if xs.is_empty() {
        return None;
    }
    // Per-agent means stood in for missing per-request rows: say so.
    let level = if fallback.is_some() {
        Level::Agent
    } else {
        level
    };
    Some(summary_row(report, grouping, group, level, name, &xs))
}

fn config_rows(pool: &Pool<'_>, l: &Loaded, report_idx: usize) -> Vec<ConfigRow> {
    let rp = &l.plan.reports[report_idx];
    // Failed runs per configuration, counted in one pass.
    let mut failed_runs: HashMap<&str, u64> = HashMap::new();
    for x in &l.data.cells {
        if x.is_run() && !x.ok() && x.report == rp.report {
            *failed_runs
                .entry(x.config_id.as_deref().unwrap_or_default())
                .or_default() += 1;
        }
    }
    // One configuration per task, in parallel (rayon), in plan order.
    let row = |c: &crate::plan::Configuration| -> Option<ConfigRow> {
        let cfg = l.cfgs.get(&(rp.report.clone(), c.id.to_string()))?;
        let f = Filter {
            config: Some(cfg.id.clone()),
            ..Filter::default()
        };
        let runs = pool.runs_where(&f);
        let failed = failed_runs.get(cfg.id.as_str()).copied().unwrap_or(0);
        let v = |m: Metric| stat_of(&values(pool, m, Level::Run, &f).0);
        let mut throughput = BTreeMap::new();
        let mut ttft = BTreeMap::new();
        for (agent, _, _) in &cfg.agents {
            let fa = Filter {
                agent: Some(agent.clone()),
                ..f.clone()
            };
            if let Some(s) = stat_of(&values(pool, Metric::ThroughputTokS, Level::Request, &fa).0) {
                throughput.insert(agent.clone(), s);
            }
            if let Some(s) = stat_of(&ttft_values(pool, &fa).1) {
                ttft.insert(agent.clone(), s);
            }
        }
        let contention = if cfg.multi {
            Some(runs.iter().filter(|c| c.contention == Some(true)).count() as u64)
        } else {
            None
        };
        Some(ConfigRow {
            config: cfg.id.clone(),
            scenario: cfg.scenario.clone(),
            block: cfg.axes.block.clone(),
            model: cfg.model_tag.clone(),
            runtime: cfg.axes.runtime.clone(),
            language: cfg.axes.language.clone(),
            options: cfg
                .agents
                .iter()
                .map(|(id, _, o)| format!("{id}: {o}"))
                .collect::<Vec<_>>()
                .join("; "),
            runs: runs.len() as u64,
            failed,
            published_efficiency: v(Metric::PublishedEfficiencyPct),
            true_efficiency: v(Metric::TrueEfficiencyPct),
            equal_work_efficiency: v(Metric::EqualWorkEfficiencyPct),
            throughput_efficiency: v(Metric::ThroughputEfficiencyPct),
            published_speedup: v(Metric::PublishedSpeedup),
            contention_runs: contention,
            throughput,
            ttft,
            tokens_per_j: stat_of(&cell_values(&runs, |c| c.output_tokens_per_j)),
        })
    };
    l.plan.configs[rp.configs.clone()]
        .par_iter()
        .filter_map(row)
        .collect()
}

/// One group per value, with the filter that selects it.
fn groups(values: Vec<String>, filter: impl Fn(String) -> Filter) -> Vec<(String, Filter)> {
    values.into_iter().map(|v| (v.clone(), filter(v))).collect()
}

/// One group per distinct value of a serde-named enum field (`values` as the analysis stores
/// them), with its filter; a value that does not parse is left out.
fn enum_groups<T: serde::de::DeserializeOwned>(
    values: Vec<String>,
    filter: impl Fn(T) -> Filter,
) -> Vec<(String, Filter)> {
    values
        .into_iter()
        .filter_map(|v| {
            let t = serde_json::from_value(serde_json::Value::String(v.clone())).ok()?;
            Some((v, filter(t)))
        })
        .collect()
}

/// At most this many points per telemetry series (evenly thinned).
const MAX_SERIES_POINTS: usize = 2000;

fn telemetry(l: &Loaded, runs: &[&CellRow]) -> Vec<TelemetrySeries> {
    let start: BTreeMap<&str, i64> = runs
        .iter()
        .map(|c| (c.cell_id.as_str(), c.started_at.0))
        .collect();
    let Some(t0) = start.values().min().copied() else {
        return Vec::new();
    };
    let mut by_gpu: BTreeMap<u32, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for s in &l.data.telemetry {
        let Some(st) = start.get(s.cell_id.as_str()) else {
            continue;
        };
        let t = (st - t0) as f64 / 1000.0 + s.t_ms / 1000.0;
        by_gpu.entry(s.gpu).or_default().push((
            t,
            s.util_pct.unwrap_or(f64::NAN),
            s.power_w.unwrap_or(f64::NAN),
        ));
    }
    by_gpu
        .into_iter()
        .map(|(gpu, mut v)| {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            let step = v.len().div_ceil(MAX_SERIES_POINTS).max(1);
            let v: Vec<_> = v.into_iter().step_by(step).collect();
            TelemetrySeries {
                gpu,
                t_s: v.iter().map(|x| x.0).collect(),
                util_pct: v.iter().map(|x| x.1).collect(),
                power_w: v.iter().map(|x| x.2).collect(),
            }
        })
        .collect()
}

fn findings(r: &ReportAnalysis, pool: &Pool<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let whole = |m: &str| {
        r.summaries
            .iter()
            .find(|s| s.grouping == "report" && s.metric == m)
    };
    let ci = |s: &SummaryRow| match s.stats.ci95 {
        Some((a, b)) => format!(" (95 % CI {}–{})", fmt_num(a), fmt_num(b)),
        None => String::new(),
    };
    if let Some(s) = whole("published_efficiency_pct") {
        out.push(format!(
            "Published efficiency over {} runs: mean {} %{}, median {} %, range {}–{} %.",
            s.stats.n,
            fmt_num(s.stats.mean.unwrap_or(f64::NAN)),
            ci(s),
            fmt_num(s.stats.median.unwrap_or(f64::NAN)),
            fmt_num(s.stats.min.unwrap_or(f64::NAN)),
            fmt_num(s.stats.max.unwrap_or(f64::NAN)),
        ));
        let mut by: Vec<(&str, f64)> = r
            .configs
            .iter()
            .filter_map(|c| Some((c.config.as_str(), c.published_efficiency?.mean)))
            .collect();
        by.sort_by(|a, b| b.1.total_cmp(&a.1));
        if let (Some(best), Some(worst)) = (by.first(), by.last())
            && by.len() > 1
        {
            out.push(format!(
                "Best configuration {} ({} % mean), worst {} ({} % mean).",
                best.0,
                fmt_num(best.1),
                worst.0,
                fmt_num(worst.1)
            ));
        }
        let flagged = pool
            .runs
            .iter()
            .filter(|c| c.contention == Some(true))
            .count();
        let with_flag = pool.runs.iter().filter(|c| c.contention.is_some()).count();
        if with_flag > 0 {
            out.push(format!(
                "The published contention rule (speedup < 1.5) flags {flagged} of {with_flag} runs."
            ));
        }
    }
    match whole("true_efficiency_pct") {
        Some(s) => out.push(format!(
            "True efficiency (against the agents run alone, same options): mean {} %{} over {} runs.",
            fmt_num(s.stats.mean.unwrap_or(f64::NAN)),
            ci(s),
            s.stats.n
        )),
        None if r.multi_agent => out.push(
            "True efficiency is not measured in this data: the agents were never run alone, so \
             the published efficiency (a balance ratio, 50 × (1 + min/max) for two agents) is \
             the only concurrency figure."
                .to_owned(),
        ),
        None => {}
    }
    if let Some(s) = whole("throughput_tok_s") {
        out.push(format!(
            "Throughput over {} {}: mean {} tok/s{}, CV {} %.",
            s.stats.n,
            if s.level == Level::Agent {
                "agent runs (per-agent means: the source recorded no per-request values)"
            } else {
                "requests"
            },
            fmt_num(s.stats.mean.unwrap_or(f64::NAN)),
            ci(s),
            fmt_num(s.stats.cv_pct.unwrap_or(f64::NAN))
        ));
    }
    let ttft = whole("ttft_ms")
        .map(|s| ("TTFT", s))
        .or_else(|| whole("published_ttft_ms").map(|s| ("TTFT as the report defined it", s)));
    if let Some((what, s)) = ttft {
        out.push(format!(
            "{what}{}: median {} ms, p95 {} ms, max {} ms.",
            if s.level == Level::Agent {
                " (per-agent means)"
            } else {
                ""
            },
            fmt_num(s.stats.median.unwrap_or(f64::NAN)),
            fmt_num(s.stats.p95.unwrap_or(f64::NAN)),
            fmt_num(s.stats.max.unwrap_or(f64::NAN))
        ));
    }
    if let Some(s) = whole("output_tokens_per_j") {
        out.push(format!(
            "Energy: {} output tokens per joule on average over {} runs.",
            fmt_num(s.stats.mean.unwrap_or(f64::NAN)),
            s.stats.n
        ));
    }
    out.extend(comparison_findings(r));
    let count = |k: VerdictKind| r.verdicts.iter().filter(|v| v.verdict == k).count();
    if !r.verdicts.is_empty() {
        out.push(format!(
            "Of {} published numbers, {} reproduced, {} did not, {} were not measured here.",
            r.verdicts.len(),
            count(VerdictKind::Reproduced),
            count(VerdictKind::NotReproduced),
            count(VerdictKind::NotMeasured)
        ));
        if let n @ 1.. = count(VerdictKind::Inconclusive) {
            out.push(format!(
                "For {n} more, the runs are too few to tell a reproduction from a difference."
            ));
        }
    }
    out
}

/// The findings of a report's comparisons: every cross-report one and the language axis on the
/// primary metric; model and runtime pairs only when few.
fn comparison_findings(r: &ReportAnalysis) -> Vec<String> {
    let mut out = Vec::new();
    let pairs = r
        .comparisons
        .iter()
        .filter(|c| c.by == "model" || c.by == "runtime")
        .count();
    // The language axis within blocks is in the Comparisons table, not in the findings.
    let language_detail = |c: &&Comparison| c.by.starts_with("language in block");
    for c in r
        .comparisons
        .iter()
        .filter(|c| (c.by != "model" && c.by != "runtime") || pairs <= 3)
        .filter(|c| !language_detail(c))
    {
        if let (Some(p), Some(d)) = (c.p_value, c.difference) {
            out.push(format!(
                "{} vs {} ({}): difference {} (Welch t = {}, p {}){}{}.",
                c.b,
                c.a,
                c.metric,
                fmt_num(d),
                fmt_num(c.t.unwrap_or(f64::NAN)),
                if p < 0.0001 {
                    "< 0.0001".to_owned()
                } else {
                    format!("= {}", fmt_num(p))
                },
                if p < 0.05 {
                    ""
                } else {
                    ", not significant at 5 %"
                },
                super::compare::too_few_words(c)
            ));
        }
    }
    out
}

fn warmup_words(spec: &crate::manifest::ManifestSpec) -> String {
    match spec.warmup.policy {
        crate::manifest::WarmupMode::None => "none".to_owned(),
        crate::manifest::WarmupMode::PerOptionSet => format!(
            "{} excluded request(s) per endpoint and load-affecting option set",
            spec.warmup.requests
        ),
    }
}

fn order_words(spec: &crate::manifest::ManifestSpec) -> String {
    match spec.order.mode {
        crate::manifest::OrderMode::Interleaved => match spec.order.shuffle_seed {
            Some(s) => format!("repetitions interleaved, shuffled with seed {s}"),
            None => "repetitions interleaved across configurations".to_owned(),
        },
        crate::manifest::OrderMode::Blocked => {
            "all repetitions of a configuration in a row".to_owned()
        }
    }
}

/// The primary metric of a report for comparisons: efficiency for multi-agent reports,
/// request throughput otherwise.
pub(super) fn primary(multi: bool) -> (Metric, Level, &'static str) {
    if multi {
        (
            Metric::PublishedEfficiencyPct,
            Level::Run,
            "published_efficiency_pct",
        )
    } else {
        (Metric::ThroughputTokS, Level::Request, "throughput_tok_s")
    }
}

fn within_comparisons(pool: &Pool<'_>, report: &str, multi: bool) -> Vec<Comparison> {
    let (metric, level, name) = primary(multi);
    let mut out = Vec::new();
    let cfgs: Vec<&super::select::Cfg> = pool.runs.iter().filter_map(|c| pool.cfg(c)).collect();
    let mut by_key = |key: &str,
                      get: &dyn Fn(&super::select::Cfg) -> Option<String>,
                      mk: &dyn Fn(&str) -> Option<Filter>| {
        let groups: BTreeSet<String> = cfgs.iter().filter_map(|c| get(c)).collect();
        let groups: Vec<String> = groups.into_iter().collect();
        if groups.len() < 2 {
            return;
        }
        let vals: Vec<(String, Vec<f64>)> = groups
            .iter()
            .filter_map(|g| Some((g.clone(), values(pool, metric, level, &mk(g)?).0)))
            .collect();
        // Every pair, in parallel (rayon), in order.
        let pairs: Vec<(usize, usize)> = (0..vals.len())
            .flat_map(|i| (i + 1..vals.len()).map(move |j| (i, j)))
            .collect();
        out.par_extend(pairs.into_par_iter().map(|(i, j)| {
            welch_row(
                report,
                key,
                name,
                level,
                (&vals[i].0, &vals[i].1),
                (&vals[j].0, &vals[j].1),
            )
        }));
    };
    by_key("language", &|c| c.axes.language.clone(), &|g| {
        Some(Filter {
            language: Some(serde_json::from_value(serde_json::Value::String(g.into())).ok()?),
            ..Filter::default()
        })
    });
    by_key("model", &|c| Some(c.model_id.clone()), &|g| {
        Some(Filter {
            model: Some(g.to_owned()),
            ..Filter::default()
        })
    });
    by_key("runtime", &|c| c.axes.runtime.clone(), &|g| {
        Some(Filter {
            runtime: Some(serde_json::from_value(serde_json::Value::String(g.into())).ok()?),
            ..Filter::default()
        })
    });
    out
}

/// The primary values of one report of a loaded campaign (for cross-report comparisons).
fn report_primary(
    l: &Loaded,
    report: &str,
    models: &[String],
    include_suspect: bool,
) -> Option<(bool, Vec<f64>)> {
    let idx = l.plan.reports.iter().position(|r| r.report == report)?;
    let multi = l.plan.configs[l.plan.reports[idx].configs.clone()]
        .iter()
        .any(|c| c.is_multi_agent());
    let pool = trusted(
        Pool::new(&l.data, &l.cfgs, &[report.to_owned()]),
        include_suspect,
    );
    let (m, lv, _) = primary(multi);
    // Only the configurations of the given model tags (the comparison is between like runs).
    let mut xs = Vec::new();
    for tag in models {
        let f = Filter {
            model: Some(tag.clone()),
            ..Filter::default()
        };
        xs.extend(values(&pool, m, lv, &f).0);
    }
    (!xs.is_empty()).then_some((multi, xs))
}

/// The model tags a report's configurations use.
fn report_models(l: &Loaded, report: &str) -> Vec<String> {
    let mut v: Vec<String> = l
        .cfgs
        .values()
        .filter(|c| c.report == report)
        .map(|c| c.model_tag.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Analyses every report of `l` (or the one matching `only`); `all` are the campaigns loaded
/// beside it, searched for the reports a report compares with.
pub(super) fn analyze_loaded(
    l: &Loaded,
    all: &[Loaded],
    only: Option<&str>,
    include_suspect: bool,
) -> Analysis {
    let origin = super::load::origin(l);
    let mut reports = Vec::new();
    for (idx, rp) in l.plan.reports.iter().enumerate() {
        if only.is_some_and(|w| !super::load::report_matches(w, &rp.report)) {
            continue;
        }
        reports.push(analyze_report(l, all, idx, &origin, include_suspect));
    }
    Analysis {
        campaign: l.info.name.clone(),
        chimera_version: env!("CARGO_PKG_VERSION").to_owned(),
        origin,
        reports,
    }
}

/// The analysis of report `idx` of `l`.
fn analyze_report(
    l: &Loaded,
    all: &[Loaded],
    idx: usize,
    origin: &super::model::Origin,
    include_suspect: bool,
) -> ReportAnalysis {
    let rp = &l.plan.reports[idx];
    let t0 = std::time::Instant::now();
    let imported = origin.is_imported();
    let spec = &rp.manifest.spec;
    let mut pool_reports = vec![rp.report.clone()];
    pool_reports.extend(spec.depends_on.iter().filter_map(|d| {
        l.plan
            .reports
            .iter()
            .find(|r| super::load::report_matches(d, &r.report))
            .map(|r| r.report.clone())
    }));
    let pool = trusted(Pool::new(&l.data, &l.cfgs, &pool_reports), include_suspect);
    let own: Vec<&CellRow> = pool
        .runs
        .iter()
        .copied()
        .filter(|c| c.report == rp.report)
        .collect();
    let configs_of = &l.plan.configs[rp.configs.clone()];
    let multi = configs_of.iter().any(|c| c.is_multi_agent());
    let (planned_runs, planned_iso) = super::load::planned_counts(&l.plan, idx);
    let report_cells: Vec<&CellRow> = l
        .data
        .cells
        .iter()
        .filter(|c| c.report == rp.report)
        .collect();
    let mut counts = counts(l, &own, &report_cells, planned_runs);
    let suspect = suspect_cells(&report_cells);
    counts.runs_suspect = suspect.iter().filter(|c| c.kind != "isolated").count();
    let mut method = method(rp, configs_of, (planned_runs, planned_iso), imported);
    method.cells = (!imported).then(|| super::adoption::cell_sources(l, &report_cells));
    let provenance = provenance(l);
    let own_pool = pool.subset(own.clone());
    let configs = config_rows(&own_pool, l, idx);
    tracing::debug!("analysis: configs done after {:?}", t0.elapsed());
    let summaries = if own.is_empty() {
        summaries(&pool, &rp.report)
    } else {
        summaries(&own_pool, &rp.report)
    };
    tracing::debug!("analysis: summaries done after {:?}", t0.elapsed());
    let verdicts = spec
        .references
        .iter()
        .map(|r| judge(&pool, r, imported))
        .collect();
    let mut comparisons = within_comparisons(&pool, &rp.report, multi);
    comparisons.extend(super::languages::language_comparisons(&pool, &rp.report));
    comparisons.extend(cross_comparisons(
        l,
        all,
        &rp.report,
        (multi, imported),
        include_suspect,
    ));
    tracing::debug!("analysis: comparisons done after {:?}", t0.elapsed());
    let efficiency = if multi {
        efficiency_rows(&own_pool, &configs)
    } else {
        Vec::new()
    };
    let scen: Vec<String> = spec.scenarios.iter().map(|s| s.id.clone()).collect();
    let mut r = ReportAnalysis {
        report: rp.report.clone(),
        title: spec.title.clone(),
        description: spec.description.clone(),
        published_environment: spec.published_environment.clone(),
        provenance,
        origin: origin.clone(),
        method,
        counts,
        multi_agent: multi,
        configs,
        summaries,
        verdicts,
        comparisons,
        efficiency,
        distributions: distributions(&own_pool, &scen),
        telemetry: telemetry(l, &own),
        findings: Vec::new(),
        suspect_warning: super::suspect::warning(&report_cells, suspect.len(), include_suspect),
        suspect,
        suspect_included: include_suspect,
        server_metrics: super::server_metrics::server_metrics(&l.data, &own),
        serving: super::serving::serving(&l.plan, &l.data, &own_pool, idx),
    };
    tracing::debug!(
        "analysis: report {} done after {:?}",
        rp.report,
        t0.elapsed()
    );
    r.findings = findings(&r, &own_pool);
    if own.is_empty() && pool_reports.len() > 1 {
        let from: Vec<String> = pool_reports[1..]
            .iter()
            .map(|d| {
                let n = pool.runs.iter().filter(|c| c.report == *d).count();
                format!("{d} ({n} runs)")
            })
            .collect();
        r.findings.insert(
            0,
            format!(
                "{} runs nothing of its own: its numbers come from the runs of {} in this campaign.",
                rp.report,
                from.join(" and ")
            ),
        );
    }
    r
}

/// What a report's tables hold: runs, agent runs, requests and samples, and what is missing.
fn counts(l: &Loaded, own: &[&CellRow], report_cells: &[&CellRow], planned_runs: usize) -> Counts {
    let own_ids: BTreeSet<&str> = own.iter().map(|c| c.cell_id.as_str()).collect();
    Counts {
        runs_ok: own.len(),
        runs_failed: report_cells
            .iter()
            .filter(|c| c.is_run() && !c.ok())
            .count(),
        isolated_ok: report_cells
            .iter()
            .filter(|c| c.kind == CellKind::Isolated && c.ok())
            .count(),
        agent_runs: l
            .data
            .agents
            .iter()
            .filter(|a| own_ids.contains(a.cell_id.as_str()))
            .count(),
        requests: l
            .data
            .requests
            .iter()
            .filter(|q| own_ids.contains(q.cell_id.as_str()))
            .map(|q| q.len())
            .sum(),
        requests_failed: l
            .data
            .requests
            .iter()
            .filter(|q| own_ids.contains(q.cell_id.as_str()))
            .map(|q| q.failed)
            .sum(),
        telemetry_samples: {
            let ids: BTreeSet<&str> = report_cells.iter().map(|c| c.cell_id.as_str()).collect();
            l.data
                .telemetry
                .iter()
                .filter(|t| ids.contains(t.cell_id.as_str()))
                .count()
        },
        runs_missing: planned_runs
            .saturating_sub(report_cells.iter().filter(|c| c.is_run()).count()),
        runs_suspect: 0,
    }
}

/// How a report was measured: harnesses, scenarios, models, repetitions, warm-up and order.
fn method(
    rp: &crate::plan::ReportPlan,
    configs_of: &[crate::plan::Configuration],
    (planned_runs, planned_iso): (usize, usize),
    imported: bool,
) -> Method {
    let spec = &rp.manifest.spec;
    let mut reps: BTreeMap<u32, usize> = BTreeMap::new();
    for c in configs_of {
        *reps.entry(c.repetitions).or_default() += 1;
    }
    Method {
        harnesses: {
            let mut h: Vec<String> = spec
                .workloads
                .iter()
                .filter_map(|w| w.harness.clone())
                .collect();
            h.dedup();
            h
        },
        scenarios: spec
            .scenarios
            .iter()
            .map(|s| ScenarioInfo {
                id: s.id.clone(),
                kind: s.kind.to_string(),
                agents: s
                    .agents
                    .iter()
                    .map(|a| format!("{} ({}) → {}", a.id, a.role, a.endpoint))
                    .collect(),
            })
            .collect(),
        models: spec.models.iter().map(|m| m.tag.clone()).collect(),
        configurations: configs_of.len(),
        repetitions: reps.iter().max_by_key(|(_, n)| **n).map_or(0, |(r, _)| *r),
        planned_runs,
        planned_isolated: planned_iso,
        warmup: if imported {
            "none added by chimera: the imported runs are as the original harness made them \
             (the manifest's comments describe its warm-up and order)"
                .to_owned()
        } else {
            warmup_words(spec)
        },
        order: if imported {
            "as the original harness ran them".to_owned()
        } else {
            order_words(spec)
        },
        missing: rp.missing.clone(),
        cells: None,
    }
}

/// The endpoints' provenance, each distinct row once (the shards of a sharded campaign record
/// the same endpoints on machines alike).
fn provenance(l: &Loaded) -> Vec<EndpointProvenance> {
    let mut out: Vec<EndpointProvenance> = Vec::new();
    let rows = l.data.provenance.iter().map(|p| EndpointProvenance {
        endpoint: p.endpoint.clone(),
        url: p.url.clone(),
        server_kind: p.server_kind.clone(),
        server_version: p.server_version.clone(),
        model_tag: p.model_tag.clone(),
        model_digest: p.model_digest.clone(),
        gpu_name: p.gpu_name.clone(),
        driver: p.driver.clone(),
        host: p.host.clone(),
        os: p.os.clone(),
        chimera_version: p.chimera_version.clone(),
    });
    for r in rows {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// Cross-report comparisons of `report`: the other report in this campaign, else in a campaign
/// beside it whose numbers have the same origin class (imported with imported). Only runs of
/// the same model(s) are compared across reports.
fn cross_comparisons(
    l: &Loaded,
    all: &[Loaded],
    report: &str,
    (multi, imported): (bool, bool),
    include_suspect: bool,
) -> Vec<Comparison> {
    let mut comparisons = Vec::new();
    let Some(rp) = l.plan.reports.iter().find(|r| r.report == report) else {
        return comparisons;
    };
    let spec = &rp.manifest.spec;
    let models = report_models(l, &rp.report);
    if let Some((_, mine)) = report_primary(l, &rp.report, &models, include_suspect) {
        for other in &spec.compare_with {
            let found =
                std::iter::once(l)
                    .chain(all.iter().filter(|o| {
                        o.dir != l.dir && super::load::origin(o).is_imported() == imported
                    }))
                    .find_map(|o| {
                        // Never the report itself (`compare_with: [TR116]` in TR116_demo
                        // names TR116, which `TR116_demo` also matches by its number).
                        let r = o.plan.reports.iter().find(|r| {
                            super::load::report_matches(other, &r.report)
                                && !(o.dir == l.dir && r.report == rp.report)
                        })?;
                        let (m, xs) = report_primary(o, &r.report, &models, include_suspect)?;
                        (m == multi).then(|| (format!("{} ({})", r.report, o.info.name), xs))
                    });
            if let Some((label, xs)) = found {
                let (_, level, name) = primary(multi);
                comparisons.push(welch_row(
                    &rp.report,
                    "report",
                    name,
                    level,
                    (&label, &xs),
                    (&format!("{} ({})", rp.report, l.info.name), &mine),
                ));
            }
        }
    }
    comparisons
}
