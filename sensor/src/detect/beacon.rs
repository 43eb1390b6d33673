//! Beacons: fixed-size periodic traffic toward untrusted destinations (skeleton; the
//! detector is being written).

use serde::Deserialize;

use crate::alert::{AlertWriteError, EventSink};
use crate::config::Config;
use crate::pipeline::PacketMeta;
use flowtable::Timestamp;

use super::{Flow, FlowEnd, SharedState};

/// `[beacon]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeaconConfig {}

impl BeaconConfig {
    /// Range checks the types cannot express: `Err((key, problem))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        Ok(())
    }
}

/// Per-flow packet-beacon candidate state (fixed size).
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowState {}

/// Counters for the `stats` event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BeaconStats {
    /// Alerts written.
    pub alerts: u64,
}

impl BeaconStats {
    /// Adds another worker's counters.
    pub fn add(&mut self, other: &BeaconStats) {
        self.alerts += other.alerts;
    }

    /// Counters by stable name, for `stats.beacon`.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![("alerts", self.alerts)]
    }
}

/// The beacon detector of one worker.
pub struct BeaconDetector {
    stats: BeaconStats,
}

impl BeaconDetector {
    /// A detector for one of `workers` workers.
    pub fn new(_config: &Config, _shared: &SharedState, _workers: usize) -> BeaconDetector {
        BeaconDetector {
            stats: BeaconStats::default(),
        }
    }

    /// One packet.
    pub fn on_packet(
        &mut self,
        _flow: &mut Flow,
        _new: bool,
        _p: &PacketMeta,
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
    pub fn stats(&self) -> BeaconStats {
        self.stats.clone()
    }
}
