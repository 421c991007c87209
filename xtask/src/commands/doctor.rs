//! `cargo xtask doctor`: which prerequisites of `cargo xtask test` are missing here, and
//! the command that installs them.

use anyhow::{Result, bail};

use crate::{images, runtime};

/// (program, Debian package, what needs it): what every runtime needs; each runtime's own
/// programs come from the registry (`runtime::RUNTIMES`).
const BUILD: &[(&str, &str, &str)] =
    &[("protoc", "protobuf-compiler", "building the harness: the k8s-cri crate compiles the CRI protocol")];
const STEPS_AND_GUEST: &[(&str, &str, &str)] = &[
    ("ip", "iproute2", "the private daemon's bridge; same-ip reads eth0"),
    ("nsenter", "util-linux", "same-ip and same-hostname look inside each container's namespaces"),
    ("ps", "procps", "no-zombies lists the processes of a PID namespace"),
    ("curl", "curl", "http steps ask the pod's published port"),
    ("qemu-system-x86_64", "qemu-system-x86", "the vm host (the default) boots its guest with it"),
    ("xz", "xz-utils", "the vm host unpacks the guest's kernel once, for a faster boot"),
];

/// Every program to look for, each once, in the order it is listed: the build's, each
/// runtime's in the registry's order, then the steps' and the guest's.
fn programs() -> Vec<(&'static str, &'static str, &'static str)> {
    let runtimes = runtime::RUNTIMES.iter().flat_map(|runtime| runtime.needs().iter());
    let mut programs: Vec<(&str, &str, &str)> = Vec::new();
    for &need in BUILD.iter().chain(runtimes).chain(STEPS_AND_GUEST) {
        if !programs.iter().any(|(program, _, _)| *program == need.0) {
            programs.push(need);
        }
    }
    programs
}

pub fn run() -> Result<()> {
    let mut missing_packages = Vec::new();
    for (program, package, why) in programs() {
        let found = crate::command::find_program(program).is_some();
        println!("{} {program:<11} {why}", if found { "ok     " } else { "MISSING" });
        if !found {
            missing_packages.push(package.to_string());
        }
    }
    match crate::host::vm::kernel::find(None) {
        Ok(kernel) => println!("ok      kernel      {} for the vm host's guest", kernel.image.display()),
        Err(_) => {
            println!("MISSING kernel      no /boot/vmlinuz-* with its /lib/modules for the vm host's guest");
            missing_packages.push("linux-image-amd64".to_string());
        }
    }
    for (what, package) in images::missing_prerequisites() {
        println!("MISSING {what}");
        missing_packages.push(package);
    }
    // Only the opt-in scenarios need them: said, not counted.
    for (what, package) in images::missing_for_on_demand() {
        println!("missing {what}: only the opt-in scenarios need it (apt-get install {package})");
    }
    let root = nix::unistd::geteuid().is_root();
    let docker_host = std::env::var("DOCKER_HOST").ok();
    match (root, &docker_host) {
        (true, _) => println!("ok      root        the private daemon needs root"),
        (false, Some(host)) => println!("ok      DOCKER_HOST {host} (not root: the tests use that daemon)"),
        (false, None) => println!("MISSING root        run as root, or point DOCKER_HOST at a daemon you may use"),
    }
    missing_packages.sort();
    missing_packages.dedup();
    if missing_packages.is_empty() && (root || docker_host.is_some()) {
        println!("\neverything cargo xtask test needs is here");
        return Ok(());
    }
    if !missing_packages.is_empty() {
        println!("\ninstall what is missing with:\n  sudo apt-get install {}", missing_packages.join(" "));
    }
    bail!("prerequisites are missing (see above)")
}
