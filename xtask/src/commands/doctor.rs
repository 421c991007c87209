//! `cargo xtask doctor`: which prerequisites of `cargo xtask test` are missing here, and
//! the command that installs them.

use anyhow::{Result, bail};

use crate::images;

/// (program, Debian package, what needs it)
const PROGRAMS: &[(&str, &str, &str)] = &[
    ("protoc", "protobuf-compiler", "building the harness: the k8s-cri crate compiles the CRI protocol"),
    ("docker", "docker.io", "the docker CLI talks to the daemon"),
    ("dockerd", "docker.io", "the docker runtime starts a private daemon on this host"),
    ("containerd", "containerd", "dockerd runs containers through it; the cri runtime is its CRI plugin"),
    ("ctr", "containerd", "the cri runtime imports images, sends signals and reads events with it"),
    (
        "/usr/lib/cni/bridge",
        "containernetworking-plugins",
        "the cri and podman runtimes' pod network (bridge, host-local, portmap, loopback)",
    ),
    ("iptables", "iptables", "CNI's portmap publishes the cri and podman runtimes' ports with it"),
    ("podman", "podman", "the podman runtime makes its pods with it"),
    ("conmon", "conmon", "podman watches each container with it"),
    ("unshare", "util-linux", "podman's image copies on this host run with a /var/lib of their own"),
    ("sha256sum", "coreutils", "the cri runtime's images name their layer by its digest"),
    ("runc", "runc", "containerd and podman start containers with it"),
    ("ip", "iproute2", "the private daemon's bridge; same-ip reads eth0"),
    ("nsenter", "util-linux", "same-ip and same-hostname look inside each container's namespaces"),
    ("ps", "procps", "no-zombies lists the processes of a PID namespace"),
    ("curl", "curl", "http steps ask the pod's published port"),
    ("qemu-system-x86_64", "qemu-system-x86", "the vm host (the default) boots its guest with it"),
    ("xz", "xz-utils", "the vm host unpacks the guest's kernel once, for a faster boot"),
];

pub fn run() -> Result<()> {
    let mut missing_packages = Vec::new();
    for (program, package, why) in PROGRAMS {
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
