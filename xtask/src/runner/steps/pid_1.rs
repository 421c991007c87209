//! Runs a `pid-1` step: PID 1 of each container, as `ps` there shows it.

use anyhow::{Context, Result, bail};

use super::{EXEC_TIMEOUT, RunStep, StepContext, for_each};
use crate::command::argv;
use crate::scenario::steps::Pid1;

impl RunStep for Pid1 {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let command = self.command.substitute(&|text| context.variables.substitute(text));
        let first_processes = for_each(&self.containers, |name| {
            let output = context.runtime.exec(name, &argv(&["ps", "-o", "pid,args"]), EXEC_TIMEOUT)?.ok()?;
            let listing = output.stdout_text();
            let first = listing.lines().find_map(|line| line.trim().strip_prefix("1 ")).map(str::trim);
            first.map(str::to_string).with_context(|| format!("`ps` in {name} shows no PID 1:\n{listing}"))
        })?;
        for (name, actual) in &first_processes {
            if !command.matches(actual) {
                bail!("expected PID 1 in {name} to {command}, `ps` shows `{actual}`");
            }
        }
        Ok(())
    }
}
