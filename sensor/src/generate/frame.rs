//! Link-layer framing for generated packets: Ethernet II, 802.1Q, QinQ (802.1ad) and MPLS.
//!
//! A [`Frame`] keeps the network-layer packet apart from its link header so an encapsulation
//! can carry either the whole Ethernet frame (VXLAN, GRE-TEB, ERSPAN) or the bare IP packet
//! (IP-in-GRE, Geneve with protocol 0x0800). Standard headers are written with `etherparse`;
//! only the MPLS label stack, which etherparse does not write, is encoded here.

use std::net::IpAddr;

use etherparse::{EtherType, Ethernet2Header, SingleVlanHeader, VlanId, VlanPcp};

use super::GenerateError;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// EtherType of transparent Ethernet bridging (an Ethernet frame follows).
pub const ETHERTYPE_TEB: u16 = 0x6558;
/// EtherType of an MPLS unicast label stack.
pub const ETHERTYPE_MPLS_UNICAST: u16 = 0x8847;
/// Bottom-of-stack bit in an MPLS label entry.
const MPLS_BOTTOM_OF_STACK: u32 = 1 << 8;
/// TTL written in each MPLS label entry.
const MPLS_TTL: u32 = 64;

/// A 48-bit MAC address.
pub type Mac = [u8; 6];

/// Tags between the Ethernet addresses and the network-layer packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LinkTags {
    /// Plain Ethernet II.
    #[default]
    Untagged,
    /// One 802.1Q tag (TPID 0x8100).
    Vlan {
        /// VLAN identifier (12 bits).
        vlan_id: u16,
    },
    /// 802.1ad QinQ: a service tag (TPID 0x88a8) around a customer tag (0x8100).
    QinQ {
        /// Service (outer) VLAN identifier.
        outer_vlan_id: u16,
        /// Customer (inner) VLAN identifier.
        inner_vlan_id: u16,
    },
    /// An MPLS label stack (EtherType 0x8847), outermost label first; the last one gets the
    /// bottom-of-stack bit.
    Mpls {
        /// The 20-bit labels.
        labels: Vec<u32>,
    },
}

/// The link header of a frame: addresses and tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// Source MAC.
    pub src_mac: Mac,
    /// Destination MAC.
    pub dst_mac: Mac,
    /// VLAN or MPLS tags.
    pub tags: LinkTags,
}

/// The flow a frame belongs to, as its sender sees it; used for flow-hash source ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTuple {
    /// Network source.
    pub src_ip: IpAddr,
    /// Network destination.
    pub dst_ip: IpAddr,
    /// Transport source port (ICMP: the echo identifier).
    pub src_port: u16,
    /// Transport destination port (ICMP: the echo identifier).
    pub dst_port: u16,
    /// IP protocol number.
    pub ip_proto: u8,
}

impl FlowTuple {
    /// A hash that is the same for both directions of a flow (FNV-1a over the ordered
    /// endpoints), mixed with `salt` so layers of one stack pick unrelated values.
    pub fn symmetric_hash(&self, salt: u32) -> u32 {
        let side_a = (self.src_ip, self.src_port);
        let side_b = (self.dst_ip, self.dst_port);
        let (low, high) = if side_a <= side_b {
            (side_a, side_b)
        } else {
            (side_b, side_a)
        };
        let mut hash = Fnv1a::new();
        hash.write(&salt.to_be_bytes());
        for (ip, port) in [low, high] {
            match ip {
                IpAddr::V4(v4) => hash.write(&v4.octets()),
                IpAddr::V6(v6) => hash.write(&v6.octets()),
            }
            hash.write(&port.to_be_bytes());
        }
        hash.write(&[self.ip_proto]);
        hash.finish()
    }
}

/// A link-layer frame under construction: link header, EtherType and network-layer bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Addresses and tags.
    pub link: Link,
    /// EtherType of `network_bytes` (after any tags).
    pub ether_type: u16,
    /// The network-layer packet (IPv4 or IPv6), possibly cut short by a mirror.
    pub network_bytes: Vec<u8>,
    /// The innermost flow this frame carries, kept through encapsulation for hashing.
    pub flow: FlowTuple,
}

impl Frame {
    /// The frame as it appears on the wire (no FCS).
    pub fn to_ethernet_bytes(&self) -> Result<Vec<u8>, GenerateError> {
        let mut out = Vec::with_capacity(22 + self.network_bytes.len());
        let first_ether_type = match &self.link.tags {
            LinkTags::Untagged => self.ether_type,
            LinkTags::Vlan { .. } => EtherType::VLAN_TAGGED_FRAME.0,
            LinkTags::QinQ { .. } => EtherType::PROVIDER_BRIDGING.0,
            LinkTags::Mpls { .. } => ETHERTYPE_MPLS_UNICAST,
        };
        let ethernet = Ethernet2Header {
            source: self.link.src_mac,
            destination: self.link.dst_mac,
            ether_type: EtherType(first_ether_type),
        };
        out.extend_from_slice(&ethernet.to_bytes());
        match &self.link.tags {
            LinkTags::Untagged => {}
            LinkTags::Vlan { vlan_id } => {
                out.extend_from_slice(&vlan_tag(*vlan_id, self.ether_type)?.to_bytes());
            }
            LinkTags::QinQ {
                outer_vlan_id,
                inner_vlan_id,
            } => {
                let outer = vlan_tag(*outer_vlan_id, EtherType::VLAN_TAGGED_FRAME.0)?;
                out.extend_from_slice(&outer.to_bytes());
                out.extend_from_slice(&vlan_tag(*inner_vlan_id, self.ether_type)?.to_bytes());
            }
            LinkTags::Mpls { labels } => {
                for (label_idx, label) in labels.iter().enumerate() {
                    if *label > 0x000F_FFFF {
                        return Err(GenerateError::build("MPLS label", "label exceeds 20 bits"));
                    }
                    let bottom = if label_idx + 1 == labels.len() {
                        MPLS_BOTTOM_OF_STACK
                    } else {
                        0
                    };
                    out.extend_from_slice(&((label << 12) | bottom | MPLS_TTL).to_be_bytes());
                }
            }
        }
        out.extend_from_slice(&self.network_bytes);
        Ok(out)
    }
}

/// A locally administered unicast MAC derived from an address, so each host keeps one MAC.
pub fn mac_for(ip: IpAddr) -> Mac {
    let hash = Fnv1a::hash_ip(ip);
    let bytes = hash.to_be_bytes();
    [0x02, 0x4d, bytes[0], bytes[1], bytes[2], bytes[3]]
}

fn vlan_tag(vlan_id: u16, ether_type: u16) -> Result<SingleVlanHeader, GenerateError> {
    let vlan_id = VlanId::try_new(vlan_id).map_err(|err| GenerateError::build("VLAN tag", err))?;
    Ok(SingleVlanHeader {
        pcp: VlanPcp::ZERO,
        drop_eligible_indicator: false,
        vlan_id,
        ether_type: EtherType(ether_type),
    })
}

/// 32-bit FNV-1a: small, stable across platforms and releases, good enough to spread ports.
struct Fnv1a(u32);

impl Fnv1a {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;

    fn new() -> Self {
        Fnv1a(Self::OFFSET_BASIS)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u32::from(*byte)).wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u32 {
        self.0
    }

    fn hash_ip(ip: IpAddr) -> u32 {
        let mut hash = Fnv1a::new();
        match ip {
            IpAddr::V4(v4) => hash.write(&v4.octets()),
            IpAddr::V6(v6) => hash.write(&v6.octets()),
        }
        hash.finish()
    }
}
