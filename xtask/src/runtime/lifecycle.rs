//! The lifecycle of the daemon a runtime owns, written once for every runtime: where it is (in
//! the guest, shared with the user, or private on this machine), the wait until it is ready
//! (with a deadline, and the progress line that says so), its trouble (has it died? said beside
//! a failure, with the end of its log), and the ordered shutdown that runs once, from
//! `shut_down` or from drop: the run's containers removed, its logs saved into the run's
//! directory, the private daemon stopped and what it took given back, then the host shut down.
//! What differs by runtime (its commands, its files) is the runtime's, given here as data or
//! through `OwnsDaemon`; this file names no runtime.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{RunIdentity, Runtime};
use crate::cancel::Cancel;
use crate::command::{argv, last_lines};
use crate::host::{Host, Placement};

/// Deadline of the look at a daemon in the guest, and of the copy of its log.
const QUICK: Duration = Duration::from_secs(30);
/// How many lines of a dead daemon's log its trouble shows.
const TROUBLE_LOG_LINES: usize = 10;

/// Where the daemon a runtime talks to is.
pub enum Place<P: Private> {
    /// Started by the guest's init at boot; it dies with the guest, its logs are copied out.
    InGuest,
    /// The user's, reached at `address`: it keeps running, only the run's containers go.
    Shared { address: String },
    /// The run's own, on this machine.
    Private(Owned<P>),
}

/// A daemon (or a state) of the run's own on this machine: what it took there (a bridge,
/// cgroups, mounts, a temp dir, CNI's shared state) goes back when it is stopped.
pub trait Private {
    /// Why it cannot answer, if it died: the end of its log.
    fn trouble(&self) -> Option<String>;

    /// Stops it and gives back what it took, in its order; returns what could not be.
    fn give_back(self) -> Vec<String>;
}

/// Owns a private daemon from its start: gives it back once, when stopped or, should the run
/// never get that far (a start that failed half way, a panic), when dropped.
pub struct Owned<P: Private>(Option<P>);

impl<P: Private> Owned<P> {
    pub fn new(private: P) -> Owned<P> {
        Owned(Some(private))
    }

    /// Stops it and gives back what it took, the first time only; returns what could not be.
    pub fn stop(&mut self) -> Vec<String> {
        self.0.take().map_or_else(Vec::new, P::give_back)
    }
}

impl<P: Private> std::ops::Deref for Owned<P> {
    type Target = P;

    fn deref(&self) -> &P {
        self.0.as_ref().expect("a private daemon used after it was stopped")
    }
}

impl<P: Private> std::ops::DerefMut for Owned<P> {
    fn deref_mut(&mut self) -> &mut P {
        self.0.as_mut().expect("a private daemon used after it was stopped")
    }
}

impl<P: Private> Drop for Owned<P> {
    fn drop(&mut self) {
        for problem in self.stop() {
            eprintln!("warning: {problem}");
        }
    }
}

/// What one look at a starting daemon found.
pub enum Look<T> {
    Ready(T),
    /// Not yet, and why (the last one is said if the deadline passes).
    NotYet(String),
}

/// Looks at a starting daemon every `every` until `look` finds it ready, fails (a daemon that
/// exited says so at once), the run is cancelled, or `timeout` has passed: then `timed_out`,
/// given the last reason, says why.
pub fn wait_until_ready<T>(
    timeout: Duration,
    every: Duration,
    cancel: Cancel,
    mut look: impl FnMut() -> Result<Look<T>>,
    timed_out: impl FnOnce(String) -> anyhow::Error,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let why = match look()? {
            Look::Ready(ready) => return Ok(ready),
            Look::NotYet(why) => why,
        };
        cancel.check()?;
        if Instant::now() > deadline {
            return Err(timed_out(why));
        }
        std::thread::sleep(every);
    }
}

/// `what ready`, and in the guest when it was: `<what> ready at 4.2 s of guest uptime`.
pub fn ready_line(host: &dyn Host, what: &str) -> String {
    let uptime = match host.placement() {
        Placement::Vm => {
            host.uptime().map_or(String::new(), |uptime| format!(" at {:.1} s of guest uptime", uptime.as_secs_f64()))
        }
        Placement::Host => String::new(),
    };
    format!("{what} ready{uptime}")
}

/// How to see that the daemon the guest's init started still runs.
pub struct GuestDaemon {
    /// A command that succeeds while it (and what it needs) runs.
    pub alive: Vec<String>,
    /// Its log in the guest.
    pub log: PathBuf,
    /// What its trouble says before the end of that log: `<daemon> died in the guest; the end of its log`.
    pub died: &'static str,
}

/// What happens to the run's containers in the guest at the end.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GuestContainers {
    /// They are killed with the guest: nothing to remove first.
    GoWithTheGuest,
    /// They are removed first, as on this machine (so that their events are in the saved log).
    RemovedFirst,
}

/// The daemon's logs that the run keeps: files of the host, copied into the run's directory at
/// the end (a private daemon that writes its log there already has none to copy).
pub struct SavedLogs {
    /// What they are, as the error says it: `cannot save <the daemon's logs>`.
    pub what: &'static str,
    /// Each file of the host and its name in the run's directory.
    pub files: Vec<(PathBuf, &'static str)>,
}

/// What differs by runtime in its daemon's lifecycle, as data given at its start.
pub struct Specifics {
    /// How to see that its daemon in the guest runs; None where there is no daemon to die.
    pub guest_daemon: Option<GuestDaemon>,
    pub guest_containers: GuestContainers,
    pub logs: SavedLogs,
}

/// The daemon a runtime owns, from its start to its ordered shutdown.
pub struct Lifecycle<P: Private> {
    place: Place<P>,
    specifics: Specifics,
    run_dir: PathBuf,
    cancel: Cancel,
    shut_down: bool,
}

impl<P: Private> Lifecycle<P> {
    pub fn new(place: Place<P>, specifics: Specifics, run: &RunIdentity) -> Lifecycle<P> {
        Lifecycle { place, specifics, run_dir: run.run_dir.to_path_buf(), cancel: run.cancel, shut_down: false }
    }

    pub fn place(&self) -> &Place<P> {
        &self.place
    }

    /// The run's artifacts, where its logs are saved.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// What is wrong with the daemon, if anything: it died (on this machine, or in the guest
    /// reached through `host`). A shared daemon is the user's to watch.
    pub fn trouble(&self, host: &dyn Host) -> Option<String> {
        match &self.place {
            Place::Private(private) => private.trouble(),
            Place::Shared { .. } => None,
            Place::InGuest => {
                let guest_daemon = self.specifics.guest_daemon.as_ref()?;
                if host.run(&guest_daemon.alive, QUICK, self.cancel).is_ok_and(|output| output.success()) {
                    return None;
                }
                let cat = argv(&["cat", &guest_daemon.log.display().to_string()]);
                let log = host.run(&cat, QUICK, Cancel::NEVER).map(|output| output.stdout_text()).unwrap_or_default();
                Some(format!("{}:\n{}", guest_daemon.died, last_lines(&log, TROUBLE_LOG_LINES)))
            }
        }
    }

    /// Whether the run's containers are removed through the daemon at the end: not where the
    /// guest takes them with it, nor by a daemon that died (its stop kills what is left), nor
    /// on a host that failed beneath them (it answers nothing).
    fn removes_containers(&self, host: &dyn Host) -> bool {
        let answers = host.machine_failed().is_none();
        match &self.place {
            Place::InGuest => answers && self.specifics.guest_containers == GuestContainers::RemovedFirst,
            Place::Shared { .. } => true,
            Place::Private(private) => answers && private.trouble().is_none(),
        }
    }
}

/// A runtime that owns a daemon: what its ordered shutdown asks of it.
pub trait OwnsDaemon: Runtime {
    type Private: Private;

    fn lifecycle(&self) -> &Lifecycle<Self::Private>;

    fn lifecycle_mut(&mut self) -> &mut Lifecycle<Self::Private>;

    /// Removes every container of the run through its daemon (for cleanup: handed `Cancel::NEVER`).
    fn remove_run_containers(&self) -> Result<()>;
}

/// The ordered shutdown, once: the run's containers removed (through the daemon, so that it
/// takes their networks down), its logs saved (before its directory goes or the guest is killed
/// with everything in it), the private daemon stopped and what it took given back, the host
/// shut down. Says every step that failed.
pub fn shut_down<R: OwnsDaemon>(runtime: &mut R) -> Result<()> {
    if std::mem::replace(&mut runtime.lifecycle_mut().shut_down, true) {
        return Ok(());
    }
    let mut problems = Vec::new();
    let lifecycle = runtime.lifecycle();
    if lifecycle.removes_containers(runtime.host())
        && let Err(error) = runtime.remove_run_containers()
    {
        problems.push(format!("{error:#}"));
    }
    let logs = &lifecycle.specifics.logs;
    if !logs.files.is_empty()
        && runtime.host().machine_failed().is_none()
        && let Err(error) = save_from_host(runtime.host(), &logs.files, &lifecycle.run_dir)
    {
        problems.push(format!("cannot save {}: {error:#}", logs.what));
    }
    if let Place::Private(private) = &mut runtime.lifecycle_mut().place {
        problems.extend(private.stop());
    }
    if let Err(error) = runtime.host().shut_down() {
        problems.push(format!("{error:#}"));
    }
    if !problems.is_empty() {
        bail!("cleanup was incomplete:\n{}", problems.join("\n"));
    }
    Ok(())
}

/// What a runtime's drop runs: the same shutdown, if `shut_down` was not called, its errors
/// said as warnings. (A runtime's own `Drop` calls it: only the runtime can remove its
/// containers, and its fields drop only after it.)
pub fn shut_down_on_drop<R: OwnsDaemon>(runtime: &mut R) {
    if let Err(error) = shut_down(runtime) {
        eprintln!("warning: {error:#}");
    }
}

/// Copies files of the host (a runtime's daemon logs) into `run_dir`, each under its name
/// there, through the host's own commands: from this machine or out of the guest alike.
fn save_from_host(host: &dyn Host, files: &[(PathBuf, &str)], run_dir: &Path) -> Result<()> {
    for (from, to) in files {
        let cat = argv(&["cat", &from.display().to_string()]);
        let output = host.run(&cat, Duration::from_secs(20), Cancel::NEVER)?.ok()?;
        let path = run_dir.join(to);
        std::fs::write(&path, &output.stdout).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A private daemon that counts how often it was given back.
    struct Counted<'a>(&'a AtomicU32);

    impl Private for Counted<'_> {
        fn trouble(&self) -> Option<String> {
            None
        }

        fn give_back(self) -> Vec<String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            vec!["the bridge stayed".to_string()]
        }
    }

    #[test]
    fn a_private_daemon_is_given_back_once_whether_stopped_or_dropped() {
        let given_back = AtomicU32::new(0);
        let mut owned = Owned::new(Counted(&given_back));
        assert_eq!(owned.stop(), ["the bridge stayed"]);
        assert!(owned.stop().is_empty());
        drop(owned);
        assert_eq!(given_back.load(Ordering::SeqCst), 1);
        drop(Owned::new(Counted(&given_back)));
        assert_eq!(given_back.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_wait_ends_when_ready_or_says_the_last_reason_at_its_deadline() {
        let mut looks = 0;
        let ready = wait_until_ready(
            Duration::from_secs(10),
            Duration::from_millis(1),
            Cancel::NEVER,
            || {
                looks += 1;
                Ok(if looks == 3 { Look::Ready(looks) } else { Look::NotYet(format!("look {looks}")) })
            },
            |why| anyhow::anyhow!("not ready: {why}"),
        );
        assert_eq!(ready.unwrap(), 3);
        let mut looks = 0;
        let late: Result<()> = wait_until_ready(
            Duration::from_millis(30),
            Duration::from_millis(5),
            Cancel::NEVER,
            || {
                looks += 1;
                Ok(Look::NotYet(format!("look {looks}")))
            },
            |why| anyhow::anyhow!("not ready: {why}"),
        );
        let said = late.unwrap_err().to_string();
        assert!(said.starts_with("not ready: look "), "{said}");
        assert_eq!(said, format!("not ready: look {looks}"));
        let failed: Result<()> = wait_until_ready(
            Duration::from_secs(10),
            Duration::from_millis(1),
            Cancel::NEVER,
            || bail!("the daemon exited during start-up"),
            |why| anyhow::anyhow!("not ready: {why}"),
        );
        assert_eq!(failed.unwrap_err().to_string(), "the daemon exited during start-up");
    }
}
