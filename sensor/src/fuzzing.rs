//! Entry points for coverage-guided fuzzing (`sensor/fuzz/`), one per parser that reads bytes
//! chosen by someone else: capture files, the layer walk, our decoder views, DNS answers, the
//! TOML configuration, the baseline file, the control-plane readers, and packets through the
//! whole pipeline to the EVE lines it writes.
//!
//! The fuzz targets are one-line calls into this module, and the stable test suite replays
//! every committed corpus file through the same functions, so a crash found by the fuzzer
//! stays a regression test on the stable toolchain. Each function must return normally on any
//! input; the checks inside are invariants that hold for every input (a view's payload lies
//! inside its bytes, a decoded packet's inner depth is within its tunnel stack).

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use flowtable::Timestamp;

use crate::alert::{EventWriter, OutputTarget};
use crate::capture::CaptureRecord;
use crate::capture::replay::ReplayReader;
use crate::config::Config;
use crate::control::{Format, MirrorChange, Provider, ReadError, ReadOptions, ReadOutcome, sniff};
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

/// Year given to RFC 3164 syslog timestamps (they have none) by [`control_records`].
const FUZZ_SYSLOG_YEAR: i32 = 2026;

/// The control-plane readers (`sensor/src/control/`): CloudTrail, Azure Activity (JSON and
/// CSV), GCP audit logs, Cisco/Juniper/Arista syslog lines, device configuration snapshots,
/// and the asset and change-record files. The first byte picks the way in:
///
/// - 0: the content sniffed and dispatched as `--audit` does ([`crate::control::read_bytes`]);
/// - 1 to 4: one reader directly (JSON framing, Azure CSV, syslog, device configuration), so
///   bytes the sniffer would send elsewhere still reach each one;
/// - 5: the bytes as a file through [`crate::control::read_file`] (gzip told by its magic, a
///   damaged stream keeps the whole lines before the damage);
/// - 6: the bytes gzip-compressed into a file: the outcome must be the one of the same bytes
///   read uncompressed (gzip framing is transparent);
/// - 7: the asset file and the change-record file loaders on the bytes.
///
/// Invariants checked on what a reader returns, beyond "no panic":
/// - every change and every record error names the file it was given, and its place lies in
///   the input (a line number at most one past the last newline, a record index below the
///   records counted);
/// - each record is a change, ignored, or one error, at most: changes + ignored + record
///   errors never exceed the records counted (a snapshot's changes are its sessions, and one
///   curly-brace Junos line may hold several: there only ignored + errors are bounded);
/// - a reader yields only its own providers (JSON: AWS, Azure, GCP; CSV: Azure; syslog and
///   snapshots: Cisco, Juniper, Arista);
/// - fields come from the input: a device's host, session name, sources, actor, comment and
///   destination interface appear in the text (ASCII case aside: Cisco commands are read
///   lower-cased; a snapshot without `hostname` is `device`, Junos's unnamed port-mirroring
///   instance `default`), and the strings AWS and GCP records are copied from verbatim (actor,
///   access key, issuer, caller address, user agent, account, region; GCP's resource name)
///   appear in the bytes when the input escapes nothing;
/// - the inventory built from the changes ([`crate::control::inventory::ControlInventory::build`],
///   judged against the default configuration) keeps every change, in time order, with one
///   verdict slot and one resolution each, and no session points past them.
///
/// Returns the number of changes checked (the stable test makes sure the corpus reaches the
/// checks at all).
pub fn control_records(data: &[u8], dir: &Path) -> usize {
    let Some((&selector, bytes)) = data.split_first() else {
        return 0;
    };
    let options = ReadOptions {
        syslog_year: FUZZ_SYSLOG_YEAR,
    };
    let file = dir.join(format!("mirrorwatch-fuzz-{}.audit", std::process::id()));
    let file_name: Arc<str> = Arc::from(file.display().to_string());
    let mut out = ReadOutcome::default();
    let reader = match selector % 8 {
        0 => {
            crate::control::read_bytes(bytes, &file_name, options, &mut out);
            sniff(bytes)
        }
        1 => {
            crate::control::json::read_json(bytes, &file_name, &mut out);
            Some(Format::Json)
        }
        2 => {
            crate::control::azure::read_csv(bytes, &file_name, &mut out);
            Some(Format::Csv)
        }
        3 => {
            crate::control::syslog::read(bytes, &file_name, FUZZ_SYSLOG_YEAR, &mut out);
            Some(Format::Syslog)
        }
        4 => {
            crate::control::device_config::read(bytes, &file_name, &mut out);
            Some(Format::DeviceConfig)
        }
        5 => {
            if std::fs::write(&file, bytes).is_err() {
                return 0;
            }
            crate::control::read_file(&file, options, &mut out);
            let _ = std::fs::remove_file(&file);
            // A gzip file's records are not places in these bytes, but in what they
            // decompress to: only the checks that do not look at the input apply.
            if bytes.starts_with(&[0x1f, 0x8b]) {
                None
            } else {
                sniff(bytes)
            }
        }
        6 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let Ok(compressed) = gz.write_all(bytes).and_then(|()| gz.finish()) else {
                return 0;
            };
            if std::fs::write(&file, compressed).is_err() {
                return 0;
            }
            crate::control::read_file(&file, options, &mut out);
            let _ = std::fs::remove_file(&file);
            let mut plain = ReadOutcome::default();
            crate::control::read_bytes(bytes, &file_name, options, &mut plain);
            assert_eq!(
                out.changes, plain.changes,
                "gzip framing changed the changes"
            );
            assert_eq!(
                (out.records, out.ignored, out.errors.len()),
                (plain.records, plain.ignored, plain.errors.len()),
                "gzip framing changed the counts"
            );
            sniff(bytes)
        }
        _ => {
            table_files(bytes, &file);
            return 0;
        }
    };
    check_read_outcome(bytes, &file_name, &out, reader);
    let changes = out.changes.len();
    check_inventory(out.changes);
    changes
}

/// Checks what the reader of `format` made of `bytes` (`None`: the bytes were not the text
/// read, as for a gzip file, and only the checks that do not look at the input apply).
fn check_read_outcome(bytes: &[u8], name: &Arc<str>, out: &ReadOutcome, format: Option<Format>) {
    let last_line = bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let place_ok = |unit: &str, index: u64| match unit {
        "line" => (1..=last_line).contains(&index) || format.is_none(),
        "record" => index < out.records,
        _ => false,
    };
    let mut record_errors = 0u64;
    for e in &out.errors {
        if let ReadError::Record {
            path, unit, index, ..
        } = e
        {
            record_errors += 1;
            assert_eq!(path, name, "an error names another file");
            assert!(
                place_ok(unit, *index),
                "error at {unit} {index}: outside the input"
            );
        }
    }
    // A record gives one change (a device snapshot's changes are its sessions, and one
    // curly-brace Junos line may hold several: they are not counted there).
    let changes = match format {
        Some(Format::Json | Format::Csv | Format::Syslog) => out.changes.len() as u64,
        Some(Format::DeviceConfig) | None => 0,
    };
    assert!(
        changes + out.ignored + record_errors <= out.records,
        "{changes} changes, {} ignored, {record_errors} errors from {} records",
        out.ignored,
        out.records
    );
    // Searched with `str::contains`: a byte-slice search compares through `memcmp`, which
    // libFuzzer intercepts at a cost that made these checks most of an execution. A JSON
    // string is valid UTF-8, so it is whole in the lossy text when it is in the bytes.
    let raw_text = String::from_utf8_lossy(bytes);
    let text = raw_text.to_ascii_lowercase();
    let escapes = bytes.contains(&b'\\');
    for c in &out.changes {
        let loc = &c.location;
        assert_eq!(&loc.file, name, "a change names another file");
        assert!(
            place_ok(loc.unit, loc.index),
            "change at {} {}: outside the input",
            loc.unit,
            loc.index
        );
        let device = matches!(
            c.provider,
            Provider::Cisco | Provider::Juniper | Provider::Arista
        );
        match format {
            Some(Format::Json) => assert!(!device, "a JSON record read as a device"),
            Some(Format::Csv) => assert_eq!(c.provider, Provider::Azure, "a CSV row not Azure"),
            Some(Format::Syslog | Format::DeviceConfig) => {
                assert!(device, "a device line read as a cloud record");
            }
            None => continue,
        }
        if device {
            device_fields_from(&text, c);
        } else if !escapes && matches!(c.provider, Provider::Aws | Provider::Gcp) {
            cloud_fields_from(&raw_text, c);
        }
    }
}

/// A device change's fields are pieces of the (lower-cased) input text.
fn device_fields_from(text: &str, c: &MirrorChange) {
    let within = |what: &str, value: &str| {
        assert!(
            text.contains(&value.to_ascii_lowercase()),
            "{what} {value:?} is not in the input"
        );
    };
    let host = c.account.as_deref().unwrap_or_default();
    // A snapshot without a `hostname` line is named `device`.
    if host != "device" {
        within("host", host);
    }
    let session = c.session_id.as_deref().unwrap_or_default();
    let Some(name) = session.strip_prefix(host).and_then(|s| s.strip_prefix('/')) else {
        panic_free_fail(&format!("session {session:?} is not {host:?}/NAME"));
        return;
    };
    // Junos names the port-mirroring instance of `forwarding-options port-mirroring` without
    // `instance NAME` `default`.
    if !(c.provider == Provider::Juniper && name == "default") {
        within("session name", name);
    }
    for source in &c.sources {
        for word in source.split_whitespace() {
            within("source", word);
        }
    }
    for (what, value) in [("actor", &c.actor), ("comment", &c.change_comment)] {
        if let Some(v) = value {
            within(what, v);
        }
    }
    if c.collector_ip.is_none() {
        if let Some(dest) = &c.collector {
            within("destination", dest);
        }
    }
}

/// The strings AWS and GCP readers copy from a JSON string as they are appear in the input
/// (when nothing is escaped, a JSON string's content is its bytes).
fn cloud_fields_from(text: &str, c: &MirrorChange) {
    let mut copied = vec![
        ("actor", &c.actor),
        ("actor_ip", &c.actor_ip),
        ("user_agent", &c.user_agent),
        ("account", &c.account),
        ("region", &c.region),
    ];
    match c.provider {
        Provider::Aws => copied.extend([
            ("actor_type", &c.actor_type),
            ("access_key", &c.access_key),
            ("session_issuer", &c.session_issuer),
        ]),
        _ => copied.push(("session_id", &c.session_id)),
    }
    for (what, value) in copied {
        if let Some(v) = value {
            assert!(
                text.contains(v.as_str()),
                "{what} {v:?} is not in the input"
            );
        }
    }
}

/// Builds and judges the inventory of `changes` against the default configuration.
fn check_inventory(changes: Vec<MirrorChange>) {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    let config = CONFIG.get_or_init(Config::default);
    let n = changes.len();
    let assets = crate::control::inventory::Assets::default();
    let inv =
        crate::control::inventory::ControlInventory::build(changes, &assets, config, &[], false);
    assert_eq!(inv.changes.len(), n, "the inventory lost or made changes");
    assert_eq!(inv.verdicts.len(), n, "a verdict slot per change");
    assert_eq!(inv.resolved.len(), n, "a resolution per change");
    assert!(
        inv.changes.windows(2).all(|w| w[0].time <= w[1].time),
        "changes out of time order"
    );
    for s in &inv.sessions {
        assert!(
            s.last_change < n.max(1),
            "session {} points past the changes",
            s.id
        );
    }
}

/// The asset and change-record loaders (`[control] assets`, `change_records`) on one file:
/// every row they keep or refuse is a row of the file (a CSV line, a JSON line, or an
/// element of a JSON array, which takes two bytes at least), and each refused row names the
/// file and a place in it.
fn table_files(bytes: &[u8], file: &Path) {
    if std::fs::write(file, bytes).is_err() {
        return;
    }
    let (_, asset_errors) = crate::control::inventory::Assets::load(file);
    let (records, record_errors) = crate::control::judge::load_change_records(file);
    let _ = std::fs::remove_file(file);
    let name = file.display().to_string();
    let last_line = bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let max_rows = last_line.max(bytes.len() as u64 / 2 + 1);
    let in_place = |path: &str, unit: &str, index: u64| {
        assert_eq!(path, name, "a row error names another file");
        match unit {
            "line" => assert!(
                (1..=last_line).contains(&index),
                "row error at line {index}"
            ),
            "record" => assert!(index < max_rows, "row error at record {index}"),
            _ => panic_free_fail(&format!("row error in unit {unit:?}")),
        }
    };
    for e in asset_errors.iter().chain(&record_errors) {
        if let crate::control::text::TableFileError::Row {
            path, unit, index, ..
        } = e
        {
            in_place(path, unit, *index);
        }
    }
    assert!(
        asset_errors.len() as u64 <= max_rows
            && (records.len() + record_errors.len()) as u64 <= max_rows,
        "more rows than the file can hold"
    );
    for r in &records {
        assert!(!r.id.is_empty(), "a change record without an id");
    }
}

/// Frames of one [`eve_round_trip`] input at most.
const MAX_EVE_FRAMES: usize = 2048;

/// Bytes of the capture name an [`eve_round_trip`] input chooses, at most.
const MAX_EVE_NAME: usize = 48;

/// Packet time of an [`eve_round_trip`] input's first frame: 2026-01-05T09:00:00Z, the start
/// of the generated cases.
const EVE_EPOCH_S: u64 = 1_767_603_600;

/// The configuration of [`eve_round_trip`]: the default detectors with their warm-ups off
/// and every alert the detectors can raise switched on (so a short input reaches them), and
/// tables sized for a few thousand frames, so that starting a pipeline per input stays cheap.
const EVE_CONFIG: &str = r#"
[networks]
home = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8", "2001:db8:10::/48"]
[flows]
capacity = 4096
[tunnels]
capacity = 256
max_inner_flows = 1024
[extraneous]
warmup_s = 0
pending_capacity = 1024
resume_memory = 4096
[beacon]
warmup_s = 0
pair_capacity = 1024
packet_tracks = 64
known_destinations_capacity = 1024
new_destination_alerts = true
alert_keepalives = true
[pipeline]
workers = 1
batch_size = 64
queue_batches = 4
"#;

/// Hostile packets through the whole replay path to the EVE lines it writes: the pipeline
/// with its detectors (one worker, `--flows`), the event writer and a file output, then the
/// closing `stats` event, as `mirrorwatch replay` runs them. The input is
///
/// `link selector (1) | name length (1) | name | frames`, each frame `gap (2, BE) | length
/// (2, BE) | bytes`,
///
/// where the selector picks the link type as [`layer_walk`] does, the name (any bytes, read
/// as lossy UTF-8) is the capture's file name, and a gap is milliseconds, or seconds when its
/// top bit is set, after the frame before (the first frame is at 2026-01-05T09:00:00Z). A
/// frame in memory skips the capture reader, which [`capture_file`] covers: one execution is
/// a pipeline start, the frames, and reading one small file back.
///
/// Invariants of the output file, beyond "no panic":
/// - it is UTF-8 JSON lines, and as many bytes as the writer says it handed over;
/// - every line is one JSON object with a string `event_type` and a `timestamp` that reads
///   as RFC 3339 and lies between the first and the last frame's time;
/// - no line holds a raw control character or one [`crate::alert::escape::needs_escape`]
///   names (each is written `\uXXXX`);
/// - names taken from the input survive escaping: every event's `pcap_filename` decodes to
///   the chosen name exactly, and a beacon alert's `evidence.destination.name` is the end
///   of a DNS question name one of the input's packets carries (ASCII case aside);
/// - nothing is lost on the way out: one `stats` event, whose packet and byte counts are the
///   frames pushed and whose alert counts per detector are the alert lines written; as many
///   `flow` and `tunnel` lines as the pipeline reports writing.
///
/// Returns the number of lines checked.
pub fn eve_round_trip(data: &[u8], dir: &Path) -> usize {
    static CONFIG: OnceLock<Option<Config>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| Config::parse(EVE_CONFIG, Path::new("fuzz-eve.toml")).ok())
        .as_ref();
    // A configuration the sensor refuses would make every input a no-op.
    assert!(config.is_some(), "EVE_CONFIG is not a valid configuration");
    let Some(config) = config else {
        return 0;
    };
    let Some((&selector, rest)) = data.split_first() else {
        return 0;
    };
    let link = FUZZ_LINKS[usize::from(selector) % FUZZ_LINKS.len()];
    let Some((&name_len, rest)) = rest.split_first() else {
        return 0;
    };
    let (name, frames) = rest.split_at((usize::from(name_len) % MAX_EVE_NAME).min(rest.len()));
    let name: Arc<str> = Arc::from(String::from_utf8_lossy(name).as_ref());

    let out_path = dir.join(format!("mirrorwatch-fuzz-{}.eve.json", std::process::id()));
    let Ok(writer) = EventWriter::spawn(&OutputTarget::File(out_path.clone())) else {
        return 0;
    };
    let options = crate::pipeline::PipelineOptions {
        workers: 1,
        flow_records: true,
        drop_when_full: false,
    };
    let Ok(mut pipeline) = crate::pipeline::Pipeline::start(config, options, || writer.sink())
    else {
        let _ = writer.finish();
        let _ = std::fs::remove_file(&out_path);
        return 0;
    };
    pipeline.start_input(Some(Arc::clone(&name)));
    let mut pushed = 0u64;
    let mut bytes = 0u64;
    let mut ts = Timestamp::from_secs_nanos(EVE_EPOCH_S, 0);
    let first_ts = ts;
    let mut pushed_ok = true;
    for (gap, frame) in eve_frames(frames).take(MAX_EVE_FRAMES) {
        ts = Timestamp(ts.0.saturating_add(gap));
        let rec = CaptureRecord {
            ts,
            link,
            data: frame,
            orig_len: frame.len() as u32,
        };
        pushed_ok &= pipeline.push(&rec).is_ok();
        pushed += 1;
        bytes += frame.len() as u64;
    }
    let report = pipeline.finish();
    let mut sink = writer.sink();
    sink.set_pcap_filename(Some(Arc::clone(&name)));
    let stats_ok = match &report {
        Ok(r) => crate::stats::write_stats(&mut sink, r, 0).is_ok(),
        Err(_) => false,
    };
    drop(sink);
    let written = writer.finish();
    let text = std::fs::read(&out_path);
    let _ = std::fs::remove_file(&out_path);
    // A file in memory cannot fail to take a few lines: an error here is the writer's.
    assert!(
        pushed_ok && stats_ok,
        "the pipeline could not write its events"
    );
    let (Ok(report), Ok(written), Ok(text)) = (report, written, text) else {
        panic_free_fail("the writer or the pipeline failed");
        return 0;
    };
    assert_eq!(
        text.len() as u64,
        written,
        "bytes handed over are not the file"
    );
    let Ok(text) = String::from_utf8(text) else {
        panic_free_fail("the events are not UTF-8");
        return 0;
    };
    let last_ts = if pushed > 0 { ts } else { Timestamp::ZERO };
    let first_us = if pushed > 0 { first_ts.0 / 1000 } else { 0 };
    let lines = text.lines().count();
    let mut counts = EveCounts::default();
    let input = EveInput {
        name: &name,
        times_us: (first_us, last_ts.0 / 1000),
        frames,
        link,
        decode: &config.decode,
    };
    for line in text.lines() {
        check_eve_line(line, &input, &mut counts);
    }
    assert_eq!(counts.stats, 1, "one stats event");
    assert_eq!(
        counts.packets, pushed,
        "stats.packets is not the frames pushed"
    );
    assert_eq!(counts.bytes, bytes, "stats.bytes is not the bytes pushed");
    assert_eq!(
        counts.alerts_by_detector, counts.alerts_in_stats,
        "alert lines per detector differ from stats.alerts"
    );
    let flow_events: u64 = report.workers.iter().map(|w| w.flow_events).sum();
    assert_eq!(counts.flows, flow_events, "flow lines lost or made");
    assert_eq!(
        counts.tunnels, report.tunnel_events,
        "tunnel lines lost or made"
    );
    lines
}

/// `assert!(false, ..)` without the constant-assertion lint: a failed invariant.
#[track_caller]
fn panic_free_fail(what: &str) {
    assert!(what.is_empty(), "{what}");
}

/// The frames of an [`eve_round_trip`] input with their gap after the frame before, in
/// nanoseconds; a frame cut by the end of the input keeps the bytes present.
fn eve_frames(mut rest: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    std::iter::from_fn(move || {
        let header = rest.get(..4)?;
        let gap = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let body = &rest[4..];
        let (frame, after) = body.split_at(len.min(body.len()));
        rest = after;
        let gap_ns = if gap & 0x8000 != 0 {
            u64::from(gap & 0x7fff) * 1_000_000_000
        } else {
            u64::from(gap) * 1_000_000
        };
        Some((gap_ns, frame))
    })
}

/// What the lines of one [`eve_round_trip`] output are checked against.
struct EveInput<'a> {
    /// The capture's name.
    name: &'a str,
    /// First and last frame time, in microseconds (as the events write them).
    times_us: (u64, u64),
    /// The frames, as the input holds them.
    frames: &'a [u8],
    link: LinkType,
    decode: &'a DecodeConfig,
}

/// What the lines of one [`eve_round_trip`] output added up to.
#[derive(Default)]
struct EveCounts {
    /// The DNS question names of the input, found the first time an alert names a
    /// destination.
    question_names: Option<Vec<Vec<u8>>>,
    stats: u64,
    packets: u64,
    bytes: u64,
    flows: u64,
    tunnels: u64,
    alerts_by_detector: std::collections::BTreeMap<String, u64>,
    alerts_in_stats: std::collections::BTreeMap<String, u64>,
}

fn check_eve_line(line: &str, input: &EveInput<'_>, counts: &mut EveCounts) {
    let (first_us, last_us) = input.times_us;
    assert!(
        line.chars()
            .all(|c| c >= ' ' && !crate::alert::escape::needs_escape(c)),
        "a raw control or unescaped character in {line:?}"
    );
    let Ok(serde_json::Value::Object(event)) = serde_json::from_str(line) else {
        panic_free_fail("a line that is not one JSON object");
        return;
    };
    let event_type = event.get("event_type").and_then(|v| v.as_str());
    let timestamp = event.get("timestamp").and_then(|v| v.as_str());
    let (Some(event_type), Some(timestamp)) = (event_type, timestamp) else {
        panic_free_fail("an event without event_type or timestamp");
        return;
    };
    let t = crate::control::text::parse_rfc3339(timestamp).map(|t| t.0 / 1000);
    assert!(
        t.is_some_and(|t| (first_us..=last_us).contains(&t)),
        "{event_type} timestamp {timestamp} outside the frames' times"
    );
    assert_eq!(
        event.get("pcap_filename").and_then(|v| v.as_str()),
        Some(input.name),
        "{event_type}: pcap_filename is not the capture's name"
    );
    let number = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_u64);
    match event_type {
        "stats" => {
            counts.stats += 1;
            let stats = event.get("stats");
            counts.packets = number(stats.and_then(|s| s.get("packets"))).unwrap_or(u64::MAX);
            counts.bytes = number(stats.and_then(|s| s.get("bytes"))).unwrap_or(u64::MAX);
            if let Some(alerts) = stats
                .and_then(|s| s.get("alerts"))
                .and_then(|a| a.as_object())
            {
                for (detector, n) in alerts {
                    let n = n.as_u64().unwrap_or(u64::MAX);
                    if n > 0 {
                        counts.alerts_in_stats.insert(detector.clone(), n);
                    }
                }
            }
        }
        "flow" => counts.flows += 1,
        "tunnel" => counts.tunnels += 1,
        "alert" => {
            let detector = event.get("detector").and_then(|v| v.as_str()).unwrap_or("");
            *counts
                .alerts_by_detector
                .entry(detector.to_owned())
                .or_default() += 1;
            let dest_name = event
                .get("evidence")
                .and_then(|e| e.get("destination"))
                .and_then(|d| d.get("name"))
                .and_then(|n| n.as_str());
            if let Some(dest_name) = dest_name {
                let names = counts
                    .question_names
                    .get_or_insert_with(|| question_names(input));
                assert!(
                    names
                        .iter()
                        .any(|q| q.ends_with(dest_name.to_ascii_lowercase().as_bytes())),
                    "destination name {dest_name:?} is in no DNS question of the input"
                );
            }
        }
        _ => {}
    }
}

/// Every DNS question name (lower-cased) the frames of an [`eve_round_trip`] input carry,
/// found by decoding each frame as the pipeline does and reading its transport payload as
/// DNS.
fn question_names(input: &EveInput<'_>) -> Vec<Vec<u8>> {
    let decoder = Decoder::new(input.decode.clone());
    let mut counters = DecodeCounters::default();
    let mut names = Vec::new();
    for (_, frame) in eve_frames(input.frames).take(MAX_EVE_FRAMES) {
        let packet = decoder.decode(input.link, frame, frame.len() as u32, &mut counters);
        let payload = packet.inner.as_ref().map_or(&[][..], |p| p.l4_payload);
        if let Some(dns) = DnsHeaderSlice::from_slice(payload) {
            let mut name = [0u8; MAX_NAME_LEN];
            if let Some(len) = dns.question_name(&mut name) {
                names.push(name[..len.min(MAX_NAME_LEN)].to_ascii_lowercase());
            }
        }
    }
    names
}

fn fuzz_decode_config() -> DecodeConfig {
    DecodeConfig {
        probe_nonstandard_ports: true,
        ..DecodeConfig::default()
    }
}
