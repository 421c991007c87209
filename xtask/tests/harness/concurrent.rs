//! Runs side by side on this machine: two whole runs at once, and a run on a daemon it shares
//! with a live pod.

use libtest_mimic::Failed;

use crate::support::{LONG_LIVED, Run, XTASK, nothing_left, run_xtask, run_xtask_with};

/// Two whole runs on this machine at once: each has its own daemon, bridge, subnet, temp dirs
/// and published ports, so both pass, and neither leaves anything.
pub fn two_runs_at_once(runtime: &str) -> Result<(), Failed> {
    let arguments = ["test", "--on", "host", "--runtime", runtime, "--skip", LONG_LIVED];
    let runs: Vec<Result<Run, String>> = std::thread::scope(|scope| {
        let runs: Vec<_> =
            (0..2).map(|_| scope.spawn(|| run_xtask(&arguments, None).map_err(|error| format!("{error:?}")))).collect();
        runs.into_iter().map(|run| run.join().unwrap_or_else(|_| Err("a run's thread panicked".into()))).collect()
    });
    for run in runs {
        let run = run?;
        if run.status.code() != Some(0) {
            return Err(format!("expected both runs to pass, one exited {:?}\n{}", run.status, run.output).into());
        }
        nothing_left(run.pid)?;
    }
    Ok(())
}

/// A run on a daemon it shares (`DOCKER_HOST`): here the private daemon of a live `cargo xtask
/// pod`, which already holds containers named pause, nginx and ghost. The run names its own
/// containers apart, passes, removes only its own, and leaves the pod as it was.
pub fn run_on_a_shared_daemon() -> Result<(), Failed> {
    let script = format!(
        "{XTASK} test --on host scenarios/version --exact; echo \"shared run said $?\"; \
         echo \"left: $(docker ps --all --format '{{{{.Names}}}}' | sort | tr '\\n' ' ')\"\n"
    );
    let run = run_xtask_with(&["pod", "--on", "host"], Some(&script), None)?;
    let said = ["using the Docker daemon at DOCKER_HOST=unix://", "shared run said 0", "left: ghost nginx pause \n"];
    if run.status.code() != Some(0) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(
            format!("expected the shared run to pass and {said:?}, got {:?}\n{}", run.status, run.output).into()
        );
    }
    nothing_left(run.pid)
}
