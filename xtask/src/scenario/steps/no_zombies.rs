//! `no-zombies`: no process of a container's PID namespace is left unreaped.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ContainerRef, StepFormat};

// The container whose PID namespace to look at, written as any one container is (a plain
// comment: a doc comment would make the schema a definition of its own for it).
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct NoZombies(pub ContainerRef);

impl StepFormat for NoZombies {
    fn container_names(&self) -> Vec<&str> {
        vec![&self.0.container]
    }
}
