//! DNS messages (RFC 1035 §4.1): the fixed header, to pair a response with its query, and a
//! passive read of a response's question name and A/AAAA answers, to learn which name an
//! address was resolved from.
//!
//! `DnsHeaderSlice::from_slice` checks the 12-byte fixed header; accessors cannot fail
//! afterwards. Whether a UDP datagram is DNS at all is the caller's choice (port 53, 5353):
//! any 12 bytes parse, so this view is never used to *probe* for DNS.
//!
//! The body walk ([`DnsHeaderSlice::question_name`], [`DnsHeaderSlice::for_each_address`]) is
//! hand-written over bounds-checked reads: it allocates nothing, follows compression pointers
//! (RFC 1035 §4.1.4) only backwards and at most [`MAX_POINTERS`] times, and stops at the first
//! record that does not fit, keeping what came before. The crates we looked at (hickory-proto,
//! dns-parser) build owned records (`Vec`, `String`) per message, which the capture thread
//! must not do per packet.
//!
//! The cost of one message is bounded whatever its header claims (issue 19: a 1.5 KB message
//! claiming 65,535 questions, each a pointer to a long name, cost 100 times an ordinary
//! answer): at most [`MAX_QUESTIONS`] questions and [`MAX_ANSWERS`] answers are walked, and
//! [`MAX_LABEL_HOPS`] labels and pointers over the whole message. A message beyond a cap is
//! [`DnsWalk::OverLimit`], which the caller counts.

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

/// Longest name in presentation form (RFC 1035 §2.3.4: 255 octets on the wire).
pub const MAX_NAME_LEN: usize = 255;

/// Compression pointers followed within one name before it is judged a loop.
pub const MAX_POINTERS: usize = 16;

/// Answer records looked at per message.
pub const MAX_ANSWERS: usize = 64;

/// Questions walked per message (real queries carry one; RFC 9619 makes more than one an
/// error).
pub const MAX_QUESTIONS: usize = 4;

/// Labels and compression pointers read over a whole message. Names that are only skipped
/// (every one but the first question's) stop at their first pointer, so an ordinary answer
/// of 64 records spends about 70; a message of literal one-byte labels spends one per two
/// bytes, and this caps it at about a third of a full-size message.
pub const MAX_LABEL_HOPS: usize = 256;

/// How a walk over a message's records ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsWalk {
    /// Every record the header claims was read.
    Complete,
    /// A record did not fit or was malformed; the walk stopped there, keeping what came before.
    Stopped,
    /// The header claims more questions or answers than are walked, or the names need more
    /// label hops than allowed: the walk stopped at the cap (a counted event).
    OverLimit,
}

/// Resource record type A (RFC 1035 §3.2.2).
const TYPE_A: u16 = 1;
/// Resource record type AAAA (RFC 3596 §2.1).
const TYPE_AAAA: u16 = 28;
/// Class IN.
const CLASS_IN: u16 = 1;
/// Type, class, TTL and RDLENGTH after a record's owner name.
const RR_FIXED_LEN: usize = 10;
/// Type and class after a question's name.
const QUESTION_FIXED_LEN: usize = 4;

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

    /// The first question's name, lower-cased and dotted (no trailing dot), written into
    /// `out`; returns its length. `None` when there is no question or its name is malformed
    /// (a label beyond the message, a pointer loop, longer than [`MAX_NAME_LEN`]).
    pub fn question_name(&self, out: &mut [u8; MAX_NAME_LEN]) -> Option<usize> {
        if self.question_count() == 0 {
            return None;
        }
        let mut hops = MAX_LABEL_HOPS;
        let (_, len) = read_name(self.bytes, HEADER_LEN, Some(out), &mut hops)?;
        Some(len)
    }

    /// Calls `f` with the address of every A or AAAA answer record (class IN), in message
    /// order, at most [`MAX_ANSWERS`]. Stops at the first record that does not fit, and at
    /// the caps (see the module doc): a message claiming more than [`MAX_QUESTIONS`]
    /// questions is not walked at all.
    pub fn for_each_address(&self, mut f: impl FnMut(std::net::IpAddr)) -> DnsWalk {
        let questions = usize::from(self.question_count());
        if questions > MAX_QUESTIONS {
            return DnsWalk::OverLimit;
        }
        let mut hops = MAX_LABEL_HOPS;
        let stopped = |hops: usize| {
            if hops == 0 {
                DnsWalk::OverLimit
            } else {
                DnsWalk::Stopped
            }
        };
        let mut pos = HEADER_LEN;
        for _ in 0..questions {
            let Some((end, _)) = read_name(self.bytes, pos, None, &mut hops) else {
                return stopped(hops);
            };
            pos = end + QUESTION_FIXED_LEN;
        }
        let claimed = usize::from(self.answer_count());
        for _ in 0..claimed.min(MAX_ANSWERS) {
            let Some((end, _)) = read_name(self.bytes, pos, None, &mut hops) else {
                return stopped(hops);
            };
            let Some(fixed) = self.bytes.get(end..end + RR_FIXED_LEN) else {
                return DnsWalk::Stopped;
            };
            let rtype = be_u16(fixed.get(0..2).unwrap_or_default());
            let class = be_u16(fixed.get(2..4).unwrap_or_default());
            let rdlen = usize::from(be_u16(fixed.get(8..10).unwrap_or_default()));
            let rdata_at = end + RR_FIXED_LEN;
            let Some(rdata) = self.bytes.get(rdata_at..rdata_at + rdlen) else {
                return DnsWalk::Stopped;
            };
            if class == CLASS_IN {
                match (rtype, rdata.len()) {
                    (TYPE_A, 4) => {
                        let mut a = [0u8; 4];
                        a.copy_from_slice(rdata);
                        f(std::net::IpAddr::from(a));
                    }
                    (TYPE_AAAA, 16) => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(rdata);
                        f(std::net::IpAddr::from(a));
                    }
                    _ => {}
                }
            }
            pos = rdata_at + rdlen;
        }
        if claimed > MAX_ANSWERS {
            DnsWalk::OverLimit
        } else {
            DnsWalk::Complete
        }
    }
}

/// Reads the (possibly compressed) name at `start`: returns the offset just after it in the
/// message (after the first pointer, if any) and, with `out`, writes its dotted lower-case
/// form there and returns that length. Without `out` the name is only skipped: it ends at
/// its first pointer (checked, not followed) and the length returned is that of the labels
/// before it. Each label and pointer spends one of `hops` (the message's budget); `None`
/// when it runs out.
fn read_name(
    msg: &[u8],
    start: usize,
    mut out: Option<&mut [u8; MAX_NAME_LEN]>,
    hops: &mut usize,
) -> Option<(usize, usize)> {
    let mut pos = start;
    let mut end = None;
    let mut pointers = 0;
    let mut len = 0usize;
    loop {
        *hops = hops.checked_sub(1)?;
        let b = *msg.get(pos)?;
        match b & 0xc0 {
            0x00 => {
                if b == 0 {
                    return Some((end.unwrap_or(pos + 1), len));
                }
                let label = msg.get(pos + 1..pos + 1 + usize::from(b))?;
                let dot = usize::from(len > 0);
                if len + dot + label.len() > MAX_NAME_LEN {
                    return None;
                }
                if let Some(out) = out.as_deref_mut() {
                    if dot == 1 {
                        *out.get_mut(len)? = b'.';
                    }
                    let dst = out.get_mut(len + dot..len + dot + label.len())?;
                    for (d, s) in dst.iter_mut().zip(label) {
                        *d = s.to_ascii_lowercase();
                    }
                }
                len += dot + label.len();
                pos += 1 + label.len();
            }
            0xc0 => {
                let low = *msg.get(pos + 1)?;
                let target = (usize::from(b & 0x3f) << 8) | usize::from(low);
                // Only backwards: a forward or self pointer cannot be a valid compression.
                if target >= pos || pointers >= MAX_POINTERS {
                    return None;
                }
                // A name only skipped ends here: following the pointer would re-read bytes
                // already counted (the amplification a hostile message is built from).
                if out.is_none() {
                    return Some((end.unwrap_or(pos + 2), len));
                }
                pointers += 1;
                end.get_or_insert(pos + 2);
                pos = target;
            }
            // 0x40 and 0x80: extended label types (RFC 6891 §5), not used in names we read.
            _ => return None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// A response for `WWW.Example.com` (mixed case on purpose) with a CNAME, an A and an AAAA
    /// answer, each owner name a compression pointer.
    static ANSWERS: &[u8] = &[
        0x12, 0x34, // id
        0x81, 0x80, // flags: response
        0x00, 0x01, // qdcount 1
        0x00, 0x03, // ancount 3
        0x00, 0x00, 0x00, 0x00, // nscount, arcount
        // offset 12: question name www.example.com
        3, b'W', b'W', b'W', 7, b'E', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
        0x00, 0x01, 0x00, 0x01, // qtype A, qclass IN
        // answer 1: CNAME, owner -> 12, rdata "cdn" + pointer to "example.com" (offset 16)
        0xc0, 12, 0x00, 0x05, 0x00, 0x01, 0, 0, 0x0e, 0x10, 0x00, 0x06, 3, b'c', b'd', b'n', 0xc0,
        16, // answer 2: A 192.0.2.7, owner -> 12
        0xc0, 12, 0x00, 0x01, 0x00, 0x01, 0, 0, 0x0e, 0x10, 0x00, 0x04, 192, 0, 2, 7,
        // answer 3: AAAA 2001:db8::7, owner -> 12
        0xc0, 12, 0x00, 0x1c, 0x00, 0x01, 0, 0, 0x0e, 0x10, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,
    ];

    fn addresses(msg: &[u8]) -> Vec<std::net::IpAddr> {
        let mut v = Vec::new();
        if let Some(h) = DnsHeaderSlice::from_slice(msg) {
            h.for_each_address(|ip| v.push(ip));
        }
        v
    }

    /// A 1500-byte message claiming `questions` questions, every one a pointer to a 200-byte
    /// name at offset 12 (the costliest a question can be), and `answers` answers.
    pub(crate) fn hostile(questions: u16, answers: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80];
        m.extend_from_slice(&questions.to_be_bytes());
        m.extend_from_slice(&answers.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        for _ in 0..4 {
            m.push(49);
            m.extend_from_slice(&[b'a'; 49]);
        }
        m.push(0);
        m.extend_from_slice(&[0, 1, 0, 1]);
        while m.len() + 6 <= 1500 {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        }
        m
    }

    #[test]
    fn rejects_bad_question_count() {
        // Issue 19 item 3: 65,535 claimed questions are not walked at all.
        let h = DnsHeaderSlice::from_slice(ANSWERS).unwrap();
        assert_eq!(h.for_each_address(|_| {}), DnsWalk::Complete);
        let over = hostile(u16::MAX, 0);
        let h = DnsHeaderSlice::from_slice(&over).unwrap();
        let mut n = 0;
        assert_eq!(h.for_each_address(|_| n += 1), DnsWalk::OverLimit);
        assert_eq!(n, 0);
        // Within the question cap: 4 questions, each one pointer hop when skipped.
        let four = hostile(4, 0);
        let h = DnsHeaderSlice::from_slice(&four).unwrap();
        assert_eq!(h.for_each_address(|_| {}), DnsWalk::Complete);
        // 64 answers claimed; the bytes after the question do not make whole records.
        let many = hostile(1, 64);
        let h = DnsHeaderSlice::from_slice(&many).unwrap();
        assert_eq!(h.for_each_address(|_| {}), DnsWalk::Stopped);
    }

    #[test]
    fn rejects_bad_answer_count() {
        // More answers claimed than walked: the first MAX_ANSWERS are read, then OverLimit.
        let mut m = ANSWERS.to_vec();
        m[6] = 0x01;
        m[7] = 0x00; // 256 answers claimed; only 3 present.
        let h = DnsHeaderSlice::from_slice(&m).unwrap();
        assert_eq!(h.for_each_address(|_| {}), DnsWalk::Stopped);
        // 65 well-formed A answers: 64 read, over the cap.
        let mut m = ANSWERS[..33].to_vec();
        m[6] = 0;
        m[7] = 65;
        for i in 0..65u8 {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, i]);
        }
        let h = DnsHeaderSlice::from_slice(&m).unwrap();
        let mut n = 0;
        assert_eq!(h.for_each_address(|_| n += 1), DnsWalk::OverLimit);
        assert_eq!(n, MAX_ANSWERS);
    }

    #[test]
    fn rejects_bad_label_hops() {
        // 4 questions, each a chain of 127 one-byte labels (a 253-byte name): 4 * 128 hops
        // are more than the budget.
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 4, 0, 1, 0, 0, 0, 0];
        for _ in 0..4 {
            for _ in 0..127 {
                m.extend_from_slice(&[1, b'x']);
            }
            m.push(0);
            m.extend_from_slice(&[0, 1, 0, 1]);
        }
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
        let h = DnsHeaderSlice::from_slice(&m).unwrap();
        assert_eq!(h.for_each_address(|_| {}), DnsWalk::OverLimit);
    }

    #[test]
    fn parses_known_answers() {
        let h = DnsHeaderSlice::from_slice(ANSWERS).unwrap();
        let mut name = [0u8; MAX_NAME_LEN];
        let n = h.question_name(&mut name).unwrap();
        assert_eq!(&name[..n], b"www.example.com");
        assert_eq!(
            addresses(ANSWERS),
            vec![
                "192.0.2.7".parse::<std::net::IpAddr>().unwrap(),
                "2001:db8::7".parse().unwrap()
            ]
        );
    }

    #[test]
    fn rejects_truncated_answers() {
        // Every prefix: never a panic, never an address that was not wholly present.
        for n in 0..ANSWERS.len() {
            let got = addresses(&ANSWERS[..n]);
            let expected = if n >= ANSWERS.len() {
                2
            } else if n >= ANSWERS.len() - 16 - 12 {
                1
            } else {
                0
            };
            assert_eq!(got.len(), expected, "prefix {n}");
        }
    }

    #[test]
    fn rejects_bad_pointer() {
        // A pointer to itself in the question name.
        let mut looped = ANSWERS.to_vec();
        looped[12] = 0xc0;
        looped[13] = 12;
        let h = DnsHeaderSlice::from_slice(&looped).unwrap();
        let mut name = [0u8; MAX_NAME_LEN];
        assert_eq!(h.question_name(&mut name), None);
        assert!(addresses(&looped).is_empty());
        // A forward pointer in an answer's owner name stops the walk before that answer.
        let mut forward = ANSWERS.to_vec();
        let a_owner = 12 + 17 + 4 + 18;
        forward[a_owner + 1] = 200;
        assert_eq!(
            addresses(&forward).len(),
            0,
            "the A record is skipped, the walk stops"
        );
    }

    #[test]
    fn rejects_bad_rdlength() {
        // The A record says 5 bytes of RDATA: not an address, and the AAAA after it is misread
        // as starting one byte late, so nothing valid follows.
        let mut lying = ANSWERS.to_vec();
        let a_rdlen = 12 + 17 + 4 + 18 + 11;
        lying[a_rdlen] = 5;
        assert!(
            addresses(&lying)
                .iter()
                .all(|ip| ip.is_ipv6() || ip.to_string() != "192.0.2.7")
        );
        let mut huge = ANSWERS.to_vec();
        huge[a_rdlen - 1] = 0xff;
        assert!(addresses(&huge).is_empty());
    }

    #[test]
    fn rejects_truncated_header() {
        for n in 0..HEADER_LEN {
            assert!(DnsHeaderSlice::from_slice(&RESPONSE[..n]).is_none());
        }
    }
}
