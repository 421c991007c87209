//! What each step does and how it decides: every check states what it expected and what came.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::command::argv;
use crate::host::Host;
use crate::interrupt;
use crate::pod::{PodPlan, outbound};
use crate::runtime::{self, ContainerState, Runtime, RuntimeKind};
use crate::scenario::{Matcher, NamespaceKind, Step};
use crate::side_by_side;

/// Deadline of one command a step runs in a container.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline of a look at the host (nsenter, readlink, ps, cat, curl).
const QUICK: Duration = Duration::from_secs(30);

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
}

impl StepContext<'_> {
    /// Where the runtime runs: where the steps look at processes, namespaces and ports.
    fn host(&self) -> &dyn Host {
        self.runtime.host()
    }
}

/// A short description of a step, for trial output and reports.
pub fn summary(step: &Step) -> String {
    let details = match step {
        Step::Exec(exec) => format!("{}: {}", exec.container, exec.argv.join(" ")),
        Step::Http(http) => format!("GET 127.0.0.1:{}{}", http.port, http.path),
        Step::Signal(signal) => format!("{} {}", signal.signal, signal.container),
        Step::SameNamespace(same) => format!(
            "{} of {}{}",
            same.kind.proc_name(),
            same.containers.join(", "),
            if same.expect { "" } else { " (differ)" }
        ),
        Step::Process(process) => {
            let mut checks: Vec<String> = Vec::new();
            checks.extend(process.uid.map(|uid| format!("uid {uid}")));
            checks.extend(process.gid.map(|gid| format!("gid {gid}")));
            checks.extend(process.status.iter().map(|(field, matcher)| format!("{field} {matcher}")));
            checks.extend(process.fds.as_ref().map(|fds| format!("fds {fds}")));
            checks.extend(process.root_mount.as_ref().map(|root| format!("root mount {root}")));
            checks.extend(process.cwd.as_ref().map(|cwd| format!("cwd {cwd}")));
            checks.extend(process.children.as_ref().map(|children| format!("children {children}")));
            checks.extend(process.max_cpu_ms.map(|most| format!("CPU at most {most} ms")));
            if !process.not_ignoring.is_empty() {
                let names: Vec<&str> = process.not_ignoring.iter().map(|signal| signal.as_str()).collect();
                checks.push(format!("not ignoring {}", names.join(", ")));
            }
            format!("{}: {}", process.container, checks.join(", "))
        }
        Step::Stop(stop) => format!("{}{}", stop.container, ending(stop.exit_code, stop.logs.as_ref())),
        Step::WaitExit(wait) => format!("{}{}", wait.container, ending(wait.exit_code, wait.logs.as_ref())),
        Step::Image(image) => image.name.clone(),
        Step::Eventually(eventually) => format!("within {} ms: {}", eventually.within_ms, summary(&eventually.step)),
        Step::Repeat(repeat) => {
            format!("{} times, {} at once: {}", repeat.times, repeat.at_once, summary(&repeat.step))
        }
        Step::Uptime(uptime) => format!("{}: at least {} ms", uptime.container, uptime.at_least_ms),
        Step::ByRuntime(by_runtime) => by_runtime.fact.clone(),
        Step::Outbound(outbound) => format!("at most {} connections", outbound.at_most),
        other => other.container_names().join(", "),
    };
    format!("{} {details}", step.kind())
}

/// `: exit code 0, logs contain "..."`: how a stop or an exit is checked.
fn ending(exit_code: Option<u8>, logs: Option<&Matcher>) -> String {
    let checks: Vec<String> = exit_code
        .map(|code| format!("exit code {code}"))
        .into_iter()
        .chain(logs.map(|logs| format!("logs {logs}")))
        .collect();
    if checks.is_empty() { String::new() } else { format!(": {}", checks.join(", ")) }
}

/// The same, saying which runtime's step a `by-runtime` step runs.
pub fn summary_on(step: &Step, runtime: RuntimeKind) -> String {
    match step {
        Step::ByRuntime(by_runtime) => match by_runtime.step_for(runtime.facts()) {
            Some(chosen) => format!("{} (on {}: {})", summary(step), runtime.name(), summary(chosen)),
            None => summary(step),
        },
        _ => summary(step),
    }
}

/// Runs one step; `Err` says what was expected and what came instead.
pub fn run(context: &mut StepContext, step: &Step) -> Result<()> {
    interrupt::check()?;
    match step {
        Step::Exec(exec) => {
            let argv: Vec<String> = exec.argv.iter().map(|word| context.variables.substitute(word)).collect();
            let output = context.runtime.exec(&exec.container, &argv, EXEC_TIMEOUT)?;
            if output.exit_code != Some(i32::from(exec.exit_code)) {
                let took = output.duration.as_millis();
                let ending = match output.exit_code {
                    Some(code) => format!("exit code {}", runtime::describe_exit_code(i64::from(code))),
                    None => output.ending(),
                };
                bail!(
                    "expected exit code {}, got {ending} after {took} ms; stderr: {}",
                    exec.exit_code,
                    output.stderr.trim()
                );
            }
            let stdout = output.stdout_text();
            check_text("stdout", exec.stdout.as_ref(), &stdout, &context.variables)?;
            check_text("stderr", exec.stderr.as_ref(), &output.stderr, &context.variables)?;
            if let Some(name) = &exec.save_stdout_as {
                context.variables.0.insert(name.clone(), stdout.trim().to_string());
            }
        }
        Step::SameIp(same) => {
            let expected = context.runtime.pod_address(&context.pod.infra.name)?;
            let pids = runtime::main_pids(context.runtime, &same.containers)?;
            let seen = for_each(&same.containers, |name| eth0_address(context, pids[name]))?;
            if seen.values().any(|address| *address != expected) {
                bail!(
                    "expected every container's eth0 at {expected} (the infra container's address), got {}",
                    show(&seen)
                );
            }
        }
        Step::SameHostname(same) => {
            let pids = runtime::main_pids(context.runtime, &same.containers)?;
            let seen = for_each(&same.containers, |name| {
                let pid = pids[name].to_string();
                let output =
                    context.host().run(&argv(&["nsenter", "--target", &pid, "--uts", "hostname"]), QUICK)?.ok()?;
                Ok(output.stdout_text().trim().to_string())
            })?;
            expect_sameness("hostname", same.expect, &seen)?;
        }
        Step::SameNamespace(same) => {
            let seen = namespaces_of(context, &same.containers, same.kind)?;
            expect_sameness(&format!("{} namespace", same.kind.proc_name()), same.expect, &seen)?;
        }
        Step::Pid1(pid1) => {
            let command = pid1.command.substitute(&|text| context.variables.substitute(text));
            let first_processes = for_each(&pid1.containers, |name| {
                let output = context.runtime.exec(name, &argv(&["ps", "-o", "pid,args"]), EXEC_TIMEOUT)?.ok()?;
                let listing = output.stdout_text();
                let first = listing.lines().find_map(|line| line.trim().strip_prefix("1 ")).map(str::trim);
                first.map(str::to_string).with_context(|| format!("`ps` in {name} shows no PID 1:\n{listing}"))
            })?;
            for (name, actual) in &first_processes {
                if !command.matches(actual) {
                    bail!("expected PID 1 in {name} to {command}, `ps` shows `{actual}`");
                }
            }
        }
        Step::NoZombies(target) => {
            let namespace = namespace_of(context, &target.container, NamespaceKind::Pid)?;
            let inode = namespace.trim_start_matches("pid:[").trim_end_matches(']').to_string();
            let listing = context.host().run(&argv(&["ps", "-e", "-o", "pidns=,stat=,pid=,args="]), QUICK)?.ok()?;
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
                    target.container,
                    zombies.len(),
                    shown.join("\n")
                );
            }
        }
        Step::CpuIdle(idle) => {
            let pid = runtime::main_pid(context.runtime, &idle.container)?;
            let before = cpu_milliseconds(context.host(), pid)?;
            std::thread::sleep(idle.over_ms.duration());
            interrupt::check()?;
            let used = cpu_milliseconds(context.host(), pid)?.saturating_sub(before);
            if used > idle.max_cpu_ms {
                bail!(
                    "expected {} to use at most {} ms of CPU over {} ms of waiting, it used {used} ms",
                    idle.container,
                    idle.max_cpu_ms,
                    idle.over_ms
                );
            }
        }
        Step::Http(http) => {
            let url = format!("http://127.0.0.1:{}{}", context.pod.ports.published(http.port), http.path);
            let response = http_get(context.host(), &url)?;
            if let Some(expected) = http.status {
                if response.status != Some(expected) {
                    let actual =
                        response.status.map_or(format!("no answer ({})", response.error), |status| status.to_string());
                    bail!("expected HTTP {expected} from {url}, got {actual}");
                }
            }
            check_text("body", http.body.as_ref(), &response.body, &context.variables)?;
        }
        Step::Signal(signal) => {
            let name = signal.signal.signal();
            // Said plainly, where a runtime would answer in its own words (or signal nothing).
            let not_running = |state: &ContainerState| {
                format!("cannot send {name} to {}: it is not running{}", signal.container, state.ending())
            };
            let state = state_of(context, &signal.container)?;
            if !state.running {
                bail!(not_running(&state));
            }
            if let Err(error) = context.runtime.signal(&signal.container, name) {
                // It may have ended since its state was read: a runtime reports an exit a
                // moment after its process is gone, so the state is read again for a while.
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline {
                    match state_of(context, &signal.container) {
                        Ok(state) if !state.running => bail!(not_running(&state)),
                        Ok(_) => std::thread::sleep(Duration::from_millis(100)),
                        Err(_) => break,
                    }
                }
                return Err(error);
            }
        }
        Step::Stop(stop) => {
            let started = Instant::now();
            context.runtime.stop(&stop.container, Duration::from_secs(u64::from(stop.grace_seconds)))?;
            let took = started.elapsed();
            check_ending(context, &stop.container, stop.exit_code, stop.logs.as_ref()).with_context(|| {
                format!("the stop took {} ms of a {} s grace period", took.as_millis(), stop.grace_seconds)
            })?;
            if let Some(within) = stop.within_ms {
                if took > within.duration() {
                    bail!("expected {} to stop within {within} ms, it took {} ms", stop.container, took.as_millis());
                }
            }
        }
        Step::WaitExit(wait) => {
            let deadline = Instant::now() + wait.within_ms.duration();
            while state_of(context, &wait.container)?.running {
                if Instant::now() > deadline {
                    bail!("expected {} to exit within {} ms, it is still running", wait.container, wait.within_ms);
                }
                interrupt::check()?;
                std::thread::sleep(Duration::from_millis(20));
            }
            check_ending(context, &wait.container, wait.exit_code, wait.logs.as_ref())?;
        }
        Step::Running(running) => {
            let states = context.runtime.states(&running.containers)?;
            let seen: BTreeMap<String, String> =
                states.into_iter().map(|(name, state)| (name, state.running.to_string())).collect();
            let expected = running.expect.to_string();
            if seen.values().any(|state| *state != expected) {
                bail!("expected running = {expected} for each, got {}", show(&seen));
            }
        }
        Step::Restart(target) => {
            context.runtime.restart(&target.container)?;
        }
        Step::Process(process) => {
            let pid = runtime::main_pid(context.runtime, &process.container)?;
            let status = read_on_host(context.host(), &format!("/proc/{pid}/status"))?;
            let id_of = |field: &str| -> Option<u32> {
                let line = status.lines().find(|line| line.starts_with(field))?;
                line.split_whitespace().nth(1)?.parse().ok()
            };
            for (field, expected) in [("Uid:", process.uid), ("Gid:", process.gid)] {
                if let Some(expected) = expected {
                    let actual = id_of(field);
                    if actual != Some(expected) {
                        bail!("expected {} to run with {field} {expected}, got {actual:?}", process.container);
                    }
                }
            }
            if let Some(command) = &process.command {
                let command = command.substitute(&|text| context.variables.substitute(text));
                let command_line = read_on_host(context.host(), &format!("/proc/{pid}/cmdline"))?;
                let command_line = command_line.trim_end_matches('\0').replace('\0', " ");
                if !command.matches(&command_line) {
                    bail!("expected the main process of {} to {command}, it is `{command_line}`", process.container);
                }
            }
            for (field, expected) in &process.status {
                let value = status.lines().find_map(|line| line.strip_prefix(&format!("{field}:"))).map(str::trim);
                let Some(value) = value else {
                    bail!("/proc/{pid}/status of {} has no field {field}", process.container)
                };
                check_text(&format!("{field} of {}", process.container), Some(expected), value, &context.variables)?;
            }
            if let Some(fds) = &process.fds {
                // Each link of /proc/PID/fd, read where the process runs (numerically sorted).
                let script =
                    format!("cd /proc/{pid}/fd && for fd in $(ls | sort -n); do echo \"$fd -> $(readlink $fd)\"; done");
                let listing = context.host().run(&argv(&["sh", "-c", &script]), QUICK)?.ok()?.stdout_text();
                check_text(
                    &format!("the open files of {}", process.container),
                    Some(fds),
                    &listing,
                    &context.variables,
                )?;
            }
            if let Some(expected) = &process.root_mount {
                let mountinfo = read_on_host(context.host(), &format!("/proc/{pid}/mountinfo"))?;
                // Fields: id, parent, major:minor, root, mount point, options, ...
                let options = mountinfo
                    .lines()
                    .map(|line| line.split_whitespace().collect::<Vec<_>>())
                    .find(|fields| fields.get(4) == Some(&"/"))
                    .and_then(|fields| fields.get(5).map(|options| options.to_string()))
                    .with_context(|| format!("no mount at / in /proc/{pid}/mountinfo"))?;
                check_text(
                    &format!("the root mount of {}", process.container),
                    Some(expected),
                    &options,
                    &context.variables,
                )?;
            }
            if let Some(expected) = &process.cwd {
                let cwd = context.host().run(&argv(&["readlink", &format!("/proc/{pid}/cwd")]), QUICK)?.ok()?;
                let cwd = cwd.stdout_text();
                let what = format!("the working directory of {}", process.container);
                check_text(&what, Some(expected), cwd.trim_end(), &context.variables)?;
            }
            if let Some(expected) = &process.children {
                // One children file per thread: a child belongs to the thread that forked it.
                let script = format!("cat /proc/{pid}/task/*/children");
                let listing = context.host().run(&argv(&["sh", "-c", &script]), QUICK)?.ok()?.stdout_text();
                let children: String = listing.split_whitespace().map(|child| format!("{child}\n")).collect();
                let what = format!("the children of {}", process.container);
                check_text(&what, Some(expected), &children, &context.variables)?;
            }
            if !process.not_ignoring.is_empty() {
                let field = status.lines().find_map(|line| line.strip_prefix("SigIgn:")).map(str::trim);
                let ignored =
                    field.and_then(signal_set).with_context(|| format!("no readable SigIgn in /proc/{pid}/status"))?;
                let wrongly: Vec<&str> = process
                    .not_ignoring
                    .iter()
                    .map(|signal| signal.as_str())
                    .filter(|name| ignored.iter().any(|ignored| ignored == name))
                    .collect();
                if !wrongly.is_empty() {
                    bail!(
                        "expected {} not to ignore {}, it ignores {} (SigIgn {})",
                        process.container,
                        wrongly.join(", "),
                        ignored.join(", "),
                        field.unwrap_or_default()
                    );
                }
            }
            if let Some(most) = process.max_cpu_ms {
                let used = cpu_milliseconds(context.host(), pid)?;
                if used > most {
                    bail!(
                        "expected {} to have used at most {most} ms of CPU since it started, it used {used} ms",
                        process.container
                    );
                }
            }
        }
        Step::Uptime(uptime) => wait_for_uptime(context, &uptime.container, uptime.at_least_ms.duration())?,
        Step::Image(image) => {
            if let Some(expected) = &image.user {
                let actual = context.runtime.image_user(&image.name)?;
                if actual != *expected {
                    bail!("expected image {} to run as user `{expected}`, it runs as `{actual}`", image.name);
                }
            }
            if let Some(expected) = &image.files {
                let mut actual = context.runtime.image_files(&image.name)?;
                actual.sort();
                let mut expected = expected.clone();
                expected.sort();
                if actual != expected {
                    bail!("expected image {} to hold exactly {expected:?}, it holds {actual:?}", image.name);
                }
            }
        }
        Step::Logs(logs) => {
            let text = context.runtime.logs(&logs.container)?.text();
            check_text("logs", Some(&logs.matches), &text, &context.variables)?;
        }
        Step::Outbound(expected) => {
            let seen = outbound::read(context.runtime, &context.pod.infra.name)?;
            if seen.connections > expected.at_most {
                bail!(
                    "expected at most {} connections from the pod to outside itself, got {}, to {}",
                    expected.at_most,
                    seen.connections,
                    seen.destinations.join(", ")
                );
            }
        }
        Step::Repeat(repeat) => run_repeatedly(context, &repeat.step, repeat.times, repeat.at_once)?,
        Step::Eventually(eventually) => {
            let deadline = Instant::now() + eventually.within_ms.duration();
            let mut attempts = 0;
            loop {
                attempts += 1;
                match run(context, &eventually.step) {
                    Ok(()) => break,
                    Err(error) if Instant::now() >= deadline || interrupt::interrupted() => {
                        return Err(error).context(format!(
                            "still failing after {attempts} attempts over {} ms",
                            eventually.within_ms
                        ));
                    }
                    Err(_) => std::thread::sleep(eventually.every_ms.duration()),
                }
            }
        }
        Step::ByRuntime(by_runtime) => {
            let runtime = context.runtime.kind().facts();
            let step = by_runtime.step_for(runtime).with_context(|| format!("no step for the {runtime} runtime"))?;
            run(context, step).with_context(|| format!("on {runtime}, {}: {}", by_runtime.fact, summary(step)))?;
        }
    }
    Ok(())
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

/// The address on eth0 of a container's network namespace, as the kernel reports it.
fn eth0_address(context: &StepContext, pid: u32) -> Result<String> {
    let pid = pid.to_string();
    let probe = argv(&["nsenter", "--target", &pid, "--net", "ip", "-4", "-oneline", "address", "show", "dev", "eth0"]);
    let output = context.host().run(&probe, QUICK)?.ok()?;
    let text = output.stdout_text();
    let address = text.split_whitespace().skip_while(|word| *word != "inet").nth(1);
    let address =
        address.and_then(|cidr| cidr.split('/').next()).with_context(|| format!("no IPv4 address on eth0: {text}"))?;
    Ok(address.to_string())
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
    let output = context.host().run(&readlink, QUICK)?.ok()?.stdout_text();
    let links: Vec<&str> = output.lines().collect();
    if links.len() != containers.len() {
        bail!("readlink gave {} namespaces for {} containers: {output}", links.len(), containers.len());
    }
    Ok(containers.iter().cloned().zip(links.into_iter().map(str::to_string)).collect())
}

/// User plus system CPU time of a process, from /proc/PID/stat (USER_HZ is 100 on Linux: 10 ms ticks).
fn cpu_milliseconds(host: &dyn Host, pid: u32) -> Result<u64> {
    let stat = read_on_host(host, &format!("/proc/{pid}/stat"))?;
    // utime and stime.
    Ok((stat_number(&stat, 14)? + stat_number(&stat, 15)?) * 10)
}

/// Field `number` of a /proc/PID/stat line, as a number (clock ticks, for the times).
fn stat_number(stat: &str, number: usize) -> Result<u64> {
    pid1::proc::stat_field(stat, number).and_then(|field| field.parse().ok()).context("unreadable /proc/PID/stat")
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
        match process_age(context.host(), pid) {
            Ok(age) if age >= wanted => return Ok(()),
            Ok(age) => ran = age,
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => {}
        }
        interrupt::check()?;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// How long process `pid` has run: its start (field 22 of /proc/PID/stat, in 10 ms ticks since
/// boot) against the uptime of the machine it runs on.
fn process_age(host: &dyn Host, pid: u32) -> Result<Duration> {
    let stat = read_on_host(host, &format!("/proc/{pid}/stat"))?;
    let started_ticks = stat_number(&stat, 22)?;
    let uptime = read_on_host(host, "/proc/uptime")?;
    let uptime_seconds: f64 =
        uptime.split_whitespace().next().and_then(|field| field.parse().ok()).context("unreadable /proc/uptime")?;
    Ok(Duration::from_secs_f64(uptime_seconds).saturating_sub(Duration::from_millis(started_ticks * 10)))
}

/// Runs `step` `times` times in `at_once` lanes, each lane one try after another with its own
/// copy of the saved values; the first failure stops every lane and names its try.
fn run_repeatedly(context: &StepContext, step: &Step, times: u32, at_once: u32) -> Result<()> {
    let failed = std::sync::atomic::AtomicBool::new(false);
    let lanes: Vec<u32> = (0..at_once).collect();
    side_by_side::each(&lanes, |&lane| {
        let mut lane_context =
            StepContext { runtime: context.runtime, pod: context.pod, variables: context.variables.clone() };
        for try_index in (lane..times).step_by(at_once as usize) {
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            interrupt::check()?;
            if let Err(error) = run(&mut lane_context, step) {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(error.context(format!("try {} of {times}", try_index + 1)));
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn read_on_host(host: &dyn Host, path: &str) -> Result<String> {
    Ok(host.run(&argv(&["cat", path]), QUICK)?.ok()?.stdout_text())
}

fn state_of(context: &StepContext, container: &str) -> Result<ContainerState> {
    let mut states = context.runtime.states(&[container.to_string()])?;
    states.remove(container).with_context(|| format!("the runtime gave no state for {container}"))
}

struct HttpResponse {
    status: Option<u16>,
    body: String,
    /// Why there is no status, when there is none.
    error: String,
}

/// A GET with curl on the host where the pod runs: the same client on this machine and in a guest.
fn http_get(host: &dyn Host, url: &str) -> Result<HttpResponse> {
    let request = argv(&[
        "curl",
        "--silent",
        "--show-error",
        "--max-time",
        "10",
        "--noproxy",
        "*",
        "--write-out",
        "\n%{http_code}",
        url,
    ]);
    let output = host.run(&request, QUICK)?;
    let text = output.stdout_text();
    // curl appends the status after the body, on a line of its own; 000 when nothing answered.
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    Ok(HttpResponse {
        status: status.parse().ok().filter(|status| *status != 0),
        body: body.to_string(),
        error: output.stderr.trim().to_string(),
    })
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

    /// A runtime added to `--runtime` must be given its step in every `by-runtime` step.
    #[test]
    fn every_runtime_has_its_step_in_a_by_runtime_step() {
        let text = r#"{ "by-runtime": { "fact": "f", "docker": { "running": { "containers": ["a"], "expect": true } },
                       "cri": { "running": { "containers": ["a"], "expect": true } },
                       "podman": { "running": { "containers": ["a"], "expect": true } } } }"#;
        let Step::ByRuntime(by_runtime) = serde_json::from_str::<Step>(text).unwrap() else { panic!("not by-runtime") };
        for runtime in <RuntimeKind as clap::ValueEnum>::value_variants() {
            assert!(by_runtime.step_for(runtime.facts()).is_some(), "no step for {}", runtime.name());
        }
    }

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
