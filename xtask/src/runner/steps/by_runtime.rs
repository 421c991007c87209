//! Runs a `by-runtime` step: the step of the runtime under test.

use anyhow::{Context, Result};

use super::{RunStep, StepContext};
use crate::runtime::RuntimeKind;
use crate::scenario::StepFormat;
use crate::scenario::steps::ByRuntime;

impl RunStep for ByRuntime {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let runtime = context.runtime.kind().facts();
        let step = self.step_for(runtime).with_context(|| format!("no step for the {runtime} runtime"))?;
        super::run(context, step).with_context(|| format!("on {runtime}, {}: {}", self.fact, step.summary()))
    }

    fn summary_on(&self, runtime: &'static RuntimeKind) -> Option<String> {
        let chosen = self.step_for(runtime.facts())?;
        Some(format!("{} (on {}: {})", StepFormat::summary(self), runtime.name(), chosen.summary()))
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::RUNTIMES;
    use crate::scenario::Step;

    /// A runtime added to `--runtime` must be given its step in every `by-runtime` step.
    #[test]
    fn every_runtime_has_its_step_in_a_by_runtime_step() {
        let text = r#"{ "by-runtime": { "fact": "f", "docker": { "running": { "containers": ["a"], "expect": true } },
                       "cri": { "running": { "containers": ["a"], "expect": true } },
                       "podman": { "running": { "containers": ["a"], "expect": true } } } }"#;
        let Step::ByRuntime(by_runtime) = serde_json::from_str::<Step>(text).unwrap() else { panic!("not by-runtime") };
        for runtime in RUNTIMES {
            assert!(by_runtime.step_for(runtime.facts()).is_some(), "no step for {}", runtime.name());
        }
    }
}
