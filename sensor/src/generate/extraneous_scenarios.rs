//! The extraneous-packet scenarios: TCP, DNS and ICMP traffic written packet by packet, with
//! exactly the anomaly (or the ordinary oddity) each case is about.
//!
//! The conversation generators make complete, correct exchanges; these cases need packets
//! that break the rules on purpose (a SYN-ACK nobody asked for, an acknowledgement of data
//! never sent, a sequence number far outside the window), so a [`Conn`] here writes each
//! segment from two small per-side models (sequence and acknowledgement numbers, IP id) and
//! can also write a segment with chosen numbers that changes neither. Times are fixed offsets:
//! the seed picks ports, initial sequence numbers, IP ids, DNS ids and payload bytes only, so
//! the counts in each case's `checks.toml` hold for any seed.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    Icmpv4Type, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, PacketBuilder, TcpHeader,
    TcpOptionElement, icmpv4::DestUnreachableHeader,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ScenarioFn;
use super::conversation::dns_message;
use super::encap::{Encap, EncapKind, EncapStack};
use super::frame::{ETHERTYPE_IPV4, FlowTuple, Frame, Link, mac_for};
use super::timeline::Timeline;
use super::{GenerateError, ScenarioInfo};

/// The extraneous-packet scenarios, in a fixed order.
pub(super) const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "extraneous-no-handshake",
        description: "A two-sided TCP flow without handshake after a 2 s warm-up (alert), a \
                      midstream flow during the warm-up and a one-sided one (silent)",
    },
    ScenarioInfo {
        name: "extraneous-after-close",
        description: "New data 2.4 s after a completed FIN exchange (alert); a late FIN \
                      retransmission and data in flight just after a RST (silent)",
    },
    ScenarioInfo {
        name: "extraneous-unsolicited-synack",
        description: "A SYN-ACK answered by a RST (alert); a handshake captured SYN-ACK first \
                      and an unanswered one-sided SYN-ACK (silent)",
    },
    ScenarioInfo {
        name: "extraneous-ack-unseen-data",
        description: "An acknowledgement 50000 bytes beyond the peer's data (alert); an \
                      acknowledgement of segments the capture lost (silent)",
    },
    ScenarioInfo {
        name: "extraneous-out-of-window",
        description: "A segment 100000000 bytes ahead of a scaled window (alert); a jump the \
                      receiver then acknowledges, a capture gap (withdrawn)",
    },
    ScenarioInfo {
        name: "extraneous-orphan-response",
        description: "A DNS response with an id never asked and an ICMP error quoting a flow \
                      never seen (alerts); a response-only DNS flow and an ICMP error about a \
                      seen flow (silent)",
    },
    ScenarioInfo {
        name: "extraneous-duplicate",
        description: "Three segments of a 126-packet connection captured twice, a \
                      duplicating pattern (alert); one segment of another host pair's \
                      connection captured twice, a glitch (silent); VXLAN copies of five \
                      packets (a mirror, not a duplicate)",
    },
    ScenarioInfo {
        name: "extraneous-clean",
        description: "Retransmission, reordering, keep-alives, port reuse after TIME_WAIT, \
                      simultaneous open and one-sided flows, with no warm-up: no alert",
    },
    ScenarioInfo {
        name: "extraneous-midstream-start",
        description: "A capture that starts in the middle of three connections, then two new \
                      ones, with the default warm-up: no alert",
    },
];

/// The builder of scenario `name`, if it is one of these.
pub(super) fn builder(name: &str) -> Option<ScenarioFn> {
    let builder: ScenarioFn = match name {
        "extraneous-no-handshake" => no_handshake,
        "extraneous-after-close" => after_close,
        "extraneous-unsolicited-synack" => unsolicited_synack,
        "extraneous-ack-unseen-data" => ack_unseen_data,
        "extraneous-out-of-window" => out_of_window,
        "extraneous-orphan-response" => orphan_response,
        "extraneous-duplicate" => duplicate,
        "extraneous-clean" => clean,
        "extraneous-midstream-start" => midstream_start,
        _ => return None,
    };
    Some(builder)
}

pub(super) const FIN: u8 = 0x01;
pub(super) const SYN: u8 = 0x02;
pub(super) const RST: u8 = 0x04;
const PSH: u8 = 0x08;
pub(super) const ACK: u8 = 0x10;
pub(super) const DATA: u8 = PSH | ACK;

/// The client host of every case.
pub(super) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 30, 0, 10);
/// A second client.
pub(super) const CLIENT_B: Ipv4Addr = Ipv4Addr::new(10, 30, 0, 11);
/// The resolver.
pub(super) const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 30, 0, 2);
/// Unscaled window every side advertises.
const WINDOW: u16 = 64_240;
/// Raw window of the scaled connection (502 << 7 = 64256 bytes).
const SCALED_WINDOW: u16 = 502;
/// Window scale both SYNs of the scaled connection carry.
const WINDOW_SCALE: u8 = 7;
/// Round trip between client and servers.
pub(super) const RTT_US: u64 = 20_000;
/// Microseconds per second.
pub(super) const S: u64 = 1_000_000;

pub(super) fn server(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

/// One side of a TCP connection as its packets show it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer {
    pub(super) ip: Ipv4Addr,
    pub(super) port: u16,
    /// Next sequence number to send.
    pub(super) seq: u32,
    /// Acknowledgement to send (the peer's next sequence number as this side received it).
    pub(super) ack: u32,
    pub(super) ip_id: u16,
}

/// Which side sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Client,
    Server,
}

pub(super) use Side::{Client, Server};

/// A TCP connection written segment by segment.
pub(super) struct Conn {
    pub(super) client: Peer,
    pub(super) server: Peer,
    /// Window scale option on SYNs.
    wscale: Option<u8>,
    window: u16,
}

impl Conn {
    pub(super) fn new(
        rng: &mut ChaCha8Rng,
        client: Ipv4Addr,
        server: Ipv4Addr,
        server_port: u16,
    ) -> Conn {
        let client_port = rng.random_range(32_768..=60_999);
        Conn::with_ports(rng, client, client_port, server, server_port)
    }

    fn with_ports(
        rng: &mut ChaCha8Rng,
        client: Ipv4Addr,
        client_port: u16,
        server: Ipv4Addr,
        server_port: u16,
    ) -> Conn {
        let (c_isn, s_isn): (u32, u32) = (rng.random(), rng.random());
        Conn {
            client: Peer {
                ip: client,
                port: client_port,
                seq: c_isn,
                ack: 0,
                ip_id: rng.random(),
            },
            server: Peer {
                ip: server,
                port: server_port,
                seq: s_isn,
                ack: 0,
                ip_id: rng.random(),
            },
            wscale: None,
            window: WINDOW,
        }
    }

    fn sides(&mut self, from: Side) -> (&mut Peer, &mut Peer) {
        match from {
            Client => (&mut self.client, &mut self.server),
            Server => (&mut self.server, &mut self.client),
        }
    }

    /// A segment at the sender's sequence number; the receiver takes it in (its next
    /// acknowledgement covers it).
    pub(super) fn send(
        &mut self,
        rng: &mut ChaCha8Rng,
        from: Side,
        flags: u8,
        len: usize,
    ) -> Result<Vec<u8>, GenerateError> {
        let (wscale, window) = (self.wscale, self.window);
        let (me, peer) = self.sides(from);
        let (seq, ack) = (me.seq, me.ack);
        let advance = len as u32 + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        me.seq = me.seq.wrapping_add(advance);
        peer.ack = me.seq;
        let window = if flags & SYN != 0 { WINDOW } else { window };
        tcp_frame(rng, me, peer, flags, seq, ack, window, wscale, len)
    }

    /// A segment with chosen numbers; neither side's state changes.
    pub(super) fn craft(
        &mut self,
        rng: &mut ChaCha8Rng,
        from: Side,
        flags: u8,
        seq: u32,
        ack: u32,
        len: usize,
    ) -> Result<Vec<u8>, GenerateError> {
        let (wscale, window) = (self.wscale, self.window);
        let (me, peer) = self.sides(from);
        tcp_frame(rng, me, peer, flags, seq, ack, window, wscale, len)
    }

    /// SYN, SYN-ACK, ACK from `t`; returns the time after the last.
    pub(super) fn handshake(
        &mut self,
        rng: &mut ChaCha8Rng,
        tl: &mut Timeline,
        t: u64,
    ) -> Result<u64, GenerateError> {
        tl.push(t, self.send(rng, Client, SYN, 0)?);
        tl.push(t + RTT_US, self.send(rng, Server, SYN | ACK, 0)?);
        tl.push(t + RTT_US + 100, self.send(rng, Client, ACK, 0)?);
        Ok(t + RTT_US + 1_000)
    }

    /// A request, its response and the client's ACK; returns the time after the last.
    pub(super) fn exchange(
        &mut self,
        rng: &mut ChaCha8Rng,
        tl: &mut Timeline,
        t: u64,
        request: usize,
        response: usize,
    ) -> Result<u64, GenerateError> {
        tl.push(t, self.send(rng, Client, DATA, request)?);
        tl.push(t + RTT_US, self.send(rng, Server, DATA, response)?);
        tl.push(t + RTT_US + 100, self.send(rng, Client, ACK, 0)?);
        Ok(t + RTT_US + 1_000)
    }

    /// FIN from the client, FIN from the server, last ACK; returns the time after the last.
    pub(super) fn close(
        &mut self,
        rng: &mut ChaCha8Rng,
        tl: &mut Timeline,
        t: u64,
    ) -> Result<u64, GenerateError> {
        tl.push(t, self.send(rng, Client, FIN | ACK, 0)?);
        tl.push(t + RTT_US, self.send(rng, Server, FIN | ACK, 0)?);
        tl.push(t + RTT_US + 100, self.send(rng, Client, ACK, 0)?);
        Ok(t + RTT_US + 1_000)
    }
}

/// IPv4 headers from `src` to `dst` with the sender's next IP id.
fn ipv4(src: &mut Peer, dst: Ipv4Addr, proto: IpNumber) -> Result<IpHeaders, GenerateError> {
    ipv4_from(src.ip, &mut src.ip_id, dst, proto)
}

fn ipv4_from(
    src: Ipv4Addr,
    ip_id: &mut u16,
    dst: Ipv4Addr,
    proto: IpNumber,
) -> Result<IpHeaders, GenerateError> {
    let mut h = Ipv4Header::new(0, 64, proto, src.octets(), dst.octets())
        .map_err(|e| GenerateError::build("IPv4 header", e))?;
    h.identification = *ip_id;
    *ip_id = ip_id.wrapping_add(1);
    Ok(IpHeaders::Ipv4(h, Ipv4Extensions::default()))
}

/// An Ethernet frame around `network` bytes from `src` to `dst`.
fn ethernet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    network: Vec<u8>,
    flow: FlowTuple,
) -> Result<Vec<u8>, GenerateError> {
    Frame {
        link: Link {
            src_mac: mac_for(IpAddr::V4(src)),
            dst_mac: mac_for(IpAddr::V4(dst)),
            ..Link::default()
        },
        ether_type: ETHERTYPE_IPV4,
        network_bytes: network,
        flow,
    }
    .to_ethernet_bytes()
}

#[allow(clippy::too_many_arguments)] // One TCP segment has that many fields.
fn tcp_frame(
    rng: &mut ChaCha8Rng,
    me: &mut Peer,
    peer: &Peer,
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    wscale: Option<u8>,
    len: usize,
) -> Result<Vec<u8>, GenerateError> {
    let mut h = TcpHeader::new(me.port, peer.port, seq, window);
    h.fin = flags & FIN != 0;
    h.syn = flags & SYN != 0;
    h.rst = flags & RST != 0;
    h.psh = flags & PSH != 0;
    if flags & ACK != 0 {
        h.ack = true;
        h.acknowledgment_number = ack;
    }
    if h.syn {
        let mut options = vec![TcpOptionElement::MaximumSegmentSize(1460)];
        if let Some(shift) = wscale {
            options.push(TcpOptionElement::Noop);
            options.push(TcpOptionElement::WindowScale(shift));
        }
        h.set_options(&options)
            .map_err(|e| GenerateError::build("TCP options", e))?;
    }
    let payload: Vec<u8> = (0..len).map(|_| rng.random_range(b'a'..=b'z')).collect();
    let builder = PacketBuilder::ip(ipv4(me, peer.ip, IpNumber::TCP)?).tcp_header(h);
    let mut bytes = Vec::with_capacity(builder.size(len));
    builder
        .write(&mut bytes, &payload)
        .map_err(|e| GenerateError::build("TCP segment", e))?;
    let flow = FlowTuple {
        src_ip: IpAddr::V4(me.ip),
        dst_ip: IpAddr::V4(peer.ip),
        src_port: me.port,
        dst_port: peer.port,
        ip_proto: 6,
    };
    ethernet(me.ip, peer.ip, bytes, flow)
}

/// A UDP datagram (IP packet only).
fn udp_packet(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    ip_id: &mut u16,
    payload: &[u8],
) -> Result<Vec<u8>, GenerateError> {
    let builder =
        PacketBuilder::ip(ipv4_from(src.0, ip_id, dst.0, IpNumber::UDP)?).udp(src.1, dst.1);
    let mut bytes = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut bytes, payload)
        .map_err(|e| GenerateError::build("UDP datagram", e))?;
    Ok(bytes)
}

pub(super) fn udp_frame(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    ip_id: &mut u16,
    payload: &[u8],
) -> Result<Vec<u8>, GenerateError> {
    let flow = FlowTuple {
        src_ip: IpAddr::V4(src.0),
        dst_ip: IpAddr::V4(dst.0),
        src_port: src.1,
        dst_port: dst.1,
        ip_proto: 17,
    };
    ethernet(src.0, dst.0, udp_packet(src, dst, ip_id, payload)?, flow)
}

/// An ICMP port unreachable from `router` to the sender of `quoted` (an IP packet), quoting
/// its IP header and first 8 payload bytes.
fn port_unreachable(
    router: Ipv4Addr,
    to: Ipv4Addr,
    ip_id: &mut u16,
    quoted: &[u8],
) -> Result<Vec<u8>, GenerateError> {
    unreachable(router, to, ip_id, quoted, DestUnreachableHeader::Port)
}

/// An ICMP destination unreachable of `kind` from `router` to `to`, quoting the first 28
/// bytes of `quoted`.
fn unreachable(
    router: Ipv4Addr,
    to: Ipv4Addr,
    ip_id: &mut u16,
    quoted: &[u8],
    kind: DestUnreachableHeader,
) -> Result<Vec<u8>, GenerateError> {
    let quote = quoted.get(..28).unwrap_or(quoted);
    let builder = PacketBuilder::ip(ipv4_from(router, ip_id, to, IpNumber::ICMP)?)
        .icmpv4(Icmpv4Type::DestinationUnreachable(kind));
    let mut bytes = Vec::with_capacity(builder.size(quote.len()));
    builder
        .write(&mut bytes, quote)
        .map_err(|e| GenerateError::build("ICMP error", e))?;
    let flow = FlowTuple {
        src_ip: IpAddr::V4(router),
        dst_ip: IpAddr::V4(to),
        src_port: 0,
        dst_port: 0,
        ip_proto: 1,
    };
    ethernet(router, to, bytes, flow)
}

/// Warm-up 2 s (`config.toml`). 20 packets: at 0 s a connection already running (3, in the
/// warm-up); at 3 s a connection with handshake and close (9); at 4 s a two-sided connection
/// without handshake (5: the alert, count 5); at 5 s a one-sided one (3).
fn no_handshake(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    let mut early = Conn::new(rng, CLIENT, server(10), 80);
    tl.push(0, early.send(rng, Client, DATA, 100)?);
    tl.push(RTT_US, early.send(rng, Server, DATA, 500)?);
    tl.push(RTT_US + 100, early.send(rng, Client, ACK, 0)?);

    let mut clean = Conn::new(rng, CLIENT, server(11), 80);
    let t = clean.handshake(rng, &mut tl, 3 * S)?;
    let t = clean.exchange(rng, &mut tl, t, 200, 800)?;
    clean.close(rng, &mut tl, t)?;

    // Picked up midstream after the warm-up, and its server acknowledges a sequence space
    // 100000000 bytes away from what the client sent: not an ordinary connection picked up
    // midstream (whose peer would acknowledge the client's data).
    let mut late = Conn::new(rng, CLIENT, server(12), 80);
    let t = 4 * S;
    tl.push(t, late.send(rng, Client, DATA, 300)?);
    let (seq, ack) = (late.server.seq, late.server.ack.wrapping_add(100_000_000));
    tl.push(t + RTT_US, late.craft(rng, Server, DATA, seq, ack, 1_000)?);
    tl.push(t + RTT_US + 100, late.send(rng, Client, ACK, 0)?);
    tl.push(t + RTT_US + 200, late.send(rng, Server, DATA, 400)?);
    tl.push(t + RTT_US + 300, late.send(rng, Client, ACK, 0)?);

    let mut one_sided = Conn::new(rng, CLIENT, server(13), 80);
    for i in 0..3 {
        tl.push(5 * S + i * 1_000, one_sided.send(rng, Client, DATA, 200)?);
    }
    Ok(tl)
}

/// Default configuration. 20 packets: connection 1 (192.0.2.20) closes by FINs (9), the
/// server retransmits its FIN and the client ACKs it 300 ms later (2), then 2.4 s after the
/// close the client sends 120 new bytes (the alert) and the server answers with a RST (2);
/// connection 2 (192.0.2.21) is reset by the client and the server's segment in flight
/// arrives 20 ms later (7, silent).
fn after_close(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    let mut c = Conn::new(rng, CLIENT, server(20), 80);
    let t = c.handshake(rng, &mut tl, 0)?;
    let t = c.exchange(rng, &mut tl, t, 200, 600)?;
    tl.push(t, c.send(rng, Client, FIN | ACK, 0)?);
    let server_fin = c.server.seq;
    tl.push(t + RTT_US, c.send(rng, Server, FIN | ACK, 0)?);
    let closed = t + RTT_US + 100;
    tl.push(closed, c.send(rng, Client, ACK, 0)?);
    let ack = c.server.ack;
    tl.push(
        closed + 300_000,
        c.craft(rng, Server, FIN | ACK, server_fin, ack, 0)?,
    );
    let client_ack = c.client.ack;
    tl.push(
        closed + 300_100,
        c.craft(rng, Client, ACK, c.client.seq, client_ack, 0)?,
    );
    tl.push(closed + 2_400_000, c.send(rng, Client, DATA, 120)?);
    let rst_seq = c.server.seq;
    tl.push(
        closed + 2_400_100 + RTT_US,
        c.craft(rng, Server, RST, rst_seq, 0, 0)?,
    );

    let mut r = Conn::new(rng, CLIENT, server(21), 80);
    let t = r.handshake(rng, &mut tl, 3 * S)?;
    let t = r.exchange(rng, &mut tl, t, 200, 600)?;
    tl.push(t, r.send(rng, Client, RST | ACK, 0)?);
    tl.push(t + 20_000, r.send(rng, Server, DATA, 500)?);
    Ok(tl)
}

/// Warm-up 0 (`config.toml`). 13 packets: 192.0.2.30:443 sends a SYN-ACK that the client
/// answers with a RST (2, the alert); a handshake whose SYN-ACK is captured 50 µs before its
/// SYN, then an exchange and a close (9); two SYN-ACKs to an absent host (2, one-sided).
fn unsolicited_synack(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    let mut u = Conn::new(rng, CLIENT, server(30), 443);
    let synack_ack = u.client.seq.wrapping_add(1);
    tl.push(
        0,
        u.craft(rng, Server, SYN | ACK, u.server.seq, synack_ack, 0)?,
    );
    tl.push(150, u.craft(rng, Client, RST, synack_ack, 0, 0)?);

    let mut r = Conn::new(rng, CLIENT, server(31), 443);
    let syn = r.send(rng, Client, SYN, 0)?;
    let synack = r.send(rng, Server, SYN | ACK, 0)?;
    tl.push(S, synack);
    tl.push(S + 50, syn);
    tl.push(S + 200, r.send(rng, Client, ACK, 0)?);
    let t = r.exchange(rng, &mut tl, S + 1_000, 300, 900)?;
    r.close(rng, &mut tl, t)?;

    let mut absent = Conn::new(rng, Ipv4Addr::new(10, 30, 0, 99), server(32), 443);
    let ack = absent.client.seq.wrapping_add(1);
    let seq = absent.server.seq;
    tl.push(2 * S, absent.craft(rng, Server, SYN | ACK, seq, ack, 0)?);
    tl.push(3 * S, absent.craft(rng, Server, SYN | ACK, seq, ack, 0)?);
    Ok(tl)
}

/// Default configuration. 22 packets: connection 1 (192.0.2.40): after an exchange the
/// client acknowledges 50000 bytes more than the server sent, and 1.2 s later the server
/// goes on from where it was (12, the alert); connection 2 (192.0.2.41): the capture loses
/// two of the server's three segments, the client acknowledges all three and the server goes
/// on after them (10, a capture gap).
fn ack_unseen_data(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    let mut c = Conn::new(rng, CLIENT, server(40), 80);
    let t = c.handshake(rng, &mut tl, 0)?;
    tl.push(t, c.send(rng, Server, DATA, 1_000)?);
    tl.push(t + 100, c.send(rng, Server, DATA, 1_000)?);
    tl.push(t + 200, c.send(rng, Client, ACK, 0)?);
    let claimed = c.client.ack.wrapping_add(50_000);
    let seq = c.client.seq;
    tl.push(t + 100_000, c.craft(rng, Client, ACK, seq, claimed, 0)?);
    tl.push(t + 1_300_000, c.send(rng, Server, DATA, 1_000)?);
    tl.push(t + 1_300_100, c.send(rng, Client, ACK, 0)?);
    c.close(rng, &mut tl, t + 1_400_000)?;

    let mut g = Conn::new(rng, CLIENT, server(41), 80);
    let t = g.handshake(rng, &mut tl, 3 * S)?;
    tl.push(t, g.send(rng, Server, DATA, 1_000)?);
    // Sent, but lost by the capture.
    g.send(rng, Server, DATA, 1_000)?;
    g.send(rng, Server, DATA, 1_000)?;
    tl.push(t + 1_000, g.send(rng, Client, ACK, 0)?);
    tl.push(t + 100_000, g.send(rng, Server, DATA, 1_000)?);
    tl.push(t + 100_100, g.send(rng, Client, ACK, 0)?);
    g.close(rng, &mut tl, t + 200_000)?;
    Ok(tl)
}

/// Default configuration. 20 packets: connection 1 (192.0.2.50, window scale 7 on both SYNs,
/// windows of 64256 bytes) carries a client segment 100000000 bytes ahead of everything (10,
/// the alert); connection 2 (192.0.2.51, same windows): the capture loses 200000 bytes of
/// the client's stream and the server's ACKs of them, so the next client segment looks far
/// ahead until the server acknowledges it (10, withdrawn).
fn out_of_window(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    let mut c = Conn::new(rng, CLIENT, server(50), 80);
    c.wscale = Some(WINDOW_SCALE);
    c.window = SCALED_WINDOW;
    let t = c.handshake(rng, &mut tl, 0)?;
    tl.push(t, c.send(rng, Client, DATA, 300)?);
    tl.push(t + RTT_US, c.send(rng, Server, DATA, 900)?);
    let (seq, ack) = (c.client.seq.wrapping_add(100_000_000), c.client.ack);
    tl.push(t + 50_000, c.craft(rng, Client, DATA, seq, ack, 100)?);
    tl.push(t + 60_000, c.send(rng, Client, ACK, 0)?);
    c.close(rng, &mut tl, t + 100_000)?;

    let mut g = Conn::new(rng, CLIENT, server(51), 80);
    g.wscale = Some(WINDOW_SCALE);
    g.window = SCALED_WINDOW;
    let t = g.handshake(rng, &mut tl, S)?;
    tl.push(t, g.send(rng, Client, DATA, 1_000)?);
    tl.push(t + RTT_US, g.send(rng, Server, ACK, 0)?);
    // 200 segments of 1000 bytes and their ACKs, lost by the capture.
    for _ in 0..200 {
        g.send(rng, Client, DATA, 1_000)?;
    }
    g.send(rng, Server, ACK, 0)?;
    tl.push(t + 300_000, g.send(rng, Client, DATA, 1_000)?);
    tl.push(t + 300_000 + RTT_US, g.send(rng, Server, ACK, 0)?);
    g.close(rng, &mut tl, t + 400_000)?;
    Ok(tl)
}

/// Warm-up 0 (`config.toml`). 7 packets: a DNS query and its response, then a response with
/// another id from the resolver's address (3, alert 1); a response-only DNS flow (1,
/// one-sided); an ICMP port unreachable from 192.0.2.60 quoting a datagram never seen (1,
/// alert 2); a datagram to 192.0.2.61 and the ICMP error about it (2, silent).
fn orphan_response(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    let mut ids: [u16; 4] = [rng.random(), rng.random(), rng.random(), rng.random()];
    let [client_id, resolver_id, router_id, peer_id] = &mut ids;
    let port = rng.random_range(32_768..=60_999);
    let txid: u16 = rng.random();
    let name = "www.example.org";
    let answer = IpAddr::V4(server(70));
    let query = dns_message(txid, name, None)?;
    let response = dns_message(txid, name, Some(answer))?;
    // Another id, and another id modulo 64 (the detector keeps one bit per id % 64).
    let forged = dns_message(txid ^ 1, name, Some(IpAddr::V4(server(66))))?;
    tl.push(
        0,
        udp_frame((CLIENT, port), (RESOLVER, 53), client_id, &query)?,
    );
    tl.push(
        5_000,
        udp_frame((RESOLVER, 53), (CLIENT, port), resolver_id, &response)?,
    );
    tl.push(
        5_300,
        udp_frame((RESOLVER, 53), (CLIENT, port), resolver_id, &forged)?,
    );

    let other_port = rng.random_range(32_768..=60_999);
    let lone = dns_message(rng.random(), name, Some(answer))?;
    tl.push(
        S,
        udp_frame((RESOLVER, 53), (CLIENT_B, other_port), resolver_id, &lone)?,
    );

    let unseen = udp_packet(
        (CLIENT, port.wrapping_add(1)),
        (server(60), 9_999),
        client_id,
        b"probe",
    )?;
    tl.push(
        2 * S,
        port_unreachable(server(60), CLIENT, router_id, &unseen)?,
    );

    let seen = udp_packet(
        (CLIENT_B, other_port),
        (server(61), 7_777),
        client_id,
        b"hello",
    )?;
    let flow = FlowTuple {
        src_ip: IpAddr::V4(CLIENT_B),
        dst_ip: IpAddr::V4(server(61)),
        src_port: other_port,
        dst_port: 7_777,
        ip_proto: 17,
    };
    tl.push(3 * S, ethernet(CLIENT_B, server(61), seen.clone(), flow)?);
    tl.push(
        3 * S + RTT_US,
        port_unreachable(server(61), CLIENT_B, peer_id, &seen)?,
    );

    // A router answers datagrams to four hosts with host unreachable. Each error travels to
    // the worker of the flow it quotes, so its own record must be one per quoted host pair,
    // not one for the router that several workers would each hold a part of.
    let mut router_ip_id: u16 = rng.random();
    for (i, last) in (62..=65).enumerate() {
        let at = 4 * S + i as u64 * 100_000;
        let datagram = udp_packet(
            (CLIENT_B, other_port),
            (server(last), 7_777),
            client_id,
            b"hello",
        )?;
        let flow = FlowTuple {
            src_ip: IpAddr::V4(CLIENT_B),
            dst_ip: IpAddr::V4(server(last)),
            src_port: other_port,
            dst_port: 7_777,
            ip_proto: 17,
        };
        tl.push(
            at,
            ethernet(CLIENT_B, server(last), datagram.clone(), flow)?,
        );
        tl.push(
            at + RTT_US,
            unreachable(
                ROUTER,
                CLIENT_B,
                &mut router_ip_id,
                &datagram,
                DestUnreachableHeader::Host,
            )?,
        );
    }
    Ok(tl)
}

/// The router of `orphan_response`'s host-unreachable errors.
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// Default configuration. 156 packets: a connection to 192.0.2.80 with 40 exchanges (126:
/// handshake, 40 × 3, close) in which the server's responses of exchanges 33, 35 and 37 are
/// captured twice, 30 µs apart (3, the alert: a device duplicating part of a flow repeats a
/// pattern, `min_duplicate_packets` 3); a connection from 10.30.0.11 with 5 exchanges (21)
/// whose third response is captured twice (1: a lone duplicate, a link glitch, silent and
/// counted in `duplicates_isolated`); and VXLAN copies (VNI 100, 10.10.0.5 to 203.0.113.50)
/// of the first connection's first five packets (5: a mirror of it, a separate flow, no
/// duplicate).
///
/// Until the pattern rule (issue 11) this case duplicated one segment only; a copying device
/// repeats what it copies, so one duplicated segment is the shape of a glitch, not of the
/// device, and it is now the silent half of the case.
fn duplicate(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    const EXCHANGES: u64 = 40;
    const DUPLICATED: [u64; 3] = [33, 35, 37];
    const GLITCH_EXCHANGES: u64 = 5;
    const GLITCH: u64 = 3;
    let mut tl = Timeline::new();
    let mut c = Conn::new(rng, CLIENT, server(80), 80);
    let mut first = Vec::new();
    let mut t = 0;
    let syn = c.send(rng, Client, SYN, 0)?;
    let synack = c.send(rng, Server, SYN | ACK, 0)?;
    let ack = c.send(rng, Client, ACK, 0)?;
    for (i, frame) in [syn, synack, ack].into_iter().enumerate() {
        let at = t + i as u64 * RTT_US;
        first.push((at, frame.clone()));
        tl.push(at, frame);
    }
    t += 3 * RTT_US;
    for i in 1..=EXCHANGES {
        let request = c.send(rng, Client, DATA, 100)?;
        let response = c.send(rng, Server, DATA, 500)?;
        if i == 1 {
            first.push((t, request.clone()));
            first.push((t + RTT_US, response.clone()));
        }
        if DUPLICATED.contains(&i) {
            tl.push(t + RTT_US + 30, response.clone());
        }
        tl.push(t, request);
        tl.push(t + RTT_US, response);
        tl.push(t + RTT_US + 100, c.send(rng, Client, ACK, 0)?);
        t += 50_000;
    }
    c.close(rng, &mut tl, t)?;

    let mut g = Conn::new(rng, CLIENT_B, server(80), 80);
    let mut t = t + 500_000;
    tl.push(t, g.send(rng, Client, SYN, 0)?);
    tl.push(t + RTT_US, g.send(rng, Server, SYN | ACK, 0)?);
    tl.push(t + 2 * RTT_US, g.send(rng, Client, ACK, 0)?);
    t += 3 * RTT_US;
    for i in 1..=GLITCH_EXCHANGES {
        tl.push(t, g.send(rng, Client, DATA, 100)?);
        let response = g.send(rng, Server, DATA, 500)?;
        if i == GLITCH {
            tl.push(t + RTT_US + 30, response.clone());
        }
        tl.push(t + RTT_US, response);
        tl.push(t + RTT_US + 100, g.send(rng, Client, ACK, 0)?);
        t += 50_000;
    }
    g.close(rng, &mut tl, t)?;

    let layer = Encap::new(
        EncapKind::Vxlan { vni: 100 },
        IpAddr::V4(Ipv4Addr::new(10, 10, 0, 5)),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 50)),
    );
    let mut stack = EncapStack::new(vec![layer], rng);
    for (at, bytes) in first {
        let inner = Frame {
            link: Link {
                src_mac: mac_for(IpAddr::V4(CLIENT)),
                dst_mac: mac_for(IpAddr::V4(server(80))),
                ..Link::default()
            },
            ether_type: ETHERTYPE_IPV4,
            network_bytes: bytes.get(14..).unwrap_or_default().to_vec(),
            flow: FlowTuple {
                src_ip: IpAddr::V4(CLIENT),
                dst_ip: IpAddr::V4(server(80)),
                src_port: c.client.port,
                dst_port: 80,
                ip_proto: 6,
            },
        };
        let outer = stack.wrap(&inner, at + 35)?;
        tl.push(at + 35, outer.to_ethernet_bytes()?);
    }
    Ok(tl)
}

/// Warm-up 0 (`config.toml`). 70 packets, none extraneous: a server segment retransmitted
/// 200 ms later with a new IP id (10); two server segments captured in swapped order (10);
/// keep-alives of 0 and 1 byte, each answered (13); a connection closed by FINs and the same
/// four-tuple opened again 2 s later (9 + 9: two flow records, the first ended `reused`); a
/// simultaneous open (10); the client side only of a connection (5), the server side only of
/// another (3) and a response-only DNS flow (1).
fn clean(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    // Retransmission.
    let mut r = Conn::new(rng, CLIENT, server(90), 80);
    let t = r.handshake(rng, &mut tl, 0)?;
    tl.push(t, r.send(rng, Client, DATA, 200)?);
    let (seq, ack) = (r.server.seq, r.server.ack);
    tl.push(t + RTT_US, r.send(rng, Server, DATA, 1_000)?);
    tl.push(t + 200_000, r.craft(rng, Server, DATA, seq, ack, 1_000)?);
    tl.push(t + 200_100, r.send(rng, Client, ACK, 0)?);
    r.close(rng, &mut tl, t + 300_000)?;

    // Reordering.
    let mut o = Conn::new(rng, CLIENT, server(91), 80);
    let t = o.handshake(rng, &mut tl, S)?;
    tl.push(t, o.send(rng, Client, DATA, 200)?);
    let first = o.send(rng, Server, DATA, 1_000)?;
    let second = o.send(rng, Server, DATA, 1_000)?;
    tl.push(t + RTT_US, second);
    tl.push(t + RTT_US + 50, first);
    tl.push(t + RTT_US + 150, o.send(rng, Client, ACK, 0)?);
    o.close(rng, &mut tl, t + 100_000)?;

    // Keep-alives (seq = next - 1, 0 or 1 byte), each answered by an ACK.
    let mut k = Conn::new(rng, CLIENT, server(92), 22);
    let t = k.handshake(rng, &mut tl, 2 * S)?;
    let t = k.exchange(rng, &mut tl, t, 100, 100)?;
    for (i, len) in [(1, 0), (2, 1)] {
        let at = t + i * 10 * S;
        let (seq, ack) = (k.client.seq.wrapping_sub(1), k.client.ack);
        tl.push(at, k.craft(rng, Client, ACK, seq, ack, len)?);
        let (seq, ack) = (k.server.seq, k.server.ack);
        tl.push(at + RTT_US, k.craft(rng, Server, ACK, seq, ack, 0)?);
    }
    k.close(rng, &mut tl, t + 25 * S)?;

    // Port reuse after TIME_WAIT: the same four-tuple again, with new initial numbers.
    let mut p = Conn::new(rng, CLIENT_B, server(93), 80);
    let t = p.handshake(rng, &mut tl, 3 * S)?;
    let t = p.exchange(rng, &mut tl, t, 100, 300)?;
    p.close(rng, &mut tl, t)?;
    let port = p.client.port;
    let mut p2 = Conn::with_ports(rng, CLIENT_B, port, server(93), 80);
    let t = p2.handshake(rng, &mut tl, 5 * S)?;
    let t = p2.exchange(rng, &mut tl, t, 100, 300)?;
    p2.close(rng, &mut tl, t)?;

    // Simultaneous open: both SYNs cross, then both SYN-ACKs.
    let mut s = Conn::new(rng, CLIENT, server(94), 5_000);
    let (c_isn, s_isn) = (s.client.seq, s.server.seq);
    tl.push(6 * S, s.send(rng, Client, SYN, 0)?);
    tl.push(6 * S + 10, s.send(rng, Server, SYN, 0)?);
    let (c_ack, s_ack) = (s.client.ack, s.server.ack);
    tl.push(
        6 * S + RTT_US,
        s.craft(rng, Client, SYN | ACK, c_isn, c_ack, 0)?,
    );
    tl.push(
        6 * S + RTT_US + 10,
        s.craft(rng, Server, SYN | ACK, s_isn, s_ack, 0)?,
    );
    let t = s.exchange(rng, &mut tl, 6 * S + 2 * RTT_US, 100, 100)?;
    s.close(rng, &mut tl, t)?;

    // One direction of a connection only (an ingress-only mirror).
    let mut c = Conn::new(rng, CLIENT, server(95), 80);
    let t = 7 * S;
    tl.push(t, c.send(rng, Client, SYN, 0)?);
    c.send(rng, Server, SYN | ACK, 0)?;
    tl.push(t + RTT_US, c.send(rng, Client, ACK, 0)?);
    tl.push(t + RTT_US + 100, c.send(rng, Client, DATA, 300)?);
    c.send(rng, Server, DATA, 600)?;
    tl.push(t + 2 * RTT_US, c.send(rng, Client, FIN | ACK, 0)?);
    c.send(rng, Server, FIN | ACK, 0)?;
    tl.push(t + 3 * RTT_US, c.send(rng, Client, ACK, 0)?);

    // The other direction of another one.
    let mut v = Conn::new(rng, CLIENT_B, server(96), 80);
    let t = 8 * S;
    v.send(rng, Client, SYN, 0)?;
    tl.push(t + RTT_US, v.send(rng, Server, SYN | ACK, 0)?);
    v.send(rng, Client, DATA, 300)?;
    tl.push(t + 2 * RTT_US, v.send(rng, Server, DATA, 600)?);
    v.send(rng, Client, FIN | ACK, 0)?;
    tl.push(t + 3 * RTT_US, v.send(rng, Server, FIN | ACK, 0)?);

    let mut resolver_id: u16 = rng.random();
    let port = rng.random_range(32_768..=60_999);
    let lone = dns_message(
        rng.random(),
        "www.example.org",
        Some(IpAddr::V4(server(70))),
    )?;
    tl.push(
        9 * S,
        udp_frame((RESOLVER, 53), (CLIENT_B, port), &mut resolver_id, &lone)?,
    );
    Ok(tl)
}

/// Default configuration (warm-up 300 s). 33 packets: at 0 s three connections already
/// running: one two-sided with data and a FIN close (8), one whose client only is seen (3),
/// one with ACKs only (4); then two new connections with handshakes (9 + 9).
fn midstream_start(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut tl = Timeline::new();
    let mut a = Conn::new(rng, CLIENT, server(100), 443);
    tl.push(0, a.send(rng, Client, DATA, 300)?);
    tl.push(RTT_US, a.send(rng, Server, DATA, 1_200)?);
    tl.push(RTT_US + 100, a.send(rng, Client, ACK, 0)?);
    tl.push(RTT_US + 200, a.send(rng, Server, DATA, 800)?);
    tl.push(RTT_US + 300, a.send(rng, Client, ACK, 0)?);
    a.close(rng, &mut tl, 100_000)?;

    let mut b = Conn::new(rng, CLIENT, server(101), 443);
    for i in 0..3 {
        tl.push(10_000 + i * 1_000, b.send(rng, Client, DATA, 400)?);
    }

    let mut k = Conn::new(rng, CLIENT_B, server(102), 22);
    for i in 0..2 {
        let at = 20_000 + i * S;
        tl.push(at, k.send(rng, Client, ACK, 0)?);
        tl.push(at + RTT_US, k.send(rng, Server, ACK, 0)?);
    }

    for (i, last) in [(1, 103), (2, 104)] {
        let mut n = Conn::new(rng, CLIENT, server(last), 80);
        let t = n.handshake(rng, &mut tl, i * S)?;
        let t = n.exchange(rng, &mut tl, t, 200, 700)?;
        n.close(rng, &mut tl, t)?;
    }
    Ok(tl)
}
