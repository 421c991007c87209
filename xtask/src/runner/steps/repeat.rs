//! Runs a `repeat` step: its step in lanes, side by side, until every try passed or one failed.

use anyhow::Result;

use super::{RunStep, StepContext};
use crate::scenario::Step;
use crate::scenario::steps::Repeat;
use crate::side_by_side;

impl RunStep for Repeat {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        run_repeatedly(context, &self.step, self.times, self.at_once)
    }
}

/// Runs `step` `times` times in `at_once` lanes, each lane one try after another with its own
/// copy of the saved values; the first failure stops every lane and names its try.
fn run_repeatedly(context: &StepContext, step: &Step, times: u32, at_once: u32) -> Result<()> {
    let failed = std::sync::atomic::AtomicBool::new(false);
    let lanes: Vec<u32> = (0..at_once).collect();
    side_by_side::each(&lanes, |&lane| {
        let mut lane_context =
            StepContext {
                runtime: context.runtime,
                pod: context.pod,
                variables: context.variables.clone(),
                cancel: context.cancel,
            };
        for try_index in (lane..times).step_by(at_once as usize) {
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            context.cancel.check()?;
            if let Err(error) = super::run(&mut lane_context, step) {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(error.context(format!("try {} of {times}", try_index + 1)));
            }
        }
        Ok(())
    })?;
    Ok(())
}
