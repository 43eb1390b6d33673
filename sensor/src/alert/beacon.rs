//! Evidence of `beacon` alerts (`docs/events.md`, `detector: "beacon"`).

use flowtable::Timestamp;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::Rfc3339;

/// `evidence` of a beacon alert.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BeaconEvidence<'a> {
    /// The periodic pattern (absent for `beacon.new_destination`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beacon: Option<BeaconDetail<'a>>,
    /// What is known of the destination.
    pub destination: DestinationInfo<'a>,
    /// The rule that fired, in words.
    pub rule: &'static str,
    /// The thresholds the pattern crossed, as configured (absent for
    /// `beacon.new_destination`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<BeaconThresholds>,
    /// Why this is not one of the benign look-alikes (keep-alives of known protocols).
    pub not_benign: &'static str,
    /// The keep-alive protocol recognised, when `[beacon] alert_keepalives` made it alert
    /// anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<&'static str>,
}

/// `evidence.thresholds` of a beacon alert.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BeaconThresholds {
    /// `[beacon] min_beats`.
    pub min_beats: u64,
    /// `[beacon] min_span_s`.
    pub min_span_s: u64,
    /// `[beacon] score_threshold`.
    pub score_threshold: Rounded,
}

/// `evidence.beacon`: the regularity of the beats, as scored when the alert was written.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BeaconDetail<'a> {
    /// `connections` (one beat per connection of the pair) or `packets` (one beat per burst
    /// of data packets inside one long flow).
    pub kind: &'static str,
    /// Median interval between beats, missed beats folded, in seconds.
    pub interval_s: Rounded,
    /// Median absolute deviation of the intervals, in seconds.
    pub interval_mad_s: Rounded,
    /// Median bytes per beat sent by the internal host (IP bytes per connection, payload
    /// bytes per burst).
    pub size_bytes: Rounded,
    /// Median absolute deviation of the sizes, in bytes.
    pub size_mad_bytes: Rounded,
    /// Beats seen so far (the score uses the latest 32).
    pub count: u64,
    /// Regularity of the timing, 0 to 1.
    pub timing_score: Rounded,
    /// Regularity of the sizes, 0 to 1.
    pub size_score: Rounded,
    /// The lower of the two, 0 to 1; the alert threshold applies to it.
    pub score: Rounded,
    /// First beat.
    pub first_seen: Rfc3339,
    /// Latest beat.
    pub last_seen: Rfc3339,
    /// This alert updates an earlier one for the same pair (or flow).
    pub update: bool,
    /// The beats the score used (a packet beacon's bursts, which no other event carries):
    /// time and size of each, oldest first, at most 32.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beats: Option<BeatList<'a>>,
}

/// `evidence.beacon.beats`: the beats of a ring, borrowed from the detector's fixed arrays
/// and written oldest first (`[{"time": ..., "bytes": ...}, ...]`) without allocating.
#[derive(Clone, Copy, Debug)]
pub struct BeatList<'a> {
    /// Beat times, a ring of which the first `len` slots are filled.
    pub times: &'a [Timestamp],
    /// Beat sizes in bytes, parallel to `times`.
    pub sizes: &'a [u32],
    /// Filled slots.
    pub len: usize,
    /// Slot of the oldest beat (the ring's next write position once it is full).
    pub oldest: usize,
}

impl Serialize for BeatList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = self.len.min(self.times.len()).min(self.sizes.len());
        let mut seq = s.serialize_seq(Some(len))?;
        for i in 0..len {
            let slot = (self.oldest + i) % len;
            if let (Some(t), Some(b)) = (self.times.get(slot), self.sizes.get(slot)) {
                seq.serialize_element(&Beat {
                    time: Rfc3339(*t),
                    bytes: *b,
                })?;
            }
        }
        seq.end()
    }
}

/// One element of `evidence.beacon.beats`.
struct Beat {
    time: Rfc3339,
    bytes: u32,
}

impl Serialize for Beat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Beat", 2)?;
        st.serialize_field("time", &self.time)?;
        st.serialize_field("bytes", &self.bytes)?;
        st.end()
    }
}

/// `evidence.destination`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct DestinationInfo<'a> {
    /// The name the destination was resolved from, learned from DNS answers on the wire
    /// (absent when none was seen: no value is ever written as `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// The destination was first seen in this run, after the warm-up, and is not in the
    /// baseline of known destinations.
    pub first_seen: bool,
    /// The destination is in the baseline file of known destinations.
    pub in_baseline: bool,
}

/// A float written with three decimals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rounded(pub f64);

impl Serialize for Rounded {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = if self.0.is_finite() { self.0 } else { 0.0 };
        s.serialize_f64((v * 1000.0).round() / 1000.0)
    }
}
