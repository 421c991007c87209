//! `cpu-idle`: a container's main process uses (almost) no CPU while nothing happens.

use schemars::JsonSchema;
use serde::Deserialize;

use super::StepFormat;
use crate::scenario::Milliseconds;

/// Watches a container's main process for a while: it must use at most `max_cpu_ms` of CPU.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CpuIdle {
    /// The name of a container in the pod.
    pub container: String,
    /// How long to watch, in milliseconds.
    #[serde(default = "default_idle_window_ms")]
    pub over_ms: Milliseconds,
    /// The most CPU time (user + system), in milliseconds, the process may use meanwhile; the
    /// kernel counts in 10 ms ticks.
    #[serde(default = "default_idle_cpu_ms")]
    pub max_cpu_ms: u64,
}

fn default_idle_window_ms() -> Milliseconds {
    Milliseconds(1000)
}

fn default_idle_cpu_ms() -> u64 {
    10
}

impl StepFormat for CpuIdle {
    fn container_names(&self) -> Vec<&str> {
        vec![&self.container]
    }
}
