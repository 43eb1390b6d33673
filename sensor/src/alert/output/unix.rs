//! Unix socket outputs, as Suricata's `unix_dgram` and `unix_stream` eve-log types.
//!
//! Datagram: one event per datagram, without the newline (a reader gets whole events or
//! nothing); an event too big for one datagram is refused and counted as dropped. Stream:
//! JSON lines. Both connect when the first batch comes and again after an error, so the
//! receiver may start after the sensor or restart.

use std::io::Write;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use super::Transport;

/// `unix-dgram:PATH`.
pub(super) struct DgramTransport {
    path: PathBuf,
    socket: Option<UnixDatagram>,
}

impl DgramTransport {
    pub(super) fn new(path: PathBuf) -> DgramTransport {
        DgramTransport { path, socket: None }
    }
}

impl Transport for DgramTransport {
    fn send(&mut self, batch: &[u8], done: &mut usize, refused: &mut u64) -> std::io::Result<()> {
        let socket = match &self.socket {
            Some(s) => s,
            None => {
                let s = UnixDatagram::unbound()?;
                s.connect(&self.path)?;
                self.socket.insert(s)
            }
        };
        for line in super::lines_inclusive(&batch[*done..]) {
            let event = line.strip_suffix(b"\n").unwrap_or(line);
            match socket.send(event) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => *refused += 1,
                Err(e) => return Err(e),
            }
            *done += line.len();
        }
        Ok(())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.socket = None;
        Ok(())
    }
}

/// `unix-stream:PATH`.
pub(super) struct StreamTransport {
    path: PathBuf,
    timeout: Duration,
    socket: Option<UnixStream>,
}

impl StreamTransport {
    pub(super) fn new(path: PathBuf, timeout: Duration) -> StreamTransport {
        StreamTransport {
            path,
            timeout,
            socket: None,
        }
    }
}

impl Transport for StreamTransport {
    fn send(&mut self, batch: &[u8], done: &mut usize, _refused: &mut u64) -> std::io::Result<()> {
        let socket = match &mut self.socket {
            Some(s) => s,
            None => {
                let s = UnixStream::connect(&self.path)?;
                s.set_write_timeout(Some(self.timeout))?;
                self.socket.insert(s)
            }
        };
        write_lines(socket, batch, done)
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.socket = None;
        Ok(())
    }
}

/// Writes `batch[*done..]` to a stream, moving `done` to the end of the last whole line
/// written: after a failure, a new connection starts with a whole line.
pub(super) fn write_lines(
    out: &mut impl Write,
    batch: &[u8],
    done: &mut usize,
) -> std::io::Result<()> {
    let mut at = *done;
    while at < batch.len() {
        match out.write(&batch[at..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                at += n;
                // The end of the last complete line written so far.
                if let Some(nl) = batch[*done..at].iter().rposition(|&b| b == b'\n') {
                    *done += nl + 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    *done = batch.len();
    Ok(())
}
