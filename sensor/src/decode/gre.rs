//! GRE v0 (RFC 2784, RFC 2890 key and sequence) and v1 (PPTP "enhanced GRE", RFC 2637), plus
//! the PPP frame PPTP carries (RFC 1661 protocol field, RFC 1662 address/control).
//!
//! Contract: [`GreSlice::from_slice`] and [`PppSlice::from_slice`] check every length the flags
//! imply (checksum, key, sequence, acknowledgement; address/control, compressed protocol);
//! after that the accessors cannot fail, and `payload()` borrows from the caller's buffer.
//! No input panics, allocates or overflows. A short buffer is
//! [`DecodeError::HeaderTooSmall`] with `needed` set to the length the flags imply.
//!
//! Where implementations differ, and what we chose:
//! - Routing (R, RFC 1701, deprecated by RFC 2784) and strict source route (s): Zeek rejects R
//!   (weird `gre_routing`), Suricata rejects R and s in v1 (the v0 code we read walks the SRE
//!   list), Linux `gre_parse_header` rejects R. We reject both with [`DecodeError::BadFlags`]:
//!   the routing field is variable length and nobody mirrors through it, so accepting it would
//!   only widen the attack surface.
//! - Reserved flags (0x78 of byte 1): RFC 2784 says receivers ignore them, but Suricata
//!   (`gre.version0_flags`) and Zeek (`unknown_gre_flags`) reject them, and so do we. Note for
//!   the layer walk: Linux does not check them, so a sender can set them to hide a tunnel from
//!   us; the `decoder.gre.bad_flags` counter is where that shows.
//! - Recursion control (0x07 of byte 0): Suricata rejects a non-zero value, Zeek and Linux
//!   ignore it. We ignore it (it does not change the layout) and expose it as
//!   [`GreSlice::recursion`].
//! - The A bit (0x80 of byte 1) exists only in v1. In v0 Linux and Suricata ignore it while Zeek
//!   counts a 4-byte acknowledgement for it; we ignore it in v0, as the receiver does.
//! - v1: protocol must be 0x880B (PPP, else [`DecodeError::UnknownPayloadType`]); K must be
//!   set and C, R, s clear (else [`DecodeError::BadFlags`]), as RFC 2637 §4.1 and Suricata
//!   require. Other versions are [`DecodeError::UnsupportedVersion`].
//! - The PPTP payload length (high half of the key) is not checked against the bytes present:
//!   mirrors and snaplen cut packets, and the walk decides what a short payload means.
//! - NVGRE (RFC 7637) is GRE-TEB with K set and C and S clear; only then do
//!   [`GreSlice::nvgre_vsid`] and [`GreSlice::nvgre_flow_id`] answer. A Linux `gretap ... key
//!   K` sends exactly these bytes, so it reads as NVGRE (VSID K >> 8); `gretap ... seq key K`
//!   (or `csum`) cannot be NVGRE, and the layer walk keeps its whole key as a GRE-TEB id
//!   (before issue 16 any TEB key was read as NVGRE, so such a mirror's id lost its low byte).
//! - PPP: Zeek assumes a 4-byte PPP header (FF 03 + 2-byte protocol); we follow RFC 1662 §3.2
//!   and RFC 1661 §6.5: FF 03 is skipped when present, and an odd first protocol byte is a
//!   compressed 1-byte protocol (seen in sv__bug-6942 … eth-ip-gre-ppp-max-ip-packet.pcap).
//!   A leading 0xFF without 0x03 after it is rejected rather than read as protocol 0x00FF.

use super::bytes::{be_u16, be_u32};
use super::error::{DecodeError, Layer};

/// Zero-copy view of a GRE header and its payload.
///
/// Invariant: `bytes` holds the 4-byte base header and every optional field the flags imply;
/// the version is 0 or 1 and the flags obey the rules in the module doc.
#[derive(Clone, Copy, Debug)]
pub struct GreSlice<'a> {
    bytes: &'a [u8],
}

/// Zero-copy view of a PPP frame carried in PPTP GRE.
///
/// Invariant: `bytes` holds the optional address/control bytes and a complete, well-formed
/// (odd) protocol field.
#[derive(Clone, Copy, Debug)]
pub struct PppSlice<'a> {
    bytes: &'a [u8],
}

/// Byte offsets and bit masks of the GRE header.
mod field {
    use std::ops::Range;

    /// First flag byte: C, R, K, S, s and the recursion count.
    pub(super) const FLAGS: usize = 0;
    /// Second flag byte: A (v1 only), reserved flags and the version.
    pub(super) const FLAGS_VERSION: usize = 1;
    /// Both flag bytes, read as one word for error reports.
    pub(super) const FLAGS_WORD: Range<usize> = 0..2;
    /// Protocol type (an EtherType).
    pub(super) const PROTOCOL: Range<usize> = 2..4;
    /// The base header: flags, version and protocol type.
    pub(super) const BASE_LEN: usize = PROTOCOL.end;
    /// Every optional field (checksum+reserved1, key, sequence, acknowledgement) is one word.
    pub(super) const OPTION_LEN: usize = 4;

    /// Byte 0: checksum present.
    pub(super) const C: u8 = 0x80;
    /// Byte 0: routing present (RFC 1701).
    pub(super) const R: u8 = 0x40;
    /// Byte 0: key present.
    pub(super) const K: u8 = 0x20;
    /// Byte 0: sequence number present.
    pub(super) const S: u8 = 0x10;
    /// Byte 0: strict source route (RFC 1701).
    pub(super) const SSR: u8 = 0x08;
    /// Byte 0: recursion control.
    pub(super) const RECURSION: u8 = 0x07;
    /// Byte 1: acknowledgement present (v1 only).
    pub(super) const A: u8 = 0x80;
    /// Byte 1: reserved flags, must be zero.
    pub(super) const RESERVED: u8 = 0x78;
    /// Byte 1: version.
    pub(super) const VERSION: u8 = 0x07;

    /// Within the checksum word: the 16-bit checksum (then 16 bits of reserved1).
    pub(super) const CHECKSUM_IN_WORD: Range<usize> = 0..2;
    /// Within the v1 key word: payload length.
    pub(super) const PPTP_PAYLOAD_LENGTH_IN_KEY: Range<usize> = 0..2;
    /// Within the v1 key word: call ID.
    pub(super) const PPTP_CALL_ID_IN_KEY: Range<usize> = 2..4;
    /// NVGRE (RFC 7637): the key is a 24-bit VSID followed by an 8-bit FlowID.
    pub(super) const NVGRE_VSID_SHIFT: u32 = 8;
    /// NVGRE FlowID: the low byte of the key.
    pub(super) const NVGRE_FLOW_ID_MASK: u32 = 0xff;
}

/// Byte values and lengths of the PPP header.
mod ppp_field {
    /// All-stations address (RFC 1662 §3.1).
    pub(super) const ADDRESS: u8 = 0xFF;
    /// Unnumbered Information control (RFC 1662 §3.1).
    pub(super) const CONTROL: u8 = 0x03;
    /// Address and control, when not compressed.
    pub(super) const ADDRESS_CONTROL: [u8; 2] = [ADDRESS, CONTROL];
    /// Protocol field length without protocol field compression.
    pub(super) const PROTOCOL_LEN: usize = 2;
    /// Protocol field length with protocol field compression.
    pub(super) const PROTOCOL_COMPRESSED_LEN: usize = 1;
    /// Set in the last byte of every protocol number, clear in the first of a 2-byte one
    /// (RFC 1661 §2), so an odd first byte means a compressed 1-byte field.
    pub(super) const PROTOCOL_LAST_BYTE_BIT: u8 = 0x01;
}

impl<'a> GreSlice<'a> {
    /// Length of the base header (flags, version, protocol type).
    pub const BASE_LEN: usize = field::BASE_LEN;
    /// Longest header we accept: three optional words (v0: checksum, key, sequence; v1: key,
    /// sequence, acknowledgement).
    pub const MAX_LEN: usize = field::BASE_LEN + 3 * field::OPTION_LEN;
    /// PPP, the only protocol GRE v1 carries (RFC 2637).
    pub const PROTOCOL_PPP: u16 = 0x880B;
    /// Transparent Ethernet bridging (GRE-TEB and NVGRE).
    pub const PROTOCOL_TEB: u16 = 0x6558;
    /// ERSPAN type I (S clear) or II (S set).
    pub const PROTOCOL_ERSPAN: u16 = 0x88BE;
    /// ERSPAN type III.
    pub const PROTOCOL_ERSPAN_III: u16 = 0x22EB;

    /// Parses GRE v0 (optional checksum, key, sequence) or v1 (PPTP: key mandatory, optional
    /// sequence and acknowledgement).
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < field::BASE_LEN {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Gre,
                needed: field::BASE_LEN,
                available: bytes.len(),
            });
        }
        let view = GreSlice { bytes };
        let flags = view.flags();
        let flags_version = view.flags_version();
        match view.version() {
            0 => {
                if flags & (field::R | field::SSR) != 0 || flags_version & field::RESERVED != 0 {
                    return Err(view.bad_flags());
                }
            }
            1 => {
                if flags & (field::C | field::R | field::SSR) != 0
                    || flags & field::K == 0
                    || flags_version & field::RESERVED != 0
                {
                    return Err(view.bad_flags());
                }
                if view.protocol_type() != Self::PROTOCOL_PPP {
                    return Err(DecodeError::UnknownPayloadType {
                        layer: Layer::Gre,
                        value: view.protocol_type(),
                    });
                }
            }
            version => {
                return Err(DecodeError::UnsupportedVersion {
                    layer: Layer::Gre,
                    version,
                });
            }
        }
        let needed = view.header_len();
        if bytes.len() < needed {
            return Err(DecodeError::HeaderTooSmall {
                layer: Layer::Gre,
                needed,
                available: bytes.len(),
            });
        }
        Ok(view)
    }

    /// GRE version (0 or 1).
    pub fn version(&self) -> u8 {
        self.flags_version() & field::VERSION
    }

    /// Recursion control (RFC 1701; ignored, see the module doc).
    pub fn recursion(&self) -> u8 {
        self.flags() & field::RECURSION
    }

    /// Protocol type (an EtherType).
    pub fn protocol_type(&self) -> u16 {
        be_u16(&self.bytes[field::PROTOCOL])
    }

    /// C bit: a checksum (and reserved1) word follows the base header.
    pub fn has_checksum(&self) -> bool {
        self.flags() & field::C != 0
    }

    /// K bit: a key word is present.
    pub fn has_key(&self) -> bool {
        self.flags() & field::K != 0
    }

    /// S bit: a sequence number word is present.
    pub fn has_sequence(&self) -> bool {
        self.flags() & field::S != 0
    }

    /// A bit in a v1 header: an acknowledgement number word is present (always false in v0).
    pub fn has_ack(&self) -> bool {
        self.version() == 1 && self.flags_version() & field::A != 0
    }

    /// Checksum if the C bit is set (not verified here).
    pub fn checksum(&self) -> Option<u16> {
        self.has_checksum().then(|| {
            let word = self.option(field::BASE_LEN);
            be_u16(&word[field::CHECKSUM_IN_WORD])
        })
    }

    /// Key field if the K bit is set (v1: payload length << 16 | call id).
    pub fn key(&self) -> Option<u32> {
        self.has_key()
            .then(|| be_u32(self.option(self.offset_after(field::C))))
    }

    /// Sequence number if the S bit is set.
    pub fn sequence(&self) -> Option<u32> {
        self.has_sequence()
            .then(|| be_u32(self.option(self.offset_after(field::C | field::K))))
    }

    /// Acknowledgement number if this is v1 and the A bit is set.
    pub fn ack(&self) -> Option<u32> {
        self.has_ack()
            .then(|| be_u32(self.option(self.offset_after(field::C | field::K | field::S))))
    }

    /// v1 (PPTP) call ID: the low 16 bits of the key.
    pub fn call_id(&self) -> Option<u16> {
        self.pptp_key_half(field::PPTP_CALL_ID_IN_KEY)
    }

    /// v1 (PPTP) payload length: the high 16 bits of the key.
    pub fn payload_length(&self) -> Option<u16> {
        self.pptp_key_half(field::PPTP_PAYLOAD_LENGTH_IN_KEY)
    }

    /// NVGRE virtual subnet ID (RFC 7637): the top 24 bits of the key, when the protocol is
    /// transparent Ethernet bridging (0x6558), the K bit is set and C and S are clear.
    pub fn nvgre_vsid(&self) -> Option<u32> {
        self.nvgre_key().map(|key| key >> field::NVGRE_VSID_SHIFT)
    }

    /// NVGRE FlowID (RFC 7637): the low 8 bits of the key, under the same conditions as
    /// [`GreSlice::nvgre_vsid`].
    pub fn nvgre_flow_id(&self) -> Option<u8> {
        self.nvgre_key()
            .map(|key| (key & field::NVGRE_FLOW_ID_MASK) as u8)
    }

    /// Header length including optional fields.
    pub fn header_len(&self) -> usize {
        let ack_len = if self.has_ack() { field::OPTION_LEN } else { 0 };
        self.offset_after(field::C | field::K | field::S) + ack_len
    }

    /// The encapsulated payload.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len()..]
    }

    /// First flag byte.
    fn flags(&self) -> u8 {
        self.bytes[field::FLAGS]
    }

    /// Second flag byte (A, reserved flags, version).
    fn flags_version(&self) -> u8 {
        self.bytes[field::FLAGS_VERSION]
    }

    /// Offset just past the base header and those of the optional words in `present_before`
    /// (flags of byte 0) that are set: the offset of the next optional word.
    fn offset_after(&self, present_before: u8) -> usize {
        // At most three bits, so at most 12 bytes: no overflow.
        let n_words = (self.flags() & present_before).count_ones() as usize;
        field::BASE_LEN + n_words * field::OPTION_LEN
    }

    /// The optional word at `offset` (the constructor checked it is within `bytes`).
    fn option(&self, offset: usize) -> &'a [u8] {
        &self.bytes[offset..offset + field::OPTION_LEN]
    }

    /// One 16-bit half of the v1 key word.
    fn pptp_key_half(&self, half: std::ops::Range<usize>) -> Option<u16> {
        if self.version() != 1 || !self.has_key() {
            return None;
        }
        let key = self.option(self.offset_after(field::C));
        Some(be_u16(&key[half]))
    }

    /// The key when this is NVGRE-shaped: TEB with a key, and C and S clear (RFC 7637 §3.2:
    /// "The C (Checksum Present) and S (Sequence Number Present) bits in the GRE header MUST
    /// be zero"). Linux `gretap ... seq key K` and `csum key K` set them: a plain GRE-TEB key.
    fn nvgre_key(&self) -> Option<u32> {
        if self.version() == 0
            && self.protocol_type() == Self::PROTOCOL_TEB
            && !self.has_checksum()
            && !self.has_sequence()
        {
            self.key()
        } else {
            None
        }
    }

    /// A [`DecodeError::BadFlags`] carrying both flag bytes.
    fn bad_flags(&self) -> DecodeError {
        DecodeError::BadFlags {
            layer: Layer::Gre,
            flags: be_u16(&self.bytes[field::FLAGS_WORD]),
        }
    }
}

impl<'a> PppSlice<'a> {
    /// PPP protocol number of IPv4.
    pub const PROTOCOL_IPV4: u16 = 0x0021;
    /// PPP protocol number of IPv6.
    pub const PROTOCOL_IPV6: u16 = 0x0057;

    /// Parses optional address/control (0xFF 0x03) and a 1- or 2-byte protocol field.
    ///
    /// A 2-byte protocol whose second byte is even is not a PPP protocol number (RFC 1661 §2),
    /// and a leading 0xFF not followed by 0x03 is a damaged address/control field; both are
    /// rejected as [`DecodeError::UnknownPayloadType`] carrying the first two bytes.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let view = PppSlice { bytes };
        let too_small = |needed: usize| DecodeError::HeaderTooSmall {
            layer: Layer::Ppp,
            needed,
            available: bytes.len(),
        };
        // A leading 0xFF is the address byte (0x00FF is a reserved protocol number), so the
        // control byte must follow it.
        if bytes.first() == Some(&ppp_field::ADDRESS) {
            match bytes.get(1) {
                None => {
                    return Err(too_small(
                        ppp_field::ADDRESS_CONTROL.len() + ppp_field::PROTOCOL_COMPRESSED_LEN,
                    ));
                }
                Some(&control) if control != ppp_field::CONTROL => {
                    return Err(DecodeError::UnknownPayloadType {
                        layer: Layer::Ppp,
                        value: u16::from_be_bytes([ppp_field::ADDRESS, control]),
                    });
                }
                Some(_) => {}
            }
        }
        let offset = view.protocol_offset();
        let Some(&first) = bytes.get(offset) else {
            return Err(too_small(offset + ppp_field::PROTOCOL_COMPRESSED_LEN));
        };
        if first & ppp_field::PROTOCOL_LAST_BYTE_BIT == 0 {
            let Some(&second) = bytes.get(offset + 1) else {
                return Err(too_small(offset + ppp_field::PROTOCOL_LEN));
            };
            if second & ppp_field::PROTOCOL_LAST_BYTE_BIT == 0 {
                return Err(DecodeError::UnknownPayloadType {
                    layer: Layer::Ppp,
                    value: u16::from_be_bytes([first, second]),
                });
            }
        }
        Ok(view)
    }

    /// PPP protocol number (0x0021 IPv4, 0x0057 IPv6).
    pub fn protocol(&self) -> u16 {
        let start = self.protocol_offset();
        be_u16(&self.bytes[start..start + self.protocol_len()])
    }

    /// The address and control bytes (0xFF 0x03) are present (not compressed away).
    pub fn has_address_control(&self) -> bool {
        self.bytes.starts_with(&ppp_field::ADDRESS_CONTROL)
    }

    /// The protocol field is compressed to one byte.
    pub fn is_protocol_compressed(&self) -> bool {
        self.protocol_len() == ppp_field::PROTOCOL_COMPRESSED_LEN
    }

    /// Header length: address/control (0 or 2) plus the protocol field (1 or 2).
    pub fn header_len(&self) -> usize {
        self.protocol_offset() + self.protocol_len()
    }

    /// The PPP payload.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len()..]
    }

    /// Offset of the protocol field: after FF 03 if present (RFC 1662 §3.2: a receiver that
    /// sees FF 03 takes them as address and control, otherwise they were compressed).
    fn protocol_offset(&self) -> usize {
        if self.has_address_control() {
            ppp_field::ADDRESS_CONTROL.len()
        } else {
            0
        }
    }

    /// Length of the protocol field (the constructor checked it is present).
    fn protocol_len(&self) -> usize {
        let first = self.bytes[self.protocol_offset()];
        if first & ppp_field::PROTOCOL_LAST_BYTE_BIT != 0 {
            ppp_field::PROTOCOL_COMPRESSED_LEN
        } else {
            ppp_field::PROTOCOL_LEN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- Captured headers ----------------------------------------------------------------

    /// tcpdump__various_gre.pcap, packet 2 (10.172.64.6 > 10.172.64.7, keepalive reply):
    /// GRE v0 with only the key, protocol 0, no payload.
    static GRE_V0_KEY_KEEPALIVE: [u8; 8] = [
        0x20, 0x00, // flags: K; version 0
        0x00, 0x00, // protocol type 0 (keepalive)
        0x00, 0x00, 0x00, 0x28, // key 0x28
    ];

    /// zeek__erspanII.pcap, packet 1 (2.2.2.2 > 1.1.1.1): GRE v0 with a sequence number,
    /// protocol ERSPAN (type II, since S is set), then the first bytes of the ERSPAN header.
    static GRE_V0_SEQ_ERSPAN: [u8; 12] = [
        0x10, 0x00, // flags: S; version 0
        0x88, 0xbe, // protocol type ERSPAN
        0x00, 0x00, 0x07, 0x04, // sequence 1796
        // ERSPAN II header (payload)
        0x10, 0x17, 0x08, 0x64,
    ];

    /// zeek__erspan.pcap, packet 1 (10.200.0.3 > 10.200.0.224): GRE-TEB with a zero key, which
    /// reads as NVGRE VSID 0, then the start of the inner Ethernet header.
    static GRE_V0_TEB_KEY: [u8; 14] = [
        0x20, 0x00, // flags: K; version 0
        0x65, 0x58, // protocol type transparent Ethernet bridging
        0x00, 0x00, 0x00, 0x00, // key 0 (VSID 0, FlowID 0)
        // inner Ethernet destination
        0x00, 0x50, 0x56, 0x82, 0x08, 0xd1,
    ];

    /// Synthetic (no stored capture carries a GRE checksum): v0 with C, K and S, all three
    /// optional words in RFC 2890 order, IPv4 payload.
    static GRE_V0_ALL_OPTIONS: [u8; 18] = [
        0xb0, 0x00, // flags: C, K, S; version 0
        0x08, 0x00, // protocol type IPv4
        0xab, 0xcd, 0x00, 0x00, // checksum 0xabcd, reserved1
        0x00, 0x00, 0x01, 0x00, // key 256
        0x00, 0x00, 0x00, 0x07, // sequence 7
        0x45, 0x00, // payload: start of an IPv4 header
    ];

    /// zeek__gre-pptp.pcap, packet 1 (16.0.0.200 > 192.52.166.154): GRE v1 with key, sequence
    /// and acknowledgement, then PPP with address/control carrying IPv4.
    static GRE_V1_SEQ_ACK: [u8; 21] = [
        0x30, 0x81, // flags: K, S; A; version 1
        0x88, 0x0b, // protocol type PPP
        0x00, 0x67, 0x17, 0x80, // key: payload length 103, call ID 6016
        0x00, 0x06, 0x8f, 0xb1, // sequence 430001
        0x00, 0x08, 0x3a, 0x76, // acknowledgement 539254
        // PPP: address, control, protocol 0x0021 (IPv4), first IPv4 byte
        0xff, 0x03, 0x00, 0x21, 0x45,
    ];

    /// tcpdump__pptp.pcap, packet with 10.1.1.11 > 10.1.1.10 GREv1: key and sequence, no
    /// acknowledgement; PPP LCP Configure-Request.
    static GRE_V1_SEQ: [u8; 20] = [
        0x30, 0x01, // flags: K, S; version 1
        0x88, 0x0b, // protocol type PPP
        0x00, 0x30, 0x00, 0x00, // key: payload length 48, call ID 0
        0x00, 0x00, 0x00, 0x00, // sequence 0
        // PPP: address, control, protocol 0xc021 (LCP), code 1, id 0, length 0x2c
        0xff, 0x03, 0xc0, 0x21, 0x01, 0x00, 0x00, 0x2c,
    ];

    /// tcpdump__gre-heapoverflow-2.pcap: C and R set in v0 (and reserved flags 0x30); the
    /// rest of the bytes are filler '0's.
    static GRE_HEAPOVERFLOW_ROUTING: [u8; 14] = [
        0xc0, 0x30, // flags: C, R; reserved flags 0x30; version 0
        0x30, 0x30, // protocol type
        0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, // filler
    ];

    /// tcpdump__gre-heapoverflow-1.pcap: the IP header claims 32 bytes, which leaves two bytes
    /// of GRE.
    static GRE_HEAPOVERFLOW_SHORT: [u8; 2] = [0xd8, 0x30];

    /// tcpdump__erspan-type-iii-pb-1.pcap: GRE v0 with S and the strict source route bit (and
    /// recursion 5), protocol ERSPAN III.
    static GRE_STRICT_SOURCE_ROUTE: [u8; 8] = [
        0x1d, 0x00, // flags: S, s, recursion 5; version 0
        0x22, 0xeb, // protocol type ERSPAN III
        0xff, 0x28, 0x01, 0x01, // sequence
    ];

    /// Suricata DecodeGREtest02 (src/decode-gre.c): v1 flags with protocol type 0x0b00.
    static GRE_V1_WRONG_PROTOCOL: [u8; 12] = [
        0x30, 0x01, // flags: K, S; version 1
        0x0b, 0x00, // protocol type 0x0b00, not PPP
        0x4e, 0x00, 0x00, 0x00, // key
        0x18, 0x4a, 0x50, 0xff, // sequence
    ];

    /// sv__bug-6942-6887-defrag-eth-ip-gre-ppp-ip-udp-data_eth-ip-gre-ppp-max-ip-packet.pcap,
    /// packet 1, after a 4-byte GRE v0 header with protocol PPP: no address/control, protocol
    /// field compressed to 0x21 (IPv4).
    static PPP_COMPRESSED: [u8; 4] = [
        0x21, // protocol 0x0021 (IPv4), compressed
        0x45, 0x00, 0x00, // IPv4 header start
    ];

    fn too_small(layer: Layer, needed: usize, available: usize) -> DecodeError {
        DecodeError::HeaderTooSmall {
            layer,
            needed,
            available,
        }
    }

    // ---- GRE: known bytes ----------------------------------------------------------------

    #[test]
    fn parses_known_bytes() {
        let gre = GreSlice::from_slice(&GRE_V0_KEY_KEEPALIVE).unwrap();
        assert_eq!(gre.version(), 0);
        assert_eq!(gre.protocol_type(), 0);
        assert_eq!(gre.key(), Some(0x28));
        assert_eq!(
            (gre.checksum(), gre.sequence(), gre.ack()),
            (None, None, None)
        );
        assert_eq!(gre.header_len(), 8);
        assert!(gre.payload().is_empty());
        assert_eq!(gre.nvgre_vsid(), None);
        assert_eq!((gre.call_id(), gre.payload_length()), (None, None));

        let gre = GreSlice::from_slice(&GRE_V0_SEQ_ERSPAN).unwrap();
        assert_eq!(gre.protocol_type(), GreSlice::PROTOCOL_ERSPAN);
        assert!(gre.has_sequence() && !gre.has_key() && !gre.has_checksum());
        assert_eq!(gre.sequence(), Some(1796));
        assert_eq!(gre.key(), None);
        assert_eq!(gre.header_len(), 8);
        assert_eq!(gre.payload(), &[0x10, 0x17, 0x08, 0x64]);

        let gre = GreSlice::from_slice(&GRE_V0_TEB_KEY).unwrap();
        assert_eq!(gre.protocol_type(), GreSlice::PROTOCOL_TEB);
        assert_eq!(gre.nvgre_vsid(), Some(0));
        assert_eq!(gre.nvgre_flow_id(), Some(0));
        assert_eq!(gre.payload().len(), 6);

        let gre = GreSlice::from_slice(&GRE_V0_ALL_OPTIONS).unwrap();
        assert_eq!(gre.protocol_type(), 0x0800);
        assert_eq!(gre.checksum(), Some(0xabcd));
        assert_eq!(gre.key(), Some(256));
        assert_eq!(gre.sequence(), Some(7));
        assert_eq!(gre.ack(), None);
        assert_eq!(gre.header_len(), 16);
        assert_eq!(gre.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn parses_known_bytes_v1() {
        let gre = GreSlice::from_slice(&GRE_V1_SEQ_ACK).unwrap();
        assert_eq!(gre.version(), 1);
        assert_eq!(gre.protocol_type(), GreSlice::PROTOCOL_PPP);
        assert_eq!(gre.key(), Some(0x0067_1780));
        assert_eq!(gre.call_id(), Some(6016));
        assert_eq!(gre.payload_length(), Some(103));
        assert_eq!(gre.sequence(), Some(430_001));
        assert_eq!(gre.ack(), Some(539_254));
        assert_eq!(gre.checksum(), None);
        assert_eq!(gre.header_len(), 16);
        let ppp = PppSlice::from_slice(gre.payload()).unwrap();
        assert_eq!(ppp.protocol(), PppSlice::PROTOCOL_IPV4);
        assert_eq!(ppp.payload(), &[0x45]);

        let gre = GreSlice::from_slice(&GRE_V1_SEQ).unwrap();
        assert_eq!(gre.call_id(), Some(0));
        assert_eq!(gre.payload_length(), Some(48));
        assert_eq!(gre.sequence(), Some(0));
        assert_eq!(gre.ack(), None);
        assert!(!gre.has_ack());
        assert_eq!(gre.header_len(), 12);
        let ppp = PppSlice::from_slice(gre.payload()).unwrap();
        assert_eq!(ppp.protocol(), 0xc021);
        assert!(ppp.has_address_control() && !ppp.is_protocol_compressed());
        assert_eq!(ppp.header_len(), 4);
        assert_eq!(ppp.payload(), &[0x01, 0x00, 0x00, 0x2c]);
    }

    #[test]
    fn ignores_ack_bit_in_v0() {
        // GRE_V0_KEY_KEEPALIVE with the A bit set: v0 has no acknowledgement word.
        let mut bytes = GRE_V0_KEY_KEEPALIVE;
        bytes[1] |= field::A;
        let gre = GreSlice::from_slice(&bytes).unwrap();
        assert!(!gre.has_ack());
        assert_eq!(gre.ack(), None);
        assert_eq!(gre.header_len(), 8);
    }

    #[test]
    fn ignores_recursion() {
        // GRE_V0_SEQ_ERSPAN with recursion 7.
        let mut bytes = GRE_V0_SEQ_ERSPAN;
        bytes[0] |= field::RECURSION;
        let gre = GreSlice::from_slice(&bytes).unwrap();
        assert_eq!(gre.recursion(), 7);
        assert_eq!(gre.sequence(), Some(1796));
    }

    // ---- GRE: truncation -----------------------------------------------------------------

    #[test]
    fn rejects_truncated_header() {
        assert_eq!(
            GreSlice::from_slice(&GRE_HEAPOVERFLOW_SHORT).unwrap_err(),
            too_small(Layer::Gre, 4, 2)
        );
        assert_eq!(
            GreSlice::from_slice(&[]).unwrap_err(),
            too_small(Layer::Gre, 4, 0)
        );
    }

    #[test]
    fn rejects_truncated_checksum() {
        // C only: needs 8 bytes.
        let bytes = [0x80, 0x00, 0x08, 0x00, 0xab, 0xcd, 0x00];
        assert_eq!(
            GreSlice::from_slice(&bytes).unwrap_err(),
            too_small(Layer::Gre, 8, 7)
        );
        assert_eq!(
            GreSlice::from_slice(&GRE_V0_ALL_OPTIONS[..5]).unwrap_err(),
            too_small(Layer::Gre, 16, 5)
        );
    }

    #[test]
    fn rejects_truncated_key() {
        assert_eq!(
            GreSlice::from_slice(&GRE_V0_KEY_KEEPALIVE[..7]).unwrap_err(),
            too_small(Layer::Gre, 8, 7)
        );
        assert_eq!(
            GreSlice::from_slice(&GRE_V0_ALL_OPTIONS[..11]).unwrap_err(),
            too_small(Layer::Gre, 16, 11)
        );
        // v1: the key is mandatory, so even without S and A it needs 8 bytes.
        let v1 = [0x20, 0x01, 0x88, 0x0b, 0x00, 0x00, 0x00];
        assert_eq!(
            GreSlice::from_slice(&v1).unwrap_err(),
            too_small(Layer::Gre, 8, 7)
        );
    }

    #[test]
    fn rejects_truncated_sequence() {
        assert_eq!(
            GreSlice::from_slice(&GRE_V0_SEQ_ERSPAN[..7]).unwrap_err(),
            too_small(Layer::Gre, 8, 7)
        );
        assert_eq!(
            GreSlice::from_slice(&GRE_V0_ALL_OPTIONS[..15]).unwrap_err(),
            too_small(Layer::Gre, 16, 15)
        );
        assert_eq!(
            GreSlice::from_slice(&GRE_V1_SEQ[..11]).unwrap_err(),
            too_small(Layer::Gre, 12, 11)
        );
    }

    #[test]
    fn rejects_truncated_ack() {
        assert_eq!(
            GreSlice::from_slice(&GRE_V1_SEQ_ACK[..15]).unwrap_err(),
            too_small(Layer::Gre, 16, 15)
        );
        // v1 with K and A but no S: the acknowledgement is the third word.
        let bytes = [0x20, 0x81, 0x88, 0x0b, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(
            GreSlice::from_slice(&bytes).unwrap_err(),
            too_small(Layer::Gre, 12, 11)
        );
        let mut complete = bytes.to_vec();
        complete.push(9);
        let gre = GreSlice::from_slice(&complete).unwrap();
        assert_eq!((gre.sequence(), gre.ack()), (None, Some(9)));
    }

    // ---- GRE: bad values -----------------------------------------------------------------

    #[test]
    fn rejects_bad_flags() {
        // Routing (and reserved flags) in v0.
        assert_eq!(
            GreSlice::from_slice(&GRE_HEAPOVERFLOW_ROUTING).unwrap_err(),
            DecodeError::BadFlags {
                layer: Layer::Gre,
                flags: 0xc030
            }
        );
        // Strict source route in v0.
        assert_eq!(
            GreSlice::from_slice(&GRE_STRICT_SOURCE_ROUTE).unwrap_err(),
            DecodeError::BadFlags {
                layer: Layer::Gre,
                flags: 0x1d00
            }
        );
        // Each reserved flag bit alone, in v0 and v1.
        for bit in [0x08, 0x10, 0x20, 0x40] {
            let mut v0 = GRE_V0_KEY_KEEPALIVE;
            v0[1] |= bit;
            let mut v1 = GRE_V1_SEQ;
            v1[1] |= bit;
            for bytes in [&v0[..], &v1[..]] {
                assert!(
                    matches!(
                        GreSlice::from_slice(bytes),
                        Err(DecodeError::BadFlags { layer: Layer::Gre, flags }) if flags & 0x78 == u16::from(bit)
                    ),
                    "reserved bit {bit:#04x}"
                );
            }
        }
        // v1: checksum, routing, strict source route set, or key clear.
        for (set, clear) in [(0x80, 0), (0x40, 0), (0x08, 0), (0, 0x20)] {
            let mut v1 = GRE_V1_SEQ;
            v1[0] = (v1[0] | set) & !clear;
            assert_eq!(
                GreSlice::from_slice(&v1).unwrap_err(),
                DecodeError::BadFlags {
                    layer: Layer::Gre,
                    flags: u16::from_be_bytes([v1[0], v1[1]])
                }
            );
        }
    }

    #[test]
    fn rejects_bad_version() {
        for version in 2..=7u8 {
            let bytes = [0x00, version, 0x08, 0x00, 0x45];
            assert_eq!(
                GreSlice::from_slice(&bytes).unwrap_err(),
                DecodeError::UnsupportedVersion {
                    layer: Layer::Gre,
                    version
                }
            );
        }
    }

    #[test]
    fn rejects_bad_protocol_type() {
        assert_eq!(
            GreSlice::from_slice(&GRE_V1_WRONG_PROTOCOL).unwrap_err(),
            DecodeError::UnknownPayloadType {
                layer: Layer::Gre,
                value: 0x0b00
            }
        );
    }

    // ---- PPP -------------------------------------------------------------------------------

    #[test]
    fn parses_known_bytes_ppp() {
        let ppp = PppSlice::from_slice(&PPP_COMPRESSED).unwrap();
        assert_eq!(ppp.protocol(), PppSlice::PROTOCOL_IPV4);
        assert!(!ppp.has_address_control() && ppp.is_protocol_compressed());
        assert_eq!(ppp.header_len(), 1);
        assert_eq!(ppp.payload(), &[0x45, 0x00, 0x00]);

        // Address/control with a compressed protocol (IPv6).
        let ppp = PppSlice::from_slice(&[0xff, 0x03, 0x57, 0x60]).unwrap();
        assert_eq!(ppp.protocol(), PppSlice::PROTOCOL_IPV6);
        assert_eq!(ppp.header_len(), 3);
        assert_eq!(ppp.payload(), &[0x60]);

        // No address/control, full protocol field.
        let ppp = PppSlice::from_slice(&[0x00, 0x57]).unwrap();
        assert_eq!(ppp.protocol(), PppSlice::PROTOCOL_IPV6);
        assert!(ppp.payload().is_empty());
    }

    #[test]
    fn rejects_truncated_ppp_protocol() {
        assert_eq!(
            PppSlice::from_slice(&[]).unwrap_err(),
            too_small(Layer::Ppp, 1, 0)
        );
        assert_eq!(
            PppSlice::from_slice(&[0xff, 0x03]).unwrap_err(),
            too_small(Layer::Ppp, 3, 2)
        );
        assert_eq!(
            PppSlice::from_slice(&[0xff, 0x03, 0x00]).unwrap_err(),
            too_small(Layer::Ppp, 4, 3)
        );
        assert_eq!(
            PppSlice::from_slice(&[0x00]).unwrap_err(),
            too_small(Layer::Ppp, 2, 1)
        );
    }

    #[test]
    fn rejects_bad_ppp_address_control() {
        // 0xFF must be followed by the control byte; a lone 0xFF is a cut address/control.
        assert_eq!(
            PppSlice::from_slice(&[0xff]).unwrap_err(),
            too_small(Layer::Ppp, 3, 1)
        );
        assert_eq!(
            PppSlice::from_slice(&[0xff, 0x21, 0x45]).unwrap_err(),
            DecodeError::UnknownPayloadType {
                layer: Layer::Ppp,
                value: 0xff21
            }
        );
    }

    #[test]
    fn rejects_bad_ppp_protocol() {
        assert_eq!(
            PppSlice::from_slice(&[0xff, 0x03, 0x00, 0x20, 0x45]).unwrap_err(),
            DecodeError::UnknownPayloadType {
                layer: Layer::Ppp,
                value: 0x0020
            }
        );
    }

    // ---- Property tests ------------------------------------------------------------------

    /// Fields a test-only encoder turns into a GRE header.
    #[derive(Clone, Debug)]
    struct GreFields {
        version: u8,
        recursion: u8,
        protocol: u16,
        checksum: Option<u16>,
        key: Option<u32>,
        sequence: Option<u32>,
        ack: Option<u32>,
    }

    fn encode_gre(f: &GreFields, payload: &[u8]) -> Vec<u8> {
        let mut flags = f.recursion & 0x07;
        if f.checksum.is_some() {
            flags |= 0x80;
        }
        if f.key.is_some() {
            flags |= 0x20;
        }
        if f.sequence.is_some() {
            flags |= 0x10;
        }
        let mut flags_version = f.version;
        if f.ack.is_some() {
            flags_version |= 0x80;
        }
        let mut out = vec![flags, flags_version];
        out.extend_from_slice(&f.protocol.to_be_bytes());
        if let Some(checksum) = f.checksum {
            out.extend_from_slice(&checksum.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
        for word in [f.key, f.sequence, f.ack].into_iter().flatten() {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    fn gre_v0_fields() -> impl Strategy<Value = GreFields> {
        (
            0..8u8,
            prop_oneof![Just(0x6558u16), Just(0x88be), any::<u16>()],
            any::<Option<u16>>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
        )
            .prop_map(|(recursion, protocol, checksum, key, sequence)| GreFields {
                version: 0,
                recursion,
                protocol,
                checksum,
                key,
                sequence,
                ack: None,
            })
    }

    fn gre_v1_fields() -> impl Strategy<Value = GreFields> {
        (
            0..8u8,
            any::<u32>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
        )
            .prop_map(|(recursion, key, sequence, ack)| GreFields {
                version: 1,
                recursion,
                protocol: GreSlice::PROTOCOL_PPP,
                checksum: None,
                key: Some(key),
                sequence,
                ack,
            })
    }

    fn gre_fields() -> impl Strategy<Value = GreFields> {
        prop_oneof![gre_v0_fields(), gre_v1_fields()]
    }

    /// The acceptance rules of the module doc, written independently of the decoder.
    fn model_accepts(flags: u8, flags_version: u8, protocol: u16) -> bool {
        let reserved_clear = flags_version & 0x78 == 0;
        match flags_version & 0x07 {
            0 => flags & 0x48 == 0 && reserved_clear,
            1 => {
                flags & 0xc8 == 0
                    && flags & 0x20 != 0
                    && reserved_clear
                    && protocol == GreSlice::PROTOCOL_PPP
            }
            _ => false,
        }
    }

    /// A valid PPP protocol number and whether to send it compressed: either one odd byte
    /// other than the reserved 0xFF, or an even first byte and an odd second byte.
    fn ppp_protocol() -> impl Strategy<Value = (u16, bool)> {
        prop_oneof![
            (0..0x7fu8).prop_map(|b| (u16::from((b << 1) | 1), true)),
            (any::<u8>(), any::<u8>())
                .prop_map(|(hi, lo)| (u16::from_be_bytes([hi & 0xfe, lo | 1]), false)),
        ]
    }

    fn exercise_gre(gre: &GreSlice<'_>, len: usize) {
        assert!(gre.header_len() >= 4 && gre.header_len() <= GreSlice::MAX_LEN);
        assert!(gre.header_len() <= len);
        assert_eq!(gre.payload().len(), len - gre.header_len());
        assert!(gre.version() <= 1);
        let _ = (
            gre.protocol_type(),
            gre.recursion(),
            gre.checksum(),
            gre.key(),
            gre.sequence(),
            gre.ack(),
            gre.call_id(),
            gre.payload_length(),
            gre.nvgre_vsid(),
            gre.nvgre_flow_id(),
        );
    }

    fn exercise_ppp(ppp: &PppSlice<'_>, len: usize) {
        assert!((1..=4).contains(&ppp.header_len()));
        assert_eq!(ppp.payload().len(), len - ppp.header_len());
        assert_eq!(ppp.protocol() & 1, 1, "PPP protocol numbers are odd");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(gre) = GreSlice::from_slice(&bytes) {
                exercise_gre(&gre, bytes.len());
            }
            if let Ok(ppp) = PppSlice::from_slice(&bytes) {
                exercise_ppp(&ppp, bytes.len());
            }
        }

        #[test]
        fn accepts_exactly_valid_flags(
            flags in any::<u8>(),
            flags_version in any::<u8>(),
            protocol in prop_oneof![Just(GreSlice::PROTOCOL_PPP), any::<u16>()],
            rest in proptest::collection::vec(any::<u8>(), 16..24),
        ) {
            let mut bytes = vec![flags, flags_version];
            bytes.extend_from_slice(&protocol.to_be_bytes());
            bytes.extend_from_slice(&rest);
            // 20 bytes or more: every optional field fits, so only the flag rules decide.
            prop_assert_eq!(
                GreSlice::from_slice(&bytes).is_ok(),
                model_accepts(flags, flags_version, protocol)
            );
        }

        #[test]
        fn round_trips_generated_headers(
            fields in gre_fields(),
            payload in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let bytes = encode_gre(&fields, &payload);
            let gre = GreSlice::from_slice(&bytes).unwrap();
            prop_assert_eq!(gre.version(), fields.version);
            prop_assert_eq!(gre.recursion(), fields.recursion);
            prop_assert_eq!(gre.protocol_type(), fields.protocol);
            prop_assert_eq!(gre.checksum(), fields.checksum);
            prop_assert_eq!(gre.key(), fields.key);
            prop_assert_eq!(gre.sequence(), fields.sequence);
            prop_assert_eq!(gre.ack(), fields.ack);
            prop_assert_eq!(gre.header_len(), bytes.len() - payload.len());
            prop_assert_eq!(gre.payload(), &payload[..]);
            let pptp = fields.version == 1;
            prop_assert_eq!(gre.call_id(), fields.key.filter(|_| pptp).map(|k| k as u16));
            prop_assert_eq!(
                gre.payload_length(),
                fields.key.filter(|_| pptp).map(|k| (k >> 16) as u16)
            );
            let nvgre = fields.version == 0
                && fields.protocol == GreSlice::PROTOCOL_TEB
                && fields.checksum.is_none()
                && fields.sequence.is_none();
            prop_assert_eq!(gre.nvgre_vsid(), fields.key.filter(|_| nvgre).map(|k| k >> 8));
        }

        #[test]
        fn rejects_every_truncated_prefix(fields in gre_fields()) {
            let bytes = encode_gre(&fields, &[]);
            for n in 0..bytes.len() {
                let needed = if n < 4 { 4 } else { bytes.len() };
                prop_assert_eq!(
                    GreSlice::from_slice(&bytes[..n]).unwrap_err(),
                    too_small(Layer::Gre, needed, n)
                );
            }
        }

        #[test]
        fn ppp_round_trips_and_rejects_prefixes(
            address_control in any::<bool>(),
            (protocol, compressed) in ppp_protocol(),
            payload in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut bytes = Vec::new();
            if address_control {
                bytes.extend_from_slice(&[0xff, 0x03]);
            }
            if compressed {
                bytes.push(protocol as u8);
            } else {
                bytes.extend_from_slice(&protocol.to_be_bytes());
            }
            let header_len = bytes.len();
            for n in 0..header_len {
                let rejected = matches!(
                    PppSlice::from_slice(&bytes[..n]),
                    Err(DecodeError::HeaderTooSmall { layer: Layer::Ppp, available, .. }) if available == n
                );
                prop_assert!(rejected, "prefix of {} bytes", n);
            }
            bytes.extend_from_slice(&payload);
            let ppp = PppSlice::from_slice(&bytes).unwrap();
            prop_assert_eq!(ppp.protocol(), protocol);
            prop_assert_eq!(ppp.has_address_control(), address_control);
            prop_assert_eq!(ppp.header_len(), header_len);
            prop_assert_eq!(ppp.payload(), &payload[..]);
        }
    }
}
