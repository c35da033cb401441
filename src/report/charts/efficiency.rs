//! (a) Efficiency per configuration: the published efficiency, the duration-based true
//! efficiency and the equal-work efficiency, each a mean over runs with its Student-t 95 % CI.
//!
//! A CI of two runs is wide (t = 12.7), and would stretch the axis far past anything the
//! metric can be. Whiskers are therefore cut where the metric cannot go (below 0 %; above
//! 100 % for the published efficiency, a balance ratio that cannot exceed it) and, for the
//! unbounded true efficiencies, at 1.5 × the largest mean (at least 100 %): a cut whisker
//! ends in an arrowhead, the legend says so, and the full interval is in the point's hover
//! text and in the report's tables.

use crate::analysis::model::{ConfigRow, ReportAnalysis, Stat};

use super::super::format::fixed;
use super::super::svg::{Plot, Scale, Svg, nice_ticks};
use super::{Figure, category_labels, category_space, short};

/// Colour of the published numbers.
const PUBLISHED: &str = "#1f77b4";
/// Colour of the duration-based true efficiency.
const TRUE: &str = "#d95f02";
/// Colour of the equal-work efficiency.
const EQUAL_WORK: &str = "#1b9e77";

/// The marker a series is drawn with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Circle,
    Square,
    Diamond,
}

/// One efficiency series of the chart.
struct Series {
    /// Words for the legend.
    legend: &'static str,
    /// Name in a point's hover text.
    name: &'static str,
    color: &'static str,
    shape: Shape,
    /// The most the metric can be (None: unbounded above).
    max: Option<f64>,
    get: fn(&ConfigRow) -> Option<Stat>,
}

const SERIES: [Series; 3] = [
    Series {
        legend: "published efficiency (a balance ratio of the concurrent run; at most 100 %)",
        name: "published efficiency",
        color: PUBLISHED,
        shape: Shape::Circle,
        max: Some(100.0),
        get: |c| c.published_efficiency,
    },
    Series {
        legend: "true efficiency (durations, compared with each agent run alone)",
        name: "true efficiency",
        color: TRUE,
        shape: Shape::Square,
        max: None,
        get: |c| c.true_efficiency,
    },
    Series {
        legend: "equal-work efficiency (each agent alone scaled to the work done together)",
        name: "equal-work efficiency",
        color: EQUAL_WORK,
        shape: Shape::Diamond,
        max: None,
        get: |c| c.equal_work_efficiency,
    },
];

/// Lowest possible efficiency.
const MIN: f64 = 0.0;

/// A whisker from `lo` to `hi` cut to `[floor, ceil]`: (low, high, low cut, high cut).
fn clip(lo: f64, hi: f64, floor: f64, ceil: f64) -> (f64, f64, bool, bool) {
    (
        lo.clamp(floor, ceil),
        hi.clamp(floor, ceil),
        lo < floor,
        hi > ceil,
    )
}

/// A vertical whisker at `x` between pixel rows `lo` and `hi` (lo below hi): a cap at each
/// end, or an arrowhead pointing outwards at an end that was cut.
fn whisker(
    svg: &mut Svg,
    x: f64,
    (lo, hi): (f64, f64),
    (lo_cut, hi_cut): (bool, bool),
    color: &str,
) {
    svg.line(x, lo, x, hi, color, 1.2);
    for (y, cut, dir) in [(lo, lo_cut, 1.0), (hi, hi_cut, -1.0)] {
        if cut {
            svg.polygon(
                &[(x - 3.5, y), (x + 3.5, y), (x, y + dir * 6.0)],
                color,
                None,
            );
        } else {
            svg.line(x - 3.0, y, x + 3.0, y, color, 1.2);
        }
    }
}

/// A series' marker at `x`, `y`, with its hover text.
fn marker(svg: &mut Svg, shape: Shape, x: f64, y: f64, color: &str, tip: Option<&str>) {
    match shape {
        Shape::Circle => svg.circle_tip(x, y, 3.5, color, "none", 1.0, tip),
        Shape::Square => svg.rect_tip(x - 3.5, y - 3.5, 7.0, 7.0, color, "none", tip),
        Shape::Diamond => svg.polygon(
            &[(x, y - 4.5), (x + 4.5, y), (x, y + 4.5), (x - 4.5, y)],
            color,
            tip,
        ),
    }
}

/// A point's hover text: the configuration, the series, its mean and its full CI.
fn tip(config: &str, s: &Series, st: &Stat, cut: Option<(f64, f64)>) -> String {
    let ci = match st.ci95.filter(|(a, b)| a.is_finite() && b.is_finite()) {
        Some((a, b)) => format!("95 % CI {} to {} %", fixed(a, 1), fixed(b, 1)),
        None => "no CI".to_owned(),
    };
    let cut = cut.map_or(String::new(), |(a, b)| {
        format!("; whisker drawn from {} to {} %", fixed(a, 1), fixed(b, 1))
    });
    format!(
        "{config} · {}: {} % ({ci}, n = {}{cut})",
        s.name,
        fixed(st.mean, 1),
        st.n
    )
}

/// The efficiency chart, or None when no configuration has an efficiency.
pub(super) fn efficiency(r: &ReportAnalysis, stem: &str) -> Option<Figure> {
    let rows: Vec<&ConfigRow> = r
        .configs
        .iter()
        .filter(|c| SERIES.iter().any(|s| (s.get)(c).is_some()))
        .collect();
    let shown: Vec<&Series> = SERIES
        .iter()
        .filter(|s| {
            rows.iter()
                .any(|c| (s.get)(c).is_some_and(|st| st.mean.is_finite()))
        })
        .collect();
    let means: Vec<f64> = rows
        .iter()
        .flat_map(|c| shown.iter().filter_map(|s| (s.get)(c)))
        .map(|st| st.mean)
        .filter(|m| m.is_finite())
        .collect();
    let (mean_lo, mean_hi) = super::extent(means.iter().copied())?;
    // The unbounded series are cut at 1.5 × the largest mean (at least 100 %).
    let open_cap = (mean_hi * 1.5).max(100.0);
    let ceil_of = |s: &Series| s.max.unwrap_or(open_cap);
    let mut lo = mean_lo;
    let mut hi = mean_hi;
    let mut cuts = Cuts::default();
    for c in &rows {
        for s in &shown {
            if let Some((a, b)) = (s.get)(c)
                .and_then(|st| st.ci95)
                .filter(|(a, b)| a.is_finite() && b.is_finite())
            {
                let (a, b, ca, cb) = clip(a, b, MIN, ceil_of(s));
                lo = lo.min(a);
                hi = hi.max(b);
                cuts.low |= ca;
                cuts.bound |= cb && s.max.is_some();
                cuts.open |= cb && s.max.is_none();
            }
        }
    }
    let any_cut = cuts.low || cuts.bound || cuts.open;
    let labels: Vec<String> = rows.iter().map(|c| short(&c.config)).collect();
    let slot = 10.0 + 9.0 * shown.len() as f64;
    let plot_width = (rows.len() as f64 * slot).max(280.0);
    let (rotate, below, left) = category_space(&labels, plot_width / rows.len() as f64);
    let legend_rows = shown.len() as f64 + if any_cut { 1.0 } else { 0.0 };
    let plot = Plot {
        left,
        top: 52.0 + legend_rows * 14.0,
        width: plot_width,
        height: 260.0,
    };
    let title = format!("{}: efficiency per configuration", r.report);
    let mut svg = Svg::new(
        &title,
        "mean over runs with Student-t 95 % CI whiskers; hover a point for its values",
    );
    let ticks = nice_ticks(lo, hi, 6);
    plot.y_axis(&mut svg, &ticks, "efficiency (%)");
    plot.baseline(&mut svg);
    let y = plot.y_scale(&ticks);
    legend(&mut svg, &plot, &shown, any_cut);
    let mut xs = Vec::with_capacity(rows.len());
    let width = plot.width / rows.len() as f64;
    for (i, c) in rows.iter().enumerate() {
        let x = plot.left + (i as f64 + 0.5) * width;
        xs.push(x);
        for (k, s) in shown.iter().enumerate() {
            let dx = (k as f64 - (shown.len() as f64 - 1.0) / 2.0) * 9.0;
            if let Some(st) = (s.get)(c) {
                point(&mut svg, &y, x + dx, c, s, &st, ceil_of(s));
            }
        }
    }
    category_labels(&mut svg, &plot, &labels, &xs, rotate);
    svg.text(
        plot.left + plot.width / 2.0,
        plot.bottom() + below,
        "configuration",
        "middle",
        11.0,
        "normal",
        None,
    );
    Some(Figure {
        file: format!("{stem}-efficiency.svg"),
        title,
        caption: caption(&shown, cuts, open_cap),
        svg: svg.finish(),
    })
}

/// One series' mean and whisker for one configuration.
fn point(svg: &mut Svg, y: &Scale, x: f64, c: &ConfigRow, s: &Series, st: &Stat, ceil: f64) {
    let mut cut_to = None;
    if let Some((a, b)) = st.ci95.filter(|(a, b)| a.is_finite() && b.is_finite()) {
        let (a2, b2, ca, cb) = clip(a, b, MIN, ceil);
        whisker(svg, x, (y.map(a2), y.map(b2)), (ca, cb), s.color);
        if ca || cb {
            cut_to = Some((a2, b2));
        }
    }
    if st.mean.is_finite() {
        let t = tip(&c.config, s, st, cut_to);
        marker(svg, s.shape, x, y.map(st.mean), s.color, Some(&t));
    }
}

/// The legend rows above the plot: one per series, and one for cut whiskers.
fn legend(svg: &mut Svg, plot: &Plot, shown: &[&Series], any_cut: bool) {
    let mut ly = 52.0;
    for s in shown {
        marker(svg, s.shape, plot.left + 6.0, ly - 4.0, s.color, None);
        svg.text(
            plot.left + 14.0,
            ly,
            s.legend,
            "start",
            10.0,
            "normal",
            None,
        );
        ly += 14.0;
    }
    if any_cut {
        let x = plot.left + 6.0;
        svg.polygon(
            &[(x - 3.5, ly - 1.0), (x + 3.5, ly - 1.0), (x, ly - 7.0)],
            "#444444",
            None,
        );
        let words = "whisker cut at what the metric can be, or at 1.5 × the largest mean (full CI on hover)";
        svg.text(plot.left + 14.0, ly, words, "start", 10.0, "normal", None);
    }
}

/// Which whiskers of a chart were cut.
#[derive(Debug, Clone, Copy, Default)]
struct Cuts {
    /// Below 0 %.
    low: bool,
    /// Above what a bounded series can be.
    bound: bool,
    /// Above 1.5 × the largest mean (an unbounded series).
    open: bool,
}

/// The figure's caption.
fn caption(shown: &[&Series], cuts: Cuts, open_cap: f64) -> String {
    let names: Vec<&str> = shown.iter().map(|s| s.name).collect();
    let mut out = format!(
        "Efficiency per configuration: {} (mean over runs, Student-t 95 % CI).",
        names.join(", ")
    );
    if shown.len() == 1 && shown[0].shape == Shape::Circle {
        out.push_str(" The true efficiency was not measured: no agent was run alone.");
    } else {
        out.push_str(
            " The true efficiencies compare the concurrent run with each agent run alone.",
        );
    }
    let mut where_cut = Vec::new();
    if cuts.low {
        where_cut.push("below 0 %, which no efficiency can be".to_owned());
    }
    if cuts.bound {
        where_cut.push("above 100 %, which the published efficiency cannot exceed".to_owned());
    }
    if cuts.open && open_cap > 100.0 {
        where_cut.push(format!(
            "above {} % (1.5 × the largest mean) for the true efficiencies",
            fixed(open_cap, 0)
        ));
    } else if cuts.open {
        where_cut.push(
            "above 100 % for the true efficiencies (the chart's top: 1.5 × the largest mean is less)"
                .to_owned(),
        );
    }
    if !where_cut.is_empty() {
        out.push_str(&format!(
            " Whiskers ending in an arrowhead were cut: {}; the full intervals are in the tables, and in each point's hover text in the HTML report.",
            where_cut.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_cuts_and_marks_each_end() {
        assert_eq!(clip(-400.0, 400.0, 0.0, 100.0), (0.0, 100.0, true, true));
        assert_eq!(clip(90.0, 99.0, 0.0, 100.0), (90.0, 99.0, false, false));
        assert_eq!(clip(-1.0, 50.0, 0.0, 100.0), (0.0, 50.0, true, false));
    }
}
