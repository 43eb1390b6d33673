//! The `mirrorwatch` binary: parse arguments, run, map errors to exit codes.
//!
//! Exit codes: 0 success (also a live sensor stopped by SIGINT/SIGTERM after flushing); 1 a
//! run error (output failed, an input could not be read completely, capture failed); 2 usage
//! or configuration error (before any packet is read: bad configuration, missing input or
//! interface, no capture privileges, bad BPF filter, metrics address in use).

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
                for s in mirrorwatch::generate::scenarios() {
                    println!("{:<24} {}", s.name, s.description);
                }
                // Scale scenarios of `mirrorwatch bench`: generated on demand, no pcaps/ case.
                for s in mirrorwatch::generate::bench_scenarios::SCENARIOS {
                    let name = format!("{}[:N]", s.info.name);
                    println!(
                        "{name:<24} {} (N {}, default {})",
                        s.info.description, s.scale_unit, s.default_scale
                    );
                }
                return ExitCode::SUCCESS;
            }
            let (Some(name), Some(out)) = (args.scenario.as_deref(), args.output.as_deref()) else {
                eprintln!("mirrorwatch: error: a scenario and --output are required");
                return ExitCode::from(2);
            };
            let written = match mirrorwatch::generate::bench_scenarios::BenchRequest::parse(name) {
                Some(Ok(request)) => {
                    mirrorwatch::generate::bench_scenarios::write(&request, args.seed, out)
                }
                Some(Err(e)) => Err(e),
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
                Err(e) => {
                    eprintln!("mirrorwatch: error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench(args) => match mirrorwatch::bench::run(&args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mirrorwatch: error: {e:#}");
                let usage = e
                    .downcast_ref::<mirrorwatch::config::ConfigError>()
                    .is_some();
                ExitCode::from(if usage { 2 } else { 1 })
            }
        },
        Command::Report(args) => match mirrorwatch::report::run(&args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => run_error(&e),
        },
        Command::Config(ConfigCommand::Default) => {
            print!("{}", mirrorwatch::config::DEFAULT_CONFIG_TOML);
            ExitCode::SUCCESS
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
    eprintln!("mirrorwatch: error: {e:#}");
    // Bad configuration or arguments are found before any packet is read.
    let usage = e
        .downcast_ref::<mirrorwatch::config::ConfigError>()
        .is_some()
        || e.downcast_ref::<mirrorwatch::run::UsageError>().is_some();
    ExitCode::from(if usage { 2 } else { 1 })
}
