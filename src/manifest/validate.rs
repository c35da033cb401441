//! Rules a type cannot express: references between ids, uniqueness, ranges and well-formed
//! URLs. Every violation becomes a located [`Diagnostic`]; all of them are reported at once.

use std::collections::{BTreeMap, BTreeSet};

use super::Manifest;
use super::axis::Axis;
use super::diagnostic::{Diagnostic, nearest};
use super::locate::KeyPath;
use super::spec::*;

struct Ctx<'a> {
    m: &'a Manifest,
    out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn emit(
        &mut self,
        path: KeyPath,
        msg: impl Into<String>,
        f: impl FnOnce(Diagnostic) -> Diagnostic,
    ) {
        let d = Diagnostic::new(&self.m.path, msg).path(&self.m.source, &path, false);
        self.out.push(f(d));
    }

    /// Checks that `id` names one of `known`; `what` is e.g. "endpoint".
    fn reference(&mut self, path: KeyPath, what: &str, id: &str, known: &[&str]) {
        if known.contains(&id) {
            return;
        }
        let listed = if known.is_empty() {
            format!("no {what} is declared")
        } else {
            format!(
                "one of {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let help = match nearest(id, known.iter().copied()) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("declare {what} `{id}` or use a declared one"),
        };
        self.emit(path, format!("unknown {what} `{id}`"), |d| {
            d.expected(listed).found(format!("`{id}`")).help(help)
        });
    }

    fn unique<'s>(&mut self, base: &KeyPath, what: &str, ids: impl Iterator<Item = &'s str>) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, id) in ids.enumerate() {
            let path = base.index(i).key("id");
            if id.trim().is_empty() {
                self.emit(path, format!("empty {what} id"), |d| {
                    d.expected("a non-empty id")
                        .help(format!("give the {what} a name"))
                });
                continue;
            }
            if let Some(first) = seen.insert(id, i) {
                self.emit(path, format!("duplicate {what} id `{id}`"), |d| {
                    d.expected(format!("ids unique among {what}s"))
                        .found(format!("`{id}` again (first at index {first})"))
                        .help(format!("rename one of the two {what}s"))
                });
            }
        }
    }
}

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

/// Most runs (configurations × repetitions) one manifest may plan. Planning holds every
/// configuration and cell in memory (about 270 MiB per million single cells, `make
/// bench-plan`); a few lines of axes can multiply to billions, which would exhaust memory
/// instead of being refused.
pub const MAX_PLANNED_RUNS: u64 = 2_000_000;

/// An upper bound of the runs block `b` plans: the product of its axes' value counts (one
/// point without axes) plus its `include` points, times its explicit configurations (when
/// any), times its repetitions; `exclude` is not subtracted. Saturates instead of overflowing.
fn planned_runs(s: &ManifestSpec, b: &Block) -> u64 {
    let points = Axis::ALL
        .iter()
        .filter_map(|a| b.axes.count(*a))
        .fold(1u64, |p, n| p.saturating_mul(n as u64))
        .saturating_add(b.include.len() as u64);
    points
        .saturating_mul(b.configurations.len().max(1) as u64)
        .saturating_mul(u64::from(b.repetitions.unwrap_or(s.repetitions)))
}

fn check_floats(ctx: &mut Ctx<'_>, path: &KeyPath, o: &Options) {
    for (name, v, lo, hi) in [
        ("temperature", o.temperature, 0.0, 100.0),
        ("top_p", o.top_p, 0.0, 1.0),
        ("repeat_penalty", o.repeat_penalty, 0.0, 100.0),
    ] {
        if let Some(x) = v
            && !(x.is_finite() && x >= lo && x <= hi)
        {
            ctx.emit(path.key(name), format!("`{name}` is out of range"), |d| {
                d.expected(format!("a number from {lo} to {hi}"))
                    .found(format!("`{x}`"))
            });
        }
    }
}

fn dup_values<T: PartialEq + std::fmt::Debug>(
    ctx: &mut Ctx<'_>,
    path: KeyPath,
    name: &str,
    vals: Option<&[T]>,
) {
    let vals = vals.unwrap_or_default();
    if vals.is_empty() {
        ctx.emit(path, format!("axis `{name}` is empty"), |d| {
            d.expected("at least one value").found("`[]`").help(format!(
                "list the values of `{name}`, or remove the axis to leave it unvaried"
            ))
        });
        return;
    }
    for (i, v) in vals.iter().enumerate() {
        if vals[..i].contains(v) {
            ctx.emit(path.index(i), format!("axis `{name}` lists a value twice"), |d| d
                .expected("distinct values")
                .found(format!("`{v:?}` again"))
                .help("remove the repeated value; use `repetitions` to measure a point more than once"));
        }
    }
}

/// The declared ids a reference may name.
struct Ids<'a> {
    endpoints: Vec<&'a str>,
    models: Vec<&'a str>,
    workloads: Vec<&'a str>,
    scenarios: Vec<&'a str>,
}

impl<'a> Ids<'a> {
    fn of(s: &'a ManifestSpec) -> Self {
        Self {
            endpoints: s.endpoints.iter().map(|x| x.id.as_str()).collect(),
            models: s.models.iter().map(|x| x.id.as_str()).collect(),
            workloads: s.workloads.iter().map(|x| x.id.as_str()).collect(),
            scenarios: s.scenarios.iter().map(|x| x.id.as_str()).collect(),
        }
    }
}

/// Checks every rule of one manifest; returns all violations, in file order.
pub fn check(m: &Manifest) -> Vec<Diagnostic> {
    let mut ctx = Ctx { m, out: Vec::new() };
    let ids = Ids::of(&m.spec);
    check_reports(&mut ctx);
    check_settings(&mut ctx);
    check_endpoints(&mut ctx);
    check_models(&mut ctx);
    check_workloads(&mut ctx);
    check_scenarios(&mut ctx, &ids);
    check_matrix_size(&mut ctx);
    check_blocks(&mut ctx, &ids);
    check_references(&mut ctx, &ids);
    ctx.out.sort_by_key(|d| d.pos.map(|p| (p.line, p.column)));
    ctx.out
}

/// The format and the report ids: its own, `depends_on` and `compare_with`.
fn check_reports(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    if s.format != MANIFEST_FORMAT {
        ctx.emit(root.key("format"), "unsupported manifest format", |d| {
            d.expected(format!("`{MANIFEST_FORMAT}`"))
                .found(format!("`{}`", s.format))
                .help("this chimera reads format 1; upgrade chimera or convert the manifest")
        });
    }
    if !is_report_id(&s.report) {
        ctx.emit(root.key("report"), "invalid report id", |d| {
            d.expected("`TR` + three digits, optionally `_v` + a number and `_` + a lower-case tag (e.g. `TR114_v2`, `TR114_demo`)")
                .found(format!("`{}`", s.report))
        });
    }
    for (key, list) in [
        ("depends_on", &s.depends_on),
        ("compare_with", &s.compare_with),
    ] {
        for (i, r) in list.iter().enumerate() {
            let p = root.key(key).index(i);
            if !is_report_id(r) {
                ctx.emit(p, format!("invalid report id in `{key}`"), |d| {
                    d.expected("a report id such as `TR110`")
                        .found(format!("`{r}`"))
                });
            } else if *r == s.report {
                ctx.emit(p, format!("report `{r}` lists itself in `{key}`"), |d| {
                    d.help("remove it: a report cannot depend on itself")
                });
            } else if list[..i].contains(r) {
                ctx.emit(p, format!("`{r}` is listed twice in `{key}`"), |d| {
                    d.help("remove the repeated entry")
                });
            }
        }
    }
}

/// Repetitions, timeouts, retry and telemetry settings.
fn check_settings(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    if s.repetitions == 0 {
        ctx.emit(
            root.key("repetitions"),
            "`repetitions` must be at least 1",
            |d| d.expected("a whole number ≥ 1").found("`0`"),
        );
    }
    if !(s.request_timeout_s.is_finite() && s.request_timeout_s > 0.0) {
        ctx.emit(
            root.key("request_timeout_s"),
            "`request_timeout_s` must be positive",
            |d| {
                d.expected("seconds > 0")
                    .found(format!("`{}`", s.request_timeout_s))
            },
        );
    }
    if s.retry.backoff_ms > s.retry.max_backoff_ms {
        ctx.emit(
            root.key("retry").key("backoff_ms"),
            "`backoff_ms` exceeds `max_backoff_ms`",
            |d| {
                d.expected(format!("at most {} ms", s.retry.max_backoff_ms))
                    .found(format!("{} ms", s.retry.backoff_ms))
            },
        );
    }
    if s.telemetry.period_ms < 10 {
        ctx.emit(
            root.key("telemetry").key("period_ms"),
            "telemetry period is too short",
            |d| {
                d.expected("at least 10 ms")
                    .found(format!("{} ms", s.telemetry.period_ms))
                    .help("NVML readings cost about a millisecond each; 100 ms is the default")
            },
        );
    }
    match (&s.telemetry.source, &s.telemetry.dcgm_url) {
        (TelemetrySource::Dcgm, None) => {
            ctx.emit(
                root.key("telemetry").key("source"),
                "`source: dcgm` needs `dcgm_url`",
                |d| d.help("add `dcgm_url: http://host:9400/metrics`"),
            );
        }
        (_, Some(u)) => {
            let base = u.strip_suffix("/metrics").unwrap_or(u);
            if let Some(why) = url_problem(base) {
                ctx.emit(
                    root.key("telemetry").key("dcgm_url"),
                    "invalid `dcgm_url`",
                    |d| d.expected(why).found(format!("`{u}`")),
                );
            }
        }
        _ => {}
    }
}

/// Endpoint ids, URLs, resources and managed servers.
fn check_endpoints(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    ctx.unique(
        &root.key("endpoints"),
        "endpoint",
        s.endpoints.iter().map(|e| e.id.as_str()),
    );
    if s.endpoints.is_empty() && !s.matrix.is_empty() {
        ctx.emit(root.key("endpoints"), "no endpoints declared", |d| d.expected("at least one endpoint").help("add `- {id: ollama, kind: ollama, url: http://127.0.0.1:11434, resource: local:gpu0}`"));
    }
    for (i, e) in s.endpoints.iter().enumerate() {
        let p = root.key("endpoints").index(i);
        if let Some(why) = url_problem(&e.url) {
            ctx.emit(
                p.key("url"),
                format!("invalid URL for endpoint `{}`", e.id),
                |d| {
                    d.expected(format!("`http://host:port` ({why})"))
                        .found(format!("`{}`", e.url))
                },
            );
        }
        if let Some(u) = &e.gpu_metrics_url {
            let base = u.strip_suffix("/metrics").unwrap_or(u);
            if let Some(why) = url_problem(base) {
                ctx.emit(p.key("gpu_metrics_url"), "invalid `gpu_metrics_url`", |d| {
                    d.expected(format!("`http://host:port/metrics` ({why})"))
                        .found(format!("`{u}`"))
                });
            }
            if e.resource.gpu().is_none() {
                ctx.emit(
                    p.key("resource"),
                    "a remote GPU needs its index in `resource`",
                    |d| {
                        d.expected(
                            "`<host>:gpu<N>`, e.g. `gpu-host:gpu0`, naming the exporter's GPU N",
                        )
                        .found(format!("`{}`", e.resource))
                    },
                );
            }
        }
        if e.resource.is_blank() {
            ctx.emit(p.key("resource"), "empty resource", |d| {
                d.expected("the GPU this server computes on, e.g. `local:gpu0`")
            });
        }
        if let Some(mg) = &e.managed {
            if mg.command.is_empty() || mg.command[0].trim().is_empty() {
                ctx.emit(
                    p.key("managed").key("command"),
                    "empty managed command",
                    |d| d.expected("a program and its arguments, e.g. `[ollama, serve]`"),
                );
            }
            if !(mg.startup_timeout_s.is_finite() && mg.startup_timeout_s > 0.0) {
                ctx.emit(
                    p.key("managed").key("startup_timeout_s"),
                    "startup timeout must be positive",
                    |d| d.found(format!("`{}`", mg.startup_timeout_s)),
                );
            }
        }
    }
}

/// Model ids, tags and digests.
fn check_models(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    ctx.unique(
        &root.key("models"),
        "model",
        s.models.iter().map(|x| x.id.as_str()),
    );
    for (i, md) in s.models.iter().enumerate() {
        let p = root.key("models").index(i);
        if md.tag.trim().is_empty() {
            ctx.emit(p.key("tag"), "empty model tag", |d| {
                d.expected("a server tag such as `gemma3:latest`")
            });
        }
        if let Some(dg) = &md.digest {
            let hex = dg.strip_prefix("sha256:").unwrap_or(dg);
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                ctx.emit(p.key("digest"), "invalid model digest", |d| {
                    d.expected("`sha256:` followed by 64 hex digits")
                        .found(format!("`{dg}`"))
                });
            }
        }
    }
}

/// Workload ids, prompts, templates and corpora.
fn check_workloads(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    ctx.unique(
        &root.key("workloads"),
        "workload",
        s.workloads.iter().map(|x| x.id.as_str()),
    );
    for (i, w) in s.workloads.iter().enumerate() {
        let p = root.key("workloads").index(i).key("task");
        match &w.task {
            Task::SingleInference { prompts } => {
                if prompts.is_empty() {
                    ctx.emit(p.key("prompts"), "no prompts", |d| {
                        d.expected("at least one prompt").found("`[]`")
                    });
                }
                for (j, pr) in prompts.iter().enumerate() {
                    if pr.trim().is_empty() {
                        ctx.emit(p.key("prompts").index(j), "empty prompt", |d| {
                            d.expected("prompt text")
                        });
                    }
                }
            }
            Task::AgentWorkflow {
                corpus,
                analysis_template,
                role_templates,
                ..
            } => {
                let mut templates = vec![(p.key("analysis_template"), analysis_template)];
                for (role, t) in role_templates {
                    let name = serde_json::to_value(role)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    templates.push((
                        p.key("role_templates").key(&name).key("analysis_template"),
                        &t.analysis_template,
                    ));
                }
                for (tp, t) in templates {
                    if !t.contains("{data_summary}") {
                        ctx.emit(tp, "analysis template never uses the ingest summary", |d| {
                            d.expected("the placeholder `{data_summary}` in the template")
                                .help(
                                    "add `{data_summary}` where the benchmark data summary belongs",
                                )
                        });
                    }
                }
                if let Corpus::Directory { path } = corpus
                    && path.trim().is_empty()
                {
                    ctx.emit(p.key("corpus").key("path"), "empty corpus path", |d| {
                        d.expected("a directory path")
                    });
                }
            }
            Task::Persona { prompts } => {
                if prompts.is_empty() {
                    ctx.emit(p.key("prompts"), "no persona prompts", |d| {
                        d.expected("a prompt per agent role, e.g. `collector: ...`")
                    });
                }
            }
        }
    }
}

/// Scenario ids, agent counts, execution modes and agent endpoints.
fn check_scenarios(ctx: &mut Ctx<'_>, ids: &Ids<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    ctx.unique(
        &root.key("scenarios"),
        "scenario",
        s.scenarios.iter().map(|x| x.id.as_str()),
    );
    for (i, sc) in s.scenarios.iter().enumerate() {
        let p = root.key("scenarios").index(i);
        ctx.unique(
            &p.key("agents"),
            "agent",
            sc.agents.iter().map(|a| a.id.as_str()),
        );
        let min = if sc.kind == ScenarioKind::Single {
            1
        } else {
            2
        };
        if sc.agents.len() < min {
            ctx.emit(
                p.key("agents"),
                format!("scenario `{}` has too few agents", sc.id),
                |d| {
                    d.expected(format!("at least {min} agent(s) for kind `{:?}`", sc.kind))
                        .found(format!("{}", sc.agents.len()))
                },
            );
        }
        if sc.kind != ScenarioKind::Single && sc.effective_execution() == Execution::Sequential {
            ctx.emit(
                p.key("execution"),
                "multi-agent scenario kinds run concurrently",
                |d| {
                    d.expected("`concurrent` (or no `execution` key)")
                        .help("use `kind: single` for agents that run one after the other")
                },
            );
        }
        for (j, a) in sc.agents.iter().enumerate() {
            ctx.reference(
                p.key("agents").index(j).key("endpoint"),
                "endpoint",
                &a.endpoint,
                &ids.endpoints,
            );
            check_floats(
                ctx,
                &p.key("agents").index(j).key("base_options"),
                &a.base_options,
            );
        }
    }
}

/// Reference ids, values, statistics and `where` keys.
fn check_references(ctx: &mut Ctx<'_>, ids: &Ids<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    // References (config ids are checked by the planner, which knows the generated ones).
    ctx.unique(
        &root.key("references"),
        "reference",
        s.references.iter().map(|x| x.id.as_str()),
    );
    // A report without a matrix of its own analyses its dependencies' data: its `where`
    // keys name their scenarios, models and agents.
    let own_data = !s.matrix.is_empty();
    for (i, r) in s.references.iter().enumerate() {
        let p = root.key("references").index(i);
        if !r.value.is_finite() {
            ctx.emit(
                p.key("value"),
                "reference value is not a finite number",
                |d| d.found(format!("`{}`", r.value)),
            );
        }
        if r.tolerance.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
            ctx.emit(p.key("tolerance"), "tolerance must be ≥ 0", |d| {
                d.found(format!("`{:?}`", r.tolerance))
            });
        }
        match (r.statistic, r.percentile) {
            (Statistic::Percentile, None) => ctx.emit(
                p.key("statistic"),
                "`statistic: percentile` needs `percentile`",
                |d| {
                    d.expected("`percentile: <0–100>` beside it")
                        .help("add e.g. `percentile: 95`")
                },
            ),
            (Statistic::Percentile, Some(q)) if !(q.is_finite() && (0.0..=100.0).contains(&q)) => {
                ctx.emit(p.key("percentile"), "percentile out of range", |d| {
                    d.expected("a number from 0 to 100").found(format!("`{q}`"))
                });
            }
            (st, Some(_)) if st != Statistic::Percentile => ctx.emit(
                p.key("percentile"),
                "`percentile` is only read with `statistic: percentile`",
                |d| d.help("remove `percentile`, or set `statistic: percentile`"),
            ),
            _ => {}
        }
        if !own_data {
            continue;
        }
        if let Some(bn) = &r.filter.block {
            let names: Vec<&str> = s.matrix.iter().filter_map(|b| b.name.as_deref()).collect();
            ctx.reference(p.key("where").key("block"), "block name", bn, &names);
        }
        if let Some(sc) = &r.filter.scenario {
            ctx.reference(
                p.key("where").key("scenario"),
                "scenario",
                sc,
                &ids.scenarios,
            );
        }
        if let Some(md) = &r.filter.model {
            ctx.reference(p.key("where").key("model"), "model", md, &ids.models);
        }
        if let Some(ag) = &r.filter.agent {
            let all: BTreeSet<&str> = s
                .scenarios
                .iter()
                .flat_map(|x| x.agents.iter().map(|a| a.id.as_str()))
                .collect();
            let all: Vec<&str> = all.into_iter().collect();
            ctx.reference(p.key("where").key("agent"), "agent", ag, &all);
        }
    }
}

/// The matrix as a whole: something is planned, and not too much.
fn check_matrix_size(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    if s.matrix.is_empty() && s.depends_on.is_empty() {
        ctx.emit(root.key("matrix"), "the manifest plans nothing", |d| d.expected("at least one block in `matrix`, or `depends_on` naming the reports whose data this one analyses"));
    }
    let runs: Vec<u64> = s.matrix.iter().map(|b| planned_runs(s, b)).collect();
    let total = runs.iter().fold(0u64, |t, r| t.saturating_add(*r));
    if total > MAX_PLANNED_RUNS
        && let Some((bi, largest)) = runs.iter().enumerate().max_by_key(|(_, r)| **r)
    {
        ctx.emit(
            root.key("matrix").index(bi),
            "the matrix plans too many runs",
            |d| {
                d.expected(format!(
                    "at most {MAX_PLANNED_RUNS} configurations × repetitions in all blocks"
                ))
                .found(format!(
                    "up to {} in all, {largest} from this block (its axes' value counts multiplied, × its configurations, × repetitions)",
                    if total == u64::MAX { "2^64".to_owned() } else { total.to_string() }
                ))
                .help("split the experiment into several manifests, or use fewer axis values or repetitions")
            },
        );
    }
}

/// Every block of the matrix.
fn check_blocks(ctx: &mut Ctx<'_>, ids: &Ids<'_>) {
    let m = ctx.m;
    let mut explicit_ids: BTreeSet<(String, Option<Runtime>)> = BTreeSet::new();
    for (bi, b) in m.spec.matrix.iter().enumerate() {
        let p = KeyPath::root().key("matrix").index(bi);
        check_block_keys(ctx, ids, &p, b);
        check_axes(ctx, ids, &p.key("axes"), &b.axes);
        let declared = b.axes.declared();
        if b.configurations.is_empty() && declared.is_empty() {
            ctx.emit(p.clone(), "block has no configurations", |d| {
                d.expected("`axes` (a full factorial) or `configurations` (an enumerated list)")
                    .help("add `axes:` or `configurations:` to this block")
            });
        }
        let option_axes = declared.iter().any(|a| a.is_option());
        if (option_axes || !b.options.is_empty()) && b.apply_to.is_empty() {
            ctx.emit(p.key("apply_to"), "option axes need `apply_to`", |d| {
                d.expected("the agent ids that receive the block's options, e.g. `[B]`")
                    .help("add `apply_to: [A, B]` (both agents) or `[B]` (only the chimera agent)")
            });
        }
        check_points(ctx, &p, b, &declared);
        if let Some(t) = &b.id_template {
            check_id_template(ctx, &p, t, &declared, !b.configurations.is_empty());
        }
        for (ci, c) in b.configurations.iter().enumerate() {
            let cp = p.key("configurations").index(ci);
            check_configuration(ctx, ids, &cp, b, c, &mut explicit_ids);
        }
        check_block_defaults(ctx, &p, b);
        check_apply_to(ctx, &p, b);
    }
}

/// A block's own references, repetitions and options.
fn check_block_keys(ctx: &mut Ctx<'_>, ids: &Ids<'_>, p: &KeyPath, b: &Block) {
    ctx.reference(p.key("workload"), "workload", &b.workload, &ids.workloads);
    if let Some(sc) = &b.scenario {
        ctx.reference(p.key("scenario"), "scenario", sc, &ids.scenarios);
    }
    if let Some(md) = &b.model {
        ctx.reference(p.key("model"), "model", md, &ids.models);
    }
    if b.repetitions == Some(0) {
        ctx.emit(
            p.key("repetitions"),
            "`repetitions` must be at least 1",
            |d| d.expected("a whole number ≥ 1").found("`0`"),
        );
    }
    check_floats(ctx, &p.key("options"), &b.options);
}

/// Each declared axis: values distinct, ids declared, numbers in range.
fn check_axes(ctx: &mut Ctx<'_>, ids: &Ids<'_>, ap: &KeyPath, a: &Axes) {
    for axis in a.declared() {
        let name = axis.name();
        let path = ap.key(name);
        match axis {
            Axis::Model => check_id_axis(ctx, &path, axis, a.model.as_deref(), &ids.models),
            Axis::Scenario => {
                check_id_axis(ctx, &path, axis, a.scenario.as_deref(), &ids.scenarios);
            }
            Axis::Runtime => dup_values(ctx, path, name, a.runtime.as_deref()),
            Axis::Language => dup_values(ctx, path, name, a.language.as_deref()),
            Axis::NumGpu => dup_values(ctx, path, name, a.num_gpu.as_deref()),
            Axis::NumCtx => dup_values(ctx, path, name, a.num_ctx.as_deref()),
            Axis::TopK => dup_values(ctx, path, name, a.top_k.as_deref()),
            Axis::Temperature => check_float_axis(ctx, &path, name, a.temperature.as_deref()),
            Axis::TopP => check_float_axis(ctx, &path, name, a.top_p.as_deref()),
            Axis::RepeatPenalty => {
                check_float_axis(ctx, &path, name, a.repeat_penalty.as_deref());
            }
        }
    }
}

/// An axis of ids (`model`, `scenario`): distinct and declared.
fn check_id_axis(
    ctx: &mut Ctx<'_>,
    path: &KeyPath,
    axis: Axis,
    vals: Option<&[String]>,
    known: &[&str],
) {
    let name = axis.name();
    dup_values(ctx, path.clone(), name, vals);
    for (j, x) in vals.unwrap_or_default().iter().enumerate() {
        ctx.reference(path.index(j), name, x, known);
    }
}

/// An axis of option floats: distinct, finite and ≥ 0.
fn check_float_axis(ctx: &mut Ctx<'_>, path: &KeyPath, name: &str, vals: Option<&[f64]>) {
    dup_values(ctx, path.clone(), name, vals);
    for (j, x) in vals.unwrap_or_default().iter().enumerate() {
        if !(x.is_finite() && *x >= 0.0) {
            ctx.emit(path.index(j), format!("`{name}` value out of range"), |d| {
                d.expected("a finite number ≥ 0").found(format!("`{x}`"))
            });
        }
    }
}

/// `include` and `exclude` entries: not empty, and only keys the block's axes declare.
fn check_points(ctx: &mut Ctx<'_>, p: &KeyPath, b: &Block, declared: &[Axis]) {
    for (key, points) in [("include", &b.include), ("exclude", &b.exclude)] {
        for (j, pt) in points.iter().enumerate() {
            let keys = pt.keys();
            if keys.is_empty() {
                ctx.emit(p.key(key).index(j), format!("empty `{key}` entry"), |d| {
                    d.expected("at least one axis value")
                });
            }
            for k in keys.into_iter().filter(|k| !declared.contains(k)) {
                ctx.emit(
                    p.key(key).index(j).key(k.name()),
                    format!("`{key}` names `{k}`, which is not an axis of this block"),
                    |d| {
                        d.expected(if declared.is_empty() {
                            "no axes are declared".to_owned()
                        } else {
                            one_of(declared.iter().map(|x| format!("`{x}`")))
                        })
                        .help(format!("add `{k}` to `axes`, or remove it from `{key}`"))
                    },
                );
            }
        }
    }
}

/// `one of `a`, `b``: a list of alternatives for `expected`.
fn one_of(items: impl Iterator<Item = String>) -> String {
    format!("one of {}", items.collect::<Vec<_>>().join(", "))
}

/// Placeholders of `id_template`: closed, and naming a declared axis, `id` (with enumerated
/// configurations) or a resolved identity (`model`, `scenario`, `runtime`, `language`).
fn check_id_template(ctx: &mut Ctx<'_>, p: &KeyPath, t: &str, declared: &[Axis], enumerated: bool) {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            ctx.emit(p.key("id_template"), "unclosed `{` in `id_template`", |d| {
                d.found(format!("`{t}`"))
            });
            break;
        };
        let name = &rest[open + 1..open + close];
        let name = name.strip_suffix(":p").unwrap_or(name);
        let ok = match Axis::from_name(name) {
            Some(a) => declared.contains(&a) || !a.is_option(),
            None => name == "id" && enumerated,
        };
        if !ok {
            let mut known: Vec<&str> = declared.iter().map(|a| a.name()).collect();
            if enumerated {
                known.push("id");
            }
            ctx.emit(
                p.key("id_template"),
                format!("unknown placeholder `{{{name}}}` in `id_template`"),
                |d| {
                    d.expected(one_of(known.iter().map(|k| format!("`{{{k}}}`"))))
                        .found(format!("`{t}`"))
                },
            );
        }
        rest = &rest[open + close + 1..];
    }
}

/// One enumerated configuration: its id, scenario, model and per-agent options.
fn check_configuration(
    ctx: &mut Ctx<'_>,
    ids: &Ids<'_>,
    cp: &KeyPath,
    b: &Block,
    c: &ExplicitConfig,
    explicit_ids: &mut BTreeSet<(String, Option<Runtime>)>,
) {
    let m = ctx.m;
    if c.id.trim().is_empty() {
        ctx.emit(cp.key("id"), "empty configuration id", |d| {
            d.expected("the published id, e.g. `test001`")
        });
    } else if !explicit_ids.insert((c.id.clone(), c.runtime)) {
        ctx.emit(
            cp.key("id"),
            format!("duplicate configuration id `{}`", c.id),
            |d| {
                d.expected("configuration ids unique within the manifest")
                    .help("rename one of them; published test ids are unique")
            },
        );
    }
    let a = &b.axes;
    if let Some(sc) = &c.scenario {
        ctx.reference(cp.key("scenario"), "scenario", sc, &ids.scenarios);
    } else if b.scenario.is_none() && a.scenario.is_none() {
        ctx.emit(
            cp.clone(),
            format!("configuration `{}` has no scenario", c.id),
            |d| d.expected("`scenario:` on the configuration or its block"),
        );
    }
    if let Some(md) = &c.model {
        ctx.reference(cp.key("model"), "model", md, &ids.models);
    } else if b.model.is_none() && a.model.is_none() {
        ctx.emit(
            cp.clone(),
            format!("configuration `{}` has no model", c.id),
            |d| d.expected("`model:` on the configuration or its block"),
        );
    }
    let scen = c.scenario.as_ref().or(b.scenario.as_ref());
    let agents: Vec<&str> = scen
        .and_then(|id| m.spec.scenarios.iter().find(|x| &x.id == id))
        .map(|x| x.agents.iter().map(|a| a.id.as_str()).collect())
        .unwrap_or_default();
    for (agent, o) in &c.options {
        if !agents.is_empty() {
            ctx.reference(cp.key("options").key(agent), "agent", agent, &agents);
        }
        check_floats(ctx, &cp.key("options").key(agent), o);
    }
}

/// A block without enumerated configurations needs a scenario and a model.
fn check_block_defaults(ctx: &mut Ctx<'_>, p: &KeyPath, b: &Block) {
    let a = &b.axes;
    if b.configurations.is_empty() && b.scenario.is_none() && a.scenario.is_none() {
        ctx.emit(p.clone(), "block has no scenario", |d| {
            d.expected("`scenario:` or a `scenario` axis")
        });
    }
    if b.configurations.is_empty() && b.model.is_none() && a.model.is_none() {
        ctx.emit(p.clone(), "block has no model", |d| {
            d.expected("`model:` or a `model` axis")
        });
    }
}

/// `apply_to` must name agents of every scenario the block can use.
fn check_apply_to(ctx: &mut Ctx<'_>, p: &KeyPath, b: &Block) {
    let m = ctx.m;
    let mut scen_ids: Vec<&str> = Vec::new();
    if let Some(x) = &b.scenario {
        scen_ids.push(x);
    }
    if let Some(v) = &b.axes.scenario {
        scen_ids.extend(v.iter().map(String::as_str));
    }
    scen_ids.extend(
        b.configurations
            .iter()
            .filter_map(|c| c.scenario.as_deref()),
    );
    for (j, ag) in b.apply_to.iter().enumerate() {
        for sid in &scen_ids {
            if let Some(sc) = m.spec.scenarios.iter().find(|x| &x.id == sid) {
                let ids: Vec<&str> = sc.agents.iter().map(|a| a.id.as_str()).collect();
                if !ids.contains(&ag.as_str()) {
                    ctx.reference(
                        p.key("apply_to").index(j),
                        &format!("agent (of scenario `{sid}`)"),
                        ag,
                        &ids,
                    );
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_ids() {
        for ok in [
            "TR108",
            "TR114_v2",
            "TR999_v10",
            "TR114_demo",
            "TR114_v2_cpu2",
        ] {
            assert!(is_report_id(ok), "{ok}");
        }
        for bad in [
            "TR1080",
            "tr108",
            "TR10",
            "TR114_v",
            "TR114-v2",
            "",
            "TR114_",
            "TR114_Demo",
            "TR114_demo_v2",
            "TR114_a_b",
            "TR114_2x",
        ] {
            assert!(!is_report_id(bad), "{bad}");
        }
    }

    /// A single-inference manifest whose one block has `axes` (YAML flow mapping body) and
    /// `extra` block keys, with `reps` repetitions.
    fn manifest_with(axes: &str, extra: &str, reps: u32) -> Manifest {
        let source = format!(
            "format: 1\nreport: TR999\ntitle: t\n\
             endpoints: [{{id: e, kind: ollama, url: \"http://127.0.0.1:11434\", resource: \"local:gpu0\"}}]\n\
             models: [{{id: m, tag: \"m:latest\"}}]\n\
             workloads: [{{id: w, task: {{kind: single_inference, prompts: [hi]}}}}]\n\
             scenarios: [{{id: s, kind: single, agents: [{{id: c, role: client, endpoint: e}}]}}]\n\
             repetitions: {reps}\n\
             matrix: [{{workload: w, scenario: s, model: m, apply_to: [c], axes: {{{axes}}}{extra}}}]\n"
        );
        let path = std::path::Path::new("t.yaml");
        let spec = super::super::load::parse(path, &source).expect("parses");
        Manifest {
            path: path.to_owned(),
            source,
            spec,
        }
    }

    fn list(n: u32) -> String {
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn too_many(m: &Manifest) -> bool {
        check(m)
            .iter()
            .any(|d| d.message == "the matrix plans too many runs")
    }

    #[test]
    fn planned_runs_multiply_axes_includes_configurations_and_repetitions() {
        let m = manifest_with(
            &format!("num_gpu: [{}], num_ctx: [{}]", list(3), list(4)),
            ", include: [{num_gpu: 9, num_ctx: 9}], repetitions: 5",
            2,
        );
        // (3 x 4 + 1 include) x 5 block repetitions (the manifest's 2 do not apply).
        assert_eq!(planned_runs(&m.spec, &m.spec.matrix[0]), 65);
        let m = manifest_with("", "", 7);
        assert_eq!(
            planned_runs(&m.spec, &m.spec.matrix[0]),
            7,
            "no axes: one point"
        );
        assert!(!too_many(&m));
    }

    #[test]
    fn a_matrix_of_more_than_the_limit_is_refused_before_planning() {
        // make bench-plan's size (1,000,000 runs) stays accepted.
        let ok = manifest_with(
            &format!(
                "num_gpu: [{}], num_ctx: [{}], top_k: [{}]",
                list(100),
                list(100),
                list(20)
            ),
            "",
            5,
        );
        assert_eq!(planned_runs(&ok.spec, &ok.spec.matrix[0]), 1_000_000);
        assert!(!too_many(&ok));
        let over = manifest_with(
            &format!(
                "num_gpu: [{}], num_ctx: [{}], top_k: [{}]",
                list(100),
                list(100),
                list(201)
            ),
            "",
            1,
        );
        assert!(too_many(&over), "2,010,000 runs");
        // Products past u64 saturate instead of wrapping round to a small number.
        let axes: Vec<String> = ["num_gpu", "num_ctx", "top_k"]
            .iter()
            .map(|a| format!("{a}: [{}]", list(3000)))
            .collect();
        let huge = manifest_with(&axes.join(", "), "", u32::MAX);
        assert_eq!(planned_runs(&huge.spec, &huge.spec.matrix[0]), u64::MAX);
        let d = check(&huge)
            .into_iter()
            .find(|d| d.message == "the matrix plans too many runs")
            .expect("refused");
        assert!(d.to_string().contains("up to 2^64 in all"), "{d}");
    }

    #[test]
    fn urls() {
        assert_eq!(url_problem("http://127.0.0.1:11434"), None);
        assert_eq!(url_problem("https://gpu-host.example:8080/"), None);
        assert!(url_problem("127.0.0.1:11434").is_some());
        assert!(url_problem("http://host:99999").is_some());
        assert!(url_problem("http://host:11434/api/generate").is_some());
        assert!(url_problem("http://:80").is_some());
    }
}
