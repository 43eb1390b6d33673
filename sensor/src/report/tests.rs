//! The report's data against the events it was built from.

use super::*;

const EVENTS: &str = r#"
{"timestamp":"2026-01-05T09:00:00.000000Z","event_type":"tunnel","src_ip":"10.10.0.5","src_port":1,"dest_ip":"203.0.113.50","dest_port":4789,"proto":"udp","tunnel":{"type":"vxlan","id":100,"depth":0,"link":1},"packets":10,"bytes":1000,"first_seen":"2026-01-05T09:00:00.000000Z","last_seen":"2026-01-05T09:00:05.000000Z","classification":{"class":"mirror","reason":"one_way_both_directions"},"approved":false,"top_conversations":[{"src_ip":"10.0.0.1","src_port":5,"dest_ip":"10.0.0.2","dest_port":80,"proto":"tcp","packets":7}]}
{"timestamp":"2026-01-05T09:00:00.000000+0000","event_type":"tunnel","src_ip":"10.0.0.11","dest_ip":"10.0.0.12","dest_port":4789,"proto":"udp","tunnel":{"type":"vxlan","id":5000},"packets":3,"bytes":5000,"classification":{"class":"overlay","reason":"inner_directions_follow_outer"},"approved":true}
{"timestamp":"2026-01-05T09:00:01.000000+0000","event_type":"alert","src_ip":"10.10.0.5","dest_ip":"203.0.113.50","proto":"udp","detector":"mirror_stream","alert":{"signature":"mirror.unapproved_collector","severity":1,"action":"allowed","gid":1,"rev":1},"tunnel":{"type":"vxlan","id":100},"evidence":{"classification":{"class":"mirror"},"finding":"unapproved_collector","packets":4}}
{"timestamp":"2026-01-05T09:00:02Z","event_type":"alert","src_ip":"10.30.0.10","src_port":44816,"dest_ip":"192.0.2.40","dest_port":80,"proto":"tcp","detector":"extraneous_packet","alert":{"signature":"extraneous.after_close","severity":3},"evidence":{"reason":"after_close","count":3,"sample":{"tcp_flags":"18","seq":7},"conn_state":"SF","history":"ShADdFf","flow_packets":[8,4]}}
{"timestamp":"2026-01-05T09:00:03Z","event_type":"alert","src_ip":"10.30.0.10","src_port":44817,"dest_ip":"192.0.2.40","dest_port":80,"proto":"tcp","detector":"extraneous_packet","alert":{"signature":"extraneous.after_close","severity":3},"evidence":{"reason":"after_close","count":2}}
{"timestamp":"2026-01-05T09:00:04Z","event_type":"alert","src_ip":"10.30.0.10","src_port":44818,"dest_ip":"192.0.2.41","dest_port":80,"proto":"tcp","detector":"extraneous_packet","alert":{"signature":"extraneous.duplicate_packet","severity":2},"evidence":{"reason":"duplicate_packet","count":1}}
{"timestamp":"2026-01-05T09:00:40Z","event_type":"alert","src_ip":"10.30.0.12","src_port":null,"dest_ip":"203.0.113.12","dest_port":443,"proto":"tcp","detector":"beacon","alert":{"signature":"beacon.fixed_interval","severity":2},"evidence":{"beacon":{"kind":"connections","interval_s":10.0,"interval_mad_s":0.0,"size_bytes":354.0,"size_mad_bytes":0.0,"count":4,"timing_score":1.0,"size_score":1.0,"score":1.0,"first_seen":"2026-01-05T09:00:10Z","last_seen":"2026-01-05T09:00:40Z","update":false},"destination":{"name":"c2.example","first_seen":false,"in_baseline":false}}}
{"timestamp":"2026-01-05T09:01:30Z","event_type":"alert","src_ip":"10.30.0.12","dest_ip":"203.0.113.12","dest_port":443,"proto":"tcp","detector":"beacon","alert":{"signature":"beacon.fixed_interval","severity":1},"evidence":{"beacon":{"kind":"connections","interval_s":10.0,"interval_mad_s":0.1,"size_bytes":354.0,"size_mad_bytes":0.0,"count":9,"timing_score":0.99,"size_score":1.0,"score":0.99,"update":true},"destination":{}}}
{"timestamp":"2026-01-05T09:01:31Z","event_type":"alert","src_ip":"10.30.0.13","dest_ip":"203.0.113.13","dest_port":443,"proto":"tcp","detector":"beacon","alert":{"signature":"beacon.new_destination","severity":3},"evidence":{"destination":{"first_seen":true}}}
{"timestamp":"2026-01-05T09:00:10Z","event_type":"flow","src_ip":"10.30.0.12","src_port":5000,"dest_ip":"203.0.113.12","dest_port":443,"proto":"tcp","flow":{"pkts_toserver":3,"pkts_toclient":2,"bytes_toserver":354,"bytes_toclient":100,"start":"2026-01-05T09:00:10Z","reason":"timeout"}}
{"timestamp":"2026-01-05T09:00:20Z","event_type":"flow","src_ip":"10.30.0.12","src_port":5001,"dest_ip":"203.0.113.12","dest_port":443,"proto":"tcp","flow":{"pkts_toserver":3,"pkts_toclient":2,"bytes_toserver":350,"bytes_toclient":100,"start":"2026-01-05T09:00:20Z","reason":"timeout"}}
{"timestamp":"2026-01-05T09:00:30Z","event_type":"flow","src_ip":"10.30.0.12","src_port":5002,"dest_ip":"203.0.113.12","dest_port":443,"proto":"tcp","flow":{"pkts_toserver":3,"pkts_toclient":2,"bytes_toserver":358,"bytes_toclient":100,"start":"2026-01-05T09:00:30Z","reason":"timeout"}}
{"timestamp":"2026-01-05T09:00:30Z","event_type":"flow","src_ip":"10.30.0.12","src_port":5002,"dest_ip":"203.0.113.12","dest_port":443,"proto":"tcp","flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":50,"bytes_toclient":0,"start":"2026-01-05T09:00:30Z","reason":"active"}}
{"timestamp":"2026-01-05T09:00:00Z","event_type":"mirror_session","session":{"id":7,"source":"switch1"},"dest_ip":"203.0.113.50"}
{"timestamp":"2026-01-05T09:00:00Z","event_type":"anomaly","src_ip":"10.0.0.1"}
this is not json
[1,2]
{"timestamp":"2026-01-05T15:00:00Z","event_type":"stats","stats":{"packets":1000,"bytes":90000,"non_ip_packets":2,"encapsulated_packets":13,"decoder":{"decoder.vxlan.bad_flags":5,"decoder.packet.truncated":20},"queue_drops":3,"capture":{"kernel_dropped":4}}}
"#;

fn report() -> Report {
    let options = ReportOptions {
        inputs: vec!["a.pcap".into()],
        home: vec!["10.0.0.0/8".parse().unwrap()],
        beacon_threshold: 0.85,
    };
    Report::from_reader(EVENTS.as_bytes(), options).unwrap()
}

#[test]
fn counts_every_line_and_event_type() {
    let r = report();
    assert_eq!(r.lines, 18);
    assert_eq!(r.bad_lines, 2);
    assert_eq!(r.first_bad_line.as_ref().map(|x| x.0), Some(16));
    assert_eq!(r.event_types["alert"], 7);
    assert_eq!(r.event_types["flow"], 4);
    assert_eq!(r.unknown_event_types.len(), 1);
    assert_eq!(r.unknown_event_types["anomaly"], 1);
    // The stats event's time is not a packet time; both timestamp spellings count.
    let (a, b) = r.span.unwrap();
    assert_eq!(time::format_ms(a), "2026-01-05 09:00:00.000");
    assert_eq!(time::format_ms(b), "2026-01-05 09:01:31.000");
}

#[test]
fn alerts_by_detector_severity_and_signature() {
    let r = report();
    assert_eq!(r.alerts_total(), 7);
    assert_eq!(r.alerts_by_detector["extraneous_packet"][&3], 2);
    assert_eq!(r.alerts_by_detector["extraneous_packet"][&2], 1);
    assert_eq!(r.alerts_by_detector["beacon"].values().sum::<u64>(), 3);
    assert_eq!(r.alerts_by_signature["extraneous.after_close"], 2);
    assert_eq!(r.mirror_alerts_total, 1);
}

#[test]
fn extraneous_grouped_by_reason_with_packets() {
    let r = report();
    assert_eq!(r.extraneous_total, 3);
    assert_eq!(r.extraneous_by_reason["after_close"], (2, 5));
    assert_eq!(r.extraneous_by_reason["duplicate_packet"], (1, 1));
    let first = &r.extraneous[0];
    assert_eq!(first.conn_state, "SF");
    assert_eq!(first.flow_packets, "8 / 4");
    assert_eq!(first.sample, "seq=7 tcp_flags=18");
    assert_eq!(first.flow, "10.30.0.10:44816 → 192.0.2.40:80 tcp");
}

#[test]
fn beacon_alerts_group_into_one_pattern_with_its_beats() {
    let r = report();
    assert_eq!(r.beacon_alerts_total, 3);
    // The first alert and its update are one pattern; new_destination has none.
    assert_eq!(r.beacons.len(), 1);
    let b = &r.beacons[0];
    assert_eq!(b.alerts, 2);
    assert_eq!(b.severity, 1);
    assert_eq!(b.count, 9);
    assert!((b.interval_mad_s - 0.1).abs() < 1e-9);
    assert_eq!(b.name.as_deref(), Some("c2.example"));
    // Three connections; the `active` interim record is not a beat.
    let (beats, source) = r.beats_of(b);
    assert_eq!(source, BeatSource::Flows);
    assert_eq!(beats.len(), 3);
    assert_eq!(
        beats.iter().map(|x| x.1).collect::<Vec<_>>(),
        [354, 350, 358]
    );
    assert_eq!(beats[1].0 - beats[0].0, 10_000_000);
}

#[test]
fn tunnels_conversations_and_stats() {
    let r = report();
    assert_eq!(r.tunnels_total, 2);
    assert_eq!(r.tunnels_by_class["mirror"], 1);
    assert_eq!(r.tunnels_by_class["overlay"], 1);
    // The alerted session first, although the other carried more bytes.
    assert!(r.tunnels[0].alerted);
    assert_eq!(r.tunnels[0].id, 100);
    assert!(!r.tunnels[1].alerted);
    assert_eq!(r.tunnel_conversations["10.0.0.1:5 → 10.0.0.2:80 tcp"], 7);
    let conv = r.conversations.values().next().unwrap();
    assert_eq!(r.conversations.len(), 1);
    assert_eq!((conv.flows, conv.packets, conv.bytes), (4, 16, 1412));
    let s = r.stats.as_ref().unwrap();
    assert_eq!(s.packets, 1000);
    assert_eq!(s.decoder["decoder.packet.truncated"], 20);
    assert_eq!((s.queue_drops, s.kernel_dropped), (3, 4));
    assert_eq!(r.mirror_sessions_total, 1);
    assert!(r.mirror_sessions[0].contains(&("session.id".to_owned(), "7".to_owned())));
    assert!(r.is_home("10.10.0.5"));
    assert!(!r.is_home("203.0.113.50"));
}

#[test]
fn page_has_every_section_and_escapes_input() {
    let mut r = report();
    r.inputs = vec!["<script>alert(1)</script>.pcap".into()];
    let page = r.render();
    for (id, _) in html::SECTIONS {
        assert!(page.contains(&format!("<section id=\"{id}\"")), "{id}");
    }
    assert!(!page.contains("<script>alert(1)"));
    assert!(page.contains("&lt;script&gt;alert(1)"));
    // Nothing is fetched: no URL to another origin anywhere on the page (the SVG namespace
    // is an identifier, not a fetch).
    let without_ns = page.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
    // The beacon card drew its beats: three stems.
    assert_eq!(page.matches("bytes</title></circle>").count(), 3);
}

/// Suricata's EVE form (issue of the `eve` branch): `+0000` times, absent values omitted,
/// Suricata's counters beside ours in `stats`.
#[test]
fn eve_form_events_are_read_alike() {
    let lines = r#"{"timestamp":"2026-01-05T09:00:00.292458+0000","flow_id":1599828218888955,"event_type":"flow","src_ip":"10.10.0.5","src_port":54622,"dest_ip":"198.51.100.20","dest_port":80,"proto":"tcp","community_id":"1:W3Pv9q9SVaXRsVh0uu+pDp7nzSw=","pcap_filename":"pcaps/mirror-vxlan/input.pcap","flow":{"pkts_toserver":6,"pkts_toclient":4,"bytes_toserver":361,"bytes_toclient":2656,"start":"2026-01-05T09:00:00.292458+0000","end":"2026-01-05T09:00:00.403382+0000","age":0,"reason":"shutdown"}}
{"timestamp":"2026-01-05T09:00:00.300000+0000","event_type":"flow","src_ip":"10.10.0.5","dest_ip":"198.51.100.20","proto":"icmp","icmp_type":8,"flow":{"pkts_toserver":2,"pkts_toclient":2,"bytes_toserver":168,"bytes_toclient":168,"start":"2026-01-05T09:00:00.300000+0000","reason":"timeout"}}
{"timestamp":"2026-01-05T09:00:01.567703+0000","event_type":"stats","pcap_filename":"pcaps/mirror-vxlan/input.pcap","stats":{"decoder":{"pkts":26,"bytes":7772,"decoder.vxlan.bad_flags":2},"flow":{"total":4,"mgr":{"flows_timeout":0,"flows_evicted":1}},"capture":{"kernel_drops":5}}}"#;
    let r = Report::from_reader(lines.as_bytes(), ReportOptions::default()).unwrap();
    let s = r.stats.as_ref().unwrap();
    assert_eq!(
        (s.packets, s.bytes, s.flows_created, s.flows_evicted),
        (26, 7772, 4, 1)
    );
    assert_eq!(s.kernel_dropped, 5);
    assert_eq!(s.decoder.len(), 1, "{:?}", s.decoder);
    assert_eq!(r.conversations.len(), 2);
    // The stats event is not packet time.
    assert_eq!(r.span.map(|(a, b)| b - a), Some(7_542));
    assert_eq!(r.pcap_files.len(), 1);
    assert!(r.render().contains("1 named by the events"));
}

#[test]
fn an_overlong_line_is_counted_and_skipped() {
    let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
    input.push(b'\n');
    input
        .extend_from_slice(br#"{"event_type":"alert","detector":"beacon","alert":{"severity":3}}"#);
    let r = Report::from_reader(
        std::io::BufReader::new(&input[..]),
        ReportOptions::default(),
    )
    .unwrap();
    assert_eq!((r.lines, r.bad_lines), (2, 1));
    assert!(r.first_bad_line.as_ref().unwrap().1.contains("longer than"));
    assert_eq!(r.alerts_total(), 1);
}

#[test]
fn an_empty_input_still_renders() {
    let r = Report::from_reader(&b""[..], ReportOptions::default()).unwrap();
    let page = r.render();
    assert!(page.contains("No alerts."));
    assert!(page.contains("no tunnel sessions"));
}

/// Every cap filled with the longest values: the page stays under its 5 MiB budget whatever
/// the run (this is what bounds the page of a long live run, not the input size).
#[test]
fn a_page_with_every_table_full_stays_under_5_mib() {
    use serde_json::json;
    let mut r = Report::new(ReportOptions {
        inputs: (0..500)
            .map(|i| format!("/captures/2026-01-05/sensor-{i:04}.pcap.zst"))
            .collect(),
        home: vec!["2001:db8::/32".parse().unwrap()],
        beacon_threshold: 0.85,
    });
    let v6 = |i: usize| {
        format!(
            "2001:db8:ffff:ffff:ffff:ffff:{:x}:{:x}",
            i / 65_536,
            i % 65_536
        )
    };
    let t = |us: i64| time::format_ms(1_767_603_600_000_000 + us).replace(' ', "T") + "000+0000";
    for i in 0..3 * MAX_TUNNEL_ROWS {
        r.add_event(&json!({"timestamp": t(0), "event_type": "tunnel", "src_ip": v6(i), "dest_ip": v6(i + 1), "dest_port": 4789,
            "tunnel": {"type": "erspan3", "id": 4_000_000_000u64 + i as u64, "depth": 3}, "packets": 1_000_000_000u64, "bytes": 1_000_000_000_000u64 + i as u64,
            "first_seen": t(0), "last_seen": t(1), "classification": {"class": "mirror", "reason": "both_directions_one_outer_direction"}, "approved": false,
            "top_conversations": [{"src_ip": v6(i), "src_port": 65535, "dest_ip": v6(i + 7), "dest_port": 65535, "proto": "ipv6-icmp", "packets": 5}]}));
    }
    for i in 0..2 * MAX_MIRROR_ROWS {
        r.add_event(&json!({"timestamp": t(i as i64), "event_type": "alert", "src_ip": v6(i), "dest_ip": v6(i + 1), "detector": "mirror_stream",
            "alert": {"signature": "mirror.unexpected_tunnel", "severity": 1}, "tunnel": {"type": "erspan3", "id": 4_000_000_000u64 + i as u64},
            "evidence": {"classification": {"class": "mirror"}, "finding": "unexpected_tunnel", "packets": 1_000_000_000u64, "inner_flows": 1_000_000u64}}));
        r.add_event(&json!({"timestamp": t(0), "event_type": "mirror_session", "session": {"id": i, "source": v6(i), "destination": v6(i + 1),
            "device": "core-switch-0001.dc1.example.org", "interfaces": "Ethernet1/1-48", "direction": "both", "vlan": 4094, "filter": "ip any any", "state": "active", "since": t(0)}}));
    }
    for i in 0..2 * MAX_BEACONS {
        let (src, dst) = (v6(i), format!("2001:db9::{i:x}"));
        r.add_event(&json!({"timestamp": t(0), "event_type": "alert", "src_ip": src, "dest_ip": dst, "dest_port": 65535, "proto": "tcp", "detector": "beacon",
            "alert": {"signature": "beacon.fixed_interval", "severity": 1}, "evidence": {"beacon": {"kind": "connections", "interval_s": 3600.123, "interval_mad_s": 0.5,
            "size_bytes": 123_456.0, "size_mad_bytes": 7.0, "count": 1_000_000, "timing_score": 0.999, "size_score": 0.999, "score": 0.999,
            "first_seen": t(0), "last_seen": t(1)}, "destination": {"name": "a-very-long-command-and-control-name.updates.example.com"}}}));
        let beats = if i < 40 { 3 * MAX_BEATS } else { 1 };
        for k in 0..beats {
            r.add_event(&json!({"timestamp": t(0), "event_type": "flow", "src_ip": src, "src_port": 60000, "dest_ip": dst, "dest_port": 65535, "proto": "tcp",
                "flow": {"pkts_toserver": 3, "pkts_toclient": 3, "bytes_toserver": 123_456 + k % 7, "bytes_toclient": 100, "start": t(k as i64 * 3_600_000_000), "reason": "timeout"}}));
        }
    }
    for i in 0..2 * MAX_EXTRANEOUS_ROWS / 100 {
        r.add_event(&json!({"timestamp": t(i as i64), "event_type": "alert", "src_ip": v6(i), "src_port": 65535, "dest_ip": v6(i + 1), "dest_port": 65535, "proto": "tcp",
            "detector": "extraneous_packet", "alert": {"signature": format!("extraneous.reason_{}", i % 12), "severity": 3},
            "evidence": {"reason": format!("reason_{}", i % 12), "count": 1_000_000, "conn_state": "RSTRH", "history": "^ShADdFfRrTt", "flow_packets": [1_000_000, 1_000_000],
            "sample": {"tcp_flags": "ff", "seq": 4_294_967_295u64, "ack": 4_294_967_295u64, "payload_len": 65535, "ip_id": 65535, "receiver_ack": 4_294_967_295u64, "receiver_window": 1_073_741_824}}}));
    }
    let decoder: serde_json::Map<String, serde_json::Value> = (0..200)
        .map(|i| {
            (
                format!("decoder.layer{i}.some_long_kind_of_event"),
                json!(1_000_000_000u64),
            )
        })
        .collect();
    r.add_event(&json!({"timestamp": t(0), "event_type": "stats", "stats": {"packets": 10_000_000_000u64, "decoder": decoder}}));
    r.finish();
    assert_eq!(r.tunnels.len(), MAX_TUNNEL_ROWS);
    assert_eq!(r.beacons.len(), MAX_BEACONS);
    assert_eq!(r.mirror_alerts.len(), MAX_MIRROR_ROWS);
    assert_eq!(r.beats_of(&r.beacons[0]).0.len(), MAX_BEATS);
    let page = r.render();
    assert!(page.len() < 5 << 20, "page of {} bytes", page.len());
    eprintln!("worst-case page: {} bytes", page.len());
}

/// Issue 15 follow-up: a packet beacon's alert carries its bursts (`evidence.beacon.beats`),
/// and its card draws them like a connection beacon's: a timeline with one stem per beat and
/// the two histograms. The latest alert (the most beats) wins, and an event claiming more
/// than 32 beats gives only its latest 32.
#[test]
fn heartbeat_card_draws_the_beats_of_its_alert() {
    use serde_json::json;
    let t = |s: i64| {
        time::format_ms(1_767_603_600_000_000 + s * 1_000_000).replace(' ', "T") + "000+0000"
    };
    let alert = |count: i64, beats: Vec<serde_json::Value>, update: bool| {
        json!({"timestamp": t(30 * count), "event_type": "alert", "src_ip": "10.30.3.1", "src_port": 40000,
            "dest_ip": "203.0.113.41", "dest_port": 443, "proto": "tcp", "detector": "beacon",
            "alert": {"signature": "beacon.heartbeat", "severity": 1},
            "evidence": {"beacon": {"kind": "packets", "interval_s": 30.0, "interval_mad_s": 0.0, "size_bytes": 96.0,
                "size_mad_bytes": 0.0, "count": count, "timing_score": 1.0, "size_score": 1.0, "score": 1.0,
                "first_seen": t(30), "last_seen": t(30 * count), "update": update, "beats": beats},
                "destination": {"first_seen": false, "in_baseline": false}}})
    };
    let beats = |from: i64, to: i64| -> Vec<serde_json::Value> {
        (from..=to)
            .map(|k| json!({"time": t(30 * k), "bytes": 90 + k % 7}))
            .collect()
    };
    let mut r = Report::new(ReportOptions::default());
    r.add_event(&alert(8, beats(1, 8), false));
    r.add_event(&alert(40, beats(1, 40), true));
    r.finish();
    assert_eq!(r.beacons.len(), 1);
    let b = &r.beacons[0];
    assert_eq!((b.kind.as_str(), b.alerts, b.count), ("packets", 2, 40));
    let (drawn, source) = r.beats_of(b);
    assert_eq!(source, BeatSource::Evidence);
    assert_eq!(
        drawn.len(),
        MAX_EVIDENCE_BEATS,
        "the latest 32 of the 40 claimed"
    );
    assert_eq!(
        drawn[0],
        (1_767_603_600_000_000 + 9 * 30_000_000, 90 + 9 % 7)
    );
    assert_eq!(drawn[31].0 - drawn[30].0, 30_000_000);
    let page = r.render();
    assert_eq!(
        page.matches("bytes</title></circle>").count(),
        32,
        "one stem per beat"
    );
    assert!(page.contains("intervals between beats"));
    assert!(page.contains("payload bytes per burst (alert evidence)"));
    assert!(page.contains("32 bursts from the alert&#39;s evidence (the latest only)"));
}
