//! Runs a `same-hostname` step: `hostname` in each container's UTS namespace.

use anyhow::Result;

use super::{QUICK, RunStep, StepContext, expect_sameness, for_each};
use crate::command::argv;
use crate::runtime;
use crate::scenario::steps::SameHostname;

impl RunStep for SameHostname {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let pids = runtime::main_pids(context.runtime, &self.containers)?;
        let seen = for_each(&self.containers, |name| {
            let pid = pids[name].to_string();
            let output =
                context.host().run(&argv(&["nsenter", "--target", &pid, "--uts", "hostname"]), QUICK, context.cancel)?.ok()?;
            Ok(output.stdout_text().trim().to_string())
        })?;
        expect_sameness("hostname", self.expect, &seen)?;
        Ok(())
    }
}
