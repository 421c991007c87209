//! The `docker` engine: a Docker daemon on this host. It uses `DOCKER_HOST` when that
//! answers; otherwise it starts a private dockerd with its own socket, data root, exec
//! root and bridge, which it stops and removes at the end, whatever happened.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Engine;
use crate::command::{self, Output, argv, last_lines};
use crate::progress::Progress;

/// How long dockerd may take to answer; the brief measured 10 s inside a TCG guest, well under a second here.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(90);
const DAEMON_STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct DockerHostEngine {
    docker_host: String,
    private_daemon: Option<PrivateDaemon>,
    /// Label on every container this run creates, so that a shared daemon is cleaned by label.
    run_label: String,
    shut_down: bool,
}

impl DockerHostEngine {
    pub fn start(run_dir: &Path, run_id: &str, progress: &Progress) -> Result<Self> {
        let run_label = format!("podlab.run={run_id}");
        if let Ok(docker_host) = std::env::var("DOCKER_HOST") {
            if daemon_answers(&docker_host) {
                progress.say(&format!("using the Docker daemon at DOCKER_HOST={docker_host}"));
                return Ok(DockerHostEngine { docker_host, private_daemon: None, run_label, shut_down: false });
            }
            progress.say(&format!("DOCKER_HOST={docker_host} does not answer: starting a private dockerd instead"));
        }
        let daemon = PrivateDaemon::start(run_dir, progress)?;
        Ok(DockerHostEngine {
            docker_host: daemon.docker_host(),
            private_daemon: Some(daemon),
            run_label,
            shut_down: false,
        })
    }
}

impl Engine for DockerHostEngine {
    fn details(&self) -> String {
        match &self.private_daemon {
            Some(_) => "docker (a private dockerd on the host)".to_string(),
            None => format!("docker (DOCKER_HOST={})", self.docker_host),
        }
    }

    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output> {
        command::run(argv, timeout)
    }

    fn run_cleanup(&self, argv: &[String], timeout: Duration) -> Result<Output> {
        command::run_even_if_interrupted(argv, timeout)
    }

    fn docker_argv(&self) -> Vec<String> {
        argv(&["docker", "--host", &self.docker_host])
    }

    fn docker_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
        interruptible: bool,
    ) -> Result<Option<super::docker_api::Response>> {
        let Some(socket) = self.docker_host.strip_prefix("unix://") else { return Ok(None) };
        super::docker_api::request(Path::new(socket), method, path, body, timeout, interruptible).map(Some)
    }

    fn run_label(&self) -> &str {
        &self.run_label
    }

    /// The user's own shell on the host, with DOCKER_HOST pointing at this engine's daemon.
    fn interactive_shell(&self) -> Result<()> {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_string());
        let status = Command::new(&shell)
            .env("DOCKER_HOST", &self.docker_host)
            .status()
            .with_context(|| format!("cannot start {shell}"))?;
        if !status.success() {
            eprintln!("the shell ended with {status}");
        }
        Ok(())
    }

    fn shut_down(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.shut_down, true) {
            return Ok(());
        }
        let mut problems = Vec::new();
        // Containers go first, on any daemon: a shared daemon keeps running, ours stops next.
        if let Err(error) = remove_labelled_containers(&self.docker_argv(), &self.run_label) {
            problems.push(format!("{error:#}"));
        }
        if let Some(mut daemon) = self.private_daemon.take() {
            problems.extend(daemon.stop());
        }
        if !problems.is_empty() {
            bail!("cleanup was incomplete:\n{}", problems.join("\n"));
        }
        Ok(())
    }
}

impl Drop for DockerHostEngine {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            eprintln!("warning: {error:#}");
        }
    }
}

fn daemon_answers(docker_host: &str) -> bool {
    let version = argv(&["docker", "--host", docker_host, "version", "--format", "{{.Server.Version}}"]);
    command::run(&version, Duration::from_secs(10)).is_ok_and(|output| output.success())
}

fn remove_labelled_containers(docker: &[String], label: &str) -> Result<()> {
    let mut list = docker.to_vec();
    list.extend(argv(&["ps", "--all", "--quiet", "--filter", &format!("label={label}")]));
    let ids = command::run_even_if_interrupted(&list, Duration::from_secs(30))?.ok()?.stdout_text();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut remove = docker.to_vec();
    remove.extend(argv(&["rm", "--force", "--volumes"]));
    remove.extend(ids.iter().map(|id| id.to_string()));
    command::run_even_if_interrupted(&remove, Duration::from_secs(60))?.ok().map(drop)
}

/// A dockerd of our own: its socket, data root and exec root in a temp dir, its own bridge,
/// no iptables rules and no masquerading (nothing leaves the machine), DNS pointed at 127.0.0.1.
struct PrivateDaemon {
    child: Child,
    state_dir: Option<tempfile::TempDir>,
    bridge: Bridge,
    log_path: PathBuf,
}

impl PrivateDaemon {
    fn start(run_dir: &Path, progress: &Progress) -> Result<Self> {
        let started = Instant::now();
        // Under /tmp, not target/: the socket path must stay under 108 bytes.
        let state_dir =
            tempfile::Builder::new().prefix("podlab-docker-").tempdir().context("cannot make a temp dir")?;
        let bridge = Bridge::create()?;
        let log_path = run_dir.join("dockerd.log");
        let log = File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
        let state = state_dir.path();
        let mut dockerd = Command::new("dockerd");
        dockerd
            .arg(format!("--host=unix://{}/docker.sock", state.display()))
            .arg(format!("--data-root={}/data", state.display()))
            .arg(format!("--exec-root={}/exec", state.display()))
            .arg(format!("--pidfile={}/docker.pid", state.display()))
            .arg(format!("--bridge={}", bridge.name))
            .args(["--iptables=false", "--ip-masq=false", "--ip-forward=false", "--dns=127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C on the terminal must not stop it under our feet;
            // we stop it ourselves, after the containers.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe. If the harness dies (even by SIGKILL), the
        // daemon is told to stop, and a stopping dockerd stops its containers.
        unsafe {
            dockerd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from));
        }
        let child = dockerd.spawn().context("cannot start dockerd: install it with apt-get install docker.io")?;
        let mut daemon = PrivateDaemon { child, state_dir: Some(state_dir), bridge, log_path };
        let docker_host = daemon.docker_host();
        loop {
            if let Some(status) = daemon.child.try_wait()? {
                let log = std::fs::read_to_string(&daemon.log_path).unwrap_or_default();
                bail!("dockerd exited during start-up ({status}); the end of its log:\n{}", last_lines(&log, 15));
            }
            if daemon_answers(&docker_host) {
                break;
            }
            crate::interrupt::check()?;
            if started.elapsed() > DAEMON_START_TIMEOUT {
                let log = std::fs::read_to_string(&daemon.log_path).unwrap_or_default();
                bail!(
                    "dockerd did not answer within {DAEMON_START_TIMEOUT:?}; the end of its log:\n{}",
                    last_lines(&log, 15)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        progress.done("dockerd ready", started);
        Ok(daemon)
    }

    fn docker_host(&self) -> String {
        let state = self.state_dir.as_ref().map(|dir| dir.path().to_path_buf()).unwrap_or_default();
        format!("unix://{}/docker.sock", state.display())
    }

    /// Stops the daemon and removes what it left; returns what could not be cleaned.
    fn stop(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + DAEMON_STOP_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            problems.push(format!("dockerd did not stop within {DAEMON_STOP_TIMEOUT:?}: killed it"));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(state_dir) = self.state_dir.take() {
            let state = state_dir.path().to_path_buf();
            // containerd and its shims run under the exec root; none may outlive the run.
            problems.extend(kill_processes_mentioning(&state));
            problems.extend(unmount_everything_under(&state));
            if let Err(error) = state_dir.close() {
                problems.push(format!("cannot remove {}: {error}", state.display()));
            }
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

/// The daemon's own bridge, `podlab<N>`, with a /24 of its own.
struct Bridge {
    name: String,
    deleted: bool,
}

impl Bridge {
    fn create() -> Result<Self> {
        let number = std::process::id() % 10_000;
        let name = format!("podlab{number}");
        let subnet = format!("10.213.{}.1/24", number % 250);
        if Path::new("/sys/class/net").join(&name).exists() {
            bail!(
                "the network bridge {name} already exists: a killed run left it; remove it with `ip link delete {name}`"
            );
        }
        let ip = |words: &[&str]| command::run(&argv(words), Duration::from_secs(10)).and_then(Output::ok);
        ip(&["ip", "link", "add", &name, "type", "bridge"])
            .context("cannot create a network bridge: the docker engine needs root (or run with DOCKER_HOST set)")?;
        let bridge = Bridge { name, deleted: false };
        ip(&["ip", "address", "add", &subnet, "dev", &bridge.name])?;
        ip(&["ip", "link", "set", &bridge.name, "up"])?;
        Ok(bridge)
    }

    fn delete(&mut self) -> Option<String> {
        if self.deleted {
            return None;
        }
        self.deleted = true;
        let delete = argv(&["ip", "link", "delete", &self.name]);
        match command::run_even_if_interrupted(&delete, Duration::from_secs(10)).and_then(Output::ok) {
            Ok(_) => None,
            Err(error) => Some(format!("cannot delete bridge {}: {error:#}", self.name)),
        }
    }
}

/// Kills every process whose command line mentions `path`.
fn kill_processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let mut problems = Vec::new();
    for (pid, command_line) in pid1::proc::command_lines() {
        if command_line.contains(&needle) {
            problems.push(format!("process {pid} outlived dockerd: killed it"));
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
    problems
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
