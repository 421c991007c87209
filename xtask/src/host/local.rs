//! This machine as the host: commands run here, sockets are reached here.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{Host, Placement};
use crate::cancel::Cancel;
use crate::command::{self, Output};
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

    fn run(&self, argv: &[String], timeout: Duration, cancel: Cancel) -> Result<Output> {
        command::run(argv, timeout, cancel)
    }

    fn request(&self, request: &Request, timeout: Duration, cancel: Cancel) -> Result<Response> {
        unix_http::send(request, timeout, cancel)
    }

    fn request_until(
        &self,
        request: &Request,
        timeout: Duration,
        cancel: Cancel,
        stop: &AtomicBool,
    ) -> Result<Response> {
        unix_http::send_until(request, timeout, cancel, stop)
    }

    fn grpc(&self, call: &Call, timeout: Duration, cancel: Cancel) -> Result<Reply> {
        unix_grpc::send(call, timeout, cancel)
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
        let ended = command::run_in_view(&[shell], environment, SHELL_TIMEOUT, Cancel::NEVER)?;
        if !ended.success() {
            eprintln!("the shell ended with {}", ended.ending());
        }
        Ok(())
    }

    fn shut_down(&self) -> Result<()> {
        Ok(())
    }
}
