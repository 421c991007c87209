//! A private dockerd on this machine: its own socket, data root, exec root and bridge, which
//! it stops and removes at the end, whatever happened. (In the guest, dockerd is started by
//! the guest's init instead, and dies with the guest.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::Signal;

use crate::cancel::Cancel;
use crate::command::{self, Daemon, argv, last_lines};
use crate::host::local::LocalHost;
use crate::machine::{self, Bridge};
use crate::names;
use crate::progress::Progress;
use crate::runtime::lifecycle::{self, Look, Owned, Private};

/// How long dockerd may take to answer; well under a second on this machine.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(90);
const DAEMON_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A dockerd of our own: its socket, data root and exec root in a temp dir, its own bridge,
/// no iptables rules and no masquerading (nothing leaves the machine), DNS pointed at 127.0.0.1.
pub struct PrivateDaemon {
    daemon: Daemon,
    /// The containerd that dockerd started: another one later means the first died.
    first_containerd: Option<u32>,
    state_dir: tempfile::TempDir,
    bridge: Bridge,
    log_path: PathBuf,
}

impl PrivateDaemon {
    pub fn start(run_dir: &Path, cancel: Cancel, progress: &Progress) -> Result<Owned<Self>> {
        let started = Instant::now();
        let state_dir = names::temp_dir(super::KIND.temp_word())?;
        let bridge = Bridge::create(cancel)?;
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
        let mut private = Owned::new(PrivateDaemon { daemon, first_containerd: None, state_dir, bridge, log_path });
        let socket = private.socket();
        let log_path = private.log_path.clone();
        let log_tail = || last_lines(&std::fs::read_to_string(&log_path).unwrap_or_default(), 15);
        lifecycle::wait_until_ready(
            DAEMON_START_TIMEOUT,
            Duration::from_millis(20),
            cancel,
            || {
                if let Some(status) = private.daemon.exited()? {
                    bail!("dockerd exited during start-up ({status}); the end of its log:\n{}", log_tail());
                }
                if super::answers_ping(&LocalHost, &socket, cancel) {
                    return Ok(Look::Ready(()));
                }
                Ok(Look::NotYet(String::new()))
            },
            |_| anyhow!("dockerd did not answer within {DAEMON_START_TIMEOUT:?}; the end of its log:\n{}", log_tail()),
        )?;
        progress.done("dockerd ready", started);
        private.first_containerd = private.containerd();
        Ok(private)
    }

    /// The pid of the containerd that dockerd started, from its pid file.
    fn containerd(&self) -> Option<u32> {
        let state = self.state_dir.path();
        let pid: u32 =
            std::fs::read_to_string(state.join("exec/containerd/containerd.pid")).ok()?.trim().parse().ok()?;
        pid1::proc::state(nix::unistd::Pid::from_raw(pid as i32)).filter(|state| *state != 'Z').map(|_| pid)
    }

    /// Its API socket.
    pub fn socket(&self) -> PathBuf {
        self.state_dir.path().join("docker.sock")
    }
}

impl Private for PrivateDaemon {
    /// Why it cannot answer, if it or the containerd it started died: the end of its log.
    fn trouble(&self) -> Option<String> {
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

    /// Stops the daemon and removes what it left: the containers, then containerd and its
    /// shims, which run under the exec root, then the bridge.
    fn give_back(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        problems.extend(machine::stop_daemon(&mut self.daemon, "dockerd", DAEMON_STOP_TIMEOUT));
        problems.extend(machine::remove_daemon_leftovers(self.state_dir));
        problems.extend(self.bridge.delete());
        problems
    }
}
