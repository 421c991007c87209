//! How each step runs and decides: one file per kind, beside the kind's format in
//! scenario/steps/; every check states what it expected and what came. This module dispatches
//! through the list of kinds (`step_kinds!`) and holds what several kinds share.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cancel::Cancel;
use crate::command::argv;
use crate::host::Host;
use crate::plan::PodPlan;
use crate::runtime::{self, ContainerState, Runtime, RuntimeKind};
use crate::scenario::steps::step_kinds;
use crate::scenario::{Matcher, NamespaceKind, Step};
use crate::side_by_side;

/// Deadline of one command a step runs in a container.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline of a look at the host (nsenter, readlink, ps, cat, curl).
const QUICK: Duration = Duration::from_secs(30);

/// How a step kind runs, implemented for its format struct (scenario/steps/) in the file of
/// the same name here.
trait RunStep {
    /// Runs the step; `Err` says what was expected and what came instead.
    fn run(&self, context: &mut StepContext) -> Result<()>;

    /// The summary after the key on `runtime`, where it differs from the step's own.
    fn summary_on(&self, _runtime: &'static RuntimeKind) -> Option<String> {
        None
    }
}

/// The kinds' modules and the dispatch to their `RunStep`, from the list of kinds.
macro_rules! run_steps {
    ($( $(#[$description:meta])* $module:ident: $key:literal => $variant:ident($format:ident), )*) => {
        $(mod $module;)*

        fn run_step(step: &Step) -> &dyn RunStep {
            match step {
                $(Step::$variant(step) => step,)*
            }
        }
    };
}
step_kinds!(run_steps);

/// Values that steps saved (`save_stdout_as`), used as `${name}` by later steps.
#[derive(Default, Clone)]
pub struct Variables(BTreeMap<String, String>);

impl Variables {
    fn substitute(&self, text: &str) -> String {
        self.0.iter().fold(text.to_string(), |text, (name, value)| text.replace(&format!("${{{name}}}"), value))
    }
}

pub struct StepContext<'a> {
    pub runtime: &'a dyn Runtime,
    pub pod: &'a PodPlan,
    pub variables: Variables,
    /// The run's: every step ends early once the run was asked to stop.
    pub cancel: Cancel,
}

impl StepContext<'_> {
    /// Where the runtime runs: where the steps look at processes, namespaces and ports.
    fn host(&self) -> &dyn Host {
        self.runtime.host()
    }
}

/// A short description of a step on `runtime`, for trial output and reports: a `by-runtime`
/// step says which runtime's step it runs.
pub fn summary_on(step: &Step, runtime: &'static RuntimeKind) -> String {
    match run_step(step).summary_on(runtime) {
        Some(details) => format!("{} {details}", step.key()),
        None => step.summary(),
    }
}

/// Runs one step; `Err` says what was expected and what came instead.
pub fn run(context: &mut StepContext, step: &Step) -> Result<()> {
    context.cancel.check()?;
    run_step(step).run(context)
}

/// Exit code and logs of a container that has stopped.
fn check_ending(context: &StepContext, container: &str, exit_code: Option<u8>, logs: Option<&Matcher>) -> Result<()> {
    if let Some(expected) = exit_code {
        let actual = state_of(context, container)?.exit_code;
        if actual != Some(i64::from(expected)) {
            let actual = actual.map_or("nothing (it is still running)".to_string(), runtime::describe_exit_code);
            let logs = context.runtime.logs(container).map(|logs| logs.text()).unwrap_or_default();
            bail!(
                "expected {container} to exit with code {expected}, it exited with {actual}; its logs:\n{}",
                crate::command::last_lines(&logs, 10)
            );
        }
    }
    if logs.is_some() {
        let text = context.runtime.logs(container)?.text();
        check_text("logs", logs, &text, &context.variables)?;
    }
    Ok(())
}

fn check_text(what: &str, matcher: Option<&Matcher>, text: &str, variables: &Variables) -> Result<()> {
    let Some(matcher) = matcher else { return Ok(()) };
    let matcher = matcher.substitute(&|text| variables.substitute(text));
    if !matcher.matches(text) {
        bail!("expected {what} to {matcher}, got {text:?}");
    }
    Ok(())
}

/// Runs `probe` for each container, all at once (each is a command in the guest, and under
/// emulation `docker exec` alone takes most of a second), keeping the answers by name.
fn for_each(containers: &[String], probe: impl Fn(&str) -> Result<String> + Sync) -> Result<BTreeMap<String, String>> {
    let answers = side_by_side::each(containers, |name| {
        Ok((name.clone(), probe(name).with_context(|| format!("while looking at {name}"))?))
    })?;
    Ok(answers.into_iter().collect())
}

fn show(seen: &BTreeMap<String, String>) -> String {
    seen.iter().map(|(name, value)| format!("{name}: {value}")).collect::<Vec<_>>().join(", ")
}

fn expect_sameness(what: &str, expect_same: bool, seen: &BTreeMap<String, String>) -> Result<()> {
    let distinct: std::collections::BTreeSet<&String> = seen.values().collect();
    match (expect_same, distinct.len()) {
        (true, 1) => Ok(()),
        (true, _) => bail!("expected the same {what} in each, got {}", show(seen)),
        (false, 1) => bail!("expected the {what} to differ, got the same in each: {}", show(seen)),
        (false, _) => Ok(()),
    }
}

/// `net:[4026532...]`: the namespace a container's main process is in.
fn namespace_of(context: &StepContext, container: &str, kind: NamespaceKind) -> Result<String> {
    let mut seen = namespaces_of(context, &[container.to_string()], kind)?;
    seen.remove(container).context("readlink gave nothing")
}

/// The namespaces of several containers' main processes, in two calls whatever their number.
fn namespaces_of(
    context: &StepContext,
    containers: &[String],
    kind: NamespaceKind,
) -> Result<BTreeMap<String, String>> {
    let pids = runtime::main_pids(context.runtime, containers)?;
    let mut readlink = vec!["readlink".to_string()];
    readlink.extend(containers.iter().map(|name| format!("/proc/{}/ns/{}", pids[name], kind.proc_name())));
    let output = context.host().run(&readlink, QUICK, context.cancel)?.ok()?.stdout_text();
    let links: Vec<&str> = output.lines().collect();
    if links.len() != containers.len() {
        bail!("readlink gave {} namespaces for {} containers: {output}", links.len(), containers.len());
    }
    Ok(containers.iter().cloned().zip(links.into_iter().map(str::to_string)).collect())
}

/// User plus system CPU time of a process, from /proc/PID/stat (USER_HZ is 100 on Linux: 10 ms ticks).
fn cpu_milliseconds(host: &dyn Host, pid: u32, cancel: Cancel) -> Result<u64> {
    let stat = read_on_host(host, &format!("/proc/{pid}/stat"), cancel)?;
    // utime and stime.
    Ok((stat_number(&stat, 14)? + stat_number(&stat, 15)?) * 10)
}

/// Field `number` of a /proc/PID/stat line, as a number (clock ticks, for the times).
fn stat_number(stat: &str, number: usize) -> Result<u64> {
    pid1::proc::stat_field(stat, number).and_then(|field| field.parse().ok()).context("unreadable /proc/PID/stat")
}

fn read_on_host(host: &dyn Host, path: &str, cancel: Cancel) -> Result<String> {
    Ok(host.run(&argv(&["cat", path]), QUICK, cancel)?.ok()?.stdout_text())
}

fn state_of(context: &StepContext, container: &str) -> Result<ContainerState> {
    let mut states = context.runtime.states(&[container.to_string()])?;
    states.remove(container).with_context(|| format!("the runtime gave no state for {container}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_substituted() {
        let mut variables = Variables::default();
        variables.0.insert("shmid".into(), "32768".into());
        assert_eq!(variables.substitute("ipcs -m -i ${shmid}"), "ipcs -m -i 32768");
        assert_eq!(variables.substitute("${unknown} stays"), "${unknown} stays");
    }

    #[test]
    fn sameness_is_reported_both_ways() {
        let seen: BTreeMap<String, String> = [("a".into(), "x".into()), ("b".into(), "y".into())].into();
        assert_eq!(
            expect_sameness("hostname", true, &seen).unwrap_err().to_string(),
            "expected the same hostname in each, got a: x, b: y"
        );
        assert!(expect_sameness("hostname", false, &seen).is_ok());
    }
}
