//! The docker CLI, reached through an engine: every call has a deadline and returns
//! structured output or an error that quotes the command.

use std::time::Duration;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use super::{Engine, docker_api};
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

    /// `docker inspect --format TEMPLATE NAME`, trimmed; from the daemon's API where the
    /// engine reaches it and the template names one field (`{{.State.Pid}}`).
    pub fn inspect(&self, name: &str, template: &str) -> Result<String> {
        if let Some(inspected) = self.inspected(name)? {
            if let Some(field) = docker_api::template_field(&inspected, template) {
                return Ok(field);
            }
        }
        let output = self.ok(&["inspect", "--format", template, name], QUICK)?;
        Ok(output.stdout_text().trim().to_string())
    }

    /// `GET /containers/NAME/json`; None when the engine has only the CLI.
    fn inspected(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let Some(response) = self.engine.docker_get(&format!("/containers/{}/json", path_segment(name)?), QUICK)?
        else {
            return Ok(None);
        };
        if response.status != 200 {
            bail!("cannot inspect container {name}: {}", api_error(&response));
        }
        let inspected = serde_json::from_slice(&response.body).context("dockerd's inspect answer is not JSON")?;
        Ok(Some(inspected))
    }

    /// The host PID (as the daemon's side sees it) of a container's main process.
    pub fn main_pid(&self, container: &str) -> Result<u32> {
        let mut pids = self.main_pids(&[container.to_string()])?;
        pids.remove(container).context("docker inspect gave no pid")
    }

    /// The main pids of several containers (in one CLI call where there is no API: each
    /// docker CLI start is costly under emulation).
    pub fn main_pids(&self, containers: &[String]) -> Result<BTreeMap<String, u32>> {
        let mut pids = Vec::new();
        for container in containers {
            match self.inspected(container)? {
                Some(inspected) => {
                    pids.push(docker_api::template_field(&inspected, "{{.State.Pid}}").unwrap_or_default())
                }
                None => break,
            }
        }
        if pids.len() != containers.len() {
            let mut arguments = vec!["inspect".to_string(), "--format".to_string(), "{{.State.Pid}}".to_string()];
            arguments.extend(containers.iter().cloned());
            let output = self.call(&arguments, QUICK)?.ok()?.stdout_text();
            pids = output.lines().map(str::to_string).collect();
            if pids.len() != containers.len() {
                bail!("docker inspect gave {} pids for {} containers: {output}", pids.len(), containers.len());
            }
        }
        containers
            .iter()
            .zip(pids)
            .map(|(container, pid)| match pid.trim().parse::<u32>() {
                Ok(0) => bail!("container {container} is not running"),
                Ok(pid) => Ok((container.clone(), pid)),
                Err(_) => bail!("docker inspect gave `{pid}` as the pid of {container}"),
            })
            .collect()
    }

    /// Everything the container wrote: stdout, then stderr.
    pub fn logs(&self, container: &str) -> Result<String> {
        let (stdout, stderr) = self.logs_apart(container, false)?;
        Ok(format!("{}{}", String::from_utf8_lossy(&stdout), stderr))
    }

    /// The container's stdout and stderr, apart; with `timestamps`, each line stamped.
    pub fn logs_apart(&self, container: &str, timestamps: bool) -> Result<(Vec<u8>, String)> {
        let path = format!("/containers/{}/logs?stdout=1&stderr=1&timestamps={timestamps}", path_segment(container)?);
        if let Some(response) = self.engine.docker_get(&path, QUICK)? {
            if response.status != 200 {
                bail!("cannot read the logs of {container}: {}", api_error(&response));
            }
            let (stdout, stderr) = docker_api::split_log_stream(&response.body)
                .with_context(|| format!("the logs of {container} (a container with a TTY?)"))?;
            return Ok((stdout, String::from_utf8_lossy(&stderr).into_owned()));
        }
        let mut arguments = vec!["logs"];
        if timestamps {
            arguments.push("--timestamps");
        }
        arguments.push(container);
        let output = self.ok(&arguments, QUICK)?;
        Ok((output.stdout, output.stderr))
    }
}

/// A container name as one path segment of an API URL: the names scenarios use need no
/// escaping, and anything else is refused rather than sent half-escaped.
fn path_segment(name: &str) -> Result<&str> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        bail!("`{name}` is not a container name dockerd accepts");
    }
    Ok(name)
}

/// dockerd's error answer: `{"message": "..."}`, or the status.
fn api_error(response: &docker_api::Response) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|body| body.get("message")?.as_str().map(str::to_string));
    message.unwrap_or_else(|| format!("HTTP {}", response.status))
}
