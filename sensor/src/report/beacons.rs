//! Section 3, beacons: per pattern, the beats on a time axis, histograms of their intervals
//! and sizes, and the parts of the score.
//!
//! A beacon alert carries the score's parts and the medians and MADs of interval and size.
//! A connection beacon's beats are its connections, so with `--flows` the `flow` records of
//! the pair give them exactly (start time, bytes the source sent); a packet beacon's bursts
//! are inside one flow, so its alert carries them (`evidence.beacon.beats`, the latest 32).
//! Both cards draw the same timeline and histograms.

use std::fmt::Write as _;

use super::html::{Cell, esc, note, num, section_start, severity, table};
use super::svg;
use super::{Beacon, BeatSource, Report, time};

/// Patterns drawn as cards; the table lists all.
const MAX_CARDS: usize = 20;

pub(super) fn render(r: &Report, out: &mut String) {
    section_start(out, "beacons");
    if r.beacons.is_empty() {
        note(
            out,
            &format!(
                "No beacon patterns ({} beacon alerts in all).",
                num(r.beacon_alerts_total)
            ),
        );
        out.push_str("</section>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">{} patterns from {} beacon alerts (updates included), most severe and most regular first. A connection beacon's beats come from <code>flow</code> records ({} read), a packet beacon's from its alert.</p>",
        num(r.beacons.len() as u64),
        num(r.beacon_alerts_total),
        num(r.flows_total)
    );
    let rows: Vec<Vec<Cell>> = r
        .beacons
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let label = pair(b);
            let link = if i < MAX_CARDS {
                format!("<a href=\"#beacon-{i}\">{}</a>", esc(&label))
            } else {
                esc(&label)
            };
            vec![
                Cell::Html(severity(b.severity), b.severity.to_string()),
                Cell::Html(link, label),
                Cell::Text(b.name.clone().unwrap_or_default()),
                Cell::Text(b.kind.clone()),
                Cell::Html(format!("{:.3}", b.score), format!("{}", b.score)),
                Cell::Html(
                    format!("{:.2} s ± {:.2}", b.interval_s, b.interval_mad_s),
                    format!("{}", b.interval_s),
                ),
                Cell::Html(
                    format!("{:.0} B ± {:.0}", b.size_bytes, b.size_mad_bytes),
                    format!("{}", b.size_bytes),
                ),
                Cell::Num(b.count),
                Cell::Num(b.alerts),
            ]
        })
        .collect();
    table(
        out,
        &[
            "severity",
            "source → destination",
            "name",
            "kind",
            "score",
            "interval",
            "size",
            "beats",
            "alerts",
        ],
        &rows,
        true,
    );
    for (i, b) in r.beacons.iter().enumerate().take(MAX_CARDS) {
        card(r, b, i, out);
    }
    if r.beacons.len() > MAX_CARDS {
        note(
            out,
            &format!(
                "{} more patterns are in the table only.",
                r.beacons.len() - MAX_CARDS
            ),
        );
    }
    out.push_str("</section>\n");
}

fn pair(b: &Beacon) -> String {
    let dst = if b.key.dst.is_ipv6() {
        format!("[{}]:{}", b.key.dst, b.key.dst_port)
    } else {
        format!("{}:{}", b.key.dst, b.key.dst_port)
    };
    match b.src_port {
        Some(p) => format!("{}:{p} → {dst} {}", b.key.src, b.key.proto),
        None => format!("{} → {dst} {}", b.key.src, b.key.proto),
    }
}

fn card(r: &Report, b: &Beacon, i: usize, out: &mut String) {
    let _ = writeln!(
        out,
        "<details class=\"beacon\" id=\"beacon-{i}\" open><summary>{} {}{} · score {:.3} · every {:.2} s · {:.0} bytes</summary>",
        severity(b.severity),
        esc(&pair(b)),
        b.name
            .as_ref()
            .map(|n| format!(" ({})", esc(n)))
            .unwrap_or_default(),
        b.score,
        b.interval_s,
        b.size_bytes
    );
    out.push_str("<div class=\"grid\">");
    out.push_str(&svg::scores(
        "score parts",
        &[
            ("timing", b.timing_score),
            ("size", b.size_score),
            ("score", b.score),
        ],
        r.beacon_threshold,
    ));
    let span = match (b.first_seen, b.last_seen) {
        (Some(a), Some(z)) => format!(
            "{} → {} ({})",
            time::format_ms(a),
            time::format_ms(z),
            time::format_duration(z - a)
        ),
        _ => String::new(),
    };
    let facts = vec![
        vec![
            Cell::Text("signature".into()),
            Cell::Mono(b.signature.clone()),
        ],
        vec![
            Cell::Text("interval".into()),
            Cell::Text(format!(
                "median {:.3} s, MAD {:.3} s",
                b.interval_s, b.interval_mad_s
            )),
        ],
        vec![
            Cell::Text("size".into()),
            Cell::Text(format!(
                "median {:.0} bytes, MAD {:.0} bytes",
                b.size_bytes, b.size_mad_bytes
            )),
        ],
        vec![
            Cell::Text("beats".into()),
            Cell::Text(format!("{} (the score uses the latest 32)", num(b.count))),
        ],
        vec![Cell::Text("beats seen".into()), Cell::Text(span)],
        vec![
            Cell::Text("alerts".into()),
            Cell::Text(format!(
                "{} (first at {})",
                num(b.alerts),
                b.first_alert.map(time::format_ms).unwrap_or_default()
            )),
        ],
    ];
    table(out, &["", ""], &facts, false);
    out.push_str("</div>");
    let (beats, source) = r.beats_of(b);
    if beats.len() >= 2 {
        let intervals: Vec<f64> = beats
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) as f64 / 1e6)
            .collect();
        let sizes: Vec<f64> = beats.iter().map(|x| x.1 as f64).collect();
        out.push_str(&svg::timeline(
            &format!("beats of {}", pair(b)),
            beats,
            b.first_seen.zip(b.last_seen),
            "#c62828",
        ));
        out.push_str("<div class=\"grid\">");
        out.push_str(&svg::histogram(
            "intervals between beats",
            &intervals,
            30,
            "#1565c0",
            "interval between beats (s) · band = median ± MAD",
            Some((b.interval_s, b.interval_mad_s)),
        ));
        out.push_str(&svg::histogram(
            "bytes per beat",
            &sizes,
            30,
            "#ef6c00",
            match source {
                BeatSource::Flows => "bytes sent per beat (flow records)",
                BeatSource::Evidence => "payload bytes per burst (alert evidence)",
            },
            None,
        ));
        out.push_str("</div>");
        let text = match source {
            BeatSource::Flows => format!(
                "{} beats from flow records of this pair{}. A flow record counts every packet of the connection, the detector its bytes up to the close, so the sizes here can exceed the alert's median by the last ACKs.",
                num(beats.len() as u64),
                if beats.len() >= super::MAX_BEATS {
                    " (the latest only)"
                } else {
                    ""
                }
            ),
            BeatSource::Evidence => format!(
                "{} bursts from the alert's evidence{}: the beats the score used, each the time of its first packet and the payload bytes the source sent in it.",
                num(beats.len() as u64),
                if (beats.len() as u64) < b.count {
                    " (the latest only)"
                } else {
                    ""
                }
            ),
        };
        note(out, &text);
    } else if b.kind == "connections" {
        note(
            out,
            "The beat times are not in the alert; replay with --flows to draw this pair's beats from its flow records.",
        );
    } else {
        note(
            out,
            "This alert carries no beats (an events file from an older release): the evidence above is all it holds.",
        );
    }
    out.push_str("</details>\n");
}
