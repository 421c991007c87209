//! What `test` and `pod` share before their first pod: pause built, the image tars made, the
//! host up (this machine, or a booted guest), the runtime started on it; then each image
//! imported when a pod first needs it. Each phase is printed with its time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cancel::Cancel;
use crate::host::local::LocalHost;
use crate::host::vm::{BootPlan, VmHost, VmOptions};
use crate::host::{Host, Placement};
use crate::host_ports::{self, PortClaims};
use crate::images::ImageTar;
use crate::pause_build::PauseCommand;
use crate::plan::{self, Ports};
use crate::progress::Progress;
use crate::runtime::{self, RunIdentity, Runtime, RuntimeKind};
use crate::scenario::Scenario;
use crate::side_by_side::{self, lock};
use crate::{command, images, names, pause_build};

/// Where the pod runs and which runtime makes it: `--on`, `--runtime` and the VM's options,
/// shared by every command that makes pods.
#[derive(Clone, Debug, clap::Args)]
pub struct Choice {
    /// Where the pod runs
    #[arg(long, value_enum, default_value_t = Placement::Vm)]
    pub on: Placement,
    /// Which runtime makes the pod
    #[arg(long, value_enum, default_value_t = runtime::default_runtime())]
    pub runtime: &'static RuntimeKind,
    /// Before --on and --runtime: vm is `--on vm`, docker is `--on host` (both with the docker
    /// runtime); kept for one release
    #[arg(long, value_enum, value_name = "ENGINE", conflicts_with_all = ["on", "runtime"])]
    pub engine: Option<Engine>,
    #[command(flatten)]
    pub vm: VmOptions,
}

/// The engines before `--on` and `--runtime` split them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Vm,
    Docker,
}

impl Choice {
    /// `--engine`, if given, said both.
    pub fn placement(&self) -> Placement {
        match self.engine {
            Some(Engine::Vm) => Placement::Vm,
            Some(Engine::Docker) => Placement::Host,
            None => self.on,
        }
    }

    pub fn runtime(&self) -> &'static RuntimeKind {
        match self.engine {
            // The engines were Docker's, the registry's first runtime.
            Some(_) => runtime::default_runtime(),
            None => self.runtime,
        }
    }

    /// The ports each scenario publishes on, no two scenarios on the same one (see `Ports`),
    /// and on this machine the run's claims on them, to be held until the run ends.
    pub fn ports(&self, scenarios: &[Scenario]) -> Result<(Vec<Ports>, PortClaims)> {
        let written: Vec<Vec<u16>> = scenarios.iter().map(plan::written_ports).collect();
        match self.placement() {
            Placement::Vm => Ok((Ports::apart_in_guest(&written), PortClaims::default())),
            Placement::Host => host_ports::claim_free_ports(&written),
        }
    }

    /// `docker on vm`: how progress lines and reports name the choice before anything runs.
    pub fn describe(&self) -> String {
        format!("{} on {}", self.runtime().name(), self.placement().name())
    }

    /// The command-line words that parse back to this choice, for a command that runs another
    /// (`compare` runs `test`): `--on` and `--runtime` as `--engine` resolved them, then the VM's.
    pub fn arguments(&self) -> Vec<String> {
        let mut arguments: Vec<String> =
            ["--on", self.placement().name(), "--runtime", self.runtime().name()].map(String::from).into();
        if let Some(kernel) = &self.vm.kernel {
            arguments.extend(["--kernel".to_string(), kernel.display().to_string()]);
        }
        if self.vm.require_kvm {
            arguments.push("--require-kvm".to_string());
        }
        arguments
    }
}

/// What a command that makes pods works with.
pub struct Lab {
    pub runtime: Box<dyn Runtime>,
    pub pause: PauseCommand,
    /// The images, each imported into the runtime when a pod first needs it.
    images: Vec<Import>,
    /// Where the image tars are, and where the on-demand ones are built.
    cache_dir: PathBuf,
    /// The run's: an on-demand image's build stops at a Ctrl-C.
    cancel: Cancel,
}

struct Import {
    name: &'static str,
    /// Built as the lab starts; for an image of `images::ON_DEMAND`, none until a pod needs it.
    tar: Option<ImageTar>,
    /// Not tried yet, imported, or why it could not be (said to every pod that needs it).
    outcome: Mutex<Option<Result<(), String>>>,
}

/// How the lab is started.
pub struct LabPlan<'a> {
    pub choice: &'a Choice,
    /// Test this pause instead of building the workspace's.
    pub pause_bin: Option<&'a PauseCommand>,
    /// Give a guest a shell port (`cargo xtask pod`).
    pub interactive: bool,
    pub run_id: &'a str,
    pub run_dir: &'a Path,
    /// The run's: a Ctrl-C cuts the lab's start and its pods' work short.
    pub cancel: Cancel,
}

impl Lab {
    /// Builds pause (unless a binary is given) and the image tars, brings the host up and
    /// starts the runtime on it; the images are imported by `import`.
    pub fn start(plan: &LabPlan, progress: &Progress) -> Result<Lab> {
        let pause = match plan.pause_bin {
            Some(pause) => pause.clone(),
            None => PauseCommand::ours(plan.cancel)?,
        };
        let images_started = Instant::now();
        let cache_dir = names::cache_dir(pause_build::workspace_root());
        let image_tars = images::build_all(&pause, &cache_dir)?;
        progress.done("image tars ready", images_started);
        let runtime_kind = plan.choice.runtime();
        let host = start_host(plan, runtime_kind, progress)?;
        let identity = RunIdentity { run_id: plan.run_id, run_dir: plan.run_dir, cancel: plan.cancel };
        let runtime = runtime_kind.start(host, &identity, progress)?;
        // The harness's own faults enter here, around the runtime, and nowhere else.
        #[cfg(feature = "fault-injection")]
        let runtime = crate::faults::wrap(runtime, plan.cancel);
        let built =
            image_tars.into_iter().map(|tar| Import { name: tar.name, tar: Some(tar), outcome: Mutex::default() });
        let on_demand = images::ON_DEMAND.map(|name| Import { name, tar: None, outcome: Mutex::default() });
        let images = built.chain(on_demand).collect();
        Ok(Lab { runtime, pause, images, cache_dir, cancel: plan.cancel })
    }

    /// Imports those of `names` that the runtime does not have yet, side by side (the small
    /// images' fixed costs, a CLI start or a layer commit, overlap the big one's copy); a pod
    /// waits only for the images it uses, so the first pods need not wait for the biggest.
    /// An on-demand image is built first. Names of no image of the lab's are left to the runtime.
    pub fn import(&self, names: &[&str], progress: &Progress) -> Result<()> {
        let wanted: Vec<&Import> = self.images.iter().filter(|import| names.contains(&import.name)).collect();
        side_by_side::each(&wanted, |import| {
            // Held through the build and import: a pod that needs the same image waits for this one.
            let mut outcome = lock(&import.outcome);
            let outcome = outcome.get_or_insert_with(|| self.build_and_import(import, progress));
            outcome.clone().map_err(|error| anyhow::anyhow!(error))
        })?;
        Ok(())
    }

    fn build_and_import(&self, import: &Import, progress: &Progress) -> Result<(), String> {
        let built;
        let tar = match &import.tar {
            Some(tar) => tar,
            None => {
                let started = Instant::now();
                built = images::build_on_demand(import.name, &self.cache_dir, self.cancel)
                    .map_err(|error| format!("{error:#}"))?;
                progress.done(&format!("image tar of {} ready", import.name), started);
                &built
            }
        };
        let started = Instant::now();
        self.runtime.import(tar).map_err(|error| format!("{error:#}"))?;
        let megabytes = std::fs::metadata(&tar.tar).map_or(0, |metadata| metadata.len() / 1_000_000);
        progress.say(&format!("imported {} ({megabytes} MB) in {:.1} s", import.name, started.elapsed().as_secs_f64()));
        Ok(())
    }

    /// Stops the runtime (removing every container of the run) and then its host; the
    /// same happens on drop, where errors can only be printed.
    pub fn shut_down(mut self) -> Result<()> {
        self.runtime.shut_down()
    }
}

/// What a command says when its host failed beneath a pod (`Host::machine_failed`) and it
/// starts a new one: the failure's first line.
pub fn host_failed(failure: &str) -> String {
    let first_line = failure.lines().next().unwrap_or_default();
    format!("the host failed beneath the pod ({first_line}): starting a new one")
}

/// This machine, or a guest booted with the runtime's daemons starting in it.
pub fn start_host(plan: &LabPlan, runtime: &'static RuntimeKind, progress: &Progress) -> Result<Box<dyn Host>> {
    match plan.choice.placement() {
        Placement::Host => Ok(Box::new(LocalHost)),
        Placement::Vm => {
            // In the run's artifacts: the guest sees the workspace, and the script stays for whoever reads the run.
            let services = plan.run_dir.join(format!("guest-{}.sh", runtime.name()));
            std::fs::write(&services, runtime.guest_services())
                .with_context(|| format!("cannot write {}", services.display()))?;
            // Resolved here: the guest's first stage sees this machine's root under /host, where
            // an absolute symlink would point outside it.
            let read_ahead: Vec<PathBuf> = runtime
                .guest_programs()
                .iter()
                .filter_map(|program| std::fs::canonicalize(command::find_program(program)?).ok())
                .collect();
            let boot = BootPlan {
                options: &plan.choice.vm,
                services: &services,
                read_ahead: &read_ahead,
                interactive: plan.interactive,
                run_dir: plan.run_dir,
                cancel: plan.cancel,
            };
            Ok(Box::new(VmHost::boot(&boot, progress)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{Parser, ValueEnum};

    use super::*;

    #[derive(Parser)]
    struct Words {
        #[command(flatten)]
        choice: Choice,
    }

    fn parse(words: &[String]) -> Choice {
        let words = std::iter::once("podlab".to_string()).chain(words.iter().cloned());
        Words::try_parse_from(words).unwrap_or_else(|error| panic!("{error}")).choice
    }

    /// What a choice means to a run: `--engine` said the first two, and is not said again.
    fn meaning(choice: &Choice) -> (Placement, &'static RuntimeKind, Option<PathBuf>, bool) {
        (choice.placement(), choice.runtime(), choice.vm.kernel.clone(), choice.vm.require_kvm)
    }

    #[test]
    fn a_choice_parses_back_from_its_arguments() {
        let vm_options: [&[&str]; 3] =
            [&[], &["--require-kvm"], &["--kernel", "/boot/vmlinuz-6.1 test", "--require-kvm"]];
        let mut chosen: Vec<Vec<String>> = Vec::new();
        for placement in Placement::value_variants() {
            for runtime in runtime::RUNTIMES {
                chosen.push(command::argv(&["--on", placement.name(), "--runtime", runtime.name()]));
            }
        }
        chosen.extend(Engine::value_variants().iter().map(|engine| {
            let word = engine.to_possible_value().unwrap().get_name().to_string();
            vec!["--engine".to_string(), word]
        }));
        chosen.push(Vec::new());
        for words in chosen {
            for vm in vm_options {
                let words: Vec<String> = words.iter().cloned().chain(vm.iter().map(|word| word.to_string())).collect();
                let choice = parse(&words);
                let again = parse(&choice.arguments());
                assert_eq!(meaning(&again), meaning(&choice), "{words:?} gave {:?}", choice.arguments());
                assert_eq!(again.arguments(), choice.arguments(), "{words:?}");
                if choice.engine.is_none() {
                    assert_eq!(format!("{again:?}"), format!("{choice:?}"), "{words:?}");
                }
            }
        }
        let old_style = parse(&command::argv(&["--engine", "docker", "--kernel", "/boot/k"]));
        assert_eq!(old_style.arguments(), ["--on", "host", "--runtime", "docker", "--kernel", "/boot/k"]);
    }
}
