//! What the user typed (clap derive). `config.rs` turns it into validated settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// mirrorwatch: find traffic duplication used for exfiltration (MITRE ATT&CK T1020.001).
#[derive(Debug, Parser)]
#[command(name = "mirrorwatch", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay capture files (pcap, pcapng, optionally .gz/.zst) through the sensor.
    Replay(ReplayArgs),
    /// Write a deterministic test scenario as a pcap file.
    Generate(GenerateArgs),
    /// Print or check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `mirrorwatch replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Configuration file (TOML); defaults are built in (`mirrorwatch config default`).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to write JSON-lines events; `-` is standard output.
    #[arg(long, short = 'o', value_name = "PATH", default_value = "-")]
    pub output: String,
    /// Worker threads (default: from the configuration, automatic).
    #[arg(long, short = 'w', value_name = "N")]
    pub workers: Option<usize>,
    /// Also write one `flow` record per flow.
    #[arg(long)]
    pub flows: bool,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// At the end, print a table of every tunnel session (type, id, source -> collector,
    /// class, approved or not, packets, bytes, first/last seen) to stderr.
    #[arg(long)]
    pub inventory: bool,
    /// Capture files, or directories of them (read in name order).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
}

/// `mirrorwatch generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Scenario name (`--list` shows them).
    #[arg(required_unless_present = "list")]
    pub scenario: Option<String>,
    /// Random seed: the same scenario and seed give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output pcap file.
    #[arg(
        long,
        short = 'o',
        value_name = "FILE",
        required_unless_present = "list"
    )]
    pub output: Option<PathBuf>,
    /// List the scenarios.
    #[arg(long)]
    pub list: bool,
}

/// `mirrorwatch config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the built-in default configuration.
    Default,
    /// Validate a configuration file and exit 0 if it is good.
    Check {
        /// The file.
        file: PathBuf,
    },
}
