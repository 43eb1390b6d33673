//! Section 6, what was not understood: decode events by name with their share of the
//! packets, frames that were not IP, and the input lines and event types this report could
//! not read.

use std::fmt::Write as _;

use super::Report;
use super::html::{Cell, esc, note, num, section_start, table};
use super::svg;

pub(super) fn render(r: &Report, out: &mut String) {
    section_start(out, "not-understood");
    match &r.stats {
        None => note(
            out,
            "No stats event in the input, so no decode events (the run did not finish?).",
        ),
        Some(s) => {
            let packets = s.packets.max(1) as f64;
            let mut events: Vec<(&String, &u64)> = s.decoder.iter().collect();
            events.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let _ = writeln!(
                out,
                "<p class=\"note\">{} packets; {} not IP; {} decode events under {} names. A decode event never stops a run: the packet is handed on with what was decoded.</p>",
                num(s.packets),
                num(s.non_ip_packets),
                num(s.decoder.values().sum()),
                s.decoder.len()
            );
            let share = |n: u64| format!("{:.4} %", n as f64 / packets * 100.0);
            let mut rows: Vec<Vec<Cell>> = events
                .iter()
                .map(|(k, n)| {
                    vec![
                        Cell::Mono((*k).clone()),
                        Cell::Num(**n),
                        Cell::Html(share(**n), format!("{}", **n as f64 / packets)),
                    ]
                })
                .collect();
            rows.push(vec![
                Cell::Mono("(frames without an IP packet)".into()),
                Cell::Num(s.non_ip_packets),
                Cell::Html(
                    share(s.non_ip_packets),
                    format!("{}", s.non_ip_packets as f64 / packets),
                ),
            ]);
            out.push_str("<div class=\"grid\">");
            table(
                out,
                &["decode event", "count", "share of packets"],
                &rows,
                true,
            );
            let mut items: Vec<(String, f64, &str, String)> = events
                .iter()
                .map(|(k, n)| ((*k).clone(), **n as f64, "#5d4037", share(**n)))
                .collect();
            if items.is_empty() {
                items.push(("(none)".into(), 0.0, "#5d4037", "0 %".into()));
            }
            out.push_str(&svg::bars("decode events, share of packets", &items, 620));
            out.push_str("</div>\n");
        }
    }
    out.push_str("<h3>Input the report could not read</h3>\n");
    if r.bad_lines == 0 && r.unknown_event_types.is_empty() {
        note(
            out,
            &format!(
                "None: all {} lines were events of known types.",
                num(r.lines)
            ),
        );
    } else {
        if let Some((line, why)) = &r.first_bad_line {
            let _ = writeln!(
                out,
                "<p class=\"note\">{} lines were not JSON objects (the first, line {line}: {}).</p>",
                num(r.bad_lines),
                esc(why)
            );
        }
        let rows: Vec<Vec<Cell>> = r
            .unknown_event_types
            .iter()
            .map(|(k, n)| vec![Cell::Mono(k.clone()), Cell::Num(*n)])
            .collect();
        if !rows.is_empty() {
            table(out, &["unknown event type", "events"], &rows, true);
        }
    }
    out.push_str("</section>\n");
}
