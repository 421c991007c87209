//! Every process the harness starts, in one place: a command runs with a deadline and comes
//! back with what it did (stdout, stderr, exit code, signal, duration); a daemon (dockerd,
//! QEMU) is handed to a guard that stops it. `tests::only_this_module_starts_processes` keeps
//! it so: no other module of the harness calls `std::process::Command`.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::cancel::Cancel;

/// What a finished command did.
#[derive(Clone, Debug)]
pub struct Output {
    pub argv: Vec<String>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration: Duration,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// How it ended, for messages: `exit code 1` or `killed by signal 9`.
    pub fn ending(&self) -> String {
        match (self.exit_code, self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "no exit status".to_string(),
        }
    }

    /// Fails unless the command exited 0, quoting the command and its stderr.
    pub fn ok(self) -> Result<Output> {
        if !self.success() {
            bail!("`{}` failed ({}): {}", self.argv.join(" "), self.ending(), last_lines(&self.stderr, 10));
        }
        Ok(self)
    }
}

/// The last `count` lines of a text, for error messages.
pub fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Runs `argv` with no stdin, in its own process group (so a Ctrl-C on the terminal reaches
/// only the harness, which then stops the command itself), killed after `timeout` or as
/// soon as `cancel` says the run was asked to stop (never, for `Cancel::NEVER`: the cleanup
/// that must still happen after Ctrl-C, removing containers, stopping the daemon, deleting the bridge).
pub fn run(argv: &[String], timeout: Duration, cancel: Cancel) -> Result<Output> {
    run_with(argv, Input::Nothing, timeout, cancel)
}

/// Like `run`, with `input` on the command's stdin.
pub fn run_fed(argv: &[String], input: Input, timeout: Duration, cancel: Cancel) -> Result<Output> {
    run_with(argv, input, timeout, cancel)
}

/// What a command reads on stdin.
pub enum Input {
    Nothing,
    Bytes(Vec<u8>),
    /// The harness's own stdin, a terminal (`stty size` asks it).
    Terminal,
}

fn run_with(argv: &[String], input: Input, timeout: Duration, cancel: Cancel) -> Result<Output> {
    let (program, arguments) = argv.split_first().context("an empty command")?;
    let started = Instant::now();
    let stdin = match input {
        Input::Nothing => Stdio::null(),
        Input::Bytes(_) => Stdio::piped(),
        Input::Terminal => Stdio::inherit(),
    };
    let mut child = Command::new(program)
        .args(arguments)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {program}: is it installed? (cargo xtask doctor)"))?;
    let writer = match (input, child.stdin.take()) {
        (Input::Bytes(bytes), Some(mut pipe)) => Some(std::thread::spawn(move || pipe.write_all(&bytes))),
        _ => None,
    };
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = wait_with_deadline(&mut child, started + timeout, cancel);
    let (stdout, stderr) = (join(stdout), String::from_utf8_lossy(&join(stderr)).into_owned());
    if let Some(writer) = writer {
        // A command that exits without reading all its input is not an error here.
        let _ = writer.join();
    }
    let status = match status {
        Ok(status) => status,
        Err(error) => {
            let quoted = argv.join(" ");
            let output = last_lines(&format!("{}{stderr}", String::from_utf8_lossy(&stdout)), 10);
            return Err(error).with_context(|| format!("`{quoted}` stopped early; its last output:\n{output}"));
        }
    };
    Ok(Output {
        argv: argv.to_vec(),
        stdout,
        stderr,
        exit_code: status.code(),
        signal: status.signal(),
        duration: started.elapsed(),
    })
}

/// Runs `argv` in the harness's terminal: it reads the harness's stdin and writes to its
/// stdout and stderr (a `cargo build` whose progress the user sees, an interactive shell),
/// in the harness's process group, so a Ctrl-C typed there reaches it too. `environment` is
/// added to the harness's own. Killed at `timeout`, or when `cancel` says the run was asked to
/// stop (a shell the user types Ctrl-C in is handed `Cancel::NEVER`: it ends when the user ends it).
pub fn run_in_view(
    argv: &[String],
    environment: &[(String, String)],
    timeout: Duration,
    cancel: Cancel,
) -> Result<Output> {
    let (program, arguments) = argv.split_first().context("an empty command")?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(arguments)
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .spawn()
        .with_context(|| format!("cannot run {program}: is it installed? (cargo xtask doctor)"))?;
    wait_elsewhere(argv, &mut child, started, timeout, cancel)
}

/// Runs `argv` with its stdout and stderr into `log`. With `Cancel::NEVER`, in the harness's
/// process group (so a Ctrl-C typed in the terminal reaches it too, and it cleans up after
/// itself), killed only at `timeout`: for a whole run of the harness that `cargo xtask soak`
/// starts. With a token that may cut it short, in a process group of its own, killed whole (its
/// compilers too) at `timeout` or as soon as the run is asked to stop: a long build step whose
/// output is kept.
pub fn run_logged(argv: &[String], log: &Path, timeout: Duration, cancel: Cancel) -> Result<Output> {
    let (program, arguments) = argv.split_first().context("an empty command")?;
    let started = Instant::now();
    let log_file = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = Command::new(program);
    command.args(arguments).stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
    if cancel.may_cut_short() {
        command.process_group(0);
    }
    let mut child = command.spawn().with_context(|| format!("cannot run {program}"))?;
    wait_elsewhere(argv, &mut child, started, timeout, cancel)
}

/// Waits for a command whose output goes elsewhere (a terminal, a log): its `Output` holds
/// how it ended, no streams.
fn wait_elsewhere(
    argv: &[String],
    child: &mut Child,
    started: Instant,
    timeout: Duration,
    cancel: Cancel,
) -> Result<Output> {
    let status = wait_with_deadline(child, started + timeout, cancel)
        .with_context(|| format!("`{}` stopped early", argv.join(" ")))?;
    Ok(Output {
        argv: argv.to_vec(),
        stdout: Vec::new(),
        stderr: String::new(),
        exit_code: status.code(),
        signal: status.signal(),
        duration: started.elapsed(),
    })
}

/// A long-running program (dockerd, QEMU) that its caller owns and stops: its own process
/// group (a Ctrl-C on the terminal must not stop it under the harness's feet: the harness
/// stops it, in order), no stdin, stdout and stderr into `log`, and `death_signal` from the
/// kernel should the harness die, even by SIGKILL.
pub fn spawn_daemon(argv: &[String], log: &Path, death_signal: Signal) -> Result<Daemon> {
    let (program, arguments) = argv.split_first().context("an empty command")?;
    let log_file = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = Command::new(program);
    command.args(arguments).stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file).process_group(0);
    // SAFETY: prctl is async-signal-safe, and this closure touches nothing else.
    unsafe {
        command.pre_exec(move || nix::sys::prctl::set_pdeathsig(death_signal).map_err(std::io::Error::from));
    }
    let child =
        command.spawn().with_context(|| format!("cannot start {program}: is it installed? (cargo xtask doctor)"))?;
    Ok(Daemon { child })
}

/// A daemon that `spawn_daemon` started. It is not stopped on drop: its owner decides how
/// (SIGTERM and a grace period for dockerd, SIGKILL of the group for QEMU).
pub struct Daemon {
    child: Child,
}

impl Daemon {
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Whether it still runs (it may have died without its owner having reaped it yet).
    pub fn is_running(&self) -> bool {
        !matches!(pid1::proc::state(self.pid()), None | Some('Z'))
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits up to `timeout` for it to exit by itself; true if it did.
    pub fn exits_within(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let pidfd = pid1::pidfd::open(self.pid())?;
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(false);
            }
            pid1::pidfd::exited_within(&pidfd, remaining)?;
        }
    }

    /// SIGKILL to its whole process group, then reaps it.
    pub fn kill_group(&mut self) {
        let _ = killpg(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A thread that lives until dropped, to start daemons on: the kernel sends a daemon its death
/// signal when the *thread* that started it ends, not the process. libtest's threads end with
/// their last trial, while the run's lab (QEMU, a private daemon), started by whichever trial
/// comes first, must last the whole run.
pub struct DaemonThread {
    jobs: Option<mpsc::Sender<Box<dyn FnOnce() + Send>>>,
    thread: Option<JoinHandle<()>>,
}

impl DaemonThread {
    pub fn new() -> DaemonThread {
        let (jobs, waiting) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let thread = std::thread::spawn(move || {
            for job in waiting {
                // A job that panics ends alone: its caller sees no answer; the thread goes on.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        });
        DaemonThread { jobs: Some(jobs), thread: Some(thread) }
    }

    /// Runs `job` on the thread and waits for what it gives back.
    pub fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (answer, answered) = mpsc::channel();
        let job = Box::new(move || {
            let _ = answer.send(job());
        });
        self.jobs
            .as_ref()
            .context("the daemon thread has ended")?
            .send(job)
            .ok()
            .context("the daemon thread has ended")?;
        answered.recv().ok().context("the daemon thread's job panicked")
    }
}

impl Drop for DaemonThread {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn wait_with_deadline(child: &mut Child, deadline: Instant, cancel: Cancel) -> Result<std::process::ExitStatus> {
    // Woken by the child's exit itself: no polling interval, which matters in the guest,
    // where every wake-up is emulated and takes CPU from the commands being measured.
    let pidfd = pid1::pidfd::open(Pid::from_raw(child.id() as i32))?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let problem = if cancel.stop_asked() {
            Some("interrupted".to_string())
        } else if Instant::now() >= deadline {
            Some("timed out".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            // The whole group: docker CLI plugins or shells may have children of their own.
            // (A command run in view shares the harness's group: it alone is killed.)
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            bail!("{problem}");
        }
        // A wait that a Ctrl-C may cut short looks at the run's flag ten times a second.
        let mut slice = deadline.saturating_duration_since(Instant::now());
        if cancel.may_cut_short() {
            slice = slice.min(Duration::from_millis(100));
        }
        pid1::pidfd::exited_within(&pidfd, slice)?;
    }
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

fn join(reader: JoinHandle<Vec<u8>>) -> Vec<u8> {
    reader.join().unwrap_or_default()
}

/// Where `program` is: itself when it is a path, else the first executable file of that name
/// on PATH, then in /usr/sbin and /sbin (which a user's PATH may lack).
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.starts_with('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|directory| directory.join(program))
        .find(|candidate| {
            candidate.metadata().is_ok_and(|metadata| {
                metadata.is_file() && std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o111 != 0
            })
        })
}

/// Builds an argv from string slices.
pub fn argv<S: AsRef<str>>(words: &[S]) -> Vec<String> {
    words.iter().map(|word| word.as_ref().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_the_path_and_in_sbin() {
        assert_eq!(find_program("sh").map(|path| path.is_file()), Some(true));
        assert!(find_program("ip").is_some_and(|path| path.ends_with("ip")));
        assert_eq!(find_program("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("no-such-program-podlab"), None);
    }

    /// A daemon started on a thread that then ends is killed (the reason `DaemonThread` is);
    /// one started on a `DaemonThread` outlives the thread that asked for it.
    #[test]
    fn a_daemon_lives_as_long_as_the_thread_that_started_it() {
        let scratch = tempfile::tempdir().unwrap();
        let log = scratch.path().join("sleep.log");
        let sleeper = argv(&["sleep", "30"]);
        let (on_a_thread, lasting) = (log.clone(), DaemonThread::new());
        let mut short_lived =
            std::thread::spawn(move || spawn_daemon(&sleeper, &on_a_thread, Signal::SIGKILL)).join().unwrap().unwrap();
        let (sleeper, on_lasting) = (argv(&["sleep", "30"]), log.clone());
        let mut kept = std::thread::spawn(move || {
            lasting
                .run(move || spawn_daemon(&sleeper, &on_lasting, Signal::SIGKILL))
                .map(|daemon| (daemon.unwrap(), lasting))
        })
        .join()
        .unwrap()
        .unwrap();
        assert!(short_lived.exits_within(Duration::from_secs(5)).unwrap(), "its thread ended, yet it runs");
        assert!(!kept.0.exits_within(Duration::from_millis(300)).unwrap(), "it ended with the thread that asked");
        kept.0.kill_group();
        short_lived.kill_group();
    }

    #[test]
    fn keeps_stdout_stderr_and_exit_code_apart() {
        let output =
            run(&argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]), Duration::from_secs(10), Cancel::NEVER)
                .unwrap();
        assert_eq!((output.stdout_text().as_str(), output.stderr.as_str()), ("out\n", "err\n"));
        assert_eq!((output.exit_code, output.signal), (Some(3), None));
        assert_eq!(output.ending(), "exit code 3");
    }

    #[test]
    fn reports_a_signal() {
        let output = run(&argv(&["sh", "-c", "kill -TERM $$"]), Duration::from_secs(10), Cancel::NEVER).unwrap();
        assert_eq!((output.exit_code, output.signal), (None, Some(15)));
    }

    #[test]
    fn a_hung_command_is_killed_at_its_deadline_with_its_last_output() {
        let started = Instant::now();
        let error = run(&argv(&["sh", "-c", "echo almost there; sleep 30"]), Duration::from_millis(300), Cancel::NEVER)
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let message = format!("{error:#}");
        assert!(message.contains("stopped early; its last output:\nalmost there"), "{message}");
        assert!(message.ends_with("timed out"), "{message}");
    }

    #[test]
    fn a_command_is_killed_once_its_run_is_asked_to_stop() {
        let cancel = Cancel::of_its_own();
        cancel.stop();
        let started = Instant::now();
        let error = run(&argv(&["sleep", "30"]), Duration::from_secs(30), cancel).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(format!("{error:#}").ends_with("interrupted"), "{error:#}");
    }

    #[test]
    fn a_missing_program_says_what_to_do() {
        let error = run(&argv(&["/no/such/program"]), Duration::from_secs(1), Cancel::NEVER).unwrap_err();
        assert!(error.to_string().contains("cargo xtask doctor"));
    }

    /// What ARCHITECTURE.md promises: every process the harness starts goes through this
    /// module, so each has a deadline or an owner that stops it. Tests may start their own.
    #[test]
    fn only_this_module_starts_processes() {
        let offenders: Vec<String> = crate::layers::production_sources()
            .into_iter()
            .filter(|(path, production)| {
                path != Path::new("command.rs")
                    && (production.contains("process::Command") || production.contains("Command::new("))
            })
            .map(|(path, _)| path.display().to_string())
            .collect();
        assert!(offenders.is_empty(), "these start processes without crate::command: {offenders:?}");
    }
}
