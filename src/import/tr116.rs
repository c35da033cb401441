//! TR116: three models × two languages of the multi-agent benchmark, plus the single-agent
//! add-on (tr-spec §10.1, §10.5), all in one tree:
//!
//! ```text
//! multi/rust/<model>/<scenario>_gpu80_ctx512_temp10/run_k/metrics.json              H6v2 (Rust)
//! multi/rust/<model>/<scenario>_gpu80_ctx512_temp10/summary.json                    its summary
//! multi/python/<model>/<model tag>/<scenario>_gpu80_ctx512_temp10/run_k/metrics.json H4 (Python)
//! multi/python/<model>/<model tag>/<scenario>_gpu80_ctx512_temp10/summary.json      its summary
//! single/rust/<model>/<config>/data/metrics.json                                    H5 (Rust)
//! single/python/<model>/<config>/data/metrics.json                                  H2 (Python)
//! **/*.md                                                                           reports, not runs
//! ```
//!
//! The source is `results/` or any folder below it (`results/multi`, `results/multi/rust`, one
//! model's folder…): the folder names it sits in stand for the path components it lacks.
//! `<model>` is the launcher's slug of the model tag (`gemma3_latest`, `llama3p1_8b_q4_0`,
//! `qwen2p5_7b`: `.` → `p`, `:`/`-` → `_`, `-instruct` dropped), the Python `<model tag>` the tag
//! with `:` → `_`; both map onto the manifest's model ids. Scenario folders are spelled with `-`
//! (`baseline-vs-chimera`), the configuration ids with `_`. Single-agent folders
//! (`gpu60_ctx512_temp08`, temperature in tenths) map onto the configuration of that language
//! and model whose chimera agent has those options.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::context::{Ctx, Imported, LayoutText};
use super::error::ImportError;
use super::h6::{Efficiencies, check_summary, run_folder};
use crate::manifest::{Language, Role, ScenarioKind};

/// The layout's files, for its errors.
const TEXT: LayoutText<'static> = LayoutText {
    expected: "`multi/<language>/<model>/…/run_k/metrics.json` or `single/<language>/<model>/<config>/data/metrics.json` (the `results/` folder, or a folder below it)",
    holds: "runs are `multi/rust/<model>/<scenario>/run_k/metrics.json`, `multi/python/<model>/<model tag>/<scenario>/run_k/metrics.json` (each scenario with its `summary.json`) and `single/<language>/<model>/<config>/data/metrics.json`",
    help: "move the file out of the directory, or point at the report's own raw-data folder (`results/`)",
};

/// What a file of the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A multi-agent run, repetition k.
    Multi(u32),
    /// A multi-agent configuration's summary.
    Summary,
    /// A single-agent invocation (all its repetitions).
    Single,
}

/// One file of the tree, placed.
struct Found {
    path: PathBuf,
    kind: Kind,
    language: Language,
    /// The model folder (and, for Python multi-agent runs, the model-tag folder below it).
    models: Vec<String>,
    /// The scenario or configuration folder.
    folder: String,
    /// Its directory, for messages.
    dir: PathBuf,
}

/// Reads every run of the tree.
pub(crate) fn read(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<Imported>, ImportError> {
    let found = classify(ctx, files)?;
    let sleep_ms = ctx.spec().between_runs.sleep_ms as f64;
    let mut eff: Efficiencies = HashMap::new();
    let mut configs: HashMap<PathBuf, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut negated = false;
    for f in found.iter().filter(|f| f.kind != Kind::Summary) {
        let ci = config_of(ctx, &mut configs, f)?;
        match (f.kind, f.language) {
            (Kind::Multi(k), Language::Rust) => {
                let (imported, e) = super::h6::read_run(ctx, ci, &f.path, k, k)?;
                eff.insert((ci, k), e);
                out.push(imported);
            }
            (Kind::Multi(k), Language::Python) => {
                let (imported, e) = super::h4::read_run(ctx, ci, &f.path, k)?;
                eff.insert((ci, k), e);
                out.push(imported);
            }
            (_, Language::Rust) => {
                out.extend(super::single::read_h5(ctx, ci, &f.path, sleep_ms)?);
            }
            (_, Language::Python) => {
                let (cells, neg) = super::single::read_h2(ctx, ci, &f.path)?;
                out.extend(cells);
                negated |= neg;
            }
        }
    }
    for f in found.iter().filter(|f| f.kind == Kind::Summary) {
        let ci = config_of(ctx, &mut configs, f)?;
        check_summary(ctx, &eff, ci, &f.path, None)?;
    }
    if negated {
        super::single::note_h2_negated(ctx);
    }
    Ok(out)
}

/// The path components the source itself stands for: its own name and those above it from
/// the nearest `multi` or `single` folder on (`…/results/multi/rust` → `multi`, `rust`).
fn implied(source: &Path) -> Vec<String> {
    let names: Vec<String> = source
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let tail = names.len().saturating_sub(5);
    let Some(i) = names[tail..]
        .iter()
        .rposition(|n| n == "multi" || n == "single")
    else {
        return Vec::new();
    };
    let prefix = names[tail + i..].to_vec();
    let language_ok = prefix.get(1).is_none_or(|l| l == "rust" || l == "python");
    if language_ok { prefix } else { Vec::new() }
}

/// Every file of the tree, placed; anything else is refused.
fn classify(ctx: &mut Ctx, files: &[PathBuf]) -> Result<Vec<Found>, ImportError> {
    let prefix = implied(ctx.source);
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    let (files, markdown) = super::context::without_markdown(ctx, files);
    for (f, c) in files {
        let c: Vec<&str> = prefix.iter().chain(c.iter()).map(String::as_str).collect();
        match place(f, &c) {
            Some(x) => found.push(x),
            None => unknown.push(f.clone()),
        }
    }
    let any_run = found.iter().any(|f| f.kind != Kind::Summary);
    super::context::settle(ctx, &TEXT, any_run, &unknown, markdown)?;
    Ok(found)
}

/// The place of file `f` whose path below `results/` is `c`, if it is one of the layout's.
fn place(f: &Path, c: &[&str]) -> Option<Found> {
    let dir = f.parent()?;
    let found = |kind, language, models: &[&str], folder: &str, dir: &Path| Found {
        path: f.to_path_buf(),
        kind,
        language,
        models: models.iter().map(|m| m.to_string()).collect(),
        folder: folder.to_owned(),
        dir: dir.to_path_buf(),
    };
    let up = |d: &Path| d.parent().map(Path::to_path_buf).unwrap_or_default();
    Some(match c {
        ["multi", "rust", model, scenario, run, "metrics.json"] => found(
            Kind::Multi(run_folder(run)?),
            Language::Rust,
            &[*model],
            scenario,
            &up(dir),
        ),
        ["multi", "python", model, tag, scenario, run, "metrics.json"] => found(
            Kind::Multi(run_folder(run)?),
            Language::Python,
            &[*model, *tag],
            scenario,
            &up(dir),
        ),
        ["multi", "rust", model, scenario, "summary.json"] => {
            found(Kind::Summary, Language::Rust, &[*model], scenario, dir)
        }
        ["multi", "python", model, tag, scenario, "summary.json"] => found(
            Kind::Summary,
            Language::Python,
            &[*model, *tag],
            scenario,
            dir,
        ),
        ["single", lang, model, config, "data", "metrics.json"] => found(
            Kind::Single,
            lang.parse::<Language>().ok()?,
            &[*model],
            config,
            &up(dir),
        ),
        _ => return None,
    })
}

/// A model folder name or tag, compared loosely: lower case, `.` → `p`, `:`/`-` → `_`, the
/// `instruct` part dropped (`llama3.1:8b-instruct-q4_0` and `llama3p1_8b_q4_0` agree).
fn model_key(s: &str) -> String {
    let s = s.to_ascii_lowercase().replace('.', "p");
    s.split([':', '-', '_'])
        .filter(|p| !p.is_empty() && *p != "instruct")
        .collect::<Vec<_>>()
        .join("_")
}

/// The manifest's model id a model folder names.
fn model_of(ctx: &Ctx, folder: &str, dir: &Path) -> Result<String, ImportError> {
    let key = model_key(folder);
    let models = &ctx.spec().models;
    if let Some(m) = models
        .iter()
        .find(|m| model_key(&m.id) == key || model_key(&m.tag) == key)
    {
        return Ok(m.id.to_string());
    }
    let expected: Vec<String> = models
        .iter()
        .map(|m| format!("{} ({})", model_key(&m.tag), m.id))
        .collect();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    Err(ctx.unknown_id(
        dir,
        "model folder",
        folder,
        super::convert::list(&expected),
        "model folders are named after the model tag (`.` → `p`, `:` → `_`) or the manifest's model id".into(),
    ))
}

/// The configuration of a placed file (one look-up per folder).
fn config_of(
    ctx: &Ctx,
    seen: &mut HashMap<PathBuf, usize>,
    f: &Found,
) -> Result<usize, ImportError> {
    if let Some(&ci) = seen.get(&f.dir) {
        return Ok(ci);
    }
    let model_dir = |depth: usize| {
        let mut d = f.dir.as_path();
        for _ in 0..depth {
            d = d.parent().unwrap_or(d);
        }
        d.to_path_buf()
    };
    let n = f.models.len();
    let model = model_of(ctx, &f.models[0], &model_dir(n))?;
    if let Some(tag) = f.models.get(1) {
        let inner = model_of(ctx, tag, &model_dir(1))?;
        if inner != model {
            return Err(ImportError::Invalid {
                path: model_dir(1),
                message: format!(
                    "model folder `{tag}` (model `{inner}`) is inside the folder of model `{model}` (`{}`)",
                    f.models[0]
                ),
                help: "a Python run folder sits in `<model>/<the same model's tag>/`; move it"
                    .into(),
            });
        }
    }
    let ci = match f.kind {
        Kind::Single => single_config(ctx, f, &model)?,
        _ => {
            let id = format!("{}/{model}/{}", f.language, f.folder);
            match find_id(ctx, &id) {
                Some(ci) => ci,
                None => ctx.config(&id.replace('-', "_"), &f.dir, "scenario folder")?,
            }
        }
    };
    let c = &ctx.plan.configs[ci];
    if c.language.is_some_and(|l| l != f.language) || *c.model != *model {
        return Err(ImportError::Invalid {
            path: f.dir.clone(),
            message: format!(
                "the folder holds {} runs of model `{model}`, but the manifest's `{}` is for {} and `{}`",
                f.language,
                c.id,
                c.language
                    .map_or("any language".to_owned(), |l| l.to_string()),
                c.model
            ),
            help: "fix the configuration's language or model in the manifest, or move the folder"
                .into(),
        });
    }
    seen.insert(f.dir.clone(), ci);
    Ok(ci)
}

/// The configuration with id `id`, or the one id that equals it with `-` read as `_`.
fn find_id(ctx: &Ctx, id: &str) -> Option<usize> {
    let start = ctx.plan.reports[ctx.ri].configs.start;
    let configs = ctx.configs();
    if let Some(i) = configs.iter().position(|c| &*c.id == id) {
        return Some(start + i);
    }
    let norm = |s: &str| s.replace('-', "_");
    let hits: Vec<usize> = configs
        .iter()
        .enumerate()
        .filter(|(_, c)| norm(&c.id) == norm(id))
        .map(|(i, _)| start + i)
        .collect();
    match hits.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// `gpu60_ctx512_temp08` → (60, 512, 0.8): the launcher wrote the temperature in tenths
/// (`temp08`, `temp10`); `temp0p8` is read too.
fn single_folder(folder: &str) -> Option<(u32, u32, f64)> {
    let rest = folder.strip_prefix("gpu")?;
    let (gpu, rest) = rest.split_once("_ctx")?;
    let (ctx, temp) = rest.split_once("_temp")?;
    let t = match temp.split_once('p') {
        Some((a, b)) => format!("{a}.{b}").parse().ok()?,
        None if !temp.is_empty() && temp.bytes().all(|b| b.is_ascii_digit()) => {
            temp.parse::<f64>().ok()? / 10.0
        }
        None => return None,
    };
    Some((gpu.parse().ok()?, ctx.parse().ok()?, t))
}

/// The single-agent configuration of the file's language and `model` whose chimera agent has
/// the options its folder names.
fn single_config(ctx: &Ctx, f: &Found, model: &str) -> Result<usize, ImportError> {
    let start = ctx.plan.reports[ctx.ri].configs.start;
    let want = single_folder(&f.folder);
    let hit = want.and_then(|(gpu, num_ctx, temp)| {
        ctx.configs().iter().position(|c| {
            c.scenario_kind == ScenarioKind::Single
                && c.language == Some(f.language)
                && *c.model == *model
                && c.agents.iter().any(|a| {
                    a.role == Role::Chimera
                        && a.options.num_gpu == Some(gpu)
                        && a.options.num_ctx == Some(num_ctx)
                        && a.options
                            .temperature
                            .is_some_and(|t| (t - temp).abs() < 1e-6)
                })
        })
    });
    match hit {
        Some(i) => Ok(start + i),
        None => ctx.config(
            &format!("single/{}/{model}/{}", f.language, f.folder),
            &f.dir,
            "configuration folder",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_folders_and_tags_agree() {
        assert_eq!(model_key("llama3p1_8b_q4_0"), "llama3p1_8b_q4_0");
        assert_eq!(model_key("llama3.1:8b-instruct-q4_0"), "llama3p1_8b_q4_0");
        assert_eq!(model_key("llama3.1_8b-instruct-q4_0"), "llama3p1_8b_q4_0");
        assert_eq!(model_key("qwen2.5:7b"), model_key("qwen2p5_7b"));
        assert_eq!(model_key("gemma3:latest"), "gemma3_latest");
    }

    #[test]
    fn single_folders_give_their_options() {
        assert_eq!(single_folder("gpu60_ctx512_temp08"), Some((60, 512, 0.8)));
        assert_eq!(single_folder("gpu80_ctx1024_temp10"), Some((80, 1024, 1.0)));
        assert_eq!(
            single_folder("gpu80_ctx1024_temp0p8"),
            Some((80, 1024, 0.8))
        );
        assert_eq!(single_folder("baseline_default"), None);
        assert_eq!(single_folder("gpu80_ctx1024_temp"), None);
    }

    #[test]
    fn the_source_folder_stands_for_its_components() {
        let p = |s: &str| implied(Path::new(s));
        assert!(p("/x/results").is_empty());
        assert_eq!(p("/x/results/multi"), ["multi"]);
        assert_eq!(
            p("/x/results/multi/rust/gemma3_latest"),
            ["multi", "rust", "gemma3_latest"]
        );
        assert_eq!(p("../results/single/python"), ["single", "python"]);
        assert!(p("/x/single/results").is_empty());
    }
}
