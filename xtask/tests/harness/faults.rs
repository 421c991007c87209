//! The faults a node sees, on this machine: an app that ignores SIGTERM, pause killed under its
//! apps, the runtime's daemon killed mid-scenario, an exec that outlives its container.

use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use crate::support::{Action, fixture_scenarios, nothing_left, run_xtask, run_xtask_with};

/// An app container that ignores SIGTERM: its stop lasts the whole grace period and ends in
/// SIGKILL; the step that expected a clean exit says both, and the pod still goes.
pub fn app_ignoring_sigterm() -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios");
    let run = run_xtask(&["test", "--on", "host", "--scenarios", &scenarios, "scenarios/app-ignores-sigterm"], None)?;
    let said = ["the stop took", "of a 3 s grace period", "it exited with 137 (128 + 9: killed by SIGKILL)"];
    if run.status.code() != Some(101) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// pause killed with SIGKILL while its app runs: the pod's PID namespace dies with it, and the
/// step that waited for the app says how each container of the pod ended.
pub fn pause_killed_under_its_apps() -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios");
    let trigger = ("scenarios/sandbox-killed: ", Action::KillPause(Duration::from_secs(3)));
    let run = run_xtask_with(
        &["test", "--on", "host", "--scenarios", &scenarios, "scenarios/sandbox-killed"],
        None,
        Some(trigger),
    )?;
    let said = [
        "expected app to exit with code 0, it exited with 137 (128 + 9: killed by SIGKILL)",
        "the pod now: pause exited 137 (128 + 9: killed by SIGKILL), app exited 137",
    ];
    if run.status.code() != Some(101) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// The runtime's daemon killed with SIGKILL while a scenario's steps run, its pod up (dockerd,
/// or the containerd under it): the run ends within a deadline, a failure says what died, and
/// nothing is left, not even the container processes that the dead daemon could not stop.
pub fn daemon_killed_mid_scenario(daemon: &'static str) -> Result<(), Failed> {
    let started = Instant::now();
    // The pod is up after about 0.5 s on this host; its first step waits 8 s without the daemon.
    let trigger = ("scenarios/daemon-needed-later: ", Action::KillDaemon(daemon, Duration::from_millis(2000)));
    let scenarios = fixture_scenarios("scenarios");
    let arguments = ["test", "--on", "host", "--scenarios", &scenarios, "scenarios/daemon-needed-later", "--exact"];
    let run = run_xtask_with(&arguments, None, Some(trigger))?;
    let took = started.elapsed();
    let said_why = run.output.lines().any(|line| line.contains(daemon) && line.contains("died during the run"));
    let verdict = match run.status.code() {
        // dockerd restarts a containerd it started; the scenario may then pass.
        Some(0) => daemon == "containerd",
        Some(101) => said_why,
        _ => false,
    };
    if !verdict || took > Duration::from_secs(150) {
        return Err(format!("after {daemon} was killed: {:?} in {took:?}\n{}", run.status, run.output).into());
    }
    eprintln!("{daemon} killed: exit {:?} after {:.1} s", run.status.code(), took.as_secs_f64());
    nothing_left(run.pid)
}

/// An exec that kills its own container and outlives it: dockerd keeps the exec's output
/// open and forgets its exit code (its log says `exit event ... no such container`). The step
/// ends within seconds, not at its 60 s deadline, and says what happened.
pub fn exec_outliving_its_container(on: &str) -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios");
    let run =
        run_xtask(&["test", "--on", on, "--scenarios", &scenarios, "scenarios/exec-outlives-its-container"], None)?;
    let said = "dockerd gave no exit code and did not close its output (its container exited under it)";
    if run.status.code() != Some(101) || !run.output.contains(said) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    let took_ms: Option<u64> = run
        .output
        .split("got no exit status after ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|number| number.parse().ok());
    match took_ms {
        Some(took) if took < 20_000 => nothing_left(run.pid),
        _ => Err(format!("expected the exec to end within seconds, it took {took_ms:?} ms\n{}", run.output).into()),
    }
}
