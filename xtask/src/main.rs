//! `cargo xtask`: podlab's harness. This file only parses the command line and dispatches;
//! each command lives in its own file with one `run` entry.

use std::process::ExitCode;

mod bench;
mod clean;
mod command;
mod doctor;
mod engine;
mod guest_agent;
mod images;
mod interrupt;
mod pause_build;
mod pod;
mod progress;
mod report;
mod runner;
mod scenario;
mod setup;
mod side_by_side;
mod terminal;
mod test;

const USAGE: &str = "\
Usage: cargo xtask <command> [options]

Commands:
  test     run the scenarios (the pause/nginx/ghost pod) against pause, in a throwaway VM with Docker
  pod      create the seed pod and open a shell beside its Docker daemon (torn down on exit)
  clean    remove what a killed run left behind (guests, daemons, temp dirs, bridges)
  doctor   say which prerequisites of `test` are missing and how to install them
  bench    measure pause (and peers given with --vs): size, idle memory, reaping, SIGTERM latency
  help     print this message

Run `cargo xtask <command> --help` for a command's options.";

/// Exit code when the harness itself could not do its job (bad arguments, missing
/// prerequisite), as opposed to a measured or tested failure.
const EXIT_HARNESS_ERROR: u8 = 2;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, options)) = arguments.split_first() else {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    };
    let outcome = match command.as_str() {
        "test" => match test::run(options) {
            Ok(code) => return ExitCode::from(code),
            Err(error) => Err(error),
        },
        "bench" => bench::run(options),
        "doctor" => doctor::run(options),
        "pod" => pod::run(options),
        "clean" => clean::run(options),
        // Not listed: the guest runs it (vm/guest-init.sh), a user has no reason to.
        "guest-agent" => guest_agent::run(options),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        unknown => Err(anyhow::anyhow!("unknown command `{unknown}`\n\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_HARNESS_ERROR)
        }
    }
}
