//! Server-side metrics per configuration and endpoint: what the servers' Prometheus
//! `/metrics` said while the runs of a configuration ran (the `server_metrics` table). For
//! each gauge (and untyped series) its mean and peak over a run, averaged over the runs; for
//! each counter its increase over a run (last reading − first), averaged over the runs.
//!
//! These numbers are the server's own bookkeeping, not chimera's measurements: an emulator
//! endpoint publishes the emulator's counters, never an LLM server's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::dataset::Dataset;
use crate::table::{CellsRow, GAP_KIND};

/// One series of one endpoint over the runs of one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMetricStat {
    /// Metric name as published.
    pub metric: String,
    /// Labels (`k=v`, sorted, `,`-joined; empty without labels).
    pub labels: String,
    /// `counter`, `gauge` or `untyped`.
    pub kind: String,
    /// Runs that contribute (gauges: with a reading; counters: with two readings that do not
    /// go down, i.e. no server restart within the run).
    pub n: usize,
    /// Gauges: the mean over runs of the run's mean reading.
    pub mean: Option<f64>,
    /// Gauges: the mean over runs of the run's highest reading.
    pub peak: Option<f64>,
    /// Gauges: the highest reading of any run.
    pub max: Option<f64>,
    /// Counters: the mean over runs of the increase over the run.
    pub increase: Option<f64>,
}

/// What one endpoint's `/metrics` said during the runs of one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMetricsGroup {
    /// Configuration id.
    pub config: String,
    /// Endpoint id.
    pub endpoint: String,
    /// What served the endpoint (`provenance.server_kind`: `emulator`, `openai`, …).
    pub server_kind: Option<String>,
    /// Runs with at least one scrape of this endpoint.
    pub runs: usize,
    /// Scrapes that answered (distinct times).
    pub scrapes: usize,
    /// Scrapes that failed (gaps).
    pub gaps: usize,
    /// The series, by name and labels.
    pub metrics: Vec<ServerMetricStat>,
}

/// Per-run readings of one series: (t_ms, value) per run.
type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// The server-metrics groups of `runs` (a report's own runs), by configuration and endpoint.
/// Empty when the campaign has no `server_metrics` table.
pub(super) fn server_metrics(ds: &Dataset, runs: &[&CellsRow]) -> Vec<ServerMetricsGroup> {
    if ds.server_metrics.is_empty() {
        return Vec::new();
    }
    let config_of: BTreeMap<&str, &str> = runs
        .iter()
        .filter_map(|c| Some((c.cell_id.as_str(), c.config_id.as_deref()?)))
        .collect();
    groups(ds, &config_of)
}

/// The groups of the cells in `config_of` (cell id → configuration id).
fn groups(ds: &Dataset, config_of: &BTreeMap<&str, &str>) -> Vec<ServerMetricsGroup> {
    // (config, endpoint) → (metric, labels, kind) → cell → readings; and the scrape counts.
    type Key<'a> = (&'a str, &'a str, &'a str);
    let mut series: BTreeMap<(&str, &str), BTreeMap<Key<'_>, Series>> = BTreeMap::new();
    // (config, endpoint) → (cell → distinct scrape times, gaps).
    type Scrapes<'a> = (BTreeMap<&'a str, Vec<f64>>, usize);
    let mut scrapes: BTreeMap<(&str, &str), Scrapes<'_>> = BTreeMap::new();
    for r in &ds.server_metrics {
        let Some(cfg) = config_of.get(r.cell_id.as_str()) else {
            continue;
        };
        let group = (*cfg, r.endpoint.as_str());
        let sc = scrapes.entry(group).or_default();
        let times = sc.0.entry(r.cell_id.as_str()).or_default();
        if r.kind == GAP_KIND {
            sc.1 += 1;
            continue;
        }
        if !times.contains(&r.t_ms) {
            times.push(r.t_ms);
        }
        let Some(v) = r.value else { continue };
        series
            .entry(group)
            .or_default()
            .entry((r.metric.as_str(), r.labels.as_str(), r.kind.as_str()))
            .or_default()
            .entry(r.cell_id.clone())
            .or_default()
            .push((r.t_ms, v));
    }
    let kind_of = |endpoint: &str| {
        ds.provenance
            .iter()
            .find(|p| p.endpoint == endpoint)
            .map(|p| p.server_kind.clone())
    };
    scrapes
        .into_iter()
        .map(|((config, endpoint), (times, gaps))| ServerMetricsGroup {
            config: config.to_owned(),
            endpoint: endpoint.to_owned(),
            server_kind: kind_of(endpoint),
            runs: times.len(),
            scrapes: times.values().map(Vec::len).sum(),
            gaps,
            metrics: series
                .remove(&(config, endpoint))
                .unwrap_or_default()
                .into_iter()
                .map(|((metric, labels, kind), cells)| stat(metric, labels, kind, cells))
                .collect(),
        })
        .collect()
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The statistics of one series over its runs.
fn stat(metric: &str, labels: &str, kind: &str, cells: Series) -> ServerMetricStat {
    let mut out = ServerMetricStat {
        metric: metric.to_owned(),
        labels: labels.to_owned(),
        kind: kind.to_owned(),
        n: 0,
        mean: None,
        peak: None,
        max: None,
        increase: None,
    };
    if kind == "counter" {
        let increases: Vec<f64> = cells
            .into_values()
            .filter_map(|mut v| {
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                let (first, last) = (v.first()?.1, v.last()?.1);
                // A counter that went down restarted with its server: no increase.
                let monotone = v.windows(2).all(|w| w[1].1 >= w[0].1);
                (v.len() >= 2 && monotone).then_some(last - first)
            })
            .collect();
        out.n = increases.len();
        out.increase = mean(&increases);
    } else {
        let per_cell: Vec<(f64, f64)> = cells
            .into_values()
            .filter_map(|v| {
                let vals: Vec<f64> = v.iter().map(|x| x.1).collect();
                Some((mean(&vals)?, vals.iter().copied().fold(f64::MIN, f64::max)))
            })
            .collect();
        out.n = per_cell.len();
        out.mean = mean(&per_cell.iter().map(|x| x.0).collect::<Vec<_>>());
        out.peak = mean(&per_cell.iter().map(|x| x.1).collect::<Vec<_>>());
        out.max = per_cell.iter().map(|x| x.1).reduce(f64::max);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ServerMetricsRow;

    fn row(cell: &str, t: f64, metric: &str, kind: &str, value: Option<f64>) -> ServerMetricsRow {
        ServerMetricsRow {
            cell_id: cell.into(),
            report: "R".into(),
            endpoint: "llama_a".into(),
            t_ms: t,
            metric: metric.into(),
            labels: String::new(),
            kind: kind.into(),
            value,
            error: (kind == GAP_KIND).then(|| "HTTP 404".to_owned()),
        }
    }

    #[test]
    fn gauges_average_means_and_peaks_counters_their_increase() {
        let q = "llamacpp:requests_deferred";
        let tok = "llamacpp:tokens_predicted_total";
        let ds = Dataset {
            server_metrics: vec![
                row("c1", 0.0, q, "gauge", Some(0.0)),
                row("c1", 0.0, tok, "counter", Some(100.0)),
                row("c1", 500.0, q, "gauge", Some(2.0)),
                row("c1", 500.0, tok, "counter", Some(120.0)),
                row("c1", 900.0, q, "gauge", Some(1.0)),
                row("c1", 900.0, tok, "counter", Some(148.0)),
                row("c2", 0.0, q, "gauge", Some(4.0)),
                row("c2", 0.0, tok, "counter", Some(148.0)),
                row("c2", 400.0, "", GAP_KIND, None),
                row("c2", 800.0, q, "gauge", Some(0.0)),
                row("c2", 800.0, tok, "counter", Some(172.0)),
                // A server restart inside c3: its counter went down, no increase.
                row("c3", 0.0, tok, "counter", Some(172.0)),
                row("c3", 800.0, tok, "counter", Some(5.0)),
                // Not one of the report's runs.
                row("other", 0.0, q, "gauge", Some(99.0)),
            ],
            ..Dataset::default()
        };
        let runs = BTreeMap::from([("c1", "cfg"), ("c2", "cfg"), ("c3", "cfg")]);
        let g = groups(&ds, &runs);
        assert_eq!(g.len(), 1);
        let g = &g[0];
        assert_eq!((g.config.as_str(), g.endpoint.as_str()), ("cfg", "llama_a"));
        assert_eq!((g.runs, g.scrapes, g.gaps), (3, 7, 1));
        let q = g.metrics.iter().find(|m| m.metric == q).expect("queue");
        assert_eq!(q.n, 2);
        assert_eq!(q.mean, Some((1.0 + 2.0) / 2.0));
        assert_eq!(q.peak, Some((2.0 + 4.0) / 2.0));
        assert_eq!(q.max, Some(4.0));
        assert_eq!(q.increase, None);
        let t = g.metrics.iter().find(|m| m.metric == tok).expect("tokens");
        assert_eq!(t.n, 2);
        assert_eq!(t.increase, Some((48.0 + 24.0) / 2.0));
        assert_eq!(t.mean, None);
    }

    #[test]
    fn no_table_no_groups() {
        assert!(server_metrics(&Dataset::default(), &[]).is_empty());
        let runs = BTreeMap::from([("c1", "cfg")]);
        assert!(groups(&Dataset::default(), &runs).is_empty());
    }
}
