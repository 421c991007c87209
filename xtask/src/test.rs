//! `cargo xtask test`: runs every scenario as a libtest-mimic trial against an engine.
//!
//! Our options (`--engine`, `--pause-bin`, ...) are taken out; everything else goes to
//! libtest-mimic, so filters, `--list`, `--exact`, `--skip` work as in `cargo test`.
//! The engine and the images are set up once, by the first trial that runs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use libtest_mimic::{Arguments, Failed, Trial};

use crate::engine::Engine;
use crate::engine::vm::VmOptions;
use crate::progress::Progress;
use crate::report::{self, RunFacts};
use crate::runner::{self, ScenarioReport};
use crate::scenario::{self, Scenario};
use crate::setup::{self, EngineChoice};
use crate::{EXIT_HARNESS_ERROR, interrupt, pause_build};

pub const HELP: &str = "\
Usage: cargo xtask test [options] [-- ] [libtest options] [FILTER]

Runs the scenarios under scenarios/ against pause, one trial per scenario.

Options:
  --engine vm|docker    where the pod runs. vm (the default): a throwaway QEMU guest with Docker,
                        booted from this host's kernel and root. docker: a Docker daemon on this
                        host (DOCKER_HOST when it answers, else a private dockerd).
  --kernel PATH         the guest's kernel (default: the newest /boot/vmlinuz-* with its /lib/modules)
  --require-kvm         fail rather than fall back to TCG when KVM does not work
  --pause-bin PATH      test this pause binary instead of building the workspace's
  --scenarios DIR       run the scenarios of DIR (default: the workspace's scenarios/)
  --run-timeout SECS    stop the whole run after this long (default 1800)

Everything else goes to the test runner, as with cargo test: FILTER, --exact, --skip PATTERN,
--list, --ignored, --nocapture.

Exit codes: 0 every scenario passed; 101 a scenario failed; 2 the harness could not run
(bad arguments, a scenario that does not load, a missing prerequisite, a daemon that would not
start, an incomplete cleanup: the message says which); 130 interrupted by Ctrl-C or SIGTERM,
or the run's deadline passed.
Artifacts of each run: target/podlab/<run>/ (console.log and qemu.log for the vm engine, dockerd.log,
each container's logs, report.json, junit.xml).";

pub const EXIT_SCENARIO_FAILED: u8 = 101;
pub const EXIT_INTERRUPTED: u8 = 130;

struct Options {
    engine: String,
    vm: VmOptions,
    pause_bin: Option<PathBuf>,
    scenarios_dir: PathBuf,
    run_timeout: Duration,
    libtest: Vec<String>,
}

/// Shared by the trials: set up on first use, torn down after the last.
struct Lab {
    options_engine: String,
    vm_options: VmOptions,
    pause_binary: Option<PathBuf>,
    run_id: String,
    run_dir: PathBuf,
    progress: Progress,
    engine: Option<Box<dyn Engine>>,
    harness_error: Option<String>,
    reports: Vec<ScenarioReport>,
}

pub fn run(arguments: &[String]) -> Result<u8> {
    let Some(options) = parse(arguments)? else {
        println!("{HELP}");
        return Ok(0);
    };
    interrupt::install()?;
    let scenarios = scenario::load_all(&options.scenarios_dir)?;
    if scenarios.is_empty() {
        bail!("no scenario in {}", options.scenarios_dir.display());
    }
    let mut libtest_arguments =
        Arguments::from_iter(std::iter::once("cargo xtask test".to_string()).chain(options.libtest));
    // One pod at a time: scenarios share the daemon, container names and published ports.
    libtest_arguments.test_threads = Some(1);

    let run_started = Instant::now();
    let run_id = run_id();
    let run_dir = pause_build::workspace_root().join("target/podlab").join(&run_id);
    let lab = Arc::new(Mutex::new(Lab {
        options_engine: options.engine.clone(),
        vm_options: options.vm,
        pause_binary: options.pause_bin.clone(),
        run_id: run_id.clone(),
        run_dir: run_dir.clone(),
        progress: Progress::new(),
        engine: None,
        harness_error: None,
        reports: Vec::new(),
    }));
    start_deadline(options.run_timeout);

    let trials = scenarios.into_iter().map(|scenario| trial(scenario, Arc::clone(&lab))).collect();
    let conclusion = libtest_mimic::run(&libtest_arguments, trials);

    let mut lab = lab.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut cleanup = Ok(());
    let mut engine_details = lab.options_engine.clone();
    if let Some(mut engine) = lab.engine.take() {
        engine_details = engine.details();
        let shutdown_started = Instant::now();
        cleanup = engine.shut_down();
        drop(engine);
        lab.progress.done(&format!("{} engine shut down", lab.options_engine), shutdown_started);
    }
    // Reports exist once set-up began, even if it failed: they say why.
    if run_dir.is_dir() {
        let facts = RunFacts {
            run_id: &lab.run_id,
            engine: &engine_details,
            pause_binary: lab.pause_binary.as_deref().unwrap_or(Path::new("")),
            duration: run_started.elapsed(),
            harness_error: lab.harness_error.clone(),
        };
        report::write_all(&run_dir, &facts, &lab.reports)?;
        print_summary(&lab.reports, run_started.elapsed(), &run_dir);
    }
    if let Err(error) = cleanup {
        eprintln!("error: {error:#}");
        return Ok(EXIT_HARNESS_ERROR);
    }
    Ok(if interrupt::interrupted() {
        EXIT_INTERRUPTED
    } else if lab.harness_error.is_some() {
        EXIT_HARNESS_ERROR
    } else if conclusion.has_failed() {
        EXIT_SCENARIO_FAILED
    } else {
        0
    })
}

fn parse(arguments: &[String]) -> Result<Option<Options>> {
    let mut options = Options {
        engine: "vm".to_string(),
        vm: VmOptions { kernel: None, require_kvm: false },
        pause_bin: None,
        scenarios_dir: pause_build::workspace_root().join("scenarios"),
        run_timeout: Duration::from_secs(1800),
        libtest: Vec::new(),
    };
    let mut arguments = arguments.iter();
    while let Some(argument) = arguments.next() {
        let (name, inline_value) = match argument.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_string())),
            _ => (argument.as_str(), None),
        };
        let mut value = || {
            inline_value.clone().or_else(|| arguments.next().cloned()).with_context(|| format!("{name} needs a value"))
        };
        match name {
            "--help" | "-h" => return Ok(None),
            "--engine" => options.engine = value()?,
            "--kernel" => options.vm.kernel = Some(PathBuf::from(value()?)),
            "--require-kvm" => options.vm.require_kvm = true,
            "--pause-bin" => {
                let path = PathBuf::from(value()?);
                if !path.is_file() {
                    bail!("--pause-bin {}: no such file", path.display());
                }
                options.pause_bin = Some(path.canonicalize()?);
            }
            "--scenarios" => options.scenarios_dir = PathBuf::from(value()?),
            "--run-timeout" => {
                options.run_timeout = Duration::from_secs(value()?.parse().context("--run-timeout takes seconds")?)
            }
            "--" => {}
            _ => options.libtest.push(argument.clone()),
        }
    }
    match options.engine.as_str() {
        "docker" | "vm" => {}
        other => bail!("unknown engine `{other}`: use --engine vm or --engine docker"),
    }
    Ok(Some(options))
}

fn trial(scenario: Scenario, lab: Arc<Mutex<Lab>>) -> Trial {
    let name = trial_name(&scenario.path);
    Trial::test(name.clone(), move || {
        let mut lab = lab.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        set_up(&mut lab).map_err(|error| Failed::from(format!("the harness could not run: {error:#}")))?;
        interrupt::check().map_err(|error| Failed::from(error.to_string()))?;
        let engine = lab.engine.as_deref().expect("set_up made the engine");
        let logs_dir = lab.run_dir.join(name.trim_start_matches("scenarios/"));
        lab.progress.say(&format!("{name}: {}", scenario.description));
        let report = runner::run_scenario(engine, engine.run_label(), &scenario, &name, &logs_dir);
        lab.progress.say(&format!(
            "{name}: {} in {:.1} s",
            if report.passed() { "passed" } else { "FAILED" },
            report.duration.as_secs_f64()
        ));
        let outcome = if report.passed() { Ok(()) } else { Err(Failed::from(report.failure_message())) };
        lab.reports.push(report);
        outcome
    })
}

/// `scenarios/seed-pod` for `.../scenarios/seed-pod.json`.
fn trial_name(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let folder = path.parent().and_then(Path::file_name).unwrap_or_default().to_string_lossy();
    format!("{folder}/{stem}")
}

/// Starts the engine and imports the images, once; a failure is remembered for every trial.
fn set_up(lab: &mut Lab) -> Result<()> {
    if let Some(error) = &lab.harness_error {
        bail!("{error}");
    }
    if lab.engine.is_some() {
        return Ok(());
    }
    let result = start_engine_and_images(lab);
    if let Err(error) = &result {
        lab.harness_error = Some(format!("{error:#}"));
    }
    result
}

fn start_engine_and_images(lab: &mut Lab) -> Result<()> {
    std::fs::create_dir_all(&lab.run_dir).with_context(|| format!("cannot create {}", lab.run_dir.display()))?;
    lab.progress.say(&format!(
        "run {} (engine {}), artifacts in {}",
        lab.run_id,
        lab.options_engine,
        lab.run_dir.display()
    ));
    let choice = EngineChoice { name: lab.options_engine.clone(), vm: lab.vm_options.clone(), interactive: false };
    let ready =
        setup::engine_with_images(&choice, lab.pause_binary.as_deref(), &lab.run_dir, &lab.run_id, &lab.progress)?;
    lab.pause_binary = Some(ready.pause_binary);
    lab.engine = Some(ready.engine);
    Ok(())
}

/// After `timeout`, the run is stopped as Ctrl-C would stop it: every wait ends, cleanup runs.
fn start_deadline(timeout: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        eprintln!("error: the run's deadline ({} s) passed: stopping", timeout.as_secs());
        interrupt::trigger();
    });
}

fn print_summary(reports: &[ScenarioReport], run_duration: Duration, run_dir: &Path) {
    eprintln!("\nscenario times:");
    for report in reports {
        eprintln!(
            "  {:6.1} s  {}  {}",
            report.duration.as_secs_f64(),
            if report.passed() { "ok    " } else { "FAILED" },
            report.name
        );
    }
    eprintln!("  {:6.1} s  whole run", run_duration.as_secs_f64());
    eprintln!("artifacts: {}", run_dir.display());
}

/// `20261129-201500-12345`: UTC time of the run plus our pid, sortable and unique enough.
fn run_id() -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let (hour, minute, second) = (second_of_day / 3600, second_of_day % 3600 / 60, second_of_day % 60);
    format!("{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}-{}", std::process::id())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::argv as arguments;

    #[test]
    fn our_options_are_taken_and_the_rest_goes_to_libtest() {
        let options = parse(&arguments(&["--engine=docker", "--run-timeout", "60", "seed", "--exact", "--", "--list"]))
            .unwrap()
            .unwrap();
        assert_eq!(options.engine, "docker");
        assert_eq!(options.run_timeout, Duration::from_secs(60));
        assert_eq!(options.libtest, ["seed", "--exact", "--list"]);
    }

    #[test]
    fn bad_options_are_named() {
        let error = |list: &[&str]| parse(&arguments(list)).err().map(|error| error.to_string()).unwrap_or_default();
        assert_eq!(error(&["--engine", "podman"]), "unknown engine `podman`: use --engine vm or --engine docker");
        assert_eq!(error(&["--pause-bin", "/no/such/pause"]), "--pause-bin /no/such/pause: no such file");
        assert_eq!(error(&["--engine"]), "--engine needs a value");
    }

    /// `nix flake check` cannot run here (no binary cache), so this keeps its NixOS test honest:
    /// the `xtask test` command it runs must parse with today's options, on today's scenarios.
    #[test]
    fn the_flake_runs_options_and_scenarios_that_exist() {
        let workspace = pause_build::workspace_root();
        let flake = std::fs::read_to_string(workspace.join("flake.nix")).unwrap();
        assert!(flake.contains("import ./vm/nixos-test.nix"), "flake.nix no longer runs vm/nixos-test.nix");
        let nixos_test = std::fs::read_to_string(workspace.join("vm/nixos-test.nix")).unwrap();
        let command_start = nixos_test.find("xtask test ").expect("vm/nixos-test.nix runs no `xtask test`");
        let command: String = nixos_test[command_start..].lines().take_while(|line| !line.contains("2>&1")).collect();
        let command = command.replace(['"', '+'], " ");
        // The flake's pause is a store path; any existing file stands in for it here.
        let stand_in = std::env::current_exe().unwrap().display().to_string();
        let words: Vec<String> = command
            .split_whitespace()
            .skip(2)
            .map(|word| if word.starts_with("${pause}") { stand_in.clone() } else { word.to_string() })
            .collect();
        let options = parse(&words).unwrap().expect("the flake's command asks for --help");
        assert_eq!(options.engine, "docker");
        assert_eq!(
            options.pause_bin.as_deref(),
            Some(Path::new(&stand_in)).map(|path| path.canonicalize().unwrap()).as_deref()
        );
        assert!(options.libtest.is_empty(), "the flake passes test-runner arguments: {:?}", options.libtest);
        assert!(!scenario::load_all(&options.scenarios_dir).unwrap().is_empty());
    }

    #[test]
    fn trial_names_follow_the_path() {
        assert_eq!(trial_name(Path::new("/work/main/scenarios/seed-pod.json")), "scenarios/seed-pod");
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
