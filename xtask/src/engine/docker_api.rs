//! dockerd's HTTP API on its unix socket, for the calls made most (create and start,
//! inspect, logs, exec, rm): made in-process, without starting the docker CLI, which costs
//! 0.16 to 0.3 s a call under emulation. Image imports still go through the CLI.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::interrupt;

/// A response: its status code and its whole body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// `METHOD path` on the daemon at `socket`, with a JSON body if given. HTTP/1.0, so the
/// daemon sends the body plainly (no chunks; an exec's output as a raw stream) and closes
/// the connection after it. With `interruptible`, Ctrl-C ends the wait within 0.1 s.
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
    interruptible: bool,
) -> Result<Response> {
    let deadline = Instant::now() + timeout;
    let mut stream =
        UnixStream::connect(socket).with_context(|| format!("cannot reach dockerd at {}", socket.display()))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let body = body.unwrap_or_default();
    let content = if body.is_empty() { String::new() } else { "Content-Type: application/json\r\n".to_string() };
    let head = format!("{method} {path} HTTP/1.0\r\nHost: docker\r\n{content}Content-Length: {}\r\n\r\n", body.len());
    stream.write_all(format!("{head}{body}").as_bytes())?;
    let mut raw = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => raw.extend_from_slice(&buffer[..count]),
            Err(error)
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) =>
            {
                if interruptible {
                    interrupt::check()?;
                }
                if Instant::now() > deadline {
                    bail!("no whole answer to {method} {path} within {timeout:?}");
                }
            }
            Err(error) => return Err(error).with_context(|| format!("reading the answer to {method} {path}")),
        }
    }
    parse(&raw).with_context(|| format!("{method} {path}"))
}

/// `GET path` on the daemon at `socket`.
pub fn get(socket: &Path, path: &str, timeout: Duration) -> Result<Response> {
    request(socket, "GET", path, None, timeout, false)
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
    Ok(Response { status, body: raw[end_of_head + 4..].to_vec() })
}

/// Splits a log stream as dockerd sends it for a container without a TTY: frames of an
/// 8-byte header (stream 1 = stdout, 2 = stderr; then the length, big-endian) and the bytes.
pub fn split_log_stream(mut body: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while !body.is_empty() {
        if body.len() < 8 {
            bail!("a log frame cut short ({} bytes of header)", body.len());
        }
        let length = u32::from_be_bytes([body[4], body[5], body[6], body[7]]) as usize;
        let payload = body.get(8..8 + length).context("a log frame cut short")?;
        match body[0] {
            1 => stdout.extend_from_slice(payload),
            2 => stderr.extend_from_slice(payload),
            other => bail!("a log frame for stream {other}"),
        }
        body = &body[8 + length..];
    }
    Ok((stdout, stderr))
}

/// The field that a `{{.A.B}}` inspect template names, from `docker inspect`'s JSON, shown
/// as the CLI shows it (strings bare); None when the template is not that simple.
pub fn template_field(inspected: &serde_json::Value, template: &str) -> Option<String> {
    let path = template.strip_prefix("{{.")?.strip_suffix("}}")?;
    let mut value = inspected;
    for key in path.split('.') {
        value = value.get(key)?;
    }
    Some(match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn splits_stdout_from_stderr() {
        let mut body = vec![1, 0, 0, 0, 0, 0, 0, 3];
        body.extend_from_slice(b"out");
        body.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
        body.extend_from_slice(b"err\n");
        body.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 1]);
        body.extend_from_slice(b"\n");
        assert_eq!(split_log_stream(&body).unwrap(), (b"out\n".to_vec(), b"err\n".to_vec()));
        assert!(split_log_stream(&body[..10]).is_err());
    }

    #[test]
    fn shows_fields_as_the_cli_does() {
        let inspected: serde_json::Value = serde_json::from_str(
            r#"{"State":{"Pid":42,"Running":true,"ExitCode":0},"NetworkSettings":{"IPAddress":"172.17.0.2"}}"#,
        )
        .unwrap();
        assert_eq!(template_field(&inspected, "{{.State.Pid}}").as_deref(), Some("42"));
        assert_eq!(template_field(&inspected, "{{.State.Running}}").as_deref(), Some("true"));
        assert_eq!(template_field(&inspected, "{{.NetworkSettings.IPAddress}}").as_deref(), Some("172.17.0.2"));
        assert_eq!(template_field(&inspected, "{{json .State}}"), None);
        assert_eq!(template_field(&inspected, "{{.State.Missing}}"), None);
    }
}
