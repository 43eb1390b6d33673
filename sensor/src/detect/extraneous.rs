//! Extraneous packets: packets that no established conversation explains (ATT&CK T1020.001
//! detection: "extraneous packets that do not belong to established flows").
//!
//! Per flow, a small fixed [`FlowState`] tracks TCP the way a passive observer can: handshake
//! progress, both directions' next sequence number, latest acknowledgement and window, FIN and
//! RST, a Zeek-style `conn_state` and `history`; for DNS the query ids seen per direction.
//! Seven reasons ([`Reason`]) come out of it, each designed to stay quiet on ordinary traffic:
//! a warm-up after the sensor starts (flows first seen then are picked up midstream silently),
//! per-flow one-sided recognition (a flow seen in one direction only is never judged on what
//! the other side did or did not send), tolerance windows for in-flight and reordered packets,
//! and a global duplicate share so a capture that duplicates everything does not alert on
//! everything.
//!
//! Alerts are aggregated: one per flow and reason, opened at the first offending packet and
//! written after a short hold (`hold_s` of packet time) or when the flow ends, whichever comes
//! first, with the count, first and last packet times and a sample of the first packet. A
//! token bucket limits alerts per second of packet time; what it holds back is counted.
//!
//! Contract: no panic and no allocation per packet (the pending-alert table, the duplicate
//! window and the resume memory are allocated once, in [`ExtraneousDetector::new`]); packet
//! time only; TCP sequence arithmetic is modular (RFC 1982 style comparisons).

use arrayvec::ArrayVec;
use flowtable::{Direction, Duration, FlowKey, IpProto, Timestamp};
use serde::Deserialize;

use crate::alert::extraneous::{
    CopyDiff, ExtraneousEvidence, PacketSample, QuotedFlow, Thresholds, Vantage,
};
use crate::alert::{
    AlertEvent, AlertInfo, AlertWriteError, EventHeader, EventSink, HexByte, Mitre, ProtoName,
    Rfc3339, TunnelRef,
};
use crate::packet::{AppHint, FlowTunnel, LinkClass, PacketMeta};

use super::{Flow, FlowEnd, PacketContext};

/// `[extraneous]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtraneousConfig {
    /// Run the detector (TCP state tracking, `conn_state`/`history` in flow records, alerts).
    pub enabled: bool,
    /// Seconds of packet time after the start during which new flows are picked up midstream
    /// silently. Near zero by default (10 s): long enough for the answers in flight when the
    /// capture began; later midstream connections are judged by evidence.
    pub warmup_s: u64,
    /// Seconds of packet time an alert is held to aggregate more packets before it is written
    /// (it is written at once when its flow ends).
    pub hold_s: u64,
    /// Packets after a RST or a completed FIN exchange are tolerated for this long (in flight).
    pub close_tolerance_ms: u64,
    /// An acknowledgement of data not yet seen is judged only after this long (reordering).
    pub reorder_ms: u64,
    /// A sequence number is out of window when it is this many bytes beyond the right edge
    /// of the receiver's window, or behind its acknowledgement by this much more than twice
    /// the window (at least 64 KiB).
    pub window_slack_bytes: u32,
    /// The same packet twice within this long is a duplicate.
    pub duplicate_window_ms: u64,
    /// Duplicates are not reported while they make up more than this share of the packets
    /// (a capture that duplicates everything, such as a SPAN of both directions).
    pub max_duplicate_share: f64,
    /// Distinct packets of one flow that must be duplicated, each within
    /// `duplicate_pattern_s` of the previous, before its duplicates are alerted: a
    /// duplicating device repeats a pattern, a single duplicated datagram (however many
    /// copies) is a link-layer glitch (a Wi-Fi or link retransmission seen twice).
    pub min_duplicate_packets: u32,
    /// Seconds of packet time between two duplicated packets of a flow for them to count as
    /// one pattern (a longer gap starts the count again).
    pub duplicate_pattern_s: u64,
    /// Alerts held at once (all workers); beyond it an alert is written at once.
    pub pending_capacity: usize,
    /// Alerts written per second of packet time (all workers); 0 = no limit.
    pub rate_limit_per_s: u64,
    /// Alerts that may be written in a burst (all workers).
    pub rate_limit_burst: u64,
    /// Unclosed TCP flows remembered after they idle out (all workers), so that a connection
    /// resuming after a long silence is not taken for one without a handshake.
    pub resume_memory: usize,
}

impl Default for ExtraneousConfig {
    fn default() -> Self {
        ExtraneousConfig {
            enabled: true,
            warmup_s: 10,
            hold_s: 5,
            close_tolerance_ms: 1_000,
            reorder_ms: 500,
            window_slack_bytes: 65_536,
            duplicate_window_ms: 100,
            max_duplicate_share: 0.05,
            min_duplicate_packets: 3,
            duplicate_pattern_s: 60,
            pending_capacity: 16_384,
            rate_limit_per_s: 20,
            rate_limit_burst: 200,
            resume_memory: 65_536,
        }
    }
}

impl ExtraneousConfig {
    /// Range checks the types cannot express: `Err((key, problem))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let bad = |key, problem: &str| Err((key, problem.to_owned()));
        if self.hold_s > 3_600 {
            return bad("hold_s", "must be at most 3600");
        }
        if self.close_tolerance_ms > 600_000 {
            return bad("close_tolerance_ms", "must be at most 600000");
        }
        if self.reorder_ms > 600_000 {
            return bad("reorder_ms", "must be at most 600000");
        }
        if self.window_slack_bytes > 1 << 30 {
            return bad("window_slack_bytes", "must be at most 1073741824");
        }
        if self.duplicate_window_ms == 0 || self.duplicate_window_ms > 10_000 {
            return bad("duplicate_window_ms", "must be 1 to 10000");
        }
        if !(0.0..=1.0).contains(&self.max_duplicate_share) {
            return bad("max_duplicate_share", "must be between 0 and 1");
        }
        if self.min_duplicate_packets == 0 || self.min_duplicate_packets > 1_000 {
            return bad("min_duplicate_packets", "must be 1 to 1000");
        }
        if self.duplicate_pattern_s == 0 || self.duplicate_pattern_s > 86_400 {
            return bad("duplicate_pattern_s", "must be 1 to 86400");
        }
        if self.pending_capacity == 0 || self.pending_capacity > MAX_PENDING_CAPACITY {
            return bad("pending_capacity", "must be 1 to 1000000");
        }
        if self.rate_limit_per_s > 0 && self.rate_limit_burst == 0 {
            return bad(
                "rate_limit_burst",
                "must be at least 1 when rate_limit_per_s is set",
            );
        }
        if self.rate_limit_per_s > 1_000_000 {
            return bad("rate_limit_per_s", "must be at most 1000000");
        }
        if self.rate_limit_burst > 1_000_000 {
            return bad("rate_limit_burst", "must be at most 1000000");
        }
        if self.resume_memory > 1 << 24 {
            return bad("resume_memory", "must be at most 16777216");
        }
        Ok(())
    }
}

/// Largest `pending_capacity` (all workers; one worker may hold all of it, and slot + 1 must
/// fit a [`PendingRef`]'s 20 bits).
const MAX_PENDING_CAPACITY: usize = 1_000_000;
const _: () = assert!(MAX_PENDING_CAPACITY < (1 << REF_SLOT_BITS));

/// Why a packet is extraneous. The names and signature ids are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Data on a two-sided TCP flow whose opening was never seen (after the warm-up).
    NoHandshake,
    /// New sequence space (data, FIN, SYN-ACK) after a RST or a completed FIN exchange.
    AfterClose,
    /// A SYN-ACK answering no SYN, on a flow whose other side is visible.
    UnsolicitedSynack,
    /// An acknowledgement of data the peer never sent.
    AckUnseenData,
    /// A sequence number far outside the receiver's window.
    OutOfWindow,
    /// A DNS response with no matching query, or an ICMP error quoting a flow never seen.
    OrphanResponse,
    /// The same packet twice within a short window on a capture without duplicates.
    DuplicatePacket,
}

impl Reason {
    /// Every reason, in signature-id order.
    pub const ALL: [Reason; 7] = [
        Reason::NoHandshake,
        Reason::AfterClose,
        Reason::UnsolicitedSynack,
        Reason::AckUnseenData,
        Reason::OutOfWindow,
        Reason::OrphanResponse,
        Reason::DuplicatePacket,
    ];

    /// Position in [`Reason::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Reason::NoHandshake => 0,
            Reason::AfterClose => 1,
            Reason::UnsolicitedSynack => 2,
            Reason::AckUnseenData => 3,
            Reason::OutOfWindow => 4,
            Reason::OrphanResponse => 5,
            Reason::DuplicatePacket => 6,
        }
    }

    /// Stable name (`evidence.reason`).
    pub const fn name(self) -> &'static str {
        match self {
            Reason::NoHandshake => "no_handshake",
            Reason::AfterClose => "after_close",
            Reason::UnsolicitedSynack => "unsolicited_synack",
            Reason::AckUnseenData => "ack_unseen_data",
            Reason::OutOfWindow => "out_of_window",
            Reason::OrphanResponse => "orphan_response",
            Reason::DuplicatePacket => "duplicate_packet",
        }
    }

    /// Stable dotted signature (`alert.signature`).
    pub const fn signature(self) -> &'static str {
        match self {
            Reason::NoHandshake => "extraneous.no_handshake",
            Reason::AfterClose => "extraneous.after_close",
            Reason::UnsolicitedSynack => "extraneous.unsolicited_synack",
            Reason::AckUnseenData => "extraneous.ack_unseen_data",
            Reason::OutOfWindow => "extraneous.out_of_window",
            Reason::OrphanResponse => "extraneous.orphan_response",
            Reason::DuplicatePacket => "extraneous.duplicate_packet",
        }
    }

    /// Stable signature id (`alert.signature_id`), in the 2000000 range.
    pub const fn signature_id(self) -> u32 {
        2_000_001 + self.index() as u32
    }

    /// Severity: a duplicating device is a direct sign of T1020.001 (2); the other reasons are
    /// anomalies to look at (3).
    pub const fn severity(self) -> u8 {
        match self {
            Reason::DuplicatePacket => 2,
            _ => 3,
        }
    }

    const fn bit(self) -> u8 {
        1 << self.index()
    }
}

/// Letters kept in a flow's history (Zeek letters, each at most once per direction).
const HISTORY_LEN: usize = 12;

/// Per-flow TCP state and evidence (fixed size: it lives in every flow-table slot).
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowState {
    proto: ProtoState,
    /// Zeek history letters in the order first seen, NUL-padded.
    history: [u8; HISTORY_LEN],
    /// `FLOW_*` bits.
    bits: u8,
    /// TCP flags of the flow's first packet.
    first_flags: u8,
    /// Reasons for which an alert was opened on this flow ([`Reason::bit`]).
    reported: u8,
    /// The newest pending alert of this flow (a chain through [`Pending::next`]).
    pending: PendingRef,
}

#[derive(Clone, Copy, Debug, Default)]
enum ProtoState {
    #[default]
    Other,
    Tcp(TcpState),
    Dns(DnsState),
}

/// What one side of a TCP connection has shown.
#[derive(Clone, Copy, Debug, Default)]
struct Side {
    /// Next sequence number: end of everything this side sent (valid with `SIDE_SEQ`).
    nxt: u32,
    /// Highest acknowledgement this side sent, capped at the peer's `nxt` (with `SIDE_ACKED`).
    ack: u32,
    /// Latest raw window.
    win: u16,
    /// `SIDE_*` bits.
    flags: u8,
    /// Window scale option of its SYN (with `SIDE_WSOPT`).
    wscale: u8,
}

#[derive(Clone, Copy, Debug, Default)]
struct TcpState {
    /// Indexed by [`Direction::index`] of the packets the side sends.
    sides: [Side; 2],
    /// With `TCP_CLAIM`: an acknowledgement beyond the peer's data, waiting for the peer's
    /// next packet. With `TCP_OOW`: the end of the packet held as out of window; if the
    /// receiver acknowledges it within the alert's hold, the capture lost the packets in
    /// between and the held alert is withdrawn. One at a time (both are rare): the other is
    /// then judged without waiting (out of window) or not at all (acknowledgement), until the
    /// hold of the one held ends.
    claim_ack: u32,
    /// When that acknowledgement or out-of-window packet was seen (packet-time
    /// milliseconds, wrapping).
    claim_ms: u32,
    /// When the connection closed (packet-time milliseconds, wrapping).
    close_ms: u32,
    /// `TCP_*` bits.
    bits: u8,
    /// TTL (hop limit) of each side's first packet, by [`Direction::index`] (0: none yet):
    /// the alerts' evidence compares an offending packet's TTL with it (issue 16: a packet
    /// injected with a TTL chosen to expire before the victim has fewer hops left than the
    /// side's genuine packets). Two bytes of what was padding.
    ttl: [u8; 2],
    /// TTL of the acknowledgement held with `TCP_CLAIM` (judged on a later packet), for
    /// the same evidence. The last byte of padding.
    claim_ttl: u8,
}

/// DNS query ids seen per direction, one bit per `id % 64` (a set bit may belong to another
/// id: a collision can hide an orphan response, never invent one).
#[derive(Clone, Copy, Debug, Default)]
struct DnsState {
    queries: [u32; 4],
}

/// A link to a pending alert in four bytes (the flow state's budget): slot + 1 in the low
/// 20 bits (0 = none; `pending_capacity` allows up to 1,000,000 slots in one worker, where a
/// `u16` slot once capped it at 65,535 silently) and the slot's generation in the high 12.
/// A generation wraps after 4,096 reuses of a slot: a stale link that matches again finds
/// another flow's alert, which every user of a link checks by key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PendingRef(u32);

const REF_SLOT_BITS: u32 = 20;
const REF_SLOT_MASK: u32 = (1 << REF_SLOT_BITS) - 1;
const REF_GENERATION_MASK: u16 = (1 << (32 - REF_SLOT_BITS)) - 1;

impl PendingRef {
    fn new(slot: u32, generation: u16) -> PendingRef {
        PendingRef(
            (slot & REF_SLOT_MASK) | (u32::from(generation & REF_GENERATION_MASK) << REF_SLOT_BITS),
        )
    }

    /// Slot + 1 (0 = none).
    fn slot(self) -> u32 {
        self.0 & REF_SLOT_MASK
    }

    fn generation(self) -> u16 {
        (self.0 >> REF_SLOT_BITS) as u16
    }
}

const FLOW_INIT: u8 = 1;
const FLOW_WARMUP: u8 = 1 << 1;
const FLOW_ORIG_REVERSED: u8 = 1 << 2;
const FLOW_CANDIDATE_NO_HANDSHAKE: u8 = 1 << 3;
const FLOW_CANDIDATE_SYNACK: u8 = 1 << 4;
const FLOW_DATA: u8 = 1 << 5;
const FLOW_NO_HANDSHAKE: u8 = 1 << 6;
/// Inside a tunnel not classified overlay when first seen, or inside a mirror: a copy of
/// traffic elsewhere, evidence for the mirror detector only.
const FLOW_COPY: u8 = 1 << 7;

const SIDE_SEQ: u8 = 1;
const SIDE_ACKED: u8 = 1 << 1;
const SIDE_SYN: u8 = 1 << 2;
const SIDE_SYNACK: u8 = 1 << 3;
const SIDE_FIN: u8 = 1 << 4;
const SIDE_RST: u8 = 1 << 5;
const SIDE_WSOPT: u8 = 1 << 6;

const TCP_CLAIM: u8 = 1;
const TCP_CLAIM_HI: u8 = 1 << 1;
const TCP_CLOSED: u8 = 1 << 2;
const TCP_OOW: u8 = 1 << 3;
const TCP_OOW_HI: u8 = 1 << 4;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Receiver window assumed when the window scale is unknown (handshake not seen): 1 GiB.
const UNKNOWN_SCALE_WINDOW: u32 = 1 << 30;
/// Smallest window the check for packets behind the receiver's acknowledgement assumes.
const MIN_WINDOW: u32 = 65_535;

/// `a < b` in sequence space.
#[inline]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a > b` in sequence space.
#[inline]
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Packet time in wrapping milliseconds (49 days per turn; enough for deltas within a flow).
#[inline]
fn ms(ts: Timestamp) -> u32 {
    (ts.as_nanos() / 1_000_000) as u32
}

/// Milliseconds from `then` to `now`, both wrapping packet-time milliseconds, signed: a
/// packet stamped before `then` (two capture points a little out of step, or a packet in
/// flight) gives a negative value, never a wrap to 49 days. Valid for deltas within ±24 days.
#[inline]
fn elapsed_ms(now: u32, then: u32) -> i64 {
    i64::from(now.wrapping_sub(then) as i32)
}

/// A midstream connection is ordinary when one side acknowledges within this many bytes of
/// what the other side sent (or sends within this many bytes of what the other side
/// acknowledged): in-flight data and a window of a few MiB. Random or forged numbers land
/// inside by chance once in 128.
const MIDSTREAM_RANGE: u32 = 1 << 24;

/// A one-sided flow is judged when at least this share of the other flows of its host pair
/// were seen in both directions (and at least one was), in percent.
const MIN_TWO_SIDED_PCT: u64 = 50;

/// How a rule's verdict was reached, beyond its reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Detail {
    #[default]
    None,
    /// The peer never answered (one-sided flow in a two-sided feed).
    NoAnswer,
    /// The peer answered with a RST.
    AnsweredRst,
    /// The peer acknowledged another sequence space.
    AcksOtherData,
}

impl FlowState {
    /// Zeek-style `conn_state` (TCP flows).
    pub fn conn_state(&self, flow: &Flow) -> Option<&'static str> {
        let ProtoState::Tcp(t) = &self.proto else {
            return None;
        };
        let orig = self.orig_dir(flow).index();
        let o = t.sides[orig].flags;
        let r = t.sides[1 - orig].flags;
        let has = |f: u8, bit: u8| f & bit != 0;
        let r_answered = has(r, SIDE_SYNACK) || has(r, SIDE_SYN);
        let state = if has(o, SIDE_SYN) {
            if !r_answered {
                if has(r, SIDE_RST) {
                    "REJ"
                } else if has(o, SIDE_RST) {
                    "RSTOS0"
                } else if has(o, SIDE_FIN) {
                    "SH"
                } else {
                    "S0"
                }
            } else if has(o, SIDE_RST) {
                "RSTO"
            } else if has(r, SIDE_RST) {
                "RSTR"
            } else if has(o, SIDE_FIN) && has(r, SIDE_FIN) {
                "SF"
            } else if has(o, SIDE_FIN) {
                "S2"
            } else if has(r, SIDE_FIN) {
                "S3"
            } else {
                "S1"
            }
        } else if has(r, SIDE_SYNACK) {
            if has(r, SIDE_RST) {
                "RSTRH"
            } else if has(r, SIDE_FIN) {
                "SHR"
            } else {
                "OTH"
            }
        } else {
            "OTH"
        };
        Some(state)
    }

    /// Zeek-style `history` (TCP flows).
    pub fn history(&self) -> Option<&str> {
        if !matches!(self.proto, ProtoState::Tcp(_)) {
            return None;
        }
        history_str(&self.history)
    }

    /// The originator: the side that sent the first packet, unless that packet was a SYN-ACK
    /// (then its receiver, and the history starts with `^`, as Zeek flips it).
    fn orig_dir(&self, flow: &Flow) -> Direction {
        if self.bits & FLOW_ORIG_REVERSED != 0 {
            flow.first_dir.reverse()
        } else {
            flow.first_dir
        }
    }
}

/// Appends a history letter unless it is already there (or the history is full).
fn note(history: &mut [u8; HISTORY_LEN], letter: u8) {
    for slot in history {
        if *slot == letter {
            return;
        }
        if *slot == 0 {
            *slot = letter;
            return;
        }
    }
}

fn history_str(h: &[u8; HISTORY_LEN]) -> Option<&str> {
    let n = h.iter().position(|&b| b == 0).unwrap_or(HISTORY_LEN);
    let s = std::str::from_utf8(h.get(..n)?).ok()?;
    (!s.is_empty()).then_some(s)
}

impl TcpState {
    fn closed(&self) -> bool {
        self.bits & TCP_CLOSED != 0
    }

    fn close(&mut self, now_ms: u32) {
        if !self.closed() {
            self.bits |= TCP_CLOSED;
            self.close_ms = now_ms;
        }
    }

    /// The window side `r` advertises, in bytes, as the out-of-window check uses it.
    fn window_of(&self, r: usize) -> u32 {
        let (a, b) = (self.sides[0].flags, self.sides[1].flags);
        let handshake = |f: u8| f & (SIDE_SYN | SIDE_SYNACK) != 0;
        let side = self.sides.get(r).copied().unwrap_or_default();
        if !(handshake(a) && handshake(b)) {
            return UNKNOWN_SCALE_WINDOW;
        }
        // RFC 7323: scaling applies only when both SYNs carried the option.
        let scale = if a & b & SIDE_WSOPT != 0 {
            u32::from(side.wscale.min(14))
        } else {
            0
        };
        u32::from(side.win) << scale
    }
}

/// Counters for the `stats` event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraneousStats {
    /// Alerts written.
    pub alerts: u64,
    /// Alerts written, by [`Reason::index`].
    pub alerts_by_reason: [u64; 7],
    /// Flows ended (the active timeout's interim records not counted).
    pub flows: u64,
    /// Of those, flows seen in one direction only.
    pub one_sided_flows: u64,
    /// Flows first seen during the warm-up.
    pub warmup_flows: u64,
    /// Times the warm-up started again after a stretch of packet time with nothing seen.
    pub warmup_restarts: u64,
    /// TCP flows first seen after the warm-up without a SYN or SYN-ACK.
    pub midstream_flows: u64,
    /// Of those, flows that resume a connection remembered from before it idled out.
    pub resumed_flows: u64,
    /// TCP flows first seen after the warm-up with a SYN or SYN-ACK.
    pub handshake_flows: u64,
    /// `no_handshake` verdicts withheld because the feed shows too few handshakes at all
    /// (fewer than one flow opened by a SYN per four midstream flows since the warm-up):
    /// a capture or mirror filter without SYNs, not a flow without one.
    pub handshakeless_feed: u64,
    /// Acknowledgements beyond the peer's data that a later jump of the peer's sequence
    /// numbers explained (packets the capture lost).
    pub capture_gaps: u64,
    /// Held `out_of_window` alerts withdrawn because the receiver acknowledged the packet
    /// (the capture had lost the packets before it).
    pub withdrawn: u64,
    /// Alerts not written because of the rate limit.
    pub rate_limited: u64,
    /// Alerts written at once because the pending table was full.
    pub pending_full: u64,
    /// Offending packets on a flow whose alert for that reason was already written.
    pub after_alert: u64,
    /// Packets eligible for duplicate detection (IPv4 with a non-zero IP id).
    pub duplicate_eligible: u64,
    /// Duplicate packets seen.
    pub duplicates: u64,
    /// Duplicate alerts not written because duplicates exceeded `max_duplicate_share`.
    pub duplicates_suppressed: u64,
    /// Duplicate alerts not written because the host pair's duplicates never made a pattern
    /// of `min_duplicate_packets` (an isolated duplicate: a network glitch).
    pub duplicates_isolated: u64,
    /// Midstream TCP flows shown ordinary by their own packets (one side acknowledged the
    /// other's sequence space).
    pub midstream_verified: u64,
    /// Midstream TCP flows refuted (answered by a RST, or acknowledging something else).
    pub midstream_refuted: u64,
    /// One-sided flows with data or a SYN-ACK left unjudged because their host pair is not
    /// demonstrably seen in both directions (a one-direction feed).
    pub one_sided_unjudged: u64,
    /// Flows inside a mirror (or a tunnel not shown to be an overlay): copies, not judged.
    pub copied_flows: u64,
    /// Repeats not taken for duplicates: broadcast or multicast, the same instant (the
    /// capture recording one frame twice), or a TTL that is neither equal nor one less.
    pub repeats_ignored: u64,
}

impl ExtraneousStats {
    /// Adds another worker's counters.
    pub fn add(&mut self, other: &ExtraneousStats) {
        self.alerts += other.alerts;
        for (a, b) in self.alerts_by_reason.iter_mut().zip(other.alerts_by_reason) {
            *a += b;
        }
        self.flows += other.flows;
        self.one_sided_flows += other.one_sided_flows;
        self.warmup_flows += other.warmup_flows;
        self.warmup_restarts += other.warmup_restarts;
        self.midstream_flows += other.midstream_flows;
        self.resumed_flows += other.resumed_flows;
        self.handshake_flows += other.handshake_flows;
        self.handshakeless_feed += other.handshakeless_feed;
        self.capture_gaps += other.capture_gaps;
        self.withdrawn += other.withdrawn;
        self.rate_limited += other.rate_limited;
        self.pending_full += other.pending_full;
        self.after_alert += other.after_alert;
        self.duplicate_eligible += other.duplicate_eligible;
        self.duplicates += other.duplicates;
        self.duplicates_suppressed += other.duplicates_suppressed;
        self.duplicates_isolated += other.duplicates_isolated;
        self.midstream_verified += other.midstream_verified;
        self.midstream_refuted += other.midstream_refuted;
        self.one_sided_unjudged += other.one_sided_unjudged;
        self.copied_flows += other.copied_flows;
        self.repeats_ignored += other.repeats_ignored;
    }

    /// Counters by stable name, for `stats.extraneous`.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        const BY_REASON: [&str; 7] = [
            "alerts_no_handshake",
            "alerts_after_close",
            "alerts_unsolicited_synack",
            "alerts_ack_unseen_data",
            "alerts_out_of_window",
            "alerts_orphan_response",
            "alerts_duplicate_packet",
        ];
        let per_10000 = (self.one_sided_flows * 10_000)
            .checked_div(self.flows)
            .unwrap_or(0);
        let mut v = vec![
            ("alerts", self.alerts),
            ("flows", self.flows),
            ("one_sided_flows", self.one_sided_flows),
            ("one_sided_per_10000", per_10000),
            ("warmup_flows", self.warmup_flows),
            ("warmup_restarts", self.warmup_restarts),
            ("midstream_flows", self.midstream_flows),
            ("resumed_flows", self.resumed_flows),
            ("handshake_flows", self.handshake_flows),
            ("handshakeless_feed", self.handshakeless_feed),
            ("capture_gaps", self.capture_gaps),
            ("withdrawn", self.withdrawn),
            ("rate_limited", self.rate_limited),
            ("pending_full", self.pending_full),
            ("after_alert", self.after_alert),
            ("duplicate_eligible", self.duplicate_eligible),
            ("duplicates", self.duplicates),
            ("duplicates_suppressed", self.duplicates_suppressed),
            ("duplicates_isolated", self.duplicates_isolated),
            ("midstream_verified", self.midstream_verified),
            ("midstream_refuted", self.midstream_refuted),
            ("one_sided_unjudged", self.one_sided_unjudged),
            ("copied_flows", self.copied_flows),
            ("repeats_ignored", self.repeats_ignored),
        ];
        v.extend(BY_REASON.into_iter().zip(self.alerts_by_reason));
        v
    }
}

/// One offending packet, before it is aggregated.
#[derive(Clone, Copy, Debug)]
struct Offence {
    reason: Reason,
    /// Direction of the offending packet (the alert's `src` sent it).
    dir: Direction,
    ts: Timestamp,
    sample: PacketSample,
    /// Offending packets it stands for.
    count: u64,
    detail: Detail,
    vantage: Option<Vantage>,
    copy: Option<CopyDiff>,
    /// `duplicate_packet`: the host pair's duplicate share at the duplicate, in ppm.
    share_ppm: u64,
    /// `duplicate_packet`: distinct duplicated packets it adds (0 for a further copy of one
    /// already counted).
    dup: u32,
}

/// An alert being aggregated.
#[derive(Clone, Copy, Debug)]
struct Pending {
    key: FlowKey,
    tunnel: Option<FlowTunnel>,
    reason: Reason,
    dir: Direction,
    first: Timestamp,
    last: Timestamp,
    count: u64,
    sample: PacketSample,
    conn_state: Option<&'static str>,
    history: [u8; HISTORY_LEN],
    /// Packets of the flow from `dir` and toward it.
    flow_packets: [u64; 2],
    detail: Detail,
    vantage: Option<Vantage>,
    copy: Option<CopyDiff>,
    share_ppm: u64,
    /// `duplicate_packet`: distinct duplicated packets of the flow in the current pattern
    /// (each within `duplicate_pattern_s` of the previous).
    dup: u32,
    /// A held `duplicate_packet` whose pattern was short at the end of its hold: it waits
    /// (out of the due scan) for its pattern or its flow's end.
    waiting: bool,
    /// The next older pending alert of the same flow.
    next: PendingRef,
    /// `flow_id` of the flow record holding the first offending packet.
    flow_id: u64,
    /// ICMP type and code of the flow's first packet (ICMP flows).
    icmp: Option<(u8, u8)>,
}

/// Pending alerts of one worker: a slab with a free list, reserved once for the capacity and
/// filled on demand (a slot is pushed the first time it is needed, so no page of it is touched
/// before an alert is pending). Slots are handed out in the order a full free list would
/// give them: released slots last in first out, then the lowest never used.
struct PendingTable {
    slots: Vec<Option<Pending>>,
    /// Generation of each pushed slot (parallel to `slots`).
    generations: Vec<u16>,
    /// Released slots (never one not yet pushed).
    free: Vec<u32>,
    /// Hard cap on slots.
    capacity: usize,
}

impl PendingTable {
    fn new(capacity: usize) -> PendingTable {
        // `ExtraneousConfig::validate` bounds the total; this bound only keeps the `u32`
        // conversions below exact.
        let capacity = capacity.clamp(1, MAX_PENDING_CAPACITY);
        PendingTable {
            slots: Vec::with_capacity(capacity),
            generations: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// A vacant slot: the last released, else the next never used (pushed now, into room
    /// `new` reserved, so never a reallocation). `None` when full.
    fn take_slot(&mut self) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        if self.slots.len() < self.capacity {
            self.slots.push(None);
            self.generations.push(0);
            return Some(self.slots.len() as u32 - 1);
        }
        None
    }

    fn get_mut(&mut self, r: PendingRef) -> Option<&mut Pending> {
        let i = r.slot().checked_sub(1)? as usize;
        if self.generations.get(i) != Some(&r.generation()) {
            return None;
        }
        self.slots.get_mut(i)?.as_mut()
    }

    fn insert(&mut self, p: Pending) -> Option<PendingRef> {
        let i = self.take_slot()?;
        let slot = self.slots.get_mut(i as usize)?;
        *slot = Some(p);
        Some(PendingRef::new(
            i + 1,
            self.generations.get(i as usize).copied().unwrap_or(0),
        ))
    }

    fn take_index(&mut self, i: usize) -> Option<Pending> {
        let p = self.slots.get_mut(i)?.take()?;
        if let Some(g) = self.generations.get_mut(i) {
            *g = g.wrapping_add(1) & REF_GENERATION_MASK;
        }
        self.free.push(i as u32);
        Some(p)
    }

    fn take(&mut self, r: PendingRef) -> Option<Pending> {
        self.get_mut(r)?;
        self.take_index(r.slot().checked_sub(1)? as usize)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct DuplicateSlot {
    fingerprint: u64,
    tunnel: u64,
    ts: Timestamp,
    ttl: u8,
    /// A copy of this packet was already taken for a duplicate: a third copy adds no
    /// distinct duplicated packet to the pattern.
    repeated: bool,
}

/// What the duplicate window says of a packet.
enum Repeat {
    /// Not seen within the window.
    New,
    /// A wire duplicate: how the copy differs, and whether it is the first copy of that
    /// packet (a distinct duplicated packet) or a further one.
    Duplicate(CopyDiff, bool),
    /// Seen, but not a duplicate (the same instant, or a TTL further apart).
    Ignored,
}

/// Recent packet fingerprints of one worker, direct-mapped (a collision forgets the older).
struct DuplicateWindow {
    slots: Box<[DuplicateSlot]>,
    window: Duration,
}

/// Slots of the duplicate window per worker (a power of two).
const DUPLICATE_SLOTS: usize = 1 << 13;

impl DuplicateWindow {
    /// Whether `p` repeats a packet seen within the window (in the same tunnel context),
    /// and whether the repeat is a wire duplicate: the same IP id and payload (the
    /// fingerprint), a TTL the same or one less (one router hop at most between the copies),
    /// and some time between them. A copy at the very same instant is the capture host
    /// recording one frame twice (a bridge and its port, or "any"): a device that
    /// duplicates onto a link must serialize the copy after the original. Time is compared
    /// both ways (`abs_diff`): two capture points may stamp the copy a little earlier.
    #[inline]
    fn check(&mut self, p: &PacketMeta) -> Repeat {
        let i = (p.fingerprint as usize) & (DUPLICATE_SLOTS - 1);
        let Some(s) = self.slots.get_mut(i) else {
            return Repeat::New;
        };
        if s.fingerprint == p.fingerprint && s.tunnel == p.key.tunnel && s.ts != Timestamp::ZERO {
            let gap_ns = p.ts.as_nanos().abs_diff(s.ts.as_nanos());
            if gap_ns <= self.window.as_nanos() {
                let ttl_ok = p.ttl == s.ttl || p.ttl.checked_add(1) == Some(s.ttl);
                if gap_ns == 0 || !ttl_ok {
                    return Repeat::Ignored;
                }
                let distinct = !s.repeated;
                s.repeated = true;
                return Repeat::Duplicate(
                    CopyDiff {
                        differs: if p.ttl == s.ttl {
                            "none: the second copy is identical"
                        } else {
                            "ttl: the second copy is one hop further (TTL one less)"
                        },
                        first_ttl: s.ttl,
                        copy_ttl: p.ttl,
                        gap_us: gap_ns / 1_000,
                    },
                    distinct,
                );
            }
        }
        *s = DuplicateSlot {
            fingerprint: p.fingerprint,
            tunnel: p.key.tunnel,
            ts: p.ts,
            ttl: p.ttl,
            repeated: false,
        };
        Repeat::New
    }
}

/// Hashes of unclosed TCP flows that idled out or were evicted, direct-mapped.
struct ResumeMemory {
    slots: Box<[u64]>,
    hasher: foldhash::quality::SeedableRandomState,
}

impl ResumeMemory {
    fn hash(&self, key: &FlowKey) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key) | 1
    }

    fn remember(&mut self, key: &FlowKey) {
        let h = self.hash(key);
        let n = self.slots.len();
        if let Some(s) = self.slots.get_mut((h as usize) % n.max(1)) {
            *s = h;
        }
    }

    fn recalls(&self, key: &FlowKey) -> bool {
        let h = self.hash(key);
        let n = self.slots.len();
        self.slots.get((h as usize) % n.max(1)) == Some(&h)
    }
}

/// How many flows of a host pair the sensor saw, and how many in both directions: the
/// vantage point, measured where the data supports it. A worker sees every flow of a host
/// pair (dispatch by IP pair), so the measure is the same whatever the worker count.
/// Direct-mapped by a seeded hash (a collision starts the slot over: it forgets, never
/// invents, two-sidedness).
struct VantageTable {
    slots: Box<[PairSides]>,
    hasher: foldhash::quality::SeedableRandomState,
}

#[derive(Clone, Copy, Debug, Default)]
struct PairSides {
    tag: u64,
    flows: u32,
    two_sided: u32,
    /// Packets eligible for duplicate detection, and duplicates among them.
    eligible: u32,
    duplicates: u32,
    /// Latest IP id per direction ([`Direction::index`]), and whether it ever changed.
    last_ip_id: [u32; 2],
    ip_id_varies: [bool; 2],
}

/// Host pairs measured per worker (a power of two; 4096 slots of 40 bytes stay in cache: one
/// look-up per eligible packet).
const VANTAGE_SLOTS: usize = 1 << 12;

impl VantageTable {
    fn slot(&mut self, key: &FlowKey) -> Option<&mut PairSides> {
        use std::hash::BuildHasher;
        let tag = self.hasher.hash_one((key.lo_addr, key.hi_addr, key.tunnel)) | 1;
        let n = self.slots.len();
        let s = self.slots.get_mut((tag as usize) & (n.max(1) - 1))?;
        if s.tag != tag {
            *s = PairSides {
                tag,
                ..PairSides::default()
            };
        }
        Some(s)
    }

    fn note_flow(&mut self, key: &FlowKey) {
        if let Some(s) = self.slot(key) {
            s.flows = s.flows.saturating_add(1);
        }
    }

    fn note_two_sided(&mut self, key: &FlowKey) {
        if let Some(s) = self.slot(key) {
            s.two_sided = s.two_sided.saturating_add(1);
        }
    }

    /// The host pair of a one-sided flow, that flow left out.
    fn others(&mut self, key: &FlowKey) -> Vantage {
        let (flows, two_sided) = self.slot(key).map_or((0, 0), |s| {
            (u64::from(s.flows.saturating_sub(1)), u64::from(s.two_sided))
        });
        Vantage {
            scope: "host_pair",
            flows,
            two_sided,
            two_sided_pct: (two_sided * 100).checked_div(flows).unwrap_or(0).min(100),
        }
    }

    fn clear(&mut self) {
        self.slots.fill(PairSides::default());
    }
}

impl PairSides {
    /// One packet eligible for duplicate detection; the host pair's duplicate share after
    /// it, in parts per million. Per host pair, not per worker: the same whatever the worker
    /// count (a capture that duplicates everything duplicates every pair).
    fn note_eligible(&mut self, duplicate: bool) -> u64 {
        self.eligible = self.eligible.saturating_add(1);
        if duplicate {
            self.duplicates = self.duplicates.saturating_add(1);
        }
        (u64::from(self.duplicates) * 1_000_000)
            .checked_div(u64::from(self.eligible))
            .unwrap_or(0)
    }

    /// Notes the IP id of a packet from `dir`; whether that sender's IP id has varied within
    /// this host pair. A stack that sends every packet of a pair with one IP id (some UDP
    /// stacks, RakNet game servers) makes an application's resend look identical: its IP id
    /// identifies nothing, so its repeats are no duplicate evidence.
    fn note_ip_id(&mut self, dir: Direction, ip_id: u32) -> bool {
        let d = dir.index();
        let (Some(last), Some(varies)) = (self.last_ip_id.get_mut(d), self.ip_id_varies.get_mut(d))
        else {
            return false;
        };
        if *last != 0 && *last != ip_id {
            *varies = true;
        }
        *last = ip_id;
        *varies
    }
}

impl Vantage {
    /// Whether the sensor demonstrably sees both directions of this host pair.
    fn two_sided(&self) -> bool {
        self.two_sided > 0 && self.two_sided_pct >= MIN_TWO_SIDED_PCT
    }
}

/// Alerts allowed per second of packet time, with a burst.
struct TokenBucket {
    /// Tokens per second; 0 = unlimited.
    rate: u64,
    /// Capacity, in token-nanoseconds.
    cap: u64,
    /// Available, in token-nanoseconds (one token = 1e9).
    level: u64,
    last: Timestamp,
}

impl TokenBucket {
    fn take(&mut self, now: Timestamp) -> bool {
        if self.rate == 0 {
            return true;
        }
        let elapsed = now.saturating_since(self.last).as_nanos();
        if now > self.last {
            self.last = now;
        }
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.cap);
        if self.level >= 1_000_000_000 {
            self.level -= 1_000_000_000;
            true
        } else {
            false
        }
    }
}

/// The extraneous-packet detector of one worker.
pub struct ExtraneousDetector {
    enabled: bool,
    /// Workers sharing the configured totals (rate limit, capacities).
    workers: u64,
    warmup: Duration,
    /// A stretch of packet time with nothing seen that restarts the warm-up: the longer of
    /// the warm-up and the flow idle timeout (every flow has ended by then).
    blind: Duration,
    hold: Duration,
    close_tolerance_ms: u32,
    reorder_ms: u32,
    window_slack: u32,
    max_duplicate_ppm: u64,
    duplicate_window_ms: u64,
    min_duplicate_packets: u32,
    /// Longest gap between two duplicated packets of one pattern.
    duplicate_pattern: Duration,
    /// Start of the capture (the pipeline's, the same for every worker) or, before the
    /// pipeline says, of the run as this worker saw it.
    start: Option<Timestamp>,
    /// The capture start the pipeline gave (`observe_epoch`).
    epoch: Option<Timestamp>,
    /// TCP flows opened by a SYN or SYN-ACK, and midstream ones, since the warm-up started.
    since_start_handshakes: u64,
    since_start_midstream: u64,
    clock: Timestamp,
    last_scan_s: u64,
    /// The earliest end of a hold among the pending alerts (`None`: none pending), so the
    /// once-a-second scan runs only when an alert is due.
    next_due: Option<Timestamp>,
    pending: PendingTable,
    duplicates: DuplicateWindow,
    resume: ResumeMemory,
    vantage: VantageTable,
    bucket: TokenBucket,
    stats: ExtraneousStats,
}

impl ExtraneousDetector {
    /// A detector for one of `workers` workers, from `[extraneous]` and the flow idle timeout.
    pub fn new(
        c: &ExtraneousConfig,
        flow_idle_timeout: Duration,
        workers: usize,
    ) -> ExtraneousDetector {
        let workers = workers.max(1) as u64;
        let share = |total: u64| total.div_ceil(workers);
        let enabled = c.enabled;
        // A disabled detector keeps nothing but its counters.
        let sized = |n: usize| if enabled { n } else { 1 };
        // The tunings (everything but the table sizes) are set by `reload`, the one place
        // that turns the `[extraneous]` section into them; the bucket starts full.
        let mut detector = ExtraneousDetector {
            enabled,
            workers,
            warmup: Duration::ZERO,
            blind: Duration::ZERO,
            hold: Duration::ZERO,
            close_tolerance_ms: 0,
            reorder_ms: 0,
            window_slack: 0,
            max_duplicate_ppm: 0,
            duplicate_window_ms: 0,
            min_duplicate_packets: 1,
            duplicate_pattern: Duration::ZERO,
            start: None,
            epoch: None,
            since_start_handshakes: 0,
            since_start_midstream: 0,
            clock: Timestamp::ZERO,
            last_scan_s: 0,
            next_due: None,
            pending: PendingTable::new(sized(share(c.pending_capacity as u64) as usize)),
            duplicates: DuplicateWindow {
                slots: vec![DuplicateSlot::default(); sized(DUPLICATE_SLOTS)].into_boxed_slice(),
                window: Duration::ZERO,
            },
            resume: ResumeMemory {
                slots: vec![0; sized(share(c.resume_memory as u64).max(1) as usize)]
                    .into_boxed_slice(),
                hasher: foldhash::quality::SeedableRandomState::random(),
            },
            vantage: VantageTable {
                slots: vec![PairSides::default(); sized(VANTAGE_SLOTS)].into_boxed_slice(),
                hasher: foldhash::quality::SeedableRandomState::random(),
            },
            bucket: TokenBucket {
                rate: 0,
                cap: 0,
                level: u64::MAX,
                last: Timestamp::ZERO,
            },
            stats: ExtraneousStats::default(),
        };
        detector.reload(c, flow_idle_timeout);
        detector
    }

    /// Applies a reloaded configuration in place: the warm-up (still counted from the start
    /// of the run), hold, tolerances, window slack, duplicate window and share, and the rate
    /// limit (tokens beyond a smaller burst are dropped). `enabled`, `pending_capacity` and
    /// `resume_memory` keep their start values: the tables were sized then (the pipeline
    /// passes a configuration where they are unchanged, see `Config::reloaded`). Flows
    /// already in the table are judged by the new values from their next packet on.
    pub fn reload(&mut self, c: &ExtraneousConfig, flow_idle_timeout: Duration) {
        let share = |total: u64| total.div_ceil(self.workers);
        self.warmup = Duration::from_secs(c.warmup_s);
        self.blind = self.warmup.max(flow_idle_timeout);
        self.duplicate_window_ms = c.duplicate_window_ms;
        self.hold = Duration::from_secs(c.hold_s);
        self.close_tolerance_ms = c.close_tolerance_ms as u32;
        self.reorder_ms = c.reorder_ms as u32;
        self.window_slack = c.window_slack_bytes;
        self.max_duplicate_ppm = (c.max_duplicate_share * 1e6) as u64;
        self.duplicates.window = Duration::from_millis(c.duplicate_window_ms);
        self.min_duplicate_packets = c.min_duplicate_packets;
        self.duplicate_pattern = Duration::from_secs(c.duplicate_pattern_s);
        let burst = share(c.rate_limit_burst).max(1);
        self.bucket.rate = share(c.rate_limit_per_s);
        self.bucket.cap = burst.saturating_mul(1_000_000_000);
        self.bucket.level = self.bucket.level.min(self.bucket.cap);
        // A held alert may be due sooner under a shorter hold: scan at the next tick.
        if self.next_due.is_some() {
            self.next_due = Some(self.clock);
        }
    }

    /// Whether `p` opens a new connection on the key of a closed flow: a SYN after a RST or
    /// after FINs from both sides (port reuse after TIME_WAIT).
    pub fn restarts_flow(&self, flow: &Flow, p: &PacketMeta) -> bool {
        if !self.enabled || p.tcp_flags & (SYN | ACK | RST) != SYN {
            return false;
        }
        let ProtoState::Tcp(t) = &flow.ext.extraneous.proto else {
            return false;
        };
        let fins = t.sides[0].flags & t.sides[1].flags & SIDE_FIN != 0;
        t.closed() || fins
    }

    /// One packet.
    pub fn on_packet(
        &mut self,
        flow: &mut Flow,
        new: bool,
        p: &PacketMeta,
        ctx: PacketContext,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        if !self.enabled {
            return Ok(());
        }
        self.observe_time(p.ts);
        let warm_end = self.start.unwrap_or(p.ts) + self.warmup;
        let st = &mut flow.ext.extraneous;
        if new || st.bits & FLOW_INIT == 0 {
            *st = FlowState {
                bits: FLOW_INIT,
                first_flags: p.tcp_flags,
                ..FlowState::default()
            };
            if p.ts < warm_end {
                st.bits |= FLOW_WARMUP;
                self.stats.warmup_flows += 1;
            }
            // Inner flows of a mirror are copies (evidence for the mirror detector). So are,
            // until shown otherwise, those of a tunnel still `unknown`: a mirror's first
            // packets come before its classification, and an overlay is decided within a few
            // packets, its later flows judged as native ones.
            if p.link_class.is_some_and(|c| c != LinkClass::Overlay) {
                st.bits |= FLOW_COPY;
                self.stats.copied_flows += 1;
            }
            if flow.key.proto == IpProto::TCP && p.tcp.is_some() {
                st.proto = ProtoState::Tcp(TcpState::default());
            }
            self.vantage.note_flow(&flow.key);
        }
        if p.link_class == Some(LinkClass::Mirror) && st.bits & FLOW_COPY == 0 {
            st.bits |= FLOW_COPY;
            self.stats.copied_flows += 1;
        }
        let copy = st.bits & FLOW_COPY != 0;
        let packets = flow.counters.packets;
        let other = packets[p.dir.reverse().index()];
        if packets[p.dir.index()] == 1 && other > 0 {
            // This packet made the flow two-sided.
            self.vantage.note_two_sided(&flow.key);
        }
        let mut found: ArrayVec<Offence, 4> = ArrayVec::new();
        // A packet from an address to itself is loopback traffic (a Linux capture on "any"
        // shows it twice, sent and received); it never crosses a mirrored link.
        let self_addressed = flow.key.lo_addr == flow.key.hi_addr;
        if p.fingerprint != 0 && p.ip_id != 0 && !self_addressed {
            self.stats.duplicate_eligible += 1;
            // One look-up of the host pair per eligible packet.
            let mut pair = self.vantage.slot(&flow.key);
            let id_varies = pair
                .as_deref_mut()
                .is_some_and(|s| s.note_ip_id(p.dir, p.ip_id));
            let repeat = self.duplicates.check(p);
            // Broadcast and multicast are repeated by design (service announcements, DHCP)
            // and reach the capture by several paths: never duplicate evidence. The address
            // is looked at only for a repeat (rare), not for every eligible packet.
            let duplicate = matches!(repeat, Repeat::Duplicate(..))
                && id_varies
                && !group_address(flowtable::key::addr_to_ip(match p.dir {
                    Direction::LoToHi => flow.key.hi_addr,
                    Direction::HiToLo => flow.key.lo_addr,
                }));
            let share_ppm = pair.map_or(0, |s| s.note_eligible(duplicate));
            match repeat {
                Repeat::Duplicate(diff, distinct) if duplicate => {
                    self.stats.duplicates += 1;
                    found.push(Offence {
                        reason: Reason::DuplicatePacket,
                        dir: p.dir,
                        ts: p.ts,
                        sample: sample_of(p),
                        count: 1,
                        detail: Detail::None,
                        vantage: None,
                        copy: Some(diff),
                        share_ppm,
                        dup: u32::from(distinct),
                    });
                }
                Repeat::Duplicate(..) | Repeat::Ignored => self.stats.repeats_ignored += 1,
                Repeat::New => {}
            }
        }
        match p.app {
            AppHint::Dns { id, response, .. } => self.dns(flow, p, id, response, &mut found),
            AppHint::IcmpError { quoted } => {
                if ctx.quoted_flow_seen == Some(false) && p.ts >= warm_end {
                    let mut sample = sample_of(p);
                    sample.quoted = Some(QuotedFlow {
                        src_ip: quoted.lo_ip(),
                        src_port: quoted.lo_port,
                        dest_ip: quoted.hi_ip(),
                        dest_port: quoted.hi_port,
                        proto: ProtoName(quoted.proto),
                    });
                    found.push(Offence {
                        reason: Reason::OrphanResponse,
                        dir: p.dir,
                        ts: p.ts,
                        sample,
                        count: 1,
                        detail: Detail::None,
                        vantage: None,
                        copy: None,
                        share_ppm: 0,
                        dup: 0,
                    });
                }
            }
            AppHint::None => {}
        }
        if p.tcp.is_some() {
            self.tcp(flow, new, p, &mut found);
        }
        // The TTL each side started the flow with (this packet's side noted now), for the
        // evidence.
        let flow_ttls = match &mut flow.ext.extraneous.proto {
            ProtoState::Tcp(t) => {
                // As one 16-bit word in a register, stored whole: a two-byte read of the pair
                // just after a one-byte store into it stalled on store forwarding (a quarter
                // of this function's time).
                let shift = 8 * p.dir.index() as u32;
                let mut ttls = u16::from_le_bytes(t.ttl);
                if (ttls >> shift) & 0xff == 0 {
                    ttls |= u16::from(p.ttl) << shift;
                    t.ttl = ttls.to_le_bytes();
                }
                Some(ttls.to_le_bytes())
            }
            _ => None,
        };
        if self_addressed || copy {
            // Loopback traffic never crosses a mirrored link, and a copy inside a mirror is
            // the mirror's evidence: nothing to judge.
            return Ok(());
        }
        if found.is_empty() {
            // `for o in found` moves the whole array (nearly 1 KB) into its iterator, a copy
            // on every packet though offences are rare.
            return Ok(());
        }
        for mut o in found {
            // The offending packet is this one, or (an acknowledgement judged later) one
            // whose TTL its sample kept.
            let ttl = if o.dir == p.dir {
                Some(p.ttl)
            } else {
                o.sample.ttl
            };
            let first = flow_ttls.and_then(|t| t.get(o.dir.index()).copied());
            o.sample.ttl = None;
            if let (Some(ttl), Some(first)) = (ttl, first.filter(|f| *f != 0)) {
                o.sample.ttl = Some(ttl);
                o.sample.flow_ttl = Some(first);
                o.sample.ttl_difference = Some(i16::from(first) - i16::from(ttl));
            }
            self.offend(flow, o, sink)?;
        }
        Ok(())
    }

    fn dns(
        &mut self,
        flow: &mut Flow,
        p: &PacketMeta,
        id: u16,
        response: bool,
        found: &mut ArrayVec<Offence, 4>,
    ) {
        let packets = flow.counters.packets;
        let st = &mut flow.ext.extraneous;
        if matches!(st.proto, ProtoState::Other) {
            st.proto = ProtoState::Dns(DnsState::default());
        }
        let ProtoState::Dns(dns) = &mut st.proto else {
            return;
        };
        let bit = u32::from(id % 64);
        let word = |dir: Direction| dir.index() * 2 + (bit / 32) as usize;
        if !response {
            if let Some(w) = dns.queries.get_mut(word(p.dir)) {
                *w |= 1 << (bit % 32);
            }
            return;
        }
        let asker = p.dir.reverse();
        let asked = dns
            .queries
            .get(word(asker))
            .is_some_and(|w| w & (1 << (bit % 32)) != 0);
        // One-sided flows are never judged: the asking side must be visible.
        let asker_seen = packets[asker.index()] > 0;
        if !asked && asker_seen && st.bits & FLOW_WARMUP == 0 {
            let mut sample = sample_of(p);
            sample.dns_id = Some(id);
            found.push(Offence {
                reason: Reason::OrphanResponse,
                dir: p.dir,
                ts: p.ts,
                sample,
                count: 1,
                detail: Detail::None,
                vantage: None,
                copy: None,
                share_ppm: 0,
                dup: 0,
            });
        }
    }

    fn tcp(
        &mut self,
        flow: &mut Flow,
        new: bool,
        p: &PacketMeta,
        found: &mut ArrayVec<Offence, 4>,
    ) {
        let Some(tcp) = p.tcp else {
            return;
        };
        let packets = flow.counters.packets;
        let first_seen = flow.counters.first_seen;
        let first_dir = flow.first_dir;
        let key = flow.key;
        let FlowState {
            proto,
            history,
            bits,
            first_flags,
            ..
        } = &mut flow.ext.extraneous;
        let ProtoState::Tcp(t) = proto else {
            return;
        };
        let flags = tcp.flags;
        let (syn, ackf, fin, rst) = (
            flags & SYN != 0,
            flags & ACK != 0,
            flags & FIN != 0,
            flags & RST != 0,
        );
        let d = p.dir.index();
        let o = 1 - d;
        let len = tcp.payload_len;
        let seq_end = tcp
            .seq
            .wrapping_add(len)
            .wrapping_add(u32::from(syn))
            .wrapping_add(u32::from(fin));
        let now_ms = ms(p.ts);

        if new {
            if syn && ackf {
                *bits |= FLOW_ORIG_REVERSED;
                note(history, b'^');
            }
            if *bits & FLOW_WARMUP == 0 && syn {
                self.stats.handshake_flows += 1;
                self.since_start_handshakes += 1;
            }
            if *bits & FLOW_WARMUP == 0 && !syn {
                self.stats.midstream_flows += 1;
                self.since_start_midstream += 1;
                if self.resume.recalls(&key) {
                    self.stats.resumed_flows += 1;
                } else {
                    *bits |= FLOW_CANDIDATE_NO_HANDSHAKE;
                }
            } else if *bits & FLOW_WARMUP == 0 && syn && ackf {
                *bits |= FLOW_CANDIDATE_SYNACK;
            }
        }
        let orig = if *bits & FLOW_ORIG_REVERSED != 0 {
            first_dir.reverse()
        } else {
            first_dir
        };
        let case = |c: u8| {
            if p.dir == orig {
                c.to_ascii_uppercase()
            } else {
                c
            }
        };

        // The receiver acknowledges the packet held as out of window: it was in the window
        // after all (the capture lost what came between), so the held alert is withdrawn and
        // the sender's stream taken to reach that far.
        let mut withdraw = false;
        // Past the alert's hold the out-of-window alert is written and can no longer be
        // withdrawn: the slot is free again, or one junk segment the receiver never
        // acknowledges would keep every later acknowledgement of unseen data in the flow
        // from being judged.
        let hold_ms = i64::try_from(self.hold.as_nanos() / 1_000_000).unwrap_or(i64::MAX);
        if t.bits & TCP_OOW != 0 && elapsed_ms(now_ms, t.claim_ms) > hold_ms {
            t.bits &= !(TCP_OOW | TCP_OOW_HI);
        }
        let oow_by_peer = t.bits & TCP_OOW != 0 && (t.bits & TCP_OOW_HI != 0) == (o == 1);
        if oow_by_peer && ackf && !seq_lt(tcp.ack, t.claim_ack) {
            t.bits &= !(TCP_OOW | TCP_OOW_HI);
            withdraw = true;
            let end = t.claim_ack;
            let sender = &mut t.sides[o];
            if seq_gt(end, sender.nxt) {
                sender.nxt = end;
            }
        }
        let me = t.sides[d];
        let peer = t.sides[o];
        let mut ignore = false;

        // After a RST or a completed FIN exchange: only late ACKs, RSTs and retransmissions.
        if t.closed() {
            let carries = len > 0 || fin || syn;
            let beyond = me.flags & SIDE_SEQ == 0 || seq_gt(seq_end, me.nxt);
            let new_space = (syn && ackf) || (carries && beyond);
            // Signed: a packet stamped before the close (in flight, or from a capture point
            // a little behind) is within the tolerance, not 49 days after it.
            let since = elapsed_ms(now_ms, t.close_ms);
            if !rst && new_space && since > i64::from(self.close_tolerance_ms) {
                let mut sample = sample_of(p);
                sample.since_close_ms = Some(since.unsigned_abs());
                found.push(Offence {
                    reason: Reason::AfterClose,
                    dir: p.dir,
                    ts: p.ts,
                    sample,
                    count: 1,
                    detail: Detail::None,
                    vantage: None,
                    copy: None,
                    share_ppm: 0,
                    dup: 0,
                });
            }
        }

        // Far outside the receiver's window (both directions visible). A bare ACK carries
        // nothing a receiver would take in (it is dropped, RFC 5961 §5), and broken sequence
        // rewriting (anonymisers, some middleboxes) produces exactly those: only a segment
        // with data, FIN or RST is judged.
        let carries_something = len > 0 || fin || rst;
        if !syn && carries_something && peer.flags & SIDE_ACKED != 0 {
            let win = t.window_of(o);
            let slack = i64::from(self.window_slack);
            let ahead_limit = i64::from(win) + slack;
            let behind_limit = i64::from(win.max(MIN_WINDOW)) * 2 + slack;
            let dist = i64::from(tcp.seq.wrapping_sub(peer.ack) as i32);
            let own = if me.flags & SIDE_SEQ != 0 {
                i64::from(tcp.seq.wrapping_sub(me.nxt) as i32)
            } else {
                dist
            };
            // Ahead of both what the receiver allows and what this side sent before.
            let ahead = dist > ahead_limit && own > ahead_limit;
            let behind = dist + i64::from(len) < -behind_limit;
            if ahead || behind {
                ignore = true;
                if ahead && t.bits & (TCP_CLAIM | TCP_OOW) == 0 {
                    t.claim_ack = seq_end;
                    t.claim_ms = now_ms;
                    t.bits |= TCP_OOW;
                    if d == 1 {
                        t.bits |= TCP_OOW_HI;
                    } else {
                        t.bits &= !TCP_OOW_HI;
                    }
                }
                let mut sample = sample_of(p);
                sample.receiver_ack = Some(peer.ack);
                sample.receiver_window = Some(win);
                found.push(Offence {
                    reason: Reason::OutOfWindow,
                    dir: p.dir,
                    ts: p.ts,
                    sample,
                    count: 1,
                    detail: Detail::None,
                    vantage: None,
                    copy: None,
                    share_ppm: 0,
                    dup: 0,
                });
            }
        }

        // A claim by the peer that this side's data was received: this packet settles it.
        let claim_from_peer = t.bits & TCP_CLAIM != 0 && (t.bits & TCP_CLAIM_HI != 0) == (o == 1);
        if claim_from_peer && !ignore {
            let x = t.claim_ack;
            // Signed: segments stamped before the acknowledgement (two capture points out of
            // step) have not waited at all.
            let waited = elapsed_ms(now_ms, t.claim_ms);
            if !seq_lt(tcp.seq.wrapping_add(1), x) {
                // This side's stream jumped past the acknowledged point: the capture lost
                // the segments in between.
                self.stats.capture_gaps += 1;
                t.bits &= !(TCP_CLAIM | TCP_CLAIM_HI);
            } else if !seq_lt(seq_end, x) {
                // Late segments filled the gap (reordering).
                t.bits &= !(TCP_CLAIM | TCP_CLAIM_HI);
            } else if waited > i64::from(self.reorder_ms) {
                // This side goes on below the acknowledged point: that data was never sent.
                let sample = PacketSample {
                    tcp_flags: Some(HexByte(ACK)),
                    ack: Some(x),
                    peer_next_seq: Some(me.nxt),
                    ttl: Some(t.claim_ttl),
                    ..PacketSample::default()
                };
                found.push(Offence {
                    reason: Reason::AckUnseenData,
                    dir: p.dir.reverse(),
                    ts: p.ts - Duration::from_millis(waited.unsigned_abs()),
                    sample,
                    count: 1,
                    detail: Detail::None,
                    vantage: None,
                    copy: None,
                    share_ppm: 0,
                    dup: 0,
                });
                t.bits &= !(TCP_CLAIM | TCP_CLAIM_HI);
            }
        }

        if !ignore {
            let side = &mut t.sides[d];
            if syn {
                // A SYN (or its retransmission with a new ISN) sets the side's sequence space.
                side.nxt = seq_end;
                side.flags |= SIDE_SEQ | if ackf { SIDE_SYNACK } else { SIDE_SYN };
                if let Some(ws) = tcp.window_scale {
                    side.flags |= SIDE_WSOPT;
                    side.wscale = ws;
                }
            } else if side.flags & SIDE_SEQ == 0 || seq_gt(seq_end, side.nxt) {
                side.nxt = seq_end;
                side.flags |= SIDE_SEQ;
            }
            side.win = tcp.window;
            if fin {
                side.flags |= SIDE_FIN;
            }
            if ackf {
                let acked = if peer.flags & SIDE_SEQ != 0 && seq_gt(tcp.ack, peer.nxt) {
                    // Beyond everything the peer sent: held as a claim until the peer's next
                    // packet says whether the capture lost data or the data never existed.
                    if t.bits & (TCP_CLAIM | TCP_OOW) == 0 {
                        t.claim_ack = tcp.ack;
                        t.claim_ms = now_ms;
                        t.claim_ttl = p.ttl;
                        t.bits |= TCP_CLAIM;
                        if d == 1 {
                            t.bits |= TCP_CLAIM_HI;
                        } else {
                            t.bits &= !TCP_CLAIM_HI;
                        }
                    }
                    peer.nxt
                } else {
                    tcp.ack
                };
                let side = &mut t.sides[d];
                if side.flags & SIDE_ACKED == 0 || seq_gt(acked, side.ack) {
                    side.ack = acked;
                }
                side.flags |= SIDE_ACKED;
            }
            if rst {
                t.sides[d].flags |= SIDE_RST;
                t.close(now_ms);
            }
            let (a, b) = (t.sides[d], t.sides[o]);
            let both_fin = a.flags & b.flags & SIDE_FIN != 0;
            let both_acked = a.flags & b.flags & SIDE_ACKED != 0;
            if both_fin && both_acked && !seq_lt(b.ack, a.nxt) && !seq_lt(a.ack, b.nxt) {
                t.close(now_ms);
            }
        }

        // History letters (upper case: the originator).
        let retransmit = len > 0 && me.flags & SIDE_SEQ != 0 && !seq_gt(seq_end, me.nxt);
        if syn && ackf {
            note(history, case(b'h'));
        } else if syn {
            note(history, case(b's'));
        }
        if rst {
            note(history, case(b'r'));
        }
        if fin {
            note(history, case(b'f'));
        }
        if len > 0 {
            note(history, case(b'd'));
        } else if ackf && !syn && !fin && !rst {
            note(history, case(b'a'));
        }
        if retransmit {
            note(history, case(b't'));
        }
        if len > 1 {
            *bits |= FLOW_DATA;
        }

        // Midstream flows are judged once both directions are visible.
        let two_sided = packets[0] > 0 && packets[1] > 0;
        // The answer to a SYN-ACK without a SYN: the late SYN (reordered handshake) or an ACK
        // of it (the capture missed the SYN) say it was solicited; a RST or anything else
        // says it was not.
        let solicited =
            (syn && !ackf) || (ackf && !rst && tcp.ack == t.sides[first_dir.index()].nxt);
        if *bits & FLOW_CANDIDATE_SYNACK != 0 && p.dir != first_dir && solicited {
            *bits &= !FLOW_CANDIDATE_SYNACK;
        }
        if *bits & FLOW_CANDIDATE_SYNACK != 0 && two_sided {
            *bits &= !FLOW_CANDIDATE_SYNACK;
            found.push(Offence {
                reason: Reason::UnsolicitedSynack,
                dir: first_dir,
                ts: first_seen,
                sample: PacketSample {
                    tcp_flags: Some(HexByte(*first_flags)),
                    ..PacketSample::default()
                },
                count: packets[first_dir.index()],
                detail: if rst {
                    Detail::AnsweredRst
                } else {
                    Detail::AcksOtherData
                },
                vantage: None,
                copy: None,
                share_ppm: 0,
                dup: 0,
            });
        }
        if *bits & FLOW_NO_HANDSHAKE != 0 {
            found.push(Offence {
                reason: Reason::NoHandshake,
                dir: first_dir,
                ts: first_seen,
                sample: PacketSample::default(),
                count: 1,
                detail: Detail::None,
                vantage: None,
                copy: None,
                share_ppm: 0,
                dup: 0,
            });
        } else if *bits & FLOW_CANDIDATE_NO_HANDSHAKE != 0 && two_sided {
            // Midstream (or resumed after a long idle gap): decided by what the two sides
            // do, not by a clock. Ordinary when one side acknowledges within reach of what
            // the other sent (or sends where the other acknowledged); extraneous when the
            // answer is a RST that does not know the sender's sequence space, or an
            // acknowledgement of something else.
            let (me, peer) = (t.sides[d], t.sides[o]);
            let near = |a: u32, b: u32| {
                a.wrapping_sub(b).wrapping_add(MIDSTREAM_RANGE) <= 2 * MIDSTREAM_RANGE
            };
            let by_ack = (ackf && peer.flags & SIDE_SEQ != 0).then(|| near(tcp.ack, peer.nxt));
            let by_seq = (!rst && peer.flags & SIDE_ACKED != 0 && me.flags & SIDE_SEQ != 0)
                .then(|| near(tcp.seq, peer.ack) || near(seq_end, peer.ack));
            let verdict = match (rst, by_ack, by_seq) {
                (_, Some(true), _) | (false, None, Some(true)) => Some(Detail::None),
                // A RST answering retransmitted data: a half-open connection (RFC 9293
                // §3.5.3: the peer forgot it, the sender still retransmits), not injection.
                (true, _, _) if retransmitted(history) => Some(Detail::None),
                (true, _, _) => Some(Detail::AnsweredRst),
                (false, Some(false), _) | (false, None, Some(false)) => Some(Detail::AcksOtherData),
                (false, None, None) => None,
            };
            match verdict {
                Some(Detail::None) => {
                    *bits &= !FLOW_CANDIDATE_NO_HANDSHAKE;
                    self.stats.midstream_verified += 1;
                }
                Some(detail) => {
                    *bits &= !FLOW_CANDIDATE_NO_HANDSHAKE;
                    self.stats.midstream_refuted += 1;
                    if *bits & FLOW_DATA != 0 {
                        *bits |= FLOW_NO_HANDSHAKE;
                        found.push(Offence {
                            reason: Reason::NoHandshake,
                            dir: first_dir,
                            ts: first_seen,
                            sample: PacketSample {
                                tcp_flags: Some(HexByte(*first_flags)),
                                ..PacketSample::default()
                            },
                            count: packets[0] + packets[1],
                            detail,
                            vantage: None,
                            copy: None,
                            share_ppm: 0,
                            dup: 0,
                        });
                    }
                }
                None => {}
            }
        }
        if withdraw {
            self.withdraw(flow, Reason::OutOfWindow);
        }
    }

    /// Withdraws the held alert of `reason` on `flow` (if it is still held).
    fn withdraw(&mut self, flow: &Flow, reason: Reason) {
        let mut r = flow.ext.extraneous.pending;
        while let Some(e) = self.pending.get_mut(r) {
            if e.key == flow.key && e.reason == reason {
                if e.count > 0 {
                    e.count = 0;
                    self.stats.withdrawn += 1;
                }
                return;
            }
            r = e.next;
        }
    }

    /// Aggregates one offending packet into its flow's alert for that reason.
    fn offend(
        &mut self,
        flow: &mut Flow,
        o: Offence,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        let conn_state = flow.ext.extraneous.conn_state(flow);
        let tunnel = flow.ext.tunnel(&flow.key);
        let st = &mut flow.ext.extraneous;
        let history = st.history;
        let packets = flow.counters.packets;
        let key = flow.key;
        if st.reported & o.reason.bit() != 0 {
            let mut r = st.pending;
            while let Some(e) = self.pending.get_mut(r) {
                if e.key == key && e.reason == o.reason {
                    if e.count == 0 {
                        // A withdrawn alert starts again from this packet.
                        e.first = o.ts;
                        e.dir = o.dir;
                        e.sample = o.sample;
                        e.detail = o.detail;
                        e.copy = o.copy;
                    }
                    if o.dup > 0 && o.ts.saturating_since(e.last) > self.duplicate_pattern {
                        // Too long since the previous duplicate: a new pattern starts.
                        e.dup = 0;
                    }
                    e.dup = e.dup.saturating_add(o.dup);
                    // The host pair's share at the latest duplicate: a pattern's first
                    // duplicate may come early in the pair's life, when one packet is a
                    // large share.
                    e.share_ppm = o.share_ppm;
                    e.count = e.count.saturating_add(o.count);
                    if o.ts > e.last {
                        e.last = o.ts;
                    }
                    if e.waiting && e.dup >= self.min_duplicate_packets {
                        // The pattern is complete: due at the next scan.
                        e.waiting = false;
                        self.next_due = Some(o.ts);
                    }
                    e.conn_state = conn_state;
                    e.history = history;
                    e.flow_packets = [packets[e.dir.index()], packets[e.dir.reverse().index()]];
                    return Ok(());
                }
                r = e.next;
            }
            self.stats.after_alert = self.stats.after_alert.saturating_add(o.count);
            return Ok(());
        }
        st.reported |= o.reason.bit();
        let flow_id = crate::alert::flow_id(&key, flow.counters.first_seen);
        let icmp = flow.ext.icmp(&key);
        let st = &mut flow.ext.extraneous;
        let entry = Pending {
            flow_id,
            icmp,
            key,
            tunnel,
            reason: o.reason,
            dir: o.dir,
            first: o.ts,
            last: o.ts,
            count: o.count,
            sample: o.sample,
            conn_state,
            history,
            flow_packets: [packets[o.dir.index()], packets[o.dir.reverse().index()]],
            detail: o.detail,
            vantage: o.vantage,
            copy: o.copy,
            share_ppm: o.share_ppm,
            dup: o.dup,
            waiting: false,
            next: st.pending,
        };
        match self.pending.insert(entry) {
            Some(r) => {
                st.pending = r;
                let due = o.ts + self.hold;
                self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
                Ok(())
            }
            None => {
                self.stats.pending_full += 1;
                self.emit(&entry, sink)
            }
        }
    }

    /// Whether a pending alert is held back at the end of its hold: a `duplicate_packet`
    /// whose pattern is still short waits for more duplicates or its flow's end.
    fn keeps_waiting(&self, e: &Pending) -> bool {
        e.reason == Reason::DuplicatePacket && e.dup < self.min_duplicate_packets
    }

    /// Writes one aggregated alert, unless the rate limit or the duplicate share holds it back.
    fn emit(&mut self, e: &Pending, sink: &mut EventSink) -> Result<(), AlertWriteError> {
        if e.count == 0 {
            // Withdrawn.
            return Ok(());
        }
        let share_ppm = e.share_ppm;
        if e.reason == Reason::DuplicatePacket {
            if e.dup < self.min_duplicate_packets {
                // A duplicate that never grew into a pattern: a glitch of the network.
                self.stats.duplicates_isolated += 1;
                return Ok(());
            }
            if share_ppm > self.max_duplicate_ppm {
                self.stats.duplicates_suppressed += 1;
                return Ok(());
            }
        }
        if !self.bucket.take(self.clock) {
            self.stats.rate_limited += 1;
            return Ok(());
        }
        let (src, src_port, dst, dst_port) = e.key.endpoints(e.dir);
        sink.write(&AlertEvent {
            header: EventHeader {
                flow_id: Some(e.flow_id),
                src_ip: Some(src),
                src_port: Some(src_port),
                dest_ip: Some(dst),
                dest_port: Some(dst_port),
                proto: Some(ProtoName(e.key.proto)),
                icmp: e.icmp,
                ..EventHeader::new(e.first, "alert")
            },
            detector: "extraneous_packet",
            alert: AlertInfo {
                signature_id: e.reason.signature_id(),
                signature: e.reason.signature(),
                category: "Extraneous packet",
                severity: e.reason.severity(),
            },
            mitre: Mitre::T1020_001,
            tunnel: e.tunnel.map(|t| TunnelRef {
                kind: t.kind.name(),
                id: t.id,
                depth: t.depth,
                link: t.link,
                outer: None,
            }),
            evidence: ExtraneousEvidence {
                reason: e.reason.name(),
                count: e.count,
                first_packet: Rfc3339(e.first),
                last_packet: Rfc3339(e.last),
                sample: e.sample,
                conn_state: e.conn_state,
                history: history_str(&e.history),
                flow_packets: e.flow_packets,
                duplicate_share_ppm: (e.reason == Reason::DuplicatePacket).then_some(share_ppm),
                duplicated_packets: (e.reason == Reason::DuplicatePacket).then_some(e.dup),
                rule: rule_text(e.reason, e.detail),
                not_benign: not_benign_text(e.reason, e.detail),
                thresholds: self.thresholds(e.reason, e.detail),
                vantage: e.vantage,
                copy: e.copy,
            },
        })?;
        self.stats.alerts += 1;
        if let Some(n) = self.stats.alerts_by_reason.get_mut(e.reason.index()) {
            *n += 1;
        }
        Ok(())
    }

    /// A flow record ends.
    pub fn on_flow_end(
        &mut self,
        flow: &Flow,
        end: FlowEnd,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        if !self.enabled || end == FlowEnd::Active {
            return Ok(());
        }
        self.stats.flows += 1;
        let packets = flow.counters.packets;
        if packets[0] == 0 || packets[1] == 0 {
            self.stats.one_sided_flows += 1;
            self.judge_one_sided(flow, end, sink)?;
        }
        let st = &flow.ext.extraneous;
        if let ProtoState::Tcp(t) = &st.proto {
            // A connection that went quiet without closing may come back: remember it.
            if matches!(end, FlowEnd::Timeout | FlowEnd::Evicted) && !t.closed() {
                self.resume.remember(&flow.key);
            }
        }
        let mut r = st.pending;
        // A link whose generation wrapped may name another flow's alert: stop there.
        while self.pending.get_mut(r).is_some_and(|e| e.key == flow.key) {
            let Some(e) = self.pending.take(r) else {
                break;
            };
            r = e.next;
            self.emit(&e, sink)?;
        }
        Ok(())
    }

    /// A one-sided flow ends: data without a handshake, or a SYN-ACK, that nobody answered.
    /// Judged only where the sensor demonstrably sees both directions of the host pair (a
    /// one-direction feed shows every flow one-sided), and only when an answer had time to
    /// come before the end of the input.
    fn judge_one_sided(
        &mut self,
        flow: &Flow,
        end: FlowEnd,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        let st = &flow.ext.extraneous;
        let candidate_data = st.bits & (FLOW_CANDIDATE_NO_HANDSHAKE | FLOW_DATA)
            == FLOW_CANDIDATE_NO_HANDSHAKE | FLOW_DATA;
        let candidate_synack = st.bits & FLOW_CANDIDATE_SYNACK != 0;
        let reason = match (candidate_data, candidate_synack) {
            (true, _) => Reason::NoHandshake,
            (false, true) => Reason::UnsolicitedSynack,
            (false, false) => return Ok(()),
        };
        if st.bits & FLOW_COPY != 0
            || st.reported & reason.bit() != 0
            || flow.key.lo_addr == flow.key.hi_addr
        {
            return Ok(());
        }
        // Data: a burst (at least three packets), never retransmitted. A real sender whose
        // peer went away (a half-open connection, the tail of one that closed before the
        // capture) retransmits and gives up; injected packets are not retransmitted, and a
        // lone leftover segment is no burst.
        if reason == Reason::NoHandshake
            && (flow.counters.packets[flow.first_dir.index()] < MIN_BURST_PACKETS
                || retransmitted(&st.history))
        {
            self.stats.one_sided_unjudged += 1;
            return Ok(());
        }
        let last = flow.counters.last_seen;
        if end == FlowEnd::Shutdown && self.clock.saturating_since(last) < ANSWER_TIME {
            // The answer may have come after the capture stopped.
            self.stats.one_sided_unjudged += 1;
            return Ok(());
        }
        let vantage = self.vantage.others(&flow.key);
        if !vantage.two_sided() {
            self.stats.one_sided_unjudged += 1;
            return Ok(());
        }
        let dir = flow.first_dir;
        let entry = Pending {
            flow_id: crate::alert::flow_id(&flow.key, flow.counters.first_seen),
            icmp: flow.ext.icmp(&flow.key),
            key: flow.key,
            tunnel: flow.ext.tunnel(&flow.key),
            reason,
            dir,
            first: flow.counters.first_seen,
            last,
            count: flow.counters.packets[dir.index()],
            sample: PacketSample {
                tcp_flags: Some(HexByte(st.first_flags)),
                ..PacketSample::default()
            },
            conn_state: st.conn_state(flow),
            history: st.history,
            flow_packets: [
                flow.counters.packets[dir.index()],
                flow.counters.packets[dir.reverse().index()],
            ],
            detail: Detail::NoAnswer,
            vantage: Some(vantage),
            copy: None,
            share_ppm: 0,
            dup: 0,
            waiting: false,
            next: PendingRef::default(),
        };
        self.emit(&entry, sink)
    }

    /// The thresholds `reason` compares against, as configured.
    fn thresholds(&self, reason: Reason, detail: Detail) -> Thresholds {
        let mut t = Thresholds::default();
        match reason {
            Reason::AfterClose => t.close_tolerance_ms = Some(u64::from(self.close_tolerance_ms)),
            Reason::AckUnseenData => t.reorder_ms = Some(u64::from(self.reorder_ms)),
            Reason::OutOfWindow => t.window_slack_bytes = Some(self.window_slack),
            Reason::DuplicatePacket => {
                t.duplicate_window_ms = Some(self.duplicate_window_ms);
                t.max_duplicate_share_ppm = Some(self.max_duplicate_ppm);
                t.min_duplicate_packets = Some(self.min_duplicate_packets);
                t.duplicate_pattern_s = Some(self.duplicate_pattern.as_nanos() / 1_000_000_000);
            }
            Reason::NoHandshake | Reason::UnsolicitedSynack | Reason::OrphanResponse => {}
        }
        if detail == Detail::NoAnswer {
            t.min_two_sided_pct = Some(MIN_TWO_SIDED_PCT);
        }
        t
    }

    /// The clock moved.
    pub fn on_tick(&mut self, now: Timestamp, sink: &mut EventSink) -> Result<(), AlertWriteError> {
        if !self.enabled || now == Timestamp::ZERO {
            return Ok(());
        }
        self.observe_time(now);
        let now_s = now.as_nanos() / 1_000_000_000;
        if now_s == self.last_scan_s || self.next_due.is_none_or(|d| d > now) {
            return Ok(());
        }
        self.last_scan_s = now_s;
        // At most once per second of packet time, when an alert is due: write the alerts
        // whose hold is over, and find the next due.
        let mut next_due = None;
        for i in 0..self.pending.slots.len() {
            let Some((due, waits)) = self
                .pending
                .slots
                .get(i)
                .and_then(Option::as_ref)
                .filter(|e| !e.waiting)
                .map(|e| (e.first + self.hold, self.keeps_waiting(e)))
            else {
                continue;
            };
            if due <= now && waits {
                if let Some(Some(e)) = self.pending.slots.get_mut(i) {
                    e.waiting = true;
                }
            } else if due <= now {
                if let Some(e) = self.pending.take_index(i) {
                    self.emit(&e, sink)?;
                }
            } else {
                next_due = Some(next_due.map_or(due, |d: Timestamp| d.min(due)));
            }
        }
        self.next_due = next_due;
        Ok(())
    }

    /// End of input.
    pub fn finish(&mut self, now: Timestamp, sink: &mut EventSink) -> Result<(), AlertWriteError> {
        if !self.enabled {
            return Ok(());
        }
        self.observe_time(now);
        // Every flow has ended and written its alerts; anything left is written now.
        for i in 0..self.pending.slots.len() {
            if let Some(e) = self.pending.take_index(i) {
                self.emit(&e, sink)?;
            }
        }
        Ok(())
    }

    /// The capture being read started at `epoch` (the pipeline's first packet of it, the
    /// same for every worker): the warm-up counts from there, not from this worker's first
    /// packet, so verdicts do not depend on the worker count.
    pub fn observe_epoch(&mut self, epoch: Timestamp) {
        if self.epoch != Some(epoch) && epoch != Timestamp::ZERO {
            self.epoch = Some(epoch);
            self.start = Some(epoch);
        }
    }

    /// End of one capture of several (unrelated captures in one folder): every flow has
    /// ended. Writes what is pending and forgets the capture (start, warm-up, duplicate
    /// window, resume memory, vantage, rate limit), as if the next one were replayed alone.
    /// Counters go on.
    pub fn end_capture(
        &mut self,
        now: Timestamp,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        self.finish(now, sink)?;
        self.start = None;
        self.epoch = None;
        self.clock = Timestamp::ZERO;
        self.last_scan_s = 0;
        self.next_due = None;
        self.since_start_handshakes = 0;
        self.since_start_midstream = 0;
        self.duplicates.slots.fill(DuplicateSlot::default());
        self.resume.slots.fill(0);
        self.vantage.clear();
        self.bucket.level = self.bucket.cap;
        self.bucket.last = Timestamp::ZERO;
        Ok(())
    }

    /// Alerts written so far (without copying every counter).
    pub fn alerts(&self) -> u64 {
        self.stats.alerts
    }

    /// Counters so far.
    pub fn stats(&self) -> ExtraneousStats {
        self.stats.clone()
    }

    /// Moves this worker's clock. The run starts at the earliest time seen; a stretch of
    /// packet time longer than the warm-up and the flow idle timeout with neither packets
    /// nor clock ticks (a capture that stopped and resumed, or files of different days)
    /// starts the warm-up again: the sensor saw nothing of the connections opened meanwhile.
    fn observe_time(&mut self, now: Timestamp) {
        match self.start {
            Some(s) if s <= now => {
                let blind = now.saturating_since(self.clock);
                if self.warmup > Duration::ZERO
                    && self.clock > Timestamp::ZERO
                    && blind > self.blind
                {
                    self.start = Some(now);
                    self.stats.warmup_restarts += 1;
                    self.since_start_handshakes = 0;
                    self.since_start_midstream = 0;
                }
            }
            _ => self.start = Some(now),
        }
        if now > self.clock {
            self.clock = now;
        }
    }
}

/// Packets of a one-sided data flow for it to be a burst worth judging.
const MIN_BURST_PACKETS: u64 = 3;

/// Whether a history shows a retransmission (`T` or `t`).
fn retransmitted(history: &[u8; HISTORY_LEN]) -> bool {
    history.iter().any(|&b| b == b'T' || b == b't')
}

/// Time an answer takes to come: a one-sided flow whose last packet is closer than this to
/// the end of the input is not judged (TCP's initial retransmission timeout is 1 s).
const ANSWER_TIME: Duration = Duration::from_secs(3);

/// Whether `ip` is a broadcast or multicast address (v4: limited broadcast, 224/4, and the
/// all-ones host of a /24, the common directed broadcast; v6: ff00::/8).
fn group_address(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast() || v4.octets()[3] == 255,
        std::net::IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// The rule that fired, in words.
fn rule_text(reason: Reason, detail: Detail) -> &'static str {
    match (reason, detail) {
        (Reason::NoHandshake, Detail::NoAnswer) => {
            "TCP data without a handshake that the peer never answered, where this host pair is seen in both directions"
        }
        (Reason::NoHandshake, Detail::AnsweredRst) => {
            "TCP data without a handshake answered by a RST that does not acknowledge the sender's sequence space"
        }
        (Reason::NoHandshake, _) => {
            "TCP data without a handshake whose peer acknowledges another sequence space (more than 16 MiB away)"
        }
        (Reason::AfterClose, _) => {
            "new data, FIN or SYN-ACK more than close_tolerance_ms after a RST or a completed FIN exchange"
        }
        (Reason::UnsolicitedSynack, Detail::NoAnswer) => {
            "a SYN-ACK answering no SYN, never answered, where this host pair is seen in both directions"
        }
        (Reason::UnsolicitedSynack, Detail::AnsweredRst) => {
            "a SYN-ACK answering no SYN, refused by a RST from its receiver"
        }
        (Reason::UnsolicitedSynack, _) => {
            "a SYN-ACK answering no SYN, whose receiver answered with neither a SYN nor an ACK of it"
        }
        (Reason::AckUnseenData, _) => {
            "an acknowledgement beyond everything the peer sent, the peer going on below it after reorder_ms"
        }
        (Reason::OutOfWindow, _) => {
            "a segment with data, FIN or RST beyond the receiver's window by more than window_slack_bytes, or far behind its acknowledgement"
        }
        (Reason::OrphanResponse, _) => {
            "a DNS response with an id never asked on this flow, or an ICMP error quoting a flow never seen, after the warm-up"
        }
        (Reason::DuplicatePacket, _) => {
            "the same packet (IP id, ports, TCP numbers, payload start) twice within duplicate_window_ms, TTL equal or one less, for at least min_duplicate_packets distinct packets of this flow, each within duplicate_pattern_s of the previous (a pattern), while duplicates stay under max_duplicate_share of the host pair's packets"
        }
    }
}

/// Why the alert is not one of the rule's benign look-alikes, in words.
fn not_benign_text(reason: Reason, detail: Detail) -> &'static str {
    match (reason, detail) {
        (Reason::NoHandshake, Detail::NoAnswer) => {
            "a connection picked up midstream or resumed after an idle gap is answered by acknowledgements of the sender's data; this one never was, though the sensor sees this host pair's answers"
        }
        (Reason::NoHandshake, _) => {
            "a connection picked up midstream or resumed after an idle gap is acknowledged by its peer; this peer does not know the connection"
        }
        (Reason::AfterClose, _) => {
            "late ACKs, RSTs, retransmissions and packets in flight within the tolerance are not counted; port reuse starts with a SYN"
        }
        (Reason::UnsolicitedSynack, _) => {
            "a handshake whose SYN the capture missed is answered by an ACK of the SYN-ACK, a reordered one by the late SYN"
        }
        (Reason::AckUnseenData, _) => {
            "a capture gap shows as the peer's numbers jumping past the acknowledged point, reordering as late segments filling it; neither happened"
        }
        (Reason::OutOfWindow, _) => {
            "a capture gap is acknowledged by the receiver and the alert withdrawn; bare ACKs are not judged"
        }
        (Reason::OrphanResponse, _) => {
            "answers to queries sent before the capture started fall in the warm-up; one-sided DNS flows are not judged"
        }
        (Reason::DuplicatePacket, _) => {
            "broadcast and multicast repeats, application retransmissions (a new IP id), copies at the same instant (the capture host recording a frame twice) and mirror copies in a tunnel are not counted; a single duplicated packet (a link retransmission seen twice) is a glitch, a duplicating device repeats a pattern"
        }
    }
}

/// The sample fields every packet has.
fn sample_of(p: &PacketMeta) -> PacketSample {
    PacketSample {
        tcp_flags: p.tcp.map(|t| HexByte(t.flags)),
        seq: p.tcp.map(|t| t.seq),
        ack: p.tcp.filter(|t| t.flags & ACK != 0).map(|t| t.ack),
        payload_len: Some(p.payload_len),
        ip_id: Some(p.ip_id),
        ..PacketSample::default()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use flowtable::{FlowCounters, FlowEntry, FlowTable, key::ip_to_addr};

    use super::*;
    use crate::alert::{EventWriter, OutputTarget};
    use crate::decode::TcpInfo;
    use crate::detect::FlowExt;

    const C: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const SRV: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const PSH: u8 = 0x08;

    /// A detector, a flow and a sink writing to a temporary file.
    struct Harness {
        det: ExtraneousDetector,
        flow: Option<Flow>,
        sink: EventSink,
        _writer: EventWriter,
        ip_id: u32,
    }

    impl Harness {
        fn new(config: crate::config::Config, test: &str) -> Harness {
            let path = std::env::temp_dir().join(format!("mw-extraneous-{test}.jsonl"));
            let writer = EventWriter::spawn(&OutputTarget::File(path)).unwrap();
            Harness {
                det: ExtraneousDetector::new(&config.extraneous, config.flow_idle_timeout(), 1),
                flow: None,
                sink: writer.sink(),
                _writer: writer,
                ip_id: 1,
            }
        }

        /// One TCP packet at `ms` milliseconds, from the client when `from_client`.
        fn tcp(&mut self, ms: u64, from_client: bool, flags: u8, seq: u32, ack: u32, len: u32) {
            self.ip_id += 1;
            let ip_id = self.ip_id;
            self.tcp_packet(40_000, ms, from_client, [flags, 64], seq, ack, len, ip_id);
        }

        /// One TCP packet of the flow from client port `port` (the harness tracks one flow:
        /// another port needs a fresh flow, see `next_flow`), with flags and TTL.
        #[allow(clippy::too_many_arguments)] // The packet's fields, spelled out in tests.
        fn tcp_packet(
            &mut self,
            port: u16,
            ms: u64,
            from_client: bool,
            [flags, ttl]: [u8; 2],
            seq: u32,
            ack: u32,
            len: u32,
            ip_id: u32,
        ) {
            let (src, sport, dst, dport) = if from_client {
                (C, port, SRV, 80)
            } else {
                (SRV, 80, C, port)
            };
            let (key, dir) = FlowKey::new(
                ip_to_addr(src),
                sport,
                ip_to_addr(dst),
                dport,
                IpProto::TCP,
                0,
            );
            let ts = Timestamp::from_secs_nanos(1_000, 0) + Duration::from_millis(ms);
            let p = PacketMeta {
                ts,
                key,
                dir,
                ip_len: 40 + len,
                tcp_flags: flags,
                tunnel: None,
                tcp: Some(TcpInfo {
                    flags,
                    seq,
                    ack,
                    window: 1_000,
                    payload_len: len,
                    window_scale: None,
                }),
                payload_len: len,
                ip_id,
                ttl,
                fingerprint: u64::from(ip_id) << 8 | 1,
                app: AppHint::None,
                link_class: None,
                keepalive: crate::packet::Keepalive::None,
                icmp: [0, 0],
            };
            let new = self.flow.is_none();
            let flow = self.flow.get_or_insert_with(|| FlowEntry {
                key,
                first_dir: dir,
                counters: FlowCounters::starting_at(ts),
                ext: FlowExt::default(),
            });
            flow.counters.record(dir, ts, p.ip_len, flags);
            self.det
                .on_packet(flow, new, &p, PacketContext::default(), &mut self.sink)
                .unwrap();
        }

        /// Ends the current flow (its pending alerts are written or dropped) so the next
        /// packet starts another.
        fn next_flow(&mut self) {
            if let Some(flow) = self.flow.take() {
                self.det
                    .on_flow_end(&flow, FlowEnd::Timeout, &mut self.sink)
                    .unwrap();
            }
        }

        fn finish(&mut self) -> ExtraneousStats {
            if let Some(flow) = self.flow.take() {
                self.det
                    .on_flow_end(&flow, FlowEnd::Shutdown, &mut self.sink)
                    .unwrap();
                self.flow = Some(flow);
            }
            self.det.finish(Timestamp::ZERO, &mut self.sink).unwrap();
            self.det.stats()
        }

        fn state(&self) -> (Option<&'static str>, Option<String>) {
            let flow = self.flow.as_ref().unwrap();
            let st = &flow.ext.extraneous;
            (st.conn_state(flow), st.history().map(str::to_owned))
        }
    }

    fn no_warmup() -> crate::config::Config {
        let mut c = crate::config::Config::default();
        c.extraneous.warmup_s = 0;
        c
    }

    #[test]
    fn sequence_comparisons_wrap() {
        assert!(seq_lt(u32::MAX - 10, 5));
        assert!(seq_gt(5, u32::MAX - 10));
        assert!(!seq_lt(7, 7) && !seq_gt(7, 7));
        assert!(seq_lt(0, 0x7fff_ffff) && seq_gt(0, 0x8000_0001));
    }

    /// A whole connection whose sequence numbers wrap through zero, with a keep-alive, a
    /// retransmission and a FIN close: silent, `SF`.
    #[test]
    fn connection_across_the_sequence_wrap_is_silent() {
        let mut h = Harness::new(no_warmup(), "wrap");
        let (c, s) = (u32::MAX - 100, u32::MAX - 5);
        h.tcp(0, true, SYN, c, 0, 0);
        h.tcp(10, false, SYN | ACK, s, c.wrapping_add(1), 0);
        h.tcp(11, true, ACK, c.wrapping_add(1), s.wrapping_add(1), 0);
        h.tcp(
            20,
            true,
            ACK | PSH,
            c.wrapping_add(1),
            s.wrapping_add(1),
            300,
        );
        let c2 = c.wrapping_add(301);
        h.tcp(30, false, ACK | PSH, s.wrapping_add(1), c2, 1_000);
        h.tcp(230, false, ACK | PSH, s.wrapping_add(1), c2, 1_000);
        let s2 = s.wrapping_add(1_001);
        h.tcp(231, true, ACK, c2, s2, 0);
        // Keep-alive: one byte at next - 1, answered.
        h.tcp(10_000, true, ACK, c2.wrapping_sub(1), s2, 1);
        h.tcp(10_010, false, ACK, s2, c2, 0);
        h.tcp(20_000, true, FIN | ACK, c2, s2, 0);
        h.tcp(20_010, false, FIN | ACK, s2, c2.wrapping_add(1), 0);
        h.tcp(20_011, true, ACK, c2.wrapping_add(1), s2.wrapping_add(1), 0);
        assert_eq!(h.state(), (Some("SF"), Some("ShADdtTaFf".to_owned())));
        let stats = h.finish();
        assert_eq!(stats.alerts, 0, "{stats:?}");
        assert_eq!(stats.flows, 1);
    }

    /// An acknowledgement beyond the peer's data is judged only after the reorder grace; a
    /// late segment that fills the gap within it clears it.
    #[test]
    fn ack_beyond_data_waits_for_the_reorder_grace() {
        let mut h = Harness::new(no_warmup(), "grace");
        h.tcp(0, true, SYN, 100, 0, 0);
        h.tcp(10, false, SYN | ACK, 500, 101, 0);
        h.tcp(11, true, ACK, 101, 501, 0);
        // The client ACKs 1000 server bytes before they are captured (reordering)...
        h.tcp(20, true, ACK, 101, 1_501, 0);
        // ...and they arrive 1 ms later: nothing to report.
        h.tcp(21, false, ACK | PSH, 501, 101, 1_000);
        // Now 5000 bytes never sent, and the server goes on below them 600 ms later.
        h.tcp(30, true, ACK, 101, 6_501, 0);
        h.tcp(100, false, ACK | PSH, 1_501, 101, 100);
        assert_eq!(h.det.stats.alerts_by_reason, [0; 7], "within the grace");
        h.tcp(700, false, ACK | PSH, 1_601, 101, 100);
        let stats = h.finish();
        assert_eq!(stats.alerts_by_reason[Reason::AckUnseenData.index()], 1);
        assert_eq!(stats.alerts, 1);
    }

    /// An out-of-window segment the receiver never acknowledges holds the flow's one claim
    /// slot only for the alert's hold: an acknowledgement of data never sent, after it, is
    /// still judged (before, that one junk segment hid every later `ack_unseen_data`).
    #[test]
    fn an_unacknowledged_out_of_window_segment_does_not_hide_later_claims() {
        let mut h = Harness::new(no_warmup(), "oow-then-claim");
        let hold_ms = h.det.hold.as_nanos() / 1_000_000;
        h.tcp(0, true, SYN, 100, 0, 0);
        h.tcp(10, false, SYN | ACK, 500, 101, 0);
        h.tcp(11, true, ACK, 101, 501, 0);
        // Junk far ahead of the server's window, never acknowledged.
        h.tcp(20, true, ACK | PSH, 900_000_101, 501, 100);
        h.tcp(30, false, ACK | PSH, 501, 101, 100);
        h.tcp(31, true, ACK, 101, 601, 0);
        // After the hold, the client acknowledges 5,000 server bytes never sent, and the
        // server goes on below them past the reorder grace.
        let t = 40 + hold_ms;
        h.tcp(t, true, ACK, 101, 5_601, 0);
        h.tcp(t + 700, false, ACK | PSH, 601, 101, 100);
        let stats = h.finish();
        assert_eq!(stats.alerts_by_reason[Reason::OutOfWindow.index()], 1);
        assert_eq!(stats.alerts_by_reason[Reason::AckUnseenData.index()], 1);
    }

    /// Issue 17 item 1 (`t_ack_before_data_ts_back`): an ACK for 2000 bytes at +10 ms, then
    /// the two segments it acknowledges stamped 9 and 9.5 ms (two capture points, 1 ms of
    /// skew). The wait since the acknowledgement is negative, not 49.7 days: silent, as with
    /// rising timestamps.
    #[test]
    fn ack_before_data_stamped_earlier_is_silent() {
        for skewed in [true, false] {
            let mut h = Harness::new(no_warmup(), "ack-ts-back");
            h.tcp(0, true, SYN, 100, 0, 0);
            h.tcp(5, false, SYN | ACK, 500, 101, 0);
            h.tcp(6, true, ACK, 101, 501, 0);
            h.tcp(10, true, ACK, 101, 2_501, 0);
            let (a, b) = if skewed { (9, 9) } else { (11, 12) };
            h.tcp(a, false, ACK | PSH, 501, 101, 1_000);
            h.tcp(b, false, ACK | PSH, 1_501, 101, 1_000);
            h.tcp(900, false, ACK | PSH, 2_501, 101, 100);
            let stats = h.finish();
            assert_eq!(
                stats.alerts, 0,
                "skewed {skewed}: {:?}",
                stats.alerts_by_reason
            );
        }
    }

    /// Issue 17 item 1 (`t_rst_then_data_ts_back`, `t_rst_then_fin_ts_back`): a RST at
    /// +10 ms, then the peer's data or FIN stamped 9 ms (in flight): within the close
    /// tolerance, silent.
    #[test]
    fn data_after_rst_stamped_earlier_is_silent() {
        for flags in [ACK | PSH, FIN | ACK] {
            let mut h = Harness::new(no_warmup(), "rst-ts-back");
            h.tcp(0, true, SYN, 100, 0, 0);
            h.tcp(5, false, SYN | ACK, 500, 101, 0);
            h.tcp(6, true, ACK, 101, 501, 0);
            h.tcp(10, true, RST | ACK, 101, 501, 0);
            let len = if flags & FIN != 0 { 0 } else { 200 };
            h.tcp(9, false, flags, 501, 101, len);
            let stats = h.finish();
            assert_eq!(
                stats.alerts, 0,
                "flags {flags:#x}: {:?}",
                stats.alerts_by_reason
            );
        }
    }

    /// Issue 6: a reload changes the verdict on the next packets. The acknowledgement of
    /// data never sent is judged 680 ms later under the default 500 ms reorder grace, and
    /// not yet under a reloaded 5 s grace (only after it).
    #[test]
    fn reload_changes_the_reorder_grace() {
        let held = |h: &Harness| h.det.pending.slots.iter().flatten().count();
        let run = |h: &mut Harness| {
            h.tcp(0, true, SYN, 100, 0, 0);
            h.tcp(10, false, SYN | ACK, 500, 101, 0);
            h.tcp(11, true, ACK, 101, 501, 0);
            h.tcp(20, true, ACK, 101, 6_501, 0);
            h.tcp(700, false, ACK | PSH, 501, 101, 100);
        };
        let mut h = Harness::new(no_warmup(), "reload-default");
        run(&mut h);
        assert_eq!(held(&h), 1, "judged under the default grace");

        let mut h = Harness::new(no_warmup(), "reload-grace");
        let mut reloaded = no_warmup();
        reloaded.extraneous.reorder_ms = 5_000;
        h.det
            .reload(&reloaded.extraneous, reloaded.flow_idle_timeout());
        run(&mut h);
        assert_eq!(held(&h), 0, "within the reloaded grace");
        h.tcp(6_000, false, ACK | PSH, 601, 101, 100);
        assert_eq!(held(&h), 1, "judged after the reloaded grace");
        let stats = h.finish();
        assert_eq!(stats.alerts_by_reason[Reason::AckUnseenData.index()], 1);
    }

    /// A reloaded rate limit replaces the bucket's rate and burst, and never leaves more
    /// tokens than the new burst.
    #[test]
    fn reload_applies_the_rate_limit() {
        let mut h = Harness::new(no_warmup(), "reload-rate");
        let mut c = no_warmup();
        c.extraneous.rate_limit_per_s = 1;
        c.extraneous.rate_limit_burst = 1;
        h.det.reload(&c.extraneous, c.flow_idle_timeout());
        let now = Timestamp::from_secs_nanos(1_000, 0);
        assert!(h.det.bucket.take(now));
        assert!(!h.det.bucket.take(now), "burst of one");
        c.extraneous.rate_limit_per_s = 0;
        h.det.reload(&c.extraneous, c.flow_idle_timeout());
        assert!(h.det.bucket.take(now), "no limit");
    }

    #[test]
    fn reasons_have_stable_names_and_ids() {
        let ids: Vec<u32> = Reason::ALL.iter().map(|r| r.signature_id()).collect();
        assert_eq!(ids, (2_000_001..=2_000_007).collect::<Vec<_>>());
        for r in Reason::ALL {
            assert_eq!(r.signature(), format!("extraneous.{}", r.name()));
        }
    }

    #[test]
    fn pending_slots_are_reused_with_a_new_generation() {
        let mut t = PendingTable::new(1);
        assert!(t.slots.is_empty(), "no slot before an alert is pending");
        let (key, dir) = FlowKey::new(ip_to_addr(C), 1, ip_to_addr(SRV), 2, IpProto::TCP, 0);
        let entry = Pending {
            flow_id: 1,
            icmp: None,
            key,
            tunnel: None,
            reason: Reason::AfterClose,
            dir,
            first: Timestamp::ZERO,
            last: Timestamp::ZERO,
            count: 1,
            sample: PacketSample::default(),
            conn_state: None,
            history: [0; HISTORY_LEN],
            flow_packets: [1, 0],
            detail: Detail::None,
            vantage: None,
            copy: None,
            share_ppm: 0,
            dup: 0,
            waiting: false,
            next: PendingRef::default(),
        };
        let a = t.insert(entry).unwrap();
        assert!(t.insert(entry).is_none(), "full");
        assert!(t.take(a).is_some());
        let b = t.insert(entry).unwrap();
        assert_eq!(a.slot(), b.slot());
        assert_ne!(a.generation(), b.generation());
        assert!(t.get_mut(a).is_none(), "a stale link finds nothing");
        assert!(t.get_mut(b).is_some());

        // Issue 16 item 4: `pending_capacity` beyond 65,535 in one worker is honoured, not
        // silently capped; every slot is reachable through its link.
        let n = 70_000;
        let mut t = PendingTable::new(n);
        let refs: Vec<PendingRef> = (0..n)
            .map(|i| {
                let mut e = entry;
                e.count = i as u64 + 1;
                t.insert(e).unwrap()
            })
            .collect();
        assert!(t.insert(entry).is_none(), "full at {n}");
        assert_eq!(
            (t.slots.len(), t.slots.capacity()),
            (n, n),
            "filled within its room"
        );
        assert_eq!(t.get_mut(refs[n - 1]).unwrap().count, n as u64);
        assert_eq!(t.take(refs[65_535]).unwrap().count, 65_536);
    }

    #[test]
    fn rate_limit_allows_a_burst_then_the_rate() {
        let mut b = TokenBucket {
            rate: 2,
            cap: 3_000_000_000,
            level: 3_000_000_000,
            last: Timestamp::ZERO,
        };
        let t0 = Timestamp::from_secs_nanos(10, 0);
        assert_eq!((0..10).filter(|_| b.take(t0)).count(), 3);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..10).filter(|_| b.take(t1)).count(), 2);
    }

    #[test]
    fn config_validation_names_the_key() {
        assert_eq!(ExtraneousConfig::default().validate(), Ok(()));
        let bad = ExtraneousConfig {
            max_duplicate_share: 1.5,
            ..ExtraneousConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "max_duplicate_share");
        for pending_capacity in [0, 1_000_001] {
            let bad = ExtraneousConfig {
                pending_capacity,
                ..ExtraneousConfig::default()
            };
            assert_eq!(bad.validate().unwrap_err().0, "pending_capacity");
        }
        let big = ExtraneousConfig {
            pending_capacity: 1_000_000,
            ..ExtraneousConfig::default()
        };
        assert_eq!(big.validate(), Ok(()));
        let bad = ExtraneousConfig {
            min_duplicate_packets: 0,
            ..ExtraneousConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "min_duplicate_packets");
        let bad = ExtraneousConfig {
            duplicate_pattern_s: 0,
            ..ExtraneousConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "duplicate_pattern_s");
    }

    /// A connection with a handshake and `exchanges` request/response pairs (100 bytes each
    /// way, 10 ms apart) from client port `port` starting at `ms`; the responses of the
    /// exchanges in `copied` (from 0) are seen again `copies` times, 2 ms apart, with TTL
    /// `ttl` (the wire duplicating them). Returns the time after the last exchange.
    fn connection(
        h: &mut Harness,
        port: u16,
        ms: u64,
        exchanges: usize,
        copied: &[usize],
        (copies, ttl): (u64, u8),
    ) -> u64 {
        let (mut c, mut s) = (1_000_u32, 9_000_u32);
        let id = |h: &mut Harness| {
            h.ip_id += 1;
            h.ip_id
        };
        let i = id(h);
        h.tcp_packet(port, ms, true, [SYN, 64], c, 0, 0, i);
        let i = id(h);
        h.tcp_packet(port, ms + 1, false, [SYN | ACK, 64], s, c + 1, 0, i);
        (c, s) = (c + 1, s + 1);
        let i = id(h);
        h.tcp_packet(port, ms + 2, true, [ACK, 64], c, s, 0, i);
        let mut t = ms + 3;
        for x in 0..exchanges {
            let i = id(h);
            h.tcp_packet(port, t, true, [PSH | ACK, 64], c, s, 100, i);
            c += 100;
            let i = id(h);
            h.tcp_packet(port, t + 1, false, [PSH | ACK, 64], s, c, 100, i);
            if copied.contains(&x) {
                for k in 1..=copies {
                    h.tcp_packet(port, t + 1 + 2 * k, false, [PSH | ACK, ttl], s, c, 100, i);
                }
            }
            s += 100;
            t += 10;
        }
        t
    }

    fn duplicate_alerts(stats: &ExtraneousStats) -> u64 {
        stats.alerts_by_reason[Reason::DuplicatePacket.index()]
    }

    /// Issue 11: one datagram seen three times (same IP id, TTL and payload, 2 ms apart, as
    /// on `ndpi__raknet.pcap`) is one duplicated packet: a glitch, counted, not alerted.
    #[test]
    fn lone_duplicate_seen_three_times_is_a_glitch() {
        let mut h = Harness::new(no_warmup(), "lone-duplicate");
        connection(&mut h, 40_000, 0, 20, &[10], (2, 64));
        let stats = h.finish();
        assert_eq!(stats.duplicates, 2);
        assert_eq!(stats.duplicates_isolated, 1);
        assert_eq!(duplicate_alerts(&stats), 0);
    }

    /// Two distinct duplicated packets stay below the default pattern of three; three alert,
    /// with one alert counting every copy.
    #[test]
    fn duplicate_pattern_of_three_packets_alerts_once() {
        // Late in a 60-exchange connection, so the duplicates stay under 5 % of the pair.
        for (copied, alerts) in [
            (&[40, 41][..], 0),
            (&[40, 41, 42], 1),
            (&[40, 42, 44, 46], 1),
        ] {
            let n = copied.len();
            let mut h = Harness::new(no_warmup(), &format!("duplicate-pattern-{n}"));
            // One hop further: the TTL one less is still a wire duplicate.
            connection(&mut h, 40_000, 0, 60, copied, (1, 63));
            let stats = h.finish();
            assert_eq!(stats.duplicates, n as u64, "{n} copied");
            assert_eq!(duplicate_alerts(&stats), alerts, "{n} copied");
            assert_eq!(stats.duplicates_isolated, 1 - alerts, "{n} copied");
        }
    }

    /// Duplicates further apart than `duplicate_pattern_s` are separate glitches, each
    /// starting the pattern again; the same copies closer together make one pattern.
    #[test]
    fn duplicates_further_apart_than_the_pattern_gap_are_glitches() {
        // 300 exchanges 10 ms apart: 3 s; copies 1.2 s apart, then 0.8 s apart.
        for (copied, alerts) in [(&[0, 120, 240], 0), (&[0, 80, 160], 1)] {
            let mut config = no_warmup();
            config.extraneous.duplicate_pattern_s = 1;
            let mut h = Harness::new(config, &format!("duplicate-gap-{}", copied[1]));
            connection(&mut h, 40_000, 0, 300, copied, (1, 64));
            let stats = h.finish();
            assert_eq!(stats.duplicates, 3, "{copied:?}");
            assert_eq!(duplicate_alerts(&stats), alerts, "{copied:?}");
        }
    }

    /// `ndpi__raknet.pcap`'s shape: one datagram of each of several flows of one host pair
    /// seen three times. The pattern is a flow's: each flow waits past its hold with one
    /// duplicated packet and is dropped at its end (counted), none is alerted.
    #[test]
    fn one_duplicate_in_each_of_several_flows_is_no_pattern() {
        let mut h = Harness::new(no_warmup(), "duplicate-pair");
        for (k, port) in [40_001_u16, 40_002, 40_003].into_iter().enumerate() {
            let end = connection(&mut h, port, k as u64 * 8_000, 20, &[1], (2, 64));
            // The hold (5 s) ends before the next connection.
            h.det
                .on_tick(
                    Timestamp::from_secs_nanos(1_000, 0) + Duration::from_millis(end + 6_000),
                    &mut h.sink,
                )
                .unwrap();
            h.next_flow();
        }
        let stats = h.finish();
        assert_eq!(stats.duplicates, 6);
        assert_eq!(stats.duplicates_isolated, 3);
        assert_eq!(duplicate_alerts(&stats), 0);
    }

    /// Issue 7's budget: at most 256 bytes per tracked flow, everything included.
    #[test]
    fn flow_state_is_small() {
        assert!(size_of::<FlowState>() <= 64, "{}", size_of::<FlowState>());
        let per_flow = FlowTable::<FlowExt>::approx_bytes_per_flow();
        assert!(
            per_flow <= 256,
            "{per_flow} B per flow: FlowExt {} (tunnel {}, extraneous {}, beacon {}), entry {}",
            size_of::<FlowExt>(),
            size_of::<Option<crate::detect::TunnelTag>>(),
            size_of::<FlowState>(),
            size_of::<crate::detect::beacon::FlowState>(),
            size_of::<Option<flowtable::FlowEntry<FlowExt>>>(),
        );
    }
}
