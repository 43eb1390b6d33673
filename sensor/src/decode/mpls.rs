//! MPLS label stacks (RFC 3032) and what follows them: a zero-copy view of the stack.
//!
//! Each 4-byte entry holds label (20 bits), traffic class (3), bottom of stack S (1) and TTL (8);
//! the stack ends at the first entry with S = 1. The constructor walks the stack once, at most
//! `max_labels` entries, and checks that the control word (if any) is present; after that the
//! accessors cannot fail and [`MplsSlice::payload`] borrows from the caller's buffer.
//!
//! MPLS does not say what it carries, so implementations guess from the first nibble after the
//! stack, as Wireshark and Zeek do: 4 is IPv4, 6 is IPv6, and 0 is the pseudowire control word
//! of RFC 4385 (then an Ethernet frame). An Ethernet pseudowire without a control word whose
//! destination MAC starts with nibble 4 or 6 is misread as IP; that is the usual trade-off, and
//! we accept it. Nibble 1 (a PW associated channel, RFC 4385 §3) and anything else is `Unknown`.
//!
//! Errors: a stack cut before its bottom entry, or a control word cut short, is
//! [`DecodeError::HeaderTooSmall`]. A stack with more than `max_labels` entries is
//! [`DecodeError::BadLength`] whose `value` is the stack length in bytes one entry past the cap
//! (the cap is checked before the next entry is read, so it bounds the work on any input).

use super::bytes::be_u32;
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

/// One decoded label stack entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MplsLabelEntry {
    /// 20-bit label.
    pub label: u32,
    /// 3-bit traffic class (formerly EXP).
    pub traffic_class: u8,
    /// S bit: this is the last entry of the stack.
    pub bottom_of_stack: bool,
    /// Time to live.
    pub ttl: u8,
}

/// Zero-copy view of an MPLS label stack.
///
/// Invariant: `bytes[..stack_len]` is a whole stack (a multiple of 4 bytes, S set only in the
/// last entry), and for `EthernetControlWord` the 4-byte control word follows it.
#[derive(Clone, Copy, Debug)]
pub struct MplsSlice<'a> {
    bytes: &'a [u8],
    /// Length of the label stack in bytes (at least one entry).
    stack_len: usize,
    /// What follows the stack, decided by the constructor.
    kind: MplsPayload,
}

/// Iterator over the entries of an [`MplsSlice`], top first.
#[derive(Clone, Debug)]
pub struct MplsLabelIter<'a> {
    /// Entries not yet returned (a multiple of 4 bytes).
    rest: &'a [u8],
}

/// Byte offsets and bit positions of a label stack entry, and of what follows the stack.
mod field {
    use std::ops::Range;

    /// One label stack entry.
    pub(super) const ENTRY: Range<usize> = 0..4;
    /// The byte holding the S bit.
    pub(super) const BOTTOM_OF_STACK: usize = 2;
    /// S bit within that byte.
    pub(super) const BOTTOM_OF_STACK_BIT: u8 = 0x01;
    /// Label: the top 20 bits of the entry.
    pub(super) const LABEL_SHIFT: u32 = 12;
    /// Traffic class: 3 bits above S.
    pub(super) const TC_SHIFT: u32 = 9;
    /// Traffic class width.
    pub(super) const TC_MASK: u32 = 0x7;
    /// S bit in the entry read as a `u32`.
    pub(super) const BOTTOM_OF_STACK_MASK: u32 = 0x100;
    /// TTL: the low byte.
    pub(super) const TTL_MASK: u32 = 0xff;
    /// Pseudowire control word (RFC 4385), relative to the end of the stack.
    pub(super) const CONTROL_WORD: Range<usize> = 0..4;
    /// Shift that brings the first nibble after the stack down.
    pub(super) const NIBBLE_SHIFT: u32 = 4;
    /// First nibble of IPv4.
    pub(super) const NIBBLE_IPV4: u8 = 4;
    /// First nibble of IPv6.
    pub(super) const NIBBLE_IPV6: u8 = 6;
    /// First nibble of a pseudowire control word.
    pub(super) const NIBBLE_CONTROL_WORD: u8 = 0;
}

impl MplsLabelEntry {
    /// Decodes one 4-byte entry (shorter input reads as if zero-padded on the left).
    fn from_bytes(entry: &[u8]) -> Self {
        let raw = be_u32(entry);
        MplsLabelEntry {
            label: raw >> field::LABEL_SHIFT,
            traffic_class: u8::try_from((raw >> field::TC_SHIFT) & field::TC_MASK).unwrap_or(0),
            bottom_of_stack: raw & field::BOTTOM_OF_STACK_MASK != 0,
            ttl: u8::try_from(raw & field::TTL_MASK).unwrap_or(0),
        }
    }
}

impl Iterator for MplsLabelIter<'_> {
    type Item = MplsLabelEntry;

    fn next(&mut self) -> Option<Self::Item> {
        let (entry, rest) = self.rest.split_at_checked(MplsSlice::ENTRY_LEN)?;
        self.rest = rest;
        Some(MplsLabelEntry::from_bytes(entry))
    }
}

impl std::iter::FusedIterator for MplsLabelIter<'_> {}

impl<'a> MplsSlice<'a> {
    /// Length of one label stack entry.
    pub const ENTRY_LEN: usize = field::ENTRY.end;
    /// Length of the pseudowire control word.
    pub const CONTROL_WORD_LEN: usize = field::CONTROL_WORD.end;

    /// Walks labels until the bottom-of-stack bit, at most `max_labels` of them.
    pub fn from_slice(bytes: &'a [u8], max_labels: usize) -> Result<Self, DecodeError> {
        let mut stack_len = 0usize;
        let mut n_labels = 0usize;
        loop {
            let end = stack_len.saturating_add(Self::ENTRY_LEN);
            if n_labels >= max_labels {
                return Err(DecodeError::BadLength {
                    layer: Layer::Mpls,
                    value: end,
                    available: bytes.len(),
                });
            }
            let Some(entry) = bytes.get(stack_len..end) else {
                return Err(DecodeError::HeaderTooSmall {
                    layer: Layer::Mpls,
                    needed: end,
                    available: bytes.len(),
                });
            };
            stack_len = end;
            n_labels = n_labels.saturating_add(1);
            let bottom = entry
                .get(field::BOTTOM_OF_STACK)
                .is_some_and(|b| b & field::BOTTOM_OF_STACK_BIT != 0);
            if bottom {
                break;
            }
        }
        let after = bytes.get(stack_len..).unwrap_or_default();
        let kind = match after.first().map(|b| b >> field::NIBBLE_SHIFT) {
            Some(field::NIBBLE_IPV4) => MplsPayload::Ipv4,
            Some(field::NIBBLE_IPV6) => MplsPayload::Ipv6,
            Some(field::NIBBLE_CONTROL_WORD) => MplsPayload::EthernetControlWord,
            _ => MplsPayload::Unknown,
        };
        if kind == MplsPayload::EthernetControlWord && after.len() < Self::CONTROL_WORD_LEN {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Mpls,
                needed: stack_len.saturating_add(Self::CONTROL_WORD_LEN),
                available: bytes.len(),
            });
        }
        Ok(MplsSlice {
            bytes,
            stack_len,
            kind,
        })
    }

    /// Number of labels in the stack.
    pub fn label_count(&self) -> usize {
        self.stack_len / Self::ENTRY_LEN
    }

    /// The entries of the stack, top first.
    pub fn labels(&self) -> MplsLabelIter<'a> {
        MplsLabelIter {
            rest: &self.bytes[..self.stack_len],
        }
    }

    /// The top (outermost) entry.
    pub fn top_entry(&self) -> MplsLabelEntry {
        MplsLabelEntry::from_bytes(&self.bytes[field::ENTRY])
    }

    /// The top (outermost) label.
    pub fn top_label(&self) -> u32 {
        self.top_entry().label
    }

    /// What the stack carries.
    pub fn payload_kind(&self) -> MplsPayload {
        self.kind
    }

    /// The pseudowire control word, for `EthernetControlWord`.
    pub fn control_word(&self) -> Option<u32> {
        (self.kind == MplsPayload::EthernetControlWord)
            .then(|| be_u32(&self.bytes[self.stack_len..][field::CONTROL_WORD]))
    }

    /// Length of the label stack in bytes.
    pub fn stack_len(&self) -> usize {
        self.stack_len
    }

    /// Bytes before [`MplsSlice::payload`]: the stack, plus the control word if there is one.
    pub fn header_len(&self) -> usize {
        match self.kind {
            MplsPayload::EthernetControlWord => self.stack_len + Self::CONTROL_WORD_LEN,
            MplsPayload::Ipv4 | MplsPayload::Ipv6 | MplsPayload::Unknown => self.stack_len,
        }
    }

    /// Bytes after the stack (and after the control word for `EthernetControlWord`).
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len()..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// zeek__mixed-vlan-mpls.pcap (shared/pcaps/tunnels/other), frame 1, after the Ethernet
    /// header (EtherType 0x8847).
    static ZEEK_MPLS_IPV4: [u8; 48] = [
        // MPLS: label 29, TC 6, S 1, TTL 255.
        0x00, 0x01, 0xdd, 0xff,
        // IPv4: 10.1.2.1 -> 10.34.0.1, TCP 11001 -> 23 SYN, 44 bytes.
        0x45, 0xc0, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0xff, 0x06, 0xa4, 0xe7, 0x0a, 0x01, 0x02,
        0x01, 0x0a, 0x22, 0x00, 0x01, 0x2a, 0xf9, 0x00, 0x17, 0x98, 0x32, 0x0f, 0xfb, 0x00, 0x00,
        0x00, 0x00, 0x60, 0x02, 0x10, 0x20, 0xa2, 0x40, 0x00, 0x00, 0x02, 0x04, 0x02, 0x18,
    ];

    /// tcpdump__mpls-over-udp.pcap (shared/pcaps/tunnels/other), frame 1, UDP payload to
    /// port 6635 (RFC 7510), cut after the inner IPv4 header.
    static TCPDUMP_MPLS_UDP: [u8; 24] = [
        // MPLS: label 21, TC 0, S 1, TTL 63.
        0x00, 0x01, 0x51, 0x3f, // IPv4: 10.3.0.10 -> 10.1.0.10, ICMP, 84 bytes.
        0x45, 0x00, 0x00, 0x54, 0x67, 0x6f, 0x40, 0x00, 0x3f, 0x01, 0xc0, 0x22, 0x0a, 0x03, 0x00,
        0x0a, 0x0a, 0x01, 0x00, 0x0a,
    ];

    /// Hand-built (no sample capture has one): an Ethernet pseudowire with a control word.
    static PW_CONTROL_WORD: [u8; 26] = [
        // MPLS: label 16, TC 0, S 0, TTL 64 (transport label).
        0x00, 0x01, 0x00, 0x40,
        // MPLS: label 1000, TC 5, S 1, TTL 255 (pseudowire label).
        0x00, 0x3e, 0x8b, 0xff,
        // Control word (RFC 4385): nibble 0, flags 0, length 0, sequence 5.
        0x00, 0x00, 0x00, 0x05,
        // Ethernet: dst 02:00:00:00:00:01, src 02:00:00:00:00:02, EtherType 0x0800.
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00,
    ];

    /// Test-only encoder: a stack from its entries (S taken from each entry), then `payload`.
    fn encode(entries: &[MplsLabelEntry], payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            let raw = e.label << 12
                | u32::from(e.traffic_class) << 9
                | u32::from(e.bottom_of_stack) << 8
                | u32::from(e.ttl);
            out.extend_from_slice(&raw.to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    /// A valid stack of 1 to 8 entries, S set only on the last.
    fn stack_strategy() -> impl Strategy<Value = Vec<MplsLabelEntry>> {
        proptest::collection::vec((0u32..1 << 20, 0u8..8, any::<u8>()), 1..=8).prop_map(|v| {
            let last = v.len() - 1;
            v.into_iter()
                .enumerate()
                .map(|(i, (label, traffic_class, ttl))| MplsLabelEntry {
                    label,
                    traffic_class,
                    bottom_of_stack: i == last,
                    ttl,
                })
                .collect()
        })
    }

    /// A payload of each kind: IPv4, IPv6, control word + Ethernet, or other.
    fn payload_strategy() -> impl Strategy<Value = (MplsPayload, Vec<u8>)> {
        (0u8..16, proptest::collection::vec(any::<u8>(), 4..24)).prop_map(|(nibble, mut rest)| {
            rest[0] = nibble << 4 | (rest[0] & 0x0f);
            let kind = match nibble {
                4 => MplsPayload::Ipv4,
                6 => MplsPayload::Ipv6,
                0 => MplsPayload::EthernetControlWord,
                _ => MplsPayload::Unknown,
            };
            (kind, rest)
        })
    }

    #[test]
    fn parses_known_bytes() {
        let mpls = MplsSlice::from_slice(&ZEEK_MPLS_IPV4, 4).unwrap();
        assert_eq!(mpls.label_count(), 1);
        assert_eq!(mpls.top_label(), 29);
        assert_eq!(
            mpls.top_entry(),
            MplsLabelEntry {
                label: 29,
                traffic_class: 6,
                bottom_of_stack: true,
                ttl: 255
            }
        );
        assert_eq!(mpls.payload_kind(), MplsPayload::Ipv4);
        assert_eq!(mpls.control_word(), None);
        assert_eq!((mpls.stack_len(), mpls.header_len()), (4, 4));
        assert_eq!(mpls.payload(), &ZEEK_MPLS_IPV4[4..]);
    }

    #[test]
    fn parses_known_bytes_mpls_over_udp() {
        let mpls = MplsSlice::from_slice(&TCPDUMP_MPLS_UDP, 1).unwrap();
        assert_eq!((mpls.top_label(), mpls.top_entry().ttl), (21, 63));
        assert_eq!(mpls.payload_kind(), MplsPayload::Ipv4);
        assert_eq!(mpls.payload().len(), 20);
    }

    #[test]
    fn parses_known_bytes_control_word() {
        let mpls = MplsSlice::from_slice(&PW_CONTROL_WORD, 2).unwrap();
        assert_eq!(mpls.label_count(), 2);
        assert_eq!(mpls.top_label(), 16);
        let labels: Vec<_> = mpls
            .labels()
            .map(|e| (e.label, e.traffic_class, e.bottom_of_stack, e.ttl))
            .collect();
        assert_eq!(labels, [(16, 0, false, 64), (1000, 5, true, 255)]);
        assert_eq!(mpls.payload_kind(), MplsPayload::EthernetControlWord);
        assert_eq!(mpls.control_word(), Some(5));
        assert_eq!((mpls.stack_len(), mpls.header_len()), (8, 12));
        assert_eq!(mpls.payload(), &PW_CONTROL_WORD[12..]);
    }

    #[test]
    fn parses_known_bytes_other_payloads() {
        // Nibble 6: IPv6.
        let mpls = MplsSlice::from_slice(&[0x00, 0x00, 0x21, 0x40, 0x60, 0x00], 1).unwrap();
        assert_eq!(
            (mpls.top_label(), mpls.payload_kind()),
            (2, MplsPayload::Ipv6)
        );
        // Nibble 1 (PW associated channel) and an empty payload: Unknown.
        let mpls =
            MplsSlice::from_slice(&[0x00, 0x00, 0xd1, 0x40, 0x10, 0x00, 0x00, 0x07], 1).unwrap();
        assert_eq!(
            (mpls.top_label(), mpls.payload_kind()),
            (13, MplsPayload::Unknown)
        );
        assert_eq!(mpls.payload().len(), 4);
        let mpls = MplsSlice::from_slice(&ZEEK_MPLS_IPV4[..4], 1).unwrap();
        assert_eq!(
            (mpls.payload_kind(), mpls.payload()),
            (MplsPayload::Unknown, &[] as &[u8])
        );
    }

    #[test]
    fn rejects_truncated_label_stack() {
        for len in 0..8 {
            let needed = if len < 4 { 4 } else { 8 };
            assert_eq!(
                MplsSlice::from_slice(&PW_CONTROL_WORD[..len], 8).unwrap_err(),
                DecodeError::HeaderTooSmall {
                    layer: Layer::Mpls,
                    needed,
                    available: len
                }
            );
        }
    }

    #[test]
    fn rejects_truncated_control_word() {
        for len in 9..12 {
            assert_eq!(
                MplsSlice::from_slice(&PW_CONTROL_WORD[..len], 8).unwrap_err(),
                DecodeError::HeaderTooSmall {
                    layer: Layer::Mpls,
                    needed: 12,
                    available: len
                }
            );
        }
        // With the control word whole, an empty Ethernet frame is partial data, not an error.
        assert_eq!(
            MplsSlice::from_slice(&PW_CONTROL_WORD[..12], 8)
                .unwrap()
                .payload(),
            &[] as &[u8]
        );
    }

    #[test]
    fn rejects_bad_label_count() {
        // Two labels against a cap of one: refused before the second entry is read.
        assert_eq!(
            MplsSlice::from_slice(&PW_CONTROL_WORD, 1).unwrap_err(),
            DecodeError::BadLength {
                layer: Layer::Mpls,
                value: 8,
                available: 26
            }
        );
        assert_eq!(
            MplsSlice::from_slice(&ZEEK_MPLS_IPV4, 0).unwrap_err(),
            DecodeError::BadLength {
                layer: Layer::Mpls,
                value: 4,
                available: 48
            }
        );
    }

    #[test]
    fn rejects_bad_bottom_of_stack() {
        // No entry has S set: the stack runs to the end of the buffer, or into the cap.
        let zeros = [0u8; 64];
        assert_eq!(
            MplsSlice::from_slice(&zeros, 100).unwrap_err(),
            DecodeError::HeaderTooSmall {
                layer: Layer::Mpls,
                needed: 68,
                available: 64
            }
        );
        assert_eq!(
            MplsSlice::from_slice(&zeros, 8).unwrap_err(),
            DecodeError::BadLength {
                layer: Layer::Mpls,
                value: 36,
                available: 64
            }
        );
        assert!(MplsSlice::from_slice(&zeros, usize::MAX).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            max_labels in prop_oneof![0usize..20, Just(usize::MAX)],
        ) {
            if let Ok(mpls) = MplsSlice::from_slice(&bytes, max_labels) {
                prop_assert!(mpls.label_count() >= 1 && mpls.label_count() <= max_labels);
                prop_assert_eq!(mpls.labels().count(), mpls.label_count());
                prop_assert_eq!(mpls.labels().filter(|e| e.bottom_of_stack).count(), 1);
                prop_assert_eq!(mpls.labels().next(), Some(mpls.top_entry()));
                prop_assert!(mpls.top_label() < 1 << 20);
                prop_assert_eq!(mpls.header_len() + mpls.payload().len(), bytes.len());
                prop_assert_eq!(
                    mpls.control_word().is_some(),
                    mpls.payload_kind() == MplsPayload::EthernetControlWord
                );
            }
        }

        #[test]
        fn rejects_every_truncated_prefix(
            entries in stack_strategy(),
            (kind, payload) in payload_strategy(),
        ) {
            let bytes = encode(&entries, &payload);
            let stack_len = entries.len() * 4;
            let header_len = if kind == MplsPayload::EthernetControlWord { stack_len + 4 } else { stack_len };
            for len in (0..header_len).filter(|&len| len != stack_len) {
                let needed = if len < stack_len { (len / 4 + 1) * 4 } else { header_len };
                prop_assert_eq!(
                    MplsSlice::from_slice(&bytes[..len], 8).map(|m| m.label_count()),
                    Err(DecodeError::HeaderTooSmall { layer: Layer::Mpls, needed, available: len })
                );
            }
            // Cut right after the stack, nothing says a control word would follow: the stack
            // alone is a whole header with an empty payload of unknown kind.
            let cut = MplsSlice::from_slice(&bytes[..stack_len], 8).unwrap();
            prop_assert_eq!(cut.label_count(), entries.len());
            prop_assert_eq!((cut.payload_kind(), cut.payload()), (MplsPayload::Unknown, &[] as &[u8]));
        }

        #[test]
        fn round_trips_fields(entries in stack_strategy(), (kind, payload) in payload_strategy()) {
            let bytes = encode(&entries, &payload);
            // Exactly at the cap: accepted; one below: refused.
            let mpls = MplsSlice::from_slice(&bytes, entries.len()).unwrap();
            prop_assert_eq!(mpls.labels().collect::<Vec<_>>(), entries.clone());
            prop_assert_eq!(mpls.top_label(), entries[0].label);
            prop_assert_eq!(mpls.payload_kind(), kind);
            let skip = if kind == MplsPayload::EthernetControlWord { 4 } else { 0 };
            prop_assert_eq!(mpls.payload(), &payload[skip..]);
            prop_assert_eq!(
                MplsSlice::from_slice(&bytes, entries.len() - 1).map(|m| m.label_count()),
                Err(DecodeError::BadLength {
                    layer: Layer::Mpls,
                    value: entries.len() * 4,
                    available: bytes.len()
                })
            );
        }
    }
}
