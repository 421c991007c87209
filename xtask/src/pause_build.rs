//! The pause under test: the workspace's binary, built here (release profile: static,
//! stripped, a few kB), or one given with `--pause-bin`, with the arguments its image starts it with.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::cancel::Cancel;
use crate::command;

/// A pause binary and the arguments its image starts it with (`/usr/bin/catatonit -P`), as
/// `--pause-bin` gives them: the first word a file, the others its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct PauseCommand {
    pub binary: PathBuf,
    pub arguments: Vec<String>,
}

impl PauseCommand {
    /// For clap: the binary must exist; it is made absolute, since the guest and the images
    /// read it.
    pub fn parse(text: &str) -> Result<PauseCommand, String> {
        let mut words = text.split_whitespace();
        let path = PathBuf::from(words.next().ok_or("give a path to a pause binary")?);
        if !path.is_file() {
            return Err(format!("{}: no such file", path.display()));
        }
        let binary = path.canonicalize().map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(PauseCommand { binary, arguments: words.map(str::to_string).collect() })
    }

    /// The workspace's pause, built once per run.
    pub fn ours(cancel: Cancel) -> Result<PauseCommand> {
        Ok(PauseCommand { binary: build_release(cancel)?, arguments: Vec::new() })
    }
}

impl std::fmt::Display for PauseCommand {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.binary.display())?;
        self.arguments.iter().try_for_each(|argument| write!(formatter, " {argument}"))
    }
}

/// A cold build of pause takes seconds; a machine busy with other builds may take minutes.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// The workspace root: `PODLAB_WORKSPACE` when set (an xtask built elsewhere, as the flake's
/// NixOS test builds it, runs against a copy of the sources), else one level above xtask's manifest.
pub fn workspace_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| match std::env::var_os("PODLAB_WORKSPACE") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace").to_path_buf(),
    })
}

/// Runs `cargo build --release -p pause` once per run and returns the binary's path: the
/// pod's pause, the guest's init and each boot of the bench are the same binary.
pub fn build_release(cancel: Cancel) -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(binary) = BUILT.get() {
        return Ok(binary.clone());
    }
    let binary = build(cancel)?;
    Ok(BUILT.get_or_init(|| binary).clone())
}

fn build(cancel: Cancel) -> Result<PathBuf> {
    let started = Instant::now();
    eprintln!("building pause (cargo build --release -p pause)...");
    // `cargo xtask` runs under cargo, which says where its own binary is.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest = workspace_root().join("Cargo.toml").display().to_string();
    let build = command::argv(&[&cargo, "build", "--release", "--package", "pause", "--manifest-path", &manifest]);
    let built = command::run_in_view(&build, &[], BUILD_TIMEOUT, cancel)?;
    if !built.success() {
        bail!("cargo build --release -p pause failed ({}): see cargo's output above", built.ending());
    }
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let binary = target_dir.join("release/pause");
    eprintln!("built {} in {:.1} s", binary.display(), started.elapsed().as_secs_f64());
    Ok(binary)
}
