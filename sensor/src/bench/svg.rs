//! SVG charts of a run (plotters, SVG backend only): throughput against workers, one line per
//! input, and throughput against tracked flows (log scale).

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::report::ThroughputRow;

/// Chart size in pixels.
const SIZE: (u32, u32) = (900, 540);

/// Series colours, cycled.
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Mpps against worker count, one series per input.
pub fn throughput_by_workers(rows: &[ThroughputRow], out: &Path) -> anyhow::Result<()> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.workload.as_str()) {
            names.push(&r.workload);
        }
    }
    let max_workers = rows.iter().map(|r| r.workers).max().unwrap_or(1).max(2) as u32;
    let max_mpps = rows
        .iter()
        .map(|r| r.packets_per_s / 1e6)
        .fold(0.0f64, f64::max)
        .max(0.1)
        * 1.15;
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "mirrorwatch: full-pipeline throughput by workers",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(1u32..max_workers, 0f64..max_mpps)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("workers")
        .y_desc("Mpps")
        .x_labels(max_workers as usize)
        .draw()
        .map_err(draw_error)?;
    for (i, name) in names.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points: Vec<(u32, f64)> = rows
            .iter()
            .filter(|r| r.workload == *name)
            .map(|r| (r.workers as u32, r.packets_per_s / 1e6))
            .collect();
        points.sort_by_key(|p| p.0);
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(draw_error)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)?;
    Ok(())
}

/// Mpps against flows tracked (log scale), one series per worker count.
pub fn throughput_by_flows(rows: &[ThroughputRow], out: &Path) -> anyhow::Result<()> {
    let flows = |r: &ThroughputRow| (r.counts.peak_tracked_flows.max(1)) as f64;
    let lo = rows.iter().map(flows).fold(f64::MAX, f64::min).min(1e3);
    let hi = rows.iter().map(flows).fold(1.0, f64::max).max(lo * 10.0);
    let max_mpps = rows
        .iter()
        .map(|r| r.packets_per_s / 1e6)
        .fold(0.0f64, f64::max)
        .max(0.1)
        * 1.15;
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "mirrorwatch: full-pipeline throughput by flows tracked",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), 0f64..max_mpps)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("flows tracked at once (log)")
        .y_desc("Mpps")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(draw_error)?;
    let mut workers: Vec<usize> = rows.iter().map(|r| r.workers).collect();
    workers.sort_unstable();
    workers.dedup();
    for (i, w) in workers.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.workers == *w)
            .map(|r| (flows(r), r.packets_per_s / 1e6))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(draw_error)?
            .label(format!("{w} worker(s)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, colour.filled())),
            )
            .map_err(draw_error)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw_error)?;
    root.present()
        .map_err(draw_error)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn draw_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}
