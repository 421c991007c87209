//! The host ports a run publishes on. A scenario writes `8080:80`: in the guest, whose
//! loopback is its own, port 8080 it is; on this machine, each written port becomes a free
//! port of the run's own, so that runs can share the machine. `http` steps follow the map.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};

use anyhow::{Context, Result};

#[derive(Clone, Debug, Default)]
pub struct Ports {
    /// Written port to the port published; a written port not here is published as written.
    chosen: BTreeMap<u16, u16>,
}

impl Ports {
    /// Every port published as written.
    pub fn as_written() -> Ports {
        Ports::default()
    }

    /// A free port of this machine's 127.0.0.1 for each written port. The kernel picks them;
    /// all are held open until every one is chosen, so no two are the same, then let go for
    /// the runtime to bind.
    pub fn free_on_this_machine(written: impl IntoIterator<Item = u16>) -> Result<Ports> {
        let mut held = Vec::new();
        let mut chosen = BTreeMap::new();
        for port in written {
            if chosen.contains_key(&port) {
                continue;
            }
            let listener =
                TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free port on 127.0.0.1")?;
            chosen.insert(port, listener.local_addr()?.port());
            held.push(listener);
        }
        Ok(Ports { chosen })
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
        let ports = Ports::free_on_this_machine([8080, 9090, 8080]).unwrap();
        let (first, second) = (ports.published(8080), ports.published(9090));
        assert_ne!(first, second);
        assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, first)).is_ok(), "port {first} is not free");
        assert_eq!(ports.published(7070), 7070);
        assert_eq!(Ports::as_written().published(8080), 8080);
    }
}
