//! The request-level distributions the report's box plots draw: per scenario, and per kind of
//! request (an agent's analysis and report calls) where a scenario has several.

use rayon::prelude::*;

use super::model::Distribution;
use super::select::{Pool, values};
use crate::manifest::{Filter, Level, Metric};

pub(super) fn distributions(pool: &Pool<'_>, scenarios: &[String]) -> Vec<Distribution> {
    use crate::workload::Stage;
    let mut raw = Vec::new();
    for s in scenarios {
        // A scenario whose requests are of several kinds (an agent's analysis and report
        // calls) gets one distribution per kind: their mixture would look bimodal.
        let of = |stage: Option<Stage>| {
            let f = Filter {
                scenario: Some(s.clone()),
                stage: stage.map(|st| st.name().to_owned()),
                ..Filter::default()
            };
            let (xs, _) = values(pool, Metric::ThroughputTokS, Level::Request, &f);
            let (ttft_name, ttft) = ttft_values(pool, &f);
            (stage, [("throughput_tok_s", xs), (ttft_name, ttft)])
        };
        let mut groups: Vec<_> = [
            Stage::Analysis,
            Stage::Report,
            Stage::Single,
            Stage::Persona,
        ]
        .into_iter()
        .map(|st| of(Some(st)))
        .filter(|(_, m)| m.iter().any(|(_, xs)| !xs.is_empty()))
        .collect();
        if groups.len() < 2 {
            groups = vec![of(None)];
        }
        for (stage, metrics) in groups {
            for (name, xs) in metrics {
                if !xs.is_empty() {
                    raw.push((s.clone(), name.to_owned(), xs, stage.map(Stage::name)));
                }
            }
        }
    }
    // Summarising a large group sorts it: in parallel (rayon), in order.
    raw.into_par_iter()
        .map(|(group, metric, xs, stage)| Distribution::new(group, metric, xs).of_stage(stage))
        .collect()
}

/// The client TTFT values of the rows `f` selects, or, where the source measured none (the
/// imports of TR108–TR110 and of TR116's Python runs), the TTFT as the report defined it:
/// (the metric's name, its values).
pub(super) fn ttft_values(pool: &Pool<'_>, f: &Filter) -> (&'static str, Vec<f64>) {
    let (client, _) = values(pool, Metric::TtftMs, Level::Request, f);
    if !client.is_empty() {
        return ("ttft_ms", client);
    }
    let (published, _) = values(pool, Metric::PublishedTtftMs, Level::Request, f);
    ("published_ttft_ms", published)
}
