//! Podman on this machine beside another run: the shared directories it made still go.

use std::path::Path;
use std::process::{Command, Stdio};

use libtest_mimic::Failed;

use crate::support::{RUN_TIMEOUT, XTASK, nothing_left, run_xtask, wait_with_deadline};

/// A podman run that ends while another run (a Docker pod shell) is alive beside it: the shared
/// directories it made (CI once found an empty /run/netns left when another xtask was alive)
/// still go, and the other run is not disturbed.
pub fn podman_run_beside_another_run_gives_back_what_it_made() -> Result<(), Failed> {
    let shared = ["/run/netns", "/var/lib/cni"];
    let there_before: Vec<bool> = shared.iter().map(|dir| Path::new(dir).exists()).collect();
    let mut beside = Command::new(XTASK)
        .args(["pod", "--on", "host"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let run = run_xtask(&["test", "--on", "host", "--runtime", "podman", "scenarios/seed-pod", "--exact"], None);
    let beside_was_alive = beside.try_wait()?.is_none();
    drop(beside.stdin.take());
    let Some(beside_status) = wait_with_deadline(&mut beside, RUN_TIMEOUT) else {
        return Err(format!("the pod shell did not end within {RUN_TIMEOUT:?} of its input's end").into());
    };
    let run = run?;
    if run.status.code() != Some(0) || !beside_was_alive || beside_status.code() != Some(0) {
        return Err(format!(
            "expected the podman run to pass beside a live pod shell, then the shell to exit 0; got {:?}, \
             the shell alive: {beside_was_alive}, then {beside_status:?}\n{}",
            run.status, run.output
        )
        .into());
    }
    let left: Vec<&str> = shared
        .iter()
        .zip(there_before)
        .filter(|(dir, was)| !was && Path::new(dir).exists())
        .map(|(dir, _)| *dir)
        .collect();
    if !left.is_empty() {
        return Err(format!("the podman run left {left:?}, which were not there before it").into());
    }
    nothing_left(run.pid)?;
    nothing_left(beside.id())
}
