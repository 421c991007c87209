//! `cargo xtask`: podlab's harness. This file only parses the command line and dispatches;
//! each command lives in its own file with one `run` entry.

use std::process::ExitCode;

mod bench;
mod pause_build;
// The runner that reads every scenario field is being written; until it lands, unread fields are expected.
#[allow(dead_code, unused_imports)]
mod scenario;

const USAGE: &str = "\
Usage: cargo xtask <command> [options]

Commands:
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
        "bench" => bench::run(options),
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
