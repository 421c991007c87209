//! Signals: the ones that end pause whatever state it inherits, and the ones that must not.

use nix::sys::signal::Signal;

use pid1::{Family, Launch, STEP_TIMEOUT, Stderr, launch, proc};

use crate::messages::TERMINATED;
use crate::pause_under_test;

/// A SIGTERM that is already pending when pause starts is not lost: pause.c would
/// never see it (it installs handlers but never unblocks an inherited mask).
pub fn sigterm_pending_at_start() -> Result<(), String> {
    let mut pause = launch(&Launch { sigterm_pending_at_exec: true, ..Launch::as_pid_1(pause_under_test()) })?;
    let ended = pause
        .wait_for_exit(STEP_TIMEOUT)
        .map_err(|error| format!("a SIGTERM pending at start must end pause: {error}"))?;
    ended.expect(0, "", TERMINATED)
}

/// A SIGTERM sent the moment exec has happened lands in pause's first microseconds,
/// before or while it sets up. The parent blocks signals before exec, as runtimes do:
/// the kernel drops a signal sent to a namespace's init while it is unblocked and at its
/// default action, and that window (exec to pause's first syscall) no binary can close.
pub fn sigterm_sent_during_start_up() -> Result<(), String> {
    for attempt in 0..20 {
        let mut pause = launch(&Launch { inherit_blocked_signals: true, ..Launch::as_pid_1(pause_under_test()) })?;
        pause.signal(Signal::SIGTERM)?;
        let ended = pause
            .wait_for_exit(STEP_TIMEOUT)
            .map_err(|error| format!("a SIGTERM sent during start-up must end pause (attempt {attempt}): {error}"))?;
        ended.expect(0, "", TERMINATED).map_err(|error| format!("attempt {attempt}: {error}"))?;
    }
    Ok(())
}

/// A parent that blocked every signal and ignored TERM, INT and CHLD before exec
/// does not stop pause from reaping or from shutting down.
pub fn inherited_ignores_and_mask() -> Result<(), String> {
    const TERM_INT_CHLD: u64 = 1 << (15 - 1) | 1 << (2 - 1) | 1 << (17 - 1);
    for shutdown in [Signal::SIGTERM, Signal::SIGINT] {
        let mut pause = launch(&Launch {
            inherit_blocked_signals: true,
            inherit_ignored_signals: true,
            family: Family::Orphans { count: 50 },
            ..Launch::as_pid_1(pause_under_test())
        })?;
        pause.wait_until_sleeping()?;
        let ignored = proc::status_signal_set(pause.pid, "SigIgn").ok_or("cannot read SigIgn")?;
        if ignored & TERM_INT_CHLD != 0 {
            return Err(format!(
                "pause kept an inherited SIG_IGN: SigIgn is {ignored:016x}, expected TERM, INT and CHLD at their default"
            ));
        }
        pause.orphan_the_grandchildren();
        pause.release_the_orphans();
        crate::reaping::all_children_reaped_within_a_second(&pause)
            .map_err(|error| format!("with an inherited mask and inherited SIG_IGN: {error}"))?;
        pause.signal(shutdown)?;
        let message = if shutdown == Signal::SIGTERM { TERMINATED } else { crate::messages::INTERRUPTED };
        pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", message)?;
    }
    Ok(())
}

/// Every catchable signal but TERM, INT and CHLD is taken and dropped, silently.
pub fn other_signals_leave_it_running_and_silent() -> Result<(), String> {
    use Signal::*;
    let mut pause = launch(&Launch::as_pid_1(pause_under_test()))?;
    pause.wait_until_sleeping()?;
    for signal in [
        SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE, SIGWINCH, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG,
        SIGPWR,
    ] {
        pause.signal(signal)?;
        // Once it sleeps in rt_sigtimedwait again with nothing pending, the signal was taken.
        let taken = proc::eventually(STEP_TIMEOUT, || {
            proc::status_signal_set(pause.pid, "SigPnd") == Some(0)
                && proc::status_signal_set(pause.pid, "ShdPnd") == Some(0)
        });
        pause.wait_until_sleeping()?;
        if !taken || !pause.is_running() {
            return Err(format!(
                "after {signal}: expected pause still running, it {}",
                if pause.is_running() { "kept the signal pending" } else { "ended" }
            ));
        }
        let stderr = pause.stderr_so_far();
        if !stderr.is_empty() {
            return Err(format!("after {signal}: expected no output, got stderr {stderr:?}"));
        }
    }
    pause.signal(SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", TERMINATED)
}

/// SIGSTOP then SIGCONT (a debugger, a freezer, `docker pause`) end the wait early: the kernel
/// returns EINTR from rt_sigtimedwait once the process continues. That is a spurious wake-up,
/// not the end of the loop: pause sleeps again and still answers SIGTERM.
pub fn stop_and_continue_leave_it_waiting() -> Result<(), String> {
    let mut pause = launch(&Launch::as_pid_1(pause_under_test()))?;
    pause.wait_until_sleeping()?;
    pause.signal(Signal::SIGSTOP)?;
    if !proc::eventually(STEP_TIMEOUT, || proc::state(pause.pid) == Some('T')) {
        return Err(format!("expected pause stopped after SIGSTOP, its state is {:?}", proc::state(pause.pid)));
    }
    pause.signal(Signal::SIGCONT)?;
    if let Err(error) = pause.wait_until_sleeping() {
        // An ended pause also says how it ended (a spurious EINTR taken for the end: exit 42).
        let ended = if pause.is_running() { None } else { Some(pause.wait_for_exit(STEP_TIMEOUT)?.status) };
        return Err(format!("after SIGSTOP and SIGCONT: {error} ({ended:?})"));
    }
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", TERMINATED)
}

pub fn stderr_closed() -> Result<(), String> {
    shuts_down_cleanly_with(Stderr::Closed)
}

pub fn stderr_broken_pipe() -> Result<(), String> {
    shuts_down_cleanly_with(Stderr::BrokenPipe)
}

pub fn stderr_full_device() -> Result<(), String> {
    shuts_down_cleanly_with(Stderr::Full)
}

/// The message cannot be written, yet pause still exits 0 on SIGTERM, and is not
/// killed by SIGPIPE.
fn shuts_down_cleanly_with(stderr: Stderr) -> Result<(), String> {
    let mut pause = launch(&Launch { stderr, ..Launch::as_pid_1(pause_under_test()) })?;
    pause.wait_until_sleeping()?;
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", "").map_err(|error| format!("with stderr {stderr:?}: {error}"))
}
