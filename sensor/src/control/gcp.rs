//! GCP Cloud Audit Logs entries of Packet Mirroring changes.
//!
//! A `LogEntry` (JSON, as a log sink or `gcloud logging read --format=json` writes it) whose
//! `protoPayload` is an `AuditLog` with `methodName` `v1.compute.packetMirrorings.insert`,
//! `.patch` or `.delete` (also `beta.`). Kept: the collector ILB forwarding rule
//! (`collectorIlb.url`), mirrored subnets, instances and tags, filter CIDRs and direction,
//! `authenticationInfo.principalEmail`, `requestMetadata.callerIp` and user agent, the
//! project and region. A long-running insert logs twice (`operation.first` with the request,
//! `operation.last` without); an entry without a request body that is not a delete is
//! ignored. A non-zero `status.code` is a failed attempt.
//!
//! Classic Packet Mirroring sends copies to the collector's instance group behind an
//! internal load balancer; whether they arrive encapsulated is not documented, so the type
//! on the wire is left unknown and correlation matches on the collector.

use serde_json::Value;

use super::text::{as_text, at, find, parse_rfc3339};
use super::{Action, Location, MirrorChange, Object, Parsed, Provider};

/// Reads one `LogEntry`.
pub(crate) fn parse(v: &Value, loc: &Location) -> Result<Parsed, String> {
    let payload = v.get("protoPayload").unwrap_or(&Value::Null);
    let Some(method) = payload.get("methodName").and_then(Value::as_str) else {
        return Ok(Parsed::Ignored);
    };
    let lower = method.to_ascii_lowercase();
    let Some(verb) = lower
        .strip_prefix("v1.compute.packetmirrorings.")
        .or_else(|| lower.strip_prefix("beta.compute.packetmirrorings."))
    else {
        return Ok(Parsed::Ignored);
    };
    let action = match verb {
        "insert" => Action::Create,
        "patch" => Action::Modify,
        "delete" => Action::Delete,
        _ => return Ok(Parsed::Ignored),
    };
    let request = payload.get("request").filter(|r| r.is_object());
    let status_code = payload
        .get("status")
        .and_then(|s| s.get("code"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if request.is_none() && action != Action::Delete && status_code == 0 {
        // The completion entry of an operation logged already.
        return Ok(Parsed::Ignored);
    }
    if action == Action::Delete
        && v.get("operation")
            .and_then(|o| o.get("last"))
            .and_then(Value::as_bool)
            == Some(true)
    {
        return Ok(Parsed::Ignored);
    }
    let time_text = v
        .get("timestamp")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{method}: no timestamp"))?;
    let time =
        parse_rfc3339(time_text).ok_or_else(|| format!("{method}: bad timestamp {time_text:?}"))?;
    let mut c = MirrorChange::new(
        Provider::Gcp,
        method,
        action,
        Object::Session,
        time,
        loc.clone(),
    );
    c.session_id = at(payload, &["resourceName"]).map(str::to_owned);
    if let Some(r) = request {
        c.collector = find(r, "collectorIlb")
            .and_then(|ilb| ilb.get("url"))
            .and_then(as_text)
            .map(|u| short_url(&u));
        if let Some(mirrored) = find(r, "mirroredResources") {
            for (key, label) in [("subnetworks", "subnet"), ("instances", "instance")] {
                for item in mirrored
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(url) = item.get("url").and_then(as_text) {
                        c.sources.push(format!("{label}:{}", short_url(&url)));
                    }
                }
            }
            for tag in mirrored
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = as_text(tag) {
                    c.sources.push(format!("tag:{t}"));
                }
            }
        }
        if let Some(filter) = find(r, "filter") {
            let cidrs: Vec<String> = filter
                .get("cidrRanges")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(as_text)
                .collect();
            let direction = filter
                .get("direction")
                .and_then(as_text)
                .unwrap_or_else(|| "BOTH".to_owned());
            c.filter = Some(format!(
                "{} {direction}",
                if cidrs.is_empty() {
                    "all".to_owned()
                } else {
                    cidrs.join(",")
                }
            ));
        }
    }
    let auth = payload.get("authenticationInfo").unwrap_or(&Value::Null);
    c.actor = at(auth, &["principalEmail"])
        .or_else(|| at(auth, &["principalSubject"]))
        .map(str::to_owned);
    c.actor_type = auth
        .get("serviceAccountDelegationInfo")
        .map(|_| "delegated".to_owned());
    let meta = payload.get("requestMetadata").unwrap_or(&Value::Null);
    c.actor_ip = at(meta, &["callerIp"]).map(str::to_owned);
    c.user_agent = at(meta, &["callerSuppliedUserAgent"]).map(str::to_owned);
    let labels = v.get("resource").and_then(|r| r.get("labels"));
    c.account = labels
        .and_then(|l| at(l, &["project_id"]))
        .map(str::to_owned);
    c.region = labels.and_then(|l| at(l, &["region"])).map(str::to_owned);
    if status_code != 0 {
        let message = payload
            .get("status")
            .and_then(|s| s.get("message"))
            .and_then(as_text);
        c.error = Some(match message {
            Some(m) => format!("{status_code}: {m}"),
            None => status_code.to_string(),
        });
    }
    Ok(Parsed::Changes(vec![c]))
}

/// `projects/p/regions/r/forwardingRules/fr` from a full or partial resource URL.
fn short_url(url: &str) -> String {
    match url.find("projects/") {
        Some(i) => url[i..].to_owned(),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::control::{ReadOutcome, json::read_json};

    /// An insert as the Admin Activity audit log records it (LogEntry with an AuditLog
    /// `protoPayload`, from the Cloud Audit Logs and `packetMirrorings` REST references).
    const INSERT: &str = r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{"principalEmail":"netops@example-project.iam.gserviceaccount.com"},"requestMetadata":{"callerIp":"198.51.100.61","callerSuppliedUserAgent":"google-cloud-sdk gcloud/470.0.0 command/gcloud.compute.packet-mirrorings.create"},"serviceName":"compute.googleapis.com","methodName":"beta.compute.packetMirrorings.insert","authorizationInfo":[{"permission":"compute.packetMirrorings.create","granted":true}],"resourceName":"projects/example-project/regions/europe-west1/packetMirrorings/pm-web","request":{"@type":"type.googleapis.com/compute.packetMirrorings.insert","name":"pm-web","network":{"url":"https://www.googleapis.com/compute/beta/projects/example-project/global/networks/prod"},"collectorIlb":{"url":"https://www.googleapis.com/compute/beta/projects/example-project/regions/europe-west1/forwardingRules/fr-collector"},"mirroredResources":{"subnetworks":[{"url":"https://www.googleapis.com/compute/beta/projects/example-project/regions/europe-west1/subnetworks/web"}],"tags":["mirror-me"]},"filter":{"cidrRanges":["10.10.0.0/16"],"IPProtocols":["tcp","udp"],"direction":"BOTH"},"priority":1000}},"insertId":"-abcd1234","resource":{"type":"gce_packet_mirroring","labels":{"project_id":"example-project","region":"europe-west1","packet_mirroring_id":"1234567890"}},"timestamp":"2026-01-05T08:41:12.345678Z","severity":"NOTICE","logName":"projects/example-project/logs/cloudaudit.googleapis.com%2Factivity","operation":{"id":"operation-1767602472","producer":"compute.googleapis.com","first":true},"receiveTimestamp":"2026-01-05T08:41:13.1Z"}"#;

    #[test]
    fn parses_known_record() {
        let mut out = ReadOutcome::default();
        let last = r#"{"protoPayload":{"methodName":"beta.compute.packetMirrorings.insert","resourceName":"projects/example-project/regions/europe-west1/packetMirrorings/pm-web"},"timestamp":"2026-01-05T08:41:20Z","operation":{"id":"operation-1767602472","last":true}}"#;
        read_json(
            format!("{INSERT}\n{last}\n").as_bytes(),
            &Arc::from("gcp.json"),
            &mut out,
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.changes.len(), 1);
        assert_eq!(out.ignored, 1, "the completion entry");
        let c = &out.changes[0];
        assert_eq!(c.action, Action::Create);
        assert_eq!(
            c.collector.as_deref(),
            Some("projects/example-project/regions/europe-west1/forwardingRules/fr-collector")
        );
        assert_eq!(
            c.sources,
            [
                "subnet:projects/example-project/regions/europe-west1/subnetworks/web",
                "tag:mirror-me"
            ]
        );
        assert_eq!(c.filter.as_deref(), Some("10.10.0.0/16 BOTH"));
        assert_eq!(
            c.actor.as_deref(),
            Some("netops@example-project.iam.gserviceaccount.com")
        );
        assert_eq!(c.actor_ip.as_deref(), Some("198.51.100.61"));
        assert_eq!(c.account.as_deref(), Some("example-project"));
    }

    #[test]
    fn denied_patch_is_a_failed_attempt_and_other_methods_are_ignored() {
        let denied = INSERT
            .replace(
                "beta.compute.packetMirrorings.insert\"",
                "v1.compute.packetMirrorings.patch\"",
            )
            .replace("\"severity\":\"NOTICE\"", "\"severity\":\"ERROR\"")
            .replace(
                "\"serviceName\"",
                "\"status\":{\"code\":7,\"message\":\"PERMISSION_DENIED\"},\"serviceName\"",
            );
        let other = INSERT.replace(
            "beta.compute.packetMirrorings.insert\"",
            "v1.compute.instances.insert\"",
        );
        let mut out = ReadOutcome::default();
        read_json(
            format!("{denied}\n{other}\n").as_bytes(),
            &Arc::from("gcp.json"),
            &mut out,
        );
        assert_eq!(out.changes.len(), 1);
        assert_eq!(out.changes[0].action, Action::Modify);
        assert_eq!(
            out.changes[0].error.as_deref(),
            Some("7: PERMISSION_DENIED")
        );
        assert_eq!(out.ignored, 1);
    }
}
