//! The harness from the outside: `cargo xtask test` run as a user runs it, on the real
//! Docker daemon, against pauses that each break one promise, and interrupted midway.
//! After every run, nothing it made may be left: no daemon, bridge, temp dir or mount.
//!
//! Needs root, dockerd, gcc with a static libc, and the images' host programs; where any
//! is missing every trial is ignored and the reason printed.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// (fixture, the scenario it must fail, a phrase the failure must contain)
const BROKEN_PAUSES: &[(&str, &str, &str)] = &[
    ("exits-1-on-sigterm", "scenarios/shutdown", "expected pause to exit with code 0, it exited with 1"),
    ("ignores-sigint", "scenarios/shutdown-sigint", "expected pause to exit within 2000 ms, it is still running"),
    ("never-reaps", "scenarios/reaping", "expected no zombie in the PID namespace of app, found 300"),
    ("spins", "scenarios/idle", "expected pause to use at most 10 ms of CPU over 1000 ms of waiting"),
];

fn main() -> std::process::ExitCode {
    let mut arguments = Arguments::from_args();
    // Each run starts its own dockerd; one at a time keeps them from competing for two cores.
    arguments.test_threads = Some(1);
    let missing = missing_prerequisite();
    if let Some(reason) = &missing {
        eprintln!("note: the harness trials are ignored: {reason}");
    }
    let mut trials: Vec<Trial> = BROKEN_PAUSES
        .iter()
        .map(|&(fixture, scenario, phrase)| {
            Trial::test(format!("broken_pause::{fixture}"), move || broken_pause_fails(fixture, scenario, phrase))
        })
        .collect();
    trials.push(Trial::test("cleanup::after_a_passing_run", passing_run_cleans_up));
    trials.push(Trial::test("cleanup::after_ctrl_c", interrupted_run_cleans_up));
    trials.push(Trial::test("cleanup::after_the_run_deadline", timed_out_run_cleans_up));
    trials.push(Trial::test("load_errors_stop_the_run_before_any_container", load_error_stops_early));
    let trials = trials.into_iter().map(|trial| trial.with_ignored_flag(missing.is_some())).collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}

fn missing_prerequisite() -> Option<String> {
    if !nix_is_root() {
        return Some("not root: the private dockerd and its bridge need root".into());
    }
    for program in ["dockerd", "docker", "gcc", "nginx", "node", "busybox", "curl", "ipcmk"] {
        let found =
            Command::new("sh").args(["-c", &format!("command -v {program} || test -x /usr/sbin/{program}")]).output();
        if !found.is_ok_and(|output| output.status.success()) {
            return Some(format!("{program} is not installed (cargo xtask doctor says how)"));
        }
    }
    None
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        status.lines().find(|line| line.starts_with("Uid:"))?.split_whitespace().nth(2)?.parse::<u32>().ok()
    }) == Some(0)
}

/// A pause that breaks a promise makes its scenario fail (exit 101), naming the promise.
fn broken_pause_fails(fixture: &str, scenario: &str, phrase: &str) -> Result<(), Failed> {
    let work = tempfile::tempdir()?;
    let binary = compile_fixture(fixture, work.path())?;
    let pause_bin = binary.to_string_lossy().into_owned();
    let run = run_xtask(&["test", "--pause-bin", &pause_bin, scenario, "--exact"], None)?;
    if run.status.code() != Some(101) {
        return Err(format!("expected exit code 101 (a scenario failed), got {:?}\n{}", run.status, run.output).into());
    }
    if !run.output.contains(phrase) {
        return Err(format!("expected the failure to say {phrase:?}, the output was:\n{}", run.output).into());
    }
    nothing_left(run.pid)
}

/// A run that passes (non-root holds for any pause that sleeps) exits 0 and leaves nothing either.
fn passing_run_cleans_up() -> Result<(), Failed> {
    let work = tempfile::tempdir()?;
    let binary = compile_fixture("exits-1-on-sigterm", work.path())?;
    let pause_bin = binary.to_string_lossy().into_owned();
    let run = run_xtask(&["test", "--pause-bin", &pause_bin, "scenarios/non-root", "--exact"], None)?;
    if run.status.code() != Some(0) {
        return Err(format!("expected exit code 0, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// Ctrl-C (SIGINT) while scenarios run: exit 130, and everything is removed.
fn interrupted_run_cleans_up() -> Result<(), Failed> {
    let run = run_xtask(&["test"], Some("scenarios/reaping: "))?;
    if run.status.code() != Some(130) {
        return Err(format!("expected exit code 130 after Ctrl-C, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// The run's own deadline works like Ctrl-C.
fn timed_out_run_cleans_up() -> Result<(), Failed> {
    let run = run_xtask(&["test", "--run-timeout", "3"], None)?;
    if run.status.code() != Some(130) || !run.output.contains("the run's deadline (3 s) passed") {
        return Err(
            format!("expected exit code 130 and the deadline named, got {:?}\n{}", run.status, run.output).into()
        );
    }
    nothing_left(run.pid)
}

/// A scenario that does not load stops the run with exit code 2, naming file, line and field.
fn load_error_stops_early() -> Result<(), Failed> {
    let work = tempfile::tempdir()?;
    std::fs::write(
        work.path().join("broken.json"),
        "{\n  \"schema_version\": 1,\n  \"description\": \"typo\",\n  \"pod\": { \"infra\": { \"name\": \"pause\", \"imgae\": \"x\" }, \"containers\": [] },\n  \"steps\": []\n}\n",
    )?;
    let scenarios = work.path().to_string_lossy().into_owned();
    let run = run_xtask(&["test", "--scenarios", &scenarios], None)?;
    let expected = "broken.json:4:46: pod.infra.imgae: unknown field `imgae`";
    if run.status.code() != Some(2) || !run.output.contains(expected) {
        return Err(format!("expected exit code 2 and {expected:?}, got {:?}\n{}", run.status, run.output).into());
    }
    if run.output.contains("dockerd ready") {
        return Err("the daemon was started although a scenario did not load".into());
    }
    Ok(())
}

fn compile_fixture(fixture: &str, directory: &Path) -> Result<PathBuf, Failed> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/broken-pauses/{fixture}.c"));
    let binary = directory.join(fixture);
    let status = Command::new("gcc").args(["-Os", "-static", "-o"]).arg(&binary).arg(&source).status()?;
    if !status.success() {
        return Err(format!("gcc could not build {}: is libc6-dev installed?", source.display()).into());
    }
    Ok(binary)
}

struct Run {
    pid: u32,
    status: ExitStatus,
    /// stdout and stderr, interleaved as they came.
    output: String,
}

/// Runs the xtask binary; with `interrupt_after`, sends SIGINT once that text appears on stderr.
fn run_xtask(arguments: &[&str], interrupt_after: Option<&str>) -> Result<Run, Failed> {
    let mut child = Command::new(XTASK)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
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
            if let Some(trigger) = interrupt_after {
                if !interrupted && line.contains(trigger) {
                    interrupted = true;
                    nix_kill(pid, 2);
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
    if interrupt_after.is_some() && !interrupted {
        return Err(format!("never saw {interrupt_after:?} to interrupt on; the output:\n{output}").into());
    }
    Ok(Run { pid, status, output })
}

fn spawn_line_reader(
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

fn kill_and_wait(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn nix_kill(pid: u32, signal: i32) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// What a run of xtask with this pid would leave: its bridge, its daemon's temp dir,
/// mounts under it, or processes (dockerd, containerd, shims) still using it.
fn nothing_left(xtask_pid: u32) -> Result<(), Failed> {
    let bridge = format!("podlab{}", xtask_pid % 10_000);
    let mut leftovers = Vec::new();
    if Path::new("/sys/class/net").join(&bridge).exists() {
        leftovers.push(format!("network bridge {bridge}"));
    }
    let temp_dirs: Vec<String> = std::fs::read_dir(std::env::temp_dir())?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("podlab-docker-"))
        .collect();
    leftovers.extend(temp_dirs.iter().map(|name| format!("temp dir {name}")));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    leftovers.extend(mounts.lines().filter(|line| line.contains("podlab-docker-")).map(|line| format!("mount {line}")));
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let command_line = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let command_line = String::from_utf8_lossy(&command_line).replace('\0', " ");
        if command_line.contains("podlab-docker-") {
            leftovers.push(format!("process {}: {command_line}", entry.file_name().to_string_lossy()));
        }
    }
    if !leftovers.is_empty() {
        return Err(format!("the run left behind:\n{}", leftovers.join("\n")).into());
    }
    Ok(())
}
