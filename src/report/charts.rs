//! The report's charts: efficiency per configuration, request-level distributions per
//! scenario (box plots), and GPU utilisation and power over time. Each is skipped when it
//! has nothing to plot; values that are not finite are left out, never drawn.

use crate::analysis::model::{Distribution, ReportAnalysis, Stat, TelemetrySeries};
use crate::stats;

use super::format::{file_stem, fixed};
use super::svg::{Plot, Scale, Svg, nice_ticks};

/// One chart of a report.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// File name (`<report id, lower case>-<chart>.svg`).
    pub file: String,
    /// Short title (the image's alternative text).
    pub title: String,
    /// Caption for the Markdown.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

/// Colour of the published numbers.
const PUBLISHED: &str = "#1f77b4";
/// Colour of the honest numbers.
const TRUE: &str = "#d95f02";
/// Colours of series (GPUs), in order.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
];
/// Up to this many values, a box plot also shows every value as a dot.
const MAX_DOTS: usize = 60;
/// Longest axis label, in characters, before it is shortened.
const MAX_LABEL: usize = 28;

/// All charts of a report, in the order the Markdown shows them.
pub(crate) fn figures(r: &ReportAnalysis) -> Vec<Figure> {
    let stem = file_stem(&r.report).to_lowercase();
    let mut out = Vec::new();
    out.extend(efficiency(r, &stem));
    let mut metrics: Vec<&str> = Vec::new();
    for d in &r.distributions {
        if !metrics.contains(&d.metric.as_str()) {
            metrics.push(&d.metric);
        }
    }
    for m in metrics {
        let groups: Vec<&Distribution> = r.distributions.iter().filter(|d| d.metric == m).collect();
        out.extend(distribution(r, &stem, m, &groups));
    }
    out.extend(telemetry(r, &stem, Gauge::Util));
    out.extend(telemetry(r, &stem, Gauge::Power));
    out
}

/// A label shortened to [`MAX_LABEL`] characters.
fn short(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX_LABEL - 1).collect();
        t.push('…');
        t
    }
}

/// Approximate width of `s` in pixels at font size 10.
fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * 6.0
}

/// Finite values of a mean and its CI.
fn stat_values(s: &Stat) -> Vec<f64> {
    let mut v = vec![s.mean];
    if let Some((lo, hi)) = s.ci95 {
        v.push(lo);
        v.push(hi);
    }
    v.retain(|x| x.is_finite());
    v
}

/// Lowest and highest of finite values (None when there are none).
fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// How category labels fit under a plot whose categories are `slot` pixels apart: whether
/// they are rotated (when any is wider than its slot), the space they need below the plot,
/// and the left margin that keeps the first rotated label inside the picture.
fn category_space(labels: &[String], slot: f64) -> (bool, f64, f64) {
    let widest = labels.iter().map(|l| text_width(l)).fold(0.0, f64::max);
    if widest > slot - 6.0 {
        let first = labels.first().map_or(0.0, |l| text_width(l));
        let left = (first * 0.72 - slot / 2.0 + 8.0).max(64.0);
        (true, widest * 0.72 + 34.0, left)
    } else {
        (false, 44.0, 64.0)
    }
}

/// Category labels under the plot, centred on `xs`, rotated by −45° when `rotate`.
fn category_labels(svg: &mut Svg, plot: &Plot, labels: &[String], xs: &[f64], rotate: bool) {
    for (label, &x) in labels.iter().zip(xs) {
        svg.line(x, plot.bottom(), x, plot.bottom() + 4.0, "#444444", 1.0);
        if rotate {
            let y = plot.bottom() + 12.0;
            svg.text(x + 3.0, y, label, "end", 10.0, "normal", Some(-45.0));
        } else {
            svg.text(
                x,
                plot.bottom() + 16.0,
                label,
                "middle",
                10.0,
                "normal",
                None,
            );
        }
    }
}

/// A vertical CI whisker with caps, from `lo` to `hi` (pixels).
fn whisker(svg: &mut Svg, x: f64, lo: f64, hi: f64, color: &str) {
    svg.line(x, lo, x, hi, color, 1.2);
    svg.line(x - 3.0, lo, x + 3.0, lo, color, 1.2);
    svg.line(x - 3.0, hi, x + 3.0, hi, color, 1.2);
}

/// (a) Published efficiency per configuration, mean and CI, with the true efficiency beside
/// it where measured.
fn efficiency(r: &ReportAnalysis, stem: &str) -> Option<Figure> {
    let rows: Vec<(&str, Option<Stat>, Option<Stat>)> = r
        .configs
        .iter()
        .filter(|c| c.published_efficiency.is_some() || c.true_efficiency.is_some())
        .map(|c| (c.config.as_str(), c.published_efficiency, c.true_efficiency))
        .collect();
    let all = rows
        .iter()
        .flat_map(|(_, p, t)| p.iter().chain(t.iter()).flat_map(stat_values));
    let (lo, hi) = extent(all)?;
    let has_true = rows
        .iter()
        .any(|(_, _, t)| t.is_some_and(|t| t.mean.is_finite()));
    let labels: Vec<String> = rows.iter().map(|(c, _, _)| short(c)).collect();
    let slot = if has_true { 26.0 } else { 18.0 };
    let plot_width = (rows.len() as f64 * slot).max(280.0);
    let (rotate, below, left) = category_space(&labels, plot_width / rows.len() as f64);
    let legend_rows = if has_true { 2.0 } else { 1.0 };
    let plot = Plot {
        left,
        top: 52.0 + legend_rows * 14.0,
        width: plot_width,
        height: 260.0,
    };
    let legend = [
        "published efficiency (a balance ratio of the concurrent run)",
        "true efficiency (compared with each agent run alone)",
    ];
    let width = (plot.right() + 20.0).max(plot.left + 24.0 + text_width(legend[0]));
    let height = plot.bottom() + below + 22.0;
    let title = format!("{}: efficiency per configuration", r.report);
    let mut svg = Svg::new(
        width,
        height,
        &title,
        "mean over runs with Student-t 95 % CI whiskers",
    );
    let ticks = nice_ticks(lo, hi, 6);
    plot.y_axis(&mut svg, &ticks, "efficiency (%)");
    plot.baseline(&mut svg);
    let y = plot.y_scale(&ticks);
    // Legend.
    let ly = 52.0;
    svg.circle(plot.left + 6.0, ly - 4.0, 3.5, PUBLISHED, "none", 1.0);
    svg.text(
        plot.left + 14.0,
        ly,
        legend[0],
        "start",
        10.0,
        "normal",
        None,
    );
    if has_true {
        svg.rect(plot.left + 2.5, ly + 14.0 - 7.5, 7.0, 7.0, TRUE, "none");
        svg.text(
            plot.left + 14.0,
            ly + 14.0,
            legend[1],
            "start",
            10.0,
            "normal",
            None,
        );
    }
    let mut xs = Vec::with_capacity(rows.len());
    for (i, (_, p, t)) in rows.iter().enumerate() {
        let x = plot.left + (i as f64 + 0.5) * (plot.width / rows.len() as f64);
        xs.push(x);
        let (px, tx) = if has_true { (x - 5.0, x + 5.0) } else { (x, x) };
        if let Some(p) = p {
            if let Some((a, b)) = p.ci95.filter(|(a, b)| a.is_finite() && b.is_finite()) {
                whisker(&mut svg, px, y.map(a), y.map(b), PUBLISHED);
            }
            if p.mean.is_finite() {
                svg.circle(px, y.map(p.mean), 3.5, PUBLISHED, "none", 1.0);
            }
        }
        if let Some(t) = t {
            if let Some((a, b)) = t.ci95.filter(|(a, b)| a.is_finite() && b.is_finite()) {
                whisker(&mut svg, tx, y.map(a), y.map(b), TRUE);
            }
            if t.mean.is_finite() {
                svg.rect(tx - 3.5, y.map(t.mean) - 3.5, 7.0, 7.0, TRUE, "none");
            }
        }
    }
    category_labels(&mut svg, &plot, &labels, &xs, rotate);
    svg.text(
        plot.left + plot.width / 2.0,
        height - 8.0,
        "configuration",
        "middle",
        11.0,
        "normal",
        None,
    );
    let caption = if has_true {
        "Published efficiency per configuration (mean over runs, Student-t 95 % CI) beside the true efficiency, which compares the concurrent run with each agent run alone."
    } else {
        "Published efficiency per configuration (mean over runs, Student-t 95 % CI). The true efficiency was not measured: no agent was run alone."
    };
    Some(Figure {
        file: format!("{stem}-efficiency.svg"),
        title,
        caption: caption.to_owned(),
        svg: svg.finish(),
    })
}

/// Title, axis label and file-name part of a distribution metric.
fn metric_words(metric: &str) -> (String, String, String) {
    match metric {
        "throughput_tok_s" => (
            "throughput per request".to_owned(),
            "throughput (tok/s)".to_owned(),
            "throughput".to_owned(),
        ),
        "ttft_ms" => (
            "time to first token per request".to_owned(),
            "TTFT (ms)".to_owned(),
            "ttft".to_owned(),
        ),
        "published_ttft_ms" => (
            "time to first token per request, as the report defined it".to_owned(),
            "published TTFT (ms)".to_owned(),
            "published-ttft".to_owned(),
        ),
        other => (
            other.to_owned(),
            other.to_owned(),
            file_stem(other).to_lowercase().replace('_', "-"),
        ),
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

/// (b) One metric's request-level distribution per group, as box plots.
fn distribution(
    r: &ReportAnalysis,
    stem: &str,
    metric: &str,
    groups: &[&Distribution],
) -> Option<Figure> {
    let data: Vec<(String, Vec<f64>)> = groups
        .iter()
        .map(|d| {
            let mut v: Vec<f64> = d.values.iter().copied().filter(|x| x.is_finite()).collect();
            v.sort_by(f64::total_cmp);
            (d.group.clone(), v)
        })
        .collect();
    // Groups too large to keep every value hold their quantiles (see `Distribution::new`):
    // the count is the group's, the circles are the quantiles beyond the whiskers.
    let counts: Vec<usize> = groups
        .iter()
        .zip(&data)
        .map(|(d, (_, v))| d.quantiles_of.map_or(v.len(), |n| n as usize))
        .collect();
    let sampled = groups.iter().any(|d| d.quantiles_of.is_some());
    let (lo, hi) = extent(data.iter().flat_map(|(_, v)| v.iter().copied()))?;
    let (title_words, axis, slug) = metric_words(metric);
    let by_scenario = data
        .iter()
        .all(|(g, _)| r.method.scenarios.iter().any(|s| &s.id == g));
    let by = if by_scenario { "scenario" } else { "group" };
    let labels: Vec<String> = data.iter().map(|(g, _)| short(g)).collect();
    let plot_width = (data.len() as f64 * 84.0).max(240.0);
    let (rotate, below, left) = category_space(&labels, plot_width / data.len() as f64);
    let plot = Plot {
        left,
        top: if rotate { 62.0 } else { 50.0 },
        width: plot_width,
        height: 260.0,
    };
    let width = plot.right() + 20.0;
    let height = plot.bottom() + below + 38.0;
    let title = format!("{}: {title_words} by {by}", r.report);
    let dots = data
        .iter()
        .any(|(_, v)| !v.is_empty() && v.len() <= MAX_DOTS);
    let circles = data.iter().any(|(_, v)| v.len() > MAX_DOTS);
    let mut subtitle =
        "box: quartiles and median · whiskers: furthest values within 1.5 × IQR".to_owned();
    if dots {
        subtitle.push_str(" · dots: values");
    }
    if circles {
        subtitle.push_str(" · circles: values beyond the whiskers");
    }
    if sampled {
        subtitle.push_str(&format!(
            " (of the {}-quantiles in groups of over {})",
            Distribution::QUANTILES,
            Distribution::MAX_VALUES
        ));
    }
    let subtitle = subtitle.as_str();
    let width = width.max(text_width(subtitle) * 0.9 + 20.0);
    let mut svg = Svg::new(width, height, &title, subtitle);
    let ticks = nice_ticks(lo, hi, 6);
    plot.y_axis(&mut svg, &ticks, &axis);
    plot.baseline(&mut svg);
    let y = plot.y_scale(&ticks);
    let step = plot.width / data.len() as f64;
    let box_w = (step * 0.5).min(40.0);
    let mut xs = Vec::with_capacity(data.len());
    for (i, (_, values)) in data.iter().enumerate() {
        let x = plot.left + (i as f64 + 0.5) * step;
        xs.push(x);
        let n_label = format!("n = {}", counts[i]);
        let ny = if rotate {
            plot.top - 4.0
        } else {
            plot.bottom() + 30.0
        };
        svg.text(x, ny, &n_label, "middle", 9.0, "normal", None);
        let Some(b) = box_stats(values) else {
            svg.text(
                x,
                plot.top + plot.height / 2.0,
                "no data",
                "middle",
                10.0,
                "normal",
                None,
            );
            continue;
        };
        draw_box(
            &mut svg,
            &y,
            x,
            box_w,
            &b,
            values,
            PALETTE[i % PALETTE.len()],
        );
    }
    category_labels(&mut svg, &plot, &labels, &xs, rotate);
    svg.text(
        plot.left + plot.width / 2.0,
        height - 8.0,
        by,
        "middle",
        11.0,
        "normal",
        None,
    );
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
    let caption = format!(
        "{} by {by} (request level, warm-ups excluded): box = quartiles and median, whiskers = furthest values within 1.5 × IQR{}{sampled_words}.",
        capitalise(&title_words),
        match (dots, circles) {
            (true, true) => format!(
                ", dots = every value of a group of at most {MAX_DOTS}, circles = values beyond the whiskers in larger groups"
            ),
            (true, false) => ", dots = every value".to_owned(),
            (false, _) => ", circles = values beyond the whiskers".to_owned(),
        },
    );
    Some(Figure {
        file: format!("{stem}-{slug}.svg"),
        title,
        caption,
        svg: svg.finish(),
    })
}

/// One box plot at `x`: whiskers, quartile box, median, and the values as dots (small groups)
/// or the values beyond the whiskers as circles.
fn draw_box(
    svg: &mut Svg,
    y: &Scale,
    x: f64,
    box_w: f64,
    b: &BoxStats,
    values: &[f64],
    color: &str,
) {
    svg.line(x, y.map(b.low), x, y.map(b.q1), "#444444", 1.0);
    svg.line(x, y.map(b.q3), x, y.map(b.high), "#444444", 1.0);
    svg.hline(x, box_w / 4.0, y.map(b.low), "#444444", 1.0);
    svg.hline(x, box_w / 4.0, y.map(b.high), "#444444", 1.0);
    let top = y.map(b.q3);
    svg.rect(
        x - box_w / 2.0,
        top,
        box_w,
        y.map(b.q1) - top,
        "#f2f2f2",
        "#444444",
    );
    svg.hline(x, box_w / 2.0, y.map(b.median), "#222222", 2.0);
    if values.len() <= MAX_DOTS {
        for (k, v) in values.iter().enumerate() {
            // Deterministic spread across the box, so that equal values stay visible.
            let jitter = ((k * 37) % 17) as f64 / 16.0 - 0.5;
            svg.circle(x + jitter * box_w * 0.7, y.map(*v), 2.2, color, "none", 0.6);
        }
    } else {
        for v in values.iter().filter(|v| **v < b.low || **v > b.high) {
            svg.circle(x, y.map(*v), 2.2, "none", color, 1.0);
        }
    }
}

/// `s` with its first letter in upper case.
fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Which telemetry value a chart shows.
#[derive(Debug, Clone, Copy)]
enum Gauge {
    Util,
    Power,
}

impl Gauge {
    fn values(self, s: &TelemetrySeries) -> &[f64] {
        match self {
            Gauge::Util => &s.util_pct,
            Gauge::Power => &s.power_w,
        }
    }
}

/// Consecutive finite points of a series.
type Segment = Vec<(f64, f64)>;

/// Runs of consecutive finite points of a series: a NaN in either coordinate ends a run.
fn segments(t: &[f64], v: &[f64]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut cur: Segment = Vec::new();
    for (&t, &v) in t.iter().zip(v) {
        if t.is_finite() && v.is_finite() {
            cur.push((t, v));
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Pixel points of a run, thinned to the lowest and highest point per pixel column (in the
/// order they occur), so that long series stay small without losing their envelope.
fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let col = points[i].0.floor();
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < points.len() && points[j].0.floor() == col {
            // Pixel y grows downwards: the lowest value has the largest y.
            if points[j].1 > points[lo].1 {
                lo = j;
            }
            if points[j].1 < points[hi].1 {
                hi = j;
            }
            j += 1;
        }
        if j - i <= 2 {
            out.extend_from_slice(&points[i..j]);
        } else {
            let (a, b) = (lo.min(hi), lo.max(hi));
            out.push(points[a]);
            if b != a {
                out.push(points[b]);
            }
        }
        i = j;
    }
    out
}

/// (c) GPU utilisation or power over time, one line per GPU; gaps where not sampled.
fn telemetry(r: &ReportAnalysis, stem: &str, gauge: Gauge) -> Option<Figure> {
    let series: Vec<(u32, Vec<Segment>)> = r
        .telemetry
        .iter()
        .map(|s| (s.gpu, segments(&s.t_s, gauge.values(s))))
        .filter(|(_, segs)| !segs.is_empty())
        .collect();
    let points = || series.iter().flat_map(|(_, s)| s.iter().flatten());
    let (t0, t1) = extent(points().map(|p| p.0))?;
    let (v0, v1) = extent(points().map(|p| p.1))?;
    let (lo, hi, what, axis, slug) = match gauge {
        Gauge::Util => (
            v0.min(0.0),
            v1.max(100.0),
            "GPU utilisation",
            "utilisation (%)",
            "gpu-util",
        ),
        Gauge::Power => (v0.min(0.0), v1, "GPU power", "power (W)", "gpu-power"),
    };
    let plot = Plot {
        left: 64.0,
        top: 56.0,
        width: 640.0,
        height: 240.0,
    };
    let width = plot.right() + 20.0;
    let height = plot.bottom() + 48.0;
    let title = format!("{}: {what} over time", r.report);
    let mut svg = Svg::new(width, height, &title, "gaps: not sampled");
    let yt = nice_ticks(lo, hi, 6);
    let xt = nice_ticks(t0, t1, 8);
    plot.y_axis(&mut svg, &yt, axis);
    plot.x_axis(&mut svg, &xt, "time since the report's first sample (s)");
    let (x, y) = (plot.x_scale(&xt), plot.y_scale(&yt));
    for (i, (gpu, segs)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let lx = plot.left + 8.0 + i as f64 * 70.0;
        svg.line(lx, 46.0, lx + 14.0, 46.0, color, 2.0);
        svg.text(
            lx + 18.0,
            50.0,
            &format!("GPU {gpu}"),
            "start",
            10.0,
            "normal",
            None,
        );
        for seg in segs {
            let px: Vec<(f64, f64)> = seg.iter().map(|(t, v)| (x.map(*t), y.map(*v))).collect();
            let px = thin(&px);
            if px.len() == 1 {
                svg.circle(px[0].0, px[0].1, 1.5, color, "none", 1.0);
            } else {
                svg.polyline(&px, color, 1.4);
            }
        }
    }
    let n: usize = series
        .iter()
        .map(|(_, s)| s.iter().map(Vec::len).sum::<usize>())
        .sum();
    let caption = format!(
        "{what} over time, {} GPU(s), {n} samples over {} s; gaps where a sample was missing.",
        series.len(),
        fixed(t1 - t0, 1)
    );
    Some(Figure {
        file: format!("{stem}-{slug}.svg"),
        title,
        caption,
        svg: svg.finish(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::analysis::model::{ConfigRow, Counts, Method, Origin};

    fn stat(mean: f64, ci: Option<(f64, f64)>) -> Stat {
        Stat {
            n: 3,
            mean,
            sd: 0.0,
            ci95: ci,
        }
    }

    fn config(id: &str, p: Option<Stat>, t: Option<Stat>) -> ConfigRow {
        ConfigRow {
            config: id.to_owned(),
            scenario: "s".to_owned(),
            block: None,
            model: "m".to_owned(),
            runtime: None,
            language: None,
            options: String::new(),
            runs: 1,
            failed: 0,
            published_efficiency: p,
            true_efficiency: t,
            equal_work_efficiency: None,
            throughput_efficiency: None,
            published_speedup: None,
            contention_runs: None,
            throughput: BTreeMap::new(),
            ttft: BTreeMap::new(),
            tokens_per_j: None,
        }
    }

    fn report() -> ReportAnalysis {
        ReportAnalysis {
            report: "TR<&>".to_owned(),
            title: "t".to_owned(),
            description: None,
            published_environment: BTreeMap::new(),
            provenance: Vec::new(),
            origin: Origin::Emulator,
            method: Method {
                harnesses: Vec::new(),
                scenarios: Vec::new(),
                models: Vec::new(),
                configurations: 0,
                repetitions: 0,
                planned_runs: 0,
                planned_isolated: 0,
                warmup: String::new(),
                order: String::new(),
                missing: Vec::new(),
                cells: None,
            },
            counts: Counts::default(),
            multi_agent: true,
            configs: Vec::new(),
            summaries: Vec::new(),
            verdicts: Vec::new(),
            comparisons: Vec::new(),
            efficiency: Vec::new(),
            distributions: Vec::new(),
            telemetry: Vec::new(),
            findings: Vec::new(),
            suspect: Vec::new(),
            suspect_included: false,
            server_metrics: Vec::new(),
            suspect_warning: None,
        }
    }

    fn assert_clean(f: &Figure) {
        for bad in ["NaN", "inf", "<&>"] {
            assert!(!f.svg.contains(bad), "{bad} in {}:\n{}", f.file, f.svg);
        }
        assert!(f.svg.contains("viewBox="));
        assert!(f.svg.ends_with("</svg>\n"));
    }

    #[test]
    fn no_data_no_chart() {
        let mut r = report();
        assert!(figures(&r).is_empty());
        r.configs.push(config("c", None, None));
        r.distributions.push(Distribution {
            group: "g".to_owned(),
            metric: "ttft_ms".to_owned(),
            values: vec![f64::NAN],
            quantiles_of: None,
        });
        r.telemetry.push(TelemetrySeries {
            gpu: 0,
            t_s: vec![0.0, 1.0],
            util_pct: vec![f64::NAN, f64::NAN],
            power_w: vec![],
        });
        assert!(figures(&r).is_empty());
    }

    #[test]
    fn degenerate_data_draws_without_nan() {
        let mut r = report();
        r.configs = vec![
            config("one", Some(stat(98.0, None)), None),
            config("nan", Some(stat(f64::NAN, Some((f64::NAN, 1.0)))), None),
            config(
                "same",
                Some(stat(98.0, Some((98.0, 98.0)))),
                Some(stat(50.0, None)),
            ),
        ];
        r.distributions = vec![
            Distribution {
                group: "one".to_owned(),
                metric: "throughput_tok_s".to_owned(),
                values: vec![42.0],
                quantiles_of: None,
            },
            Distribution {
                group: "empty".to_owned(),
                metric: "throughput_tok_s".to_owned(),
                values: vec![],
                quantiles_of: None,
            },
            Distribution {
                group: "equal".to_owned(),
                metric: "throughput_tok_s".to_owned(),
                values: vec![42.0; 5],
                quantiles_of: None,
            },
            Distribution {
                group: "nan".to_owned(),
                metric: "throughput_tok_s".to_owned(),
                values: vec![f64::NAN, f64::INFINITY, 41.0],
                quantiles_of: None,
            },
            Distribution {
                group: "many".to_owned(),
                metric: "ttft_ms".to_owned(),
                values: (0..200).map(|i| if i == 7 { 1e4 } else { 500.0 }).collect(),
                quantiles_of: None,
            },
        ];
        r.telemetry = vec![TelemetrySeries {
            gpu: 0,
            t_s: vec![0.0, 0.5, 1.0, f64::NAN, 2.0, 3.0, 4.0],
            util_pct: vec![10.0, f64::NAN, 30.0, 40.0, 50.0, 50.0],
            power_w: vec![100.0; 7],
        }];
        let figs = figures(&r);
        let names: Vec<&str> = figs.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(
            names,
            [
                "tr___-efficiency.svg",
                "tr___-throughput.svg",
                "tr___-ttft.svg",
                "tr___-gpu-util.svg",
                "tr___-gpu-power.svg",
            ]
        );
        for f in &figs {
            assert_clean(f);
        }
        // The lone point between two gaps is drawn as a dot.
        assert!(figs[3].svg.contains("<circle"));
        // Deterministic.
        let again = figures(&r);
        for (a, b) in figs.iter().zip(&again) {
            assert_eq!(a.svg, b.svg);
        }
    }

    /// A group too large to keep every value is summarised by its quantiles: exact extremes,
    /// quartiles and median, and the chart counts the group, not the quantiles.
    #[test]
    fn large_groups_keep_their_quantiles() {
        let xs: Vec<f64> = (0..5000).map(|i| f64::from((i * 7919) % 5000)).collect();
        let d = Distribution::new("g".into(), "ttft_ms".into(), xs.clone());
        assert_eq!(d.quantiles_of, Some(5000));
        assert_eq!(d.n(), 5000);
        assert_eq!(d.values.len(), Distribution::QUANTILES + 1);
        assert_eq!(d.values[0], 0.0);
        assert_eq!(d.values[Distribution::QUANTILES], 4999.0);
        for (i, q) in [(250, 25.0), (500, 50.0), (750, 75.0)] {
            assert_eq!(Some(d.values[i]), stats::percentile(&xs, q));
        }
        let small = Distribution::new("g".into(), "ttft_ms".into(), vec![3.0, 1.0]);
        assert_eq!((small.values, small.quantiles_of), (vec![3.0, 1.0], None));
        let mut r = report();
        r.distributions.push(d);
        let f = figures(&r);
        assert_eq!(f.len(), 1);
        assert_clean(&f[0]);
        assert!(f[0].svg.contains("n = 5000"), "{}", f[0].svg);
        assert!(f[0].caption.contains("1000-quantiles"), "{}", f[0].caption);
    }

    #[test]
    fn thinning_keeps_the_envelope() {
        let pts: Vec<(f64, f64)> = (0..1000)
            .map(|i| (i as f64 / 100.0, if i == 500 { 0.0 } else { 50.0 }))
            .collect();
        let t = thin(&pts);
        assert!(t.len() <= 20, "{}", t.len());
        assert!(t.iter().any(|p| p.1 == 0.0));
        assert!(t.iter().any(|p| p.1 == 50.0));
    }
}
