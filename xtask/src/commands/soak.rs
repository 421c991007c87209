//! `cargo xtask soak N [test options]`: the whole suite N times, one run after another, each a
//! `cargo xtask test` of its own (its own lab, boot included). A line per run, then each
//! scenario that failed: in how many runs, the first line of its first failure, and that
//! run's artifacts. This is how a false alarm is found, and how their rate is measured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use super::test::{EXIT_INTERRUPTED, EXIT_SCENARIO_FAILED};
use crate::cancel::Cancel;
use crate::report::{self, RunReport, ScenarioReport, Skipped};
use crate::{EXIT_HARNESS_ERROR, command, names, pause_build};

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

/// What one run of `cargo xtask test` did: how it exited, and the report it left in its folder,
/// read back through the report types (`compare` reads its runs the same way).
pub(super) struct RunOutcome {
    pub exit_code: Option<i32>,
    pub duration: Duration,
    /// The run's folder, target/podlab/<run id>/, once the run has left its report there.
    pub artifacts: Option<PathBuf>,
    pub report: Option<RunReport>,
    /// Why the harness could not run, in a line: the report's harness error, or, when a run that
    /// did not pass left no report, the last line of its log.
    pub harness_error: Option<String>,
}

impl RunOutcome {
    /// The scenarios the run ran (none without a report).
    pub fn scenarios(&self) -> &[ScenarioReport] {
        self.report.as_ref().map_or(&[], |report| report.scenarios.as_slice())
    }

    /// The scenarios the runtime cannot make, and why.
    pub fn skipped(&self) -> &[Skipped] {
        self.report.as_ref().map_or(&[], |report| report.skipped.as_slice())
    }

    /// Failed scenarios and the first line of each one's failure.
    pub fn failures(&self) -> impl Iterator<Item = (&str, String)> {
        self.scenarios()
            .iter()
            .filter(|scenario| !scenario.passed)
            .map(|scenario| (scenario.name.as_str(), failure_of(scenario)))
    }
}

pub fn run(options: Options) -> Result<u8> {
    let test_options =
        TestCommand::try_parse_from(std::iter::once("test".to_string()).chain(options.test_options.clone()))
            .map_err(|error| anyhow::anyhow!("the test options: {}", error.to_string().trim_start_matches("error: ")))?
            .options;
    if test_options.run_id.is_some() {
        bail!("the test options: soak chooses each run's id, leave --run-id out");
    }
    let cancel = Cancel::on_signals()?;
    let workspace = pause_build::workspace_root();
    let soak_id = names::run_id();
    let soak_dir = names::artifacts_dir(workspace, &format!("soak-{soak_id}"));
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
        // Chosen here, so that the run's folder, where its report will be, is known before it starts.
        let run_id = format!("{soak_id}-run-{number}");
        // First, so that it stays an option whatever the test options end with (`--`, a filter).
        let mut argv = vec![xtask.clone(), "test".to_string(), "--run-id".to_string(), run_id.clone()];
        argv.extend(options.test_options.iter().cloned());
        let output = command::run_logged(&argv, &log, run_deadline, Cancel::NEVER)?;
        let outcome = read_outcome(&names::artifacts_dir(workspace, &run_id), &log, output.exit_code, output.duration);
        println!("run {number} of {}: {}", options.runs, describe(&outcome, &log));
        outcomes.push(outcome);
    }
    print_failures(&outcomes);
    let passed = outcomes.iter().filter(|outcome| outcome.exit_code == Some(0)).count();
    println!("{passed} of {} runs passed ({} asked)", outcomes.len(), options.runs);
    Ok(exit_code(&outcomes, options.runs, cancel))
}

/// What a run that was given the folder `run_dir` left there (its report.json), and, if it left
/// none and did not pass, the end of its log.
pub(super) fn read_outcome(run_dir: &Path, log: &Path, exit_code: Option<i32>, duration: Duration) -> RunOutcome {
    // None when the run stopped before its lab began (a bad option), or was killed.
    let report = report::read(run_dir).ok();
    let harness_error = match &report {
        Some(report) => report.harness_error.as_deref().map(first_line),
        None if exit_code != Some(0) => {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            Some(format!("no report; the end of its log: {}", command::last_lines(&text, 1)))
        }
        None => None,
    };
    let artifacts = report.is_some().then(|| run_dir.to_path_buf());
    RunOutcome { exit_code, duration, artifacts, report, harness_error }
}

/// The first line of a failed scenario's failure: its pod's, or its first failed step's.
pub(super) fn failure_of(scenario: &ScenarioReport) -> String {
    scenario.first_failure().unwrap_or_else(|| "?".to_string())
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
            let names: Vec<&str> = outcome.failures().map(|(name, _)| name).collect();
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
    let mut by_scenario: BTreeMap<&str, (usize, String, String)> = BTreeMap::new();
    for outcome in outcomes {
        for (name, failure) in outcome.failures() {
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
            vec![name.to_string(), format!("{count} of {}", outcomes.len()), failure, artifacts]
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
    use crate::report::{StepOutcome, StepReport};

    /// A run's outcome as its report says it, and as its log says it when it left none.
    #[test]
    fn reads_what_a_run_left() {
        let directory = tempfile::tempdir().unwrap();
        let run_dir = directory.path().join("run");
        std::fs::create_dir(&run_dir).unwrap();
        let step = |index, summary: &str, outcome| StepReport {
            index,
            summary: summary.to_string(),
            fact: None,
            outcome,
            duration: Duration::from_millis(100),
        };
        let mut idle = ScenarioReport::new("scenarios/idle", "idle", &run_dir.join("idle"));
        idle.conclude(Duration::from_secs(1));
        let mut restart = ScenarioReport::new("scenarios/restart", "restart", &run_dir.join("restart"));
        restart.steps = vec![
            step(0, "exec nginx: true", StepOutcome::Passed),
            step(1, "http", StepOutcome::Failed { failure: "expected HTTP 200\nmore".to_string() }),
        ];
        restart.conclude(Duration::from_secs(2));
        let mut written = RunReport {
            run_id: "run".to_string(),
            host: "this machine".to_string(),
            runtime: "docker".to_string(),
            pause: "/pause".to_string(),
            duration: Duration::from_secs(3),
            harness_error: None,
            passed: false,
            scenarios: vec![idle, restart],
            skipped: vec![Skipped { name: "scenarios/uts".to_string(), reason: "docker cannot".to_string() }],
        };
        written.conclude();
        report::write_all(&run_dir, &written).unwrap();
        let log = directory.path().join("run-1.log");
        std::fs::write(&log, "lots\nthe last line\n").unwrap();

        let outcome = read_outcome(&run_dir, &log, Some(101), Duration::from_secs(3));
        assert_eq!(
            outcome.failures().collect::<Vec<_>>(),
            [("scenarios/restart", "step 1 (http): expected HTTP 200".to_string())]
        );
        assert_eq!(outcome.skipped(), written.skipped.as_slice());
        assert_eq!(describe(&outcome, &log), format!("FAILED scenarios/restart in 3.0 s ({})", run_dir.display()));
        let passed = RunOutcome { exit_code: Some(0), ..read_outcome(&run_dir, &log, Some(0), Duration::ZERO) };
        assert_eq!(exit_code(&[passed], 1, Cancel::NEVER), 0);
        assert_eq!(exit_code(&[outcome], 1, Cancel::NEVER), EXIT_SCENARIO_FAILED);

        let lost = read_outcome(&directory.path().join("no-such-run"), &log, Some(2), Duration::ZERO);
        assert_eq!(lost.artifacts, None);
        assert_eq!(
            describe(&lost, &log),
            format!(
                "the harness could not run (exit 2): no report; the end of its log: the last line in 0.0 s ({})",
                log.display()
            )
        );
        assert_eq!(exit_code(&[lost], 1, Cancel::NEVER), EXIT_HARNESS_ERROR);
    }

    #[test]
    fn soak_chooses_each_runs_id() {
        let options = Options { runs: 1, test_options: command::argv(&["--run-id", "mine"]) };
        let error = run(options).unwrap_err().to_string();
        assert_eq!(error, "the test options: soak chooses each run's id, leave --run-id out");
    }
}
