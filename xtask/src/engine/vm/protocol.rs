//! What the harness and its agent in the guest say to each other over the virtio-serial
//! port: one JSON object a line. The guest speaks first (`Ready`), then answers each request.

use serde::{Deserialize, Serialize};

/// The name of the virtio-serial port, as the guest finds it under /sys/class/virtio-ports.
pub const PORT_NAME: &str = "podlab.agent";

/// Something to do in the guest, with its deadline.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub job: Job,
    pub timeout_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Job {
    /// Run a command: the answer carries its stdout, stderr, exit code or signal.
    Run(Vec<String>),
    /// A request to dockerd's API socket: the answer carries the status in `http_status`
    /// and the body in `stdout`.
    Docker { method: String, path: String, body: Option<String> },
}

impl Job {
    /// For messages: the command line, or the request line.
    pub fn describe(&self) -> String {
        match self {
            Job::Run(argv) => argv.join(" "),
            Job::Docker { method, path, .. } => format!("{method} {path} (dockerd's API)"),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum GuestMessage {
    /// dockerd answers; the times are the guest's uptime, in milliseconds.
    Ready {
        agent_started_ms: u64,
        dockerd_ready_ms: u64,
    },
    /// dockerd did not come up: the end of its log says why.
    DockerdFailed {
        log_tail: String,
    },
    Answer(Answer),
}

/// What a command did, with stdout, stderr, exit code, signal and duration kept apart.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    pub id: u64,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u64,
    /// The status of a `DockerGet`.
    pub http_status: Option<u16>,
    /// Set when the command could not run or was stopped at its deadline.
    pub error: Option<String>,
}
