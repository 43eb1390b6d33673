//! Writes a timeline as a classic pcap file (link type Ethernet, microsecond timestamps,
//! snaplen 65535): byte for byte what libpcap's `pcap_dump` writes for the same packets.
//!
//! We write the 24-byte file header and the 16-byte record headers ourselves rather than
//! through libpcap's savefile, whose `pcap_dump` reports no write error (`-o /dev/full` used
//! to print "wrote 26 packets"), and whose `fopen` follows a symbolic link planted at the
//! output path. Every write error is returned, naming the file; the output is opened by
//! [`crate::fsio::create_output`].

use std::io::{BufWriter, Write};
use std::path::Path;

use super::GenerateError;
use super::timeline::{BASE_TIME_S, PcapRecord};

/// Writes `records` (already in time order) to `out`, replacing it. Returns the number of
/// packets written.
pub fn write_pcap(out: &Path, records: &[PcapRecord]) -> Result<u64, GenerateError> {
    let write_error = |message: String| GenerateError::Write {
        path: out.to_path_buf(),
        message,
    };
    let io_error = |e: std::io::Error| write_error(e.to_string());
    let file = crate::fsio::create_output(out, false, 0o644).map_err(io_error)?;
    let mut w = BufWriter::with_capacity(1 << 16, file);
    w.write_all(&file_header()).map_err(io_error)?;
    let mut n_packets = 0u64;
    for record in records {
        let caplen = u32::try_from(record.captured.len())
            .map_err(|_| write_error("a packet is longer than 4 GiB".to_owned()))?;
        let len = u32::try_from(record.wire_len)
            .map_err(|_| write_error("a packet is longer than 4 GiB".to_owned()))?;
        let secs = u32::try_from(BASE_TIME_S + record.time_us / 1_000_000)
            .map_err(|_| write_error("a timestamp is past 2106".to_owned()))?;
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&((record.time_us % 1_000_000) as u32).to_le_bytes());
        header[8..12].copy_from_slice(&caplen.to_le_bytes());
        header[12..16].copy_from_slice(&len.to_le_bytes());
        w.write_all(&header)
            .and_then(|()| w.write_all(&record.captured))
            .map_err(io_error)?;
        n_packets += 1;
    }
    let file = w.into_inner().map_err(|e| io_error(e.into_error()))?;
    // A regular file is synced, so a full disk or quota is reported here and not lost in the
    // page cache; devices and pipes (`/dev/stdout`) cannot be, and need not be.
    if file.metadata().is_ok_and(|m| m.is_file()) {
        file.sync_all().map_err(io_error)?;
    }
    Ok(n_packets)
}

/// Magic (microseconds), version 2.4, zone 0, sigfigs 0, snaplen 65535, Ethernet; little
/// endian, as libpcap writes it on the machines we build on.
fn file_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&65_535u32.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h
}
