//! Names learned passively from DNS answers seen on the wire: which name an address was
//! resolved from, for the evidence of beacon alerts and their domain allowlist.
//!
//! The capture thread writes ([`NameCache::observe_response`], once per DNS response); the
//! workers read ([`NameCache::lookup`]) only when they write an alert, never per packet.
//! Bounded by construction: a set-associative array of [`WAYS`] slots per set, allocated once
//! in [`NameCache::new`]; a new address takes a free slot of its set or replaces the one seen
//! longest ago (counted in [`NameCacheStats::evicted`]). A name is kept in a fixed buffer of
//! [`NAME_CAP`] bytes; a longer one keeps its *last* bytes (the suffix that allowlists match).
//! Each set has its own mutex, so the writer and a reader meet only on one set, briefly.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use flowtable::Timestamp;
use flowtable::key::ip_to_addr;

use crate::decode::dns::{DnsHeaderSlice, MAX_NAME_LEN};

/// Slots per set.
pub const WAYS: usize = 4;

/// Bytes of a name kept (the end of a longer name).
pub const NAME_CAP: usize = 64;

/// A bounded IP → name cache shared by the capture thread (writer) and the workers (readers).
#[derive(Debug)]
pub struct NameCache {
    sets: Box<[Mutex<[NameSlot; WAYS]>]>,
    hasher: foldhash::quality::RandomState,
    answers: AtomicU64,
    evicted: AtomicU64,
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
            sets: (0..n_sets).map(|_| Mutex::new([FREE_SLOT; WAYS])).collect(),
            hasher: foldhash::quality::RandomState::default(),
            answers: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// A DNS response (UDP payload from port 53) seen at `now`: every A/AAAA answer address
    /// is remembered under the first question's name. Malformed messages teach nothing.
    pub fn observe_response(&self, message: &[u8], now: Timestamp) {
        let Some(h) = DnsHeaderSlice::from_slice(message) else {
            return;
        };
        if !h.is_response() || h.rcode() != 0 || h.answer_count() == 0 {
            return;
        }
        let mut name = [0u8; MAX_NAME_LEN];
        let Some(len) = h.question_name(&mut name) else {
            return;
        };
        let Some(name) = name.get(..len).filter(|n| !n.is_empty()) else {
            return;
        };
        let cached = CachedName::from_wire(name);
        // Zero means "free"; a capture at the epoch still counts as seen.
        let seen = Timestamp(now.as_nanos().max(1));
        h.for_each_address(|ip| self.insert(ip, cached, seen));
    }

    /// The name `ip` was last resolved from, if still remembered.
    pub fn lookup(&self, ip: IpAddr) -> Option<CachedName> {
        let addr = ip_to_addr(ip);
        let set = self.set_of(&addr)?.lock().ok()?;
        set.iter()
            .find(|s| s.seen != Timestamp::ZERO && s.addr == addr)
            .map(|s| s.name)
    }

    /// Counters so far.
    pub fn stats(&self) -> NameCacheStats {
        NameCacheStats {
            answers: self.answers.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    fn set_of(&self, addr: &[u8; 16]) -> Option<&Mutex<[NameSlot; WAYS]>> {
        let h = self.hasher.hash_one(addr);
        let idx = ((u128::from(h) * self.sets.len() as u128) >> 64) as usize;
        self.sets.get(idx)
    }

    fn insert(&self, ip: IpAddr, name: CachedName, seen: Timestamp) {
        let addr = ip_to_addr(ip);
        let Some(Ok(mut set)) = self.set_of(&addr).map(|m| m.lock()) else {
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

    #[test]
    fn learns_a_and_aaaa_answers() {
        let cache = NameCache::new(64);
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let aaaa: IpAddr = "2001:db8::7".parse().unwrap();
        cache.observe_response(
            &dns_message(1, "Beacon.Example.COM", Some(a)).unwrap(),
            t(1),
        );
        cache.observe_response(&dns_message(2, "v6.example.net", Some(aaaa)).unwrap(), t(2));
        // A query teaches nothing.
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        cache.observe_response(&dns_message(3, "query.example", None).unwrap(), t(3));
        assert_eq!(
            cache.lookup(a).unwrap().as_str(),
            Some("beacon.example.com")
        );
        assert_eq!(cache.lookup(aaaa).unwrap().as_str(), Some("v6.example.net"));
        assert!(cache.lookup(other).is_none());
        assert_eq!(cache.stats().answers, 2);
    }

    #[test]
    fn bounded_with_counted_eviction() {
        // One set of four slots: the fifth address replaces the one seen longest ago.
        let cache = NameCache::new(WAYS);
        for i in 0..5u8 {
            let ip = IpAddr::from([192, 0, 2, i]);
            let msg = dns_message(u16::from(i), "x.example", Some(ip)).unwrap();
            cache.observe_response(&msg, t(10 + u64::from(i)));
        }
        assert_eq!(cache.stats().evicted, 1);
        assert!(cache.lookup(IpAddr::from([192, 0, 2, 0])).is_none());
        assert!(cache.lookup(IpAddr::from([192, 0, 2, 4])).is_some());
    }

    #[test]
    fn long_names_keep_their_suffix() {
        let cache = NameCache::new(8);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let long = format!("{}.cdn.example.org", ["abcdefghij"; 8].join("."));
        cache.observe_response(&dns_message(9, &long, Some(ip)).unwrap(), t(1));
        let got = cache.lookup(ip).unwrap();
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
            cache.observe_response(&bytes, t(1));
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
            cache.observe_response(&msg, t(1));
            // The A record's address is the last 4 bytes: a cut message has no whole answer.
            if cut > 0 {
                proptest::prop_assert_eq!(cache.stats().answers, 0);
            }
        }
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
}
