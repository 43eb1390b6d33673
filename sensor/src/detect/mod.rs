//! Detectors: a closed set, wired in one place.
//!
//! - [`mirror_stream`] runs in the capture thread beside the tunnel table, because a mirror
//!   is judged from every packet of a tunnel and from native packets it may copy, whatever
//!   worker their inner flows go to.
//! - The flow detectors, [`extraneous`] (packets outside established flows) and [`beacon`]
//!   (fixed-size periodic traffic), run in the workers on flow state. Packets are dispatched
//!   by the hash of their IP pair, so a worker sees every connection between two hosts: what
//!   a connection beacon needs.
//!
//! [`FlowDetectors`] is the whole interface a worker sees: `on_packet`, `on_flow_end`,
//! `on_tick(now)` and `finish`. Each detector writes alerts into the caller's sink; nothing
//! here reads a clock or allocates per packet.

pub mod beacon;
pub mod extraneous;
pub mod mirror_stream;

use std::sync::Arc;

use flowtable::{Duration, FlowEntry, Timestamp};
use ipnet::IpNet;

use crate::alert::{AlertWriteError, EventSink};
use crate::names::NameCache;
use crate::packet::{FlowTunnel, PacketMeta};

/// What the flow detectors are built from: their own sections plus `[networks] home` and the
/// flow idle timeout, not the whole configuration (which imports these sections: the
/// detectors stay below it).
#[derive(Clone, Copy, Debug)]
pub struct DetectorConfig<'a> {
    /// `[extraneous]`.
    pub extraneous: &'a extraneous::ExtraneousConfig,
    /// `[beacon]`.
    pub beacon: &'a beacon::BeaconConfig,
    /// `[networks] home`.
    pub home: &'a [IpNet],
    /// `[flows] idle_timeout_s`.
    pub flow_idle_timeout: Duration,
}

/// Per-flow state the sensor keeps beside the generic counters (fixed size: it lives in
/// every slot of the flow table).
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowExt {
    /// Innermost tunnel, if encapsulated (its link is the key's tunnel context), and the
    /// first packet's ICMP type and code, in 8 bytes.
    pub tunnel: TunnelTag,
    /// TCP state and extraneous-packet evidence.
    pub extraneous: extraneous::FlowState,
    /// Packet-beacon candidate state.
    pub beacon: beacon::FlowState,
}

/// The innermost tunnel of a flow, as kept in its slot: the link is not repeated, it is
/// the flow key's tunnel context (8 bytes saved in every slot of the flow table). The two
/// spare bytes hold the ICMP type and code of the flow's first packet, which its Community
/// ID needs (ICMP flows are keyed without them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelTag {
    /// Encapsulation, `None` for a flow not in a tunnel.
    pub kind: Option<crate::decode::TunnelKind>,
    /// Nesting level.
    pub depth: u8,
    /// ICMP type and code of the first packet (ICMP and ICMPv6 flows).
    pub icmp: [u8; 2],
    /// VNI / key / session ID.
    pub id: u32,
}

impl TunnelTag {
    /// The tag of a flow's first packet.
    pub fn new(tunnel: Option<FlowTunnel>, icmp: [u8; 2]) -> TunnelTag {
        TunnelTag {
            kind: tunnel.map(|t| t.kind),
            depth: tunnel.map_or(0, |t| t.depth),
            icmp,
            id: tunnel.map_or(0, |t| t.id),
        }
    }
}

impl FlowExt {
    /// The flow's innermost tunnel, link included (from `key`, the flow's key).
    pub fn tunnel(&self, key: &flowtable::FlowKey) -> Option<FlowTunnel> {
        let t = self.tunnel;
        t.kind.map(|kind| FlowTunnel {
            kind,
            id: t.id,
            depth: t.depth,
            link: key.tunnel,
        })
    }

    /// ICMP type and code of the flow's first packet, for an ICMP or ICMPv6 flow.
    pub fn icmp(&self, key: &flowtable::FlowKey) -> Option<(u8, u8)> {
        matches!(
            key.proto,
            flowtable::IpProto::ICMP | flowtable::IpProto::ICMPV6
        )
        .then_some((self.tunnel.icmp[0], self.tunnel.icmp[1]))
    }
}

/// A flow as the detectors see it.
pub type Flow = FlowEntry<FlowExt>;

/// Why a flow record ends, as written in `flow.reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowEnd {
    /// Idle for the idle timeout.
    Timeout,
    /// Reached the active timeout: reported, and its counters restart (the flow goes on).
    Active,
    /// Evicted because the table was full.
    Evicted,
    /// End of input or shutdown.
    Shutdown,
    /// A new connection reused the key of a closed one (port reuse after TIME_WAIT).
    Reused,
}

impl FlowEnd {
    /// The name written in `flow.reason`.
    pub fn name(self) -> &'static str {
        match self {
            FlowEnd::Timeout => "timeout",
            FlowEnd::Active => "active",
            FlowEnd::Evicted => "evicted",
            FlowEnd::Shutdown => "shutdown",
            FlowEnd::Reused => "reused",
        }
    }
}

/// What a worker knows about a packet beyond its own flow.
#[derive(Clone, Copy, Debug, Default)]
pub struct PacketContext {
    /// For an ICMP error: whether the flow it quotes is in this worker's table.
    pub quoted_flow_seen: Option<bool>,
}

/// State shared by every worker (read-mostly, off the per-packet path).
#[derive(Clone)]
pub struct SharedState {
    /// Names learned from DNS answers on the wire (IP → name).
    pub names: Arc<NameCache>,
    /// Untrusted destinations known from the baseline file and seen in this run.
    pub destinations: Arc<beacon::KnownDestinations>,
}

/// Detector counters of one worker, for the `stats` event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorReport {
    /// Extraneous-packet detector.
    pub extraneous: extraneous::ExtraneousStats,
    /// Beacon detector.
    pub beacon: beacon::BeaconStats,
}

impl DetectorReport {
    /// Adds another worker's counters.
    pub fn add(&mut self, other: &DetectorReport) {
        self.extraneous.add(&other.extraneous);
        self.beacon.add(&other.beacon);
    }
}

/// The flow detectors of one worker.
pub struct FlowDetectors {
    /// Packets outside established flows.
    pub extraneous: extraneous::ExtraneousDetector,
    /// Fixed-size periodic traffic.
    pub beacon: beacon::BeaconDetector,
}

impl FlowDetectors {
    /// Detectors for one worker (`workers`: how many share the configured capacities).
    pub fn new(config: DetectorConfig<'_>, shared: &SharedState, workers: usize) -> FlowDetectors {
        FlowDetectors {
            extraneous: extraneous::ExtraneousDetector::new(
                config.extraneous,
                config.flow_idle_timeout,
                workers,
            ),
            beacon: beacon::BeaconDetector::new(config.beacon, config.home, shared, workers),
        }
    }

    /// Applies a reloaded configuration between batches (see each detector's `reload` for
    /// what applies and what keeps its start value).
    pub fn reload(&mut self, config: DetectorConfig<'_>) {
        self.extraneous
            .reload(config.extraneous, config.flow_idle_timeout);
        self.beacon.reload(config.beacon, config.home);
    }

    /// The capture being read started at `epoch` (the same for every worker, once per batch).
    pub fn observe_epoch(&mut self, epoch: Timestamp) {
        self.extraneous.observe_epoch(epoch);
        self.beacon.observe_epoch(epoch);
    }

    /// End of one capture of several (every flow has ended): what is pending is written and
    /// the per-capture state forgotten, as if the next capture were replayed alone.
    pub fn end_capture(
        &mut self,
        now: Timestamp,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        self.extraneous.end_capture(now, sink)?;
        self.beacon.end_capture();
        Ok(())
    }

    /// Whether `p` opens a new connection on the key of a flow that has ended (a SYN after
    /// a completed close): the worker then ends the old flow record and starts a new one.
    pub fn restarts_flow(&self, flow: &Flow, p: &PacketMeta) -> bool {
        self.extraneous.restarts_flow(flow, p)
    }

    /// One packet of `flow` (already counted in `flow.counters`); `new`: its first packet.
    pub fn on_packet(
        &mut self,
        flow: &mut Flow,
        new: bool,
        p: &PacketMeta,
        ctx: PacketContext,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        self.extraneous.on_packet(flow, new, p, ctx, sink)?;
        self.beacon.on_packet(flow, new, p, sink)
    }

    /// A flow record ends (the flow may go on after [`FlowEnd::Active`]).
    pub fn on_flow_end(
        &mut self,
        flow: &Flow,
        end: FlowEnd,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        self.extraneous.on_flow_end(flow, end, sink)?;
        self.beacon.on_flow_end(flow, end, sink)
    }

    /// The worker's clock moved to `now` (once per batch).
    pub fn on_tick(&mut self, now: Timestamp, sink: &mut EventSink) -> Result<(), AlertWriteError> {
        self.extraneous.on_tick(now, sink)?;
        self.beacon.on_tick(now, sink)
    }

    /// End of input: every flow has ended; write what is still pending.
    pub fn finish(&mut self, now: Timestamp, sink: &mut EventSink) -> Result<(), AlertWriteError> {
        self.extraneous.finish(now, sink)?;
        self.beacon.finish(now, sink)
    }

    /// Alerts written so far by the flow detectors.
    pub fn alerts_written(&self) -> u64 {
        self.extraneous.alerts() + self.beacon.alerts()
    }

    /// Counters so far.
    pub fn report(&self) -> DetectorReport {
        DetectorReport {
            extraneous: self.extraneous.stats(),
            beacon: self.beacon.stats(),
        }
    }
}
