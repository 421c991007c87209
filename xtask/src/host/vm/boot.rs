//! Booting the guest: the kernel (unpacked once), an initramfs made on the fly, KVM where a
//! vCPU really runs (else TCG), QEMU started as a daemon the harness owns, and a wait until
//! the agent says it listens. A boot that fails kills its QEMU on the way out.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use super::channel::Channel;
use super::protocol::GuestMessage;
use super::qemu::{self, Acceleration};
use super::{VmOptions, initramfs, kernel};
use crate::cancel::Cancel;
use crate::command::{self, Daemon, last_lines};
use crate::names;
use crate::pause_build;
use crate::progress::Progress;

/// Boot, to the agent listening; generous, since TCG on a busy host is slow (about 2.5 s here).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
const GUEST_MEMORY_MB: u32 = 2048;

/// What to boot, beyond what the user chose.
pub struct BootPlan<'a> {
    pub options: &'a VmOptions,
    /// A script the guest's init runs before the agent starts: the runtime's daemons, started
    /// while the rest of the guest comes up. It must live where the guest sees it (the workspace).
    pub services: &'a Path,
    /// Programs the guest's first stage reads into its page cache while the rest comes up
    /// (under TCG, reading a daemon over 9p on demand is much of its start-up).
    pub read_ahead: &'a [PathBuf],
    /// Give the guest a second serial port for an interactive shell (`cargo xtask pod`).
    pub interactive: bool,
    pub run_dir: &'a Path,
    /// The run's: a Ctrl-C ends the boot, and the guest's commands, requests and calls.
    pub cancel: Cancel,
}

/// A guest whose agent listens.
pub struct Booted {
    pub qemu: Daemon,
    pub qemu_command_line: String,
    pub channel: Channel,
    pub console_log: PathBuf,
    pub shell_socket: Option<PathBuf>,
    pub scratch: tempfile::TempDir,
    pub acceleration: Acceleration,
    pub kernel_release: String,
}

pub fn boot(plan: &BootPlan, progress: &Progress) -> Result<Booted> {
    let workspace = pause_build::workspace_root();
    let agent = std::env::current_exe()?;
    for (what, path) in [("the harness's binary", agent.as_path()), ("the runtime's start script", plan.services)] {
        if !super::guest_can_see(path) {
            bail!(
                "{what}, {}, is under /tmp or /run and outside the workspace, so the guest cannot see it: \
                 build into the workspace's target/",
                path.display()
            );
        }
    }
    let phase = Instant::now();
    let kernel = kernel::find(plan.options.kernel.as_deref())?;
    let scratch = names::temp_dir(names::VM_TEMP_WORD)?;
    let initramfs_path = scratch.path().join("initramfs.cpio");
    initramfs::build(&kernel, &workspace.join("vm/init"), &initramfs_path)?;
    progress.done(
        &format!("initramfs for {} ({} KB)", kernel.release, std::fs::metadata(&initramfs_path)?.len() / 1024),
        phase,
    );

    let phase = Instant::now();
    let cache_dir = names::cache_dir(workspace);
    let boot_image = match kernel::uncompressed(&kernel, &cache_dir, plan.cancel)? {
        Some(vmlinux) => vmlinux,
        None => {
            progress.say("the kernel cannot be unpacked for a PVH boot: booting the bzImage (slower under TCG)");
            kernel.image.clone()
        }
    };
    progress.done("kernel ready", phase);
    let phase = Instant::now();
    let acceleration =
        match qemu::kvm_works_cached(&boot_image, &initramfs_path, scratch.path(), &cache_dir, plan.cancel)? {
            Ok(()) => Acceleration::Kvm,
            Err(reason) if plan.options.require_kvm => bail!("--require-kvm: KVM cannot be used here: {reason}"),
            Err(reason) => {
                progress.say(&format!("KVM is not usable ({reason}): the guest runs under TCG, much slower"));
                Acceleration::Tcg
            }
        };
    progress.done(&format!("acceleration: {}", acceleration.name()), phase);

    // The guest's init is the workspace's own pause (not a --pause-bin under test): it must hold.
    let pause = pause_build::build_release(plan.cancel)?;
    let phase = Instant::now();
    // A guest booted in place of one that failed keeps the failed one's logs (its stack).
    let suffix = (1..)
        .map(|boot: u32| if boot == 1 { String::new() } else { format!("-{boot}") })
        .find(|suffix| !plan.run_dir.join(format!("console{suffix}.log")).exists())
        .expect("some boot number is free");
    let console_log = plan.run_dir.join(format!("console{suffix}.log"));
    let agent_socket = scratch.path().join("agent.sock");
    let shell_socket = plan.interactive.then(|| scratch.path().join("shell.sock"));
    let kernel_arguments = vec![
        "console=ttyS0".to_string(),
        "quiet".to_string(),
        // Warnings too (7 lines at boot): a soft lockup's registers and stack are printed at
        // that level, and a lockup is only ever read from the console, after the fact.
        "loglevel=5".to_string(),
        // Skip what a throwaway guest does not need at boot: crypto self-tests, PS/2
        // probing and timer checks (stage 1 reached about 0.3 s sooner under TCG here).
        "cryptomgr.notests".to_string(),
        "i8042.noaux".to_string(),
        "i8042.nokbd".to_string(),
        "i8042.nopnp".to_string(),
        "no_timer_check".to_string(),
        "panic=-1".to_string(),
        "rdinit=/init".to_string(),
        format!("podlab.stage2={}", workspace.join("vm/guest-init.sh").display()),
        format!("podlab.services={}", plan.services.display()),
        format!("podlab.read_ahead={}", read_ahead_argument(plan.read_ahead)),
        format!("podlab.agent={}", agent.display()),
        format!("podlab.workspace={}", workspace.display()),
        format!("podlab.pause={}", pause.display()),
    ];
    let guest = qemu::Guest {
        kernel: &boot_image,
        initramfs: &initramfs_path,
        kernel_arguments,
        console_log: &console_log,
        agent_socket: Some(&agent_socket),
        workspace: Some(workspace),
        shell_socket: shell_socket.as_deref(),
        memory_mb: GUEST_MEMORY_MB,
        cpus: std::thread::available_parallelism().map_or(2, |cpus| cpus.get() as u32).min(4),
    };
    let mut argv = vec![qemu::QEMU.to_string()];
    argv.extend(qemu::arguments(&guest, acceleration));
    let qemu_command_line = argv.join(" ");
    // QEMU dies with the harness, even by SIGKILL.
    let daemon = command::spawn_daemon(&argv, &plan.run_dir.join(format!("qemu{suffix}.log")), Signal::SIGKILL)
        .context("cannot start QEMU: install it with apt-get install qemu-system-x86")?;
    let mut qemu = QemuGuard {
        daemon: Some(daemon),
        console_log: console_log.clone(),
        command_line: qemu_command_line.clone(),
        cancel: plan.cancel,
    };
    let stream = qemu.connect(&agent_socket, phase + BOOT_TIMEOUT)?;
    let (channel, messages) = Channel::open(stream)?;
    let GuestMessage::Ready { agent_started_ms } =
        qemu.receive(&messages, phase + BOOT_TIMEOUT, "the guest to boot and its agent to listen")?
    else {
        bail!("the guest agent answered before it was asked");
    };
    let agent_up = Duration::from_millis(agent_started_ms);
    progress.done(
        &format!(
            "guest booted under {}: agent up at {:.1} s of guest uptime",
            acceleration.name(),
            agent_up.as_secs_f64()
        ),
        phase,
    );
    Ok(Booted {
        qemu: qemu.daemon.take().expect("the guard holds QEMU"),
        qemu_command_line,
        channel,
        console_log,
        shell_socket,
        scratch,
        acceleration,
        kernel_release: kernel.release.clone(),
    })
}

/// `a,b,c` for the kernel command line, which splits words at spaces: a path with a space or
/// a comma is not read ahead (it is still read when the guest runs it).
fn read_ahead_argument(programs: &[PathBuf]) -> String {
    let paths = programs.iter().map(|program| program.to_string_lossy());
    let plain: Vec<_> = paths.filter(|path| !path.contains([' ', ','])).collect();
    plain.join(",")
}

/// Why QEMU is gone, with the console's last lines and its command line.
pub fn qemu_died_message(status: std::process::ExitStatus, console_log: &Path, command_line: &str) -> String {
    let console = std::fs::read_to_string(console_log).unwrap_or_default();
    format!(
        "QEMU exited ({status}); the console's last lines:\n{}\nQEMU command line: {command_line}",
        last_lines(&console, 25)
    )
}

/// QEMU during boot: killed if boot fails, handed over to the host if it succeeds.
struct QemuGuard {
    daemon: Option<Daemon>,
    console_log: PathBuf,
    command_line: String,
    cancel: Cancel,
}

impl QemuGuard {
    /// Connects to the agent's socket, which QEMU creates as it starts.
    fn connect(&mut self, socket: &Path, deadline: Instant) -> Result<UnixStream> {
        loop {
            if let Ok(stream) = UnixStream::connect(socket) {
                return Ok(stream);
            }
            self.fail_if_dead_or_late(deadline, "QEMU to open the agent's socket")?;
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn receive(
        &mut self,
        messages: &Receiver<GuestMessage>,
        deadline: Instant,
        waiting_for: &str,
    ) -> Result<GuestMessage> {
        loop {
            match messages.recv_timeout(Duration::from_millis(50)) {
                Ok(message) => return Ok(message),
                Err(RecvTimeoutError::Timeout) => self.fail_if_dead_or_late(deadline, waiting_for)?,
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail_if_dead_or_late(Instant::now() + Duration::from_secs(2), waiting_for)?;
                    bail!("the guest agent closed its port while the harness waited for {waiting_for}");
                }
            }
        }
    }

    fn fail_if_dead_or_late(&mut self, deadline: Instant, waiting_for: &str) -> Result<()> {
        self.cancel.check()?;
        let daemon = self.daemon.as_mut().expect("the guard holds QEMU");
        if let Some(status) = daemon.exited()? {
            bail!(
                "while waiting for {waiting_for}: {}",
                qemu_died_message(status, &self.console_log, &self.command_line)
            );
        }
        if Instant::now() > deadline {
            let console = std::fs::read_to_string(&self.console_log).unwrap_or_default();
            bail!(
                "waited {BOOT_TIMEOUT:?} for {waiting_for}; the console's last lines:\n{}\nQEMU command line: {}",
                last_lines(&console, 25),
                self.command_line
            );
        }
        Ok(())
    }
}

impl Drop for QemuGuard {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            // Never count on the guest powering itself off: the guest is throwaway, so it is killed.
            daemon.kill_group();
        }
    }
}
