//! Runs a `process` step: a container's main process read from /proc where it runs.

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use super::{QUICK, RunStep, StepContext, check_text, cpu_milliseconds, read_on_host};
use crate::command::argv;
use crate::runtime;
use crate::scenario::steps::Process;

impl RunStep for Process {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let pid = runtime::main_pid(context.runtime, &self.container)?;
        let status = read_on_host(context.host(), &format!("/proc/{pid}/status"), context.cancel)?;
        let id_of = |field: &str| -> Option<u32> {
            let line = status.lines().find(|line| line.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        for (field, expected) in [("Uid:", self.uid), ("Gid:", self.gid)] {
            if let Some(expected) = expected {
                let actual = id_of(field);
                if actual != Some(expected) {
                    bail!("expected {} to run with {field} {expected}, got {actual:?}", self.container);
                }
            }
        }
        if let Some(command) = &self.command {
            let command = command.substitute(&|text| context.variables.substitute(text));
            let command_line = read_on_host(context.host(), &format!("/proc/{pid}/cmdline"), context.cancel)?;
            let command_line = command_line.trim_end_matches('\0').replace('\0', " ");
            if !command.matches(&command_line) {
                bail!("expected the main process of {} to {command}, it is `{command_line}`", self.container);
            }
        }
        for (field, expected) in &self.status {
            let value = status.lines().find_map(|line| line.strip_prefix(&format!("{field}:"))).map(str::trim);
            let Some(value) = value else {
                bail!("/proc/{pid}/status of {} has no field {field}", self.container)
            };
            check_text(&format!("{field} of {}", self.container), Some(expected), value, &context.variables)?;
        }
        if let Some(fds) = &self.fds {
            // Each link of /proc/PID/fd, read where the process runs (numerically sorted).
            let script =
                format!("cd /proc/{pid}/fd && for fd in $(ls | sort -n); do echo \"$fd -> $(readlink $fd)\"; done");
            let listing = context.host().run(&argv(&["sh", "-c", &script]), QUICK, context.cancel)?.ok()?.stdout_text();
            check_text(
                &format!("the open files of {}", self.container),
                Some(fds),
                &listing,
                &context.variables,
            )?;
        }
        if let Some(expected) = &self.root_mount {
            let mountinfo = read_on_host(context.host(), &format!("/proc/{pid}/mountinfo"), context.cancel)?;
            // Fields: id, parent, major:minor, root, mount point, options, ...
            let options = mountinfo
                .lines()
                .map(|line| line.split_whitespace().collect::<Vec<_>>())
                .find(|fields| fields.get(4) == Some(&"/"))
                .and_then(|fields| fields.get(5).map(|options| options.to_string()))
                .with_context(|| format!("no mount at / in /proc/{pid}/mountinfo"))?;
            check_text(
                &format!("the root mount of {}", self.container),
                Some(expected),
                &options,
                &context.variables,
            )?;
        }
        if let Some(expected) = &self.cwd {
            let cwd = context.host().run(&argv(&["readlink", &format!("/proc/{pid}/cwd")]), QUICK, context.cancel)?.ok()?;
            let cwd = cwd.stdout_text();
            let what = format!("the working directory of {}", self.container);
            check_text(&what, Some(expected), cwd.trim_end(), &context.variables)?;
        }
        if let Some(expected) = &self.children {
            // One children file per thread: a child belongs to the thread that forked it.
            let script = format!("cat /proc/{pid}/task/*/children");
            let listing = context.host().run(&argv(&["sh", "-c", &script]), QUICK, context.cancel)?.ok()?.stdout_text();
            let children: String = listing.split_whitespace().map(|child| format!("{child}\n")).collect();
            let what = format!("the children of {}", self.container);
            check_text(&what, Some(expected), &children, &context.variables)?;
        }
        if !self.not_ignoring.is_empty() {
            let field = status.lines().find_map(|line| line.strip_prefix("SigIgn:")).map(str::trim);
            let ignored =
                field.and_then(signal_set).with_context(|| format!("no readable SigIgn in /proc/{pid}/status"))?;
            let wrongly: Vec<&str> = self
                .not_ignoring
                .iter()
                .map(|signal| signal.as_str())
                .filter(|name| ignored.iter().any(|ignored| ignored == name))
                .collect();
            if !wrongly.is_empty() {
                bail!(
                    "expected {} not to ignore {}, it ignores {} (SigIgn {})",
                    self.container,
                    wrongly.join(", "),
                    ignored.join(", "),
                    field.unwrap_or_default()
                );
            }
        }
        if let Some(most) = self.max_cpu_ms {
            let used = cpu_milliseconds(context.host(), pid, context.cancel)?;
            if used > most {
                bail!(
                    "expected {} to have used at most {most} ms of CPU since it started, it used {used} ms",
                    self.container
                );
            }
        }
        Ok(())
    }
}

/// The signals of a /proc/PID/status set (`SigIgn`, `SigBlk`: hex, bit N - 1 for signal N),
/// by name; one without a name (a real-time signal) as `SIG<N>`.
fn signal_set(hex: &str) -> Option<Vec<String>> {
    let bits = u64::from_str_radix(hex, 16).ok()?;
    let names = (1..=64)
        .filter(|number| bits & (1u64 << (number - 1)) != 0)
        .map(|number| Signal::try_from(number).map_or(format!("SIG{number}"), |signal| signal.as_str().to_string()))
        .collect();
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_sets_name_their_signals() {
        // What a static glibc program shows, and pause.c's caught set.
        assert_eq!(signal_set("0000000080000000").unwrap(), ["SIG32"]);
        assert_eq!(signal_set("0000000000014002").unwrap(), ["SIGINT", "SIGTERM", "SIGCHLD"]);
        assert_eq!(signal_set("0000000000000000").unwrap(), Vec::<String>::new());
        assert!(signal_set("zz").is_none());
    }
}
