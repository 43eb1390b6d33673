//! Network device configuration snapshots: the mirror sessions a running configuration
//! holds, and the configuration grammar the syslog reader shares.
//!
//! - Cisco IOS/IOS-XE/NX-OS: `monitor session N type erspan-source|rspan-source|local`
//!   blocks with `source interface`, `destination`, `erspan-id`, `ip address`,
//!   `origin ip address` (`erspan-type 3` / `header-type 3` for type III); one-line local
//!   SPAN `monitor session N source|destination interface X`.
//! - Juniper Junos: `forwarding-options port-mirroring` and `forwarding-options analyzer`,
//!   in `set` style or curly-brace style (flattened into `set` paths here).
//! - Arista EOS: `monitor session NAME source IF [rx|tx|both]` and
//!   `monitor session NAME destination tunnel mode gre source A destination B`.
//!
//! The time and author of a snapshot come from its header comment: Cisco
//! `! Last configuration change at 08:45:12 UTC Mon Jan 5 2026 by netadmin`, Junos
//! `## Last commit: 2026-01-05 08:45:12 UTC by jdoe`, Arista
//! `! Startup-config last modified at Mon Jan  5 08:45:12 2026 by admin`. A snapshot without
//! one is an error naming the file (its sessions cannot be placed in time).

use std::net::IpAddr;
use std::sync::Arc;

use flowtable::Timestamp;

use super::text::{month_number, parse_clock, parse_rfc3339, timestamp_from_civil};
use super::{Action, Location, MirrorChange, Object, Provider, ReadError, ReadOutcome};
use crate::decode::TunnelKind;

/// Most sessions one snapshot or one device's pending syslog commands may hold.
pub const MAX_SESSIONS_PER_DEVICE: usize = 1024;

/// A device mirror session as the configuration grammar builds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceSession {
    /// Session number or name.
    pub name: String,
    /// `erspan-source`, `rspan-source`, `local`, `port-mirroring`, `analyzer`, `gre`.
    pub mode: String,
    /// Source interfaces.
    pub sources: Vec<String>,
    /// Collector address (ERSPAN destination, GRE tunnel destination, Junos output
    /// ip-address).
    pub collector_ip: Option<IpAddr>,
    /// Destination interface of a local session.
    pub destination: Option<String>,
    /// ERSPAN origin (outer source) address.
    pub origin_ip: Option<IpAddr>,
    /// ERSPAN id.
    pub erspan_id: Option<u32>,
    /// ERSPAN type III asked for.
    pub erspan3: bool,
    /// The session was removed (`no monitor session`, Junos `delete`).
    pub deleted: bool,
}

impl DeviceSession {
    fn named(name: &str) -> DeviceSession {
        DeviceSession {
            name: name.to_owned(),
            ..DeviceSession::default()
        }
    }

    /// Encapsulation on the wire.
    pub fn kind(&self) -> Option<TunnelKind> {
        match self.mode.as_str() {
            "erspan-source" if self.erspan3 => Some(TunnelKind::Erspan3),
            "erspan-source" => Some(TunnelKind::Erspan2),
            _ => None,
        }
    }

    /// The mirror change this session stands for.
    pub fn to_change(
        &self,
        provider: Provider,
        host: &str,
        time: Timestamp,
        location: Location,
    ) -> MirrorChange {
        let action = if self.deleted {
            Action::Delete
        } else {
            Action::Create
        };
        let operation = match provider {
            Provider::Juniper => format!("forwarding-options {} {}", self.mode, self.name),
            _ if self.deleted => format!("no monitor session {}", self.name),
            _ => format!("monitor session {} {}", self.name, self.mode),
        };
        let mut c = MirrorChange::new(provider, operation, action, Object::Session, time, location);
        c.session_id = Some(format!("{host}/{}", self.name));
        c.sources = self.sources.clone();
        c.source_ip = self.origin_ip;
        c.collector_ip = self.collector_ip;
        c.collector = self
            .collector_ip
            .map(|ip| ip.to_string())
            .or_else(|| self.destination.clone());
        c.kind = self.kind();
        c.tunnel_id = self.erspan_id;
        c.account = Some(host.to_owned());
        c
    }
}

/// The sessions of one device, by name.
#[derive(Clone, Debug, Default)]
pub struct DeviceSessions {
    /// In first-seen order.
    pub sessions: Vec<DeviceSession>,
}

impl DeviceSessions {
    /// The session `name`, created when new (`None` beyond the cap).
    pub fn entry(&mut self, name: &str) -> Option<&mut DeviceSession> {
        match self.sessions.iter().position(|s| s.name == name) {
            Some(i) => self.sessions.get_mut(i),
            None if self.sessions.len() < MAX_SESSIONS_PER_DEVICE => {
                self.sessions.push(DeviceSession::named(name));
                self.sessions.last_mut()
            }
            None => None,
        }
    }
}

/// Cisco IOS grammar state: the `monitor session` block being configured.
#[derive(Clone, Debug, Default)]
pub struct CiscoState {
    /// Name of the open block.
    pub open: Option<String>,
}

impl CiscoState {
    /// Applies one configuration line (trimmed). Returns the name of the session changed.
    pub fn apply(&mut self, sessions: &mut DeviceSessions, line: &str) -> Option<String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
        let w: Vec<&str> = lower.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["no", "monitor", "session", name, ..] => {
                self.open = None;
                let s = sessions.entry(name)?;
                s.deleted = true;
                Some((*name).to_owned())
            }
            ["monitor", "session", name, "type", mode, ..] => {
                let s = sessions.entry(name)?;
                s.mode = (*mode).to_owned();
                s.deleted = false;
                self.open = Some((*name).to_owned());
                Some((*name).to_owned())
            }
            ["monitor", "session", name, "source", "interface", rest @ ..] => {
                self.open = None;
                let s = sessions.entry(name)?;
                if s.mode.is_empty() {
                    s.mode = "local".to_owned();
                }
                s.deleted = false;
                if !rest.is_empty() {
                    s.sources
                        .push(join_interface(words.get(5..).unwrap_or(&[]), rest));
                }
                Some((*name).to_owned())
            }
            ["monitor", "session", name, "destination", "interface", ..] => {
                self.open = None;
                let s = sessions.entry(name)?;
                if s.mode.is_empty() {
                    s.mode = "local".to_owned();
                }
                s.destination = words.get(5).map(|s| (*s).to_owned());
                Some((*name).to_owned())
            }
            _ => {
                let name = self.open.clone()?;
                let s = sessions.entry(&name)?;
                match w.as_slice() {
                    ["source", "interface", rest @ ..] => {
                        s.sources
                            .push(join_interface(words.get(2..).unwrap_or(&[]), rest));
                    }
                    ["destination"]
                    | ["description", ..]
                    | ["shutdown"]
                    | ["no", "shutdown"]
                    | ["vrf", ..]
                    | ["mtu", ..]
                    | ["ip", "ttl", ..]
                    | ["ip", "dscp", ..]
                    | ["filter", ..]
                    | ["exit"] => {}
                    ["erspan-id", id] => s.erspan_id = id.parse().ok(),
                    ["erspan-type", "3"] | ["header-type", "3"] => s.erspan3 = true,
                    ["ip", "address", ip, ..] => s.collector_ip = ip.parse().ok(),
                    ["origin", "ip", "address", ip, ..] => s.origin_ip = ip.parse().ok(),
                    ["destination", "ip", ip] => s.collector_ip = ip.parse().ok(),
                    ["source", "ip", ip] => s.origin_ip = ip.parse().ok(),
                    _ => {
                        // Any other command leaves the block.
                        self.open = None;
                        return None;
                    }
                }
                Some(name)
            }
        }
    }
}

/// `Gi1/0/1 both` → `Gi1/0/1`; `Gi1/0/1 , Gi1/0/2` keeps the list.
fn join_interface(words: &[&str], _lower: &[&str]) -> String {
    words
        .iter()
        .filter(|w| !matches!(w.to_ascii_lowercase().as_str(), "rx" | "tx" | "both"))
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Applies one Junos `set`/`delete` path (words after `set`/`delete`) under
/// `forwarding-options port-mirroring` or `analyzer`. Returns the session changed.
pub fn junos_apply(sessions: &mut DeviceSessions, delete: bool, words: &[&str]) -> Option<String> {
    let (mode, rest) = match words {
        ["forwarding-options", "port-mirroring", rest @ ..] => ("port-mirroring", rest),
        ["forwarding-options", "analyzer", rest @ ..] => ("analyzer", rest),
        _ => return None,
    };
    // `port-mirroring instance NAME ...`, `port-mirroring family ...` (the default instance),
    // `analyzer NAME ...`.
    let (name, rest) = match (mode, rest) {
        ("port-mirroring", ["instance", name, rest @ ..]) => (*name, rest),
        ("port-mirroring", rest) => ("default", rest),
        (_, [name, rest @ ..]) => (*name, rest),
        _ => return None,
    };
    let s = sessions.entry(name)?;
    s.mode = mode.to_owned();
    if delete && rest.is_empty() {
        s.deleted = true;
        return Some(name.to_owned());
    }
    s.deleted = false;
    if let Some(i) = rest.iter().position(|w| *w == "ip-address") {
        if let Some(ip) = rest.get(i + 1) {
            s.collector_ip = if delete {
                None
            } else {
                ip.trim_matches('"').parse().ok()
            };
        }
    }
    if let Some(i) = rest.iter().position(|w| *w == "interface") {
        if let Some(ifname) = rest.get(i + 1) {
            let ifname = ifname.trim_matches('"').to_owned();
            let is_input = rest.contains(&"input");
            if is_input {
                if delete {
                    s.sources.retain(|x| *x != ifname);
                } else if !s.sources.contains(&ifname) {
                    s.sources.push(ifname);
                }
            } else if !delete {
                s.destination = Some(ifname);
            }
        }
    }
    Some(name.to_owned())
}

/// Applies one Arista EOS line. Returns the session changed.
pub fn arista_apply(sessions: &mut DeviceSessions, line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["no", "monitor", "session", name, ..] => {
            sessions.entry(name)?.deleted = true;
            Some((*name).to_owned())
        }
        ["monitor", "session", name, "source", ifs @ ..] => {
            let s = sessions.entry(name)?;
            s.deleted = false;
            if s.mode.is_empty() {
                s.mode = "local".to_owned();
            }
            s.sources.push(join_interface(ifs, &[]));
            Some((*name).to_owned())
        }
        [
            "monitor",
            "session",
            name,
            "destination",
            "tunnel",
            "mode",
            "gre",
            rest @ ..,
        ] => {
            let s = sessions.entry(name)?;
            s.deleted = false;
            s.mode = "gre".to_owned();
            let mut it = rest.iter();
            while let Some(w) = it.next() {
                match *w {
                    "source" => s.origin_ip = it.next().and_then(|ip| ip.parse().ok()),
                    "destination" => s.collector_ip = it.next().and_then(|ip| ip.parse().ok()),
                    _ => {}
                }
            }
            Some((*name).to_owned())
        }
        ["monitor", "session", name, "destination", dest, ..] => {
            let s = sessions.entry(name)?;
            s.deleted = false;
            if s.mode.is_empty() {
                s.mode = "local".to_owned();
            }
            s.destination = Some((*dest).to_owned());
            Some((*name).to_owned())
        }
        _ => None,
    }
}

/// Walks one line of curly-brace Junos configuration: `{` opens a level named by the words
/// before it, `}` closes one, `;` ends a statement, which comes back as its full path.
/// Depth is capped at 64 levels.
fn junos_statements(line: &str, path: &mut Vec<String>) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut words = String::new();
    for c in line.chars() {
        match c {
            '{' => {
                if path.len() < 64 {
                    path.push(words.trim().to_owned());
                }
                words.clear();
            }
            '}' => {
                path.pop();
                words.clear();
            }
            ';' => {
                let stmt = words.trim();
                if !stmt.is_empty() {
                    out.push((format!("{} {stmt}", path.join(" ")), false));
                }
                words.clear();
            }
            _ => words.push(c),
        }
    }
    out
}

/// Whether the text looks like a device configuration with a mirror stanza.
pub fn looks_like_config(text: &str) -> bool {
    text.contains("monitor session")
        || text.contains("port-mirroring")
        || text.contains("analyzer")
        || text.contains("forwarding-options")
}

/// Reads a configuration snapshot.
pub(crate) fn read(bytes: &[u8], name: &Arc<str>, out: &mut ReadOutcome) {
    let text = String::from_utf8_lossy(bytes);
    let mut host = None;
    let mut stamp: Option<(Timestamp, Option<String>, u64)> = None;
    let mut vendor = None;
    let mut sessions = DeviceSessions::default();
    let mut cisco = CiscoState::default();
    let mut first_line: Vec<(String, u64)> = Vec::new();
    let mut junos_path: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        out.records += 1;
        let line = raw.trim();
        if let Some(h) = header_stamp(line) {
            stamp = Some((h.0, h.1, line_no));
            vendor = vendor.or(Some(h.2));
            continue;
        }
        if let Some(h) = line
            .strip_prefix("hostname ")
            .or_else(|| line.strip_prefix("set system host-name "))
            .or_else(|| {
                line.strip_prefix("host-name ")
                    .map(|s| s.trim_end_matches(';'))
            })
        {
            host = Some(h.trim().trim_matches('"').to_owned());
            continue;
        }
        let changed = if let Some(path) = line.strip_prefix("set ") {
            vendor = Some(Provider::Juniper);
            let words: Vec<&str> = path.split_whitespace().collect();
            junos_apply(&mut sessions, false, &words)
        } else if line.contains('{')
            || line.contains('}')
            || (!junos_path.is_empty() && line.ends_with(';'))
        {
            let mut last = None;
            for (words, delete) in junos_statements(line, &mut junos_path) {
                vendor = Some(Provider::Juniper);
                let words: Vec<&str> = words.split_whitespace().collect();
                last = junos_apply(&mut sessions, delete, &words).or(last);
            }
            last
        } else if vendor == Some(Provider::Arista) || line.contains("destination tunnel mode gre") {
            vendor = Some(Provider::Arista);
            arista_apply(&mut sessions, line)
        } else {
            let r = cisco.apply(&mut sessions, line);
            if r.is_some() && vendor.is_none() {
                vendor = Some(Provider::Cisco);
            }
            r
        };
        if let Some(n) = changed {
            if !first_line.iter().any(|(x, _)| *x == n) {
                first_line.push((n, line_no));
            }
        }
    }
    let Some((time, actor, stamp_line)) = stamp else {
        if !sessions.sessions.is_empty() {
            out.errors.push(ReadError::Record {
                path: Arc::clone(name),
                unit: "line",
                index: 1,
                problem: "configuration snapshot without a last-change header (time unknown); its sessions were not read".to_owned(),
            });
        }
        return;
    };
    let provider = vendor.unwrap_or(Provider::Cisco);
    let host = host.unwrap_or_else(|| "device".to_owned());
    let _ = stamp_line;
    for s in &sessions.sessions {
        let index = first_line
            .iter()
            .find(|(n, _)| *n == s.name)
            .map_or(1, |(_, l)| *l);
        let loc = Location {
            file: Arc::clone(name),
            unit: "line",
            index,
        };
        let mut c = s.to_change(provider, &host, time, loc);
        c.actor = actor.clone();
        c.operation = format!("snapshot: {}", c.operation);
        out.changes.push(c);
    }
}

/// The time, author and vendor of a snapshot's last-change header line.
fn header_stamp(line: &str) -> Option<(Timestamp, Option<String>, Provider)> {
    let (rest, vendor) = if let Some(r) = line.strip_prefix("! Last configuration change at ") {
        (r, Provider::Cisco)
    } else if let Some(r) = line.strip_prefix("! Startup-config last modified at ") {
        (r, Provider::Arista)
    } else if let Some(r) = line
        .strip_prefix("## Last commit: ")
        .or_else(|| line.strip_prefix("## Last changed: "))
    {
        let (when, by) = split_by(r);
        let when = when.trim_end_matches(" UTC").replace(' ', "T");
        return Some((parse_rfc3339(&when)?, by, Provider::Juniper));
    } else {
        return None;
    };
    let (when, by) = split_by(rest);
    // Cisco: `08:45:12 UTC Mon Jan 5 2026`; Arista: `Mon Jan  5 08:45:12 2026`.
    let words: Vec<&str> = when.split_whitespace().collect();
    let (clock, month, day, year) = match vendor {
        Provider::Cisco => (words.first()?, words.get(3)?, words.get(4)?, words.get(5)?),
        _ => (words.get(3)?, words.get(1)?, words.get(2)?, words.get(4)?),
    };
    let (h, m, s, nanos) = parse_clock(clock)?;
    let date = (year.parse().ok()?, month_number(month)?, day.parse().ok()?);
    let t = timestamp_from_civil(date, (h, m, s, nanos), 0)?;
    Some((t, by, vendor))
}

fn split_by(s: &str) -> (&str, Option<String>) {
    match s.rsplit_once(" by ") {
        Some((when, who)) => (when.trim(), Some(who.trim().to_owned())),
        None => (s.trim(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        read(text.as_bytes(), &Arc::from("running-config"), &mut out);
        out
    }

    #[test]
    fn cisco_erspan_block() {
        let out = read_text(
            "!\n! Last configuration change at 08:45:12 UTC Mon Jan 5 2026 by netadmin\n!\nhostname core-sw1\n!\nmonitor session 1 type erspan-source\n source interface Gi1/0/1 both\n destination\n  erspan-id 100\n  ip address 203.0.113.9\n  origin ip address 10.0.0.1\n!\nmonitor session 2 source interface Gi1/0/2\nmonitor session 2 destination interface Gi1/0/48\ninterface Gi1/0/1\n",
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.changes.len(), 2);
        let c = &out.changes[0];
        assert_eq!(c.provider, Provider::Cisco);
        assert_eq!(c.session_id.as_deref(), Some("core-sw1/1"));
        assert_eq!(c.kind, Some(TunnelKind::Erspan2));
        assert_eq!(c.tunnel_id, Some(100));
        assert_eq!(c.collector_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(c.source_ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(c.sources, ["Gi1/0/1"]);
        assert_eq!(c.actor.as_deref(), Some("netadmin"));
        assert_eq!(c.time, parse_rfc3339("2026-01-05T08:45:12Z").unwrap());
        assert_eq!(c.location.index, 6);
        assert_eq!(out.changes[1].collector.as_deref(), Some("Gi1/0/48"));
        assert_eq!(out.changes[1].kind, None);
    }

    #[test]
    fn junos_set_and_curly_styles_agree() {
        let set = read_text(
            "## Last commit: 2026-01-05 08:45:12 UTC by jdoe\nset system host-name edge-mx1\nset forwarding-options analyzer an1 input ingress interface ge-0/0/1.0\nset forwarding-options analyzer an1 output ip-address 203.0.113.9\n",
        );
        let curly = read_text(
            "## Last commit: 2026-01-05 08:45:12 UTC by jdoe\nsystem {\n    host-name edge-mx1;\n}\nforwarding-options {\n    analyzer {\n        an1 {\n            input {\n                ingress {\n                    interface ge-0/0/1.0;\n                }\n            }\n            output {\n                ip-address 203.0.113.9;\n            }\n        }\n    }\n}\n",
        );
        for out in [&set, &curly] {
            assert!(out.errors.is_empty(), "{:?}", out.errors);
            assert_eq!(out.changes.len(), 1);
            let c = &out.changes[0];
            assert_eq!(c.provider, Provider::Juniper);
            assert_eq!(c.session_id.as_deref(), Some("edge-mx1/an1"));
            assert_eq!(c.sources, ["ge-0/0/1.0"]);
            assert_eq!(c.collector_ip, Some("203.0.113.9".parse().unwrap()));
            assert_eq!(c.actor.as_deref(), Some("jdoe"));
        }
    }

    #[test]
    fn arista_gre_tunnel_session() {
        let out = read_text(
            "! Startup-config last modified at Mon Jan  5 08:45:12 2026 by admin\nhostname leaf1\nmonitor session m1 source Ethernet1 both\nmonitor session m1 destination tunnel mode gre source 10.0.0.2 destination 203.0.113.9\n",
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let c = &out.changes[0];
        assert_eq!(c.provider, Provider::Arista);
        assert_eq!(c.session_id.as_deref(), Some("leaf1/m1"));
        assert_eq!(c.source_ip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(c.collector_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(c.sources, ["Ethernet1"]);
    }

    #[test]
    fn snapshot_without_header_is_an_error() {
        let out = read_text("hostname x\nmonitor session 1 type erspan-source\n");
        assert_eq!(out.changes.len(), 0);
        assert_eq!(out.errors.len(), 1);
        assert!(
            out.errors[0]
                .to_string()
                .starts_with("running-config: line 1: ")
        );
    }
}
