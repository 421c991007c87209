//! dockerd's API, the parts the runtime reads: its error answers, its multiplexed log and
//! exec streams, and the JSON of `inspect` (the same from the API and from `docker inspect`).

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::runtime::ContainerState;
use crate::unix_http::Response;

/// dockerd's error answer: `{"message": "..."}`, or the status.
pub fn error_of(response: &Response) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|body| body.get("message")?.as_str().map(str::to_string));
    message.unwrap_or_else(|| format!("HTTP {}", response.status))
}

/// A container or exec name as one path segment of an API URL: the names scenarios use need
/// no escaping, and anything else is refused rather than sent half-escaped.
pub fn path_segment(name: &str) -> Result<&str> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/:".contains(c)) {
        bail!("`{name}` is not a name dockerd accepts");
    }
    Ok(name)
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

/// What the runtime reads of `GET /containers/NAME/json` (or `docker inspect`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspected {
    pub state: InspectedState,
    pub network_settings: InspectedNetwork,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectedState {
    pub running: bool,
    pub pid: u32,
    pub exit_code: i64,
}

#[derive(Debug, Deserialize)]
pub struct InspectedNetwork {
    #[serde(rename = "IPAddress", default)]
    pub ip_address: String,
}

impl Inspected {
    pub fn state(&self) -> ContainerState {
        let state = &self.state;
        ContainerState {
            running: state.running,
            pid: (state.running && state.pid != 0).then_some(state.pid),
            exit_code: (!state.running).then_some(state.exit_code),
        }
    }
}

/// What the runtime reads of `GET /exec/ID/json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectedExec {
    pub running: bool,
    /// Null until dockerd has seen the exec end.
    pub exit_code: Option<i64>,
    /// The exec's process on the daemon's host; 0 before it started.
    #[serde(default)]
    pub pid: u32,
}

/// What the runtime reads of `GET /images/NAME/json` (or `docker image inspect`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectedImage {
    pub config: ImageConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn reads_the_state_of_a_running_and_an_exited_container() {
        let running: Inspected = serde_json::from_str(
            r#"{"State":{"Pid":42,"Running":true,"ExitCode":0},"NetworkSettings":{"IPAddress":"172.17.0.2"}}"#,
        )
        .unwrap();
        assert_eq!(running.state(), ContainerState { running: true, pid: Some(42), exit_code: None });
        assert_eq!(running.network_settings.ip_address, "172.17.0.2");
        let exited: Inspected =
            serde_json::from_str(r#"{"State":{"Pid":0,"Running":false,"ExitCode":137},"NetworkSettings":{}}"#).unwrap();
        assert_eq!(exited.state(), ContainerState { running: false, pid: None, exit_code: Some(137) });
    }

    #[test]
    fn names_that_need_escaping_are_refused() {
        assert_eq!(path_segment("podlab/pause").unwrap(), "podlab/pause");
        assert!(path_segment("a b").is_err());
        assert!(path_segment("").is_err());
    }
}
