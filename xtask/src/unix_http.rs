//! HTTP/1.0 on a unix socket: how a runtime's API is asked (dockerd's today), in-process,
//! where starting a CLI costs 0.16 to 0.3 s a call under emulation. The guest's agent sends
//! these requests for the harness, so a `Request` crosses the virtio-serial port as JSON.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;

/// `METHOD path` to the server on `socket`, with a JSON body if given.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub socket: PathBuf,
    pub method: String,
    pub path: String,
    pub body: Option<String>,
}

impl Request {
    pub fn get(socket: impl Into<PathBuf>, path: impl Into<String>) -> Request {
        Request { socket: socket.into(), method: "GET".to_string(), path: path.into(), body: None }
    }

    pub fn new(socket: impl Into<PathBuf>, method: &str, path: impl Into<String>, body: Option<String>) -> Request {
        Request { socket: socket.into(), method: method.to_string(), path: path.into(), body }
    }

    /// For messages: `POST /containers/create (on /run/docker.sock)`.
    pub fn describe(&self) -> String {
        format!("{} {} (on {})", self.method, self.path, self.socket.display())
    }
}

/// A response: its status code and its body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The caller stopped reading before the server closed: `body` is what came until then.
    pub cut_short: bool,
}

/// Sends `request` on this machine and reads the whole answer. HTTP/1.0, so the server sends
/// the body plainly (no chunks; an exec's output as a raw stream) and closes the connection
/// after it. Unless `cancel` is `Cancel::NEVER`, the wait ends within 0.1 s of Ctrl-C.
pub fn send(request: &Request, timeout: Duration, cancel: Cancel) -> Result<Response> {
    send_until(request, timeout, cancel, &AtomicBool::new(false))
}

/// Like `send`, but stops reading within 0.1 s of `stop` becoming true, and returns what came
/// until then (`cut_short`): for a stream the server may never close (dockerd's exec stream,
/// when the exec's container exits under it).
pub fn send_until(request: &Request, timeout: Duration, cancel: Cancel, stop: &AtomicBool) -> Result<Response> {
    let Request { socket, method, path, body } = request;
    let deadline = Instant::now() + timeout;
    let mut stream =
        UnixStream::connect(socket).with_context(|| format!("cannot reach the API at {}", socket.display()))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let body = body.as_deref().unwrap_or_default();
    let content = if body.is_empty() { String::new() } else { "Content-Type: application/json\r\n".to_string() };
    let head = format!("{method} {path} HTTP/1.0\r\nHost: podlab\r\n{content}Content-Length: {}\r\n\r\n", body.len());
    stream.write_all(format!("{head}{body}").as_bytes())?;
    let mut raw = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    let mut cut_short = false;
    loop {
        if stop.load(Ordering::SeqCst) {
            cut_short = true;
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => raw.extend_from_slice(&buffer[..count]),
            Err(error)
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) =>
            {
                cancel.check()?;
                if Instant::now() > deadline {
                    bail!("no whole answer to {method} {path} within {timeout:?}");
                }
            }
            Err(error) => return Err(error).with_context(|| format!("reading the answer to {method} {path}")),
        }
    }
    let mut response = parse(&raw).with_context(|| format!("{method} {path}"))?;
    response.cut_short = cut_short;
    Ok(response)
}

fn parse(raw: &[u8]) -> Result<Response> {
    let end_of_head = raw.windows(4).position(|window| window == b"\r\n\r\n").context("no end of the headers")?;
    let head = String::from_utf8_lossy(&raw[..end_of_head]);
    let status_line = head.lines().next().unwrap_or_default();
    let status = match status_line.split_whitespace().collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/1.") => code.parse().ok(),
        _ => None,
    };
    let Some(status) = status else { bail!("not an HTTP answer: {status_line:?}") };
    Ok(Response { status, body: raw[end_of_head + 4..].to_vec(), cut_short: false })
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn reads_status_and_body() {
        let response = parse(
            b"HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"message\":\"No such container: x\"}\n",
        )
        .unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.body, b"{\"message\":\"No such container: x\"}\n");
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    /// A real socket: the request goes out whole, the answer comes back whole when the
    /// server closes, and a server that never closes ends at the deadline.
    #[test]
    fn asks_a_server_on_a_socket() {
        let directory = tempfile::tempdir().unwrap();
        let socket = directory.path().join("api.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut seen = vec![0u8; 4096];
            let count = stream.read(&mut seen).unwrap();
            stream.write_all(b"HTTP/1.0 201 Created\r\n\r\n{\"Id\":\"abc\"}").unwrap();
            drop(stream);
            let (_silent, _) = listener.accept().unwrap();
            let (mut endless, _) = listener.accept().unwrap();
            endless.write_all(b"HTTP/1.0 200 OK\r\n\r\npart").unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            String::from_utf8_lossy(&seen[..count]).into_owned()
        });
        let request = Request::new(&socket, "POST", "/containers/create?name=x", Some("{}".to_string()));
        let response = send(&request, Duration::from_secs(5), Cancel::NEVER).unwrap();
        assert_eq!((response.status, response.body.as_slice()), (201, b"{\"Id\":\"abc\"}".as_slice()));
        let started = Instant::now();
        let error = send(&Request::get(&socket, "/_ping"), Duration::from_millis(300), Cancel::NEVER).unwrap_err();
        assert!(error.to_string().contains("no whole answer to GET /_ping"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // A stream that never ends, read until the caller says stop: what came is kept.
        let stop = AtomicBool::new(false);
        let stopped = std::thread::scope(|scope| {
            let reader = scope
                .spawn(|| send_until(&Request::get(&socket, "/stream"), Duration::from_secs(30), Cancel::NEVER, &stop));
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::SeqCst);
            reader.join().unwrap().unwrap()
        });
        assert_eq!((stopped.status, stopped.body.as_slice(), stopped.cut_short), (200, b"part".as_slice(), true));
        let seen = server.join().unwrap();
        assert!(seen.starts_with("POST /containers/create?name=x HTTP/1.0\r\n"), "{seen}");
        assert!(seen.ends_with("Content-Length: 2\r\n\r\n{}"), "{seen}");
    }
}
