//! `stop`: a container stopped through its runtime, and how it ended.

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, StepFormat, check_matcher, ending, matcher_texts};
use crate::scenario::{Matcher, Milliseconds};

/// The container to stop and what to expect of it.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
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

fn default_grace_seconds() -> u16 {
    10
}

impl StepFormat for Stop {
    fn check(&self, field: &str, _: &ScenarioFacts) -> Result<()> {
        check_matcher(field, "logs", self.logs.as_ref())
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        saved.check(field, "logs", matcher_texts(self.logs.as_ref()))
    }

    fn container_names(&self) -> Vec<&str> {
        vec![&self.container]
    }

    fn summary(&self) -> String {
        format!("{}{}", self.container, ending(self.exit_code, self.logs.as_ref()))
    }
}
