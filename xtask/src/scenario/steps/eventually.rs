//! `eventually`: one step retried until it passes or its time runs out.

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, Step, StepFormat};
use crate::scenario::Milliseconds;

/// A step to retry, and for how long.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Eventually {
    /// Gives up after this many milliseconds.
    pub within_ms: Milliseconds,
    /// Milliseconds between tries.
    #[serde(default = "default_every_ms")]
    pub every_ms: Milliseconds,
    /// The step to retry.
    pub step: Box<Step>,
}

fn default_every_ms() -> Milliseconds {
    Milliseconds(200)
}

impl StepFormat for Eventually {
    fn check(&self, field: &str, scenario: &ScenarioFacts) -> Result<()> {
        self.step.format().check(&self.step.field_in(&format!("{field}.step")), scenario)
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        self.step.format().check_references(&self.step.field_in(&format!("{field}.step")), saved)
    }

    fn container_names(&self) -> Vec<&str> {
        self.step.format().container_names()
    }

    fn image_names(&self) -> Vec<&str> {
        self.step.format().image_names()
    }

    fn counts_outbound(&self) -> bool {
        self.step.format().counts_outbound()
    }

    fn summary(&self) -> String {
        format!("within {} ms: {}", self.within_ms, self.step.summary())
    }
}
