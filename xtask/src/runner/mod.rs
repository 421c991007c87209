//! Runs one scenario, one way: its planned pod is started, its steps run in order (stopping at
//! the first that fails), every container's logs are saved, and the pod is removed, whatever
//! happened. The outcome is a `ScenarioReport`.

use std::path::Path;
use std::time::Instant;

use crate::cancel::Cancel;
use crate::plan::PodPlan;
use crate::pod::Pod;
use crate::report::{ScenarioReport, StepOutcome, StepReport};
use crate::runtime::Runtime;
use crate::scenario::Scenario;

mod steps;

/// `the pod now: pause exited 137 (...), nginx running`, when a container of the pod is no
/// longer running: a step that fails because the pod died under it should say so.
fn pod_if_broken(runtime: &dyn Runtime, plan: &PodPlan) -> String {
    let names: Vec<String> =
        std::iter::once(&plan.infra).chain(&plan.apps).map(|container| container.name.clone()).collect();
    let Ok(states) = runtime.states(&names) else { return String::new() };
    if states.values().all(|state| state.running) {
        return String::new();
    }
    let described: Vec<String> = names
        .iter()
        .filter_map(|name| {
            let state = states.get(name)?;
            Some(match state.exit_code {
                Some(code) if !state.running => format!("{name} exited {}", crate::runtime::describe_exit_code(code)),
                _ => format!("{name} running"),
            })
        })
        .collect();
    format!("\nthe pod now: {}", described.join(", "))
}

pub fn run_scenario(
    runtime: &dyn Runtime,
    scenario: &Scenario,
    plan: &PodPlan,
    name: &str,
    logs_dir: &Path,
    cancel: Cancel,
) -> ScenarioReport {
    let started = Instant::now();
    let mut report = ScenarioReport::new(name, &scenario.description, logs_dir);
    let mut pod = Pod::new(runtime, plan);
    let pod_started = pod.start(cancel);
    // What is wrong with the runtime itself goes beside a failure: it is the first thing to know.
    let with_trouble = |failure: String| {
        let troubles = [runtime.trouble(), runtime.host().trouble()];
        std::iter::once(failure).chain(troubles.into_iter().flatten()).collect::<Vec<_>>().join("\n")
    };
    if let Err(error) = &pod_started {
        report.pod_error = Some(with_trouble(format!("{error:#}")));
    }
    let mut context = steps::StepContext { runtime, pod: plan, variables: Default::default(), cancel };
    let mut failed = pod_started.is_err();
    for (index, step) in scenario.steps.iter().enumerate() {
        let step_started = Instant::now();
        let outcome = if failed {
            StepOutcome::NotRun
        } else {
            match steps::run(&mut context, step) {
                Ok(()) => StepOutcome::Passed,
                Err(error) => {
                    failed = true;
                    let failure = format!("{error:#}{}", pod_if_broken(runtime, plan));
                    StepOutcome::Failed { failure: with_trouble(failure) }
                }
            }
        };
        report.steps.push(StepReport {
            index,
            summary: steps::summary_on(step, runtime.kind()),
            fact: step.format().fact().map(str::to_string),
            outcome,
            duration: step_started.elapsed(),
        });
    }
    if let Err(error) = pod.save_logs(logs_dir) {
        eprintln!("warning: {name}: cannot save container logs: {error:#}");
    }
    if let Err(error) = pod.remove() {
        report.pod_error.get_or_insert(format!("cannot remove the pod: {error:#}"));
    }
    report.conclude(started.elapsed());
    report
}
