//! The flow table: a fixed-capacity map from [`FlowKey`] to per-flow state.
//!
//! [`FlowTable::new`] reserves the slab of `capacity` entries and the parallel array of intrusive
//! LRU links (`u32` indices) once; they are filled on demand, so no page of them is touched
//! before a flow needs it. The index of slab slots by key hash (each key is stored once, in the
//! slab; see `index.rs`) starts small and doubles as the live flows grow, up to the size the
//! capacity needs: a capture of a hundred packets pays for a few kilobytes, not for a million
//! flows. Once the table has held its peak number of flows, `touch`, `expire`, `remove`, `get`
//! and `drain` never allocate (`tests/alloc.rs` checks this with a counting allocator).
//! The index's bucket for a key is a function of its hash alone, so a caller that sees keys a
//! few packets ahead can hide the lookup's cache misses ([`FlowTable::prefetch`]).
//! Time is the packet time passed in by the caller; the table never reads a clock.
//! No input makes it panic: a broken internal invariant is a `debug_assert!`, a count in
//! [`FlowTableStats::invariant_errors`] and a recovery (in the worst case the table resets).

use std::cell::Cell;
use std::hash::Hasher;
use std::marker::PhantomData;

use foldhash::SharedSeed;
use foldhash::fast::FoldHasher;

use crate::{Direction, FlowKey, Timestamp, time::Duration};

use index::{CACHE_LINE_BYTES, GROUP_LEN, SlotIndex, prefetch_line};

mod index;

/// Sizing and timeouts of one table (one per worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// Hard cap on live flows; inserting beyond it evicts the least recently seen flow.
    /// [`FlowTable::new`] clamps it to `1..=`[`MAX_CAPACITY`].
    pub capacity: usize,
    /// A flow with no packet for this long (packet time) expires.
    pub idle_timeout: Duration,
    /// A flow older than this is reported and its counters restarted (long-lived flows still
    /// produce records).
    pub active_timeout: Duration,
}

/// Why a flow left the table (or was reported).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpireReason {
    /// No packet for `idle_timeout`.
    Idle,
    /// Reached `active_timeout`; the flow stays in the table with fresh counters.
    Active,
    /// Removed to make room for a new flow while the table was full.
    Evicted,
    /// End of input or shutdown.
    Flushed,
}

/// Counters every flow keeps, whatever the detectors add.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    /// Time of the first packet (since the last active-timeout report).
    pub first_seen: Timestamp,
    /// Time of the latest packet.
    pub last_seen: Timestamp,
    /// Packets per direction, indexed by [`Direction::index`].
    pub packets: [u64; 2],
    /// Bytes (IP length) per direction.
    pub bytes: [u64; 2],
    /// Union of TCP flags seen per direction.
    pub tcp_flags: [u8; 2],
}

impl FlowCounters {
    /// Counts one packet.
    #[inline]
    pub fn record(&mut self, dir: Direction, now: Timestamp, bytes: u32, tcp_flags: u8) {
        let i = dir.index();
        self.packets[i] = self.packets[i].saturating_add(1);
        self.bytes[i] = self.bytes[i].saturating_add(u64::from(bytes));
        self.tcp_flags[i] |= tcp_flags;
        if now > self.last_seen {
            self.last_seen = now;
        }
    }

    /// Counters of a flow (or a restarted flow) whose first packet is at `now`, nothing counted.
    #[inline]
    pub const fn starting_at(now: Timestamp) -> FlowCounters {
        FlowCounters {
            first_seen: now,
            last_seen: now,
            packets: [0; 2],
            bytes: [0; 2],
            tcp_flags: [0; 2],
        }
    }
}

/// One live flow.
#[derive(Clone, Debug)]
pub struct FlowEntry<E> {
    /// Canonical key.
    pub key: FlowKey,
    /// Direction of the first packet seen (who spoke first, as far as the sensor knows).
    pub first_dir: Direction,
    /// Generic counters.
    pub counters: FlowCounters,
    /// Detector state owned by the caller.
    pub ext: E,
}

/// Counts of what the table did, for the stats record.
///
/// Unless `invariant_errors` is non-zero,
/// `inserted == len + expired_idle + evicted + flushed + removed` at all times
/// (`expired_active` counts reports of flows that stay in the table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    /// Flows created (including a flow restarted because its key idled out before `expire` ran).
    pub inserted: u64,
    /// Flows removed after `idle_timeout`.
    pub expired_idle: u64,
    /// Active-timeout reports.
    pub expired_active: u64,
    /// Flows evicted because the table was full.
    pub evicted: u64,
    /// Flows flushed at end of input.
    pub flushed: u64,
    /// Flows the caller ended early with [`FlowTable::remove`].
    pub removed: u64,
    /// Highest number of live flows.
    pub peak_len: u64,
    /// Broken internal invariants detected and recovered from; always 0 unless there is a bug.
    pub invariant_errors: u64,
}

/// Largest supported capacity: slab indices are `u32` and `u32::MAX` means "no slot".
pub const MAX_CAPACITY: usize = (u32::MAX - 1) as usize;

/// Fixed-capacity flow table. Not `Sync` by design: each worker owns one.
///
/// Flows are kept in least-recently-touched order; eviction and idle expiry take from the old
/// end, so both are O(1) per flow. See the module documentation for the allocation contract.
///
/// Dispatching packets to workers: pick the worker with a hasher seeded differently from the
/// table's (the table places keys by the upper 32 bits of [`FlowTable::hash_key`]; sharding on
/// those same bits would crowd every shard's keys into part of its index).
///
/// Batched lookups: [`FlowTable::prefetch`] and [`FlowTable::prefetch_slot`] start loading what
/// a later [`FlowTable::touch`] of the same key will read, so that a worker can overlap the
/// cache misses of several packets (see [`FlowTable::prefetch`] for the loop).
pub struct FlowTable<E> {
    /// Effective configuration (capacity clamped to `1..=MAX_CAPACITY`).
    config: FlowTableConfig,
    /// The slab. `None` is a free slot; its `links` entry chains the free list. Allocated with
    /// exactly `config.capacity` room and filled by `push` on demand, so it never reallocates.
    slots: Vec<Option<FlowEntry<E>>>,
    /// LRU links parallel to `slots`, kept apart so that moving a flow to the young end touches
    /// three 8-byte links rather than three whole entries.
    links: Vec<Link>,
    /// Slab indices of the live flows, by key hash. At least twice as many buckets as live
    /// flows (see [`INDEX_SLACK`]), grown on demand up to twice the capacity.
    index: SlotIndex,
    /// Seeded key hasher.
    hasher: KeyHasher,
    /// Least recently touched live flow, or `NIL`.
    head: u32,
    /// Most recently touched live flow, or `NIL`.
    tail: u32,
    /// First free slot below `slots.len()`, or `NIL`.
    free: u32,
    /// Number of live flows (`<= config.capacity`).
    len: usize,
    /// What the table did.
    stats: FlowTableStats,
    /// Entry handed out by `touch` only if an internal invariant is broken, so that a bug costs
    /// one flow's state rather than a crash.
    spare: Option<FlowEntry<E>>,
    /// Makes the table `!Sync` (it stays `Send`): one worker owns it.
    _not_sync: PhantomData<Cell<()>>,
}

/// "No slot" in links, the free list, `head` and `tail`.
const NIL: u32 = u32::MAX;

/// Index buckets per live flow, at least: the index is at most half full, so that a group
/// of seven rarely overflows into the next line (see `index.rs`). It grows to
/// `INDEX_SLACK * capacity` buckets at most; deletion leaves no tombstones, so churn on a full
/// table never needs more.
const INDEX_SLACK: usize = 2;

/// Live flows the index is first sized for (times [`INDEX_SLACK`]): 2,048 buckets (2,051 in
/// whole groups of seven), 18 KiB.
/// It doubles when the live flows outgrow half of it (the last step only up to
/// `INDEX_SLACK * capacity`), so a table that reaches its cap has grown
/// `ceil(log2(capacity / INITIAL_INDEX_FLOWS))` times, and never again.
const INITIAL_INDEX_FLOWS: usize = 1_024;

/// Bytes per index group: a cache line of seven buckets (32 bits of hash and the slot each)
/// and their control bytes.
const INDEX_GROUP_BYTES: usize = CACHE_LINE_BYTES;

/// Index bytes per flow of capacity once the index is at its largest (and at most that before),
/// rounded up, leaving out the rounding of the bucket count up to whole groups (at most 64 bytes
/// per table): 128 / 7.
const INDEX_BYTES_PER_FLOW_MAX: usize = (INDEX_SLACK * INDEX_GROUP_BYTES).div_ceil(GROUP_LEN);

/// Most bytes of a slab entry [`FlowTable::prefetch_slot`] prefetches: the whole entry up to
/// four cache lines' worth. Not just the first line or two: the compiler orders the fields (for a
/// 224-byte entry it put `first_dir`, which the `Option`'s `None` is encoded in and which every
/// key comparison reads, in the last line), and prefetching only the first 128 bytes measured
/// slower than prefetching nothing.
const SLOT_PREFETCH_BYTES: usize = 4 * CACHE_LINE_BYTES;

/// Intrusive doubly linked LRU list node; `prev` goes towards `head` (older).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link {
    prev: u32,
    next: u32,
}

impl Link {
    const DETACHED: Link = Link {
        prev: NIL,
        next: NIL,
    };
}

/// foldhash with every seed derived from the caller's seed (none of them public).
#[derive(Clone, Debug)]
struct KeyHasher {
    shared: SharedSeed,
    per_hasher: u64,
}

impl KeyHasher {
    fn new(seed: u64) -> KeyHasher {
        KeyHasher {
            shared: SharedSeed::from_u64(seed),
            per_hasher: seed,
        }
    }

    /// Hashes the key as two `u128` words and two `u64` words (three multiplications), rather
    /// than through the derived `Hash`, which feeds the arrays byte-slice by byte-slice.
    #[inline]
    fn hash(&self, key: &FlowKey) -> u64 {
        let mut h = FoldHasher::with_seed(self.per_hasher, &self.shared);
        h.write_u128(u128::from_le_bytes(key.lo_addr));
        h.write_u128(u128::from_le_bytes(key.hi_addr));
        h.write_u64(
            u64::from(key.lo_port) | u64::from(key.hi_port) << 16 | u64::from(key.proto.0) << 32,
        );
        h.write_u64(key.tunnel);
        h.finish()
    }
}

impl<E> FlowTable<E> {
    /// Creates an empty table for `config.capacity` flows (clamped to `1..=`[`MAX_CAPACITY`]):
    /// the slab and links are reserved (address space, no page touched), the index is small and
    /// grows with the live flows.
    ///
    /// `seed` keys the hash function. Flow keys are chosen by whoever sends traffic, so pass a
    /// value an attacker cannot guess (random per process); a fixed seed is for tests only.
    pub fn new(config: FlowTableConfig, seed: u64) -> Self {
        let capacity = config.capacity.clamp(1, MAX_CAPACITY);
        let config = FlowTableConfig { capacity, ..config };
        FlowTable {
            config,
            slots: Vec::with_capacity(capacity),
            links: Vec::with_capacity(capacity),
            index: SlotIndex::with_buckets(
                capacity
                    .min(INITIAL_INDEX_FLOWS)
                    .saturating_mul(INDEX_SLACK),
            ),
            hasher: KeyHasher::new(seed),
            head: NIL,
            tail: NIL,
            free: NIL,
            len: 0,
            stats: FlowTableStats::default(),
            spare: None,
            _not_sync: PhantomData,
        }
    }

    /// Memory one tracked flow costs, in bytes: slab entry plus LRU link plus the index share
    /// once the index has grown to its largest (two buckets, 18.3 bytes, per flow of capacity,
    /// rounded up; plus at most 64 bytes per table; less before, see
    /// [`FlowTable::allocated_bytes`]).
    ///
    /// On 64-bit targets this is 139 bytes for `E = ()` (112-byte entry, 8-byte link, 19 bytes
    /// of index) and stays within 256 bytes for an `E` of up to 112 bytes (alignment 8).
    pub const fn approx_bytes_per_flow() -> usize {
        size_of::<Option<FlowEntry<E>>>() + size_of::<Link>() + INDEX_BYTES_PER_FLOW_MAX
    }

    /// Bytes this table holds on the heap: the slab and links reserved for the capacity, and
    /// the index at its current size (it grows with the live flows, up to twice the capacity).
    pub fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Option<FlowEntry<E>>>()
            + self.links.capacity() * size_of::<Link>()
            + self.index.allocation_size()
    }

    /// The effective configuration (capacity after clamping).
    pub fn config(&self) -> FlowTableConfig {
        self.config
    }

    /// Changes the idle and active timeouts of a running table (a configuration reload); the
    /// capacity stays as allocated. Flows already in the table are judged by the new timeouts
    /// from the next [`FlowTable::touch`] or [`FlowTable::expire`] on: the LRU order stays
    /// valid because one idle timeout applies to every flow.
    pub fn set_timeouts(&mut self, idle_timeout: Duration, active_timeout: Duration) {
        self.config.idle_timeout = idle_timeout;
        self.config.active_timeout = active_timeout;
    }

    /// Number of live flows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no flow is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of live flows.
    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// What the table did so far.
    pub fn stats(&self) -> FlowTableStats {
        self.stats
    }

    /// The seeded hash of `key` used by this table. Do not use it to pick a worker: see the
    /// type documentation.
    #[inline]
    pub fn hash_key(&self, key: &FlowKey) -> u64 {
        self.hasher.hash(key)
    }

    /// The flow with this key, without touching it (its LRU position does not change).
    pub fn get(&self, key: &FlowKey) -> Option<&FlowEntry<E>> {
        let idx = self.find(self.hasher.hash(key), key)?;
        self.slots.get(idx as usize)?.as_ref()
    }

    /// The flow with this key, mutable, without touching it (its LRU position does not change).
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut FlowEntry<E>> {
        let idx = self.find(self.hasher.hash(key), key)?;
        self.slots.get_mut(idx as usize)?.as_mut()
    }

    /// Live flows from the least to the most recently touched. Does not allocate.
    pub fn iter(&self) -> impl Iterator<Item = &FlowEntry<E>> + '_ {
        let mut cur = self.head;
        // The bound keeps a corrupted (cyclic) list from looping forever.
        let mut remaining = self.len;
        std::iter::from_fn(move || {
            if cur == NIL || remaining == 0 {
                return None;
            }
            remaining -= 1;
            let idx = cur as usize;
            cur = self.links.get(idx).map_or(NIL, |l| l.next);
            self.slots.get(idx)?.as_ref()
        })
    }

    /// Stage 1 of a batched lookup: starts loading the cache line of the index where the
    /// search for `key` begins, and returns without waiting for it. A hint only: it changes
    /// nothing, costs one hash, and is harmless for any key.
    ///
    /// A worker that has a batch of packets runs the stages a few packets apart, so each
    /// stage's cache miss completes while other packets are processed:
    ///
    /// ```
    /// # use flowtable::{Direction, FlowKey, FlowTable, FlowTableConfig, Duration, Timestamp};
    /// # let config = FlowTableConfig {
    /// #     capacity: 1_000,
    /// #     idle_timeout: Duration::from_secs(30),
    /// #     active_timeout: Duration::from_secs(300),
    /// # };
    /// # let mut table: FlowTable<()> = FlowTable::new(config, 0x5eed);
    /// # let key = |n: u8| FlowKey::new([n; 16], 1_000, [200; 16], 80, flowtable::IpProto::TCP, 0);
    /// # let batch: Vec<(FlowKey, Direction)> = (0..32).map(key).collect();
    /// # let now = Timestamp::ZERO;
    /// for (i, (key, dir)) in batch.iter().enumerate() {
    ///     if let Some((ahead, _)) = batch.get(i + 8) {
    ///         table.prefetch(ahead);
    ///     }
    ///     if let Some((ahead, _)) = batch.get(i + 4) {
    ///         table.prefetch_slot(ahead);
    ///     }
    ///     let (entry, _created) = table.touch(key, *dir, now, &mut |_, _| {});
    ///     entry.counters.record(*dir, now, 64, 0);
    /// }
    /// # assert_eq!(table.len(), 32);
    /// ```
    ///
    /// Prefetching does not change what the table does: touches between the stages may move
    /// or evict the flows concerned, which only wastes the hint. On targets other than x86-64
    /// both stages do nothing but hash.
    #[inline]
    pub fn prefetch(&self, key: &FlowKey) {
        self.prefetch_by_hash(self.hasher.hash(key));
    }

    /// Stage 2 of a batched lookup (see [`FlowTable::prefetch`]): reads the index line of
    /// `key` (by now cached, if stage 1 ran a few packets earlier) and starts loading the slab
    /// entry it names (its first 256 bytes: key, counters and `E`, or the start of a large `E`)
    /// and the entry's LRU link. For a key not in the table it usually prefetches nothing.
    /// A hint only: it changes nothing and is harmless for any key.
    #[inline]
    pub fn prefetch_slot(&self, key: &FlowKey) {
        self.prefetch_slot_by_hash(self.hasher.hash(key));
    }

    /// [`FlowTable::prefetch`] for the key whose [`FlowTable::hash_key`] is `hash`. A caller
    /// that keeps the hash from stage 1 for stage 2 and the touch
    /// ([`FlowTable::touch_hashed`]) hashes each key once. Harmless with any `hash`.
    #[inline]
    pub fn prefetch_by_hash(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// [`FlowTable::prefetch_slot`] for the key whose [`FlowTable::hash_key`] is `hash`.
    /// Harmless with any `hash`.
    #[inline]
    pub fn prefetch_slot_by_hash(&self, hash: u64) {
        let Some(idx) = self.index.first_candidate(hash) else {
            return;
        };
        if let Some(slot) = self.slots.get(idx as usize) {
            prefetch_bytes(slot, SLOT_PREFETCH_BYTES);
        }
        if let Some(link) = self.links.get(idx as usize) {
            prefetch_line(link);
        }
    }

    /// Finds or inserts the flow of `key` and marks it most recently touched; returns it and
    /// whether it was created by this call. The caller then counts the packet with
    /// `entry.counters.record(..)`.
    ///
    /// A new flow gets `first_dir = dir`, `first_seen = last_seen = now` and `E::default()`.
    /// If the table is full, the least recently touched flow is removed first and reported as
    /// [`ExpireReason::Evicted`], or as [`ExpireReason::Idle`] if it had already passed its
    /// idle timeout at `now` (so `evicted` counts only real pressure).
    ///
    /// For an existing flow, in this order:
    /// - if `last_seen + idle_timeout <= now` (the caller has not run [`FlowTable::expire`] since
    ///   it idled out) it is reported as `Idle` and restarted as a new flow (fresh counters,
    ///   `first_dir = dir`, `E::default()`; the returned flag is `true`), so results do not
    ///   depend on how often `expire` runs;
    /// - else if `now - first_seen >= active_timeout` it is reported as `Active` and its
    ///   counters restart at `now` (`ext` and `first_dir` are kept);
    /// - else `last_seen` moves to `now` if `now` is later (out-of-order packets never move it
    ///   back).
    #[inline]
    pub fn touch(
        &mut self,
        key: &FlowKey,
        dir: Direction,
        now: Timestamp,
        on_expire: &mut impl FnMut(&FlowEntry<E>, ExpireReason),
    ) -> (&mut FlowEntry<E>, bool)
    where
        E: Default,
    {
        let hash = self.hasher.hash(key);
        self.touch_hashed(hash, key, dir, now, on_expire)
    }

    /// [`FlowTable::touch`] for a caller that already has `hash`, which must be
    /// [`FlowTable::hash_key`] of `key` (checked in debug builds): a worker hashes each key of
    /// a batch once, for the prefetch, and keeps the hash for the touch. A wrong hash would
    /// file the flow under another bucket, where later look-ups miss it.
    #[inline]
    pub fn touch_hashed(
        &mut self,
        hash: u64,
        key: &FlowKey,
        dir: Direction,
        now: Timestamp,
        on_expire: &mut impl FnMut(&FlowEntry<E>, ExpireReason),
    ) -> (&mut FlowEntry<E>, bool)
    where
        E: Default,
    {
        debug_assert_eq!(
            hash,
            self.hasher.hash(key),
            "touch_hashed: not this key's hash"
        );
        match self.find(hash, key) {
            Some(idx) => self.touch_existing(idx, key, dir, now, on_expire),
            None => self.insert_new(hash, key, dir, now, on_expire),
        }
    }

    /// Removes and reports (as [`ExpireReason::Idle`]) every flow with
    /// `last_seen + idle_timeout <= now`, oldest first; returns how many.
    ///
    /// It stops at the first flow that has not idled out, so it costs O(1) plus O(1) per expired
    /// flow. Flows are ordered by touch, not by `last_seen`: with out-of-order packets a flow can
    /// outlive its idle timeout a little (until the flows touched before it expire, or until its
    /// next `touch`), but never expires early.
    pub fn expire(
        &mut self,
        now: Timestamp,
        on_expire: &mut impl FnMut(&FlowEntry<E>, ExpireReason),
    ) -> usize {
        self.expire_at_most(now, usize::MAX, on_expire)
    }

    /// [`FlowTable::expire`], but stops after `budget` flows: the rest wait for the next call.
    ///
    /// A caller on a latency path bounds the work of one call: when many flows idle out at
    /// once (a capture gap, thousands of flows that went quiet together) expiring them all
    /// would hold the packets behind for milliseconds. A flow left waiting is still ended
    /// correctly: a `touch` restarts it as a new flow (reported `Idle` first) and eviction
    /// counts it as idle, so the budget delays only when its end is reported.
    pub fn expire_at_most(
        &mut self,
        now: Timestamp,
        budget: usize,
        on_expire: &mut impl FnMut(&FlowEntry<E>, ExpireReason),
    ) -> usize {
        let idle = self.config.idle_timeout;
        let mut n_expired = 0;
        while self.head != NIL && n_expired < budget {
            let head = self.head;
            let idled_out = match self.slots.get(head as usize) {
                Some(Some(entry)) => entry.counters.last_seen + idle <= now,
                _ => {
                    self.invariant_broken("LRU head is not a live slot");
                    break;
                }
            };
            if !idled_out {
                break;
            }
            let Some(entry) = self.detach(head, None) else {
                break;
            };
            self.stats.expired_idle += 1;
            n_expired += 1;
            on_expire(&entry, ExpireReason::Idle);
        }
        n_expired
    }

    /// Removes the flow of `key` (a flow the caller ends early, such as a closed TCP
    /// connection) and returns it, or `None` if it is not in the table. Counted in
    /// [`FlowTableStats::removed`]; nothing is reported through a callback.
    pub fn remove(&mut self, key: &FlowKey) -> Option<FlowEntry<E>> {
        let hash = self.hasher.hash(key);
        let idx = self.find(hash, key)?;
        let entry = self.detach(idx, Some(hash))?;
        self.stats.removed += 1;
        Some(entry)
    }

    /// Reports every live flow as [`ExpireReason::Flushed`], oldest first, and empties the table,
    /// keeping its memory for reuse. Returns how many flows were flushed.
    pub fn drain(&mut self, on_expire: &mut impl FnMut(&FlowEntry<E>, ExpireReason)) -> usize {
        let mut n_flushed = 0;
        let mut n_steps = 0;
        let mut cur = self.head;
        // The step bound keeps a corrupted (cyclic) list from looping forever.
        while cur != NIL && n_steps < self.len {
            n_steps += 1;
            let idx = cur as usize;
            cur = self.links.get(idx).map_or(NIL, |l| l.next);
            if let Some(Some(entry)) = self.slots.get(idx) {
                on_expire(entry, ExpireReason::Flushed);
                n_flushed += 1;
            }
        }
        if n_flushed != self.len || cur != NIL {
            self.invariant_broken("LRU list does not hold exactly the live flows");
        }
        self.stats.flushed += n_flushed as u64;
        self.clear_storage();
        n_flushed
    }

    /// Slab index of the live flow with this key.
    #[inline]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(
            hash,
            |i| matches!(slots.get(i as usize), Some(Some(entry)) if entry.key == *key),
        )
    }

    /// `touch` on a flow found at `idx`.
    #[inline]
    fn touch_existing(
        &mut self,
        idx: u32,
        key: &FlowKey,
        dir: Direction,
        now: Timestamp,
        on_expire: &mut impl FnMut(&FlowEntry<E>, ExpireReason),
    ) -> (&mut FlowEntry<E>, bool)
    where
        E: Default,
    {
        self.move_to_tail(idx);
        let FlowTableConfig {
            idle_timeout,
            active_timeout,
            ..
        } = self.config;
        if let Some(Some(entry)) = self.slots.get_mut(idx as usize) {
            if entry.counters.last_seen + idle_timeout <= now {
                on_expire(entry, ExpireReason::Idle);
                self.stats.expired_idle += 1;
                self.stats.inserted += 1;
                entry.first_dir = dir;
                entry.counters = FlowCounters::starting_at(now);
                entry.ext = E::default();
                return (entry, true);
            }
            if now.saturating_since(entry.counters.first_seen) >= active_timeout {
                on_expire(entry, ExpireReason::Active);
                self.stats.expired_active += 1;
                entry.counters = FlowCounters::starting_at(now);
            } else if now > entry.counters.last_seen {
                entry.counters.last_seen = now;
            }
            return (entry, false);
        }
        // Only reachable if `move_to_tail` found the list broken and reset the table.
        let entry = spare_entry(&mut self.spare, &mut self.stats, *key, dir, now);
        (entry, true)
    }

    /// `touch` on a key that is not in the table.
    #[inline]
    fn insert_new(
        &mut self,
        hash: u64,
        key: &FlowKey,
        dir: Direction,
        now: Timestamp,
        on_expire: &mut impl FnMut(&FlowEntry<E>, ExpireReason),
    ) -> (&mut FlowEntry<E>, bool)
    where
        E: Default,
    {
        let entry = FlowEntry {
            key: *key,
            first_dir: dir,
            counters: FlowCounters::starting_at(now),
            ext: E::default(),
        };
        let Some(idx) = self.take_slot(now, on_expire) else {
            let spare = spare_entry(&mut self.spare, &mut self.stats, *key, dir, now);
            return (spare, true);
        };
        self.grow_index_for(self.len + 1);
        if !self.index.insert(hash, idx) {
            // Only if the index has no room, which `grow_index_for` rules out.
            self.invariant_broken("index full");
            let spare = spare_entry(&mut self.spare, &mut self.stats, *key, dir, now);
            return (spare, true);
        }
        self.push_tail(idx);
        self.len += 1;
        self.stats.inserted += 1;
        self.stats.peak_len = self.stats.peak_len.max(self.len as u64);
        match self.slots.get_mut(idx as usize) {
            Some(slot) => (slot.insert(entry), true),
            None => {
                // `take_slot` only returns indices below `slots.len()`.
                debug_assert!(false, "take_slot returned an index past the slab");
                let spare = spare_entry(&mut self.spare, &mut self.stats, *key, dir, now);
                (spare, true)
            }
        }
    }

    /// Doubles the index when `live` flows would fill more than half of its buckets, up to
    /// `INDEX_SLACK * capacity` buckets. Growth allocates, but only as the table reaches a new
    /// peak of live flows: churn below an earlier peak never gets here.
    #[inline]
    fn grow_index_for(&mut self, live: usize) {
        let wanted = live.saturating_mul(INDEX_SLACK);
        if wanted > self.index.buckets() {
            self.grow_index(wanted);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow_index(&mut self, wanted: usize) {
        let most = self
            .config
            .capacity
            .saturating_mul(INDEX_SLACK)
            .min(SlotIndex::max_buckets());
        let target = wanted.max(self.index.buckets().saturating_mul(2)).min(most);
        // At the largest size already (only for capacities near `MAX_CAPACITY`, whose index
        // cannot have twice their buckets): it still has an empty bucket, so inserts succeed.
        if target > self.index.buckets() {
            self.index.grow_to(target);
        }
    }

    /// A vacant slot for a new flow: from the free list, else a fresh one, else the evicted
    /// LRU flow's (reported through `on_expire`). `None` only if the table is corrupted.
    #[inline]
    fn take_slot(
        &mut self,
        now: Timestamp,
        on_expire: &mut impl FnMut(&FlowEntry<E>, ExpireReason),
    ) -> Option<u32> {
        if self.free == NIL && self.slots.len() >= self.config.capacity {
            self.evict_head(now, on_expire);
        }
        if self.free != NIL {
            let idx = self.free;
            self.free = match self.links.get(idx as usize) {
                Some(link) => link.next,
                None => {
                    self.invariant_broken("free list points past the slab");
                    return None;
                }
            };
            return Some(idx);
        }
        if self.slots.len() < self.config.capacity {
            // `new` reserved `capacity` room, so these pushes never reallocate.
            let idx = self.slots.len() as u32;
            self.slots.push(None);
            self.links.push(Link::DETACHED);
            return Some(idx);
        }
        self.invariant_broken("full table with nothing to evict");
        None
    }

    /// Removes the least recently touched flow to make room, reporting it.
    fn evict_head(
        &mut self,
        now: Timestamp,
        on_expire: &mut impl FnMut(&FlowEntry<E>, ExpireReason),
    ) {
        if self.head == NIL {
            self.invariant_broken("full table with an empty LRU list");
            return;
        }
        let Some(entry) = self.detach(self.head, None) else {
            return;
        };
        if entry.counters.last_seen + self.config.idle_timeout <= now {
            self.stats.expired_idle += 1;
            on_expire(&entry, ExpireReason::Idle);
        } else {
            self.stats.evicted += 1;
            on_expire(&entry, ExpireReason::Evicted);
        }
    }

    /// Takes the live flow at `idx` out of the index, the LRU list and the slab, and puts the
    /// slot on the free list. `hash` is the key's hash if the caller has it.
    fn detach(&mut self, idx: u32, hash: Option<u64>) -> Option<FlowEntry<E>> {
        let Some(entry) = self.slots.get_mut(idx as usize).and_then(Option::take) else {
            self.invariant_broken("detaching a vacant slot");
            return None;
        };
        let hash = hash.unwrap_or_else(|| self.hasher.hash(&entry.key));
        if !self.index.remove(hash, idx) {
            self.invariant_broken("live flow missing from the index");
            return Some(entry);
        }
        if !self.unlink(idx) {
            self.invariant_broken("broken LRU links");
            return Some(entry);
        }
        if let Some(link) = self.links.get_mut(idx as usize) {
            *link = Link {
                prev: NIL,
                next: self.free,
            };
            self.free = idx;
        }
        self.len -= 1;
        Some(entry)
    }

    /// Marks `idx` most recently touched.
    #[inline]
    fn move_to_tail(&mut self, idx: u32) {
        if self.tail == idx {
            return;
        }
        if !self.unlink(idx) {
            self.invariant_broken("broken LRU links");
            return;
        }
        self.push_tail(idx);
    }

    /// Takes `idx` out of the LRU list; false if the links are inconsistent.
    #[inline]
    fn unlink(&mut self, idx: u32) -> bool {
        let Some(&Link { prev, next }) = self.links.get(idx as usize) else {
            return false;
        };
        if prev == NIL {
            if self.head != idx {
                return false;
            }
            self.head = next;
        } else {
            match self.links.get_mut(prev as usize) {
                Some(link) if link.next == idx => link.next = next,
                _ => return false,
            }
        }
        if next == NIL {
            if self.tail != idx {
                return false;
            }
            self.tail = prev;
        } else {
            match self.links.get_mut(next as usize) {
                Some(link) if link.prev == idx => link.prev = prev,
                _ => return false,
            }
        }
        true
    }

    /// Appends `idx` (not in the list) at the most recently touched end.
    #[inline]
    fn push_tail(&mut self, idx: u32) {
        let old_tail = self.tail;
        let Some(link) = self.links.get_mut(idx as usize) else {
            self.invariant_broken("linking a slot past the slab");
            return;
        };
        *link = Link {
            prev: old_tail,
            next: NIL,
        };
        if old_tail == NIL {
            self.head = idx;
        } else if let Some(link) = self.links.get_mut(old_tail as usize) {
            link.next = idx;
        }
        self.tail = idx;
    }

    /// Records a broken invariant and resets the table to a consistent (empty) state. Live
    /// flows are dropped without being reported; nothing is allocated.
    #[cold]
    #[inline(never)]
    fn invariant_broken(&mut self, what: &'static str) {
        debug_assert!(false, "flow table invariant broken: {what}");
        self.stats.invariant_errors += 1;
        self.clear_storage();
    }

    /// Empties the slab, links and index, keeping their memory.
    fn clear_storage(&mut self) {
        self.slots.clear();
        self.links.clear();
        self.index.clear();
        self.head = NIL;
        self.tail = NIL;
        self.free = NIL;
        self.len = 0;
    }
}

impl<E> std::fmt::Debug for FlowTable<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowTable")
            .field("config", &self.config)
            .field("len", &self.len)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Prefetches the cache lines holding the first `max_bytes` bytes of `value`.
#[inline]
fn prefetch_bytes<T>(value: &T, max_bytes: usize) {
    let len = size_of::<T>().min(max_bytes);
    let start = (value as *const T).cast::<u8>();
    let first_line = start.addr() / CACHE_LINE_BYTES;
    let last_line = (start.addr() + len.saturating_sub(1)) / CACHE_LINE_BYTES;
    prefetch_line(start);
    for line in first_line + 1..=last_line {
        // Never dereferenced: only handed to the prefetch hint.
        prefetch_line(start.wrapping_add(line * CACHE_LINE_BYTES - start.addr()));
    }
}

/// Recovery path of `touch` after a broken invariant: a fresh entry outside the table.
#[cold]
fn spare_entry<'a, E: Default>(
    spare: &'a mut Option<FlowEntry<E>>,
    stats: &mut FlowTableStats,
    key: FlowKey,
    dir: Direction,
    now: Timestamp,
) -> &'a mut FlowEntry<E> {
    stats.invariant_errors += 1;
    spare.insert(FlowEntry {
        key,
        first_dir: dir,
        counters: FlowCounters::starting_at(now),
        ext: E::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IpProto;
    use crate::key::ip_to_addr;
    use std::net::{IpAddr, Ipv4Addr};

    const SECOND: u64 = 1_000_000_000;

    fn t(secs: u64) -> Timestamp {
        Timestamp(secs * SECOND)
    }

    fn v4(d: u8) -> [u8; 16] {
        ip_to_addr(IpAddr::V4(Ipv4Addr::new(10, 0, 0, d)))
    }

    /// Key number `n` (client 10.0.0.n:40000+n to server 10.0.0.200:443).
    fn key(n: u8) -> FlowKey {
        FlowKey::new(v4(n), 40_000 + u16::from(n), v4(200), 443, IpProto::TCP, 0).0
    }

    fn config(capacity: usize, idle_secs: u64, active_secs: u64) -> FlowTableConfig {
        FlowTableConfig {
            capacity,
            idle_timeout: Duration::from_secs(idle_secs),
            active_timeout: Duration::from_secs(active_secs),
        }
    }

    /// Every report, in order: key, reason, counters at the time of the report.
    type Reports = Vec<(FlowKey, ExpireReason, FlowCounters)>;

    fn recorder(reports: &mut Reports) -> impl FnMut(&FlowEntry<u32>, ExpireReason) + '_ {
        |e, r| reports.push((e.key, r, e.counters))
    }

    /// Touches flow `n` with a packet from its lower endpoint at `now`, recording reports.
    fn touch_lo_to_hi(table: &mut FlowTable<u32>, n: u8, now: Timestamp, reports: &mut Reports) {
        table.touch(&key(n), Direction::LoToHi, now, &mut recorder(reports));
    }

    fn keys_in_lru_order<E>(table: &FlowTable<E>) -> Vec<FlowKey> {
        table.iter().map(|e| e.key).collect()
    }

    fn assert_stats_add_up<E>(table: &FlowTable<E>) {
        let s = table.stats();
        assert_eq!(
            s.inserted,
            table.len() as u64 + s.expired_idle + s.evicted + s.flushed + s.removed,
            "{s:?} with {} live",
            table.len()
        );
        assert_eq!(s.invariant_errors, 0);
    }

    impl<E> FlowTable<E> {
        /// Checks every structural invariant; panics (tests only) on the first broken one.
        fn check_invariants(&self) {
            assert!(self.len <= self.config.capacity);
            assert!(self.slots.len() <= self.config.capacity);
            assert_eq!(self.slots.len(), self.links.len());
            assert_eq!(self.index.len(), self.len);
            self.index.check();
            assert!(self.index.buckets() >= self.len * INDEX_SLACK);
            assert!(
                self.index.buckets()
                    <= (self.config.capacity * INDEX_SLACK).next_multiple_of(GROUP_LEN)
            );
            assert_eq!(self.slots.capacity(), self.config.capacity);
            // Walk the LRU list forwards, checking back links.
            let mut seen = 0;
            let mut prev = NIL;
            let mut cur = self.head;
            while cur != NIL {
                let link = self.links[cur as usize];
                assert_eq!(link.prev, prev);
                let entry = self.slots[cur as usize]
                    .as_ref()
                    .expect("listed slot is live");
                let hash = self.hasher.hash(&entry.key);
                assert!(self.index.contains(hash, cur));
                assert_eq!(self.find(hash, &entry.key), Some(cur));
                seen += 1;
                assert!(seen <= self.len, "LRU list longer than len");
                prev = cur;
                cur = link.next;
            }
            assert_eq!(prev, self.tail);
            assert_eq!(seen, self.len);
            // Walk the free list.
            let mut n_free = 0;
            let mut cur = self.free;
            while cur != NIL {
                assert!(self.slots[cur as usize].is_none());
                n_free += 1;
                assert!(n_free <= self.slots.len());
                cur = self.links[cur as usize].next;
            }
            assert_eq!(n_free + self.len, self.slots.len());
        }
    }

    #[test]
    fn insert_then_find_from_both_directions() {
        let mut table: FlowTable<u32> = FlowTable::new(config(8, 30, 300), 1);
        let mut reports = Reports::new();
        let (k, d) = FlowKey::new(v4(1), 40_000, v4(2), 80, IpProto::TCP, 0);
        let (entry, created) = table.touch(&k, d, t(1), &mut recorder(&mut reports));
        assert!(created);
        assert_eq!((entry.first_dir, entry.ext), (d, 0));
        assert_eq!(entry.counters, FlowCounters::starting_at(t(1)));
        entry.counters.record(d, t(1), 60, 0x02);
        entry.ext = 7;

        let (k2, d2) = FlowKey::new(v4(2), 80, v4(1), 40_000, IpProto::TCP, 0);
        assert_eq!((k2, d2), (k, d.reverse()));
        let (entry, created) = table.touch(&k2, d2, t(2), &mut recorder(&mut reports));
        assert!(!created);
        assert_eq!((entry.first_dir, entry.ext), (d, 7));
        assert_eq!(entry.counters.last_seen, t(2));
        entry.counters.record(d2, t(2), 40, 0x12);

        let entry = table.get(&k).expect("flow is live");
        assert_eq!(entry.counters.packets[d.index()], 1);
        assert_eq!(entry.counters.packets[d2.index()], 1);
        assert_eq!(entry.counters.bytes[d2.index()], 40);
        assert_eq!(entry.counters.tcp_flags, {
            let mut f = [0; 2];
            f[d.index()] = 0x02;
            f[d2.index()] = 0x12;
            f
        });
        assert_eq!(table.len(), 1);
        assert!(table.get(&key(9)).is_none());
        assert!(reports.is_empty());
        table.check_invariants();
    }

    #[test]
    fn capacity_is_never_exceeded_and_eviction_takes_the_least_recently_touched() {
        let mut table: FlowTable<u32> = FlowTable::new(config(3, 30, 300), 2);
        let mut reports = Reports::new();
        for n in 1..=3 {
            touch_lo_to_hi(&mut table, n, t(1), &mut reports);
        }
        // Touch 1 again: 2 becomes the oldest.
        table.touch(
            &key(1),
            Direction::HiToLo,
            t(2),
            &mut recorder(&mut reports),
        );
        let (_, created) = table.touch(
            &key(4),
            Direction::LoToHi,
            t(3),
            &mut recorder(&mut reports),
        );
        assert!(created);
        assert_eq!(table.len(), 3);
        assert_eq!(reports.len(), 1);
        assert_eq!(
            (reports[0].0, reports[0].1),
            (key(2), ExpireReason::Evicted)
        );
        assert!(table.get(&key(2)).is_none());
        assert_eq!(keys_in_lru_order(&table), vec![key(3), key(1), key(4)]);

        touch_lo_to_hi(&mut table, 5, t(4), &mut reports);
        touch_lo_to_hi(&mut table, 6, t(4), &mut reports);
        let evicted: Vec<_> = reports.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(
            evicted,
            vec![
                (key(2), ExpireReason::Evicted),
                (key(3), ExpireReason::Evicted),
                (key(1), ExpireReason::Evicted)
            ]
        );
        assert_eq!(table.len(), 3);
        assert_eq!(table.stats().evicted, 3);
        assert_eq!(table.stats().peak_len, 3);
        assert_stats_add_up(&table);
        table.check_invariants();
    }

    #[test]
    fn full_table_reports_an_already_idle_head_as_idle() {
        let mut table: FlowTable<u32> = FlowTable::new(config(2, 10, 300), 3);
        let mut reports = Reports::new();
        touch_lo_to_hi(&mut table, 1, t(0), &mut reports);
        touch_lo_to_hi(&mut table, 2, t(5), &mut reports);
        // No `expire` call; at t=12 flow 1 has idled out, flow 2 has not.
        touch_lo_to_hi(&mut table, 3, t(12), &mut reports);
        touch_lo_to_hi(&mut table, 4, t(12), &mut reports);
        let got: Vec<_> = reports.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(
            got,
            vec![
                (key(1), ExpireReason::Idle),
                (key(2), ExpireReason::Evicted)
            ]
        );
        let s = table.stats();
        assert_eq!((s.expired_idle, s.evicted), (1, 1));
        assert_stats_add_up(&table);
    }

    #[test]
    fn idle_expiry_follows_packet_time() {
        let mut table: FlowTable<u32> = FlowTable::new(config(8, 10, 300), 4);
        let mut reports = Reports::new();
        touch_lo_to_hi(&mut table, 1, t(0), &mut reports);
        touch_lo_to_hi(&mut table, 2, t(5), &mut reports);
        assert_eq!(table.expire(t(9), &mut recorder(&mut reports)), 0);
        assert_eq!(table.expire(t(10), &mut recorder(&mut reports)), 1);
        assert_eq!((reports[0].0, reports[0].1), (key(1), ExpireReason::Idle));
        // Time going backwards expires nothing.
        assert_eq!(table.expire(t(3), &mut recorder(&mut reports)), 0);
        assert_eq!(table.expire(t(15), &mut recorder(&mut reports)), 1);
        assert_eq!((reports[1].0, reports[1].1), (key(2), ExpireReason::Idle));
        assert!(table.is_empty());
        assert_eq!(table.expire(t(100), &mut recorder(&mut reports)), 0);
        assert_eq!(table.stats().expired_idle, 2);
        assert_stats_add_up(&table);
        table.check_invariants();
    }

    #[test]
    fn budgeted_expiry_takes_the_oldest_first_and_leaves_the_rest_correct() {
        let mut table: FlowTable<u32> = FlowTable::new(config(16, 10, 300), 9);
        let mut reports = Reports::new();
        for n in 1..=6 {
            touch_lo_to_hi(&mut table, n, t(u64::from(n)), &mut reports);
        }
        // All six idled out by t(20); a budget of 2 ends the two oldest only.
        assert_eq!(
            table.expire_at_most(t(20), 2, &mut recorder(&mut reports)),
            2
        );
        let ended: Vec<FlowKey> = reports.iter().map(|r| r.0).collect();
        assert_eq!(ended, [key(1), key(2)]);
        assert_eq!(table.len(), 4);
        // A flow still waiting is restarted by its next packet, its old life reported Idle
        // with its old counters, exactly as if expiry had run.
        touch_lo_to_hi(&mut table, 4, t(20), &mut reports);
        let (k, reason, counters) = reports[2];
        assert_eq!((k, reason), (key(4), ExpireReason::Idle));
        assert_eq!(counters.last_seen, t(4));
        assert_eq!(
            table.get(&key(4)).map(|e| e.counters.first_seen),
            Some(t(20))
        );
        // The next call goes on where this one stopped, oldest first, and spares the
        // restarted flow.
        assert_eq!(
            table.expire_at_most(t(20), 10, &mut recorder(&mut reports)),
            3
        );
        let ended: Vec<FlowKey> = reports[3..].iter().map(|r| r.0).collect();
        assert_eq!(ended, [key(3), key(5), key(6)]);
        assert_eq!(keys_in_lru_order(&table), [key(4)]);
        assert_eq!(
            table.expire_at_most(t(20), 0, &mut recorder(&mut reports)),
            0
        );
        assert_stats_add_up(&table);
        table.check_invariants();
    }

    #[test]
    fn out_of_order_packets_neither_panic_nor_move_last_seen_back() {
        let mut table: FlowTable<u32> = FlowTable::new(config(4, 10, 300), 5);
        let mut reports = Reports::new();
        let (e, _) = table.touch(
            &key(1),
            Direction::LoToHi,
            t(20),
            &mut recorder(&mut reports),
        );
        e.counters.record(Direction::LoToHi, t(20), 1, 0);
        // A packet stamped before the flow's first packet.
        let (e, created) = table.touch(
            &key(1),
            Direction::HiToLo,
            t(7),
            &mut recorder(&mut reports),
        );
        assert!(!created);
        e.counters.record(Direction::HiToLo, t(7), 1, 0);
        assert_eq!(e.counters.first_seen, t(20));
        assert_eq!(e.counters.last_seen, t(20));
        // A flow first seen "in the past" sits at the young end; it still expires by its own
        // `last_seen`, never early.
        touch_lo_to_hi(&mut table, 2, t(2), &mut reports);
        assert_eq!(table.expire(t(12), &mut recorder(&mut reports)), 0);
        assert_eq!(table.expire(t(30), &mut recorder(&mut reports)), 2);
        assert_eq!(
            reports.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![key(1), key(2)]
        );
        touch_lo_to_hi(&mut table, 3, Timestamp::ZERO, &mut reports);
        touch_lo_to_hi(&mut table, 3, Timestamp(u64::MAX), &mut reports);
        table.expire(Timestamp(u64::MAX), &mut recorder(&mut reports));
        table.expire(Timestamp::ZERO, &mut recorder(&mut reports));
        assert_stats_add_up(&table);
        table.check_invariants();
    }

    #[test]
    fn touching_an_idled_out_flow_restarts_it() {
        let mut table: FlowTable<u32> = FlowTable::new(config(4, 10, 300), 6);
        let mut reports = Reports::new();
        let (e, _) = table.touch(
            &key(1),
            Direction::LoToHi,
            t(0),
            &mut recorder(&mut reports),
        );
        e.ext = 9;
        e.counters.record(Direction::LoToHi, t(0), 1, 0);
        let (e, created) = table.touch(
            &key(1),
            Direction::HiToLo,
            t(10),
            &mut recorder(&mut reports),
        );
        assert!(created);
        assert_eq!((e.ext, e.first_dir), (0, Direction::HiToLo));
        assert_eq!(e.counters, FlowCounters::starting_at(t(10)));
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].1, ExpireReason::Idle);
        assert_eq!(reports[0].2.packets, [1, 0]);
        let s = table.stats();
        assert_eq!((s.inserted, s.expired_idle), (2, 1));
        assert_stats_add_up(&table);
    }

    #[test]
    fn set_timeouts_applies_to_flows_already_in_the_table() {
        let mut table: FlowTable<u32> = FlowTable::new(config(4, 30, 60), 7);
        let mut reports = Reports::new();
        touch_lo_to_hi(&mut table, 1, t(0), &mut reports);
        assert_eq!(table.expire(t(20), &mut recorder(&mut reports)), 0);
        table.set_timeouts(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(table.config().idle_timeout, Duration::from_secs(10));
        assert_eq!(table.capacity(), 4, "the capacity stays as allocated");
        assert_eq!(table.expire(t(20), &mut recorder(&mut reports)), 1);
        assert_eq!(reports[0].1, ExpireReason::Idle);
        assert_stats_add_up(&table);
    }

    #[test]
    fn active_timeout_reports_and_restarts_counters_keeping_ext() {
        let mut table: FlowTable<u32> = FlowTable::new(config(4, 30, 60), 7);
        let mut reports = Reports::new();
        let mut now = 0;
        let (e, _) = table.touch(
            &key(1),
            Direction::LoToHi,
            t(now),
            &mut recorder(&mut reports),
        );
        e.ext = 7;
        e.counters.record(Direction::LoToHi, t(now), 100, 0);
        while now < 59 {
            now += 1;
            let (e, created) = table.touch(
                &key(1),
                Direction::HiToLo,
                t(now),
                &mut recorder(&mut reports),
            );
            assert!(!created);
            e.counters.record(Direction::HiToLo, t(now), 10, 0);
        }
        assert!(reports.is_empty());
        let (e, created) = table.touch(
            &key(1),
            Direction::HiToLo,
            t(60),
            &mut recorder(&mut reports),
        );
        assert!(!created);
        assert_eq!((e.ext, e.first_dir), (7, Direction::LoToHi));
        assert_eq!(e.counters, FlowCounters::starting_at(t(60)));
        e.counters.record(Direction::HiToLo, t(60), 10, 0);
        assert_eq!(reports.len(), 1);
        let (k, reason, counters) = reports[0];
        assert_eq!((k, reason), (key(1), ExpireReason::Active));
        assert_eq!(counters.first_seen, t(0));
        assert_eq!(counters.last_seen, t(59));
        assert_eq!(counters.packets, [1, 59]);
        assert_eq!(counters.bytes, [100, 590]);
        assert_eq!(table.stats().expired_active, 1);
        assert_eq!(table.len(), 1);
        // The next report comes one active timeout after the restart.
        for secs in [85, 110] {
            table.touch(
                &key(1),
                Direction::HiToLo,
                t(secs),
                &mut recorder(&mut reports),
            );
        }
        table.touch(
            &key(1),
            Direction::HiToLo,
            t(119),
            &mut recorder(&mut reports),
        );
        assert_eq!(reports.len(), 1);
        table.touch(
            &key(1),
            Direction::HiToLo,
            t(120),
            &mut recorder(&mut reports),
        );
        assert_eq!(reports.len(), 2);
        assert_stats_add_up(&table);
    }

    #[test]
    fn drain_flushes_everything_in_lru_order_and_the_table_is_reusable() {
        let mut table: FlowTable<u32> = FlowTable::new(config(4, 30, 300), 8);
        let bytes = table.allocated_bytes();
        let mut reports = Reports::new();
        for round in 0..3 {
            for n in [3, 1, 2, 4, 5] {
                touch_lo_to_hi(&mut table, n, t(round), &mut reports);
            }
            reports.clear();
            assert_eq!(table.drain(&mut recorder(&mut reports)), 4);
            let got: Vec<_> = reports.iter().map(|r| (r.0, r.1)).collect();
            let want: Vec<_> = [1, 2, 4, 5]
                .into_iter()
                .map(|n| (key(n), ExpireReason::Flushed))
                .collect();
            assert_eq!(got, want);
            assert!(table.is_empty());
            assert!(table.get(&key(5)).is_none());
            assert_eq!(table.iter().count(), 0);
            table.check_invariants();
        }
        assert_eq!(table.drain(&mut recorder(&mut reports)), 0);
        assert_eq!(table.allocated_bytes(), bytes);
        let s = table.stats();
        assert_eq!((s.inserted, s.evicted, s.flushed), (15, 3, 12));
        assert_stats_add_up(&table);
    }

    #[test]
    fn remove_returns_the_flow_and_frees_its_slot() {
        let mut table: FlowTable<u32> = FlowTable::new(config(2, 30, 300), 9);
        let mut reports = Reports::new();
        let (e, _) = table.touch(
            &key(1),
            Direction::LoToHi,
            t(1),
            &mut recorder(&mut reports),
        );
        e.ext = 5;
        touch_lo_to_hi(&mut table, 2, t(1), &mut reports);
        let removed = table.remove(&key(1)).expect("flow 1 is live");
        assert_eq!((removed.key, removed.ext), (key(1), 5));
        assert!(table.remove(&key(1)).is_none());
        assert_eq!(table.len(), 1);
        // The freed slot takes the next flow without evicting.
        touch_lo_to_hi(&mut table, 3, t(2), &mut reports);
        assert!(reports.is_empty());
        assert_eq!(keys_in_lru_order(&table), vec![key(2), key(3)]);
        assert_eq!(table.stats().removed, 1);
        assert_stats_add_up(&table);
        table.check_invariants();
    }

    #[test]
    fn get_mut_changes_state_without_touching() {
        let mut table: FlowTable<u32> = FlowTable::new(config(2, 30, 300), 10);
        let mut reports = Reports::new();
        touch_lo_to_hi(&mut table, 1, t(1), &mut reports);
        touch_lo_to_hi(&mut table, 2, t(1), &mut reports);
        table.get_mut(&key(1)).expect("live").ext = 3;
        touch_lo_to_hi(&mut table, 3, t(1), &mut reports);
        assert_eq!(
            (reports[0].0, reports[0].1),
            (key(1), ExpireReason::Evicted)
        );
    }

    #[test]
    fn stats_add_up_over_a_mixed_workload() {
        let mut table: FlowTable<u32> = FlowTable::new(config(50, 20, 60), 11);
        let mut reports = Reports::new();
        let mut x: u32 = 1;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let now = Timestamp(i * SECOND / 10);
            // Three packets in four go to 20 hot flows, the rest to 100 cold ones.
            let k = if x % 4 == 0 {
                key(20 + (x / 4 % 100) as u8)
            } else {
                key((x / 4 % 20) as u8)
            };
            table.touch(&k, Direction::LoToHi, now, &mut recorder(&mut reports));
            if i % 7 == 0 {
                table.expire(now, &mut recorder(&mut reports));
            }
            if i % 101 == 0 {
                table.remove(&k);
            }
            if i % 5_000 == 0 {
                table.drain(&mut recorder(&mut reports));
            }
            assert_stats_add_up(&table);
        }
        table.check_invariants();
        let s = table.stats();
        assert!(s.evicted > 0 && s.expired_idle > 0 && s.expired_active > 0 && s.flushed > 0);
        assert_eq!(s.peak_len, 50);
        let count = |r| reports.iter().filter(|x| x.1 == r).count() as u64;
        assert_eq!(count(ExpireReason::Evicted), s.evicted);
        assert_eq!(count(ExpireReason::Idle), s.expired_idle);
        assert_eq!(count(ExpireReason::Active), s.expired_active);
        assert_eq!(count(ExpireReason::Flushed), s.flushed);
    }

    #[test]
    fn capacity_is_clamped_to_at_least_one() {
        let mut table: FlowTable<u32> = FlowTable::new(config(0, 30, 300), 12);
        assert_eq!(table.capacity(), 1);
        let mut reports = Reports::new();
        touch_lo_to_hi(&mut table, 1, t(1), &mut reports);
        touch_lo_to_hi(&mut table, 2, t(1), &mut reports);
        assert_eq!(table.len(), 1);
        assert_eq!(reports.len(), 1);
        table.check_invariants();
    }

    #[test]
    fn hash_depends_on_the_seed() {
        let a: FlowTable<()> = FlowTable::new(config(1, 1, 1), 1);
        let b: FlowTable<()> = FlowTable::new(config(1, 1, 1), 2);
        let a2: FlowTable<()> = FlowTable::new(config(1, 1, 1), 1);
        assert_ne!(a.hash_key(&key(1)), b.hash_key(&key(1)));
        assert_eq!(a.hash_key(&key(1)), a2.hash_key(&key(1)));
        assert_ne!(a.hash_key(&key(1)), a.hash_key(&key(2)));
        // Each field matters.
        let base = key(1);
        let variants = [
            FlowKey { tunnel: 1, ..base },
            FlowKey {
                proto: IpProto::UDP,
                ..base
            },
            FlowKey {
                lo_port: base.lo_port ^ 1,
                ..base
            },
            FlowKey {
                hi_port: base.hi_port ^ 1,
                ..base
            },
        ];
        for v in variants {
            assert_ne!(a.hash_key(&v), a.hash_key(&base));
        }
    }

    #[test]
    fn memory_per_flow_is_within_budget() {
        assert_eq!(
            size_of::<Option<FlowEntry<()>>>(),
            size_of::<FlowEntry<()>>()
        );
        #[cfg(target_pointer_width = "64")]
        assert_eq!(FlowTable::<()>::approx_bytes_per_flow(), 139);
        assert!(FlowTable::<[u64; 6]>::approx_bytes_per_flow() <= 256);
        assert!(FlowTable::<[u64; 14]>::approx_bytes_per_flow() <= 256);
        let mut ignore = |_: &FlowEntry<()>, _| {};
        let per_flow = FlowTable::<()>::approx_bytes_per_flow();
        for capacity in [1, 7, 1_000, 5_000, 100_000, 131_072] {
            let mut table: FlowTable<()> = FlowTable::new(config(capacity, 1, 1), 13);
            // At most the figure per flow, plus the rounding up to a whole 64-byte group.
            assert!(
                table.allocated_bytes() <= capacity * per_flow + INDEX_GROUP_BYTES,
                "{}",
                table.allocated_bytes()
            );
            if capacity > 5_000 {
                continue;
            }
            // Full: the index has its largest size, exactly the figure up to that rounding.
            let mut k = key(0);
            for i in 0..capacity as u64 {
                k.tunnel = i;
                table.touch(&k, Direction::LoToHi, t(1), &mut ignore);
            }
            let index_bytes = (2 * capacity).div_ceil(GROUP_LEN) * INDEX_GROUP_BYTES;
            assert_eq!(
                table.allocated_bytes(),
                capacity * (per_flow - INDEX_BYTES_PER_FLOW_MAX) + index_bytes
            );
            assert!(index_bytes <= capacity * INDEX_BYTES_PER_FLOW_MAX + INDEX_GROUP_BYTES);
        }
    }

    #[test]
    fn index_grows_with_the_live_flows_not_with_the_capacity() {
        let mut table: FlowTable<()> = FlowTable::new(config(1_000_000, 3_600, 3_600), 15);
        let small = table.index.buckets();
        assert_eq!(small, 2_051, "1,024 flows at half load, in groups of seven");
        let mut ignore = |_: &FlowEntry<()>, _| {};
        let mut k = key(0);
        for i in 0..100u64 {
            k.tunnel = i;
            table.touch(&k, Direction::LoToHi, t(1), &mut ignore);
        }
        assert_eq!(
            table.index.buckets(),
            small,
            "a small input keeps the small index"
        );
        for i in 0..50_000u64 {
            k.tunnel = i;
            table.touch(&k, Direction::LoToHi, t(1), &mut ignore);
        }
        let grown = table.index.buckets();
        // At most half full, and at most one doubling beyond what 50,000 flows need.
        assert!(grown >= 2 * 50_000, "{grown}");
        assert!(grown <= 2 * 2 * 50_000, "{grown}");
        table.check_invariants();
        // Churn below the peak never grows it again.
        for i in 0..200_000u64 {
            // The oldest live flow leaves as a new one comes: 50,000 stay live.
            k.tunnel = if i < 50_000 {
                i
            } else {
                1_000_000 + i - 50_000
            };
            assert!(table.remove(&k).is_some());
            k.tunnel = 1_000_000 + i;
            table.touch(&k, Direction::LoToHi, t(1), &mut ignore);
        }
        assert_eq!(table.index.buckets(), grown);
        table.check_invariants();
        // A tiny capacity never sizes the index beyond what the capacity needs.
        let tiny: FlowTable<()> = FlowTable::new(config(3, 1, 1), 16);
        assert_eq!(tiny.index.buckets(), GROUP_LEN, "one group");
    }

    #[test]
    fn index_never_grows_under_churn_on_a_full_table() {
        let mut table: FlowTable<()> = FlowTable::new(config(1_000, 3_600, 3_600), 14);
        let bytes = table.allocated_bytes();
        let buckets = table.index.buckets();
        let mut ignore = |_: &FlowEntry<()>, _| {};
        for i in 0..200_000u32 {
            let mut k = key(0);
            k.tunnel = u64::from(i);
            table.touch(&k, Direction::LoToHi, t(1), &mut ignore);
            if i % 3 == 0 {
                k.tunnel = u64::from(i / 2);
                table.remove(&k);
            }
        }
        assert_eq!(table.index.buckets(), buckets);
        assert_eq!(table.allocated_bytes(), bytes);
        table.check_invariants();
    }

    /// Distinct keys: flow `n`'s tunnel context is `n`.
    fn numbered(n: u64) -> FlowKey {
        FlowKey {
            tunnel: n,
            ..key(0)
        }
    }

    #[test]
    fn removing_flows_keeps_every_other_flow_findable() {
        // 3,000 flows in an index of 8,001 buckets, removed in a scrambled order: each removal
        // shifts back the rest of its probe run, and every flow still live must stay reachable.
        let mut table: FlowTable<u32> = FlowTable::new(config(4_000, 3_600, 3_600), 17);
        let mut reports = Reports::new();
        let n = 3_000u64;
        for i in 0..n {
            let (e, _) = table.touch(
                &numbered(i),
                Direction::LoToHi,
                t(1),
                &mut recorder(&mut reports),
            );
            e.ext = i as u32;
        }
        assert_eq!(
            table.index.buckets(),
            8_000usize.next_multiple_of(GROUP_LEN),
            "twice the capacity"
        );
        // 1,999 is prime to 3,000, so this visits every flow once.
        for step in 0..n {
            let victim = step * 1_999 % n;
            let removed = table.remove(&numbered(victim)).expect("live");
            assert_eq!(removed.ext, victim as u32);
            if step % 100 == 0 || step > n - 20 {
                table.check_invariants();
                for later in step + 1..n {
                    let k = numbered(later * 1_999 % n);
                    assert_eq!(table.get(&k).map(|e| e.key), Some(k));
                }
            }
            assert!(table.get(&numbered(victim)).is_none());
        }
        assert!(table.is_empty());
        assert!(reports.is_empty());
        assert_eq!(table.stats().removed, n);
        assert_stats_add_up(&table);
    }

    #[test]
    fn full_table_evicts_and_keeps_the_newest_flows_findable() {
        let capacity = 1_000u64;
        let mut table: FlowTable<u32> = FlowTable::new(config(capacity as usize, 3_600, 3_600), 18);
        let mut reports = Reports::new();
        for i in 0..20 * capacity {
            let (_, created) = table.touch(
                &numbered(i),
                Direction::LoToHi,
                t(1),
                &mut recorder(&mut reports),
            );
            assert!(created);
            assert_eq!(table.len() as u64, (i + 1).min(capacity));
            if i % 997 == 0 {
                table.check_invariants();
                let oldest_live = (i + 1).saturating_sub(capacity);
                for j in oldest_live..=i {
                    assert!(table.get(&numbered(j)).is_some(), "flow {j} lost at {i}");
                }
                if oldest_live > 0 {
                    assert!(table.get(&numbered(oldest_live - 1)).is_none());
                }
            }
        }
        // Every flow beyond the capacity evicted the oldest one, in order.
        assert_eq!(reports.len() as u64, 19 * capacity);
        for (n, r) in reports.iter().enumerate() {
            assert_eq!((r.0, r.1), (numbered(n as u64), ExpireReason::Evicted));
        }
        assert_eq!(
            table.index.buckets(),
            (2 * capacity as usize).next_multiple_of(GROUP_LEN)
        );
        assert_stats_add_up(&table);
        table.check_invariants();
    }

    #[test]
    fn prefetch_changes_nothing_for_any_key() {
        let mut table: FlowTable<u32> = FlowTable::new(config(64, 30, 300), 19);
        let mut reports = Reports::new();
        // Empty table, then absent keys in a populated one, then present keys.
        table.prefetch(&key(1));
        table.prefetch_slot(&key(1));
        for n in 0..40 {
            touch_lo_to_hi(&mut table, n, t(1), &mut reports);
        }
        let before = (
            keys_in_lru_order(&table),
            table.stats(),
            table.allocated_bytes(),
        );
        for n in 40..=255 {
            table.prefetch(&key(n));
            table.prefetch_slot(&key(n));
        }
        for n in 0..40 {
            table.prefetch(&key(n));
            table.prefetch_slot(&key(n));
        }
        let after = (
            keys_in_lru_order(&table),
            table.stats(),
            table.allocated_bytes(),
        );
        assert_eq!(before, after);
        assert!(reports.is_empty());
        // Stage 2 finds the slot a lookup would use for every live key (32-bit tags: a
        // collision among 40 keys is possible in principle, not with this seed).
        for n in 0..40 {
            let hash = table.hash_key(&key(n));
            assert_eq!(table.index.first_candidate(hash), table.find(hash, &key(n)));
        }
        for n in 40..=255 {
            assert_eq!(table.index.first_candidate(table.hash_key(&key(n))), None);
        }
        // A drained table and a table of one.
        table.drain(&mut recorder(&mut reports));
        table.prefetch(&key(3));
        table.prefetch_slot(&key(3));
        let one: FlowTable<()> = FlowTable::new(config(0, 1, 1), 20);
        one.prefetch(&key(3));
        one.prefetch_slot(&key(3));
        assert!(one.is_empty());
        table.check_invariants();
    }

    #[test]
    fn prefetched_batch_touches_like_a_plain_one() {
        // The batch loop of the `prefetch` documentation, against the same packets without
        // prefetching: same flows, same counts, same reports.
        let run = |prefetch: bool| {
            let mut table: FlowTable<u32> = FlowTable::new(config(500, 30, 300), 21);
            let mut reports = Reports::new();
            let packets: Vec<FlowKey> = (0..5_000u64).map(|i| numbered(i * 7 % 701)).collect();
            for batch in packets.chunks(64) {
                for (i, k) in batch.iter().enumerate() {
                    if prefetch {
                        if let Some(ahead) = batch.get(i + 8) {
                            table.prefetch(ahead);
                        }
                        if let Some(ahead) = batch.get(i + 4) {
                            table.prefetch_slot(ahead);
                        }
                    }
                    let (e, _) =
                        table.touch(k, Direction::LoToHi, t(1), &mut recorder(&mut reports));
                    e.ext += 1;
                }
            }
            table.check_invariants();
            let live: Vec<(FlowKey, u32)> = table.iter().map(|e| (e.key, e.ext)).collect();
            (live, reports, table.stats())
        };
        let plain = run(false);
        assert_eq!(plain.2.evicted, 4_500, "the workload evicts");
        assert_eq!(run(true), plain);
    }

    mod model {
        //! The table against a plain model: a `Vec` in LRU order (oldest first).
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            /// Touch key `key` in direction `lo_to_hi`, `dt` seconds after the previous op's
            /// time (negative: out of order).
            Touch {
                key: u8,
                lo_to_hi: bool,
                dt: i8,
            },
            /// Expire at most `budget` flows (`None`: all of them).
            Expire {
                dt: i8,
                budget: Option<u8>,
            },
            Remove {
                key: u8,
            },
            Drain,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                8 => (0u8..10, any::<bool>(), -3i8..8)
                    .prop_map(|(key, lo_to_hi, dt)| Op::Touch { key, lo_to_hi, dt }),
                2 => (-3i8..12, proptest::option::of(0u8..4))
                    .prop_map(|(dt, budget)| Op::Expire { dt, budget }),
                1 => (0u8..10).prop_map(|key| Op::Remove { key }),
                1 => Just(Op::Drain),
            ]
        }

        #[derive(Clone, Debug, PartialEq, Eq)]
        struct Flow {
            key: FlowKey,
            first_dir: Direction,
            counters: FlowCounters,
            ext: u32,
        }

        #[derive(Default)]
        struct Model {
            capacity: usize,
            idle: Duration,
            active: Duration,
            /// Live flows, least recently touched first.
            flows: Vec<Flow>,
            stats: FlowTableStats,
        }

        type Report = (Flow, ExpireReason);

        impl Model {
            fn touch(
                &mut self,
                key: FlowKey,
                dir: Direction,
                now: Timestamp,
                out: &mut Vec<Report>,
            ) {
                let fresh = Flow {
                    key,
                    first_dir: dir,
                    counters: FlowCounters::starting_at(now),
                    ext: 0,
                };
                let mut flow = match self.flows.iter().position(|f| f.key == key) {
                    Some(pos) => {
                        let mut flow = self.flows.remove(pos);
                        if flow.counters.last_seen + self.idle <= now {
                            out.push((flow, ExpireReason::Idle));
                            self.stats.expired_idle += 1;
                            self.stats.inserted += 1;
                            fresh
                        } else {
                            if now.saturating_since(flow.counters.first_seen) >= self.active {
                                out.push((flow.clone(), ExpireReason::Active));
                                self.stats.expired_active += 1;
                                flow.counters = FlowCounters::starting_at(now);
                            }
                            flow
                        }
                    }
                    None => {
                        if self.flows.len() == self.capacity {
                            let oldest = self.flows.remove(0);
                            if oldest.counters.last_seen + self.idle <= now {
                                self.stats.expired_idle += 1;
                                out.push((oldest, ExpireReason::Idle));
                            } else {
                                self.stats.evicted += 1;
                                out.push((oldest, ExpireReason::Evicted));
                            }
                        }
                        self.stats.inserted += 1;
                        fresh
                    }
                };
                flow.counters.record(dir, now, 1, 0);
                flow.ext += 1;
                self.flows.push(flow);
                self.stats.peak_len = self.stats.peak_len.max(self.flows.len() as u64);
            }

            fn expire(&mut self, now: Timestamp, budget: usize, out: &mut Vec<Report>) {
                let mut n = 0;
                while let Some(oldest) = self.flows.first() {
                    if oldest.counters.last_seen + self.idle > now || n == budget {
                        break;
                    }
                    n += 1;
                    out.push((self.flows.remove(0), ExpireReason::Idle));
                    self.stats.expired_idle += 1;
                }
            }
        }

        fn report(out: &mut Vec<Report>) -> impl FnMut(&FlowEntry<u32>, ExpireReason) + '_ {
            |e, r| {
                let flow = Flow {
                    key: e.key,
                    first_dir: e.first_dir,
                    counters: e.counters,
                    ext: e.ext,
                };
                out.push((flow, r));
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn table_matches_model(
                capacity in 1usize..6,
                idle in 1u64..20,
                active in 1u64..40,
                seed in any::<u64>(),
                ops in proptest::collection::vec(op(), 0..150),
            ) {
                let cfg = config(capacity, idle, active);
                let mut table: FlowTable<u32> = FlowTable::new(cfg, seed);
                let mut model = Model {
                    capacity,
                    idle: cfg.idle_timeout,
                    active: cfg.active_timeout,
                    ..Model::default()
                };
                let mut now: i64 = 1_000;
                for op in ops {
                    let mut got = Vec::new();
                    let mut want = Vec::new();
                    match op {
                        Op::Touch { key: n, lo_to_hi, dt } => {
                            now = (now + i64::from(dt)).max(0);
                            let ts = t(now as u64);
                            let dir = if lo_to_hi { Direction::LoToHi } else { Direction::HiToLo };
                            let was_live = model.flows.iter().any(|f| f.key == key(n));
                            let (entry, created) = table.touch(&key(n), dir, ts, &mut report(&mut got));
                            entry.counters.record(dir, ts, 1, 0);
                            entry.ext += 1;
                            model.touch(key(n), dir, ts, &mut want);
                            let restarted = want.iter().any(|r| r.0.key == key(n) && r.1 == ExpireReason::Idle);
                            prop_assert_eq!(created, !was_live || restarted);
                        }
                        Op::Expire { dt, budget } => {
                            now = (now + i64::from(dt)).max(0);
                            let ts = t(now as u64);
                            let budget = budget.map_or(usize::MAX, usize::from);
                            let n = if budget == usize::MAX {
                                table.expire(ts, &mut report(&mut got))
                            } else {
                                table.expire_at_most(ts, budget, &mut report(&mut got))
                            };
                            model.expire(ts, budget, &mut want);
                            prop_assert_eq!(n, want.len());
                        }
                        Op::Remove { key: n } => {
                            let removed = table.remove(&key(n)).map(|e| (e.key, e.counters, e.ext));
                            let expected = model
                                .flows
                                .iter()
                                .position(|f| f.key == key(n))
                                .map(|pos| model.flows.remove(pos))
                                .map(|f| (f.key, f.counters, f.ext));
                            if expected.is_some() {
                                model.stats.removed += 1;
                            }
                            prop_assert_eq!(removed, expected);
                        }
                        Op::Drain => {
                            table.drain(&mut report(&mut got));
                            want.extend(model.flows.drain(..).map(|f| (f, ExpireReason::Flushed)));
                            model.stats.flushed += want.len() as u64;
                        }
                    }
                    // Same reports in the same order: in particular every evicted flow was the
                    // least recently touched one.
                    prop_assert_eq!(&got, &want);
                    prop_assert!(table.len() <= capacity);
                    prop_assert_eq!(table.len(), model.flows.len());
                    let live: Vec<Flow> = table
                        .iter()
                        .map(|e| Flow { key: e.key, first_dir: e.first_dir, counters: e.counters, ext: e.ext })
                        .collect();
                    prop_assert_eq!(&live, &model.flows);
                    for f in &model.flows {
                        prop_assert_eq!(table.get(&f.key).map(|e| e.ext), Some(f.ext));
                    }
                    prop_assert_eq!(table.stats(), model.stats);
                    assert_stats_add_up(&table);
                    table.check_invariants();
                }
            }
        }
    }
}
