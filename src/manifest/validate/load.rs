//! The rules of `load` workloads: the task's counts and lengths, the blocks that sweep them
//! (one level axis, `concurrency` or `rate`, per block; load axes only on load workloads),
//! and the report's SLOs.

use crate::manifest::axis::Axis;
use crate::manifest::locate::KeyPath;
use crate::manifest::serving::{
    ArrivalProcess, LengthDistribution, LoadTask, MAX_LOAD_REQUESTS as MAX_REQUESTS,
};
use crate::manifest::spec::{AxisPoint, Block, Task};

use super::ctx::Ctx;

/// Most closed-loop users one configuration may ask for.
pub const MAX_CONCURRENCY: u32 = 100_000;

/// Every rule of this module.
pub(super) fn check_loads(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    let s = &m.spec;
    let root = KeyPath::root();
    for (p, w) in root.items("workloads", &s.workloads) {
        if let Task::Load(t) = &w.task {
            if w.command.is_some() {
                ctx.emit(
                    p.key("command"),
                    "a `load` workload cannot run as an agent program",
                    |d| {
                        d.expected(
                            "no `command`: chimera's own load driver sends a load's requests",
                        )
                        .help("remove `command`, or use another task kind for an agent program")
                    },
                );
            }
            if w.force_output_tokens.is_some() {
                ctx.emit(
                    p.key("force_output_tokens"),
                    "a `load` workload sets its output length in the task",
                    |d| {
                        d.expected("`task.output_tokens` (or an `output_tokens` axis)")
                            .help("move the value to `task.output_tokens`")
                    },
                );
            }
            if !w.stream {
                ctx.emit(p.key("stream"), "a `load` workload must stream its replies", |d| {
                    d.expected("`stream: true` (the default): TTFT, ITL and TPOT come from the streamed chunks")
                        .found("`stream: false`")
                        .help("remove `stream: false`")
                });
            }
            check_task(ctx, &p.key("task"), t);
        }
    }
    for (p, b) in root.items("matrix", &s.matrix) {
        let load = s
            .workloads
            .iter()
            .find(|w| w.id == b.workload)
            .map(|w| matches!(w.task, Task::Load(_)));
        let task = s
            .workloads
            .iter()
            .find(|w| w.id == b.workload)
            .and_then(|w| match &w.task {
                Task::Load(t) => Some(t),
                _ => None,
            });
        if let Some(t) = task
            && !t.lengths.is_fixed()
            && t.input_tokens.is_none()
            && t.output_tokens.is_none()
            && b.axes.input_tokens.is_none()
            && b.axes.output_tokens.is_none()
        {
            ctx.emit(p.key("axes"), "a length distribution without lengths", |d| {
                d.expected(format!(
                    "`input_tokens` or `output_tokens` in workload `{}`'s task or in this block's axes, to draw `lengths` around",
                    b.workload
                ))
                .help("set the target lengths, or remove the task's `lengths`")
            });
        }
        if let Some(secs) = task.and_then(|t| t.duration_s) {
            check_timed_rates(ctx, &p, b, secs);
        }
        match load {
            Some(true) => check_load_block(ctx, &p, b),
            Some(false) => check_other_block(ctx, &p, b),
            None => {}
        }
    }
    for (p, slo) in root.items("slos", &s.slos) {
        if !(slo.max_ms.is_finite() && slo.max_ms > 0.0) {
            ctx.emit(p.key("max_ms"), "SLO bound out of range", |d| {
                d.expected("a finite number of milliseconds > 0")
                    .found(format!("`{}`", slo.max_ms))
            });
        }
        if !(slo.percentile > 0.0 && slo.percentile <= 100.0) {
            ctx.emit(p.key("percentile"), "SLO percentile out of range", |d| {
                d.expected("a percentile in (0, 100], e.g. `99`")
                    .found(format!("`{}`", slo.percentile))
            });
        }
    }
}

/// The longest measured load a run may last, s (a day).
const MAX_DURATION_S: f64 = 86_400.0;

/// A load task's counts, lengths and length distribution.
fn check_task(ctx: &mut Ctx<'_>, p: &KeyPath, t: &LoadTask) {
    match (t.requests, t.duration_s) {
        (None, None) => ctx.emit(
            p.key("requests"),
            "a load needs a request count or a duration",
            |d| d.expected("`requests: 200` (measured requests per run) or `duration_s: 30`"),
        ),
        (Some(_), Some(_)) => ctx.emit(
            p.key("duration_s"),
            "a load stops after a request count or a duration, not both",
            |d| d.help("remove `requests` or `duration_s`"),
        ),
        (Some(0), None) => ctx.emit(
            p.key("requests"),
            "a load needs at least one measured request",
            |d| d.expected("`requests` ≥ 1").found("`0`"),
        ),
        (None, Some(s)) if !(s.is_finite() && s > 0.0 && s <= MAX_DURATION_S) => {
            ctx.emit(p.key("duration_s"), "load duration out of range", |d| {
                d.expected(format!("seconds in (0, {MAX_DURATION_S}]"))
                    .found(format!("`{s}`"))
            })
        }
        _ => {}
    }
    for (key, v) in [
        ("input_tokens", t.input_tokens),
        ("output_tokens", t.output_tokens),
    ] {
        if let Some(n) = v {
            check_length(ctx, &p.key(key), key, n, "a token count ≥ 1, or no key");
        }
    }
    check_phases(ctx, p, t);
    let (key, v) = match t.lengths {
        LengthDistribution::Fixed => return,
        LengthDistribution::Uniform { spread } => ("spread", spread),
        LengthDistribution::Normal { cv } => ("cv", cv),
    };
    if !(v.is_finite() && (0.0..1.0).contains(&v)) {
        ctx.emit(
            p.key("lengths").key(key),
            format!("`{key}` out of range"),
            |d| {
                d.expected("a fraction in [0, 1), e.g. `0.2`")
                    .found(format!("`{v}`"))
            },
        );
    }
}

/// `phases` exactly with `arrivals: phases`: durations > 0, factors ≥ 0, one of them > 0.
fn check_phases(ctx: &mut Ctx<'_>, p: &KeyPath, t: &LoadTask) {
    let phased = t.arrivals == ArrivalProcess::Phases;
    if phased && t.phases.is_empty() {
        ctx.emit(p.key("phases"), "`arrivals: phases` without phases", |d| {
            d.expected(
                "`phases: [{duration_s: 8, rate_factor: 0.5}, {duration_s: 2, rate_factor: 3}]`",
            )
        });
    }
    if !phased && !t.phases.is_empty() {
        ctx.emit(
            p.key("phases"),
            "`phases` without `arrivals: phases`",
            |d| {
                d.expected("`arrivals: phases` beside `phases`")
                    .help("add `arrivals: phases`, or remove `phases`")
            },
        );
    }
    for (j, ph) in t.phases.iter().enumerate() {
        let at = p.key("phases").index(j);
        if !(ph.duration_s.is_finite() && ph.duration_s > 0.0) {
            ctx.emit(at.key("duration_s"), "phase duration out of range", |d| {
                d.expected("seconds > 0")
                    .found(format!("`{}`", ph.duration_s))
            });
        }
        if !(ph.rate_factor.is_finite() && ph.rate_factor >= 0.0) {
            ctx.emit(
                at.key("rate_factor"),
                "phase rate factor out of range",
                |d| {
                    d.expected("a multiple of the rate ≥ 0 (0: a pause)")
                        .found(format!("`{}`", ph.rate_factor))
                },
            );
        }
    }
    if phased && !t.phases.is_empty() && t.phases.iter().all(|ph| ph.rate_factor <= 0.0) {
        ctx.emit(p.key("phases"), "every phase is a pause", |d| {
            d.expected("at least one phase with `rate_factor` > 0")
        });
    }
}

/// A timed load's open-loop rates: at most [`MAX_REQUESTS`] requests in its `secs`.
fn check_timed_rates(ctx: &mut Ctx<'_>, p: &KeyPath, b: &Block, secs: f64) {
    let rates = b.axes.rate.iter().flatten();
    let points = b.include.iter().filter_map(|pt| pt.rate);
    for r in rates.copied().chain(points) {
        if r * secs > MAX_REQUESTS as f64 {
            ctx.emit(
                p.key("axes").key("rate"),
                "a timed load would send too many requests",
                |d| {
                    d.expected(format!(
                        "rate × duration_s at most {MAX_REQUESTS} requests per run"
                    ))
                    .found(format!("{r}/s for {secs} s"))
                    .help("lower the rate or the workload's `duration_s`")
                },
            );
            return;
        }
    }
}

/// A block of a load workload: exactly one level axis, valid level values.
fn check_load_block(ctx: &mut Ctx<'_>, p: &KeyPath, b: &Block) {
    let has = |a: Axis| b.axes.count(a).is_some();
    match (has(Axis::Concurrency), has(Axis::Rate)) {
        (true, true) => ctx.emit(p.key("axes"), "a load block sweeps `concurrency` or `rate`, not both", |d| {
            d.expected("one level axis per block")
                .help("split it into two blocks: a closed-loop (`concurrency`) sweep and an open-loop (`rate`) sweep")
        }),
        (false, false) => ctx.emit(p.key("axes"), "a load block needs a level", |d| {
            d.expected("`concurrency: [1, 4, 16]` (closed loop, users) or `rate: [1, 2, 4]` (open loop, requests per second)")
        }),
        _ => {}
    }
    if !b.configurations.is_empty() {
        ctx.emit(
            p.key("configurations"),
            "a load block is a factorial of its axes",
            |d| {
                d.expected("`axes` only")
                    .help("describe each level with the `concurrency` or `rate` axis")
            },
        );
    }
    let level = if has(Axis::Rate) {
        Axis::Rate
    } else {
        Axis::Concurrency
    };
    for (j, pt) in b.include.iter().enumerate() {
        let at = p.key("include").index(j);
        if !pt.is_set(level) {
            ctx.emit(
                at.clone(),
                format!("an `include` point of a load block without `{level}`"),
                |d| d.expected(format!("`{level}` in every point (the level of its load)")),
            );
        }
        check_point(ctx, &at, pt);
    }
    let ap = p.key("axes");
    for (j, n) in b.axes.concurrency.iter().flatten().enumerate() {
        check_users(ctx, &ap.key("concurrency").index(j), *n);
    }
    for (j, r) in b.axes.rate.iter().flatten().enumerate() {
        check_rate(ctx, &ap.key("rate").index(j), *r);
    }
    for axis in [Axis::InputTokens, Axis::OutputTokens] {
        let vals = match axis {
            Axis::InputTokens => &b.axes.input_tokens,
            _ => &b.axes.output_tokens,
        };
        for (j, n) in vals.iter().flatten().enumerate() {
            check_length(
                ctx,
                &ap.key(axis.name()).index(j),
                axis.name(),
                *n,
                "a token count ≥ 1",
            );
        }
    }
}

/// The level and lengths of one `include` point: in range.
fn check_point(ctx: &mut Ctx<'_>, at: &KeyPath, pt: &AxisPoint) {
    if let Some(n) = pt.concurrency {
        check_users(ctx, &at.key("concurrency"), n);
    }
    if let Some(r) = pt.rate {
        check_rate(ctx, &at.key("rate"), r);
    }
    for (key, v) in [
        ("input_tokens", pt.input_tokens),
        ("output_tokens", pt.output_tokens),
    ] {
        if let Some(n) = v {
            check_length(ctx, &at.key(key), key, n, "a token count ≥ 1");
        }
    }
}

/// A closed-loop level (`at`): 1 to [`MAX_CONCURRENCY`] users.
fn check_users(ctx: &mut Ctx<'_>, at: &KeyPath, n: u32) {
    if !(1..=MAX_CONCURRENCY).contains(&n) {
        ctx.emit(at.clone(), "`concurrency` out of range", |d| {
            d.expected(format!("1 to {MAX_CONCURRENCY} users"))
                .found(format!("`{n}`"))
        });
    }
}

/// An open-loop level (`at`): requests per second > 0.
fn check_rate(ctx: &mut Ctx<'_>, at: &KeyPath, r: f64) {
    if !(r.is_finite() && r > 0.0) {
        ctx.emit(at.clone(), "`rate` out of range", |d| {
            d.expected("requests per second > 0")
                .found(format!("`{r}`"))
        });
    }
}

/// A length `key` (`at`): at least one token (`expected` says what may stand there).
fn check_length(ctx: &mut Ctx<'_>, at: &KeyPath, key: &str, n: u32, expected: &str) {
    if n == 0 {
        ctx.emit(at.clone(), format!("`{key}` must be at least 1"), |d| {
            d.expected(expected).found("`0`")
        });
    }
}

/// A block of another workload: no load axis anywhere.
fn check_other_block(ctx: &mut Ctx<'_>, p: &KeyPath, b: &Block) {
    let mut found: Vec<(Axis, KeyPath)> = Vec::new();
    for axis in b.axes.declared().into_iter().filter(|a| a.is_load()) {
        found.push((axis, p.key("axes").key(axis.name())));
    }
    for (j, pt) in b.include.iter().enumerate() {
        for axis in pt.keys().into_iter().filter(|a| a.is_load()) {
            found.push((axis, p.key("include").index(j).key(axis.name())));
        }
    }
    for (axis, path) in found {
        ctx.emit(
            path,
            format!("`{axis}` is an axis of `load` workloads"),
            |d| {
                d.expected(format!(
                    "a workload with `task: {{kind: load, ...}}` (this block's is `{}`)",
                    b.workload
                ))
                .help("remove the axis, or point the block at a load workload")
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::check;
    use crate::manifest::Manifest;

    /// A manifest with one load workload (`task` body), a single-inference one, and `matrix`.
    fn manifest(task: &str, matrix: &str, extra: &str) -> Manifest {
        let source = format!(
            "format: 1\nreport: TR999\ntitle: t\n\
             endpoints: [{{id: e, kind: openai, url: \"http://127.0.0.1:8080\", resource: \"local:gpu0\"}}]\n\
             models: [{{id: m, tag: \"m\"}}]\n\
             workloads:\n  - {{id: l, task: {{kind: load, {task}}}}}\n  - {{id: p, task: {{kind: single_inference, prompts: [hi]}}}}\n\
             scenarios: [{{id: s, kind: single, agents: [{{id: c, role: client, endpoint: e}}]}}]\n\
             matrix: {matrix}\n{extra}"
        );
        Manifest::parsed(source)
    }

    fn messages(m: &Manifest) -> Vec<String> {
        check(m).into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn a_good_load_manifest_passes() {
        let m = manifest(
            "requests: 10, input_tokens: 64, lengths: {kind: uniform, spread: 0.2}, arrivals: phases, phases: [{duration_s: 8, rate_factor: 0.5}, {duration_s: 2, rate_factor: 3}]",
            "[{workload: l, scenario: s, model: m, axes: {concurrency: [1, 4], output_tokens: [16, 32]}}, \
             {workload: l, scenario: s, model: m, axes: {rate: [0.5, 2]}}]",
            "slos: [{metric: ttft_ms, max_ms: 500}, {metric: tpot_ms, max_ms: 50, percentile: 90}]\n",
        );
        assert_eq!(messages(&m), Vec::<String>::new());
    }

    #[test]
    fn a_load_stops_after_a_count_or_a_duration_exactly() {
        let matrix = "[{workload: l, scenario: s, model: m, axes: {rate: [2]}}]";
        assert_eq!(
            messages(&manifest("duration_s: 30", matrix, "")),
            Vec::<String>::new()
        );
        for (task, want) in [
            ("seed: 1", "a load needs a request count or a duration"),
            (
                "requests: 5, duration_s: 30",
                "a load stops after a request count or a duration, not both",
            ),
            ("duration_s: 0", "load duration out of range"),
            ("duration_s: 100000", "load duration out of range"),
        ] {
            assert_eq!(messages(&manifest(task, matrix, "")), [want], "{task}");
        }
        let fast = "[{workload: l, scenario: s, model: m, axes: {rate: [200000]}}]";
        for (task, want) in [
            (
                "duration_s: 60",
                vec!["a timed load would send too many requests"],
            ),
            ("requests: 100", vec![]),
        ] {
            assert_eq!(messages(&manifest(task, fast, "")), want, "{task}");
        }
    }

    #[test]
    fn each_mistake_is_named() {
        let m = manifest(
            "requests: 0, output_tokens: 0, lengths: {kind: normal, cv: 1.5}, arrivals: phases, phases: [{duration_s: 0, rate_factor: -1}]",
            "[{workload: l, scenario: s, model: m, axes: {concurrency: [0, 2], rate: [-1]}}, \
             {workload: l, scenario: s, model: m, axes: {rate: [1]}, include: [{input_tokens: 0}]}, \
             {workload: l, scenario: s, model: m, axes: {input_tokens: [8]}}, \
             {workload: p, scenario: s, model: m, axes: {concurrency: [2]}}]",
            "slos: [{metric: e2e_ms, max_ms: 0, percentile: 100.5}]\n",
        );
        let got = messages(&m);
        for want in [
            "a load needs at least one measured request",
            "`output_tokens` must be at least 1",
            "`cv` out of range",
            "a load block sweeps `concurrency` or `rate`, not both",
            "`concurrency` out of range",
            "`rate` out of range",
            "a load block needs a level",
            "`concurrency` is an axis of `load` workloads",
            "SLO bound out of range",
            "SLO percentile out of range",
            "phase duration out of range",
            "phase rate factor out of range",
            "every phase is a pause",
            "an `include` point of a load block without `rate`",
            "`input_tokens` must be at least 1",
        ] {
            assert!(
                got.iter().any(|g| g == want),
                "missing {want:?} in {got:#?}"
            );
        }
    }

    #[test]
    fn a_load_workload_runs_in_process_with_its_own_lengths() {
        let source = "format: 1\nreport: TR999\ntitle: t\n\
             endpoints: [{id: e, kind: openai, url: \"http://127.0.0.1:8080\", resource: \"local:gpu0\"}]\n\
             models: [{id: m, tag: \"m\"}]\n\
             workloads: [{id: l, force_output_tokens: 8, command: {argv: [agent]}, task: {kind: load, requests: 4}}]\n\
             scenarios: [{id: s, kind: single, agents: [{id: c, role: client, endpoint: e}]}]\n\
             matrix: [{workload: l, scenario: s, model: m, axes: {rate: [1]}}]\n";
        let m = Manifest::parsed(source.to_owned());
        let got = messages(&m);
        assert!(
            got.iter()
                .any(|g| g == "a `load` workload cannot run as an agent program"),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|g| g == "a `load` workload sets its output length in the task"),
            "{got:#?}"
        );
    }
}
