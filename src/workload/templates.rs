//! Filling the manifest's prompt templates.
//!
//! The default templates of the shipped manifests are the format strings of
//! `build_analysis_prompt` / `build_report_prompt` (`src/rust/demo_agent/src/main.rs`,
//! identical in `demo_multiagent`), with the `format!` arguments turned into placeholders.
//! Filling is one left-to-right pass: text inserted for a placeholder is never scanned
//! again, and an unknown `{name}` (or a lone brace) is left as written.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifest::Options;

use super::extract::Extracted;

/// Replaces every `{name}` whose name `lookup` knows; everything else is copied as is.
pub fn fill(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_end = after.find(['}', '{']);
        match name_end {
            Some(end) if after.as_bytes()[end] == b'}' => {
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of an option placeholder as the harness's `display_opt` printed it
/// (`Display`, or `default` when not sent); `None` for other names.
pub fn option_value(options: &Options, name: &str) -> Option<String> {
    fn show<T: ToString>(v: Option<T>) -> String {
        v.map_or_else(|| "default".to_string(), |v| v.to_string())
    }
    Some(match name {
        "num_gpu" => show(options.num_gpu),
        "num_ctx" => show(options.num_ctx),
        "temperature" => show(options.temperature),
        "top_p" => show(options.top_p),
        "top_k" => show(options.top_k),
        "repeat_penalty" => show(options.repeat_penalty),
        _ => return None,
    })
}

/// Fills an analysis template: `{data_summary}` and the option placeholders.
pub fn fill_analysis(template: &str, data_summary: &str, options: &Options) -> String {
    fill(template, |name| match name {
        "data_summary" => Some(data_summary.to_string()),
        _ => option_value(options, name),
    })
}

/// `build_report_prompt`'s numbered list: `1. a\n2. b`, or `None provided` when empty.
pub fn numbered(items: &[String]) -> String {
    if items.is_empty() {
        "None provided".to_string()
    } else {
        items
            .iter()
            .enumerate()
            .map(|(i, x)| format!("{}. {}", i + 1, x))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `serde_json::to_string_pretty` of the metrics map (two-space indent; keys sorted).
pub fn metrics_json(metrics: &BTreeMap<String, Value>) -> String {
    serde_json::to_string_pretty(metrics).unwrap_or_else(|_| "{}".to_string())
}

/// Fills a report template from what was extracted from the analysis response and the
/// ingest's metrics, plus the option placeholders.
pub fn fill_report(
    template: &str,
    extracted: &Extracted,
    metrics: &BTreeMap<String, Value>,
    options: &Options,
) -> String {
    fill(template, |name| match name {
        "summary" => Some(extracted.summary.clone()),
        "key_findings" => Some(numbered(&extracted.key_findings)),
        "performance_metrics" => Some(metrics_json(metrics)),
        "recommendations" => Some(numbered(&extracted.recommendations)),
        _ => option_value(options, name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_single_pass_and_keeps_unknown_braces() {
        let f = |n: &str| (n == "a").then(|| "{a}{b}".to_string());
        assert_eq!(fill("x{a}y", f), "x{a}{b}y");
        assert_eq!(fill("{b} {a", f), "{b} {a");
        assert_eq!(fill("{{a}}", f), "{{a}{b}}");
        assert_eq!(fill("}{", f), "}{");
        assert_eq!(fill("", f), "");
        assert_eq!(fill("{ä}{a}", f), "{ä}{a}{b}");
    }

    #[test]
    fn options_render_like_display_opt() {
        let o = Options {
            num_gpu: Some(80),
            temperature: Some(0.8),
            top_p: Some(0.9),
            repeat_penalty: Some(1.1),
            ..Options::default()
        };
        let t = "{num_gpu}/{num_ctx}/{temperature}/{top_p}/{top_k}/{repeat_penalty}/{seed}";
        assert_eq!(
            fill_analysis(t, "", &o),
            "80/default/0.8/0.9/default/1.1/{seed}"
        );
        assert_eq!(
            fill_analysis("{data_summary}|{temperature}", "S", &Options::default()),
            "S|default"
        );
        let whole = Options {
            temperature: Some(1.0),
            ..Options::default()
        };
        assert_eq!(fill_analysis("{temperature}", "", &whole), "1");
    }

    #[test]
    fn report_filling() {
        let ex = Extracted {
            summary: "Sum".into(),
            key_findings: vec!["f1".into(), "f2".into()],
            recommendations: vec![],
        };
        let mut m = BTreeMap::new();
        m.insert("total_files_analyzed".to_string(), Value::from(0));
        m.insert("data_types".to_string(), serde_json::json!([]));
        m.insert("csv_tokens_s".to_string(), Value::from(74.0));
        let t = "- Summary: {summary}\n- Key Findings:\n{key_findings}\n- Performance Metrics: {performance_metrics}\n- Recommendations:\n{recommendations}\n{num_ctx}";
        assert_eq!(
            fill_report(t, &ex, &m, &Options::default()),
            "- Summary: Sum\n- Key Findings:\n1. f1\n2. f2\n- Performance Metrics: {\n  \"csv_tokens_s\": 74.0,\n  \"data_types\": [],\n  \"total_files_analyzed\": 0\n}\n- Recommendations:\nNone provided\ndefault"
        );
    }
}
