//! The per-packet record the capture thread hands to the flow detectors, and its hints.
//!
//! [`PacketMeta`] sits below both the pipeline (which builds it) and the detectors (which read
//! it), so neither imports the other for it. Workers never see packet bytes: what a detector
//! needs from the bytes is read here, in the capture thread, into small `Copy` hints: the DNS
//! transaction id and question, the flow an ICMP error quotes, and the keep-alive shape of
//! known protocols ([`Keepalive`]). Reading a hint allocates nothing and looks at a bounded
//! prefix of the payload.

use flowtable::{Direction, FlowKey, IpProto, Timestamp};

use crate::decode::{TcpInfo, TunnelKind};

/// What the capture thread tells a worker about one packet.
#[derive(Clone, Copy, Debug)]
pub struct PacketMeta {
    /// Packet time.
    pub ts: Timestamp,
    /// Canonical innermost flow.
    pub key: FlowKey,
    /// Direction within `key`.
    pub dir: Direction,
    /// IP length of the innermost packet.
    pub ip_len: u32,
    /// TCP flags (0 when not TCP).
    pub tcp_flags: u8,
    /// Innermost enclosing tunnel.
    pub tunnel: Option<FlowTunnel>,
    /// Class of the innermost enclosing tunnel's link when this packet was seen (`None`:
    /// native). Flows inside a mirror are copies, judged by the mirror detector only.
    pub link_class: Option<LinkClass>,
    /// TCP header fields, when TCP.
    pub tcp: Option<TcpInfo>,
    /// Transport payload bytes (TCP: as the headers state; else as captured).
    pub payload_len: u32,
    /// IPv4 identification (IPv6: fragment identification, or 0).
    pub ip_id: u32,
    /// TTL or hop limit of the innermost packet.
    pub ttl: u8,
    /// Hash of what identifies this exact packet (flow, direction, IP id, TCP seq/ack/flags,
    /// payload start): equal for a packet and its duplicate.
    pub fingerprint: u64,
    /// What the application layer says, where a detector needs it.
    pub app: AppHint,
    /// Keep-alive shape of a known protocol, read from the payload.
    pub keepalive: Keepalive,
    /// ICMP type and code (0, 0 when not ICMP): a flow keeps its first packet's, for its
    /// Community ID.
    pub icmp: [u8; 2],
}

/// Class of a tunnel link as the capture thread knows it at a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkClass {
    /// Not decided yet (the first packets of a link), or never decidable.
    Unknown,
    /// A mirror: its inner frames are copies of traffic elsewhere.
    Mirror,
    /// An overlay: its inner frames are conversations of their own.
    Overlay,
}

/// Application-layer facts the capture thread reads for the flow detectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AppHint {
    /// Nothing.
    #[default]
    None,
    /// A DNS message (UDP port 53).
    Dns {
        /// Transaction id.
        id: u16,
        /// QR bit.
        response: bool,
        /// Hash of the message after the header, for a query: equal for the same question
        /// asked again (the polling of one name).
        question: u32,
    },
    /// An ICMP or ICMPv6 error quoting another flow.
    IcmpError {
        /// The quoted flow, canonical, with the error's own tunnel context.
        quoted: FlowKey,
    },
}

/// The tunnel a flow travels in, as kept per flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTunnel {
    /// Encapsulation.
    pub kind: TunnelKind,
    /// VNI / key / session ID.
    pub id: u32,
    /// Nesting level of that tunnel.
    pub depth: u8,
    /// Link id (also the key's tunnel context).
    pub link: u64,
}

/// Keep-alive shapes of well-known protocols, recognised by content (not by port alone): a
/// fixed-size periodic exchange in one of these is the protocol keeping a NAT binding or a
/// session open, not data leaving.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Keepalive {
    /// Not a recognised keep-alive.
    #[default]
    None = 0,
    /// STUN/TURN message (RFC 5389 header: type with the two top bits clear, length equal to
    /// the bytes after the 20-byte header, a multiple of 4; the RFC 3489 form without the
    /// magic cookie included).
    Stun = 1,
    /// SIP keep-alive: a datagram of only CR, LF, space or NUL (RFC 5626 §4.4.1 and the
    /// space-padded variants phones send), or an `OPTIONS` request.
    Sip = 2,
    /// WireGuard keep-alive: a transport-data message with an empty payload (type 4, 32
    /// bytes), or a Tailscale disco message (magic `TS💬`), its NAT keep-alive and path probe.
    WireGuard = 3,
    /// IPsec NAT-T keep-alive: the one byte 0xff (RFC 3948 §2.3).
    NatT = 4,
    /// OpenVPN data-channel packet (opcode P_DATA_V1/V2) of ping size on UDP 1194.
    OpenVpn = 5,
    /// A DNS query (polling of a resolver when the question repeats).
    DnsQuery = 6,
    /// A TCP keep-alive probe: no SYN/FIN/RST and at most one byte of payload.
    Tcp = 7,
}

impl Keepalive {
    /// Every recognised kind, in `repr` order (index 0 is `None`).
    pub const ALL: [Keepalive; 8] = [
        Keepalive::None,
        Keepalive::Stun,
        Keepalive::Sip,
        Keepalive::WireGuard,
        Keepalive::NatT,
        Keepalive::OpenVpn,
        Keepalive::DnsQuery,
        Keepalive::Tcp,
    ];

    /// Stable name (evidence and stats).
    pub const fn name(self) -> &'static str {
        match self {
            Keepalive::None => "none",
            Keepalive::Stun => "stun",
            Keepalive::Sip => "sip",
            Keepalive::WireGuard => "wireguard",
            Keepalive::NatT => "ipsec_natt",
            Keepalive::OpenVpn => "openvpn",
            Keepalive::DnsQuery => "dns_polling",
            Keepalive::Tcp => "tcp_keepalive",
        }
    }

    /// From its `repr` value (unknown values: `None`).
    pub fn from_u8(v: u8) -> Keepalive {
        Keepalive::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(Keepalive::None)
    }
}

/// STUN header length.
const STUN_HEADER_LEN: usize = 20;
/// WireGuard transport message with an empty payload: 16-byte header + 16-byte tag.
const WIREGUARD_KEEPALIVE_LEN: usize = 32;
/// WireGuard message type "transport data".
const WIREGUARD_TRANSPORT: u8 = 4;
/// Tailscale disco magic: "TS" and U+1F4AC.
const TAILSCALE_DISCO_MAGIC: &[u8] = b"TS\xf0\x9f\x92\xac";
/// Longest SIP whitespace keep-alive looked at.
const SIP_PING_MAX: usize = 8;
/// OpenVPN's registered port.
const OPENVPN_PORT: u16 = 1194;
/// Largest OpenVPN data packet taken for a ping (the 16-byte ping magic, padded, with the
/// packet id, HMAC and cipher overhead).
const OPENVPN_PING_MAX: usize = 128;

/// The keep-alive shape of one packet, from its transport and the start of its payload.
pub fn keepalive_of(
    proto: IpProto,
    ports: (u16, u16),
    tcp: Option<&TcpInfo>,
    payload: &[u8],
) -> Keepalive {
    if proto == IpProto::TCP {
        return match tcp {
            Some(t) if t.flags & 0x07 == 0 && t.payload_len <= 1 => Keepalive::Tcp,
            _ => Keepalive::None,
        };
    }
    if proto != IpProto::UDP {
        return Keepalive::None;
    }
    let n = payload.len();
    if n == 1 && payload.first() == Some(&0xff) {
        return Keepalive::NatT;
    }
    if is_stun(payload) {
        return Keepalive::Stun;
    }
    if n == WIREGUARD_KEEPALIVE_LEN
        && payload.first() == Some(&WIREGUARD_TRANSPORT)
        && payload.get(1..4) == Some(&[0, 0, 0])
    {
        return Keepalive::WireGuard;
    }
    if payload.starts_with(TAILSCALE_DISCO_MAGIC) {
        return Keepalive::WireGuard;
    }
    if (1..=SIP_PING_MAX).contains(&n)
        && payload
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | 0))
    {
        return Keepalive::Sip;
    }
    if payload.starts_with(b"OPTIONS sip:") || payload.starts_with(b"OPTIONS sips:") {
        return Keepalive::Sip;
    }
    let (sport, dport) = ports;
    if (sport == OPENVPN_PORT || dport == OPENVPN_PORT)
        && (1..=OPENVPN_PING_MAX).contains(&n)
        && payload.first().is_some_and(|b| matches!(b >> 3, 6 | 9))
    {
        return Keepalive::OpenVpn;
    }
    Keepalive::None
}

/// A STUN message: two top bits of the type clear, the length field equal to the bytes after
/// the header and a multiple of 4 (RFC 5389 §6; RFC 3489 messages have the same shape).
fn is_stun(p: &[u8]) -> bool {
    let (Some(&t0), Some(l)) = (p.first(), p.get(2..4)) else {
        return false;
    };
    let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
    p.len() >= STUN_HEADER_LEN && t0 & 0xc0 == 0 && len % 4 == 0 && len + STUN_HEADER_LEN == p.len()
}

/// Bytes of a DNS query hashed as its question.
const QUESTION_HASH_BYTES: usize = 256;

/// FNV-1a over the bytes of a DNS message after its 12-byte header (at most
/// [`QUESTION_HASH_BYTES`]): the same for the same question asked again. Not seeded: it only
/// compares a flow's queries with each other, never indexes a table.
pub fn question_hash(message: &[u8]) -> u32 {
    let body = message.get(12..).unwrap_or(&[]);
    let body = body.get(..QUESTION_HASH_BYTES).unwrap_or(body);
    let mut h: u32 = 0x811c_9dc5;
    for &b in body {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(payload: &[u8]) -> Keepalive {
        keepalive_of(IpProto::UDP, (40000, 3478), None, payload)
    }

    #[test]
    fn recognises_keepalives_by_content() {
        // STUN binding request with the RFC 5389 magic cookie, no attributes.
        let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[7; 12]);
        assert_eq!(udp(&stun), Keepalive::Stun);
        // A lying length field is not STUN.
        stun[3] = 4;
        assert_eq!(udp(&stun), Keepalive::None);
        assert_eq!(udp(b"\r\n\r\n"), Keepalive::Sip);
        assert_eq!(udp(b"     "), Keepalive::Sip);
        assert_eq!(udp(b"OPTIONS sip:a@b SIP/2.0\r\n"), Keepalive::Sip);
        let mut wg = vec![4, 0, 0, 0];
        wg.extend_from_slice(&[9; 28]);
        assert_eq!(udp(&wg), Keepalive::WireGuard);
        wg.push(0);
        assert_eq!(udp(&wg), Keepalive::None);
        assert_eq!(udp(&[0xff]), Keepalive::NatT);
        assert_eq!(udp(&[0xfe]), Keepalive::None);
        let ovpn = [0x48; 60];
        assert_eq!(
            keepalive_of(IpProto::UDP, (1194, 50000), None, &ovpn),
            Keepalive::OpenVpn
        );
        assert_eq!(udp(&ovpn), Keepalive::None);
        // An arbitrary fixed-size heartbeat is not recognised.
        assert_eq!(udp(&[0x5a; 48]), Keepalive::None);
    }

    #[test]
    fn question_hash_compares_questions() {
        let q = |id: u8, name: &[u8]| {
            let mut m = vec![0, id, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            m.extend_from_slice(name);
            m
        };
        assert_eq!(
            question_hash(&q(1, b"\x03www\x00\x00\x01\x00\x01")),
            question_hash(&q(2, b"\x03www\x00\x00\x01\x00\x01"))
        );
        assert_ne!(
            question_hash(&q(1, b"\x03www\x00\x00\x01\x00\x01")),
            question_hash(&q(1, b"\x03wwx\x00\x00\x01\x00\x01"))
        );
        assert_eq!(question_hash(&[1, 2]), 0x811c_9dc5);
    }

    #[test]
    fn keepalive_names_round_trip() {
        for k in Keepalive::ALL {
            assert_eq!(Keepalive::from_u8(k as u8), k);
        }
        assert_eq!(Keepalive::from_u8(200), Keepalive::None);
    }
}
