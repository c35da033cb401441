//! The parts of a report that say how sure a comparison is and where its numbers came from:
//! the method section's statistics and cell-source lines, and the power-line cells of the
//! comparison, efficiency and verdict tables.

use std::fmt::Write as _;

use crate::analysis::model::{CellSources, ReportAnalysis};
use crate::stats::effect::{ALPHA, DETECT_FRACTION, POWER};

use super::format::{DASH, code};

/// The method section's line on how differences, CIs and power lines were computed.
pub(super) fn statistics_line(r: &ReportAnalysis) -> String {
    let pct = DETECT_FRACTION * 100.0;
    let mut s = String::from(
        "- Statistics: each difference is given with its 95 % CI — Welch's t (unequal variances) for two groups (B − A), a one-sample Student t-interval for a recomputed mean against a published number (recomputed − published)",
    );
    if r.multi_agent {
        s.push_str(
            ", a paired t-interval of the per-run differences for true − published efficiency",
        );
    }
    let refs = if r.multi_agent {
        "the published number; mean A; the published efficiency"
    } else {
        "the published number; mean A"
    };
    let _ = writeln!(
        s,
        ". The power line is the number of repetitions needed to detect a difference of {pct} % of the reference value ({refs}) at the observed SD with α = {ALPHA} two-sided and power {POWER}: the smallest n with n ≥ (t₀.₉₇₅,ν + t₀.₈,ν)² · s² / δ² (ν = n − 1; one sample or paired), or n ≥ (t₀.₉₇₅,ν + t₀.₈,ν)² · (s²_A + s²_B) / δ² per group (ν = 2n − 2; two groups), found by iteration from the normal approximation n = (z₀.₉₇₅ + z₀.₈)² · s² / δ². A difference whose CI excludes the reference (0, or the published value) reads \"different\"; one whose CI includes it reads \"no difference found\" when the runs at hand reach the power line, and \"too few runs to tell\" when they do not (or a single value gives no variance)."
    );
    s
}

/// A UTC time, to the minute, from ms since the Unix epoch.
fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(
        |_| DASH.to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// "measured 2025-06-01 12:00 UTC" or "measured 2025-06-01 12:00 UTC to 2025-06-02 08:30 UTC".
fn span(first: i64, last: i64) -> String {
    let (a, b) = (utc(first), utc(last));
    if a == b {
        format!("measured {a}")
    } else {
        format!("measured {a} to {b}")
    }
}

/// The method section's line on where the report's cells come from.
pub(super) fn cells_line(campaign: &str, c: &CellSources) -> String {
    let total = c.measured + c.adopted;
    if c.adopted == 0 {
        return format!(
            "- Cells: all {total} measured by this campaign ({}); none adopted from the shared cache.\n",
            code(campaign)
        );
    }
    let from = c
        .adopted_from
        .iter()
        .map(|a| {
            let who = if a.campaign == campaign {
                format!("an earlier campaign also named {}", code(&a.campaign))
            } else {
                format!("campaign {}", code(&a.campaign))
            };
            format!(
                "{} from {who}, {}",
                a.cells,
                span(a.first_started_unix_ms, a.last_started_unix_ms)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "- Cells: {} of {total} measured by this campaign ({}), {} adopted from the shared cache, not measured by it: {from}. Adopted cells are earlier measurements on the same environment fingerprint; to measure every cell afresh, run `chimera run` with `--force all` (forced cells are measured again; the shared cache is not consulted), or with `--no-cache` into a new campaign.\n",
        c.measured,
        code(campaign),
        c.adopted,
    )
}

/// A power-line cell: "12 (have 5)", "—" without one.
pub(super) fn needed(n_needed: Option<u64>, have: u64) -> String {
    n_needed.map_or_else(|| DASH.to_owned(), |k| format!("{k} (have {have})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::model::AdoptedFrom;

    #[test]
    fn cell_sources_name_the_campaign_and_the_time() {
        let c = CellSources {
            measured: 2,
            adopted: 30,
            adopted_from: vec![
                AdoptedFrom {
                    campaign: "demo".into(),
                    cells: 20,
                    first_started_unix_ms: 1_750_000_000_000,
                    last_started_unix_ms: 1_750_000_600_000,
                },
                AdoptedFrom {
                    campaign: "other".into(),
                    cells: 10,
                    first_started_unix_ms: 1_750_100_000_000,
                    last_started_unix_ms: 1_750_100_000_000,
                },
            ],
        };
        let line = cells_line("demo", &c);
        assert!(
            line.contains("2 of 32 measured by this campaign (`demo`), 30 adopted"),
            "{line}"
        );
        assert!(
            line.contains("20 from an earlier campaign also named `demo`, measured 2025-06-15 15:06 UTC to 2025-06-15 15:16 UTC"),
            "{line}"
        );
        assert!(
            line.contains("10 from campaign `other`, measured 2025-06-16 18:53 UTC."),
            "{line}"
        );
        assert!(line.contains("--force all"), "{line}");
        let none = cells_line(
            "x",
            &CellSources {
                measured: 4,
                ..CellSources::default()
            },
        );
        assert_eq!(
            none,
            "- Cells: all 4 measured by this campaign (`x`); none adopted from the shared cache.\n"
        );
        assert_eq!(needed(Some(12), 5), "12 (have 5)");
        assert_eq!(needed(None, 5), DASH);
    }
}
