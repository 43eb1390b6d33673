//! Proves the per-packet path allocates nothing once a `FlowTable` has held its peak of live
//! flows, and that reaching that peak costs only the index's few doublings.
//!
//! A counting global allocator wraps `System`; it counts per thread, and only on a thread that
//! switched counting on, so the harness and tests running in parallel do not disturb the figure. The workload fills the table,
//! evicts from it while full, expires idle flows, restarts active ones, removes flows early and
//! finally drains, over one million packets.
// Implementing `GlobalAlloc` needs `unsafe`; this file does nothing else unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};

use flowtable::key::ip_to_addr;
use flowtable::{
    Direction, Duration, ExpireReason, FlowEntry, FlowKey, FlowTable, FlowTableConfig, IpProto,
    Timestamp,
};

/// `System`, plus a per-thread count of allocations made while counting is switched on.
struct CountingAlloc;

thread_local! {
    // Both are `const`-initialised and without `Drop`, so using them from the allocator never
    // allocates and never fails.
    /// Whether this thread counts.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocations (including `alloc_zeroed` and `realloc`) this thread made while counting.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_if_enabled() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: each method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the added work (two thread-local accesses) neither
// allocates nor touches the memory being managed.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_if_enabled();
        // SAFETY: same contract as our caller's, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_if_enabled();
        // SAFETY: same contract as our caller's, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_if_enabled();
        // SAFETY: same contract as our caller's, forwarded; `ptr` came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's, forwarded; `ptr` came from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made by `f` on this thread.
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

/// Flow `n`: client 10.x.y.z (from `n`) to a server, on TCP/443.
fn key(n: u32) -> (FlowKey, Direction) {
    let [_, a, b, c] = n.to_be_bytes();
    let client = ip_to_addr(IpAddr::V4(Ipv4Addr::new(10, a, b, c)));
    let server = ip_to_addr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, (n % 7) as u8)));
    FlowKey::new(
        client,
        40_000 + (n % 20_000) as u16,
        server,
        443,
        IpProto::TCP,
        0,
    )
}

/// Detector state of a realistic size.
type Ext = [u64; 4];

#[test]
fn touch_record_expire_remove_and_drain_do_not_allocate() {
    const PACKETS: u64 = 1_000_000;
    const HOT_FLOWS: u32 = 5_000;
    const COLD_FLOWS: u32 = 200_000;
    let config = FlowTableConfig {
        capacity: 10_000,
        idle_timeout: Duration::from_secs(30),
        active_timeout: Duration::from_secs(120),
    };
    let mut table: FlowTable<Ext> = FlowTable::new(config, 0x6d69_7272_6f72);
    let bytes_when_new = table.allocated_bytes();
    // Warm-up: the table reaches its cap once. The index starts at 1,024 flows and doubles,
    // so it grows at most ceil(log2(10,000 / 1,024)) = 4 times; nothing else allocates.
    let mut ignore = |_: &FlowEntry<Ext>, _: ExpireReason| {};
    let growth = allocations_during(|| {
        for n in 0..config.capacity as u32 {
            let (k, dir) = key(HOT_FLOWS + COLD_FLOWS + n);
            table.touch(&k, dir, Timestamp(0), &mut ignore);
        }
        table.drain(&mut ignore);
    });
    assert!(
        (1..=4).contains(&growth),
        "{growth} allocations to reach the cap"
    );
    let bytes_at_start = table.allocated_bytes();
    assert!(bytes_at_start > bytes_when_new);
    let mut reports = [0u64; 4];
    let mut on_expire = |_: &FlowEntry<Ext>, reason: ExpireReason| {
        let i = match reason {
            ExpireReason::Idle => 0,
            ExpireReason::Active => 1,
            ExpireReason::Evicted => 2,
            ExpireReason::Flushed => 3,
        };
        reports[i] += 1;
    };
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut n_removed = 0u64;

    let allocations = allocations_during(|| {
        for pkt_idx in 0..PACKETS {
            // One packet per millisecond: 1,000 s of packet time.
            let now = Timestamp(pkt_idx * 1_000_000);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let pick = (rng >> 32) as u32;
            // Most packets go to long-lived hot flows (active-timeout reports), the others to a
            // large cold population: 30 % of packets in the first half, which overflows the
            // table (evictions), 10 % in the second half, which idles out before it does.
            let cold_tenths = if pkt_idx < PACKETS / 2 { 3 } else { 1 };
            let n = if pick % 10 >= cold_tenths {
                pick / 10 % HOT_FLOWS
            } else {
                HOT_FLOWS + pick / 10 % COLD_FLOWS
            };
            let (k, dir) = key(n);
            let dir = if rng & 1 == 0 { dir } else { dir.reverse() };
            let (entry, _) = table.touch(&k, dir, now, &mut on_expire);
            entry.counters.record(dir, now, 1_400, 0x10);
            entry.ext[0] += 1;
            if pkt_idx % 64 == 0 {
                table.expire(now, &mut on_expire);
            }
            if pkt_idx % 1_000 == 999 && table.remove(&k).is_some() {
                n_removed += 1;
            }
        }
        table.drain(&mut on_expire);
    });

    assert_eq!(allocations, 0, "the per-packet path allocated");
    assert_eq!(table.allocated_bytes(), bytes_at_start);
    let [idle, active, evicted, flushed] = reports;
    let stats = table.stats();
    assert!(
        idle > 0 && active > 0 && evicted > 0 && flushed > 0,
        "{stats:?}"
    );
    assert_eq!(stats.expired_idle, idle);
    assert_eq!(stats.expired_active, active);
    assert_eq!(stats.evicted, evicted);
    // The warm-up's flows were flushed through `ignore`.
    assert_eq!(stats.flushed, flushed + config.capacity as u64);
    assert_eq!(stats.removed, n_removed);
    assert_eq!(stats.peak_len, 10_000);
    assert_eq!(stats.invariant_errors, 0);
    assert_eq!(
        stats.inserted,
        stats.expired_idle + stats.evicted + stats.flushed + stats.removed
    );
    assert!(table.is_empty());
}

#[test]
fn the_counting_allocator_sees_allocations() {
    let n = allocations_during(|| {
        let v: Vec<u64> = std::hint::black_box(Vec::with_capacity(16));
        drop(v);
    });
    assert_eq!(n, 1);
}
