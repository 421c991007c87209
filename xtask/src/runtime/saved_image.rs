//! Lists what an image holds from `docker save` output (a tar whose layers are tars), read in memory with
//! the `tar` crate, without unpacking anything.

use anyhow::{Context, Result, bail};
use tar::{Archive, EntryType};

/// A tar's first header is 512 bytes, with the `ustar` magic at 257 (GNU and POSIX tars alike).
const HEADER_BYTES: usize = 512;
const MAGIC_RANGE: std::ops::Range<usize> = 257..262;

/// Regular files and links of every layer of a saved image, without a leading `./` or `/`.
pub fn files_of_saved_image(saved: &[u8]) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let mut layers = 0;
    let mut archive = Archive::new(saved);
    for entry in archive.entries().context("cannot read the saved image as a tar: was docker save cut short?")? {
        let entry = entry.context("cannot read the saved image as a tar: was docker save cut short?")?;
        if entry.header().entry_type() != EntryType::Regular {
            continue;
        }
        // The entry's bytes are a slice of `saved`: a layer is listed where it lies, never copied.
        let start = usize::try_from(entry.raw_file_position())?;
        let end = start + usize::try_from(entry.size())?;
        let data = saved.get(start..end).context("an entry of the saved image runs past its end")?;
        // Layers are the entries that are tars themselves (config and manifests are JSON). The magic, not the
        // name, says so: newer Docker saves OCI layouts, where a layer is `blobs/sha256/<hash>`.
        if !is_tar(data) {
            continue;
        }
        layers += 1;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        files.extend(files_of_layer(data).with_context(|| format!("cannot read the layer {path} of the saved image"))?);
    }
    if layers == 0 {
        bail!("no layer found in the saved image");
    }
    Ok(files)
}

fn is_tar(data: &[u8]) -> bool {
    data.len() >= HEADER_BYTES && &data[MAGIC_RANGE] == b"ustar"
}

/// Regular files, hard links and symlinks, but not directories, nor the whiteouts (`.wh.<name>`) that mark
/// a file removed from a lower layer.
fn files_of_layer(layer: &[u8]) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for entry in Archive::new(layer).entries()? {
        let entry = entry?;
        if !matches!(entry.header().entry_type(), EntryType::Regular | EntryType::Link | EntryType::Symlink) {
            continue;
        }
        // The full name, from a GNU long-name entry or a PAX `path` record where the header's 100 bytes fall short.
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let is_whiteout = path.rsplit('/').next().is_some_and(|base| base.starts_with(".wh."));
        if !is_whiteout {
            files.push(path.trim_start_matches("./").trim_start_matches('/').to_string());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use tar::{Builder, Header};

    use super::*;

    /// Appends an entry under `name` exactly as given (`./pause`, `/app/server.js`): the tar crate's own path
    /// setters would tidy such names, and what `docker save` gives is not tidied.
    fn append_raw(archive: &mut Builder<Vec<u8>>, entry_type: EntryType, name: &str, contents: &[u8]) {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(entry_type);
        header.set_mode(if entry_type == EntryType::Directory { 0o755 } else { 0o644 });
        header.set_size(contents.len() as u64);
        header.set_cksum();
        archive.append(&header, contents).unwrap();
    }

    fn append_link(archive: &mut Builder<Vec<u8>>, entry_type: EntryType, name: &str, target: &str) {
        let mut header = Header::new_gnu();
        header.set_entry_type(entry_type);
        header.set_mode(0o777);
        header.set_size(0);
        archive.append_link(&mut header, name, target).unwrap();
    }

    /// One PAX record, `<length> <key>=<value>\n`, where the length counts its own digits.
    fn pax_record(key: &str, value: &str) -> String {
        let body = format!(" {key}={value}\n");
        let mut length = body.len() + 1;
        while format!("{length}{body}").len() != length {
            length += 1;
        }
        format!("{length}{body}")
    }

    /// A layer as `docker import` and `docker save` leave one: the root and a directory, a file, a name longer
    /// than a header's 100 bytes as GNU tar writes it (a long-name entry) and as Go writes it (a PAX
    /// `path` record), a symlink, a hard link, and a whiteout.
    fn first_layer(gnu_long_name: &str, pax_long_name: &str) -> Vec<u8> {
        let mut layer = Builder::new(Vec::new());
        append_raw(&mut layer, EntryType::Directory, "./", b"");
        append_raw(&mut layer, EntryType::Directory, "./etc/", b"");
        append_raw(&mut layer, EntryType::Regular, "./pause", b"binary");
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(1);
        layer.append_data(&mut header, gnu_long_name, b"x".as_slice()).unwrap();
        append_raw(&mut layer, EntryType::XHeader, "./PaxHeaders/long", pax_record("path", pax_long_name).as_bytes());
        append_raw(&mut layer, EntryType::Regular, &pax_long_name[..99], b"y");
        append_link(&mut layer, EntryType::Symlink, "link", "pause");
        append_link(&mut layer, EntryType::Link, "hardlink", "pause");
        append_raw(&mut layer, EntryType::Regular, "./etc/.wh.removed", b"");
        layer.into_inner().unwrap()
    }

    #[test]
    fn lists_the_files_and_links_of_every_layer_inside_a_saved_image() {
        let gnu_long_name = format!("etc/{}", "g".repeat(120));
        let pax_long_name = format!("etc/{}", "p".repeat(120));
        let mut second_layer = Builder::new(Vec::new());
        append_raw(&mut second_layer, EntryType::Regular, "/app/server.js", b"js");
        append_raw(&mut second_layer, EntryType::Regular, ".wh.pause", b"");
        let mut saved = Builder::new(Vec::new());
        append_raw(&mut saved, EntryType::Regular, "manifest.json", b"[]");
        // A legacy layout's name and an OCI layout's name: only their contents say they are layers.
        append_raw(&mut saved, EntryType::Regular, "0123/layer.tar", &first_layer(&gnu_long_name, &pax_long_name));
        append_raw(&mut saved, EntryType::Regular, "blobs/sha256/4567", &second_layer.into_inner().unwrap());
        append_raw(&mut saved, EntryType::Regular, "index.json", b"{}");
        let saved = saved.into_inner().unwrap();

        let files = files_of_saved_image(&saved).unwrap();

        assert_eq!(files, ["pause", &gnu_long_name, &pax_long_name, "link", "hardlink", "app/server.js"]);
    }

    #[test]
    fn an_archive_without_layers_is_an_error() {
        assert_eq!(files_of_saved_image(&[0u8; 1024]).unwrap_err().to_string(), "no layer found in the saved image");
        let mut saved = Builder::new(Vec::new());
        append_raw(&mut saved, EntryType::Regular, "manifest.json", b"[]");
        let saved = saved.into_inner().unwrap();
        assert_eq!(files_of_saved_image(&saved).unwrap_err().to_string(), "no layer found in the saved image");
    }

    #[test]
    fn a_saved_image_cut_short_is_an_error() {
        let mut layer = Builder::new(Vec::new());
        append_raw(&mut layer, EntryType::Regular, "pause", &[0u8; 4096]);
        let mut saved = Builder::new(Vec::new());
        append_raw(&mut saved, EntryType::Regular, "0123/layer.tar", &layer.into_inner().unwrap());
        let saved = saved.into_inner().unwrap();
        let error = files_of_saved_image(&saved[..2048]).unwrap_err();
        assert!(format!("{error:#}").contains("runs past its end"), "unexpected error: {error:#}");
    }
}
