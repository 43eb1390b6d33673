//! Flow table costs per packet, and the concurrency design choice.
//!
//! `touch/*`, `expire/*` and `hash/*` run on one thread against a table of 100,000 live flows.
//! `flood/*` touches 10,000 or 100,000 live flows in batches of a worker's size where every
//! packet is a different flow (as in `bench-flood64`), with entries of the sensor's size:
//! `*_plain` one `touch` after the other, `*_prefetch` with the two prefetch stages run
//! `PREFETCH_INDEX_AHEAD` and `PREFETCH_SLOT_AHEAD` packets ahead of the `touch`,
//! `*_prefetch_by_hash` the same with stage 1's hash kept for stage 2.
//! `design/*` compares per-worker shards (each thread owns a `FlowTable`; packets are
//! pre-partitioned by a dispatch hash, as the capture thread would do; the dispatch itself is
//! not timed) with one `DashMap<FlowKey, FlowCounters>` shared by all threads, at 1 and 2
//! threads, on the same skewed packet stream. DashMap does strictly less work here: no LRU, no
//! capacity bound, no timeouts. After each design run the bench prints how many packets the
//! structures counted and how many flows they hold, so a fast wrong run shows.
//!
//! Run: `cargo bench -p mirrorwatch-benches --bench flowtable -- --warm-up-time 1 --measurement-time 3`.

use std::hash::BuildHasher;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration as StdDuration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dashmap::DashMap;
use flowtable::key::ip_to_addr;
use flowtable::{
    Direction, Duration, ExpireReason, FlowCounters, FlowEntry, FlowKey, FlowTable,
    FlowTableConfig, IpProto, Timestamp,
};

/// Live flows in every single-thread table and in the design comparison.
const LIVE_FLOWS: usize = 100_000;
/// Packets per measured iteration of the design comparison.
const DESIGN_PACKETS: usize = 200_000;
/// Length of the pre-generated key-index streams.
const STREAM_LEN: usize = 1 << 19;
/// Packet-clock step between packets.
const NS_PER_PACKET: u64 = 1_000;
/// Seed of the tables' hasher (a real sensor draws it at random).
const TABLE_SEED: u64 = 0x7461_626c_6573_6565;
/// Seed of the worker-dispatch hasher: must differ from the tables' (see `FlowTable` docs).
const DISPATCH_SEED: u64 = 0x6469_7370_6174_6368;

/// Flow `n` of a plausible mix: 90 % IPv4 (TCP and UDP), 10 % IPv6 TCP, many clients talking
/// to a few hundred servers; the returned direction is that of the client's first packet.
fn flow(n: u32) -> (FlowKey, Direction) {
    let [a, b, c, d] = n.to_be_bytes();
    let client_port = 1_024 + (n.wrapping_mul(7_919) % 60_000) as u16;
    if n % 10 == 9 {
        let client = Ipv6Addr::new(
            0x2001,
            0xdb8,
            1,
            0,
            0,
            0,
            u16::from_be_bytes([a, b]),
            u16::from_be_bytes([c, d]),
        );
        let server = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, (n % 97) as u16);
        return FlowKey::new(
            ip_to_addr(IpAddr::V6(client)),
            client_port,
            ip_to_addr(IpAddr::V6(server)),
            443,
            IpProto::TCP,
            0,
        );
    }
    let client = Ipv4Addr::new(10, b, c, d.wrapping_add(a));
    let server = Ipv4Addr::new(192, 0, 2, (n % 251) as u8);
    let (proto, port) = if n % 4 == 0 {
        (IpProto::UDP, 53)
    } else {
        (IpProto::TCP, 443)
    };
    FlowKey::new(
        ip_to_addr(IpAddr::V4(client)),
        client_port,
        ip_to_addr(IpAddr::V4(server)),
        port,
        proto,
        0,
    )
}

/// xorshift64*: deterministic, portable, good enough to pick flows.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How packets pick among the live flows.
#[derive(Clone, Copy, Debug)]
enum Mix {
    /// Every live flow equally likely (worst case for caches).
    Uniform,
    /// Zipf-like: flow rank `floor(N * u^3)`, so the top 1 % of flows get about 22 % of the
    /// packets and the top 10 % about 46 %.
    Skewed,
}

/// The packets of a stream: each a key and its direction. Keys are copied into the stream, as
/// a decoder hands over a key it just built, so reading the next key costs no cache miss that
/// the sensor would not have either.
fn stream(
    mix: Mix,
    flows: &[(FlowKey, Direction)],
    len: usize,
    seed: u64,
) -> Vec<(FlowKey, Direction)> {
    let mut rng = Rng(seed | 1);
    let n_flows = flows.len() as u64;
    (0..len)
        .map(|_| {
            let u = rng.unit();
            let rank = match mix {
                Mix::Uniform => u,
                Mix::Skewed => u * u * u,
            } * n_flows as f64;
            // Scatter ranks over flow numbers so hot flows are not neighbours in memory.
            let rank = (rank as u64).min(n_flows - 1);
            let (key, dir) = flows[(rank.wrapping_mul(0x9e37_79b9) % n_flows) as usize];
            let dir = if rng.next_u64() & 1 == 0 {
                dir
            } else {
                dir.reverse()
            };
            (key, dir)
        })
        .collect()
}

fn config(capacity: usize) -> FlowTableConfig {
    FlowTableConfig {
        capacity,
        idle_timeout: Duration::from_secs(3_600),
        active_timeout: Duration::from_secs(86_400),
    }
}

fn ignore(_: &FlowEntry<()>, _: ExpireReason) {}

/// A table holding `flows` (touched once each, in order, from `t0`).
fn filled_table(capacity: usize, flows: &[(FlowKey, Direction)], t0: u64) -> FlowTable<()> {
    let mut table = FlowTable::new(config(capacity), TABLE_SEED);
    for (i, (key, dir)) in flows.iter().enumerate() {
        let now = Timestamp(t0 + i as u64 * NS_PER_PACKET);
        let (entry, _) = table.touch(key, *dir, now, &mut ignore);
        entry.counters.record(*dir, now, 100, 0);
    }
    table
}

fn bench_touch(c: &mut Criterion) {
    let flows: Vec<_> = (0..2 * LIVE_FLOWS as u32).map(flow).collect();
    let live = &flows[..LIVE_FLOWS];
    let mut group = c.benchmark_group("touch");
    group.throughput(Throughput::Elements(1));

    // Hits: 100,000 live flows (the slab alone is 11 MB, so most hits miss the L2 cache), and
    // 4,000 live flows (everything cache-resident: the cost of the code itself).
    for (mix, n_live) in [
        (Mix::Uniform, LIVE_FLOWS),
        (Mix::Skewed, LIVE_FLOWS),
        (Mix::Uniform, 4_000),
    ] {
        let live = &flows[..n_live];
        let packets = stream(mix, live, STREAM_LEN, 42);
        let mut table = filled_table(n_live * 5 / 4, live, 0);
        let mut now = n_live as u64 * NS_PER_PACKET;
        let mut pos = 0;
        let id = BenchmarkId::new(format!("hit_{mix:?}").to_lowercase(), n_live);
        group.bench_function(id, |b| {
            b.iter(|| {
                let (key, dir) = &packets[pos % STREAM_LEN];
                pos += 1;
                now += NS_PER_PACKET;
                let (entry, created) = table.touch(key, *dir, Timestamp(now), &mut ignore);
                entry.counters.record(*dir, Timestamp(now), 100, 0x10);
                black_box(created)
            })
        });
        assert_eq!(table.stats().inserted, n_live as u64, "hits only");
    }

    // Inserting into a table with room: time 100,000 inserts, then drain untimed.
    let mut table: FlowTable<()> = FlowTable::new(config(LIVE_FLOWS), TABLE_SEED);
    group.bench_function("miss_insert", |b| {
        b.iter_custom(|iters| {
            let mut timed = StdDuration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = (iters - done).min(LIVE_FLOWS as u64) as usize;
                let start = Instant::now();
                for (i, (key, dir)) in live[..n].iter().enumerate() {
                    let now = Timestamp(i as u64 * NS_PER_PACKET);
                    let (entry, created) = table.touch(key, *dir, now, &mut ignore);
                    entry.counters.record(*dir, now, 100, 0x02);
                    black_box(created);
                }
                timed += start.elapsed();
                table.drain(&mut ignore);
                done += n as u64;
            }
            timed
        })
    });
    assert_eq!(table.stats().evicted, 0);

    // A full table and a stream of keys it does not hold: every touch evicts the oldest flow.
    let mut table = filled_table(LIVE_FLOWS, live, 0);
    let mut now = LIVE_FLOWS as u64 * NS_PER_PACKET;
    let mut pos = LIVE_FLOWS;
    group.bench_function("miss_evict", |b| {
        b.iter(|| {
            let (key, dir) = &flows[pos % flows.len()];
            pos += 1;
            now += NS_PER_PACKET;
            let (entry, created) = table.touch(key, *dir, Timestamp(now), &mut ignore);
            entry.counters.record(*dir, Timestamp(now), 100, 0x02);
            black_box(created)
        })
    });
    let stats = table.stats();
    assert_eq!(stats.inserted, stats.evicted + LIVE_FLOWS as u64);
    group.finish();
}

/// Detector state that makes an entry the size of the sensor's (224 bytes with `FlowExt`).
type FloodExt = [u64; 14];

/// Packets per worker batch (the sensor's default `[pipeline] batch_size`).
const FLOOD_BATCH: usize = 1_024;

/// The order in which a flood visits its live flows, each once per round.
#[derive(Clone, Copy, Debug)]
enum FloodOrder {
    /// The order the flows were created in: slab entries are visited in address order.
    RoundRobin,
    /// A fixed random permutation: slab entries too are visited in random order.
    Shuffled,
}

/// Packets between stage 1 of the batch prefetch (index line) and the `touch`.
const PREFETCH_INDEX_AHEAD: usize = 8;
/// Packets between stage 2 of the batch prefetch (slab entry) and the `touch`.
const PREFETCH_SLOT_AHEAD: usize = 4;

/// How a flood batch is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lookup {
    /// One `touch` after the other.
    Plain,
    /// `prefetch` and `prefetch_slot` by key, ahead of each `touch`.
    Prefetch,
    /// `prefetch_by_hash` and `prefetch_slot_by_hash`, the hash of stage 1 kept for stage 2.
    PrefetchByHash,
}

/// Touches every packet of `batch` as a worker does, counting it in the entry, with the
/// prefetch stages of `lookup` run ahead as `FlowTable::prefetch` documents.
fn flood_batch(
    table: &mut FlowTable<FloodExt>,
    batch: &[(FlowKey, Direction)],
    now: Timestamp,
    lookup: Lookup,
) {
    let mut ignore = |_: &FlowEntry<FloodExt>, _: ExpireReason| {};
    // Hashes of the packets between the two stages, by packet index modulo the ring size.
    let mut hashes = [0u64; PREFETCH_INDEX_AHEAD];
    if lookup == Lookup::PrefetchByHash {
        for (i, (key, _)) in batch.iter().enumerate().take(PREFETCH_INDEX_AHEAD) {
            hashes[i] = table.hash_key(key);
            table.prefetch_by_hash(hashes[i]);
        }
    }
    for (i, (key, dir)) in batch.iter().enumerate() {
        match lookup {
            Lookup::Plain => {}
            Lookup::Prefetch => {
                if let Some((ahead, _)) = batch.get(i + PREFETCH_INDEX_AHEAD) {
                    table.prefetch(ahead);
                }
                if let Some((ahead, _)) = batch.get(i + PREFETCH_SLOT_AHEAD) {
                    table.prefetch_slot(ahead);
                }
            }
            Lookup::PrefetchByHash => {
                if i + PREFETCH_SLOT_AHEAD < batch.len() {
                    let j = (i + PREFETCH_SLOT_AHEAD) % PREFETCH_INDEX_AHEAD;
                    table.prefetch_slot_by_hash(hashes[j]);
                }
                if let Some((ahead, _)) = batch.get(i + PREFETCH_INDEX_AHEAD) {
                    // Packet i + 8 takes the place of packet i, whose hash is no longer needed.
                    let hash = table.hash_key(ahead);
                    hashes[i % PREFETCH_INDEX_AHEAD] = hash;
                    table.prefetch_by_hash(hash);
                }
            }
        }
        let (entry, created) = table.touch(key, *dir, now, &mut ignore);
        entry.counters.record(*dir, now, 64, 0x10);
        entry.ext[0] += 1;
        black_box(created);
    }
}

fn bench_flood(c: &mut Criterion) {
    let mut group = c.benchmark_group("flood");
    group.throughput(Throughput::Elements(FLOOD_BATCH as u64));
    for n_live in [10_000, LIVE_FLOWS] {
        let flows: Vec<_> = (0..n_live as u32).map(flow).collect();
        for order in [FloodOrder::RoundRobin, FloodOrder::Shuffled] {
            let mut packets = flows.clone();
            if let FloodOrder::Shuffled = order {
                // Fisher-Yates with a fixed seed.
                let mut rng = Rng(0x666c_6f6f_6464);
                for i in (1..packets.len()).rev() {
                    packets.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
                }
            }
            // Two rounds so that a batch never wraps.
            packets.extend_from_within(..);
            for lookup in [Lookup::Plain, Lookup::Prefetch, Lookup::PrefetchByHash] {
                let mut table: FlowTable<FloodExt> =
                    FlowTable::new(config(n_live * 5 / 4), TABLE_SEED);
                let mut ignore = |_: &FlowEntry<FloodExt>, _: ExpireReason| {};
                for (key, dir) in &flows {
                    table.touch(key, *dir, Timestamp::ZERO, &mut ignore);
                }
                let mut pos = 0;
                let mut n_packets = 0u64;
                let name = match lookup {
                    Lookup::Plain => "plain",
                    Lookup::Prefetch => "prefetch",
                    Lookup::PrefetchByHash => "prefetch_by_hash",
                };
                let name = format!("{}_{name}", format!("{order:?}").to_lowercase());
                group.bench_function(BenchmarkId::new(name.as_str(), n_live), |b| {
                    b.iter(|| {
                        let batch = &packets[pos..pos + FLOOD_BATCH];
                        pos = (pos + FLOOD_BATCH) % n_live;
                        n_packets += FLOOD_BATCH as u64;
                        flood_batch(&mut table, batch, Timestamp(n_packets), lookup);
                    })
                });
                let counted: u64 = table.iter().map(|e| e.ext[0]).sum();
                assert_eq!(counted, n_packets, "every packet counted");
                assert_eq!(table.stats().inserted, n_live as u64, "hits only");
            }
        }
    }
    group.finish();
}

fn bench_expire(c: &mut Criterion) {
    let live: Vec<_> = (0..LIVE_FLOWS as u32).map(flow).collect();
    let mut group = c.benchmark_group("expire");
    group.throughput(Throughput::Elements(1));

    // Nothing to expire: one comparison at the LRU head.
    let mut table = filled_table(LIVE_FLOWS, &live, 0);
    let now = Timestamp(LIVE_FLOWS as u64 * NS_PER_PACKET);
    group.bench_function("none_due", |b| {
        b.iter(|| black_box(table.expire(black_box(now), &mut ignore)))
    });
    assert_eq!(table.len(), LIVE_FLOWS);

    // Every flow due: time per expired flow (refill untimed).
    let mut table: FlowTable<()> = FlowTable::new(config(LIVE_FLOWS), TABLE_SEED);
    let mut n_reported = 0u64;
    group.bench_function("per_expired_flow", |b| {
        b.iter_custom(|iters| {
            let mut timed = StdDuration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = (iters - done).min(LIVE_FLOWS as u64) as usize;
                for (i, (key, dir)) in live[..n].iter().enumerate() {
                    let now = Timestamp(i as u64 * NS_PER_PACKET);
                    table.touch(key, *dir, now, &mut ignore);
                }
                let far = Timestamp(u64::MAX);
                let mut count = |_: &FlowEntry<()>, _: ExpireReason| n_reported += 1;
                let start = Instant::now();
                let expired = table.expire(far, &mut count);
                timed += start.elapsed();
                black_box(expired);
                done += n as u64;
            }
            timed
        })
    });
    assert_eq!(n_reported, table.stats().expired_idle);
    group.finish();
}

fn bench_hash(c: &mut Criterion) {
    let table: FlowTable<()> = FlowTable::new(config(1), TABLE_SEED);
    let dispatch = foldhash::fast::FixedState::with_seed(DISPATCH_SEED);
    let (key, _) = flow(12_345);
    let mut group = c.benchmark_group("hash");
    group.bench_function("table_hash_key", |b| {
        b.iter(|| table.hash_key(black_box(&key)))
    });
    group.bench_function("derived_hash_foldhash", |b| {
        b.iter(|| dispatch.hash_one(black_box(&key)))
    });
    group.finish();
}

/// Per-worker tables and the packets each worker receives.
struct Shards {
    tables: Vec<FlowTable<()>>,
    streams: Vec<Vec<(FlowKey, Direction)>>,
}

fn make_shards(
    n_threads: usize,
    flows: &[(FlowKey, Direction)],
    packets: &[(FlowKey, Direction)],
) -> Shards {
    let dispatch = foldhash::fast::FixedState::with_seed(DISPATCH_SEED);
    let worker_of = |key: &FlowKey| (dispatch.hash_one(key) % n_threads as u64) as usize;
    let mut shard_flows = vec![Vec::new(); n_threads];
    for f in flows {
        shard_flows[worker_of(&f.0)].push(*f);
    }
    let mut streams = vec![Vec::new(); n_threads];
    for packet in packets {
        streams[worker_of(&packet.0)].push(*packet);
    }
    let tables = shard_flows
        .iter()
        .map(|f| filled_table(LIVE_FLOWS * 5 / 4, f, 0))
        .collect();
    Shards { tables, streams }
}

fn run_shard(table: &mut FlowTable<()>, packets: &[(FlowKey, Direction)], t0: u64) {
    for (i, (key, dir)) in packets.iter().enumerate() {
        let now = Timestamp(t0 + i as u64 * NS_PER_PACKET);
        let (entry, _) = table.touch(key, *dir, now, &mut ignore);
        entry.counters.record(*dir, now, 100, 0x10);
    }
}

type SharedMap = DashMap<FlowKey, FlowCounters, foldhash::fast::RandomState>;

fn run_dashmap(map: &SharedMap, packets: &[(FlowKey, Direction)], t0: u64) {
    for (i, (key, dir)) in packets.iter().enumerate() {
        let now = Timestamp(t0 + i as u64 * NS_PER_PACKET);
        let mut counters = map
            .entry(*key)
            .or_insert_with(|| FlowCounters::starting_at(now));
        counters.record(*dir, now, 100, 0x10);
    }
}

fn bench_design(c: &mut Criterion) {
    let flows: Vec<_> = (0..LIVE_FLOWS as u32).map(flow).collect();
    let packets = stream(Mix::Skewed, &flows, DESIGN_PACKETS, 7);
    let mut group = c.benchmark_group("design");
    group.throughput(Throughput::Elements(DESIGN_PACKETS as u64));
    group.sample_size(20);

    for n_threads in [1, 2] {
        // Shards: each worker owns a table and gets the packets of its own flows.
        let mut shards = make_shards(n_threads, &flows, &packets);
        let mut t0 = LIVE_FLOWS as u64 * NS_PER_PACKET;
        let mut n_iters = 0u64;
        group.bench_function(BenchmarkId::new("shards", n_threads), |b| {
            b.iter(|| {
                t0 += DESIGN_PACKETS as u64 * NS_PER_PACKET;
                n_iters += 1;
                let Shards { tables, streams } = &mut shards;
                if n_threads == 1 {
                    run_shard(&mut tables[0], &streams[0], t0);
                } else {
                    std::thread::scope(|s| {
                        for (table, stream) in tables.iter_mut().zip(streams.iter()) {
                            s.spawn(move || run_shard(table, stream, t0));
                        }
                    });
                }
            })
        });
        let counted: u64 = shards
            .tables
            .iter()
            .flat_map(|t| t.iter())
            .map(|e| e.counters.packets[0] + e.counters.packets[1])
            .sum();
        let live: usize = shards.tables.iter().map(FlowTable::len).sum();
        let evicted: u64 = shards.tables.iter().map(|t| t.stats().evicted).sum();
        eprintln!(
            "check design/shards/{n_threads}: {counted} packets counted (want {}), {live} live flows, {evicted} evicted, shard sizes {:?}",
            LIVE_FLOWS as u64 + n_iters * DESIGN_PACKETS as u64,
            shards.tables.iter().map(FlowTable::len).collect::<Vec<_>>(),
        );

        // One shared DashMap: each thread takes a contiguous share of the same packets.
        let map = SharedMap::with_capacity_and_hasher(LIVE_FLOWS * 5 / 4, Default::default());
        for (key, dir) in &flows {
            map.entry(*key)
                .or_default()
                .record(*dir, Timestamp::ZERO, 100, 0);
        }
        let share = DESIGN_PACKETS.div_ceil(n_threads);
        let mut t0 = LIVE_FLOWS as u64 * NS_PER_PACKET;
        let mut n_iters = 0u64;
        group.bench_function(BenchmarkId::new("dashmap", n_threads), |b| {
            b.iter(|| {
                t0 += DESIGN_PACKETS as u64 * NS_PER_PACKET;
                n_iters += 1;
                if n_threads == 1 {
                    run_dashmap(&map, &packets, t0);
                } else {
                    std::thread::scope(|s| {
                        for chunk in packets.chunks(share) {
                            let map = &map;
                            s.spawn(move || run_dashmap(map, chunk, t0));
                        }
                    });
                }
            })
        });
        let counted: u64 = map
            .iter()
            .map(|e| e.value().packets[0] + e.value().packets[1])
            .sum();
        eprintln!(
            "check design/dashmap/{n_threads}: {counted} packets counted (want {}), {} live flows",
            LIVE_FLOWS as u64 + n_iters * DESIGN_PACKETS as u64,
            map.len(),
        );
    }
    group.finish();
}

fn bench_memory(_: &mut Criterion) {
    let table: FlowTable<()> = FlowTable::new(config(LIVE_FLOWS), TABLE_SEED);
    let sized: FlowTable<[u64; 6]> = FlowTable::new(config(LIVE_FLOWS), TABLE_SEED);
    eprintln!(
        "memory: bytes per flow at capacity {LIVE_FLOWS}: E = () {} (bound {}), E = [u64; 6] {} (bound {})",
        table.allocated_bytes().div_ceil(LIVE_FLOWS),
        FlowTable::<()>::approx_bytes_per_flow(),
        sized.allocated_bytes().div_ceil(LIVE_FLOWS),
        FlowTable::<[u64; 6]>::approx_bytes_per_flow(),
    );
}

criterion_group!(
    benches,
    bench_memory,
    bench_hash,
    bench_touch,
    bench_flood,
    bench_expire,
    bench_design
);
criterion_main!(benches);
