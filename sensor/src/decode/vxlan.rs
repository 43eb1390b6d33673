//! VXLAN (RFC 7348): a zero-copy view of the 8-byte header and the inner Ethernet frame.
//!
//! Layout: flags (8 bits, I = 0x08), reserved (24), VNI (24), reserved (8).
//! The constructors check every length; after that the accessors cannot fail, and
//! [`VxlanSlice::payload`] borrows from the caller's buffer.
//!
//! Implementations differ on the reserved bits. RFC 7348 §5 says the sender sets them to zero
//! and the receiver ignores them; Suricata's default `reserved-bits-check: strict` drops any
//! packet with a reserved bit set, which loses valid traffic (group-policy extension, odd
//! switches). [`VxlanSlice::from_slice`], used on configured ports, follows the RFC: it needs
//! only the I flag. [`VxlanSlice::from_slice_strict`], used to probe UDP payloads on
//! non-standard ports, must reject almost all random data, so it wants the flags byte exactly
//! 0x08, every reserved bit zero and at least an Ethernet header of payload.
//!
//! Errors: a flag or reserved-bit violation is [`DecodeError::BadFlags`] carrying the offending
//! 16-bit word (bytes 0-1, which Wireshark shows as the flags field, then bytes 2-3, then
//! byte 7), so the first one that is wrong is the one reported.

use super::bytes::{be_u16, be_u32};
use super::error::{DecodeError, Layer};

/// Zero-copy view of a VXLAN header and its inner Ethernet frame.
///
/// Invariant: `bytes.len() >= HEADER_LEN` and the I flag is set.
#[derive(Clone, Copy, Debug)]
pub struct VxlanSlice<'a> {
    bytes: &'a [u8],
}

/// Byte offsets of the header fields.
mod field {
    use std::ops::Range;

    /// Flags byte (I bit = 0x08, the rest reserved).
    pub(super) const FLAGS: usize = 0;
    /// The flags byte and the first reserved byte, read as one word for error reports.
    pub(super) const FLAGS_WORD: Range<usize> = 0..2;
    /// The last two of the three reserved bytes after the flags byte.
    pub(super) const RESERVED1_TAIL: Range<usize> = 2..4;
    /// 24-bit VXLAN network identifier.
    pub(super) const VNI: Range<usize> = 4..7;
    /// Reserved byte after the VNI.
    pub(super) const RESERVED2: Range<usize> = 7..8;
}

impl<'a> VxlanSlice<'a> {
    /// Fixed header length.
    pub const HEADER_LEN: usize = field::RESERVED2.end;
    /// The I flag: the VNI field is valid. Required by both constructors.
    pub const FLAG_I: u8 = 0x08;
    /// Bytes 0-1 as the strict parse wants them: flags exactly I, first reserved byte zero.
    const STRICT_FLAGS_WORD: u16 = u16::from_be_bytes([Self::FLAG_I, 0]);
    /// Smallest payload [`VxlanSlice::from_slice_strict`] accepts: one Ethernet header.
    pub const STRICT_MIN_PAYLOAD_LEN: usize = 14;

    /// Lenient parse for configured ports: I flag required, reserved bits ignored (RFC 7348 §5).
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::HEADER_LEN {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Vxlan,
                needed: Self::HEADER_LEN,
                available: bytes.len(),
            });
        }
        let view = VxlanSlice { bytes };
        if view.flags() & Self::FLAG_I == 0 {
            return Err(view.bad_flags(field::FLAGS_WORD));
        }
        Ok(view)
    }

    /// Strict parse for probing non-standard ports: flags byte exactly 0x08, every reserved bit zero.
    ///
    /// Also requires at least [`VxlanSlice::STRICT_MIN_PAYLOAD_LEN`] bytes of payload.
    pub fn from_slice_strict(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let view = Self::from_slice(bytes)?;
        if be_u16(&view.bytes[field::FLAGS_WORD]) != Self::STRICT_FLAGS_WORD {
            return Err(view.bad_flags(field::FLAGS_WORD));
        }
        if view.bytes[field::RESERVED1_TAIL].iter().any(|&b| b != 0) {
            return Err(view.bad_flags(field::RESERVED1_TAIL));
        }
        if view.bytes[field::RESERVED2].iter().any(|&b| b != 0) {
            return Err(view.bad_flags(field::RESERVED2));
        }
        let needed = Self::HEADER_LEN.saturating_add(Self::STRICT_MIN_PAYLOAD_LEN);
        if bytes.len() < needed {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Vxlan,
                needed,
                available: bytes.len(),
            });
        }
        Ok(view)
    }

    /// 24-bit VXLAN network identifier.
    pub fn vni(&self) -> u32 {
        be_u32(&self.bytes[field::VNI])
    }

    /// The raw flags byte (the I bit plus seven reserved bits).
    pub fn flags(&self) -> u8 {
        self.bytes[field::FLAGS]
    }

    /// Header length (always 8).
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// The inner Ethernet frame.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[Self::HEADER_LEN..]
    }

    /// A [`DecodeError::BadFlags`] carrying the header bytes in `word` (one or two bytes).
    fn bad_flags(&self, word: std::ops::Range<usize>) -> DecodeError {
        DecodeError::BadFlags {
            layer: Layer::Vxlan,
            flags: be_u16(&self.bytes[word]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// zeek__vxlan.pcap (shared/pcaps/tunnels/vxlan), frame 1, UDP payload to port 4789.
    static ZEEK_VXLAN: [u8; 50] = [
        // VXLAN: flags 0x08 (I), reserved 00 00 00, VNI 123, reserved 00.
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x00,
        // Inner Ethernet: dst ff:ff:ff:ff:ff:ff, src ba:09:2b:6e:f8:be, EtherType 0x0806 (ARP).
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xba, 0x09, 0x2b, 0x6e, 0xf8, 0xbe, 0x08, 0x06,
        // ARP: Ethernet/IPv4, request, sender ba:09:2b:6e:f8:be 10.0.0.1, target 10.0.0.2.
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0xba, 0x09, 0x2b, 0x6e, 0xf8, 0xbe, 0x0a,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x02,
    ];

    /// sv__vxlan-non-zero-reserved-fields_input.pcap (shared/pcaps/tunnels/vxlan), frame 1,
    /// UDP payload to port 4789, cut after the inner Ethernet header.
    static SURICATA_RESERVED_SET: [u8; 22] = [
        // VXLAN: flags 0xff (I and all seven reserved bits), reserved 01 d1 f2, VNI 11,
        // reserved 00.
        0xff, 0x01, 0xd1, 0xf2, 0x00, 0x00, 0x0b, 0x00,
        // Inner Ethernet: dst fa:16:3e:fe:57:dc, src fa:16:3e:fe:55:1c, EtherType 0x0800.
        0xfa, 0x16, 0x3e, 0xfe, 0x57, 0xdc, 0xfa, 0x16, 0x3e, 0xfe, 0x55, 0x1c, 0x08, 0x00,
    ];

    /// Test-only encoder: header from its fields, then `payload`.
    fn encode(flags: u8, reserved1: [u8; 3], vni: u32, reserved2: u8, payload: &[u8]) -> Vec<u8> {
        let vni = vni.to_be_bytes();
        let mut out = vec![flags];
        out.extend_from_slice(&reserved1);
        out.extend_from_slice(&vni[1..]);
        out.push(reserved2);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn parses_known_bytes() {
        for parse in [VxlanSlice::from_slice, VxlanSlice::from_slice_strict] {
            let vxlan = parse(&ZEEK_VXLAN).unwrap();
            assert_eq!(vxlan.vni(), 123);
            assert_eq!(vxlan.flags(), 0x08);
            assert_eq!(vxlan.header_len(), 8);
            assert_eq!(vxlan.payload(), &ZEEK_VXLAN[8..]);
            assert_eq!(vxlan.payload().len(), 42);
            // The inner EtherType is ARP.
            assert_eq!(&vxlan.payload()[12..14], &[0x08, 0x06]);
        }
    }

    #[test]
    fn parses_known_bytes_with_reserved_bits_set() {
        // RFC 7348 §5: the receiver ignores reserved bits, so the lenient parse accepts this.
        let vxlan = VxlanSlice::from_slice(&SURICATA_RESERVED_SET).unwrap();
        assert_eq!(vxlan.vni(), 11);
        assert_eq!(vxlan.flags(), 0xff);
        assert_eq!(vxlan.payload(), &SURICATA_RESERVED_SET[8..]);
        // The strict probe refuses it and reports the flags word.
        assert_eq!(
            VxlanSlice::from_slice_strict(&SURICATA_RESERVED_SET).unwrap_err(),
            DecodeError::BadFlags {
                layer: Layer::Vxlan,
                flags: 0xff01
            }
        );
    }

    #[test]
    fn rejects_truncated_header() {
        for len in 0..8 {
            let expected = DecodeError::HeaderTooSmall {
                layer: Layer::Vxlan,
                needed: 8,
                available: len,
            };
            assert_eq!(
                VxlanSlice::from_slice(&ZEEK_VXLAN[..len]).unwrap_err(),
                expected
            );
            assert_eq!(
                VxlanSlice::from_slice_strict(&ZEEK_VXLAN[..len]).unwrap_err(),
                expected
            );
        }
    }

    #[test]
    fn rejects_truncated_payload_strict() {
        // The lenient parse accepts a bare header (an empty or cut inner frame is partial data).
        assert_eq!(
            VxlanSlice::from_slice(&ZEEK_VXLAN[..8]).unwrap().payload(),
            &[] as &[u8]
        );
        assert_eq!(
            VxlanSlice::from_slice_strict(&ZEEK_VXLAN[..21]).unwrap_err(),
            DecodeError::HeaderTooSmall {
                layer: Layer::Vxlan,
                needed: 22,
                available: 21
            }
        );
        assert!(VxlanSlice::from_slice_strict(&ZEEK_VXLAN[..22]).is_ok());
    }

    #[test]
    fn rejects_bad_flags() {
        // I flag clear: both parsers refuse.
        let mut bytes = ZEEK_VXLAN;
        bytes[0] = 0x00;
        let expected = DecodeError::BadFlags {
            layer: Layer::Vxlan,
            flags: 0x0000,
        };
        assert_eq!(VxlanSlice::from_slice(&bytes).unwrap_err(), expected);
        assert_eq!(VxlanSlice::from_slice_strict(&bytes).unwrap_err(), expected);
        // Of the 256 flag bytes the lenient parse takes the 128 with I set, the strict one only 0x08.
        let mut lenient = 0;
        let mut strict = 0;
        for flags in 0..=u8::MAX {
            bytes[0] = flags;
            lenient += usize::from(VxlanSlice::from_slice(&bytes).is_ok());
            strict += usize::from(VxlanSlice::from_slice_strict(&bytes).is_ok());
        }
        assert_eq!((lenient, strict), (128, 1));
    }

    #[test]
    fn rejects_bad_reserved_strict() {
        let cases: [(usize, u16); 4] = [(1, 0x0801), (2, 0x0100), (3, 0x0001), (7, 0x0001)];
        for (offset, flags) in cases {
            let mut bytes = ZEEK_VXLAN;
            bytes[offset] = 0x01;
            let lenient = VxlanSlice::from_slice(&bytes).unwrap();
            assert_eq!(
                lenient.vni(),
                123,
                "reserved byte {offset} leaks into the VNI"
            );
            assert_eq!(
                VxlanSlice::from_slice_strict(&bytes).unwrap_err(),
                DecodeError::BadFlags {
                    layer: Layer::Vxlan,
                    flags
                },
                "reserved byte {offset}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for parse in [VxlanSlice::from_slice, VxlanSlice::from_slice_strict] {
                if let Ok(vxlan) = parse(&bytes) {
                    prop_assert!(vxlan.vni() < 1 << 24);
                    prop_assert_eq!(vxlan.flags() & VxlanSlice::FLAG_I, VxlanSlice::FLAG_I);
                    prop_assert_eq!(vxlan.header_len() + vxlan.payload().len(), bytes.len());
                }
            }
        }

        #[test]
        fn rejects_every_truncated_prefix(
            vni in 0u32..1 << 24,
            payload in proptest::collection::vec(any::<u8>(), 14..40),
        ) {
            let bytes = encode(0x08, [0; 3], vni, 0, &payload);
            for len in 0..8 {
                prop_assert_eq!(
                    VxlanSlice::from_slice(&bytes[..len]).map(|v| v.vni()),
                    Err(DecodeError::HeaderTooSmall { layer: Layer::Vxlan, needed: 8, available: len })
                );
            }
            for len in 0..22 {
                let needed = if len < 8 { 8 } else { 22 };
                prop_assert_eq!(
                    VxlanSlice::from_slice_strict(&bytes[..len]).map(|v| v.vni()),
                    Err(DecodeError::HeaderTooSmall { layer: Layer::Vxlan, needed, available: len })
                );
            }
            prop_assert_eq!(VxlanSlice::from_slice_strict(&bytes).map(|v| v.vni()), Ok(vni));
        }

        #[test]
        fn round_trips_fields(
            flags in any::<u8>(),
            reserved1 in any::<[u8; 3]>(),
            vni in 0u32..1 << 24,
            reserved2 in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let flags = flags | VxlanSlice::FLAG_I;
            let bytes = encode(flags, reserved1, vni, reserved2, &payload);
            let vxlan = VxlanSlice::from_slice(&bytes).unwrap();
            prop_assert_eq!(vxlan.vni(), vni);
            prop_assert_eq!(vxlan.flags(), flags);
            prop_assert_eq!(vxlan.payload(), &payload[..]);
            // The strict parse takes exactly the headers a conforming sender writes.
            let conforming = flags == VxlanSlice::FLAG_I
                && reserved1 == [0; 3]
                && reserved2 == 0
                && payload.len() >= VxlanSlice::STRICT_MIN_PAYLOAD_LEN;
            prop_assert_eq!(VxlanSlice::from_slice_strict(&bytes).is_ok(), conforming);
            let strict = encode(VxlanSlice::FLAG_I, [0; 3], vni, 0, &payload);
            prop_assert_eq!(
                VxlanSlice::from_slice_strict(&strict).map(|v| (v.vni(), v.payload())).ok(),
                (payload.len() >= 14).then_some((vni, &payload[..]))
            );
        }
    }
}
