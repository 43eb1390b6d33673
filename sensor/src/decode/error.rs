//! Decode errors: typed, `Copy`, allocation-free, each with a stable dotted event name.
//!
//! A decoder returns a [`DecodeError`]; the layer walk counts it under
//! `decoder.<`[`Layer::name`]`>.<`[`DecodeError::kind_name`]`>` and moves on. Nothing here
//! stops a run.

use thiserror::Error;

/// The protocol layer a decode event belongs to. Its name is the middle part of the dotted
/// event name (`decoder.<layer>.<what>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// The capture link header (Ethernet, SLL, SLL2, NULL, raw).
    Link,
    /// Ethernet and VLAN tags.
    Ethernet,
    /// MPLS label stack.
    Mpls,
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP and ICMPv6.
    Icmp,
    /// GRE (v0 and v1).
    Gre,
    /// PPP inside PPTP GRE.
    Ppp,
    /// ERSPAN type I, II or III.
    Erspan,
    /// VXLAN.
    Vxlan,
    /// Geneve.
    Geneve,
    /// PPPoE session header.
    Pppoe,
}

impl Layer {
    /// Every layer, in a fixed order (for counter arrays).
    pub const ALL: [Layer; 14] = [
        Layer::Link,
        Layer::Ethernet,
        Layer::Mpls,
        Layer::Ipv4,
        Layer::Ipv6,
        Layer::Tcp,
        Layer::Udp,
        Layer::Icmp,
        Layer::Gre,
        Layer::Ppp,
        Layer::Erspan,
        Layer::Vxlan,
        Layer::Geneve,
        Layer::Pppoe,
    ];

    /// Position in [`Layer::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name used in event names.
    pub const fn name(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Ethernet => "ethernet",
            Layer::Mpls => "mpls",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
            Layer::Gre => "gre",
            Layer::Ppp => "ppp",
            Layer::Erspan => "erspan",
            Layer::Vxlan => "vxlan",
            Layer::Geneve => "geneve",
            Layer::Pppoe => "pppoe",
        }
    }
}

/// Why a header could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the fixed header needs.
    #[error("{} header too small: need {needed} bytes, have {available}", layer.name())]
    HeaderTooSmall {
        /// Layer being decoded.
        layer: Layer,
        /// Bytes the header needs (as far as known).
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A length field points beyond the bytes available or below the fixed header.
    #[error("{} length field {value} is invalid ({available} bytes available)", layer.name())]
    BadLength {
        /// Layer being decoded.
        layer: Layer,
        /// The length the header claims, in bytes.
        value: usize,
        /// Bytes available.
        available: usize,
    },
    /// A version field we do not decode.
    #[error("{} version {version} is not supported", layer.name())]
    UnsupportedVersion {
        /// Layer being decoded.
        layer: Layer,
        /// The version found.
        version: u8,
    },
    /// Flags that the specification forbids or that we cannot honour.
    #[error("{} flags {flags:#06x} are invalid", layer.name())]
    BadFlags {
        /// Layer being decoded.
        layer: Layer,
        /// The raw flag bits.
        flags: u16,
    },
    /// The payload type (EtherType, PPP protocol, ...) is not one we can follow.
    #[error("{} payload type {value:#06x} is not supported", layer.name())]
    UnknownPayloadType {
        /// Layer being decoded.
        layer: Layer,
        /// The payload type.
        value: u16,
    },
    /// An option or TLV is malformed.
    #[error("{} option at offset {offset} is malformed", layer.name())]
    BadOption {
        /// Layer being decoded.
        layer: Layer,
        /// Offset of the option within the header.
        offset: usize,
    },
}

impl DecodeError {
    /// The layer this error belongs to.
    pub const fn layer(self) -> Layer {
        match self {
            DecodeError::HeaderTooSmall { layer, .. }
            | DecodeError::BadLength { layer, .. }
            | DecodeError::UnsupportedVersion { layer, .. }
            | DecodeError::BadFlags { layer, .. }
            | DecodeError::UnknownPayloadType { layer, .. }
            | DecodeError::BadOption { layer, .. } => layer,
        }
    }

    /// Names of the error kinds, indexed by [`DecodeError::kind_index`].
    pub const KIND_NAMES: [&'static str; 6] = [
        "header_too_small",
        "bad_length",
        "unsupported_version",
        "bad_flags",
        "unknown_payload_type",
        "bad_option",
    ];

    /// Position of this error's kind in [`DecodeError::KIND_NAMES`].
    pub const fn kind_index(self) -> usize {
        match self {
            DecodeError::HeaderTooSmall { .. } => 0,
            DecodeError::BadLength { .. } => 1,
            DecodeError::UnsupportedVersion { .. } => 2,
            DecodeError::BadFlags { .. } => 3,
            DecodeError::UnknownPayloadType { .. } => 4,
            DecodeError::BadOption { .. } => 5,
        }
    }

    /// The last part of the dotted event name.
    pub const fn kind_name(self) -> &'static str {
        Self::KIND_NAMES[self.kind_index()]
    }
}
