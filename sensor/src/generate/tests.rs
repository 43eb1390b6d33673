//! Tests of the generator: determinism, committed fixtures, header bytes, TCP sanity, and
//! tshark as an independent oracle.

use std::path::{Path, PathBuf};
use std::process::Command;

use etherparse::{SlicedPacket, TransportSlice};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::conversation::{Endpoint, TcpSession, dns_message, http_exchange};
use super::encap::{
    Erspan3Fields, ErspanPlatform, GeneveOption, GreFields, erspan2_header, erspan3_header,
    geneve_header, gre_header, ppp_header, pptp_gre_header, vxlan_header,
};
use super::frame::{Frame, Link, LinkTags};
use super::timeline::PcapRecord;
use super::{GenerateError, generate, scenarios};
use crate::config::Config;

/// Scenarios whose packets are all well formed and complete, so tshark must report no errors.
/// Not the `beacon-*` scenarios: their payloads are random bytes on well-known ports (HTTP,
/// NTP), which tshark's application dissectors call malformed; their IP, TCP and
/// UDP layers are checked by the case runner like every other case.
const WELL_FORMED: &[&str] = &[
    "plain-sessions",
    "mirror-vxlan",
    "mirror-geneve",
    "mirror-gre",
    "mirror-gre-teb",
    "mirror-nvgre",
    "mirror-erspan1",
    "mirror-erspan2",
    "mirror-erspan3",
    "mirror-gre-udp",
    "aws-gwlb-double",
    "gcp-nsi-geneve",
    "nested-too-deep",
    "collectors-vxlan",
    "collectors-geneve",
    "collectors-gre-teb",
    "collectors-nvgre",
    "collectors-erspan1",
    "collectors-erspan2",
    "collectors-erspan3",
    "inventory-bounds",
    "vxlan-nonstandard-port",
    "overlay-vxlan",
    "overlay-geneve",
    "mirror-of-native",
    "early-decision",
    "extraneous-ack-unseen-data",
    "extraneous-after-close",
    "extraneous-clean",
    "extraneous-duplicate",
    "extraneous-midstream-start",
    "extraneous-no-handshake",
    "extraneous-orphan-response",
    "extraneous-out-of-window",
    "extraneous-unsolicited-synack",
];

/// A path in the temporary directory that no other test uses.
fn temp_pcap(test: &str, name: &str, seed: u64) -> PathBuf {
    std::env::temp_dir().join(format!(
        "mirrorwatch-generate-{}-{test}-{name}-{seed}.pcap",
        std::process::id()
    ))
}

/// Generates `name` with `seed` and returns the file's bytes and the packet count.
fn generate_bytes(test: &str, name: &str, seed: u64) -> (Vec<u8>, u64) {
    let path = temp_pcap(test, name, seed);
    let summary = generate(name, seed, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    // Control-plane scenarios also write their records beside the capture.
    let _ = std::fs::remove_dir_all(path.with_extension("audit"));
    let _ = std::fs::remove_file(path.with_extension("assets.csv"));
    let _ = std::fs::remove_file(path.with_extension("changes.csv"));
    (bytes, summary.packets)
}

fn pcaps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps")
}

/// The `seed` recorded in `pcaps/<name>/case.toml`.
fn recorded_seed(name: &str) -> u64 {
    let case_path = pcaps_dir().join(name).join("case.toml");
    let text = std::fs::read_to_string(&case_path)
        .unwrap_or_else(|err| panic!("{}: {err}", case_path.display()));
    let case: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        case["scenario"].as_str(),
        Some(name),
        "{}",
        case_path.display()
    );
    u64::try_from(case["seed"].as_integer().unwrap()).unwrap()
}

#[test]
fn same_seed_gives_identical_bytes() {
    for scenario in scenarios() {
        let (first, first_packets) = generate_bytes("same-seed-a", scenario.name, 42);
        let (second, second_packets) = generate_bytes("same-seed-b", scenario.name, 42);
        assert!(
            first == second,
            "{} differs between two runs",
            scenario.name
        );
        assert_eq!(first_packets, second_packets);
        assert!(first_packets > 0, "{} wrote no packets", scenario.name);
    }
}

#[test]
fn different_seed_changes_bytes_but_not_packet_count() {
    for scenario in scenarios() {
        let (first, first_packets) = generate_bytes("other-seed-a", scenario.name, 42);
        let (second, second_packets) = generate_bytes("other-seed-b", scenario.name, 43);
        assert!(first != second, "{} ignores its seed", scenario.name);
        // The shape of a scenario is fixed; the seed only picks values.
        assert_eq!(first_packets, second_packets, "{}", scenario.name);
    }
}

#[test]
fn rejects_unknown_scenario() {
    let path = temp_pcap("unknown", "no-such-scenario", 1);
    let err = generate("no-such-scenario", 1, &path).unwrap_err();
    assert!(
        matches!(&err, GenerateError::UnknownScenario { name } if name == "no-such-scenario"),
        "{err:?}"
    );
    assert!(!path.exists());
}

#[test]
fn rejects_unwritable_output() {
    let path = std::env::temp_dir().join("mirrorwatch-no-such-directory/sub/out.pcap");
    let err = generate("mirror-vxlan", 1, &path).unwrap_err();
    assert!(
        matches!(&err, GenerateError::Write { path: p, .. } if *p == path),
        "{err:?}"
    );
}

#[test]
fn every_scenario_has_a_case_folder_and_every_folder_a_scenario() {
    let dir = pcaps_dir();
    for scenario in scenarios() {
        for file in ["input.pcap", "README.md", "checks.toml", "case.toml"] {
            let path = dir.join(scenario.name).join(file);
            assert!(path.is_file(), "missing {}", path.display());
        }
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().into_string().unwrap();
            assert!(
                scenarios().any(|scenario| scenario.name == name),
                "pcaps/{name} has no scenario"
            );
        }
    }
}

/// A case's optional `config.toml` is one the sensor accepts (the case runner passes it with
/// `--config`), and no two cases share a seed.
#[test]
fn case_configs_load_and_seeds_are_distinct() {
    let mut seeds = Vec::new();
    for scenario in scenarios() {
        let config_path = pcaps_dir().join(scenario.name).join("config.toml");
        if config_path.exists() {
            if let Err(err) = Config::load(&config_path) {
                panic!("{err}");
            }
        }
        let seed = recorded_seed(scenario.name);
        assert!(
            !seeds.contains(&seed),
            "{}: seed {seed} is used twice",
            scenario.name
        );
        seeds.push(seed);
    }
}

#[test]
fn committed_fixtures_match_the_generator() {
    for scenario in scenarios() {
        let seed = recorded_seed(scenario.name);
        let committed_path = pcaps_dir().join(scenario.name).join("input.pcap");
        let committed = std::fs::read(&committed_path).unwrap();
        let (fresh, _) = generate_bytes("fixture", scenario.name, seed);
        assert!(
            committed == fresh,
            "{} differs from `mirrorwatch generate {} --seed {seed}`; run pcaps/regenerate.sh \
             and update checks.toml",
            committed_path.display(),
            scenario.name
        );
    }
}

#[test]
fn checks_files_are_well_formed_and_count_the_packets_written() {
    for scenario in scenarios() {
        let checks_path = pcaps_dir().join(scenario.name).join("checks.toml");
        let text = std::fs::read_to_string(&checks_path).unwrap();
        let checks: toml::Table =
            toml::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", checks_path.display()));
        let (_, packets) = generate_bytes("checks", scenario.name, recorded_seed(scenario.name));
        let stats = checks["stats"].as_table().unwrap();
        assert_eq!(
            stats["packets"].as_integer(),
            Some(i64::try_from(packets).unwrap()),
            "{}: [stats] packets",
            checks_path.display()
        );
        for check in checks["event"].as_array().unwrap() {
            let check = check.as_table().unwrap();
            assert!(check["count"].as_integer().unwrap() >= 0);
            let matcher = check["match"].as_table().unwrap();
            assert!(
                matcher.contains_key("event_type"),
                "{}",
                checks_path.display()
            );
            for value in matcher.values() {
                assert!(
                    value.is_str() || value.is_integer() || value.is_bool(),
                    "{}: match values are strings, integers or booleans",
                    checks_path.display()
                );
            }
        }
    }
}

#[test]
fn tcp_session_has_consistent_sequence_numbers() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let session = TcpSession {
        client: Endpoint {
            ip: "192.168.1.10".parse().unwrap(),
            port: 40_000,
        },
        server: Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port: 80,
        },
        link: Link::default(),
        rtt_us: 10_000,
        mss: 1460,
        exchanges: vec![
            http_exchange(&mut rng, "example.com", 100),
            http_exchange(&mut rng, "example.com", 5000),
        ],
    };
    let frames = session.frames(0, &mut rng).unwrap();
    let (client_packets, server_packets) = session.packet_counts();
    assert_eq!(frames.len() as u64, client_packets + server_packets);

    // next_seq[0] is the client's next sequence number, next_seq[1] the server's.
    let mut next_seq: [Option<u32>; 2] = [None, None];
    let mut last_time_us = 0;
    for (pkt_idx, timed) in frames.iter().enumerate() {
        assert!(
            timed.time_us >= last_time_us,
            "packet {pkt_idx} goes back in time"
        );
        last_time_us = timed.time_us;
        let sliced = SlicedPacket::from_ip(&timed.frame.network_bytes).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("packet {pkt_idx} is not TCP");
        };
        let side = usize::from(tcp.source_port() == 80);
        if let Some(expected) = next_seq[side] {
            assert_eq!(tcp.sequence_number(), expected, "seq of packet {pkt_idx}");
        }
        if tcp.ack() {
            assert_eq!(
                Some(tcp.acknowledgment_number()),
                next_seq[1 - side],
                "ack of {pkt_idx}"
            );
        } else {
            assert!(pkt_idx == 0 && tcp.syn(), "only the first SYN lacks ACK");
        }
        let consumed = tcp.payload().len() as u32 + u32::from(tcp.syn()) + u32::from(tcp.fin());
        next_seq[side] = Some(tcp.sequence_number().wrapping_add(consumed));
        assert!(tcp.payload().len() <= 1460);
    }
}

#[test]
fn writes_vxlan_header() {
    // flags: I | reserved (3 bytes) | VNI 0x123456 | reserved.
    assert_eq!(
        vxlan_header(0x12_3456).unwrap(),
        [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]
    );
    assert!(matches!(
        vxlan_header(1 << 24),
        Err(GenerateError::Build { .. })
    ));
}

#[test]
fn writes_geneve_header_with_options() {
    let options = [
        GeneveOption {
            class: 0x0102,
            option_type: 0x80,
            data: vec![1, 2, 3, 4],
        },
        GeneveOption {
            class: 0x0132,
            option_type: 0x01,
            data: vec![0; 8],
        },
    ];
    let header = geneve_header(200, 0x6558, &options).unwrap();
    #[rustfmt::skip]
    let expected = [
        0x05,             // version 0, options 5 words (8 + 12 bytes)
        0x40,             // C: a critical option is present
        0x65, 0x58,       // protocol type: Ethernet
        0x00, 0x00, 0xC8, // VNI 200
        0x00,             // reserved
        0x01, 0x02, 0x80, 0x01, 1, 2, 3, 4,       // class 0x0102, type 0x80, 1 word
        0x01, 0x32, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, // class 0x0132, type 1, 2 words
    ];
    assert_eq!(header, expected);
    let odd_option = GeneveOption {
        class: 1,
        option_type: 1,
        data: vec![0; 3],
    };
    assert!(geneve_header(0, 0x6558, &[odd_option]).is_err());
}

#[test]
fn writes_gre_header_with_all_optional_fields() {
    let fields = GreFields {
        checksum: true,
        key: Some(0x0000_012C),
        sequence: Some(7),
        protocol_type: 0x0800,
    };
    let payload = [0x45, 0x00, 0x00, 0x14];
    let header = gre_header(&fields, &payload);
    assert_eq!(&header[..4], &[0xB0, 0x00, 0x08, 0x00]); // C K S, version 0, IPv4
    assert_eq!(&header[6..8], &[0, 0]); // reserved1
    assert_eq!(&header[8..12], &[0, 0, 0x01, 0x2C]); // key 300
    assert_eq!(&header[12..16], &[0, 0, 0, 7]); // sequence 7
    // A correct checksum makes the one's-complement sum over header and payload 0xFFFF.
    let mut sum = 0u32;
    for pair in header
        .iter()
        .chain(payload.iter())
        .collect::<Vec<_>>()
        .chunks(2)
    {
        sum += u32::from(u16::from_be_bytes([*pair[0], *pair[1]]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    assert_eq!(sum, 0xFFFF);
    assert_eq!(
        gre_header(&GreFields::new(0x6558, None), &[]),
        [0, 0, 0x65, 0x58]
    );
}

#[test]
fn writes_erspan_headers() {
    // Version 1, VLAN 0, En 0, session 101; index 3.
    assert_eq!(
        erspan2_header(101, 0, 3).unwrap(),
        [0x10, 0x00, 0x00, 0x65, 0, 0, 0, 3]
    );
    // VLAN 10 kept in the frame: En 3.
    assert_eq!(
        erspan2_header(101, 10, 0).unwrap()[..4],
        [0x10, 0x0A, 0x18, 0x65]
    );
    assert!(erspan2_header(1024, 0, 0).is_err());

    let fields = Erspan3Fields {
        session_id: 301,
        vlan: 0,
        timestamp: 0x0102_0304,
        hardware_id: 5,
        egress: true,
        platform: Some(ErspanPlatform {
            platform_id: 3,
            info: 0x12_0034,
        }),
    };
    #[rustfmt::skip]
    let expected = [
        0x20, 0x00, 0x01, 0x2D, // version 2, VLAN 0, session 301
        0x01, 0x02, 0x03, 0x04, // timestamp
        0x00, 0x00,             // SGT
        0x00, 0x59,             // P 0, FT 0, HW ID 5, D 1, Gra 00, O 1
        0x0C, 0x00, 0x00, 0x00, 0x00, 0x12, 0x00, 0x34, // platform id 3, info
    ];
    assert_eq!(erspan3_header(&fields).unwrap(), expected);
}

#[test]
fn writes_pptp_gre_and_ppp_headers() {
    // K and S, version 1, protocol PPP, payload length 24, call id 0x4242, sequence 9.
    assert_eq!(
        pptp_gre_header(0x4242, 24, 9).unwrap(),
        [0x30, 0x01, 0x88, 0x0B, 0x00, 0x18, 0x42, 0x42, 0, 0, 0, 9]
    );
    assert_eq!(ppp_header(0x0800).unwrap(), [0xFF, 0x03, 0x00, 0x21]);
    assert_eq!(ppp_header(0x86DD).unwrap(), [0xFF, 0x03, 0x00, 0x57]);
    assert!(ppp_header(0x0806).is_err());
}

#[test]
fn writes_dns_messages() {
    let query = dns_message(0xBEEF, "a.example", None).unwrap();
    #[rustfmt::skip]
    let expected_query = [
        0xBE, 0xEF, 0x01, 0x00, // id, flags RD
        0, 1, 0, 0, 0, 0, 0, 0, // one question
        1, b'a', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0,
        0, 1, 0, 1,             // A, IN
    ];
    assert_eq!(query, expected_query);
    let response = dns_message(0xBEEF, "a.example", Some("2001:db8::1".parse().unwrap())).unwrap();
    assert_eq!(&response[2..8], &[0x81, 0x80, 0, 1, 0, 1]);
    assert_eq!(response.len(), expected_query.len() + 12 + 16);
    assert!(dns_message(1, "bad..name", None).is_err());
}

#[test]
fn writes_vlan_qinq_and_mpls_tags() {
    let frame = |tags| Frame {
        link: Link {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            tags,
        },
        ether_type: 0x0800,
        network_bytes: vec![0x45],
        flow: super::frame::FlowTuple {
            src_ip: "10.0.0.1".parse().unwrap(),
            dst_ip: "10.0.0.2".parse().unwrap(),
            src_port: 1,
            dst_port: 2,
            ip_proto: 6,
        },
    };
    let vlan = frame(LinkTags::Vlan { vlan_id: 100 })
        .to_ethernet_bytes()
        .unwrap();
    assert_eq!(&vlan[12..], &[0x81, 0x00, 0x00, 0x64, 0x08, 0x00, 0x45]);
    let qinq = frame(LinkTags::QinQ {
        outer_vlan_id: 200,
        inner_vlan_id: 300,
    })
    .to_ethernet_bytes()
    .unwrap();
    assert_eq!(
        &qinq[12..],
        &[
            0x88, 0xA8, 0x00, 0xC8, 0x81, 0x00, 0x01, 0x2C, 0x08, 0x00, 0x45
        ]
    );
    let mpls = frame(LinkTags::Mpls {
        labels: vec![16_001, 16_002],
    })
    .to_ethernet_bytes()
    .unwrap();
    // 0x8847; label 16001, TC 0, S 0, TTL 64; label 16002, S 1, TTL 64.
    assert_eq!(
        &mpls[12..],
        &[
            0x88, 0x47, 0x03, 0xE8, 0x10, 0x40, 0x03, 0xE8, 0x21, 0x40, 0x45
        ]
    );
}

/// Runs tshark on `file` with `args`; `None` (and a loud message) when tshark is missing.
fn tshark(file: &Path, args: &[&str]) -> Option<String> {
    match Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
    {
        Ok(output) => {
            assert!(
                output.status.success(),
                "tshark failed on {}",
                file.display()
            );
            Some(String::from_utf8(output.stdout).unwrap())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "SKIPPED: tshark is not installed; the generator's oracle checks did not run"
            );
            None
        }
        Err(err) => panic!("running tshark: {err}"),
    }
}

/// tshark reads the same tunnel ids we wrote, on every packet.
#[test]
fn tshark_reads_the_tunnel_ids() {
    for (name, field, expected) in [
        ("mirror-vxlan", "vxlan.vni", "100"),
        ("mirror-erspan2", "erspan.spanid", "101"),
    ] {
        let path = temp_pcap("tshark-ids", name, 5);
        let summary = generate(name, 5, &path).unwrap();
        let Some(output) = tshark(&path, &["-T", "fields", "-e", field]) else {
            return;
        };
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len() as u64, summary.packets, "{name}");
        for line in lines {
            assert_eq!(line, expected, "{name}: {field}");
        }
    }
}

/// tshark finds nothing malformed (no Error-level expert info) in the well-formed scenarios.
#[test]
fn tshark_finds_no_errors_in_well_formed_scenarios() {
    for name in WELL_FORMED {
        let path = temp_pcap("tshark-expert", name, 5);
        generate(name, 5, &path).unwrap();
        let Some(output) = tshark(&path, &["-q", "-z", "expert"]) else {
            return;
        };
        std::fs::remove_file(&path).unwrap();
        assert!(
            !output.contains("Errors ("),
            "{name}: tshark reports errors:\n{output}"
        );
        assert!(
            !output.contains("Malformed"),
            "{name}: tshark reports:\n{output}"
        );
    }
}

/// The records scenario `name` writes with `seed`, built in memory.
fn scenario_records(name: &str, seed: u64) -> Vec<PcapRecord> {
    let build = super::builder(name).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    build(&mut rng).unwrap().into_records()
}

/// Seeds the shape tests try: the recorded one and two others.
fn shape_seeds(name: &str) -> [u64; 3] {
    [recorded_seed(name), 1, 2]
}

/// What the structural tests need from one captured frame: the outer IP endpoints, the UDP
/// destination port (0 for anything else) and, for UDP to a VXLAN or Geneve port (or 31337),
/// the inner Ethernet frame.
struct Outer<'a> {
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    udp_dst_port: u16,
    ip_bytes: &'a [u8],
    inner_ethernet: Option<&'a [u8]>,
}

fn outer(frame: &[u8]) -> Outer<'_> {
    let sliced = SlicedPacket::from_ethernet(frame).unwrap();
    let (src, dst) = match &sliced.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => (
            std::net::IpAddr::V4(ip.header().source_addr()),
            std::net::IpAddr::V4(ip.header().destination_addr()),
        ),
        Some(etherparse::NetSlice::Ipv6(ip)) => (
            std::net::IpAddr::V6(ip.header().source_addr()),
            std::net::IpAddr::V6(ip.header().destination_addr()),
        ),
        _ => panic!("frame without IP"),
    };
    // Untagged Ethernet: the IP packet starts after 14 bytes.
    let ip_bytes = &frame[14..];
    let (udp_dst_port, inner_ethernet) = match &sliced.transport {
        Some(TransportSlice::Udp(udp)) => {
            let port = udp.destination_port();
            let inner = match port {
                4789 | 31_337 => Some(&udp.payload()[8..]),
                6081 => {
                    let options_len = usize::from(udp.payload()[0] & 0x3F) * 4;
                    Some(&udp.payload()[8 + options_len..])
                }
                _ => None,
            };
            (port, inner)
        }
        _ => (0, None),
    };
    Outer {
        src,
        dst,
        udp_dst_port,
        ip_bytes,
        inner_ethernet,
    }
}

/// The source address of an Ethernet frame's IP packet.
fn ip_source(ethernet: &[u8]) -> std::net::IpAddr {
    outer(ethernet).src
}

fn ip(text: &str) -> std::net::IpAddr {
    text.parse().unwrap()
}

/// `mirror-of-native`: every mirror copy carries byte for byte the IP packet of a native
/// packet sent by host A 35 µs earlier, each native packet is copied at most once, and no
/// conversation has both directions inside the mirror (so only the copies can decide).
#[test]
fn mirror_of_native_copies_one_direction_of_native_packets() {
    for seed in shape_seeds("mirror-of-native") {
        let records = scenario_records("mirror-of-native", seed);
        let (copies, natives): (Vec<_>, Vec<_>) = records
            .iter()
            .partition(|record| outer(&record.captured).udp_dst_port == 4789);
        assert_eq!((natives.len(), copies.len()), (26, 15), "seed {seed}");
        let mut copied = Vec::new();
        let mut inner_flows = Vec::new();
        for copy in &copies {
            let tunnel = outer(&copy.captured);
            assert_eq!(
                (tunnel.src, tunnel.dst),
                (ip("10.10.0.5"), ip("203.0.113.50"))
            );
            let inner = tunnel.inner_ethernet.unwrap();
            let inner_ip = &inner[14..];
            let original = natives
                .iter()
                .position(|native| outer(&native.captured).ip_bytes == inner_ip)
                .unwrap_or_else(|| panic!("seed {seed}: a copy of no native packet"));
            assert_eq!(copy.time_us, natives[original].time_us + 35, "seed {seed}");
            assert!(!copied.contains(&original), "seed {seed}: copied twice");
            copied.push(original);
            let sender = ip_source(inner);
            assert!(
                sender == ip("10.10.0.5") || sender == ip("2001:db8:10::5"),
                "seed {seed}: the mirror copies only what host A sends"
            );
            let sliced = SlicedPacket::from_ethernet(inner).unwrap();
            let ports = match &sliced.transport {
                Some(TransportSlice::Tcp(tcp)) => (tcp.source_port(), tcp.destination_port()),
                Some(TransportSlice::Udp(udp)) => (udp.source_port(), udp.destination_port()),
                _ => (0, 0),
            };
            inner_flows.push((sender, ports));
        }
        // One direction only: no flow appears with its ports swapped.
        for (sender, (src_port, dst_port)) in &inner_flows {
            assert!(
                !inner_flows.contains(&(*sender, (*dst_port, *src_port))) || src_port == dst_port,
                "seed {seed}: both directions of a conversation inside the mirror"
            );
        }
    }
}

/// `early-decision`: 300 packets; the 32nd (the default decision threshold) at exactly
/// 0.775035 s and the last at 59.475035 s whatever the seed, and the first two carry both
/// directions of one conversation (so the link is a mirror by the 32nd packet).
#[test]
fn early_decision_has_fixed_packet_times() {
    for seed in shape_seeds("early-decision") {
        let records = scenario_records("early-decision", seed);
        assert_eq!(records.len(), 300, "seed {seed}");
        assert_eq!(records[0].time_us, 35);
        assert_eq!(records[31].time_us, 775_035);
        assert_eq!(records[299].time_us, 59_475_035);
        for record in &records {
            let tunnel = outer(&record.captured);
            assert_eq!(
                (tunnel.src, tunnel.dst, tunnel.udp_dst_port),
                (ip("10.10.0.5"), ip("203.0.113.50"), 4789)
            );
        }
        let first_two: Vec<_> = records[..2]
            .iter()
            .map(|record| ip_source(outer(&record.captured).inner_ethernet.unwrap()))
            .collect();
        assert_eq!(first_two, [ip("10.10.0.5"), ip("10.10.0.2")], "seed {seed}");
    }
}

/// `overlay-*`: every inner frame travels from its sender's VTEP to the other one; 21
/// packets A to B and 18 B to A, more than the default decision threshold of 32 in all.
#[test]
fn overlays_send_inner_frames_from_the_senders_vtep() {
    for name in ["overlay-vxlan", "overlay-geneve"] {
        for seed in shape_seeds(name) {
            let records = scenario_records(name, seed);
            let mut a_to_b = 0;
            for record in &records {
                let tunnel = outer(&record.captured);
                let sender = ip_source(tunnel.inner_ethernet.unwrap());
                let behind_a = matches!(sender, std::net::IpAddr::V4(v4) if v4.octets()[2] == 50);
                let expected = if behind_a {
                    (ip("10.0.0.11"), ip("10.0.0.12"))
                } else {
                    (ip("10.0.0.12"), ip("10.0.0.11"))
                };
                assert_eq!((tunnel.src, tunnel.dst), expected, "{name} seed {seed}");
                a_to_b += usize::from(behind_a);
            }
            assert_eq!(
                (a_to_b, records.len() - a_to_b),
                (21, 18),
                "{name} seed {seed}"
            );
        }
    }
}

/// The `collectors-*` cases: three sessions to 203.0.113.50, 10.50.0.9 and 10.60.0.20 from
/// three sources, and the case's `config.toml` approves the last collector only; the first is
/// outside the home networks, the other two inside.
#[test]
fn collector_cases_match_their_configuration() {
    for name in scenarios()
        .map(|scenario| scenario.name)
        .filter(|name| name.starts_with("collectors-"))
    {
        let config = Config::load(&pcaps_dir().join(name).join("config.toml")).unwrap();
        let approved = |collector: std::net::IpAddr| {
            config
                .mirror
                .approved_collectors
                .iter()
                .any(|net| net.contains(&collector))
        };
        let mut sessions: Vec<(std::net::IpAddr, std::net::IpAddr)> =
            scenario_records(name, recorded_seed(name))
                .iter()
                .map(|record| {
                    let tunnel = outer(&record.captured);
                    (tunnel.src, tunnel.dst)
                })
                .collect();
        sessions.sort();
        sessions.dedup();
        let expected = [
            ("10.10.0.5", "203.0.113.50", false, false),
            ("10.10.0.6", "10.50.0.9", true, false),
            ("10.10.0.7", "10.60.0.20", true, true),
        ];
        assert_eq!(sessions.len(), expected.len(), "{name}");
        for (src, dst, home, is_approved) in expected {
            assert!(
                sessions.contains(&(ip(src), ip(dst))),
                "{name}: {src} -> {dst}"
            );
            assert_eq!(config.is_home(ip(dst)), home, "{name}: {dst}");
            assert_eq!(approved(ip(dst)), is_approved, "{name}: {dst}");
        }
    }
}

/// `inventory-bounds`: one inventory entry for 10.70.0.10 that lists the sources of the
/// allowed and the wrong-tunnel sessions but not 10.20.0.5, only VXLAN, only VNI 100.
#[test]
fn inventory_bounds_configuration_bounds_the_collector() {
    let config = Config::load(&pcaps_dir().join("inventory-bounds/config.toml")).unwrap();
    assert!(config.mirror.approved_collectors.is_empty());
    let [entry] = config.mirror.inventory.as_slice() else {
        panic!("one [[mirror.inventory]] entry");
    };
    assert!(entry.collector.contains(&ip("10.70.0.10")));
    let listed = |source: &str| entry.sources.iter().any(|net| net.contains(&ip(source)));
    assert!(listed("10.10.0.5") && listed("10.10.0.6") && listed("10.10.0.7"));
    assert!(!listed("10.20.0.5"));
    assert_eq!(entry.types, ["vxlan"]);
    assert_eq!(entry.tunnel_ids, [100]);
}

/// tshark, told that UDP 31337 is VXLAN, reads VNI 100 on exactly the 26 mirror packets of
/// `vxlan-nonstandard-port`; the random datagrams on port 9000 are plain UDP to it.
#[test]
fn tshark_reads_vxlan_on_the_nonstandard_port() {
    let path = temp_pcap("tshark-31337", "vxlan-nonstandard-port", 5);
    generate("vxlan-nonstandard-port", 5, &path).unwrap();
    let Some(output) = tshark(
        &path,
        &[
            "-d",
            "udp.port==31337,vxlan",
            "-T",
            "fields",
            "-e",
            "vxlan.vni",
        ],
    ) else {
        return;
    };
    std::fs::remove_file(&path).unwrap();
    let vnis: Vec<&str> = output.lines().filter(|line| !line.is_empty()).collect();
    assert_eq!(vnis.len(), 26);
    assert!(vnis.iter().all(|vni| *vni == "100"));
}
