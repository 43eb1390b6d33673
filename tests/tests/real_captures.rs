//! Real third-party captures in `../shared/pcaps` (listed in its `SOURCES.tsv`), with tshark as
//! an independent oracle. Both tests skip with a loud `SKIPPED` message when the folder is
//! missing, and the oracle test also when tshark is.
//!
//! - [`every_capture_replays`]: every file, damaged ones included, replays through the binary
//!   without crashing and prints JSON lines ending with exactly one `stats` event.
//! - [`every_capture_matches_tshark`]: for every capture in every folder (`wild/` included;
//!   folders and files are found at run time, so new ones are compared without a change here),
//!   the packets per tunnel type, the sets of innermost 5-tuples, and the flow bytes (the sum of
//!   the innermost IP lengths per directional 5-tuple, what the sensor reports as flow bytes)
//!   the library decodes (with `DecodeConfig::default()`, non-standard port probing on, as in
//!   production) equal what tshark dissects, packet for packet (issue 11 "Decoding", issue 17).
//!   Where the two legitimately differ, [`EXPECTATIONS`] says so per file, with the reason and
//!   the exact number of packets concerned; those are the only exceptions, with two general
//!   rules below (damaged files, IPv6 payload length 0).
//!
//! How tshark's output is read (fields listed in [`FIELDS`], one line per frame):
//! - Reassembly is off (`ip.defragment`, `ipv6.defragment`), as we do not reassemble: tshark
//!   then dissects every fragment on its own, the first one's payload included.
//! - The innermost IP packet is the last `ip`/`ipv6` layer of `frame.protocols`, stopping at
//!   `icmp`/`icmpv6`: an ICMP error quotes an IP header, which is not a layer of the packet.
//!   Multi-occurrence fields are lists, outermost first; the n-th `ip` layer owns the n-th
//!   `ip.src`, and so on. The protocol is that of the last IPv6 extension header, if any. An IP
//!   layer without addresses (a header tshark could not read) ends the walk there.
//! - Ports are those of a `tcp`/`udp` layer directly inside the innermost IP packet. A fragment
//!   has ports 0 on both sides: etherparse reads no transport in fragments (the first one
//!   included), so all fragments of a datagram share one flow key; tshark reads the first one's.
//! - Tunnel types: `vxlan`, `geneve`; `gre` followed by `erspan` is `erspan1`/`2`/`3` by
//!   `erspan.version` (absent in type I, 1 in type II, 2 in type III); otherwise GRE version 1
//!   is `pptp`, protocol 0x6558 is `nvgre` with a key and neither checksum nor sequence
//!   number (RFC 7637), `gre_teb` otherwise, and any other protocol is `gre` (as our decoder
//!   counts a GRE v0 layer whatever it carries). An IP layer
//!   directly inside another (4in4, 6in4, 4in6, 6in6) is `ipip`.
//! - IP lengths: `ip.len` (tshark, like us, reads a total length of 0 as the bytes present),
//!   40 + `ipv6.plen`, or 40 + `ipv6.opt.jumbo` for a jumbogram. General exception: an IPv6
//!   payload length of 0 without a jumbo option (Linux BIG TCP) leaves tshark's field at 0 and
//!   no field says how many bytes it dissected, so that packet's length is taken as ours (the
//!   bytes present); the report line counts such packets.
//! - Damaged files ([`DAMAGED`]): each reader stops at the damage in its own way, so the
//!   packets both read are compared. [`UNCOMPARABLE`] lists the one file tshark reads as other
//!   packets altogether.
//!
//! 5-tuples are directional (source, destination, protocol, source port, destination port).
//! Two sets are compared per file: the innermost 5-tuple of every packet whose innermost IP
//! packet is inside at least one tunnel, and the innermost 5-tuple of every IP packet (which
//! also holds out-of-scope tunnels to "the inner flow stays the outer UDP/IP flow").
//!
//! Cost, measured on this machine (2 cores shared with other jobs, load average 16): tshark
//! alone over all 360 files takes 2 min 10 s of CPU (1 min 31 s user, 40 s system), mostly
//! its start-up per file; the files are compared in parallel on every core.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use mirrorwatch::capture::replay::ReplayReader;
use mirrorwatch::decode::{DecodeConfig, DecodeCounters, Decoder};
use mirrorwatch_tests::{run, shared_pcaps};

/// What tshark needs to be told about one capture, and where we knowingly differ from it.
struct Expectation {
    /// Path under `../shared/pcaps`.
    file: &'static str,
    /// `-d` arguments: our probe finds VXLAN and Geneve on non-standard ports, tshark must be
    /// told where they are.
    decode_as: &'static [&'static str],
    /// Known differences, each with its reason in a comment.
    known: &'static [Known],
}

/// One known difference between tshark and us.
enum Known {
    /// tshark dissects further than we do at the point where `frame.protocols` reads
    /// `at` (`"outer|inner"`: the protocols either side, e.g. `"udp|teredo"`): its view of the
    /// packet is cut at the `|`, so its innermost IP packet is the last one before the cut.
    /// Exactly `packets` packets of the file must match.
    Cut { at: &'static str, packets: usize },
    /// tshark cannot dissect frame `frame` (1-based); what we decode there, read from the
    /// bytes by hand, replaces its view.
    Substitute {
        frame: usize,
        kinds: &'static [&'static str],
        /// Innermost 5-tuple: source, destination, protocol, source port, destination port.
        inner: (&'static str, &'static str, u8, u16, u16),
        /// Whether that IP packet is inside a tunnel.
        tunnelled: bool,
        /// That IP packet's length as we count it.
        ip_len: u32,
    },
}

/// Per-file expectations; a file not listed needs no help and must match exactly.
const EXPECTATIONS: &[Expectation] = &[
    Expectation {
        file: "tunnels/erspan/tcpdump__erspan-type-iii-pb-1.pcap",
        decode_as: &[],
        known: &[
            // A fuzzed GRE header with the strict source route bit (RFC 1701) set: gre.rs
            // rejects it on purpose (`decoder.gre.bad_flags`; see its module documentation and
            // its GRE_STRICT_SOURCE_ROUTE test), so the outer IPv6 packet is our innermost.
            // tshark accepts the bit and finds a truncated ERSPAN III header.
            Known::Cut {
                at: "ipv6.dstopts|gre",
                packets: 1,
            },
        ],
    },
    Expectation {
        file: "tunnels/gre/tcpdump__various_gre.pcap",
        decode_as: &[],
        known: &[
            // GRE protocol 0x8909 carries Cisco MetaData (TrustSec SGT tagging), a vendor
            // header we do not decode: we count the GRE layer and keep the outer packet as
            // the innermost one. 10 ICMP, 8 GRE keepalives, 2 PIM.
            Known::Cut {
                at: "gre|cmd",
                packets: 20,
            },
        ],
    },
    Expectation {
        file: "tunnels/gre/zeek__gre-aruba.pcap",
        decode_as: &[],
        known: &[
            // Aruba access points tunnel 802.11 frames in GRE protocol 0x8200. We count the
            // GRE layer but do not decode 802.11, so the outer packet stays the innermost.
            Known::Cut {
                at: "gre|wlan",
                packets: 2407,
            },
        ],
    },
    Expectation {
        file: "tunnels/other/sv__decode-etag-01_input.pcap",
        decode_as: &[],
        known: &[
            // 802.1BR E-Tag (EtherType 0x893F) is a bridge-port-extension tag we do not
            // decode: the frame has no IP packet for us.
            Known::Cut {
                at: "ethertype|etag",
                packets: 1,
            },
        ],
    },
    Expectation {
        file: "tunnels/other/sv__decode-nsh-type1_input.pcap",
        decode_as: &[],
        known: &[
            // NSH (RFC 8300, EtherType 0x894F), a service-chaining encapsulation, is out of
            // scope: the frame has no IP packet for us.
            Known::Cut {
                at: "ethertype|nsh",
                packets: 1,
            },
        ],
    },
    Expectation {
        file: "tunnels/other/sv__decode-teredo-01_input.pcap",
        decode_as: &[],
        known: &[
            // Teredo (IPv6 in UDP) is out of scope: the outer UDP flow is our innermost.
            Known::Cut {
                at: "udp|teredo",
                packets: 4,
            },
        ],
    },
    Expectation {
        file: "tunnels/other/sv__decode-vntag-01_input.pcap",
        decode_as: &[],
        known: &[
            // VN-Tag (802.1Qbh, EtherType 0x8926) is a fabric-extender tag we do not decode:
            // the frame has no IP packet for us.
            Known::Cut {
                at: "ethertype|vntag",
                packets: 5,
            },
        ],
    },
    Expectation {
        file: "tunnels/other/tcpdump__mpls-over-udp.pcap",
        decode_as: &[],
        known: &[
            // MPLS over UDP (RFC 7510, port 6635) is out of scope (we follow MPLS only on
            // Ethernet and in GRE/Geneve EtherTypes): the outer UDP flow is our innermost.
            Known::Cut {
                at: "udp|mpls",
                packets: 2,
            },
        ],
    },
    Expectation {
        file: "tunnels/other/zeek__ayiya3.pcap",
        decode_as: &[],
        known: &[
            // AYIYA (IPv6 in UDP) is out of scope: the outer UDP flow is our innermost. 35
            // packets are AYIYA; in 32 of them tshark finds an inner IPv6 packet, the 3
            // others carry none and need no cut, but are counted here all the same.
            Known::Cut {
                at: "udp|ayiya",
                packets: 35,
            },
        ],
    },
    Expectation {
        file: "tunnels/other/zeek__gtp2_different_udp_port.pcap",
        decode_as: &[],
        known: &[
            // GTP-U is out of scope: the outer UDP flow is our innermost. The 42 other
            // packets are later fragments of outer IP packets, the same on both sides.
            Known::Cut {
                at: "udp|gtp",
                packets: 78,
            },
        ],
    },
    Expectation {
        file: "tunnels/vxlan/tcpdump__bigtcp-ipv6-vxlan-ipv6.pcap",
        decode_as: &[],
        known: &[
            // A Linux BIG TCP capture: IPv6 payload length 0 without a jumbo option, UDP
            // length 0. tshark 4.0 marks the UDP layer malformed and goes no further. From the
            // bytes: UDP 37059 > 4789, VXLAN VNI 5001, inner Ethernet, IPv6 fd00::1 > fd00::2,
            // TCP 40007 > 40607 (offsets 0x36, 0x3e, 0x46, 0x54, 0x7c).
            Known::Substitute {
                frame: 1,
                kinds: &["vxlan"],
                inner: ("fd00::1", "fd00::2", 6, 40007, 40607),
                tunnelled: true,
                // Its payload length is 0 too: the bytes present, 40 + 80032.
                ip_len: 80_072,
            },
        ],
    },
    Expectation {
        file: "tunnels/vxlan/tcpdump__vxlan_port_8472.pcap",
        decode_as: &["udp.port==8472,vxlan"],
        known: &[
            // VXLAN on the legacy Linux port 8472, found by our strict probe, which accepts
            // only an inner IPv4 or IPv6 packet with a valid header (walk.rs,
            // `plausible_inner_frame`): the two ARP frames are not recognised as VXLAN, on
            // purpose, and stay plain UDP. tshark, told the port, dissects all ten.
            Known::Cut {
                at: "udp|vxlan:eth:ethertype:arp",
                packets: 2,
            },
        ],
    },
    Expectation {
        file: "malformed/tcpdump__gre-heapoverflow-2.pcap",
        decode_as: &[],
        known: &[
            // A fuzzed GRE header with the routing bit (RFC 1701) set, flags 0xc030: gre.rs
            // rejects routing on purpose (`decoder.gre.bad_flags`, see its module
            // documentation), so the outer IPv4 packet is our innermost; tshark accepts it.
            Known::Cut {
                at: "ip|gre",
                packets: 1,
            },
        ],
    },
    Expectation {
        file: "wild/ndpi__dtls.pcap",
        decode_as: &[],
        known: &[
            // GTP-U (UDP 2152) is out of scope: the outer UDP flow is our innermost.
            Known::Cut {
                at: "udp|gtp",
                packets: 4,
            },
        ],
    },
    Expectation {
        file: "wild/ndpi__false_positives.pcapng",
        decode_as: &[],
        known: &[
            // GTP-U (UDP 2152) is out of scope: the outer UDP flow is our innermost.
            Known::Cut {
                at: "udp|gtp",
                packets: 54,
            },
        ],
    },
    Expectation {
        file: "wild/ndpi__ipv6_in_gtp.pcap",
        decode_as: &[],
        known: &[
            // GTP-U (UDP 2152) is out of scope: the outer UDP flow is our innermost.
            Known::Cut {
                at: "udp|gtp",
                packets: 2,
            },
        ],
    },
    Expectation {
        file: "wild/ndpi__teredo.pcap",
        decode_as: &[],
        known: &[
            // Teredo (IPv6 in UDP) is out of scope: the outer UDP flow is our innermost.
            Known::Cut {
                at: "udp|teredo",
                packets: 24,
            },
        ],
    },
    Expectation {
        file: "mixed/pcapparser__wireshark_samples-test.pcapng",
        decode_as: &[],
        known: &[
            // Teredo (IPv6 in UDP) is out of scope: the outer UDP flow is our innermost.
            Known::Cut {
                at: "udp|teredo",
                packets: 13,
            },
        ],
    },
];

/// Damaged captures (capinfos: cut short or corrupt, see `SOURCES.tsv`): replay reads what it
/// can, then exits 1 with an error naming the file. Every other capture exits 0.
const DAMAGED: &[&str] = &[
    // Cut short in the middle of a packet.
    "malformed/ndpi__fuzz-2021-10-13.pcap",
    // Cut short in the middle of a packet.
    "malformed/scapy__bad_rsn_parsing_overrides_ssid.pcap",
    // A record claims 4 MB after 6 packets.
    "malformed/sv__bug-1450-04_tls_DER-incomplete-header.pcap",
    // A record claims 140 MB after 1 packet.
    "malformed/sv__bug-6875-01_fuzz.pcap",
    // Cut short in the middle of the last packet.
    "malformed/sv__http-mime-truncated_input.pcap",
];

/// Captures tshark does not read as the same packets, so nothing can be compared, each with
/// the reason. Listed files must exist.
const UNCOMPARABLE: &[&str] = &[
    // A fuzzed legacy pcap: Wireshark guesses another pcap variant and reads other records
    // (see `LIBPCAP_COUNTS` in sensor/src/capture/replay.rs); libpcap reads what we read.
    "malformed/sv__bug-6875-01_fuzz.pcap",
];

/// tshark fields, in column order; frame.protocols names the layers the others belong to.
const FIELDS: [&str; 30] = [
    "frame.number",
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.flags.mf",
    "ip.frag_offset",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.nxt",
    "ipv6.hopopts.nxt",
    "ipv6.dstopts.nxt",
    "ipv6.routing.nxt",
    "ipv6.fraghdr.nxt",
    "ipv6.fraghdr.offset",
    "ipv6.fraghdr.more",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "gre.proto",
    "gre.flags.checksum",
    "gre.flags.key",
    "gre.flags.sequence_number",
    "gre.flags.version",
    "erspan.version",
    "ip.len",
    "ipv6.plen",
    "ipv6.opt.jumbo",
    "ah.next_header",
];

/// A directional 5-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Flow {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "proto {} {}:{} > {}:{}",
            self.proto, self.src, self.sport, self.dst, self.dport
        )
    }
}

/// One packet as one side sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct View {
    /// Tunnel types with at least one layer in the packet.
    kinds: BTreeSet<&'static str>,
    /// The innermost IP packet's 5-tuple.
    inner: Option<Flow>,
    /// That IP packet is inside at least one tunnel.
    tunnelled: bool,
    /// Its length as the sensor counts flow bytes (IPv4 total length, IPv6 40 + payload
    /// length or jumbo length); `None` on tshark's side where its fields do not say (an IPv6
    /// payload length of 0 without a jumbo option: see [`tshark_view`]).
    ip_len: Option<u32>,
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<&str> = self.kinds.iter().copied().collect();
        match self.inner {
            Some(flow) => write!(
                f,
                "tunnels [{}], {} {flow}, {} bytes",
                kinds.join(","),
                if self.tunnelled { "inner" } else { "outer" },
                self.ip_len.map_or("?".to_owned(), |n| n.to_string())
            ),
            None => write!(f, "tunnels [{}], no IP", kinds.join(",")),
        }
    }
}

/// What the issue compares for one file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    n_packets: usize,
    /// Packets carrying at least one layer of each tunnel type.
    per_kind: BTreeMap<&'static str, usize>,
    /// Innermost 5-tuples of packets whose innermost IP packet is inside a tunnel.
    tunnelled: BTreeSet<Flow>,
    /// Innermost 5-tuples of every IP packet.
    all: BTreeSet<Flow>,
    /// Flow bytes per innermost directional 5-tuple: the sum of the IP lengths.
    bytes: BTreeMap<Flow, u64>,
}

impl Summary {
    fn of(views: &[View]) -> Summary {
        let mut s = Summary {
            n_packets: views.len(),
            ..Summary::default()
        };
        for v in views {
            for kind in &v.kinds {
                *s.per_kind.entry(kind).or_default() += 1;
            }
            if let Some(flow) = v.inner {
                s.all.insert(flow);
                *s.bytes.entry(flow).or_default() += u64::from(v.ip_len.unwrap_or(0));
                if v.tunnelled {
                    s.tunnelled.insert(flow);
                }
            }
        }
        s
    }
}

/// Our side: every packet through the library decoder, as the sensor decodes it; a damaged
/// file gives the packets read before the damage.
fn decode_ours(path: &Path) -> Vec<View> {
    let decoder = Decoder::new(DecodeConfig::default());
    let mut counters = DecodeCounters::default();
    let mut reader = ReplayReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut views = Vec::new();
    while let Ok(Some(rec)) = reader.next_packet() {
        let d = decoder.decode(rec.link, rec.data, rec.orig_len, &mut counters);
        views.push(View {
            kinds: d.tunnels.iter().map(|t| t.kind.name()).collect(),
            inner: d.inner.map(|p| Flow {
                src: flowtable::key::addr_to_ip(p.src),
                dst: flowtable::key::addr_to_ip(p.dst),
                proto: p.proto.0,
                sport: p.src_port,
                dport: p.dst_port,
            }),
            tunnelled: d.inner_depth > 0,
            ip_len: d.inner.map(|p| p.ip_len),
        });
    }
    views
}

/// tshark's side: one output line per frame.
fn run_tshark(path: &Path, decode_as: &[&str], damaged: bool) -> String {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(path);
    cmd.args(["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]);
    for d in decode_as {
        cmd.args(["-d", d]);
    }
    cmd.args(["-T", "fields", "-E", "separator=/t"]);
    cmd.args(["-E", "occurrence=a", "-E", "aggregator=,"]);
    for field in FIELDS {
        cmd.args(["-e", field]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running tshark: {e}"));
    // tshark exits 2 after the packets it could read from a damaged file.
    assert!(
        out.status.success() || damaged,
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("tshark output: {e}"))
}

/// One line of tshark fields.
struct Row<'a> {
    line: &'a str,
    cols: Vec<&'a str>,
}

impl<'a> Row<'a> {
    /// The `k`-th occurrence of `field`.
    fn field(&self, field: &str, k: usize) -> Option<&'a str> {
        let col = FIELDS.iter().position(|f| *f == field)?;
        self.cols
            .get(col)?
            .split(',')
            .nth(k)
            .filter(|s| !s.is_empty())
    }

    /// How many occurrences of `field` the line has.
    fn count(&self, field: &str) -> usize {
        FIELDS
            .iter()
            .position(|f| *f == field)
            .and_then(|col| self.cols.get(col))
            .map_or(0, |v| v.split(',').filter(|s| !s.is_empty()).count())
    }

    /// The `k`-th occurrence of a numeric field (decimal, `0x` hex, or a boolean, which
    /// tshark 4.0 prints as 1/0 and later versions as True/False).
    fn num(&self, field: &str, k: usize) -> Option<u32> {
        let s = self.field(field, k)?;
        let n = match s {
            "True" => Ok(1),
            "False" => Ok(0),
            _ => match s.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => s.parse(),
            },
        };
        Some(n.unwrap_or_else(|e| panic!("{field} {s:?}: {e} in {}", self.line)))
    }

    fn addr(&self, field: &str, k: usize) -> IpAddr {
        match self.field(field, k).map(str::parse) {
            Some(Ok(addr)) => addr,
            other => panic!("{field}[{k}]: {other:?} in {}", self.line),
        }
    }

    fn port(&self, field: &str, k: usize) -> u16 {
        let n = self
            .num(field, k)
            .unwrap_or_else(|| panic!("no {field}[{k}]"));
        u16::try_from(n).unwrap_or_else(|e| panic!("{field} {n}: {e}"))
    }

    fn proto(&self, field: &str, k: usize) -> u8 {
        let n = self
            .num(field, k)
            .unwrap_or_else(|| panic!("no {field}[{k}]"));
        u8::try_from(n).unwrap_or_else(|e| panic!("{field} {n}: {e}"))
    }
}

/// An IP layer found in tshark's protocol list.
struct IpLayer {
    flow: Flow,
    fragment: bool,
    tunnelled: bool,
    ip_len: Option<u32>,
}

/// Where `at` (`"outer|inner"`) matches `tokens`: the index of the first inner protocol.
fn cut_position(tokens: &[&str], at: &str) -> Option<usize> {
    let (outer, inner) = at
        .split_once('|')
        .unwrap_or_else(|| panic!("cut {at:?} has no '|'"));
    let outer: Vec<&str> = outer.split(':').collect();
    let inner: Vec<&str> = inner.split(':').collect();
    (outer.len()..=tokens.len().saturating_sub(inner.len())).find(|&i| {
        tokens[i - outer.len()..i] == outer[..] && tokens[i..i + inner.len()] == inner[..]
    })
}

/// Reads one line of tshark fields; `cut` ends the protocol list early (see [`Known::Cut`]).
fn tshark_view(row: &Row<'_>, cut: Option<usize>) -> View {
    let all_tokens: Vec<&str> = row.cols.get(1).copied().unwrap_or("").split(':').collect();
    let tokens = &all_tokens[..cut.unwrap_or(all_tokens.len()).min(all_tokens.len())];
    // erspan.version is absent in type I, so it lines up with the erspan layers only when
    // every one of them has it (or none does).
    let n_erspan = all_tokens.iter().filter(|t| **t == "erspan").count();
    let versions: Vec<u32> = (0..n_erspan)
        .filter_map(|k| row.num("erspan.version", k))
        .collect();
    assert!(
        versions.is_empty() || versions.len() == n_erspan,
        "cannot line up erspan.version with the ERSPAN layers in {}",
        row.line
    );
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kinds = BTreeSet::new();
    let mut n_tunnels = 0usize;
    let mut innermost: Option<IpLayer> = None;
    // True while the protocols since the innermost IP header are its own extension headers.
    let mut in_ip_header = false;
    for (pos, &token) in tokens.iter().enumerate() {
        let count = seen.entry(token).or_insert(0);
        let k = *count;
        *count += 1;
        let directly_in_ip = in_ip_header;
        in_ip_header = false;
        // An IP header directly inside another one (IPv6 extension headers between them
        // included) is IP in IP, our `ipip` tunnel.
        if directly_in_ip && (token == "ip" || token == "ipv6") {
            kinds.insert("ipip");
            n_tunnels += 1;
        }
        // An IP layer without its addresses is a header tshark could not read (cut or
        // malformed); we do not read it either: the walk ends at the layer before.
        if (token == "ip" && row.field("ip.src", k).is_none())
            || (token == "ipv6" && row.field("ipv6.src", k).is_none())
        {
            break;
        }
        match token {
            "ip" => {
                innermost = Some(IpLayer {
                    flow: Flow {
                        src: row.addr("ip.src", k),
                        dst: row.addr("ip.dst", k),
                        proto: row.proto("ip.proto", k),
                        sport: 0,
                        dport: 0,
                    },
                    fragment: row.num("ip.flags.mf", k) == Some(1)
                        || row.num("ip.frag_offset", k).is_some_and(|o| o != 0),
                    tunnelled: n_tunnels > 0,
                    // tshark reads a total length of 0 (TSO) as the bytes present, as we do.
                    ip_len: row.num("ip.len", k),
                });
                in_ip_header = true;
            }
            "ipv6" => {
                innermost = Some(IpLayer {
                    flow: Flow {
                        src: row.addr("ipv6.src", k),
                        dst: row.addr("ipv6.dst", k),
                        proto: row.proto("ipv6.nxt", k),
                        sport: 0,
                        dport: 0,
                    },
                    fragment: false,
                    tunnelled: n_tunnels > 0,
                    // Payload length 0: the jumbo option when there is one (jumbograms are
                    // rare enough that the last one in the packet is this layer's); without
                    // one (BIG TCP, TSO) tshark's fields do not say how many bytes it used.
                    ip_len: match row.num("ipv6.plen", k) {
                        Some(0) => row
                            .count("ipv6.opt.jumbo")
                            .checked_sub(1)
                            .and_then(|last| row.num("ipv6.opt.jumbo", last))
                            .map(|j| 40 + j),
                        plen => plen.map(|p| 40 + p),
                    },
                });
                in_ip_header = true;
            }
            // The authentication header (RFC 4302) in IPv4 or IPv6: etherparse skips it, as
            // these extension headers, and so do we.
            "ah" if directly_in_ip => {
                if let Some(ip) = innermost.as_mut() {
                    ip.flow.proto = row.proto("ah.next_header", k);
                }
                in_ip_header = true;
            }
            "ipv6.hopopts" | "ipv6.dstopts" | "ipv6.routing" | "ipv6.fraghdr" if directly_in_ip => {
                if let Some(ip) = innermost.as_mut() {
                    ip.flow.proto = row.proto(&format!("{token}.nxt"), k);
                    if token == "ipv6.fraghdr" {
                        ip.fragment = row.num("ipv6.fraghdr.more", k) == Some(1)
                            || row.num("ipv6.fraghdr.offset", k).is_some_and(|o| o != 0);
                    }
                }
                in_ip_header = true;
            }
            "tcp" | "udp" if directly_in_ip => {
                if let Some(ip) = innermost.as_mut() {
                    ip.flow.sport = row.port(&format!("{token}.srcport"), k);
                    ip.flow.dport = row.port(&format!("{token}.dstport"), k);
                }
            }
            // What follows is quoted by an ICMP error, not a layer of this packet.
            "icmp" | "icmpv6" => break,
            "vxlan" | "geneve" => {
                kinds.insert(if token == "vxlan" { "vxlan" } else { "geneve" });
                n_tunnels += 1;
            }
            "erspan" => {
                kinds.insert(match versions.get(k) {
                    None => "erspan1",
                    Some(1) => "erspan2",
                    Some(2) => "erspan3",
                    Some(v) => panic!("ERSPAN version {v} in {}", row.line),
                });
                n_tunnels += 1;
            }
            // The erspan layer that follows names the type.
            "gre" if tokens.get(pos + 1) == Some(&"erspan") => {}
            "gre" => {
                kinds.insert(if row.num("gre.flags.version", k) == Some(1) {
                    "pptp"
                } else if row.num("gre.proto", k) == Some(0x6558) {
                    // NVGRE (RFC 7637 3.2): a key, no checksum, no sequence number.
                    if row.num("gre.flags.key", k) == Some(1)
                        && row.num("gre.flags.checksum", k) != Some(1)
                        && row.num("gre.flags.sequence_number", k) != Some(1)
                    {
                        "nvgre"
                    } else {
                        "gre_teb"
                    }
                } else {
                    "gre"
                });
                n_tunnels += 1;
            }
            _ => {}
        }
    }
    match innermost {
        Some(ip) => {
            let mut flow = ip.flow;
            if ip.fragment {
                (flow.sport, flow.dport) = (0, 0);
            }
            View {
                kinds,
                inner: Some(flow),
                tunnelled: ip.tunnelled,
                ip_len: ip.ip_len,
            }
        }
        None => View {
            kinds,
            inner: None,
            tunnelled: false,
            ip_len: None,
        },
    }
}

/// tshark's views of a file with the file's known differences applied; also returns how many
/// packets each `Known::Cut` matched, in table order.
fn tshark_views(output: &str, expectation: Option<&Expectation>) -> (Vec<View>, Vec<usize>) {
    let known = expectation.map_or(&[][..], |e| e.known);
    let mut matched = vec![0; known.len()];
    let mut views = Vec::new();
    for (i, line) in output.lines().enumerate() {
        let row = Row {
            line,
            cols: line.split('\t').collect(),
        };
        assert_eq!(
            row.num("frame.number", 0),
            u32::try_from(i + 1).ok(),
            "frames out of order at {line}"
        );
        let tokens: Vec<&str> = row.cols.get(1).copied().unwrap_or("").split(':').collect();
        let mut cut = None;
        let mut substitute = None;
        for (j, k) in known.iter().enumerate() {
            match k {
                Known::Cut { at, .. } => {
                    if let Some(pos) = cut_position(&tokens, at) {
                        matched[j] += 1;
                        cut = Some(cut.map_or(pos, |c: usize| c.min(pos)));
                    }
                }
                Known::Substitute {
                    frame,
                    kinds,
                    inner,
                    tunnelled,
                    ip_len,
                } if *frame == i + 1 => {
                    matched[j] += 1;
                    let parse =
                        |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{s:?}: {e}"));
                    substitute = Some(View {
                        kinds: kinds.iter().copied().collect(),
                        inner: Some(Flow {
                            src: parse(inner.0),
                            dst: parse(inner.1),
                            proto: inner.2,
                            sport: inner.3,
                            dport: inner.4,
                        }),
                        tunnelled: *tunnelled,
                        ip_len: Some(*ip_len),
                    });
                }
                Known::Substitute { .. } => {}
            }
        }
        views.push(substitute.unwrap_or_else(|| tshark_view(&row, cut)));
    }
    (views, matched)
}

/// Every capture file under `dir`, recursively, sorted.
fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Runs `job` on every item on all cores; returns the results in input order.
fn parallel<T: Sync, R: Send>(items: &[T], job: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let n_threads = std::thread::available_parallelism().map_or(4, |n| n.get().min(8));
    std::thread::scope(|s| {
        for _ in 0..n_threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = job(item);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

/// `path` relative to the shared folder, with forward slashes.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The tshark version line, or `None` (with a loud message) when tshark is missing.
fn tshark_version(test: &str) -> Option<String> {
    match Command::new("tshark").arg("--version").output() {
        Ok(out) if out.status.success() => Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
        ),
        _ => {
            eprintln!(
                "SKIPPED {test}: tshark is not installed; the tshark oracle checks did not run"
            );
            None
        }
    }
}

/// Compares one file; returns the report line, or the failure.
fn compare(root: &Path, path: &Path) -> Result<String, String> {
    let rel = relative(root, path);
    let expectation = EXPECTATIONS.iter().find(|e| e.file == rel);
    let damaged = DAMAGED.contains(&rel.as_str());
    let mut ours = decode_ours(path);
    let output = run_tshark(path, expectation.map_or(&[], |e| e.decode_as), damaged);
    let (mut theirs, matched) = tshark_views(&output, expectation);
    if damaged {
        // Each reader stops at the damage in its own way (tshark may dissect the partial
        // packet at the cut); the packets both read are compared.
        let n = ours.len().min(theirs.len());
        ours.truncate(n);
        theirs.truncate(n);
    }
    // Where tshark's fields give no length (IPv6 payload length 0 without a jumbo option),
    // the packet's bytes are taken as ours, and counted in the report line.
    let mut unknown_len = 0;
    for (a, b) in ours.iter().zip(theirs.iter_mut()) {
        if b.inner.is_some() && b.ip_len.is_none() && a.inner == b.inner {
            b.ip_len = a.ip_len;
            unknown_len += 1;
        }
    }
    let mut failures = Vec::new();
    for (k, n) in expectation
        .map_or(&[][..], |e| e.known)
        .iter()
        .zip(&matched)
    {
        let want = match k {
            Known::Cut { packets, .. } => *packets,
            Known::Substitute { .. } => 1,
        };
        if *n != want {
            failures.push(match k {
                Known::Cut { at, .. } => format!("cut {at:?} matches {n} packets, want {want}"),
                Known::Substitute { frame, .. } => format!("no frame {frame} to substitute"),
            });
        }
    }
    let (mine, tshark) = (Summary::of(&ours), Summary::of(&theirs));
    if mine.n_packets != tshark.n_packets {
        failures.push(format!(
            "{} packets, tshark {}",
            mine.n_packets, tshark.n_packets
        ));
    }
    if mine.bytes != tshark.bytes {
        let differ: Vec<String> = mine
            .bytes
            .iter()
            .filter(|(flow, n)| tshark.bytes.get(*flow) != Some(*n))
            .map(|(flow, n)| format!("{flow}: {n}, tshark {:?}", tshark.bytes.get(flow)))
            .take(8)
            .collect();
        failures.push(format!("flow bytes differ: {differ:?}"));
    }
    if mine.per_kind != tshark.per_kind {
        failures.push(format!(
            "packets per tunnel type {:?}, tshark {:?}",
            mine.per_kind, tshark.per_kind
        ));
    }
    for (what, a, b) in [
        ("tunnelled inner", &mine.tunnelled, &tshark.tunnelled),
        ("innermost", &mine.all, &tshark.all),
    ] {
        let only_ours: Vec<String> = a.difference(b).map(Flow::to_string).collect();
        let only_tshark: Vec<String> = b.difference(a).map(Flow::to_string).collect();
        if !only_ours.is_empty() || !only_tshark.is_empty() {
            failures.push(format!(
                "{what} 5-tuples: only ours {only_ours:?}, only tshark's {only_tshark:?}"
            ));
        }
    }
    let differing: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| format!("frame {}: ours {a}; tshark {b}", i + 1))
        .collect();
    if !differing.is_empty() {
        failures.push(format!(
            "{} packets differ, first ones:\n      {}",
            differing.len(),
            differing[..differing.len().min(8)].join("\n      ")
        ));
    }
    if failures.is_empty() {
        let known = matched.iter().sum::<usize>();
        Ok(format!(
            "{rel}: {} packets, tunnels {:?}, {} tunnelled inner 5-tuples, {} innermost 5-tuples{}{}",
            mine.n_packets,
            mine.per_kind,
            mine.tunnelled.len(),
            mine.all.len(),
            if known > 0 {
                format!(" ({known} packets under known differences)")
            } else {
                String::new()
            },
            if unknown_len > 0 {
                format!(" ({unknown_len} IPv6 lengths tshark does not give)")
            } else {
                String::new()
            }
        ))
    } else {
        Err(format!("{rel}:\n    {}", failures.join("\n    ")))
    }
}

#[test]
fn every_capture_matches_tshark() {
    const TEST: &str = "real_captures::every_capture_matches_tshark";
    let Some(root) = shared_pcaps(TEST) else {
        return;
    };
    let Some(version) = tshark_version(TEST) else {
        return;
    };
    // Every folder, found at run time: a new folder or file is compared without a change here.
    let mut files = captures(&root);
    assert!(files.len() > 300, "only {} captures found", files.len());
    for skipped in UNCOMPARABLE {
        assert!(
            files.iter().any(|f| relative(&root, f) == *skipped),
            "UNCOMPARABLE names {skipped}, which is not a capture"
        );
    }
    files.retain(|f| !UNCOMPARABLE.contains(&relative(&root, f).as_str()));
    // A stale table entry would silently check nothing.
    for e in EXPECTATIONS {
        assert!(
            files.iter().any(|f| relative(&root, f) == e.file),
            "EXPECTATIONS names {}, which is not among the compared captures",
            e.file
        );
    }
    // A panic while reading one file's output is that file's failure, not the whole run's.
    let results = parallel(&files, |path| {
        std::panic::catch_unwind(|| compare(&root, path)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(format!("{}: panicked: {what}", relative(&root, path)))
        })
    });
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(line) => println!("{line}"),
            Err(failure) => failures.push(failure),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} captures differ from tshark ({version}; the expectations were set with \
         TShark 4.0.17):\n  {}",
        failures.len(),
        files.len(),
        failures.join("\n  ")
    );
}

#[test]
fn every_capture_replays() {
    let Some(root) = shared_pcaps("real_captures::every_capture_replays") else {
        return;
    };
    let files = captures(&root);
    assert!(files.len() > 60, "only {} captures found", files.len());
    for damaged in DAMAGED {
        assert!(
            root.join(damaged).is_file(),
            "DAMAGED names {damaged}, not a capture"
        );
    }
    let results = parallel(&files, |path| {
        let rel = relative(&root, path);
        let shown = path.to_string_lossy();
        let out = run(&["replay", "--no-progress", &shown]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut failures = Vec::new();
        let damaged = DAMAGED.contains(&rel.as_str());
        let want = if damaged { 1 } else { 0 };
        if out.status.code() != Some(want) {
            failures.push(format!("exit {:?}, want {want}", out.status.code()));
        }
        if damaged && !stderr.contains(&*shown) {
            failures.push("the error does not name the file".to_owned());
        }
        // Parsed here rather than with `events`, which panics without naming the file.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut evs = Vec::new();
        for line in stdout.lines() {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(ev) if ev.is_object() => evs.push(ev),
                Ok(_) | Err(_) => failures.push(format!("not a JSON object line: {line:?}")),
            }
        }
        let n_stats = evs.iter().filter(|e| e["event_type"] == "stats").count();
        let last_is_stats = evs.last().is_some_and(|e| e["event_type"] == "stats");
        if n_stats != 1 || !last_is_stats {
            failures.push(format!(
                "{n_stats} stats events, last event {:?}",
                evs.last().map(|e| e["event_type"].clone())
            ));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{rel}: {}\n    stderr: {stderr}",
                failures.join("; ")
            ))
        }
    });
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        failures.is_empty(),
        "{} of {} captures failed to replay:\n  {}",
        failures.len(),
        files.len(),
        failures.join("\n  ")
    );
}
