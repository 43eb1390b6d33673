//! Bench inputs: a capture file, or a scenario generated into the run's temp folder, then
//! read once into memory so every measurement replays it from RAM (page cache speed, no
//! disk in the timing).
//!
//! A loaded capture is bounded ([`MAX_LOADED_BYTES`]). Replaying it more than once makes
//! each pass new traffic (issue 14 goal 6), not the same connections again:
//! - **time:** pass `p` is shifted by `p × (span + gap)`, where the gap is the flow idle
//!   timeout plus a second, so pass `p` starts after pass `p - 1` ended and the pipeline,
//!   told that an input starts ([`crate::pipeline::Pipeline::start_input`]), sees an
//!   independent capture: flows and tunnel sessions end, the detectors judge the pass as a
//!   replay of the file alone (warm-up included), as `mirrorwatch replay` does with a
//!   folder of unrelated files;
//! - **addresses:** pass `p` is a copy of the bytes with every IP address moved by `p`
//!   ([`super::rewrite`]), so flows, tunnel sessions, beacon pairs, known destinations and
//!   the name cache see new hosts.
//!
//! The rewritten copies are made by [`LoadedCapture::prepare_passes`] before timing starts,
//! within a memory budget ([`pass_budget_bytes`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use flowtable::Timestamp;

use crate::capture::CaptureRecord;
use crate::capture::replay::ReplayReader;
use crate::config::Config;
use crate::decode::link::LinkType;
use crate::generate::bench_scenarios::BenchRequest;

use super::rewrite::{PassRewriter, Scratch};

/// Largest capture the harness holds in memory (data plus record index).
pub const MAX_LOADED_BYTES: u64 = 8 << 30;

/// Where a workload comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file the user gave.
    File,
    /// A bench scale scenario (`bench-*:N`).
    Bench(BenchRequest),
    /// A fixture scenario of the generator (`pcaps/` cases).
    Fixture(String),
}

/// One input of the run, on disk (for the peers) and in memory (for the sensor).
pub struct Workload {
    /// Name in tables: the file name, or the scenario label.
    pub name: String,
    /// Where it came from.
    pub source: Source,
    /// The capture file peers read.
    pub path: PathBuf,
    /// Size of that file.
    pub file_bytes: u64,
    /// The packets, in memory.
    pub capture: LoadedCapture,
}

/// One packet record in a [`LoadedCapture`].
#[derive(Clone, Copy, Debug)]
struct RecordRef {
    ts: Timestamp,
    start: usize,
    len: u32,
    orig_len: u32,
    link: LinkType,
}

/// A capture read into memory: packet bytes back to back and an index of records.
pub struct LoadedCapture {
    /// Pass 0: the bytes as read.
    data: Vec<u8>,
    /// Passes 1.. (`passes[p - 1]`): the same records with addresses moved by `p`.
    passes: Vec<Vec<u8>>,
    records: Vec<RecordRef>,
    /// Wire bytes of one pass (`orig_len` summed).
    pub wire_bytes: u64,
    /// Packet time of the first record.
    first_ns: u64,
    /// Time shift per pass: the span from the first to the last record, plus the gap.
    pass_shift_ns: u64,
    rewriter: PassRewriter,
    /// Wall seconds of the fastest pass a throughput row has measured (sizes the passes the
    /// next row prepares).
    pub pass_seconds: Option<f64>,
}

impl LoadedCapture {
    /// Reads every packet of `path`. A damaged capture is an error (a bench on half a file
    /// would be misleading). `config` sets the gap between passes (its flow idle timeout)
    /// and the address rewrite (its home networks and address lists).
    pub fn load(path: &Path, config: &Config) -> anyhow::Result<LoadedCapture> {
        let mut reader = ReplayReader::open(path)?;
        let mut data = Vec::with_capacity(reader.file_len().min(MAX_LOADED_BYTES) as usize);
        let mut records = Vec::new();
        let mut wire_bytes = 0u64;
        let (mut first, mut last) = (u64::MAX, 0u64);
        while let Some(rec) = reader.next_packet()? {
            let index_bytes = (records.len() * std::mem::size_of::<RecordRef>()) as u64;
            if data.len() as u64 + index_bytes > MAX_LOADED_BYTES {
                anyhow::bail!(
                    "{}: more than {} GiB in memory; bench a smaller capture",
                    path.display(),
                    MAX_LOADED_BYTES >> 30
                );
            }
            let start = data.len();
            data.extend_from_slice(rec.data);
            records.push(RecordRef {
                ts: rec.ts,
                start,
                len: rec.data.len() as u32,
                orig_len: rec.orig_len,
                link: rec.link,
            });
            wire_bytes += u64::from(rec.orig_len.max(rec.data.len() as u32));
            first = first.min(rec.ts.as_nanos());
            last = last.max(rec.ts.as_nanos());
        }
        let first = first.min(last);
        let span = last - first;
        // More than the idle timeout: the pipeline then takes the next pass for an
        // independent capture (`pipeline::FOLDER_RULE`).
        let gap = config
            .flow_idle_timeout()
            .as_nanos()
            .saturating_add(1_000_000_000);
        Ok(LoadedCapture {
            data,
            passes: Vec::new(),
            records,
            wire_bytes,
            first_ns: first,
            pass_shift_ns: span.saturating_add(gap),
            rewriter: PassRewriter::new(config),
            pass_seconds: None,
        })
    }

    /// Makes sure passes `0..n` have their bytes, within [`pass_budget_bytes`] (at least two
    /// passes are always allowed); returns how many passes are ready. Rewriting takes time:
    /// call it before the timed region.
    pub fn prepare_passes(&mut self, n: u64) -> u64 {
        let one = self.data.len().max(1) as u64;
        let allowed = (pass_budget_bytes() / one).max(1);
        let wanted = n.saturating_sub(1).min(allowed);
        let mut scratch = Scratch::default();
        while (self.passes.len() as u64) < wanted {
            let pass = self.passes.len() as u64 + 1;
            let mut bytes = self.data.clone();
            for r in &self.records {
                if let Some(frame) = bytes.get_mut(r.start..r.start + r.len as usize) {
                    self.rewriter.rewrite(r.link, frame, pass, &mut scratch);
                }
            }
            self.passes.push(bytes);
        }
        self.passes.len() as u64 + 1
    }

    /// Passes ready to replay (see [`LoadedCapture::prepare_passes`]).
    pub fn passes_ready(&self) -> u64 {
        self.passes.len() as u64 + 1
    }

    /// Drops the rewritten copies (the next input needs the memory).
    pub fn release_passes(&mut self) {
        self.passes = Vec::new();
    }

    /// Packet time of the first record, in nanoseconds.
    pub fn first_ns(&self) -> u64 {
        self.first_ns
    }

    /// Packet-time shift from one pass to the next, in nanoseconds.
    pub fn pass_shift_ns(&self) -> u64 {
        self.pass_shift_ns
    }

    /// The address rewrite of later passes.
    pub fn rewriter(&self) -> &PassRewriter {
        &self.rewriter
    }

    /// Packets in one pass.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the capture has no packet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes held in memory (rewritten passes included).
    pub fn memory_bytes(&self) -> u64 {
        let passes: usize = self.passes.iter().map(Vec::capacity).sum();
        (self.data.capacity() + passes + self.records.capacity() * std::mem::size_of::<RecordRef>())
            as u64
    }

    /// Packet `i` of pass `pass` (time shifted by `pass` shifts, addresses moved by `pass`);
    /// `None` past the end or for a pass not prepared.
    #[inline]
    pub fn record(&self, pass: u64, i: usize) -> Option<CaptureRecord<'_>> {
        let r = self.records.get(i)?;
        let bytes = match pass {
            0 => &self.data,
            p => self.passes.get(usize::try_from(p - 1).ok()?)?,
        };
        let data = bytes.get(r.start..r.start + r.len as usize)?;
        Some(CaptureRecord {
            ts: Timestamp(
                r.ts.as_nanos()
                    .saturating_add(pass.saturating_mul(self.pass_shift_ns)),
            ),
            link: r.link,
            data,
            orig_len: r.orig_len,
        })
    }

    /// Every packet of pass `pass` (nothing for a pass not prepared).
    pub fn pass(&self, pass: u64) -> impl Iterator<Item = CaptureRecord<'_>> + '_ {
        (0..self.records.len()).filter_map(move |i| self.record(pass, i))
    }
}

/// Checks one command-line input before anything is measured: an existing file, a bench
/// scenario with a valid scale, or a fixture scenario.
pub fn check(spec: &str) -> anyhow::Result<()> {
    if Path::new(spec).is_file() {
        return Ok(());
    }
    match BenchRequest::parse(spec) {
        Some(request) => request.map(drop).map_err(Into::into),
        None if crate::generate::scenarios().any(|s| s.name == spec) => Ok(()),
        None => anyhow::bail!(
            "{spec}: no such file, and no such scenario (`mirrorwatch generate --list`)"
        ),
    }
}

/// Resolves one command-line input: an existing path is a capture; otherwise a bench
/// scenario (`bench-*[:N]`) or a fixture scenario, generated into `tmp`.
pub fn prepare(spec: &str, seed: u64, tmp: &Path, config: &Config) -> anyhow::Result<Workload> {
    let given = Path::new(spec);
    let (name, source, path) = if given.is_file() {
        // The file and its folder: fixture files are all called `input.pcap`.
        let mut parts: Vec<String> = given
            .components()
            .rev()
            .take(2)
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        parts.reverse();
        let name = parts.join("/");
        (name, Source::File, given.to_path_buf())
    } else if let Some(request) = BenchRequest::parse(spec) {
        let request = request?;
        let path = tmp.join(format!("{}-{}.pcap", request.name, request.scale));
        eprintln!("mirrorwatch bench: generating {} ...", request.label());
        crate::generate::bench_scenarios::write(&request, seed, &path)?;
        (request.label(), Source::Bench(request), path)
    } else if crate::generate::scenarios().any(|s| s.name == spec) {
        let path = tmp.join(format!("{spec}.pcap"));
        crate::generate::generate(spec, seed, &path)?;
        (spec.to_owned(), Source::Fixture(spec.to_owned()), path)
    } else {
        anyhow::bail!("{spec}: no such file, and no such scenario (`mirrorwatch generate --list`)");
    };
    let file_bytes = std::fs::metadata(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let capture = LoadedCapture::load(&path, config)
        .with_context(|| format!("loading {}", path.display()))?;
    Ok(Workload {
        name,
        source,
        path,
        file_bytes,
        capture,
    })
}

/// Memory the rewritten passes of one input may take: half of what the kernel says is
/// available, at most [`MAX_LOADED_BYTES`] (1 GiB when `/proc/meminfo` is unreadable).
pub fn pass_budget_bytes() -> u64 {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(1 << 30, |kib| kib * 1024);
    (available / 2).min(MAX_LOADED_BYTES)
}
