//! The replay command: the IO shell around the pipeline (files, signals, progress, output),
//! and what it shares with the live shell (`live.rs`): configuration loading, the stop flag,
//! usage errors.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;

use crate::alert::output::{OutputKind, OutputSpec};
use crate::alert::{EventWriter, WriterOptions};
use crate::capture::replay::{
    CAPTURE_EXTENSIONS, MAX_DIRECTORY_DEPTH, ReplayReader, SkipReason, Skipped, expand_inputs_all,
};
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
    /// No input can be read (missing, unreadable, or directories without captures).
    #[error("{0}")]
    Inputs(String),
    /// The output cannot be used (it is an input, or standard output is closed).
    #[error("{0}")]
    Output(String),
    /// The user to run as is unknown, or privileges could not be dropped.
    #[error("{0}")]
    Privilege(crate::privdrop::PrivilegeError),
    /// An `--output` is malformed.
    #[error("--output {0}")]
    OutputSpec(crate::alert::output::OutputSpecError),
    /// `--report` without a file among the outputs.
    #[error(
        "--report needs --output FILE, a regular file: the report is built from the events written (a device or FIFO such as /dev/null cannot be read back)"
    )]
    Report,
    /// The metrics address cannot be bound.
    #[error("--metrics {addr}: {source}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The writer's options from `[output]`: a replay's (`sweep_every` `None`: waits, drops
/// nothing) or a live sensor's.
pub fn writer_options(config: &Config, sweep_every: Option<std::time::Duration>) -> WriterOptions {
    let base = match sweep_every {
        Some(every) => WriterOptions::live(every),
        None => WriterOptions::default(),
    };
    WriterOptions {
        retry_timeout: std::time::Duration::from_secs(config.output.retry_timeout_s),
        shutdown_grace: std::time::Duration::from_secs(config.output.shutdown_grace_s),
        nice: config.output.nice,
        ..base
    }
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

/// Loads the configuration, applies `--baseline`, and checks the baseline file before any
/// packet is read (a bad one is a usage error naming the file and line).
pub fn load_settings(
    config: Option<&std::path::Path>,
    baseline: Option<&std::path::Path>,
) -> anyhow::Result<Config> {
    let config = with_baseline(Config::load_or_default(config)?, baseline);
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
///
/// An input that is missing or cannot be read is named, the others are still read, and the
/// run ends with exit code 1; only when no input can be read at all is it a usage error
/// (exit 2, nothing written).
pub fn replay(args: &ReplayArgs) -> anyhow::Result<ReplayOutcome> {
    let config = load_settings(args.config.as_deref(), args.baseline.as_deref())?;
    // Control-plane records are read before any packet (`--audit`).
    let audit = (!args.audit.is_empty())
        .then(|| crate::control::shell::load(&config, &args.audit))
        .transpose()?;
    let config = crate::control::shell::with_approved_streams(config, audit.as_ref());
    check_baseline_dir(&config)?;
    let expanded = expand_inputs_all(&args.inputs);
    let inputs = expanded.files;
    let mut input_errors: Vec<String> = expanded.errors.iter().map(ToString::to_string).collect();
    if inputs.is_empty() {
        if !input_errors.is_empty() {
            return Err(UsageError::Inputs(input_errors.join("; ")).into());
        }
        let dirs: Vec<String> = expanded
            .empty_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return Err(UsageError::Inputs(format!(
            "no capture files found in {} (a directory is searched {} levels deep for files \
             named *.{} or starting with a pcap or pcapng magic)",
            dirs.join(", "),
            MAX_DIRECTORY_DEPTH,
            CAPTURE_EXTENSIONS.join(", *.")
        ))
        .into());
    }
    report_skipped(&expanded.skipped, &expanded.empty_dirs);
    let outputs = config
        .outputs(&args.output)
        .map_err(UsageError::OutputSpec)?;
    check_output_is_not_an_input(&outputs, &inputs)?;
    check_stdout_open(&outputs)?;
    // The report is built by re-reading the events written (one code path with
    // `mirrorwatch report`), so one output must be a file: the first taking every event
    // type, else the first file.
    let report_events = match &args.report {
        Some(_) => Some(report_source(&outputs).ok_or(UsageError::Report)?),
        None => None,
    };
    let stop = stop_flag()?;
    crate::alert::set_origin(config.eve.origin(None));
    let writer = EventWriter::start(&outputs, writer_options(&config, None))?;
    let options = PipelineOptions {
        workers: args.workers.unwrap_or(0),
        flow_records: args.flows,
        drop_when_full: false,
    };
    let mut pipeline =
        Pipeline::start(&config, options, || writer.sink()).context("starting worker threads")?;
    let control = crate::control::shell::start(audit, &config, &mut writer.sink())?;
    if let Some(c) = &control {
        pipeline.set_control(Arc::clone(c));
    }
    let progress = progress_bar(args, &inputs);
    let started = Instant::now();
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
        // The name every event from this file's packets carries (`pcap_filename`).
        pipeline.start_input(Some(Arc::from(path.to_string_lossy().as_ref())));
        let mut n = 0u64;
        loop {
            // Matched by reference: moving the record out of the result read it back as wide
            // words just after the reader's narrow stores (a store-forwarding stall a packet).
            match &reader.next_packet() {
                Ok(Some(rec)) => {
                    if let Err(e) = pipeline.push(rec) {
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
    // What the workers last published, for a `stats` event even when `finish` fails (the
    // baseline could not be saved, a worker died): the counts are then those of the
    // workers' last report, and the failure is counted among the capture errors.
    let snapshot = pipeline.snapshot();
    let last_file = pipeline.input_file().cloned();
    let finish = pipeline.finish();
    let mut sink = writer.sink();
    // The closing events (stats, control-plane summary) name the last file read, as the
    // records flushed at the end do.
    sink.set_pcap_filename(last_file);
    if let Ok(report) = &finish {
        let (first, last) = (report.first_ts, report.last_ts);
        if let Err(e) = crate::control::shell::finish(control.as_ref(), first, last, &mut sink) {
            eprintln!("mirrorwatch: error: {e:#}");
        }
    }
    let stats = match &finish {
        Ok(report) => crate::stats::write_stats(&mut sink, report, input_errors.len() as u64),
        Err(_) => crate::stats::write_stats(&mut sink, &snapshot, input_errors.len() as u64 + 1),
    };
    drop(sink);
    // The writer's own error (a closed pipe, a full disk) is the cause of everything after
    // it, so it is reported first and whole.
    writer.finish()?;
    let report = finish?;
    stats?;
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
    if let (Some(html), Some(events)) = (&args.report, &report_events) {
        let names = inputs.iter().map(|p| p.display().to_string()).collect();
        let options = crate::report::ReportOptions::from_config(&config, names);
        // A report that cannot be written fails the run (exit 1) like an unreadable input,
        // after every event was written and without hiding the other errors.
        if let Err(e) = crate::report::write_report(events, html, options) {
            input_errors.push(e.to_string());
        }
    }
    Ok(ReplayOutcome {
        report,
        input_errors,
        interrupted,
    })
}

/// Says on stderr what a directory walk passed over: links loops, files seen twice and
/// trees too deep one by one, files that are not captures as a count with examples.
fn report_skipped(skipped: &[Skipped], empty_dirs: &[std::path::PathBuf]) {
    for dir in empty_dirs {
        eprintln!(
            "mirrorwatch: note: {}: no capture files in this directory",
            dir.display()
        );
    }
    let mut not_captures = Vec::new();
    for s in skipped {
        match s.reason {
            SkipReason::NotACapture => not_captures.push(s.path.display().to_string()),
            reason => eprintln!("mirrorwatch: note: skipped {}: {reason}", s.path.display()),
        }
    }
    if !not_captures.is_empty() {
        let examples: Vec<&str> = not_captures.iter().take(3).map(String::as_str).collect();
        eprintln!(
            "mirrorwatch: note: skipped {} file(s) that are not captures by extension or first \
             bytes ({}{})",
            not_captures.len(),
            examples.join(", "),
            if not_captures.len() > examples.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
}

/// The events file `--report` reads: the first file output taking every event type, else
/// the first file output.
fn report_source(outputs: &[OutputSpec]) -> Option<std::path::PathBuf> {
    let file = |o: &OutputSpec| match &o.kind {
        OutputKind::File(p) => Some(p.clone()),
        _ => None,
    };
    // A device or FIFO (`-o /dev/null`) cannot be read back: the report would be empty.
    let file = |o: &OutputSpec| {
        file(o).filter(|p| std::fs::metadata(p).map_or(true, |m| m.file_type().is_file()))
    };
    outputs
        .iter()
        .filter(|o| o.types.is_empty())
        .find_map(file)
        .or_else(|| outputs.iter().find_map(file))
}

/// Refuses an output file that is one of the inputs: opening it would truncate the capture
/// before it is read.
fn check_output_is_not_an_input(
    outputs: &[OutputSpec],
    inputs: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for output in outputs {
        let OutputKind::File(path) = &output.kind else {
            continue;
        };
        let Ok(out) = std::fs::metadata(path) else {
            continue;
        };
        if !out.is_file() {
            continue;
        }
        for input in inputs {
            if std::fs::metadata(input).is_ok_and(|m| m.dev() == out.dev() && m.ino() == out.ino())
            {
                return Err(UsageError::Output(format!(
                    "--output {} is the input {}; writing there would destroy the capture \
                     before it is read",
                    output.text,
                    input.display()
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// Refuses to write events to a standard output that was closed when the program started
/// (`>&-`): Rust's runtime then points descriptor 1 at `/dev/null`, read-write, and every
/// event would vanish with exit code 0. A `> /dev/null` of the shell opens it write-only, so
/// it is still accepted.
pub fn check_stdout_open(outputs: &[OutputSpec]) -> anyhow::Result<()> {
    if !outputs.iter().any(|o| matches!(o.kind, OutputKind::Stdout)) {
        return Ok(());
    }
    let target = std::fs::read_link("/proc/self/fd/1").unwrap_or_default();
    let flags = std::fs::read_to_string("/proc/self/fdinfo/1").unwrap_or_default();
    let read_write = flags
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .is_some_and(|f| f & 0o3 == 0o2);
    if target == std::path::Path::new("/dev/null") && read_write {
        return Err(UsageError::Output(
            "standard output is closed; give --output FILE or redirect it".to_owned(),
        )
        .into());
    }
    Ok(())
}

/// Checks, before any packet is read, that the baseline file can be written where it is
/// saved at the end: its directory exists and takes a new file (a temp file is created
/// there and removed).
pub fn check_baseline_dir(config: &Config) -> anyhow::Result<()> {
    if config.beacon.baseline_file.is_empty() || !config.beacon.enabled {
        return Ok(());
    }
    let path = std::path::Path::new(&config.beacon.baseline_file);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let fail = |why: String| -> anyhow::Error {
        UsageError::Baseline(format!(
            "beacon baseline {}: cannot be saved in {}: {why}",
            path.display(),
            dir.display()
        ))
        .into()
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(fail("not a directory".to_owned())),
        Err(e) => return Err(fail(e.to_string())),
    }
    tempfile::Builder::new()
        .prefix(".mirrorwatch-check.")
        .tempfile_in(dir)
        .map(drop)
        // The kind only: tempfile's message names its random temp path.
        .map_err(|e| fail(e.kind().to_string()))
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
