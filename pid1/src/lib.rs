//! Runs a program as PID 1 of a fresh PID namespace (or as a plain child), the way a
//! container runtime starts pause, and reads what the kernel says about it in /proc.
//!
//! Both pause's contract tests and `cargo xtask bench` start pause-like binaries this way:
//! with a chosen stderr, inherited signal state, and descendants prepared before exec
//! (a storm of orphans, a sleeping child) so that reaping can be watched from outside.

mod launch;
pub mod pidfd;
pub mod proc;

pub use launch::{Ended, Family, Launch, Running, STEP_TIMEOUT, Stderr, launch, pid_namespaces_available};
