//! Loads scenario files strictly: a syntax error, an unknown field, a wrong type or a
//! missing field names the file, line, column and field; what parses is then checked
//! for sense (known containers, valid matchers, files that exist) before anything runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::steps::{SavedValues, ScenarioFacts};
use super::{Container, NamespaceKind, Scenario};

/// Every `*.json` scenario under `directory` (not the schema), sorted by path.
/// `runtime_keys` are the runtimes' fact keys (`runtime::fact_keys`), which `by-runtime` steps name.
pub fn load_all(directory: &Path, runtime_keys: &[&str]) -> Result<Vec<Scenario>> {
    let entries = std::fs::read_dir(directory).with_context(|| format!("cannot read {}", directory.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .filter(|path| path.file_name().is_some_and(|name| name != "schema.json"))
        .collect();
    paths.sort();
    paths.iter().map(|path| load(path, runtime_keys)).collect()
}

pub fn load(path: &Path, runtime_keys: &[&str]) -> Result<Scenario> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text, path, runtime_keys)
}

/// Parses and checks one scenario; `path` names it in errors and anchors its `files`.
pub fn parse(text: &str, path: &Path, runtime_keys: &[&str]) -> Result<Scenario> {
    let deserializer = &mut serde_json::Deserializer::from_str(text);
    let mut scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        let field = if field == "." { String::new() } else { format!("{field}: ") };
        anyhow::anyhow!("{}:{}:{}: {field}{}", path.display(), inner.line(), inner.column(), without_position(&message))
    })?;
    scenario.path = path.to_path_buf();
    check(&scenario, runtime_keys).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    Ok(scenario)
}

/// serde_json ends its messages with " at line L column C"; the caller puts the position first.
fn without_position(message: &str) -> &str {
    message.rfind(" at line ").map_or(message, |index| &message[..index])
}

/// What the types cannot say: the checks that need the whole scenario.
fn check(scenario: &Scenario, runtime_keys: &[&str]) -> Result<()> {
    if scenario.steps.is_empty() {
        bail!("steps: a scenario needs at least one step");
    }
    let pod = &scenario.pod;
    if !pod.infra.share.is_empty() {
        bail!("pod.infra.share: the infra container owns the namespaces; only app containers share");
    }
    let mut names = BTreeSet::new();
    let containers = std::iter::once(("pod.infra".to_string(), &pod.infra)).chain(
        pod.containers.iter().enumerate().map(|(index, container)| (format!("pod.containers[{index}]"), container)),
    );
    for (field, container) in containers {
        check_container(scenario, &field, container)?;
        if !names.insert(container.name.as_str()) {
            bail!("{field}.name: `{}` is used twice", container.name);
        }
    }
    let known = names.iter().copied().collect::<Vec<_>>().join(", ");
    let published: BTreeSet<u16> = std::iter::once(&pod.infra)
        .chain(&pod.containers)
        .flat_map(|container| container.publish.iter())
        .map(|mapping| mapping.host)
        .collect();
    let facts = ScenarioFacts { published_ports: published, runtime_keys };
    let mut saved = SavedValues::default();
    for (index, step) in scenario.steps.iter().enumerate() {
        let field = step.field_in(&format!("steps[{index}]"));
        for name in step.format().container_names() {
            if !names.contains(name) {
                bail!("{field}: no container named `{name}` in the pod (it has {known})");
            }
        }
        step.format().check(&field, &facts)?;
        step.format().check_references(&field, &mut saved)?;
    }
    Ok(())
}

fn check_container(scenario: &Scenario, field: &str, container: &Container) -> Result<()> {
    if container.name.is_empty() || !container.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("{field}.name: `{}` must be letters, digits, `-` or `_`", container.name);
    }
    if container.image.is_empty() {
        bail!("{field}.image: must not be empty");
    }
    if container.command.is_some() && container.args.is_some() {
        bail!("{field}: give `command` (replaces the entrypoint) or `args` (appended to it), not both");
    }
    if container.command.as_ref().is_some_and(Vec::is_empty) {
        bail!("{field}.command: must not be empty");
    }
    let mut seen = BTreeSet::new();
    for kind in &container.share {
        if !seen.insert(kind) {
            bail!("{field}.share: `{}` is listed twice", kind.proc_name());
        }
        if matches!(kind, NamespaceKind::Mnt | NamespaceKind::User | NamespaceKind::Cgroup) {
            bail!("{field}.share: a pod shares net, ipc, pid and uts; `{}` cannot be shared", kind.proc_name());
        }
    }
    for (target, source) in &container.files {
        if !target.starts_with('/') {
            bail!("{field}.files: `{target}` must be an absolute path in the container");
        }
        let source_path = file_source(scenario, source);
        if !source_path.is_file() {
            bail!("{field}.files[\"{target}\"]: {} does not exist", source_path.display());
        }
    }
    Ok(())
}

/// A `files` source, relative to the scenario file's folder.
pub fn file_source(scenario: &Scenario, source: &str) -> PathBuf {
    scenario.path.parent().unwrap_or(Path::new(".")).join(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fact_keys;
    use crate::scenario::Step;

    const MINIMAL: &str = r#"{
  "schema_version": 1,
  "description": "minimal",
  "pod": {
    "infra": { "name": "pause", "image": "podlab/pause", "publish": ["8080:80"] },
    "containers": [ { "name": "app", "image": "podlab/nginx", "share": ["net"] } ]
  },
  "steps": [ { "same-ip": { "containers": ["pause", "app"] } } ]
}"#;

    fn error_of(text: &str) -> String {
        parse(text, Path::new("scenarios/example.json"), fact_keys())
            .err()
            .map(|error| format!("{error:#}"))
            .unwrap_or_default()
    }

    #[test]
    fn a_minimal_scenario_loads() {
        let scenario = parse(MINIMAL, Path::new("scenarios/example.json"), fact_keys()).unwrap();
        assert_eq!(scenario.pod.containers[0].share, [NamespaceKind::Net]);
        assert_eq!(scenario.steps[0].key(), "same-ip");
    }

    #[test]
    fn an_unknown_field_names_file_line_column_and_field() {
        let text = MINIMAL.replace(r#""image": "podlab/nginx","#, r#""image": "podlab/nginx", "sahre": [],"#);
        assert_eq!(
            error_of(&text),
            "scenarios/example.json:6:69: pod.containers[0].sahre: unknown field `sahre`, expected one of \
             `name`, `image`, `share`, `publish`, `files`, `command`, `args`, `user`, `env`, `restart`"
        );
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let text = MINIMAL.replace(r#""schema_version": 1"#, r#""schema_version": "1""#);
        assert_eq!(
            error_of(&text),
            r#"scenarios/example.json:2:23: schema_version: invalid type: string "1", expected u32"#
        );
    }

    #[test]
    fn a_missing_field_is_an_error() {
        let text = MINIMAL.replace(r#""description": "minimal","#, "");
        assert!(error_of(&text).ends_with("missing field `description`"), "{}", error_of(&text));
    }

    #[test]
    fn an_empty_matcher_is_an_error() {
        let text = MINIMAL.replace(
            r#"{ "same-ip": { "containers": ["pause", "app"] } }"#,
            r#"{ "logs": { "container": "pause", "matches": {} } }"#,
        );
        assert_eq!(
            error_of(&text),
            "scenarios/example.json:8:60: steps[0].logs.matches: \
             an empty matcher: give one of equals, contains, regex, not, all"
        );
    }

    #[test]
    fn an_empty_step_or_a_step_with_two_keys_says_what_to_write() {
        let steps = r#"[ { "same-ip": { "containers": ["pause", "app"] } } ]"#;
        let empty = error_of(&MINIMAL.replace(steps, "[ {} ]"));
        assert!(empty.contains("steps[0]: an empty step: give one of exec, same-ip,"), "{empty}");
        let two = error_of(&MINIMAL.replace(
            steps,
            r#"[ { "same-ip": { "containers": ["pause", "app"] }, "running": { "containers": ["app"], "expect": true } } ]"#,
        ));
        assert!(two.contains("a step has one key, this one also has `running`: make it a step of its own"), "{two}");
    }

    #[test]
    fn an_unknown_container_is_named() {
        let text = MINIMAL.replace(r#"["pause", "app"]"#, r#"["pause", "nginx"]"#);
        assert_eq!(
            error_of(&text),
            "scenarios/example.json: steps[0].same-ip: no container named `nginx` in the pod (it has app, pause)"
        );
    }

    #[test]
    fn sense_checks() {
        let cases = [
            (r#""share": ["net"]"#, r#""share": ["net", "mnt"]"#, "a pod shares net, ipc, pid and uts"),
            (r#""name": "app""#, r#""name": "pause""#, "`pause` is used twice"),
        ];
        for (from, to, expected) in cases {
            let error = error_of(&MINIMAL.replace(from, to));
            assert!(error.contains(expected), "replacing {from} with {to}: {error}");
        }
    }

    /// A repeat must run at least once, in no more lanes than tries; signals are named.
    #[test]
    fn repeats_and_signal_lists_are_checked() {
        let steps = r#"[ { "same-ip": { "containers": ["pause", "app"] } } ]"#;
        let probe = r#"{ "exec": { "container": "app", "argv": ["true"] } }"#;
        let cases = [
            (
                format!(r#"[ {{ "repeat": {{ "times": 0, "step": {probe} }} }} ]"#),
                "steps[0].repeat.times: must be at least 1",
            ),
            (
                format!(r#"[ {{ "repeat": {{ "times": 2, "at_once": 3, "step": {probe} }} }} ]"#),
                "steps[0].repeat.at_once: must be from 1 to times (2)",
            ),
            (
                r#"[ { "process": { "container": "pause", "not_ignoring": ["SIGTERM", "SIGNOPE"] } } ]"#.to_string(),
                "steps[0].process.not_ignoring[1]: `SIGNOPE` is not a signal name",
            ),
        ];
        for (to, expected) in cases {
            let error = error_of(&MINIMAL.replace(steps, &to));
            assert!(error.contains(expected), "with {to}: {error}");
        }
        let fine = format!(r#"[ {{ "repeat": {{ "times": 3, "at_once": 3, "step": {probe} }} }} ]"#);
        assert_eq!(error_of(&MINIMAL.replace(steps, &fine)), "");
    }

    #[test]
    fn checks_that_live_in_a_field_type_name_line_and_column() {
        let cases = [
            (
                r#""schema_version": 1"#,
                r#""schema_version": 2"#,
                "scenarios/example.json:2:21: schema_version: expected 1, found 2",
            ),
            (
                r#""publish": ["8080:80"]"#,
                r#""publish": ["8080"]"#,
                "scenarios/example.json:5:76: pod.infra.publish[0]: `8080` must be HOST_PORT:CONTAINER_PORT",
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(error_of(&MINIMAL.replace(from, to)), expected, "replacing {from} with {to}");
        }
    }

    /// Numbers a run could not honour (an exit code no process has, a wait of zero or of
    /// millennia) stop the load, with the position.
    #[test]
    fn numbers_out_of_range_name_line_and_column() {
        let steps = r#"[ { "same-ip": { "containers": ["pause", "app"] } } ]"#;
        let cases = [
            (
                r#"[ { "exec": { "container": "app", "argv": ["true"], "exit_code": 300 } } ]"#,
                "scenarios/example.json:8:79: steps[0].exec.exit_code: invalid value: integer `300`, expected u8",
            ),
            (
                r#"[ { "wait-exit": { "container": "app", "within_ms": 0 } } ]"#,
                "scenarios/example.json:8:66: steps[0].wait-exit.within_ms: 0 ms is out of range: give 1 to 3600000 (an hour)",
            ),
            (
                r#"[ { "eventually": { "within_ms": 1000000000000000, "step": { "running": { "containers": ["app"], "expect": true } } } } ]"#,
                "scenarios/example.json:8:60: steps[0].eventually.within_ms: 1000000000000000 ms is out of range: give 1 to 3600000 (an hour)",
            ),
            (
                r#"[ { "stop": { "container": "app", "grace_seconds": 70000 } } ]"#,
                "scenarios/example.json:8:67: steps[0].stop.grace_seconds: invalid value: integer `70000`, expected u16",
            ),
        ];
        for (to, expected) in cases {
            assert_eq!(error_of(&MINIMAL.replace(steps, to)), expected, "steps {to}");
        }
    }

    /// Signal names and regexes are parsed as the file is read: their errors have a position.
    #[test]
    fn signals_and_regexes_are_parsed_with_their_position() {
        let steps = r#"[ { "same-ip": { "containers": ["pause", "app"] } } ]"#;
        let cases = [
            (
                r#"[ { "signal": { "container": "app", "signal": "SIGHANGUP" } } ]"#,
                "scenarios/example.json:8:70: steps[0].signal.signal: `SIGHANGUP` is not a signal name (SIGTERM, SIGINT, ...)",
            ),
            (
                r#"[ { "logs": { "container": "app", "matches": { "regex": "(" } } } ]"#,
                "scenarios/example.json:8:72: steps[0].logs.matches.regex: invalid regex: regex parse error:",
            ),
        ];
        for (to, expected) in cases {
            let error = error_of(&MINIMAL.replace(steps, to));
            assert!(error.starts_with(expected), "steps {to}: {error}");
        }
    }

    #[test]
    fn a_value_is_used_only_after_a_step_saves_it() {
        let steps = r#"[ { "same-ip": { "containers": ["pause", "app"] } } ]"#;
        let save = r#"{ "exec": { "container": "app", "argv": ["hostname"], "save_stdout_as": "name" } }"#;
        let use_it =
            r#"{ "exec": { "container": "app", "argv": ["echo", "${name}"], "stdout": { "contains": "${name}" } } }"#;
        let in_order = format!("[ {save}, {use_it} ]");
        assert!(parse(&MINIMAL.replace(steps, &in_order), Path::new("scenarios/example.json"), fact_keys()).is_ok());
        assert_eq!(
            error_of(&MINIMAL.replace(steps, &format!("[ {use_it}, {save} ]"))),
            "scenarios/example.json: steps[0].exec.argv[1]: `${name}` is no value an earlier step saves with \
             save_stdout_as (none is saved before it)"
        );
        let typo = use_it.replace(r#""echo", "${name}""#, r#""echo""#).replace("${name}", "${nmae}");
        let nested = format!(r#"[ {save}, {{ "eventually": {{ "within_ms": 1000, "step": {typo} }} }} ]"#);
        assert_eq!(
            error_of(&MINIMAL.replace(steps, &nested)),
            "scenarios/example.json: steps[1].eventually.step.exec.stdout: `${nmae}` is no value an earlier step \
             saves with save_stdout_as (saved before it: name)"
        );
    }

    #[test]
    fn a_by_runtime_step_gives_every_runtime_a_step_and_saves_only_what_all_save() {
        let steps = r#"[ { "same-ip": { "containers": ["pause", "app"] } } ]"#;
        let save = r#"{ "exec": { "container": "app", "argv": ["hostname"], "save_stdout_as": "name" } }"#;
        let save_short = r#"{ "exec": { "container": "app", "argv": ["hostname", "-s"], "save_stdout_as": "name" } }"#;
        let plain = r#"{ "exec": { "container": "app", "argv": ["true"] } }"#;
        let use_it = r#"{ "exec": { "container": "app", "argv": ["echo", "${name}"] } }"#;
        let by_runtime = |entries: &str| format!(r#"{{ "by-runtime": {{ "fact": "f", {entries} }} }}"#);
        let with = |step: String| MINIMAL.replace(steps, &format!("[ {step}, {use_it} ]"));
        let all = by_runtime(&format!(r#""default": {save}, "cri": {save_short}"#));
        let scenario = parse(&with(all), Path::new("scenarios/example.json"), fact_keys()).unwrap();
        let Step::ByRuntime(by_runtime_step) = &scenario.steps[0] else { panic!("not a by-runtime step") };
        assert_eq!(by_runtime_step.step_for("cri"), by_runtime_step.own.first().map(|(_, step)| step));
        assert_eq!(by_runtime_step.step_for("podman"), by_runtime_step.default.as_deref());
        let one = by_runtime(&format!(r#""default": {save}, "podman": {plain}"#));
        assert_eq!(
            error_of(&with(one)),
            "scenarios/example.json: steps[1].exec.argv[1]: `${name}` is no value an earlier step saves with \
             save_stdout_as (none is saved before it)"
        );
        let cases = [
            (
                format!(r#""docker": {plain}, "cri": {save}"#),
                "steps[0].by-runtime: no step for podman: give it one, or a default",
            ),
            (
                format!(r#""default": {plain}, "crio": {save}"#),
                "steps[0].by-runtime.crio: no runtime's facts go by `crio`; the keys are default, docker, cri, podman",
            ),
            (
                format!(r#""default": {plain}, "docker": {save}, "cri": {save_short}, "podman": {use_it}"#),
                "steps[0].by-runtime.default: every runtime has a step of its own, so the default is never used",
            ),
            (
                format!(r#""default": {plain}, "docker": {save}, "podman": {plain}"#),
                "steps[0].by-runtime.podman: the same step as default: say it once, in default, for every runtime it \
                 holds for",
            ),
            (
                format!(r#""default": {plain}, "cri": {{ "exec": {{ "container": "nobody", "argv": ["true"] }} }}"#),
                "steps[0].by-runtime: no container named `nobody` in the pod",
            ),
        ];
        for (entries, expected) in cases {
            let error = error_of(&MINIMAL.replace(steps, &format!("[ {} ]", by_runtime(&entries))));
            assert!(error.contains(expected), "expected {expected:?} in {error:?}");
        }
        let twice = by_runtime(&format!(r#""default": {plain}, "cri": {save}, "cri": {save_short}"#));
        assert!(error_of(&MINIMAL.replace(steps, &format!("[ {twice} ]"))).contains("`cri` is written twice"));
    }

    #[test]
    fn a_port_mapping_reads_and_prints_as_written() {
        let scenario = parse(MINIMAL, Path::new("scenarios/example.json"), fact_keys()).unwrap();
        let mapping = scenario.pod.infra.publish[0];
        assert_eq!((mapping.host, mapping.container), (8080, 80));
        assert_eq!(mapping.to_string(), "8080:80");
    }
}
