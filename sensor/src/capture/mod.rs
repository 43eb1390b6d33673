//! Packet sources: offline capture files (`replay`) and live interfaces (`live`, libpcap).
//!
//! Every source yields [`CaptureRecord`]s: packet time, link type and the captured bytes.
//! This is the IO shell; nothing below it reads files or the clock.

pub mod fanout;
pub mod live;
pub mod replay;

use std::path::PathBuf;

use flowtable::Timestamp;
use thiserror::Error;

use crate::decode::link::LinkType;

/// One captured packet, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct CaptureRecord<'a> {
    /// Capture timestamp (packet time).
    pub ts: Timestamp,
    /// Link type of the interface the packet was captured on.
    pub link: LinkType,
    /// Captured bytes (`caplen` of them).
    pub data: &'a [u8],
    /// Length of the packet on the wire (`>= data.len()` when the capture cut it).
    pub orig_len: u32,
}

/// Errors from opening or reading a capture. Each names the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file or directory could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a capture format we read.
    #[error("{path}: not a pcap or pcapng file (first bytes {magic:02x?})")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// The first bytes found.
        magic: [u8; 4],
    },
    /// The file is empty.
    #[error("{path}: empty file (not a capture)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file is compressed in a format we do not read.
    #[error("{path}: {format}-compressed; only gzip and zstd are read (decompress it first)")]
    UnsupportedCompression {
        /// The file.
        path: PathBuf,
        /// The compression, by its magic bytes.
        format: &'static str,
    },
    /// The file is damaged at a byte offset (of the decompressed stream).
    #[error("{path}: damaged capture at byte {offset}: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Offset of the damaged block or record.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The file ends in the middle of a record.
    #[error("{path}: cut short in the middle of a packet at byte {offset}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Offset where the incomplete record starts.
        offset: u64,
    },
}
