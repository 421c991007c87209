//! What the run's Podman is told: `containers.conf` and `storage.conf` that put all its state
//! in one directory of the run's own, and the CNI network of its pods. One writer for the
//! guest and for this machine; only the paths, the subnet and the rlimits differ.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::runtime::cni;

/// The pause under test's image, as Podman names it once imported.
pub const INFRA_IMAGE: &str = "localhost/podlab/pause:latest";

/// Where one run's Podman keeps everything; all under one directory.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn containers_conf(&self) -> PathBuf {
        self.dir.join("containers.conf")
    }
    pub fn storage_conf(&self) -> PathBuf {
        self.dir.join("storage.conf")
    }
    /// Images, containers and Podman's database (c/storage's graph root).
    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    /// Mounted root file systems, conmon's sockets and pid files (c/storage's run root).
    fn runroot(&self) -> PathBuf {
        self.dir.join("run")
    }
    /// libpod's own run state (exit files, locks): /run/libpod by default.
    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("libpod")
    }
    pub fn network_dir(&self) -> PathBuf {
        self.dir.join("network")
    }
    fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }
    /// Podman's events (each container's start, exit and removal): the run keeps them.
    pub fn events_log(&self) -> PathBuf {
        self.dir.join("events.log")
    }
    /// Where `image_files` saves an image for a moment.
    pub fn scratch(&self) -> PathBuf {
        self.dir.join("scratch")
    }
}

/// The rlimits every container starts with, where Podman's defaults cannot be had: Podman
/// gives a container RLIMIT_NOFILE 1048576, and runc cannot raise a limit above its hard one
/// without CAP_SYS_RESOURCE, which root on a container host may lack (this machine kind does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ulimits {
    pub nofile: u64,
    pub nproc: u64,
}

impl Ulimits {
    /// This process's hard limits, which runc may set without CAP_SYS_RESOURCE; NPROC also at
    /// most pid_max: Podman lowers its own NPROC limit to that before it starts runc.
    pub fn of_this_process() -> Result<Ulimits> {
        use nix::sys::resource::{Resource, getrlimit};
        let (_, nofile) = getrlimit(Resource::RLIMIT_NOFILE).context("cannot read RLIMIT_NOFILE")?;
        let (_, nproc) = getrlimit(Resource::RLIMIT_NPROC).context("cannot read RLIMIT_NPROC")?;
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(u64::MAX);
        Ok(Ulimits { nofile, nproc: nproc.min(pid_max) })
    }
}

/// containers.conf: k8s-file logs (kept apart by stream, which `podman logs` gives back),
/// cgroupfs under the run's cgroup, events in a file of the run's, libpod's run state and the
/// network config in the run's directory, CNI with the plugins Debian ships.
pub fn containers_conf(layout: &Layout, ulimits: Option<Ulimits>) -> String {
    let dir = |path: PathBuf| path.display().to_string();
    let ulimits = ulimits.map_or(String::new(), |limits| {
        format!("default_ulimits = [\"nofile={0}:{0}\", \"nproc={1}:{1}\"]\n", limits.nofile, limits.nproc)
    });
    format!(
        r#"# written by podlab for one run (xtask/src/runtime/podman/config.rs)
[containers]
log_driver = "k8s-file"
{ulimits}
[engine]
# The pause under test, for pods that `podman kube play` makes (podman pod create names it).
infra_image = "{infra_image}"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
tmp_dir = "{tmp}"
runtime = "runc"

[network]
network_backend = "cni"
network_config_dir = "{network}"
cni_plugin_dirs = ["/usr/lib/cni"]
default_network = "{name}"
"#,
        infra_image = INFRA_IMAGE,
        events = dir(layout.events_log()),
        tmp = dir(layout.tmp_dir()),
        network = dir(layout.network_dir()),
        name = cni::NETWORK,
    )
}

/// storage.conf: overlay, in the run's directory.
pub fn storage_conf(layout: &Layout) -> String {
    format!(
        "# written by podlab for one run (xtask/src/runtime/podman/config.rs)\n[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
        layout.root().display(),
        layout.runroot().display()
    )
}

/// The shell lines that write both files and the network in the guest.
pub fn write_script(layout: &Layout, bridge: &str, prefix: &str) -> String {
    format!(
        "busybox mkdir -p {dir} {network_dir} {scratch}\ncat > {containers} <<'EOF'\n{containers_conf}EOF\ncat > {storage} <<'EOF'\n{storage_conf}EOF\n{network}",
        dir = layout.dir.display(),
        network_dir = layout.network_dir().display(),
        scratch = layout.scratch().display(),
        containers = layout.containers_conf().display(),
        containers_conf = containers_conf(layout, None),
        storage = layout.storage_conf().display(),
        storage_conf = storage_conf(layout),
        network = cni::write_script(&layout.network_dir(), &layout.ipam_dir(), bridge, prefix),
    )
}

/// The same on this machine.
pub fn write_files(layout: &Layout, ulimits: Ulimits, bridge: &str, prefix: &str) -> Result<()> {
    for dir in [layout.dir.clone(), layout.network_dir(), layout.scratch()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write(&layout.containers_conf(), &containers_conf(layout, Some(ulimits)))?;
    write(&layout.storage_conf(), &storage_conf(layout))?;
    cni::write_file(&layout.network_dir(), &layout.ipam_dir(), bridge, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_keeps_its_state_in_the_run_directory() {
        let layout = Layout { dir: PathBuf::from("/tmp/podlab-podman-1-x") };
        let containers = containers_conf(&layout, Some(Ulimits { nofile: 20000, nproc: 32768 }));
        for line in [
            r#"default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]"#,
            r#"tmp_dir = "/tmp/podlab-podman-1-x/libpod""#,
            r#"network_config_dir = "/tmp/podlab-podman-1-x/network""#,
            r#"events_logfile_path = "/tmp/podlab-podman-1-x/events.log""#,
            r#"default_network = "podlab""#,
            r#"infra_image = "localhost/podlab/pause:latest""#,
        ] {
            assert!(containers.contains(line), "{line} is missing from:\n{containers}");
        }
        assert!(!containers_conf(&layout, None).contains("default_ulimits"));
        let storage = storage_conf(&layout);
        assert!(storage.contains(r#"graphroot = "/tmp/podlab-podman-1-x/root""#), "{storage}");
        assert!(storage.contains(r#"runroot = "/tmp/podlab-podman-1-x/run""#), "{storage}");
    }
}
