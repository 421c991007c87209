//! The step kinds. Each kind is one file here, holding the struct its steps are read into and
//! what the loader knows of it (`StepFormat`), and one file in runner/steps/ saying how it runs.
//! `step_kinds!` is the one list of kinds: the `Step` enum, its keys and the dispatch to each
//! kind's code (here and in the runner) are generated from it.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::Matcher;
use super::one_key::{self, OneKeyEnum};

/// Every step kind, in the order of the schema and the docs table: its file, the key files
/// write it with, its variant and its struct; the doc comment is the kind's description
/// (schema.json and the docs table show it). Adding a kind is one line here and its two files.
///
/// `step_kinds!(callback)` hands the list to `callback!`, a macro that generates code for every
/// kind; the runner generates its dispatch so.
macro_rules! step_kinds {
    ($callback:ident) => {
        $callback! {
            /// Runs `argv` in a container and checks `exit_code` (default 0), `stdout` and `stderr`;
            /// `save_stdout_as` keeps its trimmed stdout for `${name}` in later steps.
            exec: "exec" => Exec(Exec),
            /// Every container's eth0 IPv4 address, read in its network namespace, equals the infra container's.
            same_ip: "same-ip" => SameIp(SameIp),
            /// The hostname in each container's UTS namespace is the same (with `expect: false`, it is not).
            same_hostname: "same-hostname" => SameHostname(SameHostname),
            /// `/proc/PID/ns/KIND` of each container's main process is one namespace (with `expect: false`, it is not).
            same_namespace: "same-namespace" => SameNamespace(SameNamespace),
            /// `ps` inside each container shows PID 1 running `command`.
            pid_1: "pid-1" => Pid1(Pid1),
            /// No process in the container's PID namespace is a zombie.
            no_zombies: "no-zombies" => NoZombies(NoZombies),
            /// The container's main process uses at most `max_cpu_ms` of CPU over `over_ms` while it waits.
            cpu_idle: "cpu-idle" => CpuIdle(CpuIdle),
            /// An HTTP GET to `127.0.0.1:port` + `path`, on the host where the runtime runs: checks `status` and `body`.
            http: "http" => Http(Http),
            /// Sends `signal` (`SIGINT`, ...) to a container's main process (on cri through containerd's task
            /// service: CRI has no call for it).
            signal: "signal" => Signal(SignalStep),
            /// Stops a container with `grace_seconds` (`docker stop`; on cri StopContainer, or StopPodSandbox for the
            /// infra container, which kills pause at once); checks `within_ms`, `exit_code` and `logs`.
            stop: "stop" => Stop(Stop),
            /// Waits up to `within_ms` for a container to exit by itself; checks `exit_code` and `logs`.
            wait_exit: "wait-exit" => WaitExit(WaitExit),
            /// Each container is running (`expect: true`) or not.
            running: "running" => Running(Running),
            /// Restarts an app container in its pod (`docker restart`; on cri, as the kubelet does: a new container,
            /// its attempt one more, in the same sandbox).
            restart: "restart" => Restart(Restart),
            /// The container's main process as the kernel sees it (from /proc): `uid`, `gid`, `command`, `status`
            /// fields, open `fds`, the options of its `root_mount`, its `cwd`, its `children`, the CPU time
            /// it has used (`max_cpu_ms`) and the signals it must not ignore (`not_ignoring`).
            process: "process" => Process(Process),
            /// Waits until a container's main process has run for `at_least_ms` (its start time against the
            /// uptime of the machine it runs on), then checks that the same process still runs.
            uptime: "uptime" => Uptime(Uptime),
            /// An image's `files` (exactly these regular files and links) and `user`.
            image: "image" => Image(Image),
            /// A container's logs (stdout, then stderr) match `matches`.
            logs: "logs" => Logs(Logs),
            /// Retries one `step` every `every_ms` (default 200) until it passes or `within_ms` runs out.
            eventually: "eventually" => Eventually(Eventually),
            /// Runs one `step` `times` times, `at_once` at a time (default 1), as a kubelet's probes come;
            /// stops at the first failure, naming the try. A repeated step saves no values.
            repeat: "repeat" => Repeat(Repeat),
            /// How many connections the pod tried to open to anything outside itself (by any interface
            /// but loopback) since its infra container started: at most `at_most`, else the addresses are
            /// named. Each packet of a try sent before any answer counts (a SYN sent again counts again).
            /// A scenario with this step has the pod's own network namespace count them (an iptables
            /// rule there, from before the apps start; on podman-kube, once the pod is played): no host
            /// setting changes.
            outbound: "outbound" => Outbound(Outbound),
            /// A fact that differs between runtimes: `default` says what most show, and a step under a
            /// runtime's key what that one shows instead. The report names the fact and the runtime
            /// whose step ran.
            by_runtime: "by-runtime" => ByRuntime(ByRuntime),
        }
    };
}
pub(crate) use step_kinds;

/// The `Step` enum, its key and the dispatch to each kind's `StepFormat`, from the list.
macro_rules! step_enum {
    ($( $(#[$description:meta])* $module:ident: $key:literal => $variant:ident($format:ident), )*) => {
        $(pub mod $module;)*
        $(pub use $module::$format;)*

        /// One step: an object with exactly one key, the step's kind.
        #[derive(Debug, PartialEq, Deserialize, JsonSchema)]
        #[serde(remote = "Self")]
        #[schemars(rename = "Step")]
        pub enum Step {
            $(
                $(#[$description])*
                #[serde(rename = $key)]
                $variant($format),
            )*
        }

        impl Step {
            /// The step's kind, as files write it: the step's one key.
            pub fn key(&self) -> &'static str {
                match self {
                    $(Step::$variant(_) => $key,)*
                }
            }

            /// What the loader knows of the step, whatever its kind.
            pub fn format(&self) -> &dyn StepFormat {
                match self {
                    $(Step::$variant(step) => step,)*
                }
            }
        }
    };
}
step_kinds!(step_enum);

/// What the loader, the plan and the reports know of a step kind: everything but how it runs.
pub trait StepFormat {
    /// What the types cannot say, errors named under `field` (`steps[2].exec`).
    fn check(&self, _field: &str, _scenario: &ScenarioFacts) -> Result<()> {
        Ok(())
    }

    /// Every `${name}` the step uses must be a value an earlier step saves; adds what it saves.
    fn check_references(&self, _field: &str, _saved: &mut SavedValues) -> Result<()> {
        Ok(())
    }

    /// The containers the step names, so the loader can check that each exists.
    fn container_names(&self) -> Vec<&str>;

    /// The images the step inspects, so that they are imported before the pod starts.
    fn image_names(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Whether this step (or one inside it) reads the pod's outbound count.
    fn counts_outbound(&self) -> bool {
        false
    }

    /// How long the step lasts at least, so that trials that last longest start first.
    fn lasts_at_least(&self) -> Duration {
        Duration::ZERO
    }

    /// The fact a step states, for the report (`by-runtime`'s).
    fn fact(&self) -> Option<&str> {
        None
    }

    /// A short description of the step after its key, for trial output and reports.
    fn summary(&self) -> String {
        self.container_names().join(", ")
    }
}

impl Step {
    /// The step's key and what it does, for trial output and reports.
    pub fn summary(&self) -> String {
        format!("{} {}", self.key(), self.format().summary())
    }

    /// How errors name this step inside `parent` (`steps[1].eventually.step`).
    pub fn field_in(&self, parent: &str) -> String {
        format!("{parent}.{}", self.key())
    }
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

/// What a step's check needs of the whole scenario, and of the runtimes it may run on.
pub struct ScenarioFacts<'a> {
    /// The host ports the pod's containers publish.
    pub published_ports: BTreeSet<u16>,
    /// The keys `by-runtime` steps may give a runtime's own step: the runtimes' fact keys
    /// (`runtime::fact_keys`, which the caller of the loader passes in).
    pub runtime_keys: &'a [&'a str],
}

/// The values saved (`save_stdout_as`) by the steps before the one being checked.
#[derive(Clone, Default)]
pub struct SavedValues(BTreeSet<String>);

impl SavedValues {
    /// Fails on the first `${name}` in `texts` that no earlier step saves, naming `{field}.{name}`.
    fn check(&self, field: &str, name: &str, texts: Vec<&str>) -> Result<()> {
        for text in texts {
            for reference in references(text) {
                if !self.0.contains(reference) {
                    let known = if self.0.is_empty() {
                        "none is saved before it".to_string()
                    } else {
                        format!("saved before it: {}", self.0.iter().cloned().collect::<Vec<_>>().join(", "))
                    };
                    bail!(
                        "{field}.{name}: `${{{reference}}}` is no value an earlier step saves with save_stdout_as ({known})"
                    );
                }
            }
        }
        Ok(())
    }

    fn save(&mut self, name: &str) {
        self.0.insert(name.to_string());
    }

    fn intersection(&self, other: &SavedValues) -> SavedValues {
        SavedValues(self.0.intersection(&other.0).cloned().collect())
    }

    fn extend(&mut self, other: SavedValues) {
        self.0.extend(other.0);
    }
}

/// The names of the `${name}` references in a text.
fn references(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    found
}

fn matcher_texts(matcher: Option<&Matcher>) -> Vec<&str> {
    matcher.map(Matcher::texts).unwrap_or_default()
}

/// What a matcher that parsed can still get wrong (an empty `all`), named `{field}.{name}`.
fn check_matcher(field: &str, name: &str, matcher: Option<&Matcher>) -> Result<()> {
    match matcher.map(Matcher::validate) {
        Some(Err(problem)) => bail!("{field}.{name}: {problem}"),
        _ => Ok(()),
    }
}

fn at_least_one(field: &str, containers: &[String]) -> Result<()> {
    if containers.is_empty() {
        bail!("{field}.containers: name at least one container");
    }
    Ok(())
}

fn at_least_two(field: &str, containers: &[String]) -> Result<()> {
    if containers.len() < 2 {
        bail!("{field}.containers: a comparison needs at least two containers");
    }
    Ok(())
}

fn names(containers: &[String]) -> Vec<&str> {
    containers.iter().map(String::as_str).collect()
}

/// `: exit code 0, logs contain "..."`: how a stop or an exit is checked.
fn ending(exit_code: Option<u8>, logs: Option<&Matcher>) -> String {
    let checks: Vec<String> = exit_code
        .map(|code| format!("exit code {code}"))
        .into_iter()
        .chain(logs.map(|logs| format!("logs {logs}")))
        .collect();
    if checks.is_empty() { String::new() } else { format!(": {}", checks.join(", ")) }
}

/// One container.
// The whole of a step that names only that (`no-zombies`, `restart`).
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerRef {
    /// The name of a container in the pod.
    pub container: String,
}

fn yes() -> bool {
    true
}
