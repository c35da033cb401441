//! The rules of `matrix`: its size, and each block's references, axes, `include` /
//! `exclude` points, id template, enumerated configurations and `apply_to`.

use std::collections::BTreeSet;

use crate::manifest::axis::Axis;
use crate::manifest::kinds::Runtime;
use crate::manifest::locate::KeyPath;
use crate::manifest::spec::{Axes, Block, ExplicitConfig, ManifestSpec};
use crate::manifest::template::{self, Piece};

use crate::manifest::diagnostic::one_of;

use super::ctx::{Ctx, Ids, check_floats, dup_values};

/// Most runs (configurations × repetitions) one manifest may plan. Planning holds every
/// configuration and cell in memory (about 270 MiB per million single cells, `make
/// bench-plan`); a few lines of axes can multiply to billions, which would exhaust memory
/// instead of being refused.
pub const MAX_PLANNED_RUNS: u64 = 2_000_000;

/// An upper bound of the runs block `b` plans: the product of its axes' value counts (one
/// point without axes) plus its `include` points, times its explicit configurations (when
/// any), times its repetitions; `exclude` is not subtracted. Saturates instead of overflowing.
pub(super) fn planned_runs(s: &ManifestSpec, b: &Block) -> u64 {
    let points = Axis::ALL
        .iter()
        .filter_map(|a| b.axes.count(*a))
        .fold(1u64, |p, n| p.saturating_mul(n as u64))
        .saturating_add(b.include.len() as u64);
    points
        .saturating_mul(b.configurations.len().max(1) as u64)
        .saturating_mul(u64::from(b.repetitions.unwrap_or(s.repetitions)))
}

/// The matrix as a whole: something is planned, and not too much.
pub(super) fn check_matrix_size(ctx: &mut Ctx<'_>) {
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
pub(super) fn check_blocks(ctx: &mut Ctx<'_>, ids: &Ids<'_>) {
    let m = ctx.m;
    let mut explicit_ids: BTreeSet<(String, Option<Runtime>)> = BTreeSet::new();
    for (p, b) in KeyPath::root().items("matrix", &m.spec.matrix) {
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
        for (cp, c) in p.items("configurations", &b.configurations) {
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
            Axis::Concurrency => dup_values(ctx, path, name, a.concurrency.as_deref()),
            Axis::Rate => check_float_axis(ctx, &path, name, a.rate.as_deref()),
            Axis::InputTokens => dup_values(ctx, path, name, a.input_tokens.as_deref()),
            Axis::OutputTokens => dup_values(ctx, path, name, a.output_tokens.as_deref()),
            Axis::Server => dup_values(ctx, path, name, a.server.as_deref()),
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
                            one_of(declared)
                        })
                        .help(format!("add `{k}` to `axes`, or remove it from `{key}`"))
                    },
                );
            }
        }
    }
}

/// Placeholders of `id_template`: closed, and naming a declared axis, `id` (with enumerated
/// configurations) or a resolved identity (`model`, `scenario`, `runtime`, `language`).
fn check_id_template(ctx: &mut Ctx<'_>, p: &KeyPath, t: &str, declared: &[Axis], enumerated: bool) {
    for piece in template::pieces(t) {
        let name = match piece {
            Piece::Text(_) => continue,
            Piece::Unclosed(_) => {
                ctx.emit(p.key("id_template"), "unclosed `{` in `id_template`", |d| {
                    d.found(format!("`{t}`"))
                });
                break;
            }
            Piece::Field { name, .. } => name,
        };
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
                    d.expected(one_of(known.iter().map(|k| format!("{{{k}}}"))))
                        .found(format!("`{t}`"))
                },
            );
        }
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
    for (axis, own, inherited, known) in [
        (
            Axis::Scenario,
            &c.scenario,
            b.scenario.is_some() || a.scenario.is_some(),
            &ids.scenarios,
        ),
        (
            Axis::Model,
            &c.model,
            b.model.is_some() || a.model.is_some(),
            &ids.models,
        ),
    ] {
        let what = axis.name();
        if let Some(v) = own {
            ctx.reference(cp.key(what), what, v, known);
        } else if !inherited {
            ctx.emit(
                cp.clone(),
                format!("configuration `{}` has no {what}", c.id),
                |d| d.expected(format!("`{what}:` on the configuration or its block")),
            );
        }
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
    if !b.configurations.is_empty() {
        return;
    }
    let a = &b.axes;
    for (axis, unset) in [
        (Axis::Scenario, b.scenario.is_none() && a.scenario.is_none()),
        (Axis::Model, b.model.is_none() && a.model.is_none()),
    ] {
        let what = axis.name();
        if unset {
            ctx.emit(p.clone(), format!("block has no {what}"), |d| {
                d.expected(format!("`{what}:` or a `{what}` axis"))
            });
        }
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
