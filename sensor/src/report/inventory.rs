//! Section 5, the tunnel inventory (the `--inventory` table, rendered) and the top
//! conversations, pre-sorted (alerted sessions first then by bytes; conversations by bytes)
//! so they read without the sorting script.

use std::fmt::Write as _;

use super::html::{Cell, bytes, esc, note, num, section_start, table, tag};
use super::svg::{self, PALETTE};
use super::{Report, time};

/// Conversations listed.
const TOP_CONVERSATIONS: usize = 30;

pub(super) fn render(r: &Report, out: &mut String) {
    section_start(out, "inventory");
    let _ = writeln!(
        out,
        "<h3>Tunnel inventory: {} sessions</h3>",
        num(r.tunnels_total)
    );
    if r.tunnels_total > 0 {
        out.push_str("<div class=\"grid\">");
        let items: Vec<(String, f64, &str, String)> = r
            .tunnels_by_type
            .iter()
            .enumerate()
            .map(|(i, (k, n))| (k.clone(), *n as f64, PALETTE[i % PALETTE.len()], num(*n)))
            .collect();
        out.push_str(&svg::bars("tunnel sessions by type", &items, 400));
        let items: Vec<(String, f64, &str, String)> = r
            .tunnels_by_class
            .iter()
            .map(|(k, n)| {
                let c = match k.as_str() {
                    "mirror" => "#c62828",
                    "overlay" => "#1565c0",
                    _ => "#757575",
                };
                (k.clone(), *n as f64, c, num(*n))
            })
            .collect();
        out.push_str(&svg::bars("tunnel sessions by class", &items, 400));
        out.push_str("</div>\n");
    }
    let rows: Vec<Vec<Cell>> = r
        .tunnels
        .iter()
        .map(|t| {
            let port = if t.dst_port != 0 {
                format!(":{}", t.dst_port)
            } else {
                String::new()
            };
            let approved = if t.approved {
                tag("yes", "yes")
            } else {
                tag("no", "NO")
            };
            let alert = if t.alerted { " ⚠" } else { "" };
            vec![
                Cell::Text(t.kind.clone()),
                Cell::Id(t.id),
                Cell::Html(
                    format!(
                        "<span class=\"mono\">{} → {}{}</span>{alert}",
                        esc(&t.src),
                        esc(&t.dst),
                        port
                    ),
                    format!("{} {}", t.src, t.dst),
                ),
                Cell::Html(tag(&t.class, &t.class), t.class.clone()),
                Cell::Mono(t.reason.clone()),
                Cell::Html(approved, t.approved.to_string()),
                Cell::Num(t.packets),
                Cell::Num(t.bytes),
                Cell::Html(
                    t.first_seen.map(time::format_ms).unwrap_or_default(),
                    t.first_seen.unwrap_or(0).to_string(),
                ),
                Cell::Html(
                    t.last_seen.map(time::format_ms).unwrap_or_default(),
                    t.last_seen.unwrap_or(0).to_string(),
                ),
            ]
        })
        .collect();
    if rows.is_empty() {
        note(out, "No tunnel sessions.");
    } else {
        table(
            out,
            &[
                "type",
                "id",
                "source → collector",
                "class",
                "reason",
                "approved",
                "packets",
                "bytes",
                "first seen",
                "last seen",
            ],
            &rows,
            true,
        );
        if r.tunnels_total > r.tunnels.len() as u64 {
            note(
                out,
                &format!(
                    "{} sessions listed of {} (alerted first, then the biggest by bytes).",
                    num(r.tunnels.len() as u64),
                    num(r.tunnels_total)
                ),
            );
        }
    }

    out.push_str("<h3>Top conversations</h3>\n");
    if r.conversations.is_empty() {
        note(
            out,
            "No flow records in the input (replay with --flows to list conversations).",
        );
    } else {
        let mut convs: Vec<_> = r.conversations.iter().collect();
        convs.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(b.0)));
        let rows: Vec<Vec<Cell>> = convs
            .iter()
            .take(TOP_CONVERSATIONS)
            .map(|(k, c)| {
                vec![
                    Cell::Mono(k.src.to_string()),
                    Cell::Mono(k.dst.to_string()),
                    Cell::Id(k.dst_port),
                    Cell::Text(k.proto.clone()),
                    Cell::Num(c.flows),
                    Cell::Num(c.packets),
                    Cell::Html(bytes(c.bytes), c.bytes.to_string()),
                ]
            })
            .collect();
        table(
            out,
            &[
                "source",
                "destination",
                "port",
                "proto",
                "flows",
                "packets",
                "bytes",
            ],
            &rows,
            true,
        );
        let mut extra = format!(
            "The top {} of {} conversations by bytes (from {} flow records).",
            TOP_CONVERSATIONS.min(convs.len()),
            num(convs.len() as u64),
            num(r.flows_total)
        );
        if r.flows_not_aggregated > 0 {
            extra.push_str(&format!(
                " {} flows of further conversations were counted but not aggregated.",
                num(r.flows_not_aggregated)
            ));
        }
        note(out, &extra);
    }
    if !r.tunnel_conversations.is_empty() {
        out.push_str("<h3>Top inner conversations carried by tunnels</h3>\n");
        let mut convs: Vec<_> = r.tunnel_conversations.iter().collect();
        convs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let rows: Vec<Vec<Cell>> = convs
            .iter()
            .take(TOP_CONVERSATIONS)
            .map(|(k, n)| vec![Cell::Mono((*k).clone()), Cell::Num(**n)])
            .collect();
        table(out, &["inner conversation", "packets"], &rows, true);
    }
    out.push_str("</section>\n");
}
