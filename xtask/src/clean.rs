//! `cargo xtask clean`: removes what a run killed with SIGKILL could not clean up itself:
//! QEMU guests and private dockerds of runs that are gone, their temp dirs, mounts and bridges.
//! It leaves alone anything that belongs to a run still in progress.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::command::{self, argv};

pub fn run(arguments: &[String]) -> Result<()> {
    if let Some(unknown) = arguments.first() {
        bail!("cargo xtask clean takes no options, got `{unknown}`");
    }
    let mut removed = Vec::new();
    let live_runs = live_xtask_pids();
    for process in processes() {
        // QEMU guests and dockerds are ours when their command line names one of our temp dirs.
        let Some(temp_dir) = our_temp_dir(&process.command_line) else { continue };
        if owner_is_alive(&temp_dir, &live_runs) {
            continue;
        }
        let _ = kill(Pid::from_raw(process.pid), Signal::SIGKILL);
        removed.push(format!(
            "process {} ({})",
            process.pid,
            process.command_line.chars().take(80).collect::<String>()
        ));
    }
    std::thread::sleep(Duration::from_millis(300));
    for temp_dir in our_temp_dirs() {
        if owner_is_alive(&temp_dir, &live_runs) {
            continue;
        }
        for problem in crate::engine::docker_host::unmount_everything_under(&temp_dir) {
            eprintln!("warning: {problem}");
        }
        match std::fs::remove_dir_all(&temp_dir) {
            Ok(()) => removed.push(format!("temp dir {}", temp_dir.display())),
            Err(error) => eprintln!("warning: cannot remove {}: {error}", temp_dir.display()),
        }
    }
    for bridge in bridges() {
        let owner: Option<u32> = bridge.trim_start_matches("podlab").parse().ok();
        if owner.is_some_and(|number| live_runs.iter().any(|pid| pid % 10_000 == number)) {
            continue;
        }
        let delete = argv(&["ip", "link", "delete", &bridge]);
        if command::run_even_if_interrupted(&delete, Duration::from_secs(10)).is_ok_and(|output| output.success()) {
            removed.push(format!("bridge {bridge}"));
        }
    }
    if removed.is_empty() {
        println!("nothing to clean");
    } else {
        println!("removed:\n  {}", removed.join("\n  "));
    }
    Ok(())
}

struct Process {
    pid: i32,
    command_line: String,
}

fn processes() -> Vec<Process> {
    pid1::proc::command_lines()
        .into_iter()
        .map(|(pid, command_line)| Process { pid: pid.as_raw(), command_line })
        .collect()
}

/// Pids of `xtask test` runs in progress (not this `clean`).
fn live_xtask_pids() -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|process| process.pid as u32 != std::process::id())
        .filter(|process| {
            let mut words = process.command_line.split_whitespace();
            let program = words.next().unwrap_or_default();
            program.ends_with("/xtask") && words.next() == Some("test")
        })
        .map(|process| process.pid as u32)
        .collect()
}

fn our_temp_dirs() -> Vec<PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| our_temp_dir(&path.to_string_lossy()).is_some())
        .collect()
}

/// The `/tmp/podlab-vm-XXXX` or `/tmp/podlab-docker-XXXX` a text names, if any.
fn our_temp_dir(text: &str) -> Option<PathBuf> {
    let temp = std::env::temp_dir().to_string_lossy().trim_end_matches('/').to_string();
    ["podlab-vm-", "podlab-docker-"].iter().find_map(|prefix| {
        let start = text.find(&format!("{temp}/{prefix}"))?;
        let rest = &text[start..];
        let end = rest[temp.len() + 1..].find(['/', ' ', ',']).map_or(rest.len(), |index| index + temp.len() + 1);
        Some(PathBuf::from(&rest[..end]))
    })
}

/// A temp dir belongs to a live run when a live `xtask test` process has it open (its cwd,
/// or any open file under it), or a live run's QEMU or dockerd names it and that run lives.
fn owner_is_alive(temp_dir: &Path, live_runs: &[u32]) -> bool {
    live_runs.iter().any(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(temp_dir)))
            || processes().iter().any(|process| {
                parent_of(process.pid) == Some(*pid as i32)
                    && process.command_line.contains(&*temp_dir.to_string_lossy())
            })
    })
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

fn bridges() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix("podlab").is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_temp_dirs_in_command_lines() {
        let temp = std::env::temp_dir().to_string_lossy().trim_end_matches('/').to_string();
        let line = format!("qemu-system-x86_64 -initrd {temp}/podlab-vm-AbC123/initramfs.cpio -serial file:x");
        assert_eq!(our_temp_dir(&line), Some(PathBuf::from(format!("{temp}/podlab-vm-AbC123"))));
        let line = format!("dockerd --host=unix://{temp}/podlab-docker-Xy9/docker.sock");
        assert_eq!(our_temp_dir(&line), Some(PathBuf::from(format!("{temp}/podlab-docker-Xy9"))));
        assert_eq!(our_temp_dir("dockerd --host=unix:///run/docker.sock"), None);
    }
}
