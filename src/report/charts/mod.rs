//! The report's charts: efficiency per configuration, request-level distributions per
//! scenario (box plots), latency against throughput of serving loads, and GPU utilisation and power over time. Each is skipped when it
//! has nothing to plot; values that are not finite are left out, never drawn; every plotted
//! point carries its raw value as hover text (an SVG `<title>`), and every canvas is sized
//! to what is drawn on it.

mod distribution;
mod efficiency;
mod serving;
mod telemetry;

use crate::analysis::model::{Distribution, ReportAnalysis};

use super::format::file_stem;
use super::svg::{Plot, Svg};
use telemetry::Gauge;

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
    out.extend(efficiency::efficiency(r, &stem));
    let mut metrics: Vec<&str> = Vec::new();
    for d in &r.distributions {
        if !metrics.contains(&d.metric.as_str()) {
            metrics.push(&d.metric);
        }
    }
    for m in metrics {
        let groups: Vec<&Distribution> = r.distributions.iter().filter(|d| d.metric == m).collect();
        out.extend(distribution::distribution(r, &stem, m, &groups));
    }
    out.extend(serving::serving(r, &stem));
    out.extend(telemetry::telemetry(r, &stem, Gauge::Util));
    out.extend(telemetry::telemetry(r, &stem, Gauge::Power));
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
    super::svg::text_px(s, 10.0, false)
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

/// `s` with its first letter in upper case.
fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::analysis::model::{ConfigRow, Counts, Method, Origin};
    use crate::analysis::model::{Stat, TelemetrySeries};
    use crate::stats;
    use telemetry::thin;

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
            serving: None,
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
            stage: None,
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
                stage: None,
            },
            Distribution {
                group: "empty".to_owned(),
                metric: "throughput_tok_s".to_owned(),
                values: vec![],
                quantiles_of: None,
                stage: None,
            },
            Distribution {
                group: "equal".to_owned(),
                metric: "throughput_tok_s".to_owned(),
                values: vec![42.0; 5],
                quantiles_of: None,
                stage: None,
            },
            Distribution {
                group: "nan".to_owned(),
                metric: "throughput_tok_s".to_owned(),
                values: vec![f64::NAN, f64::INFINITY, 41.0],
                quantiles_of: None,
                stage: None,
            },
            Distribution {
                group: "many".to_owned(),
                metric: "ttft_ms".to_owned(),
                values: (0..200).map(|i| if i == 7 { 1e4 } else { 500.0 }).collect(),
                quantiles_of: None,
                stage: None,
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
        assert!(t.iter().any(|&k| pts[k].1 == 0.0));
        assert!(t.iter().any(|&k| pts[k].1 == 50.0));
        assert!(t.windows(2).all(|w| w[0] < w[1]), "in order: {t:?}");
    }
}
