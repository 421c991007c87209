//! `wait-exit`: a container that exits by itself, in time, and how it ended.

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, StepFormat, check_matcher, ending, matcher_texts};
use crate::scenario::{Matcher, Milliseconds};

/// The container to wait for and what to expect of it.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
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

impl StepFormat for WaitExit {
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
