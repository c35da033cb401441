//! Hand-written SVG: a small document builder, "nice" axis ticks, linear scales and axes.
//!
//! The output is deterministic (coordinates with a fixed number of decimals, no ids, no
//! timestamps) and valid XML (text escaped, characters XML 1.0 forbids dropped). No NaN or
//! infinity ever reaches the document: a coordinate that is not finite is written as 0, and
//! callers skip marks whose values are not finite.

use std::fmt::Write as _;

/// Font used for all text.
const FONT: &str = "DejaVu Sans, Arial, Helvetica, sans-serif";

/// Text escaped for XML character data and attribute values; characters XML 1.0 does not
/// allow (control characters other than tab, LF and CR) are dropped.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A coordinate: 1 decimal, trailing ".0" dropped, never NaN, infinite or "-0".
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return "0".to_owned();
    }
    let x = x.clamp(-1e9, 1e9);
    let s = format!("{x:.1}");
    let s = s.strip_suffix(".0").unwrap_or(&s).to_owned();
    if s == "-0" { "0".to_owned() } else { s }
}

/// Axis ticks: evenly spaced "nice" values (1, 2 or 5 × a power of ten apart) that cover the
/// data range; the axis runs from the first to the last.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ticks {
    /// Tick values, ascending, at least two.
    pub values: Vec<f64>,
    /// Distance between ticks.
    pub step: f64,
}

impl Ticks {
    /// Lowest tick (the axis start).
    pub fn lo(&self) -> f64 {
        self.values.first().copied().unwrap_or(0.0)
    }

    /// Highest tick (the axis end).
    pub fn hi(&self) -> f64 {
        self.values.last().copied().unwrap_or(1.0)
    }

    /// A tick value as text, with as many decimals as the step needs.
    pub fn label(&self, v: f64) -> String {
        let dec = if self.step >= 1.0 || !self.step.is_finite() || self.step <= 0.0 {
            0
        } else {
            ((-self.step.log10()) - 1e-9).ceil().clamp(0.0, 12.0) as usize
        };
        super::format::fixed(v, dec)
    }
}

/// A nice number close to `x` (> 0): 1, 2, 5 or 10 × a power of ten; rounded to the nearest
/// when `round`, else the smallest nice number ≥ `x`.
fn nice_num(x: f64, round: bool) -> f64 {
    let exp = x.log10().floor();
    let p = 10f64.powf(exp);
    let f = x / p;
    let nf = if round {
        if f < 1.5 {
            1.0
        } else if f < 3.0 {
            2.0
        } else if f < 7.0 {
            5.0
        } else {
            10.0
        }
    } else if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nf * p
}

/// Nice ticks covering `[lo, hi]` with about `target` intervals (Heckbert's algorithm).
///
/// Degenerate input never fails: non-finite bounds give 0–1, swapped bounds are put in order,
/// and a single value (or values equal to 12 significant digits) is padded by 10 % of its size
/// (by 1 around 0).
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize) -> Ticks {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() {
        (lo.min(hi), lo.max(hi))
    } else if lo.is_finite() {
        (lo, lo)
    } else if hi.is_finite() {
        (hi, hi)
    } else {
        (0.0, 1.0)
    };
    lo = lo.clamp(-1e300, 1e300);
    hi = hi.clamp(-1e300, 1e300);
    let size = lo.abs().max(hi.abs());
    if size < 1e-300 {
        lo = 0.0;
        hi = 0.0;
    }
    if hi - lo <= size * 1e-12 {
        let pad = if size < 1e-300 { 1.0 } else { size * 0.1 };
        let non_negative = lo >= 0.0;
        lo -= pad;
        hi += pad;
        // A value of 0 (or near it) that cannot be negative keeps its axis at 0 and above.
        if non_negative && lo < 0.0 {
            lo = 0.0;
        }
    }
    let target = target.max(2);
    let range = nice_num(hi - lo, false);
    let mut step = nice_num(range / (target - 1) as f64, true);
    if !step.is_finite() || step <= 0.0 {
        step = (hi - lo).abs().max(1.0);
    }
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let n = (((end - start) / step).round() as usize).clamp(1, 200);
    let values = (0..=n)
        .map(|k| {
            let v = start + k as f64 * step;
            if v.abs() < step * 1e-9 { 0.0 } else { v }
        })
        .collect();
    Ticks { values, step }
}

/// A linear map from a data interval to a pixel interval.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    /// Maps `[d0, d1]` onto `[r0, r1]`.
    pub fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Self {
        Scale { d0, d1, r0, r1 }
    }

    /// Pixel position of `v` (the middle of the range when the domain is empty).
    pub fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if !span.is_finite() || span == 0.0 || !v.is_finite() {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }
}

/// Space kept around a document's content, in pixels.
const PAD: f64 = 8.0;

/// Advance width of `c` in DejaVu Sans, in em, rounded up (the charts' first font; the
/// others in [`FONT`] are narrower).
fn advance(c: char) -> f64 {
    match c {
        ' ' | '·' => 0.32,
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '|' | '!' | '\'' | 'I' => 0.3,
        'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '/' | '-' | '−' => 0.41,
        'm' | 'M' | 'W' | '%' => 1.0,
        'w' => 0.82,
        '×' | '=' | '+' | '<' | '>' | '≥' | '≤' | '±' | '~' | '—' => 0.84,
        '…' => 1.0,
        'a'..='z' | '0'..='9' | '_' | '"' | '*' | '?' | '$' | '#' | '^' => 0.64,
        'A'..='Z' => 0.78,
        c if c.is_ascii() => 0.64,
        _ => 0.84,
    }
}

/// Approximate width of `s` in pixels at font size `size` (`bold`: a wider face), from
/// DejaVu Sans's advance widths rounded up: a document sized from it never cuts a label.
pub(crate) fn text_px(s: &str, size: f64, bold: bool) -> f64 {
    let em: f64 = s.chars().map(advance).sum();
    em * size * if bold { 1.1 } else { 1.0 }
}

/// The box that content drawn so far covers (empty until something is drawn).
#[derive(Debug, Clone, Copy)]
struct Extent {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Extent {
    const EMPTY: Extent = Extent {
        x0: f64::INFINITY,
        y0: f64::INFINITY,
        x1: f64::NEG_INFINITY,
        y1: f64::NEG_INFINITY,
    };

    fn include(&mut self, x: f64, y: f64) {
        if x.is_finite() && y.is_finite() {
            self.x0 = self.x0.min(x);
            self.y0 = self.y0.min(y);
            self.x1 = self.x1.max(x);
            self.y1 = self.y1.max(y);
        }
    }

    fn is_empty(&self) -> bool {
        self.x0 > self.x1
    }
}

/// An SVG document being built. Its canvas is sized to what is drawn on it: the document
/// ends [`PAD`] pixels beyond the content's furthest mark or label on every side (and is at
/// least as wide as its title), whatever sizes the caller planned with.
pub(crate) struct Svg {
    title: String,
    subtitle: String,
    body: String,
    extent: Extent,
}

impl Svg {
    /// A document with a white background, a `<title>` and the visible `title` (and
    /// `subtitle`, when not empty) centred at the top; content starts below y = 44.
    pub fn new(title: &str, subtitle: &str) -> Self {
        Svg {
            title: title.to_owned(),
            subtitle: subtitle.to_owned(),
            body: String::new(),
            extent: Extent::EMPTY,
        }
    }

    /// A line.
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, width: f64) {
        self.extent.include(x1, y1);
        self.extent.include(x2, y2);
        let [x1, y1, x2, y2, width] = [x1, y1, x2, y2, width].map(num);
        let stroke = esc(stroke);
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{stroke}" stroke-width="{width}"/>"#
        );
    }

    /// A horizontal line at `y` from `x - half` to `x + half`.
    pub fn hline(&mut self, x: f64, half: f64, y: f64, stroke: &str, width: f64) {
        self.line(x - half, y, x + half, y, stroke, width);
    }

    /// A rectangle; `x`, `y` is the top-left corner (negative sizes are normalised).
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, stroke: &str) {
        self.rect_tip(x, y, w, h, fill, stroke, None);
    }

    /// A rectangle that shows `tip` (its values) when the pointer rests on it.
    #[allow(clippy::too_many_arguments)]
    pub fn rect_tip(
        &mut self,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: &str,
        stroke: &str,
        tip: Option<&str>,
    ) {
        let (x, w) = if w < 0.0 { (x + w, -w) } else { (x, w) };
        let (y, h) = if h < 0.0 { (y + h, -h) } else { (y, h) };
        self.extent.include(x, y);
        self.extent.include(x + w, y + h);
        let [x, y, w, h] = [x, y, w, h].map(num);
        let (fill, stroke) = (esc(fill), esc(stroke));
        let open = format!(
            r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}" stroke="{stroke}""#
        );
        self.close(open, "rect", tip);
    }

    /// A circle that shows `tip` (its value) when the pointer rests on it.
    #[allow(clippy::too_many_arguments)]
    pub fn circle_tip(
        &mut self,
        cx: f64,
        cy: f64,
        r: f64,
        fill: &str,
        stroke: &str,
        opacity: f64,
        tip: Option<&str>,
    ) {
        self.extent.include(cx - r, cy - r);
        self.extent.include(cx + r, cy + r);
        let op = if opacity < 1.0 {
            format!(r#" fill-opacity="{}""#, super::format::trimmed(opacity, 2))
        } else {
            String::new()
        };
        let open = format!(
            r#"<circle cx="{}" cy="{}" r="{}" fill="{}" stroke="{}"{op}"#,
            num(cx),
            num(cy),
            num(r),
            esc(fill),
            esc(stroke)
        );
        self.close(open, "circle", tip);
    }

    /// A closed, filled polygon (a marker such as a diamond or an arrowhead), with an
    /// optional `tip`.
    pub fn polygon(&mut self, points: &[(f64, f64)], fill: &str, tip: Option<&str>) {
        if points.len() < 3 {
            return;
        }
        let mut d = String::new();
        for (i, (x, y)) in points.iter().enumerate() {
            self.extent.include(*x, *y);
            if i > 0 {
                d.push(' ');
            }
            let _ = write!(d, "{},{}", num(*x), num(*y));
        }
        let open = format!(r#"<polygon points="{d}" fill="{}""#, esc(fill));
        self.close(open, "polygon", tip);
    }

    /// Ends an element opened as `open` (`<name attr…` without its end): self-closed, or
    /// with a `<title>` child holding `tip`, the text a browser shows on hover. Marks with a
    /// tip carry `class="pt"`, so that a page can find every point that explains itself.
    fn close(&mut self, open: String, name: &str, tip: Option<&str>) {
        match tip {
            Some(t) => {
                let _ = writeln!(
                    self.body,
                    r#"{open} class="pt"><title>{}</title></{name}>"#,
                    esc(t)
                );
            }
            None => {
                let _ = writeln!(self.body, "{open}/>");
            }
        }
    }

    /// An open path from `M`/`L` commands over points (no-op for fewer than two points).
    pub fn polyline(&mut self, points: &[(f64, f64)], stroke: &str, width: f64) {
        if points.len() < 2 {
            return;
        }
        let mut d = String::new();
        for (i, (x, y)) in points.iter().enumerate() {
            self.extent.include(*x, *y);
            let _ = write!(
                d,
                "{}{} {}",
                if i == 0 { "M" } else { " L" },
                num(*x),
                num(*y)
            );
        }
        let _ = writeln!(
            self.body,
            r#"<path d="{d}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round"/>"#,
            esc(stroke),
            num(width)
        );
    }

    /// Text at `x`, `y` (`anchor`: start, middle, end; `weight`: normal, bold), optionally
    /// rotated by `rotate` degrees around its anchor.
    #[allow(clippy::too_many_arguments)]
    pub fn text(
        &mut self,
        x: f64,
        y: f64,
        s: &str,
        anchor: &str,
        size: f64,
        weight: &str,
        rotate: Option<f64>,
    ) {
        self.include_text(x, y, s, anchor, size, weight == "bold", rotate);
        let rot = rotate.map_or(String::new(), |a| {
            format!(r#" transform="rotate({} {} {})""#, num(a), num(x), num(y))
        });
        let bold = if weight == "bold" {
            r#" font-weight="bold""#
        } else {
            ""
        };
        let _ = writeln!(
            self.body,
            r#"<text x="{}" y="{}" text-anchor="{}" font-size="{}"{bold}{rot}>{}</text>"#,
            num(x),
            num(y),
            esc(anchor),
            num(size),
            esc(s)
        );
    }

    /// Adds the box a text is drawn in (estimated from its length) to the content's extent.
    #[allow(clippy::too_many_arguments)]
    fn include_text(
        &mut self,
        x: f64,
        y: f64,
        s: &str,
        anchor: &str,
        size: f64,
        bold: bool,
        rotate: Option<f64>,
    ) {
        let w = text_px(s, size, bold);
        let (a, b) = match anchor {
            "middle" => (-w / 2.0, w / 2.0),
            "end" => (-w, 0.0),
            _ => (0.0, w),
        };
        let (sin, cos) = rotate.unwrap_or(0.0).to_radians().sin_cos();
        for (dx, dy) in [
            (a, -0.8 * size),
            (b, -0.8 * size),
            (a, 0.25 * size),
            (b, 0.25 * size),
        ] {
            self.extent
                .include(x + dx * cos - dy * sin, y + dx * sin + dy * cos);
        }
    }

    /// The finished document, its canvas fitted to the content (see [`Svg`]).
    pub fn finish(self) -> String {
        let e = if self.extent.is_empty() {
            Extent {
                x0: 0.0,
                y0: 0.0,
                x1: 0.0,
                y1: 0.0,
            }
        } else {
            self.extent
        };
        let heading = text_px(&self.title, 14.0, true).max(text_px(&self.subtitle, 10.0, false));
        let x0 = (e.x0 - PAD).floor();
        let content = (e.x1 + PAD).ceil() - x0;
        let width = content.max((heading + 2.0 * PAD).ceil());
        // A title wider than the content keeps the content in the middle.
        let x0 = x0 - ((width - content) / 2.0).floor();
        let top = (e.y0 - PAD).floor().min(0.0);
        let height = (e.y1 + PAD).ceil().max(44.0) - top;
        let mut head = String::new();
        let _ = writeln!(head, "<title>{}</title>", esc(&self.title));
        let _ = writeln!(
            head,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#ffffff"/>"##,
            num(x0),
            num(top),
            num(width),
            num(height)
        );
        let mid = num(x0 + width / 2.0);
        let _ = writeln!(
            head,
            r#"<text x="{mid}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
            esc(&self.title)
        );
        if !self.subtitle.is_empty() {
            let _ = writeln!(
                head,
                r#"<text x="{mid}" y="36" text-anchor="middle" font-size="10">{}</text>"#,
                esc(&self.subtitle)
            );
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"{x} {y} {w} {h}\" width=\"{w}\" height=\"{h}\" font-family=\"{font}\" fill=\"#222222\">\n{head}{body}</svg>\n",
            x = num(x0),
            y = num(top),
            w = num(width),
            h = num(height),
            font = esc(FONT),
            body = self.body
        )
    }
}

/// The plotting area of a chart, in pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plot {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

impl Plot {
    /// Right edge.
    pub fn right(&self) -> f64 {
        self.left + self.width
    }

    /// Bottom edge.
    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// The y scale of `ticks` over this area (data grows upwards).
    pub fn y_scale(&self, ticks: &Ticks) -> Scale {
        Scale::new(ticks.lo(), ticks.hi(), self.bottom(), self.top)
    }

    /// The x scale of `ticks` over this area.
    pub fn x_scale(&self, ticks: &Ticks) -> Scale {
        Scale::new(ticks.lo(), ticks.hi(), self.left, self.right())
    }

    /// The y axis: grid lines and labels at the ticks, the axis title rotated on the left.
    pub fn y_axis(&self, svg: &mut Svg, ticks: &Ticks, label: &str) {
        let y = self.y_scale(ticks);
        for &v in &ticks.values {
            let py = y.map(v);
            svg.line(self.left, py, self.right(), py, "#e3e3e3", 1.0);
            svg.line(self.left - 4.0, py, self.left, py, "#444444", 1.0);
            svg.text(
                self.left - 7.0,
                py + 4.0,
                &ticks.label(v),
                "end",
                10.0,
                "normal",
                None,
            );
        }
        svg.line(
            self.left,
            self.top,
            self.left,
            self.bottom(),
            "#444444",
            1.0,
        );
        let cx = (self.left - 48.0).max(16.0);
        let cy = self.top + self.height / 2.0;
        svg.text(cx, cy, label, "middle", 11.0, "normal", Some(-90.0));
    }

    /// A numeric x axis: ticks, labels and the axis title below.
    pub fn x_axis(&self, svg: &mut Svg, ticks: &Ticks, label: &str) {
        let x = self.x_scale(ticks);
        for &v in &ticks.values {
            let px = x.map(v);
            svg.line(px, self.bottom(), px, self.bottom() + 4.0, "#444444", 1.0);
            svg.text(
                px,
                self.bottom() + 16.0,
                &ticks.label(v),
                "middle",
                10.0,
                "normal",
                None,
            );
        }
        self.baseline(svg);
        svg.text(
            self.left + self.width / 2.0,
            self.bottom() + 34.0,
            label,
            "middle",
            11.0,
            "normal",
            None,
        );
    }

    /// The x axis line alone.
    pub fn baseline(&self, svg: &mut Svg) {
        svg.line(
            self.left,
            self.bottom(),
            self.right(),
            self.bottom(),
            "#444444",
            1.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_nice(step: f64) -> bool {
        let p = 10f64.powf(step.log10().floor());
        let f = (step / p * 1e6).round() / 1e6;
        [1.0, 2.0, 5.0, 10.0].contains(&f)
    }

    #[test]
    fn nice_ticks_cover_the_range_with_nice_steps() {
        for (lo, hi) in [
            (0.0, 100.0),
            (91.6, 99.4),
            (0.0013, 0.0047),
            (-3.2, 7.9),
            (1234.5, 98765.4),
            (61.7, 99.992),
        ] {
            let t = nice_ticks(lo, hi, 6);
            assert!(t.lo() <= lo && t.hi() >= hi, "{lo}..{hi}: {t:?}");
            assert!(is_nice(t.step), "{lo}..{hi}: step {}", t.step);
            assert!(t.values.len() >= 2 && t.values.len() <= 13, "{t:?}");
            for w in t.values.windows(2) {
                assert!((w[1] - w[0] - t.step).abs() < t.step * 1e-6);
            }
        }
        assert_eq!(
            nice_ticks(0.0, 100.0, 6).values,
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        let t = nice_ticks(91.6, 99.4, 6);
        assert_eq!(t.values, vec![90.0, 92.0, 94.0, 96.0, 98.0, 100.0]);
        assert_eq!(t.label(92.0), "92");
        let t = nice_ticks(0.0013, 0.0047, 5);
        assert_eq!(t.label(t.values[1]), "0.002");
    }

    #[test]
    fn nice_ticks_survive_degenerate_ranges() {
        for (lo, hi) in [
            (5.0, 5.0),
            (0.0, 0.0),
            (-2.0, -2.0),
            (f64::NAN, f64::NAN),
            (f64::NAN, 3.0),
            (f64::NEG_INFINITY, f64::INFINITY),
            (7.0, 3.0),
            (-f64::MAX, f64::MAX),
            (1e-320, 2e-320),
            (1e15, 1e15 + 1.0),
        ] {
            let t = nice_ticks(lo, hi, 5);
            assert!(t.values.len() >= 2, "{lo}..{hi}: {t:?}");
            assert!(t.values.iter().all(|v| v.is_finite()), "{lo}..{hi}: {t:?}");
            assert!(t.step.is_finite() && t.step > 0.0, "{lo}..{hi}: {t:?}");
            assert!(t.hi() > t.lo(), "{lo}..{hi}: {t:?}");
            for v in &t.values {
                assert!(!t.label(*v).contains("NaN"));
            }
        }
        let t = nice_ticks(5.0, 5.0, 5);
        assert!(t.lo() <= 5.0 && t.hi() >= 5.0);
        let t = nice_ticks(7.0, 3.0, 5);
        assert!(t.lo() <= 3.0 && t.hi() >= 7.0);
    }

    #[test]
    fn the_canvas_is_sized_to_its_content() {
        fn view_box(out: &str) -> Vec<f64> {
            let v = out
                .split("viewBox=\"")
                .nth(1)
                .and_then(|r| r.split('"').next());
            v.expect("viewBox")
                .split(' ')
                .map(|x| x.parse().expect("number"))
                .collect()
        }
        // A mark far to the right and a rotated label reaching left of 0 are both inside.
        let mut svg = Svg::new("t", "");
        svg.rect(10.0, 50.0, 500.0, 100.0, "#fff", "#000");
        svg.text(
            20.0,
            160.0,
            "a long rotated label",
            "end",
            10.0,
            "normal",
            Some(-45.0),
        );
        let [x, y, w, h] = view_box(&svg.finish())[..] else {
            panic!("four numbers")
        };
        assert!(x < 20.0 - 120.0 * 0.7 && x > -120.0, "left edge {x}");
        assert_eq!((y, x + w), (0.0, 518.0));
        assert!((168.0..300.0).contains(&h), "{h}");
        // Nothing more than the padding beyond the content: no planned width is kept.
        let mut svg = Svg::new("t", "");
        svg.rect(100.0, 50.0, 50.0, 50.0, "#fff", "#000");
        assert_eq!(view_box(&svg.finish()), [92.0, 0.0, 66.0, 108.0]);
        // A title wider than the content widens the canvas around it, centred.
        let long = "a title much wider than the small square below it";
        let mut svg = Svg::new(long, "");
        svg.rect(100.0, 50.0, 50.0, 50.0, "#fff", "#000");
        let out = svg.finish();
        let [x, _, w, _] = view_box(&out)[..] else {
            panic!("four numbers")
        };
        assert!(w >= text_px(long, 14.0, true));
        assert!(((x + w / 2.0) - 125.0).abs() <= 1.0, "centred: {x} {w}");
    }

    #[test]
    fn escaping_makes_valid_xml_text() {
        assert_eq!(
            esc(r#"a<b & "c" 'd'>"#),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(esc("x\u{0}y\u{1b}z\nw"), "xyz w");
        assert_eq!(esc("98 % · µs"), "98 % · µs");
    }

    #[test]
    fn coordinates_are_never_nan() {
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(num(f64::INFINITY), "0");
        assert_eq!(num(-0.01), "0");
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.345), "12.3");
        let s = Scale::new(3.0, 3.0, 0.0, 100.0);
        assert_eq!(s.map(3.0), 50.0);
        assert_eq!(s.map(f64::NAN), 50.0);
        let mut svg = Svg::new("t <1>", "");
        svg.line(0.0, 44.0, 100.0, 50.0, "#000", 1.0);
        svg.line(f64::NAN, 0.0, f64::INFINITY, 1.0, "#000", 1.0);
        svg.circle_tip(f64::NAN, 1.0, 2.0, "#000", "none", 0.5, Some("x <y>"));
        svg.polyline(&[(0.0, f64::NAN), (1.0, 2.0)], "#000", 1.0);
        let out = svg.finish();
        assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");
        assert!(out.contains("<title>t &lt;1&gt;</title>"));
        assert!(out.contains(r#"viewBox="-8 -6 116 64""#), "{out}");
    }
}
