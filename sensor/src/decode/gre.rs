//! GRE v0 (RFC 2784/2890) and v1 (PPTP, RFC 2637), and PPP inside PPTP. STUB: being
//! implemented by a helper; the API is the contract.
use super::error::{DecodeError, Layer};

/// Zero-copy view of a GRE header and its payload.
#[derive(Clone, Copy, Debug)]
pub struct GreSlice<'a> {
    bytes: &'a [u8],
}

impl<'a> GreSlice<'a> {
    /// Parses GRE v0 (optional checksum, key, sequence) or v1 (PPTP: key mandatory, optional
    /// sequence and acknowledgement).
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::HeaderTooSmall {
            layer: Layer::Gre,
            needed: 4,
            available: bytes.len(),
        })
    }
    /// GRE version (0 or 1).
    pub fn version(&self) -> u8 {
        0
    }
    /// Protocol type (an EtherType).
    pub fn protocol_type(&self) -> u16 {
        0
    }
    /// Key field if the K bit is set (v1: payload length << 16 | call id).
    pub fn key(&self) -> Option<u32> {
        None
    }
    /// Sequence number if the S bit is set.
    pub fn sequence(&self) -> Option<u32> {
        None
    }
    /// Header length including optional fields.
    pub fn header_len(&self) -> usize {
        4
    }
    /// The encapsulated payload.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Zero-copy view of a PPP frame carried in PPTP GRE.
#[derive(Clone, Copy, Debug)]
pub struct PppSlice<'a> {
    bytes: &'a [u8],
}

impl<'a> PppSlice<'a> {
    /// Parses optional address/control (0xFF 0x03) and a 1- or 2-byte protocol field.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::HeaderTooSmall {
            layer: Layer::Ppp,
            needed: 1,
            available: bytes.len(),
        })
    }
    /// PPP protocol number (0x0021 IPv4, 0x0057 IPv6).
    pub fn protocol(&self) -> u16 {
        0
    }
    /// The PPP payload.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
    }
}
