//! The event writer thread and the per-producer buffers that feed it.
//!
//! Each producer owns an [`EventSink`]: events are serialized into its buffer, and a full
//! buffer (or an explicit flush) travels to the writer thread over a channel. The writer
//! owns the output; a write error (full disk, closed stdout) ends it with an error that the
//! caller reports, and producers learn of it when their next hand-over fails.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;
use thiserror::Error;

/// A producer hands its buffer over once it holds this many bytes.
const SINK_FLUSH_BYTES: usize = 64 * 1024;

/// Where events go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputTarget {
    /// Standard output (`-`).
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
}

impl OutputTarget {
    /// `-` is standard output; anything else is a file path.
    pub fn from_arg(arg: &str) -> OutputTarget {
        if arg == "-" {
            OutputTarget::Stdout
        } else {
            OutputTarget::File(PathBuf::from(arg))
        }
    }

    /// Name for messages.
    pub fn describe(&self) -> String {
        match self {
            OutputTarget::Stdout => "standard output".to_owned(),
            OutputTarget::File(p) => p.display().to_string(),
        }
    }
}

/// Errors writing events.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AlertWriteError {
    /// The output could not be opened or written.
    #[error("writing events to {target}: {source}")]
    Io {
        /// Output description.
        target: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An event could not be serialized (a bug, not an input problem).
    #[error("serializing an event: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The writer thread has stopped (after an error it reports itself).
    #[error("the event writer has stopped")]
    WriterGone,
}

/// The writer thread.
pub struct EventWriter {
    tx: Sender<Vec<u8>>,
    thread: JoinHandle<Result<u64, AlertWriteError>>,
}

/// A producer's buffer of serialized events.
pub struct EventSink {
    tx: Sender<Vec<u8>>,
    buf: Vec<u8>,
    events: u64,
}

impl EventWriter {
    /// Opens the output and starts the writer thread.
    pub fn spawn(target: &OutputTarget) -> Result<EventWriter, AlertWriteError> {
        let out: Box<dyn Write + Send> = match target {
            OutputTarget::Stdout => Box::new(std::io::stdout()),
            OutputTarget::File(path) => {
                Box::new(File::create(path).map_err(|source| AlertWriteError::Io {
                    target: target.describe(),
                    source,
                })?)
            }
        };
        let (tx, rx) = crossbeam_channel::unbounded::<Vec<u8>>();
        let name = target.describe();
        let thread = std::thread::Builder::new()
            .name("mw-writer".to_owned())
            .spawn(move || write_loop(out, &rx, &name))
            .map_err(|source| AlertWriteError::Io {
                target: target.describe(),
                source,
            })?;
        Ok(EventWriter { tx, thread })
    }

    /// A new sink feeding this writer.
    pub fn sink(&self) -> EventSink {
        EventSink {
            tx: self.tx.clone(),
            buf: Vec::with_capacity(SINK_FLUSH_BYTES * 2),
            events: 0,
        }
    }

    /// Waits for every sink to be dropped or flushed, writes the rest and closes the output.
    /// Returns the number of bytes written.
    pub fn finish(self) -> Result<u64, AlertWriteError> {
        drop(self.tx);
        self.thread
            .join()
            .unwrap_or(Err(AlertWriteError::WriterGone))
    }
}

fn write_loop(
    out: Box<dyn Write + Send>,
    rx: &Receiver<Vec<u8>>,
    name: &str,
) -> Result<u64, AlertWriteError> {
    let io = |source| AlertWriteError::Io {
        target: name.to_owned(),
        source,
    };
    let mut out = BufWriter::with_capacity(256 * 1024, out);
    let mut written = 0u64;
    // `recv` fails once every sender is gone: all producers have flushed.
    while let Ok(chunk) = rx.recv() {
        out.write_all(&chunk).map_err(io)?;
        written = written.saturating_add(chunk.len() as u64);
        if rx.is_empty() {
            // Nothing queued: push what we have so a live reader sees events promptly.
            out.flush().map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    Ok(written)
}

impl EventSink {
    /// Serializes one event as a JSON line.
    pub fn write<T: Serialize>(&mut self, event: &T) -> Result<(), AlertWriteError> {
        serde_json::to_writer(&mut self.buf, event)?;
        self.buf.push(b'\n');
        self.events = self.events.saturating_add(1);
        if self.buf.len() >= SINK_FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands buffered events to the writer thread.
    pub fn flush(&mut self) -> Result<(), AlertWriteError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(SINK_FLUSH_BYTES * 2));
        self.tx.send(full).map_err(|_| AlertWriteError::WriterGone)
    }

    /// Events written through this sink.
    pub fn events(&self) -> u64 {
        self.events
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        // Last chance to hand events over; if the writer is gone it has reported why.
        let _ = self.flush();
    }
}
