//! The report's word on suspect cells: a line at the top when self-checks failed often, and
//! the list of suspect cells with their reasons.

use std::fmt::Write as _;

use crate::analysis::model::ReportAnalysis;

use super::format::{code, inline};

/// The line under the report's title when self-checks failed often.
pub(crate) fn top_line(r: &ReportAnalysis) -> Option<String> {
    r.suspect_warning
        .as_ref()
        .map(|w| format!(">\n> **Self-checks.** {}", inline(w)))
}

/// `, N suspect (left out)` (or `(included)`) for the counts line; empty without suspect runs.
pub(crate) fn count_words(r: &ReportAnalysis) -> String {
    crate::analysis::suspect::count_words(r.counts.runs_suspect, r.suspect_included)
}

/// Section: the suspect cells (none: nothing is written).
pub(crate) fn section(
    md: &mut String,
    heading: &mut impl FnMut(&mut String, &str),
    r: &ReportAnalysis,
) {
    if r.suspect.is_empty() {
        return;
    }
    heading(md, "Suspect cells");
    let _ = writeln!(
        md,
        "A cell is suspect when a self-check failed while it ran: agents that did not start together, a model reloaded inside measured requests, another model digest than the campaign's, GPU throttling or power capping, or another number of requests than planned (a concurrent cell is also suspect when an isolated baseline it is compared with is). Suspect cells of this report: {}. {}\n",
        r.suspect.len(),
        if r.suspect_included {
            "They are included in the statistics above (`--include-suspect`)."
        } else {
            "They are left out of the statistics above; `chimera analyze --include-suspect` and `chimera report --include-suspect` keep them."
        }
    );
    md.push_str("| Cell | Kind | Config | Rep | Why |\n|---|---|---|---:|---|\n");
    for c in &r.suspect {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            code(&c.cell_id[..c.cell_id.len().min(12)]),
            c.kind,
            c.config.as_deref().map_or_else(|| "—".to_owned(), code),
            c.repetition,
            c.reasons
                .iter()
                .map(|x| inline(x).replace('|', "\\|"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}
