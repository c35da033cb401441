//! The rules of a workload's `force_output_tokens`: a length from 1 up, within every context
//! its configurations set, only for endpoints that can force a length, and no `num_predict`
//! that says otherwise.

use crate::manifest::kinds::EndpointKind;
use crate::manifest::locate::KeyPath;
use crate::manifest::spec::{Block, Workload};

use super::ctx::Ctx;

/// The largest forced length accepted (a million tokens: beyond any served context).
pub(super) const MAX_FORCED_TOKENS: u32 = 1 << 20;

/// Every workload that sets `force_output_tokens`.
pub(super) fn check_forced_lengths(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    for (i, w) in m.spec.workloads.iter().enumerate() {
        let Some(n) = w.force_output_tokens else {
            continue;
        };
        let p = KeyPath::root()
            .key("workloads")
            .index(i)
            .key("force_output_tokens");
        if n == 0 {
            ctx.emit(p.clone(), "`force_output_tokens` must be at least 1", |d| {
                d.expected("a number of output tokens ≥ 1").found("`0`").help(
                    "remove the key to let each reply end where the model stops, or ask for a length such as 64",
                )
            });
            continue;
        }
        if n > MAX_FORCED_TOKENS {
            ctx.emit(
                p.clone(),
                "`force_output_tokens` is larger than any context",
                |d| {
                    d.expected(format!("at most {MAX_FORCED_TOKENS} tokens"))
                        .found(format!("`{n}`"))
                },
            );
            continue;
        }
        check_endpoints(ctx, &p, w, n);
        check_contexts(ctx, &p, w, n);
        check_num_predict(ctx, w, n);
    }
}

/// The blocks of `w`, with their index.
fn blocks_of<'a>(
    blocks: &'a [Block],
    w: &'a Workload,
) -> impl Iterator<Item = (usize, &'a Block)> + 'a {
    blocks
        .iter()
        .enumerate()
        .filter(move |(_, b)| b.workload == w.id)
}

/// The scenario ids block `b` can use.
fn scenarios_of(b: &Block) -> Vec<&str> {
    let mut v: Vec<&str> = b.scenario.iter().map(String::as_str).collect();
    v.extend(b.axes.scenario.iter().flatten().map(String::as_str));
    v.extend(
        b.configurations
            .iter()
            .filter_map(|c| c.scenario.as_deref()),
    );
    v.sort_unstable();
    v.dedup();
    v
}

/// The endpoints the agents of `w`'s configurations talk to must speak a protocol that can
/// force a length: Ollama's cannot.
fn check_endpoints(ctx: &mut Ctx<'_>, p: &KeyPath, w: &Workload, n: u32) {
    let s = &ctx.m.spec;
    let mut ollama: Vec<&str> = Vec::new();
    for (_, b) in blocks_of(&s.matrix, w) {
        for sid in scenarios_of(b) {
            let Some(sc) = s.scenarios.iter().find(|x| x.id == sid) else {
                continue;
            };
            for a in &sc.agents {
                let Some(e) = s.endpoints.iter().find(|e| e.id == a.endpoint) else {
                    continue;
                };
                if matches!(e.kind, EndpointKind::Ollama | EndpointKind::Emulator)
                    && !ollama.contains(&e.id.as_str())
                {
                    ollama.push(&e.id);
                }
            }
        }
    }
    if ollama.is_empty() {
        return;
    }
    let list = ollama
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(", ");
    ctx.emit(
        p.clone(),
        format!(
            "workload `{}` forces {n} output tokens, but Ollama cannot force an output length",
            w.id
        ),
        |d| {
            d.expected("endpoints of kind `openai` (llama-server, vLLM: `ignore_eos`, `min_tokens`)")
                .found(format!("endpoint(s) {list} speaking Ollama's protocol (kind `ollama` or `emulator`), which has no `ignore_eos` or `min_tokens`"))
                .help("remove `force_output_tokens` (and compare work-normalised figures instead), or run the workload on an OpenAI-compatible server (`chimera emulate` also serves `/v1` for an endpoint of kind `openai`)")
        },
    );
}

/// The context lengths `w`'s configurations set (`num_ctx` in options, axes and `include`
/// points, and a managed llama-server's `--ctx-size` / `-c`) must hold the forced length.
fn check_contexts(ctx: &mut Ctx<'_>, p: &KeyPath, w: &Workload, n: u32) {
    let s = &ctx.m.spec;
    let mut contexts: Vec<(u32, String)> = Vec::new();
    for (bi, b) in blocks_of(&s.matrix, w) {
        let at = |what: &str| format!("`matrix[{bi}].{what}`");
        contexts.extend(b.options.num_ctx.map(|c| (c, at("options.num_ctx"))));
        contexts.extend(
            b.axes
                .num_ctx
                .iter()
                .flatten()
                .map(|c| (*c, at("axes.num_ctx"))),
        );
        contexts.extend(
            b.include
                .iter()
                .filter_map(|x| x.num_ctx)
                .map(|c| (c, at("include"))),
        );
        for c in &b.configurations {
            for o in c.options.values() {
                contexts.extend(o.num_ctx.map(|x| (x, at("configurations"))));
            }
        }
        for sid in scenarios_of(b) {
            let Some(sc) = s.scenarios.iter().find(|x| x.id == sid) else {
                continue;
            };
            for a in &sc.agents {
                contexts.extend(
                    a.base_options
                        .num_ctx
                        .map(|c| (c, format!("agent `{}` of scenario `{sid}`", a.id))),
                );
                let started = s.endpoints.iter().find(|e| e.id == a.endpoint);
                if let Some(c) = started
                    .and_then(|e| e.managed.as_ref())
                    .and_then(|mg| ctx_size(&mg.command))
                {
                    contexts.push((c, format!("endpoint `{}` (`--ctx-size`)", a.endpoint)));
                }
            }
        }
    }
    if let Some((c, place)) = contexts
        .into_iter()
        .filter(|(c, _)| *c < n)
        .min_by_key(|(c, _)| *c)
    {
        ctx.emit(
            p.clone(),
            format!("`force_output_tokens` ({n}) is larger than a context of {c} tokens"),
            |d| {
                d.expected(format!(
                    "at most {c} tokens (the context set by {place}), less the prompt"
                ))
                .found(format!("`{n}`"))
                .help("ask for fewer output tokens, or a larger context")
            },
        );
    }
}

/// The context size a managed llama-server command line sets (`--ctx-size N`, `-c N`).
fn ctx_size(command: &[String]) -> Option<u32> {
    command
        .windows(2)
        .find(|w| w[0] == "--ctx-size" || w[0] == "-c")
        .and_then(|w| w[1].parse().ok())
        .filter(|c| *c > 0)
}

/// A `num_predict` other than the forced length in `w`'s blocks, their configurations or their
/// scenarios' agents would be silently replaced: refuse it.
fn check_num_predict(ctx: &mut Ctx<'_>, w: &Workload, n: u32) {
    let s = &ctx.m.spec;
    let mut places: Vec<(KeyPath, i64)> = Vec::new();
    for (bi, b) in blocks_of(&s.matrix, w) {
        let bp = KeyPath::root().key("matrix").index(bi);
        places.extend(
            b.options
                .num_predict
                .map(|x| (bp.key("options").key("num_predict"), x)),
        );
        for (cp, c) in bp.items("configurations", &b.configurations) {
            for (agent, o) in &c.options {
                places.extend(
                    o.num_predict
                        .map(|x| (cp.key("options").key(agent).key("num_predict"), x)),
                );
            }
        }
        for sid in scenarios_of(b) {
            let Some((si, sc)) = s.scenarios.iter().enumerate().find(|(_, x)| x.id == sid) else {
                continue;
            };
            for (ai, a) in sc.agents.iter().enumerate() {
                places.extend(a.base_options.num_predict.map(|x| {
                    let ap = KeyPath::root()
                        .key("scenarios")
                        .index(si)
                        .key("agents")
                        .index(ai);
                    (ap.key("base_options").key("num_predict"), x)
                }));
            }
        }
    }
    places.sort_by_key(|(p, _)| p.to_string());
    places.dedup();
    for (p, x) in places {
        if x != i64::from(n) {
            ctx.emit(
                p,
                format!(
                    "`num_predict` conflicts with workload `{}`'s `force_output_tokens: {n}`",
                    w.id
                ),
                |d| {
                    d.expected(format!("no `num_predict` (or `{n}`)"))
                        .found(format!("`{x}`"))
                        .help("remove `num_predict`: the forced length is sent as `max_tokens` in its place")
                },
            );
        }
    }
}
