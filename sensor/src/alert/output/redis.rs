//! Redis output: `list` (RPUSH, or LPUSH), `channel` (PUBLISH) and `stream` (XADD with an
//! optional `MAXLEN ~`), pipelined, reconnecting.
//!
//! A batch of events is written as up to [`PIPELINE`] commands at once, then their replies
//! are read; a connection error resends from the first command without a reply (at least
//! once: a server that applied a command but died before replying may get it twice), and an
//! error reply (a key of the wrong type) refuses that event, counted as dropped. The
//! protocol (RESP2 requests and the five reply types) is a page of its specification; the
//! `redis` crate would have brought about forty crates (URL and Unicode tables among them)
//! into the sensor for those few lines, and its current release needs a newer Rust than ours.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::Transport;

/// Commands written before their replies are read.
const PIPELINE: usize = 512;

/// The stream entry field holding the event (as Suricata's Redis output).
const STREAM_FIELD: &[u8] = b"eve";

/// How events are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisMode {
    /// RPUSH to a list (oldest first).
    List,
    /// LPUSH to a list (newest first).
    Lpush,
    /// PUBLISH on a channel.
    Channel,
    /// XADD to a stream.
    Stream,
}

/// `HOST[:PORT][/MODE[/KEY]]` into (`host:port`, mode, key).
pub(super) fn parse_target(s: &str) -> Result<(String, RedisMode, String), String> {
    let mut parts = s.splitn(3, '/');
    let host = parts.next().unwrap_or_default();
    if host.is_empty() {
        return Err("no Redis host".into());
    }
    let addr = if host.starts_with('[') {
        // [v6] or [v6]:port
        if host.ends_with(']') {
            format!("{host}:6379")
        } else {
            host.to_owned()
        }
    } else if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:6379")
    };
    let mode = match parts.next().unwrap_or("list") {
        "" | "list" | "rpush" => RedisMode::List,
        "lpush" => RedisMode::Lpush,
        "channel" | "publish" => RedisMode::Channel,
        "stream" | "xadd" => RedisMode::Stream,
        m => {
            return Err(format!(
                "Redis mode {m:?} is not list, lpush, channel or stream"
            ));
        }
    };
    let key = match parts.next() {
        None | Some("") => "mirrorwatch".to_owned(),
        Some(k) => k.to_owned(),
    };
    Ok((addr, mode, key))
}

/// A Redis output.
pub(super) struct RedisOutput {
    addr: String,
    mode: RedisMode,
    key: String,
    maxlen: u64,
    /// `maxlen` as the text of the XADD argument.
    maxlen_text: String,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
    /// The pipeline being written, reused.
    out: Vec<u8>,
    /// A reply line, reused.
    line: Vec<u8>,
}

impl RedisOutput {
    pub(super) fn new(
        addr: String,
        mode: RedisMode,
        key: String,
        maxlen: u64,
        timeout: Duration,
    ) -> RedisOutput {
        RedisOutput {
            addr,
            mode,
            key,
            maxlen,
            maxlen_text: maxlen.to_string(),
            timeout,
            conn: None,
            out: Vec::with_capacity(256 * 1024),
            line: Vec::with_capacity(256),
        }
    }

    fn connect(&self) -> std::io::Result<BufReader<TcpStream>> {
        let addr = self
            .addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{}: no address", self.addr)))?;
        let s = TcpStream::connect_timeout(&addr, self.timeout)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        Ok(BufReader::with_capacity(64 * 1024, s))
    }

    /// Appends one command for `event` to the pipeline.
    fn command(&mut self, event: &[u8]) {
        let args: &[&[u8]] = match self.mode {
            RedisMode::List => &[b"RPUSH", self.key.as_bytes(), event],
            RedisMode::Lpush => &[b"LPUSH", self.key.as_bytes(), event],
            RedisMode::Channel => &[b"PUBLISH", self.key.as_bytes(), event],
            RedisMode::Stream if self.maxlen > 0 => &[
                b"XADD",
                self.key.as_bytes(),
                b"MAXLEN",
                b"~",
                self.maxlen_text.as_bytes(),
                b"*",
                STREAM_FIELD,
                event,
            ],
            RedisMode::Stream => &[b"XADD", self.key.as_bytes(), b"*", STREAM_FIELD, event],
        };
        encode(&mut self.out, args);
    }
}

/// RESP2 request: an array of bulk strings.
fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads one reply; `Ok(false)` for an error reply (`-ERR ...`), whose text goes to `line`.
fn read_reply(r: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<bool> {
    line.clear();
    r.read_until(b'\n', line)?;
    if !line.ends_with(b"\r\n") {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad Redis reply");
    let n = || -> std::io::Result<i64> {
        std::str::from_utf8(&line[1..line.len() - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    match line.first() {
        Some(b'+' | b':') => Ok(true),
        Some(b'-') => Ok(false),
        Some(b'$') => {
            let len = n()?;
            if len >= 0 {
                // The bulk string and its CRLF; bounded by what a sane reply holds.
                let len = u64::try_from(len).map_err(|_| bad())?.saturating_add(2);
                if len > 1 << 20 {
                    return Err(bad());
                }
                std::io::copy(&mut r.take(len), &mut std::io::sink())?;
            }
            Ok(true)
        }
        Some(b'*') => {
            let items = n()?;
            if items > 1024 {
                return Err(bad());
            }
            for _ in 0..items.max(0) {
                read_reply(r, line)?;
            }
            Ok(true)
        }
        _ => Err(bad()),
    }
}

/// Error replies that say "not now" (loading its data after a restart, busy with a script,
/// a replica without its master), retried like a lost connection rather than counted as a
/// refused event.
fn is_transient(reply: &[u8]) -> bool {
    [
        "-LOADING",
        "-BUSY",
        "-TRYAGAIN",
        "-MASTERDOWN",
        "-CLUSTERDOWN",
    ]
    .iter()
    .any(|p| reply.starts_with(p.as_bytes()))
}

impl Transport for RedisOutput {
    fn send(&mut self, batch: &[u8], done: &mut usize, refused: &mut u64) -> std::io::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        while *done < batch.len() {
            // Up to PIPELINE whole lines from `done`.
            self.out.clear();
            let mut ends = [0usize; PIPELINE];
            let mut n = 0;
            let mut at = *done;
            for line in super::lines_inclusive(&batch[at..]).take(PIPELINE) {
                self.command(line.strip_suffix(b"\n").unwrap_or(line));
                at += line.len();
                ends[n] = at;
                n += 1;
            }
            let Some(conn) = &mut self.conn else {
                return Ok(());
            };
            conn.get_mut().write_all(&self.out)?;
            for end in &ends[..n] {
                if !read_reply(conn, &mut self.line)? {
                    if is_transient(&self.line) {
                        // Not a refusal of this event: the server cannot take any yet.
                        return Err(std::io::Error::other(
                            String::from_utf8_lossy(&self.line).trim_end().to_owned(),
                        ));
                    }
                    *refused += 1;
                    if *refused == 1 {
                        eprintln!(
                            "mirrorwatch: output redis {}: {}",
                            self.addr,
                            String::from_utf8_lossy(&self.line).trim_end()
                        );
                    }
                }
                *done = *end;
            }
        }
        Ok(())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.conn = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_resp_requests() {
        let mut out = Vec::new();
        encode(&mut out, &[b"RPUSH", b"k", b"{\"a\":1}"]);
        assert_eq!(out, b"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$7\r\n{\"a\":1}\r\n");
    }

    #[test]
    fn reads_each_reply_type() {
        let text = b"+OK\r\n:12\r\n$5\r\n1-0ab\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n-WRONGTYPE bad\r\n";
        let mut r = &text[..];
        let mut line = Vec::new();
        for _ in 0..5 {
            assert!(read_reply(&mut r, &mut line).unwrap());
        }
        assert!(!read_reply(&mut r, &mut line).unwrap());
        assert!(line.starts_with(b"-WRONGTYPE"));
        assert!(read_reply(&mut r, &mut line).is_err(), "end of input");
        let mut r = &b"?what\r\n"[..];
        assert!(read_reply(&mut r, &mut line).is_err());
    }
}
