//! Mirror configurations from the control plane: cloud audit logs and network devices.
//!
//! The wire shows that a mirror exists; only the control plane shows who turned it on, when,
//! from where, and whether anyone approved it (MITRE DET0403 for T1020.001). Each reader
//! (`cloudtrail.rs`, `azure.rs`, `gcp.rs`, `syslog.rs`, `device_config.rs`) turns its format
//! into [`MirrorChange`]s; `inventory.rs` folds them into configured sessions, `judge.rs`
//! judges each change against the approved baseline, `correlate.rs` joins sessions with the
//! tunnel sessions seen on the wire, `follow.rs` tails growing files in live mode.
//!
//! Contract: files are hostile input. The format is recognised from the content (gzip by its
//! magic bytes); a record that cannot be read is a counted [`ReadError`] naming the file and
//! the line or record, and reading goes on; a damaged file keeps everything read before the
//! damage. A file is read whole into memory, at most [`MAX_FILE_BYTES`] (audit files are
//! small: CloudTrail delivers one file per five minutes per region). Nothing here runs per
//! packet.

pub mod azure;
pub mod cloudtrail;
pub mod correlate;
pub mod device_config;
pub mod follow;
pub mod gcp;
pub mod inventory;
pub mod json;
pub mod judge;
pub mod shell;
pub mod syslog;
pub mod text;

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowtable::Timestamp;
use thiserror::Error;

use crate::decode::TunnelKind;

/// `[control]`: where the control-plane side of the baseline lives, and the correlation
/// windows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Asset file: resource ids to addresses (empty = none).
    pub assets: String,
    /// Change-record file (empty = none).
    pub change_records: String,
    /// Records and packets this far apart in time still correlate, in seconds.
    pub skew_s: u64,
    /// A configured session with no stream this long after its creation is silent, in
    /// seconds.
    pub silent_after_s: u64,
    /// Collectors whose traffic this sensor sees.
    pub visible_collectors: Vec<ipnet::IpNet>,
    /// Year of RFC 3164 syslog timestamps; 0 = the file's modification year.
    pub syslog_year: i32,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            assets: String::new(),
            change_records: String::new(),
            skew_s: 300,
            silent_after_s: 600,
            visible_collectors: Vec::new(),
            syslog_year: 0,
        }
    }
}

impl ControlConfig {
    /// Makes relative file names relative to the configuration file's directory (a case
    /// folder or `/etc/mirrorwatch` keeps its files beside its configuration).
    pub fn resolve_relative_to(&mut self, config_file: &Path) {
        let Some(dir) = config_file.parent() else {
            return;
        };
        for file in [&mut self.assets, &mut self.change_records] {
            if !file.is_empty() && Path::new(file.as_str()).is_relative() {
                *file = dir.join(file.as_str()).to_string_lossy().into_owned();
            }
        }
    }

    /// Range checks: `(key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.skew_s > 86_400 {
            return Err(("skew_s", "must be at most 86400".to_owned()));
        }
        if self.silent_after_s == 0 {
            return Err(("silent_after_s", "must be at least 1".to_owned()));
        }
        if self.syslog_year != 0 && !(1970..=9999).contains(&self.syslog_year) {
            return Err(("syslog_year", "must be 0 or a year from 1970".to_owned()));
        }
        Ok(())
    }
}

/// Decompressed bytes read from one file at most; the rest is an error, what came before is
/// kept.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Errors reported per file; each names the file and, for a record, where it is.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The gzip stream is damaged; records decompressed before the damage were kept.
    #[error("{path}: gzip stream damaged after {decompressed_bytes} bytes: {message}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// Bytes decompressed before the damage.
        decompressed_bytes: u64,
        /// The decoder's message.
        message: String,
    },
    /// The file is larger than [`MAX_FILE_BYTES`] once decompressed.
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes; the rest was not read")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// No reader recognises the content.
    #[error(
        "{path}: not a control-plane file this sensor reads (CloudTrail, Azure Activity, GCP audit log, device syslog or configuration)"
    )]
    Unrecognised {
        /// The file.
        path: PathBuf,
    },
    /// One record could not be read.
    #[error("{path}: {unit} {index}: {problem}")]
    Record {
        /// The file.
        path: Arc<str>,
        /// `line` or `record`.
        unit: &'static str,
        /// 1-based line number or 0-based record index.
        index: u64,
        /// What is wrong.
        problem: String,
    },
}

/// Who or what made the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// AWS VPC Traffic Mirroring (CloudTrail).
    Aws,
    /// Azure virtual network TAP (Activity Log).
    Azure,
    /// GCP Packet Mirroring (Cloud Audit Logs).
    Gcp,
    /// Cisco IOS, IOS-XE, NX-OS.
    Cisco,
    /// Juniper Junos.
    Juniper,
    /// Arista EOS.
    Arista,
}

impl Provider {
    /// Event name.
    pub const fn name(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
            Provider::Gcp => "gcp",
            Provider::Cisco => "cisco",
            Provider::Juniper => "juniper",
            Provider::Arista => "arista",
        }
    }
}

/// What the change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new object.
    Create,
    /// An existing object changed (also a create-or-update whose object already existed).
    Modify,
    /// The object removed.
    Delete,
}

impl Action {
    /// Event name.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Modify => "modify",
            Action::Delete => "delete",
        }
    }
}

/// What kind of object the change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// A mirror session proper (AWS session, GCP packet mirroring, a device's monitor
    /// session, an Azure TAP).
    Session,
    /// Where a session sends (AWS target).
    Target,
    /// Which traffic a session copies (AWS filter and filter rules).
    Filter,
    /// A source attached to a session (Azure NIC TAP configuration).
    SourceAttachment,
}

/// One control-plane change of a mirror configuration, whatever the provider.
///
/// Fields are `None` when the record does not say. Resource ids are kept as written;
/// `inventory.rs` resolves them to addresses.
#[derive(Clone, Debug, PartialEq)]
pub struct MirrorChange {
    /// Provider or device family.
    pub provider: Provider,
    /// The operation as the record names it (`CreateTrafficMirrorSession`,
    /// `Microsoft.Network/virtualNetworkTaps/write`, `v1.compute.packetMirrorings.insert`,
    /// `monitor session 1 type erspan-source`).
    pub operation: String,
    /// Create, modify or delete.
    pub action: Action,
    /// What it is about.
    pub object: Object,
    /// When the change was made (the record's own time).
    pub time: Timestamp,
    /// Session id (AWS `tms-`, Azure TAP resource id, GCP resource name, `device/session`).
    pub session_id: Option<String>,
    /// Id of the object changed when it is not the session (target, filter, TAP
    /// configuration).
    pub object_id: Option<String>,
    /// Mirrored source: ENI, NIC, subnets, instances, interfaces.
    pub sources: Vec<String>,
    /// Mirrored source address, when the record gives it.
    pub source_ip: Option<IpAddr>,
    /// Collector resource: AWS target id, ENI, NLB or GWLB endpoint; Azure NIC IP
    /// configuration or load balancer front end; GCP forwarding rule; device destination.
    pub collector: Option<String>,
    /// Collector address, when the record gives it.
    pub collector_ip: Option<IpAddr>,
    /// Encapsulation on the wire, when the provider fixes it.
    pub kind: Option<TunnelKind>,
    /// VNI or ERSPAN session id on the wire, when the record gives it.
    pub tunnel_id: Option<u32>,
    /// Destination UDP port (Azure TAP).
    pub dest_port: Option<u16>,
    /// Filter id or CIDRs and direction (GCP).
    pub filter: Option<String>,
    /// AWS session number (priority among the ENI's sessions).
    pub session_number: Option<u32>,
    /// AWS `PacketLength`.
    pub packet_length: Option<u32>,
    /// Who: ARN, UPN, principal e-mail, device user.
    pub actor: Option<String>,
    /// Identity type (`IAMUser`, `AssumedRole`, ...).
    pub actor_type: Option<String>,
    /// AWS access key id.
    pub access_key: Option<String>,
    /// AWS session issuer (role ARN of an assumed role).
    pub session_issuer: Option<String>,
    /// Where the change came from (an address, or a service name such as
    /// `ec2.amazonaws.com`).
    pub actor_ip: Option<String>,
    /// Client software.
    pub user_agent: Option<String>,
    /// AWS account, Azure subscription, GCP project, or the device's host name.
    pub account: Option<String>,
    /// AWS region, Azure resource group, GCP region.
    pub region: Option<String>,
    /// Why the attempt failed (`UnauthorizedOperation`, `Failed`, a status code); `None` when
    /// it succeeded.
    pub error: Option<String>,
    /// A change-record id the record itself names (Junos commit comment).
    pub change_comment: Option<String>,
    /// Where the record came from.
    pub location: Location,
}

/// Where a record is: file and line (1-based) or record index (0-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: Arc<str>,
    /// `line` or `record`.
    pub unit: &'static str,
    /// The line number or record index.
    pub index: u64,
}

impl MirrorChange {
    /// A change with only the mandatory fields set.
    pub fn new(
        provider: Provider,
        operation: impl Into<String>,
        action: Action,
        object: Object,
        time: Timestamp,
        location: Location,
    ) -> MirrorChange {
        MirrorChange {
            provider,
            operation: operation.into(),
            action,
            object,
            time,
            session_id: None,
            object_id: None,
            sources: Vec::new(),
            source_ip: None,
            collector: None,
            collector_ip: None,
            kind: None,
            tunnel_id: None,
            dest_port: None,
            filter: None,
            session_number: None,
            packet_length: None,
            actor: None,
            actor_type: None,
            access_key: None,
            session_issuer: None,
            actor_ip: None,
            user_agent: None,
            account: None,
            region: None,
            error: None,
            change_comment: None,
            location,
        }
    }
}

/// The formats the readers recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON documents: `{"Records": [...]}`, a JSON array, or one record per line; each
    /// record is dispatched to the reader its keys name (CloudTrail, EventBridge, Azure,
    /// GCP).
    Json,
    /// CSV with a header row (AzureActivity table export).
    Csv,
    /// Syslog lines (RFC 3164 or 5424) from network devices.
    Syslog,
    /// A device configuration snapshot.
    DeviceConfig,
}

impl Format {
    /// Name in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Syslog => "syslog",
            Format::DeviceConfig => "device-config",
        }
    }
}

/// Options of the readers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Year of RFC 3164 syslog timestamps (they have none); 0 = the year of the file's
    /// modification time.
    pub syslog_year: i32,
}

/// What reading some files gave.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    /// Mirror changes, in file order.
    pub changes: Vec<MirrorChange>,
    /// Records read that are not mirror changes (other API calls, other log lines).
    pub ignored: u64,
    /// Records read in all (mirror changes, ignored and unreadable).
    pub records: u64,
    /// Files read.
    pub files: u64,
    /// Unreadable records and files.
    pub errors: Vec<ReadError>,
}

/// What one record gave a reader.
pub(crate) enum Parsed {
    /// A mirror change (sometimes more than one: a device snapshot names several sessions).
    Changes(Vec<MirrorChange>),
    /// Not about mirroring.
    Ignored,
}

/// Lists the files under `paths` (directories in name order, one level deep).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| ReadError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| ReadError::Io {
                    path: path.clone(),
                    source,
                })?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Reads every file of `paths` (directories: their files in name order) into `out`.
pub fn read_paths(paths: &[PathBuf], options: ReadOptions, out: &mut ReadOutcome) {
    match expand_paths(paths) {
        Ok(files) => {
            for file in files {
                read_file(&file, options, out);
            }
        }
        Err(e) => out.errors.push(e),
    }
}

/// Reads one file into `out`: never fails, errors are counted in `out.errors`.
pub fn read_file(path: &Path, options: ReadOptions, out: &mut ReadOutcome) {
    out.files += 1;
    let bytes = match load(path, out) {
        Some(b) => b,
        None => return,
    };
    let mut options = options;
    if options.syslog_year == 0 {
        options.syslog_year = file_year(path);
    }
    let name: Arc<str> = Arc::from(path.display().to_string());
    read_bytes(&bytes, &name, options, out);
}

/// Reads the content of one file named `name` into `out`.
pub fn read_bytes(bytes: &[u8], name: &Arc<str>, options: ReadOptions, out: &mut ReadOutcome) {
    let Some(format) = sniff(bytes) else {
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            out.errors.push(ReadError::Unrecognised {
                path: PathBuf::from(name.as_ref()),
            });
        }
        return;
    };
    match format {
        Format::Json => json::read_json(bytes, name, out),
        Format::Csv => azure::read_csv(bytes, name, out),
        Format::Syslog => syslog::read(bytes, name, options.syslog_year, out),
        Format::DeviceConfig => device_config::read(bytes, name, out),
    }
}

/// Recognises the format from the content.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Some(Format::Json);
    }
    let first_line = trimmed.lines().next().unwrap_or("");
    if first_line.contains(',')
        && (first_line.contains("OperationNameValue") || first_line.contains("OperationName"))
    {
        return Some(Format::Csv);
    }
    if trimmed.lines().take(50).any(syslog::looks_like_syslog) {
        return Some(Format::Syslog);
    }
    if device_config::looks_like_config(trimmed) {
        return Some(Format::DeviceConfig);
    }
    None
}

/// Reads a file whole, decompressing gzip; errors go to `out` and whatever was read before
/// them is returned.
fn load(path: &Path, out: &mut ReadOutcome) -> Option<Vec<u8>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(source) => {
            out.errors.push(ReadError::Io {
                path: path.to_owned(),
                source,
            });
            return None;
        }
    };
    // Sized once from the file's length: growing by doubling copied and zeroed a large file
    // several times (measured: a third of `mirrorwatch audit`'s time on a 78 MB delivery).
    let len = file
        .metadata()
        .map_or(0, |m| m.len())
        .min(MAX_FILE_BYTES + 1);
    let mut raw = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    if let Err(source) = file.take(MAX_FILE_BYTES + 1).read_to_end(&mut raw) {
        out.errors.push(ReadError::Io {
            path: path.to_owned(),
            source,
        });
        return None;
    }
    let mut bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        let decoder = flate2::read::MultiGzDecoder::new(raw.as_slice());
        // `read_to_end` keeps what it decompressed before an error.
        if let Err(e) = decoder.take(MAX_FILE_BYTES + 1).read_to_end(&mut plain) {
            out.errors.push(ReadError::Gzip {
                path: path.to_owned(),
                decompressed_bytes: plain.len() as u64,
                message: e.to_string(),
            });
            // A line cut by the damage is not a record: keep whole lines only.
            let keep = plain.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            plain.truncate(keep);
        }
        plain
    } else {
        raw
    };
    if bytes.len() as u64 > MAX_FILE_BYTES {
        out.errors.push(ReadError::TooLarge {
            path: path.to_owned(),
        });
        bytes.truncate(MAX_FILE_BYTES as usize);
    }
    Some(bytes)
}

/// The year of the file's modification time (for RFC 3164 timestamps without a year).
fn file_year(path: &Path) -> i32 {
    let secs = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    text::civil_from_days((secs / 86_400) as i64).0
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use proptest::prelude::*;

    use super::*;

    /// One record of each format, written from the vendors' documented examples (the
    /// readers' own tests hold their fields).
    fn samples() -> Vec<&'static str> {
        vec![
            r#"{"Records":[{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"eventTime":"2026-01-05T08:52:17Z","eventSource":"ec2.amazonaws.com","eventName":"CreateTrafficMirrorSession","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.23","requestParameters":{"CreateTrafficMirrorSessionRequest":{"NetworkInterfaceId":"eni-1","TrafficMirrorTargetId":"tmt-1","VirtualNetworkId":7}},"responseElements":{"CreateTrafficMirrorSessionResponse":{"trafficMirrorSession":{"trafficMirrorSessionId":"tms-1"}}}}]}"#,
            "{\"time\":\"2026-01-05T08:48:31.1234567Z\",\"resourceId\":\"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/VIRTUALNETWORKTAPS/T\",\"operationName\":\"MICROSOFT.NETWORK/VIRTUALNETWORKTAPS/WRITE\",\"resultType\":\"Success\",\"callerIpAddress\":\"198.51.100.41\",\"properties\":{\"requestbody\":\"{\\\"properties\\\":{\\\"destinationPort\\\":4789}}\"}}\n",
            "TimeGenerated,OperationNameValue,ActivityStatusValue,Caller,_ResourceId\n2026-01-05T08:49:02Z,MICROSOFT.NETWORK/VIRTUALNETWORKTAPS/WRITE,Success,alice@contoso.com,/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworktaps/t\n",
            "{\"protoPayload\":{\"methodName\":\"v1.compute.packetMirrorings.insert\",\"resourceName\":\"projects/p/regions/r/packetMirrorings/pm\",\"request\":{\"collectorIlb\":{\"url\":\"projects/p/regions/r/forwardingRules/fr\"}},\"authenticationInfo\":{\"principalEmail\":\"a@example.com\"}},\"timestamp\":\"2026-01-05T08:41:12Z\"}\n",
            "<189>Jan  5 08:45:01 sw1 1: %PARSER-5-CFGLOG_LOGGEDCMD: User:admin  logged command:monitor session 1 type erspan-source\n<189>Jan  5 08:45:02 sw1 2: %PARSER-5-CFGLOG_LOGGEDCMD: User:admin  logged command:erspan-id 5\n<189>Jan  5 08:45:09 sw1 3: %SYS-5-CONFIG_I: Configured from console by admin on vty0 (10.0.0.50)\n",
            "<29>1 2026-01-05T08:46:00Z mx1 mgd 1 UI_CFG_AUDIT_SET - UI_CFG_AUDIT_SET: User 'j' set: [forwarding-options analyzer a output ip-address] <unconfigured> -> \"203.0.113.9\"\n<29>1 2026-01-05T08:46:30Z mx1 mgd 1 UI_COMMIT - UI_COMMIT: User 'j' requested 'commit' operation (comment: x)\n",
            "! Last configuration change at 08:45:12 UTC Mon Jan 5 2026 by netadmin\nhostname sw1\nmonitor session 1 type erspan-source\n destination\n  ip address 203.0.113.9\n",
            "## Last commit: 2026-01-05 08:45:12 UTC by jdoe\nforwarding-options {\n analyzer {\n  a {\n   output { ip-address 203.0.113.9; }\n  }\n }\n}\n",
        ]
    }

    fn read(bytes: &[u8]) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        read_bytes(
            bytes,
            &Arc::from("fuzz"),
            ReadOptions { syslog_year: 2026 },
            &mut out,
        );
        out
    }

    #[test]
    fn every_sample_gives_a_change() {
        for s in samples() {
            let out = read(s.as_bytes());
            assert!(out.errors.is_empty(), "{s}: {:?}", out.errors);
            assert_eq!(out.changes.len(), 1, "{s}");
        }
    }

    /// A damaged gzip file: its whole lines before the damage are read, the damage is one
    /// error naming the file.
    #[test]
    fn damaged_gzip_keeps_what_came_before() {
        let line = samples()[3];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for _ in 0..200 {
            enc.write_all(line.as_bytes()).unwrap();
        }
        let mut gz = enc.finish().unwrap();
        let cut = gz.len() * 2 / 3;
        gz.truncate(cut);
        let path = std::env::temp_dir().join(format!("mw-gz-{}.json.gz", std::process::id()));
        std::fs::write(&path, &gz).unwrap();
        let mut out = ReadOutcome::default();
        read_file(&path, ReadOptions::default(), &mut out);
        std::fs::remove_file(&path).unwrap();
        assert!(
            out.changes.len() > 10 && out.changes.len() < 200,
            "{}",
            out.changes.len()
        );
        assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
        assert!(
            matches!(out.errors[0], ReadError::Gzip { .. })
                && out.errors[0].to_string().contains("mw-gz-"),
            "{}",
            out.errors[0]
        );
    }

    #[test]
    fn malformed_lines_are_counted_and_named_and_reading_goes_on() {
        let good = samples()[3];
        let text = format!("{good}{{\"protoPayload\": oops}}\n{good}{}\n", &good[..40]);
        let out = read(text.as_bytes());
        assert_eq!(out.changes.len(), 2);
        assert_eq!(out.errors.len(), 2);
        assert!(
            out.errors[0]
                .to_string()
                .starts_with("fuzz: line 2: not JSON"),
            "{}",
            out.errors[0]
        );
        assert!(
            out.errors[1].to_string().starts_with("fuzz: line 4: "),
            "{}",
            out.errors[1]
        );
    }

    #[test]
    fn unknown_content_is_one_error_naming_the_file() {
        let out = read(b"\x00\x01 binary junk \xff");
        assert_eq!(out.errors.len(), 1);
        assert!(
            out.errors[0]
                .to_string()
                .starts_with("fuzz: not a control-plane file")
        );
        assert!(read(b"  \n").errors.is_empty(), "an empty file is no error");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary bytes: no panic, and every record is accounted for.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let out = read(&bytes);
            prop_assert!(out.changes.len() as u64 <= out.records.max(1) * 64);
        }

        /// Every sample cut anywhere, or with one byte changed: no panic.
        #[test]
        fn cut_or_corrupted_samples_never_panic(
            which in 0usize..8,
            cut in 0usize..4096,
            pos in 0usize..4096,
            byte in any::<u8>(),
        ) {
            let s = samples();
            let sample = s[which % s.len()].as_bytes();
            let cut = cut % (sample.len() + 1);
            let _ = read(&sample[..cut]);
            let mut changed = sample.to_vec();
            let i = pos % changed.len();
            changed[i] = byte;
            let _ = read(&changed);
        }

        /// Arbitrary text in each reader's shape (syslog headers, CSV rows, JSON keys).
        #[test]
        fn arbitrary_lines_in_known_shapes_never_panic(
            tail in "[ -~]{0,200}",
            shape in 0usize..5,
        ) {
            let text = match shape {
                0 => format!("<189>Jan  5 08:45:01 sw1 1: %PARSER-5-CFGLOG_LOGGEDCMD: {tail}\n"),
                1 => format!("<29>1 2026-01-05T08:46:00Z mx1 mgd 1 X - UI_CFG_AUDIT_SET: {tail}\n"),
                2 => format!("TimeGenerated,OperationNameValue\n{tail}\n"),
                3 => format!("{{\"eventName\":\"CreateTrafficMirrorSession\",\"eventTime\":\"{tail}\"}}\n"),
                _ => format!("! Last configuration change at {tail}\nmonitor session {tail}\n"),
            };
            let _ = read(text.as_bytes());
        }
    }
}
