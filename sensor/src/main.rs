//! The `mirrorwatch` binary: parse arguments, run, map errors to exit codes.
//!
//! Exit codes: 0 success (also a live sensor stopped by SIGINT/SIGTERM after flushing); 1 a
//! run error (output failed, an input missing or not read completely while the others were
//! read, capture failed, stdout full); 2 usage or configuration error (before any packet is
//! read: bad configuration or argument, no readable input, unknown interface, scenario or
//! user, no capture privileges, bad BPF filter, metrics address in use, an output that is an
//! input or a closed stdout, a baseline that cannot be saved).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use mirrorwatch::cli::{Cli, Command, ConfigCommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => match mirrorwatch::run::replay(&args) {
            Ok(outcome) => {
                for e in &outcome.input_errors {
                    eprintln!("mirrorwatch: error: {e}");
                }
                if outcome.interrupted {
                    eprintln!("mirrorwatch: interrupted; everything seen so far was written");
                }
                if outcome.input_errors.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => run_error(&e),
        },
        Command::Live(args) => match mirrorwatch::live::live(&args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => run_error(&e),
        },
        Command::Generate(args) => {
            if args.list {
                let mut text = String::new();
                for s in mirrorwatch::generate::scenarios() {
                    let _ = writeln!(text, "{:<24} {}", s.name, s.description);
                }
                // Scale scenarios of `mirrorwatch bench`: generated on demand, no pcaps/ case.
                for s in mirrorwatch::generate::bench_scenarios::SCENARIOS {
                    let name = format!("{}[:N]", s.info.name);
                    let _ = writeln!(
                        text,
                        "{name:<24} {} (N {}, default {})",
                        s.info.description, s.scale_unit, s.default_scale
                    );
                }
                return print_stdout(&text);
            }
            let (Some(name), Some(out)) = (args.scenario.as_deref(), args.output.as_deref()) else {
                eprintln!("mirrorwatch: error: a scenario and --output are required");
                return ExitCode::from(2);
            };
            let written = match mirrorwatch::generate::bench_scenarios::BenchRequest::parse(name) {
                Some(Ok(request)) => {
                    mirrorwatch::generate::bench_scenarios::write(&request, args.seed, out)
                }
                Some(Err(e)) => {
                    // A bad scale (`bench-flood64:abc`) is a usage error.
                    eprintln!("mirrorwatch: error: {e}");
                    return ExitCode::from(2);
                }
                None => mirrorwatch::generate::generate(name, args.seed, out),
            };
            match written {
                Ok(summary) => {
                    eprintln!(
                        "mirrorwatch: wrote {} packets of {name} (seed {}) to {}",
                        summary.packets,
                        args.seed,
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e @ mirrorwatch::generate::GenerateError::UnknownScenario { .. }) => {
                    eprintln!(
                        "mirrorwatch: error: {e} (`mirrorwatch generate --list` shows the \
                         scenarios)"
                    );
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("mirrorwatch: error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench(args) => match mirrorwatch::bench::run(&args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => run_error(&e),
        },
        Command::Audit(args) => match mirrorwatch::control::shell::audit(&args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => run_error(&e),
        },
        Command::Report(args) => match mirrorwatch::report::run(&args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => run_error(&e),
        },
        Command::Config(ConfigCommand::Default) => {
            print_stdout(mirrorwatch::config::DEFAULT_CONFIG_TOML)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            match mirrorwatch::config::Config::load(&file) {
                Ok(_) => {
                    eprintln!("mirrorwatch: {} is valid", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mirrorwatch: error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Prints a run's error chain and picks the exit code.
fn run_error(e: &anyhow::Error) -> ExitCode {
    eprintln!("mirrorwatch: error: {}", chain_text(e));
    // Bad configuration or arguments are found before any packet is read.
    let usage = e.chain().any(|cause| {
        cause.is::<mirrorwatch::config::ConfigError>()
            || cause.is::<mirrorwatch::run::UsageError>()
            || cause.is::<mirrorwatch::bench::BenchUsageError>()
    });
    ExitCode::from(if usage { 2 } else { 1 })
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message
/// already holds (our errors print their OS error, which is also their `source`: without
/// this, "Is a directory (os error 21): Is a directory (os error 21)").
fn chain_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Writes `text` to standard output; a write error (a full disk, a closed pipe) is an error
/// with exit code 1, not a panic.
fn print_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mirrorwatch: error: writing to standard output: {e}");
            ExitCode::from(1)
        }
    }
}
