//! Scenarios of issue 11 (alerts an analyst can trust): the shapes an attacker injects,
//! judged by the vantage point, next to their benign look-alikes on the same feed.
//!
//! Times are fixed offsets; the seed picks ports, sequence numbers, IP ids and payload bytes
//! only, so the counts in each case's `checks.toml` hold for any seed.

use std::net::{IpAddr, Ipv4Addr};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ScenarioFn;
use super::encap::{Encap, EncapKind, EncapStack};
use super::extraneous_scenarios::{
    ACK, CLIENT, CLIENT_B, Client, Conn, DATA, RESOLVER, RTT_US, S, SYN, Server, server, udp_frame,
};
use super::frame::{ETHERTYPE_IPV4, FlowTuple, Frame, Link, mac_for};
use super::timeline::Timeline;
use super::{GenerateError, ScenarioInfo};

/// The precision scenarios, in a fixed order.
pub(super) const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "precision-one-sided",
        description: "A one-way data burst and a lone SYN-ACK in a two-sided feed (alerts); the \
                      same in a one-direction feed, a connection resumed after an idle gap and \
                      connections open at the start with warm-up 0 (silent)",
    },
    ScenarioInfo {
        name: "precision-keepalives",
        description: "STUN, SIP, WireGuard and NAT-T keep-alives to external hosts (counted, \
                      silent); an unrecognised fixed-size UDP heartbeat (alert); DNS retries and \
                      broadcast repeats (silent)",
    },
    ScenarioInfo {
        name: "precision-mirror-sampled",
        description: "A VXLAN mirror copying two packets of each of 50 connections: one \
                      mirror_stream alert and nothing else",
    },
];

/// The builder of scenario `name`, if it is one of these.
pub(super) fn builder(name: &str) -> Option<ScenarioFn> {
    let builder: ScenarioFn = match name {
        "precision-one-sided" => one_sided,
        "precision-keepalives" => keepalives,
        "precision-mirror-sampled" => mirror_sampled,
        _ => return None,
    };
    Some(builder)
}

/// Warm-up 0 (`config.toml`). Client 10.30.0.10 and server 192.0.2.40 talk both ways
/// (three connections), then the server sends five data segments on a connection nobody
/// opened and nobody answers (`no_handshake`), and a SYN-ACK nobody asked for
/// (`unsolicited_synack`). Client 10.30.0.11 and server 192.0.2.41 are seen one way only
/// (three connections of client packets): the same two shapes there are silent. A connection
/// to 192.0.2.42 idles 400 s (beyond the 300 s flow idle timeout) and resumes; a connection
/// to 192.0.2.43 is open when the capture starts. 88 packets.
fn one_sided(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    // Open when the capture starts: data both ways, consistent numbers.
    let mut open = Conn::new(rng, CLIENT, server(43), 443);
    open.exchange(rng, &mut tl, 0, 200, 900)?;
    open.exchange(rng, &mut tl, S / 2, 200, 900)?;

    // The two-sided host pair.
    let mut t = S;
    for _ in 0..3 {
        let mut c = Conn::new(rng, CLIENT, server(40), 443);
        let at = c.handshake(rng, &mut tl, t)?;
        let at = c.exchange(rng, &mut tl, at, 300, 1_200)?;
        c.close(rng, &mut tl, at)?;
        t += S;
    }
    // Injected: five server data segments, no handshake, no answer.
    let mut injected = Conn::new(rng, CLIENT, server(40), 8443);
    for i in 0..5 {
        tl.push(5 * S + i * 2_000, injected.send(rng, Server, DATA, 500)?);
    }
    // A lone SYN-ACK from the server, never answered.
    let mut lone = Conn::new(rng, CLIENT, server(40), 9443);
    tl.push(6 * S, lone.send(rng, Server, SYN | ACK, 0)?);

    // The one-direction feed: only the client's packets of three connections.
    let mut t = S;
    for _ in 0..3 {
        let mut c = Conn::new(rng, CLIENT_B, server(41), 443);
        let syn = c.send(rng, Client, SYN, 0)?;
        let _synack = c.send(rng, Server, SYN | ACK, 0)?;
        tl.push(t, syn);
        tl.push(t + RTT_US, c.send(rng, Client, ACK, 0)?);
        tl.push(t + RTT_US + 100, c.send(rng, Client, DATA, 300)?);
        t += S;
    }
    let mut injected_b = Conn::new(rng, CLIENT_B, server(41), 8443);
    for i in 0..5 {
        tl.push(5 * S + i * 2_000, injected_b.send(rng, Server, DATA, 500)?);
    }
    let mut lone_b = Conn::new(rng, CLIENT_B, server(41), 9443);
    tl.push(6 * S, lone_b.send(rng, Server, SYN | ACK, 0)?);

    // Resumed after an idle gap longer than the flow idle timeout.
    let mut resumed = Conn::new(rng, CLIENT, server(42), 22);
    let at = resumed.handshake(rng, &mut tl, 7 * S)?;
    resumed.exchange(rng, &mut tl, at, 100, 100)?;
    resumed.exchange(rng, &mut tl, 407 * S, 100, 100)?;
    resumed.exchange(rng, &mut tl, 408 * S, 100, 100)?;
    Ok(tl)
}

/// Client 10.30.0.10 (home). Every 20 s, 14 times: a STUN binding request to
/// 198.51.100.1:3478, a SIP CRLF keep-alive to 198.51.100.2:5060, a WireGuard keep-alive to
/// 198.51.100.3:51820 and a NAT-T keep-alive to 198.51.100.4:4500 (56 packets, counted, no
/// alert). Every 30 s, 14 times: 48 random bytes to 198.51.100.9:7777 (an unrecognised
/// heartbeat, one `beacon.heartbeat`). A DNS query to the resolver sent three times, 1 s
/// apart, with new IP ids (retries), and its answer (4); a DHCP discover broadcast twice with
/// the same IP id 50 ms apart, and an SSDP search to 239.255.255.250 twice 30 ms apart (4):
/// no duplicate. 78 packets.
fn keepalives(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    let ext = |d: u8| Ipv4Addr::new(198, 51, 100, d);
    let mut ip_id: u16 = rng.random();
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend((0..12).map(|_| rng.random::<u8>()));
    let mut wireguard = vec![4, 0, 0, 0];
    wireguard.extend((0..28).map(|_| rng.random::<u8>()));
    let shapes: [(u8, u16, Vec<u8>); 4] = [
        (1, 3478, stun),
        (2, 5060, b"\r\n\r\n".to_vec()),
        (3, 51820, wireguard),
        (4, 4500, vec![0xff]),
    ];
    let ports: Vec<u16> = (0..5).map(|_| rng.random_range(40_000..=60_999)).collect();
    for i in 0..14u64 {
        for (k, (dst, dport, payload)) in shapes.iter().enumerate() {
            let sport = ports.get(k).copied().unwrap_or(40_000);
            let at = 10 * S + i * 20 * S + k as u64 * 1_000;
            tl.push(
                at,
                udp_frame((CLIENT, sport), (ext(*dst), *dport), &mut ip_id, payload)?,
            );
        }
    }
    let hb_port = ports.get(4).copied().unwrap_or(40_001);
    for i in 0..14u64 {
        let payload: Vec<u8> = (0..48).map(|_| rng.random::<u8>()).collect();
        tl.push(
            12 * S + i * 30 * S,
            udp_frame((CLIENT, hb_port), (ext(9), 7777), &mut ip_id, &payload)?,
        );
    }
    // DNS retries: the same query, new IP ids.
    let query = dns_query(rng.random());
    let dns_port = rng.random_range(40_000..=60_999);
    for i in 0..3u64 {
        tl.push(
            S + i * S,
            udp_frame((CLIENT, dns_port), (RESOLVER, 53), &mut ip_id, &query)?,
        );
    }
    let mut answer = query.clone();
    if let Some(flags) = answer.get_mut(2) {
        *flags |= 0x80;
    }
    let mut resolver_id: u16 = rng.random();
    tl.push(
        3 * S + RTT_US,
        udp_frame(
            (RESOLVER, 53),
            (CLIENT, dns_port),
            &mut resolver_id,
            &answer,
        )?,
    );
    // Broadcast and multicast repeats with the same IP id.
    let discover: Vec<u8> = (0..240).map(|_| rng.random::<u8>()).collect();
    let any = Ipv4Addr::UNSPECIFIED;
    let bcast = Ipv4Addr::BROADCAST;
    let id = ip_id;
    for k in 0..2u64 {
        let mut same = id;
        tl.push(
            2 * S + k * 50_000,
            udp_frame((any, 68), (bcast, 67), &mut same, &discover)?,
        );
    }
    let search = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n".to_vec();
    let ssdp = Ipv4Addr::new(239, 255, 255, 250);
    let ssdp_port = rng.random_range(40_000..=60_999);
    for k in 0..2u64 {
        let mut same = id.wrapping_add(7);
        tl.push(
            2 * S + 500_000 + k * 30_000,
            udp_frame((CLIENT, ssdp_port), (ssdp, 1900), &mut same, &search)?,
        );
    }
    Ok(tl)
}

/// A DNS query for `www.example.org` A with transaction id `id`.
fn dns_query(id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(b"\x03www\x07example\x03org\x00\x00\x01\x00\x01");
    m
}

/// 50 connections from 10.40.0.0/24 clients to 198.51.100.80:443 that this capture does not
/// see, and a VXLAN mirror (VNI 300, from 10.10.0.5 to the external 203.0.113.60) copying two
/// packets of each: the client's request and the server's response, no handshake (100
/// packets). One `mirror_stream` alert; nothing for the copied connections.
fn mirror_sampled(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    let srv = Ipv4Addr::new(198, 51, 100, 80);
    let layer = Encap::new(
        EncapKind::Vxlan { vni: 300 },
        IpAddr::V4(Ipv4Addr::new(10, 10, 0, 5)),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 60)),
    );
    let mut stack = EncapStack::new(vec![layer], rng);
    for i in 0..50u64 {
        let client = Ipv4Addr::new(10, 40, 0, 10 + (i % 20) as u8);
        let mut c = Conn::new(rng, client, srv, 443);
        // The connection happens elsewhere: only the mirror's copies reach this capture.
        let t = i * 200_000;
        for (from, flags) in [(Client, SYN), (Server, SYN | ACK), (Client, ACK)] {
            c.send(rng, from, flags, 0)?;
        }
        let request = c.send(rng, Client, DATA, 200)?;
        let response = c.send(rng, Server, DATA, 700)?;
        for (at, bytes, from_client) in [(t, request, true), (t + RTT_US, response, false)] {
            let (src, dst, sport, dport) = if from_client {
                (client, srv, c.client.port, 443)
            } else {
                (srv, client, 443, c.client.port)
            };
            let inner = Frame {
                link: Link {
                    src_mac: mac_for(IpAddr::V4(src)),
                    dst_mac: mac_for(IpAddr::V4(dst)),
                    ..Link::default()
                },
                ether_type: ETHERTYPE_IPV4,
                network_bytes: bytes.get(14..).unwrap_or_default().to_vec(),
                flow: FlowTuple {
                    src_ip: IpAddr::V4(src),
                    dst_ip: IpAddr::V4(dst),
                    src_port: sport,
                    dst_port: dport,
                    ip_proto: 6,
                },
            };
            let outer = stack.wrap(&inner, at + 40)?;
            tl.push(at + 40, outer.to_ethernet_bytes()?);
        }
    }
    Ok(tl)
}
