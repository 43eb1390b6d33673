//! Deterministic scenario generator. STUB: being implemented by a helper; the API is the
//! contract the CLI uses.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A scenario the generator can write.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioInfo {
    /// Name given on the command line.
    pub name: &'static str,
    /// One line on what it covers.
    pub description: &'static str,
}

/// Every scenario, in a fixed order.
pub const SCENARIOS: &[ScenarioInfo] = &[];

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
}

/// Writes scenario `name` with `seed` to `out` as a pcap file.
pub fn generate(name: &str, seed: u64, out: &Path) -> Result<GenerateSummary, GenerateError> {
    let _ = (seed, out);
    Err(GenerateError::UnknownScenario { name: name.to_owned() })
}
