//! A root filesystem described before it exists (host files, generated files, directories, symlinks), then
//! written as a tar.
//!
//! Describing first lets the cache key be computed from the description alone, so a cached tar is reused
//! without copying a single byte. Copying a host program brings its shared libraries along, found with `ldd`,
//! and recreates every symlink name the loader looks up on the way to the real file.
//! Inside the image every directory is a real directory, even where the host (merged /usr) has a symlink:
//! only the last component of a path is ever a symlink, so unpacking the tar never follows a link out of
//! the image and into the host.
//! The tar is written straight from the description with the `tar` crate, nothing staged on disk: entries in
//! path order, owned by 0:0, dated 1970, so the same description gives the same bytes on any host.

use std::collections::BTreeMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use tar::{EntryType, Header};

use super::HOST_COMMAND_DEADLINE;
use crate::cancel::Cancel;
use crate::command;

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
/// A sorted map puts every parent before its children, the order a tar must have for its directories to
/// exist before what they hold.
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

    /// A whole host directory under `image_dir`: every directory, file (host permission bits) and
    /// symlink in it, as it is. A symlink must stay inside the tree (relative, not climbing out):
    /// an absolute one would point into the image's root, not at what it named on the host.
    /// Returns the host paths of the regular files added.
    pub fn add_host_tree(&mut self, image_dir: impl AsRef<Path>, host_dir: &Path) -> Result<Vec<PathBuf>> {
        let image_dir = image_dir.as_ref();
        let mut files = Vec::new();
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            let host_path = host_dir.join(&relative);
            let entries = fs::read_dir(&host_path).with_context(|| format!("cannot list {}", host_path.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", host_path.display()))?;
                let relative = relative.join(entry.file_name());
                let (source, image_path) = (host_dir.join(&relative), image_dir.join(&relative));
                let metadata =
                    fs::symlink_metadata(&source).with_context(|| format!("cannot read {}", source.display()))?;
                let mode = metadata.permissions().mode() & 0o777;
                if metadata.is_dir() {
                    self.insert(&image_path, Entry::Directory { mode })?;
                    pending.push(relative);
                } else if metadata.is_file() {
                    self.insert(&image_path, Entry::HostFile { source: source.clone(), mode })?;
                    files.push(source);
                } else if metadata.file_type().is_symlink() {
                    let target = fs::read_link(&source)
                        .with_context(|| format!("cannot read the symlink {}", source.display()))?;
                    let resolved = normalize_lexically(&image_path.parent().unwrap_or(image_dir).join(&target));
                    ensure!(
                        target.is_relative() && resolved.starts_with(image_dir),
                        "{} points to {}, outside the tree {}",
                        source.display(),
                        target.display(),
                        host_dir.display()
                    );
                    self.insert(&image_path, Entry::Symlink { target })?;
                } else {
                    bail!("{} is neither a file, a directory nor a symlink", source.display());
                }
            }
        }
        Ok(files)
    }

    /// A host program at the same path, with its program interpreter and every shared library `ldd` resolves.
    pub fn add_host_program(&mut self, program: &Path) -> Result<()> {
        self.add_host_file(program)?;
        self.add_libraries_of(program)
    }

    /// What a host program needs to run in the image, without the program: its interpreter and
    /// libraries (for a program the container gets from the host at run time).
    pub fn add_libraries_of(&mut self, program: &Path) -> Result<()> {
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

    /// Writes the described filesystem to `output` as a tar, in path order. Every entry is owned by 0:0 with
    /// no owner names and dated 0 (1970), so neither the host's owners nor its times reach the image, and the
    /// same description gives the same bytes. Host files are streamed from disk, never held whole in memory.
    pub fn write_tar(&self, output: impl Write) -> Result<()> {
        ensure!(!self.entries.is_empty(), "the image would be empty: fix the recipe");
        let mut builder = tar::Builder::new(output);
        for (image_path, entry) in &self.entries {
            append_entry(&mut builder, image_path, entry)
                .with_context(|| format!("cannot add {} ({}) to the tar", image_path.display(), entry.describe()))?;
        }
        // Writes the two zero blocks that end a tar.
        builder.into_inner().context("cannot finish the tar")?;
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
    let program_text =
        program.to_str().with_context(|| format!("{} is not UTF-8: give a path ldd can take", program.display()))?;
    // A question of milliseconds to this machine, asked while an image's files are gathered:
    // not cut short, a Ctrl-C is seen at the run's next wait.
    let output = command::run(&command::argv(&["ldd", program_text]), HOST_COMMAND_DEADLINE, Cancel::NEVER)
        .with_context(|| format!("cannot run ldd on {program_text}: install it with apt-get install libc-bin"))?;
    let stdout = output.stdout_text();
    ensure!(
        output.success(),
        "ldd {program_text} failed ({}): {}{}",
        output.ending(),
        stdout.trim(),
        output.stderr.trim()
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

/// Appends one entry: GNU headers, as GNU tar writes them, so that a name over 100 bytes gets a long-name
/// entry instead of an error.
fn append_entry(builder: &mut tar::Builder<impl Write>, image_path: &Path, entry: &Entry) -> Result<()> {
    let relative = image_path.strip_prefix("/").context("image paths are absolute")?;
    let mut header = Header::new_gnu();
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    match entry {
        Entry::Directory { mode } => {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(*mode);
            // `etc/`, with the trailing slash GNU tar gives a directory.
            let mut name = relative.as_os_str().to_owned();
            name.push("/");
            builder.append_data(&mut header, name, io::empty())?;
        }
        Entry::GeneratedFile { contents, mode } => {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(*mode);
            header.set_size(contents.len() as u64);
            builder.append_data(&mut header, relative, contents.as_slice())?;
        }
        Entry::HostFile { source, mode } => {
            let file = fs::File::open(source)
                .with_context(|| format!("cannot open {}: did it vanish while building?", source.display()))?;
            let size = file.metadata().with_context(|| format!("cannot read {}", source.display()))?.len();
            header.set_entry_type(EntryType::Regular);
            header.set_mode(*mode);
            header.set_size(size);
            let contents = ExactSize { file: file.take(size), source };
            builder.append_data(&mut header, relative, contents)?;
        }
        Entry::Symlink { target } => {
            header.set_entry_type(EntryType::Symlink);
            // What `ls -l` shows for every symlink on Linux, and what GNU tar recorded.
            header.set_mode(0o777);
            builder.append_link(&mut header, relative, target)?;
        }
    }
    Ok(())
}

/// A host file read for exactly the size its tar header announced. A file that shrank while being archived
/// is an error: the tar crate would pad what it got and misalign every later entry. A file that grew is cut at
/// the announced size; its new size and time change the cache key, so the next run builds again.
struct ExactSize<'a> {
    file: io::Take<fs::File>,
    source: &'a Path,
}

impl Read for ExactSize<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read(buffer)?;
        if read == 0 && !buffer.is_empty() && self.file.limit() > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while being archived: run again once it stays put", self.source.display()),
            ));
        }
        Ok(read)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// One line per member of a tar, like `tar -tv --numeric-owner` but with the kind spelled out, the mode
    /// in octal and the mtime in seconds: `file 755 0/0 14 0 pause`, `dir 1777 0/0 0 0 tmp/`,
    /// `symlink 777 0/0 0 0 bin/sh -> busybox`. Owner names are shown only when there are some: `0/0 root/root`.
    pub fn list_tar(tar: impl Read) -> Vec<String> {
        let mut archive = tar::Archive::new(tar);
        let mut lines = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            let kind = match header.entry_type() {
                EntryType::Regular => "file",
                EntryType::Directory => "dir",
                EntryType::Symlink => "symlink",
                EntryType::Link => "hardlink",
                other => panic!("unexpected tar entry type {other:?}"),
            };
            let mut line = format!(
                "{kind} {:o} {}/{} {} {}",
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                header.size().unwrap(),
                header.mtime().unwrap(),
            );
            let names = (header.username_bytes().unwrap_or_default(), header.groupname_bytes().unwrap_or_default());
            if names != (b"".as_slice(), b"".as_slice()) {
                line += &format!(" {}/{}", String::from_utf8_lossy(names.0), String::from_utf8_lossy(names.1));
            }
            line += &format!(" {}", String::from_utf8_lossy(&entry.path_bytes()));
            if let Some(target) = entry.link_name_bytes() {
                line += &format!(" -> {}", String::from_utf8_lossy(&target));
            }
            lines.push(line);
        }
        lines
    }

    /// Unpacks a tar as `docker import` would: modes (sticky bits included) and owners as recorded.
    pub fn unpack(tar: impl Read, root: &Path) {
        let mut archive = tar::Archive::new(tar);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.unpack(root).unwrap();
    }

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

        // Unpacked, the chain resolves inside the image to the copied contents.
        let mut tar = Vec::new();
        rootfs.write_tar(&mut tar).unwrap();
        let image = tempfile::tempdir().unwrap();
        unpack(tar.as_slice(), image.path());
        let unpacked_link = image.path().join(link_directory.join("libexample.so.1").strip_prefix("/").unwrap());
        assert_eq!(fs::read(unpacked_link).unwrap(), b"library");
    }

    #[test]
    fn the_tar_holds_what_the_rootfs_describes_owned_by_root_and_dated_1970() {
        let host = tempfile::tempdir().unwrap();
        let host_program = host.path().join("program");
        fs::write(&host_program, b"#!/bin/sh\necho hi\n").unwrap();
        // Mode and time on the host must not reach the image: the recipe's mode wins, the time is 0.
        fs::set_permissions(&host_program, fs::Permissions::from_mode(0o700)).unwrap();
        let long_name = format!("/usr/share/{}", "n".repeat(120));

        let mut rootfs = Rootfs::new();
        rootfs.add_host_file_as("/usr/bin/program", &host_program, 0o755).unwrap();
        rootfs.add_file("/etc/passwd", "root:x:0:0::/:/bin/sh\n", 0o644).unwrap();
        rootfs.add_directory("/tmp", 0o1777).unwrap();
        rootfs.add_symlink("/bin/sh", "busybox").unwrap();
        rootfs.add_symlink("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").unwrap();
        rootfs.add_file(&long_name, "", 0o600).unwrap();
        let mut tar = Vec::new();
        rootfs.write_tar(&mut tar).unwrap();

        assert_eq!(
            list_tar(tar.as_slice()),
            [
                "dir 755 0/0 0 0 bin/",
                "symlink 777 0/0 0 0 bin/sh -> busybox",
                "dir 755 0/0 0 0 etc/",
                "file 644 0/0 22 0 etc/passwd",
                "dir 755 0/0 0 0 lib64/",
                "symlink 777 0/0 0 0 lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "dir 1777 0/0 0 0 tmp/",
                "dir 755 0/0 0 0 usr/",
                "dir 755 0/0 0 0 usr/bin/",
                "file 755 0/0 18 0 usr/bin/program",
                "dir 755 0/0 0 0 usr/share/",
                &format!("file 600 0/0 0 0 {}", long_name.trim_start_matches('/')),
            ]
        );
    }

    #[test]
    fn a_host_file_that_shrank_while_being_archived_is_an_error() {
        let host_file = tempfile::NamedTempFile::new().unwrap();
        fs::write(host_file.path(), b"ten bytes!").unwrap();
        // As if the header had been written when the file was 20 bytes long.
        let mut contents =
            ExactSize { file: fs::File::open(host_file.path()).unwrap().take(20), source: host_file.path() };
        let error = io::copy(&mut contents, &mut io::sink()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!("{} shrank while being archived: run again once it stays put", host_file.path().display())
        );
    }

    #[test]
    fn an_empty_rootfs_is_refused() {
        let error = Rootfs::new().write_tar(Vec::new()).unwrap_err().to_string();
        assert_eq!(error, "the image would be empty: fix the recipe");
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
