"""The prompts of chimera's agent workflow, ported from Rust byte for byte.

A port of chimera's `src/workload/ingest.rs` (walk, file types, data summary, metrics),
`src/workload/templates.rs` (template filling, option rendering, the metrics JSON) and
`src/workload/extract.rs` (what the report prompt takes from the analysis response), with the
`AgentWorkflow` glue of `src/workload/mod.rs`. Standard library only.

Everything here exists to build the same bytes the Rust workflow builds, so the Rust
semantics are reproduced where Python's differ:

* `rust_trim` / `rust_lines`: Rust's `str::trim` (Unicode `White_Space`) and `str::lines`
  (split at `\\n`, one `\\r` before it dropped), not `str.strip` / `str.splitlines`;
* `rust_display_f64`: Rust's `Display` of an `f64` (`1.0` → `1`, never an exponent);
* `metrics_json`: `serde_json::to_string_pretty` of a `BTreeMap<String, Value>`, floats
  written as serde_json 1.0.154 writes them (the `zmij` crate: `74.0`, `0.00001`, `1e-7`,
  `1e+16`);
* `parse_rust_f64`: Rust's `f64::from_str` grammar (no spaces, no `_`);
* `load_json`: what `serde_json::from_str` accepts (no `NaN`, no out-of-range numbers, no lone
  surrogates, nesting depth at most 127);
* directory entries are visited in byte order of their names, paths are bytes until they are
  written (`to_string_lossy`).
"""

import json
import os
import re
import stat as stat_mod

# --------------------------------------------------------------------------------------------
# Rust string helpers
# --------------------------------------------------------------------------------------------

# `char::is_whitespace`: the Unicode White_Space property.
_RUST_WS = frozenset(
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_RUST_WS_STR = "".join(sorted(_RUST_WS))


def rust_trim(s):
    """`str::trim`."""
    return s.strip(_RUST_WS_STR)


def rust_trim_start(s):
    """`str::trim_start`."""
    return s.lstrip(_RUST_WS_STR)


def rust_lines(s):
    """`str::lines`: split at `\\n`; a `\\r` right before a `\\n` is dropped; no empty last
    line after a final `\\n`; a bare `\\r` at the very end stays in the last line."""
    if s == "":
        return []
    parts = s.split("\n")
    out = []
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if last:
            if p != "":
                out.append(p)
        else:
            out.append(p[:-1] if p.endswith("\r") else p)
    return out


def rust_lower(s):
    """`str::to_lowercase` (Python's full lowercase mapping, final sigma included, agrees for
    every use here: the results are only searched for ASCII keywords)."""
    return s.lower()


# --------------------------------------------------------------------------------------------
# Number formatting
# --------------------------------------------------------------------------------------------


def _shortest_digits(x):
    """(negative, digits, exponent) with abs(x) == int(digits) * 10**exponent, `digits` the
    shortest round-tripping digit string without leading or trailing zeros (as `repr`, Rust's
    `Display` and serde_json's `zmij` all choose it). x is finite and non-zero."""
    r = repr(float(x))
    neg = r.startswith("-")
    if neg:
        r = r[1:]
    if "e" in r:
        mant, exp = r.split("e")
        exp = int(exp)
    else:
        mant, exp = r, 0
    if "." in mant:
        whole, frac = mant.split(".")
    else:
        whole, frac = mant, ""
    digits = whole + frac
    exp -= len(frac)
    stripped = digits.lstrip("0")
    digits = stripped
    trail = len(digits) - len(digits.rstrip("0"))
    if trail:
        digits = digits[:-trail]
        exp += trail
    return neg, digits, exp


def rust_display_f64(x):
    """`format!("{}", x)` of an `f64`: shortest round-trip digits, plain decimal notation,
    no `.0` for whole numbers (`1.0` → `1`, `-0.0` → `-0`, `1e20` → `100000000000000000000`)."""
    x = float(x)
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    if x == 0.0:
        return "-0" if str(x).startswith("-") else "0"
    neg, digits, exp = _shortest_digits(x)
    if exp >= 0:
        body = digits + "0" * exp
    else:
        point = len(digits) + exp
        if point > 0:
            body = digits[:point] + "." + digits[point:]
        else:
            body = "0." + "0" * (-point) + digits
    return ("-" if neg else "") + body


def json_f64(x):
    """An `f64` as `serde_json` writes it (the `zmij` crate's `format_finite`, serde_json
    1.0.154): plain decimal for scientific exponents -5..=15 (`74.0`, `0.00001`,
    `1000000000000000.0`), else `d.ddde±x` (`1e-6`, `1.5e-7`, `1e+16`,
    `1.7976931348623157e+308`); `-0.0` keeps its sign."""
    x = float(x)
    if x == 0.0:
        return "-0.0" if str(x).startswith("-") else "0.0"
    neg, digits, e = _shortest_digits(x)
    length = len(digits)
    sci = length - 1 + e  # value = d.ddd * 10**sci
    if -5 <= sci <= 15:
        if e >= 0:
            body = digits + "0" * e + ".0"
        elif sci >= 0:
            body = digits[: sci + 1] + "." + digits[sci + 1 :]
        else:
            body = "0." + "0" * (-sci - 1) + digits
    else:
        mant = digits[0] + ("." + digits[1:] if length > 1 else "")
        body = mant + "e" + ("+" if sci >= 0 else "-") + str(abs(sci))
    return ("-" if neg else "") + body


def _json_string(s):
    # serde_json escapes `"`, `\`, and the control characters below 0x20 (\b \f \n \r \t,
    # else \u00xx lowercase); everything else, non-ASCII included, is written as is. So does
    # json.dumps with ensure_ascii=False.
    return json.dumps(s, ensure_ascii=False)


def to_pretty_json(value, indent=0):
    """`serde_json::to_string_pretty` of a `Value` (objects as `BTreeMap`s: keys sorted)."""
    pad = "  " * (indent + 1)
    end = "  " * indent
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return json_f64(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = [pad + to_pretty_json(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            pad + _json_string(k) + ": " + to_pretty_json(value[k], indent + 1)
            for k in sorted(value)
        ]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    raise TypeError("not a JSON value: %r" % (value,))


# --------------------------------------------------------------------------------------------
# Numbers in the corpus
# --------------------------------------------------------------------------------------------

# `f64::from_str` accepts exactly this (after lowercasing): sign, then inf / infinity / nan or
# digits with an optional point and an optional exponent. ASCII digits only.
_RUST_F64 = re.compile(
    r"[+-]?(?:inf|infinity|nan|(?:[0-9]+|[0-9]+\.[0-9]*|[0-9]*\.[0-9]+)(?:e[+-]?[0-9]+)?)\Z",
    re.IGNORECASE,
)


def parse_rust_f64(s):
    """`s.parse::<f64>().ok()`: `None` when Rust would refuse it; `inf`/`NaN` parse."""
    if not _RUST_F64.match(s):
        return None
    return float(s)


def parse_numeric_str(value):
    """`parse_numeric_str`: trim, strip trailing `%` and `s` (all of them), drop commas,
    parse as `f64` (Rust syntax)."""
    t = rust_trim(value).rstrip("%s").replace(",", "")
    return parse_rust_f64(t)


def json_number(x):
    """`Value::from(f64)`: a float, or `null` (None) when not finite."""
    if x != x or x in (float("inf"), float("-inf")):
        return None
    return float(x)


METRIC_NEEDLES = ("tok", "throughput", "latency", "ttft", "speed")
CSV_ROWS_SCANNED = 10
TARGETS = (("reports", ("csv", "json", "md")), ("csv_data", ("csv", "json")))


def should_capture_metric(label):
    """The lowercase label contains tok, throughput, latency, ttft or speed."""
    lower = rust_lower(label)
    return any(n in lower for n in METRIC_NEEDLES)


def harvest_json_metrics(value, path, metrics):
    """`harvest_json_metrics`: every number (or numeric string) at a dotted path
    (`a.b[2].c`) that names a metric becomes `json_<path>`, first value kept. Objects are
    visited in key order (serde_json's map is a `BTreeMap`)."""
    if isinstance(value, dict):
        for key in sorted(value):
            p = key if path == "" else path + "." + key
            harvest_json_metrics(value[key], p, metrics)
    elif isinstance(value, list):
        for idx, item in enumerate(value):
            p = "[%d]" % idx if path == "" else "%s[%d]" % (path, idx)
            harvest_json_metrics(item, p, metrics)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        if path != "" and should_capture_metric(path):
            metrics.setdefault("json_" + path, float(value))
    elif isinstance(value, str):
        if path != "" and should_capture_metric(path):
            x = parse_numeric_str(value)
            if x is not None:
                metrics.setdefault("json_" + path, json_number(x))


# --------------------------------------------------------------------------------------------
# Loading files like serde_json / the csv crate
# --------------------------------------------------------------------------------------------

_U64_MAX = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_SERDE_MAX_DEPTH = 127


class LoadError(Exception):
    """A file that the Rust ingest would skip."""


def _parse_int(s):
    n = int(s)
    if _I64_MIN <= n <= _U64_MAX:
        return n
    # serde_json parses an integer outside u64/i64 as an f64; out of range is an error.
    try:
        f = float(n)
    except OverflowError:
        raise LoadError("number out of range") from None
    if f in (float("inf"), float("-inf")):
        raise LoadError("number out of range")
    return f


def _parse_float(s):
    f = float(s)
    if f in (float("inf"), float("-inf")):
        raise LoadError("number out of range")
    return f


def _parse_constant(name):
    raise LoadError("invalid number %s" % name)


def _check_value(v, depth):
    if isinstance(v, dict):
        if depth >= _SERDE_MAX_DEPTH:
            raise LoadError("recursion limit exceeded")
        for k, x in v.items():
            _check_str(k)
            _check_value(x, depth + 1)
    elif isinstance(v, list):
        if depth >= _SERDE_MAX_DEPTH:
            raise LoadError("recursion limit exceeded")
        for x in v:
            _check_value(x, depth + 1)
    elif isinstance(v, str):
        _check_str(v)


def _check_str(s):
    # Python decodes lone surrogate escapes (`"\ud800"`); serde_json refuses them.
    for ch in s:
        if "\ud800" <= ch <= "\udfff":
            raise LoadError("lone surrogate in hex escape")


def load_json(text):
    """`serde_json::from_str::<Value>(text)`, or LoadError."""
    try:
        v = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except RecursionError:
        raise LoadError("recursion limit exceeded") from None
    except ValueError as e:
        raise LoadError(str(e)) from None
    try:
        _check_value(v, 0)
    except RecursionError:
        raise LoadError("recursion limit exceeded") from None
    return v


def parse_csv(text):
    """RFC 4180 records; `\\n`, `\\r\\n` and `\\r` end records; empty lines are skipped."""
    records = []
    record = []
    field = []
    in_quotes = False
    started = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        i += 1
        if in_quotes:
            if c == '"':
                if i < n and text[i] == '"':
                    i += 1
                    field.append('"')
                else:
                    in_quotes = False
            else:
                field.append(c)
            continue
        if c == '"':
            in_quotes = True
            started = True
        elif c == ",":
            record.append("".join(field))
            field = []
            started = True
        elif c == "\n" or c == "\r":
            if c == "\r" and i < n and text[i] == "\n":
                i += 1
            if started:
                record.append("".join(field))
                field = []
                records.append(record)
                record = []
                started = False
        else:
            field.append(c)
            started = True
    if in_quotes:
        raise LoadError("unterminated quoted field")
    if started:
        record.append("".join(field))
        records.append(record)
    return records


def read_csv_rows(data):
    """`read_csv_rows`: the first record is the header; each later record becomes a dict
    header → trimmed value (a repeated header keeps its last column). LoadError on invalid
    UTF-8, an unterminated quote, or a record whose field count differs from the header's."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LoadError("invalid UTF-8: %s" % e) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    records = parse_csv(text)
    if not records:
        return []
    headers = records[0]
    rows = []
    for i, rec in enumerate(records[1:]):
        if len(rec) != len(headers):
            raise LoadError(
                "record %d has %d fields, but the header has %d" % (i + 1, len(rec), len(headers))
            )
        row = {}
        for h, v in zip(headers, rec):
            row[h] = rust_trim(v)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Ingest
# --------------------------------------------------------------------------------------------

LABELS = {"csv": "csv", "json": "json", "md": "markdown", "markdown": "markdown"}
# BTreeMap order of the DataType enum: Csv < Json < Markdown (alphabetical labels too).
_LABEL_ORDER = ("csv", "json", "markdown")


def rust_extension(name):
    """`Path::extension` of a file name (bytes): after the last `.`, unless the name is `..`
    or its only dot leads it (`.csv` has none); `foo.` has an empty one."""
    if name == b"..":
        return None
    i = name.rfind(b".")
    if i < 0:
        return None
    if i == 0:
        return None
    return name[i + 1 :]


def _lossy(b):
    """`to_string_lossy` of bytes."""
    return b.decode("utf-8", "replace")


def _is_file(path):
    """`Path::is_file` (follows symlinks)."""
    try:
        return stat_mod.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _walk(dir_path, rel, is_root, out):
    """walkdir's defaults as the Rust port has them: the root is followed even as a symlink,
    symlinked directories below it are not entered, every entry that `is_file` (following
    symlinks) is kept; entries in byte order of their names."""
    if is_root and _is_file(dir_path):
        out.append((dir_path, rel))
        return
    try:
        with os.scandir(dir_path) as it:
            entries = list(it)
    except OSError:
        return
    entries.sort(key=lambda e: e.name)
    for e in entries:
        path = os.path.join(dir_path, e.name)
        child_rel = rel + b"/" + e.name
        try:
            is_dir = e.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if is_dir:
            _walk(path, child_rel, False, out)
        elif _is_file(path):
            out.append((path, child_rel))


class IngestedFile(object):
    __slots__ = ("path", "label", "bytes", "modified_unix")

    def __init__(self, path, label, nbytes, modified_unix):
        self.path = path
        self.label = label
        self.bytes = nbytes
        self.modified_unix = modified_unix


class IngestResult(object):
    """What the prompts are built from: `files`, `summary_text`, `metrics`, `entries`,
    `skipped`."""

    def __init__(self, entries, skipped, metrics, summary_text):
        self.entries = entries
        self.skipped = skipped
        self.metrics = metrics
        self.summary_text = summary_text

    @property
    def files(self):
        return len(self.entries)

    @staticmethod
    def empty():
        return _Accumulator().finish()


class _Accumulator(object):
    def __init__(self):
        self.entries = []
        self.skipped = []
        self.metrics = {}
        self.json_documents = 0
        self.markdown_headings = 0

    def push(self, f, kind, content):
        m = self.metrics
        if kind == "csv":
            for row in content[:CSV_ROWS_SCANNED]:
                for key in sorted(row):
                    if not should_capture_metric(key):
                        continue
                    value = row[key]
                    x = parse_numeric_str(value)
                    v = json_number(x) if x is not None else value
                    m.setdefault("csv_" + key, v)
        elif kind == "json":
            self.json_documents += 1
            harvest_json_metrics(content, "", m)
        else:
            self.markdown_headings += sum(
                1 for line in rust_lines(content) if rust_trim_start(line).startswith("#")
            )
        self.entries.append(f)

    def finish(self):
        metrics = dict(self.metrics)
        metrics["total_files_analyzed"] = len(self.entries)
        metrics["data_types"] = sorted(set(f.label for f in self.entries))
        metrics["total_file_size_bytes"] = sum(f.bytes for f in self.entries)
        if self.json_documents > 0:
            metrics.setdefault("json_documents", self.json_documents)
        if self.markdown_headings > 0:
            metrics.setdefault("markdown_heading_count", self.markdown_headings)
        return IngestResult(self.entries, self.skipped, metrics, summary_text(self.entries))


def _load_file(path, kind):
    try:
        st = os.stat(path)
        ns = st.st_mtime_ns
        modified = ns // 1_000_000_000 if ns >= 0 else None
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise LoadError(str(e)) from None
    if kind == "csv":
        content = read_csv_rows(data)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise LoadError("stream did not contain valid UTF-8: %s" % e) from None
        content = load_json(text) if kind == "json" else text
    return st.st_size, modified, content


def ingest(root):
    """Ingests `<root>/reports/**` (`csv`, `json`, `md`) and `<root>/csv_data/**` (`csv`,
    `json`). Never fails: unreadable folders and files are skipped."""
    acc = _Accumulator()
    root_b = os.fsencode(root)
    for name, exts in TARGETS:
        name_b = name.encode()
        dir_path = os.path.join(root_b, name_b)
        if not os.path.exists(dir_path):
            continue
        files = []
        _walk(dir_path, name_b, True, files)
        for path, rel in files:
            ext_b = rust_extension(os.path.basename(path))
            if ext_b is None:
                continue
            try:
                ext = rust_lower(ext_b.decode("utf-8"))
            except UnicodeDecodeError:
                continue
            if ext not in exts:
                continue
            label = LABELS.get(ext)
            if label is None:
                continue
            rel_s = _lossy(rel).replace("\\", "/")
            try:
                nbytes, modified, content = _load_file(path, label)
            except LoadError as e:
                acc.skipped.append((rel_s, str(e)))
                continue
            acc.push(IngestedFile(rel_s, label, nbytes, modified), label, content)
    return acc.finish()


# --------------------------------------------------------------------------------------------
# Data summary and UTC formatting
# --------------------------------------------------------------------------------------------

# jiff's Timestamp range (-009999-01-02T01:59:59Z ..= 9999-12-30T22:00:00Z).
_JIFF_MIN_SECOND = -377705023201
_JIFF_MAX_SECOND = 253402207200


def _civil_from_days(z):
    """(year, month, day) of days since 1970-01-01 (proleptic Gregorian)."""
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def format_utc(ts):
    """`%Y-%m-%d %H:%M:%S UTC` of a Unix time; None outside jiff's range (years ±9999)."""
    if ts < _JIFF_MIN_SECOND or ts > _JIFF_MAX_SECOND:
        return None
    days, secs = divmod(ts, 86400)
    y, mo, d = _civil_from_days(days)
    year = "-%04d" % -y if y < 0 else "%04d" % y
    return "%s-%02d-%02d %02d:%02d:%02d UTC" % (
        year,
        mo,
        d,
        secs // 3600,
        secs // 60 % 60,
        secs % 60,
    )


def summary_text(files):
    """`create_data_summary`: `Total files analyzed: N`, a blank line, then per type (csv,
    json, markdown) `CSV Files (n)`, the first 5 paths, `  ... and K more`, the type's
    `  Latest modified: ...`, and a blank line."""
    s = ["Total files analyzed: %d\n\n" % len(files)]
    grouped = {}
    for f in files:
        grouped.setdefault(f.label, []).append(f)
    for label in _LABEL_ORDER:
        group = grouped.get(label)
        if not group:
            continue
        s.append("%s Files (%d)\n" % (label.upper(), len(group)))
        for f in group[:5]:
            s.append("  - %s\n" % f.path)
        if len(group) > 5:
            s.append("  ... and %d more\n" % (len(group) - 5))
        times = [f.modified_unix for f in group if f.modified_unix is not None]
        ts = format_utc(max(times)) if times else None
        if ts is not None:
            s.append("  Latest modified: %s\n" % ts)
        s.append("\n")
    return "".join(s)


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------

OPTION_PLACEHOLDERS = ("num_gpu", "num_ctx", "temperature", "top_p", "top_k", "repeat_penalty")
_FLOAT_OPTIONS = ("temperature", "top_p", "repeat_penalty")


def fill(template, lookup):
    """Replaces every `{name}` whose name `lookup` knows (returns a str); everything else is
    copied as is. One left-to-right pass: inserted text is never scanned again."""
    out = []
    rest = template
    while True:
        open_ = rest.find("{")
        if open_ < 0:
            break
        out.append(rest[:open_])
        after = rest[open_ + 1 :]
        close = after.find("}")
        reopen = after.find("{")
        if close >= 0 and (reopen < 0 or close < reopen):
            name = after[:close]
            v = lookup(name)
            if v is not None:
                out.append(v)
            else:
                out.append("{" + name + "}")
            rest = after[close + 1 :]
        else:
            out.append("{")
            rest = after
    out.append(rest)
    return "".join(out)


def option_value(options, name):
    """An option placeholder as `display_opt` printed it (`Display`, or `default` when not
    sent); None for other names."""
    if name not in OPTION_PLACEHOLDERS:
        return None
    v = options.get(name)
    if v is None:
        return "default"
    if name in _FLOAT_OPTIONS:
        return rust_display_f64(v)
    return str(int(v))


def fill_analysis(template, data_summary, options):
    """An analysis template: `{data_summary}` and the option placeholders."""
    return fill(
        template,
        lambda name: data_summary if name == "data_summary" else option_value(options, name),
    )


def numbered(items):
    """`1. a\\n2. b`, or `None provided` when empty."""
    if not items:
        return "None provided"
    return "\n".join("%d. %s" % (i + 1, x) for i, x in enumerate(items))


def metrics_json(metrics):
    """`serde_json::to_string_pretty` of the metrics map (two-space indent, keys sorted)."""
    return to_pretty_json(metrics)


def fill_report(template, extracted, metrics, options):
    """A report template from the extracted analysis, the ingest's metrics and the options."""
    summary, findings, recommendations = extracted

    def lookup(name):
        if name == "summary":
            return summary
        if name == "key_findings":
            return numbered(findings)
        if name == "performance_metrics":
            return metrics_json(metrics)
        if name == "recommendations":
            return numbered(recommendations)
        return option_value(options, name)

    return fill(template, lookup)


# --------------------------------------------------------------------------------------------
# Extraction from the analysis response
# --------------------------------------------------------------------------------------------

FINDING_KEYWORDS = ("finding", "insight", "discovery", "key")
RECOMMENDATION_KEYWORDS = ("recommend", "suggest", "should", "consider")
KEYWORD_LINE_LIMIT = 10


def summary_section(response):
    """`extract_summary_section`: the trimmed lines after the first line whose lowercase text
    contains `executive summary` or equals `summary`, up to the next line starting with `#`,
    blank lines dropped; else the first 5 lines, each trimmed (blank ones kept)."""
    lines = []
    in_summary = False
    for line in rust_lines(response):
        trimmed = rust_trim(line)
        if trimmed == "" and in_summary:
            lines.append("")
            continue
        lower = rust_lower(trimmed)
        if "executive summary" in lower or lower == "summary":
            in_summary = True
            continue
        if in_summary and trimmed.startswith("#"):
            break
        if in_summary:
            lines.append(trimmed)
    if not lines:
        return "\n".join(rust_trim(l) for l in rust_lines(response)[:5])
    return "\n".join(l for l in lines if l != "")


_BULLETS = "-*\u2022"
_DIGITS_DOT_PAREN = "0123456789.)"


def clean_bullet(line):
    """Strips leading `-`, `*`, `•`, then leading ASCII digits, `.` and `)`, then
    surrounding whitespace."""
    return rust_trim(line.lstrip(_BULLETS).lstrip(_DIGITS_DOT_PAREN))


def lines_with_keywords(response, keywords, limit):
    """Non-blank lines not starting with `#` whose lowercase text contains a keyword, passed
    through `clean_bullet`, at most `limit`."""
    matches = []
    if limit == 0:
        return matches
    for line in rust_lines(response):
        trimmed = rust_trim(line)
        if trimmed == "" or trimmed.startswith("#"):
            continue
        lower = rust_lower(trimmed)
        if any(kw in lower for kw in keywords):
            matches.append(clean_bullet(trimmed))
            if len(matches) >= limit:
                break
    return matches


def extract(response):
    """(summary, key_findings, recommendations) of one analysis response."""
    return (
        summary_section(response),
        lines_with_keywords(response, FINDING_KEYWORDS, KEYWORD_LINE_LIMIT),
        lines_with_keywords(response, RECOMMENDATION_KEYWORDS, KEYWORD_LINE_LIMIT),
    )


# --------------------------------------------------------------------------------------------
# The workflow
# --------------------------------------------------------------------------------------------


class LayoutDrift(Exception):
    def __init__(self, expected, found):
        Exception.__init__(
            self,
            "ingest found %d files, the manifest expects %d (corpus layout drift)" % (found, expected),
        )
        self.expected = expected
        self.found = found


class AgentWorkflow(object):
    """One agent's ingest → analysis → report run, after the ingest (the role's templates
    are already in the job)."""

    def __init__(self, analysis_template, report_template, expected_files, options, ingest_result):
        if expected_files is not None and expected_files != ingest_result.files:
            raise LayoutDrift(expected_files, ingest_result.files)
        self.analysis_template = analysis_template
        self.report_template = report_template
        self.options = options
        self.ingest = ingest_result

    def analysis_prompt(self):
        return fill_analysis(self.analysis_template, self.ingest.summary_text, self.options)

    @staticmethod
    def extract(analysis_text):
        """The response is trimmed first, as the harness's streaming call returned it."""
        return extract(rust_trim(analysis_text))

    def report_prompt(self, analysis_text):
        return fill_report(
            self.report_template,
            self.extract(analysis_text),
            self.ingest.metrics,
            self.options,
        )
