//! Event throughput of the outputs: a file, Redis (a list, pipelined), and both at once, in
//! one run, through the real writer (`EventWriter::start`, two producer sinks, replay mode:
//! nothing dropped, `finish` waits until every output has every event).
//!
//! Input: 200,000 events built in memory, shaped like flow records (about 330 bytes) with one
//! alert in ten. A `redis-server` is started by the bench on a loopback port (no persistence);
//! without one the Redis rows are skipped, loudly. After each measured iteration the bench
//! checks that the file has every line and the Redis list every event (then empties it), so a
//! fast wrong run shows.
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench outputs -- --warm-up-time 1 --measurement-time 6`.

// A bench that cannot set up its outputs or loses events must stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use mirrorwatch::alert::EventWriter;
use mirrorwatch::alert::WriterOptions;
use mirrorwatch::alert::output::OutputSpec;

const EVENTS: usize = 200_000;
const PORT: u16 = 16_379;

fn events() -> Vec<serde_json::Value> {
    (0..EVENTS)
        .map(|i| {
            serde_json::json!({
                "timestamp": format!("2026-01-05T09:00:{:02}.{:06}Z", i % 60, i % 1_000_000),
                "event_type": if i % 10 == 0 { "alert" } else { "flow" },
                "src_ip": format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                "src_port": 1024 + i % 60_000,
                "dest_ip": "192.0.2.10",
                "dest_port": 443,
                "proto": "tcp",
                "flow": {
                    "pkts_toserver": i % 97, "pkts_toclient": i % 89,
                    "bytes_toserver": i * 7 % 100_000, "bytes_toclient": i * 13 % 1_000_000,
                    "start": "2026-01-05T09:00:00.000000Z", "end": "2026-01-05T09:00:01.000000Z",
                    "state": "closed", "reason": "idle", "conn_state": "SF", "history": "ShADadFf"
                },
                "tunnel": null
            })
        })
        .collect()
}

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &PORT.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn start_redis() -> Option<Redis> {
    let dir = std::env::temp_dir().join(format!("mw-bench-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let child = Command::new("redis-server")
        .args(["--port", &PORT.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let redis = Redis(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis_cli(&["PING"]) != "PONG" {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(redis)
}

/// Writes every event through two sinks to `outputs` and waits until all are delivered.
fn write_all(outputs: &[OutputSpec], events: &[serde_json::Value]) -> Duration {
    let start = Instant::now();
    let writer = EventWriter::start(outputs, WriterOptions::default()).unwrap();
    let (a, b) = events.split_at(events.len() / 2);
    std::thread::scope(|s| {
        for half in [a, b] {
            let mut sink = writer.sink();
            s.spawn(move || {
                for e in half {
                    sink.write(e).unwrap();
                }
            });
        }
    });
    writer.finish().unwrap();
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let events = events();
    let file = std::env::temp_dir().join(format!("mw-bench-out-{}.json", std::process::id()));
    let redis = start_redis();
    if redis.is_none() {
        eprintln!("SKIPPED the Redis rows: redis-server and redis-cli are needed");
    }
    let file_spec = OutputSpec::parse(file.to_str().unwrap()).unwrap();
    let redis_spec = OutputSpec::parse(&format!("redis://127.0.0.1:{PORT}/list/bench")).unwrap();
    let mut cases = vec![("file", vec![file_spec.clone()])];
    if redis.is_some() {
        cases.push(("redis_list", vec![redis_spec.clone()]));
        cases.push(("file_and_redis", vec![file_spec, redis_spec]));
    }
    let mut g = c.benchmark_group("outputs");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.throughput(Throughput::Elements(EVENTS as u64));
    for (name, specs) in &cases {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += write_all(specs, &events);
                    // Every event arrived, in every output of the case.
                    for s in specs {
                        if s.text.starts_with("redis://") {
                            assert_eq!(redis_cli(&["LLEN", "bench"]), EVENTS.to_string());
                            redis_cli(&["DEL", "bench"]);
                        } else {
                            let text = std::fs::read(&file).unwrap();
                            let n = text.iter().filter(|&&b| b == b'\n').count();
                            assert_eq!(n, EVENTS);
                        }
                    }
                }
                total
            });
        });
    }
    g.finish();
    let _ = std::fs::remove_file(&file);
    drop(redis);
}

criterion_group!(benches, bench);
criterion_main!(benches);
