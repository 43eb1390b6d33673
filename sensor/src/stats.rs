//! The `stats` event and the human summary printed to stderr at the end of a run.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::alert::{AlertWriteError, EventHeader, EventSink, Rfc3339};
use crate::decode::TunnelKind;
use crate::pipeline::PipelineReport;

/// `event_type: "stats"`.
#[derive(Debug, Serialize)]
struct StatsEvent<'a> {
    #[serde(flatten)]
    header: EventHeader,
    stats: StatsBody<'a>,
}

#[derive(Debug, Serialize)]
struct StatsBody<'a> {
    packets: u64,
    bytes: u64,
    non_ip_packets: u64,
    encapsulated_packets: u64,
    decoder: BTreeMap<String, u64>,
    flows: FlowStats,
    tunnels: BTreeMap<&'a str, u64>,
    tunnel_table_full: u64,
    capture_errors: u64,
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

/// Writes the final `stats` event.
pub fn write_stats(
    sink: &mut EventSink,
    report: &PipelineReport,
    capture_errors: u64,
) -> Result<(), AlertWriteError> {
    let flows = report.flows();
    let tunnels = TunnelKind::ALL
        .iter()
        .map(|k| (k.name(), report.tunnels.sessions_by_kind[k.index()]))
        .filter(|(_, n)| *n > 0)
        .collect();
    sink.write(&StatsEvent {
        header: EventHeader {
            timestamp: Rfc3339(report.last_ts),
            event_type: "stats",
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
        },
        stats: StatsBody {
            packets: report.capture.packets,
            bytes: report.capture.bytes,
            non_ip_packets: report.capture.non_ip,
            encapsulated_packets: report.capture.encapsulated,
            decoder: report.capture.decode.named().into_iter().collect(),
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
            tunnel_table_full: report.tunnels.table_full,
            capture_errors,
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
    let events = c.decode.named();
    if !events.is_empty() {
        let list: Vec<String> = events.iter().map(|(n, v)| format!("{n}={v}")).collect();
        s.push_str(&format!("  decode events: {}\n", list.join(", ")));
    }
    s
}
