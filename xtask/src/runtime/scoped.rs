//! One pod's containers under names of their own, in a runtime that the run's pods share:
//! scenarios run side by side, and most of them name their containers `pause` and `nginx`.
//! Steps name a container as the scenario wrote it; the runtime sees `<pod>-<name>`
//! (`seed-pod-nginx`), the pod being the scenario's file name. Pods of Podman and manifests
//! already carry the pod's name; the containers are scoped on every runtime all the same, so
//! that no runtime needs to know whether pods run side by side.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::Signal;

use super::{ContainerState, Logs, Runtime, RuntimeKind};
use crate::command::Output;
use crate::host::Host;
use crate::images::ImageTar;
use crate::plan::{ContainerPlan, PodPlan};

pub struct Scoped<'runtime> {
    runtime: &'runtime dyn Runtime,
    /// `seed-pod-`
    prefix: String,
}

impl<'runtime> Scoped<'runtime> {
    /// The containers of `pod` (a `PodPlan`'s name) in `runtime`.
    pub fn new(runtime: &'runtime dyn Runtime, pod: &str) -> Scoped<'runtime> {
        Scoped { runtime, prefix: format!("{pod}-") }
    }

    /// The runtime's name of a container the scenario names `container`.
    fn name(&self, container: &str) -> String {
        format!("{}{container}", self.prefix)
    }

    fn names(&self, containers: &[String]) -> Vec<String> {
        containers.iter().map(|container| self.name(container)).collect()
    }

    fn container(&self, container: &ContainerPlan) -> ContainerPlan {
        ContainerPlan { name: self.name(&container.name), ..container.clone() }
    }

    fn pod(&self, pod: &PodPlan) -> PodPlan {
        PodPlan {
            infra: self.container(&pod.infra),
            apps: pod.apps.iter().map(|app| self.container(app)).collect(),
            ..pod.clone()
        }
    }
}

impl Runtime for Scoped<'_> {
    fn kind(&self) -> &'static RuntimeKind {
        self.runtime.kind()
    }

    fn details(&self) -> String {
        self.runtime.details()
    }

    fn host(&self) -> &dyn Host {
        self.runtime.host()
    }

    fn import(&self, image: &ImageTar) -> Result<()> {
        self.runtime.import(image)
    }

    fn start_infra(&self, pod: &PodPlan) -> Result<()> {
        self.runtime.start_infra(&self.pod(pod))
    }

    fn start_app(&self, pod: &PodPlan, app: &ContainerPlan) -> Result<()> {
        self.runtime.start_app(&self.pod(pod), &self.container(app))
    }

    fn remove(&self, containers: &[String], timeout: Duration) -> Result<()> {
        self.runtime.remove(&self.names(containers), timeout)
    }

    fn exec(&self, container: &str, argv: &[String], timeout: Duration) -> Result<Output> {
        self.runtime.exec(&self.name(container), argv, timeout)
    }

    fn states(&self, containers: &[String]) -> Result<BTreeMap<String, ContainerState>> {
        let states = self.runtime.states(&self.names(containers))?;
        // Back to the names the scenario wrote: failures name containers as the steps do.
        let unscoped = |name: String| name.strip_prefix(&self.prefix).map(str::to_string).unwrap_or(name);
        Ok(states.into_iter().map(|(name, state)| (unscoped(name), state)).collect())
    }

    fn pod_address(&self, infra: &str) -> Result<String> {
        self.runtime.pod_address(&self.name(infra))
    }

    fn signal(&self, container: &str, signal: Signal) -> Result<()> {
        self.runtime.signal(&self.name(container), signal)
    }

    fn stop(&self, container: &str, grace: Duration) -> Result<()> {
        self.runtime.stop(&self.name(container), grace)
    }

    fn restart(&self, container: &str) -> Result<()> {
        self.runtime.restart(&self.name(container))
    }

    fn logs(&self, container: &str) -> Result<Logs> {
        self.runtime.logs(&self.name(container))
    }

    fn stamped_logs(&self, container: &str) -> Result<Logs> {
        self.runtime.stamped_logs(&self.name(container))
    }

    fn image_user(&self, image: &str) -> Result<String> {
        self.runtime.image_user(image)
    }

    fn image_files(&self, image: &str) -> Result<Vec<String>> {
        self.runtime.image_files(image)
    }

    fn shell_environment(&self) -> Vec<(String, String)> {
        self.runtime.shell_environment()
    }

    fn shell_hints(&self) -> Vec<String> {
        self.runtime.shell_hints()
    }

    fn trouble(&self) -> Option<String> {
        self.runtime.trouble()
    }

    /// The runtime is the run's, not the pod's: the run shuts it down.
    fn shut_down(&mut self) -> Result<()> {
        Ok(())
    }
}
