//! What every area's trials share: running xtask (with what to do to it once a line appears),
//! waiting with deadlines, what a run may leave (`nothing_left`), the machine's shared state
//! before the trials, the broken pauses' build and the prerequisites.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use xtask::names;

pub const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// The scenario whose pod lives a minute: trials about a whole run's cleanup and concurrency
/// skip it (it adds a minute each and nothing they check).
pub const LONG_LIVED: &str = "scenarios/long-lived";

pub fn missing_prerequisite() -> Option<String> {
    if !nix_is_root() {
        return Some("not root: the private dockerd and its bridge need root".into());
    }
    for program in ["dockerd", "docker", "podman", "gcc", "nginx", "node", "busybox", "curl", "ipcmk"] {
        let found =
            Command::new("sh").args(["-c", &format!("command -v {program} || test -x /usr/sbin/{program}")]).output();
        if !found.is_ok_and(|output| output.status.success()) {
            return Some(format!("{program} is not installed (cargo xtask doctor says how)"));
        }
    }
    None
}

pub fn missing_vm_prerequisite() -> Option<String> {
    let found = Command::new("sh").args(["-c", "command -v qemu-system-x86_64 && ls /boot/vmlinuz-*"]).output();
    if !found.is_ok_and(|output| output.status.success()) {
        return Some(
            "no qemu-system-x86_64 or no /boot/vmlinuz-* (apt-get install qemu-system-x86 linux-image-amd64)".into(),
        );
    }
    None
}

pub fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        status.lines().find(|line| line.starts_with("Uid:"))?.split_whitespace().nth(2)?.parse::<u32>().ok()
    }) == Some(0)
}

/// What runs share on this machine and must give back: the nat and filter tables (portmap's
/// chains), CNI's cache directory, IP forwarding, and where Podman keeps state when it is not
/// told otherwise (its blob cache, libpod's run state, the netns directory, its default cgroup).
pub struct SharedState {
    text: String,
}

impl SharedState {
    pub fn now() -> SharedState {
        let script = "iptables -w 5 -t nat -S; iptables -w 5 -S; ls -a /var/lib/cni 2>&1; \
                      cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/route_localnet; \
                      ls -a /var/lib/containers /run/libpod /run/netns 2>&1; ls -d /sys/fs/cgroup/*/libpod_parent 2>&1";
        let output = Command::new("sh").args(["-c", script]).output();
        SharedState {
            text: output.map(|output| String::from_utf8_lossy(&output.stdout).into_owned()).unwrap_or_default(),
        }
    }

    /// Run after the trials that use cri and podman, the last of the trials on this machine.
    pub fn unchanged(&self) -> Result<(), Failed> {
        let now = SharedState::now();
        if now.text != self.text {
            return Err(
                format!("this machine changed during the trials:\nbefore:\n{}\nnow:\n{}", self.text, now.text).into()
            );
        }
        Ok(())
    }
}

/// The `xtask` binary that `cargo xtask` builds (its profile unwinds), with the
/// `fault-injection` feature (the next `cargo xtask` puts its own build back).
pub fn xtask_with_fault_injection() -> Result<PathBuf, Failed> {
    let built = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--profile", "xtask", "--package", "xtask", "--features", "fault-injection"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()?;
    if !built.success() {
        return Err("cargo build --profile xtask failed".into());
    }
    let target = Path::new(XTASK).parent().and_then(Path::parent).ok_or("no target dir above the test's xtask")?;
    Ok(target.join("xtask/xtask"))
}

/// Collects lines into `output` until one contains `text`.
pub fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    output: &mut String,
    text: &str,
    timeout: Duration,
) -> Result<(), Failed> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            output.push_str(&line);
            output.push('\n');
            if line.contains(text) {
                return Ok(());
            }
        }
    }
    Err(format!("never saw {text:?} within {timeout:?}; the output:\n{output}").into())
}

/// Waits for a child up to `timeout`, then kills it.
pub fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_and_wait(child);
    None
}

/// The guests of the run with this pid.
pub fn guest_processes(xtask_pid: u32) -> Vec<String> {
    pid1::proc::command_lines()
        .into_iter()
        .map(|(_, command_line)| command_line)
        .filter(|line| names::is_guest(line) && owned_by(line, xtask_pid))
        .collect()
}

/// SIGKILL to every `/pause` in the cgroups of the run's containers.
pub fn kill_pause_of(xtask_pid: u32) {
    let top = Path::new("/sys/fs/cgroup/pids").join(names::cgroup(xtask_pid));
    for container in std::fs::read_dir(top).into_iter().flatten().flatten() {
        let procs = std::fs::read_to_string(container.path().join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| line == b"/pause\0") {
                nix_kill(pid.parse().unwrap_or(0), 9);
            }
        }
    }
}

/// SIGKILL to the run's QEMU, as if the guest had died.
pub fn kill_guests_of(xtask_pid: u32) {
    signal_guests_of(xtask_pid, 9);
}

pub fn signal_guests_of(xtask_pid: u32, signal: i32) {
    for (pid, command_line) in pid1::proc::command_lines() {
        if names::is_guest(&command_line) && owned_by(&command_line, xtask_pid) {
            nix_kill(pid.as_raw() as u32, signal);
        }
    }
}

/// SIGKILL to the run's daemon called `name` (its command line names the run's temp dir).
pub fn kill_daemon_of(xtask_pid: u32, name: &str) {
    for (pid, command_line) in pid1::proc::command_lines() {
        if command_line.split_whitespace().next() == Some(name) && owned_by(&command_line, xtask_pid) {
            nix_kill(pid.as_raw() as u32, 9);
        }
    }
}

/// Whether a text names a temp dir of the run with this pid.
pub fn owned_by(text: &str, xtask_pid: u32) -> bool {
    names::temp_dir_in(text).and_then(|dir| names::temp_dir_owner(&dir)) == Some(xtask_pid)
}

/// A folder of this test's own scenarios (`xtask/tests/<folder>`), for `--scenarios`.
pub fn fixture_scenarios(folder: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(folder).to_string_lossy().into_owned()
}

pub fn compile_fixture(fixture: &str, directory: &Path) -> Result<PathBuf, Failed> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/broken-pauses/{fixture}.c"));
    let binary = directory.join(fixture);
    let status = Command::new("gcc").args(["-Os", "-static", "-o"]).arg(&binary).arg(&source).status()?;
    if !status.success() {
        return Err(format!("gcc could not build {}: is libc6-dev installed?", source.display()).into());
    }
    Ok(binary)
}

pub struct Run {
    pub pid: u32,
    pub status: ExitStatus,
    /// stdout and stderr, interleaved as they came.
    pub output: String,
}

/// Runs the xtask binary; with `signal_after`, sends that signal once that text appears in its output.
pub fn run_xtask(arguments: &[&str], signal_after: Option<(&str, i32)>) -> Result<Run, Failed> {
    run_xtask_with(arguments, None, signal_after.map(|(trigger, signal)| (trigger, Action::Signal(signal))))
}

/// Runs the xtask binary and kills its QEMU (not xtask) once `trigger` appears.
pub fn run_xtask_killing_qemu(arguments: &[&str], trigger: &str) -> Result<Run, Failed> {
    run_xtask_with(arguments, None, Some((trigger, Action::KillQemu)))
}

#[derive(Clone, Copy)]
pub enum Action {
    Signal(i32),
    KillQemu,
    /// SIGKILL to the run's own daemon of this name (dockerd, containerd), this long after.
    KillDaemon(&'static str, Duration),
    /// SIGSTOP to the run's QEMU, this long after: the guest freezes.
    StopQemu(Duration),
    /// SIGKILL to the run's pause (on this machine), this long after: the sandbox dies.
    KillPause(Duration),
}

/// `input`, when given, is written to xtask's stdin, which is then closed.
pub fn run_xtask_with(arguments: &[&str], input: Option<&str>, trigger: Option<(&str, Action)>) -> Result<Run, Failed> {
    run_program_with(Path::new(XTASK), arguments, &[], input, trigger)
}

pub fn run_program_with(
    program: &Path,
    arguments: &[&str],
    environment: &[(&str, &str)],
    input: Option<&str>,
    trigger: Option<(&str, Action)>,
) -> Result<Run, Failed> {
    let mut child = Command::new(program)
        .args(arguments)
        .envs(environment.iter().copied())
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let input = input.to_string();
        std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    }
    let (lines_sender, lines) = mpsc::channel::<String>();
    let readers = [
        spawn_line_reader(child.stdout.take(), lines_sender.clone()),
        spawn_line_reader(child.stderr.take(), lines_sender),
    ];
    let started = Instant::now();
    let mut output = String::new();
    let mut interrupted = false;
    let status = loop {
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(50)) {
            if let Some((text, action)) = trigger {
                if !interrupted && line.contains(text) {
                    interrupted = true;
                    match action {
                        Action::Signal(signal) => nix_kill(pid, signal),
                        Action::KillQemu => kill_guests_of(pid),
                        Action::KillPause(after) => {
                            std::thread::spawn(move || {
                                std::thread::sleep(after);
                                kill_pause_of(pid);
                            });
                        }
                        Action::StopQemu(after) => {
                            std::thread::spawn(move || {
                                std::thread::sleep(after);
                                signal_guests_of(pid, 19);
                            });
                        }
                        Action::KillDaemon(name, after) => {
                            std::thread::spawn(move || {
                                std::thread::sleep(after);
                                kill_daemon_of(pid, name);
                            });
                        }
                    }
                }
            }
            output.push_str(&line);
            output.push('\n');
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            kill_and_wait(&mut child);
            return Err(format!("xtask did not finish within {RUN_TIMEOUT:?}; its output:\n{output}").into());
        }
    };
    for reader in readers {
        let _ = reader.join();
    }
    output.extend(lines.try_iter().map(|line| line + "\n"));
    if let (Some((text, _)), false) = (trigger, interrupted) {
        return Err(format!("never saw {text:?} to act on; the output:\n{output}").into());
    }
    Ok(Run { pid, status, output })
}

pub fn spawn_line_reader(
    pipe: Option<impl Read + Send + 'static>,
    lines: mpsc::Sender<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if let Some(pipe) = pipe {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        }
    })
}

pub fn kill_and_wait(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub fn nix_kill(pid: u32, signal: i32) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// What a run of xtask with this pid would leave: its bridge, its containers' cgroups, its
/// daemon's or guest's temp dir, mounts under it, or processes (QEMU, dockerd, containerd,
/// shims) still using it.
/// Everything a run makes carries its pid (`names`), so other runs on the machine do not count.
pub fn nothing_left(xtask_pid: u32) -> Result<(), Failed> {
    let bridge = names::bridge(xtask_pid);
    let mut leftovers = Vec::new();
    if Path::new("/sys/class/net").join(&bridge).exists() {
        leftovers.push(format!("network bridge {bridge}"));
    }
    for path in names::temp_dirs() {
        if names::temp_dir_owner(&path) == Some(xtask_pid) {
            leftovers.push(format!("temp dir {}", path.file_name().unwrap_or_default().to_string_lossy()));
        }
    }
    for root in std::fs::read_dir("/sys/fs/cgroup")?.flatten().map(|entry| entry.path()) {
        if root.join(names::cgroup(xtask_pid)).is_dir() {
            leftovers.push(format!("cgroup {}", root.join(names::cgroup(xtask_pid)).display()));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    leftovers.extend(mounts.lines().filter(|line| owned_by(line, xtask_pid)).map(|line| format!("mount {line}")));
    // One look at every process: guests, and whatever still names the run's temp dirs.
    for (pid, command_line) in pid1::proc::command_lines() {
        if owned_by(&command_line, xtask_pid) {
            leftovers.push(format!("process {pid}: {command_line}"));
        }
    }
    if !leftovers.is_empty() {
        return Err(format!("the run left behind:\n{}", leftovers.join("\n")).into());
    }
    Ok(())
}
