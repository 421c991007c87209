//! `podlab/ghost-standin`: a Node.js server on Ghost's port, run by the node of the machine the
//! pod runs on.
//!
//! Ghost 6 needs Node 22 or later and this host has an older node, so this image is honestly a stand-in:
//! its every answer says "ghost stand-in" and which node runs it. The image holds the server and
//! node's libraries, not node: a container of it gets this machine's node read-only at
//! /usr/bin/node (`host_files`; in the guest, the guest's root is this machine's). Node is a 99 MB
//! static binary that every guest already has on its root: carried in the image, its import
//! was the run's largest (7 to 18 s of guest CPU under TCG, by runtime).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::app_base::add_app_base;
use super::rootfs::Rootfs;
use super::{HostProgram, Recipe};

pub const NAME: &str = "podlab/ghost-standin";

pub const NODE: HostProgram = HostProgram { name: "node", path: "/usr/bin/node", package: "nodejs" };

/// Bumped when this recipe changes what it builds in a way its inputs do not show.
const VERSION: u32 = 2;

const SERVER_SCRIPT: &str = include_str!("ghost_standin_server.js");

/// What a container of this image mounts from the host, read-only: (host path, container path).
pub fn host_files() -> Result<Vec<(PathBuf, String)>> {
    let node = NODE.require()?;
    let node = node.canonicalize().with_context(|| format!("cannot resolve {}", node.display()))?;
    Ok(vec![(node, NODE.path.to_string())])
}

pub fn recipe() -> Result<Recipe> {
    let mut rootfs = Rootfs::new();
    rootfs.add_libraries_of(&NODE.require()?)?;
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
