//! QEMU: the guest's command line, and whether KVM really runs a vCPU here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use crate::cancel::Cancel;
use crate::command;

pub const QEMU: &str = "qemu-system-x86_64";
/// A healthy KVM boots the guest to its first line of init well within this.
const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acceleration {
    Kvm,
    Tcg,
}

impl Acceleration {
    pub fn name(self) -> &'static str {
        match self {
            Acceleration::Kvm => "kvm",
            Acceleration::Tcg => "tcg",
        }
    }
}

/// Everything the guest is booted from.
pub struct Guest<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    pub kernel_arguments: Vec<String>,
    pub console_log: &'a Path,
    pub agent_socket: Option<&'a Path>,
    /// A directory shared read-only a second time (mount tag `workspace`), mounted at its own
    /// path in the guest: the workspace, which may live under the guest's tmpfs /tmp.
    pub workspace: Option<&'a Path>,
    /// A second serial port (ttyS1) on a unix socket, for an interactive shell.
    pub shell_socket: Option<&'a Path>,
    pub memory_mb: u32,
    pub cpus: u32,
}

/// The QEMU arguments for `guest`: a q35 machine with no default devices and no network card,
/// the host's root read-only over virtio-9p, the serial console into a file, and the agent's
/// virtio-serial port on a unix socket. (A microvm boots a little sooner, but under TCG here
/// about one boot in six hung in its firmware before the kernel ran; q35 never did.)
pub fn arguments(guest: &Guest, acceleration: Acceleration) -> Vec<String> {
    let (accel, cpu) = match acceleration {
        Acceleration::Kvm => ("kvm", "host"),
        // Measured here: qemu64 boots to dockerd about 1.5 s sooner than `max` under TCG.
        // Without cmpxchg16b: three guests of about 80 on 2026-11-30 hung for good with a CPU
        // stuck in the slab allocator's lockless path (kmem_cache_alloc, whose per-CPU
        // cmpxchg16b retries until it succeeds), under multi-threaded TCG; without the flag
        // the kernel takes the same path with interrupts off instead.
        Acceleration::Tcg => ("tcg,thread=multi", "qemu64,-cx16"),
    };
    let mut arguments: Vec<String> = [
        "-M",
        "q35",
        "-accel",
        accel,
        "-cpu",
        cpu,
        "-m",
        &guest.memory_mb.to_string(),
        "-smp",
        &guest.cpus.to_string(),
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",
        "-kernel",
        &guest.kernel.to_string_lossy(),
        "-initrd",
        &guest.initramfs.to_string_lossy(),
        "-append",
        &guest.kernel_arguments.join(" "),
        "-serial",
        &format!("file:{}", guest.console_log.display()),
        "-fsdev",
        "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device",
        "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        // Entropy from the host (QEMU's getrandom): without it the guest's kernel had its random
        // number generator ready only at about 4.2 s of uptime under TCG, and dockerd waits
        // for it in its start-up (a library's init reads crypto/rand).
        "-device",
        "virtio-rng-pci",
    ]
    .iter()
    .map(|argument| argument.to_string())
    .collect();
    if let Some(socket) = guest.agent_socket {
        arguments.extend([
            "-device".to_string(),
            "virtio-serial-pci".to_string(),
            "-chardev".to_string(),
            format!("socket,id=agent,path={},server=on,wait=off", socket.display()),
            "-device".to_string(),
            format!("virtserialport,chardev=agent,name={}", super::protocol::PORT_NAME),
        ]);
    }
    if let Some(workspace) = guest.workspace {
        arguments.extend([
            "-fsdev".to_string(),
            format!("local,id=workspace,path={},security_model=none,readonly=on,multidevs=remap", workspace.display()),
            "-device".to_string(),
            "virtio-9p-pci,fsdev=workspace,mount_tag=workspace".to_string(),
        ]);
    }
    if let Some(socket) = guest.shell_socket {
        arguments.extend([
            "-chardev".to_string(),
            format!("socket,id=shell,path={},server=on,wait=off", socket.display()),
            "-serial".to_string(),
            "chardev:shell".to_string(),
        ]);
    }
    arguments
}

/// Whether KVM really runs a vCPU: `/dev/kvm` existing is not enough (on some hosts it
/// exists and its vCPUs hang, or QEMU aborts). Boots the guest with `podlab.probe`, which
/// stage 1 answers with a console line and an exit; `Err` carries why KVM is not usable.
/// The probe: one small vCPU that only has to reach stage 1 and print.
fn probe_guest<'paths>(kernel: &'paths Path, initramfs: &'paths Path, console_log: &'paths Path) -> Guest<'paths> {
    Guest {
        kernel,
        initramfs,
        kernel_arguments: vec!["console=ttyS0".into(), "panic=-1".into(), "quiet".into(), "podlab.probe".into()],
        console_log,
        agent_socket: None,
        workspace: None,
        shell_socket: None,
        memory_mb: 256,
        cpus: 1,
    }
}

pub fn kvm_works(kernel: &Path, initramfs: &Path, scratch: &Path) -> Result<(), String> {
    let device = Path::new("/dev/kvm");
    if std::fs::File::options().read(true).write(true).open(device).is_err() {
        return Err("/dev/kvm is missing or not accessible".to_string());
    }
    let console_log = scratch.join("kvm-probe-console.log");
    let qemu_log = scratch.join("kvm-probe-qemu.log");
    let guest = probe_guest(kernel, initramfs, &console_log);
    let started = Instant::now();
    let mut argv = vec![QEMU.to_string()];
    argv.extend(arguments(&guest, Acceleration::Kvm));
    let mut qemu = match command::spawn_daemon(&argv, &qemu_log, Signal::SIGKILL) {
        Ok(qemu) => qemu,
        Err(error) => return Err(format!("{error:#}")),
    };
    let verdict = loop {
        let console = std::fs::read_to_string(&console_log).unwrap_or_default();
        if console.contains("podlab: probe ok") {
            break Ok(());
        }
        match qemu.exited() {
            Ok(Some(status)) => {
                let said = std::fs::read_to_string(&qemu_log).unwrap_or_default();
                break Err(format!("QEMU with KVM ended ({status}) before the guest ran: {}", said.trim()));
            }
            Ok(None) if started.elapsed() > KVM_PROBE_TIMEOUT => {
                break Err(format!("a KVM vCPU made no progress in {KVM_PROBE_TIMEOUT:?} (it hangs on this host)"));
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    qemu.kill_group();
    verdict
}

/// The probe's verdict, remembered per host boot, QEMU and kernel: a hanging KVM costs its
/// full timeout, which no run should pay twice.
pub fn kvm_works_cached(
    kernel: &Path,
    initramfs: &Path,
    scratch: &Path,
    cache_dir: &Path,
    cancel: Cancel,
) -> Result<Result<(), String>> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let qemu_version = command::run(&command::argv(&[QEMU, "--version"]), Duration::from_secs(30), cancel)
        .map(|output| output.stdout)
        .unwrap_or_default();
    let key = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        // The probe's flags without its paths (they change every run): other flags, another probe.
        let placeholder = Path::new("-");
        let flags = arguments(&probe_guest(placeholder, placeholder, placeholder), Acceleration::Kvm);
        (boot_id.trim(), qemu_version, kernel, flags).hash(&mut hasher);
        hasher.finish()
    };
    let cache_file: PathBuf = cache_dir.join(format!("kvm-probe-{key:016x}.txt"));
    if let Ok(remembered) = std::fs::read_to_string(&cache_file) {
        return Ok(match remembered.strip_prefix("unusable: ") {
            Some(reason) => Err(reason.trim().to_string()),
            None => Ok(()),
        });
    }
    let verdict = kvm_works(kernel, initramfs, scratch);
    let text = match &verdict {
        Ok(()) => "usable\n".to_string(),
        Err(reason) => format!("unusable: {reason}\n"),
    };
    std::fs::create_dir_all(cache_dir)?;
    std::fs::write(&cache_file, text).with_context(|| format!("cannot write {}", cache_file.display()))?;
    Ok(verdict)
}
