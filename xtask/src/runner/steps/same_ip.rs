//! Runs a `same-ip` step: every container's eth0 address, read in its network namespace.

use anyhow::{Context, Result, bail};

use super::{QUICK, RunStep, StepContext, for_each, show};
use crate::command::argv;
use crate::runtime;
use crate::scenario::steps::SameIp;

impl RunStep for SameIp {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let expected = context.runtime.pod_address(&context.pod.infra.name)?;
        let pids = runtime::main_pids(context.runtime, &self.containers)?;
        let seen = for_each(&self.containers, |name| eth0_address(context, pids[name]))?;
        if seen.values().any(|address| *address != expected) {
            bail!(
                "expected every container's eth0 at {expected} (the infra container's address), got {}",
                show(&seen)
            );
        }
        Ok(())
    }
}

/// The address on eth0 of a container's network namespace, as the kernel reports it.
fn eth0_address(context: &StepContext, pid: u32) -> Result<String> {
    let pid = pid.to_string();
    let probe = argv(&["nsenter", "--target", &pid, "--net", "ip", "-4", "-oneline", "address", "show", "dev", "eth0"]);
    let output = context.host().run(&probe, QUICK, context.cancel)?.ok()?;
    let text = output.stdout_text();
    let address = text.split_whitespace().skip_while(|word| *word != "inet").nth(1);
    let address =
        address.and_then(|cidr| cidr.split('/').next()).with_context(|| format!("no IPv4 address on eth0: {text}"))?;
    Ok(address.to_string())
}
