//! The scenario format: a pod and the ordered steps that test it, as strict JSON.
//!
//! These types are the format. `scenarios/schema.json`, for editors, is generated from them
//! (doc comments become its descriptions), and so are the step and matcher tables of
//! docs/scenarios.md; after changing a type or a doc comment, `cargo test -p xtask --bins schema`
//! rewrites what is stale and fails once, so that the new files get committed.
//! Optional fields mean "not checked"; matchers are explicit (equals, contains, regex, not, all).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(test)]
mod fuzz;
mod load;
mod matcher;
mod one_key;
mod signal_name;
// Only tests generate the schema: the files are committed, and a test keeps them fresh.
#[cfg(test)]
mod schema;

#[cfg(test)]
pub use load::parse;
pub use load::{file_source, load_all};
pub use matcher::Matcher;
pub use signal_name::SignalName;

use one_key::OneKeyEnum;

/// The only version of the format so far.
pub const SCHEMA_VERSION: u32 = 1;

/// A pod and the ordered steps that test it.
///
/// The loader (xtask/src/scenario) is the authority: it also checks what a schema cannot say,
/// such as container names that steps refer to, published ports, valid regular expressions and
/// files that exist.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The version of this format; only 1 exists so far.
    #[expect(dead_code, reason = "read only to be checked, which its type does as it is read")]
    pub schema_version: SchemaVersion,
    /// What the scenario tests, in a sentence; shown in reports.
    pub description: String,
    /// The infra (pause) container and the app containers that join its namespaces.
    pub pod: Pod,
    /// The checks and actions, run in order; a scenario needs at least one.
    pub steps: Vec<Step>,
    /// Left out of a run unless asked for (`--include-ignored`, or `--ignored` for these alone):
    /// why, in a phrase, such as what it builds and how long that takes. Absent or null: always run.
    pub opt_in: Option<String>,
    /// Filled in by the loader: where the file is, for errors and relative `files`.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `schema_version`, which must be `SCHEMA_VERSION`: the type refuses any other number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaVersion;

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = u32::deserialize(deserializer)?;
        if version != SCHEMA_VERSION {
            return Err(D::Error::custom(format!("expected {SCHEMA_VERSION}, found {version}")));
        }
        Ok(SchemaVersion)
    }
}

impl JsonSchema for SchemaVersion {
    fn schema_name() -> Cow<'static, str> {
        "SchemaVersion".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "const": SCHEMA_VERSION })
    }
}

/// A pod: one infra container that owns the namespaces and app containers that share them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pod {
    /// The pod's hostname, set on the infra container (as Kubernetes sets it to the pod's name).
    /// Absent or null: Docker's default (the container's id); on cri, the infra container's name.
    pub hostname: Option<String>,
    /// Namespaced kernel settings of the pod (`net.ipv4.ip_unprivileged_port_start`), set where
    /// its namespaces are made: on the infra container (`docker run --sysctl`), or on the pod
    /// sandbox (CRI's `sysctls`), as a pod spec's `securityContext.sysctls` are.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// The infra container, usually the pause image; it owns the namespaces, so its `share` must stay empty.
    pub infra: Container,
    /// The app containers, started after the infra container.
    pub containers: Vec<Container>,
}

/// One container. `command` and `args` exclude each other.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Container {
    /// The name steps use for this container: letters, digits, `-` or `_`, unique in the pod.
    pub name: String,
    /// The image to run; must not be empty.
    pub image: String,
    /// For app containers: which of the infra container's namespaces to join, each at most once.
    /// A pod shares net, ipc, pid and uts; the others cannot be shared.
    #[serde(default)]
    pub share: Vec<NamespaceKind>,
    /// Ports as `HOST_PORT:CONTAINER_PORT`, such as `8080:80`, published on 127.0.0.1 only.
    #[serde(default)]
    pub publish: Vec<PortMapping>,
    /// Absolute container path to a file beside the scenario (relative to the scenario's folder),
    /// mounted read-only.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Replaces the image's entrypoint and command; not empty. Absent or null: the image's own.
    pub command: Option<Vec<String>>,
    /// Arguments appended to the image's entrypoint. Absent or null: the image's command.
    pub args: Option<Vec<String>>,
    /// The user to run as, as `docker run --user` takes it (`65535:65535`; on cri the group must be a number). Absent or null: the image's user.
    pub user: Option<String>,
    /// Environment variables to set.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Docker's restart policy. Absent or null: Docker's default (no). The cri runtime cannot make a pod whose
    /// apps have one: there the kubelet restarts containers, and none runs here.
    pub restart: Option<RestartPolicy>,
}

/// A namespace, by its name under /proc/PID/ns/.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
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

/// A port published on 127.0.0.1, written `HOST_PORT:CONTAINER_PORT` (`8080:80`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMapping {
    pub host: u16,
    pub container: u16,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.host, self.container)
    }
}

impl<'de> Deserialize<'de> for PortMapping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let ports = text.split_once(':').and_then(|(host, container)| {
            Some(PortMapping { host: host.parse().ok()?, container: container.parse().ok()? })
        });
        ports.ok_or_else(|| D::Error::custom(format!("`{text}` must be HOST_PORT:CONTAINER_PORT")))
    }
}

/// As written in the file, so that the schema can show `publish`'s default.
impl Serialize for PortMapping {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for PortMapping {
    fn schema_name() -> Cow<'static, str> {
        "PortMapping".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[0-9]{1,5}:[0-9]{1,5}$" })
    }
}

/// A wait in milliseconds: from 1 to an hour, so that no deadline is zero and none overflows
/// a clock (a scenario's waits are seconds; an hour is far beyond any of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Milliseconds(u64);

impl Milliseconds {
    pub const MAX: u64 = 3_600_000;

    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

impl fmt::Display for Milliseconds {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Milliseconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u64::deserialize(deserializer)?;
        if !(1..=Self::MAX).contains(&value) {
            return Err(D::Error::custom(format!("{value} ms is out of range: give 1 to {} (an hour)", Self::MAX)));
        }
        Ok(Milliseconds(value))
    }
}

/// As written in the file, so that the schema can show defaults.
impl Serialize for Milliseconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl JsonSchema for Milliseconds {
    fn schema_name() -> Cow<'static, str> {
        "Milliseconds".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": Self::MAX })
    }
}

/// Docker's restart policy.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    OnFailure,
}

impl RestartPolicy {
    /// As scenarios, Docker and Podman spell it.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
        }
    }
}

/// One step: an object with exactly one key, the step's kind.
// `Serialize` is derived only for `kind`: the key serde writes is the kind as files spell it.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(remote = "Self", rename_all = "kebab-case")]
#[schemars(rename = "Step")]
pub enum Step {
    /// Runs `argv` in a container and checks `exit_code` (default 0), `stdout` and `stderr`;
    /// `save_stdout_as` keeps its trimmed stdout for `${name}` in later steps.
    Exec(Exec),
    /// Every container's eth0 IPv4 address, read in its network namespace, equals the infra container's.
    SameIp(Containers),
    /// The hostname in each container's UTS namespace is the same (with `expect: false`, it is not).
    SameHostname(SameHostname),
    /// `/proc/PID/ns/KIND` of each container's main process is one namespace (with `expect: false`, it is not).
    SameNamespace(SameNamespace),
    /// `ps` inside each container shows PID 1 running `command`.
    #[serde(rename = "pid-1")]
    Pid1(Pid1),
    /// No process in the container's PID namespace is a zombie.
    NoZombies(ContainerRef),
    /// The container's main process uses at most `max_cpu_ms` of CPU over `over_ms` while it waits.
    CpuIdle(CpuIdle),
    /// An HTTP GET to `127.0.0.1:port` + `path`, on the host where the runtime runs: checks `status` and `body`.
    Http(Http),
    /// Sends `signal` (`SIGINT`, ...) to a container's main process (on cri through containerd's task
    /// service: CRI has no call for it).
    Signal(SignalStep),
    /// Stops a container with `grace_seconds` (`docker stop`; on cri StopContainer, or StopPodSandbox for the
    /// infra container, which kills pause at once); checks `within_ms`, `exit_code` and `logs`.
    Stop(Stop),
    /// Waits up to `within_ms` for a container to exit by itself; checks `exit_code` and `logs`.
    WaitExit(WaitExit),
    /// Each container is running (`expect: true`) or not.
    Running(Running),
    /// Restarts an app container in its pod (`docker restart`; on cri, as the kubelet does: a new container,
    /// its attempt one more, in the same sandbox).
    Restart(ContainerRef),
    /// The container's main process as the kernel sees it (from /proc): `uid`, `gid`, `command`, `status`
    /// fields, open `fds`, the options of its `root_mount`, its `cwd`, its `children`, the CPU time
    /// it has used (`max_cpu_ms`) and the signals it must not ignore (`not_ignoring`).
    Process(Process),
    /// Waits until a container's main process has run for `at_least_ms` (its start time against the
    /// uptime of the machine it runs on), then checks that the same process still runs.
    Uptime(Uptime),
    /// An image's `files` (exactly these regular files and links) and `user`.
    Image(Image),
    /// A container's logs (stdout, then stderr) match `matches`.
    Logs(Logs),
    /// Retries one `step` every `every_ms` (default 200) until it passes or `within_ms` runs out.
    Eventually(Eventually),
    /// Runs one `step` `times` times, `at_once` at a time (default 1), as a kubelet's probes come;
    /// stops at the first failure, naming the try. A repeated step saves no values.
    Repeat(Repeat),
    /// How many connections the pod tried to open to anything outside itself (by any interface
    /// but loopback) since its infra container started: at most `at_most`, else the addresses are
    /// named. Each packet of a try sent before any answer counts (a SYN sent again counts again).
    /// A scenario with this step has the pod's own network namespace count them (an iptables
    /// rule there, from before the apps start; on podman-kube, once the pod is played): no host
    /// setting changes.
    Outbound(Outbound),
    /// A fact that differs between runtimes: one step per runtime says what that runtime shows.
    /// The report names the fact and the runtime whose step ran.
    ByRuntime(ByRuntime),
}

impl OneKeyEnum for Step {
    const NAME: &'static str = "step";
    const INSTEAD_OF_A_SECOND_KEY: &'static str = "make it a step of its own";

    fn derived<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Step::deserialize(deserializer)
    }
}

/// Wraps the derived deserializer (see `one_key`) so that `{}` and a second key say what to write.
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_key::deserialize(deserializer)
    }
}

/// The derived serializer as is: `remote = "Self"` made it a plain function too.
impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Step::serialize(self, serializer)
    }
}

/// The most connections the pod may open outside itself.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outbound {
    /// 0: the pod reaches for nothing beyond itself.
    pub at_most: u64,
}

/// Runs a command in a container and checks what it printed.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The name of a container in the pod.
    pub container: String,
    /// The command and its arguments, not run through a shell; not empty.
    /// `${name}` is replaced by a value saved earlier.
    pub argv: Vec<String>,
    /// The expected exit code. It has a default rather than null for "not checked", since a
    /// failing command is rarely intended.
    #[serde(default)]
    pub exit_code: u8,
    /// What stdout must match. Absent or null: not checked.
    pub stdout: Option<Matcher>,
    /// What stderr must match. Absent or null: not checked.
    pub stderr: Option<Matcher>,
    /// Saves trimmed stdout under this name; later steps use it as `${name}` in argv and matchers.
    pub save_stdout_as: Option<String>,
}

/// The containers to compare.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Containers {
    /// At least two container names.
    pub containers: Vec<String>,
}

/// The containers to compare and whether their hostnames should be the same.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SameHostname {
    /// At least two container names.
    pub containers: Vec<String>,
    /// true: the hostnames are all the same; false: they are not.
    #[serde(default = "yes")]
    pub expect: bool,
}

/// The containers to compare, the namespace, and whether it should be the same.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SameNamespace {
    /// Which namespace to compare.
    pub kind: NamespaceKind,
    /// At least two container names.
    pub containers: Vec<String>,
    /// true: the namespace is the same in all; false: it is not.
    #[serde(default = "yes")]
    pub expect: bool,
}

/// The containers whose PID 1 to check and the command it should run.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pid1 {
    /// Container names; at least one.
    pub containers: Vec<String>,
    /// What PID 1's command, as `ps` shows it, must match.
    pub command: Matcher,
}

/// One container.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerRef {
    /// The name of a container in the pod.
    pub container: String,
}

/// Watches a container's main process for a while: it must use at most `max_cpu_ms` of CPU.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CpuIdle {
    /// The name of a container in the pod.
    pub container: String,
    /// How long to watch, in milliseconds.
    #[serde(default = "default_idle_window_ms")]
    pub over_ms: Milliseconds,
    /// The most CPU time (user + system), in milliseconds, the process may use meanwhile; the
    /// kernel counts in 10 ms ticks.
    #[serde(default = "default_idle_cpu_ms")]
    pub max_cpu_ms: u64,
}

/// Where to send the GET and what should come back.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// A host port that a container publishes.
    pub port: u16,
    /// The request path; starts with /.
    #[serde(default = "root_path")]
    pub path: String,
    /// The expected HTTP status. Absent or null: not checked.
    pub status: Option<u16>,
    /// What the response body must match. Absent or null: not checked.
    pub body: Option<Matcher>,
}

/// The container and the signal to send to its main process.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalStep {
    /// The name of a container in the pod.
    pub container: String,
    /// A signal name such as `SIGINT`.
    pub signal: SignalName,
}

/// The container to stop and what to expect of it.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// The name of a container in the pod.
    pub container: String,
    /// Seconds the runtime waits before SIGKILL (Docker's default is 10; StopPodSandbox has none).
    #[serde(default = "default_grace_seconds")]
    pub grace_seconds: u16,
    /// The stop must take at most this many milliseconds. Absent or null: not checked.
    pub within_ms: Option<Milliseconds>,
    /// The expected exit code. Absent or null: not checked.
    pub exit_code: Option<u8>,
    /// What the container's logs must match after it stopped. Absent or null: not checked.
    pub logs: Option<Matcher>,
}

/// The container to wait for and what to expect of it.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitExit {
    /// The name of a container in the pod.
    pub container: String,
    /// How long to wait for the exit, in milliseconds.
    pub within_ms: Milliseconds,
    /// The expected exit code. Absent or null: not checked.
    pub exit_code: Option<u8>,
    /// What the container's logs must match after it exited. Absent or null: not checked.
    pub logs: Option<Matcher>,
}

/// The containers and whether they should be running.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Running {
    /// Container names; at least one.
    pub containers: Vec<String>,
    /// true: each is running; false: none is.
    pub expect: bool,
}

/// The container whose main process to check, and what to expect of it.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// The name of a container in the pod.
    pub container: String,
    /// The process's user id. Absent or null: not checked.
    pub uid: Option<u32>,
    /// The process's group id. Absent or null: not checked.
    pub gid: Option<u32>,
    /// What the process's command line must match. Absent or null: not checked.
    pub command: Option<Matcher>,
    /// Fields of `/proc/PID/status` (`CapEff`, `NoNewPrivs`, `SigIgn`, `Threads`, ...) and what
    /// each value must match. A field missing from the file fails.
    #[serde(default)]
    pub status: BTreeMap<String, Matcher>,
    /// What the process's open file descriptors must match: one `N -> target` line each, in
    /// order (`0 -> /dev/null`, `2 -> pipe:[...]`). Absent or null: not checked.
    pub fds: Option<Matcher>,
    /// What the mount options of the process's root (`/` in its mount namespace, as
    /// /proc/PID/mountinfo gives them: `ro,relatime`) must match. Absent or null: not checked.
    pub root_mount: Option<Matcher>,
    /// What the process's working directory (/proc/PID/cwd, as seen from its own root) must
    /// match. Absent or null: not checked.
    pub cwd: Option<Matcher>,
    /// What the PIDs of the process's children (/proc/PID/task/*/children, as the machine it runs
    /// on numbers them, one line each) must match: `{ "equals": "" }` for none. Absent or null:
    /// not checked.
    pub children: Option<Matcher>,
    /// The most CPU time (user + system), in milliseconds, the process may have used since it
    /// started; the kernel counts in 10 ms ticks. Absent or null: not checked.
    pub max_cpu_ms: Option<u64>,
    /// Signals the process must not ignore (none of them in `SigIgn` of /proc/PID/status): an
    /// ignored signal never reaches it.
    #[serde(default)]
    pub not_ignoring: Vec<SignalName>,
}

/// The container whose main process must live a while.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Uptime {
    /// The name of a container in the pod.
    pub container: String,
    /// How long the process must have run, in milliseconds.
    pub at_least_ms: Milliseconds,
}

/// The image to inspect and what it should hold.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// The image name.
    pub name: String,
    /// Every regular file and link of the image, without a leading slash, in any order.
    /// Absent or null: not checked.
    pub files: Option<Vec<String>>,
    /// The image's configured user, as its config says it (`docker image inspect`, containerd's image status).
    /// Absent or null: not checked.
    pub user: Option<String>,
}

/// The container whose logs to check, and what they must match.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    /// The name of a container in the pod.
    pub container: String,
    /// What the logs (stdout, then stderr) must match.
    pub matches: Matcher,
}

/// A step to retry, and for how long.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Eventually {
    /// Gives up after this many milliseconds.
    pub within_ms: Milliseconds,
    /// Milliseconds between tries.
    #[serde(default = "default_every_ms")]
    pub every_ms: Milliseconds,
    /// The step to retry.
    pub step: Box<Step>,
}

/// A step to run many times.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// How many times to run the step.
    #[schemars(range(min = 1))]
    pub times: u32,
    /// How many tries run at the same time (each waits for the one before it in its lane).
    #[serde(default = "default_at_once")]
    #[schemars(range(min = 1))]
    pub at_once: u32,
    /// The step to run.
    pub step: Box<Step>,
}

fn default_at_once() -> u32 {
    1
}

/// What each runtime should show of one fact: every runtime must be given its step.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ByRuntime {
    /// The fact, as a question each runtime's step answers: `whether the pod's containers share
    /// one UTS namespace`.
    pub fact: String,
    /// What the docker runtime shows (`docker run --net/--ipc/--pid=container:`).
    pub docker: Box<Step>,
    /// What the cri runtime shows (containerd's CRI plugin, as the kubelet uses it).
    pub cri: Box<Step>,
    /// What the podman runtime shows (a Podman pod, the pause under test its infra container).
    pub podman: Box<Step>,
}

impl ByRuntime {
    /// Each runtime's step, by the name `--runtime` gives it.
    pub fn steps(&self) -> [(&'static str, &Step); 3] {
        [("docker", &self.docker), ("cri", &self.cri), ("podman", &self.podman)]
    }

    pub fn step_for(&self, runtime: &str) -> Option<&Step> {
        self.steps().into_iter().find(|(name, _)| *name == runtime).map(|(_, step)| step)
    }
}

fn yes() -> bool {
    true
}

fn root_path() -> String {
    "/".to_string()
}

fn default_grace_seconds() -> u16 {
    10
}

fn default_every_ms() -> Milliseconds {
    Milliseconds(200)
}

fn default_idle_window_ms() -> Milliseconds {
    Milliseconds(1000)
}

fn default_idle_cpu_ms() -> u64 {
    10
}

impl Step {
    /// The step's kind, as written in the file: the one key serde writes for it.
    pub fn kind(&self) -> String {
        let written = serde_json::to_value(self).expect("a step always serializes");
        let key = written.as_object().and_then(|object| object.keys().next());
        key.expect("serde writes a step as an object with one key").clone()
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
            Step::Uptime(step) => one(&step.container),
            Step::CpuIdle(step) => one(&step.container),
            Step::Logs(step) => one(&step.container),
            Step::Eventually(step) => step.step.container_names(),
            Step::Repeat(step) => step.step.container_names(),
            Step::ByRuntime(step) => step.steps().into_iter().flat_map(|(_, step)| step.container_names()).collect(),
            Step::Http(_) | Step::Image(_) | Step::Outbound(_) => Vec::new(),
        }
    }

    /// Whether this step (or one inside it) reads the pod's outbound count.
    pub fn counts_outbound(&self) -> bool {
        match self {
            Step::Outbound(_) => true,
            Step::Eventually(step) => step.step.counts_outbound(),
            Step::Repeat(step) => step.step.counts_outbound(),
            Step::ByRuntime(step) => step.steps().into_iter().any(|(_, step)| step.counts_outbound()),
            _ => false,
        }
    }

    /// The images a step inspects (`image`, also inside `eventually`, `repeat`, `by-runtime`).
    pub fn image_names(&self) -> Vec<&str> {
        match self {
            Step::Image(step) => vec![step.name.as_str()],
            Step::Eventually(step) => step.step.image_names(),
            Step::Repeat(step) => step.step.image_names(),
            Step::ByRuntime(step) => step.steps().into_iter().flat_map(|(_, step)| step.image_names()).collect(),
            _ => Vec::new(),
        }
    }
}
