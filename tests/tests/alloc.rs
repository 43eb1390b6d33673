//! Allocation audit (style rule 27): once warmed up, the per-packet path allocates nothing.
//!
//! A counting global allocator wraps `System`. It counts only while a test arms it, either for
//! the arming thread alone or for every thread of the process; frees are not counted. The
//! tests take one lock, so a test's setup never lands in another test's measured section.
//! Input: the generated captures `pcaps/mirror-vxlan` and `pcaps/plain-sessions`, copied into
//! memory, then replayed many times with packet time moved forward on each pass.
//! `counter_sees_one_allocation_per_packet` shows the counter catches a per-packet `Vec`.
//! To find where a failing audit allocates, run it with `MIRRORWATCH_ALLOC_BACKTRACE=1`: every
//! counted allocation prints its thread and backtrace.

// A `GlobalAlloc` impl is `unsafe` by definition; this one only counts and forwards to `System`.
#![allow(unsafe_code)]
// Test code: a failed setup step fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use flowtable::{
    Duration, ExpireReason, FlowEntry, FlowKey, FlowTable, FlowTableConfig, IpProto, Timestamp,
};
use mirrorwatch::alert::{EventWriter, OutputTarget};
use mirrorwatch::capture::CaptureRecord;
use mirrorwatch::capture::replay::ReplayReader;
use mirrorwatch::config::Config;
use mirrorwatch::decode::link::LinkType;
use mirrorwatch::decode::{DecodeCounters, Decoder};
use mirrorwatch::detect::FlowExt;
use mirrorwatch::pipeline::{PacketMeta, Pipeline, PipelineOptions};
use mirrorwatch_tests::workspace_root;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Counts allocations (including reallocations) while armed, then forwards to `System`.
struct CountingAllocator;

/// What the allocator counts: nothing, the arming thread only, or every thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Scope {
    Off = 0,
    ThisThread = 1,
    AllThreads = 2,
}

static SCOPE: AtomicU8 = AtomicU8::new(Scope::Off as u8);
static N_ALLOCS: AtomicUsize = AtomicUsize::new(0);
static N_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Sizes of the first allocations counted, for the failure message.
const SIZES_KEPT: usize = 32;
static SIZES: [AtomicUsize; SIZES_KEPT] = [const { AtomicUsize::new(0) }; SIZES_KEPT];

/// Test hook: while set, the next allocation of at least `HOLD_MIN_BYTES` by a thread that is
/// not a `HOLDER` sleeps for `HOLD_FOR` (one allocation per arming), which holds a pipeline
/// worker at its next output buffer while the capture thread runs ahead.
static HOLD_NEXT_BIG: AtomicBool = AtomicBool::new(false);
const HOLD_MIN_BYTES: usize = 64 * 1024;
const HOLD_FOR: std::time::Duration = std::time::Duration::from_millis(200);

/// Print a backtrace of every counted allocation (`MIRRORWATCH_ALLOC_BACKTRACE=1`), to find
/// where a failing audit allocates.
static BACKTRACES: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set on the thread that armed a `Scope::ThisThread` count. Const-initialized and without
    /// a destructor, so reading it from inside the allocator never allocates.
    static MEASURED_THREAD: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread prints a backtrace: its own allocations are not counted.
    static IN_REPORT: Cell<bool> = const { Cell::new(false) };
    /// Set on a thread that `HOLD_NEXT_BIG` must never hold.
    static HOLDER: Cell<bool> = const { Cell::new(false) };
}

/// The `HOLD_NEXT_BIG` hook. `thread::sleep` does not allocate.
fn maybe_hold(layout: Layout) {
    if layout.size() >= HOLD_MIN_BYTES
        && HOLD_NEXT_BIG.load(Ordering::Relaxed)
        && !HOLDER.try_with(Cell::get).unwrap_or(true)
        && HOLD_NEXT_BIG.swap(false, Ordering::AcqRel)
    {
        std::thread::sleep(HOLD_FOR);
    }
}

/// Allocations of exactly `WATCHED_SIZE` bytes (0: none), by any thread, armed or not.
static WATCHED_SIZE: AtomicUsize = AtomicUsize::new(0);
static N_WATCHED: AtomicUsize = AtomicUsize::new(0);

/// Counts one allocation of `layout` if armed. Touches only atomics and a const thread-local.
fn note(layout: Layout) {
    maybe_hold(layout);
    let watched = WATCHED_SIZE.load(Ordering::Relaxed);
    if watched != 0 && layout.size() == watched {
        N_WATCHED.fetch_add(1, Ordering::Relaxed);
    }
    let scope = SCOPE.load(Ordering::Relaxed);
    if scope == Scope::Off as u8 {
        return;
    }
    if scope == Scope::ThisThread as u8 && !MEASURED_THREAD.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    if IN_REPORT.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    let n = N_ALLOCS.fetch_add(1, Ordering::Relaxed);
    N_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
    if let Some(slot) = SIZES.get(n) {
        slot.store(layout.size(), Ordering::Relaxed);
    }
    if BACKTRACES.load(Ordering::Relaxed) {
        // Diagnostics only: this allocates, on this thread, uncounted.
        IN_REPORT.with(|r| r.set(true));
        let thread = std::thread::current();
        let trace = std::backtrace::Backtrace::force_capture();
        eprintln!(
            "counted allocation {n}: {} bytes on thread {:?}\n{trace}",
            layout.size(),
            thread.name()
        );
        IN_REPORT.with(|r| r.set(false));
    }
}

// SAFETY: every method passes its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping in `note` only touches atomics and a const-initialized
// thread-local `Cell`, so it neither allocates (no recursion) nor unwinds.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout);
        // SAFETY: same contract as the caller's: `layout` has a non-zero size.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) {
            note(new_layout);
        }
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through this type)
        // with `layout`, as the caller guarantees; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// What a measured section allocated.
#[derive(Debug)]
struct Counted {
    allocations: usize,
    bytes: usize,
    /// Sizes of the first allocations (at most `SIZES_KEPT`).
    first_sizes: Vec<usize>,
}

/// Runs `f` with the counter armed for `scope` and returns what it counted.
fn count_allocations<R>(scope: Scope, f: impl FnOnce() -> R) -> (R, Counted) {
    let backtraces = std::env::var_os("MIRRORWATCH_ALLOC_BACKTRACE").is_some_and(|v| v == "1");
    BACKTRACES.store(backtraces, Ordering::SeqCst);
    MEASURED_THREAD.with(|t| t.set(scope == Scope::ThisThread));
    N_ALLOCS.store(0, Ordering::SeqCst);
    N_BYTES.store(0, Ordering::SeqCst);
    SCOPE.store(scope as u8, Ordering::SeqCst);
    let result = f();
    SCOPE.store(Scope::Off as u8, Ordering::SeqCst);
    MEASURED_THREAD.with(|t| t.set(false));
    let allocations = N_ALLOCS.load(Ordering::SeqCst);
    let first_sizes = SIZES
        .iter()
        .take(allocations)
        .map(|s| s.load(Ordering::SeqCst))
        .collect();
    let counted = Counted {
        allocations,
        bytes: N_BYTES.load(Ordering::SeqCst),
        first_sizes,
    };
    (result, counted)
}

/// One measured section at a time: the counter is process-wide.
static AUDIT: Mutex<()> = Mutex::new(());

/// A captured frame copied out of the reader.
struct Frame {
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
    data: Vec<u8>,
}

impl Frame {
    /// The frame as a capture source yields it, `shift` later in packet time.
    fn record(&self, shift: Duration) -> CaptureRecord<'_> {
        CaptureRecord {
            ts: self.ts + shift,
            link: self.link,
            data: &self.data,
            orig_len: self.orig_len,
        }
    }
}

/// The frames of the bundled cases `names`, merged in packet-time order.
fn load_cases(names: &[&str]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for name in names {
        let path: PathBuf = workspace_root().join("pcaps").join(name).join("input.pcap");
        let mut reader = ReplayReader::open(&path).unwrap();
        while let Some(rec) = reader.next_packet().unwrap() {
            frames.push(Frame {
                ts: rec.ts,
                link: rec.link,
                orig_len: rec.orig_len,
                data: rec.data.to_vec(),
            });
        }
    }
    frames.sort_by_key(|f| f.ts);
    assert!(frames.len() > 100, "the cases hold {} frames", frames.len());
    frames
}

/// Whole seconds from the first to the last frame, plus one: shifting a pass by a multiple of
/// this keeps packet time moving forward from pass to pass.
fn pass_spacing(frames: &[Frame]) -> Duration {
    let first = frames.first().map_or(Timestamp::ZERO, |f| f.ts);
    let last = frames.last().map_or(Timestamp::ZERO, |f| f.ts);
    Duration::from_secs(last.saturating_since(first).as_nanos() / 1_000_000_000 + 2)
}

/// What the single-thread passes did, to show the measured section exercised every path.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    packets: u64,
    flow_packets: u64,
    inserted: u64,
    expired_idle: u64,
    evicted: u64,
}

/// Decode, canonical key, `touch` + `record` in every table, `expire` every 16 packets.
fn single_thread_pass(
    decoder: &Decoder,
    frames: &[Frame],
    shift: Duration,
    tables: &mut [FlowTable<FlowExt>],
    counters: &mut DecodeCounters,
    tally: &mut Tally,
) {
    for (pkt_idx, frame) in frames.iter().enumerate() {
        let rec = frame.record(shift);
        let decoded = decoder.decode(rec.link, rec.data, rec.orig_len, counters);
        tally.packets += 1;
        if let Some(p) = decoded.inner {
            tally.flow_packets += 1;
            // Tunnel context: the innermost tunnel's id (the pipeline uses a link id).
            let context = decoded.tunnels.last().map_or(0, |t| u64::from(t.id) + 1);
            let (key, dir) = FlowKey::new(p.src, p.src_port, p.dst, p.dst_port, p.proto, context);
            let flags = p.tcp.map_or(0, |t| t.flags);
            for table in tables.iter_mut() {
                let mut on_expire = |_: &FlowEntry<FlowExt>, reason: ExpireReason| match reason {
                    ExpireReason::Evicted => tally.evicted += 1,
                    _ => tally.expired_idle += 1,
                };
                let (entry, new) = table.touch(&key, dir, rec.ts, &mut on_expire);
                entry.counters.record(dir, rec.ts, p.ip_len, flags);
                tally.inserted += u64::from(new);
            }
        }
        if pkt_idx % 16 == 15 {
            for table in tables.iter_mut() {
                table.expire(rec.ts, &mut |_, _| tally.expired_idle += 1);
            }
        }
    }
}

#[test]
fn single_thread_decode_and_flow_table_allocate_nothing_after_warm_up() {
    let _audit = AUDIT.lock().unwrap_or_else(PoisonError::into_inner);
    let frames = load_cases(&["mirror-vxlan", "plain-sessions"]);
    let config = Config::default();
    let decoder = Decoder::new(config.decode.clone());
    let table = |capacity| {
        let table_config = FlowTableConfig {
            capacity,
            idle_timeout: config.flow_idle_timeout(),
            active_timeout: config.flow_active_timeout(),
        };
        FlowTable::<FlowExt>::new(table_config, 0x616c_6c6f_6373)
    };
    // A roomy table (inserts, hits, idle expiry) and a tiny one (eviction on most inserts).
    let mut tables = [table(1_024), table(4)];
    let mut counters = DecodeCounters::default();
    // Each pass starts after every flow of the previous one has idled out.
    let spacing =
        Duration(pass_spacing(&frames).as_nanos() + config.flow_idle_timeout().as_nanos());
    let shift = |pass: u64| Duration(spacing.as_nanos() * pass);

    let mut warm = Tally::default();
    single_thread_pass(
        &decoder,
        &frames,
        shift(0),
        &mut tables,
        &mut counters,
        &mut warm,
    );

    const PASSES: u64 = 50;
    let mut tally = Tally::default();
    let ((), counted) = count_allocations(Scope::ThisThread, || {
        for pass in 1..=PASSES {
            single_thread_pass(
                &decoder,
                &frames,
                shift(pass),
                &mut tables,
                &mut counters,
                &mut tally,
            );
        }
    });

    // The measured section did the work it claims to: every path was taken.
    assert_eq!(tally.packets, PASSES * frames.len() as u64);
    assert!(tally.flow_packets > tally.packets / 2, "{tally:?}");
    assert!(
        tally.inserted > 0 && tally.expired_idle > 0 && tally.evicted > 0,
        "{tally:?}"
    );
    assert_eq!(
        counted.allocations, 0,
        "{} allocations ({} bytes) on the per-packet path after warm-up, first sizes {:?}; {tally:?}",
        counted.allocations, counted.bytes, counted.first_sizes
    );
}

/// A minimum-size Ethernet/IPv4/UDP frame (IPv4 checksum correct, UDP checksum 0, 18 zero
/// bytes of payload).
fn udp_frame(src: [u8; 4], src_port: u16, dst: [u8; 4], dst_port: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, IpProto::UDP.0, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    let sum = f[ip_start..]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !(((folded & 0xffff) + (folded >> 16)) as u16);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&checksum.to_be_bytes());
    f.extend_from_slice(&src_port.to_be_bytes());
    f.extend_from_slice(&dst_port.to_be_bytes());
    f.extend_from_slice(&26u16.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(60, 0);
    f
}

/// Waits until no thread has allocated for `QUIET` (the pipeline has no "caught up" signal; a
/// worker writing records allocates a new output buffer every 64 KiB, every few milliseconds).
fn wait_until_quiet() {
    const QUIET: std::time::Duration = std::time::Duration::from_millis(100);
    const GIVE_UP: std::time::Duration = std::time::Duration::from_secs(120);
    let start = std::time::Instant::now();
    loop {
        let ((), counted) = count_allocations(Scope::AllThreads, || std::thread::sleep(QUIET));
        if counted.allocations == 0 {
            return;
        }
        assert!(
            start.elapsed() < GIVE_UP,
            "the pipeline still allocates {} times per {QUIET:?} after {GIVE_UP:?} idle",
            counted.allocations
        );
    }
}

/// The pipeline with one worker, all threads counted.
///
/// Two things in the pipeline allocate only when the worker falls behind, a bounded number of
/// times per pipeline: its pool of packet batches (recycled through a return channel, but
/// created on demand when that channel is empty) grows up to `queue_batches + 3` per worker,
/// and crossbeam allocates the capture thread's wait context (48 bytes) and the channel's
/// wait-list entry (96 bytes) the first time a send blocks. Left to chance, some of that lands
/// in the measured section on some runs, so the warm-up forces the worst case first:
/// 1. A flood of single-packet flows (a 256-flow table, flow records on, so the worker writes
///    output) during which the worker is held for `HOLD_FOR` at its next output buffer: the
///    capture thread fills the (short) queue, grows the batch pool to its bound and blocks in
///    `send`. The flood repeats until the pool has reached its bound, counted as allocations
///    of a batch's exact size.
/// 2. The captures pushed a few times, so their tunnel sessions and inner flows are known (the
///    tunnel table's per-session inner-flow set grows only for new flows), then a wait until
///    the worker has written the flood's records.
///
/// Measured: the captures pushed 400 more times, packet time moving forward (a tick, that is a
/// partial batch to the worker and tunnel expiry, every second of packet time); nothing idles
/// out (timeouts beyond the run), so nothing is written, and no new flow or session appears.
#[test]
fn pipeline_with_one_worker_allocates_nothing_after_warm_up() {
    pipeline_audit(1, &["mirror-vxlan", "plain-sessions"]);
}

/// Issue 14 goal 5: the same with two capture fronts (sharded live capture, all packets
/// pushed through the first): the copy window runs in the worker and its findings go back
/// to the fronts through their queues; `mirror-of-native` gives it a copy to match per pass.
#[test]
fn sharded_pipeline_with_one_worker_allocates_nothing_after_warm_up() {
    pipeline_audit(2, &["mirror-vxlan", "plain-sessions", "mirror-of-native"]);
}

fn pipeline_audit(fronts: usize, cases: &[&str]) {
    let _audit = AUDIT.lock().unwrap_or_else(PoisonError::into_inner);
    let frames = load_cases(cases);
    let mut config = Config::default();
    config.flows.capacity = 256;
    config.flows.idle_timeout_s = 10_000_000;
    config.flows.active_timeout_s = 10_000_000;
    config.tunnels.idle_timeout_s = 10_000_000;
    config.pipeline.queue_batches = 2;
    // Pending + queued + in the worker's hands + the one allocated while all those are busy.
    let pool_bound = config.pipeline.queue_batches + 3;
    let batch_bytes = config.pipeline.batch_size * size_of::<PacketMeta>();
    N_WATCHED.store(0, Ordering::SeqCst);
    WATCHED_SIZE.store(batch_bytes, Ordering::SeqCst);

    let out = std::env::temp_dir().join(format!("mirrorwatch-alloc-{}.jsonl", std::process::id()));
    let writer = EventWriter::spawn(&OutputTarget::File(out.clone())).unwrap();
    let options = PipelineOptions {
        workers: 1,
        flow_records: true,
        drop_when_full: false,
    };
    let mut pipeline = Pipeline::start_sharded(&config, options, fronts, || writer.sink()).unwrap();
    // The worker and writer threads allocate as they start (the writer's output buffer).
    wait_until_quiet();

    // Warm-up 1: the flood, in packet time before the captures begin.
    const FLOOD: u32 = 16_384;
    const MAX_FLOODS: u64 = 8;
    let flood: Vec<Frame> = (0..FLOOD)
        .map(|i| {
            let [_, _, hi, lo] = i.to_be_bytes();
            Frame {
                ts: Timestamp(u64::from(i) * 100),
                link: LinkType::ETHERNET,
                orig_len: 60,
                data: udp_frame(
                    [172, 16, hi, lo],
                    1_024 + (i % 50_000) as u16,
                    [192, 0, 2, 1],
                    5_000,
                ),
            }
        })
        .collect();
    let flood_start = frames[0].ts - Duration::from_secs(1_000);
    let mut n_floods = 0u64;
    HOLDER.with(|h| h.set(true));
    while N_WATCHED.load(Ordering::SeqCst) < pool_bound {
        assert!(
            n_floods < MAX_FLOODS,
            "after {n_floods} floods the batch pool holds {} batches of {batch_bytes} bytes, \
             not {pool_bound}: the worker never fell behind, or the pool works differently now",
            N_WATCHED.load(Ordering::SeqCst)
        );
        let at = Duration(flood_start.as_nanos() + n_floods * Duration::from_secs(1).as_nanos());
        HOLD_NEXT_BIG.store(true, Ordering::SeqCst);
        for frame in &flood {
            pipeline.push(&frame.record(at)).unwrap();
        }
        n_floods += 1;
    }
    WATCHED_SIZE.store(0, Ordering::SeqCst);
    HOLD_NEXT_BIG.store(false, Ordering::SeqCst);
    HOLDER.with(|h| h.set(false));

    // Warm-up 2: the captures, a few times; then the worker finishes the flood's records.
    let spacing = pass_spacing(&frames);
    let shift = |pass: u64| Duration(spacing.as_nanos() * pass);
    const WARM_PASSES: u64 = 4;
    for pass in 0..WARM_PASSES {
        for frame in &frames {
            pipeline.push(&frame.record(shift(pass))).unwrap();
        }
    }
    wait_until_quiet();

    const PASSES: u64 = 400;
    let ((), counted) = count_allocations(Scope::AllThreads, || {
        for pass in WARM_PASSES..WARM_PASSES + PASSES {
            for frame in &frames {
                pipeline.push(&frame.record(shift(pass))).unwrap();
            }
        }
        // The worker's share of the last batches sent.
        std::thread::sleep(std::time::Duration::from_millis(50));
    });

    let report = pipeline.finish().unwrap();
    drop(writer.finish());
    let _ = std::fs::remove_file(&out);
    let pushed = n_floods * u64::from(FLOOD) + (WARM_PASSES + PASSES) * frames.len() as u64;
    assert_eq!(report.capture.packets, pushed);
    assert_eq!(report.workers.len(), 1);
    assert_eq!(
        report.workers[0].packets,
        pushed - report.capture.non_ip,
        "every packet with an IP layer reached the worker"
    );
    assert!(
        report.workers[0].table.evicted >= u64::from(FLOOD) - 256,
        "{report:?}"
    );
    assert!(
        report.capture.encapsulated > 0,
        "the VXLAN case went through"
    );
    if fronts > 1 {
        let matched: u64 = report.tunnel_records.iter().map(|r| r.duplicates).sum();
        assert!(matched > 0, "the workers matched no copy: {report:?}");
    }

    let batch_sized = counted
        .first_sizes
        .iter()
        .filter(|&&s| s == batch_bytes)
        .count();
    assert_eq!(
        counted.allocations,
        0,
        "{} allocations ({} bytes) by the pipeline's threads while pushing {} packets after \
         warm-up ({n_floods} floods); first sizes {:?} ({batch_sized} of them the size of a \
         packet batch, {batch_bytes} bytes)",
        counted.allocations,
        counted.bytes,
        PASSES * frames.len() as u64,
        counted.first_sizes
    );
}

/// The audit can fail: one small `Vec` per packet is seen, every one of them.
#[test]
fn counter_sees_one_allocation_per_packet() {
    let _audit = AUDIT.lock().unwrap_or_else(PoisonError::into_inner);
    let frames = load_cases(&["mirror-vxlan", "plain-sessions"]);
    let decoder = Decoder::default();
    let mut counters = DecodeCounters::default();
    let (kept, counted) = count_allocations(Scope::ThisThread, || {
        let mut kept = 0usize;
        for frame in &frames {
            let rec = frame.record(Duration::ZERO);
            let decoded = decoder.decode(rec.link, rec.data, rec.orig_len, &mut counters);
            // What rule 27 forbids: an owned copy of something per packet.
            let layers: Vec<u8> = decoded
                .tunnels
                .iter()
                .map(|t| t.kind as u8)
                .chain([0])
                .collect();
            kept += black_box(layers).len();
        }
        kept
    });
    assert!(kept >= frames.len());
    assert_eq!(counted.allocations, frames.len(), "{counted:?}");
}
