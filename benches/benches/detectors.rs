//! Per-packet cost of each flow detector: the full pipeline with no flow detector, with only
//! `[extraneous]`, with only `[beacon]`, and with both (the default), in one run; and the
//! memory of one tracked beacon pair. (`mirror_stream` runs inside the tunnel table of the
//! capture thread: its cost is the encapsulated rows of the `pipeline` bench.)
//!
//! Input, built in memory at start (`mirrorwatch_benches::Traffic`, plain variant): 50,000
//! IPv4 flows (75 % TCP, 25 % UDP), 10 packets each, minimum-size frames shuffled across the
//! capture. Every client is in 10.0.0.0/8 (home) and every server in 192.0.2.0/24 (untrusted
//! by default), so every flow is outbound to an untrusted destination: each one is a
//! connection beat and creates a pair (50,000 pairs against a table of 32,768: evictions on
//! every run), a worst case for the beacon detector. Every case runs one worker (`--workers 1`),
//! so the difference to `none` is the per-packet cost of a detector on one core.
//!
//! After each case the bench prints the packets, flows and beacon counters (and stops if the
//! packet or flow count is wrong, or if the enabled detector recorded no beat), so a fast
//! wrong run shows. Then it prints the bytes of one tracked pair and one packet track, read
//! from the allocated tables of a detector built with the default configuration, and the bytes
//! of one flow-table slot.
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench detectors -- --warm-up-time 1 --measurement-time 4`.

// A bench that cannot build its input or gets wrong counts must stop loudly; not packet paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flowtable::FlowTable;
use mirrorwatch::alert::{EventWriter, OutputTarget};
use mirrorwatch::config::Config;
use mirrorwatch::detect::beacon::{BeaconDetector, KnownDestinations};
use mirrorwatch::detect::{FlowExt, SharedState};
use mirrorwatch::names::NameCache;
use mirrorwatch::pipeline::{Pipeline, PipelineOptions, PipelineReport};
use mirrorwatch_benches::{Encapsulation, MixSpec, Traffic};

/// The traffic both cases run on.
const SPEC: MixSpec = MixSpec {
    flows: 50_000,
    packets_per_flow: 10,
    mirror_sessions: 1,
    seed: 0x6265_6163_6f6e,
};

/// Rounds of the interleaved measurement (each runs every case once).
const INTERLEAVED_ROUNDS: usize = 9;

/// One full pipeline run; returns the time of push + finish and the report.
fn run(config: &Config, traffic: &Traffic, out: &Path) -> (StdDuration, PipelineReport) {
    let writer = EventWriter::spawn(&OutputTarget::File(out.to_path_buf())).unwrap();
    let options = PipelineOptions {
        workers: 1,
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
    writer.finish().unwrap();
    (elapsed, report)
}

fn check(case: &str, traffic: &Traffic, report: &PipelineReport, config: &Config) {
    let detectors = report.detectors();
    let (beacon, extraneous) = (detectors.beacon, detectors.extraneous);
    eprintln!(
        "  {case}: {} packets, {} flows; beacon: {} connection beats, {} pairs created, {} evicted ({} irregular), {} alerts; extraneous: {} flows judged, {} alerts",
        report.capture.packets,
        report.flows().inserted,
        beacon.connection_beats,
        beacon.pairs_created,
        beacon.pairs_evicted,
        beacon.pairs_evicted_irregular,
        beacon.alerts,
        extraneous.flows,
        extraneous.alerts
    );
    assert_eq!(
        report.capture.packets,
        traffic.len() as u64,
        "{case}: packets"
    );
    assert_eq!(
        report.flows().inserted,
        u64::from(SPEC.flows),
        "{case}: flows"
    );
    assert_eq!(
        beacon.connection_beats > 0,
        config.beacon.enabled,
        "{case}: connection beats"
    );
    assert_eq!(
        extraneous.flows > 0,
        config.extraneous.enabled,
        "{case}: flows seen by the extraneous detector"
    );
}

fn bench_detectors(c: &mut Criterion) {
    let traffic = Traffic::build(&SPEC, Encapsulation::Plain);
    let dir = std::env::temp_dir().join(format!("mw-bench-detectors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("events.jsonl");
    let config_with = |extraneous: bool, beacon: bool| {
        let mut c = Config::default();
        c.extraneous.enabled = extraneous;
        c.beacon.enabled = beacon;
        c
    };
    let cases = [
        ("none", config_with(false, false)),
        ("extraneous", config_with(true, false)),
        ("beacon", config_with(false, true)),
        ("all", config_with(true, true)),
    ];

    let mut group = c.benchmark_group("detectors");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(traffic.len() as u64));
    for (name, config) in &cases {
        let mut last = None;
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut spent = StdDuration::ZERO;
                for _ in 0..iters {
                    let (elapsed, report) = run(config, &traffic, &out);
                    spent += elapsed;
                    last = Some(report);
                }
                spent
            })
        });
        // `None`: filtered out on the command line.
        if let Some(report) = last {
            check(name, &traffic, &report, config);
        }
    }
    group.finish();

    // The machine may be shared: run every case once per round, in turn, and compare medians,
    // so load that comes and goes hits all cases alike.
    let mut times: Vec<Vec<StdDuration>> = vec![Vec::new(); cases.len()];
    for _ in 0..INTERLEAVED_ROUNDS {
        for (i, (_, config)) in cases.iter().enumerate() {
            times[i].push(run(config, &traffic, &out).0);
        }
    }
    let medians: Vec<StdDuration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[INTERLEAVED_ROUNDS / 2]
        })
        .collect();
    let packets = traffic.len() as f64;
    let base = medians[0];
    eprintln!("interleaved, {INTERLEAVED_ROUNDS} rounds, medians (1 worker):");
    for ((name, _), t) in cases.iter().zip(&medians) {
        let extra_ns = (t.as_secs_f64() - base.as_secs_f64()) * 1e9 / packets;
        eprintln!(
            "  {name:<10} {:.2} Mpps, time ratio to none {:.3}, {extra_ns:+.1} ns per packet",
            packets / t.as_secs_f64() / 1e6,
            t.as_secs_f64() / base.as_secs_f64(),
        );
    }

    // Memory: one worker's detector with the default capacities, as allocated.
    let config = Config::default();
    let shared = SharedState {
        names: Arc::new(NameCache::new(16)),
        destinations: Arc::new(KnownDestinations::default()),
    };
    let detector = BeaconDetector::new(&config.beacon, &config.networks.home, &shared, 1);
    let (pairs, pair_bytes) = detector.pair_memory();
    let (tracks, track_bytes) = detector.track_memory();
    eprintln!(
        "memory: {pairs} pairs in {pair_bytes} bytes = {} bytes per tracked pair; {tracks} packet tracks in {track_bytes} bytes = {} bytes per track; flow-table slot {} bytes",
        pair_bytes / pairs.max(1),
        track_bytes / tracks.max(1),
        FlowTable::<FlowExt>::approx_bytes_per_flow()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

criterion_group!(benches, bench_detectors);
criterion_main!(benches);
