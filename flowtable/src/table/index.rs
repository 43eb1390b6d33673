//! The flow table's index: the slab slot of each live flow, found from the key's hash.
//!
//! Open addressing with linear probing over one `Vec<u64>`. An entry is
//! `(upper 32 bits of the hash) << 32 | (slot + 1)`; 0 is an empty bucket. The search for a hash
//! starts at its home bucket, `upper 32 bits * buckets >> 32` (a multiply-shift range reduction,
//! so the bucket count need not be a power of two), a function of the hash alone: a caller that
//! knows the key a few packets ahead can prefetch the home line, then read it and prefetch the
//! slot its tag names ([`FlowTable::prefetch`](super::FlowTable::prefetch)). The stored 32 bits
//! let a search skip foreign entries without reading their slab entries, and let growth and
//! deletion find any entry's home without rehashing its key.
//!
//! Deletion shifts the rest of the probe run back (no tombstones), so runs stay as short as the
//! load allows under any churn. Linear probing clusters, which is only fine with hashes an
//! attacker cannot aim: the table's foldhash is seeded per process (see `FlowTable::new`).
//! No method panics or loops without bound: every probe loop stops after one pass over the
//! buckets, and there is always an empty bucket because the caller keeps the live entries
//! below the bucket count.

use std::fmt;

/// An empty bucket.
const EMPTY: u64 = 0;

/// Most buckets: the home computation multiplies a 32-bit tag by the bucket count in 64 bits.
/// It is above `MAX_CAPACITY` (`u32::MAX - 1`), so a full table still has an empty bucket.
const MAX_BUCKETS: u64 = 1 << 32;

/// Bytes in a cache line (x86-64 and most aarch64 parts).
pub(super) const CACHE_LINE_BYTES: usize = 64;

/// Buckets searched by [`SlotIndex::first_candidate`] before it gives up: at the loads the
/// table keeps (at most one half) a probe run is rarely longer, and a prefetch hint must stay
/// cheap whatever the keys.
const CANDIDATE_PROBES: usize = 8;

/// Slab slots by key hash. See the module documentation.
pub(super) struct SlotIndex {
    /// The buckets; the length is the bucket count and changes only in [`SlotIndex::grow_to`].
    entries: Vec<u64>,
    /// Non-empty buckets (always below `entries.len()` while the caller keeps its bound).
    len: usize,
}

impl SlotIndex {
    /// An index of `buckets` empty buckets (at least 1, at most 2^32). The memory comes zeroed
    /// from the allocator, so its pages are touched only as entries land in them.
    pub(super) fn with_buckets(buckets: usize) -> SlotIndex {
        SlotIndex {
            entries: vec![EMPTY; clamp_buckets(buckets)],
            len: 0,
        }
    }

    /// Number of buckets.
    #[inline]
    pub(super) fn buckets(&self) -> usize {
        self.entries.len()
    }

    /// Largest bucket count [`SlotIndex::grow_to`] accepts.
    pub(super) fn max_buckets() -> usize {
        clamp_buckets(usize::MAX)
    }

    /// Number of live entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held on the heap.
    pub(super) fn allocation_size(&self) -> usize {
        self.entries.capacity() * size_of::<u64>()
    }

    /// The home bucket of `hash`.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        home(tag(hash), self.entries.len())
    }

    /// Starts loading the cache line of `hash`'s home bucket. Only that line: a probe run
    /// rarely leaves it at the loads the table keeps, and prefetching the next line as well
    /// when the home is near the end of its line measured no faster.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(first) = self.entries.get(self.home(hash)) {
            prefetch_line(first);
        }
    }

    /// The slot of the first entry on `hash`'s probe run whose stored tag matches, searching
    /// at most [`CANDIDATE_PROBES`] buckets: the slot a lookup would compare keys with first.
    /// A hint only (another key can share the tag).
    #[inline]
    pub(super) fn first_candidate(&self, hash: u64) -> Option<u32> {
        let n = self.entries.len();
        let tag = tag(hash);
        let mut i = home(tag, n);
        for _ in 0..CANDIDATE_PROBES.min(n) {
            let e = *self.entries.get(i)?;
            if e == EMPTY {
                return None;
            }
            if entry_tag(e) == tag {
                return Some(entry_slot(e));
            }
            i = next(i, n);
        }
        None
    }

    /// The slot of the entry for `hash` whose slot `is_key` accepts (it compares the slab's key).
    /// `is_key` runs only for entries with the same upper 32 hash bits.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let n = self.entries.len();
        let tag = tag(hash);
        let mut i = home(tag, n);
        for _ in 0..n {
            let e = *self.entries.get(i)?;
            if e == EMPTY {
                return None;
            }
            if entry_tag(e) == tag && is_key(entry_slot(e)) {
                return Some(entry_slot(e));
            }
            i = next(i, n);
        }
        None
    }

    /// True if the entry `(hash, slot)` is in the index.
    #[cfg(test)]
    pub(super) fn contains(&self, hash: u64, slot: u32) -> bool {
        self.position(entry(tag(hash), slot)).is_some()
    }

    /// Adds `slot` under `hash`. The caller makes sure the key is not in the index and that
    /// the index has room (`len() + 1 < buckets()`); false (nothing changed) if it has none.
    #[inline]
    pub(super) fn insert(&mut self, hash: u64, slot: u32) -> bool {
        let n = self.entries.len();
        if self.len + 1 >= n {
            return false;
        }
        let tag = tag(hash);
        let mut i = home(tag, n);
        for _ in 0..n {
            match self.entries.get_mut(i) {
                Some(e) if *e == EMPTY => {
                    *e = entry(tag, slot);
                    self.len += 1;
                    return true;
                }
                Some(_) => i = next(i, n),
                None => return false,
            }
        }
        false
    }

    /// Removes the entry `(hash, slot)`, moving back the entries after it on its run that
    /// their homes allow, so that no search ever needs to step over a hole. False if the entry
    /// is not in the index.
    pub(super) fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let Some(mut hole) = self.position(entry(tag(hash), slot)) else {
            return false;
        };
        let n = self.entries.len();
        let mut j = hole;
        // Each step moves `j` one bucket on; the run ends at an empty bucket, which exists
        // because `len < n`, and the bound covers a broken caller.
        for _ in 0..n {
            j = next(j, n);
            let e = match self.entries.get(j) {
                Some(&e) if e != EMPTY => e,
                _ => break,
            };
            // The entry at `j` may fill the hole only if its home is not on the cyclic stretch
            // (hole, j]: its search starts at the home and must still reach it.
            let home = home(entry_tag(e), n);
            if cyclic_distance(home, j, n) >= cyclic_distance(hole, j, n) {
                if let Some(h) = self.entries.get_mut(hole) {
                    *h = e;
                }
                hole = j;
            }
        }
        if let Some(h) = self.entries.get_mut(hole) {
            *h = EMPTY;
        }
        self.len -= 1;
        true
    }

    /// Moves every entry into a new array of `buckets` buckets (clamped to `len() + 1 ..=`
    /// [`SlotIndex::max_buckets`]); allocates once. Homes come from the stored tags: no key is
    /// rehashed and the slab is not read.
    pub(super) fn grow_to(&mut self, buckets: usize) {
        let buckets = clamp_buckets(buckets.max(self.len.saturating_add(1)));
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; buckets]);
        let n = self.entries.len();
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            let mut i = home(entry_tag(e), n);
            for _ in 0..n {
                match self.entries.get_mut(i) {
                    Some(slot) if *slot == EMPTY => {
                        *slot = e;
                        break;
                    }
                    _ => i = next(i, n),
                }
            }
        }
    }

    /// Empties every bucket, keeping the memory.
    pub(super) fn clear(&mut self) {
        self.entries.fill(EMPTY);
        self.len = 0;
    }

    /// Bucket holding exactly `wanted`.
    fn position(&self, wanted: u64) -> Option<usize> {
        let n = self.entries.len();
        let mut i = home(entry_tag(wanted), n);
        for _ in 0..n {
            let e = *self.entries.get(i)?;
            if e == EMPTY {
                return None;
            }
            if e == wanted {
                return Some(i);
            }
            i = next(i, n);
        }
        None
    }

    /// Checks the index's own invariants: `len` counts the non-empty buckets, and every entry
    /// is reachable from its home without crossing an empty bucket. Tests only.
    #[cfg(test)]
    pub(super) fn check(&self) {
        let n = self.entries.len();
        let live: Vec<(usize, u64)> = (0..n)
            .map(|i| (i, self.entries[i]))
            .filter(|&(_, e)| e != EMPTY)
            .collect();
        assert_eq!(live.len(), self.len);
        assert!(self.len < n, "no empty bucket left");
        for (i, e) in live {
            let home = home(entry_tag(e), n);
            let mut k = home;
            while k != i {
                assert_ne!(self.entries[k], EMPTY, "hole between home {home} and {i}");
                k = next(k, n);
            }
        }
    }
}

impl fmt::Debug for SlotIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotIndex")
            .field("buckets", &self.entries.len())
            .field("len", &self.len)
            .finish()
    }
}

/// Hints the processor to load the cache line holding `p` into every cache level.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
// The one unsafe operation of the crate; see the SAFETY comment and `benches/benches/flowtable.rs`
// (`flood/*_prefetch`) for the gain.
#[allow(unsafe_code)]
pub(super) fn prefetch_line<T>(p: *const T) {
    use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch is a hint: it never faults, whatever the address (valid, dangling or
    // unmapped), and it reads nothing into the program, so no memory is accessed in the sense
    // of the Rust memory model. `prefetcht0` is SSE, which every x86-64 processor has (it is in
    // the target's baseline features), so the instruction always exists.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
}

/// Elsewhere a prefetch is a no-op (the lookups are correct without it, only slower).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn prefetch_line<T>(_: *const T) {}

/// `buckets` within `1..=MAX_BUCKETS` (and within `usize`).
fn clamp_buckets(buckets: usize) -> usize {
    let max = usize::try_from(MAX_BUCKETS).unwrap_or(usize::MAX);
    buckets.clamp(1, max)
}

/// The upper 32 bits of a hash: the part stored in an entry and that places it.
#[inline]
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// The entry for `slot` under `tag` (never `EMPTY`: the slot field holds `slot + 1`, and slots
/// stay below `MAX_CAPACITY = u32::MAX - 1`).
#[inline]
fn entry(tag: u32, slot: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(slot.wrapping_add(1))
}

#[inline]
fn entry_tag(e: u64) -> u32 {
    (e >> 32) as u32
}

#[inline]
fn entry_slot(e: u64) -> u32 {
    (e as u32).wrapping_sub(1)
}

/// Home bucket of `tag` among `n` buckets: `tag * n / 2^32`, below `n` for `n <= 2^32`.
#[inline]
fn home(tag: u32, n: usize) -> usize {
    ((u64::from(tag) * n as u64) >> 32) as usize
}

/// The bucket after `i`, wrapping at `n`.
#[inline]
fn next(i: usize, n: usize) -> usize {
    let j = i + 1;
    if j >= n { 0 } else { j }
}

/// Steps from `from` forward to `to` among `n` buckets, wrapping.
#[inline]
fn cyclic_distance(from: usize, to: usize, n: usize) -> usize {
    if to >= from { to - from } else { to + n - from }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash whose tag is `tag` (the lower bits do not matter to the index).
    fn hash_with_tag(tag: u32) -> u64 {
        u64::from(tag) << 32 | 0xdead_beef
    }

    /// The tag whose home is bucket `b` of `n`.
    fn tag_at(b: usize, n: usize) -> u32 {
        let t = ((b as u64) << 32).div_ceil(n as u64) as u32;
        assert_eq!(home(t, n), b);
        t
    }

    #[test]
    fn home_stays_below_the_bucket_count() {
        for n in [1, 2, 3, 7, 1_000, 1 << 20, 1 << 32] {
            assert_eq!(home(0, n), 0);
            assert_eq!(home(u32::MAX, n), n - 1);
            assert_eq!(home(1 << 31, n), n / 2);
        }
    }

    #[test]
    fn entries_round_trip_and_are_never_empty() {
        for (tag, slot) in [(0, 0), (u32::MAX, u32::MAX - 2), (7, 12_345)] {
            let e = entry(tag, slot);
            assert_ne!(e, EMPTY);
            assert_eq!((entry_tag(e), entry_slot(e)), (tag, slot));
        }
    }

    #[test]
    fn backward_shift_keeps_every_other_entry_findable() {
        // Eight buckets; entries 0..5 all home at bucket 6, so the run wraps: 6, 7, 0, 1, 2, 3.
        // Entry 6 homes at bucket 1 and lands after them, at 4.
        let n = 8;
        let mut index = SlotIndex::with_buckets(n);
        let tags: Vec<u32> = (0..6).map(|k| tag_at(6, n) + k).collect();
        let mut all: Vec<(u64, u32)> = tags
            .iter()
            .enumerate()
            .map(|(slot, &t)| (hash_with_tag(t), slot as u32))
            .collect();
        all.push((hash_with_tag(tag_at(1, n)), 6));
        for &(h, s) in &all {
            assert!(index.insert(h, s));
        }
        index.check();
        assert_eq!(index.entries[4], entry(tag_at(1, n), 6));
        // Remove from the middle of the run, at the wrap, then the head.
        for victim in [2, 1, 0] {
            let (h, s) = all.remove(victim);
            assert!(index.remove(h, s));
            assert!(!index.remove(h, s), "removed twice");
            assert_eq!(index.find(h, |slot| slot == s), None);
            index.check();
            for &(h, s) in &all {
                assert_eq!(index.find(h, |slot| slot == s), Some(s));
            }
        }
        // The entry homed at 1 moved back to its home; the others form a run from 6.
        assert_eq!(index.entries[1], entry(tag_at(1, n), 6));
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn insert_refuses_the_last_empty_bucket() {
        let mut index = SlotIndex::with_buckets(3);
        assert!(index.insert(hash_with_tag(1), 0));
        assert!(index.insert(hash_with_tag(1), 1));
        assert!(!index.insert(hash_with_tag(1), 2));
        index.check();
        // Searches for absent tags still end at the empty bucket.
        assert_eq!(index.find(hash_with_tag(9), |_| true), None);
        assert_eq!(index.first_candidate(hash_with_tag(9)), None);
    }

    #[test]
    fn growth_keeps_every_entry_and_reads_only_the_tags() {
        let mut index = SlotIndex::with_buckets(4);
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut all = Vec::new();
        for slot in 0..1_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if (index.len() + 1) * 2 > index.buckets() {
                index.grow_to(index.buckets() * 2);
                index.check();
            }
            assert!(index.insert(rng, slot));
            all.push((rng, slot));
        }
        assert_eq!(index.buckets(), 2_048);
        for &(h, s) in &all {
            assert_eq!(index.find(h, |slot| slot == s), Some(s));
            assert!(index.contains(h, s));
        }
        // Asking for fewer buckets than the entries need still leaves an empty bucket.
        index.grow_to(1);
        assert_eq!(index.buckets(), 1_001);
        index.check();
    }

    mod model {
        //! The index against a list of its entries, on tiny bucket counts where runs collide
        //! and wrap.
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Insert { hash: u64 },
            Remove { pick: usize },
            Grow { extra: usize },
            Clear,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => any::<u64>().prop_map(|hash| Op::Insert { hash }),
                4 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
                1 => (0usize..6).prop_map(|extra| Op::Grow { extra }),
                1 => Just(Op::Clear),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn index_matches_model(buckets in 1usize..12, ops in proptest::collection::vec(op(), 0..200)) {
                let mut index = SlotIndex::with_buckets(buckets);
                let mut live: Vec<(u64, u32)> = Vec::new();
                let mut gone: Vec<(u64, u32)> = Vec::new();
                let mut next_slot = 0u32;
                for op in ops {
                    match op {
                        Op::Insert { hash } => {
                            let room = index.len() + 1 < index.buckets();
                            prop_assert_eq!(index.insert(hash, next_slot), room);
                            if room {
                                live.push((hash, next_slot));
                            }
                            next_slot += 1;
                        }
                        Op::Remove { pick } => {
                            if !live.is_empty() {
                                let (h, s) = live.swap_remove(pick % live.len());
                                prop_assert!(index.remove(h, s));
                                gone.push((h, s));
                            }
                        }
                        Op::Grow { extra } => index.grow_to(index.buckets() + extra),
                        Op::Clear => {
                            index.clear();
                            gone.append(&mut live);
                        }
                    }
                    index.check();
                    prop_assert_eq!(index.len(), live.len());
                    for &(h, s) in &live {
                        prop_assert_eq!(index.find(h, |slot| slot == s), Some(s));
                    }
                    for &(h, s) in &gone {
                        prop_assert!(!index.contains(h, s));
                        prop_assert!(!index.remove(h, s));
                    }
                }
            }
        }
    }
}
