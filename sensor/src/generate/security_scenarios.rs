//! Scenarios of an adversary who has read the code (issues 17 and 19): traffic shaped to
//! blind or mislead the tunnel table, the mirror classification and the name cache.
//!
//! - `tunnel-id-flood`: a new VXLAN VNI every packet from one outer pair (the table-filling
//!   flood), and two real mirrors while it goes on, one of them from the flooding pair itself.
//! - `overlay-plus-mirror-vni` / `overlay-then-mirror-vni`: between the same two VTEPs, a
//!   one-way mirror VNI and an ordinary two-way overlay VNI, in either order.
//! - `beacon-forged-dns`: a beacon to an untrusted host, and forged DNS answers naming that
//!   host under an allowlisted domain, with no query, before and after the beacon.
//! - `beacon-rogue-resolver`: a host asks a server of the attacker's directly and gets a
//!   solicited answer naming the C2 under an allowlisted domain (`[beacon] name_resolvers`).
//! - `beacon-baseline-poisoning`: spoofed SYNs from a home address to forty external hosts
//!   (the baseline-poisoning attempt of issue 19 item 8), then a real beacon to one of them.
//!
//! As everywhere in the generator, the shape (hosts, counts, ids) is fixed here and the seed
//! only picks values, so the checks of each case hold for any seed.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::PacketBuilder;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ScenarioFn;
use super::conversation::{
    Conversation, DnsExchange, Endpoint, Exchange, IcmpEcho, TcpSession, TimedFrame, UdpDatagrams,
    dns_message, http_exchange,
};
use super::encap::{Encap, EncapKind, EncapStack};
use super::frame::{Link, LinkTags, mac_for};
use super::timeline::Timeline;
use super::{GenerateError, ScenarioInfo};

/// The scenarios of this file, in a fixed order.
pub(super) const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "tunnel-id-flood",
        description: "600 VXLAN packets from 10.66.0.1 to 10.66.0.2, a new VNI each, and two \
                      real mirrors during the flood: VNI 100 from 10.10.0.5 to 203.0.113.50 \
                      and VNI 7 from the flooding pair",
    },
    ScenarioInfo {
        name: "overlay-plus-mirror-vni",
        description: "Between VTEPs 10.0.0.11 and 10.0.0.12: VNI 200 a one-way mirror of three \
                      conversations, then VNI 100 a two-way overlay conversation",
    },
    ScenarioInfo {
        name: "overlay-then-mirror-vni",
        description: "The same two VNIs between the same VTEPs, the overlay first",
    },
    ScenarioInfo {
        name: "beacon-forged-dns",
        description: "A once-a-minute beacon to 203.0.113.66, and forged unsolicited DNS \
                      answers naming it cdn.vendor.example (allowlisted) before and after",
    },
    ScenarioInfo {
        name: "beacon-rogue-resolver",
        description: "10.30.2.9 asks 198.51.100.53 (not a resolver) for cdn.vendor.example \
                      and gets 203.0.113.67, then beacons to it once a minute",
    },
    ScenarioInfo {
        name: "beacon-baseline-poisoning",
        description: "Spoofed SYNs from 10.30.2.7 to 203.0.113.100-139, then once-a-minute \
                      beacons from 10.30.2.7 to 203.0.113.120 and 203.0.113.130",
    },
];

/// The builder of scenario `name`, if it is one of these.
pub(super) fn builder(name: &str) -> Option<ScenarioFn> {
    let builder: ScenarioFn = match name {
        "tunnel-id-flood" => tunnel_id_flood,
        "overlay-plus-mirror-vni" => overlay_plus_mirror_vni,
        "overlay-then-mirror-vni" => overlay_then_mirror_vni,
        "beacon-forged-dns" => beacon_forged_dns,
        "beacon-baseline-poisoning" => beacon_baseline_poisoning,
        "beacon-rogue-resolver" => beacon_rogue_resolver,
        _ => return None,
    };
    Some(builder)
}

const SECOND_US: u64 = 1_000_000;
const MINUTE_US: u64 = 60 * SECOND_US;
/// A mirror copy leaves the source this long after the packet it copies.
const MIRROR_DELAY_US: u64 = 35;

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

fn endpoint(ip: IpAddr, port: u16) -> Endpoint {
    Endpoint { ip, port }
}

/// An HTTP connection from `client` to `server` port 80 with one GET answered by a
/// `body_len`-byte body: 6 packets from the client, 2 + segments from the server.
fn http(rng: &mut ChaCha8Rng, client: Endpoint, server: IpAddr, body_len: usize) -> Conversation {
    Conversation::Tcp(TcpSession {
        client,
        server: endpoint(server, 80),
        link: link(client.ip, server),
        rtt_us: rng.random_range(8_000..=40_000),
        mss: 1460,
        exchanges: vec![http_exchange(rng, "www.example.com", body_len)],
    })
}

/// Three conversations of one host, 16 packets: a DNS lookup (2), an HTTP GET with a
/// 2400-byte body (10: 6 from the client, SYN/ACK, 2 segments, FIN from the server) and two
/// pings (4). Sorted by time.
fn three_conversations(
    rng: &mut ChaCha8Rng,
    host: IpAddr,
    resolver: IpAddr,
    web: IpAddr,
    start_us: u64,
) -> Result<Vec<TimedFrame>, GenerateError> {
    let dns = Conversation::Dns(DnsExchange {
        client: endpoint(host, rng.random_range(32_768..=45_000)),
        server: endpoint(resolver, 53),
        link: link(host, resolver),
        rtt_us: rng.random_range(300..=1_500),
        query_name: "api.example.com".to_owned(),
        answer: web,
    });
    let client_port = rng.random_range(45_001..=60_999);
    let web_get = http(rng, endpoint(host, client_port), web, 2400);
    let ping = Conversation::IcmpEcho(IcmpEcho {
        client: host,
        server: web,
        link: link(host, web),
        rtt_us: rng.random_range(8_000..=40_000),
        count: 2,
        interval_us: 200_000,
    });
    let mut frames = dns.frames(start_us, rng)?;
    frames.extend(web_get.frames(start_us + 100_000, rng)?);
    frames.extend(ping.frames(start_us + 200_000, rng)?);
    frames.sort_by_key(|f| f.time_us);
    Ok(frames)
}

/// Wraps each frame in `stack` and adds it to `timeline` a moment after the original.
fn mirror_into(
    timeline: &mut Timeline,
    stack: &mut EncapStack,
    frames: &[TimedFrame],
) -> Result<(), GenerateError> {
    for timed in frames {
        let outer = stack.wrap(&timed.frame, timed.time_us)?;
        timeline.push(timed.time_us + MIRROR_DELAY_US, outer.to_ethernet_bytes()?);
    }
    Ok(())
}

/// Flood packets.
const FLOOD_PACKETS: u32 = 600;
/// One flood packet every 2 ms, from t = 0 (the last at 1.198 s).
const FLOOD_STEP_US: u64 = 2_000;
/// The real mirrors start here, during the flood.
const MIRRORS_START_US: u64 = 600_000;

/// `tunnel-id-flood`: 600 VXLAN packets from 10.66.0.1 to 10.66.0.2, each with a VNI of its
/// own (a random base plus the packet index) carrying one UDP datagram; from 0.6 s, during the
/// flood, a mirror of three conversations of 10.10.0.5 in VNI 100 to 203.0.113.50 (16
/// packets), and one of 10.10.0.7 in VNI 7 from the flooding pair itself (16 packets).
fn tunnel_id_flood(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let flooder = v4(10, 66, 0, 1);
    let target = v4(10, 66, 0, 2);
    let mut timeline = Timeline::new();
    let vni_base = rng.random_range(1_000..=1_000_000);
    for pkt_idx in 0..FLOOD_PACKETS {
        let time_us = u64::from(pkt_idx) * FLOOD_STEP_US;
        let inner = Conversation::Udp(UdpDatagrams {
            client: endpoint(v4(192, 168, 9, 9), rng.random_range(1_024..=65_000)),
            server: endpoint(v4(198, 51, 100, 9), 443),
            link: link(v4(192, 168, 9, 9), v4(198, 51, 100, 9)),
            rtt_us: 1_000,
            count: 1,
            interval_us: SECOND_US,
            min_payload: 16,
            max_payload: 64,
        });
        let frames = inner.frames(time_us, rng)?;
        let first = frames
            .first()
            .ok_or_else(|| GenerateError::build("flood", "no datagram"))?;
        let layer = Encap::new(
            EncapKind::Vxlan {
                vni: vni_base + pkt_idx,
            },
            flooder,
            target,
        );
        let mut stack = EncapStack::new(vec![layer], rng);
        let outer = stack.wrap(&first.frame, time_us)?;
        timeline.push(time_us, outer.to_ethernet_bytes()?);
    }
    let resolver = v4(10, 10, 0, 2);
    let web = v4(198, 51, 100, 20);
    let host_a = three_conversations(rng, v4(10, 10, 0, 5), resolver, web, MIRRORS_START_US)?;
    let layer = Encap::new(
        EncapKind::Vxlan { vni: 100 },
        v4(10, 10, 0, 5),
        v4(203, 0, 113, 50),
    );
    let mut stack = EncapStack::new(vec![layer], rng);
    mirror_into(&mut timeline, &mut stack, &host_a)?;
    let host_b = three_conversations(rng, v4(10, 10, 0, 7), resolver, web, MIRRORS_START_US)?;
    let layer = Encap::new(EncapKind::Vxlan { vni: 7 }, flooder, target);
    let mut stack = EncapStack::new(vec![layer], rng);
    mirror_into(&mut timeline, &mut stack, &host_b)?;
    Ok(timeline)
}

/// VTEP A: the mirror source of VNI 200, and one end of the overlay.
const VTEP_A: [u8; 4] = [10, 0, 0, 11];
/// VTEP B: the collector of VNI 200, and the other end of the overlay.
const VTEP_B: [u8; 4] = [10, 0, 0, 12];

/// VNI 200: a one-way mirror from VTEP A to VTEP B of three conversations of 10.20.0.5 (16
/// packets, both directions of each inside A → B). VNI 100: an HTTP GET (2400-byte body, 10
/// packets) from 192.168.50.10 behind A to 192.168.60.20 behind B, each packet in the
/// direction of its VTEP. The second part starts 2 s after the first.
fn overlay_and_mirror(
    rng: &mut ChaCha8Rng,
    overlay_first: bool,
) -> Result<Timeline, GenerateError> {
    let a = IpAddr::from(VTEP_A);
    let b = IpAddr::from(VTEP_B);
    let (mirror_us, overlay_us) = if overlay_first {
        (2 * SECOND_US, 0)
    } else {
        (0, 2 * SECOND_US)
    };
    let mut timeline = Timeline::new();
    let mirrored = three_conversations(
        rng,
        v4(10, 20, 0, 5),
        v4(10, 20, 0, 2),
        v4(198, 51, 100, 20),
        mirror_us,
    )?;
    let mut stack = EncapStack::new(vec![Encap::new(EncapKind::Vxlan { vni: 200 }, a, b)], rng);
    mirror_into(&mut timeline, &mut stack, &mirrored)?;

    let client = v4(192, 168, 50, 10);
    let client_port = rng.random_range(32_768..=60_999);
    let session = http(
        rng,
        endpoint(client, client_port),
        v4(192, 168, 60, 20),
        2400,
    );
    let mut a_to_b = EncapStack::new(vec![Encap::new(EncapKind::Vxlan { vni: 100 }, a, b)], rng);
    let mut b_to_a = EncapStack::new(vec![Encap::new(EncapKind::Vxlan { vni: 100 }, b, a)], rng);
    for timed in session.frames(overlay_us, rng)? {
        let stack = if timed.frame.flow.src_ip == client {
            &mut a_to_b
        } else {
            &mut b_to_a
        };
        let outer = stack.wrap(&timed.frame, timed.time_us)?;
        timeline.push(timed.time_us, outer.to_ethernet_bytes()?);
    }
    Ok(timeline)
}

fn overlay_plus_mirror_vni(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    overlay_and_mirror(rng, false)
}

fn overlay_then_mirror_vni(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    overlay_and_mirror(rng, true)
}

/// An Ethernet frame of one IPv4 UDP datagram.
fn udp_v4(
    src: Ipv4Addr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
    payload: &[u8],
) -> Result<Vec<u8>, GenerateError> {
    let IpAddr::V4(dst_v4) = dst else {
        return Err(GenerateError::build("UDP datagram", "IPv4 only"));
    };
    let builder = PacketBuilder::ethernet2(mac_for(IpAddr::V4(src)), mac_for(dst))
        .ipv4(src.octets(), dst_v4.octets(), 64)
        .udp(src_port, dst_port);
    let mut bytes = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut bytes, payload)
        .map_err(|err| GenerateError::build("UDP datagram", err))?;
    Ok(bytes)
}

/// Beats of the forged-DNS beacon.
const FORGED_BEATS: u64 = 20;

/// `beacon-forged-dns`: 10.30.2.5 connects to 203.0.113.66 port 443 once a minute from
/// t = 60 s, 20 times (9 packets each, fixed sizes). At t = 30 s and at t = 25 min (after the
/// last beat), 198.51.100.53 port 53 sends 10.30.2.5 a DNS answer naming 203.0.113.66
/// `cdn.vendor.example` (allowlisted by the case's config) that no query asked for; at
/// t = 10 s an ordinary lookup of `www.example.org` by 10.30.2.5 to the home resolver
/// 10.40.0.53 is answered (2 packets), so the cache does learn answers to real queries.
fn beacon_forged_dns(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let client = v4(10, 30, 2, 5);
    let c2 = v4(203, 0, 113, 66);
    let forger = Ipv4Addr::new(198, 51, 100, 53);
    let mut timeline = Timeline::new();
    let lookup = Conversation::Dns(DnsExchange {
        client: endpoint(client, rng.random_range(32_768..=60_999)),
        server: endpoint(v4(10, 40, 0, 53), 53),
        link: link(client, v4(10, 40, 0, 53)),
        rtt_us: rng.random_range(300..=1_500),
        query_name: "www.example.org".to_owned(),
        answer: v4(198, 51, 100, 80),
    });
    for timed in lookup.frames(10 * SECOND_US, rng)? {
        timeline.push(timed.time_us, timed.frame.to_ethernet_bytes()?);
    }
    for time_us in [30 * SECOND_US, 25 * MINUTE_US] {
        let answer = dns_message(rng.random(), "cdn.vendor.example", Some(c2))?;
        let client_port = rng.random_range(32_768..=60_999);
        timeline.push(time_us, udp_v4(forger, 53, client, client_port, &answer)?);
    }
    let mut port = rng.random_range(32_768..=40_000u16);
    for beat in 0..FORGED_BEATS {
        let time_us = (beat + 1) * MINUTE_US;
        port += rng.random_range(1..=4);
        let session = Conversation::Tcp(TcpSession {
            client: endpoint(client, port),
            server: endpoint(c2, 443),
            link: link(client, c2),
            rtt_us: rng.random_range(20_000..=40_000),
            mss: 1460,
            exchanges: vec![Exchange {
                request: (0..200).map(|_| rng.random::<u8>()).collect(),
                response: (0..300).map(|_| rng.random::<u8>()).collect(),
            }],
        });
        for timed in session.frames(time_us, rng)? {
            timeline.push(timed.time_us, timed.frame.to_ethernet_bytes()?);
        }
    }
    Ok(timeline)
}

/// Targets of the spoofed SYNs of `beacon-baseline-poisoning`, 203.0.113.100 onwards.
const SPOOFED_TARGETS: u8 = 40;
/// The real C2s later: target 20 (spoofed on port 80, its beacon on 443: another pair) and
/// target 30 (spoofed on 443: the spoofed connection is the first of its beacon's pair).
/// Both answer their spoofed SYN (even targets do).
const POISONED_C2: [(u8, u64); 2] = [(120, 110), (130, 130)];
/// Beats of each real beacon.
const POISONED_BEATS: u64 = 12;

/// A bare TCP segment (no payload): a SYN, a SYN-ACK acknowledging `ack`, or a RST.
#[derive(Clone, Copy)]
enum Bare {
    Syn,
    SynAck(u32),
    Rst,
}

fn tcp_v4_bare(
    src: IpAddr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
    seq: u32,
    kind: Bare,
) -> Result<Vec<u8>, GenerateError> {
    let (IpAddr::V4(s4), IpAddr::V4(d4)) = (src, dst) else {
        return Err(GenerateError::build("TCP segment", "IPv4 only"));
    };
    let base = PacketBuilder::ethernet2(mac_for(src), mac_for(dst))
        .ipv4(s4.octets(), d4.octets(), 64)
        .tcp(src_port, dst_port, seq, 64_240);
    let builder = match kind {
        Bare::Syn => base.syn(),
        Bare::SynAck(ack) => base.syn().ack(ack),
        Bare::Rst => base.rst(),
    };
    let mut bytes = Vec::with_capacity(builder.size(0));
    builder
        .write(&mut bytes, &[])
        .map_err(|err| GenerateError::build("TCP segment", err))?;
    Ok(bytes)
}

/// `beacon-baseline-poisoning` (issue 19 item 8): from t = 10 s, one SYN every 2 s "from"
/// 10.30.2.7 to 203.0.113.100 + i (i = 0..40) port 443 (port 80 for i = 20), spoofed: the
/// even targets answer with a SYN-ACK and the real 10.30.2.7, which never sent the SYN,
/// resets (3 packets), the odd ones never answer (1 packet): 100 packets, no payload either
/// way. Then 10.30.2.7 really connects to 203.0.113.120 (from t = 110 s) and to
/// 203.0.113.130 (from t = 130 s, one minute after its spoofed SYN) port 443 once a minute,
/// 12 times each: handshake, 200 bytes up, 300 down, close (9 packets).
fn beacon_baseline_poisoning(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let home = v4(10, 30, 2, 7);
    let mut timeline = Timeline::new();
    for i in 0..SPOOFED_TARGETS {
        let target = v4(203, 0, 113, 100 + i);
        let dport = if i == 20 { 80 } else { 443 };
        let time_us = 10 * SECOND_US + u64::from(i) * 2 * SECOND_US;
        let port: u16 = rng.random_range(32_768..=60_999);
        let seq: u32 = rng.random();
        timeline.push(
            time_us,
            tcp_v4_bare(home, port, target, dport, seq, Bare::Syn)?,
        );
        if i % 2 == 0 {
            let rtt_us = rng.random_range(20_000..=40_000);
            let ack = seq.wrapping_add(1);
            let synack = tcp_v4_bare(target, dport, home, port, rng.random(), Bare::SynAck(ack))?;
            timeline.push(time_us + rtt_us, synack);
            // RFC 9293 3.10.7.1: a segment acknowledging nothing sent is answered by a RST
            // whose sequence number is that acknowledgement, without ACK.
            let rst = tcp_v4_bare(home, port, target, dport, ack, Bare::Rst)?;
            timeline.push(time_us + rtt_us + 60, rst);
        }
    }
    for (last_octet, start_s) in POISONED_C2 {
        let c2 = v4(203, 0, 113, last_octet);
        let mut port = rng.random_range(32_768..=40_000u16);
        for beat in 0..POISONED_BEATS {
            let time_us = start_s * SECOND_US + beat * MINUTE_US;
            port += rng.random_range(1..=4);
            let session = Conversation::Tcp(TcpSession {
                client: endpoint(home, port),
                server: endpoint(c2, 443),
                link: link(home, c2),
                rtt_us: rng.random_range(20_000..=40_000),
                mss: 1460,
                exchanges: vec![Exchange {
                    request: (0..200).map(|_| rng.random::<u8>()).collect(),
                    response: (0..300).map(|_| rng.random::<u8>()).collect(),
                }],
            });
            for timed in session.frames(time_us, rng)? {
                timeline.push(timed.time_us, timed.frame.to_ethernet_bytes()?);
            }
        }
    }
    Ok(timeline)
}

/// Beats of the rogue-resolver beacon.
const ROGUE_BEATS: u64 = 12;

/// `beacon-rogue-resolver` (issue 19 item 2, the optional setting): at t = 10 s, 10.30.2.9
/// looks up `www.example.org` at the home resolver 10.40.0.53 (2 packets); at t = 30 s it
/// asks 198.51.100.53, a server of the attacker's, for `cdn.vendor.example` and gets
/// 203.0.113.67 (2 packets: a real query and its matching answer, which the query match
/// cannot refuse); from t = 60 s it connects to 203.0.113.67 port 443 once a minute, 12
/// times (9 packets each).
fn beacon_rogue_resolver(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let client = v4(10, 30, 2, 9);
    let c2 = v4(203, 0, 113, 67);
    let mut timeline = Timeline::new();
    for (time_us, server, name, answer) in [
        (
            10 * SECOND_US,
            v4(10, 40, 0, 53),
            "www.example.org",
            v4(198, 51, 100, 80),
        ),
        (
            30 * SECOND_US,
            v4(198, 51, 100, 53),
            "cdn.vendor.example",
            c2,
        ),
    ] {
        let lookup = Conversation::Dns(DnsExchange {
            client: endpoint(client, rng.random_range(32_768..=60_999)),
            server: endpoint(server, 53),
            link: link(client, server),
            rtt_us: rng.random_range(300..=1_500),
            query_name: name.to_owned(),
            answer,
        });
        for timed in lookup.frames(time_us, rng)? {
            timeline.push(timed.time_us, timed.frame.to_ethernet_bytes()?);
        }
    }
    let mut port = rng.random_range(32_768..=40_000u16);
    for beat in 0..ROGUE_BEATS {
        let time_us = (beat + 1) * MINUTE_US;
        port += rng.random_range(1..=4);
        let session = Conversation::Tcp(TcpSession {
            client: endpoint(client, port),
            server: endpoint(c2, 443),
            link: link(client, c2),
            rtt_us: rng.random_range(20_000..=40_000),
            mss: 1460,
            exchanges: vec![Exchange {
                request: (0..200).map(|_| rng.random::<u8>()).collect(),
                response: (0..300).map(|_| rng.random::<u8>()).collect(),
            }],
        });
        for timed in session.frames(time_us, rng)? {
            timeline.push(timed.time_us, timed.frame.to_ethernet_bytes()?);
        }
    }
    Ok(timeline)
}
