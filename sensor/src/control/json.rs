//! JSON control-plane files: the framing (a `{"Records": [...]}` CloudTrail delivery, a
//! top-level array, or one document per line) and the choice of reader for each record from
//! its keys. Kept apart from `text.rs`, whose helpers the readers use, so that the readers sit
//! between the two and nothing imports back up.

use std::sync::Arc;

use serde_json::Value;
use serde_json::value::RawValue;

use super::text::collect;
use super::{Location, Parsed, ReadError, ReadOutcome};

/// Reads a JSON file: `{"Records": [...]}` (CloudTrail delivery), a top-level array (table
/// exports), or one JSON document per line (CloudTrail Lake, EventBridge, Azure diagnostic
/// settings, GCP sinks).
pub(crate) fn read_json(bytes: &[u8], name: &Arc<str>, out: &mut ReadOutcome) {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF)
        .unwrap_or(bytes.len());
    let body = &bytes[start..];
    if body.first() == Some(&b'[') {
        read_array(body, 1, name, out);
        return;
    }
    if let Some(array_at) = records_array(body) {
        read_array(&body[array_at..], 1, name, out);
        return;
    }
    // One document per line; a document spread over several lines (pretty-printed) is read
    // with the stream deserializer, its index being the line it starts on.
    let mut offset = 0usize;
    while offset < body.len() {
        let rest = &body[offset..];
        let skip = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        offset += skip;
        if offset >= body.len() {
            break;
        }
        let line = 1 + count_newlines(&bytes[..start + offset]);
        let rest = &body[offset..];
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<Envelope<'_>>();
        match stream.next() {
            Some(Ok(envelope)) => {
                let len = stream.byte_offset();
                offset += len;
                let loc = Location {
                    file: Arc::clone(name),
                    unit: "line",
                    index: line,
                };
                dispatch_raw(&envelope, &rest[..len], loc, out);
            }
            Some(Err(e)) => {
                out.records += 1;
                out.errors.push(ReadError::Record {
                    path: Arc::clone(name),
                    unit: "line",
                    index: line,
                    problem: format!("not JSON: {e}"),
                });
                // Resynchronise at the next line.
                match rest.iter().position(|b| *b == b'\n') {
                    Some(nl) => offset += nl + 1,
                    None => break,
                }
            }
            None => break,
        }
    }
}

/// Where the `[` of a `{"Records": [` document's array is, if the document is one.
fn records_array(body: &[u8]) -> Option<usize> {
    let mut i = 1usize;
    let skip_ws = |i: &mut usize| {
        while body.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    let key = b"\"Records\"";
    if body.get(i..i + key.len())? != key {
        return None;
    }
    i += key.len();
    skip_ws(&mut i);
    if body.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    skip_ws(&mut i);
    (body.get(i) == Some(&b'[')).then_some(i)
}

/// Reads the elements of a JSON array one by one (record index = element index); a broken
/// element ends the array with one counted error, keeping the elements before it.
fn read_array(array: &[u8], _depth: usize, name: &Arc<str>, out: &mut ReadOutcome) {
    let mut i = 1usize; // past '['
    let mut index = 0u64;
    loop {
        while array
            .get(i)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b',')
        {
            i += 1;
        }
        match array.get(i) {
            None => {
                out.records += 1;
                out.errors.push(ReadError::Record {
                    path: Arc::clone(name),
                    unit: "record",
                    index,
                    problem: "the document ends inside the array (truncated file)".to_owned(),
                });
                return;
            }
            Some(b']') => return,
            Some(_) => {}
        }
        let element = &array[i..];
        let mut stream = serde_json::Deserializer::from_slice(element).into_iter::<Envelope<'_>>();
        match stream.next() {
            Some(Ok(envelope)) => {
                let len = stream.byte_offset();
                i += len;
                let loc = Location {
                    file: Arc::clone(name),
                    unit: "record",
                    index,
                };
                dispatch_raw(&envelope, &element[..len], loc, out);
            }
            Some(Err(e)) => {
                out.records += 1;
                // Valid JSON of another shape (a number, a string): skip just that element.
                let mut values = serde_json::Deserializer::from_slice(element).into_iter::<Value>();
                if let Some(Ok(_)) = values.next() {
                    i += values.byte_offset();
                    out.errors.push(ReadError::Record {
                        path: Arc::clone(name),
                        unit: "record",
                        index,
                        problem: format!("not a record: {e}"),
                    });
                    index += 1;
                    continue;
                }
                out.errors.push(ReadError::Record {
                    path: Arc::clone(name),
                    unit: "record",
                    index,
                    problem: format!("not JSON ({e}); the rest of the file was not read"),
                });
                return;
            }
            None => return,
        }
        index += 1;
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// The keys that say whether a JSON record is about mirroring, read without building the
/// record (serde skips everything else without allocating): most records of a CloudTrail
/// file are other API calls, and are counted as ignored at the cost of one scan.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    detail: Option<DetailEnvelope<'a>>,
    #[serde(rename = "protoPayload", borrow, default)]
    proto_payload: Option<ProtoEnvelope<'a>>,
    #[serde(rename = "operationName", default)]
    operation_name: Option<serde::de::IgnoredAny>,
    #[serde(rename = "OperationNameValue", default)]
    operation_name_value: Option<serde::de::IgnoredAny>,
    // The other fields a CloudTrail record is read for, as the bytes of their values: a
    // relevant record is then read from them without a second pass over the whole record.
    // (Listed here rather than flattened: `flatten` would buffer every other key.)
    #[serde(rename = "eventSource", borrow, default)]
    event_source: Option<&'a RawValue>,
    #[serde(rename = "eventTime", borrow, default)]
    event_time: Option<&'a RawValue>,
    #[serde(rename = "requestParameters", borrow, default)]
    request: Option<&'a RawValue>,
    #[serde(rename = "responseElements", borrow, default)]
    response: Option<&'a RawValue>,
    #[serde(rename = "userIdentity", borrow, default)]
    identity: Option<&'a RawValue>,
    #[serde(rename = "sourceIPAddress", borrow, default)]
    source_ip: Option<&'a RawValue>,
    #[serde(rename = "userAgent", borrow, default)]
    user_agent: Option<&'a RawValue>,
    #[serde(rename = "recipientAccountId", borrow, default)]
    account: Option<&'a RawValue>,
    #[serde(rename = "awsRegion", borrow, default)]
    region: Option<&'a RawValue>,
    #[serde(rename = "errorCode", borrow, default)]
    error_code: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// The CloudTrail fields, each parsed from its own bytes (absent or unreadable: null).
    fn cloudtrail_record(&self, name: &str) -> super::cloudtrail::Record {
        let value = |raw: Option<&'a RawValue>| {
            raw.and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
                .unwrap_or(Value::Null)
        };
        super::cloudtrail::Record {
            event_name: Value::String(name.to_owned()),
            event_source: value(self.event_source),
            event_time: value(self.event_time),
            request: value(self.request),
            response: value(self.response),
            identity: value(self.identity),
            source_ip: value(self.source_ip),
            user_agent: value(self.user_agent),
            account: value(self.account),
            region: value(self.region),
            error_code: value(self.error_code),
        }
    }
}

#[derive(serde::Deserialize)]
struct DetailEnvelope<'a> {
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct ProtoEnvelope<'a> {
    #[serde(rename = "methodName", borrow, default)]
    method_name: Option<std::borrow::Cow<'a, str>>,
}

impl Envelope<'_> {
    /// Whether the record may be a mirror change (then it is parsed whole).
    fn relevant(&self) -> bool {
        let mirror_call = |name: &str| name.contains("TrafficMirror");
        self.event_name.as_deref().is_some_and(mirror_call)
            || self
                .detail
                .as_ref()
                .and_then(|d| d.event_name.as_deref())
                .is_some_and(mirror_call)
            || self
                .proto_payload
                .as_ref()
                .and_then(|p| p.method_name.as_deref())
                .is_some_and(|m| m.to_ascii_lowercase().contains("packetmirrorings"))
            || self.operation_name.is_some()
            || self.operation_name_value.is_some()
    }
}

/// Parses a relevant record whole and hands it on; counts the others as ignored.
fn dispatch_raw(envelope: &Envelope<'_>, raw: &[u8], loc: Location, out: &mut ReadOutcome) {
    if !envelope.relevant() {
        out.records += 1;
        out.ignored += 1;
        return;
    }
    // A CloudTrail record (the bulk of a trail) is read straight from its bytes into the
    // fields it needs, without building the whole record as a JSON value.
    let object = raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if let (true, Some(name), None) = (
        object,
        envelope.event_name.as_deref(),
        envelope.proto_payload.as_ref(),
    ) {
        out.records += 1;
        let record = envelope.cloudtrail_record(name);
        let result = super::cloudtrail::parse_record(&record, &loc);
        collect(result, loc, out);
        return;
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(v) => dispatch(&v, loc, out),
        Err(e) => {
            out.records += 1;
            out.errors.push(ReadError::Record {
                path: loc.file,
                unit: loc.unit,
                index: loc.index,
                problem: format!("not JSON: {e}"),
            });
        }
    }
}

/// Hands one JSON record to the reader its keys name.
fn dispatch(v: &Value, loc: Location, out: &mut ReadOutcome) {
    out.records += 1;
    let result = if !v.is_object() {
        Err("not a JSON object".to_owned())
    } else if v.get("protoPayload").is_some() {
        super::gcp::parse(v, &loc)
    } else if v.get("eventName").is_some() || v.get("eventSource").is_some() {
        super::cloudtrail::parse(v, &loc)
    } else if let Some(detail) = v.get("detail").filter(|d| d.get("eventName").is_some()) {
        // EventBridge: "AWS API Call via CloudTrail", the CloudTrail record in `detail`.
        super::cloudtrail::parse(detail, &loc)
    } else if super::azure::is_azure(v) {
        super::azure::parse_json(v, &loc)
    } else {
        Ok(Parsed::Ignored)
    };
    collect(result, loc, out);
}
