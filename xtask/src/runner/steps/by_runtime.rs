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

    /// Every runtime of the registry runs a step of a `by-runtime` step with a default: its own
    /// where it has one, else the default.
    #[test]
    fn every_runtime_runs_its_own_step_or_the_default() {
        let text = r#"{ "by-runtime": { "fact": "f", "default": { "running": { "containers": ["a"], "expect": true } },
                       "cri": { "running": { "containers": ["a"], "expect": false } } } }"#;
        let Step::ByRuntime(by_runtime) = serde_json::from_str::<Step>(text).unwrap() else { panic!("not by-runtime") };
        for runtime in RUNTIMES {
            let step = by_runtime.step_for(runtime.facts()).unwrap_or_else(|| panic!("no step for {}", runtime.name()));
            let own = runtime.facts() == "cri";
            assert_eq!(step == &by_runtime.own[0].1, own, "{}", runtime.name());
        }
    }
}
