//! The page's static charts, as SVG text: histograms of durations, bar charts of counts, the
//! load over time. Every chart is an `<svg class="chart">` with a `data-chart` name; bars carry
//! their counts (`data-count`) so a reader of the DOM can check them.

use std::fmt::Write as _;

use super::load::Load;
use crate::otel::summary::{Distribution, Samples};

/// Escapes text for HTML and SVG content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Ticks at 1, 2 or 5 times a power of ten, about `target` of them, covering `[lo, hi]`.
pub(super) fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A unit for an axis of seconds whose largest value is `hi`: (divisor, suffix).
fn time_unit(hi: f64) -> (f64, &'static str) {
    if hi < 2e-3 {
        (1e-6, "µs")
    } else if hi < 2.0 {
        (1e-3, "ms")
    } else {
        (1.0, "s")
    }
}

/// A tick value without trailing zeros: `0.25`, `40`, `1.5`.
fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

/// The plotting area of a chart.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn x(&self, v: f64, lo: f64, hi: f64) -> f64 {
        let w = self.width - self.left - self.right;
        if hi > lo { self.left + (v - lo) / (hi - lo) * w } else { self.left }
    }

    fn y(&self, v: f64, hi: f64) -> f64 {
        let h = self.height - self.top - self.bottom;
        if hi > 0.0 { self.height - self.bottom - v / hi * h } else { self.height - self.bottom }
    }

    fn open(&self, out: &mut String, chart: &str, label: &str) {
        let _ = write!(
            out,
            r#"<svg class="chart" data-chart="{chart}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">"#,
            w = self.width,
            h = self.height,
            label = esc(label),
        );
    }

    /// Horizontal grid lines and labels of a count axis up to `hi`.
    fn y_axis(&self, out: &mut String, hi: f64, format: &dyn Fn(f64) -> String) {
        for t in ticks(0.0, hi, 4) {
            let y = self.y(t, hi);
            let _ = write!(
                out,
                r#"<line class="grid" x1="{l}" x2="{r}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{tx}" y="{ty:.1}" text-anchor="end">{}</text>"#,
                esc(&format(t)),
                l = self.left,
                r = self.width - self.right,
                tx = self.left - 4.0,
                ty = y + 3.5,
            );
        }
    }

    /// Ticks and labels of a time axis from `lo` to `hi` seconds.
    fn time_axis(&self, out: &mut String, lo: f64, hi: f64, title: &str) {
        let (div, unit) = time_unit(hi);
        let base = self.height - self.bottom;
        let _ = write!(
            out,
            r#"<line class="axis" x1="{}" x2="{}" y1="{base}" y2="{base}"/>"#,
            self.left,
            self.width - self.right
        );
        for t in ticks(lo, hi, 6) {
            let x = self.x(t, lo, hi);
            let _ = write!(
                out,
                r#"<line class="axis" x1="{x:.1}" x2="{x:.1}" y1="{base}" y2="{}"/><text class="tick" x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                base + 4.0,
                base + 15.0,
                number(t / div),
            );
        }
        let _ = write!(
            out,
            r#"<text class="axis-title" x="{}" y="{}" text-anchor="end">{} ({unit})</text>"#,
            self.width - self.right,
            self.height - 3.0,
            esc(title)
        );
    }
}

/// The scale shared by the histograms of one metric (one run, or both runs of a comparison).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct HistogramScale {
    /// The largest value, seconds: the axis runs from 0 to it.
    pub hi: f64,
    /// The tallest bar.
    pub most: u64,
}

/// Bins of a histogram of `values` on `[0, hi]`.
pub(super) const BINS: usize = 40;

pub(super) fn bin_counts(values: &Samples, hi: f64) -> Vec<u64> {
    let mut counts = vec![0u64; BINS];
    for (v, n) in values.counts().filter(|(v, _)| v.is_finite()) {
        let i = if hi > 0.0 { ((v / hi) * BINS as f64).floor().max(0.0) as usize } else { 0 };
        if let Some(c) = counts.get_mut(i.min(BINS - 1)) {
            *c = c.saturating_add(n);
        }
    }
    counts
}

impl HistogramScale {
    /// A scale that fits every set of values.
    pub fn of(sets: &[&Samples]) -> HistogramScale {
        let hi = sets.iter().flat_map(|s| s.counts()).map(|(v, _)| v).filter(|v| v.is_finite()).fold(0.0, f64::max);
        let hi = if hi > 0.0 { hi } else { 1e-3 };
        let most = sets.iter().flat_map(|s| bin_counts(s, hi)).max().unwrap_or(0);
        HistogramScale { hi, most }
    }
}

/// A histogram of durations (seconds) with the median, p90 and p99 marked.
pub(super) fn histogram(chart: &str, title: &str, values: &Samples, scale: HistogramScale, tone: &str) -> String {
    let f = Frame { width: 360.0, height: 190.0, left: 40.0, right: 12.0, top: 22.0, bottom: 34.0 };
    let mut out = String::new();
    f.open(&mut out, chart, title);
    let most = scale.most.max(1) as f64;
    f.y_axis(&mut out, most, &|v| number(v));
    let counts = bin_counts(values, scale.hi);
    let w = (f.width - f.left - f.right) / BINS as f64;
    for (i, c) in counts.iter().enumerate() {
        let lo = i as f64 * scale.hi / BINS as f64;
        let x = f.x(lo, 0.0, scale.hi);
        let y = f.y(*c as f64, most);
        let _ = write!(
            out,
            r#"<rect class="bar {tone}" data-count="{c}" x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{h:.1}"><title>{c}</title></rect>"#,
            bw = (w - 1.0).max(0.5),
            h = f.height - f.bottom - y,
        );
    }
    if let Some(d) = Distribution::of_samples(values) {
        for (name, v) in [("p50", d.p50), ("p90", d.p90), ("p99", d.p99)] {
            let x = f.x(v, 0.0, scale.hi);
            let _ = write!(
                out,
                r#"<line class="marker" x1="{x:.1}" x2="{x:.1}" y1="{t}" y2="{b}"/><text class="marker-label" x="{x:.1}" y="{ly}" text-anchor="middle">{name}</text>"#,
                t = f.top - 2.0,
                b = f.height - f.bottom,
                ly = f.top - 6.0,
            );
        }
    }
    f.time_axis(&mut out, 0.0, scale.hi, title);
    out.push_str("</svg>");
    out
}

/// A bar chart of counts by category, each bar labelled with its count; `most` is the height of
/// the axis (so two charts can share it).
pub(super) fn bars(chart: &str, title: &str, items: &[(String, u64)], most: u64, tone: &str) -> String {
    let f = Frame { width: 360.0, height: 190.0, left: 40.0, right: 12.0, top: 22.0, bottom: 34.0 };
    let mut out = String::new();
    f.open(&mut out, chart, title);
    let most = most.max(1) as f64;
    f.y_axis(&mut out, most, &|v| number(v));
    let n = items.len().max(1) as f64;
    let w = (f.width - f.left - f.right) / n;
    for (i, (name, c)) in items.iter().enumerate() {
        let x = f.left + i as f64 * w;
        let y = f.y(*c as f64, most);
        let _ = write!(
            out,
            r#"<rect class="bar {tone}" data-label="{name}" data-count="{c}" x="{bx:.1}" y="{y:.1}" width="{bw:.1}" height="{h:.1}"><title>{name}: {c}</title></rect>"#,
            name = esc(name),
            bx = x + w * 0.1,
            bw = (w * 0.8).max(0.5),
            h = f.height - f.bottom - y,
        );
        if w >= 18.0 {
            let _ = write!(
                out,
                r#"<text class="tick" x="{cx:.1}" y="{ly:.1}" text-anchor="middle">{name}</text>"#,
                name = esc(name),
                cx = x + w / 2.0,
                ly = f.height - f.bottom + 15.0,
            );
            if *c > 0 {
                let _ = write!(
                    out,
                    r#"<text class="count" x="{cx:.1}" y="{cy:.1}" text-anchor="middle">{c}</text>"#,
                    cx = x + w / 2.0,
                    cy = y - 3.0,
                );
            }
        }
    }
    let base = f.height - f.bottom;
    let _ = write!(out, r#"<line class="axis" x1="{}" x2="{}" y1="{base}" y2="{base}"/>"#, f.left, f.width - f.right);
    let _ = write!(
        out,
        r#"<text class="axis-title" x="{}" y="{}" text-anchor="end">{}</text>"#,
        f.width - f.right,
        f.height - 3.0,
        esc(title)
    );
    out.push_str("</svg>");
    out
}

/// Runs of equal values (as drawn, to a hundredth): `(first bin, bin after the last, value)`, so
/// a flat stretch of a step outline is one segment.
fn runs(values: &[f64]) -> Vec<(usize, usize, f64)> {
    let mut out: Vec<(usize, usize, f64)> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match out.last_mut() {
            Some(last) if (last.2 - v).abs() < 0.005 => last.1 = i + 1,
            _ => out.push((i, i + 1, *v)),
        }
    }
    out
}

/// The load of one input: stacked areas of running, waiting and preempted requests, and
/// below them the preemptions per second, on one time axis.
pub(super) fn load_chart(chart: &str, load: &Load, duration: f64) -> String {
    let f = Frame { width: 1160.0, height: 240.0, left: 56.0, right: 16.0, top: 24.0, bottom: 30.0 };
    let g = Frame { width: 1160.0, height: 120.0, left: 56.0, right: 16.0, top: 22.0, bottom: 30.0 };
    let mut out = String::new();
    f.open(&mut out, chart, "load over time");
    let n = load.len();
    let stacked: Vec<[f64; 3]> = (0..n)
        .map(|i| {
            let r = load.running[i];
            let w = r + load.waiting[i];
            [r, w, w + load.preempted[i]]
        })
        .collect();
    let top = stacked.iter().map(|s| s[2]).fold(0.0, f64::max).max(1.0);
    f.y_axis(&mut out, top, &|v| number(v));
    // Each area is the band between the previous curve and this one, as a step outline.
    let names = ["running", "waiting", "preempted"];
    for (layer, name) in names.iter().enumerate() {
        let upper: Vec<f64> = stacked.iter().map(|s| s[layer]).collect();
        let lower: Vec<f64> = stacked.iter().map(|s| if layer == 0 { 0.0 } else { s[layer - 1] }).collect();
        let x = |i: usize| f.x(i as f64 * load.bin, 0.0, duration);
        let mut path = String::from("M");
        for (i0, i1, v) in runs(&upper) {
            let y = f.y(v, top);
            let _ = write!(path, "{:.1},{y:.1} {:.1},{y:.1} ", x(i0), x(i1));
        }
        let back: Vec<(usize, usize, f64)> = runs(&lower);
        for &(i0, i1, v) in back.iter().rev() {
            let y = f.y(v, top);
            let _ = write!(path, "{:.1},{y:.1} {:.1},{y:.1} ", x(i1), x(i0));
        }
        let total: f64 = match layer {
            0 => load.running.iter().sum(),
            1 => load.waiting.iter().sum(),
            _ => load.preempted.iter().sum(),
        };
        let _ = write!(
            out,
            r#"<path class="area {name}" data-series="{name}" data-request-seconds="{:.6}" d="{}Z"/>"#,
            total * load.bin,
            path.trim_end()
        );
    }
    f.time_axis(&mut out, 0.0, duration, "time since the first event");
    let _ = write!(out, r#"<text class="axis-title" x="{}" y="12">requests (mean per bin)</text>"#, f.left);
    out.push_str("</svg>");

    let chart2 = format!("{chart}-preemptions");
    g.open(&mut out, &chart2, "preemptions per second");
    let most = load.preemptions_per_s.iter().copied().fold(0.0, f64::max).max(1.0);
    g.y_axis(&mut out, most, &|v| number(v));
    for (i, p) in load.preemptions_per_s.iter().enumerate() {
        if *p <= 0.0 {
            continue;
        }
        let (x0, x1) = (g.x(i as f64 * load.bin, 0.0, duration), g.x((i + 1) as f64 * load.bin, 0.0, duration));
        let y = g.y(*p, most);
        let _ = write!(
            out,
            r#"<rect class="bar preempted" data-count="{:.0}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"><title>{} preemptions/s</title></rect>"#,
            p * load.bin,
            (x1 - x0 - 0.5).max(0.5),
            g.height - g.bottom - y,
            number(*p)
        );
    }
    g.time_axis(&mut out, 0.0, duration, "time since the first event");
    let _ = write!(out, r#"<text class="axis-title" x="{}" y="12">preemptions per second</text>"#, g.left);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let t: Vec<String> = ticks(0.0, 1.0, 5).into_iter().map(number).collect();
        assert_eq!(t, ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        assert_eq!(ticks(0.0, 37.0, 4), vec![0.0, 10.0, 20.0, 30.0]);
        assert_eq!(ticks(1.0, 1.0, 4), vec![1.0]);
    }

    #[test]
    fn bins_put_the_largest_value_in_the_last_bin() {
        let c = bin_counts(&[0.0, 0.5, 1.0, f64::NAN].into_iter().collect(), 1.0);
        assert_eq!((c[0], c[BINS / 2], c[BINS - 1], c.iter().sum::<u64>()), (1, 1, 1, 3));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
