//! Runs a command with a deadline and keeps what it did apart: stdout, stderr, exit code,
//! signal and duration. Every command the harness runs goes through here.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::interrupt;

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
/// soon as the run is interrupted.
pub fn run(argv: &[String], timeout: Duration) -> Result<Output> {
    run_with(argv, timeout, Interruptible::Yes)
}

/// Like `run`, but an interrupted run does not stop it: for the cleanup that must still
/// happen after Ctrl-C (removing containers, stopping the daemon, deleting the bridge).
pub fn run_even_if_interrupted(argv: &[String], timeout: Duration) -> Result<Output> {
    run_with(argv, timeout, Interruptible::No)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Interruptible {
    Yes,
    No,
}

fn run_with(argv: &[String], timeout: Duration, interruptible: Interruptible) -> Result<Output> {
    let (program, arguments) = argv.split_first().context("an empty command")?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {program}: is it installed? (cargo xtask doctor)"))?;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = wait_with_deadline(&mut child, started + timeout, interruptible);
    let (stdout, stderr) = (join(stdout), String::from_utf8_lossy(&join(stderr)).into_owned());
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

fn wait_with_deadline(
    child: &mut Child,
    deadline: Instant,
    interruptible: Interruptible,
) -> Result<std::process::ExitStatus> {
    // Woken by the child's exit itself: no polling interval, which matters in the guest,
    // where every wake-up is emulated and takes CPU from the commands being measured.
    let pidfd = pid1::pidfd::open(Pid::from_raw(child.id() as i32))?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let problem = if interruptible == Interruptible::Yes && interrupt::interrupted() {
            Some("interrupted".to_string())
        } else if Instant::now() >= deadline {
            Some("timed out".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            // The whole group: docker CLI plugins or shells may have children of their own.
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            bail!("{problem}");
        }
        // An interruptible wait looks at the Ctrl-C flag ten times a second.
        let mut slice = deadline.saturating_duration_since(Instant::now());
        if interruptible == Interruptible::Yes {
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

/// Builds an argv from string slices.
pub fn argv<S: AsRef<str>>(words: &[S]) -> Vec<String> {
    words.iter().map(|word| word.as_ref().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_stdout_stderr_and_exit_code_apart() {
        let output = run(&argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]), Duration::from_secs(10)).unwrap();
        assert_eq!((output.stdout_text().as_str(), output.stderr.as_str()), ("out\n", "err\n"));
        assert_eq!((output.exit_code, output.signal), (Some(3), None));
        assert_eq!(output.ending(), "exit code 3");
    }

    #[test]
    fn reports_a_signal() {
        let output = run(&argv(&["sh", "-c", "kill -TERM $$"]), Duration::from_secs(10)).unwrap();
        assert_eq!((output.exit_code, output.signal), (None, Some(15)));
    }

    #[test]
    fn a_hung_command_is_killed_at_its_deadline_with_its_last_output() {
        let started = Instant::now();
        let error = run(&argv(&["sh", "-c", "echo almost there; sleep 30"]), Duration::from_millis(300)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let message = format!("{error:#}");
        assert!(message.contains("stopped early; its last output:\nalmost there"), "{message}");
        assert!(message.ends_with("timed out"), "{message}");
    }

    #[test]
    fn a_missing_program_says_what_to_do() {
        let error = run(&argv(&["/no/such/program"]), Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("cargo xtask doctor"));
    }
}
