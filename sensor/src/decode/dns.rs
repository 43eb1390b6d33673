//! DNS message header (RFC 1035 §4.1.1): just enough to pair a response with its query.
//!
//! `DnsHeaderSlice::from_slice` checks the 12-byte fixed header; accessors cannot fail
//! afterwards. Whether a UDP datagram is DNS at all is the caller's choice (port 53, 5353):
//! any 12 bytes parse, so this view is never used to *probe* for DNS.

use super::bytes::be_u16;

/// Offsets of the fixed header fields.
mod field {
    use std::ops::Range;
    pub(super) const ID: Range<usize> = 0..2;
    pub(super) const FLAGS: Range<usize> = 2..4;
    pub(super) const QDCOUNT: Range<usize> = 4..6;
    pub(super) const ANCOUNT: Range<usize> = 6..8;
    pub(super) const HEADER_LEN: usize = 12;
}

/// Length of the fixed DNS header.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// Zero-copy view of a DNS message (header checked, body unparsed).
#[derive(Clone, Copy, Debug)]
pub struct DnsHeaderSlice<'a> {
    bytes: &'a [u8],
}

impl<'a> DnsHeaderSlice<'a> {
    /// Checks that `bytes` holds at least the fixed header.
    pub fn from_slice(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() >= HEADER_LEN).then_some(DnsHeaderSlice { bytes })
    }

    /// Transaction id.
    pub fn id(&self) -> u16 {
        be_u16(self.bytes.get(field::ID).unwrap_or_default())
    }

    /// QR bit: a response.
    pub fn is_response(&self) -> bool {
        be_u16(self.bytes.get(field::FLAGS).unwrap_or_default()) & 0x8000 != 0
    }

    /// Response code (low 4 bits of the flags).
    pub fn rcode(&self) -> u8 {
        (be_u16(self.bytes.get(field::FLAGS).unwrap_or_default()) & 0x000f) as u8
    }

    /// Questions.
    pub fn question_count(&self) -> u16 {
        be_u16(self.bytes.get(field::QDCOUNT).unwrap_or_default())
    }

    /// Answer records.
    pub fn answer_count(&self) -> u16 {
        be_u16(self.bytes.get(field::ANCOUNT).unwrap_or_default())
    }

    /// The whole message, header included.
    pub fn message(&self) -> &'a [u8] {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response: id 0x1a2b, flags 0x8180 (QR, RD, RA, NOERROR), 1 question, 2 answers.
    static RESPONSE: [u8; 12] = [
        0x1a, 0x2b, // id
        0x81, 0x80, // flags
        0x00, 0x01, // qdcount
        0x00, 0x02, // ancount
        0x00, 0x00, // nscount
        0x00, 0x00, // arcount
    ];

    #[test]
    fn parses_known_bytes() {
        let h = DnsHeaderSlice::from_slice(&RESPONSE).unwrap();
        assert_eq!(h.id(), 0x1a2b);
        assert!(h.is_response());
        assert_eq!(h.rcode(), 0);
        assert_eq!(h.question_count(), 1);
        assert_eq!(h.answer_count(), 2);
        let mut query = RESPONSE;
        query[2] = 0x01;
        query[3] = 0x03;
        let q = DnsHeaderSlice::from_slice(&query).unwrap();
        assert!(!q.is_response());
        assert_eq!(q.rcode(), 3);
    }

    #[test]
    fn rejects_truncated_header() {
        for n in 0..HEADER_LEN {
            assert!(DnsHeaderSlice::from_slice(&RESPONSE[..n]).is_none());
        }
    }
}
