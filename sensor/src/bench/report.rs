//! The bench's results: one JSON document (`BenchDocument`, schema version 1), the table on
//! stderr and the Markdown summary of a recorded run.
//!
//! The harness's JSON is not an event of `docs/events.md`: it is a measurement record, so its
//! types derive `Serialize` here rather than in `alert/`. Every timing row carries the counts
//! of the work done (packets, flows, alerts), so a fast wrong run shows.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::pipeline::PipelineReport;

/// Version of the JSON document's shape.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole run.
#[derive(Debug, Serialize)]
pub struct BenchDocument {
    /// Shape version.
    pub schema_version: u32,
    /// `mirrorwatch` version.
    pub version: &'static str,
    /// Wall-clock start (UTC, RFC 3339).
    pub started_at: String,
    /// The machine.
    pub machine: Machine,
    /// What was asked.
    pub settings: Settings,
    /// Every input.
    pub workloads: Vec<WorkloadInfo>,
    /// Reading the file and walking its records, no decoding.
    pub physical_limit: Vec<PhysicalRow>,
    /// Full pipeline, every input × worker count.
    pub throughput: Vec<ThroughputRow>,
    /// Full pipeline on `bench-flood64:N` for each flow count.
    pub flow_scaling: Vec<ThroughputRow>,
    /// Per-stage latency percentiles.
    pub stage_latency: Vec<LatencyRow>,
    /// Packet-to-alert latency at a paced rate.
    pub alert_latency: Vec<AlertLatencyRow>,
    /// Other tools on the same files, and `mirrorwatch replay` as they run it.
    pub peers: Vec<PeerRow>,
    /// Where the run stands against the targets.
    pub targets: Vec<TargetRow>,
}

/// What the harness knows of the machine.
#[derive(Debug, Default, Serialize)]
pub struct Machine {
    /// Host name.
    pub host: String,
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs available.
    pub cpus: usize,
    /// RAM in bytes.
    pub memory_bytes: u64,
    /// Kernel release.
    pub kernel: String,
    /// Load average before the run (1, 5, 15 min).
    pub load_before: String,
    /// Load average after the run.
    pub load_after: String,
    /// Git commit of the working tree, when known.
    pub git_head: Option<String>,
}

/// The run's settings.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// Worker counts.
    pub workers: Vec<usize>,
    /// Workers the sensor itself runs with on this machine and configuration (`[pipeline]
    /// workers`, 0 = one per core left after the capture thread): the count latency is
    /// judged at.
    pub sensor_workers: usize,
    /// Seconds per row.
    pub duration_s: f64,
    /// Flow counts of the scaling rows.
    pub flow_sizes: Vec<u64>,
    /// Paced rate of the alert-latency run (0 = skipped).
    pub latency_rate_pps: f64,
    /// Flow capacity of the configuration (all workers).
    pub flow_capacity: usize,
    /// Seed of generated inputs.
    pub seed: u64,
    /// How the inputs sat in the page cache for the peers (`--page-cache`).
    pub page_cache: crate::cli::PageCacheState,
}

/// One input.
#[derive(Debug, Serialize)]
pub struct WorkloadInfo {
    /// Name in the tables.
    pub name: String,
    /// `file`, `bench` or `fixture`.
    pub source: &'static str,
    /// Packets per pass.
    pub packets: u64,
    /// Wire bytes per pass.
    pub wire_bytes: u64,
    /// Size of the capture file.
    pub file_bytes: u64,
    /// Share of the file the page cache held in 2 MiB folios when the peers read it
    /// (`capture::replay::PageCacheLayout`): reading it costs every tool less than the same
    /// bytes in 4 KiB pages, and `mirrorwatch replay` most (it maps the file). `None`: not
    /// measured (no peers) or not measurable.
    pub page_cache_huge_share: Option<f64>,
    /// Packet time of its first packet (ns since the epoch).
    pub first_ns: u64,
    /// Packet-time shift from one looped pass to the next (its span plus the flow idle
    /// timeout plus a second): pass `p` covers `first_ns + p × pass_shift_ns` onwards.
    pub pass_shift_ns: u64,
    /// How later passes move addresses.
    pub address_rewrite: String,
}

/// Work done by a run: what must be equal between a fast and a correct run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Frames pushed.
    pub packets: u64,
    /// Wire bytes of those frames.
    pub bytes: u64,
    /// Frames inside a tunnel.
    pub encapsulated: u64,
    /// Frames without an IP packet.
    pub non_ip: u64,
    /// Flows created.
    pub flows: u64,
    /// Most flows tracked at once (summed over workers).
    pub peak_tracked_flows: u64,
    /// Flows evicted because the table was full.
    pub evictions: u64,
    /// Alerts of every detector.
    pub alerts: u64,
    /// `mirror_stream` alerts.
    pub mirror_alerts: u64,
    /// `extraneous_packet` alerts.
    pub extraneous_alerts: u64,
    /// `beacon` alerts.
    pub beacon_alerts: u64,
    /// Tunnel sessions.
    pub tunnel_sessions: u64,
    /// Packets dropped at a full worker queue (live mode only; offline never drops).
    pub queue_drops: u64,
    /// Tunnel sessions not tracked because the tunnel table was full.
    pub tunnel_table_full: u64,
    /// Tunnel links evicted to make room (a source beyond its share, or a full table).
    pub tunnel_table_evicted: u64,
    /// Outer sources alerted for a tunnel-id flood.
    pub tunnel_flood_sources: u64,
    /// DNS answers matching no query (not learned by the name cache).
    pub dns_answers_unsolicited: u64,
    /// Extraneous offences that found the pending-alert table full (written at once instead
    /// of aggregated).
    pub extraneous_pending_full: u64,
    /// Extraneous alerts held back by the alert rate limit.
    pub extraneous_rate_limited: u64,
}

impl Counts {
    /// The counts of a finished pipeline.
    pub fn from_report(report: &PipelineReport) -> Counts {
        let flows = report.flows();
        let detectors = report.detectors();
        let extraneous = detectors.extraneous.alerts;
        let beacon = detectors.beacon.alerts;
        Counts {
            packets: report.capture.packets,
            bytes: report.capture.bytes,
            encapsulated: report.capture.encapsulated,
            non_ip: report.capture.non_ip,
            flows: flows.inserted,
            peak_tracked_flows: flows.peak_len,
            evictions: flows.evicted,
            alerts: report.mirror_alerts + extraneous + beacon,
            mirror_alerts: report.mirror_alerts,
            extraneous_alerts: extraneous,
            beacon_alerts: beacon,
            tunnel_sessions: report.tunnels.sessions_by_kind.iter().sum(),
            queue_drops: report.capture.queue_drops,
            tunnel_table_full: report.tunnels.table_full,
            tunnel_table_evicted: report.tunnels.evicted,
            tunnel_flood_sources: report.tunnels.flood_sources,
            dns_answers_unsolicited: report.names.answers_unsolicited,
            extraneous_pending_full: detectors.extraneous.pending_full,
            extraneous_rate_limited: detectors.extraneous.rate_limited,
        }
    }
}

/// A full-pipeline throughput row.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputRow {
    /// Input.
    pub workload: String,
    /// Workers.
    pub workers: usize,
    /// Flow capacity (all workers).
    pub flow_capacity: usize,
    /// Passes over the input (each new traffic: time and addresses moved, see `bench::input`).
    pub passes: u64,
    /// The row ran out of prepared passes (memory budget) before its duration.
    pub short_of_duration: bool,
    /// Wall time from the first push to the end of `finish`.
    pub seconds: f64,
    /// Packets per second.
    pub packets_per_s: f64,
    /// Wire bits per second.
    pub bits_per_s: f64,
    /// Peak RSS of the process during the row (the loaded input included).
    pub peak_rss_bytes: u64,
    /// Whether the peak was reset before the row (else it is the process's peak so far).
    pub peak_rss_is_per_row: bool,
    /// Peak RSS minus the RSS before the pipeline started.
    pub rss_growth_bytes: u64,
    /// Bytes one flow-table slot costs (static: entry, index share).
    pub bytes_per_flow_table: usize,
    /// RSS growth divided by the peak of tracked flows.
    pub bytes_per_flow_measured: Option<f64>,
    /// Work done.
    pub counts: Counts,
}

/// A physical-limit row.
#[derive(Clone, Debug, Serialize)]
pub struct PhysicalRow {
    /// Input.
    pub workload: String,
    /// Passes over the file.
    pub passes: u64,
    /// Packet records walked.
    pub packets: u64,
    /// Wall time.
    pub seconds: f64,
    /// Records per second.
    pub packets_per_s: f64,
    /// Wire bits per second.
    pub bits_per_s: f64,
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub samples: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl Percentiles {
    /// Of a histogram.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            samples: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Per-stage latency of one input.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyRow {
    /// Input.
    pub workload: String,
    /// Workers of the pipeline pass.
    pub workers: usize,
    /// Two consecutive `Instant::now()` calls: included in every sample below.
    pub timer_overhead_ns: Percentiles,
    /// `Decoder::decode` alone.
    pub decode_ns: Percentiles,
    /// `Pipeline::push`: decode, tunnel table, mirror detector, dispatch, queue waits.
    pub push_ns: Percentiles,
    /// `Pipeline::finish`: the workers drain, every flow and tunnel ends.
    pub finish_ns: u64,
    /// Work done by the pipeline pass.
    pub counts: Counts,
}

/// Which pass of the packet-to-alert run a figure is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyPhase {
    /// The first pass, into a fresh pipeline: its tables grow, its threads and pages are
    /// touched for the first time.
    Cold,
    /// The second pass (new traffic: time and addresses moved), into the pipeline the first
    /// pass warmed: the steady state of a running sensor.
    Warm,
}

/// Packet-to-alert latency of one input.
#[derive(Clone, Debug, Serialize)]
pub struct AlertLatencyRow {
    /// Input.
    pub workload: String,
    /// Workers.
    pub workers: usize,
    /// The pass: a cold start or the steady state.
    pub phase: LatencyPhase,
    /// Rate asked for.
    pub target_pps: f64,
    /// Rate achieved.
    pub achieved_pps: f64,
    /// Packets pushed.
    pub packets: u64,
    /// Alert lines seen in the output.
    pub alerts: u64,
    /// Alerts matched to the packet they name.
    pub matched: u64,
    /// From the push of that packet to the alert line appearing in the output file: the run
    /// with the median p99 of this pass.
    pub latency_ns: Option<Percentiles>,
    /// The same, of the mirror-stream alerts alone (the 1 ms target's): the run with the
    /// median p99 of those.
    pub mirror_latency_ns: Option<Percentiles>,
    /// Beacon and extraneous alerts, the run with the median p99 of this figure: how long
    /// after their hold ended each appeared
    /// (0 when before): from the push of the first packet at or after the alert's packet time
    /// plus the hold (`[extraneous] hold_s`; for a beacon, `[flows] idle_timeout_s`, the
    /// latest its deciding connection ends), or from the end of the input.
    pub past_hold_ns: Option<Percentiles>,
    /// Beacon and extraneous alerts of a run (the same in every run: the same input).
    pub held_alerts: u64,
    /// Runs measured (each into a fresh pipeline).
    pub runs: usize,
    /// Lowest p99 of the runs.
    pub p99_min_ns: Option<u64>,
    /// Highest p99 of the runs.
    pub p99_max_ns: Option<u64>,
    /// Nice level of the event writer (`[output] nice`, as far as the kernel allowed it).
    pub writer_nice: i32,
}

/// A peer tool (or `mirrorwatch replay`) on one input file.
#[derive(Clone, Debug, Serialize)]
pub struct PeerRow {
    /// Input.
    pub workload: String,
    /// Peer name.
    pub peer: String,
    /// What the peer does.
    pub work: String,
    /// Command line run.
    pub command: String,
    /// `ran`, `skipped` or `failed`.
    pub status: String,
    /// Why skipped or failed.
    pub message: Option<String>,
    /// Timed runs.
    pub runs: usize,
    /// Wall time: the median of the runs.
    pub seconds: Option<f64>,
    /// The fastest run.
    pub seconds_min: Option<f64>,
    /// The slowest run.
    pub seconds_max: Option<f64>,
    /// Packets of the file per second of that time.
    pub packets_per_s: Option<f64>,
    /// Peak RSS of the peer (polled `VmHWM`).
    pub peak_rss_bytes: Option<u64>,
    /// The peer's time over `mirrorwatch replay`'s on the same file (> 1: mirrorwatch is
    /// faster): the median of the ratios of paired runs (each peer run after one of
    /// `mirrorwatch replay`).
    pub time_ratio_vs_mirrorwatch: Option<f64>,
    /// What the peer counted, named (`flows`, `alerts`, `IP conversations`).
    pub counted: Vec<(String, u64)>,
}

/// One target of the issue.
#[derive(Clone, Debug, Serialize)]
pub struct TargetRow {
    /// The target.
    pub target: String,
    /// The measured figure.
    pub measured: String,
    /// Met, missed, or not measured.
    pub status: &'static str,
}

/// `12.3 M`, `456 k`, ...
pub fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0} ")
    }
}

/// Nanoseconds as a short human duration.
pub fn ns(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} s", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} µs", v / 1e3)
    } else {
        format!("{v:.0} ns")
    }
}

/// Bytes in MiB.
pub fn mib(v: u64) -> String {
    format!("{:.0} MiB", v as f64 / (1u64 << 20) as f64)
}

/// The tables, as Markdown (also what goes to stderr).
pub fn tables(doc: &BenchDocument) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Inputs\n");
    let _ = writeln!(
        s,
        "| input | source | packets | wire bytes | file bytes | page cache in 2 MiB folios (peer runs) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|");
    for w in &doc.workloads {
        let share = w
            .page_cache_huge_share
            .map_or_else(|| "-".to_owned(), |v| format!("{:.0} %", v * 100.0));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            w.name, w.source, w.packets, w.wire_bytes, w.file_bytes, share
        );
    }
    let _ = writeln!(s, "\n## Throughput (full pipeline, all detectors)\n");
    throughput_table(&mut s, &doc.throughput, &doc.physical_limit);
    if !doc.flow_scaling.is_empty() {
        let _ = writeln!(
            s,
            "\n## Flow-table scaling (bench-flood64:N, capacity 2N)\n"
        );
        throughput_table(&mut s, &doc.flow_scaling, &[]);
    }
    if !doc.stage_latency.is_empty() {
        let _ = writeln!(
            s,
            "\n## Stage latency per packet (one pass; timer overhead included)\n"
        );
        let _ = writeln!(
            s,
            "| input | stage | samples | p50 | p99 | p99.9 | max | packets | flows | alerts |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &doc.stage_latency {
            for (stage, p) in [
                ("timer", &r.timer_overhead_ns),
                ("decode", &r.decode_ns),
                (
                    if r.workers == 1 {
                        "push (1 worker)"
                    } else {
                        "push (N workers)"
                    },
                    &r.push_ns,
                ),
            ] {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.workload,
                    stage,
                    p.samples,
                    ns(p.p50 as f64),
                    ns(p.p99 as f64),
                    ns(p.p999 as f64),
                    ns(p.max as f64),
                    r.counts.packets,
                    r.counts.flows,
                    r.counts.alerts
                );
            }
            let _ = writeln!(
                s,
                "| {} | finish (drain) | 1 | {} | | | | | | |",
                r.workload,
                ns(r.finish_ns as f64)
            );
        }
    }
    if !doc.alert_latency.is_empty() {
        let _ = writeln!(
            s,
            "\n## Packet-to-alert latency (paced; per pass, the run with the median p99)\n"
        );
        let _ = writeln!(
            s,
            "| input | workers | pass | runs | p99 of the runs | target pps | achieved pps | packets | alerts | matched | p50 | p99 | p99.9 | max | mirror p99 | held alerts | p99 past their hold | writer nice |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &doc.alert_latency {
            let (p50, p99, p999, max) = r.latency_ns.map_or_else(
                || ("-".into(), "-".into(), "-".into(), "-".into()),
                |p| {
                    (
                        ns(p.p50 as f64),
                        ns(p.p99 as f64),
                        ns(p.p999 as f64),
                        ns(p.max as f64),
                    )
                },
            );
            let range = match (r.p99_min_ns, r.p99_max_ns) {
                (Some(lo), Some(hi)) => format!("{}–{}", ns(lo as f64), ns(hi as f64)),
                _ => "-".into(),
            };
            let p99_of =
                |p: Option<Percentiles>| p.map_or_else(|| "-".to_owned(), |p| ns(p.p99 as f64));
            let (mirror, past_hold) = (p99_of(r.mirror_latency_ns), p99_of(r.past_hold_ns));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {range} | {} | {} | {} | {} | {} | {p50} | {p99} | {p999} | {max} | {mirror} | {} | {past_hold} | {} |",
                r.workload,
                r.workers,
                match r.phase {
                    LatencyPhase::Cold => "cold",
                    LatencyPhase::Warm => "warm",
                },
                r.runs,
                si(r.target_pps),
                si(r.achieved_pps),
                r.packets,
                r.alerts,
                r.matched,
                r.held_alerts,
                r.writer_nice
            );
        }
    }
    if !doc.peers.is_empty() {
        let _ = writeln!(
            s,
            "\n## Peers on the same files (median of the runs; each peer run paired with a `mirrorwatch replay` run just before it, the ratio the median of the pairs')\n"
        );
        let _ = writeln!(
            s,
            "| input | tool | runs | seconds | min–max | pps | peak RSS | time / mirrorwatch | counted | work |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---|---|");
        for r in &doc.peers {
            let counted = r
                .counted
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ");
            match r.status.as_str() {
                "ran" => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {:.3} | {:.3}–{:.3} | {} | {} | {} | {} | {} |",
                        r.workload,
                        r.peer,
                        r.runs,
                        r.seconds.unwrap_or(0.0),
                        r.seconds_min.unwrap_or(0.0),
                        r.seconds_max.unwrap_or(0.0),
                        si(r.packets_per_s.unwrap_or(0.0)),
                        r.peak_rss_bytes.map_or_else(|| "-".into(), mib),
                        r.time_ratio_vs_mirrorwatch
                            .map_or_else(|| "-".into(), |x| format!("{x:.2}x")),
                        counted,
                        r.work
                    );
                }
                status => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | | {status}: {} | | | | | | {} |",
                        r.workload,
                        r.peer,
                        r.message.as_deref().unwrap_or(""),
                        r.work
                    );
                }
            }
        }
    }
    let _ = writeln!(s, "\n## Targets\n");
    let _ = writeln!(s, "| target | measured | status |");
    let _ = writeln!(s, "|---|---|---|");
    for t in &doc.targets {
        let _ = writeln!(s, "| {} | {} | {} |", t.target, t.measured, t.status);
    }
    s
}

fn throughput_table(s: &mut String, rows: &[ThroughputRow], physical: &[PhysicalRow]) {
    let _ = writeln!(
        s,
        "| input | workers | pps | bits/s | passes | packets | flows | peak flows | evictions | alerts | drops | peak RSS | RSS growth | B/flow (table) | B/flow (RSS) |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for p in physical {
        let _ = writeln!(
            s,
            "| {} | read+walk (physical limit) | {}pps | {}b/s | {} | {} | | | | | | | | | |",
            p.workload,
            si(p.packets_per_s),
            si(p.bits_per_s),
            p.passes,
            p.packets
        );
    }
    for r in rows {
        let c = &r.counts;
        let _ = writeln!(
            s,
            "| {} | {} | {}pps | {}b/s | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.workload,
            r.workers,
            si(r.packets_per_s),
            si(r.bits_per_s),
            r.passes,
            c.packets,
            c.flows,
            c.peak_tracked_flows,
            c.evictions,
            c.alerts,
            c.queue_drops,
            mib(r.peak_rss_bytes),
            mib(r.rss_growth_bytes),
            r.bytes_per_flow_table,
            r.bytes_per_flow_measured
                .map_or_else(|| "-".into(), |b| format!("{b:.0}")),
        );
    }
}
