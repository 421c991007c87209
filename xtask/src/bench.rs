//! `cargo xtask bench`: what one pause costs, beside its peers.
//!
//! For each binary: file size, resident memory as an idle PID 1, the time to reap a storm
//! of orphans that exit together, and SIGTERM-to-exit latency (median of many runs).
//! Every figure comes from the real kernel: a fresh PID namespace per run, read from /proc.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::Signal;
use pid1::{Family, Launch, launch, proc};

use crate::pause_build;

const HELP: &str = "\
Usage: cargo xtask bench [options]

Measures our pause and every peer given with --vs, each as PID 1 of a fresh PID namespace.

Options:
  --pause-bin PATH     measure this pause instead of building the workspace's (release profile)
  --vs 'PATH [ARGS]'   also measure this pause-like program, run with these arguments
                       (repeatable; e.g. --vs '/usr/bin/catatonit -P'
                       or --vs '/usr/bin/tini -s -- /bin/sleep infinity')
  --orphans N          size of the orphan storm (default 10000)
  --storms N           orphan storms per binary; the median is shown (default 5)
  --runs N             SIGTERM-to-exit runs per binary (default 201)
  --vm-boots N         also boot the vm engine's guest N times and print each boot phase
  --no-pause           skip the pause table (with --vm-boots: measure boots only)

Needs root, or unprivileged user namespaces, to create PID namespaces.";

struct Options {
    vm_boots: usize,
    measure_pause: bool,
    pause_bin: Option<PathBuf>,
    peers: Vec<Subject>,
    sizes: Sizes,
}

/// How much work each measurement does.
#[derive(Clone, Copy)]
struct Sizes {
    orphans: usize,
    storms: usize,
    runs: usize,
}

/// A program to measure and the arguments that make it sleep like pause.
struct Subject {
    program: PathBuf,
    arguments: Vec<String>,
}

impl Subject {
    fn label(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.arguments.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
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

pub fn run(arguments: &[String]) -> Result<()> {
    let Some(options) = parse(arguments)? else {
        println!("{HELP}");
        return Ok(());
    };
    if options.measure_pause {
        measure_pauses(&options)?;
    }
    if options.vm_boots > 0 {
        measure_vm_boots(options.vm_boots)?;
    }
    Ok(())
}

fn measure_pauses(options: &Options) -> Result<()> {
    pid1::pid_namespaces_available("/bin/true")
        .map_err(|reason| anyhow!("{reason}\nrun the bench as root, or enable unprivileged user namespaces"))?;
    let ours = match &options.pause_bin {
        Some(path) => path.clone(),
        None => pause_build::build_release()?,
    };
    let ours = Subject { program: ours, arguments: Vec::new() };

    let mut rows = Vec::new();
    for subject in std::iter::once(&ours).chain(&options.peers) {
        eprintln!("measuring {} ...", subject.label());
        let started = Instant::now();
        let figures =
            measure(subject, options.sizes).with_context(|| format!("while measuring {}", subject.label()))?;
        eprintln!("  done in {:.1} s", started.elapsed().as_secs_f64());
        rows.push((subject.label(), figures));
    }
    print_table(&rows, options.sizes);
    Ok(())
}

fn parse(arguments: &[String]) -> Result<Option<Options>> {
    let mut options = Options {
        vm_boots: 0,
        measure_pause: true,
        pause_bin: None,
        peers: Vec::new(),
        sizes: Sizes { orphans: 10_000, storms: 5, runs: 201 },
    };
    let mut arguments = arguments.iter();
    while let Some(argument) = arguments.next() {
        let mut value = || arguments.next().ok_or_else(|| anyhow!("{argument} needs a value (see --help)"));
        match argument.as_str() {
            "--help" | "-h" => return Ok(None),
            "--pause-bin" => options.pause_bin = Some(existing_file(value()?)?),
            "--vs" => {
                let mut words = value()?.split_whitespace().map(str::to_string);
                let program = words.next().ok_or_else(|| anyhow!("--vs needs a program path"))?;
                options.peers.push(Subject { program: existing_file(&program)?, arguments: words.collect() });
            }
            "--orphans" => options.sizes.orphans = value()?.parse().context("--orphans takes a whole number")?,
            "--storms" => options.sizes.storms = value()?.parse().context("--storms takes a whole number")?,
            "--vm-boots" => options.vm_boots = value()?.parse().context("--vm-boots takes a whole number")?,
            "--no-pause" => options.measure_pause = false,
            "--runs" => options.sizes.runs = value()?.parse().context("--runs takes a whole number")?,
            unknown => bail!("unknown option `{unknown}` (see cargo xtask bench --help)"),
        }
    }
    if options.sizes.runs == 0 || options.sizes.storms == 0 {
        bail!("--runs and --storms must be at least 1");
    }
    Ok(Some(options))
}

fn existing_file(path: &str) -> Result<PathBuf> {
    let path = PathBuf::from(path);
    if !path.is_file() {
        bail!("{} is not a file", path.display());
    }
    Ok(path)
}

fn measure(subject: &Subject, sizes: Sizes) -> Result<Figures> {
    let size_bytes = std::fs::metadata(&subject.program)?.len();
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

fn launch_as_pid_1(subject: &Subject, family: Family) -> Result<pid1::Running> {
    let mut settings = Launch::as_pid_1(&subject.program);
    settings.arguments = subject.arguments.clone();
    settings.family = family;
    let running = launch(&settings).map_err(|error| anyhow!(error))?;
    running.wait_until_sleeping().map_err(|error| anyhow!(error))?;
    Ok(running)
}

/// Boots the vm engine's guest `boots` times and prints, per boot, the host's time from
/// starting QEMU to dockerd answering and the guest's uptime at each phase.
fn measure_vm_boots(boots: usize) -> Result<()> {
    let workspace = pause_build::workspace_root();
    let options = crate::engine::vm::VmOptions { kernel: None, require_kvm: false };
    let progress = crate::progress::Progress::new();
    let mut rows = Vec::new();
    let mut acceleration = String::new();
    for boot in 1..=boots {
        let run_dir = workspace.join("target/podlab").join(format!("bench-boot-{}-{boot}", std::process::id()));
        std::fs::create_dir_all(&run_dir)?;
        let mut engine = crate::engine::vm::VmEngine::start(&options, false, &run_dir, "bench", &progress)?;
        acceleration = crate::engine::Engine::details(&engine);
        let phases = engine.console_phases();
        let uptime_of = |name: &str| {
            phases.iter().find(|(phase, _)| phase == name).map_or("-".to_string(), |(_, at)| format!("{at:.2}"))
        };
        let times = engine.boot_times;
        rows.push(vec![
            boot.to_string(),
            format!("{:.2}", times.start_to_ready.as_secs_f64()),
            uptime_of("stage 1"),
            uptime_of("root mounted"),
            uptime_of("stage 2"),
            format!("{:.2}", times.agent_up_ms as f64 / 1e3),
            format!("{:.2}", times.dockerd_ready_ms as f64 / 1e3),
        ]);
        crate::engine::Engine::shut_down(&mut engine)?;
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    let headers: Vec<String> = [
        "boot",
        "QEMU start to dockerd ready, host (s)",
        "stage 1 (s)",
        "root mounted (s)",
        "stage 2 (s)",
        "agent up (s)",
        "dockerd ready (s)",
    ]
    .iter()
    .map(|header| header.to_string())
    .collect();
    println!(
        "\nguest boots, {acceleration}; phase columns are the guest's uptime\n{}",
        markdown_table(&headers, &rows)
    );
    Ok(())
}

/// VmRSS once start-up is over and the program sleeps.
fn idle_resident_kb(subject: &Subject) -> Result<u64> {
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
fn orphan_storm(subject: &Subject, count: usize) -> Result<Storm> {
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
fn sigterm_latencies(subject: &Subject, runs: usize) -> Result<(Vec<Duration>, String)> {
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
    println!("\n{}", markdown_table(&headers, &cells));
}

/// A Markdown table with aligned columns, so the output reads well in a terminal and
/// can be pasted into docs/bench.md as it is.
fn markdown_table(headers: &[String], rows: &[Vec<String>]) -> String {
    let width_of = |text: &String| text.chars().count();
    let widths: Vec<usize> = (0..headers.len())
        .map(|column| {
            rows.iter().map(|row| width_of(&row[column])).chain([width_of(&headers[column])]).max().unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - width_of(cell))))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let separator: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    std::iter::once(line(headers))
        .chain([line(&separator)])
        .chain(rows.iter().map(|row| line(row)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::argv as arguments;

    #[test]
    fn vs_takes_a_program_and_its_arguments() {
        let options = parse(&arguments(&["--vs", "/bin/sh -c true", "--runs", "7"])).unwrap().unwrap();
        assert_eq!(options.peers.len(), 1);
        assert_eq!(options.peers[0].program, PathBuf::from("/bin/sh"));
        assert_eq!(options.peers[0].arguments, ["-c", "true"]);
        assert_eq!(options.peers[0].label(), "/bin/sh -c true");
        assert_eq!((options.sizes.runs, options.sizes.storms, options.sizes.orphans), (7, 5, 10_000));
    }

    #[test]
    fn help_asks_for_no_run() {
        assert!(parse(&arguments(&["--help"])).unwrap().is_none());
    }

    #[test]
    fn mistakes_are_named() {
        let error = |list: &[&str]| parse(&arguments(list)).err().map(|error| error.to_string()).unwrap_or_default();
        assert_eq!(error(&["--frobnicate"]), "unknown option `--frobnicate` (see cargo xtask bench --help)");
        assert_eq!(error(&["--runs"]), "--runs needs a value (see --help)");
        assert_eq!(error(&["--runs", "0"]), "--runs and --storms must be at least 1");
        assert_eq!(error(&["--vs", "/no/such/pause"]), "/no/such/pause is not a file");
    }

    #[test]
    fn table_columns_line_up() {
        let headers = arguments(&["binary", "size (bytes)"]);
        let rows = vec![arguments(&["a-long-binary-name", "2000"]), arguments(&["µ", "1"])];
        let table = markdown_table(&headers, &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "| binary             | size (bytes) |");
        assert_eq!(lines[1], "| ------------------ | ------------ |");
        assert_eq!(lines[3], "| µ                  | 1            |");
        assert!(lines.iter().all(|line| line.chars().count() == lines[0].chars().count()));
    }
}
