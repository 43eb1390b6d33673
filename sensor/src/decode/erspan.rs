//! ERSPAN type II and type III headers (Cisco, draft-foschiano-erspan; Linux
//! `include/net/erspan.h`). Type I has no header at all.
//!
//! Contract: the constructors check the version and every length the header implies (type III:
//! the 8-byte platform subheader when the O bit is set); after that the accessors cannot fail,
//! and `payload()` borrows from the caller's buffer. No input panics, allocates or overflows.
//!
//! Which type a packet is, is decided by the GRE header, not here: protocol 0x88BE with the
//! GRE S bit clear is type I (the mirrored Ethernet frame follows the 4-byte GRE header
//! directly), 0x88BE with S set is type II ([`Erspan2Slice`], ERSPAN version 1), and 0x22EB is
//! type III ([`Erspan3Slice`], ERSPAN version 2). Suricata, Zeek and Linux all use the S bit the
//! same way; the layer walk in `decode/mod.rs` makes that choice and calls the right view.
//!
//! Where implementations differ, and what we chose:
//! - Type III: Suricata leaves GRE 0x22EB undecoded (it falls into the `default:` case) and its
//!   `DecodeERSPAN` raises `erspan.unsupported_version` for anything but version 1. Zeek decodes
//!   type III: 12 bytes, plus 8 when the low bit of byte 11 (O) is set. We follow Zeek, so a
//!   type III mirror is visible to the detectors.
//! - A type III header whose O bit promises a subheader the packet does not hold is rejected
//!   as [`DecodeError::HeaderTooSmall`] with `needed` 20 (Zeek: `truncated_GRE`), as seen in
//!   tcpdump__erspan-type-iii-pb-1.pcap.
//! - Version mismatch (1 where 2 is expected or the reverse, or anything else) is
//!   [`DecodeError::UnsupportedVersion`], as in Suricata.
//! - Reserved bits (type II bits 32-43) are not checked; Linux does not check them and Zeek
//!   skips the ERSPAN header without reading it.
//! - Type III frame type (FT) and the P bit are exposed but not enforced: Linux sends P=1, but
//!   tcpdump__erspan-type-iii-ft-0.pcap has P=0 and FT=0 over an Ethernet payload.

use super::bytes::{be_u16, be_u32};
use super::error::{DecodeError, Layer};

/// Zero-copy view of an ERSPAN type II (version 1) header.
///
/// Invariant: `bytes.len() >= HEADER_LEN` and the version is 1.
#[derive(Clone, Copy, Debug)]
pub struct Erspan2Slice<'a> {
    bytes: &'a [u8],
}

/// Zero-copy view of an ERSPAN type III (version 2) header, with the optional platform
/// subheader.
///
/// Invariant: `bytes.len() >= FIXED_LEN`, the version is 2, and when the O bit is set
/// `bytes.len() >= FIXED_LEN + SUBHEADER_LEN`.
#[derive(Clone, Copy, Debug)]
pub struct Erspan3Slice<'a> {
    bytes: &'a [u8],
}

/// Byte offsets and bit masks of both header versions.
mod field {
    use std::ops::Range;

    /// Ver(4) and VLAN(12), both versions.
    pub(super) const VER_VLAN: Range<usize> = 0..2;
    /// Version: the top four bits of [`VER_VLAN`].
    pub(super) const VERSION_SHIFT: u32 = 12;
    /// Original VLAN: the low 12 bits of [`VER_VLAN`].
    pub(super) const VLAN_MASK: u16 = 0x0fff;
    /// COS(3), En (II) or BSO (III) (2), T(1), Session ID(10), both versions.
    pub(super) const COS_SESSION: Range<usize> = 2..4;
    /// COS: the top three bits of [`COS_SESSION`].
    pub(super) const COS_SHIFT: u32 = 13;
    /// COS after the shift.
    pub(super) const COS_MASK: u16 = 0x7;
    /// En (type II encapsulation) or BSO (type III bad/short/oversized): two bits.
    pub(super) const EN_BSO_SHIFT: u32 = 11;
    /// En or BSO after the shift.
    pub(super) const EN_BSO_MASK: u16 = 0x3;
    /// T: the source truncated the mirrored frame.
    pub(super) const TRUNCATED: u16 = 0x0400;
    /// 10-bit session ID.
    pub(super) const SESSION_ID_MASK: u16 = 0x03ff;

    /// Type II: Reserved(12) and Index(20).
    pub(super) const II_RESERVED_INDEX: Range<usize> = 4..8;
    /// Type II: the index is the low 20 bits of [`II_RESERVED_INDEX`].
    pub(super) const II_INDEX_MASK: u32 = 0x000f_ffff;
    /// Type II header length.
    pub(super) const II_HEADER_LEN: usize = II_RESERVED_INDEX.end;

    /// Type III: 32-bit timestamp, in units set by the granularity.
    pub(super) const III_TIMESTAMP: Range<usize> = 4..8;
    /// Type III: security group tag.
    pub(super) const III_SGT: Range<usize> = 8..10;
    /// Type III: P(1) FT(5) HW ID(6) D(1) Gra(2) O(1), read as one word.
    pub(super) const III_FLAGS: Range<usize> = 10..12;
    /// P bit.
    pub(super) const III_P: u16 = 0x8000;
    /// Frame type: bits 14-10 of [`III_FLAGS`].
    pub(super) const III_FT_SHIFT: u32 = 10;
    /// Frame type after the shift.
    pub(super) const III_FT_MASK: u16 = 0x1f;
    /// Hardware ID: bits 9-4 of [`III_FLAGS`] (Linux `ERSPAN_HWID_MASK` 0x03f0).
    pub(super) const III_HW_ID_SHIFT: u32 = 4;
    /// Hardware ID after the shift.
    pub(super) const III_HW_ID_MASK: u16 = 0x3f;
    /// D bit: egress (Linux `ERSPAN_DIR_MASK` 0x0008).
    pub(super) const III_DIRECTION: u16 = 0x0008;
    /// Timestamp granularity: bits 2-1 of [`III_FLAGS`].
    pub(super) const III_GRA_SHIFT: u32 = 1;
    /// Granularity after the shift.
    pub(super) const III_GRA_MASK: u16 = 0x3;
    /// O bit: the platform-specific subheader follows.
    pub(super) const III_O: u16 = 0x0001;
    /// Type III length without the subheader.
    pub(super) const III_FIXED_LEN: usize = III_FLAGS.end;
    /// Type III optional platform-specific subheader.
    pub(super) const III_SUBHEADER: Range<usize> = III_FIXED_LEN..III_FIXED_LEN + 8;
    /// Platform ID: the top six bits of the subheader's first byte.
    pub(super) const III_PLATFORM_ID_SHIFT: u32 = 2;
}

impl<'a> Erspan2Slice<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = field::II_HEADER_LEN;
    /// The version field value of a type II header.
    pub const VERSION: u8 = 1;
    /// En: the original frame had no VLAN tag.
    pub const ENCAP_UNTAGGED: u8 = 0;
    /// En: the original frame was ISL encapsulated.
    pub const ENCAP_ISL: u8 = 1;
    /// En: the original frame was 802.1Q encapsulated.
    pub const ENCAP_DOT1Q: u8 = 2;
    /// En: the VLAN tag is preserved in the mirrored frame.
    pub const ENCAP_VLAN_PRESERVED: u8 = 3;

    /// Parses the 8-byte header; the version must be 1.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::HEADER_LEN {
            return Err(too_small(Self::HEADER_LEN, bytes.len()));
        }
        let view = Erspan2Slice { bytes };
        check_version(view.version(), Self::VERSION)?;
        Ok(view)
    }

    /// Version field (always 1).
    pub fn version(&self) -> u8 {
        version(self.bytes)
    }

    /// 10-bit session ID.
    pub fn session_id(&self) -> u16 {
        session_id(self.bytes)
    }

    /// Original VLAN.
    pub fn vlan(&self) -> u16 {
        vlan(self.bytes)
    }

    /// Class of service of the original frame.
    pub fn cos(&self) -> u8 {
        cos(self.bytes)
    }

    /// En: how the original frame was encapsulated (`ENCAP_*` constants).
    pub fn encap_type(&self) -> u8 {
        en_bso(self.bytes)
    }

    /// T bit: the mirrored frame was truncated by the source.
    pub fn truncated(&self) -> bool {
        truncated(self.bytes)
    }

    /// 20-bit index (port index of the mirrored interface).
    pub fn index(&self) -> u32 {
        be_u32(&self.bytes[field::II_RESERVED_INDEX]) & field::II_INDEX_MASK
    }

    /// Header length.
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// The mirrored Ethernet frame.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[Self::HEADER_LEN..]
    }
}

impl<'a> Erspan3Slice<'a> {
    /// Length without the platform subheader.
    pub const FIXED_LEN: usize = field::III_FIXED_LEN;
    /// Length of the optional platform-specific subheader.
    pub const SUBHEADER_LEN: usize = field::III_SUBHEADER.end - field::III_SUBHEADER.start;
    /// Length with the platform subheader.
    pub const MAX_LEN: usize = field::III_SUBHEADER.end;
    /// The version field value of a type III header.
    pub const VERSION: u8 = 2;
    /// Granularity: timestamp in 100 microsecond ticks.
    pub const GRANULARITY_100_US: u8 = 0;
    /// Granularity: timestamp in 100 nanosecond ticks.
    pub const GRANULARITY_100_NS: u8 = 1;
    /// Granularity: IEEE 1588 timestamp.
    pub const GRANULARITY_IEEE_1588: u8 = 2;
    /// Frame type: Ethernet.
    pub const FRAME_TYPE_ETHERNET: u8 = 0;

    /// Parses the 12-byte header and, if the O bit is set, the 8-byte platform subheader; the
    /// version must be 2.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::FIXED_LEN {
            return Err(too_small(Self::FIXED_LEN, bytes.len()));
        }
        let view = Erspan3Slice { bytes };
        check_version(view.version(), Self::VERSION)?;
        if bytes.len() < view.header_len() {
            return Err(too_small(view.header_len(), bytes.len()));
        }
        Ok(view)
    }

    /// Version field (always 2).
    pub fn version(&self) -> u8 {
        version(self.bytes)
    }

    /// 10-bit session ID.
    pub fn session_id(&self) -> u16 {
        session_id(self.bytes)
    }

    /// Original VLAN.
    pub fn vlan(&self) -> u16 {
        vlan(self.bytes)
    }

    /// Class of service of the original frame.
    pub fn cos(&self) -> u8 {
        cos(self.bytes)
    }

    /// BSO: 0 good or unknown, 1 short, 2 oversized, 3 bad frame.
    pub fn bso(&self) -> u8 {
        en_bso(self.bytes)
    }

    /// T bit: the mirrored frame was truncated by the source.
    pub fn truncated(&self) -> bool {
        truncated(self.bytes)
    }

    /// 32-bit timestamp, in the units [`Erspan3Slice::granularity`] names.
    pub fn timestamp(&self) -> u32 {
        be_u32(&self.bytes[field::III_TIMESTAMP])
    }

    /// Security group tag.
    pub fn sgt(&self) -> u16 {
        be_u16(&self.bytes[field::III_SGT])
    }

    /// P bit (Wireshark: "Has Ethernet PDU"); not reliable, see the module doc.
    pub fn ethernet_pdu(&self) -> bool {
        self.flags() & field::III_P != 0
    }

    /// 5-bit frame type (0 = Ethernet).
    pub fn frame_type(&self) -> u8 {
        low_byte((self.flags() >> field::III_FT_SHIFT) & field::III_FT_MASK)
    }

    /// 6-bit hardware ID of the mirroring engine.
    pub fn hw_id(&self) -> u8 {
        low_byte((self.flags() >> field::III_HW_ID_SHIFT) & field::III_HW_ID_MASK)
    }

    /// D bit: false = ingress, true = egress.
    pub fn egress(&self) -> bool {
        self.flags() & field::III_DIRECTION != 0
    }

    /// 2-bit timestamp granularity (`GRANULARITY_*` constants; 3 is unassigned).
    pub fn granularity(&self) -> u8 {
        low_byte((self.flags() >> field::III_GRA_SHIFT) & field::III_GRA_MASK)
    }

    /// O bit: the 8-byte platform-specific subheader follows the fixed header.
    pub fn has_platform_subheader(&self) -> bool {
        self.flags() & field::III_O != 0
    }

    /// The 8-byte platform-specific subheader, if the O bit is set.
    pub fn platform_subheader(&self) -> Option<&'a [u8]> {
        self.has_platform_subheader()
            .then(|| &self.bytes[field::III_SUBHEADER])
    }

    /// Platform ID: the top six bits of the subheader, if the O bit is set.
    pub fn platform_id(&self) -> Option<u8> {
        self.platform_subheader()
            .and_then(|sub| sub.first())
            .map(|&b| b >> field::III_PLATFORM_ID_SHIFT)
    }

    /// Header length including the optional subheader.
    pub fn header_len(&self) -> usize {
        if self.has_platform_subheader() {
            field::III_SUBHEADER.end
        } else {
            Self::FIXED_LEN
        }
    }

    /// The mirrored Ethernet frame.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len()..]
    }

    /// Bytes 10-11: P, FT, HW ID, D, Gra, O.
    fn flags(&self) -> u16 {
        be_u16(&self.bytes[field::III_FLAGS])
    }
}

/// A [`DecodeError::HeaderTooSmall`] for the ERSPAN layer.
fn too_small(needed: usize, available: usize) -> DecodeError {
    DecodeError::HeaderTooSmall {
        layer: Layer::Erspan,
        needed,
        available,
    }
}

/// [`DecodeError::UnsupportedVersion`] unless `found` is `expected`.
fn check_version(found: u8, expected: u8) -> Result<(), DecodeError> {
    if found == expected {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedVersion {
            layer: Layer::Erspan,
            version: found,
        })
    }
}

// Accessors of the first four bytes, which both versions share. Callers have checked that
// `bytes` holds at least the fixed header.

fn version(bytes: &[u8]) -> u8 {
    low_byte(be_u16(&bytes[field::VER_VLAN]) >> field::VERSION_SHIFT)
}

fn vlan(bytes: &[u8]) -> u16 {
    be_u16(&bytes[field::VER_VLAN]) & field::VLAN_MASK
}

fn cos(bytes: &[u8]) -> u8 {
    low_byte((be_u16(&bytes[field::COS_SESSION]) >> field::COS_SHIFT) & field::COS_MASK)
}

fn en_bso(bytes: &[u8]) -> u8 {
    low_byte((be_u16(&bytes[field::COS_SESSION]) >> field::EN_BSO_SHIFT) & field::EN_BSO_MASK)
}

fn truncated(bytes: &[u8]) -> bool {
    be_u16(&bytes[field::COS_SESSION]) & field::TRUNCATED != 0
}

fn session_id(bytes: &[u8]) -> u16 {
    be_u16(&bytes[field::COS_SESSION]) & field::SESSION_ID_MASK
}

/// The low byte of a value already masked or shifted to fit in eight bits.
fn low_byte(value: u16) -> u8 {
    value.to_be_bytes()[1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- Captured headers ----------------------------------------------------------------

    /// zeek__erspanII.pcap, packet 1 (2.2.2.2 > 1.1.1.1), after GRE `10 00 88 be` + sequence.
    static ERSPAN2_ZEEK: [u8; 14] = [
        0x10, 0x17, // version 1, VLAN 23
        0x08, 0x64, // COS 0, En 1 (ISL), T 0, session 100
        0x00, 0x00, 0x00, 0x00, // reserved 0, index 0
        // mirrored Ethernet destination 64:00:f1:e1:03:03
        0x64, 0x00, 0xf1, 0xe1, 0x03, 0x03,
    ];

    /// tcpdump__erspan-type-ii-1.pcap, packet 1 (1.1.1.2 > 192.168.255.5).
    static ERSPAN2_TCPDUMP: [u8; 10] = [
        0x11, 0x56, // version 1, VLAN 342
        0xc2, 0x9a, // COS 6, En 0, T 0, session 666
        0x00, 0x00, 0x7f, 0xf8, // reserved 0, index 32760
        // mirrored Ethernet destination (start)
        0x01, 0x00,
    ];

    /// zeek__erspanIII.pcap, packet 1 (10.0.0.1 > 10.0.0.2), after GRE `10 00 22 eb` +
    /// sequence.
    static ERSPAN3_ZEEK: [u8; 14] = [
        0x20, 0x14, // version 2, VLAN 20
        0x00, 0x00, // COS 0, BSO 0, T 0, session 0
        0x00, 0x00, 0x14, 0x58, // timestamp 5208
        0x00, 0x00, // SGT 0
        0x80, 0x30, // P 1, FT 0, HW ID 3, D 0 (ingress), Gra 0 (100 us), O 0
        // mirrored Ethernet destination (start)
        0x02, 0x50,
    ];

    /// tcpdump__erspan-type-iii-ft-0.pcap, packet 1 (10.29.30.104 > 10.29.11.13), after GRE
    /// `00 00 22 eb` (no sequence number).
    static ERSPAN3_FT0: [u8; 12] = [
        0x20, 0x14, // version 2, VLAN 20
        0x00, 0x00, // COS 0, BSO 0, T 0, session 0
        0xa3, 0x59, 0x5b, 0xff, // timestamp 2740542463
        0x00, 0x00, // SGT 0
        0x00, 0x06, // P 0, FT 0, HW ID 0, D 0, Gra 3 (custom), O 0
    ];

    /// tcpdump__erspan-type-iii-pb-1.pcap, packet 1: O is set but only three of the eight
    /// subheader bytes were captured.
    static ERSPAN3_PB_TRUNCATED_SUBHEADER: [u8; 15] = [
        0x2d, 0x2d, // version 2, VLAN 3373
        0x08, 0x00, // COS 0, BSO 1 (short), T 0, session 0
        0x48, 0x00, 0x08, 0x46, // timestamp 1207961670
        0x01, 0x00, // SGT 256
        0x00, 0x01, // P 0, FT 0, HW ID 0, D 0, Gra 0, O 1
        0x3d, 0x0e, 0x45, // platform subheader, cut
    ];

    /// Synthetic (no stored capture has a complete subheader): ERSPAN3_ZEEK with egress,
    /// truncated and O set, and a platform subheader with platform ID 3.
    static ERSPAN3_SUBHEADER: [u8; 22] = [
        0x20, 0x14, // version 2, VLAN 20
        0xe7, 0xff, // COS 7, BSO 0, T 1, session 1023
        0x00, 0x00, 0x14, 0x58, // timestamp 5208
        0x12, 0x34, // SGT 0x1234
        0x88, 0x3b, // P 1, FT 2, HW ID 3, D 1 (egress), Gra 1 (100 ns), O 1
        // platform subheader: platform ID 3 (0x0c >> 2), then platform data
        0x0c, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
        // mirrored Ethernet destination (start)
        0x02, 0x50,
    ];

    // ---- Type II -------------------------------------------------------------------------

    #[test]
    fn parses_known_bytes() {
        let e = Erspan2Slice::from_slice(&ERSPAN2_ZEEK).unwrap();
        assert_eq!(e.version(), 1);
        assert_eq!(e.vlan(), 23);
        assert_eq!(e.cos(), 0);
        assert_eq!(e.encap_type(), Erspan2Slice::ENCAP_ISL);
        assert!(!e.truncated());
        assert_eq!(e.session_id(), 100);
        assert_eq!(e.index(), 0);
        assert_eq!(e.header_len(), 8);
        assert_eq!(e.payload(), &ERSPAN2_ZEEK[8..]);

        let e = Erspan2Slice::from_slice(&ERSPAN2_TCPDUMP).unwrap();
        assert_eq!(e.vlan(), 342);
        assert_eq!(e.cos(), 6);
        assert_eq!(e.encap_type(), Erspan2Slice::ENCAP_UNTAGGED);
        assert_eq!(e.session_id(), 666);
        assert_eq!(e.index(), 32760);
        assert_eq!(e.payload(), &[0x01, 0x00]);
    }

    #[test]
    fn rejects_truncated_header() {
        assert_eq!(
            Erspan2Slice::from_slice(&ERSPAN2_ZEEK[..7]).unwrap_err(),
            too_small(8, 7)
        );
        assert_eq!(Erspan2Slice::from_slice(&[]).unwrap_err(), too_small(8, 0));
    }

    #[test]
    fn rejects_bad_version() {
        // A type III header where type II is expected, and the reverse.
        assert_eq!(
            Erspan2Slice::from_slice(&ERSPAN3_ZEEK).unwrap_err(),
            DecodeError::UnsupportedVersion {
                layer: Layer::Erspan,
                version: 2
            }
        );
        let mut bytes = ERSPAN2_ZEEK;
        bytes[0] = 0x00; // version 0 (what a type I frame's MAC byte could look like)
        assert_eq!(
            Erspan2Slice::from_slice(&bytes).unwrap_err(),
            DecodeError::UnsupportedVersion {
                layer: Layer::Erspan,
                version: 0
            }
        );
    }

    // ---- Type III ------------------------------------------------------------------------

    #[test]
    fn parses_known_bytes_type3() {
        let e = Erspan3Slice::from_slice(&ERSPAN3_ZEEK).unwrap();
        assert_eq!(e.version(), 2);
        assert_eq!(e.vlan(), 20);
        assert_eq!((e.cos(), e.bso(), e.truncated()), (0, 0, false));
        assert_eq!(e.session_id(), 0);
        assert_eq!(e.timestamp(), 5208);
        assert_eq!(e.sgt(), 0);
        assert!(e.ethernet_pdu());
        assert_eq!(e.frame_type(), Erspan3Slice::FRAME_TYPE_ETHERNET);
        assert_eq!(e.hw_id(), 3);
        assert!(!e.egress());
        assert_eq!(e.granularity(), Erspan3Slice::GRANULARITY_100_US);
        assert!(!e.has_platform_subheader());
        assert_eq!((e.platform_id(), e.platform_subheader()), (None, None));
        assert_eq!(e.header_len(), 12);
        assert_eq!(e.payload(), &[0x02, 0x50]);

        let e = Erspan3Slice::from_slice(&ERSPAN3_FT0).unwrap();
        assert_eq!(e.timestamp(), 2_740_542_463);
        assert!(!e.ethernet_pdu());
        assert_eq!(e.granularity(), 3);
        assert_eq!(e.hw_id(), 0);
        assert!(e.payload().is_empty());

        let e = Erspan3Slice::from_slice(&ERSPAN3_SUBHEADER).unwrap();
        assert_eq!(e.cos(), 7);
        assert!(e.truncated());
        assert_eq!(e.session_id(), 1023);
        assert_eq!(e.sgt(), 0x1234);
        assert_eq!(e.frame_type(), 2);
        assert_eq!(e.hw_id(), 3);
        assert!(e.egress());
        assert_eq!(e.granularity(), Erspan3Slice::GRANULARITY_100_NS);
        assert!(e.has_platform_subheader());
        assert_eq!(e.platform_id(), Some(3));
        assert_eq!(e.platform_subheader(), Some(&ERSPAN3_SUBHEADER[12..20]));
        assert_eq!(e.header_len(), 20);
        assert_eq!(e.payload(), &[0x02, 0x50]);
    }

    #[test]
    fn rejects_truncated_type3_header() {
        assert_eq!(
            Erspan3Slice::from_slice(&ERSPAN3_FT0[..11]).unwrap_err(),
            too_small(12, 11)
        );
    }

    #[test]
    fn rejects_truncated_platform_subheader() {
        assert_eq!(
            Erspan3Slice::from_slice(&ERSPAN3_PB_TRUNCATED_SUBHEADER).unwrap_err(),
            too_small(20, 15)
        );
        assert_eq!(
            Erspan3Slice::from_slice(&ERSPAN3_SUBHEADER[..19]).unwrap_err(),
            too_small(20, 19)
        );
    }

    #[test]
    fn rejects_bad_type3_version() {
        assert_eq!(
            Erspan3Slice::from_slice(&ERSPAN2_ZEEK).unwrap_err(),
            DecodeError::UnsupportedVersion {
                layer: Layer::Erspan,
                version: 1
            }
        );
        let mut bytes = ERSPAN3_ZEEK;
        bytes[0] = 0xf0 | (bytes[0] & 0x0f);
        assert_eq!(
            Erspan3Slice::from_slice(&bytes).unwrap_err(),
            DecodeError::UnsupportedVersion {
                layer: Layer::Erspan,
                version: 15
            }
        );
    }

    // ---- Property tests ------------------------------------------------------------------

    /// Fields of the first four bytes, shared by both versions.
    #[derive(Clone, Debug)]
    struct Common {
        vlan: u16,
        cos: u8,
        en_bso: u8,
        truncated: bool,
        session_id: u16,
    }

    #[derive(Clone, Debug)]
    struct Type2 {
        common: Common,
        reserved: u16,
        index: u32,
    }

    #[derive(Clone, Debug)]
    struct Type3 {
        common: Common,
        timestamp: u32,
        sgt: u16,
        p: bool,
        frame_type: u8,
        hw_id: u8,
        egress: bool,
        granularity: u8,
        subheader: Option<[u8; 8]>,
    }

    fn common() -> impl Strategy<Value = Common> {
        (0..0x1000u16, 0..8u8, 0..4u8, any::<bool>(), 0..0x400u16).prop_map(
            |(vlan, cos, en_bso, truncated, session_id)| Common {
                vlan,
                cos,
                en_bso,
                truncated,
                session_id,
            },
        )
    }

    fn type2() -> impl Strategy<Value = Type2> {
        (common(), 0..0x1000u16, 0..0x10_0000u32).prop_map(|(common, reserved, index)| Type2 {
            common,
            reserved,
            index,
        })
    }

    fn type3() -> impl Strategy<Value = Type3> {
        (
            common(),
            any::<u32>(),
            any::<u16>(),
            (any::<bool>(), 0..32u8, 0..64u8, any::<bool>(), 0..4u8),
            any::<Option<[u8; 8]>>(),
        )
            .prop_map(
                |(
                    common,
                    timestamp,
                    sgt,
                    (p, frame_type, hw_id, egress, granularity),
                    subheader,
                )| {
                    Type3 {
                        common,
                        timestamp,
                        sgt,
                        p,
                        frame_type,
                        hw_id,
                        egress,
                        granularity,
                        subheader,
                    }
                },
            )
    }

    fn encode_common(version: u8, c: &Common, out: &mut Vec<u8>) {
        let ver_vlan = (u16::from(version) << 12) | c.vlan;
        let cos_session = (u16::from(c.cos) << 13)
            | (u16::from(c.en_bso) << 11)
            | (u16::from(c.truncated) << 10)
            | c.session_id;
        out.extend_from_slice(&ver_vlan.to_be_bytes());
        out.extend_from_slice(&cos_session.to_be_bytes());
    }

    fn encode2(f: &Type2, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_common(1, &f.common, &mut out);
        out.extend_from_slice(&((u32::from(f.reserved) << 20) | f.index).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn encode3(f: &Type3, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_common(2, &f.common, &mut out);
        out.extend_from_slice(&f.timestamp.to_be_bytes());
        out.extend_from_slice(&f.sgt.to_be_bytes());
        let flags = (u16::from(f.p) << 15)
            | (u16::from(f.frame_type) << 10)
            | (u16::from(f.hw_id) << 4)
            | (u16::from(f.egress) << 3)
            | (u16::from(f.granularity) << 1)
            | u16::from(f.subheader.is_some());
        out.extend_from_slice(&flags.to_be_bytes());
        if let Some(sub) = f.subheader {
            out.extend_from_slice(&sub);
        }
        out.extend_from_slice(payload);
        out
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(e) = Erspan2Slice::from_slice(&bytes) {
                prop_assert_eq!(e.version(), 1);
                prop_assert_eq!(e.payload().len(), bytes.len() - e.header_len());
                let _ = (e.vlan(), e.cos(), e.encap_type(), e.truncated(), e.session_id(), e.index());
            }
            if let Ok(e) = Erspan3Slice::from_slice(&bytes) {
                prop_assert_eq!(e.version(), 2);
                prop_assert!(e.header_len() == 12 || e.header_len() == 20);
                prop_assert_eq!(e.payload().len(), bytes.len() - e.header_len());
                prop_assert_eq!(e.platform_id().is_some(), e.has_platform_subheader());
                let _ = (
                    e.vlan(), e.cos(), e.bso(), e.truncated(), e.session_id(), e.timestamp(),
                    e.sgt(), e.ethernet_pdu(), e.frame_type(), e.hw_id(), e.egress(),
                    e.granularity(), e.platform_subheader(),
                );
            }
        }

        #[test]
        fn round_trips_type2(f in type2(), payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let bytes = encode2(&f, &payload);
            let e = Erspan2Slice::from_slice(&bytes).unwrap();
            prop_assert_eq!(e.version(), 1);
            prop_assert_eq!(e.vlan(), f.common.vlan);
            prop_assert_eq!(e.cos(), f.common.cos);
            prop_assert_eq!(e.encap_type(), f.common.en_bso);
            prop_assert_eq!(e.truncated(), f.common.truncated);
            prop_assert_eq!(e.session_id(), f.common.session_id);
            prop_assert_eq!(e.index(), f.index);
            prop_assert_eq!(e.payload(), &payload[..]);
            // The same bytes are not a type III header.
            prop_assert!(Erspan3Slice::from_slice(&bytes).is_err());
        }

        #[test]
        fn round_trips_type3(f in type3(), payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let bytes = encode3(&f, &payload);
            let e = Erspan3Slice::from_slice(&bytes).unwrap();
            prop_assert_eq!(e.version(), 2);
            prop_assert_eq!(e.vlan(), f.common.vlan);
            prop_assert_eq!(e.cos(), f.common.cos);
            prop_assert_eq!(e.bso(), f.common.en_bso);
            prop_assert_eq!(e.truncated(), f.common.truncated);
            prop_assert_eq!(e.session_id(), f.common.session_id);
            prop_assert_eq!(e.timestamp(), f.timestamp);
            prop_assert_eq!(e.sgt(), f.sgt);
            prop_assert_eq!(e.ethernet_pdu(), f.p);
            prop_assert_eq!(e.frame_type(), f.frame_type);
            prop_assert_eq!(e.hw_id(), f.hw_id);
            prop_assert_eq!(e.egress(), f.egress);
            prop_assert_eq!(e.granularity(), f.granularity);
            prop_assert_eq!(e.has_platform_subheader(), f.subheader.is_some());
            prop_assert_eq!(e.platform_subheader(), f.subheader.as_ref().map(|s| &s[..]));
            prop_assert_eq!(e.platform_id(), f.subheader.map(|s| s[0] >> 2));
            prop_assert_eq!(e.header_len(), if f.subheader.is_some() { 20 } else { 12 });
            prop_assert_eq!(e.payload(), &payload[..]);
            prop_assert!(Erspan2Slice::from_slice(&bytes).is_err());
        }

        #[test]
        fn rejects_every_truncated_prefix(f2 in type2(), f3 in type3()) {
            let bytes = encode2(&f2, &[]);
            for n in 0..bytes.len() {
                prop_assert_eq!(Erspan2Slice::from_slice(&bytes[..n]).unwrap_err(), too_small(8, n));
            }
            let bytes = encode3(&f3, &[]);
            for n in 0..bytes.len() {
                let needed = if n < 12 { 12 } else { 20 };
                prop_assert_eq!(Erspan3Slice::from_slice(&bytes[..n]).unwrap_err(), too_small(needed, n));
            }
        }
    }
}
