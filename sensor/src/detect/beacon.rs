//! Beacons: fixed-size periodic traffic from an internal host toward an untrusted destination
//! (MITRE T1020.001 detection: "fixed size data packets at regular intervals" to "abnormal or
//! untrusted hosts"), scored online in the spirit of RITA (`detection-reference.md` §3).
//!
//! - **Trust.** A flow counts when the side that spoke first is inside `[networks] home` and
//!   the other side is neither in `home` nor in `[beacon] trusted_destinations`. Names learned
//!   from DNS answers ([`crate::names`]) are looked up only when an alert is about to be
//!   written: a destination whose name ends with an `allowlist_domains` suffix is not alerted.
//! - **Connection beacons.** One beat per connection of a pair (internal source, destination,
//!   destination port, protocol): its start time and the IP bytes the source sent, recorded
//!   when the connection closes (TCP FIN both ways or RST) or its flow record ends. Pairs live
//!   in a fixed-capacity [`PairTable`] per worker (dispatch by IP pair puts every connection of
//!   a pair in one worker); a full table evicts, by preference, pairs already scored irregular.
//! - **Packet beacons.** Inside one flow, a beat is a burst of data packets from the source
//!   (packets less than `burst_gap_ms` apart). [`FlowState`] keeps a cheap candidate test:
//!   a burst of the previous burst's size after a gap similar to the previous gap promotes the
//!   flow to a full ring in the fixed [`TrackPool`], that burst being its first beat.
//! - **Score** ([`score_beats`]): the latest [`RING`] beats; intervals below `min_interval_ms`
//!   dropped (retries, duplicates); intervals close to 2..=`max_missed_beats`+1 times the
//!   median folded back (missed beats) when nine in ten intervals fit that grid; timing and
//!   sizes each scored as the lower of 1 - |Bowley skewness| and (median - MAD) / median
//!   (skewness only when the spread exceeds the jitter); the score is the lower of the two
//!   (RITA averages four scores over a day of connections; with as few as six beats one
//!   dimension is often regular by chance, so a beacon must be regular in both).
//! - **Alerts.** Once per pair (or flow) when at least `min_beats` beats score at least
//!   `score_threshold`; then an update (`evidence.beacon.update: true`) only when the beat count
//!   has doubled or the severity rose since the last alert, and at most every
//!   `update_interval_s`.
//!
//! Nothing here allocates after [`BeaconDetector::new`] or reads a clock; every table is
//! bounded and every eviction counted.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use flowtable::key::{addr_to_ip, ip_to_addr};
use flowtable::{Direction, Duration, IpProto, Timestamp};
use hashbrown::HashTable;
use ipnet::IpNet;
use serde::Deserialize;

use crate::alert::beacon::{
    BeaconDetail, BeaconEvidence, BeaconThresholds, BeatList, DestinationInfo, Rounded,
};
use crate::alert::{
    AlertEvent, AlertInfo, AlertWriteError, EventHeader, EventSink, Mitre, ProtoName, Rfc3339,
};
use crate::names::matches_suffix;
use crate::packet::{AppHint, Keepalive, PacketMeta};

use super::{Flow, FlowEnd, SharedState};

/// Beats kept per pair and per packet track (the score uses these).
pub const RING: usize = 32;

/// Agreements (a burst of the same size as the previous one, after a gap similar to the
/// previous gap) that promote a flow to a packet track.
const PROMOTE_AFTER: u8 = 1;

/// Pair slots looked at when choosing one to evict.
const EVICT_SAMPLE: usize = 16;

/// Pair slots checked for idleness per tick.
const EXPIRE_SCAN: usize = 256;

/// Signature of a connection beacon.
pub const SIG_CONNECTIONS: (u32, &str) = (3_000_001, "beacon.fixed_interval");
/// Signature of a packet beacon inside one flow.
pub const SIG_PACKETS: (u32, &str) = (3_000_002, "beacon.heartbeat");
/// Signature of a first contact with an untrusted destination never seen before.
pub const SIG_NEW_DESTINATION: (u32, &str) = (3_000_003, "beacon.new_destination");

/// `[beacon]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeaconConfig {
    /// Run the detector.
    pub enabled: bool,
    /// Destinations never flagged (CIDRs), beside `[networks] home`.
    pub trusted_destinations: Vec<IpNet>,
    /// Domain suffixes never flagged, matched against names learned from DNS answers.
    pub allowlist_domains: Vec<String>,
    /// Beats needed before an alert.
    pub min_beats: u32,
    /// Packet time the beats must cover before an alert, in seconds: periodic traffic over
    /// less than this is an application's timer inside an open session (keep-alives, polling),
    /// and a real beacon keeps beating past it, so it only delays a fast beacon's alert.
    pub min_span_s: u64,
    /// Score (0 to 1) at or above which a pattern alerts.
    pub score_threshold: f64,
    /// Beats closer than this are one beat (retries, bursts), in milliseconds.
    pub min_interval_ms: u64,
    /// Data packets from the source of one flow less than this apart are one burst (one beat
    /// of a packet beacon), in milliseconds.
    pub burst_gap_ms: u64,
    /// Relative tolerance of an interval that folds as a missed beat.
    pub jitter: f64,
    /// Most consecutive missed beats one interval may fold.
    pub max_missed_beats: u32,
    /// Pairs tracked at once across all workers.
    pub pair_capacity: usize,
    /// A pair without a beat for this long is forgotten, in seconds.
    pub pair_idle_timeout_s: u64,
    /// Flows tracked as packet-beacon candidates at once across all workers.
    pub packet_tracks: usize,
    /// Least time between an alert and its update, in seconds.
    pub update_interval_s: u64,
    /// Destinations first seen later than this after the first packet are `first_seen`.
    pub warmup_s: u64,
    /// Known destinations loaded at start and saved at the end (empty = none).
    pub baseline_file: String,
    /// Destinations remembered (run and baseline together).
    pub known_destinations_capacity: usize,
    /// Most destinations one internal host may teach the known set per hour of packet time
    /// (each from a completed two-way exchange): bounds baseline poisoning.
    pub learn_per_source_per_hour: u32,
    /// Alert on the first contact with an untrusted destination never seen before.
    pub new_destination_alerts: bool,
    /// Alert also on the keep-alives of known protocols (STUN, SIP, WireGuard, NAT-T,
    /// OpenVPN, DNS polling, TCP keep-alives), which are otherwise only counted.
    pub alert_keepalives: bool,
    /// DNS resolvers (CIDRs) whose polling (the same question again and again) is a
    /// keep-alive; empty = any server on port 53.
    pub dns_resolvers: Vec<IpNet>,
    /// DNS resolvers (CIDRs) whose answers teach the name cache (`allowlist_domains`, the
    /// evidence's name); empty = any server answering a query seen from the other side.
    pub name_resolvers: Vec<IpNet>,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        BeaconConfig {
            enabled: true,
            trusted_destinations: Vec::new(),
            allowlist_domains: Vec::new(),
            min_beats: 8,
            min_span_s: 60,
            score_threshold: 0.85,
            min_interval_ms: 500,
            burst_gap_ms: 1000,
            jitter: 0.25,
            max_missed_beats: 3,
            pair_capacity: 32_768,
            pair_idle_timeout_s: 10_800,
            packet_tracks: 4096,
            update_interval_s: 3600,
            warmup_s: 300,
            baseline_file: String::new(),
            known_destinations_capacity: 65_536,
            learn_per_source_per_hour: 256,
            new_destination_alerts: false,
            alert_keepalives: false,
            dns_resolvers: Vec::new(),
            name_resolvers: Vec::new(),
        }
    }
}

impl BeaconConfig {
    /// Range checks the types cannot express: `Err((key, problem))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let fail = |key, problem: &str| Err((key, problem.to_owned()));
        if !(4..=RING as u32).contains(&self.min_beats) {
            return fail("min_beats", &format!("must be between 4 and {RING}"));
        }
        if self.min_span_s > 86_400 {
            return fail("min_span_s", "must be at most 86400 (a day)");
        }
        if !(self.score_threshold > 0.0 && self.score_threshold <= 1.0) {
            return fail("score_threshold", "must be in (0, 1]");
        }
        if self.min_interval_ms == 0 || self.min_interval_ms > 3_600_000 {
            return fail("min_interval_ms", "must be between 1 and 3600000");
        }
        if self.burst_gap_ms == 0 || self.burst_gap_ms > 3_600_000 {
            return fail("burst_gap_ms", "must be between 1 and 3600000");
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return fail("jitter", "must be between 0 and 0.5");
        }
        if self.max_missed_beats > 8 {
            return fail("max_missed_beats", "must be at most 8");
        }
        if self.pair_capacity == 0 || self.pair_capacity > 1 << 24 {
            return fail("pair_capacity", "must be between 1 and 2^24");
        }
        if self.pair_idle_timeout_s == 0 {
            return fail("pair_idle_timeout_s", "must be at least 1");
        }
        if self.packet_tracks == 0 || self.packet_tracks > 1 << 20 {
            return fail("packet_tracks", "must be between 1 and 2^20");
        }
        if self.known_destinations_capacity > 1 << 24 {
            return fail("known_destinations_capacity", "must be at most 2^24");
        }
        if self.learn_per_source_per_hour == 0 || self.learn_per_source_per_hour > 1 << 20 {
            return fail("learn_per_source_per_hour", "must be between 1 and 2^20");
        }
        if self.allowlist_domains.iter().any(|d| {
            d.trim_start_matches("*.")
                .trim_start_matches('.')
                .is_empty()
        }) {
            return fail("allowlist_domains", "an entry is empty");
        }
        Ok(())
    }
}

/// Per-flow state (fixed size, in every flow-table slot): whether the flow is outbound to an
/// untrusted destination, whether its connection beat is recorded, and the packet-beacon
/// candidate test over bursts of data packets from the source.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowState {
    /// Start of the current burst (zero: none yet).
    cur_start: Timestamp,
    /// Latest data packet from the source.
    last_data: Timestamp,
    /// Payload bytes of the current burst.
    cur_bytes: u32,
    /// Payload bytes of the previous burst (0: none).
    prev_bytes: u32,
    /// Milliseconds from the previous burst's start to the current one's (0: none).
    gap_ms: u32,
    /// The gap before that (0: none).
    prev_gap_ms: u32,
    /// Packet track index + 1 (0: none) and its generation.
    track: u32,
    /// 16 bits keep the slot at 40 bytes (the flow budget is 256 B); a stale reference
    /// survives only if its slot was reused exactly 65,536 times meanwhile.
    track_gen: u16,
    /// Consecutive agreeing bursts.
    streak: u8,
    /// `OUTBOUND`, `RECORDED`.
    flags: u8,
}

const OUTBOUND: u8 = 1;
const RECORDED: u8 = 2;
/// Bits 2..=5 of `FlowState::flags`: the keep-alive shape of every data packet of the
/// source's current burst (0: none yet, a [`Keepalive`] value, or [`KA_NOT`]).
const KA_SHIFT: u8 = 2;
const KA_MASK: u8 = 0b1111 << KA_SHIFT;
/// Some data packet of the burst was not a recognised keep-alive (or kinds were mixed).
const KA_NOT: u8 = 15;
/// Some data packet of the flow's source was not a recognised keep-alive.
const FLOW_NOT_KEEPALIVE: u8 = 1 << 6;
/// The destination sent payload in this flow (half of a two-way exchange; the source's half
/// is `cur_start` set).
const PEER_DATA: u8 = 1 << 7;

/// Keep-alive beats of a pattern: the kind, and how many beats were of it. A pattern is a
/// keep-alive when at least half its beats are: the score is made of medians, so the beats
/// it describes are then keep-alives (a session's keep-alives beside its real messages, such
/// as a SIP registration, or bursts where a keep-alive met other packets).
#[derive(Clone, Copy, Debug, Default)]
struct KeepaliveBeats {
    kind: u8,
    beats: u32,
}

impl KeepaliveBeats {
    fn note(&mut self, code: u8) {
        if (1..=7).contains(&code) {
            if self.kind == 0 || self.kind == code {
                self.kind = code;
                self.beats = self.beats.saturating_add(1);
            } else {
                self.kind = KA_NOT;
            }
        }
    }

    fn kind(&self, beats: u64) -> Keepalive {
        if self.kind != KA_NOT && u64::from(self.beats) * 2 >= beats {
            Keepalive::from_u8(self.kind)
        } else {
            Keepalive::None
        }
    }
}

/// The keep-alive code of a burst after one more data packet of shape `k`. A burst is a
/// keep-alive beat when it holds a recognised keep-alive and no other recognised kind: the
/// keep-alive is what recurs, and the packets beside it within the burst gap are the session
/// answering or carrying on (a Tailscale disco ping next to WireGuard packets, a SIP
/// keep-alive next to a registration). Code 0 at the end of a burst: no keep-alive in it.
fn merge_keepalive(code: u8, k: Keepalive) -> u8 {
    let v = k as u8;
    match (code, k) {
        (c, Keepalive::None) => c,
        (0, _) => v,
        (c, _) if c == v => v,
        _ => KA_NOT,
    }
}

fn keepalive_code(flags: u8) -> u8 {
    (flags & KA_MASK) >> KA_SHIFT
}

/// Counters for the `stats` event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BeaconStats {
    /// Alert events written (first alerts and updates).
    pub alerts: u64,
    /// Of which updates.
    pub updates: u64,
    /// `beacon.new_destination` alerts (included in `alerts`).
    pub new_destination_alerts: u64,
    /// Connection beats recorded.
    pub connection_beats: u64,
    /// Packet beats recorded (bursts inside tracked flows).
    pub packet_beats: u64,
    /// Pairs tracked now.
    pub pairs_tracked: u64,
    /// Pairs ever created.
    pub pairs_created: u64,
    /// Pairs evicted to make room.
    pub pairs_evicted: u64,
    /// Of which had been scored below the threshold.
    pub pairs_evicted_irregular: u64,
    /// Pairs forgotten after `pair_idle_timeout_s` without a beat.
    pub pairs_expired: u64,
    /// Flows promoted to a packet track.
    pub tracks_promoted: u64,
    /// Packet tracks in use now.
    pub tracks_active: u64,
    /// Packet tracks evicted to make room.
    pub tracks_evicted: u64,
    /// Patterns above the threshold not alerted because of `allowlist_domains`.
    pub allowlisted: u64,
    /// Untrusted destinations first seen in this run after the warm-up.
    pub new_destinations: u64,
    /// Destinations not remembered because `known_destinations_capacity` was reached.
    pub destinations_not_remembered: u64,
    /// Unknown destinations not learned because no completed two-way exchange was seen
    /// (once per pair or track): spoofed SYNs, unanswered probes.
    pub destinations_refused_one_way: u64,
    /// Unknown destinations not learned because their source had taught
    /// `learn_per_source_per_hour` already (once per exchange).
    pub destinations_refused_rate: u64,
    /// Patterns above the threshold not alerted because they are keep-alives of a known
    /// protocol, by [`Keepalive`] value (index 0 unused).
    pub keepalives: [u64; 8],
}

impl BeaconStats {
    /// Adds another worker's counters.
    pub fn add(&mut self, o: &BeaconStats) {
        self.alerts += o.alerts;
        self.updates += o.updates;
        self.new_destination_alerts += o.new_destination_alerts;
        self.connection_beats += o.connection_beats;
        self.packet_beats += o.packet_beats;
        self.pairs_tracked += o.pairs_tracked;
        self.pairs_created += o.pairs_created;
        self.pairs_evicted += o.pairs_evicted;
        self.pairs_evicted_irregular += o.pairs_evicted_irregular;
        self.pairs_expired += o.pairs_expired;
        self.tracks_promoted += o.tracks_promoted;
        self.tracks_active += o.tracks_active;
        self.tracks_evicted += o.tracks_evicted;
        self.allowlisted += o.allowlisted;
        self.new_destinations += o.new_destinations;
        self.destinations_not_remembered += o.destinations_not_remembered;
        self.destinations_refused_one_way += o.destinations_refused_one_way;
        self.destinations_refused_rate += o.destinations_refused_rate;
        for (a, b) in self.keepalives.iter_mut().zip(o.keepalives) {
            *a += b;
        }
    }

    /// Counters by stable name, for `stats.beacon`.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        const KEEPALIVES: [&str; 8] = [
            "keepalives",
            "keepalives_stun",
            "keepalives_sip",
            "keepalives_wireguard",
            "keepalives_ipsec_natt",
            "keepalives_openvpn",
            "keepalives_dns_polling",
            "keepalives_tcp",
        ];
        let total: u64 = self.keepalives.iter().sum();
        let mut v = vec![
            ("alerts", self.alerts),
            ("updates", self.updates),
            ("new_destination_alerts", self.new_destination_alerts),
            ("connection_beats", self.connection_beats),
            ("packet_beats", self.packet_beats),
            ("pairs_tracked", self.pairs_tracked),
            ("pairs_created", self.pairs_created),
            ("pairs_evicted", self.pairs_evicted),
            ("pairs_evicted_irregular", self.pairs_evicted_irregular),
            ("pairs_expired", self.pairs_expired),
            ("tracks_promoted", self.tracks_promoted),
            ("tracks_active", self.tracks_active),
            ("tracks_evicted", self.tracks_evicted),
            ("allowlisted", self.allowlisted),
            ("new_destinations", self.new_destinations),
            (
                "destinations_not_remembered",
                self.destinations_not_remembered,
            ),
            (
                "destinations_refused_one_way",
                self.destinations_refused_one_way,
            ),
            ("destinations_refused_rate", self.destinations_refused_rate),
        ];
        v.push((KEEPALIVES[0], total));
        for (name, n) in KEEPALIVES.iter().zip(self.keepalives).skip(1) {
            v.push((name, n));
        }
        v
    }
}

/// The regularity of a set of beats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeaconScore {
    /// Median interval (missed beats folded), seconds.
    pub interval_s: f64,
    /// Median absolute deviation of the intervals, seconds.
    pub interval_mad_s: f64,
    /// Median size, bytes.
    pub size_bytes: f64,
    /// Median absolute deviation of the sizes, bytes.
    pub size_mad_bytes: f64,
    /// Timing regularity, 0 to 1.
    pub timing: f64,
    /// Size regularity, 0 to 1.
    pub size: f64,
    /// The lower of the two: a beacon is regular in both.
    pub score: f64,
    /// Intervals scored (after dropping short ones).
    pub intervals: usize,
}

/// How intervals are cleaned before scoring.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreParams {
    /// Intervals below this are dropped (nanoseconds).
    pub min_interval_ns: u64,
    /// Relative tolerance for folding missed beats.
    pub jitter: f64,
    /// Most missed beats folded per interval.
    pub max_missed: u32,
}

/// Scores beats (at most [`RING`] are used; times in any order): `None` with fewer than two
/// intervals left after dropping short ones.
pub fn score_beats(times: &[Timestamp], sizes: &[u32], p: &ScoreParams) -> Option<BeaconScore> {
    let n = times.len().min(RING);
    let mut sorted = [0u64; RING];
    for (d, t) in sorted.iter_mut().zip(times.iter().take(n)) {
        *d = t.as_nanos();
    }
    let sorted = sorted.get_mut(..n)?;
    sorted.sort_unstable();
    let mut intervals = [0f64; RING];
    let mut k = 0;
    for w in sorted.windows(2) {
        if let [a, b] = w {
            let d = b.saturating_sub(*a);
            if d >= p.min_interval_ns {
                if let Some(slot) = intervals.get_mut(k) {
                    *slot = d as f64;
                    k += 1;
                }
            }
        }
    }
    if k < 2 {
        return None;
    }
    let intervals = intervals.get_mut(..k)?;
    let mut scratch = [0f64; RING];
    let median = median_of(intervals, &mut scratch);
    // Missed beats: an interval within the jitter of 2, 3, ... times the median is that many
    // beats. Folded only when at least nine in ten intervals sit on that grid, so random
    // timing (about half of exponential gaps land on it by chance) is not regularized.
    let on_grid = |d: f64| {
        let beats = (d / median).round().max(1.0);
        (beats <= f64::from(p.max_missed + 1) && (d / beats - median).abs() <= p.jitter * median)
            .then_some(beats)
    };
    let n_on_grid = intervals.iter().filter(|d| on_grid(**d).is_some()).count();
    if median > 0.0 && 10 * n_on_grid >= 9 * k {
        for d in intervals.iter_mut() {
            if let Some(beats) = on_grid(*d) {
                *d /= beats;
            }
        }
    }
    let spread = 2.0 * p.jitter;
    let (timing, interval_med, interval_mad) = regularity(intervals, 0.0, spread);
    let mut size_vals = [0f64; RING];
    let m = sizes.len().min(RING);
    for (d, s) in size_vals.iter_mut().zip(sizes.iter().take(m)) {
        *d = f64::from(*s);
    }
    let (size, size_med, size_mad) = regularity(size_vals.get_mut(..m)?, 10.0, spread);
    // `regularity` left the sizes sorted. Two fixed sizes in turn (a check-in with and without
    // a task, or an adversary defeating the median) are as regular as one: the median of such
    // a window falls between them and the MAD scores it about 0.45.
    let size = size.max(two_sizes_score(size_vals.get(..m)?));
    Some(BeaconScore {
        interval_s: interval_med / 1e9,
        interval_mad_s: interval_mad / 1e9,
        size_bytes: size_med,
        size_mad_bytes: size_mad,
        timing,
        size,
        score: timing.min(size),
        intervals: k,
    })
}

/// Severity of a score: 1 from 0.95, 2 from 0.9, else 3.
pub fn severity(score: f64) -> u8 {
    if score >= 0.95 {
        1
    } else if score >= 0.9 {
        2
    } else {
        3
    }
}

/// Median of `v` (copied into `scratch` and sorted there).
fn median_of(v: &[f64], scratch: &mut [f64; RING]) -> f64 {
    let n = v.len().min(RING);
    let Some(s) = scratch.get_mut(..n) else {
        return 0.0;
    };
    s.copy_from_slice(v.get(..n).unwrap_or_default());
    s.sort_unstable_by(f64::total_cmp);
    quantile(s, 0.5)
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let pos = q * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (
        sorted.get(lo).copied().unwrap_or(0.0),
        sorted.get(hi).copied().unwrap_or(0.0),
    );
    a + (b - a) * (pos - lo as f64)
}

/// Regularity of a sample after RITA: the lower of 1 - |Bowley skewness| and
/// (median - MAD) / median.
/// Skewness only counts when the interquartile range is at least `abs_floor` and `rel_floor`
/// times the median (the tolerated jitter span: the asymmetry of a spread within it says
/// nothing, and with a handful of samples it is noise) and the median differs from both
/// quartiles. Returns (score, median, MAD); sorts `v`.
/// How well at most two fixed sizes explain `sorted` (ascending): the share of sizes within
/// 10 bytes of one of the two most common values, when each of the two holds at least a
/// quarter of them; 0 otherwise. Random sizes (browsing) never gather on two values; one
/// fixed size is already scored 1 by [`regularity`].
fn two_sizes_score(sorted: &[f64]) -> f64 {
    const TOLERANCE: f64 = 10.0;
    let n = sorted.len();
    if n < 4 {
        return 0.0;
    }
    // Runs of sizes within TOLERANCE of the run's first value; keep the two largest.
    let (mut best, mut second) = (0usize, 0usize);
    let mut start = 0usize;
    for i in 1..=n {
        let ends = match (sorted.get(i), sorted.get(start)) {
            (Some(x), Some(first)) => x - first > TOLERANCE,
            _ => true,
        };
        if ends {
            let len = i - start;
            if len > best {
                second = best;
                best = len;
            } else if len > second {
                second = len;
            }
            start = i;
        }
    }
    if 4 * second < n {
        return 0.0;
    }
    (best + second) as f64 / n as f64
}

fn regularity(v: &mut [f64], abs_floor: f64, rel_floor: f64) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_unstable_by(f64::total_cmp);
    let (q1, q2, q3) = (quantile(v, 0.25), quantile(v, 0.5), quantile(v, 0.75));
    let iqr = q3 - q1;
    let skew = if iqr > 0.0 && iqr >= abs_floor && iqr >= rel_floor * q2 && q2 != q1 && q2 != q3 {
        (q1 + q3 - 2.0 * q2) / iqr
    } else {
        0.0
    };
    let mut dev = [0f64; RING];
    for (d, x) in dev.iter_mut().zip(v.iter()) {
        *d = (x - q2).abs();
    }
    let dev = dev.get_mut(..v.len().min(RING)).unwrap_or_default();
    dev.sort_unstable_by(f64::total_cmp);
    let mad = quantile(dev, 0.5);
    let mad_score = if q2 > 0.0 {
        ((q2 - mad) / q2).max(0.0)
    } else {
        0.0
    };
    // The lower of the two, not RITA's mean: the mean gives a narrow spread half marks for
    // free (its skewness is not counted), and random sizes within ±45 % then pass.
    (mad_score.min(1.0 - skew.abs()), q2, mad)
}

/// The last [`RING`] beats of a pair or track, and totals.
#[derive(Clone, Copy, Debug)]
struct Beats {
    times: [Timestamp; RING],
    sizes: [u32; RING],
    next: u8,
    len: u8,
    count: u64,
    first: Timestamp,
    last: Timestamp,
}

impl Default for Beats {
    fn default() -> Self {
        Beats {
            times: [Timestamp::ZERO; RING],
            sizes: [0; RING],
            next: 0,
            len: 0,
            count: 0,
            first: Timestamp::ZERO,
            last: Timestamp::ZERO,
        }
    }
}

impl Beats {
    fn push(&mut self, t: Timestamp, size: u32) {
        let i = usize::from(self.next) % RING;
        if let (Some(ts), Some(sz)) = (self.times.get_mut(i), self.sizes.get_mut(i)) {
            *ts = t;
            *sz = size;
        }
        self.next = ((i + 1) % RING) as u8;
        self.len = (usize::from(self.len) + 1).min(RING) as u8;
        if self.count == 0 || t < self.first {
            self.first = t;
        }
        if t > self.last {
            self.last = t;
        }
        self.count += 1;
    }

    /// The ring as evidence, oldest beat first.
    fn list(&self) -> BeatList<'_> {
        let len = usize::from(self.len);
        BeatList {
            times: &self.times,
            sizes: &self.sizes,
            len,
            oldest: if len < RING {
                0
            } else {
                usize::from(self.next)
            },
        }
    }

    fn score(&self, p: &ScoreParams) -> Option<BeaconScore> {
        let n = usize::from(self.len);
        score_beats(self.times.get(..n)?, self.sizes.get(..n)?, p)
    }
}

/// A pair's identity: internal source, destination, destination port, protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PairKey {
    src: [u8; 16],
    dst: [u8; 16],
    dst_port: u16,
    proto: u8,
}

/// Three words instead of the derived field-by-field feed (a length prefix and a byte-slice
/// pass per address): a look-up per connection. Equal keys feed equal words.
impl std::hash::Hash for PairKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from_ne_bytes(self.src));
        state.write_u128(u128::from_ne_bytes(self.dst));
        state.write_u32(u32::from(self.dst_port) << 8 | u32::from(self.proto));
    }
}

impl PairKey {
    /// The pair of a flow whose source is the side that spoke first.
    fn of_flow(flow: &Flow) -> (PairKey, u16) {
        let k = &flow.key;
        let (src, sport, dst, dport) = match flow.first_dir {
            Direction::LoToHi => (k.lo_addr, k.lo_port, k.hi_addr, k.hi_port),
            Direction::HiToLo => (k.hi_addr, k.hi_port, k.lo_addr, k.lo_port),
        };
        // ICMP "ports" are echo ids, new per ping run: one pair per host pair.
        let dport = if k.proto == IpProto::TCP || k.proto == IpProto::UDP {
            dport
        } else {
            0
        };
        let key = PairKey {
            src,
            dst,
            dst_port: dport,
            proto: k.proto.0,
        };
        (key, sport)
    }
}

/// Alert bookkeeping of a pair or track.
#[derive(Clone, Copy, Debug, Default)]
struct AlertState {
    /// Beat count at the last alert (0: never alerted).
    alerted_count: u64,
    last_alert: Timestamp,
    severity: u8,
    /// Scored at least once, and the last score.
    scored: bool,
    last_score: f32,
    /// Above the threshold but allowlisted by name: never alerted.
    suppressed: bool,
    /// Destination facts: first seen (never known before, after the warm-up) and in the
    /// baseline file, as of the last time the known set was asked.
    dest_first_seen: bool,
    dest_in_baseline: bool,
    /// The known set was asked about the destination once.
    dest_asked: bool,
    /// The destination is settled: known, learned, or not rememberable (set full); the
    /// known set is not asked again.
    dest_settled: bool,
    /// Above the threshold, a keep-alive of a known protocol, counted once.
    keepalive_counted: bool,
}

/// A pair as eviction and expiry see it (see [`PairTable::weights`]).
#[derive(Clone, Copy, Debug, Default)]
struct PairWeight {
    /// Latest beat.
    last: Timestamp,
    /// Score of the last evaluation, when `scored`.
    last_score: f32,
    live: bool,
    scored: bool,
    alerted: bool,
}

impl PairWeight {
    fn of(p: &Pair) -> PairWeight {
        PairWeight {
            last: p.beats.last,
            last_score: p.alert.last_score,
            live: p.live,
            scored: p.alert.scored,
            alerted: p.alert.alerted_count > 0,
        }
    }

    /// [`AlertState::keep_rank`] of the pair.
    fn keep_rank(&self, threshold: f64) -> u8 {
        if self.alerted {
            2
        } else if self.scored && f64::from(self.last_score) < threshold {
            0
        } else {
            1
        }
    }
}

impl AlertState {
    /// Eviction preference: 0 = scored irregular (can hardly become a beacon), 1 = not yet
    /// decided, 2 = alerted.
    fn keep_rank(&self, threshold: f64) -> u8 {
        if self.alerted_count > 0 {
            2
        } else if self.scored && f64::from(self.last_score) < threshold {
            0
        } else {
            1
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Pair {
    key: PairKey,
    live: bool,
    beats: Beats,
    alert: AlertState,
    /// Connections made only of keep-alives.
    keepalive: KeepaliveBeats,
}

/// Fixed-capacity pair table: a slab, a free list and a seeded hash index.
///
/// The slab and the free list are reserved for the capacity at construction (address space,
/// no page touched) and filled on demand: a slot is pushed the first time it is needed, so a
/// short capture pays for the pairs it has, not for the capacity. Slots are handed out in the
/// order a full free list would give them (released slots last in first out, then the lowest
/// never used), so which slot a pair gets, and therefore eviction, does not depend on that.
/// The index starts small and doubles with the live pairs up to the capacity (as the flow
/// table's does); it allocates only when the table reaches a new peak of live pairs.
struct PairTable {
    slots: Vec<Pair>,
    /// What eviction and expiry weigh of each slot, in a dense slab beside the 500-byte
    /// slots: a sweep reads its [`EVICT_SAMPLE`] candidates here, one line for four, instead
    /// of a cache miss each (measured: 40 % of `record_connection` under a flood of new pairs,
    /// where every new pair evicts). Kept equal to the slot by [`PairTable::reweigh`].
    weights: Vec<PairWeight>,
    /// Released slots (never a slot not yet pushed).
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: foldhash::quality::RandomState,
    /// Hard cap on slots.
    capacity: usize,
    evict_hand: usize,
    expire_hand: usize,
    len: usize,
}

/// Pairs the index of a new [`PairTable`] holds before its first growth.
const INITIAL_INDEX_PAIRS: usize = 256;

/// Index buckets' room per live pair: the index stays at most half full.
const INDEX_SLACK: usize = 2;

impl PairTable {
    fn new(capacity: usize) -> PairTable {
        let capacity = capacity.max(1);
        PairTable {
            slots: Vec::with_capacity(capacity),
            weights: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            index: HashTable::with_capacity(capacity.min(INITIAL_INDEX_PAIRS) * INDEX_SLACK),
            hasher: foldhash::quality::RandomState::default(),
            capacity,
            evict_hand: 0,
            expire_hand: 0,
            len: 0,
        }
    }

    /// Forgets every pair at once (the end of a capture), leaving the table as it was new: no
    /// slot, an empty index, the hands at the start; the memory stays for the next capture.
    /// Removing the pairs one by one read every 500-byte slot and looked each key up in the
    /// index: with 100,000 pairs, 5 % of a worker's time per 10-packet-a-flow capture.
    fn clear(&mut self) {
        self.slots.clear();
        self.weights.clear();
        self.free.clear();
        self.index.clear();
        self.evict_hand = 0;
        self.expire_hand = 0;
        self.len = 0;
    }

    /// Whether every slot holds a live pair (a new one needs an eviction first).
    fn is_full(&self) -> bool {
        self.free.is_empty() && self.slots.len() >= self.capacity
    }

    /// A vacant slot: the last released, else the next never used (pushed now; `new`
    /// reserved the room, so this never reallocates). `None` when the table is full.
    fn take_slot(&mut self) -> Option<usize> {
        if let Some(i) = self.free.pop() {
            return Some(i as usize);
        }
        if self.slots.len() < self.capacity {
            self.slots.push(Pair::default());
            self.weights.push(PairWeight::default());
            return Some(self.slots.len() - 1);
        }
        None
    }

    /// Copies what eviction and expiry weigh of slot `idx` into its weight (after any change
    /// to its liveness, beats or alert state).
    #[inline]
    fn reweigh(&mut self, idx: usize) {
        if let (Some(p), Some(w)) = (self.slots.get(idx), self.weights.get_mut(idx)) {
            *w = PairWeight::of(p);
        }
    }

    /// Doubles the index when `live` pairs would fill more than half of its buckets' room,
    /// up to twice the capacity (the flow table's rule: at half load, removals' tombstones
    /// are cleared by a rehash in place, never by a new allocation).
    fn grow_index_for(&mut self, live: usize) {
        let buckets = self.index.num_buckets();
        // hashbrown fills at most 7/8 of a table of 8 buckets or more.
        let room = if buckets < 8 {
            buckets.saturating_sub(1)
        } else {
            buckets / 8 * 7
        };
        let wanted = live.saturating_mul(INDEX_SLACK);
        if wanted <= room {
            return;
        }
        let target = wanted
            .max(self.index.len().saturating_mul(2 * INDEX_SLACK))
            .min(self.capacity.saturating_mul(INDEX_SLACK));
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .reserve(target.saturating_sub(self.index.len()), |&i| {
                slots.get(i as usize).map_or(0, |p| hasher.hash_one(p.key))
            });
    }

    fn find(&self, key: &PairKey) -> Option<usize> {
        let h = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.index
            .find(h, |&i| slots.get(i as usize).is_some_and(|p| p.key == *key))
            .map(|&i| i as usize)
    }

    fn remove(&mut self, idx: usize) {
        let Some(p) = self.slots.get_mut(idx) else {
            return;
        };
        if !p.live {
            return;
        }
        p.live = false;
        if let Some(w) = self.weights.get_mut(idx) {
            w.live = false;
        }
        let h = self.hasher.hash_one(p.key);
        if let Ok(e) = self.index.find_entry(h, |&i| i as usize == idx) {
            e.remove();
        }
        self.free.push(idx as u32);
        self.len -= 1;
    }

    /// The slot to evict: among [`EVICT_SAMPLE`] slots from the hand, the lowest keep rank,
    /// then the oldest latest beat.
    fn victim(&mut self, threshold: f64) -> usize {
        // The hand turns over the capacity (the table is full when this is called).
        let n = self.capacity;
        let mut best: Option<(u8, Timestamp, usize)> = None;
        for step in 0..EVICT_SAMPLE.min(n) {
            let i = (self.evict_hand + step) % n;
            if let Some(w) = self.weights.get(i).filter(|w| w.live) {
                let cand = (w.keep_rank(threshold), w.last, i);
                if best.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                    best = Some(cand);
                }
            }
        }
        self.evict_hand = (self.evict_hand + EVICT_SAMPLE) % n;
        best.map_or(self.evict_hand, |b| b.2)
    }
}

/// A flow promoted to a packet-beacon track.
#[derive(Clone, Copy, Debug, Default)]
struct Track {
    live: bool,
    generation: u16,
    beats: Beats,
    alert: AlertState,
    /// The DNS question polled (hash; 0: none yet), and whether questions varied.
    question: u32,
    questions_vary: bool,
    /// Bursts made only of keep-alives.
    keepalive: KeepaliveBeats,
}

/// Fixed pool of packet tracks, reserved at construction and filled on demand like the
/// [`PairTable`]'s slab (the same slot order as a full free list).
struct TrackPool {
    slots: Vec<Track>,
    /// Released slots (never a slot not yet pushed).
    free: Vec<u32>,
    /// Hard cap on slots.
    capacity: usize,
    hand: usize,
}

impl TrackPool {
    fn new(capacity: usize) -> TrackPool {
        let capacity = capacity.max(1);
        TrackPool {
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            capacity,
            hand: 0,
        }
    }

    /// A vacant slot: the last released, else the next never used (pushed now, into room
    /// `new` reserved). `None` when every slot holds a live track.
    fn take_slot(&mut self) -> Option<usize> {
        if let Some(i) = self.free.pop() {
            return Some(i as usize);
        }
        if self.slots.len() < self.capacity {
            self.slots.push(Track::default());
            return Some(self.slots.len() - 1);
        }
        None
    }

    /// The live track a flow refers to, if it is still the flow's.
    fn get_mut(&mut self, st: &FlowState) -> Option<&mut Track> {
        let idx = st.track.checked_sub(1)? as usize;
        self.slots
            .get_mut(idx)
            .filter(|t| t.live && t.generation == st.track_gen)
    }
}

/// How a destination was learned, as written in the baseline (`how=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LearnedHow {
    /// A line of the old baseline format (an address alone): when and how are not known.
    #[default]
    Unrecorded,
    /// A TCP connection whose handshake was seen, with data acknowledged both ways.
    TcpHandshake,
    /// A TCP connection picked up after its handshake (an active-timeout restart, a capture
    /// started midstream), with data acknowledged both ways.
    TcpData,
    /// Another protocol (UDP, ...): payload both ways.
    TwoWay,
}

impl LearnedHow {
    /// The name in the baseline file.
    pub fn name(self) -> &'static str {
        match self {
            LearnedHow::Unrecorded => "unrecorded",
            LearnedHow::TcpHandshake => "tcp_handshake",
            LearnedHow::TcpData => "tcp_data",
            LearnedHow::TwoWay => "two_way",
        }
    }

    fn from_name(s: &str) -> Option<LearnedHow> {
        [
            LearnedHow::Unrecorded,
            LearnedHow::TcpHandshake,
            LearnedHow::TcpData,
            LearnedHow::TwoWay,
        ]
        .into_iter()
        .find(|h| h.name() == s)
    }
}

/// One known destination: where it came from and, when recorded, when, how and from whom it
/// was learned (issue 19 item 8: a baseline entry can be audited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnownEntry {
    /// Loaded from the baseline file (not learned in this run).
    pub from_baseline: bool,
    /// Packet time of the exchange that taught it (`None`: not recorded, an old-format line).
    pub learned_at: Option<Timestamp>,
    /// The kind of exchange.
    pub how: LearnedHow,
    /// The internal host of that exchange.
    pub source: Option<IpAddr>,
    /// Destination port and IP protocol of that exchange (`None`: not recorded).
    pub service: Option<(u16, u8)>,
}

/// A lesson: a completed two-way exchange that may teach its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lesson {
    /// Packet time of the exchange.
    pub at: Timestamp,
    /// The kind of exchange.
    pub how: LearnedHow,
    /// The internal host (whose hourly budget it spends).
    pub source: [u8; 16],
    /// Destination port.
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
}

/// What [`KnownDestinations::observe`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Already known; whether from the baseline file.
    Known {
        /// Loaded from the baseline file.
        in_baseline: bool,
    },
    /// Not known before, learned now.
    Learned,
    /// Not known, not learned: no completed two-way exchange (spoofed SYNs, unanswered
    /// probes).
    RefusedOneWay,
    /// Not known, not learned: the source taught its hourly share already.
    RefusedRate,
    /// Not known, not learned: `known_destinations_capacity` reached.
    Full,
}

/// Buckets of the per-source teaching budget (a seeded hash of the source picks one; sources
/// that share a bucket share its budget, which can only refuse more, never learn more).
const SOURCE_BUCKETS: usize = 4096;

/// A source bucket's teaching window: its start and the destinations learned in it.
#[derive(Clone, Copy, Debug, Default)]
struct TeachWindow {
    start: Timestamp,
    learned: u32,
}

/// The window of the per-source budget.
const TEACH_WINDOW: Duration = Duration::from_secs(3600);

/// The set and the budgets, behind one lock.
#[derive(Debug)]
struct KnownSet {
    /// Seeded foldhash, as the flow table's index: with the std default (SipHash) a look-up
    /// in `observe` took 327 instructions, 101 now (callgrind, bench-flood64).
    map: KnownMap,
    windows: Vec<TeachWindow>,
}

type KnownMap = HashMap<[u8; 16], KnownEntry, foldhash::quality::RandomState>;

/// Known untrusted destinations, shared by the workers: loaded from `[beacon] baseline_file`
/// at start, grown by the run (at most `known_destinations_capacity`), saved back by the last
/// worker to finish. Touched once per new pair or track (and per connection of a pair until
/// its destination is settled), never per packet.
///
/// A destination is learned only from a completed two-way exchange ([`Lesson`]), and one
/// source teaches at most `learn_per_source_per_hour` destinations per hour of packet time:
/// spoofed SYNs from a home address, or a compromised host contacting thousands of hosts,
/// cannot make a later C2 "known" (issue 19 item 8). Each entry records when, how and from
/// whom it was learned, and the baseline file keeps it (format in `docs/baseline.md`).
#[derive(Debug)]
pub struct KnownDestinations {
    set: Mutex<KnownSet>,
    capacity: usize,
    path: Option<PathBuf>,
    open_workers: AtomicUsize,
}

impl KnownDestinations {
    /// Loads the baseline file of `config` (none when `baseline_file` is empty). A missing
    /// file is an empty baseline (the first run creates it); an unreadable one or a line that
    /// is not an address (or a recorded field that does not parse) is an error naming the
    /// file and line. Lines of the old format, an address alone, load as entries whose
    /// learning was not recorded.
    pub fn load(config: &BeaconConfig) -> std::io::Result<KnownDestinations> {
        let capacity = if config.enabled {
            config.known_destinations_capacity
        } else {
            0
        };
        // Grown by the entries loaded and learned (hashbrown doubles; the cap is checked on
        // every insert): a short run without a baseline pays for what it learns, not for the
        // capacity's buckets.
        let mut map = KnownMap::default();
        let path = (!config.baseline_file.is_empty()).then(|| PathBuf::from(&config.baseline_file));
        if let Some(path) = &path {
            let text = match crate::fsio::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("beacon baseline {}: {e}", path.display()),
                    ));
                }
            };
            for (n, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or_default().trim();
                if line.is_empty() {
                    continue;
                }
                let (addr, entry) = parse_baseline_line(line).map_err(|what| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "beacon baseline {}: line {}: {} {what}",
                            path.display(),
                            n + 1,
                            crate::fsio::excerpt(line)
                        ),
                    )
                })?;
                if map.len() < capacity {
                    map.insert(ip_to_addr(addr), entry);
                }
            }
        }
        let buckets = if capacity == 0 { 0 } else { SOURCE_BUCKETS };
        Ok(KnownDestinations {
            set: Mutex::new(KnownSet {
                map,
                windows: vec![TeachWindow::default(); buckets],
            }),
            capacity,
            path,
            open_workers: AtomicUsize::new(0),
        })
    }

    /// Notes a contact with `addr`: known already, or learned from `lesson` (a completed
    /// two-way exchange; `None` for anything less) within the source's budget of
    /// `per_source_per_hour` destinations per hour.
    pub fn observe(
        &self,
        addr: [u8; 16],
        lesson: Option<Lesson>,
        per_source_per_hour: u32,
    ) -> Observed {
        let Ok(mut guard) = self.set.lock() else {
            return Observed::Full;
        };
        let set = &mut *guard;
        if let Some(e) = set.map.get(&addr) {
            return Observed::Known {
                in_baseline: e.from_baseline,
            };
        }
        let Some(lesson) = lesson else {
            return Observed::RefusedOneWay;
        };
        if set.map.len() >= self.capacity {
            return Observed::Full;
        }
        // The map's own seeded hasher picks the source's bucket.
        let bucket = set.map.hasher().hash_one(lesson.source) as usize % SOURCE_BUCKETS;
        let Some(w) = set.windows.get_mut(bucket) else {
            return Observed::Full;
        };
        // A fixed window per bucket, restarted by the first lesson an hour or more after its
        // start (or before it: captures replayed out of order).
        if w.learned == 0
            || lesson.at < w.start
            || lesson.at.saturating_since(w.start) >= TEACH_WINDOW
        {
            *w = TeachWindow {
                start: lesson.at,
                learned: 0,
            };
        }
        if w.learned >= per_source_per_hour {
            return Observed::RefusedRate;
        }
        w.learned += 1;
        set.map.insert(
            addr,
            KnownEntry {
                from_baseline: false,
                learned_at: Some(lesson.at),
                how: lesson.how,
                source: Some(addr_to_ip(lesson.source)),
                service: Some((lesson.port, lesson.proto)),
            },
        );
        Observed::Learned
    }

    /// The entry of `addr`, if known.
    pub fn get(&self, addr: IpAddr) -> Option<KnownEntry> {
        self.set
            .lock()
            .ok()
            .and_then(|s| s.map.get(&ip_to_addr(addr)).copied())
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.set.lock().map_or(0, |s| s.map.len())
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The baseline text: a header, then one line per address, sorted (format in
    /// `docs/baseline.md`).
    pub fn to_text(&self) -> Vec<u8> {
        let mut entries: Vec<(IpAddr, KnownEntry)> = match self.set.lock() {
            Ok(s) => s.map.iter().map(|(a, e)| (addr_to_ip(*a), *e)).collect(),
            Err(_) => Vec::new(),
        };
        entries.sort_unstable_by_key(|(a, _)| *a);
        let mut out = Vec::with_capacity(entries.len() * 112 + 256);
        let _ = writeln!(
            out,
            "# mirrorwatch known destinations (untrusted hosts contacted from home)\n\
             # ADDRESS [learned=TIME how=tcp_handshake|tcp_data|two_way source=HOME_HOST service=PORT/PROTO]\n\
             # An address alone is an entry whose learning was not recorded."
        );
        for (addr, e) in entries {
            let _ = write!(out, "{addr}");
            if let Some(at) = e.learned_at {
                let _ = write!(out, " learned={}", crate::alert::Rfc3339(at));
            }
            if e.how != LearnedHow::Unrecorded {
                let _ = write!(out, " how={}", e.how.name());
            }
            if let Some(src) = e.source {
                let _ = write!(out, " source={src}");
            }
            if let Some((port, proto)) = e.service {
                let _ = write!(out, " service={port}/{}", proto_name(proto));
            }
            let _ = writeln!(out);
        }
        out
    }

    /// Writes the baseline file, if there is one.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let out = self.to_text();
        // A temp file with a random name, created O_EXCL beside the baseline, then renamed:
        // a planted link or a pre-created temp path cannot redirect the write, and the mode
        // of an existing baseline is kept (new ones 0640 under the umask).
        crate::fsio::replace_file(path, &out, 0o640).map_err(|e| {
            std::io::Error::new(e.kind(), format!("beacon baseline {}: {e}", path.display()))
        })
    }
}

impl Default for KnownDestinations {
    fn default() -> Self {
        KnownDestinations {
            set: Mutex::new(KnownSet {
                map: KnownMap::default(),
                windows: Vec::new(),
            }),
            capacity: 0,
            path: None,
            open_workers: AtomicUsize::new(0),
        }
    }
}

/// One non-comment baseline line: `ADDRESS` then optional `key=value` fields. Unknown keys
/// are skipped (a newer sensor may record more); a known key with a bad value is an error.
fn parse_baseline_line(line: &str) -> Result<(IpAddr, KnownEntry), &'static str> {
    let mut fields = line.split_whitespace();
    let addr: IpAddr = fields
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or("is not an IP address")?;
    let mut e = KnownEntry {
        from_baseline: true,
        ..KnownEntry::default()
    };
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            return Err("has a field that is not key=value");
        };
        match key {
            "learned" => {
                e.learned_at = Some(Rfc3339::parse(value).ok_or("has a bad learned= time")?);
            }
            "how" => e.how = LearnedHow::from_name(value).ok_or("has an unknown how=")?,
            "source" => e.source = Some(value.parse().map_err(|_| "has a bad source=")?),
            "service" => {
                let (port, proto) = value.split_once('/').ok_or("has a bad service=")?;
                let port = port.parse().map_err(|_| "has a bad service= port")?;
                let proto = proto_number(proto).ok_or("has a bad service= protocol")?;
                e.service = Some((port, proto));
            }
            _ => {}
        }
    }
    Ok((addr, e))
}

/// The name of an IP protocol in `service=`: `tcp`, `udp`, `sctp`, else the number.
fn proto_name(proto: u8) -> std::borrow::Cow<'static, str> {
    match proto {
        6 => "tcp".into(),
        17 => "udp".into(),
        132 => "sctp".into(),
        n => n.to_string().into(),
    }
}

fn proto_number(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(6),
        "udp" => Some(17),
        "sctp" => Some(132),
        n => n.parse().ok(),
    }
}

/// The settings a worker uses, derived once from the configuration.
struct Settings {
    enabled: bool,
    home: Vec<IpNet>,
    trusted: Vec<IpNet>,
    allowlist: Vec<String>,
    min_beats: u64,
    min_span: Duration,
    threshold: f64,
    params: ScoreParams,
    burst_gap: Duration,
    pair_idle: Duration,
    update_interval: Duration,
    warmup: Duration,
    new_destination_alerts: bool,
    alert_keepalives: bool,
    dns_resolvers: Vec<IpNet>,
    learn_per_source_per_hour: u32,
    shared: SharedState,
}

/// What kind of beat a pattern is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Connections,
    Packets,
}

/// The beacon detector of one worker.
pub struct BeaconDetector {
    settings: Settings,
    pairs: PairTable,
    tracks: TrackPool,
    stats: BeaconStats,
    /// First packet this worker saw (warm-up reference).
    start: Timestamp,
    /// Whether this detector still has to check out of the shared baseline.
    attached: bool,
}

impl BeaconDetector {
    /// A detector for one of `workers` workers, from `[beacon]` and `[networks] home`.
    pub fn new(
        c: &BeaconConfig,
        home: &[IpNet],
        shared: &SharedState,
        workers: usize,
    ) -> BeaconDetector {
        let workers = workers.max(1);
        // A disabled detector keeps one slot of each, not the configured capacities.
        let (pairs, tracks) = if c.enabled {
            (
                c.pair_capacity.div_ceil(workers),
                c.packet_tracks.div_ceil(workers),
            )
        } else {
            (1, 1)
        };
        shared
            .destinations
            .open_workers
            .fetch_add(1, Ordering::AcqRel);
        // The name cache is shared, filled by the capture thread and read here; its one
        // setting is this section's, applied by every worker alike (idempotent).
        shared.names.set_resolvers(&c.name_resolvers);
        BeaconDetector {
            settings: Settings::from_config(c, home, c.enabled, shared.clone()),
            pairs: PairTable::new(pairs),
            tracks: TrackPool::new(tracks),
            stats: BeaconStats::default(),
            start: Timestamp::ZERO,
            attached: true,
        }
    }

    /// Applies a reloaded configuration in place: `[networks] home`, trusted destinations,
    /// allowlisted domains, beats, threshold, timing parameters, windows, warm-up (still
    /// counted from this worker's first packet) and `new_destination_alerts`. `enabled`,
    /// `pair_capacity`, `packet_tracks`, `known_destinations_capacity` and `baseline_file`
    /// keep their start values: the tables and the shared baseline were made then (the
    /// pipeline passes a configuration where they are unchanged, see `Config::reloaded`).
    /// A flow already in the table keeps the outbound/untrusted verdict of its first packet;
    /// pairs and tracks are scored by the new values at their next beat.
    pub fn reload(&mut self, c: &BeaconConfig, home: &[IpNet]) {
        // `enabled` sized the tables at start: it stays; everything else is rebuilt.
        let (enabled, shared) = (self.settings.enabled, self.settings.shared.clone());
        shared.names.set_resolvers(&c.name_resolvers);
        self.settings = Settings::from_config(c, home, enabled, shared);
    }

    /// The capture being read started at `epoch` (the same for every worker): the warm-up of
    /// `first_seen` counts from there.
    pub fn observe_epoch(&mut self, epoch: Timestamp) {
        if epoch != Timestamp::ZERO {
            self.start = epoch;
        }
    }

    /// End of one capture of several: every flow has ended; pairs and tracks are
    /// forgotten, as if the next capture were replayed alone (the known destinations stay:
    /// they are the baseline's).
    pub fn end_capture(&mut self) {
        self.pairs.clear();
        for i in 0..self.tracks.slots.len() {
            let generation = self.tracks.slots.get(i).map_or(0, |t| t.generation);
            self.release_track(i, generation);
        }
        self.start = Timestamp::ZERO;
    }

    /// Pairs this detector can track at once, and the bytes its pair table holds when full:
    /// slots and free list (reserved at construction, touched as pairs come) and the hash
    /// index at its largest (it grows with the live pairs up to that).
    pub fn pair_memory(&self) -> (usize, usize) {
        let p = &self.pairs;
        let index_buckets = (p.capacity * INDEX_SLACK * 8)
            .div_ceil(7)
            .next_power_of_two()
            .max(p.index.num_buckets());
        // One control byte and one `u32` per bucket, plus hashbrown's group of trailing
        // control bytes.
        let index_bytes = index_buckets * (1 + std::mem::size_of::<u32>()) + 16;
        let bytes = p.slots.capacity() * std::mem::size_of::<Pair>()
            + p.weights.capacity() * std::mem::size_of::<PairWeight>()
            + p.free.capacity() * std::mem::size_of::<u32>()
            + index_bytes;
        (p.capacity, bytes)
    }

    /// Pairs in the table now, and the bytes of its slots in use and of its index as
    /// allocated now (what a short capture costs).
    pub fn pair_memory_in_use(&self) -> (usize, usize) {
        let p = &self.pairs;
        let bytes = p.slots.len() * std::mem::size_of::<Pair>()
            + p.weights.len() * std::mem::size_of::<PairWeight>()
            + p.free.len() * std::mem::size_of::<u32>()
            + p.index.allocation_size();
        (p.len, bytes)
    }

    /// Packet tracks this detector can hold at once, and the bytes of its pool when full.
    pub fn track_memory(&self) -> (usize, usize) {
        let t = &self.tracks;
        let bytes = t.slots.capacity() * std::mem::size_of::<Track>()
            + t.free.capacity() * std::mem::size_of::<u32>();
        (t.capacity, bytes)
    }

    /// One packet.
    pub fn on_packet(
        &mut self,
        flow: &mut Flow,
        new: bool,
        p: &PacketMeta,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        if !self.settings.enabled {
            return Ok(());
        }
        if self.start == Timestamp::ZERO {
            self.start = p.ts;
        }
        if new {
            flow.ext.beacon = FlowState::default();
            if self.settings.outbound_untrusted(flow) {
                flow.ext.beacon.flags |= OUTBOUND;
            }
        }
        if flow.ext.beacon.flags & OUTBOUND == 0 {
            return Ok(());
        }
        if p.payload_len > 0 {
            if p.dir == flow.first_dir {
                self.on_data(flow, p, sink)?;
            } else {
                flow.ext.beacon.flags |= PEER_DATA;
            }
        }
        if flow.key.proto == IpProto::TCP && flow.ext.beacon.flags & RECORDED == 0 {
            const FIN: u8 = 0x01;
            const RST: u8 = 0x04;
            let [a, b] = flow.counters.tcp_flags;
            if a & b & FIN != 0 || (a | b) & RST != 0 {
                flow.ext.beacon.flags |= RECORDED;
                self.record_connection(flow, p.ts, sink)?;
            }
        }
        Ok(())
    }

    /// A flow record ends.
    pub fn on_flow_end(
        &mut self,
        flow: &Flow,
        end: FlowEnd,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        let st = flow.ext.beacon;
        if !self.settings.enabled || st.flags & OUTBOUND == 0 {
            return Ok(());
        }
        // After an active-timeout report the connection goes on: it is recorded once, when it
        // closes or its last record ends (with the counters of its last active period).
        if end == FlowEnd::Active {
            return Ok(());
        }
        let now = flow.counters.last_seen;
        if st.flags & RECORDED == 0 {
            self.record_connection(flow, now, sink)?;
        }
        // The last burst is complete now; then the track goes back to the pool.
        if st.cur_start != Timestamp::ZERO {
            if let Some(idx) = st.track.checked_sub(1) {
                let (key, src_port) = PairKey::of_flow(flow);
                let exchange = exchange_of(flow);
                let Self {
                    settings,
                    tracks,
                    stats,
                    start,
                    ..
                } = self;
                if let Some(t) = tracks.get_mut(&st) {
                    settings.note_destination(&key, exchange, now, *start, stats, &mut t.alert);
                    t.beats.push(st.cur_start, st.cur_bytes);
                    t.keepalive.note(keepalive_code(st.flags));
                    stats.packet_beats += 1;
                    let keepalive = settings.track_keepalive(t, &key);
                    settings.evaluate(
                        sink,
                        stats,
                        Kind::Packets,
                        &key,
                        Some(src_port),
                        &t.beats,
                        &mut t.alert,
                        now,
                        keepalive,
                    )?;
                }
                self.release_track(idx as usize, st.track_gen);
            }
        }
        Ok(())
    }

    /// The clock moved: pairs idle for `pair_idle_timeout_s` are forgotten (a bounded scan
    /// per tick).
    pub fn on_tick(
        &mut self,
        now: Timestamp,
        _sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        if !self.settings.enabled || self.pairs.len == 0 {
            return Ok(());
        }
        // The hand turns over the capacity, as when every slot existed from the start (a
        // slot not pushed yet holds no pair): a table filled on demand expires pairs on the
        // same ticks as one filled at construction.
        let n = self.pairs.capacity;
        for _ in 0..EXPIRE_SCAN.min(n) {
            let i = self.pairs.expire_hand % n;
            self.pairs.expire_hand = (i + 1) % n;
            let idle =
                self.pairs.weights.get(i).is_some_and(|w| {
                    w.live && now.saturating_since(w.last) > self.settings.pair_idle
                });
            if idle {
                self.pairs.remove(i);
                self.stats.pairs_expired += 1;
            }
        }
        self.stats.pairs_tracked = self.pairs.len as u64;
        Ok(())
    }

    /// End of input: the last worker to finish saves the baseline of known destinations.
    pub fn finish(
        &mut self,
        _now: Timestamp,
        _sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        self.stats.pairs_tracked = self.pairs.len as u64;
        if !self.attached {
            return Ok(());
        }
        self.attached = false;
        let known = &self.settings.shared.destinations;
        if known.open_workers.fetch_sub(1, Ordering::AcqRel) == 1 {
            known.save().map_err(|source| AlertWriteError::Io {
                target: known
                    .path
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string()),
                source,
            })?;
        }
        Ok(())
    }

    /// Alerts written so far (without copying every counter).
    pub fn alerts(&self) -> u64 {
        self.stats.alerts
    }

    /// Counters so far.
    pub fn stats(&self) -> BeaconStats {
        let mut s = self.stats.clone();
        s.pairs_tracked = self.pairs.len as u64;
        s
    }

    /// A data packet from the source of an outbound flow: burst accounting and the
    /// packet-beacon candidate test.
    fn on_data(
        &mut self,
        flow: &mut Flow,
        p: &PacketMeta,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        let st = &mut flow.ext.beacon;
        if p.keepalive == Keepalive::None {
            st.flags |= FLOW_NOT_KEEPALIVE;
        }
        if let AppHint::Dns {
            response: false,
            question,
            ..
        } = p.app
        {
            if let Some(t) = self.tracks.get_mut(st) {
                if t.question == 0 {
                    t.question = question | 1;
                } else if t.question != question | 1 {
                    t.questions_vary = true;
                }
            }
        }
        let st = &mut flow.ext.beacon;
        let set_code = |flags: &mut u8, code: u8| *flags = (*flags & !KA_MASK) | (code << KA_SHIFT);
        if st.cur_start == Timestamp::ZERO {
            st.cur_start = p.ts;
            st.cur_bytes = p.payload_len;
            st.last_data = p.ts;
            set_code(&mut st.flags, merge_keepalive(0, p.keepalive));
            return Ok(());
        }
        if p.ts.saturating_since(st.last_data) < self.settings.burst_gap {
            st.cur_bytes = st.cur_bytes.saturating_add(p.payload_len);
            st.last_data = p.ts;
            let code = merge_keepalive(keepalive_code(st.flags), p.keepalive);
            set_code(&mut st.flags, code);
            return Ok(());
        }
        // A new burst: the current one is complete.
        self.complete_burst(flow, p.ts, sink)?;
        let st = &mut flow.ext.beacon;
        set_code(&mut st.flags, merge_keepalive(0, p.keepalive));
        st.gap_ms = millis(p.ts.saturating_since(st.cur_start));
        st.cur_start = p.ts;
        st.cur_bytes = p.payload_len;
        st.last_data = p.ts;
        Ok(())
    }

    /// The burst in `flow.ext.beacon.cur_*` is complete (a new one starts at `now`).
    fn complete_burst(
        &mut self,
        flow: &mut Flow,
        now: Timestamp,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        let st = flow.ext.beacon;
        let (key, src_port) = PairKey::of_flow(flow);
        if st.track != 0 {
            let exchange = exchange_of(flow);
            let Self {
                settings,
                tracks,
                stats,
                start,
                ..
            } = self;
            if let Some(t) = tracks.get_mut(&st) {
                // A track promoted before the destination answered learns it once it has.
                settings.note_destination(&key, exchange, now, *start, stats, &mut t.alert);
                t.beats.push(st.cur_start, st.cur_bytes);
                t.keepalive.note(keepalive_code(st.flags));
                stats.packet_beats += 1;
                let keepalive = settings.track_keepalive(t, &key);
                return settings.evaluate(
                    sink,
                    stats,
                    Kind::Packets,
                    &key,
                    Some(src_port),
                    &t.beats,
                    &mut t.alert,
                    now,
                    keepalive,
                );
            }
            // Evicted meanwhile: the flow starts over as a candidate.
            let st = &mut flow.ext.beacon;
            st.track = 0;
            st.streak = 0;
        }
        let st = &mut flow.ext.beacon;
        let agrees = st.prev_bytes != 0
            && st.gap_ms != 0
            && st.prev_gap_ms != 0
            && sizes_similar(st.cur_bytes, st.prev_bytes)
            && gaps_similar(st.gap_ms, st.prev_gap_ms, self.settings.params.jitter);
        st.streak = if agrees {
            st.streak.saturating_add(1)
        } else {
            0
        };
        let promote = st.streak >= PROMOTE_AFTER;
        let seed = (st.cur_start, st.cur_bytes);
        st.prev_gap_ms = st.gap_ms;
        st.prev_bytes = st.cur_bytes;
        if promote {
            self.promote(flow, key, seed, now);
        }
        Ok(())
    }

    /// Gives a candidate flow a packet track whose first beat is `seed`, the burst that
    /// promoted it. The bursts before it are not recorded: they were chosen for agreeing
    /// with it, and several mutually chosen samples make any flow look regular (measured on
    /// the `beacon-heartbeat` random session); one chosen sample alone is not biased against
    /// the bursts that follow.
    fn promote(&mut self, flow: &mut Flow, key: PairKey, seed: (Timestamp, u32), now: Timestamp) {
        let idx = match self.tracks.take_slot() {
            Some(i) => i,
            None => {
                let idx = self.track_victim();
                self.stats.tracks_evicted += 1;
                let generation = self.tracks.slots.get(idx).map_or(0, |t| t.generation);
                self.release_track(idx, generation);
                self.tracks.free.pop().map_or(idx, |i| i as usize)
            }
        };
        let exchange = exchange_of(flow);
        let Self {
            settings,
            tracks,
            stats,
            start,
            ..
        } = self;
        let Some(t) = tracks.slots.get_mut(idx) else {
            return;
        };
        let generation = t.generation.wrapping_add(1);
        *t = Track {
            live: true,
            generation,
            beats: Beats::default(),
            alert: AlertState::default(),
            question: 0,
            questions_vary: false,
            keepalive: KeepaliveBeats::default(),
        };
        settings.note_destination(&key, exchange, now, *start, stats, &mut t.alert);
        t.beats.push(seed.0, seed.1);
        t.keepalive.note(keepalive_code(flow.ext.beacon.flags));
        self.stats.packet_beats += 1;
        self.stats.tracks_promoted += 1;
        self.stats.tracks_active += 1;
        let st = &mut flow.ext.beacon;
        st.track = idx as u32 + 1;
        st.track_gen = generation;
    }

    /// The track to evict when the pool is full.
    fn track_victim(&mut self) -> usize {
        // The hand turns over the capacity (the pool is full when this is called).
        let n = self.tracks.capacity;
        let mut best: Option<(u8, Timestamp, usize)> = None;
        for step in 0..EVICT_SAMPLE.min(n) {
            let i = (self.tracks.hand + step) % n;
            if let Some(t) = self.tracks.slots.get(i).filter(|t| t.live) {
                let cand = (t.alert.keep_rank(self.settings.threshold), t.beats.last, i);
                if best.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                    best = Some(cand);
                }
            }
        }
        self.tracks.hand = (self.tracks.hand + EVICT_SAMPLE) % n;
        best.map_or(self.tracks.hand, |b| b.2)
    }

    fn release_track(&mut self, idx: usize, generation: u16) {
        if let Some(t) = self.tracks.slots.get_mut(idx) {
            if t.live && t.generation == generation {
                t.live = false;
                self.tracks.free.push(idx as u32);
                self.stats.tracks_active = self.stats.tracks_active.saturating_sub(1);
            }
        }
    }

    /// Records the connection beat of `flow` in its pair and scores the pair.
    fn record_connection(
        &mut self,
        flow: &Flow,
        now: Timestamp,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        let (key, _) = PairKey::of_flow(flow);
        let size = u32::try_from(flow.counters.bytes[flow.first_dir.index()]).unwrap_or(u32::MAX);
        let start = flow.counters.first_seen;
        let idx = match self.pairs.find(&key) {
            Some(i) => i,
            None => self.insert_pair(key),
        };
        let Self {
            settings,
            pairs,
            stats,
            start: epoch,
            ..
        } = self;
        let Some(pair) = pairs.slots.get_mut(idx) else {
            return Ok(());
        };
        // The destination is learned from this connection only if it was a completed two-way
        // exchange; a pair made of one-way connections (spoofed SYNs) never teaches it.
        let learned_new =
            settings.note_destination(&key, exchange_of(flow), now, *epoch, stats, &mut pair.alert);
        if learned_new
            && settings.new_destination_alerts
            && settings.write_new_destination(sink, &key, now)?
        {
            stats.alerts += 1;
            stats.new_destination_alerts += 1;
        }
        pair.beats.push(start, size);
        stats.connection_beats += 1;
        let flags = flow.ext.beacon.flags;
        if flags & FLOW_NOT_KEEPALIVE == 0 {
            pair.keepalive.note(keepalive_code(flags));
        }
        // DNS polling needs the question of every beat, which a pair does not keep: a pair
        // of DNS connections is not taken for polling.
        let keepalive = match pair.keepalive.kind(pair.beats.count) {
            Keepalive::DnsQuery => Keepalive::None,
            k => k,
        };
        let key = pair.key;
        let result = settings.evaluate(
            sink,
            stats,
            Kind::Connections,
            &key,
            None,
            &pair.beats,
            &mut pair.alert,
            now,
            keepalive,
        );
        pairs.reweigh(idx);
        result
    }

    /// A new pair, evicting one when the table is full.
    fn insert_pair(&mut self, key: PairKey) -> usize {
        if self.pairs.is_full() {
            let victim = self.pairs.victim(self.settings.threshold);
            let irregular = self
                .pairs
                .weights
                .get(victim)
                .is_some_and(|w| w.keep_rank(self.settings.threshold) == 0);
            self.pairs.remove(victim);
            self.stats.pairs_evicted += 1;
            if irregular {
                self.stats.pairs_evicted_irregular += 1;
            }
        }
        let idx = self.pairs.take_slot().unwrap_or(0);
        self.pairs.grow_index_for(self.pairs.len + 1);
        // Field by field, and the weight from the same values rather than read back: the
        // weight read just after a whole-slot copy stalled on store forwarding.
        if let Some(slot) = self.pairs.slots.get_mut(idx) {
            slot.key = key;
            slot.live = true;
            slot.beats = Beats::default();
            slot.alert = AlertState::default();
            slot.keepalive = KeepaliveBeats::default();
        }
        if let Some(w) = self.pairs.weights.get_mut(idx) {
            *w = PairWeight {
                live: true,
                ..PairWeight::default()
            };
        }
        let h = self.pairs.hasher.hash_one(key);
        let (slots, hasher) = (&self.pairs.slots, &self.pairs.hasher);
        self.pairs.index.insert_unique(h, idx as u32, |&i| {
            slots.get(i as usize).map_or(0, |p| hasher.hash_one(p.key))
        });
        self.pairs.len += 1;
        self.stats.pairs_created += 1;
        idx
    }
}

impl Settings {
    /// The settings `config` gives (`enabled` is passed: it is fixed at start).
    fn from_config(
        c: &BeaconConfig,
        home: &[IpNet],
        enabled: bool,
        shared: SharedState,
    ) -> Settings {
        Settings {
            enabled,
            home: home.to_vec(),
            trusted: c.trusted_destinations.clone(),
            allowlist: c.allowlist_domains.clone(),
            min_beats: u64::from(c.min_beats),
            min_span: Duration::from_secs(c.min_span_s),
            threshold: c.score_threshold,
            params: ScoreParams {
                min_interval_ns: Duration::from_millis(c.min_interval_ms).as_nanos(),
                jitter: c.jitter,
                max_missed: c.max_missed_beats,
            },
            burst_gap: Duration::from_millis(c.burst_gap_ms),
            pair_idle: Duration::from_secs(c.pair_idle_timeout_s),
            update_interval: Duration::from_secs(c.update_interval_s),
            warmup: Duration::from_secs(c.warmup_s),
            new_destination_alerts: c.new_destination_alerts,
            alert_keepalives: c.alert_keepalives,
            dns_resolvers: c.dns_resolvers.clone(),
            learn_per_source_per_hour: c.learn_per_source_per_hour,
            shared,
        }
    }

    /// The keep-alive a packet track is made of, if every data packet of its source had one
    /// recognised shape (DNS: the same question every time, to a configured resolver).
    fn track_keepalive(&self, t: &Track, key: &PairKey) -> Keepalive {
        match t.keepalive.kind(t.beats.count) {
            Keepalive::DnsQuery => {
                let dst = addr_to_ip(key.dst);
                let resolver = self.dns_resolvers.is_empty()
                    || self.dns_resolvers.iter().any(|n| n.contains(&dst));
                if t.question != 0 && !t.questions_vary && resolver {
                    Keepalive::DnsQuery
                } else {
                    Keepalive::None
                }
            }
            k => k,
        }
    }

    /// Whether a new flow goes from inside `home` to an untrusted destination.
    fn outbound_untrusted(&self, flow: &Flow) -> bool {
        let (src, _, dst, _) = flow.key.endpoints(flow.first_dir);
        let inside = |ip: IpAddr, nets: &[IpNet]| nets.iter().any(|n| n.contains(&ip));
        inside(src, &self.home)
            && routable_unicast(dst)
            && !inside(dst, &self.home)
            && !inside(dst, &self.trusted)
    }

    /// Asks the shared known set about the destination of `key` (unless already settled for
    /// this pair or track), teaching it when `exchange` says the flow was a completed two-way
    /// exchange; updates the destination facts in `a`. True when the destination was learned
    /// now, first seen after the warm-up (a `beacon.new_destination` moment).
    #[allow(clippy::too_many_arguments)] // One question, with the pieces it needs.
    fn note_destination(
        &self,
        key: &PairKey,
        exchange: Option<LearnedHow>,
        now: Timestamp,
        start: Timestamp,
        stats: &mut BeaconStats,
        a: &mut AlertState,
    ) -> bool {
        // A pair already asked learns nothing new from another one-way connection: the lock
        // is taken again only for an exchange that could teach.
        if a.dest_settled || (a.dest_asked && exchange.is_none()) {
            return false;
        }
        let first_ask = !a.dest_asked;
        a.dest_asked = true;
        let after_warmup = now.saturating_since(start) >= self.warmup;
        let lesson = exchange.map(|how| Lesson {
            at: now,
            how,
            source: key.src,
            port: key.dst_port,
            proto: key.proto,
        });
        match self
            .shared
            .destinations
            .observe(key.dst, lesson, self.learn_per_source_per_hour)
        {
            Observed::Known { in_baseline } => {
                a.dest_settled = true;
                a.dest_first_seen = false;
                a.dest_in_baseline = in_baseline;
                false
            }
            Observed::Learned => {
                a.dest_settled = true;
                a.dest_first_seen = after_warmup;
                a.dest_in_baseline = false;
                if after_warmup {
                    stats.new_destinations += 1;
                }
                after_warmup
            }
            // Not known, and not learned: still never seen before as far as the evidence
            // goes, so `first_seen` says so; the next exchange may teach it.
            Observed::RefusedOneWay => {
                if first_ask {
                    stats.destinations_refused_one_way += 1;
                }
                a.dest_first_seen = after_warmup;
                false
            }
            Observed::RefusedRate => {
                stats.destinations_refused_rate += 1;
                a.dest_first_seen = after_warmup;
                false
            }
            Observed::Full => {
                a.dest_settled = true;
                stats.destinations_not_remembered += 1;
                false
            }
        }
    }

    /// Scores a pattern after a new beat and writes its alert or update when due.
    #[allow(clippy::too_many_arguments)] // The pieces of one alert, borrowed from two tables.
    fn evaluate(
        &self,
        sink: &mut EventSink,
        stats: &mut BeaconStats,
        kind: Kind,
        key: &PairKey,
        src_port: Option<u16>,
        beats: &Beats,
        a: &mut AlertState,
        now: Timestamp,
        keepalive: Keepalive,
    ) -> Result<(), AlertWriteError> {
        if beats.count < self.min_beats
            || usize::from(beats.len) < self.min_beats as usize
            || beats.last.saturating_since(beats.first) < self.min_span
        {
            return Ok(());
        }
        let Some(score) = beats.score(&self.params) else {
            return Ok(());
        };
        a.scored = true;
        a.last_score = score.score as f32;
        if score.score < self.threshold
            || a.suppressed
            || score.intervals + 1 < self.min_beats as usize
        {
            return Ok(());
        }
        if keepalive != Keepalive::None && !self.alert_keepalives {
            // A keep-alive of a known protocol: counted, not alerted.
            if !a.keepalive_counted {
                a.keepalive_counted = true;
                if let Some(n) = stats.keepalives.get_mut(keepalive as usize) {
                    *n += 1;
                }
            }
            return Ok(());
        }
        let sev = severity(score.score);
        let update = a.alerted_count > 0;
        if update {
            let material = beats.count >= 2 * a.alerted_count || sev < a.severity;
            if !material || now.saturating_since(a.last_alert) < self.update_interval {
                return Ok(());
            }
        }
        let dst = addr_to_ip(key.dst);
        // The name valid when the beats happened, never one learned later (issue 19).
        let cached = self.shared.names.lookup(dst, beats.last);
        let name = cached.as_ref().and_then(|n| n.as_str());
        if let Some(n) = name {
            if self.allowlist.iter().any(|s| matches_suffix(n, s)) {
                a.suppressed = true;
                stats.allowlisted += 1;
                return Ok(());
            }
        }
        let (signature_id, signature) = match kind {
            Kind::Connections => SIG_CONNECTIONS,
            Kind::Packets => SIG_PACKETS,
        };
        sink.write(&AlertEvent {
            header: EventHeader {
                src_ip: Some(addr_to_ip(key.src)),
                src_port,
                dest_ip: Some(dst),
                dest_port: Some(key.dst_port),
                proto: Some(ProtoName(IpProto(key.proto))),
                ..EventHeader::new(beats.last, "alert")
            },
            detector: "beacon",
            alert: AlertInfo {
                signature_id,
                signature,
                category: "Periodic traffic to an untrusted destination",
                severity: sev,
            },
            mitre: Mitre::T1020_001,
            tunnel: None,
            evidence: BeaconEvidence {
                beacon: Some(BeaconDetail {
                    kind: match kind {
                        Kind::Connections => "connections",
                        Kind::Packets => "packets",
                    },
                    interval_s: Rounded(score.interval_s),
                    interval_mad_s: Rounded(score.interval_mad_s),
                    size_bytes: Rounded(score.size_bytes),
                    size_mad_bytes: Rounded(score.size_mad_bytes),
                    count: beats.count,
                    timing_score: Rounded(score.timing),
                    size_score: Rounded(score.size),
                    score: Rounded(score.score),
                    first_seen: Rfc3339(beats.first),
                    last_seen: Rfc3339(beats.last),
                    update,
                    // A packet beacon's bursts are in no other event: the report draws its
                    // timeline from these. A connection beacon's beats are its flow records.
                    beats: (kind == Kind::Packets).then(|| beats.list()),
                }),
                destination: DestinationInfo {
                    name,
                    first_seen: a.dest_first_seen,
                    in_baseline: a.dest_in_baseline,
                },
                rule: match kind {
                    Kind::Connections => {
                        "at least min_beats connections over at least min_span_s of one internal source to one untrusted destination and port, regular in start time and in bytes sent (score at least score_threshold)"
                    }
                    Kind::Packets => {
                        "at least min_beats bursts of data over at least min_span_s inside one flow to an untrusted destination, regular in time and in size (score at least score_threshold)"
                    }
                },
                thresholds: Some(BeaconThresholds {
                    min_beats: self.min_beats,
                    min_span_s: self.min_span.as_nanos() / 1_000_000_000,
                    score_threshold: Rounded(self.threshold),
                }),
                not_benign: if keepalive == Keepalive::None {
                    "not a keep-alive of a known protocol (STUN, SIP, WireGuard, NAT-T, OpenVPN, DNS polling of one question, TCP keep-alive: recognised by content); the destination is outside home, trusted_destinations and allowlist_domains"
                } else {
                    "a keep-alive of a known protocol, alerted because [beacon] alert_keepalives is set"
                },
                keepalive: (keepalive != Keepalive::None).then(|| keepalive.name()),
            },
        })?;
        a.alerted_count = beats.count;
        a.last_alert = now;
        a.severity = sev;
        stats.alerts += 1;
        if update {
            stats.updates += 1;
        }
        Ok(())
    }

    /// Writes a `beacon.new_destination` alert unless the name is allowlisted; whether it did.
    fn write_new_destination(
        &self,
        sink: &mut EventSink,
        key: &PairKey,
        now: Timestamp,
    ) -> Result<bool, AlertWriteError> {
        let dst = addr_to_ip(key.dst);
        let cached = self.shared.names.lookup(dst, now);
        let name = cached.as_ref().and_then(|n| n.as_str());
        if name.is_some_and(|n| self.allowlist.iter().any(|s| matches_suffix(n, s))) {
            return Ok(false);
        }
        let (signature_id, signature) = SIG_NEW_DESTINATION;
        sink.write(&AlertEvent {
            header: EventHeader {
                src_ip: Some(addr_to_ip(key.src)),
                dest_ip: Some(dst),
                dest_port: Some(key.dst_port),
                proto: Some(ProtoName(IpProto(key.proto))),
                ..EventHeader::new(now, "alert")
            },
            detector: "beacon",
            alert: AlertInfo {
                signature_id,
                signature,
                category: "Periodic traffic to an untrusted destination",
                severity: 3,
            },
            mitre: Mitre::T1020_001,
            tunnel: None,
            evidence: BeaconEvidence {
                beacon: None,
                destination: DestinationInfo {
                    name,
                    first_seen: true,
                    in_baseline: false,
                },
                rule: "first contact with an untrusted destination never seen before (new_destination_alerts)",
                thresholds: None,
                not_benign: "the destination is outside home and trusted_destinations, not in the baseline, not allowlisted by name, and was first seen after the warm-up",
                keepalive: None,
            },
        })?;
        Ok(true)
    }
}

/// Whether `flow` (outbound, its source the side that spoke first) was a completed two-way
/// exchange that may teach its destination, and of which kind: payload both ways and, for
/// TCP, each side acknowledging the other. A spoofed SYN (answered by a SYN-ACK and the real
/// host's RST, or by nothing) carries no payload back and no ACK from the source, so it
/// teaches nothing.
fn exchange_of(flow: &Flow) -> Option<LearnedHow> {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    let st = &flow.ext.beacon;
    if st.cur_start == Timestamp::ZERO || st.flags & PEER_DATA == 0 {
        return None;
    }
    if flow.key.proto != IpProto::TCP {
        return Some(LearnedHow::TwoWay);
    }
    let src = flow.counters.tcp_flags[flow.first_dir.index()];
    let dst = flow.counters.tcp_flags[flow.first_dir.reverse().index()];
    if src & ACK == 0 || dst & ACK == 0 {
        return None;
    }
    Some(if src & SYN != 0 && dst & SYN != 0 {
        LearnedHow::TcpHandshake
    } else {
        LearnedHow::TcpData
    })
}

/// Whether traffic to `ip` can leave the local network toward one host: not multicast,
/// broadcast, link-local, loopback or unspecified (SSDP, mDNS, LLMNR, IGMP and DHCP
/// announcements are periodic by design and go to no untrusted host).
fn routable_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_link_local()
                || v4.is_loopback()
                || v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            !(v6.is_multicast()
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unicast_link_local())
        }
    }
}

/// Equal sizes, give or take an eighth (at least 8 bytes): a heartbeat's framing may vary a
/// little (a counter, a timestamp field).
fn sizes_similar(a: u32, b: u32) -> bool {
    let tolerance = (a.max(b) / 8).max(8);
    a.abs_diff(b) <= tolerance
}

/// Gaps within the jitter of each other: `max / min <= (1 + j) / (1 - j)`.
fn gaps_similar(a: u32, b: u32, jitter: f64) -> bool {
    let (lo, hi) = (f64::from(a.min(b)), f64::from(a.max(b)));
    lo > 0.0 && hi / lo <= (1.0 + jitter) / (1.0 - jitter).max(0.01)
}

/// A duration in whole milliseconds (saturating).
fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_nanos() / 1_000_000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const P: ScoreParams = ScoreParams {
        min_interval_ns: 500_000_000,
        jitter: 0.25,
        max_missed: 3,
    };

    /// `n` beats every `interval_s` with uniform jitter of ±`jitter` per interval, skipping
    /// beats whose index is in `missed`.
    fn beats(
        n: usize,
        interval_s: f64,
        jitter: f64,
        missed: &[usize],
        seed: u64,
    ) -> Vec<Timestamp> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut t = 1_000.0;
        let mut out = Vec::new();
        for i in 0..n {
            let j = if jitter > 0.0 {
                rng.random_range(-jitter..=jitter)
            } else {
                0.0
            };
            t += interval_s * (1.0 + j);
            if !missed.contains(&i) {
                out.push(Timestamp((t * 1e9) as u64));
            }
        }
        out
    }

    #[test]
    fn perfect_beacon_scores_one() {
        let t = beats(10, 60.0, 0.0, &[], 1);
        let s = score_beats(&t, &[300; 10], &P).unwrap();
        assert_eq!(s.score, 1.0);
        assert!((s.interval_s - 60.0).abs() < 1e-6);
        assert_eq!(s.size_bytes, 300.0);
        assert_eq!(severity(s.score), 1);
    }

    #[test]
    fn jittered_beacons_pass_the_default_threshold() {
        for seed in 0..50 {
            for (jitter, interval) in [(0.0, 1.0), (0.1, 1.0), (0.1, 60.0), (0.2, 3600.0)] {
                let t = beats(RING, interval, jitter, &[], seed);
                let s = score_beats(&t, &[512; RING], &P).unwrap();
                assert!(s.score >= 0.85, "seed {seed} jitter {jitter}: {s:?}");
            }
            // Eight beats, the default minimum, with 10 % jitter.
            let t = beats(8, 10.0, 0.1, &[], seed);
            let s = score_beats(&t, &[512; 8], &P).unwrap();
            assert!(s.score >= 0.85, "seed {seed} eight beats: {s:?}");
        }
    }

    #[test]
    fn missed_beats_are_folded() {
        let t = beats(24, 30.0, 0.0, &[3, 7, 8, 12, 13, 14, 20], 2);
        let s = score_beats(&t, &[100; RING], &P).unwrap();
        assert_eq!(s.timing, 1.0);
        assert!((s.interval_s - 30.0).abs() < 1e-6);
        // Six beats, two intervals of them missed beats, 3 % jitter: folded, regular; not
        // folded, the quartiles say heavily skewed.
        let secs = [0.0, 29.0, 90.0, 121.0, 209.0, 239.0];
        let t: Vec<Timestamp> = secs
            .iter()
            .map(|s| Timestamp((s * 1e9) as u64 + 1))
            .collect();
        let folded = score_beats(&t, &[100; 6], &P).unwrap();
        let unfolded = score_beats(&t, &[100; 6], &ScoreParams { max_missed: 0, ..P }).unwrap();
        assert!(folded.score >= 0.85, "{folded:?}");
        assert!(unfolded.score < 0.85, "{unfolded:?}");
    }

    #[test]
    fn random_timing_and_sizes_stay_below_the_threshold() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut worst: f64 = 0.0;
        for _ in 0..200 {
            let mut t = 0.0;
            let mut times = [Timestamp::ZERO; RING];
            let mut sizes = [0u32; RING];
            for (ts, sz) in times.iter_mut().zip(sizes.iter_mut()) {
                // Exponential gaps, mean 60 s; sizes 200 to 20000 bytes.
                t += -60.0 * (1.0 - rng.random::<f64>()).ln();
                *ts = Timestamp((t * 1e9) as u64 + 1);
                *sz = rng.random_range(200..20_000);
            }
            let s = score_beats(&times, &sizes, &P).unwrap();
            worst = worst.max(s.score);
        }
        assert!(worst < 0.8, "worst random score {worst}");
    }

    #[test]
    fn short_intervals_are_dropped() {
        // Each beat followed by a retry 50 ms later: the retries do not count as intervals.
        let mut t = Vec::new();
        for i in 0..8u64 {
            t.push(Timestamp(i * 10_000_000_000 + 1));
            t.push(Timestamp(i * 10_000_000_000 + 50_000_001));
        }
        let s = score_beats(&t, &[200; 16], &P).unwrap();
        assert_eq!(s.intervals, 7);
        assert!(s.timing > 0.99, "{s:?}");
        // Equal timestamps (a mirrored copy of the same connection) as well.
        assert!(score_beats(&[Timestamp(5); 6], &[1; 6], &P).is_none());
    }

    #[test]
    fn multicast_and_broadcast_are_not_destinations() {
        for ip in [
            "239.255.255.250",
            "255.255.255.255",
            "224.0.0.1",
            "169.254.1.1",
            "ff02::c",
            "fe80::1",
        ] {
            assert!(!routable_unicast(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["203.0.113.9", "8.8.8.8", "2001:db8::1"] {
            assert!(routable_unicast(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn candidate_test_tolerates_jitter_not_size_changes() {
        assert!(gaps_similar(800, 1200, 0.25));
        assert!(!gaps_similar(500, 1200, 0.25));
        assert!(sizes_similar(100, 104));
        assert!(sizes_similar(1000, 1100));
        assert!(!sizes_similar(100, 200));
    }

    #[test]
    fn eviction_prefers_irregular_pairs() {
        let mut table = PairTable::new(4);
        for i in 0..4u8 {
            let idx = table.take_slot().unwrap();
            let key = PairKey {
                dst: [i; 16],
                ..PairKey::default()
            };
            let slot = &mut table.slots[idx];
            slot.key = key;
            slot.live = true;
            slot.beats.last = Timestamp(u64::from(10 - i));
            slot.alert.scored = i == 2;
            slot.alert.last_score = 0.3;
            table.reweigh(idx);
            let h = table.hasher.hash_one(key);
            table.index.insert_unique(h, idx as u32, |_| 0);
            table.len += 1;
        }
        let v = table.victim(0.85);
        assert_eq!(table.slots[v].key.dst, [2; 16]);
        table.remove(v);
        assert_eq!(table.len, 3);
        assert!(
            table
                .find(&PairKey {
                    dst: [2; 16],
                    ..PairKey::default()
                })
                .is_none()
        );
        assert!(
            table
                .find(&PairKey {
                    dst: [1; 16],
                    ..PairKey::default()
                })
                .is_some()
        );
    }

    /// Issue 14: the pair table and track pool touch no slot before a pair or track needs
    /// it, hand slots out in the order a full free list did (released slots last in first
    /// out, then the lowest never used), and evict only at the cap, which they keep.
    #[test]
    fn pair_table_fills_on_demand_and_evicts_only_at_its_cap() {
        const CAP: usize = 1_000;
        let config = BeaconConfig {
            pair_capacity: CAP,
            ..BeaconConfig::default()
        };
        let shared = SharedState {
            names: std::sync::Arc::new(crate::names::NameCache::new(16)),
            destinations: std::sync::Arc::new(KnownDestinations::default()),
        };
        let mut det = BeaconDetector::new(&config, &[], &shared, 1);
        let (cap, full_bytes) = det.pair_memory();
        assert_eq!(cap, CAP);
        let (live, new_bytes) = det.pair_memory_in_use();
        assert_eq!(
            (live, det.pairs.slots.len(), det.tracks.slots.len()),
            (0, 0, 0)
        );
        assert!(
            new_bytes * 8 < full_bytes,
            "a new table holds {new_bytes} of its {full_bytes} bytes"
        );
        let key = |n: u32| PairKey {
            dst: flowtable::key::ip_to_addr(std::net::IpAddr::V4(n.into())),
            ..PairKey::default()
        };
        for n in 0..CAP as u32 {
            assert_eq!(det.insert_pair(key(n)), n as usize);
            assert_eq!(det.pairs.slots.len(), n as usize + 1);
        }
        assert!(det.pairs.index.num_buckets() >= 2 * CAP);
        for n in [10, 500] {
            let idx = det.pairs.find(&key(n)).unwrap();
            det.pairs.remove(idx);
        }
        assert_eq!(det.insert_pair(key(5_000)), 500);
        assert_eq!(det.insert_pair(key(5_001)), 10);
        assert_eq!(det.stats.pairs_evicted, 0);
        let evicted = det.insert_pair(key(5_002));
        assert!(evicted < CAP);
        assert_eq!(det.stats.pairs_evicted, 1);
        assert_eq!((det.pairs.len, det.pairs.slots.len()), (CAP, CAP));
        assert_eq!(det.pairs.find(&key(5_002)), Some(evicted));
        // The dense weights eviction reads are the slots' own.
        assert_eq!(det.pairs.weights.len(), CAP);
        assert_weights_follow_slots(&det.pairs);
        let found = (0..CAP as u32)
            .chain([5_000, 5_001])
            .filter(|&n| det.pairs.find(&key(n)).is_some())
            .count();
        assert_eq!(found, CAP - 1);
        assert_eq!(det.pair_memory().1, full_bytes, "the bound does not move");
        // The end of a capture forgets every pair at once: the next capture fills the table
        // slot by slot from the first, as a new table does, and no old pair is found.
        det.end_capture();
        assert_eq!((det.pairs.len, det.pairs.slots.len()), (0, 0));
        assert!(det.pairs.weights.is_empty() && det.pairs.free.is_empty());
        assert!((0..CAP as u32).all(|n| det.pairs.find(&key(n)).is_none()));
        for n in 0..CAP as u32 {
            assert_eq!(det.insert_pair(key(10_000 + n)), n as usize);
        }
        assert_eq!(
            det.stats.pairs_evicted, 1,
            "a full table again, nothing evicted"
        );
        assert_eq!(det.pairs.find(&key(10_007)), Some(7));
        assert_weights_follow_slots(&det.pairs);
        assert_eq!(det.pair_memory().1, full_bytes, "the bound does not move");
    }

    /// A detector with the default configuration, and a writer to a scratch file named by
    /// `test` for its events.
    fn default_detector(test: &str) -> (crate::alert::EventWriter, BeaconDetector) {
        let path =
            std::env::temp_dir().join(format!("mw-beacon-{test}-{}.jsonl", std::process::id()));
        let writer =
            crate::alert::EventWriter::spawn(&crate::alert::OutputTarget::File(path)).unwrap();
        let config = crate::config::Config::default();
        let shared = SharedState {
            names: std::sync::Arc::new(crate::names::NameCache::new(16)),
            destinations: std::sync::Arc::new(KnownDestinations::load(&config.beacon).unwrap()),
        };
        let det = BeaconDetector::new(&config.beacon, &config.networks.home, &shared, 1);
        (writer, det)
    }

    /// Every pair weight is its slot's, as eviction and expiry read it.
    fn assert_weights_follow_slots(pairs: &PairTable) {
        assert_eq!(pairs.weights.len(), pairs.slots.len());
        for (w, p) in pairs.weights.iter().zip(&pairs.slots) {
            let of = PairWeight::of(p);
            assert_eq!(
                (w.live, w.last, w.scored, w.alerted, w.last_score),
                (of.live, of.last, of.scored, of.alerted, of.last_score)
            );
            assert_eq!(w.keep_rank(0.85), p.alert.keep_rank(0.85));
        }
    }

    /// Issue 6: a reload changes the verdict. Six regular beats are below the default
    /// `min_beats` (8) and alert once it is reloaded to 6; a destination reloaded as trusted
    /// is no longer an outbound untrusted flow.
    #[test]
    fn reload_changes_min_beats_and_trusted_destinations() {
        let (writer, mut det) = default_detector("reload");
        let mut sink = writer.sink();
        let src = flowtable::key::ip_to_addr("10.0.0.1".parse().unwrap());
        let dst = flowtable::key::ip_to_addr("203.0.113.9".parse().unwrap());
        let key = PairKey {
            src,
            dst,
            dst_port: 443,
            proto: IpProto::TCP.0,
        };
        let mut ring = Beats::default();
        for t in beats(6, 60.0, 0.0, &[], 1) {
            ring.push(t, 300);
        }
        let evaluate = |det: &mut BeaconDetector, sink: &mut EventSink| {
            let mut a = AlertState::default();
            let now = ring.last;
            det.settings
                .evaluate(
                    sink,
                    &mut det.stats,
                    Kind::Connections,
                    &key,
                    None,
                    &ring,
                    &mut a,
                    now,
                    Keepalive::None,
                )
                .unwrap();
        };
        evaluate(&mut det, &mut sink);
        assert_eq!(det.stats.alerts, 0, "six beats, eight needed");
        let mut reloaded = crate::config::Config::default();
        reloaded.beacon.min_beats = 6;
        det.reload(&reloaded.beacon, &reloaded.networks.home);
        evaluate(&mut det, &mut sink);
        assert_eq!(det.stats.alerts, 1, "six beats, six needed");

        let (k, dir) = flowtable::FlowKey::new(src, 40_000, dst, 443, IpProto::TCP, 0);
        let flow = Flow {
            key: k,
            first_dir: dir,
            counters: flowtable::FlowCounters::starting_at(Timestamp(1)),
            ext: crate::detect::FlowExt::default(),
        };
        assert!(det.settings.outbound_untrusted(&flow));
        reloaded.beacon.trusted_destinations = vec!["203.0.113.0/24".parse().unwrap()];
        det.reload(&reloaded.beacon, &reloaded.networks.home);
        assert!(!det.settings.outbound_untrusted(&flow));
        drop(sink);
        writer.finish().unwrap();
    }

    /// The dense weights eviction and expiry read follow the slots through connections,
    /// scoring and an alert.
    #[test]
    fn pair_weights_follow_their_slots_through_scoring() {
        let (writer, mut det) = default_detector("weights");
        let mut sink = writer.sink();
        let src = flowtable::key::ip_to_addr("10.0.0.1".parse().unwrap());
        let dst = flowtable::key::ip_to_addr("203.0.113.9".parse().unwrap());
        for t in beats(12, 60.0, 0.0, &[], 1) {
            let (k, dir) = flowtable::FlowKey::new(src, 40_000, dst, 443, IpProto::TCP, 0);
            let mut counters = flowtable::FlowCounters::starting_at(t);
            counters.packets = [3, 3];
            counters.bytes = [300, 900];
            let flow = Flow {
                key: k,
                first_dir: dir,
                counters,
                ext: crate::detect::FlowExt::default(),
            };
            det.record_connection(&flow, t, &mut sink).unwrap();
        }
        let live: Vec<&Pair> = det.pairs.slots.iter().filter(|p| p.live).collect();
        assert_eq!(live.len(), 1);
        assert!(
            live[0].alert.scored && live[0].alert.alerted_count > 0,
            "{:?}",
            live[0].alert
        );
        assert_weights_follow_slots(&det.pairs);
        drop(sink);
        writer.finish().unwrap();
    }

    /// Issue 11: perfectly regular beats that cover less than `min_span_s` (an application's
    /// timer inside an open session: Zoom's 3.75 s keep-alive over half a minute) do not
    /// alert; the same beacon alerts at the first beat a minute after its first.
    #[test]
    fn beats_must_cover_min_span_before_an_alert() {
        let path =
            std::env::temp_dir().join(format!("mw-beacon-span-{}.jsonl", std::process::id()));
        let writer =
            crate::alert::EventWriter::spawn(&crate::alert::OutputTarget::File(path)).unwrap();
        let mut sink = writer.sink();
        let config = crate::config::Config::default();
        assert_eq!(config.beacon.min_span_s, 60);
        let shared = SharedState {
            names: std::sync::Arc::new(crate::names::NameCache::new(16)),
            destinations: std::sync::Arc::new(KnownDestinations::load(&config.beacon).unwrap()),
        };
        let mut det = BeaconDetector::new(&config.beacon, &config.networks.home, &shared, 1);
        let key = PairKey {
            src: flowtable::key::ip_to_addr("10.0.0.1".parse().unwrap()),
            dst: flowtable::key::ip_to_addr("203.0.113.9".parse().unwrap()),
            dst_port: 8801,
            proto: IpProto::UDP.0,
        };
        let mut ring = Beats::default();
        let mut a = AlertState::default();
        let mut alerted_at = None;
        for (i, t) in beats(20, 3.75, 0.0, &[], 1).into_iter().enumerate() {
            ring.push(t, 60);
            det.settings
                .evaluate(
                    &mut sink,
                    &mut det.stats,
                    Kind::Packets,
                    &key,
                    Some(40_000),
                    &ring,
                    &mut a,
                    t,
                    Keepalive::None,
                )
                .unwrap();
            if det.stats.alerts == 1 && alerted_at.is_none() {
                alerted_at = Some(i + 1);
            }
        }
        // 3.75 s apart: the 17th beat is the first 60 s after the first.
        assert_eq!(
            alerted_at,
            Some(17),
            "beats 8 to 16 span less than a minute"
        );
        drop(sink);
        writer.finish().unwrap();
    }

    /// Issue 16: two fixed sizes in turn score as regular as one; random sizes and three
    /// sizes do not.
    #[test]
    fn two_fixed_sizes_score_as_regular() {
        let score = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_unstable_by(f64::total_cmp);
            two_sizes_score(&v)
        };
        let alternating: Vec<f64> = (0..32)
            .map(|i| if i % 2 == 0 { 148.0 } else { 508.0 })
            .collect();
        assert_eq!(score(&alternating), 1.0);
        // A few beats off the two sizes lower it by their share.
        let mut mostly = alternating.clone();
        mostly[3] = 900.0;
        mostly[7] = 40.0;
        assert_eq!(score(&mostly), 30.0 / 32.0);
        // One size dominant and a rare other: not two sizes (regularity scores it).
        let rare: Vec<f64> = (0..32)
            .map(|i| if i % 8 == 0 { 508.0 } else { 148.0 })
            .collect();
        assert_eq!(score(&rare), 0.0);
        // Three sizes in turn, and random sizes: below any threshold.
        let three: Vec<f64> = (0..30).map(|i| [100.0, 300.0, 700.0][i % 3]).collect();
        assert!(score(&three) < 0.7);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let random: Vec<f64> = (0..32)
            .map(|_| f64::from(rng.random_range(40..1_400u32)))
            .collect();
        assert!(score(&random) < 0.5, "{}", score(&random));
    }

    #[test]
    fn config_ranges_are_checked() {
        assert!(BeaconConfig::default().validate().is_ok());
        let bad = |c: BeaconConfig| c.validate().unwrap_err().0;
        assert_eq!(
            bad(BeaconConfig {
                min_beats: 3,
                ..Default::default()
            }),
            "min_beats"
        );
        assert_eq!(
            bad(BeaconConfig {
                min_span_s: 86_401,
                ..Default::default()
            }),
            "min_span_s"
        );
        assert_eq!(
            bad(BeaconConfig {
                score_threshold: 1.5,
                ..Default::default()
            }),
            "score_threshold"
        );
        assert_eq!(
            bad(BeaconConfig {
                jitter: 0.9,
                ..Default::default()
            }),
            "jitter"
        );
        assert_eq!(
            bad(BeaconConfig {
                pair_capacity: 0,
                ..Default::default()
            }),
            "pair_capacity"
        );
        assert_eq!(
            bad(BeaconConfig {
                allowlist_domains: vec!["*.".into()],
                ..Default::default()
            }),
            "allowlist_domains"
        );
    }

    fn lesson(src: &str, at_s: u64) -> Option<Lesson> {
        Some(Lesson {
            at: Timestamp::from_secs_nanos(at_s, 0),
            how: LearnedHow::TcpHandshake,
            source: ip_to_addr(src.parse().unwrap()),
            port: 443,
            proto: 6,
        })
    }

    fn addr(s: &str) -> [u8; 16] {
        ip_to_addr(s.parse().unwrap())
    }

    #[test]
    fn baseline_loads_saves_and_names_the_file() {
        let dir = std::env::temp_dir().join(format!("mw-baseline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("known.txt");
        // The old format (an address alone), comments, and a field a newer sensor may add.
        std::fs::write(
            &path,
            "# comment\n198.51.100.7\n\n2001:db8::1 # trailing\n198.51.100.8 how=two_way future=1\n",
        )
        .unwrap();
        let config = BeaconConfig {
            baseline_file: path.display().to_string(),
            ..Default::default()
        };
        let known = KnownDestinations::load(&config).unwrap();
        assert_eq!(known.len(), 3);
        let old = known.get("198.51.100.7".parse().unwrap()).unwrap();
        assert_eq!(
            old,
            KnownEntry {
                from_baseline: true,
                ..KnownEntry::default()
            },
            "an old-format line: nothing recorded"
        );
        assert_eq!(
            known.observe(addr("198.51.100.7"), None, 8),
            Observed::Known { in_baseline: true }
        );
        let b = addr("203.0.113.1");
        assert_eq!(
            known.observe(b, lesson("10.0.0.1", 1_767_603_600), 8),
            Observed::Learned
        );
        assert_eq!(
            known.observe(b, None, 8),
            Observed::Known { in_baseline: false }
        );
        known.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().any(|l| l
                == "203.0.113.1 learned=2026-01-05T09:00:00.000000+0000 how=tcp_handshake source=10.0.0.1 service=443/tcp"),
            "{text}"
        );
        assert!(text.lines().any(|l| l == "198.51.100.7"), "{text}");
        let again = KnownDestinations::load(&config).unwrap();
        assert_eq!(again.len(), 4);
        // When, how and from whom survive the round trip; the entry is the baseline's now.
        assert_eq!(
            again.get("203.0.113.1".parse().unwrap()).unwrap(),
            KnownEntry {
                from_baseline: true,
                learned_at: Some(Timestamp::from_secs_nanos(1_767_603_600, 0)),
                how: LearnedHow::TcpHandshake,
                source: Some("10.0.0.1".parse().unwrap()),
                service: Some((443, 6)),
            }
        );
        assert_eq!(
            again.get("198.51.100.8".parse().unwrap()).unwrap().how,
            LearnedHow::TwoWay
        );
        assert_eq!(
            again.to_text(),
            known.to_text(),
            "a second save is the same file"
        );
        std::fs::write(&path, "198.51.100.7\nnot-an-ip\n").unwrap();
        let e = KnownDestinations::load(&config).unwrap_err().to_string();
        assert!(e.contains("known.txt") && e.contains("line 2"), "{e}");
        std::fs::write(&path, "198.51.100.7 how=guessed\n").unwrap();
        let e = KnownDestinations::load(&config).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("how="), "{e}");
        std::fs::write(&path, "198.51.100.7 learned=yesterday\n").unwrap();
        let e = KnownDestinations::load(&config).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("learned="), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 19 item 8: nothing is learned without a two-way exchange, and one source
    /// teaches at most its hourly share; another source, or the next hour, learns again.
    #[test]
    fn learning_needs_an_exchange_and_is_capped_per_source_per_hour() {
        let known = KnownDestinations::load(&BeaconConfig::default()).unwrap();
        let t0 = 1_767_603_600;
        assert_eq!(
            known.observe(addr("203.0.113.200"), None, 3),
            Observed::RefusedOneWay
        );
        assert!(known.is_empty(), "a one-way contact teaches nothing");
        let results: Vec<Observed> = (1..=5u8)
            .map(|i| {
                known.observe(
                    addr(&format!("203.0.113.{i}")),
                    lesson("10.0.0.1", t0 + u64::from(i) * 60),
                    3,
                )
            })
            .collect();
        assert_eq!(
            results,
            [
                Observed::Learned,
                Observed::Learned,
                Observed::Learned,
                Observed::RefusedRate,
                Observed::RefusedRate
            ]
        );
        assert_eq!(known.len(), 3);
        assert_eq!(
            known.observe(addr("203.0.113.4"), lesson("10.0.0.2", t0 + 600), 3),
            Observed::Learned,
            "another source has its own share"
        );
        assert_eq!(
            known.observe(addr("203.0.113.5"), lesson("10.0.0.1", t0 + 60 + 3600), 3),
            Observed::Learned,
            "an hour after the window opened, the source teaches again"
        );
        assert_eq!(known.len(), 5);
        assert_eq!(
            known.get("203.0.113.4".parse().unwrap()).unwrap().source,
            Some("10.0.0.2".parse().unwrap())
        );
    }

    /// The detector side of issue 19 item 8: a spoofed SYN (SYN, SYN-ACK, the real host's
    /// RST) is no exchange; a connection with payload acknowledged both ways is.
    #[test]
    fn only_a_completed_exchange_teaches() {
        let src = addr("10.0.0.1");
        let dst = addr("203.0.113.9");
        let (k, dir) = flowtable::FlowKey::new(src, 40_000, dst, 443, IpProto::TCP, 0);
        let mut flow = Flow {
            key: k,
            first_dir: dir,
            counters: flowtable::FlowCounters::starting_at(Timestamp(1)),
            ext: crate::detect::FlowExt::default(),
        };
        const SYN: u8 = 0x02;
        const RST: u8 = 0x04;
        const ACK: u8 = 0x10;
        flow.counters.tcp_flags[dir.index()] = SYN | RST;
        flow.counters.tcp_flags[dir.reverse().index()] = SYN | ACK;
        assert_eq!(exchange_of(&flow), None, "spoofed SYN");
        flow.counters.tcp_flags[dir.index()] = SYN | ACK;
        flow.ext.beacon.cur_start = Timestamp(5);
        assert_eq!(exchange_of(&flow), None, "the destination sent no payload");
        flow.ext.beacon.flags |= PEER_DATA;
        assert_eq!(exchange_of(&flow), Some(LearnedHow::TcpHandshake));
        flow.counters.tcp_flags = [ACK, ACK];
        assert_eq!(exchange_of(&flow), Some(LearnedHow::TcpData));
        flow.key.proto = IpProto::UDP;
        flow.counters.tcp_flags = [0, 0];
        assert_eq!(exchange_of(&flow), Some(LearnedHow::TwoWay));
        flow.ext.beacon.cur_start = Timestamp::ZERO;
        assert_eq!(exchange_of(&flow), None, "the source sent no payload");
    }
}
