//! Keeps `scenarios/schema.json` and the Rust types in agreement: a small JSON Schema validator
//! for only the keywords the schema may use, and tests that put scenarios through both.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value, json};

use super::{
    Container, ContainerRef, Containers, CpuIdle, Eventually, Exec, Http, Image, Logs, Matcher, NamespaceKind, Pid1,
    Pod, Process, RestartPolicy, Running, SameHostname, SameNamespace, Scenario, SignalStep, Step, Stop, WaitExit,
    parse,
};

/// One place where a document breaks the schema.
#[derive(Debug)]
struct SchemaError {
    /// A JSON pointer into the document; empty for the document itself.
    path: String,
    message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "(document)" } else { &self.path };
        write!(formatter, "{path}: {}", self.message)
    }
}

fn schema_error(path: &str, message: String) -> SchemaError {
    SchemaError { path: path.to_string(), message }
}

/// A validator for the subset of JSON Schema 2020-12 that `scenarios/schema.json` may use:
/// `$schema`, `$id`, `$ref` (to `#/$defs/NAME` only), `$defs`, `title`, `description`, `type`,
/// `properties`, `required`, `additionalProperties`, `items`, `minItems`, `enum`, `const`,
/// `minimum`, `maximum`, `minProperties`, `maxProperties`, `oneOf`, `default`, `examples`.
/// Any other keyword panics: a keyword this validator skipped would look like a rule in the
/// schema while the tests checked nothing.
struct Validator<'schema> {
    root: &'schema Value,
}

impl<'schema> Validator<'schema> {
    /// Checks the shape of the whole schema first, so that an unknown keyword fails even where no
    /// document reaches it (an optional property, a definition nothing refers to).
    fn new(root: &'schema Value) -> Self {
        check_schema_shape(root, root, "#");
        Validator { root }
    }

    fn validate(&self, document: &Value) -> Vec<SchemaError> {
        self.validate_against(self.root, document)
    }

    /// Checks a document against one part of the schema, such as a property with a `default`.
    fn validate_against(&self, schema: &Value, document: &Value) -> Vec<SchemaError> {
        let mut errors = Vec::new();
        self.check(schema, document, "", &mut errors);
        errors
    }

    fn check(&self, schema: &Value, instance: &Value, path: &str, errors: &mut Vec<SchemaError>) {
        let keywords = schema_object(path, schema);
        for (keyword, argument) in keywords {
            match keyword.as_str() {
                // Annotations: they help editors and readers, and constrain nothing.
                "$schema" | "$id" | "$defs" | "title" | "description" | "default" | "examples" => {}
                "$ref" => self.check(resolve(self.root, argument), instance, path, errors),
                "type" => {
                    let allowed = type_names(keyword, argument);
                    if !allowed.iter().any(|type_name| has_type(instance, type_name)) {
                        let message = format!("expected {}, found {}", allowed.join(" or "), type_of(instance));
                        errors.push(schema_error(path, message));
                    }
                }
                "properties" => {
                    let Value::Object(object) = instance else { continue };
                    for (name, property_schema) in schema_map(keyword, argument) {
                        if let Some(value) = object.get(name) {
                            self.check(property_schema, value, &pointer(path, name), errors);
                        }
                    }
                }
                "required" => {
                    let Value::Object(object) = instance else { continue };
                    for name in string_list(keyword, argument) {
                        if !object.contains_key(name) {
                            errors.push(schema_error(path, format!("missing required property `{name}`")));
                        }
                    }
                }
                "additionalProperties" => {
                    let Value::Object(object) = instance else { continue };
                    let declared = keywords.get("properties").map(|properties| schema_map("properties", properties));
                    for (name, value) in object {
                        if declared.is_some_and(|declared| declared.contains_key(name)) {
                            continue;
                        }
                        if argument == &Value::Bool(false) {
                            errors.push(schema_error(path, format!("unknown property `{name}`")));
                        } else {
                            self.check(argument, value, &pointer(path, name), errors);
                        }
                    }
                }
                "items" => {
                    let Value::Array(items) = instance else { continue };
                    for (index, item) in items.iter().enumerate() {
                        self.check(argument, item, &pointer(path, &index.to_string()), errors);
                    }
                }
                "minItems" => {
                    let Value::Array(items) = instance else { continue };
                    let minimum = count(keyword, argument);
                    if items.len() < minimum {
                        let message = format!("expected at least {minimum} items, found {}", items.len());
                        errors.push(schema_error(path, message));
                    }
                }
                "minProperties" | "maxProperties" => {
                    let Value::Object(object) = instance else { continue };
                    let limit = count(keyword, argument);
                    let (too_few, too_many) = (object.len() < limit, object.len() > limit);
                    if (keyword == "minProperties" && too_few) || (keyword == "maxProperties" && too_many) {
                        let names: Vec<&str> = object.keys().map(String::as_str).collect();
                        let message = format!("expected {keyword} {limit}, found {} ({names:?})", object.len());
                        errors.push(schema_error(path, message));
                    }
                }
                "enum" => {
                    let choices = value_list(keyword, argument);
                    if !choices.iter().any(|choice| json_equal(choice, instance)) {
                        let choices: Vec<String> = choices.iter().map(Value::to_string).collect();
                        let message = format!("expected one of {}, found {instance}", choices.join(", "));
                        errors.push(schema_error(path, message));
                    }
                }
                "const" => {
                    if !json_equal(argument, instance) {
                        errors.push(schema_error(path, format!("expected {argument}, found {instance}")));
                    }
                }
                "minimum" | "maximum" => {
                    let Value::Number(number) = instance else { continue };
                    let limit = number_argument(keyword, argument);
                    let ordering = compare_numbers(number, limit);
                    if (keyword == "minimum" && ordering == Ordering::Less)
                        || (keyword == "maximum" && ordering == Ordering::Greater)
                    {
                        errors.push(schema_error(path, format!("expected {keyword} {limit}, found {number}")));
                    }
                }
                "oneOf" => self.check_one_of(schema_list(keyword, argument), instance, path, errors),
                unknown => unknown_keyword(path, unknown),
            }
        }
    }

    fn check_one_of(&self, choices: &[Value], instance: &Value, path: &str, errors: &mut Vec<SchemaError>) {
        let mut matching = 0;
        let mut reasons = Vec::new();
        for (index, choice) in choices.iter().enumerate() {
            let mut choice_errors = Vec::new();
            self.check(choice, instance, path, &mut choice_errors);
            if choice_errors.is_empty() {
                matching += 1;
            }
            reasons.extend(choice_errors.iter().map(|error| format!("choice {}: {error}", index + 1)));
        }
        let message = match matching {
            1 => return,
            0 => format!("matches none of the {} choices of oneOf ({})", choices.len(), reasons.join("; ")),
            _ => format!("matches {matching} of the {} choices of oneOf, where exactly one must", choices.len()),
        };
        errors.push(schema_error(path, message));
    }
}

/// Walks the whole schema once, checking that it uses only known keywords, each with an argument
/// of the right shape, and that every `$ref` resolves.
fn check_schema_shape(root: &Value, schema: &Value, location: &str) {
    for (keyword, argument) in schema_object(location, schema) {
        let here = format!("{location}/{keyword}");
        match keyword.as_str() {
            "$schema" | "$id" | "title" | "description" => {
                assert!(argument.is_string(), "{here}: must be a string, found {argument}");
            }
            "default" | "const" => {}
            "examples" | "enum" => {
                value_list(&here, argument);
            }
            "$ref" => {
                resolve(root, argument);
            }
            "$defs" | "properties" => {
                for (name, subschema) in schema_map(&here, argument) {
                    check_schema_shape(root, subschema, &format!("{here}/{name}"));
                }
            }
            "type" => {
                type_names(&here, argument);
            }
            "required" => {
                string_list(&here, argument);
            }
            "additionalProperties" => {
                if argument != &Value::Bool(false) {
                    check_schema_shape(root, argument, &here);
                }
            }
            "items" => check_schema_shape(root, argument, &here),
            "minItems" | "minProperties" | "maxProperties" => {
                count(&here, argument);
            }
            "minimum" | "maximum" => {
                number_argument(&here, argument);
            }
            "oneOf" => {
                for (index, choice) in schema_list(&here, argument).iter().enumerate() {
                    check_schema_shape(root, choice, &format!("{here}/{index}"));
                }
            }
            unknown => unknown_keyword(location, unknown),
        }
    }
}

fn unknown_keyword(location: &str, keyword: &str) -> ! {
    panic!("{location}: unknown keyword `{keyword}`: the validator does not check it, so the schema must not use it")
}

/// The definition a `$ref` names; only local `#/$defs/NAME` references, which is all the schema needs.
fn resolve<'schema>(root: &'schema Value, reference: &Value) -> &'schema Value {
    let name = reference
        .as_str()
        .and_then(|reference| reference.strip_prefix("#/$defs/"))
        .unwrap_or_else(|| panic!("`$ref` must be \"#/$defs/NAME\", found {reference}"));
    root.get("$defs")
        .and_then(|definitions| definitions.get(name))
        .unwrap_or_else(|| panic!("`$ref` {reference} names no definition in `$defs`"))
}

fn schema_object<'schema>(location: &str, schema: &'schema Value) -> &'schema Map<String, Value> {
    schema.as_object().unwrap_or_else(|| panic!("{location}: a schema must be an object, found {schema}"))
}

fn schema_map<'schema>(location: &str, argument: &'schema Value) -> &'schema Map<String, Value> {
    argument.as_object().unwrap_or_else(|| panic!("{location}: must be an object of schemas, found {argument}"))
}

fn schema_list<'schema>(location: &str, argument: &'schema Value) -> &'schema [Value] {
    match argument.as_array() {
        Some(choices) if !choices.is_empty() => choices,
        _ => panic!("{location}: must be a non-empty array of schemas, found {argument}"),
    }
}

fn value_list<'schema>(location: &str, argument: &'schema Value) -> &'schema [Value] {
    argument.as_array().unwrap_or_else(|| panic!("{location}: must be an array, found {argument}"))
}

fn string_list<'schema>(location: &str, argument: &'schema Value) -> Vec<&'schema str> {
    value_list(location, argument)
        .iter()
        .map(|name| name.as_str().unwrap_or_else(|| panic!("{location}: must hold strings only, found {name}")))
        .collect()
}

fn type_names<'schema>(location: &str, argument: &'schema Value) -> Vec<&'schema str> {
    let names = match argument {
        Value::String(name) => vec![name.as_str()],
        _ => string_list(location, argument),
    };
    for name in &names {
        let known = ["null", "boolean", "object", "array", "number", "string", "integer"];
        assert!(known.contains(name), "{location}: `{name}` is not a JSON Schema type");
    }
    names
}

fn count(location: &str, argument: &Value) -> usize {
    let count = argument.as_u64().unwrap_or_else(|| panic!("{location}: must be a count, found {argument}"));
    usize::try_from(count).unwrap_or_else(|_| panic!("{location}: {count} is too large"))
}

fn number_argument<'schema>(location: &str, argument: &'schema Value) -> &'schema Number {
    argument.as_number().unwrap_or_else(|| panic!("{location}: must be a number, found {argument}"))
}

/// Appends one reference token to a JSON pointer, escaped as RFC 6901 says (`files` keys hold `/`).
fn pointer(parent: &str, token: &str) -> String {
    format!("{parent}/{}", token.replace('~', "~0").replace('/', "~1"))
}

fn has_type(instance: &Value, type_name: &str) -> bool {
    match type_name {
        "null" => instance.is_null(),
        "boolean" => instance.is_boolean(),
        "object" => instance.is_object(),
        "array" => instance.is_array(),
        "number" => instance.is_number(),
        "string" => instance.is_string(),
        "integer" => instance.as_number().is_some_and(is_integer),
        unknown => panic!("`{unknown}` is not a JSON Schema type"),
    }
}

fn type_of(instance: &Value) -> &'static str {
    match instance {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if is_integer(number) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// JSON Schema counts `1.0` as an integer, and so do editors; serde does not, which this
/// validator keeps rather than hides (see the note on floats in `invalid_scenarios_are_rejected_by_both`).
fn is_integer(number: &Number) -> bool {
    number.is_i64() || number.is_u64() || number.as_f64().is_some_and(|float| float.fract() == 0.0)
}

/// Compares exactly where both are integers, since `u64::MAX` does not survive a trip through f64.
fn compare_numbers(left: &Number, right: &Number) -> Ordering {
    let exact = |number: &Number| number.as_i64().map(i128::from).or_else(|| number.as_u64().map(i128::from));
    match (exact(left), exact(right)) {
        (Some(left), Some(right)) => left.cmp(&right),
        _ => left.as_f64().unwrap_or(f64::NAN).total_cmp(&right.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Equality as JSON Schema defines it for `enum` and `const`: `1` and `1.0` are the same number.
fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => compare_numbers(left, right) == Ordering::Equal,
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len() && left.iter().zip(right).all(|(left, right)| json_equal(left, right))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left.iter().all(|(key, value)| right.get(key).is_some_and(|other| json_equal(value, other)))
        }
        _ => left == right,
    }
}

/// Calls `visit` with the location (a JSON pointer into the schema) of every subschema.
fn for_each_subschema(schema: &Value, location: &str, visit: &mut dyn FnMut(&str, &Value)) {
    visit(location, schema);
    let Some(keywords) = schema.as_object() else { return };
    for keyword in ["$defs", "properties"] {
        for (name, subschema) in keywords.get(keyword).and_then(Value::as_object).into_iter().flatten() {
            for_each_subschema(subschema, &pointer(&pointer(location, keyword), name), visit);
        }
    }
    for keyword in ["items", "additionalProperties"] {
        if let Some(subschema) = keywords.get(keyword).filter(|subschema| subschema.is_object()) {
            for_each_subschema(subschema, &pointer(location, keyword), visit);
        }
    }
    for (index, choice) in keywords.get("oneOf").and_then(Value::as_array).into_iter().flatten().enumerate() {
        for_each_subschema(choice, &pointer(&pointer(location, "oneOf"), &index.to_string()), visit);
    }
}

fn scenarios_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn load_schema() -> Value {
    let schema_path = scenarios_folder().join("schema.json");
    let text = std::fs::read_to_string(&schema_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", schema_path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{} is not JSON: {error}", schema_path.display()))
}

/// Parses a scenario written in a test as if it were a file in `scenarios/`, so that `files`
/// sources resolve against the real folder.
fn parse_inline(document: &Value) -> Result<Scenario, String> {
    let text = serde_json::to_string_pretty(document).expect("a JSON value always serialises");
    parse(&text, &scenarios_folder().join("inline.json")).map_err(|error| format!("{error:#}"))
}

/// A scenario that sets every field of every type at least once and uses every step kind and
/// every matcher kind; the tests below break it one piece at a time. The steps' order matters to
/// `INVALID_CASES`, which points into them by index.
const EVERY_KIND: &str = r#"{
  "schema_version": 1,
  "description": "every step kind and every matcher kind, for the schema tests",
  "pod": {
    "hostname": "every-kind",
    "infra": {
      "name": "pause",
      "image": "podlab/pause",
      "publish": ["8080:80"],
      "files": { "/etc/podlab/schema.json": "schema.json" },
      "args": ["-v"],
      "user": "65535:65535",
      "env": { "PODLAB": "1" },
      "restart": "always"
    },
    "containers": [
      {
        "name": "app",
        "image": "podlab/nginx",
        "share": ["net", "ipc", "pid", "uts"],
        "command": ["nginx", "-g", "daemon off;"],
        "restart": "on-failure"
      },
      { "name": "sidecar", "image": "podlab/busybox", "share": ["net"], "restart": "no" }
    ]
  },
  "steps": [
    { "exec": { "container": "app", "argv": ["hostname", "-s"], "exit_code": 0, "stdout": { "equals": "every-kind" },
                "stderr": { "not": { "contains": "error" } }, "save_stdout_as": "hostname" } },
    { "same-ip": { "containers": ["pause", "app"] } },
    { "same-hostname": { "containers": ["pause", "app", "sidecar"], "expect": true } },
    { "same-namespace": { "kind": "mnt", "containers": ["pause", "app"], "expect": false } },
    { "pid-1": { "containers": ["pause"], "command": { "regex": "^/pause" } } },
    { "no-zombies": { "container": "app" } },
    { "http": { "port": 8080, "path": "/", "status": 200,
                "body": { "all": [{ "contains": "nginx" }, { "not": { "contains": "error" } }] } } },
    { "signal": { "container": "app", "signal": "SIGHUP" } },
    { "running": { "containers": ["pause", "app"], "expect": true } },
    { "restart": { "container": "sidecar" } },
    { "process": { "container": "pause", "uid": 65535, "gid": 65535, "command": { "equals": "/pause" } } },
    { "image": { "name": "podlab/pause", "files": ["pause"], "user": "65535:65535" } },
    { "logs": { "container": "app", "matches": { "contains": "${hostname}" } } },
    { "eventually": { "within_ms": 5000, "every_ms": 100, "step": { "running": { "containers": ["sidecar"], "expect": true } } } },
    { "stop": { "container": "app", "grace_seconds": 5, "within_ms": 2000, "exit_code": 0, "logs": { "contains": "exiting" } } },
    { "wait-exit": { "container": "sidecar", "within_ms": 10000, "exit_code": 0, "logs": { "not": { "regex": "(?i)panic" } } } },
    { "cpu-idle": { "container": "pause", "over_ms": 500, "max_cpu_ms": 20 } }
  ]
}"#;

fn every_kind() -> Value {
    serde_json::from_str(EVERY_KIND).expect("EVERY_KIND is JSON")
}

fn remove(object: &mut Value, key: &str) {
    object.as_object_mut().expect("removing a key from an object").remove(key);
}

/// One way to break `EVERY_KIND`, and what the schema and the loader must each say about it.
struct InvalidCase {
    what: &'static str,
    /// Where the schema must report an error, as a JSON pointer into the scenario.
    schema_path: &'static str,
    /// A part of the loader's message, so that the case fails for the reason it names.
    loader_says: &'static str,
    break_it: fn(&mut Value),
}

const INVALID_CASES: &[InvalidCase] = &[
    InvalidCase {
        what: "an unknown field at the top",
        schema_path: "",
        loader_says: "unknown field `colour`",
        break_it: |scenario| scenario["colour"] = json!("blue"),
    },
    InvalidCase {
        what: "`path`, which the loader fills in, written in the file",
        schema_path: "",
        loader_says: "unknown field `path`",
        break_it: |scenario| scenario["path"] = json!("elsewhere.json"),
    },
    InvalidCase {
        what: "an unknown field in the pod",
        schema_path: "/pod",
        loader_says: "pod.labels: unknown field `labels`",
        break_it: |scenario| scenario["pod"]["labels"] = json!({}),
    },
    InvalidCase {
        what: "an unknown field in a container",
        schema_path: "/pod/containers/0",
        loader_says: "unknown field `sahre`",
        break_it: |scenario| scenario["pod"]["containers"][0]["sahre"] = json!(["net"]),
    },
    InvalidCase {
        what: "an unknown field in a step",
        schema_path: "/steps/0/exec",
        loader_says: "unknown field `timeout_ms`",
        break_it: |scenario| scenario["steps"][0]["exec"]["timeout_ms"] = json!(1000),
    },
    InvalidCase {
        what: "an unknown field in the step inside eventually",
        schema_path: "/steps/13/eventually/step/running",
        loader_says: "unknown field `within_ms`",
        break_it: |scenario| scenario["steps"][13]["eventually"]["step"]["running"]["within_ms"] = json!(10),
    },
    InvalidCase {
        what: "schema_version as a string",
        schema_path: "/schema_version",
        loader_says: "schema_version: invalid type: string \"1\", expected u32",
        break_it: |scenario| scenario["schema_version"] = json!("1"),
    },
    InvalidCase {
        what: "a schema_version that does not exist yet",
        schema_path: "/schema_version",
        loader_says: "schema_version: expected 1, found 2",
        break_it: |scenario| scenario["schema_version"] = json!(2),
    },
    InvalidCase {
        what: "argv as a string",
        schema_path: "/steps/0/exec/argv",
        loader_says: "invalid type: string \"hostname\", expected a sequence",
        break_it: |scenario| scenario["steps"][0]["exec"]["argv"] = json!("hostname"),
    },
    InvalidCase {
        what: "a number in argv",
        schema_path: "/steps/0/exec/argv/1",
        loader_says: "invalid type: integer `1`, expected a string",
        break_it: |scenario| scenario["steps"][0]["exec"]["argv"][1] = json!(1),
    },
    InvalidCase {
        what: "expect as a string",
        schema_path: "/steps/8/running/expect",
        loader_says: "invalid type: string \"yes\", expected a boolean",
        break_it: |scenario| scenario["steps"][8]["running"]["expect"] = json!("yes"),
    },
    InvalidCase {
        what: "a file source that is not a string",
        schema_path: "/pod/infra/files/~1etc~1podlab~1schema.json",
        loader_says: "invalid type: integer `1`, expected a string",
        break_it: |scenario| scenario["pod"]["infra"]["files"]["/etc/podlab/schema.json"] = json!(1),
    },
    InvalidCase {
        what: "no description",
        schema_path: "",
        loader_says: "missing field `description`",
        break_it: |scenario| remove(scenario, "description"),
    },
    InvalidCase {
        what: "no infra container",
        schema_path: "/pod",
        loader_says: "missing field `infra`",
        break_it: |scenario| remove(&mut scenario["pod"], "infra"),
    },
    InvalidCase {
        what: "wait-exit without within_ms",
        schema_path: "/steps/15/wait-exit",
        loader_says: "missing field `within_ms`",
        break_it: |scenario| remove(&mut scenario["steps"][15]["wait-exit"], "within_ms"),
    },
    InvalidCase {
        what: "no steps",
        schema_path: "/steps",
        loader_says: "steps: a scenario needs at least one step",
        break_it: |scenario| scenario["steps"] = json!([]),
    },
    InvalidCase {
        what: "an empty matcher",
        schema_path: "/steps/12/logs/matches",
        loader_says: "an empty matcher: give one of equals, contains, regex, not, all",
        break_it: |scenario| scenario["steps"][12]["logs"]["matches"] = json!({}),
    },
    InvalidCase {
        what: "a matcher with two keys",
        schema_path: "/steps/0/exec/stdout",
        loader_says: "a matcher has one key, this one also has `equals`",
        break_it: |scenario| scenario["steps"][0]["exec"]["stdout"] = json!({ "contains": "a", "equals": "b" }),
    },
    InvalidCase {
        what: "an unknown matcher kind",
        schema_path: "/steps/4/pid-1/command",
        loader_says: "unknown variant `equal`",
        break_it: |scenario| scenario["steps"][4]["pid-1"]["command"] = json!({ "equal": "/pause" }),
    },
    InvalidCase {
        what: "a matcher written as a plain string",
        schema_path: "/steps/12/logs/matches",
        loader_says: "expected a matcher",
        break_it: |scenario| scenario["steps"][12]["logs"]["matches"] = json!("ready"),
    },
    InvalidCase {
        what: "a matcher whose text is a number",
        schema_path: "/steps/12/logs/matches/contains",
        loader_says: "invalid type: integer `1`, expected a string",
        break_it: |scenario| scenario["steps"][12]["logs"]["matches"]["contains"] = json!(1),
    },
    InvalidCase {
        what: "an empty all",
        schema_path: "/steps/6/http/body",
        loader_says: "steps[6].http.body: `all` needs at least one matcher",
        break_it: |scenario| scenario["steps"][6]["http"]["body"] = json!({ "all": [] }),
    },
    InvalidCase {
        what: "an empty all inside not",
        schema_path: "/steps/0/exec/stderr",
        loader_says: "steps[0].exec.stderr: `all` needs at least one matcher",
        break_it: |scenario| scenario["steps"][0]["exec"]["stderr"] = json!({ "not": { "all": [] } }),
    },
    InvalidCase {
        what: "an unknown step kind",
        schema_path: "/steps/1",
        loader_says: "unknown variant `same-ips`",
        break_it: |scenario| scenario["steps"][1] = json!({ "same-ips": { "containers": ["pause", "app"] } }),
    },
    InvalidCase {
        what: "a step with two keys",
        schema_path: "/steps/5",
        loader_says: "steps[5]: a step has one key, this one also has `restart`",
        break_it: |scenario| scenario["steps"][5]["restart"] = json!({ "container": "app" }),
    },
    InvalidCase {
        what: "an empty step",
        schema_path: "/steps/5",
        loader_says: "steps[5]: an empty step: give one of exec, same-ip,",
        break_it: |scenario| scenario["steps"][5] = json!({}),
    },
    InvalidCase {
        what: "a step written as a plain string",
        schema_path: "/steps/9",
        loader_says: "steps[9]: invalid type: string \"restart\", expected a step: an object with one key",
        break_it: |scenario| scenario["steps"][9] = json!("restart"),
    },
    InvalidCase {
        what: "an unknown namespace kind",
        schema_path: "/steps/3/same-namespace/kind",
        loader_says: "unknown variant `network`",
        break_it: |scenario| scenario["steps"][3]["same-namespace"]["kind"] = json!("network"),
    },
    InvalidCase {
        what: "sharing a mount namespace",
        schema_path: "/pod/containers/0/share/0",
        loader_says: "`mnt` cannot be shared",
        break_it: |scenario| scenario["pod"]["containers"][0]["share"] = json!(["mnt"]),
    },
    InvalidCase {
        what: "an unknown restart policy",
        schema_path: "/pod/containers/0/restart",
        loader_says: "unknown variant `unless-stopped`",
        break_it: |scenario| scenario["pod"]["containers"][0]["restart"] = json!("unless-stopped"),
    },
    InvalidCase {
        what: "a negative port",
        schema_path: "/steps/6/http/port",
        loader_says: "invalid value: integer `-1`, expected u16",
        break_it: |scenario| scenario["steps"][6]["http"]["port"] = json!(-1),
    },
    InvalidCase {
        what: "a port above 65535",
        schema_path: "/steps/6/http/port",
        loader_says: "invalid value: integer `65536`, expected u16",
        break_it: |scenario| scenario["steps"][6]["http"]["port"] = json!(65536),
    },
    InvalidCase {
        what: "a negative uid",
        schema_path: "/steps/10/process/uid",
        loader_says: "invalid value: integer `-1`, expected u32",
        break_it: |scenario| scenario["steps"][10]["process"]["uid"] = json!(-1),
    },
    InvalidCase {
        what: "an exit code beyond i32",
        schema_path: "/steps/15/wait-exit/exit_code",
        loader_says: "invalid value: integer `2147483648`, expected i32",
        break_it: |scenario| scenario["steps"][15]["wait-exit"]["exit_code"] = json!(2_147_483_648_u64),
    },
    InvalidCase {
        what: "a fractional grace period",
        schema_path: "/steps/14/stop/grace_seconds",
        loader_says: "invalid type: floating point `1.5`, expected u32",
        break_it: |scenario| scenario["steps"][14]["stop"]["grace_seconds"] = json!(1.5),
    },
    InvalidCase {
        what: "null for exec's exit_code, which has a default instead",
        schema_path: "/steps/0/exec/exit_code",
        loader_says: "invalid type: null, expected i32",
        break_it: |scenario| scenario["steps"][0]["exec"]["exit_code"] = Value::Null,
    },
    InvalidCase {
        what: "an unknown signal name",
        schema_path: "/steps/7/signal/signal",
        loader_says: "`SIGHANGUP` is not a signal name",
        break_it: |scenario| scenario["steps"][7]["signal"]["signal"] = json!("SIGHANGUP"),
    },
    InvalidCase {
        what: "a comparison of one container",
        schema_path: "/steps/1/same-ip/containers",
        loader_says: "a comparison needs at least two containers",
        break_it: |scenario| scenario["steps"][1]["same-ip"]["containers"] = json!(["pause"]),
    },
    InvalidCase {
        what: "eventually with no time at all",
        schema_path: "/steps/13/eventually/within_ms",
        loader_says: "within_ms and every_ms must be above 0",
        break_it: |scenario| scenario["steps"][13]["eventually"]["within_ms"] = json!(0),
    },
    InvalidCase {
        what: "an empty command",
        schema_path: "/pod/containers/0/command",
        loader_says: "pod.containers[0].command: must not be empty",
        break_it: |scenario| scenario["pod"]["containers"][0]["command"] = json!([]),
    },
    InvalidCase {
        what: "an empty argv",
        schema_path: "/steps/0/exec/argv",
        loader_says: "steps[0].exec.argv: must not be empty",
        break_it: |scenario| scenario["steps"][0]["exec"]["argv"] = json!([]),
    },
];

#[test]
fn every_scenario_file_passes_the_schema() {
    let folder = scenarios_folder();
    let entries =
        std::fs::read_dir(&folder).unwrap_or_else(|error| panic!("cannot read {}: {error}", folder.display()));
    let mut scenario_paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable folder entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .filter(|path| path.file_name().is_some_and(|name| name != "schema.json"))
        .collect();
    scenario_paths.sort();
    assert!(!scenario_paths.is_empty(), "no scenario in {}: this test needs at least one", folder.display());
    let schema = load_schema();
    let validator = Validator::new(&schema);
    let mut failures = Vec::new();
    for scenario_path in &scenario_paths {
        let text = std::fs::read_to_string(scenario_path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", scenario_path.display()));
        let document: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{} is not JSON: {error}", scenario_path.display()));
        failures
            .extend(validator.validate(&document).iter().map(|error| format!("{}: {error}", scenario_path.display())));
    }
    assert!(
        failures.is_empty(),
        "scenario files that break scenarios/schema.json (fix the file, or the schema if the Rust types changed):\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_scenario_with_every_step_and_matcher_kind_passes_both() {
    let schema = load_schema();
    let document = every_kind();
    let errors = Validator::new(&schema).validate(&document);
    assert!(
        errors.is_empty(),
        "the schema rejects EVERY_KIND:\n{}",
        errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
    let scenario = parse_inline(&document).unwrap_or_else(|error| panic!("the loader rejects EVERY_KIND: {error}"));

    // Without these, a kind missing from EVERY_KIND would go untested in the cases below. Taking
    // the step kinds from `Step::kind` also checks that it spells each kind as the file does,
    // since error messages name steps with it.
    let mut step_kinds: BTreeSet<String> = scenario.steps.iter().map(|step| step.kind().to_string()).collect();
    step_kinds.extend(scenario.steps.iter().filter_map(|step| match step {
        Step::Eventually(eventually) => Some(eventually.step.kind().to_string()),
        _ => None,
    }));
    assert_eq!(step_kinds, schema_names(&schema, "Step"));
    let matcher_kinds = schema_names(&schema, "Matcher");
    let mut used_keys = BTreeSet::new();
    collect_object_keys(&document, &mut used_keys);
    assert_eq!(used_keys.intersection(&matcher_kinds).collect::<BTreeSet<_>>(), matcher_kinds.iter().collect());
}

#[test]
fn invalid_scenarios_are_rejected_by_both() {
    // Not in the table: a whole number written as a float (`"port": 8080.0`). JSON Schema, and
    // editors with it, count it as an integer; serde refuses it. The loader is the stricter one.
    let schema = load_schema();
    let validator = Validator::new(&schema);
    let mut failures = Vec::new();
    for case in INVALID_CASES {
        let mut document = every_kind();
        (case.break_it)(&mut document);
        let schema_errors = validator.validate(&document);
        if !schema_errors.iter().any(|error| error.path == case.schema_path) {
            let found: Vec<String> = schema_errors.iter().map(ToString::to_string).collect();
            failures.push(format!(
                "{}: expected a schema error at `{}`, found [{}]",
                case.what,
                case.schema_path,
                found.join("; ")
            ));
        }
        match parse_inline(&document) {
            Ok(_) => failures.push(format!("{}: the loader accepts it", case.what)),
            Err(message) if !message.contains(case.loader_says) => failures
                .push(format!("{}: expected the loader to say {:?}, it said {message:?}", case.what, case.loader_says)),
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        INVALID_CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn required_fields_agree_with_the_loader() {
    let schema = load_schema();
    let validator = Validator::new(&schema);
    let mut disagreements = Vec::new();
    for (parent, key) in object_members(&every_kind(), "") {
        let mut document = every_kind();
        remove(document.pointer_mut(&parent).expect("a member's parent"), &key);
        // Only "missing" counts: removing a field can also break a sense check (a port no longer
        // published), which the schema is not expected to see.
        let loader_says_missing = parse_inline(&document).is_err_and(|message| message.contains("missing field"));
        let schema_says_missing =
            validator.validate(&document).iter().any(|error| error.message.contains("missing required property"));
        if loader_says_missing != schema_says_missing {
            disagreements.push(format!(
                "{}: the loader says missing: {loader_says_missing}, the schema: {schema_says_missing}",
                pointer(&parent, &key)
            ));
        }
    }
    assert!(disagreements.is_empty(), "removing a field:\n{}", disagreements.join("\n"));
}

#[test]
fn null_is_accepted_exactly_where_the_loader_accepts_it() {
    // serde reads null as None for every `Option` field, but refuses it for a field with a default.
    let schema = load_schema();
    let validator = Validator::new(&schema);
    let mut disagreements = Vec::new();
    for (parent, key) in object_members(&every_kind(), "") {
        let mut document = every_kind();
        document.pointer_mut(&parent).expect("a member's parent")[key.as_str()] = Value::Null;
        let loader_result = parse_inline(&document);
        let schema_errors = validator.validate(&document);
        if loader_result.is_ok() != schema_errors.is_empty() {
            let schema_said: Vec<String> = schema_errors.iter().map(ToString::to_string).collect();
            disagreements.push(format!(
                "{}: the loader says {loader_result:?}, the schema says {schema_said:?}",
                pointer(&parent, &key)
            ));
        }
    }
    assert!(disagreements.is_empty(), "setting a field to null:\n{}", disagreements.join("\n"));
}

#[test]
fn schema_properties_match_rust_fields_and_variants() {
    let object_probe = r#"{"podlab-probe": null}"#;
    let string_probe = r#""podlab-probe""#;
    let rust_names = [
        ("Scenario", names_serde_expects::<Scenario>(object_probe)),
        ("Pod", names_serde_expects::<Pod>(object_probe)),
        ("Container", names_serde_expects::<Container>(object_probe)),
        ("NamespaceKind", names_serde_expects::<NamespaceKind>(string_probe)),
        ("RestartPolicy", names_serde_expects::<RestartPolicy>(string_probe)),
        ("Matcher", names_serde_expects::<Matcher>(object_probe)),
        ("Step", names_serde_expects::<Step>(object_probe)),
        ("Exec", names_serde_expects::<Exec>(object_probe)),
        ("Containers", names_serde_expects::<Containers>(object_probe)),
        ("SameHostname", names_serde_expects::<SameHostname>(object_probe)),
        ("SameNamespace", names_serde_expects::<SameNamespace>(object_probe)),
        ("Pid1", names_serde_expects::<Pid1>(object_probe)),
        ("ContainerRef", names_serde_expects::<ContainerRef>(object_probe)),
        ("CpuIdle", names_serde_expects::<CpuIdle>(object_probe)),
        ("Http", names_serde_expects::<Http>(object_probe)),
        ("SignalStep", names_serde_expects::<SignalStep>(object_probe)),
        ("Stop", names_serde_expects::<Stop>(object_probe)),
        ("WaitExit", names_serde_expects::<WaitExit>(object_probe)),
        ("Running", names_serde_expects::<Running>(object_probe)),
        ("Process", names_serde_expects::<Process>(object_probe)),
        ("Image", names_serde_expects::<Image>(object_probe)),
        ("Logs", names_serde_expects::<Logs>(object_probe)),
        ("Eventually", names_serde_expects::<Eventually>(object_probe)),
    ];
    let schema = load_schema();
    for (definition, names) in &rust_names {
        assert_eq!(&schema_names(&schema, definition), names, "the fields or variants of {definition}");
    }

    // Every definition should stand for a Rust type, apart from the few that narrow one.
    let narrowing = ["ShareableNamespace", "SignalName"];
    let compared: BTreeSet<&str> = rust_names.iter().map(|(definition, _)| *definition).chain(narrowing).collect();
    let defined: BTreeSet<&str> = schema["$defs"].as_object().expect("$defs").keys().map(String::as_str).collect();
    assert_eq!(defined, &compared - &BTreeSet::from(["Scenario"]));
    assert!(schema_names(&schema, "ShareableNamespace").is_subset(&schema_names(&schema, "NamespaceKind")));
}

#[test]
fn signal_names_are_the_ones_nix_parses() {
    let schema = load_schema();
    let nix_names: BTreeSet<String> = Signal::iterator().map(|signal| signal.as_str().to_string()).collect();
    assert_eq!(schema_names(&schema, "SignalName"), nix_names);
}

#[test]
fn schema_defaults_match_rust_defaults() {
    let document = json!({
        "schema_version": 1,
        "description": "every field with a default left out",
        "pod": {
            "infra": { "name": "pause", "image": "podlab/pause", "publish": ["8080:80"] },
            "containers": [{ "name": "app", "image": "podlab/app" }]
        },
        "steps": [
            { "exec": { "container": "app", "argv": ["true"] } },
            { "same-hostname": { "containers": ["pause", "app"] } },
            { "same-namespace": { "kind": "net", "containers": ["pause", "app"] } },
            { "http": { "port": 8080 } },
            { "stop": { "container": "app" } },
            { "cpu-idle": { "container": "app" } },
            { "eventually": { "within_ms": 1000, "step": { "no-zombies": { "container": "app" } } } }
        ]
    });
    let scenario = parse_inline(&document).unwrap_or_else(|error| panic!("the loader rejects it: {error}"));
    let app = &scenario.pod.containers[0];
    let share: Vec<&str> = app.share.iter().map(|kind| kind.proc_name()).collect();
    let mut rust_defaults = vec![
        ("/$defs/Container/properties/share/default", json!(share)),
        ("/$defs/Container/properties/publish/default", json!(app.publish)),
        ("/$defs/Container/properties/files/default", json!(app.files)),
        ("/$defs/Container/properties/env/default", json!(app.env)),
    ];
    for step in &scenario.steps {
        if let Step::CpuIdle(idle) = step {
            rust_defaults.push(("/$defs/CpuIdle/properties/over_ms/default", json!(idle.over_ms)));
            rust_defaults.push(("/$defs/CpuIdle/properties/max_cpu_ms/default", json!(idle.max_cpu_ms)));
            continue;
        }
        rust_defaults.push(match step {
            Step::Exec(exec) => ("/$defs/Exec/properties/exit_code/default", json!(exec.exit_code)),
            Step::SameHostname(same) => ("/$defs/SameHostname/properties/expect/default", json!(same.expect)),
            Step::SameNamespace(same) => ("/$defs/SameNamespace/properties/expect/default", json!(same.expect)),
            Step::Http(http) => ("/$defs/Http/properties/path/default", json!(http.path)),
            Step::Stop(stop) => ("/$defs/Stop/properties/grace_seconds/default", json!(stop.grace_seconds)),
            Step::Eventually(eventually) => {
                ("/$defs/Eventually/properties/every_ms/default", json!(eventually.every_ms))
            }
            other => panic!("no default to compare in a {} step", other.kind()),
        });
    }

    let schema = load_schema();
    for (location, rust_default) in &rust_defaults {
        assert_eq!(schema.pointer(location), Some(rust_default), "{location}");
    }
    // A default added to the schema must be added here too, or it could claim anything.
    let mut schema_defaults = BTreeSet::new();
    for_each_subschema(&schema, "", &mut |location, subschema| {
        if subschema.get("default").is_some() {
            schema_defaults.insert(format!("{location}/default"));
        }
    });
    let compared: BTreeSet<String> = rust_defaults.iter().map(|(location, _)| location.to_string()).collect();
    assert_eq!(schema_defaults, compared);
}

#[test]
fn defaults_and_examples_pass_their_own_schema() {
    let schema = load_schema();
    let validator = Validator::new(&schema);
    let mut failures = Vec::new();
    let mut checked = 0;
    for_each_subschema(&schema, "", &mut |location, subschema| {
        let defaults = subschema.get("default").into_iter();
        let examples = subschema.get("examples").and_then(Value::as_array).into_iter().flatten();
        for sample in defaults.chain(examples) {
            checked += 1;
            let errors = validator.validate_against(subschema, sample);
            failures.extend(errors.iter().map(|error| format!("{location}: {sample}: {error}")));
        }
    });
    assert!(checked > 0, "the schema has no default or example, so this test checks nothing");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_property_and_definition_has_a_description() {
    // Editors show the description as the help for a field; a property without one is a field
    // a user has to look up in the Rust source.
    let schema = load_schema();
    let mut undescribed = Vec::new();
    for_each_subschema(&schema, "", &mut |location, subschema| {
        let is_named = location.is_empty()
            || location
                .rsplit_once('/')
                .is_some_and(|(parent, _)| parent.ends_with("/properties") || parent == "/$defs");
        let has_description = subschema.get("description").and_then(Value::as_str).is_some_and(|text| !text.is_empty());
        if is_named && !has_description {
            undescribed.push(location.to_string());
        }
    });
    assert!(undescribed.is_empty(), "without a description: {undescribed:?}");
}

#[test]
#[should_panic(expected = "unknown keyword `pattern`")]
fn an_unknown_keyword_makes_the_validator_panic() {
    let schema = json!({ "$defs": { "Name": { "type": "string", "pattern": "^[a-z]+$" } } });
    Validator::new(&schema);
}

/// The names a schema definition allows: its properties' names, or its `enum` values.
fn schema_names(schema: &Value, definition: &str) -> BTreeSet<String> {
    let definition_schema = if definition == "Scenario" { schema } else { &schema["$defs"][definition] };
    if let Some(properties) = definition_schema.get("properties").and_then(Value::as_object) {
        return properties.keys().cloned().collect();
    }
    let values = definition_schema.get("enum").and_then(Value::as_array);
    let values = values.unwrap_or_else(|| panic!("{definition} has neither properties nor enum"));
    values.iter().map(|value| value.as_str().expect("enum values are strings").to_string()).collect()
}

/// The field or variant names serde accepts for `T`, read from its error for a name it does not
/// know: serde lists every one there, so this follows the Rust types without a hand-kept copy.
fn names_serde_expects<T: DeserializeOwned + fmt::Debug>(probe: &str) -> BTreeSet<String> {
    let error = serde_json::from_str::<T>(probe).expect_err("the probe name is unknown").to_string();
    let (_, expected) = error.split_once("expected").unwrap_or_else(|| panic!("no list of names in {error:?}"));
    expected.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn collect_object_keys(value: &Value, keys: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            for (key, member) in object {
                keys.insert(key.clone());
                collect_object_keys(member, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_object_keys(item, keys)),
        _ => {}
    }
}

/// Every object member in a document, as (JSON pointer to the object, key).
fn object_members(value: &Value, path: &str) -> Vec<(String, String)> {
    match value {
        Value::Object(object) => object
            .iter()
            .flat_map(|(key, member)| {
                std::iter::once((path.to_string(), key.clone())).chain(object_members(member, &pointer(path, key)))
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(index, item)| object_members(item, &pointer(path, &index.to_string())))
            .collect(),
        _ => Vec::new(),
    }
}
