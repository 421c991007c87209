//! The pods' CNI network, as the cri and podman runtimes both give it to their pods: one
//! conflist, written for the run, in a directory of the run's own.

use std::path::Path;

use anyhow::{Context, Result};

/// The network's name: portmap names it in its nat rules, which `cargo xtask clean` looks for.
pub const NETWORK: &str = "podlab";

/// The conflist's file name in its directory.
pub const FILE_NAME: &str = "10-podlab.conflist";

/// In the guest: the pods' bridge and its subnet (the guest has no other network, and one
/// runtime).
pub const GUEST_BRIDGE: &str = "podlab0";
pub const GUEST_PREFIX: &str = "10.213.0";

/// The shell lines that make the guest's bridge, holding `GUEST_PREFIX.1`.
pub fn guest_bridge_script() -> String {
    format!(
        "busybox ip link add {GUEST_BRIDGE} type bridge\nbusybox ip address add {GUEST_PREFIX}.1/24 dev {GUEST_BRIDGE}\nbusybox ip link set {GUEST_BRIDGE} up\n"
    )
}

/// A bridge (`bridge`, which holds `prefix.1`), host-local addresses from `prefix.0/24` kept in
/// `ipam_dir` (its default, /var/lib/cni, is shared with every other CNI user), a default route
/// through the bridge, ports published by portmap. `isGateway` stays false: true turns on the
/// host's ip_forward, and the bridge already has its address. No masquerading and no firewall
/// plugin (Podman's default network has one, which adds filter chains that outlive the run):
/// nothing leaves the machine.
pub fn conflist(ipam_dir: &Path, bridge: &str, prefix: &str) -> String {
    let conflist = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": false,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir,
                    "ranges": [[{ "subnet": format!("{prefix}.0/24"), "gateway": format!("{prefix}.1") }]],
                    "routes": [{ "dst": "0.0.0.0/0", "gw": format!("{prefix}.1") }]
                }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
            { "type": "loopback" }
        ]
    });
    serde_json::to_string_pretty(&conflist).unwrap_or_default()
}

/// The shell lines that write the conflist into `dir` in the guest, by a rename: a runtime that
/// watches the directory (containerd) would read a half-written file.
pub fn write_script(dir: &Path, ipam_dir: &Path, bridge: &str, prefix: &str) -> String {
    let file = dir.join(FILE_NAME);
    format!(
        "cat > {file}.partial <<'EOF'\n{network}\nEOF\nbusybox mv {file}.partial {file}\n",
        file = file.display(),
        network = conflist(ipam_dir, bridge, prefix),
    )
}

/// The same on this machine.
pub fn write_file(dir: &Path, ipam_dir: &Path, bridge: &str, prefix: &str) -> Result<()> {
    let file = dir.join(FILE_NAME);
    let partial = file.with_extension("partial");
    std::fs::write(&partial, conflist(ipam_dir, bridge, prefix))
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &file).with_context(|| format!("cannot rename {}", partial.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_changes_no_host_setting() {
        let conflist: serde_json::Value =
            serde_json::from_str(&conflist(Path::new("/tmp/podlab-cri-1-x/ipam"), "podlab1", "10.213.7")).unwrap();
        let plugins: Vec<&str> =
            conflist["plugins"].as_array().unwrap().iter().map(|plugin| plugin["type"].as_str().unwrap()).collect();
        assert_eq!(plugins, ["bridge", "portmap", "loopback"], "no firewall plugin, no tuning");
        let bridge = &conflist["plugins"][0];
        assert_eq!(bridge["bridge"], "podlab1");
        // isGateway would turn on the host's ip_forward; ipMasq would add nat rules.
        assert_eq!((bridge["isGateway"].as_bool(), bridge["ipMasq"].as_bool()), (Some(false), Some(false)));
        assert_eq!(bridge["ipam"]["dataDir"], "/tmp/podlab-cri-1-x/ipam");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.213.7.0/24");
    }
}
