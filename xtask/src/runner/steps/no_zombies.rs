//! Runs a `no-zombies` step: the states of the processes of a container's PID namespace.

use anyhow::{Result, bail};

use super::{QUICK, RunStep, StepContext, namespace_of};
use crate::command::argv;
use crate::scenario::NamespaceKind;
use crate::scenario::steps::NoZombies;

impl RunStep for NoZombies {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let namespace = namespace_of(context, &self.0.container, NamespaceKind::Pid)?;
        let inode = namespace.trim_start_matches("pid:[").trim_end_matches(']').to_string();
        let listing = context.host().run(&argv(&["ps", "-e", "-o", "pidns=,stat=,pid=,args="]), QUICK, context.cancel)?.ok()?;
        let zombies: Vec<String> = listing
            .stdout_text()
            .lines()
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.first() == Some(&inode.as_str()) && fields.get(1).is_some_and(|stat| stat.starts_with('Z'))
            })
            .map(|line| line.trim().to_string())
            .collect();
        if !zombies.is_empty() {
            let shown: Vec<&str> = zombies.iter().take(5).map(String::as_str).collect();
            let more = if zombies.len() > shown.len() { "\n..." } else { "" };
            bail!(
                "expected no zombie in the PID namespace of {}, found {} (pidns, stat, pid, command):\n{}{more}",
                self.0.container,
                zombies.len(),
                shown.join("\n")
            );
        }
        Ok(())
    }
}
