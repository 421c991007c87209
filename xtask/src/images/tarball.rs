//! Turns a recipe into a root filesystem tar in the cache directory, or reuses the tar a previous run left.
//!
//! The tar's name carries a key hashed from everything the recipe is made of, so a changed input (a
//! rebuilt pause, an upgraded nginx) gets a new name and a stale tar is never reused. A tar is written
//! under a temporary name and renamed, so an interrupted build never leaves a half tar under the final name.

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use regex::Regex;

use super::{ImageTar, Recipe};

/// Bumped when this builder changes how every image is laid out or archived.
const BUILDER_VERSION: u32 = 1;

/// Builds the recipe's tar, or reuses the one already in `cache_dir`, and says which on stderr.
pub fn build_or_reuse(recipe: Recipe, cache_dir: &Path) -> Result<ImageTar> {
    let started = Instant::now();
    let slug = slug(recipe.name);
    let tar = cache_dir.join(format!("{slug}-{}.tar", cache_key(&recipe)?));
    if tar.is_file() {
        eprintln!("image {}: cached", recipe.name);
        return Ok(ImageTar { name: recipe.name, tar, changes: recipe.changes });
    }

    // Staged beside the cache rather than in /tmp, which may be a small tmpfs; the directory is removed
    // when `staging` drops, on success and on error alike.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{slug}-staging-"))
        .tempdir_in(cache_dir)
        .with_context(|| format!("cannot create a staging directory in {}", cache_dir.display()))?;
    recipe.rootfs.stage(staging.path()).with_context(|| format!("cannot stage the files of {}", recipe.name))?;
    let partial_tar = tempfile::Builder::new()
        .prefix(&format!(".{slug}-"))
        .suffix(".tar.partial")
        .tempfile_in(cache_dir)
        .with_context(|| format!("cannot create a temporary file in {}", cache_dir.display()))?
        .into_temp_path();
    write_tar(staging.path(), &recipe.rootfs.top_level_names(), &partial_tar)
        .with_context(|| format!("cannot archive {}", recipe.name))?;
    // tempfile creates files readable by their owner alone; an image tar hides nothing.
    fs::set_permissions(&partial_tar, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot make {} readable", partial_tar.display()))?;
    partial_tar.persist(&tar).with_context(|| format!("cannot rename the new tar to {}", tar.display()))?;
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

/// Archives `names` (entries directly under `root`) with GNU tar. Owners, times and order are fixed, so the
/// same inputs give the same bytes.
fn write_tar(root: &Path, names: &[OsString], output: &Path) -> Result<()> {
    ensure!(!names.is_empty(), "the image would be empty: fix the recipe");
    let mut command = Command::new("tar");
    command
        .args(["--owner=0", "--group=0", "--numeric-owner", "--sort=name", "--mtime=@0", "-C"])
        .arg(root)
        .arg("-cf")
        .arg(output)
        .arg("--")
        .args(names);
    let result = command.output().context("cannot run tar: install GNU tar with apt-get install tar")?;
    ensure!(
        result.status.success(),
        "tar failed ({}): {}",
        result.status,
        String::from_utf8_lossy(&result.stderr).trim()
    );
    Ok(())
}

/// Removes the tars of earlier keys of the same image: only the newest is ever reused. A tar that cannot
/// be removed costs only disk space, so this warns instead of failing the build.
fn remove_older_tars(cache_dir: &Path, slug: &str, keep: &Path) {
    let pattern = Regex::new(&format!(r"^{}-[0-9a-f]{{16}}\.tar$", regex::escape(slug))).expect("a valid regex");
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return;
    };
    let older: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| path != keep)
        .filter(|path| path.file_name().and_then(|name| name.to_str()).is_some_and(|name| pattern.is_match(name)))
        .collect();
    for path in older {
        if let Err(error) = fs::remove_file(&path) {
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

    #[test]
    fn only_older_tars_of_the_same_image_are_removed() {
        let cache = tempfile::tempdir().unwrap();
        let names = [
            "podlab-nginx-0123456789abcdef.tar",
            "podlab-nginx-fedcba9876543210.tar",
            "podlab-nginx-extra-0123456789abcdef.tar",
            "podlab-pause-0123456789abcdef.tar",
            ".podlab-nginx-abc.tar.partial",
        ];
        for name in names {
            fs::write(cache.path().join(name), b"").unwrap();
        }
        remove_older_tars(cache.path(), "podlab-nginx", &cache.path().join("podlab-nginx-fedcba9876543210.tar"));
        let mut left: Vec<String> = fs::read_dir(cache.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".podlab-nginx-abc.tar.partial",
                "podlab-nginx-extra-0123456789abcdef.tar",
                "podlab-nginx-fedcba9876543210.tar",
                "podlab-pause-0123456789abcdef.tar"
            ]
        );
    }
}
