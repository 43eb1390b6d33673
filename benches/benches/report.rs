//! The hunting report (issue 15) of a 1-million-packet replay: time to build it from the
//! events file (read, parse, aggregate) and to render the page, and the page's size.
//!
//! Input, built at start: `bench-mirror:33000` (1,004,962 packets, every frame mirrored to an
//! external collector) replayed with `--flows` into an events file (about 34,000 events,
//! 16 MB), the heaviest events a replay of that size writes. The setup prints the event
//! count and the page size, and stops if the page is 5 MiB or more.
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench report -- --warm-up-time 1 --measurement-time 5`.
//!
//! Recorded 2026-12-04 on the shared 2-core VM under a load average of 13 to 17 (other
//! builds running): 34,031 events (16.3 MB), page 545,301 bytes; criterion median 0.82 s
//! [0.73 s, 0.92 s] wall. The CPU time of the same work, `/usr/bin/time mirrorwatch report
//! events.jsonl -o r.html`, was 0.10 to 0.19 s (user + sys) with 37 MB peak RSS, so on an idle
//! core the wall time is that.

// A bench that cannot build its input must stop loudly; not packet paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use clap::Parser;
use criterion::{Criterion, criterion_group, criterion_main};
use mirrorwatch::cli::{Cli, Command};
use mirrorwatch::config::Config;
use mirrorwatch::generate::bench_scenarios::{BenchRequest, write};
use mirrorwatch::report::{Report, ReportOptions};

fn events_file() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mw-bench-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("bench-mirror.pcap");
    let events = dir.join("events.jsonl");
    let request = BenchRequest::parse("bench-mirror:33000").unwrap().unwrap();
    let summary = write(&request, 1, &pcap).unwrap();
    assert!(summary.packets >= 1_000_000, "{} packets", summary.packets);
    // Parsed like the command line, so options other helpers add keep their defaults.
    let cli = Cli::try_parse_from([
        "mirrorwatch",
        "replay",
        "--flows",
        "--no-progress",
        "-o",
        events.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ])
    .unwrap();
    let Command::Replay(args) = cli.command else {
        panic!("not a replay");
    };
    mirrorwatch::run::replay(&args).unwrap();
    let _ = std::fs::remove_file(&pcap);
    events
}

fn bench(c: &mut Criterion) {
    let events = events_file();
    let options = ReportOptions::from_config(&Config::default(), vec!["bench-mirror".into()]);
    let report = Report::from_path(&events, options.clone()).unwrap();
    let page = report.render();
    eprintln!(
        "report: {} events ({} bytes), {} flows, {} tunnel sessions, {} alerts; page {} bytes",
        report.lines,
        std::fs::metadata(&events).unwrap().len(),
        report.flows_total,
        report.tunnels_total,
        report.alerts_total(),
        page.len()
    );
    assert!(page.len() < 5 << 20, "page of {} bytes", page.len());
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.bench_function("build+render bench-mirror 1M packets", |b| {
        b.iter(|| {
            let r = Report::from_path(&events, options.clone()).unwrap();
            r.render().len()
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(events.parent().unwrap());
}

criterion_group!(benches, bench);
criterion_main!(benches);
