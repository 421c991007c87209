//! Faults injected for xtask/tests/harness/, at one edge: a runtime that passes every call
//! through and, when the environment asks, fails around a pod's start. Compiled only with the
//! `fault-injection` feature, which only the harness's own tests build; the lab wraps its
//! runtime in it once, as it starts it, so that the pod and the runner know of no fault.
//!
//! - `PODLAB_INJECT_PANIC`: every pod's start ends in a panic (whether the start succeeded or
//!   not), with the pod up: the pod and the runtime must still be removed.
//! - `PODLAB_INJECT_LOCKUP`: once the run's first pod has started, the guest's kernel says a
//!   CPU is stuck (the words of a real soft lockup on its console, where the host looks for
//!   them), and the run must boot a new guest.
//!
//! A pod's start is over when its infra container's start failed, or when the start of its
//! last app returned (the apps start side by side, each in a thread of its own). A panic there
//! would only fail that thread's call, so when the start ends in an app's thread the panic
//! comes on the next call of the thread that started the pod.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;
use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::Signal;

use crate::cancel::Cancel;
use crate::command::Output;
use crate::host::Host;
use crate::images::ImageTar;
use crate::plan::{ContainerPlan, PodPlan};
use crate::runtime::{ContainerState, Logs, Runtime, RuntimeKind};
use crate::side_by_side::lock;

/// The words a guest's kernel prints for a soft lockup: the host's console watch looks for
/// `soft lockup` (`Host::machine_failed`), and the run then starts a new host.
const LOCKUP_WORDS: &str =
    "echo '<0>watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [injected by podlab]' > /dev/kmsg";

/// `runtime`, failing as the environment asks (nothing else changes when it asks nothing).
pub fn wrap(runtime: Box<dyn Runtime>, cancel: Cancel) -> Box<dyn Runtime> {
    let panic = std::env::var_os("PODLAB_INJECT_PANIC").is_some();
    let lockup = std::env::var_os("PODLAB_INJECT_LOCKUP").is_some();
    if !panic && !lockup {
        return runtime;
    }
    Box::new(Faults { runtime, panic, lockup, cancel, starting: Mutex::default(), panic_due: Mutex::default() })
}

struct Faults {
    runtime: Box<dyn Runtime>,
    panic: bool,
    lockup: bool,
    /// The run's: the injected lockup's command ends at a Ctrl-C.
    cancel: Cancel,
    /// The pods whose apps are starting, by their infra container's name.
    starting: Mutex<BTreeMap<String, Starting>>,
    /// The threads that started a pod whose start has ended since, in an app's thread: each
    /// panics on its next call, naming its pod.
    panic_due: Mutex<HashMap<ThreadId, String>>,
}

/// A pod whose apps are starting.
struct Starting {
    /// The thread that started the pod (its infra container).
    thread: ThreadId,
    apps_left: usize,
    /// Whether every app's start so far succeeded.
    succeeded: bool,
    lockup_due: bool,
}

/// Whether this pod's start is the run's first, when a lockup is asked for: decided before the
/// pod starts, so that a real lockup during the first start (CI saw one under load) leaves the
/// pod made again on a new guest alone. Once per process: the new lab's runtime is wrapped too.
fn lockup_is_due() -> bool {
    static DECIDED: AtomicBool = AtomicBool::new(false);
    !DECIDED.swap(true, Ordering::SeqCst)
}

fn injected_panic(pod: &str) -> ! {
    panic!("injected panic (PODLAB_INJECT_PANIC is set), with the pod of {pod} running");
}

impl Faults {
    /// Panics if the pod this thread started has ended its start in an app's thread.
    fn panic_if_due(&self) {
        // Not while the thread unwinds from another panic: a second one would abort the cleanup.
        if !self.panic || std::thread::panicking() {
            return;
        }
        let due = lock(&self.panic_due).remove(&std::thread::current().id());
        if let Some(pod) = due {
            injected_panic(&pod);
        }
    }

    /// A guest kernel that locks up once a pod runs: the kernel's own words reach the console.
    fn inject_lockup(&self) {
        let words = crate::command::argv(&["sh", "-c", LOCKUP_WORDS]);
        let _ = self.runtime.host().run(&words, Duration::from_secs(10), self.cancel);
        std::thread::sleep(Duration::from_millis(500));
    }
}

impl Runtime for Faults {
    fn kind(&self) -> &'static RuntimeKind {
        self.panic_if_due();
        self.runtime.kind()
    }

    fn details(&self) -> String {
        self.panic_if_due();
        self.runtime.details()
    }

    fn host(&self) -> &dyn Host {
        self.panic_if_due();
        self.runtime.host()
    }

    fn import(&self, image: &ImageTar) -> Result<()> {
        self.panic_if_due();
        self.runtime.import(image)
    }

    fn start_infra(&self, pod: &PodPlan) -> Result<()> {
        self.panic_if_due();
        let lockup_due = self.lockup && lockup_is_due();
        let started = self.runtime.start_infra(pod);
        if started.is_err() || pod.apps.is_empty() {
            if started.is_ok() && lockup_due {
                self.inject_lockup();
            }
            if self.panic {
                injected_panic(&pod.name);
            }
            return started;
        }
        let starting =
            Starting { thread: std::thread::current().id(), apps_left: pod.apps.len(), succeeded: true, lockup_due };
        lock(&self.starting).insert(pod.infra.name.clone(), starting);
        started
    }

    fn start_app(&self, pod: &PodPlan, app: &ContainerPlan) -> Result<()> {
        let started = self.runtime.start_app(pod, app);
        let mut starting = lock(&self.starting);
        let Some(pod_starting) = starting.get_mut(&pod.infra.name) else { return started };
        pod_starting.apps_left -= 1;
        pod_starting.succeeded &= started.is_ok();
        if pod_starting.apps_left > 0 {
            return started;
        }
        let Some(ended) = starting.remove(&pod.infra.name) else { return started };
        drop(starting);
        if ended.succeeded && ended.lockup_due {
            self.inject_lockup();
        }
        if self.panic {
            lock(&self.panic_due).insert(ended.thread, pod.name.clone());
        }
        started
    }

    fn remove(&self, containers: &[String], timeout: Duration) -> Result<()> {
        self.panic_if_due();
        self.runtime.remove(containers, timeout)
    }

    fn exec(&self, container: &str, argv: &[String], timeout: Duration) -> Result<Output> {
        self.panic_if_due();
        self.runtime.exec(container, argv, timeout)
    }

    fn states(&self, containers: &[String]) -> Result<BTreeMap<String, ContainerState>> {
        self.panic_if_due();
        self.runtime.states(containers)
    }

    fn pod_address(&self, infra: &str) -> Result<String> {
        self.panic_if_due();
        self.runtime.pod_address(infra)
    }

    fn signal(&self, container: &str, signal: Signal) -> Result<()> {
        self.panic_if_due();
        self.runtime.signal(container, signal)
    }

    fn stop(&self, container: &str, grace: Duration) -> Result<()> {
        self.panic_if_due();
        self.runtime.stop(container, grace)
    }

    fn restart(&self, container: &str) -> Result<()> {
        self.panic_if_due();
        self.runtime.restart(container)
    }

    fn logs(&self, container: &str) -> Result<Logs> {
        self.panic_if_due();
        self.runtime.logs(container)
    }

    fn stamped_logs(&self, container: &str) -> Result<Logs> {
        self.panic_if_due();
        self.runtime.stamped_logs(container)
    }

    fn image_user(&self, image: &str) -> Result<String> {
        self.panic_if_due();
        self.runtime.image_user(image)
    }

    fn image_files(&self, image: &str) -> Result<Vec<String>> {
        self.panic_if_due();
        self.runtime.image_files(image)
    }

    fn shell_environment(&self) -> Vec<(String, String)> {
        self.panic_if_due();
        self.runtime.shell_environment()
    }

    fn shell_hints(&self) -> Vec<String> {
        self.panic_if_due();
        self.runtime.shell_hints()
    }

    fn trouble(&self) -> Option<String> {
        self.panic_if_due();
        self.runtime.trouble()
    }

    /// Never panics: the run's cleanup must run.
    fn shut_down(&mut self) -> Result<()> {
        self.runtime.shut_down()
    }
}
