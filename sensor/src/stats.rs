//! The `stats` event and the human summary printed to stderr at the end of a run.
//!
//! Replay writes one `stats` event at the end. A live sensor writes one every
//! `--stats-interval` and one at exit, each with the kernel's capture counters, the
//! pipeline's queue drops and latency percentiles (hdrhistogram, microseconds), so what was
//! missed is said, not guessed.

use std::collections::BTreeMap;

use flowtable::Timestamp;
use serde::Serialize;

use crate::alert::{AlertWriteError, EventHeader, EventSink};
use crate::capture::live::KernelStats;
use crate::decode::TunnelKind;
use crate::latency::LatencySummary;
use crate::pipeline::PipelineReport;

/// What a live sensor adds to its `stats` events.
#[derive(Clone, Debug)]
pub struct LiveStats<'a> {
    /// Wall-clock time of the event.
    pub now: Timestamp,
    /// Capture interface.
    pub interface: &'a str,
    /// Seconds since the capture started.
    pub uptime_s: u64,
    /// The last `stats` event of the run.
    pub last: bool,
    /// The kernel's counters.
    pub kernel: KernelStats,
    /// Packet time (kernel receive time) to the alert line being written.
    pub alert_latency: LatencySummary,
    /// Kernel receive time to the capture thread taking the packet (sampled).
    pub capture_delay: LatencySummary,
}

/// `event_type: "stats"`.
#[derive(Debug, Serialize)]
struct StatsEvent<'a> {
    #[serde(flatten)]
    header: EventHeader,
    stats: StatsBody<'a>,
}

/// The `stats` object: Suricata's own counters where it has an equivalent (`uptime`,
/// `capture.kernel_*`, `decoder.pkts`/`bytes`, `flow`, `detect.alert`), then ours, each a
/// documented extension (`docs/events.md`).
#[derive(Debug, Serialize)]
struct StatsBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uptime: Option<u64>,
    packets: u64,
    bytes: u64,
    non_ip_packets: u64,
    encapsulated_packets: u64,
    decoder: DecoderStats,
    flow: SuricataFlowStats,
    detect: DetectStats,
    flows: FlowStats,
    tunnels: BTreeMap<&'a str, u64>,
    tunnel_classes: BTreeMap<&'a str, u64>,
    tunnel_table_full: u64,
    tunnel_table_evicted: u64,
    tunnel_flood_sources: u64,
    names: BTreeMap<&'a str, u64>,
    alerts: BTreeMap<&'a str, u64>,
    extraneous: BTreeMap<&'a str, u64>,
    beacon: BTreeMap<&'a str, u64>,
    queue_drops: u64,
    capture_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    capture: Option<CaptureStats<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<LatencyStats>,
    output: crate::alert::OutputStats,
}

/// `stats.decoder`: Suricata's packet and byte totals, and our decode events by their
/// dotted names (`decoder.<layer>.<kind>`, an extension).
#[derive(Debug, Serialize)]
struct DecoderStats {
    pkts: u64,
    bytes: u64,
    #[serde(flatten)]
    events: BTreeMap<String, u64>,
}

/// `stats.flow`, in Suricata's names.
#[derive(Debug, Serialize)]
struct SuricataFlowStats {
    /// Flows created.
    total: u64,
    mgr: FlowManagerStats,
}

#[derive(Debug, Serialize)]
struct FlowManagerStats {
    /// Flows ended by the idle timeout.
    flows_timeout: u64,
    /// Flows evicted because the table was full.
    flows_evicted: u64,
}

/// `stats.detect`.
#[derive(Debug, Serialize)]
struct DetectStats {
    /// Alerts written, all detectors.
    alert: u64,
}

/// Live capture counters: everything offered, and everything missed, by whom. Suricata's
/// `kernel_packets`, `kernel_drops` and `kernel_ifdrops` first, then ours (extensions).
#[derive(Debug, Serialize)]
struct CaptureStats<'a> {
    kernel_packets: u64,
    kernel_drops: u64,
    kernel_ifdrops: u64,
    interface: &'a str,
    #[serde(rename = "final")]
    last: bool,
    uptime_s: u64,
    received: u64,
    kernel_dropped: u64,
    interface_dropped: u64,
    /// Kernel, interface and queue drops together: zero means nothing was missed.
    dropped_total: u64,
}

#[derive(Debug, Serialize)]
struct LatencyStats {
    packet_to_alert: LatencySummary,
    kernel_to_capture: LatencySummary,
}

#[derive(Debug, Serialize)]
struct FlowStats {
    created: u64,
    expired_idle: u64,
    expired_active: u64,
    evicted: u64,
    flushed: u64,
    peak_tracked: u64,
    bytes_per_flow: usize,
}

/// Writes the final `stats` event of a replay.
pub fn write_stats(
    sink: &mut EventSink,
    report: &PipelineReport,
    capture_errors: u64,
) -> Result<(), AlertWriteError> {
    write_stats_event(sink, report, capture_errors, None)
}

/// Writes a `stats` event of a live sensor (periodic, or the last one at exit).
pub fn write_live_stats(
    sink: &mut EventSink,
    report: &PipelineReport,
    live: &LiveStats<'_>,
) -> Result<(), AlertWriteError> {
    write_stats_event(sink, report, 0, Some(live))
}

fn write_stats_event(
    sink: &mut EventSink,
    report: &PipelineReport,
    capture_errors: u64,
    live: Option<&LiveStats<'_>>,
) -> Result<(), AlertWriteError> {
    let flows = report.flows();
    let detectors = report.detectors();
    let tunnels = TunnelKind::ALL
        .iter()
        .map(|k| (k.name(), report.tunnels.sessions_by_kind[k.index()]))
        .filter(|(_, n)| *n > 0)
        .collect();
    let alerts_total = report
        .mirror_alerts
        .saturating_add(detectors.extraneous.alerts)
        .saturating_add(detectors.beacon.alerts);
    sink.write(&StatsEvent {
        header: EventHeader::new(live.map_or(report.last_ts, |l| l.now), "stats"),
        stats: StatsBody {
            uptime: live.map(|l| l.uptime_s),
            packets: report.capture.packets,
            bytes: report.capture.bytes,
            non_ip_packets: report.capture.non_ip,
            encapsulated_packets: report.capture.encapsulated,
            decoder: DecoderStats {
                pkts: report.capture.packets,
                bytes: report.capture.bytes,
                events: report.capture.decode.named().into_iter().collect(),
            },
            flow: SuricataFlowStats {
                total: flows.inserted,
                mgr: FlowManagerStats {
                    flows_timeout: flows.expired_idle,
                    flows_evicted: flows.evicted,
                },
            },
            detect: DetectStats {
                alert: alerts_total,
            },
            flows: FlowStats {
                created: flows.inserted,
                expired_idle: flows.expired_idle,
                expired_active: flows.expired_active,
                evicted: flows.evicted,
                flushed: flows.flushed,
                peak_tracked: flows.peak_len,
                bytes_per_flow: report.workers.first().map_or(0, |w| w.bytes_per_flow),
            },
            tunnels,
            tunnel_classes: ["unknown", "mirror", "overlay"]
                .into_iter()
                .zip(report.tunnels.sessions_by_class)
                .collect(),
            tunnel_table_full: report.tunnels.table_full,
            tunnel_table_evicted: report.tunnels.evicted,
            tunnel_flood_sources: report.tunnels.flood_sources,
            names: [
                ("answers_learned", report.names.answers),
                ("answers_unsolicited", report.names.answers_unsolicited),
                ("answers_not_resolver", report.names.answers_not_resolver),
                ("evicted", report.names.evicted),
                ("over_limit", report.names.over_limit),
            ]
            .into_iter()
            .collect(),
            alerts: [
                ("mirror_stream", report.mirror_alerts),
                ("extraneous_packet", detectors.extraneous.alerts),
                ("beacon", detectors.beacon.alerts),
            ]
            .into_iter()
            .collect(),
            extraneous: detectors.extraneous.named().into_iter().collect(),
            beacon: detectors.beacon.named().into_iter().collect(),
            queue_drops: report.capture.queue_drops,
            capture_errors,
            capture: live.map(|l| CaptureStats {
                kernel_packets: l.kernel.received,
                kernel_drops: l.kernel.dropped,
                kernel_ifdrops: l.kernel.if_dropped,
                interface: l.interface,
                last: l.last,
                uptime_s: l.uptime_s,
                received: l.kernel.received,
                kernel_dropped: l.kernel.dropped,
                interface_dropped: l.kernel.if_dropped,
                dropped_total: l
                    .kernel
                    .dropped
                    .saturating_add(l.kernel.if_dropped)
                    .saturating_add(report.capture.queue_drops),
            }),
            latency: live.map(|l| LatencyStats {
                packet_to_alert: l.alert_latency,
                kernel_to_capture: l.capture_delay,
            }),
            output: sink.output_stats(),
        },
    })
}

/// A few lines for a human, on stderr.
pub fn summary(report: &PipelineReport, elapsed: std::time::Duration) -> String {
    let flows = report.flows();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let c = &report.capture;
    let mut s = format!(
        "mirrorwatch: {} packets, {} bytes in {:.2} s ({:.2} Mpps); {} encapsulated, {} not IP\n",
        c.packets,
        c.bytes,
        secs,
        c.packets as f64 / secs / 1e6,
        c.encapsulated,
        c.non_ip,
    );
    s.push_str(&format!(
        "  flows: {} created, {} evicted; tunnel sessions: {}\n",
        flows.inserted,
        flows.evicted,
        TunnelKind::ALL
            .iter()
            .filter(|k| report.tunnels.sessions_by_kind[k.index()] > 0)
            .map(|k| format!(
                "{} {}",
                report.tunnels.sessions_by_kind[k.index()],
                k.name()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let detectors = report.detectors();
    s.push_str(&format!(
        "  alerts: {} mirror_stream, {} extraneous_packet, {} beacon\n",
        report.mirror_alerts, detectors.extraneous.alerts, detectors.beacon.alerts
    ));
    let events = c.decode.named();
    if !events.is_empty() {
        let list: Vec<String> = events.iter().map(|(n, v)| format!("{n}={v}")).collect();
        s.push_str(&format!("  decode events: {}\n", list.join(", ")));
    }
    s
}

/// The inventory report: every tunnel session seen, for an auditor to compare observed
/// mirroring with the approved inventory.
pub fn inventory_table(report: &PipelineReport) -> String {
    use flowtable::key::addr_to_ip;
    let mut rows = vec![[
        "type".to_owned(),
        "id".to_owned(),
        "source -> collector".to_owned(),
        "class".to_owned(),
        "reason".to_owned(),
        "approved".to_owned(),
        "packets".to_owned(),
        "bytes".to_owned(),
        "first seen".to_owned(),
        "last seen".to_owned(),
    ]];
    let time = |t: flowtable::Timestamp| {
        let st = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t.as_nanos());
        humantime::format_rfc3339_seconds(st).to_string()
    };
    for r in &report.tunnel_records {
        let port = if r.dst_port != 0 {
            format!(":{}", r.dst_port)
        } else {
            String::new()
        };
        rows.push([
            r.kind.name().to_owned(),
            r.id.to_string(),
            format!("{} -> {}{}", addr_to_ip(r.src), addr_to_ip(r.dst), port),
            r.class.name().to_owned(),
            r.reason.name().to_owned(),
            if r.approval == crate::detect::mirror_stream::Approval::Approved {
                "yes".to_owned()
            } else {
                "NO".to_owned()
            },
            r.packets.to_string(),
            r.bytes.to_string(),
            time(r.first_seen),
            time(r.last_seen),
        ]);
    }
    let mut widths = [0usize; 10];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = format!(
        "tunnel inventory: {} sessions\n",
        report.tunnel_records.len()
    );
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if report.tunnel_records_dropped > 0 {
        out.push_str(&format!(
            "... and {} more sessions (see the tunnel events)\n",
            report.tunnel_records_dropped
        ));
    }
    out
}
