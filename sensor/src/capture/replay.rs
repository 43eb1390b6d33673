//! Offline capture reading: `mirrorwatch replay FILE...` streams pcap and pcapng files, plain or
//! compressed, into [`CaptureRecord`]s.
//!
//! Contract: memory is constant whatever the file size (style rule 28). Bytes flow through
//! pcap-parser's streaming reader (`next`/`consume`/`refill`) over one buffer that starts at
//! [`INITIAL_BUFFER_BYTES`] and only grows, up to [`MAX_BUFFER_BYTES`], when a single block needs
//! it; a block at or above that cap is [`CaptureError::Corrupt`], never an allocation. Once the
//! buffer is sized, reading a packet allocates nothing. No input makes the reader panic or loop:
//! every pass of the read loop consumes a block, adds bytes, grows the buffer or returns.
//!
//! Formats, recognised by magic bytes, never by file name:
//! - legacy pcap, microsecond and nanosecond magic, both byte orders, and the little-endian
//!   "modified" (Kuznetzov) format; pcap-parser does not read its rare big-endian twin, which is
//!   reported as [`CaptureError::UnknownFormat`];
//! - pcapng: any number of interfaces with their own link types, `if_tsresol` and `if_tsoffset`;
//!   Enhanced, Simple and obsolete (type 2) Packet Blocks; repeated section headers, which reset
//!   the interfaces and may switch the byte order. A Simple Packet Block has no timestamp and
//!   gets the previous packet's (zero if it comes first);
//! - either of them compressed with gzip (all members, like `zcat`; zero padding after the
//!   last member is ignored, as `zcat` does) or zstd (all frames; a file may start with a
//!   skippable frame, magic `0x184D2A50..=0x184D2A5F`, which `pzstd` always writes).
//!
//! Packet records are parsed here, not by pcap-parser: it allocates a `Vec` for the options of
//! every Enhanced Packet Block and ignores the legacy quirks libpcap honours (interchanged
//! caplen/len before version 2.3, FCS bits in the link type, caplen limit). Every capture in
//! `/work/shared/pcaps` reads packet for packet as libpcap reads it (see the tests), except
//! that a record longer than the file's snaplen keeps all its bytes, as in Wireshark.
//!
//! Errors name the file. Offsets in them count bytes of the decompressed stream. After the first
//! error the reader is finished and returns `Ok(None)`; the caller decides whether to go on with
//! the next file.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, Cursor, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use flowtable::Timestamp;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{
    Block, EnhancedPacketBlock, InterfaceDescriptionBlock, LegacyPcapReader, OptionCode,
    PcapBlockOwned, PcapError, PcapHeader, PcapNGReader, SimplePacketBlock,
};

use super::{CaptureError, CaptureRecord};
use crate::decode::link::LinkType;

mod map;

pub use map::PageCacheLayout;

/// Size the read buffer starts at: large enough for any ordinary packet and for few, large reads.
pub const INITIAL_BUFFER_BYTES: usize = 1 << 20;

/// Hard cap on the read buffer. A record or block of this size or more is reported as
/// [`CaptureError::Corrupt`]; Wireshark's readers stop at the same order of magnitude.
pub const MAX_BUFFER_BYTES: usize = 16 << 20;

/// Largest legacy pcap `caplen` accepted when the file header's snaplen is smaller: libpcap's
/// `MAXIMUM_SNAPLEN`. Like libpcap, a record above `max(snaplen, this)` is corrupt, which stops a
/// damaged length field before it makes the buffer grow.
pub const LEGACY_MAX_CAPLEN: u32 = 262_144;

/// Most interfaces one pcapng section may declare; more is corrupt (it bounds the table).
pub const MAX_INTERFACES: usize = 1 << 16;

/// File name extensions that [`expand_inputs`] picks up in a directory (compared ignoring case).
pub const CAPTURE_EXTENSIONS: &[&str] = &["pcap", "pcapng", "cap", "gz", "zst"];

/// A streaming reader over one capture file; see the module documentation for the contract.
pub struct ReplayReader {
    /// The file, for error messages.
    path: PathBuf,
    /// Size of the file on disk when it was opened.
    file_len: u64,
    /// Compression detected from the first bytes of the file.
    compression: Compression,
    /// Where the bytes come from: the map of the file, or a buffer refilled by `read`.
    source: Source,
    /// Per-format state (link type, interfaces, byte order).
    format: Format,
    /// Length of the block returned by the last `next_packet`, consumed at the next call (the
    /// record borrows it until then).
    pending_consume: usize,
    /// Set after the end of the file or the first error; the reader then only returns `Ok(None)`.
    finished: bool,
}

/// Where a reader's bytes come from.
enum Source {
    /// `read` into pcap-parser's streaming buffer: pipes, compressed files, files not mapped.
    Stream(StreamSource),
    /// The whole file mapped; records are views into the map.
    Map(map::MappedFile),
}

/// The buffered `read` path.
struct StreamSource {
    /// pcap-parser's streaming reader; it owns the buffer the records borrow from.
    inner: Box<dyn PcapReaderIterator + Send>,
    /// Counters and the last IO error, shared with the `Read` adapters under `inner`.
    io: Arc<IoState>,
    /// Current capacity of the buffer in `inner`: grows only, never above [`MAX_BUFFER_BYTES`].
    capacity: usize,
}

/// How [`ReplayReader::open_with`] reads a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadMode {
    /// Map an uncompressed regular file; read everything else (the default of [`ReplayReader::open`]).
    Auto,
    /// Always read through the buffer, as for a pipe.
    Buffered,
}

/// Compression of a capture file, detected from its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Stored as is.
    None,
    /// gzip (`1f 8b`), every member read in turn.
    Gzip,
    /// Zstandard (`28 b5 2f fd`, or a skippable frame `5X 2a 4d 18`), every frame read in turn.
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// Expands the command-line inputs into the list of files to replay, in order; the first
/// problem is an error. [`expand_inputs_all`] goes on past problems and says what it skipped.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CaptureError> {
    let mut expanded = expand_inputs_all(inputs);
    match expanded.errors.drain(..).next() {
        Some(e) => Err(e),
        None => Ok(expanded.files),
    }
}

/// What the inputs expanded to.
#[derive(Debug, Default)]
pub struct ExpandedInputs {
    /// The files to read, in order, each once.
    pub files: Vec<PathBuf>,
    /// Inputs, or entries under them, that could not be examined (missing, unreadable).
    pub errors: Vec<CaptureError>,
    /// What a directory walk passed over, with the reason.
    pub skipped: Vec<Skipped>,
    /// Input directories in which no capture was found.
    pub empty_dirs: Vec<PathBuf>,
}

/// Something a directory walk did not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// Why a directory walk did not read a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Neither a capture extension nor capture magic bytes.
    NotACapture,
    /// The same file (device and inode) was already in the list, through another path.
    SameFile,
    /// A directory already being walked: a symbolic-link loop.
    Loop,
    /// Deeper than [`MAX_DIRECTORY_DEPTH`].
    TooDeep,
    /// Not a regular file or directory (socket, device, FIFO, dangling link).
    NotAFile,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::NotACapture => "not a capture (extension and first bytes)",
            SkipReason::SameFile => "the same file as one already listed",
            SkipReason::Loop => "a symbolic-link loop",
            SkipReason::TooDeep => "deeper than the recursion limit",
            SkipReason::NotAFile => "not a regular file",
        })
    }
}

/// Expands the command-line inputs, going on past problems.
///
/// A path that is not a directory is kept as given, whatever its name. A directory is walked
/// recursively (up to [`MAX_DIRECTORY_DEPTH`] levels below it), following symbolic links;
/// its files come sorted by path. In it, a regular file is read when its extension is one of
/// [`CAPTURE_EXTENSIONS`] (a `.gz` or `.zst` file only when it holds a capture) or, whatever
/// its name (rotated `x.pcap1`, `x.pcap.2`), when its
/// first bytes are a pcap or pcapng magic. Every file is read once, whatever the paths to it
/// (device and inode); a directory reached again while it is being walked (a link loop) is
/// skipped. Everything passed over is listed in [`ExpandedInputs::skipped`].
pub fn expand_inputs_all(inputs: &[PathBuf]) -> ExpandedInputs {
    let mut out = ExpandedInputs::default();
    let mut seen_files = std::collections::HashSet::new();
    for input in inputs {
        let meta = match fs::metadata(input) {
            Ok(m) => m,
            Err(source) => {
                out.errors.push(io_error(input, source));
                continue;
            }
        };
        if !meta.is_dir() {
            // Named on the command line: read even if repeated, as asked.
            seen_files.insert((meta.dev(), meta.ino()));
            out.files.push(input.clone());
            continue;
        }
        let before = out.files.len();
        let mut walking = vec![(meta.dev(), meta.ino())];
        collect_captures(input, 0, &mut walking, &mut seen_files, &mut out);
        // Sorted by path within each input directory, as a listing shows them.
        out.files[before..].sort();
        if out.files.len() == before {
            out.empty_dirs.push(input.clone());
        }
    }
    out
}

/// Deepest directory level searched below an input directory. Hunters keep captures in
/// trees by date or case; the bound also stops a walk down a very deep tree.
pub const MAX_DIRECTORY_DEPTH: usize = 8;

/// Adds the capture files under `dir` (recursively, up to [`MAX_DIRECTORY_DEPTH`]), in name
/// order. `walking` holds the device and inode of each directory on the current path.
fn collect_captures(
    dir: &Path,
    depth: usize,
    walking: &mut Vec<(u64, u64)>,
    seen_files: &mut std::collections::HashSet<(u64, u64)>,
    out: &mut ExpandedInputs,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            out.errors.push(io_error(dir, source));
            return;
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(source) => out.errors.push(io_error(dir, source)),
        }
    }
    paths.sort();
    for path in paths {
        // `fs::metadata` follows symbolic links, so a link to a capture counts as a file.
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(_) if fs::symlink_metadata(&path).is_ok() => {
                out.skipped.push(Skipped {
                    path,
                    reason: SkipReason::NotAFile,
                });
                continue;
            }
            Err(source) => {
                out.errors.push(io_error(&path, source));
                continue;
            }
        };
        let id = (meta.dev(), meta.ino());
        let reason = if meta.is_dir() {
            if walking.contains(&id) {
                Some(SkipReason::Loop)
            } else if depth >= MAX_DIRECTORY_DEPTH {
                Some(SkipReason::TooDeep)
            } else {
                walking.push(id);
                collect_captures(&path, depth + 1, walking, seen_files, out);
                walking.pop();
                None
            }
        } else if !meta.is_file() {
            Some(SkipReason::NotAFile)
        } else if !is_capture_file(&path) {
            Some(SkipReason::NotACapture)
        } else if !seen_files.insert(id) {
            Some(SkipReason::SameFile)
        } else {
            out.files.push(path.clone());
            None
        };
        if let Some(reason) = reason {
            out.skipped.push(Skipped { path, reason });
        }
    }
}

/// Whether a file found in a directory is a capture: by its name (`*.pcap`, `*.pcapng`,
/// `*.cap`), or by what it holds. A gzip or zstd file is judged by its content, not its
/// name: a hunter's folder holds compressed logs beside compressed captures (CloudTrail
/// delivers `*.json.gz`), and only the captures are replayed. A compressed file that the
/// reader opens, or that fails for another reason than its format (damaged, cut short), is
/// kept, so its damage is reported rather than skipped.
fn is_capture_file(path: &Path) -> bool {
    let compressed = path
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gz") || ext.eq_ignore_ascii_case("zst"));
    if compressed {
        return !matches!(
            ReplayReader::open(path),
            Err(CaptureError::UnknownFormat { .. } | CaptureError::Empty { .. })
        );
    }
    has_capture_extension(path) || has_capture_magic(path)
}

/// Whether a file starts with a pcap (any of the magics we read) or pcapng magic. Rotated
/// captures (`x.pcap1`, `x.pcap.2`) have no capture extension, and are still captures.
fn has_capture_magic(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    if file.read_exact(&mut magic).is_err() {
        return false;
    }
    matches!(
        magic,
        [0x0a, 0x0d, 0x0d, 0x0a]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0x34, 0xcd, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xa1, 0xb2, 0x3c, 0x4d]
    )
}

impl ReplayReader {
    /// Opens a capture file, detecting compression and format from its first bytes. An
    /// uncompressed regular file is mapped; anything else is read (see [`ReadMode::Auto`]).
    pub fn open(path: &Path) -> Result<ReplayReader, CaptureError> {
        ReplayReader::open_with(path, ReadMode::Auto)
    }

    /// Opens a capture file, choosing how it is read. Both ways give the same records and the
    /// same errors, at the same offsets.
    pub fn open_with(path: &Path, mode: ReadMode) -> Result<ReplayReader, CaptureError> {
        let file = File::open(path).map_err(|source| io_error(path, source))?;
        let meta = file.metadata().map_err(|source| io_error(path, source))?;
        let file_len = meta.len();
        // Only a regular file has a size that says where its bytes end; a FIFO, a character
        // device or /proc file is read.
        let file = if mode == ReadMode::Auto && meta.is_file() {
            match map::MappedFile::new(file, file_len) {
                Ok(mapped) => {
                    match ReplayReader::from_map(path.to_path_buf(), file_len, mapped) {
                        Ok(reader) => return reader,
                        // Compressed, or not a capture: the buffered path says which.
                        Err(()) => File::open(path).map_err(|source| io_error(path, source))?,
                    }
                }
                Err(file) => file,
            }
        } else {
            file
        };
        ReplayReader::from_raw(
            path.to_path_buf(),
            file_len,
            Box::new(file),
            INITIAL_BUFFER_BYTES,
        )
    }

    /// Returns the next packet, `Ok(None)` at the clean end of the file.
    ///
    /// The record borrows the reader's buffer until the next call. After an error, or the end,
    /// every further call returns `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<CaptureRecord<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        if self.pending_consume > 0 {
            let n = std::mem::take(&mut self.pending_consume);
            self.consume(n);
        }
        let advanced = self.advance();
        // On a map, a file cut while it is read shows as a fault (zeros read) or a smaller
        // size: whatever the parsers made of the bytes, that is the error to report. The record
        // is faulted in whole before it is handed out, so a cut before this point is caught.
        if let Source::Map(mapped) = &mut self.source {
            let intact = match &advanced {
                Ok(Some(packet)) => {
                    let base = mapped.pos();
                    let next = base.saturating_add(packet.block_len);
                    mapped.prefetch(next);
                    mapped.touch(base..next)
                }
                Ok(None) => mapped.check_size(),
                Err(_) => !mapped.shrank(),
            };
            if !intact {
                self.finished = true;
                return Err(self.shrank_error());
            }
        }
        let packet = match advanced {
            Ok(Some(packet)) => packet,
            Ok(None) => {
                self.finished = true;
                return Ok(None);
            }
            Err(err) => {
                self.finished = true;
                return Err(err);
            }
        };
        self.pending_consume = packet.block_len;
        let end = packet.data_start.saturating_add(packet.caplen);
        let head = match &self.source {
            Source::Stream(stream) => stream.inner.data(),
            Source::Map(mapped) => mapped.window(MAX_BUFFER_BYTES - 1),
        };
        let Some(data) = head.get(packet.data_start..end) else {
            // The block parsers checked that the packet lies inside the block; keep a clean
            // error rather than a panic should that ever be wrong.
            self.finished = true;
            return Err(self.corrupt("packet data lies outside its block".to_owned()));
        };
        Ok(Some(CaptureRecord {
            ts: packet.ts,
            link: packet.link,
            data,
            orig_len: packet.orig_len,
        }))
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file on disk, in bytes, when it was opened.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Bytes of the file on disk read so far (compressed bytes for a compressed file), for a
    /// progress bar against [`file_len`](Self::file_len). It runs ahead of the packets returned
    /// by at most the read-ahead of the buffer and of the decompressor.
    pub fn file_bytes_read(&self) -> u64 {
        match &self.source {
            Source::Stream(stream) => stream.io.file_bytes.load(Ordering::Relaxed),
            Source::Map(mapped) => mapped.pos() as u64,
        }
    }

    /// Whether the file is read through a memory map (else through a buffer).
    pub fn is_mapped(&self) -> bool {
        matches!(self.source, Source::Map(_))
    }

    /// For a mapped file: how the page cache holds it now ([`PageCacheLayout`]). Maps every
    /// page of the file for the moment (a benchmark's question, not a reader's: a replay
    /// keeps only a window mapped). `None` for a file read through the buffer, or where the
    /// kernel does not say.
    pub fn page_cache_layout(&self) -> Option<PageCacheLayout> {
        match &self.source {
            Source::Map(m) => m.page_cache_layout(),
            Source::Stream(_) => None,
        }
    }

    /// For a mapped file: whether a keeper thread looks after its page tables, and the bytes
    /// of the map resident in this process.
    #[cfg(test)]
    fn map_residency(&self) -> Option<(bool, usize)> {
        match &self.source {
            Source::Map(m) => Some(m.residency()),
            Source::Stream(_) => None,
        }
    }

    /// The compression detected for the file.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Builds a reader over the raw bytes of a file (`raw` may be compressed). Tests use a small
    /// `initial_capacity` to exercise refills and growth.
    fn from_raw(
        path: PathBuf,
        file_len: u64,
        raw: Box<dyn Read + Send>,
        initial_capacity: usize,
    ) -> Result<ReplayReader, CaptureError> {
        let io = Arc::new(IoState::default());
        let mut raw = CountingReader {
            inner: raw,
            io: Arc::clone(&io),
        };
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut raw, &mut magic).map_err(|source| io_error(&path, source))?;
        if got == 0 {
            return Err(CaptureError::Empty { path });
        }
        // Compressions we do not read are named, not reported as unknown bytes.
        let unsupported = match magic {
            [0xfd, b'7', b'z', b'X'] => Some("xz"),
            [b'B', b'Z', b'h', _] => Some("bzip2"),
            [0x04, 0x22, 0x4d, 0x18] => Some("lz4"),
            _ => None,
        };
        if let Some(format) = unsupported {
            return Err(CaptureError::UnsupportedCompression { path, format });
        }
        let compression = match magic {
            [0x1f, 0x8b, _, _] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
            // A skippable frame (RFC 8878 §3.1.2) before the first real one (issue 17, item 5).
            [0x50..=0x5f, 0x2a, 0x4d, 0x18] => Compression::Zstd,
            _ => Compression::None,
        };
        // Put the sniffed bytes back in front of the rest of the file.
        let raw = Cursor::new(magic).take(got as u64).chain(raw);
        let decompressed: Box<dyn Read + Send> = match compression {
            Compression::None => Box::new(raw),
            Compression::Gzip => Box::new(GzMembers::new(raw)),
            Compression::Zstd => {
                Box::new(zstd::Decoder::new(raw).map_err(|source| io_error(&path, source))?)
            }
        };
        let mut decompressed = decompressed;
        let mut magic = [0u8; 4];
        let got = match read_up_to(&mut decompressed, &mut magic) {
            Ok(got) => got,
            Err(err) => {
                io.record_error(err);
                return Err(classify_read_error(&path, compression, &io, 0));
            }
        };
        let is_pcapng = match magic {
            [0x0a, 0x0d, 0x0d, 0x0a] => true,
            // Microsecond, nanosecond and modified magic, little-endian; then big-endian.
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0x34, 0xcd, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xa1, 0xb2, 0x3c, 0x4d] => false,
            _ => return Err(CaptureError::UnknownFormat { path, magic }),
        };
        let stream = FillReader {
            inner: Box::new(Cursor::new(magic).take(got as u64).chain(decompressed)),
            io: Arc::clone(&io),
            failed: false,
        };
        let created = if is_pcapng {
            PcapNGReader::new(initial_capacity, stream)
                .map(|r| Box::new(r) as Box<dyn PcapReaderIterator + Send>)
        } else {
            LegacyPcapReader::new(initial_capacity, stream)
                .map(|r| Box::new(r) as Box<dyn PcapReaderIterator + Send>)
        };
        let inner = match created {
            Ok(inner) => inner,
            Err(PcapError::ReadError) => {
                return Err(classify_read_error(&path, compression, &io, 0));
            }
            Err(PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof)
                if io.eof.load(Ordering::Relaxed) =>
            {
                return Err(CaptureError::Truncated { path, offset: 0 });
            }
            Err(err) => {
                let err = parser_error_text(&err);
                let what = if is_pcapng {
                    format!(
                        "invalid or oversized pcapng section header block ({err}); \
                         the first block must fit in {initial_capacity} bytes"
                    )
                } else {
                    format!("invalid pcap file header ({err})")
                };
                return Err(CaptureError::Corrupt {
                    path,
                    offset: 0,
                    what,
                });
            }
        };
        let format = if is_pcapng {
            Format::Ng(NgState {
                big_endian: false,
                interfaces: Vec::new(),
                last_ts: Timestamp::ZERO,
            })
        } else {
            Format::Legacy(LegacyState {
                link: LinkType::ETHERNET,
                snaplen: 0,
                nanos: false,
                big_endian: false,
                record_header_len: LEGACY_RECORD_HEADER_LEN,
                lengths: LengthOrder::Normal,
            })
        };
        Ok(ReplayReader {
            path,
            file_len,
            compression,
            source: Source::Stream(StreamSource {
                inner,
                io,
                capacity: initial_capacity,
            }),
            format,
            pending_consume: 0,
            finished: false,
        })
    }

    /// Builds a reader over a mapped file. `Err(())` when the file is not an uncompressed
    /// capture: the buffered path then reads it, and names what it is (compressed, unknown,
    /// too short to tell). The file header is checked as the buffered path checks it, with
    /// the same errors: the first block must lie within [`INITIAL_BUFFER_BYTES`].
    fn from_map(
        path: PathBuf,
        file_len: u64,
        mut mapped: map::MappedFile,
    ) -> Result<Result<ReplayReader, CaptureError>, ()> {
        let head = mapped.window(INITIAL_BUFFER_BYTES);
        let magic: [u8; 4] = head.get(..4).and_then(|m| m.try_into().ok()).ok_or(())?;
        let is_pcapng = match magic {
            [0x0a, 0x0d, 0x0d, 0x0a] => true,
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0x34, 0xcd, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xa1, 0xb2, 0x3c, 0x4d] => false,
            _ => return Err(()),
        };
        // The buffered path saw the end of the file while filling its first buffer exactly
        // when the file is shorter than that buffer.
        let whole_file_in_head = file_len < INITIAL_BUFFER_BYTES as u64;
        let header_error = |err: pcap_parser::nom::Err<PcapError<&[u8]>>| {
            let err = match err {
                pcap_parser::nom::Err::Incomplete(_) if whole_file_in_head => {
                    return CaptureError::Truncated {
                        path: path.clone(),
                        offset: 0,
                    };
                }
                pcap_parser::nom::Err::Incomplete(_) => "incomplete".to_owned(),
                pcap_parser::nom::Err::Error(e) | pcap_parser::nom::Err::Failure(e) => {
                    parser_error_text(&e)
                }
            };
            let what = if is_pcapng {
                format!(
                    "invalid or oversized pcapng section header block ({err}); \
                     the first block must fit in {INITIAL_BUFFER_BYTES} bytes"
                )
            } else {
                format!("invalid pcap file header ({err})")
            };
            CaptureError::Corrupt {
                path: path.clone(),
                offset: 0,
                what,
            }
        };
        let (format, header_len) = if is_pcapng {
            if let Err(err) = pcap_parser::pcapng::parse_sectionheaderblock(head) {
                return Ok(Err(header_error(err)));
            }
            // The section header is read again as the first block, as on the buffered path.
            let ng = NgState {
                big_endian: false,
                interfaces: Vec::new(),
                last_ts: Timestamp::ZERO,
            };
            (Format::Ng(ng), 0)
        } else {
            match pcap_parser::pcap::parse_pcap_header(head) {
                Ok((rest, header)) => (
                    Format::Legacy(LegacyState::from_header(&header)),
                    head.len() - rest.len(),
                ),
                Err(err) => return Ok(Err(header_error(err))),
            }
        };
        mapped.consume(header_len);
        Ok(Ok(ReplayReader {
            path,
            file_len,
            compression: Compression::None,
            source: Source::Map(mapped),
            format,
            pending_consume: 0,
            finished: false,
        }))
    }

    /// The unread bytes at the head of the source: the streaming buffer, or a window of the map
    /// as large as that buffer can grow (so both paths accept and refuse the same blocks).
    fn data(&self) -> &[u8] {
        match &self.source {
            Source::Stream(stream) => stream.inner.data(),
            Source::Map(mapped) => mapped.window(MAX_BUFFER_BYTES - 1),
        }
    }

    /// Marks `n` bytes at the head as read.
    fn consume(&mut self, n: usize) {
        match &mut self.source {
            Source::Stream(stream) => stream.inner.consume(n),
            Source::Map(mapped) => mapped.consume(n),
        }
    }

    /// Capacity of the streaming buffer (0 for a map), for the tests of buffer growth.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        match &self.source {
            Source::Stream(stream) => stream.capacity,
            Source::Map(_) => 0,
        }
    }

    /// The error for a file that got shorter while mapped.
    fn shrank_error(&self) -> CaptureError {
        let offset = self.offset();
        io_error(
            &self.path,
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file got shorter than its {} bytes while it was being read (another \
                     process cut or rewrote it); stopped at byte {offset}",
                    self.file_len
                ),
            ),
        )
    }

    /// Reads blocks until the next packet (left unconsumed in the buffer), the end or an error.
    /// Inlined with [`ReplayReader::step`] and [`legacy_record`]: their results returned
    /// through memory were read back as wide words right after their narrow stores (a
    /// store-forwarding stall on every record).
    #[inline(always)]
    fn advance(&mut self) -> Result<Option<Packet>, CaptureError> {
        loop {
            match self.step()? {
                Step::Packet(packet) => return Ok(Some(packet)),
                Step::Skip(len) => self.consume(len),
                Step::NeedMore => {
                    if !self.fill()? {
                        return Ok(None);
                    }
                }
                Step::End => return Ok(None),
            }
        }
    }

    /// Looks at the block at the head of the buffer without consuming it.
    #[inline(always)]
    fn step(&mut self) -> Result<Step, CaptureError> {
        let offset = self.offset();
        let corrupt = |what: String| CaptureError::Corrupt {
            path: self.path.clone(),
            offset,
            what,
        };
        let data = match &self.source {
            Source::Stream(stream) => stream.inner.data(),
            Source::Map(mapped) => mapped.window(MAX_BUFFER_BYTES - 1),
        };
        match &mut self.format {
            // pcap-parser hands out the file header first (the map source skipped it when
            // opening); records are ours from then on.
            Format::Legacy(legacy) if offset > 0 || matches!(self.source, Source::Map(_)) => {
                return legacy_record(data, legacy).map_err(corrupt);
            }
            Format::Ng(ng) => {
                if let Some(step) = ng_packet_block(data, ng).map_err(corrupt)? {
                    return Ok(step);
                }
            }
            Format::Legacy(_) => {}
        }
        let outcome = match &mut self.source {
            Source::Stream(stream) => match stream.inner.next() {
                Ok((len, block)) => Ok(handle_block(
                    &mut self.format,
                    &self.path,
                    offset,
                    len,
                    block,
                )?),
                Err(PcapError::Eof) => Ok(Step::End),
                Err(
                    PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::BufferTooSmall,
                ) => Ok(Step::NeedMore),
                Err(PcapError::ReadError) => Err(None),
                Err(err) => Err(Some(parser_error_text(&err))),
            },
            // The same parsers over the map: pcapng blocks other than packets (legacy records
            // never get here), in the byte order of the section.
            Source::Map(mapped) => {
                let data = mapped.window(MAX_BUFFER_BYTES - 1);
                let big_endian = matches!(&self.format, Format::Ng(ng) if ng.big_endian);
                let parse = if big_endian {
                    pcap_parser::pcapng::parse_block_be
                } else {
                    pcap_parser::pcapng::parse_block_le
                };
                if data.is_empty() {
                    Ok(Step::End)
                } else {
                    match parse(data) {
                        Ok((rest, block)) => Ok(handle_block(
                            &mut self.format,
                            &self.path,
                            offset,
                            data.len() - rest.len(),
                            PcapBlockOwned::NG(block),
                        )?),
                        Err(pcap_parser::nom::Err::Incomplete(_)) => Ok(Step::NeedMore),
                        Err(
                            pcap_parser::nom::Err::Error(err) | pcap_parser::nom::Err::Failure(err),
                        ) => Err(Some(parser_error_text(&err))),
                    }
                }
            }
        };
        match outcome {
            Ok(step) => Ok(step),
            Err(None) => Err(self.read_error()),
            Err(Some(parser_error)) => Err(self.corrupt(self.describe_bad_block(&parser_error))),
        }
    }

    /// Gets more bytes for an incomplete block: refills, grows the buffer if the block needs it,
    /// or ends. Returns `false` at a clean end of file (no partial block left).
    fn fill(&mut self) -> Result<bool, CaptureError> {
        let available = self.data().len();
        // A map holds the whole file: nothing more will come.
        let exhausted = match &self.source {
            Source::Stream(stream) => stream.inner.reader_exhausted(),
            Source::Map(_) => true,
        };
        if available == 0 && exhausted {
            return Ok(false);
        }
        let declared = self.declared_block_len()?;
        if let Some(len) = declared {
            if len >= MAX_BUFFER_BYTES as u64 {
                return Err(self.corrupt(format!(
                    "block or record of {len} bytes, at or above the {MAX_BUFFER_BYTES}-byte limit"
                )));
            }
        }
        let truncated = CaptureError::Truncated {
            path: self.path.clone(),
            offset: self.offset(),
        };
        let Source::Stream(stream) = &mut self.source else {
            return Err(truncated);
        };
        if exhausted {
            return Err(truncated);
        }
        // pcap-parser wants room for the whole block plus one byte. A full buffer with no
        // declared length cannot happen (a length is known from 16 bytes on), but grow anyway
        // so the loop always makes progress.
        let needed = declared.map_or(0, |len| len.saturating_add(1));
        if needed > stream.capacity as u64 || available >= stream.capacity {
            if stream.capacity >= MAX_BUFFER_BYTES {
                return Err(self.corrupt(format!(
                    "block does not fit in the {MAX_BUFFER_BYTES}-byte buffer limit"
                )));
            }
            let needed = usize::try_from(needed).unwrap_or(MAX_BUFFER_BYTES);
            let target = needed
                .next_power_of_two()
                .max(stream.capacity.saturating_mul(2))
                .min(MAX_BUFFER_BYTES);
            stream.inner.grow(target);
            stream.capacity = target;
        }
        if stream.inner.refill().is_err() {
            return Err(self.read_error());
        }
        Ok(true)
    }

    /// Length of the block at the head of the buffer as its header declares it, if enough of
    /// the header is there. Legacy records whose `caplen` breaks the libpcap limit are corrupt.
    fn declared_block_len(&self) -> Result<Option<u64>, CaptureError> {
        let data = self.data();
        match &self.format {
            Format::Legacy(legacy) => {
                let Some((caplen, _)) = legacy.lengths(data) else {
                    return Ok(None);
                };
                legacy
                    .check_caplen(caplen)
                    .map_err(|what| self.corrupt(what))?;
                Ok(Some(legacy.record_header_len as u64 + u64::from(caplen)))
            }
            Format::Ng(ng) => {
                let big_endian = match data.get(..4) {
                    // A section header declares its own byte order.
                    Some(&[0x0a, 0x0d, 0x0d, 0x0a]) => match data.get(8..12) {
                        Some(&[0x1a, 0x2b, 0x3c, 0x4d]) => true,
                        Some(&[0x4d, 0x3c, 0x2b, 0x1a]) => false,
                        Some(_) => return Err(self.corrupt("bad byte-order magic".to_owned())),
                        None => return Ok(None),
                    },
                    _ => ng.big_endian,
                };
                Ok(read_u32(data, 4, big_endian).map(u64::from))
            }
        }
    }

    /// Describes a block pcap-parser rejected, from its type and length fields.
    fn describe_bad_block(&self, parser_error: &str) -> String {
        let data = self.data();
        match &self.format {
            Format::Ng(ng) => {
                let block_type = read_u32(data, 0, ng.big_endian).unwrap_or(0);
                let len = read_u32(data, 4, ng.big_endian).unwrap_or(0);
                format!(
                    "invalid pcapng block (type {block_type:#010x}, length {len}): {parser_error}"
                )
            }
            Format::Legacy(_) => format!("invalid pcap record: {parser_error}"),
        }
    }

    /// The error behind a `ReadError` from pcap-parser, classified.
    fn read_error(&self) -> CaptureError {
        match &self.source {
            Source::Stream(stream) => {
                classify_read_error(&self.path, self.compression, &stream.io, self.offset())
            }
            // A map is not read; kept total rather than unreachable.
            Source::Map(_) => io_error(&self.path, io::Error::other("read failed")),
        }
    }

    /// A `Corrupt` error at the current offset.
    fn corrupt(&self, what: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset: self.offset(),
            what,
        }
    }

    /// Offset of the head of the buffer in the decompressed stream.
    fn offset(&self) -> u64 {
        match &self.source {
            Source::Stream(stream) => stream.inner.consumed() as u64,
            Source::Map(mapped) => mapped.pos() as u64,
        }
    }
}

impl fmt::Debug for ReplayReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayReader")
            .field("path", &self.path)
            .field("compression", &self.compression)
            .field("offset", &self.offset())
            .field("mapped", &self.is_mapped())
            .finish_non_exhaustive()
    }
}

/// Offsets in a legacy pcap record header (the modified format appends 8 bytes).
mod legacy {
    pub(super) const TS_SEC: usize = 0;
    pub(super) const TS_FRAC: usize = 4;
    pub(super) const CAPLEN: usize = 8;
    pub(super) const ORIG_LEN: usize = 12;
}

/// Length of a legacy pcap record header.
const LEGACY_RECORD_HEADER_LEN: usize = 16;
/// Length of a record header in the modified (Kuznetzov) format: ifindex, protocol, type, pad.
const MODIFIED_RECORD_HEADER_LEN: usize = 24;
/// Mask of the link type in a legacy header's `network` field; the upper six bits carry FCS
/// information (libpcap's `LT_LINKTYPE`).
const LEGACY_LINKTYPE_MASK: u32 = 0x03ff_ffff;

/// pcapng block types and layouts (draft-ietf-opsawg-pcapng), offsets from the block start.
mod ng {
    /// Enhanced Packet Block.
    pub(super) const EPB_TYPE: u32 = 6;
    /// Obsolete Packet Block (pcapng 1.0), laid out like an EPB with a 16-bit interface id.
    pub(super) const OBSOLETE_PB_TYPE: u32 = 2;
    /// Type, length, interface, timestamp (high, low), caplen, original length, trailing length.
    pub(super) const PACKET_BLOCK_MIN_LEN: u32 = 32;
    /// Offsets in an (Enhanced) Packet Block.
    pub(super) const LEN: usize = 4;
    pub(super) const INTERFACE: usize = 8;
    pub(super) const TS_HIGH: usize = 12;
    pub(super) const TS_LOW: usize = 16;
    pub(super) const CAPLEN: usize = 20;
    pub(super) const ORIG_LEN: usize = 24;
    pub(super) const PACKET_DATA: usize = 28;
    /// Offset of the packet in a Simple Packet Block (after its original length).
    pub(super) const SPB_PACKET_DATA: usize = 12;
    /// Fixed part of a Simple Packet Block: type, length, original length, trailing length.
    pub(super) const SPB_OVERHEAD: usize = 16;
}

/// What to do with the block at the head of the buffer.
enum Step {
    /// A packet; the block stays in the buffer until the next call.
    Packet(Packet),
    /// A block without a packet, of this length: consume it and go on.
    Skip(usize),
    /// The block is incomplete: refill.
    NeedMore,
    /// Clean end of the stream.
    End,
}

/// Where a packet lies in the block at the head of the buffer, and its metadata.
struct Packet {
    /// Length of the whole block or record.
    block_len: usize,
    /// Offset of the packet bytes in the block.
    data_start: usize,
    /// Captured length; `data_start + caplen <= block_len`.
    caplen: usize,
    orig_len: u32,
    ts: Timestamp,
    link: LinkType,
}

/// State of the file format being read.
enum Format {
    Legacy(LegacyState),
    Ng(NgState),
}

/// A legacy pcap file: one link type and one time resolution, from its header.
struct LegacyState {
    link: LinkType,
    snaplen: u32,
    nanos: bool,
    big_endian: bool,
    record_header_len: usize,
    lengths: LengthOrder,
}

/// Order of the caplen and len fields in legacy records. They were interchanged at version 2.3
/// and some files kept the old order; libpcap and Wireshark decide as below, and so do we.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LengthOrder {
    /// caplen, then len (version 2.4 and later, and unknown versions).
    Normal,
    /// len, then caplen (versions before 2.3, and DG/UX's 543.0).
    Swapped,
    /// Version 2.3: swapped when the first field is larger than the second.
    MaybeSwapped,
}

impl LegacyState {
    fn from_header(header: &PcapHeader) -> LegacyState {
        // `network` is read as i32; reinterpreting its bits as u32 is intended.
        let network = header.network.0 as u32;
        LegacyState {
            link: LinkType(network & LEGACY_LINKTYPE_MASK),
            snaplen: header.snaplen,
            nanos: header.is_nanosecond_precision(),
            big_endian: header.is_bigendian(),
            record_header_len: if header.is_modified_format() {
                MODIFIED_RECORD_HEADER_LEN
            } else {
                LEGACY_RECORD_HEADER_LEN
            },
            lengths: match (header.version_major, header.version_minor) {
                (2, 0..=2) | (543, _) => LengthOrder::Swapped,
                (2, 3) => LengthOrder::MaybeSwapped,
                _ => LengthOrder::Normal,
            },
        }
    }

    /// `(caplen, orig_len)` of the record at the head of `data`, once its header is there.
    fn lengths(&self, data: &[u8]) -> Option<(u32, u32)> {
        let first = read_u32(data, legacy::CAPLEN, self.big_endian)?;
        let second = read_u32(data, legacy::ORIG_LEN, self.big_endian)?;
        let swapped = match self.lengths {
            LengthOrder::Normal => false,
            LengthOrder::Swapped => true,
            LengthOrder::MaybeSwapped => first > second,
        };
        Some(if swapped {
            (second, first)
        } else {
            (first, second)
        })
    }

    /// libpcap's rule: a caplen above both the snaplen and `MAXIMUM_SNAPLEN` is a damaged record.
    fn check_caplen(&self, caplen: u32) -> Result<(), String> {
        let limit = self.snaplen.max(LEGACY_MAX_CAPLEN);
        if caplen > limit {
            return Err(format!(
                "record claims {caplen} captured bytes, more than the snaplen {} and the \
                 {LEGACY_MAX_CAPLEN}-byte libpcap maximum",
                self.snaplen
            ));
        }
        Ok(())
    }

    fn timestamp(&self, ts_sec: u32, ts_frac: u32) -> Timestamp {
        let frac_nanos = if self.nanos {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac).saturating_mul(1_000)
        };
        Timestamp(
            u64::from(ts_sec)
                .saturating_mul(1_000_000_000)
                .saturating_add(frac_nanos),
        )
    }
}

/// Reads the legacy record at the head of the buffer. We parse records ourselves rather than
/// with pcap-parser so that files with interchanged length fields read as they do in libpcap.
#[inline(always)]
fn legacy_record(data: &[u8], legacy: &LegacyState) -> Result<Step, String> {
    let Some((caplen, orig_len)) = legacy.lengths(data) else {
        return Ok(Step::NeedMore);
    };
    legacy.check_caplen(caplen)?;
    let block_len = legacy.record_header_len + caplen as usize;
    if data.len() < block_len || data.len() < legacy.record_header_len {
        return Ok(Step::NeedMore);
    }
    let field = |at: usize| read_u32(data, at, legacy.big_endian).unwrap_or(0);
    Ok(Step::Packet(Packet {
        block_len,
        data_start: legacy.record_header_len,
        caplen: caplen as usize,
        orig_len,
        ts: legacy.timestamp(field(legacy::TS_SEC), field(legacy::TS_FRAC)),
        link: legacy.link,
    }))
}

/// A pcapng section: its byte order, its interfaces, and the time of the last packet.
struct NgState {
    big_endian: bool,
    /// Interfaces of the current section, by id; at most [`MAX_INTERFACES`].
    interfaces: Vec<Interface>,
    /// Time of the previous packet, given to Simple Packet Blocks, which carry none.
    last_ts: Timestamp,
}

/// An interface from an Interface Description Block.
struct Interface {
    link: LinkType,
    /// 0 means no limit.
    snaplen: u32,
    /// Timestamp units per second (`if_tsresol`), at least 1.
    units_per_sec: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_secs: i64,
}

impl Interface {
    fn from_idb(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> Result<Self, String> {
        let units_per_sec = units_per_sec(idb.if_tsresol)
            .ok_or_else(|| format!("if_tsresol {:#04x} is out of range", idb.if_tsresol))?;
        // pcap-parser decodes if_tsoffset as little-endian whatever the section's byte order,
        // so read the option ourselves.
        let offset_secs = idb
            .options
            .iter()
            .find(|opt| opt.code == OptionCode::IfTsoffset)
            .and_then(|opt| opt.value().get(..8))
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map_or(0, |bytes| {
                if big_endian {
                    i64::from_be_bytes(bytes)
                } else {
                    i64::from_le_bytes(bytes)
                }
            });
        Ok(Interface {
            // The IDB link type is 16 bits wide, read into an i32 by pcap-parser.
            link: LinkType(u32::try_from(idb.linktype.0).unwrap_or_default()),
            snaplen: idb.snaplen,
            units_per_sec,
            offset_secs,
        })
    }

    /// Converts a 64-bit pcapng timestamp to nanoseconds since the epoch (saturating).
    fn timestamp(&self, ts_high: u32, ts_low: u32) -> Timestamp {
        let ticks = (u128::from(ts_high) << 32) | u128::from(ts_low);
        let units = u128::from(self.units_per_sec);
        let secs = ticks / units;
        let frac_nanos = (ticks % units) * 1_000_000_000 / units;
        // Both terms fit easily in an i128: secs < 2^64, |offset| < 2^63.
        let total = (secs as i128 + i128::from(self.offset_secs))
            .saturating_mul(1_000_000_000)
            .saturating_add(frac_nanos as i128);
        Timestamp(u64::try_from(total.max(0)).unwrap_or(u64::MAX))
    }
}

/// Timestamp units per second for an `if_tsresol` value: a power of ten, or of two when the top
/// bit is set. `None` when it does not fit in a u64. (pcap-parser's `build_ts_resolution`
/// rejects every power of two, so we compute it here.)
fn units_per_sec(tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exponent)
    } else {
        1u64.checked_shl(exponent).filter(|_| exponent < 64)
    }
}

/// Reads an Enhanced or obsolete Packet Block at the head of the buffer ourselves: pcap-parser
/// would collect the block's options into a `Vec`, one allocation per packet, and does not know
/// the obsolete block. Returns `None` for every other block type, left to pcap-parser.
fn ng_packet_block(data: &[u8], ng: &mut NgState) -> Result<Option<Step>, String> {
    let be = ng.big_endian;
    let Some(block_type) = read_u32(data, 0, be) else {
        return Ok(None);
    };
    if block_type != ng::EPB_TYPE && block_type != ng::OBSOLETE_PB_TYPE {
        return Ok(None);
    }
    let Some(block_len) = read_u32(data, ng::LEN, be) else {
        return Ok(Some(Step::NeedMore));
    };
    if block_len < ng::PACKET_BLOCK_MIN_LEN {
        return Err(format!(
            "packet block length {block_len} is below the {}-byte minimum",
            ng::PACKET_BLOCK_MIN_LEN
        ));
    }
    let block_len = block_len as usize;
    let Some(block) = data.get(..block_len) else {
        return Ok(Some(Step::NeedMore));
    };
    // The block is complete, so every fixed field below is present (block_len >= 32).
    let field = |at: usize| read_u32(block, at, be).unwrap_or(0);
    let if_id = if block_type == ng::EPB_TYPE {
        field(ng::INTERFACE)
    } else {
        u32::from(read_u16(block, ng::INTERFACE, be).unwrap_or(0))
    };
    let caplen = field(ng::CAPLEN);
    let trailer = field(block_len - 4);
    if trailer as usize != block_len {
        return Err(format!(
            "packet block length {block_len} differs from its trailing copy {trailer}"
        ));
    }
    let padded = (u64::from(caplen) + 3) & !3;
    if padded + u64::from(ng::PACKET_BLOCK_MIN_LEN) > block_len as u64 {
        return Err(format!(
            "captured length {caplen} does not fit in a {block_len}-byte packet block"
        ));
    }
    packet_on_interface(
        ng,
        if_id,
        (field(ng::TS_HIGH), field(ng::TS_LOW)),
        PacketBytes {
            block_len,
            data_start: ng::PACKET_DATA,
            caplen: caplen as usize,
            orig_len: field(ng::ORIG_LEN),
        },
    )
    .map(|packet| Some(Step::Packet(packet)))
}

/// Position and lengths of a pcapng packet inside its block.
struct PacketBytes {
    block_len: usize,
    data_start: usize,
    caplen: usize,
    orig_len: u32,
}

/// A packet of an EPB or obsolete PB: looks up its interface and converts its timestamp.
fn packet_on_interface(
    ng: &mut NgState,
    if_id: u32,
    (ts_high, ts_low): (u32, u32),
    bytes: PacketBytes,
) -> Result<Packet, String> {
    let iface = ng.interfaces.get(if_id as usize).ok_or_else(|| {
        format!(
            "packet on interface {if_id}, but the section declares {} interface(s)",
            ng.interfaces.len()
        )
    })?;
    let ts = iface.timestamp(ts_high, ts_low);
    ng.last_ts = ts;
    Ok(Packet {
        block_len: bytes.block_len,
        data_start: bytes.data_start,
        caplen: bytes.caplen,
        orig_len: bytes.orig_len,
        ts,
        link: iface.link,
    })
}

/// Acts on a block pcap-parser returned.
fn handle_block(
    format: &mut Format,
    path: &Path,
    offset: u64,
    len: usize,
    block: PcapBlockOwned<'_>,
) -> Result<Step, CaptureError> {
    let corrupt = |what: String| CaptureError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what,
    };
    match (format, block) {
        (Format::Legacy(legacy), PcapBlockOwned::LegacyHeader(header)) => {
            *legacy = LegacyState::from_header(&header);
            Ok(Step::Skip(len))
        }
        (Format::Ng(ng), PcapBlockOwned::NG(block)) => match block {
            Block::SectionHeader(shb) => {
                ng.big_endian = shb.big_endian();
                ng.interfaces.clear();
                Ok(Step::Skip(len))
            }
            Block::InterfaceDescription(idb) => {
                if ng.interfaces.len() >= MAX_INTERFACES {
                    return Err(corrupt(format!(
                        "more than {MAX_INTERFACES} interfaces in one section"
                    )));
                }
                let iface = Interface::from_idb(&idb, ng.big_endian).map_err(corrupt)?;
                ng.interfaces.push(iface);
                Ok(Step::Skip(len))
            }
            Block::SimplePacket(spb) => simple_packet(ng, len, &spb)
                .map(Step::Packet)
                .map_err(corrupt),
            // Normally taken by the fast path; kept so that no packet is ever skipped silently.
            Block::EnhancedPacket(epb) => enhanced_packet(ng, len, &epb)
                .map(Step::Packet)
                .map_err(corrupt),
            _ => Ok(Step::Skip(len)),
        },
        // Legacy records are read by `legacy_record`, never here; and pcap-parser returns only
        // the block kinds of the reader it was created as.
        _ => Ok(Step::Skip(len)),
    }
}

/// A Simple Packet Block: interface 0, no timestamp (the previous packet's is used), and a
/// captured length implied by the block length, the original length and the snaplen.
fn simple_packet(
    ng: &mut NgState,
    len: usize,
    spb: &SimplePacketBlock<'_>,
) -> Result<Packet, String> {
    let iface = ng
        .interfaces
        .first()
        .ok_or_else(|| "simple packet block before any interface".to_owned())?;
    // The captured length is implied: min(original length, snaplen). A block too small for it
    // is damaged (Wireshark says the same).
    let mut caplen = spb.origlen as usize;
    if iface.snaplen != 0 {
        caplen = caplen.min(iface.snaplen as usize);
    }
    let room = (spb.block_len1 as usize)
        .saturating_sub(ng::SPB_OVERHEAD)
        .min(spb.data.len());
    if caplen > room {
        return Err(format!(
            "simple packet block has room for {room} bytes, but the packet has {caplen}"
        ));
    }
    Ok(Packet {
        block_len: len,
        data_start: ng::SPB_PACKET_DATA,
        caplen,
        orig_len: spb.origlen,
        ts: ng.last_ts,
        link: iface.link,
    })
}

fn enhanced_packet(
    ng: &mut NgState,
    len: usize,
    epb: &EnhancedPacketBlock<'_>,
) -> Result<Packet, String> {
    packet_on_interface(
        ng,
        epb.if_id,
        (epb.ts_high, epb.ts_low),
        PacketBytes {
            block_len: len,
            data_start: ng::PACKET_DATA,
            caplen: (epb.caplen as usize).min(epb.data.len()),
            orig_len: epb.origlen,
        },
    )
}

fn read_u32(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

fn read_u16(data: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let bytes: [u8; 2] = data.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(bytes)
    } else {
        u16::from_le_bytes(bytes)
    })
}

/// Describes a pcap-parser error without its input bytes (its `Display` prints them all).
fn parser_error_text<I>(err: &PcapError<I>) -> String {
    match err {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("parser error {kind:?}")
        }
        PcapError::Eof => "end of file".to_owned(),
        PcapError::BufferTooSmall => "buffer too small".to_owned(),
        PcapError::UnexpectedEof => "unexpected end of file".to_owned(),
        PcapError::ReadError => "read error".to_owned(),
        PcapError::Incomplete(_) => "incomplete".to_owned(),
        PcapError::HeaderNotRecognized => "header not recognised".to_owned(),
    }
}

fn has_capture_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| {
            CAPTURE_EXTENSIONS
                .iter()
                .any(|known| ext.eq_ignore_ascii_case(known))
        })
}

fn io_error(path: &Path, source: io::Error) -> CaptureError {
    CaptureError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Turns the IO error recorded by the adapters into a `CaptureError`: a failure of the file
/// itself is `Io`; a decompressor hitting the end of its input mid-stream is `Truncated`; any
/// other decompressor error is `Corrupt`.
fn classify_read_error(
    path: &Path,
    compression: Compression,
    io: &IoState,
    offset: u64,
) -> CaptureError {
    let err = io
        .error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or_else(|| io::Error::other("read failed"));
    if io.file_failed.load(Ordering::Relaxed) || compression == Compression::None {
        return io_error(path, err);
    }
    if err.kind() == io::ErrorKind::UnexpectedEof {
        return CaptureError::Truncated {
            path: path.to_path_buf(),
            offset,
        };
    }
    CaptureError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what: format!("{compression} stream: {err}"),
    }
}

/// Reads until `buf` is full or the end of the stream; returns the number of bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n.min(rest.len()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// gzip members read in turn, as `zcat` reads them, and zero padding after the last one ignored
/// (issue 17, item 10: some transfers pad a file with zeros; flate2's `MultiGzDecoder` took the
/// padding for a bad member header and the file ended as damaged after every packet was read).
/// Anything else after a member, zeros followed by other bytes included, must be a member.
struct GzMembers<R: Read> {
    /// The member being read; `None` once the stream ended.
    member: Option<flate2::bufread::GzDecoder<io::BufReader<R>>>,
}

impl<R: Read> GzMembers<R> {
    fn new(raw: R) -> Self {
        GzMembers {
            member: Some(flate2::bufread::GzDecoder::new(io::BufReader::new(raw))),
        }
    }
}

impl<R: Read> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Each pass either returns or starts a member on at least one unread byte, so the loop
        // ends with the input.
        loop {
            let Some(member) = self.member.as_mut() else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            let Some(member) = self.member.take() else {
                return Ok(0);
            };
            let mut rest = member.into_inner();
            if !skip_zero_padding(&mut rest)? {
                return Ok(0);
            }
            self.member = Some(flate2::bufread::GzDecoder::new(rest));
        }
    }
}

/// Consumes zero bytes; `true` when other bytes follow, `false` at the end of the input.
fn skip_zero_padding(reader: &mut impl BufRead) -> io::Result<bool> {
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if buf.is_empty() {
            return Ok(false);
        }
        let zeros = buf.iter().take_while(|&&b| b == 0).count();
        let more = zeros < buf.len();
        reader.consume(zeros);
        if more {
            return Ok(true);
        }
    }
}

/// State shared between the reader and the `Read` adapters that pcap-parser owns.
#[derive(Default)]
struct IoState {
    /// Bytes read from the file on disk.
    file_bytes: AtomicU64,
    /// The file itself (not the decompressor) failed.
    file_failed: AtomicBool,
    /// The decompressed stream ended.
    eof: AtomicBool,
    /// The last read error: pcap-parser reduces it to `ReadError`, so it is kept here.
    error: Mutex<Option<io::Error>>,
}

impl IoState {
    fn record_error(&self, err: io::Error) {
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
    }
}

/// Counts the bytes read from the file and notes whether the file failed.
struct CountingReader {
    inner: Box<dyn Read + Send>,
    io: Arc<IoState>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        match &result {
            Ok(n) => {
                self.io.file_bytes.fetch_add(*n as u64, Ordering::Relaxed);
            }
            Err(err) if err.kind() != io::ErrorKind::Interrupted => {
                self.io.file_failed.store(true, Ordering::Relaxed);
            }
            Err(_) => {}
        }
        result
    }
}

/// The stream pcap-parser reads: fills each buffer completely (pcap-parser does one `read` per
/// refill, and a decompressor returns short reads), retries interrupted reads, and records the
/// first error in [`IoState`], since pcap-parser keeps only `ReadError`.
struct FillReader {
    inner: Box<dyn Read + Send>,
    io: Arc<IoState>,
    /// An error was recorded; every later read fails.
    failed: bool,
}

impl Read for FillReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier read failed"));
        }
        let mut filled = 0;
        while let Some(rest) = buf.get_mut(filled..) {
            if rest.is_empty() {
                break;
            }
            match self.inner.read(rest) {
                Ok(0) => {
                    self.io.eof.store(true, Ordering::Relaxed);
                    break;
                }
                Ok(n) => filled += n.min(rest.len()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let kind = err.kind();
                    self.failed = true;
                    self.io.record_error(err);
                    // Hand over what was read; the next call reports the error.
                    if filled > 0 {
                        break;
                    }
                    return Err(io::Error::from(kind));
                }
            }
        }
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::AtomicUsize;

    /// A unique temporary file, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, bytes: &[u8]) -> TempFile {
            static SEQ: AtomicUsize = AtomicUsize::new(0);
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "mirrorwatch-replay-{}-{n}-{name}",
                std::process::id()
            ));
            fs::write(&path, bytes).unwrap();
            TempFile(path)
        }

        /// Cuts the file to `len` bytes, as another process would while it is read.
        fn cut_to(&self, len: u64) {
            fs::OpenOptions::new()
                .write(true)
                .open(&self.0)
                .unwrap()
                .set_len(len)
                .unwrap();
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    /// An owned copy of a record, to compare outside the reader's borrow.
    #[derive(Debug, PartialEq, Eq)]
    struct Owned {
        ts: u64,
        link: u32,
        data: Vec<u8>,
        orig_len: u32,
    }

    /// Reads every packet; returns them and the final result (`Ok(())` at a clean end).
    fn read_all(reader: &mut ReplayReader) -> (Vec<Owned>, Result<(), CaptureError>) {
        let mut packets = Vec::new();
        loop {
            match reader.next_packet() {
                Ok(Some(rec)) => packets.push(Owned {
                    ts: rec.ts.as_nanos(),
                    link: rec.link.0,
                    data: rec.data.to_vec(),
                    orig_len: rec.orig_len,
                }),
                Ok(None) => return (packets, Ok(())),
                Err(err) => {
                    // Fused: nothing after an error.
                    assert!(matches!(reader.next_packet(), Ok(None)));
                    return (packets, Err(err));
                }
            }
        }
    }

    /// Reads a file with [`ReplayReader::open`] (mapped when it is an uncompressed capture),
    /// after checking that the buffered path gives the same.
    fn read_file(path: &Path) -> (Vec<Owned>, Result<(), CaptureError>) {
        let mut buffered = ReplayReader::open_with(path, ReadMode::Buffered).unwrap();
        assert!(!buffered.is_mapped());
        let buffered = read_all(&mut buffered);
        let mapped = read_all(&mut ReplayReader::open(path).unwrap());
        assert_same_reads(&buffered, &mapped);
        mapped
    }

    /// Reads from memory, as the fuzz-style tests do; and reads the same bytes from a file
    /// through the map, which must give the same packets and the same error (issue 14).
    fn read_bytes(bytes: &[u8]) -> Result<(Vec<Owned>, Result<(), CaptureError>), CaptureError> {
        let streamed = read_bytes_with(bytes, INITIAL_BUFFER_BYTES);
        assert_same_outcome(&streamed, &read_mapped(bytes));
        streamed
    }

    /// Reads `bytes` from a temporary file with [`ReplayReader::open`], which maps every
    /// uncompressed capture (checked here).
    fn read_mapped(bytes: &[u8]) -> Result<(Vec<Owned>, Result<(), CaptureError>), CaptureError> {
        let file = TempFile::new("mapped.pcap", bytes);
        let mut reader = ReplayReader::open(&file.0)?;
        let capture_magic = matches!(
            bytes.get(..4),
            Some(
                [0x0a, 0x0d, 0x0d, 0x0a]
                    | [0xd4, 0xc3, 0xb2, 0xa1]
                    | [0x4d, 0x3c, 0xb2, 0xa1]
                    | [0x34, 0xcd, 0xb2, 0xa1]
                    | [0xa1, 0xb2, 0xc3, 0xd4]
                    | [0xa1, 0xb2, 0x3c, 0x4d]
            )
        );
        assert_eq!(reader.is_mapped(), capture_magic, "mapped iff uncompressed");
        Ok(read_all(&mut reader))
    }

    /// An error without its path (the two readers name different files), to compare.
    fn error_key(err: &CaptureError) -> String {
        match err {
            CaptureError::Io { source, .. } => format!("io: {source}"),
            CaptureError::UnknownFormat { magic, .. } => format!("unknown format {magic:02x?}"),
            CaptureError::Empty { .. } => "empty".to_owned(),
            CaptureError::UnsupportedCompression { format, .. } => format!("compressed {format}"),
            CaptureError::Corrupt { offset, what, .. } => format!("corrupt at {offset}: {what}"),
            CaptureError::Truncated { offset, .. } => format!("truncated at {offset}"),
        }
    }

    type Outcome = Result<(Vec<Owned>, Result<(), CaptureError>), CaptureError>;

    /// Both outcomes have the same packets, in order, and end the same way.
    fn assert_same_outcome(streamed: &Outcome, mapped: &Outcome) {
        match (streamed, mapped) {
            (Ok(a), Ok(b)) => assert_same_reads(a, b),
            (Err(a), Err(b)) => assert_eq!(error_key(a), error_key(b)),
            (a, b) => panic!(
                "one path opened, the other did not: read {:?}, mapped {:?}",
                a.as_ref().err().map(error_key),
                b.as_ref().err().map(error_key)
            ),
        }
    }

    fn assert_same_reads(
        (a, end_a): &(Vec<Owned>, Result<(), CaptureError>),
        (b, end_b): &(Vec<Owned>, Result<(), CaptureError>),
    ) {
        assert_eq!(a.len(), b.len(), "packet counts differ");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert_eq!(x, y, "packet {i} differs");
        }
        assert_eq!(
            end_a.as_ref().err().map(error_key),
            end_b.as_ref().err().map(error_key)
        );
    }

    fn open_bytes(bytes: &[u8], capacity: usize) -> Result<ReplayReader, CaptureError> {
        ReplayReader::from_raw(
            PathBuf::from("mem.pcap"),
            bytes.len() as u64,
            Box::new(Cursor::new(bytes.to_vec())),
            capacity,
        )
    }

    fn read_bytes_with(
        bytes: &[u8],
        capacity: usize,
    ) -> Result<(Vec<Owned>, Result<(), CaptureError>), CaptureError> {
        Ok(read_all(&mut open_bytes(bytes, capacity)?))
    }

    // ---- legacy pcap writer -------------------------------------------------------------

    const MAGIC_US: u32 = 0xa1b2_c3d4;
    const MAGIC_NS: u32 = 0xa1b2_3c4d;

    struct PcapWriter {
        bytes: Vec<u8>,
        be: bool,
    }

    impl PcapWriter {
        /// 24-byte global header: magic, version 2.4, thiszone, sigfigs, snaplen, network.
        fn new(magic: u32, be: bool, snaplen: u32, link: u32) -> PcapWriter {
            let mut w = PcapWriter {
                bytes: Vec::new(),
                be,
            };
            w.u32(magic);
            w.u16(2);
            w.u16(4);
            w.u32(0);
            w.u32(0);
            w.u32(snaplen);
            w.u32(link);
            w
        }
        fn u16(&mut self, v: u16) {
            let b = if self.be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
        }
        fn u32(&mut self, v: u32) {
            let b = if self.be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
        }
        /// 16-byte record header (ts_sec, ts_frac, caplen, orig_len), then the data.
        fn record(&mut self, ts_sec: u32, ts_frac: u32, data: &[u8], orig_len: u32) -> &mut Self {
            self.u32(ts_sec);
            self.u32(ts_frac);
            self.u32(data.len() as u32);
            self.u32(orig_len);
            self.bytes.extend_from_slice(data);
            self
        }
    }

    fn frame(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// Three packets; the second cut by the snaplen (caplen < orig_len).
    fn three_packet_pcap(magic: u32, be: bool, link: u32) -> (Vec<u8>, Vec<Owned>) {
        let ns = magic == MAGIC_NS;
        let mut w = PcapWriter::new(magic, be, 65_535, link);
        let fracs: [u32; 3] = if ns {
            [1, 999_999_999, 123_456_789]
        } else {
            [1, 999_999, 123_456]
        };
        let frames = [frame(60, 1), frame(100, 2), frame(1514, 3)];
        let secs = [1_700_000_000u32, 1_700_000_001, 4_000_000_000];
        let orig = [60u32, 1500, 1514];
        let mut expected = Vec::new();
        for i in 0..3 {
            w.record(secs[i], fracs[i], &frames[i], orig[i]);
            let frac_ns = if ns { fracs[i] } else { fracs[i] * 1000 };
            expected.push(Owned {
                ts: u64::from(secs[i]) * 1_000_000_000 + u64::from(frac_ns),
                link,
                data: frames[i].clone(),
                orig_len: orig[i],
            });
        }
        (w.bytes, expected)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        zstd::encode_all(bytes, 3).unwrap()
    }

    #[test]
    fn reads_pcap_microsecond_little_endian() {
        let (bytes, expected) = three_packet_pcap(MAGIC_US, false, 1);
        let file = TempFile::new("us-le.pcap", &bytes);
        let mut reader = ReplayReader::open(&file.0).unwrap();
        assert_eq!(reader.compression(), Compression::None);
        assert_eq!(reader.path(), file.0.as_path());
        assert_eq!(reader.file_len(), bytes.len() as u64);
        let (packets, end) = read_all(&mut reader);
        end.unwrap();
        assert_eq!(packets, expected);
        assert_eq!(packets[1].data.len(), 100);
        assert_eq!(packets[1].orig_len, 1500);
        assert_eq!(packets[0].ts, 1_700_000_000_000_001_000);
        assert_eq!(reader.file_bytes_read(), bytes.len() as u64);
        // A regular uncompressed file is mapped; the buffered path keeps its first buffer.
        assert!(reader.is_mapped());
        let mut buffered = ReplayReader::open_with(&file.0, ReadMode::Buffered).unwrap();
        assert_eq!(read_all(&mut buffered).0, expected);
        assert_eq!(buffered.file_bytes_read(), bytes.len() as u64);
        assert_eq!(buffered.capacity(), INITIAL_BUFFER_BYTES);
    }

    #[test]
    fn reads_pcap_nanosecond_little_endian() {
        let (bytes, expected) = three_packet_pcap(MAGIC_NS, false, 113);
        let file = TempFile::new("ns-le.pcap", &bytes);
        let (packets, end) = read_file(&file.0);
        end.unwrap();
        assert_eq!(packets, expected);
        assert_eq!(packets[1].ts, 1_700_000_001_999_999_999);
        assert_eq!(packets[0].link, LinkType::LINUX_SLL.0);
    }

    #[test]
    fn reads_pcap_big_endian_both_resolutions() {
        for magic in [MAGIC_US, MAGIC_NS] {
            let (bytes, expected) = three_packet_pcap(magic, true, 276);
            assert_eq!(&bytes[..2], &[0xa1, 0xb2]);
            let (packets, end) = read_bytes(&bytes).unwrap();
            end.unwrap();
            assert_eq!(packets, expected);
            assert_eq!(packets[2].link, LinkType::LINUX_SLL2.0);
        }
    }

    #[test]
    fn masks_fcs_bits_of_legacy_link_type() {
        // LINKTYPE_ETHERNET with the "FCS present, 4 bytes" bits (28 and 31..29 = 0b001 <<29).
        let (bytes, _) = three_packet_pcap(MAGIC_US, false, 1 | 0x1000_0000 | 0x2000_0000);
        let (packets, end) = read_bytes(&bytes).unwrap();
        end.unwrap();
        assert_eq!(packets[0].link, 1);
    }

    #[test]
    fn reads_gzip_and_zstd_by_magic_not_name() {
        let (bytes, expected) = three_packet_pcap(MAGIC_US, false, 1);
        for (compression, packed) in [
            (Compression::Gzip, gzip(&bytes)),
            (Compression::Zstd, zstd(&bytes)),
        ] {
            // A misleading extension: detection goes by the first bytes.
            let file = TempFile::new("compressed.pcapng", &packed);
            let mut reader = ReplayReader::open(&file.0).unwrap();
            assert_eq!(reader.compression(), compression);
            let (packets, end) = read_all(&mut reader);
            end.unwrap();
            assert_eq!(packets, expected, "{compression}");
            assert_eq!(reader.file_bytes_read(), packed.len() as u64);
            assert_eq!(reader.file_len(), packed.len() as u64);
        }
    }

    #[test]
    fn reads_every_gzip_member_and_zstd_frame() {
        let (bytes, expected) = three_packet_pcap(MAGIC_NS, false, 1);
        let (head, tail) = bytes.split_at(50);
        let gz = [gzip(head), gzip(tail)].concat();
        let zs = [zstd(head), zstd(tail)].concat();
        for packed in [gz, zs] {
            let (packets, end) = read_bytes(&packed).unwrap();
            end.unwrap();
            assert_eq!(packets, expected);
        }
    }

    #[test]
    fn regression_issue_17_zstd_starting_with_a_skippable_frame() {
        // pzstd writes a skippable frame first: magic 0x184D2A5X (little-endian), a 4-byte
        // length, that many bytes of user data.
        let (bytes, expected) = three_packet_pcap(MAGIC_US, false, 1);
        for nibble in [0x50u8, 0x5f] {
            let mut packed = vec![nibble, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
            packed.extend_from_slice(&zstd(&bytes));
            let reader = open_bytes(&packed, INITIAL_BUFFER_BYTES).unwrap();
            assert_eq!(reader.compression(), Compression::Zstd);
            let (packets, end) = read_bytes(&packed).unwrap();
            end.unwrap();
            assert_eq!(packets, expected);
        }
        // 0x184D2A60 is not a skippable frame: not zstd, not a capture.
        let mut other = vec![0x60, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
        other.extend_from_slice(&zstd(&bytes));
        assert!(matches!(
            read_bytes(&other),
            Err(CaptureError::UnknownFormat { .. })
        ));
    }

    #[test]
    fn regression_issue_17_gzip_zero_padding_is_ignored() {
        let (bytes, expected) = three_packet_pcap(MAGIC_NS, false, 1);
        let (head, tail) = bytes.split_at(50);
        // One member, or two, followed by zero padding of various lengths (a 64 KiB block
        // crosses the BufReader's buffer).
        for members in [gzip(&bytes), [gzip(head), gzip(tail)].concat()] {
            for pad in [1usize, 512, 65_536 + 3] {
                let mut packed = members.clone();
                packed.resize(packed.len() + pad, 0);
                let (packets, end) = read_bytes(&packed).unwrap();
                end.unwrap();
                assert_eq!(packets, expected, "padding {pad}");
            }
        }
        // Zeros, then anything else: that must be a member, and it is not one.
        let mut packed = gzip(&bytes);
        packed.extend_from_slice(&[0, 0, 0, 0x42, 0x42]);
        let (packets, end) = read_bytes(&packed).unwrap();
        assert_eq!(packets, expected);
        assert!(end.is_err(), "garbage after the padding is damage");
        // Zeros between two members: read on (gzip stops at the zeros and drops the second
        // member; reading it loses nothing).
        let mut packed = gzip(head);
        packed.extend_from_slice(&[0; 7]);
        packed.extend_from_slice(&gzip(tail));
        let (packets, end) = read_bytes(&packed).unwrap();
        end.unwrap();
        assert_eq!(packets, expected);
    }

    #[test]
    fn truncated_file_yields_complete_packets_then_truncated() {
        let (bytes, expected) = three_packet_pcap(MAGIC_US, false, 1);
        let third_record = bytes.len() - 16 - 1514;
        // Cut inside the third packet's data, then inside its header.
        for cut in [bytes.len() - 10, third_record + 7] {
            let file = TempFile::new("cut.pcap", &bytes[..cut]);
            let (packets, end) = read_file(&file.0);
            assert_eq!(packets, expected[..2]);
            match end {
                Err(CaptureError::Truncated { path, offset }) => {
                    assert_eq!(path, file.0);
                    assert_eq!(offset, third_record as u64);
                }
                other => panic!("expected Truncated, got {other:?}"),
            }
        }
        // The same through gzip and zstd: cut the compressed stream short.
        for packed in [gzip(&bytes), zstd(&bytes)] {
            let file = TempFile::new("cut.pcap.gz", &packed[..packed.len() - 20]);
            let (packets, end) = match ReplayReader::open(&file.0) {
                Ok(mut reader) => read_all(&mut reader),
                // A one-block zstd frame cut short gives no bytes at all.
                Err(err) => (Vec::new(), Err(err)),
            };
            assert!(packets.len() <= 2);
            assert_eq!(packets, expected[..packets.len()]);
            assert!(
                matches!(&end, Err(CaptureError::Truncated { path, .. }) if *path == file.0),
                "{end:?}"
            );
        }
    }

    #[test]
    fn file_header_cut_short_is_truncated() {
        let (bytes, _) = three_packet_pcap(MAGIC_US, false, 1);
        for cut in [4, 10, 23] {
            let err = read_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, CaptureError::Truncated { offset: 0, .. }),
                "{cut}: {err:?}"
            );
        }
        // Only the header: a valid, empty capture.
        let (packets, end) = read_bytes(&bytes[..24]).unwrap();
        assert!(packets.is_empty());
        end.unwrap();
    }

    #[test]
    fn unknown_magic_is_unknown_format() {
        let file = TempFile::new("text.pcap", b"hello, world\n");
        match ReplayReader::open(&file.0) {
            Err(CaptureError::UnknownFormat { path, magic }) => {
                assert_eq!(path, file.0);
                assert_eq!(&magic, b"hell");
            }
            other => panic!("expected UnknownFormat, got {other:?}"),
        }
        // Empty (said so, with no made-up first bytes), compressions we do not read (named),
        // and a compressed file whose content is not a capture.
        assert!(matches!(read_bytes(b""), Err(CaptureError::Empty { .. })));
        assert!(matches!(
            read_bytes(b"\xfd7zXZ\0\0"),
            Err(CaptureError::UnsupportedCompression { format: "xz", .. })
        ));
        assert!(matches!(
            read_bytes(b"BZh91AY&SY"),
            Err(CaptureError::UnsupportedCompression {
                format: "bzip2",
                ..
            })
        ));
        assert!(matches!(
            read_bytes(&gzip(b"GIF89a not a capture")),
            Err(CaptureError::UnknownFormat {
                magic: [b'G', b'I', b'F', b'8'],
                ..
            })
        ));
        // Big-endian modified format, which pcap-parser cannot read.
        assert!(matches!(
            read_bytes(&[0xa1, 0xb2, 0xcd, 0x34, 0, 2, 0, 4]),
            Err(CaptureError::UnknownFormat { .. })
        ));
    }

    #[test]
    fn missing_file_is_io_error() {
        let path = std::env::temp_dir().join("mirrorwatch-replay-does-not-exist.pcap");
        assert!(matches!(
            ReplayReader::open(&path),
            Err(CaptureError::Io { path: p, .. }) if p == path
        ));
    }

    #[test]
    fn absurd_caplen_is_corrupt_without_allocation() {
        let (mut bytes, expected) = three_packet_pcap(MAGIC_US, false, 1);
        let at = bytes.len();
        let mut w = PcapWriter {
            bytes: Vec::new(),
            be: false,
        };
        w.u32(1);
        w.u32(2);
        w.u32(0x7fff_ffff);
        w.u32(0x7fff_ffff);
        bytes.extend_from_slice(&w.bytes);
        bytes.extend_from_slice(&[0u8; 100]);
        let mut reader = open_bytes(&bytes, INITIAL_BUFFER_BYTES).unwrap();
        let (packets, end) = read_all(&mut reader);
        assert_eq!(packets, expected);
        match end {
            Err(CaptureError::Corrupt { path, offset, what }) => {
                assert_eq!(path, PathBuf::from("mem.pcap"));
                assert_eq!(offset, at as u64);
                assert!(what.contains("2147483647"), "{what}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert_eq!(reader.capacity(), INITIAL_BUFFER_BYTES);

        // With a huge snaplen the libpcap rule lets it through; the hard cap still stops it.
        bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut reader = open_bytes(&bytes, INITIAL_BUFFER_BYTES).unwrap();
        let (packets, end) = read_all(&mut reader);
        assert_eq!(packets.len(), 3);
        assert!(matches!(end, Err(CaptureError::Corrupt { .. })), "{end:?}");
        assert_eq!(reader.capacity(), INITIAL_BUFFER_BYTES);
    }

    #[test]
    fn large_record_grows_the_buffer_up_to_the_cap() {
        let big = frame(3 << 20, 7);
        let mut w = PcapWriter::new(MAGIC_US, false, 8 << 20, 1);
        w.record(1, 0, &frame(60, 1), 60)
            .record(2, 0, &big, big.len() as u32)
            .record(3, 0, &frame(60, 2), 60);
        let mut reader = open_bytes(&w.bytes, INITIAL_BUFFER_BYTES).unwrap();
        let (packets, end) = read_all(&mut reader);
        end.unwrap();
        assert_eq!(packets.len(), 3);
        assert_eq!(packets[1].data, big);
        assert!(reader.capacity() > big.len() && reader.capacity() <= MAX_BUFFER_BYTES);
    }

    // ---- pcapng writer ------------------------------------------------------------------

    struct NgWriter {
        bytes: Vec<u8>,
        be: bool,
    }

    impl NgWriter {
        fn u16(v: u16, be: bool) -> [u8; 2] {
            if be { v.to_be_bytes() } else { v.to_le_bytes() }
        }
        fn u32(v: u32, be: bool) -> [u8; 4] {
            if be { v.to_be_bytes() } else { v.to_le_bytes() }
        }
        /// Appends a block: type, total length, body (padded to 4), total length.
        fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
            let be = self.be;
            let mut body = body.to_vec();
            while body.len() % 4 != 0 {
                body.push(0);
            }
            let len = (body.len() + 12) as u32;
            self.bytes.extend_from_slice(&Self::u32(block_type, be));
            self.bytes.extend_from_slice(&Self::u32(len, be));
            self.bytes.extend_from_slice(&body);
            self.bytes.extend_from_slice(&Self::u32(len, be));
            self
        }
        fn option(out: &mut Vec<u8>, code: u16, value: &[u8], be: bool) {
            out.extend_from_slice(&Self::u16(code, be));
            out.extend_from_slice(&Self::u16(value.len() as u16, be));
            out.extend_from_slice(value);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        }
        /// Section header: byte-order magic, version 1.0, section length unknown.
        fn shb(&mut self, be: bool) -> &mut Self {
            self.be = be;
            let mut body = Vec::new();
            body.extend_from_slice(&Self::u32(0x1a2b_3c4d, be));
            body.extend_from_slice(&Self::u16(1, be));
            body.extend_from_slice(&Self::u16(0, be));
            body.extend_from_slice(&[0xff; 8]);
            self.block(0x0a0d_0d0a, &body)
        }
        /// Interface: link type, reserved, snaplen, then if_tsresol / if_tsoffset options.
        fn idb(
            &mut self,
            link: u16,
            snaplen: u32,
            tsresol: Option<u8>,
            tsoffset: Option<i64>,
        ) -> &mut Self {
            let be = self.be;
            let mut body = Vec::new();
            body.extend_from_slice(&Self::u16(link, be));
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(&Self::u32(snaplen, be));
            if let Some(r) = tsresol {
                Self::option(&mut body, 9, &[r], be);
            }
            if let Some(o) = tsoffset {
                let v = if be { o.to_be_bytes() } else { o.to_le_bytes() };
                Self::option(&mut body, 14, &v, be);
            }
            if tsresol.is_some() || tsoffset.is_some() {
                Self::option(&mut body, 0, &[], be);
            }
            self.block(1, &body)
        }
        /// Enhanced packet: interface, timestamp high/low, caplen, orig_len, data, options.
        fn epb(
            &mut self,
            if_id: u32,
            ticks: u64,
            data: &[u8],
            orig_len: u32,
            flags: bool,
        ) -> &mut Self {
            let be = self.be;
            let mut body = Vec::new();
            body.extend_from_slice(&Self::u32(if_id, be));
            body.extend_from_slice(&Self::u32((ticks >> 32) as u32, be));
            body.extend_from_slice(&Self::u32(ticks as u32, be));
            body.extend_from_slice(&Self::u32(data.len() as u32, be));
            body.extend_from_slice(&Self::u32(orig_len, be));
            body.extend_from_slice(data);
            while body.len() % 4 != 0 {
                body.push(0);
            }
            if flags {
                Self::option(&mut body, 2, &Self::u32(1, be), be); // epb_flags: inbound
                Self::option(&mut body, 1, b"a comment", be); // opt_comment
                Self::option(&mut body, 0, &[], be);
            }
            self.block(6, &body)
        }
        /// Obsolete packet block: 16-bit interface, drops, timestamp, caplen, len, data.
        fn pb(&mut self, if_id: u16, ticks: u64, data: &[u8], orig_len: u32) -> &mut Self {
            let be = self.be;
            let mut body = Vec::new();
            body.extend_from_slice(&Self::u16(if_id, be));
            body.extend_from_slice(&Self::u16(0, be));
            body.extend_from_slice(&Self::u32((ticks >> 32) as u32, be));
            body.extend_from_slice(&Self::u32(ticks as u32, be));
            body.extend_from_slice(&Self::u32(data.len() as u32, be));
            body.extend_from_slice(&Self::u32(orig_len, be));
            body.extend_from_slice(data);
            self.block(2, &body)
        }
        /// Simple packet: original length, then the data.
        fn spb(&mut self, data: &[u8], orig_len: u32) -> &mut Self {
            let mut body = Self::u32(orig_len, self.be).to_vec();
            body.extend_from_slice(data);
            self.block(3, &body)
        }
    }

    /// Two sections: the first little-endian with Ethernet (µs) and SLL2 (ns, offset) interfaces,
    /// the second big-endian with one NULL interface in binary resolution (2^-10 s).
    fn mixed_pcapng() -> (Vec<u8>, Vec<Owned>) {
        let mut w = NgWriter {
            bytes: Vec::new(),
            be: false,
        };
        let (a, b, c, d, e, f) = (
            frame(60, 1),
            frame(80, 2),
            frame(61, 3),
            frame(70, 4),
            frame(90, 5),
            frame(40, 6),
        );
        w.shb(false)
            .idb(1, 0, None, None)
            .idb(276, 64, Some(9), Some(100))
            .epb(0, 1_700_000_000_123_456, &a, 60, false)
            .epb(1, 1_600_000_000_987_654_321, &b, 200, true)
            .spb(&c, 61)
            .block(4, &[0, 0, 0, 0]) // name resolution block, end of records only
            .block(0x0bad_f00d, &[1, 2, 3, 4, 5]) // unknown block type
            .pb(0, 1_700_000_001_000_000, &d, 70)
            .shb(true)
            .idb(0, 40, Some(0x8a), Some(-10))
            .epb(0, (1_000u64 << 10) + 512, &e, 90, true)
            .spb(&f, 400);
        let expected = vec![
            Owned {
                ts: 1_700_000_000_123_456_000,
                link: 1,
                data: a,
                orig_len: 60,
            },
            Owned {
                ts: (1_600_000_000 + 100) * 1_000_000_000 + 987_654_321,
                link: 276,
                data: b,
                orig_len: 200,
            },
            // SPB: the previous packet's time, interface 0.
            Owned {
                ts: (1_600_000_000 + 100) * 1_000_000_000 + 987_654_321,
                link: 1,
                data: c,
                orig_len: 61,
            },
            Owned {
                ts: 1_700_000_001_000_000_000,
                link: 1,
                data: d,
                orig_len: 70,
            },
            // 1000.5 s in units of 2^-10 s, minus the 10 s offset. An EPB is not cut to the
            // snaplen (40): its captured length is explicit.
            Owned {
                ts: 990_500_000_000,
                link: 0,
                data: e,
                orig_len: 90,
            },
            // An SPB is: 400 bytes on the wire, 40 captured.
            Owned {
                ts: 990_500_000_000,
                link: 0,
                data: f,
                orig_len: 400,
            },
        ];
        (w.bytes, expected)
    }

    #[test]
    fn reads_pcapng_mixed_interfaces_sections_and_block_kinds() {
        let (bytes, expected) = mixed_pcapng();
        for packed in [bytes.clone(), gzip(&bytes), zstd(&bytes)] {
            let (packets, end) = read_bytes(&packed).unwrap();
            end.unwrap();
            assert_eq!(packets, expected);
        }
    }

    /// Buffers far smaller than the blocks: many refills and growths, same packets.
    #[test]
    fn small_buffers_give_the_same_packets() {
        let (ng, ng_expected) = mixed_pcapng();
        let (legacy, legacy_expected) = three_packet_pcap(MAGIC_NS, true, 1);
        for capacity in [48, 64, 100, 128, 1000] {
            for (bytes, expected) in [(&ng, &ng_expected), (&legacy, &legacy_expected)] {
                let mut reader = open_bytes(bytes, capacity).unwrap();
                let (packets, end) = read_all(&mut reader);
                end.unwrap();
                assert_eq!(&packets, expected, "capacity {capacity}");
                assert!(reader.capacity() <= 4096, "grew to {}", reader.capacity());
            }
        }
    }

    #[test]
    fn pcapng_spb_too_small_for_its_packet_is_corrupt() {
        let mut w = NgWriter {
            bytes: Vec::new(),
            be: false,
        };
        w.shb(false).idb(1, 0, None, None).spb(&frame(40, 1), 400);
        let (packets, end) = read_bytes(&w.bytes).unwrap();
        assert!(packets.is_empty());
        assert!(
            matches!(&end, Err(CaptureError::Corrupt { what, .. }) if what.contains("room for 40")),
            "{end:?}"
        );
    }

    #[test]
    fn pcapng_spb_is_cut_to_snaplen() {
        let mut w = NgWriter {
            bytes: Vec::new(),
            be: false,
        };
        w.shb(false).idb(1, 32, None, None).spb(&frame(64, 1), 64);
        let (packets, end) = read_bytes(&w.bytes).unwrap();
        end.unwrap();
        assert_eq!(packets[0].data, frame(32, 1));
        assert_eq!(packets[0].orig_len, 64);
    }

    #[test]
    fn pcapng_errors_name_offset_and_cause() {
        // A packet on an interface the (new) section does not declare.
        let mut w = NgWriter {
            bytes: Vec::new(),
            be: false,
        };
        w.shb(false).idb(1, 0, None, None).idb(1, 0, None, None);
        w.epb(1, 0, &frame(60, 1), 60, false);
        let second_section = w.bytes.len();
        w.shb(false)
            .idb(1, 0, None, None)
            .epb(1, 0, &frame(60, 1), 60, false);
        let (packets, end) = read_bytes(&w.bytes).unwrap();
        assert_eq!(packets.len(), 1);
        match end {
            Err(CaptureError::Corrupt { offset, what, .. }) => {
                assert!(offset > second_section as u64);
                assert!(what.contains("interface 1"), "{what}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }

        // Trailing length that disagrees with the leading one.
        let mut w = NgWriter {
            bytes: Vec::new(),
            be: false,
        };
        w.shb(false)
            .idb(1, 0, None, None)
            .epb(0, 0, &frame(60, 1), 60, false);
        let last = w.bytes.len() - 4;
        w.bytes[last] ^= 0x40;
        let (packets, end) = read_bytes(&w.bytes).unwrap();
        assert!(packets.is_empty());
        assert!(matches!(end, Err(CaptureError::Corrupt { .. })), "{end:?}");

        // A block claiming more than the cap.
        let mut w = NgWriter {
            bytes: Vec::new(),
            be: false,
        };
        w.shb(false).idb(1, 0, None, None);
        w.bytes.extend_from_slice(&6u32.to_le_bytes());
        w.bytes.extend_from_slice(&0x4000_0000u32.to_le_bytes());
        w.bytes.extend_from_slice(&[0; 64]);
        let (_, end) = read_bytes(&w.bytes).unwrap();
        assert!(
            matches!(&end, Err(CaptureError::Corrupt { what, .. }) if what.contains("limit")),
            "{end:?}"
        );

        // An invalid if_tsresol.
        let mut w = NgWriter {
            bytes: Vec::new(),
            be: false,
        };
        w.shb(false).idb(1, 0, Some(20), None);
        let (_, end) = read_bytes(&w.bytes).unwrap();
        assert!(
            matches!(&end, Err(CaptureError::Corrupt { what, .. }) if what.contains("if_tsresol")),
            "{end:?}"
        );
    }

    #[test]
    fn pcapng_cut_short_is_truncated_after_complete_packets() {
        let (bytes, expected) = mixed_pcapng();
        let cut = bytes.len() - 8;
        let (packets, end) = read_bytes(&bytes[..cut]).unwrap();
        assert_eq!(packets, expected[..5]);
        assert!(
            matches!(end, Err(CaptureError::Truncated { .. })),
            "{end:?}"
        );
    }

    /// Every prefix and many one-byte corruptions of small captures terminate without a panic.
    #[test]
    fn hostile_prefixes_and_byte_flips_terminate() {
        let (ng, _) = mixed_pcapng();
        let (legacy, _) = three_packet_pcap(MAGIC_US, true, 1);
        for bytes in [ng, legacy] {
            for cut in 0..bytes.len() {
                let _ = read_bytes_with(&bytes[..cut], 64);
            }
            for at in 0..bytes.len() {
                for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut damaged = bytes.clone();
                    damaged[at] = value;
                    let _ = read_bytes_with(&damaged, 64 << (at % 4));
                }
            }
        }
    }

    #[test]
    fn corrupt_gzip_is_corrupt() {
        let (bytes, _) = three_packet_pcap(MAGIC_US, false, 1);
        let mut packed = gzip(&bytes);
        // Damage the CRC in the trailer.
        let crc = packed.len() - 8;
        packed[crc] ^= 0xff;
        let (packets, end) = read_bytes(&packed).unwrap();
        assert!(packets.len() <= 3);
        assert!(
            matches!(&end, Err(CaptureError::Corrupt { what, .. }) if what.starts_with("gzip")),
            "{end:?}"
        );
    }

    #[test]
    fn expands_directories_recursively_sorted_by_path() {
        let dir =
            std::env::temp_dir().join(format!("mirrorwatch-replay-dir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        for name in ["b.pcapng", "a.PCAP", "e.cap", "notes.txt", "sub/x.pcap"] {
            fs::write(dir.join(name), b"").unwrap();
        }
        // A compressed file is judged by what it holds: a compressed capture is read, a
        // compressed log (CloudTrail delivers `*.json.gz`) is not.
        let (pcap, _) = three_packet_pcap(MAGIC_US, false, 1);
        fs::write(dir.join("c.pcap.gz"), gzip(&pcap)).unwrap();
        fs::write(dir.join("d.zst"), zstd(&pcap)).unwrap();
        fs::write(dir.join("trail.json.gz"), gzip(br#"{"Records":[]}"#)).unwrap();
        let explicit = dir.join("notes.txt");
        let files = expand_inputs(&[explicit.clone(), dir.clone()]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "notes.txt",
                "a.PCAP",
                "b.pcapng",
                "c.pcap.gz",
                "d.zst",
                "e.cap",
                "sub/x.pcap"
            ]
        );
        assert!(matches!(
            expand_inputs(&[dir.join("missing")]),
            Err(CaptureError::Io { path, .. }) if path == dir.join("missing")
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn units_per_sec_covers_both_bases() {
        assert_eq!(units_per_sec(6), Some(1_000_000));
        assert_eq!(units_per_sec(9), Some(1_000_000_000));
        assert_eq!(units_per_sec(19), Some(10_000_000_000_000_000_000));
        assert_eq!(units_per_sec(20), None);
        assert_eq!(units_per_sec(0x80 | 10), Some(1024));
        assert_eq!(units_per_sec(0x80 | 63), Some(1 << 63));
        assert_eq!(units_per_sec(0x80 | 64), None);
    }

    // ---- real captures ------------------------------------------------------------------

    const PCAPS: &str = "/work/shared/pcaps";

    /// The link type SOURCES.tsv names: tcpdump's short names, or capinfos' long ones (the
    /// rows of `wild/`).
    fn link_for(name: &str) -> u32 {
        match name {
            "Ethernet" => return 1,
            "Linux cooked-mode capture v1" => return 113,
            "NULL/Loopback" => return 0,
            "Per-Packet Information header" => return 192,
            "Raw IP" => return 101,
            "Raw IPv4" => return 228,
            _ => {}
        }
        match name.split(' ').next().unwrap_or(name) {
            "ether" => 1,
            "null" => 0,
            "linux-sll" => 113,
            "linux-sll2" => 276,
            "ieee-802-11-radiotap" => 127,
            "rawip" => 101,
            other => panic!("unknown link type name {other:?} in SOURCES.tsv"),
        }
    }

    /// Files where SOURCES.tsv (from capinfos, i.e. Wireshark) and libpcap disagree; we follow
    /// libpcap. Wireshark guesses among pcap variants (ss990417, Nokia, ...) and so finds a
    /// second record in this fuzzed file; libpcap (`tcpdump -r`) reads 1 packet, then fails on
    /// caplen 1409179648, exactly as we do.
    const LIBPCAP_COUNTS: &[(&str, usize)] = &[("malformed/sv__bug-6875-01_fuzz.pcap", 1)];

    /// One line of SOURCES.tsv.
    struct Source {
        file: String,
        count: usize,
        /// "N (read until error)": N packets, then an error.
        until_error: bool,
        link: String,
        what: String,
    }

    fn sources() -> Option<Vec<Source>> {
        let text = fs::read_to_string(Path::new(PCAPS).join("SOURCES.tsv")).ok()?;
        let rows = text
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let cols: Vec<&str> = line.split('\t').collect();
                let packets = cols[6];
                Source {
                    file: cols[0].to_owned(),
                    count: packets.split(' ').next().unwrap().parse().unwrap(),
                    until_error: packets.contains("read until error"),
                    link: cols[7].to_owned(),
                    what: cols[8].to_owned(),
                }
            })
            .collect();
        Some(rows)
    }

    /// Every file in SOURCES.tsv yields its listed packet count and link type; files listed
    /// "read until error" and files "cut short in the middle of a packet" end with an error.
    #[test]
    fn real_captures_match_sources_tsv() {
        let Some(rows) = sources() else {
            eprintln!("SKIPPED: {PCAPS}/SOURCES.tsv not found; real-capture test not run");
            return;
        };
        let mut checked = 0;
        for row in &rows {
            let (file, link, until_error) = (row.file.as_str(), row.link.as_str(), row.until_error);
            let count = LIBPCAP_COUNTS
                .iter()
                .find(|(name, _)| *name == file)
                .map_or(row.count, |&(_, n)| n);
            let cut_short = row.what.contains("cut short in the middle of a packet");
            let path = Path::new(PCAPS).join(file);
            let (got, end) = read_file(&path);
            assert_eq!(got.len(), count, "{file}: packet count ({end:?})");
            assert!(
                got.iter().all(|p| p.link == link_for(link)),
                "{file}: link type {:?}",
                got.first().map(|p| p.link)
            );
            match end {
                Ok(()) => assert!(!until_error && !cut_short, "{file}: expected an error"),
                Err(CaptureError::Truncated { ref path, .. }) if cut_short => {
                    assert_eq!(path, &Path::new(PCAPS).join(file));
                }
                Err(CaptureError::Corrupt { .. } | CaptureError::Truncated { .. })
                    if until_error => {}
                Err(err) => panic!("{file}: unexpected {err}"),
            }
            checked += 1;
        }
        assert!(checked > 90, "only {checked} files listed");
    }

    /// libpcap as a second, independent oracle: for every real capture, the same packets
    /// (time to the nanosecond, lengths, bytes) and the same outcome (clean end or error).
    #[test]
    fn real_captures_match_libpcap_packet_by_packet() {
        let Some(rows) = sources() else {
            eprintln!("SKIPPED: {PCAPS}/SOURCES.tsv not found; libpcap comparison not run");
            return;
        };
        for Source { file, .. } in &rows {
            let path = Path::new(PCAPS).join(file);
            let (ours, end) = read_file(&path);
            let mut cap =
                pcap::Capture::from_file_with_precision(&path, pcap::Precision::Nano).unwrap();
            // libpcap reports DLT_* values; they equal LINKTYPE_* except raw IP (DLT_RAW is
            // 12, or 14 on OpenBSD; LINKTYPE_RAW is 101).
            let link = match cap.get_datalink().0 {
                12 | 14 => LinkType::RAW.0,
                dlt => dlt as u32,
            };
            let mut theirs = Vec::new();
            let libpcap_error = loop {
                match cap.next_packet() {
                    Ok(p) => theirs.push(Owned {
                        ts: p.header.ts.tv_sec as u64 * 1_000_000_000 + p.header.ts.tv_usec as u64,
                        link,
                        data: p.data.to_vec(),
                        orig_len: p.header.len,
                    }),
                    Err(pcap::Error::NoMorePackets) => break None,
                    Err(err) => break Some(err),
                }
            };
            assert_eq!(
                ours.len(),
                theirs.len(),
                "{file}: {end:?} / {libpcap_error:?}"
            );
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                // libpcap cuts a record longer than the file's snaplen to the snaplen (it sizes
                // its buffer by it); like Wireshark, we keep every captured byte.
                let cut_by_libpcap = b.data.len() < a.data.len() && a.data.starts_with(&b.data);
                if cut_by_libpcap {
                    assert_eq!(
                        (a.ts, a.link, a.orig_len),
                        (b.ts, b.link, b.orig_len),
                        "{file}"
                    );
                } else {
                    assert_eq!(a, b, "{file}: packet {i}");
                }
            }
            assert_eq!(
                end.is_err(),
                libpcap_error.is_some(),
                "{file}: {end:?} / {libpcap_error:?}"
            );
        }
    }

    /// Packets of a pcapng with interfaces of two link types, built by hand from real files
    /// (Ethernet and Linux SLL2) in this process: each record's bytes match its source.
    #[test]
    fn real_packets_in_a_two_interface_pcapng() {
        let eth = Path::new(PCAPS).join("beacons/ndpi__ubntac2.pcap");
        let sll2 = Path::new(PCAPS).join("mixed/sv__decode-sll2-02_input.pcap");
        if !eth.exists() || !sll2.exists() {
            eprintln!("SKIPPED: {PCAPS} not found; two-interface pcapng test not run");
            return;
        }
        let (a, end) = read_file(&eth);
        end.unwrap();
        let (b, end) = read_file(&sll2);
        end.unwrap();
        let mut w = NgWriter {
            bytes: Vec::new(),
            be: false,
        };
        w.shb(false)
            .idb(1, 0, None, None)
            .idb(276, 0, Some(9), None);
        let mut expected = Vec::new();
        for (i, p) in a.iter().chain(b.iter().take(20)).enumerate() {
            let on_sll2 = p.link == 276;
            let ticks = if on_sll2 { p.ts } else { p.ts / 1_000 };
            w.epb(u32::from(on_sll2), ticks, &p.data, p.orig_len, i % 2 == 0);
            expected.push(Owned {
                ts: p.ts,
                link: p.link,
                data: p.data.clone(),
                orig_len: p.orig_len,
            });
        }
        let file = TempFile::new("two-if.pcapng.zst", &zstd(&w.bytes));
        let (got, end) = read_file(&file.0);
        end.unwrap();
        assert_eq!(got, expected);
    }

    // ---- the memory map (issue 14) ---------------------------------------------------------

    /// Every prefix and many one-byte changes of each format, read from memory by the buffered
    /// path and from a file through the map: the same packets and the same error, at the same
    /// offset.
    #[test]
    fn map_and_read_agree_on_every_prefix_and_byte_flip() {
        let (ng, _) = mixed_pcapng();
        let inputs = [
            ng,
            three_packet_pcap(MAGIC_US, false, 1).0,
            three_packet_pcap(MAGIC_NS, true, 1).0,
            three_packet_pcap(MAGIC_US, true, 101).0,
        ];
        let mut errors = 0;
        // Every byte of the file header and the first record, a stride through the rest (each
        // case writes a file and fills a 1 MiB buffer: every byte of every input is too slow).
        let chosen = |at: &usize| *at < 48 || at % 29 == 0;
        for bytes in &inputs {
            for cut in (0..=bytes.len()).filter(chosen) {
                errors += usize::from(!matches!(read_bytes(&bytes[..cut]), Ok((_, Ok(())))));
            }
            for at in (0..bytes.len()).filter(chosen) {
                for value in [0x00, 0xff] {
                    let mut damaged = bytes.clone();
                    damaged[at] = value;
                    // `read_bytes` compares the two paths.
                    let _ = read_bytes(&damaged);
                }
            }
        }
        assert!(
            errors > 200,
            "the cuts must reach the error paths ({errors})"
        );
    }

    /// Every capture of the shared corpus (malformed and cut ones included) read by both
    /// paths: the same packets, byte for byte, and the same end.
    #[test]
    fn map_and_read_agree_on_every_shared_capture() {
        if !Path::new(PCAPS).is_dir() {
            eprintln!("SKIPPED: {PCAPS} not found; the shared captures were not compared");
            return;
        }
        let files = expand_inputs_all(&[PathBuf::from(PCAPS)]).files;
        let (mut mapped, mut damaged) = (0, 0);
        for path in &files {
            let buffered = ReplayReader::open_with(path, ReadMode::Buffered).map(|mut r| {
                assert!(!r.is_mapped());
                read_all(&mut r)
            });
            let auto = ReplayReader::open(path).map(|mut r| {
                mapped += usize::from(r.is_mapped());
                read_all(&mut r)
            });
            damaged += usize::from(matches!(&buffered, Ok((_, Err(_)))));
            assert_same_outcome(&buffered, &auto);
        }
        assert!(
            mapped > 50,
            "only {mapped} of {} files were mapped",
            files.len()
        );
        assert!(
            damaged >= 3,
            "the malformed captures must be among them ({damaged})"
        );
    }

    /// A legacy pcap of `n` packets of 1,000 bytes each, and the packets.
    fn many_packet_pcap(n: u32) -> (Vec<u8>, Vec<Owned>) {
        let mut w = PcapWriter::new(MAGIC_US, false, 65_535, 1);
        let mut expected = Vec::new();
        for i in 0..n {
            let data = frame(1_000, (i % 251) as u8);
            w.record(1_700_000_000 + i, 0, &data, 1_000);
            expected.push(Owned {
                ts: u64::from(1_700_000_000 + i) * 1_000_000_000,
                link: 1,
                data,
                orig_len: 1_000,
            });
        }
        (w.bytes, expected)
    }

    /// A file cut by another process while it is mapped: the packets before the cut come out
    /// exact, then an IO error naming the file and the offset; no SIGBUS. (A cut inside a page
    /// leaves the rest of that page reading as zeros: records there may come out zeroed before
    /// the error; the cuts here are on page boundaries, where the next access faults.)
    #[test]
    fn file_cut_while_mapped_is_an_error_not_sigbus() {
        let (bytes, expected) = many_packet_pcap(2_000);
        for cut in [8_192u64, 1 << 20] {
            let file = TempFile::new("cut.pcap", &bytes);
            let mut reader = ReplayReader::open(&file.0).unwrap();
            assert!(reader.is_mapped());
            let mut got = Vec::new();
            for _ in 0..3 {
                let rec = reader.next_packet().unwrap().unwrap();
                got.push(rec.data.to_vec());
            }
            file.cut_to(cut);
            let err = loop {
                match reader.next_packet() {
                    Ok(Some(rec)) => got.push(rec.data.to_vec()),
                    Ok(None) => panic!("a cut file must not end cleanly"),
                    Err(err) => break err,
                }
            };
            let text = err.to_string();
            assert!(matches!(err, CaptureError::Io { .. }), "{text}");
            assert!(text.contains(&file.0.display().to_string()), "{text}");
            assert!(text.contains("got shorter"), "{text}");
            // Every record wholly inside the file as cut came out, each exact.
            let whole = (cut as usize - 24) / 1_016;
            assert!(
                got.len() >= whole && got.len() <= whole + 1,
                "{} of {whole}",
                got.len()
            );
            for (i, data) in got.iter().enumerate().take(whole) {
                assert_eq!(data, &expected[i].data, "packet {i}");
            }
            assert!(matches!(reader.next_packet(), Ok(None)));
        }
    }

    /// The same cut on a file large enough for a keeper thread, which fills page tables past
    /// the cut while the reader reads: exact packets, then the error, no SIGBUS.
    #[test]
    fn file_with_a_keeper_cut_while_mapped_is_an_error_not_sigbus() {
        let (bytes, expected) = many_packet_pcap(36_000);
        let file = TempFile::new("cut-large.pcap", &bytes);
        let mut reader = ReplayReader::open(&file.0).unwrap();
        assert_eq!(reader.map_residency().map(|r| r.0), Some(true));
        let cut = 20u64 << 20;
        let whole = (cut as usize - 24) / 1_016;
        let mut n = 0;
        let err = loop {
            if n == 1_000 {
                file.cut_to(cut);
            }
            match reader.next_packet() {
                Ok(Some(rec)) => {
                    if n < whole {
                        assert_eq!(rec.data, expected[n].data.as_slice(), "packet {n}");
                    }
                    n += 1;
                }
                Ok(None) => panic!("a cut file must not end cleanly"),
                Err(err) => break err,
            }
        };
        assert!(err.to_string().contains("got shorter"), "{err}");
        // The reader stops where it saw the cut: at a fault past it, or earlier, at its next
        // size check (every drop-behind step); every packet it gave was exact (above).
        assert!((1_000..=whole + 1).contains(&n), "{n} of {whole}");
    }

    /// A cut that leaves the reader inside the last page (no fault) is still reported, at the
    /// end of the map, from the file size.
    #[test]
    fn file_cut_inside_the_last_page_is_reported_at_the_end() {
        let (bytes, _) = many_packet_pcap(4);
        let file = TempFile::new("cut-tail.pcap", &bytes);
        let mut reader = ReplayReader::open(&file.0).unwrap();
        assert!(reader.is_mapped());
        assert!(reader.next_packet().unwrap().is_some());
        file.cut_to(2_000);
        let err = loop {
            match reader.next_packet() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a cut file must not end cleanly"),
                Err(err) => break err,
            }
        };
        assert!(err.to_string().contains("got shorter"), "{err}");
    }

    /// A named pipe has no size: it is read through the buffer, with the same packets.
    #[test]
    fn fifo_is_read_not_mapped() {
        let (bytes, expected) = three_packet_pcap(MAGIC_NS, false, 1);
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("capture.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: mkfifo failed; the FIFO read was not tested");
            return;
        }
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::write(fifo, bytes).unwrap())
        };
        let mut reader = ReplayReader::open(&fifo).unwrap();
        assert!(!reader.is_mapped());
        let (packets, end) = read_all(&mut reader);
        end.unwrap();
        assert_eq!(packets, expected);
        writer.join().unwrap();
    }

    /// A file larger than the drop-behind step reads whole through the map, and the progress
    /// count follows the packets.
    #[test]
    fn large_mapped_file_reads_whole_across_drop_behind_steps() {
        let (bytes, expected) = many_packet_pcap(20_000);
        assert!(bytes.len() > 2 * map::DROP_BEHIND_BYTES);
        let file = TempFile::new("large.pcap", &bytes);
        let mut reader = ReplayReader::open(&file.0).unwrap();
        assert!(reader.is_mapped());
        let mut n = 0;
        while let Some(rec) = reader.next_packet().unwrap() {
            assert_eq!(rec.data, expected[n].data.as_slice(), "packet {n}");
            n += 1;
            assert!(reader.file_bytes_read() <= 24 + n as u64 * 1_016);
        }
        assert_eq!(n, expected.len());
        assert_eq!(reader.file_bytes_read(), bytes.len() as u64);
        assert_eq!(
            reader.map_residency().map(|r| r.0),
            Some(false),
            "a keeper for 20 MB"
        );
    }

    /// Opening a small mapped file fills its page tables ahead of the reader, the whole file
    /// here (one byte read per fault-around window maps every page of it), before a packet is
    /// read: the reader then takes no fault of its own.
    #[test]
    fn opening_a_mapped_file_fills_its_page_tables_ahead() {
        let (bytes, expected) = many_packet_pcap(3_000);
        let file = TempFile::new("filled.pcap", &bytes);
        let mut reader = ReplayReader::open(&file.0).unwrap();
        let (keeper, resident) = reader.map_residency().unwrap();
        assert!(!keeper);
        let whole = bytes.len().next_multiple_of(4096);
        // The open parsed the file header only: a fault there maps one window, not 3 MB.
        assert_eq!(resident, whole, "{resident} of {whole} bytes mapped");
        let rec = reader.next_packet().unwrap().unwrap();
        assert_eq!(rec.data, expected[0].data.as_slice());
    }

    /// The page-cache probe maps the whole file and reads the kernel's own count for this map:
    /// every page of it, of which a whole number of 2 MiB entries (none on a file smaller
    /// than one); a buffered file has no map to ask.
    #[test]
    fn page_cache_layout_counts_the_whole_file() {
        for packets in [3_000, 40_000] {
            let (bytes, _) = many_packet_pcap(packets);
            let file = TempFile::new("layout.pcap", &bytes);
            let reader = ReplayReader::open(&file.0).unwrap();
            let layout = reader
                .page_cache_layout()
                .expect("Linux smaps has both fields");
            let whole = bytes.len().next_multiple_of(4096) as u64;
            assert_eq!(layout.mapped_bytes, whole, "{packets} packets");
            assert!(layout.huge_bytes <= whole, "{layout:?}");
            assert_eq!(layout.huge_bytes % (2 << 20), 0, "{layout:?}");
            if bytes.len() < 2 << 20 {
                assert_eq!(layout.huge_bytes, 0);
            }
            let share = layout.huge_share();
            assert!((0.0..=1.0).contains(&share), "{share}");
            let buffered = ReplayReader::open_with(&file.0, ReadMode::Buffered).unwrap();
            assert_eq!(buffered.page_cache_layout(), None);
        }
    }

    /// A file of 100 MB gets a keeper thread for its page tables: it reads whole and exact,
    /// and what the map holds resident in the process stays within the keeper's reach ahead
    /// plus the steps the reader lets it lag, never the file.
    #[test]
    fn very_large_mapped_file_has_a_keeper_and_bounded_residency() {
        let (bytes, expected) = many_packet_pcap(100_000);
        let bound = 7 * map::DROP_BEHIND_BYTES;
        assert!(bytes.len() > bound + 4 * map::DROP_BEHIND_BYTES);
        let file = TempFile::new("very-large.pcap", &bytes);
        let mut reader = ReplayReader::open(&file.0).unwrap();
        let (keeper, _) = reader.map_residency().unwrap();
        assert!(keeper);
        let (mut n, mut peak) = (0, 0);
        while let Some(rec) = reader.next_packet().unwrap() {
            assert_eq!(rec.data, expected[n].data.as_slice(), "packet {n}");
            n += 1;
            if n % 2_000 == 0 {
                let (_, resident) = reader.map_residency().unwrap();
                peak = peak.max(resident);
                assert!(resident <= bound, "{resident} bytes resident at packet {n}");
            }
        }
        assert_eq!(n, expected.len());
        // The measure saw pages (it reads the right map).
        assert!(peak >= map::DROP_BEHIND_BYTES, "peak {peak}");
    }
}
