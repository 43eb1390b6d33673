//! `--metrics ADDR`: the live sensor's counters in the Prometheus text format over HTTP.
//!
//! The capture loop renders the text once a second ([`render`]) and stores it; a small
//! thread answers every `GET` on the address with the latest text. One request at a time,
//! each bounded by a short socket timeout: a scraper is a trusted, occasional reader, and a
//! slow one cannot hold up the capture thread, which never touches the socket. Hand-written
//! on `std::net` (about 60 lines) rather than an HTTP or metrics crate: the format is a few
//! lines of text and the sensor serves nothing else.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::capture::live::KernelStats;
use crate::decode::TunnelKind;
use crate::pipeline::PipelineReport;
use crate::stats::LatencySummary;

/// Longest a scrape may take to send its request or read the answer.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(2);

/// The metrics endpoint.
pub struct MetricsServer {
    text: Arc<Mutex<String>>,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` and starts answering.
    pub fn serve(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let text = Arc::new(Mutex::new(String::new()));
        let shared = Arc::clone(&text);
        std::thread::Builder::new()
            .name("mw-metrics".to_owned())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    // A scraper that misbehaves loses its answer, nothing else.
                    let _ = answer(stream, &shared);
                }
            })?;
        Ok(MetricsServer { text, addr })
    }

    /// The address actually bound (port 0 picks one).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the text served.
    pub fn update(&self, text: String) {
        *self.text.lock().unwrap_or_else(PoisonError::into_inner) = text;
    }
}

fn answer(mut stream: TcpStream, text: &Mutex<String>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    // Read the request head (bounded); we answer every path the same way.
    let mut head = [0u8; 4096];
    let mut n = 0;
    while n < head.len() {
        let got = stream.read(&mut head[n..])?;
        if got == 0 {
            break;
        }
        n += got;
        if head[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let body = text.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// Renders the counters as Prometheus text.
pub fn render(
    report: &PipelineReport,
    kernel: &KernelStats,
    alert_latency: &LatencySummary,
    capture_delay: &LatencySummary,
) -> String {
    let mut s = String::with_capacity(4096);
    let c = &report.capture;
    let flows = report.flows();
    let detectors = report.detectors();
    let counter = |s: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(
            s,
            "# HELP mirrorwatch_{name} {help}\n# TYPE mirrorwatch_{name} counter\nmirrorwatch_{name} {value}"
        );
    };
    counter(
        &mut s,
        "packets_total",
        "Frames taken by the pipeline.",
        c.packets,
    );
    counter(
        &mut s,
        "bytes_total",
        "Wire bytes of those frames.",
        c.bytes,
    );
    counter(
        &mut s,
        "kernel_received_total",
        "Packets the kernel put in the capture ring.",
        kernel.received,
    );
    counter(
        &mut s,
        "kernel_dropped_total",
        "Packets dropped because the capture ring was full.",
        kernel.dropped,
    );
    counter(
        &mut s,
        "interface_dropped_total",
        "Packets dropped by the interface or driver.",
        kernel.if_dropped,
    );
    counter(
        &mut s,
        "queue_dropped_total",
        "Packets dropped because a worker queue was full.",
        c.queue_drops,
    );
    let _ = writeln!(
        s,
        "# HELP mirrorwatch_queue_depth_batches Batches waiting in the worker queues.\n\
         # TYPE mirrorwatch_queue_depth_batches gauge\n\
         mirrorwatch_queue_depth_batches {}",
        report.queued_batches
    );
    counter(
        &mut s,
        "flows_created_total",
        "Flows created.",
        flows.inserted,
    );
    counter(
        &mut s,
        "flows_evicted_total",
        "Flows evicted from a full table.",
        flows.evicted,
    );
    let _ = writeln!(
        s,
        "# HELP mirrorwatch_tunnel_sessions_total Tunnel sessions seen, by type.\n\
         # TYPE mirrorwatch_tunnel_sessions_total counter"
    );
    for k in TunnelKind::ALL {
        let _ = writeln!(
            s,
            "mirrorwatch_tunnel_sessions_total{{type=\"{}\"}} {}",
            k.name(),
            report.tunnels.sessions_by_kind[k.index()]
        );
    }
    let _ = writeln!(
        s,
        "# HELP mirrorwatch_alerts_total Alerts written, by detector.\n\
         # TYPE mirrorwatch_alerts_total counter"
    );
    for (detector, n) in [
        ("mirror_stream", report.mirror_alerts),
        ("extraneous_packet", detectors.extraneous.alerts),
        ("beacon", detectors.beacon.alerts),
    ] {
        let _ = writeln!(s, "mirrorwatch_alerts_total{{detector=\"{detector}\"}} {n}");
    }
    let _ = writeln!(
        s,
        "# HELP mirrorwatch_latency_seconds Latency by stage (hdrhistogram, since start).\n\
         # TYPE mirrorwatch_latency_seconds summary"
    );
    for (stage, l) in [
        ("kernel_to_capture", capture_delay),
        ("packet_to_alert", alert_latency),
    ] {
        for (q, v) in [("0.5", l.p50_us), ("0.99", l.p99_us), ("1", l.max_us)] {
            let _ = writeln!(
                s,
                "mirrorwatch_latency_seconds{{stage=\"{stage}\",quantile=\"{q}\"}} {}",
                v as f64 / 1e6
            );
        }
        let _ = writeln!(
            s,
            "mirrorwatch_latency_seconds_count{{stage=\"{stage}\"}} {}",
            l.count
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_latest_text_over_http() {
        let server = MetricsServer::serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut report = PipelineReport::default();
        report.capture.packets = 42;
        report.capture.queue_drops = 3;
        report.queued_batches = 5;
        let kernel = KernelStats {
            received: 45,
            dropped: 1,
            if_dropped: 0,
        };
        let l = LatencySummary {
            count: 2,
            p50_us: 1500,
            p99_us: 2000,
            max_us: 2000,
        };
        server.update(render(&report, &kernel, &l, &LatencySummary::default()));
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\nmirrorwatch_packets_total 42\n"), "{text}");
        assert!(
            text.contains("\nmirrorwatch_queue_dropped_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE mirrorwatch_queue_depth_batches gauge\nmirrorwatch_queue_depth_batches 5\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\nmirrorwatch_kernel_dropped_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "mirrorwatch_latency_seconds{stage=\"packet_to_alert\",quantile=\"0.5\"} 0.0015\n"
            ),
            "{text}"
        );
    }
}
