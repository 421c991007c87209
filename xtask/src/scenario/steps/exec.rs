//! `exec`: a command run in a container, and what it printed.

use anyhow::{Result, bail};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, StepFormat, check_matcher, matcher_texts};
use crate::scenario::Matcher;

/// Runs a command in a container and checks what it printed.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The name of a container in the pod.
    pub container: String,
    /// The command and its arguments, not run through a shell; not empty.
    /// `${name}` is replaced by a value saved earlier.
    pub argv: Vec<String>,
    /// The expected exit code. It has a default rather than null for "not checked", since a
    /// failing command is rarely intended.
    #[serde(default)]
    pub exit_code: u8,
    /// What stdout must match. Absent or null: not checked.
    pub stdout: Option<Matcher>,
    /// What stderr must match. Absent or null: not checked.
    pub stderr: Option<Matcher>,
    /// Saves trimmed stdout under this name; later steps use it as `${name}` in argv and matchers.
    pub save_stdout_as: Option<String>,
}

impl StepFormat for Exec {
    fn check(&self, field: &str, _: &ScenarioFacts) -> Result<()> {
        if self.argv.is_empty() {
            bail!("{field}.argv: must not be empty");
        }
        check_matcher(field, "stdout", self.stdout.as_ref())?;
        check_matcher(field, "stderr", self.stderr.as_ref())
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        for (index, word) in self.argv.iter().enumerate() {
            saved.check(field, &format!("argv[{index}]"), vec![word])?;
        }
        saved.check(field, "stdout", matcher_texts(self.stdout.as_ref()))?;
        saved.check(field, "stderr", matcher_texts(self.stderr.as_ref()))?;
        if let Some(name) = &self.save_stdout_as {
            saved.save(name);
        }
        Ok(())
    }

    fn container_names(&self) -> Vec<&str> {
        vec![&self.container]
    }

    fn summary(&self) -> String {
        format!("{}: {}", self.container, self.argv.join(" "))
    }
}
