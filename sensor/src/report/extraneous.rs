//! Section 4, extraneous packets: alerts over time by reason, alerts and packets by reason,
//! and the flows behind them (conn_state, history, sample).

use std::collections::BTreeMap;

use super::html::{Cell, note, num, section_start, severity, table};
use super::svg::{self, PALETTE};
use super::{Report, time};

/// Flows listed in the table (the earliest alerts); the chart counts every alert kept.
const MAX_TABLE_ROWS: usize = 500;

pub(super) fn render(r: &Report, out: &mut String) {
    section_start(out, "extraneous");
    if r.extraneous_total == 0 {
        note(out, "No extraneous_packet alerts.");
        out.push_str("</section>\n");
        return;
    }
    let mut by_reason: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for a in &r.extraneous {
        if let Some(t) = a.time {
            by_reason.entry(a.reason.as_str()).or_default().push(t);
        }
    }
    let times: Vec<i64> = by_reason.values().flatten().copied().collect();
    let t0 = times.iter().copied().min();
    let t1 = times.iter().copied().max();
    if let (Some(t0), Some(t1)) = (t0, t1) {
        // The alerts' own range, padded: a run's span can dwarf the minutes that matter.
        let pad = ((t1 - t0) / 20).max(500_000);
        let (a, b) = (t0 - pad, t1 + pad);
        let series: Vec<(String, Vec<i64>)> = by_reason
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        out.push_str("<h3>Alerts over time, by reason</h3>\n");
        out.push_str(&svg::time_bins(
            "extraneous alerts over time",
            &series,
            a,
            b,
            60,
        ));
    }
    out.push_str("<h3>By reason</h3>\n<div class=\"grid\">");
    let mut reasons: Vec<(&String, &(u64, u64))> = r.extraneous_by_reason.iter().collect();
    reasons.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    let rows: Vec<Vec<Cell>> = reasons
        .iter()
        .map(|(k, (alerts, packets))| {
            vec![
                Cell::Mono((*k).clone()),
                Cell::Num(*alerts),
                Cell::Num(*packets),
            ]
        })
        .collect();
    table(out, &["reason", "alerts", "offending packets"], &rows, true);
    // Colours follow the time chart's (series in name order).
    let mut names: Vec<&String> = r.extraneous_by_reason.keys().collect();
    names.sort();
    let items: Vec<(String, f64, &str, String)> = reasons
        .iter()
        .map(|(k, (alerts, _))| {
            let idx = names.iter().position(|n| n == k).unwrap_or(0);
            (
                (*k).clone(),
                *alerts as f64,
                PALETTE[idx % PALETTE.len()],
                num(*alerts),
            )
        })
        .collect();
    out.push_str(&svg::bars("extraneous alerts by reason", &items, 520));
    out.push_str("</div>\n<h3>The flows behind them</h3>\n");
    let rows: Vec<Vec<Cell>> = r
        .extraneous
        .iter()
        .take(MAX_TABLE_ROWS)
        .map(|a| {
            vec![
                Cell::Text(a.time.map(time::format_ms).unwrap_or_default()),
                Cell::Html(severity(a.severity), a.severity.to_string()),
                Cell::Mono(a.reason.clone()),
                Cell::Mono(a.flow.clone()),
                Cell::Num(a.count),
                Cell::Mono(a.conn_state.clone()),
                Cell::Mono(a.history.clone()),
                Cell::Mono(a.flow_packets.clone()),
                Cell::Mono(a.sample.clone()),
            ]
        })
        .collect();
    table(
        out,
        &[
            "time",
            "severity",
            "reason",
            "flow",
            "packets",
            "conn_state",
            "history",
            "flow packets (src / dest)",
            "sample",
        ],
        &rows,
        true,
    );
    let listed = r.extraneous.len().min(MAX_TABLE_ROWS) as u64;
    if r.extraneous_total > listed {
        note(
            out,
            &format!(
                "{} alerts listed of {} (the earliest); the charts count {}.",
                num(listed),
                num(r.extraneous_total),
                num(r.extraneous.len() as u64)
            ),
        );
    }
    out.push_str("</section>\n");
}
