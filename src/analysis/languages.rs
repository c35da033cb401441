//! Rust against Python: the language axis compared metric by metric within each matrix block
//! that runs both languages (overall and per model), so that a report on the language axis (TR112, TR116, `tr116-languages`) puts the
//! two languages' agents side by side on like work — the agents' duration, throughput and
//! TTFT, the true efficiency of their concurrent runs, and (agent programs of `command`
//! workloads) their process's CPU time and peak RSS — each as a Welch difference with its
//! 95 % CI.

use std::collections::BTreeSet;

use super::compare::welch_row;
use super::model::Comparison;
use super::select::{Pool, values};
use crate::manifest::{Filter, Language, Level, Metric};

/// The metrics compared between languages within a block.
const LANGUAGE_METRICS: &[(&str, Metric, Level)] = &[
    ("true_efficiency_pct", Metric::TrueEfficiencyPct, Level::Run),
    ("agent_duration_s", Metric::AgentDurationS, Level::Agent),
    ("throughput_tok_s", Metric::ThroughputTokS, Level::Request),
    ("ttft_ms", Metric::TtftMs, Level::Request),
    ("process_cpu_ms", Metric::ProcessCpuMs, Level::Agent),
    (
        "process_peak_rss_mib",
        Metric::ProcessPeakRssMib,
        Level::Agent,
    ),
];

/// Welch comparisons of every pair of languages, for each metric of [`LANGUAGE_METRICS`] with
/// values on both sides, within each matrix block whose configurations use more than one
/// language (`by` = `language in block <b>`), and within each model of such a block when it
/// has several (`language in block <b>, model <m>`). Only a block holds the work fixed: TR116's
/// original blocks give each language its own workload, so they are never pooled here (the
/// report's primary metric is still compared across the whole report, beside this).
pub(super) fn language_comparisons(pool: &Pool<'_>, report: &str) -> Vec<Comparison> {
    let cfgs: Vec<&super::select::Cfg> = pool.runs.iter().filter_map(|c| pool.cfg(c)).collect();
    let mut out = Vec::new();
    let blocks: BTreeSet<&str> = cfgs
        .iter()
        .filter_map(|c| c.axes.block.as_deref())
        .collect();
    for block in blocks {
        let in_block: Vec<&&super::select::Cfg> = cfgs
            .iter()
            .filter(|c| c.axes.block.as_deref() == Some(block))
            .collect();
        let languages: BTreeSet<Language> = in_block
            .iter()
            .filter_map(|c| c.axes.language.as_deref())
            .filter_map(|l| l.parse().ok())
            .collect();
        if languages.len() < 2 {
            continue;
        }
        let models: BTreeSet<String> = in_block.iter().map(|c| c.model_id.clone()).collect();
        let mut scopes: Vec<(String, Option<String>)> =
            vec![(format!("language in block {block}"), None)];
        if models.len() > 1 {
            scopes.extend(models.iter().map(|m| {
                (
                    format!("language in block {block}, model {m}"),
                    Some(m.clone()),
                )
            }));
        }
        let languages: Vec<Language> = languages.into_iter().collect();
        for (by, model) in &scopes {
            for (name, metric, level) in LANGUAGE_METRICS {
                let of = |l: Language| {
                    let f = Filter {
                        language: Some(l),
                        model: model.clone(),
                        block: Some(block.to_owned()),
                        ..Filter::default()
                    };
                    values(pool, *metric, *level, &f).0
                };
                for (i, a) in languages.iter().enumerate() {
                    for b in &languages[i + 1..] {
                        let (xa, xb) = (of(*a), of(*b));
                        if xa.is_empty() || xb.is_empty() {
                            continue;
                        }
                        out.push(welch_row(
                            report,
                            by,
                            name,
                            *level,
                            (&a.to_string(), &xa),
                            (&b.to_string(), &xb),
                        ));
                    }
                }
            }
        }
    }
    out
}
