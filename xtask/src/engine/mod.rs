//! Engines: where the pod runs. Each gives a place to run commands beside a Docker daemon
//! (the host, or later a throwaway VM) and the docker CLI arguments that reach the daemon;
//! the runner builds everything else (pods, steps, /proc reads, HTTP) on those two.

use std::time::Duration;

use anyhow::Result;

use crate::command::Output;

pub mod docker_api;
pub mod docker_cli;
pub mod docker_host;
pub mod vm;

pub use docker_cli::DockerCli;

pub trait Engine: Send + Sync {
    /// What reports say of the engine: which daemon, which acceleration, which kernel.
    fn details(&self) -> String;

    /// Runs a command where the Docker daemon runs, with a deadline; Ctrl-C stops it.
    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output>;

    /// Runs a cleanup command (save logs, remove containers): only its deadline stops it.
    fn run_cleanup(&self, argv: &[String], timeout: Duration) -> Result<Output>;

    /// The docker CLI's argv prefix that reaches this engine's daemon.
    fn docker_argv(&self) -> Vec<String>;

    /// A request to the daemon's API, where the engine reaches its socket; None means use
    /// the docker CLI instead (a DOCKER_HOST that is not a unix socket). Without
    /// `interruptible` (cleanup), only the deadline ends the wait.
    fn docker_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
        interruptible: bool,
    ) -> Result<Option<docker_api::Response>>;

    /// `podlab.run=<run id>`: the label on every container this run creates.
    fn run_label(&self) -> &str;

    /// An interactive shell beside the daemon, with `docker` reaching it; returns when it exits.
    fn interactive_shell(&self) -> Result<()>;

    /// Stops the daemon and removes everything the engine made. Also runs on drop;
    /// calling it first reports errors instead of swallowing them.
    fn shut_down(&mut self) -> Result<()>;
}
