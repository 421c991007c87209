//! The host ports a run publishes on. A scenario writes `8080:80`; scenarios may run side
//! by side, so no two of a run publish on the same port. In the guest, whose loopback is its
//! own, the first scenario to write a port publishes on it as written and a later one on a
//! port of its own; on this machine, every written port of every scenario becomes a free port
//! of the run's own, so that runs can share the machine. `http` steps follow the map.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, TcpListener};

use anyhow::{Context, Result};

/// Where a guest's ports of our own begin: below the kernel's ephemeral range (32768 up), so
/// no daemon's port picked by the kernel takes one.
const FIRST_OF_OUR_OWN: u16 = 20000;

#[derive(Clone, Debug, Default)]
pub struct Ports {
    /// Written port to the port published; a written port not here is published as written.
    chosen: BTreeMap<u16, u16>,
}

impl Ports {
    /// Every port published as written.
    #[cfg(test)]
    pub fn as_written() -> Ports {
        Ports::default()
    }

    /// For each scenario's written ports, a free port of this machine's 127.0.0.1 each. The
    /// kernel picks them; all are held open until every one is chosen, so no two are the same,
    /// then let go for the runtime to bind.
    pub fn free_on_this_machine(written: &[Vec<u16>]) -> Result<Vec<Ports>> {
        let mut held = Vec::new();
        let mut all = Vec::new();
        for scenario in written {
            let mut chosen = BTreeMap::new();
            for &port in scenario {
                if chosen.contains_key(&port) {
                    continue;
                }
                let listener =
                    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free port on 127.0.0.1")?;
                chosen.insert(port, listener.local_addr()?.port());
                held.push(listener);
            }
            all.push(Ports { chosen });
        }
        Ok(all)
    }

    /// For each scenario's written ports, in a guest: as written where no earlier scenario
    /// wrote the port, else the next port from `FIRST_OF_OUR_OWN` up that no scenario writes.
    pub fn apart_in_guest(written: &[Vec<u16>]) -> Vec<Ports> {
        let every_written: BTreeSet<u16> = written.iter().flatten().copied().collect();
        let mut taken = BTreeSet::new();
        let mut ours = (FIRST_OF_OUR_OWN..=u16::MAX).filter(|port| !every_written.contains(port));
        written
            .iter()
            .map(|scenario| {
                let its_own: BTreeSet<u16> = scenario.iter().copied().collect();
                let later = its_own.into_iter().filter(|&port| !taken.insert(port));
                let chosen = later.map(|port| (port, ours.next().expect("fewer than 45,000 ports are written")));
                Ports { chosen: chosen.collect() }
            })
            .collect()
    }

    /// The port published for a port the scenario wrote.
    pub fn published(&self, written: u16) -> u16 {
        self.chosen.get(&written).copied().unwrap_or(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_written_port_gets_a_free_one_of_its_own() {
        let all = Ports::free_on_this_machine(&[vec![8080, 9090, 8080], vec![8080]]).unwrap();
        let (first, second, other) = (all[0].published(8080), all[0].published(9090), all[1].published(8080));
        assert!(first != second && first != other && second != other);
        // Let go: no socket of this process listens on them. (Binding one again would race every
        // other process of the machine for it: CI once saw a freed port taken at once.)
        let listening = ports_this_process_listens_on();
        assert!(![first, second, other].iter().any(|port| listening.contains(port)), "still held: {listening:?}");
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        assert!(ports_this_process_listens_on().contains(&held.local_addr().unwrap().port()));
        assert_eq!(all[0].published(7070), 7070);
        assert_eq!(Ports::as_written().published(8080), 8080);
    }

    /// The TCP ports (IPv4) that a listening socket of this process is bound to: the sockets of
    /// /proc/net/tcp in state LISTEN whose inode one of this process's descriptors names.
    fn ports_this_process_listens_on() -> Vec<u16> {
        let ours: Vec<String> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|entry| std::fs::read_link(entry.path()).ok())
            .map(|target| target.to_string_lossy().into_owned())
            .collect();
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
                let port = u16::from_str_radix(local.split(':').nth(1)?, 16).ok()?;
                (*state == "0A" && ours.contains(&format!("socket:[{inode}]"))).then_some(port)
            })
            .collect()
    }

    #[test]
    fn in_a_guest_the_first_writer_keeps_its_port_and_later_ones_get_their_own() {
        let all = Ports::apart_in_guest(&[vec![8080], vec![8080, 9090, 8080], vec![20000, 8080]]);
        assert_eq!(all[0].published(8080), 8080);
        assert_eq!((all[1].published(8080), all[1].published(9090)), (20001, 9090));
        assert_eq!((all[2].published(20000), all[2].published(8080)), (20000, 20002));
    }
}
