//! Issue 16 item 2: mirrors the Linux kernel makes. A "victim" namespace talks to a peer over
//! one veth pair; `tc ... action mirred egress mirror dev TUN` copies every frame leaving and
//! entering the victim's interface into a tunnel device TUN whose remote is a collector
//! address behind a second veth pair, where `mirrorwatch live` captures:
//!
//! ```text
//!  peer ns            victim ns                                    collector ns
//!  peer_if ──veth── victim_if ─(clsact, mirred both ways)─► TUN ─► under_if ──veth── capture_if
//!  10.77.1.2          10.77.1.1                                    10.77.2.1         (no address)
//!  fd77:1::2          fd77:1::1                                    fd77:2::1    collector 10.77.2.2
//! ```
//!
//! For every device kind a stock kernel offers (`gretap` with a key alone and with sequence
//! numbers, `ip6gretap`, `erspan` in versions 0, 1 and 2, `ip6erspan`, `vxlan`, `geneve`,
//! `ipip`, `sit`, `ip6tnl`), the victim opens a TCP exchange and a UDP exchange to the peer over every IP family the device carries, and
//! the sensor must write a `tunnel` record of the right type and id classified `mirror`, a
//! `mirror_stream` alert naming the collector, and inner `flow` records on that tunnel equal
//! to the conversations the test made.
//!
//! The collector address is not configured anywhere: the underlay veth has ARP off (the
//! kernel sends to it without resolving), so the capture end receives the tunnel packets and
//! answers nothing, as a passive collector would; the sensor captures promiscuously.
//!
//! `ipip`, `sit` and `ip6tnl` are layer-3 devices. Mirred to such a device strips the mirrored
//! frame's Ethernet header (act_mirred pulls the MAC header when the target device is not a
//! "MAC header xmit" device, `dev_is_mac_header_xmit` in `include/linux/if_arp.h`), and the
//! device then sends what its mode accepts: `ipip` only IPv4, `sit` (mode ip6ip) only IPv6,
//! `ip6tnl mode any` both; the rest (ARP, the other family) is counted as a transmit error of
//! the tunnel device and dropped. The test prints those counters for the layer-3 kinds.
//!
//! A kind the running kernel lacks (`ip link add` refused, e.g. a kernel built without
//! `CONFIG_NET_IPGRE`) is skipped with the kernel's reason printed; the test fails when no
//! kind at all could be tested on a machine that has root and `ip`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mirrorwatch_tests::events;
use mirrorwatch_tests::live::{Link, Sensor, in_namespace, spawn_in_namespace};
use serde_json::Value;

/// An inner IP family a tunnel device carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn victim(self) -> IpAddr {
        match self {
            Family::V4 => "10.77.1.1".parse().unwrap(),
            Family::V6 => "fd77:1::1".parse().unwrap(),
        }
    }

    fn peer(self) -> IpAddr {
        match self {
            Family::V4 => "10.77.1.2".parse().unwrap(),
            Family::V6 => "fd77:1::2".parse().unwrap(),
        }
    }

    fn prefix(self) -> u8 {
        match self {
            Family::V4 => 24,
            Family::V6 => 64,
        }
    }
}

/// The underlay family of a tunnel device (the outer header).
const UNDER_V4: (&str, &str) = ("10.77.2.1", "10.77.2.2");
const UNDER_V6: (&str, &str) = ("fd77:2::1", "fd77:2::2");

/// One kind of tunnel device to mirror into.
struct Kind {
    /// Name printed in the report.
    name: &'static str,
    /// `ip link add TUN` arguments after the name; `{L}`/`{R}` become the local and remote
    /// underlay addresses, `{DEV}` the underlay interface.
    args: &'static [&'static str],
    /// Outer header over IPv6.
    outer_v6: bool,
    /// A layer-3 device (mirred strips the Ethernet header).
    l3: bool,
    /// `tunnel.type` the sensor must write.
    tunnel_type: &'static str,
    /// The inner families the device carries, each with the `tunnel.id` the sensor must write.
    carries: &'static [(Family, u64)],
}

/// Both inner families under one tunnel id (the layer-2 devices carry whole frames).
const fn both(id: u64) -> [(Family, u64); 2] {
    [(Family::V4, id), (Family::V6, id)]
}

static KINDS: &[Kind] = &[
    // A gretap with a key and neither `seq` nor `csum` writes NVGRE's bytes exactly (RFC 7637:
    // K set, C and S clear, 0x6558): the sensor cannot tell them apart and reads the key as
    // VSID << 8 | flow id, so key 2816 is NVGRE VSID 11.
    Kind {
        name: "gretap (key, NVGRE's bytes)",
        args: &[
            "type", "gretap", "local", "{L}", "remote", "{R}", "key", "2816",
        ],
        outer_v6: false,
        l3: false,
        tunnel_type: "nvgre",
        carries: &both(11),
    },
    // With sequence numbers it cannot be NVGRE: a GRE-TEB key.
    Kind {
        name: "gretap (seq key)",
        args: &[
            "type", "gretap", "local", "{L}", "remote", "{R}", "seq", "key", "11",
        ],
        outer_v6: false,
        l3: false,
        tunnel_type: "gre_teb",
        carries: &both(11),
    },
    // Over IPv6 the kernel adds a Destination Options header (encapsulation limit 4).
    Kind {
        name: "ip6gretap (seq key)",
        args: &[
            "type",
            "ip6gretap",
            "local",
            "{L}",
            "remote",
            "{R}",
            "seq",
            "key",
            "12",
        ],
        outer_v6: true,
        l3: false,
        tunnel_type: "gre_teb",
        carries: &both(12),
    },
    // ERSPAN type I (Linux 5.3+: `erspan_ver 0`): GRE 0x88BE without a sequence number and
    // no ERSPAN header, so no session id either.
    Kind {
        name: "erspan (version 0, type I)",
        args: &[
            "type",
            "erspan",
            "local",
            "{L}",
            "remote",
            "{R}",
            "erspan_ver",
            "0",
        ],
        outer_v6: false,
        l3: false,
        tunnel_type: "erspan1",
        carries: &both(0),
    },
    // ERSPAN type II: the kernel writes the session id from the key, the index from `erspan`.
    Kind {
        name: "erspan (version 1, type II)",
        args: &[
            "type",
            "erspan",
            "local",
            "{L}",
            "remote",
            "{R}",
            "seq",
            "key",
            "13",
            "erspan_ver",
            "1",
            "erspan",
            "5",
        ],
        outer_v6: false,
        l3: false,
        tunnel_type: "erspan2",
        carries: &both(13),
    },
    Kind {
        name: "erspan (version 2, type III)",
        args: &[
            "type",
            "erspan",
            "local",
            "{L}",
            "remote",
            "{R}",
            "seq",
            "key",
            "14",
            "erspan_ver",
            "2",
            "erspan_dir",
            "egress",
            "erspan_hwid",
            "7",
        ],
        outer_v6: false,
        l3: false,
        tunnel_type: "erspan3",
        carries: &both(14),
    },
    Kind {
        name: "ip6erspan (version 2, type III)",
        args: &[
            "type",
            "ip6erspan",
            "local",
            "{L}",
            "remote",
            "{R}",
            "seq",
            "key",
            "15",
            "erspan_ver",
            "2",
            "erspan_dir",
            "ingress",
            "erspan_hwid",
            "9",
        ],
        outer_v6: true,
        l3: false,
        tunnel_type: "erspan3",
        carries: &both(15),
    },
    // The kernel chooses the UDP source port from a hash of the inner flow.
    Kind {
        name: "vxlan",
        args: &[
            "type", "vxlan", "id", "42", "local", "{L}", "remote", "{R}", "dstport", "4789", "dev",
            "{DEV}",
        ],
        outer_v6: false,
        l3: false,
        tunnel_type: "vxlan",
        carries: &both(42),
    },
    Kind {
        name: "geneve",
        args: &["type", "geneve", "id", "43", "remote", "{R}"],
        outer_v6: false,
        l3: false,
        tunnel_type: "geneve",
        carries: &both(43),
    },
    // IP in IP: `tunnel.id` is the outer protocol, 4 for IPv4 inside, 41 for IPv6 inside.
    Kind {
        name: "ipip",
        args: &["type", "ipip", "local", "{L}", "remote", "{R}"],
        outer_v6: false,
        l3: true,
        tunnel_type: "ipip",
        carries: &[(Family::V4, 4)],
    },
    Kind {
        name: "sit",
        args: &["type", "sit", "local", "{L}", "remote", "{R}"],
        outer_v6: false,
        l3: true,
        tunnel_type: "ipip",
        carries: &[(Family::V6, 41)],
    },
    Kind {
        name: "ip6tnl (mode any)",
        args: &[
            "type", "ip6tnl", "local", "{L}", "remote", "{R}", "mode", "any",
        ],
        outer_v6: true,
        l3: true,
        tunnel_type: "ipip",
        carries: &[(Family::V4, 4), (Family::V6, 41)],
    },
];

/// Runs `program ARGS`; on failure the error names the command (`shown`) and carries its
/// stderr.
fn tool(program: &str, args: &[&str], shown: &str) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip ARGS`, its stderr as the error.
fn ip(args: &[&str]) -> Result<(), String> {
    tool("ip", args, &format!("`ip {}`", args.join(" ")))
}

fn must(result: Result<(), String>) {
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn tc(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    tool("tc", &all, &format!("`tc {}`", args.join(" ")))
}

fn sysctl(ns: &str, key: &str, value: &str) -> Result<(), String> {
    let setting = format!("{key}={value}");
    tool(
        "ip",
        &["netns", "exec", ns, "sysctl", "-qw", &setting],
        &format!("sysctl {setting}"),
    )
}

fn mac(ns: &str, ifname: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "-br", "link", "show", "dev", ifname])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no MAC address for {ifname} in {text:?}"))
        .to_string()
}

/// The three namespaces. `under` is the sensor's link (victim = its sending side, collector
/// = its capture side); `lan`'s sending end is moved into the victim namespace, its
/// receiving side is the peer. Both links delete their namespaces when dropped.
struct Topology {
    under: Link,
    lan: Link,
    /// The victim's interface toward the peer (mirrored).
    victim_if: String,
}

impl Topology {
    fn victim(&self) -> &str {
        &self.under.tx_ns
    }

    fn peer(&self) -> &str {
        &self.lan.rx_ns
    }

    fn new() -> Topology {
        let under = Link::new();
        let lan = Link::new();
        let victim_if = lan.tx_if.clone();
        let (victim, peer) = (under.tx_ns.clone(), lan.rx_ns.clone());
        must(ip(&[
            "-n", &lan.tx_ns, "link", "set", &victim_if, "netns", &victim,
        ]));
        // Link::new turns ARP and IPv6 off (a capture link must stay quiet). The victim and
        // the peer need both, without neighbour discovery on the wire: static neighbours,
        // no link-local address, no DAD, no router solicitation; MLD reports are sent early
        // (before the mirror exists) and would only show as multicast flows anyway.
        let ends = [
            (victim.as_str(), victim_if.as_str(), lan.rx_if.as_str()),
            (peer.as_str(), lan.rx_if.as_str(), victim_if.as_str()),
        ];
        for (ns, ifname, _) in ends {
            must(ip(&["-n", ns, "link", "set", ifname, "down"]));
            must(ip(&[
                "-n",
                ns,
                "link",
                "set",
                ifname,
                "arp",
                "on",
                "addrgenmode",
                "none",
            ]));
            for (key, value) in [
                ("disable_ipv6", "0"),
                ("router_solicitations", "0"),
                ("mldv2_unsolicited_report_interval", "1"),
                ("mldv1_unsolicited_report_interval", "1"),
            ] {
                must(sysctl(ns, &format!("net.ipv6.conf.{ifname}.{key}"), value));
            }
        }
        for (ns, ifname, other_if) in ends {
            let is_victim = ns == victim;
            let other_ns = if is_victim { &peer } else { &victim };
            let other_mac = mac(other_ns, other_if);
            for family in [Family::V4, Family::V6] {
                let (own, other) = if is_victim {
                    (family.victim(), family.peer())
                } else {
                    (family.peer(), family.victim())
                };
                let addr = format!("{own}/{}", family.prefix());
                let mut args = vec!["-n", ns, "addr", "add", &addr, "dev", ifname];
                if family == Family::V6 {
                    args.push("nodad");
                }
                must(ip(&args));
                must(ip(&[
                    "-n",
                    ns,
                    "neigh",
                    "replace",
                    &other.to_string(),
                    "lladdr",
                    &other_mac,
                    "dev",
                    ifname,
                    "nud",
                    "permanent",
                ]));
            }
            must(ip(&["-n", ns, "link", "set", ifname, "up"]));
        }
        // The underlay: the victim's end gets both families (IPv6 without link-local or
        // DAD); the capture end stays silent with neither address nor IPv6.
        let (v, u) = (victim.as_str(), under.tx_if.as_str());
        must(sysctl(v, &format!("net.ipv6.conf.{u}.disable_ipv6"), "0"));
        must(sysctl(
            v,
            &format!("net.ipv6.conf.{u}.router_solicitations"),
            "0",
        ));
        must(ip(&["-n", v, "link", "set", u, "addrgenmode", "none"]));
        must(ip(&["-n", v, "addr", "add", "10.77.2.1/24", "dev", u]));
        must(ip(&[
            "-n",
            v,
            "addr",
            "add",
            "fd77:2::1/64",
            "dev",
            u,
            "nodad",
        ]));
        for ns in [v, peer.as_str()] {
            must(ip(&["-n", ns, "link", "set", "lo", "up"]));
        }
        Topology {
            under,
            lan,
            victim_if,
        }
    }

    /// Makes the tunnel device and the mirror into it, or says why the kernel refused.
    fn mirror_into(&self, kind: &Kind, tun: &str) -> Result<String, String> {
        let (local, remote) = if kind.outer_v6 { UNDER_V6 } else { UNDER_V4 };
        let args: Vec<&str> = kind
            .args
            .iter()
            .map(|a| match *a {
                "{L}" => local,
                "{R}" => remote,
                "{DEV}" => self.under.tx_if.as_str(),
                other => other,
            })
            .collect();
        let v = self.victim();
        let mut add = vec!["-n", v, "link", "add", tun];
        add.extend(&args);
        ip(&add)?;
        // The device's own IPv6 (link-local, MLD, router solicitations) would be tunnelled
        // too; only the mirrored frames may be.
        let _ = sysctl(v, &format!("net.ipv6.conf.{tun}.disable_ipv6"), "1");
        must(ip(&["-n", v, "link", "set", tun, "up"]));
        tc(v, &["qdisc", "add", "dev", &self.victim_if, "clsact"])?;
        // matchall is the documented way; a kernel without it (CONFIG_NET_CLS_MATCHALL off)
        // still has u32, whose `match u32 0 0` matches every frame.
        let mut how = String::new();
        for hook in ["egress", "ingress"] {
            let dev = self.victim_if.as_str();
            let matchall = [
                "filter", "add", "dev", dev, hook, "matchall", "action", "mirred", "egress",
                "mirror", "dev", tun,
            ];
            let u32 = [
                "filter", "add", "dev", dev, hook, "protocol", "all", "u32", "match", "u32", "0",
                "0", "action", "mirred", "egress", "mirror", "dev", tun,
            ];
            match tc(v, &matchall) {
                Ok(()) => how = "matchall".into(),
                Err(e) => {
                    tc(v, &u32).map_err(|e2| format!("{e}; then {e2}"))?;
                    let first = e.lines().next().unwrap_or_default();
                    how = format!("u32 match-all (matchall refused: {first})");
                }
            }
        }
        Ok(how)
    }

    /// The tunnel device's transmit errors and drops (`ip -s link`), for the report.
    fn tx_errors(&self, tun: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", self.victim(), "-s", "-j", "link", "show", "dev", tun])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let tx = &v[0]["stats64"]["tx"];
        format!(
            "tx packets {} errors {} dropped {}",
            tx["packets"], tx["errors"], tx["dropped"]
        )
    }
}

/// An inner conversation: protocol and the two endpoints, lower first.
type Conversation = (String, SocketAddr, SocketAddr);

fn conversation(proto: &str, a: SocketAddr, b: SocketAddr) -> Conversation {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    (proto.to_string(), lo, hi)
}

/// A TCP exchange (connect, a request, an answer, both sides close) and a UDP exchange (a
/// datagram and its answer) from the victim to the peer over `family`.
fn converse(topo: &Topology, family: Family) -> Vec<Conversation> {
    let peer = family.peer();
    let (tcp_port_tx, tcp_port_rx) = std::sync::mpsc::channel();
    let (udp_port_tx, udp_port_rx) = std::sync::mpsc::channel();
    let server = spawn_in_namespace(topo.peer(), move || {
        let tcp = TcpListener::bind((peer, 0)).unwrap();
        let udp = UdpSocket::bind((peer, 0)).unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp_port_tx.send(tcp.local_addr().unwrap()).unwrap();
        udp_port_tx.send(udp.local_addr().unwrap()).unwrap();
        let (mut conn, _) = tcp.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = [0u8; 5];
        conn.read_exact(&mut request).unwrap();
        conn.write_all(b"pong from the peer\n").unwrap();
        drop(conn);
        let mut buf = [0u8; 64];
        let (n, from) = udp.recv_from(&mut buf).unwrap();
        udp.send_to(&buf[..n], from).unwrap();
    });
    let tcp_server = tcp_port_rx.recv().unwrap();
    let udp_server = udp_port_rx.recv().unwrap();
    let victim = family.victim();
    let (tcp_client, udp_client) = in_namespace(topo.victim(), move || {
        let mut conn = TcpStream::connect_timeout(&tcp_server, Duration::from_secs(10)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"ping\n").unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, b"pong from the peer\n");
        let tcp_client = conn.local_addr().unwrap();
        drop(conn);
        let udp = UdpSocket::bind((victim, 0)).unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        udp.send_to(b"hello over udp", udp_server).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = udp.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello over udp");
        (tcp_client, udp.local_addr().unwrap())
    });
    server.join().unwrap();
    vec![
        conversation("tcp", tcp_client, tcp_server),
        conversation("udp", udp_client, udp_server),
    ]
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mw-mirred-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_events(path: &Path) -> Vec<Value> {
    events(&std::fs::read(path).unwrap_or_default())
}

fn ip_of(v: &Value) -> Option<IpAddr> {
    v.as_str()?.parse().ok()
}

fn endpoint(e: &Value, side: &str) -> Option<SocketAddr> {
    let ip = ip_of(&e[format!("{side}_ip")])?;
    let port = e[format!("{side}_port")].as_u64().unwrap_or(0);
    Some(SocketAddr::new(ip, u16::try_from(port).ok()?))
}

/// Why a kind could not be tested, or the failures found when it was.
enum Outcome {
    Skipped(String),
    Tested(Vec<String>),
}

/// Mirrors the victim's traffic into one kind of device and checks the sensor's events.
fn check_kind(kind: &Kind, index: usize) -> Outcome {
    let topo = Topology::new();
    let tun = format!("mwt{:x}k{index}", std::process::id() & 0xffff);
    let how = match topo.mirror_into(kind, &tun) {
        Ok(how) => how,
        Err(reason) => return Outcome::Skipped(reason),
    };
    let out = scratch(&format!("k{index}")).join("events.json");
    let sensor = Sensor::start(&topo.under, &out, &["--flows"]);
    let mut expected: BTreeSet<Conversation> = BTreeSet::new();
    for (family, _) in kind.carries {
        expected.extend(converse(&topo, *family));
    }
    // Every conversation is at least five mirrored packets (TCP handshake and the two UDP
    // datagrams); the rest (data, FINs) follows within milliseconds.
    let least = 5 * kind.carries.len() as u64;
    let seen = sensor.wait_packets(&out, least, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(700));
    let (code, stderr) = sensor.stop();
    let mut failures = Vec::new();
    if kind.l3 {
        eprintln!("  {}: {}", kind.name, topo.tx_errors(&tun));
    }
    if !seen {
        failures.push(format!(
            "the sensor never counted {least} packets; stderr {stderr:#?}"
        ));
    }
    if code != Some(0) {
        failures.push(format!("sensor exit code {code:?}; stderr {stderr:#?}"));
    }
    let evs = read_events(&out);
    let (source, collector) = if kind.outer_v6 { UNDER_V6 } else { UNDER_V4 };
    let (source, collector): (IpAddr, IpAddr) =
        (source.parse().unwrap(), collector.parse().unwrap());
    eprintln!("  {}: mirror made with {how}", kind.name);
    // One link per tunnel id: the layer-2 devices carry both families under one id,
    // `ip6tnl mode any` each family under its own outer protocol.
    let mut ids: Vec<u64> = kind.carries.iter().map(|&(_, id)| id).collect();
    ids.dedup();
    for id in ids {
        let families: Vec<Family> = kind
            .carries
            .iter()
            .filter(|&&(_, i)| i == id)
            .map(|&(f, _)| f)
            .collect();
        let records: Vec<&Value> = evs
            .iter()
            .filter(|e| e["event_type"] == "tunnel")
            .filter(|e| e["tunnel"]["type"] == kind.tunnel_type && e["tunnel"]["id"] == id)
            .collect();
        let Some(record) = records.first() else {
            failures.push(format!(
                "{families:?} inside: no tunnel record of type {} id {id}; tunnel records: {:#?}",
                kind.tunnel_type,
                evs.iter()
                    .filter(|e| e["event_type"] == "tunnel")
                    .map(|e| e["tunnel"].clone())
                    .collect::<Vec<_>>()
            ));
            continue;
        };
        let class = &record["classification"];
        eprintln!(
            "  {}: {families:?} inside: tunnel {} id {} {} -> {}, {} packets, class {} ({})",
            kind.name,
            record["tunnel"]["type"],
            record["tunnel"]["id"],
            record["src_ip"],
            record["dest_ip"],
            record["packets"],
            class["class"],
            class["reason"]
        );
        if records.len() != 1 {
            failures.push(format!(
                "{families:?} inside: {} sessions, a mirror is one way: {records:#?}",
                records.len()
            ));
        }
        if ip_of(&record["src_ip"]) != Some(source) || ip_of(&record["dest_ip"]) != Some(collector)
        {
            failures.push(format!(
                "{families:?} inside: tunnel {} -> {}, expected {source} -> {collector}",
                record["src_ip"], record["dest_ip"]
            ));
        }
        if class["class"] != "mirror" {
            failures.push(format!(
                "{families:?} inside: classified {class}, expected mirror"
            ));
        }
        let link = &record["tunnel"]["link"];
        let alerts: Vec<&Value> = evs
            .iter()
            .filter(|e| e["event_type"] == "alert" && e["detector"] == "mirror_stream")
            .filter(|e| &e["tunnel"]["link"] == link)
            .collect();
        match alerts.as_slice() {
            [alert] => {
                if ip_of(&alert["dest_ip"]) != Some(collector)
                    || alert["alert"]["signature"] != "mirror.unapproved_collector"
                    || alert["evidence"]["classification"]["class"] != "mirror"
                {
                    failures.push(format!(
                        "{families:?} inside: the mirror_stream alert does not name collector \
                         {collector} as an unapproved mirror: {alert}"
                    ));
                }
            }
            _ => failures.push(format!(
                "{families:?} inside: {} mirror_stream alerts on link {link}, expected 1",
                alerts.len()
            )),
        }
        // The inner flows of this link: the test's conversations of these families, plus at most
        // multicast control traffic the kernel sent (MLD reports of the victim's interface).
        let mut inner: BTreeSet<Conversation> = BTreeSet::new();
        for f in evs
            .iter()
            .filter(|e| e["event_type"] == "flow" && &e["tunnel"]["link"] == link)
        {
            let (Some(a), Some(b)) = (endpoint(f, "src"), endpoint(f, "dest")) else {
                failures.push(format!("inner flow without endpoints: {f}"));
                continue;
            };
            if b.ip().is_multicast() {
                eprintln!(
                    "  {}: kernel control traffic also mirrored: {} {a} -> {b}",
                    kind.name, f["proto"]
                );
                continue;
            }
            inner.insert(conversation(f["proto"].as_str().unwrap_or("?"), a, b));
        }
        let want: BTreeSet<Conversation> = expected
            .iter()
            .filter(|(_, a, _)| {
                families.contains(if a.is_ipv4() {
                    &Family::V4
                } else {
                    &Family::V6
                })
            })
            .cloned()
            .collect();
        if inner != want {
            failures.push(format!(
                "{families:?} inside: inner flows {inner:#?}, expected the test's conversations \
                 {want:#?}"
            ));
        }
    }
    Outcome::Tested(failures)
}

/// Issue 16 item 2: every tunnel device kind the kernel has, fed by `tc ... mirred egress
/// mirror`, is a `mirror` the sensor alerts on, with the victim's conversations inside.
#[test]
fn kernel_mirred_into_every_tunnel_device() {
    let test = "kernel_mirred_into_every_tunnel_device";
    // Like live::can_run, without tcpreplay: the traffic comes from real sockets here.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let ip_ok = Command::new("ip").arg("-V").output().is_ok();
    let tc_ok = Command::new("tc").arg("-V").output().is_ok();
    if !(root && ip_ok && tc_ok) {
        eprintln!(
            "SKIPPED {test}: needs root, `ip` and `tc` (iproute2) (root: {root}, ip: {ip_ok}, \
             tc: {tc_ok}); run tests/run.sh as root, as CI does"
        );
        return;
    }
    let mut tested = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    for (index, kind) in KINDS.iter().enumerate() {
        match check_kind(kind, index) {
            Outcome::Skipped(reason) => {
                eprintln!(
                    "SKIPPED {test} / {}: the kernel refused: {reason}",
                    kind.name
                );
                skipped.push(kind.name);
            }
            Outcome::Tested(failures) => {
                tested.push(kind.name);
                if failures.is_empty() {
                    eprintln!("ok {test} / {}", kind.name);
                } else {
                    failed.push(format!("{}:\n  {}", kind.name, failures.join("\n  ")));
                }
            }
        }
    }
    eprintln!(
        "{test}: tested {} kinds {tested:?}; skipped {} {skipped:?} (the kernel lacks them)",
        tested.len(),
        skipped.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert!(
        !tested.is_empty(),
        "no tunnel device kind could be made on this kernel (all of {:?} refused), so nothing \
         was tested",
        skipped
    );
}
