//! The address rewrite that makes each looped pass of the bench new traffic.
//!
//! The harness replays one input many times. Replayed as it is, pass 2 is pass 1 again: the
//! same flows, tunnel sessions, beacon pairs and known destinations, which real traffic never
//! sends and the detectors then judge (issue 14 goal 6). So every pass `p > 0` gets its own
//! copy of the bytes in which the addresses of every IP header the frame carries (outer,
//! inner after any tunnel the decoder peels, the header an ICMP error quotes, and the A and
//! AAAA answers of DNS responses, which the name cache learns) are moved by `p`.
//!
//! **Which bits move.** Only bits below the longest prefix of `[networks] home`, so an
//! address stays inside or outside home as it was: IPv4 moves the 8 bits just below
//! `max(longest home prefix, 16)` (the third octet with the default home: `10.1.2.3` becomes
//! `10.1.3.3` in pass 1), IPv6 the 8 bits below `max(longest home prefix, 48)` (the subnet id:
//! `2001:db8::1` becomes `2001:db8:0:100::1`). The field is added to modulo 256, a bijection
//! within a pass; passes 256 apart reuse addresses (the pipeline has forgotten them by then,
//! see [`super::input`]). With a home prefix longer than /24 (IPv4) or /120 (IPv6) fewer bits
//! are left, and with a /32 (/128) none: that family is then not moved (see
//! [`PassRewriter::moves`]).
//!
//! **What stays.** Addresses that are not one host's (multicast, broadcast, link-local,
//! loopback, unspecified), so SSDP, mDNS and DHCP stay what they are; addresses inside a
//! configured list whose prefix is longer than the field's start (approved collectors, the
//! inventory's collectors and sources, trusted destinations, DNS resolvers, visible
//! collectors), so an approved collector stays approved; and an address whose image would
//! fall into one of those lists or be special (rare; the address then keeps its value).
//!
//! **Checksums.** The sensor verifies no TCP, UDP, ICMP or GRE checksum. It does verify the
//! IPv4 header checksum of a frame found by probing a non-standard UDP port for VXLAN or
//! Geneve, so every rewritten IPv4 header gets its checksum recomputed. The transport
//! checksums are kept valid too (incremental update, RFC 1624, innermost first, so an outer
//! UDP or GRE checksum covers the inner changes), for captures cut short as well; only the
//! transport header an ICMP error quotes is left as it was (it is cut short and no one
//! checks it). UDP over IPv4 with checksum 0 (none) stays 0.
//!
//! Hostile input: every offset is checked against the frame; the walk follows at most
//! [`MAX_LAYERS`] layers; nothing here panics. The rewrite runs before timing starts.

use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;

use crate::config::Config;
use crate::decode::DecodeConfig;
use crate::decode::erspan::{Erspan2Slice, Erspan3Slice};
use crate::decode::geneve::GeneveSlice;
use crate::decode::gre::{GreSlice, PppSlice};
use crate::decode::link::{
    LinkType, NullFamily, NullSlice, PpiSlice, Sll2Slice, SllSlice, cooked_ether_type,
};
use crate::decode::mpls::{MplsPayload, MplsSlice};
use crate::decode::pppoe::PppoeSlice;
use crate::decode::vxlan::VxlanSlice;

/// Most layers (link, tags, IP headers, tunnels) one frame's walk follows.
pub const MAX_LAYERS: usize = 32;
/// Width of the moved field, in bits: 256 passes before addresses repeat.
const FIELD_BITS: u32 = 8;
/// Most DNS questions and answers walked (as the sensor's name cache walks them at most).
const DNS_MAX_QUESTIONS: usize = crate::decode::dns::MAX_QUESTIONS;
const DNS_MAX_ANSWERS: usize = crate::decode::dns::MAX_ANSWERS;
/// Labels and pointers followed over one DNS message.
const DNS_MAX_LABELS: usize = 256;

/// EtherTypes and protocol numbers the walk follows.
mod num {
    pub(super) const IPV4: u16 = 0x0800;
    pub(super) const IPV6: u16 = 0x86DD;
    pub(super) const VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];
    pub(super) const MPLS: [u16; 2] = [0x8847, 0x8848];
    pub(super) const PPPOE_SESSION: u16 = 0x8864;
    pub(super) const TEB: u16 = 0x6558;
    pub(super) const ERSPAN_1_2: u16 = 0x88BE;
    pub(super) const ERSPAN_3: u16 = 0x22EB;
    pub(super) const PPP: u16 = 0x880B;
    pub(super) const PPP_IPV4: u16 = 0x0021;
    pub(super) const PPP_IPV6: u16 = 0x0057;
    pub(super) const TCP: u8 = 6;
    pub(super) const UDP: u8 = 17;
    pub(super) const ICMP: u8 = 1;
    pub(super) const ICMPV6: u8 = 58;
    pub(super) const GRE: u8 = 47;
    pub(super) const IPIP: u8 = 4;
    pub(super) const IPV6_IN_IP: u8 = 41;
}

/// Moves addresses per pass (see the module doc for the rule).
#[derive(Clone, Debug)]
pub struct PassRewriter {
    v4: Option<Field>,
    v6: Option<Field>,
    /// Configured networks longer than the field's start: their addresses stay.
    keep: Vec<IpNet>,
    decode: DecodeConfig,
}

/// The moved bits of one family: `width` bits, `shift` bits above the least significant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    shift: u32,
    width: u32,
}

/// Reusable buffers of [`PassRewriter::rewrite`].
#[derive(Default)]
pub struct Scratch {
    sites: Vec<Site>,
    original: Vec<u8>,
}

/// What the walk found in a frame, in frame order (outer first).
#[derive(Clone, Copy, Debug)]
enum Site {
    /// An IPv4 address at this offset.
    V4(usize),
    /// An IPv6 address at this offset.
    V6(usize),
    /// A whole IPv4 header: its checksum is recomputed.
    Ipv4Header { at: usize, len: usize },
    /// A transport (or GRE) checksum at `sum_at`, covering the captured bytes `cover` and,
    /// with `pseudo`, the source and destination addresses at those offsets.
    Checksum {
        sum_at: usize,
        cover: (usize, usize),
        pseudo: Option<(usize, usize, usize)>,
        zero_is_none: bool,
    },
}

impl PassRewriter {
    /// The rewrite for `config`: its home networks choose the moved bits, its address lists
    /// what stays.
    pub fn new(config: &Config) -> PassRewriter {
        let longest = |v6: bool| {
            config
                .networks
                .home
                .iter()
                .filter(|n| matches!(n, IpNet::V6(_)) == v6)
                .map(|n| u32::from(n.prefix_len()))
                .max()
                .unwrap_or(0)
        };
        let v4 = field(32, 16, longest(false));
        let v6 = field(128, 48, longest(true));
        let mut lists: Vec<IpNet> = Vec::new();
        lists.extend(&config.mirror.approved_collectors);
        for entry in &config.mirror.inventory {
            lists.push(entry.collector);
            lists.extend(&entry.sources);
        }
        lists.extend(&config.beacon.trusted_destinations);
        lists.extend(&config.beacon.dns_resolvers);
        lists.extend(&config.control.visible_collectors);
        // A network no longer than the field's start keeps its members by construction.
        let keep = lists
            .into_iter()
            .filter(|n| {
                let start = match n {
                    IpNet::V4(_) => v4.map(|f| 32 - f.shift - f.width),
                    IpNet::V6(_) => v6.map(|f| 128 - f.shift - f.width),
                };
                start.is_some_and(|s| u32::from(n.prefix_len()) > s)
            })
            .collect();
        PassRewriter {
            v4,
            v6,
            keep,
            decode: config.decode.clone(),
        }
    }

    /// Whether addresses of each family move at all: (IPv4, IPv6).
    pub fn moves(&self) -> (bool, bool) {
        (self.v4.is_some(), self.v6.is_some())
    }

    /// The bits moved per family, as a sentence for the run's notes.
    pub fn describe(&self) -> String {
        let part = |name: &str, bits: u32, f: Option<Field>| match f {
            Some(f) => format!(
                "{name} bits {}..{} (from the top) + pass",
                bits - f.shift - f.width,
                bits - f.shift
            ),
            None => format!("{name} not moved (a home prefix leaves no bits)"),
        };
        format!(
            "{}; {}; {} configured network(s) kept as they are",
            part("IPv4", 32, self.v4),
            part("IPv6", 128, self.v6),
            self.keep.len()
        )
    }

    /// Where `ip` goes in pass `pass`.
    pub fn map(&self, ip: IpAddr, pass: u64) -> IpAddr {
        let moved = match ip {
            IpAddr::V4(a) => match self.v4 {
                Some(f) => IpAddr::from(std::net::Ipv4Addr::from(move_bits(
                    u128::from(u32::from(a)),
                    f,
                    pass,
                ) as u32)),
                None => return ip,
            },
            IpAddr::V6(a) => match self.v6 {
                Some(f) => {
                    IpAddr::from(std::net::Ipv6Addr::from(move_bits(u128::from(a), f, pass)))
                }
                None => return ip,
            },
        };
        if moved == ip || special(ip) || special(moved) {
            return ip;
        }
        let kept = |a: &IpAddr| self.keep.iter().any(|n| n.contains(a));
        if kept(&ip) || kept(&moved) { ip } else { moved }
    }

    /// Rewrites `frame` (link type `link`) for pass `pass` in place.
    pub fn rewrite(&self, link: LinkType, frame: &mut [u8], pass: u64, scratch: &mut Scratch) {
        if pass % (1 << FIELD_BITS) == 0 || (self.v4.is_none() && self.v6.is_none()) {
            return;
        }
        scratch.sites.clear();
        let mut walk = Walk {
            frame: &*frame,
            decode: &self.decode,
            sites: &mut scratch.sites,
            budget: MAX_LAYERS,
        };
        walk.link(link);
        if scratch.sites.is_empty() {
            return;
        }
        scratch.original.clear();
        scratch.original.extend_from_slice(frame);
        for site in &scratch.sites {
            match *site {
                Site::V4(at) => {
                    if let Some(b) = frame.get_mut(at..at + 4) {
                        let mut a = [0u8; 4];
                        a.copy_from_slice(b);
                        if let IpAddr::V4(m) = self.map(IpAddr::from(a), pass) {
                            b.copy_from_slice(&m.octets());
                        }
                    }
                }
                Site::V6(at) => {
                    if let Some(b) = frame.get_mut(at..at + 16) {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        if let IpAddr::V6(m) = self.map(IpAddr::from(a), pass) {
                            b.copy_from_slice(&m.octets());
                        }
                    }
                }
                Site::Ipv4Header { .. } | Site::Checksum { .. } => {}
            }
        }
        // Innermost first: an outer checksum covers the inner ones as rewritten.
        for site in scratch.sites.iter().rev() {
            match *site {
                Site::Ipv4Header { at, len } => {
                    if let Some(h) = frame.get_mut(at..at + len) {
                        if let Some(sum) = h.get_mut(10..12) {
                            sum.copy_from_slice(&[0, 0]);
                        }
                        let s = !fold(sum16(h)) as u16;
                        if let Some(sum) = h.get_mut(10..12) {
                            sum.copy_from_slice(&s.to_be_bytes());
                        }
                    }
                }
                Site::Checksum {
                    sum_at,
                    cover,
                    pseudo,
                    zero_is_none,
                } => update_checksum(
                    frame,
                    &scratch.original,
                    sum_at,
                    cover.0..cover.1,
                    pseudo,
                    zero_is_none,
                ),
                Site::V4(_) | Site::V6(_) => {}
            }
        }
    }
}

/// The field of a family of `bits` bits: [`FIELD_BITS`] (or what is left) just below
/// `max(longest, natural)`.
fn field(bits: u32, natural: u32, longest: u32) -> Option<Field> {
    let start = longest.max(natural).min(bits);
    let width = (bits - start).min(FIELD_BITS);
    (width > 0).then_some(Field {
        shift: bits - start - width,
        width,
    })
}

/// `value` with its field increased by `pass`, modulo the field's size.
fn move_bits(value: u128, f: Field, pass: u64) -> u128 {
    let mask = (1u128 << f.width) - 1;
    let old = (value >> f.shift) & mask;
    let new = (old + u128::from(pass)) & mask;
    (value & !(mask << f.shift)) | (new << f.shift)
}

/// Not one host's address: multicast, broadcast, link-local, loopback, unspecified.
fn special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            a.is_multicast()
                || a.is_broadcast()
                || a.is_link_local()
                || a.is_loopback()
                || a.is_unspecified()
        }
        IpAddr::V6(a) => {
            a.is_multicast() || a.is_loopback() || a.is_unspecified() || a.is_unicast_link_local()
        }
    }
}

/// Ones'-complement sum of `bytes` as big-endian 16-bit words (a last odd byte padded).
fn sum16(bytes: &[u8]) -> u32 {
    let mut sum = 0u64;
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    fold64(sum)
}

fn fold64(mut x: u64) -> u32 {
    while x > 0xFFFF {
        x = (x & 0xFFFF) + (x >> 16);
    }
    x as u32
}

fn fold(x: u32) -> u32 {
    fold64(u64::from(x))
}

/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`, where `m`/`m'` are the sums of the covered
/// bytes (and pseudo-header addresses) before and after the rewrite. The checksum field itself
/// is unchanged in both when this runs, so it cancels out.
fn update_checksum(
    frame: &mut [u8],
    original: &[u8],
    sum_at: usize,
    cover: Range<usize>,
    pseudo: Option<(usize, usize, usize)>,
    zero_is_none: bool,
) {
    let Some(old_hc) = frame
        .get(sum_at..sum_at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
    else {
        return;
    };
    if zero_is_none && old_hc == 0 {
        return;
    }
    let (Some(new_cover), Some(old_cover)) = (frame.get(cover.clone()), original.get(cover)) else {
        return;
    };
    let mut m_new = u64::from(sum16(new_cover));
    let mut m_old = u64::from(sum16(old_cover));
    if let Some((src, dst, len)) = pseudo {
        for at in [src, dst] {
            if let (Some(n), Some(o)) = (frame.get(at..at + len), original.get(at..at + len)) {
                m_new += u64::from(sum16(n));
                m_old += u64::from(sum16(o));
            }
        }
    }
    let (m_new, m_old) = (fold64(m_new), fold64(m_old));
    if m_new == m_old {
        return;
    }
    let sum = fold(u32::from(!old_hc) + (!m_old & 0xFFFF) + m_new);
    let mut hc = !(sum as u16);
    if zero_is_none && hc == 0 {
        hc = 0xFFFF;
    }
    if let Some(b) = frame.get_mut(sum_at..sum_at + 2) {
        b.copy_from_slice(&hc.to_be_bytes());
    }
}

/// The walk over one frame: records [`Site`]s, changes nothing.
struct Walk<'f> {
    frame: &'f [u8],
    decode: &'f DecodeConfig,
    sites: &'f mut Vec<Site>,
    budget: usize,
}

impl<'f> Walk<'f> {
    /// Offset of `part` (a sub-slice of the frame) in the frame.
    fn offset(&self, part: &[u8]) -> usize {
        (part.as_ptr() as usize).saturating_sub(self.frame.as_ptr() as usize)
    }

    fn step(&mut self) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        true
    }

    fn be16(&self, at: usize) -> Option<u16> {
        self.frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn link(&mut self, link: LinkType) {
        let frame = self.frame;
        match link {
            LinkType::ETHERNET => self.ethernet(0, frame.len()),
            LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => self.ip(0, frame.len(), false),
            LinkType::NULL | LinkType::LOOP => {
                if let Ok(null) = NullSlice::from_slice(frame) {
                    if matches!(null.family(), NullFamily::Ipv4 | NullFamily::Ipv6) {
                        self.ip(self.offset(null.payload()), frame.len(), false);
                    }
                }
            }
            LinkType::LINUX_SLL => {
                if let Ok(sll) = SllSlice::from_slice(frame) {
                    if let Some(et) = cooked_ether_type(sll.protocol_type()) {
                        self.ether_type(et, self.offset(sll.payload()), frame.len());
                    }
                }
            }
            LinkType::LINUX_SLL2 => {
                if let Ok(sll) = Sll2Slice::from_slice(frame) {
                    if let Some(et) = cooked_ether_type(sll.protocol_type()) {
                        self.ether_type(et, self.offset(sll.payload()), frame.len());
                    }
                }
            }
            LinkType::PPI => {
                if let Ok(ppi) = PpiSlice::from_slice(frame) {
                    let at = self.offset(ppi.payload());
                    match ppi.link_type() {
                        LinkType::ETHERNET => self.ethernet(at, frame.len()),
                        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => {
                            self.ip(at, frame.len(), false);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn ethernet(&mut self, at: usize, end: usize) {
        if let Some(et) = self.be16(at + 12) {
            self.ether_type(et, at + 14, end);
        }
    }

    fn ether_type(&mut self, et: u16, at: usize, end: usize) {
        if !self.step() || at > end {
            return;
        }
        let frame = self.frame;
        let Some(bytes) = frame.get(at..end) else {
            return;
        };
        match et {
            num::IPV4 | num::IPV6 => self.ip(at, end, false),
            t if num::VLAN.contains(&t) => {
                if let Some(next) = self.be16(at + 2) {
                    self.ether_type(next, at + 4, end);
                }
            }
            t if num::MPLS.contains(&t) => {
                if let Ok(mpls) = MplsSlice::from_slice(bytes, self.decode.max_mpls_labels) {
                    let inner = self.offset(mpls.payload());
                    match mpls.payload_kind() {
                        MplsPayload::Ipv4 | MplsPayload::Ipv6 => self.ip(inner, end, false),
                        MplsPayload::EthernetControlWord => self.ethernet(inner, end),
                        MplsPayload::Unknown => {}
                    }
                }
            }
            num::PPPOE_SESSION => {
                if let Ok(session) = PppoeSlice::from_slice(bytes) {
                    self.ppp(session.payload());
                }
            }
            num::TEB => self.ethernet(at, end),
            _ => {}
        }
    }

    fn ppp(&mut self, bytes: &[u8]) {
        if let Ok(ppp) = PppSlice::from_slice(bytes) {
            if matches!(ppp.protocol(), num::PPP_IPV4 | num::PPP_IPV6) {
                let payload = ppp.payload();
                let at = self.offset(payload);
                self.ip(at, at + payload.len(), false);
            }
        }
    }

    /// An IP header at `at` (the packet ends at `end` or earlier); `quoted` for the header an
    /// ICMP error quotes (its transport is not followed).
    fn ip(&mut self, at: usize, end: usize, quoted: bool) {
        if !self.step() {
            return;
        }
        let frame = self.frame;
        let end = end.min(frame.len());
        match frame.get(at).map(|b| b >> 4) {
            Some(4) => {
                let Some(header) = frame.get(at..at + 20).filter(|_| at + 20 <= end) else {
                    return;
                };
                let ihl = usize::from(header[0] & 0x0F) * 4;
                if ihl < 20 {
                    return;
                }
                self.sites.push(Site::V4(at + 12));
                self.sites.push(Site::V4(at + 16));
                if at + ihl <= end {
                    self.sites.push(Site::Ipv4Header { at, len: ihl });
                } else {
                    return;
                }
                if quoted {
                    return;
                }
                let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
                // Total length 0 is TSO: the captured bytes are the packet.
                let end = if total >= ihl {
                    end.min(at + total)
                } else {
                    end
                };
                let frag = u16::from_be_bytes([header[6], header[7]]);
                let offset = frag & 0x1FFF;
                let more = frag & 0x2000 != 0;
                if offset != 0 {
                    return;
                }
                let pseudo = Some((at + 12, at + 16, 4));
                self.transport(header[9], at + ihl, end, pseudo, more, false);
            }
            Some(6) => {
                if at + 40 > end {
                    return;
                }
                self.sites.push(Site::V6(at + 8));
                self.sites.push(Site::V6(at + 24));
                if quoted {
                    return;
                }
                let payload_len = usize::from(self.be16(at + 4).unwrap_or(0));
                let end = if payload_len > 0 {
                    end.min(at + 40 + payload_len)
                } else {
                    end
                };
                let mut next = frame.get(at + 6).copied().unwrap_or(0);
                let mut pos = at + 40;
                let mut fragment = false;
                for _ in 0..8 {
                    let len = match next {
                        0 | 43 | 60 => frame.get(pos + 1).map(|l| (usize::from(*l) + 1) * 8),
                        51 => frame.get(pos + 1).map(|l| (usize::from(*l) + 2) * 4),
                        44 => {
                            let Some(f) = self.be16(pos + 2) else {
                                return;
                            };
                            if f >> 3 != 0 {
                                return;
                            }
                            fragment = f & 1 != 0;
                            Some(8)
                        }
                        _ => break,
                    };
                    let (Some(len), Some(&n)) = (len, frame.get(pos)) else {
                        return;
                    };
                    next = n;
                    pos += len;
                }
                let pseudo = Some((at + 8, at + 24, 16));
                self.transport(next, pos, end, pseudo, fragment, true);
            }
            _ => {}
        }
    }

    /// The transport at `at` of an IP packet ending at `end`.
    fn transport(
        &mut self,
        proto: u8,
        at: usize,
        end: usize,
        pseudo: Option<(usize, usize, usize)>,
        fragment: bool,
        v6: bool,
    ) {
        if at > end {
            return;
        }
        let checksum = |sum_at: usize, pseudo, zero_is_none| Site::Checksum {
            sum_at,
            cover: (at, end),
            pseudo,
            zero_is_none,
        };
        match proto {
            num::TCP if at + 18 <= end => self.sites.push(checksum(at + 16, pseudo, false)),
            num::UDP if at + 8 <= end => {
                self.sites.push(checksum(at + 6, pseudo, !v6));
                if fragment {
                    return;
                }
                let (Some(sport), Some(dport)) = (self.be16(at), self.be16(at + 2)) else {
                    return;
                };
                self.udp(sport, dport, at + 8, end);
            }
            num::ICMP | num::ICMPV6 if at + 8 <= end => {
                let v6_icmp = proto == num::ICMPV6;
                self.sites
                    .push(checksum(at + 2, if v6_icmp { pseudo } else { None }, false));
                let kind = self.frame.get(at).copied().unwrap_or(0);
                let error = if v6_icmp {
                    (1..=4).contains(&kind)
                } else {
                    matches!(kind, 3 | 4 | 5 | 11 | 12)
                };
                if error {
                    self.ip(at + 8, end, true);
                }
            }
            num::GRE => self.gre(at, end),
            num::IPIP | num::IPV6_IN_IP => self.ip(at, end, false),
            _ => {}
        }
    }

    /// A UDP payload at `at`: the tunnels the decoder looks for, in its order, then DNS.
    fn udp(&mut self, sport: u16, dport: u16, at: usize, end: usize) {
        let frame = self.frame;
        let Some(payload) = frame.get(at..end) else {
            return;
        };
        let d = self.decode;
        let well_known = |port: u16| (1..1024).contains(&port);
        if d.vxlan_ports.contains(&dport) {
            let vx = if well_known(sport) {
                strict_vxlan(payload)
            } else {
                VxlanSlice::from_slice(payload).ok()
            };
            if let Some(vx) = vx {
                self.ethernet(self.offset(vx.payload()), end);
            }
            return;
        }
        let geneve_dst = d.geneve_ports.contains(&dport);
        if geneve_dst || d.geneve_ports.contains(&sport) {
            let geneve = if geneve_dst && !well_known(sport) {
                GeneveSlice::from_slice(payload).ok()
            } else {
                strict_geneve(payload)
            };
            if let Some(g) = geneve {
                self.geneve_payload(g.protocol_type(), g.payload(), end);
            }
            return;
        }
        if d.gre_udp_ports.contains(&dport) {
            self.gre(at, end);
            return;
        }
        if d.probe_nonstandard_ports {
            if let Some(vx) = strict_vxlan(payload) {
                self.ethernet(self.offset(vx.payload()), end);
                return;
            }
            if let Some(g) = strict_geneve(payload) {
                self.geneve_payload(g.protocol_type(), g.payload(), end);
                return;
            }
        }
        if sport == 53 || dport == 53 {
            self.dns(at, end);
        }
    }

    fn geneve_payload(&mut self, protocol: u16, payload: &[u8], end: usize) {
        let at = self.offset(payload);
        match protocol {
            num::TEB => self.ethernet(at, end),
            num::IPV4 | num::IPV6 => self.ip(at, end, false),
            other => self.ether_type(other, at, end),
        }
    }

    fn gre(&mut self, at: usize, end: usize) {
        let frame = self.frame;
        let Some(Ok(gre)) = frame.get(at..end).map(GreSlice::from_slice) else {
            return;
        };
        if gre.has_checksum() {
            self.sites.push(Site::Checksum {
                sum_at: at + 4,
                cover: (at, end),
                pseudo: None,
                zero_is_none: false,
            });
        }
        let payload = gre.payload();
        let inner = self.offset(payload);
        if gre.version() == 1 {
            self.ppp(payload);
            return;
        }
        match gre.protocol_type() {
            num::PPP => self.ppp(payload),
            num::ERSPAN_1_2 if gre.sequence().is_none() => self.ethernet(inner, end),
            num::ERSPAN_1_2 => {
                if let Ok(span) = Erspan2Slice::from_slice(payload) {
                    self.ethernet(self.offset(span.payload()), end);
                }
            }
            num::ERSPAN_3 => {
                if let Ok(span) = Erspan3Slice::from_slice(payload) {
                    self.ethernet(self.offset(span.payload()), end);
                }
            }
            num::TEB => self.ethernet(inner, end),
            num::IPV4 | num::IPV6 => self.ip(inner, end, false),
            other => self.ether_type(other, inner, end),
        }
    }

    /// The A and AAAA answers of a DNS response at `at`.
    fn dns(&mut self, at: usize, end: usize) {
        let frame = self.frame;
        let Some(msg) = frame.get(at..end) else {
            return;
        };
        if msg.len() < 12 || msg[2] & 0x80 == 0 {
            return;
        }
        let questions = usize::from(u16::from_be_bytes([msg[4], msg[5]]));
        let answers = usize::from(u16::from_be_bytes([msg[6], msg[7]]));
        if questions > DNS_MAX_QUESTIONS {
            return;
        }
        let mut labels = DNS_MAX_LABELS;
        let mut pos = 12;
        for _ in 0..questions {
            let Some(after) = skip_name(msg, pos, &mut labels) else {
                return;
            };
            pos = after + 4;
        }
        for _ in 0..answers.min(DNS_MAX_ANSWERS) {
            let Some(after) = skip_name(msg, pos, &mut labels) else {
                return;
            };
            let Some(fixed) = msg.get(after..after + 10) else {
                return;
            };
            let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
            let class = u16::from_be_bytes([fixed[2], fixed[3]]);
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            let rdata = after + 10;
            if rdata + rdlen > msg.len() {
                return;
            }
            match (rtype, class, rdlen) {
                (1, 1, 4) => self.sites.push(Site::V4(at + rdata)),
                (28, 1, 16) => self.sites.push(Site::V6(at + rdata)),
                _ => {}
            }
            pos = rdata + rdlen;
        }
    }
}

/// The offset after the (possibly compressed) name at `pos`; `None` when malformed.
fn skip_name(msg: &[u8], mut pos: usize, labels: &mut usize) -> Option<usize> {
    loop {
        *labels = labels.checked_sub(1)?;
        let len = *msg.get(pos)?;
        match len & 0xC0 {
            0xC0 => return msg.get(pos + 1).map(|_| pos + 2),
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            _ => return None,
        }
    }
}

/// VXLAN as the decoder's strict probe wants it: exact flags and a plausible inner frame.
fn strict_vxlan(payload: &[u8]) -> Option<VxlanSlice<'_>> {
    VxlanSlice::from_slice_strict(payload)
        .ok()
        .filter(|vx| plausible_frame(vx.payload()))
}

/// Geneve as the decoder's strict probe wants it.
fn strict_geneve(payload: &[u8]) -> Option<GeneveSlice<'_>> {
    GeneveSlice::from_slice_strict(payload)
        .ok()
        .filter(|g| match g.protocol_type() {
            num::TEB => plausible_frame(g.payload()),
            _ => plausible_ip(g.payload()),
        })
}

fn plausible_frame(frame: &[u8]) -> bool {
    match etherparse::Ethernet2Slice::from_slice_without_fcs(frame) {
        Ok(eth) => match eth.ether_type().0 {
            num::IPV4 | num::IPV6 => plausible_ip(eth.payload_slice()),
            _ => false,
        },
        Err(_) => false,
    }
}

fn plausible_ip(bytes: &[u8]) -> bool {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => etherparse::Ipv4HeaderSlice::from_slice(bytes)
            .is_ok_and(|h| h.to_header().calc_header_checksum() == h.header_checksum()),
        Some(6) => etherparse::Ipv6HeaderSlice::from_slice(bytes).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn ip4(frame: &[u8], at: usize) -> [u8; 4] {
        frame[at..at + 4].try_into().unwrap()
    }

    /// Ones'-complement sum of `parts` is all ones: the checksum inside them is valid.
    fn valid(parts: &[&[u8]]) -> bool {
        let sum: u64 = parts.iter().map(|p| u64::from(sum16(p))).sum();
        fold64(sum) == 0xFFFF
    }

    fn pseudo4(frame: &[u8], ip_at: usize, proto: u8, len: usize) -> Vec<u8> {
        let mut p = frame[ip_at + 12..ip_at + 20].to_vec();
        p.extend_from_slice(&[0, proto]);
        p.extend_from_slice(&(len as u16).to_be_bytes());
        p
    }

    /// Ethernet / IPv4 10.10.0.5 -> 203.0.113.50 / UDP 40000 -> 4789 (checksum set) / VXLAN
    /// VNI 100 / Ethernet / IPv4 10.1.2.3 -> 198.51.100.7 / TCP 1234 -> 443 with 5 bytes.
    fn vxlan_frame() -> Vec<u8> {
        let inner = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 1, 2, 3], [198, 51, 100, 7], 64)
            .tcp(1234, 443, 1, 1000);
        let mut inner_bytes = Vec::new();
        inner.write(&mut inner_bytes, b"hello").unwrap();
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 100, 0];
        vxlan.extend_from_slice(&inner_bytes);
        let outer = PacketBuilder::ethernet2([3; 6], [4; 6])
            .ipv4([10, 10, 0, 5], [203, 0, 113, 50], 64)
            .udp(40000, 4789);
        let mut frame = Vec::new();
        outer.write(&mut frame, &vxlan).unwrap();
        frame
    }

    #[test]
    fn moves_outer_and_inner_addresses_and_keeps_checksums_valid() {
        let rw = PassRewriter::new(&Config::default());
        let mut frame = vxlan_frame();
        let original = frame.clone();
        assert_ne!(
            u16::from_be_bytes([frame[40], frame[41]]),
            0,
            "etherparse set the outer UDP checksum"
        );
        rw.rewrite(LinkType::ETHERNET, &mut frame, 1, &mut Scratch::default());
        // Outer IPv4 at 14, UDP at 34, VXLAN at 42, inner Ethernet at 50, inner IPv4 at 64.
        assert_eq!(ip4(&frame, 26), [10, 10, 1, 5]);
        assert_eq!(ip4(&frame, 30), [203, 0, 114, 50]);
        assert_eq!(ip4(&frame, 76), [10, 1, 3, 3]);
        assert_eq!(ip4(&frame, 80), [198, 51, 101, 7]);
        assert!(valid(&[&frame[14..34]]), "outer IPv4 header checksum");
        assert!(valid(&[&frame[64..84]]), "inner IPv4 header checksum");
        let tcp_len = frame.len() - 84;
        assert!(
            valid(&[&pseudo4(&frame, 64, 6, tcp_len), &frame[84..]]),
            "inner TCP checksum"
        );
        let udp_len = frame.len() - 34;
        assert!(
            valid(&[&pseudo4(&frame, 14, 17, udp_len), &frame[34..]]),
            "outer UDP checksum covers the inner changes"
        );
        // Pass 0 is the input itself; pass 256 comes back to it.
        let mut same = original.clone();
        rw.rewrite(LinkType::ETHERNET, &mut same, 0, &mut Scratch::default());
        assert_eq!(same, original);
        rw.rewrite(LinkType::ETHERNET, &mut same, 256, &mut Scratch::default());
        assert_eq!(same, original);
    }

    #[test]
    fn home_membership_and_special_addresses_stay() {
        let mut config = Config::default();
        config.mirror.approved_collectors = vec!["203.0.113.50/32".parse().unwrap()];
        let rw = PassRewriter::new(&config);
        for (a, pass) in [
            ("10.255.7.1", 1u64),
            ("172.31.200.9", 77),
            ("192.168.255.1", 3),
        ] {
            let ip: IpAddr = a.parse().unwrap();
            let m = rw.map(ip, pass);
            assert_ne!(m, ip, "{a} moves");
            assert!(config.is_home(m), "{a} -> {m} stays home");
        }
        for a in ["8.8.8.8", "2001:db8::1"] {
            let ip: IpAddr = a.parse().unwrap();
            let m = rw.map(ip, 5);
            assert_ne!(m, ip);
            assert!(!config.is_home(m), "{a} -> {m} stays outside home");
        }
        assert_eq!(
            rw.map("2001:db8::1".parse().unwrap(), 1),
            "2001:db8:0:100::1".parse::<IpAddr>().unwrap()
        );
        for a in [
            "203.0.113.50",
            "255.255.255.255",
            "224.0.0.251",
            "169.254.1.1",
            "0.0.0.0",
            "ff02::fb",
            "fe80::1",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(rw.map(ip, 9), ip, "{a} stays");
        }
        // A /32 home network leaves no IPv4 bits to move.
        let mut host = Config::default();
        host.networks.home = vec!["10.0.0.1/32".parse().unwrap()];
        assert_eq!(PassRewriter::new(&host).moves(), (false, true));
    }

    #[test]
    fn moves_dns_answers_and_icmp_quotes() {
        let rw = PassRewriter::new(&Config::default());
        // DNS response over IPv6: one question (a.example A), one answer 203.0.113.66.
        let mut dns = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        dns.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
        dns.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 66]);
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6(
                "2001:db8::53"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
                "2001:db8::9"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
                64,
            )
            .udp(53, 40000);
        let mut frame = Vec::new();
        b.write(&mut frame, &dns).unwrap();
        rw.rewrite(LinkType::ETHERNET, &mut frame, 2, &mut Scratch::default());
        let n = frame.len();
        assert_eq!(ip4(&frame, n - 4), [203, 0, 115, 66], "the A answer moves");
        let mut pseudo = frame[22..54].to_vec();
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
        pseudo.extend_from_slice(&((n - 54) as u32).to_be_bytes());
        assert!(valid(&[&pseudo, &frame[54..]]), "UDP over IPv6 checksum");
        // ICMP port unreachable from 10.0.0.1 quoting UDP 10.1.2.3 -> 8.8.8.8.
        let quoted = PacketBuilder::ipv4([10, 1, 2, 3], [8, 8, 8, 8], 64).udp(5000, 53);
        let mut q = Vec::new();
        quoted.write(&mut q, &[]).unwrap();
        let icmp = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 1, 2, 3], 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ));
        let mut frame = Vec::new();
        icmp.write(&mut frame, &q).unwrap();
        rw.rewrite(LinkType::ETHERNET, &mut frame, 1, &mut Scratch::default());
        // ICMP at 34, quoted IPv4 at 42.
        assert_eq!(ip4(&frame, 54), [10, 1, 3, 3]);
        assert_eq!(ip4(&frame, 58), [8, 8, 9, 8]);
        assert!(valid(&[&frame[42..62]]), "quoted IPv4 header checksum");
        assert!(valid(&[&frame[34..]]), "ICMP checksum");
    }

    #[test]
    fn every_cut_of_a_frame_is_rewritten_without_panic() {
        let rw = PassRewriter::new(&Config::default());
        let full = vxlan_frame();
        let mut scratch = Scratch::default();
        for len in 0..=full.len() {
            let mut cut = full[..len].to_vec();
            rw.rewrite(LinkType::ETHERNET, &mut cut, 3, &mut scratch);
            // A cut frame still gets its addresses moved once the header holding them is in.
            if len >= 34 {
                assert_eq!(ip4(&cut, 30), [203, 0, 116, 50], "cut at {len}");
            }
        }
        for link in [
            LinkType::RAW,
            LinkType::NULL,
            LinkType::LINUX_SLL,
            LinkType::PPI,
        ] {
            let mut bytes = full.clone();
            rw.rewrite(link, &mut bytes, 1, &mut scratch);
        }
    }
}
