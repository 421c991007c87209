//! The harness from the outside: `cargo xtask test` run as a user runs it, on the real
//! Docker daemon and in the real QEMU guest, against pauses that each break one promise,
//! and interrupted midway (Ctrl-C, SIGTERM, its deadline, SIGKILL then `cargo xtask clean`).
//! After every run, nothing it made may be left: no guest, daemon, bridge, temp dir or mount.
//!
//! Needs root, dockerd, gcc with a static libc, and the images' host programs (and QEMU and
//! a kernel for the vm trials); where any is missing those trials are ignored, the reason printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

use xtask::names;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// The scenario whose pod lives a minute: trials about a whole run's cleanup and concurrency
/// skip it (it adds a minute each and nothing they check).
const LONG_LIVED: &str = "scenarios/long-lived";

/// What a broken pause must do to the suite, from the `// harness:` lines of its fixture: the
/// scenario it fails (`fails SCENARIO`, and `on KEY fails SCENARIO` where a runtime's facts
/// differ) and a phrase the failure says (`saying PHRASE`).
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

fn main() -> std::process::ExitCode {
    let mut arguments = Arguments::from_args();
    // Each run starts its own dockerd; one at a time keeps them from competing for two cores.
    arguments.test_threads = Some(1);
    let missing = missing_prerequisite();
    if let Some(reason) = &missing {
        eprintln!("note: the harness trials are ignored: {reason}");
    }
    let vm_missing = missing.clone().or_else(missing_vm_prerequisite);
    if let (None, Some(reason)) = (&missing, &vm_missing) {
        eprintln!("note: the vm trials are ignored: {reason}");
    }
    // What a run may leave changed on this machine: nothing. Taken before any trial runs.
    let before = std::sync::Arc::new(SharedState::now());
    // Each broken pause on each runtime with facts of its own (podman-kube's are podman's).
    let runtimes = xtask::RUNTIMES.iter().filter(|runtime| runtime.name() == runtime.facts());
    let mut trials: Vec<Trial> = runtimes
        .flat_map(|runtime| {
            BrokenPause::all().into_iter().map(move |broken| {
                let name = format!("broken_pause::{}::{}", runtime.name(), broken.fixture);
                Trial::test(name, move || {
                    let scenario = broken.scenario_on(runtime.facts());
                    broken_pause_fails(runtime.name(), &broken.fixture, scenario, &broken.saying)
                })
            })
        })
        .collect();
    trials.push(Trial::test("cleanup::after_a_passing_run", passing_run_cleans_up));
    trials.push(Trial::test("cleanup::after_ctrl_c", interrupted_run_cleans_up));
    trials.push(Trial::test("cleanup::after_the_run_deadline", timed_out_run_cleans_up));
    trials.push(Trial::test("cleanup::after_a_panic", || panicking_run_cleans_up("host")));
    trials.push(Trial::test("load_errors_stop_the_run_before_any_container", load_error_stops_early));
    trials.push(Trial::test("compare::a_broken_pause_beside_ours", compare_a_broken_pause_beside_ours));
    trials.push(Trial::test("exec::outliving_its_container_ends_at_once", || exec_outliving_its_container("host")));
    trials.push(Trial::test("concurrent::two_runs_on_this_machine_at_once", || two_runs_at_once("docker")));
    trials.push(Trial::test("concurrent::a_run_on_a_shared_daemon_beside_a_pod", run_on_a_shared_daemon));
    trials.push(Trial::test("faults::an_app_that_ignores_sigterm", app_ignoring_sigterm));
    trials.push(Trial::test("faults::pause_killed_under_its_apps", pause_killed_under_its_apps));
    trials.push(Trial::test("faults::dockerd_killed_mid_scenario", || daemon_killed_mid_scenario("dockerd")));
    trials.push(Trial::test("faults::containerd_killed_mid_scenario", || daemon_killed_mid_scenario("containerd")));
    trials.push(Trial::test("cri::a_passing_run_leaves_nothing", || seed_pod_run_cleans_up("cri")));
    trials.push(Trial::test("cri::ctrl_c_leaves_nothing", || interrupted_run_on_cleans_up("cri")));
    trials.push(Trial::test("cri::sigkill_then_clean_leaves_nothing", cri_sigkill_then_clean));
    trials.push(Trial::test("cri::two_runs_on_this_machine_at_once", || two_runs_at_once("cri")));
    trials.push(Trial::test("podman::a_passing_run_leaves_nothing", || seed_pod_run_cleans_up("podman")));
    trials.push(Trial::test("podman::kube_play_leaves_nothing", || seed_pod_run_cleans_up("podman-kube")));
    trials.push(Trial::test("podman::ctrl_c_leaves_nothing", || interrupted_run_on_cleans_up("podman")));
    trials.push(Trial::test("podman::two_runs_on_this_machine_at_once", || two_runs_at_once("podman")));
    trials.push(Trial::test(
        "podman::beside_another_run_gives_back_what_it_made",
        podman_run_beside_another_run_gives_back_what_it_made,
    ));
    for runtime in ["docker", "cri", "podman"] {
        trials.push(Trial::test(format!("outbound::{runtime}::a_connection_from_the_pod_is_counted"), move || {
            outbound_connection_is_counted(runtime)
        }));
    }
    let shared_state = std::sync::Arc::clone(&before);
    trials.push(Trial::test("shared::this_machine_is_as_before", move || shared_state.unchanged()));
    let mut trials: Vec<Trial> = trials.into_iter().map(|trial| trial.with_ignored_flag(missing.is_some())).collect();
    let vm_trials = [
        Trial::test("vm::ctrl_c_leaves_no_guest", || vm_signal_leaves_nothing(2)),
        Trial::test("vm::sigterm_leaves_no_guest", || vm_signal_leaves_nothing(15)),
        Trial::test("vm::sigkill_then_clean_leaves_nothing", vm_sigkill_then_clean),
        Trial::test("vm::a_dead_guest_ends_the_wait_at_once", vm_dead_guest_is_reported),
        Trial::test("vm::pod_shell_runs_piped_commands_then_tears_down", vm_pod_shell),
        Trial::test("vm::pod_shell_on_a_terminal", vm_pod_on_a_terminal),
        Trial::test("vm::a_guest_kernel_lockup_boots_a_new_guest_for_the_pod_shell", vm_pod_lockup),
        Trial::test("vm::a_panic_leaves_no_guest", || panicking_run_cleans_up("vm")),
        Trial::test("vm::a_guest_kernel_lockup_reruns_the_scenario_on_a_new_guest", vm_lockup_reruns),
        Trial::test("vm::exec_outliving_its_container_ends_at_once", || exec_outliving_its_container("vm")),
        Trial::test("vm::clean_spares_a_live_pod", clean_spares_a_live_pod),
        Trial::test("vm::a_frozen_guest_ends_the_wait_at_once", vm_frozen_guest_is_reported),
        Trial::test("vm::guest_out_of_memory_and_disk_full", vm_guest_out_of_memory_and_disk_full),
    ];
    trials.extend(vm_trials.into_iter().map(|trial| trial.with_ignored_flag(vm_missing.is_some())));
    libtest_mimic::run(&arguments, trials).exit_code()
}

fn missing_prerequisite() -> Option<String> {
    if !nix_is_root() {
        return Some("not root: the private dockerd and its bridge need root".into());
    }
    for program in ["dockerd", "docker", "podman", "gcc", "nginx", "node", "busybox", "curl", "ipcmk"] {
        let found =
            Command::new("sh").args(["-c", &format!("command -v {program} || test -x /usr/sbin/{program}")]).output();
        if !found.is_ok_and(|output| output.status.success()) {
            return Some(format!("{program} is not installed (cargo xtask doctor says how)"));
        }
    }
    None
}

fn missing_vm_prerequisite() -> Option<String> {
    let found = Command::new("sh").args(["-c", "command -v qemu-system-x86_64 && ls /boot/vmlinuz-*"]).output();
    if !found.is_ok_and(|output| output.status.success()) {
        return Some(
            "no qemu-system-x86_64 or no /boot/vmlinuz-* (apt-get install qemu-system-x86 linux-image-amd64)".into(),
        );
    }
    None
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        status.lines().find(|line| line.starts_with("Uid:"))?.split_whitespace().nth(2)?.parse::<u32>().ok()
    }) == Some(0)
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

/// A run that passes (non-root holds for any pause that sleeps) exits 0 and leaves nothing either.
fn passing_run_cleans_up() -> Result<(), Failed> {
    let work = tempfile::tempdir()?;
    let binary = compile_fixture("exits-1-on-sigterm", work.path())?;
    let pause_bin = binary.to_string_lossy().into_owned();
    let run = run_xtask(&["test", "--on", "host", "--pause-bin", &pause_bin, "scenarios/non-root", "--exact"], None)?;
    if run.status.code() != Some(0) {
        return Err(format!("expected exit code 0, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// SIGKILL with a cri pod up (the seed pod of `cargo xtask pod`, its port published through
/// CNI's portmap): containerd is told to stop by the kernel, but its shims, the pod, its port
/// mapping and CNI's cached result stay; `cargo xtask clean` removes them all.
fn cri_sigkill_then_clean() -> Result<(), Failed> {
    let arguments = ["pod", "--on", "host", "--runtime", "cri"];
    let run = run_xtask_with(&arguments, Some("sleep 30\n"), Some(("Exit the shell", Action::Signal(9))))?;
    if run.status.signal() != Some(9) {
        return Err(format!("expected xtask killed by SIGKILL, got {:?}", run.status).into());
    }
    let clean = Command::new(XTASK).arg("clean").output()?;
    let said = String::from_utf8_lossy(&clean.stdout).into_owned();
    for what in ["temp dir", "portmap's nat chains", "CNI result podlab-"] {
        if !clean.status.success() || !said.contains(what) {
            return Err(format!("expected cargo xtask clean to remove the {what}, it said:\n{said}").into());
        }
    }
    nothing_left(run.pid)
}

/// A private runtime on this machine (cri: containerd; podman: Podman's state, its pod made by
/// `podman pod create` or, for podman-kube, by `kube play` of its manifest): the seed pod
/// passes, the run exits 0 and leaves nothing (daemons, shims or conmon, the pods' network
/// namespaces and veths, leases, mounts, cgroups, the bridge); what a runtime would write
/// outside its own state (CNI's cache, /var/lib/containers, /run/libpod, /run/netns) is checked
/// by `shared::this_machine_is_as_before`.
fn seed_pod_run_cleans_up(runtime: &str) -> Result<(), Failed> {
    let run = run_xtask(&["test", "--on", "host", "--runtime", runtime, "scenarios/seed-pod", "--exact"], None)?;
    if run.status.code() != Some(0) || !run.output.contains("scenarios/seed-pod: passed") {
        return Err(format!("expected seed-pod to pass and exit code 0, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// A podman run that ends while another run (a Docker pod shell) is alive beside it: the shared
/// directories it made (CI once found an empty /run/netns left when another xtask was alive)
/// still go, and the other run is not disturbed.
fn podman_run_beside_another_run_gives_back_what_it_made() -> Result<(), Failed> {
    let shared = ["/run/netns", "/var/lib/cni"];
    let there_before: Vec<bool> = shared.iter().map(|dir| Path::new(dir).exists()).collect();
    let mut beside = Command::new(XTASK)
        .args(["pod", "--on", "host"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let run = run_xtask(&["test", "--on", "host", "--runtime", "podman", "scenarios/seed-pod", "--exact"], None);
    let beside_was_alive = beside.try_wait()?.is_none();
    drop(beside.stdin.take());
    let Some(beside_status) = wait_with_deadline(&mut beside, RUN_TIMEOUT) else {
        return Err(format!("the pod shell did not end within {RUN_TIMEOUT:?} of its input's end").into());
    };
    let run = run?;
    if run.status.code() != Some(0) || !beside_was_alive || beside_status.code() != Some(0) {
        return Err(format!(
            "expected the podman run to pass beside a live pod shell, then the shell to exit 0; got {:?}, \
             the shell alive: {beside_was_alive}, then {beside_status:?}\n{}",
            run.status, run.output
        )
        .into());
    }
    let left: Vec<&str> = shared
        .iter()
        .zip(there_before)
        .filter(|(dir, was)| !was && Path::new(dir).exists())
        .map(|(dir, _)| *dir)
        .collect();
    if !left.is_empty() {
        return Err(format!("the podman run left {left:?}, which were not there before it").into());
    }
    nothing_left(run.pid)?;
    nothing_left(beside.id())
}

/// Ctrl-C with a pod of `runtime` up: exit 130, and everything is removed.
fn interrupted_run_on_cleans_up(runtime: &str) -> Result<(), Failed> {
    let arguments = ["test", "--on", "host", "--runtime", runtime, "--skip", LONG_LIVED];
    let run = run_xtask(&arguments, Some(("scenarios/reaping: ", 2)))?;
    if run.status.code() != Some(130) {
        return Err(format!("expected exit code 130 after Ctrl-C, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// What runs share on this machine and must give back: the nat and filter tables (portmap's
/// chains), CNI's cache directory, IP forwarding, and where Podman keeps state when it is not
/// told otherwise (its blob cache, libpod's run state, the netns directory, its default cgroup).
struct SharedState {
    text: String,
}

impl SharedState {
    fn now() -> SharedState {
        let script = "iptables -w 5 -t nat -S; iptables -w 5 -S; ls -a /var/lib/cni 2>&1; \
                      cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/route_localnet; \
                      ls -a /var/lib/containers /run/libpod /run/netns 2>&1; ls -d /sys/fs/cgroup/*/libpod_parent 2>&1";
        let output = Command::new("sh").args(["-c", script]).output();
        SharedState {
            text: output.map(|output| String::from_utf8_lossy(&output.stdout).into_owned()).unwrap_or_default(),
        }
    }

    /// Run after the trials that use cri and podman, the last of the trials on this machine.
    fn unchanged(&self) -> Result<(), Failed> {
        let now = SharedState::now();
        if now.text != self.text {
            return Err(
                format!("this machine changed during the trials:\nbefore:\n{}\nnow:\n{}", self.text, now.text).into()
            );
        }
        Ok(())
    }
}

/// Ctrl-C (SIGINT) while scenarios run: exit 130, and everything is removed.
fn interrupted_run_cleans_up() -> Result<(), Failed> {
    let run = run_xtask(&["test", "--on", "host", "--skip", LONG_LIVED], Some(("scenarios/reaping: ", 2)))?;
    if run.status.code() != Some(130) {
        return Err(format!("expected exit code 130 after Ctrl-C, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// The `xtask` binary that `cargo xtask` builds (its profile unwinds), with the
/// `fault-injection` feature (the next `cargo xtask` puts its own build back).
fn xtask_with_fault_injection() -> Result<PathBuf, Failed> {
    let built = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--profile", "xtask", "--package", "xtask", "--features", "fault-injection"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()?;
    if !built.success() {
        return Err("cargo build --profile xtask failed".into());
    }
    let target = Path::new(XTASK).parent().and_then(Path::parent).ok_or("no target dir above the test's xtask")?;
    Ok(target.join("xtask/xtask"))
}

/// The guest's kernel says a CPU is stuck (the words injected on its console, as a real lockup
/// seen under TCG printed them): the run boots a new guest, runs the scenario again, passes,
/// says why in its output and report, and leaves nothing.
fn vm_lockup_reruns() -> Result<(), Failed> {
    let xtask = xtask_with_fault_injection()?;
    let arguments = ["test", "scenarios/non-root", "--exact"];
    let run = run_program_with(&xtask, &arguments, &[("PODLAB_INJECT_LOCKUP", "1")], None, None)?;
    let said = "the host failed beneath the pod (the guest's kernel reports a CPU stuck in it";
    if run.status.code() != Some(0) || !run.output.contains(said) {
        return Err(format!("expected exit code 0 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    let run_dir = run.output.split("artifacts in ").nth(1).and_then(|rest| rest.split_whitespace().next());
    let report =
        std::fs::read_to_string(Path::new(run_dir.ok_or("no artifacts dir in the output")?).join("report.json"))?;
    if !report.contains("\"rerun_because\": \"the guest's kernel reports a CPU stuck") || run.output.contains("warning")
    {
        return Err(format!(
            "expected report.json to say why the scenario ran again, and no warning:\n{report}\n{}",
            run.output
        )
        .into());
    }
    nothing_left(run.pid)
}

/// A panic in the harness with a pod running: the trial fails (exit 101, the panic named)
/// and everything is still removed. Run with the binary `cargo xtask` builds, whose profile
/// unwinds (this test's own build aborts on panic, as the no_std pause needs), built with the
/// `fault-injection` feature that holds the hook (the next `cargo xtask` puts its own back).
fn panicking_run_cleans_up(on: &str) -> Result<(), Failed> {
    let xtask = xtask_with_fault_injection()?;
    let arguments = ["test", "--on", on, "scenarios/version", "--exact"];
    let run = run_program_with(&xtask, &arguments, &[("PODLAB_INJECT_PANIC", "1")], None, None)?;
    if run.status.code() != Some(101) || !run.output.contains("injected panic") {
        return Err(
            format!("expected exit code 101 and the injected panic, got {:?}\n{}", run.status, run.output).into()
        );
    }
    nothing_left(run.pid)
}

/// An exec that kills its own container and outlives it: dockerd keeps the exec's output
/// open and forgets its exit code (its log says `exit event ... no such container`). The step
/// ends within seconds, not at its 60 s deadline, and says what happened.
fn exec_outliving_its_container(on: &str) -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios");
    let run =
        run_xtask(&["test", "--on", on, "--scenarios", &scenarios, "scenarios/exec-outlives-its-container"], None)?;
    let said = "dockerd gave no exit code and did not close its output (its container exited under it)";
    if run.status.code() != Some(101) || !run.output.contains(said) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    let took_ms: Option<u64> = run
        .output
        .split("got no exit status after ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|number| number.parse().ok());
    match took_ms {
        Some(took) if took < 20_000 => nothing_left(run.pid),
        _ => Err(format!("expected the exec to end within seconds, it took {took_ms:?} ms\n{}", run.output).into()),
    }
}

/// Two whole runs on this machine at once: each has its own daemon, bridge, subnet, temp dirs
/// and published ports, so both pass, and neither leaves anything.
fn two_runs_at_once(runtime: &str) -> Result<(), Failed> {
    let arguments = ["test", "--on", "host", "--runtime", runtime, "--skip", LONG_LIVED];
    let runs: Vec<Result<Run, String>> = std::thread::scope(|scope| {
        let runs: Vec<_> =
            (0..2).map(|_| scope.spawn(|| run_xtask(&arguments, None).map_err(|error| format!("{error:?}")))).collect();
        runs.into_iter().map(|run| run.join().unwrap_or_else(|_| Err("a run's thread panicked".into()))).collect()
    });
    for run in runs {
        let run = run?;
        if run.status.code() != Some(0) {
            return Err(format!("expected both runs to pass, one exited {:?}\n{}", run.status, run.output).into());
        }
        nothing_left(run.pid)?;
    }
    Ok(())
}

/// `compare` with one broken pause beside ours: the matrix says ours passed and names the
/// broken one's promise, in the table and in matrix.json, and a finding is no error (exit 0).
fn compare_a_broken_pause_beside_ours() -> Result<(), Failed> {
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

/// An app container that ignores SIGTERM: its stop lasts the whole grace period and ends in
/// SIGKILL; the step that expected a clean exit says both, and the pod still goes.
fn app_ignoring_sigterm() -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios");
    let run = run_xtask(&["test", "--on", "host", "--scenarios", &scenarios, "scenarios/app-ignores-sigterm"], None)?;
    let said = ["the stop took", "of a 3 s grace period", "it exited with 137 (128 + 9: killed by SIGKILL)"];
    if run.status.code() != Some(101) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// The `outbound` step: a connection to loopback is not counted (the first check passes), one to
/// an address beside the pod is, and the failure names where it went.
fn outbound_connection_is_counted(runtime: &str) -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios");
    let arguments =
        ["test", "--on", "host", "--runtime", runtime, "--scenarios", &scenarios, "scenarios/pod-reaches-outside"];
    let run = run_xtask(&arguments, None)?;
    let said = ["step 3 (outbound", "expected at most 0 connections from the pod to outside itself, got", ".1"];
    if run.status.code() != Some(101) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// pause killed with SIGKILL while its app runs: the pod's PID namespace dies with it, and the
/// step that waited for the app says how each container of the pod ended.
fn pause_killed_under_its_apps() -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios");
    let trigger = ("scenarios/sandbox-killed: ", Action::KillPause(Duration::from_secs(3)));
    let run = run_xtask_with(
        &["test", "--on", "host", "--scenarios", &scenarios, "scenarios/sandbox-killed"],
        None,
        Some(trigger),
    )?;
    let said = [
        "expected app to exit with code 0, it exited with 137 (128 + 9: killed by SIGKILL)",
        "the pod now: pause exited 137 (128 + 9: killed by SIGKILL), app exited 137",
    ];
    if run.status.code() != Some(101) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// The runtime's daemon killed with SIGKILL while a scenario's steps run, its pod up (dockerd,
/// or the containerd under it): the run ends within a deadline, a failure says what died, and
/// nothing is left, not even the container processes that the dead daemon could not stop.
fn daemon_killed_mid_scenario(daemon: &'static str) -> Result<(), Failed> {
    let started = Instant::now();
    // The pod is up after about 0.5 s on this host; its first step waits 8 s without the daemon.
    let trigger = ("scenarios/daemon-needed-later: ", Action::KillDaemon(daemon, Duration::from_millis(2000)));
    let scenarios = fixture_scenarios("scenarios");
    let arguments = ["test", "--on", "host", "--scenarios", &scenarios, "scenarios/daemon-needed-later", "--exact"];
    let run = run_xtask_with(&arguments, None, Some(trigger))?;
    let took = started.elapsed();
    let said_why = run.output.lines().any(|line| line.contains(daemon) && line.contains("died during the run"));
    let verdict = match run.status.code() {
        // dockerd restarts a containerd it started; the scenario may then pass.
        Some(0) => daemon == "containerd",
        Some(101) => said_why,
        _ => false,
    };
    if !verdict || took > Duration::from_secs(150) {
        return Err(format!("after {daemon} was killed: {:?} in {took:?}\n{}", run.status, run.output).into());
    }
    eprintln!("{daemon} killed: exit {:?} after {:.1} s", run.status.code(), took.as_secs_f64());
    nothing_left(run.pid)
}

/// A run on a daemon it shares (`DOCKER_HOST`): here the private daemon of a live `cargo xtask
/// pod`, which already holds containers named pause, nginx and ghost. The run names its own
/// containers apart, passes, removes only its own, and leaves the pod as it was.
fn run_on_a_shared_daemon() -> Result<(), Failed> {
    let script = format!(
        "{XTASK} test --on host scenarios/version --exact; echo \"shared run said $?\"; \
         echo \"left: $(docker ps --all --format '{{{{.Names}}}}' | sort | tr '\\n' ' ')\"\n"
    );
    let run = run_xtask_with(&["pod", "--on", "host"], Some(&script), None)?;
    let said = ["using the Docker daemon at DOCKER_HOST=unix://", "shared run said 0", "left: ghost nginx pause \n"];
    if run.status.code() != Some(0) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(
            format!("expected the shared run to pass and {said:?}, got {:?}\n{}", run.status, run.output).into()
        );
    }
    nothing_left(run.pid)
}

/// The run's own deadline works like Ctrl-C.
fn timed_out_run_cleans_up() -> Result<(), Failed> {
    let run = run_xtask(&["test", "--on", "host", "--run-timeout", "3"], None)?;
    if run.status.code() != Some(130) || !run.output.contains("the run's deadline (3 s) passed") {
        return Err(
            format!("expected exit code 130 and the deadline named, got {:?}\n{}", run.status, run.output).into()
        );
    }
    nothing_left(run.pid)
}

/// Ctrl-C (2) or SIGTERM (15) once the guest runs: exit 130, and no QEMU or temp dir is left.
fn vm_signal_leaves_nothing(signal: i32) -> Result<(), Failed> {
    let run = run_xtask(&["test", "scenarios/version", "--exact"], Some(("guest booted", signal)))?;
    if run.status.code() != Some(130) {
        return Err(
            format!("expected exit code 130 after signal {signal}, got {:?}\n{}", run.status, run.output).into()
        );
    }
    nothing_left(run.pid)
}

/// SIGKILL leaves the harness no chance to clean up: QEMU still dies with it (it is told to by
/// the kernel), and `cargo xtask clean` removes the temp dir that stays.
fn vm_sigkill_then_clean() -> Result<(), Failed> {
    let run = run_xtask(&["test", "scenarios/version", "--exact"], Some(("guest booted", 9)))?;
    if run.status.signal() != Some(9) {
        return Err(format!("expected xtask killed by SIGKILL, got {:?}", run.status).into());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !guest_processes(run.pid).is_empty() {
        if Instant::now() > deadline {
            return Err(format!("QEMU outlived its killed harness by 10 s: {:?}", guest_processes(run.pid)).into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let clean = Command::new(XTASK).arg("clean").output()?;
    let said = String::from_utf8_lossy(&clean.stdout).into_owned();
    if !clean.status.success() || !said.contains("temp dir") {
        return Err(format!("expected cargo xtask clean to remove the temp dir, it said:\n{said}").into());
    }
    nothing_left(run.pid)
}

/// When QEMU dies under a running scenario, the run says so at once, with the console's
/// last lines and the QEMU command line, and does not wait for any deadline.
fn vm_dead_guest_is_reported() -> Result<(), Failed> {
    let started = Instant::now();
    let run = run_xtask_killing_qemu(&["test", "scenarios/reaping", "--exact"], "scenarios/reaping: ")?;
    if !matches!(run.status.code(), Some(101) | Some(2)) {
        return Err(format!("expected a failed run, got {:?}\n{}", run.status, run.output).into());
    }
    for expected in ["QEMU exited", "the console's last lines", "QEMU command line: qemu-system-x86_64"] {
        if !run.output.contains(expected) {
            return Err(format!("expected the failure to say {expected:?}; the output:\n{}", run.output).into());
        }
    }
    if started.elapsed() > Duration::from_secs(150) {
        return Err(format!("the run took {:?} after QEMU died", started.elapsed()).into());
    }
    nothing_left(run.pid)
}

/// QEMU stopped with SIGSTOP while a scenario runs (the guest freezes): the run says so at
/// once rather than at each request's deadline, and the stopped QEMU is killed all the same.
fn vm_frozen_guest_is_reported() -> Result<(), Failed> {
    let started = Instant::now();
    let trigger = ("scenarios/reaping: ", Action::StopQemu(Duration::from_secs(3)));
    let run = run_xtask_with(&["test", "scenarios/reaping", "--exact"], None, Some(trigger))?;
    let said = "is stopped (SIGSTOP?): the guest is frozen";
    if !matches!(run.status.code(), Some(101) | Some(2)) || !run.output.contains(said) {
        return Err(format!("expected a failed run that says {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    if started.elapsed() > Duration::from_secs(120) {
        return Err(format!("the run took {:?} after the guest froze", started.elapsed()).into());
    }
    nothing_left(run.pid)
}

/// The guest's memory filled by an app (the guest's OOM killer ends it) and its runtime's disk
/// filled by another (a tmpfs of half the guest's memory): each step says what happened, in
/// the kernel's or the command's words, and the run still removes everything.
fn vm_guest_out_of_memory_and_disk_full() -> Result<(), Failed> {
    let scenarios = fixture_scenarios("scenarios-vm");
    let run = run_xtask(&["test", "--scenarios", &scenarios], None)?;
    let said = [
        "got exit code 137 (128 + 9: killed by SIGKILL)",
        "the guest ran out of memory; its kernel said:",
        "Killed process",
        "No space left on device",
    ];
    if run.status.code() != Some(101) || !said.iter().all(|phrase| run.output.contains(phrase)) {
        return Err(format!("expected exit code 101 and {said:?}, got {:?}\n{}", run.status, run.output).into());
    }
    nothing_left(run.pid)
}

/// `cargo xtask pod` with a script on stdin: the guest's shell runs it (nothing typed before
/// its prompt is lost), `/pause` is PID 1 of the nginx container, and the end of the input
/// ends the shell and the whole pod: exit 0, nothing left.
fn vm_pod_shell() -> Result<(), Failed> {
    let script = "docker exec nginx ps -o pid,args; echo \"exec said $?\"\n";
    let run = run_xtask_with(&["pod"], Some(script), None)?;
    if run.status.code() != Some(0) {
        return Err(format!("expected exit code 0 once the input ended, got {:?}\n{}", run.status, run.output).into());
    }
    let pause_is_pid_1 = run.output.lines().any(|line| line.split_whitespace().eq(["1", "/pause"]));
    if !pause_is_pid_1 || !run.output.contains("exec said 0") || !run.output.contains("tearing down") {
        return Err(format!("expected `1 /pause`, `exec said 0` and the tear-down; the output:\n{}", run.output).into());
    }
    nothing_left(run.pid)
}

/// `cargo xtask pod` whose guest's kernel says a CPU is stuck once the seed pod runs: a new
/// guest is booted and the pod made again, once; the shell then runs there and nothing is left.
fn vm_pod_lockup() -> Result<(), Failed> {
    let xtask = xtask_with_fault_injection()?;
    let script = "docker exec nginx ps -o pid,args\n";
    let run = run_program_with(&xtask, &["pod"], &[("PODLAB_INJECT_LOCKUP", "1")], Some(script), None)?;
    let said = "the host failed beneath the pod (the guest's kernel reports a CPU stuck in it";
    let pause_is_pid_1 = run.output.lines().any(|line| line.split_whitespace().eq(["1", "/pause"]));
    if run.status.code() != Some(0) || !run.output.contains(said) || !pause_is_pid_1 || run.output.contains("warning") {
        return Err(format!(
            "expected exit code 0, {said:?}, then `1 /pause` from the new guest and no warning; got {:?}\n{}",
            run.status, run.output
        )
        .into());
    }
    nothing_left(run.pid)
}

/// `cargo xtask clean` while a `cargo xtask pod` is open: the pod's guest and temp dir belong
/// to a live run, so clean leaves them; the pod still answers afterwards, and ends cleanly.
fn clean_spares_a_live_pod() -> Result<(), Failed> {
    let mut pod =
        Command::new(XTASK).arg("pod").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let pid = pod.id();
    let (lines_sender, lines) = mpsc::channel::<String>();
    let readers = [
        spawn_line_reader(pod.stdout.take(), lines_sender.clone()),
        spawn_line_reader(pod.stderr.take(), lines_sender),
    ];
    let mut output = String::new();
    let ready = wait_for_line(&lines, &mut output, "Exit the shell to tear everything down.", RUN_TIMEOUT);
    let outcome = ready.and_then(|()| {
        let clean = Command::new(XTASK).arg("clean").output()?;
        let said = String::from_utf8_lossy(&clean.stdout).into_owned();
        if guest_processes(pid).is_empty() {
            return Err(format!("cargo xtask clean killed the live pod's guest; it said:\n{said}").into());
        }
        let mut stdin = pod.stdin.take().ok_or("no stdin")?;
        stdin.write_all(b"docker exec nginx ps -o pid,args; exit\n")?;
        drop(stdin);
        Ok(())
    });
    let status = wait_with_deadline(&mut pod, RUN_TIMEOUT);
    for reader in readers {
        let _ = reader.join();
    }
    output.extend(lines.try_iter().map(|line| line + "\n"));
    outcome?;
    let pause_is_pid_1 = output.lines().any(|line| line.split_whitespace().eq(["1", "/pause"]));
    if status.map(|status| status.code()) != Some(Some(0)) || !pause_is_pid_1 {
        return Err(format!("expected the pod to answer after clean and exit 0; got {status:?}\n{output}").into());
    }
    nothing_left(pid)
}

/// Collects lines into `output` until one contains `text`.
fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    output: &mut String,
    text: &str,
    timeout: Duration,
) -> Result<(), Failed> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            output.push_str(&line);
            output.push('\n');
            if line.contains(text) {
                return Ok(());
            }
        }
    }
    Err(format!("never saw {text:?} within {timeout:?}; the output:\n{output}").into())
}

/// Waits for a child up to `timeout`, then kills it.
fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_and_wait(child);
    None
}

/// `cargo xtask pod` on a terminal (a pty, driven with rexpect): keys go to the guest's shell
/// in raw mode, `docker exec -ti` gets a TTY there and shows `/pause` as PID 1, and `exit`
/// tears everything down: exit 0, nothing left.
fn vm_pod_on_a_terminal() -> Result<(), Failed> {
    let mut command = Command::new("sh");
    // The shell says xtask's pid first (exec keeps it), for the leftover check.
    command.args(["-c", &format!("echo \"xtask pid $$\"; exec {XTASK} pod")]);
    let mut terminal = rexpect::session::spawn_command(command, Some(180_000))?;
    let (_, pid_line) = terminal.exp_regex(r"xtask pid \d+")?;
    let pid: u32 = pid_line.trim_start_matches("xtask pid ").parse()?;
    terminal.exp_string("Exit the shell to tear everything down.")?;
    terminal.exp_string("# ")?;
    terminal.send_line("docker exec -ti nginx ps -o pid,args")?;
    terminal.exp_regex(r"\n\s*1 /pause\s*\r?\n")?;
    terminal.exp_string("# ")?;
    terminal.send_line("exit")?;
    terminal.exp_string("tearing down")?;
    terminal.exp_eof()?;
    let status = format!("{:?}", terminal.process().wait()?);
    if !status.starts_with("Exited(") || !status.ends_with(", 0)") {
        return Err(format!("expected xtask pod to exit 0 after `exit`, got {status}").into());
    }
    nothing_left(pid)
}

/// The guests of the run with this pid.
fn guest_processes(xtask_pid: u32) -> Vec<String> {
    pid1::proc::command_lines()
        .into_iter()
        .map(|(_, command_line)| command_line)
        .filter(|line| names::is_guest(line) && owned_by(line, xtask_pid))
        .collect()
}

/// SIGKILL to every `/pause` in the cgroups of the run's containers.
fn kill_pause_of(xtask_pid: u32) {
    let top = Path::new("/sys/fs/cgroup/pids").join(names::cgroup(xtask_pid));
    for container in std::fs::read_dir(top).into_iter().flatten().flatten() {
        let procs = std::fs::read_to_string(container.path().join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| line == b"/pause\0") {
                nix_kill(pid.parse().unwrap_or(0), 9);
            }
        }
    }
}

/// SIGKILL to the run's QEMU, as if the guest had died.
fn kill_guests_of(xtask_pid: u32) {
    signal_guests_of(xtask_pid, 9);
}

fn signal_guests_of(xtask_pid: u32, signal: i32) {
    for (pid, command_line) in pid1::proc::command_lines() {
        if names::is_guest(&command_line) && owned_by(&command_line, xtask_pid) {
            nix_kill(pid.as_raw() as u32, signal);
        }
    }
}

/// SIGKILL to the run's daemon called `name` (its command line names the run's temp dir).
fn kill_daemon_of(xtask_pid: u32, name: &str) {
    for (pid, command_line) in pid1::proc::command_lines() {
        if command_line.split_whitespace().next() == Some(name) && owned_by(&command_line, xtask_pid) {
            nix_kill(pid.as_raw() as u32, 9);
        }
    }
}

/// Whether a text names a temp dir of the run with this pid.
fn owned_by(text: &str, xtask_pid: u32) -> bool {
    names::temp_dir_in(text).and_then(|dir| names::temp_dir_owner(&dir)) == Some(xtask_pid)
}

/// A scenario that does not load stops the run with exit code 2, naming file, line and field.
fn load_error_stops_early() -> Result<(), Failed> {
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

/// A folder of this test's own scenarios (`xtask/tests/<folder>`), for `--scenarios`.
fn fixture_scenarios(folder: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(folder).to_string_lossy().into_owned()
}

fn compile_fixture(fixture: &str, directory: &Path) -> Result<PathBuf, Failed> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/broken-pauses/{fixture}.c"));
    let binary = directory.join(fixture);
    let status = Command::new("gcc").args(["-Os", "-static", "-o"]).arg(&binary).arg(&source).status()?;
    if !status.success() {
        return Err(format!("gcc could not build {}: is libc6-dev installed?", source.display()).into());
    }
    Ok(binary)
}

struct Run {
    pid: u32,
    status: ExitStatus,
    /// stdout and stderr, interleaved as they came.
    output: String,
}

/// Runs the xtask binary; with `signal_after`, sends that signal once that text appears in its output.
fn run_xtask(arguments: &[&str], signal_after: Option<(&str, i32)>) -> Result<Run, Failed> {
    run_xtask_with(arguments, None, signal_after.map(|(trigger, signal)| (trigger, Action::Signal(signal))))
}

/// Runs the xtask binary and kills its QEMU (not xtask) once `trigger` appears.
fn run_xtask_killing_qemu(arguments: &[&str], trigger: &str) -> Result<Run, Failed> {
    run_xtask_with(arguments, None, Some((trigger, Action::KillQemu)))
}

#[derive(Clone, Copy)]
enum Action {
    Signal(i32),
    KillQemu,
    /// SIGKILL to the run's own daemon of this name (dockerd, containerd), this long after.
    KillDaemon(&'static str, Duration),
    /// SIGSTOP to the run's QEMU, this long after: the guest freezes.
    StopQemu(Duration),
    /// SIGKILL to the run's pause (on this machine), this long after: the sandbox dies.
    KillPause(Duration),
}

/// `input`, when given, is written to xtask's stdin, which is then closed.
fn run_xtask_with(arguments: &[&str], input: Option<&str>, trigger: Option<(&str, Action)>) -> Result<Run, Failed> {
    run_program_with(Path::new(XTASK), arguments, &[], input, trigger)
}

fn run_program_with(
    program: &Path,
    arguments: &[&str],
    environment: &[(&str, &str)],
    input: Option<&str>,
    trigger: Option<(&str, Action)>,
) -> Result<Run, Failed> {
    let mut child = Command::new(program)
        .args(arguments)
        .envs(environment.iter().copied())
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let input = input.to_string();
        std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    }
    let (lines_sender, lines) = mpsc::channel::<String>();
    let readers = [
        spawn_line_reader(child.stdout.take(), lines_sender.clone()),
        spawn_line_reader(child.stderr.take(), lines_sender),
    ];
    let started = Instant::now();
    let mut output = String::new();
    let mut interrupted = false;
    let status = loop {
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(50)) {
            if let Some((text, action)) = trigger {
                if !interrupted && line.contains(text) {
                    interrupted = true;
                    match action {
                        Action::Signal(signal) => nix_kill(pid, signal),
                        Action::KillQemu => kill_guests_of(pid),
                        Action::KillPause(after) => {
                            std::thread::spawn(move || {
                                std::thread::sleep(after);
                                kill_pause_of(pid);
                            });
                        }
                        Action::StopQemu(after) => {
                            std::thread::spawn(move || {
                                std::thread::sleep(after);
                                signal_guests_of(pid, 19);
                            });
                        }
                        Action::KillDaemon(name, after) => {
                            std::thread::spawn(move || {
                                std::thread::sleep(after);
                                kill_daemon_of(pid, name);
                            });
                        }
                    }
                }
            }
            output.push_str(&line);
            output.push('\n');
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            kill_and_wait(&mut child);
            return Err(format!("xtask did not finish within {RUN_TIMEOUT:?}; its output:\n{output}").into());
        }
    };
    for reader in readers {
        let _ = reader.join();
    }
    output.extend(lines.try_iter().map(|line| line + "\n"));
    if let (Some((text, _)), false) = (trigger, interrupted) {
        return Err(format!("never saw {text:?} to act on; the output:\n{output}").into());
    }
    Ok(Run { pid, status, output })
}

fn spawn_line_reader(
    pipe: Option<impl Read + Send + 'static>,
    lines: mpsc::Sender<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if let Some(pipe) = pipe {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        }
    })
}

fn kill_and_wait(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn nix_kill(pid: u32, signal: i32) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// What a run of xtask with this pid would leave: its bridge, its containers' cgroups, its
/// daemon's or guest's temp dir, mounts under it, or processes (QEMU, dockerd, containerd,
/// shims) still using it.
/// Everything a run makes carries its pid (`names`), so other runs on the machine do not count.
fn nothing_left(xtask_pid: u32) -> Result<(), Failed> {
    let bridge = names::bridge(xtask_pid);
    let mut leftovers = Vec::new();
    if Path::new("/sys/class/net").join(&bridge).exists() {
        leftovers.push(format!("network bridge {bridge}"));
    }
    for path in names::temp_dirs() {
        if names::temp_dir_owner(&path) == Some(xtask_pid) {
            leftovers.push(format!("temp dir {}", path.file_name().unwrap_or_default().to_string_lossy()));
        }
    }
    for root in std::fs::read_dir("/sys/fs/cgroup")?.flatten().map(|entry| entry.path()) {
        if root.join(names::cgroup(xtask_pid)).is_dir() {
            leftovers.push(format!("cgroup {}", root.join(names::cgroup(xtask_pid)).display()));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    leftovers.extend(mounts.lines().filter(|line| owned_by(line, xtask_pid)).map(|line| format!("mount {line}")));
    // One look at every process: guests, and whatever still names the run's temp dirs.
    for (pid, command_line) in pid1::proc::command_lines() {
        if owned_by(&command_line, xtask_pid) {
            leftovers.push(format!("process {pid}: {command_line}"));
        }
    }
    if !leftovers.is_empty() {
        return Err(format!("the run left behind:\n{}", leftovers.join("\n")).into());
    }
    Ok(())
}
