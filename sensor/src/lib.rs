//! mirrorwatch: a network flow anomaly sensor for traffic duplication used for exfiltration
//! (MITRE ATT&CK T1020.001).
//!
//! The library holds the whole sensor; `main.rs` only parses arguments and maps errors to exit
//! codes. Data flows capture → decode → flow table → detect → alert; see `ARCHITECTURE.md`.
#![deny(unsafe_code)]

pub mod alert;
pub mod bench;
pub mod capture;
pub mod cli;
pub mod config;
pub mod control;
pub mod decode;
pub mod detect;
pub mod doorbell;
pub mod fsio;
pub mod fuzzing;
pub mod generate;
pub mod latency;
pub mod live;
pub mod metrics;
pub mod names;
pub mod packet;
pub mod pipeline;
pub mod privdrop;
pub mod report;
pub mod run;
pub mod sched;
pub mod stats;
pub mod tunnel;
