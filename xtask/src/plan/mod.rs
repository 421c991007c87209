//! A scenario's pod as any runtime will make it. Everything that can be decided before any
//! container exists is decided here, at load time: which namespaces each app shares,
//! which files to mount (resolved to real paths), which ports to publish, and in whose
//! network namespace.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

pub mod manifest;
mod ports;

pub use ports::{FIRST_OF_OUR_OWN, Ports};

use crate::scenario::{self, Container, NamespaceKind, PortMapping, RestartPolicy, Scenario};

/// The pod: its infra container (which owns the namespaces) and the apps that join them.
#[derive(Clone, Debug)]
pub struct PodPlan {
    /// The pod's own name where a runtime names pods (Podman, a Pod manifest): the scenario's
    /// file name without `.json`.
    pub name: String,
    /// Set on the infra container, as Kubernetes sets a pod's hostname.
    pub hostname: Option<String>,
    /// Namespaced kernel settings, set where the pod's namespaces are made.
    pub sysctls: Vec<(String, String)>,
    pub infra: ContainerPlan,
    pub apps: Vec<ContainerPlan>,
    /// The ports published for the ports the scenario wrote.
    pub ports: Ports,
    /// Count the connections the pod opens outside itself from its infra container's start
    /// (a scenario with an `outbound` step).
    pub count_outbound: bool,
}

#[derive(Clone, Debug)]
pub struct ContainerPlan {
    pub name: String,
    pub image: String,
    /// For an app: the infra container's namespaces it joins. Empty for the infra container.
    pub joins: Vec<NamespaceKind>,
    /// Files of this machine mounted read-only: (real path, path in the container).
    pub files: Vec<(PathBuf, String)>,
    pub user: Option<String>,
    pub env: Vec<(String, String)>,
    pub restart: Option<RestartPolicy>,
    /// Replaces the image's entrypoint and command.
    pub command: Option<Vec<String>>,
    /// Appended to the image's entrypoint.
    pub args: Vec<String>,
    /// Ports published on 127.0.0.1 (TCP), for a container with a network namespace of its
    /// own: the host port as the run publishes it (see `Ports`).
    pub publish: Vec<PortMapping>,
}

impl ContainerPlan {
    pub fn joins(&self, kind: NamespaceKind) -> bool {
        self.joins.contains(&kind)
    }

    /// Whether the scenario gives it nothing but its image: no command, arguments,
    /// environment, files, user or restart policy (all a pod sandbox can be given).
    pub fn is_image_as_it_is(&self) -> bool {
        self.command.is_none()
            && self.args.is_empty()
            && self.env.is_empty()
            && self.files.is_empty()
            && self.user.is_none()
            && self.restart.is_none()
    }
}

impl PodPlan {
    /// The images its containers run.
    pub fn images(&self) -> Vec<&str> {
        std::iter::once(&self.infra).chain(&self.apps).map(|container| container.image.as_str()).collect()
    }

    /// Every container, apps last to first, then the infra container: the order to remove them.
    pub fn names_for_removal(&self) -> Vec<String> {
        self.apps.iter().rev().chain(std::iter::once(&self.infra)).map(|container| container.name.clone()).collect()
    }
}

/// What a container of an image mounts read-only from the host beyond what its scenario gives,
/// as (host path, container path): the images' fact (`images::host_files`), handed to `plan`.
pub type HostFiles = fn(&str) -> Result<Vec<(PathBuf, String)>>;

/// The pod of `scenario`, publishing on `ports`, with each image's `host_files`, or what is
/// wrong with it (naming the file and field). Whether a runtime can make it is that runtime's
/// `cannot_make` (`runtime::RUNTIMES`).
pub fn plan(scenario: &Scenario, ports: &Ports, host_files: HostFiles) -> Result<PodPlan> {
    let pod = &scenario.pod;
    let in_file = |field: String| format!("{}: {field}", scenario.path.display());
    let infra =
        container_plan(scenario, &pod.infra, ports, host_files).with_context(|| in_file("pod.infra".to_string()))?;
    let mut apps = Vec::new();
    for (index, container) in pod.containers.iter().enumerate() {
        let field = format!("pod.containers[{index}]");
        let app = container_plan(scenario, container, ports, host_files).with_context(|| in_file(field.clone()))?;
        if app.joins(NamespaceKind::Net) && !app.publish.is_empty() {
            bail!(
                "{}.publish: {} joins the infra container's network, so its ports are the infra container's: \
                 publish them there",
                in_file(field),
                app.name
            );
        }
        apps.push(app);
    }
    let name = scenario.path.file_stem().map_or("pod".into(), |stem| stem.to_string_lossy().into_owned());
    Ok(PodPlan {
        name,
        hostname: pod.hostname.clone(),
        sysctls: pod.sysctls.iter().map(|(name, value)| (name.clone(), value.clone())).collect(),
        infra,
        apps,
        ports: ports.clone(),
        count_outbound: scenario.steps.iter().any(|step| step.format().counts_outbound()),
    })
}

/// Every host port a scenario writes, for `Ports`.
pub fn written_ports(scenario: &Scenario) -> Vec<u16> {
    let containers = std::iter::once(&scenario.pod.infra).chain(&scenario.pod.containers);
    containers.flat_map(|container| container.publish.iter().map(|mapping| mapping.host)).collect()
}

fn container_plan(
    scenario: &Scenario,
    container: &Container,
    ports: &Ports,
    host_files: HostFiles,
) -> Result<ContainerPlan> {
    let mut files = Vec::new();
    for (target, source) in &container.files {
        let source = scenario::file_source(scenario, source);
        let source = source.canonicalize().with_context(|| format!("files: cannot find {}", source.display()))?;
        files.push((source, target.clone()));
    }
    // What the image needs from the host (the ghost stand-in's node), unless the scenario
    // mounts something else there.
    let image_files = host_files(&container.image)?;
    files.extend(image_files.into_iter().filter(|(_, target)| !container.files.contains_key(target)));
    Ok(ContainerPlan {
        name: container.name.clone(),
        image: container.image.clone(),
        joins: container.share.clone(),
        files,
        user: container.user.clone(),
        env: container.env.iter().map(|(name, value)| (name.clone(), value.clone())).collect(),
        restart: container.restart,
        command: container.command.clone(),
        args: container.args.clone().unwrap_or_default(),
        publish: container
            .publish
            .iter()
            .map(|mapping| PortMapping { host: ports.published(mapping.host), container: mapping.container })
            .collect(),
    })
}

#[cfg(test)]
pub mod tests {
    use std::path::Path;

    use super::*;

    /// For plans of images that need nothing of the host.
    pub fn no_host_files(_image: &str) -> Result<Vec<(PathBuf, String)>> {
        Ok(Vec::new())
    }

    /// The pod of a scenario whose one app shares `share` (a JSON list) and has `extra` fields.
    pub fn plan_with(share: &str, extra: &str) -> PodPlan {
        plan(&scenario_with(share, extra), &Ports::as_written(), no_host_files).unwrap()
    }

    fn scenario_with(share: &str, extra: &str) -> Scenario {
        let text = format!(
            r#"{{
  "schema_version": 1,
  "description": "plan",
  "pod": {{
    "hostname": "pod",
    "infra": {{ "name": "pause", "image": "podlab/pause", "publish": ["8080:80"] }},
    "containers": [ {{ "name": "app", "image": "podlab/nginx", "share": {share}{extra} }} ]
  }},
  "steps": [ {{ "same-ip": {{ "containers": ["pause", "app"] }} }} ]
}}"#
        );
        scenario::parse(&text, Path::new("scenarios/plan.json"), crate::runtime::fact_keys()).unwrap()
    }

    #[test]
    fn a_pod_as_docker_makes_it() {
        let plan = plan(&scenario_with(r#"["net", "ipc", "pid"]"#, ""), &Ports::as_written(), no_host_files).unwrap();
        assert_eq!(plan.name, "plan");
        assert_eq!(plan.hostname.as_deref(), Some("pod"));
        assert_eq!(plan.infra.publish, [PortMapping { host: 8080, container: 80 }]);
        assert_eq!(plan.apps[0].joins, [NamespaceKind::Net, NamespaceKind::Ipc, NamespaceKind::Pid]);
        assert_eq!(plan.names_for_removal(), ["app", "pause"]);
    }

    #[test]
    fn ports_belong_to_the_network_namespace() {
        let as_written = Ports::as_written();
        let error = plan(&scenario_with(r#"["net"]"#, r#", "publish": ["9090:90"]"#), &as_written, no_host_files)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("scenarios/plan.json: pod.containers[0].publish: app joins"), "{error}");
        let scenario = scenario_with(r#"["ipc"]"#, r#", "publish": ["9090:90"]"#);
        assert_eq!(plan(&scenario, &as_written, no_host_files).unwrap().apps[0].publish[0].host, 9090);
        // On this machine each run publishes on ports of its own; the plan says which.
        assert_eq!(written_ports(&scenario), [8080, 9090]);
        let own_ports = Ports::chosen([(8080, 20001), (9090, 20002)].into());
        let own = plan(&scenario, &own_ports, no_host_files).unwrap();
        assert_eq!(own.apps[0].publish[0], PortMapping { host: 20002, container: 90 });
        assert_eq!(own.infra.publish[0].host, 20001);
    }
}
