//! Detectors: a closed set, wired in one place.
//!
//! - [`mirror_stream`] runs in the capture thread beside the tunnel table, because a mirror
//!   is judged from every packet of a tunnel and from native packets it may copy, whatever
//!   worker their inner flows go to.
//! - The flow detectors (extraneous packets, beaconing) run in the workers, on flow state.
//!
//! Each detector writes alerts into a caller-owned sink; nothing here reads a clock.

pub mod mirror_stream;
