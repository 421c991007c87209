//! Just enough of the tar format to list what an image holds, from `docker save` output
//! (a tar whose layers are tars), without unpacking anything.

use anyhow::{Result, bail};

const BLOCK: usize = 512;

/// One entry of a tar stream.
struct Entry<'a> {
    name: String,
    kind: u8,
    data: &'a [u8],
}

/// Regular files and links of every layer of a saved image, without a leading `./` or `/`.
pub fn files_of_saved_image(saved: &[u8]) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let mut layers = 0;
    for entry in entries(saved)? {
        // Layers are the entries that are tars themselves (config and manifests are JSON).
        if entry.kind == b'0' && is_tar(entry.data) {
            layers += 1;
            for file in entries(entry.data)? {
                let is_file_or_link = matches!(file.kind, b'0' | b'1' | b'2');
                let is_whiteout = file.name.rsplit('/').next().is_some_and(|base| base.starts_with(".wh."));
                if is_file_or_link && !is_whiteout {
                    files.push(file.name);
                }
            }
        }
    }
    if layers == 0 {
        bail!("no layer found in the saved image");
    }
    Ok(files)
}

fn is_tar(data: &[u8]) -> bool {
    data.len() >= BLOCK && &data[257..262] == b"ustar"
}

fn entries(archive: &[u8]) -> Result<Vec<Entry<'_>>> {
    let mut entries = Vec::new();
    let mut offset = 0;
    let mut long_name: Option<String> = None;
    while offset + BLOCK <= archive.len() {
        let header = &archive[offset..offset + BLOCK];
        if header.iter().all(|byte| *byte == 0) {
            break;
        }
        let size = parse_size(&header[124..136])?;
        let data_start = offset + BLOCK;
        let data_end = data_start + size;
        if data_end > archive.len() {
            bail!("a tar entry runs past the end of the archive");
        }
        let data = &archive[data_start..data_end];
        let kind = if header[156] == 0 { b'0' } else { header[156] };
        match kind {
            // GNU long name: the data is the name of the next entry.
            b'L' => long_name = Some(c_string(data)),
            // PAX extended header: a `path=` record names the next entry.
            b'x' => long_name = pax_path(data).or(long_name),
            _ => {
                let name = long_name.take().unwrap_or_else(|| {
                    let prefix = c_string(&header[345..500]);
                    let name = c_string(&header[..100]);
                    if prefix.is_empty() { name } else { format!("{prefix}/{name}") }
                });
                let name = name.trim_start_matches("./").trim_start_matches('/').to_string();
                entries.push(Entry { name, kind, data });
            }
        }
        offset = data_start + size.div_ceil(BLOCK) * BLOCK;
    }
    Ok(entries)
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|byte| *byte == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Octal, or GNU base-256 when the first byte's high bit is set.
fn parse_size(field: &[u8]) -> Result<usize> {
    if field[0] & 0x80 != 0 {
        return Ok(field[1..].iter().fold(0usize, |size, byte| (size << 8) | usize::from(*byte)));
    }
    let text = c_string(field);
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    usize::from_str_radix(text, 8).map_err(|_| anyhow::anyhow!("bad tar size field `{text}`"))
}

fn pax_path(data: &[u8]) -> Option<String> {
    String::from_utf8_lossy(data).lines().find_map(|record| Some(record.split_once(" path=")?.1.to_string()))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// Real tars from GNU tar: a layer (a file, a symlink, a long name, directories) inside an outer tar.
    #[test]
    fn lists_the_files_of_a_layer_inside_a_tar() {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("pause"), b"binary").unwrap();
        // Over 100 bytes: GNU tar stores it as a long-name entry.
        let long_name = format!("etc/{}", "n".repeat(120));
        std::fs::write(root.join(&long_name), b"x").unwrap();
        std::os::unix::fs::symlink("pause", root.join("link")).unwrap();
        let layer_dir = work.path().join("saved/0123");
        std::fs::create_dir_all(&layer_dir).unwrap();
        let tar = |arguments: &[&str]| assert!(Command::new("tar").args(arguments).status().unwrap().success());
        tar(&["-C", root.to_str().unwrap(), "-cf", layer_dir.join("layer.tar").to_str().unwrap(), "."]);
        std::fs::write(work.path().join("saved/manifest.json"), b"[]").unwrap();
        let saved = work.path().join("saved.tar");
        tar(&["-C", work.path().join("saved").to_str().unwrap(), "-cf", saved.to_str().unwrap(), "."]);
        let mut files = files_of_saved_image(&std::fs::read(saved).unwrap()).unwrap();
        files.sort();
        assert_eq!(files, [long_name.as_str(), "link", "pause"]);
    }

    #[test]
    fn an_archive_without_layers_is_an_error() {
        assert_eq!(files_of_saved_image(&[0u8; 1024]).unwrap_err().to_string(), "no layer found in the saved image");
    }
}
