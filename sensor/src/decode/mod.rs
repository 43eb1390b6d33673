//! Layer walk: from a captured frame to the innermost conversation, peeling mirror tunnels.
//!
//! Standard layers come from `etherparse`; our own zero-copy views cover what it lacks (one
//! file per protocol). The walk is an iterative loop with a fixed-capacity tunnel stack: no
//! recursion, no allocation, no panic on any byte sequence. A malformed header is counted
//! under a stable dotted name and the packet is handed on with what was decoded.

mod bytes;
pub mod dns;
pub mod error;
pub mod erspan;
pub mod geneve;
pub mod gre;
pub mod icmp;
pub mod link;
pub mod mpls;
pub mod pppoe;
pub mod vxlan;
mod walk;

use arrayvec::ArrayVec;
use flowtable::IpProto;

pub use error::{DecodeError, Layer};

/// Most stacked VLAN tags (802.1Q, 802.1ad, QinQ 0x9100) followed in one Ethernet frame;
/// more is counted as `decoder.ethernet.vlan_tags_exceeded`. Real networks stack two or three.
pub const MAX_VLAN_TAGS: usize = 8;

/// Compile-time ceiling of the configurable tunnel depth cap.
pub const MAX_TUNNEL_DEPTH_CAP: usize = 8;

/// The kinds of encapsulation we decode, with their event names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelKind {
    /// VXLAN (RFC 7348).
    Vxlan,
    /// Geneve (RFC 8926).
    Geneve,
    /// IP in GRE, or GRE-in-UDP (RFC 8086).
    Gre,
    /// Transparent Ethernet bridging over GRE (0x6558) without an NVGRE key.
    GreTeb,
    /// NVGRE (RFC 7637): GRE-TEB with a key holding a VSID.
    Nvgre,
    /// Enhanced GRE (v1) carrying PPP, as in PPTP.
    Pptp,
    /// ERSPAN type I (GRE 0x88BE, no sequence number, no ERSPAN header).
    Erspan1,
    /// ERSPAN type II (GRE 0x88BE with sequence number, version 1 header).
    Erspan2,
    /// ERSPAN type III (GRE 0x22EB, version 2 header).
    Erspan3,
    /// IP in IP (IP protocol 4 or 41: 4in4, 6in4, 4in6, 6in6; RFC 2003, RFC 4213, RFC 2473),
    /// as Linux `ipip`, `sit` and `ip6tnl` devices send it. No header of its own: the id is
    /// the outer IP protocol number (4 or 41).
    Ipip,
}

impl TunnelKind {
    /// Every kind, in a fixed order (for per-kind counters).
    pub const ALL: [TunnelKind; 10] = [
        TunnelKind::Vxlan,
        TunnelKind::Geneve,
        TunnelKind::Gre,
        TunnelKind::GreTeb,
        TunnelKind::Nvgre,
        TunnelKind::Pptp,
        TunnelKind::Erspan1,
        TunnelKind::Erspan2,
        TunnelKind::Erspan3,
        TunnelKind::Ipip,
    ];

    /// Name used in events (`tunnel.type`).
    pub const fn name(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
            TunnelKind::GreTeb => "gre_teb",
            TunnelKind::Nvgre => "nvgre",
            TunnelKind::Pptp => "pptp",
            TunnelKind::Erspan1 => "erspan1",
            TunnelKind::Erspan2 => "erspan2",
            TunnelKind::Erspan3 => "erspan3",
            TunnelKind::Ipip => "ipip",
        }
    }

    /// Position in [`TunnelKind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// One peeled encapsulation layer, outer addresses included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelLayer {
    /// Encapsulation kind.
    pub kind: TunnelKind,
    /// VNI, GRE key (NVGRE: VSID), ERSPAN session ID or PPTP call ID; 0 when the header has none.
    pub id: u32,
    /// Outer IP source (16-byte form, IPv4-mapped).
    pub outer_src: [u8; 16],
    /// Outer IP destination.
    pub outer_dst: [u8; 16],
    /// Outer UDP source port (0 for GRE).
    pub outer_src_port: u16,
    /// Outer UDP destination port (0 for GRE).
    pub outer_dst_port: u16,
    /// Decoded on a port not configured for this kind (found by strict probing).
    pub nonstandard_port: bool,
    /// The tunnel header says the mirrored frame was truncated (ERSPAN T bit).
    pub mirror_truncated: bool,
    /// ERSPAN III direction bit: `Some(true)` egress, `Some(false)` ingress.
    pub erspan_egress: Option<bool>,
}

/// TCP header fields the flow table and detectors use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// Flag byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE, CWR).
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Raw window field (unscaled).
    pub window: u16,
    /// Payload length as the IP and TCP headers state it (not cut by the capture).
    pub payload_len: u32,
    /// Window scale option (RFC 7323) of a SYN or SYN-ACK, when present.
    pub window_scale: Option<u8>,
}

/// The innermost IP packet of a frame.
#[derive(Clone, Copy, Debug)]
pub struct InnerPacket<'a> {
    /// IP source (16-byte form).
    pub src: [u8; 16],
    /// IP destination.
    pub dst: [u8; 16],
    /// Source port (0 without ports; ICMP: 0).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol of the transport (after IPv6 extension headers).
    pub proto: IpProto,
    /// IP length as the header states it (total length, or IPv6 header + payload length).
    pub ip_len: u32,
    /// IPv4 identification (IPv6: fragment identification, or 0).
    pub ip_id: u32,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Part of a fragmented datagram (non-first fragments carry no ports).
    pub fragment: bool,
    /// TCP fields, when the transport is TCP.
    pub tcp: Option<TcpInfo>,
    /// ICMP or ICMPv6 (type, code).
    pub icmp: Option<(u8, u8)>,
    /// Transport payload as captured (may be shorter than the headers say).
    pub l4_payload: &'a [u8],
}

/// Everything the walk learned about one frame.
#[derive(Clone, Debug, Default)]
pub struct DecodedPacket<'a> {
    /// Tunnel layers, outermost first.
    pub tunnels: ArrayVec<TunnelLayer, MAX_TUNNEL_DEPTH_CAP>,
    /// The innermost IP packet, if the walk reached one.
    pub inner: Option<InnerPacket<'a>>,
    /// How many of `tunnels` enclose `inner` (less than `tunnels.len()` when an inner frame
    /// could not be decoded, so the tunnel packet itself is the innermost IP packet).
    pub inner_depth: usize,
    /// Some layer was cut short by the capture or the mirror; what was decoded is still valid.
    pub truncated: bool,
}

impl DecodedPacket<'_> {
    /// Nothing decoded yet, for a frame of `captured` bytes of `orig_len` on the wire.
    #[inline]
    pub fn empty(captured: usize, orig_len: u32) -> Self {
        DecodedPacket {
            truncated: (captured as u64) < u64::from(orig_len),
            ..DecodedPacket::default()
        }
    }
}

/// Decoder settings: the `[decode]` table of the configuration, validated by `config.rs`
/// before any packet is read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeConfig {
    /// UDP destination ports decoded as VXLAN.
    pub vxlan_ports: Vec<u16>,
    /// UDP ports (source or destination) decoded as Geneve.
    pub geneve_ports: Vec<u16>,
    /// UDP destination ports decoded as GRE-in-UDP (RFC 8086).
    pub gre_udp_ports: Vec<u16>,
    /// Probe UDP payloads on other ports for strictly valid VXLAN/Geneve.
    pub probe_nonstandard_ports: bool,
    /// How many tunnel layers to peel (at most [`MAX_TUNNEL_DEPTH_CAP`]).
    pub max_tunnel_depth: usize,
    /// Longest MPLS label stack followed.
    pub max_mpls_labels: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            vxlan_ports: vec![4789],
            geneve_ports: vec![6081],
            gre_udp_ports: vec![4754],
            probe_nonstandard_ports: true,
            max_tunnel_depth: 4,
            max_mpls_labels: 8,
        }
    }
}

/// Decode events that are not header errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeEvent {
    /// More tunnel layers than the depth cap; the packet is handed on as decoded so far.
    TunnelDepthExceeded,
    /// Some layer was cut by the capture or the mirror.
    PacketTruncated,
    /// A capture link type we do not decode.
    UnsupportedLinkType,
    /// VXLAN or Geneve found by strict probing on a non-standard UDP port.
    NonstandardPortTunnel,
    /// More stacked VLAN tags than [`MAX_VLAN_TAGS`]; the frame is not decoded further.
    VlanTagsExceeded,
    /// A UDP datagram on a configured tunnel port, with a well-known service port on the
    /// other side, whose payload is not a plausible tunnel header: decoded as that service.
    TunnelPortNotTunnel,
}

impl DecodeEvent {
    /// Every event, in counter order.
    pub const ALL: [DecodeEvent; 6] = [
        DecodeEvent::TunnelDepthExceeded,
        DecodeEvent::PacketTruncated,
        DecodeEvent::UnsupportedLinkType,
        DecodeEvent::NonstandardPortTunnel,
        DecodeEvent::VlanTagsExceeded,
        DecodeEvent::TunnelPortNotTunnel,
    ];

    /// Stable dotted name.
    pub const fn name(self) -> &'static str {
        match self {
            DecodeEvent::TunnelDepthExceeded => "decoder.tunnel.depth_exceeded",
            DecodeEvent::PacketTruncated => "decoder.packet.truncated",
            DecodeEvent::UnsupportedLinkType => "decoder.link.unsupported_link_type",
            DecodeEvent::NonstandardPortTunnel => "decoder.udp.nonstandard_port_tunnel",
            DecodeEvent::VlanTagsExceeded => "decoder.ethernet.vlan_tags_exceeded",
            DecodeEvent::TunnelPortNotTunnel => "decoder.udp.tunnel_port_not_tunnel",
        }
    }
}

/// Counters of decode errors and events: fixed arrays, no allocation per packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeCounters {
    errors: [[u64; DecodeError::KIND_NAMES.len()]; Layer::ALL.len()],
    events: [u64; DecodeEvent::ALL.len()],
}

impl DecodeCounters {
    /// Counts one header error.
    #[inline]
    pub fn error(&mut self, e: DecodeError) {
        let slot = &mut self.errors[e.layer().index()][e.kind_index()];
        *slot = slot.saturating_add(1);
    }

    /// Counts one event.
    #[inline]
    pub fn event(&mut self, e: DecodeEvent) {
        let slot = &mut self.events[e as usize];
        *slot = slot.saturating_add(1);
    }

    /// Adds another set of counters (merging per-thread counts).
    pub fn merge(&mut self, other: &DecodeCounters) {
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors.iter()) {
            for (m, t) in mine.iter_mut().zip(theirs.iter()) {
                *m = m.saturating_add(*t);
            }
        }
        for (m, t) in self.events.iter_mut().zip(other.events.iter()) {
            *m = m.saturating_add(*t);
        }
    }

    /// Every non-zero counter with its dotted name (for the stats record; allocates).
    pub fn named(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for layer in Layer::ALL {
            for (kind, name) in DecodeError::KIND_NAMES.iter().enumerate() {
                let n = self.errors[layer.index()][kind];
                if n > 0 {
                    out.push((format!("decoder.{}.{}", layer.name(), name), n));
                }
            }
        }
        for e in DecodeEvent::ALL {
            let n = self.events[e as usize];
            if n > 0 {
                out.push((e.name().to_owned(), n));
            }
        }
        out.sort();
        out
    }

    /// The count for one dotted name, zero if none (for tests and reports).
    pub fn get(&self, name: &str) -> u64 {
        self.named()
            .into_iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| v)
    }
}

/// Decodes frames with a fixed configuration. Cheap to share by reference.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    config: DecodeConfig,
}

impl Decoder {
    /// A decoder with `config` (the depth cap is clamped to [`MAX_TUNNEL_DEPTH_CAP`]).
    pub fn new(mut config: DecodeConfig) -> Decoder {
        config.max_tunnel_depth = config.max_tunnel_depth.min(MAX_TUNNEL_DEPTH_CAP);
        Decoder { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DecodeConfig {
        &self.config
    }

    /// Decodes one captured frame of `orig_len` bytes on the wire. Never fails and never
    /// panics: errors are counted in `counters` and the result holds what was decoded.
    #[inline]
    pub fn decode<'a>(
        &self,
        link: link::LinkType,
        frame: &'a [u8],
        orig_len: u32,
        counters: &mut DecodeCounters,
    ) -> DecodedPacket<'a> {
        let mut out = DecodedPacket::empty(frame.len(), orig_len);
        walk::walk(&self.config, link, frame, counters, &mut out);
        out
    }

    /// [`Decoder::decode`] into `out`, which must come from [`DecodedPacket::empty`] for this
    /// frame. For the per-packet path: the decoded packet is several hundred bytes, and
    /// returning it copied it into the caller's frame on every packet (4 % of a replay).
    #[inline]
    pub fn decode_into<'a>(
        &self,
        link: link::LinkType,
        frame: &'a [u8],
        counters: &mut DecodeCounters,
        out: &mut DecodedPacket<'a>,
    ) {
        walk::walk(&self.config, link, frame, counters, out);
    }
}

#[cfg(test)]
mod tests {
    use super::link::LinkType;
    use super::*;
    use proptest::prelude::*;

    const LINKS: [LinkType; 8] = [
        LinkType::ETHERNET,
        LinkType::RAW,
        LinkType::IPV4,
        LinkType::IPV6,
        LinkType::LINUX_SLL,
        LinkType::LINUX_SLL2,
        LinkType::NULL,
        LinkType::LOOP,
    ];

    /// Every frame of every generated case in `pcaps/`.
    fn case_frames() -> Vec<Vec<u8>> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
        let mut frames = Vec::new();
        let mut dirs: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().collect();
        dirs.sort_by_key(|d| d.path());
        for dir in dirs {
            let input = dir.path().join("input.pcap");
            if !input.is_file() {
                continue;
            }
            let mut reader = crate::capture::replay::ReplayReader::open(&input).unwrap();
            while let Ok(Some(rec)) = reader.next_packet() {
                frames.push(rec.data.to_vec());
            }
        }
        assert!(
            frames.len() > 300,
            "the bundled cases hold a few hundred frames"
        );
        frames
    }

    fn decode(link: LinkType, frame: &[u8]) -> (usize, bool, DecodeCounters) {
        let mut counters = DecodeCounters::default();
        let d = Decoder::default().decode(link, frame, frame.len() as u32, &mut counters);
        assert!(d.inner_depth <= d.tunnels.len());
        assert!(d.tunnels.len() <= Decoder::default().config().max_tunnel_depth);
        (d.tunnels.len(), d.inner.is_some(), counters)
    }

    #[test]
    fn every_prefix_of_every_generated_frame_decodes_without_panic() {
        for frame in case_frames() {
            let (full_depth, _, _) = decode(LinkType::ETHERNET, &frame);
            for n in 0..frame.len() {
                let (depth, _, _) = decode(LinkType::ETHERNET, &frame[..n]);
                // A prefix can never reveal more tunnel layers than the whole frame.
                assert!(
                    depth <= full_depth,
                    "prefix {n} of a {full_depth}-deep frame"
                );
            }
        }
    }

    #[test]
    fn nested_aws_mirror_decodes_to_the_inner_flow() {
        // pcaps/aws-gwlb-double: Geneve (VNI 0) around VXLAN (VNI 4242/4243).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
        let input = root.join("aws-gwlb-double/input.pcap");
        let mut reader = crate::capture::replay::ReplayReader::open(&input).unwrap();
        let rec = reader.next_packet().unwrap().unwrap();
        let mut counters = DecodeCounters::default();
        let d = Decoder::default().decode(rec.link, rec.data, rec.orig_len, &mut counters);
        let kinds: Vec<_> = d.tunnels.iter().map(|t| (t.kind, t.id)).collect();
        assert_eq!(kinds[0], (TunnelKind::Geneve, 0));
        assert_eq!(kinds[1].0, TunnelKind::Vxlan);
        assert!(kinds[1].1 == 4242 || kinds[1].1 == 4243);
        assert_eq!(d.inner_depth, 2);
        assert!(d.inner.is_some());
        assert_eq!(counters, DecodeCounters::default());
    }

    #[test]
    fn depth_cap_stops_at_the_cap_and_counts() {
        let frames = case_frames();
        let deep = frames
            .iter()
            .find(|f| {
                let mut c = DecodeCounters::default();
                let d = Decoder::default().decode(LinkType::ETHERNET, f, f.len() as u32, &mut c);
                c.get("decoder.tunnel.depth_exceeded") == 1 && d.tunnels.len() == 4
            })
            .expect("nested-too-deep holds frames deeper than the cap");
        let shallow = Decoder::new(DecodeConfig {
            max_tunnel_depth: 2,
            ..DecodeConfig::default()
        });
        let mut c = DecodeCounters::default();
        let d = shallow.decode(LinkType::ETHERNET, deep, deep.len() as u32, &mut c);
        assert_eq!(d.tunnels.len(), 2);
        assert_eq!(c.get("decoder.tunnel.depth_exceeded"), 1);
        // At the cap the tunnel packet itself stays the innermost packet.
        assert_eq!(d.inner_depth, 2);
        assert_eq!(d.inner.map(|p| p.dst_port), Some(4789));
    }

    #[test]
    fn probing_finds_vxlan_on_a_nonstandard_port_only_when_enabled() {
        let frames = case_frames();
        // Take a VXLAN frame and move its destination port from 4789 to 9999.
        let mut frame = frames
            .iter()
            .find(|f| {
                let mut c = DecodeCounters::default();
                let d = Decoder::default().decode(LinkType::ETHERNET, f, f.len() as u32, &mut c);
                d.tunnels.len() == 1
                    && d.tunnels[0].kind == TunnelKind::Vxlan
                    && d.tunnels[0].outer_dst_port == 4789
                    && f.get(12..14) == Some(&[0x08, 0x00][..])
            })
            .expect("a plain IPv4 VXLAN frame")
            .clone();
        // Ethernet 14 + IPv4 header (IHL) + UDP destination port at offset 2.
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        let dport = 14 + ihl + 2;
        frame[dport..dport + 2].copy_from_slice(&9999u16.to_be_bytes());
        frame[14 + ihl + 6..14 + ihl + 8].copy_from_slice(&[0, 0]); // UDP checksum optional
        let mut c = DecodeCounters::default();
        let d = Decoder::default().decode(LinkType::ETHERNET, &frame, frame.len() as u32, &mut c);
        assert_eq!(d.tunnels.len(), 1);
        assert!(d.tunnels[0].nonstandard_port);
        assert_eq!(c.get("decoder.udp.nonstandard_port_tunnel"), 1);
        let off = Decoder::new(DecodeConfig {
            probe_nonstandard_ports: false,
            ..DecodeConfig::default()
        });
        let d = off.decode(LinkType::ETHERNET, &frame, frame.len() as u32, &mut c);
        assert!(d.tunnels.is_empty());
        assert_eq!(d.inner.map(|p| p.dst_port), Some(9999));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_on_any_link(bytes in proptest::collection::vec(any::<u8>(), 0..600), link in 0usize..8) {
            let _ = decode(LINKS[link], &bytes);
        }

        #[test]
        fn corrupted_generated_frames_never_panic(
            pick in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            static FRAMES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
            let frames = FRAMES.get_or_init(case_frames);
            let mut frame = pick.get(frames).clone();
            for (at, value) in flips {
                let i = at.index(frame.len().max(1));
                if let Some(b) = frame.get_mut(i) {
                    *b = value;
                }
            }
            let _ = decode(LinkType::ETHERNET, &frame);
        }

        #[test]
        fn random_udp_payloads_are_not_taken_for_tunnels(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            // Strict probing must not invent tunnels from random data: it needs an exact
            // flags byte, zero reserved bits and an inner IPv4 header with a valid checksum.
            let frame = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(40000, 31337);
            let mut bytes = Vec::new();
            frame.write(&mut bytes, &payload).unwrap();
            let (depth, _, _) = decode(LinkType::ETHERNET, &bytes);
            prop_assert_eq!(depth, 0);
        }
    }
}
