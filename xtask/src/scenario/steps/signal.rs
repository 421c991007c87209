//! `signal`: a signal sent to a container's main process.

use schemars::JsonSchema;
use serde::Deserialize;

use super::StepFormat;
use crate::scenario::SignalName;

/// The container and the signal to send to its main process.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalStep {
    /// The name of a container in the pod.
    pub container: String,
    /// A signal name such as `SIGINT`.
    pub signal: SignalName,
}

impl StepFormat for SignalStep {
    fn container_names(&self) -> Vec<&str> {
        vec![&self.container]
    }

    fn summary(&self) -> String {
        format!("{} {}", self.signal, self.container)
    }
}
