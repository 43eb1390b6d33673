//! Capture link types and the link headers etherparse lacks (SLL2, BSD NULL/loopback).
//! STUB: being implemented by a helper; the API is the contract.
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
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// Zero-copy view of a Linux cooked v2 header (20 bytes).
#[derive(Clone, Copy, Debug)]
pub struct Sll2Slice<'a> {
    bytes: &'a [u8],
}

impl<'a> Sll2Slice<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 20;
    /// Parses the header.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::HeaderTooSmall {
            layer: Layer::Link,
            needed: Self::HEADER_LEN,
            available: bytes.len(),
        })
    }
    /// Protocol type (an EtherType for ARPHRD_ETHER and most others).
    pub fn protocol_type(&self) -> u16 {
        0
    }
    /// The payload after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
    }
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
#[derive(Clone, Copy, Debug)]
pub struct NullSlice<'a> {
    bytes: &'a [u8],
}

impl<'a> NullSlice<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 4;
    /// Parses the header; the family is read in either byte order (NULL is host order).
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::HeaderTooSmall {
            layer: Layer::Link,
            needed: Self::HEADER_LEN,
            available: bytes.len(),
        })
    }
    /// The address family.
    pub fn family(&self) -> NullFamily {
        NullFamily::Other(0)
    }
    /// The payload after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
    }
}
