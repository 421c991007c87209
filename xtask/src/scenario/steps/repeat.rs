//! `repeat`: one step run many times, some at once, as a kubelet's probes come.

use anyhow::{Result, bail};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, Step, StepFormat};

/// A step to run many times.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// How many times to run the step.
    #[schemars(range(min = 1))]
    pub times: u32,
    /// How many tries run at the same time (each waits for the one before it in its lane).
    #[serde(default = "default_at_once")]
    #[schemars(range(min = 1))]
    pub at_once: u32,
    /// The step to run.
    pub step: Box<Step>,
}

fn default_at_once() -> u32 {
    1
}

impl StepFormat for Repeat {
    fn check(&self, field: &str, scenario: &ScenarioFacts) -> Result<()> {
        if self.times == 0 {
            bail!("{field}.times: must be at least 1");
        }
        if self.at_once == 0 || self.at_once > self.times {
            bail!("{field}.at_once: must be from 1 to times ({})", self.times);
        }
        self.step.format().check(&self.step.field_in(&format!("{field}.step")), scenario)
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        // What the tries save is dropped: later steps cannot use it.
        let mut saved_by_tries = saved.clone();
        self.step.format().check_references(&self.step.field_in(&format!("{field}.step")), &mut saved_by_tries)
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
        format!("{} times, {} at once: {}", self.times, self.at_once, self.step.summary())
    }
}
