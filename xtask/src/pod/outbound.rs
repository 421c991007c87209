//! What a pod sends beyond itself: every connection it opens by an interface other than
//! loopback, counted by the kernel from the moment its infra container has started.
//!
//! One rule per IP version in the pod's own network namespace (entered from the host with
//! nsenter) matches the first packet of each new connection leaving the pod (conntrack state
//! NEW, any interface but `lo`) and notes its destination (`recent --rdest`). Answers to
//! connections made to the pod (nginx replying to the host's curl) are not new connections, so
//! they are not counted. The rules go with the namespace; no setting of the host changes.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::cancel::Cancel;
use crate::command::argv;
use crate::runtime::{self, Runtime};

/// The `recent` list of destinations, readable at /proc/PID/net/xt_recent/<name>.
const LIST: &str = "podlab_outbound";

/// nsenter and iptables answer in milliseconds here, in a second or so under TCG.
const TIMEOUT: Duration = Duration::from_secs(30);

const TABLES: [&str; 2] = ["iptables", "ip6tables"];

/// Starts counting, in the network namespace of the pod's infra container.
pub fn watch(runtime: &dyn Runtime, infra: &str, cancel: Cancel) -> Result<()> {
    let pid = runtime::main_pid(runtime, infra)?;
    for tables in TABLES {
        let mut rule = in_pod(pid, tables);
        rule.extend(argv(&["-A", "OUTPUT", "!", "-o", "lo", "-m", "conntrack", "--ctstate", "NEW"]));
        rule.extend(argv(&["-m", "recent", "--name", LIST, "--rdest", "--set"]));
        runtime
            .host()
            .run(&rule, TIMEOUT, cancel)?
            .ok()
            .with_context(|| format!("cannot count the pod's outbound connections with {tables}"))?;
    }
    Ok(())
}

/// The connections counted so far, and where they went.
pub struct Outbound {
    pub connections: u64,
    /// The addresses connected to (the `recent` list keeps 100).
    pub destinations: Vec<String>,
}

pub fn read(runtime: &dyn Runtime, infra: &str, cancel: Cancel) -> Result<Outbound> {
    let pid = runtime::main_pid(runtime, infra)?;
    let mut connections = 0;
    for tables in TABLES {
        let mut list = in_pod(pid, tables);
        list.extend(argv(&["-L", "OUTPUT", "-v", "-x", "-n"]));
        let output = runtime.host().run(&list, TIMEOUT, cancel)?.ok()?.stdout_text();
        connections += counted_packets(&output)
            .with_context(|| format!("{tables} in the pod shows no counting rule:\n{output}"))?;
    }
    let noted = format!("/proc/{pid}/net/xt_recent/{LIST}");
    let noted = runtime.host().run(&argv(&["cat", &noted]), TIMEOUT, cancel)?.ok()?.stdout_text();
    Ok(Outbound { connections, destinations: destinations(&noted) })
}

fn in_pod(pid: u32, tables: &str) -> Vec<String> {
    argv(&["nsenter", &format!("--net=/proc/{pid}/ns/net"), tables, "-w", "5"])
}

/// The packet count of the counting rule in `iptables -L OUTPUT -v -x -n`: each is the first
/// packet of one new connection.
fn counted_packets(listing: &str) -> Option<u64> {
    let rule = listing.lines().find(|line| line.contains(&format!("name: {LIST} ")))?;
    rule.split_whitespace().next()?.parse().ok()
}

/// The addresses of a `recent` list: `src=10.0.0.1 ttl: 64 last_seen: ...` per line (with
/// `--rdest`, "src" is the destination).
fn destinations(list: &str) -> Vec<String> {
    let addresses = list.lines().filter_map(|line| line.strip_prefix("src=")?.split_whitespace().next());
    addresses.map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_the_rules_packets() {
        let listing = "\
Chain OUTPUT (policy ACCEPT 12 packets, 1032 bytes)
    pkts      bytes target     prot opt in     out     source               destination
       3      180            all  --  *      !lo     0.0.0.0/0            0.0.0.0/0            ctstate NEW recent: SET name: podlab_outbound side: dest mask: 255.255.255.255
";
        assert_eq!(counted_packets(listing), Some(3));
        assert_eq!(counted_packets("Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)\n"), None);
    }

    #[test]
    fn the_destinations_are_the_addresses_noted() {
        let list = "src=10.213.150.1 ttl: 64 last_seen: 4295162722 oldest_pkt: 1 4295162722\nsrc=fd00::1 ttl: 64 last_seen: 1 oldest_pkt: 1 1\n";
        assert_eq!(destinations(list), ["10.213.150.1", "fd00::1"]);
        assert!(destinations("").is_empty());
    }
}
