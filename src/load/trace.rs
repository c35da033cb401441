//! A request trace to replay: one JSON object per line with the request's send time and its
//! prompt and reply lengths, e.g. `{"timestamp": 1250, "input_length": 512, "output_length":
//! 64}` (milliseconds; the format of the public serving traces that other load tools replay).
//! Times are taken relative to the first request; blank lines and lines starting with `#`
//! are skipped; any other line that does not parse is an error naming its line number.

use serde::{Deserialize, Serialize};

/// One request of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// Send time, ms after the trace's first request.
    pub at_ms: f64,
    /// Prompt length, tokens.
    pub input_tokens: u32,
    /// Reply length, tokens.
    pub output_tokens: u32,
}

#[derive(Deserialize)]
struct Line {
    timestamp: f64,
    input_length: u32,
    output_length: u32,
}

/// Why a trace cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A line that is not a trace entry.
    #[error(
        "{file}:{line}: {why} (each line: {{\"timestamp\": MS, \"input_length\": TOKENS, \"output_length\": TOKENS}})"
    )]
    Line {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// No entry at all.
    #[error("{0}: the trace holds no request")]
    Empty(String),
}

/// The entries of a trace text (`file` names it in errors), in order of their times, the
/// first at 0.
pub fn parse(file: &str, text: &str) -> Result<Vec<TraceEntry>, TraceError> {
    let mut out = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let err = |why: String| TraceError::Line {
            file: file.to_owned(),
            line: k + 1,
            why,
        };
        let l: Line = serde_json::from_str(t).map_err(|e| err(e.to_string()))?;
        if !l.timestamp.is_finite() || l.timestamp < 0.0 {
            return Err(err(format!(
                "timestamp {} is not a time in ms",
                l.timestamp
            )));
        }
        if l.input_length == 0 || l.output_length == 0 {
            return Err(err(
                "input_length and output_length must be at least 1".into()
            ));
        }
        out.push(TraceEntry {
            at_ms: l.timestamp,
            input_tokens: l.input_length,
            output_tokens: l.output_length,
        });
    }
    if out.is_empty() {
        return Err(TraceError::Empty(file.to_owned()));
    }
    out.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let first = out[0].at_ms;
    for e in &mut out {
        e.at_ms -= first;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_is_read_relative_to_its_first_request() {
        let text = "# a trace\n{\"timestamp\": 1500, \"input_length\": 10, \"output_length\": 5}\n\n{\"timestamp\": 1000, \"input_length\": 20, \"output_length\": 8, \"hash_ids\": [1]}\n";
        let t = parse("t.jsonl", text).expect("trace");
        assert_eq!(
            t,
            vec![
                TraceEntry {
                    at_ms: 0.0,
                    input_tokens: 20,
                    output_tokens: 8
                },
                TraceEntry {
                    at_ms: 500.0,
                    input_tokens: 10,
                    output_tokens: 5
                },
            ]
        );
        let e = parse("t.jsonl", "{\"timestamp\": 1}\n").expect_err("missing lengths");
        assert!(e.to_string().starts_with("t.jsonl:1: missing field"), "{e}");
        let e = parse(
            "t.jsonl",
            "{\"timestamp\": -1, \"input_length\": 1, \"output_length\": 1}",
        )
        .expect_err("negative");
        assert!(e.to_string().contains("not a time"), "{e}");
        assert!(matches!(
            parse("t.jsonl", "\n# none\n"),
            Err(TraceError::Empty(_))
        ));
    }
}
