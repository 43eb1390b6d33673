//! Events of the control-plane side (`--audit`, `mirrorwatch audit`): the `mirror_config`
//! alert's evidence, the `mirror_session` event of a configured session, the `control`
//! object a `tunnel` record or `mirror_stream` alert carries when a configured session
//! explains it, and the `audit` summary. Absent fields are omitted, never `null`.

use std::net::IpAddr;

use serde::Serialize;

use super::{EventHeader, Rfc3339};

/// Evidence of a `mirror_config` alert.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MirrorConfigEvidence<'a> {
    /// `aws`, `azure`, `gcp`, `cisco`, `juniper`, `arista`.
    pub provider: &'static str,
    /// The operation as the record names it.
    pub operation: &'a str,
    /// `create`, `modify` or `delete`.
    pub action: &'static str,
    /// The first reason (the signature's).
    pub reason: &'static str,
    /// Every reason.
    pub reasons: Vec<&'static str>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    /// Id of the object changed when not the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<&'a str>,
    /// Who.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<&'a str>,
    /// Identity type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_type: Option<&'a str>,
    /// From where (address or service name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_ip: Option<&'a str>,
    /// Client software.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    /// AWS access key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<&'a str>,
    /// AWS session issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<&'a str>,
    /// Account, subscription, project or device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<&'a str>,
    /// Region or resource group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<&'a str>,
    /// Mirrored resources.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub sources: &'a [String],
    /// Collector resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collector: Option<&'a str>,
    /// Collector address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collector_ip: Option<IpAddr>,
    /// The collector is inside `[networks] home`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collector_home: Option<bool>,
    /// Encapsulation on the wire.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// VNI / ERSPAN session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_id: Option<u32>,
    /// The change record it fell outside of (or that approved it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_record: Option<&'a str>,
    /// Why the attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// When the session was deleted (`traffic_after_delete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Rfc3339>,
    /// Last packet of the stream seen after the delete (`traffic_after_delete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Rfc3339>,
    /// Tunnel link of the stream (`traffic_after_delete`), joins `tunnel` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<u64>,
    /// Seconds the session stayed without a stream (`silent_session`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silent_s: Option<u64>,
    /// File of the record.
    pub file: &'a str,
    /// `line` or `record`.
    pub unit: &'static str,
    /// Line number (1-based) or record index (0-based).
    pub index: u64,
}

/// `event_type: "mirror_session"`: one configured session.
#[derive(Clone, Debug, Serialize)]
pub struct MirrorSessionEvent<'a> {
    /// Time of its creation (or first change), source and collector addresses.
    #[serde(flatten)]
    pub header: EventHeader,
    /// The session.
    pub mirror_session: MirrorSessionDetail<'a>,
}

/// `mirror_session` object.
#[derive(Clone, Debug, Serialize)]
pub struct MirrorSessionDetail<'a> {
    /// Provider or device family.
    pub provider: &'static str,
    /// Session id.
    pub id: &'a str,
    /// Mirrored resources.
    pub sources: &'a [String],
    /// Outer source address on the wire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// Collector resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collector: Option<&'a str>,
    /// Collector address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collector_ip: Option<IpAddr>,
    /// Encapsulation on the wire.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// VNI / ERSPAN session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_id: Option<u32>,
    /// Created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Rfc3339>,
    /// Last modified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<Rfc3339>,
    /// Deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Rfc3339>,
    /// Who made its latest create or modify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<&'a str>,
    /// From where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_ip: Option<&'a str>,
    /// Client software.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    /// Account, subscription, project or device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<&'a str>,
    /// Region or resource group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<&'a str>,
    /// Every change to it was approved.
    pub approved: bool,
    /// The change record that approved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_record: Option<&'a str>,
    /// Reasons of its unapproved changes.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub reasons: Vec<&'static str>,
    /// `active` or `deleted`.
    pub state: &'static str,
    /// Replay and live: a tunnel session on the wire matched it (`None` from
    /// `mirrorwatch audit`, which sees no packets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_on_wire: Option<bool>,
}

/// The `control` object of a `tunnel` record or `mirror_stream` alert.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ControlMatch {
    /// No configured session explains this mirror.
    pub unexplained: bool,
    /// Provider of the matching session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'static str>,
    /// Its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Who configured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// When (its latest create or modify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_time: Option<Rfc3339>,
    /// The change record that approved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_record: Option<String>,
    /// The control plane approved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
    /// How close the match is: `exact` (collector, type, id and source), or `partial`.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub closeness: Option<&'static str>,
    /// What matched: `collector`, `type`, `tunnel_id`, `source`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched_on: Vec<&'static str>,
    /// First packet of the stream minus the change time, in seconds (negative: the record
    /// is later than the stream, within `[control] skew_s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_s: Option<f64>,
}

/// `event_type: "audit"`: what reading the control-plane files gave.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent<'a> {
    /// Time of the latest change read (the epoch when none).
    pub timestamp: Rfc3339,
    /// Always `audit`.
    pub event_type: &'static str,
    /// Counters.
    pub audit: AuditDetail<'a>,
}

/// `audit` object.
#[derive(Clone, Debug, Serialize)]
pub struct AuditDetail<'a> {
    /// Files read.
    pub files: u64,
    /// Records read.
    pub records: u64,
    /// Mirror changes among them.
    pub changes: u64,
    /// Records about something else.
    pub ignored: u64,
    /// Configured sessions.
    pub sessions: u64,
    /// `mirror_config` alerts from judgement.
    pub alerts: u64,
    /// Unreadable records and files.
    pub errors: u64,
    /// The first errors, each naming its file and line or record.
    pub error_messages: &'a [String],
}
