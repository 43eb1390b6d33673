//! `--metrics ADDR`: the live sensor's counters in the Prometheus text format over HTTP.
//!
//! The capture loop renders the text once a second ([`render`]) and stores it; the server
//! answers every `GET` on the address with the latest text. Each connection gets its own
//! short-lived thread with a strict deadline for the whole exchange ([`REQUEST_DEADLINE`]),
//! not a per-read timeout that a client sending a byte now and then keeps renewing; at most
//! [`MAX_CONNECTIONS`] are served at once and more are closed at once. So idle or slow
//! clients cannot delay a scrape (issue 18 item 11), and the capture thread never touches a
//! socket. Hand-written on `std::net` rather than an HTTP or metrics crate: the format is a
//! few lines of text and the sensor serves nothing else.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::capture::live::KernelStats;
use crate::decode::TunnelKind;
use crate::latency::LatencySummary;
use crate::pipeline::PipelineReport;

/// Longest a client may take to send its request and read the answer, in all.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

/// Connections served at once; one more is closed without an answer.
pub const MAX_CONNECTIONS: usize = 64;

/// A bound metrics address, not yet served: binding comes before the privilege drop (a
/// port below 1024 needs it), serving after (no thread may keep root's rights).
pub struct MetricsListener {
    listener: TcpListener,
}

impl MetricsListener {
    /// Binds `addr`.
    pub fn bind(addr: SocketAddr) -> std::io::Result<MetricsListener> {
        Ok(MetricsListener {
            listener: TcpListener::bind(addr)?,
        })
    }

    /// Starts answering.
    pub fn start(self) -> std::io::Result<MetricsServer> {
        let listener = self.listener;
        let addr = listener.local_addr()?;
        let text = Arc::new(Mutex::new(String::new()));
        let shared = Arc::clone(&text);
        let open = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("mw-metrics".to_owned())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                        open.fetch_sub(1, Ordering::AcqRel);
                        continue;
                    }
                    let text = Arc::clone(&shared);
                    let open_here = Arc::clone(&open);
                    let spawned = std::thread::Builder::new()
                        .name("mw-metrics-conn".to_owned())
                        .spawn(move || {
                            // A scraper that misbehaves loses its answer, nothing else.
                            let _ = answer(stream, &text);
                            open_here.fetch_sub(1, Ordering::AcqRel);
                        });
                    if spawned.is_err() {
                        open.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            })?;
        Ok(MetricsServer { text, addr })
    }
}

/// The metrics endpoint.
pub struct MetricsServer {
    text: Arc<Mutex<String>>,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` and starts answering.
    pub fn serve(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        MetricsListener::bind(addr)?.start()
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

/// The time left before `deadline`, as a socket timeout (`TimedOut` once it has passed).
fn left(deadline: Instant) -> std::io::Result<Option<Duration>> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(Some(d)),
        _ => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

fn answer(mut stream: TcpStream, text: &Mutex<String>) -> std::io::Result<()> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    // Read the request head (bounded); we answer every path the same way. Each read waits
    // only for what is left of the deadline.
    let mut head = [0u8; 4096];
    let mut n = 0;
    while n < head.len() {
        stream.set_read_timeout(left(deadline)?)?;
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
    // The answer is written in pieces, each within what is left of the deadline, so a client
    // that reads slowly is cut off too.
    for chunk in response.as_bytes().chunks(16 * 1024) {
        stream.set_write_timeout(left(deadline)?)?;
        stream.write_all(chunk)?;
    }
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

    fn scrape(addr: SocketAddr) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    }

    /// Issue 18 item 11: five idle connections and a client sending a byte every 1.5 s do
    /// not delay a scrape, and the slow client is cut off at the deadline.
    #[test]
    fn idle_and_slow_clients_do_not_delay_a_scrape() {
        let server = MetricsServer::serve("127.0.0.1:0".parse().unwrap()).unwrap();
        server.update("mirrorwatch_packets_total 7\n".to_owned());
        let idle: Vec<TcpStream> = (0..5)
            .map(|_| TcpStream::connect(server.addr()).unwrap())
            .collect();
        let mut slow = TcpStream::connect(server.addr()).unwrap();
        let slow_started = Instant::now();
        let dripper = std::thread::spawn(move || {
            for b in b"GET /metrics HTTP/1.1\r\n" {
                if slow.write_all(&[*b]).is_err() {
                    return slow_started.elapsed();
                }
                std::thread::sleep(Duration::from_millis(1500));
            }
            slow_started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(200));
        for _ in 0..3 {
            let started = Instant::now();
            let text = scrape(server.addr());
            assert!(text.contains("mirrorwatch_packets_total 7"), "{text}");
            // Generous for a loaded CI machine, and far below the 2 s a blocked server took.
            assert!(
                started.elapsed() < Duration::from_millis(1000),
                "a scrape took {:?}",
                started.elapsed()
            );
        }
        // The slow client's connection is closed at the deadline: its writes start failing
        // within a few drips, not after the whole request line (37 s).
        let gave_up = dripper.join().unwrap();
        assert!(gave_up < Duration::from_secs(10), "{gave_up:?}");
        drop(idle);
    }

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
