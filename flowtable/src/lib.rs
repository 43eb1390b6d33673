//! Bounded flow table for mirrorwatch, driven by packet time.
//!
//! This is a leaf crate: it knows nothing of libpcap, capture files, JSON, command lines or
//! detectors. It gives a canonical [`FlowKey`], a packet-clock [`Timestamp`], and a
//! [`FlowTable`] with a hard capacity, counted eviction and idle/active timeouts.
//! Nothing here reads the wall clock and nothing on the per-packet path allocates.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod key;
pub mod table;
pub mod time;

pub use key::{Direction, FlowKey, IpProto};
pub use table::{
    ExpireReason, FlowCounters, FlowEntry, FlowTable, FlowTableConfig, FlowTableStats,
};
pub use time::{Duration, Timestamp};
