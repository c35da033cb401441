//! (c) GPU utilisation or power over time, one line per GPU; gaps where not sampled. Every
//! point drawn carries its time and value on hover.

use crate::analysis::model::{ReportAnalysis, TelemetrySeries};

use super::super::format::{fixed, trimmed};
use super::super::svg::{Plot, Svg, nice_ticks};
use super::{Figure, PALETTE, extent};

/// Which telemetry value a chart shows.
#[derive(Debug, Clone, Copy)]
pub(super) enum Gauge {
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

/// The indexes of the pixel points of a run that are kept: the lowest and highest point per
/// pixel column (in the order they occur), so that long series stay small without losing
/// their envelope.
pub(super) fn thin(points: &[(f64, f64)]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
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
            out.extend(i..j);
        } else {
            let (a, b) = (lo.min(hi), lo.max(hi));
            out.push(a);
            if b != a {
                out.push(b);
            }
        }
        i = j;
    }
    out
}

/// (c) GPU utilisation or power over time, one line per GPU; gaps where not sampled.
pub(super) fn telemetry(r: &ReportAnalysis, stem: &str, gauge: Gauge) -> Option<Figure> {
    let series: Vec<(u32, Vec<Segment>)> = r
        .telemetry
        .iter()
        .map(|s| (s.gpu, segments(&s.t_s, gauge.values(s))))
        .filter(|(_, segs)| !segs.is_empty())
        .collect();
    let points = || series.iter().flat_map(|(_, s)| s.iter().flatten());
    let (t0, t1) = extent(points().map(|p| p.0))?;
    let (v0, v1) = extent(points().map(|p| p.1))?;
    let (lo, hi, what, axis, slug, unit) = match gauge {
        Gauge::Util => (
            v0.min(0.0),
            v1.max(100.0),
            "GPU utilisation",
            "utilisation (%)",
            "gpu-util",
            "%",
        ),
        Gauge::Power => (v0.min(0.0), v1, "GPU power", "power (W)", "gpu-power", "W"),
    };
    let plot = Plot {
        left: 64.0,
        top: 56.0,
        width: 640.0,
        height: 240.0,
    };
    let title = format!("{}: {what} over time", r.report);
    let mut svg = Svg::new(&title, "gaps: not sampled; hover a point for its value");
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
            let kept = thin(&px);
            let line: Vec<(f64, f64)> = kept.iter().map(|&k| px[k]).collect();
            svg.polyline(&line, color, 1.4);
            for &k in &kept {
                let (t, v) = seg[k];
                let tip = format!("GPU {gpu} · {} s: {} {unit}", fixed(t, 1), trimmed(v, 1));
                // A lone point between two gaps shows; on a line the point is only a target.
                let opacity = if kept.len() == 1 { 1.0 } else { 0.0 };
                svg.circle_tip(px[k].0, px[k].1, 2.0, color, "none", opacity, Some(&tip));
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
