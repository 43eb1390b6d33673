//! Per-packet cost of the sensor, from decode alone to the full threaded pipeline, on plain
//! and mirrored (encapsulated) minimum-size frames.
//!
//! Input, built in memory at start (`mirrorwatch_benches::Traffic`): 100,000 IPv4 flows
//! (75 % TCP, 25 % UDP), 10 packets each, both directions, 1,000,000 minimum-size frames
//! shuffled across the whole capture, stamped at 10GbE line rate. Three variants carry the same
//! inner packets: `plain`; `vxlan` (every frame mirrored one way to a collector in VXLAN over
//! UDP 4789, as AWS Traffic Mirroring does, 16 sessions); `erspan2` (ERSPAN type II, 16
//! sessions). Every case reports throughput in packets:
//!
//! - `decode/*`: `Decoder::decode` over every frame;
//! - `decode_flow/*`: decode, canonical `FlowKey`, `FlowTable::touch` + `counters.record` in one
//!   thread (tunnel context: the innermost tunnel id), with `expire` every 256 packets and a
//!   `drain` at the end, like a worker;
//! - `flow_table/plain`: the flow-table half of `decode_flow` alone, over keys decoded before
//!   timing (what a worker does with its batches);
//! - `pipeline/<variant>/<workers>`: `Pipeline::start` (not timed), then `push` of every frame
//!   and `finish()` (timed), events written to a temp file by an `EventWriter`; flow records
//!   off (the `replay` default).
//!
//! After each case the bench prints the packets, flows and tunnel sessions counted (and stops
//! if they are wrong), so a fast wrong run shows. Budget: 10GbE line rate is 14.88 Mpps of
//! 64-byte frames, 67 ns per packet per core.
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench pipeline -- --warm-up-time 1 --measurement-time 4`.

// A bench that cannot build its input or gets wrong counts must stop loudly; not packet paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration as StdDuration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use flowtable::{
    Direction, ExpireReason, FlowEntry, FlowKey, FlowTable, FlowTableConfig, Timestamp,
};
use mirrorwatch::alert::{EventWriter, OutputTarget};
use mirrorwatch::config::Config;
use mirrorwatch::decode::{DecodeCounters, Decoder};
use mirrorwatch::pipeline::{FlowExt, Pipeline, PipelineOptions, PipelineReport};
use mirrorwatch_benches::{Encapsulation, LINE_RATE_64B_PPS, MixSpec, Traffic};

/// The traffic every case runs on.
const SPEC: MixSpec = MixSpec {
    flows: 100_000,
    packets_per_flow: 10,
    mirror_sessions: 16,
    seed: 0x6d69_7272_6f72,
};

/// Packets between `expire` calls in the single-thread cases (the default batch size).
const EXPIRE_EVERY: usize = 256;

/// Seed of the single-thread flow tables (the pipeline draws a random one).
const TABLE_SEED: u64 = 0x7461_626c_6573_6565;

/// What a single-thread pass counted, checked after each case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PassCounts {
    packets: u64,
    with_inner: u64,
    encapsulated: u64,
    flows: u64,
    tunnel_sessions: u64,
}

fn ignore(_: &FlowEntry<FlowExt>, _: ExpireReason) {}

fn table_config(config: &Config) -> FlowTableConfig {
    FlowTableConfig {
        capacity: config.flows.capacity,
        idle_timeout: config.flow_idle_timeout(),
        active_timeout: config.flow_active_timeout(),
    }
}

/// What every case must count on `traffic`.
fn expected(traffic: &Traffic) -> PassCounts {
    let encapsulated = traffic.encap != Encapsulation::Plain;
    PassCounts {
        packets: traffic.len() as u64,
        with_inner: traffic.len() as u64,
        encapsulated: if encapsulated {
            traffic.len() as u64
        } else {
            0
        },
        flows: u64::from(traffic.spec.flows),
        tunnel_sessions: if encapsulated {
            u64::from(traffic.spec.mirror_sessions)
        } else {
            0
        },
    }
}

fn check(case: &str, traffic: &Traffic, got: PassCounts, decode: &DecodeCounters) {
    let want = expected(traffic);
    eprintln!(
        "check {case}: {} packets, {} with an inner IP packet, {} encapsulated, {} flows, {} tunnel sessions, decode events {:?}",
        got.packets,
        got.with_inner,
        got.encapsulated,
        got.flows,
        got.tunnel_sessions,
        decode.named()
    );
    // The single-thread cases have no tunnel table; `decode` has no flow table either.
    let want = match case.split('/').next() {
        Some("decode") => PassCounts {
            flows: 0,
            tunnel_sessions: 0,
            ..want
        },
        Some("decode_flow" | "flow_table") => PassCounts {
            tunnel_sessions: 0,
            ..want
        },
        _ => want,
    };
    assert_eq!(got, want, "{case}: wrong counts");
    assert!(decode.named().is_empty(), "{case}: decode errors");
}

fn decode_pass(decoder: &Decoder, traffic: &Traffic, counters: &mut DecodeCounters) -> PassCounts {
    let mut n = PassCounts::default();
    for rec in traffic.records() {
        let d = decoder.decode(rec.link, rec.data, rec.orig_len, counters);
        n.packets += 1;
        n.with_inner += u64::from(d.inner.is_some());
        n.encapsulated += u64::from(!d.tunnels.is_empty());
        black_box(&d);
    }
    n
}

/// Decode, canonical key, flow table; as a worker's table would see it but in one thread.
fn decode_flow_pass(
    decoder: &Decoder,
    traffic: &Traffic,
    table: &mut FlowTable<FlowExt>,
    counters: &mut DecodeCounters,
) -> PassCounts {
    let mut n = PassCounts::default();
    let mut now = Timestamp::ZERO;
    for (pkt_idx, rec) in traffic.records().enumerate() {
        n.packets += 1;
        let d = decoder.decode(rec.link, rec.data, rec.orig_len, counters);
        n.encapsulated += u64::from(!d.tunnels.is_empty());
        if let Some(p) = d.inner {
            n.with_inner += 1;
            let context = d.tunnels.last().map_or(0, |t| u64::from(t.id) + 1);
            let (key, dir) = FlowKey::new(p.src, p.src_port, p.dst, p.dst_port, p.proto, context);
            let (entry, _) = table.touch(&key, dir, rec.ts, &mut ignore);
            entry
                .counters
                .record(dir, rec.ts, p.ip_len, p.tcp.map_or(0, |t| t.flags));
        }
        now = now.max(rec.ts);
        if pkt_idx % EXPIRE_EVERY == EXPIRE_EVERY - 1 {
            table.expire(now, &mut ignore);
        }
    }
    n.flows = table.len() as u64;
    table.drain(&mut ignore);
    n
}

/// What a worker receives for one packet (a stand-in for `PacketMeta`).
#[derive(Clone, Copy)]
struct Decoded {
    key: FlowKey,
    dir: Direction,
    ts: Timestamp,
    ip_len: u32,
    tcp_flags: u8,
}

/// Every packet of `traffic` decoded into what the flow table needs (not timed).
fn predecode(decoder: &Decoder, traffic: &Traffic) -> Vec<Decoded> {
    let mut counters = DecodeCounters::default();
    traffic
        .records()
        .filter_map(|rec| {
            let d = decoder.decode(rec.link, rec.data, rec.orig_len, &mut counters);
            let p = d.inner?;
            let context = d.tunnels.last().map_or(0, |t| u64::from(t.id) + 1);
            let (key, dir) = FlowKey::new(p.src, p.src_port, p.dst, p.dst_port, p.proto, context);
            Some(Decoded {
                key,
                dir,
                ts: rec.ts,
                ip_len: p.ip_len,
                tcp_flags: p.tcp.map_or(0, |t| t.flags),
            })
        })
        .collect()
}

/// The flow-table half of `decode_flow_pass` alone, over pre-decoded packets: a worker's loop.
fn flow_table_pass(packets: &[Decoded], table: &mut FlowTable<FlowExt>) -> PassCounts {
    let mut now = Timestamp::ZERO;
    for (pkt_idx, p) in packets.iter().enumerate() {
        let (entry, _) = table.touch(&p.key, p.dir, p.ts, &mut ignore);
        entry.counters.record(p.dir, p.ts, p.ip_len, p.tcp_flags);
        now = now.max(p.ts);
        if pkt_idx % EXPIRE_EVERY == EXPIRE_EVERY - 1 {
            table.expire(now, &mut ignore);
        }
    }
    let n = PassCounts {
        packets: packets.len() as u64,
        with_inner: packets.len() as u64,
        flows: table.len() as u64,
        ..PassCounts::default()
    };
    table.drain(&mut ignore);
    n
}

/// The counts of a finished pipeline, in the single-thread shape.
fn pipeline_counts(report: &PipelineReport) -> PassCounts {
    PassCounts {
        packets: report.capture.packets,
        with_inner: report.capture.packets - report.capture.non_ip,
        encapsulated: report.capture.encapsulated,
        flows: report.flows().inserted,
        tunnel_sessions: report.tunnels.sessions_by_kind.iter().sum(),
    }
}

/// One full pipeline run over `traffic`; returns the time of push + finish, the report and the
/// bytes of events written.
fn pipeline_run(
    config: &Config,
    workers: usize,
    traffic: &Traffic,
    out: &Path,
) -> (StdDuration, PipelineReport, u64) {
    let writer = EventWriter::spawn(&OutputTarget::File(out.to_path_buf())).unwrap();
    let options = PipelineOptions {
        workers,
        flow_records: false,
        drop_when_full: false,
    };
    let mut pipeline = Pipeline::start(config, options, || writer.sink()).unwrap();
    let start = Instant::now();
    for rec in traffic.records() {
        pipeline.push(&rec).unwrap();
    }
    let report = pipeline.finish().unwrap();
    let elapsed = start.elapsed();
    let written = writer.finish().unwrap();
    (elapsed, report, written)
}

fn bench_pipeline(c: &mut Criterion) {
    let config = Config::default();
    let started = Instant::now();
    let variants: Vec<Traffic> = Encapsulation::ALL
        .iter()
        .map(|e| Traffic::build(&SPEC, *e))
        .collect();
    eprintln!(
        "traffic: {} flows x {} packets, {} mirror sessions, built in {:.1} s; budget {:.2} Mpps ({:.1} ns/packet) = 10GbE line rate of 64-byte frames",
        SPEC.flows,
        SPEC.packets_per_flow,
        SPEC.mirror_sessions,
        started.elapsed().as_secs_f64(),
        LINE_RATE_64B_PPS / 1e6,
        1e9 / LINE_RATE_64B_PPS
    );
    for t in &variants {
        eprintln!(
            "  {:<8} {} frames, {} bytes, {:.1} bytes/frame",
            t.encap.name(),
            t.len(),
            t.bytes(),
            t.bytes() as f64 / t.len() as f64
        );
    }
    let decoder = Decoder::new(config.decode.clone());

    let mut group = c.benchmark_group("decode");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for traffic in &variants {
        group.throughput(Throughput::Elements(traffic.len() as u64));
        let mut counters = DecodeCounters::default();
        let mut last = None;
        let name = traffic.encap.name();
        group.bench_function(name, |b| {
            b.iter(|| last = Some(decode_pass(&decoder, traffic, &mut counters)))
        });
        // `None`: filtered out on the command line.
        if let Some(last) = last {
            check(&format!("decode/{name}"), traffic, last, &counters);
        }
    }
    group.finish();

    let mut group = c.benchmark_group("decode_flow");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let mut table: FlowTable<FlowExt> = FlowTable::new(table_config(&config), TABLE_SEED);
    for traffic in &variants {
        group.throughput(Throughput::Elements(traffic.len() as u64));
        let mut counters = DecodeCounters::default();
        let mut last = None;
        let name = traffic.encap.name();
        group.bench_function(name, |b| {
            b.iter(|| {
                last = Some(decode_flow_pass(
                    &decoder,
                    traffic,
                    &mut table,
                    &mut counters,
                ))
            })
        });
        if let Some(last) = last {
            check(&format!("decode_flow/{name}"), traffic, last, &counters);
        }
    }
    group.finish();

    // The flow-table work alone, on the plain variant (the keys are the same in all three).
    let mut group = c.benchmark_group("flow_table");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let plain = &variants[0];
    let packets = predecode(&decoder, plain);
    group.throughput(Throughput::Elements(plain.len() as u64));
    let mut last = None;
    group.bench_function(plain.encap.name(), |b| {
        b.iter(|| last = Some(flow_table_pass(&packets, &mut table)))
    });
    if let Some(last) = last {
        check("flow_table/plain", plain, last, &DecodeCounters::default());
    }
    drop(packets);
    group.finish();

    let out = std::env::temp_dir().join(format!(
        "mirrorwatch-bench-pipeline-{}.jsonl",
        std::process::id()
    ));
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for workers in [1, 2] {
        for traffic in &variants {
            group.throughput(Throughput::Elements(traffic.len() as u64));
            let name = traffic.encap.name();
            let mut last = None;
            group.bench_function(BenchmarkId::new(name, workers), |b| {
                b.iter_custom(|iters| {
                    let mut timed = StdDuration::ZERO;
                    for _ in 0..iters {
                        let (elapsed, report, written) =
                            pipeline_run(&config, workers, traffic, &out);
                        timed += elapsed;
                        last = Some((report, written));
                    }
                    timed
                })
            });
            let Some((report, written)) = last else {
                continue;
            };
            let per_worker: Vec<u64> = report.workers.iter().map(|w| w.packets).collect();
            eprintln!(
                "check pipeline/{name}/{workers}: per worker {per_worker:?} packets, {} tunnel events, {written} bytes of events",
                report.tunnel_events
            );
            check(
                &format!("pipeline/{name}/{workers}"),
                traffic,
                pipeline_counts(&report),
                &report.capture.decode,
            );
            assert_eq!(per_worker.iter().sum::<u64>(), traffic.len() as u64);
            assert_eq!(
                report.tunnel_events,
                expected(traffic).tunnel_sessions,
                "one tunnel record per session"
            );
        }
    }
    group.finish();
    let _ = std::fs::remove_file(&out);
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
