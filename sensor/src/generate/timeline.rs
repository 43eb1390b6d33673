//! Packet timeline: records from several conversations merged into capture order.
//!
//! Time is an offset in microseconds from a fixed base ([`BASE_TIME_S`]), never the wall
//! clock, so a scenario written twice is byte-identical. Records with equal times keep the
//! order in which they were pushed (the sort is stable).

/// Packet time of offset zero: 2026-01-05T09:00:00Z, in seconds since the Unix epoch.
pub const BASE_TIME_S: u64 = 1_767_603_600;

/// One packet as it goes into the capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapRecord {
    /// Offset from [`BASE_TIME_S`], in microseconds.
    pub time_us: u64,
    /// Captured bytes (`caplen` of them).
    pub captured: Vec<u8>,
    /// Length on the wire; larger than `captured.len()` when the capture cut the packet.
    pub wire_len: usize,
}

/// Records collected from any number of sources, written out in time order.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    records: Vec<PcapRecord>,
}

impl Timeline {
    /// An empty timeline.
    pub fn new() -> Self {
        Timeline::default()
    }

    /// Adds a whole packet.
    pub fn push(&mut self, time_us: u64, packet: Vec<u8>) {
        let wire_len = packet.len();
        self.records.push(PcapRecord {
            time_us,
            captured: packet,
            wire_len,
        });
    }

    /// Adds a packet as a capture with snapshot length `snaplen_bytes` records it: at most
    /// `snaplen_bytes` captured, the full length kept as the wire length.
    pub fn push_snapped(&mut self, time_us: u64, mut packet: Vec<u8>, snaplen_bytes: usize) {
        let wire_len = packet.len();
        packet.truncate(snaplen_bytes);
        self.records.push(PcapRecord {
            time_us,
            captured: packet,
            wire_len,
        });
    }

    /// Number of records so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records sorted by time; equal times keep their push order.
    pub fn into_records(mut self) -> Vec<PcapRecord> {
        self.records.sort_by_key(|record| record.time_us);
        self.records
    }
}
