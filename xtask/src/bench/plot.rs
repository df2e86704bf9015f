// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Line charts of cost against CPU count, log axes, as SVG from `plotters` (text as `<text>`,
//! no font loaded), the legend below the plot, a row per series, so it never hides a line.

use plotters::coord::{ranged1d::DefaultFormatting, ranged1d::KeyPointHint, types::RangedCoordf64};
use plotters::{element::DashedPathElement, prelude::*, style::text_anchor::*};
use std::error::Error;

/// One line of the chart: its name and (CPUs, y) points, ascending; those not > 0 not drawn.
pub type Series = (String, Vec<(u32, f64)>);
/// A series as drawn, at (log2 x, log10 y).
type Line = (String, Vec<(f64, f64)>);

/// Okabe-Ito colours, safe for colour-blind readers; after six, lines are dashed.
const PALETTE: [u32; 6] = [0x0072B2, 0xD55E00, 0x009E73, 0xCC79A7, 0xE69F00, 0x56B4E9];
/// Height of the chart (800 wide) above the legend, which takes `ROW` per series.
const H: u32 = 460;
const ROW: u32 = 19;

/// A short label: up to 3 decimals, or tiny or huge numbers as `1e6`.
fn num(v: f64) -> String {
    let r = (v * 1e3).round() / 1e3;
    let e = v != 0.0 && !(1e-3..1e6).contains(&v.abs());
    if e { format!("{v:e}") } else { r.to_string() }
}

/// A linear axis (over log2 x or log10 y) with grid lines at its ticks; not plotters'
/// `with_key_points`, whose axes over `f64` have no default label format.
struct Axis(RangedCoordf64, Vec<f64>);

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        self.0.map(v, limit)
    }
    fn key_points<K: KeyPointHint>(&self, hint: K) -> Vec<f64> {
        let light = hint.weight().allow_light_points();
        if light { vec![] } else { self.1.clone() }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.0.range()
    }
}

/// `lo..hi` widened by 3 % of its span each side (by 1 if it has none), with ticks `t`.
fn axis((lo, hi): (f64, f64), t: Vec<f64>) -> Axis {
    let d = if hi > lo { (hi - lo) * 0.03 } else { 1.0 };
    Axis(RangedCoordf64::from(lo - d..hi + d), t)
}

/// The least and greatest of `v`, or 0 and 1 if it is empty.
fn bounds(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (l, h) = v.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if l <= h { (l, h) } else { (0.0, 1.0) }
}

/// The chart as SVG: x the CPU count, ticked at the data's x values; y in decades (1, 10, ...).
pub fn svg(title: &str, y_label: &str, series: impl IntoIterator<Item = Series>) -> String {
    // log2(x) and log10(y) on linear axes, without points a log axis cannot show, or empty lines.
    let ok = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let log = |&(x, y): &(u32, f64)| (f64::from(x).log2(), y.log10());
    let points = |s: Series| (s.0, s.1.iter().map(log).filter(ok).collect::<Vec<_>>());
    let lines = series.into_iter().map(points);
    let lines: Vec<_> = lines.filter(|l| !l.1.is_empty()).collect();
    let mut out = String::new();
    draw(&mut out, [title, y_label], &lines).expect("drawing to a String cannot fail");
    out
}

/// Draws the chart of `lines` (log2 x, log10 y) into `out`.
fn draw(out: &mut String, c: [&str; 2], lines: &[Line]) -> Result<(), Box<dyn Error>> {
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|l| l.1.iter().copied()).collect();
    let mut t: Vec<f64> = all.iter().map(|p| p.0).collect();
    t.sort_by(f64::total_cmp);
    t.dedup();
    let x = axis(bounds(t.iter().copied()), t);
    let (lo, hi) = bounds(all.iter().map(|p| p.1));
    let (a, b) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
    let y = axis((a, b), (a as i32..=b as i32).map(f64::from).collect());
    let size = (800, H + ROW * lines.len() as u32 + 8);
    let root = SVGBackend::with_string(out, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, legend) = root.split_vertically(H);
    let mut ch = ChartBuilder::on(&top)
        .caption(c[0], ("sans-serif", 18, FontStyle::Bold))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)?;
    ch.configure_mesh()
        .x_desc("CPUs")
        .y_desc(c[1])
        .x_label_formatter(&|v| num(2f64.powf(*v)))
        .y_label_formatter(&|v| num(10f64.powf(*v)))
        .label_style(("sans-serif", 15))
        .draw()?;
    let x0 = ch.plotting_area().get_pixel_range().0.start;
    let font = TextStyle::from(("sans-serif", 15).into_font());
    let left = font.pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (name, p)) in lines.iter().enumerate() {
        // A solid line is one dash longer than the line.
        let (dash, gap) = if i < 6 { (9999, 0) } else { (6, 3) };
        let [_, r, g, b] = PALETTE[i % 6].to_be_bytes();
        let rgb = RGBColor(r, g, b);
        let (col, st) = (rgb.filled(), rgb.stroke_width(2));
        ch.draw_series(DashedLineSeries::new(p.clone(), dash, gap, st))?;
        ch.draw_series(p.iter().map(|&p| Circle::new(p, 3, col)))?;
        // The legend: a row per series below the plot, where it hides no line.
        let y = (i as u32 * ROW + ROW / 2) as i32;
        let seg = [(x0, y), (x0 + 24, y)];
        legend.draw(&DashedPathElement::new(seg, dash, gap, st))?;
        legend.draw(&Circle::new((x0 + 12, y), 3, col))?;
        legend.draw(&Text::new(name.as_str(), (x0 + 32, y), left.clone()))?;
    }
    if lines.is_empty() {
        let mid = font.pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new("no data", (400, H as i32 / 2), mid))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chart of `series`, and the text and `y` of each of its `<text>` elements.
    fn plot(series: &[(&str, &[(u32, f64)])]) -> (String, Vec<(String, i32)>) {
        let s = |&(n, p): &(&str, &[_])| (n.into(), p.to_vec());
        let out = svg("x < y & z", "ns / op", series.iter().map(s));
        let text = |t: &str| {
            let y = t.split(" y=\"").nth(1)?.split('"').next()?.parse().ok()?;
            Some((t.rsplit_once('>')?.1.trim().to_owned(), y))
        };
        let texts = out.split("</text>").filter_map(text).collect();
        (out, texts)
    }

    /// Whether `texts` has `s` at `y` or below.
    fn has(texts: &[(String, i32)], s: &str, y: u32) -> bool {
        texts.iter().any(|(t, at)| t == s && *at >= y as i32)
    }

    /// Only points a log axis shows are drawn, each series is in the legend below, the
    /// axes tick at decades and the data's x values, and lines after the sixth are dashed.
    #[test]
    fn the_chart_shows_its_data_on_log_axes_with_a_legend() {
        let a: &[_] = &[(1, 3.0), (2, 5.0), (4, 9.0)];
        let some = [("a<b> & c", a), ("empty", &[]), ("flat", &a[1..])];
        // Of `one`, the zero and the negative value are dropped; `none` has no point to draw.
        let (one, none): (&[_], &[_]) = (&[(1, 0.0), (2, 5.0), (4, -3.0)], &[(1, -1.0), (0, 5.0)]);
        // Each chart's circles: a marker per point drawn, a legend dot per series drawn.
        for (series, circles) in [
            (&some[..], 5 + 2),
            (&[("one", one)], 2),
            (&[("none", none)], 0),
        ] {
            let (out, t) = plot(series);
            assert_eq!(out.matches("<circle").count(), circles, "{out}");
            assert_eq!(has(&t, "no data", 0), circles == 0);
            assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");
            assert!(out.starts_with("<svg") && out.trim_end().ends_with("</svg>"));
        }
        let (out, t) = plot(&some);
        assert!(has(&t, "a&lt;b&gt; &amp; c", H) && has(&t, "flat", H) && !out.contains("empty"));
        assert!(has(&t, "x &lt; y &amp; z", 0) && has(&t, "CPUs", 0) && has(&t, "ns / op", 0));
        let (_, log) = plot(&[("s", &[(1, 3.0), (2, 40.0), (8, 4500.0), (256, 120.0)])]);
        for t in ["1", "10", "100", "1000", "10000", "2", "8", "256"] {
            assert!(has(&log, t, 0), "missing tick {t}: {log:?}");
        }
        assert!(!has(&log, "4", 0) && !has(&log, "100000", 0) && !has(&log, "3", 0));
        let p: &[_] = &[(1, 1.0), (8, 1000.0)];
        let lines = |n| plot(&vec![("s", p); n]).0;
        let strokes = |n| lines(n).matches("stroke=\"#0072B2\"").count();
        assert_eq!(strokes(6), 2); // the first line and its legend sample
        assert!(strokes(7) > 12); // and the seventh, in dashes of the same colour
    }
}
