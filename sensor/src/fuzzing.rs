//! Entry points for coverage-guided fuzzing (`sensor/fuzz/`), one per parser that reads bytes
//! chosen by someone else: capture files, the layer walk, our decoder views, DNS answers, the
//! TOML configuration and the baseline file.
//!
//! The fuzz targets are one-line calls into this module, and the stable test suite replays
//! every committed corpus file through the same functions, so a crash found by the fuzzer
//! stays a regression test on the stable toolchain. Each function must return normally on any
//! input; the checks inside are invariants that hold for every input (a view's payload lies
//! inside its bytes, a decoded packet's inner depth is within its tunnel stack).

use std::io::Write as _;
use std::path::Path;

use crate::capture::replay::ReplayReader;
use crate::decode::dns::{DnsHeaderSlice, MAX_NAME_LEN};
use crate::decode::link::{LinkType, NullSlice, Sll2Slice};
use crate::decode::{
    DecodeConfig, DecodeCounters, Decoder, erspan, geneve, gre, icmp, mpls, vxlan,
};

/// Link types the walk is fuzzed on: every one the readers accept, plus one it does not know.
const FUZZ_LINKS: [LinkType; 9] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType(147),
];

/// Most packets of one capture file decoded per input: enough for every code path of the
/// reader, small enough that a fuzzer's execution stays fast.
const MAX_PACKETS_PER_FILE: usize = 4096;

/// A whole capture file (pcap, pcapng, gzip or zstd framing, told apart by magic as in
/// replay): every packet read is decoded. `dir` holds the scratch file, because the reader
/// opens paths (it takes a file's size and name for its errors).
pub fn capture_file(data: &[u8], dir: &Path) {
    let path = dir.join(format!("mirrorwatch-fuzz-{}.cap", std::process::id()));
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return;
    }
    if let Ok(mut reader) = ReplayReader::open(&path) {
        let decoder = Decoder::new(fuzz_decode_config());
        let mut counters = DecodeCounters::default();
        let mut n = 0;
        while let Ok(Some(rec)) = reader.next_packet() {
            let _ = decoder.decode(rec.link, rec.data, rec.orig_len, &mut counters);
            n += 1;
            if n >= MAX_PACKETS_PER_FILE {
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// The layer walk on one frame; the first byte picks the link type.
pub fn layer_walk(data: &[u8]) {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let link = FUZZ_LINKS[usize::from(selector) % FUZZ_LINKS.len()];
    let decoder = Decoder::new(fuzz_decode_config());
    let mut counters = DecodeCounters::default();
    let packet = decoder.decode(link, frame, frame.len() as u32, &mut counters);
    assert!(
        packet.inner_depth <= packet.tunnels.len(),
        "inner depth beyond the tunnel stack"
    );
}

/// Our own decoder views; the first byte picks the view. Whatever a view accepts, its header
/// and payload lie inside the bytes it was given.
pub fn decoder_views(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let within = |header_len: usize, payload: &[u8]| {
        assert!(header_len <= bytes.len(), "header beyond the bytes");
        assert_eq!(
            header_len + payload.len(),
            bytes.len(),
            "payload does not follow the header"
        );
    };
    match selector % 11 {
        0 => {
            if let Ok(v) = vxlan::VxlanSlice::from_slice(bytes) {
                let _ = (v.vni(), v.flags());
                within(v.header_len(), v.payload());
            }
        }
        1 => {
            if let Ok(v) = vxlan::VxlanSlice::from_slice_strict(bytes) {
                within(v.header_len(), v.payload());
            }
        }
        2 | 3 => {
            let view = if selector % 11 == 2 {
                geneve::GeneveSlice::from_slice(bytes)
            } else {
                geneve::GeneveSlice::from_slice_strict(bytes)
            };
            if let Ok(v) = view {
                let _ = (
                    v.version(),
                    v.vni(),
                    v.protocol_type(),
                    v.oam(),
                    v.critical(),
                );
                let opts: usize = v.options().map(|o| o.total_len()).sum();
                assert!(opts <= v.opt_len_bytes(), "options beyond their length");
                within(v.header_len(), v.payload());
            }
        }
        4 => {
            if let Ok(v) = gre::GreSlice::from_slice(bytes) {
                let _ = (v.key(), v.sequence(), v.ack(), v.checksum(), v.call_id());
                let _ = (v.payload_length(), v.nvgre_vsid(), v.nvgre_flow_id());
                within(v.header_len(), v.payload());
            }
        }
        5 => {
            if let Ok(v) = gre::PppSlice::from_slice(bytes) {
                let _ = v.protocol();
                within(v.header_len(), v.payload());
            }
        }
        6 => {
            if let Ok(v) = erspan::Erspan2Slice::from_slice(bytes) {
                let _ = (v.session_id(), v.vlan(), v.index(), v.truncated());
                within(v.header_len(), v.payload());
            }
        }
        7 => {
            if let Ok(v) = erspan::Erspan3Slice::from_slice(bytes) {
                let _ = (v.session_id(), v.timestamp(), v.platform_id(), v.sgt());
                within(v.header_len(), v.payload());
            }
        }
        8 => {
            let max_labels = usize::from(bytes.first().copied().unwrap_or(0) % 16);
            if let Ok(v) = mpls::MplsSlice::from_slice(bytes, max_labels) {
                assert_eq!(v.labels().count(), v.label_count(), "label count");
                let _ = (v.top_label(), v.payload_kind());
                within(v.header_len(), v.payload());
            }
        }
        9 => {
            if let Ok(v) = Sll2Slice::from_slice(bytes) {
                within(v.header_len(), v.payload());
            }
            if let Ok(v) = NullSlice::from_slice(bytes) {
                within(v.header_len(), v.payload());
            }
        }
        _ => {
            let _ = icmp::quoted_flow(bytes);
        }
    }
}

/// A DNS message as the name cache reads it: header, first question name, every address.
pub fn dns_message(data: &[u8]) {
    let Some(dns) = DnsHeaderSlice::from_slice(data) else {
        return;
    };
    let _ = (dns.id(), dns.is_response(), dns.rcode());
    let mut name = [0u8; MAX_NAME_LEN];
    if let Some(len) = dns.question_name(&mut name) {
        assert!(len <= MAX_NAME_LEN, "name longer than its buffer");
    }
    let mut addresses = 0usize;
    dns.for_each_address(|_| addresses += 1);
    // An address record takes at least 11 bytes of the message (a 1-byte root name, type,
    // class, TTL, length) plus 4 of data.
    assert!(
        addresses <= data.len() / 15 + 1,
        "more addresses than the message can hold"
    );
}

/// The TOML configuration, as `--config FILE` reads it.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = crate::config::Config::parse(text, Path::new("fuzz.toml")) {
        // A configuration accepted once must be accepted again by a reload to itself.
        let (_, changed) = config.reloaded(&config);
        assert!(
            changed.is_empty(),
            "a reload to the same file changed {changed:?}"
        );
    }
}

/// The beacon baseline file (`--baseline FILE`), read through the same loader as a run.
pub fn baseline_file(data: &[u8], dir: &Path) {
    let path = dir.join(format!("mirrorwatch-fuzz-{}.baseline", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let config = crate::detect::beacon::BeaconConfig {
        enabled: true,
        baseline_file: path.display().to_string(),
        known_destinations_capacity: 1024,
        ..Default::default()
    };
    if let Ok(known) = crate::detect::beacon::KnownDestinations::load(&config) {
        assert!(known.len() <= 1024, "baseline beyond its capacity");
    }
    let _ = std::fs::remove_file(&path);
}

fn fuzz_decode_config() -> DecodeConfig {
    DecodeConfig {
        probe_nonstandard_ports: true,
        ..DecodeConfig::default()
    }
}
