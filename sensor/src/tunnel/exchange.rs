//! Source-group evidence shared by the tunnel tables of sharded live capture.
//!
//! The kernel's fanout keeps both directions of one outer pair on one capture thread, so a
//! link's own and pair evidence is whole in its thread's table. A source's links to several
//! collectors are different outer pairs, though, and may be read by different threads: the
//! evidence of a mirror spread over collectors (its source group) would be split, and a thread
//! holding one collector would judge it alone (an adversary who read the code picks the split).
//!
//! So each table publishes its groups that hold one-way evidence here (a copy per group and
//! table, every [`PUBLISH_EVERY`] of packet time while they change, and once more before the
//! fronts meet at shutdown), and when it judges a ripe one-way link that its own group cannot
//! decide, it reads the other tables' copies of that group (at most once per
//! [`PEER_CHECK_EVERY`] per link). A link stays undecided while it waits, so evidence that
//! arrives later still decides it, at its next packet or when it is due.
//!
//! Bounded: one entry per group and table, and only while the group holds evidence; an entry
//! goes when its group ends or loses its evidence. The per-packet path never writes here and
//! reads only for a ripe undecided one-way link; a `DashMap` shard lock is never held across
//! anything but one copy.

use std::sync::Arc;

use dashmap::DashMap;
use flowtable::{Duration, Timestamp};

use super::{GROUP_COLLECTORS, SourceGroup, SourceGroupKey};

/// How often a table publishes the groups that changed (packet time). A link is decided no
/// earlier than `SHARDED_DECIDE_GRACE` (200 ms) after its first packet, so the other tables'
/// evidence of its first moments is in by then.
pub(super) const PUBLISH_EVERY: Duration = Duration::from_millis(50);

/// Most groups one table publishes per [`PUBLISH_EVERY`] (about 20,000 copies a second).
pub(super) const PUBLISH_BATCH: usize = 1024;

/// How often one undecided link reads the other tables' copies of its group (packet time).
pub(super) const PEER_CHECK_EVERY: Duration = Duration::from_millis(50);

/// The shared map: (group, table) → the table's copy of the group.
#[derive(Debug)]
pub struct GroupExchange {
    pub(super) groups: DashMap<(SourceGroupKey, u16), SourceGroup, foldhash::quality::RandomState>,
    tables: u16,
}

impl GroupExchange {
    /// An exchange for `tables` tunnel tables (one per capture thread).
    pub fn new(tables: usize) -> Arc<GroupExchange> {
        Arc::new(GroupExchange {
            groups: DashMap::with_hasher(foldhash::quality::RandomState::default()),
            tables: u16::try_from(tables).unwrap_or(u16::MAX),
        })
    }

    /// Entries held (groups with evidence, counted once per table).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no table has published anything.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// One table's place at the exchange.
#[derive(Debug)]
pub(super) struct ExchangeSeat {
    pub(super) shared: Arc<GroupExchange>,
    /// This table's index.
    pub(super) table: u16,
    /// Packet time of the last publication.
    pub(super) published_at: Timestamp,
    /// Slab index after the last group published (the next walk starts there).
    pub(super) cursor: usize,
}

/// What the other tables' copies of a group add to a link's spread support.
#[derive(Debug, Default)]
pub(super) struct PeerSupport {
    /// The link's conversations whose other inner direction another table's one-way links
    /// carried.
    pub(super) conversations: u64,
    /// Those links' collectors (at most [`GROUP_COLLECTORS`]).
    pub(super) collectors: arrayvec::ArrayVec<[u8; 16], GROUP_COLLECTORS>,
}

impl ExchangeSeat {
    /// Publishes (or withdraws) group `g` of this table.
    pub(super) fn publish(&self, key: SourceGroupKey, g: &SourceGroup) {
        if g.has_one_way_evidence() {
            self.shared.groups.insert((key, self.table), g.clone());
        } else {
            self.withdraw(key);
        }
    }

    /// Withdraws this table's copy of group `key` (it ended or holds no evidence).
    pub(super) fn withdraw(&self, key: SourceGroupKey) {
        self.shared.groups.remove(&(key, self.table));
    }

    /// Support from the other tables for a one-way link whose own conversations, each seen
    /// in one inner direction only, are `(hash, other direction)`.
    pub(super) fn peer_support(
        &self,
        key: SourceGroupKey,
        wanted: impl Iterator<Item = (u64, usize)> + Clone,
    ) -> PeerSupport {
        let mut support = PeerSupport::default();
        for table in (0..self.shared.tables).filter(|&t| t != self.table) {
            let Some(peer) = self.shared.groups.get(&(key, table)) else {
                continue;
            };
            let g = peer.value();
            let excluded = !g.used | g.two_way;
            let mut mask = 0u16;
            for (hash, other) in wanted.clone() {
                let from = g.carried(hash, other, excluded);
                if from != 0 {
                    support.conversations += 1;
                    mask |= from;
                }
            }
            for slot in (0..GROUP_COLLECTORS).filter(|&b| mask & (1 << b) != 0) {
                if let Some(c) = g.collectors.get(slot) {
                    let _ = support.collectors.try_push(*c);
                }
            }
        }
        support
    }
}
