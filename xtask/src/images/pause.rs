//! `podlab/pause`: the pause binary alone, as Kubernetes builds its pause image `FROM scratch`.

use anyhow::{Result, bail};

use super::Recipe;
use super::rootfs::{Rootfs, program_interpreter};
use crate::pause_build::PauseCommand;

pub const NAME: &str = crate::names::PAUSE_IMAGE;

/// Bumped when this recipe changes what it builds in a way its inputs do not show.
const VERSION: u32 = 1;

/// The user Kubernetes runs pause as: it needs no privilege at all.
const PAUSE_USER: &str = "65535:65535";

/// The image starts the binary, as `/pause`, with the command's arguments.
pub fn recipe(pause: &PauseCommand) -> Result<Recipe> {
    let pause_binary = &pause.binary;
    // The image holds no loader and no libc, so a dynamically linked pause would fail in every pod with
    // a baffling "no such file or directory"; refuse it here instead.
    if let Some(interpreter) = program_interpreter(pause_binary)? {
        bail!(
            "{} is dynamically linked (it needs {}), but the pause image holds nothing else: \
             give a statically linked pause, such as the one cargo build --release -p pause makes",
            pause_binary.display(),
            interpreter.display()
        );
    }
    let mut rootfs = Rootfs::new();
    rootfs.add_host_file_as("/pause", pause_binary, 0o755)?;
    Ok(Recipe {
        name: NAME,
        version: VERSION,
        rootfs,
        changes: vec![format!("USER {PAUSE_USER}"), format!("ENTRYPOINT {}", entrypoint(&pause.arguments))],
    })
}

/// `["/pause", "-P"]`: the exec form, each word a JSON string.
fn entrypoint(arguments: &[String]) -> String {
    let words: Vec<&str> = std::iter::once("/pause").chain(arguments.iter().map(String::as_str)).collect();
    serde_json::to_string(&words).expect("strings always serialize")
}
