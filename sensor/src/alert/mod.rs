//! Events out: JSON Lines in the spirit of Suricata EVE, and the thread that writes them.
//!
//! Only this module derives `Serialize`: internal types stay unserializable, so the schema in
//! `docs/events.md` cannot drift by accident. Producers (capture thread, workers) serialize
//! into their own reused buffer and hand full buffers to one writer thread; nothing is lost
//! on shutdown because every producer flushes before the writer is joined.

pub mod beacon;
pub mod extraneous;
pub mod output;
mod writer;

use std::net::IpAddr;

use flowtable::{IpProto, Timestamp};
use serde::{Serialize, Serializer};

pub use writer::{AlertWriteError, EventSink, EventWriter, OutputTarget};
pub use writer::{OutputCountersHandle, OutputStat, OutputStats, WriterOptions};

/// A packet-time timestamp written as RFC 3339 UTC with microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub Timestamp);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.0.as_nanos());
        s.collect_str(&humantime::format_rfc3339_micros(t))
    }
}

/// An IP protocol written by name (`"tcp"`) when it has one, else as its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtoName(pub IpProto);

impl Serialize for ProtoName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.name() {
            Some(name) => s.serialize_str(name),
            None => s.serialize_u8(self.0.0),
        }
    }
}

/// The fields every event starts with. Stats events have no endpoints (`null`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct EventHeader {
    /// Packet time the event refers to.
    pub timestamp: Rfc3339,
    /// `alert`, `tunnel`, `flow` or `stats`.
    pub event_type: &'static str,
    /// Source address.
    pub src_ip: Option<IpAddr>,
    /// Source port (0 without ports).
    pub src_port: Option<u16>,
    /// Destination address.
    pub dest_ip: Option<IpAddr>,
    /// Destination port.
    pub dest_port: Option<u16>,
    /// IP protocol.
    pub proto: Option<ProtoName>,
}

/// Tunnel identity as written in `tunnel` and `flow` events.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TunnelRef {
    /// `vxlan`, `geneve`, `gre`, `gre_teb`, `nvgre`, `pptp`, `erspan1`, `erspan2`, `erspan3`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// VNI, GRE key (NVGRE: VSID), ERSPAN session ID, PPTP call ID; 0 when none.
    pub id: u32,
    /// Nesting level, 0 = outermost.
    pub depth: u8,
    /// Run-unique number of the tunnel link (both directions of one outer endpoint pair,
    /// type and id); joins `flow` events to their `tunnel` events.
    pub link: u64,
}

/// `event_type: "tunnel"`: one record per tunnel session (one direction of a link).
#[derive(Clone, Debug, Serialize)]
pub struct TunnelEvent {
    /// Outer endpoints of this layer.
    #[serde(flatten)]
    pub header: EventHeader,
    /// Which tunnel.
    pub tunnel: TunnelDetail,
    /// Packets in this direction.
    pub packets: u64,
    /// Bytes on the wire of the frames that carried them.
    pub bytes: u64,
    /// First packet.
    pub first_seen: Rfc3339,
    /// Last packet.
    pub last_seen: Rfc3339,
    /// Distinct innermost flows carried (exact up to `[tunnels] max_inner_flows`).
    pub inner_flows: u64,
    /// `inner_flows` stopped counting at the cap.
    pub inner_flows_capped: bool,
    /// Why the record was written: `timeout` or `shutdown`.
    pub reason: &'static str,
    /// `mirror`, `overlay` or `unknown`, and the evidence that decided it.
    pub classification: Classification,
    /// The collector may receive this (it is in the approved inventory).
    pub approved: bool,
    /// The link's most active inner conversations.
    pub top_conversations: Vec<ConversationRef>,
}

/// A tunnel session's class and the evidence behind it.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Classification {
    /// `mirror`, `overlay` or `unknown`.
    pub class: &'static str,
    /// The deciding evidence (stable names, see `docs/events.md`).
    pub reason: &'static str,
    /// The link carried packets in one outer direction only.
    pub one_way: bool,
    /// Inner frames matched to native packets on the capture.
    pub duplicates_matched: u64,
    /// ERSPAN III direction bits: packets marked ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erspan_ingress: Option<u64>,
    /// ERSPAN III direction bits: packets marked egress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erspan_egress: Option<u64>,
}

/// An inner conversation, in canonical order (lower endpoint first).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ConversationRef {
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
    /// Packets seen inside the link.
    pub packets: u64,
}

/// Evidence of a `mirror_stream` alert.
#[derive(Clone, Debug, Serialize)]
pub struct MirrorEvidence {
    /// Class and deciding evidence.
    pub classification: Classification,
    /// `unapproved_collector`, `unapproved_source` or `unexpected_tunnel`.
    pub finding: &'static str,
    /// The collector is inside `[networks] home`.
    pub collector_home: bool,
    /// Found on a UDP port not configured for this tunnel type.
    pub nonstandard_port: bool,
    /// Packets of this session so far.
    pub packets: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// First packet of the session.
    pub first_seen: Rfc3339,
    /// Distinct inner flows so far.
    pub inner_flows: u64,
    /// Inner hosts of the top conversations.
    pub inner_hosts: Vec<IpAddr>,
    /// The most active inner conversations.
    pub top_conversations: Vec<ConversationRef>,
    /// Packets the mirror marked truncated.
    pub truncated_packets: u64,
}

/// `tunnel` object of a tunnel event.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TunnelDetail {
    /// Identity.
    #[serde(flatten)]
    pub reference: TunnelRef,
    /// Found by probing a UDP port not configured for this type.
    pub nonstandard_port: bool,
    /// Packets whose tunnel header said the mirrored frame was truncated.
    pub truncated_packets: u64,
}

/// `event_type: "flow"`: one record per innermost flow (written with `--flows`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FlowEvent<'a> {
    /// `src` is the side that sent the first packet seen.
    #[serde(flatten)]
    pub header: EventHeader,
    /// Counters.
    pub flow: FlowDetail<'a>,
    /// Innermost tunnel, when the flow was encapsulated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelRef>,
}

/// `flow` object of a flow event.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FlowDetail<'a> {
    /// Packets from `src` to `dest`.
    pub pkts_toserver: u64,
    /// Packets from `dest` to `src`.
    pub pkts_toclient: u64,
    /// IP bytes from `src` to `dest`.
    pub bytes_toserver: u64,
    /// IP bytes from `dest` to `src`.
    pub bytes_toclient: u64,
    /// First packet.
    pub start: Rfc3339,
    /// Last packet.
    pub end: Rfc3339,
    /// `timeout`, `active`, `evicted` or `shutdown`.
    pub reason: &'static str,
    /// TCP flags seen from `src` (hex), when TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags_ts: Option<HexByte>,
    /// TCP flags seen from `dest` (hex), when TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags_tc: Option<HexByte>,
    /// Zeek-style connection state (`S0`, `SF`, `REJ`, ...), TCP only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_state: Option<&'static str>,
    /// Zeek-style history string, TCP only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<&'a str>,
}

/// A byte written as two lower-case hex digits, as Suricata writes TCP flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HexByte(pub u8);

impl Serialize for HexByte {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:02x}", self.0))
    }
}

/// `event_type: "alert"`: written by the detectors.
#[derive(Clone, Debug, Serialize)]
pub struct AlertEvent<'a, E: Serialize> {
    /// Endpoints of the offending traffic.
    #[serde(flatten)]
    pub header: EventHeader,
    /// `mirror_stream`, `extraneous_packet`, `beacon`, ...
    pub detector: &'static str,
    /// Signature.
    pub alert: AlertInfo<'a>,
    /// ATT&CK mapping.
    pub mitre: Mitre,
    /// The tunnel concerned, for tunnel findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelRef>,
    /// Detector-specific evidence.
    pub evidence: E,
}

/// `alert` object, as in Suricata EVE.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AlertInfo<'a> {
    /// Stable numeric id.
    pub signature_id: u32,
    /// Stable dotted name, e.g. `mirror.unapproved_collector`.
    pub signature: &'a str,
    /// Category.
    pub category: &'a str,
    /// 1 high to 3 low.
    pub severity: u8,
}

/// ATT&CK mapping of every alert.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Mitre {
    /// Always `T1020.001`.
    pub technique_id: &'static str,
    /// Always `exfiltration`.
    pub tactic: &'static str,
}

impl Mitre {
    /// Traffic Duplication, exfiltration.
    pub const T1020_001: Mitre = Mitre {
        technique_id: "T1020.001",
        tactic: "exfiltration",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_serializes_in_eve_shape() {
        let h = EventHeader {
            timestamp: Rfc3339(Timestamp::from_secs_nanos(1_767_603_600, 123_456_789)),
            event_type: "flow",
            src_ip: Some("10.0.0.1".parse().unwrap()),
            src_port: Some(443),
            dest_ip: Some("2001:db8::1".parse().unwrap()),
            dest_port: Some(51000),
            proto: Some(ProtoName(IpProto::TCP)),
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(
            json,
            r#"{"timestamp":"2026-01-05T09:00:00.123456Z","event_type":"flow","src_ip":"10.0.0.1","src_port":443,"dest_ip":"2001:db8::1","dest_port":51000,"proto":"tcp"}"#
        );
        let other = serde_json::to_string(&ProtoName(IpProto(250))).unwrap();
        assert_eq!(other, "250");
        assert_eq!(serde_json::to_string(&HexByte(0x1b)).unwrap(), "\"1b\"");
    }
}
