//! Encapsulated mirror streams (T1020.001): tell a mirror from an overlay, judge the collector.
//!
//! Evidence is gathered per tunnel link by `tunnel.rs`; this module turns it into a class and
//! a reason, and judges each session against the approved inventory:
//! - `mirror`: any ERSPAN; or inner frames that duplicate native traffic seen on the capture;
//!   or inner conversations whose two directions travel in the *same* outer direction (a copy
//!   of both sides sent one way, to a collector).
//! - `overlay`: tunnel traffic in both outer directions, each inner conversation's two
//!   directions in *opposite* outer directions (two VTEPs exchanging a conversation).
//!
//! A link's class comes from its own conversations first. Evidence gathered over the whole
//! outer pair (all ids) only strengthens a `mirror` verdict the link's own evidence leaves
//! open: a one-way link whose conversations show no pattern of their own, each direction of
//! which the pair saw as a mirror (ingress and egress copies under two keys). So an overlay
//! VNI beside a mirror VNI between the same VTEPs stays an overlay, whatever came first.
//! Evidence joined over one outer source's one-way links of one type and id towards
//! different collectors does the same for a mirror spread over several collectors (issue 16):
//! a one-way link carrying one direction of each conversation is a mirror when the same
//! source sends the other directions, the same way, to its other collectors.
//! - `unknown`: until the evidence is enough. A class is decided as soon as the first
//!   `decide_after_packets` packets or `decide_after_s` seconds of packet time have passed (at
//!   once for ERSPAN), and at the end of a session with whatever evidence there is.

use std::net::IpAddr;

use flowtable::{Duration, Timestamp};
use ipnet::IpNet;

use crate::alert::{
    AlertEvent, AlertInfo, AlertWriteError, EventHeader, EventSink, Mitre, ProtoName, Rfc3339,
    TunnelFloodEvidence, TunnelRef,
};
use crate::config::Config;
use crate::decode::TunnelKind;

/// A `mirror.tunnel_id_flood` finding: an outer source creating links beyond its share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelFloodRecord {
    /// The flooding outer source.
    pub src: IpAddr,
    /// Outer destination of the link that went beyond the share.
    pub dst: IpAddr,
    /// Its outer UDP ports (0 for GRE).
    pub src_port: u16,
    /// See `src_port`.
    pub dst_port: u16,
    /// Its encapsulation.
    pub kind: TunnelKind,
    /// Its id.
    pub id: u32,
    /// Its nesting level.
    pub depth: u8,
    /// Its link id.
    pub link: u64,
    /// Packet time of that link's first packet.
    pub at: Timestamp,
    /// The source's links in the table then.
    pub links_held: u64,
    /// The most links one source may hold.
    pub share: u64,
    /// The table's capacity.
    pub capacity: u64,
    /// Links the source created since it first appeared.
    pub links_created: u64,
    /// When its first link appeared.
    pub first_seen: Timestamp,
}

/// What a tunnel session is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MirrorClass {
    /// Not enough evidence (yet).
    #[default]
    Unknown,
    /// A copy of traffic sent to a collector.
    Mirror,
    /// An ordinary overlay network between tunnel endpoints.
    Overlay,
}

impl MirrorClass {
    /// Event name.
    pub const fn name(self) -> &'static str {
        match self {
            MirrorClass::Unknown => "unknown",
            MirrorClass::Mirror => "mirror",
            MirrorClass::Overlay => "overlay",
        }
    }
}

/// The evidence that decided a class (stable names, in events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClassReason {
    /// Still collecting evidence.
    #[default]
    Pending,
    /// ERSPAN exists only to mirror.
    Erspan,
    /// Inner frames are copies of packets also seen natively on the capture.
    DuplicatesNativeTraffic,
    /// A one-way outer stream carrying both directions of inner conversations.
    OneWayBothDirections,
    /// A one-way link whose own conversations show one direction each, the other direction
    /// of which travels the same outer way under another id of the outer pair (ingress and
    /// egress copies sent as two sessions).
    OuterPairBothDirections,
    /// A one-way link whose own conversations show one direction each, the other direction
    /// of which the same outer source sends, under the same type and id, over one-way links
    /// to other collectors (a mirror spread over several collectors).
    SpreadOverCollectors,
    /// Both directions of inner conversations in one outer direction, although the link also
    /// carries traffic the other way.
    BothDirectionsOneOuterDirection,
    /// Each inner conversation's directions follow opposite outer directions.
    InnerDirectionsFollowOuter,
    /// The layer only carries further tunnels; the class belongs to the inner layer.
    CarriesInnerTunnel,
    /// The session ended without decisive evidence.
    NotEnoughEvidence,
}

impl ClassReason {
    /// Event name.
    pub const fn name(self) -> &'static str {
        match self {
            ClassReason::Pending => "pending",
            ClassReason::Erspan => "erspan",
            ClassReason::DuplicatesNativeTraffic => "duplicates_native_traffic",
            ClassReason::OneWayBothDirections => "one_way_both_directions",
            ClassReason::OuterPairBothDirections => "outer_pair_both_directions",
            ClassReason::SpreadOverCollectors => "spread_over_collectors",
            ClassReason::BothDirectionsOneOuterDirection => "both_directions_one_outer_direction",
            ClassReason::InnerDirectionsFollowOuter => "inner_directions_follow_outer",
            ClassReason::CarriesInnerTunnel => "carries_inner_tunnel",
            ClassReason::NotEnoughEvidence => "not_enough_evidence",
        }
    }
}

/// What a link has shown so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkEvidence {
    /// Packets per outer direction (0: lower → higher address).
    pub packets: [u64; 2],
    /// First packet of the link.
    pub first_seen: Timestamp,
    /// Inner conversations of this link seen with both directions in one outer direction.
    pub mirror_conversations: u64,
    /// Inner conversations of this link seen with their directions in opposite outer
    /// directions.
    pub overlay_conversations: u64,
    /// Conversations of this link without a pattern of their own that the link's outer pair
    /// (all its ids together) saw with both directions in one outer direction.
    pub pair_mirror_support: u64,
    /// Conversations of this link without a pattern of their own whose other direction the
    /// same outer source sent, under the same type and id, over its one-way links to other
    /// collectors.
    pub spread_mirror_support: u64,
    /// Inner frames matched to native packets.
    pub duplicates: u64,
    /// Packets whose innermost IP packet was inside this layer (not in a deeper tunnel).
    pub innermost_packets: u64,
}

/// When to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecidePolicy {
    /// Packets of the link before deciding.
    pub after_packets: u64,
    /// Packet time since the first packet before deciding.
    pub after: Duration,
    /// Least packet time since the first packet before `after_packets` alone decides (0 in
    /// replay). Sharded live capture sets it: a link's copies are matched to native packets
    /// in the workers and the findings come back to the link's capture thread a moment
    /// later, so a fast link is not decided before its first findings are in.
    pub min_age: Duration,
}

impl DecidePolicy {
    /// From `[mirror]`.
    pub fn from_config(config: &Config) -> DecidePolicy {
        DecidePolicy {
            after_packets: config.mirror.decide_after_packets,
            after: Duration::from_secs(config.mirror.decide_after_s),
            min_age: Duration::ZERO,
        }
    }
}

impl DecidePolicy {
    /// Whether a link has waited long enough (packets or packet time) to be decided.
    pub fn ripe(&self, ev: &LinkEvidence, now: Timestamp) -> bool {
        let total = ev.packets[0].saturating_add(ev.packets[1]);
        let age = now.saturating_since(ev.first_seen);
        (total >= self.after_packets && age >= self.min_age) || age >= self.after
    }
}

/// Decides a class, or `None` to keep waiting. `at_end` forces a decision (session over).
pub fn classify(
    kind: TunnelKind,
    ev: &LinkEvidence,
    policy: DecidePolicy,
    now: Timestamp,
    at_end: bool,
) -> Option<(MirrorClass, ClassReason)> {
    if matches!(
        kind,
        TunnelKind::Erspan1 | TunnelKind::Erspan2 | TunnelKind::Erspan3
    ) {
        return Some((MirrorClass::Mirror, ClassReason::Erspan));
    }
    let total = ev.packets[0].saturating_add(ev.packets[1]);
    if !policy.ripe(ev, now) && !at_end {
        return None;
    }
    let one_way = ev.packets[0] == 0 || ev.packets[1] == 0;
    if ev.duplicates > 0 {
        return Some((MirrorClass::Mirror, ClassReason::DuplicatesNativeTraffic));
    }
    if ev.mirror_conversations > ev.overlay_conversations {
        let reason = if one_way {
            ClassReason::OneWayBothDirections
        } else {
            ClassReason::BothDirectionsOneOuterDirection
        };
        return Some((MirrorClass::Mirror, reason));
    }
    if !one_way && ev.overlay_conversations > 0 && ev.mirror_conversations == 0 {
        return Some((
            MirrorClass::Overlay,
            ClassReason::InnerDirectionsFollowOuter,
        ));
    }
    // Pair-wide evidence, only where the link's own says nothing either way and the link is
    // one-way (a two-way link is what an overlay looks like).
    if one_way
        && ev.mirror_conversations == 0
        && ev.overlay_conversations == 0
        && ev.pair_mirror_support > 0
    {
        return Some((MirrorClass::Mirror, ClassReason::OuterPairBothDirections));
    }
    // The same for the source's evidence across collectors (a mirror spread over several).
    if one_way
        && ev.mirror_conversations == 0
        && ev.overlay_conversations == 0
        && ev.spread_mirror_support > 0
    {
        return Some((MirrorClass::Mirror, ClassReason::SpreadOverCollectors));
    }
    if at_end {
        let reason = if ev.innermost_packets == 0 && total > 0 {
            ClassReason::CarriesInnerTunnel
        } else {
            ClassReason::NotEnoughEvidence
        };
        return Some((MirrorClass::Unknown, reason));
    }
    None
}

/// How a session stands against the approved inventory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Approval {
    /// The collector may receive this mirror.
    #[default]
    Approved,
    /// The collector is in no approved list.
    UnapprovedCollector,
    /// The collector is approved, but not for this source.
    UnapprovedSource,
    /// The collector is approved, but not for this tunnel type or id.
    UnexpectedTunnel,
}

/// The alert signature for a finding, as `(id, dotted name)`.
pub const fn signature(approval: Approval) -> (u32, &'static str) {
    match approval {
        Approval::Approved | Approval::UnapprovedCollector => {
            (1_000_001, "mirror.unapproved_collector")
        }
        Approval::UnapprovedSource => (1_000_002, "mirror.unapproved_source"),
        Approval::UnexpectedTunnel => (1_000_003, "mirror.unexpected_tunnel"),
    }
}

/// The alert signature of a tunnel-id flood: one outer source creating links beyond its
/// share of the tunnel table (a way to blind this detector by filling the table).
pub const SIG_TUNNEL_ID_FLOOD: (u32, &str) = (1_000_004, "mirror.tunnel_id_flood");

/// Writes the `mirror.tunnel_id_flood` alert of an outer source that reached its share of
/// the tunnel table: the table stays open to other sources, but whoever floods it is named.
pub fn write_flood_alert(
    sink: &mut EventSink,
    r: &TunnelFloodRecord,
) -> Result<(), AlertWriteError> {
    let (signature_id, signature) = SIG_TUNNEL_ID_FLOOD;
    let proto = if r.dst_port != 0 || matches!(r.kind, TunnelKind::Vxlan | TunnelKind::Geneve) {
        flowtable::IpProto::UDP
    } else {
        flowtable::IpProto::GRE
    };
    let udp = proto == flowtable::IpProto::UDP;
    sink.write(&AlertEvent {
        header: EventHeader {
            timestamp: Rfc3339(r.at),
            flow_id: None,
            event_type: "alert",
            src_ip: Some(r.src),
            src_port: udp.then_some(r.src_port),
            dest_ip: Some(r.dst),
            dest_port: udp.then_some(r.dst_port),
            proto: Some(ProtoName(proto)),
            icmp: None,
        },
        detector: "mirror_stream",
        alert: AlertInfo {
            signature_id,
            signature,
            category: "Sensor evasion",
            severity: 2,
        },
        mitre: Mitre::T1020_001,
        tunnel: Some(TunnelRef {
            kind: r.kind.name(),
            id: r.id,
            depth: r.depth,
            link: r.link,
            outer: Some(crate::alert::OuterEndpoints {
                src_ip: r.src,
                dest_ip: r.dst,
                src_port: udp.then_some(r.src_port),
                dest_port: udp.then_some(r.dst_port),
                proto: if udp { "udp" } else { "gre" },
            }),
        }),
        evidence: TunnelFloodEvidence {
            links_held: r.links_held,
            share: r.share,
            table_capacity: r.capacity,
            links_created: r.links_created,
            first_seen: Rfc3339(r.first_seen),
        },
    })
}

/// Severity: 1 when the collector is outside `[networks] home` (a copy of traffic leaves the
/// organization), 2 when it is internal but not approved.
pub const fn severity(collector_home: bool) -> u8 {
    if collector_home { 2 } else { 1 }
}

/// The approved collector inventory and the home networks.
#[derive(Clone, Debug, Default)]
pub struct CollectorInventory {
    home: Vec<IpNet>,
    approved: Vec<IpNet>,
    bounded: Vec<BoundedCollector>,
}

#[derive(Clone, Debug)]
struct BoundedCollector {
    collector: IpNet,
    sources: Vec<IpNet>,
    kinds: Vec<TunnelKind>,
    ids: Vec<u32>,
}

impl CollectorInventory {
    /// From `[networks]` and `[mirror]` (already validated).
    pub fn from_config(config: &Config) -> CollectorInventory {
        CollectorInventory {
            home: config.networks.home.clone(),
            approved: config.mirror.approved_collectors.clone(),
            bounded: config
                .mirror
                .inventory
                .iter()
                .map(|e| BoundedCollector {
                    collector: e.collector,
                    sources: e.sources.clone(),
                    kinds: TunnelKind::ALL
                        .iter()
                        .copied()
                        .filter(|k| e.types.iter().any(|t| t == k.name()))
                        .collect(),
                    ids: e.tunnel_ids.clone(),
                })
                .collect(),
        }
    }

    /// Whether `ip` is inside the home networks.
    pub fn is_home(&self, ip: IpAddr) -> bool {
        self.home.iter().any(|n| n.contains(&ip))
    }

    /// Judges a session from `source` to `collector`.
    pub fn judge(&self, source: IpAddr, collector: IpAddr, kind: TunnelKind, id: u32) -> Approval {
        if self.approved.iter().any(|n| n.contains(&collector)) {
            return Approval::Approved;
        }
        let mut best = Approval::UnapprovedCollector;
        for entry in self
            .bounded
            .iter()
            .filter(|e| e.collector.contains(&collector))
        {
            let source_ok =
                entry.sources.is_empty() || entry.sources.iter().any(|n| n.contains(&source));
            let tunnel_ok = (entry.kinds.is_empty() || entry.kinds.contains(&kind))
                && (entry.ids.is_empty() || entry.ids.contains(&id));
            match (source_ok, tunnel_ok) {
                (true, true) => return Approval::Approved,
                (false, _) => best = Approval::UnapprovedSource,
                (true, false) if best != Approval::UnapprovedSource => {
                    best = Approval::UnexpectedTunnel;
                }
                (true, false) => {}
            }
        }
        best
    }
}

/// A short window of packet fingerprints, to recognise inner frames that copy native packets.
///
/// Two direct-mapped tables (native and encapsulated packets), each a fixed array: a new
/// fingerprint overwrites its slot, so memory is constant and a lookup is one load. A copy
/// may arrive before or after its original, so each side looks in the other's table.
///
/// While no encapsulated packet was seen within the window (most captures, most of the
/// time), a native packet is appended to a ring instead of its random slot: a sequential
/// write rather than a cache miss per packet (measured: 7 to 14 % of a replay). The first
/// encapsulated packet after such a quiet spell moves the ring's entries into the table, in
/// their order, so the table then holds what direct recording would have put there, as long
/// as the natives of one window fit in the ring (beyond that, both keep a sample). Each
/// native is moved at most once, so an adversary alternating quiet spells and copies costs
/// one table store per native, as direct recording does.
pub struct CopyWindow {
    native: Box<[FingerprintSlot]>,
    tunneled: Box<[FingerprintSlot]>,
    /// Natives recorded while no encapsulated packet was recent, oldest first from
    /// `ring_next` once it wrapped; reserved up front, filled on demand.
    ring: Vec<(u64, Timestamp)>,
    ring_next: usize,
    window: Duration,
    /// Latest native and encapsulated packet times (the largest seen): a table is only probed
    /// when the other kind of traffic was seen within the window before, or after (on a
    /// capture of one kind, that saves a cache miss per packet).
    last_native: Option<Timestamp>,
    last_tunneled: Option<Timestamp>,
}

/// One remembered packet as words: its fingerprint ([`FP`]), packet time in nanoseconds
/// ([`TS`]) and link ([`LINK`], 0 for a native). A bare array of words, not a struct, so that
/// `vec![[0; 3]; n]` allocates a table zeroed: its pages stay untouched until packets land in
/// them. A table of structs was written slot by slot when the pipeline started: 1.5 MB of the
/// two tables touched by every replay, also of a capture with no tunnel (issue 14 goal 2).
type FingerprintSlot = [u64; 3];
const FP: usize = 0;
const TS: usize = 1;
const LINK: usize = 2;

/// Slots per table (a power of two).
const COPY_WINDOW_SLOTS: usize = 1 << 15;

impl CopyWindow {
    /// A window of `window` packet time.
    pub fn new(window: Duration) -> CopyWindow {
        CopyWindow {
            native: vec![[0; 3]; COPY_WINDOW_SLOTS].into_boxed_slice(),
            tunneled: vec![[0; 3]; COPY_WINDOW_SLOTS].into_boxed_slice(),
            ring: Vec::with_capacity(COPY_WINDOW_SLOTS),
            ring_next: 0,
            window,
            last_native: None,
            last_tunneled: None,
        }
    }

    /// A native packet: if an encapsulated copy of it was seen recently, consumes that copy
    /// and returns its link; otherwise records the packet for copies that come later.
    #[inline]
    pub fn native(&mut self, fingerprint: u64, now: Timestamp) -> Option<u64> {
        let i = slot(fingerprint);
        let probe = self
            .last_tunneled
            .is_some_and(|t| recent(t, now, self.window));
        self.last_native = Some(self.last_native.map_or(now, |t| t.max(now)));
        if !probe {
            self.ring_push(fingerprint, now);
            return None;
        }
        if let Some(copy) = self.tunneled.get_mut(i) {
            if copy[FP] == fingerprint && fresh(Timestamp(copy[TS]), now, self.window) {
                // Each original and copy pair counts once: a retransmission that looks the
                // same must not match the same copy again.
                copy[FP] = EMPTY;
                return Some(copy[LINK]);
            }
        }
        if let Some(s) = self.native.get_mut(i) {
            *s = [fingerprint, now.as_nanos(), 0];
        }
        None
    }

    /// An encapsulated packet inside `link`: if it copies a recent native packet, consumes
    /// that packet and returns true; otherwise records it for originals that come later.
    #[inline]
    pub fn tunneled(&mut self, fingerprint: u64, now: Timestamp, link: u64) -> bool {
        let i = slot(fingerprint);
        let probe = self
            .last_native
            .is_some_and(|t| recent(t, now, self.window));
        // Natives of a quiet spell are in the ring: into the table first.
        if !self.ring.is_empty() {
            self.move_ring();
        }
        self.last_tunneled = Some(self.last_tunneled.map_or(now, |t| t.max(now)));
        if let Some(original) = self.native.get_mut(i).filter(|_| probe) {
            if original[FP] == fingerprint && fresh(Timestamp(original[TS]), now, self.window) {
                original[FP] = EMPTY;
                return true;
            }
        }
        if let Some(s) = self.tunneled.get_mut(i) {
            *s = [fingerprint, now.as_nanos(), link];
        }
        false
    }
}

impl CopyWindow {
    #[inline]
    fn ring_push(&mut self, fingerprint: u64, now: Timestamp) {
        if self.ring.len() < self.ring.capacity() {
            self.ring.push((fingerprint, now));
        } else if let Some(e) = self.ring.get_mut(self.ring_next) {
            *e = (fingerprint, now);
            self.ring_next = (self.ring_next + 1) % self.ring.len();
        }
    }

    /// Records the ring's natives in the table, oldest first, and empties the ring. All of
    /// them, also those far from this copy's time: with batches out of order (sharded
    /// capture) a later copy may be theirs, and a match checks freshness anyway.
    fn move_ring(&mut self) {
        let (newer, older) = self.ring.split_at(self.ring_next.min(self.ring.len()));
        for &(fingerprint, ts) in older.iter().chain(newer) {
            if let Some(s) = self.native.get_mut(slot(fingerprint)) {
                *s = [fingerprint, ts.as_nanos(), 0];
            }
        }
        self.ring.clear();
        self.ring_next = 0;
    }

    /// Changes the window (a configuration reload); the tables stay as they are.
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// Sets the link of the copy just recorded by [`CopyWindow::tunneled`] (the link is known
    /// only after the tunnel layers are accounted).
    #[inline]
    pub fn set_tunneled_link(&mut self, fingerprint: u64, link: u64) {
        if let Some(s) = self.tunneled.get_mut(slot(fingerprint)) {
            if s[FP] == fingerprint {
                s[LINK] = link;
            }
        }
    }
}

/// A slot holding nothing (a real fingerprint is 0 with probability 2^-64).
const EMPTY: u64 = 0;

#[inline]
fn slot(fingerprint: u64) -> usize {
    // The fingerprint is already a seeded hash; its top bits index the table.
    (fingerprint >> (64 - COPY_WINDOW_SLOTS.trailing_zeros())) as usize
}

/// Whether the other kind of traffic was seen at most `window` before `now`, or later (its
/// latest time is ahead of `now` when packets come out of order: the batches of several
/// capture fronts reach a worker in no particular order, so a copy may be read long before
/// its original): only then can the other table hold a match.
#[inline]
fn recent(latest: Timestamp, now: Timestamp, window: Duration) -> bool {
    now.saturating_since(latest) <= window
}

#[inline]
fn fresh(then: Timestamp, now: Timestamp, window: Duration) -> bool {
    // Either order: the copy may precede its original.
    now.saturating_since(then) <= window && then.saturating_since(now) <= window
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: DecidePolicy = DecidePolicy {
        after_packets: 10,
        after: Duration(5_000_000_000),
        min_age: Duration::ZERO,
    };

    fn ev(packets: [u64; 2], mirror: u64, overlay: u64, dups: u64) -> LinkEvidence {
        LinkEvidence {
            packets,
            first_seen: Timestamp::ZERO,
            mirror_conversations: mirror,
            overlay_conversations: overlay,
            duplicates: dups,
            innermost_packets: packets[0] + packets[1],
            pair_mirror_support: 0,
            spread_mirror_support: 0,
        }
    }

    #[test]
    fn erspan_is_a_mirror_at_once() {
        let e = ev([1, 0], 0, 0, 0);
        let got = classify(TunnelKind::Erspan3, &e, POLICY, Timestamp::ZERO, false);
        assert_eq!(got, Some((MirrorClass::Mirror, ClassReason::Erspan)));
    }

    #[test]
    fn waits_until_ripe_then_decides() {
        let e = ev([4, 0], 2, 0, 0);
        assert_eq!(
            classify(TunnelKind::Vxlan, &e, POLICY, Timestamp(1), false),
            None
        );
        let e = ev([10, 0], 2, 0, 0);
        assert_eq!(
            classify(TunnelKind::Vxlan, &e, POLICY, Timestamp(1), false),
            Some((MirrorClass::Mirror, ClassReason::OneWayBothDirections))
        );
        // Ripe by time with few packets.
        let e = ev([2, 0], 1, 0, 0);
        let later = Timestamp::from_secs_nanos(6, 0);
        assert_eq!(
            classify(TunnelKind::Geneve, &e, POLICY, later, false).map(|c| c.0),
            Some(MirrorClass::Mirror)
        );
    }

    #[test]
    fn overlay_needs_both_outer_directions() {
        let two_way = ev([6, 6], 0, 3, 0);
        assert_eq!(
            classify(TunnelKind::Vxlan, &two_way, POLICY, Timestamp(1), false),
            Some((
                MirrorClass::Overlay,
                ClassReason::InnerDirectionsFollowOuter
            ))
        );
        // One-way with single-direction conversations stays unknown, and says so at the end.
        let one_way = ev([12, 0], 0, 0, 0);
        assert_eq!(
            classify(TunnelKind::Vxlan, &one_way, POLICY, Timestamp(1), false),
            None
        );
        assert_eq!(
            classify(TunnelKind::Vxlan, &one_way, POLICY, Timestamp(1), true),
            Some((MirrorClass::Unknown, ClassReason::NotEnoughEvidence))
        );
    }

    #[test]
    fn duplicates_decide_mirror_even_on_a_two_way_link() {
        let e = ev([6, 6], 0, 3, 2);
        assert_eq!(
            classify(TunnelKind::Nvgre, &e, POLICY, Timestamp(1), false),
            Some((MirrorClass::Mirror, ClassReason::DuplicatesNativeTraffic))
        );
    }

    #[test]
    fn pair_evidence_only_strengthens_an_open_one_way_link() {
        // Own evidence: nothing either way, one-way, the pair saw a mirror: mirror.
        let mut e = ev([6, 0], 0, 0, 0);
        e.pair_mirror_support = 1;
        assert_eq!(
            classify(TunnelKind::Vxlan, &e, POLICY, Timestamp(1), true),
            Some((MirrorClass::Mirror, ClassReason::OuterPairBothDirections))
        );
        // Two-way: the pair cannot make it a mirror.
        let mut e = ev([3, 3], 0, 0, 0);
        e.pair_mirror_support = 2;
        assert_eq!(
            classify(TunnelKind::Vxlan, &e, POLICY, Timestamp(1), true),
            Some((MirrorClass::Unknown, ClassReason::NotEnoughEvidence))
        );
        // Own overlay evidence wins over any pair support.
        let mut e = ev([3, 3], 0, 1, 0);
        e.pair_mirror_support = 5;
        assert_eq!(
            classify(TunnelKind::Vxlan, &e, POLICY, Timestamp(1), true).map(|c| c.0),
            Some(MirrorClass::Overlay)
        );
    }

    #[test]
    fn spread_evidence_only_strengthens_an_open_one_way_link() {
        let mut e = ev([6, 0], 0, 0, 0);
        e.spread_mirror_support = 1;
        assert_eq!(
            classify(TunnelKind::Vxlan, &e, POLICY, Timestamp(1), true),
            Some((MirrorClass::Mirror, ClassReason::SpreadOverCollectors))
        );
        // Not yet ripe: it waits like any other evidence.
        assert_eq!(
            classify(TunnelKind::Vxlan, &e, POLICY, Timestamp(1), false),
            None
        );
        // A two-way link is what an overlay looks like: the siblings cannot make it a mirror.
        let mut e = ev([3, 3], 0, 0, 0);
        e.spread_mirror_support = 2;
        assert_eq!(
            classify(TunnelKind::Vxlan, &e, POLICY, Timestamp(1), true),
            Some((MirrorClass::Unknown, ClassReason::NotEnoughEvidence))
        );
        // The link's own pattern decides first.
        let mut e = ev([10, 0], 1, 0, 0);
        e.spread_mirror_support = 3;
        assert_eq!(
            classify(TunnelKind::Vxlan, &e, POLICY, Timestamp(1), false),
            Some((MirrorClass::Mirror, ClassReason::OneWayBothDirections))
        );
    }

    #[test]
    fn a_pure_carrier_says_so_at_the_end() {
        let mut e = ev([5, 0], 0, 0, 0);
        e.innermost_packets = 0;
        assert_eq!(
            classify(TunnelKind::Geneve, &e, POLICY, Timestamp(1), true),
            Some((MirrorClass::Unknown, ClassReason::CarriesInnerTunnel))
        );
    }

    #[test]
    fn inventory_judges_collectors_sources_and_ids() {
        let mut config = Config::default();
        config.mirror.approved_collectors = vec!["10.9.0.0/24".parse().unwrap()];
        config.mirror.inventory = vec![crate::config::InventoryEntry {
            collector: "10.8.0.10/32".parse().unwrap(),
            sources: vec!["10.1.0.0/16".parse().unwrap()],
            types: vec!["vxlan".to_owned()],
            tunnel_ids: vec![100],
            actors: Vec::new(),
            source_resources: Vec::new(),
            collector_resources: Vec::new(),
            change_records: Vec::new(),
        }];
        let inv = CollectorInventory::from_config(&config);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let vx = TunnelKind::Vxlan;
        assert_eq!(
            inv.judge(ip("10.5.5.5"), ip("10.9.0.7"), vx, 1),
            Approval::Approved
        );
        assert_eq!(
            inv.judge(ip("10.1.2.3"), ip("10.8.0.10"), vx, 100),
            Approval::Approved
        );
        assert_eq!(
            inv.judge(ip("10.2.2.3"), ip("10.8.0.10"), vx, 100),
            Approval::UnapprovedSource
        );
        assert_eq!(
            inv.judge(ip("10.1.2.3"), ip("10.8.0.10"), vx, 101),
            Approval::UnexpectedTunnel
        );
        assert_eq!(
            inv.judge(ip("10.1.2.3"), ip("10.8.0.10"), TunnelKind::Geneve, 100),
            Approval::UnexpectedTunnel
        );
        assert_eq!(
            inv.judge(ip("10.1.2.3"), ip("203.0.113.50"), vx, 100),
            Approval::UnapprovedCollector
        );
        assert!(inv.is_home(ip("10.8.0.10")) && !inv.is_home(ip("203.0.113.50")));
        assert_eq!((severity(false), severity(true)), (1, 2));
    }

    #[test]
    fn copy_window_matches_either_order_within_the_window() {
        let mut w = CopyWindow::new(Duration::from_millis(100));
        let t = |ms: u64| Timestamp(ms * 1_000_000);
        assert_eq!(w.native(0xdead_beef_0000_0001, t(0)), None);
        assert!(w.tunneled(0xdead_beef_0000_0001, t(50), 7));
        // The pair is consumed: a second copy or a look-alike original does not match again.
        assert!(!w.tunneled(0xdead_beef_0000_0001, t(51), 7));
        // Copy first, original later.
        assert!(!w.tunneled(0x1234_0000_0000_0002, t(60), 9));
        assert_eq!(w.native(0x1234_0000_0000_0002, t(70)), Some(9));
        assert_eq!(w.native(0x1234_0000_0000_0002, t(71)), None, "consumed");
        // Too late.
        assert!(!w.tunneled(0x7777_0000_0000_0003, t(100), 9));
        assert_eq!(w.native(0x7777_0000_0000_0003, t(300)), None);
        // A different fingerprint in the same slot does not match.
        assert!(!w.tunneled(0x4444_0000_0000_0002, t(55), 7));
    }

    /// Natives of a quiet spell (no encapsulated packet within the window) wait in the ring;
    /// the first copy moves them into the table and matches as if they had been recorded
    /// there, in either order; an entry older than the window does not match.
    #[test]
    fn copy_window_matches_natives_recorded_in_a_quiet_spell() {
        let mut w = CopyWindow::new(Duration::from_millis(100));
        let t = |ms: u64| Timestamp(ms * 1_000_000);
        // Fingerprints spread over the slots (top bits index the table).
        let fp = |i: u64| (i + 2).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        assert_eq!(w.native(0x0100_0000_0000_0001, t(0)), None);
        for i in 0..1000u64 {
            assert_eq!(w.native(fp(i), t(200 + i / 100)), None);
        }
        assert_eq!(w.ring.len(), 1001, "no copy recent: recorded in the ring");
        // Copies of the 1st (too old by now) and of a recent native.
        assert!(!w.tunneled(0x0100_0000_0000_0001, t(250), 3));
        assert!(w.ring.is_empty());
        assert!(w.tunneled(fp(500), t(251), 3));
        // Now copies are recent: natives go straight to the table and match a later copy.
        assert_eq!(w.native(0x0900_0000_0000_0009, t(252)), None);
        assert!(w.ring.is_empty());
        assert!(w.tunneled(0x0900_0000_0000_0009, t(253), 3));
    }

    /// More natives in a quiet spell than the ring holds: the newest are kept.
    #[test]
    fn copy_window_ring_keeps_the_newest_natives() {
        let mut w = CopyWindow::new(Duration::from_millis(1000));
        let t = |us: u64| Timestamp(us * 1_000);
        let n = COPY_WINDOW_SLOTS as u64 + 100;
        // Fingerprints spread over the slots (top bits index the table).
        let fp = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for i in 0..n {
            assert_eq!(w.native(fp(i), t(i)), None);
        }
        assert_eq!(w.ring.len(), COPY_WINDOW_SLOTS, "bounded");
        assert!(!w.tunneled(fp(5), t(n), 2), "overwritten in the ring");
        assert!(w.tunneled(fp(n - 1), t(n), 2));
    }

    /// Sharded capture hands a worker the batches of several fronts in no particular order:
    /// copies read long before their originals (more than the window ahead in packet time)
    /// still meet them, and an old packet processed late does not stop the probes.
    #[test]
    fn copy_window_matches_when_batches_come_out_of_order() {
        let mut w = CopyWindow::new(Duration::from_millis(100));
        let t = |ms: u64| Timestamp(ms * 1_000_000);
        // A front read copies up to 1 s; the originals come from a front that lags behind.
        assert!(!w.tunneled(0xaaaa_0000_0000_0001, t(10), 3));
        assert!(!w.tunneled(0xbbbb_0000_0000_0002, t(1_000), 3));
        assert_eq!(w.native(0xaaaa_0000_0000_0001, t(12)), Some(3));
        // A late copy of an old packet does not move the latest copy time back.
        assert!(!w.tunneled(0xcccc_0000_0000_0003, t(20), 3));
        assert_eq!(w.native(0xbbbb_0000_0000_0002, t(1_001)), Some(3));
        // Beyond the window either way, nothing matches.
        assert_eq!(w.native(0xcccc_0000_0000_0003, t(400)), None);
    }
}
