//! Runs an `exec` step: the command in its container, its exit code and output checked.

use anyhow::{Result, bail};

use super::{EXEC_TIMEOUT, RunStep, StepContext, check_text};
use crate::runtime;
use crate::scenario::steps::Exec;

impl RunStep for Exec {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let argv: Vec<String> = self.argv.iter().map(|word| context.variables.substitute(word)).collect();
        let output = context.runtime.exec(&self.container, &argv, EXEC_TIMEOUT)?;
        if output.exit_code != Some(i32::from(self.exit_code)) {
            let took = output.duration.as_millis();
            let ending = match output.exit_code {
                Some(code) => format!("exit code {}", runtime::describe_exit_code(i64::from(code))),
                None => output.ending(),
            };
            bail!(
                "expected exit code {}, got {ending} after {took} ms; stderr: {}",
                self.exit_code,
                output.stderr.trim()
            );
        }
        let stdout = output.stdout_text();
        check_text("stdout", self.stdout.as_ref(), &stdout, &context.variables)?;
        check_text("stderr", self.stderr.as_ref(), &output.stderr, &context.variables)?;
        if let Some(name) = &self.save_stdout_as {
            context.variables.0.insert(name.clone(), stdout.trim().to_string());
        }
        Ok(())
    }
}
