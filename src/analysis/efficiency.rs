//! The efficiency rows of a multi-agent report: published, duration-based true and
//! equal-work efficiency per configuration, and why they disagree.

use super::model::{ConfigRow, EfficiencyRow};
use super::select::Pool;
use super::verdict::fmt_num;
use crate::manifest::Filter;
use crate::stats;

pub(super) fn efficiency_rows(pool: &Pool<'_>, rows: &[ConfigRow]) -> Vec<EfficiencyRow> {
    let mut out = Vec::new();
    for r in rows {
        let Some(p) = r.published_efficiency else {
            continue;
        };
        let f = Filter {
            config: Some(r.config.clone()),
            ..Filter::default()
        };
        let runs = pool.runs_where(&f);
        // Σ agent durations during the concurrent run / Σ isolated durations, per run.
        let slow: Vec<f64> = runs
            .iter()
            .filter_map(|c| {
                let iso = c.isolated_sum_ms?;
                let conc: f64 = pool
                    .agents
                    .get(c.cell_id.as_str())?
                    .iter()
                    .map(|a| a.duration_ms)
                    .sum();
                (iso > 0.0).then(|| conc / iso)
            })
            .collect();
        let t = r.true_efficiency.map(|s| s.mean);
        let slowdown = stats::mean(&slow);
        let e = r.equal_work_efficiency.map(|s| s.mean);
        let explanation = efficiency_explanation(p.mean, t, e, slowdown);
        out.push(EfficiencyRow {
            config: r.config.clone(),
            scenario: r.scenario.clone(),
            published_pct: Some(p.mean),
            true_pct: t,
            equal_work_pct: r.equal_work_efficiency.map(|s| s.mean),
            throughput_pct: r.throughput_efficiency.map(|s| s.mean),
            alone_per_token_ms: stats::mean(
                &runs
                    .iter()
                    .filter_map(|c| c.alone_per_output_token_ms)
                    .collect::<Vec<_>>(),
            ),
            together_per_token_ms: stats::mean(
                &runs
                    .iter()
                    .filter_map(|c| c.together_per_output_token_ms)
                    .collect::<Vec<_>>(),
            ),
            slowdown,
            explanation,
            true_minus_published: super::compare::true_minus_published(&runs),
        });
    }
    out
}

/// One sentence on why the published (`p`), duration-based true (`t`) and equal-work (`e`)
/// efficiencies of a configuration disagree; `None` when they agree within 5 points.
fn efficiency_explanation(
    p: f64,
    t: Option<f64>,
    e: Option<f64>,
    slowdown: Option<f64>,
) -> Option<String> {
    match (e, t, slowdown) {
        (Some(e), Some(t), _) if (t - e).abs() > 5.0 || (p - e).abs() > 5.0 => Some(format!(
            "on equal work the concurrent run is {} % efficient; the published {} % measures \
             how evenly the agents finished (50 × (1 + min/max) for two){}",
            fmt_num(e),
            fmt_num(p),
            if (t - e).abs() > 5.0 && e > 0.0 {
                format!(
                    ", and the duration-based {} % compares runs that did different work (alone \
                     the agents did {}× the work they did together)",
                    fmt_num(t),
                    fmt_num(t / e)
                )
            } else {
                String::new()
            }
        )),
        (None, Some(t), Some(s)) if (p - t).abs() > 5.0 => Some(format!(
            "published {} % measures how evenly the agents finished (50 × (1 + min/max) \
             for two); together they took {}× their time alone{}, so against running them \
             one after the other the concurrent run is {} % efficient",
            fmt_num(p),
            fmt_num(s),
            if s < 1.0 {
                " (less: their replies were shorter or the servers faster in those runs)"
            } else {
                ""
            },
            fmt_num(t)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_explanation_names_equal_work_first() {
        let x = efficiency_explanation(99.0, Some(80.0), Some(50.0), Some(1.2)).expect("text");
        assert_eq!(
            x,
            "on equal work the concurrent run is 50 % efficient; the published 99 % measures how \
             evenly the agents finished (50 × (1 + min/max) for two), and the duration-based 80 % \
             compares runs that did different work (alone the agents did 1.6× the work they did \
             together)"
        );
        assert_eq!(
            efficiency_explanation(52.0, Some(51.0), Some(50.0), None),
            None
        );
    }
}
