//! The ports of this machine's 127.0.0.1 a run publishes on, claimed for the whole run.
//!
//! A port the kernel picks for `bind(:0)` is an ephemeral one, which it also hands to every
//! outgoing connection of the machine: let go before the runtime binds it, another run's or
//! another program's connection may take it first (CI saw Podman's `pod start` fail with
//! "cannot listen on the TCP port"). So the run's ports come from below the ephemeral range,
//! which nothing takes unless it asks for that port, and each is claimed by an abstract unix
//! socket named after it: another run skips a claimed port, and the kernel lets a claim go
//! when its run dies, however it dies (nothing on disk, nothing for `clean`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};

use anyhow::{Context, Result, bail};

use crate::names;
use crate::plan::{FIRST_OF_OUR_OWN, Ports};

/// Where the ephemeral range begins when the kernel does not say (Linux's default).
const DEFAULT_EPHEMERAL_START: u16 = 32768;

/// The run's claims on its ports: held as long as this lives.
#[derive(Debug, Default)]
pub struct PortClaims {
    _claims: Vec<UnixListener>,
}

/// For each scenario's written ports, a port of this machine's own each, no two the same, no
/// other live run's, none that something listens on now; claimed until the claims drop.
pub fn claim_free_ports(written: &[Vec<u16>]) -> Result<(Vec<Ports>, PortClaims)> {
    let candidates = FIRST_OF_OUR_OWN..ephemeral_start();
    if candidates.is_empty() {
        bail!(
            "the kernel's ephemeral ports begin at {} (net.ipv4.ip_local_port_range), leaving none from {FIRST_OF_OUR_OWN} \
             for the pods' published ports",
            candidates.end
        );
    }
    // Runs starting together start at different places, so they seldom try the same ports.
    let width = u32::from(candidates.end - candidates.start);
    let offset = u16::try_from(std::process::id() * 97 % width).expect("below the range's width");
    let mut order = (candidates.start + offset..candidates.end).chain(candidates.start..candidates.start + offset);
    let mut claims = Vec::new();
    let mut all = Vec::new();
    for scenario in written {
        let mut chosen = BTreeMap::new();
        for &port in scenario {
            if chosen.contains_key(&port) {
                continue;
            }
            let (free, claim) =
                order.by_ref().find_map(|port| Some((port, claim_if_free(port)?))).with_context(|| {
                    format!("no free port from {FIRST_OF_OUR_OWN} to the ephemeral range is left to publish on")
                })?;
            chosen.insert(port, free);
            claims.push(claim);
        }
        all.push(Ports::chosen(chosen));
    }
    Ok((all, PortClaims { _claims: claims }))
}

/// The claim on `port` if no live run holds it and nothing listens on 127.0.0.1 at it now.
fn claim_if_free(port: u16) -> Option<UnixListener> {
    let address = SocketAddr::from_abstract_name(names::port_claim(port)).ok()?;
    let claim = UnixListener::bind_addr(&address).ok()?;
    // Bound and let go at once: only a listener (ours or another program's) fails this.
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok()?;
    Some(claim)
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_written_port_gets_a_claimed_port_of_its_own_below_the_ephemeral_range() {
        let (all, claims) = claim_free_ports(&[vec![8080, 9090, 8080], vec![8080]]).unwrap();
        let ports = [all[0].published(8080), all[0].published(9090), all[1].published(8080)];
        assert!(ports[0] != ports[1] && ports[0] != ports[2] && ports[1] != ports[2], "{ports:?}");
        assert!(ports.iter().all(|&port| (FIRST_OF_OUR_OWN..ephemeral_start()).contains(&port)), "{ports:?}");
        assert_eq!(all[0].published(7070), 7070);
        // Another run's choice (here a second call) skips them while they are claimed...
        let (other, _other_claims) = claim_free_ports(&[vec![8080, 9090]]).unwrap();
        assert!(!ports.contains(&other[0].published(8080)) && !ports.contains(&other[0].published(9090)));
        // ...and nothing listens on them: the runtime binds them.
        for port in ports {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        }
        // Once the claims drop, another run may take them.
        drop(claims);
        assert!(ports.iter().all(|&port| claim_if_free(port).is_some()));
    }

    #[test]
    fn a_port_something_listens_on_is_not_chosen() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(claim_if_free(port).is_none());
        // Nor is the claim left held.
        drop(listener);
        assert!(claim_if_free(port).is_some());
    }
}
