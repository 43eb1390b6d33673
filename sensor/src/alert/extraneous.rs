//! Evidence of `extraneous_packet` alerts: what was aggregated (count, first and last packet
//! times), a short sample of the first offending packet, and the flow's TCP state at the last
//! offending packet. The schema is documented in `docs/events.md`.

use std::net::IpAddr;

use serde::Serialize;

use super::{HexByte, ProtoName, Rfc3339};

/// `evidence` of an `extraneous_packet` alert.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ExtraneousEvidence<'a> {
    /// Stable reason name (`no_handshake`, `after_close`, ...).
    pub reason: &'static str,
    /// Offending packets of this flow and reason aggregated into this alert.
    pub count: u64,
    /// Time of the first offending packet.
    pub first_packet: Rfc3339,
    /// Time of the last offending packet aggregated.
    pub last_packet: Rfc3339,
    /// The first offending packet.
    pub sample: PacketSample,
    /// Zeek-style connection state of the flow at the last offending packet (TCP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_state: Option<&'static str>,
    /// Zeek-style history of the flow at the last offending packet (TCP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<&'a str>,
    /// Packets of the flow from the alert's `src` and from its `dest`, at the last
    /// offending packet.
    pub flow_packets: [u64; 2],
    /// `duplicate_packet`: share of duplicated packets among the eligible packets of this
    /// host pair at the latest duplicate aggregated, in parts per million (per host pair: the same whatever the
    /// worker count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_share_ppm: Option<u64>,
    /// `duplicate_packet`: distinct packets of this flow duplicated in the pattern (a packet
    /// seen three times counts once), the count `min_duplicate_packets` is compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicated_packets: Option<u32>,
    /// The rule that fired, in words.
    pub rule: &'static str,
    /// Why this is not one of the benign look-alikes of the rule.
    pub not_benign: &'static str,
    /// The thresholds the rule crossed, as configured.
    pub thresholds: Thresholds,
    /// The vantage point: how two-sided the sensor sees this host pair (one-sided flows are
    /// judged only where it demonstrably sees both directions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vantage: Option<Vantage>,
    /// `duplicate_packet`: how the copy differs from the first packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyDiff>,
}

/// The configured thresholds a rule compares against (only those the rule uses).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Thresholds {
    /// `[extraneous] close_tolerance_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_tolerance_ms: Option<u64>,
    /// `[extraneous] reorder_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder_ms: Option<u64>,
    /// `[extraneous] window_slack_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_slack_bytes: Option<u32>,
    /// `[extraneous] duplicate_window_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_window_ms: Option<u64>,
    /// `[extraneous] max_duplicate_share`, in parts per million.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duplicate_share_ppm: Option<u64>,
    /// `[extraneous] min_duplicate_packets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_duplicate_packets: Option<u32>,
    /// `[extraneous] duplicate_pattern_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_pattern_s: Option<u64>,
    /// Least share of two-sided flows of the host pair for a one-sided flow to be judged, in
    /// percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_two_sided_pct: Option<u64>,
}

/// How two-sided the sensor sees a host pair (in this worker, which sees every flow of it).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Vantage {
    /// Scope of the measure (`host_pair`).
    pub scope: &'static str,
    /// Other flows of the host pair seen so far.
    pub flows: u64,
    /// Of which seen in both directions.
    pub two_sided: u64,
    /// `two_sided` as a percentage of `flows`.
    pub two_sided_pct: u64,
}

/// How a duplicate differs from the first copy.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CopyDiff {
    /// Which copy differs and how, in words (`none`, `ttl_one_less`).
    pub differs: &'static str,
    /// TTL (hop limit) of the first copy.
    pub first_ttl: u8,
    /// TTL of the second.
    pub copy_ttl: u8,
    /// Microseconds between the two.
    pub gap_us: u64,
}

/// The first offending packet, in its own direction (the alert's `src` sent it).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct PacketSample {
    /// TCP flags (hex), when TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<HexByte>,
    /// TCP sequence number, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
    /// TCP acknowledgement number, when the ACK flag was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<u32>,
    /// Transport payload bytes (TCP: as the headers state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_len: Option<u32>,
    /// IPv4 identification (IPv6: 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_id: Option<u32>,
    /// DNS transaction id (`orphan_response` of DNS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_id: Option<u16>,
    /// The flow an ICMP error quotes (`orphan_response` of ICMP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted: Option<QuotedFlow>,
    /// `ack_unseen_data`: the peer's next sequence number (everything it had sent) when the
    /// acknowledgement was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_next_seq: Option<u32>,
    /// `out_of_window`: the receiver's latest acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_ack: Option<u32>,
    /// `out_of_window`: the receiver's window in bytes, as the check used it (scaled; 2^30
    /// when the window scale is unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_window: Option<u32>,
    /// `after_close`: milliseconds between the close and this packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_close_ms: Option<u64>,
    /// TCP: the packet's TTL (IPv6: hop limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// TCP: the TTL of the first packet the same side sent in this flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_ttl: Option<u8>,
    /// TCP: `flow_ttl - ttl`, hops fewer than the side's first packet had left: a packet
    /// injected with a TTL chosen to expire before the victim shows a large positive value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_difference: Option<i16>,
}

/// A flow quoted by an ICMP error, in canonical order (lower endpoint first).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct QuotedFlow {
    /// Lower address.
    pub src_ip: IpAddr,
    /// Its port.
    pub src_port: u16,
    /// Higher address.
    pub dest_ip: IpAddr,
    /// Its port.
    pub dest_port: u16,
    /// IP protocol.
    pub proto: ProtoName,
}
