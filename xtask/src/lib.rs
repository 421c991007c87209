//! podlab's harness as a library: every module of `cargo xtask`, so that `main.rs` only parses
//! and dispatches, and the harness's own tests (`xtask/tests/`) use the same names and types.

mod cancel;
mod command;
pub mod commands;
/// Only for xtask/tests/harness/: faults injected around the lab's runtime.
#[cfg(feature = "fault-injection")]
mod faults;
pub mod host;
mod host_ports;
mod images;
mod lab;
#[cfg(test)]
mod layers;
mod machine;
pub mod names;

/// The runtimes, for the harness tests, which run their trials on each.
pub use runtime::{RUNTIMES, RuntimeKind};
mod pause_build;
mod plan;
mod pod;
mod progress;
mod report;
mod runner;
mod runtime;
mod scenario;
mod side_by_side;
mod terminal;
mod unix_grpc;
mod unix_http;

/// Exit code when the harness itself could not do its job (bad arguments, missing
/// prerequisite), as opposed to a measured or tested failure. clap exits with it too.
pub const EXIT_HARNESS_ERROR: u8 = 2;
