//! What `test` and `pod` share: pause built, images made, an engine started, images imported.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::engine::docker_host::DockerHostEngine;
use crate::engine::vm::{VmEngine, VmOptions};
use crate::engine::{DockerCli, Engine};
use crate::progress::Progress;
use crate::{images, pause_build, side_by_side};

/// Which engine, and how.
pub struct EngineChoice {
    /// `vm` or `docker`.
    pub name: String,
    pub vm: VmOptions,
    /// Give the guest a serial port for an interactive shell (`cargo xtask pod`).
    pub interactive: bool,
}

pub struct Ready {
    pub engine: Box<dyn Engine>,
    pub pause_binary: PathBuf,
}

/// Builds pause (unless `pause_bin` is given) and the image tars, starts the engine, and
/// imports the images into its daemon, printing each phase with its time.
pub fn engine_with_images(
    choice: &EngineChoice,
    pause_bin: Option<&Path>,
    run_dir: &Path,
    run_id: &str,
    progress: &Progress,
) -> Result<Ready> {
    let pause_binary = match pause_bin {
        Some(path) => path.to_path_buf(),
        None => pause_build::build_release()?,
    };
    let images_started = Instant::now();
    let cache_dir = pause_build::workspace_root().join("target/podlab/cache");
    let image_tars = images::build_all(&pause_binary, &cache_dir)?;
    progress.done("image tars ready", images_started);
    let engine: Box<dyn Engine> = match choice.name.as_str() {
        "vm" => Box::new(VmEngine::start(&choice.vm, choice.interactive, run_dir, run_id, progress)?),
        _ => Box::new(DockerHostEngine::start(run_dir, run_id, progress)?),
    };
    let import_started = Instant::now();
    let docker = DockerCli { engine: engine.as_ref() };
    // All at once: the small images' fixed costs (a CLI start, a layer commit) overlap the big one's copy.
    side_by_side::each(&image_tars, |image| import(&docker, image, progress))?;
    progress.done(&format!("{} images imported", image_tars.len()), import_started);
    Ok(Ready { engine, pause_binary })
}

fn import(docker: &DockerCli, image: &images::ImageTar, progress: &Progress) -> Result<()> {
    let mut arguments = vec!["import".to_string()];
    for change in &image.changes {
        arguments.push(format!("--change={change}"));
    }
    arguments.push(image.tar.display().to_string());
    arguments.push(image.name.to_string());
    let output = docker
        .call(&arguments, Duration::from_secs(300))?
        .ok()
        .with_context(|| format!("cannot import image {}", image.name))?;
    let megabytes = std::fs::metadata(&image.tar).map_or(0, |metadata| metadata.len() / 1_000_000);
    progress.say(&format!("imported {} ({megabytes} MB) in {:.1} s", image.name, output.duration.as_secs_f64()));
    Ok(())
}
