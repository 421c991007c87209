//! Docker, reached through an engine: its API where the engine reaches the daemon's socket
//! (`docker_api`), else the docker CLI. Every call has a deadline and returns structured
//! output or an error that quotes the command or request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Engine, docker_api};
use crate::command::Output;
use crate::side_by_side;

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
        let Some(response) = self.engine.docker_request(
            "GET",
            &format!("/containers/{}/json", path_segment(name)?),
            None,
            QUICK,
            true,
        )?
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
        if let Some(response) = self.engine.docker_request("GET", &path, None, QUICK, true)? {
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

    /// `docker run --detach`: create `name` from `create` (the body of `POST /containers/create`)
    /// and start it through the API where the engine reaches it, else `cli_arguments`
    /// (the same container as `docker run` arguments) through the CLI.
    pub fn run_detached(
        &self,
        name: &str,
        create: &serde_json::Value,
        cli_arguments: &[String],
        timeout: Duration,
    ) -> Result<()> {
        let path = format!("/containers/create?name={}", path_segment(name)?);
        let Some(created) = self.engine.docker_request("POST", &path, Some(&create.to_string()), timeout, true)? else {
            self.call(cli_arguments, timeout)?.ok()?;
            return Ok(());
        };
        if created.status != 201 {
            bail!("dockerd: {}", api_error(&created));
        }
        let path = format!("/containers/{}/start", path_segment(name)?);
        let started = self.engine.docker_request("POST", &path, None, timeout, true)?.context("the API went away")?;
        if started.status != 204 {
            bail!("dockerd: {}", api_error(&started));
        }
        Ok(())
    }

    /// `docker exec CONTAINER ARGV...`: through the API (create the exec, start it attached,
    /// read its exit code) where the engine reaches it. A refusal by the daemon (no such
    /// container, not running) comes back as the CLI's would: exit code 1 and the message.
    pub fn exec(&self, container: &str, argv: &[String], timeout: Duration) -> Result<Output> {
        let mut cli_argv = vec!["exec".to_string(), container.to_string()];
        cli_argv.extend(argv.iter().cloned());
        let started = Instant::now();
        let refused = |message: String| Output {
            argv: cli_argv.clone(),
            stdout: Vec::new(),
            stderr: format!("Error response from daemon: {message}\n"),
            exit_code: Some(1),
            signal: None,
            duration: started.elapsed(),
        };
        let create = serde_json::json!({ "AttachStdout": true, "AttachStderr": true, "Cmd": argv }).to_string();
        let path = format!("/containers/{}/exec", path_segment(container)?);
        let Some(created) = self.engine.docker_request("POST", &path, Some(&create), QUICK, true)? else {
            return self.call(&cli_argv, timeout);
        };
        if created.status != 201 {
            return Ok(refused(api_error(&created)));
        }
        let created: serde_json::Value = serde_json::from_slice(&created.body).context("dockerd's exec answer")?;
        let id = created.get("Id").and_then(|id| id.as_str()).context("dockerd gave the exec no id")?;
        let start = r#"{"Detach":false,"Tty":false}"#;
        let path = format!("/exec/{}/start", path_segment(id)?);
        let streams =
            self.engine.docker_request("POST", &path, Some(start), timeout, true)?.context("the API went away")?;
        if streams.status != 200 {
            return Ok(refused(api_error(&streams)));
        }
        let (stdout, stderr) = docker_api::split_log_stream(&streams.body).context("the exec's output")?;
        let path = format!("/exec/{}/json", path_segment(id)?);
        let ended = self.engine.docker_request("GET", &path, None, QUICK, true)?.context("the API went away")?;
        let ended: serde_json::Value = serde_json::from_slice(&ended.body).context("dockerd's exec inspect answer")?;
        let exit_code = ended.get("ExitCode").and_then(|code| code.as_i64()).context("the exec has no exit code")?;
        Ok(Output {
            argv: cli_argv,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            exit_code: Some(exit_code as i32),
            signal: None,
            duration: started.elapsed(),
        })
    }

    /// `docker rm --force --volumes NAMES...` for cleanup (only the deadline stops it): the
    /// containers side by side through the API where the engine reaches it. A container
    /// that is already gone is not an error.
    pub fn remove(&self, names: &[String], timeout: Duration) -> Result<()> {
        let removed = side_by_side::each(names, |name| {
            let path = format!("/containers/{}?force=1&v=1", path_segment(name)?);
            let Some(response) = self.engine.docker_request("DELETE", &path, None, timeout, false)? else {
                return Ok(None);
            };
            match response.status {
                204 | 404 => Ok(Some(())),
                _ => bail!("cannot remove container {name}: {}", api_error(&response)),
            }
        })?;
        if removed.iter().all(Option::is_some) {
            return Ok(());
        }
        let mut arguments = vec!["rm".to_string(), "--force".to_string(), "--volumes".to_string()];
        arguments.extend(names.iter().cloned());
        let output = self.cleanup(&arguments, timeout)?;
        // `No such container` is the normal answer when the pod is already gone.
        if !output.success() && !output.stderr.lines().all(|line| line.contains("No such container")) {
            bail!("`docker rm` failed: {}", output.stderr.trim());
        }
        Ok(())
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
