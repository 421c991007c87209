//! The `podman` runtime: the pod as Podman makes it. `podman pod create` with the pause under
//! test as the infra image makes the pod (its infra container owns the network, IPC and UTS
//! namespaces, and the PID namespace when every app shares it); each app is `podman run --pod`,
//! with its own `--pid`/`--ipc` where it differs from the pod. Podman has no daemon: every call
//! is the `podman` CLI, run on the host (in the guest, by its agent), with a `containers.conf`
//! and `storage.conf` of the run's own (`config.rs`), so that nothing of the user's Podman
//! (/var/lib/containers, ~/.local/share/containers) is read or written.
//!
//! Two fronts make the same pod (`Front`): the CLI as above (`--runtime podman`), or the
//! scenario's pod as a Kubernetes Pod manifest (`pod::manifest`) given to `podman kube play`
//! (`--runtime podman-kube`), which names the containers itself: `<pod>-<container>`, and the
//! infra container by the pod's id.
//!
//! Where its state lives, by host: in the guest, a directory the guest's init writes at boot
//! (`guest_services`); on this machine, a private temp dir with its own bridge (`private.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::side_by_side::lock;
use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use super::{ContainerState, Logs, RunIdentity, Runtime, RuntimeKind};
use crate::cancel::Cancel;
use crate::command::{Output, argv};
use crate::host::{Host, Placement};
use crate::images::ImageTar;
use crate::images::docker_archive::docker_archive;
use crate::names;
use crate::plan::{ContainerPlan, PodPlan};
use crate::progress::Progress;
use crate::runtime::cni;
use crate::scenario::NamespaceKind;

pub mod config;
mod private;

use config::Layout;
use private::PrivatePodman;

use super::lifecycle::{self, GuestContainers, Lifecycle, OwnsDaemon, Place, SavedLogs, Specifics};

/// Deadline of a call that should answer at once (inspect, logs, kill).
const QUICK: Duration = Duration::from_secs(30);
/// Deadline of a pod's or a container's start: the image is already there.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// `podman restart`'s grace period (Podman's default), for the `restart` step.
const RESTART_GRACE_SECONDS: u64 = 10;

/// In the guest: Podman's directory (on the /run tmpfs: overlayfs cannot stack on the guest's
/// overlay root).
const GUEST_DIR: &str = "/run/podlab/podman";

fn guest_layout() -> Layout {
    Layout { dir: PathBuf::from(GUEST_DIR) }
}

/// The podman runtime in the registry (`runtime::RUNTIMES`): a Podman pod made with its CLI.
pub static KIND: RuntimeKind = RuntimeKind {
    name: "podman",
    about: "Podman: `podman pod create` with the pause under test as the infra image, each app `podman run --pod`",
    facts: "podman",
    temp_word: "podman",
    uses_cni: true,
    cannot_make,
    guest_services,
    guest_programs: GUEST_PROGRAMS,
    needs: NEEDS,
    start: |host, run, progress| Ok(Box::new(Podman::start(host, run, Front::Cli, progress)?)),
};

/// The podman-kube runtime in the registry: the same Podman, each pod played from its
/// Kubernetes Pod manifest; its facts are podman's.
pub static KUBE_KIND: RuntimeKind = RuntimeKind {
    name: "podman-kube",
    about: "Podman, each pod from its Kubernetes Pod manifest (`podman kube play`); the facts are podman's",
    facts: "podman",
    temp_word: "podman",
    uses_cni: true,
    cannot_make: kube_cannot_make,
    guest_services,
    guest_programs: GUEST_PROGRAMS,
    needs: NEEDS,
    start: |host, run, progress| Ok(Box::new(Podman::start(host, run, Front::KubePlay, progress)?)),
};

const GUEST_PROGRAMS: &[&str] = &["podman", "conmon", "runc"];

const NEEDS: &[(&str, &str, &str)] = &[
    ("podman", "podman", "the podman runtime makes its pods with it"),
    ("conmon", "conmon", "podman watches each container with it"),
    ("unshare", "util-linux", "podman's image copies on this host run with a /var/lib of their own"),
    (
        "/usr/lib/cni/bridge",
        "containernetworking-plugins",
        "the cri and podman runtimes' pod network (bridge, host-local, portmap, loopback)",
    ),
    ("iptables", "iptables", "CNI's portmap publishes the cri and podman runtimes' ports with it"),
    ("runc", "runc", "podman starts containers with it"),
];

/// What `podman pod create` cannot give the infra container, and a Podman pod's one network.
fn cannot_make(pod: &PodPlan) -> Option<String> {
    let infra = &pod.infra;
    if !infra.env.is_empty() || !infra.files.is_empty() || infra.user.is_some() || infra.restart.is_some() {
        return Some(
            "`podman pod create` gives the infra container no environment, files, user or restart policy of the \
             scenario's"
                .to_string(),
        );
    }
    let words = infra.command.iter().flatten().chain(&infra.args);
    if let Some(word) = words.into_iter().find(|word| word.contains(char::is_whitespace)) {
        return Some(format!(
            "`podman pod create --infra-command` splits the infra container's command at spaces: `{word}` would not stay one word"
        ));
    }
    let app = pod.apps.iter().find(|app| !app.joins(NamespaceKind::Net))?;
    Some(format!("{} does not share `net`: a Podman pod's containers always share its network", app.name))
}

/// What `podman kube play` cannot make: what a manifest cannot say, and what Podman 4.3's
/// kube play leaves out.
fn kube_cannot_make(pod: &PodPlan) -> Option<String> {
    if let Err(error) = crate::plan::manifest::render(pod) {
        return Some(format!("{error:#}"));
    }
    // Its kube play learnt a Pod's sysctls later (pull request 17464, February 2023): 4.3 drops them without a word.
    (!pod.sysctls.is_empty())
        .then(|| "Podman 4.3's kube play ignores a Pod's securityContext.sysctls, which this pod sets".to_string())
}

/// What the guest's init runs for this runtime: the bridge, Podman's config and network, and
/// one `podman info` in the background, which reads the (large) binary over 9p and creates
/// the storage while the rest of the guest comes up. Podman's default rlimits stand there:
/// root in the guest may raise them.
pub fn guest_services() -> String {
    let layout = guest_layout();
    format!(
        r#"# the podman runtime's state, written by the harness for this run (xtask/src/runtime/podman/mod.rs)
{files}{bridge}{podman} info > /dev/null 2>&1 &
"#,
        files = config::write_script(&layout, cni::GUEST_BRIDGE, cni::GUEST_PREFIX),
        bridge = cni::guest_bridge_script(),
        podman = podman_command(&layout).join(" "),
    )
}

/// `env CONTAINERS_CONF=... CONTAINERS_STORAGE_CONF=... podman`: Podman with the run's state.
/// Podman passes the settings on to the `podman container cleanup` that conmon runs when a
/// container exits (as options), and conmon inherits the environment.
fn podman_command(layout: &Layout) -> Vec<String> {
    argv(&[
        "env",
        &format!("CONTAINERS_CONF={}", layout.containers_conf().display()),
        &format!("CONTAINERS_STORAGE_CONF={}", layout.storage_conf().display()),
        "podman",
    ])
}

/// How the run's pods are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// `podman pod create`, then `podman run --pod` for each app.
    Cli,
    /// `podman kube play` of the pod's Kubernetes manifest: the whole pod at once.
    KubePlay,
}

pub struct Podman {
    /// Where the run's Podman state is: written by the guest's init at boot (it goes with the
    /// guest), or our own on this machine.
    state: Lifecycle<PrivatePodman>,
    front: Front,
    layout: Layout,
    /// `podman 4.3.1`.
    version: String,
    /// Whether the host's cgroups are v2 only: there Podman 4.3's pod cgroup (made by its
    /// cgroupfs manager) denies every device to what runs under it, and runc then cannot reopen
    /// /dev/null for the infra container ("error reopening /dev/null inside container: open
    /// /dev/null: operation not permitted"), so each container gets a cgroup of its own
    /// (`--share-parent=false`). On v1 the pod's cgroup is their parent, as Podman's default.
    cgroup_v2: bool,
    /// The pods the run made (Podman's names), by their infra container's name.
    pods: Mutex<BTreeMap<String, String>>,
    /// The run's app containers, each with its pod's infra container.
    apps: Mutex<BTreeMap<String, String>>,
    /// Podman's name for a container, where it is not the scenario's (`podman kube play`'s).
    aliases: Mutex<BTreeMap<String, String>>,
    run_id: String,
    /// The run's: what ends its calls early (but for cleanup and `podman_make`, handed `Cancel::NEVER`).
    cancel: Cancel,
    // Last, so that it drops after the state: the guest outlives what runs in it.
    host: Box<dyn Host>,
}

/// What `podman container inspect` says of a container, as far as the harness reads it.
#[derive(serde::Deserialize)]
struct Inspected {
    #[serde(rename = "State")]
    state: InspectedState,
    #[serde(rename = "NetworkSettings", default)]
    network: InspectedNetwork,
}

#[derive(serde::Deserialize)]
struct InspectedState {
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Running")]
    running: bool,
    #[serde(rename = "Pid")]
    pid: u32,
    #[serde(rename = "ExitCode")]
    exit_code: i64,
}

#[derive(Default, serde::Deserialize)]
struct InspectedNetwork {
    #[serde(rename = "Networks", default)]
    networks: BTreeMap<String, InspectedEndpoint>,
}

#[derive(serde::Deserialize)]
struct InspectedEndpoint {
    #[serde(rename = "IPAddress", default)]
    ip_address: String,
}

impl Inspected {
    fn container_state(&self) -> ContainerState {
        // A container that was created but never ran says ExitCode 0 too: only an exited one has exited.
        let exited = matches!(self.state.status.as_str(), "exited" | "stopped");
        ContainerState {
            running: self.state.running,
            pid: Some(self.state.pid).filter(|pid| *pid > 0 && self.state.running),
            exit_code: exited.then_some(self.state.exit_code),
        }
    }
}

impl Podman {
    pub fn start(host: Box<dyn Host>, run: &RunIdentity, front: Front, progress: &Progress) -> Result<Podman> {
        let started = Instant::now();
        let (place, layout) = match host.placement() {
            Placement::Vm => (Place::InGuest, guest_layout()),
            Placement::Host => {
                let private = PrivatePodman::create(run.cancel)?;
                let layout = private.layout.clone();
                (Place::Private(private), layout)
            }
        };
        let specifics = Specifics {
            // Podman has no daemon that could die under the run.
            guest_daemon: None,
            // Through Podman first, in the guest too, so that its events say the pods' end.
            guest_containers: GuestContainers::RemovedFirst,
            logs: SavedLogs { what: "Podman's events", files: vec![(layout.events_log(), "podman-events.log")] },
        };
        let mut podman = Podman {
            state: Lifecycle::new(place, specifics, run),
            front,
            layout,
            version: String::new(),
            cgroup_v2: false,
            pods: Mutex::default(),
            apps: Mutex::default(),
            aliases: Mutex::default(),
            run_id: run.run_id.to_string(),
            cancel: run.cancel,
            host,
        };
        let version = podman
            .podman_ok(&["version", "--format", "{{.Client.Version}}"], START_TIMEOUT)
            .context("podman does not run: install it with apt-get install podman")?;
        podman.version = format!("podman {}", version.stdout_text().trim());
        let unified = argv(&["test", "-e", "/sys/fs/cgroup/cgroup.controllers"]);
        podman.cgroup_v2 = podman.host.run(&unified, QUICK, podman.cancel)?.success();
        if front == Front::KubePlay && podman.cgroup_v2 {
            bail!(
                "podman kube play puts a pod's containers under the pod's cgroup, which Podman 4.3's cgroupfs manager makes \
                 deny every device on cgroup v2 (runc then cannot reopen /dev/null), and it takes no --share-parent: \
                 run podman-kube on a host with cgroup v1 (this machine: --on host)"
            );
        }
        progress.done(&lifecycle::ready_line(podman.host.as_ref(), &podman.version), started);
        Ok(podman)
    }

    /// `podman ARGUMENTS` with the run's state.
    fn podman(&self, arguments: &[&str]) -> Vec<String> {
        let mut command = podman_command(&self.layout);
        command.extend(arguments.iter().map(|argument| argument.to_string()));
        command
    }

    /// Runs podman and fails unless it exits 0.
    fn podman_ok(&self, arguments: &[&str], timeout: Duration) -> Result<Output> {
        self.host.run(&self.podman(arguments), timeout, self.cancel)?.ok()
    }

    /// Runs a podman call that makes or remakes a pod's containers, and fails unless it exits 0.
    /// On this machine a Ctrl-C lets it finish (it takes well under a second here): Podman has
    /// no daemon, and one killed half way through a pod's start leaves the pod's network
    /// namespace and veth with nothing that knows of them (seen in CI). In the guest, which
    /// goes with everything in it, a Ctrl-C stops it at once.
    fn podman_make(&self, arguments: &[&str], timeout: Duration) -> Result<Output> {
        let cancel = match self.host.placement() {
            Placement::Host => Cancel::NEVER,
            Placement::Vm => self.cancel,
        };
        self.host.run(&self.podman(arguments), timeout, cancel)?.ok()
    }

    /// An image copy (load, save): on this machine in a mount namespace of its own with a
    /// tmpfs on /var/lib, since containers/image keeps a blob cache in
    /// /var/lib/containers/cache that no setting moves. (The guest's /var/lib goes with it.)
    fn image_copy(&self, arguments: &[&str]) -> Vec<String> {
        let podman = self.podman(arguments);
        match self.host.placement() {
            Placement::Vm => podman,
            Placement::Host => {
                let mut command = argv(&[
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "sh",
                    "-c",
                    "mount -t tmpfs podlab-image-copy /var/lib && exec \"$@\"",
                    "sh",
                ]);
                command.extend(podman);
                command
            }
        }
    }

    /// On this machine, the pod's cgroup goes under the run's own, which the run removes with
    /// whatever is left in it.
    fn cgroup_parent(&self) -> Option<String> {
        let on_this_machine = self.host.placement() == Placement::Host;
        on_this_machine.then(|| format!("--cgroup-parent=/{}", names::cgroup(std::process::id())))
    }

    /// Podman's name for a container the scenario names.
    fn podman_name(&self, container: &str) -> String {
        lock(&self.aliases).get(container).cloned().unwrap_or_else(|| container.to_string())
    }

    /// What Podman says of each container (by the scenario's names), in their order.
    fn inspect(&self, containers: &[String]) -> Result<Vec<Inspected>> {
        let names: Vec<String> = containers.iter().map(|container| self.podman_name(container)).collect();
        let mut arguments = vec!["container", "inspect"];
        arguments.extend(names.iter().map(String::as_str));
        let output = self.host.run(&self.podman(&arguments), QUICK, self.cancel)?;
        if !output.success() {
            bail!("podman container inspect {}: {}", names.join(" "), output.stderr.trim());
        }
        let inspected: Vec<Inspected> =
            serde_json::from_slice(&output.stdout).context("podman container inspect's answer")?;
        if inspected.len() != containers.len() {
            bail!("podman container inspect described {} containers for {}", inspected.len(), containers.len());
        }
        Ok(inspected)
    }

    /// The pod of a container of the run, by its infra container's name.
    fn infra_of(&self, container: &str) -> Option<String> {
        if lock(&self.pods).contains_key(container) {
            return Some(container.to_string());
        }
        lock(&self.apps).get(container).cloned()
    }

    /// The pod through `podman kube play` of its manifest, written into the run's artifacts
    /// (the guest sees them): every container at once, named by Podman, which the run then
    /// learns (the infra container by the pod's id, each app as `<pod>-<name>`).
    fn play(&self, pod: &PodPlan) -> Result<()> {
        let manifest = crate::plan::manifest::render(pod)?;
        let file = self.state.run_dir().join(format!("{}.pod.json", pod.name));
        std::fs::write(&file, serde_json::to_string_pretty(&manifest)?)
            .with_context(|| format!("cannot write {}", file.display()))?;
        lock(&self.pods).insert(pod.infra.name.clone(), pod.name.clone());
        for app in &pod.apps {
            lock(&self.apps).insert(app.name.clone(), pod.infra.name.clone());
            lock(&self.aliases).insert(app.name.clone(), format!("{}-{}", pod.name, app.name));
        }
        let file = file.display().to_string();
        self.podman_make(&["kube", "play", "--network", cni::NETWORK, &file], START_TIMEOUT)
            .with_context(|| format!("cannot play the manifest of pod {}", pod.name))?;
        let infra = self.podman_ok(&["pod", "inspect", "--format", "{{.InfraContainerID}}", &pod.name], QUICK)?;
        lock(&self.aliases).insert(pod.infra.name.clone(), infra.stdout_text().trim().to_string());
        super::wait_for_program(self, &pod.infra.name, START_TIMEOUT, self.cancel)
    }

    /// `--infra-command`, when the scenario gives the infra container a command or arguments:
    /// the whole command line (the image's entrypoint, as Podman has it, then the arguments),
    /// one string that Podman splits at spaces (so no word of it may hold one: see
    /// `podman_cannot_make`).
    fn infra_command(&self, infra: &ContainerPlan) -> Result<Option<String>> {
        if infra.command.is_none() && infra.args.is_empty() {
            return Ok(None);
        }
        let mut words = match &infra.command {
            Some(command) => command.clone(),
            None => {
                let format = "{{json .Config.Entrypoint}}";
                let output = self.podman_ok(&["image", "inspect", "--format", format, &infra.image], QUICK)?;
                serde_json::from_slice(&output.stdout).context("the infra image's entrypoint")?
            }
        };
        words.extend(infra.args.iter().cloned());
        Ok(Some(words.join(" ")))
    }

    fn read_logs(&self, container: &str, timestamps: bool) -> Result<Logs> {
        let name = self.podman_name(container);
        let mut arguments = vec!["logs"];
        if timestamps {
            arguments.push("--timestamps");
        }
        arguments.push(&name);
        let output = self.podman_ok(&arguments, QUICK)?;
        Ok(Logs { stdout: output.stdout, stderr: output.stderr })
    }
}

impl Runtime for Podman {
    fn kind(&self) -> &'static RuntimeKind {
        match self.front {
            Front::Cli => &KIND,
            Front::KubePlay => &KUBE_KIND,
        }
    }

    fn details(&self) -> String {
        let whose = match self.state.place() {
            Place::InGuest => "state in the guest",
            Place::Shared { .. } | Place::Private(_) => "a private state",
        };
        let front = match self.front {
            Front::Cli => "",
            Front::KubePlay => ", pods by kube play",
        };
        format!("{} ({}, {whose}{front})", self.kind().name, self.version)
    }

    fn host(&self) -> &dyn Host {
        self.host.as_ref()
    }

    fn import(&self, image: &ImageTar) -> Result<()> {
        let archive = docker_archive(image, self.cancel)?;
        let load = self.image_copy(&["load", "--quiet", "--input", &archive.display().to_string()]);
        self.host
            .run(&load, Duration::from_secs(300), self.cancel)?
            .ok()
            .with_context(|| format!("cannot import image {}", image.name))?;
        Ok(())
    }

    fn start_infra(&self, pod: &PodPlan) -> Result<()> {
        if self.front == Front::KubePlay {
            return self.play(pod);
        }
        let infra = &pod.infra;
        let name = &pod.name;
        let label = format!("{}={}", names::RUN_LABEL, self.run_id);
        let mut shared = vec!["net", "ipc", "uts"];
        if !pod.apps.is_empty() && pod.apps.iter().all(|app| app.joins(NamespaceKind::Pid)) {
            shared.push("pid");
        }
        let shared = shared.join(",");
        let mut arguments: Vec<String> = argv(&[
            "pod",
            "create",
            "--name",
            name,
            "--infra-name",
            &infra.name,
            "--infra-image",
            &infra.image,
            "--share",
            &shared,
            "--network",
            cni::NETWORK,
            "--dns",
            "127.0.0.1",
            "--label",
            &label,
        ]);
        arguments.extend(self.cgroup_parent());
        if self.cgroup_v2 {
            arguments.push("--share-parent=false".to_string());
        }
        if let Some(hostname) = &pod.hostname {
            arguments.push(format!("--hostname={hostname}"));
        }
        arguments.extend(pod.sysctls.iter().map(|(name, value)| format!("--sysctl={name}={value}")));
        arguments.extend(
            infra.publish.iter().map(|mapping| format!("--publish=127.0.0.1:{}:{}", mapping.host, mapping.container)),
        );
        if let Some(command) = self.infra_command(infra)? {
            arguments.push(format!("--infra-command={command}"));
        }
        let words: Vec<&str> = arguments.iter().map(String::as_str).collect();
        self.podman_make(&words, START_TIMEOUT).with_context(|| format!("cannot create pod {name}"))?;
        lock(&self.pods).insert(infra.name.clone(), name.clone());
        self.podman_make(&["pod", "start", name], START_TIMEOUT).with_context(|| format!("cannot start pod {name}"))?;
        super::wait_for_program(self, &infra.name, START_TIMEOUT, self.cancel)
    }

    fn start_app(&self, pod: &PodPlan, app: &ContainerPlan) -> Result<()> {
        if self.front == Front::KubePlay {
            // `podman kube play` started it with the pod.
            return super::wait_for_program(self, &app.name, START_TIMEOUT, self.cancel);
        }
        let infra = &pod.infra.name;
        let label = format!("{}={}", names::RUN_LABEL, self.run_id);
        let mut arguments: Vec<String> =
            argv(&["run", "--detach", "--pod", &pod.name, "--name", &app.name, "--pull", "never", "--label", &label]);
        if self.cgroup_v2 {
            // Not under the pod's cgroup (see `cgroup_v2`): under the run's, as the pod is.
            arguments.extend(self.cgroup_parent());
        }
        // The pod shares pid only when every app joins it: each app that differs says so.
        let pod_shares_pid = pod.apps.iter().all(|app| app.joins(NamespaceKind::Pid));
        match (app.joins(NamespaceKind::Pid), pod_shares_pid) {
            (true, false) => arguments.push(format!("--pid=container:{infra}")),
            (false, true) => arguments.push("--pid=private".to_string()),
            _ => {}
        }
        if !app.joins(NamespaceKind::Ipc) {
            arguments.push("--ipc=private".to_string());
        }
        for (source, target) in &app.files {
            arguments.push(format!("--volume={}:{target}:ro", source.display()));
        }
        arguments.extend(app.user.iter().map(|user| format!("--user={user}")));
        arguments.extend(app.env.iter().map(|(name, value)| format!("--env={name}={value}")));
        arguments.extend(app.restart.map(|policy| format!("--restart={}", policy.name())));
        if let Some(command) = &app.command {
            arguments.push(format!("--entrypoint={}", serde_json::to_string(command)?));
        }
        arguments.push(app.image.clone());
        arguments.extend(app.args.iter().cloned());
        let words: Vec<&str> = arguments.iter().map(String::as_str).collect();
        lock(&self.apps).insert(app.name.clone(), infra.clone());
        self.podman_make(&words, START_TIMEOUT).with_context(|| format!("cannot start container {}", app.name))?;
        super::wait_for_program(self, &app.name, START_TIMEOUT, self.cancel)
    }

    /// A pod in the list goes with all its containers in one `podman pod rm` (under TCG each
    /// podman call costs a start of the CLI).
    fn remove(&self, containers: &[String], timeout: Duration) -> Result<()> {
        let seconds = "0";
        let pods: Vec<(String, String)> =
            containers.iter().filter_map(|name| Some((name.clone(), lock(&self.pods).get(name)?.clone()))).collect();
        for (infra, name) in &pods {
            let remove = self.podman(&["pod", "rm", "--force", "--ignore", "--time", seconds, name]);
            self.host
                .run(&remove, timeout, Cancel::NEVER)?
                .ok()
                .with_context(|| format!("cannot remove pod {name}"))?;
            lock(&self.pods).remove(infra);
            lock(&self.apps).retain(|_, pod| pod != infra);
        }
        let apps: Vec<String> =
            containers.iter().filter(|name| lock(&self.apps).contains_key(*name)).cloned().collect();
        if !apps.is_empty() {
            let names: Vec<String> = apps.iter().map(|app| self.podman_name(app)).collect();
            let mut arguments = vec!["rm", "--force", "--ignore", "--time", seconds];
            arguments.extend(names.iter().map(String::as_str));
            self.host
                .run(&self.podman(&arguments), timeout, Cancel::NEVER)?
                .ok()
                .context("cannot remove containers")?;
            lock(&self.apps).retain(|name, _| !apps.contains(name));
        }
        lock(&self.aliases).retain(|name, _| !containers.contains(name));
        Ok(())
    }

    fn exec(&self, container: &str, command: &[String], timeout: Duration) -> Result<Output> {
        let name = self.podman_name(container);
        let mut arguments = vec!["exec", name.as_str()];
        arguments.extend(command.iter().map(String::as_str));
        let mut output = self.host.run(&self.podman(&arguments), timeout, self.cancel)?;
        output.argv = command.to_vec();
        Ok(output)
    }

    fn states(&self, containers: &[String]) -> Result<BTreeMap<String, ContainerState>> {
        if let Some(stranger) = containers.iter().find(|name| self.infra_of(name).is_none()) {
            bail!("no container {stranger} in this pod");
        }
        let inspected = self.inspect(containers)?;
        Ok(containers.iter().cloned().zip(inspected.iter().map(Inspected::container_state)).collect())
    }

    fn pod_address(&self, infra: &str) -> Result<String> {
        let inspected = self.inspect(&[infra.to_string()])?;
        inspected
            .first()
            .and_then(|container| container.network.networks.get(cni::NETWORK))
            .map(|endpoint| endpoint.ip_address.clone())
            .filter(|ip| !ip.is_empty())
            .with_context(|| format!("the infra container {infra} has no address on the {} network", cni::NETWORK))
    }

    fn signal(&self, container: &str, signal: Signal) -> Result<()> {
        let number = (signal as i32).to_string();
        self.podman_ok(&["kill", "--signal", &number, &self.podman_name(container)], QUICK)
            .with_context(|| format!("cannot send {signal} to {container}"))?;
        Ok(())
    }

    fn stop(&self, container: &str, grace: Duration) -> Result<()> {
        let seconds = grace.as_secs().to_string();
        self.podman_ok(&["stop", "--time", &seconds, &self.podman_name(container)], grace + QUICK)?;
        Ok(())
    }

    /// `podman restart`: the same container, stopped (SIGTERM, then SIGKILL after 10 s) and
    /// started again in its pod.
    fn restart(&self, container: &str) -> Result<()> {
        let seconds = RESTART_GRACE_SECONDS.to_string();
        let timeout = Duration::from_secs(RESTART_GRACE_SECONDS) + START_TIMEOUT;
        self.podman_make(&["restart", "--time", &seconds, &self.podman_name(container)], timeout)?;
        super::wait_for_program(self, container, START_TIMEOUT, self.cancel)
    }

    fn logs(&self, container: &str) -> Result<Logs> {
        self.read_logs(container, false)
    }

    fn stamped_logs(&self, container: &str) -> Result<Logs> {
        self.read_logs(container, true)
    }

    fn image_user(&self, image: &str) -> Result<String> {
        let output = self.podman_ok(&["image", "inspect", "--format", "{{.Config.User}}", image], QUICK)?;
        Ok(output.stdout_text().trim().to_string())
    }

    fn image_files(&self, image: &str) -> Result<Vec<String>> {
        let saved = self.layout.scratch().join(format!("save-{}.tar", std::process::id()));
        let saved_text = saved.display().to_string();
        let save = self.image_copy(&["save", "--quiet", "--format", "docker-archive", "--output", &saved_text, image]);
        let bytes = self.host.run(&save, QUICK, self.cancel)?.ok().and_then(|_| {
            let cat = self.host.run(&argv(&["cat", &saved_text]), QUICK, self.cancel)?.ok()?;
            Ok(cat.stdout)
        });
        let _ = self.host.run(&argv(&["rm", "-f", &saved_text]), QUICK, Cancel::NEVER);
        super::saved_image::files_of_saved_image(&bytes?)
    }

    fn shell_environment(&self) -> Vec<(String, String)> {
        vec![
            ("CONTAINERS_CONF".to_string(), self.layout.containers_conf().display().to_string()),
            ("CONTAINERS_STORAGE_CONF".to_string(), self.layout.storage_conf().display().to_string()),
        ]
    }

    fn shell_hints(&self) -> Vec<String> {
        vec!["podman pod ps".to_string(), "podman ps --all --pod".to_string(), "podman exec -it nginx sh".to_string()]
    }

    fn trouble(&self) -> Option<String> {
        self.state.trouble(self.host.as_ref())
    }

    fn shut_down(&mut self) -> Result<()> {
        lifecycle::shut_down(self)
    }
}

impl OwnsDaemon for Podman {
    type Private = PrivatePodman;

    fn lifecycle(&self) -> &Lifecycle<PrivatePodman> {
        &self.state
    }

    fn lifecycle_mut(&mut self) -> &mut Lifecycle<PrivatePodman> {
        &mut self.state
    }

    /// Through Podman, so that CNI takes each pod's network down (its veth, lease and portmap
    /// rules) and conmon goes; the state is the run's own, so all of it.
    fn remove_run_containers(&self) -> Result<()> {
        let remove = self.podman(&["pod", "rm", "--all", "--force", "--time", "0"]);
        self.host.run(&remove, QUICK, Cancel::NEVER).and_then(Output::ok).context("cannot remove the run's pods")?;
        Ok(())
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        lifecycle::shut_down_on_drop(self);
    }
}
