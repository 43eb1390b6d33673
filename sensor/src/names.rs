//! Names learned passively from DNS answers seen on the wire: which name an address was
//! resolved from, for the evidence of beacon alerts and their domain allowlist.
//!
//! The capture thread writes ([`NameCache::observe_response`], once per DNS response); the
//! workers read ([`NameCache::lookup`]) only when they write an alert, never per packet.
//! Bounded by construction: a set-associative array of [`WAYS`] slots per set, sized once in
//! [`NameCache::new`] and allocated a chunk of [`CHUNK_SETS`] sets at a time, the first time an
//! answer lands in the chunk (a capture with a few answers costs a few chunks, not the whole
//! cache, 6 MiB for the pipeline's 65,536 addresses; the set an address hashes to does not
//! depend on that); the query table is allocated by the first query; a new address takes a free slot of its set or replaces the one seen
//! longest ago (counted in [`NameCacheStats::evicted`]). A name is kept in a fixed buffer of
//! [`NAME_CAP`] bytes; a longer one keeps its *last* bytes (the suffix that allowlists match).
//! Each set has its own mutex, so the writer and a reader meet only on one set, briefly.
//!
//! Only answers to a query seen from the other side are learned (issue 19: one forged,
//! unsolicited answer naming a C2's address under an allowlisted domain silenced its beacon
//! for good). Each query is remembered in a fixed, direct-mapped table by its transaction id,
//! both endpoints, the tunnel context and its question name; an answer is learned only if it
//! matches a remembered query (the client its destination, the server its source, the same
//! id, ports and name) at most [`ANSWER_WINDOW`] after it, and that query is then consumed.
//! Every other answer is counted (`answers_unsolicited`) and teaches nothing.
//! Optionally (`[beacon] name_resolvers`, set through [`NameCache::set_resolvers`]) only
//! answers from the configured resolvers teach: a host that asks a server of the attacker's
//! directly gets a solicited answer the query match cannot refuse. Others are counted
//! (`answers_not_resolver`).
//! Each name keeps the packet time it was learned at, and [`NameCache::lookup`] answers for a
//! moment: the name valid then, never one learned later. TTLs are not enforced (clients keep
//! names longer, and a sensor misses re-resolutions served from their caches).

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use flowtable::key::{addr_to_ip, ip_to_addr};
use flowtable::{Duration, Timestamp};
use ipnet::IpNet;

use crate::decode::dns::{DnsHeaderSlice, DnsWalk, MAX_NAME_LEN};

/// How long after its query an answer may come.
pub const ANSWER_WINDOW: Duration = Duration::from_secs(5);

/// Queries remembered at once (a power of two; a new query takes its slot).
pub const QUERY_SLOTS: usize = 4096;

/// The endpoints of one DNS message as seen on the wire, and its tunnel context (0 when
/// native): an answer must come back the way its query went, inside the same tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsEnds {
    /// Source address.
    pub src: [u8; 16],
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: [u8; 16],
    /// Destination port.
    pub dst_port: u16,
    /// Tunnel context (link id), 0 outside tunnels.
    pub context: u64,
}

/// A query waiting for its answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PendingQuery {
    client: [u8; 16],
    server: [u8; 16],
    client_port: u16,
    server_port: u16,
    id: u16,
    context: u64,
    /// Seeded hash of the question name.
    name: u64,
    /// Zero: a free slot.
    at: Timestamp,
}

/// Slots per set.
pub const WAYS: usize = 4;

/// Bytes of a name kept (the end of a longer name).
pub const NAME_CAP: usize = 64;

/// Sets allocated together (about 6 KiB: a chunk is a page or two).
pub const CHUNK_SETS: usize = 16;

/// One set: its slots under their mutex.
type NameSet = Mutex<[NameSlot; WAYS]>;

/// A bounded IP → name cache shared by the capture thread (writer) and the workers (readers).
#[derive(Debug)]
pub struct NameCache {
    /// The sets, a chunk of [`CHUNK_SETS`] at a time (the last chunk may be shorter);
    /// a chunk is allocated by the first answer that lands in it, and never freed.
    chunks: Box<[OnceLock<Box<[NameSet]>>]>,
    /// Sets in all (the hash picks one of them).
    n_sets: usize,
    hasher: foldhash::quality::RandomState,
    answers: AtomicU64,
    evicted: AtomicU64,
    /// Queries waiting for their answers (written and read by the capture thread only; the
    /// mutex is never contended). Empty until the first query, then [`QUERY_SLOTS`] long.
    queries: Mutex<Vec<PendingQuery>>,
    unsolicited: AtomicU64,
    over_limit: AtomicU64,
    /// Servers whose answers teach (empty: any). Read by the capture thread once per DNS
    /// response, written only when the configuration is (re)loaded.
    resolvers: Mutex<Vec<IpNet>>,
    not_resolver: AtomicU64,
}

/// A name as kept in the cache: at most [`NAME_CAP`] bytes, lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedName {
    bytes: [u8; NAME_CAP],
    len: u8,
    /// The name was longer; only its last [`NAME_CAP`] bytes are kept.
    pub truncated: bool,
}

/// Counters of the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameCacheStats {
    /// A/AAAA answers learned.
    pub answers: u64,
    /// Addresses forgotten to make room.
    pub evicted: u64,
    /// Responses that matched no query seen from the other side (forged, or their query
    /// missed): nothing learned.
    pub answers_unsolicited: u64,
    /// Messages beyond the DNS parsing caps (questions, answers, label hops).
    pub over_limit: u64,
    /// Responses from a server outside `[beacon] name_resolvers` (when set): nothing learned.
    pub answers_not_resolver: u64,
}

#[derive(Clone, Copy, Debug)]
struct NameSlot {
    addr: [u8; 16],
    /// Zero: a free slot.
    seen: Timestamp,
    name: CachedName,
}

const FREE_SLOT: NameSlot = NameSlot {
    addr: [0; 16],
    seen: Timestamp::ZERO,
    name: CachedName {
        bytes: [0; NAME_CAP],
        len: 0,
        truncated: false,
    },
};

impl CachedName {
    /// The name (valid UTF-8 is not guaranteed on the wire; invalid bytes make `None`).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes.get(..usize::from(self.len))?).ok()
    }

    fn from_wire(name: &[u8]) -> CachedName {
        let keep = name.len().min(NAME_CAP);
        let tail = name.get(name.len() - keep..).unwrap_or_default();
        let mut bytes = [0u8; NAME_CAP];
        if let Some(dst) = bytes.get_mut(..keep) {
            dst.copy_from_slice(tail);
        }
        CachedName {
            bytes,
            len: keep as u8,
            truncated: keep < name.len(),
        }
    }
}

impl NameCache {
    /// A cache of at most `capacity` addresses (rounded up to whole sets of [`WAYS`]).
    pub fn new(capacity: usize) -> NameCache {
        let n_sets = capacity.div_ceil(WAYS).max(1);
        NameCache {
            chunks: (0..n_sets.div_ceil(CHUNK_SETS))
                .map(|_| OnceLock::new())
                .collect(),
            n_sets,
            hasher: foldhash::quality::RandomState::default(),
            answers: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            queries: Mutex::new(Vec::new()),
            unsolicited: AtomicU64::new(0),
            over_limit: AtomicU64::new(0),
            resolvers: Mutex::new(Vec::new()),
            not_resolver: AtomicU64::new(0),
        }
    }

    /// Learns names only from answers whose source is in `nets` (empty: from any server).
    /// Called with the configuration, at start and on reload, never per packet.
    pub fn set_resolvers(&self, nets: &[IpNet]) {
        if let Ok(mut r) = self.resolvers.lock() {
            if r.as_slice() != nets {
                *r = nets.to_vec();
            }
        }
    }

    /// Whether answers from `server` may teach.
    fn is_resolver(&self, server: &[u8; 16]) -> bool {
        let Ok(r) = self.resolvers.lock() else {
            return false;
        };
        if r.is_empty() {
            return true;
        }
        let ip = addr_to_ip(*server);
        r.iter().any(|n| n.contains(&ip))
    }

    /// A DNS query (`ends` from the client to the server) seen at `now`: remembered for the
    /// answer to match, replacing whatever query had its slot.
    pub fn observe_query(&self, ends: &DnsEnds, message: &[u8], now: Timestamp) {
        let Some(h) = DnsHeaderSlice::from_slice(message) else {
            return;
        };
        // A query asks exactly one question (RFC 9619); anything else on port 53 is not
        // remembered, and costs no more than its header.
        if h.is_response() || h.question_count() != 1 {
            return;
        }
        let q = PendingQuery {
            client: ends.src,
            server: ends.dst,
            client_port: ends.src_port,
            server_port: ends.dst_port,
            id: h.id(),
            context: ends.context,
            name: self.name_hash(&h),
            at: Timestamp(now.as_nanos().max(1)),
        };
        let slot = self.query_slot(&q);
        if let Ok(mut queries) = self.queries.lock() {
            if queries.is_empty() {
                // The first query of the run: the table's one allocation.
                queries.resize(QUERY_SLOTS, PendingQuery::default());
            }
            if let Some(s) = queries.get_mut(slot) {
                *s = q;
            }
        }
    }

    /// A DNS response (`ends` from the server to the client) seen at `now`: if it comes from
    /// a configured resolver (any, when none is) and answers a remembered query, every A/AAAA answer address is remembered under the first question's
    /// name, learned at `now`. Anything else teaches nothing: malformed messages quietly,
    /// answers from another server in `answers_not_resolver`, answers without their query in
    /// `answers_unsolicited`, messages beyond the parsing caps in `over_limit`.
    pub fn observe_response(&self, ends: &DnsEnds, message: &[u8], now: Timestamp) {
        let Some(h) = DnsHeaderSlice::from_slice(message) else {
            return;
        };
        if !h.is_response() || h.rcode() != 0 || h.answer_count() == 0 {
            return;
        }
        // Refused before the query match: the query stays for its resolver's answer.
        if !self.is_resolver(&ends.src) {
            self.not_resolver.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut name = [0u8; MAX_NAME_LEN];
        let Some(len) = h.question_name(&mut name) else {
            return;
        };
        let Some(name) = name.get(..len).filter(|n| !n.is_empty()) else {
            return;
        };
        let expected = PendingQuery {
            client: ends.dst,
            server: ends.src,
            client_port: ends.dst_port,
            server_port: ends.src_port,
            id: h.id(),
            context: ends.context,
            name: self.hasher.hash_one(name),
            at: Timestamp::ZERO,
        };
        if !self.take_query(&expected, now) {
            self.unsolicited.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let cached = CachedName::from_wire(name);
        // Zero means "free"; a capture at the epoch still counts as seen.
        let seen = Timestamp(now.as_nanos().max(1));
        if h.for_each_address(|ip| self.insert(ip, cached, seen)) == DnsWalk::OverLimit {
            self.over_limit.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The name `ip` was resolved from as known at packet time `at`: the latest learned at
    /// or before `at`, if still remembered. A name learned after `at` is no answer (the slot
    /// keeps one name: an older one it replaced is gone, so then there is none).
    pub fn lookup(&self, ip: IpAddr, at: Timestamp) -> Option<CachedName> {
        let addr = ip_to_addr(ip);
        let set = self.set_of(&addr)?.lock().ok()?;
        set.iter()
            .find(|s| s.seen != Timestamp::ZERO && s.addr == addr && s.seen <= at)
            .map(|s| s.name)
    }

    /// Counters so far.
    pub fn stats(&self) -> NameCacheStats {
        NameCacheStats {
            answers: self.answers.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            answers_unsolicited: self.unsolicited.load(Ordering::Relaxed),
            over_limit: self.over_limit.load(Ordering::Relaxed),
            answers_not_resolver: self.not_resolver.load(Ordering::Relaxed),
        }
    }

    /// Seeded hash of a message's first question name (0 without one).
    fn name_hash(&self, h: &DnsHeaderSlice<'_>) -> u64 {
        let mut name = [0u8; MAX_NAME_LEN];
        h.question_name(&mut name)
            .and_then(|len| name.get(..len))
            .map_or(0, |n| self.hasher.hash_one(n))
    }

    fn query_slot(&self, q: &PendingQuery) -> usize {
        let h = self.hasher.hash_one((
            q.client,
            q.server,
            q.client_port,
            q.server_port,
            q.id,
            q.context,
        ));
        (h as usize) & (QUERY_SLOTS - 1)
    }

    /// Whether a query equal to `expected` (all but its time) was seen at most
    /// [`ANSWER_WINDOW`] before `now`; consumes it, so one query teaches one answer.
    fn take_query(&self, expected: &PendingQuery, now: Timestamp) -> bool {
        let slot = self.query_slot(expected);
        let Ok(mut queries) = self.queries.lock() else {
            return false;
        };
        let Some(q) = queries.get_mut(slot) else {
            return false;
        };
        let matches = q.at != Timestamp::ZERO
            && PendingQuery {
                at: Timestamp::ZERO,
                ..*q
            } == *expected
            && q.at <= now
            && now.saturating_since(q.at) <= ANSWER_WINDOW;
        if matches {
            *q = PendingQuery::default();
        }
        matches
    }

    /// The chunk and the set within it that `addr` belongs to.
    fn set_index(&self, addr: &[u8; 16]) -> (usize, usize) {
        let h = self.hasher.hash_one(addr);
        let idx = ((u128::from(h) * self.n_sets as u128) >> 64) as usize;
        (idx / CHUNK_SETS, idx % CHUNK_SETS)
    }

    /// The set of `addr`, if an answer ever allocated its chunk (otherwise it holds nothing).
    fn set_of(&self, addr: &[u8; 16]) -> Option<&NameSet> {
        let (chunk, set) = self.set_index(addr);
        self.chunks.get(chunk)?.get()?.get(set)
    }

    /// The set of `addr`, its chunk allocated now if it was not yet.
    fn set_for_insert(&self, addr: &[u8; 16]) -> Option<&NameSet> {
        let (chunk, set) = self.set_index(addr);
        let sets = self.chunks.get(chunk)?.get_or_init(|| {
            let len = self
                .n_sets
                .saturating_sub(chunk * CHUNK_SETS)
                .min(CHUNK_SETS);
            (0..len).map(|_| Mutex::new([FREE_SLOT; WAYS])).collect()
        });
        sets.get(set)
    }

    /// Chunks of sets allocated so far, and in all.
    pub fn chunks_allocated(&self) -> (usize, usize) {
        let allocated = self.chunks.iter().filter(|c| c.get().is_some()).count();
        (allocated, self.chunks.len())
    }

    fn insert(&self, ip: IpAddr, name: CachedName, seen: Timestamp) {
        let addr = ip_to_addr(ip);
        let Some(Ok(mut set)) = self.set_for_insert(&addr).map(|m| m.lock()) else {
            return;
        };
        self.answers.fetch_add(1, Ordering::Relaxed);
        let slot_idx = set
            .iter()
            .position(|s| s.seen != Timestamp::ZERO && s.addr == addr)
            .or_else(|| set.iter().position(|s| s.seen == Timestamp::ZERO));
        let slot_idx = match slot_idx {
            Some(i) => i,
            None => {
                self.evicted.fetch_add(1, Ordering::Relaxed);
                set.iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.seen)
                    .map_or(0, |(i, _)| i)
            }
        };
        if let Some(slot) = set.get_mut(slot_idx) {
            *slot = NameSlot { addr, seen, name };
        }
    }
}

impl Default for NameCache {
    fn default() -> Self {
        NameCache::new(WAYS)
    }
}

/// Whether `name` is `suffix` or ends with `.suffix` (a leading `.` or `*.` in `suffix` is
/// ignored; ASCII case-insensitive). `example.com` matches `example.com` and
/// `www.example.com`, not `badexample.com`.
pub fn matches_suffix(name: &str, suffix: &str) -> bool {
    let suffix = suffix.trim_start_matches("*.").trim_start_matches('.');
    if suffix.is_empty() || name.len() < suffix.len() {
        return false;
    }
    let split = name.len() - suffix.len();
    let (head, tail) = (name.get(..split), name.get(split..));
    match (head, tail) {
        (Some(head), Some(tail)) => {
            tail.eq_ignore_ascii_case(suffix) && (head.is_empty() || head.ends_with('.'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::conversation::dns_message;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs_nanos(s, 0)
    }

    /// Client 10.0.0.9:40000 asking resolver 10.0.0.53:53.
    fn query_ends() -> DnsEnds {
        DnsEnds {
            src: ip_to_addr("10.0.0.9".parse().unwrap()),
            src_port: 40000,
            dst: ip_to_addr("10.0.0.53".parse().unwrap()),
            dst_port: 53,
            context: 0,
        }
    }

    /// The way back.
    fn answer_ends() -> DnsEnds {
        let q = query_ends();
        DnsEnds {
            src: q.dst,
            src_port: q.dst_port,
            dst: q.src,
            dst_port: q.src_port,
            context: q.context,
        }
    }

    /// A query for `name` with `id` at `at`, and its answer a moment later.
    fn resolve(cache: &NameCache, id: u16, name: &str, answer: IpAddr, at: Timestamp) {
        cache.observe_query(&query_ends(), &dns_message(id, name, None).unwrap(), at);
        let msg = dns_message(id, name, Some(answer)).unwrap();
        cache.observe_response(&answer_ends(), &msg, at);
    }

    /// Issue 14: a new cache touches none of its sets; an answer allocates the one chunk it
    /// lands in, a lookup none; the chunks cover every set of the capacity.
    #[test]
    fn sets_are_allocated_a_chunk_at_a_time_by_answers() {
        let cache = NameCache::new(65_536);
        let all = 65_536usize.div_ceil(WAYS).div_ceil(CHUNK_SETS);
        assert_eq!(cache.chunks_allocated(), (0, all));
        assert!(cache.queries.lock().unwrap().is_empty());
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(cache.lookup(a, t(9)), None);
        assert_eq!(
            cache.chunks_allocated(),
            (0, all),
            "a lookup allocates nothing"
        );
        resolve(&cache, 1, "beacon.example.com", a, t(1));
        assert_eq!(cache.chunks_allocated(), (1, all));
        assert_eq!(cache.queries.lock().unwrap().len(), QUERY_SLOTS);
        assert_eq!(
            cache.lookup(a, t(2)).unwrap().as_str(),
            Some("beacon.example.com")
        );
        // A cache smaller than a chunk has one, as long as its sets.
        let small = NameCache::new(WAYS * 3);
        resolve(&small, 1, "beacon.example.com", a, t(1));
        assert_eq!(small.chunks_allocated(), (1, 1));
        let len = small
            .chunks
            .first()
            .and_then(OnceLock::get)
            .map(|c| c.len());
        assert_eq!(len, Some(3));
        assert_eq!(
            small.lookup(a, t(2)).unwrap().as_str(),
            Some("beacon.example.com")
        );
    }

    #[test]
    fn learns_a_and_aaaa_answers() {
        let cache = NameCache::new(64);
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let aaaa: IpAddr = "2001:db8::7".parse().unwrap();
        resolve(&cache, 1, "Beacon.Example.COM", a, t(1));
        resolve(&cache, 2, "v6.example.net", aaaa, t(2));
        // A query teaches nothing.
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        let query = dns_message(3, "query.example", None).unwrap();
        cache.observe_response(&answer_ends(), &query, t(3));
        assert_eq!(
            cache.lookup(a, t(9)).unwrap().as_str(),
            Some("beacon.example.com")
        );
        assert_eq!(
            cache.lookup(aaaa, t(9)).unwrap().as_str(),
            Some("v6.example.net")
        );
        assert!(cache.lookup(other, t(9)).is_none());
        assert_eq!(cache.stats().answers, 2);
    }

    #[test]
    fn bounded_with_counted_eviction() {
        // One set of four slots: the fifth address replaces the one seen longest ago.
        let cache = NameCache::new(WAYS);
        for i in 0..5u8 {
            let ip = IpAddr::from([192, 0, 2, i]);
            resolve(&cache, u16::from(i), "x.example", ip, t(10 + u64::from(i)));
        }
        assert_eq!(cache.stats().evicted, 1);
        assert!(cache.lookup(IpAddr::from([192, 0, 2, 0]), t(99)).is_none());
        assert!(cache.lookup(IpAddr::from([192, 0, 2, 4]), t(99)).is_some());
    }

    #[test]
    fn long_names_keep_their_suffix() {
        let cache = NameCache::new(8);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let long = format!("{}.cdn.example.org", ["abcdefghij"; 8].join("."));
        resolve(&cache, 9, &long, ip, t(1));
        let got = cache.lookup(ip, t(1)).unwrap();
        assert!(got.truncated);
        assert!(got.as_str().unwrap().ends_with(".cdn.example.org"));
        assert_eq!(got.as_str().unwrap().len(), NAME_CAP);
    }

    proptest::proptest! {
        /// Hostile input: any bytes, and every prefix and single-byte corruption of a real
        /// response, never panic, and only whole answers are learned.
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let cache = NameCache::new(16);
            cache.observe_query(&query_ends(), &bytes, t(1));
            cache.observe_response(&answer_ends(), &bytes, t(1));
        }

        #[test]
        fn corrupted_responses_never_panic(pos in 0usize..64, value in proptest::prelude::any::<u8>(), cut in 0usize..64) {
            let ip: IpAddr = "198.51.100.7".parse().unwrap();
            let mut msg = dns_message(7, "c2.example.org", Some(ip)).unwrap();
            if let Some(b) = msg.get_mut(pos) {
                *b = value;
            }
            msg.truncate(msg.len().saturating_sub(cut));
            let cache = NameCache::new(16);
            cache.observe_query(&query_ends(), &dns_message(7, "c2.example.org", None).unwrap(), t(1));
            cache.observe_response(&answer_ends(), &msg, t(1));
            // The A record's address is the last 4 bytes: a cut message has no whole answer.
            if cut > 0 {
                proptest::prop_assert_eq!(cache.stats().answers, 0);
            }
        }
    }

    /// Issue 19 item 2: only an answer to a query seen from the other side is learned: same
    /// id, addresses, ports, tunnel context and question name, within the window; each query
    /// teaches one answer. Every other answer is counted.
    #[test]
    fn learns_only_answers_to_a_query_seen_from_the_other_side() {
        let c2: IpAddr = "203.0.113.66".parse().unwrap();
        let forged = |id| dns_message(id, "cdn.vendor.example", Some(c2)).unwrap();
        let query = |id| dns_message(id, "cdn.vendor.example", None).unwrap();
        let cache = NameCache::new(64);
        // Unsolicited.
        cache.observe_response(&answer_ends(), &forged(7), t(1));
        // A query, then answers that differ from it in one thing each.
        cache.observe_query(&query_ends(), &query(7), t(2));
        let mut wrong = answer_ends();
        wrong.src_port = 5353;
        cache.observe_response(&wrong, &forged(7), t(2));
        let mut wrong = answer_ends();
        wrong.src = ip_to_addr("198.51.100.53".parse().unwrap());
        cache.observe_response(&wrong, &forged(7), t(2));
        let mut wrong = answer_ends();
        wrong.context = 42;
        cache.observe_response(&wrong, &forged(7), t(2));
        cache.observe_response(&answer_ends(), &forged(8), t(2));
        let other_name = dns_message(7, "other.vendor.example", Some(c2)).unwrap();
        cache.observe_response(&answer_ends(), &other_name, t(2));
        // The query's own direction is no answer either.
        cache.observe_response(&query_ends(), &forged(7), t(2));
        assert!(cache.lookup(c2, t(100)).is_none());
        assert_eq!(cache.stats().answers_unsolicited, 7);
        // Too late.
        cache.observe_response(
            &answer_ends(),
            &forged(7),
            t(2) + ANSWER_WINDOW + Duration(1),
        );
        assert!(cache.lookup(c2, t(100)).is_none());
        // In time: learned, and the query is used up.
        cache.observe_query(&query_ends(), &query(9), t(20));
        cache.observe_response(&answer_ends(), &forged(9), t(21));
        assert!(cache.lookup(c2, t(21)).is_some());
        cache.observe_response(&answer_ends(), &forged(9), t(21));
        assert_eq!(cache.stats().answers_unsolicited, 9);
        assert_eq!(cache.stats().answers, 1);
    }

    /// Issue 19 item 2: a name learned after the moment asked about is no answer for it.
    #[test]
    fn lookup_gives_the_name_valid_at_the_time() {
        let cache = NameCache::new(64);
        let ip: IpAddr = "203.0.113.66".parse().unwrap();
        resolve(&cache, 1, "cdn.vendor.example", ip, t(100));
        assert!(cache.lookup(ip, t(99)).is_none());
        assert_eq!(
            cache.lookup(ip, t(100)).unwrap().as_str(),
            Some("cdn.vendor.example")
        );
        assert!(cache.lookup(ip, t(5000)).is_some(), "TTLs are not enforced");
    }

    /// Issue 19 item 3: a message beyond the parsing caps is counted and teaches nothing.
    #[test]
    fn messages_over_the_caps_are_counted() {
        let cache = NameCache::new(64);
        let mut query = dns_message(0x1234, "aaaa", None).unwrap();
        let hostile = crate::decode::dns::tests::hostile(u16::MAX, 1);
        // The query for the hostile message's first question name and id.
        query.truncate(12);
        query.extend_from_slice(&hostile[12..12 + 4 * 50 + 1 + 4]);
        query[5] = 1;
        cache.observe_query(&query_ends(), &query, t(1));
        cache.observe_response(&answer_ends(), &hostile, t(1));
        assert_eq!(cache.stats().over_limit, 1);
        assert_eq!(cache.stats().answers, 0);
    }

    #[test]
    fn suffix_matching() {
        assert!(matches_suffix("www.example.com", "example.com"));
        assert!(matches_suffix("example.com", "example.com"));
        assert!(matches_suffix("www.example.com", "*.example.com"));
        assert!(matches_suffix("WWW.EXAMPLE.com", ".example.COM"));
        assert!(!matches_suffix("badexample.com", "example.com"));
        assert!(!matches_suffix("example.com", ""));
        assert!(!matches_suffix("com", "example.com"));
    }

    /// Issue 19 item 2, the optional setting: with `name_resolvers` set, a solicited answer
    /// from another server (the host asked the attacker's server directly) teaches nothing
    /// and is counted; its query stays for the resolver's own answer. Without the setting
    /// the same answer is learned.
    #[test]
    fn only_configured_resolvers_teach_when_set() {
        let c2: IpAddr = "203.0.113.66".parse().unwrap();
        let open = NameCache::new(64);
        resolve(&open, 7, "cdn.vendor.example", c2, t(1));
        assert_eq!(
            open.lookup(c2, t(2)).unwrap().as_str(),
            Some("cdn.vendor.example"),
            "no setting: any server answering a query seen teaches"
        );

        let cache = NameCache::new(64);
        cache.set_resolvers(&["10.40.0.0/16".parse().unwrap()]);
        resolve(&cache, 7, "cdn.vendor.example", c2, t(1));
        assert!(
            cache.lookup(c2, t(2)).is_none(),
            "10.0.0.53 is not a resolver"
        );
        let s = cache.stats();
        assert_eq!(
            (s.answers, s.answers_not_resolver, s.answers_unsolicited),
            (0, 1, 0)
        );

        // The resolver's own answer to the same query still teaches.
        cache.set_resolvers(&["10.0.0.53/32".parse().unwrap()]);
        let msg = dns_message(7, "cdn.vendor.example", Some(c2)).unwrap();
        cache.observe_response(&answer_ends(), &msg, t(1));
        assert_eq!(
            cache.lookup(c2, t(2)).unwrap().as_str(),
            Some("cdn.vendor.example")
        );
        assert_eq!(cache.stats().answers_not_resolver, 1);
    }
}
