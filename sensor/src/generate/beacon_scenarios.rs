//! The beacon scenarios: hours of packet time of periodic and random traffic, small files.
//!
//! Internal hosts are in 10.30.0.0/16 (inside the default `[networks] home`), internal
//! servers in 10.40.0.0/16, untrusted destinations in the documentation ranges 203.0.113.0/24
//! and 198.51.100.0/24. A beacon's shape (hosts, interval, beat count, missed beats, sizes)
//! is fixed here; the seed only picks values (ports, sequence numbers, payload bytes, the
//! jitter of each interval, the times and sizes of random traffic), so packet counts and the
//! checks of each case hold for any seed.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::PacketBuilder;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ScenarioFn;
use super::conversation::{
    Conversation, DnsExchange, Endpoint, Exchange, TcpSession, TimedFrame, UdpDatagrams,
};
use super::frame::{Link, LinkTags, mac_for};
use super::timeline::Timeline;
use super::{GenerateError, ScenarioInfo};

/// The beacon scenarios, in a fixed order.
pub(super) const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "beacon-connections",
        description: "Connection beacons over 8 hours: every 1 s, 10 s, 60 s, 300 s (missed \
                      beats), 900 s (UDP) and 3600 s, with 0, 10 and 20 % jitter",
    },
    ScenarioInfo {
        name: "beacon-heartbeat",
        description: "Heartbeats inside one long TCP connection (30 s for 2 hours, 5 s with \
                      20 % jitter), and one long connection with random messages",
    },
    ScenarioInfo {
        name: "beacon-trusted",
        description: "Fixed-size periodic traffic to a home server, a trusted network and an \
                      allowlisted name, NTP and DNS to internal servers; one beacon to a \
                      named untrusted host",
    },
    ScenarioInfo {
        name: "beacon-browsing",
        description: "Three hours of randomly timed, randomly sized HTTP connections from four \
                      hosts to forty destinations",
    },
];

/// The builder of scenario `name`, if it is one of these.
pub(super) fn builder(name: &str) -> Option<ScenarioFn> {
    let builder: ScenarioFn = match name {
        "beacon-connections" => beacon_connections,
        "beacon-heartbeat" => beacon_heartbeat,
        "beacon-trusted" => beacon_trusted,
        "beacon-browsing" => beacon_browsing,
        _ => return None,
    };
    Some(builder)
}

const SECOND_US: u64 = 1_000_000;
const MINUTE_US: u64 = 60 * SECOND_US;
const HOUR_US: u64 = 60 * MINUTE_US;
/// MSS of the IPv4 sessions.
const MSS: u16 = 1460;

/// One periodic pattern: `beats` beats every `interval_us`, each interval stretched by a
/// uniform factor in `1 ± jitter`; the beats whose index is in `missed` are not sent.
#[derive(Clone, Copy, Debug)]
struct Schedule<'a> {
    start_us: u64,
    interval_us: u64,
    jitter: f64,
    beats: usize,
    missed: &'a [usize],
}

impl Schedule<'_> {
    /// The times of the beats that are sent.
    fn times(&self, rng: &mut ChaCha8Rng) -> Vec<u64> {
        let mut times = Vec::with_capacity(self.beats);
        let mut t = self.start_us as f64;
        for beat_idx in 0..self.beats {
            if beat_idx > 0 {
                let stretch = if self.jitter > 0.0 {
                    rng.random_range(-self.jitter..=self.jitter)
                } else {
                    0.0
                };
                t += self.interval_us as f64 * (1.0 + stretch);
            }
            if !self.missed.contains(&beat_idx) {
                times.push(t as u64);
            }
        }
        times
    }
}

/// Ephemeral ports handed out in rising order (with a random step), so thousands of
/// connections in one scenario never reuse a port.
struct PortPicker {
    next: u16,
}

impl PortPicker {
    fn new(rng: &mut ChaCha8Rng) -> Self {
        PortPicker {
            next: rng.random_range(32_768..=33_768),
        }
    }

    fn next(&mut self, rng: &mut ChaCha8Rng) -> u16 {
        let port = self.next;
        let step = rng.random_range(1..=4);
        self.next = if self.next > 60_999 - step {
            32_768
        } else {
            self.next + step
        };
        port
    }
}

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

fn random_bytes(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random::<u8>()).collect()
}

fn push_frames(timeline: &mut Timeline, frames: &[TimedFrame]) -> Result<(), GenerateError> {
    for timed in frames {
        timeline.push(timed.time_us, timed.frame.to_ethernet_bytes()?);
    }
    Ok(())
}

/// One TCP connection per beat: handshake, a `request_len`-byte request, a
/// `response_len`-byte response (each at most one segment), close. 9 packets per beat.
fn tcp_beacon(
    timeline: &mut Timeline,
    rng: &mut ChaCha8Rng,
    client: IpAddr,
    server: Endpoint,
    schedule: Schedule<'_>,
    request_len: usize,
    response_len: usize,
) -> Result<(), GenerateError> {
    let mut ports = PortPicker::new(rng);
    for time_us in schedule.times(rng) {
        let session = Conversation::Tcp(TcpSession {
            client: Endpoint {
                ip: client,
                port: ports.next(rng),
            },
            server,
            link: link(client, server.ip),
            rtt_us: rng.random_range(20_000..=40_000),
            mss: MSS,
            exchanges: vec![Exchange {
                request: random_bytes(rng, request_len),
                response: random_bytes(rng, response_len),
            }],
        });
        push_frames(timeline, &session.frames(time_us, rng)?)?;
    }
    Ok(())
}

/// One UDP datagram (and its answer) per beat, each from a fresh source port: 2 packets per
/// beat, one flow each.
fn udp_beacon(
    timeline: &mut Timeline,
    rng: &mut ChaCha8Rng,
    client: IpAddr,
    server: Endpoint,
    schedule: Schedule<'_>,
    payload_len: usize,
) -> Result<(), GenerateError> {
    let mut ports = PortPicker::new(rng);
    for time_us in schedule.times(rng) {
        let datagrams = Conversation::Udp(UdpDatagrams {
            client: Endpoint {
                ip: client,
                port: ports.next(rng),
            },
            server,
            link: link(client, server.ip),
            rtt_us: rng.random_range(20_000..=40_000),
            count: 1,
            interval_us: SECOND_US,
            min_payload: payload_len,
            max_payload: payload_len,
        });
        push_frames(timeline, &datagrams.frames(time_us, rng)?)?;
    }
    Ok(())
}

/// A DNS A lookup of `name` answered with `answer`.
fn dns_lookup(
    timeline: &mut Timeline,
    rng: &mut ChaCha8Rng,
    client: Endpoint,
    resolver: IpAddr,
    name: &str,
    answer: IpAddr,
    time_us: u64,
) -> Result<(), GenerateError> {
    let exchange = Conversation::Dns(DnsExchange {
        client,
        server: Endpoint {
            ip: resolver,
            port: 53,
        },
        link: link(client.ip, resolver),
        rtt_us: rng.random_range(300..=1_500),
        query_name: name.to_owned(),
        answer,
    });
    push_frames(timeline, &exchange.frames(time_us, rng)?)
}

/// One long TCP connection: handshake at `start_us`; at each time of `messages` the client
/// sends its bytes, the server answers `reply_len` bytes one round trip later and the client
/// acknowledges; then the close. 6 + 3 × messages packets.
fn long_tcp_session(
    timeline: &mut Timeline,
    rng: &mut ChaCha8Rng,
    client: Endpoint,
    server: Endpoint,
    start_us: u64,
    messages: &[(u64, usize)],
    reply_len: usize,
) -> Result<(), GenerateError> {
    let (IpAddr::V4(c_ip), IpAddr::V4(s_ip)) = (client.ip, server.ip) else {
        return Err(GenerateError::build("long TCP session", "IPv4 only"));
    };
    let (c_mac, s_mac) = (mac_for(client.ip), mac_for(server.ip));
    let rtt_us: u64 = rng.random_range(20_000..=40_000);
    let mut c_seq: u32 = rng.random();
    let mut s_seq: u32 = rng.random();
    #[derive(Clone, Copy)]
    enum Flags {
        Syn,
        SynAck,
        Ack,
        Psh,
        Fin,
    }
    let segment = |timeline: &mut Timeline,
                   from_client: bool,
                   time_us: u64,
                   seq: u32,
                   ack: u32,
                   flags: Flags,
                   payload: &[u8]|
     -> Result<(), GenerateError> {
        let (smac, dmac, sip, dip, sport, dport) = if from_client {
            (c_mac, s_mac, c_ip, s_ip, client.port, server.port)
        } else {
            (s_mac, c_mac, s_ip, c_ip, server.port, client.port)
        };
        let base = PacketBuilder::ethernet2(smac, dmac)
            .ipv4(sip.octets(), dip.octets(), 64)
            .tcp(sport, dport, seq, 64_240);
        let builder = match flags {
            Flags::Syn => base.syn(),
            Flags::SynAck => base.syn().ack(ack),
            Flags::Ack => base.ack(ack),
            Flags::Psh => base.ack(ack).psh(),
            Flags::Fin => base.ack(ack).fin(),
        };
        let mut bytes = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut bytes, payload)
            .map_err(|err| GenerateError::build("TCP segment", err))?;
        timeline.push(time_us, bytes);
        Ok(())
    };
    let wrap = |n: usize| n as u32;
    segment(timeline, true, start_us, c_seq, 0, Flags::Syn, &[])?;
    c_seq = c_seq.wrapping_add(1);
    segment(
        timeline,
        false,
        start_us + rtt_us,
        s_seq,
        c_seq,
        Flags::SynAck,
        &[],
    )?;
    s_seq = s_seq.wrapping_add(1);
    segment(
        timeline,
        true,
        start_us + rtt_us + 80,
        c_seq,
        s_seq,
        Flags::Ack,
        &[],
    )?;
    let mut last_us = start_us + rtt_us + 80;
    for &(time_us, len) in messages {
        let request = random_bytes(rng, len);
        segment(timeline, true, time_us, c_seq, s_seq, Flags::Psh, &request)?;
        c_seq = c_seq.wrapping_add(wrap(len));
        let reply = random_bytes(rng, reply_len);
        let reply_us = time_us + rtt_us + rng.random_range(100..=900);
        segment(timeline, false, reply_us, s_seq, c_seq, Flags::Psh, &reply)?;
        s_seq = s_seq.wrapping_add(wrap(reply_len));
        last_us = reply_us + rng.random_range(20..=120);
        segment(timeline, true, last_us, c_seq, s_seq, Flags::Ack, &[])?;
    }
    let fin_us = last_us + rng.random_range(2_000..=20_000);
    segment(timeline, true, fin_us, c_seq, s_seq, Flags::Fin, &[])?;
    c_seq = c_seq.wrapping_add(1);
    segment(
        timeline,
        false,
        fin_us + rtt_us,
        s_seq,
        c_seq,
        Flags::Fin,
        &[],
    )?;
    s_seq = s_seq.wrapping_add(1);
    segment(
        timeline,
        true,
        fin_us + rtt_us + 80,
        c_seq,
        s_seq,
        Flags::Ack,
        &[],
    )
}

/// One beacon of `beacon-connections`: who, to whom, when, and what each beat carries.
struct ConnectionBeacon {
    /// Last octet of the internal source, 10.30.0.x.
    source: u8,
    destination: [u8; 4],
    port: u16,
    schedule: Schedule<'static>,
    /// TCP: request and response bytes of each connection; UDP: one datagram of `.0` bytes.
    sizes: (usize, usize),
    udp: bool,
}

/// `beacon-connections`: six connection beacons from six internal hosts, generated in this
/// order (the order the random generator is drawn in, so it is part of the scenario).
const CONNECTION_BEACONS: [ConnectionBeacon; 6] = [
    // 1 s, 10 % jitter, 180 beats (3 minutes).
    ConnectionBeacon {
        source: 11,
        destination: [203, 0, 113, 11],
        port: 443,
        schedule: Schedule {
            start_us: 10 * SECOND_US,
            interval_us: SECOND_US,
            jitter: 0.1,
            beats: 180,
            missed: &[],
        },
        sizes: (120, 200),
        udp: false,
    },
    // 10 s, no jitter, 120 beats (20 minutes).
    ConnectionBeacon {
        source: 12,
        destination: [203, 0, 113, 12],
        port: 443,
        schedule: Schedule {
            start_us: 20 * SECOND_US,
            interval_us: 10 * SECOND_US,
            jitter: 0.0,
            beats: 120,
            missed: &[],
        },
        sizes: (150, 300),
        udp: false,
    },
    // 60 s, 20 % jitter, 60 beats (1 hour).
    ConnectionBeacon {
        source: 13,
        destination: [203, 0, 113, 13],
        port: 443,
        schedule: Schedule {
            start_us: 30 * SECOND_US,
            interval_us: MINUTE_US,
            jitter: 0.2,
            beats: 60,
            missed: &[],
        },
        sizes: (180, 400),
        udp: false,
    },
    // 300 s, 10 % jitter, 24 beats of which 3 missed (2 hours): 21 connections.
    ConnectionBeacon {
        source: 14,
        destination: [203, 0, 113, 14],
        port: 8080,
        schedule: Schedule {
            start_us: 40 * SECOND_US,
            interval_us: 5 * MINUTE_US,
            jitter: 0.1,
            beats: 24,
            missed: &[4, 9, 10],
        },
        sizes: (220, 500),
        udp: false,
    },
    // 900 s over UDP, no jitter, 12 beats (3 hours), a fresh source port each time.
    ConnectionBeacon {
        source: 16,
        destination: [198, 51, 100, 16],
        port: 4444,
        schedule: Schedule {
            start_us: 50 * SECOND_US,
            interval_us: 15 * MINUTE_US,
            jitter: 0.0,
            beats: 12,
            missed: &[],
        },
        sizes: (64, 0),
        udp: true,
    },
    // 3600 s, 20 % jitter, 8 beats (about 7 hours).
    ConnectionBeacon {
        source: 15,
        destination: [203, 0, 113, 15],
        port: 443,
        schedule: Schedule {
            start_us: MINUTE_US,
            interval_us: HOUR_US,
            jitter: 0.2,
            beats: 8,
            missed: &[],
        },
        sizes: (300, 600),
        udp: false,
    },
];

/// `beacon-connections`: the beacons of [`CONNECTION_BEACONS`].
fn beacon_connections(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut timeline = Timeline::new();
    for b in &CONNECTION_BEACONS {
        let [d0, d1, d2, d3] = b.destination;
        let client = v4(10, 30, 0, b.source);
        let server = Endpoint {
            ip: v4(d0, d1, d2, d3),
            port: b.port,
        };
        let schedule = b.schedule;
        if b.udp {
            udp_beacon(&mut timeline, rng, client, server, schedule, b.sizes.0)?;
        } else {
            let (request, response) = b.sizes;
            tcp_beacon(
                &mut timeline,
                rng,
                client,
                server,
                schedule,
                request,
                response,
            )?;
        }
    }
    Ok(timeline)
}

/// `beacon-heartbeat`: heartbeats inside two long TCP connections, and a long connection
/// whose messages come at random times with random sizes.
fn beacon_heartbeat(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut timeline = Timeline::new();
    let mut ports = PortPicker::new(rng);
    // 96 bytes every 30 s for 2 hours: 240 heartbeats, answered with 64 bytes.
    let every_30s = Schedule {
        start_us: 30 * SECOND_US,
        interval_us: 30 * SECOND_US,
        jitter: 0.0,
        beats: 240,
        missed: &[],
    };
    let messages: Vec<(u64, usize)> = every_30s.times(rng).into_iter().map(|t| (t, 96)).collect();
    let client = Endpoint {
        ip: v4(10, 30, 3, 1),
        port: ports.next(rng),
    };
    let server = Endpoint {
        ip: v4(203, 0, 113, 41),
        port: 443,
    };
    long_tcp_session(&mut timeline, rng, client, server, SECOND_US, &messages, 64)?;
    // 48 bytes every 5 s with 20 % jitter for 20 minutes: 240 heartbeats.
    let every_5s = Schedule {
        start_us: 10 * SECOND_US,
        interval_us: 5 * SECOND_US,
        jitter: 0.2,
        beats: 240,
        missed: &[],
    };
    let messages: Vec<(u64, usize)> = every_5s.times(rng).into_iter().map(|t| (t, 48)).collect();
    let client = Endpoint {
        ip: v4(10, 30, 3, 2),
        port: ports.next(rng),
    };
    let server = Endpoint {
        ip: v4(203, 0, 113, 42),
        port: 8443,
    };
    long_tcp_session(
        &mut timeline,
        rng,
        client,
        server,
        5 * SECOND_US,
        &messages,
        32,
    )?;
    // 180 messages of 40 to 1400 bytes at exponential gaps (mean 20 s): no pattern.
    let mut t = 20 * SECOND_US;
    let mut messages = Vec::with_capacity(180);
    for _ in 0..180 {
        let gap = -20.0 * (1.0 - rng.random::<f64>()).ln();
        t += (gap.max(0.6) * SECOND_US as f64) as u64;
        messages.push((t, rng.random_range(40..=1400)));
    }
    let client = Endpoint {
        ip: v4(10, 30, 3, 3),
        port: ports.next(rng),
    };
    let server = Endpoint {
        ip: v4(203, 0, 113, 43),
        port: 443,
    };
    long_tcp_session(
        &mut timeline,
        rng,
        client,
        server,
        15 * SECOND_US,
        &messages,
        200,
    )?;
    Ok(timeline)
}

/// `beacon-trusted`: the same fixed-size, once-a-minute connections to destinations that are
/// not untrusted, NTP and DNS to internal servers, and one beacon to an untrusted host whose
/// name a DNS answer gave.
fn beacon_trusted(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut timeline = Timeline::new();
    let resolver = v4(10, 40, 0, 53);
    let every_minute = |start_us: u64, beats: usize| Schedule {
        start_us,
        interval_us: MINUTE_US,
        jitter: 0.0,
        beats,
        missed: &[],
    };
    // To a home server.
    tcp_beacon(
        &mut timeline,
        rng,
        v4(10, 30, 2, 1),
        Endpoint {
            ip: v4(10, 40, 0, 5),
            port: 443,
        },
        every_minute(10 * SECOND_US, 60),
        200,
        300,
    )?;
    // To a trusted network (config.toml: trusted_destinations = ["192.0.2.0/24"]).
    tcp_beacon(
        &mut timeline,
        rng,
        v4(10, 30, 2, 2),
        Endpoint {
            ip: v4(192, 0, 2, 50),
            port: 443,
        },
        every_minute(20 * SECOND_US, 60),
        200,
        300,
    )?;
    // To a host named telemetry.vendor.example (allowlist_domains = ["vendor.example"]).
    let mut ports = PortPicker::new(rng);
    let allowlisted = v4(198, 51, 100, 33);
    let client = Endpoint {
        ip: v4(10, 30, 2, 3),
        port: ports.next(rng),
    };
    dns_lookup(
        &mut timeline,
        rng,
        client,
        resolver,
        "telemetry.vendor.example",
        allowlisted,
        SECOND_US,
    )?;
    tcp_beacon(
        &mut timeline,
        rng,
        client.ip,
        Endpoint {
            ip: allowlisted,
            port: 443,
        },
        every_minute(30 * SECOND_US, 60),
        200,
        300,
    )?;
    // To updates.badvendor.example: not under vendor.example, so it alerts (50 beats).
    let named = v4(203, 0, 113, 35);
    let client = Endpoint {
        ip: v4(10, 30, 2, 4),
        port: ports.next(rng),
    };
    dns_lookup(
        &mut timeline,
        rng,
        client,
        resolver,
        "updates.badvendor.example",
        named,
        2 * SECOND_US,
    )?;
    tcp_beacon(
        &mut timeline,
        rng,
        client.ip,
        Endpoint {
            ip: named,
            port: 443,
        },
        every_minute(40 * SECOND_US, 50),
        200,
        300,
    )?;
    // NTP every 64 s to an internal server, one flow (port 123 both sides): 56 polls.
    let ntp = Conversation::Udp(UdpDatagrams {
        client: Endpoint {
            ip: v4(10, 30, 2, 5),
            port: 123,
        },
        server: Endpoint {
            ip: v4(10, 40, 0, 123),
            port: 123,
        },
        link: link(v4(10, 30, 2, 5), v4(10, 40, 0, 123)),
        rtt_us: 800,
        count: 56,
        interval_us: 64 * SECOND_US,
        min_payload: 48,
        max_payload: 48,
    });
    push_frames(&mut timeline, &ntp.frames(5 * SECOND_US, rng)?)?;
    // DNS every 30 s to the internal resolver, a fresh port each time: 120 lookups.
    let dns_times = every_minute(3 * SECOND_US, 120);
    let dns_times = Schedule {
        interval_us: 30 * SECOND_US,
        ..dns_times
    };
    for time_us in dns_times.times(rng) {
        let client = Endpoint {
            ip: v4(10, 30, 2, 6),
            port: ports.next(rng),
        };
        dns_lookup(
            &mut timeline,
            rng,
            client,
            resolver,
            "time.corp.example",
            v4(10, 40, 0, 123),
            time_us,
        )?;
    }
    Ok(timeline)
}

/// `beacon-browsing`: four hosts, 60 HTTP-like connections each at exponential gaps (mean
/// 3 minutes), half of them to three popular sites, the rest spread over 37 others; requests
/// of 200 to 1200 bytes, responses of 200 to 1400 bytes (one segment each, so 9 packets per
/// connection whatever the seed).
fn beacon_browsing(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    const HOSTS: u8 = 4;
    const CONNECTIONS: usize = 60;
    const SITES: u8 = 40;
    let mut timeline = Timeline::new();
    let mut ports = PortPicker::new(rng);
    for host_idx in 0..HOSTS {
        let client = v4(10, 30, 1, 1 + host_idx);
        let mut t = rng.random_range(0..60) * SECOND_US;
        for _ in 0..CONNECTIONS {
            let gap = -180.0 * (1.0 - rng.random::<f64>()).ln();
            t += (gap * SECOND_US as f64) as u64 + SECOND_US;
            let site = if rng.random_bool(0.5) {
                rng.random_range(0..3)
            } else {
                rng.random_range(3..SITES)
            };
            let server = Endpoint {
                ip: v4(198, 51, 100, 100 + site),
                port: if site % 4 == 0 { 80 } else { 443 },
            };
            let request_len = rng.random_range(200..=1200);
            let response_len = rng.random_range(200..=1400);
            let session = Conversation::Tcp(TcpSession {
                client: Endpoint {
                    ip: client,
                    port: ports.next(rng),
                },
                server,
                link: link(client, server.ip),
                rtt_us: rng.random_range(10_000..=80_000),
                mss: MSS,
                exchanges: vec![Exchange {
                    request: random_bytes(rng, request_len),
                    response: random_bytes(rng, response_len),
                }],
            });
            push_frames(&mut timeline, &session.frames(t, rng)?)?;
        }
    }
    Ok(timeline)
}
