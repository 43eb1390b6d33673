//! AWS CloudTrail records of VPC Traffic Mirroring API calls.
//!
//! Reads the records CloudTrail delivers (`{"Records": [...]}` files, one record per line
//! from CloudTrail Lake, or the `detail` of an EventBridge "AWS API Call via CloudTrail"
//! event; the dispatch is in `text.rs`). Only `ec2.amazonaws.com` calls on traffic-mirror
//! sessions, targets, filters and filter rules are mirror changes; any other record is
//! ignored. A record with an `errorCode` is a failed attempt.
//!
//! The EC2 request and response shapes differ between API versions (the newer ones wrap the
//! parameters in `CreateTrafficMirrorSessionRequest` / `...Response` objects, with capitalised
//! keys); fields are found by name, case-insensitively, in `requestParameters` first and then
//! in `responseElements`. On the wire AWS mirrors are VXLAN (UDP 4789) whose VNI is the
//! session's `VirtualNetworkId` (random when not set).

use serde::Deserialize;
use serde_json::Value;

use super::text::{as_text, at, find, find_str, find_u32, parse_rfc3339};
use super::{Action, Location, MirrorChange, Object, Parsed, Provider};
use crate::decode::TunnelKind;

/// The API calls read, with what they do.
const EVENTS: [(&str, Action, Object); 12] = [
    (
        "CreateTrafficMirrorSession",
        Action::Create,
        Object::Session,
    ),
    (
        "ModifyTrafficMirrorSession",
        Action::Modify,
        Object::Session,
    ),
    (
        "DeleteTrafficMirrorSession",
        Action::Delete,
        Object::Session,
    ),
    ("CreateTrafficMirrorTarget", Action::Create, Object::Target),
    ("DeleteTrafficMirrorTarget", Action::Delete, Object::Target),
    ("CreateTrafficMirrorFilter", Action::Create, Object::Filter),
    (
        "CreateTrafficMirrorFilterRule",
        Action::Create,
        Object::Filter,
    ),
    (
        "ModifyTrafficMirrorFilterRule",
        Action::Modify,
        Object::Filter,
    ),
    (
        "ModifyTrafficMirrorFilterNetworkServices",
        Action::Modify,
        Object::Filter,
    ),
    ("DeleteTrafficMirrorFilter", Action::Delete, Object::Filter),
    (
        "DeleteTrafficMirrorFilterRule",
        Action::Delete,
        Object::Filter,
    ),
    (
        "DeleteTrafficMirrorFilterRules",
        Action::Delete,
        Object::Filter,
    ),
];

/// The parts of a CloudTrail record that are read. The reader's first pass over a record
/// (`text.rs`) keeps the bytes of these fields, so a relevant record is built from them alone:
/// the keys nobody reads (`tlsDetails`, `eventID`, `requestID`...) are never built, and the
/// record is not parsed a second time. Scalars are kept as JSON values so a
/// record of an unexpected shape is judged field by field, not refused whole; the request and
/// response stay JSON because their shape differs between API versions.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(crate) struct Record {
    #[serde(rename = "eventName")]
    pub(crate) event_name: Value,
    #[serde(rename = "eventSource")]
    pub(crate) event_source: Value,
    #[serde(rename = "eventTime")]
    pub(crate) event_time: Value,
    #[serde(rename = "requestParameters")]
    pub(crate) request: Value,
    #[serde(rename = "responseElements")]
    pub(crate) response: Value,
    #[serde(rename = "userIdentity")]
    pub(crate) identity: Value,
    #[serde(rename = "sourceIPAddress")]
    pub(crate) source_ip: Value,
    #[serde(rename = "userAgent")]
    pub(crate) user_agent: Value,
    #[serde(rename = "recipientAccountId")]
    pub(crate) account: Value,
    #[serde(rename = "awsRegion")]
    pub(crate) region: Value,
    #[serde(rename = "errorCode")]
    pub(crate) error_code: Value,
}

/// Reads one CloudTrail record already parsed (the `detail` of an EventBridge event).
pub(crate) fn parse(v: &Value, loc: &Location) -> Result<Parsed, String> {
    let record = Record::deserialize(v).map_err(|e| format!("not a CloudTrail record: {e}"))?;
    parse_record(&record, loc)
}

pub(crate) fn parse_record(v: &Record, loc: &Location) -> Result<Parsed, String> {
    let Some(name) = v.event_name.as_str() else {
        return Err("no eventName".to_owned());
    };
    if let Some(source) = v.event_source.as_str() {
        if source != "ec2.amazonaws.com" {
            return Ok(Parsed::Ignored);
        }
    }
    let Some(&(operation, action, object)) = EVENTS.iter().find(|(n, _, _)| *n == name) else {
        return Ok(Parsed::Ignored);
    };
    let time = v
        .event_time
        .as_str()
        .ok_or_else(|| format!("{name}: no eventTime"))?;
    let time = parse_rfc3339(time).ok_or_else(|| format!("{name}: bad eventTime {time:?}"))?;
    let mut c = MirrorChange::new(Provider::Aws, operation, action, object, time, loc.clone());
    let (request, response) = (&v.request, &v.response);
    let field = |key: &str| find_str(request, key).or_else(|| find_str(response, key));
    let number = |key: &str| find_u32(request, key).or_else(|| find_u32(response, key));
    match object {
        Object::Session => {
            c.session_id = field("trafficMirrorSessionId");
            if let Some(eni) = field("networkInterfaceId") {
                c.sources.push(eni);
            }
            c.collector = field("trafficMirrorTargetId");
            c.filter = field("trafficMirrorFilterId");
            c.session_number = number("sessionNumber");
            c.packet_length = number("packetLength");
            c.tunnel_id = number("virtualNetworkId");
            c.kind = Some(TunnelKind::Vxlan);
        }
        Object::Target => {
            c.object_id = field("trafficMirrorTargetId");
            c.collector = field("networkInterfaceId")
                .or_else(|| field("networkLoadBalancerArn"))
                .or_else(|| field("gatewayLoadBalancerEndpointId"));
        }
        Object::Filter | Object::SourceAttachment => {
            c.object_id =
                field("trafficMirrorFilterRuleId").or_else(|| field("trafficMirrorFilterId"));
            c.filter = field("trafficMirrorFilterId");
        }
    }
    let identity = &v.identity;
    c.actor_type = at(identity, &["type"]).map(str::to_owned);
    c.actor = at(identity, &["arn"])
        .or_else(|| at(identity, &["principalId"]))
        .or_else(|| at(identity, &["invokedBy"]))
        .map(str::to_owned);
    c.access_key = at(identity, &["accessKeyId"]).map(str::to_owned);
    c.session_issuer = at(identity, &["sessionContext", "sessionIssuer", "arn"]).map(str::to_owned);
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    c.actor_ip = text(&v.source_ip);
    c.user_agent = text(&v.user_agent);
    c.account = text(&v.account).or_else(|| at(identity, &["accountId"]).map(str::to_owned));
    c.region = text(&v.region);
    c.error = as_text(&v.error_code);
    // A failed call has no response; the target of a failed session is still in the request.
    if c.session_id.is_none() && action != Action::Create {
        c.session_id = find(request, "trafficMirrorSessionId").and_then(as_text);
    }
    Ok(Parsed::Changes(vec![c]))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::control::{ReadOutcome, json::read_json};

    /// A `CreateTrafficMirrorSession` record in the shape CloudTrail delivers for EC2 API
    /// calls (request and response wrapped in `...Request` / `...Response` objects), from
    /// the CloudTrail record contents reference and the EC2 API reference.
    pub(crate) const CREATE_SESSION: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEROLEID:alice","arn":"arn:aws:sts::111122223333:assumed-role/NetOps/alice","accountId":"111122223333","accessKeyId":"ASIAEXAMPLEKEY00001","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEROLEID","arn":"arn:aws:iam::111122223333:role/NetOps","accountId":"111122223333","userName":"NetOps"},"attributes":{"creationDate":"2026-01-05T08:40:02Z","mfaAuthenticated":"true"}}},"eventTime":"2026-01-05T08:52:17Z","eventSource":"ec2.amazonaws.com","eventName":"CreateTrafficMirrorSession","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.23","userAgent":"aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64.amzn.2023","requestParameters":{"CreateTrafficMirrorSessionRequest":{"NetworkInterfaceId":"eni-0a1b2c3d4e5f60001","TrafficMirrorTargetId":"tmt-0f1e2d3c4b5a60001","TrafficMirrorFilterId":"tmf-0123456789abc0001","SessionNumber":1,"VirtualNetworkId":4201,"ClientToken":"8f0c6e2a-1111-4c3b-9a51-0d3c5e7f9a01"}},"responseElements":{"CreateTrafficMirrorSessionResponse":{"xmlns":"http://ec2.amazonaws.com/doc/2016-11-15/","requestId":"c2a4e1f0-2222-4b8e-8d77-5b0f1c9e3a10","trafficMirrorSession":{"trafficMirrorSessionId":"tms-0c0ffee0000000001","trafficMirrorTargetId":"tmt-0f1e2d3c4b5a60001","trafficMirrorFilterId":"tmf-0123456789abc0001","networkInterfaceId":"eni-0a1b2c3d4e5f60001","ownerId":"111122223333","sessionNumber":1,"virtualNetworkId":4201,"tagSet":""},"clientToken":"8f0c6e2a-1111-4c3b-9a51-0d3c5e7f9a01"}},"requestID":"c2a4e1f0-2222-4b8e-8d77-5b0f1c9e3a10","eventID":"0b6e3f1c-3333-4f6a-b1d2-9e8f7a6b5c40","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;

    /// A failed `CreateTrafficMirrorSession` (an IAM user without the permission).
    const FAILED: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEUSER0001","arn":"arn:aws:iam::111122223333:user/mallory","accountId":"111122223333","accessKeyId":"AKIAEXAMPLEKEY00002","userName":"mallory"},"eventTime":"2026-01-05T08:57:03Z","eventSource":"ec2.amazonaws.com","eventName":"CreateTrafficMirrorSession","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.77","userAgent":"Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.12.2","errorCode":"Client.UnauthorizedOperation","errorMessage":"You are not authorized to perform this operation.","requestParameters":{"CreateTrafficMirrorSessionRequest":{"NetworkInterfaceId":"eni-0a1b2c3d4e5f60009","TrafficMirrorTargetId":"tmt-0f1e2d3c4b5a60009","SessionNumber":1}},"responseElements":null,"requestID":"d1","eventID":"e1","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333"}"#;

    fn read(text: &str) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        read_json(text.as_bytes(), &Arc::from("ct.json"), &mut out);
        out
    }

    #[test]
    fn parses_known_record() {
        let doc = format!("{{\"Records\":[{CREATE_SESSION}]}}");
        let out = read(&doc);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let c = &out.changes[0];
        assert_eq!(c.operation, "CreateTrafficMirrorSession");
        assert_eq!(c.session_id.as_deref(), Some("tms-0c0ffee0000000001"));
        assert_eq!(c.sources, ["eni-0a1b2c3d4e5f60001"]);
        assert_eq!(c.collector.as_deref(), Some("tmt-0f1e2d3c4b5a60001"));
        assert_eq!(c.filter.as_deref(), Some("tmf-0123456789abc0001"));
        assert_eq!(c.tunnel_id, Some(4201));
        assert_eq!(c.session_number, Some(1));
        assert_eq!(c.kind, Some(TunnelKind::Vxlan));
        assert_eq!(
            c.actor.as_deref(),
            Some("arn:aws:sts::111122223333:assumed-role/NetOps/alice")
        );
        assert_eq!(
            c.session_issuer.as_deref(),
            Some("arn:aws:iam::111122223333:role/NetOps")
        );
        assert_eq!(c.access_key.as_deref(), Some("ASIAEXAMPLEKEY00001"));
        assert_eq!(c.actor_ip.as_deref(), Some("198.51.100.23"));
        assert_eq!(c.account.as_deref(), Some("111122223333"));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert!(c.error.is_none());
        assert_eq!(c.location.unit, "record");
    }

    #[test]
    fn failed_attempt_keeps_error_and_request() {
        let out = read(FAILED);
        let c = &out.changes[0];
        assert_eq!(c.error.as_deref(), Some("Client.UnauthorizedOperation"));
        assert_eq!(c.sources, ["eni-0a1b2c3d4e5f60009"]);
        assert_eq!(
            c.actor.as_deref(),
            Some("arn:aws:iam::111122223333:user/mallory")
        );
        assert_eq!(c.location.index, 1, "line number");
    }

    #[test]
    fn other_calls_are_ignored_and_eventbridge_is_unwrapped() {
        let other = CREATE_SESSION.replace("CreateTrafficMirrorSession", "RunInstances");
        let bridge = format!(
            "{{\"version\":\"0\",\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.ec2\",\"detail\":{CREATE_SESSION}}}"
        );
        let out = read(&format!("{other}\n{bridge}\n"));
        assert_eq!(out.ignored, 1);
        assert_eq!(out.changes.len(), 1);
        assert_eq!(out.changes[0].location.index, 2);
    }

    #[test]
    fn rejects_bad_event_time() {
        let bad = CREATE_SESSION.replace("2026-01-05T08:52:17Z", "last tuesday");
        let out = read(&bad);
        assert_eq!(out.errors.len(), 1);
        let e = out.errors[0].to_string();
        assert!(
            e.starts_with("ct.json: line 1: ") && e.contains("eventTime"),
            "{e}"
        );
    }

    #[test]
    fn truncated_records_file_keeps_earlier_records() {
        let doc = format!("{{\"Records\":[{CREATE_SESSION},{CREATE_SESSION},{CREATE_SESSION}]}}");
        let cut = &doc[..doc.len() - 200];
        let out = read(cut);
        assert_eq!(out.changes.len(), 2);
        assert_eq!(out.errors.len(), 1);
        assert!(
            out.errors[0].to_string().contains("record 2"),
            "{}",
            out.errors[0]
        );
    }
}
