//! What the Rust harnesses took out of the analysis response before the report call.
//!
//! A line-for-line port of `extract_summary_section`, `clean_bullet`,
//! `extract_lines_with_keywords` and `parse_analysis_response` of
//! `src/rust/demo_agent/src/main.rs` and `src/rust/demo_multiagent/src/main.rs`
//! (identical in both harnesses).

use serde::Serialize;

/// Keywords that make a line a key finding (`parse_analysis_response`).
pub const FINDING_KEYWORDS: [&str; 4] = ["finding", "insight", "discovery", "key"];
/// Keywords that make a line a recommendation (`parse_analysis_response`).
pub const RECOMMENDATION_KEYWORDS: [&str; 4] = ["recommend", "suggest", "should", "consider"];
/// Most findings / recommendations kept.
pub const KEYWORD_LINE_LIMIT: usize = 10;

/// What the report call is built from (the harness's `AnalysisPayload` minus the metrics,
/// which come from the ingest, not from the response).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extracted {
    /// The executive-summary section (or the first 5 lines).
    pub summary: String,
    /// Up to 10 lines mentioning a finding.
    pub key_findings: Vec<String>,
    /// Up to 10 lines mentioning a recommendation.
    pub recommendations: Vec<String>,
}

/// Runs all three extractions on one analysis response.
pub fn extract(response: &str) -> Extracted {
    Extracted {
        summary: summary_section(response),
        key_findings: lines_with_keywords(response, &FINDING_KEYWORDS, KEYWORD_LINE_LIMIT),
        recommendations: lines_with_keywords(
            response,
            &RECOMMENDATION_KEYWORDS,
            KEYWORD_LINE_LIMIT,
        ),
    }
}

/// `extract_summary_section`: the trimmed lines after the first line whose lowercase text
/// contains `executive summary` or equals `summary`, up to the next line starting with `#`,
/// blank lines dropped, joined with `\n`. When that yields nothing, the first 5 lines of the
/// response, each trimmed (blank ones kept).
///
/// As in the original, a later line that again mentions "executive summary" is skipped
/// (not collected) and does not end the section; only a `#` line does.
pub fn summary_section(response: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut in_summary = false;
    for line in response.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() && in_summary {
            lines.push(String::new());
            continue;
        }
        let lower = trimmed.to_lowercase();
        if lower.contains("executive summary") || lower == "summary" {
            in_summary = true;
            continue;
        }
        if in_summary && trimmed.starts_with('#') {
            break;
        }
        if in_summary {
            lines.push(trimmed.to_string());
        }
    }
    if lines.is_empty() {
        response
            .lines()
            .take(5)
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        lines
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `clean_bullet`: strips leading `-`, `*`, `•`, then leading ASCII digits, `.` and `)`,
/// then surrounding whitespace. (So `* 1. x` keeps `1. x`, since the space stops the digit
/// stripping, and a number opening a sentence is eaten, exactly as in the original.)
pub fn clean_bullet(line: &str) -> String {
    let trimmed = line.trim_start_matches(['-', '*', '•']);
    trimmed
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ')')
        .trim()
        .to_string()
}

/// `extract_lines_with_keywords`: non-blank lines not starting with `#` whose lowercase
/// text contains any keyword (substring match: `key` matches `keyboard`, `monkey`), passed
/// through [`clean_bullet`], at most `limit`.
pub fn lines_with_keywords(response: &str, keywords: &[&str], limit: usize) -> Vec<String> {
    let mut matches = Vec::new();
    if limit == 0 {
        return matches;
    }
    for line in response.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let lower = trimmed.to_lowercase();
        if keywords.iter().any(|kw| lower.contains(kw)) {
            matches.push(clean_bullet(trimmed));
            if matches.len() >= limit {
                break;
            }
        }
    }
    matches
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the gemma3 analyses recorded in the TR111_v2 / TR114_v2 runs.
    const ANSWER: &str = "Okay, here's a structured performance analysis of the provided benchmark data.\n\
\n\
**1. Executive Summary**\n\
\n\
This analysis examines a dataset of 101 benchmark files.\n\
The data reveals a significant concentration of Gemma 3 parameter tuning files.\n\
\n\
**2. Key Performance Findings**\n\
\n\
* **Recency:** The latest modification date of 2025-11-14 suggests current data.\n\
* **File Type Distribution:** JSON files dominate (44 of 101).\n\
\n\
## 3. Performance Metrics Analysis\n\
\n\
- Throughput should be measured per model.\n\
\n\
## 4. Recommendations for Optimization\n\
\n\
1. **Standardize naming:** Consider a single repository.\n\
2) We recommend automated benchmarking.\n";

    #[test]
    fn summary_runs_from_the_heading_to_the_next_hash_line() {
        // "**2. Key Performance Findings**" does not start with '#', so it is collected;
        // the section ends at "## 3.".
        assert_eq!(
            summary_section(ANSWER),
            "This analysis examines a dataset of 101 benchmark files.\n\
The data reveals a significant concentration of Gemma 3 parameter tuning files.\n\
**2. Key Performance Findings**\n\
* **Recency:** The latest modification date of 2025-11-14 suggests current data.\n\
* **File Type Distribution:** JSON files dominate (44 of 101)."
        );
    }

    #[test]
    fn summary_heading_variants() {
        assert_eq!(
            summary_section("## Executive Summary\nbody\n# Next\nx"),
            "body"
        );
        // "# Summary" is not exactly "summary": the first five lines instead.
        assert_eq!(
            summary_section("# Summary\nbody\n# Next\nx"),
            "# Summary\nbody\n# Next\nx"
        );
        // Exact "summary" (any case) also opens the section.
        assert_eq!(summary_section("SUMMARY\n  a  \n\nb\n#x"), "a\nb");
        // "## Summary" is not exactly "summary" and has no "executive summary": fallback.
        assert_eq!(
            summary_section("## Summary\nl2\nl3\nl4\nl5\nl6"),
            "## Summary\nl2\nl3\nl4\nl5"
        );
        // The fallback keeps blank lines and trims each line.
        assert_eq!(summary_section("  a \n\n b\n"), "a\n\nb");
        // A heading with nothing after it: fallback to the first five lines.
        assert_eq!(
            summary_section("Executive Summary\n# Next"),
            "Executive Summary\n# Next"
        );
        assert_eq!(summary_section(""), "");
    }

    #[test]
    fn findings_and_recommendations() {
        let e = extract(ANSWER);
        // "Okay" does not contain "key"; the bold heading does and keeps its closing `**`.
        assert_eq!(
            e.key_findings,
            vec!["Key Performance Findings**".to_string()]
        );
        assert_eq!(
            e.recommendations,
            vec![
                "**Recency:** The latest modification date of 2025-11-14 suggests current data."
                    .to_string(),
                "Throughput should be measured per model.".to_string(),
                "**Standardize naming:** Consider a single repository.".to_string(),
                "We recommend automated benchmarking.".to_string(),
            ]
        );
    }

    #[test]
    fn clean_bullet_rules() {
        for (line, want) in [
            ("- item", "item"),
            ("* **Bold:** x", "**Bold:** x"),
            // The space after the bullet stops the digit stripping.
            ("• 3) three", "3) three"),
            ("•3) three", "three"),
            ("12. twelve", "twelve"),
            ("101 files analysed", "files analysed"),
            ("-*-1.2.3) x ", "x"),
            ("plain", "plain"),
        ] {
            assert_eq!(clean_bullet(line), want, "{line:?}");
        }
    }

    #[test]
    fn keyword_lines_are_limited_and_skip_headings() {
        let text = (0..15)
            .map(|i| format!("- key point {i}"))
            .chain(std::iter::once("# key heading".to_string()))
            .collect::<Vec<_>>()
            .join("\n");
        let got = lines_with_keywords(&text, &FINDING_KEYWORDS, 10);
        assert_eq!(got.len(), 10);
        assert_eq!(got[0], "key point 0");
        assert!(lines_with_keywords("# Key\n\n", &FINDING_KEYWORDS, 10).is_empty());
        // Substring, case-insensitive.
        assert_eq!(
            lines_with_keywords("MONKEY business", &FINDING_KEYWORDS, 10),
            vec!["MONKEY business".to_string()]
        );
    }
}
