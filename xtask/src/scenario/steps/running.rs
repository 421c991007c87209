//! `running`: whether each container runs.

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ScenarioFacts, StepFormat, at_least_one, names};

/// The containers and whether they should be running.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Running {
    /// Container names; at least one.
    pub containers: Vec<String>,
    /// true: each is running; false: none is.
    pub expect: bool,
}

impl StepFormat for Running {
    fn check(&self, field: &str, _: &ScenarioFacts) -> Result<()> {
        at_least_one(field, &self.containers)
    }

    fn container_names(&self) -> Vec<&str> {
        names(&self.containers)
    }
}
