//! Section: what the servers' own Prometheus `/metrics` said while the runs ran (the
//! analysis's `server_metrics`), the well-known series named in words. Nothing is written for
//! a report without server metrics.

use std::fmt::Write as _;

use crate::analysis::model::ReportAnalysis;
use crate::analysis::server_metrics::{ServerMetricStat, ServerMetricsGroup};

use super::format::{DASH, cell, code, inline, trimmed};

/// Decimals of server metric values (at most; trailing zeros dropped).
const DEC: usize = 3;

/// The series named in words, in the order they are shown: llama-server (llama.cpp), vLLM,
/// then the emulator's.
const WELL_KNOWN: &[(&str, &str)] = &[
    ("llamacpp:requests_deferred", "queue (requests deferred)"),
    ("llamacpp:requests_processing", "busy (requests processing)"),
    ("llamacpp:kv_cache_usage_ratio", "KV-cache use (ratio)"),
    ("llamacpp:kv_cache_tokens", "KV-cache tokens"),
    (
        "llamacpp:n_busy_slots_per_decode",
        "busy slots per decode call, since the previous scrape",
    ),
    ("llamacpp:prompt_tokens_total", "prompt tokens processed"),
    ("llamacpp:tokens_predicted_total", "tokens generated"),
    ("llamacpp:n_decode_total", "decode calls"),
    (
        "llamacpp:prompt_tokens_seconds",
        "prompt throughput since the previous scrape (tok/s)",
    ),
    (
        "llamacpp:predicted_tokens_seconds",
        "generation throughput since the previous scrape (tok/s)",
    ),
    ("vllm:num_requests_running", "running requests"),
    ("vllm:num_requests_waiting", "waiting requests (queue)"),
    ("vllm:kv_cache_usage_perc", "KV-cache use (fraction)"),
    ("vllm:gpu_cache_usage_perc", "KV-cache use (fraction)"),
    ("vllm:prompt_tokens_total", "prompt tokens processed"),
    ("vllm:generation_tokens_total", "tokens generated"),
    (
        "chimera_emulator:requests_in_flight",
        "requests in flight (emulator)",
    ),
    (
        "chimera_emulator:requests_completed_total",
        "requests completed (emulator)",
    ),
    (
        "chimera_emulator:tokens_generated_total",
        "tokens generated (emulator)",
    ),
];

/// The words for a well-known series; `None` for the others.
pub(crate) fn words(metric: &str) -> Option<&'static str> {
    WELL_KNOWN
        .iter()
        .find(|(m, _)| *m == metric)
        .map(|(_, w)| *w)
}

fn rank(s: &ServerMetricStat) -> (usize, &str, &str) {
    let i = WELL_KNOWN
        .iter()
        .position(|(m, _)| *m == s.metric)
        .unwrap_or(WELL_KNOWN.len());
    (i, s.metric.as_str(), s.labels.as_str())
}

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| DASH.to_owned(), |v| trimmed(v, DEC))
}

/// Section: the server metrics per configuration and endpoint.
pub(crate) fn section(
    md: &mut String,
    heading: &mut impl FnMut(&mut String, &str),
    r: &ReportAnalysis,
) {
    if r.server_metrics.is_empty() {
        return;
    }
    heading(md, "Server metrics");
    md.push_str("These numbers are the servers' own: read from each endpoint's Prometheus `/metrics` (manifest key `server_metrics`), scraped at the start of every run, every `interval_ms` while it ran and at its end. They are what the server counted, not what chimera measured at the client. A gauge's mean and peak are taken over the scrapes between a run's start and end (those two find the server idle; they are used only when there is none in between), then averaged over the n runs (max: the highest of those readings in any run); a counter's increase over a run is as Prometheus `increase()` computes it (the rises between consecutive scrapes; after a server restart the counter counts from 0, and so does a series that appears during the run), averaged over the n runs. llama-server computes its `…_seconds` throughputs and its busy slots per decode over the time since the previous scrape (each scrape resets them).\n");
    let emulated: Vec<String> = endpoints(&r.server_metrics, |g| {
        g.server_kind.as_deref() == Some("emulator")
    });
    if !emulated.is_empty() {
        let _ = writeln!(
            md,
            "\nEndpoint {} is served by chimera's emulator: its metrics are the emulator's own bookkeeping of its fixed token schedule, not the measurements of an LLM server.",
            emulated.join(", ")
        );
    }
    for g in &r.server_metrics {
        group(md, g);
    }
}

/// The ids (as code) of the endpoints whose groups satisfy `f`, each once.
fn endpoints(gs: &[ServerMetricsGroup], f: impl Fn(&ServerMetricsGroup) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in gs.iter().filter(|g| f(g)) {
        let c = code(&g.endpoint);
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn group(md: &mut String, g: &ServerMetricsGroup) {
    let _ = write!(
        md,
        "\n### {} · endpoint {}\n\n",
        code(&g.config),
        code(&g.endpoint)
    );
    let server = g
        .server_kind
        .as_deref()
        .map_or_else(String::new, |k| format!(" (server: {})", inline(k)));
    let gaps = match g.gaps {
        0 => String::new(),
        1 => ", 1 scrape failed (a gap)".to_owned(),
        n => format!(", {n} scrapes failed (gaps)"),
    };
    let _ = writeln!(
        md,
        "{} {}{server}, {} scrapes answered{gaps}.\n",
        g.runs,
        if g.runs == 1 { "run" } else { "runs" },
        g.scrapes
    );
    if g.metrics.is_empty() {
        md.push_str("No scrape answered: no reading.\n");
        return;
    }
    md.push_str("| Series | Metric | Kind | n | Mean | Peak | Max | Increase per run |\n");
    md.push_str("|---|---|---|--:|--:|--:|--:|--:|\n");
    let mut rows: Vec<&ServerMetricStat> = g.metrics.iter().collect();
    rows.sort_by(|a, b| rank(a).cmp(&rank(b)));
    for s in rows {
        let name = if s.labels.is_empty() {
            s.metric.clone()
        } else {
            format!("{}{{{}}}", s.metric, s.labels)
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            words(&s.metric).unwrap_or(""),
            cell(&code(&name)),
            cell(&inline(&s.kind)),
            s.n,
            num(s.mean),
            num(s.peak),
            num(s.max),
            num(s.increase)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_series_have_words_and_come_first() {
        assert_eq!(
            words("llamacpp:requests_deferred"),
            Some("queue (requests deferred)")
        );
        assert_eq!(
            words("vllm:num_requests_waiting"),
            Some("waiting requests (queue)")
        );
        assert_eq!(words("llamacpp:n_tokens_max"), None);
        let s = |m: &str| ServerMetricStat {
            metric: m.into(),
            labels: String::new(),
            kind: "gauge".into(),
            n: 1,
            mean: Some(0.5),
            peak: Some(1.0),
            max: Some(1.0),
            increase: None,
        };
        let g = ServerMetricsGroup {
            config: "c1".into(),
            endpoint: "llama_a".into(),
            server_kind: Some("emulator".into()),
            runs: 1,
            scrapes: 3,
            gaps: 2,
            metrics: vec![
                s("aaa_other"),
                s("llamacpp:requests_processing"),
                s("llamacpp:requests_deferred"),
            ],
        };
        let mut md = String::new();
        group(&mut md, &g);
        let q = md.find("queue (requests deferred)").expect("queue row");
        let b = md.find("busy (requests processing)").expect("busy row");
        let o = md.find("aaa_other").expect("other row");
        assert!(q < b && b < o, "{md}");
        assert!(md.contains("2 scrapes failed (gaps)"), "{md}");
        assert!(md.contains("| 0.5 | 1 | 1 | — |"), "{md}");
    }

    /// A `|` in a label value is escaped in its table cell (the row keeps its 8 columns); a
    /// line break never reaches the Markdown.
    #[test]
    fn a_pipe_in_a_label_value_stays_in_its_cell() {
        let g = ServerMetricsGroup {
            config: "c|1".into(),
            endpoint: "e\nx".into(),
            server_kind: Some("openai\n# h".into()),
            runs: 1,
            scrapes: 2,
            gaps: 0,
            metrics: vec![ServerMetricStat {
                metric: "m".into(),
                labels: "path=a|b\nc".into(),
                kind: "gauge".into(),
                n: 1,
                mean: Some(1.0),
                peak: Some(1.0),
                max: Some(1.0),
                increase: None,
            }],
        };
        let mut md = String::new();
        group(&mut md, &g);
        let row = md.lines().find(|l| l.contains("path=")).expect("row");
        assert_eq!(
            row, "|  | `m{path=a\\|b c}` | gauge | 1 | 1 | 1 | 1 | — |",
            "{md}"
        );
        assert_eq!(row.replace("\\|", "").matches('|').count(), 9, "{row}");
        assert!(!md.contains("<br>") && !md.contains("\n# h"), "{md}");
    }
}
