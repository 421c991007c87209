//! Runs an `eventually` step: its step again, every so often, until it passes or time runs out.

use std::time::Instant;

use anyhow::{Context, Result};

use super::{RunStep, StepContext};
use crate::scenario::steps::Eventually;

impl RunStep for Eventually {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let deadline = Instant::now() + self.within_ms.duration();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match super::run(context, &self.step) {
                Ok(()) => break,
                Err(error) if Instant::now() >= deadline || context.cancel.stop_asked() => {
                    return Err(error).context(format!(
                        "still failing after {attempts} attempts over {} ms",
                        self.within_ms
                    ));
                }
                Err(_) => std::thread::sleep(self.every_ms.duration()),
            }
        }
        Ok(())
    }
}
