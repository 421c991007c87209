//! `xtask guest-agent`: the harness's hands inside the throwaway VM.
//!
//! Stage 2 of the guest (vm/guest-init.sh) starts it from the host's disk (the guest's root
//! is the host's, over 9p). It says it listens on the virtio-serial port, then runs each job
//! it is sent (a command, or an HTTP request or gRPC call to a unix socket), each in its own thread and with its
//! deadline, and answers with what it did.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::side_by_side::lock;
use anyhow::{Context, Result, bail};

use super::protocol::{Answer, GuestMessage, Job, PORT_NAME, Request};
use crate::cancel::Cancel;
use crate::command;
use crate::{unix_grpc, unix_http};

pub fn run() -> Result<()> {
    let agent_started_ms = uptime_ms();
    // Beside the init's own phase lines, for `cargo xtask bench --vm-boots`.
    let _ = std::fs::write("/dev/console", format!("podlab: agent up at {:.2} s\n", agent_started_ms as f64 / 1e3));
    let port_path = find_port()?;
    let port = File::options()
        .read(true)
        .write(true)
        .open(&port_path)
        .with_context(|| format!("cannot open {}", port_path.display()))?;
    let mut writer = port.try_clone()?;
    send(&mut writer, &GuestMessage::Ready { agent_started_ms })?;
    // Each request runs in its own thread, so the harness can overlap them (image imports,
    // the app containers of a pod); answers go back whole, one line each, in any order.
    let writer = Arc::new(Mutex::new(writer));
    // The stop flags of the `Http` jobs in flight, by request id.
    let stops: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>> = Arc::default();
    for line in BufReader::new(port).lines() {
        let line = line.context("cannot read from the host")?;
        if line.trim().is_empty() {
            continue;
        }
        let request: Request =
            serde_json::from_str(&line).with_context(|| format!("a request that is not JSON: {line}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        match &request.job {
            Job::StopReading(target) => {
                if let Some(flag) = lock(&stops).get(target) {
                    flag.store(true, Ordering::SeqCst);
                }
            }
            Job::Http(_) => {
                lock(&stops).insert(request.id, Arc::clone(&stop));
            }
            Job::Run(_) | Job::Grpc(_) => {}
        }
        let (writer, stops) = (Arc::clone(&writer), Arc::clone(&stops));
        std::thread::spawn(move || {
            let id = request.id;
            let answer = GuestMessage::Answer(answer(request, &stop));
            lock(&stops).remove(&id);
            if let Err(error) = send(&mut lock(&writer), &answer) {
                eprintln!("guest agent: {error:#}");
            }
        });
    }
    Ok(())
}

fn answer(request: Request, stop: &AtomicBool) -> Answer {
    let started = Instant::now();
    let timeout = Duration::from_millis(request.timeout_ms);
    let id = request.id;
    // The host decides what Ctrl-C cuts short: here only the deadline does.
    let done = match &request.job {
        Job::Run(argv) => command::run(argv, timeout, Cancel::NEVER).map(|output| Answer {
            id,
            stdout: output.stdout,
            stderr: output.stderr,
            exit_code: output.exit_code,
            signal: output.signal,
            duration_ms: output.duration.as_millis() as u64,
            ..Answer::default()
        }),
        Job::Http(http) => unix_http::send_until(http, timeout, Cancel::NEVER, stop).map(|response| Answer {
            id,
            stdout: response.body,
            http_status: Some(response.status),
            cut_short: response.cut_short,
            duration_ms: started.elapsed().as_millis() as u64,
            ..Answer::default()
        }),
        Job::Grpc(call) => unix_grpc::send(call, timeout, Cancel::NEVER).map(|reply| Answer {
            id,
            grpc: Some(reply),
            duration_ms: started.elapsed().as_millis() as u64,
            ..Answer::default()
        }),
        Job::StopReading(_) => Ok(Answer { id, ..Answer::default() }),
    };
    done.unwrap_or_else(|error| Answer {
        id,
        duration_ms: started.elapsed().as_millis() as u64,
        error: Some(format!("{error:#}")),
        ..Answer::default()
    })
}

fn send(writer: &mut File, message: &GuestMessage) -> Result<()> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    writer.write_all(&line).context("cannot write to the host")
}

/// /dev/vportNpM whose name is ours (there is no udev in the guest to make /dev/virtio-ports/).
fn find_port() -> Result<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for entry in std::fs::read_dir("/sys/class/virtio-ports").into_iter().flatten().flatten() {
            let name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
            if name.trim() == PORT_NAME {
                return Ok(Path::new("/dev").join(entry.file_name()));
            }
        }
        if Instant::now() > deadline {
            bail!("no virtio-serial port named {PORT_NAME}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn uptime_ms() -> u64 {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    crate::host::parse_uptime(&uptime).map_or(0, |uptime| uptime.as_millis() as u64)
}
