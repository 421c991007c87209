//! `xtask guest-agent`: the harness's hands inside the throwaway VM.
//!
//! Stage 2 of the guest (vm/guest-init.sh) starts it from the host's disk (the guest's root
//! is the host's, over 9p). It waits for dockerd, says so on the virtio-serial port, then
//! runs each command it is sent, with its deadline, and answers with what it did.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::command;
use crate::engine::docker_api;
use crate::engine::vm::protocol::{Answer, GuestMessage, Job, PORT_NAME, Request};

const DOCKER_SOCKET: &str = "/run/docker.sock";
const DOCKERD_LOG: &str = "/run/podlab/dockerd.log";
const DOCKERD_START_TIMEOUT: Duration = Duration::from_secs(120);

pub fn run(arguments: &[String]) -> Result<()> {
    if let Some(unknown) = arguments.first() {
        bail!("guest-agent takes no options, got `{unknown}`");
    }
    let agent_started_ms = uptime_ms();
    let port_path = find_port()?;
    let port = File::options()
        .read(true)
        .write(true)
        .open(&port_path)
        .with_context(|| format!("cannot open {}", port_path.display()))?;
    let mut writer = port.try_clone()?;
    let greeting = match wait_for_dockerd() {
        Ok(()) => GuestMessage::Ready { agent_started_ms, dockerd_ready_ms: uptime_ms() },
        Err(_) => {
            let log = std::fs::read_to_string(DOCKERD_LOG).unwrap_or_default();
            GuestMessage::DockerdFailed { log_tail: command::last_lines(&log, 20) }
        }
    };
    send(&mut writer, &greeting)?;
    // Each request runs in its own thread, so the harness can overlap them (image imports,
    // the app containers of a pod); answers go back whole, one line each, in any order.
    let writer = std::sync::Arc::new(std::sync::Mutex::new(writer));
    for line in BufReader::new(port).lines() {
        let line = line.context("cannot read from the host")?;
        if line.trim().is_empty() {
            continue;
        }
        let request: Request =
            serde_json::from_str(&line).with_context(|| format!("a request that is not JSON: {line}"))?;
        let writer = std::sync::Arc::clone(&writer);
        std::thread::spawn(move || {
            let answer = GuestMessage::Answer(answer(request));
            let mut writer = writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(error) = send(&mut writer, &answer) {
                eprintln!("guest agent: {error:#}");
            }
        });
    }
    Ok(())
}

fn answer(request: Request) -> Answer {
    let started = Instant::now();
    let timeout = Duration::from_millis(request.timeout_ms);
    let done = match &request.job {
        Job::Run(argv) => command::run(argv, timeout).map(|output| Answer {
            id: request.id,
            stdout: output.stdout,
            stderr: output.stderr,
            exit_code: output.exit_code,
            signal: output.signal,
            duration_ms: output.duration.as_millis() as u64,
            http_status: None,
            error: None,
        }),
        Job::Docker { method, path, body } => {
            docker_api::request(Path::new(DOCKER_SOCKET), method, path, body.as_deref(), timeout, false).map(
                |response| Answer {
                    id: request.id,
                    stdout: response.body,
                    stderr: String::new(),
                    exit_code: None,
                    signal: None,
                    duration_ms: started.elapsed().as_millis() as u64,
                    http_status: Some(response.status),
                    error: None,
                },
            )
        }
    };
    done.unwrap_or_else(|error| Answer {
        id: request.id,
        stdout: Vec::new(),
        stderr: String::new(),
        exit_code: None,
        signal: None,
        duration_ms: started.elapsed().as_millis() as u64,
        http_status: None,
        error: Some(format!("{error:#}")),
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

/// Pings dockerd's API until it answers `OK`: cheaper than running the docker CLI under TCG.
fn wait_for_dockerd() -> Result<()> {
    let deadline = Instant::now() + DOCKERD_START_TIMEOUT;
    while Instant::now() < deadline {
        if ping(DOCKER_SOCKET).unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("dockerd did not answer within {DOCKERD_START_TIMEOUT:?}")
}

fn ping(socket: &str) -> Result<bool> {
    let response = docker_api::get(Path::new(socket), "/_ping", Duration::from_secs(2))?;
    Ok(response.status == 200 && response.body == b"OK")
}

fn uptime_ms() -> u64 {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    let seconds: f64 = uptime.split_whitespace().next().and_then(|field| field.parse().ok()).unwrap_or(0.0);
    (seconds * 1000.0) as u64
}
