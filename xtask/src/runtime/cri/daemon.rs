//! A private containerd on this machine, with its CRI plugin: its own directory (sockets,
//! root, state, runc root, CNI config, leases, logs), its own bridge and subnet, its pods under
//! a cgroup of the run's own, and `ctr events` beside it. At the end it is stopped and
//! everything it made is removed: shims, cgroups, network namespaces and mounts, portmap's
//! iptables chains, the bridge, the directory. (In the guest, containerd is started by the
//! guest's init instead, and dies with the guest.)

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::Signal;

use super::config::{self, Layout};
use crate::cancel::Cancel;
use crate::command::{self, Daemon, argv, last_lines};
use crate::machine::{self, Bridge};
use crate::names;
use crate::progress::Progress;
use crate::runtime::lifecycle::{self, Look, Owned, Private};

/// How long containerd may take to answer; 0.015 s on this machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct PrivateContainerd {
    containerd: Daemon,
    events: Option<Daemon>,
    dir: tempfile::TempDir,
    pub layout: Layout,
    bridge: Bridge,
    /// What the run's pods share with every CNI user of this machine, given back at the end.
    shared: machine::SharedCniState,
}

impl PrivateContainerd {
    pub fn start(cancel: Cancel, progress: &Progress) -> Result<Owned<Self>> {
        let started = Instant::now();
        let dir = names::temp_dir(super::KIND.temp_word())?;
        let layout = Layout { dir: dir.path().to_path_buf() };
        let bridge = Bridge::create(cancel)?;
        config::write_files(&layout, &bridge.name, &bridge.prefix)?;
        let shared = machine::SharedCniState::note(cancel, crate::runtime::cni_temp_words())?;
        let containerd_argv = argv(&["containerd", "--config", &layout.config_file().display().to_string()]);
        // Should the harness die, even by SIGKILL, containerd is told to stop; its shims and
        // pods stay, and `cargo xtask clean` removes them.
        let containerd = command::spawn_daemon(&containerd_argv, &layout.daemon_log(), Signal::SIGTERM)
            .context("cannot start containerd: install it with apt-get install containerd")?;
        let mut private = Owned::new(PrivateContainerd { containerd, events: None, dir, layout, bridge, shared });
        let socket = private.layout.socket();
        let log_file = private.layout.daemon_log();
        let log_tail = || log_tail(&log_file, 15);
        lifecycle::wait_until_ready(
            START_TIMEOUT,
            Duration::from_millis(10),
            cancel,
            || {
                if let Some(status) = private.containerd.exited()? {
                    bail!("containerd exited during start-up ({status}); the end of its log:\n{}", log_tail());
                }
                match socket.exists() {
                    true => Ok(Look::Ready(())),
                    false => Ok(Look::NotYet(String::new())),
                }
            },
            |_| anyhow!("containerd did not listen within {START_TIMEOUT:?}; the end of its log:\n{}", log_tail()),
        )?;
        let events_argv = argv(&["ctr", "--address", &socket.display().to_string(), "events"]);
        private.events = Some(
            command::spawn_daemon(&events_argv, &private.layout.events_log(), Signal::SIGKILL)
                .context("cannot start `ctr events` (ctr comes with containerd)")?,
        );
        progress.done("containerd ready", started);
        Ok(private)
    }
}

/// The last `lines` lines of containerd's log.
fn log_tail(log_file: &Path, lines: usize) -> String {
    last_lines(&std::fs::read_to_string(log_file).unwrap_or_default(), lines)
}

impl Private for PrivateContainerd {
    fn trouble(&self) -> Option<String> {
        if self.containerd.is_running() {
            return None;
        }
        Some(format!(
            "containerd died during the run; the end of its log:\n{}",
            log_tail(&self.layout.daemon_log(), 10)
        ))
    }

    /// Stops `ctr events` and containerd and removes what they left, the directory and logs too
    /// (the runtime has saved those), CNI's shared state and the bridge.
    fn give_back(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(mut events) = self.events.take() {
            events.kill_group();
        }
        problems.extend(machine::stop_daemon(&mut self.containerd, "containerd", STOP_TIMEOUT));
        // The pods are gone already (the runtime removed them through CRI), unless containerd
        // died under them.
        problems.extend(machine::remove_daemon_leftovers(self.dir));
        problems.extend(self.shared.give_back());
        problems.extend(self.bridge.delete());
        problems
    }
}
