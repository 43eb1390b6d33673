//! The flow table: a fixed-capacity map from [`FlowKey`] to per-flow state.
//!
//! TODO(helper): implementation in progress. The API below is the contract the sensor codes
//! against; see the helper brief.

use crate::{Direction, FlowKey, Timestamp, time::Duration};

/// Sizing and timeouts of one table (one per worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// Hard cap on live flows; inserting beyond it evicts the least recently seen flow.
    pub capacity: usize,
    /// A flow with no packet for this long (packet time) expires.
    pub idle_timeout: Duration,
    /// A flow older than this is reported and its counters restarted (long-lived flows still
    /// produce records).
    pub active_timeout: Duration,
}

/// Why a flow left the table (or was reported).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpireReason {
    /// No packet for `idle_timeout`.
    Idle,
    /// Reached `active_timeout`; the flow stays in the table with fresh counters.
    Active,
    /// Removed to make room for a new flow while the table was full.
    Evicted,
    /// End of input or shutdown.
    Flushed,
}

/// Counters every flow keeps, whatever the detectors add.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    /// Time of the first packet (since the last active-timeout report).
    pub first_seen: Timestamp,
    /// Time of the latest packet.
    pub last_seen: Timestamp,
    /// Packets per direction, indexed by [`Direction::index`].
    pub packets: [u64; 2],
    /// Bytes (IP length) per direction.
    pub bytes: [u64; 2],
    /// Union of TCP flags seen per direction.
    pub tcp_flags: [u8; 2],
}

impl FlowCounters {
    /// Counts one packet.
    #[inline]
    pub fn record(&mut self, dir: Direction, now: Timestamp, bytes: u32, tcp_flags: u8) {
        let i = dir.index();
        self.packets[i] = self.packets[i].saturating_add(1);
        self.bytes[i] = self.bytes[i].saturating_add(u64::from(bytes));
        self.tcp_flags[i] |= tcp_flags;
        if now > self.last_seen {
            self.last_seen = now;
        }
    }
}

/// One live flow.
#[derive(Clone, Debug)]
pub struct FlowEntry<E> {
    /// Canonical key.
    pub key: FlowKey,
    /// Direction of the first packet seen (who spoke first, as far as the sensor knows).
    pub first_dir: Direction,
    /// Generic counters.
    pub counters: FlowCounters,
    /// Detector state owned by the caller.
    pub ext: E,
}

/// Counts of what the table did, for the stats record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    /// Flows created.
    pub inserted: u64,
    /// Flows removed after `idle_timeout`.
    pub expired_idle: u64,
    /// Active-timeout reports.
    pub expired_active: u64,
    /// Flows evicted because the table was full.
    pub evicted: u64,
    /// Flows flushed at end of input.
    pub flushed: u64,
    /// Highest number of live flows.
    pub peak_len: u64,
}

/// Fixed-capacity flow table. Not `Sync` by design: each worker owns one.
pub struct FlowTable<E> {
    _marker: std::marker::PhantomData<E>,
}
