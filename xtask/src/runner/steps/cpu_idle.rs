//! Runs a `cpu-idle` step: the CPU time a container's main process uses while it waits.

use anyhow::{Result, bail};

use super::{RunStep, StepContext, cpu_milliseconds};
use crate::runtime;
use crate::scenario::steps::CpuIdle;

impl RunStep for CpuIdle {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let pid = runtime::main_pid(context.runtime, &self.container)?;
        let before = cpu_milliseconds(context.host(), pid, context.cancel)?;
        std::thread::sleep(self.over_ms.duration());
        context.cancel.check()?;
        let used = cpu_milliseconds(context.host(), pid, context.cancel)?.saturating_sub(before);
        if used > self.max_cpu_ms {
            bail!(
                "expected {} to use at most {} ms of CPU over {} ms of waiting, it used {used} ms",
                self.container,
                self.max_cpu_ms,
                self.over_ms
            );
        }
        Ok(())
    }
}
