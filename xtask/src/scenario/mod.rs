//! The scenario format: a pod and the ordered steps that test it, as strict JSON.
//!
//! `scenarios/schema.json` describes the same format for editors; the tests check that
//! every scenario file passes it and that it rejects what the loader rejects.
//! Optional fields mean "not checked"; matchers are explicit (equals, contains, regex, not, all).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

mod load;
mod matcher;
#[cfg(test)]
mod schema_check;

#[cfg(test)]
pub use load::parse;
pub use load::{file_source, load_all};
pub use matcher::Matcher;

/// The only version of the format so far.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub schema_version: u32,
    pub description: String,
    pub pod: Pod,
    pub steps: Vec<Step>,
    /// Filled in by the loader: where the file is, for errors and relative `files`.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pod {
    /// The pod's hostname, set on the infra container (as Kubernetes sets it to the pod's name).
    pub hostname: Option<String>,
    pub infra: Container,
    pub containers: Vec<Container>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub name: String,
    pub image: String,
    /// For app containers: which of the infra container's namespaces to join.
    #[serde(default)]
    pub share: Vec<NamespaceKind>,
    /// `HOST_PORT:CONTAINER_PORT`, published on 127.0.0.1 only.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Container path to a file beside the scenario, mounted read-only.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Replaces the image's entrypoint and command.
    pub command: Option<Vec<String>>,
    /// Arguments appended to the image's entrypoint.
    pub args: Option<Vec<String>>,
    pub user: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub restart: Option<RestartPolicy>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum NamespaceKind {
    Net,
    Ipc,
    Pid,
    Uts,
    Mnt,
    User,
    Cgroup,
}

impl NamespaceKind {
    /// The name under /proc/PID/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::Net => "net",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Mnt => "mnt",
            NamespaceKind::User => "user",
            NamespaceKind::Cgroup => "cgroup",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    OnFailure,
}

/// One step. Each is an object with a single key, the step's kind (see `STEP_KINDS`).
#[derive(Debug)]
pub enum Step {
    /// Runs a command in a container; checks its exit code and output.
    Exec(Exec),
    /// Every container's eth0 IPv4 address is the same, and is the infra container's.
    SameIp(Containers),
    /// Every container reports the same hostname (or, with `expect: false`, not).
    SameHostname(SameHostname),
    /// Every container's /proc/PID/ns/KIND is the same namespace (or, with `expect: false`, not).
    SameNamespace(SameNamespace),
    /// `ps` inside each container shows PID 1 running this command.
    Pid1(Pid1),
    /// No process in the container's PID namespace is a zombie.
    NoZombies(ContainerRef),
    /// The container's main process uses (almost) no CPU while it waits.
    CpuIdle(CpuIdle),
    /// An HTTP GET to a port published on 127.0.0.1, from where the Docker daemon runs.
    Http(Http),
    /// Sends a signal to a container's main process.
    Signal(SignalStep),
    /// `docker stop` with a grace period; checks how long it took, the exit code and the logs.
    Stop(Stop),
    /// Waits for a container to exit by itself; checks the exit code and the logs.
    WaitExit(WaitExit),
    /// Each container is (or is not) running.
    Running(Running),
    /// Restarts a container (`docker restart`).
    Restart(ContainerRef),
    /// The container's main process as the kernel sees it: user, group, command.
    Process(Process),
    /// The files of an image and the user it runs as.
    Image(Image),
    /// Checks a container's logs (stdout, then stderr).
    Logs(Logs),
    /// Retries one step until it passes or `within_ms` runs out.
    Eventually(Eventually),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    pub container: String,
    pub argv: Vec<String>,
    /// Defaults to 0; `null` would not mean "unchecked" here, since a failing command is rarely intended.
    #[serde(default)]
    pub exit_code: i32,
    pub stdout: Option<Matcher>,
    pub stderr: Option<Matcher>,
    /// Saves trimmed stdout under this name; later steps use it as `${name}` in argv and matchers.
    pub save_stdout_as: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Containers {
    pub containers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SameHostname {
    pub containers: Vec<String>,
    #[serde(default = "yes")]
    pub expect: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SameNamespace {
    pub kind: NamespaceKind,
    pub containers: Vec<String>,
    #[serde(default = "yes")]
    pub expect: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pid1 {
    pub containers: Vec<String>,
    pub command: Matcher,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRef {
    pub container: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuIdle {
    pub container: String,
    /// How long to watch.
    #[serde(default = "default_idle_window_ms")]
    pub over_ms: u64,
    /// The most CPU time (user + system) the process may use meanwhile; the kernel counts in 10 ms ticks.
    #[serde(default = "default_idle_cpu_ms")]
    pub max_cpu_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub port: u16,
    #[serde(default = "root_path")]
    pub path: String,
    pub status: Option<u16>,
    pub body: Option<Matcher>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalStep {
    pub container: String,
    /// A signal name such as `SIGINT`.
    pub signal: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    pub container: String,
    /// Seconds `docker stop` waits before SIGKILL (Docker's default is 10).
    #[serde(default = "default_grace_seconds")]
    pub grace_seconds: u32,
    pub within_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub logs: Option<Matcher>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitExit {
    pub container: String,
    pub within_ms: u64,
    pub exit_code: Option<i32>,
    pub logs: Option<Matcher>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Running {
    pub containers: Vec<String>,
    pub expect: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub container: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub command: Option<Matcher>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub name: String,
    /// Every regular file and link of the image, without a leading slash, in any order.
    pub files: Option<Vec<String>>,
    /// The image's configured user, as `docker image inspect` reports it.
    pub user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    pub container: String,
    pub matches: Matcher,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eventually {
    pub within_ms: u64,
    #[serde(default = "default_every_ms")]
    pub every_ms: u64,
    pub step: Box<Step>,
}

fn yes() -> bool {
    true
}

fn root_path() -> String {
    "/".to_string()
}

fn default_grace_seconds() -> u32 {
    10
}

fn default_every_ms() -> u64 {
    200
}

fn default_idle_window_ms() -> u64 {
    1000
}

fn default_idle_cpu_ms() -> u64 {
    10
}

/// Every step kind, as written in a file.
pub const STEP_KINDS: &[&str] = &[
    "exec",
    "same-ip",
    "same-hostname",
    "same-namespace",
    "pid-1",
    "no-zombies",
    "cpu-idle",
    "http",
    "signal",
    "stop",
    "wait-exit",
    "running",
    "restart",
    "process",
    "image",
    "logs",
    "eventually",
];

/// By hand rather than derived, so that `{}` and a step with two keys get messages that say
/// what to write instead of serde's "expected value" (the same reason as for matchers).
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> serde::de::Visitor<'de> for StepVisitor {
    type Value = Step;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a step: an object with one key, the step's kind")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
        use serde::de::Error;
        let Some(kind) = map.next_key::<String>()? else {
            return Err(A::Error::custom(format!("an empty step: give one of {}", STEP_KINDS.join(", "))));
        };
        let step = match kind.as_str() {
            "exec" => Step::Exec(map.next_value()?),
            "same-ip" => Step::SameIp(map.next_value()?),
            "same-hostname" => Step::SameHostname(map.next_value()?),
            "same-namespace" => Step::SameNamespace(map.next_value()?),
            "pid-1" => Step::Pid1(map.next_value()?),
            "no-zombies" => Step::NoZombies(map.next_value()?),
            "cpu-idle" => Step::CpuIdle(map.next_value()?),
            "http" => Step::Http(map.next_value()?),
            "signal" => Step::Signal(map.next_value()?),
            "stop" => Step::Stop(map.next_value()?),
            "wait-exit" => Step::WaitExit(map.next_value()?),
            "running" => Step::Running(map.next_value()?),
            "restart" => Step::Restart(map.next_value()?),
            "process" => Step::Process(map.next_value()?),
            "image" => Step::Image(map.next_value()?),
            "logs" => Step::Logs(map.next_value()?),
            "eventually" => Step::Eventually(map.next_value()?),
            unknown => return Err(A::Error::unknown_variant(unknown, STEP_KINDS)),
        };
        if let Some(second) = map.next_key::<String>()? {
            return Err(A::Error::custom(format!(
                "a step has one key, this one also has `{second}`: make it a step of its own"
            )));
        }
        Ok(step)
    }
}

impl Step {
    /// The step's kind, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Exec(_) => "exec",
            Step::SameIp(_) => "same-ip",
            Step::SameHostname(_) => "same-hostname",
            Step::SameNamespace(_) => "same-namespace",
            Step::Pid1(_) => "pid-1",
            Step::NoZombies(_) => "no-zombies",
            Step::CpuIdle(_) => "cpu-idle",
            Step::Http(_) => "http",
            Step::Signal(_) => "signal",
            Step::Stop(_) => "stop",
            Step::WaitExit(_) => "wait-exit",
            Step::Running(_) => "running",
            Step::Restart(_) => "restart",
            Step::Process(_) => "process",
            Step::Image(_) => "image",
            Step::Logs(_) => "logs",
            Step::Eventually(_) => "eventually",
        }
    }

    /// The containers a step names, so the loader can check that each exists.
    pub fn container_names(&self) -> Vec<&str> {
        fn one(name: &str) -> Vec<&str> {
            vec![name]
        }
        fn many(names: &[String]) -> Vec<&str> {
            names.iter().map(String::as_str).collect()
        }
        match self {
            Step::Exec(step) => one(&step.container),
            Step::SameIp(step) => many(&step.containers),
            Step::SameHostname(step) => many(&step.containers),
            Step::SameNamespace(step) => many(&step.containers),
            Step::Pid1(step) => many(&step.containers),
            Step::NoZombies(step) | Step::Restart(step) => one(&step.container),
            Step::Signal(step) => one(&step.container),
            Step::Stop(step) => one(&step.container),
            Step::WaitExit(step) => one(&step.container),
            Step::Running(step) => many(&step.containers),
            Step::Process(step) => one(&step.container),
            Step::CpuIdle(step) => one(&step.container),
            Step::Logs(step) => one(&step.container),
            Step::Eventually(step) => step.step.container_names(),
            Step::Http(_) | Step::Image(_) => Vec::new(),
        }
    }
}
