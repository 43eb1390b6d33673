//! Evidence of `beacon` alerts (`docs/events.md`, `detector: "beacon"`).

use serde::{Serialize, Serializer};

use super::Rfc3339;

/// `evidence` of a beacon alert.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BeaconEvidence<'a> {
    /// The periodic pattern (absent for `beacon.new_destination`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beacon: Option<BeaconDetail>,
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
    /// `[beacon] score_threshold`.
    pub score_threshold: Rounded,
}

/// `evidence.beacon`: the regularity of the beats, as scored when the alert was written.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BeaconDetail {
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
