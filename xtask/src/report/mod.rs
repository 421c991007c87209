//! The run's reports under `target/podlab/<run>/`: `report.json` for tools (the report types
//! below, serialized as they are, and read back through them by `soak` and `compare`) and
//! `junit.xml` for CI dashboards, one test case per step with its real duration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The whole run.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    /// Where the pods ran, and which runtime made them, as each describes itself.
    pub host: String,
    pub runtime: String,
    /// The pause under test: its binary, and the arguments its image starts it with.
    pub pause: String,
    #[serde(rename = "duration_ms", with = "milliseconds")]
    pub duration: Duration,
    /// Set when the harness itself could not run (no daemon, no images).
    pub harness_error: Option<String>,
    pub passed: bool,
    pub scenarios: Vec<ScenarioReport>,
    /// Scenarios the runtime cannot make a pod for, and why: not run.
    pub skipped: Vec<Skipped>,
}

/// A scenario not run: the runtime cannot make its pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// What one scenario did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub name: String,
    pub description: String,
    pub passed: bool,
    #[serde(rename = "duration_ms", with = "milliseconds")]
    pub duration: Duration,
    /// A failure outside the steps: the pod could not be created or removed.
    pub pod_error: Option<String>,
    pub logs_dir: PathBuf,
    pub steps: Vec<StepReport>,
    /// Why the scenario was run a second time on a new host, if it was (the first host's
    /// machine failed beneath it: a guest kernel lockup); these are the second run's steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_because: Option<String>,
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub index: usize,
    pub summary: String,
    /// For a `by-runtime` step: the fact it checks, whose outcome on this runtime this is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fact: Option<String>,
    #[serde(flatten)]
    pub outcome: StepOutcome,
    #[serde(rename = "duration_ms", with = "milliseconds")]
    pub duration: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum StepOutcome {
    Passed,
    Failed {
        failure: String,
    },
    /// An earlier step failed (or the pod could not be created).
    NotRun,
}

/// Durations as report.json says them: whole milliseconds.
mod milliseconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

impl ScenarioReport {
    /// A report of no step yet, to fill in.
    pub fn new(name: &str, description: &str, logs_dir: &Path) -> ScenarioReport {
        ScenarioReport {
            name: name.to_string(),
            description: description.to_string(),
            passed: false,
            duration: Duration::ZERO,
            pod_error: None,
            logs_dir: logs_dir.to_path_buf(),
            steps: Vec::new(),
            rerun_because: None,
        }
    }

    /// Sets `passed` from the pod and the steps, once the scenario is over.
    pub fn conclude(&mut self, duration: Duration) {
        self.duration = duration;
        self.passed = self.pod_error.is_none() && self.steps.iter().all(|step| step.outcome == StepOutcome::Passed);
    }

    /// The failure message a trial prints: what was expected, what came, where the logs are.
    pub fn failure_message(&self) -> String {
        let mut message = String::new();
        if let Some(error) = &self.pod_error {
            message.push_str(&format!("pod: {error}\n"));
        }
        for step in &self.steps {
            if let StepOutcome::Failed { failure } = &step.outcome {
                message.push_str(&format!(
                    "step {} ({}) failed:\n  {}\n",
                    step.index,
                    step.summary,
                    failure.replace('\n', "\n  ")
                ));
            }
        }
        message.push_str(&format!("logs: {}", self.logs_dir.display()));
        message
    }

    /// The first line of what broke, for a table: the pod's error, or the first failed step's
    /// failure; none if nothing failed.
    pub fn first_failure(&self) -> Option<String> {
        if let Some(error) = &self.pod_error {
            return Some(format!("pod: {}", first_line(error)));
        }
        self.steps.iter().find_map(|step| match &step.outcome {
            StepOutcome::Failed { failure } => {
                Some(format!("step {} ({}): {}", step.index, step.summary, first_line(failure)))
            }
            _ => None,
        })
    }
}

impl RunReport {
    pub fn conclude(&mut self) {
        self.passed = self.harness_error.is_none() && self.scenarios.iter().all(|scenario| scenario.passed);
    }
}

/// The file of a run's folder that its report is written to.
const REPORT_JSON: &str = "report.json";

pub fn write_all(run_dir: &Path, report: &RunReport) -> Result<()> {
    let json_path = run_dir.join(REPORT_JSON);
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(&json_path, json).with_context(|| format!("cannot write {}", json_path.display()))?;
    let junit_path = run_dir.join("junit.xml");
    std::fs::write(&junit_path, to_junit(report)).with_context(|| format!("cannot write {}", junit_path.display()))?;
    Ok(())
}

/// The report a run wrote to its folder, read back through its types.
pub fn read(run_dir: &Path) -> Result<RunReport> {
    let json_path = run_dir.join(REPORT_JSON);
    let json = std::fs::read(&json_path).with_context(|| format!("cannot read {}", json_path.display()))?;
    serde_json::from_slice(&json).with_context(|| format!("{} is not a report of this podlab", json_path.display()))
}

fn to_junit(report: &RunReport) -> String {
    let scenarios = &report.scenarios;
    let seconds = |duration: Duration| format!("{:.3}", duration.as_secs_f64());
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures: usize = scenarios.iter().map(failed_cases).sum();
    let tests: usize = scenarios.iter().map(|scenario| scenario.steps.len() + 1).sum();
    xml.push_str(&format!(
        "<testsuites name=\"podlab: {} on {}\" tests=\"{tests}\" failures=\"{failures}\" time=\"{}\">\n",
        escape(&report.runtime),
        escape(&report.host),
        seconds(report.duration)
    ));
    for scenario in scenarios {
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{}\">\n",
            escape(&scenario.name),
            scenario.steps.len() + 1,
            failed_cases(scenario),
            seconds(scenario.duration)
        ));
        // The pod itself is a case: creating and removing it can fail too.
        xml.push_str(&format!("    <testcase classname=\"{}\" name=\"pod\">\n", escape(&scenario.name)));
        if let Some(error) = &scenario.pod_error {
            xml.push_str(&format!("      <failure message=\"{}\"/>\n", escape(error)));
        }
        xml.push_str("    </testcase>\n");
        for step in &scenario.steps {
            xml.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{:02} {}\" time=\"{}\">\n",
                escape(&scenario.name),
                step.index,
                escape(&step.summary),
                seconds(step.duration)
            ));
            match &step.outcome {
                StepOutcome::Passed => {}
                StepOutcome::Failed { failure: reason } => xml.push_str(&format!(
                    "      <failure message=\"{}\">{}</failure>\n",
                    escape(first_line(reason)),
                    escape(reason)
                )),
                StepOutcome::NotRun => xml.push_str("      <skipped message=\"an earlier step failed\"/>\n"),
            }
            xml.push_str("    </testcase>\n");
        }
        xml.push_str(&format!(
            "    <system-out>logs: {}</system-out>\n",
            escape(&scenario.logs_dir.display().to_string())
        ));
        xml.push_str("  </testsuite>\n");
    }
    for skip in &report.skipped {
        xml.push_str(&format!(
            "  <testsuite name=\"{name}\" tests=\"1\" skipped=\"1\">\n    <testcase classname=\"{name}\" name=\"pod\">\n      <skipped message=\"{}\"/>\n    </testcase>\n  </testsuite>\n",
            escape(&skip.reason),
            name = escape(&skip.name),
        ));
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn failed_cases(scenario: &ScenarioReport) -> usize {
    let failed_steps = scenario.steps.iter().filter(|step| matches!(step.outcome, StepOutcome::Failed { .. })).count();
    failed_steps + usize::from(scenario.pod_error.is_some())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|character| match character {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            // XML 1.0 forbids most control characters, even escaped.
            control if control.is_control() && !matches!(control, '\n' | '\t' | '\r') => "?".to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// A Markdown table with aligned columns, so the output reads well in a terminal and
/// can be pasted into docs/bench.md as it is.
pub fn markdown_table(headers: &[String], rows: &[Vec<String>]) -> String {
    let width_of = |text: &String| text.chars().count();
    let widths: Vec<usize> = (0..headers.len())
        .map(|column| {
            rows.iter().map(|row| width_of(&row[column])).chain([width_of(&headers[column])]).max().unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - width_of(cell))))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let separator: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    std::iter::once(line(headers))
        .chain([line(&separator)])
        .chain(rows.iter().map(|row| line(row)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunReport {
        let step = |index, outcome| StepReport {
            fact: None,
            index,
            summary: format!("exec nginx: echo <{index}>"),
            outcome,
            duration: Duration::from_millis(1500),
        };
        let mut scenario = ScenarioReport::new("scenarios/seed-pod", "seed", Path::new("target/podlab/run/seed-pod"));
        scenario.steps = vec![
            step(0, StepOutcome::Passed),
            step(1, StepOutcome::Failed { failure: "expected \"a\"\ngot b".into() }),
            step(2, StepOutcome::NotRun),
        ];
        scenario.conclude(Duration::from_secs(3));
        let mut report = RunReport {
            run_id: "run".into(),
            host: "host (this machine)".into(),
            runtime: "docker".into(),
            pause: "/pause".to_string(),
            duration: Duration::from_secs(4),
            harness_error: None,
            passed: true,
            scenarios: vec![scenario],
            skipped: vec![Skipped {
                name: "scenarios/version".to_string(),
                reason: "cri runs pause as it is".to_string(),
            }],
        };
        report.conclude();
        report
    }

    #[test]
    fn junit_has_a_case_per_step_with_durations_and_escapes() {
        let xml = to_junit(&sample());
        assert!(xml.contains(
            "<testsuites name=\"podlab: docker on host (this machine)\" tests=\"4\" failures=\"1\" time=\"4.000\">"
        ));
        assert!(xml.contains("name=\"01 exec nginx: echo &lt;1&gt;\" time=\"1.500\""));
        assert!(xml.contains("<failure message=\"expected &quot;a&quot;\">expected &quot;a&quot;\ngot b</failure>"));
        assert!(xml.contains("<skipped message=\"an earlier step failed\"/>"));
        assert!(xml.contains("<skipped message=\"cri runs pause as it is\"/>"));
    }

    #[test]
    fn json_says_what_failed() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["passed"], false);
        assert_eq!(json["scenarios"][0]["passed"], false);
        assert_eq!(json["scenarios"][0]["steps"][0]["outcome"], "passed");
        assert_eq!(json["scenarios"][0]["steps"][1]["outcome"], "failed");
        assert_eq!(json["scenarios"][0]["steps"][1]["failure"], "expected \"a\"\ngot b");
        assert_eq!(json["scenarios"][0]["steps"][2]["outcome"], "not-run");
        assert_eq!(json["scenarios"][0]["steps"][0]["duration_ms"], 1500);
        assert_eq!(json["duration_ms"], 4000);
    }

    /// What soak and compare read is what the run wrote, every field of it.
    #[test]
    fn a_written_report_reads_back_the_same() {
        let directory = tempfile::tempdir().unwrap();
        let mut written = sample();
        written.harness_error = Some("dockerd did not start".into());
        written.scenarios[0].pod_error = Some("cannot remove nginx".into());
        written.scenarios[0].steps[0].fact = Some("how pause ends".into());
        written.scenarios[0].rerun_because = Some("soft lockup".into());
        let mut passed = ScenarioReport::new("scenarios/version", "version", Path::new("target/podlab/run/version"));
        passed.conclude(Duration::from_millis(250));
        written.scenarios.push(passed);
        write_all(directory.path(), &written).unwrap();
        assert_eq!(read(directory.path()).unwrap(), written);
        let sample = sample();
        write_all(directory.path(), &sample).unwrap();
        assert_eq!(read(directory.path()).unwrap(), sample);
    }

    #[test]
    fn an_unreadable_report_says_which_file() {
        let directory = tempfile::tempdir().unwrap();
        let error = format!("{:#}", read(directory.path()).unwrap_err());
        assert!(
            error.starts_with(&format!("cannot read {}", directory.path().join("report.json").display())),
            "{error}"
        );
        std::fs::write(directory.path().join("report.json"), "{\"run_id\": 1}").unwrap();
        let error = format!("{:#}", read(directory.path()).unwrap_err());
        assert!(error.contains("report.json is not a report of this podlab: invalid type"), "{error}");
    }

    #[test]
    fn the_first_failure_is_the_pods_or_the_first_failed_steps() {
        let mut scenario = sample().scenarios.remove(0);
        assert_eq!(scenario.first_failure().as_deref(), Some("step 1 (exec nginx: echo <1>): expected \"a\""));
        scenario.pod_error = Some("cannot start pause\nmore".into());
        assert_eq!(scenario.first_failure().as_deref(), Some("pod: cannot start pause"));
        let passed = ScenarioReport::new("scenarios/version", "version", Path::new("version"));
        assert_eq!(passed.first_failure(), None);
    }

    #[test]
    fn table_columns_line_up() {
        let headers = crate::command::argv(&["binary", "size (bytes)"]);
        let rows = vec![crate::command::argv(&["a-long-binary-name", "2000"]), crate::command::argv(&["µ", "1"])];
        let table = markdown_table(&headers, &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "| binary             | size (bytes) |");
        assert_eq!(lines[1], "| ------------------ | ------------ |");
        assert_eq!(lines[3], "| µ                  | 1            |");
        assert!(lines.iter().all(|line| line.chars().count() == lines[0].chars().count()));
    }
}
