//! Capture link types and the link headers we read ourselves (SLL, SLL2, BSD NULL/loopback).
//!
//! [`LinkType`] is an open newtype over pcap's LINKTYPE_* numbers (tcpdump.org
//! `linktypes.html`). [`SllSlice`] views the 16-byte Linux cooked v1 header
//! (LINKTYPE_LINUX_SLL), [`Sll2Slice`] the 20-byte v2 header (LINKTYPE_LINUX_SLL2);
//! [`NullSlice`] views the 4-byte address family of LINKTYPE_NULL and
//! LINKTYPE_LOOP. The constructors check the length; after that the accessors cannot fail and
//! `payload()` borrows from the caller's buffer.
//!
//! Where readers differ: LINKTYPE_NULL stores the family in the *capturing* host's byte order
//! and LINKTYPE_LOOP in network order, and AF_INET6 is 10 (Linux), 24 (NetBSD, OpenBSD),
//! 28 (FreeBSD) or 30 (macOS). Like Wireshark, we read the family in whichever byte order gives a
//! small number, so one rule covers NULL from either endianness and LOOP, and accept every
//! AF_INET6 value. SLL2's address length may claim more than the 8-byte address field; we clamp
//! the address instead of rejecting the packet, since the payload offset does not depend on it.
//!
//! Cooked captures are dispatched on their protocol field, whatever the ARPHRD type, as tshark
//! does ([`cooked_ether_type`]): etherparse's own SLL slicer accepts only the ARPHRD types it
//! knows, so tunnel devices (IPGRE 778, SIT 776, TUNNEL6 769), loopback (772) and NONE (0xfffe,
//! `tun` devices) were dropped as not-IP (issue 17, item 6). A protocol below 0x0600 is not an
//! EtherType (802.3 length, LLC, CAN, netlink family): the frame carries no IP for us.

use std::fmt;

use super::bytes::{be_u16, be_u32, le_u32};
use super::error::{DecodeError, Layer};

/// A pcap LINKTYPE_* value (open: unknown values are kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback, host byte order family.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (IPv4 or IPv6 by version nibble).
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback, network byte order family.
    pub const LOOP: LinkType = LinkType(108);
    /// Per-Packet Information header (CACE PPI) in front of a frame of another link type.
    pub const PPI: LinkType = LinkType(192);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// Lower-case name of the link types listed above (pcap's LINKTYPE_* without the prefix);
    /// `None` for any other value.
    pub const fn name(self) -> Option<&'static str> {
        match self {
            LinkType::NULL => Some("null"),
            LinkType::ETHERNET => Some("ethernet"),
            LinkType::RAW => Some("raw"),
            LinkType::LOOP => Some("loop"),
            LinkType::PPI => Some("ppi"),
            LinkType::LINUX_SLL => Some("linux_sll"),
            LinkType::IPV4 => Some("ipv4"),
            LinkType::IPV6 => Some("ipv6"),
            LinkType::LINUX_SLL2 => Some("linux_sll2"),
            _ => None,
        }
    }
}

impl fmt::Display for LinkType {
    /// The name if known, else `linktype_<number>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "linktype_{}", self.0),
        }
    }
}

/// Zero-copy view of a Linux cooked v2 header (20 bytes).
///
/// Invariant: `bytes.len() >= HEADER_LEN`.
#[derive(Clone, Copy, Debug)]
pub struct Sll2Slice<'a> {
    bytes: &'a [u8],
}

/// Zero-copy view of a Linux cooked v1 header (16 bytes).
///
/// Invariant: `bytes.len() >= HEADER_LEN`.
#[derive(Clone, Copy, Debug)]
pub struct SllSlice<'a> {
    bytes: &'a [u8],
}

/// Zero-copy view of a Per-Packet Information header (LINKTYPE_PPI): version 0, flags, a
/// little-endian header length (8 and more, the fields after the first 8 bytes are skipped) and
/// the little-endian link type of the frame that follows.
///
/// Invariant: `bytes.len() >= header_len() >= HEADER_LEN`.
#[derive(Clone, Copy, Debug)]
pub struct PpiSlice<'a> {
    bytes: &'a [u8],
}

/// Address family carried by a NULL/LOOP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NullFamily {
    /// AF_INET.
    Ipv4,
    /// AF_INET6 (10, 24, 28 or 30 depending on the capturing OS).
    Ipv6,
    /// Anything else.
    Other(u32),
}

/// Zero-copy view of a BSD NULL or OpenBSD LOOP header (4 bytes).
///
/// Invariant: `bytes.len() >= HEADER_LEN`.
#[derive(Clone, Copy, Debug)]
pub struct NullSlice<'a> {
    bytes: &'a [u8],
}

/// Byte offsets of the SLL v1 header (tcpdump.org `LINKTYPE_LINUX_SLL.html`).
mod sll_field {
    use std::ops::Range;

    /// Packet type (PACKET_HOST, PACKET_OUTGOING, ...).
    pub(super) const PACKET_TYPE: Range<usize> = 0..2;
    /// ARPHRD_* type of the link.
    pub(super) const ARPHRD: Range<usize> = 2..4;
    /// Number of meaningful bytes in the address field.
    #[allow(dead_code, reason = "documents the layout; the address is not used")]
    pub(super) const ADDRESS_LEN: Range<usize> = 4..6;
    /// Link-layer source address, zero-padded to 8 bytes.
    #[allow(dead_code, reason = "documents the layout; the address is not used")]
    pub(super) const ADDRESS: Range<usize> = 6..14;
    /// Protocol type (an EtherType for most ARPHRD types).
    pub(super) const PROTOCOL: Range<usize> = 14..16;
}

/// Byte offsets of the SLL2 header (tcpdump.org `LINKTYPE_LINUX_SLL2.html`).
mod sll2_field {
    use std::ops::Range;

    /// Protocol type (an EtherType for most ARPHRD types).
    pub(super) const PROTOCOL: Range<usize> = 0..2;
    /// Reserved (must be zero; ignored).
    #[allow(dead_code, reason = "documents the layout; the field is ignored")]
    pub(super) const RESERVED: Range<usize> = 2..4;
    /// Interface index of the capturing interface.
    pub(super) const INTERFACE_INDEX: Range<usize> = 4..8;
    /// ARPHRD_* type of the link.
    pub(super) const ARPHRD: Range<usize> = 8..10;
    /// Packet type (PACKET_HOST, PACKET_OUTGOING, ...).
    pub(super) const PACKET_TYPE: usize = 10;
    /// Number of meaningful bytes in the address field.
    pub(super) const ADDRESS_LEN: usize = 11;
    /// Link-layer source address, zero-padded to 8 bytes.
    pub(super) const ADDRESS: Range<usize> = 12..20;
}

/// Byte offsets of the NULL/LOOP header.
mod null_field {
    use std::ops::Range;

    /// Address family, in the capturing host's byte order (NULL) or network order (LOOP).
    pub(super) const FAMILY: Range<usize> = 0..4;
    /// Families are small numbers: a reading with any of these bits set is the wrong byte order.
    pub(super) const WRONG_ORDER_MASK: u32 = 0xffff_0000;
}

impl<'a> PpiSlice<'a> {
    /// Fixed part: version, flags, length, link type.
    pub const HEADER_LEN: usize = 8;

    /// Parses the header; the length field must cover the fixed part and fit the bytes.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::HEADER_LEN {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Link,
                needed: Self::HEADER_LEN,
                available: bytes.len(),
            });
        }
        if bytes[0] != 0 {
            return Err(DecodeError::UnsupportedVersion {
                layer: Layer::Link,
                version: bytes[0],
            });
        }
        let view = PpiSlice { bytes };
        if view.header_len() < Self::HEADER_LEN || view.header_len() > bytes.len() {
            return Err(DecodeError::BadLength {
                layer: Layer::Link,
                value: view.header_len(),
                available: bytes.len(),
            });
        }
        Ok(view)
    }

    /// Header length, the per-packet fields included.
    pub fn header_len(&self) -> usize {
        usize::from(u16::from_le_bytes([self.bytes[2], self.bytes[3]]))
    }

    /// Link type of the frame after the header.
    pub fn link_type(&self) -> LinkType {
        LinkType(le_u32(&self.bytes[4..8]))
    }

    /// The frame after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len()..]
    }
}

/// What a cooked header's protocol field leads to: `Some(EtherType)` when it is one (0x0600 and
/// above), `None` otherwise (802.3 lengths, LLC, CAN, netlink families). The ARPHRD type is not
/// consulted: for Ethernet, loopback, NONE, IPGRE, SIT and the other tunnel devices the field
/// holds the EtherType (IPGRE: the GRE protocol type, an EtherType too), as tshark reads it.
pub const fn cooked_ether_type(protocol: u16) -> Option<u16> {
    if protocol >= 0x0600 {
        Some(protocol)
    } else {
        None
    }
}

impl<'a> SllSlice<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = sll_field::PROTOCOL.end;
    /// ARPHRD type of Ethernet.
    pub const ARPHRD_ETHER: u16 = 1;
    /// ARPHRD type of an IP-in-GRE tunnel device.
    pub const ARPHRD_IPGRE: u16 = 778;
    /// ARPHRD type of the loopback device.
    pub const ARPHRD_LOOPBACK: u16 = 772;
    /// ARPHRD type of a device without a link header (`tun`).
    pub const ARPHRD_NONE: u16 = 0xfffe;

    /// Parses the header.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::HEADER_LEN {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Link,
                needed: Self::HEADER_LEN,
                available: bytes.len(),
            });
        }
        Ok(SllSlice { bytes })
    }

    /// Packet type (0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing).
    pub fn packet_type(&self) -> u16 {
        be_u16(&self.bytes[sll_field::PACKET_TYPE])
    }

    /// ARPHRD_* type of the link.
    pub fn arphrd_type(&self) -> u16 {
        be_u16(&self.bytes[sll_field::ARPHRD])
    }

    /// Protocol type (see [`cooked_ether_type`]).
    pub fn protocol_type(&self) -> u16 {
        be_u16(&self.bytes[sll_field::PROTOCOL])
    }

    /// Header length (always 16).
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// The payload after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[Self::HEADER_LEN..]
    }
}

impl<'a> Sll2Slice<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = sll2_field::ADDRESS.end;
    /// Packet type: addressed to this host.
    pub const PACKET_HOST: u8 = 0;
    /// Packet type: broadcast.
    pub const PACKET_BROADCAST: u8 = 1;
    /// Packet type: multicast.
    pub const PACKET_MULTICAST: u8 = 2;
    /// Packet type: to another host, seen in promiscuous mode.
    pub const PACKET_OTHERHOST: u8 = 3;
    /// Packet type: sent by this host.
    pub const PACKET_OUTGOING: u8 = 4;
    /// ARPHRD type of Ethernet.
    pub const ARPHRD_ETHER: u16 = 1;

    /// Parses the header.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::HEADER_LEN {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Link,
                needed: Self::HEADER_LEN,
                available: bytes.len(),
            });
        }
        Ok(Sll2Slice { bytes })
    }

    /// Protocol type (an EtherType for ARPHRD_ETHER and most others).
    pub fn protocol_type(&self) -> u16 {
        be_u16(&self.bytes[sll2_field::PROTOCOL])
    }

    /// Index of the interface the packet was captured on.
    pub fn interface_index(&self) -> u32 {
        be_u32(&self.bytes[sll2_field::INTERFACE_INDEX])
    }

    /// ARPHRD_* type of the link (1 = Ethernet).
    pub fn arphrd_type(&self) -> u16 {
        be_u16(&self.bytes[sll2_field::ARPHRD])
    }

    /// Packet type (`PACKET_HOST`, ..., `PACKET_OUTGOING`).
    pub fn packet_type(&self) -> u8 {
        self.bytes[sll2_field::PACKET_TYPE]
    }

    /// Address length as the header states it (may exceed the 8-byte field).
    pub fn address_len(&self) -> u8 {
        self.bytes[sll2_field::ADDRESS_LEN]
    }

    /// Link-layer source address: the first `address_len()` bytes of the field, at most 8.
    pub fn address(&self) -> &'a [u8] {
        let field = &self.bytes[sll2_field::ADDRESS];
        let len = usize::from(self.address_len()).min(field.len());
        &field[..len]
    }

    /// Header length (always 20).
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// The payload after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[Self::HEADER_LEN..]
    }
}

impl<'a> NullSlice<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = null_field::FAMILY.end;
    /// AF_INET on every system.
    pub const AF_INET: u32 = 2;
    /// AF_INET6 on Linux.
    pub const AF_INET6_LINUX: u32 = 10;
    /// AF_INET6 on NetBSD and OpenBSD.
    pub const AF_INET6_NETBSD_OPENBSD: u32 = 24;
    /// AF_INET6 on FreeBSD.
    pub const AF_INET6_FREEBSD: u32 = 28;
    /// AF_INET6 on macOS.
    pub const AF_INET6_DARWIN: u32 = 30;

    /// Parses the header; the family is read in either byte order (NULL is host order).
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::HEADER_LEN {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Link,
                needed: Self::HEADER_LEN,
                available: bytes.len(),
            });
        }
        Ok(NullSlice { bytes })
    }

    /// The family number in whichever byte order makes it below 65536 (big-endian first; if
    /// neither does, the big-endian reading).
    pub fn family_value(&self) -> u32 {
        let raw = &self.bytes[null_field::FAMILY];
        let big = be_u32(raw);
        let little = le_u32(raw);
        if big & null_field::WRONG_ORDER_MASK == 0 || little & null_field::WRONG_ORDER_MASK != 0 {
            big
        } else {
            little
        }
    }

    /// The address family.
    pub fn family(&self) -> NullFamily {
        match self.family_value() {
            Self::AF_INET => NullFamily::Ipv4,
            Self::AF_INET6_LINUX
            | Self::AF_INET6_NETBSD_OPENBSD
            | Self::AF_INET6_FREEBSD
            | Self::AF_INET6_DARWIN => NullFamily::Ipv6,
            other => NullFamily::Other(other),
        }
    }

    /// Header length (always 4).
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// The payload after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[Self::HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// sv__decode-sll2-02_input.pcap (shared/pcaps/mixed), frame 1, cut after the IPv4 header.
    static SURICATA_SLL2: [u8; 40] = [
        // SLL2: protocol 0x0800, reserved 0, interface index 2, ARPHRD 1 (Ethernet),
        // packet type 4 (outgoing), address length 6, address aa:76:30:71:b0:e7 + 2 pad bytes.
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x04, 0x06, 0xaa, 0x76, 0x30,
        0x71, 0xb0, 0xe7, 0x00, 0x00,
        // IPv4: 192.168.1.253 -> 192.168.1.21, TCP, 60 bytes.
        0x45, 0x00, 0x00, 0x3c, 0x45, 0xa9, 0x40, 0x00, 0x40, 0x06, 0x70, 0xb0, 0xc0, 0xa8, 0x01,
        0xfd, 0xc0, 0xa8, 0x01, 0x15,
    ];

    /// Hand-built (the sample NULL capture is fuzzed garbage): a macOS lo0 capture, family 30
    /// (AF_INET6) in little-endian host order, then the first bytes of an IPv6 header.
    static MACOS_NULL_IPV6: [u8; 8] = [
        // NULL: family 30, little-endian.
        0x1e, 0x00, 0x00, 0x00, // IPv6: version 6, traffic class 0, flow label 0x00000.
        0x60, 0x00, 0x00, 0x00,
    ];

    /// Linux cooked v1 from an IPGRE tunnel device (ARPHRD 778), shaped like sll_ipgre.pcap of
    /// the issue 17 reproducers: the protocol field is the GRE protocol type, here IPv4.
    static SLL_IPGRE: [u8; 20] = [
        // SLL: packet type 0 (host), ARPHRD 778 (IPGRE), address length 4, address
        // 192.0.2.1 + 4 pad bytes, protocol 0x0800.
        0x00, 0x00, 0x03, 0x0a, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x08,
        0x00, // IPv4: version 4, IHL 5, the rest cut.
        0x45, 0x00, 0x00, 0x1c,
    ];

    #[test]
    fn parses_known_bytes_ppi() {
        // PPI: version 0, flags 0, length 8, link type 1 (Ethernet), then two frame bytes.
        let bytes = [0, 0, 8, 0, 1, 0, 0, 0, 0xaa, 0xbb];
        let ppi = PpiSlice::from_slice(&bytes).unwrap();
        assert_eq!(ppi.header_len(), 8);
        assert_eq!(ppi.link_type(), LinkType::ETHERNET);
        assert_eq!(ppi.payload(), &[0xaa, 0xbb]);
        assert!(matches!(
            PpiSlice::from_slice(&[0, 0, 11, 0, 1, 0, 0, 0, 0xaa, 0xbb]),
            Err(DecodeError::BadLength { value: 11, .. })
        ));
        assert!(matches!(
            PpiSlice::from_slice(&[0, 0, 7, 0, 1, 0, 0, 0]),
            Err(DecodeError::BadLength { value: 7, .. })
        ));
        assert!(matches!(
            PpiSlice::from_slice(&[1, 0, 8, 0, 1, 0, 0, 0]),
            Err(DecodeError::UnsupportedVersion { version: 1, .. })
        ));
        for len in 0..8 {
            assert!(PpiSlice::from_slice(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn parses_known_bytes_sll() {
        let sll = SllSlice::from_slice(&SLL_IPGRE).unwrap();
        assert_eq!(sll.packet_type(), 0);
        assert_eq!(sll.arphrd_type(), SllSlice::ARPHRD_IPGRE);
        assert_eq!(sll.protocol_type(), 0x0800);
        assert_eq!(sll.header_len(), 16);
        assert_eq!(sll.payload(), &SLL_IPGRE[16..]);
        assert_eq!(cooked_ether_type(sll.protocol_type()), Some(0x0800));
        // 802.2 LLC (0x0004) and a netlink family are not EtherTypes.
        assert_eq!(cooked_ether_type(0x0004), None);
        assert_eq!(cooked_ether_type(0x05ff), None);
        assert_eq!(cooked_ether_type(0x86dd), Some(0x86dd));
        for len in 0..16 {
            assert_eq!(
                SllSlice::from_slice(&SLL_IPGRE[..len]).unwrap_err(),
                DecodeError::HeaderTooSmall {
                    layer: Layer::Link,
                    needed: 16,
                    available: len
                }
            );
        }
    }

    /// Test-only SLL2 encoder.
    fn encode_sll2(
        protocol: u16,
        if_index: u32,
        arphrd: u16,
        packet_type: u8,
        address_len: u8,
        address: [u8; 8],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = protocol.to_be_bytes().to_vec();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&if_index.to_be_bytes());
        out.extend_from_slice(&arphrd.to_be_bytes());
        out.push(packet_type);
        out.push(address_len);
        out.extend_from_slice(&address);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn parses_known_bytes() {
        let sll2 = Sll2Slice::from_slice(&SURICATA_SLL2).unwrap();
        assert_eq!(sll2.protocol_type(), 0x0800);
        assert_eq!(sll2.interface_index(), 2);
        assert_eq!(sll2.arphrd_type(), Sll2Slice::ARPHRD_ETHER);
        assert_eq!(sll2.packet_type(), Sll2Slice::PACKET_OUTGOING);
        assert_eq!(sll2.address_len(), 6);
        assert_eq!(sll2.address(), &[0xaa, 0x76, 0x30, 0x71, 0xb0, 0xe7]);
        assert_eq!(sll2.header_len(), 20);
        assert_eq!(sll2.payload(), &SURICATA_SLL2[20..]);
    }

    #[test]
    fn parses_known_bytes_null() {
        let null = NullSlice::from_slice(&MACOS_NULL_IPV6).unwrap();
        assert_eq!(null.family_value(), 30);
        assert_eq!(null.family(), NullFamily::Ipv6);
        assert_eq!(null.header_len(), 4);
        assert_eq!(null.payload(), &[0x60, 0, 0, 0]);
        // Every family, written little-endian (NULL from x86) and big-endian (LOOP, or NULL
        // from a big-endian host).
        let cases = [
            (2, NullFamily::Ipv4),
            (10, NullFamily::Ipv6),
            (24, NullFamily::Ipv6),
            (28, NullFamily::Ipv6),
            (30, NullFamily::Ipv6),
            (17, NullFamily::Other(17)),
            (0, NullFamily::Other(0)),
        ];
        for (value, family) in cases {
            for bytes in [u32::to_le_bytes(value), u32::to_be_bytes(value)] {
                let null = NullSlice::from_slice(&bytes).unwrap();
                assert_eq!(null.family(), family, "{bytes:02x?}");
                assert_eq!(null.payload(), &[] as &[u8]);
            }
        }
    }

    #[test]
    fn parses_known_bytes_other_null_family() {
        // Neither reading is small: the big-endian one is reported.
        let null = NullSlice::from_slice(&[0x00, 0x6c, 0x65, 0xcb]).unwrap();
        assert_eq!(null.family(), NullFamily::Other(0x006c_65cb));
        let null = NullSlice::from_slice(&[0x01, 0x00, 0x00, 0x01]).unwrap();
        assert_eq!(null.family(), NullFamily::Other(0x0100_0001));
    }

    #[test]
    fn rejects_truncated_header() {
        for len in 0..20 {
            assert_eq!(
                Sll2Slice::from_slice(&SURICATA_SLL2[..len]).unwrap_err(),
                DecodeError::HeaderTooSmall {
                    layer: Layer::Link,
                    needed: 20,
                    available: len
                }
            );
        }
        for len in 0..4 {
            assert_eq!(
                NullSlice::from_slice(&MACOS_NULL_IPV6[..len]).unwrap_err(),
                DecodeError::HeaderTooSmall {
                    layer: Layer::Link,
                    needed: 4,
                    available: len
                }
            );
        }
    }

    #[test]
    fn clamps_bad_address_len() {
        // Too short (0) and lying (255, past the 8-byte field): the address is cut, the payload
        // offset does not move.
        for (address_len, expected) in [(0u8, 0usize), (8, 8), (9, 8), (255, 8)] {
            let mut bytes = SURICATA_SLL2;
            bytes[11] = address_len;
            let sll2 = Sll2Slice::from_slice(&bytes).unwrap();
            assert_eq!(sll2.address_len(), address_len);
            assert_eq!(sll2.address(), &SURICATA_SLL2[12..12 + expected]);
            assert_eq!(sll2.payload(), &SURICATA_SLL2[20..]);
        }
    }

    #[test]
    fn names_link_types() {
        assert_eq!(LinkType::LINUX_SLL2.name(), Some("linux_sll2"));
        assert_eq!(LinkType::NULL.name(), Some("null"));
        assert_eq!(LinkType(147).name(), None);
        assert_eq!(LinkType::ETHERNET.to_string(), "ethernet");
        assert_eq!(LinkType(147).to_string(), "linktype_147");
        let all = [
            LinkType::NULL,
            LinkType::ETHERNET,
            LinkType::RAW,
            LinkType::LOOP,
            LinkType::PPI,
            LinkType::LINUX_SLL,
            LinkType::IPV4,
            LinkType::IPV6,
            LinkType::LINUX_SLL2,
        ];
        let mut names: Vec<_> = all.iter().filter_map(|l| l.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "names must be present and distinct");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(sll2) = Sll2Slice::from_slice(&bytes) {
                prop_assert!(sll2.address().len() <= 8);
                prop_assert_eq!(sll2.header_len() + sll2.payload().len(), bytes.len());
                let _ = (sll2.protocol_type(), sll2.interface_index(), sll2.arphrd_type());
                let _ = (sll2.packet_type(), sll2.address_len());
            }
            if let Ok(null) = NullSlice::from_slice(&bytes) {
                prop_assert_eq!(null.header_len() + null.payload().len(), bytes.len());
                if let NullFamily::Other(value) = null.family() {
                    prop_assert_eq!(value, null.family_value());
                }
            }
        }

        #[test]
        fn rejects_every_truncated_prefix(
            header in any::<[u8; 20]>(),
            payload in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut bytes = header.to_vec();
            bytes.extend_from_slice(&payload);
            for len in 0..20 {
                prop_assert_eq!(
                    Sll2Slice::from_slice(&bytes[..len]).map(|s| s.protocol_type()),
                    Err(DecodeError::HeaderTooSmall { layer: Layer::Link, needed: 20, available: len })
                );
            }
            for len in 0..4 {
                prop_assert_eq!(
                    NullSlice::from_slice(&bytes[..len]).map(|n| n.family()),
                    Err(DecodeError::HeaderTooSmall { layer: Layer::Link, needed: 4, available: len })
                );
            }
        }

        #[test]
        fn round_trips_sll2_fields(
            protocol in any::<u16>(),
            if_index in any::<u32>(),
            arphrd in any::<u16>(),
            packet_type in any::<u8>(),
            address_len in 0u8..=8,
            address in any::<[u8; 8]>(),
            payload in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let bytes = encode_sll2(protocol, if_index, arphrd, packet_type, address_len, address, &payload);
            let sll2 = Sll2Slice::from_slice(&bytes).unwrap();
            prop_assert_eq!(sll2.protocol_type(), protocol);
            prop_assert_eq!(sll2.interface_index(), if_index);
            prop_assert_eq!(sll2.arphrd_type(), arphrd);
            prop_assert_eq!(sll2.packet_type(), packet_type);
            prop_assert_eq!(sll2.address(), &address[..usize::from(address_len)]);
            prop_assert_eq!(sll2.payload(), &payload[..]);
        }

        #[test]
        fn round_trips_null_family(family in 0u32..1 << 16, little in any::<bool>()) {
            let bytes = if little { family.to_le_bytes() } else { family.to_be_bytes() };
            let null = NullSlice::from_slice(&bytes).unwrap();
            prop_assert_eq!(null.family_value(), family);
            let expected = match family {
                2 => NullFamily::Ipv4,
                10 | 24 | 28 | 30 => NullFamily::Ipv6,
                other => NullFamily::Other(other),
            };
            prop_assert_eq!(null.family(), expected);
        }
    }
}
