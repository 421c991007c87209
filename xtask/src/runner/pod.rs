//! Creates a scenario's pod the way the seed's `docker run` commands do: the infra
//! container first (shareable IPC, published ports on 127.0.0.1, no outside DNS), then each
//! app container joining the infra container's namespaces.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::engine::DockerCli;
use crate::scenario::{self, Container, NamespaceKind, RestartPolicy, Scenario};

/// Deadline of one `docker run -d`: image already present, so seconds at most.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

pub fn create(docker: &DockerCli, scenario: &Scenario, run_label: &str) -> Result<()> {
    let pod = &scenario.pod;
    let mut infra = common_arguments(scenario, &pod.infra, run_label)?;
    // Docker's default IPC mode is private: without this, `--ipc=container:` fails.
    infra.push("--ipc=shareable".to_string());
    infra.push("--dns=127.0.0.1".to_string());
    if let Some(hostname) = &pod.hostname {
        infra.push(format!("--hostname={hostname}"));
    }
    for mapping in &pod.infra.publish {
        infra.push(format!("--publish=127.0.0.1:{mapping}"));
    }
    start(docker, &pod.infra, infra)?;
    let mut apps = Vec::new();
    for container in &pod.containers {
        let mut app = common_arguments(scenario, container, run_label)?;
        let infra_name = &pod.infra.name;
        for kind in &container.share {
            match kind {
                NamespaceKind::Net => app.push(format!("--network=container:{infra_name}")),
                NamespaceKind::Ipc => app.push(format!("--ipc=container:{infra_name}")),
                NamespaceKind::Pid => app.push(format!("--pid=container:{infra_name}")),
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
            app.push("--dns=127.0.0.1".to_string());
            for mapping in &container.publish {
                app.push(format!("--publish=127.0.0.1:{mapping}"));
            }
        }
        apps.push((container, app));
    }
    // The app containers only need the infra container, not each other: started side by
    // side, their starts (about 1.3 s each under TCG) overlap on the guest's two CPUs.
    let started: Vec<Result<()>> = std::thread::scope(|scope| {
        let starts: Vec<_> =
            apps.into_iter().map(|(container, app)| scope.spawn(move || start(docker, container, app))).collect();
        starts.into_iter().map(|start| start.join().unwrap_or_else(|_| bail!("a container start panicked"))).collect()
    });
    started.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(())
}

/// Arguments every container gets: name, label, files, user, environment, restart policy.
fn common_arguments(scenario: &Scenario, container: &Container, run_label: &str) -> Result<Vec<String>> {
    let mut arguments = vec![
        "run".to_string(),
        "--detach".to_string(),
        format!("--name={}", container.name),
        format!("--label={run_label}"),
    ];
    for (target, source) in &container.files {
        let source = scenario::file_source(scenario, source);
        let source = source.canonicalize().with_context(|| format!("cannot find {}", source.display()))?;
        arguments.push(format!("--volume={}:{target}:ro", source.display()));
    }
    if let Some(user) = &container.user {
        arguments.push(format!("--user={user}"));
    }
    for (name, value) in &container.env {
        arguments.push(format!("--env={name}={value}"));
    }
    if let Some(policy) = container.restart {
        let policy = match policy {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
        };
        arguments.push(format!("--restart={policy}"));
    }
    if let Some(command) = &container.command {
        arguments.push(format!("--entrypoint={}", command[0]));
    }
    Ok(arguments)
}

fn start(docker: &DockerCli, container: &Container, mut arguments: Vec<String>) -> Result<()> {
    arguments.push(container.image.clone());
    if let Some(command) = &container.command {
        arguments.extend(command[1..].iter().cloned());
    }
    if let Some(args) = &container.args {
        arguments.extend(args.iter().cloned());
    }
    docker.call(&arguments, RUN_TIMEOUT)?.ok().with_context(|| format!("cannot start container {}", container.name))?;
    Ok(())
}

/// Every container of the pod, apps first. (They are removed side by side, as `docker rm`
/// with several names does too: a forced removal of the infra container while apps still
/// use its namespaces works.)
pub fn names_for_removal(scenario: &Scenario) -> Vec<String> {
    let pod = &scenario.pod;
    pod.containers.iter().rev().chain(std::iter::once(&pod.infra)).map(|container| container.name.clone()).collect()
}
