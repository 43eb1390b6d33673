//! The bounded layer walk from a captured frame to its innermost IP packet.
//!
//! A cursor loop (no recursion) moves through [`Next`] states; each tunnel peeled pushes a
//! [`TunnelLayer`] into a fixed-capacity stack. The loop is bounded by the number of layers a
//! frame can hold, so no byte sequence can make it spin. Errors are counted in
//! [`DecodeCounters`] and end the walk with what was decoded so far.
//!
//! Two paths slice the standard layers, both with etherparse. The fast path ([`fast_ip`])
//! takes the common shape, Ethernet with up to three VLAN tags, then IPv4 or IPv6 and its
//! transport, from etherparse's per-layer slices ([`LaxIpSlice`], [`TcpSlice`], ...), and
//! only when they slice without a stop error. Everything else (truncated or malformed
//! headers, IPv6 extension errors, ARP, MPLS after VLAN, too many tags) goes to the general
//! path, a whole [`LaxSlicedPacket`], whose 328 bytes were built and moved at every stage of
//! its cursor, for every layer of every packet. Both end in the same [`step_ip`], so the
//! result is identical, which the tests check frame by frame (generated cases, the shared
//! real captures, their prefixes, corrupted copies).
//!
//! Fragments are not reassembled and their transport is not read (ports stay 0), with one
//! exception: the first fragment (offset 0) of an outer IP packet carrying GRE holds the GRE
//! header and the start of the mirrored frame, so the walk peels it, as tshark does with
//! reassembly off. The inner packet is then cut short and the frame counts as truncated; later
//! fragments stay the outer packet. Mirror paths do fragment GRE (zeek__erspan.pcap in the
//! shared captures). UDP tunnels are looked for in a first fragment too (etherparse does not
//! slice a fragment's UDP header, so the walk reads its 8 bytes): VXLAN endpoints must not
//! fragment (RFC 7348 §4.3) and Geneve endpoints should avoid it (RFC 8926 §4.1.1), but an
//! adversary can (`pcaps/evasion-outer-fragments`); a fragment in which no tunnel is found
//! keeps ports 0.
//! PPP is followed inside PPTP (GRE v1) and inside plain GRE v0 (protocol 0x880B).

use etherparse::err;
use etherparse::{
    EtherType, Ethernet2Slice, Icmpv4Slice, Icmpv6Slice, IgmpSlice, IpNumber, LaxIpSlice,
    LaxIpv4Slice, LaxIpv6Slice, LaxNetSlice, LaxSlicedPacket, LenSource, TcpSlice, TransportSlice,
    UdpSlice,
};

use super::error::{DecodeError, Layer};
use super::erspan::{Erspan2Slice, Erspan3Slice};
use super::geneve::GeneveSlice;
use super::gre::{GreSlice, PppSlice};
use super::link::{
    LinkType, NullFamily, NullSlice, PpiSlice, Sll2Slice, SllSlice, cooked_ether_type,
};
use super::mpls::{MplsPayload, MplsSlice};
use super::pppoe::PppoeSlice;
use super::vxlan::VxlanSlice;
use super::{
    DecodeConfig, DecodeCounters, DecodeEvent, DecodedPacket, InnerPacket, MAX_TUNNEL_DEPTH_CAP,
    MAX_VLAN_TAGS, TcpInfo, TunnelKind, TunnelLayer,
};
use flowtable::IpProto;

/// EtherTypes the walk follows itself (etherparse handles IP, ARP and VLAN tags).
mod ether_type {
    pub(super) const TEB: u16 = 0x6558;
    pub(super) const MPLS_UNICAST: u16 = 0x8847;
    pub(super) const MPLS_MULTICAST: u16 = 0x8848;
    pub(super) const ERSPAN_1_2: u16 = 0x88BE;
    pub(super) const ERSPAN_3: u16 = 0x22EB;
    pub(super) const PPP: u16 = 0x880B;
    pub(super) const IPV4: u16 = 0x0800;
    pub(super) const IPV6: u16 = 0x86DD;
    pub(super) const PPPOE_SESSION: u16 = super::PppoeSlice::ETHER_TYPE_SESSION;
}

/// PPP protocol numbers carried in PPTP.
mod ppp_proto {
    pub(super) const IPV4: u16 = 0x0021;
    pub(super) const IPV6: u16 = 0x0057;
}

/// Where the walk goes next.
#[derive(Clone, Copy)]
enum Next<'a> {
    /// An Ethernet II frame.
    Ethernet(&'a [u8]),
    /// A payload identified by an EtherType (after SLL, GRE, Geneve, ...).
    EtherType(u16, &'a [u8]),
    /// A bare IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// Nothing more to decode.
    Done,
    /// Returned by a fast step only: it does not take this packet, the general path does.
    /// (A sentinel rather than an `Option<Next>`: the step's result then goes straight into
    /// the walk's state, where taking it out of an `Option` copied it through memory and
    /// stalled on store forwarding every packet.)
    Slow,
}

/// Outer IP context of the layer being decoded, needed to describe a tunnel found inside it.
#[derive(Clone, Copy)]
struct OuterIp {
    src: [u8; 16],
    dst: [u8; 16],
}

/// Decodes one frame into `out`, from [`DecodedPacket::empty`]. See the module
/// documentation for the guarantees.
///
/// Filled in place rather than returned: the decoded packet is several hundred bytes, and
/// returning it copied it into the caller's frame on every packet (4 % of a replay).
pub(super) fn walk<'a>(
    config: &DecodeConfig,
    link: LinkType,
    frame: &'a [u8],
    counters: &mut DecodeCounters,
    out: &mut DecodedPacket<'a>,
) {
    walk_with::<true>(config, link, frame, counters, out);
}

#[cfg(test)]
fn fresh<'a>(captured: usize, orig_len: u32) -> DecodedPacket<'a> {
    DecodedPacket::empty(captured, orig_len)
}

/// [`walk`], with the fast path of the common layers (`FAST`) or without it: the tests check
/// that both give the same result.
#[inline(always)]
fn walk_with<'a, const FAST: bool>(
    config: &DecodeConfig,
    link: LinkType,
    frame: &'a [u8],
    counters: &mut DecodeCounters,
    out: &mut DecodedPacket<'a>,
) {
    let mut next = start(link, frame, counters);
    // Every iteration consumes at least one header, and at most `max_tunnel_depth` tunnels
    // are peeled, each needing at most a few iterations (tunnel, link, MPLS); the bound only
    // guards against a logic error turning into an endless loop.
    let max_steps = 4 * (MAX_TUNNEL_DEPTH_CAP + 2);
    for _ in 0..max_steps {
        let step = next;
        next = match step {
            Next::Done | Next::Slow => break,
            Next::Ethernet(bytes) if FAST => fast_ethernet(config, bytes, out, counters),
            Next::Ethernet(bytes) => step_ethernet_general(config, bytes, out, counters),
            Next::EtherType(et, bytes) => step_ether_type::<FAST>(config, et, bytes, out, counters),
            Next::Ip(bytes) if FAST => fast_ip(config, bytes, out, counters),
            Next::Ip(bytes) => step_ip_general(config, bytes, out, counters),
        };
        if let Next::Slow = next {
            next = match step {
                Next::Ethernet(bytes) => step_ethernet_general(config, bytes, out, counters),
                Next::Ip(bytes) => step_ip_general(config, bytes, out, counters),
                _ => Next::Done,
            };
        }
    }
    if out.truncated {
        counters.event(DecodeEvent::PacketTruncated);
    }
}

/// The general path of an Ethernet frame: etherparse's `LaxSlicedPacket`, every error counted.
#[inline(never)]
fn step_ethernet_general<'a>(
    config: &DecodeConfig,
    bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    match LaxSlicedPacket::from_ethernet(bytes) {
        Ok(lax) => step_sliced(config, &lax, out, counters),
        Err(e) => {
            note_len_error(&e, Layer::Ethernet, out, counters);
            Next::Done
        }
    }
}

/// The general path of a bare IP packet: etherparse's `LaxSlicedPacket`, every error counted.
#[inline(never)]
fn step_ip_general<'a>(
    config: &DecodeConfig,
    bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    match LaxSlicedPacket::from_ip(bytes) {
        Ok(lax) => step_sliced(config, &lax, out, counters),
        Err(err::ip::LaxHeaderSliceError::Len(e)) => {
            note_len_error(&e, Layer::Ipv4, out, counters);
            Next::Done
        }
        Err(err::ip::LaxHeaderSliceError::Content(e)) => {
            counters.error(ip_header_error(&e));
            Next::Done
        }
    }
}

/// Reads the capture link header.
fn start<'a>(link: LinkType, frame: &'a [u8], counters: &mut DecodeCounters) -> Next<'a> {
    match link {
        LinkType::ETHERNET => Next::Ethernet(frame),
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => Next::Ip(frame),
        // Both cooked versions dispatch on the protocol field whatever the ARPHRD type, as
        // tshark does (see `link.rs`). etherparse's SLL slicer refused ARPHRD types it does not
        // know (IPGRE, loopback, NONE) and every refusal was counted as a too-small header:
        // 204 packets of 4 nDPI captures were lost that way (issue 17, item 6).
        LinkType::LINUX_SLL => match SllSlice::from_slice(frame) {
            Ok(sll) => match cooked_ether_type(sll.protocol_type()) {
                Some(et) => Next::EtherType(et, sll.payload()),
                None => Next::Done,
            },
            Err(e) => {
                counters.error(e);
                Next::Done
            }
        },
        LinkType::LINUX_SLL2 => match Sll2Slice::from_slice(frame) {
            Ok(sll) => match cooked_ether_type(sll.protocol_type()) {
                Some(et) => Next::EtherType(et, sll.payload()),
                None => Next::Done,
            },
            Err(e) => {
                counters.error(e);
                Next::Done
            }
        },
        LinkType::NULL | LinkType::LOOP => match NullSlice::from_slice(frame) {
            Ok(null) => match null.family() {
                NullFamily::Ipv4 | NullFamily::Ipv6 => Next::Ip(null.payload()),
                NullFamily::Other(_) => Next::Done,
            },
            Err(e) => {
                counters.error(e);
                Next::Done
            }
        },
        // PPI (wild/ndpi__someip_sd_sample.pcap): the frame after it, when it is one of the
        // link types that need no header of their own to be read.
        LinkType::PPI => match PpiSlice::from_slice(frame) {
            Ok(ppi) => match ppi.link_type() {
                LinkType::ETHERNET => Next::Ethernet(ppi.payload()),
                LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => Next::Ip(ppi.payload()),
                _ => {
                    counters.event(DecodeEvent::UnsupportedLinkType);
                    Next::Done
                }
            },
            Err(e) => {
                counters.error(e);
                Next::Done
            }
        },
        _ => {
            counters.event(DecodeEvent::UnsupportedLinkType);
            Next::Done
        }
    }
}

/// Follows a payload named by an EtherType.
fn step_ether_type<'a, const FAST: bool>(
    config: &DecodeConfig,
    et: u16,
    bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    match et {
        ether_type::TEB => Next::Ethernet(bytes),
        ether_type::PPPOE_SESSION => pppoe(bytes, out, counters),
        ether_type::MPLS_UNICAST | ether_type::MPLS_MULTICAST => {
            match MplsSlice::from_slice(bytes, config.max_mpls_labels) {
                Ok(mpls) => match mpls.payload_kind() {
                    MplsPayload::Ipv4 | MplsPayload::Ipv6 => Next::Ip(mpls.payload()),
                    MplsPayload::EthernetControlWord => Next::Ethernet(mpls.payload()),
                    MplsPayload::Unknown => Next::Done,
                },
                Err(e) => {
                    note_error(e, out, counters);
                    Next::Done
                }
            }
        }
        _ => {
            let fast = if FAST {
                fast_ether_payload(config, et, bytes, out, counters)
            } else {
                Next::Slow
            };
            match fast {
                Next::Slow => step_ether_type_general(config, et, bytes, out, counters),
                next => next,
            }
        }
    }
}

/// The general path of a payload named by an EtherType: etherparse's `LaxSlicedPacket`.
#[inline(never)]
fn step_ether_type_general<'a>(
    config: &DecodeConfig,
    et: u16,
    bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    let lax = LaxSlicedPacket::from_ether_type(EtherType(et), bytes);
    step_sliced(config, &lax, out, counters)
}

/// Fast path of an Ethernet II frame; see [`fast_ip`].
#[inline(always)]
fn fast_ethernet<'a>(
    config: &DecodeConfig,
    bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    let Ok(eth) = Ethernet2Slice::from_slice_without_fcs(bytes) else {
        return Next::Slow;
    };
    fast_ether_payload(
        config,
        eth.ether_type().0,
        eth.payload_slice(),
        out,
        counters,
    )
}

/// Fast path of an EtherType payload: up to [`LaxSlicedPacket`]'s number of VLAN tags, then
/// IPv4 or IPv6; see [`fast_ip`].
#[inline(always)]
fn fast_ether_payload<'a>(
    config: &DecodeConfig,
    mut et: u16,
    mut bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    // The general path follows at most `LINK_EXTS_CAP` VLAN tags and stops at one more; the
    // fast path leaves that case (and any other EtherType) to it.
    for _ in 0..etherparse::SlicedPacket::LINK_EXTS_CAP {
        match EtherType(et) {
            EtherType::IPV4 | EtherType::IPV6 => return fast_ip(config, bytes, out, counters),
            EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
                let Ok(vlan) = etherparse::SingleVlanSlice::from_slice(bytes) else {
                    return Next::Slow;
                };
                let inside = vlan.payload();
                et = inside.ether_type.0;
                bytes = inside.payload;
            }
            _ => return Next::Slow,
        }
    }
    match EtherType(et) {
        EtherType::IPV4 | EtherType::IPV6 => fast_ip(config, bytes, out, counters),
        _ => Next::Slow,
    }
}

/// Fast path of an IP packet: the same etherparse slices the general path builds
/// ([`LaxIpSlice`], then the transport slice), without assembling a whole
/// [`LaxSlicedPacket`] (328 bytes, moved at every stage of its cursor). It only takes packets
/// the general path would slice without a stop error (IPv6 extension or transport errors, and
/// whatever the IP slicer rejects, go there) and then runs the same [`step_ip`], so the
/// result is identical. `None`: nothing was recorded, take the general path.
///
/// Always inlined: as a call it cost 18 instructions of prologue and epilogue per packet (of
/// 1153 in the capture thread on `bench-flood64`, callgrind).
#[inline(always)]
fn fast_ip<'a>(
    config: &DecodeConfig,
    bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    // Looked at in place: moving the slice out of etherparse's result read its narrow stores
    // back as wide words (a store-forwarding stall every packet).
    let sliced = LaxIpSlice::from_slice(bytes);
    let Ok((ip, None)) = &sliced else {
        return Next::Slow;
    };
    let payload = match ip {
        LaxIpSlice::Ipv4(v4) => v4.payload(),
        LaxIpSlice::Ipv6(v6) => v6.payload(),
    };
    // As `LaxSlicedPacketCursor::slice_transport`: no transport in a fragment.
    let Some(transport) = fast_transport(payload) else {
        return Next::Slow;
    };
    let net = match ip {
        LaxIpSlice::Ipv4(v4) => IpRef::V4(v4),
        LaxIpSlice::Ipv6(v6) => IpRef::V6(v6),
    };
    step_ip(config, net, transport.as_ref(), out, counters)
}

/// The transport slice of a fast-path IP payload: `Some(None)` without one (a fragment, or
/// a protocol etherparse does not slice), `None` when it does not slice (the general path
/// counts why).
#[inline(always)]
fn fast_transport<'a>(
    payload: &etherparse::LaxIpPayloadSlice<'a>,
) -> Option<Option<TransportSlice<'a>>> {
    if payload.fragmented {
        return Some(None);
    }
    let p = payload.payload;
    Some(match payload.ip_number {
        IpNumber::TCP => Some(TransportSlice::Tcp(TcpSlice::from_slice(p).ok()?)),
        IpNumber::UDP => Some(TransportSlice::Udp(UdpSlice::from_slice_lax(p).ok()?)),
        IpNumber::ICMP => Some(TransportSlice::Icmpv4(Icmpv4Slice::from_slice(p).ok()?)),
        IpNumber::IPV6_ICMP => Some(TransportSlice::Icmpv6(Icmpv6Slice::from_slice(p).ok()?)),
        IpNumber::IGMP => Some(TransportSlice::Igmp(IgmpSlice::from_slice(p).ok()?)),
        _ => None,
    })
}

/// The IP layer of either path.
#[derive(Clone, Copy)]
enum IpRef<'r, 'a> {
    V4(&'r LaxIpv4Slice<'a>),
    V6(&'r LaxIpv6Slice<'a>),
}

/// Examines what etherparse sliced: records the IP packet, and peels a tunnel if the
/// transport carries one.
fn step_sliced<'a>(
    config: &DecodeConfig,
    lax: &LaxSlicedPacket<'a>,
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    let Some(net) = &lax.net else {
        if let Some((stop_err, layer)) = &lax.stop_err {
            note_slice_error(stop_err, *layer, out, counters);
        }
        // No IP: maybe a payload etherparse does not follow (MPLS or PPPoE after VLAN tags,
        // or more VLAN tags than its `LINK_EXTS_CAP`).
        return match lax.ether_payload() {
            Some(p)
                if p.ether_type.0 == ether_type::MPLS_UNICAST
                    || p.ether_type.0 == ether_type::MPLS_MULTICAST
                    || p.ether_type.0 == ether_type::PPPOE_SESSION =>
            {
                Next::EtherType(p.ether_type.0, p.payload)
            }
            Some(p) if is_vlan_tpid(p.ether_type) && lax.stop_err.is_none() => more_vlan_tags(
                p.ether_type.0,
                p.payload,
                lax.link_exts.len(),
                out,
                counters,
            ),
            _ => Next::Done,
        };
    };
    // A transport header cut by the capture or the mirror is truncation, not malformation:
    // the IP layer knows its payload is incomplete before the transport's length error is
    // counted (issue 17, item 4: a mirror cut inside the TCP header was counted twice).
    if let Some(LaxNetSlice::Ipv4(v4)) = &lax.net {
        out.truncated |= v4.payload().incomplete;
    }
    if let Some(LaxNetSlice::Ipv6(v6)) = &lax.net {
        out.truncated |= v6.payload().incomplete;
    }
    if let Some((stop_err, layer)) = &lax.stop_err {
        note_slice_error(stop_err, *layer, out, counters);
    }
    let net = match net {
        LaxNetSlice::Ipv4(v4) => IpRef::V4(v4),
        LaxNetSlice::Ipv6(v6) => IpRef::V6(v6),
        LaxNetSlice::Arp(_) => return Next::Done,
    };
    step_ip(config, net, lax.transport.as_ref(), out, counters)
}

/// Whether an EtherType is a VLAN tag protocol identifier etherparse slices (802.1Q, 802.1ad,
/// the pre-standard QinQ 0x9100).
fn is_vlan_tpid(et: EtherType) -> bool {
    matches!(
        et,
        EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME
    )
}

/// Follows VLAN tags beyond the ones etherparse sliced (`done` of them), up to
/// [`MAX_VLAN_TAGS`] in all. More tags than that are a named event, never a silent not-IP
/// frame (issue 17, item 9: four stacked tags became not-IP); tshark follows any number.
#[inline(never)]
fn more_vlan_tags<'a>(
    mut et: u16,
    mut bytes: &'a [u8],
    done: usize,
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    for _ in done..MAX_VLAN_TAGS {
        if !is_vlan_tpid(EtherType(et)) {
            return Next::EtherType(et, bytes);
        }
        match etherparse::SingleVlanSlice::from_slice(bytes) {
            Ok(vlan) => {
                let inside = vlan.payload();
                et = inside.ether_type.0;
                bytes = inside.payload;
            }
            Err(e) => {
                note_error(
                    DecodeError::HeaderTooSmall {
                        layer: Layer::Ethernet,
                        needed: e.required_len,
                        available: e.len,
                    },
                    out,
                    counters,
                );
                return Next::Done;
            }
        }
    }
    if is_vlan_tpid(EtherType(et)) {
        counters.event(DecodeEvent::VlanTagsExceeded);
        return Next::Done;
    }
    Next::EtherType(et, bytes)
}

/// A PPPoE session frame (issue 17, item 8): the PPP frame inside, and the IP packet it
/// carries. It is a link layer, not a tunnel: no layer is pushed. Other PPP protocols (LCP,
/// IPCP, ...) carry no IP and end the walk.
fn pppoe<'a>(
    bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    let session = match PppoeSlice::from_slice(bytes) {
        Ok(session) => session,
        Err(e) => {
            note_error(e, out, counters);
            return Next::Done;
        }
    };
    match PppSlice::from_slice(session.payload()) {
        Ok(ppp) => match ppp.protocol() {
            ppp_proto::IPV4 | ppp_proto::IPV6 => Next::Ip(ppp.payload()),
            _ => Next::Done,
        },
        Err(e) => {
            note_error(e, out, counters);
            Next::Done
        }
    }
}

/// The IPv6 jumbo payload length (RFC 2675): the option of a hop-by-hop header that directly
/// follows the fixed header. Options are walked within the header's own length, so the loop is
/// bounded by it (at most 2048 bytes).
fn ipv6_jumbo_len(v6: &LaxIpv6Slice<'_>) -> Option<u32> {
    /// Option type and data length of the jumbo payload option.
    const JUMBO: u8 = 0xC2;
    const JUMBO_LEN: usize = 4;
    if v6.header().next_header() != IpNumber::IPV6_HEADER_HOP_BY_HOP {
        return None;
    }
    let hbh = etherparse::Ipv6RawExtHeaderSlice::from_slice(v6.extensions().slice()).ok()?;
    let options = hbh.slice().get(2..)?;
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        if kind == 0 {
            // Pad1 is a lone byte.
            at += 1;
            continue;
        }
        let len = usize::from(*options.get(at + 1)?);
        if kind == JUMBO && len == JUMBO_LEN {
            let data = options.get(at + 2..at + 2 + JUMBO_LEN)?;
            return Some(u32::from_be_bytes([data[0], data[1], data[2], data[3]]));
        }
        at += 2 + len;
    }
    None
}

/// Records the IP packet, and peels a tunnel if the transport carries one.
#[inline]
fn step_ip<'a>(
    config: &DecodeConfig,
    net: IpRef<'_, 'a>,
    transport: Option<&TransportSlice<'a>>,
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    // `first_fragment`: the payload starts at offset 0 of its datagram (true when not fragmented).
    // `l4_len`: the transport length the IP headers state, whatever the capture kept.
    let (src, dst, ip_len, ip_id, ttl, payload, first_fragment, l4_len) = match net {
        IpRef::V4(v4) => {
            let h = v4.header();
            let header_len = u32::from(h.ihl()) * 4;
            let (ip_len, l4_len) = if u32::from(h.total_len()) < header_len {
                // A total length of 0 (TSO: the NIC fills it in) or below the header: the
                // bytes present are the packet, as tshark reads them (issue 17, item 3).
                let auth = v4.extensions().auth.map_or(0, |a| a.slice().len());
                let after = (auth + v4.payload().payload.len()) as u32;
                (header_len + after, v4.payload().payload.len() as u32)
            } else {
                let total = u32::from(h.total_len());
                (total, total.saturating_sub(header_len))
            };
            (
                u128::from_ne_bytes(flowtable::key::v4_to_addr(h.source())),
                u128::from_ne_bytes(flowtable::key::v4_to_addr(h.destination())),
                ip_len,
                u32::from(h.identification()),
                h.ttl(),
                v4.payload(),
                h.fragments_offset().value() == 0,
                l4_len,
            )
        }
        IpRef::V6(v6) => {
            let h = v6.header();
            let first_fragment = ipv6_first_fragment(v6);
            let ext_len = v6.extensions().slice().len() as u32;
            let (ip_len, l4_len) = if h.payload_length() != 0 {
                let plen = u32::from(h.payload_length());
                (40 + plen, plen.saturating_sub(ext_len))
            } else if let Some(jumbo) = ipv6_jumbo_len(v6) {
                // A jumbogram (RFC 2675): the hop-by-hop option holds the payload length.
                if u64::from(jumbo) > u64::from(ext_len) + v6.payload().payload.len() as u64 {
                    out.truncated = true;
                }
                (40u32.saturating_add(jumbo), jumbo.saturating_sub(ext_len))
            } else {
                // Payload length 0 without a jumbo option (Linux BIG TCP strips it before the
                // capture point): the bytes present are the packet (issue 17, item 3).
                let l4 = v6.payload().payload.len() as u32;
                (40 + ext_len + l4, l4)
            };
            (
                u128::from_ne_bytes(h.source()),
                u128::from_ne_bytes(h.destination()),
                ip_len,
                0,
                h.hop_limit(),
                v6.payload(),
                first_fragment,
                l4_len,
            )
        }
    };
    // The addresses were picked as 128-bit words: as byte arrays, the two arms were split
    // into 32 single bytes each, moved one by one on every packet.
    let (src, dst) = (src.to_ne_bytes(), dst.to_ne_bytes());
    if payload.incomplete {
        out.truncated = true;
    }
    let outer = OuterIp { src, dst };
    // Tunnels peeled inside this packet are pushed below; this packet sits under the ones
    // already on the stack.
    let depth_here = out.tunnels.len();
    out.inner_depth = depth_here;
    // This IP packet is the innermost one unless a tunnel is peeled and the walk goes on; a
    // deeper IP packet found later replaces it. Built in place: a local struct filled field
    // by field and then moved into `out` stalled on store forwarding (its narrow stores read
    // back by the move's wide loads, a fifth of this function's time).
    let inner = out.inner.insert(InnerPacket {
        src,
        dst,
        src_port: 0,
        dst_port: 0,
        proto: IpProto(payload.ip_number.0),
        ip_len,
        ip_id,
        ttl,
        fragment: payload.fragmented,
        tcp: None,
        icmp: None,
        l4_payload: payload.payload,
    });
    let mut next = Next::Done;
    match transport {
        Some(TransportSlice::Tcp(tcp)) => {
            inner.src_port = tcp.source_port();
            inner.dst_port = tcp.destination_port();
            inner.tcp = Some(TcpInfo {
                flags: tcp_flags(tcp),
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                window: tcp.window_size(),
                payload_len: l4_len.saturating_sub(tcp.header_len() as u32),
                window_scale: if tcp.syn() { window_scale(tcp) } else { None },
            });
            inner.l4_payload = tcp.payload();
        }
        Some(TransportSlice::Udp(udp)) => {
            let ports = (udp.source_port(), udp.destination_port());
            (inner.src_port, inner.dst_port) = ports;
            inner.l4_payload = udp.payload();
            next = udp_tunnel(config, outer, ports, udp.payload(), out, counters);
        }
        Some(TransportSlice::Icmpv4(icmp)) => {
            inner.icmp = Some((icmp.type_u8(), icmp.code_u8()));
            inner.l4_payload = icmp.payload();
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            inner.icmp = Some((icmp.type_u8(), icmp.code_u8()));
            inner.l4_payload = icmp.payload();
        }
        Some(TransportSlice::Igmp(_)) => {}
        // etherparse has no SCTP; its common header starts with the two ports (RFC 9260
        // 3.1), all a flow key needs (and what an ICMP error quoting SCTP gives its key).
        None if payload.ip_number == IpNumber::SCTP && first_fragment => {
            if let [a, b, c, d, ..] = *payload.payload {
                inner.src_port = u16::from_be_bytes([a, b]);
                inner.dst_port = u16::from_be_bytes([c, d]);
            }
        }
        None => {
            // A first fragment holds the GRE header and the start of the mirrored frame: peel
            // it (see the module documentation). Until the real-capture oracle showed
            // zeek__erspan.pcap, every fragment was skipped and the first one's inner flow
            // was lost; later fragments still cannot be decoded and stay the outer packet.
            // IP-in-IP is peeled the same way.
            let p = payload.payload;
            match payload.ip_number {
                IpNumber::GRE if first_fragment => {
                    next = gre_tunnel(config, outer, 0, 0, p, out, counters);
                }
                // The first fragment of a UDP datagram holds its header and the tunnel
                // header: a mirror fragmented at the outer layer (issue 16, an adversary
                // shrinking the path MTU) is peeled like GRE. The ports are kept only when a
                // tunnel is found; any other fragmented UDP stays a fragment, as before.
                IpNumber::UDP if first_fragment && payload.fragmented => {
                    if let [s0, s1, d0, d1, _, _, _, _, ref rest @ ..] = *p {
                        let ports = (u16::from_be_bytes([s0, s1]), u16::from_be_bytes([d0, d1]));
                        next = udp_tunnel(config, outer, ports, rest, out, counters);
                        if let (false, Some(inner)) =
                            (matches!(next, Next::Done), out.inner.as_mut())
                        {
                            (inner.src_port, inner.dst_port) = ports;
                            inner.l4_payload = rest;
                        }
                    }
                }
                IpNumber::IPV4 | IpNumber::IPV6 if first_fragment => {
                    // IP in IP (4in4, 6in4, 4in6, 6in6): a tunnel of its own, as Zeek and
                    // Suricata decode it; Linux `ipip`, `sit` and `ip6tnl` devices (and
                    // `tc mirred` onto them) send it. No header: the id is the protocol.
                    let id = u32::from(payload.ip_number.0);
                    let t = layer(TunnelKind::Ipip, id, outer, 0, 0, false);
                    next = push_tunnel(config, out, counters, t, Next::Ip(p));
                }
                // A transport header cut short (by the capture, the mirror, or a lying
                // length): the ports are read when both are there, as tshark does, so the
                // cut packet stays in its connection's flow (issue 17, item 4).
                IpNumber::TCP | IpNumber::UDP if !payload.fragmented => {
                    if let [s0, s1, d0, d1, ..] = *p {
                        inner.src_port = u16::from_be_bytes([s0, s1]);
                        inner.dst_port = u16::from_be_bytes([d0, d1]);
                    }
                }
                _ => {}
            }
        }
    }
    next
}

/// Whether every IPv6 fragment header among the extension headers etherparse sliced has
/// offset 0 (true without one).
///
/// Not etherparse's `Ipv6ExtensionSliceIter`: it follows the next-header chain without
/// looking at the slice's end, so after a lax slicing error (a hop-by-hop header not at the
/// start, say) it reads past the extension headers (an unsafe precondition violated; found
/// by the fast-path equivalence tests). Here each header is sliced with its checked
/// constructor, so the walk ends at the slice's end or at the first header that does not fit,
/// and every step consumes at least 8 bytes.
fn ipv6_first_fragment(v6: &LaxIpv6Slice<'_>) -> bool {
    let exts = v6.extensions();
    let mut rest = exts.slice();
    let mut next = exts.first_header();
    while let Some(header) = next {
        if rest.is_empty() {
            break;
        }
        let (len, following) = match header {
            IpNumber::IPV6_FRAGMENTATION_HEADER => {
                match etherparse::Ipv6FragmentHeaderSlice::from_slice(rest) {
                    Ok(f) if f.fragment_offset().value() != 0 => return false,
                    Ok(f) => (f.slice().len(), f.next_header()),
                    Err(_) => break,
                }
            }
            IpNumber::IPV6_HEADER_HOP_BY_HOP
            | IpNumber::IPV6_ROUTE_HEADER
            | IpNumber::IPV6_DESTINATION_OPTIONS => {
                match etherparse::Ipv6RawExtHeaderSlice::from_slice(rest) {
                    Ok(h) => (h.slice().len(), h.next_header()),
                    Err(_) => break,
                }
            }
            IpNumber::AUTHENTICATION_HEADER => {
                match etherparse::IpAuthHeaderSlice::from_slice(rest) {
                    Ok(h) => (h.slice().len(), h.next_header()),
                    Err(_) => break,
                }
            }
            _ => break,
        };
        rest = rest.get(len..).unwrap_or_default();
        next = Some(following);
    }
    true
}

/// Looks for VXLAN, Geneve or GRE-in-UDP inside a UDP datagram.
///
/// A configured port alone decides only when the other side's port is not a well-known
/// service (below 1024): a DNS client that happens to use source port 6081 or 4789 must stay
/// DNS (issue 17, item 7). With a well-known port on the other side, and for Geneve matched on
/// the source port only, the header must pass the strict check of non-standard port probing
/// (exact flags, zero reserved bits, known protocol type) and carry a plausible inner packet;
/// otherwise the datagram is that service's, counted as `decoder.udp.tunnel_port_not_tunnel`.
/// tshark reaches the same result by trying the lower port's dissector first.
fn udp_tunnel<'a>(
    config: &DecodeConfig,
    outer: OuterIp,
    (sport, dport): (u16, u16),
    payload: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    let well_known = |port: u16| (1..1024).contains(&port);
    // VXLAN is matched on the destination port only (RFC 7348 §5); Geneve on either port, as
    // replies from a Geneve endpoint may come from 6081.
    if config.vxlan_ports.contains(&dport) {
        if well_known(sport) {
            return match strict_vxlan(payload) {
                Some(vx) => push_tunnel(
                    config,
                    out,
                    counters,
                    layer(TunnelKind::Vxlan, vx.vni(), outer, sport, dport, false),
                    Next::Ethernet(vx.payload()),
                ),
                None => {
                    counters.event(DecodeEvent::TunnelPortNotTunnel);
                    Next::Done
                }
            };
        }
        return match VxlanSlice::from_slice(payload) {
            Ok(vx) => push_tunnel(
                config,
                out,
                counters,
                layer(TunnelKind::Vxlan, vx.vni(), outer, sport, dport, false),
                Next::Ethernet(vx.payload()),
            ),
            Err(e) => {
                note_error(e, out, counters);
                Next::Done
            }
        };
    }
    let geneve_dst = config.geneve_ports.contains(&dport);
    if geneve_dst && !well_known(sport) {
        return match GeneveSlice::from_slice(payload) {
            Ok(geneve) => {
                let tunnel = layer(TunnelKind::Geneve, geneve.vni(), outer, sport, dport, false);
                let inside = geneve_payload(geneve.protocol_type(), geneve.payload());
                push_tunnel(config, out, counters, tunnel, inside)
            }
            Err(e) => {
                note_error(e, out, counters);
                Next::Done
            }
        };
    }
    if geneve_dst || config.geneve_ports.contains(&sport) {
        return match strict_geneve(payload) {
            Some(geneve) => {
                let tunnel = layer(TunnelKind::Geneve, geneve.vni(), outer, sport, dport, false);
                let inside = geneve_payload(geneve.protocol_type(), geneve.payload());
                push_tunnel(config, out, counters, tunnel, inside)
            }
            None => {
                counters.event(DecodeEvent::TunnelPortNotTunnel);
                Next::Done
            }
        };
    }
    if config.gre_udp_ports.contains(&dport) {
        return gre_tunnel(config, outer, sport, dport, payload, out, counters);
    }
    if config.probe_nonstandard_ports {
        if let Some(vx) = strict_vxlan(payload) {
            counters.event(DecodeEvent::NonstandardPortTunnel);
            let tunnel = layer(TunnelKind::Vxlan, vx.vni(), outer, sport, dport, true);
            return push_tunnel(config, out, counters, tunnel, Next::Ethernet(vx.payload()));
        }
        if let Some(geneve) = strict_geneve(payload) {
            counters.event(DecodeEvent::NonstandardPortTunnel);
            let tunnel = layer(TunnelKind::Geneve, geneve.vni(), outer, sport, dport, true);
            let inside = geneve_payload(geneve.protocol_type(), geneve.payload());
            return push_tunnel(config, out, counters, tunnel, inside);
        }
    }
    Next::Done
}

/// A VXLAN header that passes the strict check and carries a plausible inner frame.
fn strict_vxlan(payload: &[u8]) -> Option<VxlanSlice<'_>> {
    VxlanSlice::from_slice_strict(payload)
        .ok()
        .filter(|vx| plausible_inner_frame(vx.payload()))
}

/// A Geneve header that passes the strict check and carries a plausible inner packet.
fn strict_geneve(payload: &[u8]) -> Option<GeneveSlice<'_>> {
    GeneveSlice::from_slice_strict(payload)
        .ok()
        .filter(|geneve| match geneve.protocol_type() {
            ether_type::TEB => plausible_inner_frame(geneve.payload()),
            _ => plausible_ip_packet(geneve.payload()),
        })
}

/// What a Geneve protocol type leads to.
fn geneve_payload(protocol_type: u16, payload: &[u8]) -> Next<'_> {
    match protocol_type {
        ether_type::TEB => Next::Ethernet(payload),
        ether_type::IPV4 | ether_type::IPV6 => Next::Ip(payload),
        other => Next::EtherType(other, payload),
    }
}

/// Peels GRE (v0 or PPTP v1) and whatever it carries: IP, Ethernet, ERSPAN I/II/III.
fn gre_tunnel<'a>(
    config: &DecodeConfig,
    outer: OuterIp,
    sport: u16,
    dport: u16,
    bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    let gre = match GreSlice::from_slice(bytes) {
        Ok(gre) => gre,
        Err(e) => {
            note_error(e, out, counters);
            return Next::Done;
        }
    };
    let tunnel = |kind, id| layer(kind, id, outer, sport, dport, false);
    if gre.version() == 1 {
        // PPTP: PPP inside; an ack-only packet carries nothing.
        if gre.payload().is_empty() {
            return Next::Done;
        }
        let call_id = gre.key().map_or(0, |k| k & 0xFFFF);
        let t = tunnel(TunnelKind::Pptp, call_id);
        return ppp_tunnel(config, t, gre.payload(), out, counters);
    }
    let key = gre.key().unwrap_or(0);
    match gre.protocol_type() {
        // GRE v0 carrying PPP (sv__bug-6942 …-gre-ppp-max-ip-packet.pcap in the shared
        // captures): tshark follows it as plain GRE. Before the real-capture oracle this fell
        // to the catch-all arm, which hands 0x880B to etherparse, and the inner IP was lost.
        ether_type::PPP => {
            let t = tunnel(TunnelKind::Gre, key);
            ppp_tunnel(config, t, gre.payload(), out, counters)
        }
        ether_type::ERSPAN_1_2 if gre.sequence().is_none() => push_tunnel(
            config,
            out,
            counters,
            tunnel(TunnelKind::Erspan1, 0),
            Next::Ethernet(gre.payload()),
        ),
        ether_type::ERSPAN_1_2 => match Erspan2Slice::from_slice(gre.payload()) {
            Ok(span) => {
                let mut t = tunnel(TunnelKind::Erspan2, u32::from(span.session_id()));
                t.mirror_truncated = span.truncated();
                push_tunnel(config, out, counters, t, Next::Ethernet(span.payload()))
            }
            Err(e) => {
                note_error(e, out, counters);
                Next::Done
            }
        },
        ether_type::ERSPAN_3 => match Erspan3Slice::from_slice(gre.payload()) {
            Ok(span) => {
                let mut t = tunnel(TunnelKind::Erspan3, u32::from(span.session_id()));
                t.mirror_truncated = span.truncated();
                t.erspan_egress = Some(span.egress());
                push_tunnel(config, out, counters, t, Next::Ethernet(span.payload()))
            }
            Err(e) => {
                note_error(e, out, counters);
                Next::Done
            }
        },
        ether_type::TEB => {
            // NVGRE (RFC 7637) is GRE-TEB with a key and C, S clear: 24-bit VSID and 8-bit
            // flow id. A Linux `gretap ... key K` is the same bytes (it is NVGRE on the wire,
            // VSID K >> 8); with `seq` or `csum` it cannot be NVGRE, and the id is the key.
            let t = match (gre.nvgre_vsid(), gre.key()) {
                (Some(vsid), _) => tunnel(TunnelKind::Nvgre, vsid),
                (None, key) => tunnel(TunnelKind::GreTeb, key.unwrap_or(0)),
            };
            push_tunnel(config, out, counters, t, Next::Ethernet(gre.payload()))
        }
        ether_type::IPV4 | ether_type::IPV6 => push_tunnel(
            config,
            out,
            counters,
            tunnel(TunnelKind::Gre, key),
            Next::Ip(gre.payload()),
        ),
        other => push_tunnel(
            config,
            out,
            counters,
            tunnel(TunnelKind::Gre, key),
            Next::EtherType(other, gre.payload()),
        ),
    }
}

/// Peels a GRE layer (`tunnel`: PPTP, or plain GRE v0) whose payload is a PPP frame, and
/// follows the IP packet it carries; other PPP protocols (LCP, IPCP, ...) end the walk.
fn ppp_tunnel<'a>(
    config: &DecodeConfig,
    tunnel: TunnelLayer,
    bytes: &'a [u8],
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
) -> Next<'a> {
    match PppSlice::from_slice(bytes) {
        Ok(ppp) => {
            let inside = match ppp.protocol() {
                ppp_proto::IPV4 | ppp_proto::IPV6 => Next::Ip(ppp.payload()),
                _ => Next::Done,
            };
            push_tunnel(config, out, counters, tunnel, inside)
        }
        Err(e) => {
            note_error(e, out, counters);
            Next::Done
        }
    }
}

/// Builds a [`TunnelLayer`] for the layer found in `outer`.
fn layer(
    kind: TunnelKind,
    id: u32,
    outer: OuterIp,
    sport: u16,
    dport: u16,
    nonstandard: bool,
) -> TunnelLayer {
    TunnelLayer {
        kind,
        id,
        outer_src: outer.src,
        outer_dst: outer.dst,
        outer_src_port: sport,
        outer_dst_port: dport,
        nonstandard_port: nonstandard,
        mirror_truncated: false,
        erspan_egress: None,
    }
}

/// Records a peeled tunnel unless the depth cap is reached; at the cap, the walk stops and
/// the tunnel packet itself stays the innermost packet.
fn push_tunnel<'a>(
    config: &DecodeConfig,
    out: &mut DecodedPacket<'a>,
    counters: &mut DecodeCounters,
    tunnel: TunnelLayer,
    next: Next<'a>,
) -> Next<'a> {
    if out.tunnels.len() >= config.max_tunnel_depth || out.tunnels.is_full() {
        counters.event(DecodeEvent::TunnelDepthExceeded);
        return Next::Done;
    }
    if tunnel.mirror_truncated {
        out.truncated = true;
    }
    out.tunnels.push(tunnel);
    next
}

/// Strict plausibility of an Ethernet frame found by probing a non-standard port: it must
/// carry IPv4 with a correct header checksum, or IPv6 with version 6 and a sane length.
fn plausible_inner_frame(frame: &[u8]) -> bool {
    match etherparse::Ethernet2Slice::from_slice_without_fcs(frame) {
        Ok(eth) => match eth.ether_type().0 {
            ether_type::IPV4 | ether_type::IPV6 => plausible_ip_packet(eth.payload_slice()),
            _ => false,
        },
        Err(_) => false,
    }
}

/// See [`plausible_inner_frame`].
fn plausible_ip_packet(bytes: &[u8]) -> bool {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => match etherparse::Ipv4HeaderSlice::from_slice(bytes) {
            Ok(h) => h.to_header().calc_header_checksum() == h.header_checksum(),
            Err(_) => false,
        },
        Some(6) => etherparse::Ipv6HeaderSlice::from_slice(bytes).is_ok(),
        _ => false,
    }
}

/// The TCP flag byte (FIN ... CWR), from the parsed header.
fn tcp_flags(tcp: &etherparse::TcpSlice<'_>) -> u8 {
    let bits = [
        tcp.fin(),
        tcp.syn(),
        tcp.rst(),
        tcp.psh(),
        tcp.ack(),
        tcp.urg(),
        tcp.ece(),
        tcp.cwr(),
    ];
    bits.iter()
        .enumerate()
        .fold(0u8, |acc, (i, &set)| acc | (u8::from(set) << i))
}

/// Counts a decode error, or only truncation when the capture itself cut the frame.
fn note_error(e: DecodeError, out: &mut DecodedPacket<'_>, counters: &mut DecodeCounters) {
    match e {
        DecodeError::HeaderTooSmall { .. } if out.truncated => {}
        _ => counters.error(e),
    }
}

/// Maps an etherparse length error: a slice that ran out is truncation when the capture or
/// mirror cut the frame, and a too-small header otherwise; a lying length field is
/// `bad_length`.
fn note_len_error(
    e: &err::LenError,
    fallback: Layer,
    out: &mut DecodedPacket<'_>,
    counters: &mut DecodeCounters,
) {
    let layer = map_layer(e.layer).unwrap_or(fallback);
    let error = match e.len_source {
        LenSource::Slice => DecodeError::HeaderTooSmall {
            layer,
            needed: e.required_len,
            available: e.len,
        },
        _ => DecodeError::BadLength {
            layer,
            value: e.required_len,
            available: e.len,
        },
    };
    note_error(error, out, counters);
}

/// Counts the error that stopped etherparse's lax slicing.
fn note_slice_error(
    e: &err::packet::SliceError,
    at: err::Layer,
    out: &mut DecodedPacket<'_>,
    counters: &mut DecodeCounters,
) {
    let layer = map_layer(at).unwrap_or(Layer::Ethernet);
    match e {
        err::packet::SliceError::Len(len) => note_len_error(len, layer, out, counters),
        err::packet::SliceError::Ipv4(err::ipv4::HeaderError::UnexpectedVersion {
            version_number,
        })
        | err::packet::SliceError::Ip(err::ip::HeaderError::UnsupportedIpVersion {
            version_number,
        }) => counters.error(DecodeError::UnsupportedVersion {
            layer,
            version: *version_number,
        }),
        _ => counters.error(DecodeError::BadLength {
            layer,
            value: 0,
            available: 0,
        }),
    }
}

/// Maps an IP header content error from `LaxSlicedPacket::from_ip`.
fn ip_header_error(e: &err::ip::HeaderError) -> DecodeError {
    match e {
        err::ip::HeaderError::UnsupportedIpVersion { version_number } => {
            DecodeError::UnsupportedVersion {
                layer: Layer::Ipv4,
                version: *version_number,
            }
        }
        _ => DecodeError::BadLength {
            layer: Layer::Ipv4,
            value: 0,
            available: 0,
        },
    }
}

/// Our layer for an etherparse layer.
fn map_layer(layer: err::Layer) -> Option<Layer> {
    use err::Layer as E;
    Some(match layer {
        E::LinuxSllHeader => Layer::Link,
        E::Ethernet2Header
        | E::EtherPayload
        | E::VlanHeader
        | E::MacsecHeader
        | E::MacsecPacket => Layer::Ethernet,
        E::IpHeader | E::Ipv4Header | E::Ipv4Packet | E::IpAuthHeader => Layer::Ipv4,
        E::Ipv6Header
        | E::Ipv6Packet
        | E::Ipv6ExtHeader
        | E::Ipv6HopByHopHeader
        | E::Ipv6DestOptionsHeader
        | E::Ipv6RouteHeader
        | E::Ipv6FragHeader => Layer::Ipv6,
        E::UdpHeader | E::UdpPayload => Layer::Udp,
        E::TcpHeader => Layer::Tcp,
        E::Icmpv4 | E::Icmpv4Timestamp | E::Icmpv4TimestampReply | E::Icmpv6 => Layer::Icmp,
        _ => return None,
    })
}

/// The window scale option of a SYN, if any (options are bounded by the 40-byte TCP option
/// space, so the iteration is too).
fn window_scale(tcp: &etherparse::TcpSlice<'_>) -> Option<u8> {
    tcp.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::WindowScale(shift)) => Some(shift),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;

    /// GRE v0 carrying PPP, shaped like frame 1 of sv__bug-6942 …-gre-ppp-max-ip-packet.pcap
    /// (shared/pcaps/tunnels/gre; there the inner packet is a fragment, here a whole datagram).
    static GRE_V0_PPP: [u8; 67] = [
        // Ethernet: dst 00:00:5e:00:53:01, src 00:00:5e:00:53:02, EtherType 0x0800.
        0x00, 0x00, 0x5e, 0x00, 0x53, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x53, 0x02, 0x08, 0x00,
        // IPv4: total length 53, id 1, no fragmentation, TTL 64, proto GRE, checksum (not
        // checked), 10.0.0.1 -> 10.0.0.2.
        0x45, 0x00, 0x00, 0x35, 0x00, 0x01, 0x00, 0x00, 0x40, 0x2f, 0x00, 0x00, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
        // GRE: flags and version 0x0000 (v0; no checksum, key or sequence number),
        // protocol type 0x880B (PPP).
        0x00, 0x00, 0x88, 0x0b,
        // PPP: no address and control bytes (RFC 1662 §3.2), protocol field compressed to
        // one byte (RFC 1661 §6.5): 0x21, IPv4.
        0x21,
        // Inner IPv4: total length 28, TTL 64, proto UDP, checksum, 192.168.0.1 ->
        // 192.168.0.2.
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0x02,
        // UDP: source port 12345, destination port 53, length 8 (no payload), checksum 0
        // (none).
        0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00,
    ];

    /// The first fragment of an outer IPv4 packet carrying GRE-TEB, as in zeek__erspan.pcap
    /// (shared/pcaps/tunnels/gre): the mirrored frame continues in the next fragment.
    static GRE_TEB_FIRST_FRAGMENT_V4: [u8; 92] = [
        // Ethernet: dst 00:00:5e:00:53:01, src 00:00:5e:00:53:02, EtherType 0x0800.
        0x00, 0x00, 0x5e, 0x00, 0x53, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x53, 0x02, 0x08, 0x00,
        // IPv4: total length 78, id 0x1234, MF set and offset 0 (frame bytes 20-21), TTL 64,
        // proto GRE, checksum, 10.0.0.1 -> 10.0.0.2.
        0x45, 0x00, 0x00, 0x4e, 0x12, 0x34, 0x20, 0x00, 0x40, 0x2f, 0x00, 0x00, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
        // GRE: flags and version 0x0000 (v0; no checksum, key or sequence number),
        // protocol type 0x6558 (transparent Ethernet bridging).
        0x00, 0x00, 0x65, 0x58,
        // Inner Ethernet (the mirrored frame): dst 00:00:5e:00:53:03, src 00:00:5e:00:53:04,
        // EtherType 0x0800.
        0x00, 0x00, 0x5e, 0x00, 0x53, 0x03, 0x00, 0x00, 0x5e, 0x00, 0x53, 0x04, 0x08, 0x00,
        // Inner IPv4: total length 1500 (only 40 bytes are here), DF, TTL 64, proto TCP,
        // checksum, 192.168.0.1 -> 192.168.0.2.
        0x45, 0x00, 0x05, 0xdc, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0x02,
        // TCP: source port 49152, destination port 80, seq 1, ack 0, data offset 5 words,
        // flags ACK, window 65535, checksum, urgent pointer.
        0xc0, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x10, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x00,
    ];

    /// The same mirrored frame in the first fragment of an outer IPv6 packet.
    static GRE_TEB_FIRST_FRAGMENT_V6: [u8; 120] = [
        // Ethernet: dst 00:00:5e:00:53:01, src 00:00:5e:00:53:02, EtherType 0x86DD.
        0x00, 0x00, 0x5e, 0x00, 0x53, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x53, 0x02, 0x86, 0xdd,
        // IPv6: payload length 66, next header 44 (Fragment), hop limit 64,
        // 2001:db8::1 -> 2001:db8::2.
        0x60, 0x00, 0x00, 0x00, 0x00, 0x42, 0x2c, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        // Fragment header: next header 47 (GRE), reserved, offset 0 with M set (frame bytes
        // 56-57), identification 7.
        0x2f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07,
        // GRE: flags and version 0x0000 (v0; no checksum, key or sequence number),
        // protocol type 0x6558 (transparent Ethernet bridging).
        0x00, 0x00, 0x65, 0x58,
        // Inner Ethernet (the mirrored frame): dst 00:00:5e:00:53:03, src 00:00:5e:00:53:04,
        // EtherType 0x0800.
        0x00, 0x00, 0x5e, 0x00, 0x53, 0x03, 0x00, 0x00, 0x5e, 0x00, 0x53, 0x04, 0x08, 0x00,
        // Inner IPv4: total length 1500 (only 40 bytes are here), DF, TTL 64, proto TCP,
        // checksum, 192.168.0.1 -> 192.168.0.2.
        0x45, 0x00, 0x05, 0xdc, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0x02,
        // TCP: source port 49152, destination port 80, seq 1, ack 0, data offset 5 words,
        // flags ACK, window 65535, checksum, urgent pointer.
        0xc0, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x10, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x00,
    ];

    fn decode(frame: &[u8]) -> (DecodedPacket<'_>, DecodeCounters) {
        let mut counters = DecodeCounters::default();
        let d =
            Decoder::default().decode(LinkType::ETHERNET, frame, frame.len() as u32, &mut counters);
        (d, counters)
    }

    fn kinds(d: &DecodedPacket<'_>) -> Vec<TunnelKind> {
        d.tunnels.iter().map(|t| t.kind).collect()
    }

    #[test]
    fn follows_ppp_in_gre_v0() {
        let (d, counters) = decode(&GRE_V0_PPP);
        assert_eq!(kinds(&d), [TunnelKind::Gre]);
        assert_eq!(d.inner_depth, 1);
        let inner = d.inner.unwrap();
        assert_eq!(
            (inner.proto, inner.src_port, inner.dst_port),
            (IpProto::UDP, 12345, 53)
        );
        assert!(!d.truncated);
        assert_eq!(counters, DecodeCounters::default());
    }

    #[test]
    fn peels_gre_in_a_first_fragment() {
        for frame in [
            &GRE_TEB_FIRST_FRAGMENT_V4[..],
            &GRE_TEB_FIRST_FRAGMENT_V6[..],
        ] {
            let (d, counters) = decode(frame);
            assert_eq!(kinds(&d), [TunnelKind::GreTeb]);
            assert_eq!(d.inner_depth, 1);
            let inner = d.inner.unwrap();
            assert_eq!(
                (inner.proto, inner.src_port, inner.dst_port),
                (IpProto::TCP, 49152, 80)
            );
            assert!(!inner.fragment);
            // The mirrored packet continues in the next fragment.
            assert!(d.truncated);
            assert_eq!(counters.get("decoder.packet.truncated"), 1);
            assert_eq!(counters.named().len(), 1, "{:?}", counters.named());
        }
    }

    #[test]
    fn leaves_gre_in_a_later_fragment_alone() {
        // Offset 185 (in 8-byte units), MF still set: the payload is the middle of a datagram.
        let mut v4 = GRE_TEB_FIRST_FRAGMENT_V4;
        v4[20..22].copy_from_slice(&[0x20, 0xb9]);
        let mut v6 = GRE_TEB_FIRST_FRAGMENT_V6;
        v6[56..58].copy_from_slice(&[0x05, 0xc9]);
        for frame in [&v4[..], &v6[..]] {
            let (d, counters) = decode(frame);
            assert!(d.tunnels.is_empty());
            assert_eq!(d.inner_depth, 0);
            let outer = d.inner.unwrap();
            assert_eq!(
                (outer.proto, outer.src_port, outer.dst_port),
                (IpProto::GRE, 0, 0)
            );
            assert!(outer.fragment);
            assert!(!d.truncated);
            assert_eq!(counters, DecodeCounters::default());
        }
    }
}

/// The fast path of the common layers gives exactly what the general path gives.
#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::{Path, PathBuf};

    /// Decodes `frame` both ways and compares everything: result and counters.
    fn same_both_ways(link: LinkType, frame: &[u8], orig_len: u32) {
        let config = DecodeConfig::default();
        let (mut a, mut b) = (DecodeCounters::default(), DecodeCounters::default());
        let mut fast = fresh(frame.len(), orig_len);
        walk_with::<true>(&config, link, frame, &mut a, &mut fast);
        let mut general = fresh(frame.len(), orig_len);
        walk_with::<false>(&config, link, frame, &mut b, &mut general);
        assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{frame:02x?}");
        assert_eq!(a, b, "{frame:02x?}");
    }

    /// Every capture file under `dir`, sorted.
    fn captures(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    todo.push(p);
                } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    /// (link, frame, original length) of every packet of the generated cases and, when the
    /// shared real captures are there, of those too.
    fn frames() -> &'static [(LinkType, Vec<u8>, u32)] {
        static FRAMES: std::sync::OnceLock<Vec<(LinkType, Vec<u8>, u32)>> =
            std::sync::OnceLock::new();
        FRAMES.get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let mut files = captures(&root.join("../pcaps"));
            files.extend(captures(&root.join("../../shared/pcaps")));
            let mut frames = Vec::new();
            for f in files {
                let Ok(mut reader) = crate::capture::replay::ReplayReader::open(&f) else {
                    continue;
                };
                // The first packets of each file: the shapes matter, not the count.
                let mut n = 0;
                while let (true, Ok(Some(rec))) = (n < 64, reader.next_packet()) {
                    frames.push((rec.link, rec.data.to_vec(), rec.orig_len));
                    n += 1;
                }
            }
            assert!(frames.len() > 300);
            frames
        })
    }

    #[test]
    fn every_captured_frame_and_prefix_decodes_the_same_both_ways() {
        for (link, frame, orig_len) in frames() {
            same_both_ways(*link, frame, *orig_len);
            // Prefixes of the first bytes, where the headers are.
            for n in 0..frame.len().min(128) {
                same_both_ways(*link, &frame[..n], *orig_len);
            }
        }
    }

    #[test]
    fn header_bytes_set_to_telling_values_decode_the_same_both_ways() {
        // Values that switch a header's meaning: versions and lengths, VLAN and IP
        // EtherTypes, protocol numbers, flags and fragment bits.
        const VALUES: [u8; 12] = [
            0x00, 0xff, 0x45, 0x46, 0x4f, 0x60, 0x81, 0x86, 0x06, 0x11, 0x2c, 0x33,
        ];
        for (link, frame, orig_len) in frames().iter().step_by(11) {
            for i in 0..frame.len().min(96) {
                for v in VALUES {
                    let mut f = frame.clone();
                    f[i] = v;
                    same_both_ways(*link, &f, *orig_len);
                }
            }
        }
    }

    #[test]
    fn stacked_vlan_tags_decode_the_same_both_ways() {
        let inner = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1000, 80, 1, 1024);
        let mut ip = Vec::new();
        inner.write(&mut ip, b"hello").unwrap();
        for tags in 0..6usize {
            for tpid in [0x8100u16, 0x88a8, 0x9100] {
                let mut f = vec![0u8; 12];
                for _ in 0..tags {
                    f.extend_from_slice(&tpid.to_be_bytes());
                    f.extend_from_slice(&[0x00, 0x64]);
                }
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                f.extend_from_slice(&ip);
                same_both_ways(LinkType::ETHERNET, &f, f.len() as u32);
                for n in 0..f.len() {
                    same_both_ways(LinkType::ETHERNET, &f[..n], f.len() as u32);
                }
            }
        }
    }

    #[test]
    fn a_hop_by_hop_header_not_at_the_start_is_not_read_past() {
        // Ethernet, IPv6 (payload length 16, next header 0: hop-by-hop, hop limit 64,
        // ::1 -> ::2), hop-by-hop (next header 0 again, length 0: 8 bytes), a second
        // hop-by-hop: etherparse stops with HopByHopNotAtStart and its extension iterator would
        // read past the first header (debug builds abort on the violated precondition).
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x86, 0xdd]);
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 16, 0, 64]);
        f.extend_from_slice(&[0; 15]);
        f.push(1);
        f.extend_from_slice(&[0; 15]);
        f.push(2);
        f.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0]);
        f.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        same_both_ways(LinkType::ETHERNET, &f, f.len() as u32);
        let mut counters = DecodeCounters::default();
        let mut d = fresh(f.len(), f.len() as u32);
        walk(
            &DecodeConfig::default(),
            LinkType::ETHERNET,
            &f,
            &mut counters,
            &mut d,
        );
        assert_eq!(d.inner.map(|p| p.proto), Some(IpProto(0)));
        assert!(!counters.named().is_empty(), "the slicing error is counted");
    }

    proptest! {
        #[test]
        fn corrupted_frames_decode_the_same_both_ways(
            pick in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let (link, frame, orig_len) = pick.get(frames());
            let mut frame = frame.clone();
            for (at, value) in flips {
                let i = at.index(frame.len().max(1));
                if let Some(b) = frame.get_mut(i) {
                    *b = value;
                }
            }
            same_both_ways(*link, &frame, *orig_len);
        }

        #[test]
        fn arbitrary_bytes_decode_the_same_both_ways(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            link in prop::sample::select(vec![LinkType::ETHERNET, LinkType::RAW, LinkType::LINUX_SLL]),
        ) {
            same_both_ways(link, &bytes, bytes.len() as u32);
        }
    }
}

/// Issue 17 items 3, 4 and 6 to 9, and IP in IP (issue 16), on frames built byte by byte;
/// every frame and each of its prefixes also decodes the same on the fast and general paths.
#[cfg(test)]
mod correctness_tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// Decodes `frame` on both paths, checks they agree, and returns the fast path's result.
    fn decode(link: LinkType, frame: &[u8]) -> (DecodedPacket<'_>, DecodeCounters) {
        let config = DecodeConfig::default();
        let len = frame.len() as u32;
        let (mut a, mut b) = (DecodeCounters::default(), DecodeCounters::default());
        let mut fast = fresh(frame.len(), len);
        walk_with::<true>(&config, link, frame, &mut a, &mut fast);
        let mut general = fresh(frame.len(), len);
        walk_with::<false>(&config, link, frame, &mut b, &mut general);
        assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{frame:02x?}");
        assert_eq!(a, b, "{frame:02x?}");
        for n in 0..frame.len() {
            let (mut a, mut b) = (DecodeCounters::default(), DecodeCounters::default());
            let mut fast = fresh(n, len);
            walk_with::<true>(&config, link, &frame[..n], &mut a, &mut fast);
            let mut general = fresh(n, len);
            walk_with::<false>(&config, link, &frame[..n], &mut b, &mut general);
            assert_eq!(format!("{fast:?}"), format!("{general:?}"), "prefix {n}");
            assert_eq!(a, b, "prefix {n}");
        }
        (fast, a)
    }

    /// An IPv4 TCP packet 10.0.0.1:40000 -> 10.0.0.2:80 with `payload`, without link header.
    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1, 1024)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// An IPv6 TCP packet 2001:db8::1:40000 -> 2001:db8::2:80 with `payload`.
    fn tcp_v6(payload: &[u8]) -> Vec<u8> {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        let mut b = a;
        a[15] = 1;
        b[15] = 2;
        let mut out = Vec::new();
        PacketBuilder::ipv6(a, b, 64)
            .tcp(40000, 80, 1, 1024)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// Ethernet header with `ether_type`, then `rest`.
    fn ethernet(ether_type: u16, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(rest);
        f
    }

    fn inner(d: &DecodedPacket<'_>) -> InnerPacket<'static> {
        let p = d.inner.expect("an IP packet");
        InnerPacket {
            l4_payload: &[],
            ..p
        }
    }

    #[test]
    fn regression_issue_17_zero_ipv4_total_length_uses_the_bytes_present() {
        // TSO: total length 0, 3000 bytes of TCP payload (tshark: ip.len 3040, tcp.len 3000).
        let mut ip = tcp_v4(&[0x5a; 3000]);
        ip[2..4].copy_from_slice(&[0, 0]);
        let frame = ethernet(0x0800, &ip);
        let (d, counters) = decode(LinkType::ETHERNET, &frame);
        let p = inner(&d);
        assert_eq!(p.ip_len, 3040);
        assert_eq!(p.tcp.map(|t| t.payload_len), Some(3000));
        assert_eq!((p.src_port, p.dst_port), (40000, 80));
        assert!(!d.truncated);
        assert_eq!(counters, DecodeCounters::default());
    }

    #[test]
    fn regression_issue_17_ipv6_jumbogram_uses_the_jumbo_option() {
        // IPv6, payload length 0, hop-by-hop header with the jumbo option (RFC 2675), TCP.
        let tcp = {
            let v6 = tcp_v6(&[0x33; 100]);
            v6[40..].to_vec()
        };
        let jumbo = (8 + tcp.len()) as u32;
        let mut ip = tcp_v6(&[]);
        ip.truncate(40);
        ip[4..6].copy_from_slice(&[0, 0]);
        ip[6] = 0; // next header: hop-by-hop
        // Hop-by-hop: next header TCP, length 0 (8 bytes), jumbo option 0xC2 length 4.
        ip.extend_from_slice(&[6, 0, 0xc2, 4]);
        ip.extend_from_slice(&jumbo.to_be_bytes());
        ip.extend_from_slice(&tcp);
        let frame = ethernet(0x86dd, &ip);
        let (d, counters) = decode(LinkType::ETHERNET, &frame);
        let p = inner(&d);
        assert_eq!(p.ip_len, 40 + jumbo);
        assert_eq!(p.tcp.map(|t| t.payload_len), Some(100));
        assert_eq!((p.src_port, p.dst_port), (40000, 80));
        assert!(!d.truncated);
        assert_eq!(counters, DecodeCounters::default());
        // A jumbo length beyond the bytes present: the capture cut the packet.
        let mut cut = ip.clone();
        cut[44..48].copy_from_slice(&70_028u32.to_be_bytes());
        let (d, _) = decode(LinkType::RAW, &cut);
        assert_eq!(inner(&d).ip_len, 40 + 70_028);
        assert!(d.truncated);
        // Payload length 0 without the option (Linux BIG TCP): the bytes present.
        let mut big_tcp = tcp_v6(&[0x44; 200]);
        big_tcp[4..6].copy_from_slice(&[0, 0]);
        let (d, counters) = decode(LinkType::RAW, &big_tcp);
        assert_eq!(inner(&d).ip_len, 40 + 20 + 200);
        assert_eq!(inner(&d).tcp.map(|t| t.payload_len), Some(200));
        assert_eq!(counters, DecodeCounters::default());
    }

    #[test]
    fn regression_issue_17_cut_inside_the_tcp_header_is_truncation_with_ports() {
        // IPv4 says 40 + 100 bytes; the mirror kept 12 bytes of TCP (both ports, seq, half
        // of ack), as in iplen_exceeds_tcp_cut.pcap of the reproducers.
        let whole = tcp_v4(&[0x11; 100]);
        let cut = &whole[..20 + 12];
        for frame in [ethernet(0x0800, cut), {
            // The same inside a VXLAN mirror whose own lengths are right.
            let inner_frame = ethernet(0x0800, cut);
            let mut vx = vec![0x08, 0, 0, 0, 0, 0, 5, 0];
            vx.extend_from_slice(&inner_frame);
            let mut outer = Vec::new();
            PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
                .udp(50000, 4789)
                .write(&mut outer, &vx)
                .unwrap();
            ethernet(0x0800, &outer)
        }] {
            let (d, counters) = decode(LinkType::ETHERNET, &frame);
            let p = inner(&d);
            assert_eq!((p.proto, p.src_port, p.dst_port), (IpProto::TCP, 40000, 80));
            assert_eq!(p.tcp, None);
            assert!(d.truncated);
            assert_eq!(counters.get("decoder.packet.truncated"), 1);
            assert_eq!(counters.named().len(), 1, "{:?}", counters.named());
        }
        // Not cut (the IP length agrees with the bytes) but too small for a TCP header: the
        // IP length field lies, which is malformation.
        let mut lying = cut.to_vec();
        lying[2..4].copy_from_slice(&32u16.to_be_bytes());
        let (d, counters) = decode(LinkType::RAW, &lying);
        assert_eq!((inner(&d).src_port, inner(&d).dst_port), (40000, 80));
        assert_eq!(
            counters.get("decoder.tcp.bad_length"),
            1,
            "{:?}",
            counters.named()
        );
        assert!(!d.truncated);
        // One port only: none is read.
        let (d, _) = decode(LinkType::RAW, &whole[..20 + 3]);
        assert_eq!((inner(&d).src_port, inner(&d).dst_port), (0, 0));
    }

    #[test]
    fn regression_issue_17_cooked_captures_dispatch_on_the_protocol_field() {
        let ip = tcp_v4(b"cooked");
        for arphrd in [1u16, 772, 776, 778, 0xfffe, 0x1234] {
            // SLL v1: packet type 0, ARPHRD, address length 0, address, protocol 0x0800.
            let mut v1 = vec![0, 0];
            v1.extend_from_slice(&arphrd.to_be_bytes());
            v1.extend_from_slice(&[0; 10]);
            v1.extend_from_slice(&[0x08, 0x00]);
            v1.extend_from_slice(&ip);
            // SLL2: protocol 0x0800, reserved, interface 1, ARPHRD, packet type 0, length 0.
            let mut v2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1];
            v2.extend_from_slice(&arphrd.to_be_bytes());
            v2.extend_from_slice(&[0; 10]);
            v2.extend_from_slice(&ip);
            for (link, frame) in [(LinkType::LINUX_SLL, v1), (LinkType::LINUX_SLL2, v2)] {
                let (d, counters) = decode(link, &frame);
                let p = inner(&d);
                assert_eq!((p.src_port, p.dst_port), (40000, 80), "ARPHRD {arphrd}");
                assert_eq!(counters, DecodeCounters::default(), "ARPHRD {arphrd}");
            }
        }
        // A protocol below 0x0600 (802.2 LLC) is no EtherType: not IP, nothing counted.
        let mut llc = vec![0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x04];
        llc.extend_from_slice(&ip);
        let (d, counters) = decode(LinkType::LINUX_SLL, &llc);
        assert!(d.inner.is_none());
        assert_eq!(counters, DecodeCounters::default());
    }

    /// A DNS message with id 0x0042 (flags RD), one question, as in dns_port6081_id42.pcap.
    fn dns_udp(sport: u16, dport: u16) -> Vec<u8> {
        let mut dns = vec![0x00, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        dns.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 53], 64)
            .udp(sport, dport)
            .write(&mut out, &dns)
            .unwrap();
        out
    }

    #[test]
    fn regression_issue_17_dns_on_a_tunnel_port_stays_dns() {
        for (sport, dport) in [(6081, 53), (53, 6081), (53, 4789), (6081, 40000)] {
            let frame = dns_udp(sport, dport);
            let (d, counters) = decode(LinkType::ETHERNET, &frame);
            assert!(d.tunnels.is_empty(), "{sport} > {dport}");
            let p = inner(&d);
            assert_eq!(
                (p.proto, p.src_port, p.dst_port),
                (IpProto::UDP, sport, dport)
            );
            assert_eq!(counters.get("decoder.udp.tunnel_port_not_tunnel"), 1);
            assert_eq!(counters.named().len(), 1, "{:?}", counters.named());
        }
        // A real Geneve packet from a low source port still is Geneve: its header is
        // plausible (version 0, zero reserved bits, TEB, a valid inner IPv4 header).
        let mut inner_frame = ethernet(0x0800, &tcp_v4(b"x"));
        inner_frame.truncate(14 + 21 + 20);
        let mut geneve = vec![0x00, 0x00, 0x65, 0x58, 0, 0, 7, 0];
        geneve.extend_from_slice(&inner_frame);
        let mut outer = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(53, 6081)
            .write(&mut outer, &geneve)
            .unwrap();
        let (d, _) = decode(LinkType::ETHERNET, &outer);
        assert_eq!(
            d.tunnels.first().map(|t| (t.kind, t.id)),
            Some((TunnelKind::Geneve, 7))
        );
        assert_eq!(inner(&d).dst_port, 80);
    }

    #[test]
    fn regression_issue_17_pppoe_sessions_are_decoded() {
        for (proto, ip) in [(0x0021u16, tcp_v4(b"ppp")), (0x0057, tcp_v6(b"ppp"))] {
            let mut pppoe = vec![0x11, 0x00, 0x00, 0x63];
            pppoe.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
            pppoe.extend_from_slice(&proto.to_be_bytes());
            pppoe.extend_from_slice(&ip);
            // Directly on Ethernet, and behind an 802.1Q tag.
            let mut tagged = vec![0x00, 0x64, 0x88, 0x64];
            tagged.extend_from_slice(&pppoe);
            for frame in [ethernet(0x8864, &pppoe), ethernet(0x8100, &tagged)] {
                let (d, counters) = decode(LinkType::ETHERNET, &frame);
                assert!(d.tunnels.is_empty());
                assert_eq!((inner(&d).src_port, inner(&d).dst_port), (40000, 80));
                assert_eq!(counters, DecodeCounters::default());
            }
        }
        // LCP (0xC021) carries no IP; a bad version is counted.
        let frame = ethernet(0x8864, &[0x11, 0, 0, 1, 0, 4, 0xc0, 0x21, 1, 1]);
        let (d, counters) = decode(LinkType::ETHERNET, &frame);
        assert!(d.inner.is_none());
        assert_eq!(counters, DecodeCounters::default());
        let frame = ethernet(0x8864, &[0x12, 0, 0, 1, 0, 2, 0x00, 0x21]);
        let (_, counters) = decode(LinkType::ETHERNET, &frame);
        assert_eq!(counters.get("decoder.pppoe.unsupported_version"), 1);
    }

    #[test]
    fn regression_issue_17_stacked_vlan_tags_up_to_the_limit() {
        let ip = tcp_v4(b"tags");
        for n in 1..=MAX_VLAN_TAGS + 2 {
            for tpid in [0x8100u16, 0x88a8, 0x9100] {
                let mut rest = Vec::new();
                for i in 0..n {
                    rest.extend_from_slice(&(i as u16 + 1).to_be_bytes());
                    let next = if i + 1 == n { 0x0800 } else { tpid };
                    rest.extend_from_slice(&next.to_be_bytes());
                }
                rest.extend_from_slice(&ip);
                let frame = ethernet(tpid, &rest);
                let (d, counters) = decode(LinkType::ETHERNET, &frame);
                if n <= MAX_VLAN_TAGS {
                    assert_eq!(inner(&d).dst_port, 80, "{n} tags");
                    assert_eq!(counters, DecodeCounters::default(), "{n} tags");
                } else {
                    assert!(d.inner.is_none(), "{n} tags");
                    assert_eq!(counters.get("decoder.ethernet.vlan_tags_exceeded"), 1);
                }
            }
        }
    }

    #[test]
    fn ip_in_ip_is_a_tunnel_of_its_own() {
        // Outer IPv4 or IPv6 with protocol 4 or 41 around the inner packet.
        let outer_v4 = |proto: u8, inner: &[u8]| {
            let mut out = Vec::new();
            PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
                .write(&mut out, IpNumber(proto), inner)
                .unwrap();
            out
        };
        let outer_v6 = |proto: u8, inner: &[u8]| {
            let mut out = Vec::new();
            PacketBuilder::ipv6([0x20; 16], [0x30; 16], 64)
                .write(&mut out, IpNumber(proto), inner)
                .unwrap();
            out
        };
        let cases = [
            ("4in4", outer_v4(4, &tcp_v4(b"a")), 4),
            ("6in4", outer_v4(41, &tcp_v6(b"b")), 41),
            ("4in6", outer_v6(4, &tcp_v4(b"c")), 4),
            ("6in6", outer_v6(41, &tcp_v6(b"d")), 41),
        ];
        for (name, ip, id) in cases {
            let (d, counters) = decode(LinkType::RAW, &ip);
            assert_eq!(d.tunnels.len(), 1, "{name}");
            let t = d.tunnels[0];
            assert_eq!((t.kind, t.id), (TunnelKind::Ipip, id), "{name}");
            assert_eq!((t.outer_src_port, t.outer_dst_port), (0, 0));
            assert_eq!(d.inner_depth, 1);
            assert_eq!(
                (inner(&d).src_port, inner(&d).dst_port),
                (40000, 80),
                "{name}"
            );
            assert_eq!(counters, DecodeCounters::default(), "{name}");
        }
    }

    /// The headers Linux tunnel devices write when `tc ... action mirred egress mirror dev X`
    /// sends a victim's frame through them (issue 16 item 2; `tests/tests/mirred.rs` runs
    /// the real devices where the kernel has them). Byte layouts from the kernel sources:
    /// `gre_build_header` (net/ipv4/ip_gre.c), `erspan_build_header` and
    /// `erspan_build_header_v2` (include/net/erspan.h), `geneve_build_header`
    /// (drivers/net/geneve.c) and `init_tel_txopt` (net/ipv6/ip6_tunnel.c: ip6gretap,
    /// ip6erspan and ip6tnl put a Destination Options header with the tunnel encapsulation
    /// limit, default 4, before their payload).
    #[test]
    fn regression_issue_16_kernel_tunnel_devices_as_linux_writes_them() {
        let mirrored = ethernet(0x0800, &tcp_v4(b"mirrored"));
        let outer_v4 = |proto: u8, payload: &[u8]| {
            let mut out = Vec::new();
            PacketBuilder::ipv4([10, 77, 2, 1], [10, 77, 2, 2], 64)
                .write(&mut out, IpNumber(proto), payload)
                .unwrap();
            ethernet(0x0800, &out)
        };
        // IPv6, next header 60 (Destination Options), then Linux's 8-byte option block: next
        // header, length 0, option 4 (tunnel encapsulation limit) of length 1 = 4, PadN of
        // length 1.
        let outer_v6 = |proto: u8, payload: &[u8]| {
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&[60, 64]);
            ip.extend_from_slice(&[0xfd, 0x77, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            ip.extend_from_slice(&[0xfd, 0x77, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            ip.extend_from_slice(&[proto, 0, 0x04, 0x01, 0x04, 0x01, 0x01, 0x00]);
            ip.extend_from_slice(payload);
            ethernet(0x86dd, &ip)
        };
        let cat = |parts: &[&[u8]]| parts.concat();
        // gretap `key 11`: K set, protocol 0x6558, key 11: NVGRE's bytes exactly (VSID 0).
        let gretap_key = cat(&[&[0x20, 0x00, 0x65, 0x58, 0, 0, 0, 11], &mirrored]);
        // gretap `seq key 11`: K and S set, key, then sequence number 1.
        let gretap_seq_key = cat(&[
            &[0x30, 0x00, 0x65, 0x58, 0, 0, 0, 11, 0, 0, 0, 1],
            &mirrored,
        ]);
        // ip6gretap `seq key 12` (same GRE, over IPv6 with the encapsulation limit).
        let ip6gretap = cat(&[
            &[0x30, 0x00, 0x65, 0x58, 0, 0, 0, 12, 0, 0, 0, 1],
            &mirrored,
        ]);
        // erspan `erspan_ver 0` (type I): GRE without S, protocol 0x88BE, no ERSPAN header.
        let erspan0 = cat(&[&[0x00, 0x00, 0x88, 0xbe], &mirrored]);
        // erspan `seq key 13 erspan_ver 1 erspan 5`: GRE with S only (the kernel clears K),
        // 0x88BE, sequence; ERSPAN II: version 1, VLAN 0, COS 0, En 0, T 0, session 13, index 5.
        let erspan1 = cat(&[
            &[0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1],
            &[0x10, 0x00, 0x00, 13, 0, 0, 0, 5],
            &mirrored,
        ]);
        // erspan `erspan_ver 2 erspan_dir egress erspan_hwid 7`, session 14: GRE S, 0x22EB;
        // ERSPAN III: version 2, session 14, timestamp, SGT 0, P=1 FT=0 HWID-upper 0, HWID-low
        // 7, D=1 (egress), Gra 0, O=0.
        let erspan2 = |session: u8, dir: u8| {
            cat(&[
                &[0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1],
                &[0x20, 0x00, 0x00, session, 0x12, 0x34, 0x56, 0x78, 0, 0],
                &[0x80, 0x70 | (dir << 3)],
                &mirrored,
            ])
        };
        // Geneve `id 43`: version 0, no options, O and C clear, protocol 0x6558, VNI 43; the
        // kernel picks the UDP source port from the inner flow hash and leaves the checksum 0.
        let geneve = {
            let mut out = Vec::new();
            PacketBuilder::ipv4([10, 77, 2, 1], [10, 77, 2, 2], 64)
                .udp(51234, 6081)
                .write(
                    &mut out,
                    &cat(&[&[0x00, 0x00, 0x65, 0x58, 0, 0, 43, 0], &mirrored]),
                )
                .unwrap();
            out[26..28].copy_from_slice(&[0, 0]);
            ethernet(0x0800, &out)
        };
        // (device, frame, tunnel kind, tunnel id, ERSPAN III direction bit)
        type Case = (&'static str, Vec<u8>, TunnelKind, u32, Option<bool>);
        let cases: [Case; 11] = [
            (
                "gretap key",
                outer_v4(47, &gretap_key),
                TunnelKind::Nvgre,
                0,
                None,
            ),
            (
                "gretap seq key",
                outer_v4(47, &gretap_seq_key),
                TunnelKind::GreTeb,
                11,
                None,
            ),
            (
                "ip6gretap seq key",
                outer_v6(47, &ip6gretap),
                TunnelKind::GreTeb,
                12,
                None,
            ),
            (
                "erspan v0",
                outer_v4(47, &erspan0),
                TunnelKind::Erspan1,
                0,
                None,
            ),
            (
                "erspan v1",
                outer_v4(47, &erspan1),
                TunnelKind::Erspan2,
                13,
                None,
            ),
            (
                "erspan v2",
                outer_v4(47, &erspan2(14, 1)),
                TunnelKind::Erspan3,
                14,
                Some(true),
            ),
            (
                "ip6erspan v2",
                outer_v6(47, &erspan2(15, 0)),
                TunnelKind::Erspan3,
                15,
                Some(false),
            ),
            ("geneve", geneve, TunnelKind::Geneve, 43, None),
            (
                "ipip",
                outer_v4(4, &tcp_v4(b"a")),
                TunnelKind::Ipip,
                4,
                None,
            ),
            (
                "ip6tnl 4in6",
                outer_v6(4, &tcp_v4(b"b")),
                TunnelKind::Ipip,
                4,
                None,
            ),
            (
                "ip6tnl 6in6",
                outer_v6(41, &tcp_v6(b"c")),
                TunnelKind::Ipip,
                41,
                None,
            ),
        ];
        for (name, frame, kind, id, egress) in cases {
            let (d, counters) = decode(LinkType::ETHERNET, &frame);
            assert_eq!(d.tunnels.len(), 1, "{name}: {:?}", d.tunnels);
            let t = d.tunnels[0];
            assert_eq!(
                (t.kind, t.id, t.erspan_egress),
                (kind, id, egress),
                "{name}"
            );
            assert!(!t.mirror_truncated, "{name}");
            assert_eq!(d.inner_depth, 1, "{name}");
            assert_eq!(
                (inner(&d).src_port, inner(&d).dst_port),
                (40000, 80),
                "{name}"
            );
            assert!(!d.truncated, "{name}");
            assert_eq!(counters, DecodeCounters::default(), "{name}");
        }
    }
}
