//! Section: the serving loads of a report's `load` workloads (the analysis's `serving`):
//! per series a table of its levels (means over runs with Student-t 95 % CIs), the lengths
//! asked for against those the server counted, and the SLO frontier. Nothing is written for
//! a report without a load workload.

use std::fmt::Write as _;

use crate::analysis::model::ReportAnalysis;
use crate::analysis::serving::{ServingLevel, ServingSeries};
use crate::load::frontier::LevelRow;
use crate::load::sweep::Mean;
use crate::load::{Slo, Standing};

use super::format::{DASH, cell, code, fixed, trimmed};

/// `mean [lo, hi]` with `dec` decimals, or "—"; the CI's lower end cut at 0, which none of
/// the section's quantities can go below.
fn mean(m: Option<Mean>, dec: usize) -> String {
    match m {
        None => DASH.to_owned(),
        Some(Mean { mean, ci95: None }) => fixed(mean, dec),
        Some(Mean {
            mean,
            ci95: Some((lo, hi)),
        }) => format!(
            "{} [{}, {}]",
            fixed(mean, dec),
            fixed(lo.max(0.0), dec),
            fixed(hi, dec)
        ),
    }
}

/// An SLO in words: `p99 ttft_ms ≤ 500 ms`.
fn slo_text(s: &Slo) -> String {
    format!(
        "p{} {} ≤ {} ms",
        trimmed(s.percentile, 2),
        s.metric.name(),
        trimmed(s.max_ms, 3)
    )
}

/// A level with its unit (`1 user`, `4 users`, `2.5 requests per second`).
fn level_text(x: f64, unit: &str) -> String {
    let unit = match (x == 1.0, unit) {
        (true, "users") => "user",
        (true, "requests per second") => "request per second",
        _ => unit,
    };
    format!("{} {unit}", trimmed(x, 3))
}

/// Writes the section.
pub(super) fn section(
    md: &mut String,
    heading: &mut impl FnMut(&mut String, &str),
    r: &ReportAnalysis,
) {
    let Some(s) = &r.serving else { return };
    heading(md, "Serving load");
    md.push_str("Each level of a series ran once per repetition; a run's numbers are taken over its measured requests (warm-up left out) by the definitions of `docs/serving-metrics.md`, and each value below is the mean over the runs with its Student-t 95 % CI in brackets (its lower end cut at 0, which none of these quantities can go below; a CI of few runs is wide). TTFT, ITL, TPOT and end-to-end latency are client-side (ms); throughput counts successful requests and their output tokens per second over the run's window (first send to last reply); goodput counts only the requests that met every SLO; lateness is how late an open-loop request left against its schedule.\n");
    if s.slos.is_empty() {
        md.push_str("\nThe manifest states no SLO (`slos`), so goodput equals the successful request rate and there is no frontier.\n");
    } else {
        let list: Vec<String> = s.slos.iter().map(slo_text).collect();
        let _ = writeln!(
            md,
            "\nSLOs (manifest `slos`): {}. A level **meets** them when every SLO's 95 % CI lies at or below its bound, **fails** when one lies above, and is **unsure** otherwise; a failed request counts as infinitely slow.",
            list.join("; ")
        );
    }
    let emulated: Vec<String> = s
        .series
        .iter()
        .filter(|x| x.server_kind.as_deref() == Some("emulator"))
        .map(|x| code(&x.endpoint))
        .collect();
    if !emulated.is_empty() {
        let _ = writeln!(
            md,
            "\nEndpoint {} is chimera's emulator: its latencies follow the emulator's fixed token schedule and test chimera's load machinery; they are not measurements of an LLM server.",
            emulated.join(", ")
        );
    }
    for series in &s.series {
        series_section(md, series, &s.slos);
    }
}

fn series_section(md: &mut String, s: &ServingSeries, slos: &[Slo]) {
    let _ = write!(md, "\n### {}\n\n", cell(&s.label));
    md.push_str("| level | runs | requests ok / sent | req/s | output tok/s | goodput req/s | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 | TPOT p50 | TPOT p99 | E2E p99 | lateness p99 | prompt tokens asked → counted | output tokens asked → counted | J per output token |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for l in &s.levels {
        level_row(md, l, &s.unit);
    }
    frontier(md, s, slos);
}

/// Mean requested and counted lengths: `64 → 64.0 (off by 0.0)`.
fn lengths(asked: Option<u32>, counted: Option<f64>, off: Option<f64>) -> String {
    match (asked, counted) {
        (None, None) => DASH.to_owned(),
        (None, Some(c)) => format!("— → {}", fixed(c, 1)),
        (Some(a), c) => format!(
            "{a} → {} (off by {})",
            c.map_or(DASH.to_owned(), |c| fixed(c, 1)),
            off.map_or(DASH.to_owned(), |o| fixed(o, 1))
        ),
    }
}

fn level_row(md: &mut String, l: &ServingLevel, unit: &str) {
    let x = &l.result;
    let (sent, ok): (u64, u64) = x
        .runs
        .iter()
        .fold((0, 0), |(s, o), r| (s + r.requests, o + r.ok));
    let _ = writeln!(
        md,
        "| {} | {} | {ok} / {sent} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        level_text(x.level, unit),
        x.runs.len(),
        mean(x.request_rate, 2),
        mean(x.output_tok_s, 2),
        mean(x.goodput, 2),
        mean(x.ttft_p50, 1),
        mean(x.ttft_p99, 1),
        mean(x.itl_p50, 1),
        mean(x.itl_p99, 1),
        mean(x.tpot_p50, 1),
        mean(x.tpot_p99, 1),
        mean(x.e2e_p99, 1),
        mean(x.lateness_p99, 3),
        lengths(l.asked.0, x.input_tokens, x.input_tokens_off),
        lengths(l.asked.1, x.output_tokens, x.output_tokens_off),
        mean(l.energy_j_per_token, 4),
    );
}

fn standing(s: Standing) -> &'static str {
    match s {
        Standing::Meets => "meets",
        Standing::Fails => "fails",
        Standing::Unsure => "unsure",
    }
}

fn frontier(md: &mut String, s: &ServingSeries, slos: &[Slo]) {
    if slos.is_empty() {
        return;
    }
    let f = &s.frontier;
    let lowest = match f.levels.first().map(|l| l.standing) {
        Some(Standing::Fails) => "none: the lowest level fails them",
        _ => "none: the lowest level is not known to meet them",
    };
    let largest = f.largest_meeting.map_or(lowest.to_owned(), |x| {
        format!("**{}**", level_text(x, &s.unit))
    });
    let above = match (f.first_failing, f.largest_meeting) {
        (Some(x), _) => format!(
            "; the first level that fails them: {}",
            level_text(x, &s.unit)
        ),
        (None, Some(_)) => "; no level above it fails them".to_owned(),
        (None, None) => "; no level fails them".to_owned(),
    };
    let between = match (f.largest_meeting, f.first_failing) {
        (Some(_), Some(_)) => {
            " The levels between the two are where the crossing lies, unsure at this number of repetitions."
        }
        (None, _) => " More repetitions (narrower CIs) or lower levels would locate it.",
        (Some(_), None) => "",
    };
    let _ = writeln!(
        md,
        "\nSLO frontier: the largest level meeting every SLO (every lower level meeting them too): {largest}{above}.{between}\n"
    );
    let _ = write!(md, "| level |");
    for o in slos {
        let _ = write!(md, " {} |", slo_text(o));
    }
    md.push_str(" standing |\n|---|");
    for _ in slos {
        md.push_str("---|");
    }
    md.push_str("---|\n");
    for row in &f.levels {
        frontier_row(md, row, &s.unit);
    }
}

fn frontier_row(md: &mut String, row: &LevelRow, unit: &str) {
    let _ = write!(md, "| {} |", level_text(row.level, unit));
    for o in &row.slos {
        let v = mean(
            o.mean.map(|m| Mean {
                mean: m,
                ci95: o.ci95,
            }),
            1,
        );
        let v = match (o.mean, row.runs) {
            (_, 0) => "no runs".to_owned(),
            (None, _) => "failed requests".to_owned(),
            _ => v,
        };
        let _ = write!(md, " {v} ({}) |", standing(o.standing));
    }
    let _ = writeln!(md, " {} |", standing(row.standing));
}
