//! The event writer thread and the per-producer buffers that feed it.
//!
//! Each producer owns an [`EventSink`]: events are serialized into its buffer, and a full
//! buffer (or an explicit flush) travels to the writer thread over a channel. The writer
//! owns the output; a write error (full disk, closed stdout) ends it with an error that the
//! caller reports, and producers learn of it when their next hand-over fails.
//!
//! A live sensor cannot wait for a buffer to fill: with [`WriterOptions::sweep_every`] the
//! writer also takes whatever each sink holds at that interval (the buffer sits behind an
//! uncontended mutex, locked once per event), so an alert reaches the output within the
//! interval however quiet its producer is. [`EventWriter::reopen`] reopens the output file
//! (SIGHUP after logrotate renamed it), and the writer measures packet-to-alert latency:
//! the time an alert line is written minus the packet time it carries.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;
use thiserror::Error;

use crate::stats::LatencySummary;
use crate::stats::{LATENCY_MAX_US, SharedHistogram, latency_histogram, summarize};

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

/// How the writer runs beyond its target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct WriterOptions {
    /// Take what every sink holds at this interval (live capture); `None` waits for full
    /// buffers and explicit flushes (replay).
    pub sweep_every: Option<std::time::Duration>,
    /// Append to an existing file instead of truncating it (a long-running sensor, and every
    /// reopen).
    pub append: bool,
    /// Measure packet-to-alert latency on every alert line written.
    pub measure_latency: bool,
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
    /// The reader of the output went away (a closed pipe or standard output).
    #[error(
        "writing events to {target}: the reader closed it (broken pipe); stopping, since every \
         event from here on would be lost"
    )]
    OutputClosed {
        /// Output description.
        target: String,
    },
    /// The file system of the output is full (or the quota is used up).
    #[error(
        "writing events to {target}: no space left on the device ({source}); stopping, since \
         every event from here on would be lost"
    )]
    DiskFull {
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

impl AlertWriteError {
    /// An OS error while writing to `target`, named for what it means to the user.
    fn from_io(target: &str, source: std::io::Error) -> AlertWriteError {
        let target = target.to_owned();
        match source.raw_os_error() {
            Some(libc::EPIPE) => AlertWriteError::OutputClosed { target },
            Some(libc::ENOSPC | libc::EDQUOT) => AlertWriteError::DiskFull { target, source },
            _ if source.kind() == std::io::ErrorKind::BrokenPipe => {
                AlertWriteError::OutputClosed { target }
            }
            _ => AlertWriteError::Io { target, source },
        }
    }
}

enum WriterMsg {
    Chunk(Vec<u8>),
    Reopen,
}

/// Written buffers kept for reuse (each `2 * SINK_FLUSH_BYTES`).
const RECYCLED_BUFFERS: usize = 16;

/// Chunks queued for the writer thread before producers wait (at most ~8 MiB).
const WRITER_QUEUE_CHUNKS: usize = 64;

/// The part of a sink the writer thread can reach.
#[derive(Default)]
struct SinkShared {
    buf: Mutex<Vec<u8>>,
}

type SinkRegistry = Arc<Mutex<Vec<Weak<SinkShared>>>>;

/// The writer thread.
pub struct EventWriter {
    tx: Sender<WriterMsg>,
    /// Written buffers coming back from the writer thread, for the sinks to reuse.
    recycled: Receiver<Vec<u8>>,
    sinks: SinkRegistry,
    latency: SharedHistogram,
    thread: JoinHandle<Result<u64, AlertWriteError>>,
}

/// A producer's buffer of serialized events.
pub struct EventSink {
    tx: Sender<WriterMsg>,
    recycled: Receiver<Vec<u8>>,
    shared: Arc<SinkShared>,
    events: u64,
}

impl EventWriter {
    /// Opens the output (truncating a file) and starts the writer thread.
    pub fn spawn(target: &OutputTarget) -> Result<EventWriter, AlertWriteError> {
        EventWriter::spawn_with(target, WriterOptions::default())
    }

    /// The writer of a live sensor: appends to a file, takes what every sink holds every
    /// `sweep_every`, and measures packet-to-alert latency.
    pub fn spawn_live(
        target: &OutputTarget,
        sweep_every: std::time::Duration,
    ) -> Result<EventWriter, AlertWriteError> {
        EventWriter::spawn_with(
            target,
            WriterOptions {
                sweep_every: Some(sweep_every),
                append: true,
                measure_latency: true,
            },
        )
    }

    /// Opens the output and starts the writer thread, with options.
    fn spawn_with(
        target: &OutputTarget,
        options: WriterOptions,
    ) -> Result<EventWriter, AlertWriteError> {
        let name = target.describe();
        let out = open(target, options.append)?;
        // Bounded: a slow output holds producers back instead of growing memory, and the
        // queue is allocated once (an unbounded channel allocates a block every 31 chunks).
        let (tx, rx) = crossbeam_channel::bounded::<WriterMsg>(WRITER_QUEUE_CHUNKS);
        // Buffers go back to the sinks after writing, so a steady stream of events (flow
        // records) allocates nothing; beyond this many idle buffers they are freed.
        let (recycle_tx, recycled) = crossbeam_channel::bounded(RECYCLED_BUFFERS);
        let sinks: SinkRegistry = Arc::default();
        let latency = latency_histogram();
        let mut state = WriterState {
            out: BufWriter::with_capacity(256 * 1024, out),
            target: target.clone(),
            name: name.clone(),
            written: 0,
            latency: options.measure_latency.then(|| Arc::clone(&latency)),
            spare: Vec::with_capacity(SINK_FLUSH_BYTES * 2),
            recycle: recycle_tx,
        };
        let registry = Arc::clone(&sinks);
        let thread = std::thread::Builder::new()
            .name("mw-writer".to_owned())
            .spawn(move || state.run(&rx, &registry, options.sweep_every))
            .map_err(|source| AlertWriteError::Io {
                target: name,
                source,
            })?;
        Ok(EventWriter {
            tx,
            recycled,
            sinks,
            latency,
            thread,
        })
    }

    /// A new sink feeding this writer.
    pub fn sink(&self) -> EventSink {
        let shared = Arc::new(SinkShared {
            buf: Mutex::new(Vec::with_capacity(SINK_FLUSH_BYTES * 2)),
        });
        let mut sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget sinks that were dropped, so the registry stays as small as the live set.
        sinks.retain(|w| w.strong_count() > 0);
        sinks.push(Arc::downgrade(&shared));
        EventSink {
            tx: self.tx.clone(),
            recycled: self.recycled.clone(),
            shared,
            events: 0,
        }
    }

    /// Asks the writer to hand over everything buffered so far to the current output, then
    /// reopen it (a file is created again if it was renamed away; standard output is only
    /// flushed). A failure to reopen ends the writer with an error.
    pub fn reopen(&self) {
        let _ = self.tx.send(WriterMsg::Reopen);
    }

    /// Whether the writer thread still runs (it stops on the first write error).
    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Packet-to-alert latency measured so far (with [`WriterOptions::measure_latency`]).
    pub fn alert_latency(&self) -> LatencySummary {
        summarize(&self.latency)
    }

    /// The latency histogram itself, for a metrics endpoint.
    pub fn latency_histogram(&self) -> SharedHistogram {
        Arc::clone(&self.latency)
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

fn open(target: &OutputTarget, append: bool) -> Result<Box<dyn Write + Send>, AlertWriteError> {
    Ok(match target {
        OutputTarget::Stdout => Box::new(std::io::stdout()),
        OutputTarget::File(path) => {
            let mut o = std::fs::OpenOptions::new();
            if append {
                o.create(true).append(true);
            } else {
                o.create(true).write(true).truncate(true);
            }
            Box::new(
                o.open(path)
                    .map_err(|source| AlertWriteError::from_io(&target.describe(), source))?,
            )
        }
    })
}

/// The writer thread's side.
struct WriterState {
    out: BufWriter<Box<dyn Write + Send>>,
    target: OutputTarget,
    name: String,
    written: u64,
    latency: Option<SharedHistogram>,
    /// An empty buffer swapped into a sink when its contents are taken.
    spare: Vec<u8>,
    /// Where written chunks go back to the sinks.
    recycle: Sender<Vec<u8>>,
}

impl WriterState {
    fn run(
        &mut self,
        rx: &Receiver<WriterMsg>,
        sinks: &SinkRegistry,
        sweep_every: Option<std::time::Duration>,
    ) -> Result<u64, AlertWriteError> {
        let mut next_sweep = sweep_every.map(|d| Instant::now() + d);
        loop {
            let msg = match next_sweep {
                Some(at) => match rx.recv_deadline(at) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                // `recv` fails once every sender is gone: all producers have flushed.
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                },
            };
            let mut reopen = false;
            match msg {
                Some(WriterMsg::Chunk(chunk)) => self.write_and_recycle(chunk)?,
                Some(WriterMsg::Reopen) => reopen = true,
                None => {}
            }
            if let (Some(at), Some(every)) = (next_sweep, sweep_every) {
                if reopen || Instant::now() >= at {
                    reopen |= self.sweep(rx, sinks)?;
                    next_sweep = Some(Instant::now() + every);
                }
            }
            if reopen {
                self.reopen()?;
            }
            if rx.is_empty() {
                // Nothing queued: push what we have so a live reader sees events promptly.
                self.out.flush().map_err(|e| self.error(e))?;
            }
        }
        self.out.flush().map_err(|e| self.error(e))?;
        Ok(self.written)
    }

    /// Takes what every sink holds. Chunks a sink sent before we took its lock are already in
    /// the channel (sinks send under their lock), so they are written first: each sink's
    /// events keep their order. Returns whether a reopen was asked for meanwhile.
    fn sweep(
        &mut self,
        rx: &Receiver<WriterMsg>,
        sinks: &SinkRegistry,
    ) -> Result<bool, AlertWriteError> {
        let live: Vec<Arc<SinkShared>> = sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let mut reopen = false;
        for sink in live {
            // A sink blocked sending into the full queue holds its lock: skip it this time
            // rather than wait for it (it waits for us), its chunk arrives through the queue.
            let mut buf = match sink.buf.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => continue,
            };
            while let Ok(msg) = rx.try_recv() {
                match msg {
                    WriterMsg::Chunk(chunk) => self.write_and_recycle(chunk)?,
                    WriterMsg::Reopen => reopen = true,
                }
            }
            if buf.is_empty() {
                continue;
            }
            let taken = std::mem::replace(&mut *buf, std::mem::take(&mut self.spare));
            drop(buf);
            self.write_chunk(&taken)?;
            self.spare = taken;
            self.spare.clear();
        }
        Ok(reopen)
    }

    fn reopen(&mut self) -> Result<(), AlertWriteError> {
        self.out.flush().map_err(|e| self.error(e))?;
        if let OutputTarget::File(_) = self.target {
            let out = open(&self.target, true)?;
            self.out = BufWriter::with_capacity(256 * 1024, out);
        }
        Ok(())
    }

    /// Writes a chunk a sink handed over and returns the buffer for reuse.
    fn write_and_recycle(&mut self, mut chunk: Vec<u8>) -> Result<(), AlertWriteError> {
        self.write_chunk(&chunk)?;
        chunk.clear();
        // A full pool (or sinks all gone) just frees the buffer.
        let _ = self.recycle.try_send(chunk);
        Ok(())
    }

    fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), AlertWriteError> {
        self.out.write_all(chunk).map_err(|e| self.error(e))?;
        self.written = self.written.saturating_add(chunk.len() as u64);
        if let Some(h) = &self.latency {
            record_alert_latency(h, chunk);
        }
        Ok(())
    }

    fn error(&self, source: std::io::Error) -> AlertWriteError {
        AlertWriteError::from_io(&self.name, source)
    }
}

/// Records, for every alert line of `chunk`, the wall clock now minus the packet time the
/// alert carries (in live capture, packet time is the kernel's receive time).
fn record_alert_latency(h: &SharedHistogram, chunk: &[u8]) {
    const PREFIX: &[u8] = b"{\"timestamp\":\"";
    const ALERT: &[u8] = b"\"event_type\":\"alert\"";
    let now = std::time::SystemTime::now();
    let mut hist: Option<std::sync::MutexGuard<'_, _>> = None;
    for line in chunk.split(|&b| b == b'\n') {
        let Some(rest) = line.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(end) = rest.iter().position(|&b| b == b'"') else {
            continue;
        };
        // `flow_id` and `in_iface` may come between the timestamp and the type (Suricata's
        // order): the first `"event_type":"` of the line is the event's own (the fields
        // before it are scalars, and a quote inside a string is escaped).
        let is_alert = rest[end..]
            .windows(ALERT.len())
            .position(|w| w == ALERT)
            .is_some_and(|at| !rest[end..end + at].contains(&b'{'));
        if !is_alert {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&rest[..end]) else {
            continue;
        };
        let Some(ts) = super::Rfc3339::parse(text) else {
            continue;
        };
        let ts = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ts.as_nanos());
        let us = now
            .duration_since(ts)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let guard = hist.get_or_insert_with(|| h.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(h) = guard.as_mut() {
            // Clamped into the histogram's range; recording cannot fail then.
            let _ = h.record(us.clamp(1, LATENCY_MAX_US));
        }
    }
}

impl EventSink {
    /// Serializes one event as a JSON line.
    pub fn write<T: Serialize>(&mut self, event: &T) -> Result<(), AlertWriteError> {
        let mut buf = self
            .shared
            .buf
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        super::escape::to_writer(&mut *buf, event)?;
        buf.push(b'\n');
        self.events = self.events.saturating_add(1);
        if buf.len() >= SINK_FLUSH_BYTES {
            hand_over(&self.tx, &self.recycled, &mut buf)?;
        }
        Ok(())
    }

    /// Hands buffered events to the writer thread.
    pub fn flush(&mut self) -> Result<(), AlertWriteError> {
        let mut buf = self
            .shared
            .buf
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        hand_over(&self.tx, &self.recycled, &mut buf)
    }

    /// Events written through this sink.
    pub fn events(&self) -> u64 {
        self.events
    }
}

/// Sends the buffer's contents, under the sink's lock (see [`WriterState::sweep`]).
fn hand_over(
    tx: &Sender<WriterMsg>,
    recycled: &Receiver<Vec<u8>>,
    buf: &mut Vec<u8>,
) -> Result<(), AlertWriteError> {
    if buf.is_empty() {
        return Ok(());
    }
    let fresh = recycled
        .try_recv()
        .unwrap_or_else(|_| Vec::with_capacity(SINK_FLUSH_BYTES * 2));
    let full = std::mem::replace(buf, fresh);
    tx.send(WriterMsg::Chunk(full))
        .map_err(|_| AlertWriteError::WriterGone)
}

impl Drop for EventSink {
    fn drop(&mut self) {
        // Last chance to hand events over; if the writer is gone it has reported why.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Line {
        n: u32,
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("mw-writer-{}-{name}", std::process::id()))
    }

    #[test]
    fn sweeps_hand_over_a_quiet_sinks_events_in_order() {
        let path = temp("sweep");
        let options = WriterOptions {
            sweep_every: Some(std::time::Duration::from_millis(10)),
            ..WriterOptions::default()
        };
        let writer = EventWriter::spawn_with(&OutputTarget::File(path.clone()), options).unwrap();
        let mut sink = writer.sink();
        for n in 0..3 {
            sink.write(&Line { n }).unwrap();
        }
        // No flush: only the sweep can hand these over while the sink lives.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut text = String::new();
        while Instant::now() < deadline {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(text, "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
        // A big burst goes through the channel, then a small tail through a sweep: in order.
        for n in 3..10_000 {
            sink.write(&Line { n }).unwrap();
        }
        drop(sink);
        writer.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let ns: Vec<u32> = text
            .lines()
            .map(|l| l.trim_start_matches("{\"n\":").trim_end_matches('}'))
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(ns, (0..10_000).collect::<Vec<_>>());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn reopen_writes_new_events_to_a_new_file_after_a_rename() {
        let path = temp("reopen");
        let rotated = temp("reopen.1");
        let options = WriterOptions {
            sweep_every: Some(std::time::Duration::from_millis(10)),
            append: true,
            ..WriterOptions::default()
        };
        let _ = std::fs::remove_file(&path);
        let writer = EventWriter::spawn_with(&OutputTarget::File(path.clone()), options).unwrap();
        let mut sink = writer.sink();
        sink.write(&Line { n: 1 }).unwrap();
        sink.flush().unwrap();
        std::fs::rename(&path, &rotated).unwrap();
        writer.reopen();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while !path.exists() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        sink.write(&Line { n: 2 }).unwrap();
        drop(sink);
        writer.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "{\"n\":1}\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":2}\n");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&rotated);
    }

    #[test]
    fn a_full_disk_is_named_as_such() {
        let target = OutputTarget::File(PathBuf::from("/dev/full"));
        let writer = EventWriter::spawn_with(&target, WriterOptions::default()).unwrap();
        let mut sink = writer.sink();
        sink.write(&Line { n: 1 }).unwrap();
        drop(sink);
        let err = writer.finish().unwrap_err();
        assert!(matches!(err, AlertWriteError::DiskFull { .. }), "{err}");
        assert!(err.to_string().contains("no space left"), "{err}");
    }

    #[test]
    fn alert_latency_is_measured_from_the_alert_timestamp() {
        let h = latency_histogram();
        let then = std::time::SystemTime::now() - std::time::Duration::from_millis(250);
        let since = then.duration_since(std::time::UNIX_EPOCH).unwrap();
        let ts = super::super::Rfc3339(flowtable::Timestamp::from_secs_nanos(
            since.as_secs(),
            since.subsec_nanos(),
        ));
        let chunk = format!(
            "{{\"timestamp\":\"{ts}\",\"event_type\":\"stats\"}}\n\
             {{\"timestamp\":\"{ts}\",\"event_type\":\"alert\",\"src_ip\":null}}\n\
             {{\"timestamp\":\"{ts}\",\"flow_id\":7,\"in_iface\":\"eth0\",\"event_type\":\"alert\"}}\n\
             {{\"timestamp\":\"{ts}\",\"event_type\":\"flow\",\"evidence\":{{\"event_type\":\"alert\"}}}}\n"
        );
        record_alert_latency(&h, chunk.as_bytes());
        let s = summarize(&h);
        assert_eq!(s.count, 2);
        assert!((250_000..10_000_000).contains(&s.max_us), "{s:?}");
    }
}
