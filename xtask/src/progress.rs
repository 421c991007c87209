//! Progress lines on stderr, each stamped with the time since the run began, so that a
//! slow phase (daemon start, image builds) shows the day it regresses.

use std::time::Instant;

pub struct Progress {
    run_started: Instant,
}

impl Progress {
    pub fn new() -> Self {
        Progress { run_started: Instant::now() }
    }

    pub fn say(&self, message: &str) {
        eprintln!("[{:7.1}s] {message}", self.run_started.elapsed().as_secs_f64());
    }

    /// `message (took 1.2 s)`, for a phase that began at `phase_started`.
    pub fn done(&self, message: &str, phase_started: Instant) {
        self.say(&format!("{message} (took {:.1} s)", phase_started.elapsed().as_secs_f64()));
    }
}
