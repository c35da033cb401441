//! A small RFC 4180 reader for the TR108 CSVs: quoted fields, doubled quotes, CRLF, newlines
//! inside quotes. Every record keeps the line it starts on, for error messages.

/// One record: the 1-based line it starts on, and its fields.
pub(super) type Record = (usize, Vec<String>);

/// Parses `text` into records; an unterminated quote is an error naming the line it began on.
pub(super) fn parse(text: &str) -> Result<Vec<Record>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut field = String::new();
    let mut fields = Vec::new();
    let mut line = 1;
    let mut start = 1;
    let mut quoted = false;
    let mut quote_line = 0;
    let mut at_field_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                quote_line = line;
                at_field_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                if !(fields.len() == 1 && fields[0].is_empty()) {
                    out.push((start, std::mem::take(&mut fields)));
                }
                fields.clear();
                line += 1;
                start = line;
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if quoted {
        return Err((
            quote_line,
            "a quoted field is never closed (the file is truncated?)".into(),
        ));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        out.push((start, fields));
    }
    Ok(out)
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
        assert_eq!(
            parse("a,b").unwrap_or_default(),
            vec![(1, vec!["a".into(), "b".into()])]
        );
    }
}
