//! Podman's private state on this machine: a directory of the run's own (its containers.conf
//! and storage.conf, images, containers, libpod's run state, network config, leases, events),
//! its own bridge and subnet, its pods under a cgroup of the run's own. Podman has no daemon:
//! each call is a `podman` process, and each container's conmon outlives it. At the end,
//! whatever the runtime's own removal left (conmon, cgroups, mounts, a pod's veth and
//! network namespace) goes, then the directory,
//! the bridge, and what CNI shares with the rest of the machine. (In the guest, the guest's
//! init writes the same files, and everything dies with the guest.)

use anyhow::Result;

use super::config::{self, Layout, Ulimits};
use crate::cancel::Cancel;
use crate::machine::{self, Bridge, SharedCniState};
use crate::names;
use crate::runtime::lifecycle::{Owned, Private};

pub struct PrivatePodman {
    dir: tempfile::TempDir,
    pub layout: Layout,
    bridge: Bridge,
    /// What the run's pods share with every CNI user of this machine, given back at the end.
    shared: SharedCniState,
    /// Whether Podman's default cgroup parent was missing before the run (or a run beside it
    /// may have made it): `podman kube play` puts its pods there (it takes no --cgroup-parent)
    /// and leaves the directories.
    default_cgroup_is_ours: bool,
}

/// Podman's cgroup parent under the cgroupfs manager, when none is given.
const DEFAULT_CGROUP: &str = "libpod_parent";

impl PrivatePodman {
    pub fn create(cancel: Cancel) -> Result<Owned<PrivatePodman>> {
        let dir = names::temp_dir(super::KIND.temp_word())?;
        let layout = Layout { dir: dir.path().to_path_buf() };
        let bridge = Bridge::create(cancel)?;
        config::write_files(&layout, Ulimits::of_this_process()?, &bridge.name, &bridge.prefix)?;
        let shared = SharedCniState::note(cancel, crate::runtime::cni_temp_words())?;
        // A cgroup made by a run beside this one counts as made by a run: the last to end removes it.
        let default_cgroup_is_ours = !machine::cgroup_roots().iter().any(|root| root.join(DEFAULT_CGROUP).is_dir())
            || names::another_run_has_temp_dir(crate::runtime::cni_temp_words());
        Ok(Owned::new(PrivatePodman { dir, layout, bridge, shared, default_cgroup_is_ours }))
    }
}

impl Private for PrivatePodman {
    /// Podman has no daemon that could die under the run.
    fn trouble(&self) -> Option<String> {
        None
    }

    /// Removes what the run's pods left, once the runtime has removed them (or could not):
    /// conmon and container processes, cgroups, mounts, the directory; then the bridge and
    /// what CNI shares with the machine.
    fn give_back(mut self) -> Vec<String> {
        let mut problems = machine::remove_daemon_leftovers(self.dir);
        let (detached, left) = self.bridge.detach_leftovers();
        if !detached.is_empty() {
            eprintln!(
                "note: a pod's network outlived its pod (a podman killed while starting a pod leaves it): removed {}",
                detached.join(", ")
            );
        }
        problems.extend(left);
        problems.extend(self.shared.give_back());
        if self.default_cgroup_is_ours && !names::another_run_has_temp_dir(crate::runtime::cni_temp_words()) {
            machine::remove_empty_cgroups(DEFAULT_CGROUP);
        }
        problems.extend(self.bridge.delete());
        problems
    }
}
