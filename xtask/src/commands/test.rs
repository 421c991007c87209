//! `cargo xtask test`: runs every scenario as a libtest-mimic trial, on a host, with a runtime.
//!
//! Every scenario is loaded and planned first: one that does not load, or asks what no runtime
//! can do, stops the run before any container exists; one whose pod the chosen runtime cannot
//! make is skipped, with the runtime's reason. The lab
//! (pause, images, host, runtime) is started once, by the first trial that runs; trials run
//! side by side in it (`--test-threads`), each pod under names and on ports of its own;
//! libtest's own options (FILTER, --exact, --skip, --list) work as in `cargo test`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use libtest_mimic::{Failed, Trial};

use crate::cancel::Cancel;
use crate::command::DaemonThread;
use crate::lab::{self, Choice, Lab, LabPlan};
use crate::pause_build::PauseCommand;
use crate::plan::{self, PodPlan};
use crate::progress::Progress;
use crate::report::{self, RunReport, ScenarioReport, Skipped, StepOutcome};
use crate::runtime::scoped::Scoped;
use crate::scenario::{self, Scenario};
use crate::side_by_side::lock;
use crate::{EXIT_HARNESS_ERROR, images, names, pause_build, runner, runtime};

pub const EXIT_SCENARIO_FAILED: u8 = 101;
pub const EXIT_INTERRUPTED: u8 = 130;

/// How many scenarios run side by side unless `--test-threads` says: see docs/bench.md.
const DEFAULT_SIDE_BY_SIDE: usize = 3;

#[derive(Debug, clap::Args)]
// clap's own layout (libtest-mimic's options, flattened in below, bring a template of their own).
#[command(help_template = "{about-with-newline}\n{usage-heading} {usage}\n\n{all-args}{after-help}")]
#[command(after_help = "\
The options from --include-ignored on are the test runner's, as with cargo test;
--test-threads N runs N scenarios side by side (default 3), each pod with container names and
published ports of its own.

Exit codes: 0 every scenario passed; 101 a scenario failed; 2 the harness could not run (bad
arguments, a scenario that does not load or whose pod no runtime can make, a missing
prerequisite, a daemon that would not start, an incomplete cleanup: the message says which);
130 interrupted by Ctrl-C or SIGTERM, or the run's deadline passed.
Artifacts of each run: target/podlab/<run>/ (console.log and qemu.log on the vm host, the
runtime's daemon logs, each container's logs, report.json, junit.xml).")]
pub struct Options {
    #[command(flatten)]
    pub choice: Choice,
    /// Test this pause binary instead of building the workspace's; words after the path are the
    /// arguments its image starts it with (--pause-bin '/usr/bin/catatonit -P')
    #[arg(long, value_name = "'PATH [ARGS]'", value_parser = PauseCommand::parse)]
    pub pause_bin: Option<PauseCommand>,
    /// Run the scenarios of DIR (default: the workspace's scenarios/)
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Print SCENARIO's pod as a Kubernetes Pod manifest (what --runtime podman-kube plays, and
    /// what a cluster would take), or why a manifest cannot say it; run nothing
    #[arg(long, value_name = "SCENARIO")]
    pub print_manifest: Option<String>,
    /// Stop the whole run after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub run_timeout: u64,
    /// The run's id, and so its folder target/podlab/ID/ (default: its start and pid): soak and
    /// compare choose it, to know where a run's report will be before it starts
    #[arg(long, hide = true, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub libtest: libtest_mimic::Arguments,
}

/// `--run-id`: one folder name under target/podlab/, and a label value every runtime takes.
fn parse_run_id(text: &str) -> Result<String, String> {
    let allowed = |character: char| character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.');
    if text.is_empty() || text.starts_with('.') || !text.chars().all(allowed) {
        return Err("a run id is one folder name: letters, digits, '-', '_' and '.' (not first)".to_string());
    }
    Ok(text.to_string())
}

/// A loaded scenario and its pod, or why the chosen runtime cannot make that pod.
struct Planned {
    scenario: Scenario,
    plan: PodPlan,
    cannot_make: Option<String>,
}

/// `--print-manifest`: the scenario named `wanted` (`seed-pod`, or its path), as a Pod manifest.
fn print_manifest(planned: &[Planned], wanted: &str) -> Result<()> {
    let stem = Path::new(wanted).file_stem().map(|stem| stem.to_string_lossy().into_owned());
    let found = planned.iter().find(|planned| Some(&planned.plan.name) == stem.as_ref()).with_context(|| {
        let names: Vec<&str> = planned.iter().map(|planned| planned.plan.name.as_str()).collect();
        format!("no scenario {wanted}; there are: {}", names.join(", "))
    })?;
    let manifest = plan::manifest::render(&found.plan)
        .with_context(|| format!("{} has no Kubernetes manifest", found.scenario.path.display()))?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(())
}

/// Shared by the trials, which run side by side: the lab is started on first use and shut
/// down after the last trial.
struct Run {
    choice: Choice,
    pause_bin: Option<PauseCommand>,
    run_id: String,
    run_dir: PathBuf,
    progress: Progress,
    labs: Mutex<Labs>,
    /// Where labs start: what they start must outlive the trial that asked.
    daemons: DaemonThread,
    reports: Mutex<Vec<ScenarioReport>>,
    /// The run's: Ctrl-C, SIGTERM, SIGHUP or the run's deadline.
    cancel: Cancel,
}

/// The run's lab, and those whose host failed beneath a pod (their guests killed, the rest
/// shut down at the end, once no trial holds them).
#[derive(Default)]
struct Labs {
    current: Option<Arc<Lab>>,
    failed: Vec<Arc<Lab>>,
    /// Why the lab could not start: every later trial fails with it.
    harness_error: Option<String>,
}

pub fn run(options: Options) -> Result<u8> {
    let cancel = Cancel::on_signals()?;
    let scenarios_dir = options.scenarios.clone().unwrap_or_else(|| pause_build::workspace_root().join("scenarios"));
    let runtime = options.choice.runtime();
    let scenarios = scenario::load_all(&scenarios_dir, runtime::fact_keys())?;
    let (ports, _port_claims) = options.choice.ports(&scenarios)?;
    let planned: Vec<Planned> = scenarios
        .into_iter()
        .zip(ports)
        .map(|(scenario, ports)| {
            let plan = plan::plan(&scenario, &ports, images::host_files)?;
            Ok(Planned { cannot_make: runtime.cannot_make(&plan), plan, scenario })
        })
        .collect::<Result<_>>()?;
    if planned.is_empty() {
        bail!("no scenario in {}", scenarios_dir.display());
    }
    if let Some(wanted) = &options.print_manifest {
        print_manifest(&planned, wanted)?;
        return Ok(0);
    }
    let mut libtest = options.libtest;
    libtest.test_threads = Some(libtest.test_threads.unwrap_or(DEFAULT_SIDE_BY_SIDE));

    let run_started = Instant::now();
    let run_id = options.run_id.unwrap_or_else(names::run_id);
    let run_dir = names::artifacts_dir(pause_build::workspace_root(), &run_id);
    let skipped: Vec<Skipped> = planned
        .iter()
        .filter_map(|planned| {
            let reason = planned.cannot_make.clone()?;
            Some(Skipped { name: trial_name(&planned.scenario.path), reason })
        })
        .collect();
    let progress = Progress::new();
    for skip in &skipped {
        progress.say(&format!("{}: skipped: {} cannot make this pod: {}", skip.name, runtime.name(), skip.reason));
    }
    let running_ignored = libtest.ignored || libtest.include_ignored;
    if !running_ignored {
        for planned in &planned {
            if let Some(reason) = &planned.scenario.opt_in {
                let name = trial_name(&planned.scenario.path);
                progress.say(&format!("{name}: left out, opt-in ({reason}): --include-ignored runs it"));
            }
        }
    }
    let shared = Arc::new(Run {
        choice: options.choice,
        pause_bin: options.pause_bin,
        run_id: run_id.clone(),
        run_dir: run_dir.clone(),
        progress,
        labs: Mutex::default(),
        daemons: DaemonThread::new(),
        reports: Mutex::default(),
        cancel,
    });
    start_deadline(Duration::from_secs(options.run_timeout), cancel);

    let mut planned = planned;
    planned.sort_by_key(|planned| std::cmp::Reverse(least_length(&planned.scenario)));
    // Asked to run what is ignored (the opt-in scenarios), a pod the runtime cannot make is
    // left out rather than failed: it is skipped all the same, said above and in the report.
    let trials = planned
        .into_iter()
        .filter(|planned| !(running_ignored && planned.cannot_make.is_some()))
        .map(|planned| trial(planned, Arc::clone(&shared)))
        .collect();
    let conclusion = libtest_mimic::run(&libtest, trials);

    let run = &shared;
    let labs = std::mem::take(&mut *lock(&run.labs));
    let mut cleanup = Ok(());
    let (mut host, mut runtime) = (run.choice.placement().name().to_string(), run.choice.runtime().name().to_string());
    let mut pause = run.pause_bin.as_ref().map(PauseCommand::to_string).unwrap_or_default();
    for failed in labs.failed {
        // The failed guest was killed; what is left is said, not fatal.
        if let Err(error) = shut_down(failed) {
            run.progress.say(&format!("warning: the failed host's cleanup: {error:#}"));
        }
    }
    if let Some(lab) = labs.current {
        (host, runtime) = (lab.runtime.host().details(), lab.runtime.details());
        pause = lab.pause.to_string();
        let shutdown_started = Instant::now();
        cleanup = shut_down(lab);
        run.progress.done(&format!("{} on {} shut down", run.choice.runtime().name(), host), shutdown_started);
    }
    let mut scenarios = std::mem::take(&mut *lock(&run.reports));
    scenarios.sort_by(|one, other| one.name.cmp(&other.name));
    // Reports exist once set-up began, even if it failed: they say why.
    if run_dir.is_dir() {
        let mut report = RunReport {
            run_id,
            host,
            runtime,
            pause,
            duration: run_started.elapsed(),
            harness_error: labs.harness_error.clone(),
            passed: false,
            scenarios,
            skipped,
        };
        report.conclude();
        report::write_all(&run_dir, &report)?;
        print_summary(&report, &run_dir);
    }
    if let Err(error) = cleanup {
        eprintln!("error: {error:#}");
        return Ok(EXIT_HARNESS_ERROR);
    }
    Ok(if cancel.stop_asked() {
        EXIT_INTERRUPTED
    } else if labs.harness_error.is_some() {
        EXIT_HARNESS_ERROR
    } else if conclusion.has_failed() {
        EXIT_SCENARIO_FAILED
    } else {
        0
    })
}

fn trial(planned: Planned, run: Arc<Run>) -> Trial {
    let name = trial_name(&planned.scenario.path);
    if let Some(reason) = planned.cannot_make {
        // Ignored, as libtest shows it (a run asked for ignored trials leaves it out); were it run,
        // it would fail saying why.
        let runtime = run.choice.runtime();
        return Trial::test(name, move || {
            Err(Failed::from(format!("{} cannot make this pod: {reason}", runtime.name())))
        })
        .with_ignored_flag(true);
    }
    let opt_in = planned.scenario.opt_in.is_some();
    Trial::test(name.clone(), move || {
        let lab = run.lab().map_err(|error| run.could_not_run(error))?;
        run.cancel.check().map_err(|error| Failed::from(error.to_string()))?;
        let logs_dir = run.run_dir.join(name.trim_start_matches("scenarios/"));
        run.progress.say(&format!("{name}: {}", planned.scenario.description));
        let inspected = planned.scenario.steps.iter().flat_map(|step| step.format().image_names());
        let images: Vec<&str> = planned.plan.images().into_iter().chain(inspected).collect();
        let run_on = |lab: &Lab, logs_dir: &Path| {
            lab.import(&images, &run.progress)?;
            // Side by side with other scenarios' pods: its containers get names of their own.
            let runtime = Scoped::new(lab.runtime.as_ref(), &planned.plan.name);
            Ok(runner::run_scenario(&runtime, &planned.scenario, &planned.plan, &name, logs_dir, run.cancel))
        };
        let mut outcome = run_on(&lab, &logs_dir);
        // A guest whose kernel locked up failed beneath the pod, not the pod: once per scenario,
        // it runs again on a new guest (the report says so).
        if let Some(failure) = lab.runtime.host().machine_failed() {
            run.progress.say(&format!("{name}: {}", lab::host_failed(&failure)));
            let lab = run.replace_failed(&lab).map_err(|error| run.could_not_run(error))?;
            let rerun_dir = logs_dir.with_file_name(format!("{}-rerun", name.trim_start_matches("scenarios/")));
            outcome = run_on(&lab, &rerun_dir);
            if let Ok(report) = &mut outcome {
                report.rerun_because = Some(failure);
            }
        }
        let report = outcome.map_err(|error| run.could_not_run(error))?;
        run.progress.say(&format!(
            "{name}: {} in {:.1} s",
            if report.passed { "passed" } else { "FAILED" },
            report.duration.as_secs_f64()
        ));
        let outcome = if report.passed { Ok(()) } else { Err(Failed::from(report.failure_message())) };
        lock(&run.reports).push(report);
        outcome
    })
    // Shown as ignored, as libtest shows it; --include-ignored (or --ignored) runs it.
    .with_ignored_flag(opt_in)
}

/// How long a scenario says it lasts at least: its longest `uptime` wait. Trials start longest
/// first, so that the others fill the other lanes meanwhile.
fn least_length(scenario: &Scenario) -> Duration {
    scenario.steps.iter().map(|step| step.format().lasts_at_least()).max().unwrap_or_default()
}

/// `scenarios/seed-pod` for `.../scenarios/seed-pod.json`.
fn trial_name(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let folder = path.parent().and_then(Path::file_name).unwrap_or_default().to_string_lossy();
    format!("{folder}/{stem}")
}

impl Run {
    /// The lab, started by the first trial that asks (the others wait for it); a failure to
    /// start is remembered for every trial.
    fn lab(self: &Arc<Self>) -> Result<Arc<Lab>> {
        let mut labs = lock(&self.labs);
        if let Some(error) = &labs.harness_error {
            bail!("{error}");
        }
        if let Some(lab) = &labs.current {
            return Ok(Arc::clone(lab));
        }
        let run = Arc::clone(self);
        match self.daemons.run(move || run.start_lab()).and_then(|started| started) {
            Ok(lab) => Ok(Arc::clone(labs.current.insert(Arc::new(lab)))),
            Err(error) => {
                labs.harness_error = Some(format!("{error:#}"));
                Err(error)
            }
        }
    }

    /// The harness could not run the trial (its lab did not start, an image did not import):
    /// every later trial fails with the same, and the run exits 2.
    fn could_not_run(&self, error: anyhow::Error) -> Failed {
        let error = format!("{error:#}");
        lock(&self.labs).harness_error.get_or_insert_with(|| error.clone());
        Failed::from(format!("the harness could not run: {error}"))
    }

    /// A lab in place of `failed`, whose host failed beneath a pod: its guest is killed at once
    /// (the pods beside it on that guest fail and run again too), and a new lab is started,
    /// once, by whichever of those trials comes first.
    fn replace_failed(self: &Arc<Self>, failed: &Arc<Lab>) -> Result<Arc<Lab>> {
        {
            let mut labs = lock(&self.labs);
            if labs.current.as_ref().is_some_and(|current| Arc::ptr_eq(current, failed)) {
                if let Err(error) = failed.runtime.host().shut_down() {
                    self.progress.say(&format!("warning: the failed host's cleanup: {error:#}"));
                }
                let current = labs.current.take();
                labs.failed.extend(current);
            }
        }
        self.lab()
    }

    fn start_lab(&self) -> Result<Lab> {
        std::fs::create_dir_all(&self.run_dir).with_context(|| format!("cannot create {}", self.run_dir.display()))?;
        self.progress.say(&format!(
            "run {} ({}), artifacts in {}",
            self.run_id,
            self.choice.describe(),
            self.run_dir.display()
        ));
        let plan = LabPlan {
            choice: &self.choice,
            pause_bin: self.pause_bin.as_ref(),
            interactive: false,
            run_id: &self.run_id,
            run_dir: &self.run_dir,
            cancel: self.cancel,
        };
        Lab::start(&plan, &self.progress)
    }
}

/// Shuts a lab down once no trial holds it (every trial has ended when this is called).
fn shut_down(lab: Arc<Lab>) -> Result<()> {
    match Arc::into_inner(lab) {
        Some(lab) => lab.shut_down(),
        None => bail!("a trial still holds the lab"),
    }
}

/// After `timeout`, the run is stopped as Ctrl-C would stop it: every wait ends, cleanup runs.
fn start_deadline(timeout: Duration, cancel: Cancel) {
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        eprintln!("error: the run's deadline ({} s) passed: stopping", timeout.as_secs());
        cancel.stop();
    });
}

fn print_summary(report: &RunReport, run_dir: &Path) {
    eprintln!("\nscenario times:");
    for scenario in &report.scenarios {
        eprintln!(
            "  {:6.1} s  {}  {}",
            scenario.duration.as_secs_f64(),
            if scenario.passed { "ok    " } else { "FAILED" },
            scenario.name
        );
    }
    eprintln!("  {:6.1} s  whole run", report.duration.as_secs_f64());
    // The facts that differ between runtimes (by-runtime steps), as this runtime showed them.
    let facts: Vec<String> = report
        .scenarios
        .iter()
        .flat_map(|scenario| scenario.steps.iter().map(move |step| (scenario, step)))
        .filter_map(|(scenario, step)| {
            step.fact.as_ref()?;
            let outcome = match step.outcome {
                StepOutcome::Passed => "as expected",
                StepOutcome::Failed { .. } => "NOT as expected",
                StepOutcome::NotRun => "not run",
            };
            Some(format!("  {outcome:<15}  {} ({})", step.summary.trim_start_matches("by-runtime "), scenario.name))
        })
        .collect();
    if !facts.is_empty() {
        eprintln!("facts that differ between runtimes, on {}:\n{}", report.runtime, facts.join("\n"));
    }
    for skip in &report.skipped {
        eprintln!("skipped: {}: {}", skip.name, skip.reason);
    }
    eprintln!("artifacts: {}", run_dir.display());
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::host::Placement;
    use crate::runtime;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        options: Options,
    }

    fn parse(arguments: &[&str]) -> Result<Options, clap::Error> {
        Command::try_parse_from(std::iter::once("test").chain(arguments.iter().copied())).map(|command| command.options)
    }

    #[test]
    fn our_options_are_taken_and_the_rest_goes_to_libtest() {
        let options = parse(&["--on=host", "--run-timeout", "60", "seed", "--exact", "--list"]).unwrap();
        assert_eq!(
            (options.choice.placement(), options.choice.runtime()),
            (Placement::Host, runtime::default_runtime())
        );
        assert_eq!(options.run_timeout, 60);
        assert_eq!(options.libtest.filter.as_deref(), Some("seed"));
        assert!(options.libtest.exact && options.libtest.list);
    }

    #[test]
    fn the_engine_option_still_says_where_and_which() {
        let options = parse(&["--engine", "docker"]).unwrap();
        assert_eq!(
            (options.choice.placement(), options.choice.runtime()),
            (Placement::Host, runtime::default_runtime())
        );
        let options = parse(&[]).unwrap();
        assert_eq!((options.choice.placement(), options.choice.runtime()), (Placement::Vm, runtime::default_runtime()));
        assert!(parse(&["--engine", "docker", "--on", "vm"]).is_err());
    }

    #[test]
    fn a_run_id_is_one_folder_name() {
        assert_eq!(parse(&[]).unwrap().run_id, None);
        let options = parse(&["--run-id", "20261204-193000-42-run-1", "seed"]).unwrap();
        assert_eq!(options.run_id.as_deref(), Some("20261204-193000-42-run-1"));
        assert_eq!(options.libtest.filter.as_deref(), Some("seed"));
        for bad in ["", "..", "../elsewhere", "a/b", ".hidden", "a b"] {
            assert!(parse(&["--run-id", bad]).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn bad_options_are_named() {
        let error = |arguments: &[&str]| parse(arguments).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(
            error(&["--on", "podman"]).contains("invalid value 'podman' for '--on <ON>'"),
            "{}",
            error(&["--on", "podman"])
        );
        assert!(error(&["--pause-bin", "/no/such/pause"]).contains("/no/such/pause: no such file"));
        assert!(error(&["--runtime"]).contains("a value is required for '--runtime <RUNTIME>'"));
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
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let options = parse(&words).unwrap();
        assert_eq!(options.choice.placement(), Placement::Host);
        assert_eq!(options.pause_bin.map(|pause| pause.binary), Some(Path::new(&stand_in).canonicalize().unwrap()));
        assert!(options.libtest.filter.is_none(), "the flake passes a test filter: {:?}", options.libtest.filter);
        let scenarios = options.scenarios.unwrap_or_else(|| workspace.join("scenarios"));
        assert!(!scenario::load_all(&scenarios, runtime::fact_keys()).unwrap().is_empty());
    }

    #[test]
    fn trial_names_follow_the_path() {
        assert_eq!(trial_name(Path::new("/work/main/scenarios/seed-pod.json")), "scenarios/seed-pod");
    }
}
