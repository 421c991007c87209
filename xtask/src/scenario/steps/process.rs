//! `process`: a container's main process as the kernel sees it.

use std::collections::BTreeMap;

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, StepFormat, check_matcher, matcher_texts};
use crate::scenario::{Matcher, SignalName};

/// The container whose main process to check, and what to expect of it.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
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

impl Process {
    /// Every matcher of the step but `status`'s, by field name, in the order they are checked.
    fn optional_matchers(&self) -> [(&'static str, Option<&Matcher>); 5] {
        [
            ("command", self.command.as_ref()),
            ("fds", self.fds.as_ref()),
            ("root_mount", self.root_mount.as_ref()),
            ("cwd", self.cwd.as_ref()),
            ("children", self.children.as_ref()),
        ]
    }
}

impl StepFormat for Process {
    fn check(&self, field: &str, _: &ScenarioFacts) -> Result<()> {
        let [command, rest @ ..] = self.optional_matchers();
        check_matcher(field, command.0, command.1)?;
        for (name, matcher) in &self.status {
            check_matcher(field, &format!("status[\"{name}\"]"), Some(matcher))?;
        }
        rest.into_iter().try_for_each(|(name, matcher)| check_matcher(field, name, matcher))
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        let [command, rest @ ..] = self.optional_matchers();
        saved.check(field, command.0, matcher_texts(command.1))?;
        for (name, matcher) in &self.status {
            saved.check(field, &format!("status[\"{name}\"]"), matcher.texts())?;
        }
        rest.into_iter().try_for_each(|(name, matcher)| saved.check(field, name, matcher_texts(matcher)))
    }

    fn container_names(&self) -> Vec<&str> {
        vec![&self.container]
    }

    fn summary(&self) -> String {
        let mut checks: Vec<String> = Vec::new();
        checks.extend(self.uid.map(|uid| format!("uid {uid}")));
        checks.extend(self.gid.map(|gid| format!("gid {gid}")));
        checks.extend(self.status.iter().map(|(field, matcher)| format!("{field} {matcher}")));
        checks.extend(self.fds.as_ref().map(|fds| format!("fds {fds}")));
        checks.extend(self.root_mount.as_ref().map(|root| format!("root mount {root}")));
        checks.extend(self.cwd.as_ref().map(|cwd| format!("cwd {cwd}")));
        checks.extend(self.children.as_ref().map(|children| format!("children {children}")));
        checks.extend(self.max_cpu_ms.map(|most| format!("CPU at most {most} ms")));
        if !self.not_ignoring.is_empty() {
            let names: Vec<&str> = self.not_ignoring.iter().map(|signal| signal.as_str()).collect();
            checks.push(format!("not ignoring {}", names.join(", ")));
        }
        format!("{}: {}", self.container, checks.join(", "))
    }
}
