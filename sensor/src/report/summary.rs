//! Section 1, the summary: the stderr summary of a run, with links to the sections.

use std::fmt::Write as _;

use super::html::{Cell, bytes, esc, note, num, section_start, severity, table};
use super::svg::{self, PALETTE};
use super::{Report, time};

/// Which section each detector's alerts are shown in.
fn section_of(detector: &str) -> &'static str {
    match detector {
        "mirror_stream" => "mirror-map",
        "beacon" => "beacons",
        "extraneous_packet" => "extraneous",
        _ => "summary",
    }
}

pub(super) fn render(r: &Report, out: &mut String) {
    section_start(out, "summary");
    out.push_str("<div class=\"cards\">");
    let card = |out: &mut String, value: &str, what: &str, href: Option<&str>, alarm: bool| {
        let class = if alarm { "card alarm" } else { "card" };
        match href {
            Some(h) => {
                let _ = write!(
                    out,
                    "<a class=\"{class}\" href=\"#{h}\" style=\"color:inherit;text-decoration:none\"><b>{}</b><span>{}</span></a>",
                    esc(value),
                    esc(what)
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<div class=\"{class}\"><b>{}</b><span>{}</span></div>",
                    esc(value),
                    esc(what)
                );
            }
        }
    };
    if let Some(s) = &r.stats {
        card(out, &num(s.packets), "packets", None, false);
        card(out, &bytes(s.bytes), "on the wire", None, false);
        card(
            out,
            &num(s.encapsulated_packets),
            "in tunnels",
            Some("inventory"),
            false,
        );
    }
    if let Some((a, b)) = r.span {
        card(
            out,
            &time::format_duration(b - a),
            "of packet time",
            None,
            false,
        );
    }
    let alerts = r.alerts_total();
    card(
        out,
        &num(alerts),
        "alerts",
        Some("summary-alerts"),
        alerts > 0,
    );
    card(
        out,
        &num(r.tunnels_total),
        "tunnel sessions",
        Some("mirror-map"),
        false,
    );
    let decode: u64 = r.stats.as_ref().map_or(0, |s| s.decoder.values().sum());
    card(
        out,
        &num(decode),
        "decode events",
        Some("not-understood"),
        false,
    );
    out.push_str("</div>\n");

    let mut rows = Vec::new();
    // A long list of inputs folds away (a `details` element: no script needed).
    let shown: Vec<String> = r.inputs.iter().take(200).map(|i| esc(i)).collect();
    let more = if r.inputs.len() > shown.len() {
        format!("<br>… and {} more", r.inputs.len() - shown.len())
    } else {
        String::new()
    };
    let inputs = match r.inputs.len() {
        0 => String::new(),
        1..=3 => format!("<span class=\"mono\">{}</span>", shown.join("<br>")),
        n => format!(
            "<details><summary>{n} inputs: <span class=\"mono\">{}</span>, …</summary><span class=\"mono\">{}</span>{more}</details>",
            shown[0],
            shown.join("<br>")
        ),
    };
    if !inputs.is_empty() {
        rows.push(vec![
            Cell::Text("inputs".into()),
            Cell::Html(inputs, String::new()),
        ]);
    }
    // The capture files behind an events file (EVE-form events name them).
    let named: Vec<&String> = r
        .pcap_files
        .iter()
        .filter(|f| !r.inputs.contains(f))
        .collect();
    if !named.is_empty() {
        let list: Vec<String> = named.iter().map(|f| esc(f)).collect();
        rows.push(vec![
            Cell::Text("capture files".into()),
            Cell::Html(
                format!(
                    "<details><summary>{} named by the events</summary><span class=\"mono\">{}</span></details>",
                    list.len(),
                    list.join("<br>")
                ),
                String::new(),
            ),
        ]);
    }
    if let Some((a, b)) = r.span {
        rows.push(vec![
            Cell::Text("time span".into()),
            Cell::Text(format!(
                "{} → {} UTC ({})",
                time::format_ms(a),
                time::format_ms(b),
                time::format_duration(b - a)
            )),
        ]);
    }
    let events: Vec<String> = r
        .event_types
        .iter()
        .map(|(k, v)| format!("{k} {}", num(*v)))
        .collect();
    rows.push(vec![
        Cell::Text("events read".into()),
        Cell::Text(format!("{} ({})", num(r.lines), events.join(", "))),
    ]);
    match &r.stats {
        Some(s) => {
            rows.push(vec![
                Cell::Text("packets".into()),
                Cell::Text(format!(
                    "{} ({}), {} in tunnels, {} not IP",
                    num(s.packets),
                    bytes(s.bytes),
                    num(s.encapsulated_packets),
                    num(s.non_ip_packets)
                )),
            ]);
            rows.push(vec![
                Cell::Text("flows".into()),
                Cell::Text(format!(
                    "{} created, {} evicted (table full)",
                    num(s.flows_created),
                    num(s.flows_evicted)
                )),
            ]);
            let dropped = s.queue_drops + s.kernel_dropped + s.interface_dropped;
            rows.push(vec![
                Cell::Text("drops".into()),
                Cell::Html(
                    format!(
                        "{}{} (worker queues {}, kernel {}, interface {}); tunnel table full {}; extraneous alerts rate-limited {}; inputs not read completely {}",
                        if dropped > 0 { "⚠ " } else { "" },
                        num(dropped),
                        num(s.queue_drops),
                        num(s.kernel_dropped),
                        num(s.interface_dropped),
                        num(s.tunnel_table_full),
                        num(s.extraneous_rate_limited),
                        num(s.capture_errors)
                    ),
                    dropped.to_string(),
                ),
            ]);
        }
        None => rows.push(vec![
            Cell::Text("packets".into()),
            Cell::Text("no stats event in the input (the run did not finish?)".into()),
        ]),
    }
    table(out, &["", ""], &rows, false);

    out.push_str("<h3 id=\"summary-alerts\">Alerts by detector and severity</h3>\n");
    if alerts == 0 {
        note(out, "No alerts.");
    } else {
        let mut rows = Vec::new();
        let mut items = Vec::new();
        for (k, (det, by_sev)) in r.alerts_by_detector.iter().enumerate() {
            let total: u64 = by_sev.values().sum();
            let sevs: Vec<String> = by_sev
                .iter()
                .map(|(s, n)| format!("{} × {}", severity(*s), num(*n)))
                .collect();
            rows.push(vec![
                Cell::Html(
                    format!("<a href=\"#{}\">{}</a>", section_of(det), esc(det)),
                    det.clone(),
                ),
                Cell::Num(total),
                Cell::Html(sevs.join(" "), total.to_string()),
            ]);
            items.push((
                det.clone(),
                total as f64,
                PALETTE[k % PALETTE.len()],
                num(total),
            ));
        }
        out.push_str("<div class=\"grid\">");
        table(out, &["detector", "alerts", "by severity"], &rows, true);
        out.push_str(&svg::bars("alerts by detector", &items, 460));
        out.push_str("</div>");
        let mut sigs: Vec<(&String, &u64)> = r.alerts_by_signature.iter().collect();
        sigs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let rows: Vec<Vec<Cell>> = sigs
            .iter()
            .map(|(s, n)| vec![Cell::Mono((*s).clone()), Cell::Num(**n)])
            .collect();
        table(out, &["signature", "alerts"], &rows, true);
    }
    if r.bad_lines > 0 || !r.unknown_event_types.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"note\">Some input was not understood: see <a href=\"#not-understood\">section 6</a>.</p>"
        );
    }
    out.push_str("</section>\n");
}
