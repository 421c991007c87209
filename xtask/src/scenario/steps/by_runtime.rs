//! `by-runtime`: a fact that differs between runtimes, one step per runtime.

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, Step, StepFormat};

/// What each runtime should show of one fact: every runtime must be given its step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ByRuntime {
    /// The fact, as a question each runtime's step answers: `whether the pod's containers share
    /// one UTS namespace`.
    pub fact: String,
    /// What the docker runtime shows (`docker run --net/--ipc/--pid=container:`).
    pub docker: Box<Step>,
    /// What the cri runtime shows (containerd's CRI plugin, as the kubelet uses it).
    pub cri: Box<Step>,
    /// What the podman runtime shows (a Podman pod, the pause under test its infra container).
    pub podman: Box<Step>,
}

impl ByRuntime {
    /// Each runtime's step, by the name `--runtime` gives it.
    pub fn steps(&self) -> [(&'static str, &Step); 3] {
        [("docker", &self.docker), ("cri", &self.cri), ("podman", &self.podman)]
    }

    pub fn step_for(&self, runtime: &str) -> Option<&Step> {
        self.steps().into_iter().find(|(name, _)| *name == runtime).map(|(_, step)| step)
    }
}

impl StepFormat for ByRuntime {
    fn check(&self, field: &str, scenario: &ScenarioFacts) -> Result<()> {
        for (runtime, step) in self.steps() {
            step.format().check(&step.field_in(&format!("{field}.{runtime}")), scenario)?;
        }
        Ok(())
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        // A name saved by one runtime's step only cannot be used after it.
        let mut saved_by_all: Option<SavedValues> = None;
        for (runtime, step) in self.steps() {
            let mut saved_here = saved.clone();
            step.format().check_references(&step.field_in(&format!("{field}.{runtime}")), &mut saved_here)?;
            saved_by_all = Some(match saved_by_all {
                None => saved_here,
                Some(all) => all.intersection(&saved_here),
            });
        }
        saved.extend(saved_by_all.unwrap_or_default());
        Ok(())
    }

    fn container_names(&self) -> Vec<&str> {
        self.steps().into_iter().flat_map(|(_, step)| step.format().container_names()).collect()
    }

    fn image_names(&self) -> Vec<&str> {
        self.steps().into_iter().flat_map(|(_, step)| step.format().image_names()).collect()
    }

    fn counts_outbound(&self) -> bool {
        self.steps().into_iter().any(|(_, step)| step.format().counts_outbound())
    }

    fn fact(&self) -> Option<&str> {
        Some(&self.fact)
    }

    fn summary(&self) -> String {
        self.fact.clone()
    }
}
