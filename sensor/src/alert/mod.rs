//! Events out: JSON Lines in Suricata's EVE format, and the thread that writes them.
//!
//! Only this module derives `Serialize`: internal types stay unserializable, so the schema in
//! `docs/events.md` cannot drift by accident. Producers (capture thread, workers) serialize
//! into their own reused buffer and hand full buffers to one writer thread; nothing is lost
//! on shutdown because every producer flushes before the writer is joined.
//!
//! Every event validates against Suricata 8.0.6's EVE schema except the keys we add, each
//! listed in `docs/events.md` as an extension (a test validates every event of every case).
//! What Suricata has, we write its way: its timestamp form, absent values omitted (never
//! `null`), `flow_id`, `community_id` ([`community_id`]), `host`, `in_iface` or
//! `pcap_filename`, and the `alert` object with `action`, `gid`, `rev` and ET-style MITRE
//! `metadata`. Strings are written through [`escape::to_writer`], which also escapes the
//! C1, bidi and line-separator characters a packet could carry.

pub mod beacon;
pub mod community_id;
pub mod control;
pub mod error;
pub mod escape;
pub mod extraneous;
pub mod handover;
pub mod output;
mod writer;

use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use flowtable::{FlowKey, IpProto, Timestamp};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

pub use error::AlertWriteError;
pub use writer::{EventSink, EventWriter, OutputTarget};
pub use writer::{OutputCountersHandle, OutputStat, OutputStats, WriterOptions};

/// A packet-time timestamp written as Suricata writes it: local date and time in UTC with
/// microseconds and a numeric offset, `2026-01-05T09:00:01.530893+0000` (the EVE schema
/// requires the `+0000` form; RFC 3339's `Z` does not validate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub Timestamp);

impl Rfc3339 {
    /// Civil date and time of the timestamp: (year, month, day, hour, minute, second, µs).
    fn civil(self) -> (i64, u32, u32, u64, u64, u64, u64) {
        let nanos = self.0.as_nanos();
        let secs = nanos / 1_000_000_000;
        let micros = (nanos % 1_000_000_000) / 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, no table, no
        // allocation): exact for every u64 nanosecond timestamp.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        (
            year,
            month,
            day,
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            micros,
        )
    }
}

impl Rfc3339 {
    /// Reads back the form this type writes (`2026-01-05T09:00:01.530893+0000`), or RFC
    /// 3339's `Z` form; `None` for anything else or a date before 1970.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let s = text.get(r)?;
            s.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| s.parse().ok())?
        };
        let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if b.len() < 20 || seps.iter().any(|&(i, c)| b[i] != c) {
            return None;
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let mut rest = &text[19..];
        let mut nanos = 0u64;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            nanos = frac[..digits].parse::<u64>().ok()? * 10u64.pow(9 - digits as u32);
            rest = &frac[digits..];
        }
        if rest != "Z" && rest != "+0000" {
            return None;
        }
        // Howard Hinnant's days-from-civil, the inverse of `civil`.
        let y = if mo <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = (mo + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s).ok()?;
        Some(Timestamp::from_secs_nanos(secs, nanos as u32))
    }
}

impl Rfc3339 {
    /// The text, built in a stack buffer: three timestamps per flow record made `fmt`'s
    /// per-field machinery a fifth of the serialization time (perf, 1M-flow replay).
    fn to_bytes(self) -> [u8; 31] {
        fn put(dst: &mut [u8], mut v: u64) {
            for slot in dst.iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        let (y, mo, d, h, mi, s, us) = self.civil();
        let mut b = *b"0000-00-00T00:00:00.000000+0000";
        // A u64 of nanoseconds ends in year 2554: four digits always suffice.
        put(&mut b[0..4], y.clamp(0, 9999) as u64);
        put(&mut b[5..7], u64::from(mo));
        put(&mut b[8..10], u64::from(d));
        put(&mut b[11..13], h);
        put(&mut b[14..16], mi);
        put(&mut b[17..19], s);
        put(&mut b[20..26], us);
        b
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.to_bytes()).unwrap_or_default())
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // One string from a stack buffer: nothing allocated, one fragment to escape.
        s.serialize_str(std::str::from_utf8(&self.to_bytes()).unwrap_or_default())
    }
}

/// An IP protocol written by name (`"tcp"`) when it has one, else as its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtoName(pub IpProto);

impl Serialize for ProtoName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.name() {
            Some(name) => s.serialize_str(name),
            // The EVE schema types `proto` as a string: a number without a name is written
            // as its decimal digits, as Suricata does.
            None => s.collect_str(&self.0.0),
        }
    }
}

/// Who wrote the events: the sensor's identity, written in every event as Suricata writes
/// `host` and `in_iface`, and the Community ID seed.
///
/// One sensor is one process, so this is process-wide state, set by the shell before the
/// first packet ([`set_origin`]). Read under an uncontended lock once per event, never per
/// packet. The capture file (`pcap_filename`) is not here: it belongs to the packets an event
/// comes from, so it travels with them to the producer's sink ([`EventSink::set_pcap_filename`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// `host`: the sensor's name (`[eve] host`, else the hostname).
    pub host: Option<Arc<str>>,
    /// `in_iface`: the capture interface (live).
    pub in_iface: Option<Arc<str>>,
    /// Community ID seed (`[eve] community_id_seed`).
    pub community_id_seed: u16,
}

static ORIGIN: RwLock<Origin> = RwLock::new(Origin {
    host: None,
    in_iface: None,
    community_id_seed: 0,
});

thread_local! {
    /// The capture file of the event being serialized on this thread: set by
    /// [`EventSink::write`] from its sink for the duration of one serialization (a move in
    /// and out, no reference count touched), read by [`EventHeader`]. A thread-local because
    /// serde gives a `Serialize` impl no context of its own; scoped to one `write`, so no
    /// event reads another producer's file.
    static PCAP_FILENAME: std::cell::RefCell<Option<Arc<str>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (one event's serialization) with `file` as its `pcap_filename`, and hands `file`
/// back.
pub(crate) fn with_pcap_filename<R>(file: &mut Option<Arc<str>>, f: impl FnOnce() -> R) -> R {
    PCAP_FILENAME.with(|slot| {
        let previous = slot.replace(file.take());
        let result = f();
        *file = slot.replace(previous);
        result
    })
}

/// Sets the identity written in every event from now on.
pub fn set_origin(origin: Origin) {
    *ORIGIN.write().unwrap_or_else(PoisonError::into_inner) = origin;
}

/// The identity written in every event.
pub fn origin() -> Origin {
    ORIGIN
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The sensor's host name: `configured` when not empty, else the kernel's host name.
pub fn host_name(configured: &str) -> Option<Arc<str>> {
    if !configured.is_empty() {
        return Some(Arc::from(configured));
    }
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| Arc::from(name))
}

/// Suricata's `flow_id`: a number that joins an alert to its flow record. Derived from the
/// flow key (tunnel context included) and the record's first packet time, so the same input
/// gives the same ids whatever the worker count, and masked to 51 bits so that JSON readers
/// that parse numbers as doubles (JavaScript, Elastic's scripts) keep it exact.
pub fn flow_id(key: &FlowKey, first_seen: Timestamp) -> u64 {
    use std::hash::BuildHasher;
    // A fixed seed: ids must be equal across runs (a seeded table hasher is not).
    const SEED: u64 = 0x6d69_7272_6f72_7761;
    let h = foldhash::fast::FixedState::with_seed(SEED).hash_one((key, first_seen.as_nanos()));
    // 0 would read as "no id" to some tools.
    (h & ((1 << 51) - 1)).max(1)
}

/// The fields every event starts with, in Suricata's order. Absent values are omitted (a
/// `stats` event has no endpoints); ports are written for TCP, UDP and SCTP only, and ICMP
/// type and code for ICMP, as Suricata does. `community_id` is computed here, once per
/// event, from the 5-tuple when there is one. `host` and `in_iface` come from the process's
/// [`Origin`], `pcap_filename` from the sink that writes the event (the capture file of the
/// packets its producer was working on, see [`EventSink::set_pcap_filename`]).
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    /// Packet time the event refers to.
    pub timestamp: Rfc3339,
    /// The flow (or tunnel session) the event belongs to, see [`flow_id`].
    pub flow_id: Option<u64>,
    /// `alert`, `tunnel`, `flow` or `stats`.
    pub event_type: &'static str,
    /// Source address.
    pub src_ip: Option<IpAddr>,
    /// Source port.
    pub src_port: Option<u16>,
    /// Destination address.
    pub dest_ip: Option<IpAddr>,
    /// Destination port.
    pub dest_port: Option<u16>,
    /// IP protocol.
    pub proto: Option<ProtoName>,
    /// ICMP type and code of the first packet (ICMP and ICMPv6 only).
    pub icmp: Option<(u8, u8)>,
}

impl EventHeader {
    /// A header with a time and a type, and nothing else.
    pub const fn new(timestamp: Timestamp, event_type: &'static str) -> EventHeader {
        EventHeader {
            timestamp: Rfc3339(timestamp),
            flow_id: None,
            event_type,
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
            icmp: None,
        }
    }

    /// Whether the protocol has ports (TCP, UDP, SCTP).
    fn has_ports(&self) -> bool {
        matches!(
            self.proto.map(|p| p.0),
            Some(IpProto::TCP | IpProto::UDP | IpProto::SCTP)
        )
    }

    fn is_icmp(&self) -> bool {
        matches!(
            self.proto.map(|p| p.0),
            Some(IpProto::ICMP | IpProto::ICMPV6)
        )
    }

    /// The event's Community ID, when it has a complete tuple.
    pub fn community_id(&self, seed: u16) -> Option<community_id::CommunityId> {
        let (src, dst, proto) = (self.src_ip?, self.dest_ip?, self.proto?.0);
        let ports = if self.has_ports() {
            Some((self.src_port?, self.dest_port?))
        } else if self.is_icmp() {
            Some(self.icmp.map(|(t, c)| (u16::from(t), u16::from(c)))?)
        } else {
            None
        };
        community_id::CommunityId::new(seed, src, dst, proto.0, ports)
    }
}

impl Serialize for EventHeader {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let origin = ORIGIN.read().unwrap_or_else(PoisonError::into_inner);
        let mut st = s.serialize_struct("EventHeader", 14)?;
        st.serialize_field("timestamp", &self.timestamp)?;
        if let Some(id) = self.flow_id {
            st.serialize_field("flow_id", &id)?;
        }
        if let Some(iface) = origin.in_iface.as_deref() {
            st.serialize_field("in_iface", iface)?;
        }
        st.serialize_field("event_type", self.event_type)?;
        if let Some(ip) = self.src_ip {
            st.serialize_field("src_ip", &ip)?;
        }
        let ports = self.has_ports();
        if let Some(port) = self.src_port.filter(|_| ports) {
            st.serialize_field("src_port", &port)?;
        }
        if let Some(ip) = self.dest_ip {
            st.serialize_field("dest_ip", &ip)?;
        }
        if let Some(port) = self.dest_port.filter(|_| ports) {
            st.serialize_field("dest_port", &port)?;
        }
        if let Some(proto) = self.proto {
            st.serialize_field("proto", &proto)?;
        }
        if let Some((t, c)) = self.icmp.filter(|_| self.is_icmp()) {
            st.serialize_field("icmp_type", &t)?;
            st.serialize_field("icmp_code", &c)?;
        }
        if let Some(id) = self.community_id(origin.community_id_seed) {
            st.serialize_field("community_id", id.as_str())?;
        }
        PCAP_FILENAME.with(|file| match file.borrow().as_deref() {
            Some(file) => st.serialize_field("pcap_filename", file),
            None => Ok(()),
        })?;
        if let Some(host) = origin.host.as_deref() {
            st.serialize_field("host", host)?;
        }
        st.end()
    }
}

/// Outer endpoints of a tunnel layer, written inside the `tunnel` object where Suricata
/// puts the outer packet of an encapsulated one.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct OuterEndpoints {
    /// Outer source.
    pub src_ip: IpAddr,
    /// Outer destination.
    pub dest_ip: IpAddr,
    /// Outer source port (UDP tunnels only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Outer destination port (UDP tunnels only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// Outer protocol: `UDP` or `GRE`, in Suricata's spelling.
    pub proto: &'static str,
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
    /// The outer endpoints, when the writer knows them (tunnel records and mirror alerts).
    #[serde(flatten)]
    pub outer: Option<OuterEndpoints>,
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
    /// The configured session that explains it (`--audit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<control::ControlMatch>,
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
    /// With `spread_over_collectors`: the same source's other collectors (same type and id)
    /// whose evidence decided the class; absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sibling_collectors: Vec<IpAddr>,
    /// The configured session that explains it, or `unexplained` (`--audit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<control::ControlMatch>,
}

/// Evidence of a `mirror.tunnel_id_flood` alert: one outer source creating tunnel links
/// beyond its share of the tunnel table.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TunnelFloodEvidence {
    /// Links of this source in the table when the alert was written.
    pub links_held: u64,
    /// The most links one outer source may hold (`[tunnels] capacity` / 8, at least 1).
    pub share: u64,
    /// `[tunnels] capacity`.
    pub table_capacity: u64,
    /// Links this source created since it first appeared.
    pub links_created: u64,
    /// When this source's first link appeared.
    pub first_seen: Rfc3339,
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
    /// TCP flags, in Suricata's `tcp` object (TCP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpDetail>,
    /// Innermost tunnel, when the flow was encapsulated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelRef>,
}

/// `tcp` object of a flow event, as Suricata writes it: the flags seen in each direction
/// and together, and one boolean per flag seen.
#[derive(Clone, Copy, Debug)]
pub struct TcpDetail {
    /// Flags from `src`.
    pub ts: u8,
    /// Flags from `dest`.
    pub tc: u8,
}

impl Serialize for TcpDetail {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const NAMES: [(u8, &str); 8] = [
            (0x01, "fin"),
            (0x02, "syn"),
            (0x04, "rst"),
            (0x08, "psh"),
            (0x10, "ack"),
            (0x20, "urg"),
            (0x40, "ecn"),
            (0x80, "cwr"),
        ];
        let all = self.ts | self.tc;
        let mut st = s.serialize_struct("tcp", 11)?;
        st.serialize_field("tcp_flags", &HexByte(all))?;
        st.serialize_field("tcp_flags_ts", &HexByte(self.ts))?;
        st.serialize_field("tcp_flags_tc", &HexByte(self.tc))?;
        for (bit, name) in NAMES {
            if all & bit != 0 {
                st.serialize_field(name, &true)?;
            }
        }
        st.end()
    }
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
    /// Whole seconds from `start` to `end`, as Suricata's `flow.age`.
    pub age: u64,
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
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let b = [HEX[usize::from(self.0 >> 4)], HEX[usize::from(self.0 & 15)]];
        s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
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

/// `alert` object, as in Suricata EVE: `action` (always `allowed`: a passive sensor blocks
/// nothing), `gid` 1, `signature_id`, `rev`, `signature`, `category`, `severity`, and
/// `metadata` with the MITRE ATT&CK ids as ET rules write them (arrays of strings).
#[derive(Clone, Copy, Debug)]
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

/// `alert.rev` of every signature: raised when a signature's meaning changes.
pub const SIGNATURE_REV: u32 = 1;

/// `alert.gid`: Suricata's generator id for rule-based alerts.
pub const SIGNATURE_GID: u32 = 1;

impl Serialize for AlertInfo<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("alert", 8)?;
        st.serialize_field("action", "allowed")?;
        st.serialize_field("gid", &SIGNATURE_GID)?;
        st.serialize_field("signature_id", &self.signature_id)?;
        st.serialize_field("rev", &SIGNATURE_REV)?;
        st.serialize_field("signature", self.signature)?;
        st.serialize_field("category", self.category)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("metadata", &AlertMetadata(self.severity))?;
        st.end()
    }
}

/// `alert.metadata`, ET style: every value an array of strings.
struct AlertMetadata(u8);

impl Serialize for AlertMetadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = Mitre::T1020_001;
        let severity = match self.0 {
            1 => "Major",
            2 => "Minor",
            _ => "Informational",
        };
        let mut st = s.serialize_struct("metadata", 5)?;
        st.serialize_field("mitre_tactic_id", &[m.tactic_id])?;
        st.serialize_field("mitre_tactic_name", &[m.tactic_name])?;
        st.serialize_field("mitre_technique_id", &[m.technique_id])?;
        st.serialize_field("mitre_technique_name", &[m.technique_name])?;
        st.serialize_field("signature_severity", &[severity])?;
        st.end()
    }
}

/// ATT&CK mapping of every alert (the top-level `mitre` object; the same ids are in
/// `alert.metadata`, where Suricata dashboards read them).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Mitre {
    /// Always `T1020.001`.
    pub technique_id: &'static str,
    /// Always `exfiltration`.
    pub tactic: &'static str,
    /// ATT&CK tactic id (`TA0010`), in `alert.metadata` only.
    #[serde(skip)]
    pub tactic_id: &'static str,
    /// Tactic name as ET writes it (`Exfiltration`), in `alert.metadata` only.
    #[serde(skip)]
    pub tactic_name: &'static str,
    /// Technique name as ET writes it, in `alert.metadata` only.
    #[serde(skip)]
    pub technique_name: &'static str,
}

impl Mitre {
    /// Traffic Duplication, exfiltration.
    pub const T1020_001: Mitre = Mitre {
        technique_id: "T1020.001",
        tactic: "exfiltration",
        tactic_id: "TA0010",
        tactic_name: "Exfiltration",
        technique_name: "Traffic_Duplication",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_serializes_in_eve_shape() {
        let h = EventHeader {
            flow_id: Some(42),
            src_ip: Some("10.0.0.1".parse().unwrap()),
            src_port: Some(443),
            dest_ip: Some("2001:db8::1".parse().unwrap()),
            dest_port: Some(51000),
            proto: Some(ProtoName(IpProto::UDP)),
            ..EventHeader::new(
                Timestamp::from_secs_nanos(1_767_603_600, 123_456_789),
                "flow",
            )
        };
        let json = serde_json::to_string(&h).unwrap();
        // No community_id: the addresses are of two families.
        assert_eq!(
            json,
            r#"{"timestamp":"2026-01-05T09:00:00.123456+0000","flow_id":42,"event_type":"flow","src_ip":"10.0.0.1","src_port":443,"dest_ip":"2001:db8::1","dest_port":51000,"proto":"udp"}"#
        );
        let other = serde_json::to_string(&ProtoName(IpProto(250))).unwrap();
        assert_eq!(other, "\"250\"");
        assert_eq!(serde_json::to_string(&HexByte(0x1b)).unwrap(), "\"1b\"");
    }

    #[test]
    fn absent_values_are_omitted_and_icmp_has_type_and_code_not_ports() {
        let stats = EventHeader::new(Timestamp::from_secs_nanos(0, 0), "stats");
        let json = serde_json::to_string(&stats).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert!(json.starts_with(r#"{"timestamp":"1970-01-01T00:00:00.000000+0000","#));
        let icmp = EventHeader {
            src_ip: Some("192.168.0.89".parse().unwrap()),
            src_port: Some(0),
            dest_ip: Some("192.168.0.1".parse().unwrap()),
            dest_port: Some(0),
            proto: Some(ProtoName(IpProto::ICMP)),
            icmp: Some((8, 0)),
            ..EventHeader::new(Timestamp::from_secs_nanos(0, 0), "flow")
        };
        let v: serde_json::Value = serde_json::to_value(icmp).unwrap();
        assert_eq!(v.get("src_port"), None);
        assert_eq!(v["icmp_type"], 8);
        assert_eq!(v["icmp_code"], 0);
        // The specification's baseline for this tuple, seed 0 (the default origin).
        assert_eq!(v["community_id"], "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
    }

    #[test]
    fn timestamps_are_suricata_form_across_dates() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00.000000+0000"),
            (951_782_400, "2000-02-29T00:00:00.000000+0000"),
            (1_767_603_601, "2026-01-05T09:00:01.000000+0000"),
            (4_102_444_799, "2099-12-31T23:59:59.000000+0000"),
        ] {
            let t = Rfc3339(Timestamp::from_secs_nanos(secs, 0));
            assert_eq!(t.to_string(), want);
            let ht = humantime::format_rfc3339_micros(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            );
            assert_eq!(
                ht.to_string().trim_end_matches('Z'),
                want.trim_end_matches("+0000")
            );
        }
        let t = Rfc3339(Timestamp::from_secs_nanos(1_767_603_601, 530_893_999));
        assert_eq!(t.to_string(), "2026-01-05T09:00:01.530893+0000");
        assert_eq!(
            Rfc3339::parse("2026-01-05T09:00:01.530893+0000"),
            Some(Timestamp::from_secs_nanos(1_767_603_601, 530_893_000))
        );
        assert_eq!(
            Rfc3339::parse("2000-02-29T00:00:00.5Z"),
            Some(Timestamp::from_secs_nanos(951_782_400, 500_000_000))
        );
        for bad in [
            "",
            "2026-01-05T09:00:01.530893+0100",
            "2026-13-05T09:00:01Z",
            "x026-01-05T09:00:01Z",
        ] {
            assert_eq!(Rfc3339::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn alert_object_has_suricata_fields_and_et_mitre_metadata() {
        let a = AlertInfo {
            signature_id: 1000001,
            signature: "mirror.unapproved_collector",
            category: "Traffic duplication",
            severity: 1,
        };
        let v = serde_json::to_value(a).unwrap();
        assert_eq!(v["action"], "allowed");
        assert_eq!(v["gid"], 1);
        assert_eq!(v["rev"], SIGNATURE_REV);
        assert_eq!(v["metadata"]["mitre_technique_id"][0], "T1020.001");
        assert_eq!(v["metadata"]["mitre_tactic_id"][0], "TA0010");
        assert_eq!(v["metadata"]["mitre_tactic_name"][0], "Exfiltration");
    }

    #[test]
    fn flow_ids_are_deterministic_and_differ_by_start() {
        let ip = |s: &str| flowtable::key::ip_to_addr(s.parse().unwrap());
        let (k, _) = FlowKey::new(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, IpProto::TCP, 0);
        let a = flow_id(&k, Timestamp(5));
        assert_eq!(a, flow_id(&k, Timestamp(5)));
        assert_ne!(a, flow_id(&k, Timestamp(6)));
        assert!(a > 0 && a < 1 << 51);
    }
}
