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
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::Signal;

use crate::cancel::Cancel;
use crate::command::Output;
use crate::host::Host;
use crate::images::ImageTar;
use crate::plan::{ContainerPlan, PodPlan};
use crate::progress::Progress;

pub mod cni;
pub mod cri;
pub mod docker;
pub mod lifecycle;
pub mod podman;
mod saved_image;
pub mod scoped;

/// Every runtime the lab knows, in the order `--runtime`, `doctor` and the harness list them;
/// the first is the default. A runtime is its folder and one line here.
pub static RUNTIMES: [&RuntimeKind; 4] = [&docker::KIND, &cri::KIND, &podman::KIND, &podman::KUBE_KIND];

/// The runtime `--runtime` chooses when it is not given.
pub fn default_runtime() -> &'static RuntimeKind {
    RUNTIMES[0]
}

/// The keys a `by-runtime` step gives a runtime's own step: each runtime's facts key, once, in
/// the registry's order (podman-kube shows podman's facts).
pub fn fact_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| each_once(RUNTIMES.iter().map(|runtime| runtime.facts)))
}

/// The temp-dir words of the runtimes whose pods use CNI's state shared on this machine: a live
/// run with a temp dir of one of them uses it (`machine::SharedCniState`).
pub fn cni_temp_words() -> &'static [&'static str] {
    static WORDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| each_once(RUNTIMES.iter().filter(|runtime| runtime.uses_cni).map(|runtime| runtime.temp_word)))
}

/// `words` without repeats, in their order (podman and podman-kube share their words).
fn each_once(words: impl Iterator<Item = &'static str>) -> Vec<&'static str> {
    let mut once = Vec::new();
    for word in words {
        if !once.contains(&word) {
            once.push(word);
        }
    }
    once
}

/// How a runtime starts on a host, ready for pods.
type StartRuntime = fn(Box<dyn Host>, &RunIdentity, &Progress) -> Result<Box<dyn Runtime>>;

/// A runtime as the registry knows it: what the lab needs to name it, check a pod against it,
/// boot a guest for it, say what it needs and start it. Each runtime's folder defines its own.
pub struct RuntimeKind {
    /// As `--runtime` names it: `docker`.
    name: &'static str,
    /// What `--runtime NAME` does, for the help text.
    about: &'static str,
    /// Whose facts it shows, as `by-runtime` steps name them: podman-kube is Podman too.
    facts: &'static str,
    /// The word in the temp dirs of its private daemon on this machine (`names::temp_dir`).
    temp_word: &'static str,
    /// Whether its pods use CNI's state shared on this machine (bridges, iptables chains).
    uses_cni: bool,
    /// Why this runtime cannot make a pod, if it cannot: the scenario is then skipped on it,
    /// with this reason, rather than run half-way. (What no runtime can do, the plan refuses.)
    cannot_make: fn(&PodPlan) -> Option<String>,
    /// The shell script the guest's init runs before its agent starts: this runtime's daemons,
    /// started while the rest of the guest comes up (a runtime on the vm host only).
    guest_services: fn() -> String,
    /// The programs the guest reads ahead while it comes up (the guest's init reads them over
    /// 9p into the page cache before its daemons exec them), soonest needed first: this
    /// runtime's alone; reading another's costs the boot its time.
    guest_programs: &'static [&'static str],
    /// What `doctor` looks for on this machine for it: (program, Debian package, what needs it).
    needs: &'static [(&'static str, &'static str, &'static str)],
    /// Starts the runtime on a host (or finds it started), ready for pods.
    start: StartRuntime,
}

impl RuntimeKind {
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn facts(&self) -> &'static str {
        self.facts
    }

    pub fn temp_word(&self) -> &'static str {
        self.temp_word
    }

    pub fn cannot_make(&self, pod: &PodPlan) -> Option<String> {
        (self.cannot_make)(pod)
    }

    pub fn guest_services(&self) -> String {
        (self.guest_services)()
    }

    pub fn guest_programs(&self) -> &'static [&'static str] {
        self.guest_programs
    }

    pub fn needs(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        self.needs
    }

    pub fn start(&self, host: Box<dyn Host>, run: &RunIdentity, progress: &Progress) -> Result<Box<dyn Runtime>> {
        (self.start)(host, run, progress)
    }
}

impl PartialEq for RuntimeKind {
    fn eq(&self, other: &RuntimeKind) -> bool {
        self.name == other.name
    }
}

impl Eq for RuntimeKind {}

impl std::fmt::Debug for RuntimeKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name)
    }
}

/// `--runtime`'s values: the registry's runtimes, each with its help.
impl clap::ValueEnum for &'static RuntimeKind {
    fn value_variants<'a>() -> &'a [Self] {
        &RUNTIMES
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name).help(self.about))
    }
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
    fn kind(&self) -> &'static RuntimeKind;

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
    use crate::plan::tests::plan_with;

    fn by_name(name: &str) -> &'static RuntimeKind {
        RUNTIMES.iter().find(|runtime| runtime.name() == name).unwrap()
    }

    #[test]
    fn what_each_runtime_cannot_make_is_said_before_any_container() {
        let [docker, cri, podman] = ["docker", "cri", "podman"].map(by_name);
        let shares_uts = plan_with(r#"["net", "ipc", "uts"]"#, "");
        assert_eq!(
            docker.cannot_make(&shares_uts).unwrap(),
            "app shares `uts`: Docker copies the infra container's hostname, it cannot share its UTS namespace"
        );
        assert_eq!(cri.cannot_make(&shares_uts), None);
        let net_only = plan_with(r#"["net"]"#, "");
        assert_eq!(docker.cannot_make(&net_only), None);
        assert!(cri.cannot_make(&net_only).unwrap().contains("always share the sandbox's network and IPC"));
        let restarts = plan_with(r#"["net", "ipc"]"#, r#", "restart": "always""#);
        assert!(cri.cannot_make(&restarts).unwrap().contains("the kubelet restarts containers"));
        // A Podman pod shares UTS, and restarts containers itself; its network is every container's.
        assert_eq!(podman.cannot_make(&shares_uts), None);
        assert_eq!(podman.cannot_make(&restarts), None);
        let ipc_only = plan_with(r#"["ipc"]"#, "");
        assert!(podman.cannot_make(&ipc_only).unwrap().contains("always share its network"));
        let mut spaced = shares_uts.clone();
        spaced.infra.args = vec!["-v".to_string(), "two words".to_string()];
        assert!(podman.cannot_make(&spaced).unwrap().contains("`two words` would not stay one word"));
    }

    #[test]
    fn the_registry_names_each_runtime_once() {
        let names: Vec<&str> = RUNTIMES.iter().map(|runtime| runtime.name()).collect();
        assert_eq!(names, ["docker", "cri", "podman", "podman-kube"]);
        assert_eq!(default_runtime().name(), "docker");
        assert_eq!(fact_keys(), ["docker", "cri", "podman"]);
        assert_eq!(cni_temp_words(), ["cri", "podman"]);
    }

    #[test]
    fn exit_codes_say_their_signal() {
        assert_eq!(describe_exit_code(137), "137 (128 + 9: killed by SIGKILL)");
        assert_eq!(describe_exit_code(143), "143 (128 + 15: killed by SIGTERM)");
        assert_eq!(describe_exit_code(1), "1");
        assert_eq!(describe_exit_code(255), "255");
    }
}
