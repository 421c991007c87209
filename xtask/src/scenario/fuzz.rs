//! A fuzzer for the loader, on stable Rust: the scenarios of scenarios/ mutated at random, byte
//! by byte and node by node (wrong types, numbers at and past their limits, unknown keys,
//! `${name}`s, deep nesting, cut files). Whatever comes in, the loader must not panic, must not
//! hang, and must name, in every rejection, the file and its line:column or the field.
//!
//! `cargo test -p xtask --lib fuzz` runs a short round; `PODLAB_FUZZ_SECONDS=60 cargo test -p
//! xtask --lib fuzz -- --ignored` a long one (CI runs a minute); `PODLAB_FUZZ_SEED` replays one.
//! Inputs that once broke a promise live in `fuzz-corpus/` and are replayed every time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::load::parse;
use crate::runtime::fact_keys;

/// The file name every input is loaded as (its `files` resolve beside the real scenarios).
const FUZZ_FILE: &str = "fuzz.json";

/// xorshift64*: enough randomness for mutations, reproducible from its seed, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn scenarios_folder() -> PathBuf {
    crate::pause_build::workspace_root().join("scenarios")
}

fn seeds() -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scenarios_folder())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json") && !path.ends_with("schema.json"))
        .collect();
    paths.sort();
    paths.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect()
}

/// Values that sit at or just past what the format allows, or are of another type.
fn odd_value(random: &mut Random) -> Value {
    let choices = [
        serde_json::json!(0),
        serde_json::json!(-1),
        serde_json::json!(255),
        serde_json::json!(256),
        serde_json::json!(3_600_000),
        serde_json::json!(3_600_001),
        serde_json::json!(65_536),
        serde_json::json!(u64::MAX),
        serde_json::json!(1e300),
        serde_json::json!(0.5),
        serde_json::json!(""),
        serde_json::json!("${nope}"),
        serde_json::json!("${"),
        serde_json::json!("(?"),
        serde_json::json!("a{99999}{99999}"),
        serde_json::json!("SIGNOPE"),
        serde_json::json!("8080:80:1"),
        serde_json::json!("/etc/passwd"),
        serde_json::json!("../../../../etc/shadow"),
        serde_json::json!(null),
        serde_json::json!(true),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!({ "not": { "not": { "not": {} } } }),
        serde_json::json!({ "eventually": { "within_ms": 1, "step": {} } }),
        serde_json::json!({ "exec": {}, "running": {} }),
    ];
    random.pick(&choices).clone()
}

/// One change somewhere in the tree: a node replaced, a key removed, an unknown key added.
fn mutate_tree(value: &mut Value, random: &mut Random) {
    let mut node = value;
    // Walk down a random path, stopping at random.
    loop {
        let children = match node {
            Value::Object(map) => map.len(),
            Value::Array(items) => items.len(),
            _ => 0,
        };
        if children == 0 || random.below(4) == 0 {
            break;
        }
        let index = random.below(children);
        node = match node {
            Value::Object(map) => map.values_mut().nth(index).expect("an index below the length"),
            Value::Array(items) => &mut items[index],
            _ => unreachable!("only containers have children"),
        };
    }
    match (random.below(5), &mut *node) {
        (0, Value::Object(map)) if !map.is_empty() => {
            let key = map.keys().nth(random.below(map.len())).cloned().expect("a key");
            map.remove(&key);
        }
        (1, Value::Object(map)) => {
            map.insert(
                random.pick(&["x", "steps", "exec", "share", "within_ms", "container"]).to_string(),
                odd_value(random),
            );
        }
        (2, Value::Array(items)) => {
            let copy = items.get(random.below(items.len())).cloned().unwrap_or_else(|| odd_value(random));
            items.push(copy);
        }
        (3, _) => {
            // Deep nesting, past serde_json's recursion limit or just under it.
            let mut deep = odd_value(random);
            for _ in 0..random.below(200) {
                deep = serde_json::json!({ "not": deep });
            }
            *node = deep;
        }
        _ => *node = odd_value(random),
    }
}

/// One change to the text itself: a byte flipped, a cut, a stray character.
fn mutate_text(text: &str, random: &mut Random) -> String {
    let mut bytes = text.as_bytes().to_vec();
    if bytes.is_empty() {
        return String::new();
    }
    let at = random.below(bytes.len());
    match random.below(4) {
        0 => bytes.truncate(at),
        1 => {
            bytes.remove(at);
        }
        2 => bytes.insert(at, *random.pick(b"{}[],:\"\\0x-\x00\xff")),
        _ => bytes[at] ^= 1 << random.below(8),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn input(seeds: &[String], random: &mut Random) -> String {
    let seed = random.pick(seeds);
    if random.below(3) == 0 {
        return mutate_text(seed, random);
    }
    let mut tree: Value = serde_json::from_str(seed).expect("the seeds are JSON");
    for _ in 0..=random.below(3) {
        mutate_tree(&mut tree, random);
    }
    serde_json::to_string_pretty(&tree).expect("a tree is JSON")
}

/// The promise for one input: no panic, and an accepted scenario or a rejection that names
/// the file and either line:column or a field.
fn check(text: &str) -> Result<(), String> {
    let path = scenarios_folder().join(FUZZ_FILE);
    let loaded =
        std::panic::catch_unwind(|| parse(text, &path, fact_keys()).map(drop).map_err(|error| format!("{error:#}")));
    let Ok(loaded) = loaded else { return Err("the loader panicked".to_string()) };
    let Err(message) = loaded else { return Ok(()) };
    let Some(rest) = message.strip_prefix(&format!("{}", path.display())) else {
        return Err(format!("the rejection does not name the file: {message}"));
    };
    if names_a_place(rest) {
        Ok(())
    } else {
        Err(format!("the rejection names neither line:column nor a field: {message}"))
    }
}

/// `:12:7: ...`, or `: steps[0].exec.argv: ...` (a field path, keys in brackets allowed:
/// `files["/etc/x"]`), after the file name.
fn names_a_place(rest: &str) -> bool {
    static FIELD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"^: [a-z_][a-z0-9_-]*(\.[a-z0-9_-]+|\[[0-9]+\]|\["[^"]*"\])*: "#).expect("a valid regex")
    });
    static POSITION: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"^:[0-9]+:[0-9]+: ").expect("a valid regex"));
    POSITION.is_match(rest) || FIELD.is_match(rest)
}

/// Runs inputs for `budget` from `seed` in a thread of its own, so that a hang shows as one.
fn fuzz(seed: u64, budget: Duration) -> (usize, Vec<(String, String)>) {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let seeds = seeds();
        let mut random = Random(seed | 1);
        let started = Instant::now();
        let (mut tried, mut broken) = (0, Vec::new());
        while started.elapsed() < budget {
            let text = input(&seeds, &mut random);
            let one = Instant::now();
            let verdict = check(&text);
            if one.elapsed() > Duration::from_secs(1) {
                broken.push((text.clone(), format!("the loader took {:?} over one input", one.elapsed())));
            }
            if let Err(problem) = verdict {
                broken.push((text, problem));
            }
            tried += 1;
        }
        let _ = sender.send((tried, broken));
    });
    receiver.recv_timeout(budget + Duration::from_secs(30)).expect("the loader hung on an input")
}

fn report(seed: u64, tried: usize, broken: &[(String, String)]) {
    eprintln!("fuzzed the loader with {tried} inputs from seed {seed}");
    let Some((text, _)) = broken.first() else { return };
    let mut problems: Vec<&str> = broken.iter().map(|(_, problem)| problem.as_str()).collect();
    problems.sort();
    problems.dedup();
    panic!(
        "{} of {tried} inputs broke a promise (seed {seed}; add them to fuzz-corpus/):\n{}\n--- the first input ---\n{text}",
        broken.len(),
        problems.join("\n")
    );
}

fn seed_from_env() -> u64 {
    std::env::var("PODLAB_FUZZ_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |since| since.as_nanos() as u64)
    })
}

#[test]
fn fuzz_the_loader_briefly() {
    let seed = seed_from_env();
    let (tried, broken) = fuzz(seed, Duration::from_secs(2));
    report(seed, tried, &broken);
}

/// The long round CI runs: `PODLAB_FUZZ_SECONDS` (default 60).
#[test]
#[ignore = "a long fuzzing round: run with --ignored (CI does, for a minute)"]
fn fuzz_the_loader_long() {
    let seconds = std::env::var("PODLAB_FUZZ_SECONDS").ok().and_then(|seconds| seconds.parse().ok()).unwrap_or(60);
    let seed = seed_from_env();
    let (tried, broken) = fuzz(seed, Duration::from_secs(seconds));
    report(seed, tried, &broken);
}

/// Inputs that once broke a promise, or that sit at a limit, kept so that they never do
/// again: each is rejected, and the rejection says where.
#[test]
fn the_corpus_holds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scenario/fuzz-corpus");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        if let Err(problem) = check(&text) {
            problems.push(format!("{}: {problem}", path.display()));
        } else if parse(&text, &scenarios_folder().join(FUZZ_FILE), fact_keys()).is_ok() {
            problems.push(format!("{}: the loader accepts it", path.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn places_are_recognised() {
    assert!(names_a_place(":12:7: unknown field"));
    assert!(names_a_place(": steps[0].exec.argv: must not be empty"));
    assert!(names_a_place(r#": pod.containers[0].files["/etc/nginx/nginx.conf"]: x does not exist"#));
    assert!(names_a_place(r#": steps[2].by-runtime.docker.process.status["Seccomp"]: `${nope}` is no value"#));
    assert!(!names_a_place(": something went wrong"));
    assert!(!names_a_place(" no colon"));
}
