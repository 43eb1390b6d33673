//! Writes a timeline as a classic pcap file through libpcap (link type Ethernet, microsecond
//! timestamps), so the files are exactly what `tcpdump -w` would produce for the same packets.
//!
//! libpcap's `pcap_dump` reports no errors; the final flush does, and its error is returned.

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
    // The pcap crate converts the path with `to_str().unwrap()`; refuse non-UTF-8 paths here
    // instead of letting it panic.
    if out.to_str().is_none() {
        return Err(write_error("the path is not valid UTF-8".to_owned()));
    }
    let capture = pcap::Capture::dead(pcap::Linktype::ETHERNET)
        .map_err(|err| write_error(format!("opening a libpcap handle: {err}")))?;
    let mut savefile = capture
        .savefile(out)
        .map_err(|err| write_error(err.to_string()))?;
    let mut n_packets = 0u64;
    for record in records {
        let header = pcap::PacketHeader {
            ts: timeval(record.time_us).map_err(write_error)?,
            caplen: u32::try_from(record.captured.len())
                .map_err(|_| write_error("a packet is longer than 4 GiB".to_owned()))?,
            len: u32::try_from(record.wire_len)
                .map_err(|_| write_error("a packet is longer than 4 GiB".to_owned()))?,
        };
        savefile.write(&pcap::Packet::new(&header, &record.captured));
        n_packets += 1;
    }
    savefile
        .flush()
        .map_err(|err| write_error(err.to_string()))?;
    Ok(n_packets)
}

/// The packet time of an offset from [`BASE_TIME_S`].
fn timeval(time_us: u64) -> Result<libc::timeval, String> {
    let seconds = BASE_TIME_S + time_us / 1_000_000;
    let micros = time_us % 1_000_000;
    Ok(libc::timeval {
        tv_sec: libc::time_t::try_from(seconds).map_err(|err| err.to_string())?,
        tv_usec: libc::suseconds_t::try_from(micros).map_err(|err| err.to_string())?,
    })
}
