//! The guest's kernel and the modules its root needs, resolved from `modules.dep`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cancel::Cancel;
use crate::command;

/// Modules the initramfs loads first: for the root (9p, overlay), the agent's port, and the
/// host's entropy (virtio-rng: the guest's random number generator ready at once).
pub const EARLY_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay", "virtio_console", "virtio_rng"];

pub struct Kernel {
    pub image: PathBuf,
    pub release: String,
    pub modules_dir: PathBuf,
}

/// `explicit` if given, else the newest `/boot/vmlinuz-*` that has its `/lib/modules`.
pub fn find(explicit: Option<&Path>) -> Result<Kernel> {
    if let Some(image) = explicit {
        let release = release_of(image).with_context(|| {
            format!("{}: cannot tell the kernel release from the name (expected vmlinuz-RELEASE)", image.display())
        })?;
        let modules_dir = Path::new("/lib/modules").join(&release);
        if !modules_dir.join("modules.dep").is_file() {
            bail!(
                "{}: no {}/modules.dep: the guest loads its modules from there",
                image.display(),
                modules_dir.display()
            );
        }
        return Ok(Kernel { image: image.to_path_buf(), release, modules_dir });
    }
    let mut candidates: Vec<Kernel> = std::fs::read_dir("/boot")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let image = entry.path();
            let release = release_of(&image)?;
            let modules_dir = Path::new("/lib/modules").join(&release);
            modules_dir.join("modules.dep").is_file().then_some(Kernel { image, release, modules_dir })
        })
        .collect();
    candidates.sort_by_key(|candidate| version_key(&candidate.release));
    candidates.pop().context(
        "no kernel for the guest: no /boot/vmlinuz-* with its /lib/modules; \
         install one with apt-get install linux-image-amd64, or pass --kernel PATH",
    )
}

fn release_of(image: &Path) -> Option<String> {
    let name = image.file_name()?.to_str()?;
    name.strip_prefix("vmlinuz-").map(str::to_string)
}

/// `6.1.0-57-amd64` sorts by its numbers: 6, 1, 0, 57.
fn version_key(release: &str) -> Vec<u64> {
    release.split(|c: char| !c.is_ascii_digit()).filter_map(|part| part.parse().ok()).collect()
}

/// The kernel as an uncompressed ELF `vmlinux`, cached in `cache_dir`, which QEMU boots
/// through its PVH entry point. Under TCG, the bzImage's own decompressor costs about 3 s of
/// every boot (measured here: 5.5 s to init from the bzImage, 2.5 s from the ELF); `xz` on the
/// host does the same work once, in 0.6 s. `None` when the kernel cannot be unpacked so (not
/// xz-compressed, no `xz` program, or no PVH entry): the caller boots the bzImage instead.
pub fn uncompressed(kernel: &Kernel, cache_dir: &Path, cancel: Cancel) -> Result<Option<PathBuf>> {
    use std::hash::{Hash, Hasher};
    let metadata =
        std::fs::metadata(&kernel.image).with_context(|| format!("cannot read {}", kernel.image.display()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&kernel.image, metadata.len(), metadata.modified().ok()).hash(&mut hasher);
    let cached = cache_dir.join(format!("vmlinux-{}-{:016x}", kernel.release, hasher.finish()));
    if cached.is_file() {
        return Ok(Some(cached));
    }
    let image = std::fs::read(&kernel.image).with_context(|| format!("cannot read {}", kernel.image.display()))?;
    let Some(start) = image.windows(6).position(|window| window == b"\xfd7zXZ\0") else { return Ok(None) };
    let unpack = command::argv(&["xz", "--decompress", "--stdout", "--single-stream"]);
    let payload = command::Input::Bytes(image[start..].to_vec());
    // No `xz` (or it fails): the bzImage boots all the same, only slower.
    let Ok(output) = command::run_fed(&unpack, payload, Duration::from_secs(120), cancel) else { return Ok(None) };
    let unpacked = output.success();
    let elf = output.stdout;
    // An ELF whose notes hold Xen's PHYS32_ENTRY (type 18) is what QEMU's PVH boot needs.
    let has_pvh_entry = elf.starts_with(b"\x7fELF") && elf.windows(4).any(|window| window == b"Xen\0");
    if !unpacked || !has_pvh_entry {
        return Ok(None);
    }
    std::fs::create_dir_all(cache_dir)?;
    let partial = cached.with_extension("partial");
    std::fs::write(&partial, &elf).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &cached)?;
    Ok(Some(cached))
}

/// The module files (relative to `modules_dir`) to load for `wanted`, dependencies first;
/// modules built into the kernel are left out.
pub fn module_load_order(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>> {
    let dep_path = modules_dir.join("modules.dep");
    let modules_dep =
        std::fs::read_to_string(&dep_path).with_context(|| format!("cannot read {}", dep_path.display()))?;
    let builtin = std::fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
    let builtin: BTreeSet<String> = builtin.lines().map(module_name).collect();
    let dependencies: Vec<(String, String, Vec<String>)> = modules_dep
        .lines()
        .filter_map(|line| {
            let (path, deps) = line.split_once(':')?;
            Some((module_name(path), path.to_string(), deps.split_whitespace().map(str::to_string).collect()))
        })
        .collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for name in wanted {
        let name = name.replace('-', "_");
        if builtin.contains(&name) {
            continue;
        }
        let (_, path, _) = dependencies
            .iter()
            .find(|(module, _, _)| *module == name)
            .with_context(|| format!("module {name} is neither in {} nor built in", dep_path.display()))?;
        add_with_dependencies(path, &dependencies, &mut seen, &mut order);
    }
    if let Some(compressed) = order.iter().find(|path| !path.to_string_lossy().ends_with(".ko")) {
        bail!("{} is compressed; the initramfs's busybox insmod loads plain .ko files only", compressed.display());
    }
    Ok(order)
}

fn add_with_dependencies(
    path: &str,
    dependencies: &[(String, String, Vec<String>)],
    seen: &mut BTreeSet<String>,
    order: &mut Vec<PathBuf>,
) {
    if !seen.insert(path.to_string()) {
        return;
    }
    if let Some((_, _, deps)) = dependencies.iter().find(|(_, module_path, _)| module_path == path) {
        for dep in deps {
            add_with_dependencies(dep, dependencies, seen, order);
        }
    }
    order.push(PathBuf::from(path));
}

/// `kernel/net/9p/9pnet_virtio.ko` -> `9pnet_virtio` (dashes and underscores are one to the kernel).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_builtins_are_skipped() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(
            directory.path().join("modules.dep"),
            "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n\
             kernel/net/9p/9pnet.ko:\n\
             kernel/fs/netfs/netfs.ko:\n\
             kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/virtio/virtio_ring.ko:\n",
        )
        .unwrap();
        std::fs::write(directory.path().join("modules.builtin"), "kernel/fs/overlayfs/overlay.ko\n").unwrap();
        let order = module_load_order(directory.path(), &["9pnet_virtio", "9p", "overlay"]).unwrap();
        let order: Vec<String> = order.iter().map(|path| path.display().to_string()).collect();
        assert_eq!(
            order,
            [
                "kernel/net/9p/9pnet.ko",
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/net/9p/9pnet_virtio.ko",
                "kernel/fs/netfs/netfs.ko",
                "kernel/fs/9p/9p.ko"
            ]
        );
        let error = module_load_order(directory.path(), &["nope"]).unwrap_err().to_string();
        assert!(error.starts_with("module nope is neither in"), "{error}");
    }

    #[test]
    fn newest_release_wins() {
        let mut releases = ["6.1.0-9-amd64", "6.1.0-57-amd64", "5.10.0-30-amd64"];
        releases.sort_by_key(|release| version_key(release));
        assert_eq!(releases, ["5.10.0-30-amd64", "6.1.0-9-amd64", "6.1.0-57-amd64"]);
    }
}
