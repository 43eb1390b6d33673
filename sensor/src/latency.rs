//! Latency histograms in microseconds (hdrhistogram), shared between the thread that
//! records (the event writer, the capture thread) and the one that reports (the `stats`
//! event, `--metrics`). Kept apart from `stats` so the writer, which records, does not
//! depend on the report that reads the pipeline.

use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// A latency histogram shared between the thread that records and the one that reports.
/// (`None` only if hdrhistogram refused our constant bounds.)
pub type SharedHistogram = Arc<Mutex<Option<hdrhistogram::Histogram<u64>>>>;

/// Latencies above this (one hour, in microseconds) are recorded as this: a clock step, not
/// a slow sensor.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;

/// A histogram of microseconds from 1 µs to one hour, 3 significant digits.
pub fn latency_histogram() -> SharedHistogram {
    Arc::new(Mutex::new(
        hdrhistogram::Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).ok(),
    ))
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// Reads the count, p50, p99 and max of a histogram.
pub fn summarize(h: &SharedHistogram) -> LatencySummary {
    let guard = h.lock().unwrap_or_else(PoisonError::into_inner);
    match guard.as_ref() {
        Some(h) if !h.is_empty() => LatencySummary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        },
        _ => LatencySummary::default(),
    }
}
