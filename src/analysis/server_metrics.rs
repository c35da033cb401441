//! Server-side metrics per configuration and endpoint: what the servers' Prometheus
//! `/metrics` said while the runs of a configuration ran (the `server_metrics` table). For
//! each gauge (and untyped series) its mean and peak over a run, averaged over the runs; for
//! each counter its increase over a run, averaged over the runs.
//!
//! The scrapes at a run's start (before its first request) and at its end (after its last
//! reply) find the server idle by design: they are there for the counters. A gauge's mean and
//! peak are taken over the scrapes in between (evenly spaced, `interval_ms` apart), and over
//! all of them only when there are none in between (a run shorter than the interval). A
//! counter's increase follows Prometheus `increase()`: the sum of the rises between
//! consecutive readings, where a reading below the one before (the server restarted) counts
//! from 0; a series that a start scrape which answered did not have appeared during the run
//! and counts from 0 too.
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
    /// Runs that contribute (gauges: with a reading; counters: with two readings, or one after
    /// a start scrape that answered without the series).
    pub n: usize,
    /// Gauges: the mean over runs of the run's mean reading (scrapes between the start and
    /// the end of the run; all of them when there are none in between).
    pub mean: Option<f64>,
    /// Gauges: the mean over runs of the run's highest reading (the same scrapes).
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
type Series<'a> = BTreeMap<&'a str, Vec<(f64, f64)>>;

/// The scrapes of one endpoint in one run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RunScrapes {
    /// The first scrape (the start's, answered or not), t_ms.
    first: f64,
    /// The last scrape (the end's, answered or not), t_ms.
    last: f64,
    /// Whether the first scrape answered.
    first_answered: bool,
    /// Scrapes that answered (distinct times).
    answered: usize,
    /// The time of the last answered scrape counted in `answered`.
    last_answered: Option<f64>,
}

impl RunScrapes {
    fn new(t: f64) -> RunScrapes {
        RunScrapes {
            first: t,
            last: t,
            first_answered: false,
            answered: 0,
            last_answered: None,
        }
    }

    /// One row of a scrape at `t` (`answered`: not a gap). The rows of one endpoint in one
    /// run come in time order (a scrape's rows together), so a new answered scrape is one
    /// whose time differs from the last one counted.
    fn add(&mut self, t: f64, answered: bool) {
        if t < self.first {
            (self.first, self.first_answered) = (t, answered);
        } else if t == self.first {
            self.first_answered |= answered;
        }
        self.last = self.last.max(t);
        if answered && self.last_answered != Some(t) {
            self.answered += 1;
            self.last_answered = Some(t);
        }
    }
}

/// The gauge readings of one run that count: those strictly between the run's first and
/// last scrape, or all of them when none is.
fn gauge_readings(v: &[(f64, f64)], sc: Option<&RunScrapes>) -> Vec<f64> {
    let inner: Vec<f64> = sc
        .map(|sc| {
            v.iter()
                .filter(|(t, _)| *t > sc.first && *t < sc.last)
                .map(|x| x.1)
                .collect()
        })
        .unwrap_or_default();
    if inner.is_empty() {
        v.iter().map(|x| x.1).collect()
    } else {
        inner
    }
}

/// The increase of a counter over one run (Prometheus `increase()` without extrapolation):
/// the sum of the rises between consecutive readings, a reading below the one before (a
/// restart) counting from 0; a series absent from a first scrape that answered counts from
/// 0. `None` with fewer than two readings (counting that 0).
fn counter_increase(mut v: Vec<(f64, f64)>, sc: Option<&RunScrapes>) -> Option<f64> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(sc) = sc
        && sc.first_answered
        && v.first()?.0 > sc.first
    {
        v.insert(0, (sc.first, 0.0));
    }
    (v.len() >= 2).then(|| {
        v.windows(2)
            .map(|w| {
                if w[1].1 >= w[0].1 {
                    w[1].1 - w[0].1
                } else {
                    w[1].1
                }
            })
            .sum()
    })
}

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
    // (config, endpoint) → (metric, labels, kind) → cell → readings; and the scrapes.
    type Key<'a> = (&'a str, &'a str, &'a str);
    let mut series: BTreeMap<(&str, &str), BTreeMap<Key<'_>, Series<'_>>> = BTreeMap::new();
    // (config, endpoint) → (cell → its scrapes, gaps).
    type Scrapes<'a> = (BTreeMap<&'a str, RunScrapes>, usize);
    let mut scrapes: BTreeMap<(&str, &str), Scrapes<'_>> = BTreeMap::new();
    for r in &ds.server_metrics {
        let Some(cfg) = config_of.get(r.cell_id.as_str()) else {
            continue;
        };
        let group = (*cfg, r.endpoint.as_str());
        let sc = scrapes.entry(group).or_default();
        let answered = r.kind != GAP_KIND;
        sc.0.entry(r.cell_id.as_str())
            .or_insert_with(|| RunScrapes::new(r.t_ms))
            .add(r.t_ms, answered);
        if !answered {
            sc.1 += 1;
            continue;
        }
        let Some(v) = r.value else { continue };
        series
            .entry(group)
            .or_default()
            .entry((r.metric.as_str(), r.labels.as_str(), r.kind.as_str()))
            .or_default()
            .entry(r.cell_id.as_str())
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
        .map(|((config, endpoint), (runs, gaps))| ServerMetricsGroup {
            config: config.to_owned(),
            endpoint: endpoint.to_owned(),
            server_kind: kind_of(endpoint),
            runs: runs.len(),
            scrapes: runs.values().map(|r| r.answered).sum(),
            gaps,
            metrics: series
                .remove(&(config, endpoint))
                .unwrap_or_default()
                .into_iter()
                .map(|((metric, labels, kind), cells)| stat(metric, labels, kind, cells, &runs))
                .collect(),
        })
        .collect()
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The statistics of one series over its runs (`runs`: the endpoint's scrapes per run).
fn stat(
    metric: &str,
    labels: &str,
    kind: &str,
    cells: Series<'_>,
    runs: &BTreeMap<&str, RunScrapes>,
) -> ServerMetricStat {
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
            .into_iter()
            .filter_map(|(cell, v)| counter_increase(v, runs.get(cell)))
            .collect();
        out.n = increases.len();
        out.increase = mean(&increases);
    } else {
        let per_cell: Vec<(f64, f64)> = cells
            .into_iter()
            .filter_map(|(cell, v)| {
                let vals = gauge_readings(&v, runs.get(cell));
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
                // A server restart inside c3: its counter went down, and counts from 0.
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
        // c1: the reading between start and end (2); c2: none in between, so both (4, 0).
        assert_eq!(q.mean, Some((2.0 + 2.0) / 2.0));
        assert_eq!(q.peak, Some((2.0 + 4.0) / 2.0));
        assert_eq!(q.max, Some(4.0));
        assert_eq!(q.increase, None);
        let t = g.metrics.iter().find(|m| m.metric == tok).expect("tokens");
        assert_eq!(t.n, 3);
        assert_eq!(t.increase, Some((48.0 + 24.0 + 5.0) / 3.0));
        assert_eq!(t.mean, None);
    }

    fn labelled(mut r: ServerMetricsRow, labels: &str) -> ServerMetricsRow {
        r.labels = labels.into();
        r
    }

    fn one_group(rows: Vec<ServerMetricsRow>) -> ServerMetricsGroup {
        let ds = Dataset {
            server_metrics: rows,
            ..Dataset::default()
        };
        let runs = BTreeMap::from([("c1", "cfg"), ("c2", "cfg")]);
        groups(&ds, &runs).remove(0)
    }

    /// The idle start and end scrapes stay out of a gauge's mean and peak when there are
    /// scrapes in between (a plain mean of all four would be 1.5).
    #[test]
    fn gauge_statistics_leave_the_idle_start_and_end_scrapes_out() {
        let q = "vllm:num_requests_running";
        let g = one_group(vec![
            row("c1", -2.0, q, "gauge", Some(0.0)),
            row("c1", 500.0, q, "gauge", Some(2.0)),
            row("c1", 1000.0, q, "gauge", Some(4.0)),
            row("c1", 1300.0, q, "gauge", Some(0.0)),
            // The end scrape failed: the reading at 600 is in between all the same.
            row("c2", 0.0, q, "gauge", Some(0.0)),
            row("c2", 600.0, q, "gauge", Some(6.0)),
            row("c2", 900.0, "", GAP_KIND, None),
        ]);
        let m = &g.metrics[0];
        assert_eq!(m.n, 2);
        assert_eq!(m.mean, Some((3.0 + 6.0) / 2.0));
        assert_eq!(m.peak, Some((4.0 + 6.0) / 2.0));
        assert_eq!(m.max, Some(6.0));
        assert_eq!((g.scrapes, g.gaps), (6, 1));
    }

    /// A labelled counter that first appears during a run (absent from a start scrape that
    /// answered) counts from 0; after a start scrape that failed, from its first reading.
    /// A counter that goes down (a restart) counts its new value, as Prometheus `increase()`.
    #[test]
    fn counters_count_new_series_from_zero_and_survive_a_restart() {
        let (up, tok) = ("up", "vllm:generation_tokens_total");
        let m = "model_name=m";
        let g = one_group(vec![
            row("c1", 0.0, up, "gauge", Some(1.0)),
            row("c1", 500.0, up, "gauge", Some(1.0)),
            labelled(row("c1", 500.0, tok, "counter", Some(7.0)), m),
            row("c1", 900.0, up, "gauge", Some(1.0)),
            labelled(row("c1", 900.0, tok, "counter", Some(10.0)), m),
            row("c2", 0.0, "", GAP_KIND, None),
            labelled(row("c2", 500.0, tok, "counter", Some(7.0)), m),
            labelled(row("c2", 900.0, tok, "counter", Some(10.0)), m),
        ]);
        let t = g.metrics.iter().find(|s| s.metric == tok).expect("tokens");
        assert_eq!((t.labels.as_str(), t.n), (m, 2));
        assert_eq!(t.increase, Some((10.0 + 3.0) / 2.0));
        let sc = RunScrapes::new(0.0);
        let restart = vec![(0.0, 100.0), (300.0, 120.0), (600.0, 5.0), (900.0, 8.0)];
        assert_eq!(counter_increase(restart, Some(&sc)), Some(20.0 + 5.0 + 3.0));
        let mut answered = RunScrapes::new(0.0);
        answered.add(0.0, true);
        assert_eq!(
            counter_increase(vec![(900.0, 4.0)], Some(&answered)),
            Some(4.0)
        );
        assert_eq!(counter_increase(vec![(900.0, 4.0)], Some(&sc)), None);
    }

    #[test]
    fn no_table_no_groups() {
        assert!(server_metrics(&Dataset::default(), &[]).is_empty());
        let runs = BTreeMap::from([("c1", "cfg")]);
        assert!(groups(&Dataset::default(), &runs).is_empty());
    }
}
