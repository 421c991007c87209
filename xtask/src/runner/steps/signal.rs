//! Runs a `signal` step: the signal sent through the runtime, to a container that runs.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{RunStep, StepContext, state_of};
use crate::runtime::ContainerState;
use crate::scenario::steps::SignalStep;

impl RunStep for SignalStep {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let name = self.signal.signal();
        // Said plainly, where a runtime would answer in its own words (or signal nothing).
        let not_running = |state: &ContainerState| {
            format!("cannot send {name} to {}: it is not running{}", self.container, state.ending())
        };
        let state = state_of(context, &self.container)?;
        if !state.running {
            bail!(not_running(&state));
        }
        if let Err(error) = context.runtime.signal(&self.container, name) {
            // It may have ended since its state was read: a runtime reports an exit a
            // moment after its process is gone, so the state is read again for a while.
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                match state_of(context, &self.container) {
                    Ok(state) if !state.running => bail!(not_running(&state)),
                    Ok(_) => std::thread::sleep(Duration::from_millis(100)),
                    Err(_) => break,
                }
            }
            return Err(error);
        }
        Ok(())
    }
}
