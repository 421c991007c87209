//! `podlab/ghost-standin`: a Node.js server on Ghost's port, built from the host's node.
//!
//! Ghost 6 needs Node 22 or later and this host has an older node, so this image is honestly a stand-in:
//! its every answer says "ghost stand-in" and which node runs it. With network access a scenario may
//! use the real `ghost` image instead.

use anyhow::Result;

use super::app_base::add_app_base;
use super::rootfs::Rootfs;
use super::{HostProgram, Recipe};

pub const NAME: &str = "podlab/ghost-standin";

pub const NODE: HostProgram = HostProgram { name: "node", path: "/usr/bin/node", package: "nodejs" };

/// Bumped when this recipe changes what it builds in a way its inputs do not show.
const VERSION: u32 = 1;

const SERVER_SCRIPT: &str = include_str!("ghost_standin_server.js");

pub fn recipe() -> Result<Recipe> {
    let mut rootfs = Rootfs::new();
    NODE.add_to(&mut rootfs)?;
    add_app_base(&mut rootfs)?;
    rootfs.add_file("/app/server.js", SERVER_SCRIPT, 0o644)?;
    Ok(Recipe {
        name: NAME,
        version: VERSION,
        rootfs,
        changes: vec![
            r#"ENTRYPOINT ["/usr/bin/node", "/app/server.js"]"#.to_string(),
            "ENV NODE_ENV=production".to_string(),
        ],
    })
}
