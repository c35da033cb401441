//! Rules a type cannot express: references between ids, uniqueness, ranges and well-formed
//! URLs. Every violation becomes a located [`Diagnostic`]; all of them are reported at once.
//!
//! One function per section of the manifest; the matrix rules live in `matrix`, the
//! checking context in `ctx`, single-value formats in `format`.

mod ctx;
mod force;
mod format;
mod load;
mod matrix;
mod server;

use std::collections::BTreeSet;

use super::Manifest;
use super::diagnostic::Diagnostic;
use super::kinds::*;
use super::locate::KeyPath;
use super::spec::*;

use ctx::{Ctx, Ids, check_floats};
pub use format::is_report_id;
use format::url_problem;
use matrix::{check_blocks, check_matrix_size};

/// Checks every rule of one manifest; returns all violations, in file order.
pub fn check(m: &Manifest) -> Vec<Diagnostic> {
    let mut ctx = Ctx { m, out: Vec::new() };
    let ids = Ids::of(&m.spec);
    check_unique_ids(&mut ctx, &ids);
    check_reports(&mut ctx);
    check_settings(&mut ctx);
    check_endpoints(&mut ctx);
    check_models(&mut ctx);
    check_workloads(&mut ctx);
    check_scenarios(&mut ctx, &ids);
    check_matrix_size(&mut ctx);
    check_blocks(&mut ctx, &ids);
    force::check_forced_lengths(&mut ctx);
    load::check_loads(&mut ctx);
    server::check_server_settings(&mut ctx);
    check_references(&mut ctx, &ids);
    ctx.out.sort_by_key(|d| d.pos.map(|p| (p.line, p.column)));
    ctx.out
}

/// Endpoint, model, workload and scenario ids: not empty, each once.
fn check_unique_ids(ctx: &mut Ctx<'_>, ids: &Ids<'_>) {
    let root = KeyPath::root();
    for (key, what, list) in [
        ("endpoints", "endpoint", &ids.endpoints),
        ("models", "model", &ids.models),
        ("workloads", "workload", &ids.workloads),
        ("scenarios", "scenario", &ids.scenarios),
    ] {
        ctx.unique(&root.key(key), what, list.iter().copied());
    }
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
    if s.endpoints.is_empty() && !s.matrix.is_empty() {
        ctx.emit(root.key("endpoints"), "no endpoints declared", |d| d.expected("at least one endpoint").help("add `- {id: ollama, kind: ollama, url: http://127.0.0.1:11434, resource: local:gpu0}`"));
    }
    for (p, e) in root.items("endpoints", &s.endpoints) {
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
        if let Some(sm) = &e.server_metrics {
            check_server_metrics(ctx, &p, e, sm);
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

/// An endpoint's `server_metrics`: a server kind that publishes Prometheus metrics, a
/// sensible interval and a well-formed URL override.
fn check_server_metrics(
    ctx: &mut Ctx<'_>,
    p: &KeyPath,
    e: &Endpoint,
    sm: &super::ServerMetricsSettings,
) {
    if e.kind == EndpointKind::Ollama {
        ctx.emit(
            p.key("server_metrics"),
            format!(
                "endpoint `{}` is `kind: ollama`, and Ollama exposes no Prometheus `/metrics` endpoint",
                e.id
            ),
            |d| {
                d.help(
                    "remove `server_metrics` from this endpoint; it is for servers that publish \
                     Prometheus metrics (llama-server started with `--metrics`, vLLM) on \
                     `kind: openai` endpoints",
                )
            },
        );
    }
    if sm.interval_ms < super::MIN_SERVER_METRICS_INTERVAL_MS {
        ctx.emit(
            p.key("server_metrics").key("interval_ms"),
            "server metrics interval is too short",
            |d| {
                d.expected(format!(
                    "at least {} ms",
                    super::MIN_SERVER_METRICS_INTERVAL_MS
                ))
                .found(format!("{} ms", sm.interval_ms))
                .help("each scrape is one HTTP request to the server; 500 ms is the default")
            },
        );
    }
    if let Some(u) = &sm.url {
        let base = match u.find("://").map(|i| i + 3) {
            Some(start) => u[start..].find('/').map_or(u.as_str(), |j| &u[..start + j]),
            None => u.as_str(),
        };
        if let Some(why) = url_problem(base) {
            ctx.emit(
                p.key("server_metrics").key("url"),
                "invalid server metrics `url`",
                |d| {
                    d.expected(format!("`http://host:port/metrics` ({why})"))
                        .found(format!("`{u}`"))
                },
            );
        }
    }
    if sm.url.is_none() && sm.path.trim().is_empty() {
        ctx.emit(
            p.key("server_metrics").key("path"),
            "empty server metrics `path`",
            |d| d.expected("a path such as `/metrics`"),
        );
    }
}

/// Model ids, tags and digests.
fn check_models(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    for (p, md) in root.items("models", &s.models) {
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
    for (p, w) in root.items("workloads", &s.workloads) {
        if let Some(c) = &w.command {
            check_command(ctx, &p.key("command"), c);
        }
        let p = p.key("task");
        match &w.task {
            Task::SingleInference { prompts } => {
                if prompts.is_empty() {
                    ctx.emit(p.key("prompts"), "no prompts", |d| {
                        d.expected("at least one prompt").found("`[]`")
                    });
                }
                for (pp, pr) in p.items("prompts", prompts) {
                    if pr.trim().is_empty() {
                        ctx.emit(pp, "empty prompt", |d| d.expected("prompt text"));
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
                    let name = role.to_string();
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
            // Checked with the load blocks (`load.rs`).
            Task::Load(_) => {}
        }
    }
}

/// The longest `deadline_s` accepted: a week.
const MAX_DEADLINE_S: f64 = 7.0 * 24.0 * 3600.0;

/// A command workload: an argv for every language it lists, known placeholders only.
fn check_command(ctx: &mut Ctx<'_>, p: &KeyPath, c: &CommandAgent) {
    let mut argvs = vec![(p.key("argv"), &c.argv)];
    for (lang, argv) in &c.by_language {
        argvs.push((p.key("by_language").key(&lang.to_string()), argv));
    }
    if c.argv.is_empty() && c.by_language.is_empty() {
        ctx.emit(p.key("argv"), "a command workload without a program", |d| {
            d.expected(
                "`argv: [program, args...]` (or `by_language: {rust: [...], python: [...]}`)",
            )
        });
    }
    if c.max_record_bytes == Some(0) {
        ctx.emit(
            p.key("max_record_bytes"),
            "max_record_bytes must be > 0",
            |d| d.found("`0`"),
        );
    }
    if c.deadline_s
        .is_some_and(|d| !(d.is_finite() && d > 0.0 && d <= MAX_DEADLINE_S))
    {
        ctx.emit(
            p.key("deadline_s"),
            "deadline_s must be a number of seconds > 0 and at most a week (604800)",
            |d| d.found(format!("`{:?}`", c.deadline_s)),
        );
    }
    let known = |n: &str| CommandAgent::PLACEHOLDERS.contains(&n).then(String::new);
    for (ap, argv) in argvs {
        if let Some(first) = argv.first()
            && first.trim().is_empty()
        {
            ctx.emit(ap.clone(), "empty program name", |d| {
                d.expected("the program to run as the first element")
            });
        }
        for (i, arg) in argv.iter().enumerate() {
            if let Err(bad) = super::template::fill_braces(arg, known) {
                ctx.emit(
                    ap.index(i),
                    "unknown placeholder in a command argument",
                    |d| {
                        d.found(bad).expected(format!(
                            "one of {}",
                            CommandAgent::PLACEHOLDERS
                                .iter()
                                .map(|n| format!("{{{n}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    },
                );
            }
        }
    }
    for (k, v) in &c.env {
        if let Err(bad) = super::template::fill_braces(v, known) {
            ctx.emit(
                p.key("env").key(k),
                "unknown placeholder in a command environment value",
                |d| d.found(bad),
            );
        }
    }
}

/// Scenario ids, agent counts, execution modes and agent endpoints.
fn check_scenarios(ctx: &mut Ctx<'_>, ids: &Ids<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    for (p, sc) in root.items("scenarios", &s.scenarios) {
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
        for (ap, a) in p.items("agents", &sc.agents) {
            ctx.reference(ap.key("endpoint"), "endpoint", &a.endpoint, &ids.endpoints);
            check_floats(ctx, &ap.key("base_options"), &a.base_options);
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
    for (p, r) in root.items("references", &s.references) {
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

#[cfg(test)]
mod tests {
    use super::matrix::planned_runs;
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
        Manifest::parsed(source)
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
