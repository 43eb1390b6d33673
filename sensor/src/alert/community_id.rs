//! Community ID v1 (corelight/community-id-spec): the flow hash that lets an analyst pivot
//! from a mirrorwatch event to the same connection in Zeek's `conn.log` or Suricata's flow
//! events.
//!
//! `base64(sha1(seed ‖ addr_lo ‖ addr_hi ‖ proto ‖ 0 ‖ port_lo ‖ port_hi))`, prefixed with
//! `1:`, everything in network byte order; the endpoints are ordered so that both directions
//! hash equal, except one-way ICMP messages, whose type and code stand in for the ports.
//!
//! Written here rather than taken from the `community-id` crate (0.2.4): that crate returns
//! a fresh `String` per call (events are serialized without allocating), reads its input
//! through packed-struct byte views, and pulls `base64` and `hex` for 20 bytes. This module
//! is checked against the specification's own baseline (seeds 0 and 1, TCP, UDP, SCTP,
//! ICMP, ICMPv6, IPv6, a protocol without ports) and, on real captures, against the
//! reference implementation (`tests/tests/community_id.rs`). Computed once per event (a
//! flow record or an alert), never per packet.

use std::net::IpAddr;

use sha1::{Digest, Sha1};

const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// A Community ID v1 string, `1:` and 28 base64 characters, held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommunityId([u8; 30]);

impl CommunityId {
    /// The Community ID of a flow. `ports` are the transport ports (TCP, UDP, SCTP) or the
    /// ICMP type and code (ICMP, ICMPv6), `None` for protocols without ports. `None` when
    /// the two addresses are of different families.
    pub fn new(
        seed: u16,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        ports: Option<(u16, u16)>,
    ) -> Option<CommunityId> {
        let digest = digest(seed, src, dst, proto, ports)?;
        let mut out = [0u8; 30];
        out[0] = b'1';
        out[1] = b':';
        base64(&digest, &mut out[2..]);
        Some(CommunityId(out))
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into the array.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SHA-1 digest behind a Community ID (the specification's "no base64" form is its hex).
pub fn digest(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ports: Option<(u16, u16)>,
) -> Option<[u8; 20]> {
    let mut ports = ports;
    let mut one_way = false;
    if let Some((t, c)) = ports {
        let equivalent = match proto {
            ICMP => icmp4_reply(t),
            ICMPV6 => icmp6_reply(t),
            _ => Some(c),
        };
        match equivalent {
            Some(other) => ports = Some((t, other)),
            // A message without a counterpart: type and code, in this direction only.
            None => one_way = true,
        }
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    let (a, b): (&[u8], &[u8]);
    let (v4a, v4b, v6a, v6b);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            (v4a, v4b) = (s.octets(), d.octets());
            (a, b) = (&v4a, &v4b);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            (v6a, v6b) = (s.octets(), d.octets());
            (a, b) = (&v6a, &v6b);
        }
        _ => return None,
    }
    let (sp, dp) = ports.unwrap_or((0, 0));
    // The lower endpoint first (address, then port), unless the message is one-way.
    let keep = one_way || a < b || (a == b && sp < dp);
    let (a, b, sp, dp) = if keep { (a, b, sp, dp) } else { (b, a, dp, sp) };
    h.update(a);
    h.update(b);
    h.update([proto, 0]);
    if ports.is_some() {
        h.update(sp.to_be_bytes());
        h.update(dp.to_be_bytes());
    }
    Some(h.finalize().into())
}

/// The type of the answer to an ICMPv4 message (the "port equivalent"), `None` for a message
/// that has no counterpart.
fn icmp4_reply(t: u16) -> Option<u16> {
    Some(match t {
        8 => 0,   // echo
        0 => 8,   // echo reply
        13 => 14, // timestamp
        14 => 13,
        15 => 16, // information
        16 => 15,
        10 => 9, // router solicitation / advertisement
        9 => 10,
        17 => 18, // address mask
        18 => 17,
        _ => return None,
    })
}

/// The same for ICMPv6.
fn icmp6_reply(t: u16) -> Option<u16> {
    Some(match t {
        128 => 129, // echo
        129 => 128,
        133 => 134, // router solicitation / advertisement
        134 => 133,
        135 => 136, // neighbor solicitation / advertisement
        136 => 135,
        130 => 131, // multicast listener query / report
        131 => 130,
        144 => 145, // home agent address discovery
        145 => 144,
        139 => 140, // node information query / response
        140 => 139,
        _ => return None,
    })
}

/// Standard base64 (RFC 4648, with padding) of 20 bytes into 28.
fn base64(input: &[u8; 20], out: &mut [u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = 0;
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, slot) in out[o..o + 4].iter_mut().enumerate() {
            *slot = if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            };
        }
        o += 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seed: u16, s: &str, d: &str, proto: u8, ports: Option<(u16, u16)>) -> String {
        CommunityId::new(seed, s.parse().unwrap(), d.parse().unwrap(), proto, ports)
            .unwrap()
            .as_str()
            .to_owned()
    }

    #[test]
    fn specification_examples() {
        // From the specification's README and baseline tables.
        assert_eq!(
            id(0, "1.2.3.4", "5.6.7.8", 6, Some((1122, 3344))),
            "1:wCb3OG7yAFWelaUydu0D+125CLM="
        );
        assert_eq!(
            id(0, "66.35.250.204", "128.232.110.120", 6, Some((80, 34855))),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            id(1, "8.8.8.8", "192.168.1.52", 17, Some((53, 54585))),
            "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="
        );
        assert_eq!(
            id(0, "10.1.12.2", "10.1.12.1", 46, None),
            "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="
        );
        // One-way ICMP (time exceeded) and an ICMPv6 pair.
        assert_eq!(
            id(0, "10.0.0.1", "10.0.0.2", 1, Some((11, 0))),
            "1:YHxtAirCG//0OzkcVAukqKQN9xM="
        );
        assert_eq!(
            id(
                0,
                "3ffe:501:0:1001::2",
                "3ffe:507:0:1:200:86ff:fe05:80da",
                58,
                Some((129, 128))
            ),
            "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="
        );
    }

    #[test]
    fn mixed_families_have_none() {
        let v6: IpAddr = "::1".parse().unwrap();
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(CommunityId::new(0, v4, v6, 6, Some((1, 2))).is_none());
    }

    #[test]
    fn base64_matches_a_known_encoding() {
        let mut out = [0u8; 28];
        base64(&[0xff; 20], &mut out);
        assert_eq!(&out, b"//////////////////////////8=");
    }
}
