//! Geneve (RFC 8926). STUB: being implemented by a helper; the API is the contract.
use super::error::{DecodeError, Layer};

/// Zero-copy view of a Geneve header (fixed part and options) and its payload.
#[derive(Clone, Copy, Debug)]
pub struct GeneveSlice<'a> {
    bytes: &'a [u8],
}

/// One Geneve option TLV.
#[derive(Clone, Copy, Debug)]
pub struct GeneveOptionSlice<'a> {
    bytes: &'a [u8],
}

impl<'a> GeneveOptionSlice<'a> {
    /// Option class.
    pub fn class(&self) -> u16 {
        0
    }
    /// Option type (high bit = critical).
    pub fn option_type(&self) -> u8 {
        0
    }
    /// Option data (without the 4-byte option header).
    pub fn data(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Iterator over the options of a [`GeneveSlice`].
#[derive(Clone, Debug)]
pub struct GeneveOptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for GeneveOptionIter<'a> {
    type Item = GeneveOptionSlice<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        let _ = self.rest;
        None
    }
}

impl<'a> GeneveSlice<'a> {
    /// Fixed header length before options.
    pub const FIXED_LEN: usize = 8;
    /// Parse on a configured Geneve port: version 0, option lengths consistent.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::HeaderTooSmall {
            layer: Layer::Geneve,
            needed: Self::FIXED_LEN,
            available: bytes.len(),
        })
    }
    /// Strict parse for probing non-standard ports: also reserved bits zero and protocol type
    /// one of 0x6558, 0x0800, 0x86DD.
    pub fn from_slice_strict(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Self::from_slice(bytes)
    }
    /// 24-bit virtual network identifier.
    pub fn vni(&self) -> u32 {
        0
    }
    /// Protocol type of the payload (an EtherType; 0x6558 = Ethernet).
    pub fn protocol_type(&self) -> u16 {
        0
    }
    /// The options, in wire order.
    pub fn options(&self) -> GeneveOptionIter<'a> {
        GeneveOptionIter { rest: self.bytes }
    }
    /// Header length including options.
    pub fn header_len(&self) -> usize {
        Self::FIXED_LEN
    }
    /// The encapsulated payload.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
    }
}
