//! Runs an `outbound` step: the count the pod's own network namespace keeps.

use anyhow::{Result, bail};

use super::{RunStep, StepContext};
use crate::pod::outbound;
use crate::scenario::steps::Outbound;

impl RunStep for Outbound {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let seen = outbound::read(context.runtime, &context.pod.infra.name, context.cancel)?;
        if seen.connections > self.at_most {
            bail!(
                "expected at most {} connections from the pod to outside itself, got {}, to {}",
                self.at_most,
                seen.connections,
                seen.destinations.join(", ")
            );
        }
        Ok(())
    }
}
