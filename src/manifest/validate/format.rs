//! Well-formedness of single values: report ids and server URLs.

/// True for a report id such as `TR108` or `TR114_v2`.
pub fn is_report_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("TR") else {
        return false;
    };
    let mut parts = rest.split('_');
    let num = parts.next().unwrap_or_default();
    let mut seen_tag = false;
    num.len() == 3
        && num.bytes().all(|b| b.is_ascii_digit())
        && parts.enumerate().all(|(i, p)| {
            let version =
                p.len() > 1 && p.starts_with('v') && p[1..].bytes().all(|b| b.is_ascii_digit());
            if version && i == 0 {
                return true;
            }
            // At most one lower-case tag, after the version if there is one.
            let looks_like_version =
                p.starts_with('v') && p[1..].bytes().all(|b| b.is_ascii_digit());
            let tag = !seen_tag
                && !looks_like_version
                && p.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            seen_tag |= tag;
            tag
        })
}

/// Checks `http(s)://host:port` with an optional trailing `/`; returns what is wrong.
pub fn url_problem(url: &str) -> Option<&'static str> {
    let rest = match url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        Some(r) => r,
        None => return Some("the scheme must be `http://` or `https://`"),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Some("a base URL has no path; the API paths are added by chimera");
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c == '@' || c == '?' || c == '#')
    {
        return Some("the host is empty or contains spaces or `@?#`");
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |n| n == 0)
    {
        return Some("the port must be a number from 1 to 65535");
    }
    None
}
