//! VXLAN (RFC 7348). STUB: being implemented by a helper; the API is the contract.
use super::error::{DecodeError, Layer};

/// Zero-copy view of a VXLAN header and its inner Ethernet frame.
#[derive(Clone, Copy, Debug)]
pub struct VxlanSlice<'a> {
    bytes: &'a [u8],
}

impl<'a> VxlanSlice<'a> {
    /// Fixed header length.
    pub const HEADER_LEN: usize = 8;
    /// Lenient parse for configured ports: I flag required, reserved bits ignored (RFC 7348 §5).
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::HeaderTooSmall {
            layer: Layer::Vxlan,
            needed: Self::HEADER_LEN,
            available: bytes.len(),
        })
    }
    /// Strict parse for probing non-standard ports: flags byte exactly 0x08, every reserved bit zero.
    pub fn from_slice_strict(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Self::from_slice(bytes)
    }
    /// 24-bit VXLAN network identifier.
    pub fn vni(&self) -> u32 {
        0
    }
    /// Header length (always 8).
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }
    /// The inner Ethernet frame.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
    }
}
