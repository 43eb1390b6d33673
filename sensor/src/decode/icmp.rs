//! ICMP and ICMPv6 error messages: the flow quoted by an error.
//!
//! An error (destination unreachable, time exceeded, parameter problem, packet too big)
//! carries the start of the packet that caused it: its IP header and at least 8 bytes of
//! transport (RFC 792, RFC 4443 §2.4), enough for the ports. The quoted IP header is sliced
//! with etherparse (lax: quotes are routinely cut); an error whose quote does not parse is no
//! quote at all. Nothing here allocates or panics.

use etherparse::{IpNumber, LaxIpSlice};
use flowtable::IpProto;

/// The flow an ICMP error refers to, as the erring packet travelled (its own source first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedFlow {
    /// Source of the quoted packet (16-byte form).
    pub src: [u8; 16],
    /// Its destination.
    pub dst: [u8; 16],
    /// Its source port (0 without ports, or when the quote is too short for them).
    pub src_port: u16,
    /// Its destination port.
    pub dst_port: u16,
    /// Its transport protocol.
    pub proto: IpProto,
}

/// Whether an ICMP type is an error message that quotes a packet.
pub fn is_error(v6: bool, icmp_type: u8) -> bool {
    if v6 {
        // Destination unreachable, packet too big, time exceeded, parameter problem.
        matches!(icmp_type, 1..=4)
    } else {
        // Destination unreachable, source quench, redirect, time exceeded, parameter problem.
        matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
    }
}

/// The flow quoted in the payload of an ICMP error (the bytes after the 8-byte ICMP header).
pub fn quoted_flow(quote: &[u8]) -> Option<QuotedFlow> {
    let (ip, _) = LaxIpSlice::from_slice(quote).ok()?;
    let src = flowtable::key::ip_to_addr(ip.source_addr());
    let dst = flowtable::key::ip_to_addr(ip.destination_addr());
    let payload = ip.payload();
    let proto = IpProto(payload.ip_number.0);
    // Only TCP, UDP and SCTP start with two port fields; a non-first fragment has no ports.
    let has_ports = matches!(
        payload.ip_number,
        IpNumber::TCP | IpNumber::UDP | IpNumber::SCTP
    );
    let ports = payload
        .payload
        .get(0..4)
        .filter(|_| has_ports && !payload.fragmented);
    let (src_port, dst_port) = match ports {
        Some(&[a, b, c, d]) => (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])),
        _ => (0, 0),
    };
    Some(QuotedFlow {
        src,
        dst,
        src_port,
        dst_port,
        proto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quoted IPv4 + UDP header: 10.0.0.5:53001 -> 198.51.100.7:33434 (traceroute).
    static QUOTE_V4_UDP: [u8; 28] = [
        0x45, 0x00, 0x00, 0x3c, // version/IHL, TOS, total length 60 (the quote is cut)
        0x12, 0x34, 0x00, 0x00, // id, flags/fragment offset
        0x01, 0x11, 0x00, 0x00, // TTL 1, UDP, checksum (not checked in quotes)
        10, 0, 0, 5, // source
        198, 51, 100, 7, // destination
        0xcf, 0x09, 0x82, 0x9a, // ports 53001 -> 33434
        0x00, 0x28, 0x00, 0x00, // UDP length, checksum
    ];

    #[test]
    fn parses_known_bytes() {
        let q = quoted_flow(&QUOTE_V4_UDP).unwrap();
        assert_eq!(q.proto, IpProto::UDP);
        assert_eq!(
            q.src,
            flowtable::key::ip_to_addr("10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            q.dst,
            flowtable::key::ip_to_addr("198.51.100.7".parse().unwrap())
        );
        assert_eq!((q.src_port, q.dst_port), (53001, 33434));
    }

    #[test]
    fn rejects_truncated_quote() {
        // Fewer bytes than an IP header: no quote.
        for n in 0..20 {
            assert!(quoted_flow(&QUOTE_V4_UDP[..n]).is_none(), "prefix {n}");
        }
        // An IP header without the transport: the flow, ports unknown.
        let q = quoted_flow(&QUOTE_V4_UDP[..20]).unwrap();
        assert_eq!((q.src_port, q.dst_port), (0, 0));
    }

    #[test]
    fn error_types() {
        assert!(is_error(false, 3) && is_error(false, 11) && !is_error(false, 0));
        assert!(is_error(false, 5) && !is_error(false, 8));
        assert!(is_error(true, 1) && is_error(true, 3) && !is_error(true, 128));
    }
}
