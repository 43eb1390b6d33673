//! MPLS label stacks (RFC 3032) and what follows them. STUB: being implemented by a helper.
use super::error::{DecodeError, Layer};

/// What an MPLS label stack carries, guessed from the first nibble after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MplsPayload {
    /// First nibble 4.
    Ipv4,
    /// First nibble 6.
    Ipv6,
    /// First nibble 0: a pseudowire control word, then an Ethernet frame.
    EthernetControlWord,
    /// Anything else.
    Unknown,
}

/// Zero-copy view of an MPLS label stack.
#[derive(Clone, Copy, Debug)]
pub struct MplsSlice<'a> {
    bytes: &'a [u8],
}

impl<'a> MplsSlice<'a> {
    /// Walks labels until the bottom-of-stack bit, at most `max_labels` of them.
    pub fn from_slice(bytes: &'a [u8], max_labels: usize) -> Result<Self, DecodeError> {
        let _ = max_labels;
        Err(DecodeError::HeaderTooSmall {
            layer: Layer::Mpls,
            needed: 4,
            available: bytes.len(),
        })
    }
    /// Number of labels in the stack.
    pub fn label_count(&self) -> usize {
        0
    }
    /// What the stack carries.
    pub fn payload_kind(&self) -> MplsPayload {
        MplsPayload::Unknown
    }
    /// Bytes after the stack (and after the control word for `EthernetControlWord`).
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
    }
}
