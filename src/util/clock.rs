//! The one wall clock of chimera and the date formats it is written in (on `jiff`).

use std::time::SystemTime;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

/// Milliseconds since the Unix epoch, as `f64` (the journal's, manifests' and samples' clock).
pub fn now_unix_ms() -> f64 {
    unix_ms(SystemTime::now())
}

/// Milliseconds since the Unix epoch of `t` (0 before the epoch).
pub fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Whole seconds since the Unix epoch, now (0 before the epoch).
pub fn now_unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The UTC calendar date and time of `secs` since the epoch; `None` outside years ±9999.
fn utc(secs: i64) -> Option<DateTime> {
    Timestamp::from_second(secs)
        .ok()
        .map(|t| Offset::UTC.to_datetime(t))
}

/// `YYYY-MM-DD HH:MM:SS`, the year written as chrono writes it (`-0001`, `+10000` never
/// occurs: jiff's range ends at 9999).
fn ymd_hms(dt: DateTime) -> String {
    let y = i32::from(dt.year());
    let year = if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    };
    format!(
        "{year}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time in milliseconds (clamped to years ±9999).
pub fn utc_string(unix_ms: f64) -> String {
    let secs = (unix_ms / 1000.0).floor() as i64;
    let secs = secs.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    utc(secs).map(ymd_hms).unwrap_or_default() + " UTC"
}

/// `%Y-%m-%d %H:%M:%S UTC` of a Unix time in seconds; `None` outside years ±9999.
pub fn utc_string_secs(secs: i64) -> Option<String> {
    utc(secs).map(|dt| ymd_hms(dt) + " UTC")
}

/// RFC 3339 in UTC with up to 9 fractional digits, trailing zeros trimmed (Go's format).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let dt = utc(secs.min(Timestamp::MAX.as_second())).unwrap_or_default();
    let frac = format!(".{:09}", d.subsec_nanos());
    let frac = frac.trim_end_matches('0');
    let frac = if frac == "." { "" } else { frac };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Seconds since the epoch of a UTC calendar date and time; `None` for a date that does not
/// exist (month 13, February 30).
pub fn utc_secs(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let date = jiff::civil::Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()?;
    let midnight = Offset::UTC.to_timestamp(date.to_datetime(jiff::civil::Time::midnight()));
    Some(midnight.ok()?.as_second() + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats() {
        assert_eq!(utc_string(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_string(951_782_400_000.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_string(1_767_225_599_000.0), "2025-12-31 23:59:59 UTC");
        assert_eq!(utc_string(-1.0), "1969-12-31 23:59:59 UTC");
        assert_eq!(
            utc_string_secs(1_763_146_410).as_deref(),
            Some("2025-11-14 18:53:30 UTC")
        );
        assert_eq!(utc_string_secs(i64::MAX), None);
        let t = UNIX_EPOCH + Duration::new(1_787_390_043, 507_120_000);
        assert_eq!(rfc3339(t), "2026-08-22T09:14:03.50712Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(utc_secs(2000, 3, 1, 0, 0, 0), Some(951_868_800));
        assert_eq!(utc_secs(1970, 1, 1, 0, 0, 60), Some(60));
        assert_eq!(utc_secs(2025, 13, 1, 0, 0, 0), None);
        assert!(now_unix_ms() > 1.7e12);
    }
}
