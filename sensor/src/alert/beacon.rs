//! Evidence of `beacon` alerts (being written).
