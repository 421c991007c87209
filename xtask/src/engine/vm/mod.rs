//! The `vm` engine: a throwaway QEMU guest with Docker, booted in seconds without a disk
//! image. The host's kernel (and its /lib/modules), an initramfs made on the fly, the host's
//! root read-only over virtio-9p with a tmpfs overlay, tmpfs for /var/lib/docker, dockerd from
//! the host's own binaries, no network card. The harness runs commands in the guest through an
//! agent (this same binary, `xtask guest-agent`) on a virtio-serial port.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{Engine, docker_api};
use crate::command::{Output, argv, last_lines};
use crate::interrupt;
use crate::progress::Progress;

mod initramfs;
pub mod kernel;
pub mod protocol;
pub mod qemu;

use protocol::{Answer, GuestMessage, Job, Request};
use qemu::Acceleration;

/// Boot, to dockerd answering; generous, since TCG on a busy host is slow (about 7 s here).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Extra time the host waits for an answer beyond the command's own deadline in the guest.
const ANSWER_MARGIN: Duration = Duration::from_secs(30);
const GUEST_MEMORY_MB: u32 = 2048;

/// What the user asked of the VM.
#[derive(Clone)]
pub struct VmOptions {
    pub kernel: Option<PathBuf>,
    pub require_kvm: bool,
}

pub struct VmEngine {
    qemu: Mutex<Child>,
    qemu_command_line: String,
    channel: Channel,
    console_log: PathBuf,
    shell_socket: Option<PathBuf>,
    run_dir: PathBuf,
    scratch: Option<tempfile::TempDir>,
    acceleration: Acceleration,
    pub boot_times: BootTimes,
    kernel_release: String,
    run_label: String,
    shut_down: bool,
}

/// How long the guest took to get ready.
#[derive(Clone, Copy, Debug)]
pub struct BootTimes {
    /// From starting QEMU to dockerd answering, as the host sees it.
    pub start_to_ready: Duration,
    /// Guest uptime when the agent started, and when dockerd answered.
    pub agent_up_ms: u64,
    pub dockerd_ready_ms: u64,
}

/// The agent's port. Requests may overlap (the agent runs each in its own thread): every
/// request waits for the answer with its id, which the reader thread hands to it.
struct Channel {
    writer: Mutex<UnixStream>,
    next_id: AtomicU64,
    waiting: Arc<Mutex<HashMap<u64, mpsc::Sender<Answer>>>>,
}

impl VmEngine {
    /// Boots the guest; with `interactive`, it gets a second serial port for `interactive_shell`.
    pub fn start(
        options: &VmOptions,
        interactive: bool,
        run_dir: &Path,
        run_id: &str,
        progress: &Progress,
    ) -> Result<Self> {
        let workspace = crate::pause_build::workspace_root();
        // The guest sees the host's root, and the workspace again on its own share (so a checkout
        // under /tmp, which is a tmpfs in the guest, works): the agent must live in one of them.
        let agent = std::env::current_exe()?;
        if !agent.starts_with(workspace) && (agent.starts_with("/tmp") || agent.starts_with("/run")) {
            bail!(
                "{} is under /tmp or /run and outside the workspace, so the guest cannot run it: build into the workspace's target/",
                agent.display()
            );
        }
        let phase = Instant::now();
        let kernel = kernel::find(options.kernel.as_deref())?;
        let scratch = tempfile::Builder::new().prefix("podlab-vm-").tempdir().context("cannot make a temp dir")?;
        let initramfs_path = scratch.path().join("initramfs.cpio");
        initramfs::build(&kernel, &workspace.join("vm/init"), &initramfs_path)?;
        progress.done(
            &format!("initramfs for {} ({} KB)", kernel.release, std::fs::metadata(&initramfs_path)?.len() / 1024),
            phase,
        );

        let phase = Instant::now();
        let cache_dir = workspace.join("target/podlab/cache");
        let boot_image = match kernel::uncompressed(&kernel, &cache_dir)? {
            Some(vmlinux) => vmlinux,
            None => {
                progress.say("the kernel cannot be unpacked for a PVH boot: booting the bzImage (slower under TCG)");
                kernel.image.clone()
            }
        };
        progress.done("kernel ready", phase);
        let phase = Instant::now();
        let acceleration = match qemu::kvm_works_cached(&boot_image, &initramfs_path, scratch.path(), &cache_dir)? {
            Ok(()) => Acceleration::Kvm,
            Err(reason) if options.require_kvm => bail!("--require-kvm: KVM cannot be used here: {reason}"),
            Err(reason) => {
                progress.say(&format!("KVM is not usable ({reason}): the guest runs under TCG, much slower"));
                Acceleration::Tcg
            }
        };
        progress.done(&format!("acceleration: {}", acceleration.name()), phase);

        let pause = crate::pause_build::build_release()?;
        let phase = Instant::now();
        let console_log = run_dir.join("console.log");
        let agent_socket = scratch.path().join("agent.sock");
        let shell_socket = interactive.then(|| scratch.path().join("shell.sock"));
        let kernel_arguments = vec![
            "console=ttyS0".to_string(),
            "quiet".to_string(),
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
        let arguments = qemu::arguments(&guest, acceleration);
        let qemu_command_line = format!("{} {}", qemu::QEMU, arguments.join(" "));
        let qemu_log = std::fs::File::create(run_dir.join("qemu.log"))?;
        let mut command = Command::new(qemu::QEMU);
        command.args(&arguments).stdin(Stdio::null()).stdout(qemu_log.try_clone()?).stderr(qemu_log).process_group(0);
        // SAFETY: prctl is async-signal-safe. QEMU dies with the harness, even by SIGKILL.
        unsafe {
            command.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from));
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}: install it with apt-get install qemu-system-x86", qemu::QEMU))?;
        let mut qemu =
            QemuGuard { child: Some(child), console_log: console_log.clone(), command_line: qemu_command_line.clone() };

        let writer = qemu.connect(&agent_socket, phase + BOOT_TIMEOUT)?;
        let reader = writer.try_clone()?;
        let (sender, messages) = mpsc::channel();
        let waiting: Arc<Mutex<HashMap<u64, mpsc::Sender<Answer>>>> = Arc::default();
        let answers_to = Arc::clone(&waiting);
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                match serde_json::from_str::<GuestMessage>(&line) {
                    Ok(GuestMessage::Answer(answer)) => {
                        // Nobody waits for an answer to a request given up on (Ctrl-C).
                        let waiter =
                            answers_to.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&answer.id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(answer);
                        }
                    }
                    Ok(message) => {
                        let _ = sender.send(message);
                    }
                    Err(_) => eprintln!("warning: the guest agent said something unreadable: {line}"),
                }
            }
            // The port closed: every waiting request sees its sender dropped.
            answers_to.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
        });
        let channel = Channel { writer: Mutex::new(writer), next_id: AtomicU64::new(1), waiting };
        let boot_times =
            match qemu.receive(&messages, phase + BOOT_TIMEOUT, "the guest to boot and dockerd to answer")? {
                GuestMessage::Ready { agent_started_ms, dockerd_ready_ms } => {
                    progress.done(
                        &format!(
                            "guest booted under {}: agent up at {:.1} s, dockerd ready at {:.1} s of guest uptime",
                            acceleration.name(),
                            agent_started_ms as f64 / 1e3,
                            dockerd_ready_ms as f64 / 1e3
                        ),
                        phase,
                    );
                    BootTimes { start_to_ready: phase.elapsed(), agent_up_ms: agent_started_ms, dockerd_ready_ms }
                }
                GuestMessage::DockerdFailed { log_tail } => {
                    bail!("dockerd did not start in the guest; the end of its log:\n{log_tail}")
                }
                GuestMessage::Answer(_) => bail!("the guest agent answered before it was asked"),
            };
        Ok(VmEngine {
            qemu: Mutex::new(qemu.child.take().expect("the guard holds QEMU")),
            qemu_command_line,
            channel,
            console_log,
            shell_socket,
            run_dir: run_dir.to_path_buf(),
            scratch: Some(scratch),
            acceleration,
            boot_times,
            kernel_release: kernel.release.clone(),
            run_label: format!("podlab.run={run_id}"),
            shut_down: false,
        })
    }

    fn request(&self, argv: &[String], timeout: Duration, interruptible: bool) -> Result<Output> {
        let answer = self.ask(Job::Run(argv.to_vec()), timeout, interruptible)?;
        output_of(argv, answer)
    }

    /// Sends a job to the agent and waits for its answer (other jobs may be in flight).
    fn ask(&self, job: Job, timeout: Duration, interruptible: bool) -> Result<Answer> {
        // A dead guest is reported as such, not as a broken pipe.
        self.check_qemu_alive()?;
        let started = Instant::now();
        let id = self.channel.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer_sender, answer) = mpsc::channel();
        let waiting = &self.channel.waiting;
        waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id, answer_sender);
        // However this wait ends, its entry goes: a late answer is then dropped.
        let _forget = Forget { waiting, id };
        let mut line = serde_json::to_vec(&Request { id, job: job.clone(), timeout_ms: timeout.as_millis() as u64 })?;
        line.push(b'\n');
        let written = self.channel.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).write_all(&line);
        if let Err(error) = written {
            self.check_qemu_alive()?;
            return Err(error).context("cannot write to the guest agent");
        }
        let deadline = started + timeout + ANSWER_MARGIN;
        loop {
            if interruptible {
                interrupt::check()?;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                bail!("the guest agent did not answer `{}` within {:?}", job.describe(), timeout + ANSWER_MARGIN);
            }
            match answer.recv_timeout(remaining.min(Duration::from_millis(50))) {
                Ok(answer) => return Ok(answer),
                Err(RecvTimeoutError::Timeout) => self.check_qemu_alive()?,
                Err(RecvTimeoutError::Disconnected) => {
                    self.check_qemu_alive()?;
                    bail!("the guest agent closed its port");
                }
            }
        }
    }

    fn check_qemu_alive(&self) -> Result<()> {
        let mut qemu = self.qemu.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(status) = qemu.try_wait()? {
            bail!("{}", qemu_died_message(status, &self.console_log, &self.qemu_command_line));
        }
        Ok(())
    }

    /// Guest uptime (seconds) at each `podlab: <phase> at <uptime> s` line of the console.
    pub fn console_phases(&self) -> Vec<(String, f64)> {
        let console = std::fs::read_to_string(&self.console_log).unwrap_or_default();
        console
            .lines()
            .filter_map(|line| {
                let rest = &line[line.find("podlab: ")? + "podlab: ".len()..];
                let (phase, uptime) = rest.rsplit_once(" at ")?;
                Some((phase.to_string(), uptime.trim_end_matches(" s").parse().ok()?))
            })
            .collect()
    }

    /// Copies the guest's daemon logs (stage 2 writes them under /run/podlab) into the run's artifacts.
    fn save_daemon_logs(&self) -> Result<()> {
        for log in ["dockerd.log", "containerd.log"] {
            let path = format!("/run/podlab/{log}");
            let output = self.request(&argv(&["cat", &path]), Duration::from_secs(20), false)?.ok()?;
            std::fs::write(self.run_dir.join(log), &output.stdout)?;
        }
        Ok(())
    }
}

/// Takes a request's entry out of the waiting table when its wait ends.
struct Forget<'table> {
    waiting: &'table Mutex<HashMap<u64, mpsc::Sender<Answer>>>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&self.id);
    }
}

fn output_of(argv: &[String], answer: Answer) -> Result<Output> {
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

fn qemu_died_message(status: std::process::ExitStatus, console_log: &Path, command_line: &str) -> String {
    let console = std::fs::read_to_string(console_log).unwrap_or_default();
    format!(
        "QEMU exited ({status}); the console's last lines:\n{}\nQEMU command line: {command_line}",
        last_lines(&console, 25)
    )
}

/// QEMU during boot: killed if boot fails, handed over to the engine if it succeeds.
struct QemuGuard {
    child: Option<Child>,
    console_log: PathBuf,
    command_line: String,
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
        interrupt::check()?;
        let child = self.child.as_mut().expect("the guard holds QEMU");
        if let Some(status) = child.try_wait()? {
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
        if let Some(mut child) = self.child.take() {
            kill_qemu(&mut child);
        }
    }
}

fn kill_qemu(child: &mut Child) {
    // Never count on the guest powering itself off: the guest is throwaway, so it is killed.
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
}

impl Engine for VmEngine {
    fn details(&self) -> String {
        format!("vm ({}, kernel {})", self.acceleration.name(), self.kernel_release)
    }

    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output> {
        self.request(argv, timeout, true)
    }

    fn run_cleanup(&self, argv: &[String], timeout: Duration) -> Result<Output> {
        self.request(argv, timeout, false)
    }

    fn docker_argv(&self) -> Vec<String> {
        argv(&["docker", "--host", "unix:///run/docker.sock"])
    }

    fn docker_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
        interruptible: bool,
    ) -> Result<Option<docker_api::Response>> {
        let job = Job::Docker { method: method.to_string(), path: path.to_string(), body: body.map(str::to_string) };
        let answer = self.ask(job, timeout, interruptible)?;
        if let Some(error) = answer.error {
            bail!("in the guest, {method} {path} on dockerd's API: {error}");
        }
        let status = answer.http_status.context("the guest agent gave no HTTP status")?;
        Ok(Some(docker_api::Response { status, body: answer.stdout }))
    }

    fn run_label(&self) -> &str {
        &self.run_label
    }

    /// A shell in the guest on its second serial port (ttyS1), relayed to this terminal in raw
    /// mode, with DOCKER_HOST set; returns when the shell exits.
    fn interactive_shell(&self) -> Result<()> {
        let socket = self.shell_socket.as_ref().context("the guest was booted without a shell port")?;
        let stream = UnixStream::connect(socket).context("cannot reach the guest's shell port")?;
        let (rows, columns) = crate::terminal::size().unwrap_or((24, 80));
        let raw = crate::terminal::RawMode::enable();
        // The guest's tty drops what arrives before the shell opens it, so keys (or a piped
        // script) are held back until the shell has said something: its first prompt.
        let (shell_spoke, wait_for_shell) = mpsc::channel::<()>();
        let mut from_guest = stream.try_clone()?;
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            let mut stdout = std::io::stdout();
            let mut shell_spoke = Some(shell_spoke);
            while let Ok(count @ 1..) = from_guest.read(&mut buffer) {
                if let Some(spoke) = shell_spoke.take() {
                    let _ = spoke.send(());
                }
                if stdout.write_all(&buffer[..count]).and_then(|()| stdout.flush()).is_err() {
                    break;
                }
            }
        });
        let mut to_guest = stream.try_clone()?;
        std::thread::spawn(move || {
            if wait_for_shell.recv().is_err() {
                return;
            }
            if std::io::copy(&mut std::io::stdin(), &mut to_guest).is_ok() {
                // End of input (a piped script ran out): Ctrl-D, so the shell exits as a
                // terminal's would. On a terminal in raw mode, Ctrl-D is an ordinary key.
                let _ = to_guest.write_all(b"\x04");
            }
        });
        let term = std::env::var("TERM").unwrap_or_else(|_| "vt100".to_string());
        let script = format!(
            "stty rows {rows} cols {columns} < /dev/ttyS1; export TERM={term} DOCKER_HOST=unix:///run/docker.sock; \
             cd /root; exec setsid --ctty --wait sh -i < /dev/ttyS1 > /dev/ttyS1 2>&1"
        );
        // Interruptible: SIGTERM or SIGHUP ends the session (a Ctrl-C typed in raw mode is a
        // key for the guest, not a signal for the harness).
        let ended = self.request(&argv(&["sh", "-c", &script]), Duration::from_secs(24 * 3600), true);
        drop(raw);
        ended.map(drop)
    }

    fn shut_down(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.shut_down, true) {
            return Ok(());
        }
        let saved = self.save_daemon_logs();
        let mut qemu = self.qemu.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        kill_qemu(&mut qemu);
        drop(qemu);
        let removed = self.scratch.take().map(tempfile::TempDir::close).transpose();
        removed.context("cannot remove the VM's temp dir")?;
        saved.context("cannot save the daemons' logs from the guest")
    }
}

impl Drop for VmEngine {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            eprintln!("warning: {error:#}");
        }
    }
}
