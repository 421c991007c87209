//! The `cri` runtime: the pod as Kubernetes makes it, through containerd's CRI plugin
//! (`runtime.v1`), with the pause under test as the plugin's sandbox image. The infra
//! container is the pod sandbox (RunPodSandbox: containerd starts pause with its own spec),
//! each app a container created in it (CreateContainer, StartContainer). Every call is a gRPC
//! call that the host makes (`Host::grpc`: in the guest, its agent does), with the message
//! types of the `k8s-cri` crate. CRI has no signal call: signals go through containerd's task
//! service (`ctr tasks kill`). It tells no sandbox's exit status either: `ctr events`, kept
//! beside containerd for the run, does. Logs are the CRI log files.
//!
//! Where the containerd runs, by host: in the guest, the one the guest's init starts at boot
//! (`guest_services`); on this machine, a private one (`daemon.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::side_by_side::lock;
use anyhow::{Context, Result, bail};
use k8s_cri::v1 as cri;
use nix::sys::signal::Signal;
use prost::Message;

use super::{ContainerState, Logs, RunIdentity, Runtime, RuntimeKind};
use crate::cancel::Cancel;
use crate::command::{Output, argv, last_lines};
use crate::host::{Host, Placement};
use crate::images::ImageTar;
use crate::images::docker_archive::docker_archive;
use crate::names;
use crate::plan::{ContainerPlan, PodPlan};
use crate::progress::Progress;
use crate::runtime::cni;
use crate::scenario::{NamespaceKind, RestartPolicy};
use crate::unix_grpc::{Call, NOT_FOUND, Reply};

pub mod config;
mod daemon;
mod log_file;

use config::Layout;
use daemon::PrivateContainerd;

use super::lifecycle::{self, GuestContainers, GuestDaemon, Lifecycle, Look, OwnsDaemon, Place, SavedLogs, Specifics};

/// Deadline of a call that should answer at once (status, create, remove).
const QUICK: Duration = Duration::from_secs(30);
/// Deadline of a sandbox's or a container's start: the image is already there.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long containerd may take to answer in the guest, after its start at boot.
const GUEST_START_TIMEOUT: Duration = Duration::from_secs(120);
/// `docker restart`'s grace period, for the `restart` step.
const RESTART_GRACE_SECONDS: i64 = 10;

/// In the guest: containerd's directory (on the /run tmpfs: overlayfs cannot stack on the
/// guest's overlay root).
const GUEST_DIR: &str = "/run/podlab/cri";

fn guest_layout() -> Layout {
    Layout { dir: PathBuf::from(GUEST_DIR) }
}

/// The cri runtime in the registry (`runtime::RUNTIMES`).
pub static KIND: RuntimeKind = RuntimeKind {
    name: "cri",
    about: "containerd's CRI plugin, as the kubelet uses it: the pause under test as the sandbox image",
    facts: "cri",
    temp_word: "cri",
    uses_cni: true,
    cannot_make,
    guest_services,
    guest_programs: &["containerd", "ctr", "containerd-shim-runc-v2", "runc"],
    needs: &[
        ("containerd", "containerd", "the cri runtime is containerd's CRI plugin"),
        ("ctr", "containerd", "the cri runtime imports images, sends signals and reads events with it"),
        (
            "/usr/lib/cni/bridge",
            "containernetworking-plugins",
            "the cri and podman runtimes' pod network (bridge, host-local, portmap, loopback)",
        ),
        ("iptables", "iptables", "CNI's portmap publishes the cri and podman runtimes' ports with it"),
        ("sha256sum", "coreutils", "the cri runtime's images name their layer by its digest"),
        ("runc", "runc", "containerd starts the cri runtime's containers with it"),
    ],
    start: |host, run, progress| Ok(Box::new(Cri::start(host, run, progress)?)),
};

/// What a CRI pod cannot be: its sandbox is the sandbox image as it is, and its containers
/// always share the sandbox's network and IPC.
fn cannot_make(pod: &PodPlan) -> Option<String> {
    let infra = &pod.infra;
    if infra.image != config::SANDBOX_IMAGE_AS_WRITTEN {
        return Some(format!(
            "the infra container is the pod sandbox, whose image is always {}, not {}",
            config::SANDBOX_IMAGE_AS_WRITTEN,
            infra.image
        ));
    }
    if !infra.is_image_as_it_is() {
        return Some(
            "CRI runs the sandbox image as it is: no command, arguments, environment, files, user or restart policy of the \
             scenario's for the infra container"
                .to_string(),
        );
    }
    for app in &pod.apps {
        if !app.joins(NamespaceKind::Net) || !app.joins(NamespaceKind::Ipc) {
            return Some(format!(
                "{} does not share both `net` and `ipc`: a CRI pod's containers always share the sandbox's network and IPC",
                app.name
            ));
        }
        if app.restart.is_some_and(|policy| policy != RestartPolicy::No) {
            return Some(format!(
                "{} has a restart policy: under CRI the kubelet restarts containers, and none runs here",
                app.name
            ));
        }
    }
    None
}

/// What the guest's init runs for this runtime: the bridge, containerd's config and network,
/// containerd in the background, and `ctr events` once its socket is there.
pub fn guest_services() -> String {
    let layout = guest_layout();
    format!(
        r#"# the cri runtime's containerd, written by the harness for this run (xtask/src/runtime/cri/mod.rs)
{files}{bridge}containerd --config {config} > {log} 2>&1 &
( while [ ! -S {socket} ]; do busybox usleep 10000; done; exec ctr --address {socket} events > {events} 2>&1 ) &
"#,
        files = config::write_script(&layout, cni::GUEST_BRIDGE, cni::GUEST_PREFIX),
        bridge = cni::guest_bridge_script(),
        config = layout.config_file().display(),
        log = layout.daemon_log().display(),
        socket = layout.socket().display(),
        events = layout.events_log().display(),
    )
}

/// A pod sandbox the run made: its id and the config it was made with (CreateContainer
/// takes it again).
struct Sandbox {
    id: String,
    config: cri::PodSandboxConfig,
}

/// An app container the run made, in the sandbox of `infra`.
struct AppContainer {
    id: String,
    attempt: u32,
    plan: ContainerPlan,
    infra: String,
}

pub struct Cri {
    /// Which containerd the runtime talks to: the guest's, or our own on this machine.
    daemon: Lifecycle<PrivateContainerd>,
    layout: Layout,
    /// `containerd 1.6.20 (CRI v1)`.
    version: String,
    /// What the run made, by the names the scenario gives: sandboxes by their infra container's name.
    sandboxes: Mutex<BTreeMap<String, Sandbox>>,
    containers: Mutex<BTreeMap<String, AppContainer>>,
    /// Numbers the sandboxes, so that each gets a log directory and uid of its own.
    sandbox_count: AtomicU32,
    run_id: String,
    /// The run's: what ends its calls early (but for cleanup and `MAKING`, handed `Cancel::NEVER`).
    cancel: Cancel,
    // Last, so that it drops after the daemon: the guest outlives what runs in it.
    host: Box<dyn Host>,
}

/// containerd said no: the gRPC status code and message.
#[derive(Debug)]
struct Refused {
    method: String,
    code: i32,
    message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "containerd refused {}: {}", self.method, self.message)
    }
}

impl std::error::Error for Refused {}

/// A removal's outcome, where containerd not knowing the id (NotFound) means it is gone already.
fn gone_already_is_fine<T>(outcome: Result<T>) -> Result<()> {
    match outcome {
        Err(error) if error.downcast_ref::<Refused>().is_none_or(|refused| refused.code != NOT_FOUND) => Err(error),
        _ => Ok(()),
    }
}

/// What a call that makes a sandbox or a container is handed: let finish on Ctrl-C (its deadline
/// still holds), since containerd 1.6, when StartContainer's context is cancelled half way, keeps a
/// task that StopPodSandbox does not stop and RemovePodSandbox then cannot delete ("cannot
/// delete running task": the harness's Ctrl-C trial failed so about once in eight).
const MAKING: Cancel = Cancel::NEVER;

impl Cri {
    pub fn start(host: Box<dyn Host>, run: &RunIdentity, progress: &Progress) -> Result<Cri> {
        let started = Instant::now();
        let (place, layout) = match host.placement() {
            Placement::Vm => (Place::InGuest, guest_layout()),
            Placement::Host => {
                let private = PrivateContainerd::start(run.cancel, progress)?;
                let layout = private.layout.clone();
                (Place::Private(private), layout)
            }
        };
        let specifics = Specifics {
            guest_daemon: Some(GuestDaemon {
                alive: argv(&["pidof", "containerd"]),
                log: layout.daemon_log(),
                died: "containerd died in the guest; the end of its log",
            }),
            guest_containers: GuestContainers::GoWithTheGuest,
            // Before its directory goes (on this machine) or the guest is killed with everything in it.
            logs: SavedLogs { what: "containerd's logs", files: layout.logs_to_keep().into() },
        };
        let mut cri = Cri {
            daemon: Lifecycle::new(place, specifics, run),
            layout,
            version: String::new(),
            sandboxes: Mutex::default(),
            containers: Mutex::default(),
            sandbox_count: AtomicU32::new(0),
            run_id: run.run_id.to_string(),
            cancel: run.cancel,
            host,
        };
        cri.version = cri.wait_until_ready()?;
        progress.done(&lifecycle::ready_line(cri.host.as_ref(), "containerd's CRI plugin"), started);
        Ok(cri)
    }

    /// Waits until the CRI plugin answers and says both the runtime and its network (the CNI
    /// config) are ready; returns what it says it is.
    fn wait_until_ready(&self) -> Result<String> {
        lifecycle::wait_until_ready(
            GUEST_START_TIMEOUT,
            Duration::from_millis(20),
            self.cancel,
            || {
                self.cancel.check()?;
                let last_problem = match self.readiness() {
                    Ok(Ok(version)) => return Ok(Look::Ready(version)),
                    Ok(Err(problem)) | Err(problem) => format!("{problem:#}"),
                };
                if let Some(trouble) = self.trouble() {
                    bail!("{trouble}");
                }
                Ok(Look::NotYet(last_problem))
            },
            |last_problem| {
                anyhow::anyhow!(
                    "containerd's CRI plugin was not ready within {GUEST_START_TIMEOUT:?} ({last_problem}); the end of its log:\n{}",
                    last_lines(&self.daemon_log(), 20)
                )
            },
        )
    }

    /// Ok(Ok(version)) once ready; Ok(Err(what is not ready)) before.
    fn readiness(&self) -> Result<Result<String>> {
        let version: cri::VersionResponse =
            self.call("RuntimeService", "Version", &cri::VersionRequest::default(), Duration::from_secs(5))?;
        let status: cri::StatusResponse =
            self.call("RuntimeService", "Status", &cri::StatusRequest::default(), Duration::from_secs(5))?;
        let conditions = status.status.map(|status| status.conditions).unwrap_or_default();
        if let Some(unready) = conditions.iter().find(|condition| !condition.status) {
            return Ok(Err(anyhow::anyhow!("{}: {} {}", unready.r#type, unready.reason, unready.message)));
        }
        Ok(Ok(format!("{} {} (CRI {})", version.runtime_name, version.runtime_version, version.runtime_api_version)))
    }

    /// One call to the CRI plugin: `service` is `RuntimeService` or `ImageService`.
    fn call<Q: Message, A: Message + Default>(
        &self,
        service: &str,
        method: &str,
        request: &Q,
        timeout: Duration,
    ) -> Result<A> {
        self.call_for(self.cancel, service, method, request, timeout)
    }

    fn call_for<Q: Message, A: Message + Default>(
        &self,
        cancel: Cancel,
        service: &str,
        method: &str,
        request: &Q,
        timeout: Duration,
    ) -> Result<A> {
        let call = Call {
            socket: self.layout.socket(),
            method: format!("/runtime.v1.{service}/{method}"),
            message: request.encode_to_vec(),
        };
        match self.host.grpc(&call, timeout, cancel)? {
            Reply::Message(bytes) => {
                A::decode(bytes.as_slice()).with_context(|| format!("an answer to {method} that is not its message"))
            }
            Reply::Refused { code, message } => Err(Refused { method: method.to_string(), code, message }.into()),
        }
    }

    fn daemon_log(&self) -> String {
        let cat = argv(&["cat", &self.layout.daemon_log().display().to_string()]);
        self.host.run(&cat, QUICK, Cancel::NEVER).map(|output| output.stdout_text()).unwrap_or_default()
    }

    fn sandbox_id(&self, infra: &str) -> Option<String> {
        lock(&self.sandboxes).get(infra).map(|sandbox| sandbox.id.clone())
    }

    fn container_id(&self, name: &str) -> Option<String> {
        lock(&self.containers).get(name).map(|container| container.id.clone())
    }

    /// containerd's id of a sandbox or container (its task has the same id).
    fn task_id(&self, name: &str) -> Result<String> {
        self.sandbox_id(name)
            .or_else(|| self.container_id(name))
            .with_context(|| format!("no container {name} in this pod"))
    }

    fn sandbox_config(&self, pod: &PodPlan) -> cri::PodSandboxConfig {
        let number = self.sandbox_count.fetch_add(1, Ordering::SeqCst);
        let infra = &pod.infra;
        let uid = format!("{}-{number}", self.run_id);
        let cgroup_parent = match self.host.placement() {
            Placement::Host => format!("/{}", names::cgroup(std::process::id())),
            Placement::Vm => "/podlab".to_string(),
        };
        let shares_pid = pod.apps.iter().any(|app| app.joins(NamespaceKind::Pid));
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: infra.name.clone(),
                uid: uid.clone(),
                namespace: "podlab".to_string(),
                attempt: 0,
            }),
            // The kubelet gives the pod's name where the pod spec gives no hostname.
            hostname: pod.hostname.clone().unwrap_or_else(|| infra.name.clone()),
            log_directory: self.layout.logs().join(&uid).display().to_string(),
            // As dockerd's --dns=127.0.0.1: no lookup leaves the machine.
            dns_config: Some(cri::DnsConfig { servers: vec!["127.0.0.1".to_string()], ..Default::default() }),
            port_mappings: infra
                .publish
                .iter()
                .map(|mapping| cri::PortMapping {
                    protocol: cri::Protocol::Tcp as i32,
                    container_port: i32::from(mapping.container),
                    host_port: i32::from(mapping.host),
                    host_ip: "127.0.0.1".to_string(),
                })
                .collect(),
            labels: [(names::RUN_LABEL.to_string(), self.run_id.clone())].into(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent,
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Pod as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        // As the kubelet asks for a pod with shareProcessNamespace.
                        pid: if shares_pid { cri::NamespaceMode::Pod } else { cri::NamespaceMode::Container } as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                sysctls: pod.sysctls.iter().cloned().collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn container_config(&self, app: &ContainerPlan, attempt: u32) -> Result<cri::ContainerConfig> {
        let mut security = cri::LinuxContainerSecurityContext {
            namespace_options: Some(cri::NamespaceOption {
                network: cri::NamespaceMode::Pod as i32,
                ipc: cri::NamespaceMode::Pod as i32,
                pid: if app.joins(NamespaceKind::Pid) { cri::NamespaceMode::Pod } else { cri::NamespaceMode::Container }
                    as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        if let Some(user) = &app.user {
            let (user, group) = user.split_once(':').map_or((user.as_str(), None), |(user, group)| (user, Some(group)));
            match user.parse::<i64>() {
                Ok(uid) => security.run_as_user = Some(cri::Int64Value { value: uid }),
                Err(_) => security.run_as_username = user.to_string(),
            }
            if let Some(group) = group {
                let gid =
                    group.parse::<i64>().with_context(|| format!("user {user}:{group}: CRI takes a numeric group"))?;
                security.run_as_group = Some(cri::Int64Value { value: gid });
            }
        }
        Ok(cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata { name: app.name.clone(), attempt }),
            image: Some(cri::ImageSpec { image: app.image.clone(), ..Default::default() }),
            command: app.command.clone().unwrap_or_default(),
            args: app.args.clone(),
            envs: app.env.iter().map(|(key, value)| cri::KeyValue { key: key.clone(), value: value.clone() }).collect(),
            mounts: app
                .files
                .iter()
                .map(|(source, target)| cri::Mount {
                    container_path: target.clone(),
                    host_path: source.display().to_string(),
                    readonly: true,
                    ..Default::default()
                })
                .collect(),
            log_path: format!("{}_{attempt}.log", app.name),
            labels: [(names::RUN_LABEL.to_string(), self.run_id.clone())].into(),
            linux: Some(cri::LinuxContainerConfig { security_context: Some(security), ..Default::default() }),
            ..Default::default()
        })
    }

    /// Creates and starts `app` in the sandbox of `infra`, as attempt `attempt`.
    fn create_and_start(&self, infra: &str, app: &ContainerPlan, attempt: u32) -> Result<()> {
        let (sandbox_id, sandbox_config) = {
            let sandboxes = lock(&self.sandboxes);
            let sandbox = sandboxes.get(infra).with_context(|| format!("no pod sandbox {infra}"))?;
            (sandbox.id.clone(), sandbox.config.clone())
        };
        let created: cri::CreateContainerResponse = self.call_for(
            MAKING,
            "RuntimeService",
            "CreateContainer",
            &cri::CreateContainerRequest {
                pod_sandbox_id: sandbox_id,
                config: Some(self.container_config(app, attempt)?),
                sandbox_config: Some(sandbox_config),
            },
            START_TIMEOUT,
        )?;
        lock(&self.containers).insert(
            app.name.clone(),
            AppContainer { id: created.container_id.clone(), attempt, plan: app.clone(), infra: infra.to_string() },
        );
        let _: cri::StartContainerResponse = self.call_for(
            MAKING,
            "RuntimeService",
            "StartContainer",
            &cri::StartContainerRequest { container_id: created.container_id },
            START_TIMEOUT,
        )?;
        super::wait_for_program(self, &app.name, START_TIMEOUT, self.cancel)
    }

    fn sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatusResponse> {
        self.call(
            "RuntimeService",
            "PodSandboxStatus",
            &cri::PodSandboxStatusRequest { pod_sandbox_id: id.to_string(), verbose: true },
            QUICK,
        )
    }

    /// The exit status containerd's events gave the task `id`, if it has exited: CRI's
    /// sandbox status has none.
    fn exit_status_from_events(&self, id: &str) -> Result<Option<i64>> {
        let cat = argv(&["cat", &self.layout.events_log().display().to_string()]);
        let events = self.host.run(&cat, QUICK, self.cancel)?.ok()?.stdout_text();
        Ok(first_exit_status(&events, id))
    }

    fn ctr(&self, arguments: &[&str]) -> Vec<String> {
        let socket = self.layout.socket().display().to_string();
        let mut words = vec!["ctr", "--address", &socket, "--namespace", config::NAMESPACE];
        words.extend(arguments);
        argv(&words)
    }

    /// Stops and removes a sandbox (and with it its containers); one already gone is no error.
    fn remove_sandbox(&self, id: &str, cancel: Cancel, timeout: Duration) -> Result<()> {
        let pod_sandbox_id = id.to_string();
        let stop = cri::StopPodSandboxRequest { pod_sandbox_id: pod_sandbox_id.clone() };
        let stopped: Result<cri::StopPodSandboxResponse> =
            self.call_for(cancel, "RuntimeService", "StopPodSandbox", &stop, timeout);
        gone_already_is_fine(stopped)?;
        let remove = cri::RemovePodSandboxRequest { pod_sandbox_id };
        let removed: Result<cri::RemovePodSandboxResponse> =
            self.call_for(cancel, "RuntimeService", "RemovePodSandbox", &remove, timeout);
        gone_already_is_fine(removed)
    }

    fn log_path(&self, name: &str) -> Option<String> {
        let containers = lock(&self.containers);
        let container = containers.get(name)?;
        let sandboxes = lock(&self.sandboxes);
        let directory = &sandboxes.get(&container.infra)?.config.log_directory;
        Some(format!("{directory}/{}_{}.log", container.plan.name, container.attempt))
    }

    fn read_logs(&self, container: &str, stamped: bool) -> Result<Logs> {
        if self.sandbox_id(container).is_some() {
            // The CRI plugin gives pause /dev/null for stdin, stdout and stderr: it has no log.
            return Ok(Logs::default());
        }
        let path = self.log_path(container).with_context(|| format!("no container {container} in this pod"))?;
        let text = self.host.run(&argv(&["cat", &path]), QUICK, Cancel::NEVER)?.ok()?.stdout_text();
        Ok(log_file::parse(&text, stamped))
    }

    fn image_status(&self, image: &str) -> Result<cri::ImageStatusResponse> {
        let request = cri::ImageStatusRequest {
            image: Some(cri::ImageSpec { image: image.to_string(), ..Default::default() }),
            verbose: true,
        };
        let status: cri::ImageStatusResponse = self.call("ImageService", "ImageStatus", &request, QUICK)?;
        if status.image.is_none() {
            bail!("containerd has no image {image}");
        }
        Ok(status)
    }
}

/// The `pid` of a verbose status's `info` JSON.
fn pid_in_info(info: &std::collections::HashMap<String, String>) -> Option<u32> {
    let info: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    info["pid"].as_u64().filter(|pid| *pid > 0).map(|pid| pid as u32)
}

impl Runtime for Cri {
    fn kind(&self) -> &'static RuntimeKind {
        &KIND
    }

    fn details(&self) -> String {
        let whose = match self.daemon.place() {
            Place::InGuest => "started by the guest's init",
            Place::Shared { .. } | Place::Private(_) => "a private one",
        };
        format!("cri ({}, {whose})", self.version)
    }

    fn host(&self) -> &dyn Host {
        self.host.as_ref()
    }

    fn import(&self, image: &ImageTar) -> Result<()> {
        let archive = docker_archive(image, self.cancel)?;
        let import = self.ctr(&["images", "import", &archive.display().to_string()]);
        self.host
            .run(&import, Duration::from_secs(300), self.cancel)?
            .ok()
            .with_context(|| format!("cannot import image {}", image.name))?;
        Ok(())
    }

    fn start_infra(&self, pod: &PodPlan) -> Result<()> {
        let config = self.sandbox_config(pod);
        let response: cri::RunPodSandboxResponse = self
            .call_for(
                MAKING,
                "RuntimeService",
                "RunPodSandbox",
                &cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() },
                START_TIMEOUT,
            )
            .with_context(|| format!("cannot start the pod sandbox {}", pod.infra.name))?;
        lock(&self.sandboxes).insert(pod.infra.name.clone(), Sandbox { id: response.pod_sandbox_id, config });
        super::wait_for_program(self, &pod.infra.name, START_TIMEOUT, self.cancel)
    }

    fn start_app(&self, pod: &PodPlan, app: &ContainerPlan) -> Result<()> {
        self.create_and_start(&pod.infra.name, app, 0).with_context(|| format!("cannot start container {}", app.name))
    }

    /// A sandbox in the list goes with all its containers in one StopPodSandbox and
    /// RemovePodSandbox (under TCG each container removed on its own costs half a second).
    fn remove(&self, containers: &[String], timeout: Duration) -> Result<()> {
        let in_removed_sandbox = |name: &String| {
            lock(&self.containers).get(name).is_some_and(|container| containers.contains(&container.infra))
        };
        for name in containers.iter().filter(|name| !in_removed_sandbox(name)) {
            if let Some(id) = self.sandbox_id(name) {
                self.remove_sandbox(&id, Cancel::NEVER, timeout)?;
                lock(&self.sandboxes).remove(name);
                lock(&self.containers).retain(|_, container| container.infra != *name);
            } else if let Some(id) = self.container_id(name) {
                let request = cri::RemoveContainerRequest { container_id: id };
                let removed: Result<cri::RemoveContainerResponse> =
                    self.call_for(Cancel::NEVER, "RuntimeService", "RemoveContainer", &request, timeout);
                gone_already_is_fine(removed)?;
                lock(&self.containers).remove(name);
            }
        }
        Ok(())
    }

    fn exec(&self, container: &str, command: &[String], timeout: Duration) -> Result<Output> {
        let started = Instant::now();
        let refusal = |message: String| Output {
            argv: command.to_vec(),
            stdout: Vec::new(),
            stderr: message,
            exit_code: Some(1),
            signal: None,
            duration: started.elapsed(),
        };
        if self.sandbox_id(container).is_some() {
            return Ok(refusal(format!("{container} is the pod's sandbox: CRI has no exec into it")));
        }
        let Some(id) = self.container_id(container) else {
            return Ok(refusal(format!("no container {container} in this pod")));
        };
        let request =
            cri::ExecSyncRequest { container_id: id, cmd: command.to_vec(), timeout: timeout.as_secs().max(1) as i64 };
        // The call's own deadline a little later than the exec's, so that containerd says which ran out.
        let answer: Result<cri::ExecSyncResponse> =
            self.call("RuntimeService", "ExecSync", &request, timeout + Duration::from_secs(5));
        match answer {
            Ok(answer) => Ok(Output {
                argv: command.to_vec(),
                stdout: answer.stdout,
                stderr: String::from_utf8_lossy(&answer.stderr).into_owned(),
                exit_code: Some(answer.exit_code),
                signal: None,
                duration: started.elapsed(),
            }),
            Err(error) => match error.downcast::<Refused>() {
                Ok(refused) => Ok(refusal(refused.to_string())),
                Err(error) => Err(error),
            },
        }
    }

    fn states(&self, containers: &[String]) -> Result<BTreeMap<String, ContainerState>> {
        let mut states = BTreeMap::new();
        for name in containers {
            let state = if let Some(id) = self.sandbox_id(name) {
                let status = self.sandbox_status(&id)?;
                let ready = status
                    .status
                    .as_ref()
                    .is_some_and(|status| status.state == cri::PodSandboxState::SandboxReady as i32);
                let exit_code = if ready { None } else { self.exit_status_from_events(&id)? };
                ContainerState { running: ready && exit_code.is_none(), pid: pid_in_info(&status.info), exit_code }
            } else if let Some(id) = self.container_id(name) {
                let status: cri::ContainerStatusResponse = self.call(
                    "RuntimeService",
                    "ContainerStatus",
                    &cri::ContainerStatusRequest { container_id: id, verbose: true },
                    QUICK,
                )?;
                let container = status.status.as_ref().context("containerd gave no container status")?;
                let running = container.state == cri::ContainerState::ContainerRunning as i32;
                let exited = container.state == cri::ContainerState::ContainerExited as i32;
                ContainerState {
                    running,
                    pid: pid_in_info(&status.info).filter(|_| running),
                    exit_code: exited.then_some(i64::from(container.exit_code)),
                }
            } else {
                bail!("no container {name} in this pod");
            };
            states.insert(name.clone(), state);
        }
        Ok(states)
    }

    fn pod_address(&self, infra: &str) -> Result<String> {
        let id = self.sandbox_id(infra).with_context(|| format!("{infra} is not a pod sandbox of this run"))?;
        let status = self.sandbox_status(&id)?;
        status
            .status
            .and_then(|status| status.network)
            .map(|network| network.ip)
            .filter(|ip| !ip.is_empty())
            .with_context(|| format!("the pod sandbox {infra} has no IP address"))
    }

    /// Through containerd's task service: CRI itself has no way to signal a container.
    fn signal(&self, container: &str, signal: Signal) -> Result<()> {
        let id = self.task_id(container)?;
        let kill = self.ctr(&["tasks", "kill", "--signal", signal.as_str(), &id]);
        self.host
            .run(&kill, QUICK, self.cancel)?
            .ok()
            .with_context(|| format!("cannot send {signal} to {container}"))?;
        Ok(())
    }

    /// An app: StopContainer with `grace`. The sandbox: StopPodSandbox, which has no grace
    /// period (containerd kills pause at once).
    fn stop(&self, container: &str, grace: Duration) -> Result<()> {
        if let Some(id) = self.sandbox_id(container) {
            let request = cri::StopPodSandboxRequest { pod_sandbox_id: id };
            let _: cri::StopPodSandboxResponse = self.call("RuntimeService", "StopPodSandbox", &request, QUICK)?;
            return Ok(());
        }
        let id = self.task_id(container)?;
        let request = cri::StopContainerRequest { container_id: id, timeout: grace.as_secs() as i64 };
        let _: cri::StopContainerResponse = self.call("RuntimeService", "StopContainer", &request, grace + QUICK)?;
        Ok(())
    }

    /// As the kubelet restarts a container: the old one stopped and removed, a new one (its
    /// attempt one more) created and started in the same sandbox.
    fn restart(&self, container: &str) -> Result<()> {
        if self.sandbox_id(container).is_some() {
            bail!("{container} is the pod's sandbox: CRI restarts containers, not sandboxes");
        }
        let (id, attempt, plan, infra) = {
            let containers = lock(&self.containers);
            let old = containers.get(container).with_context(|| format!("no container {container} in this pod"))?;
            (old.id.clone(), old.attempt, old.plan.clone(), old.infra.clone())
        };
        let stop = cri::StopContainerRequest { container_id: id.clone(), timeout: RESTART_GRACE_SECONDS };
        let grace = Duration::from_secs(RESTART_GRACE_SECONDS as u64);
        let _: cri::StopContainerResponse = self.call("RuntimeService", "StopContainer", &stop, grace + QUICK)?;
        let _: cri::RemoveContainerResponse =
            self.call("RuntimeService", "RemoveContainer", &cri::RemoveContainerRequest { container_id: id }, QUICK)?;
        self.create_and_start(&infra, &plan, attempt + 1)
    }

    fn logs(&self, container: &str) -> Result<Logs> {
        self.read_logs(container, false)
    }

    fn stamped_logs(&self, container: &str) -> Result<Logs> {
        self.read_logs(container, true)
    }

    fn image_user(&self, image: &str) -> Result<String> {
        let status = self.image_status(image)?;
        let info: serde_json::Value = serde_json::from_str(status.info.get("info").map_or("{}", String::as_str))
            .context("containerd's image info is not JSON")?;
        Ok(info["imageSpec"]["config"]["User"].as_str().unwrap_or_default().to_string())
    }

    fn image_files(&self, image: &str) -> Result<Vec<String>> {
        let reference = self.image_status(image)?.image.map(|image| image.repo_tags).unwrap_or_default();
        let reference = reference.first().with_context(|| format!("image {image} has no tag"))?;
        let exported = self.layout.dir.join(format!("export-{}.tar", std::process::id()));
        let exported_text = exported.display().to_string();
        let export = self.ctr(&["images", "export", &exported_text, reference]);
        let saved = self.host.run(&export, QUICK, self.cancel)?.ok().and_then(|_| {
            let cat = self.host.run(&argv(&["cat", &exported_text]), QUICK, self.cancel)?.ok()?;
            Ok(cat.stdout)
        });
        let _ = self.host.run(&argv(&["rm", "-f", &exported_text]), QUICK, Cancel::NEVER);
        super::saved_image::files_of_saved_image(&saved?)
    }

    fn shell_environment(&self) -> Vec<(String, String)> {
        vec![
            ("CONTAINERD_ADDRESS".to_string(), self.layout.socket().display().to_string()),
            ("CONTAINERD_NAMESPACE".to_string(), config::NAMESPACE.to_string()),
        ]
    }

    fn shell_hints(&self) -> Vec<String> {
        vec![
            "ctr tasks ls".to_string(),
            "ctr containers ls".to_string(),
            "(crictl is not packaged in Debian 12: ctr shows the same pods, by containerd's ids)".to_string(),
        ]
    }

    fn trouble(&self) -> Option<String> {
        self.daemon.trouble(self.host.as_ref())
    }

    fn shut_down(&mut self) -> Result<()> {
        lifecycle::shut_down(self)
    }
}

impl OwnsDaemon for Cri {
    type Private = PrivateContainerd;

    fn lifecycle(&self) -> &Lifecycle<PrivateContainerd> {
        &self.daemon
    }

    fn lifecycle_mut(&mut self) -> &mut Lifecycle<PrivateContainerd> {
        &mut self.daemon
    }

    /// Through CRI, so that CNI takes each pod's network down (its veth, lease and portmap rules).
    /// Removes every sandbox of the run that containerd still has, found by the run's label.
    fn remove_run_containers(&self) -> Result<()> {
        let request = cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                label_selector: [(names::RUN_LABEL.to_string(), self.run_id.clone())].into(),
                ..Default::default()
            }),
        };
        let listed: cri::ListPodSandboxResponse =
            self.call_for(Cancel::NEVER, "RuntimeService", "ListPodSandbox", &request, QUICK)?;
        for sandbox in listed.items {
            self.remove_sandbox(&sandbox.id, Cancel::NEVER, QUICK)?;
        }
        Ok(())
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        lifecycle::shut_down_on_drop(self);
    }
}

/// The exit status of task `id`'s own process in `ctr events` lines (`TIME UTC NAMESPACE
/// /tasks/exit {"container_id":...}`; a status of 0 is left out of the JSON). The first one
/// counts: containerd 1.6 publishes a second exit, always 137, for a task whose shim went away
/// before containerd had deleted it (its dead-shim cleanup); under load that can follow a
/// clean exit of pause.
fn first_exit_status(events: &str, id: &str) -> Option<i64> {
    events.lines().find_map(|line| {
        let (_, json) = line.split_once(" /tasks/exit ")?;
        let event: serde_json::Value = serde_json::from_str(json).ok()?;
        (event["container_id"] == id && event["id"] == id).then(|| event["exit_status"].as_i64().unwrap_or(0))
    })
}

#[cfg(test)]
mod tests {
    use super::first_exit_status;

    #[test]
    fn the_first_exit_of_a_task_counts() {
        let events = concat!(
            "2026-11-30 15:30:49.1 +0000 UTC k8s.io /tasks/exit {\"container_id\":\"s1\",\"id\":\"exec1\",\"pid\":9,\"exit_status\":1}\n",
            "2026-11-30 15:30:49.2 +0000 UTC k8s.io /tasks/exit {\"container_id\":\"s1\",\"id\":\"s1\",\"pid\":7}\n",
            "2026-11-30 15:30:49.3 +0000 UTC k8s.io /tasks/exit {\"container_id\":\"a1\",\"id\":\"a1\",\"pid\":8,\"exit_status\":137}\n",
            "2026-11-30 15:30:49.9 +0000 UTC k8s.io /tasks/exit {\"container_id\":\"s1\",\"id\":\"s1\",\"pid\":7,\"exit_status\":137}\n",
        );
        assert_eq!(first_exit_status(events, "s1"), Some(0));
        assert_eq!(first_exit_status(events, "a1"), Some(137));
        assert_eq!(first_exit_status(events, "exec1"), None);
        assert_eq!(first_exit_status(events, "s2"), None);
    }
}
