//! `chimera compare A B`: two campaigns side by side, configuration by configuration.
//!
//! **Matching.** Each configuration has a content key (what its cells measure: workload,
//! model, scenario kind, each agent's endpoint and options, …; `plan::key`). Flattened into
//! fields (`agents[1].options.num_ctx`, `model_tag`, …), a field *differs between the two*
//! when the set of values it takes in A is not the set it takes in B (A ran everything at
//! `num_ctx` 1024, B at 2048; A on port 11434, B on 18181). When such a field is a setting
//! (the model, the runtime, an agent's options or URL, the warm-up), configurations are matched
//! on the key without it, and the report says which fields those were; the work itself
//! (workload, scenario, roles) must be equal. Nothing matching is an error that names the
//! fields that differ.
//!
//! **Per matched pair and metric**: B − A of the per-run means, its 95 % CI (Welch; exact when
//! neither side varies), the change in % of A, and a verdict: B is faster or slower (better or
//! worse for an efficiency) when the CI excludes 0, else no detectable difference at this
//! number of runs. Runs are the committed, successful, trusted (not suspect) runs.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::load::Loaded;
use crate::table::CellsRow;

/// A metric compared, and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AbMetric {
    /// Wall time of a run, ms (lower is faster).
    WallMs,
    /// Mean client TTFT of a run's agents, ms (lower is faster).
    TtftMs,
    /// Mean server-reported decode throughput of a run's agents, tok/s (higher is faster).
    ThroughputTokS,
    /// Output tokens of the run over its wall time, tok/s (higher is faster).
    AggregateTokS,
    /// Equal-work efficiency of a concurrent run, % (higher is better).
    EqualWorkEfficiencyPct,
}

impl AbMetric {
    /// Every metric, in report order.
    pub const ALL: [AbMetric; 5] = [
        AbMetric::WallMs,
        AbMetric::TtftMs,
        AbMetric::ThroughputTokS,
        AbMetric::AggregateTokS,
        AbMetric::EqualWorkEfficiencyPct,
    ];

    /// Column name.
    pub fn name(self) -> &'static str {
        match self {
            AbMetric::WallMs => "wall_ms",
            AbMetric::TtftMs => "ttft_ms",
            AbMetric::ThroughputTokS => "throughput_tok_s",
            AbMetric::AggregateTokS => "aggregate_tok_s",
            AbMetric::EqualWorkEfficiencyPct => "equal_work_efficiency_pct",
        }
    }

    /// True for the speed metrics (time and throughput), which `--fail-if-slower` watches; an
    /// efficiency is better or worse, not faster or slower.
    pub fn is_speed(self) -> bool {
        self != AbMetric::EqualWorkEfficiencyPct
    }

    /// True when a larger value is better.
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            AbMetric::ThroughputTokS | AbMetric::AggregateTokS | AbMetric::EqualWorkEfficiencyPct
        )
    }
}

/// The verdict of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AbVerdict {
    /// B is faster (better): the CI excludes 0 on the good side.
    Faster,
    /// B is slower (worse).
    Slower,
    /// The CI includes 0.
    NoDetectableDifference,
    /// Fewer than two runs on a side: no CI.
    TooFewRuns,
}

impl AbVerdict {
    /// Words for the table, with the metric's vocabulary.
    pub fn words(self, m: AbMetric) -> &'static str {
        let eff = m == AbMetric::EqualWorkEfficiencyPct;
        match self {
            AbVerdict::Faster if eff => "better",
            AbVerdict::Faster => "faster",
            AbVerdict::Slower if eff => "worse",
            AbVerdict::Slower => "slower",
            AbVerdict::NoDetectableDifference => "no detectable difference",
            AbVerdict::TooFewRuns => "too few runs",
        }
    }
}

/// One configuration pair and metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbRow {
    /// The configuration in A (`report/id`).
    pub a: String,
    /// Its match in B.
    pub b: String,
    /// The metric.
    pub metric: AbMetric,
    /// Runs and mean in A.
    pub n_a: usize,
    /// Mean in A.
    pub mean_a: f64,
    /// Runs in B.
    pub n_b: usize,
    /// Mean in B.
    pub mean_b: f64,
    /// B − A.
    pub difference: f64,
    /// 95 % CI of B − A (`None` with fewer than two runs on a side).
    pub ci95: Option<(f64, f64)>,
    /// (B − A) / A × 100.
    pub change_pct: Option<f64>,
    /// The verdict.
    pub verdict: AbVerdict,
}

impl AbRow {
    /// How much slower B is than A, % of A (negative: faster); `None` without a change.
    pub fn slowdown_pct(&self) -> Option<f64> {
        self.change_pct.map(|c| {
            if self.metric.higher_is_better() {
                -c
            } else {
                c
            }
        })
    }
}

/// The comparison of two campaigns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbComparison {
    /// Campaign A's name.
    pub a: String,
    /// Campaign B's name.
    pub b: String,
    /// The key fields that differ between the two, left out of the matching, with their
    /// values in A and in B.
    pub differing: Vec<(String, String, String)>,
    /// Configurations of A with no match in B, and of B with none in A.
    pub unmatched: (Vec<String>, Vec<String>),
    /// The rows, by configuration pair then metric.
    pub rows: Vec<AbRow>,
}

/// Why two campaigns cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum AbError {
    /// No configuration matches.
    #[error(
        "no configuration of `{a}` matches one of `{b}`: they differ in {fields}\n  = help: \
         compare campaigns that measured the same configurations (the same workload, model and \
         scenario) with a few settings changed"
    )]
    NoMatch {
        /// A.
        a: String,
        /// B.
        b: String,
        /// The differing fields, or "everything".
        fields: String,
    },
}

/// Flattens a JSON value into `path → value text`.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// Every configuration of a campaign: `report/id` → its flattened key.
fn keys(l: &Loaded) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for c in &l.plan.configs {
        let rp = &l.plan.reports[c.report];
        let spec = &rp.manifest.spec;
        let w = crate::plan::key::hex32(
            &crate::plan::key::WorkloadKey::of(&spec.workloads[c.workload]).digest(),
        );
        let key = crate::plan::expand::config_key(spec, c, w);
        let mut flat = BTreeMap::new();
        if let Ok(v) = serde_json::to_value(&key) {
            flatten("", &v, &mut flat);
        }
        out.insert(format!("{}/{}", rp.report, c.id), flat);
    }
    out
}

/// The fields whose value sets differ between A and B (with those sets, as text).
fn differing(
    a: &BTreeMap<String, BTreeMap<String, String>>,
    b: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<(String, String, String)> {
    let values = |k: &BTreeMap<String, BTreeMap<String, String>>, f: &str| -> BTreeSet<String> {
        k.values()
            .map(|m| m.get(f).cloned().unwrap_or_else(|| "(absent)".into()))
            .collect()
    };
    let fields: BTreeSet<&String> = a
        .values()
        .chain(b.values())
        .flat_map(|m| m.keys())
        .collect();
    let join = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>().join(", ");
    fields
        .into_iter()
        .filter_map(|f| {
            let (va, vb) = (values(a, f), values(b, f));
            (va != vb).then(|| (f.clone(), join(va), join(vb)))
        })
        .collect()
}

/// A key field that is a setting (may differ between matched configurations): the model and
/// its digest, the runtime and language, each agent's options and endpoint URL, the warm-up
/// and between-runs policies. The rest (workload, scenario kind, execution, roles, endpoint
/// protocols, the format, the replicate) is the work itself and must be equal.
fn setting(field: &str) -> bool {
    let agent_part = field
        .strip_prefix("agents[")
        .and_then(|r| r.split_once("]."))
        .map(|(_, rest)| rest);
    match agent_part {
        Some(rest) => rest.starts_with("options.") || rest == "endpoint.url",
        None => {
            matches!(
                field,
                "model_tag"
                    | "model_digest"
                    | "runtime"
                    | "language"
                    | "warmup"
                    | "warmup_requests"
            ) || field.starts_with("between_runs")
        }
    }
}

/// The per-run values of `metric` for configuration `report/id` of a campaign.
fn runs(l: &Loaded, cfg: &str, metric: AbMetric) -> Vec<f64> {
    let Some((report, id)) = cfg.split_once('/') else {
        return Vec::new();
    };
    let cells: Vec<&CellsRow> = l
        .data
        .cells
        .iter()
        .filter(|c| {
            c.report == report
                && c.config_id.as_deref() == Some(id)
                && c.is_run()
                && c.ok()
                && c.suspect != Some(true)
        })
        .collect();
    let agent_mean = |cell: &str, f: &dyn Fn(&crate::table::AgentsRow) -> Option<f64>| {
        let v: Vec<f64> = l
            .data
            .agents
            .iter()
            .filter(|a| a.cell_id == cell && !a.isolated)
            .filter_map(f)
            .collect();
        crate::stats::mean(&v)
    };
    cells
        .iter()
        .filter_map(|c| match metric {
            AbMetric::WallMs => Some(c.wall_ms),
            AbMetric::AggregateTokS => c.aggregate_tok_s,
            AbMetric::EqualWorkEfficiencyPct => c.equal_work_efficiency_pct,
            AbMetric::TtftMs => agent_mean(&c.cell_id, &|a| a.aggregate.ttft_mean_ms),
            AbMetric::ThroughputTokS => {
                agent_mean(&c.cell_id, &|a| a.aggregate.throughput_mean_tok_s)
            }
        })
        .filter(|v| v.is_finite())
        .collect()
}

/// One row from the two samples.
fn row(a: &str, b: &str, metric: AbMetric, xa: &[f64], xb: &[f64]) -> Option<AbRow> {
    let (ma, mb) = (crate::stats::mean(xa)?, crate::stats::mean(xb)?);
    let difference = mb - ma;
    let ci95 = if xa.len() < 2 || xb.len() < 2 {
        None
    } else {
        match crate::stats::welch(xa, xb) {
            Some(w) => Some(w.diff_ci95),
            // Neither side varies: the difference is exact.
            None => Some((difference, difference)),
        }
    };
    let verdict = match ci95 {
        None => AbVerdict::TooFewRuns,
        Some((lo, hi)) if lo > 0.0 || hi < 0.0 => {
            if (lo > 0.0) == metric.higher_is_better() {
                AbVerdict::Faster
            } else {
                AbVerdict::Slower
            }
        }
        Some(_) => AbVerdict::NoDetectableDifference,
    };
    Some(AbRow {
        a: a.to_owned(),
        b: b.to_owned(),
        metric,
        n_a: xa.len(),
        mean_a: ma,
        n_b: xb.len(),
        mean_b: mb,
        difference,
        ci95,
        change_pct: (ma != 0.0).then(|| difference / ma * 100.0),
        verdict,
    })
}

/// Compares campaign `b` with campaign `a` (see the module docs).
pub fn compare(a: &Loaded, b: &Loaded) -> Result<AbComparison, AbError> {
    let (ka, kb) = (keys(a), keys(b));
    let all_differ = differing(&ka, &kb);
    // Only settings may differ between matched configurations; the work itself (workload,
    // scenario, execution, roles, protocols) may not.
    let differ: Vec<(String, String, String)> = all_differ
        .iter()
        .filter(|(f, _, _)| setting(f))
        .cloned()
        .collect();
    let skip: BTreeSet<&str> = differ.iter().map(|(f, _, _)| f.as_str()).collect();
    let matchable = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .filter(|(f, _)| !skip.contains(f.as_str()))
            .map(|(f, v)| (f.clone(), v.clone()))
            .collect()
    };
    let mut by_key_b: BTreeMap<BTreeMap<String, String>, Vec<&String>> = BTreeMap::new();
    for (cfg, k) in &kb {
        by_key_b.entry(matchable(k)).or_default().push(cfg);
    }
    let mut rows = Vec::new();
    let mut matched_b: BTreeSet<&String> = BTreeSet::new();
    let mut unmatched_a = Vec::new();
    for (cfg_a, k) in &ka {
        let Some(bs) = by_key_b.get(&matchable(k)) else {
            unmatched_a.push(cfg_a.clone());
            continue;
        };
        // Identical settings listed twice in a report: pair them in order.
        let Some(cfg_b) = bs.iter().find(|x| !matched_b.contains(**x)).copied() else {
            unmatched_a.push(cfg_a.clone());
            continue;
        };
        matched_b.insert(cfg_b);
        for m in AbMetric::ALL {
            let (xa, xb) = (runs(a, cfg_a, m), runs(b, cfg_b, m));
            rows.extend(row(cfg_a, cfg_b, m, &xa, &xb));
        }
    }
    let name = |l: &Loaded| l.info.name.clone();
    if matched_b.is_empty() {
        return Err(AbError::NoMatch {
            a: name(a),
            b: name(b),
            fields: if all_differ.is_empty() {
                "nothing, yet no configuration has runs".into()
            } else {
                all_differ
                    .iter()
                    .map(|(f, _, _)| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        });
    }
    let unmatched_b = kb
        .keys()
        .filter(|k| !matched_b.contains(k))
        .cloned()
        .collect();
    Ok(AbComparison {
        a: name(a),
        b: name(b),
        differing: differ,
        unmatched: (unmatched_a, unmatched_b),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_says_faster_slower_or_nothing_by_the_metric_s_direction() {
        let slow = [110.0, 112.0, 111.0];
        let fast = [100.0, 101.0, 99.0];
        let r = row("a", "b", AbMetric::WallMs, &fast, &slow).expect("row");
        assert_eq!(r.verdict, AbVerdict::Slower);
        assert!(r.slowdown_pct().expect("pct") > 9.0);
        let r = row("a", "b", AbMetric::ThroughputTokS, &fast, &slow).expect("row");
        assert_eq!(r.verdict, AbVerdict::Faster);
        assert!(r.slowdown_pct().expect("pct") < -9.0);
        let r = row("a", "b", AbMetric::WallMs, &fast, &fast).expect("row");
        assert_eq!(r.verdict, AbVerdict::NoDetectableDifference);
        assert_eq!(r.ci95.map(|(lo, hi)| lo <= 0.0 && hi >= 0.0), Some(true));
        let r = row("a", "b", AbMetric::WallMs, &[1.0], &[2.0]).expect("row");
        assert_eq!(r.verdict, AbVerdict::TooFewRuns);
        // Neither side varies: an exact difference.
        let r = row("a", "b", AbMetric::ThroughputTokS, &[400.0; 3], &[200.0; 3]).expect("row");
        assert_eq!(r.ci95, Some((-200.0, -200.0)));
        assert_eq!(r.verdict, AbVerdict::Slower);
    }

    #[test]
    fn settings_may_differ_but_not_the_work() {
        assert!(setting("agents[1].options.num_ctx"));
        assert!(setting("agents[0].endpoint.url"));
        assert!(setting("model_tag"));
        assert!(setting("between_runs.sleep_s"));
        assert!(!setting("workload"));
        assert!(!setting("scenario_kind"));
        assert!(!setting("agents[0].role"));
        assert!(!setting("agents[0].endpoint.kind"));
    }

    #[test]
    fn fields_differ_when_their_value_sets_differ() {
        let k = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| ((*a).into(), (*b).into()))
                .collect()
        };
        let a: BTreeMap<_, _> = [
            ("r/x".to_string(), k(&[("ctx", "1024"), ("gpu", "60")])),
            ("r/y".to_string(), k(&[("ctx", "1024"), ("gpu", "80")])),
        ]
        .into();
        let b: BTreeMap<_, _> = [
            ("r/x".to_string(), k(&[("ctx", "2048"), ("gpu", "60")])),
            ("r/y".to_string(), k(&[("ctx", "2048"), ("gpu", "80")])),
        ]
        .into();
        assert_eq!(
            differing(&a, &b),
            vec![("ctx".to_string(), "1024".to_string(), "2048".to_string())]
        );
    }
}
