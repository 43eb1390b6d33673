//! Offline replay: which reader, measured. `replay_mapped` is `mirrorwatch::capture::replay`
//! as `replay` uses it on a regular file (the file memory-mapped, records read in place);
//! `replay_read` is the same reader forced onto its buffered path (`read` into pcap-parser's
//! streaming buffer, as for pipes and compressed files: the "before" of issue 14); `libpcap` is
//! libpcap's offline mode via the `pcap` crate (`Capture::from_file`, `next_packet`). Each reads
//! every packet of the same file and sums the captured lengths, in the same run.
//!
//! Input: the Ethernet packets of every capture in `/work/shared/pcaps/mixed` (or synthetic
//! packets if that is absent), repeated into a ~64 MiB legacy pcap and the same packets as a
//! pcapng (EPBs), written under the temp directory at start and removed at the end. The files
//! sit in the page cache, so this measures parsing, not the disk.
//!
//! Before criterion runs, a summary prints for each file and reader the packet count and byte
//! sum (both readers must agree, or the bench stops) with packets/s and MB/s, median of 5 runs.
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench replay -- --warm-up-time 1 --measurement-time 5`.

// A bench that cannot build or read its input must stop loudly; these are not packet paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File};
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mirrorwatch::capture::replay::{ReadMode, ReplayReader, expand_inputs};
use mirrorwatch::decode::link::LinkType;

/// Real captures to build the input from.
const SOURCES: &str = "/work/shared/pcaps/mixed";
/// Size the legacy pcap input grows to.
const TARGET_BYTES: u64 = 64 << 20;
/// Runs per reader in the printed summary.
const SUMMARY_RUNS: usize = 5;

/// The two input files; removed on drop.
struct Inputs {
    pcap: PathBuf,
    pcapng: PathBuf,
}

impl Drop for Inputs {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.pcap);
        let _ = fs::remove_file(&self.pcapng);
    }
}

/// One packet to write: time in microseconds, original length, bytes.
struct Pkt {
    ts_us: u64,
    orig_len: u32,
    data: Vec<u8>,
}

/// Ethernet packets of the real captures, or synthetic ones when they are absent.
fn source_packets() -> Vec<Pkt> {
    let mut packets = Vec::new();
    if Path::new(SOURCES).is_dir() {
        for path in expand_inputs(&[PathBuf::from(SOURCES)]).unwrap() {
            let mut reader = ReplayReader::open(&path).unwrap();
            while let Some(rec) = reader.next_packet().unwrap() {
                if rec.link == LinkType::ETHERNET {
                    packets.push(Pkt {
                        ts_us: rec.ts.as_micros(),
                        orig_len: rec.orig_len,
                        data: rec.data.to_vec(),
                    });
                }
            }
        }
    }
    if packets.is_empty() {
        eprintln!("NOTE: {SOURCES} not found; benchmarking synthetic packets");
        // Sizes spread over 60..1514 bytes, like a mixed trace.
        packets = (0..20_000u32)
            .map(|i| {
                let len = 60 + (i * 7919 % 1455) as usize;
                Pkt {
                    ts_us: 1_700_000_000_000_000 + u64::from(i) * 100,
                    orig_len: len as u32,
                    data: (0..len).map(|b| (b as u8) ^ (i as u8)).collect(),
                }
            })
            .collect();
    }
    packets
}

/// Writes the packets, repeated until the pcap reaches `TARGET_BYTES`, as a legacy pcap
/// (microseconds, little-endian, Ethernet) and as a pcapng (one Ethernet interface, EPBs).
fn build_inputs() -> Inputs {
    let packets = source_packets();
    let base =
        std::env::temp_dir().join(format!("mirrorwatch-bench-replay-{}", std::process::id()));
    let inputs = Inputs {
        pcap: base.with_extension("pcap"),
        pcapng: base.with_extension("pcapng"),
    };
    let mut pcap = BufWriter::new(File::create(&inputs.pcap).unwrap());
    let mut ng = BufWriter::new(File::create(&inputs.pcapng).unwrap());

    // Legacy header: magic, version 2.4, thiszone, sigfigs, snaplen, link type.
    pcap.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
    pcap.write_all(&2u16.to_le_bytes()).unwrap();
    pcap.write_all(&4u16.to_le_bytes()).unwrap();
    for v in [0u32, 0, 262_144, 1] {
        pcap.write_all(&v.to_le_bytes()).unwrap();
    }
    // pcapng: section header (BOM, version 1.0, unknown length), then one Ethernet interface.
    let shb: Vec<u8> = [
        &0x0a0d_0d0au32.to_le_bytes()[..],
        &28u32.to_le_bytes(),
        &0x1a2b_3c4du32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &[0xff; 8],
        &28u32.to_le_bytes(),
    ]
    .concat();
    ng.write_all(&shb).unwrap();
    let idb: Vec<u8> = [
        &1u32.to_le_bytes()[..],
        &20u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u32.to_le_bytes(),
        &20u32.to_le_bytes(),
    ]
    .concat();
    ng.write_all(&idb).unwrap();

    let mut written = 24u64;
    while written < TARGET_BYTES {
        for p in &packets {
            let caplen = p.data.len() as u32;
            let (secs, usecs) = ((p.ts_us / 1_000_000) as u32, (p.ts_us % 1_000_000) as u32);
            for v in [secs, usecs, caplen, p.orig_len] {
                pcap.write_all(&v.to_le_bytes()).unwrap();
            }
            pcap.write_all(&p.data).unwrap();
            written += 16 + u64::from(caplen);

            let padded = (p.data.len() + 3) & !3;
            let block_len = (32 + padded) as u32;
            for v in [
                6,
                block_len,
                0,
                (p.ts_us >> 32) as u32,
                p.ts_us as u32,
                caplen,
                p.orig_len,
            ] {
                ng.write_all(&u32::to_le_bytes(v)).unwrap();
            }
            ng.write_all(&p.data).unwrap();
            ng.write_all(&[0u8; 3][..padded - p.data.len()]).unwrap();
            ng.write_all(&block_len.to_le_bytes()).unwrap();
        }
    }
    pcap.flush().unwrap();
    ng.flush().unwrap();
    inputs
}

/// Reads every packet with `ReplayReader` through the map; returns (packets, sum of captured
/// lengths).
fn read_mapped(path: &Path) -> (u64, u64) {
    read_replay(path, ReadMode::Auto, true)
}

/// The same through the buffered `read` path.
fn read_buffered(path: &Path) -> (u64, u64) {
    read_replay(path, ReadMode::Buffered, false)
}

fn read_replay(path: &Path, mode: ReadMode, mapped: bool) -> (u64, u64) {
    let mut reader = ReplayReader::open_with(path, mode).unwrap();
    assert_eq!(reader.is_mapped(), mapped, "{mode:?}");
    let (mut packets, mut bytes) = (0u64, 0u64);
    while let Some(rec) = reader.next_packet().unwrap() {
        packets += 1;
        bytes += black_box(rec.data).len() as u64;
    }
    (packets, bytes)
}

/// Reads every packet with libpcap; returns (packets, sum of captured lengths).
fn read_libpcap(path: &Path) -> (u64, u64) {
    let mut cap = pcap::Capture::from_file(path).unwrap();
    let (mut packets, mut bytes) = (0u64, 0u64);
    loop {
        match cap.next_packet() {
            Ok(p) => {
                packets += 1;
                bytes += black_box(p.data).len() as u64;
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(err) => panic!("libpcap: {err}"),
        }
    }
    (packets, bytes)
}

type Reader = fn(&Path) -> (u64, u64);
const READERS: [(&str, Reader); 3] = [
    ("replay_mapped", read_mapped),
    ("replay_read", read_buffered),
    ("libpcap", read_libpcap),
];

/// Prints counts (which must agree) and median throughput of each reader on each file.
fn summary(inputs: &Inputs) {
    println!("replay summary: median of {SUMMARY_RUNS} runs, MB = 10^6 bytes of file");
    for (format, path) in [("pcap", &inputs.pcap), ("pcapng", &inputs.pcapng)] {
        let file_bytes = fs::metadata(path).unwrap().len();
        let mut counts = Vec::new();
        for (name, read) in READERS {
            let mut times: Vec<Duration> = Vec::new();
            let mut result = (0, 0);
            for _ in 0..SUMMARY_RUNS {
                let start = Instant::now();
                result = read(path);
                times.push(start.elapsed());
            }
            times.sort();
            let secs = times[SUMMARY_RUNS / 2].as_secs_f64();
            println!(
                "  {format:<6} {name:<13} {:>9} packets {:>11} bytes  {:>6.2} Mpkt/s  {:>7.0} MB/s  ({:.1} ms, file {:.1} MB)",
                result.0,
                result.1,
                result.0 as f64 / secs / 1e6,
                file_bytes as f64 / secs / 1e6,
                secs * 1e3,
                file_bytes as f64 / 1e6,
            );
            counts.push(result);
        }
        assert!(
            counts.windows(2).all(|w| w[0] == w[1]),
            "{format}: the readers disagree: {counts:?}"
        );
    }
}

fn bench_replay(c: &mut Criterion) {
    let inputs = build_inputs();
    summary(&inputs);
    for (format, path) in [("pcap", &inputs.pcap), ("pcapng", &inputs.pcapng)] {
        let file_bytes = fs::metadata(path).unwrap().len();
        let mut group = c.benchmark_group(format!("replay/{format}"));
        group.sample_size(10);
        group.throughput(Throughput::BytesDecimal(file_bytes));
        for (name, read) in READERS {
            group.bench_function(name, |b| b.iter(|| read(path)));
        }
        group.finish();
    }
}

criterion_group!(benches, bench_replay);
criterion_main!(benches);
