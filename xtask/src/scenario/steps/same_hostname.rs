//! `same-hostname`: the containers see one hostname (or, expected so, not).

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ScenarioFacts, StepFormat, at_least_two, names};

/// The containers to compare and whether their hostnames should be the same.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SameHostname {
    /// At least two container names.
    pub containers: Vec<String>,
    /// true: the hostnames are all the same; false: they are not.
    #[serde(default = "super::yes")]
    pub expect: bool,
}

impl StepFormat for SameHostname {
    fn check(&self, field: &str, _: &ScenarioFacts) -> Result<()> {
        at_least_two(field, &self.containers)
    }

    fn container_names(&self) -> Vec<&str> {
        names(&self.containers)
    }
}
