//! Event timestamps to microseconds and back.
//!
//! Events carry RFC 3339 packet times. Two spellings are accepted, the one the sensor wrote
//! first (`2026-01-05T09:00:01.530893Z`) and Suricata's EVE spelling
//! (`2026-01-05T09:00:01.530893+0000`), with any offset and any number of fraction digits, so
//! reports can be built from event files of any version. A string that is not a time is `None`:
//! the event is still counted, it only stays off the time axes.

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)`.
pub fn parse(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second (60) is folded into the next one rather than refused.
    if second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let Some((&b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        // Keep microseconds: further digits are dropped, fewer are scaled up.
        for (i, c) in frac[..n].iter().enumerate() {
            if i < 6 {
                micros = micros * 10 + i64::from(c - b'0');
            }
        }
        for _ in n..6 {
            micros *= 10;
        }
        rest = &frac[n..];
    }
    let offset_s = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), tz @ ..] => {
            let (h, m) = match tz {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                _ => return None,
            };
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1_000_000 + micros)
}

/// `2026-01-05 09:00:01.530` (UTC, milliseconds): short enough for tables and axes.
pub fn format_ms(t: Micros) -> String {
    let (date, hms, frac) = split(t);
    format!("{date} {hms}.{:03}", frac / 1000)
}

/// `09:00:01` when `t` falls on the same day as `base`, else the date too (axis labels).
pub fn format_axis(t: Micros, base: Micros) -> String {
    let (date, hms, _) = split(t);
    let (base_date, _, _) = split(base);
    if date == base_date {
        hms
    } else {
        format!("{date} {hms}")
    }
}

/// A duration in microseconds, in the largest unit that keeps it readable.
pub fn format_duration(us: i64) -> String {
    let s = us as f64 / 1e6;
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }
}

fn split(t: Micros) -> (String, String, i64) {
    let secs = t.div_euclid(1_000_000);
    let frac = t.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60),
        frac,
    )
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

// Howard Hinnant's days_from_civil and civil_from_days (public domain algorithms): exact for
// the proleptic Gregorian calendar, no tables, no allocation.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_give_the_same_time() {
        let z = parse("2026-01-05T09:00:01.530893Z").unwrap();
        let eve = parse("2026-01-05T09:00:01.530893+0000").unwrap();
        let colon = parse("2026-01-05T10:00:01.530893+01:00").unwrap();
        assert_eq!(z, eve);
        assert_eq!(z, colon);
        // 2026-01-05 is 20458 days after the epoch.
        assert_eq!(z, (20_458 * 86_400 + 9 * 3600 + 1) * 1_000_000 + 530_893);
    }

    #[test]
    fn fractions_of_any_length() {
        let base = parse("2026-01-05T09:00:01Z").unwrap();
        assert_eq!(parse("2026-01-05T09:00:01.5Z").unwrap(), base + 500_000);
        assert_eq!(
            parse("2026-01-05T09:00:01.123456789Z").unwrap(),
            base + 123_456
        );
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for s in [
            "",
            "yesterday",
            "2026-13-05T09:00:01Z",
            "2026-01-05T09:00:01.Z",
            "2026-01-05T09:00:01+0",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }

    #[test]
    fn formats_round_trip() {
        let t = parse("2024-02-29T23:59:58.250Z").unwrap();
        assert_eq!(format_ms(t), "2024-02-29 23:59:58.250");
        assert_eq!(format_axis(t + 3_000_000, t), "2024-03-01 00:00:01");
        assert_eq!(format_axis(t + 1_000_000, t), "23:59:59");
    }
}
