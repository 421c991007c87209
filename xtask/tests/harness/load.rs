//! A scenario that does not load stops the run before any container exists.

use libtest_mimic::Failed;

use crate::support::run_xtask;

/// A scenario that does not load stops the run with exit code 2, naming file, line and field.
pub fn load_error_stops_early() -> Result<(), Failed> {
    let work = tempfile::tempdir()?;
    std::fs::write(
        work.path().join("broken.json"),
        "{\n  \"schema_version\": 1,\n  \"description\": \"typo\",\n  \"pod\": { \"infra\": { \"name\": \"pause\", \"imgae\": \"x\" }, \"containers\": [] },\n  \"steps\": []\n}\n",
    )?;
    let scenarios = work.path().to_string_lossy().into_owned();
    let run = run_xtask(&["test", "--scenarios", &scenarios], None)?;
    let expected = "broken.json:4:46: pod.infra.imgae: unknown field `imgae`";
    if run.status.code() != Some(2) || !run.output.contains(expected) {
        return Err(format!("expected exit code 2 and {expected:?}, got {:?}\n{}", run.status, run.output).into());
    }
    if run.output.contains("dockerd ready") {
        return Err("the daemon was started although a scenario did not load".into());
    }
    Ok(())
}
