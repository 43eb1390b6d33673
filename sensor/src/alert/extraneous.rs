//! Evidence of `extraneous_packet` alerts (being written).
