//! What the readers share: RFC 3339 and civil time, JSON walking, the JSON document reader
//! (`{"Records": [...]}`, arrays, one record per line) that dispatches each record to its
//! provider's reader, a small RFC 4180 CSV splitter, the small table files (assets, change records:
//! CSV or JSON rows) and `*` glob patterns.
//!
//! Contract: no panics on any input; a JSON array is read element by element, so a document
//! cut in the middle keeps every element before the cut.

use std::path::Path;

use flowtable::Timestamp;
use serde_json::{Map, Value};

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

/// Errors of a small table file (the asset file, the change-record file): each names the
/// file, and a bad row also its line or record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableFileError {
    /// Cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A row the file's reader cannot use (no id, a bad address, a bad time).
    #[error("{path}: {unit} {index}: {problem}")]
    Row {
        /// The file.
        path: String,
        /// `line` or `record`.
        unit: &'static str,
        /// Where.
        index: u64,
        /// What is wrong.
        problem: String,
    },
}

/// One table row: its unit (`line` or `record`), index, and fields.
pub type TableRow = (&'static str, u64, Map<String, Value>);

/// Reads a small table file whole: its name for messages, and its rows.
pub fn read_table(path: &Path) -> Result<(String, Vec<TableRow>), TableFileError> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((name, table_rows(&text))),
        Err(source) => Err(TableFileError::Io { path: name, source }),
    }
}

/// Rows of a small table file: CSV with a header, a JSON array of objects, or one JSON
/// object per line. Each row comes with its unit and index for error messages.
pub fn table_rows(text: &str) -> Vec<TableRow> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return match serde_json::from_str::<Vec<Value>>(trimmed) {
            Ok(items) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Object(m) => Some(("record", i as u64, m)),
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
    }
    if trimmed.starts_with('{') {
        return text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let m = match serde_json::from_str::<Value>(l) {
                    Ok(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                ("line", i as u64 + 1, m)
            })
            .collect();
    }
    let mut rows = csv_rows(text).into_iter();
    let Some((_, header)) = rows.next() else {
        return Vec::new();
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    rows.map(|(line, fields)| {
        let mut m = Map::new();
        // Extra fields after the last column belong to it (several IPs: `id,ip1,ip2`).
        let last = header.len().saturating_sub(1);
        for (i, f) in fields.into_iter().enumerate() {
            let key = header.get(i.min(last)).cloned().unwrap_or_default();
            match m.get_mut(&key) {
                Some(Value::String(prev)) => {
                    prev.push(';');
                    prev.push_str(f.trim());
                }
                _ => {
                    m.insert(key, Value::String(f.trim().to_owned()));
                }
            }
        }
        ("line", line, m)
    })
    .collect()
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
