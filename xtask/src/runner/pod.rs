//! Creates a scenario's pod the way the seed's `docker run` commands do: the infra
//! container first (shareable IPC, published ports on 127.0.0.1, no outside DNS), then each
//! app container joining the infra container's namespaces.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::engine::DockerCli;
use crate::scenario::{self, Container, NamespaceKind, RestartPolicy, Scenario};
use crate::side_by_side;

/// Deadline of one `docker run -d`: image already present, so seconds at most.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

pub fn create(docker: &DockerCli, scenario: &Scenario, run_label: &str) -> Result<()> {
    let pod = &scenario.pod;
    let mut infra = Run::new(scenario, &pod.infra, run_label)?;
    // Docker's default IPC mode is private: without this, `--ipc=container:` fails.
    infra.ipc = Some("shareable".to_string());
    infra.dns = true;
    infra.hostname.clone_from(&pod.hostname);
    infra.publish = pod.infra.publish.iter().map(ToString::to_string).collect();
    infra.start(docker)?;
    let mut apps = Vec::new();
    for container in &pod.containers {
        let mut app = Run::new(scenario, container, run_label)?;
        let joined = Some(format!("container:{}", pod.infra.name));
        for kind in &container.share {
            match kind {
                NamespaceKind::Net => app.network.clone_from(&joined),
                NamespaceKind::Ipc => app.ipc.clone_from(&joined),
                NamespaceKind::Pid => app.pid.clone_from(&joined),
                NamespaceKind::Uts => bail!(
                    "{}: container {} asks to share uts, which Docker cannot do (it copies the hostname, \
                     not the namespace); drop `uts` from its share list for the docker engine",
                    scenario.path.display(),
                    container.name
                ),
                other => bail!("{}: cannot share {}", scenario.path.display(), other.proc_name()),
            }
        }
        if !container.share.contains(&NamespaceKind::Net) {
            app.dns = true;
            app.publish = container.publish.iter().map(ToString::to_string).collect();
        }
        apps.push(app);
    }
    // The app containers only need the infra container, not each other: started side by
    // side, their starts (about 1.3 s each under TCG) overlap on the guest's two CPUs.
    side_by_side::each(&apps, |app| app.start(docker))?;
    Ok(())
}

/// One `docker run --detach`: what the container gets, said once, then given to the daemon's
/// API (create, start) or, where the engine has no API, to the docker CLI.
#[derive(Debug, Default)]
struct Run {
    name: String,
    image: String,
    label: (String, String),
    /// `source:target:ro`
    binds: Vec<String>,
    user: Option<String>,
    env: Vec<String>,
    restart: Option<&'static str>,
    entrypoint: Option<String>,
    command: Vec<String>,
    /// `container:<infra>`, or None for Docker's bridge.
    network: Option<String>,
    ipc: Option<String>,
    pid: Option<String>,
    /// DNS pointed at 127.0.0.1: nothing is looked up outside.
    dns: bool,
    hostname: Option<String>,
    /// `HOST_PORT:CONTAINER_PORT`, published on 127.0.0.1.
    publish: Vec<String>,
}

impl Run {
    /// What every container gets: name, label, files, user, environment, restart policy, command.
    fn new(scenario: &Scenario, container: &Container, run_label: &str) -> Result<Run> {
        let (label_key, label_value) = run_label.split_once('=').context("a run label is key=value")?;
        let mut binds = Vec::new();
        for (target, source) in &container.files {
            let source = scenario::file_source(scenario, source);
            let source = source.canonicalize().with_context(|| format!("cannot find {}", source.display()))?;
            binds.push(format!("{}:{target}:ro", source.display()));
        }
        let mut command = Vec::new();
        if let Some(words) = &container.command {
            command.extend(words[1..].iter().cloned());
        }
        command.extend(container.args.iter().flatten().cloned());
        Ok(Run {
            name: container.name.clone(),
            image: container.image.clone(),
            label: (label_key.to_string(), label_value.to_string()),
            binds,
            user: container.user.clone(),
            env: container.env.iter().map(|(name, value)| format!("{name}={value}")).collect(),
            restart: container.restart.map(|policy| match policy {
                RestartPolicy::No => "no",
                RestartPolicy::Always => "always",
                RestartPolicy::OnFailure => "on-failure",
            }),
            entrypoint: container.command.as_ref().map(|words| words[0].clone()),
            command,
            ..Run::default()
        })
    }

    fn start(&self, docker: &DockerCli) -> Result<()> {
        docker
            .run_detached(&self.name, &self.api_body()?, &self.cli_arguments(), RUN_TIMEOUT)
            .with_context(|| format!("cannot start container {}", self.name))
    }

    /// The body of `POST /containers/create`, as the CLI would send it for `cli_arguments`.
    fn api_body(&self) -> Result<serde_json::Value> {
        let mut exposed = serde_json::Map::new();
        let mut bindings = serde_json::Map::new();
        for mapping in &self.publish {
            let (host_port, container_port) = split_mapping(mapping)?;
            exposed.insert(container_port.clone(), serde_json::json!({}));
            bindings.insert(container_port, serde_json::json!([{ "HostIp": "127.0.0.1", "HostPort": host_port }]));
        }
        let mut body = serde_json::json!({
            "Image": self.image,
            "Labels": { self.label.0.clone(): self.label.1 },
            "Env": self.env,
            "ExposedPorts": exposed,
            "HostConfig": {
                "Binds": self.binds,
                "PortBindings": bindings,
                "RestartPolicy": { "Name": self.restart.unwrap_or("no") },
            },
        });
        let host_config = &mut body["HostConfig"];
        if let Some(network) = &self.network {
            host_config["NetworkMode"] = network.clone().into();
        }
        if let Some(ipc) = &self.ipc {
            host_config["IpcMode"] = ipc.clone().into();
        }
        if let Some(pid) = &self.pid {
            host_config["PidMode"] = pid.clone().into();
        }
        if self.dns {
            host_config["Dns"] = serde_json::json!(["127.0.0.1"]);
        }
        if let Some(user) = &self.user {
            body["User"] = user.clone().into();
        }
        if let Some(hostname) = &self.hostname {
            body["Hostname"] = hostname.clone().into();
        }
        if let Some(entrypoint) = &self.entrypoint {
            body["Entrypoint"] = serde_json::json!([entrypoint]);
        }
        if !self.command.is_empty() {
            body["Cmd"] = serde_json::json!(self.command);
        }
        Ok(body)
    }

    /// `docker run --detach ...` with the same meaning as `api_body`.
    fn cli_arguments(&self) -> Vec<String> {
        let mut arguments = vec![
            "run".to_string(),
            "--detach".to_string(),
            format!("--name={}", self.name),
            format!("--label={}={}", self.label.0, self.label.1),
        ];
        arguments.extend(self.binds.iter().map(|bind| format!("--volume={bind}")));
        arguments.extend(self.user.iter().map(|user| format!("--user={user}")));
        arguments.extend(self.env.iter().map(|pair| format!("--env={pair}")));
        arguments.extend(self.restart.iter().map(|policy| format!("--restart={policy}")));
        arguments.extend(self.network.iter().map(|network| format!("--network={network}")));
        arguments.extend(self.ipc.iter().map(|ipc| format!("--ipc={ipc}")));
        arguments.extend(self.pid.iter().map(|pid| format!("--pid={pid}")));
        if self.dns {
            arguments.push("--dns=127.0.0.1".to_string());
        }
        arguments.extend(self.hostname.iter().map(|hostname| format!("--hostname={hostname}")));
        arguments.extend(self.publish.iter().map(|mapping| format!("--publish=127.0.0.1:{mapping}")));
        arguments.extend(self.entrypoint.iter().map(|entrypoint| format!("--entrypoint={entrypoint}")));
        arguments.push(self.image.clone());
        arguments.extend(self.command.iter().cloned());
        arguments
    }
}

/// `8080:80` (or `8080:80/udp`) into the host port and Docker's `80/tcp` key.
fn split_mapping(mapping: &str) -> Result<(String, String)> {
    let (host_port, container_port) =
        mapping.split_once(':').with_context(|| format!("`{mapping}` is not HOST_PORT:CONTAINER_PORT"))?;
    let container_port =
        if container_port.contains('/') { container_port.to_string() } else { format!("{container_port}/tcp") };
    Ok((host_port.to_string(), container_port))
}

/// Every container of the pod, apps first. (They are removed side by side, as `docker rm`
/// with several names does too: a forced removal of the infra container while apps still
/// use its namespaces works.)
pub fn names_for_removal(scenario: &Scenario) -> Vec<String> {
    let pod = &scenario.pod;
    pod.containers.iter().rev().chain(std::iter::once(&pod.infra)).map(|container| container.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two renderings of the seed pod's nginx say the same thing: joined namespaces,
    /// the label, the read-only file, the entrypoint and its arguments.
    #[test]
    fn api_and_cli_say_the_same() {
        let workspace = crate::pause_build::workspace_root();
        let seed = scenario::load_all(&workspace.join("scenarios"))
            .unwrap()
            .into_iter()
            .find(|scenario| scenario.path.ends_with("seed-pod.json"))
            .unwrap();
        let nginx = seed.pod.containers.iter().find(|container| container.name == "nginx").unwrap();
        let mut run = Run::new(&seed, nginx, "podlab.run=r1").unwrap();
        run.network = Some("container:pause".to_string());
        run.publish = vec!["8080:80".to_string()];
        let body = run.api_body().unwrap();
        assert_eq!(body["Labels"]["podlab.run"], "r1");
        assert_eq!(body["HostConfig"]["NetworkMode"], "container:pause");
        assert_eq!(body["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"], "8080");
        assert_eq!(body["ExposedPorts"]["80/tcp"], serde_json::json!({}));
        let cli = run.cli_arguments();
        assert!(cli.contains(&"--network=container:pause".to_string()), "{cli:?}");
        assert!(cli.contains(&"--publish=127.0.0.1:8080:80".to_string()), "{cli:?}");
        for bind in body["HostConfig"]["Binds"].as_array().unwrap() {
            let bind = bind.as_str().unwrap();
            assert!(bind.ends_with(":ro") && cli.contains(&format!("--volume={bind}")), "{bind} vs {cli:?}");
        }
        assert_eq!((cli.last().unwrap().as_str(), &body["Cmd"]), ("podlab/nginx", &serde_json::Value::Null));
        run.entrypoint = Some("sleep".to_string());
        run.command = vec!["3600".to_string()];
        let (body, cli) = (run.api_body().unwrap(), run.cli_arguments());
        assert_eq!((&body["Entrypoint"], &body["Cmd"]), (&serde_json::json!(["sleep"]), &serde_json::json!(["3600"])));
        assert!(cli.ends_with(&["--entrypoint=sleep".to_string(), "podlab/nginx".to_string(), "3600".to_string()]));
        assert_eq!(split_mapping("53:53/udp").unwrap(), ("53".to_string(), "53/udp".to_string()));
        assert!(split_mapping("8080").is_err());
    }
}
