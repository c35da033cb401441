//! Prometheus text exposition (a server's `/metrics`) → flat readings, through the
//! `prometheus-parse` crate.
//!
//! Counters, gauges and untyped samples are kept as they are; of a histogram or a summary only
//! the `_sum` and `_count` series are kept (as counters: both only grow), the buckets and
//! quantiles are dropped. The crate's name pattern (`\w+`) does not accept the `:` that the
//! exposition format allows in metric names and that llama-server (`llamacpp:…`) and vLLM
//! (`vllm:…`) use, so the name token of each line has its `:` swapped for a stand-in letter
//! before parsing and back after; nothing else of the text is touched.

use std::collections::BTreeSet;

/// The kind of a reading (`# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    /// Only grows (until the server restarts): its increase over a cell is what counts.
    Counter,
    /// A level at the time of the scrape.
    Gauge,
    /// No `# TYPE` line: treated like a gauge.
    Untyped,
}

impl MetricKind {
    /// `counter`, `gauge` or `untyped` (the `kind` column of `server_metrics`).
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Untyped => "untyped",
        }
    }

    /// The kind named `s` (see [`MetricKind::name`]).
    pub fn parse(s: &str) -> Option<MetricKind> {
        match s {
            "counter" => Some(MetricKind::Counter),
            "gauge" => Some(MetricKind::Gauge),
            "untyped" => Some(MetricKind::Untyped),
            _ => None,
        }
    }
}

/// One reading of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricReading {
    /// Metric name as published (e.g. `llamacpp:requests_processing`).
    pub name: String,
    /// Labels as a canonical string: `k=v` pairs sorted by key, joined by `,` (empty without
    /// labels).
    pub labels: String,
    /// Counter, gauge or untyped.
    pub kind: MetricKind,
    /// The value.
    pub value: f64,
}

/// Stands in for `:` in metric names while the crate parses (a letter, so `\w` accepts it;
/// never in a valid metric name, which is ASCII).
const COLON_STAND_IN: char = 'ː';

/// The line with `:` in its metric name swapped for [`COLON_STAND_IN`]: the name token of a
/// sample line, or of a `# HELP` / `# TYPE` line.
fn protect_colons(line: &str) -> String {
    let t = line.trim_start();
    let (prefix, rest) = if let Some(r) = t
        .strip_prefix('#')
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix("HELP").or_else(|| r.strip_prefix("TYPE")))
    {
        let body = r.trim_start();
        (&t[..t.len() - body.len()], body)
    } else if t.starts_with('#') {
        return line.to_owned();
    } else {
        ("", t)
    };
    let end = rest
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(rest.len());
    let name = rest[..end].replace(':', &COLON_STAND_IN.to_string());
    format!("{prefix}{name}{}", &rest[end..])
}

/// Every reading of an exposition text. Histogram and summary `_sum`/`_count` series become
/// counters; buckets, quantiles and values that are not finite are dropped. Readings are
/// sorted by name and labels.
pub fn parse_metrics(text: &str) -> Vec<MetricReading> {
    use prometheus_parse::{Scrape, Value};
    let lines = text.lines().map(|l| Ok(protect_colons(l)));
    let Ok(scrape) = Scrape::parse(lines) else {
        return Vec::new();
    };
    let restore = |s: &str| s.replace(COLON_STAND_IN, ":");
    // Histograms and summaries: their `_sum` and `_count` arrive untyped.
    let grouped: BTreeSet<String> = scrape
        .samples
        .iter()
        .filter(|s| matches!(s.value, Value::Histogram(_) | Value::Summary(_)))
        .map(|s| s.metric.clone())
        .collect();
    let mut out: Vec<MetricReading> = scrape
        .samples
        .iter()
        .filter_map(|s| {
            let (kind, value) = match s.value {
                Value::Counter(v) => (MetricKind::Counter, v),
                Value::Gauge(v) => (MetricKind::Gauge, v),
                Value::Untyped(v) => {
                    let base = s
                        .metric
                        .strip_suffix("_sum")
                        .or_else(|| s.metric.strip_suffix("_count"));
                    match base {
                        Some(b) if grouped.contains(b) => (MetricKind::Counter, v),
                        _ => (MetricKind::Untyped, v),
                    }
                }
                Value::Histogram(_) | Value::Summary(_) => return None,
            };
            if !value.is_finite() {
                return None;
            }
            let mut labels: Vec<(&String, &String)> = s.labels.iter().collect();
            labels.sort();
            let labels = labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            Some(MetricReading {
                name: restore(&s.metric),
                labels,
                kind,
                value,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(r: &'a [MetricReading], name: &str) -> &'a MetricReading {
        r.iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {r:?}"))
    }

    /// What llama.cpp's `llama-server --metrics` published after one 16-token completion
    /// (captured from the binary that `scripts/install-llama-server.sh` builds).
    #[test]
    fn a_real_llama_server_exposition_parses_with_its_colon_names() {
        let r = parse_metrics(include_str!("testdata/llama-server-metrics.txt"));
        assert_eq!(r.len(), 15, "{r:?}");
        let m = find(&r, "llamacpp:tokens_predicted_total");
        assert_eq!(
            (m.kind, m.value, m.labels.as_str()),
            (MetricKind::Counter, 16.0, "")
        );
        assert_eq!(find(&r, "llamacpp:prompt_tokens_total").value, 26.0);
        assert_eq!(find(&r, "llamacpp:n_decode_total").value, 18.0);
        let m = find(&r, "llamacpp:requests_processing");
        assert_eq!((m.kind, m.value), (MetricKind::Gauge, 0.0));
        assert_eq!(
            find(&r, "llamacpp:requests_deferred").kind,
            MetricKind::Gauge
        );
        assert_eq!(find(&r, "llamacpp:predicted_tokens_seconds").value, 39.5133);
        assert_eq!(find(&r, "llamacpp:n_busy_slots_per_decode").value, 1.0);
        assert!(r.iter().all(|m| m.name.starts_with("llamacpp:")));
    }

    /// A vLLM-shaped exposition (names and labels as vLLM publishes them, values made up).
    #[test]
    fn a_vllm_exposition_keeps_labels_and_histogram_sum_and_count() {
        let r = parse_metrics(include_str!("testdata/vllm-metrics.txt"));
        let m = find(&r, "vllm:num_requests_running");
        assert_eq!(m.labels, "model_name=google/gemma-3-270m");
        assert_eq!((m.kind, m.value), (MetricKind::Gauge, 3.0));
        assert_eq!(find(&r, "vllm:num_requests_waiting").value, 1.0);
        let m = find(&r, "vllm:kv_cache_usage_perc");
        assert_eq!(m.labels, "engine=0,model_name=google/gemma-3-270m");
        assert_eq!(m.value, 0.25);
        let m = find(&r, "vllm:time_to_first_token_seconds_sum");
        assert_eq!((m.kind, m.value), (MetricKind::Counter, 2.5));
        let m = find(&r, "vllm:time_to_first_token_seconds_count");
        assert_eq!((m.kind, m.value), (MetricKind::Counter, 10.0));
        assert!(!r.iter().any(|m| m.name.contains("bucket")));
        assert!(
            !r.iter()
                .any(|m| m.name == "vllm:time_to_first_token_seconds")
        );
        assert_eq!(
            find(&r, "python_gc_objects_collected_total").labels,
            "generation=0"
        );
        assert_eq!(r.len(), 8, "{r:?}");
    }

    /// Without the stand-in the crate reads `llamacpp` as the name and drops every line.
    #[test]
    fn the_crate_alone_misses_colon_names() {
        let text = include_str!("testdata/llama-server-metrics.txt");
        let raw = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())));
        assert!(raw.is_ok_and(|s| s.samples.is_empty()));
        assert_eq!(
            protect_colons("# TYPE a:b counter"),
            format!("# TYPE a{COLON_STAND_IN}b counter")
        );
        assert_eq!(
            protect_colons("x:y{k=\"a:b\"} 1"),
            format!("x{COLON_STAND_IN}y{{k=\"a:b\"}} 1")
        );
    }

    #[test]
    fn untyped_lines_and_garbage() {
        let r = parse_metrics("a:b 1\nnot a metric line at all {\nc 2.5 1700000000000\n");
        assert_eq!(find(&r, "a:b").kind, MetricKind::Untyped);
        assert_eq!(find(&r, "c").value, 2.5);
        assert!(parse_metrics("<html>404</html>").is_empty());
        assert_eq!(MetricKind::parse("counter"), Some(MetricKind::Counter));
        assert_eq!(
            MetricKind::parse(MetricKind::Untyped.name()),
            Some(MetricKind::Untyped)
        );
    }
}
