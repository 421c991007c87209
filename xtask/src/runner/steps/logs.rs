//! Runs a `logs` step: the container's logs, as the runtime gives them.

use anyhow::Result;

use super::{RunStep, StepContext, check_text};
use crate::scenario::steps::Logs;

impl RunStep for Logs {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let text = context.runtime.logs(&self.container)?.text();
        check_text("logs", Some(&self.matches), &text, &context.variables)?;
        Ok(())
    }
}
