//! Runs a `wait-exit` step: the container's state read until it exits or time runs out.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{RunStep, StepContext, check_ending, state_of};
use crate::scenario::steps::WaitExit;

impl RunStep for WaitExit {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let deadline = Instant::now() + self.within_ms.duration();
        while state_of(context, &self.container)?.running {
            if Instant::now() > deadline {
                bail!("expected {} to exit within {} ms, it is still running", self.container, self.within_ms);
            }
            context.cancel.check()?;
            std::thread::sleep(Duration::from_millis(20));
        }
        check_ending(context, &self.container, self.exit_code, self.logs.as_ref())?;
        Ok(())
    }
}
