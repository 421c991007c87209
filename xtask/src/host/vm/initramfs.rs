//! The guest's initramfs, made on the fly as an uncompressed `newc` cpio archive: a static
//! busybox, vm/init, and the kernel modules the root needs. A few MB; built in milliseconds.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::kernel::{self, Kernel};

const BUSYBOX: &str = "/bin/busybox";

/// Builds the initramfs for `kernel` into `destination`.
pub fn build(kernel: &Kernel, init_script: &Path, destination: &Path) -> Result<()> {
    if crate::images::program_interpreter(Path::new(BUSYBOX))?.is_some() {
        bail!("{BUSYBOX} is dynamically linked: the initramfs needs a static one (apt-get install busybox-static)");
    }
    let mut archive = Cpio::default();
    for directory in ["/bin", "/dev", "/proc", "/sys", "/lib", "/lib/modules", "/host", "/overlay", "/root"] {
        archive.directory(directory);
    }
    // The kernel opens /dev/console for init before anything is mounted.
    archive.character_device("/dev/console", 5, 1);
    archive.file("/bin/busybox", 0o755, &std::fs::read(BUSYBOX).with_context(|| format!("cannot read {BUSYBOX}"))?);
    archive.symlink("/bin/sh", "busybox");
    let init = std::fs::read(init_script).with_context(|| format!("cannot read {}", init_script.display()))?;
    archive.file("/init", 0o755, &init);
    let mut load_order = Vec::new();
    for module in kernel::module_load_order(&kernel.modules_dir, kernel::EARLY_MODULES)? {
        let name = module.file_name().context("a module path without a file name")?.to_string_lossy().into_owned();
        let bytes = std::fs::read(kernel.modules_dir.join(&module))
            .with_context(|| format!("cannot read module {}", module.display()))?;
        archive.file(&format!("/lib/modules/{name}"), 0o644, &bytes);
        load_order.push(name);
    }
    archive.file("/modules", 0o644, format!("{}\n", load_order.join("\n")).as_bytes());
    std::fs::write(destination, archive.finish()).with_context(|| format!("cannot write {}", destination.display()))
}

/// A `newc` (SVR4, no CRC) cpio writer: the format the kernel unpacks into its rootfs.
#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    next_inode: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

impl Cpio {
    fn directory(&mut self, path: &str) {
        self.entry(path, S_IFDIR | 0o755, (0, 0), &[]);
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.entry(path, S_IFREG | mode, (0, 0), data);
    }

    fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes());
    }

    fn character_device(&mut self, path: &str, major: u32, minor: u32) {
        self.entry(path, S_IFCHR | 0o600, (major, minor), &[]);
    }

    fn entry(&mut self, path: &str, mode: u32, device: (u32, u32), data: &[u8]) {
        self.next_inode += 1;
        let name = path.trim_start_matches('/');
        let fields = [
            self.next_inode,
            mode,
            0,                                       // uid
            0,                                       // gid
            if mode & S_IFDIR != 0 { 2 } else { 1 }, // nlink
            0,                                       // mtime
            data.len() as u32,
            0, // devmajor
            0, // devminor
            device.0,
            device.1,
            name.len() as u32 + 1,
            0, // check
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// GNU cpio (or busybox cpio) must read back what we wrote.
    #[test]
    fn busybox_cpio_lists_what_was_written() {
        let mut archive = Cpio::default();
        archive.directory("/bin");
        archive.file("/bin/hello", 0o755, b"#!/bin/sh\necho hi\n");
        archive.symlink("/bin/sh", "busybox");
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("initramfs.cpio");
        std::fs::write(&path, archive.finish()).unwrap();
        let listing = Command::new("busybox").args(["cpio", "-t", "-F"]).arg(&path).output().unwrap();
        assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
        assert_eq!(String::from_utf8_lossy(&listing.stdout), "bin\nbin/hello\nbin/sh\n");
    }
}
