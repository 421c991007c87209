//! `uptime`: a container's main process lives at least a while.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::StepFormat;
use crate::scenario::Milliseconds;

/// The container whose main process must live a while.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Uptime {
    /// The name of a container in the pod.
    pub container: String,
    /// How long the process must have run, in milliseconds.
    pub at_least_ms: Milliseconds,
}

impl StepFormat for Uptime {
    fn container_names(&self) -> Vec<&str> {
        vec![&self.container]
    }

    fn lasts_at_least(&self) -> Duration {
        self.at_least_ms.duration()
    }

    fn summary(&self) -> String {
        format!("{}: at least {} ms", self.container, self.at_least_ms)
    }
}
