//! `cargo xtask`: podlab's harness. This file only parses the command line (one clap
//! definition for every command) and dispatches; each command lives in `commands/` with one
//! `run` entry.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cancel;
mod command;
mod commands;
mod host;
mod images;
mod lab;
mod names;
mod pause_build;
mod pod;
mod progress;
mod report;
mod runner;
mod runtime;
mod scenario;
mod side_by_side;
mod terminal;
mod unix_grpc;
mod unix_http;

/// Exit code when the harness itself could not do its job (bad arguments, missing
/// prerequisite), as opposed to a measured or tested failure. clap exits with it too.
const EXIT_HARNESS_ERROR: u8 = 2;

/// podlab's harness: the regression lab for the Kubernetes pod sandbox (pause and the pod around it)
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", disable_help_subcommand = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scenarios (the pause/nginx/ghost pod) against pause, in a throwaway VM with Docker
    Test(commands::test::Options),
    /// Create the seed pod and open a shell beside its runtime (torn down on exit)
    Pod(commands::pod::Options),
    /// Remove what a killed run left behind (guests, daemons, temp dirs, bridges)
    Clean,
    /// Say which prerequisites of `test` are missing and how to install them
    Doctor,
    /// Measure pause (and peers given with --vs): size, idle memory, reaping, SIGTERM latency
    Bench(commands::bench::Options),
    /// Run the whole suite N times and say which scenarios failed in how many runs (false alarms)
    Soak(commands::soak::Options),
    /// Run the suite against several pauses and print which promises each keeps (scenario x pause)
    Compare(commands::compare::Options),
    /// The harness's agent in the throwaway VM (the guest's init starts it)
    #[command(hide = true)]
    GuestAgent,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are "errors" that print to stdout and exit 0.
            let _ = error.print();
            return ExitCode::from(error.exit_code() as u8);
        }
    };
    let outcome = match cli.command {
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            return ExitCode::SUCCESS;
        }
        Some(Command::Test(options)) => match commands::test::run(options) {
            Ok(code) => return ExitCode::from(code),
            Err(error) => Err(error),
        },
        Some(Command::Compare(options)) => match commands::compare::run(options) {
            Ok(code) => return ExitCode::from(code),
            Err(error) => Err(error),
        },
        Some(Command::Soak(options)) => match commands::soak::run(options) {
            Ok(code) => return ExitCode::from(code),
            Err(error) => Err(error),
        },
        Some(Command::Pod(options)) => commands::pod::run(options),
        Some(Command::Clean) => commands::clean::run(),
        Some(Command::Doctor) => commands::doctor::run(),
        Some(Command::Bench(options)) => commands::bench::run(options),
        Some(Command::GuestAgent) => host::vm::agent::run(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_HARNESS_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own consistency checks over every command and option.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
