//! The `docker` runtime: the pod as the seed's `docker run --net/--ipc/--pid=container:`
//! commands make it. Its daemon is, by host: in the guest, the dockerd that the guest's init
//! starts at boot (`guest_services`); on this machine, `DOCKER_HOST` when it answers, else a
//! private dockerd (`daemon.rs`). Calls go to dockerd's API on its socket where the host
//! reaches one (create and start, inspect, logs, exec, rm: each docker CLI start costs 0.16 to
//! 0.3 s under emulation), else to the docker CLI (a `DOCKER_HOST` that is not a unix socket);
//! image imports, stop, restart, kill and save use the CLI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use super::{ContainerState, Logs, RunIdentity, Runtime, RuntimeKind};
use crate::cancel::Cancel;
use crate::command::{Output, argv, last_lines};
use crate::host::{Host, Placement};
use crate::images::ImageTar;
use crate::names;
use crate::plan::{ContainerPlan, PodPlan};
use crate::progress::Progress;
use crate::scenario::NamespaceKind;
use crate::side_by_side;
use crate::unix_http::{Request, Response};

mod api;
mod container;
mod daemon;

use api::{Inspected, InspectedImage, path_segment};
use container::Run;
use daemon::PrivateDaemon;

use super::lifecycle::{self, GuestContainers, GuestDaemon, Lifecycle, Look, OwnsDaemon, Place, SavedLogs, Specifics};

/// Deadline of a call that should answer at once (inspect, logs, kill).
const QUICK: Duration = Duration::from_secs(30);
/// Deadline of one container's create and start: the image is already there.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// An exec is first looked at after this long (most end sooner), then this often; once it
/// has ended, dockerd has this long to close its stream before the harness looks whether its
/// container still runs (see `watch_exec`). A busy guest under TCG, four execs at once (the exec
/// probes of long-lived), took over 3 s, and on a slower day over 5 s.
const EXEC_FIRST_LOOK: Duration = Duration::from_secs(1);
const EXEC_LOOK_EVERY: Duration = Duration::from_millis(500);
const EXEC_STREAM_GRACE: Duration = Duration::from_secs(5);
/// How long dockerd may take to answer in the guest (about 4 s after the agent, under TCG).
const GUEST_START_TIMEOUT: Duration = Duration::from_secs(120);

/// dockerd's flags wherever it runs: no iptables rules, no masquerading, no forwarding, and no
/// DNS server but 127.0.0.1, so nothing can leave the machine (the guest has no network card anyway).
const DAEMON_FLAGS: &[&str] = &["--iptables=false", "--ip-masq=false", "--ip-forward=false", "--dns=127.0.0.1"];

/// dockerd's socket, its pid file (dockerd's default) and the daemons' logs in the guest.
const GUEST_SOCKET: &str = "/run/docker.sock";
const GUEST_PIDFILE: &str = "/run/docker.pid";
const GUEST_LOGS: &[&str] = &["/run/podlab/dockerd.log", "/run/podlab/containerd.log"];

/// The docker runtime in the registry (`runtime::RUNTIMES`).
pub static KIND: RuntimeKind = RuntimeKind {
    name: "docker",
    about: "Docker: the infra container, then each app with --net/--ipc/--pid=container:<infra>",
    facts: "docker",
    temp_word: "docker",
    uses_cni: false,
    cannot_make,
    guest_services,
    guest_programs: &["dockerd", "containerd", "containerd-shim-runc-v2", "runc"],
    needs: &[
        ("docker", "docker.io", "the docker CLI talks to the daemon"),
        ("dockerd", "docker.io", "the docker runtime starts a private daemon on this host"),
        ("containerd", "containerd", "dockerd runs containers through it"),
        ("runc", "runc", "containerd starts the docker runtime's containers with it"),
    ],
    start: |host, run, progress| Ok(Box::new(Docker::start(host, run, progress)?)),
};

/// Docker copies the infra container's hostname: it cannot share a UTS namespace.
fn cannot_make(pod: &PodPlan) -> Option<String> {
    let app = pod.apps.iter().find(|app| app.joins(NamespaceKind::Uts))?;
    Some(format!(
        "{} shares `uts`: Docker copies the infra container's hostname, it cannot share its UTS namespace",
        app.name
    ))
}

/// What the guest's init runs for this runtime: containerd and dockerd, in the background.
/// containerd is started here rather than by dockerd, so that the two (large, read over 9p,
/// started under emulation) load side by side on the guest's two CPUs. Docker's overlay2
/// cannot stack on the guest's overlay root: /var/lib/docker is a tmpfs of its own (vm/init).
pub fn guest_services() -> String {
    format!(
        r#"# the docker runtime's daemons, written by the harness for this run (xtask/src/runtime/docker/mod.rs)
busybox mkdir -p /run/podlab/containerd
cat > /run/podlab/containerd.toml <<EOF
version = 2
root = "/var/lib/docker/containerd"
state = "/run/podlab/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "/run/podlab/containerd/containerd.sock"
EOF
containerd --config /run/podlab/containerd.toml > {containerd_log} 2>&1 &
dockerd --host=unix://{GUEST_SOCKET} --containerd=/run/podlab/containerd/containerd.sock {flags} --storage-driver=overlay2 > {dockerd_log} 2>&1 &
"#,
        flags = DAEMON_FLAGS.join(" "),
        dockerd_log = GUEST_LOGS[0],
        containerd_log = GUEST_LOGS[1],
    )
}

pub struct Docker {
    /// Which dockerd the runtime talks to: the guest's, the user's `DOCKER_HOST` (the run's
    /// containers are removed by label, its images stay), or our own on this machine.
    daemon: Lifecycle<PrivateDaemon>,
    /// Before every container name: on a shared daemon, `podlab-<pid>-`, so that runs side by
    /// side do not take each other's names; on a daemon of the run's own, nothing (a learner
    /// in `cargo xtask pod` types `docker exec nginx`).
    name_prefix: String,
    run_id: String,
    /// The run's: what ends its calls early (but for cleanup, handed `Cancel::NEVER`).
    cancel: Cancel,
    // Last, so that it drops after the daemon: the guest outlives what runs in it.
    host: Box<dyn Host>,
}

impl Docker {
    pub fn start(host: Box<dyn Host>, run: &RunIdentity, progress: &Progress) -> Result<Docker> {
        let started = Instant::now();
        let place = match host.placement() {
            Placement::Vm => {
                wait_in_guest(host.as_ref(), run.cancel)?;
                progress.done(&lifecycle::ready_line(host.as_ref(), "dockerd"), started);
                Place::InGuest
            }
            Placement::Host => match std::env::var("DOCKER_HOST") {
                Ok(docker_host) if cli_answers(&docker_host, run.cancel) => {
                    progress.say(&format!("using the Docker daemon at DOCKER_HOST={docker_host}"));
                    Place::Shared { address: docker_host }
                }
                Ok(docker_host) => {
                    progress.say(&format!("DOCKER_HOST={docker_host} does not answer: starting a private dockerd"));
                    Place::Private(PrivateDaemon::start(run.run_dir, run.cancel, progress)?)
                }
                Err(_) => Place::Private(PrivateDaemon::start(run.run_dir, run.cancel, progress)?),
            },
        };
        let name_prefix = match place {
            Place::Shared { .. } => names::container_prefix(std::process::id()),
            _ => String::new(),
        };
        // In the guest, the init started both dockerd and containerd: both must still run.
        let alive = argv(&["sh", "-c", &format!("kill -0 $(cat {GUEST_PIDFILE}) && pidof containerd")]);
        // A private dockerd writes its log into the run's directory itself.
        let files = match place {
            Place::InGuest => {
                GUEST_LOGS.iter().map(|log| (PathBuf::from(log), log.rsplit('/').next().unwrap_or(log))).collect()
            }
            _ => Vec::new(),
        };
        let specifics = Specifics {
            guest_daemon: Some(GuestDaemon {
                alive,
                log: PathBuf::from(GUEST_LOGS[0]),
                died: "dockerd or containerd died in the guest; the end of dockerd's log",
            }),
            guest_containers: GuestContainers::GoWithTheGuest,
            logs: SavedLogs { what: "the daemons' logs from the guest", files },
        };
        Ok(Docker {
            daemon: Lifecycle::new(place, specifics, run),
            name_prefix,
            run_id: run.run_id.to_string(),
            cancel: run.cancel,
            host,
        })
    }

    /// The daemon's name of a container of the pod.
    fn name(&self, container: &str) -> String {
        format!("{}{container}", self.name_prefix)
    }

    /// The daemon's API socket, where the host reaches one.
    fn socket(&self) -> Option<PathBuf> {
        match self.daemon.place() {
            Place::InGuest => Some(PathBuf::from(GUEST_SOCKET)),
            Place::Shared { address } => address.strip_prefix("unix://").map(PathBuf::from),
            Place::Private(private) => Some(private.socket()),
        }
    }

    /// What `DOCKER_HOST` (or `docker --host`) says to reach the daemon.
    fn docker_host(&self) -> String {
        match self.daemon.place() {
            Place::Shared { address } => address.clone(),
            _ => format!("unix://{}", self.socket().unwrap_or_default().display()),
        }
    }

    /// `docker --host ...`: the CLI, reaching the daemon.
    fn cli(&self, arguments: &[&str]) -> Vec<String> {
        let mut argv = argv(&["docker", "--host", &self.docker_host()]);
        argv.extend(arguments.iter().map(|argument| argument.to_string()));
        argv
    }

    /// Runs the docker CLI and fails unless it exits 0.
    fn cli_ok(&self, arguments: &[&str], timeout: Duration) -> Result<Output> {
        self.host.run(&self.cli(arguments), timeout, self.cancel)?.ok()
    }

    /// An API call, or None where the host reaches no socket (then the CLI does the job).
    fn api(&self, method: &str, path: &str, body: Option<String>, timeout: Duration) -> Result<Option<Response>> {
        let Some(socket) = self.socket() else { return Ok(None) };
        self.host.request(&Request::new(socket, method, path, body), timeout, self.cancel).map(Some)
    }

    fn inspect(&self, containers: &[String]) -> Result<BTreeMap<String, Inspected>> {
        if self.socket().is_some() {
            let answers = side_by_side::each(containers, |name| {
                let path = format!("/containers/{}/json", path_segment(&self.name(name))?);
                let response = self.api("GET", &path, None, QUICK)?.context("the API went away")?;
                if response.status != 200 {
                    bail!("cannot inspect container {name}: {}", api::error_of(&response));
                }
                let inspected = serde_json::from_slice(&response.body).context("dockerd's inspect answer")?;
                Ok((name.clone(), inspected))
            })?;
            return Ok(answers.into_iter().collect());
        }
        // One CLI call for them all: each docker CLI start is costly under emulation.
        let names: Vec<String> = containers.iter().map(|container| self.name(container)).collect();
        let mut arguments = vec!["inspect"];
        arguments.extend(names.iter().map(String::as_str));
        let output = self.cli_ok(&arguments, QUICK)?;
        let inspected: Vec<Inspected> = serde_json::from_slice(&output.stdout).context("docker inspect's answer")?;
        if inspected.len() != containers.len() {
            bail!("docker inspect described {} containers for {}", inspected.len(), containers.len());
        }
        Ok(containers.iter().cloned().zip(inspected).collect())
    }

    /// Creates and starts `container` (the pod's name for it) as `run` says.
    fn create_and_start(&self, container: &str, run: &Run) -> Result<()> {
        let path = format!("/containers/create?name={}", path_segment(&run.name)?);
        let Some(created) = self.api("POST", &path, Some(run.api_body().to_string()), START_TIMEOUT)? else {
            let arguments = run.cli_arguments();
            let words: Vec<&str> = arguments.iter().map(String::as_str).collect();
            self.cli_ok(&words, START_TIMEOUT)?;
            return super::wait_for_program(self, container, START_TIMEOUT, self.cancel);
        };
        if created.status != 201 {
            bail!("dockerd: {}", api::error_of(&created));
        }
        let path = format!("/containers/{}/start", path_segment(&run.name)?);
        let started = self.api("POST", &path, None, START_TIMEOUT)?.context("the API went away")?;
        if started.status != 204 {
            bail!("dockerd: {}", api::error_of(&started));
        }
        super::wait_for_program(self, container, START_TIMEOUT, self.cancel)
    }

    fn read_logs(&self, container: &str, timestamps: bool) -> Result<Logs> {
        let name = self.name(container);
        let path = format!("/containers/{}/logs?stdout=1&stderr=1&timestamps={timestamps}", path_segment(&name)?);
        if let Some(response) = self.api("GET", &path, None, QUICK)? {
            if response.status != 200 {
                bail!("cannot read the logs of {container}: {}", api::error_of(&response));
            }
            let (stdout, stderr) = api::split_log_stream(&response.body)
                .with_context(|| format!("the logs of {container} (a container with a TTY?)"))?;
            return Ok(Logs { stdout, stderr: String::from_utf8_lossy(&stderr).into_owned() });
        }
        let mut arguments = vec!["logs"];
        if timestamps {
            arguments.push("--timestamps");
        }
        arguments.push(&name);
        let output = self.cli_ok(&arguments, QUICK)?;
        Ok(Logs { stdout: output.stdout, stderr: output.stderr })
    }

    /// Starts a created exec attached and reads its output until dockerd closes the stream, or
    /// until a moment after the exec ended if it does not: dockerd leaves the stream open when
    /// the exec's container exits under it (its log says `exit event ... no such container`),
    /// and a scenario would otherwise wait for its deadline. An exec that runs for more than a
    /// second is looked at twice a second: dockerd's view of it, and its process on the host.
    fn read_exec_stream(&self, container: &str, id: &str, timeout: Duration) -> Result<Response> {
        let socket = self.socket().context("the API went away")?;
        let start = Request::new(
            socket,
            "POST",
            format!("/exec/{}/start", path_segment(id)?),
            Some(r#"{"Detach":false,"Tty":false}"#.to_string()),
        );
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let (sender, answer) = mpsc::channel();
            let (start, stop) = (&start, &stop);
            scope.spawn(move || sender.send(self.host.request_until(start, timeout, self.cancel, stop)));
            let watched = self.watch_exec(container, id, &answer, stop);
            // However the watch ended, the reader stops too: the scope waits for it.
            stop.store(true, Ordering::SeqCst);
            watched
        })
    }

    /// Waits for the exec's stream to end. Once the exec has ended and dockerd has had
    /// `EXEC_STREAM_GRACE` to close the stream, the harness stops reading only if the container
    /// has exited under it (dockerd then never closes it); while the container runs, dockerd is
    /// only slow (a busy guest under TCG took over 5 s), and the wait goes on to the exec's deadline.
    fn watch_exec(
        &self,
        container: &str,
        id: &str,
        answer: &mpsc::Receiver<Result<Response>>,
        stop: &AtomicBool,
    ) -> Result<Response> {
        let mut wait = EXEC_FIRST_LOOK;
        let mut process: Option<(u32, String)> = None;
        let mut ended_at: Option<Instant> = None;
        loop {
            match answer.recv_timeout(wait) {
                Ok(response) => return response,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the exec's reader went away"),
            }
            wait = EXEC_LOOK_EVERY;
            if ended_at.is_none() && self.exec_has_ended(id, &mut process)? {
                ended_at = Some(Instant::now());
            }
            if ended_at.is_some_and(|at| at.elapsed() >= EXEC_STREAM_GRACE) && !self.is_running(container)? {
                stop.store(true, Ordering::SeqCst);
            }
        }
    }

    fn is_running(&self, container: &str) -> Result<bool> {
        let states = self.states(&[container.to_string()])?;
        Ok(states.get(container).is_some_and(|state| state.running))
    }

    /// Whether dockerd says the exec has ended, or its process (as first seen: pid and start
    /// time, so that a reused pid does not count) is gone from the host.
    fn exec_has_ended(&self, id: &str, process: &mut Option<(u32, String)>) -> Result<bool> {
        let Some(inspected) = self.inspect_exec(id)? else { return Ok(true) };
        if !inspected.running {
            return Ok(true);
        }
        if inspected.pid == 0 {
            return Ok(false);
        }
        let stat = self.host.run(&argv(&["cat", &format!("/proc/{}/stat", inspected.pid)]), QUICK, self.cancel)?;
        let text = stat.stdout_text();
        let started = pid1::proc::stat_field(&text, 22).map(str::to_string);
        let Some(started) = started.filter(|_| stat.success()) else { return Ok(true) };
        match process {
            Some((pid, first_start)) if *pid == inspected.pid => Ok(*first_start != started),
            _ => {
                *process = Some((inspected.pid, started));
                Ok(false)
            }
        }
    }

    /// dockerd's view of an exec; None once dockerd forgot it (it does when its container exits).
    fn inspect_exec(&self, id: &str) -> Result<Option<api::InspectedExec>> {
        let path = format!("/exec/{}/json", path_segment(id)?);
        let response = self.api("GET", &path, None, QUICK)?.context("the API went away")?;
        match response.status {
            200 => serde_json::from_slice(&response.body).context("dockerd's exec inspect answer").map(Some),
            404 => Ok(None),
            _ => bail!("cannot inspect exec {id}: {}", api::error_of(&response)),
        }
    }
}

impl Runtime for Docker {
    fn kind(&self) -> &'static RuntimeKind {
        &KIND
    }

    fn details(&self) -> String {
        match self.daemon.place() {
            Place::InGuest => "docker (dockerd in the guest)".to_string(),
            Place::Shared { address } => format!("docker (DOCKER_HOST={address})"),
            Place::Private(_) => "docker (a private dockerd)".to_string(),
        }
    }

    fn host(&self) -> &dyn Host {
        self.host.as_ref()
    }

    fn import(&self, image: &ImageTar) -> Result<()> {
        let mut arguments = vec!["import".to_string()];
        arguments.extend(image.changes.iter().map(|change| format!("--change={change}")));
        arguments.push(image.tar.display().to_string());
        arguments.push(image.name.to_string());
        let words: Vec<&str> = arguments.iter().map(String::as_str).collect();
        self.cli_ok(&words, Duration::from_secs(300)).with_context(|| format!("cannot import image {}", image.name))?;
        Ok(())
    }

    fn start_infra(&self, pod: &PodPlan) -> Result<()> {
        let run = Run::infra(pod, &self.name_prefix, &self.run_id);
        self.create_and_start(&pod.infra.name, &run).with_context(|| format!("cannot start container {}", run.name))
    }

    fn start_app(&self, pod: &PodPlan, app: &ContainerPlan) -> Result<()> {
        let run = Run::app(pod, app, &self.name_prefix, &self.run_id);
        self.create_and_start(&app.name, &run).with_context(|| format!("cannot start container {}", run.name))
    }

    /// `docker rm --force --volumes`: through the API, side by side, where the host reaches
    /// the socket (a forced removal of the infra container while apps still use its namespaces works).
    fn remove(&self, containers: &[String], timeout: Duration) -> Result<()> {
        if let Some(socket) = self.socket() {
            side_by_side::each(containers, |name| {
                let path = format!("/containers/{}?force=1&v=1", path_segment(&self.name(name))?);
                let response =
                    self.host.request(&Request::new(&socket, "DELETE", path, None), timeout, Cancel::NEVER)?;
                match response.status {
                    204 | 404 => Ok(()),
                    _ => bail!("cannot remove container {name}: {}", api::error_of(&response)),
                }
            })?;
            return Ok(());
        }
        let names: Vec<String> = containers.iter().map(|container| self.name(container)).collect();
        let mut arguments = vec!["rm", "--force", "--volumes"];
        arguments.extend(names.iter().map(String::as_str));
        let output = self.host.run(&self.cli(&arguments), timeout, Cancel::NEVER)?;
        // `No such container` is the normal answer when the pod is already gone.
        if !output.success() && !output.stderr.lines().all(|line| line.contains("No such container")) {
            bail!("`docker rm` failed: {}", output.stderr.trim());
        }
        Ok(())
    }

    /// Through the API: create the exec, start it attached, read its exit code.
    fn exec(&self, container: &str, argv: &[String], timeout: Duration) -> Result<Output> {
        let name = self.name(container);
        let mut cli_arguments = vec!["exec", name.as_str()];
        cli_arguments.extend(argv.iter().map(String::as_str));
        let cli_argv = self.cli(&cli_arguments);
        let started = Instant::now();
        let refused = |message: String| Output {
            argv: cli_argv.clone(),
            stdout: Vec::new(),
            stderr: format!("Error response from daemon: {message}\n"),
            exit_code: Some(1),
            signal: None,
            duration: started.elapsed(),
        };
        let create = serde_json::json!({ "AttachStdout": true, "AttachStderr": true, "Cmd": argv }).to_string();
        let path = format!("/containers/{}/exec", path_segment(&name)?);
        let Some(created) = self.api("POST", &path, Some(create), QUICK)? else {
            return self.host.run(&cli_argv, timeout, self.cancel);
        };
        if created.status != 201 {
            return Ok(refused(api::error_of(&created)));
        }
        let created: serde_json::Value = serde_json::from_slice(&created.body).context("dockerd's exec answer")?;
        let id = created.get("Id").and_then(|id| id.as_str()).context("dockerd gave the exec no id")?;
        let streams = self.read_exec_stream(container, id, timeout)?;
        if streams.status != 200 {
            return Ok(refused(api::error_of(&streams)));
        }
        let (stdout, stderr) = api::split_log_stream(&streams.body).context("the exec's output")?;
        let mut stderr = String::from_utf8_lossy(&stderr).into_owned();
        let exit_code = match self.inspect_exec(id)? {
            Some(api::InspectedExec { running: false, exit_code: Some(code), .. }) => Some(code as i32),
            _ if streams.cut_short => {
                stderr.push_str(
                    "podlab: the exec ended but dockerd gave no exit code and did not close its output \
                     (its container exited under it)\n",
                );
                None
            }
            _ => {
                stderr.push_str("podlab: dockerd gave no exit code for this exec (its container exited under it)\n");
                None
            }
        };
        Ok(Output { argv: cli_argv, stdout, stderr, exit_code, signal: None, duration: started.elapsed() })
    }

    fn states(&self, containers: &[String]) -> Result<BTreeMap<String, ContainerState>> {
        Ok(self.inspect(containers)?.into_iter().map(|(name, inspected)| (name, inspected.state())).collect())
    }

    fn pod_address(&self, infra: &str) -> Result<String> {
        let inspected = self.inspect(&[infra.to_string()])?;
        let address = inspected.get(infra).map(|inspected| inspected.network_settings.ip_address.clone());
        match address {
            Some(address) if !address.is_empty() => Ok(address),
            _ => bail!("the infra container {infra} has no IP address on Docker's bridge"),
        }
    }

    fn signal(&self, container: &str, signal: Signal) -> Result<()> {
        self.cli_ok(&["kill", "--signal", signal.as_str(), &self.name(container)], QUICK).map(drop)
    }

    fn stop(&self, container: &str, grace: Duration) -> Result<()> {
        let grace_seconds = grace.as_secs().to_string();
        self.cli_ok(&["stop", "--time", &grace_seconds, &self.name(container)], grace + Duration::from_secs(60))
            .map(drop)
    }

    fn restart(&self, container: &str) -> Result<()> {
        self.cli_ok(&["restart", "--time", "10", &self.name(container)], Duration::from_secs(90)).map(drop)
    }

    fn logs(&self, container: &str) -> Result<Logs> {
        self.read_logs(container, false)
    }

    fn stamped_logs(&self, container: &str) -> Result<Logs> {
        self.read_logs(container, true)
    }

    fn image_user(&self, image: &str) -> Result<String> {
        let path = format!("/images/{}/json", path_segment(image)?);
        let inspected: InspectedImage = match self.api("GET", &path, None, QUICK)? {
            Some(response) if response.status == 200 => {
                serde_json::from_slice(&response.body).context("dockerd's image inspect answer")?
            }
            Some(response) => bail!("cannot inspect image {image}: {}", api::error_of(&response)),
            None => {
                let output = self.cli_ok(&["image", "inspect", image], QUICK)?;
                let mut inspected: Vec<InspectedImage> =
                    serde_json::from_slice(&output.stdout).context("docker image inspect's answer")?;
                inspected.pop().with_context(|| format!("docker image inspect described no image {image}"))?
            }
        };
        Ok(inspected.config.user)
    }

    fn image_files(&self, image: &str) -> Result<Vec<String>> {
        let saved = self.cli_ok(&["save", image], Duration::from_secs(120))?;
        super::saved_image::files_of_saved_image(&saved.stdout)
    }

    fn shell_environment(&self) -> Vec<(String, String)> {
        vec![("DOCKER_HOST".to_string(), self.docker_host())]
    }

    fn shell_hints(&self) -> Vec<String> {
        vec!["docker ps".to_string(), format!("docker exec -ti {} ps -ef", self.name("nginx"))]
    }

    fn trouble(&self) -> Option<String> {
        self.daemon.trouble(self.host.as_ref())
    }

    fn shut_down(&mut self) -> Result<()> {
        lifecycle::shut_down(self)
    }
}

impl OwnsDaemon for Docker {
    type Private = PrivateDaemon;

    fn lifecycle(&self) -> &Lifecycle<PrivateDaemon> {
        &self.daemon
    }

    fn lifecycle_mut(&mut self) -> &mut Lifecycle<PrivateDaemon> {
        &mut self.daemon
    }

    /// Removes every container labelled with this run, on any daemon: a shared one keeps
    /// running, so the run's containers must go by label.
    fn remove_run_containers(&self) -> Result<()> {
        let label = format!("label={}={}", names::RUN_LABEL, self.run_id);
        let list = self.cli(&["ps", "--all", "--quiet", "--filter", &label]);
        let ids = self.host.run(&list, QUICK, Cancel::NEVER)?.ok()?.stdout_text();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(());
        }
        let mut remove = vec!["rm", "--force", "--volumes"];
        remove.extend(ids);
        self.host.run(&self.cli(&remove), Duration::from_secs(60), Cancel::NEVER)?.ok().map(drop)
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        lifecycle::shut_down_on_drop(self);
    }
}

/// Whether dockerd answers `GET /_ping` with `OK` on `socket`, reached through `host`.
fn answers_ping(host: &dyn Host, socket: &Path, cancel: Cancel) -> bool {
    let response = host.request(&Request::get(socket, "/_ping"), Duration::from_secs(2), cancel);
    response.is_ok_and(|response| response.status == 200 && response.body == b"OK")
}

/// Waits for the guest's dockerd (started by its init at boot) to answer; if it does not,
/// the end of its log says why.
fn wait_in_guest(host: &dyn Host, cancel: Cancel) -> Result<()> {
    lifecycle::wait_until_ready(
        GUEST_START_TIMEOUT,
        Duration::from_millis(25),
        cancel,
        || match answers_ping(host, Path::new(GUEST_SOCKET), cancel) {
            true => Ok(Look::Ready(())),
            false => Ok(Look::NotYet(String::new())),
        },
        |_| {
            let log = host.run(&argv(&["cat", GUEST_LOGS[0]]), QUICK, cancel).map(|output| output.stdout_text());
            anyhow::anyhow!(
                "dockerd did not answer in the guest within {GUEST_START_TIMEOUT:?}; the end of its log:\n{}",
                last_lines(&log.unwrap_or_default(), 20)
            )
        },
    )
}

/// Whether the daemon at `docker_host` answers the CLI (any DOCKER_HOST, tcp:// included).
fn cli_answers(docker_host: &str, cancel: Cancel) -> bool {
    let version = argv(&["docker", "--host", docker_host, "version", "--format", "{{.Server.Version}}"]);
    crate::command::run(&version, Duration::from_secs(10), cancel).is_ok_and(|output| output.success())
}
