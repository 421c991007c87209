//! What pause prints, and its exit codes.

use nix::sys::signal::Signal;

use pid1::{Launch, STEP_TIMEOUT, launch};

use crate::pause_under_test;

pub const WARNING: &str = "Warning: pause should be the first process\n";
pub const TERMINATED: &str = "Shutting down, got signal: Terminated\n";
pub const INTERRUPTED: &str = "Shutting down, got signal: Interrupt\n";

pub fn version_flag_in_any_case_and_position() -> Result<(), String> {
    for arguments in [vec!["-v"], vec!["-V"], vec!["first", "-v"], vec!["-x", "-V", "last"]] {
        let mut pause = launch(&Launch {
            arguments: arguments.iter().map(|argument| argument.to_string()).collect(),
            ..Launch::as_plain_child(pause_under_test())
        })?;
        let ended = pause.wait_for_exit(STEP_TIMEOUT)?;
        // Our binary prints exactly this; another implementation (PAUSE_UNDER_TEST) must print one line of its own.
        let expected_stdout = match std::env::var("PAUSE_UNDER_TEST") {
            Err(_) => format!("pause (podlab) {}\n", env!("CARGO_PKG_VERSION")),
            Ok(_) if ended.stdout.ends_with('\n') && ended.stdout.lines().count() == 1 => ended.stdout.clone(),
            Ok(_) => "one version line".to_string(),
        };
        ended.expect(0, &expected_stdout, "").map_err(|error| format!("with arguments {arguments:?}:\n{error}"))?;
    }
    Ok(())
}

/// `-vv`, `v` and `--v` are not `-v`: pause must start and sleep as usual.
pub fn similar_arguments_are_not_the_version_flag() -> Result<(), String> {
    for arguments in [vec!["-vv"], vec!["v"], vec!["--v"], vec!["-"]] {
        let pause = launch(&Launch {
            arguments: arguments.iter().map(|argument| argument.to_string()).collect(),
            ..Launch::as_pid_1(pause_under_test())
        })?;
        pause.wait_until_sleeping().map_err(|error| format!("with arguments {arguments:?}: {error}"))?;
    }
    Ok(())
}

pub fn sigterm_as_pid_1() -> Result<(), String> {
    shuts_down_on(Signal::SIGTERM, TERMINATED)
}

pub fn sigint_as_pid_1() -> Result<(), String> {
    shuts_down_on(Signal::SIGINT, INTERRUPTED)
}

fn shuts_down_on(signal: Signal, message: &str) -> Result<(), String> {
    let mut pause = launch(&Launch::as_pid_1(pause_under_test()))?;
    pause.wait_until_sleeping()?;
    pause.signal(signal)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", message)
}

pub fn warns_when_not_pid_1_and_carries_on() -> Result<(), String> {
    let mut pause = launch(&Launch::as_plain_child(pause_under_test()))?;
    pause.wait_until_sleeping()?;
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", &format!("{WARNING}{TERMINATED}"))
}
