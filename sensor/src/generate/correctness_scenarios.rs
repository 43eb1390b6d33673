//! Decoding correctness scenarios (issue 17 items 3 to 9, issue 16 IP-in-IP): ordinary
//! conversations written in the shapes the decoder once got wrong, so the case runner holds
//! each fix.
//!
//! Conversations come from [`conversation`](super::conversation); the shapes are applied to
//! the finished frame bytes (a zeroed IPv4 total length, a PPPoE header, extra VLAN tags) or by
//! an encapsulation layer (a mirror cut, IP in IP). Times are fixed offsets: the seed picks
//! ports, sequence numbers and payload bytes only, so the counts in each `checks.toml` hold
//! for any seed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ScenarioFn;
use super::conversation::{
    Conversation, DnsExchange, Endpoint, Exchange, TcpSession, TimedFrame, http_exchange,
};
use super::encap::{Encap, EncapKind, EncapStack, RawCarrier, RawPayload};
use super::frame::{Link, LinkTags, mac_for};
use super::timeline::Timeline;
use super::{GenerateError, ScenarioInfo};

/// The decoding correctness scenarios, in a fixed order.
pub(super) const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "decode-edge-frames",
        description: "TSO segments with IPv4 total length 0, a VXLAN mirror cut inside the TCP \
                      header, DNS from source port 6081, PPPoE sessions, four and nine stacked \
                      VLAN tags",
    },
    ScenarioInfo {
        name: "ipip-mirror",
        description: "A mirror carried in IP in IP (4in4, IP protocol 4, and 6in4, protocol 41) \
                      to an external collector, as Linux `ipip`/`sit` devices send it",
    },
];

/// The builder of scenario `name`, if it is one of these.
pub(super) fn builder(name: &str) -> Option<ScenarioFn> {
    let builder: ScenarioFn = match name {
        "decode-edge-frames" => decode_edge_frames,
        "ipip-mirror" => ipip_mirror,
        _ => return None,
    };
    Some(builder)
}

/// Offsets in an untagged Ethernet frame carrying IPv4.
const ETH_LEN: usize = 14;
/// EtherType field of an Ethernet header.
const ETHER_TYPE_AT: usize = 12;
/// A mirror copy leaves the source this long after the packet it copies.
const MIRROR_DELAY_US: u64 = 35;
/// Conversations of a scenario start this far apart.
const SPACING_US: u64 = 500_000;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn link(src: IpAddr, dst: IpAddr) -> Link {
    Link {
        src_mac: mac_for(src),
        dst_mac: mac_for(dst),
        tags: LinkTags::Untagged,
    }
}

/// An HTTP connection from `client` (ephemeral port from the seed) to `server` port 80, one GET
/// with a `body_len` response, segments of at most `mss` bytes.
fn http(
    rng: &mut ChaCha8Rng,
    client: IpAddr,
    server: IpAddr,
    body_len: usize,
    mss: u16,
) -> Conversation {
    let exchange: Exchange = http_exchange(rng, "www.example.com", body_len);
    Conversation::Tcp(TcpSession {
        client: Endpoint {
            ip: client,
            port: rng.random_range(32_768..=60_999),
        },
        server: Endpoint {
            ip: server,
            port: 80,
        },
        link: link(client, server),
        rtt_us: rng.random_range(1_000..=5_000),
        mss,
        exchanges: vec![exchange],
    })
}

/// Ethernet bytes of every frame, with their times.
fn wire(frames: &[TimedFrame]) -> Result<Vec<(u64, Vec<u8>)>, GenerateError> {
    frames
        .iter()
        .map(|f| Ok((f.time_us, f.frame.to_ethernet_bytes()?)))
        .collect()
}

/// Replaces the EtherType of an untagged frame with `header` (ending in the new EtherType's
/// payload start) followed by the network bytes.
fn relink(frame: &[u8], ether_type: u16, header: &[u8]) -> Vec<u8> {
    let mut out = frame.get(..ETHER_TYPE_AT).unwrap_or_default().to_vec();
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(frame.get(ETH_LEN..).unwrap_or_default());
    out
}

/// `n` 802.1Q tags (VLAN 100 + i) in front of the frame's own EtherType.
fn vlan_stack(frame: &[u8], n: u16) -> Vec<u8> {
    let own = frame
        .get(ETHER_TYPE_AT..ETH_LEN)
        .map_or(0x0800, |b| u16::from_be_bytes([b[0], b[1]]));
    let mut tags = Vec::new();
    for i in 0..n {
        tags.extend_from_slice(&(100 + i).to_be_bytes());
        let next = if i + 1 == n { own } else { 0x8100 };
        tags.extend_from_slice(&next.to_be_bytes());
    }
    relink(frame, 0x8100, &tags)
}

fn decode_edge_frames(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut timeline = Timeline::new();

    // 1. TSO (item 3): segments of 3000 bytes whose IPv4 total length is 0, as a capture on
    // the sending host sees them before the NIC splits them. Segments over the Ethernet MTU
    // get the zero length; the handshake, the request and the ACKs keep theirs.
    let (tso_client, tso_server) = (v4(10, 60, 0, 1), v4(10, 60, 0, 2));
    let tso = http(rng, tso_client, tso_server, 9000, 3000);
    for (t, mut bytes) in wire(&tso.frames(0, rng)?)? {
        if bytes.len() > ETH_LEN + 1500 {
            if let Some(len) = bytes.get_mut(ETH_LEN + 2..ETH_LEN + 4) {
                len.copy_from_slice(&[0, 0]);
            }
        }
        timeline.push(t, bytes);
    }

    // 2. A VXLAN mirror that keeps 46 bytes of each frame (item 4): Ethernet 14, IPv4 20 and
    // 12 bytes of TCP, both ports included. Every copy is cut inside the TCP header.
    let (cut_client, cut_server) = (v4(10, 61, 0, 1), v4(10, 61, 0, 2));
    let cut = http(rng, cut_client, cut_server, 400, 1460);
    let layer = Encap::new(
        EncapKind::Vxlan { vni: 61 },
        v4(10, 61, 1, 1),
        v4(10, 61, 1, 2),
    )
    .with_payload_limit(ETH_LEN + 20 + 12);
    let mut stack = EncapStack::new(vec![layer], rng);
    for timed in cut.frames(SPACING_US, rng)? {
        let outer = stack.wrap(&timed.frame, timed.time_us)?;
        timeline.push(timed.time_us + MIRROR_DELAY_US, outer.to_ethernet_bytes()?);
    }

    // 3. DNS from source port 6081, the Geneve port (item 7): a query and its reply.
    let (dns_client, resolver) = (v4(10, 62, 0, 1), v4(10, 62, 0, 53));
    let dns = Conversation::Dns(DnsExchange {
        client: Endpoint {
            ip: dns_client,
            port: 6081,
        },
        server: Endpoint {
            ip: resolver,
            port: 53,
        },
        link: link(dns_client, resolver),
        rtt_us: 800,
        query_name: "api.example.com".to_owned(),
        answer: v4(198, 51, 100, 62),
    });
    for (t, bytes) in wire(&dns.frames(2 * SPACING_US, rng)?)? {
        timeline.push(t, bytes);
    }

    // 4. A PPPoE session (item 8): session id 0x0063, PPP protocol 0x0021 (IPv4).
    let (ppp_client, ppp_server) = (v4(10, 63, 0, 1), v4(10, 63, 0, 2));
    let ppp = http(rng, ppp_client, ppp_server, 600, 1452);
    for (t, bytes) in wire(&ppp.frames(3 * SPACING_US, rng)?)? {
        let ip_len = bytes.len().saturating_sub(ETH_LEN);
        let ppp_len =
            u16::try_from(ip_len + 2).map_err(|e| GenerateError::build("PPPoE header", e))?;
        let mut header = vec![0x11, 0x00, 0x00, 0x63];
        header.extend_from_slice(&ppp_len.to_be_bytes());
        header.extend_from_slice(&[0x00, 0x21]);
        timeline.push(t, relink(&bytes, 0x8864, &header));
    }

    // 5. Four stacked 802.1Q tags on one connection (item 9), and one frame with nine, past
    // the decoder's limit of eight.
    let (vlan_client, vlan_server) = (v4(10, 64, 0, 1), v4(10, 64, 0, 2));
    let tagged = http(rng, vlan_client, vlan_server, 600, 1460);
    let tagged_frames = wire(&tagged.frames(4 * SPACING_US, rng)?)?;
    let mut last_us = 0;
    for (t, bytes) in &tagged_frames {
        timeline.push(*t, vlan_stack(bytes, 4));
        last_us = *t;
    }
    if let Some((_, first)) = tagged_frames.first() {
        timeline.push(last_us + 1_000, vlan_stack(first, 9));
    }
    Ok(timeline)
}

fn ipip_mirror(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut timeline = Timeline::new();
    let source = v4(10, 70, 0, 5);
    let collector = v4(203, 0, 113, 70);
    // A mirrored host's traffic: an HTTP GET over IPv4 and one over IPv6, both directions.
    let host_v4 = v4(10, 70, 0, 5);
    let web_v4 = v4(198, 51, 100, 70);
    let host_v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x70, 0, 0, 0, 0, 5));
    let web_v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x170, 0, 0, 0, 0, 0x20));
    let raw = |protocol| EncapKind::Raw {
        carrier: RawCarrier::Ip { protocol },
        header: Vec::new(),
        payload: RawPayload::Ip,
    };
    // 4in4 (`ipip` device, `tc ... mirred egress mirror dev ipip0`) and 6in4 (`sit`).
    let sessions = [
        (http(rng, host_v4, web_v4, 2400, 1460), raw(4)),
        (http(rng, host_v6, web_v6, 1800, 1440), raw(41)),
    ];
    for (i, (conversation, kind)) in sessions.into_iter().enumerate() {
        let mut stack = EncapStack::new(vec![Encap::new(kind, source, collector)], rng);
        for timed in conversation.frames(i as u64 * SPACING_US, rng)? {
            let outer = stack.wrap(&timed.frame, timed.time_us)?;
            timeline.push(timed.time_us + MIRROR_DELAY_US, outer.to_ethernet_bytes()?);
        }
    }
    Ok(timeline)
}
