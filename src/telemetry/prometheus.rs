//! Prometheus text exposition (a server's `/metrics`) → flat readings, through the
//! `prometheus-parse` crate.
//!
//! Counters, gauges and untyped samples are kept as they are; of a histogram or a summary only
//! the `_sum` and `_count` series are kept (as counters: both only grow), the buckets and
//! quantiles are dropped, and so are the `_created` timestamps that the Python client adds.
//! The crate falls short in three ways that are made up for here:
//! - its name pattern (`\w+`) does not accept the `:` that the exposition format allows in
//!   metric names and that llama-server (`llamacpp:…`) and vLLM (`vllm:…`) use, so the name
//!   token of each line has its `:` swapped for a stand-in letter before parsing and back after;
//! - it splits labels on every `,` and `=`, ends them at the first `}` and never unescapes, so
//!   a line whose label values hold one of those or an escape has its labels parsed here, and
//!   the crate gets a stand-in label that points to them; a series published twice in one
//!   scrape keeps its first reading;
//! - it types a sample only by its own name, so `_total`, `_sum`, `_count` and `_created`
//!   take their base name's `# TYPE` here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Label pairs (name, unescaped value) in the order published.
type Pairs = Vec<(String, String)>;

/// The label key that stands in, for the crate, for a label block chimera parses itself (its
/// value is the index of the parsed pairs). Not ASCII, so never a real label name.
const LABELS_REF: &str = "ːref";

/// The `# TYPE` lines of an exposition text: metric name as published → type word.
fn declared_types(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter_map(|l| {
            let mut t = l.split_whitespace();
            (t.next()? == "#" && t.next()? == "TYPE").then_some(())?;
            Some((t.next()?, t.next()?))
        })
        .collect()
}

/// Parses the label pairs that follow a sample's `{`, through its `}` (values in double
/// quotes, with the `\\`, `\"` and `\n` escapes of the text format). Returns the pairs, the
/// bytes read and whether the crate would misread them: it splits on every `,` and `=`, ends
/// the block at the first `}` and never unescapes, so a value that holds one of those or an
/// escape is cut short (and two series can end up with the same labels). `None`: malformed.
fn parse_labels(s: &str) -> Option<(Pairs, usize, bool)> {
    let mut pairs = Vec::new();
    let mut tricky = false;
    let mut chars = s.char_indices().peekable();
    loop {
        while chars
            .next_if(|&(_, c)| c == ',' || c.is_whitespace())
            .is_some()
        {}
        let (i, c) = chars.next()?;
        if c == '}' {
            return Some((pairs, i + 1, tricky));
        }
        let mut key = String::from(c);
        loop {
            match chars.next()?.1 {
                '=' => break,
                c => key.push(c),
            }
        }
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()?.1 {
                '"' => break,
                '\\' => {
                    tricky = true;
                    match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        c => {
                            value.push('\\');
                            value.push(c);
                        }
                    }
                }
                c => {
                    tricky |= matches!(c, ',' | '=' | '}');
                    value.push(c);
                }
            }
        }
        pairs.push((key.trim().to_owned(), value));
    }
}

/// The line as the crate gets it: `:` in the metric name swapped (see [`protect_colons`]),
/// and a label block that the crate would misread (see [`parse_labels`]) parsed here, pushed
/// to `own` and replaced by `{ːref="<index>"}`.
fn prepare_line(line: &str, own: &mut Vec<Pairs>) -> String {
    let line = protect_colons(line);
    let t = line.trim_start();
    if t.starts_with('#') {
        return line;
    }
    let Some(open) = t.find(|c: char| c == '{' || c.is_whitespace()) else {
        return line;
    };
    if !t[open..].starts_with('{') {
        return line;
    }
    match parse_labels(&t[open + 1..]) {
        Some((pairs, len, true)) => {
            own.push(pairs);
            let rest = &t[open + 1 + len..];
            format!("{}{{{LABELS_REF}=\"{}\"}}{rest}", &t[..open], own.len() - 1)
        }
        _ => line,
    }
}

/// Labels as a canonical string: `k=v` sorted by key, joined by `,`; a value that holds `,`,
/// `=`, `"`, `\\` or a line break is written in double quotes with `\\`, `\"` and `\n`
/// escapes, so that distinct label sets never read the same.
fn canonical<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = pairs.collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            if v.contains([',', '=', '"', '\\', '\n']) {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The kind of sample `name` (as published) that the crate read as `value`, given the
/// text's `# TYPE` lines; `None` for what is dropped. The crate types a sample only by its own
/// name, so a series named after its base gets its base's type here: `_total` of a counter
/// (counter); `_sum` and `_count` of a histogram or summary (counters: both only grow); and
/// `_created` of a counter, histogram or summary (the Python client's creation timestamp, not
/// a level) is dropped, like the buckets and quantiles.
fn kind_of(
    name: &str,
    value: &prometheus_parse::Value,
    types: &HashMap<&str, &str>,
) -> Option<MetricKind> {
    use prometheus_parse::Value;
    match value {
        Value::Counter(_) => return Some(MetricKind::Counter),
        Value::Gauge(_) => return Some(MetricKind::Gauge),
        Value::Histogram(_) | Value::Summary(_) => return None,
        Value::Untyped(_) => {}
    }
    let base_type = |suffix: &str| {
        name.strip_suffix(suffix)
            .and_then(|b| types.get(b).copied())
    };
    if matches!(
        base_type("_created"),
        Some("counter" | "histogram" | "summary")
    ) {
        return None;
    }
    let grouped = base_type("_sum").or_else(|| base_type("_count"));
    if matches!(grouped, Some("histogram" | "summary")) || base_type("_total") == Some("counter") {
        return Some(MetricKind::Counter);
    }
    Some(MetricKind::Untyped)
}

/// Whether a repeated series has been logged (once per process).
static WARNED_REPEATED: AtomicBool = AtomicBool::new(false);

/// `out` sorted by name and labels, each series once: of a series published more than once
/// in one scrape (an exposition error) the first reading is kept, with one warning.
fn first_of_each(mut out: Vec<MetricReading>) -> Vec<MetricReading> {
    // Stable: of equal series, the one published first stays first.
    out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    let before = out.len();
    out.dedup_by(|later, first| later.name == first.name && later.labels == first.labels);
    if out.len() < before && !WARNED_REPEATED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "server metrics: {} series published more than once in one scrape; the first \
             reading of each is kept (further repeats are not logged)",
            before - out.len()
        );
    }
    out
}

/// Every reading of an exposition text. Histogram and summary `_sum`/`_count` series become
/// counters; buckets, quantiles, `_created` timestamps and values that are not finite are
/// dropped. Readings are sorted by name and labels, each series once.
pub fn parse_metrics(text: &str) -> Vec<MetricReading> {
    use prometheus_parse::{Scrape, Value};
    let types = declared_types(text);
    let mut own: Vec<Pairs> = Vec::new();
    let lines: Vec<String> = text.lines().map(|l| prepare_line(l, &mut own)).collect();
    let Ok(scrape) = Scrape::parse(lines.into_iter().map(Ok)) else {
        return Vec::new();
    };
    let restore = |s: &str| s.replace(COLON_STAND_IN, ":");
    let out: Vec<MetricReading> = scrape
        .samples
        .iter()
        .filter_map(|s| {
            let name = restore(&s.metric);
            let kind = kind_of(&name, &s.value, &types)?;
            let (Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value)) = s.value
            else {
                return None;
            };
            if !value.is_finite() {
                return None;
            }
            let parsed_here = s
                .labels
                .get(LABELS_REF)
                .and_then(|i| own.get(i.parse::<usize>().ok()?));
            let labels = match parsed_here {
                Some(pairs) => canonical(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                None => canonical(s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            };
            Some(MetricReading {
                name,
                labels,
                kind,
                value,
            })
        })
        .collect();
    first_of_each(out)
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
    /// The Python client's `_created` timestamps are dropped; `_total` of a counter, and
    /// `_sum`/`_count` of a summary without quantile lines, take their base name's type.
    #[test]
    fn created_series_are_dropped_and_suffixes_take_their_base_type() {
        let text = "# TYPE req counter\nreq_total 5.0\nreq_created 1.7e9\n\
                    # TYPE lat summary\nlat_sum 2.5\nlat_count 10.0\nlat_created 1.7e9\n\
                    # TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_sum 1\nh_count 3\nh_created 1.7e9\n\
                    # TYPE g gauge\ng 1\nobjects_created 4\n";
        let r = parse_metrics(text);
        let kinds: Vec<(&str, MetricKind)> = r.iter().map(|m| (m.name.as_str(), m.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("g", MetricKind::Gauge),
                ("h_count", MetricKind::Counter),
                ("h_sum", MetricKind::Counter),
                ("lat_count", MetricKind::Counter),
                ("lat_sum", MetricKind::Counter),
                // No `# TYPE objects`: not a timestamp of a typed series, kept.
                ("objects_created", MetricKind::Untyped),
                ("req_total", MetricKind::Counter),
            ]
        );
        assert_eq!(find(&r, "req_total").value, 5.0);
    }

    /// Label values with `,`, `=`, `}` and escapes: the crate alone merges two series (both
    /// read as `b=c,path=/a`); here each keeps its own labels, unescaped, and a series
    /// published twice in one scrape keeps its first reading.
    #[test]
    fn label_values_with_separators_and_escapes_keep_series_apart() {
        let text = "# TYPE m gauge\n\
                    m{path=\"/a,b=c\"} 1\n\
                    m{b=\"c\",path=\"/a\"} 2\n\
                    m{k=\"x\\\"y\\\\z}\\nw\"} 3\n\
                    m{b=\"c\",path=\"/a\"} 9\n\
                    m:x{k=\"v\"} 4\n";
        let raw = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("parses");
        let naive: Vec<String> = raw.samples.iter().map(|s| s.labels.to_string()).collect();
        assert_eq!(naive[0], naive[1], "the crate alone merges them: {naive:?}");
        let r = parse_metrics(text);
        let got: Vec<(&str, &str, f64)> = r
            .iter()
            .map(|m| (m.name.as_str(), m.labels.as_str(), m.value))
            .collect();
        assert_eq!(
            got,
            [
                ("m", "b=c,path=/a", 2.0),
                ("m", "k=\"x\\\"y\\\\z}\\nw\"", 3.0),
                ("m", "path=\"/a,b=c\"", 1.0),
                ("m:x", "k=v", 4.0),
            ]
        );
        let (pairs, len, tricky) = parse_labels("k=\"x\\\"y\\\\z}\\nw\"} 3").expect("labels");
        assert_eq!(pairs, [("k".to_owned(), "x\"y\\z}\nw".to_owned())]);
        assert_eq!((len, tricky), (16, true));
        assert_eq!(parse_labels("a=\"1\",b=\"2\"}").map(|p| p.2), Some(false));
        assert_eq!(parse_labels("a=1}"), None);
    }
}
