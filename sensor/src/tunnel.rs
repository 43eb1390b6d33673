//! Tunnel sessions: who sends encapsulated traffic to whom, of which type and id.
//!
//! The capture thread owns one [`TunnelTable`], because it sees every packet of a tunnel
//! whatever worker the inner flows go to. A *link* is an unordered outer endpoint pair plus
//! type, id and enclosing link (so nested layers stay apart); each direction of a link is one
//! *session* and gives one `tunnel` record. The link id is the tunnel context of inner
//! flow keys, so identical inner addresses in two sessions or VNIs never share a flow.
//! The links also gather the evidence that tells a mirror from an overlay (see
//! `detect/mirror_stream.rs`): for the top inner conversations of an outer *pair* (both
//! addresses and the type, whatever the id: some mirrors send ingress and egress copies under
//! two keys or sessions), which inner directions travel in which outer direction; and per
//! link, how many inner frames copy native packets. For each outer *source*, type and id
//! (and enclosing link), whatever the collector, which inner directions of its top
//! conversations the source sent over one-way links and to which collectors: a source that
//! splits the two directions of its conversations over several collectors is a mirror for
//! each of them (`spread_over_collectors`, naming the sibling collectors). Sessions are judged
//! against the collector inventory at their first packet, and a session of a link classified
//! `mirror` whose collector is not approved is queued for one alert.
//! A configuration reload ([`TunnelTable::set_inventory`]) judges every open session again:
//! a session approved since ends `approved: true` (an alert already written stays written),
//! a mirror session no longer approved alerts.
//! Bounded: a hard capacity of links, a capped distinct-inner-flow count per session, a fixed
//! number of tracked conversations per link, and at most one source group per link (a fixed
//! record of [`TOP_CONVERSATIONS`] conversations and [`GROUP_COLLECTORS`] collectors).
//!
//! The table cannot be filled shut (a tunnel-id flood: a new VNI or key every packet). One
//! outer source may hold at most [`source_share`] links; a link beyond that evicts the
//! source's own link with the least evidence, and the source is alerted once
//! (`mirror.tunnel_id_flood`). A full table evicts the link with the least evidence among the
//! next [`EVICTION_SWEEP`] of a round-robin sweep over all links, weighed in a dense slab of
//! [`LinkWeight`]s. Neither ever evicts a link
//! decided `mirror` or the newest link, and every eviction is counted. A link is refused only
//! when no link may be evicted (every one a decided mirror), counted as `table_full`.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::IpAddr;

use arrayvec::ArrayVec;
use flowtable::key::addr_to_ip;
use flowtable::{Direction, Duration, FlowKey, Timestamp};
use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

use crate::decode::{TunnelKind, TunnelLayer};

mod exchange;

use crate::detect::mirror_stream::{
    Approval, ClassReason, CollectorInventory, DecidePolicy, LinkEvidence, MirrorClass,
    TunnelFloodRecord, classify,
};
pub use exchange::GroupExchange;
use exchange::{ExchangeSeat, PEER_CHECK_EVERY, PUBLISH_BATCH, PUBLISH_EVERY};

/// Inner conversations tracked per outer pair (the most active ones).
pub const TOP_CONVERSATIONS: usize = 8;

/// The innermost flow of a packet, as a tunnel layer sees it.
#[derive(Clone, Copy, Debug)]
pub struct InnerObservation {
    /// Canonical inner flow key, without tunnel context.
    pub key: FlowKey,
    /// Direction of the packet within `key`.
    pub dir: Direction,
    /// Seeded hash of `key`, for the distinct count.
    pub hash: u64,
    /// The inner frame copies a native packet seen within the duplicate window.
    pub duplicate: bool,
}

/// The tracked inner conversations of an outer pair, column by column: each packet scans
/// the hashes for its conversation and, on a miss with every slot taken, the packet counts
/// for the least active one, so the scans read one cache line each instead of walking
/// eight whole entries (a new conversation per packet is the common case on a busy mirror).
#[derive(Clone, Debug, Default)]
struct Conversations {
    /// `InnerObservation::hash` of each key: compared first, so a scan rarely touches keys.
    hashes: [u64; TOP_CONVERSATIONS],
    packets: [u64; TOP_CONVERSATIONS],
    /// Bit `2 * outer + inner`: seen with outer direction `outer` and inner direction `inner`.
    seen: [u8; TOP_CONVERSATIONS],
    /// The tracked conversations, in slot order; their count is the number of slots in use.
    keys: ArrayVec<FlowKey, TOP_CONVERSATIONS>,
}

impl Conversations {
    /// Slot of `key` (hash `hash`), if tracked.
    #[inline]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<usize> {
        // All slots at once, as a bit mask (a fixed-size loop the compiler unrolls); a slot
        // not in use has no key, so it never matches.
        let matches = self
            .hashes
            .iter()
            .enumerate()
            .fold(0u32, |m, (i, h)| m | (u32::from(*h == hash) << i));
        if matches == 0 {
            return None;
        }
        (0..TOP_CONVERSATIONS).find(|&i| matches & (1 << i) != 0 && self.keys.get(i) == Some(key))
    }

    /// The first slot with the fewest packets (the slot space-saving replaces), once every
    /// slot is in use.
    #[inline]
    fn least_active(&self) -> Option<usize> {
        if !self.keys.is_full() {
            return None;
        }
        let min = self.packets.iter().copied().min()?;
        self.packets.iter().position(|&p| p == min)
    }

    /// Key and packets of each tracked conversation, in slot order.
    fn iter(&self) -> impl Iterator<Item = (FlowKey, u64)> + '_ {
        self.keys
            .iter()
            .zip(self.packets.iter())
            .map(|(k, p)| (*k, *p))
    }
}

/// A link's own inner conversations: their hashes only (the keys, for the record, are in the
/// pair's tracker), with the same space-saving replacement. A link's class comes from these
/// first, so an overlay beside a mirror between the same endpoints is judged on its own.
#[derive(Clone, Debug, Default)]
struct LinkConversations {
    hashes: [u64; TOP_CONVERSATIONS],
    packets: [u64; TOP_CONVERSATIONS],
    /// Bits as in [`Conversations::seen`].
    seen: [u8; TOP_CONVERSATIONS],
    /// Slots in use (the first `len`).
    len: u8,
}

impl LinkConversations {
    /// Slot of the conversation with hash `hash`, if tracked.
    #[inline]
    fn find(&self, hash: u64) -> Option<usize> {
        let matches = self
            .hashes
            .iter()
            .enumerate()
            .fold(0u32, |m, (i, h)| m | (u32::from(*h == hash) << i));
        let used = (1u32 << self.len) - 1;
        let m = matches & used;
        (m != 0).then(|| m.trailing_zeros() as usize)
    }
}

/// Both inner directions inside outer direction 0, or inside outer direction 1.
const MIRROR_PATTERNS: [u8; 2] = [0b0011, 0b1100];
/// Inner direction 0 in one outer direction and inner direction 1 in the other.
const OVERLAY_PATTERNS: [u8; 2] = [0b1001, 0b0110];

/// Collector slots of one source group: the links holding one join its evidence. A link
/// started while all are taken takes the slot of the least active (space-saving, so decoy
/// links kept open with a packet now and then cannot keep a real spread out); a link without
/// a slot is still judged with the group's evidence but adds none of its own.
pub const GROUP_COLLECTORS: usize = 16;

/// No collector slot (the group's slots were all taken when the link started).
const NO_SLOT: u8 = u8::MAX;

/// One outer source of one type and id inside one enclosing link, whatever the collector:
/// where the evidence of a mirror spread over several collectors is joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SourceGroupKey {
    parent: u64,
    kind: TunnelKind,
    id: u32,
    src: [u8; 16],
}

/// The evidence of a source group: for its top inner conversations (space-saving, as per
/// link), which collectors received inner direction 0 and which direction 1, as masks over
/// the group's collector slots. Only one-way links add to it, and a link that turns two-way
/// is masked out of it (an overlay's links are two-way: a gateway VTEP relaying both
/// directions of a conversation to two peers must not look like a spread mirror).
#[derive(Clone, Debug, Default)]
struct SourceGroup {
    hashes: [u64; TOP_CONVERSATIONS],
    packets: [u64; TOP_CONVERSATIONS],
    /// `via[i][d]`: collector slots that received inner direction `d` of conversation `i`.
    via: [[u16; 2]; TOP_CONVERSATIONS],
    /// Conversation slots in use (the first `len`).
    len: u8,
    /// Collector address of each slot in use.
    collectors: [[u8; 16]; GROUP_COLLECTORS],
    /// Slots in use, one bit each.
    used: u16,
    /// Slots whose link has carried packets the other way too (excluded as evidence).
    two_way: u16,
    /// Packets each slot's link added (the least active slot is taken when all are in use).
    slot_packets: [u64; GROUP_COLLECTORS],
    /// Live links of the group (with or without a slot); the entry goes with the last one.
    links: u32,
    /// Changed since it was last published to the [`GroupExchange`] (sharded capture).
    dirty: bool,
    /// The group's key while the slab entry is in use (what it is published under).
    key: Option<SourceGroupKey>,
}

impl SourceGroup {
    /// Whether a one-way link of the group has recorded a conversation direction: what
    /// another table's link could be joined with.
    fn has_one_way_evidence(&self) -> bool {
        let usable = self.used & !self.two_way;
        self.via
            .iter()
            .take(usize::from(self.len))
            .any(|v| (v[0] | v[1]) & usable != 0)
    }

    /// Collector slots, outside `excluded`, whose one-way links carried inner direction
    /// `dir` of the conversation with hash `hash` (0 when it is not tracked).
    #[inline]
    fn carried(&self, hash: u64, dir: usize, excluded: u16) -> u16 {
        self.find(hash)
            .and_then(|j| self.via.get(j))
            .and_then(|via| via.get(dir))
            .map_or(0, |slots| slots & !excluded)
    }

    /// Slot of the conversation with hash `hash`, if tracked.
    #[inline]
    fn find(&self, hash: u64) -> Option<usize> {
        let matches = self
            .hashes
            .iter()
            .enumerate()
            .fold(0u32, |m, (i, h)| m | (u32::from(*h == hash) << i));
        let m = matches & ((1u32 << self.len) - 1);
        (m != 0).then(|| m.trailing_zeros() as usize)
    }

    /// Takes a collector slot for `collector`: a free one, or the least active one (whose
    /// link loses it, and the evidence it held, and adds no more).
    fn claim_slot(&mut self, collector: [u8; 16]) -> u8 {
        let free = !self.used;
        // The newcomer inherits the count it replaces, so the next newcomer does not take
        // its slot before it could add anything.
        let (slot, inherited) = if free != 0 {
            (free.trailing_zeros() as usize, 0)
        } else {
            let min = self.slot_packets.iter().copied().min().unwrap_or(0);
            let Some(victim) = self.slot_packets.iter().position(|&p| p == min) else {
                return NO_SLOT;
            };
            self.release_slot(victim as u8);
            (victim, min)
        };
        if let (Some(c), Some(p)) = (
            self.collectors.get_mut(slot),
            self.slot_packets.get_mut(slot),
        ) {
            (*c, *p) = (collector, inherited);
        }
        self.used |= 1 << slot;
        self.two_way &= !(1 << slot);
        self.dirty = true;
        slot as u8
    }

    /// Whether slot `slot` is in use by the link to `collector` (a link whose slot was taken
    /// by a later one still names it).
    #[inline]
    fn owns(&self, slot: u8, collector: &[u8; 16]) -> bool {
        usize::from(slot) < GROUP_COLLECTORS
            && self.used & (1 << slot) != 0
            && self.collectors.get(usize::from(slot)) == Some(collector)
    }

    /// Gives slot `slot` back, and with it every bit of evidence it held.
    fn release_slot(&mut self, slot: u8) {
        if usize::from(slot) >= GROUP_COLLECTORS {
            return;
        }
        let keep = !(1u16 << slot);
        self.dirty = true;
        self.used &= keep;
        self.two_way &= keep;
        for v in &mut self.via {
            v[0] &= keep;
            v[1] &= keep;
        }
    }
}

/// Tunnel context given to flows whose tunnel could not be tracked (table full).
pub const OVERFLOW_LINK: u64 = u64::MAX;

/// A link as one packet left it ([`TunnelTable::observe_link`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedLink {
    /// The link's id, the tunnel context of what is inside ([`OVERFLOW_LINK`] when the table
    /// could not track it).
    pub id: u64,
    /// Its class now; `None` for an untracked link.
    pub class: Option<MirrorClass>,
}

/// Identity of a link: both directions of one outer pair, type and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LinkKey {
    parent: u64,
    kind: TunnelKind,
    id: u32,
    lo: [u8; 16],
    hi: [u8; 16],
}

/// Four words instead of the derived field-by-field feed (a length prefix and a byte slice
/// per address): one link lookup per packet and layer. Equal keys feed equal words.
impl std::hash::Hash for LinkKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.parent);
        state.write_u64((u64::from(self.id) << 8) | self.kind.index() as u64);
        state.write_u128(u128::from_ne_bytes(self.lo));
        state.write_u128(u128::from_ne_bytes(self.hi));
    }
}

/// One direction of a link.
#[derive(Clone, Debug, Default)]
struct SessionState {
    packets: u64,
    bytes: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
    src_port: u16,
    dst_port: u16,
    truncated_packets: u64,
    nonstandard_port: bool,
    /// Seeded hashes of the inner flows.
    inner_flows: InnerFlowSet,
    inner_flows_capped: bool,
    erspan_ingress: u64,
    erspan_egress: u64,
    approval: Approval,
    collector_home: bool,
    alerted: bool,
    /// In `TunnelTable::pending_alerts` now: membership in O(1), so queueing stays linear.
    queued: bool,
}

/// The distinct inner flows of a session, as their seeded 64-bit hashes: an open-addressing
/// set with linear probing in one array of the hashes themselves (0 marks an empty slot; a
/// hash of 0 is kept in a flag). The hashes are already uniform, so their low bits are the
/// home slot. A lookup reads the home slot's cache line and rarely the next, where a
/// `HashSet<u64>` reads a control group and then a bucket in another line: on a mirror of
/// many flows that is one cache miss per packet instead of two. Exactly the same set
/// semantics as before (a flow counts once per distinct hash); it grows by doubling when
/// more than 13/16 full, the way the `HashSet` grew, and never shrinks.
#[derive(Clone, Debug, Default)]
struct InnerFlowSet {
    slots: Vec<u64>,
    len: usize,
    has_zero: bool,
}

impl InnerFlowSet {
    /// Distinct hashes held.
    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    /// Whether `hash` is held.
    #[inline]
    fn contains(&self, hash: u64) -> bool {
        if hash == 0 {
            return self.has_zero;
        }
        matches!(self.probe(hash), Probe::Found)
    }

    /// Adds `hash`; true if it was new.
    #[inline]
    fn insert(&mut self, hash: u64) -> bool {
        if hash == 0 {
            let new = !self.has_zero;
            self.has_zero = true;
            self.len += usize::from(new);
            return new;
        }
        match self.probe(hash) {
            Probe::Found => false,
            Probe::Empty(i) if (self.len + 1) * 16 <= self.slots.len() * 13 => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = hash;
                }
                self.len += 1;
                true
            }
            // Full enough (or not allocated yet): grow, then place it.
            Probe::Empty(_) | Probe::Exhausted => {
                self.grow();
                if let Probe::Empty(i) = self.probe(hash) {
                    if let Some(slot) = self.slots.get_mut(i) {
                        *slot = hash;
                        self.len += 1;
                        return true;
                    }
                }
                false
            }
        }
    }

    /// Looks `hash` (not 0) up: found, or the empty slot where it would go.
    #[inline]
    fn probe(&self, hash: u64) -> Probe {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = (hash as usize) & mask;
        // At most 13/16 full, so an empty slot comes long before the bound.
        for _ in 0..self.slots.len() {
            match self.slots.get(i) {
                Some(&h) if h == hash => return Probe::Found,
                Some(0) => return Probe::Empty(i),
                Some(_) => i = (i + 1) & mask,
                None => break,
            }
        }
        Probe::Exhausted
    }

    /// Doubles the table (64 slots at first) and places every hash again.
    #[cold]
    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![0; capacity]);
        let mask = capacity - 1;
        for h in old.into_iter().filter(|&h| h != 0) {
            let mut i = (h as usize) & mask;
            for _ in 0..capacity {
                match self.slots.get_mut(i) {
                    Some(slot) if *slot == 0 => {
                        *slot = h;
                        break;
                    }
                    Some(_) => i = (i + 1) & mask,
                    None => break,
                }
            }
        }
    }
}

/// Outcome of [`InnerFlowSet::probe`].
enum Probe {
    Found,
    Empty(usize),
    /// No slot at all (not allocated yet).
    Exhausted,
}

/// An outer pair of one type, whatever the tunnel id: where direction evidence is gathered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PairKey {
    parent: u64,
    kind: TunnelKind,
    lo: [u8; 16],
    hi: [u8; 16],
}

/// Direction evidence of a pair, shared by its links.
#[derive(Clone, Debug, Default)]
struct PairEvidence {
    conversations: Conversations,
    mirror_conversations: u64,
    overlay_conversations: u64,
    /// Live links of this pair; the entry goes when the last one ends.
    links: u32,
}

impl LinkKey {
    /// The source group of this link's type and id from `source`, whatever the collector.
    fn group(&self, source: [u8; 16]) -> SourceGroupKey {
        SourceGroupKey {
            parent: self.parent,
            kind: self.kind,
            id: self.id,
            src: source,
        }
    }

    fn pair(&self) -> PairKey {
        PairKey {
            parent: self.parent,
            kind: self.kind,
            lo: self.lo,
            hi: self.hi,
        }
    }
}

/// A link and its two sessions (index 0: lo → hi, 1: hi → lo).
#[derive(Clone, Debug)]
struct Link {
    id: u64,
    /// Index of the link's outer pair in `TunnelTable::pairs`.
    pair: u32,
    depth: u8,
    last_seen: Timestamp,
    sessions: [SessionState; 2],
    evidence: LinkEvidence,
    class: MirrorClass,
    reason: ClassReason,
    decided: bool,
    /// The link's own conversations (the pair's are in `TunnelTable::pairs`).
    own: LinkConversations,
    /// Outer source of the packet that created the link: whose share it counts against,
    /// and whose source group it belongs to.
    source: [u8; 16],
    /// Index of the link's source group in `TunnelTable::groups`.
    group: u32,
    /// The link's collector slot in its group, or [`NO_SLOT`].
    group_slot: u8,
    /// Collectors whose evidence made this link a mirror (`spread_over_collectors`): filled
    /// once, when the link is decided that way.
    siblings: Vec<IpAddr>,
    /// Index of the link's [`LinkWeight`] in `TunnelTable::weights`.
    weight: u32,
    /// Sharded capture: packet time before which the link does not read the other tables'
    /// copies of its group again.
    peers_next_check: Timestamp,
}

/// What eviction weighs of a link, kept in a dense slab apart from the link table: a sweep
/// reads its [`EVICTION_SWEEP`] candidates there, and looks up only the victim. Before, each
/// candidate was a look-up into the table of large links, two cache misses each; under a
/// tunnel-id flood (a source beyond its share evicts on every packet) that was 3.5 µs a
/// packet, 53 kpps (benches/runs/2026-12-04-vm-floods).
#[derive(Clone, Copy, Debug, Default)]
struct LinkWeight {
    /// The link's id (0: the slot is free).
    id: u64,
    /// Packets in both outer directions.
    packets: u64,
    last_seen: Timestamp,
    /// A decided mirror: never evicted.
    protected: bool,
}

impl LinkWeight {
    fn of(link: &Link) -> LinkWeight {
        LinkWeight {
            id: link.id,
            packets: link.evidence.packets[0].saturating_add(link.evidence.packets[1]),
            last_seen: link.last_seen,
            protected: link.decided && link.class == MirrorClass::Mirror,
        }
    }
}

impl Link {
    /// Outer direction (session index) in which the link's source sends.
    #[inline]
    fn source_dir(&self, key: &LinkKey) -> usize {
        usize::from(self.source != key.lo)
    }

    /// The other end of the link from its source: its collector.
    #[inline]
    fn collector(&self, key: &LinkKey) -> [u8; 16] {
        if self.source == key.lo {
            key.hi
        } else {
            key.lo
        }
    }

    /// The link's collector slot in `g`, if it still holds one.
    #[inline]
    fn slot_in(&self, key: &LinkKey, g: &SourceGroup) -> Option<u8> {
        g.owns(self.group_slot, &self.collector(key))
            .then_some(self.group_slot)
    }
}

/// What a finished session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelSessionRecord {
    /// Encapsulation.
    pub kind: TunnelKind,
    /// VNI / key / session ID.
    pub id: u32,
    /// Nesting level, 0 = outermost.
    pub depth: u8,
    /// Link id (tunnel context of the inner flows).
    pub link: u64,
    /// Outer source.
    pub src: [u8; 16],
    /// Outer destination.
    pub dst: [u8; 16],
    /// Outer UDP source port of the first packet (0 for GRE).
    pub src_port: u16,
    /// Outer UDP destination port of the first packet.
    pub dst_port: u16,
    /// Packets.
    pub packets: u64,
    /// Frame bytes on the wire.
    pub bytes: u64,
    /// First packet.
    pub first_seen: Timestamp,
    /// Last packet.
    pub last_seen: Timestamp,
    /// Distinct inner flows.
    pub inner_flows: u64,
    /// The count hit the cap.
    pub inner_flows_capped: bool,
    /// Packets marked truncated by the tunnel header.
    pub truncated_packets: u64,
    /// Found on a non-standard port.
    pub nonstandard_port: bool,
    /// What the link is.
    pub class: MirrorClass,
    /// Why.
    pub reason: ClassReason,
    /// Standing against the inventory.
    pub approval: Approval,
    /// The outer destination (the collector) is inside the home networks.
    pub collector_home: bool,
    /// The link carried packets in one outer direction only.
    pub one_way: bool,
    /// Inner frames of the link matched to native packets (found from either side).
    pub duplicates: u64,
    /// ERSPAN III packets marked ingress / egress.
    pub erspan_ingress: u64,
    /// See `erspan_ingress`.
    pub erspan_egress: u64,
    /// The most active inner conversations of the link's outer pair: key and packets.
    pub top_conversations: ArrayVec<(FlowKey, u64), TOP_CONVERSATIONS>,
    /// With `spread_over_collectors`: the other collectors of the same source, type and id
    /// whose evidence decided the class (empty otherwise).
    pub sibling_collectors: Vec<IpAddr>,
}

/// Counters for the stats record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelTableStats {
    /// Sessions (link directions) seen, by [`TunnelKind::index`].
    pub sessions_by_kind: [u64; TunnelKind::ALL.len()],
    /// Tunnel packets not tracked because the table was full.
    pub table_full: u64,
    /// Links expired by idle timeout.
    pub expired: u64,
    /// Sessions by class at report time: unknown, mirror, overlay.
    pub sessions_by_class: [u64; 3],
    /// Links evicted to make room (a source beyond its share, or a full table); they
    /// write no record.
    pub evicted: u64,
    /// Outer sources that reached their share of the table (each alerted once).
    pub flood_sources: u64,
}

/// Links of one outer source: their count against the share, and the sweep ring its own
/// evictions walk.
#[derive(Debug)]
struct SourceLinks {
    links: usize,
    created: u64,
    first_seen: Timestamp,
    alerted: bool,
    /// (key, id, weight slot) of its links, oldest first, with stale entries of links gone
    /// since (checked by id, dropped when met, compacted when they outnumber the live ones).
    order: VecDeque<SweepEntry>,
}

/// An entry of a sweep ring: a link's key, id and weight slot.
type SweepEntry = (LinkKey, u64, u32);

/// Links looked at per eviction, the least evidence among them goes.
pub const EVICTION_SWEEP: usize = 16;

/// The most links one outer source may hold in a table of `capacity`: an eighth, but never
/// fewer than 64 (a small table is not split), and never more than the table.
pub fn source_share(capacity: usize) -> usize {
    (capacity / 8).max(64).min(capacity).max(1)
}

/// The table of tunnel links.
pub struct TunnelTable {
    links: HashMap<LinkKey, Link, foldhash::quality::SeedableRandomState>,
    /// Link id → key, to credit copies found from the native side in O(1).
    keys_by_id: HashMap<u64, LinkKey, foldhash::quality::SeedableRandomState>,
    /// Pair evidence, in a slab so a link reaches its pair by index on every packet; the
    /// index map is only used when a link starts or ends.
    pairs: Vec<PairEvidence>,
    pair_index: HashMap<PairKey, u32, foldhash::quality::SeedableRandomState>,
    free_pairs: Vec<u32>,
    /// Source groups, a slab like `pairs` (at most one per link).
    groups: Vec<SourceGroup>,
    group_index: HashMap<SourceGroupKey, u32, foldhash::quality::SeedableRandomState>,
    free_groups: Vec<u32>,
    next_link_id: u64,
    /// Added to `next_link_id` per new link: several tables (one per live capture thread)
    /// hand out disjoint ids (see [`TunnelTable::set_link_ids`]).
    link_id_step: u64,
    capacity: usize,
    idle_timeout: Duration,
    max_inner_flows: usize,
    /// Inner-flow entries held by all sessions together, and the most they may hold: the
    /// per-session cap alone would let many sessions add up to gigabytes.
    inner_flows_total: usize,
    inner_flows_budget: usize,
    stats: TunnelTableStats,
    inventory: CollectorInventory,
    policy: DecidePolicy,
    /// Sessions to alert on: (link key, link id, session index). Filled when a link is
    /// classified (the id tells a link that ended and came back from the one queued).
    pending_alerts: Vec<(LinkKey, u64, usize)>,
    /// Links per outer source, for the share.
    sources: HashMap<[u8; 16], SourceLinks, foldhash::quality::SeedableRandomState>,
    /// (key, id, weight slot) of every link, the round-robin sweep a full table evicts from.
    order: VecDeque<SweepEntry>,
    /// Eviction weights of the links, by slot (see [`LinkWeight`]), and the free slots.
    weights: Vec<LinkWeight>,
    free_weights: Vec<u32>,
    /// Id of the newest link, never evicted.
    newest: u64,
    share: usize,
    /// Flood findings not yet written.
    pending_floods: Vec<TunnelFloodRecord>,
    /// Sharded capture: where the source groups meet those of the other capture threads.
    exchange: Option<ExchangeSeat>,
    /// Inside [`TunnelTable::drain`].
    draining: bool,
}

impl TunnelTable {
    /// A table for at most `capacity` links, counting at most `max_inner_flows` distinct
    /// inner flows per session and `inner_flows_budget` over all sessions.
    pub fn new(
        capacity: usize,
        idle_timeout: Duration,
        max_inner_flows: usize,
        inner_flows_budget: usize,
        inventory: CollectorInventory,
        policy: DecidePolicy,
    ) -> TunnelTable {
        TunnelTable {
            links: HashMap::with_capacity_and_hasher(
                capacity.min(4096),
                foldhash::quality::SeedableRandomState::random(),
            ),
            keys_by_id: HashMap::with_capacity_and_hasher(
                capacity.min(4096),
                foldhash::quality::SeedableRandomState::random(),
            ),
            pairs: Vec::with_capacity(capacity.min(4096)),
            pair_index: HashMap::with_capacity_and_hasher(
                capacity.min(4096),
                foldhash::quality::SeedableRandomState::random(),
            ),
            free_pairs: Vec::new(),
            groups: Vec::with_capacity(capacity.min(4096)),
            group_index: HashMap::with_capacity_and_hasher(
                capacity.min(4096),
                foldhash::quality::SeedableRandomState::random(),
            ),
            free_groups: Vec::new(),
            next_link_id: 1,
            link_id_step: 1,
            capacity,
            idle_timeout,
            max_inner_flows,
            inner_flows_total: 0,
            inner_flows_budget,
            stats: TunnelTableStats::default(),
            inventory,
            policy,
            pending_alerts: Vec::with_capacity(64),
            sources: HashMap::with_capacity_and_hasher(
                64,
                foldhash::quality::SeedableRandomState::random(),
            ),
            order: VecDeque::with_capacity(capacity.min(4096)),
            weights: Vec::with_capacity(capacity.min(4096)),
            free_weights: Vec::new(),
            newest: 0,
            share: source_share(capacity),
            pending_floods: Vec::new(),
            exchange: None,
            draining: false,
        }
    }

    /// [`observe_link`](Self::observe_link) for the tests that need only the link id.
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    fn observe(
        &mut self,
        parent: u64,
        layer: &TunnelLayer,
        depth: u8,
        now: Timestamp,
        frame_bytes: u32,
        inner: Option<&InnerObservation>,
        innermost: bool,
    ) -> u64 {
        self.observe_link(parent, layer, depth, now, frame_bytes, inner, innermost)
            .id
    }

    /// Accounts one packet of tunnel `layer` at nesting `depth`, inside link `parent` (0 for
    /// the outermost layer). `inner` is the innermost flow; `innermost` says whether this layer
    /// directly encloses it (only that layer gathers mirror evidence from it). Returns the
    /// link id to use as the tunnel context of what is inside, and the link's class as this
    /// packet left it: what [`link_class`](Self::link_class) would say now, without its two
    /// look-ups (by id, then by key) of a link this call has just found.
    // Each argument is a distinct fact of this one packet at this one layer; bundling them
    // into a struct built for a single call would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn observe_link(
        &mut self,
        parent: u64,
        layer: &TunnelLayer,
        depth: u8,
        now: Timestamp,
        frame_bytes: u32,
        inner: Option<&InnerObservation>,
        innermost: bool,
    ) -> ObservedLink {
        let forward = layer.outer_src <= layer.outer_dst;
        let (lo, hi) = if forward {
            (layer.outer_src, layer.outer_dst)
        } else {
            (layer.outer_dst, layer.outer_src)
        };
        let key = LinkKey {
            parent,
            kind: layer.kind,
            id: layer.id,
            lo,
            hi,
        };
        // A full table makes room first (a second probe, only while full), or refuses when
        // nothing may go.
        if self.links.len() >= self.capacity
            && !self.links.contains_key(&key)
            && !self.evict_one(None)
        {
            self.stats.table_full = self.stats.table_full.saturating_add(1);
            return ObservedLink {
                id: OVERFLOW_LINK,
                class: None,
            };
        }
        let mut over_share = false;
        // One lookup per packet and layer: the entry API finds or inserts in one probe.
        let link = match self.links.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let id = self.next_link_id;
                self.next_link_id = self.next_link_id.saturating_add(self.link_id_step);
                self.keys_by_id.insert(id, key);
                self.newest = id;
                let weight = match self.free_weights.pop() {
                    Some(slot) => slot,
                    None => {
                        self.weights.push(LinkWeight::default());
                        u32::try_from(self.weights.len() - 1).unwrap_or(u32::MAX)
                    }
                };
                self.order.push_back((key, id, weight));
                let source = self
                    .sources
                    .entry(layer.outer_src)
                    .or_insert_with(|| SourceLinks {
                        links: 0,
                        created: 0,
                        first_seen: now,
                        alerted: false,
                        order: VecDeque::new(),
                    });
                source.links += 1;
                source.created = source.created.saturating_add(1);
                source.order.push_back((key, id, weight));
                over_share = source.links > self.share;
                let pair = acquire_pair(
                    &mut self.pairs,
                    &mut self.pair_index,
                    &mut self.free_pairs,
                    key.pair(),
                );
                let (group, group_slot) = acquire_group(
                    &mut self.groups,
                    &mut self.group_index,
                    &mut self.free_groups,
                    key.group(layer.outer_src),
                    layer.outer_dst,
                );
                v.insert(Link {
                    id,
                    pair,
                    depth,
                    last_seen: now,
                    sessions: Default::default(),
                    evidence: LinkEvidence {
                        first_seen: now,
                        ..LinkEvidence::default()
                    },
                    class: MirrorClass::Unknown,
                    reason: ClassReason::Pending,
                    decided: false,
                    own: LinkConversations::default(),
                    source: layer.outer_src,
                    group,
                    group_slot,
                    siblings: Vec::new(),
                    weight,
                    peers_next_check: Timestamp::ZERO,
                })
            }
        };
        if now > link.last_seen {
            link.last_seen = now;
        }
        let outer = usize::from(!forward);
        let from_source = outer == link.source_dir(&key);
        if !from_source && link.sessions[outer].packets == 0 {
            // The collector sends back: this link is no longer evidence of a spread mirror.
            if let Some(g) = self.groups.get_mut(link.group as usize) {
                if let Some(slot) = link.slot_in(&key, g) {
                    g.two_way |= 1 << slot;
                    g.dirty = true;
                }
            }
        }
        let session = &mut link.sessions[outer];
        if session.packets == 0 {
            session.first_seen = now;
            session.src_port = layer.outer_src_port;
            session.dst_port = layer.outer_dst_port;
            session.approval = self.inventory.judge(
                addr_to_ip(layer.outer_src),
                addr_to_ip(layer.outer_dst),
                layer.kind,
                layer.id,
            );
            session.collector_home = self.inventory.is_home(addr_to_ip(layer.outer_dst));
            self.stats.sessions_by_kind[layer.kind.index()] =
                self.stats.sessions_by_kind[layer.kind.index()].saturating_add(1);
        }
        session.packets = session.packets.saturating_add(1);
        session.bytes = session.bytes.saturating_add(u64::from(frame_bytes));
        if now > session.last_seen {
            session.last_seen = now;
        }
        session.nonstandard_port |= layer.nonstandard_port;
        if layer.mirror_truncated {
            session.truncated_packets = session.truncated_packets.saturating_add(1);
        }
        match layer.erspan_egress {
            Some(true) => session.erspan_egress = session.erspan_egress.saturating_add(1),
            Some(false) => session.erspan_ingress = session.erspan_ingress.saturating_add(1),
            None => {}
        }
        if let Some(obs) = inner {
            let room = session.inner_flows.len() < self.max_inner_flows
                && self.inner_flows_total < self.inner_flows_budget;
            if room {
                if session.inner_flows.insert(obs.hash) {
                    self.inner_flows_total += 1;
                }
            } else if !session.inner_flows.contains(obs.hash) {
                session.inner_flows_capped = true;
            }
        }
        let ev = &mut link.evidence;
        ev.packets[outer] = ev.packets[outer].saturating_add(1);
        if let (Some(obs), true) = (inner, innermost) {
            ev.innermost_packets = ev.innermost_packets.saturating_add(1);
            if obs.duplicate {
                ev.duplicates = ev.duplicates.saturating_add(1);
            }
            // With the same address at both ends (loopback test captures) the outer direction
            // says nothing, so the direction patterns are no evidence either way.
            if lo != hi {
                note_own_conversation(&mut link.own, ev, obs, outer);
                if let Some(pair) = self.pairs.get_mut(link.pair as usize) {
                    note_conversation(pair, obs, outer);
                }
                // Only a one-way link from the source adds to its group.
                if from_source && ev.packets[1 - outer] == 0 {
                    if let Some(g) = self.groups.get_mut(link.group as usize) {
                        if let Some(slot) = link.slot_in(&key, g) {
                            note_group_conversation(g, obs, slot);
                        }
                    }
                }
            }
        }
        if !link.decided {
            decide(
                &key,
                link,
                &self.pairs,
                &self.groups,
                self.exchange.as_ref(),
                self.policy,
                now,
                false,
            );
        }
        if link.class == MirrorClass::Mirror {
            queue_alerts(&key, link, &mut self.pending_alerts);
        }
        if let Some(w) = self.weights.get_mut(link.weight as usize) {
            *w = LinkWeight::of(link);
        }
        let id = link.id;
        let mut class = Some(link.class);
        if over_share {
            self.relieve_source(&key, layer, depth, id, now);
            // Relieving evicts other links of the source, never this newest one; asked
            // again all the same, so the answer is the table's whatever that rule becomes.
            class = self.link_class(id);
        }
        if self.order.len() > 2 * self.links.len() + 64 {
            let weights = &self.weights;
            self.order.retain(|e| is_live(weights, e));
        }
        ObservedLink { id, class }
    }

    /// A source went beyond its share with link `id` (key `key`): alerts on it once, then
    /// evicts the source's own link with the least evidence (never that newest one, never a
    /// decided mirror). When all its others are decided mirrors the source keeps them: they
    /// are alerted findings, not a flood.
    fn relieve_source(
        &mut self,
        key: &LinkKey,
        layer: &TunnelLayer,
        depth: u8,
        id: u64,
        now: Timestamp,
    ) {
        let src = layer.outer_src;
        let Some(s) = self.sources.get_mut(&src) else {
            return;
        };
        if !s.alerted {
            s.alerted = true;
            self.stats.flood_sources = self.stats.flood_sources.saturating_add(1);
            self.pending_floods.push(TunnelFloodRecord {
                src: addr_to_ip(src),
                dst: addr_to_ip(layer.outer_dst),
                src_port: layer.outer_src_port,
                dst_port: layer.outer_dst_port,
                kind: key.kind,
                id: key.id,
                depth,
                link: id,
                at: now,
                links_held: s.links as u64,
                share: self.share as u64,
                capacity: self.capacity as u64,
                links_created: s.created,
                first_seen: s.first_seen,
            });
        }
        let live = s.links;
        if s.order.len() > 2 * live + 64 {
            let weights = &self.weights;
            s.order.retain(|e| is_live(weights, e));
        }
        self.evict_one(Some(src));
    }

    /// Evicts the link with the least evidence (fewest packets, then idle longest) among the
    /// next [`EVICTION_SWEEP`] links of the sweep ring: the whole table's, or with `source`
    /// that source's own. Links looked at go to the back of the ring, so successive
    /// evictions walk the whole ring. A decided mirror and the newest link are never evicted.
    /// False when none of those looked at could go.
    fn evict_one(&mut self, source: Option<[u8; 16]>) -> bool {
        let ring = match source {
            None => &mut self.order,
            Some(src) => match self.sources.get_mut(&src) {
                Some(s) => &mut s.order,
                None => return false,
            },
        };
        let weights = &self.weights;
        let mut walked: ArrayVec<SweepEntry, EVICTION_SWEEP> = ArrayVec::new();
        let mut best: Option<(usize, (u64, Timestamp))> = None;
        // Stale entries (links gone) are dropped as they are met; bounded all the same.
        for _ in 0..8 * EVICTION_SWEEP {
            if walked.is_full() {
                break;
            }
            let Some(entry) = ring.pop_front() else {
                break;
            };
            let Some(w) = weights.get(entry.2 as usize).filter(|w| w.id == entry.1) else {
                continue;
            };
            let at = walked.len();
            walked.push(entry);
            if entry.1 == self.newest || w.protected {
                continue;
            }
            let score = (w.packets, w.last_seen);
            if best.is_none_or(|(_, b)| score < b) {
                best = Some((at, score));
            }
        }
        let victim = best.and_then(|(at, _)| walked.get(at).copied());
        for entry in &walked {
            if Some(*entry) != victim {
                ring.push_back(*entry);
            }
        }
        let Some((key, _, _)) = victim else {
            return false;
        };
        if let Some(link) = self.links.remove(&key) {
            self.keys_by_id.remove(&link.id);
            self.stats.evicted = self.stats.evicted.saturating_add(1);
            self.forget(&key, &link);
        }
        true
    }

    /// Gives back what an ended or evicted link held: its inner-flow budget, its pair and its
    /// place in its source's share.
    fn forget(&mut self, key: &LinkKey, link: &Link) {
        if let Some(w) = self.weights.get_mut(link.weight as usize) {
            if w.id == link.id {
                *w = LinkWeight::default();
                self.free_weights.push(link.weight);
            }
        }
        let held: usize = link.sessions.iter().map(|s| s.inner_flows.len()).sum();
        self.inner_flows_total = self.inner_flows_total.saturating_sub(held);
        release_pair(
            &mut self.pairs,
            &mut self.pair_index,
            &mut self.free_pairs,
            key.pair(),
            link.pair,
        );
        let group_key = key.group(link.source);
        let freed = release_group(
            &mut self.groups,
            &mut self.group_index,
            &mut self.free_groups,
            group_key,
            link.group,
            link.group_slot,
            link.collector(key),
        );
        // At the end of the run the copy stays: the other threads, draining at the same
        // time, still judge their links with it (the exchange goes with the pipeline).
        if let (true, Some(seat), false) = (freed, &self.exchange, self.draining) {
            seat.withdraw(group_key);
        }
        if let Some(s) = self.sources.get_mut(&link.source) {
            s.links = s.links.saturating_sub(1);
            if s.links == 0 {
                self.sources.remove(&link.source);
            }
        }
    }

    /// Decides every undecided link that is due by packet time `now` (`decide_after_s` since
    /// its first packet), without waiting for its next packet: a short mirror stream on a
    /// live link alerts `decide_after_s` after it started, not when it times out. Its alerts
    /// are queued for [`TunnelTable::take_alerts`].
    pub fn decide_due(&mut self, now: Timestamp) {
        for (key, link) in &mut self.links {
            if link.decided || !self.policy.ripe(&link.evidence, now) {
                continue;
            }
            decide(
                key,
                link,
                &self.pairs,
                &self.groups,
                self.exchange.as_ref(),
                self.policy,
                now,
                false,
            );
            if link.class == MirrorClass::Mirror {
                queue_alerts(key, link, &mut self.pending_alerts);
            }
            if let Some(w) = self.weights.get_mut(link.weight as usize) {
                *w = LinkWeight::of(link);
            }
        }
    }

    /// Hands over the tunnel-id flood findings not yet written.
    pub fn take_floods(&mut self, emit: &mut impl FnMut(TunnelFloodRecord)) {
        for r in self.pending_floods.drain(..) {
            emit(r);
        }
    }

    /// Applies a reloaded `[networks]` and `[mirror]` configuration: later sessions are judged
    /// against `inventory` and decided by `policy`, and so is every open session, at once. An
    /// operator who just approved a collector expects its running mirror to be approved: the
    /// session's record says so at its end (an alert already written is not withdrawn). A
    /// session of a `mirror` link that the new inventory no longer approves is queued for its
    /// alert; a queued alert of a session now approved is dropped. Costs one pass over the
    /// open links (reloads are rare).
    pub fn set_inventory(&mut self, inventory: CollectorInventory, policy: DecidePolicy) {
        self.inventory = inventory;
        self.policy = policy;
        for (key, link) in &mut self.links {
            for (i, s) in link.sessions.iter_mut().enumerate() {
                if s.packets == 0 {
                    continue;
                }
                // Session 0 goes from the lower address to the higher one (see `observe_link`).
                let (src, dst) = if i == 0 {
                    (key.lo, key.hi)
                } else {
                    (key.hi, key.lo)
                };
                s.approval =
                    self.inventory
                        .judge(addr_to_ip(src), addr_to_ip(dst), key.kind, key.id);
                s.collector_home = self.inventory.is_home(addr_to_ip(dst));
            }
            if link.class == MirrorClass::Mirror {
                queue_alerts(key, link, &mut self.pending_alerts);
            }
        }
        // One pass: each entry looks its link up once (membership is a flag per session, so
        // the queueing above is linear too).
        let links = &mut self.links;
        self.pending_alerts.retain(|(key, id, i)| {
            let Some(s) = links
                .get_mut(key)
                .filter(|l| l.id == *id)
                .and_then(|l| l.sessions.get_mut(*i))
            else {
                return false;
            };
            s.queued = s.approval != Approval::Approved;
            s.queued
        });
    }

    /// Applies a reloaded idle timeout and per-session inner-flow cap (the link capacity and
    /// the inner-flow budget stay as sized at start). Open links idle out by the new timeout.
    pub fn set_limits(&mut self, idle_timeout: Duration, max_inner_flows: usize) {
        self.idle_timeout = idle_timeout;
        self.max_inner_flows = max_inner_flows;
    }

    /// Hands out link ids `first`, `first + step`, ... (before the first link): table `i` of
    /// `n` (live capture threads, see `pipeline.rs`) takes `first = i + 1`, `step = n`, so
    /// ids stay unique over the run and `(id - 1) % n` names the table that owns a link.
    pub fn set_link_ids(&mut self, first: u64, step: u64) {
        self.next_link_id = first.max(1);
        self.link_id_step = step.max(1);
    }

    /// Sharded capture: joins the exchange where the capture threads' tables meet their
    /// source groups, as table `table` (see `tunnel/exchange.rs`).
    pub fn join_exchange(&mut self, shared: std::sync::Arc<GroupExchange>, table: usize) {
        self.exchange = Some(ExchangeSeat {
            shared,
            table: u16::try_from(table).unwrap_or(u16::MAX),
            published_at: Timestamp::ZERO,
            cursor: 0,
        });
    }

    /// Sharded capture: publishes the source groups that changed since the last call, at
    /// most every [`PUBLISH_EVERY`] of packet time unless `now_anyway` (before the fronts
    /// meet at shutdown). Cheap when nothing is due: one comparison.
    #[inline]
    pub fn publish_groups(&mut self, now: Timestamp, now_anyway: bool) {
        let Some(seat) = &self.exchange else {
            return;
        };
        if !now_anyway && now.saturating_since(seat.published_at) < PUBLISH_EVERY {
            return;
        }
        self.publish_changed(now, now_anyway);
    }

    /// The walk of [`TunnelTable::publish_groups`], when due.
    #[inline(never)]
    fn publish_changed(&mut self, now: Timestamp, now_anyway: bool) {
        let Some(seat) = &mut self.exchange else {
            return;
        };
        seat.published_at = now;
        // Bounded per period, so a flood of new source groups (a new VNI every packet) costs
        // the front at most `PUBLISH_BATCH` copies per period; the rest wait for the next.
        // The walk resumes where the last one stopped, so no group waits behind others for
        // ever.
        let mut budget = if now_anyway {
            usize::MAX
        } else {
            PUBLISH_BATCH
        };
        let (n, start) = (self.groups.len(), seat.cursor);
        for step in 0..n {
            if budget == 0 {
                break;
            }
            let i = (start + step) % n;
            if let Some(g) = self.groups.get_mut(i).filter(|g| g.dirty) {
                g.dirty = false;
                if let Some(key) = g.key {
                    seat.publish(key, g);
                }
                budget -= 1;
                seat.cursor = i + 1;
            }
        }
    }

    /// Counts a copy found the other way round: a native packet matching an inner frame of
    /// `link` seen shortly before.
    pub fn note_duplicate(&mut self, link: u64) {
        let Some(key) = self.keys_by_id.get(&link) else {
            return;
        };
        if let Some(l) = self.links.get_mut(key) {
            l.evidence.duplicates = l.evidence.duplicates.saturating_add(1);
        }
    }

    /// The class of link `link` now (`None`: no such link). A read accessor for the flow
    /// detectors' hint: inner flows of a mirror are copies.
    pub fn link_class(&self, link: u64) -> Option<MirrorClass> {
        let key = self.keys_by_id.get(&link)?;
        self.links.get(key).map(|l| l.class)
    }

    /// Hands over the sessions to alert on (each once), marking them alerted.
    pub fn take_alerts(&mut self, emit: &mut impl FnMut(TunnelSessionRecord)) {
        let pending = std::mem::take(&mut self.pending_alerts);
        for (key, id, i) in &pending {
            if let Some(link) = self.links.get_mut(key).filter(|l| l.id == *id) {
                if let Some(s) = link.sessions.get_mut(*i) {
                    s.alerted = true;
                    s.queued = false;
                }
                if let Some(r) = session_record(key, link, *i, self.pairs.get(link.pair as usize)) {
                    emit(r);
                }
            }
        }
        self.pending_alerts = pending;
        self.pending_alerts.clear();
    }

    /// Ends links idle for longer than the timeout: sessions decided only now are classified
    /// with the evidence they have, their alerts go to `alert` and then every session's
    /// record to `record`.
    pub fn expire(
        &mut self,
        now: Timestamp,
        alert: &mut impl FnMut(TunnelSessionRecord),
        record: &mut impl FnMut(TunnelSessionRecord),
    ) {
        self.decide_due(now);
        let timeout = self.idle_timeout;
        if !self.links.values().any(|l| l.last_seen + timeout <= now) {
            return;
        }
        let mut ended: Vec<(LinkKey, Link)> = self
            .links
            .extract_if(|_, l| l.last_seen + timeout <= now)
            .collect();
        ended.sort_by_key(|(_, link)| link.id);
        for (_, link) in &ended {
            self.keys_by_id.remove(&link.id);
        }
        self.stats.expired = self.stats.expired.saturating_add(ended.len() as u64);
        self.finish_links(ended, now, alert, record);
    }

    /// Ends every link (end of input, shutdown), as [`TunnelTable::expire`] does.
    pub fn drain(
        &mut self,
        now: Timestamp,
        alert: &mut impl FnMut(TunnelSessionRecord),
        record: &mut impl FnMut(TunnelSessionRecord),
    ) {
        // Report in link order so output is stable run to run.
        let mut all: Vec<(LinkKey, Link)> = self.links.drain().collect();
        self.keys_by_id.clear();
        all.sort_by_key(|(_, link)| link.id);
        self.draining = true;
        self.finish_links(all, now, alert, record);
        self.draining = false;
    }

    fn finish_links(
        &mut self,
        mut links: Vec<(LinkKey, Link)>,
        now: Timestamp,
        alert: &mut impl FnMut(TunnelSessionRecord),
        record: &mut impl FnMut(TunnelSessionRecord),
    ) {
        for (key, link) in &mut links {
            // With the evidence other links of the pair gathered since this link's last packet.
            if !link.decided {
                decide(
                    key,
                    link,
                    &self.pairs,
                    &self.groups,
                    self.exchange.as_ref(),
                    self.policy,
                    now,
                    true,
                );
            }
            for i in 0..link.sessions.len() {
                let Some(s) = link.sessions.get(i) else {
                    continue;
                };
                if s.packets == 0 {
                    continue;
                }
                if link.class == MirrorClass::Mirror
                    && s.approval != Approval::Approved
                    && !s.alerted
                {
                    if let Some(r) =
                        session_record(key, link, i, self.pairs.get(link.pair as usize))
                    {
                        alert(r);
                    }
                    if let Some(s) = link.sessions.get_mut(i) {
                        s.alerted = true;
                    }
                }
            }
        }
        for (key, link) in &links {
            let pair = self.pairs.get(link.pair as usize);
            for i in 0..link.sessions.len() {
                if let Some(r) = session_record(key, link, i, pair) {
                    let class = match r.class {
                        MirrorClass::Unknown => 0,
                        MirrorClass::Mirror => 1,
                        MirrorClass::Overlay => 2,
                    };
                    self.stats.sessions_by_class[class] =
                        self.stats.sessions_by_class[class].saturating_add(1);
                    record(r);
                }
            }
        }
        for (key, link) in &links {
            self.forget(key, link);
        }
    }

    /// Live links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// No live links.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> TunnelTableStats {
        self.stats
    }

    /// A stable hash of an inner flow identity, for the distinct count.
    pub fn inner_flow_hash(&self, key: &flowtable::FlowKey) -> u64 {
        self.links.hasher().hash_one(key)
    }
}

/// Finds or creates the slab entry of an outer pair and counts one more link on it.
/// Whether a sweep entry's link is still the one in its weight slot.
fn is_live(weights: &[LinkWeight], e: &SweepEntry) -> bool {
    weights.get(e.2 as usize).is_some_and(|w| w.id == e.1)
}

fn acquire_pair(
    pairs: &mut Vec<PairEvidence>,
    index: &mut HashMap<PairKey, u32, foldhash::quality::SeedableRandomState>,
    free: &mut Vec<u32>,
    key: PairKey,
) -> u32 {
    let slot = *index.entry(key).or_insert_with(|| match free.pop() {
        Some(slot) => slot,
        None => {
            pairs.push(PairEvidence::default());
            u32::try_from(pairs.len() - 1).unwrap_or(u32::MAX)
        }
    });
    if let Some(p) = pairs.get_mut(slot as usize) {
        p.links = p.links.saturating_add(1);
    }
    slot
}

/// Counts one link less on a pair; the last one frees the slab entry.
fn release_pair(
    pairs: &mut [PairEvidence],
    index: &mut HashMap<PairKey, u32, foldhash::quality::SeedableRandomState>,
    free: &mut Vec<u32>,
    key: PairKey,
    slot: u32,
) {
    let Some(p) = pairs.get_mut(slot as usize) else {
        return;
    };
    p.links = p.links.saturating_sub(1);
    if p.links == 0 {
        *p = PairEvidence::default();
        index.remove(&key);
        free.push(slot);
    }
}

/// Finds or creates the slab entry of a source group, counts one more link on it and gives
/// the link a collector slot (or [`NO_SLOT`] when the group's slots are all taken).
fn acquire_group(
    groups: &mut Vec<SourceGroup>,
    index: &mut HashMap<SourceGroupKey, u32, foldhash::quality::SeedableRandomState>,
    free: &mut Vec<u32>,
    key: SourceGroupKey,
    collector: [u8; 16],
) -> (u32, u8) {
    let slot = *index.entry(key).or_insert_with(|| match free.pop() {
        Some(slot) => slot,
        None => {
            groups.push(SourceGroup::default());
            u32::try_from(groups.len() - 1).unwrap_or(u32::MAX)
        }
    });
    let Some(g) = groups.get_mut(slot as usize) else {
        return (slot, NO_SLOT);
    };
    g.key = Some(key);
    g.links = g.links.saturating_add(1);
    (slot, g.claim_slot(collector))
}

/// Counts one link less on a source group and gives its collector slot back (with the
/// evidence it held); the last link frees the slab entry (`true`).
fn release_group(
    groups: &mut [SourceGroup],
    index: &mut HashMap<SourceGroupKey, u32, foldhash::quality::SeedableRandomState>,
    free: &mut Vec<u32>,
    key: SourceGroupKey,
    slot: u32,
    collector_slot: u8,
    collector: [u8; 16],
) -> bool {
    let Some(g) = groups.get_mut(slot as usize) else {
        return false;
    };
    if g.owns(collector_slot, &collector) {
        g.release_slot(collector_slot);
    }
    g.links = g.links.saturating_sub(1);
    if g.links == 0 {
        *g = SourceGroup::default();
        index.remove(&key);
        free.push(slot);
        return true;
    }
    false
}

/// The record of session `i` of a link, `None` if it carried nothing.
fn session_record(
    key: &LinkKey,
    link: &Link,
    i: usize,
    pair: Option<&PairEvidence>,
) -> Option<TunnelSessionRecord> {
    let s = link.sessions.get(i)?;
    if s.packets == 0 {
        return None;
    }
    let (src, dst) = if i == 0 {
        (key.lo, key.hi)
    } else {
        (key.hi, key.lo)
    };
    let mut top: ArrayVec<(FlowKey, u64), TOP_CONVERSATIONS> = pair
        .map(|p| p.conversations.iter().collect())
        .unwrap_or_default();
    top.sort_by_key(|&(_, packets)| std::cmp::Reverse(packets));
    Some(TunnelSessionRecord {
        kind: key.kind,
        id: key.id,
        depth: link.depth,
        link: link.id,
        src,
        dst,
        src_port: s.src_port,
        dst_port: s.dst_port,
        packets: s.packets,
        bytes: s.bytes,
        first_seen: s.first_seen,
        last_seen: s.last_seen,
        inner_flows: s.inner_flows.len() as u64,
        inner_flows_capped: s.inner_flows_capped,
        truncated_packets: s.truncated_packets,
        nonstandard_port: s.nonstandard_port,
        class: link.class,
        reason: link.reason,
        approval: s.approval,
        collector_home: s.collector_home,
        one_way: link.evidence.packets[0] == 0 || link.evidence.packets[1] == 0,
        duplicates: link.evidence.duplicates,
        erspan_ingress: s.erspan_ingress,
        erspan_egress: s.erspan_egress,
        top_conversations: top,
        sibling_collectors: link.siblings.clone(),
    })
}

/// Queues an alert for every session of a mirror link that carried packets, has an
/// unapproved collector and is neither alerted on nor queued already (a flag, not a scan of
/// the queue: a reload queues every open mirror session in one linear pass).
fn queue_alerts(key: &LinkKey, link: &mut Link, pending: &mut Vec<(LinkKey, u64, usize)>) {
    let id = link.id;
    for (i, s) in link.sessions.iter_mut().enumerate() {
        if s.packets > 0 && !s.alerted && !s.queued && s.approval != Approval::Approved {
            s.queued = true;
            pending.push((*key, id, i));
        }
    }
}

/// Classifies an undecided link from its own evidence and, where that leaves it open, its
/// outer pair's (see `detect/mirror_stream.rs`). The pair's support is counted only once the
/// link is due, so waiting links cost nothing extra per packet.
#[allow(clippy::too_many_arguments)] // One call per site; a struct would only rename them.
fn decide(
    key: &LinkKey,
    link: &mut Link,
    pairs: &[PairEvidence],
    groups: &[SourceGroup],
    exchange: Option<&ExchangeSeat>,
    policy: DecidePolicy,
    now: Timestamp,
    at_end: bool,
) {
    let mut siblings = 0u16;
    let mut peer_collectors = arrayvec::ArrayVec::<[u8; 16], GROUP_COLLECTORS>::new();
    if at_end || policy.ripe(&link.evidence, now) {
        link.evidence.pair_mirror_support = pairs
            .get(link.pair as usize)
            .map_or(0, |p| pair_support(&link.own, p));
        let (mut support, mask) = groups
            .get(link.group as usize)
            .map_or((0, 0), |g| spread_support(key, link, g));
        // Sharded capture: the source's links read by other capture threads, when the
        // table's own part of the group does not decide (see `tunnel/exchange.rs`).
        if let Some(seat) = exchange.filter(|_| support == 0) {
            if at_end || now >= link.peers_next_check {
                link.peers_next_check = now + PEER_CHECK_EVERY;
                let peers = peer_spread_support(key, link, seat);
                support = peers.conversations;
                peer_collectors = peers.collectors;
            }
        }
        link.evidence.spread_mirror_support = support;
        siblings = mask;
    }
    if let Some((class, reason)) = classify(key.kind, &link.evidence, policy, now, at_end) {
        link.class = class;
        link.reason = reason;
        link.decided = true;
        if reason == ClassReason::SpreadOverCollectors {
            // Once per link: the collectors the alert names.
            if let Some(g) = groups.get(link.group as usize) {
                link.siblings = (0..GROUP_COLLECTORS)
                    .filter(|&b| siblings & (1 << b) != 0)
                    .filter_map(|b| g.collectors.get(b))
                    .chain(&peer_collectors)
                    .map(|c| addr_to_ip(*c))
                    .collect();
            }
        }
    }
}

/// Conversations of a one-way link from its source, without a pattern of their own, whose
/// other inner direction the source sent over one-way links to other collectors of its
/// group; and those collectors, as a mask over the group's slots.
fn spread_support(key: &LinkKey, link: &Link, g: &SourceGroup) -> (u64, u16) {
    let Some(asks) = one_way_asks(key, link) else {
        return (0, 0);
    };
    // The link's own slot, and every slot that turned two-way, are no sibling evidence.
    let own_bit = link.slot_in(key, g).map_or(0, |slot| 1u16 << slot);
    let excluded = own_bit | g.two_way;
    let mut support = 0u64;
    let mut mask = 0u16;
    for (hash, other) in asks {
        let from = g.carried(hash, other, excluded);
        if from != 0 {
            support += 1;
            mask |= from;
        }
    }
    (support, mask)
}

/// What a one-way link from its source asks of its group: for each of its conversations
/// without a pattern of their own and seen in one inner direction only, the hash and the
/// other direction. `None` when the link is not one-way from its source.
fn one_way_asks<'l>(
    key: &LinkKey,
    link: &'l Link,
) -> Option<impl Iterator<Item = (u64, usize)> + Clone + 'l> {
    let d = link.source_dir(key);
    if link.evidence.packets[1 - d] != 0 {
        return None;
    }
    let own = &link.own;
    Some((0..usize::from(own.len)).filter_map(move |i| {
        let (&seen, &hash) = (own.seen.get(i)?, own.hashes.get(i)?);
        if has_pattern(seen, MIRROR_PATTERNS) || has_pattern(seen, OVERLAY_PATTERNS) {
            return None;
        }
        // The inner directions this link carried, from its source.
        match (seen >> (2 * d)) & 0b11 {
            0b01 => Some((hash, 1)),
            0b10 => Some((hash, 0)),
            _ => None,
        }
    }))
}

/// What the other capture threads' copies of the link's source group add (sharded capture):
/// the same question as [`spread_support`], asked of their one-way links.
fn peer_spread_support(key: &LinkKey, link: &Link, seat: &ExchangeSeat) -> exchange::PeerSupport {
    match one_way_asks(key, link) {
        Some(asks) => seat.peer_support(key.group(link.source), asks),
        None => exchange::PeerSupport::default(),
    }
}

/// A one-way link's packet in its source's group: which collector slot received which inner
/// direction of the conversation (space-saving over [`TOP_CONVERSATIONS`], as per link).
#[inline]
fn note_group_conversation(g: &mut SourceGroup, obs: &InnerObservation, collector_slot: u8) {
    let slot = match g.find(obs.hash) {
        Some(i) => i,
        None if usize::from(g.len) < TOP_CONVERSATIONS => {
            let i = usize::from(g.len);
            g.len += 1;
            if let (Some(h), Some(p), Some(v)) =
                (g.hashes.get_mut(i), g.packets.get_mut(i), g.via.get_mut(i))
            {
                (*h, *p, *v) = (obs.hash, 0, [0, 0]);
            }
            i
        }
        None => {
            let min = g.packets.iter().copied().min().unwrap_or(0);
            let Some(i) = g.packets.iter().position(|&p| p == min) else {
                return;
            };
            // Space-saving keeps the count, so a newcomer must earn its place.
            if let (Some(h), Some(v)) = (g.hashes.get_mut(i), g.via.get_mut(i)) {
                (*h, *v) = (obs.hash, [0, 0]);
            }
            g.dirty = true;
            i
        }
    };
    if let Some(p) = g.packets.get_mut(slot) {
        *p = p.saturating_add(1);
    }
    if let Some(p) = g.slot_packets.get_mut(usize::from(collector_slot)) {
        *p = p.saturating_add(1);
    }
    if let (Some(v), true) = (
        g.via.get_mut(slot),
        usize::from(collector_slot) < GROUP_COLLECTORS,
    ) {
        let bit = 1 << collector_slot;
        if v[obs.dir.index()] & bit == 0 {
            v[obs.dir.index()] |= bit;
            g.dirty = true;
        }
    }
}

/// Conversations of a link without a pattern of their own that its pair saw with both
/// directions in one outer direction.
fn pair_support(own: &LinkConversations, pair: &PairEvidence) -> u64 {
    let c = &pair.conversations;
    let mirrored = |hash: u64| {
        (0..c.keys.len()).any(|j| {
            c.hashes.get(j) == Some(&hash)
                && c.seen
                    .get(j)
                    .is_some_and(|s| has_pattern(*s, MIRROR_PATTERNS))
        })
    };
    (0..usize::from(own.len))
        .filter(|&i| {
            own.seen.get(i).is_some_and(|s| {
                !has_pattern(*s, MIRROR_PATTERNS) && !has_pattern(*s, OVERLAY_PATTERNS)
            }) && own.hashes.get(i).is_some_and(|h| mirrored(*h))
        })
        .count() as u64
}

/// Whether `seen` shows one of `patterns`.
#[inline]
fn has_pattern(seen: u8, patterns: [u8; 2]) -> bool {
    patterns.iter().any(|p| seen & p == *p)
}

/// A link's own conversations, as [`note_conversation`] does for the pair: counts each
/// conversation's first pattern in the link's evidence.
#[inline]
fn note_own_conversation(
    c: &mut LinkConversations,
    ev: &mut LinkEvidence,
    obs: &InnerObservation,
    outer: usize,
) {
    let bit = 1u8 << (2 * outer + obs.dir.index());
    let slot = match c.find(obs.hash) {
        Some(i) => i,
        None if usize::from(c.len) < TOP_CONVERSATIONS => {
            let i = usize::from(c.len);
            c.len += 1;
            if let (Some(h), Some(p), Some(s)) =
                (c.hashes.get_mut(i), c.packets.get_mut(i), c.seen.get_mut(i))
            {
                (*h, *p, *s) = (obs.hash, 0, 0);
            }
            i
        }
        None => {
            let min = c.packets.iter().copied().min().unwrap_or(0);
            let Some(i) = c.packets.iter().position(|&p| p == min) else {
                return;
            };
            if let (Some(h), Some(s)) = (c.hashes.get_mut(i), c.seen.get_mut(i)) {
                (*h, *s) = (obs.hash, 0);
            }
            i
        }
    };
    let (Some(packets), Some(seen)) = (c.packets.get_mut(slot), c.seen.get_mut(slot)) else {
        return;
    };
    *packets = packets.saturating_add(1);
    let before = *seen;
    *seen |= bit;
    let after = *seen;
    if has_pattern(after, MIRROR_PATTERNS) && !has_pattern(before, MIRROR_PATTERNS) {
        ev.mirror_conversations = ev.mirror_conversations.saturating_add(1);
    }
    if has_pattern(after, OVERLAY_PATTERNS) && !has_pattern(before, OVERLAY_PATTERNS) {
        ev.overlay_conversations = ev.overlay_conversations.saturating_add(1);
    }
}

/// Records which outer direction carried which inner direction of a conversation, keeping
/// the most active conversations (space-saving: a new one replaces the least active).
fn note_conversation(pair: &mut PairEvidence, obs: &InnerObservation, outer: usize) {
    let c = &mut pair.conversations;
    let bit = 1u8 << (2 * outer + obs.dir.index());
    let slot = match c.find(obs.hash, &obs.key) {
        Some(i) => i,
        None if !c.keys.is_full() => {
            let i = c.keys.len();
            c.keys.push(obs.key);
            if let (Some(h), Some(p), Some(s)) =
                (c.hashes.get_mut(i), c.packets.get_mut(i), c.seen.get_mut(i))
            {
                (*h, *p, *s) = (obs.hash, 0, 0);
            }
            i
        }
        None => {
            let Some(i) = c.least_active() else {
                return;
            };
            // Space-saving keeps the evicted count so a newcomer must earn its place.
            if let (Some(k), Some(h), Some(s)) =
                (c.keys.get_mut(i), c.hashes.get_mut(i), c.seen.get_mut(i))
            {
                (*k, *h, *s) = (obs.key, obs.hash, 0);
            }
            i
        }
    };
    let (Some(packets), Some(seen)) = (c.packets.get_mut(slot), c.seen.get_mut(slot)) else {
        return;
    };
    *packets = packets.saturating_add(1);
    let before = *seen;
    *seen |= bit;
    let after = *seen;
    // Count a conversation the first time it shows a pattern.
    let has = |seen: u8, patterns: [u8; 2]| patterns.iter().any(|p| seen & p == *p);
    if has(after, MIRROR_PATTERNS) && !has(before, MIRROR_PATTERNS) {
        pair.mirror_conversations = pair.mirror_conversations.saturating_add(1);
    }
    if has(after, OVERLAY_PATTERNS) && !has(before, OVERLAY_PATTERNS) {
        pair.overlay_conversations = pair.overlay_conversations.saturating_add(1);
    }
}

/// The inner hosts of a record's top conversations, deduplicated, in order of activity.
pub fn inner_hosts(record: &TunnelSessionRecord) -> ArrayVec<IpAddr, { 2 * TOP_CONVERSATIONS }> {
    let mut hosts = ArrayVec::new();
    for (key, _) in &record.top_conversations {
        for ip in [key.lo_ip(), key.hi_ip()] {
            if !hosts.contains(&ip) {
                hosts.push(ip);
            }
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use flowtable::IpProto;
    use flowtable::key::ip_to_addr;
    use std::sync::Arc;

    fn ip(s: &str) -> [u8; 16] {
        ip_to_addr(s.parse().unwrap())
    }

    fn vx(src: &str, dst: &str, vni: u32) -> TunnelLayer {
        TunnelLayer {
            kind: TunnelKind::Vxlan,
            id: vni,
            outer_src: ip(src),
            outer_dst: ip(dst),
            outer_src_port: 50000,
            outer_dst_port: 4789,
            nonstandard_port: false,
            mirror_truncated: false,
            erspan_egress: None,
        }
    }

    /// Inner packet `a:1000 -> b:80` (`reply` flips it).
    fn inner(a: &str, b: &str, reply: bool) -> InnerObservation {
        let (src, dst) = if reply { (b, a) } else { (a, b) };
        let (sp, dp) = if reply { (80, 1000) } else { (1000, 80) };
        let (key, dir) = FlowKey::new(ip(src), sp, ip(dst), dp, IpProto::TCP, 0);
        InnerObservation {
            key,
            dir,
            hash: u64::from(key.lo_port) ^ u64::from(key.lo_addr[15]),
            duplicate: false,
        }
    }

    fn table(config: &Config) -> TunnelTable {
        TunnelTable::new(
            16,
            Duration::from_secs(60),
            100,
            1000,
            CollectorInventory::from_config(config),
            DecidePolicy {
                after_packets: 4,
                after: Duration::from_secs(5),
                min_age: Duration::ZERO,
            },
        )
    }

    fn drain(t: &mut TunnelTable) -> (Vec<TunnelSessionRecord>, Vec<TunnelSessionRecord>) {
        let (mut alerts, mut records) = (Vec::new(), Vec::new());
        t.drain(Timestamp(99), &mut |r| alerts.push(r), &mut |r| {
            records.push(r)
        });
        (alerts, records)
    }

    #[test]
    fn both_directions_share_a_link_but_report_two_sessions() {
        let mut t = table(&Config::default());
        let obs = inner("192.168.1.1", "192.168.1.2", false);
        let a = t.observe(
            0,
            &vx("10.0.0.1", "10.0.0.2", 7),
            0,
            Timestamp(1),
            100,
            Some(&obs),
            true,
        );
        let b = t.observe(
            0,
            &vx("10.0.0.2", "10.0.0.1", 7),
            0,
            Timestamp(2),
            50,
            Some(&obs),
            true,
        );
        let c = t.observe(
            0,
            &vx("10.0.0.1", "10.0.0.2", 8),
            0,
            Timestamp(3),
            10,
            None,
            true,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        let (_, out) = drain(&mut t);
        assert_eq!(out.len(), 3);
        assert_eq!(
            (out[0].packets, out[0].bytes, out[0].inner_flows),
            (1, 100, 1)
        );
        assert_eq!(out[0].src, ip("10.0.0.1"));
        assert_eq!(out[1].src, ip("10.0.0.2"));
        assert_eq!(t.stats().sessions_by_kind[TunnelKind::Vxlan.index()], 3);
        assert!(t.is_empty());
    }

    #[test]
    fn one_way_stream_with_both_inner_directions_is_a_mirror_alerted_once() {
        let mut t = table(&Config::default());
        let layer = vx("10.0.0.5", "203.0.113.50", 100);
        for i in 0..6u64 {
            let obs = inner("192.168.1.1", "198.51.100.7", i % 2 == 1);
            t.observe(0, &layer, 0, Timestamp(i), 100, Some(&obs), true);
        }
        let mut alerts = Vec::new();
        t.take_alerts(&mut |r| alerts.push(r));
        assert_eq!(alerts.len(), 1, "decided after 4 packets, alerted at once");
        assert_eq!(alerts[0].class, MirrorClass::Mirror);
        assert_eq!(alerts[0].reason, ClassReason::OneWayBothDirections);
        assert_eq!(alerts[0].approval, Approval::UnapprovedCollector);
        t.take_alerts(&mut |r| alerts.push(r));
        let (end_alerts, records) = drain(&mut t);
        assert_eq!(
            (alerts.len(), end_alerts.len()),
            (1, 0),
            "one alert per session"
        );
        assert_eq!(records[0].top_conversations.len(), 1);
        assert_eq!(records[0].top_conversations[0].1, 6);
        assert!(records[0].one_way);
    }

    /// The class `observe_link` gives with the id is the table's own answer at that moment
    /// (what the pipeline asked `link_class` for before), across the packet that decides it.
    #[test]
    fn an_observed_link_carries_the_class_the_table_gives_it() {
        let mut t = table(&Config::default());
        let layer = vx("10.0.0.5", "203.0.113.50", 100);
        let mut seen = Vec::new();
        for i in 0..6u64 {
            let obs = inner("192.168.1.1", "198.51.100.7", i % 2 == 1);
            let link = t.observe_link(0, &layer, 0, Timestamp(i), 100, Some(&obs), true);
            assert_eq!(link.class, t.link_class(link.id), "packet {i}");
            seen.push(link.class);
        }
        assert_eq!(seen.first(), Some(&Some(MirrorClass::Unknown)));
        assert_eq!(seen.last(), Some(&Some(MirrorClass::Mirror)));
        // A full table that may evict nothing tracks no link, and says so.
        let mut full = table(&Config::default());
        full.capacity = 0;
        let obs = inner("192.168.1.1", "198.51.100.7", false);
        let link = full.observe_link(0, &layer, 0, Timestamp(1), 100, Some(&obs), true);
        assert_eq!(
            link,
            ObservedLink {
                id: OVERFLOW_LINK,
                class: None
            }
        );
    }

    #[test]
    fn vteps_exchanging_a_conversation_are_an_overlay() {
        let mut t = table(&Config::default());
        for i in 0..6u64 {
            let reply = i % 2 == 1;
            let layer = if reply {
                vx("10.0.0.2", "10.0.0.1", 5)
            } else {
                vx("10.0.0.1", "10.0.0.2", 5)
            };
            let obs = inner("192.168.1.1", "192.168.2.1", reply);
            t.observe(0, &layer, 0, Timestamp(i), 100, Some(&obs), true);
        }
        let (alerts, records) = drain(&mut t);
        assert!(alerts.is_empty());
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.class == MirrorClass::Overlay));
        assert_eq!(records[0].reason, ClassReason::InnerDirectionsFollowOuter);
    }

    #[test]
    fn approved_collectors_give_records_but_no_alert() {
        let mut config = Config::default();
        config.mirror.approved_collectors = vec!["203.0.113.0/24".parse().unwrap()];
        let mut t = table(&config);
        let layer = vx("10.0.0.5", "203.0.113.50", 100);
        for i in 0..6u64 {
            let obs = inner("192.168.1.1", "198.51.100.7", i % 2 == 1);
            t.observe(0, &layer, 0, Timestamp(i), 100, Some(&obs), true);
        }
        let mut alerts = Vec::new();
        t.take_alerts(&mut |r| alerts.push(r));
        let (end_alerts, records) = drain(&mut t);
        assert!(alerts.is_empty() && end_alerts.is_empty());
        assert_eq!(records[0].class, MirrorClass::Mirror);
        assert_eq!(records[0].approval, Approval::Approved);
    }

    /// Issue 6: a reload that approves the collector of an open mirror session records it
    /// approved at its end (the alert already written stays); one that withdraws the
    /// approval of an open mirror session alerts on it.
    #[test]
    fn reloaded_inventory_judges_open_sessions_again() {
        let mut approving = Config::default();
        approving.mirror.approved_collectors = vec!["203.0.113.0/24".parse().unwrap()];
        let layer = vx("10.0.0.5", "203.0.113.50", 100);
        let mirror = |t: &mut TunnelTable, from: u64| {
            for i in from..from + 6 {
                let obs = inner("192.168.1.1", "198.51.100.7", i % 2 == 1);
                t.observe(0, &layer, 0, Timestamp(i), 100, Some(&obs), true);
            }
        };

        // Unapproved, alerted, then approved by a reload.
        let mut t = table(&Config::default());
        mirror(&mut t, 0);
        let mut alerts = Vec::new();
        t.take_alerts(&mut |r| alerts.push(r));
        assert_eq!(alerts.len(), 1);
        t.set_inventory(
            CollectorInventory::from_config(&approving),
            DecidePolicy::from_config(&approving),
        );
        mirror(&mut t, 6);
        t.take_alerts(&mut |r| alerts.push(r));
        let (end_alerts, records) = drain(&mut t);
        assert_eq!((alerts.len(), end_alerts.len()), (1, 0), "no new alert");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].approval, Approval::Approved);
        assert_eq!(records[0].packets, 12, "the same session went on");

        // Approved, then no longer: the open session alerts at once.
        let mut t = table(&approving);
        mirror(&mut t, 0);
        t.take_alerts(&mut |r| alerts.push(r));
        assert_eq!(alerts.len(), 1, "approved: no alert");
        let unapproving = Config::default();
        t.set_inventory(
            CollectorInventory::from_config(&unapproving),
            DecidePolicy::from_config(&unapproving),
        );
        t.take_alerts(&mut |r| alerts.push(r));
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[1].approval, Approval::UnapprovedCollector);
        assert!(!alerts[1].collector_home);
        let (end_alerts, records) = drain(&mut t);
        assert!(end_alerts.is_empty(), "alerted once");
        assert_eq!(records[0].approval, Approval::UnapprovedCollector);
    }

    #[test]
    fn short_sessions_are_decided_and_alerted_at_their_end() {
        let mut t = table(&Config::default());
        let layer = vx("10.0.0.5", "10.9.9.9", 1);
        for i in 0..2u64 {
            let obs = inner("192.168.1.1", "198.51.100.7", i == 1);
            t.observe(0, &layer, 0, Timestamp(i), 100, Some(&obs), true);
        }
        let mut early = Vec::new();
        t.take_alerts(&mut |r| early.push(r));
        assert!(
            early.is_empty(),
            "2 packets are below the decision threshold"
        );
        let (alerts, _) = drain(&mut t);
        assert_eq!(alerts.len(), 1);
    }

    #[test]
    fn conversation_tracking_is_bounded() {
        let mut t = table(&Config::default());
        let layer = vx("10.0.0.5", "203.0.113.50", 100);
        for i in 0..100u8 {
            let obs = inner(&format!("192.168.1.{i}"), "198.51.100.7", false);
            t.observe(0, &layer, 0, Timestamp(u64::from(i)), 100, Some(&obs), true);
        }
        let (_, records) = drain(&mut t);
        assert_eq!(records[0].top_conversations.len(), TOP_CONVERSATIONS);
        assert_eq!(records[0].inner_flows, 100);
    }

    #[test]
    fn a_copy_found_from_the_native_side_counts_for_its_link() {
        let mut t = table(&Config::default());
        let layer = vx("10.0.0.5", "203.0.113.50", 100);
        // One inner direction only: the direction pattern cannot decide.
        let obs = inner("192.168.1.1", "198.51.100.7", false);
        let link = t.observe(0, &layer, 0, Timestamp(1), 100, Some(&obs), true);
        t.note_duplicate(link);
        t.note_duplicate(link + 1000);
        let (alerts, records) = drain(&mut t);
        assert_eq!(alerts.len(), 1);
        assert_eq!(records[0].reason, ClassReason::DuplicatesNativeTraffic);
        assert_eq!(records[0].duplicates, 1);
    }

    #[test]
    fn a_link_from_an_address_to_itself_gives_no_direction_evidence() {
        let mut t = table(&Config::default());
        let layer = vx("127.0.0.1", "127.0.0.1", 4242);
        for i in 0..6u64 {
            let obs = inner("192.168.1.1", "198.51.100.7", i % 2 == 1);
            t.observe(0, &layer, 0, Timestamp(i), 100, Some(&obs), true);
        }
        let (alerts, records) = drain(&mut t);
        assert!(alerts.is_empty());
        assert_eq!(records[0].class, MirrorClass::Unknown);
    }

    #[test]
    fn ingress_and_egress_copies_under_two_keys_are_one_mirror() {
        // As in Zeek's erspan.pcap: key 0 carries client -> server, key 2 server -> client,
        // both from the mirror source to the collector.
        let mut t = table(&Config::default());
        for i in 0..8u64 {
            let reply = i % 2 == 1;
            let layer = vx("10.200.0.3", "10.200.0.224", if reply { 2 } else { 0 });
            let obs = inner("192.168.69.10", "192.168.69.2", reply);
            t.observe(0, &layer, 0, Timestamp(i), 100, Some(&obs), true);
        }
        let (alerts, records) = drain(&mut t);
        assert_eq!(records.len(), 2);
        assert!(
            records.iter().all(|r| r.class == MirrorClass::Mirror),
            "{records:?}"
        );
        assert_eq!(alerts.len(), 2, "one alert per session (each key)");
        assert!(t.pair_index.is_empty() && t.keys_by_id.is_empty());
        assert!(t.pairs.iter().all(|p| p.links == 0));
    }

    /// Issue 16: one source deals the packets of its conversations round-robin over four
    /// collectors, so the requests of every conversation go to one and the replies to the
    /// next; each collector's link is one-way with one direction per conversation.
    fn spread_mirror(t: &mut TunnelTable, collectors: u8, conversations: u8) {
        let mut n = 0u64;
        for c in 0..conversations {
            let host = format!("192.168.1.{}", c + 1);
            for reply in [false, true] {
                let collector = format!("203.0.113.{}", 50 + (n % u64::from(collectors)));
                let obs = inner(&host, "198.51.100.7", reply);
                t.observe(
                    0,
                    &vx("10.0.0.5", &collector, 100),
                    0,
                    Timestamp(n),
                    100,
                    Some(&obs),
                    true,
                );
                n += 1;
            }
        }
    }

    #[test]
    fn a_mirror_spread_over_collectors_is_a_mirror_for_each_naming_its_siblings() {
        let mut t = table(&Config::default());
        // Collector k gets packets k, k + 4, ...: .50 and .52 the requests, .51 and .53 the
        // replies of alternate conversations.
        spread_mirror(&mut t, 4, 8);
        let mut alerts = Vec::new();
        t.take_alerts(&mut |r| alerts.push(r));
        let (end_alerts, records) = drain(&mut t);
        assert_eq!(records.len(), 4);
        for r in &records {
            assert_eq!(
                (r.class, r.reason),
                (MirrorClass::Mirror, ClassReason::SpreadOverCollectors),
                "{r:?}"
            );
            assert!(r.one_way);
        }
        // Decided at each link's 4th packet, one alert per collector, none left for the end.
        assert_eq!((alerts.len(), end_alerts.len()), (4, 0));
        let siblings = |last: u8| {
            let r = records
                .iter()
                .find(|r| r.dst == ip(&format!("203.0.113.{last}")))
                .unwrap();
            r.sibling_collectors.clone()
        };
        // .50 carries the requests of conversations 0, 2, 4, 6, whose replies went to .51:
        // the siblings are those the decision used, and only those.
        let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
        assert_eq!(siblings(50), vec![v4("203.0.113.51")]);
        assert_eq!(siblings(51), vec![v4("203.0.113.50")]);
        assert_eq!(siblings(52), vec![v4("203.0.113.53")]);
        assert_eq!(siblings(53), vec![v4("203.0.113.52")]);
        assert!(t.group_index.is_empty(), "groups go with their last link");
        assert!(t.groups.iter().all(|g| g.links == 0 && g.used == 0));
    }

    /// Sharded capture: the spread mirror of `spread_mirror` (4 collectors, 8 conversations,
    /// 10 ms apart) with collector .50 read by table `a` and the others by table `b`. Returns
    /// the records of both, drained as the fronts drain: both publish, then both drain.
    fn split_spread_mirror(
        a: &mut TunnelTable,
        b: &mut TunnelTable,
        collector_replies: bool,
    ) -> Vec<TunnelSessionRecord> {
        let mut n = 0u64;
        let ms = |n: u64| Timestamp(n * 10_000_000);
        for c in 0..8u8 {
            let host = format!("192.168.1.{}", c + 1);
            for reply in [false, true] {
                let last = 50 + (n % 4) as u8;
                let collector = format!("203.0.113.{last}");
                let t = if last == 50 { &mut *a } else { &mut *b };
                let obs = inner(&host, "198.51.100.7", reply);
                t.observe(
                    0,
                    &vx("10.0.0.5", &collector, 100),
                    0,
                    ms(n),
                    100,
                    Some(&obs),
                    true,
                );
                if collector_replies && last == 51 {
                    t.observe(
                        0,
                        &vx(&collector, "10.0.0.5", 100),
                        0,
                        ms(n),
                        60,
                        None,
                        true,
                    );
                }
                t.publish_groups(ms(n), false);
                n += 1;
            }
        }
        a.publish_groups(ms(n), true);
        b.publish_groups(ms(n), true);
        let (mut alerts, mut records) = (Vec::new(), Vec::new());
        for t in [a, b] {
            t.take_alerts(&mut |r| alerts.push(r));
            t.drain(ms(n), &mut |r| alerts.push(r), &mut |r| records.push(r));
        }
        records.sort_by_key(|r| r.dst);
        records
    }

    fn two_tables(exchange: Option<&Arc<GroupExchange>>) -> (TunnelTable, TunnelTable) {
        let (mut a, mut b) = (table(&Config::default()), table(&Config::default()));
        a.set_link_ids(1, 2);
        b.set_link_ids(2, 2);
        if let Some(x) = exchange {
            a.join_exchange(Arc::clone(x), 0);
            b.join_exchange(Arc::clone(x), 1);
        }
        (a, b)
    }

    #[test]
    fn a_spread_mirror_split_over_two_tables_is_joined_through_the_exchange() {
        let class_of = |records: &[TunnelSessionRecord]| -> Vec<(u8, MirrorClass)> {
            records.iter().map(|r| (r.dst[15], r.class)).collect()
        };
        // Alone, neither .50 (table a) nor .51 (table b), which carry the two directions of
        // the same conversations, can see the spread (the old limit).
        let (mut a, mut b) = two_tables(None);
        let alone = split_spread_mirror(&mut a, &mut b, false);
        assert_eq!(
            class_of(&alone),
            [
                (50, MirrorClass::Unknown),
                (51, MirrorClass::Unknown),
                (52, MirrorClass::Mirror),
                (53, MirrorClass::Mirror)
            ]
        );
        // Joined, each link is judged as one table would judge it.
        let exchange = GroupExchange::new(2);
        let (mut a, mut b) = two_tables(Some(&exchange));
        let joined = split_spread_mirror(&mut a, &mut b, false);
        for r in &joined {
            assert_eq!(
                (r.class, r.reason),
                (MirrorClass::Mirror, ClassReason::SpreadOverCollectors),
                "{r:?}"
            );
        }
        let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
        // .50 carries the requests whose replies went to .51, read by the other table.
        assert_eq!(joined[0].sibling_collectors, vec![v4("203.0.113.51")]);
        assert_eq!(joined[1].sibling_collectors, vec![v4("203.0.113.50")]);
        // What one table decides with the exchange, it decides as a single table does.
        let mut single = table(&Config::default());
        spread_mirror(&mut single, 4, 8);
        let (_, records) = drain(&mut single);
        assert_eq!(class_of(&joined), class_of(&records));
    }

    #[test]
    fn another_tables_two_way_link_is_no_spread_evidence() {
        // .51 answers its source: an overlay-like link, no evidence for .50 (as in one table).
        let exchange = GroupExchange::new(2);
        let (mut a, mut b) = two_tables(Some(&exchange));
        let records = split_spread_mirror(&mut a, &mut b, true);
        let of = |last: u8| records.iter().find(|r| r.dst[15] == last && r.src[15] == 5);
        assert_eq!(of(50).map(|r| r.class), Some(MirrorClass::Unknown));
        assert_eq!(of(51).map(|r| r.class), Some(MirrorClass::Unknown));
    }

    #[test]
    fn exchange_entries_are_published_on_time_and_go_with_their_groups() {
        let exchange = GroupExchange::new(2);
        let (mut a, _) = two_tables(Some(&exchange));
        let obs = inner("192.168.1.1", "198.51.100.7", false);
        let layer = vx("10.0.0.5", "203.0.113.50", 100);
        let t0 = Timestamp(1_000_000_000);
        a.observe(0, &layer, 0, t0, 100, Some(&obs), true);
        a.publish_groups(t0, false);
        assert_eq!(exchange.len(), 1, "the first publication is due at once");
        let obs2 = inner("192.168.1.2", "198.51.100.7", false);
        let t1 = t0 + Duration::from_millis(10);
        a.observe(0, &layer, 0, t1, 100, Some(&obs2), true);
        a.publish_groups(t1, false);
        let conversations = |x: &GroupExchange| x.groups.iter().map(|e| e.value().len).sum::<u8>();
        assert_eq!(conversations(&exchange), 1, "not due before PUBLISH_EVERY");
        a.publish_groups(t1 + PUBLISH_EVERY, false);
        assert_eq!(conversations(&exchange), 2);
        // The link idles out: its group ends and its copy goes.
        let (mut alerts, mut records) = (Vec::new(), Vec::new());
        a.expire(
            t1 + Duration::from_secs(120),
            &mut |r| alerts.push(r),
            &mut |r| records.push(r),
        );
        assert_eq!(records.len(), 1);
        assert!(exchange.is_empty());
    }

    #[test]
    fn a_flood_of_groups_is_published_a_batch_per_period_and_none_waits_for_ever() {
        let exchange = GroupExchange::new(2);
        let mut t = sized(4096);
        t.join_exchange(Arc::clone(&exchange), 0);
        let sources = PUBLISH_BATCH + 300;
        let t0 = Timestamp(1_000_000_000);
        // One packet from every source to one collector: each source's group changes.
        let every_source_sends = |t: &mut TunnelTable, reply: bool| {
            let obs = inner("192.168.1.1", "198.51.100.7", reply);
            for s in 0..sources {
                let src = format!("10.{}.{}.1", s / 256, s % 256);
                t.observe(
                    0,
                    &vx(&src, "203.0.113.50", 7),
                    0,
                    t0,
                    100,
                    Some(&obs),
                    true,
                );
            }
        };
        every_source_sends(&mut t, false);
        t.publish_groups(t0, false);
        assert_eq!(exchange.len(), PUBLISH_BATCH);
        t.publish_groups(t0 + PUBLISH_EVERY, false);
        assert_eq!(exchange.len(), sources);
        // Every group changes again: the walk goes on from where it stopped, so the groups
        // left out of the first batch are not behind the first batch's groups.
        every_source_sends(&mut t, true);
        let dirty = |t: &TunnelTable| t.groups.iter().filter(|g| g.dirty).count();
        t.publish_groups(t0 + PUBLISH_EVERY + PUBLISH_EVERY, false);
        assert_eq!(dirty(&t), sources - PUBLISH_BATCH);
        let late: Vec<usize> = (0..t.groups.len()).filter(|&i| t.groups[i].dirty).collect();
        t.publish_groups(t0 + Duration::from_millis(150), false);
        assert_eq!(dirty(&t), 0);
        assert!(late.iter().all(|&i| !t.groups[i].dirty));
    }

    #[test]
    fn a_spread_over_another_id_or_type_is_not_joined() {
        // Requests under VNI 100 to .50, replies under VNI 101 to .51: different ids are
        // different groups (and different pairs), so each link stays unknown.
        let mut t = table(&Config::default());
        for c in 0..4u8 {
            let host = format!("192.168.1.{}", c + 1);
            for (reply, collector, vni) in
                [(false, "203.0.113.50", 100), (true, "203.0.113.51", 101)]
            {
                let obs = inner(&host, "198.51.100.7", reply);
                t.observe(
                    0,
                    &vx("10.0.0.5", collector, vni),
                    0,
                    Timestamp(u64::from(c)),
                    100,
                    Some(&obs),
                    true,
                );
            }
        }
        let (alerts, records) = drain(&mut t);
        assert!(alerts.is_empty(), "{alerts:?}");
        assert!(records.iter().all(|r| r.class == MirrorClass::Unknown));
    }

    #[test]
    fn a_gateway_vtep_relaying_both_directions_stays_an_overlay() {
        // Overlay: X behind VTEP A talks to Y behind VTEP B through a gateway VTEP G (VNI
        // 5000). A -> G carries X -> Y, G relays it to B; B -> G carries Y -> X, G relays it
        // to A. G sends both directions of each conversation, to two collectors, but both
        // of its links are two-way: no spread mirror.
        let (a, b, g) = ("10.0.0.11", "10.0.0.12", "10.0.0.1");
        for first_from_gateway in [false, true] {
            let mut t = table(&Config::default());
            let mut n = 0u64;
            let mut send = |t: &mut TunnelTable, src: &str, dst: &str, reply: bool, conv: u8| {
                let obs = inner(&format!("192.168.50.{conv}"), "192.168.60.20", reply);
                t.observe(
                    0,
                    &vx(src, dst, 5000),
                    0,
                    Timestamp(n),
                    100,
                    Some(&obs),
                    true,
                );
                n += 1;
            };
            for conv in 1..=6u8 {
                if first_from_gateway {
                    // The gateway's own traffic first (e.g. a probe it originates), so the
                    // links are one-way for a moment from G's side.
                    send(&mut t, g, b, false, conv);
                    send(&mut t, g, a, true, conv);
                }
                send(&mut t, a, g, false, conv);
                send(&mut t, g, b, false, conv);
                send(&mut t, b, g, true, conv);
                send(&mut t, g, a, true, conv);
            }
            let (alerts, records) = drain(&mut t);
            assert!(alerts.is_empty(), "{alerts:?}");
            assert!(
                records.iter().all(|r| r.class != MirrorClass::Mirror),
                "{records:?}"
            );
        }
    }

    #[test]
    fn a_collector_that_answers_is_no_sibling_evidence() {
        // .50 receives requests one-way; .51 receives the replies but also sends tunnel
        // traffic back to the source: .51's link is two-way, so it lends .50 nothing.
        let mut t = table(&Config::default());
        for c in 0..4u8 {
            let host = format!("192.168.1.{}", c + 1);
            let req = inner(&host, "198.51.100.7", false);
            let rep = inner(&host, "198.51.100.7", true);
            let other = inner("192.168.9.9", "192.168.9.10", false);
            let at = Timestamp(u64::from(c));
            t.observe(
                0,
                &vx("10.0.0.5", "203.0.113.51", 100),
                0,
                at,
                100,
                Some(&rep),
                true,
            );
            t.observe(
                0,
                &vx("203.0.113.51", "10.0.0.5", 100),
                0,
                at,
                100,
                Some(&other),
                true,
            );
            t.observe(
                0,
                &vx("10.0.0.5", "203.0.113.50", 100),
                0,
                at,
                100,
                Some(&req),
                true,
            );
        }
        let (alerts, records) = drain(&mut t);
        assert!(alerts.is_empty(), "{alerts:?}");
        let to_50 = records
            .iter()
            .find(|r| r.dst == ip("203.0.113.50"))
            .unwrap();
        assert_eq!(
            (to_50.class, to_50.reason),
            (MirrorClass::Unknown, ClassReason::NotEnoughEvidence)
        );
    }

    #[test]
    fn source_groups_are_bounded_and_decoys_cannot_hold_the_slots() {
        // The adversary first opens GROUP_COLLECTORS decoy links (one packet each, kept
        // open), then spreads a mirror over 8 new collectors: requests of each conversation
        // to collector 2j, replies to 2j + 1. The spread links take the decoys' slots (the
        // least active) and are all found; the decoys stay unknown.
        let mut t = sized(256);
        for d in 0..GROUP_COLLECTORS {
            let obs = inner("192.168.200.99", "198.51.100.9", false);
            let collector = format!("198.51.100.{}", 100 + d);
            t.observe(
                0,
                &vx("10.0.0.5", &collector, 100),
                0,
                Timestamp(0),
                100,
                Some(&obs),
                true,
            );
        }
        let mut n = 1u64;
        for j in 0..4u8 {
            for c in 0..4u8 {
                let host = format!("192.168.{j}.{}", c + 1);
                for (reply, k) in [(false, 2 * j), (true, 2 * j + 1)] {
                    let obs = inner(&host, "198.51.100.7", reply);
                    let collector = format!("203.0.113.{}", 50 + k);
                    t.observe(
                        0,
                        &vx("10.0.0.5", &collector, 100),
                        0,
                        Timestamp(n),
                        100,
                        Some(&obs),
                        true,
                    );
                    n += 1;
                }
            }
        }
        let (alerts, records) = drain(&mut t);
        assert_eq!(records.len(), GROUP_COLLECTORS + 8);
        let mirrors: Vec<_> = records
            .iter()
            .filter(|r| r.class == MirrorClass::Mirror)
            .map(|r| addr_to_ip(r.dst))
            .collect();
        assert_eq!(mirrors.len(), 8, "{mirrors:?}");
        assert!(
            mirrors
                .iter()
                .all(|c| c.to_string().starts_with("203.0.113."))
        );
        assert_eq!(alerts.len(), 8);
        let groups = &t.groups;
        assert!(t.group_index.is_empty() && groups.iter().all(|g| g.links == 0 && g.used == 0));
    }

    #[test]
    fn erspan_truncation_and_direction_bits_are_counted_per_session() {
        let mut t = table(&Config::default());
        let mut layer = vx("10.0.0.5", "203.0.113.50", 300);
        layer.kind = TunnelKind::Erspan3;
        let mut early = Vec::new();
        for (truncated, egress) in [(true, true), (false, true), (true, false)] {
            layer.mirror_truncated = truncated;
            layer.erspan_egress = Some(egress);
            let obs = inner("192.168.1.1", "198.51.100.7", egress);
            t.observe(0, &layer, 0, Timestamp(1), 100, Some(&obs), true);
            // As the pipeline does after every encapsulated packet.
            t.take_alerts(&mut |r| early.push(r));
        }
        assert_eq!(
            early.len(),
            1,
            "ERSPAN is a mirror from its first packet, alerted once"
        );
        assert_eq!(early[0].packets, 1);
        let (_, records) = drain(&mut t);
        assert_eq!(records[0].truncated_packets, 2);
        assert_eq!(
            (records[0].erspan_ingress, records[0].erspan_egress),
            (1, 2)
        );
    }

    #[test]
    fn inner_flow_counting_shares_one_budget_across_sessions() {
        let mut t = TunnelTable::new(
            8,
            Duration::from_secs(10),
            100,
            5,
            CollectorInventory::default(),
            DecidePolicy::from_config(&Config::default()),
        );
        for f in 0..4u8 {
            for vni in [1, 2] {
                let obs = inner(&format!("192.168.1.{f}"), "198.51.100.7", false);
                let layer = vx("10.0.0.1", "10.0.0.2", vni);
                t.observe(0, &layer, 0, Timestamp(1), 1, Some(&obs), true);
            }
        }
        let (_, out) = drain(&mut t);
        let counted: u64 = out.iter().map(|r| r.inner_flows).sum();
        assert_eq!(counted, 5, "the budget holds over all sessions");
        assert!(out.iter().any(|r| r.inner_flows_capped));
        assert_eq!(
            t.inner_flows_total, 0,
            "ended sessions give their share back"
        );
    }

    #[test]
    fn capacity_is_a_hard_bound_and_counted() {
        let mut t = TunnelTable::new(
            1,
            Duration::from_secs(60),
            100,
            1000,
            CollectorInventory::default(),
            DecidePolicy::from_config(&Config::default()),
        );
        t.observe(
            0,
            &vx("10.0.0.1", "10.0.0.2", 1),
            0,
            Timestamp(1),
            1,
            None,
            true,
        );
        let over = t.observe(
            0,
            &vx("10.0.0.1", "10.0.0.2", 2),
            0,
            Timestamp(1),
            1,
            None,
            true,
        );
        assert_eq!(over, OVERFLOW_LINK);
        assert_eq!(t.len(), 1);
        assert_eq!(t.stats().table_full, 1);
    }

    /// A table as the pipeline sizes it, deciding after 4 packets or 5 s.
    fn sized(capacity: usize) -> TunnelTable {
        TunnelTable::new(
            capacity,
            Duration::from_secs(3600),
            100,
            100_000,
            CollectorInventory::default(),
            DecidePolicy {
                after_packets: 4,
                after: Duration::from_secs(5),
                min_age: Duration::ZERO,
            },
        )
    }

    /// Six packets of a one-way mirror of one conversation, both inner directions.
    fn mirror_packets(t: &mut TunnelTable, layer: &TunnelLayer, at: u64) -> u64 {
        let mut link = 0;
        for i in 0..6u64 {
            let obs = inner("192.168.1.1", "198.51.100.7", i % 2 == 1);
            link = t.observe(0, layer, 0, Timestamp(at + i), 100, Some(&obs), true);
        }
        link
    }

    fn links_of(t: &TunnelTable, src: &str) -> usize {
        t.sources.get(&ip(src)).map_or(0, |s| s.links)
    }

    /// Issue 19 item 1: a new VNI every packet from one outer pair (the flood) cannot hold
    /// more than its share; the real mirror that follows, from another source and from the
    /// flooding source itself, is still tracked and alerted, and the flood is alerted once.
    #[test]
    fn a_tunnel_id_flood_stays_in_its_share_and_is_alerted() {
        let mut t = sized(1024);
        let share = source_share(1024);
        assert_eq!(share, 128);
        let flood = |t: &mut TunnelTable, vni: u32| {
            let obs = inner("192.168.9.9", "198.51.100.9", false);
            let layer = vx("10.66.0.1", "10.66.0.2", vni);
            t.observe(0, &layer, 0, Timestamp(1000), 100, Some(&obs), true)
        };
        for vni in 0..5000 {
            assert_ne!(flood(&mut t, vni), OVERFLOW_LINK, "never refused");
            assert!(links_of(&t, "10.66.0.1") <= share);
        }
        let mut floods = Vec::new();
        t.take_floods(&mut |r| floods.push(r));
        assert_eq!(floods.len(), 1, "alerted once");
        assert_eq!(floods[0].src, "10.66.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(floods[0].links_held, share as u64 + 1);
        assert_eq!(t.stats().evicted, 5000 - share as u64);
        assert_eq!(t.stats().flood_sources, 1);
        // The real mirrors, the flood going on between their packets.
        let elsewhere = vx("10.10.0.5", "203.0.113.50", 100);
        let same_pair = vx("10.66.0.1", "10.66.0.2", 7);
        let mut alerts = Vec::new();
        for i in 0..6u64 {
            let obs = inner("192.168.1.1", "198.51.100.7", i % 2 == 1);
            for layer in [&elsewhere, &same_pair] {
                let link = t.observe(0, layer, 0, Timestamp(2000 + i), 100, Some(&obs), true);
                assert_ne!(link, OVERFLOW_LINK);
                for vni in 0..50 {
                    flood(&mut t, 10_000 + 100 * i as u32 + vni);
                }
            }
            t.take_alerts(&mut |r| alerts.push(r));
        }
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert!(
            alerts
                .iter()
                .any(|r| r.id == 100 && r.class == MirrorClass::Mirror)
        );
        assert!(
            alerts
                .iter()
                .any(|r| r.id == 7 && r.class == MirrorClass::Mirror)
        );
        t.take_floods(&mut |r| floods.push(r));
        assert_eq!(floods.len(), 1, "still once");
        assert!(t.len() <= 1024 && links_of(&t, "10.66.0.1") <= share);
    }

    /// Issue 19 item 1: a full table (many sources) evicts the link with the least evidence
    /// and never a decided mirror; a link is refused only when nothing else may go.
    #[test]
    fn a_full_table_evicts_the_least_evidence_never_a_decided_mirror() {
        let mut t = sized(64);
        // 8 decided mirrors, from 8 sources.
        let mirrors: Vec<u64> = (0..8)
            .map(|m| mirror_packets(&mut t, &vx(&format!("10.1.0.{m}"), "203.0.113.50", 1), 0))
            .collect();
        let mut alerts = Vec::new();
        t.take_alerts(&mut |r| alerts.push(r));
        assert_eq!(alerts.len(), 8);
        // Spoofed sources, one junk link each, well beyond the capacity.
        for n in 0..2000u32 {
            let src = format!("10.{}.{}.{}", 100 + n / 65536, (n / 256) % 256, n % 256);
            let link = t.observe(
                0,
                &vx(&src, "10.66.0.2", n),
                0,
                Timestamp(10 + u64::from(n)),
                1,
                None,
                true,
            );
            assert_ne!(link, OVERFLOW_LINK, "packet {n}");
            assert!(t.len() <= 64);
        }
        assert_eq!(t.stats().evicted, 2000 + 8 - 64);
        assert_eq!(t.stats().table_full, 0);
        let (end_alerts, records) = drain(&mut t);
        for m in mirrors {
            assert!(records.iter().any(|r| r.link == m), "mirror {m} kept");
        }
        assert_eq!(end_alerts.len(), 0, "alerted when decided, not again");

        // Only decided mirrors and the newest link: a new link is refused, and counted.
        let mut t = sized(2);
        mirror_packets(&mut t, &vx("10.1.0.1", "203.0.113.50", 1), 0);
        mirror_packets(&mut t, &vx("10.1.0.2", "203.0.113.50", 1), 0);
        let over = t.observe(
            0,
            &vx("10.1.0.3", "203.0.113.50", 1),
            0,
            Timestamp(9),
            1,
            None,
            true,
        );
        assert_eq!(over, OVERFLOW_LINK);
        assert_eq!((t.stats().table_full, t.stats().evicted), (1, 0));
    }

    /// Issue 17 item 2: an overlay VNI and a mirror VNI between the same two VTEPs each keep
    /// their own class, whichever came first.
    #[test]
    fn an_overlay_vni_beside_a_mirror_vni_keeps_its_own_class_in_either_order() {
        for overlay_first in [false, true] {
            let mut t = table(&Config::default());
            let mut packets = interleaving_packets();
            if overlay_first {
                packets.sort_by_key(|p| !p.overlay);
            } else {
                packets.sort_by_key(|p| p.overlay);
            }
            let (alerts, records) = replay_interleaving(&mut t, &packets);
            assert_eq!(
                classes(&records),
                expected_classes(),
                "overlay first: {overlay_first}"
            );
            assert_eq!(alerts.len(), 1, "the mirror session only: {alerts:?}");
            assert_eq!(alerts[0].id, 200);
        }
    }

    /// One packet of the interleaving: VNI 100 an overlay conversation between the VTEPs,
    /// VNI 200 a one-way mirror of three conversations from VTEP A.
    #[derive(Clone, Copy, Debug)]
    struct Interleaved {
        overlay: bool,
        idx: usize,
    }

    const VTEP_A: &str = "10.0.0.11";
    const VTEP_B: &str = "10.0.0.12";

    fn interleaving_packets() -> Vec<Interleaved> {
        let overlay = (0..8).map(|idx| Interleaved { overlay: true, idx });
        let mirror = (0..12).map(|idx| Interleaved {
            overlay: false,
            idx,
        });
        overlay.chain(mirror).collect()
    }

    fn replay_interleaving(
        t: &mut TunnelTable,
        packets: &[Interleaved],
    ) -> (Vec<TunnelSessionRecord>, Vec<TunnelSessionRecord>) {
        let mut alerts = Vec::new();
        for (n, p) in packets.iter().enumerate() {
            let reply = p.idx % 2 == 1;
            let (layer, obs) = if p.overlay {
                // Requests from A's side go A -> B, replies B -> A.
                let layer = if reply {
                    vx(VTEP_B, VTEP_A, 100)
                } else {
                    vx(VTEP_A, VTEP_B, 100)
                };
                (layer, inner("192.168.50.10", "192.168.60.20", reply))
            } else {
                let host = format!("192.168.70.{}", p.idx / 4);
                (vx(VTEP_A, VTEP_B, 200), inner(&host, "198.51.100.7", reply))
            };
            t.observe(0, &layer, 0, Timestamp(n as u64), 100, Some(&obs), true);
            t.take_alerts(&mut |r| alerts.push(r));
        }
        let (end_alerts, records) = drain(t);
        alerts.extend(end_alerts);
        (alerts, records)
    }

    fn classes(records: &[TunnelSessionRecord]) -> Vec<(u32, [u8; 16], MirrorClass)> {
        let mut v: Vec<_> = records.iter().map(|r| (r.id, r.src, r.class)).collect();
        v.sort_by_key(|c| (c.0, c.1));
        v
    }

    fn expected_classes() -> Vec<(u32, [u8; 16], MirrorClass)> {
        vec![
            (100, ip(VTEP_A), MirrorClass::Overlay),
            (100, ip(VTEP_B), MirrorClass::Overlay),
            (200, ip(VTEP_A), MirrorClass::Mirror),
        ]
    }

    proptest::proptest! {
        /// Issue 17: an overlay and a mirror between the same VTEPs, interleaved in any order
        /// (each keeping its own packet order), always get the same classes.
        #[test]
        fn interleaved_overlay_and_mirror_keep_their_classes(
            picks in proptest::collection::vec(proptest::prelude::any::<bool>(), 20),
        ) {
            let all = interleaving_packets();
            let (mut overlay, mut mirror): (Vec<_>, Vec<_>) = all.into_iter().partition(|p| p.overlay);
            overlay.reverse();
            mirror.reverse();
            let mut order = Vec::new();
            for pick in picks {
                let next = if pick { overlay.pop().or_else(|| mirror.pop()) } else { mirror.pop().or_else(|| overlay.pop()) };
                order.extend(next);
            }
            let mut t = table(&Config::default());
            let (alerts, records) = replay_interleaving(&mut t, &order);
            proptest::prop_assert_eq!(classes(&records), expected_classes());
            proptest::prop_assert_eq!(alerts.len(), 1);
        }
    }

    /// Issue 18 item 2: a link due by packet time is decided without waiting for a packet, so
    /// the pipeline's once-a-second tick alerts on a short mirror stream while it is open.
    #[test]
    fn due_links_are_decided_by_the_clock() {
        let mut t = sized(16);
        let layer = vx("10.0.0.5", "203.0.113.50", 100);
        for i in 0..2u64 {
            let obs = inner("192.168.1.1", "198.51.100.7", i == 1);
            t.observe(
                0,
                &layer,
                0,
                Timestamp::from_secs_nanos(i, 0),
                100,
                Some(&obs),
                true,
            );
        }
        let mut alerts = Vec::new();
        let mut ended = Vec::new();
        t.expire(
            Timestamp::from_secs_nanos(4, 0),
            &mut |r| alerts.push(r),
            &mut |r| ended.push(r),
        );
        t.take_alerts(&mut |r| alerts.push(r));
        assert!(alerts.is_empty(), "not due before 5 s");
        t.expire(
            Timestamp::from_secs_nanos(5, 0),
            &mut |r| alerts.push(r),
            &mut |r| ended.push(r),
        );
        t.take_alerts(&mut |r| alerts.push(r));
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].reason, ClassReason::OneWayBothDirections);
        assert!(ended.is_empty(), "the session is still open");
        assert_eq!(t.len(), 1);
    }

    /// Issue 16 item 4: a reload queues each open mirror session once, in one pass (a flag
    /// per session instead of a scan of the queue per link), and twice in a row changes
    /// nothing.
    #[test]
    fn reload_queues_each_open_mirror_session_once() {
        let mut approving = Config::default();
        approving.mirror.approved_collectors = vec!["203.0.113.0/24".parse().unwrap()];
        let mut t = TunnelTable::new(
            20_000,
            Duration::from_secs(3600),
            100,
            1_000_000,
            CollectorInventory::from_config(&approving),
            DecidePolicy::from_config(&approving),
        );
        for n in 0..5_000u32 {
            let src = format!("10.2.{}.{}", n / 256, n % 256);
            for i in 0..2u64 {
                let obs = inner("192.168.1.1", "198.51.100.7", i == 1);
                let mut layer = vx(&src, "203.0.113.50", n);
                layer.kind = TunnelKind::Erspan2;
                t.observe(0, &layer, 0, Timestamp(i), 100, Some(&obs), true);
            }
        }
        let mut alerts = Vec::new();
        t.take_alerts(&mut |r| alerts.push(r));
        assert!(alerts.is_empty(), "approved");
        let unapproving = Config::default();
        for _ in 0..2 {
            t.set_inventory(
                CollectorInventory::from_config(&unapproving),
                DecidePolicy::from_config(&unapproving),
            );
            assert_eq!(t.pending_alerts.len(), 5_000);
        }
        t.take_alerts(&mut |r| alerts.push(r));
        assert_eq!(alerts.len(), 5_000);
        let mut links: Vec<u64> = alerts.iter().map(|r| r.link).collect();
        links.dedup();
        assert_eq!(links.len(), 5_000, "each once");
        // Approved again: the queue empties, flags and all.
        t.set_inventory(
            CollectorInventory::from_config(&approving),
            DecidePolicy::from_config(&approving),
        );
        assert!(t.pending_alerts.is_empty());
        assert!(
            t.links
                .values()
                .all(|l| l.sessions.iter().all(|s| !s.queued))
        );
    }

    #[test]
    fn idle_links_expire_by_packet_time() {
        let mut t = TunnelTable::new(
            8,
            Duration::from_secs(10),
            100,
            1000,
            CollectorInventory::default(),
            DecidePolicy::from_config(&Config::default()),
        );
        let at = |s| Timestamp::from_secs_nanos(s, 0);
        t.observe(0, &vx("10.0.0.1", "10.0.0.2", 1), 0, at(0), 1, None, true);
        t.observe(0, &vx("10.0.0.1", "10.0.0.3", 1), 0, at(5), 1, None, true);
        let mut out = Vec::new();
        t.expire(at(12), &mut |_| {}, &mut |r| out.push(r));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].class, MirrorClass::Unknown);
        assert_eq!(t.len(), 1);
        assert_eq!(t.stats().expired, 1);
    }

    #[test]
    fn conversation_tracking_matches_the_entry_by_entry_space_saving() {
        // The tracker before it was laid out column by column: whole entries, a `position`
        // scan and `min_by_key` (the first of equal minimums).
        #[derive(Clone, Copy, PartialEq, Debug)]
        struct Entry {
            hash: u64,
            key: FlowKey,
            packets: u64,
            seen: u8,
        }
        fn reference(
            entries: &mut Vec<Entry>,
            counts: &mut (u64, u64),
            obs: &InnerObservation,
            outer: usize,
        ) {
            let bit = 1u8 << (2 * outer + obs.dir.index());
            let slot = match entries
                .iter()
                .position(|c| c.hash == obs.hash && c.key == obs.key)
            {
                Some(i) => i,
                None if entries.len() < TOP_CONVERSATIONS => {
                    entries.push(Entry {
                        hash: obs.hash,
                        key: obs.key,
                        packets: 0,
                        seen: 0,
                    });
                    entries.len() - 1
                }
                None => {
                    let (i, _) = entries
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, c)| c.packets)
                        .unwrap();
                    entries[i] = Entry {
                        hash: obs.hash,
                        key: obs.key,
                        packets: entries[i].packets,
                        seen: 0,
                    };
                    i
                }
            };
            let c = &mut entries[slot];
            c.packets += 1;
            let before = c.seen;
            c.seen |= bit;
            let has = |seen: u8, patterns: [u8; 2]| patterns.iter().any(|p| seen & p == *p);
            if has(c.seen, MIRROR_PATTERNS) && !has(before, MIRROR_PATTERNS) {
                counts.0 += 1;
            }
            if has(c.seen, OVERLAY_PATTERNS) && !has(before, OVERLAY_PATTERNS) {
                counts.1 += 1;
            }
        }
        let mut pair = PairEvidence::default();
        let mut entries = Vec::new();
        let mut counts = (0, 0);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // A skewed mix of 40 conversations; every fifth key shares its hash with another.
            let n = (x % 40) * (x % 7 + 1) % 40;
            let mut obs = inner(&format!("192.168.1.{n}"), "198.51.100.7", x & 64 != 0);
            obs.hash = n - n % 5 % 2;
            let outer = usize::from(x & 128 != 0);
            note_conversation(&mut pair, &obs, outer);
            reference(&mut entries, &mut counts, &obs, outer);
            let mine: Vec<Entry> = (0..pair.conversations.keys.len())
                .map(|i| Entry {
                    hash: pair.conversations.hashes[i],
                    key: pair.conversations.keys[i],
                    packets: pair.conversations.packets[i],
                    seen: pair.conversations.seen[i],
                })
                .collect();
            assert_eq!(mine, entries);
            assert_eq!(
                (pair.mirror_conversations, pair.overlay_conversations),
                counts
            );
        }
    }

    #[test]
    fn inner_flow_set_is_a_set_of_hashes() {
        // Against the standard set, over hashes that collide in their low bits, 0, and
        // enough of them to grow several times.
        let mut mine = InnerFlowSet::default();
        let mut reference = std::collections::HashSet::new();
        assert!(!mine.contains(0) && !mine.contains(7));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let h = match i % 5 {
                0 => 0,
                1 => (i % 300) << 40, // equal low bits: long probe runs
                _ => x % 9_000,
            };
            assert_eq!(mine.insert(h), reference.insert(h), "insert {h:#x}");
            assert_eq!(mine.len(), reference.len());
            let other = x.rotate_left(7) % 12_000;
            assert_eq!(mine.contains(other), reference.contains(&other));
        }
        assert!(reference.iter().all(|&h| mine.contains(h)));
        assert!(mine.slots.len().is_power_of_two());
        assert!(mine.len() * 16 <= mine.slots.len() * 13 + 16);
    }

    #[test]
    fn inner_flow_count_is_capped() {
        let mut t = TunnelTable::new(
            8,
            Duration::from_secs(10),
            2,
            1000,
            CollectorInventory::default(),
            DecidePolicy::from_config(&Config::default()),
        );
        for f in 0..5u8 {
            let obs = inner(&format!("192.168.1.{f}"), "198.51.100.7", false);
            t.observe(
                0,
                &vx("10.0.0.1", "10.0.0.2", 1),
                0,
                Timestamp(1),
                1,
                Some(&obs),
                true,
            );
        }
        let (_, out) = drain(&mut t);
        assert_eq!((out[0].inner_flows, out[0].inner_flows_capped), (2, true));
    }
}
