//! `logs`: what a container has printed so far.

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, StepFormat, check_matcher};
use crate::scenario::Matcher;

/// The container whose logs to check, and what they must match.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    /// The name of a container in the pod.
    pub container: String,
    /// What the logs (stdout, then stderr) must match.
    pub matches: Matcher,
}

impl StepFormat for Logs {
    fn check(&self, field: &str, _: &ScenarioFacts) -> Result<()> {
        check_matcher(field, "matches", Some(&self.matches))
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        saved.check(field, "matches", self.matches.texts())
    }

    fn container_names(&self) -> Vec<&str> {
        vec![&self.container]
    }
}
