//! `same-namespace`: the containers' main processes are in one namespace of a kind (or not).

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ScenarioFacts, StepFormat, at_least_two, names};
use crate::scenario::NamespaceKind;

/// The containers to compare, the namespace, and whether it should be the same.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SameNamespace {
    /// Which namespace to compare.
    pub kind: NamespaceKind,
    /// At least two container names.
    pub containers: Vec<String>,
    /// true: the namespace is the same in all; false: it is not.
    #[serde(default = "super::yes")]
    pub expect: bool,
}

impl StepFormat for SameNamespace {
    fn check(&self, field: &str, _: &ScenarioFacts) -> Result<()> {
        at_least_two(field, &self.containers)
    }

    fn container_names(&self) -> Vec<&str> {
        names(&self.containers)
    }

    fn summary(&self) -> String {
        let differ = if self.expect { "" } else { " (differ)" };
        format!("{} of {}{differ}", self.kind.proc_name(), self.containers.join(", "))
    }
}
