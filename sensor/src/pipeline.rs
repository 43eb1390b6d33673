//! The packet pipeline: one capture thread decodes and dispatches, N workers own flow shards.
//!
//! The capture thread (the caller of [`Pipeline::push`]) decodes each frame, accounts tunnel
//! sessions, builds the canonical [`FlowKey`] and sends a small [`PacketMeta`] in a batch to
//! the worker chosen by a seeded symmetric hash of the innermost flow, so both directions of
//! a conversation (and a mirrored copy of it) reach the same worker. Each worker owns its
//! [`FlowTable`] shard: no shared writes, no locks on the hot path. Batches are recycled
//! through a return channel, so the steady state allocates nothing. Time is packet time:
//! every batch carries the capture thread's clock, and workers expire flows by it.
//!
//! Dispatch hashes the IP *pair* (not the ports), so one worker sees every connection between
//! two hosts, as the connection-beacon detector needs; an ICMP error goes to the worker of
//! the flow it quotes. In live capture (`drop_when_full`) a full worker queue never blocks the
//! capture thread: the batch is dropped and counted instead.
//!
//! [`Pipeline::reload`] applies a new configuration to the running pipeline (SIGHUP in the
//! live shell): the capture thread swaps its decoder settings, copy window and collector
//! inventory at once; each worker gets the settings in its queue and applies them between
//! two batches. Keys that size what was allocated at start keep their start values
//! (`config::RESTART_ONLY_KEYS`).
//!
//! Live capture on several threads ([`Pipeline::start_sharded`]): each capture thread owns a
//! [`CaptureFront`] (decoder, tunnel table of the tunnels its socket receives, its share of
//! link ids), all dispatching to the same workers by the same seeded hash. The kernel's fanout
//! keeps a tunnel's packets in one front but gives a native packet and its copy to different
//! ones, so the copy window runs in the workers instead and its findings go back to the
//! owning front (`WorkerCopies`); the fronts meet at shutdown so that every finding is
//! counted before the sessions are written. With one front nothing of this exists: replay
//! and single-threaded live capture run exactly as before.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use flowtable::key::addr_to_ip;
use flowtable::{
    Direction, Duration, ExpireReason, FlowKey, FlowTable, FlowTableConfig, FlowTableStats,
    IpProto, Timestamp,
};

use crate::alert::handover::AlertHandover;
use crate::alert::{
    AlertEvent, AlertInfo, AlertWriteError, Classification, ConversationRef, EventHeader,
    EventSink, FlowDetail, FlowEvent, HexByte, MirrorEvidence, Mitre, ProtoName, Rfc3339,
    TunnelDetail, TunnelEvent, TunnelRef,
};
use crate::capture::CaptureRecord;
use crate::config::Config;
use crate::decode::dns::DnsHeaderSlice;
use crate::decode::{DecodeCounters, DecodedPacket, Decoder, InnerPacket, TunnelKind, icmp};
pub use crate::detect::FlowExt;
use crate::detect::mirror_stream::{
    self, Approval, CollectorInventory, CopyWindow, DecidePolicy, MirrorClass,
};
use crate::detect::{
    DetectorConfig, DetectorReport, Flow, FlowDetectors, FlowEnd, PacketContext, SharedState,
};
use crate::names::NameCache;
pub use crate::packet::{AppHint, FlowTunnel, PacketMeta};
use crate::packet::{Keepalive, LinkClass, keepalive_of, question_hash};
use crate::tunnel::{
    GroupExchange, InnerObservation, TunnelSessionRecord, TunnelTable, TunnelTableStats,
};

/// Tunnel records kept for the end-of-run inventory report.
pub const INVENTORY_ROWS_CAP: usize = 10_000;

/// Addresses whose DNS name is remembered (a few MiB at most).
const NAME_CACHE_CAPACITY: usize = 65_536;

/// A worker prefetches the flow-table index line of the packet this far ahead in its batch,
/// and the slot of the packet [`PREFETCH_SLOT_AHEAD`] ahead (whose index line is then in).
const PREFETCH_INDEX_AHEAD: usize = 8;
const PREFETCH_SLOT_AHEAD: usize = 4;
/// Hashes of the packets from the first stage to their touch, each computed once (a power of
/// two, at least [`PREFETCH_INDEX_AHEAD`]: a packet's hash is read before its slot takes the
/// hash of the packet that far ahead).
const PREFETCH_RING: usize = 8;
const _: () = assert!(PREFETCH_RING >= PREFETCH_INDEX_AHEAD && PREFETCH_RING.is_power_of_two());

/// Flows a worker expires after a batch: this many, plus one per packet of the batch. Flows
/// that idle out together (a capture gap, thousands of flows gone quiet at once) are ended
/// over several batches instead of holding one batch, and the alerts behind it, for
/// milliseconds (20,000 flows took 3 to 8 ms; ending one costs about twice a packet's work,
/// so a full batch's expiry stays under a millisecond). One per packet keeps expiry as fast
/// as creation (a packet makes at most one flow) and the rest drains what waits; a flow
/// waiting is still ended right by its next packet or by eviction (`expire_at_most`).
const EXPIRE_PER_BATCH: usize = 256;

/// Flows a worker expires on an empty batch: the once-a-second tick of a worker that got no
/// packet since the last one, so nothing waits behind the work. A quiet link still reports
/// its flows within a few seconds of their timeout (20,000 in two ticks), not a minute later
/// at the busy rate. Bounded all the same: with several capture threads, another front may be
/// flooding the worker when one front's tick arrives.
const EXPIRE_WHEN_IDLE: usize = 16_384;

/// Bytes of transport payload that go into a packet fingerprint.
const FINGERPRINT_PAYLOAD_BYTES: usize = 64;

/// A batch of packets for one worker.
struct Batch {
    now: Timestamp,
    /// First packet time of the capture being read (the same for every worker).
    epoch: Timestamp,
    /// The capture file every packet of the batch comes from (replay; `None` live): what the
    /// events the worker writes while processing it name. A batch never spans two files
    /// (see [`Pipeline::start_input`]).
    file: Option<Arc<str>>,
    packets: Vec<PacketMeta>,
}

enum WorkerMsg {
    Batch(Batch),
    /// A reloaded configuration (restart-only keys already at their start values), applied
    /// between two batches.
    Reload(Arc<Config>),
    /// The capture being read ended and an unrelated one follows: end every flow and forget
    /// the capture, as if the next one were replayed alone. Carries the file that ended: the
    /// records written then name it, not the file that follows.
    EndCapture(Option<Arc<str>>),
    /// Sharded live capture at shutdown: answered once every batch queued before it was
    /// processed (and its copy-window findings sent back), see [`Pipeline::finish`].
    Sync(Sender<()>),
    Finish,
}

/// What a worker reports when it finishes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Packets processed.
    pub packets: u64,
    /// Flow table counters.
    pub table: FlowTableStats,
    /// Flow records written.
    pub flow_events: u64,
    /// Bytes one tracked flow costs.
    pub bytes_per_flow: usize,
    /// Flow detector counters.
    pub detectors: DetectorReport,
    /// Sharded live capture: copy-window findings lost to a front's full queue.
    pub copy_notes_dropped: u64,
}

/// Counters of the capture thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureCounters {
    /// Frames read.
    pub packets: u64,
    /// Bytes on the wire of those frames.
    pub bytes: u64,
    /// Frames without an IP packet (ARP, STP, undecodable).
    pub non_ip: u64,
    /// Frames inside at least one tunnel.
    pub encapsulated: u64,
    /// Packets dropped because a worker's queue was full (live capture only).
    pub queue_drops: u64,
    /// Decode errors and events.
    pub decode: DecodeCounters,
}

/// Everything a finished run counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineReport {
    /// Capture thread counters.
    pub capture: CaptureCounters,
    /// Tunnel table counters.
    pub tunnels: TunnelTableStats,
    /// Tunnel records written.
    pub tunnel_events: u64,
    /// `mirror_stream` alerts written.
    pub mirror_alerts: u64,
    /// Tunnel session records for the inventory report (at most [`INVENTORY_ROWS_CAP`]).
    pub tunnel_records: Vec<TunnelSessionRecord>,
    /// Tunnel sessions beyond the inventory cap.
    pub tunnel_records_dropped: u64,
    /// Per-worker reports.
    pub workers: Vec<WorkerReport>,
    /// Packet time of the first and last packet.
    pub first_ts: Option<Timestamp>,
    /// Latest packet time.
    pub last_ts: Timestamp,
    /// Batches waiting in the worker queues (in a snapshot; 0 at the end).
    pub queued_batches: u64,
    /// Name cache counters.
    pub names: crate::names::NameCacheStats,
    /// Independent captures the inputs were judged as ([`Pipeline::start_input`]: 1 for a
    /// single capture or one capture cut in pieces).
    pub captures: u64,
    /// Frames read by each capture front (sharded live capture: one per capture thread, in
    /// thread order; one entry otherwise).
    pub front_packets: Vec<u64>,
}

impl PipelineReport {
    /// Flow table counters summed over workers.
    pub fn flows(&self) -> FlowTableStats {
        let mut sum = FlowTableStats::default();
        for w in &self.workers {
            let t = w.table;
            sum.inserted += t.inserted;
            sum.expired_idle += t.expired_idle;
            sum.expired_active += t.expired_active;
            sum.evicted += t.evicted;
            sum.flushed += t.flushed;
            sum.peak_len += t.peak_len;
        }
        sum
    }

    /// Flow detector counters summed over workers.
    pub fn detectors(&self) -> DetectorReport {
        let mut sum = DetectorReport::default();
        for w in &self.workers {
            sum.add(&w.detectors);
        }
        sum
    }
}

/// Options of a pipeline beyond the configuration file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Worker count (0 = from the configuration).
    pub workers: usize,
    /// Write `flow` records.
    pub flow_records: bool,
    /// Drop (and count) a batch when its worker's queue is full, instead of waiting: live
    /// capture must never stall the capture thread. Offline replay waits and loses nothing.
    pub drop_when_full: bool,
}

/// The running pipeline: the workers, and the capture front of the thread that owns it.
///
/// Replay and single-threaded live capture push every packet through this one front. Sharded
/// live capture ([`Pipeline::start_sharded`]) adds [`RemoteFront`]s, each run by its own
/// capture thread on its own socket of a kernel fanout group that hashes the outer IP pair:
/// every packet of a tunnel meets in one front, which owns that tunnel's session state; the
/// copy window (native packets against their mirrored copies) then runs in the workers, which
/// receive a native packet and its copy together because dispatch is by the inner IP pair,
/// and each finding goes back to the front owning the copy's link.
pub struct Pipeline {
    front: CaptureFront,
    threads: Vec<JoinHandle<Result<WorkerReport, AlertWriteError>>>,
    /// Each worker's counters, published once per second of packet time.
    reports: Vec<Arc<Mutex<WorkerReport>>>,
    /// The other capture fronts (sharded live capture), as handed out and then attached.
    remotes: Vec<RemoteSlot>,
    /// Built but not yet handed to the shell by [`Pipeline::take_remote_fronts`].
    unclaimed: Vec<RemoteFront>,
}

/// The pipeline's view of a front run by another capture thread.
struct RemoteSlot {
    control: Sender<Arc<Config>>,
    published: Arc<Mutex<FrontSnapshot>>,
    thread: Option<JoinHandle<RemoteOutcome>>,
}

/// What a capture front publishes for [`Pipeline::snapshot`] (once per second of packet time).
#[derive(Clone, Debug, Default)]
struct FrontSnapshot {
    counters: CaptureCounters,
    tunnels: TunnelTableStats,
    tunnel_events: u64,
    mirror_alerts: u64,
    first_ts: Option<Timestamp>,
    clock: Timestamp,
}

/// A capture front for another capture thread (sharded live capture): the thread pushes its
/// socket's packets into [`RemoteFront::front`], applies reloads ([`RemoteFront::poll`]),
/// and ends with [`RemoteFront::finish`], which meets the other fronts at shutdown.
pub struct RemoteFront {
    front: CaptureFront,
    control: Receiver<Arc<Config>>,
    published: Arc<Mutex<FrontSnapshot>>,
}

/// How a remote front ended, for [`Pipeline::finish`].
pub struct RemoteOutcome {
    /// The front's own counters and records, or the error that stopped it.
    report: Result<FrontReport, AlertWriteError>,
}

/// What one front counted and recorded, merged into the [`PipelineReport`].
#[derive(Debug, Default)]
struct FrontReport {
    counters: CaptureCounters,
    tunnels: TunnelTableStats,
    tunnel_events: u64,
    mirror_alerts: u64,
    tunnel_records: Vec<TunnelSessionRecord>,
    tunnel_records_dropped: u64,
    first_ts: Option<Timestamp>,
    clock: Timestamp,
    captures: u64,
    front_packets: Vec<u64>,
}

/// What the fronts of one sharded pipeline share: the shutdown meeting and the run's epoch.
struct FrontGroup {
    /// Fronts in the group.
    n: usize,
    /// Every front meets here twice at shutdown (see [`Pipeline::finish`]).
    barrier: std::sync::Barrier,
    /// Set by [`Pipeline::finish`]: remote fronts leave their capture loops.
    halt: AtomicBool,
    /// Set by a remote front whose capture loop stopped on an error.
    failed: AtomicBool,
    /// First packet time of the run, in nanoseconds (0 until a front sees a packet): the
    /// detectors' warm-up starts there whichever front saw it.
    epoch: AtomicU64,
}

/// One capture thread's share of the pipeline: decoding, the tunnel table of the tunnels
/// whose packets it reads, and dispatch to the workers.
pub struct CaptureFront {
    /// This front's index (0 for the pipeline's own) and the group it belongs to (sharded
    /// live capture only).
    index: usize,
    group: Option<Arc<FrontGroup>>,
    /// Copy-window findings for this front's links, sent by the workers (sharded only).
    notes: Option<Receiver<u64>>,
    /// The configuration in use: as started, then as last reloaded.
    config: Config,
    /// A reload each worker has not received yet (its queue was full in live mode).
    reloads: Vec<Option<Arc<Config>>>,
    decoder: Decoder,
    tunnels: TunnelTable,
    /// The copy window, here when this is the only front; in the workers when sharded.
    copies: Option<CopyWindow>,
    hasher: foldhash::quality::SeedableRandomState,
    senders: Vec<Sender<WorkerMsg>>,
    recycled: Receiver<Vec<PacketMeta>>,
    /// A batch buffer kept back when a live send found the queue full (used before the pool).
    spare: Option<Vec<PacketMeta>>,
    pending: Vec<Vec<PacketMeta>>,
    batch_size: usize,
    sink: EventSink,
    names: Arc<NameCache>,
    /// Where this front publishes its counters (remote fronts only).
    published: Option<Arc<Mutex<FrontSnapshot>>>,
    drop_when_full: bool,
    counters: CaptureCounters,
    tunnel_events: u64,
    mirror_alerts: u64,
    /// When the mirror alerts written go to the writer (a burst together).
    handover: AlertHandover,
    tunnel_records: Vec<TunnelSessionRecord>,
    tunnel_records_dropped: u64,
    clock: Timestamp,
    first_ts: Option<Timestamp>,
    last_tick_s: u64,
    /// Control-plane correlation (`--audit`): locked once per tunnel session decision or
    /// record, never per packet.
    control: Option<Arc<Mutex<crate::control::correlate::Correlator>>>,
    /// First packet time of the capture being read (zero before its first packet).
    epoch: Timestamp,
    /// A new input file starts with the next packet (see [`Pipeline::start_input`]): its name.
    input_boundary: Option<Option<Arc<str>>>,
    /// The capture file whose packets are being pushed (replay), handed to the workers with
    /// every batch.
    file: Option<Arc<str>>,
    /// Independent captures so far.
    captures: u64,
}

/// The rule that decides whether the next file of a folder continues the capture or starts
/// an unrelated one, as the summary prints it.
pub const FOLDER_RULE: &str = "a file whose first packet is earlier than the last packet so far, or later by more than [flows] idle_timeout_s, is an independent capture (state flushed, judged as if replayed alone); otherwise it continues the timeline (rotated files)";

/// The flow detectors' sections of `config`.
fn detector_config(config: &Config) -> DetectorConfig<'_> {
    DetectorConfig {
        extraneous: &config.extraneous,
        beacon: &config.beacon,
        home: &config.networks.home,
        flow_idle_timeout: config.flow_idle_timeout(),
    }
}

impl Pipeline {
    /// Starts `workers` threads writing through sinks made by `new_sink`, fed by one capture
    /// front (the caller's thread).
    pub fn start(
        config: &Config,
        options: PipelineOptions,
        new_sink: impl FnMut() -> EventSink,
    ) -> std::io::Result<Pipeline> {
        Pipeline::start_sharded(config, options, 1, new_sink)
    }

    /// Starts the workers and `fronts` capture fronts (sharded live capture): the caller's
    /// thread runs the first through [`Pipeline::push`], and [`Pipeline::take_remote_fronts`]
    /// hands out the others, one per further capture thread. With `fronts <= 1` this is
    /// exactly [`Pipeline::start`]: the copy window stays in the one front.
    pub fn start_sharded(
        config: &Config,
        options: PipelineOptions,
        fronts: usize,
        mut new_sink: impl FnMut() -> EventSink,
    ) -> std::io::Result<Pipeline> {
        let n_fronts = fronts.max(1);
        let sharded = n_fronts > 1;
        let n_workers = if options.workers > 0 {
            options.workers
        } else {
            config.worker_count()
        };
        let batch_size = config.pipeline.batch_size;
        let queue = config.pipeline.queue_batches;
        // Enough recycled batches for every queue slot plus the ones being filled or worked on.
        let (recycle_tx, recycled) =
            crossbeam_channel::bounded(n_workers * (queue + 2) + (n_fronts - 1) * n_workers);
        let table_config = FlowTableConfig {
            capacity: config.flows.capacity.div_ceil(n_workers).max(1),
            idle_timeout: config.flow_idle_timeout(),
            active_timeout: config.flow_active_timeout(),
        };
        // Copy-window findings go back to the front owning the copy's link (sharded only).
        let (note_txs, mut note_rxs): (Vec<_>, Vec<_>) = (0..if sharded { n_fronts } else { 0 })
            .map(|_| crossbeam_channel::bounded::<u64>(NOTE_QUEUE))
            .map(|(tx, rx)| (tx, Some(rx)))
            .unzip();
        let mut senders = Vec::with_capacity(n_workers);
        let mut threads = Vec::with_capacity(n_workers);
        let mut reports = Vec::with_capacity(n_workers);
        let shared = SharedState {
            names: Arc::new(NameCache::new(NAME_CACHE_CAPACITY)),
            destinations: Arc::new(crate::detect::beacon::KnownDestinations::load(
                &config.beacon,
            )?),
        };
        for i in 0..n_workers {
            // crossbeam's receive, which spins and yields before it parks, not the writer's
            // doorbell (`doorbell`): a worker that parked when its queue ran dry cost the
            // 64-byte flood 5 to 30 % of its rate (the next batch waited for its wake-up).
            let (tx, rx) = crossbeam_channel::bounded(queue);
            let published = Arc::new(Mutex::new(WorkerReport::default()));
            reports.push(Arc::clone(&published));
            let worker = Worker {
                published,
                last_publish_s: 0,
                table: FlowTable::new(table_config, seed_from_os()),
                detectors: FlowDetectors::new(detector_config(config), &shared, n_workers),
                sink: new_sink(),
                flow_records: options.flow_records,
                recycle: recycle_tx.clone(),
                report: WorkerReport::default(),
                clock: Timestamp::ZERO,
                copies: sharded.then(|| WorkerCopies {
                    window: CopyWindow::new(Duration::from_millis(
                        config.mirror.duplicate_window_ms,
                    )),
                    notes: note_txs.clone(),
                    dropped: 0,
                }),
            };
            let thread = std::thread::Builder::new()
                .name(format!("mw-worker-{i}"))
                .spawn(move || worker.run(&rx))?;
            senders.push(tx);
            threads.push(thread);
        }
        let group = sharded.then(|| {
            Arc::new(FrontGroup {
                n: n_fronts,
                barrier: std::sync::Barrier::new(n_fronts),
                halt: AtomicBool::new(false),
                failed: AtomicBool::new(false),
                epoch: AtomicU64::new(0),
            })
        });
        // One hasher for every front: a packet's worker and its fingerprint do not depend on
        // the front that read it.
        let hasher = foldhash::quality::SeedableRandomState::random();
        // Sharded: a source's links to several collectors may be read by several fronts;
        // their source groups meet here (see `tunnel/exchange.rs`).
        let exchange = sharded.then(|| GroupExchange::new(n_fronts));
        let mut make_front = |index: usize| {
            let mut tunnels = TunnelTable::new(
                config.tunnels.capacity.div_ceil(n_fronts).max(1),
                Duration::from_secs(config.tunnels.idle_timeout_s),
                config.tunnels.max_inner_flows,
                // As many inner-flow entries as the flow table holds flows, over all sessions.
                config.flows.capacity.div_ceil(n_fronts).max(1),
                CollectorInventory::from_config(config),
                decide_policy(config, sharded),
            );
            tunnels.set_link_ids(index as u64 + 1, n_fronts as u64);
            if let Some(exchange) = &exchange {
                tunnels.join_exchange(Arc::clone(exchange), index);
            }
            CaptureFront {
                index,
                group: group.clone(),
                notes: note_rxs.get_mut(index).and_then(Option::take),
                config: config.clone(),
                reloads: vec![None; n_workers],
                decoder: Decoder::new(config.decode.clone()),
                tunnels,
                copies: (!sharded).then(|| {
                    CopyWindow::new(Duration::from_millis(config.mirror.duplicate_window_ms))
                }),
                hasher: hasher.clone(),
                pending: (0..n_workers)
                    .map(|_| Vec::with_capacity(batch_size))
                    .collect(),
                senders: senders.clone(),
                recycled: recycled.clone(),
                spare: None,
                batch_size,
                sink: new_sink(),
                names: Arc::clone(&shared.names),
                published: None,
                drop_when_full: options.drop_when_full,
                counters: CaptureCounters::default(),
                tunnel_events: 0,
                mirror_alerts: 0,
                handover: AlertHandover::default(),
                tunnel_records: Vec::new(),
                tunnel_records_dropped: 0,
                clock: Timestamp::ZERO,
                first_ts: None,
                last_tick_s: 0,
                control: None,
                epoch: Timestamp::ZERO,
                input_boundary: None,
                file: None,
                captures: 0,
            }
        };
        let front = make_front(0);
        let unclaimed = (1..n_fronts)
            .map(|i| {
                let mut front = make_front(i);
                let published = Arc::new(Mutex::new(FrontSnapshot::default()));
                front.published = Some(Arc::clone(&published));
                let (_, control) = crossbeam_channel::bounded(1);
                RemoteFront {
                    front,
                    control,
                    published,
                }
            })
            .collect();
        Ok(Pipeline {
            front,
            threads,
            reports,
            remotes: Vec::new(),
            unclaimed,
        })
    }

    /// The capture fronts for the other capture threads (sharded live capture), each to be
    /// run by its thread and its handle given back with [`Pipeline::attach_remote`]. Empty
    /// after the first call, and for a pipeline of one front.
    pub fn take_remote_fronts(&mut self) -> Vec<RemoteFront> {
        let mut out = Vec::with_capacity(self.unclaimed.len());
        for mut remote in self.unclaimed.drain(..) {
            let (tx, rx) = crossbeam_channel::unbounded();
            remote.control = rx;
            self.remotes.push(RemoteSlot {
                control: tx,
                published: Arc::clone(&remote.published),
                thread: None,
            });
            out.push(remote);
        }
        out
    }

    /// Gives the pipeline the thread running remote front `i` (in the order
    /// [`Pipeline::take_remote_fronts`] handed them out): [`Pipeline::finish`] joins it.
    pub fn attach_remote(&mut self, i: usize, thread: JoinHandle<RemoteOutcome>) {
        if let Some(slot) = self.remotes.get_mut(i) {
            slot.thread = Some(thread);
        }
    }

    /// Whether a remote front's capture loop stopped on an error: the shell then stops too.
    pub fn remote_failed(&self) -> bool {
        self.front
            .group
            .as_ref()
            .is_some_and(|g| g.failed.load(Ordering::Relaxed))
    }

    /// The number of capture fronts (1 unless sharded).
    pub fn fronts(&self) -> usize {
        self.front.group.as_ref().map_or(1, |g| g.n)
    }

    /// Joins every tunnel record and `mirror_stream` alert from now on with the configured
    /// sessions of `control` (`--audit`), in every front (remote fronts: call this before
    /// [`Pipeline::take_remote_fronts`]).
    pub fn set_control(&mut self, control: Arc<Mutex<crate::control::correlate::Correlator>>) {
        for r in &mut self.unclaimed {
            r.front.control = Some(Arc::clone(&control));
        }
        self.front.control = Some(control);
    }

    /// See [`CaptureFront::start_input`] (replay: one front).
    pub fn start_input(&mut self, file: Option<Arc<str>>) {
        self.front.start_input(file);
    }

    /// See [`CaptureFront::input_file`].
    pub fn input_file(&self) -> Option<&Arc<str>> {
        self.front.input_file()
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.front.config
    }

    /// Applies `config` to the running pipeline (see [`CaptureFront::reload`]): this front at
    /// once, each remote front between two of its packets.
    pub fn reload(&mut self, config: &Config) -> Result<(), AlertWriteError> {
        let (applied, _) = self.front.config.reloaded(config);
        let applied = Arc::new(applied);
        for r in &self.remotes {
            // A remote front that has ended no longer needs it.
            let _ = r.control.send(Arc::clone(&applied));
        }
        self.front.reload(&applied)
    }

    /// Processes one captured frame in this thread's front (see [`CaptureFront::push`]).
    #[inline]
    pub fn push(&mut self, rec: &CaptureRecord<'_>) -> Result<(), AlertWriteError> {
        self.front.push(rec)
    }

    /// See [`CaptureFront::advance_clock`].
    pub fn advance_clock(&mut self, now: Timestamp) -> Result<(), AlertWriteError> {
        self.front.advance_clock(now)
    }

    /// See [`CaptureFront::flush_batches`].
    pub fn flush_batches(&mut self) -> Result<(), AlertWriteError> {
        self.front.flush_batches()
    }

    /// See [`CaptureFront::flush_alerts`].
    pub fn flush_alerts(&mut self) -> Result<(), AlertWriteError> {
        self.front.flush_alerts()
    }

    /// This thread's front's counters so far.
    pub fn counters(&self) -> &CaptureCounters {
        &self.front.counters
    }

    /// Everything counted so far, for a periodic `stats` event: this front's counters now,
    /// the remote fronts' and the workers' as they last published them (once per second of
    /// packet time). Tunnel records are not included.
    pub fn snapshot(&self) -> PipelineReport {
        let workers = self
            .reports
            .iter()
            .map(|r| r.lock().map(|g| g.clone()).unwrap_or_default())
            .collect();
        let f = &self.front;
        let mut report = PipelineReport {
            capture: f.counters.clone(),
            tunnels: f.tunnels.stats(),
            tunnel_events: f.tunnel_events,
            mirror_alerts: f.mirror_alerts,
            tunnel_records: Vec::new(),
            tunnel_records_dropped: 0,
            names: f.names.stats(),
            workers,
            first_ts: f.first_ts,
            last_ts: f.clock,
            queued_batches: f.senders.iter().map(|tx| tx.len() as u64).sum(),
            captures: f.captures,
            front_packets: vec![f.counters.packets],
        };
        for r in &self.remotes {
            if let Ok(snap) = r.published.lock() {
                report.add_front(&FrontReport {
                    counters: snap.counters.clone(),
                    tunnels: snap.tunnels,
                    tunnel_events: snap.tunnel_events,
                    mirror_alerts: snap.mirror_alerts,
                    first_ts: snap.first_ts,
                    clock: snap.clock,
                    ..FrontReport::default()
                });
            }
        }
        report
    }

    /// Flushes everything, stops the workers and reports. Every flow and tunnel session
    /// still open is written.
    ///
    /// Sharded, the fronts meet twice: once every front has handed the workers its last
    /// batch (first meeting), this thread asks every worker to answer once it has processed
    /// what is queued, so every copy-window finding is back in its front's queue (second
    /// meeting); then each front writes its tunnel sessions, decided with all their
    /// evidence, and the workers end their flows.
    pub fn finish(mut self) -> Result<PipelineReport, AlertWriteError> {
        let mut first_error = None;
        let mut late = Vec::new();
        if let Some(group) = self.front.group.clone() {
            group.halt.store(true, Ordering::Relaxed);
            if let Err(e) = self.front.flush_all() {
                first_error.get_or_insert(e);
            }
            // Remote fronts that were never started cannot meet: run their part here.
            let never_started: Vec<RemoteFront> = self.unclaimed.drain(..).collect();
            for remote in never_started {
                late.push(std::thread::spawn(move || remote.finish(false)));
            }
            group.barrier.wait();
            let (ack_tx, ack_rx) = crossbeam_channel::bounded(self.front.senders.len());
            let mut asked = 0;
            for tx in &self.front.senders {
                if tx.send(WorkerMsg::Sync(ack_tx.clone())).is_ok() {
                    asked += 1;
                }
            }
            drop(ack_tx);
            for _ in 0..asked {
                if ack_rx.recv().is_err() {
                    // A worker ended (an error it reports when joined).
                    break;
                }
            }
            group.barrier.wait();
        }
        // From here on nothing is dropped, also in live mode: the last batches wait for room,
        // so every packet already read reaches its flow before the records are written.
        self.front.drop_when_full = false;
        // An error (a worker or the writer gone) does not stop the rest: every other worker
        // still gets its batch and `Finish`, and the tunnel records and alerts are written.
        let sharded = self.front.group.is_some();
        if !sharded {
            for w in 0..self.front.senders.len() {
                if let Err(e) = self
                    .front
                    .deliver_reload(w, true)
                    .and_then(|()| self.front.send(w))
                {
                    first_error.get_or_insert(e);
                }
            }
            for tx in &self.front.senders {
                let _ = tx.send(WorkerMsg::Finish);
            }
        }
        let own = self.front.finish_front();
        let mut merged = FrontReport::default();
        match own {
            Ok(r) => merged.add(r),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        for r in &mut self.remotes {
            let Some(thread) = r.thread.take() else {
                continue;
            };
            match thread.join() {
                Ok(outcome) => match outcome.report {
                    Ok(report) => merged.add(report),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                },
                Err(_) => {
                    first_error.get_or_insert(AlertWriteError::WriterGone);
                }
            }
        }
        for h in late {
            match h.join().map(|o| o.report) {
                Ok(Ok(report)) => merged.add(report),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(AlertWriteError::WriterGone);
                }
            }
        }
        if sharded {
            for tx in &self.front.senders {
                let _ = tx.send(WorkerMsg::Finish);
            }
        }
        let mut workers = Vec::with_capacity(self.threads.len());
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Ok(report)) => workers.push(report),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(AlertWriteError::WriterGone);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(PipelineReport {
            capture: merged.counters,
            tunnels: merged.tunnels,
            tunnel_events: merged.tunnel_events,
            mirror_alerts: merged.mirror_alerts,
            tunnel_records: merged.tunnel_records,
            tunnel_records_dropped: merged.tunnel_records_dropped,
            names: self.front.names.stats(),
            workers,
            first_ts: merged.first_ts,
            last_ts: merged.clock,
            queued_batches: 0,
            captures: merged.captures,
            front_packets: merged.front_packets,
        })
    }
}

impl PipelineReport {
    /// Adds a front's published counters to a snapshot.
    fn add_front(&mut self, f: &FrontReport) {
        add_counters(&mut self.capture, &f.counters);
        add_tunnel_stats(&mut self.tunnels, &f.tunnels);
        self.tunnel_events += f.tunnel_events;
        self.mirror_alerts += f.mirror_alerts;
        self.first_ts = earliest(self.first_ts, f.first_ts);
        self.last_ts = self.last_ts.max(f.clock);
        self.front_packets.push(f.counters.packets);
    }
}

impl FrontReport {
    /// Merges another front's report into this one.
    fn add(&mut self, other: FrontReport) {
        add_counters(&mut self.counters, &other.counters);
        add_tunnel_stats(&mut self.tunnels, &other.tunnels);
        self.tunnel_events += other.tunnel_events;
        self.mirror_alerts += other.mirror_alerts;
        let room = INVENTORY_ROWS_CAP.saturating_sub(self.tunnel_records.len());
        let extra = other.tunnel_records.len().saturating_sub(room) as u64;
        self.tunnel_records
            .extend(other.tunnel_records.into_iter().take(room));
        self.tunnel_records_dropped += other.tunnel_records_dropped + extra;
        self.first_ts = earliest(self.first_ts, other.first_ts);
        self.clock = self.clock.max(other.clock);
        self.captures = self.captures.max(other.captures);
        self.front_packets.extend(other.front_packets);
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn add_counters(sum: &mut CaptureCounters, c: &CaptureCounters) {
    sum.packets += c.packets;
    sum.bytes += c.bytes;
    sum.non_ip += c.non_ip;
    sum.encapsulated += c.encapsulated;
    sum.queue_drops += c.queue_drops;
    sum.decode.merge(&c.decode);
}

fn add_tunnel_stats(sum: &mut TunnelTableStats, t: &TunnelTableStats) {
    for (s, x) in sum.sessions_by_kind.iter_mut().zip(t.sessions_by_kind) {
        *s += x;
    }
    for (s, x) in sum.sessions_by_class.iter_mut().zip(t.sessions_by_class) {
        *s += x;
    }
    sum.table_full += t.table_full;
    sum.expired += t.expired;
    sum.evicted += t.evicted;
    sum.flood_sources += t.flood_sources;
}

impl RemoteFront {
    /// The front this thread pushes its packets into.
    pub fn front(&mut self) -> &mut CaptureFront {
        &mut self.front
    }

    /// Whether the pipeline is finishing: the capture loop should end (after draining its
    /// ring) and call [`RemoteFront::finish`].
    pub fn halted(&self) -> bool {
        self.front
            .group
            .as_ref()
            .is_some_and(|g| g.halt.load(Ordering::Relaxed))
    }

    /// Applies a reload the pipeline sent, if one waits (between two packets).
    pub fn poll(&mut self) -> Result<(), AlertWriteError> {
        let mut last = None;
        while let Ok(config) = self.control.try_recv() {
            last = Some(config);
        }
        match last {
            Some(config) => self.front.reload(&config),
            None => Ok(()),
        }
    }

    /// Ends this front: hands the workers its last batches, meets the other fronts (see
    /// [`Pipeline::finish`]), writes its tunnel sessions and reports. `failed`: its capture
    /// loop stopped on an error (the shell said which), and the pipeline's thread is told
    /// ([`Pipeline::remote_failed`]) so that it stops too.
    pub fn finish(mut self, failed: bool) -> RemoteOutcome {
        let group = self.front.group.clone();
        if failed {
            if let Some(g) = &group {
                g.failed.store(true, Ordering::Relaxed);
            }
        }
        let flushed = self.front.flush_all();
        if let Some(g) = &group {
            g.barrier.wait();
            g.barrier.wait();
        }
        let report = flushed.and_then(|()| self.front.finish_front());
        RemoteOutcome { report }
    }
}

impl CaptureFront {
    /// The next packet starts a new input file. It continues the capture read so far when
    /// it starts where that one ended (rotated files of one sensor); it starts an
    /// independent capture when its time goes backwards or jumps ahead by more than the
    /// flow idle timeout ([`FOLDER_RULE`]): every flow and tunnel session then ends, and the
    /// detectors forget the capture, exactly as if each file were replayed alone. Live
    /// capture never calls this.
    ///
    /// `file` is the input's name, written as `pcap_filename` by the events that come from its
    /// packets. At the boundary every worker gets its pending batch, labelled with the file
    /// that ends, before any packet of the next one: a batch never spans two files, and each
    /// worker sees the clock of the end of a file while that file is current. An event thus
    /// names the file being read when the packet clock reached its moment, whatever the
    /// worker count and however the batches were cut (issue 18 item 1); the records of an
    /// independent capture ended at the boundary name the capture they belong to.
    pub fn start_input(&mut self, file: Option<Arc<str>>) {
        self.input_boundary = Some(file);
    }

    /// The capture file whose packets are being pushed (the last input started that had a
    /// packet).
    pub fn input_file(&self) -> Option<&Arc<str>> {
        self.file.as_ref()
    }

    /// Ends the capture read so far (see [`Pipeline::start_input`]).
    fn end_capture(&mut self) -> Result<(), AlertWriteError> {
        for w in 0..self.senders.len() {
            self.send(w)?;
            if let Some(tx) = self.senders.get(w) {
                tx.send(WorkerMsg::EndCapture(self.file.clone()))
                    .map_err(|_| AlertWriteError::WriterGone)?;
            }
        }
        self.write_pending_alerts()?;
        self.end_tunnels(true)?;
        if let Some(copies) = &mut self.copies {
            *copies = CopyWindow::new(Duration::from_millis(
                self.config.mirror.duplicate_window_ms,
            ));
        }
        self.clock = Timestamp::ZERO;
        self.last_tick_s = 0;
        self.epoch = Timestamp::ZERO;
        Ok(())
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Applies `config` to the running pipeline, except the keys that size what was
    /// allocated at start (`config::RESTART_ONLY_KEYS`, which keep their values: see
    /// [`Config::reloaded`]). The capture thread applies `[decode]`, `[mirror]` (the copy
    /// window, the decision policy and the collector inventory, which judges every open
    /// tunnel session again: see [`TunnelTable::set_inventory`]), `[networks]` and the
    /// `[tunnels]` idle timeout and inner-flow cap at once; the workers apply the flow
    /// timeouts and the flow detectors' settings between two batches, in queue order. A
    /// worker whose queue is full (live mode) gets the settings with its next batch that
    /// fits: the capture thread never waits. Alerts of mirror sessions the new inventory no
    /// longer approves are written here.
    pub fn reload(&mut self, config: &Config) -> Result<(), AlertWriteError> {
        let (applied, _) = self.config.reloaded(config);
        self.decoder = Decoder::new(applied.decode.clone());
        if let Some(copies) = &mut self.copies {
            copies.set_window(Duration::from_millis(applied.mirror.duplicate_window_ms));
        }
        self.tunnels.set_limits(
            Duration::from_secs(applied.tunnels.idle_timeout_s),
            applied.tunnels.max_inner_flows,
        );
        self.tunnels.set_inventory(
            CollectorInventory::from_config(&applied),
            decide_policy(&applied, self.group.is_some()),
        );
        let shared = Arc::new(applied.clone());
        for slot in &mut self.reloads {
            *slot = Some(Arc::clone(&shared));
        }
        self.config = applied;
        for w in 0..self.senders.len() {
            self.deliver_reload(w, false)?;
        }
        self.write_pending_alerts()
    }

    /// Hands worker `w` its pending reload, if any. In live mode (`drop_when_full`, unless
    /// `wait`) a full queue keeps it pending for the next send; otherwise this waits.
    fn deliver_reload(&mut self, w: usize, wait: bool) -> Result<(), AlertWriteError> {
        let (Some(slot), Some(tx)) = (self.reloads.get_mut(w), self.senders.get(w)) else {
            return Ok(());
        };
        let Some(config) = slot.take() else {
            return Ok(());
        };
        if self.drop_when_full && !wait {
            return match tx.try_send(WorkerMsg::Reload(config)) {
                Ok(()) => Ok(()),
                Err(crossbeam_channel::TrySendError::Full(WorkerMsg::Reload(config))) => {
                    *slot = Some(config);
                    Ok(())
                }
                Err(_) => Err(AlertWriteError::WriterGone),
            };
        }
        tx.send(WorkerMsg::Reload(config))
            .map_err(|_| AlertWriteError::WriterGone)
    }

    /// Processes one captured frame.
    pub fn push(&mut self, rec: &CaptureRecord<'_>) -> Result<(), AlertWriteError> {
        if self.handover.holds() {
            self.flush_alerts_if_due()?;
        }
        let c = &mut self.counters;
        let frame_bytes = rec.orig_len.max(rec.data.len() as u32);
        c.packets += 1;
        c.bytes += u64::from(frame_bytes);
        if let Some(file) = self.input_boundary.take() {
            let backwards = rec.ts < self.clock;
            let gap = rec.ts.saturating_since(self.clock) > self.config.flow_idle_timeout();
            if self.epoch != Timestamp::ZERO && (backwards || gap) {
                self.end_capture()?;
            } else if self.epoch != Timestamp::ZERO {
                // Rotated files of one capture: the file that ends still hands every worker
                // its packets and clock under its own name (see `start_input`).
                for w in 0..self.senders.len() {
                    self.send(w)?;
                }
            }
            self.sink.set_pcap_filename(file.clone());
            self.file = file;
        }
        if self.epoch == Timestamp::ZERO {
            self.epoch = rec.ts;
            self.captures += 1;
            if let Some(g) = &self.group {
                // Sharded: the run's first packet, whichever front read it, starts the
                // detectors' warm-up (once per front and run, not per packet).
                let first = rec.ts.as_nanos();
                self.epoch =
                    match g
                        .epoch
                        .compare_exchange(0, first, Ordering::AcqRel, Ordering::Acquire)
                    {
                        Ok(_) => rec.ts,
                        Err(earlier) => Timestamp(earlier),
                    };
            }
        }
        let c = &mut self.counters;
        if rec.ts > self.clock {
            self.clock = rec.ts;
        }
        if self.first_ts.is_none() {
            self.first_ts = Some(rec.ts);
        }
        let mut decoded = DecodedPacket::empty(rec.data.len(), rec.orig_len);
        self.decoder
            .decode_into(rec.link, rec.data, &mut c.decode, &mut decoded);
        if !decoded.tunnels.is_empty() {
            c.encapsulated += 1;
        }
        // By reference: a copy of the packet view, read as wide words just after the decoder
        // wrote its fields one by one, stalled on store forwarding.
        let inner = decoded.inner.as_ref();
        // Canonical inner key without tunnel context: the dispatch hash and the distinct
        // inner-flow identity, equal for a native flow and its mirrored copies.
        let bare = inner.map(|p| FlowKey::new(p.src, p.src_port, p.dst, p.dst_port, p.proto, 0));
        // The distinct-inner-flow identity, needed only inside a tunnel.
        let inner_hash = bare
            .filter(|_| decoded.inner_depth > 0)
            .map(|(k, _)| self.hasher.hash_one(k));
        // A fingerprint of the innermost packet, equal for a native packet and its mirrored
        // copy: it finds inner frames that duplicate traffic also seen on the capture.
        let (bare_pair_hash, fingerprint) = match (inner, bare) {
            (Some(p), Some((k, dir))) => {
                let (pair, fp) = fingerprint(&self.hasher, &k, dir, p);
                (Some(pair), Some(fp))
            }
            _ => (None, None),
        };
        let encapsulated = decoded.inner_depth > 0;
        // With one front the copy window is here; sharded, the workers match (see `Worker`).
        let mut duplicate = false;
        if let (Some(fp), Some(copies)) = (fingerprint, self.copies.as_mut()) {
            if !encapsulated {
                if let Some(link) = copies.native(fp, rec.ts) {
                    self.tunnels.note_duplicate(link);
                }
            } else {
                // The copy is recorded under its link below; here only whether it matches.
                duplicate = copies.tunneled(fp, rec.ts, 0);
            }
        }
        let observation = match (bare, inner_hash) {
            (Some((key, dir)), Some(hash)) => Some(InnerObservation {
                key,
                dir,
                hash,
                duplicate,
            }),
            _ => None,
        };
        let mut parent = 0u64;
        let mut flow_tunnel = None;
        // The innermost link's class as its own packet left it; `None` once a deeper layer
        // was observed after it (which could have changed it): then it is asked below.
        let mut flow_class = None;
        for (depth, layer) in decoded.tunnels.iter().enumerate() {
            let inside = depth < decoded.inner_depth;
            let innermost = depth + 1 == decoded.inner_depth;
            let depth = u8::try_from(depth).unwrap_or(u8::MAX);
            let link = self.tunnels.observe_link(
                parent,
                layer,
                depth,
                rec.ts,
                frame_bytes,
                observation.as_ref().filter(|_| inside),
                innermost,
            );
            flow_class = None;
            if inside {
                flow_tunnel = Some(FlowTunnel {
                    kind: layer.kind,
                    id: layer.id,
                    depth,
                    link: link.id,
                });
                flow_class = Some(link.class);
            }
            parent = link.id;
        }
        if let (Some(fp), Some(t), false, Some(copies)) =
            (fingerprint, flow_tunnel, duplicate, self.copies.as_mut())
        {
            copies.set_tunneled_link(fp, t.link);
        }
        // Any tunnel layer may have been classified, also one whose inner frame did not decode.
        if !decoded.tunnels.is_empty() {
            self.write_pending_alerts()?;
        }
        let (Some(p), Some((bare_key, dir))) = (inner, bare) else {
            self.counters.non_ip += 1;
            return self.tick();
        };
        let context = flow_tunnel.map_or(0, |t| t.link);
        let mut key = FlowKey {
            tunnel: context,
            ..bare_key
        };
        let app = app_hint(p, context);
        if let AppHint::IcmpError { quoted } = &app {
            // An ICMP error goes to the worker of the flow it quotes (below), which alone can
            // say in packet order whether that flow was seen. Its own record is therefore one
            // per quoted host pair, so that each record lives whole in one worker whatever the
            // worker count (one record of all of a router's errors would be split).
            (key.lo_port, key.hi_port) = quoted_pair_ports(quoted);
        }
        if let AppHint::Dns { response, .. } = app {
            // Answers are learned only when they match a query seen the other way (issue 19).
            let ends = crate::names::DnsEnds {
                src: p.src,
                src_port: p.src_port,
                dst: p.dst,
                dst_port: p.dst_port,
                context,
            };
            if response {
                self.names.observe_response(&ends, p.l4_payload, rec.ts);
            } else {
                self.names.observe_query(&ends, p.l4_payload, rec.ts);
            }
        }
        // The IP pair without tunnel context: every connection between two hosts, and their
        // mirrored copies, meet in one worker; an ICMP error meets the flow it quotes.
        let hash = match (&app, bare_pair_hash) {
            (AppHint::IcmpError { quoted }, _) => pair_hash(&self.hasher, quoted),
            (_, Some(h)) => h,
            (_, None) => pair_hash(&self.hasher, &bare_key),
        };
        // The class of the innermost link now: flows inside a mirror are copies.
        let link_class = flow_tunnel.map(|t| {
            match flow_class.unwrap_or_else(|| self.tunnels.link_class(t.link)) {
                Some(MirrorClass::Mirror) => LinkClass::Mirror,
                Some(MirrorClass::Overlay) => LinkClass::Overlay,
                _ => LinkClass::Unknown,
            }
        });
        let keepalive = match app {
            AppHint::Dns {
                response: false, ..
            } => Keepalive::DnsQuery,
            _ => keepalive_of(
                p.proto,
                (p.src_port, p.dst_port),
                p.tcp.as_ref(),
                p.l4_payload,
            ),
        };
        let meta = PacketMeta {
            ts: rec.ts,
            key,
            dir,
            ip_len: p.ip_len,
            tcp_flags: p.tcp.map_or(0, |t| t.flags),
            tunnel: flow_tunnel,
            link_class,
            tcp: p.tcp,
            payload_len: p.tcp.map_or(p.l4_payload.len() as u32, |t| t.payload_len),
            ip_id: p.ip_id,
            ttl: p.ttl,
            fingerprint: fingerprint.unwrap_or(0),
            app,
            keepalive,
            icmp: p.icmp.map_or([0, 0], |(t, c)| [t, c]),
        };
        let worker = pick_worker(hash, self.senders.len());
        if let Some(batch) = self.pending.get_mut(worker) {
            batch.push(meta);
            if batch.len() >= self.batch_size {
                self.send(worker)?;
            }
        }
        self.tick()
    }

    /// Moves the clock to `now` without a packet (a live link gone quiet): idle flows and
    /// tunnel sessions still expire, and their records are written.
    pub fn advance_clock(&mut self, now: Timestamp) -> Result<(), AlertWriteError> {
        if now > self.clock {
            self.clock = now;
        }
        self.tick()
    }

    /// Once per second of packet time: flush partial batches so idle workers see the clock,
    /// and expire tunnel sessions. Called per packet: inlined up to the test, the work of a
    /// new second out of line.
    #[inline]
    fn tick(&mut self) -> Result<(), AlertWriteError> {
        self.tunnels.publish_groups(self.clock, false);
        let now_s = self.clock.as_nanos() / 1_000_000_000;
        if now_s == self.last_tick_s {
            return Ok(());
        }
        self.new_second(now_s)
    }

    #[inline(never)]
    fn new_second(&mut self, now_s: u64) -> Result<(), AlertWriteError> {
        self.last_tick_s = now_s;
        self.flush_alerts()?;
        for w in 0..self.senders.len() {
            self.send(w)?;
        }
        self.take_notes();
        self.end_tunnels(false)?;
        self.publish();
        // Links due by packet time were decided in `end_tunnels` (issue 18): their alerts now.
        self.write_pending_alerts()
    }

    /// Writes the alerts of sessions classified since the last call, and hands them to the
    /// writer at once: an alert must not wait for a buffer to fill (alerts are rare; the
    /// flush costs one buffer).
    fn write_pending_alerts(&mut self) -> Result<(), AlertWriteError> {
        let mut result = Ok(());
        let before = self.mirror_alerts;
        let (sink, alerts) = (&mut self.sink, &mut self.mirror_alerts);
        let control = self.control.as_deref();
        self.tunnels.take_alerts(&mut |r| {
            if result.is_ok() {
                result = write_mirror_alert(sink, &r, control);
                *alerts += 1;
            }
        });
        self.tunnels.take_floods(&mut |r| {
            if result.is_ok() {
                result = mirror_stream::write_flood_alert(sink, &r);
                *alerts += 1;
            }
        });
        if result.is_ok() && self.mirror_alerts != before && self.handover.written(Instant::now()) {
            result = self.sink.flush();
        }
        result
    }

    /// Hands the mirror alerts held back in a burst to the writer now (see
    /// [`crate::alert::handover`]): the capture source has nothing more to read for the
    /// moment, or the clock moved.
    pub fn flush_alerts(&mut self) -> Result<(), AlertWriteError> {
        if !self.handover.holds() {
            return Ok(());
        }
        self.hand_over_alerts(Instant::now())
    }

    /// Per packet while alerts are held: hands them over once due.
    #[inline(never)]
    fn flush_alerts_if_due(&mut self) -> Result<(), AlertWriteError> {
        let now = Instant::now();
        if !self.handover.due(now) {
            return Ok(());
        }
        self.hand_over_alerts(now)
    }

    /// Hands everything the sink holds, the alerts held back included, to the writer.
    fn hand_over_alerts(&mut self, now: Instant) -> Result<(), AlertWriteError> {
        self.handover.handed_over(now);
        self.sink.flush()
    }

    /// Ends idle tunnel sessions (or all of them at the end): alerts first, then records.
    fn end_tunnels(&mut self, all: bool) -> Result<(), AlertWriteError> {
        let mut ended = Vec::new();
        let mut alerts = Vec::new();
        let mut on_alert = |r: TunnelSessionRecord| alerts.push(r);
        let mut on_record = |r: TunnelSessionRecord| ended.push(r);
        if all {
            self.tunnels
                .drain(self.clock, &mut on_alert, &mut on_record);
        } else {
            self.tunnels
                .expire(self.clock, &mut on_alert, &mut on_record);
        }
        for r in &alerts {
            write_mirror_alert(&mut self.sink, r, self.control.as_deref())?;
            self.mirror_alerts += 1;
        }
        if !alerts.is_empty() {
            self.sink.flush()?;
        }
        let reason = if all { "shutdown" } else { "timeout" };
        for r in ended {
            write_tunnel(&mut self.sink, &r, reason, self.control.as_deref())?;
            self.tunnel_events += 1;
            if self.tunnel_records.len() < INVENTORY_ROWS_CAP {
                self.tunnel_records.push(r);
            } else {
                self.tunnel_records_dropped += 1;
            }
        }
        Ok(())
    }

    /// Sharded: counts the copies the workers matched for this front's links (each a copy
    /// and its native packet, found in either order), as the one-front path counts them in
    /// [`CaptureFront::push`]. Called per batch sent and per tick: a link is decided with
    /// the findings of every batch handed over before.
    fn take_notes(&mut self) {
        let Some(notes) = &self.notes else {
            return;
        };
        while let Ok(link) = notes.try_recv() {
            self.tunnels.note_duplicate(link);
        }
    }

    /// Remote fronts: copies the counters where [`Pipeline::snapshot`] reads them (once per
    /// second of packet time: an uncontended lock, off the per-packet path).
    fn publish(&self) {
        let Some(slot) = &self.published else {
            return;
        };
        if let Ok(mut snap) = slot.lock() {
            snap.counters.clone_from(&self.counters);
            snap.tunnels = self.tunnels.stats();
            snap.tunnel_events = self.tunnel_events;
            snap.mirror_alerts = self.mirror_alerts;
            snap.first_ts = self.first_ts;
            snap.clock = self.clock;
        }
    }

    /// Hands every worker its pending batch, waiting for room (shutdown: nothing read is
    /// dropped), with the reloads not yet delivered first.
    fn flush_all(&mut self) -> Result<(), AlertWriteError> {
        self.drop_when_full = false;
        // Before the fronts meet: every front then drains with the others' last evidence.
        self.tunnels.publish_groups(self.clock, true);
        let mut first_error = Ok(());
        for w in 0..self.senders.len() {
            if let Err(e) = self.deliver_reload(w, true).and_then(|()| self.send(w)) {
                if first_error.is_ok() {
                    first_error = Err(e);
                }
            }
        }
        first_error
    }

    /// Ends this front: its pending alerts and every tunnel session (decided now with all
    /// their evidence), and its counters and records.
    fn finish_front(&mut self) -> Result<FrontReport, AlertWriteError> {
        self.take_notes();
        let mut first_error = None;
        for result in [
            self.write_pending_alerts(),
            self.end_tunnels(true),
            self.sink.flush(),
        ] {
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(FrontReport {
            front_packets: vec![self.counters.packets],
            counters: std::mem::take(&mut self.counters),
            tunnels: self.tunnels.stats(),
            tunnel_events: self.tunnel_events,
            mirror_alerts: self.mirror_alerts,
            tunnel_records: std::mem::take(&mut self.tunnel_records),
            tunnel_records_dropped: self.tunnel_records_dropped,
            first_ts: self.first_ts,
            clock: self.clock,
            captures: self.captures,
        })
    }

    /// Hands worker `w` its pending batch (also when empty: it carries the clock).
    fn send(&mut self, w: usize) -> Result<(), AlertWriteError> {
        self.take_notes();
        // A reload waiting for room goes first, so the batch is judged by the new settings.
        if self.reloads.get(w).is_some_and(Option::is_some) {
            self.deliver_reload(w, false)?;
        }
        if self.drop_when_full && self.senders.get(w).is_some_and(|tx| tx.is_full()) {
            if let Some(slot) = self.pending.get_mut(w) {
                self.counters.queue_drops += slot.len() as u64;
                slot.clear();
            }
            return Ok(());
        }
        let fresh = match self
            .spare
            .take()
            .map(Ok)
            .unwrap_or_else(|| self.recycled.try_recv())
        {
            Ok(mut v) => {
                v.clear();
                v
            }
            Err(_) => Vec::with_capacity(self.batch_size),
        };
        let (Some(slot), Some(tx)) = (self.pending.get_mut(w), self.senders.get(w)) else {
            return Ok(());
        };
        let batch = Batch {
            now: self.clock,
            epoch: self.epoch,
            file: self.file.clone(),
            packets: std::mem::replace(slot, fresh),
        };
        if !self.drop_when_full {
            return tx
                .send(WorkerMsg::Batch(batch))
                .map_err(|_| AlertWriteError::WriterGone);
        }
        // Sharded capture: another front may have filled the queue since the check above, so
        // the send must not wait either.
        match tx.try_send(WorkerMsg::Batch(batch)) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Full(msg)) => {
                if let WorkerMsg::Batch(mut b) = msg {
                    self.counters.queue_drops += b.packets.len() as u64;
                    b.packets.clear();
                    // The dropped batch's buffer becomes the slot again; the one taken for
                    // the slot waits for the next send (no allocation, nothing freed).
                    self.spare = Some(std::mem::replace(slot, b.packets));
                }
                Ok(())
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                Err(AlertWriteError::WriterGone)
            }
        }
    }

    /// Hands every worker its partial batch now, without waiting for it to fill or for the
    /// next second of packet time: a live sensor calls this every few milliseconds of wall
    /// time, so a flow detector's alert is not held back by a quiet worker's batch.
    pub fn flush_batches(&mut self) -> Result<(), AlertWriteError> {
        self.flush_alerts()?;
        for w in 0..self.senders.len() {
            if self.pending.get(w).is_some_and(|b| !b.is_empty()) {
                self.send(w)?;
            }
        }
        Ok(())
    }

    /// Capture-thread counters so far.
    pub fn counters(&self) -> &CaptureCounters {
        &self.counters
    }

    /// This front's index: 0 for the pipeline's own, 1 and up for remote fronts.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// What the flow detectors need from the application layer of one packet.
fn app_hint(p: &InnerPacket<'_>, context: u64) -> AppHint {
    if p.proto == IpProto::UDP && (p.src_port == 53 || p.dst_port == 53) {
        if let Some(h) = DnsHeaderSlice::from_slice(p.l4_payload) {
            let response = h.is_response();
            return AppHint::Dns {
                id: h.id(),
                response,
                question: if response {
                    0
                } else {
                    question_hash(p.l4_payload)
                },
            };
        }
    }
    if let Some((icmp_type, _)) = p.icmp {
        let v6 = p.proto == IpProto::ICMPV6;
        if icmp::is_error(v6, icmp_type) {
            // etherparse's payload starts after the 8-byte ICMP header: at the quote.
            if let Some(q) = icmp::quoted_flow(p.l4_payload) {
                let (quoted, _) =
                    FlowKey::new(q.src, q.src_port, q.dst, q.dst_port, q.proto, context);
                return AppHint::IcmpError { quoted };
            }
        }
    }
    AppHint::None
}

/// Sharded live capture: the least packet time a link waits before its packet count alone
/// decides it ([`DecidePolicy::min_age`]). Findings of the copy window come back from the
/// workers within a batch flush (10 ms of wall time) plus the queue; 200 ms covers that under
/// load, and only delays links that reach `decide_after_packets` sooner.
const SHARDED_DECIDE_GRACE: Duration = Duration::from_millis(200);

/// The decision policy of a front: `[mirror]`, with [`SHARDED_DECIDE_GRACE`] when sharded.
fn decide_policy(config: &Config, sharded: bool) -> DecidePolicy {
    let mut policy = DecidePolicy::from_config(config);
    if sharded {
        policy.min_age = SHARDED_DECIDE_GRACE;
    }
    policy
}

/// The "ports" of an ICMP error's flow key: 32 bits of the quoted host pair, from a fixed
/// seed so flow ids stay equal across runs. ICMP errors carry no ports of their own (echo
/// messages use theirs for the identifier).
fn quoted_pair_ports(quoted: &FlowKey) -> (u16, u16) {
    const SEED: u64 = 0x6963_6d70_7175_6f74;
    let h = foldhash::fast::FixedState::with_seed(SEED).hash_one((
        u128::from_ne_bytes(quoted.lo_addr),
        u128::from_ne_bytes(quoted.hi_addr),
    ));
    let folded = (h ^ (h >> 32)) as u32;
    ((folded >> 16) as u16, folded as u16)
}

/// Maps a 64-bit hash to a worker without a division (Lemire's multiply-shift).
#[inline]
fn pick_worker(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

/// A per-process random seed for flow-table hashers (the keys come from the network).
fn seed_from_os() -> u64 {
    foldhash::quality::RandomState::default().hash_one(0u64)
}

fn write_tunnel(
    sink: &mut EventSink,
    r: &TunnelSessionRecord,
    reason: &'static str,
    control: Option<&Mutex<crate::control::correlate::Correlator>>,
) -> Result<(), AlertWriteError> {
    let control = crate::control::correlate::lookup(control, r, sink)?;
    let proto = tunnel_proto(r);
    sink.write(&TunnelEvent {
        header: EventHeader {
            flow_id: Some(tunnel_flow_id(r)),
            src_ip: Some(addr_to_ip(r.src)),
            src_port: Some(r.src_port),
            dest_ip: Some(addr_to_ip(r.dst)),
            dest_port: Some(r.dst_port),
            proto: Some(ProtoName(proto)),
            ..EventHeader::new(r.first_seen, "tunnel")
        },
        tunnel: TunnelDetail {
            reference: TunnelRef {
                kind: r.kind.name(),
                id: r.id,
                depth: r.depth,
                link: r.link,
                outer: Some(outer_endpoints(r)),
            },
            nonstandard_port: r.nonstandard_port,
            truncated_packets: r.truncated_packets,
        },
        packets: r.packets,
        bytes: r.bytes,
        first_seen: Rfc3339(r.first_seen),
        last_seen: Rfc3339(r.last_seen),
        inner_flows: r.inner_flows,
        inner_flows_capped: r.inner_flows_capped,
        reason,
        classification: classification(r),
        approved: r.approval == Approval::Approved,
        top_conversations: conversations(r),
        control,
    })
}

/// The `flow_id` of a tunnel session: its record and its `mirror_stream` alert carry the
/// same one (the outer 5-tuple, type, id and link, and the session's first packet).
fn tunnel_flow_id(r: &TunnelSessionRecord) -> u64 {
    let (key, _) = FlowKey::new(
        r.src,
        r.src_port,
        r.dst,
        r.dst_port,
        IpProto(r.kind as u8),
        r.link,
    );
    crate::alert::flow_id(&key, r.first_seen)
}

/// The outer endpoints of a tunnel session, for the `tunnel` object.
fn outer_endpoints(r: &TunnelSessionRecord) -> crate::alert::OuterEndpoints {
    let udp = tunnel_proto(r) == IpProto::UDP;
    crate::alert::OuterEndpoints {
        src_ip: addr_to_ip(r.src),
        dest_ip: addr_to_ip(r.dst),
        src_port: udp.then_some(r.src_port),
        dest_port: udp.then_some(r.dst_port),
        proto: match tunnel_proto(r) {
            IpProto::UDP => "udp",
            // IP in IP: the outer protocol is the inner packet's version.
            IpProto(4) => "ipv4",
            IpProto(41) => "ipv6",
            _ => "gre",
        },
    }
}

fn tunnel_proto(r: &TunnelSessionRecord) -> IpProto {
    match r.kind {
        TunnelKind::Vxlan | TunnelKind::Geneve => IpProto::UDP,
        // IP in IP: the id is the outer IP protocol, 4 or 41.
        TunnelKind::Ipip => IpProto(u8::try_from(r.id).unwrap_or(4)),
        _ if r.dst_port != 0 => IpProto::UDP,
        _ => IpProto::GRE,
    }
}

fn classification(r: &TunnelSessionRecord) -> Classification {
    let erspan3 = r.kind == TunnelKind::Erspan3;
    Classification {
        class: r.class.name(),
        reason: r.reason.name(),
        one_way: r.one_way,
        duplicates_matched: r.duplicates,
        erspan_ingress: erspan3.then_some(r.erspan_ingress),
        erspan_egress: erspan3.then_some(r.erspan_egress),
    }
}

fn conversations(r: &TunnelSessionRecord) -> Vec<ConversationRef> {
    r.top_conversations
        .iter()
        .map(|(k, packets)| ConversationRef {
            src_ip: k.lo_ip(),
            src_port: k.lo_port,
            dest_ip: k.hi_ip(),
            dest_port: k.hi_port,
            proto: ProtoName(k.proto),
            packets: *packets,
        })
        .collect()
}

/// Writes the `mirror_stream` alert of a session classified `mirror` with an unapproved
/// collector.
fn write_mirror_alert(
    sink: &mut EventSink,
    r: &TunnelSessionRecord,
    control: Option<&Mutex<crate::control::correlate::Correlator>>,
) -> Result<(), AlertWriteError> {
    debug_assert_eq!(r.class, MirrorClass::Mirror);
    let control = crate::control::correlate::lookup(control, r, sink)?;
    let collector = addr_to_ip(r.dst);
    let collector_home = r.collector_home;
    let (signature_id, signature) = mirror_stream::signature(r.approval);
    let finding = signature.trim_start_matches("mirror.");
    sink.write(&AlertEvent {
        header: EventHeader {
            flow_id: Some(tunnel_flow_id(r)),
            src_ip: Some(addr_to_ip(r.src)),
            src_port: Some(r.src_port),
            dest_ip: Some(collector),
            dest_port: Some(r.dst_port),
            proto: Some(ProtoName(tunnel_proto(r))),
            ..EventHeader::new(r.last_seen, "alert")
        },
        detector: "mirror_stream",
        alert: AlertInfo {
            signature_id,
            signature,
            category: "Traffic duplication",
            severity: crate::control::correlate::severity(
                mirror_stream::severity(collector_home),
                control.as_ref(),
            ),
        },
        mitre: Mitre::T1020_001,
        tunnel: Some(TunnelRef {
            kind: r.kind.name(),
            id: r.id,
            depth: r.depth,
            link: r.link,
            outer: Some(outer_endpoints(r)),
        }),
        evidence: MirrorEvidence {
            classification: classification(r),
            finding,
            collector_home,
            nonstandard_port: r.nonstandard_port,
            packets: r.packets,
            bytes: r.bytes,
            first_seen: Rfc3339(r.first_seen),
            inner_flows: r.inner_flows,
            inner_hosts: crate::tunnel::inner_hosts(r).to_vec(),
            top_conversations: conversations(r),
            truncated_packets: r.truncated_packets,
            sibling_collectors: r.sibling_collectors.clone(),
            control,
        },
    })
}

/// Hash of what a mirrored copy shares with its original: the inner flow and direction, IP
/// identification and length, TCP sequence, acknowledgement and flags, and the start of the
/// payload (up to [`FINGERPRINT_PAYLOAD_BYTES`]).
///
/// Fed as whole words rather than through the derived `Hash` of a tuple (a length prefix and
/// a byte-slice pass per address and for the payload): every packet pays for it.
///
/// Returns the hash of the key's address pair too ([`pair_hash`]), the dispatch hash: it is
/// the fingerprint's state after the two addresses, so it costs one fold, not a second hash.
#[inline]
fn fingerprint(
    hasher: &foldhash::quality::SeedableRandomState,
    key: &FlowKey,
    dir: Direction,
    p: &InnerPacket<'_>,
) -> (u64, u64) {
    use std::hash::Hasher;
    let payload = p
        .l4_payload
        .get(..FINGERPRINT_PAYLOAD_BYTES)
        .unwrap_or(p.l4_payload);
    // Flags matter: an ACK and the FIN after it can share everything else (IPv6 has no IP id).
    let (seq, ack, flags) = p.tcp.map_or((0, 0, 0), |t| (t.seq, t.ack, t.flags));
    let mut h = hasher.build_hasher();
    h.write_u128(u128::from_ne_bytes(key.lo_addr));
    h.write_u128(u128::from_ne_bytes(key.hi_addr));
    let pair = h.clone().finish();
    debug_assert_eq!(pair, pair_hash(hasher, key));
    h.write_u64(
        u64::from(key.lo_port)
            | u64::from(key.hi_port) << 16
            | u64::from(key.proto.0) << 32
            | (dir.index() as u64) << 40
            | u64::from(flags) << 48,
    );
    h.write_u64(u64::from(p.ip_id) | u64::from(p.ip_len) << 32);
    h.write_u64(u64::from(seq) | u64::from(ack) << 32);
    // The payload start in 16-byte words, then the rest through the hasher's short-slice
    // path (overlapping loads, length included). Not a zero-padded copy of the rest: the
    // wide read of a buffer just written by a variable-length copy stalls on store
    // forwarding (8 % of `push`).
    let mut words = payload.chunks_exact(16);
    for w in words.by_ref() {
        let mut b = [0u8; 16];
        b.copy_from_slice(w);
        h.write_u128(u128::from_ne_bytes(b));
    }
    h.write(words.remainder());
    h.write_u64(payload.len() as u64);
    (pair, h.finish())
}

/// The dispatch hash of a key: its address pair (no ports, no tunnel context), with the seed
/// every front shares.
fn pair_hash(hasher: &foldhash::quality::SeedableRandomState, key: &FlowKey) -> u64 {
    hasher.hash_one((
        u128::from_ne_bytes(key.lo_addr),
        u128::from_ne_bytes(key.hi_addr),
    ))
}

/// One worker: a flow table shard, the flow detectors and a sink.
struct Worker {
    /// Where this worker publishes its counters for [`Pipeline::snapshot`].
    published: Arc<Mutex<WorkerReport>>,
    last_publish_s: u64,
    table: FlowTable<FlowExt>,
    detectors: FlowDetectors,
    sink: EventSink,
    flow_records: bool,
    recycle: Sender<Vec<PacketMeta>>,
    report: WorkerReport,
    /// The latest batch clock: the largest seen, since batches of several capture fronts
    /// (sharded live capture) arrive in no particular order.
    clock: Timestamp,
    /// Sharded live capture: the copy window, moved here from the capture fronts.
    copies: Option<WorkerCopies>,
}

/// The copy window of a worker in sharded live capture, and where its findings go.
///
/// The kernel's fanout hashes the outer header, so a native packet and its mirrored copy
/// are usually read by different capture fronts; both reach this worker, since dispatch
/// is by the inner IP pair. A match (either order, within the window of packet time) is
/// sent to the front owning the copy's link (link ids are dealt round-robin over the
/// fronts: `(link - 1) % fronts`), which counts it as the one-front path does.
struct WorkerCopies {
    window: CopyWindow,
    /// One queue per front.
    notes: Vec<Sender<u64>>,
    /// Findings lost to a full queue (a front that stopped reading).
    dropped: u64,
}

/// Copy-window findings a front's queue holds before the workers drop them.
/// Findings are at most one per packet in flight between a front and a worker (every queue
/// full, `queue_batches` x `batch_size`, 65,536 by default) before the front reads them.
const NOTE_QUEUE: usize = 1 << 17;

impl WorkerCopies {
    /// Matches `p` against the window and tells the owner of a matched copy's link.
    #[inline]
    fn observe(&mut self, p: &PacketMeta) {
        let link = match p.tunnel {
            None => self.window.native(p.fingerprint, p.ts),
            Some(t) => {
                if self.window.tunneled(p.fingerprint, p.ts, t.link) {
                    Some(t.link)
                } else {
                    None
                }
            }
        };
        let Some(link) = link else {
            return;
        };
        let n = self.notes.len().max(1) as u64;
        let owner = (link.saturating_sub(1) % n) as usize;
        if let Some(tx) = self.notes.get(owner) {
            if tx.try_send(link).is_err() {
                self.dropped += 1;
            }
        }
    }
}

/// Where an ending flow goes: the detectors first, then its `flow` record.
struct FlowOutput<'a> {
    detectors: &'a mut FlowDetectors,
    sink: &'a mut EventSink,
    flow_records: bool,
    written: u64,
    result: Result<(), AlertWriteError>,
}

impl FlowOutput<'_> {
    fn end(&mut self, flow: &Flow, end: FlowEnd) {
        if self.result.is_err() {
            return;
        }
        self.result = self.detectors.on_flow_end(flow, end, self.sink);
        if self.flow_records && self.result.is_ok() {
            self.result = write_flow(self.sink, flow, end);
            self.written += 1;
        }
    }
}

fn flow_end(reason: ExpireReason) -> FlowEnd {
    match reason {
        ExpireReason::Idle => FlowEnd::Timeout,
        ExpireReason::Active => FlowEnd::Active,
        ExpireReason::Evicted => FlowEnd::Evicted,
        ExpireReason::Flushed => FlowEnd::Shutdown,
    }
}

impl Worker {
    fn run(mut self, rx: &Receiver<WorkerMsg>) -> Result<WorkerReport, AlertWriteError> {
        let mut failure = None;
        while let Ok(msg) = rx.recv() {
            match msg {
                WorkerMsg::Batch(batch) => {
                    // One reference-count step per batch, no allocation.
                    self.sink.set_pcap_filename(batch.file.clone());
                    if let Err(e) = self.process(&batch) {
                        failure = Some(e);
                        break;
                    }
                    // The capture thread may have dropped the return channel at shutdown.
                    let _ = self.recycle.try_send(batch.packets);
                }
                WorkerMsg::Reload(config) => {
                    self.table
                        .set_timeouts(config.flow_idle_timeout(), config.flow_active_timeout());
                    self.detectors.reload(detector_config(&config));
                    if let Some(c) = &mut self.copies {
                        c.window
                            .set_window(Duration::from_millis(config.mirror.duplicate_window_ms));
                    }
                }
                WorkerMsg::Sync(ack) => {
                    // Every batch queued before this one is processed and its findings sent.
                    let _ = ack.send(());
                }
                WorkerMsg::EndCapture(file) => {
                    self.sink.set_pcap_filename(file);
                    if let Err(e) = self.end_capture() {
                        failure = Some(e);
                        break;
                    }
                }
                WorkerMsg::Finish => break,
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        self.end_every_flow()?;
        self.detectors.finish(self.clock, &mut self.sink)?;
        self.sink.flush()?;
        self.report.table = self.table.stats();
        self.report.bytes_per_flow = FlowTable::<FlowExt>::approx_bytes_per_flow();
        self.report.detectors = self.detectors.report();
        self.report.copy_notes_dropped = self.copies.as_ref().map_or(0, |c| c.dropped);
        Ok(self.report)
    }

    /// Ends every flow of the table: those idled out by the clock as timed out (the
    /// per-batch budget may have left them waiting, see [`EXPIRE_PER_BATCH`]), the rest at
    /// `shutdown`.
    fn end_every_flow(&mut self) -> Result<(), AlertWriteError> {
        let mut out = FlowOutput {
            detectors: &mut self.detectors,
            sink: &mut self.sink,
            flow_records: self.flow_records,
            written: 0,
            result: Ok(()),
        };
        self.table.expire(self.clock, &mut |flow, reason| {
            out.end(flow, flow_end(reason))
        });
        self.table
            .drain(&mut |flow, reason| out.end(flow, flow_end(reason)));
        out.result?;
        self.report.flow_events += out.written;
        Ok(())
    }

    /// The capture ended and an unrelated one follows: every flow ends
    /// ([`Worker::end_every_flow`]), the detectors write what is pending and forget the
    /// capture.
    fn end_capture(&mut self) -> Result<(), AlertWriteError> {
        self.end_every_flow()?;
        self.detectors.end_capture(self.clock, &mut self.sink)?;
        self.sink.flush()?;
        self.clock = Timestamp::ZERO;
        Ok(())
    }

    fn process(&mut self, batch: &Batch) -> Result<(), AlertWriteError> {
        self.detectors.observe_epoch(batch.epoch);
        let alerts_before = self.detectors.alerts_written();
        let table = &mut self.table;
        let mut out = FlowOutput {
            detectors: &mut self.detectors,
            sink: &mut self.sink,
            flow_records: self.flow_records,
            written: 0,
            result: Ok(()),
        };
        // Sharded live capture: batches of several fronts interleave, so the clock only
        // moves forward (a lagging front's batch does not take it back).
        let now = batch.now.max(self.clock);
        // Every packet of a flood is a different flow, whose index line and slot are cache
        // misses: the batch's flows are prefetched a few packets ahead, in two stages (see
        // `FlowTable::prefetch`), so the misses overlap the work on the packets before.
        let packets = &batch.packets;
        let mut ahead = [0u64; PREFETCH_RING];
        for (q, h) in packets
            .iter()
            .zip(ahead.iter_mut())
            .take(PREFETCH_INDEX_AHEAD)
        {
            *h = table.hash_key(&q.key);
            table.prefetch_by_hash(*h);
        }
        for (i, p) in packets.iter().enumerate() {
            // This packet's hash, from its prefetch, before the ring slot takes a later one's.
            let hash = ahead
                .get(i % PREFETCH_RING)
                .copied()
                .unwrap_or_else(|| table.hash_key(&p.key));
            if let Some(q) = packets.get(i + PREFETCH_INDEX_AHEAD) {
                let h = table.hash_key(&q.key);
                table.prefetch_by_hash(h);
                if let Some(slot) = ahead.get_mut((i + PREFETCH_INDEX_AHEAD) % PREFETCH_RING) {
                    *slot = h;
                }
            }
            if i + PREFETCH_SLOT_AHEAD < packets.len() {
                if let Some(&h) = ahead.get((i + PREFETCH_SLOT_AHEAD) % PREFETCH_RING) {
                    table.prefetch_slot_by_hash(h);
                }
            }
            if let Some(c) = &mut self.copies {
                c.observe(p);
            }
            let ctx = PacketContext {
                quoted_flow_seen: match &p.app {
                    AppHint::IcmpError { quoted } => Some(table.get(quoted).is_some()),
                    _ => None,
                },
            };
            let (flow, new) = table.touch_hashed(hash, &p.key, p.dir, p.ts, &mut |f, r| {
                out.end(f, flow_end(r));
            });
            let restart = !new && out.detectors.restarts_flow(flow, p);
            let (flow, new) = if restart {
                // A new connection on the key of a closed one: end the old record first.
                if let Some(old) = table.remove(&p.key) {
                    out.end(&old, FlowEnd::Reused);
                }
                table.touch(&p.key, p.dir, p.ts, &mut |f, r| out.end(f, flow_end(r)))
            } else {
                (flow, new)
            };
            if new {
                flow.ext.tunnel = crate::detect::TunnelTag::new(p.tunnel, p.icmp);
            }
            flow.counters.record(p.dir, p.ts, p.ip_len, p.tcp_flags);
            if out.result.is_ok() {
                out.result = out.detectors.on_packet(flow, new, p, ctx, out.sink);
            }
        }
        let budget = if packets.is_empty() {
            EXPIRE_WHEN_IDLE
        } else {
            EXPIRE_PER_BATCH + packets.len()
        };
        table.expire_at_most(now, budget, &mut |f, r| out.end(f, flow_end(r)));
        if out.result.is_ok() {
            out.result = out.detectors.on_tick(now, out.sink);
        }
        let (written, mut result) = (out.written, out.result);
        // Alerts go to the writer at the end of the batch that raised them, not when the
        // buffer fills (a batch is at most a second of packet time).
        if result.is_ok() && self.detectors.alerts_written() != alerts_before {
            result = self.sink.flush();
        }
        self.clock = now;
        self.report.packets += batch.packets.len() as u64;
        self.report.flow_events += written;
        let now_s = now.as_nanos() / 1_000_000_000;
        if now_s != self.last_publish_s {
            self.last_publish_s = now_s;
            self.publish();
        }
        result
    }

    /// Copies the counters where [`Pipeline::snapshot`] reads them (once per second of
    /// packet time: an uncontended lock, off the per-packet path).
    fn publish(&mut self) {
        self.report.table = self.table.stats();
        self.report.bytes_per_flow = FlowTable::<FlowExt>::approx_bytes_per_flow();
        self.report.detectors = self.detectors.report();
        if let Ok(mut slot) = self.published.lock() {
            slot.clone_from(&self.report);
        }
    }
}

fn write_flow(sink: &mut EventSink, entry: &Flow, end: FlowEnd) -> Result<(), AlertWriteError> {
    let key = &entry.key;
    let first = entry.first_dir;
    let (src, sport, dst, dport): (IpAddr, u16, IpAddr, u16) = key.endpoints(first);
    let c = &entry.counters;
    let (ts, tc) = (first.index(), first.reverse().index());
    let is_tcp = key.proto == IpProto::TCP;
    sink.write(&FlowEvent {
        header: EventHeader {
            flow_id: Some(crate::alert::flow_id(key, c.first_seen)),
            src_ip: Some(src),
            src_port: Some(sport),
            dest_ip: Some(dst),
            dest_port: Some(dport),
            proto: Some(ProtoName(key.proto)),
            icmp: entry.ext.icmp(key),
            ..EventHeader::new(c.first_seen, "flow")
        },
        flow: FlowDetail {
            pkts_toserver: c.packets[ts],
            pkts_toclient: c.packets[tc],
            bytes_toserver: c.bytes[ts],
            bytes_toclient: c.bytes[tc],
            start: Rfc3339(c.first_seen),
            end: Rfc3339(c.last_seen),
            age: c.last_seen.saturating_since(c.first_seen).as_nanos() / 1_000_000_000,
            reason: end.name(),
            tcp_flags_ts: is_tcp.then_some(HexByte(c.tcp_flags[ts])),
            tcp_flags_tc: is_tcp.then_some(HexByte(c.tcp_flags[tc])),
            conn_state: entry.ext.extraneous.conn_state(entry),
            history: entry.ext.extraneous.history(),
        },
        tcp: is_tcp.then_some(crate::alert::TcpDetail {
            ts: c.tcp_flags[ts],
            tc: c.tcp_flags[tc],
        }),
        tunnel: entry.ext.tunnel(&entry.key).map(|t| TunnelRef {
            kind: t.kind.name(),
            id: t.id,
            depth: t.depth,
            link: t.link,
            outer: None,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{EventWriter, OutputTarget};
    use crate::decode::link::LinkType;
    use crate::detect::mirror_stream::ClassReason;

    /// The frames of a classic pcap file (either timestamp precision), with their times.
    fn read_pcap(path: &std::path::Path) -> Vec<(Timestamp, Vec<u8>)> {
        let bytes = std::fs::read(path).unwrap();
        let unit = match u32::from_le_bytes(bytes[0..4].try_into().unwrap()) {
            0xa1b2_c3d4 => 1_000,
            0xa1b2_3c4d => 1,
            other => panic!("not a little-endian pcap: {other:#x}"),
        };
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let field =
                |i: usize| u32::from_le_bytes(bytes[at + i..at + i + 4].try_into().unwrap());
            let ts = u64::from(field(0)) * 1_000_000_000 + u64::from(field(4)) * unit;
            let len = field(8) as usize;
            out.push((Timestamp(ts), bytes[at + 16..at + 16 + len].to_vec()));
            at += 16 + len;
        }
        out
    }

    /// An Ethernet/IPv4/UDP frame from 10.1.x.y:`sport` to 10.9.0.1:53.
    fn udp_frame(n: u16, sport: u16) -> Vec<u8> {
        let [hi, lo] = n.to_be_bytes();
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 1, hi, lo], [10, 9, 0, 1], 64)
            .udp(sport, 53)
            .write(&mut frame, &[0u8; 20])
            .unwrap();
        frame
    }

    /// Tens of thousands of flows idle out together (a capture gap): the worker ends them a
    /// budget per batch (the two batches after the gap end 1,297 of them), and the run ends
    /// before the budgets got through them. Every flow still ends exactly once and as
    /// timed out, as when expiry ran whole; the flows seen after the gap end at shutdown.
    #[test]
    fn flows_idled_out_together_all_end_as_timed_out_when_the_run_ends_first() {
        const FLOWS: u16 = 40_000;
        let dir = std::env::temp_dir().join(format!("mw-mass-expiry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("events.json");
        let writer = EventWriter::spawn(&OutputTarget::File(events.clone())).unwrap();
        let options = PipelineOptions {
            workers: 1,
            flow_records: true,
            drop_when_full: false,
        };
        let mut pipeline = Pipeline::start(&Config::default(), options, || writer.sink()).unwrap();
        let start = 1_767_600_000 * 1_000_000_000u64;
        let mut push = |at: u64, frame: &[u8]| {
            let rec = CaptureRecord {
                ts: Timestamp(at),
                link: LinkType::ETHERNET,
                data: frame,
                orig_len: frame.len() as u32,
            };
            pipeline.push(&rec).unwrap();
        };
        for n in 0..FLOWS {
            push(start + u64::from(n) * 100_000, &udp_frame(n, 40_000));
        }
        // Ten minutes later (the idle timeout is five): two packets of two new flows.
        let later = start + 600 * 1_000_000_000;
        push(later, &udp_frame(1, 50_000));
        push(later + 1_000, &udp_frame(2, 50_000));
        let report = pipeline.finish().unwrap();
        writer.finish().unwrap();
        let text = std::fs::read_to_string(&events).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let flows = report.flows();
        assert_eq!(flows.inserted, u64::from(FLOWS) + 2);
        assert_eq!(flows.expired_idle, u64::from(FLOWS));
        assert_eq!(flows.flushed, 2);
        let mut reasons = std::collections::BTreeMap::<(String, u16), Vec<String>>::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["event_type"] != "flow" {
                continue;
            }
            let key = (
                v["src_ip"].as_str().unwrap().to_owned(),
                v["src_port"].as_u64().unwrap() as u16,
            );
            let reason = v["flow"]["reason"].as_str().unwrap().to_owned();
            reasons.entry(key).or_default().push(reason);
        }
        assert_eq!(reasons.len(), usize::from(FLOWS) + 2);
        for ((src, port), ended) in &reasons {
            let expected = if *port == 40_000 {
                "timeout"
            } else {
                "shutdown"
            };
            assert_eq!(ended, &[expected], "{src}:{port}");
        }
    }

    /// Sharded capture without the kernel: the native packets of `mirror-of-native` go
    /// through the pipeline's own front and their VXLAN copies through a remote front on
    /// another thread, as a fanout group splits them. The workers match every copy and the
    /// front owning the link counts it: the session is a `mirror` from
    /// `duplicates_native_traffic` with its 15 copies matched, as in replay
    /// (`pcaps/mirror-of-native/checks.toml`).
    #[test]
    fn sharded_fronts_match_copies_read_by_another_front() {
        let dir = std::env::temp_dir().join(format!("mw-sharded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pcap = dir.join("mirror-of-native.pcap");
        crate::generate::generate("mirror-of-native", 127, &pcap).unwrap();
        let frames = read_pcap(&pcap);
        // VXLAN: IPv4 (ethertype at 12), UDP (protocol at 23), destination port 4789 (36).
        let is_copy = |f: &[u8]| {
            f.len() > 38 && f[12..14] == [8, 0] && f[23] == 17 && f[36..38] == [0x12, 0xb5]
        };
        let (copies, natives): (Vec<_>, Vec<_>) = frames.into_iter().partition(|(_, f)| is_copy(f));
        assert_eq!((natives.len(), copies.len()), (26, 15));

        let writer = EventWriter::spawn(&OutputTarget::File(dir.join("events.json"))).unwrap();
        let options = PipelineOptions {
            workers: 2,
            flow_records: false,
            drop_when_full: false,
        };
        let mut pipeline =
            Pipeline::start_sharded(&Config::default(), options, 2, || writer.sink()).unwrap();
        assert_eq!(pipeline.fronts(), 2);
        let mut remotes = pipeline.take_remote_fronts();
        let mut remote = remotes.pop().unwrap();
        assert!(remotes.is_empty());
        assert_eq!(remote.front().index(), 1);
        let thread = std::thread::spawn(move || {
            for (ts, data) in &copies {
                let rec = CaptureRecord {
                    ts: *ts,
                    link: LinkType::ETHERNET,
                    data,
                    orig_len: data.len() as u32,
                };
                remote.front().push(&rec).unwrap();
            }
            remote.finish(false)
        });
        pipeline.attach_remote(0, thread);
        for (ts, data) in &natives {
            let rec = CaptureRecord {
                ts: *ts,
                link: LinkType::ETHERNET,
                data,
                orig_len: data.len() as u32,
            };
            pipeline.push(&rec).unwrap();
        }
        let report = pipeline.finish().unwrap();
        writer.finish().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(report.capture.packets, 41);
        assert_eq!(report.front_packets, [26, 15]);
        assert_eq!(
            report.tunnel_records.len(),
            1,
            "{:?}",
            report.tunnel_records
        );
        let r = &report.tunnel_records[0];
        assert_eq!(r.class, MirrorClass::Mirror);
        assert_eq!(r.reason, ClassReason::DuplicatesNativeTraffic);
        assert_eq!(r.duplicates, 15);
        // The remote front dealt the link its ids: 2, 4, ... (`(id - 1) % 2 == 1`).
        assert_eq!(r.link % 2, 0);
        assert_eq!(report.mirror_alerts, 1);
        assert!(report.workers.iter().all(|w| w.copy_notes_dropped == 0));
    }
}
