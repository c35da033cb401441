//! The TR108 CSVs read with the `csv` crate: quoted fields, doubled quotes, CRLF, newlines
//! inside quotes, records of any length. Every record keeps the line it starts on, for error
//! messages.

/// One record: the 1-based line it starts on, and its fields.
pub(super) type Record = (usize, Vec<String>);

/// Appended to the text to tell a quote left open at the end of the file: after a closed
/// record it reads as one more record holding just the marker; inside an open quote the
/// newline joins the open field, so no record equals the marker alone.
const OPEN_QUOTE_PROBE: &str = "\n\"\u{0}open-quote-probe";

/// Parses `text` into records, empty lines skipped; a quote still open at the end of the
/// file is an error naming the line its record began on.
pub(super) fn parse(text: &str) -> Result<Vec<Record>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let probed = format!("{text}{OPEN_QUOTE_PROBE}");
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(probed.as_bytes());
    let mut out = Vec::new();
    // The line a record starts on, counted from its byte offset (the reader's own line count
    // lags a line behind after `\r\n`): line breaks before the first character are the end
    // of the previous record, or empty lines.
    let (mut at, mut line) = (0usize, 1usize);
    let mut line_of = |byte: usize| {
        let rest = probed.get(byte..).unwrap_or_default();
        let start = byte + (rest.len() - rest.trim_start_matches(['\r', '\n']).len());
        line += probed.as_bytes()[at.min(start)..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        at = start;
        line
    };
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            (line, e.to_string())
        })?;
        let line = line_of(rec.position().map_or(0, |p| p.byte() as usize));
        out.push((line, rec.iter().map(str::to_owned).collect::<Vec<_>>()));
    }
    match out.pop() {
        Some((_, fields)) if fields.len() == 1 && fields[0] == OPEN_QUOTE_PROBE[2..] => Ok(out),
        last => Err((
            last.map_or(1, |(line, _)| line),
            "a quoted field is never closed (the file is truncated?)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_commas_and_newlines() {
        let t = "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\n\"multi\nline\",2,3\n\n";
        let r = parse(t).unwrap_or_default();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[1],
            (2, vec!["x, y".into(), "say \"hi\"".into(), String::new()])
        );
        assert_eq!(
            r[2],
            (3, vec!["multi\nline".into(), "2".into(), "3".into()])
        );
        assert_eq!(parse("a\n\"open,1\n").err().map(|e| e.0), Some(2));
        assert_eq!(parse("\"").err().map(|e| e.0), Some(1));
        assert_eq!(parse("a,\"b\"").map(|r| r.len()), Ok(1));
        assert_eq!(
            parse("a,b").unwrap_or_default(),
            vec![(1, vec!["a".into(), "b".into()])]
        );
        assert_eq!(parse("").map(|r| r.len()), Ok(0));
    }
}
