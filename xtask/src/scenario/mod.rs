//! The scenario format: a pod and the ordered steps that test it, as strict JSON.
//!
//! These types are the format. `scenarios/schema.json`, for editors, is generated from them
//! (doc comments become its descriptions), and so are the step and matcher tables of
//! docs/scenarios.md; after changing a type or a doc comment, `cargo test -p xtask --lib schema`
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
pub mod steps;
// Only tests generate the schema: the files are committed, and a test keeps them fresh.
#[cfg(test)]
mod schema;

#[cfg(test)]
pub use load::parse;
pub use load::{file_source, load_all};
pub use matcher::Matcher;
pub use signal_name::SignalName;
pub use steps::{Step, StepFormat};

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
    #[allow(dead_code, reason = "read only to be checked, which its type does as it is read")]
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
