//! The file-ingestion step of the Rust harnesses (H5, H6v2).
//!
//! A port of `ingest_benchmarks_sync`, `load_benchmark_dir`, `load_benchmark_file`,
//! `read_csv_rows`, `create_data_summary`, `should_capture_metric`, `parse_numeric_str`,
//! `harvest_json_metrics` and `extract_performance_metrics_from_data` of
//! `src/rust/demo_agent/src/main.rs` / `src/rust/demo_multiagent/src/main.rs`.
//!
//! Deliberate differences, all for determinism:
//! * directory entries are visited in byte order of their names (walkdir without `sort_by`
//!   used the OS order; on the original NTFS volume that was alphabetical, which the
//!   recorded prompts confirm);
//! * the metrics map is a `BTreeMap`, so its pretty JSON lists keys sorted (the original
//!   `HashMap` printed them in a random order per process);
//! * CSV is parsed by a small RFC 4180 reader written to behave like the `csv` crate's
//!   defaults (header row, `,`, `"` with doubled-quote escapes, blank lines skipped, a
//!   leading BOM dropped, a record whose field count differs from the header fails the file).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

/// The folders scanned under the root, and the extensions accepted in each.
pub const TARGETS: [(&str, &[&str]); 2] = [
    ("reports", &["csv", "json", "md"]),
    ("csv_data", &["csv", "json"]),
];

/// Substrings that make a CSV column or JSON path a performance metric.
pub const METRIC_NEEDLES: [&str; 5] = ["tok", "throughput", "latency", "ttft", "speed"];

/// CSV rows per file looked at for metrics.
pub const CSV_ROWS_SCANNED: usize = 10;

/// File type, ordered as the harness's `BTreeMap` of labels orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// `.csv`
    Csv,
    /// `.json`
    Json,
    /// `.md` / `.markdown`
    Markdown,
}

impl DataType {
    /// The harness's `BenchmarkDataType::from_extension` (lowercase extension).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            "md" | "markdown" => Some(Self::Markdown),
            _ => None,
        }
    }

    /// `csv`, `json`, `markdown`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Markdown => "markdown",
        }
    }
}

/// One ingested file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestedFile {
    /// Path relative to the root, `/`-separated (e.g. `reports/gemma3/x.csv`).
    pub path: String,
    /// Type.
    pub data_type: DataType,
    /// Size in bytes.
    pub bytes: u64,
    /// Modification time, whole seconds since the Unix epoch (`None` before 1970 or unknown).
    pub modified_unix: Option<i64>,
}

/// Per-type totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeStats {
    /// Files.
    pub files: u32,
    /// Bytes.
    pub bytes: u64,
    /// Latest modification time, seconds since the Unix epoch.
    pub latest_modified: Option<i64>,
}

/// The ingest step's result: what the analysis and report prompts are built from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestResult {
    /// Files loaded (the harness's `benchmark_data_count`).
    pub files: u32,
    /// Totals per type.
    pub by_type: BTreeMap<DataType, TypeStats>,
    /// Bytes of all files.
    pub total_bytes: u64,
    /// Latest modification time over all files.
    pub latest_modified: Option<i64>,
    /// The harness's `performance_metrics` map, serialised into the report prompt.
    pub metrics: BTreeMap<String, Value>,
    /// The harness's `create_data_summary` text, the analysis prompt's `{data_summary}`.
    pub summary_text: String,
    /// The files, in walk order.
    pub entries: Vec<IngestedFile>,
    /// Files that matched an extension but could not be loaded (path and reason); the
    /// harness only logged these.
    pub skipped: Vec<(String, String)>,
}

impl IngestResult {
    /// What ingesting nothing gives (the `empty` corpus, and the original harnesses run from
    /// a layout without `reports/` and `csv_data/`).
    pub fn empty() -> Self {
        Accumulator::default().finish()
    }
}

/// Ingests `<root>/reports/**` (`csv`, `json`, `md`) and `<root>/csv_data/**` (`csv`,
/// `json`). Never fails: unreadable folders and files are skipped, as in the harness.
pub fn ingest(root: &Path) -> IngestResult {
    let mut acc = Accumulator::default();
    for (dir, exts) in TARGETS {
        let dir_path = root.join(dir);
        if !dir_path.exists() {
            continue;
        }
        let mut files = Vec::new();
        walk(&dir_path, true, &mut files);
        for path in files {
            let Some(ext) = path
                .extension()
                .and_then(|s| s.to_str())
                .map(str::to_lowercase)
            else {
                continue;
            };
            if !exts.contains(&ext.as_str()) {
                continue;
            }
            let Some(kind) = DataType::from_extension(&ext) else {
                continue;
            };
            let rel = rel_path(&path, root);
            match load_file(&path, kind) {
                Ok((meta, content)) => acc.push(
                    IngestedFile {
                        path: rel,
                        data_type: kind,
                        bytes: meta.0,
                        modified_unix: meta.1,
                    },
                    content,
                ),
                Err(reason) => {
                    tracing::warn!("could not load {}: {}", path.display(), reason);
                    acc.skipped.push((rel, reason));
                }
            }
        }
    }
    acc.finish()
}

/// Depth-first walk like walkdir's defaults: the root is followed even when it is a
/// symlink, symlinked directories below it are not entered, and every entry for which
/// `Path::is_file` holds (which follows symlinks, as the harness's check did) is kept.
/// Entries are visited in byte order of their names.
fn walk(dir: &Path, is_root: bool, out: &mut Vec<PathBuf>) {
    if is_root && dir.is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<fs::DirEntry> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else {
            continue;
        };
        let path = e.path();
        if ft.is_dir() {
            walk(&path, false, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

fn rel_path(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Parsed content, as far as the metrics need it.
enum Content {
    Csv(Vec<BTreeMap<String, String>>),
    Json(Value),
    Markdown(String),
}

fn load_file(path: &Path, kind: DataType) -> Result<((u64, Option<i64>), Content), String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    let content = match kind {
        DataType::Csv => {
            let bytes = fs::read(path).map_err(|e| e.to_string())?;
            Content::Csv(read_csv_rows(&bytes)?)
        }
        DataType::Json => {
            let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
            Content::Json(serde_json::from_str(&text).map_err(|e| e.to_string())?)
        }
        DataType::Markdown => {
            Content::Markdown(fs::read_to_string(path).map_err(|e| e.to_string())?)
        }
    };
    Ok(((meta.len(), modified), content))
}

/// Accumulates files and their metrics in walk order.
#[derive(Default)]
struct Accumulator {
    entries: Vec<IngestedFile>,
    skipped: Vec<(String, String)>,
    csv_json_metrics: BTreeMap<String, Value>,
    json_documents: u64,
    markdown_headings: u64,
}

impl Accumulator {
    fn push(&mut self, file: IngestedFile, content: Content) {
        let m = &mut self.csv_json_metrics;
        match content {
            Content::Csv(rows) => {
                for row in rows.iter().take(CSV_ROWS_SCANNED) {
                    for (key, value) in row {
                        if !should_capture_metric(key) {
                            continue;
                        }
                        let v = match parse_numeric_str(value) {
                            Some(x) => Value::from(x),
                            None => Value::from(value.clone()),
                        };
                        m.entry(format!("csv_{key}")).or_insert(v);
                    }
                }
            }
            Content::Json(value) => {
                self.json_documents += 1;
                harvest_json_metrics(&value, "", m);
            }
            Content::Markdown(text) => {
                self.markdown_headings += text
                    .lines()
                    .filter(|l| l.trim_start().starts_with('#'))
                    .count() as u64;
            }
        }
        self.entries.push(file);
    }

    fn finish(self) -> IngestResult {
        let mut by_type: BTreeMap<DataType, TypeStats> = BTreeMap::new();
        for f in &self.entries {
            let s = by_type.entry(f.data_type).or_default();
            s.files += 1;
            s.bytes += f.bytes;
            s.latest_modified = s.latest_modified.max(f.modified_unix);
        }
        let total_bytes: u64 = self.entries.iter().map(|f| f.bytes).sum();
        let latest_modified = self.entries.iter().filter_map(|f| f.modified_unix).max();

        // extract_performance_metrics_from_data: the three fixed keys are inserted first
        // (overwriting), the harvested ones never overwrite, the two counters only when > 0.
        let mut metrics = self.csv_json_metrics;
        metrics.insert(
            "total_files_analyzed".into(),
            Value::from(self.entries.len() as u64),
        );
        let types: BTreeSet<&str> = self.entries.iter().map(|f| f.data_type.label()).collect();
        metrics.insert(
            "data_types".into(),
            Value::from(
                types
                    .into_iter()
                    .map(|t| Value::String(t.to_string()))
                    .collect::<Vec<_>>(),
            ),
        );
        metrics.insert("total_file_size_bytes".into(), Value::from(total_bytes));
        if self.json_documents > 0 {
            metrics
                .entry("json_documents".into())
                .or_insert_with(|| Value::from(self.json_documents));
        }
        if self.markdown_headings > 0 {
            metrics
                .entry("markdown_heading_count".into())
                .or_insert_with(|| Value::from(self.markdown_headings));
        }

        IngestResult {
            files: self.entries.len() as u32,
            summary_text: summary_text(&self.entries),
            by_type,
            total_bytes,
            latest_modified,
            metrics,
            entries: self.entries,
            skipped: self.skipped,
        }
    }
}

/// `create_data_summary`: `Total files analyzed: N`, a blank line, then per type (csv,
/// json, markdown) `CSV Files (n)`, the first 5 paths as `  - path`, `  ... and K more`,
/// `  Latest modified: YYYY-MM-DD HH:MM:SS UTC` (the type's newest file), and a blank line.
pub fn summary_text(files: &[IngestedFile]) -> String {
    let mut s = format!("Total files analyzed: {}\n\n", files.len());
    let mut grouped: BTreeMap<&str, Vec<&IngestedFile>> = BTreeMap::new();
    for f in files {
        grouped.entry(f.data_type.label()).or_default().push(f);
    }
    for (label, group) in grouped {
        s.push_str(&format!(
            "{} Files ({})\n",
            label.to_uppercase(),
            group.len()
        ));
        for f in group.iter().take(5) {
            s.push_str(&format!("  - {}\n", f.path));
        }
        if group.len() > 5 {
            s.push_str(&format!("  ... and {} more\n", group.len() - 5));
        }
        if let Some(ts) = group
            .iter()
            .filter_map(|f| f.modified_unix)
            .max()
            .and_then(format_utc)
        {
            s.push_str(&format!("  Latest modified: {ts}\n"));
        }
        s.push('\n');
    }
    s
}

/// `%Y-%m-%d %H:%M:%S UTC` of a Unix time (chrono's format; `None` outside years ±9999).
pub fn format_utc(ts: i64) -> Option<String> {
    crate::util::clock::utc_string_secs(ts)
}

/// `should_capture_metric`: the lowercase label contains tok, throughput, latency, ttft or
/// speed.
pub fn should_capture_metric(label: &str) -> bool {
    let lower = label.to_lowercase();
    METRIC_NEEDLES.iter().any(|n| lower.contains(n))
}

/// `parse_numeric_str`: trim, strip trailing `%` and `s` characters (all of them), drop
/// commas, parse as `f64` (Rust syntax: `1e3`, `inf` and `NaN` parse too).
pub fn parse_numeric_str(value: &str) -> Option<f64> {
    value
        .trim()
        .trim_end_matches(['%', 's'])
        .replace(',', "")
        .parse::<f64>()
        .ok()
}

/// `harvest_json_metrics`: every number (or numeric string) at a dotted path (`a.b[2].c`)
/// that names a metric becomes `json_<path>`, first value kept.
pub fn harvest_json_metrics(value: &Value, path: &str, metrics: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (key, val) in map {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                harvest_json_metrics(val, &p, metrics);
            }
        }
        Value::Array(items) => {
            for (idx, item) in items.iter().enumerate() {
                let p = if path.is_empty() {
                    format!("[{idx}]")
                } else {
                    format!("{path}[{idx}]")
                };
                harvest_json_metrics(item, &p, metrics);
            }
        }
        Value::Number(num) => {
            if !path.is_empty()
                && should_capture_metric(path)
                && let Some(x) = num.as_f64()
            {
                metrics
                    .entry(format!("json_{path}"))
                    .or_insert_with(|| Value::from(x));
            }
        }
        Value::String(text) => {
            if !path.is_empty()
                && should_capture_metric(path)
                && let Some(x) = parse_numeric_str(text)
            {
                metrics
                    .entry(format!("json_{path}"))
                    .or_insert_with(|| Value::from(x));
            }
        }
        _ => {}
    }
}

/// Reads CSV like the `csv` crate's default `ReaderBuilder` + `read_csv_rows`: the first
/// record is the header; each later record becomes a map header → trimmed value (a repeated
/// header keeps its last column). Errors (the whole file is skipped) on invalid UTF-8, an
/// unterminated quote, or a record whose field count differs from the header's.
pub fn read_csv_rows(bytes: &[u8]) -> Result<Vec<BTreeMap<String, String>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = parse_csv(text)?;
    let mut it = records.into_iter();
    let Some(headers) = it.next() else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for (i, rec) in it.enumerate() {
        if rec.len() != headers.len() {
            return Err(format!(
                "record {} has {} fields, but the header has {}",
                i + 1,
                rec.len(),
                headers.len()
            ));
        }
        let mut row = BTreeMap::new();
        for (h, v) in headers.iter().zip(rec) {
            row.insert(h.clone(), v.trim().to_string());
        }
        rows.push(row);
    }
    Ok(rows)
}

/// RFC 4180 records; `\n`, `\r\n` and `\r` end records; empty lines are skipped.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    // True once the current record has any content (a field separator or a character).
    let mut started = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = true;
                started = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                started = true;
            }
            '\n' | '\r' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if started {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                    started = false;
                }
            }
            _ => {
                field.push(c);
                started = true;
            }
        }
    }
    if in_quotes {
        return Err("unterminated quoted field".into());
    }
    if started {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, t: DataType, ts: i64) -> IngestedFile {
        IngestedFile {
            path: path.into(),
            data_type: t,
            bytes: 10,
            modified_unix: Some(ts),
        }
    }

    #[test]
    fn summary_for_zero_files() {
        assert_eq!(summary_text(&[]), "Total files analyzed: 0\n\n");
        let e = IngestResult::empty();
        assert_eq!(e.files, 0);
        assert_eq!(e.summary_text, "Total files analyzed: 0\n\n");
        assert_eq!(
            serde_json::to_string(&e.metrics).ok().as_deref(),
            Some(r#"{"data_types":[],"total_file_size_bytes":0,"total_files_analyzed":0}"#)
        );
    }

    #[test]
    fn summary_for_three_files() {
        let files = [
            file("reports/b.md", DataType::Markdown, 1_763_146_447),
            file("reports/a.json", DataType::Json, 1_759_943_251),
            file("csv_data/x.csv", DataType::Csv, 0),
        ];
        assert_eq!(
            summary_text(&files),
            "Total files analyzed: 3\n\n\
CSV Files (1)\n  - csv_data/x.csv\n  Latest modified: 1970-01-01 00:00:00 UTC\n\n\
JSON Files (1)\n  - reports/a.json\n  Latest modified: 2025-10-08 17:07:31 UTC\n\n\
MARKDOWN Files (1)\n  - reports/b.md\n  Latest modified: 2025-11-14 18:54:07 UTC\n\n"
        );
    }

    #[test]
    fn summary_for_101_files() {
        let mut files = Vec::new();
        for i in 0..28 {
            files.push(file(
                &format!("reports/c{i:02}.csv"),
                DataType::Csv,
                100 + i,
            ));
        }
        for i in 0..44 {
            files.push(file(&format!("reports/j{i:02}.json"), DataType::Json, 50));
        }
        for i in 0..29 {
            let mut f = file(&format!("reports/m{i:02}.md"), DataType::Markdown, 7);
            f.modified_unix = None;
            files.push(f);
        }
        let s = summary_text(&files);
        assert!(
            s.starts_with("Total files analyzed: 101\n\nCSV Files (28)\n  - reports/c00.csv\n")
        );
        assert!(s.contains("  - reports/c04.csv\n  ... and 23 more\n  Latest modified: 1970-01-01 00:02:07 UTC\n\nJSON Files (44)\n"));
        assert!(s.contains("  ... and 39 more\n  Latest modified: 1970-01-01 00:00:50 UTC\n\n"));
        // No modification time: no "Latest modified" line.
        assert!(s.ends_with("  - reports/m04.md\n  ... and 24 more\n\n"));
        assert!(!s.contains("c05"));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0).as_deref(), Some("1970-01-01 00:00:00 UTC"));
        assert_eq!(
            format_utc(1_763_146_410).as_deref(),
            Some("2025-11-14 18:53:30 UTC")
        );
        assert_eq!(
            format_utc(951_782_400).as_deref(),
            Some("2000-02-29 00:00:00 UTC")
        );
        assert_eq!(format_utc(-1).as_deref(), Some("1969-12-31 23:59:59 UTC"));
        assert_eq!(format_utc(i64::MAX), None);
    }

    #[test]
    fn numeric_strings() {
        assert_eq!(parse_numeric_str(" 1,234.5 "), Some(1234.5));
        assert_eq!(parse_numeric_str("78.4%"), Some(78.4));
        assert_eq!(parse_numeric_str("1.5s"), Some(1.5));
        assert_eq!(parse_numeric_str("2%s%"), Some(2.0));
        assert_eq!(parse_numeric_str("12 ms"), None);
        assert_eq!(parse_numeric_str("gemma3"), None);
        assert_eq!(parse_numeric_str(""), None);
    }

    #[test]
    fn metric_names() {
        assert!(should_capture_metric("Tokens_Per_Second"));
        assert!(should_capture_metric("p95_latency_ms"));
        assert!(should_capture_metric("results.eager.SpeedUp"));
        assert!(!should_capture_metric("load_s"));
        assert!(!should_capture_metric("eval_count"));
    }

    #[test]
    fn json_harvest_paths_and_first_value() {
        let v: Value = serde_json::from_str(
            r#"{"a":{"ttft_ms":[1,2],"throughput":"3.5 tok"},"tokens_s":"12.5s","x":1,"latency":true}"#,
        )
        .unwrap_or(Value::Null);
        let mut m = BTreeMap::new();
        harvest_json_metrics(&v, "", &mut m);
        m.entry("json_tokens_s".to_string())
            .or_insert(Value::from(0.0));
        assert_eq!(
            serde_json::to_string(&m).ok().as_deref(),
            Some(r#"{"json_a.ttft_ms[0]":1.0,"json_a.ttft_ms[1]":2.0,"json_tokens_s":12.5}"#)
        );
        let mut m2 = BTreeMap::new();
        harvest_json_metrics(&Value::from(3), "", &mut m2);
        harvest_json_metrics(&serde_json::json!([{"tok": 4}]), "", &mut m2);
        assert_eq!(
            serde_json::to_string(&m2).ok().as_deref(),
            Some(r#"{"json_[0].tok":4.0}"#)
        );
    }

    #[test]
    fn csv_reader() {
        let rows = read_csv_rows(
            b"\xef\xbb\xbfmodel,prompt,tokens_per_second\r\ngemma3,\"Give a quote, \"\"win\"\"\", 74.1 \n\n",
        );
        let rows = rows.unwrap_or_default();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["prompt"], "Give a quote, \"win\"");
        assert_eq!(rows[0]["tokens_per_second"], "74.1");
        assert!(read_csv_rows(b"a,b\n1\n").is_err());
        assert!(read_csv_rows(b"a,b\n\"1,2\n").is_err());
        assert!(read_csv_rows(b"a\n\xff\n").is_err());
        assert_eq!(read_csv_rows(b"").map(|r| r.len()), Ok(0));
        assert_eq!(read_csv_rows(b"a,b\n").map(|r| r.len()), Ok(0));
        // A trailing empty field counts.
        assert_eq!(
            read_csv_rows(b"a,b\n1,\n").map(|r| r[0]["b"].clone()),
            Ok(String::new())
        );
    }

    #[test]
    fn ingest_a_small_tree() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        fs::create_dir_all(root.join("reports/sub"))?;
        fs::create_dir_all(root.join("csv_data"))?;
        fs::write(
            root.join("reports/sub/run.csv"),
            "model,ttft_s,tokens_s\ng,0.5,\"1,074.1\"\ng,0.7,80\n",
        )?;
        fs::write(
            root.join("reports/a.json"),
            r#"{"summary":{"latency_ms":12}}"#,
        )?;
        fs::write(root.join("reports/bad.json"), "{not json")?;
        fs::write(root.join("reports/notes.MD"), "# T\n\n## S\n- x\n  # h\n")?;
        fs::write(root.join("reports/skip.txt"), "x")?;
        fs::write(root.join("csv_data/d.md"), "# not scanned here\n")?;
        fs::write(root.join("csv_data/e.csv"), "tokens_per_second\nfast\n")?;
        let r = ingest(root);
        let paths: Vec<&str> = r.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "reports/a.json",
                "reports/notes.MD",
                "reports/sub/run.csv",
                "csv_data/e.csv"
            ]
        );
        assert_eq!(r.files, 4);
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.by_type[&DataType::Csv].files, 2);
        assert_eq!(r.metrics["csv_ttft_s"], Value::from(0.5));
        assert_eq!(r.metrics["csv_tokens_s"], Value::from(1074.1));
        assert_eq!(r.metrics["csv_tokens_per_second"], Value::from("fast"));
        assert_eq!(r.metrics["json_summary.latency_ms"], Value::from(12.0));
        assert_eq!(r.metrics["json_documents"], Value::from(1));
        assert_eq!(r.metrics["markdown_heading_count"], Value::from(3));
        assert_eq!(r.metrics["total_files_analyzed"], Value::from(4));
        assert_eq!(
            r.metrics["data_types"],
            serde_json::json!(["csv", "json", "markdown"])
        );
        assert!(!r.metrics.contains_key("csv_model"));
        Ok(())
    }
}
