//! `cargo xtask compare`: the suite against several pauses, one whole `cargo xtask test` run
//! each (its own lab), and a matrix of scenario x pause: passed, skipped, or the first promise
//! that broke. The columns are the workspace's pause, the references (a pause.c-like one built
//! from `references/pause-c-like.c`, and Debian's `catatonit -P` when it is installed), then
//! each `--pause-bin`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::soak::{RunOutcome, describe, failure_of, read_outcome};
use super::test::{EXIT_INTERRUPTED, EXIT_SCENARIO_FAILED};
use crate::cancel::Cancel;
use crate::lab::Choice;
use crate::pause_build::PauseCommand;
use crate::{EXIT_HARNESS_ERROR, command, names, pause_build, report};

/// Where Debian's catatonit is: what Podman runs as its infra container, `-P` its pause mode.
const CATATONIT: &str = "/usr/bin/catatonit";

/// A run may take this long; a run's own deadline normally ends it first.
const RUN_DEADLINE: Duration = Duration::from_secs(2100);

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each run's output goes to target/podlab/compare-<id>/<n>.log, its artifacts to its own
target/podlab/<run>/, and the matrix to compare-<id>/matrix.md and matrix.json. A pause that
breaks a promise is a finding, not an error: exit code 0 once every run finished (2 when a run
could not run, 130 when interrupted).")]
pub struct Options {
    #[command(flatten)]
    pub choice: Choice,
    /// Also compare this pause (repeatable); words after the path are its arguments
    /// (--pause-bin '/usr/bin/catatonit -P')
    #[arg(long, value_name = "'PATH [ARGS]'", value_parser = PauseCommand::parse)]
    pub pause_bin: Vec<PauseCommand>,
    /// Leave out the references (the pause.c-like one and catatonit -P)
    #[arg(long)]
    pub no_references: bool,
    /// Only the scenarios whose names contain this
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
}

/// One column: a pause and what its run did.
struct Column {
    label: String,
    pause: PauseCommand,
    outcome: Option<RunOutcome>,
}

pub fn run(options: Options) -> Result<u8> {
    let cancel = Cancel::on_signals()?;
    let workspace = pause_build::workspace_root();
    let compare_id = names::run_id();
    let compare_dir = names::artifacts_dir(workspace, &format!("compare-{compare_id}"));
    std::fs::create_dir_all(&compare_dir).with_context(|| format!("cannot create {}", compare_dir.display()))?;
    let mut columns = vec![Column { label: "podlab pause".into(), pause: PauseCommand::ours(cancel)?, outcome: None }];
    if !options.no_references {
        columns.extend(references(&compare_dir)?);
    }
    columns.extend(options.pause_bin.iter().map(|pause| Column {
        label: pause.to_string(),
        pause: pause.clone(),
        outcome: None,
    }));
    let xtask = std::env::current_exe()?.display().to_string();
    println!(
        "compare: {} pauses, {} on each; logs in {}",
        columns.len(),
        options.choice.describe(),
        compare_dir.display()
    );
    let total = columns.len();
    for (index, column) in columns.iter_mut().enumerate() {
        if cancel.stop_asked() {
            break;
        }
        let log = compare_dir.join(format!("{}.log", index + 1));
        // Chosen here, so that the run's folder, where its report will be, is known before it starts.
        let run_id = format!("{compare_id}-pause-{}", index + 1);
        let mut argv = vec![xtask.clone(), "test".into(), "--run-id".into(), run_id.clone()];
        argv.extend(["--pause-bin".into(), column.pause.to_string()]);
        argv.extend(options.choice.arguments());
        argv.extend(options.filter.clone());
        let output = command::run_logged(&argv, &log, RUN_DEADLINE, Cancel::NEVER)?;
        let outcome = read_outcome(&names::artifacts_dir(workspace, &run_id), &log, output.exit_code, output.duration);
        println!("{} of {total}, {}: {}", index + 1, column.label, describe(&outcome, &log));
        column.outcome = Some(outcome);
    }
    let matrix = matrix(&columns);
    let table = report::markdown_table(&matrix.headers, &matrix.rows);
    println!("\n{table}");
    std::fs::write(compare_dir.join("matrix.md"), format!("{table}\n"))?;
    let json = serde_json::to_string_pretty(&matrix.json)?;
    std::fs::write(compare_dir.join("matrix.json"), json + "\n")?;
    println!("matrix: {}", compare_dir.join("matrix.md").display());
    Ok(exit_code(&columns, cancel))
}

/// The pause.c-like reference, built with gcc from the workspace's C source, and catatonit
/// when this machine has it (said, when it does not).
fn references(compare_dir: &Path) -> Result<Vec<Column>> {
    let source = pause_build::workspace_root().join("references/pause-c-like.c");
    let binary = compare_dir.join("pause-c-like");
    let gcc =
        command::argv(&["gcc", "-Os", "-static", "-o", &binary.display().to_string(), &source.display().to_string()]);
    let built = command::run_logged(
        &gcc,
        &compare_dir.join("pause-c-like.build.log"),
        Duration::from_secs(120),
        Cancel::NEVER,
    )?;
    if built.exit_code != Some(0) {
        bail!(
            "gcc could not build {}: is libc6-dev installed? (see pause-c-like.build.log in {})",
            source.display(),
            compare_dir.display()
        );
    }
    let mut columns = vec![Column {
        label: "pause.c-like".into(),
        pause: PauseCommand { binary, arguments: Vec::new() },
        outcome: None,
    }];
    if Path::new(CATATONIT).is_file() {
        let pause = PauseCommand { binary: PathBuf::from(CATATONIT), arguments: vec!["-P".into()] };
        columns.push(Column { label: "catatonit -P".into(), pause, outcome: None });
    } else {
        println!("note: {CATATONIT} is not installed (Debian's catatonit): that reference is left out");
    }
    Ok(columns)
}

struct Matrix {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    json: serde_json::Value,
}

/// Scenario x pause; a cell is `passed`, `skipped`, `FAILED: <first broken promise>`, or what
/// kept the run from saying (`not run: ...`).
fn matrix(columns: &[Column]) -> Matrix {
    let names: BTreeSet<&str> = columns
        .iter()
        .filter_map(|column| column.outcome.as_ref())
        .flat_map(|outcome| {
            let ran = outcome.scenarios().iter().map(|scenario| scenario.name.as_str());
            ran.chain(outcome.skipped().iter().map(|skipped| skipped.name.as_str()))
        })
        .collect();
    let cell = |outcome: Option<&RunOutcome>, name: &str| -> (String, Option<String>) {
        let Some(outcome) = outcome else { return ("not run (interrupted)".into(), None) };
        if let Some(scenario) = outcome.scenarios().iter().find(|scenario| scenario.name == name) {
            if scenario.passed {
                return ("passed".into(), None);
            }
            return ("failed".into(), Some(failure_of(scenario)));
        }
        if let Some(skipped) = outcome.skipped().iter().find(|skipped| skipped.name == name) {
            return ("skipped".into(), Some(skipped.reason.clone()));
        }
        ("not run".into(), outcome.harness_error.clone())
    };
    let mut headers = vec!["scenario".to_string()];
    headers.extend(columns.iter().map(|column| column.label.clone()));
    let mut rows = Vec::new();
    let mut scenarios = serde_json::Map::new();
    for name in names {
        let mut row = vec![name.to_string()];
        let mut by_pause = serde_json::Map::new();
        for column in columns {
            let (verdict, detail) = cell(column.outcome.as_ref(), name);
            row.push(match (&*verdict, &detail) {
                ("failed", Some(failure)) => format!("FAILED: {}", brief(failure)),
                _ => verdict.clone(),
            });
            by_pause.insert(column.label.clone(), json!({ "outcome": verdict, "detail": detail }));
        }
        rows.push(row);
        scenarios.insert(name.to_string(), serde_json::Value::Object(by_pause));
    }
    let pauses: Vec<serde_json::Value> = columns
        .iter()
        .map(|column| {
            let outcome = column.outcome.as_ref();
            json!({
                "label": column.label,
                "pause": column.pause.to_string(),
                "exit_code": outcome.and_then(|outcome| outcome.exit_code),
                "artifacts": outcome.and_then(|outcome| outcome.artifacts.clone()),
                "harness_error": outcome.and_then(|outcome| outcome.harness_error.clone()),
            })
        })
        .collect();
    Matrix { headers, rows, json: json!({ "pauses": pauses, "scenarios": scenarios }) }
}

/// A failure for a table cell: which step, and what was expected and came (a failure's
/// words from its first `expected`), at most 160 characters; matrix.json keeps it whole.
fn brief(failure: &str) -> String {
    let step = failure.split_once(' ').and_then(|(word, rest)| {
        let number = rest.split(' ').next()?;
        (word == "step").then(|| format!("step {number}: "))
    });
    let what = failure.find("expected ").map_or(failure, |at| &failure[at..]);
    let text = format!("{}{what}", step.unwrap_or_default()).replace('|', "\\|");
    if text.chars().count() <= 160 { text } else { format!("{}...", text.chars().take(157).collect::<String>()) }
}

fn exit_code(columns: &[Column], cancel: Cancel) -> u8 {
    let codes: Vec<Option<i32>> =
        columns.iter().map(|column| column.outcome.as_ref().and_then(|outcome| outcome.exit_code)).collect();
    if cancel.stop_asked() || codes.contains(&Some(i32::from(EXIT_INTERRUPTED))) {
        EXIT_INTERRUPTED
    } else if codes.iter().all(|code| matches!(code, Some(0)) || *code == Some(i32::from(EXIT_SCENARIO_FAILED))) {
        0
    } else {
        EXIT_HARNESS_ERROR
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{RunReport, ScenarioReport, Skipped, StepOutcome, StepReport};

    /// A column whose run left `report` in its folder.
    fn column(label: &str, report: &RunReport, run_dir: &Path) -> Column {
        report::write_all(run_dir, report).unwrap();
        let log = run_dir.join("run.log");
        let outcome = read_outcome(run_dir, &log, Some(101), Duration::from_secs(1));
        let pause = PauseCommand { binary: PathBuf::from(label), arguments: Vec::new() };
        Column { label: label.to_string(), pause, outcome: Some(outcome) }
    }

    #[test]
    fn the_matrix_says_each_pauses_outcome_from_its_report() {
        let directory = tempfile::tempdir().unwrap();
        let scenario = |name: &str, outcome| {
            let mut scenario = ScenarioReport::new(name, "", Path::new(name));
            let step = StepReport { index: 0, summary: "stop".into(), fact: None, outcome, duration: Duration::ZERO };
            scenario.steps = vec![step];
            scenario.conclude(Duration::ZERO);
            scenario
        };
        let mut report = RunReport {
            run_id: "run".into(),
            host: "this machine".into(),
            runtime: "cri".into(),
            pause: "/pause".into(),
            duration: Duration::ZERO,
            harness_error: None,
            passed: false,
            scenarios: vec![
                scenario("scenarios/idle", StepOutcome::Passed),
                scenario("scenarios/stop", StepOutcome::Failed { failure: "expected exit code 0, got 2\nmore".into() }),
            ],
            skipped: vec![Skipped { name: "scenarios/uts".into(), reason: "cri cannot share a UTS namespace".into() }],
        };
        report.conclude();
        let ours = directory.path().join("ours");
        std::fs::create_dir(&ours).unwrap();
        let other = PauseCommand { binary: PathBuf::from("/other"), arguments: Vec::new() };
        let columns = [column("ours", &report, &ours), Column { label: "other".into(), pause: other, outcome: None }];
        let matrix = matrix(&columns);
        assert_eq!(matrix.headers, ["scenario", "ours", "other"]);
        assert_eq!(
            matrix.rows,
            [
                ["scenarios/idle", "passed", "not run (interrupted)"],
                ["scenarios/stop", "FAILED: step 0: expected exit code 0, got 2", "not run (interrupted)"],
                ["scenarios/uts", "skipped", "not run (interrupted)"],
            ]
        );
        assert_eq!(matrix.json["scenarios"]["scenarios/uts"]["ours"]["detail"], "cri cannot share a UTS namespace");
        assert_eq!(matrix.json["pauses"][0]["artifacts"], ours.display().to_string());
    }

    #[test]
    fn a_failure_in_a_cell_says_its_step_and_what_broke() {
        let failure = "step 2 (by-runtime how pause ends (on docker: wait-exit pause)): on docker, how pause ends: \
                       wait-exit pause: expected logs to contain \"Shutting down\", got \"\"";
        assert_eq!(brief(failure), "step 2: expected logs to contain \"Shutting down\", got \"\"");
        assert_eq!(brief("pod: cannot start pause"), "pod: cannot start pause");
        assert_eq!(brief(&format!("step 1 (x): expected {}", "a".repeat(200))).chars().count(), 160);
    }
}
