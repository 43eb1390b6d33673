//! What the readers share: RFC 3339 and civil time, JSON walking, the JSON document reader
//! (`{"Records": [...]}`, arrays, one record per line) that dispatches each record to its
//! provider's reader, a small RFC 4180 CSV splitter and `*` glob patterns.
//!
//! Contract: no panics on any input; a JSON array is read element by element, so a document
//! cut in the middle keeps every element before the cut.

use std::sync::Arc;

use flowtable::Timestamp;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Location, Parsed, ReadError, ReadOutcome};

/// Deepest JSON nesting a key search descends.
const MAX_SEARCH_DEPTH: usize = 8;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; Howard Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

/// A timestamp from civil fields (UTC); `None` when a field is out of range or before 1970.
pub fn timestamp_from_civil(
    (year, month, day): (i32, u32, u32),
    (hour, minute, second, nanos): (u32, u32, u32, u32),
    offset_s: i64,
) -> Option<Timestamp> {
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
        - offset_s;
    u64::try_from(secs)
        .ok()
        .map(|s| Timestamp::from_secs_nanos(s, nanos))
}

/// Parses RFC 3339 / ISO 8601 (`2026-01-05T08:52:17Z`, `...17.1234567Z`, `...17+01:00`,
/// a space instead of `T`, no zone = UTC).
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> { s.get(r)?.parse().ok() };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || b.get(13) != Some(&b':') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let year = i32::try_from(num(0..4)?).ok()?;
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = s.get(19..)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut scale = 100_000_000u32;
        for d in frac.bytes().take(digits.min(9)) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
        }
        rest = frac.get(digits..)?;
    }
    let offset_s = match rest {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let hh: i64 = zone.get(1..3)?.parse().ok()?;
            let mm: i64 = zone.get(zone.len() - 2..)?.parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
    };
    timestamp_from_civil((year, month, day), (hour, minute, second, nanos), offset_s)
}

/// Month number of an English three-letter abbreviation.
pub fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.get(..3)?.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == lower)
        .map(|i| i as u32 + 1)
}

/// Parses `HH:MM:SS[.fff]` into hours, minutes, seconds and nanoseconds.
pub fn parse_clock(s: &str) -> Option<(u32, u32, u32, u32)> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut parts = hms.split(':');
    let h = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let sec = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    let mut nanos = 0u32;
    let mut scale = 100_000_000u32;
    for d in frac.bytes().take(9) {
        if !d.is_ascii_digit() {
            return None;
        }
        nanos += u32::from(d - b'0') * scale;
        scale /= 10;
    }
    Some((h, m, sec, nanos))
}

/// The value of the first key named `key` (ASCII case-insensitive), searched depth first
/// through objects and arrays, at most [`MAX_SEARCH_DEPTH`] levels. Request and response
/// shapes differ between API versions (EC2 wraps them in `...Request` / `...Response`
/// objects); searching by name reads both.
pub fn find<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    find_depth(v, key, 0)
}

fn find_depth<'v>(v: &'v Value, key: &str, depth: usize) -> Option<&'v Value> {
    if depth > MAX_SEARCH_DEPTH {
        return None;
    }
    match v {
        Value::Object(map) => {
            if let Some((_, found)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                return Some(found);
            }
            map.values()
                .find_map(|child| find_depth(child, key, depth + 1))
        }
        Value::Array(items) => items
            .iter()
            .find_map(|child| find_depth(child, key, depth + 1)),
        _ => None,
    }
}

/// A value found by [`find`] as text (strings as they are, numbers written out).
pub fn find_str(v: &Value, key: &str) -> Option<String> {
    find(v, key).and_then(as_text)
}

/// A JSON scalar as text; `None` for null, objects, arrays and empty strings.
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value found by [`find`] as an unsigned number (numbers, or strings holding one).
pub fn find_u32(v: &Value, key: &str) -> Option<u32> {
    match find(v, key)? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The string at a path of object keys (exact names).
pub fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// `*` matches any run of characters (also none), everything else itself, ASCII case
/// insensitive; an ARN, UPN or e-mail pattern such as `arn:aws:iam::111122223333:role/Net*`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if c.eq_ignore_ascii_case(&t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|c| *c == b'*')
}

/// Splits CSV text (RFC 4180: quoted fields, doubled quotes, newlines inside quotes) into
/// rows, each with the 1-based line it starts on.
pub fn csv_rows(text: &str) -> Vec<(u64, Vec<String>)> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1u64;
    let mut row_line = 1u64;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                if !(row.len() == 1 && row[0].is_empty()) {
                    rows.push((row_line, std::mem::take(&mut row)));
                }
                row.clear();
                line += 1;
                row_line = line;
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((row_line, row));
    }
    rows
}

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

/// Puts a reader's result into `out`.
pub(crate) fn collect(result: Result<Parsed, String>, loc: Location, out: &mut ReadOutcome) {
    match result {
        Ok(Parsed::Changes(changes)) => out.changes.extend(changes),
        Ok(Parsed::Ignored) => out.ignored += 1,
        Err(problem) => out.errors.push(ReadError::Record {
            path: loc.file,
            unit: loc.unit,
            index: loc.index,
            problem,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        let t = parse_rfc3339("2026-01-05T09:00:00Z").unwrap();
        assert_eq!(t, Timestamp::from_secs_nanos(1_767_603_600, 0));
        let t = parse_rfc3339("2026-01-05T08:50:01.1234567Z").unwrap();
        assert_eq!(t, Timestamp::from_secs_nanos(1_767_603_001, 123_456_700));
        let t = parse_rfc3339("2026-01-05T10:00:00+01:00").unwrap();
        assert_eq!(t, Timestamp::from_secs_nanos(1_767_603_600, 0));
        assert!(parse_rfc3339("2026-13-05T10:00:00Z").is_none());
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(parse_rfc3339("2026-01-05T10:00:00.Z").is_none());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000i64, 0, 20_458, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn glob_patterns() {
        assert!(glob_match(
            "arn:aws:iam::111122223333:role/Net*",
            "arn:aws:iam::111122223333:role/NetOps"
        ));
        assert!(glob_match("*@contoso.com", "alice@CONTOSO.com"));
        assert!(!glob_match("*@contoso.com", "mallory@evil.example"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn csv_quotes_and_newlines() {
        let rows = csv_rows("a,b,c\n1,\"x,\"\"y\"\"\nz\",3\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].0, 2);
        assert_eq!(rows[1].1, vec!["1", "x,\"y\"\nz", "3"]);
    }

    #[test]
    fn key_search_is_case_insensitive_and_deep() {
        let v: Value = serde_json::from_str(
            r#"{"requestParameters":{"CreateTrafficMirrorSessionRequest":{"VirtualNetworkId":"123"}}}"#,
        )
        .unwrap();
        assert_eq!(find_u32(&v, "virtualNetworkId"), Some(123));
        assert_eq!(find_u32(&v, "nothing"), None);
    }
}
