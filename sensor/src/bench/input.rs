//! Bench inputs: a capture file, or a scenario generated into the run's temp folder, then
//! read once into memory so every measurement replays it from RAM (page cache speed, no
//! disk in the timing).
//!
//! A loaded capture is bounded ([`MAX_LOADED_BYTES`]); replaying it more than once shifts
//! packet time by the capture's span plus a second per pass, so the packet clock keeps
//! moving forward as it would on a longer capture.

use std::path::{Path, PathBuf};

use anyhow::Context;
use flowtable::Timestamp;

use crate::capture::CaptureRecord;
use crate::capture::replay::ReplayReader;
use crate::decode::link::LinkType;
use crate::generate::bench_scenarios::BenchRequest;

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
    data: Vec<u8>,
    records: Vec<RecordRef>,
    /// Wire bytes of one pass (`orig_len` summed).
    pub wire_bytes: u64,
    /// Packet time from the first to the last record, plus one second: the shift per pass.
    pass_shift_ns: u64,
}

impl LoadedCapture {
    /// Reads every packet of `path`. A damaged capture is an error (a bench on half a file
    /// would be misleading).
    pub fn load(path: &Path) -> anyhow::Result<LoadedCapture> {
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
        let span = last.saturating_sub(first.min(last));
        Ok(LoadedCapture {
            data,
            records,
            wire_bytes,
            pass_shift_ns: span + 1_000_000_000,
        })
    }

    /// Packets in one pass.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the capture has no packet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> u64 {
        (self.data.capacity() + self.records.capacity() * std::mem::size_of::<RecordRef>()) as u64
    }

    /// Packet `i` of pass `pass` (time shifted by `pass` spans).
    #[inline]
    pub fn record(&self, pass: u64, i: usize) -> Option<CaptureRecord<'_>> {
        let r = self.records.get(i)?;
        let data = self.data.get(r.start..r.start + r.len as usize)?;
        Some(CaptureRecord {
            ts: Timestamp(r.ts.as_nanos() + pass * self.pass_shift_ns),
            link: r.link,
            data,
            orig_len: r.orig_len,
        })
    }

    /// Every packet of pass `pass`.
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
pub fn prepare(spec: &str, seed: u64, tmp: &Path) -> anyhow::Result<Workload> {
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
    let capture =
        LoadedCapture::load(&path).with_context(|| format!("loading {}", path.display()))?;
    Ok(Workload {
        name,
        source,
        path,
        file_bytes,
        capture,
    })
}
