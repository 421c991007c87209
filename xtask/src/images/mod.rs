//! Builds the pod's images offline, from files on this host, as root filesystem tars for `docker import`.
//!
//! No image registry is reachable, so each image is a recipe (`pause.rs`, `nginx.rs`, `ghost_standin.rs`)
//! that describes a root filesystem made of host files and a few generated ones (`rootfs.rs`), written as a
//! tar with the `tar` crate; `tarball.rs` puts that tar in the cache directory, or reuses the one a previous
//! run left there. One image is heavy: real Ghost (`ghost.rs`), built from the npm registry, and only
//! when a pod first needs it (`ON_DEMAND`).

mod app_base;
pub mod docker_archive;
mod ghost;
mod ghost_standin;
mod nginx;
mod pause;
mod rootfs;
mod tarball;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use self::rootfs::Rootfs;
pub use self::rootfs::program_interpreter;
use crate::cancel::Cancel;
use crate::command;
use crate::pause_build::PauseCommand;

/// How long `ldd` or `busybox --list` may take. Each answers in milliseconds; one that has not after
/// 30 s is hung, and the build says so instead of waiting for ever.
const HOST_COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// One image, ready for `docker import`.
pub struct ImageTar {
    /// The image's name, e.g. `podlab/pause`.
    pub name: &'static str,
    /// A plain (uncompressed) tar of the root filesystem.
    pub tar: PathBuf,
    /// Dockerfile lines for `docker import --change`, e.g. `USER 65535:65535`, `ENTRYPOINT ["/pause"]`.
    pub changes: Vec<String>,
}

/// Builds (or reuses from `cache_dir`) the tars of every image the scenarios use.
pub fn build_all(pause: &PauseCommand, cache_dir: &Path) -> Result<Vec<ImageTar>> {
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("cannot create the image cache directory {}", cache_dir.display()))?;
    // Every recipe is checked before any image is built, so a missing package is reported in seconds.
    let recipes = [pause::recipe(pause)?, nginx::recipe()?, ghost_standin::recipe()?];
    recipes.into_iter().map(|recipe| tarball::build_or_reuse(recipe, cache_dir)).collect()
}

/// The images built only when a pod first needs one: minutes of building, from the npm registry.
pub const ON_DEMAND: [&str; 1] = [ghost::NAME];

/// Builds (or reuses from `cache_dir`) the tar of an image of `ON_DEMAND`.
pub fn build_on_demand(name: &str, cache_dir: &Path, cancel: Cancel) -> Result<ImageTar> {
    let recipe = match name {
        ghost::NAME => ghost::recipe(cache_dir, cancel)?,
        _ => bail!("{name} is not an image podlab builds on demand"),
    };
    tarball::build_or_reuse(recipe, cache_dir)
}

/// What a container of `image` mounts read-only from the host, beyond what its scenario gives:
/// (host path, container path). Only the ghost stand-in has any (this machine's node).
pub fn host_files(image: &str) -> Result<Vec<(PathBuf, String)>> {
    match image {
        ghost_standin::NAME => ghost_standin::host_files(),
        _ => Ok(Vec::new()),
    }
}

/// What the builder needs from the host, for `cargo xtask doctor`: (what is missing, the Debian package that provides it).
pub fn missing_prerequisites() -> Vec<(String, String)> {
    let mut missing = Vec::new();
    // doctor asks it, which leaves Ctrl-C to kill the harness.
    if command::run(&command::argv(&["ldd", "--version"]), HOST_COMMAND_DEADLINE, Cancel::NEVER).is_err() {
        missing.push(("ldd".to_string(), "libc-bin".to_string()));
    }
    for program in HOST_PROGRAMS {
        if program.require().is_err() {
            missing.push((format!("{} at {}", program.name, program.path), program.package.to_string()));
        }
    }
    missing
}

/// What building the `ON_DEMAND` images needs that this host lacks: (what, Debian package).
pub fn missing_for_on_demand() -> Vec<(String, String)> {
    ghost::missing_prerequisites()
}

/// Every program an image copies from the host.
const HOST_PROGRAMS: [HostProgram; 5] =
    [nginx::NGINX, ghost_standin::NODE, app_base::BUSYBOX, app_base::IPCMK, app_base::IPCS];

/// A program an image copies from the host, and the Debian package that provides it.
struct HostProgram {
    name: &'static str,
    path: &'static str,
    package: &'static str,
}

impl HostProgram {
    /// The program's path: where Debian puts it, else the first on PATH (NixOS has no
    /// /usr/sbin/nginx); or an error that says which package to install.
    fn require(&self) -> Result<PathBuf> {
        let path = Path::new(self.path);
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        if let Some(found) = command::find_program(self.name) {
            return Ok(found);
        }
        bail!("{} not found at {} nor on PATH: install it with apt-get install {}", self.name, self.path, self.package)
    }

    /// Copies the program (and its libraries) into `rootfs`; when it was found elsewhere than
    /// its Debian path, that path becomes a symlink to it, so entrypoints stay the same.
    fn add_to(&self, rootfs: &mut Rootfs) -> Result<PathBuf> {
        let found = self.require()?;
        rootfs.add_host_program(&found)?;
        if found != Path::new(self.path) {
            rootfs.add_symlink(self.path, &found)?;
        }
        Ok(found)
    }
}

/// What one image is made of, before it is built.
struct Recipe {
    name: &'static str,
    /// Bumped when the recipe changes what it builds in a way its inputs do not show.
    version: u32,
    rootfs: Rootfs,
    changes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::{Command, Output, Stdio};

    use super::rootfs::tests::{list_tar, unpack};
    use super::*;

    /// A stand-in for the pause binary where only the image's layout is under test: any file will do, and
    /// one that is not ELF passes the "not dynamically linked" check.
    fn fake_pause_binary(directory: &Path, contents: &str) -> PathBuf {
        let path = directory.join("pause");
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn command(binary: &Path) -> PauseCommand {
        PauseCommand { binary: binary.to_path_buf(), arguments: Vec::new() }
    }

    #[test]
    fn a_pause_given_with_arguments_starts_with_them() {
        let scratch = tempfile::tempdir().unwrap();
        let binary = fake_pause_binary(scratch.path(), "catatonit, pretend");
        let pause = PauseCommand::parse(&format!("{} -P", binary.display())).unwrap();
        let recipe = pause::recipe(&pause).unwrap();
        assert_eq!(recipe.changes, ["USER 65535:65535", r#"ENTRYPOINT ["/pause","-P"]"#]);
        assert_eq!(pause.to_string(), format!("{} -P", binary.canonicalize().unwrap().display()));
        assert!(PauseCommand::parse("/no/such/pause -P").unwrap_err().contains("no such file"));
    }

    #[test]
    fn pause_image_tar_holds_exactly_pause_executable_and_owned_by_root() {
        let scratch = tempfile::tempdir().unwrap();
        let pause_binary = fake_pause_binary(scratch.path(), "pause, pretend");
        let cache = tempfile::tempdir().unwrap();

        let image = tarball::build_or_reuse(pause::recipe(&command(&pause_binary)).unwrap(), cache.path()).unwrap();

        assert_eq!(image.name, "podlab/pause");
        assert_eq!(image.changes, ["USER 65535:65535", r#"ENTRYPOINT ["/pause"]"#]);
        assert_eq!(list_tar(fs::File::open(&image.tar).unwrap()), ["file 755 0/0 14 0 pause"]);
    }

    #[test]
    fn a_second_build_reuses_the_tar_without_rebuilding() {
        let scratch = tempfile::tempdir().unwrap();
        let pause_binary = fake_pause_binary(scratch.path(), "pause, pretend");
        let cache = tempfile::tempdir().unwrap();

        let first = tarball::build_or_reuse(pause::recipe(&command(&pause_binary)).unwrap(), cache.path()).unwrap();
        let first_metadata = fs::metadata(&first.tar).unwrap();
        let second = tarball::build_or_reuse(pause::recipe(&command(&pause_binary)).unwrap(), cache.path()).unwrap();
        let second_metadata = fs::metadata(&second.tar).unwrap();

        assert_eq!(first.tar, second.tar);
        let name = first.tar.file_name().unwrap().to_str().unwrap();
        assert!(regex::Regex::new(r"^podlab-pause-[0-9a-f]{16}\.tar$").unwrap().is_match(name), "odd name {name}");
        // A rebuild would have renamed a new file over this one: another inode and another mtime.
        assert_eq!(
            (first_metadata.ino(), first_metadata.modified().unwrap()),
            (second_metadata.ino(), second_metadata.modified().unwrap())
        );
        // Nothing is left of the temporary tar.
        assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_changed_pause_binary_gets_a_new_tar_and_the_old_one_stays_for_a_while() {
        let scratch = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let pause_binary = fake_pause_binary(scratch.path(), "pause, pretend");
        let old = tarball::build_or_reuse(pause::recipe(&command(&pause_binary)).unwrap(), cache.path()).unwrap();

        // A different size is a different key even within the same second as the first build.
        fake_pause_binary(scratch.path(), "pause, rebuilt");
        let new = tarball::build_or_reuse(pause::recipe(&command(&pause_binary)).unwrap(), cache.path()).unwrap();

        assert_ne!(old.tar, new.tar);
        // A run side by side may still be about to import it.
        assert!(old.tar.is_file(), "the old tar {} is gone", old.tar.display());
        assert!(new.tar.is_file());
    }

    #[test]
    fn a_dynamically_linked_pause_is_refused_with_the_reason() {
        // The test binary links libc dynamically: exactly the kind of pause that would fail in a FROM-scratch image.
        let dynamic_binary = std::env::current_exe().unwrap();
        let error =
            pause::recipe(&command(&dynamic_binary)).err().expect("a dynamic pause must be refused").to_string();
        assert!(error.contains("is dynamically linked"), "unexpected error: {error}");
    }

    #[test]
    fn a_missing_host_program_names_its_package() {
        let absent =
            HostProgram { name: "podlab-no-such-nginx", path: "/nonexistent/podlab/nginx", package: "nginx-light" };
        let error = absent.require().unwrap_err().to_string();
        assert_eq!(
            error,
            "podlab-no-such-nginx not found at /nonexistent/podlab/nginx nor on PATH: install it with apt-get install nginx-light"
        );
    }

    /// Runs `argv` inside an extracted image with `chroot`, in fresh mount, PID, IPC, network and UTS
    /// namespaces: /proc is the namespace's own, nothing can reach the host's network or shared memory,
    /// and every process left behind dies with the namespace's first process. The host's /dev/null is
    /// bound over the image's, as a container runtime would provide one (busybox sh points background jobs
    /// at it); the bind, like the /proc mount, vanishes with the mount namespace.
    fn run_in_image(root: &Path, mounts: &[(PathBuf, String)], argv: &[&str]) -> Output {
        // The image's host files are bound over empty files at their paths, as a runtime mounts them.
        let mut script = String::from(r#"mount --bind /dev/null "$0/dev/null""#);
        for (source, target) in mounts {
            script.push_str(&format!(
                r#" && touch "$0{target}" && mount --bind -o ro "{}" "$0{target}""#,
                source.display()
            ));
        }
        script.push_str(r#" && exec chroot "$0" "$@""#);
        let output = Command::new("timeout")
            .args(["60", "unshare", "--mount", "--pid", "--ipc", "--net", "--uts", "--fork", "--kill-child"])
            .arg(format!("--mount-proc={}", root.join("proc").display()))
            .args(["/bin/sh", "-c", &script])
            .arg(root)
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        eprintln!(
            "$ {}\nexit: {}\nstdout: {}\nstderr: {}",
            argv.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn assert_succeeds_printing(
        root: &Path,
        mounts: &[(PathBuf, String)],
        argv: &[&str],
        expected_stdout: &str,
    ) -> String {
        let output = run_in_image(root, mounts, argv);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "`{}` failed in {}: see its output above", argv.join(" "), root.display());
        assert!(stdout.contains(expected_stdout), "`{}` printed no {expected_stdout:?}: {stdout:?}", argv.join(" "));
        stdout
    }

    /// Extracts an image tar as `docker import` would, plus the mount points `run_in_image` needs.
    fn extract(image: &ImageTar) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        unpack(fs::File::open(&image.tar).unwrap(), root.path());
        fs::create_dir(root.path().join("proc")).unwrap();
        fs::create_dir(root.path().join("dev")).unwrap();
        fs::write(root.path().join("dev/null"), b"").unwrap();
        root
    }

    /// Checks the toolbox both app images share: the shell, `ps` on the namespace's /proc, and System V
    /// shared memory made with `ipcmk` and seen by `ipcs`.
    fn assert_toolbox_works(root: &Path) {
        assert_succeeds_printing(root, &[], &["/bin/ps"], "PID");
        assert_succeeds_printing(root, &[], &["/usr/bin/ipcs", "-m"], "Shared Memory Segments");
        assert_succeeds_printing(root, &[], &["/bin/sh", "-c", "ipcmk -M 4096 && ipcs -m"], "4096");
        assert_succeeds_printing(
            root,
            &[],
            &["/bin/sh", "-c", "id www-data && hostname pod && hostname"],
            "uid=33(www-data)",
        );
        let tmp_mode = fs::metadata(root.join("tmp")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(tmp_mode, 0o1777, "/tmp has mode {tmp_mode:o}");
    }

    /// A shell script for inside the image: starts a server in the background, fetches `url` until it
    /// answers (15 s at most), stops the server with SIGTERM and prints its exit status.
    fn serve_fetch_and_stop(server_command: &str, url: &str) -> String {
        format!(
            r#"
            ip link set lo up
            {server_command} &
            server=$!
            tries=0
            until wget -qO- {url}; do
                tries=$((tries + 1))
                [ "$tries" -lt 150 ] || exit 97
                sleep 0.1
            done
            kill -TERM "$server"
            wait "$server"
            echo "server exit status $?"
            "#
        )
    }

    /// The effective user id, second on the `Uid:` line of /proc/self/status, is 0.
    fn running_as_root() -> bool {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let uid_line = status.lines().find(|line| line.starts_with("Uid:")).unwrap();
        uid_line.split_whitespace().nth(2) == Some("0")
    }

    #[test]
    fn app_images_run_from_their_own_files_and_the_host_files_they_name() {
        if !running_as_root() {
            eprintln!("skipped: chroot and unshare need root, and this test runs as another user");
            return;
        }
        let missing = missing_prerequisites();
        if !missing.is_empty() {
            let packages: Vec<&str> = missing.iter().map(|(_, package)| package.as_str()).collect();
            eprintln!("skipped: this host lacks {missing:?}: install them with apt-get install {}", packages.join(" "));
            return;
        }
        let scratch = tempfile::tempdir().unwrap();
        let pause_binary = fake_pause_binary(scratch.path(), "pause, pretend");
        let cache = tempfile::tempdir().unwrap();

        let images = build_all(&command(&pause_binary), cache.path()).unwrap();
        let names: Vec<&str> = images.iter().map(|image| image.name).collect();
        assert_eq!(names, ["podlab/pause", "podlab/nginx", "podlab/ghost-standin"]);
        let modified: Vec<_> =
            images.iter().map(|image| fs::metadata(&image.tar).unwrap().modified().unwrap()).collect();
        let cached = build_all(&command(&pause_binary), cache.path()).unwrap();
        let cached_modified: Vec<_> =
            cached.iter().map(|image| fs::metadata(&image.tar).unwrap().modified().unwrap()).collect();
        assert_eq!(modified, cached_modified, "the second build_all rebuilt an image");

        let nginx = extract(&images[1]);
        let nginx_root = nginx.path();
        let test_output = run_in_image(nginx_root, &[], &["/usr/sbin/nginx", "-t", "-c", "/etc/nginx/nginx.conf"]);
        assert!(test_output.status.success(), "nginx -t failed in {}: see its output above", nginx_root.display());
        assert!(String::from_utf8_lossy(&test_output.stderr).contains("test is successful"));
        // Started as the image's entrypoint starts it: a daemonizing nginx would want /dev/null, which only
        // a container runtime provides.
        let stdout = assert_succeeds_printing(
            nginx_root,
            &[],
            &["/bin/sh", "-c", &serve_fetch_and_stop(r#"/usr/sbin/nginx -g "daemon off;""#, "http://127.0.0.1/")],
            "podlab nginx: it works",
        );
        assert!(stdout.contains("server exit status 0"), "nginx did not exit cleanly on SIGTERM: {stdout:?}");
        assert_toolbox_works(nginx_root);

        // The ghost stand-in runs this machine's node, mounted as its runtime mounts it; without
        // it, nothing in the image can run the server.
        let ghost = extract(&images[2]);
        let ghost_root = ghost.path();
        let node = host_files(images[2].name).unwrap();
        assert_eq!(node, [(Path::new("/usr/bin/node").canonicalize().unwrap(), "/usr/bin/node".to_string())]);
        assert!(!run_in_image(ghost_root, &[], &["/usr/bin/node", "--version"]).status.success());
        let host_node_version = Command::new("/usr/bin/node").arg("--version").output().unwrap().stdout;
        let host_node_version = String::from_utf8(host_node_version).unwrap().trim().to_string();
        let version = assert_succeeds_printing(
            ghost_root,
            &node,
            &["/usr/bin/node", "-e", "process.stdout.write(process.version)"],
            "v",
        );
        assert_eq!(version, host_node_version);
        let stdout = assert_succeeds_printing(
            ghost_root,
            &node,
            &["/bin/sh", "-c", &serve_fetch_and_stop("/usr/bin/node /app/server.js", "http://127.0.0.1:2368/any/path")],
            "ghost stand-in",
        );
        assert!(stdout.contains(&format!("(node {host_node_version})")), "no node version in {stdout:?}");
        assert!(stdout.contains("got SIGTERM, shutting down\nserver exit status 0"), "no clean exit in {stdout:?}");
        assert_toolbox_works(ghost_root);
    }
}
