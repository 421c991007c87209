//! The docker CLI, reached through an engine: every call has a deadline and returns
//! structured output or an error that quotes the command.

use std::time::Duration;

use anyhow::{Context, Result};

use super::Engine;
use crate::command::Output;

/// Deadline of a docker call that should answer at once (inspect, logs, kill, rm).
pub const QUICK: Duration = Duration::from_secs(30);

pub struct DockerCli<'engine> {
    pub engine: &'engine dyn Engine,
}

impl DockerCli<'_> {
    /// Runs `docker <arguments>` and returns its output, whatever the exit code.
    pub fn call(&self, arguments: &[String], timeout: Duration) -> Result<Output> {
        let mut argv = self.engine.docker_argv();
        argv.extend_from_slice(arguments);
        self.engine.run(&argv, timeout)
    }

    /// Runs `docker <arguments>` for cleanup: a Ctrl-C does not stop it, its deadline does.
    pub fn cleanup(&self, arguments: &[String], timeout: Duration) -> Result<Output> {
        let mut argv = self.engine.docker_argv();
        argv.extend_from_slice(arguments);
        self.engine.run_cleanup(&argv, timeout)
    }

    /// Runs `docker <arguments>` and fails unless it exits 0.
    pub fn ok(&self, arguments: &[&str], timeout: Duration) -> Result<Output> {
        self.call(&crate::command::argv(arguments), timeout)?.ok()
    }

    /// `docker inspect --format TEMPLATE NAME`, trimmed.
    pub fn inspect(&self, name: &str, template: &str) -> Result<String> {
        let output = self.ok(&["inspect", "--format", template, name], QUICK)?;
        Ok(output.stdout_text().trim().to_string())
    }

    /// The host PID (as the daemon's side sees it) of a container's main process.
    pub fn main_pid(&self, container: &str) -> Result<u32> {
        let mut pids = self.main_pids(&[container.to_string()])?;
        pids.remove(container).context("docker inspect gave no pid")
    }

    /// The main pids of several containers in one call: each docker CLI start is costly under emulation.
    pub fn main_pids(&self, containers: &[String]) -> Result<std::collections::BTreeMap<String, u32>> {
        let mut arguments = vec!["inspect".to_string(), "--format".to_string(), "{{.State.Pid}}".to_string()];
        arguments.extend(containers.iter().cloned());
        let output = self.call(&arguments, QUICK)?.ok()?.stdout_text();
        let pids: Vec<&str> = output.lines().collect();
        if pids.len() != containers.len() {
            anyhow::bail!("docker inspect gave {} pids for {} containers: {output}", pids.len(), containers.len());
        }
        containers
            .iter()
            .zip(pids)
            .map(|(container, pid)| match pid.trim().parse::<u32>() {
                Ok(0) => anyhow::bail!("container {container} is not running"),
                Ok(pid) => Ok((container.clone(), pid)),
                Err(_) => anyhow::bail!("docker inspect gave `{pid}` as the pid of {container}"),
            })
            .collect()
    }

    /// Everything the container wrote: stdout, then stderr.
    pub fn logs(&self, container: &str) -> Result<String> {
        let output = self.ok(&["logs", container], QUICK)?;
        Ok(format!("{}{}", output.stdout_text(), output.stderr))
    }
}
