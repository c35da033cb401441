//! `chimera compare`'s output: a terminal table or Markdown (JSON is the model serialised).

use std::fmt::Write as _;

use crate::analysis::ab::{AbComparison, AbRow};

fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

fn ci(r: &AbRow) -> String {
    r.ci95.map_or_else(
        || "—".to_owned(),
        |(lo, hi)| format!("[{}, {}]", num(lo), num(hi)),
    )
}

fn change(r: &AbRow) -> String {
    r.change_pct
        .map_or_else(|| "—".to_owned(), |c| format!("{c:+.1} %"))
}

/// A row's values as printed: metric, A, B, change, CI, verdict, runs.
fn fields(r: &AbRow) -> [String; 7] {
    [
        r.metric.name().to_owned(),
        num(r.mean_a),
        num(r.mean_b),
        change(r),
        ci(r),
        r.verdict.words(r.metric).to_owned(),
        format!("{}/{}", r.n_a, r.n_b),
    ]
}

/// The lines before the table: what was compared and on which fields the two differ.
fn preamble(c: &AbComparison, md: bool) -> String {
    let mut s = String::new();
    let code = |x: &str| if md { format!("`{x}`") } else { x.to_owned() };
    let _ = writeln!(
        s,
        "B = {} against A = {}: {} configuration pair(s) matched",
        code(&c.b),
        code(&c.a),
        c.rows
            .iter()
            .map(|r| (&r.a, &r.b))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    if c.differing.is_empty() {
        let _ = writeln!(s, "the two differ in no configuration setting");
    } else {
        let _ = writeln!(s, "matched on every setting except those that differ:");
        for (f, va, vb) in &c.differing {
            let _ = writeln!(
                s,
                "{} {}: A {va}; B {vb}",
                if md { "-" } else { " " },
                code(f)
            );
        }
    }
    for (side, list) in [("A", &c.unmatched.0), ("B", &c.unmatched.1)] {
        if !list.is_empty() {
            let _ = writeln!(
                s,
                "unmatched in {side}: {}",
                list.iter().map(|x| code(x)).collect::<Vec<_>>().join(", ")
            );
        }
    }
    s
}

/// The terminal table.
pub fn text(c: &AbComparison) -> String {
    let mut s = preamble(c, false);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<28} {:<26} {:>12} {:>12} {:>9} {:>26}  verdict",
        "configuration (A → B)", "metric", "A", "B", "change", "B − A, 95 % CI"
    );
    for r in &c.rows {
        let pair = if r.a == r.b {
            r.a.clone()
        } else {
            format!("{} → {}", r.a, r.b)
        };
        let [m, a, b, c, ci, v, n] = fields(r);
        let _ = writeln!(
            s,
            "{pair:<28} {m:<26} {a:>12} {b:>12} {c:>9} {ci:>26}  {v} (n {n})"
        );
    }
    s
}

/// The Markdown section.
pub fn markdown(c: &AbComparison) -> String {
    let mut s = format!("# {} against {}\n\n", c.b, c.a);
    s.push_str(&preamble(c, true));
    s.push_str(
        "\n| configuration (A → B) | metric | A | B | change | B − A, 95 % CI | verdict | runs A/B |\n\
         |---|---|---:|---:|---:|---:|---|---:|\n",
    );
    for r in &c.rows {
        let _ = writeln!(s, "| `{}` → `{}` | {} |", r.a, r.b, fields(r).join(" | "));
    }
    s
}
