//! What a runtime's private daemon takes on this machine, and how it is given back: its own
//! bridge and subnet, its cgroup, its mounts and stray processes, and what CNI's users share.
//! Used by the runtimes' private daemons (`runtime/*/`) and by `clean`; it knows no runtime:
//! which runs use CNI's shared state is said by their temp dirs' words, which callers pass.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};

use crate::cancel::Cancel;
use crate::command::{self, Daemon, Output, argv};
use crate::names;

/// The daemon's own bridge, `podlab<pid>`, with a /24 of 10.213.0.0/16 that no other
/// interface of this machine has (runs side by side each get their own).
pub struct Bridge {
    pub name: String,
    /// Its /24, as `10.213.N`: the bridge holds .1.
    pub prefix: String,
    deleted: bool,
}

impl Bridge {
    /// `cancel` is the run's: a Ctrl-C ends the wait for the network lock and the `ip` commands.
    pub fn create(cancel: Cancel) -> Result<Self> {
        let pid = std::process::id();
        let name = names::bridge(pid);
        if Path::new("/sys/class/net").join(&name).exists() {
            bail!("the network bridge {name} already exists: a killed run left it; remove it with `cargo xtask clean`");
        }
        let ip = |words: &[&str]| command::run(&argv(words), Duration::from_secs(10), cancel).and_then(Output::ok);
        // Choosing a subnet and taking it is one step for runs starting together.
        let _choosing = NetworkLock::take(cancel)?;
        let listing = ip(&["ip", "-4", "-oneline", "address", "show"])?.stdout_text();
        let third = free_third_octet(&listing, pid).context("every 10.213.N.0/24 is taken: remove what holds them")?;
        ip(&["ip", "link", "add", &name, "type", "bridge"]).context(
            "cannot create a network bridge: a private daemon on this machine needs root (for docker, or DOCKER_HOST)",
        )?;
        let bridge = Bridge { name, prefix: format!("10.213.{third}"), deleted: false };
        ip(&["ip", "address", "add", &format!("10.213.{third}.1/24"), "dev", &bridge.name])?;
        ip(&["ip", "link", "set", &bridge.name, "up"])?;
        Ok(bridge)
    }

    pub fn delete(&mut self) -> Option<String> {
        if std::mem::replace(&mut self.deleted, true) {
            return None;
        }
        let delete = argv(&["ip", "link", "delete", &self.name]);
        match command::run(&delete, Duration::from_secs(10), Cancel::NEVER).and_then(Output::ok) {
            Ok(_) => None,
            Err(error) => Some(format!("cannot delete bridge {}: {error:#}", self.name)),
        }
    }

    /// Takes away what is still attached to the bridge once every pod is gone: a pod's veth
    /// and the network namespace pinned in /run/netns at its other end. Podman killed half way
    /// through a pod's start (a run's deadline; CI saw it after a Ctrl-C) leaves both, and no
    /// state that knows of them: `podman pod rm` does not. Returns what it did and what failed.
    pub fn detach_leftovers(&self) -> (Vec<String>, Vec<String>) {
        let (mut done, mut problems) = (Vec::new(), Vec::new());
        let list = argv(&["ip", "-oneline", "link", "show", "master", &self.name]);
        let listing = match command::run(&list, Duration::from_secs(10), Cancel::NEVER).and_then(Output::ok) {
            Ok(output) => output.stdout_text(),
            Err(error) => return (done, vec![format!("cannot list what is on bridge {}: {error:#}", self.name)]),
        };
        for (interface, namespace) in attached_interfaces(&listing) {
            let delete = argv(&["ip", "link", "delete", &interface]);
            match command::run(&delete, Duration::from_secs(10), Cancel::NEVER).and_then(Output::ok) {
                Ok(_) => done.push(format!("interface {interface}")),
                Err(error) => problems.push(format!("cannot delete interface {interface}: {error:#}")),
            }
            let Some(namespace) = namespace else { continue };
            let pinned = Path::new(NETNS_DIR).join(&namespace);
            if !pinned.exists() {
                continue;
            }
            problems.extend(unmount_everything_under(&pinned));
            match std::fs::remove_file(&pinned) {
                Ok(()) => done.push(format!("network namespace {}", pinned.display())),
                Err(error) => problems.push(format!("cannot remove {}: {error}", pinned.display())),
            }
            done.extend(forget_cni_results_in(&pinned));
        }
        (done, problems)
    }
}

/// Removes CNI's cached results of the attachments into the network namespace pinned at
/// `pinned` (each names it as its `sandbox`), once that is gone; returns what it removed.
fn forget_cni_results_in(pinned: &Path) -> Vec<String> {
    let sandbox = format!("\"sandbox\":\"{}\"", pinned.display());
    let Ok(entries) = std::fs::read_dir(Path::new(CNI_CACHE).join("results")) else { return Vec::new() };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| std::fs::read_to_string(path).is_ok_and(|text| text.contains(&sandbox)))
        .filter(|path| std::fs::remove_file(path).is_ok())
        .map(|path| format!("CNI's cached result {}", path.display()))
        .collect()
}

/// Each interface in `ip -oneline link show master BRIDGE`, with the name of the network
/// namespace its peer is in, when that has one (`link-netns NAME`).
fn attached_interfaces(listing: &str) -> Vec<(String, Option<String>)> {
    listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let interface = words.nth(1)?.trim_end_matches(':');
            let interface = interface.split('@').next()?.to_string();
            let namespace = words.skip_while(|word| *word != "link-netns").nth(1).map(str::to_string);
            Some((interface, namespace))
        })
        .collect()
}

/// Its owner deletes it when it is done (and reports a failure); dropped, it goes anyway.
impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(problem) = self.delete() {
            eprintln!("warning: {problem}");
        }
    }
}

/// N of a 10.213.N.0/24 that no address in `ip -4 -oneline address show` is in, starting
/// from one the pid gives, so that runs rarely even look at the same one.
fn free_third_octet(listing: &str, pid: u32) -> Option<u32> {
    let taken: Vec<u32> = listing
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("10.213."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect();
    (0..250).map(|offset| (pid + offset) % 250).find(|third| !taken.contains(third))
}

/// Held while a run chooses and takes its subnet: an abstract unix socket of a fixed name,
/// which only one process can bind, which leaves nothing on disk, and which the kernel
/// releases when its holder dies.
pub struct NetworkLock {
    _socket: std::os::unix::net::UnixListener,
}

impl NetworkLock {
    /// Waits up to 30 s for it; `cancel` may end the wait sooner (not for cleanup: `Cancel::NEVER`).
    pub fn take(cancel: Cancel) -> Result<NetworkLock> {
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(names::NETWORK_LOCK)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match std::os::unix::net::UnixListener::bind_addr(&address) {
                Ok(socket) => return Ok(NetworkLock { _socket: socket }),
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                    cancel.check()?;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => return Err(error).context("another run held the network lock for 30 s"),
            }
        }
    }
}

/// Stops a private daemon: SIGTERM, then SIGKILL to its process group after `timeout`; says
/// so if it came to that.
pub fn stop_daemon(daemon: &mut Daemon, name: &str, timeout: Duration) -> Option<String> {
    let _ = kill(daemon.pid(), Signal::SIGTERM);
    if daemon.exits_within(timeout).unwrap_or(false) {
        return None;
    }
    daemon.kill_group();
    Some(format!("{name} did not stop within {timeout:?}: killed it"))
}

/// Gives back what a stopped private daemon's run left: the processes of the run's cgroup
/// (gone already, unless the daemon died under them) and the cgroup, then whatever still names
/// the daemon's directory (shims, which outlive their daemon by design), the mounts under it,
/// and the directory. Returns what could not be done.
pub fn remove_daemon_leftovers(dir: tempfile::TempDir) -> Vec<String> {
    let path = dir.path().to_path_buf();
    let mut problems = remove_cgroups(&names::cgroup(std::process::id()));
    kill_processes_mentioning(&path);
    problems.extend(unmount_everything_under(&path));
    if let Err(error) = dir.close() {
        problems.push(format!("cannot remove {}: {error}", path.display()));
    }
    problems
}

/// Where a cgroup named at the top of a hierarchy can be: /sys/fs/cgroup itself (cgroup v2)
/// and each hierarchy mounted under it (v1, and v2's `unified` beside them).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mounted = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten().map(|entry| entry.path());
    std::iter::once(PathBuf::from("/sys/fs/cgroup")).chain(mounted).collect()
}

/// Kills every process in the cgroup `name` (directly under the root of each cgroup
/// hierarchy mounted under /sys/fs/cgroup) and its children, saying so, then removes those
/// cgroups, deepest first; returns what could not be done.
pub fn remove_cgroups(name: &str) -> Vec<String> {
    let groups = cgroups_deepest_first(name);
    // Every hierarchy lists the same processes: each is killed once.
    let pids: std::collections::BTreeSet<i32> = groups
        .iter()
        .flat_map(|group| {
            std::fs::read_to_string(group.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    let killed = pids.iter().filter(|pid| kill(nix::unistd::Pid::from_raw(**pid), Signal::SIGKILL).is_ok()).count();
    if killed > 0 {
        eprintln!("note: {killed} container processes outlived their daemon (cgroup {name}): killed them");
    }
    let mut problems = Vec::new();
    // A cgroup whose last process is still dying cannot go yet: try for a while.
    let deadline = Instant::now() + Duration::from_secs(10);
    for group in groups {
        loop {
            match std::fs::remove_dir(&group) {
                Ok(()) => break,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(error) => {
                    problems.push(format!("cannot remove cgroup {}: {error}", group.display()));
                    break;
                }
            }
        }
    }
    problems
}

/// Removes the cgroup `name` (under each hierarchy's root) and those under it that no process
/// is in, deepest first; one that still holds a process stays, with its parents.
pub fn remove_empty_cgroups(name: &str) {
    for group in cgroups_deepest_first(name) {
        let _ = std::fs::remove_dir(group);
    }
}

/// The cgroup `name` under the root of each hierarchy, and every cgroup under those, deepest
/// first (the order in which they can be removed).
fn cgroups_deepest_first(name: &str) -> Vec<PathBuf> {
    let mut groups: Vec<PathBuf> = Vec::new();
    let mut unseen: Vec<PathBuf> =
        cgroup_roots().into_iter().map(|root| root.join(name)).filter(|top| top.is_dir()).collect();
    while let Some(group) = unseen.pop() {
        let children = std::fs::read_dir(&group).into_iter().flatten().flatten().map(|entry| entry.path());
        unseen.extend(children.filter(|path| path.is_dir()));
        groups.push(group);
    }
    groups.sort_by_key(|group| std::cmp::Reverse(group.components().count()));
    groups
}

/// Kills every process whose command line mentions `path` (containerd and its shims, which
/// outlive a daemon that died), saying so.
fn kill_processes_mentioning(path: &Path) {
    let needle = path.to_string_lossy().into_owned();
    for (pid, command_line) in pid1::proc::command_lines() {
        if command_line.contains(&needle) {
            eprintln!("note: process {pid} outlived its daemon: killed it ({command_line:.80})");
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

/// Unmounts (lazily) every mount point under `path`, deepest first; returns what failed.
pub fn unmount_everything_under(path: &Path) -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mount_points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .map(PathBuf::from)
        .filter(|mount_point| mount_point.starts_with(path))
        .collect();
    mount_points.sort_by_key(|mount_point| std::cmp::Reverse(mount_point.components().count()));
    mount_points
        .into_iter()
        .filter_map(|mount_point| {
            nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH)
                .err()
                .map(|error| format!("cannot unmount {}: {error}", mount_point.display()))
        })
        .collect()
}

/// Where libcni caches each attachment's result: neither containerd 1.6 nor Podman 4.3 can
/// point it elsewhere.
pub const CNI_CACHE: &str = "/var/lib/cni";

/// Where Podman (as root) keeps its pods' network namespaces: it makes the directory and mounts
/// it on itself, as `ip netns` does, and leaves both; it has no setting to move them.
pub const NETNS_DIR: &str = "/run/netns";

/// The directories that CNI's users share on this machine, which the runtimes make when they
/// are missing and never remove.
const SHARED_DIRS: [&str; 2] = [CNI_CACHE, NETNS_DIR];

/// The extended attribute on a shared directory that a run made because it was missing: the
/// mark outlives the run that made it, so whichever run ends last (or `clean`) removes it, and
/// a directory that was there before podlab stays.
const MADE_BY_PODLAB: &str = "user.podlab.made";

/// What a run's pods share with every CNI user of this machine, noted before its first pod and
/// given back after its last: portmap's nat chains and the shared directories. Each goes when
/// a run made it and no other run still uses it: no other live run has a temp dir of one of
/// `cni_words` (`runtime::cni_temp_words`, the words of the runtimes that use CNI).
pub struct SharedCniState {
    /// Not in the nat table before this run, or made by a run alive beside it.
    portmap_chains_are_ours: bool,
    cni_words: &'static [&'static str],
}

impl SharedCniState {
    /// Before the run's first pod, once its private runtime's temp dir exists (that dir is how
    /// other runs see that it uses what they share): makes and marks the shared directories
    /// that are missing.
    pub fn note(cancel: Cancel, cni_words: &'static [&'static str]) -> Result<SharedCniState> {
        let _choosing = NetworkLock::take(cancel)?;
        for dir in SHARED_DIRS {
            make_and_mark_if_missing(Path::new(dir))?;
        }
        let portmap_chains_are_ours = !portmap_chains_exist() || names::another_run_has_temp_dir(cni_words);
        Ok(SharedCniState { portmap_chains_are_ours, cni_words })
    }

    /// Once the run's pods are gone and its private runtime's temp dir is removed; returns what
    /// could not be done.
    pub fn give_back(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.portmap_chains_are_ours {
            problems.extend(remove_portmap_chains());
        }
        problems.extend(remove_shared_dirs(self.cni_words).1);
        problems
    }
}

/// Removes the shared directories a run made, once no run uses them and they are empty (a
/// cache result or a network namespace still in one is another CNI user's): for the last run
/// to end, and for `clean`. Returns those it removed, and what could not be done.
pub fn remove_shared_dirs(cni_words: &[&str]) -> (Vec<&'static str>, Vec<String>) {
    // Under the network lock: a run that starts now notes them after this, or sees them whole.
    let Ok(_choosing) = NetworkLock::take(Cancel::NEVER) else {
        return (Vec::new(), vec!["cannot take the network lock".to_string()]);
    };
    if names::another_run_has_temp_dir(cni_words) {
        return (Vec::new(), Vec::new());
    }
    remove_if_marked_and_empty(&SHARED_DIRS)
}

fn make_and_mark_if_missing(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    rustix::fs::setxattr(dir, MADE_BY_PODLAB, b"1", rustix::fs::XattrFlags::CREATE)
        .with_context(|| format!("cannot mark {} as made by podlab", dir.display()))
}

fn remove_if_marked_and_empty<'a>(dirs: &[&'a str]) -> (Vec<&'a str>, Vec<String>) {
    let (mut removed, mut problems) = (Vec::new(), Vec::new());
    for &name in dirs {
        let dir = Path::new(name);
        if rustix::fs::getxattr_query(dir, MADE_BY_PODLAB).is_err() {
            continue;
        }
        // libcni keeps its results one level down.
        let _ = std::fs::remove_dir(dir.join("results"));
        let empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
        if !empty {
            continue;
        }
        problems.extend(unmount_everything_under(dir));
        match std::fs::remove_dir(dir) {
            Ok(()) => removed.push(name),
            Err(error) => problems.push(format!("cannot remove {name}: {error}")),
        }
    }
    (removed, problems)
}

/// The nat chains that CNI's portmap plugin makes once and never removes (its per-pod chains go
/// with each pod); `remove_portmap_chains` takes them away when a run made them.
const PORTMAP_CHAINS: [&str; 3] = ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"];

fn iptables_nat(arguments: &[&str]) -> Result<Output> {
    let mut words = vec!["iptables", "-w", "5", "-t", "nat"];
    words.extend(arguments);
    command::run(&argv(&words), Duration::from_secs(20), Cancel::NEVER)
}

/// Whether portmap's chains are in this machine's nat table (another CNI user's, or a run's).
pub fn portmap_chains_exist() -> bool {
    iptables_nat(&["-S", PORTMAP_CHAINS[0]]).is_ok_and(|output| output.success())
}

/// Removes the port mappings of podlab's CNI network (`podlab`) that a killed run left (its
/// containerd never ran CNI's DEL): each rule of portmap's DNAT chain that names the network,
/// and the per-pod chain it jumps to. For `cargo xtask clean`, when no run is alive.
pub fn remove_podlab_port_mappings() -> Vec<String> {
    let Ok(dnat) = iptables_nat(&["-S", PORTMAP_CHAINS[0]]) else { return Vec::new() };
    let mut problems = Vec::new();
    for rule in
        dnat.stdout_text().lines().filter(|rule| rule.starts_with("-A ") && rule.contains("name: \\\"podlab\\\""))
    {
        let delete = format!("iptables -w 5 -t nat -D{}", &rule[2..]);
        if let Err(error) =
            command::run(&argv(&["sh", "-c", &delete]), Duration::from_secs(20), Cancel::NEVER).and_then(Output::ok)
        {
            problems.push(format!("cannot delete the nat rule `{rule}`: {error:#}"));
            continue;
        }
        if let Some(chain) = rule.split_whitespace().skip_while(|word| *word != "-j").nth(1) {
            for action in ["-F", "-X"] {
                let _ = iptables_nat(&[action, chain]);
            }
        }
    }
    problems
}

/// Removes portmap's chains and the jumps to them, unless a pod still has a mapping in them
/// (another run, or another CNI user, still needs them: then they stay); returns what failed.
pub fn remove_portmap_chains() -> Vec<String> {
    // Under the network lock: a run starting beside us must not see them half removed.
    let Ok(_choosing) = NetworkLock::take(Cancel::NEVER) else {
        return vec!["cannot take the network lock".to_string()];
    };
    let Ok(dnat) = iptables_nat(&["-S", PORTMAP_CHAINS[0]]) else { return Vec::new() };
    if !dnat.success() {
        return Vec::new();
    }
    // A pod of another run (or of another CNI user) still maps a port: its run removes them.
    if dnat.stdout_text().lines().any(|line| line.starts_with("-A ")) {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for builtin in ["PREROUTING", "OUTPUT", "POSTROUTING"] {
        let rules = iptables_nat(&["-S", builtin]).map(|output| output.stdout_text()).unwrap_or_default();
        for rule in
            rules.lines().filter(|rule| PORTMAP_CHAINS.iter().any(|chain| rule.ends_with(&format!("-j {chain}"))))
        {
            // `-A CHAIN spec...` becomes `-D CHAIN spec...`; the comment's quotes go through a shell.
            let delete = format!("iptables -w 5 -t nat -D{}", &rule[2..]);
            if let Err(error) =
                command::run(&argv(&["sh", "-c", &delete]), Duration::from_secs(20), Cancel::NEVER).and_then(Output::ok)
            {
                problems.push(format!("cannot delete the nat rule `{rule}`: {error:#}"));
            }
        }
    }
    // All emptied before any is deleted: one may jump to another.
    let present: Vec<&str> = PORTMAP_CHAINS
        .into_iter()
        .filter(|chain| iptables_nat(&["-S", chain]).is_ok_and(|output| output.success()))
        .collect();
    for action in ["-F", "-X"] {
        for chain in &present {
            if let Err(error) = iptables_nat(&[action, chain]).and_then(Output::ok) {
                problems.push(format!("cannot remove the nat chain {chain}: {error:#}"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_dir_goes_only_if_a_run_made_it_and_it_is_empty() {
        let root = tempfile::tempdir().unwrap();
        let path = |name: &str| root.path().join(name).display().to_string();
        let (made, made_then_used, there_before) = (path("made"), path("made-then-used"), path("there-before"));
        std::fs::create_dir(&there_before).unwrap();
        for dir in [&made, &made_then_used, &there_before] {
            make_and_mark_if_missing(Path::new(dir)).unwrap();
        }
        // What libcni leaves once its last attachment is gone, and what another CNI user keeps.
        std::fs::create_dir(Path::new(&made).join("results")).unwrap();
        std::fs::write(Path::new(&made_then_used).join("netns-1"), "").unwrap();
        let (removed, problems) = remove_if_marked_and_empty(&[&made, &made_then_used, &there_before]);
        assert_eq!((removed, problems), (vec![made.as_str()], Vec::<String>::new()));
        assert!(Path::new(&made_then_used).is_dir() && Path::new(&there_before).is_dir());
    }

    #[test]
    fn what_is_attached_to_a_bridge_and_where_its_peer_is() {
        // As `ip -oneline link show master podlab3142` printed it for a pod whose start was killed.
        let listing = "10558: veth2a85c241@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master \
                       podlab3142 state UP mode DEFAULT group default \\    link/ether 92:ca:14:db:61:f0 brd \
                       ff:ff:ff:ff:ff:ff link-netns netns-e088fc67-3976-1b45-8abc-72a702ea5b71\n\
                       10559: veth0a1b2c3d@if3: <BROADCAST> mtu 1500 master podlab3142 link-netnsid 4\n";
        assert_eq!(
            attached_interfaces(listing),
            [
                ("veth2a85c241".to_string(), Some("netns-e088fc67-3976-1b45-8abc-72a702ea5b71".to_string())),
                ("veth0a1b2c3d".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_subnet_no_interface_has() {
        let listing = "1: lo    inet 127.0.0.1/8 scope host lo\n\
                       5: podlab7    inet 10.213.7.1/24 scope global podlab7\n\
                       6: podlab8    inet 10.213.8.1/24 scope global podlab8\n";
        assert_eq!(free_third_octet(listing, 7), Some(9));
        assert_eq!(free_third_octet(listing, 257), Some(9));
        assert_eq!(free_third_octet(listing, 10), Some(10));
    }

    #[test]
    fn the_network_lock_is_held_by_one_at_a_time() {
        let first = NetworkLock::take(Cancel::NEVER).unwrap();
        let second = std::thread::spawn(|| NetworkLock::take(Cancel::NEVER));
        std::thread::sleep(Duration::from_millis(100));
        assert!(!second.is_finished(), "two held the network lock at once");
        drop(first);
        assert!(second.join().unwrap().is_ok());
    }
}
