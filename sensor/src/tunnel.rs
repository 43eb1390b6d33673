//! Tunnel sessions: who sends encapsulated traffic to whom, of which type and id.
//!
//! The capture thread owns one [`TunnelTable`], because it sees every packet of a tunnel
//! whatever worker the inner flows go to. A *link* is an unordered outer endpoint pair plus
//! type, id and enclosing link (so nested layers stay apart); each direction of a link is one
//! *session* and gives one `tunnel` record. The link id is the tunnel context of inner
//! flow keys, so identical inner addresses in two sessions or VNIs never share a flow.
//! Bounded: a hard capacity of links, a capped distinct-inner-flow count per session.

use std::hash::BuildHasher;

use flowtable::{Duration, Timestamp};
use hashbrown::{HashMap, HashSet};

use crate::decode::{TunnelKind, TunnelLayer};

/// Tunnel context given to flows whose tunnel could not be tracked (table full).
pub const OVERFLOW_LINK: u64 = u64::MAX;

/// Identity of a link: both directions of one outer pair, type and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct LinkKey {
    parent: u64,
    kind: TunnelKind,
    id: u32,
    lo: [u8; 16],
    hi: [u8; 16],
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
    inner_flows: HashSet<u64, foldhash::fast::FixedState>,
    inner_flows_capped: bool,
}

/// A link and its two sessions (index 0: lo → hi, 1: hi → lo).
#[derive(Clone, Debug)]
struct Link {
    id: u64,
    depth: u8,
    last_seen: Timestamp,
    sessions: [SessionState; 2],
}

/// What a finished session reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// The table of tunnel links.
pub struct TunnelTable {
    links: HashMap<LinkKey, Link, foldhash::quality::SeedableRandomState>,
    next_link_id: u64,
    capacity: usize,
    idle_timeout: Duration,
    max_inner_flows: usize,
    stats: TunnelTableStats,
}

impl TunnelTable {
    /// A table for at most `capacity` links.
    pub fn new(capacity: usize, idle_timeout: Duration, max_inner_flows: usize) -> TunnelTable {
        TunnelTable {
            links: HashMap::with_capacity_and_hasher(
                capacity.min(4096),
                foldhash::quality::SeedableRandomState::random(),
            ),
            next_link_id: 1,
            capacity,
            idle_timeout,
            max_inner_flows,
            stats: TunnelTableStats::default(),
        }
    }

    /// Accounts one packet of tunnel `layer` at nesting `depth`, inside link `parent` (0 for
    /// the outermost layer). `inner_flow` identifies the innermost flow (a hash) for the
    /// distinct count. Returns the link id to use as the tunnel context of what is inside.
    pub fn observe(
        &mut self,
        parent: u64,
        layer: &TunnelLayer,
        depth: u8,
        now: Timestamp,
        frame_bytes: u32,
        inner_flow: Option<u64>,
    ) -> u64 {
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
        if !self.links.contains_key(&key) {
            if self.links.len() >= self.capacity {
                self.stats.table_full = self.stats.table_full.saturating_add(1);
                return OVERFLOW_LINK;
            }
            let id = self.next_link_id;
            self.next_link_id = self.next_link_id.saturating_add(1);
            self.links.insert(
                key,
                Link {
                    id,
                    depth,
                    last_seen: now,
                    sessions: Default::default(),
                },
            );
        }
        let Some(link) = self.links.get_mut(&key) else {
            return OVERFLOW_LINK;
        };
        if now > link.last_seen {
            link.last_seen = now;
        }
        let session = &mut link.sessions[usize::from(!forward)];
        if session.packets == 0 {
            session.first_seen = now;
            session.src_port = layer.outer_src_port;
            session.dst_port = layer.outer_dst_port;
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
        if let Some(flow) = inner_flow {
            if session.inner_flows.len() < self.max_inner_flows {
                session.inner_flows.insert(flow);
            } else if !session.inner_flows.contains(&flow) {
                session.inner_flows_capped = true;
            }
        }
        link.id
    }

    /// Reports and removes links idle for longer than the timeout.
    pub fn expire(&mut self, now: Timestamp, emit: &mut impl FnMut(TunnelSessionRecord)) {
        let timeout = self.idle_timeout;
        let mut expired = 0u64;
        self.links.retain(|key, link| {
            if link.last_seen + timeout > now {
                return true;
            }
            report(key, link, emit);
            expired += 1;
            false
        });
        self.stats.expired = self.stats.expired.saturating_add(expired);
    }

    /// Reports and removes every link (end of input, shutdown).
    pub fn drain(&mut self, emit: &mut impl FnMut(TunnelSessionRecord)) {
        // Report in link order so output is stable run to run.
        let mut all: Vec<(LinkKey, Link)> = self.links.drain().collect();
        all.sort_by_key(|(_, link)| link.id);
        for (key, link) in &all {
            report(key, link, emit);
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

fn report(key: &LinkKey, link: &Link, emit: &mut impl FnMut(TunnelSessionRecord)) {
    for (i, s) in link.sessions.iter().enumerate() {
        if s.packets == 0 {
            continue;
        }
        let (src, dst) = if i == 0 {
            (key.lo, key.hi)
        } else {
            (key.hi, key.lo)
        };
        emit(TunnelSessionRecord {
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
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtable::key::ip_to_addr;

    fn vx(src: &str, dst: &str, vni: u32) -> TunnelLayer {
        TunnelLayer {
            kind: TunnelKind::Vxlan,
            id: vni,
            outer_src: ip_to_addr(src.parse().unwrap()),
            outer_dst: ip_to_addr(dst.parse().unwrap()),
            outer_src_port: 50000,
            outer_dst_port: 4789,
            nonstandard_port: false,
            mirror_truncated: false,
            erspan_egress: None,
        }
    }

    #[test]
    fn both_directions_share_a_link_but_report_two_sessions() {
        let mut t = TunnelTable::new(16, Duration::from_secs(60), 100);
        let a = t.observe(
            0,
            &vx("10.0.0.1", "10.0.0.2", 7),
            0,
            Timestamp(1),
            100,
            Some(1),
        );
        let b = t.observe(
            0,
            &vx("10.0.0.2", "10.0.0.1", 7),
            0,
            Timestamp(2),
            50,
            Some(1),
        );
        let c = t.observe(
            0,
            &vx("10.0.0.1", "10.0.0.2", 8),
            0,
            Timestamp(3),
            10,
            Some(2),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut out = Vec::new();
        t.drain(&mut |r| out.push(r));
        assert_eq!(out.len(), 3);
        assert_eq!(
            (out[0].packets, out[0].bytes, out[0].inner_flows),
            (1, 100, 1)
        );
        assert_eq!(out[0].src, ip_to_addr("10.0.0.1".parse().unwrap()));
        assert_eq!(out[1].src, ip_to_addr("10.0.0.2".parse().unwrap()));
        assert_eq!(t.stats().sessions_by_kind[TunnelKind::Vxlan.index()], 3);
        assert!(t.is_empty());
    }

    #[test]
    fn capacity_is_a_hard_bound_and_counted() {
        let mut t = TunnelTable::new(1, Duration::from_secs(60), 100);
        t.observe(0, &vx("10.0.0.1", "10.0.0.2", 1), 0, Timestamp(1), 1, None);
        let over = t.observe(0, &vx("10.0.0.1", "10.0.0.2", 2), 0, Timestamp(1), 1, None);
        assert_eq!(over, OVERFLOW_LINK);
        assert_eq!(t.len(), 1);
        assert_eq!(t.stats().table_full, 1);
    }

    #[test]
    fn idle_links_expire_by_packet_time() {
        let mut t = TunnelTable::new(8, Duration::from_secs(10), 100);
        t.observe(
            0,
            &vx("10.0.0.1", "10.0.0.2", 1),
            0,
            Timestamp::from_secs_nanos(0, 0),
            1,
            None,
        );
        t.observe(
            0,
            &vx("10.0.0.1", "10.0.0.3", 1),
            0,
            Timestamp::from_secs_nanos(5, 0),
            1,
            None,
        );
        let mut out = Vec::new();
        t.expire(Timestamp::from_secs_nanos(12, 0), &mut |r| out.push(r));
        assert_eq!(out.len(), 1);
        assert_eq!(t.len(), 1);
        assert_eq!(t.stats().expired, 1);
    }

    #[test]
    fn inner_flow_count_is_capped() {
        let mut t = TunnelTable::new(8, Duration::from_secs(10), 2);
        for f in 0..5 {
            t.observe(
                0,
                &vx("10.0.0.1", "10.0.0.2", 1),
                0,
                Timestamp(1),
                1,
                Some(f),
            );
        }
        let mut out = Vec::new();
        t.drain(&mut |r| out.push(r));
        assert_eq!((out[0].inner_flows, out[0].inner_flows_capped), (2, true));
    }
}
