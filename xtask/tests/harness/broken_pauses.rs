//! Each broken pause of tests/broken-pauses on each runtime with facts of its own: the scenario
//! its fixture names fails, saying the broken promise.

use std::path::{Path, PathBuf};

use libtest_mimic::{Failed, Trial};

use crate::support::{compile_fixture, nothing_left, run_xtask};

/// What a broken pause must do to the suite, from the `// harness:` lines of its fixture: the
/// scenario it fails (`fails SCENARIO`, and `on KEY fails SCENARIO` where a runtime's facts
/// differ) and a phrase the failure says (`saying PHRASE`).
#[derive(Clone)]
struct BrokenPause {
    fixture: String,
    fails: String,
    fails_on: Vec<(String, String)>,
    saying: String,
}

impl BrokenPause {
    /// Every fixture of tests/broken-pauses, by name.
    fn all() -> Vec<BrokenPause> {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken-pauses");
        let mut sources: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "c"))
            .collect();
        sources.sort();
        sources.iter().map(|source| BrokenPause::read(source)).collect()
    }

    fn read(source: &Path) -> BrokenPause {
        let text =
            std::fs::read_to_string(source).unwrap_or_else(|error| panic!("cannot read {}: {error}", source.display()));
        let fixture = source.file_stem().unwrap().to_string_lossy().into_owned();
        let (mut fails, mut fails_on, mut saying) = (None, Vec::new(), None);
        for line in text.lines().filter_map(|line| line.strip_prefix("// harness: ")) {
            if let Some(scenario) = line.strip_prefix("fails ") {
                fails = Some(scenario.to_string());
            } else if let Some((key, rest)) = line.strip_prefix("on ").and_then(|rest| rest.split_once(" fails ")) {
                let scenario = rest.split(" (").next().unwrap_or(rest);
                fails_on.push((key.to_string(), scenario.to_string()));
            } else if let Some(phrase) = line.strip_prefix("saying ") {
                saying = Some(phrase.to_string());
            } else {
                panic!(
                    "{}: a `// harness:` line says `fails`, `on KEY fails` or `saying`, not `{line}`",
                    source.display()
                );
            }
        }
        let missing = |what: &str| panic!("{}: no `// harness: {what}` line", source.display());
        BrokenPause {
            fixture,
            fails: fails.unwrap_or_else(|| missing("fails SCENARIO")),
            fails_on,
            saying: saying.unwrap_or_else(|| missing("saying PHRASE")),
        }
    }

    /// The scenario it must fail on a runtime whose facts are `facts`.
    fn scenario_on(&self, facts: &str) -> &str {
        self.fails_on.iter().find(|(key, _)| key == facts).map_or(&self.fails, |(_, scenario)| scenario)
    }
}

/// A pause that breaks a promise makes its scenario fail (exit 101), naming the promise.
fn broken_pause_fails(runtime: &str, fixture: &str, scenario: &str, phrase: &str) -> Result<(), Failed> {
    let work = tempfile::tempdir()?;
    let binary = compile_fixture(fixture, work.path())?;
    let pause_bin = binary.to_string_lossy().into_owned();
    let arguments = ["test", "--on", "host", "--runtime", runtime, "--pause-bin", &pause_bin, scenario, "--exact"];
    let run = run_xtask(&arguments, None)?;
    if run.status.code() != Some(101) {
        return Err(format!("expected exit code 101 (a scenario failed), got {:?}\n{}", run.status, run.output).into());
    }
    if !run.output.contains(phrase) {
        return Err(format!("expected the failure to say {phrase:?}, the output was:\n{}", run.output).into());
    }
    nothing_left(run.pid)
}

/// Each broken pause on each runtime with facts of its own (podman-kube's are podman's).
pub fn trials() -> Vec<Trial> {
    let runtimes = xtask::RUNTIMES.iter().filter(|runtime| runtime.name() == runtime.facts());
    let broken_pauses = BrokenPause::all();
    runtimes
        .flat_map(|runtime| {
            broken_pauses.clone().into_iter().map(move |broken| {
                let name = format!("broken_pause::{}::{}", runtime.name(), broken.fixture);
                Trial::test(name, move || {
                    let scenario = broken.scenario_on(runtime.facts());
                    broken_pause_fails(runtime.name(), &broken.fixture, scenario, &broken.saying)
                })
            })
        })
        .collect()
}
