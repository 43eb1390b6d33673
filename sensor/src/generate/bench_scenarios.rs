//! Scale scenarios for `mirrorwatch bench`: millions of packets, streamed straight to a pcap
//! file instead of being built in memory, and never committed under `pcaps/`.
//!
//! Each scenario takes a scale (`name:N`, e.g. `bench-syn-flood:1e7`): flows for most, the
//! background sessions for `bench-beacons`. The output is deterministic like every generated
//! capture (ChaCha8 seeded, packet time from the generator's fixed base), so a run can be
//! repeated on other hardware with the same bytes. Packets of the line-rate scenarios are
//! spaced as a 10GbE link would carry them (frame + preamble + inter-frame gap); the file has
//! microsecond timestamps, so tcpdump, tshark, Suricata and Zeek all read it.
//!
//! Memory while generating is bounded by the window of concurrent sessions (at most
//! [`MAX_WINDOW`]) for the line-rate scenarios, and by the session list for `bench-beacons`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use etherparse::{IpNumber, PacketBuilder};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::encap::{
    GENEVE_PORT, GRE_PROTO_ERSPAN_1_2, GreFields, VXLAN_PORT, erspan2_header, geneve_header,
    gre_header, vxlan_header,
};
use super::frame::{ETHERTYPE_IPV4, ETHERTYPE_TEB};
use super::timeline::BASE_TIME_S;
use super::{GenerateError, GenerateSummary, ScenarioInfo};

/// A bench scenario: what it is and its scale when none is given.
#[derive(Clone, Copy, Debug)]
pub struct BenchScenario {
    /// Name and description, as `generate --list` prints them.
    pub info: ScenarioInfo,
    /// Scale when the name has no `:N`.
    pub default_scale: u64,
    /// What the scale counts.
    pub scale_unit: &'static str,
}

/// The bench scenarios, in a fixed order.
pub const SCENARIOS: &[BenchScenario] = &[
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-flood64",
            description: "64-byte frames at 10GbE line rate: N flows (75 % TCP with handshake \
                          and FIN, 25 % UDP), both directions, at least 1,000,000 packets",
        },
        default_scale: 100_000,
        scale_unit: "flows",
    },
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-imix",
            description: "Simple IMIX (7:4:1 of 64, 594 and 1518-byte frames) over N flows at \
                          10GbE line rate, 1,000,000 packets",
        },
        default_scale: 10_000,
        scale_unit: "flows",
    },
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-enterprise",
            description: "Enterprise mix of N sessions: HTTPS downloads, DNS, NTP, QUIC-like \
                          UDP, ICMP echo; full-size and small frames",
        },
        default_scale: 20_000,
        scale_unit: "sessions",
    },
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-mirror",
            description: "The enterprise mix, every frame mirrored to an external collector \
                          (VXLAN, ERSPAN II, Geneve, GRE sessions; N/64 sessions, 16..1024)",
        },
        default_scale: 20_000,
        scale_unit: "sessions",
    },
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-syn-flood",
            description: "SYN flood: N SYNs from random sources and ports to one server, each \
                          a new flow (flow-table memory must stay at its cap)",
        },
        default_scale: 10_000_000,
        scale_unit: "flows",
    },
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-beacons",
            description: "Four hours of six beacons (every 60 s to 30 min, fixed size) in a \
                          busy background of N enterprise sessions",
        },
        default_scale: 50_000,
        scale_unit: "background sessions",
    },
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-tunnel-id-flood",
            description: "N VXLAN packets from 10.66.0.1 to 10.66.0.2, a new VNI each, at line \
                          rate, with a real 256-packet VXLAN mirror from 10.10.0.5 to \
                          203.0.113.50 spread through it (issue 19: the mirror must still alert)",
        },
        default_scale: 1_000_000,
        scale_unit: "flood packets",
    },
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-flow-flood-mirror",
            description: "N SYNs from random sources and ports to one server, each a new flow, \
                          with a real 256-packet VXLAN mirror from 10.10.0.5 to 203.0.113.50 \
                          spread through it (issue 16: the mirror must still alert while the \
                          flow table evicts at its cap)",
        },
        default_scale: 10_000_000,
        scale_unit: "flows",
    },
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-extraneous-burst",
            description: "N SYN-ACKs from random servers to 10.20.0.5, each answered by a RST \
                          (an unsolicited SYN-ACK each, far beyond the pending-alert capacity), \
                          at line rate from 11 s, with a real 256-packet VXLAN mirror from \
                          10.10.0.5 to 203.0.113.50 before and through it (issue 16: the mirror \
                          must still alert)",
        },
        default_scale: 1_000_000,
        scale_unit: "flows",
    },
    BenchScenario {
        info: ScenarioInfo {
            name: "bench-dns-flood",
            description: "N forged DNS answers to 10.30.2.5 over 21 minutes, every 1,000th \
                          naming 203.0.113.66 cdn.vendor.example, beside a once-a-minute beacon \
                          from 10.30.2.5 to 203.0.113.66:443 (20 beats; issue 19: the beacon \
                          must still alert with vendor.example allowlisted)",
        },
        default_scale: 1_000_000,
        scale_unit: "forged answers",
    },
];

/// Largest scale accepted (memory and time stay sane).
pub const MAX_SCALE: u64 = 100_000_000;

/// Sessions live at once in the line-rate scenarios.
pub const MAX_WINDOW: usize = 65_536;

/// A bench scenario and its scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchRequest {
    /// Scenario name.
    pub name: &'static str,
    /// Flows or sessions.
    pub scale: u64,
}

impl BenchRequest {
    /// `name` or `name:N` (N may be written `1e7`); `None` when `name` is no bench scenario.
    pub fn parse(spec: &str) -> Option<Result<BenchRequest, GenerateError>> {
        let (name, scale) = match spec.split_once(':') {
            Some((name, scale)) => (name, Some(scale)),
            None => (spec, None),
        };
        let scenario = SCENARIOS.iter().find(|s| s.info.name == name)?;
        let scale = match scale {
            None => Ok(scenario.default_scale),
            Some(text) => parse_scale(text).ok_or_else(|| {
                GenerateError::build(
                    "bench scenario",
                    format!("scale {text:?} is not a number between 1 and {MAX_SCALE}"),
                )
            }),
        };
        Some(scale.map(|scale| BenchRequest {
            name: scenario.info.name,
            scale,
        }))
    }

    /// `name:N`, parseable again.
    pub fn label(&self) -> String {
        format!("{}:{}", self.name, self.scale)
    }
}

/// `1000000`, `1_000_000` or `1e6`.
pub fn parse_scale(text: &str) -> Option<u64> {
    let text = text.replace('_', "");
    let value = match text.split_once(['e', 'E']) {
        Some((mantissa, exp)) => {
            let m: u64 = mantissa.parse().ok()?;
            let e: u32 = exp.parse().ok()?;
            m.checked_mul(10u64.checked_pow(e)?)?
        }
        None => text.parse().ok()?,
    };
    (1..=MAX_SCALE).contains(&value).then_some(value)
}

/// Writes `request` with `seed` to `out` as a pcap file (Ethernet, microsecond timestamps).
pub fn write(
    request: &BenchRequest,
    seed: u64,
    out: &Path,
) -> Result<GenerateSummary, GenerateError> {
    let mut pcap = PcapStream::create(out)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale = request.scale;
    match request.name {
        "bench-flood64" => {
            let per_flow = 1_000_000u64.div_ceil(scale).clamp(2, 1_000);
            let profile = Profile::Flood64 {
                packets: per_flow as u32,
            };
            line_rate(&mut pcap, &mut rng, scale, profile, None)?;
        }
        "bench-imix" => {
            let per_flow = 1_000_000u64.div_ceil(scale).clamp(2, 10_000);
            let profile = Profile::Imix {
                packets: per_flow as u32,
            };
            line_rate(&mut pcap, &mut rng, scale, profile, None)?;
        }
        "bench-enterprise" => line_rate(&mut pcap, &mut rng, scale, Profile::Enterprise, None)?,
        "bench-mirror" => {
            let sessions = (scale / 64).clamp(16, 1_024) as u32;
            let mirror = Mirror::new(sessions)?;
            line_rate(
                &mut pcap,
                &mut rng,
                scale,
                Profile::Enterprise,
                Some(mirror),
            )?;
        }
        "bench-syn-flood" => syn_flood(&mut pcap, &mut rng, scale)?,
        "bench-beacons" => beacons(&mut pcap, &mut rng, scale)?,
        "bench-tunnel-id-flood" => tunnel_id_flood(&mut pcap, &mut rng, scale)?,
        "bench-flow-flood-mirror" => flow_flood_mirror(&mut pcap, &mut rng, scale)?,
        "bench-extraneous-burst" => extraneous_burst(&mut pcap, &mut rng, scale)?,
        "bench-dns-flood" => dns_flood(&mut pcap, &mut rng, scale)?,
        other => {
            return Err(GenerateError::UnknownScenario {
                name: other.to_owned(),
            });
        }
    }
    pcap.finish()
}

/// A classic pcap file written as a stream.
struct PcapStream {
    out: BufWriter<File>,
    path: std::path::PathBuf,
    packets: u64,
}

impl PcapStream {
    fn create(path: &Path) -> Result<PcapStream, GenerateError> {
        let file =
            crate::fsio::create_output(path, false, 0o644).map_err(|e| write_error(path, &e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // Magic (microseconds), version 2.4, zone 0, sigfigs 0, snaplen 65535, Ethernet.
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&65_535u32.to_le_bytes());
        header.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&header).map_err(|e| write_error(path, &e))?;
        Ok(PcapStream {
            out,
            path: path.to_path_buf(),
            packets: 0,
        })
    }

    /// One packet at `time_ns` after the generator's base time.
    fn packet(&mut self, time_ns: u64, frame: &[u8]) -> Result<(), GenerateError> {
        let time_us = time_ns / 1_000;
        let secs = (BASE_TIME_S + time_us / 1_000_000) as u32;
        let len = frame.len() as u32;
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&((time_us % 1_000_000) as u32).to_le_bytes());
        header[8..12].copy_from_slice(&len.to_le_bytes());
        header[12..16].copy_from_slice(&len.to_le_bytes());
        self.out
            .write_all(&header)
            .and_then(|()| self.out.write_all(frame))
            .map_err(|e| write_error(&self.path, &e))?;
        self.packets += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<GenerateSummary, GenerateError> {
        self.out.flush().map_err(|e| write_error(&self.path, &e))?;
        Ok(GenerateSummary {
            packets: self.packets,
        })
    }
}

fn write_error(path: &Path, e: &std::io::Error) -> GenerateError {
    GenerateError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Nanoseconds a frame of `len` captured bytes takes on 10GbE (FCS, preamble, gap included).
fn line_rate_ns(len: usize) -> u64 {
    ((len as u64 + 4 + 8 + 12) * 8).div_ceil(10)
}

/// What the sessions of a scenario look like.
#[derive(Clone, Copy, Debug)]
enum Profile {
    /// Minimum-size frames, `packets` per flow.
    Flood64 { packets: u32 },
    /// IMIX sizes, `packets` per flow.
    Imix { packets: u32 },
    /// Enterprise sessions of several kinds.
    Enterprise,
}

/// The application a session carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    Udp,
    Dns,
    Icmp,
}

/// One session: endpoints, length and where it is.
#[derive(Clone, Copy, Debug)]
struct Session {
    n: u64,
    kind: Kind,
    client: [u8; 4],
    server: [u8; 4],
    client_port: u16,
    server_port: u16,
    packets: u32,
    next: u32,
    /// Fixed payload size (0: chosen per packet by the profile).
    size: u16,
    /// Packets of the response phase go server → client (downloads).
    download: bool,
}

impl Session {
    fn new(n: u64, profile: Profile, rng: &mut ChaCha8Rng) -> Session {
        // Up to 2^24 distinct clients in 10.0.0.0/8.
        let [_, b, c, d] = (n as u32).to_be_bytes();
        let client = [10, b, c, d];
        let server = [192, 0, 2, (n % 251) as u8 + 1];
        let client_port = rng.random_range(32_768..=60_999);
        let base = Session {
            n,
            kind: Kind::Tcp,
            client,
            server,
            client_port,
            server_port: 443,
            packets: 2,
            next: 0,
            size: 0,
            download: false,
        };
        match profile {
            Profile::Flood64 { packets } | Profile::Imix { packets } => {
                if n % 4 == 0 {
                    Session {
                        kind: Kind::Udp,
                        server_port: 53,
                        packets,
                        ..base
                    }
                } else {
                    Session { packets, ..base }
                }
            }
            Profile::Enterprise => {
                let server = [198, 51, 100, (n % 200) as u8 + 1];
                match rng.random_range(0..100u32) {
                    0..60 => Session {
                        server,
                        // Handshake, request, a download of 1..40 segments with ACKs, close.
                        packets: 3 + 1 + 2 * rng.random_range(1..=40u32) + 3,
                        download: true,
                        ..base
                    },
                    60..85 => Session {
                        kind: Kind::Dns,
                        server: [10, 0, 0, 53],
                        server_port: 53,
                        packets: 2,
                        ..base
                    },
                    85..90 => Session {
                        kind: Kind::Udp,
                        server,
                        server_port: 123,
                        packets: 2,
                        size: 48,
                        ..base
                    },
                    90..95 => Session {
                        kind: Kind::Udp,
                        server,
                        server_port: 443,
                        packets: rng.random_range(4..=30u32),
                        size: 1_200,
                        ..base
                    },
                    _ => Session {
                        kind: Kind::Icmp,
                        server,
                        packets: 2 * rng.random_range(1..=4u32),
                        size: 56,
                        ..base
                    },
                }
            }
        }
    }
}

/// Every frame goes through one of these mirror sessions (flow `n` through `n % sessions`),
/// to an external collector: one `mirror_stream` alert per session.
struct Mirror {
    sessions: u32,
    gre_sequence: Vec<u32>,
    geneve: Vec<Vec<u8>>,
    payload: Vec<u8>,
}

impl Mirror {
    fn new(sessions: u32) -> Result<Mirror, GenerateError> {
        let geneve = (0..sessions)
            .map(|s| geneve_header(200 + s, ETHERTYPE_TEB, &[]))
            .collect::<Result<_, _>>()?;
        Ok(Mirror {
            sessions,
            gre_sequence: vec![0; sessions as usize],
            geneve,
            payload: Vec::with_capacity(2_048),
        })
    }

    /// Wraps the Ethernet frame `inner` of flow `n` into `out`.
    fn wrap(&mut self, n: u64, inner: &[u8], out: &mut Vec<u8>) -> Result<(), GenerateError> {
        let s = (n % u64::from(self.sessions)) as u32;
        let [_, _, hi, lo] = s.to_be_bytes();
        let source = [10, 20, hi, lo.wrapping_add(1)];
        let collector = [203, 0, 113, 50];
        let builder =
            PacketBuilder::ethernet2([0x02, 0x4d, 0, 0, hi, lo], [0x02, 0x4d, 0xff, 0, 0, 1])
                .ipv4(source, collector, 64);
        self.payload.clear();
        let flow_port = 49_152 + (n % 16_384) as u16;
        let result = match s % 4 {
            0 => {
                self.payload.extend_from_slice(&vxlan_header(100 + s)?);
                self.payload.extend_from_slice(inner);
                builder.udp(flow_port, VXLAN_PORT).write(out, &self.payload)
            }
            1 => {
                let seq = &mut self.gre_sequence[s as usize];
                let fields = GreFields {
                    sequence: Some(*seq),
                    ..GreFields::new(GRE_PROTO_ERSPAN_1_2, None)
                };
                *seq = seq.wrapping_add(1);
                self.payload.extend_from_slice(&gre_header(&fields, inner));
                self.payload
                    .extend_from_slice(&erspan2_header(1 + (s % 1_000) as u16, 0, s)?);
                self.payload.extend_from_slice(inner);
                builder.write(out, IpNumber::GRE, &self.payload)
            }
            2 => {
                self.payload.extend_from_slice(&self.geneve[s as usize]);
                self.payload.extend_from_slice(inner);
                builder
                    .udp(flow_port, GENEVE_PORT)
                    .write(out, &self.payload)
            }
            _ => {
                // IP in GRE with a key: the inner IP packet without its Ethernet header.
                let ip = inner.get(14..).unwrap_or_default();
                let fields = GreFields::new(ETHERTYPE_IPV4, Some(300 + s));
                self.payload.extend_from_slice(&gre_header(&fields, ip));
                self.payload.extend_from_slice(ip);
                builder.write(out, IpNumber::GRE, &self.payload)
            }
        };
        result.map_err(|e| GenerateError::build("mirror frame", e))
    }
}

/// Zero bytes payloads are cut from.
static ZEROS: [u8; 1_500] = [0; 1_500];

/// IMIX frame sizes (captured bytes, no FCS) in 7:4:1.
const IMIX_SIZES: [usize; 12] = [60, 60, 60, 60, 60, 60, 60, 590, 590, 590, 590, 1_514];

/// Writes packet `s.next` of session `s` as an Ethernet frame into `out`.
fn session_frame(
    s: &Session,
    profile: Profile,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<u8>,
) -> Result<(), GenerateError> {
    let k = s.next;
    let last = k + 1 == s.packets;
    // Even packets go client → server, odd ones back, except in the download phase.
    let to_server = match s.kind {
        Kind::Tcp if s.download => match k {
            0 | 2 | 3 => true,
            1 => false,
            _ if last => false,
            _ if k + 3 >= s.packets => k + 2 == s.packets,
            _ => k % 2 == 1,
        },
        _ => k % 2 == 0,
    };
    let (src, sport, dst, dport) = if to_server {
        (s.client, s.client_port, s.server, s.server_port)
    } else {
        (s.server, s.server_port, s.client, s.client_port)
    };
    let (src_mac, dst_mac) = if to_server {
        ([0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2])
    } else {
        ([0x02, 0, 0, 0, 0, 2], [0x02, 0, 0, 0, 0, 1])
    };
    // Frame size target (captured bytes), from the profile.
    let target = match profile {
        Profile::Flood64 { .. } => 60,
        Profile::Imix { .. } => IMIX_SIZES[rng.random_range(0..IMIX_SIZES.len())],
        Profile::Enterprise => 0,
    };
    let ip = PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(src, dst, 64);
    let result = match s.kind {
        Kind::Udp | Kind::Dns => {
            let len = match (s.kind, target) {
                (Kind::Dns, _) => {
                    if to_server {
                        38
                    } else {
                        110
                    }
                }
                (_, 0) => usize::from(s.size),
                (_, t) => t - 42,
            };
            ip.udp(sport, dport).write(out, &ZEROS[..len.min(1_472)])
        }
        Kind::Icmp => {
            let seq = (k / 2) as u16;
            let id = (s.n & 0xffff) as u16;
            let icmp = if to_server {
                ip.icmpv4_echo_request(id, seq)
            } else {
                ip.icmpv4_echo_reply(id, seq)
            };
            icmp.write(out, &ZEROS[..usize::from(s.size)])
        }
        Kind::Tcp => {
            let isn_c = (s.n as u32).wrapping_mul(2_654_435_761);
            let isn_s = isn_c.rotate_left(13);
            let (seq, ack) = if to_server {
                (isn_c.wrapping_add(1), isn_s.wrapping_add(1))
            } else {
                (isn_s.wrapping_add(1), isn_c.wrapping_add(1))
            };
            let tcp = ip.tcp(sport, dport, seq, 65_535);
            let (tcp, len) = if k == 0 {
                (tcp.syn(), 0)
            } else if k == 1 {
                (tcp.syn().ack(ack), 0)
            } else if last || (s.download && k + 2 == s.packets) {
                (tcp.fin().ack(ack), 0)
            } else {
                let len = match target {
                    0 if s.download && k == 3 => 400,
                    0 if s.download && !to_server => 1_460,
                    0 => usize::from(s.size),
                    t => t - 54,
                };
                (tcp.psh().ack(ack), len)
            };
            tcp.write(out, &ZEROS[..len])
        }
    };
    result.map_err(|e| GenerateError::build("bench frame", e))
}

/// Sessions `0..sessions`, a window of them live at once and served round robin, packets
/// spaced at 10GbE line rate.
fn line_rate(
    pcap: &mut PcapStream,
    rng: &mut ChaCha8Rng,
    sessions: u64,
    profile: Profile,
    mut mirror: Option<Mirror>,
) -> Result<(), GenerateError> {
    let window = (sessions as usize).min(MAX_WINDOW);
    let mut live: Vec<Session> = Vec::with_capacity(window);
    let mut started = 0u64;
    while live.len() < window {
        live.push(Session::new(started, profile, rng));
        started += 1;
    }
    let mut inner = Vec::with_capacity(2_048);
    let mut outer = Vec::with_capacity(2_048);
    let mut time_ns = 0u64;
    let mut cursor = 0usize;
    while !live.is_empty() {
        if cursor >= live.len() {
            cursor = 0;
        }
        let s = &mut live[cursor];
        inner.clear();
        session_frame(s, profile, rng, &mut inner)?;
        let frame = match mirror.as_mut() {
            Some(m) => {
                outer.clear();
                m.wrap(s.n, &inner, &mut outer)?;
                &outer
            }
            None => &inner,
        };
        pcap.packet(time_ns, frame)?;
        time_ns += line_rate_ns(frame.len());
        s.next += 1;
        if s.next >= s.packets {
            if started < sessions {
                *s = Session::new(started, profile, rng);
                started += 1;
                cursor += 1;
            } else {
                live.swap_remove(cursor);
            }
        } else {
            cursor += 1;
        }
    }
    Ok(())
}

/// `flows` SYNs from random sources and ports to 192.0.2.80:443, at line rate.
fn syn_flood(pcap: &mut PcapStream, rng: &mut ChaCha8Rng, flows: u64) -> Result<(), GenerateError> {
    let mut frame = Vec::with_capacity(64);
    let mut time_ns = 0u64;
    for _ in 0..flows {
        time_ns = flood_syn(pcap, rng, time_ns, &mut frame)?;
    }
    Ok(())
}

/// One SYN of a flood: a random source and port to 192.0.2.80:443, a new flow. Returns the
/// time after it at line rate.
fn flood_syn(
    pcap: &mut PcapStream,
    rng: &mut ChaCha8Rng,
    time_ns: u64,
    frame: &mut Vec<u8>,
) -> Result<u64, GenerateError> {
    let src: [u8; 4] = rng.random::<u32>().to_be_bytes();
    let sport = rng.random_range(1_024..=65_535u16);
    frame.clear();
    PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 9], [0x02, 0, 0, 0, 0, 2])
        .ipv4(src, [192, 0, 2, 80], 64)
        .tcp(sport, 443, rng.random(), 1_024)
        .syn()
        .write(frame, &ZEROS[..6])
        .map_err(|e| GenerateError::build("SYN", e))?;
    pcap.packet(time_ns, frame)?;
    Ok(time_ns + line_rate_ns(frame.len()))
}

/// Packets of the real mirror inside `bench-tunnel-id-flood` and `bench-flow-flood-mirror`.
const FLOOD_MIRROR_PACKETS: u64 = 256;

/// `bench-tunnel-id-flood`: `flood` VXLAN packets from 10.66.0.1 to 10.66.0.2, packet `i` with
/// VNI `i` (mod 2^24), each around a 60-byte inner UDP frame, at line rate; after every
/// `flood / 256` of them, one packet of a one-way VXLAN VNI 100 mirror from 10.10.0.5 to
/// 203.0.113.50 of a TCP conversation between 10.10.0.5:40000 and 198.51.100.20:443, the two
/// directions alternating (a mirror by its direction pattern from its first two packets).
fn tunnel_id_flood(
    pcap: &mut PcapStream,
    rng: &mut ChaCha8Rng,
    flood: u64,
) -> Result<(), GenerateError> {
    let mut inner = Vec::with_capacity(128);
    let mut frame = Vec::with_capacity(256);
    let mut time_ns = 0u64;
    let mut mirror = HiddenMirror::over(flood, 0);
    for i in 0..flood {
        inner.clear();
        PacketBuilder::ethernet2([0x02, 0, 0, 0, 9, 1], [0x02, 0, 0, 0, 9, 2])
            .ipv4([192, 168, 9, 9], [198, 51, 100, 9], 64)
            .udp(rng.random_range(1_024..=65_535), 443)
            .write(&mut inner, &ZEROS[..18])
            .map_err(|e| GenerateError::build("flood frame", e))?;
        vxlan_frame(
            &mut frame,
            [10, 66, 0, 1],
            [10, 66, 0, 2],
            (i % (1 << 24)) as u32,
            &inner,
        )?;
        pcap.packet(time_ns, &frame)?;
        time_ns += line_rate_ns(frame.len());
        time_ns = mirror.after(pcap, i, time_ns)?;
    }
    Ok(())
}

/// Packet `k` of the real mirror hidden in a flood: a one-way VXLAN VNI 100 stream from
/// 10.10.0.5 to 203.0.113.50 of a TCP conversation between 10.10.0.5:40000 and
/// 198.51.100.20:443, the two directions alternating (a mirror by its direction pattern from
/// its first two packets). Returns the time after it at line rate.
fn flood_mirror_packet(
    pcap: &mut PcapStream,
    time_ns: u64,
    k: u64,
    inner: &mut Vec<u8>,
    frame: &mut Vec<u8>,
) -> Result<u64, GenerateError> {
    let (src, dst, sport, dport) = if k % 2 == 1 {
        ([198, 51, 100, 20], [10, 10, 0, 5], 443, 40_000)
    } else {
        ([10, 10, 0, 5], [198, 51, 100, 20], 40_000, 443)
    };
    inner.clear();
    PacketBuilder::ethernet2([0x02, 0, 0, 0, 10, 5], [0x02, 0, 0, 0, 10, 1])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1_000 + k as u32, 64_240)
        .ack(1)
        .write(inner, &ZEROS[..100])
        .map_err(|e| GenerateError::build("mirrored frame", e))?;
    vxlan_frame(frame, [10, 10, 0, 5], [203, 0, 113, 50], 100, inner)?;
    pcap.packet(time_ns, frame)?;
    Ok(time_ns + line_rate_ns(frame.len()))
}

/// The real mirror of [`flood_mirror_packet`] spread through a flood: one packet after every
/// `every` flood units (packets or flows), until [`FLOOD_MIRROR_PACKETS`] are out.
struct HiddenMirror {
    inner: Vec<u8>,
    frame: Vec<u8>,
    every: u64,
    sent: u64,
}

impl HiddenMirror {
    /// Spread over `units` flood units, `already` packets of it sent before the flood.
    fn over(units: u64, already: u64) -> HiddenMirror {
        HiddenMirror {
            inner: Vec::with_capacity(256),
            frame: Vec::with_capacity(256),
            every: (units / (FLOOD_MIRROR_PACKETS - already).max(1)).max(1),
            sent: already,
        }
    }

    /// Packet `k` of the mirror at `time_ns` (before the flood).
    fn packet(
        &mut self,
        pcap: &mut PcapStream,
        time_ns: u64,
        k: u64,
    ) -> Result<u64, GenerateError> {
        flood_mirror_packet(pcap, time_ns, k, &mut self.inner, &mut self.frame)
    }

    /// After flood unit `i` (from 0): the next mirror packet when one is due. Returns the time
    /// after what was written.
    fn after(&mut self, pcap: &mut PcapStream, i: u64, time_ns: u64) -> Result<u64, GenerateError> {
        if (i + 1) % self.every != 0 || self.sent >= FLOOD_MIRROR_PACKETS {
            return Ok(time_ns);
        }
        let k = self.sent;
        self.sent += 1;
        self.packet(pcap, time_ns, k)
    }
}

/// `bench-flow-flood-mirror`: the SYN flood of `bench-syn-flood` (`flows` SYNs from random
/// sources and ports to 192.0.2.80:443, each a new flow, at line rate), with one packet of
/// the real mirror of [`flood_mirror_packet`] after every `flows / 256` SYNs.
fn flow_flood_mirror(
    pcap: &mut PcapStream,
    rng: &mut ChaCha8Rng,
    flows: u64,
) -> Result<(), GenerateError> {
    let mut frame = Vec::with_capacity(256);
    let mut time_ns = 0u64;
    let mut mirror = HiddenMirror::over(flows, 0);
    for i in 0..flows {
        time_ns = flood_syn(pcap, rng, time_ns, &mut frame)?;
        time_ns = mirror.after(pcap, i, time_ns)?;
    }
    Ok(())
}

/// Mirror packets of `bench-extraneous-burst` before its burst, one every half second from
/// 0 s: the burst starts after the extraneous detector's default warm-up (10 s), and the
/// capture is never quiet long enough for the warm-up to start again.
const BURST_PREFACE_PACKETS: u64 = 22;

/// `bench-extraneous-burst`: packets 0 to 21 of the real mirror of [`flood_mirror_packet`]
/// every 0.5 s from 0 s; from 11 s, at line rate, `flows` SYN-ACKs from random addresses in
/// 198.18.0.0/15, port 443, to 10.20.0.5 on random ports, each answered by a RST from
/// 10.20.0.5 (two packets of a new flow: an `unsolicited_synack` whose flow shows both sides),
/// with one more mirror packet after every `flows / 234` flows.
fn extraneous_burst(
    pcap: &mut PcapStream,
    rng: &mut ChaCha8Rng,
    flows: u64,
) -> Result<(), GenerateError> {
    let mut frame = Vec::with_capacity(256);
    let mut mirror = HiddenMirror::over(flows, BURST_PREFACE_PACKETS);
    for k in 0..BURST_PREFACE_PACKETS {
        mirror.packet(pcap, k * 500_000_000, k)?;
    }
    let mut time_ns = 11_000_000_000u64;
    for i in 0..flows {
        let server: [u8; 4] = (0xc612_0000 | (rng.random::<u32>() & 0x1_ffff)).to_be_bytes();
        let port = rng.random_range(1_024..=65_535u16);
        let (seq, ack): (u32, u32) = (rng.random(), rng.random());
        frame.clear();
        PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 9], [0x02, 0, 0, 0, 0, 5])
            .ipv4(server, [10, 20, 0, 5], 64)
            .tcp(443, port, seq, 64_240)
            .syn()
            .ack(ack)
            .write(&mut frame, &[])
            .map_err(|e| GenerateError::build("SYN-ACK", e))?;
        pcap.packet(time_ns, &frame)?;
        time_ns += line_rate_ns(frame.len());
        frame.clear();
        PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 5], [0x02, 0, 0, 0, 0, 9])
            .ipv4([10, 20, 0, 5], server, 64)
            // The RST a host sends for a SYN-ACK it never asked for (RFC 9293 3.10.7.1).
            .tcp(port, 443, ack, 0)
            .rst()
            .write(&mut frame, &[])
            .map_err(|e| GenerateError::build("RST", e))?;
        pcap.packet(time_ns, &frame)?;
        time_ns += line_rate_ns(frame.len());
        time_ns = mirror.after(pcap, i, time_ns)?;
    }
    Ok(())
}

/// An Ethernet/IPv4/UDP 4789/VXLAN frame around `inner`, written into `out`.
fn vxlan_frame(
    out: &mut Vec<u8>,
    src: [u8; 4],
    dst: [u8; 4],
    vni: u32,
    inner: &[u8],
) -> Result<(), GenerateError> {
    let mut payload = Vec::with_capacity(8 + inner.len());
    payload.extend_from_slice(&vxlan_header(vni)?);
    payload.extend_from_slice(inner);
    out.clear();
    PacketBuilder::ethernet2([0x02, 0, 0, 0, 8, 1], [0x02, 0, 0, 0, 8, 2])
        .ipv4(src, dst, 64)
        .udp(49_152 + (vni % 16_000) as u16, VXLAN_PORT)
        .write(out, &payload)
        .map_err(|e| GenerateError::build("VXLAN frame", e))
}

/// Beats of the beacon in `bench-dns-flood`, one a minute from 1 min.
const DNS_FLOOD_BEATS: u64 = 20;

/// `bench-dns-flood`: `answers` DNS answers from random addresses, source port 53, to
/// 10.30.2.5 on random ports, spread evenly over 21 minutes of packet time, none answering a
/// query; answer `i` names a random address `cdn<i>.vendor.example`, and every 1,000th names
/// 203.0.113.66 `cdn.vendor.example`. Beside them, 10.30.2.5 opens a TCP connection to
/// 203.0.113.66:443 once a minute, 20 times (SYN, SYN/ACK, ACK, a 200-byte request, a 300-byte
/// response, FIN, FIN, ACK: 8 packets each).
fn dns_flood(
    pcap: &mut PcapStream,
    rng: &mut ChaCha8Rng,
    answers: u64,
) -> Result<(), GenerateError> {
    const MINUTE_NS: u64 = 60_000_000_000;
    let span_ns = (DNS_FLOOD_BEATS + 1) * MINUTE_NS;
    let step_ns = (span_ns / answers.max(1)).max(1);
    let client = [10, 30, 2, 5];
    let c2 = [203, 0, 113, 66];
    let mut frame = Vec::with_capacity(256);
    let mut next_beat = 1u64;
    let mut port = 40_000u16;
    for i in 0..answers {
        let time_ns = i * step_ns;
        while next_beat <= DNS_FLOOD_BEATS && next_beat * MINUTE_NS <= time_ns {
            port = port.wrapping_add(1);
            beacon_connection(pcap, &mut frame, next_beat * MINUTE_NS, client, c2, port)?;
            next_beat += 1;
        }
        let (name, address) = if i % 1_000 == 999 {
            ("cdn.vendor.example".to_owned(), c2)
        } else {
            (
                format!("cdn{i}.vendor.example"),
                rng.random::<u32>().to_be_bytes(),
            )
        };
        let message = super::conversation::dns_message(
            rng.random(),
            &name,
            Some(std::net::IpAddr::from(address)),
        )?;
        frame.clear();
        PacketBuilder::ethernet2([0x02, 0, 0, 0, 7, 1], [0x02, 0, 0, 0, 7, 2])
            .ipv4(rng.random::<u32>().to_be_bytes(), client, 64)
            .udp(53, rng.random_range(1_024..=65_535))
            .write(&mut frame, &message)
            .map_err(|e| GenerateError::build("DNS answer", e))?;
        pcap.packet(time_ns, &frame)?;
    }
    while next_beat <= DNS_FLOOD_BEATS {
        port = port.wrapping_add(1);
        beacon_connection(pcap, &mut frame, next_beat * MINUTE_NS, client, c2, port)?;
        next_beat += 1;
    }
    Ok(())
}

/// One short TCP connection of fixed sizes from `client:port` to `server:443` at `start_ns`
/// (8 packets, 10 us apart).
fn beacon_connection(
    pcap: &mut PcapStream,
    frame: &mut Vec<u8>,
    start_ns: u64,
    client: [u8; 4],
    server: [u8; 4],
    port: u16,
) -> Result<(), GenerateError> {
    const STEP_NS: u64 = 10_000;
    let (c_isn, s_isn) = (1_000u32, 5_000u32);
    // (from client, seq, ack, flags: 0 SYN, 1 SYN/ACK, 2 ACK, 3 PSH/ACK, 4 FIN/ACK, payload)
    let steps: [(bool, u32, u32, u8, usize); 8] = [
        (true, c_isn, 0, 0, 0),
        (false, s_isn, c_isn + 1, 1, 0),
        (true, c_isn + 1, s_isn + 1, 2, 0),
        (true, c_isn + 1, s_isn + 1, 3, 200),
        (false, s_isn + 1, c_isn + 201, 3, 300),
        (true, c_isn + 201, s_isn + 301, 4, 0),
        (false, s_isn + 301, c_isn + 202, 4, 0),
        (true, c_isn + 202, s_isn + 302, 2, 0),
    ];
    for (n, (from_client, seq, ack, flags, len)) in steps.into_iter().enumerate() {
        let (src, dst, sport, dport) = if from_client {
            (client, server, port, 443)
        } else {
            (server, client, 443, port)
        };
        frame.clear();
        let base = PacketBuilder::ethernet2([0x02, 0, 0, 0, 6, 1], [0x02, 0, 0, 0, 6, 2])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, 64_240);
        let builder = match flags {
            0 => base.syn(),
            1 => base.syn().ack(ack),
            2 => base.ack(ack),
            3 => base.ack(ack).psh(),
            _ => base.ack(ack).fin(),
        };
        builder
            .write(frame, &ZEROS[..len])
            .map_err(|e| GenerateError::build("beacon segment", e))?;
        pcap.packet(start_ns + n as u64 * STEP_NS, frame)?;
    }
    Ok(())
}

/// Hours the beacon scenario spans.
const BEACON_HOURS: u64 = 4;

/// Seconds between the calls of each beacon host.
const BEACON_INTERVALS_S: [u64; 6] = [60, 120, 300, 600, 900, 1_800];

/// Six beacons over four hours, each a short TCP session of fixed sizes to its own server,
/// with 1 % interval jitter; `background` enterprise sessions start uniformly over the span,
/// their packets 1 ms apart. Merged by packet time.
fn beacons(
    pcap: &mut PcapStream,
    rng: &mut ChaCha8Rng,
    background: u64,
) -> Result<(), GenerateError> {
    let span_ns = BEACON_HOURS * 3_600 * 1_000_000_000;
    // (start time, session); beacon sessions use n beyond the background's.
    let mut starts: Vec<(u64, Session)> = Vec::new();
    for n in 0..background {
        let start = rng.random_range(0..span_ns);
        starts.push((start, Session::new(n, Profile::Enterprise, rng)));
    }
    for (h, interval_s) in BEACON_INTERVALS_S.iter().enumerate() {
        let interval_ns = interval_s * 1_000_000_000;
        let mut t = rng.random_range(0..interval_ns);
        let mut call = 0u64;
        while t < span_ns {
            let n = background + (h as u64) * 1_000_000 + call;
            let session = Session {
                n,
                kind: Kind::Tcp,
                client: [10, 30, 0, h as u8 + 1],
                server: [198, 18, 7, h as u8 + 1],
                client_port: rng.random_range(32_768..=60_999),
                server_port: 8_443,
                packets: 8,
                next: 0,
                size: 120,
                download: false,
            };
            starts.push((t, session));
            let jitter = interval_ns / 100;
            t += interval_ns - jitter + rng.random_range(0..=2 * jitter);
            call += 1;
        }
    }
    starts.sort_by_key(|(t, s)| (*t, s.n));
    // Live sessions by next packet time.
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut sessions: Vec<Session> = Vec::with_capacity(starts.len());
    let mut frame = Vec::with_capacity(2_048);
    let mut next_start = 0usize;
    loop {
        let due = heap.peek().map(|Reverse((t, _))| *t);
        let start = starts.get(next_start).map(|(t, _)| *t);
        match (due, start) {
            (_, Some(st)) if due.is_none_or(|d| st <= d) => {
                let (t, s) = starts[next_start];
                next_start += 1;
                sessions.push(s);
                heap.push(Reverse((t, sessions.len() - 1)));
            }
            (Some(_), _) => {
                let Some(Reverse((t, idx))) = heap.pop() else {
                    break;
                };
                let s = &mut sessions[idx];
                frame.clear();
                session_frame(s, Profile::Enterprise, rng, &mut frame)?;
                pcap.packet(t, &frame)?;
                s.next += 1;
                if s.next < s.packets {
                    heap.push(Reverse((t + 1_000_000, idx)));
                }
            }
            _ => break,
        }
    }
    Ok(())
}
