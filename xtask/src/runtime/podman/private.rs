//! Podman's private state on this machine: a directory of the run's own (its containers.conf
//! and storage.conf, images, containers, libpod's run state, network config, leases, events),
//! its own bridge and subnet, its pods under a cgroup of the run's own. Podman has no daemon:
//! each call is a `podman` process, and each container's conmon outlives it. At the end,
//! whatever the runtime's own removal left (conmon, cgroups, mounts) goes, then the directory,
//! the bridge, and what CNI shares with the rest of the machine. (In the guest, the guest's
//! init writes the same files, and everything dies with the guest.)

use anyhow::Result;

use super::config::{self, Layout, Ulimits};
use crate::names::{self, TempPurpose};
use crate::runtime::machine::{self, Bridge, SharedCniState};

pub struct PrivatePodman {
    dir: Option<tempfile::TempDir>,
    pub layout: Layout,
    bridge: Bridge,
    /// What the run's pods share with every CNI user of this machine, given back at the end.
    shared: SharedCniState,
}

impl PrivatePodman {
    pub fn create() -> Result<PrivatePodman> {
        let dir = names::temp_dir(TempPurpose::Podman)?;
        let layout = Layout { dir: dir.path().to_path_buf() };
        let bridge = Bridge::create()?;
        config::write_files(&layout, Ulimits::of_this_process()?, &bridge.name, &bridge.prefix)?;
        let shared = SharedCniState::note();
        Ok(PrivatePodman { dir: Some(dir), layout, bridge, shared })
    }

    /// Removes what the run's pods left, once the runtime has removed them (or could not):
    /// conmon and container processes, cgroups, mounts, the directory; returns what could not
    /// be cleaned.
    pub fn remove(&mut self) -> Vec<String> {
        let Some(dir) = self.dir.take() else { return Vec::new() };
        let mut problems = machine::remove_daemon_leftovers(dir);
        problems.extend(self.shared.give_back());
        problems.extend(self.bridge.delete());
        problems
    }
}

impl Drop for PrivatePodman {
    fn drop(&mut self) {
        for problem in self.remove() {
            eprintln!("warning: {problem}");
        }
    }
}
