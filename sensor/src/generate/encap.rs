//! Encapsulation: tunnel header writers and the stack that wraps an inner frame in them.
//!
//! This is the writer side of the formats in `decode/` (VXLAN RFC 7348, Geneve RFC 8926, GRE
//! RFC 2784/2890, NVGRE RFC 7637, GRE-in-UDP RFC 8086, PPTP enhanced GRE RFC 2637, ERSPAN
//! types I/II/III as in Linux `include/net/erspan.h`). An [`Encap`] describes one layer (kind,
//! outer addresses, ports, id, options); an [`EncapStack`] holds the layers outermost first
//! plus their per-layer state (IP id, GRE sequence numbers) and turns an inner [`Frame`] into
//! the outer one. Outer UDP checksums are zero over IPv4 (allowed by each RFC, and what cloud
//! mirrors send) and computed over IPv6. [`EncapKind::Raw`] writes caller-given header bytes
//! for malformed-input scenarios.

use std::net::IpAddr;

use etherparse::{IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, UdpHeader};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::GenerateError;
use super::frame::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_TEB, Frame, Link, LinkTags, mac_for};
use super::timeline::BASE_TIME_S;

/// IANA UDP port of VXLAN.
pub const VXLAN_PORT: u16 = 4789;
/// IANA UDP port of Geneve.
pub const GENEVE_PORT: u16 = 6081;
/// IANA UDP port of GRE-in-UDP.
pub const GRE_IN_UDP_PORT: u16 = 4754;
/// IP protocol number of GRE.
pub const IP_PROTO_GRE: u8 = 47;
/// GRE protocol type of ERSPAN types I and II.
pub const GRE_PROTO_ERSPAN_1_2: u16 = 0x88BE;
/// GRE protocol type of ERSPAN type III.
pub const GRE_PROTO_ERSPAN_3: u16 = 0x22EB;
/// GRE protocol type of PPP (PPTP).
pub const GRE_PROTO_PPP: u16 = 0x880B;
/// First port of the dynamic range that flow-hash source ports are drawn from (RFC 7348 §5).
const FLOW_HASH_PORT_BASE: u16 = 49_152;

/// GRE flag bits in the first header byte.
mod gre_flag {
    pub(super) const CHECKSUM: u8 = 0x80;
    pub(super) const KEY: u8 = 0x20;
    pub(super) const SEQUENCE: u8 = 0x10;
    /// Second byte: acknowledgement present (GRE v1 only).
    pub(super) const ACK: u8 = 0x80;
}

/// How the outer UDP source port of a layer is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourcePort {
    /// Always this port.
    Fixed(u16),
    /// A port in 49152..=65535 from a hash of the innermost flow (both directions alike), as
    /// VXLAN and Geneve senders do for ECMP entropy; `salt` separates layers of one stack.
    FlowHash {
        /// Mixed into the hash.
        salt: u32,
    },
}

/// What a Geneve header says follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenevePayload {
    /// An Ethernet frame (protocol type 0x6558).
    Ethernet,
    /// A bare IP packet (protocol type 0x0800 or 0x86DD, from the inner frame).
    Ip,
}

/// One Geneve option TLV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneveOption {
    /// Option class (0x0108 AWS, 0x0132 Google, ...).
    pub class: u16,
    /// Option type; the high bit marks it critical.
    pub option_type: u8,
    /// Option data: a multiple of 4 bytes, at most 124.
    pub data: Vec<u8>,
}

/// The ERSPAN type III platform-specific subheader (sent when the O bit is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErspanPlatform {
    /// Platform id (6 bits).
    pub platform_id: u8,
    /// Platform-specific information (58 bits).
    pub info: u64,
}

/// What follows caller-given header bytes of an [`EncapKind::Raw`] layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawPayload {
    /// Nothing: the packet ends after the header.
    Nothing,
    /// The inner Ethernet frame.
    Ethernet,
    /// The inner IP packet.
    Ip,
}

/// How a [`EncapKind::Raw`] layer is carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawCarrier {
    /// In UDP to this destination port.
    Udp {
        /// Destination port.
        dst_port: u16,
    },
    /// Directly in IP with this protocol number.
    Ip {
        /// IP protocol number.
        protocol: u8,
    },
}

/// The kind of one encapsulation layer and its header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncapKind {
    /// VXLAN (UDP 4789) around an Ethernet frame.
    Vxlan {
        /// 24-bit network identifier.
        vni: u32,
    },
    /// Geneve (UDP 6081) with options.
    Geneve {
        /// 24-bit network identifier.
        vni: u32,
        /// Ethernet frame or bare IP packet.
        payload: GenevePayload,
        /// Option TLVs, in wire order.
        options: Vec<GeneveOption>,
    },
    /// IP in GRE (protocol type 0x0800 or 0x86DD from the inner packet).
    IpGre {
        /// Key field (K bit).
        key: Option<u32>,
        /// Write a checksum (C bit).
        checksum: bool,
        /// Write a sequence number (S bit).
        sequence: bool,
    },
    /// Transparent Ethernet bridging over GRE (0x6558).
    GreTeb {
        /// Key field (K bit).
        key: Option<u32>,
    },
    /// NVGRE: GRE-TEB with key = VSID << 8 | flow id (flow id from the inner flow hash).
    Nvgre {
        /// 24-bit virtual subnet id.
        vsid: u32,
    },
    /// ERSPAN type I: GRE 0x88BE without sequence number, no ERSPAN header.
    Erspan1,
    /// ERSPAN type II: GRE 0x88BE with a sequence number and a version 1 header.
    Erspan2 {
        /// 10-bit session id.
        session_id: u16,
        /// 20-bit port index.
        index: u32,
    },
    /// ERSPAN type III: GRE 0x22EB with a sequence number and a version 2 header.
    Erspan3 {
        /// 10-bit session id.
        session_id: u16,
        /// 6-bit hardware id.
        hardware_id: u8,
        /// D bit: mirrored on egress.
        egress: bool,
        /// Platform subheader; `Some` sets the O bit.
        platform: Option<ErspanPlatform>,
    },
    /// GRE-in-UDP (UDP 4754) around an IP packet.
    GreInUdp {
        /// Key field (K bit).
        key: Option<u32>,
    },
    /// PPTP enhanced GRE (version 1) around PPP around an IP packet.
    Pptp {
        /// Peer's call id (low half of the key).
        call_id: u16,
    },
    /// Caller-given header bytes, for malformed input.
    Raw {
        /// UDP port or IP protocol.
        carrier: RawCarrier,
        /// The header bytes, written as given.
        header: Vec<u8>,
        /// What follows the header.
        payload: RawPayload,
    },
}

/// One encapsulation layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encap {
    /// Kind and header fields.
    pub kind: EncapKind,
    /// Outer IP source (the mirror source).
    pub outer_src: IpAddr,
    /// Outer IP destination (the collector).
    pub outer_dst: IpAddr,
    /// Outer UDP source port (UDP-carried kinds only).
    pub src_port: SourcePort,
    /// Outer UDP destination port; `None` uses the kind's IANA port.
    pub dst_port: Option<u16>,
    /// Outer TTL or hop limit.
    pub ttl: u8,
    /// Keep at most this many bytes after the tunnel header (AWS `PacketLength`).
    pub payload_limit: Option<usize>,
}

/// Encapsulation layers, outermost first, with the state that changes per packet.
#[derive(Clone, Debug)]
pub struct EncapStack {
    layers: Vec<Encap>,
    state: Vec<LayerState>,
}

#[derive(Clone, Copy, Debug)]
struct LayerState {
    next_ip_id: u16,
    next_gre_sequence: u32,
}

/// What a layer carries and how it is carried.
enum Carrier {
    Udp { dst_port: u16 },
    Ip { protocol: u8 },
}

impl Encap {
    /// A layer of `kind` from `outer_src` to `outer_dst` with defaults: flow-hash source port,
    /// IANA destination port, TTL 64, no payload limit.
    pub fn new(kind: EncapKind, outer_src: IpAddr, outer_dst: IpAddr) -> Self {
        Encap {
            kind,
            outer_src,
            outer_dst,
            src_port: SourcePort::FlowHash { salt: 0 },
            dst_port: None,
            ttl: 64,
            payload_limit: None,
        }
    }

    /// The same layer with another source port rule.
    pub fn with_src_port(mut self, src_port: SourcePort) -> Self {
        self.src_port = src_port;
        self
    }

    /// The same layer sent to another UDP destination port than its kind's IANA port (a
    /// collector listening where nobody configured it); no effect on GRE-carried kinds.
    pub fn with_dst_port(mut self, dst_port: u16) -> Self {
        self.dst_port = Some(dst_port);
        self
    }

    /// The same layer keeping at most `limit` bytes after the tunnel header.
    pub fn with_payload_limit(mut self, limit: usize) -> Self {
        self.payload_limit = Some(limit);
        self
    }

    fn carrier(&self) -> Carrier {
        let udp = |standard_port: u16| Carrier::Udp {
            dst_port: self.dst_port.unwrap_or(standard_port),
        };
        match &self.kind {
            EncapKind::Vxlan { .. } => udp(VXLAN_PORT),
            EncapKind::Geneve { .. } => udp(GENEVE_PORT),
            EncapKind::GreInUdp { .. } => udp(GRE_IN_UDP_PORT),
            EncapKind::Raw {
                carrier: RawCarrier::Udp { dst_port },
                ..
            } => udp(*dst_port),
            EncapKind::Raw {
                carrier: RawCarrier::Ip { protocol },
                ..
            } => Carrier::Ip {
                protocol: *protocol,
            },
            EncapKind::IpGre { .. }
            | EncapKind::GreTeb { .. }
            | EncapKind::Nvgre { .. }
            | EncapKind::Erspan1
            | EncapKind::Erspan2 { .. }
            | EncapKind::Erspan3 { .. }
            | EncapKind::Pptp { .. } => Carrier::Ip {
                protocol: IP_PROTO_GRE,
            },
        }
    }

    /// True when the layer carries an Ethernet frame rather than a bare IP packet.
    fn carries_ethernet(&self) -> bool {
        match &self.kind {
            EncapKind::Vxlan { .. }
            | EncapKind::GreTeb { .. }
            | EncapKind::Nvgre { .. }
            | EncapKind::Erspan1
            | EncapKind::Erspan2 { .. }
            | EncapKind::Erspan3 { .. } => true,
            EncapKind::Geneve { payload, .. } => *payload == GenevePayload::Ethernet,
            EncapKind::Raw { payload, .. } => *payload == RawPayload::Ethernet,
            EncapKind::IpGre { .. } | EncapKind::GreInUdp { .. } | EncapKind::Pptp { .. } => false,
        }
    }

    /// The tunnel header for `inner` (whose bytes are `payload`, already limited).
    fn header(
        &self,
        inner: &Frame,
        payload: &[u8],
        state: &mut LayerState,
        time_us: u64,
    ) -> Result<Vec<u8>, GenerateError> {
        let mut next_sequence = || {
            let sequence = state.next_gre_sequence;
            state.next_gre_sequence = sequence.wrapping_add(1);
            sequence
        };
        let header = match &self.kind {
            EncapKind::Vxlan { vni } => vxlan_header(*vni)?.to_vec(),
            EncapKind::Geneve {
                vni,
                payload: carried,
                options,
            } => {
                let protocol_type = match carried {
                    GenevePayload::Ethernet => ETHERTYPE_TEB,
                    GenevePayload::Ip => ip_ether_type(inner)?,
                };
                geneve_header(*vni, protocol_type, options)?
            }
            EncapKind::IpGre {
                key,
                checksum,
                sequence,
            } => {
                let sequence = sequence.then(&mut next_sequence);
                let fields = GreFields {
                    checksum: *checksum,
                    key: *key,
                    sequence,
                    protocol_type: ip_ether_type(inner)?,
                };
                gre_header(&fields, payload)
            }
            EncapKind::GreTeb { key } => gre_header(&GreFields::new(ETHERTYPE_TEB, *key), payload),
            EncapKind::Nvgre { vsid } => {
                if *vsid > 0x00FF_FFFF {
                    return Err(GenerateError::build("NVGRE key", "VSID exceeds 24 bits"));
                }
                let flow_id = inner.flow.symmetric_hash(*vsid) & 0xFF;
                let key = (vsid << 8) | flow_id;
                gre_header(&GreFields::new(ETHERTYPE_TEB, Some(key)), payload)
            }
            EncapKind::Erspan1 => gre_header(&GreFields::new(GRE_PROTO_ERSPAN_1_2, None), payload),
            EncapKind::Erspan2 { session_id, index } => {
                let mut fields = GreFields::new(GRE_PROTO_ERSPAN_1_2, None);
                fields.sequence = Some(next_sequence());
                let mut header = gre_header(&fields, payload);
                header.extend_from_slice(&erspan2_header(*session_id, inner_vlan(inner), *index)?);
                header
            }
            EncapKind::Erspan3 {
                session_id,
                hardware_id,
                egress,
                platform,
            } => {
                let mut fields = GreFields::new(GRE_PROTO_ERSPAN_3, None);
                fields.sequence = Some(next_sequence());
                let mut header = gre_header(&fields, payload);
                let erspan = Erspan3Fields {
                    session_id: *session_id,
                    vlan: inner_vlan(inner),
                    // Gra 00: the packet time in 100 µs ticks, wrapping (as Linux does).
                    timestamp: ((BASE_TIME_S * 1_000_000 + time_us) / 100) as u32,
                    hardware_id: *hardware_id,
                    egress: *egress,
                    platform: *platform,
                };
                header.extend_from_slice(&erspan3_header(&erspan)?);
                header
            }
            EncapKind::GreInUdp { key } => {
                gre_header(&GreFields::new(ip_ether_type(inner)?, *key), payload)
            }
            EncapKind::Pptp { call_id } => {
                let ppp = ppp_header(ip_ether_type(inner)?)?;
                let ppp_len = ppp.len() + payload.len();
                let mut header = pptp_gre_header(*call_id, ppp_len, next_sequence())?;
                header.extend_from_slice(&ppp);
                header
            }
            EncapKind::Raw { header, .. } => header.clone(),
        };
        Ok(header)
    }
}

impl EncapStack {
    /// A stack of `layers`, outermost first. Per-layer IP ids and GRE sequence numbers start
    /// at values drawn from `rng`.
    pub fn new(layers: Vec<Encap>, rng: &mut ChaCha8Rng) -> Self {
        let state = layers
            .iter()
            .map(|_| LayerState {
                next_ip_id: rng.random(),
                next_gre_sequence: rng.random_range(0..1_000_000),
            })
            .collect();
        EncapStack { layers, state }
    }

    /// The layers, outermost first.
    pub fn layers(&self) -> &[Encap] {
        &self.layers
    }

    /// Changes the payload limit of layer `layer_idx` (0 = outermost) for the next packets, as
    /// a mirror session whose `PacketLength` applies to some traffic only.
    pub fn set_payload_limit(
        &mut self,
        layer_idx: usize,
        limit: Option<usize>,
    ) -> Result<(), GenerateError> {
        let layer = self
            .layers
            .get_mut(layer_idx)
            .ok_or_else(|| GenerateError::build("encapsulation stack", "no such layer"))?;
        layer.payload_limit = limit;
        Ok(())
    }

    /// Wraps `inner` in every layer, innermost layer first; `time_us` feeds header
    /// timestamps (ERSPAN III).
    pub fn wrap(&mut self, inner: &Frame, time_us: u64) -> Result<Frame, GenerateError> {
        let mut current = inner.clone();
        for (layer, state) in self.layers.iter().zip(self.state.iter_mut()).rev() {
            current = wrap_one(layer, state, &current, time_us)?;
        }
        Ok(current)
    }
}

fn wrap_one(
    layer: &Encap,
    state: &mut LayerState,
    inner: &Frame,
    time_us: u64,
) -> Result<Frame, GenerateError> {
    let mut payload = match &layer.kind {
        EncapKind::Raw {
            payload: RawPayload::Nothing,
            ..
        } => Vec::new(),
        _ if layer.carries_ethernet() => inner.to_ethernet_bytes()?,
        _ => inner.network_bytes.clone(),
    };
    if let Some(limit) = layer.payload_limit {
        payload.truncate(limit);
    }
    let mut tunnel = layer.header(inner, &payload, state, time_us)?;
    tunnel.extend_from_slice(&payload);

    let (ip_proto, transport) = match layer.carrier() {
        Carrier::Udp { dst_port } => {
            let src_port = match layer.src_port {
                SourcePort::Fixed(port) => port,
                SourcePort::FlowHash { salt } => {
                    let spread = inner.flow.symmetric_hash(salt)
                        % u32::from(u16::MAX - FLOW_HASH_PORT_BASE + 1);
                    FLOW_HASH_PORT_BASE + spread as u16
                }
            };
            (
                IpNumber::UDP,
                udp_datagram(layer, src_port, dst_port, &tunnel)?,
            )
        }
        Carrier::Ip { protocol } => (IpNumber(protocol), tunnel),
    };
    let network_bytes = outer_ip_packet(layer, state, ip_proto, &transport)?;
    Ok(Frame {
        link: Link {
            src_mac: mac_for(layer.outer_src),
            dst_mac: mac_for(layer.outer_dst),
            tags: LinkTags::Untagged,
        },
        ether_type: if layer.outer_src.is_ipv4() {
            ETHERTYPE_IPV4
        } else {
            ETHERTYPE_IPV6
        },
        network_bytes,
        flow: inner.flow,
    })
}

fn udp_datagram(
    layer: &Encap,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Result<Vec<u8>, GenerateError> {
    let header = match (layer.outer_src, layer.outer_dst) {
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let ip = Ipv6Header {
                next_header: IpNumber::UDP,
                hop_limit: layer.ttl,
                source: src.octets(),
                destination: dst.octets(),
                ..Ipv6Header::default()
            };
            UdpHeader::with_ipv6_checksum(src_port, dst_port, &ip, payload)
                .map_err(|err| GenerateError::build("outer UDP header", err))?
        }
        _ => UdpHeader {
            source_port: src_port,
            destination_port: dst_port,
            length: u16::try_from(UdpHeader::LEN + payload.len())
                .map_err(|err| GenerateError::build("outer UDP header", err))?,
            checksum: 0,
        },
    };
    let mut datagram = Vec::with_capacity(UdpHeader::LEN + payload.len());
    datagram.extend_from_slice(&header.to_bytes());
    datagram.extend_from_slice(payload);
    Ok(datagram)
}

fn outer_ip_packet(
    layer: &Encap,
    state: &mut LayerState,
    protocol: IpNumber,
    payload: &[u8],
) -> Result<Vec<u8>, GenerateError> {
    let mut packet = Vec::with_capacity(40 + payload.len());
    match (layer.outer_src, layer.outer_dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let payload_len = u16::try_from(payload.len())
                .map_err(|err| GenerateError::build("outer IPv4 header", err))?;
            let mut header =
                Ipv4Header::new(payload_len, layer.ttl, protocol, src.octets(), dst.octets())
                    .map_err(|err| GenerateError::build("outer IPv4 header", err))?;
            header.identification = state.next_ip_id;
            state.next_ip_id = state.next_ip_id.wrapping_add(1);
            header
                .write(&mut packet)
                .map_err(|err| GenerateError::build("outer IPv4 header", err))?;
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let header = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: u16::try_from(payload.len())
                    .map_err(|err| GenerateError::build("outer IPv6 header", err))?,
                next_header: protocol,
                hop_limit: layer.ttl,
                source: src.octets(),
                destination: dst.octets(),
            };
            packet.extend_from_slice(&header.to_bytes());
        }
        _ => {
            return Err(GenerateError::build(
                "outer IP header",
                "source and destination are of different address families",
            ));
        }
    }
    packet.extend_from_slice(payload);
    Ok(packet)
}

/// The EtherType of an inner frame that a layer carries as bare IP.
fn ip_ether_type(inner: &Frame) -> Result<u16, GenerateError> {
    match inner.ether_type {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(inner.ether_type),
        _ => Err(GenerateError::build(
            "IP encapsulation",
            "the inner frame does not hold an IP packet",
        )),
    }
}

/// The VLAN an inner frame was tagged with (ERSPAN reports it), 0 when untagged.
fn inner_vlan(inner: &Frame) -> u16 {
    match inner.link.tags {
        LinkTags::Vlan { vlan_id } => vlan_id,
        LinkTags::QinQ { outer_vlan_id, .. } => outer_vlan_id,
        LinkTags::Untagged | LinkTags::Mpls { .. } => 0,
    }
}

/// The optional fields of a GRE version 0 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GreFields {
    /// Write a checksum over header and payload (C bit).
    pub checksum: bool,
    /// Key (K bit).
    pub key: Option<u32>,
    /// Sequence number (S bit).
    pub sequence: Option<u32>,
    /// Protocol type (an EtherType).
    pub protocol_type: u16,
}

impl GreFields {
    /// No checksum, no sequence number, the given protocol type and key.
    pub fn new(protocol_type: u16, key: Option<u32>) -> Self {
        GreFields {
            checksum: false,
            key,
            sequence: None,
            protocol_type,
        }
    }
}

/// A VXLAN header: I flag, 24-bit VNI, reserved bits zero.
pub fn vxlan_header(vni: u32) -> Result<[u8; 8], GenerateError> {
    const FLAG_VNI_VALID: u8 = 0x08;
    if vni > 0x00FF_FFFF {
        return Err(GenerateError::build("VXLAN header", "VNI exceeds 24 bits"));
    }
    let vni = (vni << 8).to_be_bytes();
    Ok([FLAG_VNI_VALID, 0, 0, 0, vni[0], vni[1], vni[2], 0])
}

/// A Geneve header (version 0) with its options; the C bit is set when an option is critical.
pub fn geneve_header(
    vni: u32,
    protocol_type: u16,
    options: &[GeneveOption],
) -> Result<Vec<u8>, GenerateError> {
    const OPTION_CRITICAL: u8 = 0x80;
    const FLAG_CRITICAL: u8 = 0x40;
    const MAX_OPTION_DATA_BYTES: usize = 124;
    const MAX_OPTIONS_BYTES: usize = 252;
    if vni > 0x00FF_FFFF {
        return Err(GenerateError::build("Geneve header", "VNI exceeds 24 bits"));
    }
    let mut option_bytes = Vec::new();
    for option in options {
        if option.data.len() % 4 != 0 || option.data.len() > MAX_OPTION_DATA_BYTES {
            return Err(GenerateError::build(
                "Geneve option",
                "data must be a multiple of 4 bytes, at most 124",
            ));
        }
        option_bytes.extend_from_slice(&option.class.to_be_bytes());
        option_bytes.push(option.option_type);
        option_bytes.push((option.data.len() / 4) as u8);
        option_bytes.extend_from_slice(&option.data);
    }
    if option_bytes.len() > MAX_OPTIONS_BYTES {
        return Err(GenerateError::build(
            "Geneve header",
            "options exceed 252 bytes",
        ));
    }
    let critical = options
        .iter()
        .any(|option| option.option_type & OPTION_CRITICAL != 0);
    let mut header = Vec::with_capacity(8 + option_bytes.len());
    header.push((option_bytes.len() / 4) as u8);
    header.push(if critical { FLAG_CRITICAL } else { 0 });
    header.extend_from_slice(&protocol_type.to_be_bytes());
    let vni = (vni << 8).to_be_bytes();
    header.extend_from_slice(&[vni[0], vni[1], vni[2], 0]);
    header.extend_from_slice(&option_bytes);
    Ok(header)
}

/// A GRE version 0 header; the checksum (when asked for) covers the header and `payload`.
pub fn gre_header(fields: &GreFields, payload: &[u8]) -> Vec<u8> {
    let mut flags = 0u8;
    if fields.checksum {
        flags |= gre_flag::CHECKSUM;
    }
    if fields.key.is_some() {
        flags |= gre_flag::KEY;
    }
    if fields.sequence.is_some() {
        flags |= gre_flag::SEQUENCE;
    }
    let mut header = Vec::with_capacity(16);
    header.push(flags);
    header.push(0);
    header.extend_from_slice(&fields.protocol_type.to_be_bytes());
    let checksum_offset = header.len();
    if fields.checksum {
        header.extend_from_slice(&[0, 0, 0, 0]);
    }
    if let Some(key) = fields.key {
        header.extend_from_slice(&key.to_be_bytes());
    }
    if let Some(sequence) = fields.sequence {
        header.extend_from_slice(&sequence.to_be_bytes());
    }
    if fields.checksum {
        let checksum = internet_checksum(&[&header, payload]);
        header[checksum_offset..checksum_offset + 2].copy_from_slice(&checksum.to_be_bytes());
    }
    header
}

/// A PPTP enhanced GRE header (version 1, protocol 0x880B, K and S bits, no acknowledgement);
/// `ppp_len` is the length of the PPP frame that follows.
pub fn pptp_gre_header(
    call_id: u16,
    ppp_len: usize,
    sequence: u32,
) -> Result<Vec<u8>, GenerateError> {
    const VERSION_1: u8 = 0x01;
    let payload_len =
        u16::try_from(ppp_len).map_err(|err| GenerateError::build("PPTP GRE header", err))?;
    let mut header = Vec::with_capacity(12);
    header.push(gre_flag::KEY | gre_flag::SEQUENCE);
    header.push(VERSION_1 & !gre_flag::ACK);
    header.extend_from_slice(&GRE_PROTO_PPP.to_be_bytes());
    header.extend_from_slice(&payload_len.to_be_bytes());
    header.extend_from_slice(&call_id.to_be_bytes());
    header.extend_from_slice(&sequence.to_be_bytes());
    Ok(header)
}

/// A PPP header (address 0xFF, control 0x03, 2-byte protocol) for an IPv4 or IPv6 payload.
pub fn ppp_header(ether_type: u16) -> Result<[u8; 4], GenerateError> {
    const PPP_IPV4: u16 = 0x0021;
    const PPP_IPV6: u16 = 0x0057;
    let protocol = match ether_type {
        ETHERTYPE_IPV4 => PPP_IPV4,
        ETHERTYPE_IPV6 => PPP_IPV6,
        _ => return Err(GenerateError::build("PPP header", "payload is not IP")),
    };
    let protocol = protocol.to_be_bytes();
    Ok([0xFF, 0x03, protocol[0], protocol[1]])
}

/// An ERSPAN type II header (version 1): VLAN, COS 0, encapsulation type (0 untagged,
/// 3 tag kept in the frame), T 0, session id; then the port index.
pub fn erspan2_header(session_id: u16, vlan: u16, index: u32) -> Result<[u8; 8], GenerateError> {
    const VERSION_1: u32 = 1;
    const ENCAP_NO_VLAN: u32 = 0;
    const ENCAP_VLAN_IN_FRAME: u32 = 3;
    check_erspan_fields(session_id, vlan)?;
    if index > 0x000F_FFFF {
        return Err(GenerateError::build(
            "ERSPAN II header",
            "index exceeds 20 bits",
        ));
    }
    let encap_type = if vlan == 0 {
        ENCAP_NO_VLAN
    } else {
        ENCAP_VLAN_IN_FRAME
    };
    let first =
        (VERSION_1 << 28) | (u32::from(vlan) << 16) | (encap_type << 11) | u32::from(session_id);
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&first.to_be_bytes());
    header[4..].copy_from_slice(&index.to_be_bytes());
    Ok(header)
}

/// The fields of an ERSPAN type III header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erspan3Fields {
    /// 10-bit session id.
    pub session_id: u16,
    /// Original VLAN (12 bits).
    pub vlan: u16,
    /// Timestamp in units of the granularity (00: 100 µs).
    pub timestamp: u32,
    /// 6-bit hardware id.
    pub hardware_id: u8,
    /// D bit.
    pub egress: bool,
    /// Platform subheader; `Some` sets the O bit.
    pub platform: Option<ErspanPlatform>,
}

/// An ERSPAN type III header (version 2), 12 bytes, plus the 8-byte platform subheader when
/// the O bit is set. BSO, T, SGT, P and FT are 0 (a whole Ethernet frame); granularity 00.
pub fn erspan3_header(fields: &Erspan3Fields) -> Result<Vec<u8>, GenerateError> {
    const VERSION_2: u32 = 2;
    check_erspan_fields(fields.session_id, fields.vlan)?;
    if fields.hardware_id > 0x3F {
        return Err(GenerateError::build(
            "ERSPAN III header",
            "hardware id exceeds 6 bits",
        ));
    }
    let first = (VERSION_2 << 28) | (u32::from(fields.vlan) << 16) | u32::from(fields.session_id);
    let third = (u32::from(fields.hardware_id) << 4)
        | (u32::from(fields.egress) << 3)
        | u32::from(fields.platform.is_some());
    let mut header = Vec::with_capacity(20);
    header.extend_from_slice(&first.to_be_bytes());
    header.extend_from_slice(&fields.timestamp.to_be_bytes());
    header.extend_from_slice(&third.to_be_bytes());
    if let Some(platform) = fields.platform {
        if platform.platform_id > 0x3F || platform.info >> 58 != 0 {
            return Err(GenerateError::build(
                "ERSPAN III platform subheader",
                "platform id exceeds 6 bits or information exceeds 58 bits",
            ));
        }
        let subheader = (u64::from(platform.platform_id) << 58) | platform.info;
        header.extend_from_slice(&subheader.to_be_bytes());
    }
    Ok(header)
}

fn check_erspan_fields(session_id: u16, vlan: u16) -> Result<(), GenerateError> {
    if session_id > 0x03FF || vlan > 0x0FFF {
        return Err(GenerateError::build(
            "ERSPAN header",
            "session id exceeds 10 bits or VLAN exceeds 12 bits",
        ));
    }
    Ok(())
}

/// The RFC 1071 checksum of the concatenated `parts`.
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut pending: Option<u8> = None;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        match pending.take() {
            Some(high) => sum += u32::from(u16::from_be_bytes([high, *byte])),
            None => pending = Some(*byte),
        }
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    if let Some(high) = pending {
        sum += u32::from(u16::from_be_bytes([high, 0]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}
