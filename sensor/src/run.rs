//! The replay command: the IO shell around the pipeline (files, signals, progress, output),
//! and what it shares with the live shell (`live.rs`): configuration loading, the stop flag,
//! usage errors.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;

use crate::alert::{EventWriter, OutputTarget};
use crate::capture::replay::{ReplayReader, expand_inputs};
use crate::cli::ReplayArgs;
use crate::config::Config;
use crate::pipeline::{Pipeline, PipelineOptions, PipelineReport};

/// Inputs larger than this (in total) get a progress bar on a terminal.
const PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;

/// A problem with the arguments, found before any packet is read (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// An input path does not exist or cannot be listed.
    #[error("{0}")]
    Input(crate::capture::CaptureError),
    /// The capture interface does not exist, may not be opened, or the filter is bad.
    #[error("{0}")]
    Live(crate::capture::live::LiveError),
    /// The baseline of known destinations cannot be read or has a bad line.
    #[error("{0}")]
    Baseline(String),
    /// The metrics address cannot be bound.
    #[error("--metrics {addr}: {source}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A flag raised by SIGINT or SIGTERM: the run stops reading, flushes and exits.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the SIGINT/SIGTERM handler")?;
    }
    Ok(stop)
}

/// How a replay ended.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Counters.
    pub report: PipelineReport,
    /// Inputs that could not be read completely, with the reason.
    pub input_errors: Vec<String>,
    /// Stopped by SIGINT/SIGTERM before the end.
    pub interrupted: bool,
}

/// Loads the configuration named on the command line, or the defaults.
pub fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

/// Loads the configuration, applies `--baseline`, and checks the baseline file before any
/// packet is read (a bad one is a usage error naming the file and line).
pub fn load_settings(
    config: Option<&std::path::Path>,
    baseline: Option<&std::path::Path>,
) -> anyhow::Result<Config> {
    let config = with_baseline(load_config(config)?, baseline);
    crate::detect::beacon::KnownDestinations::load(&config.beacon)
        .map_err(|e| UsageError::Baseline(e.to_string()))?;
    Ok(config)
}

/// `config` with the `--baseline` path, when one was given.
pub fn with_baseline(mut config: Config, baseline: Option<&std::path::Path>) -> Config {
    if let Some(path) = baseline {
        config.beacon.baseline_file = path.to_string_lossy().into_owned();
    }
    config
}

/// Runs `mirrorwatch replay`.
pub fn replay(args: &ReplayArgs) -> anyhow::Result<ReplayOutcome> {
    let config = load_settings(args.config.as_deref(), args.baseline.as_deref())?;
    // A path that does not exist is a typo, not a damaged capture: refuse before reading.
    let inputs = expand_inputs(&args.inputs).map_err(UsageError::Input)?;
    if inputs.is_empty() {
        anyhow::bail!("no capture files found in the inputs given");
    }
    let stop = stop_flag()?;
    let target = OutputTarget::from_arg(&args.output);
    let writer = EventWriter::spawn(&target)?;
    let options = PipelineOptions {
        workers: args.workers.unwrap_or(0),
        flow_records: args.flows,
        drop_when_full: false,
    };
    let mut pipeline =
        Pipeline::start(&config, options, || writer.sink()).context("starting worker threads")?;
    let progress = progress_bar(args, &inputs);
    let started = Instant::now();
    let mut input_errors = Vec::new();
    let mut interrupted = false;
    let mut done_bytes = 0u64;
    'files: for path in &inputs {
        let mut reader = match ReplayReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                input_errors.push(e.to_string());
                continue;
            }
        };
        pipeline.start_input();
        let mut n = 0u64;
        loop {
            match reader.next_packet() {
                Ok(Some(rec)) => {
                    if let Err(e) = pipeline.push(&rec) {
                        // The output failed: stop reading, but still flush what we can.
                        input_errors.push(format!("stopped: {e}"));
                        break 'files;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    input_errors.push(e.to_string());
                    break;
                }
            }
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break 'files;
            }
            n += 1;
            if n % 65_536 == 0 {
                if let Some(bar) = &progress {
                    bar.set_position(done_bytes + reader.file_bytes_read());
                }
            }
        }
        done_bytes += reader.file_len();
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
    }
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let finish = pipeline.finish();
    let mut sink = writer.sink();
    let report = match finish {
        Ok(report) => {
            crate::stats::write_stats(&mut sink, &report, input_errors.len() as u64)?;
            report
        }
        Err(e) => {
            drop(sink);
            let _ = writer.finish();
            return Err(e.into());
        }
    };
    drop(sink);
    writer.finish()?;
    eprint!("{}", crate::stats::summary(&report, started.elapsed()));
    if inputs.len() > 1 {
        eprintln!(
            "captures: {} independent ({})",
            report.captures,
            crate::pipeline::FOLDER_RULE
        );
    }
    if args.inventory {
        eprint!("{}", crate::stats::inventory_table(&report));
    }
    Ok(ReplayOutcome {
        report,
        input_errors,
        interrupted,
    })
}

fn progress_bar(
    args: &ReplayArgs,
    inputs: &[std::path::PathBuf],
) -> Option<indicatif::ProgressBar> {
    if args.no_progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let total: u64 = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    if total < PROGRESS_MIN_BYTES {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    Some(bar)
}
