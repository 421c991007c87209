//! Runs a `running` step: each container's state, as the runtime says it.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::{RunStep, StepContext, show};
use crate::scenario::steps::Running;

impl RunStep for Running {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let states = context.runtime.states(&self.containers)?;
        let seen: BTreeMap<String, String> =
            states.into_iter().map(|(name, state)| (name, state.running.to_string())).collect();
        let expected = self.expect.to_string();
        if seen.values().any(|state| *state != expected) {
            bail!("expected running = {expected} for each, got {}", show(&seen));
        }
        Ok(())
    }
}
