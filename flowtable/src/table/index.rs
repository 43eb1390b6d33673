//! The flow table's index: the slab slot of each live flow, found from the key's hash.
//!
//! Open addressing over groups of seven `u64` entries and a word of control bytes, one group
//! per 64-byte cache line. An entry is `(upper 32 bits of the hash) << 32 | (slot + 1)`; 0 is an
//! empty bucket. The search for a hash starts at its home group, `upper 32 bits * groups >> 32`
//! (a multiply-shift range reduction, so the group count need not be a power of two), a function
//! of the hash alone: a caller that knows the key a few packets ahead can prefetch the home
//! line, then read it and prefetch the slot it names
//! ([`FlowTable::prefetch`](super::FlowTable::prefetch)). The stored 32 bits let a search skip
//! foreign entries without reading their slab entries, and let growth and deletion find any
//! entry's home without rehashing its key.
//!
//! A full group sends the search on to the next one (linear probing by groups). At the loads
//! the table keeps (at most one half) a group of seven overflows rarely (when half full, about
//! 3 % of groups have more than seven entries homed there), so a search almost always reads one
//! line and its branches go the same way every time: the processor then runs ahead into the
//! next packet while the line is on its way. Measured against the alternatives (`flood/*`, `touch/*` and `expire/*` in
//! `benches/benches/flowtable.rs`): probing single `u64` buckets made the exit of every probe
//! loop a misprediction after the cache miss, and evictions cost 89 ns instead of hashbrown's
//! 51; groups of eight `u64`s without control bytes spent the gain on eight compares a lookup.
//! Deletion leaves no tombstone: a hole in a group that was full is refilled from the groups
//! after it (backward shift), so an entry always sits in its home group or behind a run of full
//! groups that starts there, under any churn.
//!
//! Linear probing clusters, which is only fine with hashes an attacker cannot aim: the table's
//! foldhash is seeded per process (see `FlowTable::new`). No method panics or loops without
//! bound: every probe loop stops after one pass over the groups, and the caller keeps the live
//! entries below the bucket count, so there is always an empty bucket.

use std::fmt;

/// An empty bucket.
const EMPTY: u64 = 0;

/// Entries per group: seven `u64`s and a word of control bytes fill one cache line.
pub(super) const GROUP_LEN: usize = 7;

/// Most groups: the home computation multiplies a 32-bit tag by the group count in 64 bits
/// (exact up to 2^32 groups), and 2^30 groups hold more than `MAX_CAPACITY` (`u32::MAX - 1`)
/// entries, so a full table at the largest capacity still has empty buckets.
const MAX_GROUPS: u64 = 1 << 30;

/// Bytes in a cache line (x86-64 and most aarch64 parts).
pub(super) const CACHE_LINE_BYTES: usize = 64;

/// Control byte of an empty bucket (a live one holds the low 7 bits of its tag).
const CTRL_EMPTY: u8 = 0x80;

/// 0x01 in every byte.
const LSB: u64 = 0x0101_0101_0101_0101;

/// The high bit of each control byte in use (bytes 0..7; byte 7 has no entry).
const MSB_USED: u64 = 0x0080_8080_8080_8080;

/// Seven entries and their control bytes on one cache line.
///
/// The control bytes (as in hashbrown, but on the entries' line) let one 64-bit operation find
/// the candidates for a tag and the empty buckets: no loop over the entries and no branch per
/// entry, so the branches of a lookup go the same way almost every time and the processor keeps
/// running ahead into the next packets while the line is on its way.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Group {
    /// Byte `k`: `CTRL_EMPTY` if entry `k` is empty, else `ctrl_byte` of its tag.
    ctrl: u64,
    /// The entries; `EMPTY` exactly where the control byte says so.
    entries: [u64; GROUP_LEN],
}

const _: () = assert!(size_of::<Group>() == CACHE_LINE_BYTES);

impl Group {
    const EMPTY: Group = Group {
        ctrl: LSB * CTRL_EMPTY as u64,
        entries: [EMPTY; GROUP_LEN],
    };

    /// Bit `8k + 7` set for entries `k` that may hold `tag` (the control byte agrees; rarely a
    /// false candidate, which the caller's check of the whole tag discards). Never an empty one.
    #[inline]
    fn match_tag(&self, tag: u32) -> u64 {
        // The classic zero-byte test on `ctrl ^ repeated byte`; its only inexactness is a byte
        // 0x01 above a true match reported as a match. Empty bytes have their high bit set in
        // `x`, which `!x` clears.
        let x = self.ctrl ^ (LSB * u64::from(ctrl_byte(tag)));
        x.wrapping_sub(LSB) & !x & MSB_USED
    }

    /// Bit `8k + 7` set for empty entries `k`.
    #[inline]
    fn match_empty(&self) -> u64 {
        self.ctrl & MSB_USED
    }

    /// Entry `k` (`EMPTY` if empty or out of range).
    #[inline]
    fn get(&self, k: usize) -> u64 {
        self.entries.get(k).copied().unwrap_or(EMPTY)
    }

    /// Writes entry `k` and its control byte.
    #[inline]
    fn set(&mut self, k: usize, e: u64) {
        let Some(slot) = self.entries.get_mut(k) else {
            return;
        };
        *slot = e;
        let byte = if e == EMPTY {
            CTRL_EMPTY
        } else {
            ctrl_byte(entry_tag(e))
        };
        let shift = 8 * k;
        self.ctrl = self.ctrl & !(0xff << shift) | u64::from(byte) << shift;
    }

    /// The live entries with their positions.
    fn live(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        (0..GROUP_LEN)
            .map(|k| (k, self.get(k)))
            .filter(|&(_, e)| e != EMPTY)
    }

    /// Position of exactly `wanted` (not `EMPTY`).
    #[inline]
    fn position_of(&self, wanted: u64) -> Option<usize> {
        let mut candidates = self.match_tag(entry_tag(wanted));
        while candidates != 0 {
            let k = lane(candidates);
            candidates &= candidates - 1;
            if self.get(k) == wanted {
                return Some(k);
            }
        }
        None
    }
}

/// The entry position of the lowest bit of a `match_*` mask.
#[inline]
fn lane(mask: u64) -> usize {
    mask.trailing_zeros() as usize / 8
}

/// Control byte of a live entry: the low 7 bits of its tag (the home group comes from the high
/// bits, so the two are independent).
#[inline]
fn ctrl_byte(tag: u32) -> u8 {
    (tag & 0x7f) as u8
}

/// Slab slots by key hash. See the module documentation.
pub(super) struct SlotIndex {
    /// The groups; their number changes only in [`SlotIndex::grow_to`].
    groups: Vec<Group>,
    /// Live entries (always below the bucket count while the caller keeps its bound).
    len: usize,
}

impl SlotIndex {
    /// An index of at least `buckets` empty buckets (rounded up to whole groups; at least one
    /// group, at most `MAX_GROUPS`).
    pub(super) fn with_buckets(buckets: usize) -> SlotIndex {
        SlotIndex {
            groups: vec![Group::EMPTY; groups_for(buckets)],
            len: 0,
        }
    }

    /// Number of buckets (a multiple of the group size, 7).
    #[inline]
    pub(super) fn buckets(&self) -> usize {
        self.groups.len() * GROUP_LEN
    }

    /// Largest bucket count [`SlotIndex::grow_to`] reaches.
    pub(super) fn max_buckets() -> usize {
        groups_for(usize::MAX).saturating_mul(GROUP_LEN)
    }

    /// Number of live entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held on the heap.
    pub(super) fn allocation_size(&self) -> usize {
        self.groups.capacity() * size_of::<Group>()
    }

    /// Starts loading the cache line of `hash`'s home group.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(group) = self.groups.get(home(tag(hash), self.groups.len())) {
            prefetch_line(group);
        }
    }

    /// The slot of the first entry in `hash`'s home group whose stored tag matches, or in the
    /// group after it if the home group is full: the slot a lookup would compare keys with
    /// first. A hint only (another key can share the tag, or sit further on).
    #[inline]
    pub(super) fn first_candidate(&self, hash: u64) -> Option<u32> {
        let n = self.groups.len();
        let tag = tag(hash);
        let mut g = home(tag, n);
        for _ in 0..2.min(n) {
            let group = self.groups.get(g)?;
            let mut candidates = group.match_tag(tag);
            while candidates != 0 {
                let e = group.get(lane(candidates));
                candidates &= candidates - 1;
                if entry_tag(e) == tag {
                    return Some(entry_slot(e));
                }
            }
            if group.match_empty() != 0 {
                return None;
            }
            g = next(g, n);
        }
        None
    }

    /// The slot of the entry for `hash` whose slot `is_key` accepts (it compares the slab's key).
    /// `is_key` runs only for entries with the same upper 32 hash bits.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let n = self.groups.len();
        let tag = tag(hash);
        let mut g = home(tag, n);
        for _ in 0..n {
            let group = self.groups.get(g)?;
            let mut candidates = group.match_tag(tag);
            while candidates != 0 {
                let e = group.get(lane(candidates));
                candidates &= candidates - 1;
                if entry_tag(e) == tag && is_key(entry_slot(e)) {
                    return Some(entry_slot(e));
                }
            }
            if group.match_empty() != 0 {
                return None;
            }
            g = next(g, n);
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
        if self.len + 1 >= self.buckets() {
            return false;
        }
        let tag = tag(hash);
        if self.put(entry(tag, slot)) {
            self.len += 1;
            return true;
        }
        false
    }

    /// Removes the entry `(hash, slot)`; false if it is not in the index. If its group was
    /// full, entries of the following groups may have been placed past it: the hole is
    /// refilled from them, and so on, so that every entry stays reachable.
    pub(super) fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let Some((mut hole_g, mut hole_k)) = self.position(entry(tag(hash), slot)) else {
            return false;
        };
        let n = self.groups.len();
        let Some(group) = self.groups.get_mut(hole_g) else {
            return false;
        };
        let was_full = group.match_empty() == 0;
        group.set(hole_k, EMPTY);
        self.len -= 1;
        if !was_full {
            // No search ever went past this group, so nothing after it can belong before it.
            return true;
        }
        let mut j = hole_g;
        // The hole moves forward only; the bound covers a broken caller.
        for _ in 0..n {
            j = next(j, n);
            let Some(group) = self.groups.get(j) else {
                break;
            };
            let j_was_full = group.match_empty() == 0;
            // An entry of group `j` may fill the hole only if its home is not on the cyclic
            // stretch (hole_g, j]: its search starts at the home and must still reach it.
            let movable = group.live().find(|&(_, e)| {
                let home = home(entry_tag(e), n);
                cyclic_distance(home, j, n) >= cyclic_distance(hole_g, j, n)
            });
            if let Some((k, e)) = movable {
                if let Some(from) = self.groups.get_mut(j) {
                    from.set(k, EMPTY);
                }
                if let Some(to) = self.groups.get_mut(hole_g) {
                    to.set(hole_k, e);
                }
                (hole_g, hole_k) = (j, k);
            }
            // Past a group that had room no search went on, so no entry further on belongs
            // before it.
            if !j_was_full {
                break;
            }
        }
        true
    }

    /// Moves every entry into a new array of at least `buckets` buckets (clamped to
    /// `len() + 1 ..=` [`SlotIndex::max_buckets`], in whole groups); allocates once. Homes come
    /// from the stored tags: no key is rehashed and the slab is not read.
    pub(super) fn grow_to(&mut self, buckets: usize) {
        let groups = groups_for(buckets.max(self.len.saturating_add(1)));
        let old = std::mem::replace(&mut self.groups, vec![Group::EMPTY; groups]);
        for group in &old {
            for (_, e) in group.live() {
                self.put(e);
            }
        }
    }

    /// Empties every bucket, keeping the memory.
    pub(super) fn clear(&mut self) {
        self.groups.fill(Group::EMPTY);
        self.len = 0;
    }

    /// Writes `e` into the first empty bucket from its home group on; false if there is none.
    #[inline]
    fn put(&mut self, e: u64) -> bool {
        let n = self.groups.len();
        let mut g = home(entry_tag(e), n);
        for _ in 0..n {
            let Some(group) = self.groups.get_mut(g) else {
                return false;
            };
            let empty = group.match_empty();
            if empty != 0 {
                group.set(lane(empty), e);
                return true;
            }
            g = next(g, n);
        }
        false
    }

    /// Group and position holding exactly `wanted`.
    fn position(&self, wanted: u64) -> Option<(usize, usize)> {
        let n = self.groups.len();
        let mut g = home(entry_tag(wanted), n);
        for _ in 0..n {
            let group = self.groups.get(g)?;
            if let Some(k) = group.position_of(wanted) {
                return Some((g, k));
            }
            if group.match_empty() != 0 {
                return None;
            }
            g = next(g, n);
        }
        None
    }

    /// Checks the index's own invariants: `len` counts the live entries, there is an empty
    /// bucket, and every entry sits in its home group or behind a run of full groups from
    /// there. Tests only.
    #[cfg(test)]
    pub(super) fn check(&self) {
        let n = self.groups.len();
        let mut live = 0;
        for (j, group) in self.groups.iter().enumerate() {
            for k in 0..GROUP_LEN {
                let e = group.get(k);
                let byte = (group.ctrl >> (8 * k)) as u8;
                let want = if e == EMPTY {
                    CTRL_EMPTY
                } else {
                    ctrl_byte(entry_tag(e))
                };
                assert_eq!(byte, want, "control byte {k} of group {j}");
            }
            for (_, e) in group.live() {
                live += 1;
                let mut g = home(entry_tag(e), n);
                while g != j {
                    assert_eq!(
                        self.groups[g].match_empty(),
                        0,
                        "group {g} has room, yet an entry homed there or before sits in {j}"
                    );
                    g = next(g, n);
                }
            }
        }
        assert_eq!(live, self.len);
        assert!(self.len < self.buckets(), "no empty bucket left");
    }
}

impl fmt::Debug for SlotIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotIndex")
            .field("buckets", &self.buckets())
            .field("len", &self.len)
            .finish()
    }
}

/// Hints the processor to load the cache line holding `p` into every cache level.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
// The one unsafe operation of the crate; see the SAFETY comment, and `flood/*` in
// `benches/benches/flowtable.rs` for the gain.
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

/// Groups holding at least `buckets` buckets, within `1..=MAX_GROUPS`.
fn groups_for(buckets: usize) -> usize {
    let max = usize::try_from(MAX_GROUPS).unwrap_or(usize::MAX);
    buckets.div_ceil(GROUP_LEN).clamp(1, max)
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

/// Home group of `tag` among `n` groups: `tag * n / 2^32`, below `n` for `n <= 2^32`.
#[inline]
fn home(tag: u32, n: usize) -> usize {
    ((u64::from(tag) * n as u64) >> 32) as usize
}

/// The group after `i`, wrapping at `n`.
#[inline]
fn next(i: usize, n: usize) -> usize {
    let j = i + 1;
    if j >= n { 0 } else { j }
}

/// Steps from `from` forward to `to` among `n` groups, wrapping.
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

    /// The `k`-th tag whose home is group `g` of `n`.
    fn tag_at(g: usize, n: usize, k: u32) -> u32 {
        let t = ((g as u64) << 32).div_ceil(n as u64) as u32 + k;
        assert_eq!(home(t, n), g);
        t
    }

    /// Group of the entry `(hash, slot)`.
    fn group_of(index: &SlotIndex, hash: u64, slot: u32) -> usize {
        index.position(entry(tag(hash), slot)).expect("present").0
    }

    #[test]
    fn home_stays_below_the_group_count() {
        for n in [1, 2, 3, 7, 1_000, 1 << 20, 1 << 30] {
            assert_eq!(home(0, n), 0);
            assert_eq!(home(u32::MAX, n), n - 1);
            assert_eq!(home(1 << 31, n), n / 2);
        }
        // The largest index still has an empty bucket with every slot of the largest table.
        #[cfg(target_pointer_width = "64")]
        assert!(SlotIndex::max_buckets() > super::super::MAX_CAPACITY);
    }

    #[test]
    fn entries_round_trip_and_are_never_empty() {
        for (tag, slot) in [(0, 0), (u32::MAX, u32::MAX - 2), (7, 12_345)] {
            let e = entry(tag, slot);
            assert_ne!(e, EMPTY);
            assert_eq!((entry_tag(e), entry_slot(e)), (tag, slot));
            let mut group = Group::EMPTY;
            assert_eq!(group.match_tag(tag), 0, "an empty bucket matches no tag");
            assert_eq!(group.match_empty(), MSB_USED);
            group.set(3, e);
            assert_eq!(group.get(3), e);
            assert_eq!(group.match_tag(tag), 0x80 << 24);
            assert_eq!(lane(group.match_tag(tag)), 3);
            assert_eq!(group.match_tag(tag ^ 2), 0);
            assert_eq!(group.match_empty(), MSB_USED & !(0x80 << 24));
            assert_eq!(group.position_of(e), Some(3));
            assert_eq!(group.position_of(entry(tag, slot ^ 1)), None);
            group.set(3, EMPTY);
            assert_eq!(group.match_empty(), MSB_USED);
        }
    }

    #[test]
    fn backward_shift_keeps_every_other_entry_findable() {
        // Four groups of seven. Four entries homed at group 0, then ten homed at the last
        // group, which fill it and wrap into group 0, filling it too; one more homed at 0 lands
        // in group 1.
        let n = 4;
        let g = GROUP_LEN as u32;
        let mut index = SlotIndex::with_buckets(n * GROUP_LEN);
        assert_eq!(index.groups.len(), n);
        let mut all: Vec<(u64, u32)> = Vec::new();
        let mut add = |index: &mut SlotIndex, home_g: usize, k: u32| {
            let h = hash_with_tag(tag_at(home_g, n, k));
            let slot = all.len() as u32;
            assert!(index.insert(h, slot));
            all.push((h, slot));
        };
        for k in 0..g - 3 {
            add(&mut index, 0, k);
        }
        for k in 0..g + 3 {
            add(&mut index, 3, k);
        }
        add(&mut index, 0, g);
        index.check();
        let hash_of =
            |all: &[(u64, u32)], slot: u32| all.iter().find(|e| e.1 == slot).expect("live").0;
        let first_wrapped = 2 * g - 3;
        let last = 2 * g;
        // The groups holding the first entry that wrapped and the last one added.
        let watched = |index: &SlotIndex, all: &[(u64, u32)]| {
            (
                group_of(index, hash_of(all, first_wrapped), first_wrapped),
                group_of(index, hash_of(all, last), last),
            )
        };
        assert_eq!(
            watched(&index, &all),
            (0, 1),
            "the overflow wrapped; group 0 was full"
        );
        // A hole in the full last group is refilled from group 0, whose hole is refilled in
        // turn from group 1.
        let (h, s) = all.remove(g as usize - 1);
        assert_eq!(group_of(&index, h, s), 3);
        assert!(index.remove(h, s));
        assert!(!index.remove(h, s), "removed twice");
        assert_eq!(index.find(h, |slot| slot == s), None);
        index.check();
        assert_eq!(
            watched(&index, &all),
            (3, 0),
            "an overflowed entry moved home, and the group-1 entry"
        );
        for &(h, s) in &all {
            assert_eq!(index.find(h, |slot| slot == s), Some(s));
        }
        // Then everything, in a scrambled order.
        while !all.is_empty() {
            let (h, s) = all.remove(7 % all.len());
            assert!(index.remove(h, s));
            index.check();
            for &(h, s) in &all {
                assert_eq!(index.find(h, |slot| slot == s), Some(s));
            }
        }
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn insert_refuses_the_last_empty_bucket() {
        let mut index = SlotIndex::with_buckets(3);
        assert_eq!(index.buckets(), GROUP_LEN);
        for slot in 0..GROUP_LEN as u32 - 1 {
            assert!(index.insert(hash_with_tag(1), slot));
        }
        assert!(!index.insert(hash_with_tag(1), 99));
        index.check();
        // Searches for absent tags still end at the empty bucket.
        assert_eq!(index.find(hash_with_tag(9), |_| true), None);
        assert_eq!(index.first_candidate(hash_with_tag(9)), None);
        assert_eq!(index.first_candidate(hash_with_tag(1)), Some(0));
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
        assert!(
            (2_000..4_000 + GROUP_LEN).contains(&index.buckets()),
            "{}",
            index.buckets()
        );
        for &(h, s) in &all {
            assert_eq!(index.find(h, |slot| slot == s), Some(s));
            assert!(index.contains(h, s));
        }
        // Asking for fewer buckets than the entries need still leaves an empty bucket.
        index.grow_to(1);
        assert_eq!(index.buckets(), 1_001usize.next_multiple_of(GROUP_LEN));
        index.check();
    }

    mod model {
        //! The index against a list of its entries, on a few groups where overflows collide
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
                8 => any::<u64>().prop_map(|hash| Op::Insert { hash }),
                5 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
                1 => (0usize..12).prop_map(|extra| Op::Grow { extra }),
                1 => Just(Op::Clear),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn index_matches_model(buckets in 1usize..40, ops in proptest::collection::vec(op(), 0..300)) {
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
