//! Reaping: every exited child goes, however many exit at once; stopped children do not wake pause.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use pid1::{Family, Launch, Running, STEP_TIMEOUT, launch, proc};

use crate::messages::{TERMINATED, WARNING};
use crate::pause_under_test;

const STORM_SIZE: usize = 1_000;

pub fn orphan_storm_as_pid_1() -> Result<(), String> {
    let family = Family::Orphans { count: STORM_SIZE };
    let mut pause = launch(&Launch { family, ..Launch::as_pid_1(pause_under_test()) })?;
    orphan_storm(&mut pause)?;
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", TERMINATED)
}

/// Not PID 1, pause is still the reaper of its descendants' orphans: it is a subreaper.
pub fn orphan_storm_as_subreaper() -> Result<(), String> {
    let family = Family::Orphans { count: STORM_SIZE };
    let mut pause = launch(&Launch { family, ..Launch::as_plain_child(pause_under_test()) })?;
    orphan_storm(&mut pause)?;
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", &format!("{WARNING}{TERMINATED}"))
}

/// Orphans the grandchildren (they must be re-parented to pause), then lets them all
/// exit at once: within a second pause must have reaped every one.
fn orphan_storm(pause: &mut Running) -> Result<(), String> {
    pause.wait_until_sleeping()?;
    pause.orphan_the_grandchildren();
    if !proc::eventually(STEP_TIMEOUT, || proc::children(pause.pid).len() == STORM_SIZE) {
        let found = proc::children(pause.pid).len();
        return Err(format!("expected {STORM_SIZE} orphans re-parented to pause, found {found} children"));
    }
    pause.release_the_orphans();
    all_children_reaped_within_a_second(pause)
        .map_err(|error| format!("after {STORM_SIZE} orphans exited together: {error}"))
}

/// Fails, counting what is left and how much of it is zombies, unless every child of
/// pause is gone within a second.
pub fn all_children_reaped_within_a_second(pause: &Running) -> Result<(), String> {
    if proc::eventually(Duration::from_secs(1), || proc::children(pause.pid).is_empty()) {
        return Ok(());
    }
    let left = proc::children(pause.pid);
    let zombies = left.iter().filter(|pid| proc::state(**pid) == Some('Z')).count();
    Err(format!("expected every child reaped within a second, {} are left ({zombies} of them zombies)", left.len()))
}

/// SA_NOCLDSTOP: a child that stops or continues sends no SIGCHLD, so pause is not
/// scheduled at all; when the child dies, pause reaps it.
pub fn stopped_child_does_not_wake_it() -> Result<(), String> {
    let mut pause = launch(&Launch { family: Family::SleepingChild, ..Launch::as_pid_1(pause_under_test()) })?;
    pause.wait_until_sleeping()?;
    let child = *proc::children(pause.pid).first().ok_or("the sleeping child is missing")?;
    let switches_before = proc::context_switches(pause.pid).ok_or("cannot read context switches")?;
    for (signal, state) in [(Signal::SIGSTOP, 'T'), (Signal::SIGCONT, 'S')] {
        kill(child, signal).map_err(|error| error.to_string())?;
        if !proc::eventually(STEP_TIMEOUT, || proc::state(child) == Some(state)) {
            return Err(format!("the child did not reach state {state} after {signal}"));
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let switches_after = proc::context_switches(pause.pid).ok_or("cannot read context switches")?;
    if switches_after != switches_before {
        return Err(format!(
            "expected pause not to be woken by a child stopping and continuing, but it was scheduled {} times",
            switches_after - switches_before
        ));
    }
    kill(child, Signal::SIGKILL).map_err(|error| error.to_string())?;
    all_children_reaped_within_a_second(&pause)
        .map_err(|error| format!("after the sleeping child was killed: {error}"))?;
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", TERMINATED)
}
