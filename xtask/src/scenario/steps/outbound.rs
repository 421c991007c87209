//! `outbound`: how many connections the pod tried to open beyond itself.

use schemars::JsonSchema;
use serde::Deserialize;

use super::StepFormat;

/// The most connections the pod may open outside itself.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outbound {
    /// 0: the pod reaches for nothing beyond itself.
    pub at_most: u64,
}

impl StepFormat for Outbound {
    fn container_names(&self) -> Vec<&str> {
        Vec::new()
    }

    fn counts_outbound(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        format!("at most {} connections", self.at_most)
    }
}
