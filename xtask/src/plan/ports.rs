//! The host ports a run publishes on. A scenario writes `8080:80`; scenarios may run side
//! by side, so no two of a run publish on the same port. In the guest, whose loopback is its
//! own, the first scenario to write a port publishes on it as written and a later one on a
//! port of its own; on this machine, every written port of every scenario becomes a free port
//! the run claims (`host_ports.rs`), so that runs can share the machine. `http` steps follow
//! the map.

use std::collections::{BTreeMap, BTreeSet};

/// Where a run's ports of its own begin, in a guest and on this machine: below the kernel's
/// ephemeral range (32768 up by default), so no port the kernel picks takes one.
pub const FIRST_OF_OUR_OWN: u16 = 20000;

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

    /// Each written port (a key) published on the port it maps to; the rest as written.
    pub fn chosen(chosen: BTreeMap<u16, u16>) -> Ports {
        Ports { chosen }
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
    fn in_a_guest_the_first_writer_keeps_its_port_and_later_ones_get_their_own() {
        let all = Ports::apart_in_guest(&[vec![8080], vec![8080, 9090, 8080], vec![20000, 8080]]);
        assert_eq!(all[0].published(8080), 8080);
        assert_eq!((all[1].published(8080), all[1].published(9090)), (20001, 9090));
        assert_eq!((all[2].published(20000), all[2].published(8080)), (20000, 20002));
    }
}
