//! What the harness and its agent in the guest say to each other over the virtio-serial
//! port: one JSON object a line. The guest speaks first (`Ready`), then answers each request,
//! in any order: every answer carries its request's id.

use serde::{Deserialize, Serialize};

use crate::{unix_grpc, unix_http};

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
    /// An HTTP request to a unix socket in the guest (a runtime's API): the answer carries
    /// the status in `http_status` and the body in `stdout`.
    Http(unix_http::Request),
    /// A gRPC call to a unix socket in the guest (containerd): the answer carries the reply in `grpc`.
    Grpc(unix_grpc::Call),
    /// Stop reading the answer to the `Http` job with this id: it answers at once with what
    /// came until then (`cut_short`). This job's own answer is empty.
    StopReading(u64),
}

impl Job {
    /// For messages: the command line, or the request line.
    pub fn describe(&self) -> String {
        match self {
            Job::Run(argv) => argv.join(" "),
            Job::Http(request) => request.describe(),
            Job::Grpc(call) => call.describe(),
            Job::StopReading(id) => format!("stop reading the answer to request {id}"),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum GuestMessage {
    /// The agent listens; the time is the guest's uptime, in milliseconds.
    Ready {
        agent_started_ms: u64,
    },
    Answer(Answer),
}

/// What a job did, with stdout, stderr, exit code, signal and duration kept apart.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Answer {
    pub id: u64,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u64,
    /// The status of an `Http` job, and whether it was stopped before the server closed.
    pub http_status: Option<u16>,
    pub cut_short: bool,
    /// The reply to a `Grpc` job.
    pub grpc: Option<unix_grpc::Reply>,
    /// Set when the job could not run or was stopped at its deadline.
    pub error: Option<String>,
}
