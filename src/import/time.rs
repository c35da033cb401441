//! ISO-8601 timestamps of the original files → UTC milliseconds.
//!
//! The Rust harnesses wrote `2025-11-14T23:58:00.255946700Z` (UTC); the Python harnesses and the
//! TR108 CSVs wrote local time without a zone (`2025-10-09T16:38:33.906181`,
//! `2025-09-30T20:09:43`), which is taken as UTC and reported as such.

/// Milliseconds since the Unix epoch, and whether the text carried no time zone.
pub(super) fn parse(text: &str) -> Option<(f64, bool)> {
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &t[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        frac = format!("0.{digits}").parse().ok()?;
        rest = &r[digits.len()..];
    }
    let (offset_min, naive) = match rest {
        "" => (0, true),
        "Z" | "z" => (0, false),
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if hm.len() != 4 || !hm.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let oh: i64 = hm[..2].parse().ok()?;
            let om: i64 = hm[2..].parse().ok()?;
            (sign * (oh * 60 + om), false)
        }
    };
    let secs = crate::util::clock::utc_secs(y, mo, d, h, mi, s)? - offset_min * 60;
    Some(((secs as f64 + frac) * 1000.0, naive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        // date -u -d 2025-11-14T23:58:00Z +%s → 1763164680
        let (ms, naive) = parse("2025-11-14T23:58:00.255946700Z").unwrap_or((0.0, true));
        assert!((ms - 1_763_164_680_255.946_7).abs() < 0.01, "{ms}");
        assert!(!naive);
        let (ms, naive) = parse("2025-10-09T16:38:33.906181").unwrap_or((0.0, false));
        // date -u -d 2025-10-09T16:38:33Z +%s → 1760027913
        assert!((ms - 1_760_027_913_906.181).abs() < 0.01, "{ms}");
        assert!(naive);
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some((0.0, false)));
        assert_eq!(parse("1970-01-01T01:00:00+01:00"), Some((0.0, false)));
        assert_eq!(
            parse("2000-03-01 00:00:00").map(|x| x.0),
            Some(951_868_800_000.0)
        );
        assert_eq!(parse("not a time"), None);
        assert_eq!(parse("2025-13-01T00:00:00"), None);
    }
}
