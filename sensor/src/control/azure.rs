//! Azure Activity Log records of virtual network TAP changes.
//!
//! Two shapes: the records diagnostic settings export (JSON lines: `time`, `operationName`,
//! `resourceId`, `resultType`, `callerIpAddress`, `identity.claims`, `properties.requestbody`)
//! and rows of the `AzureActivity` Log Analytics table exported to JSON or CSV
//! (`TimeGenerated`, `OperationNameValue`, `ActivityStatusValue`, `Caller`,
//! `CallerIpAddress`, `SubscriptionId`, `ResourceGroup`, `_ResourceId`, `Properties`).
//! Operations: `Microsoft.Network/virtualNetworkTaps/write|delete` (the TAP: its destination
//! NIC IP configuration or load balancer front end, and port) and
//! `Microsoft.Network/networkInterfaces/tapConfigurations/write|delete` (a source NIC
//! attached to a TAP). `Start`/`Accept` records are ignored (the `Success` record that
//! follows carries the change); `Failure` is a failed attempt.
//!
//! Azure resource ids are case-insensitive and exports differ in case, so ids are kept in
//! lower case. A TAP delivers VXLAN on UDP 4789; the VNI is not documented (left unknown).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::text::{as_text, csv_rows, find, find_str, find_u32, parse_clock, parse_rfc3339};
use super::{Action, Location, MirrorChange, Object, Parsed, Provider, ReadError, ReadOutcome};
use crate::decode::TunnelKind;
use flowtable::Timestamp;

const TAP_WRITE: &str = "microsoft.network/virtualnetworktaps/write";
const TAP_DELETE: &str = "microsoft.network/virtualnetworktaps/delete";
const TAP_CONFIG_WRITE: &str = "microsoft.network/networkinterfaces/tapconfigurations/write";
const TAP_CONFIG_DELETE: &str = "microsoft.network/networkinterfaces/tapconfigurations/delete";

/// The UPN claim of Azure AD tokens.
const CLAIM_UPN: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn";

/// Whether a JSON record is an Azure Activity record (either shape).
pub(crate) fn is_azure(v: &Value) -> bool {
    v.get("operationName").is_some() || v.get("OperationNameValue").is_some()
}

/// Reads one Azure Activity record (diagnostic export or table row).
pub(crate) fn parse_json(v: &Value, loc: &Location) -> Result<Parsed, String> {
    let operation = v
        .get("OperationNameValue")
        .or_else(|| v.get("operationName"))
        .and_then(|o| {
            o.as_str()
                .or_else(|| o.get("value").and_then(Value::as_str))
        })
        .ok_or("no operationName")?;
    let op = operation.to_ascii_lowercase();
    let (action, object) = match op.as_str() {
        TAP_WRITE => (Action::Modify, Object::Session),
        TAP_DELETE => (Action::Delete, Object::Session),
        TAP_CONFIG_WRITE => (Action::Modify, Object::SourceAttachment),
        TAP_CONFIG_DELETE => (Action::Delete, Object::SourceAttachment),
        _ => return Ok(Parsed::Ignored),
    };
    let status = [
        "ActivityStatusValue",
        "resultType",
        "ActivityStatus",
        "status",
    ]
    .iter()
    .find_map(|k| v.get(*k))
    .and_then(|s| {
        s.as_str()
            .or_else(|| s.get("value").and_then(Value::as_str))
    })
    .unwrap_or("Success");
    let failed = match status.to_ascii_lowercase().as_str() {
        "start" | "started" | "accept" | "accepted" => return Ok(Parsed::Ignored),
        "failure" | "failed" => true,
        _ => false,
    };
    let time_text = ["TimeGenerated", "time", "eventTimestamp"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .ok_or_else(|| format!("{operation}: no time"))?;
    let time =
        parse_time(time_text).ok_or_else(|| format!("{operation}: bad time {time_text:?}"))?;
    // A TAP write is create-or-update; the inventory decides which it was.
    let mut c = MirrorChange::new(
        Provider::Azure,
        operation,
        action,
        object,
        time,
        loc.clone(),
    );
    let resource = ["_ResourceId", "ResourceId", "resourceId"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::to_ascii_lowercase);
    let body = request_body(v);
    match object {
        Object::Session => {
            c.session_id = resource.clone();
            if let Some(body) = &body {
                let dest = find(body, "destinationNetworkInterfaceIPConfiguration")
                    .or_else(|| find(body, "destinationLoadBalancerFrontEndIPConfiguration"));
                if let Some(dest) = dest {
                    c.collector = find_str(dest, "id").map(|s| s.to_ascii_lowercase());
                    c.collector_ip =
                        find_str(dest, "privateIPAddress").and_then(|s| s.parse().ok());
                }
                c.dest_port = find_u32(body, "destinationPort").and_then(|p| u16::try_from(p).ok());
            }
            c.kind = Some(TunnelKind::Vxlan);
        }
        _ => {
            c.object_id = resource.clone();
            // The NIC is the resource id up to `/tapconfigurations/`.
            if let Some(r) = &resource {
                let nic = r.split("/tapconfigurations/").next().unwrap_or(r);
                c.sources.push(nic.to_owned());
            }
            c.session_id = body
                .as_ref()
                .and_then(|b| find(b, "virtualNetworkTap"))
                .and_then(|t| find_str(t, "id"))
                .map(|s| s.to_ascii_lowercase());
        }
    }
    c.actor = v
        .get("Caller")
        .or_else(|| v.get("caller"))
        .and_then(as_text)
        .or_else(|| claim(v, CLAIM_UPN))
        .or_else(|| claim(v, "name"));
    c.actor_ip = ["CallerIpAddress", "callerIpAddress"]
        .iter()
        .find_map(|k| v.get(*k).and_then(as_text));
    c.account = v.get("SubscriptionId").and_then(as_text).or_else(|| {
        resource
            .as_deref()
            .and_then(|r| segment(r, "subscriptions"))
    });
    c.region = v
        .get("ResourceGroup")
        .and_then(as_text)
        .map(|s| s.to_ascii_lowercase())
        .or_else(|| {
            resource
                .as_deref()
                .and_then(|r| segment(r, "resourcegroups"))
        });
    if failed {
        c.error = Some(
            v.get("resultSignature")
                .and_then(as_text)
                .or_else(|| v.get("ActivitySubstatusValue").and_then(as_text))
                .unwrap_or_else(|| status.to_owned()),
        );
    }
    Ok(Parsed::Changes(vec![c]))
}

/// Reads an `AzureActivity` table exported as CSV: the header row names the columns.
pub(crate) fn read_csv(bytes: &[u8], name: &Arc<str>, out: &mut ReadOutcome) {
    let text = String::from_utf8_lossy(bytes);
    let mut rows = csv_rows(&text).into_iter();
    let Some((_, header)) = rows.next() else {
        return;
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    for (line, row) in rows {
        out.records += 1;
        let loc = Location {
            file: Arc::clone(name),
            unit: "line",
            index: line,
        };
        if row.len() != header.len() {
            out.errors.push(ReadError::Record {
                path: Arc::clone(name),
                unit: "line",
                index: line,
                problem: format!("{} fields, the header has {}", row.len(), header.len()),
            });
            continue;
        }
        let mut map = Map::new();
        for (k, val) in header.iter().zip(row) {
            map.insert(k.clone(), Value::String(val));
        }
        let result = parse_json(&Value::Object(map), &loc);
        super::text::collect(result, loc, out);
    }
}

/// The request body: `properties.requestbody` (a JSON string) or the table's `Properties` /
/// `Properties_d` column (a JSON string or object holding `requestbody`).
fn request_body(v: &Value) -> Option<Value> {
    let props = v
        .get("properties")
        .or_else(|| v.get("Properties_d"))
        .or_else(|| v.get("Properties"))?;
    let props = match props {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    match find(&props, "requestbody")? {
        Value::String(s) => serde_json::from_str(s).ok(),
        other => Some(other.clone()),
    }
}

fn claim(v: &Value, name: &str) -> Option<String> {
    let claims = v
        .get("identity")
        .and_then(|i| i.get("claims"))
        .or_else(|| v.get("Claims_d"))?;
    claims.get(name).and_then(as_text)
}

/// The segment after `/key/` in a resource id.
fn segment(resource: &str, key: &str) -> Option<String> {
    let mut parts = resource.split('/');
    parts.find(|p| p.eq_ignore_ascii_case(key))?;
    parts.next().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// RFC 3339, or the Log Analytics export form `1/5/2026, 8:48:31.123 AM` (UTC).
fn parse_time(s: &str) -> Option<Timestamp> {
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    let (date, rest) = s.trim().split_once(',')?;
    let mut d = date.trim().split('/');
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let year: i32 = d.next()?.parse().ok()?;
    let mut parts = rest.split_whitespace();
    let (mut h, m, sec, nanos) = parse_clock(parts.next()?)?;
    match parts.next().map(str::to_ascii_uppercase).as_deref() {
        Some("PM") if h < 12 => h += 12,
        Some("AM") if h == 12 => h = 0,
        _ => {}
    }
    super::text::timestamp_from_civil((year, month, day), (h, m, sec, nanos), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::json::read_json;

    /// A TAP write as diagnostic settings export it (Activity Log resource-log schema, one
    /// record per line; `requestbody` as the ARM `VirtualNetworkTap` body).
    const TAP_WRITE_RECORD: &str = r#"{"time":"2026-01-05T08:48:31.1234567Z","resourceId":"/SUBSCRIPTIONS/00000000-1111-2222-3333-444455556666/RESOURCEGROUPS/RG-NET/PROVIDERS/MICROSOFT.NETWORK/VIRTUALNETWORKTAPS/TAP-COLLECTOR","operationName":"MICROSOFT.NETWORK/VIRTUALNETWORKTAPS/WRITE","category":"Administrative","resultType":"Success","resultSignature":"Succeeded.Created","durationMs":"1523","callerIpAddress":"198.51.100.41","correlationId":"7a1c2e3f-0000-4b4b-8c8c-123456789abc","identity":{"authorization":{"scope":"/subscriptions/00000000-1111-2222-3333-444455556666/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworkTaps/tap-collector","action":"Microsoft.Network/virtualNetworkTaps/write"},"claims":{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":"alice@contoso.com","name":"Alice Example","ipaddr":"198.51.100.41"}},"level":"Information","location":"global","properties":{"statusCode":"Created","eventCategory":"Administrative","message":"Microsoft.Network/virtualNetworkTaps/write","requestbody":"{\"location\":\"westeurope\",\"properties\":{\"destinationNetworkInterfaceIPConfiguration\":{\"id\":\"/subscriptions/00000000-1111-2222-3333-444455556666/resourceGroups/rg-net/providers/Microsoft.Network/networkInterfaces/collector-nic/ipConfigurations/ipconfig1\",\"properties\":{\"privateIPAddress\":\"10.9.0.10\"}},\"destinationPort\":4789}}"}}"#;

    fn read(text: &str) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        read_json(text.as_bytes(), &Arc::from("activity.json"), &mut out);
        out
    }

    #[test]
    fn parses_known_record() {
        let out = read(TAP_WRITE_RECORD);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let c = &out.changes[0];
        assert_eq!(c.object, Object::Session);
        assert!(
            c.session_id
                .as_deref()
                .unwrap()
                .ends_with("/virtualnetworktaps/tap-collector")
        );
        assert!(
            c.collector
                .as_deref()
                .unwrap()
                .ends_with("/collector-nic/ipconfigurations/ipconfig1")
        );
        assert_eq!(c.collector_ip, Some("10.9.0.10".parse().unwrap()));
        assert_eq!(c.dest_port, Some(4789));
        assert_eq!(c.actor.as_deref(), Some("alice@contoso.com"));
        assert_eq!(c.actor_ip.as_deref(), Some("198.51.100.41"));
        assert_eq!(
            c.account.as_deref(),
            Some("00000000-1111-2222-3333-444455556666")
        );
        assert_eq!(c.region.as_deref(), Some("rg-net"));
        assert!(c.error.is_none());
    }

    #[test]
    fn start_is_ignored_and_failure_is_an_attempt() {
        let start =
            TAP_WRITE_RECORD.replace("\"resultType\":\"Success\"", "\"resultType\":\"Start\"");
        let failed =
            TAP_WRITE_RECORD.replace("\"resultType\":\"Success\"", "\"resultType\":\"Failure\"");
        let out = read(&format!("{start}\n{failed}\n"));
        assert_eq!(out.ignored, 1);
        assert_eq!(out.changes.len(), 1);
        assert_eq!(out.changes[0].error.as_deref(), Some("Succeeded.Created"));
    }

    #[test]
    fn table_rows_as_csv() {
        let csv = "TimeGenerated,OperationNameValue,ActivityStatusValue,Caller,CallerIpAddress,SubscriptionId,ResourceGroup,_ResourceId,Properties\n\
\"1/5/2026, 8:49:02.000 AM\",MICROSOFT.NETWORK/NETWORKINTERFACES/TAPCONFIGURATIONS/WRITE,Success,alice@contoso.com,198.51.100.41,00000000-1111-2222-3333-444455556666,RG-NET,/subscriptions/00000000-1111-2222-3333-444455556666/resourcegroups/rg-net/providers/microsoft.network/networkinterfaces/web-nic-1/tapconfigurations/tapcfg1,\"{\"\"requestbody\"\":\"\"{\\\"\"properties\\\"\":{\\\"\"virtualNetworkTap\\\"\":{\\\"\"id\\\"\":\\\"\"/subscriptions/x/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworkTaps/tap-collector\\\"\"}}}\"\"}\"\n\
short,row\n";
        let mut out = ReadOutcome::default();
        read_csv(csv.as_bytes(), &Arc::from("azure.csv"), &mut out);
        assert_eq!(out.changes.len(), 1, "{:?}", out.errors);
        let c = &out.changes[0];
        assert_eq!(c.object, Object::SourceAttachment);
        assert!(c.sources[0].ends_with("/networkinterfaces/web-nic-1"));
        assert!(
            c.session_id
                .as_deref()
                .unwrap()
                .ends_with("/virtualnetworktaps/tap-collector")
        );
        assert_eq!(c.time, parse_rfc3339("2026-01-05T08:49:02Z").unwrap());
        assert_eq!(out.errors.len(), 1);
        assert!(out.errors[0].to_string().starts_with("azure.csv: line 3: "));
    }
}
