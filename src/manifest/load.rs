//! Reading a manifest file: size and encoding checks, YAML parsing with a resource budget,
//! typed deserialization with key paths, and translation of parser errors into diagnostics.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::budget::Budget;

use super::diagnostic::{Diagnostic, nearest, one_of};
use super::locate::{KeyPath, Pos, Seg};
use super::spec::ManifestSpec;

/// Largest manifest accepted, in bytes. Manifests describe matrices with axes; even the
/// largest report's is a few tens of KiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a manifest file into bytes, refusing files larger than [`MAX_MANIFEST_BYTES`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let file = std::fs::File::open(path).map_err(|e| {
        Diagnostic::new(path, format!("cannot open manifest: {e}"))
            .help("check the path; manifests live in `experiments/`")
    })?;
    let mut buf = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Diagnostic::new(path, format!("cannot read manifest: {e}")))?;
    if buf.len() as u64 > MAX_MANIFEST_BYTES {
        let size = std::fs::metadata(path)
            .map(|m| m.len())
            .unwrap_or(buf.len() as u64);
        return Err(Diagnostic::new(path, "manifest file is too large")
            .expected(format!(
                "at most {} MiB",
                MAX_MANIFEST_BYTES / (1024 * 1024)
            ))
            .found(format!("{:.1} MiB", size as f64 / (1024.0 * 1024.0)))
            .help(
                "a manifest describes a matrix with `axes`; do not list generated cells one by one",
            ));
    }
    Ok(buf)
}

/// Decodes UTF-8, naming the line and column of the first invalid byte.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<String, Diagnostic> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.strip_prefix('\u{feff}').unwrap_or(s).to_owned()),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            let bad = bytes[e.valid_up_to()];
            Err(Diagnostic {
                pos: Some(Pos {
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                    column: u32::try_from(column).unwrap_or(u32::MAX),
                }),
                ..Diagnostic::new(path, "manifest is not valid UTF-8")
            }
            .expected("UTF-8 text")
            .found(format!("byte 0x{bad:02x} at offset {}", e.valid_up_to()))
            .help("save the file as UTF-8"))
        }
    }
}

fn budget() -> Budget {
    let mut b = Budget::default();
    b.max_aliases = 1_000;
    b.max_anchors = 1_000;
    b.max_events = 500_000;
    b.max_recorded_anchor_events = 100_000;
    b.max_depth = 64;
    b
}

/// Parses manifest text into the typed spec.
pub fn parse(path: &Path, source: &str) -> Result<ManifestSpec, Diagnostic> {
    let blank = source
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Err(Diagnostic::new(path, "manifest is empty")
            .expected("a YAML mapping with at least `format`, `report`, `title`, `endpoints`, `models`, `workloads`, `scenarios` and `matrix`")
            .help("start from one of the manifests in `experiments/`"));
    }
    let mut options = serde_saphyr::options! {};
    options.budget = Some(budget());
    let mut track = serde_path_to_error::Track::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(source, options, |de| {
        let de = serde_path_to_error::Deserializer::new(de, &mut track);
        ManifestSpec::deserialize(de)
    });
    match result {
        Ok(spec) => Ok(spec),
        Err(err) => Err(translate(path, source, &err, &track.path())),
    }
}

fn convert_path(p: &serde_path_to_error::Path) -> KeyPath {
    let mut segs = Vec::new();
    for s in p.iter() {
        match s {
            serde_path_to_error::Segment::Seq { index } => segs.push(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => segs.push(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => segs.push(Seg::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    KeyPath(segs)
}

/// Strips the `error: line N column M: ` prefix serde-saphyr puts before its message.
fn bare_message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let rest = match first.strip_prefix("line ") {
        Some(r) => match r.find(": ") {
            Some(i) if r[..i].contains("column") => &r[i + 2..],
            _ => first,
        },
        None => first,
    };
    strip_location_suffix(rest).to_owned()
}

/// Removes a trailing ` at line N column M` that some parser messages carry.
fn strip_location_suffix(s: &str) -> &str {
    if let Some(i) = s.rfind(" at line ") {
        let tail = &s[i + " at line ".len()..];
        if tail.split_whitespace().count() == 3 && tail.contains(" column ") {
            return &s[..i];
        }
    }
    s
}

/// The scalar token at `pos` in `source`, for "found" when the parser does not say.
fn token_at(source: &str, pos: Pos) -> Option<String> {
    let line = source.lines().nth((pos.line as usize).checked_sub(1)?)?;
    let rest: String = line
        .chars()
        .skip((pos.column as usize).saturating_sub(1))
        .collect();
    let rest = rest.trim();
    let end = rest
        .char_indices()
        .find(|&(_, c)| c == ',' || c == ']' || c == '}' || c == '#')
        .map_or(rest.len(), |(i, _)| i);
    let tok = rest[..end].trim();
    (!tok.is_empty()).then(|| tok.chars().take(60).collect())
}

fn split_list(s: &str) -> Vec<String> {
    s.split(", ")
        .map(|x| x.trim().trim_matches('`').to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

fn expected_for_type(t: &str) -> Option<&'static str> {
    Some(match t {
        "u32" | "u64" | "usize" => "a non-negative whole number",
        "i64" | "i32" => "a whole number",
        "f64" | "f32" => "a number",
        "bool" => "`true` or `false`",
        "string" | "String" => "a string",
        _ => return None,
    })
}

fn translate(
    path: &Path,
    source: &str,
    err: &serde_saphyr::Error,
    tpath: &serde_path_to_error::Path,
) -> Diagnostic {
    let loc = err.location().map(|l| Pos {
        line: l.line() as u32,
        column: l.column() as u32,
    });
    let loc = loc.filter(|p| p.line > 0);
    let key_path = convert_path(tpath);
    let msg = bare_message(err);
    let base = Diagnostic::new(path, msg.clone()).at(source, loc);
    let mut d = if key_path.0.is_empty() {
        base
    } else {
        let mut b = base;
        b.key_path = Some(key_path.to_string());
        b
    };
    if d.pos.is_none() && !key_path.0.is_empty() {
        d = d.path(source, &key_path, false);
    }

    // unknown field `x`, expected one of a, b / expected `a` / there are no fields
    for (prefix, what) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let (found, tail) = rest.split_once('`').unwrap_or((rest, ""));
            let candidates: Vec<String> =
                if let Some(list) = tail.strip_prefix(", expected one of ") {
                    split_list(list)
                } else if let Some(one) = tail.strip_prefix(", expected ") {
                    split_list(one)
                } else {
                    Vec::new()
                };
            d.message = format!("unknown {what} `{found}`");
            if candidates.is_empty() {
                d = d.expected("no keys here").found(format!("`{found}`"));
            } else {
                d = d.expected(one_of(&candidates)).found(format!("`{found}`"));
            }
            if let Some(near) = nearest(found, candidates.iter().map(String::as_str)) {
                d = d.help(format!("did you mean `{near}`?"));
            } else if !candidates.is_empty() {
                d = d.help(format!(
                    "remove `{found}` or use one of the keys listed above"
                ));
            }
            return d;
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        d.message = format!("missing required key `{field}`");
        return d.expected(format!("a `{field}` key")).help(format!(
            "add `{field}:` here (see schemas/manifest.schema.json)"
        ));
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        d.message = "wrong type".to_owned();
        return d.expected(expected.to_owned()).found(found.to_owned());
    }
    if let Some(t) = msg.strip_prefix("invalid ")
        && let Some(exp) = expected_for_type(t.trim())
    {
        d.message = "wrong type".to_owned();
        d = d.expected(exp);
        if let Some(tok) = loc.and_then(|p| token_at(source, p)) {
            d = d.found(format!("`{tok}`"));
        }
        return d;
    }
    for (needle, what) in [
        (
            "expected sequence start",
            "a list (`- item` lines or `[a, b]`)",
        ),
        (
            "expected mapping start",
            "a mapping (`key: value` lines or `{key: value}`)",
        ),
        ("expected string scalar", "a string"),
    ] {
        if msg.contains(needle) {
            d.message = "wrong type".to_owned();
            return d
                .expected(what)
                .help("see schemas/manifest.schema.json for the shape of this key");
        }
    }
    if d.expected.is_none()
        && !msg.contains("budget")
        && (msg.contains("indicator")
            || msg.contains("while scanning")
            || msg.contains("while parsing")
            || msg.contains("did not find"))
    {
        d = d.help("a YAML syntax error: check brackets, quotes and indentation on this line and the one before");
    }
    if let Some(rest) = msg.strip_prefix("budget breached: ") {
        d.message = format!("YAML parsing budget exceeded ({rest})");
        d = d
            .expected("at most 1,000 aliases, 1,000 anchors, 500,000 parser events and nesting depth 64")
            .help("manifests may use a few YAML anchors and aliases; describe large matrices with `axes`");
    }
    d
}
