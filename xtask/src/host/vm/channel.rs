//! The harness's end of the agent's port. Requests may overlap (the agent runs each in its
//! own thread): every request waits for the answer with its id, which a reader thread hands
//! to it; a request given up on (Ctrl-C, its deadline) leaves the table, and its late answer
//! is dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::side_by_side::lock;
use anyhow::{Context, Result, bail};

use super::protocol::{Answer, GuestMessage, Job, Request};
use crate::cancel::Cancel;

/// Extra time the host waits for an answer beyond the job's own deadline in the guest.
const ANSWER_MARGIN: Duration = Duration::from_secs(30);

type Waiting = Arc<Mutex<HashMap<u64, mpsc::Sender<Answer>>>>;

pub struct Channel {
    writer: Mutex<UnixStream>,
    next_id: AtomicU64,
    waiting: Waiting,
}

impl Channel {
    /// Starts reading the port; the agent's other messages (`Ready`) come out of the receiver.
    pub fn open(stream: UnixStream) -> Result<(Channel, Receiver<GuestMessage>)> {
        let reader = stream.try_clone()?;
        let (sender, messages) = mpsc::channel();
        let waiting: Waiting = Arc::default();
        let answers_to = Arc::clone(&waiting);
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                match serde_json::from_str::<GuestMessage>(&line) {
                    Ok(GuestMessage::Answer(answer)) => {
                        let waiter = lock(&answers_to).remove(&answer.id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(answer);
                        }
                    }
                    Ok(message) => {
                        let _ = sender.send(message);
                    }
                    Err(_) => eprintln!("warning: the guest agent said something unreadable: {line}"),
                }
            }
            // The port closed: every waiting request sees its sender dropped.
            lock(&answers_to).clear();
        });
        Ok((Channel { writer: Mutex::new(stream), next_id: AtomicU64::new(1), waiting }, messages))
    }

    /// Sends a job to the agent and waits for its answer (other jobs may be in flight).
    /// `guest_alive` says why the guest is gone, if it is: it is asked while waiting, so
    /// that a dead guest ends the wait at once. When `stop` becomes true, the agent is told to
    /// stop reading an `Http` job's answer and to send what came until then.
    pub fn ask(
        &self,
        job: Job,
        timeout: Duration,
        cancel: Cancel,
        stop: &AtomicBool,
        guest_alive: &dyn Fn() -> Result<()>,
    ) -> Result<Answer> {
        guest_alive()?;
        let started = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer_sender, answer) = mpsc::channel();
        lock(&self.waiting).insert(id, answer_sender);
        // However this wait ends, its entry goes: a late answer is then dropped.
        let _forget = Forget { waiting: &self.waiting, id };
        if let Err(error) = self.send(id, job.clone(), timeout) {
            guest_alive()?;
            return Err(error);
        }
        let deadline = started + timeout + ANSWER_MARGIN;
        let mut stop_sent = false;
        loop {
            cancel.check()?;
            if !stop_sent && stop.load(Ordering::SeqCst) {
                // Nobody waits for this job's own (empty) answer: the reader drops it.
                let stop_id = self.next_id.fetch_add(1, Ordering::Relaxed);
                self.send(stop_id, Job::StopReading(id), Duration::from_secs(10))?;
                stop_sent = true;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                bail!("the guest agent did not answer `{}` within {:?}", job.describe(), timeout + ANSWER_MARGIN);
            }
            match answer.recv_timeout(remaining.min(Duration::from_millis(50))) {
                Ok(answer) => return Ok(answer),
                Err(RecvTimeoutError::Timeout) => guest_alive()?,
                Err(RecvTimeoutError::Disconnected) => {
                    guest_alive()?;
                    bail!("the guest agent closed its port");
                }
            }
        }
    }
}

impl Channel {
    fn send(&self, id: u64, job: Job, timeout: Duration) -> Result<()> {
        let mut line = serde_json::to_vec(&Request { id, job, timeout_ms: timeout.as_millis() as u64 })?;
        line.push(b'\n');
        lock(&self.writer).write_all(&line).context("cannot write to the guest agent")
    }
}

/// Takes a request's entry out of the waiting table when its wait ends.
struct Forget<'table> {
    waiting: &'table Waiting,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.waiting).remove(&self.id);
    }
}
