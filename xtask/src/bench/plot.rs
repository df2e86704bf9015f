// SPDX-License-Identifier: GPL-2.0 OR MIT
//! A small, dependency-free SVG line-chart writer for plots of benchmark results:
//! cost against CPU count, one line per strategy.

use std::fmt::{self, Write};

/// One line of the chart.
pub struct Series {
    pub name: String,
    /// (x, y) points, x ascending; y > 0 when the y axis is logarithmic.
    pub points: Vec<(f64, f64)>,
}

/// How the chart is drawn.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// x axis in powers of two (CPU counts 1, 2, 4, ... 256): ticks at the data's x values.
    pub x_log2: bool,
    /// y axis logarithmic (decades 1, 10, 100, ... with light grid lines); otherwise linear from 0.
    pub y_log10: bool,
}

/// Plot area in pixels: left, top, right, bottom (the whole image is 800 x 480).
const L: f64 = 80.0;
const T: f64 = 40.0;
const R: f64 = 780.0;
const B: f64 = 420.0;
/// Okabe-Ito colours, safe for colour-blind readers; after six, lines are dashed.
const PALETTE: [&str; 6] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
];
const DASH: &str = r#" stroke-dasharray="6 3""#;
const MID: &str = r#" text-anchor="middle""#;
const GRID: &str = r##" stroke="#ddd""##;

/// Maps data to pixels: `f` (identity, log2 or log10) then linearly from `lo..hi`.
struct Axis {
    f: fn(f64) -> f64,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    /// Spans the first to the last tick, or one unit either side of a single tick.
    fn new(f: fn(f64) -> f64, ticks: Vec<f64>) -> Self {
        let (lo, hi) = (f(ticks[0]), f(ticks[ticks.len() - 1]));
        let d = if hi > lo { 0.0 } else { 1.0 };
        let (lo, hi) = (lo - d, hi + d);
        Axis { f, lo, hi, ticks }
    }

    /// Pixel position of `v`, from `a` (at `lo`) to `b` (at `hi`).
    fn pos(&self, v: f64, a: f64, b: f64) -> f64 {
        a + ((self.f)(v) - self.lo) / (self.hi - self.lo) * (b - a)
    }
}

fn bounds(v: &[f64]) -> Option<(f64, f64)> {
    let lo = v.iter().copied().reduce(f64::min)?;
    Some((lo, v.iter().copied().fold(lo, f64::max)))
}

/// About five evenly spaced round ticks covering `lo..=hi`.
fn nice(lo: f64, hi: f64) -> Vec<f64> {
    let d = if hi > lo { 0.0 } else { 1.0 };
    let (lo, hi) = (lo - d, hi + d);
    let mag = 10f64.powf(((hi - lo) / 5.0).log10().floor());
    let off = |s: &f64| ((hi / s).ceil() - (lo / s).floor() - 5.0).abs();
    let steps = [1.0, 2.0, 2.5, 5.0, 10.0].map(|m| m * mag);
    let step = steps.into_iter().min_by(|a, b| off(a).total_cmp(&off(b)));
    let step = step.unwrap_or(1.0);
    let (i0, i1) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
    (i0..=i1).map(|i| i as f64 * step).collect()
}

fn x_axis(xs: &[f64], log2: bool) -> Axis {
    if !log2 {
        let (lo, hi) = bounds(xs).unwrap_or((0.0, 1.0));
        return Axis::new(|v| v, nice(lo, hi));
    }
    let mut ticks = xs.to_vec();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    if ticks.is_empty() {
        ticks = vec![1.0, 2.0];
    }
    Axis::new(f64::log2, ticks)
}

fn y_axis(ys: &[f64], log10: bool) -> Axis {
    let (lo, hi) = bounds(ys).unwrap_or((1.0, 10.0));
    if !log10 {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        return Axis::new(|v| v, nice(lo, if hi > lo { hi } else { lo + 1.0 }));
    }
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades = (a..=b.max(a + 1)).map(|k| 10f64.powi(k));
    Axis::new(f64::log10, decades.collect())
}

/// A short label: integers as such, tiny or huge numbers as `1.5e9`.
fn num(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        let s = format!("{v:.2e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'));
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Escapes text for SVG element content.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn text(o: &mut String, (x, y): (f64, f64), attrs: &str, s: &str) -> fmt::Result {
    writeln!(o, r#"<text x="{x:.1}" y="{y:.1}"{attrs}>{}</text>"#, esc(s))
}

fn line(o: &mut String, (a, b): (f64, f64), (c, d): (f64, f64), attrs: &str) -> fmt::Result {
    writeln!(
        o,
        r#"<line x1="{a:.1}" y1="{b:.1}" x2="{c:.1}" y2="{d:.1}"{attrs}/>"#
    )
}

fn dot(o: &mut String, (x, y): (f64, f64), c: &str) -> fmt::Result {
    writeln!(o, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{c}"/>"#)
}

/// Colour of series `i`, and its line style.
fn style(i: usize) -> (&'static str, String) {
    let (col, dash) = (PALETTE[i % 6], if i < 6 { "" } else { DASH });
    let attrs = format!(r#" fill="none" stroke="{col}" stroke-width="2"{dash}"#);
    (col, attrs)
}

/// The chart as a standalone SVG document.
pub fn svg(chart: &Chart, series: &[Series]) -> String {
    let mut out = String::new();
    draw(&mut out, chart, series).expect("writing to a String cannot fail");
    out
}

fn draw(o: &mut String, c: &Chart, series: &[Series]) -> fmt::Result {
    // Drop points a log axis cannot show, then series left empty.
    let ok = |&(x, y): &(f64, f64)| {
        x.is_finite() && y.is_finite() && (!c.x_log2 || x > 0.0) && (!c.y_log10 || y > 0.0)
    };
    let mut lines = Vec::new();
    for s in series {
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(ok).collect();
        if !pts.is_empty() {
            lines.push((s.name.as_str(), pts));
        }
    }
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let x = x_axis(&all.iter().map(|p| p.0).collect::<Vec<_>>(), c.x_log2);
    let y = y_axis(&all.iter().map(|p| p.1).collect::<Vec<_>>(), c.y_log10);

    let to_px = |(a, b): (f64, f64)| (x.pos(a, L, R), y.pos(b, B, T));
    o.push_str(r#"<svg xmlns="http://www.w3.org/2000/svg" width="800" height="480" "#);
    o.push_str(r#"viewBox="0 0 800 480" font-family="sans-serif" font-size="12">"#);
    o.push_str("\n<rect width=\"800\" height=\"480\" fill=\"white\"/>\n");
    for &t in &x.ticks {
        let px = x.pos(t, L, R);
        line(o, (px, T), (px, B), GRID)?;
        text(o, (px, B + 18.0), MID, &num(t))?;
    }
    for &t in &y.ticks {
        let py = y.pos(t, B, T);
        line(o, (L, py), (R, py), GRID)?;
        text(o, (L - 6.0, py + 4.0), r#" text-anchor="end""#, &num(t))?;
    }
    line(o, (L, T), (L, B), r#" stroke="black""#)?;
    line(o, (L, B), (R, B), r#" stroke="black""#)?;
    for (i, (_, pts)) in lines.iter().enumerate() {
        let (col, attrs) = style(i);
        let xy: Vec<_> = pts.iter().copied().map(to_px).collect();
        let list: Vec<_> = xy.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        writeln!(o, r#"<polyline points="{}"{attrs}/>"#, list.join(" "))?;
        for p in xy {
            dot(o, p, col)?;
        }
    }
    if lines.is_empty() {
        let at = ((L + R) / 2.0, (T + B) / 2.0);
        let grey = r##" text-anchor="middle" font-size="16" fill="#666""##;
        text(o, at, grey, "no data")?;
    } else {
        // Legend: about 7 pixels per character of the longest name.
        let chars = lines.iter().map(|(n, _)| n.chars().count()).max();
        let w = chars.unwrap_or(0) as f64 * 7.0 + 44.0;
        let (lx, ly, h) = (L + 10.0, T + 10.0, lines.len() as f64 * 18.0 + 8.0);
        write!(o, r#"<rect x="{lx}" y="{ly}" width="{w}" height="{h}""#)?;
        writeln!(o, r##" fill="white" fill-opacity="0.9" stroke="#999"/>"##)?;
        for (i, (name, _)) in lines.iter().enumerate() {
            let ((col, attrs), ly) = (style(i), T + 27.0 + i as f64 * 18.0);
            line(o, (L + 16.0, ly), (L + 40.0, ly), &attrs)?;
            dot(o, (L + 28.0, ly), col)?;
            text(o, (L + 46.0, ly + 4.0), "", name)?;
        }
    }
    let bold = r#" text-anchor="middle" font-size="16" font-weight="bold""#;
    text(o, (400.0, 24.0), bold, c.title)?;
    text(o, ((L + R) / 2.0, B + 44.0), MID, c.x_label)?;
    let yc = (T + B) / 2.0;
    let rot = format!(r#"{MID} transform="rotate(-90 20 {yc})""#);
    text(o, (20.0, yc), &rot, c.y_label)?;
    writeln!(o, "</svg>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(title: &str, x_log2: bool, y_log10: bool) -> Chart<'_> {
        Chart {
            title,
            x_label: "CPUs",
            y_label: "ns / op",
            x_log2,
            y_log10,
        }
    }

    fn series(name: &str, points: &[(f64, f64)]) -> Series {
        Series {
            name: name.into(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn one_polyline_per_nonempty_series_and_escaped_text() {
        let s = [
            series("a<b> & c", &[(1.0, 3.0), (2.0, 5.0), (4.0, 9.0)]),
            series("empty", &[]),
            series("flat", &[(1.0, 3.0), (4.0, 3.0)]),
        ];
        let out = svg(&chart("x < y & z", true, false), &s);
        assert_eq!(out.matches("<polyline").count(), 2);
        assert_eq!(out.matches("<circle").count(), 5 + 2); // markers + legend dots
        assert!(out.contains(">a&lt;b&gt; &amp; c<") && out.contains(">x &lt; y &amp; z<"));
        assert!(!out.contains("empty") && !out.contains("NaN") && !out.contains("inf"));
        assert!(out.starts_with("<svg") && out.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn log_axes_tick_at_decades_and_data_x_values() {
        let s = [series(
            "s",
            &[(1.0, 3.0), (2.0, 40.0), (8.0, 4500.0), (256.0, 120.0)],
        )];
        let out = svg(&chart("t", true, true), &s);
        let labels: Vec<&str> = out
            .split("</text>")
            .filter_map(|t| t.rsplit_once('>').map(|(_, l)| l))
            .collect();
        for l in ["1", "10", "100", "1000", "10000", "2", "8", "256"] {
            assert!(labels.contains(&l), "missing tick {l}: {labels:?}");
        }
        assert!(!labels.contains(&"4") && !labels.contains(&"100000"));
        assert_eq!(
            y_axis(&[3.0, 4500.0], true).ticks,
            [1.0, 10.0, 100.0, 1e3, 1e4]
        );
        assert_eq!(
            y_axis(&[7.0, 47.0], false).ticks,
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
        );
    }

    #[test]
    fn degenerate_input_still_renders() {
        let none = svg(
            &chart("t", true, true),
            &[series("e", &[]), series("neg", &[(1.0, -1.0)])],
        );
        assert!(none.contains(">no data<") && !none.contains("<polyline"));
        for (xl, yl) in [(true, true), (false, false), (true, false)] {
            let out = svg(&chart("t", xl, yl), &[series("one", &[(4.0, 7.0)])]);
            assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");
            assert_eq!(out.matches("<polyline").count(), 1);
        }
    }
}
