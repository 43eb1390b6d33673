//! When the capture thread hands the mirror alerts it wrote to the event writer.
//!
//! An alert must not wait for a buffer to fill, so the first alert after a quiet spell goes
//! out at once. A burst of alerts (a mirror of many sessions switched on) used to go out one
//! hand-over per alert: each woke the writer and then the file's reader, and on a busy core
//! the writer, having run at every alert, lost its claim to the CPU and waited a whole slice
//! of the capture thread (measured on the 2-core VM at 1 Mpps: alerts 35 µs apart, p99 up to
//! 5 ms). So within [`HANDOVER_EVERY`] of a hand-over, alerts are held and go out together at
//! its end, or as soon as the capture source has nothing more to read (the caller's
//! [`AlertHandover::due`] check when idle): no alert waits longer than that.

use std::time::{Duration, Instant};

/// The least time between two hand-overs of a burst's alerts.
pub const HANDOVER_EVERY: Duration = Duration::from_micros(100);

/// The hand-over schedule of one producer.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlertHandover {
    /// The last hand-over.
    last: Option<Instant>,
    /// Alerts were written since the last hand-over.
    held: bool,
}

impl AlertHandover {
    /// Alerts were just written at `now`: whether to hand them over now (otherwise they are
    /// held until [`AlertHandover::due`]).
    pub fn written(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|at| now.saturating_duration_since(at) < HANDOVER_EVERY)
        {
            self.held = true;
            return false;
        }
        self.handed_over(now);
        true
    }

    /// Whether alerts are held.
    #[inline]
    pub fn holds(&self) -> bool {
        self.held
    }

    /// Whether held alerts are due at `now` (none held: false).
    pub fn due(&self, now: Instant) -> bool {
        self.held
            && self
                .last
                .is_none_or(|at| now.saturating_duration_since(at) >= HANDOVER_EVERY)
    }

    /// Everything written was handed over at `now`.
    pub fn handed_over(&mut self, now: Instant) {
        self.last = Some(now);
        self.held = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_alert_goes_at_once_and_a_burst_is_held_until_due() {
        let t0 = Instant::now();
        let mut h = AlertHandover::default();
        // The first alert ever, and one after a quiet spell: at once.
        assert!(h.written(t0));
        assert!(!h.holds());
        let quiet = t0 + HANDOVER_EVERY * 10;
        assert!(h.written(quiet));
        // Three more within the interval: held, not due before its end.
        for us in [10, 40, 90] {
            assert!(!h.written(quiet + Duration::from_micros(us)));
            assert!(h.holds());
        }
        assert!(!h.due(quiet + Duration::from_micros(99)));
        assert!(h.due(quiet + HANDOVER_EVERY));
        h.handed_over(quiet + HANDOVER_EVERY);
        assert!(!h.holds());
        assert!(!h.due(quiet + HANDOVER_EVERY * 3));
        // The next burst's first alert waits for the interval after that hand-over.
        assert!(!h.written(quiet + HANDOVER_EVERY + Duration::from_micros(50)));
        assert!(h.written(quiet + HANDOVER_EVERY * 2 + Duration::from_micros(1)));
    }

    /// A clock that steps back (another thread's `Instant`, a VM's clock) never holds alerts
    /// for longer than the interval after the step.
    #[test]
    fn a_clock_read_before_the_last_hand_over_holds_and_is_due_later() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut h = AlertHandover::default();
        assert!(h.written(t0));
        let earlier = t0 - Duration::from_micros(500);
        assert!(!h.written(earlier));
        assert!(!h.due(earlier));
        assert!(h.due(t0 + HANDOVER_EVERY));
    }
}
