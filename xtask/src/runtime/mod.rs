//! Runtimes: which runtime makes the pod. A runtime speaks of pods and containers (start the
//! infra container, start an app in its namespaces, exec, signal, stop, logs, state, images);
//! it runs on a host (`crate::host`: this machine or the throwaway guest), which it owns, and
//! reaches its daemon through that host's commands and sockets.
//!
//! Docker (`docker/`) imitates a pod with `--net/--ipc/--pid=container:`; containerd's CRI
//! plugin (`cri/`) makes the pod as the kubelet asks for it; Podman (`podman/`) makes a pod of
//! its own, with the pause under test as its infra container. The cri and podman runtimes give
//! their pods the same CNI network (`cni.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use crate::cancel::Cancel;
use crate::command::Output;
use crate::host::Host;
use crate::images::ImageTar;
use crate::pod::{ContainerPlan, PodPlan};
use crate::progress::Progress;
use crate::scenario::{NamespaceKind, RestartPolicy};

pub mod cni;
pub mod cri;
pub mod docker;
pub mod machine;
pub mod podman;
mod saved_image;
pub mod scoped;

/// Which runtime makes the pod, as `--runtime` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// Docker: the infra container, then each app with --net/--ipc/--pid=container:<infra>.
    Docker,
    /// containerd's CRI plugin, as the kubelet uses it: the pause under test as the sandbox image.
    Cri,
    /// Podman: `podman pod create` with the pause under test as the infra image, each app `podman run --pod`.
    Podman,
    /// Podman, each pod from its Kubernetes Pod manifest (`podman kube play`); the facts are podman's.
    PodmanKube,
}

impl RuntimeKind {
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "docker",
            RuntimeKind::Cri => "cri",
            RuntimeKind::Podman => "podman",
            RuntimeKind::PodmanKube => "podman-kube",
        }
    }

    /// Whose facts it shows, as `by-runtime` steps name them: podman-kube is Podman too.
    pub fn facts(self) -> &'static str {
        match self {
            RuntimeKind::PodmanKube => RuntimeKind::Podman.name(),
            other => other.name(),
        }
    }

    /// Why this runtime cannot make `pod`, if it cannot: the scenario is then skipped on it,
    /// with this reason, rather than run half-way. (What no runtime can do, the plan refuses.)
    pub fn cannot_make(self, pod: &PodPlan) -> Option<String> {
        match self {
            RuntimeKind::Docker => docker_cannot_make(pod),
            RuntimeKind::Cri => cri_cannot_make(pod),
            RuntimeKind::Podman => podman_cannot_make(pod),
            RuntimeKind::PodmanKube => podman_kube_cannot_make(pod),
        }
    }

    /// The shell script the guest's init runs before its agent starts: this runtime's daemons,
    /// started while the rest of the guest comes up (a runtime on the vm host only).
    pub fn guest_services(self) -> String {
        match self {
            RuntimeKind::Docker => docker::guest_services(),
            RuntimeKind::Cri => cri::guest_services(),
            RuntimeKind::Podman | RuntimeKind::PodmanKube => podman::guest_services(),
        }
    }

    /// The programs the guest reads ahead while it comes up (the guest's init reads them over
    /// 9p into the page cache before its daemons exec them), soonest needed first: this
    /// runtime's alone; reading another's costs the boot its time.
    pub fn guest_programs(self) -> &'static [&'static str] {
        match self {
            RuntimeKind::Docker => &["dockerd", "containerd", "containerd-shim-runc-v2", "runc"],
            RuntimeKind::Cri => &["containerd", "ctr", "containerd-shim-runc-v2", "runc"],
            RuntimeKind::Podman | RuntimeKind::PodmanKube => &["podman", "conmon", "runc"],
        }
    }

    /// Starts the runtime on `host` (or finds it started), ready for pods.
    pub fn start(self, host: Box<dyn Host>, run: &RunIdentity, progress: &Progress) -> Result<Box<dyn Runtime>> {
        match self {
            RuntimeKind::Docker => Ok(Box::new(docker::Docker::start(host, run, progress)?)),
            RuntimeKind::Cri => Ok(Box::new(cri::Cri::start(host, run, progress)?)),
            RuntimeKind::Podman => Ok(Box::new(podman::Podman::start(host, run, podman::Front::Cli, progress)?)),
            RuntimeKind::PodmanKube => {
                Ok(Box::new(podman::Podman::start(host, run, podman::Front::KubePlay, progress)?))
            }
        }
    }
}

fn docker_cannot_make(pod: &PodPlan) -> Option<String> {
    let app = pod.apps.iter().find(|app| app.joins(NamespaceKind::Uts))?;
    Some(format!(
        "{} shares `uts`: Docker copies the infra container's hostname, it cannot share its UTS namespace",
        app.name
    ))
}

fn cri_cannot_make(pod: &PodPlan) -> Option<String> {
    let infra = &pod.infra;
    if infra.image != cri::config::SANDBOX_IMAGE_AS_WRITTEN {
        return Some(format!(
            "the infra container is the pod sandbox, whose image is always {}, not {}",
            cri::config::SANDBOX_IMAGE_AS_WRITTEN,
            infra.image
        ));
    }
    if !infra.is_image_as_it_is() {
        return Some(
            "CRI runs the sandbox image as it is: no command, arguments, environment, files, user or restart policy of the \
             scenario's for the infra container"
                .to_string(),
        );
    }
    for app in &pod.apps {
        if !app.joins(NamespaceKind::Net) || !app.joins(NamespaceKind::Ipc) {
            return Some(format!(
                "{} does not share both `net` and `ipc`: a CRI pod's containers always share the sandbox's network and IPC",
                app.name
            ));
        }
        if app.restart.is_some_and(|policy| policy != RestartPolicy::No) {
            return Some(format!(
                "{} has a restart policy: under CRI the kubelet restarts containers, and none runs here",
                app.name
            ));
        }
    }
    None
}

fn podman_cannot_make(pod: &PodPlan) -> Option<String> {
    let infra = &pod.infra;
    if !infra.env.is_empty() || !infra.files.is_empty() || infra.user.is_some() || infra.restart.is_some() {
        return Some(
            "`podman pod create` gives the infra container no environment, files, user or restart policy of the \
             scenario's"
                .to_string(),
        );
    }
    let words = infra.command.iter().flatten().chain(&infra.args);
    if let Some(word) = words.into_iter().find(|word| word.contains(char::is_whitespace)) {
        return Some(format!(
            "`podman pod create --infra-command` splits the infra container's command at spaces: `{word}` would not stay one word"
        ));
    }
    let app = pod.apps.iter().find(|app| !app.joins(NamespaceKind::Net))?;
    Some(format!("{} does not share `net`: a Podman pod's containers always share its network", app.name))
}

fn podman_kube_cannot_make(pod: &PodPlan) -> Option<String> {
    if let Err(error) = crate::pod::manifest::render(pod) {
        return Some(format!("{error:#}"));
    }
    // Its kube play learnt a Pod's sysctls later (pull request 17464, February 2023): 4.3 drops them without a word.
    (!pod.sysctls.is_empty())
        .then(|| "Podman 4.3's kube play ignores a Pod's securityContext.sysctls, which this pod sets".to_string())
}

/// What a runtime needs to know of the run: to label what it creates and keep its logs.
pub struct RunIdentity<'a> {
    pub run_id: &'a str,
    /// The run's artifacts: the runtime's daemon logs go here.
    pub run_dir: &'a Path,
    /// Whether the run was asked to stop: the runtime's ordinary calls end then, its cleanup does not.
    pub cancel: Cancel,
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

impl ContainerState {
    /// ` (it exited with 137 (128 + 9: killed by SIGKILL))` once it has exited, else nothing.
    pub fn ending(&self) -> String {
        self.exit_code.map_or(String::new(), |code| format!(" (it exited with {})", describe_exit_code(code)))
    }
}

/// An exit code as a runtime reports it, with the signal it means when it is 128 + N.
pub fn describe_exit_code(code: i64) -> String {
    let signal = i32::try_from(code - 128).ok().and_then(|number| Signal::try_from(number).ok());
    match signal {
        Some(signal) if code > 128 => format!("{code} (128 + {}: killed by {signal})", signal as i32),
        _ => code.to_string(),
    }
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
    /// Which runtime this is: steps that differ by runtime pick their variant by it.
    fn kind(&self) -> RuntimeKind;

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
            _ => anyhow::bail!("container {name} is not running{}", state.ending()),
        })
        .collect()
}

/// The main process's pid of one running container.
pub fn main_pid(runtime: &dyn Runtime, container: &str) -> Result<u32> {
    let pids = main_pids(runtime, &[container.to_string()])?;
    pids.get(container).copied().ok_or_else(|| anyhow::anyhow!("the runtime gave no pid for {container}"))
}

/// Copies files of the host (a runtime's daemon logs) into `run_dir`, each under its name
/// there, through the host's own commands: from this machine or out of the guest alike.
pub fn save_from_host(host: &dyn Host, files: &[(PathBuf, &str)], run_dir: &Path) -> Result<()> {
    for (from, to) in files {
        let cat = crate::command::argv(&["cat", &from.display().to_string()]);
        let output = host.run(&cat, Duration::from_secs(20), Cancel::NEVER)?.ok()?;
        let path = run_dir.join(to);
        std::fs::write(&path, &output.stdout).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Waits until a container's main process runs its program: a runtime may answer "started"
/// while the process is still `runc init`, which has not yet joined every namespace or dropped
/// its privileges, and a step that reads /proc then would see runc, not the program.
pub fn wait_for_program(runtime: &dyn Runtime, container: &str, timeout: Duration, cancel: Cancel) -> Result<()> {
    let state = runtime.states(&[container.to_string()])?.remove(container);
    let Some(pid) = state.and_then(|state| state.pid) else { return Ok(()) };
    let read = crate::command::argv(&["cat", &format!("/proc/{pid}/cmdline")]);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let command_line = runtime.host().run(&read, Duration::from_secs(30), cancel)?;
        if !command_line.success() || command_line.stdout != b"runc\0init\0" {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("container {container} stayed `runc init` for {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_say_their_signal() {
        assert_eq!(describe_exit_code(137), "137 (128 + 9: killed by SIGKILL)");
        assert_eq!(describe_exit_code(143), "143 (128 + 15: killed by SIGTERM)");
        assert_eq!(describe_exit_code(1), "1");
        assert_eq!(describe_exit_code(255), "255");
    }
}
