//! `cargo xtask bench`: what one pause costs, beside its peers.
//!
//! For each binary: file size, resident memory as an idle PID 1, the time to reap a storm
//! of orphans that exit together, and SIGTERM-to-exit latency (median of many runs).
//! Every figure comes from the real kernel: a fresh PID namespace per run, read from /proc.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::Signal;
use pid1::{Family, Launch, launch, proc};

use crate::cancel::Cancel;
use crate::host::Placement;
use crate::host::vm::VmOptions;
use crate::lab::{Choice, LabPlan};
use crate::pause_build::PauseCommand;
use crate::runtime::{self, RunIdentity, RuntimeKind};
use crate::{names, pause_build, report};

#[derive(Debug, clap::Args)]
#[command(after_help = "Needs root, or unprivileged user namespaces, to create PID namespaces.")]
pub struct Options {
    /// Measure this pause instead of building the workspace's (release profile)
    #[arg(long, value_name = "'PATH [ARGS]'", value_parser = PauseCommand::parse)]
    pub pause_bin: Option<PauseCommand>,
    /// Also measure this pause-like program, run with these arguments (repeatable; e.g.
    /// --vs '/usr/bin/catatonit -P' or --vs '/usr/bin/tini -s -- /bin/sleep infinity')
    #[arg(long = "vs", value_name = "'PATH [ARGS]'", value_parser = PauseCommand::parse)]
    pub peers: Vec<PauseCommand>,
    /// Size of the orphan storm
    #[arg(long, default_value_t = 10_000)]
    pub orphans: usize,
    /// Orphan storms per binary; the median is shown
    #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub storms: usize,
    /// SIGTERM-to-exit runs per binary
    #[arg(long, default_value_t = 201, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub runs: usize,
    /// Also boot the vm host's guest N times, with the runtime of --runtime, and print each boot phase
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub vm_boots: usize,
    /// The runtime the guest boots with (--vm-boots)
    #[arg(long, value_enum, default_value_t = runtime::default_runtime())]
    pub runtime: &'static RuntimeKind,
    /// Skip the pause table (with --vm-boots: measure boots only)
    #[arg(long)]
    pub no_pause: bool,
}

/// How much work each measurement does.
#[derive(Clone, Copy)]
struct Sizes {
    orphans: usize,
    storms: usize,
    runs: usize,
}

/// The figures of one subject.
struct Figures {
    size_bytes: u64,
    resident_kb: u64,
    storm_wall_median: Duration,
    storm_reaper_cpu_median: Duration,
    sigterm_median: Duration,
    sigterm_p90: Duration,
    sigterm_exit: String,
}

pub fn run(options: Options) -> Result<()> {
    let sizes = Sizes { orphans: options.orphans, storms: options.storms, runs: options.runs };
    if !options.no_pause {
        measure_pauses(&options, sizes)?;
    }
    if options.vm_boots > 0 {
        measure_vm_boots(options.vm_boots, options.runtime)?;
    }
    Ok(())
}

fn measure_pauses(options: &Options, sizes: Sizes) -> Result<()> {
    pid1::pid_namespaces_available("/bin/true")
        .map_err(|reason| anyhow!("{reason}\nrun the bench as root, or enable unprivileged user namespaces"))?;
    let ours = match &options.pause_bin {
        Some(pause) => pause.clone(),
        None => PauseCommand::ours(Cancel::NEVER)?,
    };

    let mut rows = Vec::new();
    for subject in std::iter::once(&ours).chain(&options.peers) {
        eprintln!("measuring {subject} ...");
        let started = Instant::now();
        let figures = measure(subject, sizes).with_context(|| format!("while measuring {subject}"))?;
        eprintln!("  done in {:.1} s", started.elapsed().as_secs_f64());
        rows.push((subject.to_string(), figures));
    }
    print_table(&rows, sizes);
    Ok(())
}

fn measure(subject: &PauseCommand, sizes: Sizes) -> Result<Figures> {
    let size_bytes = std::fs::metadata(&subject.binary)?.len();
    let resident_kb = idle_resident_kb(subject)?;
    let storms = (0..sizes.storms).map(|_| orphan_storm(subject, sizes.orphans)).collect::<Result<Vec<_>>>()?;
    let mut walls: Vec<Duration> = storms.iter().map(|storm| storm.wall).collect();
    let mut reaper_cpus: Vec<Duration> = storms.iter().map(|storm| storm.reaper_cpu).collect();
    walls.sort();
    reaper_cpus.sort();
    let (mut latencies, sigterm_exit) = sigterm_latencies(subject, sizes.runs)?;
    latencies.sort();
    Ok(Figures {
        size_bytes,
        resident_kb,
        storm_wall_median: walls[walls.len() / 2],
        storm_reaper_cpu_median: reaper_cpus[reaper_cpus.len() / 2],
        sigterm_median: latencies[latencies.len() / 2],
        sigterm_p90: latencies[latencies.len() * 9 / 10],
        sigterm_exit,
    })
}

fn launch_as_pid_1(subject: &PauseCommand, family: Family) -> Result<pid1::Running> {
    let mut settings = Launch::as_pid_1(&subject.binary);
    settings.arguments = subject.arguments.clone();
    settings.family = family;
    let running = launch(&settings).map_err(|error| anyhow!(error))?;
    running.wait_until_sleeping().map_err(|error| anyhow!(error))?;
    Ok(running)
}

/// Boots the vm host's guest `boots` times with `runtime` in it, and prints, per boot, the
/// host's time from starting QEMU to the runtime answering and the guest's uptime at each phase.
fn measure_vm_boots(boots: usize, runtime: &'static RuntimeKind) -> Result<()> {
    let workspace = pause_build::workspace_root();
    let progress = crate::progress::Progress::new();
    let choice = Choice { on: Placement::Vm, runtime, engine: None, vm: VmOptions::default() };
    let mut rows = Vec::new();
    let mut details = String::new();
    for boot in 1..=boots {
        let run_id = format!("{}-boot-{boot}", names::run_id());
        let run_dir = names::artifacts_dir(workspace, &run_id);
        std::fs::create_dir_all(&run_dir)?;
        // bench leaves Ctrl-C to kill it (with its guest, by PDEATHSIG): nothing here is cut short.
        let plan = LabPlan {
            choice: &choice,
            pause_bin: None,
            interactive: false,
            run_id: &run_id,
            run_dir: &run_dir,
            cancel: Cancel::NEVER,
        };
        let started = Instant::now();
        let host = crate::lab::start_host(&plan, choice.runtime(), &progress)?;
        let identity = RunIdentity { run_id: &run_id, run_dir: &run_dir, cancel: Cancel::NEVER };
        let mut runtime = choice.runtime().start(host, &identity, &progress)?;
        let start_to_ready = started.elapsed();
        let ready_uptime = runtime.host().uptime()?;
        details = runtime.host().details();
        let phases = crate::host::vm::console_phases(&run_dir.join("console.log"));
        let uptime_of = |name: &str| {
            phases.iter().find(|(phase, _)| phase == name).map_or("-".to_string(), |(_, at)| format!("{at:.2}"))
        };
        let agent_up = phases.iter().find(|(phase, _)| phase == "agent up").map(|(_, at)| *at);
        rows.push(vec![
            boot.to_string(),
            format!("{:.2}", start_to_ready.as_secs_f64()),
            uptime_of("stage 1"),
            uptime_of("root mounted"),
            uptime_of("stage 2"),
            agent_up.map_or("-".to_string(), |at| format!("{at:.2}")),
            format!("{:.2}", ready_uptime.as_secs_f64()),
        ]);
        runtime.shut_down()?;
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    let headers: Vec<String> = [
        "boot",
        "QEMU start to runtime ready, host (s)",
        "stage 1 (s)",
        "root mounted (s)",
        "stage 2 (s)",
        "agent up (s)",
        "runtime ready (s)",
    ]
    .iter()
    .map(|header| header.to_string())
    .collect();
    println!(
        "\nguest boots with the {} runtime, {details}; phase columns are the guest's uptime\n{}",
        runtime.name(),
        report::markdown_table(&headers, &rows)
    );
    Ok(())
}

/// VmRSS once start-up is over and the program sleeps.
fn idle_resident_kb(subject: &PauseCommand) -> Result<u64> {
    let running = launch_as_pid_1(subject, Family::None)?;
    // Let any lazy start-up work (a peer may fork its child) settle before reading.
    std::thread::sleep(Duration::from_millis(200));
    proc::status_number(running.pid, "VmRSS").context("cannot read VmRSS")
}

/// What one orphan storm took.
struct Storm {
    /// From the release of the orphans until PID 1 has none left. This includes the
    /// orphans' own exits, the same work for every subject, and is noisy on two cores.
    wall: Duration,
    /// CPU time PID 1 itself spent meanwhile: the reaper's own cost.
    reaper_cpu: Duration,
}

/// Re-parents `count` orphans to PID 1, then lets them exit together.
fn orphan_storm(subject: &PauseCommand, count: usize) -> Result<Storm> {
    const STORM_TIMEOUT: Duration = Duration::from_secs(120);
    let mut running = launch_as_pid_1(subject, Family::Orphans { count })?;
    // Children that are not ours (a peer's own child, such as tini's) stay out of the count.
    let others = proc::children(running.pid).len() - 1;
    running.orphan_the_grandchildren();
    if !proc::eventually(STORM_TIMEOUT, || proc::children(running.pid).len() == others + count) {
        bail!("the {count} orphans were not re-parented to PID 1 within {STORM_TIMEOUT:?}");
    }
    let cpu_before = proc::cpu_time(running.pid).context("cannot read PID 1's CPU time")?;
    let started = Instant::now();
    running.release_the_orphans();
    if !proc::eventually(STORM_TIMEOUT, || proc::children(running.pid).len() == others) {
        let left = proc::children(running.pid).len() - others;
        bail!("{left} of {count} orphans were still not reaped after {STORM_TIMEOUT:?}: the program does not reap");
    }
    let wall = started.elapsed();
    let cpu_after = proc::cpu_time(running.pid).context("cannot read PID 1's CPU time")?;
    Ok(Storm { wall, reaper_cpu: cpu_after.saturating_sub(cpu_before) })
}

/// SIGTERM-to-exit (as seen by the parent's pidfd), once per run; and how the first run ended.
fn sigterm_latencies(subject: &PauseCommand, runs: usize) -> Result<(Vec<Duration>, String)> {
    let mut latencies = Vec::with_capacity(runs);
    let mut first_exit = String::new();
    for _ in 0..runs {
        let mut running = launch_as_pid_1(subject, Family::None)?;
        let started = Instant::now();
        running.signal(Signal::SIGTERM).map_err(|error| anyhow!(error))?;
        let ended =
            running.wait_for_exit(Duration::from_secs(10)).map_err(|error| anyhow!("after SIGTERM: {error}"))?;
        latencies.push(started.elapsed());
        if first_exit.is_empty() {
            first_exit = describe_status(ended.status);
        }
    }
    Ok((latencies, first_exit))
}

fn describe_status(status: nix::sys::wait::WaitStatus) -> String {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => format!("exit {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
        other => format!("{other:?}"),
    }
}

fn print_table(rows: &[(String, Figures)], sizes: Sizes) {
    let headers = [
        "binary".to_string(),
        "size (bytes)".to_string(),
        "idle RSS (kB)".to_string(),
        format!("reap {} orphans: wall / PID 1 CPU, median of {} (ms)", sizes.orphans, sizes.storms),
        format!("SIGTERM to exit, median / p90 of {} (µs)", sizes.runs),
        "on SIGTERM".to_string(),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(label, figures)| {
            vec![
                label.clone(),
                figures.size_bytes.to_string(),
                figures.resident_kb.to_string(),
                format!(
                    "{:.0} / {:.1}",
                    figures.storm_wall_median.as_secs_f64() * 1e3,
                    figures.storm_reaper_cpu_median.as_secs_f64() * 1e3
                ),
                format!("{} / {}", figures.sigterm_median.as_micros(), figures.sigterm_p90.as_micros()),
                figures.sigterm_exit.clone(),
            ]
        })
        .collect();
    println!("\n{}", report::markdown_table(&headers, &cells));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        options: Options,
    }

    fn parse(arguments: &[&str]) -> Result<Options, clap::Error> {
        use clap::Parser;
        Command::try_parse_from(std::iter::once("bench").chain(arguments.iter().copied()))
            .map(|command| command.options)
    }

    #[test]
    fn vs_takes_a_program_and_its_arguments() {
        let options = parse(&["--vs", "/bin/sh -c true", "--runs", "7"]).unwrap();
        assert_eq!(options.peers.len(), 1);
        assert_eq!(options.peers[0].binary, std::path::Path::new("/bin/sh").canonicalize().unwrap());
        assert_eq!(options.peers[0].arguments, ["-c", "true"]);
        assert_eq!(
            options.peers[0].to_string(),
            format!("{} -c true", std::path::Path::new("/bin/sh").canonicalize().unwrap().display())
        );
        assert_eq!((options.runs, options.storms, options.orphans), (7, 5, 10_000));
    }

    #[test]
    fn mistakes_are_named() {
        let error = |list: &[&str]| parse(list).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(error(&["--frobnicate"]).contains("unexpected argument '--frobnicate'"));
        assert!(error(&["--runs"]).contains("a value is required for '--runs <RUNS>'"));
        assert!(error(&["--runs", "0"]).contains("0 is not in 1.."), "{}", error(&["--runs", "0"]));
        assert!(error(&["--vs", "/no/such/pause"]).contains("/no/such/pause: no such file"));
    }
}
