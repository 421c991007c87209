//! containerd's CRI plugin on this machine: what SIGKILL leaves, `cargo xtask clean` removes.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use libtest_mimic::Failed;

use crate::support::{Action, XTASK, nothing_left, run_xtask_with};

/// SIGKILL with a cri pod up (the seed pod of `cargo xtask pod`, its port published through
/// CNI's portmap): containerd is told to stop by the kernel, but its shims, the pod, its port
/// mapping and CNI's cached result stay; `cargo xtask clean` removes them all.
pub fn cri_sigkill_then_clean() -> Result<(), Failed> {
    let arguments = ["pod", "--on", "host", "--runtime", "cri"];
    let run = run_xtask_with(&arguments, Some("sleep 30\n"), Some(("Exit the shell", Action::Signal(9))))?;
    if run.status.signal() != Some(9) {
        return Err(format!("expected xtask killed by SIGKILL, got {:?}", run.status).into());
    }
    let clean = Command::new(XTASK).arg("clean").output()?;
    let said = String::from_utf8_lossy(&clean.stdout).into_owned();
    for what in ["temp dir", "portmap's nat chains", "CNI result podlab-"] {
        if !clean.status.success() || !said.contains(what) {
            return Err(format!("expected cargo xtask clean to remove the {what}, it said:\n{said}").into());
        }
    }
    nothing_left(run.pid)
}
