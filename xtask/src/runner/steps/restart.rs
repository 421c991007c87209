//! Runs a `restart` step: the runtime restarts the container in its pod.

use anyhow::Result;

use super::{RunStep, StepContext};
use crate::scenario::steps::Restart;

impl RunStep for Restart {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        context.runtime.restart(&self.0.container)
    }
}
