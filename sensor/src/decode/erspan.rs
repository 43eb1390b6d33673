//! ERSPAN type II and III headers (type I has no header). STUB: being implemented by a
//! helper; the API is the contract.
use super::error::{DecodeError, Layer};

/// Zero-copy view of an ERSPAN type II (version 1) header.
#[derive(Clone, Copy, Debug)]
pub struct Erspan2Slice<'a> {
    bytes: &'a [u8],
}

impl<'a> Erspan2Slice<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 8;
    /// Parses the 8-byte header; the version must be 1.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::HeaderTooSmall {
            layer: Layer::Erspan,
            needed: Self::HEADER_LEN,
            available: bytes.len(),
        })
    }
    /// 10-bit session ID.
    pub fn session_id(&self) -> u16 {
        0
    }
    /// Original VLAN.
    pub fn vlan(&self) -> u16 {
        0
    }
    /// T bit: the mirrored frame was truncated by the source.
    pub fn truncated(&self) -> bool {
        false
    }
    /// Header length.
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }
    /// The mirrored Ethernet frame.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Zero-copy view of an ERSPAN type III (version 2) header, with the optional platform
/// subheader.
#[derive(Clone, Copy, Debug)]
pub struct Erspan3Slice<'a> {
    bytes: &'a [u8],
}

impl<'a> Erspan3Slice<'a> {
    /// Length without the platform subheader.
    pub const FIXED_LEN: usize = 12;
    /// Parses the 12-byte header and, if the O bit is set, the 8-byte platform subheader; the
    /// version must be 2.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::HeaderTooSmall {
            layer: Layer::Erspan,
            needed: Self::FIXED_LEN,
            available: bytes.len(),
        })
    }
    /// 10-bit session ID.
    pub fn session_id(&self) -> u16 {
        0
    }
    /// Original VLAN.
    pub fn vlan(&self) -> u16 {
        0
    }
    /// T bit: the mirrored frame was truncated by the source.
    pub fn truncated(&self) -> bool {
        false
    }
    /// D bit: false = ingress, true = egress.
    pub fn egress(&self) -> bool {
        false
    }
    /// Header length including the optional subheader.
    pub fn header_len(&self) -> usize {
        Self::FIXED_LEN
    }
    /// The mirrored Ethernet frame.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
    }
}
