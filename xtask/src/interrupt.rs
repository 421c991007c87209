//! Ctrl-C, SIGTERM and SIGHUP (a closed terminal): remembered, not obeyed at once, so that every wait can stop early
//! and the cleanup (containers, daemon, bridge, temp dirs) still runs.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn remember(_signal: i32) {
    // An atomic store is async-signal-safe; everything else happens outside the handler.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT, SIGTERM and SIGHUP set a flag instead of killing the harness.
pub fn install() -> Result<()> {
    let action = SigAction::new(SigHandler::Handler(remember), SaFlags::SA_RESTART, SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(signal, &action) }.with_context(|| format!("cannot handle {signal}"))?;
    }
    Ok(())
}

/// Ends the run as Ctrl-C would: used by the run's own deadline.
pub fn trigger() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails with a clear message once the run was interrupted.
pub fn check() -> Result<()> {
    if interrupted() {
        anyhow::bail!("interrupted (Ctrl-C, SIGTERM or SIGHUP): cleaning up");
    }
    Ok(())
}
