//! Network device syslog lines that record configuration changes.
//!
//! Headers: RFC 5424 (`<189>1 2026-01-05T08:45:00.000Z host app - - - msg`), RFC 3164
//! (`<189>Jan  5 08:45:00 host msg`, the year from the caller: the format has none), and the
//! same without the `<PRI>` (files written by syslog daemons).
//! Messages:
//! - Cisco IOS/IOS-XE/NX-OS `%PARSER-5-CFGLOG_LOGGEDCMD: User:NAME  logged command:CMD` (the
//!   configuration archive logger, one line per command) and
//!   `%SYS-5-CONFIG_I: Configured from console by NAME on vty0 (ADDR)`;
//! - Juniper `UI_CFG_AUDIT_SET` / `UI_CFG_AUDIT_OTHER` (`User 'NAME' set: [PATH] old -> "new"`,
//!   `delete: [PATH]`) and `UI_COMMIT` (`User 'NAME' requested 'commit' operation (comment:
//!   TEXT)`): set commands apply only when committed;
//! - Arista `%SYS-5-CONFIG_E` / `%SYS-5-CONFIG_I` (who configured, from where) and AAA
//!   command accounting (`%ACCOUNTING-6-CMD: USER TTY ADDR stop ... cmd=CMD`).
//!
//! Commands are folded per device with the grammar of `device_config.rs`; a change is emitted
//! when the device says the configuration was applied (`CONFIG_I`, `UI_COMMIT`), or at the
//! end of the file for Cisco and Arista commands (already applied when logged).

use std::collections::HashMap;
use std::sync::Arc;

use flowtable::Timestamp;

use super::device_config::{CiscoState, DeviceSessions, arista_apply, junos_apply};
use super::text::{month_number, parse_clock, parse_rfc3339, timestamp_from_civil};
use super::{Location, MirrorChange, Provider, ReadError, ReadOutcome};

/// Devices whose pending commands are tracked at once in one file.
const MAX_DEVICES: usize = 4096;

/// A parsed syslog header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogLine<'a> {
    /// The header time.
    pub time: Timestamp,
    /// The sending host.
    pub host: &'a str,
    /// The message after the header (tag included).
    pub message: &'a str,
}

/// Whether a line is a syslog line with a header we read.
pub fn looks_like_syslog(line: &str) -> bool {
    parse_header(line, 2026).is_some()
        && (line.contains('%') || line.contains("UI_CFG_AUDIT") || line.contains("UI_COMMIT"))
}

/// Parses an RFC 5424 or RFC 3164 header; `year` completes RFC 3164 timestamps.
pub fn parse_header(line: &str, year: i32) -> Option<SyslogLine<'_>> {
    let mut rest = line.trim_start();
    if let Some(after) = rest.strip_prefix('<') {
        let end = after.find('>')?;
        if end == 0 || end > 3 || !after[..end].bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest = &after[end + 1..];
        // RFC 5424: version 1, then an RFC 3339 time.
        if let Some(v5424) = rest.strip_prefix("1 ") {
            let mut fields = v5424.splitn(6, ' ');
            let time = parse_rfc3339(fields.next()?)?;
            let host = fields.next()?;
            let _app = fields.next()?;
            let _proc = fields.next()?;
            let _msgid = fields.next()?;
            let mut rem = fields.next().unwrap_or("");
            // Structured data: `-`, or one or more `[...]` elements (`\]` escapes).
            if let Some(r) = rem.strip_prefix('-') {
                rem = r;
            } else {
                while rem.starts_with('[') {
                    let bytes = rem.as_bytes();
                    let mut i = 1;
                    while i < bytes.len() && !(bytes[i] == b']' && bytes[i - 1] != b'\\') {
                        i += 1;
                    }
                    rem = rem.get(i + 1..).unwrap_or("");
                }
            }
            let message = rem.trim_start();
            return Some(SyslogLine {
                time,
                host,
                message,
            });
        }
    }
    // An RFC 3339 time written by a syslog daemon.
    if rest.as_bytes().get(4) == Some(&b'-') {
        let (stamp, after) = rest.split_once(' ')?;
        let time = parse_rfc3339(stamp)?;
        let (host, message) = after.split_once(' ')?;
        return Some(SyslogLine {
            time,
            host,
            message,
        });
    }
    // RFC 3164: `Mmm dd hh:mm:ss host msg` (day padded with a space).
    let month = month_number(rest.get(..3)?)?;
    let after_month = rest.get(3..)?.trim_start();
    let (day, after_day) = after_month.split_once(' ')?;
    let day: u32 = day.parse().ok()?;
    let after_day = after_day.trim_start();
    let (clock, after_clock) = after_day.split_once(' ')?;
    let (h, m, s, nanos) = parse_clock(clock)?;
    let time = timestamp_from_civil((year, month, day), (h, m, s, nanos), 0)?;
    let (host, message) = after_clock.trim_start().split_once(' ')?;
    Some(SyslogLine {
        time,
        host,
        message,
    })
}

/// Pending configuration of one device.
#[derive(Debug, Default)]
struct Device {
    provider: Option<Provider>,
    sessions: DeviceSessions,
    cisco: CiscoState,
    /// Sessions touched since the last emission, with the line of their first command.
    touched: Vec<(String, u64)>,
    actor: Option<String>,
    last_time: Timestamp,
}

/// Reads syslog lines.
pub(crate) fn read(bytes: &[u8], name: &Arc<str>, year: i32, out: &mut ReadOutcome) {
    let text = String::from_utf8_lossy(bytes);
    let mut devices: HashMap<String, Device> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        out.records += 1;
        let Some(h) = parse_header(line, year) else {
            out.errors.push(ReadError::Record {
                path: Arc::clone(name),
                unit: "line",
                index: line_no,
                problem: "not a syslog line (RFC 3164 or RFC 5424 header expected)".to_owned(),
            });
            continue;
        };
        let msg = h.message;
        let known = devices.contains_key(h.host);
        if !known && devices.len() >= MAX_DEVICES {
            out.ignored += 1;
            continue;
        }
        let dev = devices.entry(h.host.to_owned()).or_default();
        dev.last_time = h.time;
        let loc = |index| Location {
            file: Arc::clone(name),
            unit: "line",
            index,
        };
        if let Some(rest) = after_tag(msg, "%PARSER-5-CFGLOG_LOGGEDCMD:") {
            // `User:netadmin  logged command:monitor session 1 type erspan-source`
            let Some((user, command)) = rest.split_once("logged command:") else {
                push_error(
                    out,
                    name,
                    line_no,
                    "CFGLOG_LOGGEDCMD without `logged command:`",
                );
                continue;
            };
            let user = user.trim().trim_start_matches("User:").trim();
            dev.provider = Some(Provider::Cisco);
            dev.actor = Some(user.to_owned());
            match dev.cisco.apply(&mut dev.sessions, command.trim()) {
                Some(s) => touch(dev, s, line_no),
                None => out.ignored += 1,
            }
        } else if let Some(rest) = after_tag(msg, "%SYS-5-CONFIG_I:") {
            // `Configured from console by admin on vty0 (10.0.0.50)`
            let (user, addr) = configured_by(rest);
            if dev.touched.is_empty() {
                out.ignored += 1;
                continue;
            }
            if dev.actor.is_none() {
                dev.actor = user;
            }
            emit(dev, h.host, h.time, addr, None, &loc, out);
        } else if after_tag(msg, "%SYS-5-CONFIG_E:").is_some() {
            dev.provider.get_or_insert(Provider::Arista);
            out.ignored += 1;
        } else if let Some(rest) = after_tag(msg, "%ACCOUNTING-6-CMD:") {
            // `admin vty3 10.0.0.50 stop task_id=8 ... cmd=monitor session m1 ...`
            let mut words = rest.split_whitespace();
            let user = words.next().map(str::to_owned);
            let Some((_, command)) = rest.split_once("cmd=") else {
                out.ignored += 1;
                continue;
            };
            dev.provider = Some(Provider::Arista);
            dev.actor = user;
            match arista_apply(&mut dev.sessions, command.trim()) {
                Some(s) => touch(dev, s, line_no),
                None => out.ignored += 1,
            }
        } else if let Some(rest) = after_tag(msg, "UI_CFG_AUDIT_SET:")
            .or_else(|| after_tag(msg, "UI_CFG_AUDIT_OTHER:"))
            .or_else(|| after_tag(msg, "UI_CFG_AUDIT_SET_SECRET:"))
        {
            // `User 'jdoe' set: [forwarding-options analyzer an1 output ip-address] <unconfigured> -> "203.0.113.9"`
            let Some((user, verb, path, value)) = junos_audit(rest) else {
                push_error(
                    out,
                    name,
                    line_no,
                    "UI_CFG_AUDIT message without `User '...' set|delete: [path]`",
                );
                continue;
            };
            dev.provider = Some(Provider::Juniper);
            dev.actor = Some(user);
            let mut words: Vec<&str> = path.split_whitespace().collect();
            if let Some(v) = value.as_deref() {
                words.push(v);
            }
            match junos_apply(&mut dev.sessions, verb == "delete", &words) {
                Some(s) => touch(dev, s, line_no),
                None => out.ignored += 1,
            }
        } else if let Some(rest) = after_tag(msg, "UI_COMMIT:") {
            // `User 'jdoe' requested 'commit' operation (comment: CHG0012345)`
            if dev.touched.is_empty() {
                out.ignored += 1;
                continue;
            }
            let user = quoted_user(rest);
            let comment = rest
                .split_once("(comment: ")
                .map(|(_, c)| c.trim_end().trim_end_matches(')').trim().to_owned())
                .filter(|c| !c.is_empty());
            if let Some(u) = user {
                dev.actor = Some(u);
            }
            emit(dev, h.host, h.time, None, comment, &loc, out);
        } else {
            out.ignored += 1;
        }
    }
    // Cisco and Arista commands are in effect as soon as they are logged.
    let mut hosts: Vec<String> = devices.keys().cloned().collect();
    hosts.sort();
    for host in hosts {
        let Some(dev) = devices.get_mut(&host) else {
            continue;
        };
        if dev.provider != Some(Provider::Juniper) && !dev.touched.is_empty() {
            let time = dev.last_time;
            let loc = |index| Location {
                file: Arc::clone(name),
                unit: "line",
                index,
            };
            emit(dev, &host, time, None, None, &loc, out);
        }
    }
}

fn touch(dev: &mut Device, session: String, line: u64) {
    if !dev.touched.iter().any(|(s, _)| *s == session) {
        dev.touched.push((session, line));
    }
}

/// Emits one change per touched session of `dev`.
fn emit(
    dev: &mut Device,
    host: &str,
    time: Timestamp,
    addr: Option<String>,
    comment: Option<String>,
    loc: &dyn Fn(u64) -> Location,
    out: &mut ReadOutcome,
) {
    let provider = dev.provider.unwrap_or(Provider::Cisco);
    for (name, line) in std::mem::take(&mut dev.touched) {
        let Some(s) = dev.sessions.sessions.iter().find(|s| s.name == name) else {
            continue;
        };
        let mut c: MirrorChange = s.to_change(provider, host, time, loc(line));
        c.actor = dev.actor.clone();
        c.actor_ip = addr.clone();
        c.change_comment = comment.clone();
        // A session seen before in this file is modified, not created.
        if !s.deleted
            && out
                .changes
                .iter()
                .any(|p| p.session_id == c.session_id && p.provider == provider)
        {
            c.action = super::Action::Modify;
        }
        out.changes.push(c);
    }
}

fn push_error(out: &mut ReadOutcome, name: &Arc<str>, line: u64, problem: &str) {
    out.errors.push(ReadError::Record {
        path: Arc::clone(name),
        unit: "line",
        index: line,
        problem: problem.to_owned(),
    });
}

/// The text after `tag` in a message.
fn after_tag<'a>(msg: &'a str, tag: &str) -> Option<&'a str> {
    msg.find(tag).map(|i| msg[i + tag.len()..].trim_start())
}

/// `Configured from console by admin on vty0 (10.0.0.50)` → user and address.
fn configured_by(rest: &str) -> (Option<String>, Option<String>) {
    let user = rest
        .split_once(" by ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .map(str::to_owned);
    let addr = rest
        .rsplit_once('(')
        .map(|(_, a)| a.trim_end().trim_end_matches(')').to_owned())
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok());
    (user, addr)
}

fn quoted_user(rest: &str) -> Option<String> {
    let after = rest.strip_prefix("User '")?;
    after.split_once('\'').map(|(u, _)| u.to_owned())
}

/// `User 'jdoe' set: [path] old -> "new"` → user, verb, path, new value.
fn junos_audit(rest: &str) -> Option<(String, String, String, Option<String>)> {
    let user = quoted_user(rest)?;
    let after_user = rest.split_once("' ")?.1;
    let (verb, after_verb) = after_user.split_once(':')?;
    let open = after_verb.find('[')?;
    let close = after_verb.rfind(']')?;
    let path = after_verb.get(open + 1..close)?.trim().to_owned();
    let value = after_verb
        .get(close + 1..)
        .and_then(|v| v.rsplit_once("->"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty());
    Some((user, verb.trim().to_owned(), path, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TunnelKind;

    fn read_text(text: &str) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        read(text.as_bytes(), &Arc::from("devices.log"), 2026, &mut out);
        out
    }

    #[test]
    fn headers() {
        let h = parse_header(
            "<189>1 2026-01-05T08:45:00.000Z core-sw1 - - - - %SYS-5-CONFIG_I: x",
            1999,
        )
        .unwrap();
        assert_eq!(h.host, "core-sw1");
        assert_eq!(h.message, "%SYS-5-CONFIG_I: x");
        assert_eq!(h.time, parse_rfc3339("2026-01-05T08:45:00Z").unwrap());
        let h = parse_header("<189>Jan  5 08:45:00 core-sw1 42: %SYS-5-CONFIG_I: x", 2026).unwrap();
        assert_eq!(h.time, parse_rfc3339("2026-01-05T08:45:00Z").unwrap());
        assert_eq!(h.message, "42: %SYS-5-CONFIG_I: x");
        let h = parse_header("<14>1 2026-01-05T08:45:00Z mx1 mgd 4242 UI_COMMIT [junos@2636.1.1.1.2.25 username=\"jdoe\"] User 'jdoe' requested 'commit'", 0).unwrap();
        assert_eq!(h.message, "User 'jdoe' requested 'commit'");
        assert!(parse_header("<999999>Jan 5", 2026).is_none());
        assert!(parse_header("hello world", 2026).is_none());
    }

    #[test]
    fn cisco_logged_commands_make_one_session() {
        let out = read_text(concat!(
            "<189>Jan  5 08:45:01 core-sw1 101: Jan  5 08:45:01.120 UTC: %PARSER-5-CFGLOG_LOGGEDCMD: User:netadmin  logged command:monitor session 1 type erspan-source\n",
            "<189>Jan  5 08:45:02 core-sw1 102: Jan  5 08:45:02.410 UTC: %PARSER-5-CFGLOG_LOGGEDCMD: User:netadmin  logged command:source interface Gi1/0/1 both\n",
            "<189>Jan  5 08:45:03 core-sw1 103: Jan  5 08:45:03.020 UTC: %PARSER-5-CFGLOG_LOGGEDCMD: User:netadmin  logged command:destination\n",
            "<189>Jan  5 08:45:04 core-sw1 104: Jan  5 08:45:04.300 UTC: %PARSER-5-CFGLOG_LOGGEDCMD: User:netadmin  logged command:erspan-id 100\n",
            "<189>Jan  5 08:45:05 core-sw1 105: Jan  5 08:45:05.800 UTC: %PARSER-5-CFGLOG_LOGGEDCMD: User:netadmin  logged command:ip address 203.0.113.9\n",
            "<189>Jan  5 08:45:06 core-sw1 106: Jan  5 08:45:06.100 UTC: %PARSER-5-CFGLOG_LOGGEDCMD: User:netadmin  logged command:origin ip address 10.0.0.1\n",
            "<189>Jan  5 08:45:09 core-sw1 107: Jan  5 08:45:09.000 UTC: %SYS-5-CONFIG_I: Configured from console by netadmin on vty0 (10.0.0.50)\n",
            "garbage line\n",
        ));
        assert_eq!(out.changes.len(), 1, "{:?}", out.errors);
        let c = &out.changes[0];
        assert_eq!(c.session_id.as_deref(), Some("core-sw1/1"));
        assert_eq!(c.kind, Some(TunnelKind::Erspan2));
        assert_eq!(c.tunnel_id, Some(100));
        assert_eq!(c.collector_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(c.actor.as_deref(), Some("netadmin"));
        assert_eq!(c.actor_ip.as_deref(), Some("10.0.0.50"));
        assert_eq!(c.time, parse_rfc3339("2026-01-05T08:45:09Z").unwrap());
        assert_eq!(c.location.index, 1);
        assert_eq!(out.errors.len(), 1);
        assert!(
            out.errors[0]
                .to_string()
                .starts_with("devices.log: line 8: ")
        );
    }

    #[test]
    fn junos_audit_applies_at_commit_with_its_comment() {
        let out = read_text(concat!(
            "<29>1 2026-01-05T08:46:00.000Z edge-mx1 mgd 4242 UI_CFG_AUDIT_SET - UI_CFG_AUDIT_SET: User 'jdoe' set: [forwarding-options analyzer an1 input ingress interface ge-0/0/1.0]\n",
            "<29>1 2026-01-05T08:46:10.000Z edge-mx1 mgd 4242 UI_CFG_AUDIT_SET - UI_CFG_AUDIT_SET: User 'jdoe' set: [forwarding-options analyzer an1 output ip-address] <unconfigured> -> \"203.0.113.9\"\n",
            "<29>1 2026-01-05T08:46:30.000Z edge-mx1 mgd 4242 UI_COMMIT - UI_COMMIT: User 'jdoe' requested 'commit' operation (comment: CHG0012345)\n",
        ));
        assert_eq!(out.changes.len(), 1, "{:?}", out.errors);
        let c = &out.changes[0];
        assert_eq!(c.provider, Provider::Juniper);
        assert_eq!(c.collector_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(c.sources, ["ge-0/0/1.0"]);
        assert_eq!(c.change_comment.as_deref(), Some("CHG0012345"));
        assert_eq!(c.time, parse_rfc3339("2026-01-05T08:46:30Z").unwrap());
    }

    #[test]
    fn arista_accounting_and_config_i() {
        let out = read_text(concat!(
            "Jan  5 08:47:00 leaf1 ConfigAgent: %SYS-5-CONFIG_E: Enter configuration mode from console by admin on vty3 (10.0.0.51)\n",
            "Jan  5 08:47:05 leaf1 Aaa: %ACCOUNTING-6-CMD: admin vty3 10.0.0.51 stop task_id=8 service=shell priv-lvl=15 cmd=monitor session m1 source Ethernet1 both\n",
            "Jan  5 08:47:06 leaf1 Aaa: %ACCOUNTING-6-CMD: admin vty3 10.0.0.51 stop task_id=9 service=shell priv-lvl=15 cmd=monitor session m1 destination tunnel mode gre source 10.0.0.2 destination 203.0.113.9\n",
            "Jan  5 08:47:09 leaf1 ConfigAgent: %SYS-5-CONFIG_I: Configured from console by admin on vty3 (10.0.0.51)\n",
        ));
        assert_eq!(out.changes.len(), 1, "{:?}", out.errors);
        let c = &out.changes[0];
        assert_eq!(c.provider, Provider::Arista);
        assert_eq!(c.session_id.as_deref(), Some("leaf1/m1"));
        assert_eq!(c.actor_ip.as_deref(), Some("10.0.0.51"));
        assert_eq!(c.source_ip, Some("10.0.0.2".parse().unwrap()));
    }
}
