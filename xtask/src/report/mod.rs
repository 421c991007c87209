//! The run's reports under `target/podlab/<run>/`: `report.json` for tools and
//! `junit.xml` for CI dashboards, one test case per step with its real duration.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::runner::{ScenarioReport, StepOutcome};

/// Facts about the run as a whole.
pub struct RunFacts<'a> {
    pub run_id: &'a str,
    pub engine: &'a str,
    pub pause_binary: &'a Path,
    pub duration: Duration,
    /// Set when the harness itself could not run (no daemon, no images).
    pub harness_error: Option<String>,
}

pub fn write_all(run_dir: &Path, facts: &RunFacts, scenarios: &[ScenarioReport]) -> Result<()> {
    let json_path = run_dir.join("report.json");
    let json = serde_json::to_string_pretty(&to_json(facts, scenarios))?;
    std::fs::write(&json_path, json).with_context(|| format!("cannot write {}", json_path.display()))?;
    let junit_path = run_dir.join("junit.xml");
    std::fs::write(&junit_path, to_junit(facts, scenarios))
        .with_context(|| format!("cannot write {}", junit_path.display()))?;
    Ok(())
}

fn to_json(facts: &RunFacts, scenarios: &[ScenarioReport]) -> serde_json::Value {
    json!({
        "run_id": facts.run_id,
        "engine": facts.engine,
        "pause_binary": facts.pause_binary.display().to_string(),
        "duration_ms": facts.duration.as_millis() as u64,
        "harness_error": facts.harness_error,
        "passed": facts.harness_error.is_none() && scenarios.iter().all(ScenarioReport::passed),
        "scenarios": scenarios.iter().map(|scenario| json!({
            "name": scenario.name,
            "description": scenario.description,
            "passed": scenario.passed(),
            "duration_ms": scenario.duration.as_millis() as u64,
            "pod_error": scenario.pod_error,
            "logs_dir": scenario.logs_dir.display().to_string(),
            "steps": scenario.steps.iter().map(|step| json!({
                "index": step.index,
                "summary": step.summary,
                "outcome": match &step.outcome {
                    StepOutcome::Passed => "passed",
                    StepOutcome::Failed(_) => "failed",
                    StepOutcome::NotRun => "not-run",
                },
                "failure": match &step.outcome { StepOutcome::Failed(reason) => Some(reason), _ => None },
                "duration_ms": step.duration.as_millis() as u64,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn to_junit(facts: &RunFacts, scenarios: &[ScenarioReport]) -> String {
    let seconds = |duration: Duration| format!("{:.3}", duration.as_secs_f64());
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures: usize = scenarios.iter().map(failed_cases).sum();
    let tests: usize = scenarios.iter().map(|scenario| scenario.steps.len() + 1).sum();
    xml.push_str(&format!(
        "<testsuites name=\"podlab {}\" tests=\"{tests}\" failures=\"{failures}\" time=\"{}\">\n",
        escape(facts.engine),
        seconds(facts.duration)
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
                StepOutcome::Failed(reason) => xml.push_str(&format!(
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
    xml.push_str("</testsuites>\n");
    xml
}

fn failed_cases(scenario: &ScenarioReport) -> usize {
    let failed_steps = scenario.steps.iter().filter(|step| matches!(step.outcome, StepOutcome::Failed(_))).count();
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::runner::StepReport;

    fn sample() -> Vec<ScenarioReport> {
        let step = |index, outcome| StepReport {
            index,
            summary: format!("exec nginx: echo <{index}>"),
            outcome,
            duration: Duration::from_millis(1500),
        };
        vec![ScenarioReport {
            name: "scenarios/seed-pod".into(),
            description: "seed".into(),
            steps: vec![
                step(0, StepOutcome::Passed),
                step(1, StepOutcome::Failed("expected \"a\"\ngot b".into())),
                step(2, StepOutcome::NotRun),
            ],
            pod_error: None,
            duration: Duration::from_secs(3),
            logs_dir: PathBuf::from("target/podlab/run/seed-pod"),
        }]
    }

    fn sample_facts() -> RunFacts<'static> {
        RunFacts {
            run_id: "run",
            engine: "docker",
            pause_binary: Path::new("/pause"),
            duration: Duration::from_secs(4),
            harness_error: None,
        }
    }

    #[test]
    fn junit_has_a_case_per_step_with_durations_and_escapes() {
        let xml = to_junit(&sample_facts(), &sample());
        assert!(xml.contains("<testsuites name=\"podlab docker\" tests=\"4\" failures=\"1\" time=\"4.000\">"));
        assert!(xml.contains("name=\"01 exec nginx: echo &lt;1&gt;\" time=\"1.500\""));
        assert!(xml.contains("<failure message=\"expected &quot;a&quot;\">expected &quot;a&quot;\ngot b</failure>"));
        assert!(xml.contains("<skipped message=\"an earlier step failed\"/>"));
    }

    #[test]
    fn json_says_what_failed() {
        let json = to_json(&sample_facts(), &sample());
        assert_eq!(json["passed"], false);
        assert_eq!(json["scenarios"][0]["steps"][1]["outcome"], "failed");
        assert_eq!(json["scenarios"][0]["steps"][2]["outcome"], "not-run");
        assert_eq!(json["scenarios"][0]["steps"][0]["duration_ms"], 1500);
    }
}
