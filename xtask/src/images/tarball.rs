//! Turns a recipe into a root filesystem tar in the cache directory, or reuses the tar a previous run left.
//!
//! The tar's name carries a key hashed from everything the recipe is made of, so a changed input (a
//! rebuilt pause, an upgraded nginx) gets a new name and a stale tar is never reused. The tar is written
//! straight from the recipe's description (`Rootfs::write_tar`) under a temporary name and renamed, so an
//! interrupted build never leaves a half tar under the final name.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use regex::Regex;

use super::rootfs::Rootfs;
use super::{ImageTar, Recipe};

/// Bumped when this builder changes how every image is laid out or archived.
/// 2: written by the `tar` crate instead of GNU tar: the same entries, but no padding to a 10 KiB record
/// at the end and the checksums' digits laid out differently.
const BUILDER_VERSION: u32 = 2;

/// The tar crate copies a file 8 KiB at a time; buffering its writes turns the ghost stand-in's 100 MB
/// node into a hundred writes instead of thirteen thousand.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Builds the recipe's tar, or reuses the one already in `cache_dir`, and says which on stderr.
pub fn build_or_reuse(recipe: Recipe, cache_dir: &Path) -> Result<ImageTar> {
    let started = Instant::now();
    let slug = slug(recipe.name);
    let tar = cache_dir.join(format!("{slug}-{}.tar", cache_key(&recipe)?));
    if tar.is_file() {
        eprintln!("image {}: cached", recipe.name);
        return Ok(ImageTar { name: recipe.name, tar, changes: recipe.changes });
    }

    write_into_cache(&tar, |file| {
        write_tar(&recipe.rootfs, file).with_context(|| format!("cannot write the tar of {}", recipe.name))
    })?;
    remove_older_tars(cache_dir, &slug, &tar);

    let size = fs::metadata(&tar).with_context(|| format!("cannot read {}", tar.display()))?.len();
    eprintln!(
        "image {}: built in {:.1} s ({:.1} MB)",
        recipe.name,
        started.elapsed().as_secs_f64(),
        size as f64 / 1_000_000.0
    );
    Ok(ImageTar { name: recipe.name, tar, changes: recipe.changes })
}

/// Writes `path` in the cache under a temporary name and renames it, so that an interrupted
/// write never leaves a half file under the final name (the temporary file is removed when it
/// drops, on error and on a panic alike).
pub(super) fn write_into_cache(path: &Path, write: impl FnOnce(fs::File) -> Result<()>) -> Result<()> {
    let directory = path.parent().context("a cache file without a directory")?;
    let name = path.file_name().and_then(|name| name.to_str()).context("a cache file without a name")?;
    let (file, partial) = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .suffix(".partial")
        .tempfile_in(directory)
        .with_context(|| format!("cannot create a temporary file in {}", directory.display()))?
        .into_parts();
    write(file).with_context(|| format!("cannot write {}", partial.display()))?;
    // tempfile creates files readable by their owner alone; an image hides nothing.
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot make {} readable", partial.display()))?;
    partial.persist(path).with_context(|| format!("cannot rename the new file to {}", path.display()))?;
    Ok(())
}

/// `podlab/nginx` becomes `podlab-nginx`: an image name as a file name.
fn slug(image_name: &str) -> String {
    image_name.replace(['/', ':'], "-")
}

/// 16 hex digits over the builder and recipe versions, the image's name and changes, and every entry of
/// its root filesystem (host files by path, size and modification time). `DefaultHasher` may change with
/// the Rust toolchain: that costs one rebuild, never a wrong reuse within one toolchain.
fn cache_key(recipe: &Recipe) -> Result<String> {
    let mut hasher = DefaultHasher::new();
    (BUILDER_VERSION, recipe.version, recipe.name, &recipe.changes).hash(&mut hasher);
    recipe.rootfs.hash_inputs(&mut hasher)?;
    Ok(format!("{:016x}", hasher.finish()))
}

fn write_tar(rootfs: &Rootfs, file: fs::File) -> Result<()> {
    let mut output = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    rootfs.write_tar(&mut output)?;
    output.flush().context("cannot write the end of the tar: check free space")
}

/// How many keys of one image the cache keeps: runs side by side may test different pauses
/// (`compare`'s columns, two runs at once), and a tar removed under a run that is about to
/// import it fails that run.
const KEYS_KEPT: usize = 4;

/// Removes the tars of the same image but older keys, beyond the `KEYS_KEPT` newest (by when
/// each was built). A tar that cannot be removed costs only disk space, so this warns instead
/// of failing the build.
fn remove_older_tars(cache_dir: &Path, slug: &str, keep: &Path) {
    // The tar, and the docker-archive made from it for containerd (`docker_archive.rs`).
    let pattern = Regex::new(&format!(r"^{}-([0-9a-f]{{16}})(\.docker-archive)?\.tar$", regex::escape(slug)))
        .expect("a valid regex");
    let key_of = |path: &Path| {
        let name = path.file_name()?.to_str()?;
        Some(pattern.captures(name)?.get(1)?.as_str().to_string())
    };
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return;
    };
    let files: Vec<(String, PathBuf)> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter_map(|path| Some((key_of(&path)?, path)))
        .collect();
    // Each key's build time: its newest file's.
    let mut keys: std::collections::BTreeMap<String, std::time::SystemTime> = std::collections::BTreeMap::new();
    for (key, path) in &files {
        let built = fs::metadata(path).and_then(|metadata| metadata.modified()).unwrap_or(std::time::UNIX_EPOCH);
        let newest = keys.entry(key.clone()).or_insert(built);
        *newest = (*newest).max(built);
    }
    let kept_key = key_of(keep);
    let mut by_age: Vec<(std::time::SystemTime, String)> =
        keys.into_iter().filter(|(key, _)| Some(key) != kept_key.as_ref()).map(|(key, built)| (built, key)).collect();
    by_age.sort_by(|a, b| b.cmp(a));
    let removed: Vec<String> = by_age.into_iter().skip(KEYS_KEPT - 1).map(|(_, key)| key).collect();
    for (key, path) in files {
        if removed.contains(&key)
            && let Err(error) = fs::remove_file(&path)
        {
            eprintln!("warning: cannot remove the old image tar {}: {error}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("podlab/ghost-standin"), "podlab-ghost-standin");
        assert_eq!(slug("podlab/nginx:1.22"), "podlab-nginx-1.22");
    }

    /// A recipe with every kind of entry, its one host file at `host_file`.
    fn recipe_of_every_kind(host_file: &Path) -> Recipe {
        let mut rootfs = Rootfs::new();
        rootfs.add_host_file_as("/usr/bin/program", host_file, 0o755).unwrap();
        rootfs.add_file("/etc/passwd", "root:x:0:0::/:/bin/sh\n", 0o644).unwrap();
        rootfs.add_directory("/tmp", 0o1777).unwrap();
        rootfs.add_symlink("/bin/program", "/usr/bin/program").unwrap();
        rootfs.add_file(format!("/usr/share/{}", "n".repeat(120)), "a long name", 0o644).unwrap();
        Recipe { name: "podlab/every-kind", version: 1, rootfs, changes: Vec::new() }
    }

    #[test]
    fn the_same_recipe_gives_the_same_bytes_whatever_the_host_file_times() {
        let host = tempfile::tempdir().unwrap();
        let host_file = host.path().join("program");
        fs::write(&host_file, vec![7u8; 100_000]).unwrap();
        let first_cache = tempfile::tempdir().unwrap();
        let first = build_or_reuse(recipe_of_every_kind(&host_file), first_cache.path()).unwrap();

        // A later time on the host file is a new cache key, so this really builds again; the bytes must not move.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        fs::File::options().write(true).open(&host_file).unwrap().set_modified(later).unwrap();
        let second_cache = tempfile::tempdir().unwrap();
        let second = build_or_reuse(recipe_of_every_kind(&host_file), second_cache.path()).unwrap();

        assert_ne!(first.tar.file_name(), second.tar.file_name(), "the second build reused a key");
        let (first_bytes, second_bytes) = (fs::read(&first.tar).unwrap(), fs::read(&second.tar).unwrap());
        assert!(
            first_bytes == second_bytes,
            "two builds of the same recipe differ: {} and {}",
            first.tar.display(),
            second.tar.display()
        );
        let mode = fs::metadata(&second.tar).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "the tar has mode {mode:o}");
    }

    #[test]
    fn only_older_tars_of_the_same_image_are_removed() {
        let cache = tempfile::tempdir().unwrap();
        // Five keys of nginx, oldest first (1970 + N seconds), and others that are no nginx tar.
        let nginx: Vec<String> = (1..=5).map(|key| format!("podlab-nginx-{key:016x}.tar")).collect();
        for (age, name) in nginx.iter().enumerate() {
            let file = fs::File::create(cache.path().join(name)).unwrap();
            file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(age as u64 + 1)).unwrap();
        }
        let others = [
            "podlab-nginx-extra-0123456789abcdef.tar",
            "podlab-pause-0123456789abcdef.tar",
            ".podlab-nginx-abc.tar.partial",
        ];
        for name in others {
            fs::write(cache.path().join(name), b"").unwrap();
        }
        // The tar just made is the oldest key's: it stays, with the three newest others.
        remove_older_tars(cache.path(), "podlab-nginx", &cache.path().join(&nginx[0]));
        let mut left: Vec<String> = fs::read_dir(cache.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected: Vec<String> = others.iter().map(|name| name.to_string()).collect();
        expected.extend([nginx[0].clone(), nginx[2].clone(), nginx[3].clone(), nginx[4].clone()]);
        expected.sort();
        assert_eq!(left, expected);
    }
}
