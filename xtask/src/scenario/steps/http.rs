//! `http`: a GET to a port the pod publishes, and what comes back.

use anyhow::{Result, bail};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SavedValues, ScenarioFacts, StepFormat, check_matcher, matcher_texts};
use crate::scenario::Matcher;

/// Where to send the GET and what should come back.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// A host port that a container publishes.
    pub port: u16,
    /// The request path; starts with /.
    #[serde(default = "root_path")]
    pub path: String,
    /// The expected HTTP status. Absent or null: not checked.
    pub status: Option<u16>,
    /// What the response body must match. Absent or null: not checked.
    pub body: Option<Matcher>,
}

fn root_path() -> String {
    "/".to_string()
}

impl StepFormat for Http {
    fn check(&self, field: &str, scenario: &ScenarioFacts) -> Result<()> {
        if !scenario.published_ports.contains(&self.port) {
            bail!("{field}.port: no container publishes port {}", self.port);
        }
        if !self.path.starts_with('/') {
            bail!("{field}.path: `{}` must start with /", self.path);
        }
        check_matcher(field, "body", self.body.as_ref())
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        saved.check(field, "body", matcher_texts(self.body.as_ref()))
    }

    fn container_names(&self) -> Vec<&str> {
        Vec::new()
    }

    fn summary(&self) -> String {
        format!("GET 127.0.0.1:{}{}", self.port, self.path)
    }
}
