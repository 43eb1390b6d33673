//! Shared helpers for the criterion benches: deterministic synthetic traffic built in memory.
//!
//! [`Traffic::build`] writes a "64-byte mix" (minimum-size Ethernet/IPv4/TCP and UDP frames,
//! both directions of many flows) back to back into one buffer, either as captured on a plain
//! link or with every frame mirrored through VXLAN (as AWS Traffic Mirroring sends it) or
//! ERSPAN type II (as a switch SPAN session sends it). The three variants carry exactly the
//! same inner packets in the same order, so their costs compare directly. Nothing is random:
//! the same [`MixSpec`] always gives byte-identical frames.

// A bench that cannot build its input must stop loudly; this is setup code, not a packet path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use etherparse::{IpNumber, PacketBuilder};
use flowtable::Timestamp;
use mirrorwatch::capture::CaptureRecord;
use mirrorwatch::decode::link::LinkType;
use mirrorwatch::generate::encap::{
    GRE_PROTO_ERSPAN_1_2, GreFields, VXLAN_PORT, erspan2_header, gre_header, vxlan_header,
};

/// Captured length of a minimum-size Ethernet frame (64 bytes on the wire minus the FCS).
pub const MIN_FRAME_BYTES: usize = 60;

/// Packet-clock spacing of consecutive frames: 10GbE line rate for 64-byte frames is
/// 14.88 Mpps (64 bytes + 8 preamble + 12 inter-frame gap = 672 bit times), one every 67.2 ns.
pub const LINE_RATE_SPACING_NS: u64 = 67;

/// 10GbE line rate of 64-byte frames, in packets per second.
pub const LINE_RATE_64B_PPS: f64 = 14_880_952.0;

/// Packet time of the first frame: 2026-01-05T09:00:00Z, the generator's base.
pub const BASE_TIME_NS: u64 = 1_767_603_600 * 1_000_000_000;

/// Collector every mirror session sends to.
const COLLECTOR: [u8; 4] = [10, 250, 0, 10];

/// How a frame of the mix travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encapsulation {
    /// As captured on the link itself.
    Plain,
    /// VXLAN (UDP 4789) from the mirror source to the collector, one way, one VNI per mirror
    /// session, outer UDP source port from a hash of the inner flow (AWS Traffic Mirroring).
    Vxlan,
    /// ERSPAN type II (GRE 0x88BE with sequence numbers) from the switch to the collector,
    /// one way, one ERSPAN session ID per mirror session.
    Erspan2,
}

impl Encapsulation {
    /// All variants, plain first.
    pub const ALL: [Encapsulation; 3] = [
        Encapsulation::Plain,
        Encapsulation::Vxlan,
        Encapsulation::Erspan2,
    ];

    /// Short name used in benchmark ids.
    pub const fn name(self) -> &'static str {
        match self {
            Encapsulation::Plain => "plain",
            Encapsulation::Vxlan => "vxlan",
            Encapsulation::Erspan2 => "erspan2",
        }
    }
}

/// What traffic to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MixSpec {
    /// Distinct flows (75 % TCP, 25 % UDP; all IPv4).
    pub flows: u32,
    /// Packets per flow, alternating client → server and server → client (at least 2).
    pub packets_per_flow: u32,
    /// Mirror sessions the encapsulated variants spread the flows over (flow `n` goes through
    /// session `n % mirror_sessions`); each is one tunnel link with one direction.
    pub mirror_sessions: u32,
    /// Seed of the packet order.
    pub seed: u64,
}

impl MixSpec {
    /// Packets in the mix.
    pub const fn packets(&self) -> usize {
        self.flows as usize * self.packets_per_flow as usize
    }
}

/// Where one frame lies in [`Traffic`]'s buffer, and its packet time.
#[derive(Clone, Copy, Debug)]
struct FrameRef {
    start: usize,
    len: u32,
    ts: Timestamp,
}

/// Frames back to back in one buffer, with their packet times.
pub struct Traffic {
    /// How the frames are encapsulated.
    pub encap: Encapsulation,
    /// What was built.
    pub spec: MixSpec,
    data: Vec<u8>,
    frames: Vec<FrameRef>,
}

impl Traffic {
    /// Builds the mix of `spec`, encapsulated as `encap`.
    ///
    /// Packet order: every flow's `packets_per_flow` packets are shuffled across the whole
    /// capture (a Fisher-Yates shuffle with xorshift64*), so all flows are live at once and
    /// consecutive packets hit unrelated flow-table entries; each flow's own packets keep their
    /// order (SYN first, FIN last). Frame `i` is stamped `BASE_TIME_NS + i * 67 ns`.
    pub fn build(spec: &MixSpec, encap: Encapsulation) -> Traffic {
        assert!(spec.packets_per_flow >= 2 && spec.mirror_sessions >= 1);
        let order = packet_order(spec);
        let frame_len = match encap {
            Encapsulation::Plain => MIN_FRAME_BYTES,
            // Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8, or GRE 8 (with sequence) +
            // ERSPAN II 8.
            Encapsulation::Vxlan | Encapsulation::Erspan2 => MIN_FRAME_BYTES + 50,
        };
        let mut data = Vec::with_capacity(order.len() * frame_len);
        let mut frames = Vec::with_capacity(order.len());
        let mut seen = vec![0u32; spec.flows as usize];
        let mut gre_sequence = vec![0u32; spec.mirror_sessions as usize];
        let mut inner = Vec::with_capacity(MIN_FRAME_BYTES);
        let mut tunnel_payload = Vec::with_capacity(2 * MIN_FRAME_BYTES);
        for (pkt_idx, &flow) in order.iter().enumerate() {
            let k = seen[flow as usize];
            seen[flow as usize] += 1;
            inner.clear();
            inner_frame(flow, k, spec.packets_per_flow, &mut inner);
            let start = data.len();
            let session = flow % spec.mirror_sessions;
            match encap {
                Encapsulation::Plain => data.extend_from_slice(&inner),
                Encapsulation::Vxlan => {
                    tunnel_payload.clear();
                    tunnel_payload.extend_from_slice(&vxlan_header(0x01_0000 + session).unwrap());
                    tunnel_payload.extend_from_slice(&inner);
                    mirror_builder(session, 200)
                        .udp(flow_hash_port(flow), VXLAN_PORT)
                        .write(&mut data, &tunnel_payload)
                        .unwrap();
                }
                Encapsulation::Erspan2 => {
                    let seq = &mut gre_sequence[session as usize];
                    let fields = GreFields {
                        sequence: Some(*seq),
                        ..GreFields::new(GRE_PROTO_ERSPAN_1_2, None)
                    };
                    *seq = seq.wrapping_add(1);
                    tunnel_payload.clear();
                    tunnel_payload.extend_from_slice(&gre_header(&fields, &inner));
                    let session_id = 1 + (session % 1_000) as u16;
                    tunnel_payload
                        .extend_from_slice(&erspan2_header(session_id, 0, session).unwrap());
                    tunnel_payload.extend_from_slice(&inner);
                    mirror_builder(session, 201)
                        .write(&mut data, IpNumber::GRE, &tunnel_payload)
                        .unwrap();
                }
            }
            frames.push(FrameRef {
                start,
                len: (data.len() - start) as u32,
                ts: Timestamp(BASE_TIME_NS + pkt_idx as u64 * LINE_RATE_SPACING_NS),
            });
        }
        Traffic {
            encap,
            spec: *spec,
            data,
            frames,
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True if there are no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Captured bytes of all frames.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The frames as a capture source yields them (Ethernet link, nothing cut).
    pub fn records(&self) -> impl Iterator<Item = CaptureRecord<'_>> + '_ {
        self.frames.iter().map(|f| {
            let data = &self.data[f.start..f.start + f.len as usize];
            CaptureRecord {
                ts: f.ts,
                link: LinkType::ETHERNET,
                data,
                orig_len: f.len,
            }
        })
    }
}

/// Every flow index `packets_per_flow` times, shuffled.
fn packet_order(spec: &MixSpec) -> Vec<u32> {
    let mut order: Vec<u32> = (0..spec.packets_per_flow)
        .flat_map(|_| 0..spec.flows)
        .collect();
    let mut rng = XorShift(spec.seed | 1);
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The client and server of flow `n`: (client IP, client port, server IP, server port, UDP?).
fn endpoints(n: u32) -> ([u8; 4], u16, [u8; 4], u16, bool) {
    let [_, b, c, d] = n.to_be_bytes();
    // Up to 2^24 distinct clients in 10.0.0.0/8; a few hundred servers.
    let client = [10, b, c, d];
    let client_port = 1_024 + (n.wrapping_mul(7_919) % 60_000) as u16;
    let server = [192, 0, 2, (n % 251) as u8];
    let udp = n % 4 == 0;
    let server_port = if udp { 53 } else { 443 };
    (client, client_port, server, server_port, udp)
}

/// Writes packet `k` (0-based) of flow `n`, a minimum-size frame: even `k` goes client →
/// server, odd `k` server → client; TCP opens with SYN, SYN-ACK and ends with FIN-ACK.
fn inner_frame(n: u32, k: u32, packets_per_flow: u32, out: &mut Vec<u8>) {
    let (client, client_port, server, server_port, udp) = endpoints(n);
    let to_server = k % 2 == 0;
    let (src, sport, dst, dport) = if to_server {
        (client, client_port, server, server_port)
    } else {
        (server, server_port, client, client_port)
    };
    let (src_mac, dst_mac) = if to_server {
        ([0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2])
    } else {
        ([0x02, 0, 0, 0, 0, 2], [0x02, 0, 0, 0, 0, 1])
    };
    let ip = PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(src, dst, 64);
    if udp {
        // 14 + 20 + 8 + 18 bytes of payload: exactly 60, no padding.
        let payload = [0u8; MIN_FRAME_BYTES - 42];
        ip.udp(sport, dport).write(out, &payload).unwrap();
    } else {
        let seq = n.wrapping_mul(2_654_435_761).wrapping_add(k);
        let tcp = ip.tcp(sport, dport, seq, 65_535);
        let tcp = if k == 0 {
            tcp.syn()
        } else if k == 1 {
            tcp.syn().ack(seq)
        } else if k + 1 == packets_per_flow {
            tcp.fin().ack(seq)
        } else {
            tcp.ack(seq)
        };
        tcp.write(out, &[]).unwrap();
        // 54 bytes of headers; Ethernet pads to the minimum frame.
        out.resize(MIN_FRAME_BYTES, 0);
    }
}

/// Ethernet + IPv4 from mirror source `session` (10.`net`.0.x) to the collector.
fn mirror_builder(session: u32, net: u8) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let [_, _, hi, lo] = (session + 1).to_be_bytes();
    PacketBuilder::ethernet2([0x02, 0, 0, 0, 1, lo], [0x02, 0, 0, 0, 9, 9]).ipv4(
        [10, net, hi, lo],
        COLLECTOR,
        64,
    )
}

/// Outer UDP source port in 49152..=65535 from the flow, equal for both directions.
fn flow_hash_port(n: u32) -> u16 {
    49_152 + ((n.wrapping_mul(2_654_435_761) >> 18) % 16_384) as u16
}

/// xorshift64*: deterministic and portable.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirrorwatch::decode::{DecodeCounters, Decoder, TunnelKind};

    const SPEC: MixSpec = MixSpec {
        flows: 1_000,
        packets_per_flow: 4,
        mirror_sessions: 4,
        seed: 7,
    };

    #[test]
    fn every_variant_decodes_to_the_same_inner_packets() {
        let decoder = Decoder::default();
        let variants: Vec<Traffic> = Encapsulation::ALL
            .iter()
            .map(|e| Traffic::build(&SPEC, *e))
            .collect();
        assert_eq!(variants[0].len(), SPEC.packets());
        assert!(
            variants[0]
                .records()
                .all(|r| r.data.len() == MIN_FRAME_BYTES)
        );
        let mut counters = DecodeCounters::default();
        let encapsulated = variants[1].records().zip(variants[2].records());
        for (plain, (vxlan, erspan)) in variants[0].records().zip(encapsulated) {
            let d = decoder.decode(plain.link, plain.data, plain.orig_len, &mut counters);
            let p = d.inner.unwrap();
            assert!(d.tunnels.is_empty());
            for (rec, kind) in [(vxlan, TunnelKind::Vxlan), (erspan, TunnelKind::Erspan2)] {
                let d = decoder.decode(rec.link, rec.data, rec.orig_len, &mut counters);
                assert_eq!(d.tunnels.len(), 1);
                assert_eq!(d.tunnels[0].kind, kind);
                let q = d.inner.unwrap();
                assert_eq!(
                    (q.src, q.dst, q.src_port, q.dst_port, q.proto, q.tcp),
                    (p.src, p.dst, p.src_port, p.dst_port, p.proto, p.tcp)
                );
            }
        }
        assert!(counters.named().is_empty(), "{:?}", counters.named());
    }
}
