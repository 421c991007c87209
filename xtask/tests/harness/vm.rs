//! The throwaway guest: signals and SIGKILL leave no guest, a dead or frozen guest ends the wait
//! at once, its memory and disk filled, the pod shell (piped, on a terminal, beside `clean`),
//! and a guest kernel's lockup (a scenario, and the pod shell, on a new guest).

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use crate::support::{
    Action, RUN_TIMEOUT, XTASK, fixture_scenarios, guest_processes, nothing_left, run_program_with, run_xtask,
    run_xtask_killing_qemu, run_xtask_with, spawn_line_reader, wait_for_line, wait_with_deadline,
    xtask_with_fault_injection,
};

/// Ctrl-C (2) or SIGTERM (15) once the guest runs: exit 130, and no QEMU or temp dir is left.
pub fn vm_signal_leaves_nothing(signal: i32) -> Result<(), Failed> {
    let run = run_xtask(&["test", "scenarios/version", "--exact"], Some(("guest booted", signal)))?;
    if run.status.code() != Some(130) {
        return Err(
            format!("expected exit code 130 after signal {signal}, got {:?}\n{}", run.status, run.output).into()
        );
    }
    nothing_left(run.pid)
}

/// SIGKILL leaves the harness no chance to clean up: QEMU still dies with it (it is told to by
/// the kernel), and `cargo xtask clean` removes the temp dir that stays.
pub fn vm_sigkill_then_clean() -> Result<(), Failed> {
    let run = run_xtask(&["test", "scenarios/version", "--exact"], Some(("guest booted", 9)))?;
    if run.status.signal() != Some(9) {
        return Err(format!("expected xtask killed by SIGKILL, got {:?}", run.status).into());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !guest_processes(run.pid).is_empty() {
        if Instant::now() > deadline {
            return Err(format!("QEMU outlived its killed harness by 10 s: {:?}", guest_processes(run.pid)).into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let clean = Command::new(XTASK).arg("clean").output()?;
    let said = String::from_utf8_lossy(&clean.stdout).into_owned();
    if !clean.status.success() || !said.contains("temp dir") {
        return Err(format!("expected cargo xtask clean to remove the temp dir, it said:\n{said}").into());
    }
    nothing_left(run.pid)
}

/// When QEMU dies under a running scenario, the run says so at once, with the console's
/// last lines and the QEMU command line, and does not wait for any deadline.
pub fn vm_dead_guest_is_reported() -> Result<(), Failed> {
    let started = Instant::now();
    let run = run_xtask_killing_qemu(&["test", "scenarios/reaping", "--exact"], "scenarios/reaping: ")?;
    if !matches!(run.status.code(), Some(101) | Some(2)) {
        return Err(format!("expected a failed run, got {:?}\n{}", run.status, run.output).into());
    }
    for expected in ["QEMU exited", "the console's last lines", "QEMU command line: qemu-system-x86_64"] {
        if !run.output.contains(expected) {
            return Err(format!("expected the failure to say {expected:?}; the output:\n{}", run.output).into());
        }
    }
    if started.elapsed() > Duration::from_secs(150) {
        return Err(format!("the run took {:?} after QEMU died", started.elapsed()).into());
    }
    nothing_left(run.pid)
}

/// QEMU stopped with SIGSTOP while a scenario runs (the guest freezes): the run says so at
/// once rather than at each request's deadline, and the stopped QEMU is killed all the same.
pub fn vm_frozen_guest_is_reported() -> Result<(), Failed> {
    let started = Instant::now();
    let trigger = ("scenarios/reaping: ", Action::StopQemu(Duration::from_secs(3)));
    let run = run_xtask_with(&["test", "scenarios/reaping", "--exact"], None, Some(trigger))?;
    let said = "is stopped (SIGSTOP?): the guest is frozen";
    if !matches!(run.status.code(), Some(101) | Some(2)) || !run.output.contains(said) {
        return Err(format!("expected a failed run that says {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    if started.elapsed() > Duration::from_secs(120) {
        return Err(format!("the run took {:?} after the guest froze", started.elapsed()).into());
    }
    nothing_left(run.pid)
}

/// The guest's memory filled by an app (the guest's OOM killer ends it) and its runtime's disk
/// filled by another (a tmpfs of half the guest's memory): each step says what happened, in
/// the kernel's or the command's words, and the run still removes everything.
pub fn vm_guest_out_of_memory_and_disk_full() -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios-vm");
    let run = run_xtask(&["test", "--scenarios", &scenarios], None)?;
    let said = [
        "got exit code 137 (128 + 9: killed by SIGKILL)",
        "the guest ran out of memory; its kernel said:",
        "Killed process",
        "No space left on device",
    ];
    if run.status.code() != Some(101) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// `cargo xtask pod` with a script on stdin: the guest's shell runs it (nothing typed before
/// its prompt is lost), `/pause` is PID 1 of the nginx container, and the end of the input
/// ends the shell and the whole pod: exit 0, nothing left.
pub fn vm_pod_shell() -> Result<(), Failed> {
    let script = "docker exec nginx ps -o pid,args; echo \"exec said $?\"\n";
    let run = run_xtask_with(&["pod"], Some(script), None)?;
    if run.status.code() != Some(0) {
        return Err(format!("expected exit code 0 once the input ended, got {:?}\n{}", run.status, run.output).into());
    }
    let pause_is_pid_1 = run.output.lines().any(|line| line.split_whitespace().eq(["1", "/pause"]));
    if !pause_is_pid_1 || !run.output.contains("exec said 0") || !run.output.contains("tearing down") {
        return Err(format!("expected `1 /pause`, `exec said 0` and the tear-down; the output:\n{}", run.output).into());
    }
    nothing_left(run.pid)
}

/// `cargo xtask pod` on a terminal (a pty, driven with rexpect): keys go to the guest's shell
/// in raw mode, `docker exec -ti` gets a TTY there and shows `/pause` as PID 1, and `exit`
/// tears everything down: exit 0, nothing left.
pub fn vm_pod_on_a_terminal() -> Result<(), Failed> {
    let mut command = Command::new("sh");
    // The shell says xtask's pid first (exec keeps it), for the leftover check.
    command.args(["-c", &format!("echo \"xtask pid $$\"; exec {XTASK} pod")]);
    let mut terminal = rexpect::session::spawn_command(command, Some(180_000))?;
    let (_, pid_line) = terminal.exp_regex(r"xtask pid \d+")?;
    let pid: u32 = pid_line.trim_start_matches("xtask pid ").parse()?;
    terminal.exp_string("Exit the shell to tear everything down.")?;
    terminal.exp_string("# ")?;
    terminal.send_line("docker exec -ti nginx ps -o pid,args")?;
    terminal.exp_regex(r"\n\s*1 /pause\s*\r?\n")?;
    terminal.exp_string("# ")?;
    terminal.send_line("exit")?;
    terminal.exp_string("tearing down")?;
    terminal.exp_eof()?;
    let status = format!("{:?}", terminal.process().wait()?);
    if !status.starts_with("Exited(") || !status.ends_with(", 0)") {
        return Err(format!("expected xtask pod to exit 0 after `exit`, got {status}").into());
    }
    nothing_left(pid)
}

/// `cargo xtask clean` while a `cargo xtask pod` is open: the pod's guest and temp dir belong
/// to a live run, so clean leaves them; the pod still answers afterwards, and ends cleanly.
pub fn clean_spares_a_live_pod() -> Result<(), Failed> {
    let mut pod =
        Command::new(XTASK).arg("pod").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let pid = pod.id();
    let (lines_sender, lines) = mpsc::channel::<String>();
    let readers = [
        spawn_line_reader(pod.stdout.take(), lines_sender.clone()),
        spawn_line_reader(pod.stderr.take(), lines_sender),
    ];
    let mut output = String::new();
    let ready = wait_for_line(&lines, &mut output, "Exit the shell to tear everything down.", RUN_TIMEOUT);
    let outcome = ready.and_then(|()| {
        let clean = Command::new(XTASK).arg("clean").output()?;
        let said = String::from_utf8_lossy(&clean.stdout).into_owned();
        if guest_processes(pid).is_empty() {
            return Err(format!("cargo xtask clean killed the live pod's guest; it said:\n{said}").into());
        }
        let mut stdin = pod.stdin.take().ok_or("no stdin")?;
        stdin.write_all(b"docker exec nginx ps -o pid,args; exit\n")?;
        drop(stdin);
        Ok(())
    });
    let status = wait_with_deadline(&mut pod, RUN_TIMEOUT);
    for reader in readers {
        let _ = reader.join();
    }
    output.extend(lines.try_iter().map(|line| line + "\n"));
    outcome?;
    let pause_is_pid_1 = output.lines().any(|line| line.split_whitespace().eq(["1", "/pause"]));
    if status.map(|status| status.code()) != Some(Some(0)) || !pause_is_pid_1 {
        return Err(format!("expected the pod to answer after clean and exit 0; got {status:?}\n{output}").into());
    }
    nothing_left(pid)
}

/// `cargo xtask pod` whose guest's kernel says a CPU is stuck once the seed pod runs: a new
/// guest is booted and the pod made again, once; the shell then runs there and nothing is left.
pub fn vm_pod_lockup() -> Result<(), Failed> {
    let xtask = xtask_with_fault_injection()?;
    let script = "docker exec nginx ps -o pid,args\n";
    let run = run_program_with(&xtask, &["pod"], &[("PODLAB_INJECT_LOCKUP", "1")], Some(script), None)?;
    let said = "the host failed beneath the pod (the guest's kernel reports a CPU stuck in it";
    let pause_is_pid_1 = run.output.lines().any(|line| line.split_whitespace().eq(["1", "/pause"]));
    if run.status.code() != Some(0) || !run.output.contains(said) || !pause_is_pid_1 || run.output.contains("warning") {
        return Err(format!(
            "expected exit code 0, {said:?}, then `1 /pause` from the new guest and no warning; got {:?}\n{}",
            run.status, run.output
        )
        .into());
    }
    nothing_left(run.pid)
}

/// The guest's kernel says a CPU is stuck (the words injected on its console, as a real lockup
/// seen under TCG printed them): the run boots a new guest, runs the scenario again, passes,
/// says why in its output and report, and leaves nothing.
pub fn vm_lockup_reruns() -> Result<(), Failed> {
    let xtask = xtask_with_fault_injection()?;
    let arguments = ["test", "scenarios/non-root", "--exact"];
    let run = run_program_with(&xtask, &arguments, &[("PODLAB_INJECT_LOCKUP", "1")], None, None)?;
    let said = "the host failed beneath the pod (the guest's kernel reports a CPU stuck in it";
    if run.status.code() != Some(0) || !run.output.contains(said) {
        return Err(format!("expected exit code 0 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    let run_dir = run.output.split("artifacts in ").nth(1).and_then(|rest| rest.split_whitespace().next());
    let report =
        std::fs::read_to_string(Path::new(run_dir.ok_or("no artifacts dir in the output")?).join("report.json"))?;
    if !report.contains("\"rerun_because\": \"the guest's kernel reports a CPU stuck") || run.output.contains("warning")
    {
        return Err(format!(
            "expected report.json to say why the scenario ran again, and no warning:\n{report}\n{}",
            run.output
        )
        .into());
    }
    nothing_left(run.pid)
}
