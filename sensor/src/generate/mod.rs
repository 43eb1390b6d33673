//! Deterministic scenario generator: writes the pcap fixtures under `pcaps/` and any capture
//! a test or benchmark needs.
//!
//! The same scenario name and seed always give a byte-identical file: every random choice
//! comes from `ChaCha8Rng::seed_from_u64(seed)` and packet times are offsets from a fixed base
//! (2026-01-05T09:00:00Z), never the wall clock. The pieces compose: [`conversation`] makes
//! protocol-correct exchanges, [`encap`] wraps frames in tunnel stacks (the writer side of
//! `decode/`), [`timeline`] merges packets by time and [`writer`] writes them through
//! libpcap. Nothing here panics on bad arguments; errors come back as [`GenerateError`].

mod beacon_scenarios;
pub mod bench_scenarios;
mod control_scenarios;
pub mod conversation;
mod correctness_scenarios;
pub mod encap;
mod evasion_scenarios;
mod extraneous_scenarios;
pub mod frame;
mod precision_scenarios;
mod scenarios;
mod security_scenarios;
pub mod timeline;
pub mod writer;

#[cfg(test)]
mod tests;

use std::fmt::Display;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

/// Builds one scenario's timeline.
type ScenarioFn = fn(&mut ChaCha8Rng) -> Result<timeline::Timeline, GenerateError>;

/// The builder of scenario `name`: each scenario file knows its own, none knows another's.
fn builder(name: &str) -> Option<ScenarioFn> {
    scenarios::builder(name)
        .or_else(|| extraneous_scenarios::builder(name))
        .or_else(|| precision_scenarios::builder(name))
        .or_else(|| beacon_scenarios::builder(name))
        .or_else(|| security_scenarios::builder(name))
        .or_else(|| correctness_scenarios::builder(name))
        .or_else(|| evasion_scenarios::builder(name))
}

/// A scenario the generator can write.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioInfo {
    /// Name given on the command line.
    pub name: &'static str,
    /// One line on what it covers.
    pub description: &'static str,
}

/// Every scenario, in a fixed order: mirror streams, then extraneous packets, then beacons.
pub fn scenarios() -> impl Iterator<Item = &'static ScenarioInfo> {
    MIRROR_SCENARIOS
        .iter()
        .chain(extraneous_scenarios::SCENARIOS)
        .chain(beacon_scenarios::SCENARIOS)
        .chain(control_scenarios::SCENARIOS)
        .chain(security_scenarios::SCENARIOS)
        .chain(correctness_scenarios::SCENARIOS)
        .chain(precision_scenarios::SCENARIOS)
        .chain(evasion_scenarios::SCENARIOS)
}

/// The mirror-stream scenarios (built in `scenarios.rs`).
const MIRROR_SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "plain-sessions",
        description: "Ordinary traffic without tunnels: TCP over IPv4/IPv6, DNS, ICMP echo, \
                      802.1Q, QinQ and MPLS",
    },
    ScenarioInfo {
        name: "mirror-vxlan",
        description: "VXLAN mirror (UDP 4789, VNI 100) from 10.10.0.5 to 203.0.113.50",
    },
    ScenarioInfo {
        name: "mirror-geneve",
        description: "Geneve mirror (UDP 6081, VNI 200, two option TLVs) from 10.10.0.5 to \
                      203.0.113.50",
    },
    ScenarioInfo {
        name: "mirror-gre",
        description: "IP-in-GRE mirror (key 300, checksum) from 10.10.0.5 to 203.0.113.50",
    },
    ScenarioInfo {
        name: "mirror-gre-teb",
        description: "GRE transparent Ethernet bridging mirror (0x6558, no key)",
    },
    ScenarioInfo {
        name: "mirror-nvgre",
        description: "NVGRE mirror (0x6558, key = VSID 5001 << 8 | flow id)",
    },
    ScenarioInfo {
        name: "mirror-erspan1",
        description: "ERSPAN type I mirror (GRE 0x88BE without sequence number)",
    },
    ScenarioInfo {
        name: "mirror-erspan2",
        description: "ERSPAN type II mirror (GRE 0x88BE with sequence number, session 101)",
    },
    ScenarioInfo {
        name: "mirror-erspan3",
        description: "ERSPAN type III mirror (GRE 0x22EB): session 300, and session 301 with \
                      the platform subheader",
    },
    ScenarioInfo {
        name: "mirror-gre-udp",
        description: "GRE-in-UDP mirror (UDP 4754) of IPv4 traffic",
    },
    ScenarioInfo {
        name: "aws-gwlb-double",
        description: "AWS Traffic Mirroring through a Gateway Load Balancer: Geneve around \
                      VXLAN, two mirror sessions",
    },
    ScenarioInfo {
        name: "gcp-nsi-geneve",
        description: "GCP Network Security Integration: Geneve VNI 0, bare IP, options class \
                      0x0132",
    },
    ScenarioInfo {
        name: "truncated-mirror",
        description: "VXLAN mirror with frames cut by the capture (caplen < len) and by the \
                      mirror (inner IP length beyond the bytes present)",
    },
    ScenarioInfo {
        name: "malformed-tunnels",
        description: "Six malformed tunnel headers between six good tunnel packets",
    },
    ScenarioInfo {
        name: "nested-too-deep",
        description: "VXLAN nested six deep (beyond the depth cap of 4) and exactly four deep",
    },
    ScenarioInfo {
        name: "collectors-vxlan",
        description: "Three VXLAN mirrors (VNI 100, 101, 102): to an external, an internal \
                      unapproved and an approved collector",
    },
    ScenarioInfo {
        name: "collectors-geneve",
        description: "Three Geneve mirrors (VNI 200, 201, 202): to an external, an internal \
                      unapproved and an approved collector",
    },
    ScenarioInfo {
        name: "collectors-gre-teb",
        description: "Three GRE-TEB mirrors (no key): to an external, an internal unapproved \
                      and an approved collector",
    },
    ScenarioInfo {
        name: "collectors-nvgre",
        description: "Three NVGRE mirrors (VSID 5001, 5002, 5003): to an external, an \
                      internal unapproved and an approved collector",
    },
    ScenarioInfo {
        name: "collectors-erspan1",
        description: "Three ERSPAN type I mirrors: to an external, an internal unapproved and \
                      an approved collector",
    },
    ScenarioInfo {
        name: "collectors-erspan2",
        description: "Three ERSPAN type II mirrors (sessions 101, 102, 103): to an external, \
                      an internal unapproved and an approved collector",
    },
    ScenarioInfo {
        name: "collectors-erspan3",
        description: "Three ERSPAN type III mirrors (sessions 300, 301 egress, 302): to an \
                      external, an internal unapproved and an approved collector",
    },
    ScenarioInfo {
        name: "inventory-bounds",
        description: "Four mirrors to a collector approved only for some sources, VXLAN and \
                      VNI 100: one inside the bounds, one from an unlisted source, one with \
                      another VNI, one of another type",
    },
    ScenarioInfo {
        name: "vxlan-nonstandard-port",
        description: "VXLAN mirror on UDP 31337, and a UDP flow with random payloads that \
                      is no tunnel",
    },
    ScenarioInfo {
        name: "overlay-vxlan",
        description: "VXLAN overlay (VNI 5000) between two VTEPs, conversations both ways",
    },
    ScenarioInfo {
        name: "overlay-geneve",
        description: "Geneve overlay (VNI 5000, one option) between two VTEPs, conversations \
                      both ways",
    },
    ScenarioInfo {
        name: "mirror-of-native",
        description: "Native traffic of a host and a VXLAN mirror of one direction of it \
                      (SPAN-port view)",
    },
    ScenarioInfo {
        name: "early-decision",
        description: "A 300-packet one-way VXLAN mirror over a minute, its first 40 packets \
                      in the first second",
    },
];

/// What a generation run wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Packets written.
    pub packets: u64,
}

/// Errors from writing a scenario.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// No scenario by that name.
    #[error("unknown scenario {name:?}")]
    UnknownScenario {
        /// The name asked for.
        name: String,
    },
    /// The output could not be written.
    #[error("{path}: {message}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A scenario asked for a packet that cannot be built (a field out of range, a length
    /// beyond 64 KiB); a bug in the scenario, not in the input.
    #[error("cannot build {what}: {message}")]
    Build {
        /// The header or packet being built.
        what: &'static str,
        /// Why it cannot be built.
        message: String,
    },
}

impl GenerateError {
    fn build(what: &'static str, message: impl Display) -> Self {
        GenerateError::Build {
            what,
            message: message.to_string(),
        }
    }
}

/// Writes scenario `name` with `seed` to `out` as a pcap file.
pub fn generate(name: &str, seed: u64, out: &Path) -> Result<GenerateSummary, GenerateError> {
    // Control-plane scenarios also write their records next to the capture.
    if let Some(written) =
        control_scenarios::generate(name, &mut ChaCha8Rng::seed_from_u64(seed), out)
    {
        return written;
    }
    let build = builder(name).ok_or_else(|| GenerateError::UnknownScenario {
        name: name.to_owned(),
    })?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let records = build(&mut rng)?.into_records();
    let packets = writer::write_pcap(out, &records)?;
    Ok(GenerateSummary { packets })
}
