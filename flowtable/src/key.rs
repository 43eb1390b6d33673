//! The canonical flow key: both directions of a conversation map to one key.
//!
//! A key is a small `Copy` value: two 16-byte addresses (IPv4 stored IPv4-mapped), two ports,
//! the IP protocol and an opaque 64-bit tunnel context chosen by the caller (zero for traffic
//! that is not encapsulated). The lower endpoint is stored first; [`FlowKey::new`] returns the
//! [`Direction`] of the packet it was built from, so each packet costs one hash lookup.
//! The tunnel context keeps identical inner addresses in two mirror sessions or VNIs apart.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr};

/// An IP protocol number (open: unknown values are kept).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpProto(pub u8);

impl IpProto {
    /// ICMP for IPv4.
    pub const ICMP: IpProto = IpProto(1);
    /// TCP.
    pub const TCP: IpProto = IpProto(6);
    /// UDP.
    pub const UDP: IpProto = IpProto(17);
    /// GRE.
    pub const GRE: IpProto = IpProto(47);
    /// ICMP for IPv6.
    pub const ICMPV6: IpProto = IpProto(58);
    /// SCTP.
    pub const SCTP: IpProto = IpProto(132);

    /// The lower-case name used in events (`tcp`, `udp`, ...), or `None` for other numbers.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            1 => Some("icmp"),
            6 => Some("tcp"),
            17 => Some("udp"),
            47 => Some("gre"),
            58 => Some("ipv6-icmp"),
            132 => Some("sctp"),
            _ => None,
        }
    }
}

/// Which way a packet travels relative to the canonical order of its [`FlowKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the lower endpoint (`FlowKey::lo`) to the higher one.
    LoToHi,
    /// From the higher endpoint to the lower one.
    HiToLo,
}

impl Direction {
    /// Index 0 or 1, for per-direction counter arrays.
    pub const fn index(self) -> usize {
        match self {
            Direction::LoToHi => 0,
            Direction::HiToLo => 1,
        }
    }

    /// The other direction.
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::LoToHi => Direction::HiToLo,
            Direction::HiToLo => Direction::LoToHi,
        }
    }
}

/// Canonical identity of a conversation: lower endpoint first, plus tunnel context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// Address of the lower endpoint (IPv4 as IPv4-mapped IPv6).
    pub lo_addr: [u8; 16],
    /// Address of the higher endpoint.
    pub hi_addr: [u8; 16],
    /// Port of the lower endpoint (0 for protocols without ports).
    pub lo_port: u16,
    /// Port of the higher endpoint.
    pub hi_port: u16,
    /// IP protocol number.
    pub proto: IpProto,
    /// Opaque tunnel context chosen by the caller; 0 means "not encapsulated".
    pub tunnel: u64,
}

impl Hash for FlowKey {
    /// Four word-sized writes of every field (so equal keys hash equal), instead of the
    /// derived impl's length-prefixed byte arrays: 1.15 ns against 5.98 ns per key with
    /// foldhash (benches/runs/2026-11-22-vm/run4.md), paid on every packet by the flow
    /// table and the packet fingerprint (and by the tunnel table's inner-flow identity).
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from_ne_bytes(self.lo_addr));
        state.write_u128(u128::from_ne_bytes(self.hi_addr));
        state.write_u64(
            u64::from(self.lo_port) | u64::from(self.hi_port) << 16 | u64::from(self.proto.0) << 32,
        );
        state.write_u64(self.tunnel);
    }
}

impl FlowKey {
    /// Builds the canonical key of a packet going from `src:src_port` to `dst:dst_port`, and
    /// the direction of that packet within the key.
    #[inline]
    pub fn new(
        src: [u8; 16],
        src_port: u16,
        dst: [u8; 16],
        dst_port: u16,
        proto: IpProto,
        tunnel: u64,
    ) -> (FlowKey, Direction) {
        // Order by (address, port) so that two flows between the same hosts on swapped ports
        // still get distinct, stable keys. The addresses compare as big-endian 128-bit words:
        // the order of the bytes, without a byte-by-byte comparison.
        if (u128::from_be_bytes(src), src_port) <= (u128::from_be_bytes(dst), dst_port) {
            let key = FlowKey {
                lo_addr: src,
                hi_addr: dst,
                lo_port: src_port,
                hi_port: dst_port,
                proto,
                tunnel,
            };
            (key, Direction::LoToHi)
        } else {
            let key = FlowKey {
                lo_addr: dst,
                hi_addr: src,
                lo_port: dst_port,
                hi_port: src_port,
                proto,
                tunnel,
            };
            (key, Direction::HiToLo)
        }
    }

    /// The address of the lower endpoint as an `IpAddr` (IPv4-mapped addresses become IPv4).
    pub fn lo_ip(&self) -> IpAddr {
        addr_to_ip(self.lo_addr)
    }

    /// The address of the higher endpoint as an `IpAddr`.
    pub fn hi_ip(&self) -> IpAddr {
        addr_to_ip(self.hi_addr)
    }

    /// The (source, source port, destination, destination port) of a packet in direction `dir`.
    pub fn endpoints(&self, dir: Direction) -> (IpAddr, u16, IpAddr, u16) {
        match dir {
            Direction::LoToHi => (self.lo_ip(), self.lo_port, self.hi_ip(), self.hi_port),
            Direction::HiToLo => (self.hi_ip(), self.hi_port, self.lo_ip(), self.lo_port),
        }
    }
}

/// Stores an address in the 16-byte form used by [`FlowKey`].
#[inline]
pub fn ip_to_addr(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4_to_addr(v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// An IPv4 address (network order) in the 16-byte form of [`ip_to_addr`], the IPv4-mapped
/// IPv6 address, built as one 128-bit value rather than byte by byte as
/// `Ipv4Addr::to_ipv6_mapped` does (a decoder's per-packet path).
#[inline]
pub fn v4_to_addr(octets: [u8; 4]) -> [u8; 16] {
    (0xffff_u128 << 32 | u128::from(u32::from_be_bytes(octets))).to_be_bytes()
}

/// Reads back an address stored by [`ip_to_addr`].
#[inline]
pub fn addr_to_ip(addr: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(addr);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> [u8; 16] {
        ip_to_addr(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    /// The hand-written `Hash` covers every field: changing any one changes the hash.
    #[test]
    fn hash_covers_every_field() {
        use std::hash::BuildHasher;
        let h = foldhash::quality::FixedState::with_seed(7);
        let (base, _) = FlowKey::new(v4(10, 0, 0, 1), 1000, v4(10, 0, 0, 2), 80, IpProto::TCP, 5);
        let variants = [
            FlowKey {
                lo_addr: v4(10, 0, 0, 3),
                ..base
            },
            FlowKey {
                hi_addr: v4(10, 0, 0, 4),
                ..base
            },
            FlowKey {
                lo_port: 1001,
                ..base
            },
            FlowKey {
                hi_port: 81,
                ..base
            },
            FlowKey {
                proto: IpProto::UDP,
                ..base
            },
            FlowKey { tunnel: 6, ..base },
            // Ports swapped between the fields must not collide either.
            FlowKey {
                lo_port: 80,
                hi_port: 1000,
                ..base
            },
        ];
        let base_hash = h.hash_one(base);
        assert_eq!(base_hash, h.hash_one(base), "deterministic for one seed");
        for v in variants {
            assert_ne!(h.hash_one(v), base_hash, "{v:?}");
        }
    }

    #[test]
    fn both_directions_give_one_key() {
        let (k1, d1) = FlowKey::new(v4(10, 0, 0, 2), 40000, v4(10, 0, 0, 1), 80, IpProto::TCP, 0);
        let (k2, d2) = FlowKey::new(v4(10, 0, 0, 1), 80, v4(10, 0, 0, 2), 40000, IpProto::TCP, 0);
        assert_eq!(k1, k2);
        assert_eq!(d1, d2.reverse());
        assert_eq!(k1.lo_ip(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let (src, sport, dst, dport) = k1.endpoints(d1);
        assert_eq!(
            (src, sport, dst, dport),
            (k1.hi_ip(), 40000, k1.lo_ip(), 80)
        );
    }

    #[test]
    fn tunnel_context_separates_identical_inner_flows() {
        let (a, _) = FlowKey::new(v4(1, 1, 1, 1), 1, v4(2, 2, 2, 2), 2, IpProto::UDP, 7);
        let (b, _) = FlowKey::new(v4(1, 1, 1, 1), 1, v4(2, 2, 2, 2), 2, IpProto::UDP, 8);
        assert_ne!(a, b);
    }

    #[test]
    fn same_address_different_ports_are_ordered_by_port() {
        let (k, d) = FlowKey::new(v4(1, 1, 1, 1), 9, v4(1, 1, 1, 1), 3, IpProto::UDP, 0);
        assert_eq!((k.lo_port, k.hi_port, d), (3, 9, Direction::HiToLo));
    }

    #[test]
    fn ipv6_round_trips_and_ipv4_maps_back() {
        let v6: IpAddr = "2001:db8::1"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(addr_to_ip(ip_to_addr(v6)), v6);
        assert_eq!(
            addr_to_ip(v4(192, 0, 2, 7)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
        );
    }

    proptest::proptest! {
        /// The 128-bit construction is the standard library's IPv4-mapped address.
        #[test]
        fn v4_to_addr_is_the_ipv4_mapped_address(octets: [u8; 4]) {
            let expected = Ipv4Addr::from(octets).to_ipv6_mapped().octets();
            proptest::prop_assert_eq!(v4_to_addr(octets), expected);
            proptest::prop_assert_eq!(addr_to_ip(v4_to_addr(octets)), IpAddr::from(octets));
        }
    }
}
