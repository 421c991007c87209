//! A planned container as Docker makes it, the way the seed's `docker run` commands do: the
//! infra container with shareable IPC, published ports on 127.0.0.1 and no outside DNS; each
//! app with `--net/--ipc/--pid=container:<infra>`. Said once (`Run`), then rendered either as
//! the body of `POST /containers/create` or, where only the CLI reaches the daemon, as
//! `docker run --detach` arguments.

use serde_json::json;

use crate::names;
use crate::plan::{ContainerPlan, PodPlan};
use crate::scenario::{NamespaceKind, PortMapping, RestartPolicy};

/// One `docker run --detach`.
#[derive(Debug, Default)]
pub struct Run {
    pub name: String,
    image: String,
    /// The run id, under the label `names::RUN_LABEL`.
    run_id: String,
    /// `source:target:ro`
    binds: Vec<String>,
    user: Option<String>,
    env: Vec<String>,
    restart: Option<&'static str>,
    entrypoint: Option<String>,
    command: Vec<String>,
    /// `container:<infra>`, or None for the daemon's bridge.
    network: Option<String>,
    ipc: Option<String>,
    pid: Option<String>,
    /// DNS pointed at 127.0.0.1: nothing is looked up outside.
    dns: bool,
    hostname: Option<String>,
    /// `name=value`, on the infra container: its namespaces are the pod's.
    sysctls: Vec<(String, String)>,
    publish: Vec<PortMapping>,
}

impl Run {
    /// The infra container: it owns the namespaces, so it is what the apps' namespaces join.
    /// `name_prefix` goes before every container name (see `Docker`).
    pub fn infra(pod: &PodPlan, name_prefix: &str, run_id: &str) -> Run {
        let mut run = Run::common(&pod.infra, name_prefix, run_id);
        // Docker's default IPC mode is private: without this, `--ipc=container:` fails.
        run.ipc = Some("shareable".to_string());
        run.dns = true;
        run.hostname.clone_from(&pod.hostname);
        run.sysctls.clone_from(&pod.sysctls);
        run
    }

    /// An app in the infra container's namespaces it joins (the plan has refused `uts`).
    pub fn app(pod: &PodPlan, app: &ContainerPlan, name_prefix: &str, run_id: &str) -> Run {
        let mut run = Run::common(app, name_prefix, run_id);
        let joined = Some(format!("container:{name_prefix}{}", pod.infra.name));
        if app.joins(NamespaceKind::Net) {
            run.network.clone_from(&joined);
        } else {
            run.dns = true;
        }
        if app.joins(NamespaceKind::Ipc) {
            run.ipc.clone_from(&joined);
        }
        if app.joins(NamespaceKind::Pid) {
            run.pid.clone_from(&joined);
        }
        run
    }

    /// What every container gets: name, label, files, user, environment, restart policy, command.
    fn common(container: &ContainerPlan, name_prefix: &str, run_id: &str) -> Run {
        let mut command = Vec::new();
        if let Some(words) = &container.command {
            command.extend(words[1..].iter().cloned());
        }
        command.extend(container.args.iter().cloned());
        Run {
            name: format!("{name_prefix}{}", container.name),
            image: container.image.clone(),
            run_id: run_id.to_string(),
            binds: container.files.iter().map(|(source, target)| format!("{}:{target}:ro", source.display())).collect(),
            user: container.user.clone(),
            env: container.env.iter().map(|(name, value)| format!("{name}={value}")).collect(),
            restart: container.restart.map(RestartPolicy::name),
            entrypoint: container.command.as_ref().map(|words| words[0].clone()),
            command,
            publish: container.publish.clone(),
            ..Run::default()
        }
    }

    /// The body of `POST /containers/create`, as the CLI would send it for `cli_arguments`.
    pub fn api_body(&self) -> serde_json::Value {
        let mut exposed = serde_json::Map::new();
        let mut bindings = serde_json::Map::new();
        for published in &self.publish {
            let key = format!("{}/tcp", published.container);
            exposed.insert(key.clone(), json!({}));
            bindings.insert(key, json!([{ "HostIp": "127.0.0.1", "HostPort": published.host.to_string() }]));
        }
        let mut body = json!({
            "Image": self.image,
            "Labels": { names::RUN_LABEL: self.run_id },
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
            host_config["Dns"] = json!(["127.0.0.1"]);
        }
        if !self.sysctls.is_empty() {
            host_config["Sysctls"] = self.sysctls.iter().map(|(name, value)| (name.clone(), json!(value))).collect();
        }
        if let Some(user) = &self.user {
            body["User"] = user.clone().into();
        }
        if let Some(hostname) = &self.hostname {
            body["Hostname"] = hostname.clone().into();
        }
        if let Some(entrypoint) = &self.entrypoint {
            body["Entrypoint"] = json!([entrypoint]);
        }
        if !self.command.is_empty() {
            body["Cmd"] = json!(self.command);
        }
        body
    }

    /// `docker run --detach ...` with the same meaning as `api_body`.
    pub fn cli_arguments(&self) -> Vec<String> {
        let mut arguments = vec![
            "run".to_string(),
            "--detach".to_string(),
            format!("--name={}", self.name),
            format!("--label={}={}", names::RUN_LABEL, self.run_id),
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
        arguments.extend(self.sysctls.iter().map(|(name, value)| format!("--sysctl={name}={value}")));
        arguments.extend(self.publish.iter().map(|published| format!("--publish=127.0.0.1:{published}")));
        arguments.extend(self.entrypoint.iter().map(|entrypoint| format!("--entrypoint={entrypoint}")));
        arguments.push(self.image.clone());
        arguments.extend(self.command.iter().cloned());
        arguments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two renderings of the seed pod's containers say the same thing: joined namespaces,
    /// the label, the read-only file, the published port, the entrypoint and its arguments.
    #[test]
    fn api_and_cli_say_the_same() {
        let workspace = crate::pause_build::workspace_root();
        let seed = crate::scenario::load_all(&workspace.join("scenarios"), crate::runtime::fact_keys())
            .unwrap()
            .into_iter()
            .find(|scenario| scenario.path.ends_with("seed-pod.json"))
            .unwrap();
        let mut pod = crate::plan::plan(&seed, &crate::plan::Ports::as_written(), crate::images::host_files).unwrap();
        let infra = Run::infra(&pod, "", "r1");
        let (body, cli) = (infra.api_body(), infra.cli_arguments());
        assert_eq!(body["Labels"]["podlab.run"], "r1");
        assert_eq!(body["HostConfig"]["IpcMode"], "shareable");
        assert_eq!(body["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"], "8080");
        assert_eq!(body["ExposedPorts"]["80/tcp"], json!({}));
        assert!(cli.contains(&"--publish=127.0.0.1:8080:80".to_string()), "{cli:?}");
        assert!(cli.contains(&"--hostname=seed-pod".to_string()), "{cli:?}");
        pod.sysctls.push(("kernel.shm_rmid_forced".to_string(), "1".to_string()));
        let run = Run::infra(&pod, "", "r1");
        let (body, cli) = (run.api_body(), run.cli_arguments());
        assert_eq!(body["HostConfig"]["Sysctls"]["kernel.shm_rmid_forced"], "1");
        assert!(cli.contains(&"--sysctl=kernel.shm_rmid_forced=1".to_string()), "{cli:?}");

        let nginx = pod.apps.iter().position(|app| app.name == "nginx").unwrap();
        let run = Run::app(&pod, &pod.apps[nginx], "", "r1");
        let (body, cli) = (run.api_body(), run.cli_arguments());
        assert_eq!(body["HostConfig"]["NetworkMode"], "container:pause");
        assert!(cli.contains(&"--network=container:pause".to_string()), "{cli:?}");
        assert!(cli.contains(&"--pid=container:pause".to_string()), "{cli:?}");
        for bind in body["HostConfig"]["Binds"].as_array().unwrap() {
            let bind = bind.as_str().unwrap();
            assert!(bind.ends_with(":ro") && cli.contains(&format!("--volume={bind}")), "{bind} vs {cli:?}");
        }
        assert_eq!((cli.last().unwrap().as_str(), &body["Cmd"]), ("podlab/nginx", &serde_json::Value::Null));

        pod.apps[nginx].command = Some(vec!["sleep".to_string()]);
        pod.apps[nginx].args = vec!["3600".to_string()];
        let run = Run::app(&pod, &pod.apps[nginx], "podlab-7-", "r1");
        let (body, cli) = (run.api_body(), run.cli_arguments());
        assert_eq!(
            (run.name.as_str(), &body["HostConfig"]["NetworkMode"]),
            ("podlab-7-nginx", &json!("container:podlab-7-pause"))
        );
        assert_eq!((&body["Entrypoint"], &body["Cmd"]), (&json!(["sleep"]), &json!(["3600"])));
        assert!(cli.ends_with(&["--entrypoint=sleep".to_string(), "podlab/nginx".to_string(), "3600".to_string()]));
    }
}
