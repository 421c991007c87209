//! A scenario's pod as a Kubernetes Pod manifest (`v1`, as JSON, which is YAML too): what a
//! kubelet would be given to make it. `podman kube play` runs it (the `podman-kube` runtime),
//! `cargo xtask test --print-manifest` shows it, and a cluster would take the same.
//!
//! A manifest says less than a scenario can: the infra container is the node's sandbox (its
//! image is the runtime's setting, never the pod's), every container shares the pod's network
//! and IPC, PID is shared by all or none, and the restart policy is the pod's. A pod that
//! needs more has no manifest, and the reason says why.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::{ContainerPlan, PodPlan};
use crate::scenario::{NamespaceKind, RestartPolicy};

/// The manifest of `pod` (named as the pod is), or why Kubernetes cannot say it.
pub fn render(pod: &PodPlan) -> Result<Value> {
    let infra = &pod.infra;
    let sandbox_image = crate::names::PAUSE_IMAGE;
    if infra.image != sandbox_image {
        bail!(
            "the pod sandbox's image is the node's setting (here the pause under test, {sandbox_image}), not {}",
            infra.image
        );
    }
    if !infra.is_image_as_it_is() {
        bail!(
            "the infra container is the node's pod sandbox: a Pod manifest gives it no command, arguments, environment, \
             files, user or restart policy"
        );
    }
    if pod.apps.is_empty() {
        bail!("a Pod manifest has at least one container besides the sandbox");
    }
    for app in &pod.apps {
        if !app.joins(NamespaceKind::Net) || !app.joins(NamespaceKind::Ipc) {
            bail!(
                "{} does not share both `net` and `ipc`: a Pod's containers always share its network and IPC",
                app.name
            );
        }
    }
    let share_pid = pod.apps[0].joins(NamespaceKind::Pid);
    if pod.apps.iter().any(|app| app.joins(NamespaceKind::Pid) != share_pid) {
        bail!("some containers share `pid` and some do not: a Pod's shareProcessNamespace is all or none");
    }
    let restart = pod.apps[0].restart;
    if pod.apps.iter().any(|app| app.restart != restart) {
        bail!("the containers have different restart policies: a Pod has one");
    }
    let mut spec = json!({
        "shareProcessNamespace": share_pid,
        "restartPolicy": restart_policy(restart),
        // Nothing is looked up outside the machine: the same DNS as every runtime's containers.
        "dnsPolicy": "None",
        "dnsConfig": { "nameservers": ["127.0.0.1"] },
    });
    if let Some(hostname) = &pod.hostname {
        spec["hostname"] = json!(hostname);
    }
    if !pod.sysctls.is_empty() {
        let sysctls: Vec<Value> =
            pod.sysctls.iter().map(|(name, value)| json!({ "name": name, "value": value })).collect();
        spec["securityContext"] = json!({ "sysctls": sysctls });
    }
    let mut volumes = Vec::new();
    let mut containers = Vec::new();
    for (index, app) in pod.apps.iter().enumerate() {
        // The infra container's ports are the pod's: a Pod declares them on a container.
        let ports = if index == 0 { infra.publish.as_slice() } else { &[] };
        containers.push(container(app, ports, &mut volumes)?);
    }
    spec["containers"] = json!(containers);
    if !volumes.is_empty() {
        spec["volumes"] = json!(volumes);
    }
    Ok(json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": pod.name }, "spec": spec }))
}

fn restart_policy(policy: Option<RestartPolicy>) -> &'static str {
    match policy {
        None | Some(RestartPolicy::No) => "Never",
        Some(RestartPolicy::Always) => "Always",
        Some(RestartPolicy::OnFailure) => "OnFailure",
    }
}

fn container(app: &ContainerPlan, ports: &[crate::scenario::PortMapping], volumes: &mut Vec<Value>) -> Result<Value> {
    let mut container = json!({ "name": app.name, "image": app.image, "imagePullPolicy": "Never" });
    if let Some(command) = &app.command {
        container["command"] = json!(command);
    }
    if !app.args.is_empty() {
        container["args"] = json!(app.args);
    }
    if !app.env.is_empty() {
        let env: Vec<Value> = app.env.iter().map(|(name, value)| json!({ "name": name, "value": value })).collect();
        container["env"] = json!(env);
    }
    if let Some(user) = &app.user {
        container["securityContext"] = run_as(user)?;
    }
    if !ports.is_empty() {
        let ports: Vec<Value> = ports
            .iter()
            .map(|port| {
                json!({ "containerPort": port.container, "hostPort": port.host, "hostIP": "127.0.0.1", "protocol": "TCP" })
            })
            .collect();
        container["ports"] = json!(ports);
    }
    let mut mounts = Vec::new();
    for (source, target) in &app.files {
        let volume = format!("{}-file-{}", app.name, volumes.len());
        volumes.push(json!({ "name": volume, "hostPath": { "path": source, "type": "File" } }));
        mounts.push(json!({ "name": volume, "mountPath": target, "readOnly": true }));
    }
    if !mounts.is_empty() {
        container["volumeMounts"] = json!(mounts);
    }
    Ok(container)
}

/// `1000` or `1000:1000` as a container's securityContext; names mean nothing to Kubernetes.
fn run_as(user: &str) -> Result<Value> {
    let number = |text: &str| {
        text.parse::<u32>()
            .map_err(|_| anyhow::anyhow!("user `{user}`: a Pod manifest takes numeric ids (runAsUser, runAsGroup)"))
    };
    Ok(match user.split_once(':') {
        Some((uid, gid)) => json!({ "runAsUser": number(uid)?, "runAsGroup": number(gid)? }),
        None => json!({ "runAsUser": number(user)? }),
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::plan::{Ports, plan};

    fn seed_pod() -> PodPlan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed-pod.json");
        let scenario =
            crate::scenario::parse(&std::fs::read_to_string(&path).unwrap(), &path, crate::runtime::fact_keys())
                .unwrap();
        plan(&scenario, &Ports::as_written(), crate::images::host_files).unwrap()
    }

    #[test]
    fn the_seed_pod_as_kubernetes_would_be_given_it() {
        let manifest = render(&seed_pod()).unwrap();
        assert_eq!(manifest["kind"], "Pod");
        let spec = &manifest["spec"];
        assert_eq!(spec["hostname"], "seed-pod");
        assert_eq!(spec["shareProcessNamespace"], true);
        assert_eq!(spec["restartPolicy"], "Never");
        let names: Vec<&str> = spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|container| container["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["nginx", "ghost"], "no infra container: the sandbox is the node's");
        assert_eq!(
            spec["containers"][0]["ports"][0],
            json!({ "containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1", "protocol": "TCP" })
        );
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Never");
    }

    #[test]
    fn what_a_manifest_cannot_say_is_refused_with_the_reason() {
        let mut pod = seed_pod();
        pod.apps[1].joins.retain(|kind| *kind != NamespaceKind::Pid);
        assert!(render(&pod).unwrap_err().to_string().contains("shareProcessNamespace is all or none"));
        let mut pod = seed_pod();
        pod.infra.args = vec!["-v".to_string()];
        assert!(render(&pod).unwrap_err().to_string().contains("the node's pod sandbox"));
        let mut pod = seed_pod();
        pod.infra.image = "podlab/nginx".to_string();
        assert!(render(&pod).unwrap_err().to_string().contains("the node's setting"));
        let mut pod = seed_pod();
        pod.apps[0].user = Some("www-data".to_string());
        assert!(render(&pod).unwrap_err().to_string().contains("numeric ids"));
    }

    #[test]
    fn files_are_read_only_host_paths() {
        let mut pod = seed_pod();
        pod.apps[0].files = vec![(PathBuf::from("/work/scenarios/files/x.conf"), "/etc/x.conf".to_string())];
        pod.apps[0].user = Some("101:101".to_string());
        let manifest = render(&pod).unwrap();
        let container = &manifest["spec"]["containers"][0];
        assert_eq!(
            container["volumeMounts"][0],
            json!({ "name": "nginx-file-0", "mountPath": "/etc/x.conf", "readOnly": true })
        );
        assert_eq!(
            manifest["spec"]["volumes"][0]["hostPath"],
            json!({ "path": "/work/scenarios/files/x.conf", "type": "File" })
        );
        assert_eq!(container["securityContext"], json!({ "runAsUser": 101, "runAsGroup": 101 }));
    }
}
