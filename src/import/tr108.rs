//! H1, the TR108 single-inference CSVs (script lost; columns in tr-spec §2.5).
//!
//! ```text
//! llama3/ollama_quant_bench.csv            Part A: 3 Llama quantisations × 5 prompts (model column)
//! llama3/ollama_param_tuning.csv           Part B: Llama q4_0, 36 (num_gpu, num_ctx, temperature) rows
//! gemma3/<m>_baseline.csv                  Part A: one Gemma 3 variant × 5 prompts (model from the name)
//! gemma3/<m>_param_tuning.csv              Part B: one Gemma 3 variant, 36 rows
//! *_param_tuning_summary.csv               per-config means (cross-check)
//! gemma3/<m>_baseline.json                 the baseline rows again (cross-check)
//! llama3/baseline_{ml,system}_metrics.json monitoring exports without inferences (recognised)
//! ```
//!
//! Part A: the five rows of one model are the five requests of its `baseline_<model>` cell.
//! Part B: each row is the one request of the sweep cell with that model, num_gpu, num_ctx and
//! temperature. TTFT is TR108's `ttft_s` (load + prompt eval, server side), throughput its
//! `tokens_s` (eval_count / eval_s). The CSVs keep no end-to-end time and no agent duration:
//! those are `NaN` (not recorded), the cells' wall times too. A row with an `error` is a failed
//! request and makes its cell `failed`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::context::{Ctx, Imported, LayoutText};
use super::convert::aggregate_rows;
use super::error::ImportError;
use crate::backend::{ErrorKind, RequestError, RequestRecord};
use crate::manifest::Task;
use crate::record::RequestRow;
use crate::workload::Stage;

/// A CSV with a header.
struct Table {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<super::csv::Record>,
}

impl Table {
    fn read(ctx: &Ctx, path: &Path) -> Result<Table, ImportError> {
        let text = ctx.read_to_string(path)?;
        let mut recs = super::csv::parse(&text).map_err(|(line, message)| ImportError::Csv {
            path: path.to_path_buf(),
            line,
            message,
            help: "restore the file from the original repository".into(),
        })?;
        if recs.is_empty() {
            return Err(ImportError::Csv {
                path: path.to_path_buf(),
                line: 1,
                message: "the file is empty (no header)".into(),
                help: "restore the file from the original repository".into(),
            });
        }
        let (_, header) = recs.remove(0);
        for (line, r) in &recs {
            if r.len() != header.len() {
                return Err(ImportError::Csv {
                    path: path.to_path_buf(),
                    line: *line,
                    message: format!("{} field(s), but the header has {}", r.len(), header.len()),
                    help: "the line is cut or has an unquoted comma; restore the file".into(),
                });
            }
        }
        Ok(Table {
            path: path.to_path_buf(),
            header: header.into_iter().map(|h| h.trim().to_owned()).collect(),
            rows: recs,
        })
    }

    fn has(&self, col: &str) -> bool {
        self.header.iter().any(|h| h == col)
    }

    fn get<'r>(&self, row: &'r super::csv::Record, col: &str) -> Result<&'r str, ImportError> {
        match self.header.iter().position(|h| h == col) {
            Some(i) => Ok(row.1[i].trim()),
            None => Err(ImportError::Csv {
                path: self.path.clone(),
                line: 1,
                message: format!(
                    "no `{col}` column (the header is {})",
                    self.header.join(",")
                ),
                help: "this is not the CSV the TR108 scripts wrote (tr-spec §2.5)".into(),
            }),
        }
    }

    /// A number; `None` for an empty field (a failed row).
    fn num(&self, row: &super::csv::Record, col: &str) -> Result<Option<f64>, ImportError> {
        let s = self.get(row, col)?;
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<f64>().map(Some).map_err(|_| ImportError::Csv {
            path: self.path.clone(),
            line: row.0,
            message: format!("column `{col}`: `{s}` is not a number"),
            help: "restore the file from the original repository".into(),
        })
    }

    fn need(&self, row: &super::csv::Record, col: &str) -> Result<f64, ImportError> {
        self.num(row, col)?.ok_or_else(|| ImportError::Csv {
            path: self.path.clone(),
            line: row.0,
            message: format!("column `{col}` is empty"),
            help: "restore the file from the original repository".into(),
        })
    }
}

/// A sweep row's (num_gpu, num_ctx, temperature) and recorded tokens_s, for cross-checks.
type SweepValue = ((u32, u32, f64), Option<f64>);

/// What a file is.
enum Kind {
    /// Part A; the model comes from the `model` column when `None`.
    Baseline(Option<String>),
    /// Part B.
    Sweep(Option<String>),
    /// `<stem>_param_tuning_summary.csv`.
    Summary,
    /// `<stem>_baseline.json`.
    BaselineJson,
    /// Recognised, read, not a run.
    Other(&'static str),
    /// Later prompt-suite reruns the report does not use.
    NotUsed,
}

/// `gemma3` → `gemma3:latest`, `gemma3_270m` → `gemma3:270m`, `gemma3_1b-it-qat` → `gemma3:1b-it-qat`.
fn tag_of_stem(stem: &str) -> String {
    match stem.split_once('_') {
        Some((a, b)) => format!("{a}:{b}"),
        None => format!("{stem}:latest"),
    }
}

fn classify(name: &str) -> Option<(Kind, String)> {
    let stem_of = |suffix: &str| name.strip_suffix(suffix).map(str::to_owned);
    if name == "ollama_quant_bench.csv" {
        return Some((Kind::Baseline(None), "ollama".into()));
    }
    if name == "ollama_param_tuning.csv" {
        return Some((Kind::Sweep(None), "ollama".into()));
    }
    if let Some(s) = stem_of("_param_tuning_summary.csv") {
        return Some((Kind::Summary, s));
    }
    if let Some(s) = stem_of("_param_tuning.csv") {
        return Some((Kind::Sweep(Some(tag_of_stem(&s))), s));
    }
    if let Some(s) = stem_of("_baseline.csv") {
        return Some((Kind::Baseline(Some(tag_of_stem(&s))), s));
    }
    if let Some(s) = stem_of("_baseline.json") {
        return Some((Kind::BaselineJson, s));
    }
    if name == "baseline_ml_metrics.json" || name == "baseline_system_metrics.json" {
        return Some((
            Kind::Other("a monitoring export of a session without inferences"),
            String::new(),
        ));
    }
    if name.ends_with("_runs.csv") || name.ends_with("_summary.json") {
        return Some((Kind::NotUsed, String::new()));
    }
    None
}

fn error_kind(text: &str) -> ErrorKind {
    let t = text.to_ascii_lowercase();
    if t.contains("timed out") || t.contains("timeout") {
        ErrorKind::Timeout
    } else if t.contains("refused")
        || t.contains("10061")
        || t.contains("10049")
        || t.contains("connect")
    {
        ErrorKind::ConnectionRefused
    } else if t.contains("404") || t.contains("not found") {
        ErrorKind::ModelNotFound
    } else {
        ErrorKind::ServerError
    }
}

/// Longest `response_chars` accepted: TR108's replies were at most 3,263 characters, and the
/// reply is imported as that many placeholder characters (the CSVs keep only its length), so
/// a damaged count must not become a string of gigabytes.
const MAX_RESPONSE_CHARS: u64 = 1 << 16;

/// One CSV row as a request.
fn request(
    t: &Table,
    row: &super::csv::Record,
    index: u32,
    ctx: &mut Ctx,
) -> Result<RequestRow, ImportError> {
    let sent_at = if t.has("timestamp") {
        let s = t.get(row, "timestamp")?;
        let (ms, naive) = super::time::parse(s).ok_or_else(|| ImportError::Csv {
            path: t.path.clone(),
            line: row.0,
            message: format!("column `timestamp`: `{s}` is not an ISO-8601 timestamp"),
            help: "restore the file from the original repository".into(),
        })?;
        ctx.naive_times += u64::from(naive);
        ms
    } else {
        f64::NAN
    };
    let err = if t.has("error") {
        t.get(row, "error")?
    } else {
        ""
    };
    if !err.is_empty() {
        let kind = error_kind(err);
        if kind == ErrorKind::ServerError {
            ctx.warn(format!(
                "`{}` line {}: error `{err}` recorded as `server_error`",
                ctx.rel(&t.path).display(),
                row.0
            ));
        }
        return Ok(super::convert::request_row(
            Stage::Single,
            index,
            None,
            None,
            RequestRecord {
                sent_at_unix_ms: sent_at,
                e2e_ms: f64::NAN,
                error: Some(RequestError {
                    kind,
                    status: None,
                    message: err.to_owned(),
                }),
                ..RequestRecord::default()
            },
        ));
    }
    let ms = |col: &str| -> Result<Option<f64>, ImportError> {
        Ok(t.num(row, col)?.map(|s| s * 1000.0))
    };
    let count = |col: &str| -> Result<Option<u64>, ImportError> {
        if !t.has(col) {
            return Ok(None);
        }
        match t.num(row, col)? {
            // `u64::MAX as f64` is 2^64, the first whole number a u64 cannot hold (`as` would
            // saturate to u64::MAX instead of refusing it).
            Some(x) if x >= 0.0 && x.fract() == 0.0 && x < u64::MAX as f64 => Ok(Some(x as u64)),
            Some(x) => Err(ImportError::Csv {
                path: t.path.clone(),
                line: row.0,
                message: format!("column `{col}`: `{x}` is not a count"),
                help: "restore the file from the original repository".into(),
            }),
            None => Ok(None),
        }
    };
    let chars = count("response_chars")?.unwrap_or(0);
    if chars > MAX_RESPONSE_CHARS {
        return Err(ImportError::Csv {
            path: t.path.clone(),
            line: row.0,
            message: format!(
                "column `response_chars`: `{chars}` is not the length of a reply (at most {MAX_RESPONSE_CHARS})"
            ),
            help: "restore the file from the original repository".into(),
        });
    }
    Ok(super::convert::request_row(
        Stage::Single,
        index,
        Some(t.need(row, "tokens_s")?),
        // TR108's TTFT is the server's load + prompt eval (tr-spec §2.3): the published
        // TTFT; no client TTFT was measured.
        ms("ttft_s")?,
        RequestRecord {
            sent_at_unix_ms: sent_at,
            ttft_ms: None,
            // The CSVs keep no end-to-end time.
            e2e_ms: f64::NAN,
            itl_ms: Vec::new(),
            chunks: 0,
            // The text is not in the CSVs, only its length; the tables store only the length.
            text: " ".repeat(chars as usize),
            load_ms: ms("load_s")?,
            prompt_tokens: count("prompt_eval_count")?,
            prompt_eval_ms: ms("prompt_eval_s")?,
            output_tokens: count("eval_count")?,
            eval_ms: ms("eval_s")?,
            total_ms: None,
            done_reason: None,
            timing_source: None,
            error: None,
        },
    ))
}

/// The model id of a tag, or an error naming the file and the manifest's tags.
fn model_of(ctx: &Ctx, tag: &str, path: &Path) -> Result<String, ImportError> {
    ctx.spec()
        .models
        .iter()
        .find(|m| m.tag == tag)
        .map(|m| m.id.clone())
        .ok_or_else(|| ImportError::UnknownId {
            path: path.to_path_buf(),
            what: "model",
            id: tag.to_owned(),
            report: ctx.report().to_owned(),
            manifest: ctx.manifest_path().to_path_buf(),
            expected: super::convert::list(
                &ctx.spec()
                    .models
                    .iter()
                    .map(|m| m.tag.as_str())
                    .collect::<Vec<_>>(),
            ),
            help: "add the model to the manifest's `models`, or remove the file".into(),
        })
}

fn opt_eq(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        (None, None) => true,
        _ => false,
    }
}

/// The configuration of (model, num_gpu, num_ctx, temperature); Part A when all three are None.
fn find_config(
    ctx: &Ctx,
    model: &str,
    point: (Option<u32>, Option<u32>, Option<f64>),
    t: &Table,
    line: usize,
) -> Result<usize, ImportError> {
    let start = ctx.plan.reports[ctx.ri].configs.start;
    let hits: Vec<usize> = ctx
        .configs()
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            let o = c.agents.first().map(|a| &a.options);
            *c.model == *model
                && o.is_some_and(|o| {
                    o.num_gpu == point.0
                        && o.num_ctx == point.1
                        && (point.0.is_none() || opt_eq(o.temperature, point.2))
                })
        })
        .map(|(i, _)| start + i)
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        _ => {
            let what = match point {
                (None, None, _) => {
                    format!("the Part A (5-prompt baseline) configuration of model `{model}`")
                }
                (g, c, tmp) => format!(
                    "the Part B configuration of model `{model}` with num_gpu {}, num_ctx {}, temperature {}",
                    g.map_or("-".into(), |x| x.to_string()),
                    c.map_or("-".into(), |x| x.to_string()),
                    tmp.map_or("-".into(), |x| x.to_string())
                ),
            };
            Err(ImportError::Csv {
                path: t.path.clone(),
                line,
                message: if hits.is_empty() {
                    format!(
                        "{what} is not in {} (`{}`)",
                        ctx.report(),
                        ctx.manifest_path().display()
                    )
                } else {
                    format!(
                        "{what} matches {} configurations of the manifest",
                        hits.len()
                    )
                },
                help: format!("the manifest's configurations are {}", ctx.expected_ids()),
            })
        }
    }
}

/// What the CSV rows held: Part A rows and cells, Part B rows, rows that record a failure.
#[derive(Default)]
struct Counts {
    rows_a: usize,
    rows_b: usize,
    failed_rows: usize,
    cells_a: usize,
}

/// Reads the TR108 CSVs.
pub(crate) fn read(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<Imported>, ImportError> {
    let found = find(ctx, files)?;
    let mut out = Vec::new();
    let mut n = Counts::default();
    // (directory, stem) → per (num_gpu, num_ctx, temperature) the recorded tokens_s of a sweep row.
    let mut sweep_values: HashMap<(PathBuf, String), Vec<SweepValue>> = HashMap::new();
    // (directory, stem) → the baseline rows' tokens_s.
    let mut baseline_values: HashMap<(PathBuf, String), Vec<Option<f64>>> = HashMap::new();
    let mut deferred: Vec<(PathBuf, Kind, String)> = Vec::new();
    for (path, kind, stem) in found {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        match kind {
            Kind::Baseline(tag) => {
                let values = read_baseline(ctx, &path, tag.as_deref(), &mut n, &mut out)?;
                baseline_values.insert((dir, stem), values);
            }
            Kind::Sweep(tag) => {
                let values = read_sweep(ctx, &path, tag.as_deref(), &mut n, &mut out)?;
                sweep_values.insert((dir, stem), values);
            }
            other => deferred.push((path, other, stem)),
        }
    }

    // Files that are not runs: read (so a damaged one is an error), and cross-checked.
    let mut not_used = Vec::new();
    for (path, kind, stem) in deferred {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let file = ctx.rel(&path);
        match kind {
            Kind::Summary => {
                check_summary(ctx, &path, &stem, sweep_values.get(&(dir, stem.clone())))?;
            }
            Kind::BaselineJson => {
                check_baseline_json(ctx, &path, &stem, baseline_values.get(&(dir, stem.clone())))?;
            }
            Kind::Other(what) => {
                let _: serde_json::Value = ctx.read_json(&path)?;
                ctx.files += 1;
                ctx.notes
                    .push(format!("`{}`: {what}; not a run", file.display()));
            }
            Kind::NotUsed => not_used.push(file.display().to_string()),
            Kind::Baseline(_) | Kind::Sweep(_) => {}
        }
    }
    if !not_used.is_empty() {
        ctx.warn(format!(
            "{} prompt-suite re-run file(s) not used by TR108 are not imported: {}",
            not_used.len(),
            not_used.join(", ")
        ));
    }
    let Counts {
        rows_a,
        rows_b,
        failed_rows,
        cells_a,
    } = n;
    ctx.notes.push(format!(
        "{} CSV result rows read: {rows_a} Part A rows → {cells_a} baseline cells (one request per prompt), {rows_b} Part B rows → {rows_b} sweep cells (one request each); {failed_rows} row(s) record a failure",
        rows_a + rows_b
    ));
    Ok(out)
}

/// The layout's files, for its errors.
const TEXT: LayoutText<'static> = LayoutText {
    expected: "`llama3/ollama_quant_bench.csv`, `llama3/ollama_param_tuning.csv`, `gemma3/<model>_baseline.csv`, `gemma3/<model>_param_tuning.csv`",
    holds: "result CSVs are `ollama_quant_bench.csv`, `ollama_param_tuning.csv`, `<model>_baseline.csv`, `<model>_param_tuning.csv`; also recognised: `*_param_tuning_summary.csv`, `<model>_baseline.json`, `baseline_{ml,system}_metrics.json`, Markdown",
    help: "move the file out of the directory, or point at the folder holding `llama3/` and `gemma3/`",
};

/// The result files of the tree; anything else is refused.
fn find(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<(PathBuf, Kind, String)>, ImportError> {
    let mut found: Vec<(PathBuf, Kind, String)> = Vec::new();
    let mut unknown = Vec::new();
    let (files, markdown) = super::context::without_markdown(ctx, files);
    for (f, c) in files {
        let name = c.last().cloned().unwrap_or_default();
        match classify(&name) {
            Some((k, stem)) if c.len() <= 2 => found.push((f.clone(), k, stem)),
            _ => unknown.push(f.clone()),
        }
    }
    let any_run = found
        .iter()
        .any(|(_, k, _)| matches!(k, Kind::Baseline(_) | Kind::Sweep(_)));
    // No Markdown count for `settle`: TR108 notes its Markdown reports in its own words.
    super::context::settle(ctx, &TEXT, any_run, &unknown, 0)?;
    if markdown > 0 {
        ctx.notes.push(format!(
            "{markdown} Markdown report(s) recognised and not imported"
        ));
    }

    Ok(found)
}

/// A Part A baseline CSV: one cell per model (one request per prompt); returns the rows'
/// tokens_s, for the cross-check with the JSON beside it.
fn read_baseline(
    ctx: &mut Ctx,
    path: &Path,
    tag: Option<&str>,
    n: &mut Counts,
    out: &mut Vec<Imported>,
) -> Result<Vec<Option<f64>>, ImportError> {
    let t = Table::read(ctx, path)?;
    ctx.files += 1;
    // Group rows by model (the Llama file holds three).
    let mut groups: BTreeMap<String, Vec<&super::csv::Record>> = BTreeMap::new();
    let mut order = Vec::new();
    for row in &t.rows {
        let tag = match tag {
            Some(t) => t.to_owned(),
            None => t.get(row, "model")?.to_owned(),
        };
        if !groups.contains_key(&tag) {
            order.push(tag.clone());
        }
        groups.entry(tag).or_default().push(row);
    }
    let mut values = Vec::new();
    for tag in order {
        let rows = &groups[&tag];
        let model = model_of(ctx, &tag, path)?;
        let ci = find_config(ctx, &model, (None, None, None), &t, rows[0].0)?;
        let ni = ctx.node(ci, 1, path)?;
        let c = &ctx.plan.configs[ci];
        let prompts: Vec<String> = match &ctx.spec().workloads[c.workload].task {
            Task::SingleInference { prompts } => prompts.clone(),
            _ => Vec::new(),
        };
        let mut reqs: Vec<(u32, RequestRow)> = Vec::new();
        for (pos, row) in rows.iter().enumerate() {
            let index = prompt_of(ctx, &t, row, pos, &tag, &prompts, &reqs, path)?;
            let r = request(&t, row, index, ctx)?;
            values.push(r.throughput_tok_s);
            n.failed_rows += usize::from(!r.record.ok());
            reqs.push((index, r));
        }
        if reqs.len() < prompts.len() {
            let msg = format!(
                "`{}`: `{tag}` has {} of the {} prompts; the cell holds only those",
                ctx.rel(path).display(),
                reqs.len(),
                prompts.len()
            );
            ctx.warn(msg);
        }
        reqs.sort_by_key(|(i, _)| *i);
        let rows: Vec<RequestRow> = reqs.into_iter().map(|(_, r)| r).collect();
        n.rows_a += rows.len();
        n.cells_a += 1;
        out.push(cell(ctx, ci, ni, rows, path));
    }
    Ok(values)
}

/// The prompt index of a baseline row, checked against the manifest's prompts and the rows
/// already read.
#[allow(clippy::too_many_arguments)]
fn prompt_of(
    ctx: &mut Ctx,
    t: &Table,
    row: &super::csv::Record,
    pos: usize,
    tag: &str,
    prompts: &[String],
    reqs: &[(u32, RequestRow)],
    path: &Path,
) -> Result<u32, ImportError> {
    let index = if t.has("prompt_index") {
        let p = t.need(row, "prompt_index")?;
        if p < 1.0 || p.fract() != 0.0 {
            return Err(ImportError::Csv {
                path: path.to_path_buf(),
                line: row.0,
                message: format!("column `prompt_index`: `{p}` is not a prompt number (1..)"),
                help: "restore the file from the original repository".into(),
            });
        }
        p as u32 - 1
    } else {
        pos as u32
    };
    if let Some((_, _)) = reqs.iter().find(|(i, _)| *i == index) {
        return Err(ImportError::Csv {
            path: path.to_path_buf(),
            line: row.0,
            message: format!("prompt {} of `{tag}` appears twice", index + 1),
            help: "each model has one row per prompt; remove the duplicate".into(),
        });
    }
    let text_col = if t.has("prompt_text") {
        "prompt_text"
    } else {
        "prompt"
    };
    if t.has(text_col) {
        let text = t.get(row, text_col)?;
        match prompts.get(index as usize) {
            Some(p) if p.trim() == text => {}
            Some(p) => {
                let msg = format!(
                    "`{}` line {}: prompt {} of `{tag}` is `{text}`, the manifest's is `{p}`",
                    ctx.rel(path).display(),
                    row.0,
                    index + 1
                );
                ctx.warn(msg);
            }
            None => {
                return Err(ImportError::Csv {
                    path: path.to_path_buf(),
                    line: row.0,
                    message: format!(
                        "prompt {} of `{tag}`, but the manifest's workload has {} prompt(s)",
                        index + 1,
                        prompts.len()
                    ),
                    help: "use the TR108 manifest".into(),
                });
            }
        }
    }
    Ok(index)
}

/// A Part B sweep CSV: one cell per row (one request each); returns each row's
/// configuration values and tokens_s, for the cross-check with the summary beside it.
fn read_sweep(
    ctx: &mut Ctx,
    path: &Path,
    tag: Option<&str>,
    n: &mut Counts,
    out: &mut Vec<Imported>,
) -> Result<Vec<SweepValue>, ImportError> {
    let t = Table::read(ctx, path)?;
    ctx.files += 1;
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut values = Vec::new();
    for row in &t.rows {
        let tag = match tag {
            Some(t) => t.to_owned(),
            None => t.get(row, "model")?.to_owned(),
        };
        let model = model_of(ctx, &tag, path)?;
        let g = t.need(row, "num_gpu")?;
        let c = t.need(row, "num_ctx")?;
        let temp = t.need(row, "temperature")?;
        if g < 0.0 || g.fract() != 0.0 || c < 0.0 || c.fract() != 0.0 {
            return Err(ImportError::Csv {
                path: path.to_path_buf(),
                line: row.0,
                message: "num_gpu and num_ctx must be whole numbers".into(),
                help: "restore the file from the original repository".into(),
            });
        }
        let (g, c) = (g as u32, c as u32);
        if t.has("config_name") {
            let name = t.get(row, "config_name")?;
            if name != format!("g{g}_c{c}_t{temp}") {
                let msg = format!(
                    "`{}` line {}: config_name `{name}` does not match num_gpu {g}, num_ctx {c}, temperature {temp} (the values are used)",
                    ctx.rel(path).display(),
                    row.0
                );
                ctx.warn(msg);
            }
        }
        let ci = find_config(ctx, &model, (Some(g), Some(c), Some(temp)), &t, row.0)?;
        if let Some(first) = seen.insert(ci, row.0) {
            return Err(ImportError::Csv {
                path: path.to_path_buf(),
                line: row.0,
                message: format!(
                    "the same configuration (`{}`) as line {first}",
                    ctx.plan.configs[ci].id
                ),
                help: "TR108 ran one request per sweep configuration; remove the duplicate row"
                    .into(),
            });
        }
        let ni = ctx.node(ci, 1, path)?;
        let r = request(&t, row, 0, ctx)?;
        values.push(((g, c, temp), r.throughput_tok_s));
        n.failed_rows += usize::from(!r.record.ok());
        n.rows_b += 1;
        out.push(cell(ctx, ci, ni, vec![r], path));
    }
    Ok(values)
}

/// A sweep summary CSV checked against the sweep rows beside it.
fn check_summary(
    ctx: &mut Ctx,
    path: &Path,
    stem: &str,
    values: Option<&Vec<SweepValue>>,
) -> Result<(), ImportError> {
    let file = ctx.rel(path);
    let t = Table::read(ctx, path)?;
    ctx.files += 1;
    let Some(values) = values else {
        ctx.warn(format!(
            "`{}`: no `{stem}_param_tuning.csv` beside it to check against",
            file.display()
        ));
        return Ok(());
    };
    for row in &t.rows {
        let (g, c, temp) = (
            t.need(row, "num_gpu")?,
            t.need(row, "num_ctx")?,
            t.need(row, "temperature")?,
        );
        let mean = t.need(row, "mean_tokens_s")?;
        let hit = values.iter().find(|((vg, vc, vt), _)| {
            f64::from(*vg) == g && f64::from(*vc) == c && (vt - temp).abs() < 1e-9
        });
        match hit {
            Some((_, Some(v))) if (v - mean).abs() <= 0.01 => {}
            Some((_, v)) => ctx.warn(format!(
                "`{}` line {}: mean_tokens_s {mean} but the sweep row has {}",
                file.display(),
                row.0,
                v.map_or("no value (failed)".into(), |v| v.to_string())
            )),
            None => ctx.warn(format!(
                "`{}` line {}: no sweep row for {g}/{c}/{temp}",
                file.display(),
                row.0
            )),
        }
    }
    Ok(())
}

/// A baseline JSON checked against the baseline CSV beside it.
fn check_baseline_json(
    ctx: &mut Ctx,
    path: &Path,
    stem: &str,
    csv_values: Option<&Vec<Option<f64>>>,
) -> Result<(), ImportError> {
    let file = ctx.rel(path);
    let v: serde_json::Value = ctx.read_json(path)?;
    ctx.files += 1;
    let results = v
        .get("results")
        .and_then(|r| r.as_array())
        .ok_or_else(|| ImportError::Key {
            path: path.to_path_buf(),
            key: "results".into(),
            message: "missing or not a list".into(),
            help: "this is not a TR108 `<model>_baseline.json`; restore the file".into(),
        })?;
    let json_values: Vec<Option<f64>> = results
        .iter()
        .map(|r| r.get("tokens_s").and_then(serde_json::Value::as_f64))
        .collect();
    let same = csv_values.is_some_and(|c| {
        c.len() == json_values.len()
            && c.iter().zip(&json_values).all(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                (None, None) => true,
                _ => false,
            })
    });
    if !same {
        ctx.warn(format!(
            "`{}` does not hold the same results as `{stem}_baseline.csv` beside it (the CSV is imported)",
            file.display()
        ));
    }
    Ok(())
}

fn cell(
    ctx: &mut Ctx,
    ci: usize,
    ni: petgraph::graph::NodeIndex,
    rows: Vec<RequestRow>,
    path: &Path,
) -> Imported {
    let options = ctx.plan.configs[ci].agents[0].options.clone();
    let started = rows
        .iter()
        .map(|r| r.record.sent_at_unix_ms)
        .filter(|t| t.is_finite())
        .fold(f64::NAN, f64::min);
    let aggregate = aggregate_rows(&rows);
    let agent = ctx.agent(ci, 0, true, options, f64::NAN, None, aggregate, rows);
    let record = ctx.record(ni, vec![agent], f64::NAN, started);
    Imported {
        file: ctx.rel(path),
        record,
    }
}
