//! A private dockerd on this machine: its own socket, data root, exec root and bridge, which
//! it stops and removes at the end, whatever happened. (In the guest, dockerd is started by
//! the guest's init instead, and dies with the guest.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};

use crate::command::{self, Daemon, Output, argv, last_lines};
use crate::host::local::LocalHost;
use crate::names::{self, TempPurpose};
use crate::progress::Progress;

/// How long dockerd may take to answer; well under a second on this machine.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(90);
const DAEMON_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A dockerd of our own: its socket, data root and exec root in a temp dir, its own bridge,
/// no iptables rules and no masquerading (nothing leaves the machine), DNS pointed at 127.0.0.1.
pub struct PrivateDaemon {
    daemon: Daemon,
    /// The containerd that dockerd started: another one later means the first died.
    first_containerd: Option<u32>,
    state_dir: Option<tempfile::TempDir>,
    bridge: Bridge,
    log_path: PathBuf,
}

impl PrivateDaemon {
    pub fn start(run_dir: &Path, progress: &Progress) -> Result<Self> {
        let started = Instant::now();
        let state_dir = names::temp_dir(TempPurpose::Docker)?;
        let bridge = Bridge::create()?;
        let log_path = run_dir.join("dockerd.log");
        let state = state_dir.path();
        let mut dockerd = argv(&[
            "dockerd",
            &format!("--host=unix://{}", state.join("docker.sock").display()),
            &format!("--data-root={}/data", state.display()),
            &format!("--exec-root={}/exec", state.display()),
            &format!("--pidfile={}/docker.pid", state.display()),
            &format!("--bridge={}", bridge.name),
            // The run's containers in a cgroup of its own, which goes at the end (and with it any
            // process a dying daemon left behind), instead of the /docker that every dockerd shares.
            &format!("--cgroup-parent=/{}", names::cgroup(std::process::id())),
        ]);
        dockerd.extend(argv(super::DAEMON_FLAGS));
        // If the harness dies (even by SIGKILL), the daemon is told to stop, and a stopping
        // dockerd stops its containers.
        let daemon = command::spawn_daemon(&dockerd, &log_path, Signal::SIGTERM)
            .context("cannot start dockerd: install it with apt-get install docker.io")?;
        let mut private =
            PrivateDaemon { daemon, first_containerd: None, state_dir: Some(state_dir), bridge, log_path };
        let socket = private.socket();
        loop {
            if let Some(status) = private.daemon.exited()? {
                let log = std::fs::read_to_string(&private.log_path).unwrap_or_default();
                bail!("dockerd exited during start-up ({status}); the end of its log:\n{}", last_lines(&log, 15));
            }
            if super::answers_ping(&LocalHost, &socket) {
                break;
            }
            crate::interrupt::check()?;
            if started.elapsed() > DAEMON_START_TIMEOUT {
                let log = std::fs::read_to_string(&private.log_path).unwrap_or_default();
                bail!(
                    "dockerd did not answer within {DAEMON_START_TIMEOUT:?}; the end of its log:\n{}",
                    last_lines(&log, 15)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        progress.done("dockerd ready", started);
        private.first_containerd = private.containerd();
        Ok(private)
    }

    /// Why it cannot answer, if it or the containerd it started died: the end of its log.
    pub fn trouble(&self) -> Option<String> {
        let what = if !self.daemon.is_running() {
            "dockerd died during the run"
        } else if self.containerd() != self.first_containerd {
            "containerd, which dockerd runs, died during the run (dockerd starts another)"
        } else {
            return None;
        };
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        Some(format!("{what}; the end of dockerd's log:\n{}", last_lines(&log, 10)))
    }

    /// The pid of the containerd that dockerd started, from its pid file.
    fn containerd(&self) -> Option<u32> {
        let state = self.state_dir.as_ref()?.path();
        let pid: u32 =
            std::fs::read_to_string(state.join("exec/containerd/containerd.pid")).ok()?.trim().parse().ok()?;
        pid1::proc::state(nix::unistd::Pid::from_raw(pid as i32)).filter(|state| *state != 'Z').map(|_| pid)
    }

    /// Its API socket.
    pub fn socket(&self) -> PathBuf {
        self.state_dir.as_ref().map(|dir| dir.path().join("docker.sock")).unwrap_or_default()
    }

    /// Stops the daemon and removes what it left; returns what could not be cleaned.
    pub fn stop(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(state_dir) = self.state_dir.take() else { return problems };
        let _ = kill(self.daemon.pid(), Signal::SIGTERM);
        if !self.daemon.exits_within(DAEMON_STOP_TIMEOUT).unwrap_or(false) {
            problems.push(format!("dockerd did not stop within {DAEMON_STOP_TIMEOUT:?}: killed it"));
            self.daemon.kill_group();
        }
        let state = state_dir.path().to_path_buf();
        // The containers' processes (gone already, unless dockerd died under them), then
        // containerd and its shims, which run under the exec root: none may outlive the run.
        problems.extend(remove_cgroups(&names::cgroup(std::process::id())));
        kill_processes_mentioning(&state);
        problems.extend(unmount_everything_under(&state));
        if let Err(error) = state_dir.close() {
            problems.push(format!("cannot remove {}: {error}", state.display()));
        }
        problems.extend(self.bridge.delete());
        problems
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        for problem in self.stop() {
            eprintln!("warning: {problem}");
        }
    }
}

/// The daemon's own bridge, `podlab<pid>`, with a /24 of 10.213.0.0/16 that no other
/// interface of this machine has (runs side by side each get their own).
struct Bridge {
    name: String,
    deleted: bool,
}

impl Bridge {
    fn create() -> Result<Self> {
        let pid = std::process::id();
        let name = names::bridge(pid);
        if Path::new("/sys/class/net").join(&name).exists() {
            bail!("the network bridge {name} already exists: a killed run left it; remove it with `cargo xtask clean`");
        }
        let ip = |words: &[&str]| command::run(&argv(words), Duration::from_secs(10)).and_then(Output::ok);
        // Choosing a subnet and taking it is one step for runs starting together.
        let _choosing = NetworkLock::take()?;
        let listing = ip(&["ip", "-4", "-oneline", "address", "show"])?.stdout_text();
        let third = free_third_octet(&listing, pid).context("every 10.213.N.0/24 is taken: remove what holds them")?;
        ip(&["ip", "link", "add", &name, "type", "bridge"])
            .context("cannot create a network bridge: the host runtime needs root (or run with DOCKER_HOST set)")?;
        let bridge = Bridge { name, deleted: false };
        ip(&["ip", "address", "add", &format!("10.213.{third}.1/24"), "dev", &bridge.name])?;
        ip(&["ip", "link", "set", &bridge.name, "up"])?;
        Ok(bridge)
    }

    fn delete(&mut self) -> Option<String> {
        if std::mem::replace(&mut self.deleted, true) {
            return None;
        }
        let delete = argv(&["ip", "link", "delete", &self.name]);
        match command::run_even_if_interrupted(&delete, Duration::from_secs(10)).and_then(Output::ok) {
            Ok(_) => None,
            Err(error) => Some(format!("cannot delete bridge {}: {error:#}", self.name)),
        }
    }
}

/// N of a 10.213.N.0/24 that no address in `ip -4 -oneline address show` is in, starting
/// from one the pid gives, so that runs rarely even look at the same one.
fn free_third_octet(listing: &str, pid: u32) -> Option<u32> {
    let taken: Vec<u32> = listing
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("10.213."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect();
    (0..250).map(|offset| (pid + offset) % 250).find(|third| !taken.contains(third))
}

/// Held while a run chooses and takes its subnet: an abstract unix socket of a fixed name,
/// which only one process can bind, which leaves nothing on disk, and which the kernel
/// releases when its holder dies.
struct NetworkLock {
    _socket: std::os::unix::net::UnixListener,
}

impl NetworkLock {
    fn take() -> Result<NetworkLock> {
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(names::NETWORK_LOCK)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match std::os::unix::net::UnixListener::bind_addr(&address) {
                Ok(socket) => return Ok(NetworkLock { _socket: socket }),
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                    crate::interrupt::check()?;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => return Err(error).context("another run held the network lock for 30 s"),
            }
        }
    }
}

/// Where a cgroup named at the top of a hierarchy can be: /sys/fs/cgroup itself (cgroup v2)
/// and each hierarchy mounted under it (v1, and v2's `unified` beside them).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mounted = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten().map(|entry| entry.path());
    std::iter::once(PathBuf::from("/sys/fs/cgroup")).chain(mounted).collect()
}

/// Kills every process in the cgroup `name` (directly under the root of each cgroup
/// hierarchy mounted under /sys/fs/cgroup) and its children, saying so, then removes those
/// cgroups, deepest first; returns what could not be done.
pub fn remove_cgroups(name: &str) -> Vec<String> {
    let tops: Vec<PathBuf> =
        cgroup_roots().into_iter().map(|root| root.join(name)).filter(|top| top.is_dir()).collect();
    let mut groups: Vec<PathBuf> = Vec::new();
    let mut unseen = tops.clone();
    while let Some(group) = unseen.pop() {
        unseen.extend(
            std::fs::read_dir(&group)
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.is_dir()),
        );
        groups.push(group);
    }
    // Every hierarchy lists the same processes: each is killed once.
    let pids: std::collections::BTreeSet<i32> = groups
        .iter()
        .flat_map(|group| {
            std::fs::read_to_string(group.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    let killed = pids.iter().filter(|pid| kill(nix::unistd::Pid::from_raw(**pid), Signal::SIGKILL).is_ok()).count();
    if killed > 0 {
        eprintln!("note: {killed} container processes outlived their daemon (cgroup {name}): killed them");
    }
    let mut problems = Vec::new();
    // Deepest first; a cgroup whose last process is still dying cannot go yet: try for a while.
    groups.sort_by_key(|group| std::cmp::Reverse(group.components().count()));
    let deadline = Instant::now() + Duration::from_secs(10);
    for group in groups {
        loop {
            match std::fs::remove_dir(&group) {
                Ok(()) => break,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(error) => {
                    problems.push(format!("cannot remove cgroup {}: {error}", group.display()));
                    break;
                }
            }
        }
    }
    problems
}

/// Kills every process whose command line mentions `path` (containerd and its shims, which
/// outlive a dockerd that died), saying so.
fn kill_processes_mentioning(path: &Path) {
    let needle = path.to_string_lossy().into_owned();
    for (pid, command_line) in pid1::proc::command_lines() {
        if command_line.contains(&needle) {
            eprintln!("note: process {pid} outlived dockerd: killed it ({command_line:.80})");
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

/// Unmounts (lazily) every mount point under `path`, deepest first; returns what failed.
pub fn unmount_everything_under(path: &Path) -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mount_points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .map(PathBuf::from)
        .filter(|mount_point| mount_point.starts_with(path))
        .collect();
    mount_points.sort_by_key(|mount_point| std::cmp::Reverse(mount_point.components().count()));
    mount_points
        .into_iter()
        .filter_map(|mount_point| {
            nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH)
                .err()
                .map(|error| format!("cannot unmount {}: {error}", mount_point.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subnet_no_interface_has() {
        let listing = "1: lo    inet 127.0.0.1/8 scope host lo\n\
                       5: podlab7    inet 10.213.7.1/24 scope global podlab7\n\
                       6: podlab8    inet 10.213.8.1/24 scope global podlab8\n";
        assert_eq!(free_third_octet(listing, 7), Some(9));
        assert_eq!(free_third_octet(listing, 257), Some(9));
        assert_eq!(free_third_octet(listing, 10), Some(10));
    }

    #[test]
    fn the_network_lock_is_held_by_one_at_a_time() {
        let first = NetworkLock::take().unwrap();
        let second = std::thread::spawn(NetworkLock::take);
        std::thread::sleep(Duration::from_millis(100));
        assert!(!second.is_finished(), "two held the network lock at once");
        drop(first);
        assert!(second.join().unwrap().is_ok());
    }
}
