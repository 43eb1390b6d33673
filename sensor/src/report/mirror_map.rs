//! Section 2, the mirror map: who mirrors what to whom.
//!
//! Three columns: mirror sources, tunnel sessions (type and id) and collectors. A session's
//! fill is its class (mirror, overlay, unknown), its edges are solid and heavy when it is not
//! approved, thin and dashed when it is; addresses inside `[networks] home` are teal, outside
//! purple. At most `MAX_GRAPH_SESSIONS` sessions are drawn (alerted ones first, then the
//! biggest); the inventory table in section 5 lists them all. Control-plane sessions
//! (`mirror_session` events) are listed beside the graph when the input has any.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::html::{Cell, esc, note, num, section_start, severity, table, tag};
use super::{Report, TunnelRow, time};

/// Sessions drawn on the graph.
const MAX_GRAPH_SESSIONS: usize = 40;

fn class_colour(class: &str) -> &'static str {
    match class {
        "mirror" => "#c62828",
        "overlay" => "#1565c0",
        _ => "#757575",
    }
}

pub(super) fn render(r: &Report, out: &mut String) {
    section_start(out, "mirror-map");
    if r.tunnels.is_empty() {
        note(out, "No tunnel sessions in the input.");
        out.push_str(&graph(r, &[]));
    } else {
        let shown = r.tunnels.len().min(MAX_GRAPH_SESSIONS);
        let _ = writeln!(
            out,
            "<p class=\"note\">{} tunnel sessions; the graph shows {} of them (alerted first, then by bytes). Every session is in the <a href=\"#inventory\">inventory</a>.</p>",
            num(r.tunnels_total),
            num(shown as u64)
        );
        out.push_str("<div class=\"grid\"><div class=\"scroll\" style=\"max-height:none\">");
        out.push_str(&graph(r, &r.tunnels[..shown]));
        out.push_str("</div>");
        control_plane(r, out);
        out.push_str("</div>\n");
    }
    if r.tunnels.is_empty() {
        control_plane(r, out);
    }
    out.push_str("<h3>Mirror alerts</h3>\n");
    if r.mirror_alerts.is_empty() {
        note(out, "No mirror_stream alerts.");
    } else {
        let rows: Vec<Vec<Cell>> = r
            .mirror_alerts
            .iter()
            .map(|a| {
                vec![
                    Cell::Text(a.time.map(time::format_ms).unwrap_or_default()),
                    Cell::Html(severity(a.severity), a.severity.to_string()),
                    Cell::Mono(a.signature.clone()),
                    Cell::Mono(format!("{} → {}", a.src, a.dst)),
                    Cell::Html(
                        format!(
                            "{} {}",
                            tag(
                                if r.is_home(&a.dst) { "in" } else { "out" },
                                if r.is_home(&a.dst) { "home" } else { "outside" }
                            ),
                            esc(&a.dst)
                        ),
                        a.dst.clone(),
                    ),
                    Cell::Text(format!("{} {}", a.kind, a.id)),
                    Cell::Html(tag(&a.class, &a.class), a.class.clone()),
                    Cell::Num(a.packets),
                    Cell::Num(a.inner_flows),
                ]
            })
            .collect();
        table(
            out,
            &[
                "time",
                "severity",
                "signature",
                "source → collector",
                "collector",
                "tunnel",
                "class",
                "packets",
                "inner flows",
            ],
            &rows,
            true,
        );
        if r.mirror_alerts_total > r.mirror_alerts.len() as u64 {
            note(
                out,
                &format!(
                    "{} more mirror alerts not listed.",
                    r.mirror_alerts_total - r.mirror_alerts.len() as u64
                ),
            );
        }
    }
    out.push_str("</section>\n");
}

fn control_plane(r: &Report, out: &mut String) {
    if r.mirror_sessions.is_empty() {
        return;
    }
    out.push_str("<div><h3>Control-plane mirror sessions</h3>\n");
    // Columns: the fields the first sessions have, in their order (the event is another
    // helper's and may grow; every field is shown as text).
    let mut columns: Vec<String> = Vec::new();
    for s in r.mirror_sessions.iter().take(50) {
        for (k, _) in s {
            if !columns.contains(k) && columns.len() < 12 {
                columns.push(k.clone());
            }
        }
    }
    let rows: Vec<Vec<Cell>> = r
        .mirror_sessions
        .iter()
        .map(|s| {
            let m: BTreeMap<&str, &str> = s.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            columns
                .iter()
                .map(|c| Cell::Mono(m.get(c.as_str()).copied().unwrap_or("").to_owned()))
                .collect()
        })
        .collect();
    let headers: Vec<&str> = columns.iter().map(String::as_str).collect();
    table(out, &headers, &rows, true);
    if r.mirror_sessions_total > r.mirror_sessions.len() as u64 {
        note(
            out,
            &format!(
                "{} more control-plane sessions not listed.",
                r.mirror_sessions_total - r.mirror_sessions.len() as u64
            ),
        );
    }
    out.push_str("</div>\n");
}

/// The graph of `sessions`.
fn graph(r: &Report, sessions: &[TunnelRow]) -> String {
    // Group sessions by collector then source, so edges into one collector sit together.
    let mut sessions: Vec<&TunnelRow> = sessions.iter().collect();
    sessions.sort_by(|a, b| {
        (a.dst.as_str(), a.src.as_str(), a.kind.as_str(), a.id).cmp(&(
            b.dst.as_str(),
            b.src.as_str(),
            b.kind.as_str(),
            b.id,
        ))
    });
    let row = 34.0;
    let top = 66.0;
    let height = (top + sessions.len().max(1) as f64 * row + 20.0).max(120.0);
    // Each endpoint sits at the mean height of its sessions, then is pushed down to keep a
    // row's distance from the one above.
    let place = |key: &dyn Fn(&TunnelRow) -> &str| -> Vec<(String, f64)> {
        let mut sum: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for (i, s) in sessions.iter().enumerate() {
            let e = sum.entry(key(s)).or_default();
            e.0 += top + i as f64 * row;
            e.1 += 1.0;
        }
        let mut nodes: Vec<(String, f64)> = sum
            .into_iter()
            .map(|(k, (y, n))| (k.to_owned(), y / n))
            .collect();
        nodes.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut last = f64::NEG_INFINITY;
        for n in &mut nodes {
            n.1 = n.1.max(last + row);
            last = n.1;
        }
        nodes
    };
    let sources = place(&|s: &TunnelRow| s.src.as_str());
    let collectors = place(&|s: &TunnelRow| s.dst.as_str());
    let height = sources
        .iter()
        .chain(&collectors)
        .map(|n| n.1 + 40.0)
        .fold(height, f64::max);
    let (xs, xt, xc) = (10.0, 320.0, 640.0);
    let (ws, wt, wc) = (200.0, 220.0, 200.0);
    let width = xc + wc + 10.0;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg class=\"chart\" id=\"mirror-graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height:.0}\" viewBox=\"0 0 {width} {height:.0}\" role=\"img\" aria-label=\"mirror map\"><title>mirror map: sources, tunnel sessions, collectors</title>"
    );
    for (x, t) in [
        (xs + ws / 2.0, "mirror sources"),
        (xt + wt / 2.0, "tunnel sessions"),
        (xc + wc / 2.0, "collectors"),
    ] {
        let _ = write!(
            o,
            "<text x=\"{x}\" y=\"44\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{t}</text>"
        );
    }
    legend(&mut o, 16.0);
    if sessions.is_empty() {
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">no tunnel sessions</text>",
            width / 2.0,
            top + 20.0
        );
    }
    let y_of =
        |nodes: &[(String, f64)], k: &str| nodes.iter().find(|n| n.0 == k).map_or(top, |n| n.1);
    // Edges first, nodes over them.
    for (i, s) in sessions.iter().enumerate() {
        let y = top + i as f64 * row;
        let ys = y_of(&sources, &s.src);
        let yc = y_of(&collectors, &s.dst);
        let colour = class_colour(&s.class);
        let style = if s.approved {
            "stroke-width=\"1.2\" stroke-dasharray=\"5 4\" opacity=\"0.7\""
        } else {
            "stroke-width=\"2.6\""
        };
        for (x1, y1, x2, y2) in [(xs + ws, ys, xt, y), (xt + wt, y, xc, yc)] {
            let mx = (x1 + x2) / 2.0;
            let _ = write!(
                o,
                "<path d=\"M{x1:.1},{y1:.1} C{mx:.1},{y1:.1} {mx:.1},{y2:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"{colour}\" {style}/>"
            );
        }
    }
    for (nodes, x, w) in [(&sources, xs, ws), (&collectors, xc, wc)] {
        for (ip, y) in nodes.iter() {
            let home = r.is_home(ip);
            let (stroke, fill, label) = if home {
                ("#00796b", "#e0f2f1", "home")
            } else {
                ("#6a1b9a", "#f3e5f5", "outside")
            };
            let _ = write!(
                o,
                "<g class=\"node {}\"><rect x=\"{x}\" y=\"{:.1}\" width=\"{w}\" height=\"26\" rx=\"13\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"{stroke}\">{label}</text><title>{} ({label})</title></g>",
                if home { "home" } else { "outside" },
                y - 13.0,
                if home { 1.2 } else { 2.4 },
                x + 10.0,
                y + 4.0,
                esc(&truncate(ip, 22)),
                x + w - 10.0,
                y + 4.0,
                esc(ip)
            );
        }
    }
    for (i, s) in sessions.iter().enumerate() {
        let y = top + i as f64 * row;
        let colour = class_colour(&s.class);
        let depth = if s.depth > 0 {
            format!(" · depth {}", s.depth)
        } else {
            String::new()
        };
        let status = if s.approved {
            "approved"
        } else {
            "NOT approved"
        };
        let _ = write!(
            o,
            "<g class=\"session {}\"><rect x=\"{xt}\" y=\"{:.1}\" width=\"{wt}\" height=\"26\" rx=\"4\" fill=\"{colour}\" fill-opacity=\"{}\" stroke=\"{}\" stroke-width=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#fff\" style=\"fill:#fff\">{} {}{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" style=\"fill:#fff\">{}{}</text><title>{} {} {} → {}: {}, {} ({}), {} packets</title></g>",
            esc(&s.class),
            y - 13.0,
            // Approved sessions recede; the unapproved ones are what a hunter looks at.
            if s.approved { 0.6 } else { 1.0 },
            if s.approved { "#2e7d32" } else { "#000" },
            if s.alerted { 2.5 } else { 0.5 },
            xt + 8.0,
            y + 4.0,
            esc(&s.kind),
            s.id,
            esc(&depth),
            xt + wt - 8.0,
            y + 4.0,
            if s.alerted { "⚠ " } else { "" },
            if s.approved { "✓" } else { "✗" },
            esc(&s.kind),
            s.id,
            esc(&s.src),
            esc(&s.dst),
            esc(&s.class),
            esc(&s.reason),
            status,
            s.packets
        );
    }
    o.push_str("</svg>");
    o
}

fn legend(o: &mut String, y: f64) {
    let mut x = 10.0;
    for (c, t) in [
        ("#c62828", "mirror"),
        ("#1565c0", "overlay"),
        ("#757575", "unknown"),
    ] {
        let _ = write!(
            o,
            "<rect x=\"{x}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{c}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{t}</text>",
            y - 10.0,
            x + 16.0,
            y
        );
        x += 80.0;
    }
    let _ = write!(
        o,
        "<line x1=\"{x}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#333\" stroke-width=\"2.6\"/><text x=\"{2}\" y=\"{y:.1}\" font-size=\"11\">✗ not approved</text>",
        y - 4.0,
        x + 26.0,
        x + 30.0
    );
    x += 130.0;
    let _ = write!(
        o,
        "<line x1=\"{x}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#333\" stroke-width=\"1.2\" stroke-dasharray=\"5 4\"/><text x=\"{2}\" y=\"{y:.1}\" font-size=\"11\">✓ approved</text>",
        y - 4.0,
        x + 26.0,
        x + 30.0
    );
    x += 110.0;
    let _ = write!(
        o,
        "<rect x=\"{x}\" y=\"{:.1}\" width=\"22\" height=\"12\" rx=\"6\" fill=\"#e0f2f1\" stroke=\"#00796b\"/><text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\">home</text>",
        y - 10.0,
        x + 26.0
    );
    x += 70.0;
    let _ = write!(
        o,
        "<rect x=\"{x}\" y=\"{:.1}\" width=\"22\" height=\"12\" rx=\"6\" fill=\"#f3e5f5\" stroke=\"#6a1b9a\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\">outside home</text><text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\">⚠ = alerted</text>",
        y - 10.0,
        x + 26.0,
        x + 120.0
    );
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
