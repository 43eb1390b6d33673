//! The hunting report (issue 15): one self-contained HTML page built from the events of a run.
//!
//! `mirrorwatch replay --report FILE.html` and `mirrorwatch report EVENTS.jsonl -o FILE.html`
//! share one path: the events file is read line by line as `serde_json::Value`s into a
//! [`Report`] (this module), then each section renders itself (`summary.rs`, `mirror_map.rs`,
//! `beacons.rs`, `extraneous.rs`, `inventory.rs`, `undecoded.rs`) with inline CSS and SVG
//! (`svg.rs`, `html.rs`): no external fetch, readable offline, script only for sorting.
//!
//! The reader is tolerant by design: both timestamp spellings, missing and extra fields, and
//! unknown event types (counted, shown in the last section) are accepted, because event files
//! outlive the sensor version that wrote them. A line that is not JSON is counted, never fatal.
//! Memory and page size stay bounded on long runs: tables keep the top rows of fixed caps
//! (`MAX_*`) and say how many they left out, charts aggregate into bins.

mod beacons;
mod extraneous;
mod html;
mod inventory;
mod mirror_map;
mod summary;
mod svg;
pub mod time;
mod undecoded;

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::Value;

use time::Micros;

/// Tunnel sessions kept for the inventory table (the biggest by bytes, alerted ones first).
pub const MAX_TUNNEL_ROWS: usize = 1_000;
/// Extraneous-packet alerts kept for the flows table and the time chart.
pub const MAX_EXTRANEOUS_ROWS: usize = 50_000;
/// Beacon patterns kept (each alert group is one pattern), the most severe and regular
/// listed; alerts of further patterns are counted only.
pub const MAX_BEACONS: usize = 300;
/// Beats kept per conversation (the latest), for the beacon timelines.
pub const MAX_BEATS: usize = 256;
/// Distinct conversations aggregated from `flow` records; flows of further conversations are
/// counted but not aggregated.
pub const MAX_CONVERSATIONS: usize = 200_000;
/// Control-plane mirror sessions and mirror alerts kept.
pub const MAX_MIRROR_ROWS: usize = 500;

/// Longest event line read; a longer one is counted as bad and skipped (an event is a few
/// kilobytes at most, and a file without newlines must not be read into memory whole).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The events file cannot be opened or read.
    #[error("reading events from {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The report file cannot be written.
    #[error("writing the report {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What the report needs besides the events.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// What was read: capture files for a replay, the events file for `mirrorwatch report`.
    pub inputs: Vec<String>,
    /// `[networks] home`: inside or outside, on the mirror map.
    pub home: Vec<IpNet>,
    /// `[beacon] score_threshold`, drawn on the score bars.
    pub beacon_threshold: f64,
}

/// Everything the page shows, aggregated from the events.
#[derive(Debug, Default)]
pub struct Report {
    /// Inputs named in the summary.
    pub inputs: Vec<String>,
    /// `[networks] home`.
    pub home: Vec<IpNet>,
    /// `[beacon] score_threshold`.
    pub beacon_threshold: f64,
    /// Non-empty lines read.
    pub lines: u64,
    /// Lines that were not a JSON object, and the first of them (line number, error).
    pub bad_lines: u64,
    /// The first bad line: number and what was wrong.
    pub first_bad_line: Option<(u64, String)>,
    /// Events by `event_type`, known or not.
    pub event_types: BTreeMap<String, u64>,
    /// Event types this report does not know (shown, never fatal).
    pub unknown_event_types: BTreeMap<String, u64>,
    /// First and last packet time over every event but `stats` (live stats use the wall clock).
    pub span: Option<(Micros, Micros)>,
    /// The last `stats` event (counters are cumulative).
    pub stats: Option<Stats>,
    /// `stats` events read.
    pub stats_events: u64,
    /// Alerts by detector and severity.
    pub alerts_by_detector: BTreeMap<String, BTreeMap<u64, u64>>,
    /// Alerts by signature name.
    pub alerts_by_signature: BTreeMap<String, u64>,
    /// Tunnel sessions (`tunnel` records), at most `MAX_TUNNEL_ROWS`, biggest first.
    pub tunnels: Vec<TunnelRow>,
    /// `tunnel` records read.
    pub tunnels_total: u64,
    /// Tunnel sessions by type and by class, over every record.
    pub tunnels_by_type: BTreeMap<String, u64>,
    /// See `tunnels_by_type`.
    pub tunnels_by_class: BTreeMap<String, u64>,
    /// `mirror_stream` alerts, at most `MAX_MIRROR_ROWS`.
    pub mirror_alerts: Vec<MirrorAlert>,
    /// `mirror_stream` alerts read.
    pub mirror_alerts_total: u64,
    /// Control-plane mirror sessions (`mirror_session` events), flattened to `field = value`.
    pub mirror_sessions: Vec<Vec<(String, String)>>,
    /// `mirror_session` events read.
    pub mirror_sessions_total: u64,
    /// Beacon patterns, one per (source, destination, port, protocol, kind).
    pub beacons: Vec<Beacon>,
    /// Beacon alerts read (updates included).
    pub beacon_alerts_total: u64,
    /// Extraneous-packet alerts, at most `MAX_EXTRANEOUS_ROWS`, in reading order.
    pub extraneous: Vec<ExtraneousAlert>,
    /// Extraneous-packet alerts read.
    pub extraneous_total: u64,
    /// Extraneous alerts and offending packets by reason, over every alert.
    pub extraneous_by_reason: BTreeMap<String, (u64, u64)>,
    /// `flow` records read.
    pub flows_total: u64,
    /// Conversations from `flow` records (source, destination, destination port, protocol).
    pub conversations: HashMap<ConvKey, Conversation>,
    /// Flows of conversations beyond `MAX_CONVERSATIONS`, not aggregated.
    pub flows_not_aggregated: u64,
    /// Inner conversations named by tunnel records' `top_conversations`, by packets.
    pub tunnel_conversations: BTreeMap<String, u64>,
    /// Capture files named by the events (`pcap_filename`, EVE form), at most
    /// `MAX_PCAP_FILES`.
    pub pcap_files: std::collections::BTreeSet<String>,
}

/// Capture file names kept from `pcap_filename`.
pub const MAX_PCAP_FILES: usize = 1_000;

/// The counters of a `stats` event the report shows.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Frames read and their bytes.
    pub packets: u64,
    /// See `packets`.
    pub bytes: u64,
    /// Frames without an IP packet.
    pub non_ip_packets: u64,
    /// Frames inside at least one tunnel.
    pub encapsulated_packets: u64,
    /// Decode events by name.
    pub decoder: BTreeMap<String, u64>,
    /// Packets dropped: worker queues (live), kernel and interface (live).
    pub queue_drops: u64,
    /// See `queue_drops`.
    pub kernel_dropped: u64,
    /// See `queue_drops`.
    pub interface_dropped: u64,
    /// Tunnel packets not tracked, table full.
    pub tunnel_table_full: u64,
    /// Flows evicted because the table was full.
    pub flows_evicted: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Inputs not read completely.
    pub capture_errors: u64,
    /// Extraneous alerts held back by the rate limit.
    pub extraneous_rate_limited: u64,
}

/// One tunnel session (a `tunnel` record).
#[derive(Debug, Clone)]
pub struct TunnelRow {
    /// Outer source (the mirror source).
    pub src: String,
    /// Outer destination (the collector) and its port (0 for GRE).
    pub dst: String,
    /// See `dst`.
    pub dst_port: u64,
    /// `tunnel.type`, `tunnel.id`, `tunnel.depth`.
    pub kind: String,
    /// See `kind`.
    pub id: u64,
    /// See `kind`.
    pub depth: u64,
    /// `classification.class` and `.reason`.
    pub class: String,
    /// See `class`.
    pub reason: String,
    /// `approved`.
    pub approved: bool,
    /// Packets and bytes.
    pub packets: u64,
    /// See `packets`.
    pub bytes: u64,
    /// Packet times.
    pub first_seen: Option<Micros>,
    /// See `first_seen`.
    pub last_seen: Option<Micros>,
    /// A `mirror_stream` alert names this session.
    pub alerted: bool,
}

/// One `mirror_stream` alert.
#[derive(Debug, Clone)]
pub struct MirrorAlert {
    /// Alert time.
    pub time: Option<Micros>,
    /// Signature name and severity.
    pub signature: String,
    /// See `signature`.
    pub severity: u64,
    /// Mirror source and collector.
    pub src: String,
    /// See `src`.
    pub dst: String,
    /// Tunnel type and id.
    pub kind: String,
    /// See `kind`.
    pub id: u64,
    /// Class at alert time.
    pub class: String,
    /// `evidence.finding`.
    pub finding: String,
    /// Packets and inner flows so far.
    pub packets: u64,
    /// See `packets`.
    pub inner_flows: u64,
}

/// One beacon pattern: the alerts of one (source, destination, port, protocol, kind).
#[derive(Debug, Clone)]
pub struct Beacon {
    /// Internal source, destination, destination port, protocol.
    pub key: ConvKey,
    /// `connections` or `packets`.
    pub kind: String,
    /// `src_port` of a packet beacon (the flow's), else `None`.
    pub src_port: Option<u64>,
    /// The name learned from DNS.
    pub name: Option<String>,
    /// Signature of the latest alert.
    pub signature: String,
    /// Highest severity (lowest number) of the alerts.
    pub severity: u64,
    /// Alerts of this pattern (the first and its updates).
    pub alerts: u64,
    /// First alert time.
    pub first_alert: Option<Micros>,
    /// Evidence of the latest alert (the most beats).
    pub interval_s: f64,
    /// See `interval_s`.
    pub interval_mad_s: f64,
    /// See `interval_s`.
    pub size_bytes: f64,
    /// See `interval_s`.
    pub size_mad_bytes: f64,
    /// See `interval_s`.
    pub count: u64,
    /// See `interval_s`.
    pub timing_score: f64,
    /// See `interval_s`.
    pub size_score: f64,
    /// See `interval_s`.
    pub score: f64,
    /// See `interval_s`.
    pub first_seen: Option<Micros>,
    /// See `interval_s`.
    pub last_seen: Option<Micros>,
    /// The beats carried by the latest alert (`evidence.beacon.beats`, packet beacons): time
    /// and bytes, oldest first, at most [`MAX_EVIDENCE_BEATS`].
    pub beats: Vec<(Micros, u64)>,
}

/// Where the beats drawn on a beacon's card come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeatSource {
    /// `evidence.beacon.beats` of the alert (a packet beacon's bursts).
    Evidence,
    /// The `flow` records of the pair (a connection beacon's connections).
    Flows,
}

/// Beats read from one alert's evidence (the detector writes at most 32).
pub const MAX_EVIDENCE_BEATS: usize = 32;

/// One `extraneous_packet` alert.
#[derive(Debug, Clone)]
pub struct ExtraneousAlert {
    /// Alert time (the first offending packet).
    pub time: Option<Micros>,
    /// `evidence.reason`.
    pub reason: String,
    /// Severity.
    pub severity: u64,
    /// `src_ip:src_port -> dest_ip:dest_port proto`.
    pub flow: String,
    /// Offending packets aggregated.
    pub count: u64,
    /// The flow's state.
    pub conn_state: String,
    /// See `conn_state`.
    pub history: String,
    /// Packets from src and from dest.
    pub flow_packets: String,
    /// The sample, `field=value` joined.
    pub sample: String,
}

/// A conversation: (source, destination, destination port, protocol) as the flow record
/// orients it (source = first packet's sender).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dst_port: u64,
    /// Protocol name or number.
    pub proto: String,
}

/// The flows of one conversation.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// Flow records.
    pub flows: u64,
    /// Packets both ways.
    pub packets: u64,
    /// IP bytes both ways.
    pub bytes: u64,
    /// The latest `MAX_BEATS` flows: start time and bytes the source sent (a connection
    /// beacon's beats are exactly these).
    pub beats: Vec<(Micros, u64)>,
    /// Beats dropped from the front of `beats`.
    pub beats_dropped: u64,
}

impl Report {
    /// An empty report; feed it lines with [`Report::add_line`], then [`Report::finish`].
    pub fn new(options: ReportOptions) -> Report {
        Report {
            inputs: options.inputs,
            home: options.home,
            beacon_threshold: options.beacon_threshold,
            ..Report::default()
        }
    }

    /// Builds the report of an events file.
    pub fn from_path(path: &Path, options: ReportOptions) -> Result<Report, ReportError> {
        let file = std::fs::File::open(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let reader = std::io::BufReader::with_capacity(1 << 20, file);
        Report::from_reader(reader, options).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Builds the report of JSON lines.
    pub fn from_reader(
        mut reader: impl BufRead,
        options: ReportOptions,
    ) -> Result<Report, std::io::Error> {
        let mut report = Report::new(options);
        let mut line = Vec::new();
        loop {
            line.clear();
            match read_line(&mut reader, &mut line)? {
                Line::End => break,
                Line::Complete => report.add_line(&line),
                Line::TooLong => {
                    report.lines += 1;
                    report.bad_line(format!("longer than {MAX_LINE_BYTES} bytes"));
                }
            }
        }
        report.finish();
        Ok(report)
    }

    /// Whether `ip` is inside `[networks] home`.
    pub fn is_home(&self, ip: &str) -> bool {
        ip.parse::<IpAddr>()
            .is_ok_and(|ip| self.home.iter().any(|net| net.contains(&ip)))
    }

    /// Adds one line of the events file.
    pub fn add_line(&mut self, line: &[u8]) {
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        self.lines += 1;
        // A cheap look for the flow record's type near the line's start (where both event
        // forms put it) before the general parse; a line the fast path cannot take (escaped
        // strings, odd types, the type further on) goes the general way.
        let head = &trimmed[..trimmed.len().min(256)];
        if contains(head, b"\"event_type\":\"flow\"") && self.add_flow_line(trimmed) {
            return;
        }
        match serde_json::from_slice::<Value>(trimmed) {
            Ok(event) if event.is_object() => self.add_event(&event),
            Ok(_) => self.bad_line("not a JSON object".to_owned()),
            Err(e) => self.bad_line(e.to_string()),
        }
    }

    fn bad_line(&mut self, why: String) {
        self.bad_lines += 1;
        if self.first_bad_line.is_none() {
            self.first_bad_line = Some((self.lines, why));
        }
    }

    /// Adds one event.
    pub fn add_event(&mut self, e: &Value) {
        let event_type = e["event_type"].as_str().unwrap_or("(none)");
        *self.event_types.entry(event_type.to_owned()).or_default() += 1;
        let ts = e["timestamp"].as_str().and_then(time::parse);
        if let Some(f) = e["pcap_filename"].as_str() {
            if self.pcap_files.len() < MAX_PCAP_FILES && !self.pcap_files.contains(f) {
                self.pcap_files.insert(f.to_owned());
            }
        }
        if event_type != "stats" {
            if let Some(t) = ts {
                self.see_time(t);
            }
        }
        match event_type {
            "alert" => self.add_alert(e, ts),
            "tunnel" => self.add_tunnel(e),
            "flow" => self.add_flow(e),
            "stats" => self.add_stats(e),
            "mirror_session" => self.add_mirror_session(e),
            other => {
                *self
                    .unknown_event_types
                    .entry(other.to_owned())
                    .or_default() += 1
            }
        }
    }

    fn see_time(&mut self, t: Micros) {
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(t), b.max(t)),
            None => (t, t),
        });
    }

    fn add_alert(&mut self, e: &Value, ts: Option<Micros>) {
        let detector = e["detector"].as_str().unwrap_or("(unknown)");
        let severity = e["alert"]["severity"].as_u64().unwrap_or(0);
        *self
            .alerts_by_detector
            .entry(detector.to_owned())
            .or_default()
            .entry(severity)
            .or_default() += 1;
        let signature = e["alert"]["signature"].as_str().unwrap_or("(none)");
        *self
            .alerts_by_signature
            .entry(signature.to_owned())
            .or_default() += 1;
        match detector {
            "mirror_stream" => {
                self.mirror_alerts_total += 1;
                if self.mirror_alerts.len() < MAX_MIRROR_ROWS {
                    let ev = &e["evidence"];
                    self.mirror_alerts.push(MirrorAlert {
                        time: ts,
                        signature: signature.to_owned(),
                        severity,
                        src: str_of(&e["src_ip"]),
                        dst: str_of(&e["dest_ip"]),
                        kind: str_of(&e["tunnel"]["type"]),
                        id: e["tunnel"]["id"].as_u64().unwrap_or(0),
                        class: str_of(&ev["classification"]["class"]),
                        finding: str_of(&ev["finding"]),
                        packets: ev["packets"].as_u64().unwrap_or(0),
                        inner_flows: ev["inner_flows"].as_u64().unwrap_or(0),
                    });
                }
            }
            "beacon" => self.add_beacon(e, ts, signature, severity),
            "extraneous_packet" => {
                self.extraneous_total += 1;
                let ev = &e["evidence"];
                let reason = ev["reason"].as_str().unwrap_or("(none)");
                let count = ev["count"].as_u64().unwrap_or(1);
                let by = self
                    .extraneous_by_reason
                    .entry(reason.to_owned())
                    .or_default();
                by.0 += 1;
                by.1 += count;
                if self.extraneous.len() < MAX_EXTRANEOUS_ROWS {
                    self.extraneous.push(ExtraneousAlert {
                        time: ts,
                        reason: reason.to_owned(),
                        severity,
                        flow: flow_label(e),
                        count,
                        conn_state: str_of(&ev["conn_state"]),
                        history: str_of(&ev["history"]),
                        flow_packets: match ev["flow_packets"].as_array() {
                            Some(a) => a.iter().map(str_of).collect::<Vec<_>>().join(" / "),
                            None => String::new(),
                        },
                        sample: flatten(&ev["sample"]),
                    });
                }
            }
            _ => {}
        }
    }

    fn add_beacon(&mut self, e: &Value, ts: Option<Micros>, signature: &str, severity: u64) {
        self.beacon_alerts_total += 1;
        let b = &e["evidence"]["beacon"];
        // `beacon.new_destination` has no pattern to draw: it stays in the summary counts.
        if !b.is_object() {
            return;
        }
        let (Some(src), Some(dst)) = (ip_of(&e["src_ip"]), ip_of(&e["dest_ip"])) else {
            return;
        };
        let key = ConvKey {
            src,
            dst,
            dst_port: e["dest_port"].as_u64().unwrap_or(0),
            proto: str_of(&e["proto"]),
        };
        let kind = b["kind"].as_str().unwrap_or("connections").to_owned();
        let src_port = if kind == "packets" {
            e["src_port"].as_u64()
        } else {
            None
        };
        let found = self
            .beacons
            .iter()
            .position(|x| x.key == key && x.kind == kind && x.src_port == src_port);
        let idx = match found {
            Some(i) => i,
            None if self.beacons.len() < MAX_BEACONS => {
                self.beacons.push(Beacon {
                    key,
                    kind,
                    src_port,
                    name: None,
                    signature: String::new(),
                    severity,
                    alerts: 0,
                    first_alert: ts,
                    interval_s: 0.0,
                    interval_mad_s: 0.0,
                    size_bytes: 0.0,
                    size_mad_bytes: 0.0,
                    count: 0,
                    timing_score: 0.0,
                    size_score: 0.0,
                    score: 0.0,
                    first_seen: None,
                    last_seen: None,
                    beats: Vec::new(),
                });
                self.beacons.len() - 1
            }
            None => return,
        };
        let beacon = &mut self.beacons[idx];
        beacon.alerts += 1;
        beacon.severity = beacon.severity.min(severity);
        let count = b["count"].as_u64().unwrap_or(0);
        // The alert with the most beats carries the fullest evidence.
        if count >= beacon.count {
            beacon.signature = signature.to_owned();
            beacon.count = count;
            beacon.interval_s = b["interval_s"].as_f64().unwrap_or(0.0);
            beacon.interval_mad_s = b["interval_mad_s"].as_f64().unwrap_or(0.0);
            beacon.size_bytes = b["size_bytes"].as_f64().unwrap_or(0.0);
            beacon.size_mad_bytes = b["size_mad_bytes"].as_f64().unwrap_or(0.0);
            beacon.timing_score = b["timing_score"].as_f64().unwrap_or(0.0);
            beacon.size_score = b["size_score"].as_f64().unwrap_or(0.0);
            beacon.score = b["score"].as_f64().unwrap_or(0.0);
            beacon.first_seen = b["first_seen"].as_str().and_then(time::parse);
            beacon.last_seen = b["last_seen"].as_str().and_then(time::parse);
            // The latest beats only, whatever an event claims: bounded per pattern.
            let list = b["beats"].as_array().map_or(&[][..], Vec::as_slice);
            let skip = list.len().saturating_sub(MAX_EVIDENCE_BEATS);
            beacon.beats = list
                .iter()
                .skip(skip)
                .filter_map(|x| {
                    let t = x["time"].as_str().and_then(time::parse)?;
                    Some((t, x["bytes"].as_u64().unwrap_or(0)))
                })
                .collect();
        }
        if let Some(name) = e["evidence"]["destination"]["name"].as_str() {
            beacon.name = Some(name.to_owned());
        }
    }

    fn add_tunnel(&mut self, e: &Value) {
        self.tunnels_total += 1;
        let kind = str_of(&e["tunnel"]["type"]);
        let class = str_of(&e["classification"]["class"]);
        *self.tunnels_by_type.entry(kind.clone()).or_default() += 1;
        *self.tunnels_by_class.entry(class.clone()).or_default() += 1;
        for c in e["top_conversations"].as_array().into_iter().flatten() {
            let label = conversation_label(c);
            if self.tunnel_conversations.len() >= MAX_CONVERSATIONS
                && !self.tunnel_conversations.contains_key(&label)
            {
                continue;
            }
            *self.tunnel_conversations.entry(label).or_default() +=
                c["packets"].as_u64().unwrap_or(0);
        }
        let row = TunnelRow {
            src: str_of(&e["src_ip"]),
            dst: str_of(&e["dest_ip"]),
            dst_port: e["dest_port"].as_u64().unwrap_or(0),
            kind,
            id: e["tunnel"]["id"].as_u64().unwrap_or(0),
            depth: e["tunnel"]["depth"].as_u64().unwrap_or(0),
            class,
            reason: str_of(&e["classification"]["reason"]),
            approved: e["approved"].as_bool().unwrap_or(false),
            packets: e["packets"].as_u64().unwrap_or(0),
            bytes: e["bytes"].as_u64().unwrap_or(0),
            first_seen: e["first_seen"].as_str().and_then(time::parse),
            last_seen: e["last_seen"].as_str().and_then(time::parse),
            alerted: false,
        };
        self.tunnels.push(row);
        // Bounded: past twice the cap, keep the biggest half (amortised, never per record).
        if self.tunnels.len() >= 2 * MAX_TUNNEL_ROWS {
            self.trim_tunnels();
        }
    }

    fn trim_tunnels(&mut self) {
        self.tunnels.sort_by_key(|t| std::cmp::Reverse(t.bytes));
        self.tunnels.truncate(MAX_TUNNEL_ROWS);
    }

    fn add_flow(&mut self, e: &Value) {
        let f = &e["flow"];
        self.add_flow_fields(&FlowFields {
            src: e["src_ip"].as_str(),
            dst: e["dest_ip"].as_str(),
            dst_port: e["dest_port"].as_u64(),
            proto: str_of(&e["proto"]),
            pkts_toserver: f["pkts_toserver"].as_u64(),
            pkts_toclient: f["pkts_toclient"].as_u64(),
            bytes_toserver: f["bytes_toserver"].as_u64(),
            bytes_toclient: f["bytes_toclient"].as_u64(),
            start: f["start"].as_str(),
            reason: f["reason"].as_str(),
        });
    }

    /// The fast path of the most frequent event: a `flow` line parsed into borrowed fields,
    /// without building a `Value` tree (measured: most of a `--flows` report's time). `false`
    /// when the line is not a plain flow record; the caller then takes the general path.
    fn add_flow_line(&mut self, line: &[u8]) -> bool {
        let Ok(flow) = serde_json::from_slice::<FlowLine<'_>>(line) else {
            return false;
        };
        if flow.event_type != "flow" {
            return false;
        }
        *self.event_types.entry("flow".to_owned()).or_default() += 1;
        if let Some(t) = flow.timestamp.and_then(time::parse) {
            self.see_time(t);
        }
        if let Some(f) = flow.pcap_filename {
            if self.pcap_files.len() < MAX_PCAP_FILES && !self.pcap_files.contains(f) {
                self.pcap_files.insert(f.to_owned());
            }
        }
        let proto = match flow.proto {
            Some(Proto::Name(s)) => s.to_owned(),
            Some(Proto::Number(n)) => n.to_string(),
            None => String::new(),
        };
        let f = flow.flow.unwrap_or_default();
        self.add_flow_fields(&FlowFields {
            src: flow.src_ip,
            dst: flow.dest_ip,
            dst_port: flow.dest_port,
            proto,
            pkts_toserver: f.pkts_toserver,
            pkts_toclient: f.pkts_toclient,
            bytes_toserver: f.bytes_toserver,
            bytes_toclient: f.bytes_toclient,
            start: f.start,
            reason: f.reason,
        });
        true
    }

    fn add_flow_fields(&mut self, fl: &FlowFields<'_>) {
        self.flows_total += 1;
        let (Some(src), Some(dst)) = (
            fl.src.and_then(|s| s.parse().ok()),
            fl.dst.and_then(|s| s.parse().ok()),
        ) else {
            return;
        };
        let key = ConvKey {
            src,
            dst,
            dst_port: fl.dst_port.unwrap_or(0),
            proto: fl.proto.clone(),
        };
        let full = self.conversations.len() >= MAX_CONVERSATIONS;
        let conv = match self.conversations.get_mut(&key) {
            Some(c) => c,
            None if full => {
                self.flows_not_aggregated += 1;
                return;
            }
            None => self.conversations.entry(key).or_default(),
        };
        let to_server = fl.bytes_toserver.unwrap_or(0);
        conv.flows += 1;
        conv.packets += fl.pkts_toserver.unwrap_or(0) + fl.pkts_toclient.unwrap_or(0);
        conv.bytes += to_server + fl.bytes_toclient.unwrap_or(0);
        if let Some(start) = fl.start.and_then(time::parse) {
            // `active` records restart the counters of a long flow: not a new connection.
            if fl.reason != Some("active") {
                conv.beats.push((start, to_server));
                if conv.beats.len() >= 2 * MAX_BEATS {
                    conv.beats.sort_unstable();
                    let drop = conv.beats.len() - MAX_BEATS;
                    conv.beats.drain(..drop);
                    conv.beats_dropped += drop as u64;
                }
            }
        }
    }

    fn add_stats(&mut self, e: &Value) {
        self.stats_events += 1;
        let s = &e["stats"];
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        // Our name, else Suricata's name for the same counter (EVE-form stats carry both).
        let either =
            |ours: &Value, suricata: &Value| ours.as_u64().or(suricata.as_u64()).unwrap_or(0);
        // Only the dotted decode-event names: EVE-form stats also put Suricata's `pkts` and
        // `bytes` (and may put other counters) in `stats.decoder`.
        let decoder = s["decoder"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.starts_with("decoder."))
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        self.stats = Some(Stats {
            packets: either(&s["packets"], &s["decoder"]["pkts"]),
            bytes: either(&s["bytes"], &s["decoder"]["bytes"]),
            non_ip_packets: n(&s["non_ip_packets"]),
            encapsulated_packets: n(&s["encapsulated_packets"]),
            decoder,
            queue_drops: n(&s["queue_drops"]),
            kernel_dropped: either(
                &s["capture"]["kernel_dropped"],
                &s["capture"]["kernel_drops"],
            ),
            interface_dropped: either(
                &s["capture"]["interface_dropped"],
                &s["capture"]["kernel_ifdrops"],
            ),
            tunnel_table_full: n(&s["tunnel_table_full"]),
            flows_evicted: either(&s["flows"]["evicted"], &s["flow"]["mgr"]["flows_evicted"]),
            flows_created: either(&s["flows"]["created"], &s["flow"]["total"]),
            capture_errors: n(&s["capture_errors"]),
            extraneous_rate_limited: n(&s["extraneous"]["rate_limited"]),
        });
    }

    fn add_mirror_session(&mut self, e: &Value) {
        self.mirror_sessions_total += 1;
        if self.mirror_sessions.len() >= MAX_MIRROR_ROWS {
            return;
        }
        let mut fields = Vec::new();
        flatten_into("", e, &mut fields);
        fields.retain(|(k, _)| k != "event_type");
        self.mirror_sessions.push(fields);
    }

    /// Final ordering and cross-references, once every line was added.
    pub fn finish(&mut self) {
        self.trim_tunnels();
        for t in &mut self.tunnels {
            t.alerted = self
                .mirror_alerts
                .iter()
                .any(|a| a.src == t.src && a.dst == t.dst && a.kind == t.kind && a.id == t.id);
        }
        // Alerted sessions first, then the biggest.
        self.tunnels
            .sort_by(|a, b| b.alerted.cmp(&a.alerted).then(b.bytes.cmp(&a.bytes)));
        for c in self.conversations.values_mut() {
            c.beats.sort_unstable();
        }
        self.beacons.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(b.score.total_cmp(&a.score))
                .then(b.count.cmp(&a.count))
        });
        self.extraneous.sort_by_key(|a| a.time.unwrap_or(i64::MAX));
    }

    /// Total alerts.
    pub fn alerts_total(&self) -> u64 {
        self.alerts_by_detector
            .values()
            .flat_map(|m| m.values())
            .sum()
    }

    /// The beats of a beacon and where they come from: those its alert carries (a packet
    /// beacon's bursts, inside one flow: no other event has them), else the flows of its
    /// conversation (a connection beacon's connections, with `--flows`).
    pub fn beats_of<'a>(&'a self, beacon: &'a Beacon) -> (&'a [(Micros, u64)], BeatSource) {
        if !beacon.beats.is_empty() {
            return (&beacon.beats, BeatSource::Evidence);
        }
        if beacon.kind != "connections" {
            return (&[], BeatSource::Evidence);
        }
        let flows = self
            .conversations
            .get(&beacon.key)
            .map_or(&[][..], |c| c.beats.as_slice());
        (flows, BeatSource::Flows)
    }

    /// The page.
    pub fn render(&self) -> String {
        html::page(self, |out| {
            summary::render(self, out);
            mirror_map::render(self, out);
            beacons::render(self, out);
            extraneous::render(self, out);
            inventory::render(self, out);
            undecoded::render(self, out);
        })
    }

    /// Writes the page to `path`.
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        std::fs::write(path, self.render()).map_err(|source| ReportError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Reads `events` and writes the report to `output`: the one path behind `replay --report`
/// and `mirrorwatch report`.
pub fn write_report(
    events: &Path,
    output: &Path,
    options: ReportOptions,
) -> Result<Report, ReportError> {
    let report = Report::from_path(events, options)?;
    report.write(output)?;
    Ok(report)
}

impl ReportOptions {
    /// The options a configuration gives (`[networks] home`, the beacon threshold).
    pub fn from_config(config: &crate::config::Config, inputs: Vec<String>) -> ReportOptions {
        ReportOptions {
            inputs,
            home: config.networks.home.clone(),
            beacon_threshold: config.beacon.score_threshold,
        }
    }
}

/// `mirrorwatch report EVENTS.jsonl -o FILE.html`.
pub fn run(args: &crate::cli::ReportArgs) -> anyhow::Result<Report> {
    let config = crate::config::Config::load_or_default(args.config.as_deref())?;
    let options = ReportOptions::from_config(&config, vec![args.events.display().to_string()]);
    let report = write_report(&args.events, &args.output, options)?;
    eprintln!(
        "mirrorwatch: report of {} events written to {}",
        report.lines,
        args.output.display()
    );
    Ok(report)
}

/// What the report takes from a `flow` record.
struct FlowFields<'a> {
    src: Option<&'a str>,
    dst: Option<&'a str>,
    dst_port: Option<u64>,
    proto: String,
    pkts_toserver: Option<u64>,
    pkts_toclient: Option<u64>,
    bytes_toserver: Option<u64>,
    bytes_toclient: Option<u64>,
    start: Option<&'a str>,
    reason: Option<&'a str>,
}

/// A `flow` line, borrowed (a string with escapes fails to borrow: the general path takes
/// it). Unknown fields are ignored, missing ones `None`.
#[derive(serde::Deserialize)]
struct FlowLine<'a> {
    event_type: &'a str,
    timestamp: Option<&'a str>,
    pcap_filename: Option<&'a str>,
    src_ip: Option<&'a str>,
    dest_ip: Option<&'a str>,
    dest_port: Option<u64>,
    #[serde(borrow)]
    proto: Option<Proto<'a>>,
    #[serde(borrow)]
    flow: Option<FlowPart<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Proto<'a> {
    Name(&'a str),
    Number(u64),
}

#[derive(serde::Deserialize, Default)]
struct FlowPart<'a> {
    pkts_toserver: Option<u64>,
    pkts_toclient: Option<u64>,
    bytes_toserver: Option<u64>,
    bytes_toclient: Option<u64>,
    start: Option<&'a str>,
    reason: Option<&'a str>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

enum Line {
    End,
    Complete,
    TooLong,
}

/// One line into `line` (without reading more than `MAX_LINE_BYTES` of it into memory).
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Line> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        any = true;
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        if line.len() + n > MAX_LINE_BYTES {
            too_long = true;
            line.clear();
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        reader.consume(n);
        if done {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => Line::Complete,
    })
}

/// A JSON value as display text: strings bare, null empty.
fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn ip_of(v: &Value) -> Option<IpAddr> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// `src:port → dst:port proto` of an event.
fn flow_label(e: &Value) -> String {
    conversation_label(e)
}

fn conversation_label(c: &Value) -> String {
    let endpoint = |ip: &Value, port: &Value| match (ip.as_str(), port.as_u64()) {
        (Some(ip), Some(p)) if ip.contains(':') => format!("[{ip}]:{p}"),
        (Some(ip), Some(p)) => format!("{ip}:{p}"),
        (Some(ip), None) => ip.to_owned(),
        _ => "?".to_owned(),
    };
    format!(
        "{} → {} {}",
        endpoint(&c["src_ip"], &c["src_port"]),
        endpoint(&c["dest_ip"], &c["dest_port"]),
        str_of(&c["proto"])
    )
}

/// `a=1 b=2`, nested objects dotted.
fn flatten(v: &Value) -> String {
    let mut fields = Vec::new();
    flatten_into("", v, &mut fields);
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn flatten_into(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    // Bounded: events are small, but a hostile file could nest deeply; stop at 64 fields.
    if out.len() >= 64 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if prefix.matches('.').count() < 4 {
                    flatten_into(&key, v, out);
                } else {
                    out.push((key, v.to_string()));
                }
            }
        }
        Value::Null => {}
        other => out.push((prefix.to_owned(), str_of(other))),
    }
}

#[cfg(test)]
mod tests;
