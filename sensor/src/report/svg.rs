//! Hand-written SVG charts: horizontal bars, histograms, beat timelines, stacked time bins.
//!
//! Hand-written rather than `plotters`: the charts are a few rectangles and labels each, the
//! markup stays small (a page of a million-packet run stays well under its 5 MiB budget) and
//! every chart is an inline `<svg class="chart">` that the browser test can inspect.
//! Inputs are aggregated before they get here; a chart never draws more than `MAX_MARKS`
//! marks whatever its input.

use std::fmt::Write as _;

use super::html::esc;
use super::time::{self, Micros};

/// Most marks (bars, stems) one chart draws.
pub(super) const MAX_MARKS: usize = 600;

/// Colours of series, in order.
pub(super) const PALETTE: [&str; 8] = [
    "#c62828", "#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#9e9d24", "#5d4037",
];

fn open(out: &mut String, w: u32, h: u32, label: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(label),
        esc(label)
    );
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, size: u32, s: &str) {
    let _ = write!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" font-size=\"{size}\">{}</text>",
        esc(s)
    );
}

/// Horizontal bars, one per item: label, value, colour, and the value's text.
pub(super) fn bars(label: &str, items: &[(String, f64, &str, String)], width: u32) -> String {
    let items = &items[..items.len().min(MAX_MARKS)];
    let row = 22.0;
    let h = (items.len() as f64 * row + 10.0).max(30.0) as u32;
    let label_w = items
        .iter()
        .map(|i| i.0.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 44) as f64
        * 7.5
        + 14.0;
    let value_w = 110.0;
    let bar_w = (f64::from(width) - label_w - value_w).max(60.0);
    let max = items.iter().map(|i| i.1).fold(0.0_f64, f64::max);
    let mut out = String::new();
    open(&mut out, width, h, label);
    for (k, (name, v, colour, shown)) in items.iter().enumerate() {
        let y = 5.0 + k as f64 * row;
        text(&mut out, label_w - 8.0, y + 15.0, "end", 12, name);
        let w = if max > 0.0 { v / max * bar_w } else { 0.0 };
        // Always a visible sliver, so a zero next to big values still reads as a bar.
        let _ = write!(
            out,
            "<rect x=\"{label_w:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{colour}\"><title>{}: {}</title></rect>",
            y + 2.0,
            w.max(1.5),
            esc(name),
            esc(shown)
        );
        text(
            &mut out,
            label_w + w.max(1.5) + 6.0,
            y + 15.0,
            "start",
            12,
            shown,
        );
    }
    out.push_str("</svg>");
    out
}

/// A histogram of `values` in `n_bins` equal bins, with an optional median and ± MAD band.
pub(super) fn histogram(
    label: &str,
    values: &[f64],
    n_bins: usize,
    colour: &str,
    x_unit: &str,
    band: Option<(f64, f64)>,
) -> String {
    let (w, h) = (380u32, 170u32);
    let (left, right, top, bottom) = (38.0, 12.0, 14.0, 34.0);
    let mut out = String::new();
    open(&mut out, w, h, label);
    let pw = f64::from(w) - left - right;
    let ph = f64::from(h) - top - bottom;
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\"/>",
        top + ph,
        left + pw,
        top + ph
    );
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        text(
            &mut out,
            f64::from(w) / 2.0,
            top + ph / 2.0,
            "middle",
            12,
            "no values",
        );
        out.push_str("</svg>");
        return out;
    }
    let mut lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some((m, mad)) = band {
        lo = lo.min(m - mad);
        hi = hi.max(m + mad);
    }
    // A constant series gets a window around it, so its one bar sits in the middle.
    if hi - lo < 1e-9 {
        let pad = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 1.0 };
        lo -= pad;
        hi += pad;
    }
    let n_bins = n_bins.clamp(1, MAX_MARKS);
    let mut bins = vec![0u64; n_bins];
    for v in &finite {
        let i = (((v - lo) / (hi - lo)) * n_bins as f64) as usize;
        bins[i.min(n_bins - 1)] += 1;
    }
    let max = bins.iter().copied().max().unwrap_or(1).max(1);
    let x = |v: f64| left + (v - lo) / (hi - lo) * pw;
    if let Some((m, mad)) = band {
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{ph:.1}\" fill=\"#ffe082\" opacity=\"0.55\"><title>median ± MAD</title></rect>",
            x(m - mad),
            (x(m + mad) - x(m - mad)).max(1.0)
        );
        let _ = write!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>",
            x(m),
            top + ph
        );
    }
    let bw = pw / n_bins as f64;
    for (i, &c) in bins.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let bh = c as f64 / max as f64 * ph;
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{colour}\"><title>{c}</title></rect>",
            left + i as f64 * bw + 0.5,
            top + ph - bh,
            (bw - 1.0).max(1.0)
        );
    }
    text(
        &mut out,
        left - 4.0,
        top + 10.0,
        "end",
        11,
        &max.to_string(),
    );
    text(&mut out, left - 4.0, top + ph, "end", 11, "0");
    text(&mut out, left, top + ph + 14.0, "start", 11, &short(lo));
    text(&mut out, left + pw, top + ph + 14.0, "end", 11, &short(hi));
    text(
        &mut out,
        left + pw / 2.0,
        top + ph + 28.0,
        "middle",
        11,
        x_unit,
    );
    out.push_str("</svg>");
    out
}

/// Beats on a time axis: a stem per beat, its height the beat's size (RITA's view of a
/// beacon: regular spacing and equal heights are what a beacon looks like).
/// `window` (the beats the alert scored) is shaded.
pub(super) fn timeline(
    label: &str,
    beats: &[(Micros, u64)],
    window: Option<(Micros, Micros)>,
    colour: &str,
) -> String {
    let (w, h) = (780u32, 150u32);
    let (left, right, top, bottom) = (48.0, 14.0, 12.0, 34.0);
    let mut out = String::new();
    open(&mut out, w, h, label);
    let pw = f64::from(w) - left - right;
    let ph = f64::from(h) - top - bottom;
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\"/>",
        top + ph,
        left + pw,
        top + ph
    );
    let beats = &beats[beats.len().saturating_sub(MAX_MARKS)..];
    let (Some(first), Some(last)) = (beats.first(), beats.last()) else {
        text(
            &mut out,
            f64::from(w) / 2.0,
            top + ph / 2.0,
            "middle",
            12,
            "no beats",
        );
        out.push_str("</svg>");
        return out;
    };
    let (t0, t1) = (first.0, last.0.max(first.0 + 1));
    let max = beats.iter().map(|b| b.1).max().unwrap_or(1).max(1);
    let x_of = |t: Micros| left + (t.clamp(t0, t1) - t0) as f64 / (t1 - t0) as f64 * pw;
    if let Some((a, b)) = window {
        let (xa, xb) = (x_of(a) - 3.0, x_of(b) + 3.0);
        let _ = write!(
            out,
            "<rect x=\"{xa:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{ph:.1}\" fill=\"#ffe082\" opacity=\"0.5\"><title>beats the alert scored</title></rect>",
            (xb - xa).max(2.0)
        );
    }
    for &(t, size) in beats {
        let x = left + (t - t0) as f64 / (t1 - t0) as f64 * pw;
        let bh = (size as f64 / max as f64 * ph).max(2.0);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/><circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"2.6\" fill=\"{colour}\"><title>{} · {size} bytes</title></circle>",
            top + ph,
            top + ph - bh,
            top + ph - bh,
            time::format_ms(t)
        );
    }
    text(
        &mut out,
        left - 4.0,
        top + 10.0,
        "end",
        11,
        &format!("{max} B"),
    );
    text(&mut out, left - 4.0, top + ph, "end", 11, "0");
    text(
        &mut out,
        left,
        top + ph + 14.0,
        "start",
        11,
        &time::format_axis(t0, t0),
    );
    text(
        &mut out,
        left + pw,
        top + ph + 14.0,
        "end",
        11,
        &time::format_axis(t1, t0),
    );
    text(
        &mut out,
        left + pw / 2.0,
        top + ph + 28.0,
        "middle",
        11,
        "beat time (UTC) · stem height = bytes sent by the source · shaded = beats the alert saw",
    );
    out.push_str("</svg>");
    out
}

/// Events over time, stacked by series, in `n_bins` bins between `t0` and `t1`.
pub(super) fn time_bins(
    label: &str,
    series: &[(String, Vec<Micros>)],
    t0: Micros,
    t1: Micros,
    n_bins: usize,
) -> String {
    let (w, h) = (780u32, 200u32);
    let (left, right, top, bottom) = (40.0, 14.0, 12.0, 52.0);
    let mut out = String::new();
    open(&mut out, w, h, label);
    let pw = f64::from(w) - left - right;
    let ph = f64::from(h) - top - bottom;
    let n_bins = n_bins.clamp(1, MAX_MARKS / series.len().max(1));
    let t1 = t1.max(t0 + 1);
    let mut counts = vec![vec![0u64; n_bins]; series.len()];
    for (s, (_, times)) in series.iter().enumerate() {
        for &t in times {
            let i = ((t - t0) as f64 / (t1 - t0) as f64 * n_bins as f64) as usize;
            counts[s][i.min(n_bins - 1)] += 1;
        }
    }
    let totals: Vec<u64> = (0..n_bins)
        .map(|i| counts.iter().map(|c| c[i]).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(1).max(1);
    let bw = pw / n_bins as f64;
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\"/>",
        top + ph,
        left + pw,
        top + ph
    );
    for i in 0..n_bins {
        let mut y = top + ph;
        for (s, c) in counts.iter().enumerate() {
            if c[i] == 0 {
                continue;
            }
            let bh = c[i] as f64 / max as f64 * ph;
            y -= bh;
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                left + i as f64 * bw + 0.5,
                (bw - 1.0).max(1.0),
                PALETTE[s % PALETTE.len()],
                esc(&series[s].0),
                c[i]
            );
        }
    }
    text(
        &mut out,
        left - 4.0,
        top + 10.0,
        "end",
        11,
        &max.to_string(),
    );
    text(&mut out, left - 4.0, top + ph, "end", 11, "0");
    text(
        &mut out,
        left,
        top + ph + 14.0,
        "start",
        11,
        &time::format_axis(t0, t0),
    );
    text(
        &mut out,
        left + pw,
        top + ph + 14.0,
        "end",
        11,
        &time::format_axis(t1, t0),
    );
    // Legend.
    let mut x = left;
    for (s, (name, times)) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>",
            top + ph + 26.0,
            PALETTE[s % PALETTE.len()]
        );
        let s = format!("{name} ({})", times.len());
        text(&mut out, x + 14.0, top + ph + 35.0, "start", 11, &s);
        x += 24.0 + s.chars().count() as f64 * 6.5;
    }
    out.push_str("</svg>");
    out
}

/// Score parts as bars from 0 to 1 with the alert threshold marked.
pub(super) fn scores(label: &str, parts: &[(&str, f64)], threshold: f64) -> String {
    let (w, row) = (330u32, 24.0);
    let h = (parts.len() as f64 * row + 26.0) as u32;
    let (left, pw) = (80.0, 200.0);
    let mut out = String::new();
    open(&mut out, w, h, label);
    for (k, (name, v)) in parts.iter().enumerate() {
        let y = 4.0 + k as f64 * row;
        let v = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let colour = if v >= threshold { "#c62828" } else { "#78909c" };
        text(&mut out, left - 6.0, y + 14.0, "end", 12, name);
        let _ = write!(
            out,
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"{pw}\" height=\"16\" fill=\"#eceff1\"/><rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{colour}\"/>",
            y,
            y,
            v * pw
        );
        text(
            &mut out,
            left + pw + 6.0,
            y + 14.0,
            "start",
            12,
            &format!("{v:.3}"),
        );
    }
    let tx = left + threshold.clamp(0.0, 1.0) * pw;
    let bottom = 4.0 + parts.len() as f64 * row;
    let _ = write!(
        out,
        "<line x1=\"{tx:.1}\" y1=\"2\" x2=\"{tx:.1}\" y2=\"{bottom:.1}\" stroke=\"#000\" stroke-dasharray=\"3 2\"/>"
    );
    text(
        &mut out,
        tx,
        bottom + 14.0,
        "middle",
        11,
        &format!("threshold {threshold:.2}"),
    );
    out.push_str("</svg>");
    out
}

/// A number short enough for an axis end.
pub(super) fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
