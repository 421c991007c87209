//! Runs a `same-namespace` step: the /proc/PID/ns links of the containers' main processes.

use anyhow::Result;

use super::{RunStep, StepContext, expect_sameness, namespaces_of};
use crate::scenario::steps::SameNamespace;

impl RunStep for SameNamespace {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let seen = namespaces_of(context, &self.containers, self.kind)?;
        expect_sameness(&format!("{} namespace", self.kind.proc_name()), self.expect, &seen)?;
        Ok(())
    }
}
