//! `podlab/nginx`: the host's real nginx (Debian's nginx-light) with its libraries, a default
//! configuration, the directories it writes to, and the app toolbox.

use anyhow::Result;

use super::app_base::add_app_base;
use super::rootfs::Rootfs;
use super::{HostProgram, Recipe};

pub const NAME: &str = "podlab/nginx";

pub const NGINX: HostProgram = HostProgram { name: "nginx", path: "/usr/sbin/nginx", package: "nginx-light" };

/// Bumped when this recipe changes what it builds in a way its inputs do not show.
const VERSION: u32 = 1;

/// Serves a small page on port 80 and logs to stderr; scenarios mount their own over it.
const DEFAULT_CONFIGURATION: &str = include_str!("nginx.conf");

pub fn recipe() -> Result<Recipe> {
    let mut rootfs = Rootfs::new();
    NGINX.add_to(&mut rootfs)?;
    add_app_base(&mut rootfs)?;
    rootfs.add_file("/etc/nginx/nginx.conf", DEFAULT_CONFIGURATION, 0o644)?;
    // Debian's nginx is built with its temporary files under /var/lib/nginx, its default logs under
    // /var/log/nginx and its pid file in /run: each must exist even when the configuration logs elsewhere.
    for directory in ["/var/lib/nginx", "/var/log/nginx", "/run", "/etc/nginx"] {
        rootfs.add_directory(directory, 0o755)?;
    }
    Ok(Recipe {
        name: NAME,
        version: VERSION,
        rootfs,
        // `daemon off;` comes from the command line, as in the official image, so that a mounted
        // configuration cannot make nginx fork away from PID 1 of its container.
        changes: vec![r#"ENTRYPOINT ["/usr/sbin/nginx", "-g", "daemon off;"]"#.to_string()],
    })
}
