//! `same-ip`: the containers of the pod share one network address.

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ScenarioFacts, StepFormat, at_least_two, names};

/// The containers to compare.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Containers")]
pub struct SameIp {
    /// At least two container names.
    pub containers: Vec<String>,
}

impl StepFormat for SameIp {
    fn check(&self, field: &str, _: &ScenarioFacts) -> Result<()> {
        at_least_two(field, &self.containers)
    }

    fn container_names(&self) -> Vec<&str> {
        names(&self.containers)
    }
}
