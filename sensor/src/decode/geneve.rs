//! Geneve (RFC 8926): a zero-copy view of the fixed header, its option TLVs and the payload.
//!
//! Fixed header: Ver (2) = 0, Opt Len (6, in 4-byte words), O, C, Rsvd (6), Protocol Type (16),
//! VNI (24), Rsvd (8). Options: class (16), type (8, high bit = critical), R (3), length (5, in
//! 4-byte words, excluding the 4-byte option header).
//! The constructors check the version, that the options fit in the buffer and that the option
//! lengths tile the option area exactly; after that the accessors and [`GeneveSlice::options`]
//! cannot fail, and [`GeneveSlice::payload`] borrows from the caller's buffer.
//!
//! Where implementations differ: Suricata drops any packet with a reserved bit set; RFC 8926
//! says receivers ignore them. [`GeneveSlice::from_slice`] (configured ports) follows the RFC
//! and accepts any protocol type; [`GeneveSlice::from_slice_strict`] (probing non-standard
//! ports) follows Suricata and also wants the protocol type to be Ethernet, IPv4 or IPv6
//! (Google's out-of-band mirroring sends bare IP). The option R bits are ignored by both, as
//! RFC 8926 §3.5 asks. A strict reserved-bit failure is [`DecodeError::BadFlags`] whose value
//! is the flags byte (O, C, Rsvd) in the high byte and the trailing reserved byte in the low one.

use super::bytes::{be_u16, be_u32};
use super::error::{DecodeError, Layer};

/// Zero-copy view of a Geneve header (fixed part and options) and its payload.
///
/// Invariant: version 0, `bytes.len() >= header_len()`, and the options tile the option area.
#[derive(Clone, Copy, Debug)]
pub struct GeneveSlice<'a> {
    bytes: &'a [u8],
}

/// One Geneve option TLV.
///
/// Invariant: `bytes` is exactly one option, header included (4 to 128 bytes).
#[derive(Clone, Copy, Debug)]
pub struct GeneveOptionSlice<'a> {
    bytes: &'a [u8],
}

/// Iterator over the options of a [`GeneveSlice`].
#[derive(Clone, Debug)]
pub struct GeneveOptionIter<'a> {
    /// Options not yet returned; the constructor checked that they tile this area.
    rest: &'a [u8],
}

/// Byte offsets and bit masks of the fixed header.
mod field {
    use std::ops::Range;

    /// Version (high 2 bits) and option length in 4-byte words (low 6 bits).
    pub(super) const VER_OPT_LEN: usize = 0;
    /// Shift that brings the version down to bits 0-1.
    pub(super) const VERSION_SHIFT: u32 = 6;
    /// Option length in 4-byte words.
    pub(super) const OPT_LEN_MASK: u8 = 0x3f;
    /// O (control packet), C (critical options present) and six reserved bits.
    pub(super) const FLAGS: usize = 1;
    /// O bit: an OAM / control message.
    pub(super) const FLAG_OAM: u8 = 0x80;
    /// C bit: at least one option has its critical bit set.
    pub(super) const FLAG_CRITICAL: u8 = 0x40;
    /// Reserved bits of the flags byte.
    pub(super) const FLAGS_RESERVED_MASK: u8 = 0x3f;
    /// Protocol type of the payload (an EtherType).
    pub(super) const PROTOCOL: Range<usize> = 2..4;
    /// 24-bit virtual network identifier.
    pub(super) const VNI: Range<usize> = 4..7;
    /// Reserved byte after the VNI.
    pub(super) const RESERVED: usize = 7;
    /// End of the fixed header.
    pub(super) const FIXED_END: usize = RESERVED + 1;
}

/// Byte offsets and bit masks of an option header.
mod option_field {
    use std::ops::Range;

    /// Option class.
    pub(super) const CLASS: Range<usize> = 0..2;
    /// Option type (high bit = critical).
    pub(super) const TYPE: usize = 2;
    /// Critical bit of the type.
    pub(super) const TYPE_CRITICAL: u8 = 0x80;
    /// R (3 reserved bits) and the data length in 4-byte words (5 bits).
    pub(super) const LEN: usize = 3;
    /// Data length in 4-byte words.
    pub(super) const LEN_MASK: u8 = 0x1f;
    /// End of the option header.
    pub(super) const HEADER_END: usize = LEN + 1;
}

/// Geneve lengths count 4-byte words.
const WORD_LEN: usize = 4;

impl<'a> GeneveOptionSlice<'a> {
    /// Length of the option header (class, type, R and length).
    pub const HEADER_LEN: usize = option_field::HEADER_END;
    /// Option class of Google Cloud's out-of-band mirroring (network, endpoint and profile IDs).
    pub const CLASS_GOOGLE: u16 = 0x0132;

    /// Option class.
    pub fn class(&self) -> u16 {
        be_u16(&self.bytes[option_field::CLASS])
    }

    /// Option type (high bit = critical).
    pub fn option_type(&self) -> u8 {
        self.bytes[option_field::TYPE]
    }

    /// The critical bit of the type: a receiver that does not know the option must drop the packet.
    pub fn critical(&self) -> bool {
        self.option_type() & option_field::TYPE_CRITICAL != 0
    }

    /// Option data (without the 4-byte option header).
    pub fn data(&self) -> &'a [u8] {
        &self.bytes[Self::HEADER_LEN..]
    }

    /// Length of the whole option, header included (4 to 128 bytes).
    pub fn total_len(&self) -> usize {
        self.bytes.len()
    }
}

impl<'a> Iterator for GeneveOptionIter<'a> {
    type Item = GeneveOptionSlice<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // The constructor checked the tiling, so `None` here only ever means the end.
        let total = option_total_len(*self.rest.get(option_field::LEN)?);
        let (option, rest) = self.rest.split_at_checked(total)?;
        self.rest = rest;
        Some(GeneveOptionSlice { bytes: option })
    }
}

impl std::iter::FusedIterator for GeneveOptionIter<'_> {}

impl<'a> GeneveSlice<'a> {
    /// Fixed header length before options.
    pub const FIXED_LEN: usize = field::FIXED_END;
    /// Protocol type of an Ethernet payload (transparent Ethernet bridging).
    pub const PROTOCOL_ETHERNET: u16 = 0x6558;
    /// Protocol type of a bare IPv4 payload.
    pub const PROTOCOL_IPV4: u16 = 0x0800;
    /// Protocol type of a bare IPv6 payload.
    pub const PROTOCOL_IPV6: u16 = 0x86dd;

    /// Parse on a configured Geneve port: version 0, option lengths consistent.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::FIXED_LEN {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Geneve,
                needed: Self::FIXED_LEN,
                available: bytes.len(),
            });
        }
        let view = GeneveSlice { bytes };
        if view.version() != 0 {
            return Err(DecodeError::UnsupportedVersion {
                layer: Layer::Geneve,
                version: view.version(),
            });
        }
        let header_len = view.header_len();
        let Some(options) = bytes.get(Self::FIXED_LEN..header_len) else {
            return Err(DecodeError::BadLength {
                layer: Layer::Geneve,
                value: header_len,
                available: bytes.len(),
            });
        };
        // Walk the options once so that the iterator can never meet a malformed one.
        let mut rest = options;
        while !rest.is_empty() {
            let offset = header_len.saturating_sub(rest.len());
            let bad_option = DecodeError::BadOption {
                layer: Layer::Geneve,
                offset,
            };
            let Some(&len) = rest.get(option_field::LEN) else {
                return Err(bad_option);
            };
            let Some((_, tail)) = rest.split_at_checked(option_total_len(len)) else {
                return Err(bad_option);
            };
            rest = tail;
        }
        Ok(view)
    }

    /// Strict parse for probing non-standard ports: also reserved bits zero and protocol type
    /// one of 0x6558, 0x0800, 0x86DD.
    pub fn from_slice_strict(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let view = Self::from_slice(bytes)?;
        let flags = view.bytes[field::FLAGS];
        let reserved = view.bytes[field::RESERVED];
        if flags & field::FLAGS_RESERVED_MASK != 0 || reserved != 0 {
            return Err(DecodeError::BadFlags {
                layer: Layer::Geneve,
                flags: u16::from_be_bytes([flags, reserved]),
            });
        }
        match view.protocol_type() {
            Self::PROTOCOL_ETHERNET | Self::PROTOCOL_IPV4 | Self::PROTOCOL_IPV6 => Ok(view),
            value => Err(DecodeError::UnknownPayloadType {
                layer: Layer::Geneve,
                value,
            }),
        }
    }

    /// Version (always 0 once parsed).
    pub fn version(&self) -> u8 {
        self.bytes[field::VER_OPT_LEN] >> field::VERSION_SHIFT
    }

    /// Length of the options in bytes (Opt Len × 4, at most 252).
    pub fn opt_len_bytes(&self) -> usize {
        usize::from(self.bytes[field::VER_OPT_LEN] & field::OPT_LEN_MASK) * WORD_LEN
    }

    /// O bit: the packet is a control (OAM) message, not data.
    pub fn oam(&self) -> bool {
        self.bytes[field::FLAGS] & field::FLAG_OAM != 0
    }

    /// C bit: at least one option is critical.
    pub fn critical(&self) -> bool {
        self.bytes[field::FLAGS] & field::FLAG_CRITICAL != 0
    }

    /// 24-bit virtual network identifier.
    pub fn vni(&self) -> u32 {
        be_u32(&self.bytes[field::VNI])
    }

    /// Protocol type of the payload (an EtherType; 0x6558 = Ethernet).
    pub fn protocol_type(&self) -> u16 {
        be_u16(&self.bytes[field::PROTOCOL])
    }

    /// The options, in wire order.
    pub fn options(&self) -> GeneveOptionIter<'a> {
        GeneveOptionIter {
            rest: &self.bytes[Self::FIXED_LEN..self.header_len()],
        }
    }

    /// Header length including options.
    pub fn header_len(&self) -> usize {
        Self::FIXED_LEN + self.opt_len_bytes()
    }

    /// The encapsulated payload.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len()..]
    }
}

/// Length of an option, header included, from its length byte.
fn option_total_len(len_byte: u8) -> usize {
    GeneveOptionSlice::HEADER_LEN + usize::from(len_byte & option_field::LEN_MASK) * WORD_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// tcpdump__geneve-gcp.pcap (shared/pcaps/tunnels/geneve), frame 1, UDP payload to 6081:
    /// Google Cloud out-of-band mirroring, bare IPv4 with three class-0x0132 options.
    static GCP_GENEVE: [u8; 88] = [
        // Fixed header: ver 0, opt len 10 words (40 bytes); flags 0x00; protocol 0x0800;
        // VNI 0; reserved 0.
        0x0a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
        // Option at 8: class 0x0132, type 0x01 (network ID), R 0, len 1 word.
        0x01, 0x32, 0x01, 0x01, 0x80, 0x00, 0x00, 0xd1,
        // Option at 16: class 0x0132, type 0x02 (endpoint ID), R 0, len 4 words.
        0x01, 0x32, 0x02, 0x04, 0x08, 0x00, 0x00, 0x0d, 0xc0, 0xa8, 0x64, 0x02, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00,
        // Option at 36: class 0x0132, type 0x03 (profile ID), R 0, len 2 words.
        0x01, 0x32, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34,
        // Inner IPv4 at 48: 192.168.100.2 -> 192.168.100.1, TCP 2905 -> 8080, 40 bytes.
        0x45, 0x00, 0x00, 0x28, 0xd9, 0x44, 0x00, 0x00, 0x40, 0x06, 0x58, 0x37, 0xc0, 0xa8, 0x64,
        0x02, 0xc0, 0xa8, 0x64, 0x01, 0x0b, 0x59, 0x1f, 0x90, 0x2d, 0x5a, 0xde, 0x40, 0x78, 0xe9,
        0xbf, 0xda, 0x50, 0x00, 0x02, 0x00, 0xf5, 0x47, 0x00, 0x00,
    ];

    /// zeek__geneve.pcap (shared/pcaps/tunnels/geneve), frame 1, UDP payload to 6081, cut
    /// after the inner Ethernet header.
    static ZEEK_GENEVE: [u8; 30] = [
        // Fixed header: ver 0, opt len 2 words; flags 0x00; protocol 0x6558 (Ethernet);
        // VNI 0; reserved 0.
        0x02, 0x00, 0x65, 0x58, 0x00, 0x00, 0x00, 0x00,
        // Option at 8: class 0x0000, type 0x00, R 0, len 1 word, data 0x0000000a.
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0a,
        // Inner Ethernet at 16: dst 76:b5:d5:0a:a6:41, src b2:1a:43:d5:fa:4c, type 0x0800.
        0x76, 0xb5, 0xd5, 0x0a, 0xa6, 0x41, 0xb2, 0x1a, 0x43, 0xd5, 0xfa, 0x4c, 0x08, 0x00,
    ];

    /// One option for the test-only encoder.
    #[derive(Clone, Debug, PartialEq)]
    struct TestOption {
        class: u16,
        option_type: u8,
        reserved: u8,
        data: Vec<u8>,
    }

    /// Header fields for the test-only encoder.
    #[derive(Clone, Debug)]
    struct TestHeader {
        oam: bool,
        critical: bool,
        protocol: u16,
        vni: u32,
        options: Vec<TestOption>,
    }

    /// Test-only encoder: a conforming header (reserved bits zero), then `payload`.
    fn encode(header: &TestHeader, payload: &[u8]) -> Vec<u8> {
        let opt_words: usize = header.options.iter().map(|o| 1 + o.data.len() / 4).sum();
        let mut out = vec![u8::try_from(opt_words).unwrap()];
        out.push(u8::from(header.oam) << 7 | u8::from(header.critical) << 6);
        out.extend_from_slice(&header.protocol.to_be_bytes());
        out.extend_from_slice(&header.vni.to_be_bytes()[1..]);
        out.push(0);
        for option in &header.options {
            out.extend_from_slice(&option.class.to_be_bytes());
            out.push(option.option_type);
            out.push(option.reserved << 5 | u8::try_from(option.data.len() / 4).unwrap());
            out.extend_from_slice(&option.data);
        }
        out.extend_from_slice(payload);
        out
    }

    fn option_strategy() -> impl Strategy<Value = TestOption> {
        (
            any::<u16>(),
            any::<u8>(),
            0u8..8,
            (0usize..=31).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 4)),
        )
            .prop_map(|(class, option_type, reserved, data)| TestOption {
                class,
                option_type,
                reserved,
                data,
            })
    }

    fn header_strategy() -> impl Strategy<Value = TestHeader> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<u16>(),
            0u32..1 << 24,
            proptest::collection::vec(option_strategy(), 0..5)
                .prop_filter("options fit in 63 words", |options| {
                    options.iter().map(|o| 1 + o.data.len() / 4).sum::<usize>() <= 63
                }),
        )
            .prop_map(|(oam, critical, protocol, vni, options)| TestHeader {
                oam,
                critical,
                protocol,
                vni,
                options,
            })
    }

    #[test]
    fn parses_known_bytes() {
        for parse in [GeneveSlice::from_slice, GeneveSlice::from_slice_strict] {
            let geneve = parse(&GCP_GENEVE).unwrap();
            assert_eq!(geneve.version(), 0);
            assert_eq!(geneve.opt_len_bytes(), 40);
            assert_eq!(geneve.header_len(), 48);
            assert!(!geneve.oam());
            assert!(!geneve.critical());
            assert_eq!(geneve.protocol_type(), GeneveSlice::PROTOCOL_IPV4);
            assert_eq!(geneve.vni(), 0);
            assert_eq!(geneve.payload(), &GCP_GENEVE[48..]);
            let options: Vec<_> = geneve
                .options()
                .map(|o| {
                    (
                        o.class(),
                        o.option_type(),
                        o.critical(),
                        o.total_len(),
                        o.data(),
                    )
                })
                .collect();
            assert_eq!(
                options,
                [
                    (0x0132, 1, false, 8, &GCP_GENEVE[12..16]),
                    (0x0132, 2, false, 20, &GCP_GENEVE[20..36]),
                    (0x0132, 3, false, 12, &GCP_GENEVE[40..48]),
                ]
            );
            // The network ID option carries 0x800000d1 (network 134217741, direction bit 1).
            assert_eq!(options[0].4, &[0x80, 0x00, 0x00, 0xd1]);
            assert_eq!(options[0].0, GeneveOptionSlice::CLASS_GOOGLE);
        }
    }

    #[test]
    fn parses_known_bytes_ethernet() {
        let geneve = GeneveSlice::from_slice_strict(&ZEEK_GENEVE).unwrap();
        assert_eq!(geneve.protocol_type(), GeneveSlice::PROTOCOL_ETHERNET);
        assert_eq!(geneve.header_len(), 16);
        let option = geneve.options().next().unwrap();
        assert_eq!((option.class(), option.option_type()), (0, 0));
        assert_eq!(option.data(), &[0, 0, 0, 0x0a]);
        assert_eq!(geneve.options().count(), 1);
        assert_eq!(geneve.payload(), &ZEEK_GENEVE[16..]);
    }

    #[test]
    fn parses_known_bytes_without_options() {
        let bytes = [0x00, 0xc0, 0x86, 0xdd, 0x12, 0x34, 0x56, 0x00, 0x60];
        let geneve = GeneveSlice::from_slice_strict(&bytes).unwrap();
        assert!(geneve.oam() && geneve.critical());
        assert_eq!(geneve.vni(), 0x12_3456);
        assert_eq!(geneve.options().count(), 0);
        assert_eq!(geneve.payload(), &[0x60]);
    }

    #[test]
    fn rejects_truncated_header() {
        for len in 0..8 {
            let expected = DecodeError::HeaderTooSmall {
                layer: Layer::Geneve,
                needed: 8,
                available: len,
            };
            assert_eq!(
                GeneveSlice::from_slice(&GCP_GENEVE[..len]).unwrap_err(),
                expected
            );
            assert_eq!(
                GeneveSlice::from_slice_strict(&GCP_GENEVE[..len]).unwrap_err(),
                expected
            );
        }
    }

    #[test]
    fn rejects_truncated_opt_len() {
        // Options cut by the capture: Opt Len points past the end.
        for len in 8..48 {
            assert_eq!(
                GeneveSlice::from_slice(&GCP_GENEVE[..len]).unwrap_err(),
                DecodeError::BadLength {
                    layer: Layer::Geneve,
                    value: 48,
                    available: len
                }
            );
        }
        // The bare header with an empty payload is fine.
        assert_eq!(
            GeneveSlice::from_slice(&GCP_GENEVE[..48])
                .unwrap()
                .payload(),
            &[] as &[u8]
        );
    }

    #[test]
    fn rejects_bad_opt_len() {
        let mut bytes = GCP_GENEVE;
        // Lying, too large: 63 words = 260-byte header in an 88-byte buffer.
        bytes[0] = 0x3f;
        assert_eq!(
            GeneveSlice::from_slice(&bytes).unwrap_err(),
            DecodeError::BadLength {
                layer: Layer::Geneve,
                value: 260,
                available: 88
            }
        );
        // Lying, one word too many: the inner IPv4 header is read as an option of 36 bytes.
        bytes[0] = 0x0b;
        assert_eq!(
            GeneveSlice::from_slice(&bytes).unwrap_err(),
            DecodeError::BadOption {
                layer: Layer::Geneve,
                offset: 48
            }
        );
        // Too short: 9 words cut the third option (12 bytes at 36) to 8 bytes.
        bytes[0] = 0x09;
        assert_eq!(
            GeneveSlice::from_slice(&bytes).unwrap_err(),
            DecodeError::BadOption {
                layer: Layer::Geneve,
                offset: 36
            }
        );
        // Zero: a header without options; the option bytes become payload.
        bytes[0] = 0x00;
        let geneve = GeneveSlice::from_slice(&bytes).unwrap();
        assert_eq!((geneve.header_len(), geneve.options().count()), (8, 0));
        assert_eq!(geneve.payload(), &GCP_GENEVE[8..]);
    }

    #[test]
    fn rejects_bad_option_length() {
        let mut bytes = GCP_GENEVE;
        // Lying: the first option claims 31 words, past the 40-byte option area.
        bytes[11] = 0x1f;
        assert_eq!(
            GeneveSlice::from_slice(&bytes).unwrap_err(),
            DecodeError::BadOption {
                layer: Layer::Geneve,
                offset: 8
            }
        );
        // Too short: 0 words, so its data 80 00 00 d1 is read as an option claiming 17 words.
        bytes[11] = 0x00;
        assert_eq!(
            GeneveSlice::from_slice(&bytes).unwrap_err(),
            DecodeError::BadOption {
                layer: Layer::Geneve,
                offset: 12
            }
        );
        // The R bits are not part of the length and are ignored, even by the strict parse.
        bytes[11] = 0xe1;
        let geneve = GeneveSlice::from_slice_strict(&bytes).unwrap();
        assert_eq!(
            geneve.options().map(|o| o.total_len()).collect::<Vec<_>>(),
            [8, 20, 12]
        );
    }

    #[test]
    fn rejects_bad_version() {
        for version in 1..4u8 {
            let mut bytes = GCP_GENEVE;
            bytes[0] |= version << 6;
            let expected = DecodeError::UnsupportedVersion {
                layer: Layer::Geneve,
                version,
            };
            assert_eq!(GeneveSlice::from_slice(&bytes).unwrap_err(), expected);
            assert_eq!(
                GeneveSlice::from_slice_strict(&bytes).unwrap_err(),
                expected
            );
        }
    }

    #[test]
    fn rejects_bad_reserved_strict() {
        let cases: [(usize, u8, u16); 3] =
            [(1, 0x01, 0x0100), (1, 0x20, 0x2000), (7, 0x01, 0x0001)];
        for (offset, value, flags) in cases {
            let mut bytes = GCP_GENEVE;
            bytes[offset] = value;
            let lenient = GeneveSlice::from_slice(&bytes).unwrap();
            assert_eq!(
                lenient.vni(),
                0,
                "reserved byte {offset} leaks into the VNI"
            );
            assert_eq!(
                GeneveSlice::from_slice_strict(&bytes).unwrap_err(),
                DecodeError::BadFlags {
                    layer: Layer::Geneve,
                    flags
                }
            );
        }
    }

    #[test]
    fn rejects_bad_protocol_type_strict() {
        let mut bytes = ZEEK_GENEVE;
        // ARP: decoded on a configured port, refused by the probe.
        bytes[2..4].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(
            GeneveSlice::from_slice(&bytes).unwrap().protocol_type(),
            0x0806
        );
        assert_eq!(
            GeneveSlice::from_slice_strict(&bytes).unwrap_err(),
            DecodeError::UnknownPayloadType {
                layer: Layer::Geneve,
                value: 0x0806
            }
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            check_invariants(&bytes)?;
        }

        /// Version 0 and a small Opt Len, so the option walk sees most inputs.
        #[test]
        fn arbitrary_options_never_panic(
            opt_len in 0u8..16,
            rest in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut bytes = vec![opt_len];
            bytes.extend_from_slice(&rest);
            check_invariants(&bytes)?;
        }

        #[test]
        fn rejects_every_truncated_prefix(
            header in header_strategy(),
            payload in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let bytes = encode(&header, &payload);
            let header_len = bytes.len() - payload.len();
            for len in 0..header_len {
                let expected = if len < 8 {
                    DecodeError::HeaderTooSmall { layer: Layer::Geneve, needed: 8, available: len }
                } else {
                    DecodeError::BadLength { layer: Layer::Geneve, value: header_len, available: len }
                };
                prop_assert_eq!(GeneveSlice::from_slice(&bytes[..len]).map(|g| g.vni()), Err(expected));
                prop_assert_eq!(
                    GeneveSlice::from_slice_strict(&bytes[..len]).map(|g| g.vni()),
                    Err(expected)
                );
            }
        }

        #[test]
        fn round_trips_fields(
            header in header_strategy(),
            payload in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let bytes = encode(&header, &payload);
            let geneve = GeneveSlice::from_slice(&bytes).unwrap();
            prop_assert_eq!(geneve.oam(), header.oam);
            prop_assert_eq!(geneve.critical(), header.critical);
            prop_assert_eq!(geneve.protocol_type(), header.protocol);
            prop_assert_eq!(geneve.vni(), header.vni);
            prop_assert_eq!(geneve.header_len(), bytes.len() - payload.len());
            prop_assert_eq!(geneve.payload(), &payload[..]);
            let options: Vec<_> = geneve
                .options()
                .map(|o| TestOption {
                    class: o.class(),
                    option_type: o.option_type(),
                    reserved: option_reserved(o),
                    data: o.data().to_vec(),
                })
                .collect();
            prop_assert_eq!(&options, &header.options);
            let known = [0x6558, 0x0800, 0x86dd].contains(&header.protocol);
            prop_assert_eq!(GeneveSlice::from_slice_strict(&bytes).is_ok(), known);
        }
    }

    /// The R bits of an option, read from its header bytes (the view has no accessor for them).
    fn option_reserved(option: GeneveOptionSlice<'_>) -> u8 {
        option.bytes[option_field::LEN] >> 5
    }

    /// Whatever the input, a successful parse upholds the view's invariants.
    fn check_invariants(bytes: &[u8]) -> Result<(), TestCaseError> {
        for parse in [GeneveSlice::from_slice, GeneveSlice::from_slice_strict] {
            if let Ok(geneve) = parse(bytes) {
                prop_assert_eq!(geneve.version(), 0);
                prop_assert!(geneve.vni() < 1 << 24);
                prop_assert_eq!(geneve.header_len() + geneve.payload().len(), bytes.len());
                let option_bytes: usize = geneve.options().map(|o| o.total_len()).sum();
                prop_assert_eq!(option_bytes, geneve.opt_len_bytes());
                for option in geneve.options() {
                    prop_assert_eq!(option.data().len() + 4, option.total_len());
                    let _ = (option.class(), option.option_type(), option.critical());
                }
                let _ = (geneve.oam(), geneve.critical(), geneve.protocol_type());
            }
        }
        Ok(())
    }
}
