//! Syslog output: RFC 5424 messages to the local socket (`/dev/log`), UDP or TCP.
//!
//! Each event is one message: `<PRI>1 TIMESTAMP HOST mirrorwatch PID EVENT_TYPE - JSON`,
//! with the event type as MSGID so a syslog server can route alerts without parsing JSON.
//! The local socket and UDP carry one message per datagram (RFC 5426); TCP uses octet
//! counting (RFC 6587 3.4.1: `LEN SP MSG`), which survives any byte in the message. A few
//! lines of formatting did not justify a crate.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::Transport;
use super::unix::write_lines;

/// `user` facility's neighbour for local use: `local0` (16) unless configured.
pub(super) const DEFAULT_FACILITY: u8 = 16;
/// `info`.
pub(super) const DEFAULT_LEVEL: u8 = 6;

/// Facility names (RFC 5424 table 1, with the usual names).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names (RFC 5424 table 2).
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The code of a facility name (`local5` is 21).
pub fn facility_code(name: &str) -> Option<u8> {
    FACILITIES
        .iter()
        .position(|f| *f == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// The code of a severity name (`info` is 6; `error` and `warn` are accepted too).
pub fn level_code(name: &str) -> Option<u8> {
    let name = match name {
        "error" => "err",
        "warn" => "warning",
        n => n,
    };
    LEVELS
        .iter()
        .position(|l| *l == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// Where syslog messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogTransport {
    /// A local datagram socket (`/dev/log`).
    Unix(PathBuf),
    /// UDP to `host:port`.
    Udp(String),
    /// TCP to `host:port`, octet counting.
    Tcp(String),
}

impl SyslogTransport {
    /// `` (empty: `/dev/log`), `unix:PATH`, `udp:HOST:PORT`, `tcp:HOST:PORT`.
    pub(super) fn parse(s: &str) -> Result<SyslogTransport, String> {
        let host_port = |a: &str| {
            if a.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
            {
                Ok(a.to_owned())
            } else {
                Err(format!("syslog address {a:?} is not HOST:PORT"))
            }
        };
        if s.is_empty() {
            Ok(SyslogTransport::Unix("/dev/log".into()))
        } else if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("no path".into());
            }
            Ok(SyslogTransport::Unix(p.into()))
        } else if let Some(a) = s.strip_prefix("udp:") {
            Ok(SyslogTransport::Udp(host_port(a)?))
        } else if let Some(a) = s.strip_prefix("tcp:") {
            Ok(SyslogTransport::Tcp(host_port(a)?))
        } else {
            Err(
                "syslog: takes nothing (/dev/log), unix:PATH, udp:HOST:PORT or tcp:HOST:PORT"
                    .into(),
            )
        }
    }
}

enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// A syslog output.
pub(super) struct SyslogOutput {
    transport: SyslogTransport,
    pri: u8,
    host: String,
    pid: u32,
    timeout: Duration,
    conn: Option<Conn>,
    /// The message being framed, reused.
    msg: Vec<u8>,
}

impl SyslogOutput {
    pub(super) fn new(
        transport: SyslogTransport,
        facility: u8,
        level: u8,
        timeout: Duration,
    ) -> SyslogOutput {
        SyslogOutput {
            transport,
            pri: facility.saturating_mul(8).saturating_add(level),
            host: hostname(),
            pid: std::process::id(),
            timeout,
            conn: None,
            msg: Vec::with_capacity(4096),
        }
    }

    fn connect(&self) -> std::io::Result<Conn> {
        let resolve = |a: &str| {
            a.to_socket_addrs()?
                .next()
                .ok_or_else(|| std::io::Error::other(format!("{a}: no address")))
        };
        Ok(match &self.transport {
            SyslogTransport::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                Conn::Unix(s)
            }
            SyslogTransport::Udp(a) => {
                let addr = resolve(a)?;
                let bind = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(addr)?;
                Conn::Udp(s)
            }
            SyslogTransport::Tcp(a) => {
                let s = TcpStream::connect_timeout(&resolve(a)?, self.timeout)?;
                s.set_write_timeout(Some(self.timeout))?;
                Conn::Tcp(s)
            }
        })
    }

    /// Formats one event as an RFC 5424 message into `self.msg` (TCP: with its length).
    fn format(&mut self, event: &[u8], now: SystemTime, tcp: bool) {
        let ty = super::event_type(event);
        let msgid = if ty.is_empty() || ty.len() > 32 {
            "-"
        } else {
            std::str::from_utf8(ty).unwrap_or("-")
        };
        self.msg.clear();
        let _ = write!(
            self.msg,
            "<{}>1 {} {} mirrorwatch {} {} - ",
            self.pri,
            humantime::format_rfc3339_micros(now),
            self.host,
            self.pid,
            msgid
        );
        self.msg.extend_from_slice(event);
        if tcp {
            let len = self.msg.len();
            let mut head = [0u8; 24];
            let mut cursor = &mut head[..];
            let _ = write!(cursor, "{len} ");
            let n = 24 - cursor.len();
            self.msg.splice(0..0, head[..n].iter().copied());
        }
    }
}

impl Transport for SyslogOutput {
    fn send(&mut self, batch: &[u8], done: &mut usize, refused: &mut u64) -> std::io::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let tcp = matches!(self.conn, Some(Conn::Tcp(_)));
        let now = SystemTime::now();
        for line in super::lines_inclusive(&batch[*done..]) {
            self.format(line.strip_suffix(b"\n").unwrap_or(line), now, tcp);
            let sent = match &mut self.conn {
                Some(Conn::Unix(s)) => s.send(&self.msg).map(|_| ()),
                Some(Conn::Udp(s)) => s.send(&self.msg).map(|_| ()),
                Some(Conn::Tcp(s)) => {
                    let mut at = 0;
                    write_lines(s, &self.msg, &mut at)
                }
                None => Ok(()),
            };
            match sent {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => *refused += 1,
                Err(e) => return Err(e),
            }
            *done += line.len();
        }
        Ok(())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.conn = None;
        Ok(())
    }
}

/// The host name for the HOSTNAME field: printable ASCII, at most 255 bytes, `-` if unknown.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() {
        "-".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc5424_with_octet_counting_on_tcp() {
        let mut out = SyslogOutput::new(
            SyslogTransport::Tcp("127.0.0.1:1".into()),
            facility_code("local5").unwrap(),
            level_code("warning").unwrap(),
            Duration::from_secs(1),
        );
        out.host = "sensor1".into();
        out.pid = 42;
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_767_603_601);
        let ev = b"{\"timestamp\":\"x\",\"event_type\":\"alert\"}";
        out.format(ev, t, false);
        let udp = String::from_utf8(out.msg.clone()).unwrap();
        assert_eq!(
            udp,
            "<172>1 2026-01-05T09:00:01.000000Z sensor1 mirrorwatch 42 alert - \
             {\"timestamp\":\"x\",\"event_type\":\"alert\"}"
        );
        out.format(ev, t, true);
        assert_eq!(
            String::from_utf8(out.msg.clone()).unwrap(),
            format!("{} {udp}", udp.len())
        );
    }

    #[test]
    fn names_map_to_codes() {
        assert_eq!(facility_code("kern"), Some(0));
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("nope"), None);
        assert_eq!(level_code("emerg"), Some(0));
        assert_eq!(level_code("error"), Some(3));
        assert_eq!(level_code("debug"), Some(7));
    }
}
