//! PPPoE session stage (RFC 2516 §5, EtherType 0x8864): a zero-copy view of the 6-byte header.
//!
//! Layout: version (4 bits, 1), type (4 bits, 1), code (8, 0x00 in the session stage), session
//! id (16), length (16, the PPP frame that follows: protocol field and data). The PPP protocol
//! field is read by [`super::gre::PppSlice`], which the GRE walk already uses.
//! The constructor checks the length and the version/type byte; after that the accessors cannot
//! fail, and [`PppoeSlice::payload`] borrows from the caller's buffer.
//!
//! Where readers differ: tshark dissects any code in the session stage; so do we (the code is
//! not checked). A length field beyond the bytes present is a cut frame, not a malformed one:
//! the payload is what is there, and the IP header inside says whether it was cut. A length
//! below the bytes present leaves the rest out (Ethernet padding of short frames).
//! Discovery frames (EtherType 0x8863) carry no IP and are not decoded.

use super::bytes::be_u16;
use super::error::{DecodeError, Layer};

/// Zero-copy view of a PPPoE session header and its PPP frame.
///
/// Invariant: `bytes.len() >= HEADER_LEN` and the version and type are both 1.
#[derive(Clone, Copy, Debug)]
pub struct PppoeSlice<'a> {
    bytes: &'a [u8],
}

/// Byte offsets of the header fields.
mod field {
    use std::ops::Range;

    /// Version (high nibble) and type (low nibble).
    pub(super) const VERSION_TYPE: usize = 0;
    /// Code (0x00 in the session stage).
    pub(super) const CODE: usize = 1;
    /// Session id.
    pub(super) const SESSION_ID: Range<usize> = 2..4;
    /// Length of the PPP frame after the header.
    pub(super) const LENGTH: Range<usize> = 4..6;
}

impl<'a> PppoeSlice<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = field::LENGTH.end;
    /// The only version and type RFC 2516 defines, both 1.
    pub const VERSION_TYPE: u8 = 0x11;
    /// EtherType of the session stage.
    pub const ETHER_TYPE_SESSION: u16 = 0x8864;

    /// Parses the header.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::HEADER_LEN {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Pppoe,
                needed: Self::HEADER_LEN,
                available: bytes.len(),
            });
        }
        let version_type = bytes[field::VERSION_TYPE];
        if version_type != Self::VERSION_TYPE {
            return Err(DecodeError::UnsupportedVersion {
                layer: Layer::Pppoe,
                version: version_type,
            });
        }
        Ok(PppoeSlice { bytes })
    }

    /// Code (0x00 for session data).
    pub fn code(&self) -> u8 {
        self.bytes[field::CODE]
    }

    /// Session id.
    pub fn session_id(&self) -> u16 {
        be_u16(&self.bytes[field::SESSION_ID])
    }

    /// Length of the PPP frame as the header states it.
    pub fn length(&self) -> u16 {
        be_u16(&self.bytes[field::LENGTH])
    }

    /// Header length (always 6).
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// The PPP frame: `length()` bytes, or the bytes present when the frame was cut.
    pub fn payload(&self) -> &'a [u8] {
        let rest = &self.bytes[Self::HEADER_LEN..];
        let len = usize::from(self.length()).min(rest.len());
        &rest[..len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A PPPoE session frame carrying IPv4, as in l2_pppoe.pcap of the issue 17 reproducers,
    /// cut after the first IPv4 bytes (the PPPoE length still counts the whole packet).
    static PPPOE_IPV4: [u8; 12] = [
        // Version 1, type 1; code 0x00 (session data); session id 0x0011; length 42
        // (2 bytes of PPP protocol + a 40-byte IPv4/TCP packet).
        0x11, 0x00, 0x00, 0x11, 0x00, 0x2a, // PPP protocol 0x0021 (IPv4).
        0x00, 0x21, // IPv4: version 4, IHL 5, TOS 0, total length 40.
        0x45, 0x00, 0x00, 0x28,
    ];

    #[test]
    fn parses_known_bytes() {
        let p = PppoeSlice::from_slice(&PPPOE_IPV4).unwrap();
        assert_eq!(p.code(), 0);
        assert_eq!(p.session_id(), 0x11);
        assert_eq!(p.length(), 42);
        assert_eq!(p.header_len(), 6);
        // Cut: the payload is what is there.
        assert_eq!(p.payload(), &PPPOE_IPV4[6..]);
        let ppp = super::super::gre::PppSlice::from_slice(p.payload()).unwrap();
        assert_eq!(ppp.protocol(), 0x0021);
    }

    #[test]
    fn rejects_truncated_header() {
        for len in 0..6 {
            assert_eq!(
                PppoeSlice::from_slice(&PPPOE_IPV4[..len]).unwrap_err(),
                DecodeError::HeaderTooSmall {
                    layer: Layer::Pppoe,
                    needed: 6,
                    available: len
                }
            );
        }
    }

    #[test]
    fn rejects_bad_version() {
        let mut bytes = PPPOE_IPV4;
        bytes[0] = 0x21;
        assert_eq!(
            PppoeSlice::from_slice(&bytes).unwrap_err(),
            DecodeError::UnsupportedVersion {
                layer: Layer::Pppoe,
                version: 0x21
            }
        );
    }

    #[test]
    fn short_length_leaves_the_padding_out() {
        let mut bytes = PPPOE_IPV4;
        bytes[5] = 4;
        let p = PppoeSlice::from_slice(&bytes).unwrap();
        assert_eq!(p.payload(), &PPPOE_IPV4[6..10]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(p) = PppoeSlice::from_slice(&bytes) {
                prop_assert!(p.payload().len() <= usize::from(p.length()));
                prop_assert!(p.header_len() + p.payload().len() <= bytes.len());
                let _ = (p.code(), p.session_id());
            }
        }
    }
}
