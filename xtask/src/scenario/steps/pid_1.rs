//! `pid-1`: what runs as PID 1 in each container, as `ps` there shows it.

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, StepFormat, at_least_one, check_matcher, names};
use crate::scenario::Matcher;

/// The containers whose PID 1 to check and the command it should run.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pid1 {
    /// Container names; at least one.
    pub containers: Vec<String>,
    /// What PID 1's command, as `ps` shows it, must match.
    pub command: Matcher,
}

impl StepFormat for Pid1 {
    fn check(&self, field: &str, _: &ScenarioFacts) -> Result<()> {
        at_least_one(field, &self.containers)?;
        check_matcher(field, "command", Some(&self.command))
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        saved.check(field, "command", self.command.texts())
    }

    fn container_names(&self) -> Vec<&str> {
        names(&self.containers)
    }
}
