//! The `outbound` step sees a connection leave the pod.

use libtest_mimic::Failed;

use crate::support::{fixture_scenarios, nothing_left, run_xtask};

/// The `outbound` step: a connection to loopback is not counted (the first check passes), one to
/// an address beside the pod is, and the failure names where it went.
pub fn outbound_connection_is_counted(runtime: &str) -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios");
    let arguments =
        ["test", "--on", "host", "--runtime", runtime, "--scenarios", &scenarios, "scenarios/pod-reaches-outside"];
    let run = run_xtask(&arguments, None)?;
    let said = ["step 3 (outbound", "expected at most 0 connections from the pod to outside itself, got", ".1"];
    if run.status.code() != Some(101) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}
