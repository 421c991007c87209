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
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&scenario_schema()).expect("a schema is JSON");
    text.push('\n');
    text
}

fn scenario_schema() -> Schema {
    let settings = SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(join_wrapped_lines))
        .with_transform(RecursiveTransform(describe_variant_keys));
    let mut schema = settings.into_generator().into_root_schema_for::<Scenario>();
    schema.insert("$id".to_string(), "podlab-scenario-v1".into());
    schema.insert("title".to_string(), "podlab scenario".into());
    schema
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
fn scenarios_doc(committed: &str) -> String {
    let schema = scenario_schema().to_value();
    let steps = kinds_table(&schema, "Step", "| step | checks |");
    let matchers = kinds_table(&schema, "Matcher", "| matcher | matches when |");
    let text = replace_between(committed, STEP_TABLE_START, STEP_TABLE_END, &steps);
    replace_between(&text, MATCHER_TABLE_START, MATCHER_TABLE_END, &matchers)
}

const STEP_TABLE_START: &str = "<!-- generated from the doc comments of `Step` (xtask/src/scenario/mod.rs) -->";
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
    use super::*;

    #[test]
    fn schema_json_is_fresh() {
        ensure_file_contents("scenarios/schema.json", &schema_json());
    }

    #[test]
    fn docs_tables_are_fresh() {
        let path = workspace_path("docs/scenarios.md");
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        ensure_file_contents("docs/scenarios.md", &scenarios_doc(&committed));
    }

    #[test]
    fn every_property_and_definition_has_a_description() {
        // Editors show the description as a field's help; a field without one is a field a
        // scenario author has to look up in the Rust source.
        let schema = scenario_schema().to_value();
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
}
