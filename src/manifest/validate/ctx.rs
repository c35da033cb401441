//! The checking context shared by the rule modules: the manifest, the diagnostics found so
//! far, the declared ids, and the helpers every section uses.

use std::collections::BTreeMap;

use crate::manifest::Manifest;
use crate::manifest::diagnostic::{Diagnostic, nearest, one_of};
use crate::manifest::locate::KeyPath;
use crate::manifest::spec::{ManifestSpec, Options};

/// The manifest being checked and the diagnostics found so far.
pub(super) struct Ctx<'a> {
    pub(super) m: &'a Manifest,
    pub(super) out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub(super) fn emit(
        &mut self,
        path: KeyPath,
        msg: impl Into<String>,
        f: impl FnOnce(Diagnostic) -> Diagnostic,
    ) {
        let d = Diagnostic::new(&self.m.path, msg).path(&self.m.source, &path, false);
        self.out.push(f(d));
    }

    /// Checks that `id` names one of `known`; `what` is e.g. "endpoint".
    pub(super) fn reference(&mut self, path: KeyPath, what: &str, id: &str, known: &[&str]) {
        if known.contains(&id) {
            return;
        }
        let listed = if known.is_empty() {
            format!("no {what} is declared")
        } else {
            one_of(known)
        };
        let help = match nearest(id, known.iter().copied()) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("declare {what} `{id}` or use a declared one"),
        };
        self.emit(path, format!("unknown {what} `{id}`"), |d| {
            d.expected(listed).found(format!("`{id}`")).help(help)
        });
    }

    pub(super) fn unique<'s>(
        &mut self,
        base: &KeyPath,
        what: &str,
        ids: impl Iterator<Item = &'s str>,
    ) {
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

/// The declared ids a reference may name.
pub(super) struct Ids<'a> {
    pub(super) endpoints: Vec<&'a str>,
    pub(super) models: Vec<&'a str>,
    pub(super) workloads: Vec<&'a str>,
    pub(super) scenarios: Vec<&'a str>,
}

impl<'a> Ids<'a> {
    pub(super) fn of(s: &'a ManifestSpec) -> Self {
        Self {
            endpoints: s.endpoints.iter().map(|x| x.id.as_str()).collect(),
            models: s.models.iter().map(|x| x.id.as_str()).collect(),
            workloads: s.workloads.iter().map(|x| x.id.as_str()).collect(),
            scenarios: s.scenarios.iter().map(|x| x.id.as_str()).collect(),
        }
    }
}

pub(super) fn check_floats(ctx: &mut Ctx<'_>, path: &KeyPath, o: &Options) {
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

pub(super) fn dup_values<T: PartialEq + std::fmt::Debug>(
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
