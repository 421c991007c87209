//! The same image as a docker-archive (what `docker save` writes and `ctr images import`
//! takes): the root filesystem tar as its one layer, an image config made from the recipe's
//! `changes`, and a `manifest.json` that names it `podlab/...:latest`. Written beside the
//! root filesystem tar, once per tar (whose name is its content's key).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::ImageTar;
use crate::cancel::Cancel;
use crate::command::{self, Output, argv};

/// `podlab-pause-KEY.tar` gets `podlab-pause-KEY.docker-archive.tar`.
pub const SUFFIX: &str = ".docker-archive.tar";

/// The docker-archive of `image`, written now or found from an earlier run.
pub fn docker_archive(image: &ImageTar, cancel: Cancel) -> Result<PathBuf> {
    let stem = image.tar.file_stem().and_then(|stem| stem.to_str()).context("an image tar without a name")?;
    let archive = image.tar.with_file_name(format!("{stem}{SUFFIX}"));
    if archive.is_file() {
        return Ok(archive);
    }
    let config = image_config(&image.changes, &layer_digest(&image.tar, cancel)?)?;
    let manifest =
        json!([{ "Config": "config.json", "RepoTags": [format!("{}:latest", image.name)], "Layers": ["layer.tar"] }]);
    super::tarball::write_into_cache(&archive, |file| {
        let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
        append_bytes(&mut builder, "config.json", &serde_json::to_vec(&config)?)?;
        builder
            .append_path_with_name(&image.tar, "layer.tar")
            .with_context(|| format!("cannot copy {} into the archive", image.tar.display()))?;
        append_bytes(&mut builder, "manifest.json", &serde_json::to_vec(&manifest)?)?;
        builder.into_inner().context("cannot finish the archive")?.flush()?;
        Ok(())
    })?;
    Ok(archive)
}

fn append_bytes<W: Write>(builder: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, bytes).with_context(|| format!("cannot write {name} into the archive"))
}

/// `sha256:...` of the layer as it is: the image config names its layers by this digest, and
/// containerd checks it when it unpacks.
fn layer_digest(tar: &Path, cancel: Cancel) -> Result<String> {
    let output = command::run(&argv(&["sha256sum", &tar.display().to_string()]), Duration::from_secs(120), cancel)
        .and_then(Output::ok)
        .context("cannot hash the image layer (sha256sum, from coreutils)")?;
    let text = output.stdout_text();
    let hex = text.split_whitespace().next().filter(|hex| hex.len() == 64).context("sha256sum printed no digest")?;
    Ok(format!("sha256:{hex}"))
}

/// An OCI image config from Dockerfile lines (`USER 65535:65535`, `ENTRYPOINT ["/pause"]`,
/// `CMD [...]`, `ENV NAME=value`, `WORKDIR /path`): those `docker import --change` takes that
/// the recipes use.
fn image_config(changes: &[String], layer_digest: &str) -> Result<Value> {
    let mut config = serde_json::Map::new();
    let mut environment = vec![Value::from("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")];
    for change in changes {
        let (instruction, rest) = change.split_once(' ').unwrap_or((change, ""));
        let rest = rest.trim();
        match instruction {
            "USER" => config.insert("User".to_string(), Value::from(rest)),
            "WORKDIR" => config.insert("WorkingDir".to_string(), Value::from(rest)),
            "ENV" => {
                environment.push(Value::from(rest));
                None
            }
            "ENTRYPOINT" | "CMD" => {
                let words: Vec<String> = serde_json::from_str(rest)
                    .with_context(|| format!("`{change}`: only the JSON form ([\"...\"]) is written by the recipes"))?;
                let key = if instruction == "CMD" { "Cmd" } else { "Entrypoint" };
                config.insert(key.to_string(), Value::from(words))
            }
            _ => bail!("`{change}`: an image change the docker-archive writer does not know"),
        };
    }
    config.insert("Env".to_string(), Value::from(environment));
    Ok(json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "history": [{ "created_by": "podlab (xtask/src/images)" }]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_says_what_docker_import_would() {
        let changes = [r#"ENTRYPOINT ["/pause"]"#.to_string(), "USER 65535:65535".to_string()];
        let config = image_config(&changes, "sha256:00").unwrap();
        assert_eq!(config["config"]["Entrypoint"], json!(["/pause"]));
        assert_eq!(config["config"]["User"], "65535:65535");
        assert_eq!(config["rootfs"]["diff_ids"], json!(["sha256:00"]));
        assert!(image_config(&["EXPOSE 80".to_string()], "sha256:00").is_err());
    }
}
