//! Hosts: where the pod runs. A host is how commands and unix sockets are reached there:
//! this machine (`local`), or a throwaway QEMU guest through its agent (`vm`). Which runtime
//! makes the pod is another question (`crate::runtime`); every runtime runs on either host.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;

use crate::cancel::Cancel;
use crate::command::Output;
use crate::unix_grpc::{Call, Reply};
use crate::unix_http::{Request, Response};

pub mod local;
pub mod vm;

/// Where the pod runs, as `--on` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Placement {
    /// A throwaway QEMU guest booted from this machine's kernel and root.
    Vm,
    /// This machine (the docker runtime: DOCKER_HOST when it answers, else a private dockerd, which needs root).
    Host,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Vm => "vm",
            Placement::Host => "host",
        }
    }
}

pub trait Host: Send + Sync {
    /// What reports say of the host: `this machine`, or `vm (tcg, kernel ...)`.
    fn details(&self) -> String;

    fn placement(&self) -> Placement;

    /// Runs a command there, with a deadline; `cancel` says whether a Ctrl-C stops it
    /// (`Cancel::NEVER` for cleanup: save logs, remove containers).
    fn run(&self, argv: &[String], timeout: Duration, cancel: Cancel) -> Result<Output>;

    /// An HTTP request to a unix socket there (a runtime's API), with a deadline; `cancel` as for `run`.
    fn request(&self, request: &Request, timeout: Duration, cancel: Cancel) -> Result<Response>;

    /// Like `request`, but reading stops within a moment of `stop` becoming true, and what
    /// came until then is the answer (`cut_short`): for a stream the server may never close.
    fn request_until(
        &self,
        request: &Request,
        timeout: Duration,
        cancel: Cancel,
        stop: &AtomicBool,
    ) -> Result<Response>;

    /// A gRPC call to a unix socket there (containerd), with a deadline; `cancel` as for `run`.
    fn grpc(&self, call: &Call, timeout: Duration, cancel: Cancel) -> Result<Reply>;

    /// Why the machine itself failed beneath the pod, if it did (the guest's kernel locked up):
    /// not a fault of what is tested, so a run may start a new host and run the scenario again.
    fn machine_failed(&self) -> Option<String>;

    /// What is wrong with the host itself, if anything it can tell (the guest's kernel ran out
    /// of memory): said beside a failure.
    fn trouble(&self) -> Option<String>;

    /// How long the host has been up: the guest's uptime tells the phases of a boot apart.
    fn uptime(&self) -> Result<Duration>;

    /// An interactive shell there, with `environment` set; returns when it exits.
    fn interactive_shell(&self, environment: &[(String, String)]) -> Result<()>;

    /// Removes everything the host made (a guest is killed). Also runs on drop; calling it
    /// first reports errors instead of swallowing them.
    fn shut_down(&self) -> Result<()>;
}

/// `/proc/uptime` as a duration.
pub fn parse_uptime(text: &str) -> Option<Duration> {
    let seconds: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs_f64(seconds))
}
