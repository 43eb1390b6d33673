//! The page around the sections: inline CSS, the navigation, escaping, tables, and the small
//! optional script that sorts a table when its header is clicked.
//!
//! Every table is written already sorted in its most useful order, so the page reads fully
//! without the script; `data-v` attributes carry the raw values the script sorts by.

use std::fmt::Write as _;

use super::Report;

/// Section ids and titles, in page order (the summary links to them).
pub(super) const SECTIONS: [(&str, &str); 6] = [
    ("summary", "1 Summary"),
    ("mirror-map", "2 Mirror map"),
    ("beacons", "3 Beacons"),
    ("extraneous", "4 Extraneous packets"),
    ("inventory", "5 Tunnel inventory and top conversations"),
    ("not-understood", "6 What was not understood"),
];

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5b6577;--line:#d9dee7;--bg:#f6f7fa;--card:#fff;--mirror:#c62828;--overlay:#1565c0;--unknown:#757575;--ok:#2e7d32;--warn:#ef6c00}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c5cbd6}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:8px 28px;display:flex;gap:18px;flex-wrap:wrap}
nav a{color:#1d2330;text-decoration:none;font-weight:600}
nav a:hover{text-decoration:underline}
main{padding:8px 28px 40px;max-width:1400px}
section{background:var(--card);border:1px solid var(--line);border-radius:6px;margin:18px 0;padding:6px 20px 16px}
h2{font-size:18px;margin:12px 0 8px}
h3{font-size:15px;margin:16px 0 6px}
p.note{color:var(--muted);margin:6px 0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:10px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:150px;background:#fbfcfe}
.card b{display:block;font-size:20px}
.card span{color:var(--muted);font-size:12px}
.card.alarm b{color:var(--mirror)}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
td:first-child{white-space:nowrap}
th,td{border-bottom:1px solid var(--line);padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600;white-space:nowrap}
th.sortable{cursor:pointer}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
.tag{white-space:nowrap;display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;font-weight:600;color:#fff}
.tag.mirror{background:var(--mirror)}.tag.overlay{background:var(--overlay)}.tag.unknown{background:var(--unknown)}
.tag.sev1{background:#b71c1c}.tag.sev2{background:var(--warn)}.tag.sev3{background:#9e9d24}
.tag.no{background:var(--mirror)}.tag.yes{background:var(--ok)}
.tag.out{background:#6a1b9a}.tag.in{background:#00796b}
.grid{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
details.beacon{border:1px solid var(--line);border-radius:6px;margin:10px 0;padding:4px 12px}
details.beacon summary{cursor:pointer;font-weight:600;padding:4px 0}
svg{display:block;background:#fff}
svg text{font-family:system-ui,"DejaVu Sans",sans-serif;fill:#1d2330}
.scroll{overflow-x:auto;max-height:620px;overflow-y:auto}
"#;

// Sorting only: the tables are already in a useful order, this adds the others.
const SCRIPT: &str = r#"
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.classList.add('sortable');th.title='sort';
    th.addEventListener('click',function(){
      var body=t.tBodies[0];if(!body)return;
      var rows=Array.prototype.slice.call(body.rows);
      var asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';
      rows.sort(function(a,b){
        var x=a.cells[i],y=b.cells[i];if(!x||!y)return 0;
        var u=x.dataset.v!==undefined?x.dataset.v:x.textContent,v=y.dataset.v!==undefined?y.dataset.v:y.textContent;
        var p=parseFloat(u),q=parseFloat(v);
        var c=(!isNaN(p)&&!isNaN(q)&&String(p)===u.trim()&&String(q)===v.trim())?p-q:u.localeCompare(v);
        return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
document.documentElement.dataset.script='ran';
"#;

/// The whole page, around the sections `body` writes (the sections use this module's
/// helpers, so the page does not call them itself).
pub(super) fn page(r: &Report, body: impl FnOnce(&mut String)) -> String {
    let mut out = String::with_capacity(256 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    // No network: the policy forbids every fetch, so the page cannot leak or break offline.
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">");
    out.push_str("<title>mirrorwatch report</title><style>");
    out.push_str(CSS);
    out.push_str("</style></head><body>\n<header><h1>mirrorwatch hunting report</h1><p>");
    let inputs = match r.inputs.len() {
        0 => "events".to_owned(),
        1 => r.inputs[0].clone(),
        n => format!("{} and {} more inputs", r.inputs[0], n - 1),
    };
    out.push_str(&esc(&inputs));
    if let Some((a, b)) = r.span {
        let _ = write!(
            out,
            " · {} → {} UTC",
            super::time::format_ms(a),
            super::time::format_ms(b)
        );
    }
    out.push_str("</p></header>\n<nav>");
    for (id, title) in SECTIONS {
        let _ = write!(out, "<a href=\"#{id}\">{}</a>", esc(title));
    }
    out.push_str("</nav>\n<main>\n");
    body(&mut out);
    out.push_str("</main>\n<script>");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body></html>\n");
    out
}

/// Opens a section.
pub(super) fn section_start(out: &mut String, id: &str) {
    let title = SECTIONS
        .iter()
        .find(|(i, _)| *i == id)
        .map_or(id, |(_, t)| t);
    let _ = writeln!(
        out,
        "<section id=\"{id}\" data-section=\"{id}\"><h2>{}</h2>",
        esc(title)
    );
}

/// HTML text escaping (also safe inside double-quoted attributes).
pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `1 234 567` (thin grouping, readable at a glance).
pub(super) fn num(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            o.push('\u{202f}');
        }
        o.push(c);
    }
    o
}

/// Bytes in KiB/MiB/GiB.
pub(super) fn bytes(n: u64) -> String {
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else if f < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", f / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", f / 1024.0 / 1024.0 / 1024.0)
    }
}

/// A cell of a table.
pub(super) enum Cell {
    /// Text, escaped.
    Text(String),
    /// Monospace text, escaped.
    Mono(String),
    /// A number, right-aligned, sorted numerically.
    Num(u64),
    /// An identifier or port: right-aligned and sorted numerically, but not digit-grouped.
    Id(u64),
    /// Pre-built HTML with the value to sort by.
    Html(String, String),
}

/// A table with a header; `sortable` adds the script's click-to-sort.
pub(super) fn table(out: &mut String, headers: &[&str], rows: &[Vec<Cell>], sortable: bool) {
    out.push_str("<div class=\"scroll\"><table");
    if sortable {
        out.push_str(" class=\"sortable\"");
    }
    out.push_str("><thead><tr>");
    let numeric: Vec<bool> = (0..headers.len())
        .map(|i| {
            rows.first()
                .and_then(|r| r.get(i))
                .is_some_and(|c| matches!(c, Cell::Num(_) | Cell::Id(_)))
        })
        .collect();
    for (h, n) in headers.iter().zip(&numeric) {
        let _ = write!(
            out,
            "<th{}>{}</th>",
            if *n { " class=\"n\"" } else { "" },
            esc(h)
        );
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            match cell {
                Cell::Text(s) => {
                    let _ = write!(out, "<td>{}</td>", esc(s));
                }
                Cell::Mono(s) => {
                    let _ = write!(out, "<td class=\"mono\">{}</td>", esc(s));
                }
                Cell::Num(n) => {
                    let _ = write!(out, "<td class=\"n\" data-v=\"{n}\">{}</td>", num(*n));
                }
                Cell::Id(n) => {
                    let _ = write!(out, "<td class=\"n\" data-v=\"{n}\">{n}</td>");
                }
                Cell::Html(h, v) => {
                    let _ = write!(out, "<td data-v=\"{}\">{h}</td>", esc(v));
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

/// A coloured label.
pub(super) fn tag(class: &str, text: &str) -> String {
    format!("<span class=\"tag {}\">{}</span>", esc(class), esc(text))
}

/// A severity label.
pub(super) fn severity(sev: u64) -> String {
    tag(&format!("sev{sev}"), &format!("severity {sev}"))
}

/// A note paragraph.
pub(super) fn note(out: &mut String, text: &str) {
    let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(text));
}
