//! Generates `scenarios/schema.json` and the tables of docs/scenarios.md from the scenario
//! types, and tests that keep the committed files fresh (as rust-analyzer does with its
//! generated files): a stale file is rewritten and the test fails, so that it gets committed.

use std::path::{Path, PathBuf};

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use serde_json::Value;

use super::Scenario;

/// The JSON Schema of a scenario file, as committed: pretty JSON with a trailing newline.
/// `runtime_keys` are the runtimes' fact keys (`runtime::fact_keys`): a `by-runtime` step
/// takes those, `fact` and `default`, and nothing else.
pub fn schema_json(runtime_keys: &[&str]) -> String {
    let mut text = serde_json::to_string_pretty(&scenario_schema(runtime_keys)).expect("a schema is JSON");
    text.push('\n');
    text
}

fn scenario_schema(runtime_keys: &[&str]) -> Schema {
    let settings = SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(join_wrapped_lines))
        .with_transform(RecursiveTransform(describe_variant_keys));
    let mut schema = settings.into_generator().into_root_schema_for::<Scenario>();
    schema.insert("$id".to_string(), "podlab-scenario-v1".into());
    schema.insert("title".to_string(), "podlab scenario".into());
    name_the_runtime_keys(&mut schema, runtime_keys);
    schema
}

/// `by-runtime`'s keys for the runtimes, one property each (any other key is refused).
fn name_the_runtime_keys(schema: &mut Schema, runtime_keys: &[&str]) {
    let by_runtime = schema.get_mut("$defs").and_then(|definitions| definitions.get_mut("ByRuntime"));
    let by_runtime = by_runtime.and_then(Value::as_object_mut).expect("the schema defines ByRuntime");
    let step =
        by_runtime.insert("additionalProperties".to_string(), Value::Bool(false)).expect("a step for any other key");
    let properties = by_runtime.get_mut("properties").and_then(Value::as_object_mut).expect("ByRuntime has properties");
    for key in runtime_keys {
        let mut own = step.clone();
        own["description"] =
            format!("What the runtimes whose facts go by `{key}` show, where the default does not hold.").into();
        properties.insert(key.to_string(), own);
    }
}

/// Doc comments wrap long sentences over several lines; as in rustdoc, one line break is a
/// space and an empty line starts a paragraph.
fn join_wrapped_lines(schema: &mut Schema) {
    let Some(Value::String(description)) = schema.get_mut("description") else { return };
    let paragraphs: Vec<String> =
        description.split("\n\n").map(|paragraph| paragraph.split('\n').collect::<Vec<_>>().join(" ")).collect();
    *description = paragraphs.join("\n\n");
}

/// Editors show a key's own description on hover, so a one-key variant's doc comment goes on
/// its key too (`exec` in `{"exec": {...}}`), beside the variant's.
fn describe_variant_keys(schema: &mut Schema) {
    let Some(Value::Array(variants)) = schema.get_mut("oneOf") else { return };
    for variant in variants {
        let Some(description) = variant.get("description").cloned() else { continue };
        let Some(Value::Object(keys)) = variant.get_mut("properties") else { continue };
        if keys.len() != 1 {
            continue;
        }
        for key_schema in keys.values_mut().filter_map(Value::as_object_mut) {
            key_schema.entry("description").or_insert(description.clone());
        }
    }
}

/// A markdown table of the kinds of a one-key enum (steps, matchers) and their doc comments.
fn kinds_table(schema: &Value, definition: &str, header: &str) -> String {
    let variants = schema["$defs"][definition]["oneOf"].as_array().expect("a one-key enum is a oneOf");
    let mut table = format!("{header}\n| --- | --- |\n");
    for variant in variants {
        let kind = variant["required"][0].as_str().expect("each variant requires its kind");
        let description = variant["description"].as_str().expect("each variant has a doc comment");
        table.push_str(&format!("| `{kind}` | {} |\n", description.replace('|', "\\|")));
    }
    table
}

/// `text` with what lies between the line `start` and the line `end` replaced by `generated`.
fn replace_between(text: &str, start: &str, end: &str, generated: &str) -> String {
    let (before, rest) = text.split_once(start).unwrap_or_else(|| panic!("no marker {start:?}"));
    let (_, after) = rest.split_once(end).unwrap_or_else(|| panic!("no marker {end:?} after {start:?}"));
    format!("{before}{start}\n{generated}{end}{after}")
}

/// docs/scenarios.md with its tables regenerated.
fn scenarios_doc(committed: &str, runtime_keys: &[&str]) -> String {
    let schema = scenario_schema(runtime_keys).to_value();
    let steps = kinds_table(&schema, "Step", "| step | checks |");
    let matchers = kinds_table(&schema, "Matcher", "| matcher | matches when |");
    let text = replace_between(committed, STEP_TABLE_START, STEP_TABLE_END, &steps);
    replace_between(&text, MATCHER_TABLE_START, MATCHER_TABLE_END, &matchers)
}

const STEP_TABLE_START: &str = "<!-- generated from the doc comments of `Step` (xtask/src/scenario/steps/mod.rs) -->";
const STEP_TABLE_END: &str = "<!-- end of the step table -->";
const MATCHER_TABLE_START: &str =
    "<!-- generated from the doc comments of `Matcher` (xtask/src/scenario/matcher.rs) -->";
const MATCHER_TABLE_END: &str = "<!-- end of the matcher table -->";

/// Compares a generated file, named relative to the workspace, with the committed one; when they
/// differ, writes the fresh content and fails, so that the developer only has to review and commit it.
fn ensure_file_contents(relative_path: &str, fresh: &str) {
    let path = workspace_path(relative_path);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == fresh {
        return;
    }
    std::fs::write(&path, fresh).unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    panic!(
        "{relative_path} was stale and has been regenerated from the scenario types: \
         review it, commit it, and run the tests again"
    );
}

fn workspace_path(relative_path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative_path)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runtime::fact_keys;
    use crate::scenario::load;

    fn parse(text: &str, path: &Path) -> anyhow::Result<Scenario> {
        load::parse(text, path, fact_keys())
    }

    #[test]
    fn schema_json_is_fresh() {
        ensure_file_contents("scenarios/schema.json", &schema_json(fact_keys()));
    }

    #[test]
    fn docs_tables_are_fresh() {
        let path = workspace_path("docs/scenarios.md");
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        ensure_file_contents("docs/scenarios.md", &scenarios_doc(&committed, fact_keys()));
    }

    #[test]
    fn every_property_and_definition_has_a_description() {
        // Editors show the description as a field's help; a field without one is a field a
        // scenario author has to look up in the Rust source.
        let schema = scenario_schema(fact_keys()).to_value();
        let described = |subschema: &Value| {
            subschema.get("description").and_then(Value::as_str).is_some_and(|text| !text.is_empty())
        };
        let mut undescribed = Vec::new();
        let mut properties_seen = 0;
        walk(&schema, "", &mut |location, subschema| {
            let parent = location.rsplit_once('/').map_or("", |(parent, _)| parent);
            let is_named = location.is_empty() || parent.ends_with("/properties") || parent == "/$defs";
            properties_seen += usize::from(parent.ends_with("/properties"));
            if is_named && !described(subschema) {
                undescribed.push(location.to_string());
            }
        });
        assert!(properties_seen > 50, "only {properties_seen} properties seen: the walk misses some");
        assert!(undescribed.is_empty(), "without a description (add a doc comment): {undescribed:?}");
    }

    /// Calls `visit` with every subschema and its location, a JSON pointer into the schema.
    fn walk(schema: &Value, location: &str, visit: &mut dyn FnMut(&str, &Value)) {
        visit(location, schema);
        let Some(keywords) = schema.as_object() else { return };
        for (keyword, argument) in keywords {
            let here = format!("{location}/{keyword}");
            match (keyword.as_str(), argument) {
                ("$defs" | "properties", Value::Object(named)) => {
                    for (name, subschema) in named {
                        walk(subschema, &format!("{here}/{}", name.replace('~', "~0").replace('/', "~1")), visit);
                    }
                }
                ("items" | "additionalProperties", Value::Object(_)) => walk(argument, &here, visit),
                ("oneOf" | "anyOf" | "allOf", Value::Array(choices)) => {
                    for (index, choice) in choices.iter().enumerate() {
                        walk(choice, &format!("{here}/{index}"), visit);
                    }
                }
                _ => {}
            }
        }
    }

    /// A real validator, so that these tests check the schema as editors will read it.
    fn validator() -> jsonschema::Validator {
        jsonschema::validator_for(&scenario_schema(fact_keys()).to_value())
            .unwrap_or_else(|error| panic!("the generated schema is not a valid JSON Schema: {error}"))
    }

    fn schema_errors(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
        validator.iter_errors(document).map(|error| format!("{}: {error}", error.instance_path())).collect()
    }

    #[test]
    fn every_scenario_file_passes_the_schema() {
        let folder = workspace_path("scenarios");
        let entries =
            std::fs::read_dir(&folder).unwrap_or_else(|error| panic!("cannot read {}: {error}", folder.display()));
        let mut scenario_paths: Vec<PathBuf> = entries
            .map(|entry| entry.expect("a readable folder entry").path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
            .filter(|path| path.file_name().is_some_and(|name| name != "schema.json"))
            .collect();
        scenario_paths.sort();
        assert!(scenario_paths.len() >= 5, "only {} scenarios in {}", scenario_paths.len(), folder.display());
        let validator = validator();
        let mut failures = Vec::new();
        for scenario_path in &scenario_paths {
            let text = std::fs::read_to_string(scenario_path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", scenario_path.display()));
            let document: Value = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{} is not JSON: {error}", scenario_path.display()));
            let errors = schema_errors(&validator, &document);
            failures.extend(errors.iter().map(|error| format!("{}: {error}", scenario_path.display())));
        }
        assert!(failures.is_empty(), "scenario files the schema rejects:\n{}", failures.join("\n"));
    }

    /// A scenario that the schema and the loader both accept; the cases below break it.
    fn valid_scenario() -> Value {
        json!({
            "schema_version": 1,
            "description": "a base for broken variants",
            "pod": {
                "infra": { "name": "pause", "image": "podlab/pause", "publish": ["8080:80"] },
                "containers": [{ "name": "app", "image": "podlab/nginx", "share": ["net"] }]
            },
            "steps": [
                { "same-ip": { "containers": ["pause", "app"] } },
                { "logs": { "container": "app", "matches": { "not": { "contains": "error" } } } },
                { "signal": { "container": "app", "signal": "SIGTERM" } }
            ]
        })
    }

    #[test]
    fn the_schema_rejects_what_the_types_reject() {
        let validator = validator();
        let base = valid_scenario();
        let base_text = base.to_string();
        assert!(schema_errors(&validator, &base).is_empty(), "{:?}", schema_errors(&validator, &base));
        parse(&base_text, Path::new("scenarios/base.json")).expect("the loader accepts the base scenario");

        // What each case breaks, and how.
        type Case = (&'static str, fn(&mut Value));
        let cases: &[Case] = &[
            ("an unknown field", |scenario| scenario["colour"] = json!("blue")),
            ("an unknown field in a step", |scenario| scenario["steps"][0]["same-ip"]["expect"] = json!(true)),
            ("an empty step", |scenario| scenario["steps"][0] = json!({})),
            ("a step with two keys", |scenario| {
                scenario["steps"][0]["running"] = json!({ "containers": ["app"], "expect": true });
            }),
            ("an unknown step kind", |scenario| scenario["steps"][0] = json!({ "same-ips": { "containers": [] } })),
            ("a step written as a string", |scenario| scenario["steps"][0] = json!("same-ip")),
            ("a wrong type", |scenario| scenario["steps"][0]["same-ip"]["containers"] = json!("pause")),
            ("an empty matcher", |scenario| scenario["steps"][1]["logs"]["matches"]["not"] = json!({})),
            ("a matcher with two keys", |scenario| {
                scenario["steps"][1]["logs"]["matches"] = json!({ "equals": "a", "contains": "b" });
            }),
            ("schema_version 2", |scenario| scenario["schema_version"] = json!(2)),
            ("a port mapping without a container port", |scenario| {
                scenario["pod"]["infra"]["publish"] = json!(["8080"]);
            }),
            ("an unknown signal", |scenario| scenario["steps"][2]["signal"]["signal"] = json!("SIGHANGUP")),
            ("a missing field", |scenario| {
                scenario["pod"].as_object_mut().expect("the pod is an object").remove("infra");
            }),
        ];
        let mut failures = Vec::new();
        for (what, break_it) in cases {
            let mut document = base.clone();
            break_it(&mut document);
            if schema_errors(&validator, &document).is_empty() {
                failures.push(format!("{what}: the schema accepts {document}"));
            }
            // Without this, a case that broke nothing would pass for the wrong reason.
            if parse(&document.to_string(), Path::new("scenarios/broken.json")).is_ok() {
                failures.push(format!("{what}: the loader accepts {document}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
