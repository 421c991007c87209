//! `cargo xtask compare` with a broken pause beside ours.

use std::path::Path;

use libtest_mimic::Failed;

use crate::support::{compile_fixture, run_xtask};

/// `compare` with one broken pause beside ours: the matrix says ours passed and names the
/// broken one's promise, in the table and in matrix.json, and a finding is no error (exit 0).
pub fn compare_a_broken_pause_beside_ours() -> Result<(), Failed> {
    let work = tempfile::tempdir()?;
    let binary = compile_fixture("leaks-a-descriptor", work.path())?;
    let pause_bin = binary.to_string_lossy().into_owned();
    let arguments = ["compare", "--on", "host", "--no-references", "--pause-bin", &pause_bin, "pause-process"];
    let run = run_xtask(&arguments, None)?;
    let row = run.output.lines().find(|line| line.starts_with("| scenarios/pause-process"));
    let expected = ["| passed", "| FAILED: step 1: expected the open files of pause to match"];
    if run.status.code() != Some(0) || !row.is_some_and(|row| expected.iter().all(|cell| row.contains(cell))) {
        return Err(
            format!("expected exit code 0 and a row with {expected:?}, got {:?}\n{}", run.status, run.output).into()
        );
    }
    let matrix_md = run.output.lines().find_map(|line| line.strip_prefix("matrix: ")).ok_or("no matrix: line")?;
    let matrix_json = Path::new(matrix_md).with_file_name("matrix.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&matrix_json)?)?;
    let cells = &json["scenarios"]["scenarios/pause-process"];
    if cells["podlab pause"]["outcome"] != "passed" || cells[pause_bin.as_str()]["outcome"] != "failed" {
        return Err(format!("expected passed and failed in {}, got {cells}", matrix_json.display()).into());
    }
    Ok(())
}
