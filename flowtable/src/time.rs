//! Packet-clock time: nanoseconds since the Unix epoch, taken from capture timestamps.
//!
//! Decoding, the flow table and the detectors take `now` as a parameter and never read the
//! wall clock, so live capture and offline replay run the same code and tests are deterministic.

use std::ops::{Add, Sub};

/// A point in packet time, in nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

/// A span of packet time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl Timestamp {
    /// The earliest representable time; used as "never seen".
    pub const ZERO: Timestamp = Timestamp(0);

    /// Builds a timestamp from whole seconds and a sub-second part in nanoseconds.
    pub const fn from_secs_nanos(secs: u64, nanos: u32) -> Timestamp {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(nanos as u64),
        )
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Microseconds since the epoch (truncated).
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later (packets can arrive out of order).
    pub const fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// Zero length.
    pub const ZERO: Duration = Duration(0);

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(secs.saturating_mul(1_000_000_000))
    }

    /// A duration of milliseconds.
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(ms.saturating_mul(1_000_000))
    }

    /// Length in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Length in seconds, as a float (for reports, not for arithmetic on the hot path).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(rhs.0))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(rhs.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Timestamp::from_secs_nanos(10, 5);
        assert_eq!(t.as_nanos(), 10_000_000_005);
        assert_eq!(Timestamp(3).saturating_since(Timestamp(5)), Duration::ZERO);
        assert_eq!(Timestamp(u64::MAX) + Duration(1), Timestamp(u64::MAX));
        assert_eq!(Timestamp(1) - Duration(5), Timestamp::ZERO);
        assert_eq!(
            Timestamp::from_secs_nanos(1, 999_999_999).as_micros(),
            1_999_999
        );
    }
}
