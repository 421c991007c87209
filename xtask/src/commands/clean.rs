//! `cargo xtask clean`: removes what a run killed with SIGKILL could not clean up itself:
//! QEMU guests and private daemons of runs that are gone, their temp dirs, mounts and bridges,
//! an image build they left in the cache,
//! and (once no run is alive) the port mappings of podlab's CNI network and portmap's chains.
//! Everything a run makes names the run's pid (`crate::names`): what belongs to a live run of
//! any command (test, pod, bench) is left alone.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::{Signal, kill};

use crate::cancel::Cancel;
use crate::command::{self, argv};
use crate::machine::{self, CNI_CACHE, cgroup_roots, remove_cgroups, unmount_everything_under};
use crate::{names, pause_build, runtime};

pub fn run() -> Result<()> {
    let mut removed = Vec::new();
    let dead = |owner: Option<u32>| owner.is_none_or(|pid| !names::is_live_run(pid));
    // An image build a gone run left: its directory in the image cache, and what still runs in it
    // (the first boot of Ghost names it; pnpm's compilers end on their own).
    let build_dirs: Vec<PathBuf> = std::fs::read_dir(names::cache_dir(pause_build::workspace_root()))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_str().and_then(names::build_dir_owner).is_some_and(|pid| dead(Some(pid))))
        .map(|entry| entry.path())
        .collect();
    for (pid, command_line) in pid1::proc::command_lines() {
        // QEMU guests and daemons are ours when their command line names one of our temp dirs.
        let in_gone_temp_dir =
            names::temp_dir_in(&command_line).is_some_and(|temp_dir| dead(names::temp_dir_owner(&temp_dir)));
        let in_gone_build = build_dirs.iter().any(|directory| command_line.contains(&*directory.to_string_lossy()));
        if pid.as_raw() as u32 == std::process::id() || !(in_gone_temp_dir || in_gone_build) {
            continue;
        }
        let _ = kill(pid, Signal::SIGKILL);
        let what = if names::is_guest(&command_line) { "guest" } else { "process" };
        removed.push(format!("{what} {pid} ({})", command_line.chars().take(80).collect::<String>()));
    }
    std::thread::sleep(Duration::from_millis(300));
    for build_dir in build_dirs {
        match std::fs::remove_dir_all(&build_dir) {
            Ok(()) => removed.push(format!("image build directory {}", build_dir.display())),
            Err(error) => eprintln!("warning: cannot remove {}: {error}", build_dir.display()),
        }
    }
    for temp_dir in names::temp_dirs() {
        if !dead(names::temp_dir_owner(&temp_dir)) {
            continue;
        }
        for problem in unmount_everything_under(&temp_dir) {
            eprintln!("warning: {problem}");
        }
        match std::fs::remove_dir_all(&temp_dir) {
            Ok(()) => removed.push(format!("temp dir {}", temp_dir.display())),
            Err(error) => eprintln!("warning: cannot remove {}: {error}", temp_dir.display()),
        }
    }
    for bridge in bridges() {
        if !dead(names::bridge_owner(&bridge)) {
            continue;
        }
        let delete = argv(&["ip", "link", "delete", &bridge]);
        if command::run(&delete, Duration::from_secs(10), Cancel::NEVER).is_ok_and(|output| output.success()) {
            removed.push(format!("bridge {bridge}"));
        }
    }
    for cgroup in cgroups() {
        if !dead(names::bridge_owner(&cgroup)) {
            continue;
        }
        for problem in remove_cgroups(&cgroup) {
            eprintln!("warning: {problem}");
        }
        removed.push(format!("cgroup {cgroup}"));
    }
    // What runs share (portmap's nat chains, CNI's cache and netns directories) only once no run is alive.
    let any_run_alive = names::another_run_is_alive();
    if !any_run_alive && machine::portmap_chains_exist() {
        let mut problems = machine::remove_podlab_port_mappings();
        problems.extend(machine::remove_portmap_chains());
        if problems.is_empty() {
            removed.push("portmap's nat chains".to_string());
        }
        for problem in problems {
            eprintln!("note: {problem}");
        }
    }
    if !any_run_alive {
        removed.extend(remove_podlab_cni_results());
        let (gone, left) = machine::remove_shared_dirs(runtime::cni_temp_words());
        removed.extend(gone.iter().map(|dir| format!("{dir}, made by a run and now empty")));
        for problem in left {
            eprintln!("warning: {problem}");
        }
    }
    if removed.is_empty() {
        println!("nothing to clean");
    } else {
        println!("removed:\n  {}", removed.join("\n  "));
    }
    Ok(())
}

/// The cgroups of runs' containers, under any hierarchy.
fn cgroups() -> Vec<String> {
    let mut names: Vec<String> = cgroup_roots()
        .into_iter()
        .flat_map(|root| std::fs::read_dir(root).into_iter().flatten().flatten())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| names::bridge_owner(name).is_some())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn bridges() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| names::bridge_owner(name).is_some())
        .collect()
}

/// libcni's cache of each attachment of podlab's network (`podlab-<id>-eth0`, and the
/// loopback network containerd adds, `cni-loopback-<id>-lo`), which a killed run never
/// detached.
fn remove_podlab_cni_results() -> Vec<String> {
    let results = std::path::Path::new(CNI_CACHE).join("results");
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(&results).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("podlab-").and_then(|rest| rest.strip_suffix("-eth0")) else { continue };
        for file in [name.clone(), format!("cni-loopback-{id}-lo")] {
            if std::fs::remove_file(results.join(&file)).is_ok() {
                removed.push(format!("CNI result {file}"));
            }
        }
    }
    removed
}
