//! The `vm` host: a throwaway QEMU guest, booted in seconds without a disk image. The host's
//! kernel (and its /lib/modules), an initramfs made on the fly, the host's root read-only over
//! virtio-9p with a tmpfs overlay, tmpfs for the runtime's data, no network card. The harness
//! runs commands and API requests in the guest through an agent (this same binary, `xtask
//! guest-agent`, in `agent.rs`) on a virtio-serial port (`channel.rs`, `protocol.rs`).
//!
//! The files by job: `boot.rs` boots (with `kernel.rs`, `initramfs.rs`, `qemu.rs`),
//! `channel.rs` carries requests and answers, `shell.rs` relays `cargo xtask pod`'s shell.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{Host, Placement};
use crate::cancel::Cancel;
use crate::command::{Daemon, Output, argv, last_lines};
use crate::progress::Progress;
use crate::unix_grpc::{Call, Reply};
use crate::unix_http::{Request, Response};

pub mod agent;
mod boot;
mod channel;
mod initramfs;
pub mod kernel;
mod protocol;
pub mod qemu;
mod shell;

pub use boot::BootPlan;
use channel::Channel;
use protocol::{Answer, Job};
use qemu::Acceleration;

/// What the user asked of the VM.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct VmOptions {
    /// The guest's kernel (default: the newest /boot/vmlinuz-* that has its /lib/modules)
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Fail rather than fall back to TCG when KVM does not work
    #[arg(long)]
    pub require_kvm: bool,
}

/// How long an interactive shell may stay open.
const SHELL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

pub struct VmHost {
    qemu: Mutex<Daemon>,
    qemu_command_line: String,
    channel: Channel,
    console_log: PathBuf,
    /// How much of the console log has been looked at for a locked-up guest kernel, and what
    /// was said once one was seen (the guest does not recover: every later request fails too).
    console_watch: Mutex<(u64, Option<String>)>,
    shell_socket: Option<PathBuf>,
    scratch: Mutex<Option<tempfile::TempDir>>,
    acceleration: Acceleration,
    kernel_release: String,
    /// The run's: what ends the guest's commands early, unless a caller hands `Cancel::NEVER`.
    cancel: Cancel,
}

impl VmHost {
    pub fn boot(plan: &BootPlan, progress: &Progress) -> Result<VmHost> {
        let booted = boot::boot(plan, progress)?;
        Ok(VmHost {
            qemu: Mutex::new(booted.qemu),
            qemu_command_line: booted.qemu_command_line,
            channel: booted.channel,
            console_log: booted.console_log,
            console_watch: Mutex::new((0, None)),
            shell_socket: booted.shell_socket,
            scratch: Mutex::new(Some(booted.scratch)),
            acceleration: booted.acceleration,
            kernel_release: booted.kernel_release,
            cancel: plan.cancel,
        })
    }

    fn ask(&self, job: Job, timeout: Duration, cancel: Cancel, stop: &AtomicBool) -> Result<Answer> {
        self.channel.ask(job, timeout, cancel, stop, &|| self.check_qemu_alive())
    }

    /// Fails when QEMU is gone, or stopped (SIGSTOP: the guest is frozen and would answer
    /// nothing until each request's deadline).
    fn check_qemu_alive(&self) -> Result<()> {
        let mut qemu = self.qemu.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(status) = qemu.exited()? {
            bail!("{}", boot::qemu_died_message(status, &self.console_log, &self.qemu_command_line));
        }
        if pid1::proc::state(qemu.pid()) == Some('T') {
            bail!(
                "QEMU (pid {}) is stopped (SIGSTOP?): the guest is frozen; QEMU command line: {}",
                qemu.pid(),
                self.qemu_command_line
            );
        }
        drop(qemu);
        self.check_guest_kernel()
    }

    /// Fails when the guest's kernel says a CPU has been stuck in it (`soft lockup`, after 20 s
    /// or more): the guest then answers nothing for minutes (seen once under TCG, both CPUs in
    /// runc), and every request would wait for its deadline. The machine failed, not the pod.
    fn check_guest_kernel(&self) -> Result<()> {
        let mut watch = self.console_watch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (read, locked_up) = &mut *watch;
        if locked_up.is_none() && console_since(&self.console_log, read).contains("soft lockup") {
            let console = std::fs::read_to_string(&self.console_log).unwrap_or_default();
            *locked_up = Some(format!(
                "the guest's kernel reports a CPU stuck in it for 20 s or more (soft lockup): the emulated machine \
                 hangs, not the pod\nthe console's last lines:\n{}",
                last_lines(&console, 12)
            ));
        }
        match locked_up {
            Some(message) => bail!("{message}"),
            None => Ok(()),
        }
    }
}

/// What the console log holds past `read` (and a little before it, for a line written in two
/// parts); `read` moves to its end.
fn console_since(console_log: &Path, read: &mut u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let length = std::fs::metadata(console_log).map_or(0, |metadata| metadata.len());
    if length <= *read {
        return String::new();
    }
    let from = read.saturating_sub(64);
    let mut new = Vec::new();
    if let Ok(mut console) = std::fs::File::open(console_log) {
        let _ = console.seek(SeekFrom::Start(from)).and_then(|_| console.take(length - from).read_to_end(&mut new));
    }
    *read = length;
    String::from_utf8_lossy(&new).into_owned()
}

impl Host for VmHost {
    fn details(&self) -> String {
        format!("vm ({}, kernel {})", self.acceleration.name(), self.kernel_release)
    }

    fn placement(&self) -> Placement {
        Placement::Vm
    }

    fn run(&self, argv: &[String], timeout: Duration, cancel: Cancel) -> Result<Output> {
        let answer = self.ask(Job::Run(argv.to_vec()), timeout, cancel, &AtomicBool::new(false))?;
        if let Some(error) = answer.error {
            bail!("in the guest, `{}`: {error}", argv.join(" "));
        }
        Ok(Output {
            argv: argv.to_vec(),
            stdout: answer.stdout,
            stderr: answer.stderr,
            exit_code: answer.exit_code,
            signal: answer.signal,
            duration: Duration::from_millis(answer.duration_ms),
        })
    }

    fn request(&self, request: &Request, timeout: Duration, cancel: Cancel) -> Result<Response> {
        self.request_until(request, timeout, cancel, &AtomicBool::new(false))
    }

    fn request_until(
        &self,
        request: &Request,
        timeout: Duration,
        cancel: Cancel,
        stop: &AtomicBool,
    ) -> Result<Response> {
        let answer = self.ask(Job::Http(request.clone()), timeout, cancel, stop)?;
        if let Some(error) = answer.error {
            bail!("in the guest, {}: {error}", request.describe());
        }
        let status = answer.http_status.context("the guest agent gave no HTTP status")?;
        Ok(Response { status, body: answer.stdout, cut_short: answer.cut_short })
    }

    fn grpc(&self, call: &Call, timeout: Duration, cancel: Cancel) -> Result<Reply> {
        let answer = self.ask(Job::Grpc(call.clone()), timeout, cancel, &AtomicBool::new(false))?;
        if let Some(error) = answer.error {
            bail!("in the guest, {}: {error}", call.describe());
        }
        answer.grpc.context("the guest agent gave no gRPC reply")
    }

    /// The guest's kernel is the run's own: an OOM kill in its log is the run's.
    fn machine_failed(&self) -> Option<String> {
        self.check_guest_kernel().err().map(|error| format!("{error:#}"))
    }

    fn trouble(&self) -> Option<String> {
        if let Some(failure) = self.machine_failed() {
            return Some(failure);
        }
        let log = self.run(&argv(&["dmesg"]), Duration::from_secs(10), self.cancel).ok()?.stdout_text();
        // The guest's own OOM killer says "Out of memory", a cgroup's "Memory cgroup out of memory".
        let kills: Vec<&str> = log.lines().filter(|line| line.to_lowercase().contains("out of memory")).collect();
        if kills.is_empty() {
            return None;
        }
        Some(format!("the guest ran out of memory; its kernel said:\n{}", kills.join("\n")))
    }

    fn uptime(&self) -> Result<Duration> {
        let output = self.run(&argv(&["cat", "/proc/uptime"]), Duration::from_secs(10), self.cancel)?.ok()?;
        super::parse_uptime(&output.stdout_text()).context("unreadable /proc/uptime in the guest")
    }

    /// A shell in the guest on its second serial port, relayed to this terminal in raw mode;
    /// returns when the shell exits. SIGTERM or SIGHUP ends the session (a Ctrl-C typed in
    /// raw mode is a key for the guest, not a signal for the harness).
    fn interactive_shell(&self, environment: &[(String, String)]) -> Result<()> {
        let socket = self.shell_socket.as_deref().context("the guest was booted without a shell port")?;
        let (script, raw_mode) = shell::relay(socket, environment, self.cancel)?;
        let ended = self.run(&argv(&["sh", "-c", &script]), SHELL_TIMEOUT, self.cancel);
        drop(raw_mode);
        ended.map(drop)
    }

    fn shut_down(&self) -> Result<()> {
        let Some(scratch) = self.scratch.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() else {
            return Ok(());
        };
        self.qemu.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).kill_group();
        scratch.close().context("cannot remove the VM's temp dir")
    }
}

impl Drop for VmHost {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            eprintln!("warning: {error:#}");
        }
    }
}

/// Guest uptime (seconds) at each `podlab: <phase> at <uptime> s` line of a guest's console
/// (stage 1, root mounted, stage 2, agent up): where a boot's time goes.
pub fn console_phases(console_log: &Path) -> Vec<(String, f64)> {
    let console = std::fs::read_to_string(console_log).unwrap_or_default();
    console
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find("podlab: ")? + "podlab: ".len()..];
            let (phase, uptime) = rest.rsplit_once(" at ")?;
            Some((phase.to_string(), uptime.trim_end_matches(" s").parse().ok()?))
        })
        .collect()
}

/// The guest sees this machine's root read-only, with its own tmpfs over /tmp and /run, and
/// the workspace again on a share of its own at the same path (so a checkout under /tmp works):
/// what the harness hands to the guest must live in the workspace or outside /tmp and /run.
fn guest_can_see(path: &Path) -> bool {
    path.starts_with(crate::pause_build::workspace_root()) || !(path.starts_with("/tmp") || path.starts_with("/run"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_lockup_written_in_two_parts_is_seen_once() {
        let mut console = tempfile::NamedTempFile::new().unwrap();
        let mut read = 0;
        console.write_all(b"podlab: agent up at 2.1 s\n[   60.4] watchdog: BUG: soft lo").unwrap();
        assert!(!console_since(console.path(), &mut read).contains("soft lockup"));
        console.write_all(b"ckup - CPU#0 stuck for 45s! [runc:319]\n").unwrap();
        assert!(console_since(console.path(), &mut read).contains("soft lockup"));
        assert_eq!(console_since(console.path(), &mut read), "", "nothing new: nothing read");
    }
}
