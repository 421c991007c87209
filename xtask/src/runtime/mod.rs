//! Runtimes: which runtime makes the pod. A runtime speaks of pods and containers (start the
//! infra container, start an app in its namespaces, exec, signal, stop, logs, state, images);
//! it runs on a host (`crate::host`: this machine or the throwaway guest), which it owns, and
//! reaches its daemon through that host's commands and sockets.
//!
//! Docker is the one runtime today (`docker/`); containerd's CRI plugin and Podman come next.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::Signal;

use crate::command::Output;
use crate::host::Host;
use crate::images::ImageTar;
use crate::pod::{ContainerPlan, PodPlan};
use crate::progress::Progress;
use crate::scenario::NamespaceKind;

pub mod docker;
pub mod machine;

/// Which runtime makes the pod, as `--runtime` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// Docker: the infra container, then each app with --net/--ipc/--pid=container:<infra>.
    Docker,
}

impl RuntimeKind {
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "docker",
        }
    }

    /// Why this runtime cannot share `kind` between a pod's containers, if it cannot.
    pub fn cannot_share(self, kind: NamespaceKind) -> Option<&'static str> {
        match (self, kind) {
            (_, NamespaceKind::Net | NamespaceKind::Ipc | NamespaceKind::Pid) => None,
            (RuntimeKind::Docker, NamespaceKind::Uts) => {
                Some("Docker copies the infra container's hostname, it cannot share its UTS namespace")
            }
            (_, NamespaceKind::Mnt | NamespaceKind::User | NamespaceKind::Cgroup) => {
                Some("a pod shares net, ipc, pid and uts only")
            }
        }
    }

    /// The shell script the guest's init runs before its agent starts: this runtime's daemons,
    /// started while the rest of the guest comes up (a runtime on the vm host only).
    pub fn guest_services(self) -> String {
        match self {
            RuntimeKind::Docker => docker::guest_services(),
        }
    }

    /// Starts the runtime on `host` (or finds it started), ready for pods.
    pub fn start(self, host: Box<dyn Host>, run: &RunIdentity, progress: &Progress) -> Result<Box<dyn Runtime>> {
        match self {
            RuntimeKind::Docker => Ok(Box::new(docker::Docker::start(host, run, progress)?)),
        }
    }
}

/// What a runtime needs to know of the run: to label what it creates and keep its logs.
pub struct RunIdentity<'a> {
    pub run_id: &'a str,
    /// The run's artifacts: the runtime's daemon logs go here.
    pub run_dir: &'a Path,
}

/// A container as the runtime reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    /// The main process's pid on the host (as the host's /proc sees it), while running.
    pub pid: Option<u32>,
    /// How its main process exited, once it has.
    pub exit_code: Option<i64>,
}

/// What a container wrote.
#[derive(Clone, Debug, Default)]
pub struct Logs {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Logs {
    /// stdout, then stderr, as one text.
    pub fn text(&self) -> String {
        format!("{}{}", String::from_utf8_lossy(&self.stdout), self.stderr)
    }
}

pub trait Runtime: Send + Sync {
    /// What reports say of the runtime: `docker (a private dockerd)`.
    fn details(&self) -> String;

    /// The host it runs on: where the steps look at processes, namespaces and ports.
    fn host(&self) -> &dyn Host;

    /// Makes an image tar (a root filesystem) an image of this runtime.
    fn import(&self, image: &ImageTar) -> Result<()>;

    /// Creates and starts the pod's infra container: it owns the namespaces. Returns once its
    /// main process runs the container's program (or has already ended).
    fn start_infra(&self, pod: &PodPlan) -> Result<()>;

    /// Creates and starts an app container in the infra container's namespaces it joins;
    /// returns as `start_infra` does.
    fn start_app(&self, pod: &PodPlan, app: &ContainerPlan) -> Result<()>;

    /// Removes containers (running or not; one already gone is no error), for cleanup: only
    /// the deadline stops it.
    fn remove(&self, containers: &[String], timeout: Duration) -> Result<()>;

    /// Runs a command in a running container. A refusal (no such container, not running)
    /// comes back as an exit code and a message, as a CLI would show it.
    fn exec(&self, container: &str, argv: &[String], timeout: Duration) -> Result<Output>;

    /// The state of each container, by name.
    fn states(&self, containers: &[String]) -> Result<BTreeMap<String, ContainerState>>;

    /// The infra container's IPv4 address on the pod's network, as the runtime gave it.
    fn pod_address(&self, infra: &str) -> Result<String>;

    /// Sends a signal to a container's main process.
    fn signal(&self, container: &str, signal: Signal) -> Result<()>;

    /// Stops a container: SIGTERM, then SIGKILL after `grace`.
    fn stop(&self, container: &str, grace: Duration) -> Result<()>;

    /// Restarts a container in its pod.
    fn restart(&self, container: &str) -> Result<()>;

    /// What a container wrote.
    fn logs(&self, container: &str) -> Result<Logs>;

    /// The same, each line stamped with its time, for the run's artifacts.
    fn stamped_logs(&self, container: &str) -> Result<Logs>;

    /// The user an image runs as, as the runtime shows it (`65535:65535`).
    fn image_user(&self, image: &str) -> Result<String>;

    /// Every regular file and link of an image, without a leading slash.
    fn image_files(&self, image: &str) -> Result<Vec<String>>;

    /// What a shell beside the runtime needs to reach it (`DOCKER_HOST=...`), and what to try
    /// with the runtime's own tools.
    fn shell_environment(&self) -> Vec<(String, String)>;
    fn shell_hints(&self) -> Vec<String>;

    /// What is wrong with the runtime itself, if anything (its daemon died): said beside a
    /// failure, since it is the first thing to know.
    fn trouble(&self) -> Option<String>;

    /// Removes every container of the run, stops what the runtime started, saves its daemon's
    /// logs, then shuts its host down. Also runs on drop; calling it first reports errors.
    fn shut_down(&mut self) -> Result<()>;
}

/// The main process's pid of each container, which must be running.
pub fn main_pids(runtime: &dyn Runtime, containers: &[String]) -> Result<BTreeMap<String, u32>> {
    runtime
        .states(containers)?
        .into_iter()
        .map(|(name, state)| match state.pid {
            Some(pid) if state.running => Ok((name, pid)),
            _ => anyhow::bail!("container {name} is not running"),
        })
        .collect()
}

/// The main process's pid of one running container.
pub fn main_pid(runtime: &dyn Runtime, container: &str) -> Result<u32> {
    let pids = main_pids(runtime, &[container.to_string()])?;
    pids.get(container).copied().ok_or_else(|| anyhow::anyhow!("the runtime gave no pid for {container}"))
}
