//! (d) Latency against throughput of the serving loads: per series, each level a point at
//! its mean output throughput (x) and mean p99 TTFT (y) over the runs, the y whisker its
//! Student-t 95 % CI (cut at 0 ms and at 1.5 × the largest mean, an arrowhead marking a cut
//! one), the points of a series joined in level order, and a dashed line at the TTFT SLO's
//! bound when the report has one. Every point's hover text holds the level and its numbers.

use crate::analysis::model::ReportAnalysis;
use crate::load::SloMetric;

use super::super::format::fixed;
use super::super::svg::{Plot, Svg, nice_ticks};
use super::{Figure, PALETTE, text_width};

/// One plotted level: its series, level, x, mean y and the y CI.
struct Point {
    series: usize,
    level: f64,
    x: f64,
    y: f64,
    ci: Option<(f64, f64)>,
}

/// The latency-throughput chart of `r` (None without a load series with both numbers).
pub(super) fn serving(r: &ReportAnalysis, stem: &str) -> Option<Figure> {
    let s = r.serving.as_ref()?;
    let mut pts: Vec<Point> = Vec::new();
    for (i, series) in s.series.iter().enumerate() {
        for l in &series.levels {
            let (Some(x), Some(y)) = (l.result.output_tok_s, l.result.ttft_p99) else {
                continue;
            };
            if x.mean.is_finite() && y.mean.is_finite() {
                pts.push(Point {
                    series: i,
                    level: l.result.level,
                    x: x.mean,
                    y: y.mean,
                    ci: y.ci95,
                });
            }
        }
    }
    if pts.is_empty() {
        return None;
    }
    let slo = s
        .slos
        .iter()
        .find(|o| o.metric == SloMetric::TtftMs && o.percentile == 99.0)
        .map(|o| o.max_ms);
    let x_hi = pts.iter().map(|p| p.x).fold(0.0, f64::max);
    let y_top = pts
        .iter()
        .map(|p| p.y)
        .fold(0.0, f64::max)
        .max(slo.unwrap_or(0.0));
    let cut = 1.5 * y_top;
    let x_ticks = nice_ticks(0.0, x_hi.max(1e-9), 6);
    let y_hi = pts
        .iter()
        .map(|p| p.ci.map_or(p.y, |(_, hi)| hi.min(cut)))
        .fold(y_top, f64::max);
    let y_ticks = nice_ticks(0.0, y_hi.max(1e-9), 6);
    let legend_w = s
        .series
        .iter()
        .map(|x| text_width(&x.label))
        .fold(0.0, f64::max);
    let plot = Plot {
        left: 72.0,
        top: 52.0,
        width: 560.0f64.max(legend_w + 40.0),
        height: 300.0,
    };
    let mut svg = Svg::new(
        "Latency against throughput",
        "p99 TTFT [95 % CI over runs] against output tokens per second, one point per level",
    );
    plot.y_axis(&mut svg, &y_ticks, "p99 TTFT (ms)");
    plot.x_axis(&mut svg, &x_ticks, "output tokens per second");
    let (xs, ys) = (plot.x_scale(&x_ticks), plot.y_scale(&y_ticks));
    if let Some(b) = slo {
        let y = ys.map(b);
        let mut x = plot.left;
        while x < plot.right() {
            svg.line(x, y, (x + 6.0).min(plot.right()), y, "#c00000", 1.0);
            x += 10.0;
        }
        svg.text(
            plot.right(),
            y - 4.0,
            &format!("SLO: p99 TTFT ≤ {} ms", fixed(b, 0)),
            "end",
            10.0,
            "normal",
            None,
        );
    }
    for (i, series) in s.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mine: Vec<_> = pts.iter().filter(|p| p.series == i).collect();
        let line: Vec<(f64, f64)> = mine.iter().map(|p| (xs.map(p.x), ys.map(p.y))).collect();
        svg.polyline(&line, color, 1.5);
        for p in &mine {
            let (px, py) = (xs.map(p.x), ys.map(p.y));
            if let Some((lo, hi)) = p.ci {
                let (lo_c, hi_c) = (lo.max(0.0), hi.min(cut));
                svg.line(px, ys.map(lo_c), px, ys.map(hi_c), color, 1.0);
                if hi > cut {
                    let t = ys.map(hi_c);
                    svg.polygon(
                        &[(px - 4.0, t + 6.0), (px + 4.0, t + 6.0), (px, t)],
                        color,
                        None,
                    );
                }
            }
            let ci = p.ci.map_or(String::new(), |(lo, hi)| {
                format!(" [{}, {}]", fixed(lo, 1), fixed(hi, 1))
            });
            let tip = format!(
                "{} — {} {}: {} output tok/s, p99 TTFT {} ms{ci}",
                series.label,
                fixed(p.level, if p.level.fract() == 0.0 { 0 } else { 2 }),
                series.unit,
                fixed(p.x, 1),
                fixed(p.y, 1)
            );
            svg.circle_tip(px, py, 4.0, color, "#ffffff", 1.0, Some(&tip));
            let label = fixed(p.level, if p.level.fract() == 0.0 { 0 } else { 2 });
            svg.text(px + 6.0, py - 6.0, &label, "start", 9.0, "normal", None);
        }
    }
    // Legend below the x axis title.
    let mut y = plot.bottom() + 54.0;
    for (i, series) in s.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        svg.line(plot.left, y - 4.0, plot.left + 18.0, y - 4.0, color, 2.0);
        svg.text(
            plot.left + 24.0,
            y,
            &format!("{} ({})", series.label, series.unit),
            "start",
            10.0,
            "normal",
            None,
        );
        y += 16.0;
    }
    Some(Figure {
        file: format!("{stem}-latency-throughput.svg"),
        title: "Latency against throughput".to_owned(),
        caption: "Serving loads: each level's mean output throughput and mean p99 TTFT over its runs (whisker: Student-t 95 % CI, cut at 1.5 × the largest mean with an arrowhead); the number beside a point is its level; the dashed line is the report's p99 TTFT SLO.".to_owned(),
        svg: svg.finish(),
    })
}
