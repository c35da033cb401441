//! The rules of the `server` axis and of `{server.NAME}` placeholders: a block's `server`
//! values need a managed endpoint in the block's scenarios, every NAME they set must be used
//! by one of those endpoints, and every placeholder of an endpoint a block uses must have a
//! value for each of the block's configurations (from the axis or `managed.defaults`).

use std::collections::BTreeSet;

use crate::manifest::locate::KeyPath;
use crate::manifest::placeholder::server_names;
use crate::manifest::serving::ServerFlags;
use crate::manifest::spec::{Block, Endpoint};

use super::ctx::Ctx;

/// Every rule of this module, block by block.
pub(super) fn check_server_settings(ctx: &mut Ctx<'_>) {
    let m = ctx.m;
    for (p, b) in KeyPath::root().items("matrix", &m.spec.matrix) {
        check_block(ctx, &p, b);
    }
}

/// The `server` values of block `b` with where each is, and whether some of its points have
/// none (no `server` axis, or an `include` point without `server`).
fn server_values<'b>(p: &KeyPath, b: &'b Block) -> (Vec<(KeyPath, &'b ServerFlags)>, bool) {
    let mut vals: Vec<(KeyPath, &ServerFlags)> = Vec::new();
    if let Some(axis) = &b.axes.server {
        let ap = p.key("axes").key("server");
        vals.extend(axis.iter().enumerate().map(|(j, f)| (ap.index(j), f)));
    }
    let mut bare = b.axes.server.is_none();
    for (ip, point) in p.items("include", &b.include) {
        match &point.server {
            Some(f) => vals.push((ip.key("server"), f)),
            None => bare = true,
        }
    }
    (vals, bare)
}

/// The managed endpoints (index, endpoint) the agents of the block's scenarios talk to.
fn managed_endpoints<'m>(ctx: &Ctx<'m>, b: &Block) -> Vec<(usize, &'m Endpoint)> {
    let s = &ctx.m.spec;
    let mut scenarios: Vec<&str> = b.scenario.iter().map(String::as_str).collect();
    scenarios.extend(b.axes.scenario.iter().flatten().map(String::as_str));
    scenarios.extend(b.include.iter().filter_map(|x| x.scenario.as_deref()));
    scenarios.extend(
        b.configurations
            .iter()
            .filter_map(|c| c.scenario.as_deref()),
    );
    let mut out: Vec<(usize, &Endpoint)> = Vec::new();
    for sc in s
        .scenarios
        .iter()
        .filter(|x| scenarios.contains(&x.id.as_str()))
    {
        for a in &sc.agents {
            let found = s
                .endpoints
                .iter()
                .enumerate()
                .find(|(_, e)| e.id == a.endpoint);
            if let Some((k, e)) = found
                && e.managed.is_some()
                && !out.iter().any(|(j, _)| *j == k)
            {
                out.push((k, e));
            }
        }
    }
    out
}

fn check_block(ctx: &mut Ctx<'_>, p: &KeyPath, b: &Block) {
    let (vals, bare) = server_values(p, b);
    let managed = managed_endpoints(ctx, b);
    if managed.is_empty() {
        if let Some((vp, _)) = vals.first() {
            let at = if b.axes.server.is_some() {
                p.key("axes").key("server")
            } else {
                vp.clone()
            };
            ctx.emit(at, "`server` settings need a managed endpoint", |d| {
                d.expected("a scenario with an endpoint that chimera starts (`managed:`), whose `command` or `env` uses `{server.NAME}`")
                    .found("no managed endpoint in the block's scenarios")
                    .help("add `managed` to the endpoint, or remove the `server` settings: chimera cannot change a server it does not start")
            });
        }
        return;
    }
    let used: BTreeSet<String> = managed
        .iter()
        .filter_map(|(_, e)| e.managed.as_ref())
        .flat_map(|m| m.server_names())
        .collect();
    let ids = managed
        .iter()
        .map(|(_, e)| format!("`{}`", e.id))
        .collect::<Vec<_>>()
        .join(", ");
    for (vp, f) in &vals {
        for name in f.0.keys().filter(|n| !used.contains(*n)) {
            ctx.emit(
                vp.key(name),
                format!("`server` setting `{name}` would change nothing"),
                |d| {
                    d.expected(format!(
                        "a NAME that the `managed.command` or `managed.env` of {ids} uses as `{{server.NAME}}`"
                    ))
                    .found(format!("`{name}`"))
                    .help(format!(
                        "write `{{server.{name}}}` into the endpoint's command or env, or remove `{name}`"
                    ))
                },
            );
        }
    }
    for (k, e) in managed {
        check_values(ctx, p, k, e, &vals, bare);
    }
}

/// Each placeholder of endpoint `e` (index `k`) has a value for every point of the block.
fn check_values(
    ctx: &mut Ctx<'_>,
    p: &KeyPath,
    k: usize,
    e: &Endpoint,
    vals: &[(KeyPath, &ServerFlags)],
    bare: bool,
) {
    let Some(m) = &e.managed else { return };
    let mp = KeyPath::root().key("endpoints").index(k).key("managed");
    let mut items: Vec<(KeyPath, &str)> = m
        .command
        .iter()
        .enumerate()
        .map(|(i, a)| (mp.key("command").index(i), a.as_str()))
        .collect();
    items.extend(
        m.env
            .iter()
            .map(|(n, v)| (mp.key("env").key(n), v.as_str())),
    );
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (ip, text) in items {
        for name in server_names(text) {
            if m.defaults.0.contains_key(name) || !seen.insert(name) {
                continue;
            }
            for (vp, f) in vals.iter().filter(|(_, f)| !f.0.contains_key(name)) {
                ctx.emit(
                    vp.clone(),
                    format!("no value for `{{server.{name}}}` of endpoint `{}`", e.id),
                    |d| {
                        d.expected(format!("`{name}` in this `server` value, or in the endpoint's `managed.defaults`"))
                            .found(format!("`{{{f}}}`"))
                            .help(format!("add `{name}: …` here, or a default value to `managed.defaults`"))
                    },
                );
            }
            if bare {
                let block = p.to_string();
                ctx.emit(
                    ip.clone(),
                    format!("`{{server.{name}}}` has no value for the configurations of `{block}`"),
                    |d| {
                        d.expected(format!("a `server` axis in `{block}` that sets `{name}`, or `{name}` in `managed.defaults`"))
                            .found("no value")
                            .help(format!("add `defaults: {{{name}: …}}` to the endpoint's `managed` settings"))
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::Manifest;
    use crate::manifest::validate::check;

    /// A manifest of one endpoint `e` with `managed` (a YAML flow mapping body, or none) and
    /// one block with `axes`.
    fn manifest(managed: Option<&str>, axes: &str) -> Manifest {
        let managed = managed.map_or(String::new(), |m| format!(", managed: {{{m}}}"));
        let source = format!(
            "format: 1\nreport: TR999\ntitle: t\n\
             endpoints: [{{id: e, kind: emulator, url: \"http://127.0.0.1:11434\", resource: \"local:gpu0\"{managed}}}]\n\
             models: [{{id: m, tag: \"m:latest\"}}]\n\
             workloads: [{{id: w, task: {{kind: single_inference, prompts: [hi]}}}}]\n\
             scenarios: [{{id: s, kind: single, agents: [{{id: c, role: client, endpoint: e}}]}}]\n\
             repetitions: 1\n\
             matrix: [{{workload: w, scenario: s, model: m, axes: {{{axes}}}}}]\n"
        );
        Manifest::parsed(source)
    }

    fn messages(m: &Manifest) -> Vec<String> {
        check(m).into_iter().map(|d| d.message).collect()
    }

    const CMD: &str = "command: [emu, \"--np={server.np}\"], env: {X: \"{server.x}\"}";

    #[test]
    fn a_server_axis_with_values_for_every_placeholder_is_valid() {
        let m = manifest(
            Some(&format!("{CMD}, defaults: {{x: 1}}")),
            "server: [{np: 1}, {np: 4, x: 2}]",
        );
        assert_eq!(messages(&m), Vec::<String>::new());
    }

    #[test]
    fn a_server_axis_without_a_managed_endpoint_is_refused() {
        let m = manifest(None, "server: [{np: 1}]");
        let ds = check(&m);
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!(ds[0].message, "`server` settings need a managed endpoint");
        assert!(
            ds[0].to_string().contains("remove the `server` settings"),
            "{}",
            ds[0]
        );
    }

    #[test]
    fn an_unused_setting_would_change_nothing() {
        let m = manifest(
            Some(&format!("{CMD}, defaults: {{x: 1}}")),
            "server: [{np: 1, batch: 2}]",
        );
        assert_eq!(
            messages(&m),
            ["`server` setting `batch` would change nothing"]
        );
    }

    #[test]
    fn placeholders_without_a_value_are_refused() {
        // `x` has no default and the axis value lacks it.
        let m = manifest(Some(CMD), "server: [{np: 1, x: 1}, {np: 2}]");
        assert_eq!(messages(&m), ["no value for `{server.x}` of endpoint `e`"]);
        // No axis at all: both placeholders lack a value.
        let m = manifest(Some(&format!("{CMD}, defaults: {{np: 1}}")), "");
        // (The block, without axes, is also refused for having no configurations.)
        let ds: Vec<_> = check(&m)
            .into_iter()
            .filter(|d| d.message.contains("server"))
            .collect();
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!(
            ds[0].message,
            "`{server.x}` has no value for the configurations of `matrix[0]`"
        );
        assert!(ds[0].to_string().contains("defaults"), "{}", ds[0]);
    }
}
