//! Runs an `uptime` step: the container's main process watched until it has run long enough.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{QUICK, RunStep, StepContext, read_on_host, stat_number, state_of};
use crate::cancel::Cancel;
use crate::host::Host;
use crate::runtime;
use crate::scenario::steps::Uptime;

impl RunStep for Uptime {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        wait_for_uptime(context, &self.container, self.at_least_ms.duration())
    }
}

/// Waits until the main process of `container` has run for `wanted`, checking twice a second
/// that it still runs, so that one that ends early is reported when it ends.
fn wait_for_uptime(context: &StepContext, container: &str, wanted: Duration) -> Result<()> {
    let pid = runtime::main_pid(context.runtime, container)?;
    let deadline = Instant::now() + wanted + QUICK;
    let mut ran = Duration::ZERO;
    loop {
        let state = state_of(context, container)?;
        if !state.running || state.pid != Some(pid) {
            bail!(
                "expected {container} (PID {pid}) to run for {} ms, it stopped after {} to {} ms{}",
                wanted.as_millis(),
                ran.as_millis(),
                ran.as_millis() + 500,
                state.ending()
            );
        }
        // A process that ends between the two looks is reported by the next one.
        match process_age(context.host(), pid, context.cancel) {
            Ok(age) if age >= wanted => return Ok(()),
            Ok(age) => ran = age,
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => {}
        }
        context.cancel.check()?;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// How long process `pid` has run: its start (field 22 of /proc/PID/stat, in 10 ms ticks since
/// boot) against the uptime of the machine it runs on.
fn process_age(host: &dyn Host, pid: u32, cancel: Cancel) -> Result<Duration> {
    let stat = read_on_host(host, &format!("/proc/{pid}/stat"), cancel)?;
    let started_ticks = stat_number(&stat, 22)?;
    let uptime = read_on_host(host, "/proc/uptime", cancel)?;
    let uptime_seconds: f64 =
        uptime.split_whitespace().next().and_then(|field| field.parse().ok()).context("unreadable /proc/uptime")?;
    Ok(Duration::from_secs_f64(uptime_seconds).saturating_sub(Duration::from_millis(started_ticks * 10)))
}
