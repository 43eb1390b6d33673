//! The scenarios: each composes conversations, encapsulation stacks and a timeline.
//!
//! A scenario's shape (hosts, conversations, packet counts, tunnel ids) is fixed here; the
//! seed only picks values (ports, sequence numbers, ids, payload text, timing jitter). The
//! `checks.toml` next to each committed capture derives its counts from these definitions,
//! so a change of shape here means a change of those checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::GenerateError;
use super::ScenarioFn;
use super::conversation::{
    Conversation, DnsExchange, Endpoint, IcmpEcho, TcpSession, TimedFrame, UdpDatagrams,
    http_exchange,
};
use super::encap::{
    Encap, EncapKind, EncapStack, ErspanPlatform, GeneveOption, GenevePayload, GreFields,
    RawCarrier, RawPayload, SourcePort, erspan2_header, geneve_header, gre_header, vxlan_header,
};
use super::frame::{ETHERTYPE_IPV4, ETHERTYPE_TEB, Frame, Link, LinkTags, mac_for};
use super::timeline::Timeline;

/// The builder of scenario `name`, if it is one of this file's (`super::builder` asks every
/// scenario file).
pub(super) fn builder(name: &str) -> Option<ScenarioFn> {
    let builder: ScenarioFn = match name {
        "plain-sessions" => plain_sessions,
        "mirror-vxlan" => mirror_vxlan,
        "mirror-geneve" => mirror_geneve,
        "mirror-gre" => mirror_gre,
        "mirror-gre-teb" => mirror_gre_teb,
        "mirror-nvgre" => mirror_nvgre,
        "mirror-erspan1" => mirror_erspan1,
        "mirror-erspan2" => mirror_erspan2,
        "mirror-erspan3" => mirror_erspan3,
        "mirror-gre-udp" => mirror_gre_udp,
        "aws-gwlb-double" => aws_gwlb_double,
        "gcp-nsi-geneve" => gcp_nsi_geneve,
        "truncated-mirror" => truncated_mirror,
        "malformed-tunnels" => malformed_tunnels,
        "nested-too-deep" => nested_too_deep,
        "collectors-vxlan" => collectors_vxlan,
        "collectors-geneve" => collectors_geneve,
        "collectors-gre-teb" => collectors_gre_teb,
        "collectors-nvgre" => collectors_nvgre,
        "collectors-erspan1" => collectors_erspan1,
        "collectors-erspan2" => collectors_erspan2,
        "collectors-erspan3" => collectors_erspan3,
        "inventory-bounds" => inventory_bounds,
        "vxlan-nonstandard-port" => vxlan_nonstandard_port,
        "overlay-vxlan" => overlay_vxlan,
        "overlay-geneve" => overlay_geneve,
        "mirror-of-native" => mirror_of_native,
        "early-decision" => early_decision,
        _ => return None,
    };
    Some(builder)
}

/// Outer source of the mirror scenarios (the mirrored ENI's primary address, or the switch).
const MIRROR_SOURCE: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 5);
/// Collector the mirror scenarios send to.
const COLLECTOR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
/// MSS of IPv4 sessions (Ethernet MTU 1500).
const MSS_IPV4: u16 = 1460;
/// MSS of IPv6 sessions (Ethernet MTU 1500).
const MSS_IPV6: u16 = 1440;
/// A mirror copy leaves the source this long after the packet it copies.
const MIRROR_DELAY_US: u64 = 35;
/// The DNS, TCP and ICMP parts of a workload start this far apart (before jitter).
const WORKLOAD_SPACING_US: u64 = 250_000;

/// A mirrored host and the peers its workload talks to.
#[derive(Clone, Copy, Debug)]
struct MirroredHost {
    v4: Ipv4Addr,
    v6: Option<Ipv6Addr>,
    gateway: Ipv4Addr,
    resolver: Ipv4Addr,
    web_v4: Ipv4Addr,
    web_v6: Ipv6Addr,
}

/// The host behind the mirror source in most mirror scenarios.
const HOST_A: MirroredHost = MirroredHost {
    v4: Ipv4Addr::new(10, 10, 0, 5),
    v6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 5)),
    gateway: Ipv4Addr::new(10, 10, 0, 1),
    resolver: Ipv4Addr::new(10, 10, 0, 2),
    web_v4: Ipv4Addr::new(198, 51, 100, 20),
    web_v6: Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x20),
};

/// A second mirrored host (ERSPAN III second session, AWS second mirror session).
const HOST_B: MirroredHost = MirroredHost {
    v4: Ipv4Addr::new(10, 10, 0, 7),
    v6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 7)),
    ..HOST_A
};

/// Ephemeral client ports, never handed out twice in one scenario.
#[derive(Debug, Default)]
struct EphemeralPorts {
    used: Vec<u16>,
}

impl EphemeralPorts {
    /// A fresh port from the Linux default ephemeral range.
    fn next(&mut self, rng: &mut ChaCha8Rng) -> u16 {
        loop {
            let port = rng.random_range(32_768..=60_999);
            if !self.used.contains(&port) {
                self.used.push(port);
                return port;
            }
        }
    }
}

fn v4(ip: Ipv4Addr) -> IpAddr {
    IpAddr::V4(ip)
}

fn v6(ip: Ipv6Addr) -> IpAddr {
    IpAddr::V6(ip)
}

fn endpoint(ip: IpAddr, port: u16) -> Endpoint {
    Endpoint { ip, port }
}

/// An untagged link from `host` to its `next_hop`.
fn link_to(host: IpAddr, next_hop: IpAddr) -> Link {
    Link {
        src_mac: mac_for(host),
        dst_mac: mac_for(next_hop),
        tags: LinkTags::Untagged,
    }
}

/// An HTTP connection from `client_ip` (on a fresh ephemeral port) with one GET per entry of
/// `body_lens`, each answered with a body of that many bytes.
fn tcp_http(
    rng: &mut ChaCha8Rng,
    ports: &mut EphemeralPorts,
    client_ip: IpAddr,
    server: Endpoint,
    link: Link,
    body_lens: &[usize],
) -> Conversation {
    let client = endpoint(client_ip, ports.next(rng));
    let host = "www.example.com";
    let exchanges = body_lens
        .iter()
        .map(|body_len| http_exchange(rng, host, *body_len))
        .collect();
    Conversation::Tcp(TcpSession {
        client,
        server,
        link,
        rtt_us: rng.random_range(8_000..=40_000),
        mss: if client.ip.is_ipv4() {
            MSS_IPV4
        } else {
            MSS_IPV6
        },
        exchanges,
    })
}

/// The conversation's frames, starting `base_us` plus up to 50 ms of jitter.
fn frames_at(
    conversation: &Conversation,
    base_us: u64,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<TimedFrame>, GenerateError> {
    let start_us = base_us + rng.random_range(0..50_000);
    conversation.frames(start_us, rng)
}

/// What a mirrored host does, always the same shape: a DNS A lookup, an HTTP GET over IPv4
/// (2400-byte body), two pings, and (with an IPv6 address) an HTTP GET over IPv6 (1800-byte
/// body). Four innermost flows with IPv6, three without. Sorted by time.
fn workload(
    rng: &mut ChaCha8Rng,
    host: &MirroredHost,
    ports: &mut EphemeralPorts,
    start_us: u64,
) -> Result<Vec<TimedFrame>, GenerateError> {
    let host_v4 = v4(host.v4);
    let gateway = v4(host.gateway);
    let dns = Conversation::Dns(DnsExchange {
        client: endpoint(host_v4, ports.next(rng)),
        server: endpoint(v4(host.resolver), 53),
        link: link_to(host_v4, v4(host.resolver)),
        rtt_us: rng.random_range(300..=1_500),
        query_name: "api.example.com".to_owned(),
        answer: v4(host.web_v4),
    });
    let web_v4 = tcp_http(
        rng,
        ports,
        host_v4,
        endpoint(v4(host.web_v4), 80),
        link_to(host_v4, gateway),
        &[2400],
    );
    let ping = Conversation::IcmpEcho(IcmpEcho {
        client: host_v4,
        server: v4(host.web_v4),
        link: link_to(host_v4, gateway),
        rtt_us: rng.random_range(8_000..=40_000),
        count: 2,
        interval_us: 1_000_000,
    });
    let mut frames = Vec::new();
    frames.extend(frames_at(&dns, start_us, rng)?);
    frames.extend(frames_at(&web_v4, start_us + WORKLOAD_SPACING_US, rng)?);
    frames.extend(frames_at(&ping, start_us + 2 * WORKLOAD_SPACING_US, rng)?);
    if let Some(host_v6) = host.v6 {
        let web_v6 = tcp_http(
            rng,
            ports,
            v6(host_v6),
            endpoint(v6(host.web_v6), 80),
            link_to(v6(host_v6), gateway),
            &[1800],
        );
        frames.extend(frames_at(&web_v6, start_us + 3 * WORKLOAD_SPACING_US, rng)?);
    }
    frames.sort_by_key(|frame| frame.time_us);
    Ok(frames)
}

/// The workload of the standard mirrored host (10.10.0.5 and 2001:db8:10::5) from time 0:
/// 26 frames in four flows. The evasion scenarios (issue 16) carry it in their own ways.
pub(super) fn standard_workload(rng: &mut ChaCha8Rng) -> Result<Vec<TimedFrame>, GenerateError> {
    workload(rng, &HOST_A, &mut EphemeralPorts::default(), 0)
}

/// Frame `frame_idx` of a conversation's frames.
fn nth_frame(frames: &[TimedFrame], frame_idx: usize) -> Result<&Frame, GenerateError> {
    frames
        .get(frame_idx)
        .map(|timed| &timed.frame)
        .ok_or_else(|| GenerateError::build("scenario", "the conversation has fewer frames"))
}

/// Wraps each frame in `stack` and adds the outer frame to `timeline`, a moment later.
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

/// One mirror session of `kind` from [`MIRROR_SOURCE`] to [`COLLECTOR`] carrying the
/// workload of [`HOST_A`] (without its IPv6 part when `with_ipv6` is false).
fn single_mirror(
    rng: &mut ChaCha8Rng,
    kind: EncapKind,
    with_ipv6: bool,
) -> Result<Timeline, GenerateError> {
    let host = MirroredHost {
        v6: if with_ipv6 { HOST_A.v6 } else { None },
        ..HOST_A
    };
    let mut ports = EphemeralPorts::default();
    let frames = workload(rng, &host, &mut ports, 0)?;
    let layer = Encap::new(kind, v4(MIRROR_SOURCE), v4(COLLECTOR));
    let mut stack = EncapStack::new(vec![layer], rng);
    let mut timeline = Timeline::new();
    mirror_into(&mut timeline, &mut stack, &frames)?;
    Ok(timeline)
}

fn plain_sessions(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let client_a = v4(Ipv4Addr::new(192, 168, 10, 21));
    let client_b = v4(Ipv4Addr::new(192, 168, 10, 22));
    let client_v6 = v6(Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 0x21));
    let gateway = v4(Ipv4Addr::new(192, 168, 10, 1));
    let resolver_v6 = v6(Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 1));
    let web_a = v4(Ipv4Addr::new(192, 0, 2, 80));
    let web_b = v4(Ipv4Addr::new(198, 51, 100, 25));
    let web_v6 = v6(Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 0x80));
    let vlan_client = v4(Ipv4Addr::new(192, 168, 20, 31));
    let qinq_client = v4(Ipv4Addr::new(192, 168, 30, 41));
    let mpls_client = v4(Ipv4Addr::new(172, 16, 40, 51));
    let mut ports = EphemeralPorts::default();

    let dns_v4 = Conversation::Dns(DnsExchange {
        client: endpoint(client_a, ports.next(rng)),
        server: endpoint(gateway, 53),
        link: link_to(client_a, gateway),
        rtt_us: rng.random_range(300..=1_500),
        query_name: "www.example.com".to_owned(),
        answer: web_a,
    });
    let web_v4_a = tcp_http(
        rng,
        &mut ports,
        client_a,
        endpoint(web_a, 80),
        link_to(client_a, gateway),
        &[2000],
    );
    let dns_v6 = Conversation::Dns(DnsExchange {
        client: endpoint(client_v6, ports.next(rng)),
        server: endpoint(resolver_v6, 53),
        link: link_to(client_v6, resolver_v6),
        rtt_us: rng.random_range(300..=1_500),
        query_name: "www.example.net".to_owned(),
        answer: web_v6,
    });
    let web_v6_session = tcp_http(
        rng,
        &mut ports,
        client_v6,
        endpoint(web_v6, 80),
        link_to(client_v6, resolver_v6),
        &[3000],
    );
    let ping_v4 = Conversation::IcmpEcho(IcmpEcho {
        client: client_b,
        server: web_a,
        link: link_to(client_b, gateway),
        rtt_us: rng.random_range(8_000..=40_000),
        count: 3,
        interval_us: 1_000_000,
    });
    let web_v4_b = tcp_http(
        rng,
        &mut ports,
        client_b,
        endpoint(web_b, 8080),
        link_to(client_b, gateway),
        &[500, 6000],
    );
    let vlan_session = tcp_http(
        rng,
        &mut ports,
        vlan_client,
        endpoint(v4(Ipv4Addr::new(192, 0, 2, 81)), 80),
        Link {
            tags: LinkTags::Vlan { vlan_id: 100 },
            ..link_to(vlan_client, gateway)
        },
        &[1200],
    );
    let qinq_session = tcp_http(
        rng,
        &mut ports,
        qinq_client,
        endpoint(v4(Ipv4Addr::new(192, 0, 2, 82)), 80),
        Link {
            tags: LinkTags::QinQ {
                outer_vlan_id: 200,
                inner_vlan_id: 300,
            },
            ..link_to(qinq_client, gateway)
        },
        &[800],
    );
    let mpls_session = tcp_http(
        rng,
        &mut ports,
        mpls_client,
        endpoint(v4(Ipv4Addr::new(172, 16, 50, 60)), 80),
        Link {
            tags: LinkTags::Mpls {
                labels: vec![16_001, 16_002],
            },
            ..link_to(mpls_client, gateway)
        },
        &[1500],
    );
    let ping_v6 = Conversation::IcmpEcho(IcmpEcho {
        client: client_v6,
        server: web_v6,
        link: link_to(client_v6, resolver_v6),
        rtt_us: rng.random_range(8_000..=40_000),
        count: 2,
        interval_us: 1_000_000,
    });

    let schedule: [(&Conversation, u64); 10] = [
        (&dns_v4, 0),
        (&web_v4_a, 20_000),
        (&dns_v6, 150_000),
        (&web_v6_session, 170_000),
        (&ping_v4, 400_000),
        (&web_v4_b, 900_000),
        (&vlan_session, 1_300_000),
        (&qinq_session, 1_600_000),
        (&mpls_session, 2_000_000),
        (&ping_v6, 2_400_000),
    ];
    let mut timeline = Timeline::new();
    for (conversation, base_us) in schedule {
        for timed in frames_at(conversation, base_us, rng)? {
            timeline.push(timed.time_us, timed.frame.to_ethernet_bytes()?);
        }
    }
    Ok(timeline)
}

fn mirror_vxlan(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    single_mirror(rng, EncapKind::Vxlan { vni: 100 }, true)
}

fn mirror_geneve(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    // OVN's critical logical-port option (class 0x0102, type 0x80, 4 bytes) and a
    // non-critical Open vSwitch option (class 0x0101, type 0x01, 8 bytes).
    let options = vec![
        GeneveOption {
            class: 0x0102,
            option_type: 0x80,
            data: vec![0x00, 0x01, 0x00, 0x07],
        },
        GeneveOption {
            class: 0x0101,
            option_type: 0x01,
            data: vec![0x6d, 0x69, 0x72, 0x72, 0x6f, 0x72, 0x00, 0x01],
        },
    ];
    let kind = EncapKind::Geneve {
        vni: 200,
        payload: GenevePayload::Ethernet,
        options,
    };
    single_mirror(rng, kind, true)
}

fn mirror_gre(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let kind = EncapKind::IpGre {
        key: Some(300),
        checksum: true,
        sequence: false,
    };
    single_mirror(rng, kind, true)
}

fn mirror_gre_teb(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    single_mirror(rng, EncapKind::GreTeb { key: None }, true)
}

fn mirror_nvgre(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    single_mirror(rng, EncapKind::Nvgre { vsid: 5001 }, true)
}

fn mirror_erspan1(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    single_mirror(rng, EncapKind::Erspan1, true)
}

fn mirror_erspan2(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let kind = EncapKind::Erspan2 {
        session_id: 101,
        index: 3,
    };
    single_mirror(rng, kind, true)
}

/// Two ERSPAN III sessions from one switch: session 300 (ingress, no subheader) mirrors host
/// A, session 301 (egress, O bit and platform subheader) mirrors host B.
fn mirror_erspan3(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut ports = EphemeralPorts::default();
    let frames_a = workload(rng, &HOST_A, &mut ports, 0)?;
    let frames_b = workload(rng, &HOST_B, &mut ports, 100_000)?;
    let session_a = Encap::new(
        EncapKind::Erspan3 {
            session_id: 300,
            hardware_id: 5,
            egress: false,
            platform: None,
        },
        v4(MIRROR_SOURCE),
        v4(COLLECTOR),
    );
    let session_b = Encap::new(
        EncapKind::Erspan3 {
            session_id: 301,
            hardware_id: 5,
            egress: true,
            platform: Some(ErspanPlatform {
                platform_id: 3,
                info: 0x0000_0000_0012_0034,
            }),
        },
        v4(MIRROR_SOURCE),
        v4(COLLECTOR),
    );
    let mut stack_a = EncapStack::new(vec![session_a], rng);
    let mut stack_b = EncapStack::new(vec![session_b], rng);
    let mut timeline = Timeline::new();
    mirror_into(&mut timeline, &mut stack_a, &frames_a)?;
    mirror_into(&mut timeline, &mut stack_b, &frames_b)?;
    Ok(timeline)
}

fn mirror_gre_udp(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    single_mirror(rng, EncapKind::GreInUdp { key: None }, false)
}

/// AWS Traffic Mirroring to a Gateway Load Balancer endpoint: the GWLB hands the appliance
/// Geneve (VNI 0, bare IPv4, AWS options class 0x0108) around the mirror's VXLAN.
fn aws_gwlb_double(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    const GWLB: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 10);
    const APPLIANCE: Ipv4Addr = Ipv4Addr::new(10, 20, 1, 20);
    const GWLB_ENDPOINT: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 200);
    let host_c = MirroredHost {
        v4: Ipv4Addr::new(10, 10, 0, 6),
        v6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 6)),
        ..HOST_A
    };
    // GWLB options: endpoint id (8 bytes), attachment id (8 bytes), flow cookie (4 bytes):
    // 32 bytes of options, the documented 68-byte overhead with IP, UDP and Geneve.
    let gwlb_options = |rng: &mut ChaCha8Rng| {
        vec![
            GeneveOption {
                class: 0x0108,
                option_type: 1,
                data: rng.random::<u64>().to_be_bytes().to_vec(),
            },
            GeneveOption {
                class: 0x0108,
                option_type: 2,
                data: rng.random::<u64>().to_be_bytes().to_vec(),
            },
            GeneveOption {
                class: 0x0108,
                option_type: 3,
                data: rng.random::<u32>().to_be_bytes().to_vec(),
            },
        ]
    };
    let options = gwlb_options(rng);
    let mut ports = EphemeralPorts::default();
    let mut timeline = Timeline::new();
    for (host, vni, start_us) in [(HOST_A, 4242, 0), (host_c, 4243, 120_000)] {
        let frames = workload(rng, &host, &mut ports, start_us)?;
        let gwlb_layer = Encap::new(
            EncapKind::Geneve {
                vni: 0,
                payload: GenevePayload::Ip,
                options: options.clone(),
            },
            v4(GWLB),
            v4(APPLIANCE),
        )
        .with_src_port(SourcePort::FlowHash { salt: 1 });
        let mirror_layer = Encap::new(EncapKind::Vxlan { vni }, v4(host.v4), v4(GWLB_ENDPOINT));
        let mut stack = EncapStack::new(vec![gwlb_layer, mirror_layer], rng);
        mirror_into(&mut timeline, &mut stack, &frames)?;
    }
    Ok(timeline)
}

/// GCP Network Security Integration out-of-band mirroring: Geneve, VNI 0, bare IP
/// (protocol type 0x0800, 0x86DD for the IPv6 session), Google options class 0x0132.
fn gcp_nsi_geneve(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    const GCP_HOST: MirroredHost = MirroredHost {
        v4: Ipv4Addr::new(10, 128, 0, 5),
        v6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 5)),
        gateway: Ipv4Addr::new(10, 128, 0, 1),
        resolver: Ipv4Addr::new(169, 254, 169, 254),
        web_v4: Ipv4Addr::new(198, 51, 100, 30),
        web_v6: Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x30),
    };
    const COLLECTOR_FRONTEND: Ipv4Addr = Ipv4Addr::new(10, 130, 0, 10);
    // Google's class 0x0132 options as Wireshark decodes them: type 1 network id (28-bit
    // VPC network id, 3 reserved bits, direction bit), type 2 endpoint id, type 3 profile id.
    const NETWORK_ID: u32 = 0x00A1_B2C3;
    let options = vec![
        GeneveOption {
            class: 0x0132,
            option_type: 1,
            data: (NETWORK_ID << 4).to_be_bytes().to_vec(),
        },
        GeneveOption {
            class: 0x0132,
            option_type: 2,
            data: rng.random::<u64>().to_be_bytes().to_vec(),
        },
        GeneveOption {
            class: 0x0132,
            option_type: 3,
            data: rng.random::<u64>().to_be_bytes().to_vec(),
        },
    ];
    let mut ports = EphemeralPorts::default();
    let frames = workload(rng, &GCP_HOST, &mut ports, 0)?;
    let layer = Encap::new(
        EncapKind::Geneve {
            vni: 0,
            payload: GenevePayload::Ip,
            options,
        },
        v4(GCP_HOST.v4),
        v4(COLLECTOR_FRONTEND),
    );
    let mut stack = EncapStack::new(vec![layer], rng);
    let mut timeline = Timeline::new();
    mirror_into(&mut timeline, &mut stack, &frames)?;
    Ok(timeline)
}

/// A VXLAN mirror (VNI 100) of host A's workload where the IPv4 HTTP packets are cut by the
/// capture (snaplen 128: caplen < len) and the IPv6 HTTP packets by the mirror (AWS
/// `PacketLength` 96: inner IP length larger than the bytes present).
fn truncated_mirror(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    const SNAPLEN_BYTES: usize = 128;
    const PACKET_LENGTH_BYTES: usize = 96;
    let mut ports = EphemeralPorts::default();
    let frames = workload(rng, &HOST_A, &mut ports, 0)?;
    let layer = Encap::new(
        EncapKind::Vxlan { vni: 100 },
        v4(MIRROR_SOURCE),
        v4(COLLECTOR),
    );
    let mut stack = EncapStack::new(vec![layer], rng);
    let mut timeline = Timeline::new();
    for timed in &frames {
        let flow = timed.frame.flow;
        let is_http = flow.src_port == 80 || flow.dst_port == 80;
        let limit = (is_http && flow.src_ip.is_ipv6()).then_some(PACKET_LENGTH_BYTES);
        stack.set_payload_limit(0, limit)?;
        let outer = stack
            .wrap(&timed.frame, timed.time_us)?
            .to_ethernet_bytes()?;
        let time_us = timed.time_us + MIRROR_DELAY_US;
        if is_http && flow.src_ip.is_ipv4() {
            timeline.push_snapped(time_us, outer, SNAPLEN_BYTES);
        } else {
            timeline.push(time_us, outer);
        }
    }
    Ok(timeline)
}

/// Six malformed tunnel packets between six good ones (VXLAN VNI 100, IP-in-GRE key 300 and
/// ERSPAN II session 101, two packets each), one every 100 ms.
fn malformed_tunnels(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    const STEP_US: u64 = 100_000;
    let host = v4(HOST_A.v4);
    let gateway = v4(HOST_A.gateway);
    let resolver = v4(HOST_A.resolver);
    let mut ports = EphemeralPorts::default();
    let dns = |rng: &mut ChaCha8Rng, ports: &mut EphemeralPorts, name: &str| {
        Conversation::Dns(DnsExchange {
            client: endpoint(host, ports.next(rng)),
            server: endpoint(resolver, 53),
            link: link_to(host, resolver),
            rtt_us: 1_000,
            query_name: name.to_owned(),
            answer: v4(HOST_A.web_v4),
        })
    };
    let ping = |count: u16| {
        Conversation::IcmpEcho(IcmpEcho {
            client: host,
            server: v4(HOST_A.web_v4),
            link: link_to(host, gateway),
            rtt_us: 10_000,
            count,
            interval_us: 1_000,
        })
    };
    let vxlan_dns = dns(rng, &mut ports, "good-vxlan.example.com").frames(0, rng)?;
    let erspan_dns = dns(rng, &mut ports, "good-erspan.example.com").frames(0, rng)?;
    let gre_ping = ping(1).frames(0, rng)?;
    // Inner frames for the packets whose tunnel header is bad.
    let bad_inner = ping(2).frames(0, rng)?;

    let outer = |kind: EncapKind| Encap::new(kind, v4(MIRROR_SOURCE), v4(COLLECTOR));
    let raw = |carrier: RawCarrier, header: Vec<u8>, payload: RawPayload| {
        outer(EncapKind::Raw {
            carrier,
            header,
            payload,
        })
    };
    let vxlan_port = RawCarrier::Udp { dst_port: 4789 };
    let geneve_port = RawCarrier::Udp { dst_port: 6081 };
    let gre = RawCarrier::Ip { protocol: 47 };

    // VXLAN on 4789 with the I flag clear.
    let mut vxlan_no_i_flag = vxlan_header(100)?;
    vxlan_no_i_flag[0] = 0x00;
    // Geneve version 1 (the two high bits of the first byte).
    let mut geneve_version_1 = geneve_header(200, ETHERTYPE_TEB, &[])?;
    geneve_version_1[0] |= 0x40;
    // GRE version 3 (low three bits of the second byte), IPv4 payload.
    let mut gre_version_3 = gre_header(&GreFields::new(ETHERTYPE_IPV4, None), &[]);
    gre_version_3[1] = 0x03;
    // GRE 0x88BE with S (ERSPAN II) whose ERSPAN header says version 7.
    let mut erspan_fields = GreFields::new(0x88BE, None);
    erspan_fields.sequence = Some(7);
    let mut erspan_version_7 = gre_header(&erspan_fields, &[]);
    let mut erspan_header = erspan2_header(102, 0, 3)?;
    erspan_header[0] = (erspan_header[0] & 0x0F) | 0x70;
    erspan_version_7.extend_from_slice(&erspan_header);
    // VXLAN cut after 5 of its 8 bytes; the UDP and IP lengths agree with the cut.
    let vxlan_cut = vxlan_header(100)?[..5].to_vec();
    // GRE with the K bit set and the packet ending before the key.
    let gre_key_missing = gre_header(&GreFields::new(ETHERTYPE_IPV4, Some(300)), &[])[..4].to_vec();

    let bad_layers = [
        raw(vxlan_port, vxlan_no_i_flag.to_vec(), RawPayload::Ethernet),
        raw(geneve_port, geneve_version_1, RawPayload::Ethernet),
        raw(gre, gre_version_3, RawPayload::Ip),
        raw(gre, erspan_version_7, RawPayload::Ethernet),
        raw(vxlan_port, vxlan_cut, RawPayload::Nothing),
        raw(gre, gre_key_missing, RawPayload::Nothing),
    ];
    let good_layers = [
        outer(EncapKind::Vxlan { vni: 100 }),
        outer(EncapKind::IpGre {
            key: Some(300),
            checksum: false,
            sequence: false,
        }),
        outer(EncapKind::Erspan2 {
            session_id: 101,
            index: 3,
        }),
    ];
    let mut good_stacks: Vec<EncapStack> = good_layers
        .into_iter()
        .map(|layer| EncapStack::new(vec![layer], rng))
        .collect();
    // (stack index, inner frame) of each good packet.
    let good = [
        (0, nth_frame(&vxlan_dns, 0)?),
        (0, nth_frame(&vxlan_dns, 1)?),
        (1, nth_frame(&gre_ping, 0)?),
        (1, nth_frame(&gre_ping, 1)?),
        (2, nth_frame(&erspan_dns, 0)?),
        (2, nth_frame(&erspan_dns, 1)?),
    ];

    // Good and bad alternate: good packet i at slot 2i, bad packet i at slot 2i + 1.
    let mut timeline = Timeline::new();
    let mut slot = 0u64;
    for (pkt_idx, (stack_idx, inner)) in good.into_iter().enumerate() {
        let time_us = slot * STEP_US;
        let stack = good_stacks
            .get_mut(stack_idx)
            .ok_or_else(|| GenerateError::build("malformed-tunnels", "no such stack"))?;
        timeline.push(time_us, stack.wrap(inner, time_us)?.to_ethernet_bytes()?);
        slot += 1;
        let Some(bad_layer) = bad_layers.get(pkt_idx) else {
            continue;
        };
        let inner = nth_frame(&bad_inner, pkt_idx % bad_inner.len().max(1))?;
        let time_us = slot * STEP_US;
        let mut bad_stack = EncapStack::new(vec![bad_layer.clone()], rng);
        timeline.push(
            time_us,
            bad_stack.wrap(inner, time_us)?.to_ethernet_bytes()?,
        );
        slot += 1;
    }
    Ok(timeline)
}

/// VXLAN nested six deep (VNIs 601..=606) around a DNS exchange, and VXLAN nested exactly
/// four deep (VNIs 401..=404, the default cap) around two pings. Level `i` (0 = outermost)
/// runs from 10.0.i.1 to 10.0.i.2 in both stacks.
fn nested_too_deep(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let host = v4(Ipv4Addr::new(192, 168, 77, 10));
    let resolver = v4(Ipv4Addr::new(192, 168, 77, 1));
    let peer = v4(Ipv4Addr::new(192, 168, 77, 20));
    let mut ports = EphemeralPorts::default();
    let dns = Conversation::Dns(DnsExchange {
        client: endpoint(host, ports.next(rng)),
        server: endpoint(resolver, 53),
        link: link_to(host, resolver),
        rtt_us: 800,
        query_name: "deep.example.com".to_owned(),
        answer: peer,
    });
    let ping = Conversation::IcmpEcho(IcmpEcho {
        client: host,
        server: peer,
        link: link_to(host, peer),
        rtt_us: 500,
        count: 2,
        interval_us: 1_000_000,
    });
    let nested = |levels: u8, first_vni: u32| {
        (0..levels)
            .map(|level| {
                Encap::new(
                    EncapKind::Vxlan {
                        vni: first_vni + u32::from(level),
                    },
                    v4(Ipv4Addr::new(10, 0, level, 1)),
                    v4(Ipv4Addr::new(10, 0, level, 2)),
                )
                .with_src_port(SourcePort::FlowHash {
                    salt: u32::from(level),
                })
            })
            .collect::<Vec<_>>()
    };
    let mut six_deep = EncapStack::new(nested(6, 601), rng);
    let mut four_deep = EncapStack::new(nested(4, 401), rng);
    let mut timeline = Timeline::new();
    mirror_into(&mut timeline, &mut six_deep, &frames_at(&dns, 0, rng)?)?;
    mirror_into(
        &mut timeline,
        &mut four_deep,
        &frames_at(&ping, 200_000, rng)?,
    )?;
    Ok(timeline)
}

/// A collector inside `[networks] home` that no configuration approves.
const INTERNAL_COLLECTOR: Ipv4Addr = Ipv4Addr::new(10, 50, 0, 9);
/// A collector inside 10.60.0.0/24, which the `collectors-*` cases' `config.toml` approves.
const APPROVED_COLLECTOR: Ipv4Addr = Ipv4Addr::new(10, 60, 0, 20);
/// The collector of `inventory-bounds`, bounded by a `[[mirror.inventory]]` entry to sources
/// in 10.10.0.0/24, type VXLAN and VNI 100.
const INVENTORY_COLLECTOR: Ipv4Addr = Ipv4Addr::new(10, 70, 0, 10);
/// UDP port of the VXLAN mirror in `vxlan-nonstandard-port`, in no `[decode]` port list.
const NONSTANDARD_VXLAN_PORT: u16 = 31_337;

/// A third mirrored host, in the same subnet as [`HOST_A`] and [`HOST_B`].
const HOST_C: MirroredHost = MirroredHost {
    v4: Ipv4Addr::new(10, 10, 0, 6),
    v6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 6)),
    ..HOST_A
};

/// A mirrored host outside 10.10.0.0/24 (a source no inventory entry lists).
const HOST_D: MirroredHost = MirroredHost {
    v4: Ipv4Addr::new(10, 20, 0, 5),
    v6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 5)),
    gateway: Ipv4Addr::new(10, 20, 0, 1),
    resolver: Ipv4Addr::new(10, 20, 0, 2),
    ..HOST_A
};

/// Mirror sessions, each carrying one host's [`workload`] (the host is the outer source, as
/// with AWS Traffic Mirroring of an ENI) to a collector, the n-th one starting n × 100 ms
/// (plus jitter) into the capture.
fn mirror_sessions(
    rng: &mut ChaCha8Rng,
    sessions: Vec<(MirroredHost, EncapKind, Ipv4Addr)>,
) -> Result<Timeline, GenerateError> {
    const SESSION_SPACING_US: u64 = 100_000;
    let mut ports = EphemeralPorts::default();
    let mut timeline = Timeline::new();
    for (start_us, (host, kind, collector)) in (0..)
        .map(|session_idx| session_idx * SESSION_SPACING_US)
        .zip(sessions)
    {
        let frames = workload(rng, &host, &mut ports, start_us)?;
        let layer = Encap::new(kind, v4(host.v4), v4(collector));
        let mut stack = EncapStack::new(vec![layer], rng);
        mirror_into(&mut timeline, &mut stack, &frames)?;
    }
    Ok(timeline)
}

/// Three mirror sessions of one type: host A (10.10.0.5) to the external collector
/// 203.0.113.50, host C (10.10.0.6) to the internal but unapproved 10.50.0.9, host B
/// (10.10.0.7) to the approved 10.60.0.20. `kinds` are the sessions' headers, in that order.
fn three_collectors(
    rng: &mut ChaCha8Rng,
    kinds: [EncapKind; 3],
) -> Result<Timeline, GenerateError> {
    let [external, internal, approved] = kinds;
    mirror_sessions(
        rng,
        vec![
            (HOST_A, external, COLLECTOR),
            (HOST_C, internal, INTERNAL_COLLECTOR),
            (HOST_B, approved, APPROVED_COLLECTOR),
        ],
    )
}

fn collectors_vxlan(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let vxlan = |vni| EncapKind::Vxlan { vni };
    three_collectors(rng, [vxlan(100), vxlan(101), vxlan(102)])
}

fn collectors_geneve(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let geneve = |vni| EncapKind::Geneve {
        vni,
        payload: GenevePayload::Ethernet,
        options: Vec::new(),
    };
    three_collectors(rng, [geneve(200), geneve(201), geneve(202)])
}

/// GRE-TEB without a key (id 0): with a key, 0x6558 is NVGRE (RFC 7637) on the wire, and the
/// sensor reads it so.
fn collectors_gre_teb(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let teb = || EncapKind::GreTeb { key: None };
    three_collectors(rng, [teb(), teb(), teb()])
}

fn collectors_nvgre(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let nvgre = |vsid| EncapKind::Nvgre { vsid };
    three_collectors(rng, [nvgre(5001), nvgre(5002), nvgre(5003)])
}

fn collectors_erspan1(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    three_collectors(
        rng,
        [EncapKind::Erspan1, EncapKind::Erspan1, EncapKind::Erspan1],
    )
}

fn collectors_erspan2(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let erspan2 = |session_id| EncapKind::Erspan2 {
        session_id,
        index: 3,
    };
    three_collectors(rng, [erspan2(101), erspan2(102), erspan2(103)])
}

/// ERSPAN III sessions 300 (ingress), 301 (egress, platform subheader) and 302 (ingress).
fn collectors_erspan3(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let erspan3 = |session_id, egress: bool| EncapKind::Erspan3 {
        session_id,
        hardware_id: 5,
        egress,
        platform: egress.then_some(ErspanPlatform {
            platform_id: 3,
            info: 0x0000_0000_0012_0034,
        }),
    };
    three_collectors(
        rng,
        [erspan3(300, false), erspan3(301, true), erspan3(302, false)],
    )
}

/// Four VXLAN/Geneve mirror sessions to 10.70.0.10, a collector approved by an inventory
/// entry only for sources in 10.10.0.0/24, type VXLAN, VNI 100: host A with VXLAN 100
/// (inside the bounds), host D (10.20.0.5, an unlisted source) with VXLAN 100, host C with
/// VXLAN 200 (unexpected VNI) and host B with Geneve 100 (unexpected type).
fn inventory_bounds(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let vxlan = |vni| EncapKind::Vxlan { vni };
    let geneve_100 = EncapKind::Geneve {
        vni: 100,
        payload: GenevePayload::Ethernet,
        options: Vec::new(),
    };
    mirror_sessions(
        rng,
        vec![
            (HOST_A, vxlan(100), INVENTORY_COLLECTOR),
            (HOST_D, vxlan(100), INVENTORY_COLLECTOR),
            (HOST_C, vxlan(200), INVENTORY_COLLECTOR),
            (HOST_B, geneve_100, INVENTORY_COLLECTOR),
        ],
    )
}

/// A VXLAN mirror (VNI 100) of host A to 203.0.113.50 on UDP 31337, a port no `[decode]`
/// list names; and, on the same capture, a native UDP conversation with random payloads
/// between 10.10.0.8 and 198.51.100.40 port 9000 (12 datagrams each way) that is no tunnel.
fn vxlan_nonstandard_port(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut ports = EphemeralPorts::default();
    let frames = workload(rng, &HOST_A, &mut ports, 0)?;
    let layer = Encap::new(
        EncapKind::Vxlan { vni: 100 },
        v4(MIRROR_SOURCE),
        v4(COLLECTOR),
    )
    .with_dst_port(NONSTANDARD_VXLAN_PORT);
    let mut stack = EncapStack::new(vec![layer], rng);
    let mut timeline = Timeline::new();
    mirror_into(&mut timeline, &mut stack, &frames)?;

    let client = v4(Ipv4Addr::new(10, 10, 0, 8));
    let server = v4(Ipv4Addr::new(198, 51, 100, 40));
    let opaque = Conversation::Udp(UdpDatagrams {
        client: endpoint(client, ports.next(rng)),
        server: endpoint(server, 9000),
        link: link_to(client, v4(HOST_A.gateway)),
        rtt_us: rng.random_range(8_000..=40_000),
        count: 12,
        interval_us: 100_000,
        min_payload: 24,
        max_payload: 400,
    });
    for timed in frames_at(&opaque, WORKLOAD_SPACING_US, rng)? {
        timeline.push(timed.time_us, timed.frame.to_ethernet_bytes()?);
    }
    Ok(timeline)
}

/// An overlay between two VTEPs, 10.0.0.11 (A, hosts 192.168.50.0/24) and 10.0.0.12 (B, hosts
/// 192.168.60.0/24), both ways in one `kind` network: each inner frame travels from its
/// sender's VTEP to the other, so a conversation's requests and replies take opposite outer
/// directions. Five conversations, 39 packets (more than the default decision threshold of 32,
/// so the class is decided before the end):
/// - behind A 192.168.50.10 asks 192.168.60.2 (UDP 53) for an A record (2 packets);
/// - 192.168.50.10 GETs two objects from 192.168.60.20:80 on one connection (bodies 2400 and
///   600 bytes: 8 client, 5 server packets);
/// - 192.168.50.11 GETs one object from 192.168.60.20:80 (1200 bytes: 6 + 3 packets);
/// - 192.168.50.11 pings 192.168.60.20 three times (6 packets);
/// - behind B 192.168.60.30 GETs one object from 192.168.50.10:8080 (800 bytes: 6 + 3).
fn overlay(rng: &mut ChaCha8Rng, kind: EncapKind) -> Result<Timeline, GenerateError> {
    const VTEP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
    const VTEP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 12);
    let a_client = v4(Ipv4Addr::new(192, 168, 50, 10));
    let a_other = v4(Ipv4Addr::new(192, 168, 50, 11));
    let b_resolver = v4(Ipv4Addr::new(192, 168, 60, 2));
    let b_web = v4(Ipv4Addr::new(192, 168, 60, 20));
    let b_client = v4(Ipv4Addr::new(192, 168, 60, 30));
    let behind_a = |ip: IpAddr| matches!(ip, IpAddr::V4(v4) if v4.octets()[2] == 50);

    let mut ports = EphemeralPorts::default();
    let dns = Conversation::Dns(DnsExchange {
        client: endpoint(a_client, ports.next(rng)),
        server: endpoint(b_resolver, 53),
        link: link_to(a_client, b_resolver),
        rtt_us: rng.random_range(300..=1_500),
        query_name: "db.internal.example".to_owned(),
        answer: b_web,
    });
    let web_two = tcp_http(
        rng,
        &mut ports,
        a_client,
        endpoint(b_web, 80),
        link_to(a_client, b_web),
        &[2400, 600],
    );
    let web_one = tcp_http(
        rng,
        &mut ports,
        a_other,
        endpoint(b_web, 80),
        link_to(a_other, b_web),
        &[1200],
    );
    let ping = Conversation::IcmpEcho(IcmpEcho {
        client: a_other,
        server: b_web,
        link: link_to(a_other, b_web),
        rtt_us: rng.random_range(300..=2_000),
        count: 3,
        interval_us: 200_000,
    });
    let reverse = tcp_http(
        rng,
        &mut ports,
        b_client,
        endpoint(a_client, 8080),
        link_to(b_client, a_client),
        &[800],
    );
    let mut frames = Vec::new();
    for (conversation_idx, conversation) in
        [dns, web_two, web_one, ping, reverse].iter().enumerate()
    {
        let base_us = conversation_idx as u64 * 150_000;
        frames.extend(frames_at(conversation, base_us, rng)?);
    }
    frames.sort_by_key(|frame| frame.time_us);

    let layer = |src, dst| Encap::new(kind.clone(), v4(src), v4(dst));
    let mut a_to_b = EncapStack::new(vec![layer(VTEP_A, VTEP_B)], rng);
    let mut b_to_a = EncapStack::new(vec![layer(VTEP_B, VTEP_A)], rng);
    let mut timeline = Timeline::new();
    for timed in &frames {
        let stack = if behind_a(timed.frame.flow.src_ip) {
            &mut a_to_b
        } else {
            &mut b_to_a
        };
        let outer = stack.wrap(&timed.frame, timed.time_us)?;
        timeline.push(timed.time_us, outer.to_ethernet_bytes()?);
    }
    Ok(timeline)
}

fn overlay_vxlan(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    overlay(rng, EncapKind::Vxlan { vni: 5000 })
}

/// Geneve VNI 5000 carrying Ethernet, with one critical OVN-style metadata option (class
/// 0x0102, 4 bytes).
fn overlay_geneve(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let options = vec![GeneveOption {
        class: 0x0102,
        option_type: 0x80,
        data: rng.random::<u32>().to_be_bytes().to_vec(),
    }];
    let kind = EncapKind::Geneve {
        vni: 5000,
        payload: GenevePayload::Ethernet,
        options,
    };
    overlay(rng, kind)
}

/// A SPAN-port view of host A: its whole workload natively (26 packets, both directions),
/// and a VXLAN mirror (VNI 100) to 203.0.113.50 that copies only what host A sends (its
/// egress: 15 packets, one direction of each conversation), each copy 35 µs after the
/// original. The direction pattern cannot decide (no conversation shows both directions);
/// the copies of native packets do.
fn mirror_of_native(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    let mut ports = EphemeralPorts::default();
    let frames = workload(rng, &HOST_A, &mut ports, 0)?;
    let mut timeline = Timeline::new();
    for timed in &frames {
        timeline.push(timed.time_us, timed.frame.to_ethernet_bytes()?);
    }
    let sent_by_host: Vec<TimedFrame> = frames
        .iter()
        .filter(|timed| {
            let src = timed.frame.flow.src_ip;
            src == v4(HOST_A.v4) || HOST_A.v6.is_some_and(|host_v6| src == v6(host_v6))
        })
        .cloned()
        .collect();
    let layer = Encap::new(
        EncapKind::Vxlan { vni: 100 },
        v4(MIRROR_SOURCE),
        v4(COLLECTOR),
    );
    let mut stack = EncapStack::new(vec![layer], rng);
    mirror_into(&mut timeline, &mut stack, &sent_by_host)?;
    Ok(timeline)
}

/// A long one-way VXLAN mirror (VNI 100) of host A to 203.0.113.50: 300 packets, the first 40
/// every 25 ms, the other 260 every 225 ms (the last one 59.475 s after the first). Host A
/// looks up a name (2 packets), pings twice (4) and keeps one HTTP connection to 198.51.100.20
/// open for 96 GETs (600-byte bodies, one segment each: 3 + 96 × 3 + 3 = 294 packets). The
/// packets keep the order the conversations give them; only their times are set here, so
/// the 32nd packet (the default decision threshold) is at exactly 0.775 s plus the mirror
/// delay whatever the seed.
fn early_decision(rng: &mut ChaCha8Rng) -> Result<Timeline, GenerateError> {
    const BURST_PACKETS: u64 = 40;
    const BURST_STEP_US: u64 = 25_000;
    const TAIL_STEP_US: u64 = 225_000;
    const EXCHANGES: usize = 96;
    let host = v4(HOST_A.v4);
    let gateway = v4(HOST_A.gateway);
    let web = v4(HOST_A.web_v4);
    let mut ports = EphemeralPorts::default();
    let dns = Conversation::Dns(DnsExchange {
        client: endpoint(host, ports.next(rng)),
        server: endpoint(v4(HOST_A.resolver), 53),
        link: link_to(host, v4(HOST_A.resolver)),
        rtt_us: rng.random_range(300..=1_500),
        query_name: "api.example.com".to_owned(),
        answer: web,
    });
    let keep_alive = tcp_http(
        rng,
        &mut ports,
        host,
        endpoint(web, 80),
        link_to(host, gateway),
        &[600; EXCHANGES],
    );
    let ping = Conversation::IcmpEcho(IcmpEcho {
        client: host,
        server: web,
        link: link_to(host, gateway),
        rtt_us: rng.random_range(8_000..=40_000),
        count: 2,
        interval_us: 1_000_000,
    });
    let mut frames = Vec::new();
    frames.extend(frames_at(&dns, 0, rng)?);
    frames.extend(frames_at(&keep_alive, WORKLOAD_SPACING_US, rng)?);
    frames.extend(frames_at(&ping, 2 * WORKLOAD_SPACING_US, rng)?);
    frames.sort_by_key(|frame| frame.time_us);
    for (pkt_idx, timed) in (0u64..).zip(frames.iter_mut()) {
        timed.time_us = if pkt_idx < BURST_PACKETS {
            pkt_idx * BURST_STEP_US
        } else {
            (BURST_PACKETS - 1) * BURST_STEP_US + (pkt_idx - (BURST_PACKETS - 1)) * TAIL_STEP_US
        };
    }
    let layer = Encap::new(
        EncapKind::Vxlan { vni: 100 },
        v4(MIRROR_SOURCE),
        v4(COLLECTOR),
    );
    let mut stack = EncapStack::new(vec![layer], rng);
    let mut timeline = Timeline::new();
    mirror_into(&mut timeline, &mut stack, &frames)?;
    Ok(timeline)
}
