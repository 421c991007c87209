//! What the run's containerd is told: its config file (where its state goes, the CRI plugin's
//! settings) and the CNI network of its pods. One writer for the guest and for this machine,
//! so both run the same containerd; only the paths and the subnet differ.

use std::path::PathBuf;

use crate::runtime::cni;

/// The image the CRI plugin runs as every pod's sandbox: the pause under test. The plugin
/// never pulls it (nothing can be pulled here): the reference must match the imported image
/// exactly, or RunPodSandbox tries `http://localhost/v2/...` and fails.
pub const SANDBOX_IMAGE: &str = "docker.io/podlab/pause:latest";

/// The image a scenario's infra container must name: the sandbox image, as scenarios write it.
pub const SANDBOX_IMAGE_AS_WRITTEN: &str = crate::names::PAUSE_IMAGE;

/// The containerd namespace of everything the CRI plugin makes.
pub const NAMESPACE: &str = "k8s.io";

/// Where one containerd keeps everything; all under one directory.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("containerd.toml")
    }
    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    /// Its state, and under it the pods' network namespaces (`netns_mounts_under_state_dir`).
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
    pub fn cni_config_dir(&self) -> PathBuf {
        self.dir.join("cni")
    }
    /// host-local's leases: its default, /var/lib/cni, is shared with every other CNI user.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }
    /// The pods' log directories (CRI's log files).
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    /// `ctr events`, which the run keeps: the only place containerd tells a sandbox's exit status.
    pub fn events_log(&self) -> PathBuf {
        self.dir.join("events.log")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }
    /// What the run keeps of containerd in its artifacts, and under which names.
    pub fn logs_to_keep(&self) -> [(PathBuf, &'static str); 2] {
        [(self.daemon_log(), "containerd.log"), (self.events_log(), "containerd-events.log")]
    }
}

/// containerd's config: private paths everywhere (root, state, sockets, runc's root, the opt
/// plugin off), the CRI plugin without a TCP or streaming port open to anything but loopback,
/// the pause under test as the sandbox image, and a CNI config directory of the run's own.
pub fn containerd_toml(layout: &Layout) -> String {
    let dir = |path: PathBuf| path.display().to_string();
    format!(
        r#"# written by podlab for one run (xtask/src/runtime/cri/config.rs)
version = 2
root = "{root}"
state = "{state}"
# opt would install into /opt/containerd; the others are file systems this machine does not use.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  # The sandbox's oom_score_adj of -998 needs CAP_SYS_RESOURCE, which a container host may lack.
  restrict_oom_score_adj = true
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{state}/runc"
"#,
        root = dir(layout.root()),
        state = dir(layout.state()),
        socket = dir(layout.socket()),
        cni = dir(layout.cni_config_dir()),
    )
}

/// The shell lines that write the config and the network.
pub fn write_script(layout: &Layout, bridge: &str, prefix: &str) -> String {
    format!(
        "busybox mkdir -p {dir} {cni_dir} {logs}\ncat > {config} <<'EOF'\n{toml}EOF\n{network}",
        dir = layout.dir.display(),
        cni_dir = layout.cni_config_dir().display(),
        logs = layout.logs().display(),
        config = layout.config_file().display(),
        toml = containerd_toml(layout),
        network = cni::write_script(&layout.cni_config_dir(), &layout.ipam_dir(), bridge, prefix),
    )
}

/// Writes the config and the network on this machine.
pub fn write_files(layout: &Layout, bridge: &str, prefix: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    for dir in [layout.dir.clone(), layout.cni_config_dir(), layout.logs()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let config = layout.config_file();
    std::fs::write(&config, containerd_toml(layout)).with_context(|| format!("cannot write {}", config.display()))?;
    cni::write_file(&layout.cni_config_dir(), &layout.ipam_dir(), bridge, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_is_private_and_pulls_nothing() {
        let layout = Layout { dir: PathBuf::from("/tmp/podlab-cri-1-x") };
        let toml = containerd_toml(&layout);
        for line in [
            r#"root = "/tmp/podlab-cri-1-x/root""#,
            r#"address = "/tmp/podlab-cri-1-x/containerd.sock""#,
            r#"sandbox_image = "docker.io/podlab/pause:latest""#,
            "restrict_oom_score_adj = true",
            r#"conf_dir = "/tmp/podlab-cri-1-x/cni""#,
            r#"Root = "/tmp/podlab-cri-1-x/state/runc""#,
        ] {
            assert!(toml.contains(line), "{line} is missing from:\n{toml}");
        }
    }
}
