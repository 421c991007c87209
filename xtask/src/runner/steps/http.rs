//! Runs an `http` step: a GET with curl where the pod runs.

use anyhow::{Result, bail};

use super::{QUICK, RunStep, StepContext, check_text};
use crate::cancel::Cancel;
use crate::command::argv;
use crate::host::Host;
use crate::scenario::steps::Http;

impl RunStep for Http {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        let url = format!("http://127.0.0.1:{}{}", context.pod.ports.published(self.port), self.path);
        let response = http_get(context.host(), &url, context.cancel)?;
        if let Some(expected) = self.status {
            if response.status != Some(expected) {
                let actual =
                    response.status.map_or(format!("no answer ({})", response.error), |status| status.to_string());
                bail!("expected HTTP {expected} from {url}, got {actual}");
            }
        }
        check_text("body", self.body.as_ref(), &response.body, &context.variables)?;
        Ok(())
    }
}

struct HttpResponse {
    status: Option<u16>,
    body: String,
    /// Why there is no status, when there is none.
    error: String,
}

/// A GET with curl on the host where the pod runs: the same client on this machine and in a guest.
fn http_get(host: &dyn Host, url: &str, cancel: Cancel) -> Result<HttpResponse> {
    let request = argv(&[
        "curl",
        "--silent",
        "--show-error",
        "--max-time",
        "10",
        "--noproxy",
        "*",
        "--write-out",
        "\n%{http_code}",
        url,
    ]);
    let output = host.run(&request, QUICK, cancel)?;
    let text = output.stdout_text();
    // curl appends the status after the body, on a line of its own; 000 when nothing answered.
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    Ok(HttpResponse {
        status: status.parse().ok().filter(|status| *status != 0),
        body: body.to_string(),
        error: output.stderr.trim().to_string(),
    })
}
