//! Extraneous packets: packets that no established conversation explains (skeleton; the
//! detector is being written).

use serde::Deserialize;

use crate::alert::{AlertWriteError, EventSink};
use crate::config::Config;
use crate::pipeline::PacketMeta;
use flowtable::Timestamp;

use super::{Flow, FlowEnd, PacketContext};

/// `[extraneous]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtraneousConfig {}

impl ExtraneousConfig {
    /// Range checks the types cannot express: `Err((key, problem))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        Ok(())
    }
}

/// Per-flow TCP state and evidence (fixed size).
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowState {}

impl FlowState {
    /// Zeek-style `conn_state` (TCP flows).
    pub fn conn_state(&self, _flow: &Flow) -> Option<&'static str> {
        None
    }

    /// Zeek-style `history` (TCP flows).
    pub fn history(&self) -> Option<&str> {
        None
    }
}

/// Counters for the `stats` event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraneousStats {
    /// Alerts written.
    pub alerts: u64,
}

impl ExtraneousStats {
    /// Adds another worker's counters.
    pub fn add(&mut self, other: &ExtraneousStats) {
        self.alerts += other.alerts;
    }

    /// Counters by stable name, for `stats.extraneous`.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![("alerts", self.alerts)]
    }
}

/// The extraneous-packet detector of one worker.
pub struct ExtraneousDetector {
    stats: ExtraneousStats,
}

impl ExtraneousDetector {
    /// A detector for one of `workers` workers.
    pub fn new(_config: &Config, _workers: usize) -> ExtraneousDetector {
        ExtraneousDetector {
            stats: ExtraneousStats::default(),
        }
    }

    /// Whether `p` opens a new connection on the key of a closed flow.
    pub fn restarts_flow(&self, _flow: &Flow, _p: &PacketMeta) -> bool {
        false
    }

    /// One packet.
    pub fn on_packet(
        &mut self,
        _flow: &mut Flow,
        _new: bool,
        _p: &PacketMeta,
        _ctx: PacketContext,
        _sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        Ok(())
    }

    /// A flow record ends.
    pub fn on_flow_end(
        &mut self,
        _flow: &Flow,
        _end: FlowEnd,
        _sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        Ok(())
    }

    /// The clock moved.
    pub fn on_tick(
        &mut self,
        _now: Timestamp,
        _sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        Ok(())
    }

    /// End of input.
    pub fn finish(
        &mut self,
        _now: Timestamp,
        _sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        Ok(())
    }

    /// Counters so far.
    pub fn stats(&self) -> ExtraneousStats {
        self.stats.clone()
    }
}
