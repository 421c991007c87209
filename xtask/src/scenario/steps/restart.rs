//! `restart`: an app container restarted in its pod.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ContainerRef, StepFormat};

// The container to restart, written as any one container is (a plain comment: a doc comment
// would make the schema a definition of its own for it).
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Restart(pub ContainerRef);

impl StepFormat for Restart {
    fn container_names(&self) -> Vec<&str> {
        vec![&self.0.container]
    }
}
