//! Per-packet cost of the copy window where it runs: in the capture front (replay and one
//! live capture thread) or in the workers (sharded live capture, `--capture-threads N`).
//!
//! Input, built in memory at start (`mirrorwatch_benches::Traffic`): 20,000 IPv4 flows of 10
//! minimum-size packets, seen as a SPAN port sees a mirrored host: each native frame is
//! followed by its VXLAN copy (16 mirror sessions), 400,000 frames in all, so every copy
//! matches its original (the worst case for the copy window: a finding per copy). One worker.
//!
//! - `front_push/<where>`: the capture thread's time, `push` of every frame (the workers run
//!   beside it; a full queue makes `push` wait, as in replay);
//! - `end_to_end/<where>`: `push` of every frame and `finish()`, the workers' work included.
//!
//! `<where>` is `copy_window_in_front` (`Pipeline::start`, one front) or
//! `copy_window_in_workers` (`Pipeline::start_sharded` with two fronts, all frames pushed
//! through the first: the second front, never started, meets the first at `finish`). After each
//! case the bench checks that every copy was matched (the tunnel sessions' `duplicates` sum to
//! the copies) and that no finding was dropped, so a fast wrong run shows.
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench fanout -- --warm-up-time 1 --measurement-time 4`.

// A bench that cannot build its input or gets wrong counts must stop loudly; not packet paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration as StdDuration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use mirrorwatch::alert::{EventWriter, OutputTarget};
use mirrorwatch::capture::CaptureRecord;
use mirrorwatch::config::Config;
use mirrorwatch::pipeline::{Pipeline, PipelineOptions, PipelineReport};
use mirrorwatch_benches::{Encapsulation, MixSpec, Traffic};

const SPEC: MixSpec = MixSpec {
    flows: 20_000,
    packets_per_flow: 10,
    mirror_sessions: 16,
    seed: 0x6661_6e6f_7574,
};

/// Where the copy window runs.
#[derive(Clone, Copy)]
enum Placement {
    Front,
    Workers,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::Front => "copy_window_in_front",
            Placement::Workers => "copy_window_in_workers",
        }
    }
}

/// Each native frame, then its copy 1 µs later.
fn span_view<'a>(plain: &'a Traffic, vxlan: &'a Traffic) -> Vec<CaptureRecord<'a>> {
    let mut out = Vec::with_capacity(plain.len() * 2);
    for (native, copy) in plain.records().zip(vxlan.records()) {
        out.push(native);
        out.push(CaptureRecord {
            ts: flowtable::Timestamp(copy.ts.0 + 1_000),
            ..copy
        });
    }
    out
}

/// One run: the time of `push` alone and of `push` + `finish`, and the report.
fn run(
    config: &Config,
    placement: Placement,
    frames: &[CaptureRecord<'_>],
    out: &Path,
) -> (StdDuration, StdDuration, PipelineReport) {
    let writer = EventWriter::spawn(&OutputTarget::File(out.to_path_buf())).unwrap();
    let options = PipelineOptions {
        workers: 1,
        flow_records: false,
        drop_when_full: false,
    };
    let fronts = match placement {
        Placement::Front => 1,
        Placement::Workers => 2,
    };
    let mut pipeline = Pipeline::start_sharded(config, options, fronts, || writer.sink()).unwrap();
    let start = Instant::now();
    for rec in frames {
        pipeline.push(rec).unwrap();
    }
    let pushed = start.elapsed();
    let report = pipeline.finish().unwrap();
    let total = start.elapsed();
    writer.finish().unwrap();
    (pushed, total, report)
}

fn check(case: &str, report: &PipelineReport, copies: u64) {
    let matched: u64 = report.tunnel_records.iter().map(|r| r.duplicates).sum();
    let dropped: u64 = report.workers.iter().map(|w| w.copy_notes_dropped).sum();
    eprintln!(
        "{case}: {} frames, {} tunnel sessions, {matched} copies matched of {copies}, {dropped} findings dropped",
        report.capture.packets,
        report.tunnel_records.len()
    );
    assert_eq!(matched, copies, "{case}: copies not all matched");
    assert_eq!(dropped, 0, "{case}");
}

fn bench_fanout(c: &mut Criterion) {
    let mut config = Config::default();
    // One replayed pass: nothing expires mid-run, so every session reports its matches.
    config.pipeline.workers = 1;
    let plain = Traffic::build(&SPEC, Encapsulation::Plain);
    let vxlan = Traffic::build(&SPEC, Encapsulation::Vxlan);
    let frames = span_view(&plain, &vxlan);
    let copies = vxlan.len() as u64;
    let dir = std::env::temp_dir().join(format!("mw-bench-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("events.json");
    for (group_name, timed_push) in [("front_push", true), ("end_to_end", false)] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Elements(frames.len() as u64));
        for placement in [Placement::Front, Placement::Workers] {
            let mut last = None;
            group.bench_function(BenchmarkId::new(placement.name(), 1), |b| {
                b.iter_custom(|iters| {
                    let mut sum = StdDuration::ZERO;
                    for _ in 0..iters {
                        let (pushed, total, report) = run(&config, placement, &frames, &out);
                        sum += if timed_push { pushed } else { total };
                        last = Some(report);
                    }
                    sum
                })
            });
            if let Some(report) = last {
                check(
                    &format!("{group_name}/{}", placement.name()),
                    &report,
                    copies,
                );
            }
        }
        group.finish();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_fanout);
criterion_main!(benches);
