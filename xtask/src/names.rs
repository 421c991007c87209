//! podlab's names on a machine, in one place: the temp dirs, bridges, labels and run ids a run
//! makes. Each carries the pid of the run that made it, so that the runtimes, `cargo xtask clean`
//! and the harness's own tests agree on what belongs to a live run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The start of every temp dir a run makes under the system's temp dir.
const TEMP_PREFIX: &str = "podlab-";

/// The pause image as scenarios name it: the image of the pause under test, and the pod
/// sandbox's image that CRI and Kubernetes manifests always use.
pub const PAUSE_IMAGE: &str = "podlab/pause";

/// The label key on every container a run creates; its value is the run id.
pub const RUN_LABEL: &str = "podlab.run";

/// What a run puts before its container names on a daemon it shares with other runs.
pub fn container_prefix(pid: u32) -> String {
    format!("podlab-{pid}-")
}

/// The abstract unix socket a run binds while it chooses and takes a subnet for its bridge.
pub const NETWORK_LOCK: &str = "podlab-networks";

/// The abstract unix socket a run binds while it holds a port of this machine to publish on.
pub fn port_claim(port: u16) -> String {
    format!("podlab-port-{port}")
}

/// The word in the guest's scratch dirs (`temp_dir`); each runtime names its own.
pub const VM_TEMP_WORD: &str = "vm";

/// A new temp dir `/tmp/podlab-<word>-<our pid>-<random>`, removed when it drops: `word` says
/// what it is for (the guest's scratch files, a private runtime daemon's state), one lowercase word.
/// Under /tmp, not target/: a daemon's socket path must stay under 108 bytes.
pub fn temp_dir(word: &str) -> Result<tempfile::TempDir> {
    debug_assert!(!word.is_empty() && word.bytes().all(|byte| byte.is_ascii_lowercase()), "{word}");
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{word}-{}-", std::process::id()))
        .tempdir()
        .context("cannot make a temp dir")
}

/// The first of our temp dirs that `text` names (a QEMU or dockerd command line, a path).
pub fn temp_dir_in(text: &str) -> Option<PathBuf> {
    let start = format!("{}/{TEMP_PREFIX}", std::env::temp_dir().to_string_lossy().trim_end_matches('/'));
    text.match_indices(&start).find_map(|(at, _)| {
        let rest = &text[at..];
        let name_end = rest[start.len()..].find(['/', ' ', ',']).map_or(rest.len(), |index| index + start.len());
        let path = PathBuf::from(&rest[..name_end]);
        is_temp_dir_name(path.file_name()?.to_str()?).then_some(path)
    })
}

/// What one of our temp dirs is for and the pid of the run that made it, from its name
/// `podlab-<word>-<pid>-<random>`.
fn temp_dir_parts(name: &str) -> Option<(&str, u32)> {
    let (word, rest) = name.strip_prefix(TEMP_PREFIX)?.split_once('-')?;
    let (pid, random) = rest.split_once('-')?;
    let is_word = !word.is_empty() && word.bytes().all(|byte| byte.is_ascii_lowercase());
    (is_word && !random.is_empty()).then_some(())?;
    Some((word, pid.parse().ok()?))
}

/// The pid of the run that made one of our temp dirs.
pub fn temp_dir_owner(path: &Path) -> Option<u32> {
    temp_dir_parts(path.file_name()?.to_str()?).map(|(_, pid)| pid)
}

/// Whether a directory name is one of our temp dirs, of any run.
fn is_temp_dir_name(name: &str) -> bool {
    temp_dir_parts(name).is_some()
}

/// Our temp dirs, of every run, live or gone.
pub fn temp_dirs() -> Vec<PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_str().is_some_and(is_temp_dir_name))
        .map(|entry| entry.path())
        .collect()
}

/// The directory in the image cache where a run builds an on-demand image: `.ghost-build-<pid>-`
/// and a random end, removed when the build ends (`clean` removes one whose run is gone).
pub fn build_dir_prefix(pid: u32) -> String {
    format!("{BUILD_DIR_PREFIX}{pid}-")
}

/// The pid of the run that made a build directory, from its name.
pub fn build_dir_owner(name: &str) -> Option<u32> {
    name.strip_prefix(BUILD_DIR_PREFIX)?.split('-').next()?.parse().ok()
}

const BUILD_DIR_PREFIX: &str = ".ghost-build-";

/// The network bridge of a run's private daemon: `podlab<pid>` (at most 13 of the 15 bytes an
/// interface name may have, since a pid has at most 7 digits).
pub fn bridge(pid: u32) -> String {
    format!("podlab{pid}")
}

/// The pid in a bridge or cgroup name that `bridge` or `cgroup` made.
pub fn bridge_owner(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("podlab")?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The cgroup (under each hierarchy's root) of a run's containers on this machine: `podlab<pid>`.
pub fn cgroup(pid: u32) -> String {
    format!("podlab{pid}")
}

/// A QEMU of ours: its command line names one of our vm temp dirs.
pub fn is_guest(command_line: &str) -> bool {
    command_line.starts_with("qemu-system")
        && temp_dir_in(command_line)
            .and_then(|dir| {
                dir.file_name().map(|name| name.to_string_lossy().starts_with(&format!("{TEMP_PREFIX}{VM_TEMP_WORD}-")))
            })
            .unwrap_or(false)
}

/// Whether `pid` is a live podlab run: a process whose program is an `xtask` binary (any
/// command: test, pod, bench, soak), so that a reused pid is not mistaken for one.
pub fn is_live_run(pid: u32) -> bool {
    let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let program = command_line.split(|byte| *byte == 0).next().unwrap_or_default();
    let program = String::from_utf8_lossy(program);
    Path::new(program.as_ref()).file_name().is_some_and(|name| name == "xtask")
}

/// Whether any xtask process other than this one and those that started it is running (a run
/// of test, pod, bench or soak): a `soak` or `compare` that runs `test` is not another run.
pub fn another_run_is_alive() -> bool {
    let ours = this_process_and_its_ancestors();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| !ours.contains(&pid) && is_live_run(pid))
}

/// Whether a live run other than this one has a temp dir for one of `words` (the private
/// daemons of the runtimes that use CNI's shared state: `runtime::another_run_uses_cni`). A
/// run removes that dir before it gives back what they share, so a run that is ending no
/// longer counts (however long it takes to exit), nor does a run killed with SIGKILL.
pub fn another_run_has_temp_dir(words: &[&str]) -> bool {
    let ours = std::process::id();
    temp_dirs().iter().any(|dir| {
        let name = dir.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        temp_dir_parts(name).is_some_and(|(word, pid)| words.contains(&word) && pid != ours && is_live_run(pid))
    })
}

/// This process's pid, its parent's, and so on up to init.
fn this_process_and_its_ancestors() -> Vec<u32> {
    let mut pids = vec![std::process::id()];
    while let Some(parent) = parent_of(pids[pids.len() - 1]).filter(|parent| *parent > 1 && !pids.contains(parent)) {
        pids.push(parent);
    }
    pids
}

/// The parent's pid, from /proc/PID/stat (`pid (comm) state ppid ...`; comm may hold spaces
/// and parentheses, so the fields are counted after the last `)`).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// `20261129-201500-12345`: the run's UTC start and its pid: sortable, and unique on a machine.
pub fn run_id() -> String {
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

/// Where a run keeps its artifacts, under the workspace: `target/podlab/<run id>`.
pub fn artifacts_dir(workspace: &Path, run_id: &str) -> PathBuf {
    workspace.join("target/podlab").join(run_id)
}

/// Where runs keep what they may reuse (image tars, the unpacked kernel, the KVM verdict).
pub fn cache_dir(workspace: &Path) -> PathBuf {
    workspace.join("target/podlab/cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_name_their_run() {
        let directory = temp_dir("docker").unwrap();
        assert_eq!(temp_dir_owner(directory.path()), Some(std::process::id()));
        let name = directory.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(is_temp_dir_name(&name), "{name}");
        assert!(!is_temp_dir_name("podlab-cache"));
        assert!(!is_temp_dir_name("podlab-docker-12-"));
        assert!(!is_temp_dir_name("podlab-Docker-12-x"));
    }

    #[test]
    fn finds_our_temp_dirs_in_command_lines() {
        let temp = std::env::temp_dir().to_string_lossy().trim_end_matches('/').to_string();
        let line = format!("qemu-system-x86_64 -initrd {temp}/podlab-vm-42-AbC123/initramfs.cpio -serial file:x");
        assert_eq!(temp_dir_in(&line), Some(PathBuf::from(format!("{temp}/podlab-vm-42-AbC123"))));
        assert!(is_guest(&line));
        let line = format!("dockerd --host=unix://{temp}/podlab-docker-7-Xy9/docker.sock");
        let found = temp_dir_in(&line).unwrap();
        assert_eq!(found, PathBuf::from(format!("{temp}/podlab-docker-7-Xy9")));
        assert_eq!(temp_dir_owner(&found), Some(7));
        assert!(!is_guest(&line));
        assert_eq!(temp_dir_in("dockerd --host=unix:///run/docker.sock"), None);
    }

    #[test]
    fn build_dirs_name_their_run() {
        let name = format!("{}Ab12", build_dir_prefix(4_194_304));
        assert_eq!(build_dir_owner(&name), Some(4_194_304));
        assert_eq!(build_dir_owner("ghost-6.65.0-node-22.23.5-pnpm-12.4.2-r2"), None);
        assert_eq!(build_dir_owner(".ghost-build-"), None);
    }

    #[test]
    fn bridges_name_their_run() {
        assert_eq!(bridge(4_194_304), "podlab4194304");
        assert!(bridge(4_194_304).len() <= 15);
        assert_eq!(bridge_owner("podlab123"), Some(123));
        assert_eq!(bridge_owner("podlab"), None);
        assert_eq!(bridge_owner("podlabx1"), None);
    }

    #[test]
    fn a_process_knows_its_ancestors() {
        let ours = this_process_and_its_ancestors();
        assert_eq!(ours[0], std::process::id());
        assert_eq!(ours.get(1).copied(), parent_of(std::process::id()).filter(|parent| *parent > 1));
        assert_eq!(parent_of(u32::MAX), None);
    }

    #[test]
    fn this_test_is_not_a_live_run_but_a_dead_pid_is_not_either() {
        assert!(!is_live_run(std::process::id()));
        assert!(!is_live_run(u32::MAX));
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
