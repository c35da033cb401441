//! Number and text formatting shared by the Markdown and the SVG output.
//!
//! Every number in a report goes through these helpers, so a quantity always has the same
//! number of decimals: 3 for percentages, speedups and tokens per joule, 2 for tok/s and
//! seconds, 1 for milliseconds and watts. A missing value (or one that is not a finite
//! number) renders as "—"; a value that rounds to zero never renders as "-0.000".

/// What a missing value renders as.
pub(crate) const DASH: &str = "—";

/// `x` with `dec` decimals; "—" when `x` is not finite; no negative zero.
pub(crate) fn fixed(x: f64, dec: usize) -> String {
    if !x.is_finite() {
        return DASH.to_owned();
    }
    let s = format!("{x:.dec$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_owned(),
        _ => s,
    }
}

/// [`fixed`] of an optional value.
pub(crate) fn opt(x: Option<f64>, dec: usize) -> String {
    x.map_or_else(|| DASH.to_owned(), |x| fixed(x, dec))
}

/// `x` with an explicit sign ("+1.200", "-0.300", "0.000").
pub(crate) fn signed(x: f64, dec: usize) -> String {
    let s = fixed(x, dec);
    if s == DASH || s.starts_with('-') || s.chars().all(|c| c == '0' || c == '.') {
        s
    } else {
        format!("+{s}")
    }
}

/// [`signed`] of an optional value.
pub(crate) fn opt_signed(x: Option<f64>, dec: usize) -> String {
    x.map_or_else(|| DASH.to_owned(), |x| signed(x, dec))
}

/// `x` with at most `max_dec` decimals, trailing zeros removed ("0.0005", "2", "1.25").
pub(crate) fn trimmed(x: f64, max_dec: usize) -> String {
    let s = fixed(x, max_dec);
    if s == DASH || !s.contains('.') {
        return s;
    }
    let t = s.trim_end_matches('0').trim_end_matches('.');
    if t.is_empty() || t == "-" {
        "0".to_owned()
    } else {
        t.to_owned()
    }
}

/// The decimals a value of `metric` is shown with, from the metric's name.
pub(crate) fn metric_decimals(metric: &str) -> usize {
    let m = metric.to_ascii_lowercase();
    if m.contains("tok_s") || m.contains("throughput") {
        2
    } else if m.ends_with("_ms") || m.contains("ttft") || m.ends_with("_w") || m.contains("power") {
        // Milliseconds and watts.
        1
    } else if m.ends_with("_s") {
        2
    } else {
        // Percentages, efficiencies, speedups, tokens per joule, ratios.
        3
    }
}

/// The decimals a value in `unit` is shown with.
pub(crate) fn unit_decimals(unit: &str) -> Option<usize> {
    match unit.trim() {
        "%" | "pp" | "x" | "×" | "tok/J" | "tokens/J" => Some(3),
        "tok/s" | "tokens/s" | "s" => Some(2),
        "ms" | "W" => Some(1),
        _ => None,
    }
}

/// How many decimals `x` was written with (its shortest round-trip form), at most 6.
pub(crate) fn written_decimals(x: f64) -> usize {
    if !x.is_finite() {
        return 0;
    }
    let s = format!("{x}");
    if s.contains('e') {
        return 6;
    }
    s.split_once('.').map_or(0, |(_, frac)| frac.len().min(6))
}

/// A value with its unit ("98.281 %", "1.969 x", "12"); no unit, no space.
pub(crate) fn with_unit(value: &str, unit: &str) -> String {
    let unit = unit.trim();
    if unit.is_empty() || value == DASH {
        value.to_owned()
    } else {
        format!("{value} {unit}")
    }
}

/// A p-value: 4 decimals, or "< 0.0001".
pub(crate) fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p.is_finite() && p < 0.0001 => "< 0.0001".to_owned(),
        other => opt(other, 4),
    }
}

/// Text for a Markdown table cell: `|` escaped, line breaks as `<br>`.
pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

/// Text inline in Markdown (a list item, a sentence): line breaks become spaces.
pub(crate) fn inline(s: &str) -> String {
    s.replace("\r\n", " ").replace(['\n', '\r'], " ")
}

/// Text as inline code; falls back to plain text when it holds a backtick.
pub(crate) fn code(s: &str) -> String {
    if s.contains('`') || s.is_empty() {
        inline(s)
    } else {
        format!("`{}`", inline(s))
    }
}

/// A report id made safe as a file name: ASCII letters, digits, `_` and `-` kept, anything
/// else replaced by `_`.
pub(crate) fn file_stem(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "report".to_owned() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_has_no_negative_zero_and_dashes_non_finite() {
        assert_eq!(fixed(-0.0001, 3), "0.000");
        assert_eq!(fixed(-0.0, 1), "0.0");
        assert_eq!(fixed(-1.25, 1), "-1.2");
        assert_eq!(fixed(98.2814, 3), "98.281");
        assert_eq!(fixed(f64::NAN, 3), DASH);
        assert_eq!(fixed(f64::INFINITY, 3), DASH);
        assert_eq!(opt(None, 2), DASH);
    }

    #[test]
    fn signed_and_trimmed() {
        assert_eq!(signed(1.2, 3), "+1.200");
        assert_eq!(signed(-0.3, 1), "-0.3");
        assert_eq!(signed(-0.00001, 3), "0.000");
        assert_eq!(trimmed(0.0005, 5), "0.0005");
        assert_eq!(trimmed(2.0, 3), "2");
        assert_eq!(trimmed(-0.00001, 3), "0");
        assert_eq!(trimmed(f64::NAN, 3), DASH);
    }

    #[test]
    fn decimals_follow_metric_and_unit() {
        assert_eq!(metric_decimals("throughput_tok_s"), 2);
        assert_eq!(metric_decimals("ttft_ms"), 1);
        assert_eq!(metric_decimals("published_efficiency_pct"), 3);
        assert_eq!(metric_decimals("wall_s"), 2);
        assert_eq!(unit_decimals("%"), Some(3));
        assert_eq!(unit_decimals("ms"), Some(1));
        assert_eq!(unit_decimals("furlongs"), None);
        assert_eq!(written_decimals(98.281), 3);
        assert_eq!(written_decimals(1501.78), 2);
        assert_eq!(written_decimals(12.0), 0);
        assert_eq!(written_decimals(1e-9), 6);
    }

    #[test]
    fn cells_escape_pipes_and_line_breaks() {
        assert_eq!(cell("a | b\nc\r\nd"), "a \\| b<br>c<br>d");
        assert_eq!(inline("a\nb"), "a b");
        assert_eq!(code("x`y"), "x`y");
        assert_eq!(code("TR114_v2"), "`TR114_v2`");
        assert_eq!(file_stem("TR114_v2"), "TR114_v2");
        assert_eq!(file_stem("../x y"), "___x_y");
        assert_eq!(p_value(Some(0.00001)), "< 0.0001");
        assert_eq!(p_value(Some(0.04321)), "0.0432");
    }
}
