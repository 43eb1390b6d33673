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
//! interval however quiet its producer is. [`EventWriter::reopen`] reopens the output files
//! (SIGHUP after logrotate renamed them; one that cannot be reopened keeps its old file and
//! is retried), and the writer measures packet-to-alert latency:
//! the time an alert line is written minus the packet time it carries.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use serde::Serialize;

use super::error::AlertWriteError;
use super::output::{self, OutputCounters, OutputKind, OutputMode, OutputSpec, RunningOutput};
use crate::doorbell::{self, BellReceiver, BellSender};
use crate::latency::{
    LATENCY_MAX_US, LatencySummary, SharedHistogram, latency_histogram, summarize,
};
use crate::sched::LatencyGrant;

/// A producer hands its buffer over once it holds this many bytes.
const SINK_FLUSH_BYTES: usize = 64 * 1024;

/// Where events go, in the simple form of the benches and tests (one file or standard
/// output); [`OutputSpec`] is the general one.
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

    pub(crate) fn spec(&self) -> OutputSpec {
        let (kind, text) = match self {
            OutputTarget::Stdout => (OutputKind::Stdout, "-".to_owned()),
            OutputTarget::File(p) => (OutputKind::File(p.clone()), p.display().to_string()),
        };
        OutputSpec {
            kind,
            types: Vec::new(),
            queue_kib: output::DEFAULT_QUEUE_KIB,
            text,
        }
    }
}

/// How the writer runs beyond its outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Take what every sink holds at this interval (live capture); `None` waits for full
    /// buffers and explicit flushes (replay).
    pub sweep_every: Option<Duration>,
    /// Append to an existing file instead of truncating it (a long-running sensor, and every
    /// reopen).
    pub append: bool,
    /// Measure packet-to-alert latency on every alert line written.
    pub measure_latency: bool,
    /// Live capture: nobody ever waits on an output. A producer whose buffer finds the writer
    /// queue full, and a line without room in an output's queue, are dropped and counted.
    /// Otherwise (replay) everything waits and nothing is dropped.
    pub live: bool,
    /// Replay: how long an output may stay unreachable before it is given up (the run then
    /// ends with its error, every other output having got every event).
    pub retry_timeout: Duration,
    /// Live: how long a stopping sensor gives its outputs to deliver what they hold.
    pub shutdown_grace: Duration,
    /// Nice level the writer and output threads ask for (see [`crate::sched`]).
    pub nice: i32,
}

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        WriterOptions {
            sweep_every: None,
            append: false,
            measure_latency: false,
            live: false,
            retry_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
            nice: crate::sched::OUTPUT_NICE_DEFAULT,
        }
    }
}

impl WriterOptions {
    /// A live sensor's writer: appends to files, sweeps the sinks every `sweep_every`,
    /// measures latency, never waits.
    pub fn live(sweep_every: Duration) -> WriterOptions {
        WriterOptions {
            sweep_every: Some(sweep_every),
            append: true,
            measure_latency: true,
            live: true,
            ..WriterOptions::default()
        }
    }
}

/// What outputs did, for `stats` events (`stats.output`) and `--metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutputStats {
    /// Events lost on the way out, all causes and outputs together: zero means every output
    /// got every event of its types.
    pub dropped: u64,
    /// Events dropped because the writer queue was full (live only; no output got them).
    pub writer_queue_dropped: u64,
    /// Per output.
    pub outputs: Vec<OutputStat>,
}

/// One output's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutputStat {
    /// The output, as given.
    pub name: String,
    /// Events delivered.
    pub written: u64,
    /// Events dropped (queue full in live mode, refused, abandoned at exit).
    pub dropped: u64,
    /// Failed attempts, each retried.
    pub errors: u64,
}

/// See [`EventWriter::output_counters`].
pub struct OutputCountersHandle(Arc<WriterShared>);

impl OutputCountersHandle {
    /// What the outputs delivered and dropped so far.
    pub fn stats(&self) -> OutputStats {
        self.0.stats()
    }
}

/// Counters the sinks, the writer and the outputs share.
struct WriterShared {
    outputs: Vec<(String, Arc<OutputCounters>)>,
    writer_queue_dropped: AtomicU64,
    /// A reopen asked for while the writer queue was full.
    reopen: AtomicBool,
}

impl WriterShared {
    fn stats(&self) -> OutputStats {
        let writer_queue_dropped = self.writer_queue_dropped.load(Ordering::Relaxed);
        let outputs: Vec<OutputStat> = self
            .outputs
            .iter()
            .map(|(name, c)| OutputStat {
                name: name.clone(),
                written: c.written.load(Ordering::Relaxed),
                dropped: c.dropped.load(Ordering::Relaxed),
                errors: c.errors.load(Ordering::Relaxed),
            })
            .collect();
        OutputStats {
            dropped: outputs
                .iter()
                .fold(writer_queue_dropped, |a, o| a.saturating_add(o.dropped)),
            writer_queue_dropped,
            outputs,
        }
    }
}

enum WriterMsg {
    Chunk(Vec<u8>),
    Reopen,
}

/// Chunks queued for the writer thread before producers wait, or in live mode drop
/// (at most ~8 MiB).
const WRITER_QUEUE_CHUNKS: usize = 64;

/// Buffers (each `2 * SINK_FLUSH_BYTES`) that circulate between the sinks and the writer:
/// made once at start, as many as the writer queue can hold plus one per producer of a
/// typical run, so a writer that falls behind (a slow output) never makes a producer
/// allocate a fresh one, and a written buffer is never freed for want of room in the pool.
/// They are reserved, not touched: pages are committed only as events fill them.
const RECYCLED_BUFFERS: usize = WRITER_QUEUE_CHUNKS + 16;

/// The writer takes up to this many chunks already waiting in its queue (and at most
/// [`COALESCE_BYTES`]) before it writes, so a burst of alerts (each flushed alone by the
/// capture thread) becomes one write and one wake-up of the file's reader instead of one per
/// alert. Measured on the 2-core VM at 1 Mpps (`bench-mirror`): the queue held up to 60
/// one-alert chunks during a burst, each costing a write and a reader wake-up.
const COALESCE_CHUNKS: usize = WRITER_QUEUE_CHUNKS;

/// The most bytes the writer takes from its queue before it writes.
const COALESCE_BYTES: usize = 1 << 20;

/// The part of a sink the writer thread can reach.
#[derive(Default)]
struct SinkShared {
    buf: Mutex<Vec<u8>>,
}

type SinkRegistry = Arc<Mutex<Vec<Weak<SinkShared>>>>;

/// The writer thread: takes the sinks' buffers and hands each line to every output whose
/// event types it matches.
pub struct EventWriter {
    tx: BellSender<WriterMsg>,
    /// Written buffers coming back from the writer thread, for the sinks to reuse.
    recycled: Receiver<Vec<u8>>,
    sinks: SinkRegistry,
    latency: SharedHistogram,
    shared: Arc<WriterShared>,
    live: bool,
    /// File outputs (what a reopen reopens).
    files: usize,
    /// The nice and slice the writer thread got: sent by the thread as its first step, read
    /// only when asked (waiting for a thread to start cost a small replay 6 % of its time).
    granted: Mutex<std::sync::mpsc::Receiver<LatencyGrant>>,
    priority: std::sync::OnceLock<LatencyGrant>,
    thread: JoinHandle<Result<u64, AlertWriteError>>,
}

/// A producer's buffer of serialized events.
pub struct EventSink {
    tx: BellSender<WriterMsg>,
    recycled: Receiver<Vec<u8>>,
    shared: Arc<SinkShared>,
    writer: Arc<WriterShared>,
    live: bool,
    events: u64,
    /// `pcap_filename` of the events written from now on: the capture file of the packets
    /// the producer is working on (replay), set per batch; `None` writes none (live).
    pcap_filename: Option<Arc<str>>,
}

impl EventWriter {
    /// Opens the output (truncating a file) and starts the writer thread.
    pub fn spawn(target: &OutputTarget) -> Result<EventWriter, AlertWriteError> {
        EventWriter::start(&[target.spec()], WriterOptions::default())
    }

    /// The writer of a live sensor with one output (see [`WriterOptions::live`]).
    pub fn spawn_live(
        target: &OutputTarget,
        sweep_every: Duration,
    ) -> Result<EventWriter, AlertWriteError> {
        EventWriter::start(&[target.spec()], WriterOptions::live(sweep_every))
    }

    /// Opens every output (a file that cannot be created is an error here; a socket or
    /// server that is not there yet is retried by its thread) and starts the writer thread.
    pub fn start(
        specs: &[OutputSpec],
        options: WriterOptions,
    ) -> Result<EventWriter, AlertWriteError> {
        let mode = OutputMode {
            live: options.live,
            append: options.append,
            retry_timeout: options.retry_timeout,
            shutdown_grace: options.shutdown_grace,
            nice: options.nice,
        };
        let mut outputs = Vec::with_capacity(specs.len());
        for spec in specs {
            match output::start(spec, mode, specs.len() == 1) {
                Ok(o) => outputs.push(o),
                Err(e) => {
                    // The error that matters is the one that stopped the start.
                    let _ = close_outputs(outputs, options);
                    return Err(e);
                }
            }
        }
        let shared = Arc::new(WriterShared {
            outputs: outputs
                .iter()
                .map(|o| (o.spec.describe(), Arc::clone(&o.queue.counters)))
                .collect(),
            writer_queue_dropped: AtomicU64::new(0),
            reopen: AtomicBool::new(false),
        });
        // Bounded: a slow writer holds producers back (replay) or makes them drop (live)
        // instead of growing memory, and the queue is allocated once.
        // Its receiver parks while it is empty (see `doorbell`: crossbeam's own receive
        // yields, and a yielding writer waited a whole slice of the capture thread).
        let (tx, rx) = doorbell::bounded::<WriterMsg>(WRITER_QUEUE_CHUNKS);
        // Buffers go back to the sinks after writing, so a steady stream of events (flow
        // records) allocates nothing, even while the writer lags behind its producers.
        let (recycle_tx, recycled) = crossbeam_channel::bounded(RECYCLED_BUFFERS);
        for _ in 0..RECYCLED_BUFFERS {
            let _ = recycle_tx.try_send(Vec::with_capacity(SINK_FLUSH_BYTES * 2));
        }
        let sinks: SinkRegistry = Arc::default();
        let latency = latency_histogram();
        let mut state = WriterState {
            outputs,
            options,
            shared: Arc::clone(&shared),
            written: 0,
            latency: options.measure_latency.then(|| Arc::clone(&latency)),
            spare: Vec::with_capacity(SINK_FLUSH_BYTES * 2),
            recycle: recycle_tx,
            taken: Vec::with_capacity(COALESCE_CHUNKS),
            taken_bytes: 0,
            gave_up: None,
        };
        let registry = Arc::clone(&sinks);
        let (granted_tx, granted) = std::sync::mpsc::sync_channel(1);
        let nice = options.nice;
        let thread = std::thread::Builder::new()
            .name("mw-writer".to_owned())
            .spawn(move || {
                let _ = granted_tx.send(crate::sched::request_latency_priority(nice));
                state.run(&rx, &registry)
            })
            .map_err(|source| AlertWriteError::Io {
                target: "the event writer thread".to_owned(),
                source,
            })?;
        Ok(EventWriter {
            tx,
            recycled,
            sinks,
            latency,
            shared,
            live: options.live,
            files: specs
                .iter()
                .filter(|s| matches!(s.kind, OutputKind::File(_)))
                .count(),
            granted: Mutex::new(granted),
            priority: std::sync::OnceLock::new(),
            thread,
        })
    }

    /// The nice level and slice the writer thread runs with (what the kernel granted of
    /// [`WriterOptions::nice`]).
    pub fn priority(&self) -> LatencyGrant {
        *self.priority.get_or_init(|| {
            self.granted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv()
                .unwrap_or_default()
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
            writer: Arc::clone(&self.shared),
            live: self.live,
            events: 0,
            pcap_filename: None,
        }
    }

    /// Asks the writer to hand over everything buffered so far to the current outputs, then
    /// reopen the files (a file is created again if it was renamed away; other outputs are
    /// untouched). Never waits: with the writer queue full, the request is a flag the writer
    /// reads at its next sweep. Each file's output thread says on stderr what happened once
    /// it is done: reopened, or could not be (the OS error), in which case the file opened
    /// before keeps taking every event and the reopen is retried. Returns how many file
    /// outputs there are to reopen.
    pub fn reopen(&self) -> usize {
        if self.tx.try_send(WriterMsg::Reopen).is_err() {
            self.shared.reopen.store(true, Ordering::Relaxed);
            self.tx.ring();
        }
        self.files
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

    /// What the outputs delivered and dropped so far.
    pub fn output_stats(&self) -> OutputStats {
        self.shared.stats()
    }

    /// A handle on the output counters that outlives [`EventWriter::finish`] (which counts
    /// what a stopping live sensor could not deliver).
    pub fn output_counters(&self) -> OutputCountersHandle {
        OutputCountersHandle(Arc::clone(&self.shared))
    }

    /// The output counters as Prometheus text, to append to `--metrics`.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        let st = self.shared.stats();
        let mut s = String::with_capacity(1024);
        let _ = writeln!(
            s,
            "# HELP mirrorwatch_output_dropped_total Events lost on the way out (all outputs, \
             writer queue included).\n# TYPE mirrorwatch_output_dropped_total counter\n\
             mirrorwatch_output_dropped_total {}",
            st.dropped
        );
        for (metric, help) in [
            ("output_events_total", "Events delivered, by output."),
            ("output_events_dropped_total", "Events dropped, by output."),
            ("output_errors_total", "Failed write attempts, by output."),
        ] {
            let _ = writeln!(
                s,
                "# HELP mirrorwatch_{metric} {help}\n# TYPE mirrorwatch_{metric} counter"
            );
            for o in &st.outputs {
                let v = match metric {
                    "output_events_total" => o.written,
                    "output_events_dropped_total" => o.dropped,
                    _ => o.errors,
                };
                let name = o.name.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(s, "mirrorwatch_{metric}{{output=\"{name}\"}} {v}");
            }
        }
        s
    }

    /// Waits for every sink to be dropped or flushed, hands the rest to the outputs and
    /// closes them (a live sensor gives them `shutdown_grace`, then counts what is left as
    /// dropped). Returns the number of bytes handed over, or the first output's error.
    pub fn finish(self) -> Result<u64, AlertWriteError> {
        drop(self.tx);
        self.thread
            .join()
            .unwrap_or(Err(AlertWriteError::WriterGone))
    }
}

/// Closes the outputs and waits for their threads: a replay as long as they take (each
/// gives up after its retry timeout), a live sensor its grace time plus a second, after which
/// what is still queued is counted as dropped and the thread is left to the process exit (it
/// may be blocked in a write to a stalled reader). Returns the first error.
fn close_outputs(
    mut outputs: Vec<RunningOutput>,
    options: WriterOptions,
) -> Result<(), AlertWriteError> {
    // An inline output delivers what is left here, on the writer thread.
    for o in &mut outputs {
        o.close();
    }
    let deadline = Instant::now() + options.shutdown_grace + Duration::from_secs(1);
    let mut first = None;
    for o in outputs {
        if options.live {
            while !o.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if !o.is_finished() {
                o.queue.abandon();
                eprintln!(
                    "mirrorwatch: output {}: still blocked at exit; what it held is counted \
                     as dropped",
                    o.spec.describe()
                );
                continue;
            }
        }
        let result = o.join();
        if let Err(e) = result {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// The writer thread's side.
struct WriterState {
    outputs: Vec<RunningOutput>,
    options: WriterOptions,
    shared: Arc<WriterShared>,
    written: u64,
    latency: Option<SharedHistogram>,
    /// An empty buffer swapped into a sink when its contents are taken.
    spare: Vec<u8>,
    /// Where written chunks go back to the sinks.
    recycle: Sender<Vec<u8>>,
    /// Chunks handed to the outputs and not yet written by the inline ones: their alerts'
    /// latency is taken once written, then they go back to the sinks.
    taken: Vec<Vec<u8>>,
    /// Bytes of `taken`.
    taken_bytes: usize,
    /// Set when every output has given up: producers are told the writer is gone.
    gave_up: Option<()>,
}

impl WriterState {
    fn run(
        &mut self,
        rx: &BellReceiver<WriterMsg>,
        sinks: &SinkRegistry,
    ) -> Result<u64, AlertWriteError> {
        let result = self.dispatch(rx, sinks);
        let outputs = std::mem::take(&mut self.outputs);
        let closed = close_outputs(outputs, self.options);
        result?;
        closed?;
        Ok(self.written)
    }

    /// Hands chunks to the outputs until every producer is gone, or an output fails for
    /// good (a file or standard output at once, or every output).
    fn dispatch(
        &mut self,
        rx: &BellReceiver<WriterMsg>,
        sinks: &SinkRegistry,
    ) -> Result<(), AlertWriteError> {
        let sweep_every = self.options.sweep_every;
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
            let mut reopen = self.shared.reopen.swap(false, Ordering::Relaxed);
            match msg {
                Some(WriterMsg::Chunk(chunk)) => {
                    self.take(chunk);
                    // What else already waits joins this write (bounded: a writer fed without
                    // pause still writes).
                    while self.taken.len() < COALESCE_CHUNKS && self.taken_bytes < COALESCE_BYTES {
                        match rx.try_recv() {
                            Ok(WriterMsg::Chunk(chunk)) => self.take(chunk),
                            Ok(WriterMsg::Reopen) => {
                                reopen = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.deliver();
                }
                Some(WriterMsg::Reopen) => reopen = true,
                None => {}
            }
            if let (Some(at), Some(every)) = (next_sweep, sweep_every) {
                if reopen || Instant::now() >= at {
                    reopen |= self.sweep(rx, sinks);
                    next_sweep = Some(Instant::now() + every);
                }
            }
            if reopen {
                for o in &mut self.outputs {
                    if matches!(o.spec.kind, OutputKind::File(_)) {
                        o.request_reopen();
                    }
                }
            }
            self.check_outputs()?;
            if self.gave_up.is_some() {
                // Every output gave up: no producer can be served any more.
                return Ok(());
            }
        }
        Ok(())
    }

    /// A file or standard output that failed ends the writer (its thread has the error);
    /// when every output has given up, so does the writer.
    fn check_outputs(&mut self) -> Result<(), AlertWriteError> {
        if let Some(i) = self
            .outputs
            .iter()
            .position(|o| o.queue.is_dead() && o.is_finished() && o.spec.fatal_errors())
        {
            let o = self.outputs.swap_remove(i);
            return Err(match o.join() {
                Err(e) => e,
                Ok(()) => AlertWriteError::WriterGone,
            });
        }
        if !self.outputs.is_empty() && self.outputs.iter().all(|o| o.queue.is_dead()) {
            self.gave_up = Some(());
        }
        Ok(())
    }

    /// Takes what every sink holds. Chunks a sink sent before we took its lock are already in
    /// the channel (sinks send under their lock), so they are written first: each sink's
    /// events keep their order. Returns whether a reopen was asked for meanwhile.
    fn sweep(&mut self, rx: &BellReceiver<WriterMsg>, sinks: &SinkRegistry) -> bool {
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
                    WriterMsg::Chunk(chunk) => self.take(chunk),
                    WriterMsg::Reopen => reopen = true,
                }
            }
            if buf.is_empty() {
                continue;
            }
            // The sink gets the spare buffer; its full one is written with what the queue
            // held, and a written buffer becomes the spare for the next sink.
            let full = std::mem::replace(&mut *buf, std::mem::take(&mut self.spare));
            drop(buf);
            self.take(full);
            self.deliver();
        }
        self.deliver();
        reopen
    }

    /// Hands the chunk's lines to every output that takes their types (queued: the inline
    /// ones write at [`WriterState::deliver`]).
    fn take(&mut self, chunk: Vec<u8>) {
        let live = self.options.live;
        for o in &mut self.outputs {
            o.push(&chunk, live);
        }
        self.written = self.written.saturating_add(chunk.len() as u64);
        self.taken_bytes += chunk.len();
        self.taken.push(chunk);
    }

    /// The inline outputs write what was taken; then the latency of its alerts is recorded
    /// and the buffers go back (the spare first, then the sinks' pool).
    fn deliver(&mut self) {
        for o in &mut self.outputs {
            o.deliver();
        }
        for mut chunk in self.taken.drain(..) {
            if let Some(h) = &self.latency {
                record_alert_latency(h, &chunk);
            }
            chunk.clear();
            if self.spare.capacity() == 0 {
                self.spare = chunk;
            } else {
                // A full pool (or sinks all gone) just frees the buffer.
                let _ = self.recycle.try_send(chunk);
            }
        }
        self.taken_bytes = 0;
    }
}

/// Records, for every alert line of `chunk`, the wall clock now minus the packet time the
/// alert carries (in live capture, packet time is the kernel's receive time).
fn record_alert_latency(h: &SharedHistogram, chunk: &[u8]) {
    const TS: &[u8] = b"\"timestamp\":\"";
    let now = std::time::SystemTime::now();
    let mut hist: Option<std::sync::MutexGuard<'_, _>> = None;
    for line in chunk.split(|&b| b == b'\n') {
        if output::event_type(line) != b"alert" {
            continue;
        }
        let Some(at) = line.windows(TS.len()).position(|w| w == TS) else {
            continue;
        };
        let rest = &line[at + TS.len()..];
        let Some(end) = rest.iter().position(|&b| b == b'"') else {
            continue;
        };
        let Some(ts) = parse_event_time(&rest[..end]) else {
            continue;
        };
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

/// An event's timestamp: RFC 3339 with `Z`, or Suricata's `+0000` offset.
fn parse_event_time(text: &[u8]) -> Option<std::time::SystemTime> {
    // Suricata's form, `2026-01-05T09:00:01.530893+0000`, as `...530893Z` on the stack.
    let mut z = [0u8; 40];
    let text = match text.strip_suffix(b"+0000") {
        Some(head) if head.len() < z.len() => {
            z[..head.len()].copy_from_slice(head);
            z[head.len()] = b'Z';
            &z[..=head.len()]
        }
        _ => text,
    };
    humantime::parse_rfc3339(std::str::from_utf8(text).ok()?).ok()
}

impl EventSink {
    /// Serializes one event as a JSON line.
    pub fn write<T: Serialize>(&mut self, event: &T) -> Result<(), AlertWriteError> {
        let mut buf = self
            .shared
            .buf
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        super::with_pcap_filename(&mut self.pcap_filename, || {
            super::escape::to_writer(&mut *buf, event)
        })?;
        buf.push(b'\n');
        self.events = self.events.saturating_add(1);
        if buf.len() >= SINK_FLUSH_BYTES {
            self.hand_over(&mut buf)?;
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
        self.hand_over(&mut buf)
    }

    /// Names the capture file (`pcap_filename`) of the events written from now on: the file
    /// whose packets the producer works on. Events already written keep theirs (the name is
    /// serialized with each event). Replaces a reference, allocates nothing.
    pub fn set_pcap_filename(&mut self, file: Option<Arc<str>>) {
        self.pcap_filename = file;
    }

    /// The capture file the events written now name.
    pub fn pcap_filename(&self) -> Option<&Arc<str>> {
        self.pcap_filename.as_ref()
    }

    /// Events written through this sink.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// What the outputs delivered and dropped so far (for the `stats` event).
    pub fn output_stats(&self) -> OutputStats {
        self.writer.stats()
    }

    /// Sends the buffer's contents, under the sink's lock (see [`WriterState::sweep`]). In
    /// live mode a full writer queue never makes the caller (the capture thread, a worker,
    /// the stats writer) wait: the buffer's events are dropped and counted instead.
    fn hand_over(&self, buf: &mut Vec<u8>) -> Result<(), AlertWriteError> {
        if buf.is_empty() {
            return Ok(());
        }
        let fresh = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(SINK_FLUSH_BYTES * 2));
        let full = std::mem::replace(buf, fresh);
        if !self.live {
            return self
                .tx
                .send(WriterMsg::Chunk(full))
                .map_err(|_| AlertWriteError::WriterGone);
        }
        match self.tx.try_send(WriterMsg::Chunk(full)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(WriterMsg::Chunk(mut chunk))) => {
                let lines = chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                self.writer
                    .writer_queue_dropped
                    .fetch_add(lines, Ordering::Relaxed);
                // Keep the sink's own (bigger or equal) buffer rather than the fresh one.
                chunk.clear();
                *buf = chunk;
                Ok(())
            }
            Err(_) => Err(AlertWriteError::WriterGone),
        }
    }
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
        let writer =
            EventWriter::start(&[OutputTarget::File(path.clone()).spec()], options).unwrap();
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
        let writer =
            EventWriter::start(&[OutputTarget::File(path.clone()).spec()], options).unwrap();
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

    /// Issue 18 item 17: a reopen that fails (a directory where the file was; root is refused
    /// too) neither stops the writer nor loses a line: the file opened before (renamed by the
    /// rotation) keeps taking them, and the next reopen, once the path is free, moves on.
    #[test]
    fn a_failed_reopen_keeps_the_old_file_and_a_later_one_moves_on() {
        let dir = temp("reopen-fails");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eve.json");
        let rotated = dir.join("eve.json.1");
        let options = WriterOptions {
            append: true,
            ..WriterOptions::default()
        };
        let writer =
            EventWriter::start(&[OutputTarget::File(path.clone()).spec()], options).unwrap();
        let counters = writer.output_counters();
        let mut sink = writer.sink();
        let mut line = |n: u32| {
            sink.write(&Line { n }).unwrap();
            sink.flush().unwrap();
        };
        line(1);
        std::fs::rename(&path, &rotated).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert_eq!(writer.reopen(), 1);
        line(2);
        // The failed reopen is counted once the output thread tried it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while counters.stats().outputs[0].errors == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(counters.stats().outputs[0].errors, 1);
        assert!(writer.is_running());
        line(3);
        std::fs::remove_dir(&path).unwrap();
        writer.reopen();
        line(4);
        drop(sink);
        writer.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":4}\n");
        let st = counters.stats();
        assert_eq!((st.outputs[0].written, st.dropped), (4, 0), "{st:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_live_writer_never_waits_on_a_stalled_output_and_counts_every_line() {
        let dir = temp("stalled");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        // The receiver accepts and never reads: the socket buffer fills, the output blocks.
        let holder = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let spec =
            OutputSpec::parse(&format!("unix-stream:{}?queue_kib=16", sock.display())).unwrap();
        let options = WriterOptions {
            shutdown_grace: Duration::ZERO,
            ..WriterOptions::live(Duration::from_millis(5))
        };
        let writer = EventWriter::start(&[spec], options).unwrap();
        let mut sink = writer.sink();
        const N: u32 = 200_000;
        for n in 0..N {
            sink.write(&Line { n }).unwrap();
            if n % 64 == 0 {
                // The flush of the capture thread after a mirror alert: never waits.
                sink.flush().unwrap();
            }
        }
        drop(sink);
        let counters = writer.output_counters();
        writer.finish().unwrap();
        let st = counters.stats();
        assert!(st.dropped > 0, "{st:?}");
        let o = &st.outputs[0];
        assert_eq!(
            o.written + o.dropped + st.writer_queue_dropped,
            u64::from(N),
            "every line is either written or counted: {st:?}"
        );
        drop(holder);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_disk_is_named_as_such() {
        let target = OutputTarget::File(PathBuf::from("/dev/full"));
        let writer = EventWriter::start(&[target.spec()], WriterOptions::default()).unwrap();
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
        // Suricata's timestamp form, and keys in another order.
        let suricata = ts.to_string().replace('Z', "+0000");
        let chunk =
            format!("{{\"timestamp\":\"{suricata}\",\"flow_id\":1,\"event_type\":\"alert\"}}\n");
        record_alert_latency(&h, chunk.as_bytes());
        let s = summarize(&h);
        assert_eq!(s.count, 3);
        assert!((250_000..10_000_000).contains(&s.max_us), "{s:?}");
    }
}
