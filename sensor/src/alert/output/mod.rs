//! Event outputs: where the writer thread's JSON lines go (Suricata's `eve-log` types: a
//! file or standard output, Unix sockets, syslog, Redis), each with its own event-type filter.
//!
//! Every output has its own thread and a queue bounded in bytes ([`OutputQueue`]), so a slow
//! or dead output delays neither the others nor capture; a lone regular file is the exception,
//! written by the writer thread itself (see [`start`]: there is no other output to delay, and
//! one wake-up less on every event's way out). In live mode a line that does not
//! fit in an output's queue is dropped and counted in that output's `dropped` (the one place
//! `stats` and `--metrics` read); in replay the writer waits for room, and an output that
//! stays unreachable for `[output] retry_timeout_s` is given up with an error at the end of
//! the run, every other output still getting every event. Network outputs reconnect and
//! resend the batch that failed (at least once); a file or standard output that fails ends
//! the writer, as a full disk must not go unnoticed. A file that cannot be reopened on
//! SIGHUP is the exception: the file opened before stays in use and the reopen is retried
//! (see [`reopen`]), since it still takes every event.
//!
//! The same text names an output on the command line (`--output`) and in `[output] targets`
//! ([`OutputSpec::parse`]).

mod file;
mod redis;
mod syslog;
mod unix;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use memchr::memmem;
use thiserror::Error;

pub use file::open_output_file;
pub use redis::RedisMode;
pub use syslog::{SyslogTransport, facility_code, level_code};

use super::error::AlertWriteError;

/// Default bound of one output's queue, in KiB.
pub const DEFAULT_QUEUE_KIB: usize = 8 * 1024;

/// What an output is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputKind {
    /// Standard output (`-`).
    Stdout,
    /// A file: truncated by a replay, appended to by a live sensor, reopened on SIGHUP.
    File(PathBuf),
    /// A Unix datagram socket: one event per datagram, without the newline.
    UnixDgram(PathBuf),
    /// A Unix stream socket: JSON lines.
    UnixStream(PathBuf),
    /// RFC 5424 syslog.
    Syslog {
        /// Where to.
        transport: SyslogTransport,
        /// Facility code (0..=23).
        facility: u8,
        /// Severity code (0..=7).
        level: u8,
    },
    /// Redis.
    Redis {
        /// `host:port`.
        addr: String,
        /// List (RPUSH/LPUSH), channel (PUBLISH) or stream (XADD).
        mode: RedisMode,
        /// The key or channel.
        key: String,
        /// `MAXLEN ~` of a stream (0 = none).
        maxlen: u64,
    },
}

/// One output, as given on the command line or in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    /// Where the events go.
    pub kind: OutputKind,
    /// Event types written (`alert`, `tunnel`, `flow`, `stats`); empty = every type.
    pub types: Vec<String>,
    /// Bound of the output's queue in KiB.
    pub queue_kib: usize,
    /// The text it was parsed from (names the output in messages and stats).
    pub text: String,
}

/// A malformed output specification.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("output {text:?}: {problem}")]
pub struct OutputSpecError {
    /// The text.
    pub text: String,
    /// What is wrong.
    pub problem: String,
}

/// The forms an output may take, for help texts and errors.
pub const OUTPUT_FORMS: &str = "`-` (standard output), PATH or file:PATH, unix-dgram:PATH, \
     unix-stream:PATH, syslog: (the local /dev/log), syslog:unix:PATH, syslog:udp:HOST:PORT, \
     syslog:tcp:HOST:PORT, redis://HOST[:PORT][/list|lpush|channel|stream[/KEY]]; each may end \
     in ?types=alert,tunnel&queue_kib=N (and for syslog facility=local5&level=info, for a \
     Redis stream maxlen=N)";

impl OutputSpec {
    /// Parses one output (see [`OUTPUT_FORMS`]).
    pub fn parse(text: &str) -> Result<OutputSpec, OutputSpecError> {
        let err = |problem: String| OutputSpecError {
            text: text.to_owned(),
            problem,
        };
        // Options follow the last `?`, but only when that tail is `key=value` pairs: a file
        // name may contain a `?`.
        let (main, opts) = match text.rsplit_once('?') {
            Some((m, o)) if o.is_empty() || o.split('&').all(|kv| kv.contains('=')) => (m, Some(o)),
            _ => (text, None),
        };
        let mut types = Vec::new();
        let mut queue_kib = DEFAULT_QUEUE_KIB;
        let mut facility = None;
        let mut level = None;
        let mut maxlen = None;
        for kv in opts
            .into_iter()
            .flat_map(|o| o.split('&'))
            .filter(|s| !s.is_empty())
        {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "types" => {
                    types = v
                        .split(',')
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "queue_kib" => {
                    queue_kib = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=1 << 22).contains(n))
                        .ok_or_else(|| err("queue_kib must be between 1 and 4194304".into()))?;
                }
                "facility" => {
                    facility = Some(
                        facility_code(v)
                            .ok_or_else(|| err(format!("unknown syslog facility {v:?}")))?,
                    );
                }
                "level" => {
                    level = Some(
                        level_code(v).ok_or_else(|| err(format!("unknown syslog level {v:?}")))?,
                    );
                }
                "maxlen" => {
                    maxlen = Some(
                        v.parse()
                            .map_err(|_| err(format!("maxlen {v:?} is not a whole number")))?,
                    );
                }
                _ => return Err(err(format!("unknown option {k:?}"))),
            }
        }
        let kind = if main == "-" || main == "stdout" {
            OutputKind::Stdout
        } else if let Some(path) = main.strip_prefix("file:") {
            OutputKind::File(non_empty_path(path).ok_or_else(|| err("no path".into()))?)
        } else if let Some(path) = main.strip_prefix("unix-dgram:") {
            OutputKind::UnixDgram(non_empty_path(path).ok_or_else(|| err("no path".into()))?)
        } else if let Some(path) = main.strip_prefix("unix-stream:") {
            OutputKind::UnixStream(non_empty_path(path).ok_or_else(|| err("no path".into()))?)
        } else if let Some(rest) = main.strip_prefix("syslog:") {
            OutputKind::Syslog {
                transport: SyslogTransport::parse(rest).map_err(err)?,
                facility: facility.unwrap_or(syslog::DEFAULT_FACILITY),
                level: level.unwrap_or(syslog::DEFAULT_LEVEL),
            }
        } else if let Some(rest) = main.strip_prefix("redis://") {
            let (addr, mode, key) = redis::parse_target(rest).map_err(err)?;
            OutputKind::Redis {
                addr,
                mode,
                key,
                maxlen: maxlen.unwrap_or(0),
            }
        } else if main.is_empty() {
            return Err(err("empty".into()));
        } else {
            OutputKind::File(PathBuf::from(main))
        };
        if (facility.is_some() || level.is_some()) && !matches!(kind, OutputKind::Syslog { .. }) {
            return Err(err("facility and level apply to syslog outputs only".into()));
        }
        if maxlen.is_some()
            && !matches!(
                kind,
                OutputKind::Redis {
                    mode: RedisMode::Stream,
                    ..
                }
            )
        {
            return Err(err("maxlen applies to Redis stream outputs only".into()));
        }
        Ok(OutputSpec {
            kind,
            types,
            queue_kib,
            text: text.to_owned(),
        })
    }

    /// Name for messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            OutputKind::Stdout => "standard output".to_owned(),
            OutputKind::File(p) => p.display().to_string(),
            _ => self.text.clone(),
        }
    }

    /// Whether the event `line` goes to this output (its type is read only when the output
    /// takes some types, not all).
    fn accepts(&self, line: &[u8]) -> bool {
        if self.types.is_empty() {
            return true;
        }
        let event_type = event_type(line);
        self.types.iter().any(|t| t.as_bytes() == event_type)
    }

    /// Whether a write error ends the writer (files, standard output) rather than being
    /// retried (sockets, syslog, Redis).
    pub(crate) fn fatal_errors(&self) -> bool {
        matches!(self.kind, OutputKind::Stdout | OutputKind::File(_))
    }
}

fn non_empty_path(s: &str) -> Option<PathBuf> {
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// The `event_type` of one JSON line (empty when it has none). The key is searched, not
/// expected at a position, so the order of keys may change; a `"` inside a string value is
/// escaped, so a string cannot fake the key.
pub(crate) fn event_type(line: &[u8]) -> &[u8] {
    const KEY: &[u8] = b"\"event_type\":\"";
    // Built once: the writer asks this of every line it routes.
    static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(KEY));
    let Some(at) = FINDER.find(line) else {
        return &[];
    };
    let rest = &line[at + KEY.len()..];
    let end = memchr::memchr(b'"', rest).unwrap_or(rest.len());
    &rest[..end]
}

/// The lines of `chunk`, each with its `\n` (the last without one when the chunk does not end
/// with it; nothing for an empty chunk): `split_inclusive` on `\n`, with a SIMD byte search
/// instead of a test per byte (the writer splits every chunk it routes).
pub(crate) fn lines_inclusive(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = chunk;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(len);
        rest = tail;
        Some(line)
    })
}

/// Counters of one output, shared with `stats` and `--metrics`.
#[derive(Debug, Default)]
pub struct OutputCounters {
    /// Events delivered.
    pub written: AtomicU64,
    /// Events dropped: no room in the queue (live), refused by the receiver, too big for a
    /// datagram, or still queued when a stopping sensor's grace time ran out.
    pub dropped: AtomicU64,
    /// Failed attempts (each followed by a retry or a reconnect).
    pub errors: AtomicU64,
}

/// How an output thread runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutputMode {
    /// Live capture: never make the writer wait; give up what is queued after the grace time
    /// once stopping.
    pub live: bool,
    /// Append to files rather than truncating them.
    pub append: bool,
    /// Replay: give an unreachable output up after this long.
    pub retry_timeout: Duration,
    /// Live: what a stopping sensor gives its outputs to deliver.
    pub shutdown_grace: Duration,
    /// Nice level an output thread asks for (as the writer: see [`crate::sched`]).
    pub nice: i32,
}

/// The bounded queue between the writer thread and one output thread.
pub(crate) struct OutputQueue {
    state: Mutex<QueueState>,
    /// Signalled when lines arrive or the queue closes.
    data: Condvar,
    /// Signalled when room is made or the output gives up.
    room: Condvar,
    limit_bytes: usize,
    /// Set by the output thread when it gave up (its error is its thread's result).
    dead: AtomicBool,
    /// Lines of the batch the output thread holds: whoever takes this count (the thread
    /// when the batch is done, [`OutputQueue::abandon`] at exit) counts them, exactly once.
    in_flight: AtomicU64,
    pub counters: Arc<OutputCounters>,
}

#[derive(Default)]
struct QueueState {
    buf: Vec<u8>,
    lines: u64,
    closed: bool,
    /// A reopen was asked for once the first `n` bytes of `buf` are written.
    reopen_at: Option<usize>,
}

impl OutputQueue {
    fn new(limit_bytes: usize) -> OutputQueue {
        OutputQueue {
            state: Mutex::new(QueueState::default()),
            data: Condvar::new(),
            room: Condvar::new(),
            limit_bytes,
            dead: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            counters: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the lines of `chunk` this output accepts. Live: a line without room is dropped
    /// and counted. Replay: waits for room (unless the output has given up).
    pub(crate) fn push(&self, spec: &OutputSpec, chunk: &[u8], live: bool) {
        self.push_within(spec, chunk, live, self.limit_bytes);
    }

    /// [`OutputQueue::push`] with the bound `limit_bytes`: `usize::MAX` for an inline output,
    /// which nobody else drains (waiting for room would wait for ever, and dropping would lose
    /// what the file can take now: the writer thread delivers it right after).
    fn push_within(&self, spec: &OutputSpec, chunk: &[u8], live: bool, limit_bytes: usize) {
        if self.dead.load(Ordering::Relaxed) {
            return;
        }
        let mut st = self.lock();
        let mut queued = false;
        for line in lines_inclusive(chunk) {
            if !spec.accepts(line) {
                continue;
            }
            // A line bigger than the whole queue still goes through an empty one.
            while !st.buf.is_empty() && st.buf.len() + line.len() > limit_bytes {
                if live || self.dead.load(Ordering::Relaxed) {
                    break;
                }
                self.data.notify_one();
                st = self.room.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            if self.dead.load(Ordering::Relaxed) {
                return;
            }
            if !st.buf.is_empty() && st.buf.len() + line.len() > limit_bytes {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            st.buf.extend_from_slice(line);
            st.lines += 1;
            queued = true;
        }
        drop(st);
        if queued {
            self.data.notify_one();
        }
    }

    /// Asks for a reopen once everything queued so far is written.
    pub(crate) fn request_reopen(&self) {
        let mut st = self.lock();
        st.reopen_at = Some(st.buf.len());
        drop(st);
        self.data.notify_one();
    }

    /// No more lines will come.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.data.notify_one();
    }

    /// Whether the output has given up.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// Counts as dropped what a stopping live sensor leaves behind: the lines still queued
    /// and those of the batch the output thread holds (some of which it may have delivered:
    /// the count errs on the side of loss).
    pub(crate) fn abandon(&self) {
        let mut st = self.lock();
        let queued = std::mem::take(&mut st.lines);
        st.buf.clear();
        drop(st);
        let held = self.in_flight.swap(0, Ordering::AcqRel);
        self.counters
            .dropped
            .fetch_add(queued.saturating_add(held), Ordering::Relaxed);
    }
}

/// A connection or file that takes batches of JSON lines.
trait Transport: Send {
    /// Delivers `batch[*done..]` (whole lines), advancing `done` past each line delivered or
    /// refused by the receiver (counted in `refused`: a datagram too big, a Redis error
    /// reply), so a retry resumes after the last one.
    fn send(&mut self, batch: &[u8], done: &mut usize, refused: &mut u64) -> std::io::Result<()>;
    /// Makes the next `send` start afresh (reconnect, reopen). Files reopen here.
    fn reset(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lines in `bytes`.
fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// A running output: its queue, and the thread that delivers it or, for a lone regular
/// file, the delivery the writer thread runs itself (see [`start`]).
pub(crate) struct RunningOutput {
    pub spec: OutputSpec,
    pub queue: Arc<OutputQueue>,
    runner: Runner,
}

enum Runner {
    Thread(std::thread::JoinHandle<Result<(), AlertWriteError>>),
    /// Delivered by the writer thread after each chunk; `Some` result once it ended.
    Inline(Box<Delivery>, Option<Result<(), AlertWriteError>>),
}

impl RunningOutput {
    /// Whether the writer thread delivers this output itself.
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.runner, Runner::Inline(..))
    }

    /// Queues the lines of `chunk` this output takes: an output thread is woken for them, an
    /// inline output writes them at the next [`RunningOutput::deliver`] (the writer thread
    /// queues every chunk waiting for it first, and they go out in one write).
    pub(crate) fn push(&mut self, chunk: &[u8], live: bool) {
        match &mut self.runner {
            Runner::Thread(_) => self.queue.push(&self.spec, chunk, live),
            Runner::Inline(..) => self.queue.push_within(&self.spec, chunk, live, usize::MAX),
        }
    }

    /// Asks a file output to reopen once what is queued is written (SIGHUP).
    pub(crate) fn request_reopen(&mut self) {
        self.queue.request_reopen();
        self.deliver();
    }

    /// An inline output writes what is queued, a reopen asked for included, unless it ended
    /// (the writer thread waits for the write: a regular file's page cache); an output
    /// thread delivers on its own.
    pub(crate) fn deliver(&mut self) {
        if let Runner::Inline(delivery, ended @ None) = &mut self.runner {
            match delivery.step(&self.queue, false) {
                Ok(Step::More) => {}
                result => *ended = Some(result.map(|_| ())),
            }
        }
    }

    /// Whether its delivery has ended (given up, or closed and written).
    pub(crate) fn is_finished(&self) -> bool {
        match &self.runner {
            Runner::Thread(t) => t.is_finished(),
            Runner::Inline(_, ended) => ended.is_some(),
        }
    }

    /// Closes the queue; an inline output delivers the rest here.
    pub(crate) fn close(&mut self) {
        self.queue.close();
        while matches!(self.runner, Runner::Inline(_, None)) {
            self.deliver();
        }
    }

    /// The delivery's result (waits for a thread).
    pub(crate) fn join(self) -> Result<(), AlertWriteError> {
        match self.runner {
            Runner::Thread(t) => t.join().unwrap_or(Err(AlertWriteError::WriterGone)),
            Runner::Inline(_, ended) => ended.unwrap_or(Ok(())),
        }
    }
}

/// Opens (or, for what may appear later, prepares) `spec` and starts its thread. A file that
/// cannot be created is an error here, before any packet is read; a FIFO without a reader,
/// a socket without a listener and an unreachable server are retried by the thread.
///
/// `alone`: the writer has no other output. A regular file then gets no thread: the writer
/// thread writes it after each chunk. A write to a regular file lands in the page cache and
/// waits for no reader, and with one output there is no other output for it to delay; the
/// thread would only add a wake-up to every event's way to the file (measured on this 2-core
/// VM at 1 Mpps: the output thread's wake-up after the writer's took 80 to 150 µs at the
/// median and up to milliseconds at p90, half of the packet-to-alert time). FIFOs, standard
/// output and the network outputs keep their thread: their reader may stall.
pub(crate) fn start(
    spec: &OutputSpec,
    mode: OutputMode,
    alone: bool,
) -> Result<RunningOutput, AlertWriteError> {
    let name = spec.describe();
    let mut regular_file = false;
    let transport: Box<dyn Transport> = match &spec.kind {
        OutputKind::Stdout => Box::new(file::FileTransport::stdout()),
        OutputKind::File(path) => {
            let t = file::FileTransport::open(path, mode.append)
                .map_err(|source| AlertWriteError::from_io(&name, source))?;
            regular_file = t.is_regular_file();
            Box::new(t)
        }
        OutputKind::UnixDgram(path) => Box::new(unix::DgramTransport::new(path.clone())),
        OutputKind::UnixStream(path) => {
            Box::new(unix::StreamTransport::new(path.clone(), io_timeout(mode)))
        }
        OutputKind::Syslog {
            transport,
            facility,
            level,
        } => Box::new(syslog::SyslogOutput::new(
            transport.clone(),
            *facility,
            *level,
            io_timeout(mode),
        )),
        OutputKind::Redis {
            addr,
            mode: rmode,
            key,
            maxlen,
        } => Box::new(redis::RedisOutput::new(
            addr.clone(),
            *rmode,
            key.clone(),
            *maxlen,
            io_timeout(mode),
        )),
    };
    let queue = Arc::new(OutputQueue::new(spec.queue_kib.saturating_mul(1024)));
    let delivery = Box::new(Delivery::new(transport, name, spec.fatal_errors(), mode));
    let runner = if alone && regular_file {
        Runner::Inline(delivery, None)
    } else {
        let q = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("mw-output".to_owned())
            .spawn(move || (*delivery).run(&q))
            .map_err(|source| AlertWriteError::Io {
                target: spec.describe(),
                source,
            })?;
        Runner::Thread(thread)
    };
    Ok(RunningOutput {
        spec: spec.clone(),
        queue,
        runner,
    })
}

/// How long a network write or reply may take: in replay as long as an output may stay
/// unreachable (so a stalled server that resumes gets each command once), live a few seconds.
fn io_timeout(mode: OutputMode) -> Duration {
    if mode.live {
        Duration::from_secs(5)
    } else {
        mode.retry_timeout.max(Duration::from_secs(1))
    }
}

/// Backoff between attempts on an unreachable output.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// After a reopen failed, how often it is tried again (when there are events to write).
pub const REOPEN_RETRY: Duration = Duration::from_secs(5);

/// What a delivery step left.
enum Step {
    /// The queue may get more.
    More,
    /// Closed and everything written (or, live, given up after the grace time).
    Ended,
}

/// Delivers one output's queue: on its own thread ([`Delivery::run`]), or a step at a time on
/// the writer thread (an inline output).
struct Delivery {
    transport: Box<dyn Transport>,
    name: String,
    fatal: bool,
    mode: OutputMode,
    batch: Vec<u8>,
    closed_at: Option<Instant>,
    /// A reopen that failed: when to try it again.
    reopen_retry: Option<Instant>,
}

impl Delivery {
    fn new(transport: Box<dyn Transport>, name: String, fatal: bool, mode: OutputMode) -> Self {
        Delivery {
            transport,
            name,
            fatal,
            mode,
            batch: Vec::new(),
            closed_at: None,
            reopen_retry: None,
        }
    }

    /// The output thread.
    fn run(mut self, queue: &OutputQueue) -> Result<(), AlertWriteError> {
        crate::sched::request_latency_priority(self.mode.nice);
        while let Step::More = self.step(queue, true)? {}
        Ok(())
    }

    /// Takes what is queued (waiting for it when `wait`) and delivers it, retrying as the
    /// output's kind says. After an error the output has given up: whatever is queued will
    /// not be written, and a waiting writer moves on.
    fn step(&mut self, queue: &OutputQueue, wait: bool) -> Result<Step, AlertWriteError> {
        let result = self.deliver(queue, wait);
        if result.is_err() {
            queue.dead.store(true, Ordering::Relaxed);
            let mut st = queue.lock();
            st.buf.clear();
            st.lines = 0;
            drop(st);
            queue.room.notify_all();
        }
        result
    }

    /// [`Delivery::step`] up to its result.
    fn deliver(&mut self, queue: &OutputQueue, wait: bool) -> Result<Step, AlertWriteError> {
        let counters = &*queue.counters;
        let mode = self.mode;
        let name = self.name.as_str();
        let (lines, reopen_at, closed) = {
            let mut st = queue.lock();
            while wait && st.buf.is_empty() && !st.closed && st.reopen_at.is_none() {
                st = queue
                    .data
                    .wait_timeout(st, Duration::from_millis(200))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut st.buf, &mut self.batch);
            let lines = std::mem::take(&mut st.lines);
            queue.in_flight.store(lines, Ordering::Release);
            (lines, st.reopen_at.take(), st.closed)
        };
        queue.room.notify_all();
        if closed && self.closed_at.is_none() {
            self.closed_at = Some(Instant::now());
        }
        let batch = &self.batch;
        let transport = &mut *self.transport;
        // A failed reopen is tried again before the batch, at most every `REOPEN_RETRY`.
        let retry = reopen_at.is_none() && self.reopen_retry.is_some_and(|at| Instant::now() >= at);
        let reopen_at = if retry { Some(0) } else { reopen_at };
        let split = reopen_at.unwrap_or(batch.len()).min(batch.len());
        let mut done = 0usize;
        let mut failing_since: Option<Instant> = None;
        let mut backoff = RETRY_MIN;
        let mut stage_end = split;
        let mut refused = 0u64;
        loop {
            if done >= stage_end {
                if stage_end == split && reopen_at.is_some() {
                    let failing = self.reopen_retry.is_some();
                    // An automatic retry that fails again is only counted; a SIGHUP's is said.
                    let say_failure = !retry;
                    self.reopen_retry = reopen(transport, name, failing, say_failure, counters);
                }
                if stage_end == batch.len() {
                    break;
                }
                stage_end = batch.len();
                continue;
            }
            match transport.send(&batch[..stage_end], &mut done, &mut refused) {
                Ok(()) => {
                    if failing_since.take().is_some() {
                        eprintln!("mirrorwatch: output {name}: delivering again");
                    }
                    backoff = RETRY_MIN;
                }
                Err(source) if self.fatal && !file::waits_for_reader(&source) => {
                    return Err(AlertWriteError::from_io(name, source));
                }
                Err(source) => {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    let since = *failing_since.get_or_insert_with(|| {
                        eprintln!(
                            "mirrorwatch: output {name}: {source}; retrying{}",
                            if mode.live {
                                " (events beyond its queue are dropped and counted)"
                            } else {
                                ""
                            }
                        );
                        Instant::now()
                    });
                    let _ = transport.reset();
                    if !mode.live && since.elapsed() >= mode.retry_timeout {
                        return Err(AlertWriteError::OutputDead {
                            target: name.to_owned(),
                            waited_s: since.elapsed().as_secs(),
                            last_error: source,
                        });
                    }
                    let closing = self
                        .closed_at
                        .or_else(|| queue.lock().closed.then(Instant::now));
                    if mode.live && closing.is_some_and(|c| c.elapsed() >= mode.shutdown_grace) {
                        // Unless the writer abandoned the batch already (and counted it).
                        if queue.in_flight.swap(0, Ordering::AcqRel) > 0 {
                            let left = count_lines(&batch[done..]);
                            let sent = lines.saturating_sub(left).saturating_sub(refused);
                            counters.written.fetch_add(sent, Ordering::Relaxed);
                            counters
                                .dropped
                                .fetch_add(left.saturating_add(refused), Ordering::Relaxed);
                        }
                        queue.abandon();
                        return Ok(Step::Ended);
                    }
                    self.closed_at = closing;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
        if queue.in_flight.swap(0, Ordering::AcqRel) > 0 {
            counters
                .written
                .fetch_add(lines.saturating_sub(refused), Ordering::Relaxed);
            counters.dropped.fetch_add(refused, Ordering::Relaxed);
        }
        self.batch.clear();
        if closed && queue.lock().buf.is_empty() {
            return Ok(Step::Ended);
        }
        Ok(Step::More)
    }
}

/// Reopens a file output (SIGHUP, after a rotation) and says on stderr what happened, once
/// the reopen is done. A reopen that fails (the directory removed, a directory or a symbolic
/// link where the file was) does not stop the sensor and loses no event: the file opened
/// before stays in use (after a rotation, under its new name) and the reopen is tried again
/// every [`REOPEN_RETRY`] while events come, and at every SIGHUP. Returns when to retry, if
/// it failed. `failing`: an earlier attempt failed; `say_failure`: a failure goes to stderr
/// (a SIGHUP's attempt, not an automatic retry's).
fn reopen(
    transport: &mut dyn Transport,
    name: &str,
    failing: bool,
    say_failure: bool,
    counters: &OutputCounters,
) -> Option<Instant> {
    match transport.reset() {
        Ok(()) => {
            eprintln!(
                "mirrorwatch: SIGHUP: reopened {name}{}",
                if failing {
                    " (events from here on go to it again)"
                } else {
                    ""
                }
            );
            None
        }
        Err(source) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            if say_failure {
                eprintln!(
                    "mirrorwatch: error: SIGHUP: could not reopen {name}: {source}; events \
                     still go to the file opened before (after a rotation, under its new name); \
                     retrying every {} s while events come, and at every SIGHUP",
                    REOPEN_RETRY.as_secs()
                );
            }
            Some(Instant::now() + REOPEN_RETRY)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let p = |s: &str| OutputSpec::parse(s).unwrap().kind;
        assert_eq!(p("-"), OutputKind::Stdout);
        assert_eq!(p("eve.json"), OutputKind::File("eve.json".into()));
        assert_eq!(p("file:/a?b"), OutputKind::File("/a?b".into()));
        assert_eq!(
            p("unix-dgram:/run/s"),
            OutputKind::UnixDgram("/run/s".into())
        );
        assert_eq!(
            p("unix-stream:/run/s"),
            OutputKind::UnixStream("/run/s".into())
        );
        assert_eq!(
            p("syslog:?facility=local5&level=warning"),
            OutputKind::Syslog {
                transport: SyslogTransport::Unix("/dev/log".into()),
                facility: 21,
                level: 4
            }
        );
        assert_eq!(
            p("syslog:tcp:127.0.0.1:601"),
            OutputKind::Syslog {
                transport: SyslogTransport::Tcp("127.0.0.1:601".into()),
                facility: syslog::DEFAULT_FACILITY,
                level: syslog::DEFAULT_LEVEL
            }
        );
        assert_eq!(
            p("redis://127.0.0.1:7000/stream/ev?maxlen=1000"),
            OutputKind::Redis {
                addr: "127.0.0.1:7000".into(),
                mode: RedisMode::Stream,
                key: "ev".into(),
                maxlen: 1000
            }
        );
        assert_eq!(
            p("redis://localhost"),
            OutputKind::Redis {
                addr: "localhost:6379".into(),
                mode: RedisMode::List,
                key: "mirrorwatch".into(),
                maxlen: 0
            }
        );
        let s =
            OutputSpec::parse("redis://h/channel/alerts?types=alert,tunnel&queue_kib=64").unwrap();
        assert_eq!(s.types, ["alert", "tunnel"]);
        assert_eq!(s.queue_kib, 64);
    }

    #[test]
    fn rejects_bad_forms_naming_the_problem() {
        let e = |s: &str| OutputSpec::parse(s).unwrap_err().to_string();
        assert!(e("syslog:?facility=nope").contains("unknown syslog facility"));
        assert!(e("x.json?level=info").contains("syslog outputs only"));
        assert!(e("redis://h/queue/k").contains("list, lpush, channel or stream"));
        assert!(e("redis://h/list?maxlen=5").contains("stream outputs only"));
        assert!(e("x?colour=red").contains("unknown option"));
        assert!(e("unix-dgram:").contains("no path"));
        assert!(e("syslog:udp:nohostport").contains("HOST:PORT"));
        assert!(e("x?queue_kib=0").contains("queue_kib"));
    }

    proptest::proptest! {
        /// The SIMD line split and key search agree with the plain ones on any bytes (few
        /// symbols, so newlines, quotes and the key itself are common).
        #[test]
        fn line_split_and_event_type_agree_with_the_plain_forms(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    &b"\n"[..], b"\"", b"a", b"\"event_type\":\"", b"alert", b"\"event_type\":\"flow\"\n",
                ]),
                0..40,
            )
        ) {
            let chunk = parts.concat();
            let fast: Vec<&[u8]> = lines_inclusive(&chunk).collect();
            let plain: Vec<&[u8]> = chunk.split_inclusive(|&b| b == b'\n').collect();
            proptest::prop_assert_eq!(&fast, &plain);
            for line in plain {
                const KEY: &[u8] = b"\"event_type\":\"";
                let expected: &[u8] = match line.windows(KEY.len()).position(|w| w == KEY) {
                    Some(at) => {
                        let rest = &line[at + KEY.len()..];
                        &rest[..rest.iter().position(|&b| b == b'"').unwrap_or(rest.len())]
                    }
                    None => &[],
                };
                proptest::prop_assert_eq!(event_type(line), expected);
            }
        }
    }

    #[test]
    fn event_type_is_found_wherever_the_key_is() {
        assert_eq!(
            event_type(b"{\"timestamp\":\"x\",\"event_type\":\"alert\",\"a\":1}\n"),
            b"alert"
        );
        assert_eq!(
            event_type(b"{\"flow_id\":1,\"event_type\":\"flow\"}"),
            b"flow"
        );
        assert_eq!(
            event_type(b"{\"name\":\"\\\"event_type\\\":\\\"alert\"}"),
            b""
        );
    }

    /// A 63-byte alert line and a flow line, and a chunk of `n` of each, alternating.
    const ALERT_LINE: &[u8] =
        b"{\"event_type\":\"alert\",\"pad\":\"0123456789012345678901234567890\"}\n";
    const FLOW_LINE: &[u8] = b"{\"event_type\":\"flow\"}\n";

    fn alerts_and_flows(n: usize) -> Vec<u8> {
        [ALERT_LINE, FLOW_LINE].concat().repeat(n)
    }

    #[test]
    fn a_full_live_queue_drops_and_counts_and_a_replay_queue_waits() {
        let spec = OutputSpec::parse("x?types=alert").unwrap();
        let q = OutputQueue::new(100);
        let chunk = alerts_and_flows(3);
        q.push(&spec, &chunk, true);
        // 63-byte lines in 100 bytes: one fits, two are dropped; flows are not this output's.
        assert_eq!(q.lock().lines, 1);
        assert_eq!(q.counters.dropped.load(Ordering::Relaxed), 2);
        // Replay: the writer waits until the output thread makes room.
        let q = Arc::new(q);
        let q2 = Arc::clone(&q);
        let taker = std::thread::spawn(move || {
            let mut taken = 0;
            // The line queued above, then the three of the chunk.
            while taken < 4 {
                let mut st = q2.lock();
                taken += std::mem::take(&mut st.lines);
                st.buf.clear();
                drop(st);
                q2.room.notify_all();
                std::thread::sleep(Duration::from_millis(5));
            }
            taken
        });
        q.push(&spec, &chunk, false);
        assert_eq!(taker.join().unwrap(), 4);
        assert_eq!(q.counters.dropped.load(Ordering::Relaxed), 2);
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mw-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn replay_mode() -> OutputMode {
        OutputMode {
            live: false,
            append: false,
            retry_timeout: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(1),
            nice: 0,
        }
    }

    #[test]
    fn only_a_lone_regular_file_is_written_by_the_writer_thread() {
        let dir = scratch("inline");
        let file = dir.join("eve.json");
        let spec = OutputSpec::parse(file.to_str().unwrap()).unwrap();
        let alone = start(&spec, replay_mode(), true).unwrap();
        assert!(alone.is_inline());
        let beside_others = start(&spec, replay_mode(), false).unwrap();
        assert!(!beside_others.is_inline());
        // A FIFO's reader may stall: it keeps its thread even alone (no reader yet: the
        // thread waits for one).
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let spec = OutputSpec::parse(fifo.to_str().unwrap()).unwrap();
        let fifo_output = start(&spec, replay_mode(), true).unwrap();
        assert!(!fifo_output.is_inline());
        for mut o in [alone, beside_others, fifo_output] {
            let inline = o.is_inline();
            o.close();
            // An inline output is done when `close` returns; a thread finishes on its own.
            if inline {
                assert!(o.is_finished());
            }
            o.join().unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An inline output is written as each chunk comes, whatever its queue's bound (nobody
    /// else would make room), takes only its event types, counts what it wrote, and reopens
    /// on request after what was queued before.
    #[test]
    fn an_inline_file_takes_every_chunk_at_once_and_reopens_in_order() {
        let dir = scratch("inline-write");
        let file = dir.join("eve.json");
        let spec =
            OutputSpec::parse(&format!("{}?types=alert&queue_kib=1", file.display())).unwrap();
        let mut o = start(&spec, replay_mode(), true).unwrap();
        assert!(o.is_inline());
        let (alert, flow) = (ALERT_LINE, FLOW_LINE);
        let chunk = alerts_and_flows(1_000);
        // 63 KB of alerts through a 1 KiB queue: queued whole, written by `deliver`.
        o.push(&chunk, false);
        assert!(std::fs::read(&file).unwrap().is_empty());
        o.deliver();
        let written = std::fs::read(&file).unwrap();
        assert_eq!(written.len(), 1_000 * alert.len());
        assert!(written.chunks(alert.len()).all(|l| l == alert));
        assert_eq!(o.queue.counters.written.load(Ordering::Relaxed), 1_000);
        assert_eq!(o.queue.counters.dropped.load(Ordering::Relaxed), 0);
        // A rotation: the reopen creates the file again, later lines go there.
        let rotated = dir.join("eve.json.1");
        std::fs::rename(&file, &rotated).unwrap();
        o.request_reopen();
        o.push(&chunk[..alert.len() + flow.len()], false);
        o.close();
        assert!(o.is_finished());
        o.join().unwrap();
        assert_eq!(std::fs::read(&rotated).unwrap().len(), 1_000 * alert.len());
        assert_eq!(std::fs::read(&file).unwrap(), alert);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
