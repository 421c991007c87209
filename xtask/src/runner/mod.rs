//! Runs one scenario: creates its pod, runs its steps in order (stopping at the first that
//! fails), saves every container's logs, and removes the pod, whatever happened.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::engine::{DockerCli, Engine};
use crate::scenario::Scenario;
use crate::side_by_side;

mod pod;

pub use pod::create as create_pod;
mod steps;
pub mod tar;

/// What one step did.
#[derive(Clone, Debug)]
pub struct StepReport {
    pub index: usize,
    pub summary: String,
    pub outcome: StepOutcome,
    pub duration: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Passed,
    Failed(String),
    /// An earlier step failed (or the pod could not be created).
    NotRun,
}

/// What one scenario did.
#[derive(Clone, Debug)]
pub struct ScenarioReport {
    pub name: String,
    pub description: String,
    pub steps: Vec<StepReport>,
    /// A failure outside the steps: the pod could not be created or removed.
    pub pod_error: Option<String>,
    pub duration: Duration,
    pub logs_dir: PathBuf,
}

impl ScenarioReport {
    pub fn passed(&self) -> bool {
        self.pod_error.is_none() && self.steps.iter().all(|step| step.outcome == StepOutcome::Passed)
    }

    /// The failure message a trial prints: what was expected, what came, where the logs are.
    pub fn failure_message(&self) -> String {
        let mut message = String::new();
        if let Some(error) = &self.pod_error {
            message.push_str(&format!("pod: {error}\n"));
        }
        for step in &self.steps {
            if let StepOutcome::Failed(reason) = &step.outcome {
                message.push_str(&format!(
                    "step {} ({}) failed:\n  {}\n",
                    step.index,
                    step.summary,
                    reason.replace('\n', "\n  ")
                ));
            }
        }
        message.push_str(&format!("logs: {}", self.logs_dir.display()));
        message
    }
}

pub fn run_scenario(
    engine: &dyn Engine,
    run_label: &str,
    scenario: &Scenario,
    name: &str,
    logs_dir: &Path,
) -> ScenarioReport {
    let started = Instant::now();
    let docker = DockerCli { engine };
    let mut report = ScenarioReport {
        name: name.to_string(),
        description: scenario.description.clone(),
        steps: Vec::new(),
        pod_error: None,
        duration: Duration::ZERO,
        logs_dir: logs_dir.to_path_buf(),
    };
    let pod_created = pod::create(&docker, scenario, run_label);
    // Fault injection for xtask/tests/harness.rs: a panic with a live pod, to show that the
    // engine's cleanup still removes everything.
    if std::env::var_os("PODLAB_INJECT_PANIC").is_some() {
        panic!("injected panic (PODLAB_INJECT_PANIC is set), with the pod of {name} running");
    }
    if let Err(error) = &pod_created {
        report.pod_error = Some(format!("{error:#}"));
    }
    let mut context = steps::StepContext {
        engine,
        docker: DockerCli { engine },
        infra: &scenario.pod.infra.name,
        variables: Default::default(),
    };
    let mut failed = pod_created.is_err();
    for (index, step) in scenario.steps.iter().enumerate() {
        let step_started = Instant::now();
        let outcome = if failed {
            StepOutcome::NotRun
        } else {
            match steps::run(&mut context, step) {
                Ok(()) => StepOutcome::Passed,
                Err(error) => {
                    failed = true;
                    StepOutcome::Failed(format!("{error:#}"))
                }
            }
        };
        report.steps.push(StepReport {
            index,
            summary: steps::summary(step),
            outcome,
            duration: step_started.elapsed(),
        });
    }
    if let Err(error) = save_logs(&docker, scenario, logs_dir) {
        eprintln!("warning: {name}: cannot save container logs: {error:#}");
    }
    if let Err(error) = remove_pod(&docker, scenario) {
        report.pod_error.get_or_insert(format!("cannot remove the pod: {error:#}"));
    }
    report.duration = started.elapsed();
    report
}

/// `docker logs` of every container into `logs_dir/<container>.log`, all at once.
fn save_logs(docker: &DockerCli, scenario: &Scenario, logs_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(logs_dir)?;
    side_by_side::each(&pod::names_for_removal(scenario), |name| save_log(docker, name, logs_dir))?;
    Ok(())
}

fn save_log(docker: &DockerCli, name: &str, logs_dir: &Path) -> Result<()> {
    // A container that never started has no logs: nothing to save.
    let Ok((stdout, stderr)) = docker.logs_apart(name, true) else { return Ok(()) };
    let text = format!("--- stdout ---\n{}--- stderr ---\n{stderr}", String::from_utf8_lossy(&stdout));
    std::fs::write(logs_dir.join(format!("{name}.log")), text)?;
    Ok(())
}

fn remove_pod(docker: &DockerCli, scenario: &Scenario) -> Result<()> {
    docker.remove(&pod::names_for_removal(scenario), Duration::from_secs(60))
}
