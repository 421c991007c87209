//! Reaping: every exited child goes, however many exit at once; stopped children do not wake pause.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};

use crate::launch::{Family, Launch, Running, STEP_TIMEOUT, launch};
use crate::messages::{TERMINATED, WARNING};
use crate::proc;

const STORM_SIZE: usize = 1_000;

pub fn orphan_storm_as_pid_1() -> Result<(), String> {
    let mut pause = launch(&Launch { family: Family::Orphans { count: STORM_SIZE }, ..Launch::as_pid_1() })?;
    orphan_storm(&mut pause)?;
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", TERMINATED)
}

/// Not PID 1, pause is still the reaper of its descendants' orphans: it is a subreaper.
pub fn orphan_storm_as_subreaper() -> Result<(), String> {
    let mut pause = launch(&Launch { family: Family::Orphans { count: STORM_SIZE }, ..Launch::as_plain_child() })?;
    orphan_storm(&mut pause)?;
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", &format!("{WARNING}{TERMINATED}"))
}

/// Orphans the grandchildren (they must be re-parented to pause), then lets them all
/// exit at once: within a second pause must have reaped every one.
fn orphan_storm(pause: &mut Running) -> Result<(), String> {
    pause.wait_until_idle()?;
    pause.orphan_the_grandchildren();
    let re_parented = proc::eventually(STEP_TIMEOUT, || proc::children(pause.pid).len() == STORM_SIZE);
    if !re_parented {
        return Err(format!(
            "expected {STORM_SIZE} orphans re-parented to pause, found {} children",
            proc::children(pause.pid).len()
        ));
    }
    pause.release_the_orphans();
    if !proc::eventually(Duration::from_secs(1), || proc::children(pause.pid).is_empty()) {
        let left = proc::children(pause.pid);
        let zombies = left.iter().filter(|pid| proc::state(**pid) == Some('Z')).count();
        return Err(format!(
            "expected no child left a second after {STORM_SIZE} orphans exited, found {} ({zombies} zombies)",
            left.len()
        ));
    }
    Ok(())
}

/// SA_NOCLDSTOP: a child that stops or continues sends no SIGCHLD, so pause is not
/// scheduled at all; when the child dies, pause reaps it.
pub fn stopped_child_does_not_wake_it() -> Result<(), String> {
    let mut pause = launch(&Launch { family: Family::SleepingChild, ..Launch::as_pid_1() })?;
    pause.wait_until_idle()?;
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
            "expected pause not to be woken by a child stopping and continuing, \
             but it was scheduled {} times",
            switches_after - switches_before
        ));
    }
    kill(child, Signal::SIGKILL).map_err(|error| error.to_string())?;
    if !proc::eventually(Duration::from_secs(1), || proc::children(pause.pid).is_empty()) {
        return Err("expected the killed child to be reaped within a second".into());
    }
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", TERMINATED)
}
