//! The terminal summary of `chimera analyze`: per report, the counts and the verdicts.

use std::fmt::Write as _;

use super::model::{Analysis, Origin, VerdictKind};
use super::verdict::fmt_num;

/// Where the numbers come from, in a few words.
pub fn origin_words(o: &Origin) -> String {
    match o {
        Origin::Imported { format, layout, .. } => {
            format!("imported from {format} raw results ({layout}), not measured by chimera")
        }
        Origin::Emulator => "emulator: a test instrument, not LLM measurements".to_owned(),
        Origin::Measured { server_kinds } => format!("measured ({})", server_kinds.join(", ")),
    }
}

/// The summary text; `verbose` lists every verdict, otherwise only those not reproduced.
pub fn text(a: &Analysis, verbose: bool) -> String {
    let mut s = String::new();
    for r in &a.reports {
        let c = |k: VerdictKind| r.verdicts.iter().filter(|v| v.verdict == k).count();
        let _ = writeln!(
            s,
            "{} — campaign {} ({})",
            r.report,
            a.campaign,
            origin_words(&r.origin)
        );
        let _ = writeln!(
            s,
            "  runs: {} ok, {} failed, {} missing{} of {} planned; {} requests",
            r.counts.runs_ok,
            r.counts.runs_failed,
            r.counts.runs_missing,
            super::suspect::count_words(r.counts.runs_suspect, r.suspect_included),
            r.method.planned_runs,
            r.counts.requests
        );
        let _ = writeln!(
            s,
            "  verdicts: {} reproduced, {} not reproduced, {} not measured (of {})",
            c(VerdictKind::Reproduced),
            c(VerdictKind::NotReproduced),
            c(VerdictKind::NotMeasured),
            r.verdicts.len()
        );
        if let n @ 1.. = c(VerdictKind::Inconclusive) {
            let _ = writeln!(
                s,
                "  {n} too few runs to tell (the CI includes the published value, but more runs are needed to detect a 2 % difference)"
            );
        }
        if let Some(cells) = r.method.cells.as_ref().filter(|c| c.adopted > 0) {
            let from: Vec<String> = cells
                .adopted_from
                .iter()
                .map(|a| format!("{} measured by campaign {}", a.cells, a.campaign))
                .collect();
            let _ = writeln!(
                s,
                "  cells: {} measured by this campaign, {} adopted from the shared cache ({}); `chimera run --force all` measures them afresh",
                cells.measured,
                cells.adopted,
                from.join(", ")
            );
        }
        let contradicted = r
            .verdicts
            .iter()
            .filter(|v| v.contradicted_by_own_data)
            .count();
        if contradicted > 0 {
            let _ = writeln!(
                s,
                "  {contradicted} published number(s) contradicted by the report's own raw data"
            );
        }
        for v in &r.verdicts {
            if !verbose && v.verdict == VerdictKind::Reproduced {
                continue;
            }
            let _ = writeln!(
                s,
                "    {:<15} {:<40} published {:>10} {:<6} recomputed {:>10}",
                v.verdict.label(),
                v.id,
                fmt_num(v.published),
                v.unit,
                v.recomputed.map_or("—".to_owned(), fmt_num),
            );
            if v.verdict == VerdictKind::NotMeasured && !v.explanation.is_empty() {
                let _ = writeln!(s, "    {:<15} ^ {}", "", v.explanation);
            }
            if v.contradicted_by_own_data {
                let _ = writeln!(
                    s,
                    "    {:<15} ^ contradicted by the report's own raw data",
                    ""
                );
            }
        }
    }
    s
}
