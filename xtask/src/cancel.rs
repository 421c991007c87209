//! Cancellation as a value handed down: a `Cancel` says whether the run was asked to stop (Ctrl-C,
//! SIGTERM, SIGHUP, or the run's own deadline) and whether the call it is handed to may be cut
//! short by that; `Cancel::NEVER` is for cleanup, which only its deadline ends.
//!
//! A signal handler cannot hold a value, so the signals set one process-wide flag; code reads it
//! only through a token it was given (`Cancel::on_signals` makes the run's), never directly.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// Set by SIGINT, SIGTERM and SIGHUP once `Cancel::on_signals` installed their handlers, and by
/// the run's deadline (`Cancel::stop`).
static STOP_ASKED: AtomicBool = AtomicBool::new(false);

/// Never set: what `Cancel::NEVER` reads.
static NEVER_SET: AtomicBool = AtomicBool::new(false);

/// Whether a call may be cut short, and whether the run was asked to stop.
#[derive(Clone, Copy, Debug)]
pub struct Cancel {
    /// The run's flag: set once the run was asked to stop.
    stop_asked: &'static AtomicBool,
}

impl Cancel {
    /// Only the deadline ends the call: cleanup that must happen even after Ctrl-C (removing
    /// containers, stopping the daemon, deleting the bridge), and commands that leave Ctrl-C to
    /// kill the harness outright.
    pub const NEVER: Cancel = Cancel { stop_asked: &NEVER_SET };

    /// The run's token: from now on SIGINT, SIGTERM and SIGHUP ask the run to stop (every call
    /// handed this token then ends early and the cleanup still runs) instead of killing the harness.
    pub fn on_signals() -> Result<Cancel> {
        // SA_RESTART and an empty mask, as before: the handler is replaced by the default in every
        // child at exec, and the children's signal mask is the harness's, untouched here.
        let action = SigAction::new(SigHandler::Handler(remember), SaFlags::SA_RESTART, SigSet::empty());
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: the handler only stores to an atomic.
            unsafe { sigaction(signal, &action) }.with_context(|| format!("cannot handle {signal}"))?;
        }
        Ok(Cancel { stop_asked: &STOP_ASKED })
    }

    /// A token of its own, set by nothing but `stop`: for unit tests.
    #[cfg(test)]
    pub fn of_its_own() -> Cancel {
        Cancel { stop_asked: Box::leak(Box::new(AtomicBool::new(false))) }
    }

    /// Whether the run was asked to stop (and so whether a call handed this token ends now).
    pub fn stop_asked(self) -> bool {
        self.stop_asked.load(Ordering::SeqCst)
    }

    /// Whether the call may be cut short at all: false for `Cancel::NEVER`. A wait that is not
    /// cut short need not wake up to look.
    pub fn may_cut_short(self) -> bool {
        !std::ptr::eq(self.stop_asked, &NEVER_SET)
    }

    /// Fails with a clear message once the run was asked to stop.
    pub fn check(self) -> Result<()> {
        if self.stop_asked() {
            anyhow::bail!("interrupted (Ctrl-C, SIGTERM or SIGHUP): cleaning up");
        }
        Ok(())
    }

    /// Asks the run to stop, as Ctrl-C would: used by the run's own deadline. (`Cancel::NEVER`
    /// stays unstopped.)
    pub fn stop(self) {
        if self.may_cut_short() {
            self.stop_asked.store(true, Ordering::SeqCst);
        }
    }
}

extern "C" fn remember(_signal: i32) {
    // An atomic store is async-signal-safe; everything else happens outside the handler.
    STOP_ASKED.store(true, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_ends_calls_once_stopped_and_never_does_not() {
        let cancel = Cancel::of_its_own();
        assert!(cancel.may_cut_short() && cancel.check().is_ok());
        cancel.stop();
        assert_eq!(cancel.check().unwrap_err().to_string(), "interrupted (Ctrl-C, SIGTERM or SIGHUP): cleaning up");
        Cancel::NEVER.stop();
        assert!(!Cancel::NEVER.may_cut_short() && !Cancel::NEVER.stop_asked() && Cancel::NEVER.check().is_ok());
    }

    /// What the module promises: the signals that ask a run to stop are caught here alone, so
    /// that whether to stop is read only through a token. Tests may handle their own.
    #[test]
    fn only_this_module_catches_signals() {
        let offenders: Vec<String> = crate::layers::production_sources()
            .into_iter()
            .filter(|(path, production)| {
                path != std::path::Path::new("cancel.rs")
                    && (production.contains("sigaction(") || production.contains("SigHandler::"))
            })
            .map(|(path, _)| path.display().to_string())
            .collect();
        assert!(offenders.is_empty(), "these catch signals outside crate::cancel: {offenders:?}");
    }
}
