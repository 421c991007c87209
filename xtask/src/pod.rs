//! `cargo xtask pod`: a live seed pod to poke at. Boots the guest (or uses the docker engine),
//! creates the pod of scenarios/seed-pod.json, opens a shell beside its Docker daemon, and
//! tears everything down when the shell exits.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::engine::DockerCli;
use crate::engine::vm::VmOptions;
use crate::progress::Progress;
use crate::setup::{self, EngineChoice};
use crate::{interrupt, pause_build, runner, scenario};

const HELP: &str = "\
Usage: cargo xtask pod [--engine vm|docker] [--pause-bin PATH] [--kernel PATH] [--require-kvm]

Creates the seed pod (pause + nginx + ghost stand-in, from scenarios/seed-pod.json) and opens a
shell beside its Docker daemon: in the guest for the vm engine, on the host with DOCKER_HOST
set for the docker engine. Try: docker exec -ti nginx ps -ef
Everything is removed when the shell exits.";

pub fn run(arguments: &[String]) -> Result<()> {
    let mut choice =
        EngineChoice { name: "vm".to_string(), vm: VmOptions { kernel: None, require_kvm: false }, interactive: true };
    let mut pause_bin = None;
    let mut arguments = arguments.iter();
    while let Some(argument) = arguments.next() {
        let mut value = || arguments.next().cloned().with_context(|| format!("{argument} needs a value"));
        match argument.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--engine" => choice.name = value()?,
            "--pause-bin" => pause_bin = Some(std::path::PathBuf::from(value()?)),
            "--kernel" => choice.vm.kernel = Some(value()?.into()),
            "--require-kvm" => choice.vm.require_kvm = true,
            unknown => bail!("unknown option `{unknown}` (see cargo xtask pod --help)"),
        }
    }
    if !matches!(choice.name.as_str(), "vm" | "docker") {
        bail!("unknown engine `{}`: use --engine vm or --engine docker", choice.name);
    }
    interrupt::install()?;
    let workspace = pause_build::workspace_root();
    let seed = scenario::load_all(&workspace.join("scenarios"))?
        .into_iter()
        .find(|scenario| scenario.path.ends_with("seed-pod.json"))
        .context("scenarios/seed-pod.json is missing")?;
    let progress = Progress::new();
    let run_id = format!("pod-{}", std::process::id());
    let run_dir = workspace.join("target/podlab").join(&run_id);
    std::fs::create_dir_all(&run_dir)?;
    let mut ready = setup::engine_with_images(&choice, pause_bin.as_deref(), &run_dir, &run_id, &progress)?;
    let engine = ready.engine.as_ref();
    let started = Instant::now();
    runner::create_pod(&DockerCli { engine }, &seed, engine.run_label())?;
    progress.done("seed pod created: pause, nginx, ghost (published on 127.0.0.1:8080)", started);
    println!(
        "\nA shell beside the pod's Docker daemon. Try:\n  docker ps\n  docker exec -ti nginx ps -ef\n  curl -s 127.0.0.1:8080/\nExit the shell to tear everything down.\n"
    );
    let shell = engine.interactive_shell();
    progress.say("tearing down");
    let stopped = ready.engine.shut_down();
    shell?;
    stopped
}
