//! (b) One metric's request-level distribution per scenario, as box plots. A scenario whose
//! requests are of several kinds (an agent's analysis and report calls) shows one box per
//! kind side by side, in the kind's colour: their mixture would look bimodal.

use crate::analysis::model::{Distribution, ReportAnalysis};
use crate::stats;

use super::super::format::{file_stem, trimmed};
use super::super::svg::{Plot, Scale, Svg, nice_ticks};
use super::{Figure, MAX_DOTS, PALETTE, category_labels, category_space, short, text_width};

/// Title, axis label, file-name part and unit of a distribution metric.
fn metric_words(metric: &str) -> (String, String, String, &'static str) {
    match metric {
        "throughput_tok_s" => (
            "throughput per request".to_owned(),
            "throughput (tok/s)".to_owned(),
            "throughput".to_owned(),
            "tok/s",
        ),
        "ttft_ms" => (
            "time to first token per request".to_owned(),
            "TTFT (ms)".to_owned(),
            "ttft".to_owned(),
            "ms",
        ),
        "published_ttft_ms" => (
            "time to first token per request, as the report defined it".to_owned(),
            "published TTFT (ms)".to_owned(),
            "published-ttft".to_owned(),
            "ms",
        ),
        other => (
            other.to_owned(),
            other.to_owned(),
            file_stem(other).to_lowercase().replace('_', "-"),
            "",
        ),
    }
}

/// Colour of a kind of request (the palette's, by kind, so that a kind keeps its colour from
/// chart to chart).
fn stage_color(stage: &str) -> &'static str {
    match stage {
        "analysis" => PALETTE[0],
        "report" => PALETTE[1],
        "single" => PALETTE[2],
        "persona" => PALETTE[3],
        _ => PALETTE[4],
    }
}

/// Box-plot statistics of sorted, finite, non-empty values.
struct BoxStats {
    q1: f64,
    median: f64,
    q3: f64,
    low: f64,
    high: f64,
}

fn box_stats(sorted: &[f64]) -> Option<BoxStats> {
    let q1 = stats::percentile(sorted, 25.0)?;
    let median = stats::percentile(sorted, 50.0)?;
    let q3 = stats::percentile(sorted, 75.0)?;
    let iqr = q3 - q1;
    let (lo_fence, hi_fence) = if iqr.is_finite() {
        (q1 - 1.5 * iqr, q3 + 1.5 * iqr)
    } else {
        (f64::NEG_INFINITY, f64::INFINITY)
    };
    let low = sorted.iter().copied().find(|v| *v >= lo_fence)?;
    let high = sorted.iter().rev().copied().find(|v| *v <= hi_fence)?;
    Some(BoxStats {
        q1,
        median,
        q3,
        low,
        high,
    })
}

/// One box of the chart: a group's values (sorted, finite), of one kind of request or all.
struct BoxData {
    group: String,
    stage: Option<String>,
    values: Vec<f64>,
    /// How many values the group holds (more than `values` when it keeps quantiles).
    count: u64,
}

/// The chart's categories (groups, in order of first appearance), each with its boxes.
fn categories(groups: &[&Distribution]) -> Vec<(String, Vec<BoxData>)> {
    let mut out: Vec<(String, Vec<BoxData>)> = Vec::new();
    for d in groups {
        let mut values: Vec<f64> = d.values.iter().copied().filter(|x| x.is_finite()).collect();
        values.sort_by(f64::total_cmp);
        let b = BoxData {
            group: d.group.clone(),
            stage: d.stage.clone(),
            values,
            count: d.quantiles_of.unwrap_or(d.values.len() as u64),
        };
        match out.iter_mut().find(|(g, _)| *g == d.group) {
            Some((_, boxes)) => boxes.push(b),
            None => out.push((d.group.clone(), vec![b])),
        }
    }
    out
}

/// A number for hover text: up to 2 decimals.
fn val(x: f64, unit: &str) -> String {
    let v = trimmed(x, 2);
    if unit.is_empty() {
        v
    } else {
        format!("{v} {unit}")
    }
}

/// One metric's request-level distribution per group, as box plots.
pub(super) fn distribution(
    r: &ReportAnalysis,
    stem: &str,
    metric: &str,
    groups: &[&Distribution],
) -> Option<Figure> {
    let cats = categories(groups);
    let sampled = groups.iter().any(|d| d.quantiles_of.is_some());
    let (lo, hi) = super::extent(
        cats.iter()
            .flat_map(|(_, b)| b.iter().flat_map(|b| b.values.iter().copied())),
    )?;
    let (title_words, axis, slug, unit) = metric_words(metric);
    let by_scenario = cats
        .iter()
        .all(|(g, _)| r.method.scenarios.iter().any(|s| &s.id == g));
    let by = if by_scenario { "scenario" } else { "group" };
    let mut stages: Vec<&str> = Vec::new();
    for b in cats.iter().flat_map(|(_, b)| b) {
        if let Some(s) = b.stage.as_deref().filter(|s| !stages.contains(s)) {
            stages.push(s);
        }
    }
    let per_cat = cats.iter().map(|(_, b)| b.len()).max().unwrap_or(1).max(1);
    let labels: Vec<String> = cats.iter().map(|(g, _)| short(g)).collect();
    let plot_width = (cats.len() as f64 * 60.0 * (per_cat as f64 + 0.4)).max(240.0);
    let step = plot_width / cats.len() as f64;
    let (rotate, below, left) = category_space(&labels, step);
    let legend_h = if stages.is_empty() { 0.0 } else { 16.0 };
    let plot = Plot {
        left,
        top: 50.0 + legend_h + if rotate { 12.0 } else { 0.0 },
        width: plot_width,
        height: 260.0,
    };
    let title = if stages.is_empty() {
        format!("{}: {title_words} by {by}", r.report)
    } else {
        format!("{}: {title_words} by {by} and call", r.report)
    };
    let all: Vec<&BoxData> = cats.iter().flat_map(|(_, b)| b).collect();
    let dots = all
        .iter()
        .any(|b| !b.values.is_empty() && b.values.len() <= MAX_DOTS);
    let circles = all.iter().any(|b| b.values.len() > MAX_DOTS);
    let subtitle = subtitle(dots, circles, sampled);
    let mut svg = Svg::new(&title, &subtitle);
    let ticks = nice_ticks(lo, hi, 6);
    plot.y_axis(&mut svg, &ticks, &axis);
    plot.baseline(&mut svg);
    let y = plot.y_scale(&ticks);
    let mut lx = plot.left + 6.0;
    for s in &stages {
        svg.rect(lx - 4.0, 52.0 - 8.0, 8.0, 8.0, stage_color(s), "none");
        let words = format!("{s} calls");
        svg.text(lx + 8.0, 52.0, &words, "start", 10.0, "normal", None);
        lx += 24.0 + text_width(&words);
    }
    let slot = step / (per_cat as f64 + 0.4);
    let box_w = (slot * 0.6).min(40.0);
    let mut xs = Vec::with_capacity(cats.len());
    for (i, (_, boxes)) in cats.iter().enumerate() {
        let centre = plot.left + (i as f64 + 0.5) * step;
        xs.push(centre);
        for (k, b) in boxes.iter().enumerate() {
            let x = centre + (k as f64 - (boxes.len() as f64 - 1.0) / 2.0) * slot;
            let color = match &b.stage {
                Some(s) => stage_color(s),
                // Beside boxes coloured by call, a box of all calls takes no call's colour.
                None if !stages.is_empty() => "#7f7f7f",
                None => PALETTE[i % PALETTE.len()],
            };
            let ny = if rotate {
                plot.top - 4.0
            } else {
                plot.bottom() + 30.0
            };
            svg.text(
                x,
                ny,
                &format!("n = {}", b.count),
                "middle",
                9.0,
                "normal",
                None,
            );
            let Some(st) = box_stats(&b.values) else {
                let mid = plot.top + plot.height / 2.0;
                svg.text(x, mid, "no data", "middle", 10.0, "normal", None);
                continue;
            };
            draw_box(&mut svg, &y, x, box_w, &st, b, color, unit);
        }
    }
    category_labels(&mut svg, &plot, &labels, &xs, rotate);
    svg.text(
        plot.left + plot.width / 2.0,
        plot.bottom() + below + 14.0,
        by,
        "middle",
        11.0,
        "normal",
        None,
    );
    let caption = caption(&title_words, by, !stages.is_empty(), dots, circles, sampled);
    Some(Figure {
        file: format!("{stem}-{slug}.svg"),
        title,
        caption,
        svg: svg.finish(),
    })
}

/// The line under the title: what the marks are.
fn subtitle(dots: bool, circles: bool, sampled: bool) -> String {
    let mut s = "box: quartiles and median · whiskers: furthest values within 1.5 × IQR".to_owned();
    if dots {
        s.push_str(" · dots: values");
    }
    if circles {
        s.push_str(" · circles: values beyond the whiskers");
    }
    if sampled {
        s.push_str(&format!(
            " (of the {}-quantiles in groups of over {})",
            Distribution::QUANTILES,
            Distribution::MAX_VALUES
        ));
    }
    s
}

/// The figure's caption.
fn caption(
    title_words: &str,
    by: &str,
    staged: bool,
    dots: bool,
    circles: bool,
    sampled: bool,
) -> String {
    let sampled_words = if sampled {
        format!(
            " (groups of more than {} values are drawn from their {}-quantiles: quartiles, median \
             and extremes exact, whiskers and circles to the nearest quantile)",
            Distribution::MAX_VALUES,
            Distribution::QUANTILES
        )
    } else {
        String::new()
    };
    let staged_words = if staged {
        " The agents' calls are drawn apart (one box per kind of call, in its colour): an analysis call and a report call differ in prompt and reply, and pooled they would look bimodal."
    } else {
        ""
    };
    format!(
        "{} by {by} (request level, warm-ups excluded): box = quartiles and median, whiskers = furthest values within 1.5 × IQR{}{sampled_words}; in the HTML report every mark shows its value on hover.{staged_words}",
        super::capitalise(title_words),
        match (dots, circles) {
            (true, true) => format!(
                ", dots = every value of a group of at most {MAX_DOTS}, circles = values beyond the whiskers in larger groups"
            ),
            (true, false) => ", dots = every value".to_owned(),
            (false, _) => ", circles = values beyond the whiskers".to_owned(),
        },
    )
}

/// One box plot at `x`: whiskers, quartile box, median, and the values as dots (small groups)
/// or the values beyond the whiskers as circles; every mark carries its values on hover.
#[allow(clippy::too_many_arguments)]
fn draw_box(
    svg: &mut Svg,
    y: &Scale,
    x: f64,
    box_w: f64,
    s: &BoxStats,
    b: &BoxData,
    color: &str,
    unit: &str,
) {
    let who = match &b.stage {
        Some(st) => format!("{} · {st} calls", b.group),
        None => b.group.clone(),
    };
    svg.line(x, y.map(s.low), x, y.map(s.q1), "#444444", 1.0);
    svg.line(x, y.map(s.q3), x, y.map(s.high), "#444444", 1.0);
    svg.hline(x, box_w / 4.0, y.map(s.low), "#444444", 1.0);
    svg.hline(x, box_w / 4.0, y.map(s.high), "#444444", 1.0);
    let top = y.map(s.q3);
    let tip = format!(
        "{who}: median {}, quartiles {} to {}, whiskers {} to {}, n = {}",
        val(s.median, unit),
        val(s.q1, unit),
        val(s.q3, unit),
        val(s.low, unit),
        val(s.high, unit),
        b.count
    );
    svg.rect_tip(
        x - box_w / 2.0,
        top,
        box_w,
        y.map(s.q1) - top,
        "#f2f2f2",
        color,
        Some(&tip),
    );
    svg.hline(x, box_w / 2.0, y.map(s.median), "#222222", 2.0);
    let point_tip = |v: f64| format!("{who}: {}", val(v, unit));
    if b.values.len() <= MAX_DOTS {
        for (k, v) in b.values.iter().enumerate() {
            // Deterministic spread across the box, so that equal values stay visible.
            let jitter = ((k * 37) % 17) as f64 / 16.0 - 0.5;
            let t = point_tip(*v);
            svg.circle_tip(
                x + jitter * box_w * 0.7,
                y.map(*v),
                2.2,
                color,
                "none",
                0.6,
                Some(&t),
            );
        }
    } else {
        for v in b.values.iter().filter(|v| **v < s.low || **v > s.high) {
            let t = point_tip(*v);
            svg.circle_tip(x, y.map(*v), 2.2, "none", color, 1.0, Some(&t));
        }
    }
}
