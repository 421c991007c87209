//! Runs a `stop` step: the stop through the runtime, how long it took and how the container ended.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{RunStep, StepContext, check_ending};
use crate::scenario::steps::Stop;

impl RunStep for Stop {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let started = Instant::now();
        context.runtime.stop(&self.container, Duration::from_secs(u64::from(self.grace_seconds)))?;
        let took = started.elapsed();
        check_ending(context, &self.container, self.exit_code, self.logs.as_ref()).with_context(|| {
            format!("the stop took {} ms of a {} s grace period", took.as_millis(), self.grace_seconds)
        })?;
        if let Some(within) = self.within_ms {
            if took > within.duration() {
                bail!("expected {} to stop within {within} ms, it took {} ms", self.container, took.as_millis());
            }
        }
        Ok(())
    }
}
