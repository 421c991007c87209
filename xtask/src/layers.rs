//! The layers of xtask's modules, lowest first, and the test that keeps them: a module uses
//! modules of its own layer and of those below, never of one above (ARCHITECTURE.md says why).
//! Test code is free to use any module: a test of the scenario format may check the files
//! against the runtimes' registry.

use std::path::{Path, PathBuf};

/// Each layer's top-level modules (`xtask/src/<module>` or `<module>.rs`). Every module of
/// lib.rs is in exactly one.
const LAYERS: &[(&str, &[&str])] = &[
    ("pure data", &["names", "plan", "report", "scenario"]),
    (
        "this machine and processes",
        &[
            "cancel",
            "command",
            "host",
            "host_ports",
            "images",
            "machine",
            "pause_build",
            "progress",
            "side_by_side",
            "terminal",
            "unix_grpc",
            "unix_http",
        ],
    ),
    ("runtimes", &["runtime"]),
    ("the suite", &["faults", "lab", "pod", "runner"]),
    ("commands", &["commands"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, modules)| modules.contains(&module))
}

/// The code of a source file that is not test code: its `#[cfg(test)] mod tests` left out.
fn production(text: &str) -> &str {
    let end = ["#[cfg(test)]\nmod tests", "#[cfg(test)]\npub mod tests"]
        .iter()
        .filter_map(|start| text.find(start))
        .min()
        .unwrap_or(text.len());
    &text[..end]
}

/// Every source file of xtask but the test-only modules (those declared `#[cfg(test)] mod
/// name;`), relative to `xtask/src`, with its code that is not test code: for the tests that
/// hold the whole tree to a rule (this file's, `command`'s, `cancel`'s).
pub fn production_sources() -> Vec<(PathBuf, String)> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    source_files(&source)
        .into_iter()
        .map(|(file, text)| (file.strip_prefix(&source).unwrap().to_path_buf(), production(&text).to_string()))
        .collect()
}

/// The top-level modules some code names as `crate::module` (`crate::{a, b::c}` included),
/// its comments left out.
fn used_modules(code: &str) -> Vec<String> {
    let code: String = code.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let is_name = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    let bytes = code.as_bytes();
    let mut used = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let mut index = at + "crate::".len();
        if bytes.get(index) != Some(&b'{') {
            let end = (index..bytes.len()).find(|&end| !is_name(bytes[end])).unwrap_or(bytes.len());
            used.push(code[index..end].to_string());
            continue;
        }
        // A group: the first name of each item at depth one.
        let (mut depth, mut item_starts) = (0, true);
        while index < bytes.len() {
            match bytes[index] {
                b'{' => {
                    depth += 1;
                    item_starts = depth == 1;
                }
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                b',' if depth == 1 => item_starts = true,
                byte if item_starts && is_name(byte) => {
                    let end = (index..bytes.len()).find(|&end| !is_name(bytes[end])).unwrap_or(bytes.len());
                    used.push(code[index..end].to_string());
                    item_starts = false;
                    index = end;
                    continue;
                }
                byte if !byte.is_ascii_whitespace() => item_starts = false,
                _ => {}
            }
            index += 1;
        }
    }
    used
}

/// Every .rs file under `folder` with its text, but those of modules declared `#[cfg(test)] mod name;`.
fn source_files(folder: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut test_only = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(source_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for rest in text.split("#[cfg(test)]\nmod ").skip(1) {
                let name = rest.split(';').next().unwrap_or_default();
                if !name.contains(char::is_whitespace) {
                    test_only.push(folder.join(format!("{name}.rs")));
                }
            }
            files.push((path, text));
        }
    }
    files.retain(|(file, _)| !test_only.contains(file));
    files
}

#[test]
fn every_module_has_a_layer() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        let Some(module) = line.trim_start_matches("pub ").strip_prefix("mod ").and_then(|rest| rest.strip_suffix(';'))
        else {
            continue;
        };
        if module != "layers" {
            assert!(layer_of(module).is_some(), "xtask/src/layers.rs gives module `{module}` no layer: give it one");
        }
    }
}

#[test]
fn no_module_uses_one_above_it() {
    let mut upward = Vec::new();
    for (relative, code) in production_sources() {
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs");
        let Some(own) = layer_of(module) else { continue };
        for used in used_modules(&code) {
            if let Some(layer) = layer_of(&used).filter(|layer| *layer > own) {
                upward.push(format!(
                    "{} ({}) uses crate::{used} ({})",
                    relative.display(),
                    LAYERS[own].0,
                    LAYERS[layer].0
                ));
            }
        }
    }
    assert!(upward.is_empty(), "modules that use a layer above their own:\n{}", upward.join("\n"));
}

#[test]
fn uses_are_read_from_paths_and_groups() {
    let text = "use crate::runtime::{self, Runtime};\nuse crate::{cancel::Cancel, names};\n// crate::lab\nfn f() { crate::pod::x(); }\n#[cfg(test)]\nmod tests { use crate::commands; }";
    assert_eq!(used_modules(production(text)), ["runtime", "cancel", "names", "pod"]);
}
