//! The live command: the IO shell around the pipeline on a capture interface.
//!
//! One loop on the capture thread reads the libpcap ring and feeds the pipeline, which in
//! live mode drops (and counts) a batch rather than wait on a full worker queue. Between
//! packets, and whenever the ring timeout passes without one, the loop looks at the wall
//! clock: a quiet link moves the packet clock forward (`advance_clock`) so flows and tunnel
//! sessions still expire; `stats` events go out every `--stats-interval`; SIGHUP reopens the
//! output files (one that cannot be reopened keeps its old file, with an error, and is
//! retried) and reloads the configuration file if it is valid (keeping the one in use, with an
//! error, if not); SIGINT/SIGTERM end the loop, and everything open is flushed before exit 0.
//! Packet time is the kernel's receive time (wall clock), so "now" converts directly.
//!
//! With `--capture-threads N` (N > 1) the interface is opened N times and the sockets join
//! one kernel fanout group hashed on the outer IP pair (`capture/fanout.rs`). This thread
//! reads the first socket and keeps every duty above; each other socket has a capture thread
//! of its own running [`RemoteCapture::run`] on a remote front of the pipeline (the same
//! per-packet work, batch flushes, quiet-link clock, and reloads sent by this thread).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant, SystemTime};

use anyhow::Context;
use flowtable::Timestamp;

use crate::alert::{EventSink, EventWriter};
use crate::capture::live::{self, KernelStats, KernelTotals, LiveCapture, LiveOptions};
use crate::cli::LiveArgs;
use crate::latency::{SharedHistogram, latency_histogram, summarize};
use crate::metrics::{MetricsListener, MetricsServer};
use crate::pipeline::{Pipeline, PipelineOptions, PipelineReport, RemoteFront, RemoteOutcome};
use crate::privdrop::{RunAs, drop_privileges};
use crate::run::{
    UsageError, check_baseline_dir, check_stdout_open, load_settings, stop_flag, with_baseline,
};
use crate::stats::LiveStats;

/// How often the writer takes what producers hold: the bound on event delay in the writer.
const SWEEP_EVERY: StdDuration = StdDuration::from_millis(20);

/// A link quiet this long has its packet clock moved to the wall clock.
const QUIET_ADVANCE: StdDuration = StdDuration::from_secs(1);

/// Partial batches are handed to the workers at least this often (wall time).
const BATCH_FLUSH_EVERY: StdDuration = StdDuration::from_millis(10);

/// Clocks and flags are looked at once per this many packets under load.
const CHECK_EVERY_PACKETS: u32 = 256;

/// Longest the ring is drained after SIGINT/SIGTERM.
const DRAIN_LIMIT: StdDuration = StdDuration::from_secs(1);

/// One packet in this many has its kernel-to-capture delay measured.
const DELAY_SAMPLE_EVERY: u32 = 64;

/// How a live run ended.
#[derive(Debug)]
pub struct LiveOutcome {
    /// Counters.
    pub report: PipelineReport,
    /// The kernel's counters at the end.
    pub kernel: KernelStats,
}

/// Runs `mirrorwatch live` until SIGINT/SIGTERM.
pub fn live(args: &LiveArgs) -> anyhow::Result<LiveOutcome> {
    let config = load_settings(args.config.as_deref(), args.baseline.as_deref())?;
    // Control-plane records are read before capture starts, then followed (`--audit`).
    let audit = (!args.audit.is_empty())
        .then(|| crate::control::shell::load(&config, &args.audit))
        .transpose()?;
    let audit_base = config.clone();
    let audit_changes = audit.as_ref().map(|l| l.inventory.changes.clone());
    let config = crate::control::shell::with_approved_streams(config, audit.as_ref());
    let name = args.interface.as_str();
    for w in live::preflight(name).map_err(UsageError::Live)? {
        eprintln!("mirrorwatch: warning: {w}");
    }
    let stop = stop_flag()?;
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .context("installing the SIGHUP handler")?;
    let options = LiveOptions {
        interface: name.to_owned(),
        snaplen: args.snaplen,
        buffer_bytes: args.buffer_mb.saturating_mul(1024 * 1024),
        timeout_ms: u32::try_from(args.timeout.as_millis()).unwrap_or(u32::MAX),
        immediate: args.immediate,
        bpf: args.bpf.clone(),
    };
    let threads = args
        .capture_threads
        .unwrap_or_else(|| config.live.capture_thread_count());
    // The fanout program's seed: the spread of outer pairs over threads is not guessable.
    let fanout_seed = args.fanout_seed.unwrap_or_else(|| {
        use std::hash::BuildHasher;
        foldhash::quality::RandomState::default().hash_one(std::process::id()) as u32
    });
    let mut captures =
        LiveCapture::open_group(&options, threads, fanout_seed).map_err(|e| -> anyhow::Error {
            if e.is_usage() {
                UsageError::Live(e).into()
            } else {
                e.into()
            }
        })?;
    if captures.is_empty() {
        anyhow::bail!("{name}: no capture was opened");
    }
    let mut capture = captures.remove(0);
    if let Some(why) = capture.promisc_refused() {
        eprintln!(
            "mirrorwatch: warning: {name}: promiscuous mode refused ({why}); capturing only \
             frames addressed to this host, which on a SPAN or TAP port is usually nothing"
        );
    } else if !live::is_promiscuous(name) {
        eprintln!(
            "mirrorwatch: warning: {name}: promiscuous mode did not take effect (IFF_PROMISC \
             is off)"
        );
    }
    let metrics = match args.metrics {
        Some(addr) => Some(
            MetricsListener::bind(addr).map_err(|source| UsageError::Metrics { addr, source })?,
        ),
        None => None,
    };
    let outputs = config
        .outputs(&args.output)
        .map_err(crate::run::UsageError::OutputSpec)?;
    check_stdout_open(&outputs)?;
    // Every socket is open: give up the user and every capability before the first packet
    // is parsed, the output opened or a thread started (see `privdrop.rs`).
    let user_name = args.user.as_deref().unwrap_or(config.live.user.as_str());
    let user = if user_name.is_empty() {
        None
    } else {
        Some(RunAs::lookup(user_name).map_err(UsageError::Privilege)?)
    };
    // The event writer and its outputs run at `[output] nice`, which they could no longer
    // take themselves once the capabilities are gone: they inherit it from this thread,
    // lowered while it still may and put back once they are started.
    let restore_nice = crate::sched::lower_nice_for_children(config.output.nice);
    let creds = drop_privileges(user.as_ref()).map_err(UsageError::Privilege)?;
    eprintln!("mirrorwatch: capture open; now running as {creds}");
    // As the user the sensor now runs as: the baseline must be saveable by it.
    check_baseline_dir(&config)?;
    crate::alert::set_origin(config.eve.origin(Some(name)));
    let writer = EventWriter::start(
        &outputs,
        crate::run::writer_options(&config, Some(SWEEP_EVERY)),
    );
    if let Some(level) = restore_nice {
        crate::sched::restore_nice(level);
    }
    let writer = writer?;
    let metrics = match metrics {
        Some(listener) => Some(listener.start().context("starting the metrics server")?),
        None => None,
    };
    let granted = writer.priority();
    if granted.nice > config.output.nice {
        eprintln!(
            "mirrorwatch: warning: the event writer runs at nice {} instead of [output] nice = \
             {} (no CAP_SYS_NICE at start): an alert may wait up to a scheduler tick behind \
             capture on a busy core",
            granted.nice, config.output.nice,
        );
    }
    let output_names: Vec<String> = outputs.iter().map(|o| o.describe()).collect();
    let pipeline_options = PipelineOptions {
        workers: args.workers.unwrap_or(0),
        flow_records: args.flows,
        drop_when_full: true,
    };
    let mut pipeline =
        Pipeline::start_sharded(&config, pipeline_options, threads, || writer.sink())
            .context("starting worker threads")?;
    let control = crate::control::shell::start(audit, &config, &mut writer.sink())?;
    let follow = control.as_ref().map(|c| {
        pipeline.set_control(Arc::clone(c));
        let changes = audit_changes.unwrap_or_default();
        crate::control::shell::LiveFollow::start(&args.audit, &audit_base, changes, c)
    });
    let mut remote_kernels = Vec::with_capacity(captures.len());
    for (i, (remote, capture)) in pipeline
        .take_remote_fronts()
        .into_iter()
        .zip(captures)
        .enumerate()
    {
        let kernel = Arc::new(std::sync::Mutex::new(KernelStats::default()));
        remote_kernels.push(Arc::clone(&kernel));
        let thread = RemoteCapture {
            index: i + 1,
            capture,
            remote,
            kernel,
            stop: Arc::clone(&stop),
            timeout: args.timeout,
        };
        let handle = std::thread::Builder::new()
            .name(format!("mw-capture-{}", i + 1))
            .spawn(move || thread.run())
            .context("starting capture threads")?;
        pipeline.attach_remote(i, handle);
    }
    eprintln!(
        "mirrorwatch: capturing on {name} (link {}, snaplen {}, ring {} MiB{}, {}{}); events to {}",
        capture.link(),
        args.snaplen,
        args.buffer_mb,
        if threads > 1 {
            format!(" per socket, {threads} capture threads in a fanout group")
        } else {
            String::new()
        },
        if args.immediate {
            "immediate mode".to_owned()
        } else {
            format!("ring timeout {} ms", options.timeout_ms)
        },
        args.bpf
            .as_deref()
            .map(|f| format!(", filter {f:?}"))
            .unwrap_or_default(),
        output_names.join(", ")
    );
    if let Some(m) = &metrics {
        eprintln!("mirrorwatch: metrics on http://{}/metrics", m.addr());
    }
    let mut session = Session {
        args,
        stats_sink: writer.sink(),
        writer,
        metrics,
        capture_delay: latency_histogram(),
        started: Instant::now(),
        kernel: KernelStats::default(),
        remote_kernels,
        follow,
        control,
    };
    let looped = session.capture_loop(&mut capture, &mut pipeline, &stop, &hup);
    session.kernel = capture.stats().unwrap_or(session.kernel);
    drop(capture);
    session.finish(pipeline, looped)
}

/// What the capture loop owns besides the capture handle.
struct Session<'a> {
    args: &'a LiveArgs,
    writer: EventWriter,
    stats_sink: EventSink,
    metrics: Option<MetricsServer>,
    /// Kernel receive time to the capture thread taking the packet, in microseconds.
    capture_delay: SharedHistogram,
    started: Instant,
    /// The kernel's counters of this thread's socket as last read.
    kernel: KernelStats,
    /// Those of the other capture threads' sockets, as each last published them.
    remote_kernels: Vec<Arc<std::sync::Mutex<KernelStats>>>,
    /// `--audit` files followed like `tail -F`.
    follow: Option<crate::control::shell::LiveFollow>,
    /// `--audit` correlation, for the silent-session report at the end.
    control: Option<Arc<std::sync::Mutex<crate::control::correlate::Correlator>>>,
}

impl Session<'_> {
    /// Reads packets until a signal or an error.
    fn capture_loop(
        &mut self,
        capture: &mut LiveCapture,
        pipeline: &mut Pipeline,
        stop: &AtomicBool,
        hup: &AtomicBool,
    ) -> anyhow::Result<()> {
        let interval = self.args.stats_interval.max(StdDuration::from_millis(100));
        let mut next_stats = self.started + interval;
        let mut next_metrics = self.started;
        let mut last_packet_ts = Timestamp::ZERO;
        let mut last_advance = Instant::now();
        let mut last_flush = Instant::now();
        let mut next_kernel_read = self.started + KernelTotals::READ_EVERY;
        let mut n: u32 = 0;
        loop {
            if stop.load(Ordering::Relaxed) {
                return self.drain(capture, pipeline);
            }
            if let Some(rec) = capture.next_packet()? {
                n = n.wrapping_add(1);
                if n % DELAY_SAMPLE_EVERY == 0 {
                    record_delay(&self.capture_delay, rec.ts);
                }
                if rec.ts > last_packet_ts {
                    last_packet_ts = rec.ts;
                }
                pipeline.push(&rec)?;
                if n % CHECK_EVERY_PACKETS != 0 {
                    continue;
                }
            }
            // The ring is empty for now (or another stretch of packets was read): a burst's
            // mirror alerts held back go out (see `alert::handover`).
            pipeline.flush_alerts()?;
            let now = Instant::now();
            if now.duration_since(last_flush) >= BATCH_FLUSH_EVERY {
                // Partial batches reach the workers within milliseconds, so their alerts do.
                pipeline.flush_batches()?;
                last_flush = now;
            }
            let wall = wall_clock();
            // A quiet link: move the packet clock so idle flows and sessions still expire.
            if now.duration_since(last_advance) >= QUIET_ADVANCE
                && wall.saturating_since(last_packet_ts).as_nanos()
                    >= QUIET_ADVANCE.as_nanos() as u64
            {
                pipeline.advance_clock(wall)?;
                last_advance = now;
            }
            if hup.swap(false, Ordering::Relaxed) {
                self.on_hangup(pipeline)?;
            }
            if let Some(f) = &mut self.follow {
                f.tick(pipeline, &mut self.stats_sink)?;
            }
            if !self.writer.is_running() {
                // The writer stopped on an output error; `finish` reports it.
                anyhow::bail!("the event writer stopped");
            }
            if pipeline.remote_failed() {
                anyhow::bail!("a capture thread stopped on an error (said above)");
            }
            if now >= next_kernel_read {
                // The 32-bit kernel counters are read often enough never to wrap twice.
                next_kernel_read = now + KernelTotals::READ_EVERY;
                self.kernel = capture.stats()?;
            }
            if now >= next_stats {
                next_stats = now + interval;
                self.kernel = capture.stats()?;
                let report = pipeline.snapshot();
                self.write_stats(&report, false)?;
            }
            if now >= next_metrics {
                next_metrics = now + StdDuration::from_secs(1);
                if let Some(m) = &self.metrics {
                    self.kernel = capture.stats()?;
                    let report = pipeline.snapshot();
                    let mut text = crate::metrics::render(
                        &report,
                        &self.kernel_totals(),
                        &self.writer.alert_latency(),
                        &summarize(&self.capture_delay),
                    );
                    text.push_str(&self.writer.metrics_text());
                    m.update(text);
                }
            }
        }
    }

    /// After SIGINT/SIGTERM: takes what the ring still holds (the kernel counted it as
    /// received), so the last `stats` event accounts for every packet. A TPACKET_V3 block
    /// is handed over only when full or when the ring timeout retires it, so the ring is
    /// read until no packet came for the ring timeout plus a margin, for at most
    /// [`DRAIN_LIMIT`].
    fn drain(&mut self, capture: &mut LiveCapture, pipeline: &mut Pipeline) -> anyhow::Result<()> {
        let started = Instant::now();
        let quiet = self.args.timeout + StdDuration::from_millis(30);
        let mut last_packet = started;
        while last_packet.elapsed() < quiet && started.elapsed() < DRAIN_LIMIT {
            if let Some(rec) = capture.next_packet()? {
                last_packet = Instant::now();
                pipeline.push(&rec)?;
            }
        }
        Ok(())
    }

    /// SIGHUP: reopen the output files (logrotate renamed them) and reload the configuration
    /// file. Each file's output thread says once it is done whether it reopened (a file that
    /// could not be keeps its old one, and is retried: see `alert::output`). A valid
    /// configuration file applies to the running pipeline at once, `--baseline` still
    /// applied, except the keys that wait for a restart (named in a warning); an invalid one
    /// is reported, naming the file and key, and the configuration in use stays.
    fn on_hangup(&mut self, pipeline: &mut Pipeline) -> anyhow::Result<()> {
        if self.writer.reopen() == 0 {
            eprintln!("mirrorwatch: SIGHUP: no output file to reopen");
        }
        let Some(path) = self.args.config.as_deref() else {
            return Ok(());
        };
        // The baseline file is read at start only (`baseline_file` is restart-only): a reload
        // neither re-reads it nor fails because of it.
        let loaded = crate::config::Config::load(path)
            .map_err(anyhow::Error::from)
            .map(|c| with_baseline(c, self.args.baseline.as_deref()));
        let config = match loaded {
            Ok(config) => config,
            Err(e) => {
                eprintln!("mirrorwatch: SIGHUP: error: {e:#}; keeping the configuration in use");
                return Ok(());
            }
        };
        // `--audit`: the control plane's approvals are judged again under the new file and
        // stay on top of it (a reload must not forget the streams a change record approved).
        let (config, approvals) = match self.follow.as_mut() {
            Some(follow) => follow.reloaded(config),
            None => (config, 0),
        };
        let (_, restart_only) = pipeline.config().reloaded(&config);
        pipeline.reload(&config)?;
        if approvals > 0 {
            eprintln!(
                "mirrorwatch: SIGHUP: configuration reloaded from {}, with {approvals} \
                 stream(s) the control plane approves",
                path.display()
            );
        } else {
            eprintln!(
                "mirrorwatch: SIGHUP: configuration reloaded from {}",
                path.display()
            );
        }
        if !restart_only.is_empty() {
            eprintln!(
                "mirrorwatch: warning: {} changes {}, which apply only when the sensor \
                 restarts; the running sensor keeps their values",
                path.display(),
                restart_only.join(", ")
            );
        }
        Ok(())
    }

    fn write_stats(&mut self, report: &PipelineReport, last: bool) -> anyhow::Result<()> {
        let live = LiveStats {
            now: wall_clock(),
            interface: &self.args.interface,
            uptime_s: self.started.elapsed().as_secs(),
            last,
            kernel: self.kernel_totals(),
            alert_latency: self.writer.alert_latency(),
            capture_delay: summarize(&self.capture_delay),
        };
        crate::stats::write_live_stats(&mut self.stats_sink, report, &live)?;
        self.stats_sink.flush()?;
        Ok(())
    }

    /// Flushes every flow, tunnel session and alert, writes the last `stats` event, and
    /// reports the first error: the writer's own error (full disk, closed output) wins,
    /// since everything after it is a consequence.
    fn finish(
        mut self,
        pipeline: Pipeline,
        looped: anyhow::Result<()>,
    ) -> anyhow::Result<LiveOutcome> {
        // The last `stats` event is written whatever ended the run (a deleted interface, a
        // worker error): from the final report, or else from the last published one.
        let snapshot = pipeline.snapshot();
        let finished = pipeline.finish();
        if let Ok(report) = &finished {
            let (first, last) = (report.first_ts, report.last_ts);
            let control = self.control.as_ref();
            if let Err(e) =
                crate::control::shell::finish(control, first, last, &mut self.stats_sink)
            {
                eprintln!("mirrorwatch: error: {e:#}");
            }
        }
        let stats = self.write_stats_final(finished.as_ref().unwrap_or(&snapshot));
        let mut result = match (looped, finished) {
            (Ok(()), Ok(report)) => stats.map(|()| report),
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(e.into()),
        };
        let k = self.kernel_totals();
        drop(self.stats_sink);
        let latency = self.writer.alert_latency();
        let outputs = self.writer.output_counters();
        if let Err(e) = self.writer.finish() {
            result = Err(e.into());
        }
        let report = result.with_context(|| format!("capturing on {}", self.args.interface))?;
        eprint!("{}", crate::stats::summary(&report, self.started.elapsed()));
        eprintln!(
            "  capture: {} received by the kernel, {} dropped by the kernel, {} by the \
             interface, {} by full worker queues; packet-to-alert latency p50 {} us, p99 {} us, \
             max {} us ({} alerts)",
            k.received,
            k.dropped,
            k.if_dropped,
            report.capture.queue_drops,
            latency.p50_us,
            latency.p99_us,
            latency.max_us,
            latency.count
        );
        if report.front_packets.len() > 1 {
            let per: Vec<String> = report.front_packets.iter().map(u64::to_string).collect();
            eprintln!(
                "  capture threads: {} in a fanout group on the outer IP pair; frames read per \
                 thread: {}",
                report.front_packets.len(),
                per.join(", ")
            );
        }
        let out = outputs.stats();
        for o in &out.outputs {
            eprintln!(
                "  output {}: {} events written, {} dropped, {} failed attempts",
                o.name, o.written, o.dropped, o.errors
            );
        }
        if out.writer_queue_dropped > 0 {
            eprintln!(
                "  {} events dropped by a full writer queue",
                out.writer_queue_dropped
            );
        }
        Ok(LiveOutcome { report, kernel: k })
    }

    /// The kernel's counters over every socket of the fanout group. Each socket counts
    /// what the kernel handed it or dropped from its ring; the interface's own drops are one
    /// count that every socket reports, so that one is the largest, not the sum.
    fn kernel_totals(&self) -> KernelStats {
        let mut k = self.kernel;
        for remote in &self.remote_kernels {
            let r = remote
                .lock()
                .map(|g| *g)
                .unwrap_or_else(|e| *e.into_inner());
            k.received += r.received;
            k.dropped += r.dropped;
            k.if_dropped = k.if_dropped.max(r.if_dropped);
        }
        k
    }

    fn write_stats_final(&mut self, report: &PipelineReport) -> anyhow::Result<()> {
        // Alerts written by `finish` are in the writer's queue; give it one sweep to measure
        // them before the last `stats` event reads the histogram.
        std::thread::sleep(SWEEP_EVERY);
        self.write_stats(report, true)
    }
}

/// The wall clock as packet time (live packet timestamps are the kernel's wall clock).
fn wall_clock() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
}

fn record_delay(h: &SharedHistogram, ts: Timestamp) {
    let us = wall_clock().saturating_since(ts).as_nanos() / 1_000;
    let mut guard = h.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(h) = guard.as_mut() {
        let _ = h.record(us.clamp(1, crate::latency::LATENCY_MAX_US));
    }
}

/// One more capture thread of a fanout group: its socket and its front of the pipeline.
struct RemoteCapture {
    /// 1 for the second socket, and so on (the first is the live shell's own thread).
    index: usize,
    capture: LiveCapture,
    remote: RemoteFront,
    /// Where this thread publishes its socket's kernel counters.
    kernel: Arc<std::sync::Mutex<KernelStats>>,
    stop: Arc<AtomicBool>,
    /// The ring timeout, for the drain after SIGINT/SIGTERM.
    timeout: StdDuration,
}

impl RemoteCapture {
    /// Reads packets until SIGINT/SIGTERM, the pipeline finishing, or an error, then ends
    /// its front with the others (see `Pipeline::finish`).
    fn run(mut self) -> RemoteOutcome {
        let looped = self.capture_loop();
        if let Err(e) = &looped {
            eprintln!(
                "mirrorwatch: error: capture thread {} on {}: {e:#}",
                self.index,
                self.capture.link()
            );
        }
        self.publish_kernel();
        self.remote.finish(looped.is_err())
    }

    fn capture_loop(&mut self) -> anyhow::Result<()> {
        let mut last_packet_ts = Timestamp::ZERO;
        let mut last_advance = Instant::now();
        let mut last_flush = Instant::now();
        let mut next_kernel_read = Instant::now();
        let mut n: u32 = 0;
        loop {
            if self.stop.load(Ordering::Relaxed) || self.remote.halted() {
                return self.drain();
            }
            if let Some(rec) = self.capture.next_packet()? {
                n = n.wrapping_add(1);
                if rec.ts > last_packet_ts {
                    last_packet_ts = rec.ts;
                }
                self.remote.front().push(&rec)?;
                if n % CHECK_EVERY_PACKETS != 0 {
                    continue;
                }
            }
            self.remote.front().flush_alerts()?;
            let now = Instant::now();
            if now.duration_since(last_flush) >= BATCH_FLUSH_EVERY {
                self.remote.front().flush_batches()?;
                last_flush = now;
            }
            let wall = wall_clock();
            if now.duration_since(last_advance) >= QUIET_ADVANCE
                && wall.saturating_since(last_packet_ts).as_nanos()
                    >= QUIET_ADVANCE.as_nanos() as u64
            {
                self.remote.front().advance_clock(wall)?;
                last_advance = now;
            }
            self.remote.poll()?;
            if now >= next_kernel_read {
                // Read every second: for the stats events, and well within the 32-bit wrap.
                next_kernel_read = now + StdDuration::from_secs(1);
                self.publish_kernel();
            }
        }
    }

    /// As `Session::drain`: what the ring still holds, for at most [`DRAIN_LIMIT`].
    fn drain(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let quiet = self.timeout + StdDuration::from_millis(30);
        let mut last_packet = started;
        while last_packet.elapsed() < quiet && started.elapsed() < DRAIN_LIMIT {
            if let Some(rec) = self.capture.next_packet()? {
                last_packet = Instant::now();
                self.remote.front().push(&rec)?;
            }
        }
        Ok(())
    }

    fn publish_kernel(&mut self) {
        if let Ok(k) = self.capture.stats() {
            let mut slot = self
                .kernel
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *slot = k;
        }
    }
}
