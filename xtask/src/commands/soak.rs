//! `cargo xtask soak N [test options]`: the whole suite N times, one run after another, each a
//! `cargo xtask test` of its own (its own lab, boot included). A line per run, then each
//! scenario that failed: in how many runs, the first line of its first failure, and that
//! run's artifacts. This is how a false alarm is found, and how their rate is measured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use super::test::{EXIT_INTERRUPTED, EXIT_SCENARIO_FAILED};
use crate::cancel::Cancel;
use crate::{EXIT_HARNESS_ERROR, command, names, pause_build, report};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each run's output goes to target/podlab/soak-<id>/run-<n>.log, and its artifacts to its own
target/podlab/<run>/. Exit codes: 0 every run passed; 101 a scenario failed in some run; 2 a run
could not start or clean up; 130 interrupted.")]
pub struct Options {
    /// How many runs
    #[arg(value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub runs: usize,
    /// Options for every run, as `cargo xtask test` takes them (--on host, --pause-bin PATH, a filter, ...)
    #[arg(value_name = "TEST OPTIONS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub test_options: Vec<String>,
}

/// `cargo xtask test`'s options, to check them before the first run.
#[derive(Parser)]
#[command(name = "cargo xtask test", bin_name = "cargo xtask test")]
struct TestCommand {
    #[command(flatten)]
    options: super::test::Options,
}

/// What one run of `cargo xtask test` did, read from its log and report (`compare` reads its
/// runs the same way).
pub(super) struct RunOutcome {
    pub exit_code: Option<i32>,
    pub duration: Duration,
    pub artifacts: Option<PathBuf>,
    /// Scenarios that passed.
    pub passed: Vec<String>,
    /// Failed scenarios and the first line of each one's failure.
    pub failures: Vec<(String, String)>,
    /// Scenarios the runtime cannot make, and why.
    pub skipped: Vec<(String, String)>,
    pub harness_error: Option<String>,
}

pub fn run(options: Options) -> Result<u8> {
    let test_options =
        TestCommand::try_parse_from(std::iter::once("test".to_string()).chain(options.test_options.clone()))
            .map_err(|error| anyhow::anyhow!("the test options: {}", error.to_string().trim_start_matches("error: ")))?
            .options;
    let cancel = Cancel::on_signals()?;
    let workspace = pause_build::workspace_root();
    let soak_dir = names::artifacts_dir(workspace, &format!("soak-{}", names::run_id()));
    std::fs::create_dir_all(&soak_dir).with_context(|| format!("cannot create {}", soak_dir.display()))?;
    let xtask = std::env::current_exe()?.display().to_string();
    // A run ends at its own deadline; this one is only for a run that cannot even do that.
    let run_deadline = Duration::from_secs(test_options.run_timeout) + Duration::from_secs(300);
    println!(
        "soak: {} runs of `cargo xtask test {}`; logs in {}",
        options.runs,
        options.test_options.join(" "),
        soak_dir.display()
    );
    let mut outcomes = Vec::new();
    for number in 1..=options.runs {
        if cancel.stop_asked() {
            break;
        }
        let log = soak_dir.join(format!("run-{number}.log"));
        let mut argv = vec![xtask.clone(), "test".to_string()];
        argv.extend(options.test_options.iter().cloned());
        let output = command::run_logged(&argv, &log, run_deadline, Cancel::NEVER)?;
        let outcome = read_outcome(&log, output.exit_code, output.duration);
        println!("run {number} of {}: {}", options.runs, describe(&outcome, &log));
        outcomes.push(outcome);
    }
    print_failures(&outcomes);
    let passed = outcomes.iter().filter(|outcome| outcome.exit_code == Some(0)).count();
    println!("{passed} of {} runs passed ({} asked)", outcomes.len(), options.runs);
    Ok(exit_code(&outcomes, options.runs, cancel))
}

/// The run's artifacts dir (its last `artifacts:` line) and what its report.json says.
pub(super) fn read_outcome(log: &Path, exit_code: Option<i32>, duration: Duration) -> RunOutcome {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let artifacts = text.lines().rev().find_map(|line| line.strip_prefix("artifacts: ")).map(PathBuf::from);
    let report: Option<serde_json::Value> = artifacts
        .as_ref()
        .and_then(|dir| std::fs::read(dir.join("report.json")).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let (mut passed, mut failures, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let mut harness_error = None;
    if let Some(report) = &report {
        harness_error = report["harness_error"].as_str().map(first_line);
        for scenario in report["scenarios"].as_array().into_iter().flatten() {
            let name = scenario["name"].as_str().unwrap_or("?").to_string();
            match scenario["passed"].as_bool() {
                Some(true) => passed.push(name),
                Some(false) => failures.push((name, failure_of(scenario))),
                None => {}
            }
        }
        for scenario in report["skipped"].as_array().into_iter().flatten() {
            let text = |field: &str| scenario[field].as_str().unwrap_or("?").to_string();
            skipped.push((text("name"), text("reason")));
        }
    }
    if report.is_none() && exit_code != Some(0) {
        harness_error = Some(format!("no report; the end of its log: {}", command::last_lines(&text, 1)));
    }
    RunOutcome { exit_code, duration, artifacts, passed, failures, skipped, harness_error }
}

/// The first line of a failed scenario's failure: its pod's, or its first failed step's.
fn failure_of(scenario: &serde_json::Value) -> String {
    if let Some(error) = scenario["pod_error"].as_str() {
        return format!("pod: {}", first_line(error));
    }
    let failed = scenario["steps"].as_array().into_iter().flatten().find(|step| step["outcome"] == "failed");
    failed.map_or("?".to_string(), |step| {
        format!(
            "step {} ({}): {}",
            step["index"],
            step["summary"].as_str().unwrap_or("?"),
            first_line(step["failure"].as_str().unwrap_or("?"))
        )
    })
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

pub(super) fn describe(outcome: &RunOutcome, log: &Path) -> String {
    let seconds = outcome.duration.as_secs_f64();
    let artifacts = outcome.artifacts.as_ref().map_or(log.display().to_string(), |dir| dir.display().to_string());
    let verdict = match outcome.exit_code {
        Some(0) => "passed".to_string(),
        Some(code) if code == i32::from(EXIT_SCENARIO_FAILED) => {
            let names: Vec<&str> = outcome.failures.iter().map(|(name, _)| name.as_str()).collect();
            format!("FAILED {}", names.join(", "))
        }
        Some(code) if code == i32::from(EXIT_INTERRUPTED) => "interrupted".to_string(),
        other => format!(
            "the harness could not run ({}): {}",
            other.map_or("killed".to_string(), |code| format!("exit {code}")),
            outcome.harness_error.as_deref().unwrap_or("see its log")
        ),
    };
    format!("{verdict} in {seconds:.1} s ({artifacts})")
}

fn print_failures(outcomes: &[RunOutcome]) {
    let mut by_scenario: BTreeMap<&str, (usize, &str, String)> = BTreeMap::new();
    for outcome in outcomes {
        for (name, failure) in &outcome.failures {
            let artifacts = outcome.artifacts.as_ref().map_or(String::new(), |dir| dir.display().to_string());
            let entry = by_scenario.entry(name).or_insert((0, failure, artifacts));
            entry.0 += 1;
        }
    }
    if by_scenario.is_empty() {
        return;
    }
    let headers = ["scenario", "runs failed", "first failure", "its artifacts"].map(str::to_string);
    let rows: Vec<Vec<String>> = by_scenario
        .into_iter()
        .map(|(name, (count, failure, artifacts))| {
            vec![name.to_string(), format!("{count} of {}", outcomes.len()), failure.to_string(), artifacts]
        })
        .collect();
    println!("\n{}\n", report::markdown_table(&headers, &rows));
}

fn exit_code(outcomes: &[RunOutcome], asked: usize, cancel: Cancel) -> u8 {
    let codes: Vec<Option<i32>> = outcomes.iter().map(|outcome| outcome.exit_code).collect();
    if cancel.stop_asked() || outcomes.len() < asked || codes.contains(&Some(i32::from(EXIT_INTERRUPTED))) {
        EXIT_INTERRUPTED
    } else if codes.iter().any(|code| !matches!(code, Some(0)) && *code != Some(i32::from(EXIT_SCENARIO_FAILED))) {
        EXIT_HARNESS_ERROR
    } else if codes.iter().all(|code| *code == Some(0)) {
        0
    } else {
        EXIT_SCENARIO_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's outcome as its log and report say it.
    #[test]
    fn reads_what_a_run_left() {
        let directory = tempfile::tempdir().unwrap();
        let artifacts = directory.path().join("run");
        std::fs::create_dir(&artifacts).unwrap();
        let report = serde_json::json!({
            "harness_error": null,
            "scenarios": [
                { "name": "scenarios/idle", "passed": true, "pod_error": null, "steps": [] },
                { "name": "scenarios/restart", "passed": false, "pod_error": null, "steps": [
                    { "index": 0, "summary": "exec nginx: true", "outcome": "passed" },
                    { "index": 1, "summary": "http", "outcome": "failed", "failure": "expected HTTP 200\nmore" }
                ] }
            ]
        });
        std::fs::write(artifacts.join("report.json"), report.to_string()).unwrap();
        let log = directory.path().join("run-1.log");
        std::fs::write(&log, format!("lots\nartifacts: {}\n", artifacts.display())).unwrap();
        let outcome = read_outcome(&log, Some(101), Duration::from_secs(3));
        assert_eq!(
            outcome.failures,
            [("scenarios/restart".to_string(), "step 1 (http): expected HTTP 200".to_string())]
        );
        assert!(describe(&outcome, &log).starts_with("FAILED scenarios/restart in 3.0 s"));
        let passed = RunOutcome { exit_code: Some(0), ..read_outcome(&log, Some(0), Duration::ZERO) };
        assert_eq!(exit_code(&[passed], 1, Cancel::NEVER), 0);
        assert_eq!(exit_code(&[outcome], 1, Cancel::NEVER), EXIT_SCENARIO_FAILED);
        let lost = read_outcome(&directory.path().join("no-such.log"), Some(2), Duration::ZERO);
        assert_eq!(exit_code(&[lost], 1, Cancel::NEVER), EXIT_HARNESS_ERROR);
    }
}
