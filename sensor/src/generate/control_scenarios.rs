//! Control-plane scenarios (issue 12): each writes a capture and the control-plane files that
//! configured (or did not configure) the mirrors in it, in one provider's or device's format.
//!
//! For `OUT.pcap` the generator also writes `OUT.audit/` (the records, given to `--audit`),
//! `OUT.assets.csv` (resource ids to addresses) and `OUT.changes.csv` (change records); the
//! case's `config.toml` names the last two. Every case plays the same situations, one mirror
//! session each, with its own collector so the correlation is unambiguous:
//!
//! | k | situation | collector | wire stream |
//! |---|---|---|---|
//! | 1 | approved by the inventory (actor allowed by `[[mirror.inventory]]`) | 10.9.0.10 | yes |
//! | 2 | approved by a change record (record 40 s after the stream starts) | 10.9.0.20 | yes |
//! | 3 | unapproved actor (collector in the inventory) | 10.9.0.30 | yes |
//! | 4 | external collector | 203.0.113.50 | yes |
//! | 5 | failed attempt (cloud providers only) | 10.9.0.50 | no |
//! | 6 | deleted 30 s into the capture, traffic 150 s in | 10.9.0.60 | yes, twice |
//! | 7 | a mirror on the wire with no record | 10.9.0.70 | yes |
//! | 8 | configured, never on the wire | 10.9.0.80 | no |
//!
//! Identities, ids and timings follow the vendors' documented formats; the seed picks ids,
//! request ids, ports and payloads, never the shape.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::conversation::{Conversation, DnsExchange, Endpoint, IcmpEcho, TimedFrame};
use super::encap::{Encap, EncapKind, EncapStack, GenevePayload};
use super::frame::{Link, LinkTags, mac_for};
use super::timeline::{BASE_TIME_S, Timeline};
use super::{GenerateError, GenerateSummary, ScenarioInfo};

/// The scenarios, registered in `generate/mod.rs`.
pub(super) const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "control-aws",
        description: "AWS Traffic Mirroring sessions in CloudTrail (Records file, gzip, and \
                      JSON lines) and their VXLAN streams: every control-plane situation",
    },
    ScenarioInfo {
        name: "control-azure",
        description: "Azure virtual network TAPs in the Activity Log (diagnostic JSON lines \
                      and an AzureActivity CSV export) and their VXLAN streams",
    },
    ScenarioInfo {
        name: "control-gcp",
        description: "GCP Packet Mirroring in Cloud Audit Logs (LogEntry JSON lines) and \
                      Geneve streams to the collector ILBs",
    },
    ScenarioInfo {
        name: "control-cisco",
        description: "Cisco IOS-XE ERSPAN sessions from CFGLOG syslog (RFC 3164) and a \
                      running-config snapshot, and their ERSPAN II streams",
    },
    ScenarioInfo {
        name: "control-juniper",
        description: "Junos analyzers from UI_CFG_AUDIT_SET/UI_COMMIT syslog (RFC 5424) and \
                      their GRE (transparent Ethernet) streams",
    },
    ScenarioInfo {
        name: "control-arista",
        description: "Arista EOS GRE monitor sessions from AAA accounting syslog and a \
                      startup-config snapshot, and their ERSPAN I streams",
    },
];

/// The provider or device a scenario speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Aws,
    Azure,
    Gcp,
    Cisco,
    Juniper,
    Arista,
}

/// Who makes a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// Allowed by the case's `[[mirror.inventory]]` entries.
    Approved,
    /// Named by the change record.
    Ticket,
    /// Nobody approved.
    Mallory,
}

/// One situation of the table in the module doc.
#[derive(Clone, Copy, Debug)]
struct Situation {
    k: u8,
    collector: Ipv4Addr,
    /// Change time, seconds relative to the capture start (negative: before).
    change_s: i64,
    who: Who,
    failed: bool,
    /// Wire stream start times, seconds into the capture.
    streams: &'static [u64],
    /// Deleted at, seconds into the capture.
    deleted_s: Option<i64>,
    /// A control-plane record exists.
    recorded: bool,
}

const SITUATIONS: [Situation; 8] = [
    situation(1, [10, 9, 0, 10], -463, Who::Approved, &[1]),
    situation(2, [10, 9, 0, 20], 40, Who::Ticket, &[2]),
    situation(3, [10, 9, 0, 30], -355, Who::Mallory, &[3]),
    situation(4, [203, 0, 113, 50], -200, Who::Approved, &[4]),
    Situation {
        failed: true,
        ..situation(5, [10, 9, 0, 50], -177, Who::Mallory, &[])
    },
    Situation {
        deleted_s: Some(30),
        ..situation(6, [10, 9, 0, 60], -600, Who::Approved, &[5, 150])
    },
    Situation {
        recorded: false,
        ..situation(7, [10, 9, 0, 70], 0, Who::Mallory, &[6])
    },
    situation(8, [10, 9, 0, 80], -120, Who::Approved, &[]),
];

const fn situation(
    k: u8,
    c: [u8; 4],
    change_s: i64,
    who: Who,
    streams: &'static [u64],
) -> Situation {
    Situation {
        k,
        collector: Ipv4Addr::new(c[0], c[1], c[2], c[3]),
        change_s,
        who,
        failed: false,
        streams,
        deleted_s: None,
        recorded: true,
    }
}

/// The mirrored host of situation `k`.
fn host(k: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 10, 0, 10 + k)
}

/// The outer source of device mirrors (the switch's ERSPAN origin / GRE source).
const DEVICE_ORIGIN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// Writes scenario `name` with `seed`: the capture at `out` and its control-plane files.
pub(super) fn generate(
    name: &str,
    rng: &mut ChaCha8Rng,
    out: &Path,
) -> Option<Result<GenerateSummary, GenerateError>> {
    let kind = match name {
        "control-aws" => Kind::Aws,
        "control-azure" => Kind::Azure,
        "control-gcp" => Kind::Gcp,
        "control-cisco" => Kind::Cisco,
        "control-juniper" => Kind::Juniper,
        "control-arista" => Kind::Arista,
        _ => return None,
    };
    Some(write_case(kind, rng, out))
}

fn write_case(
    kind: Kind,
    rng: &mut ChaCha8Rng,
    out: &Path,
) -> Result<GenerateSummary, GenerateError> {
    let situations: Vec<Situation> = SITUATIONS
        .iter()
        .copied()
        .filter(|s| !(s.failed && is_device(kind)))
        .collect();
    let timeline = capture(kind, &situations, rng)?;
    let packets = super::writer::write_pcap(out, &timeline.into_records())?;
    let files = records(kind, &situations, rng);
    let audit_dir = out.with_extension("audit");
    let _ = std::fs::remove_dir_all(&audit_dir);
    std::fs::create_dir_all(&audit_dir).map_err(|e| write_error(&audit_dir, e))?;
    for (file, bytes) in files.audit {
        let path = audit_dir.join(file);
        std::fs::write(&path, bytes).map_err(|e| write_error(&path, e))?;
    }
    for (suffix, text) in [("assets.csv", files.assets), ("changes.csv", files.changes)] {
        let path = sibling(out, suffix);
        std::fs::write(&path, text).map_err(|e| write_error(&path, e))?;
    }
    Ok(GenerateSummary { packets })
}

/// `OUT.<suffix>` next to `OUT.pcap`.
fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}.{suffix}"))
}

fn write_error(path: &Path, e: std::io::Error) -> GenerateError {
    GenerateError::Write {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn is_device(kind: Kind) -> bool {
    matches!(kind, Kind::Cisco | Kind::Juniper | Kind::Arista)
}

/// The mirrored copies of every situation with a stream: each start carries a DNS lookup
/// and two pings of the situation's host, both directions, one way to the collector.
fn capture(
    kind: Kind,
    situations: &[Situation],
    rng: &mut ChaCha8Rng,
) -> Result<Timeline, GenerateError> {
    let mut timeline = Timeline::new();
    for s in situations {
        let h = IpAddr::V4(host(s.k));
        let outer_src = if is_device(kind) {
            IpAddr::V4(DEVICE_ORIGIN)
        } else {
            h
        };
        let encap = match kind {
            Kind::Aws => EncapKind::Vxlan {
                vni: 4200 + u32::from(s.k),
            },
            Kind::Azure => EncapKind::Vxlan {
                vni: 7000 + u32::from(s.k),
            },
            Kind::Gcp => EncapKind::Geneve {
                vni: 0,
                payload: GenevePayload::Ethernet,
                options: Vec::new(),
            },
            Kind::Cisco => EncapKind::Erspan2 {
                session_id: 100 + u16::from(s.k),
                index: 1,
            },
            Kind::Juniper => EncapKind::GreTeb { key: None },
            Kind::Arista => EncapKind::Erspan1,
        };
        let mut stack = EncapStack::new(
            vec![Encap::new(encap, outer_src, IpAddr::V4(s.collector))],
            rng,
        );
        for start_s in s.streams {
            let frames = workload(rng, h, start_s * 1_000_000)?;
            for timed in frames {
                let outer = stack.wrap(&timed.frame, timed.time_us)?;
                timeline.push(timed.time_us + 35, outer.to_ethernet_bytes()?);
            }
        }
    }
    Ok(timeline)
}

/// A DNS lookup and two pings of `h`, starting near `start_us`.
fn workload(
    rng: &mut ChaCha8Rng,
    h: IpAddr,
    start_us: u64,
) -> Result<Vec<TimedFrame>, GenerateError> {
    let resolver = IpAddr::V4(Ipv4Addr::new(10, 10, 0, 2));
    let web = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20));
    let link = |to: IpAddr| Link {
        src_mac: mac_for(h),
        dst_mac: mac_for(to),
        tags: LinkTags::Untagged,
    };
    let dns = Conversation::Dns(DnsExchange {
        client: Endpoint {
            ip: h,
            port: rng.random_range(32_768..=60_999),
        },
        server: Endpoint {
            ip: resolver,
            port: 53,
        },
        link: link(resolver),
        rtt_us: rng.random_range(300..=1_500),
        query_name: "api.example.com".to_owned(),
        answer: web,
    });
    let ping = Conversation::IcmpEcho(IcmpEcho {
        client: h,
        server: web,
        link: link(IpAddr::V4(Ipv4Addr::new(10, 10, 0, 1))),
        rtt_us: rng.random_range(8_000..=40_000),
        count: 2,
        interval_us: 200_000,
    });
    let mut frames = dns.frames(start_us + rng.random_range(0..50_000), rng)?;
    frames.extend(ping.frames(start_us + 100_000 + rng.random_range(0..50_000), rng)?);
    frames.sort_by_key(|f| f.time_us);
    Ok(frames)
}

/// The control-plane files of a case.
#[derive(Default)]
struct Files {
    /// Name and bytes of each file under `OUT.audit/`.
    audit: Vec<(String, Vec<u8>)>,
    assets: String,
    changes: String,
}

/// RFC 3339 time of `s` seconds (and `ms` milliseconds) from the capture start.
fn iso(s: i64, ms: u32) -> String {
    let t = BASE_TIME_S as i64 + s;
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let (y, mo, d) = crate::control::text::civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// RFC 3164 time (`Jan  5 08:52:17`) of `s` seconds from the capture start.
fn bsd_time(s: i64) -> String {
    let t = BASE_TIME_S as i64 + s;
    let rem = t.rem_euclid(86_400);
    let (_, _, d) = crate::control::text::civil_from_days(t.div_euclid(86_400));
    format!(
        "Jan {d:>2} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn hex(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        hex(rng, 8),
        hex(rng, 4),
        hex(rng, 3),
        hex(rng, 3),
        hex(rng, 12)
    )
}

fn actor(kind: Kind, who: Who) -> &'static str {
    match (kind, who) {
        (Kind::Aws, Who::Approved) => "arn:aws:sts::111122223333:assumed-role/NetOps/alice",
        (Kind::Aws, Who::Ticket) => "arn:aws:sts::111122223333:assumed-role/ChangeRunner/bob",
        (Kind::Aws, Who::Mallory) => "arn:aws:iam::111122223333:user/mallory",
        (Kind::Azure, Who::Approved) => "alice@contoso.com",
        (Kind::Azure, Who::Ticket) => "bob@contoso.com",
        (Kind::Azure, Who::Mallory) => "mallory@contoso-guest.example",
        (Kind::Gcp, Who::Approved) => "netops@example-project.iam.gserviceaccount.com",
        (Kind::Gcp, Who::Ticket) => "bob@example.com",
        (Kind::Gcp, Who::Mallory) => "mallory@example.net",
        (Kind::Cisco, Who::Approved) => "netadmin",
        (Kind::Juniper, Who::Approved) => "jdoe",
        (Kind::Arista, Who::Approved) => "admin",
        (_, Who::Ticket) => "bob",
        (_, Who::Mallory) => "mallory",
    }
}

/// Where each actor works from.
fn actor_ip(who: Who) -> &'static str {
    match who {
        Who::Approved => "198.51.100.23",
        Who::Ticket => "198.51.100.24",
        Who::Mallory => "203.0.113.77",
    }
}

fn records(kind: Kind, situations: &[Situation], rng: &mut ChaCha8Rng) -> Files {
    let mut files = Files::default();
    let recorded: Vec<Situation> = situations.iter().copied().filter(|s| s.recorded).collect();
    // The change record of situation 2: its actor, its collector, a window around it.
    let ticket = recorded.iter().find(|s| s.who == Who::Ticket);
    files.changes = String::from("id,actor,start,end,resource\n");
    if let Some(t) = ticket {
        let _ = writeln!(
            files.changes,
            "CHG0012345,{},{},{},{}",
            actor(kind, Who::Ticket),
            iso(-1800, 0),
            iso(3600, 0),
            t.collector
        );
    }
    // A record for another change, never made: it must approve nothing else.
    let _ = writeln!(
        files.changes,
        "CHG0012399,{},{},{},10.9.0.99",
        actor(kind, Who::Ticket),
        iso(-86_400, 0),
        iso(-82_800, 0)
    );
    files.assets = String::from("resource_id,ip\n");
    match kind {
        Kind::Aws => aws(&recorded, rng, &mut files),
        Kind::Azure => azure(&recorded, rng, &mut files),
        Kind::Gcp => gcp(&recorded, rng, &mut files),
        Kind::Cisco => cisco(&recorded, &mut files),
        Kind::Juniper => juniper(&recorded, &mut files),
        Kind::Arista => arista(&recorded, &mut files),
    }
    files
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

fn aws(situations: &[Situation], rng: &mut ChaCha8Rng, files: &mut Files) {
    let mut records: Vec<Value> = Vec::new();
    let mut lake: Vec<Value> = Vec::new();
    for s in situations {
        let who = s.who;
        let eni = format!("eni-0{}", hex(rng, 16));
        let collector_eni = format!("eni-0{}", hex(rng, 16));
        let target = format!("tmt-0{}", hex(rng, 16));
        let filter = format!("tmf-0{}", hex(rng, 16));
        let session = format!("tms-0{}", hex(rng, 16));
        let _ = writeln!(files.assets, "{eni},{}", host(s.k));
        let _ = writeln!(files.assets, "{collector_eni},{}", s.collector);
        let ident = identity(who, rng);
        let base = |name: &str,
                    secs: i64,
                    request: Value,
                    response: Value,
                    rng: &mut ChaCha8Rng| {
            let mut r = json!({
                "eventVersion": "1.09",
                "userIdentity": ident.clone(),
                "eventTime": iso(secs, 0).replace(".000", ""),
                "eventSource": "ec2.amazonaws.com",
                "eventName": name,
                "awsRegion": "eu-west-1",
                "sourceIPAddress": actor_ip(who),
                "userAgent": user_agent(who),
                "requestParameters": request,
                "responseElements": response,
                "requestID": uuid(rng),
                "eventID": uuid(rng),
                "readOnly": false,
                "eventType": "AwsApiCall",
                "managementEvent": true,
                "recipientAccountId": "111122223333",
                "eventCategory": "Management",
                "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "ec2.eu-west-1.amazonaws.com"}
            });
            if s.failed && name == "CreateTrafficMirrorSession" {
                if let Some(m) = r.as_object_mut() {
                    m.insert(
                        "errorCode".to_owned(),
                        json!("Client.UnauthorizedOperation"),
                    );
                    m.insert("errorMessage".to_owned(), json!("You are not authorized to perform this operation. User: arn:aws:iam::111122223333:user/mallory is not authorized to perform: ec2:CreateTrafficMirrorSession"));
                    m.insert("responseElements".to_owned(), Value::Null);
                }
            }
            r
        };
        if !s.failed {
            records.push(base(
                "CreateTrafficMirrorTarget",
                s.change_s - 20,
                json!({"CreateTrafficMirrorTargetRequest": {"NetworkInterfaceId": collector_eni, "Description": format!("collector {}", s.k), "ClientToken": uuid(rng)}}),
                json!({"CreateTrafficMirrorTargetResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/", "requestId": uuid(rng), "trafficMirrorTarget": {"trafficMirrorTargetId": target, "networkInterfaceId": collector_eni, "type": "network-interface", "ownerId": "111122223333", "tagSet": ""}}}),
                rng,
            ));
            records.push(base(
                "CreateTrafficMirrorFilter",
                s.change_s - 10,
                json!({"CreateTrafficMirrorFilterRequest": {"Description": "all traffic", "ClientToken": uuid(rng)}}),
                json!({"CreateTrafficMirrorFilterResponse": {"trafficMirrorFilter": {"trafficMirrorFilterId": filter, "ingressFilterRuleSet": "", "egressFilterRuleSet": "", "networkServiceSet": "", "tagSet": ""}}}),
                rng,
            ));
        }
        let vni = 4200 + u32::from(s.k);
        let create = base(
            "CreateTrafficMirrorSession",
            s.change_s,
            json!({"CreateTrafficMirrorSessionRequest": {"NetworkInterfaceId": eni, "TrafficMirrorTargetId": target, "TrafficMirrorFilterId": filter, "SessionNumber": 1, "VirtualNetworkId": vni, "ClientToken": uuid(rng)}}),
            json!({"CreateTrafficMirrorSessionResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/", "requestId": uuid(rng), "trafficMirrorSession": {"trafficMirrorSessionId": session, "trafficMirrorTargetId": target, "trafficMirrorFilterId": filter, "networkInterfaceId": eni, "ownerId": "111122223333", "sessionNumber": 1, "virtualNetworkId": vni, "tagSet": ""}, "clientToken": uuid(rng)}}),
            rng,
        );
        // The late record of situation 2 arrives through CloudTrail Lake (JSON lines).
        if s.who == Who::Ticket {
            lake.push(create);
        } else {
            records.push(create);
        }
        if let Some(d) = s.deleted_s {
            lake.push(base(
                "DeleteTrafficMirrorSession",
                d,
                json!({"DeleteTrafficMirrorSessionRequest": {"TrafficMirrorSessionId": session}}),
                json!({"DeleteTrafficMirrorSessionResponse": {"trafficMirrorSessionId": session}}),
                rng,
            ));
        }
    }
    // An unrelated call in the same delivery file: read and ignored.
    records.push(json!({"eventVersion": "1.09", "eventTime": iso(-300, 0).replace(".000", ""), "eventSource": "ec2.amazonaws.com", "eventName": "DescribeTrafficMirrorSessions", "awsRegion": "eu-west-1", "userIdentity": identity(Who::Approved, rng), "sourceIPAddress": actor_ip(Who::Approved), "requestParameters": null, "responseElements": null}));
    let doc = json!({ "Records": records });
    let name = format!(
        "111122223333_CloudTrail_eu-west-1_20260105T0855Z_{}.json.gz",
        hex(rng, 16)
    );
    files.audit.push((name, gzip(doc.to_string().as_bytes())));
    let lines: String = lake.iter().map(|v| format!("{v}\n")).collect();
    files.audit.push((
        "cloudtrail-lake-export.jsonl".to_owned(),
        lines.into_bytes(),
    ));
}

fn identity(who: Who, rng: &mut ChaCha8Rng) -> Value {
    let key = format!("ASIA{}", hex(rng, 16).to_uppercase());
    match who {
        Who::Mallory => {
            json!({"type": "IAMUser", "principalId": "AIDA4EXAMPLEUSER0001", "arn": actor(Kind::Aws, who), "accountId": "111122223333", "accessKeyId": key.replace("ASIA", "AKIA"), "userName": "mallory"})
        }
        _ => {
            let role = if who == Who::Approved {
                "NetOps"
            } else {
                "ChangeRunner"
            };
            let user = if who == Who::Approved { "alice" } else { "bob" };
            json!({"type": "AssumedRole", "principalId": format!("AROA4EXAMPLEROLE0001:{user}"), "arn": actor(Kind::Aws, who), "accountId": "111122223333", "accessKeyId": key,
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA4EXAMPLEROLE0001", "arn": format!("arn:aws:iam::111122223333:role/{role}"), "accountId": "111122223333", "userName": role}, "attributes": {"creationDate": iso(-3600, 0).replace(".000", ""), "mfaAuthenticated": "true"}}})
        }
    }
}

fn user_agent(who: Who) -> &'static str {
    match who {
        Who::Approved => {
            "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023 prompt/off"
        }
        Who::Ticket => {
            "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0"
        }
        Who::Mallory => {
            "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.12.2"
        }
    }
}

const SUBSCRIPTION: &str = "00000000-1111-2222-3333-444455556666";

fn azure(situations: &[Situation], rng: &mut ChaCha8Rng, files: &mut Files) {
    let mut lines = String::new();
    let mut csv = String::from(
        "TimeGenerated,OperationNameValue,ActivityStatusValue,Caller,CallerIpAddress,SubscriptionId,ResourceGroup,_ResourceId,Properties\n",
    );
    for s in situations {
        let who = s.who;
        let rg = "rg-net";
        let tap = format!(
            "/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworkTaps/tap-{}",
            s.k
        );
        let ipconfig = format!(
            "/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/collector-nic-{}/ipConfigurations/ipconfig1",
            s.k
        );
        let nic = format!(
            "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web/providers/Microsoft.Network/networkInterfaces/web-nic-{}",
            s.k
        );
        let _ = writeln!(files.assets, "{},{}", nic.to_ascii_lowercase(), host(s.k));
        // Half of the TAP bodies carry the collector's address, half resolve it by asset.
        let dest = if s.k % 2 == 0 {
            json!({"id": ipconfig, "properties": {"privateIPAddress": s.collector.to_string()}})
        } else {
            let _ = writeln!(
                files.assets,
                "{},{}",
                ipconfig.to_ascii_lowercase(),
                s.collector
            );
            json!({"id": ipconfig})
        };
        let status = if s.failed { "Failure" } else { "Success" };
        let tap_body = json!({"location": "westeurope", "properties": {"destinationNetworkInterfaceIPConfiguration": dest, "destinationPort": 4789}});
        let record = |op: &str,
                      resource: &str,
                      secs: i64,
                      body: Option<&Value>,
                      status: &str,
                      rng: &mut ChaCha8Rng| {
            let mut props = json!({"statusCode": if status == "Success" { "Created" } else { "Forbidden" }, "serviceRequestId": uuid(rng), "eventCategory": "Administrative", "entity": resource, "message": op, "hierarchy": format!("72f988bf-0000-0000-0000-000000000000/{SUBSCRIPTION}")});
            if let (Some(b), Some(m)) = (body, props.as_object_mut()) {
                m.insert("requestbody".to_owned(), json!(b.to_string()));
            }
            json!({
                "time": iso(secs, 123).replace('Z', "4567Z"),
                "resourceId": resource.to_ascii_uppercase(),
                "operationName": op.to_ascii_uppercase(),
                "category": "Administrative",
                "resultType": status,
                "resultSignature": if status == "Success" { "Succeeded.Created" } else { "Failed.Forbidden" },
                "durationMs": "1523",
                "callerIpAddress": actor_ip(who),
                "correlationId": uuid(rng),
                "identity": {"authorization": {"scope": resource, "action": op}, "claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": actor(Kind::Azure, who), "ipaddr": actor_ip(who), "name": actor(Kind::Azure, who)}},
                "level": if status == "Success" { "Information" } else { "Error" },
                "location": "global",
                "properties": props
            })
        };
        // Azure writes a Start record, then Success or Failure.
        let start = record(
            "Microsoft.Network/virtualNetworkTaps/write",
            &tap,
            s.change_s,
            Some(&tap_body),
            "Start",
            rng,
        );
        let done = record(
            "Microsoft.Network/virtualNetworkTaps/write",
            &tap,
            s.change_s + 2,
            Some(&tap_body),
            status,
            rng,
        );
        let _ = writeln!(lines, "{start}");
        // Situation 8's TAP comes from the AzureActivity table export instead.
        if s.k == 8 {
            let props = json!({"requestbody": tap_body.to_string()})
                .to_string()
                .replace('"', "\"\"");
            let _ = writeln!(
                csv,
                "\"{}\",MICROSOFT.NETWORK/VIRTUALNETWORKTAPS/WRITE,Success,{},{},{SUBSCRIPTION},RG-NET,{},\"{props}\"",
                us_time(s.change_s + 2),
                actor(Kind::Azure, who),
                actor_ip(who),
                tap.to_ascii_lowercase()
            );
        } else {
            let _ = writeln!(lines, "{done}");
        }
        if s.failed {
            continue;
        }
        let cfg = format!("{nic}/tapConfigurations/tapcfg-{}", s.k);
        let cfg_body = json!({"properties": {"virtualNetworkTap": {"id": tap}}});
        let attach = record(
            "Microsoft.Network/networkInterfaces/tapConfigurations/write",
            &cfg,
            s.change_s + 5,
            Some(&cfg_body),
            "Success",
            rng,
        );
        let _ = writeln!(lines, "{attach}");
        if let Some(d) = s.deleted_s {
            let detach = record(
                "Microsoft.Network/networkInterfaces/tapConfigurations/delete",
                &cfg,
                d - 3,
                None,
                "Success",
                rng,
            );
            let del = record(
                "Microsoft.Network/virtualNetworkTaps/delete",
                &tap,
                d,
                None,
                "Success",
                rng,
            );
            let _ = writeln!(lines, "{detach}\n{del}");
        }
    }
    files
        .audit
        .push(("activity-log.jsonl".to_owned(), lines.into_bytes()));
    files
        .audit
        .push(("azureactivity-export.csv".to_owned(), csv.into_bytes()));
}

/// The Log Analytics export time form, `1/5/2026, 8:58:02.000 AM`.
fn us_time(s: i64) -> String {
    let t = BASE_TIME_S as i64 + s;
    let rem = t.rem_euclid(86_400);
    let (y, mo, d) = crate::control::text::civil_from_days(t.div_euclid(86_400));
    let h = rem / 3600;
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!(
        "{mo}/{d}/{y}, {h12}:{:02}:{:02}.000 {ampm}",
        rem % 3600 / 60,
        rem % 60
    )
}

fn gcp(situations: &[Situation], rng: &mut ChaCha8Rng, files: &mut Files) {
    let mut lines = String::new();
    let project = "example-project";
    let region = "europe-west1";
    for s in situations {
        let who = s.who;
        let name = format!("pm-{}", s.k);
        let resource = format!("projects/{project}/regions/{region}/packetMirrorings/{name}");
        let rule = format!(
            "projects/{project}/regions/{region}/forwardingRules/fr-collector-{}",
            s.k
        );
        let instance = format!("projects/{project}/zones/{region}-b/instances/web-{}", s.k);
        let _ = writeln!(files.assets, "{rule},{}", s.collector);
        let _ = writeln!(files.assets, "instance:{instance},{}", host(s.k));
        let method = if s.k % 2 == 0 {
            "beta.compute.packetMirrorings.insert"
        } else {
            "v1.compute.packetMirrorings.insert"
        };
        let api = if s.k % 2 == 0 { "beta" } else { "v1" };
        let url = |path: &str| format!("https://www.googleapis.com/compute/{api}/{path}");
        let op = format!("operation-{}-{}", 1_767_603_600 + s.change_s, hex(rng, 12));
        let mut payload = json!({
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": actor(Kind::Gcp, who)},
            "requestMetadata": {"callerIp": actor_ip(who), "callerSuppliedUserAgent": "google-cloud-sdk gcloud/470.0.0 command/gcloud.compute.packet-mirrorings.create invocation-id/".to_owned() + &hex(rng, 32)},
            "serviceName": "compute.googleapis.com",
            "methodName": method,
            "authorizationInfo": [{"permission": "compute.packetMirrorings.create", "granted": !s.failed, "resourceAttributes": {"service": "compute", "name": resource, "type": "compute.packetMirrorings"}}],
            "resourceName": resource,
            "request": {
                "@type": format!("type.googleapis.com/compute.packetMirrorings.insert"),
                "name": name,
                "network": {"url": url(&format!("projects/{project}/global/networks/prod"))},
                "collectorIlb": {"url": url(&rule)},
                "mirroredResources": {"instances": [{"url": url(&instance)}]},
                "filter": {"cidrRanges": ["0.0.0.0/0"], "IPProtocols": ["tcp", "udp", "icmp"], "direction": "BOTH"},
                "priority": 1000
            }
        });
        if s.failed {
            if let Some(m) = payload.as_object_mut() {
                m.insert("status".to_owned(), json!({"code": 7, "message": "Required 'compute.packetMirrorings.create' permission for 'projects/example-project/regions/europe-west1/packetMirrorings/pm-5'"}));
            }
        }
        let entry = |payload: Value, secs: i64, first: bool, rng: &mut ChaCha8Rng| {
            let mut operation = json!({"id": op, "producer": "compute.googleapis.com"});
            if let Some(m) = operation.as_object_mut() {
                m.insert(if first { "first" } else { "last" }.to_owned(), json!(true));
            }
            json!({
                "protoPayload": payload,
                "insertId": format!("-{}", hex(rng, 10)),
                "resource": {"type": "gce_packet_mirroring", "labels": {"project_id": project, "region": region, "packet_mirroring_id": format!("{}", 7_000_000_000_000_000u64 + u64::from(s.k))}},
                "timestamp": iso(secs, 345).replace('Z', "678Z"),
                "severity": if s.failed { "ERROR" } else { "NOTICE" },
                "logName": format!("projects/{project}/logs/cloudaudit.googleapis.com%2Factivity"),
                "operation": operation,
                "receiveTimestamp": iso(secs + 1, 0)
            })
        };
        let _ = writeln!(lines, "{}", entry(payload.clone(), s.change_s, true, rng));
        if !s.failed {
            // The completion entry: no request body (read and ignored).
            let mut done = payload.clone();
            if let Some(m) = done.as_object_mut() {
                m.remove("request");
            }
            let _ = writeln!(lines, "{}", entry(done, s.change_s + 8, false, rng));
        }
        if let Some(d) = s.deleted_s {
            let mut del = payload.clone();
            if let Some(m) = del.as_object_mut() {
                m.remove("request");
                m.insert(
                    "methodName".to_owned(),
                    json!("v1.compute.packetMirrorings.delete"),
                );
            }
            let _ = writeln!(lines, "{}", entry(del, d, true, rng));
        }
    }
    files
        .audit
        .push(("cloudaudit-activity.jsonl".to_owned(), lines.into_bytes()));
}

fn cisco(situations: &[Situation], files: &mut Files) {
    let mut log = String::new();
    let mut seq = 4100u32;
    let mut line = |log: &mut String, secs: i64, msg: &str| {
        seq += 1;
        let _ = writeln!(
            log,
            "<189>{} core-sw1 {seq}: {}.{:03} UTC: {msg}",
            bsd_time(secs),
            bsd_time(secs),
            100 + seq % 800
        );
    };
    for s in situations.iter().filter(|s| s.k != 1) {
        let who = actor(Kind::Cisco, s.who);
        let t = s.change_s;
        for (i, cmd) in [
            format!("monitor session {} type erspan-source", s.k),
            format!("source interface Gi1/0/{} both", s.k),
            "destination".to_owned(),
            format!("erspan-id {}", 100 + u32::from(s.k)),
            format!("ip address {}", s.collector),
            format!("origin ip address {DEVICE_ORIGIN}"),
        ]
        .iter()
        .enumerate()
        {
            line(
                &mut log,
                t + i as i64,
                &format!("%PARSER-5-CFGLOG_LOGGEDCMD: User:{who}  logged command:{cmd}"),
            );
        }
        line(
            &mut log,
            t + 8,
            &format!(
                "%SYS-5-CONFIG_I: Configured from console by {who} on vty0 ({})",
                actor_ip(s.who)
            ),
        );
        if let Some(d) = s.deleted_s {
            line(
                &mut log,
                d,
                &format!(
                    "%PARSER-5-CFGLOG_LOGGEDCMD: User:{who}  logged command:no monitor session {}",
                    s.k
                ),
            );
            line(
                &mut log,
                d + 2,
                &format!(
                    "%SYS-5-CONFIG_I: Configured from console by {who} on vty0 ({})",
                    actor_ip(s.who)
                ),
            );
        }
    }
    files
        .audit
        .push(("core-sw1.log".to_owned(), log.into_bytes()));
    // Situation 1 comes from the running configuration archived at the change.
    if let Some(s) = situations.iter().find(|s| s.k == 1) {
        let t = BASE_TIME_S as i64 + s.change_s;
        let rem = t.rem_euclid(86_400);
        let config = format!(
            "Building configuration...\n\nCurrent configuration : 8123 bytes\n!\n! Last configuration change at {:02}:{:02}:{:02} UTC Mon Jan 5 2026 by {}\n!\nversion 17.9\nhostname core-sw1\n!\ninterface GigabitEthernet1/0/1\n description web-1\n!\nmonitor session 1 type erspan-source\n source interface Gi1/0/1 both\n destination\n  erspan-id 101\n  ip address {}\n  origin ip address {DEVICE_ORIGIN}\n!\nend\n",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            actor(Kind::Cisco, s.who),
            s.collector
        );
        files.audit.push((
            "core-sw1-running-config.txt".to_owned(),
            config.into_bytes(),
        ));
    }
}

fn juniper(situations: &[Situation], files: &mut Files) {
    let mut log = String::new();
    let mut line = |secs: i64, tag: &str, msg: &str| {
        let _ = writeln!(
            log,
            "<29>1 {} edge-mx1 mgd 4242 {tag} - {tag}: {msg}",
            iso(secs, 0)
        );
    };
    for s in situations {
        let who = actor(Kind::Juniper, s.who);
        let t = s.change_s;
        line(
            t - 20,
            "UI_CFG_AUDIT_SET",
            &format!(
                "User '{who}' set: [forwarding-options analyzer an{} input ingress interface ge-0/0/{}.0]",
                s.k, s.k
            ),
        );
        line(
            t - 10,
            "UI_CFG_AUDIT_SET",
            &format!(
                "User '{who}' set: [forwarding-options analyzer an{} output ip-address] <unconfigured> -> \"{}\"",
                s.k, s.collector
            ),
        );
        // The ticket's change names it in the commit comment.
        let comment = if s.who == Who::Ticket {
            "CHG0012345"
        } else {
            "mirror for troubleshooting"
        };
        line(
            t,
            "UI_COMMIT",
            &format!("User '{who}' requested 'commit' operation (comment: {comment})"),
        );
        if let Some(d) = s.deleted_s {
            line(
                d - 5,
                "UI_CFG_AUDIT_OTHER",
                &format!(
                    "User '{who}' delete: [forwarding-options analyzer an{}]",
                    s.k
                ),
            );
            line(
                d,
                "UI_COMMIT",
                &format!("User '{who}' requested 'commit' operation (comment: remove analyzer)"),
            );
        }
    }
    files
        .audit
        .push(("edge-mx1.log".to_owned(), log.into_bytes()));
}

fn arista(situations: &[Situation], files: &mut Files) {
    let mut log = String::new();
    let mut task = 10u32;
    for s in situations.iter().filter(|s| s.k != 1) {
        let who = actor(Kind::Arista, s.who);
        let ip = actor_ip(s.who);
        let t = s.change_s;
        let _ = writeln!(
            log,
            "{} leaf1 ConfigAgent: %SYS-5-CONFIG_E: Enter configuration mode from console by {who} on vty3 ({ip})",
            bsd_time(t - 10)
        );
        for (i, cmd) in [
            format!("monitor session m{} source Ethernet{} both", s.k, s.k),
            format!("monitor session m{} destination tunnel mode gre source {DEVICE_ORIGIN} destination {}", s.k, s.collector),
        ]
        .iter()
        .enumerate()
        {
            task += 1;
            let _ = writeln!(log, "{} leaf1 Aaa: %ACCOUNTING-6-CMD: {who} vty3 {ip} stop task_id={task} start_time={}.0 timezone=UTC service=shell priv-lvl=15 cmd={cmd}", bsd_time(t - 5 + i as i64), BASE_TIME_S as i64 + t - 5 + i as i64);
        }
        let _ = writeln!(
            log,
            "{} leaf1 ConfigAgent: %SYS-5-CONFIG_I: Configured from console by {who} on vty3 ({ip})",
            bsd_time(t)
        );
        if let Some(d) = s.deleted_s {
            task += 1;
            let _ = writeln!(
                log,
                "{} leaf1 Aaa: %ACCOUNTING-6-CMD: {who} vty3 {ip} stop task_id={task} start_time={}.0 timezone=UTC service=shell priv-lvl=15 cmd=no monitor session m{}",
                bsd_time(d - 2),
                BASE_TIME_S as i64 + d - 2,
                s.k
            );
            let _ = writeln!(
                log,
                "{} leaf1 ConfigAgent: %SYS-5-CONFIG_I: Configured from console by {who} on vty3 ({ip})",
                bsd_time(d)
            );
        }
    }
    files.audit.push(("leaf1.log".to_owned(), log.into_bytes()));
    if let Some(s) = situations.iter().find(|s| s.k == 1) {
        let t = BASE_TIME_S as i64 + s.change_s;
        let rem = t.rem_euclid(86_400);
        let config = format!(
            "! Command: show startup-config\n! Startup-config last modified at Mon Jan  5 {:02}:{:02}:{:02} 2026 by {}\n! device: leaf1 (DCS-7050SX3-48YC8, EOS-4.31.2F)\n!\nhostname leaf1\n!\ninterface Ethernet1\n   description web-1\n!\nmonitor session m1 source Ethernet1 both\nmonitor session m1 destination tunnel mode gre source {DEVICE_ORIGIN} destination {}\n!\nend\n",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            actor(Kind::Arista, s.who),
            s.collector
        );
        files
            .audit
            .push(("leaf1-startup-config.txt".to_owned(), config.into_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::control::{ReadOptions, ReadOutcome, read_paths};

    fn pcaps_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps")
    }

    /// Every file of a generated case except the capture, by relative name.
    fn control_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for name in ["input.assets.csv", "input.changes.csv"] {
            files.insert(name.to_owned(), std::fs::read(dir.join(name)).unwrap());
        }
        for entry in std::fs::read_dir(dir.join("input.audit")).unwrap() {
            let path = entry.unwrap().path();
            let name = format!(
                "input.audit/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            files.insert(name, std::fs::read(&path).unwrap());
        }
        files
    }

    fn seed_of(name: &str) -> u64 {
        let text = std::fs::read_to_string(pcaps_dir().join(name).join("case.toml")).unwrap();
        let case: toml::Table = toml::from_str(&text).unwrap();
        u64::try_from(case["seed"].as_integer().unwrap()).unwrap()
    }

    /// The committed control-plane files are what the generator writes (the capture itself is
    /// compared by `generate::tests`).
    #[test]
    fn committed_control_files_match_the_generator() {
        for scenario in SCENARIOS {
            let dir = std::env::temp_dir().join(format!(
                "mirrorwatch-control-{}-{}",
                std::process::id(),
                scenario.name
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let seed = seed_of(scenario.name);
            crate::generate::generate(scenario.name, seed, &dir.join("input.pcap")).unwrap();
            let fresh = control_files(&dir);
            let committed = control_files(&pcaps_dir().join(scenario.name));
            std::fs::remove_dir_all(&dir).unwrap();
            assert_eq!(
                fresh.keys().collect::<Vec<_>>(),
                committed.keys().collect::<Vec<_>>(),
                "{}",
                scenario.name
            );
            for (name, bytes) in &fresh {
                assert!(
                    committed.get(name) == Some(bytes),
                    "pcaps/{}/{name} differs from the generator; run pcaps/regenerate.sh",
                    scenario.name
                );
            }
        }
    }

    /// Every record the generator writes is read back without an error, by the readers the
    /// content selects, for several seeds.
    #[test]
    fn generated_records_read_back_cleanly() {
        for scenario in SCENARIOS {
            for seed in [1, 2, 3] {
                let dir = std::env::temp_dir().join(format!(
                    "mirrorwatch-control-read-{}-{}-{seed}",
                    std::process::id(),
                    scenario.name
                ));
                std::fs::create_dir_all(&dir).unwrap();
                crate::generate::generate(scenario.name, seed, &dir.join("input.pcap")).unwrap();
                let mut out = ReadOutcome::default();
                read_paths(
                    &[dir.join("input.audit")],
                    ReadOptions { syslog_year: 2026 },
                    &mut out,
                );
                std::fs::remove_dir_all(&dir).unwrap();
                assert!(out.errors.is_empty(), "{}: {:?}", scenario.name, out.errors);
                // Six sessions recorded and one delete (and the failed attempt in the cloud
                // cases): at least seven changes.
                assert!(
                    out.changes.len() >= 7,
                    "{}: {}",
                    scenario.name,
                    out.changes.len()
                );
            }
        }
    }
}
