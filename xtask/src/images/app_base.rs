//! What every app image (nginx, the ghost stand-in) carries besides its program: the accounts its programs
//! look up, a writable /tmp, and a toolbox for the tests that exec into the container.
//!
//! The toolbox is busybox for the shell and the usual tools (`ps`, `ip`, `hostname`, `readlink`, `wget`, ...)
//! and util-linux's `ipcmk` and `ipcs`, which create and list System V shared memory: that is how a test
//! proves two containers share an IPC namespace. busybox has no `ipcmk`, hence util-linux.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::rootfs::Rootfs;
use super::{HOST_COMMAND_DEADLINE, HostProgram};
use crate::cancel::Cancel;
use crate::command;

pub const BUSYBOX: HostProgram = HostProgram { name: "busybox", path: "/bin/busybox", package: "busybox-static" };
pub const IPCMK: HostProgram = HostProgram { name: "ipcmk", path: "/usr/bin/ipcmk", package: "util-linux" };
pub const IPCS: HostProgram = HostProgram { name: "ipcs", path: "/usr/bin/ipcs", package: "util-linux" };

/// The busybox applets the tests call, each linked as `/bin/NAME`.
const BUSYBOX_APPLETS: [&str; 14] =
    ["sh", "ps", "cat", "hostname", "ip", "ls", "sleep", "wget", "readlink", "kill", "id", "grep", "echo", "true"];

/// Debian's numbers for these accounts, so that files and processes show the names a Debian user expects.
const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
const GROUP: &str = "\
root:x:0:
www-data:x:33:
nogroup:x:65534:
";
/// glibc's lookups without an nsswitch.conf depend on its version; saying `files` makes them plain.
/// Both `files` and `dns` live inside libc.so.6 since glibc 2.34, so no NSS module needs to be copied.
const NSSWITCH: &str = "\
passwd: files
group: files
shadow: files
hosts: files dns
";

/// Adds the accounts, /tmp and the toolbox to an app image.
pub fn add_app_base(rootfs: &mut Rootfs) -> Result<()> {
    rootfs.add_file("/etc/passwd", PASSWD, 0o644)?;
    rootfs.add_file("/etc/group", GROUP, 0o644)?;
    rootfs.add_file("/etc/nsswitch.conf", NSSWITCH, 0o644)?;
    rootfs.add_directory("/tmp", 0o1777)?;

    require_applets(&BUSYBOX.require()?)?;
    // Copied as a program: Debian's busybox-static needs no library, but a dynamic busybox brings its own.
    BUSYBOX.add_to(rootfs)?;
    for applet in BUSYBOX_APPLETS {
        rootfs.add_symlink(Path::new("/bin").join(applet), "busybox")?;
    }
    IPCMK.add_to(rootfs)?;
    IPCS.add_to(rootfs)?;
    Ok(())
}

/// A busybox built without one of the applets would give a test "applet not found" deep inside a pod;
/// saying so while building is clearer.
fn require_applets(busybox: &Path) -> Result<()> {
    let busybox_text =
        busybox.to_str().with_context(|| format!("{} is not UTF-8: install busybox-static", busybox.display()))?;
    // A question of milliseconds to this machine, asked while an image's files are gathered:
    // not cut short, a Ctrl-C is seen at the run's next wait.
    let output = command::run(&command::argv(&[busybox_text, "--list"]), HOST_COMMAND_DEADLINE, Cancel::NEVER)
        .with_context(|| format!("cannot run {busybox_text} --list: install busybox-static"))?;
    let applets = output.stdout_text();
    let missing: Vec<&str> =
        BUSYBOX_APPLETS.into_iter().filter(|wanted| !applets.lines().any(|applet| applet == *wanted)).collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks the applets {}: install Debian's busybox with apt-get install busybox-static",
            busybox.display(),
            missing.join(", ")
        );
    }
    Ok(())
}
