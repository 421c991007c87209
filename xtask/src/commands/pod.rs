//! `cargo xtask pod`: a live seed pod to poke at. Starts the lab (a booted guest, or this
//! machine), creates the pod of scenarios/seed-pod.json, opens a shell beside its runtime,
//! and tears everything down when the shell exits.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cancel::Cancel;
use crate::lab::{self, Choice, Lab, LabPlan};
use crate::pause_build::PauseCommand;
use crate::plan;
use crate::pod::Pod;
use crate::progress::Progress;
use crate::{images, names, pause_build, runtime, scenario};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
On the vm host the shell runs in the guest; on this host it is your own shell, with the
runtime's environment (DOCKER_HOST) set. Everything is removed when the shell exits, when the
harness gets SIGTERM or SIGHUP, or when a script piped in ends.")]
pub struct Options {
    #[command(flatten)]
    pub choice: Choice,
    /// Put this pause binary in the pod instead of building the workspace's (words after the
    /// path: its arguments)
    #[arg(long, value_name = "'PATH [ARGS]'", value_parser = PauseCommand::parse)]
    pub pause_bin: Option<PauseCommand>,
    /// The seed pod with real Ghost 6 instead of its stand-in (scenarios/seed-pod-ghost.json;
    /// its image is built from the npm registry the first time, in about 3 minutes)
    #[arg(long)]
    pub ghost: bool,
}

pub fn run(options: Options) -> Result<()> {
    let cancel = Cancel::on_signals()?;
    let workspace = pause_build::workspace_root();
    let file = if options.ghost { "seed-pod-ghost.json" } else { "seed-pod.json" };
    let seed = scenario::load_all(&workspace.join("scenarios"), runtime::fact_keys())?
        .into_iter()
        .find(|scenario| scenario.path.ends_with(file))
        .with_context(|| format!("scenarios/{file} is missing"))?;
    let (mut ports, _port_claims) = options.choice.ports(std::slice::from_ref(&seed))?;
    let ports = ports.remove(0);
    let plan = plan::plan(&seed, &ports, images::host_files)?;
    if let Some(reason) = options.choice.runtime().cannot_make(&plan) {
        bail!("{} cannot make the seed pod: {reason}", options.choice.runtime().name());
    }
    let progress = Progress::new();
    let run_id = names::run_id();
    let run_dir = names::artifacts_dir(workspace, &run_id);
    std::fs::create_dir_all(&run_dir)?;
    let lab_plan = LabPlan {
        choice: &options.choice,
        pause_bin: options.pause_bin.as_ref(),
        interactive: true,
        run_id: &run_id,
        run_dir: &run_dir,
        cancel,
    };
    let mut lab = Lab::start(&lab_plan, &progress)?;
    let mut started = Instant::now();
    let mut seed_pod = Pod::new(lab.runtime.as_ref(), &plan);
    let made = lab.import(&plan.images(), &progress).and_then(|()| seed_pod.start(cancel));
    // A guest whose kernel locked up failed beneath the pod, not the pod: once, as `test`
    // does, a new guest is booted and the pod made again.
    if let Some(failure) = lab.runtime.host().machine_failed() {
        // Its containers go with the failed guest, which refuses every request now.
        let _ = seed_pod.remove();
        progress.say(&lab::host_failed(&failure));
        if let Err(error) = lab.shut_down() {
            progress.say(&format!("warning: the failed host's cleanup: {error:#}"));
        }
        lab = Lab::start(&lab_plan, &progress)?;
        started = Instant::now();
        lab.import(&plan.images(), &progress)?;
        seed_pod = Pod::new(lab.runtime.as_ref(), &plan);
        seed_pod.start(cancel)?;
    } else {
        made?;
    }
    let runtime = lab.runtime.as_ref();
    let port = ports.published(8080);
    progress.done(&format!("seed pod created: pause, nginx, ghost (published on 127.0.0.1:{port})"), started);
    let mut hints = runtime.shell_hints();
    hints.push(format!("curl -s 127.0.0.1:{port}/"));
    println!(
        "\nA shell beside the pod's runtime. Try:\n  {}\nExit the shell to tear everything down.\n",
        hints.join("\n  ")
    );
    let shell = runtime.host().interactive_shell(&runtime.shell_environment());
    progress.say("tearing down");
    let removed = seed_pod.remove();
    let stopped = lab.shut_down();
    shell?;
    removed?;
    stopped
}
