//! A whole run leaves nothing, however it ends: it passes, is interrupted (Ctrl-C), meets its
//! deadline or panics with a pod up; the first two on every runtime of the registry.

use libtest_mimic::Failed;

use crate::support::{
    LONG_LIVED, compile_fixture, nothing_left, run_program_with, run_xtask, xtask_with_fault_injection,
};

/// A run that passes (non-root holds for any pause that sleeps) exits 0 and leaves nothing either.
pub fn passing_run_cleans_up() -> Result<(), Failed> {
    let work = tempfile::tempdir()?;
    let binary = compile_fixture("exits-1-on-sigterm", work.path())?;
    let pause_bin = binary.to_string_lossy().into_owned();
    let run = run_xtask(&["test", "--on", "host", "--pause-bin", &pause_bin, "scenarios/non-root", "--exact"], None)?;
    if run.status.code() != Some(0) {
        return Err(format!("expected exit code 0, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// The run's own deadline works like Ctrl-C.
pub fn timed_out_run_cleans_up() -> Result<(), Failed> {
    let run = run_xtask(&["test", "--on", "host", "--run-timeout", "3"], None)?;
    if run.status.code() != Some(130) || !run.output.contains("the run's deadline (3 s) passed") {
        return Err(
            format!("expected exit code 130 and the deadline named, got {:?}\n{}", run.status, run.output).into()
        );
    }
    nothing_left(run.pid)
}

/// A panic in the harness with a pod running: the trial fails (exit 101, the panic named)
/// and everything is still removed. Run with the binary `cargo xtask` builds, whose profile
/// unwinds (this test's own build aborts on panic, as the no_std pause needs), built with the
/// `fault-injection` feature that holds the hook (the next `cargo xtask` puts its own back).
pub fn panicking_run_cleans_up(on: &str) -> Result<(), Failed> {
    let xtask = xtask_with_fault_injection()?;
    let arguments = ["test", "--on", on, "scenarios/version", "--exact"];
    let run = run_program_with(&xtask, &arguments, &[("PODLAB_INJECT_PANIC", "1")], None, None)?;
    if run.status.code() != Some(101) || !run.output.contains("injected panic") {
        return Err(
            format!("expected exit code 101 and the injected panic, got {:?}\n{}", run.status, run.output).into()
        );
    }
    nothing_left(run.pid)
}

/// A runtime on this machine, its daemon private to the run (docker: dockerd; cri: containerd;
/// podman: Podman's state, its pod made by `podman pod create` or, for podman-kube, by `kube
/// play` of its manifest): the seed pod passes, the run exits 0 and leaves nothing (daemons,
/// shims or conmon, the pods' network namespaces and veths, leases, mounts, cgroups, the
/// bridge); what a runtime would write outside its own state (CNI's cache,
/// /var/lib/containers, /run/libpod, /run/netns) is checked by `shared::this_machine_is_as_before`.
pub fn seed_pod_run_cleans_up(runtime: &str) -> Result<(), Failed> {
    let run = run_xtask(&["test", "--on", "host", "--runtime", runtime, "scenarios/seed-pod", "--exact"], None)?;
    if run.status.code() != Some(0) || !run.output.contains("scenarios/seed-pod: passed") {
        return Err(format!("expected seed-pod to pass and exit code 0, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// Ctrl-C with a pod of `runtime` up: exit 130, and everything is removed.
pub fn interrupted_run_on_cleans_up(runtime: &str) -> Result<(), Failed> {
    let arguments = ["test", "--on", "host", "--runtime", runtime, "--skip", LONG_LIVED];
    let run = run_xtask(&arguments, Some(("scenarios/reaping: ", 2)))?;
    if run.status.code() != Some(130) {
        return Err(format!("expected exit code 130 after Ctrl-C, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}
