//! A live pod: the `Pod` that owns the containers it made on a runtime from its plan
//! (`crate::plan`) and removes them when it drops, whatever happened; and what it sends out
//! (`outbound.rs`).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::cancel::Cancel;
use crate::plan::PodPlan;
use crate::runtime::Runtime;
use crate::side_by_side;

pub mod outbound;

/// How long removing a pod's containers may take.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Pod<'run> {
    runtime: &'run dyn Runtime,
    plan: &'run PodPlan,
    /// Whether any container may exist: once `start` began, until `remove` ended.
    made: bool,
}

impl<'run> Pod<'run> {
    /// A pod not made yet.
    pub fn new(runtime: &'run dyn Runtime, plan: &'run PodPlan) -> Pod<'run> {
        Pod { runtime, plan, made: false }
    }

    /// Starts the infra container, then the apps side by side: they need only the infra
    /// container, not each other (and under TCG each start takes about 1.3 s). A pod that
    /// fails half way still owns what it made. `cancel` is the run's: a Ctrl-C ends the start.
    pub fn start(&mut self, cancel: Cancel) -> Result<()> {
        self.made = true;
        self.runtime.start_infra(self.plan)?;
        // Before any app runs, so that the count holds everything the apps send.
        if self.plan.count_outbound {
            outbound::watch(self.runtime, &self.plan.infra.name, cancel)?;
        }
        side_by_side::each(&self.plan.apps, |app| self.runtime.start_app(self.plan, app))?;
        Ok(())
    }

    /// Every container's logs into `logs_dir/<container>.log`, all at once; a container that
    /// never started has none.
    pub fn save_logs(&self, logs_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(logs_dir)?;
        side_by_side::each(&self.plan.names_for_removal(), |name| {
            let Ok(logs) = self.runtime.stamped_logs(name) else { return Ok(()) };
            let text =
                format!("--- stdout ---\n{}--- stderr ---\n{}", String::from_utf8_lossy(&logs.stdout), logs.stderr);
            std::fs::write(logs_dir.join(format!("{name}.log")), text)?;
            Ok(())
        })?;
        Ok(())
    }

    /// Removes every container, reporting what failed (dropping the pod does the same, quietly).
    pub fn remove(mut self) -> Result<()> {
        self.remove_made()
    }

    fn remove_made(&mut self) -> Result<()> {
        if !std::mem::replace(&mut self.made, false) {
            return Ok(());
        }
        self.runtime.remove(&self.plan.names_for_removal(), REMOVE_TIMEOUT)
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.remove_made() {
            eprintln!("warning: cannot remove the pod: {error:#}");
        }
    }
}
