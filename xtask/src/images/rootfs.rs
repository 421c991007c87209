//! A root filesystem described before it exists (host files, generated files, directories, symlinks), then staged.
//!
//! Describing first lets the cache key be computed from the description alone, so a cached tar is reused
//! without copying a single byte. Copying a host program brings its shared libraries along, found with `ldd`,
//! and recreates every symlink name the loader looks up on the way to the real file.
//! Inside the image every directory is a real directory, even where the host (merged /usr) has a symlink:
//! only the last component of a path is ever a symlink, so staging never follows a link out of the staging
//! directory and into the host.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use regex::Regex;

/// Linux gives up after 40 links in one lookup; a longer chain on the host is a loop.
const MAX_SYMLINK_HOPS: usize = 40;

/// A directory that nobody asked for by name, only as the parent of something.
const IMPLIED_DIRECTORY_MODE: u32 = 0o755;

/// What one path of the image is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Entry {
    Directory {
        mode: u32,
    },
    /// A copy of a host file (symlinks in the host path are followed when copying).
    HostFile {
        source: PathBuf,
        mode: u32,
    },
    GeneratedFile {
        contents: Vec<u8>,
        mode: u32,
    },
    Symlink {
        target: PathBuf,
    },
}

impl Entry {
    /// For error messages: what this path already is, or would become.
    fn describe(&self) -> String {
        match self {
            Entry::Directory { mode } => format!("a directory (mode {mode:o})"),
            Entry::HostFile { source, mode } => format!("a copy of {} (mode {mode:o})", source.display()),
            Entry::GeneratedFile { contents, mode } => {
                format!("a generated file of {} bytes (mode {mode:o})", contents.len())
            }
            Entry::Symlink { target } => format!("a symlink to {}", target.display()),
        }
    }
}

/// The description of a root filesystem: image path (absolute, like `/usr/sbin/nginx`) to what is there.
/// A sorted map puts every parent before its children, which staging relies on.
#[derive(Debug, Default)]
pub struct Rootfs {
    entries: BTreeMap<PathBuf, Entry>,
}

impl Rootfs {
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory with an explicit mode (like `/tmp` with 1777); its parents are implied.
    pub fn add_directory(&mut self, image_path: impl AsRef<Path>, mode: u32) -> Result<()> {
        self.insert(image_path.as_ref(), Entry::Directory { mode })
    }

    /// A file whose contents the recipe writes itself (configuration, /etc/passwd, a script).
    pub fn add_file(&mut self, image_path: impl AsRef<Path>, contents: impl Into<Vec<u8>>, mode: u32) -> Result<()> {
        self.insert(image_path.as_ref(), Entry::GeneratedFile { contents: contents.into(), mode })
    }

    pub fn add_symlink(&mut self, image_path: impl AsRef<Path>, target: impl AsRef<Path>) -> Result<()> {
        self.insert(image_path.as_ref(), Entry::Symlink { target: target.as_ref().to_path_buf() })
    }

    /// A host file copied under another name and mode, with no libraries (the pause binary becomes `/pause`).
    pub fn add_host_file_as(&mut self, image_path: impl AsRef<Path>, source: &Path, mode: u32) -> Result<()> {
        let metadata =
            fs::metadata(source).with_context(|| format!("cannot read {}: check that it exists", source.display()))?;
        ensure!(metadata.is_file(), "{} is not a regular file: give the path of a file", source.display());
        self.insert(image_path.as_ref(), Entry::HostFile { source: source.to_path_buf(), mode })
    }

    /// A host file at the same path in the image. When the path's last component is a symlink (as
    /// `/lib64/ld-linux-x86-64.so.2` or `libcrypt.so.1` are), the symlink is recreated with its own target
    /// text and that target is added the same way, until a regular file ends the chain.
    pub fn add_host_file(&mut self, host_path: &Path) -> Result<()> {
        ensure!(host_path.is_absolute(), "{} is not an absolute path: give the full path", host_path.display());
        let mut path = normalize_lexically(host_path);
        for _ in 0..MAX_SYMLINK_HOPS {
            let metadata = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot read {}: check that it exists", path.display()))?;
            if metadata.file_type().is_symlink() {
                let target =
                    fs::read_link(&path).with_context(|| format!("cannot read the symlink {}", path.display()))?;
                // A relative target is resolved lexically: that is how the kernel resolves it inside the image,
                // where no directory is a symlink.
                let next = match path.parent() {
                    Some(parent) if target.is_relative() => parent.join(&target),
                    _ => target.clone(),
                };
                self.insert(&path, Entry::Symlink { target })?;
                path = normalize_lexically(&next);
                continue;
            }
            ensure!(metadata.is_file(), "{} is neither a regular file nor a symlink to one", path.display());
            // Keep the host's permission bits, without setuid or setgid: nothing in a test image needs them.
            let mode = metadata.permissions().mode() & 0o777;
            return self.insert(&path, Entry::HostFile { source: path.clone(), mode });
        }
        bail!("{} is a chain of more than {MAX_SYMLINK_HOPS} symlinks: fix the loop on the host", host_path.display())
    }

    /// A host program at the same path, with its program interpreter and every shared library `ldd` resolves.
    pub fn add_host_program(&mut self, program: &Path) -> Result<()> {
        self.add_host_file(program)?;
        let Some(interpreter) = program_interpreter(program)? else {
            // Statically linked (or a script): there is nothing more to bring.
            return Ok(());
        };
        self.add_host_file(&interpreter).with_context(|| {
            format!("cannot copy {}, the program interpreter of {}", interpreter.display(), program.display())
        })?;
        for library in shared_libraries(program)? {
            self.add_host_file(&library)
                .with_context(|| format!("cannot copy {}, a library of {}", library.display(), program.display()))?;
        }
        Ok(())
    }

    /// Feeds everything the image is made of into the cache key: for a host file its path, size and
    /// modification time (reading whole files would cost as much as building), for the rest the entry itself.
    pub fn hash_inputs(&self, hasher: &mut impl Hasher) -> Result<()> {
        for (image_path, entry) in &self.entries {
            image_path.hash(hasher);
            entry.hash(hasher);
            if let Entry::HostFile { source, .. } = entry {
                let metadata = fs::metadata(source)
                    .with_context(|| format!("cannot read {}: did it vanish while building?", source.display()))?;
                (metadata.len(), metadata.mtime(), metadata.mtime_nsec()).hash(hasher);
            }
        }
        Ok(())
    }

    /// The names directly under `/`, in order: what to hand to `tar`, so that the tar holds no `./` entry.
    pub fn top_level_names(&self) -> Vec<OsString> {
        self.entries
            .keys()
            .filter(|image_path| image_path.parent() == Some(Path::new("/")))
            .filter_map(|image_path| image_path.file_name().map(OsString::from))
            .collect()
    }

    /// Makes the described filesystem real under `root`, an empty directory.
    pub fn stage(&self, root: &Path) -> Result<()> {
        for (image_path, entry) in &self.entries {
            let staged = staged_path(root, image_path);
            match entry {
                // Modes of directories are set at the end, so that a read-only directory can still be filled.
                Entry::Directory { .. } => {
                    fs::create_dir(&staged).with_context(|| format!("cannot create {}", staged.display()))?
                }
                Entry::HostFile { source, mode } => {
                    fs::copy(source, &staged).with_context(|| {
                        format!("cannot copy {} to {}: check free space", source.display(), staged.display())
                    })?;
                    set_mode(&staged, *mode)?;
                }
                Entry::GeneratedFile { contents, mode } => {
                    fs::write(&staged, contents).with_context(|| format!("cannot write {}", staged.display()))?;
                    set_mode(&staged, *mode)?;
                }
                Entry::Symlink { target } => symlink(target, &staged)
                    .with_context(|| format!("cannot create the symlink {}", staged.display()))?,
            }
        }
        for (image_path, entry) in self.entries.iter().rev() {
            if let Entry::Directory { mode } = entry {
                set_mode(&staged_path(root, image_path), *mode)?;
            }
        }
        Ok(())
    }

    /// Adds one entry and, as implied directories, its missing parents. Adding the same entry twice is
    /// fine (every program brings libc); giving one path two different meanings is a recipe bug.
    fn insert(&mut self, image_path: &Path, entry: Entry) -> Result<()> {
        ensure!(
            image_path.is_absolute() && image_path.parent().is_some() && normalize_lexically(image_path) == image_path,
            "{} is not a normalized absolute path below /: fix the recipe",
            image_path.display()
        );
        for ancestor in image_path.ancestors().skip(1) {
            if ancestor.parent().is_none() {
                break;
            }
            match self.entries.get(ancestor) {
                None => {
                    self.entries.insert(ancestor.to_path_buf(), Entry::Directory { mode: IMPLIED_DIRECTORY_MODE });
                }
                Some(Entry::Directory { .. }) => {}
                Some(existing) => bail!(
                    "{} must be a directory to hold {}, but it is already {}: fix the recipe",
                    ancestor.display(),
                    image_path.display(),
                    existing.describe()
                ),
            }
        }
        match self.entries.get_mut(image_path) {
            None => {
                self.entries.insert(image_path.to_path_buf(), entry);
            }
            Some(existing) if *existing == entry => {}
            // An explicit mode wins over the implied one a child gave this directory earlier.
            Some(existing @ Entry::Directory { .. }) if matches!(entry, Entry::Directory { .. }) => *existing = entry,
            Some(existing) => bail!(
                "{} would be both {} and {}: fix the recipe",
                image_path.display(),
                existing.describe(),
                entry.describe()
            ),
        }
        Ok(())
    }
}

/// The program interpreter a dynamically linked ELF program asks for (its `PT_INTERP`), or `None` for a
/// static program or a file that is not ELF at all. Read from the file itself: no host program runs.
pub fn program_interpreter(path: &Path) -> Result<Option<PathBuf>> {
    const PT_INTERP: u32 = 3;
    const PROGRAM_HEADER_SIZE: usize = 56;
    let file = fs::File::open(path).with_context(|| format!("cannot open {}: check that it exists", path.display()))?;
    let mut header = [0u8; 64];
    if file.read_exact_at(&mut header, 0).is_err() || header[..4] != *b"\x7fELF" {
        return Ok(None);
    }
    ensure!(
        header[4] == 2 && header[5] == 1,
        "{} is not a 64-bit little-endian ELF file: podlab builds images for x86_64 and arm64 only",
        path.display()
    );
    let program_headers_offset = u64::from_le_bytes(header[0x20..0x28].try_into()?);
    let program_header_size = usize::from(u16::from_le_bytes(header[0x36..0x38].try_into()?));
    let program_header_count = u64::from(u16::from_le_bytes(header[0x38..0x3a].try_into()?));
    ensure!(program_header_size >= PROGRAM_HEADER_SIZE, "{} has malformed ELF program headers", path.display());
    for index in 0..program_header_count {
        let mut program_header = [0u8; PROGRAM_HEADER_SIZE];
        file.read_exact_at(&mut program_header, program_headers_offset + index * program_header_size as u64)
            .with_context(|| format!("{} has truncated ELF program headers", path.display()))?;
        if u32::from_le_bytes(program_header[0..4].try_into()?) != PT_INTERP {
            continue;
        }
        let offset = u64::from_le_bytes(program_header[0x08..0x10].try_into()?);
        let size = u64::from_le_bytes(program_header[0x20..0x28].try_into()?);
        ensure!(size <= 4096, "{} names a program interpreter of {size} bytes: not a sane ELF file", path.display());
        let mut interpreter = vec![0u8; usize::try_from(size)?];
        file.read_exact_at(&mut interpreter, offset)
            .with_context(|| format!("{} has a truncated program interpreter name", path.display()))?;
        let name_length = interpreter.iter().position(|&byte| byte == 0).unwrap_or(interpreter.len());
        let name = String::from_utf8(interpreter[..name_length].to_vec())
            .with_context(|| format!("{} names a program interpreter that is not UTF-8", path.display()))?;
        return Ok(Some(PathBuf::from(name)));
    }
    Ok(None)
}

/// The shared libraries of a dynamically linked program, as the host's loader resolves them (`ldd`).
/// These are the names the loader looks up, often symlinks; libraries loaded later with `dlopen` are not
/// listed, which is why each image is proved by running its programs (see the tests in `mod.rs`).
pub fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(program)
        .output()
        .context("cannot run ldd: install it with apt-get install libc-bin")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "ldd {} failed ({}): {}{}",
        program.display(),
        output.status,
        stdout.trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    parse_ldd_output(program, &stdout)
}

/// Reads lines such as `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and `/lib64/ld-linux-x86-64.so.2
/// (0x…)`; the vDSO (`linux-vdso.so.1 (0x…)`) has no path and is skipped, being the kernel's.
fn parse_ldd_output(program: &Path, ldd_stdout: &str) -> Result<Vec<PathBuf>> {
    let resolved = Regex::new(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$").expect("a valid regex");
    let unresolved = Regex::new(r"^\s*(\S+)\s+=>\s+not found\s*$").expect("a valid regex");
    let mut libraries = Vec::new();
    let mut missing = Vec::new();
    for line in ldd_stdout.lines() {
        if let Some(captures) = unresolved.captures(line) {
            missing.push(captures[1].to_string());
        } else if let Some(captures) = resolved.captures(line) {
            libraries.push(PathBuf::from(&captures[1]));
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} needs {}, which this host's loader cannot find: install the package that provides it",
            program.display(),
            missing.join(", ")
        );
    }
    Ok(libraries)
}

/// Removes `.` and resolves `..` by dropping the previous component, without looking at the filesystem.
fn normalize_lexically(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    normalized
}

fn staged_path(root: &Path, image_path: &Path) -> PathBuf {
    root.join(image_path.strip_prefix("/").expect("image paths are absolute"))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {} to {mode:o}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ldd /usr/sbin/nginx` on Debian 12, plus a line for a library the loader cannot find.
    const LDD_NGINX: &str = "\tlinux-vdso.so.1 (0x00007ffc0a5f2000)
\tlibcrypt.so.1 => /lib/x86_64-linux-gnu/libcrypt.so.1 (0x00007f0f0fb3e000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0f0f21e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0f0fce1000)
";

    #[test]
    fn ldd_output_gives_every_library_path_and_the_interpreter_but_not_the_vdso() {
        let libraries = parse_ldd_output(Path::new("/usr/sbin/nginx"), LDD_NGINX).unwrap();
        assert_eq!(
            libraries,
            ["/lib/x86_64-linux-gnu/libcrypt.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]
                .map(PathBuf::from)
        );
    }

    #[test]
    fn ldd_output_with_a_missing_library_is_an_error_naming_it() {
        let output = format!("{LDD_NGINX}\tlibpcre2-8.so.0 => not found\n");
        let error = parse_ldd_output(Path::new("/usr/sbin/nginx"), &output).unwrap_err().to_string();
        assert!(error.contains("/usr/sbin/nginx needs libpcre2-8.so.0"), "unexpected error: {error}");
    }

    #[test]
    fn a_symlink_chain_is_recreated_down_to_the_real_file() {
        let host = tempfile::tempdir().unwrap();
        let real_directory = host.path().join("usr/lib");
        let link_directory = host.path().join("lib");
        fs::create_dir_all(&real_directory).unwrap();
        fs::create_dir_all(&link_directory).unwrap();
        fs::write(real_directory.join("libexample.so.1.2.3"), b"library").unwrap();
        fs::set_permissions(real_directory.join("libexample.so.1.2.3"), fs::Permissions::from_mode(0o644)).unwrap();
        // lib/libexample.so.1 -> ../usr/lib/libexample.so.1 -> libexample.so.1.2.3 (a real file).
        symlink("../usr/lib/libexample.so.1", link_directory.join("libexample.so.1")).unwrap();
        symlink("libexample.so.1.2.3", real_directory.join("libexample.so.1")).unwrap();

        let mut rootfs = Rootfs::new();
        rootfs.add_host_file(&link_directory.join("libexample.so.1")).unwrap();

        let expected_real_file = real_directory.join("libexample.so.1.2.3");
        assert_eq!(
            rootfs.entries.get(&link_directory.join("libexample.so.1")),
            Some(&Entry::Symlink { target: PathBuf::from("../usr/lib/libexample.so.1") })
        );
        assert_eq!(
            rootfs.entries.get(&real_directory.join("libexample.so.1")),
            Some(&Entry::Symlink { target: PathBuf::from("libexample.so.1.2.3") })
        );
        assert_eq!(
            rootfs.entries.get(&expected_real_file),
            Some(&Entry::HostFile { source: expected_real_file.clone(), mode: 0o644 })
        );

        // Staged, the chain resolves inside the staging directory to the copied contents.
        let staging = tempfile::tempdir().unwrap();
        rootfs.stage(staging.path()).unwrap();
        let staged_link = staged_path(staging.path(), &link_directory.join("libexample.so.1"));
        assert_eq!(fs::read(staged_link).unwrap(), b"library");
    }

    #[test]
    fn one_path_with_two_meanings_is_refused() {
        let mut rootfs = Rootfs::new();
        rootfs.add_file("/etc/passwd", "root:x:0:0::/:/bin/sh\n", 0o644).unwrap();
        rootfs.add_file("/etc/passwd", "root:x:0:0::/:/bin/sh\n", 0o644).unwrap();
        let error = rootfs.add_symlink("/etc/passwd", "/dev/null").unwrap_err().to_string();
        assert!(error.contains("/etc/passwd would be both"), "unexpected error: {error}");
        let error = rootfs.add_file("/etc/passwd/nested", "", 0o644).unwrap_err().to_string();
        assert!(error.contains("/etc/passwd must be a directory"), "unexpected error: {error}");
    }

    #[test]
    fn the_test_binary_itself_asks_for_an_interpreter_and_a_text_file_does_not() {
        // Rust test binaries link libc dynamically, so this one is a real dynamic ELF program.
        let test_binary = std::env::current_exe().unwrap();
        let interpreter = program_interpreter(&test_binary).unwrap().expect("a dynamically linked test binary");
        assert!(interpreter.is_absolute() && interpreter.exists(), "odd interpreter {}", interpreter.display());

        let text = tempfile::NamedTempFile::new().unwrap();
        fs::write(text.path(), "#!/bin/sh\necho not ELF\n").unwrap();
        assert_eq!(program_interpreter(text.path()).unwrap(), None);
    }

    #[test]
    fn a_host_program_brings_its_interpreter_and_libc() {
        let test_binary = std::env::current_exe().unwrap();
        let mut rootfs = Rootfs::new();
        rootfs.add_host_program(&test_binary).unwrap();
        let interpreter = program_interpreter(&test_binary).unwrap().unwrap();
        assert!(
            rootfs.entries.contains_key(&interpreter),
            "no {} in {:?}",
            interpreter.display(),
            rootfs.entries.keys()
        );
        assert!(
            rootfs.entries.keys().any(|image_path| image_path.file_name() == Some("libc.so.6".as_ref())),
            "no libc.so.6 in {:?}",
            rootfs.entries.keys()
        );
    }
}
