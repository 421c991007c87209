//! The pause contract, tested from the outside on the real binary and the real kernel.
//!
//! Each trial starts `pause` (as PID 1 of a fresh PID namespace where it matters) and
//! checks what a user of it would see: output, exit status, /proc. Where this process
//! cannot make a PID namespace, those trials are ignored with the reason printed.

use libtest_mimic::{Arguments, Failed, Trial};

// -v, the not-PID-1 warning, and the shutdown messages.
mod messages;
// Signals: pending at start, inherited mask and ignores, the ones that must not stop it, SIGSTOP and
// SIGCONT, broken stderr.
mod signals;
// Reaping: orphan storms as PID 1 and as a subreaper, stopped children.
mod reaping;
// Size, memory, and CPU while idle.
mod footprint;

/// The binary under test: this package's pause, or the one named by `PAUSE_UNDER_TEST`
/// (to hold another implementation to the same contract).
fn pause_under_test() -> String {
    std::env::var("PAUSE_UNDER_TEST").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pause").to_string())
}

type Check = fn() -> Result<(), String>;

/// (name, needs a PID namespace, check)
const CHECKS: &[(&str, bool, Check)] = &[
    ("messages::version_flag_in_any_case_and_position", false, messages::version_flag_in_any_case_and_position),
    (
        "messages::similar_arguments_are_not_the_version_flag",
        true,
        messages::similar_arguments_are_not_the_version_flag,
    ),
    ("messages::sigterm_as_pid_1", true, messages::sigterm_as_pid_1),
    ("messages::sigint_as_pid_1", true, messages::sigint_as_pid_1),
    ("messages::warns_when_not_pid_1_and_carries_on", false, messages::warns_when_not_pid_1_and_carries_on),
    ("signals::sigterm_pending_at_start", true, signals::sigterm_pending_at_start),
    ("signals::sigterm_sent_during_start_up", true, signals::sigterm_sent_during_start_up),
    ("signals::inherited_ignores_and_mask", true, signals::inherited_ignores_and_mask),
    ("signals::other_signals_leave_it_running_and_silent", true, signals::other_signals_leave_it_running_and_silent),
    ("signals::stop_and_continue_leave_it_waiting", true, signals::stop_and_continue_leave_it_waiting),
    ("signals::stderr_closed", true, signals::stderr_closed),
    ("signals::stderr_broken_pipe", true, signals::stderr_broken_pipe),
    ("signals::stderr_full_device", true, signals::stderr_full_device),
    ("reaping::orphan_storm_as_pid_1", true, reaping::orphan_storm_as_pid_1),
    ("reaping::orphan_storm_as_subreaper", false, reaping::orphan_storm_as_subreaper),
    ("reaping::stopped_child_does_not_wake_it", true, reaping::stopped_child_does_not_wake_it),
    ("footprint::static_binary_without_interpreter", false, footprint::static_binary_without_interpreter),
    ("footprint::idle_pid_1_uses_no_cpu_and_little_memory", true, footprint::idle_pid_1_uses_no_cpu_and_little_memory),
];

fn main() -> std::process::ExitCode {
    let arguments = Arguments::from_args();
    let namespace_problem = pid1::pid_namespaces_available("/bin/true").err();
    if let Some(reason) = &namespace_problem {
        eprintln!("note: trials that run pause as PID 1 are ignored: {reason}");
    }
    let trials = CHECKS
        .iter()
        .map(|&(name, needs_pid_namespace, check)| {
            Trial::test(name, move || check().map_err(Failed::from))
                .with_ignored_flag(needs_pid_namespace && namespace_problem.is_some())
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}
