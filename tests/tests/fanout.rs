//! Issue 14 goal 5, live capture on every core: `mirrorwatch live --capture-threads 2` on a
//! veth pair (two network namespaces per test, as in `live.rs`) reads two sockets of one
//! kernel fanout group steered by the outer IP pair. The events must equal an offline replay
//! of the same file: tunnel sessions whose two directions must meet in one capture thread
//! (an overlay), a mirror whose native packets and copies arrive on the same interface (read
//! by different threads, matched in the workers), collectors, and the flow detectors
//! (extraneous packets, a beacon). Tests that need root, `ip` and `tcpreplay` say so loudly
//! and skip when they are missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mirrorwatch_tests::live::{Link, Sensor, can_run};
use mirrorwatch_tests::{events, run};
use serde_json::Value;

use crate::live::{
    case_dir, last_stats, live_against_replay, of_type, packets_in, read_events, scratch,
};

/// Frames each capture thread read, from the sensor's closing summary.
fn frames_per_thread(stderr: &[String]) -> Vec<u64> {
    stderr
        .iter()
        .find_map(|l| l.split_once("frames read per thread: "))
        .map(|(_, list)| {
            list.split(", ")
                .map(|n| n.trim().parse::<u64>().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `pcap` through a fresh link to a sensor with two capture threads and compares its
/// events with an offline replay under the same configuration. Returns the live events and
/// the frames each thread read.
fn two_threads_match_replay(
    label: &str,
    pcap: &Path,
    config: Option<&Path>,
) -> (Vec<Value>, Vec<u64>) {
    two_threads_match_replay_seeded(label, pcap, config, None)
}

/// As [`two_threads_match_replay`], with the fanout program's seed given (`--fanout-seed`).
fn two_threads_match_replay_seeded(
    label: &str,
    pcap: &Path,
    config: Option<&Path>,
    seed: Option<u32>,
) -> (Vec<Value>, Vec<u64>) {
    let seed_text = seed.map(|s| s.to_string());
    let mut extra = vec!["--capture-threads", "2"];
    if let Some(s) = &seed_text {
        extra.extend(["--fanout-seed", s.as_str()]);
    }
    let (live, stderr, _) = live_against_replay(&format!("fanout-{label}"), pcap, config, &extra);
    let per_thread = frames_per_thread(&stderr);
    let n = packets_in(pcap);
    assert_eq!(per_thread.len(), 2, "{label}: {stderr:#?}");
    assert_eq!(per_thread.iter().sum::<u64>(), n, "{label}: {per_thread:?}");
    (live, per_thread)
}

/// A `pcaps/` case through two capture threads against its replay (skipped, said, when the
/// live tests cannot run here).
fn case_matches_replay(name: &str) {
    if let Some((pcap, config)) = case(name) {
        two_threads_match_replay(name, &pcap, config.as_deref());
    }
}

fn case(label: &str) -> Option<(PathBuf, Option<PathBuf>)> {
    if !can_run(&format!("fanout {label}")) {
        return None;
    }
    let dir = case_dir(label);
    let config = dir.join("config.toml");
    Some((dir.join("input.pcap"), config.exists().then_some(config)))
}

#[test]
fn two_capture_threads_mirror_vxlan_matches_replay() {
    case_matches_replay("mirror-vxlan");
}

/// The SPAN-port view: the host's traffic natively and its copies in a VXLAN stream on the
/// same interface. The copies' outer pair is the mirror's, the originals' their own, so the
/// fanout generally gives them to different threads; the mirror is decided by the copies of
/// native packets alone (`duplicates_native_traffic`, 15 matched), found in the workers.
///
/// The fanout seed is chosen so that every native pair goes to the first thread and the
/// mirror's outer pair to the second: the 26 native packets and their 15 copies are read by
/// different threads, whatever the run.
#[test]
fn two_capture_threads_mirror_of_native_matches_replay() {
    let Some((pcap, config)) = case("mirror-of-native") else {
        return;
    };
    let native: [(&str, &str); 3] = [
        ("10.10.0.5", "10.10.0.2"),
        ("10.10.0.5", "198.51.100.20"),
        ("2001:db8:10::5", "2001:db8:100::20"),
    ];
    let mirror = ("10.10.0.5", "203.0.113.50");
    // The native flows of the replay are the pairs above, no other.
    let flows =
        events(&run(&["replay", "--no-progress", "--flows", pcap.to_str().unwrap()]).stdout);
    let mut seen = 0;
    for f in of_type(&flows, "flow") {
        if f.get("tunnel").is_none() {
            let pair = (
                f["src_ip"].as_str().unwrap(),
                f["dest_ip"].as_str().unwrap(),
            );
            assert!(
                native.contains(&pair) || native.contains(&(pair.1, pair.0)),
                "a native pair the test does not know: {pair:?}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 3, "{seen} native flows");
    let socket = |(a, b): (&str, &str), seed: u32| {
        mirrorwatch::capture::fanout::outer_pair_hash(fold(a), fold(b), seed) % 2
    };
    let seed = (1..10_000u32)
        .find(|&s| native.iter().all(|&p| socket(p, s) == 0) && socket(mirror, s) == 1)
        .expect("a seed that splits the natives from their copies");
    let (live, per_thread) =
        two_threads_match_replay_seeded("mirror-of-native", &pcap, config.as_deref(), Some(seed));
    assert_eq!(per_thread, [26, 15], "natives and copies were not split");
    let tunnels = of_type(&live, "tunnel");
    assert_eq!(tunnels.len(), 1, "{tunnels:#?}");
    let c = &tunnels[0]["classification"];
    assert_eq!(c["reason"], "duplicates_native_traffic", "{c}");
    assert_eq!(c["duplicates_matched"], 15, "{c}");
}

#[test]
fn two_capture_threads_overlay_vxlan_matches_replay() {
    case_matches_replay("overlay-vxlan");
}

#[test]
fn two_capture_threads_collectors_vxlan_matches_replay() {
    case_matches_replay("collectors-vxlan");
}

#[test]
fn two_capture_threads_extraneous_no_handshake_matches_replay() {
    case_matches_replay("extraneous-no-handshake");
}

#[test]
fn two_capture_threads_extraneous_duplicate_matches_replay() {
    case_matches_replay("extraneous-duplicate");
}

/// A connection beacon live: the first 70 s of `beacon-connections` (its 1 s beacon and the
/// start of the slower ones) played ten times faster, so the test takes 7 s. The replay reads
/// the same time-scaled file, and both run with the beacon's time settings scaled alike.
#[test]
fn two_capture_threads_beacon_matches_replay() {
    let Some((pcap, _)) = case("beacon-connections") else {
        return;
    };
    let dir = scratch("fanout-beacon-input");
    let scaled = dir.join("beacon-fast.pcap");
    let kept = scale_pcap(&pcap, &scaled, 70, 10);
    assert!(kept > 500, "only {kept} packets in the first 70 s");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "[beacon]\nmin_span_s = 6\nmin_interval_ms = 50\nburst_gap_ms = 100\n",
    )
    .unwrap();
    let (live, _) = two_threads_match_replay("beacon", &scaled, Some(&config));
    let beacons: Vec<&Value> = of_type(&live, "alert")
        .into_iter()
        .filter(|a| a["detector"] == "beacon")
        .collect();
    assert!(!beacons.is_empty(), "no beacon alert to compare");
    assert!(
        beacons.iter().any(|a| a["src_ip"] == "10.30.0.11"),
        "{beacons:#?}"
    );
}

/// 32 VXLAN overlays, each between its own two VTEPs and carrying one conversation whose
/// directions follow the outer ones: a link is an overlay only if both of its outer
/// directions reach one capture thread. Had the fanout split the two directions of a pair,
/// about half the links would be judged from one direction and differ from the replay.
/// Both threads must have read frames (32 distinct outer pairs).
#[test]
fn two_capture_threads_keep_both_directions_of_every_tunnel_together() {
    if !can_run("two_capture_threads_keep_both_directions_of_every_tunnel_together") {
        return;
    }
    let dir = scratch("fanout-overlays-input");
    let pcap = dir.join("overlays.pcap");
    write_overlays(&pcap, 32);
    let (live, per_thread) = two_threads_match_replay("overlays", &pcap, None);
    let tunnels = of_type(&live, "tunnel");
    assert_eq!(tunnels.len(), 64, "a session per direction of each link");
    for t in &tunnels {
        assert_eq!(t["classification"]["class"], "overlay", "{t}");
    }
    assert!(per_thread.iter().all(|&n| n > 0), "{per_thread:?}");
}

/// The interface deleted under two capture threads: each thread's read fails, the sensor
/// stops with an error naming the interface (exit 1), and the final `stats` event still
/// counts every packet, both sockets' kernel counters included.
#[test]
fn two_capture_threads_stop_together_when_the_interface_goes() {
    if !can_run("two_capture_threads_stop_together_when_the_interface_goes") {
        return;
    }
    let pcap = case_dir("collectors-vxlan").join("input.pcap");
    let config = case_dir("collectors-vxlan").join("config.toml");
    let n = packets_in(&pcap);
    let link = Link::new();
    let out = scratch("fanout-deleted").join("events.json");
    let mut sensor = Sensor::start(
        &link,
        &out,
        &[
            "--capture-threads",
            "2",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    link.send(&pcap, &["--topspeed"]);
    assert!(sensor.wait_packets(&out, n, Duration::from_secs(20)));
    let status = std::process::Command::new("ip")
        .args(["-n", &link.rx_ns, "link", "del", &link.rx_if])
        .status()
        .unwrap();
    assert!(status.success());
    let code = sensor.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(1), "{:#?}", sensor.stderr_lines);
    let prefix = format!("mirrorwatch: error: capturing on {}", link.rx_if);
    assert!(
        sensor.stderr_lines.iter().any(|l| l.starts_with(&prefix)),
        "{:#?}",
        sensor.stderr_lines
    );
    let evs = read_events(&out);
    let stats = &last_stats(&evs)["stats"];
    assert_eq!(stats["packets"], n, "{stats}");
    assert_eq!(stats["capture"]["received"], n, "{stats}");
    assert!(
        !of_type(&evs, "tunnel").is_empty(),
        "the tunnel sessions were written at the end"
    );
}

/// A mirror spread over four collectors (`evasion-collector-spread`): the sessions to .50 and
/// .51 carry one direction of each conversation, and are mirrors only by their sibling
/// collectors' evidence (`spread_over_collectors`). The fanout keeps every collector's
/// tunnel whole, but the four outer pairs differ: when all four reach one thread, the live
/// events equal the replay's.
#[test]
fn two_capture_threads_join_a_spread_mirror_read_by_one_thread() {
    let Some((pcap, config)) = case("evasion-collector-spread") else {
        return;
    };
    let seed = (1..10_000u32)
        .find(|&s| (50..54).all(|c| spread_socket(c, s) == 1))
        .unwrap();
    let (live, per_thread) =
        two_threads_match_replay_seeded("spread-one-thread", &pcap, config.as_deref(), Some(seed));
    assert_eq!(per_thread, [0, 26]);
    let spread = of_type(&live, "tunnel")
        .into_iter()
        .filter(|t| t["classification"]["reason"] == "spread_over_collectors")
        .count();
    assert_eq!(spread, 2);
}

/// The same mirror with the collector .50 read by one thread and the other three by the
/// other: no symmetric fanout hash keeps a source's links to several collectors together (their
/// outer pairs differ), so the source's evidence is split between the two threads' tunnel
/// tables. They meet it in the group exchange (`tunnel/exchange.rs`): .50, judged on its own
/// one-way conversations, is a mirror by .51's evidence read by the other thread, and the live
/// events equal the replay's (before the exchange: .50 `unknown`, 3 alerts where replay has 4).
#[test]
fn two_capture_threads_join_a_spread_mirror_split_between_them() {
    let Some((pcap, config)) = case("evasion-collector-spread") else {
        return;
    };
    let seed = (1..10_000u32)
        .find(|&s| spread_socket(50, s) == 0 && (51..54).all(|c| spread_socket(c, s) == 1))
        .unwrap();
    let (live, per_thread) =
        two_threads_match_replay_seeded("spread-split", &pcap, config.as_deref(), Some(seed));
    assert_eq!(per_thread, [7, 19]);
    let class_of = |collector: &str| {
        of_type(&live, "tunnel")
            .into_iter()
            .find(|t| t["dest_ip"] == collector)
            .map(|t| t["classification"]["class"].as_str().unwrap().to_owned())
    };
    for c in [
        "203.0.113.50",
        "203.0.113.51",
        "203.0.113.52",
        "203.0.113.53",
    ] {
        assert_eq!(class_of(c).as_deref(), Some("mirror"), "{c}");
    }
    let lone = of_type(&live, "tunnel")
        .into_iter()
        .find(|t| t["dest_ip"] == "203.0.113.50")
        .unwrap();
    assert_eq!(
        lone["classification"]["reason"], "spread_over_collectors",
        "{lone:#}"
    );
    assert_eq!(of_type(&live, "alert").len(), 4);
}

/// The socket of the outer pair 10.10.0.5 - 203.0.113.`collector` under `seed`.
fn spread_socket(collector: u8, seed: u32) -> u32 {
    let source = fold("10.10.0.5");
    let collector = fold(&format!("203.0.113.{collector}"));
    mirrorwatch::capture::fanout::outer_pair_hash(source, collector, seed) % 2
}

/// An address folded to 32 bits as the fanout program folds it (IPv6: XOR of its words).
fn fold(addr: &str) -> u32 {
    match addr.parse::<std::net::IpAddr>().unwrap() {
        std::net::IpAddr::V4(a) => u32::from(a),
        std::net::IpAddr::V6(a) => a
            .octets()
            .chunks(4)
            .map(|w| u32::from_be_bytes(w.try_into().unwrap()))
            .fold(0, |x, w| x ^ w),
    }
}

/// A mirror disguised as an overlay, its copies read by one capture thread and the
/// originals by the other (a seed chosen for that): it reaches `decide_after_packets` within
/// 10 ms, before the workers' findings can be back, and must still be decided `mirror` from
/// the copies of native packets, as in replay (sharded capture waits 200 ms of packet time
/// before deciding a link on its packet count).
#[test]
fn two_capture_threads_decide_a_fast_disguised_mirror_from_its_copies() {
    if !can_run("two_capture_threads_decide_a_fast_disguised_mirror_from_its_copies") {
        return;
    }
    let dir = scratch("fanout-disguised-input");
    let pcap = dir.join("disguised.pcap");
    write_disguised_mirror(&pcap);
    let socket = |(a, b): (&str, &str), seed: u32| {
        mirrorwatch::capture::fanout::outer_pair_hash(fold(a), fold(b), seed) % 2
    };
    let seed = (1..10_000u32)
        .find(|&s| {
            socket(("172.17.0.10", "172.17.0.20"), s) == 0
                && socket(("10.2.0.1", "10.2.0.2"), s) == 1
        })
        .unwrap();
    let (live, per_thread) = two_threads_match_replay_seeded("disguised", &pcap, None, Some(seed));
    assert_eq!(per_thread, [60, 60]);
    let tunnels = of_type(&live, "tunnel");
    assert_eq!(tunnels.len(), 2, "{tunnels:#?}");
    for t in &tunnels {
        let c = &t["classification"];
        assert_eq!(c["class"], "mirror", "{t}");
        assert_eq!(c["reason"], "duplicates_native_traffic", "{t}");
    }
}

/// Copies `src` (classic pcap) to `dst` keeping the first `seconds` of packet time, with the
/// time between packets divided by `factor`. Returns the packets kept.
fn scale_pcap(src: &Path, dst: &Path, seconds: u64, factor: u64) -> usize {
    let bytes = std::fs::read(src).unwrap();
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let nanos = match magic {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        other => panic!("{}: not a little-endian pcap ({other:#x})", src.display()),
    };
    let unit: u64 = if nanos { 1 } else { 1_000 };
    let mut out = bytes[..24].to_vec();
    let mut at = 24;
    let mut first = None;
    let mut kept = 0;
    while at + 16 <= bytes.len() {
        let field = |i: usize| u32::from_le_bytes(bytes[at + i..at + i + 4].try_into().unwrap());
        let ts = u64::from(field(0)) * 1_000_000_000 + u64::from(field(4)) * unit;
        let caplen = field(8) as usize;
        let record = &bytes[at..at + 16 + caplen];
        at += 16 + caplen;
        let start = *first.get_or_insert(ts);
        if ts - start > seconds * 1_000_000_000 {
            break;
        }
        let scaled = start + (ts - start) / factor;
        out.extend_from_slice(&((scaled / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(((scaled % 1_000_000_000) / unit) as u32).to_le_bytes());
        out.extend_from_slice(&record[8..]);
        kept += 1;
    }
    std::fs::write(dst, out).unwrap();
    kept
}

/// Writes `links` VXLAN overlays (VTEPs 10.1.i.1 and 10.1.i.2, VNI 5000 + i), each carrying a
/// UDP conversation between 172.16.i.10 and 172.16.i.20 whose requests go one outer way and
/// whose answers the other: three of each, 1 ms apart.
fn write_overlays(path: &Path, links: u8) {
    let mut pcap = PcapWriter::new();
    for round in 0..3u8 {
        for i in 0..links {
            for reply in [false, true] {
                let vtep = |n: u8| [10, 1, i, n];
                let host = |n: u8| [172, 16, i, n];
                let (osrc, odst, isrc, idst, sport, dport) = if reply {
                    (vtep(2), vtep(1), host(20), host(10), 7000, 40_000)
                } else {
                    (vtep(1), vtep(2), host(10), host(20), 40_000, 7000)
                };
                let inner = udp_frame(isrc, idst, sport, dport, &[round; 32], u16::from(round));
                let vni = 5000 + u32::from(i);
                pcap.frame(&vxlan_frame(osrc, odst, 49_152 + u16::from(i), vni, &inner));
                pcap.wait(1_000_000);
            }
        }
    }
    std::fs::write(path, pcap.bytes).unwrap();
}

/// A mirror that looks like an overlay, on a SPAN port that also sees the originals: a VXLAN
/// link between 10.2.0.1 and 10.2.0.2 (VNI 7000) carries a conversation between 172.17.0.10
/// and 172.17.0.20 with each inner direction in the outer direction that an overlay would
/// use, but every inner frame is a copy of a native packet seen 20 us before it. 40 packets
/// in the first 10 ms (the link reaches `decide_after_packets` there), then 20 more 25 ms
/// apart. Replay decides `mirror` (`duplicates_native_traffic`) at the 32nd packet.
fn write_disguised_mirror(path: &Path) {
    let mut pcap = PcapWriter::new();
    for k in 0..60u16 {
        let reply = k % 2 == 1;
        let (osrc, odst, isrc, idst, sport, dport) = if reply {
            (
                [10, 2, 0, 2],
                [10, 2, 0, 1],
                [172, 17, 0, 20],
                [172, 17, 0, 10],
                7000,
                40_000,
            )
        } else {
            (
                [10, 2, 0, 1],
                [10, 2, 0, 2],
                [172, 17, 0, 10],
                [172, 17, 0, 20],
                40_000,
                7000,
            )
        };
        let native = udp_frame(isrc, idst, sport, dport, &[k as u8; 48], k);
        pcap.frame(&native);
        pcap.wait(20_000);
        pcap.frame(&vxlan_frame(osrc, odst, 49_999, 7000, &native));
        pcap.wait(if k < 40 { 230_000 } else { 25_000_000 });
    }
    std::fs::write(path, pcap.bytes).unwrap();
}

/// A nanosecond pcap of Ethernet frames, written in memory.
struct PcapWriter {
    bytes: Vec<u8>,
    ts: u64,
}

impl PcapWriter {
    fn new() -> PcapWriter {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&65_535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        PcapWriter {
            bytes,
            ts: 1_700_000_000 * 1_000_000_000,
        }
    }

    fn frame(&mut self, frame: &[u8]) {
        let b = &mut self.bytes;
        b.extend_from_slice(&((self.ts / 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&((self.ts % 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(frame);
    }

    fn wait(&mut self, nanos: u64) {
        self.ts += nanos;
    }
}

/// An Ethernet frame of one UDP datagram over IPv4.
fn udp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
    id: u16,
) -> Vec<u8> {
    let mut f = ethernet(0x0800);
    f.extend_from_slice(&ipv4_udp(src, dst, sport, dport, payload, id));
    f
}

/// `inner` (an Ethernet frame) in VXLAN from `osrc:sport` to `odst:4789`.
fn vxlan_frame(osrc: [u8; 4], odst: [u8; 4], sport: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut vxlan = vec![0x08, 0, 0, 0];
    vxlan.extend_from_slice(&vni.to_be_bytes()[1..]);
    vxlan.push(0);
    vxlan.extend_from_slice(inner);
    udp_frame(osrc, odst, sport, 4789, &vxlan, 1)
}

fn ethernet(ethertype: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// An IPv4 header (with its checksum) and a UDP header (checksum 0, allowed over IPv4).
fn ipv4_udp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
    id: u16,
) -> Vec<u8> {
    let total = (20 + 8 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let sum = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(payload);
    h
}
