//! This machine as the host: commands run here, sockets are reached here.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{Host, Placement};
use crate::command::{self, Interruptible, Output};
use crate::unix_grpc::{self, Call, Reply};
use crate::unix_http::{self, Request, Response};

/// How long an interactive shell may stay open.
const SHELL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

pub struct LocalHost;

impl Host for LocalHost {
    fn details(&self) -> String {
        "host (this machine)".to_string()
    }

    fn placement(&self) -> Placement {
        Placement::Host
    }

    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output> {
        command::run(argv, timeout)
    }

    fn run_cleanup(&self, argv: &[String], timeout: Duration) -> Result<Output> {
        command::run_even_if_interrupted(argv, timeout)
    }

    fn request(&self, request: &Request, timeout: Duration) -> Result<Response> {
        unix_http::send(request, timeout, Interruptible::Yes)
    }

    fn request_cleanup(&self, request: &Request, timeout: Duration) -> Result<Response> {
        unix_http::send(request, timeout, Interruptible::No)
    }

    fn request_until(&self, request: &Request, timeout: Duration, stop: &AtomicBool) -> Result<Response> {
        unix_http::send_until(request, timeout, Interruptible::Yes, stop)
    }

    fn grpc(&self, call: &Call, timeout: Duration) -> Result<Reply> {
        unix_grpc::send(call, timeout, Interruptible::Yes)
    }

    fn grpc_cleanup(&self, call: &Call, timeout: Duration) -> Result<Reply> {
        unix_grpc::send(call, timeout, Interruptible::No)
    }

    /// This machine failing is not something a run can mend.
    fn machine_failed(&self) -> Option<String> {
        None
    }

    /// This machine's kernel log is shared with everything else it runs: nothing to read there.
    fn trouble(&self) -> Option<String> {
        None
    }

    fn uptime(&self) -> Result<Duration> {
        let text = std::fs::read_to_string("/proc/uptime").context("cannot read /proc/uptime")?;
        super::parse_uptime(&text).context("unreadable /proc/uptime")
    }

    /// The user's own shell; a Ctrl-C typed in it is the shell's, so only its exit ends it.
    fn interactive_shell(&self, environment: &[(String, String)]) -> Result<()> {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_string());
        let ended = command::run_in_view(&[shell], environment, SHELL_TIMEOUT, Interruptible::No)?;
        if !ended.success() {
            eprintln!("the shell ended with {}", ended.ending());
        }
        Ok(())
    }

    fn shut_down(&self) -> Result<()> {
        Ok(())
    }
}
