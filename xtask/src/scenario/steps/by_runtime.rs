//! `by-runtime`: a fact that differs between runtimes: a step for each runtime where it differs,
//! and a default for the rest.

use std::borrow::Cow;

use anyhow::{Result, bail};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{SavedValues, ScenarioFacts, Step, StepFormat};

/// What each runtime should show of one fact: `fact`, then a step under the key of each runtime
/// whose facts differ (`docker`, `cri`, `podman`: the runtimes' fact keys), and `default` for
/// every runtime not named. No two of them may be the same step: a step that holds for
/// several runtimes is the default.
#[derive(Debug, PartialEq)]
pub struct ByRuntime {
    /// The fact, as a question each runtime's step answers: `whether the pod's containers share
    /// one UTS namespace`.
    pub fact: String,
    /// The step of every runtime without a step of its own.
    pub default: Option<Box<Step>>,
    /// The runtimes' own steps, by fact key, in the order written.
    pub own: Vec<(String, Step)>,
}

impl ByRuntime {
    /// The step a runtime whose facts go by `facts` runs: its own, else the default.
    pub fn step_for(&self, facts: &str) -> Option<&Step> {
        let own = self.own.iter().find(|(key, _)| key == facts).map(|(_, step)| step);
        own.or(self.default.as_deref())
    }

    /// Every step written, by the key it is written under (`default` included).
    pub fn steps(&self) -> impl Iterator<Item = (&str, &Step)> {
        let default = self.default.as_deref().map(|step| ("default", step));
        default.into_iter().chain(self.own.iter().map(|(key, step)| (key.as_str(), step)))
    }
}

impl StepFormat for ByRuntime {
    fn check(&self, field: &str, scenario: &ScenarioFacts) -> Result<()> {
        let keys = scenario.runtime_keys;
        for (key, _) in &self.own {
            if !keys.contains(&key.as_str()) {
                let at = key_field(field, key);
                bail!("{at}: no runtime's facts go by `{key}`; the keys are default, {}", keys.join(", "));
            }
        }
        let unnamed: Vec<&str> = keys.iter().copied().filter(|key| self.own.iter().all(|(own, _)| own != key)).collect();
        match (&self.default, unnamed.is_empty()) {
            (None, false) => bail!("{field}: no step for {}: give it one, or a default", unnamed.join(", ")),
            (Some(_), true) => bail!("{field}.default: every runtime has a step of its own, so the default is never used"),
            _ => {}
        }
        let steps: Vec<(&str, &Step)> = self.steps().collect();
        for (index, (key, step)) in steps.iter().enumerate() {
            if let Some((same, _)) = steps[..index].iter().find(|(_, earlier)| earlier == step) {
                bail!("{field}.{key}: the same step as {same}: say it once, in default, for every runtime it holds for");
            }
        }
        for (key, step) in self.steps() {
            step.format().check(&step.field_in(&format!("{field}.{key}")), scenario)?;
        }
        Ok(())
    }

    fn check_references(&self, field: &str, saved: &mut SavedValues) -> Result<()> {
        // A name saved by one runtime's step only cannot be used after it.
        let mut saved_by_all: Option<SavedValues> = None;
        for (key, step) in self.steps() {
            let mut saved_here = saved.clone();
            step.format().check_references(&step.field_in(&format!("{field}.{key}")), &mut saved_here)?;
            saved_by_all = Some(match saved_by_all {
                None => saved_here,
                Some(all) => all.intersection(&saved_here),
            });
        }
        saved.extend(saved_by_all.unwrap_or_default());
        Ok(())
    }

    fn container_names(&self) -> Vec<&str> {
        self.steps().flat_map(|(_, step)| step.format().container_names()).collect()
    }

    fn image_names(&self) -> Vec<&str> {
        self.steps().flat_map(|(_, step)| step.format().image_names()).collect()
    }

    fn counts_outbound(&self) -> bool {
        self.steps().any(|(_, step)| step.format().counts_outbound())
    }

    fn fact(&self) -> Option<&str> {
        Some(&self.fact)
    }

    fn summary(&self) -> String {
        self.fact.clone()
    }
}

/// How errors name the entry `key` of the step at `field`: `.cri`, or `["a key"]` for a key
/// that is no plain word.
fn key_field(field: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if plain { format!("{field}.{key}") } else { format!("{field}[{key:?}]") }
}

/// `fact`, `default` and the runtimes' keys, each once; the keys are checked against the
/// runtimes at load (`check`), since which runtimes exist is not the format's to know.
impl<'de> de::Deserialize<'de> for ByRuntime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ByRuntimeVisitor)
    }
}

struct ByRuntimeVisitor;

impl<'de> Visitor<'de> for ByRuntimeVisitor {
    type Value = ByRuntime;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an object with `fact`, and a step under `default` or a runtime's key")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ByRuntime, A::Error> {
        let (mut fact, mut default, mut own) = (None, None, Vec::<(String, Step)>::new());
        while let Some(key) = map.next_key::<String>()? {
            let seen = match key.as_str() {
                "fact" => fact.replace(map.next_value::<String>()?).is_some(),
                "default" => default.replace(Box::new(map.next_value::<Step>()?)).is_some(),
                _ => {
                    let step = map.next_value::<Step>()?;
                    let seen = own.iter().any(|(written, _)| *written == key);
                    own.push((key.clone(), step));
                    seen
                }
            };
            if seen {
                return Err(de::Error::custom(format!("`{key}` is written twice")));
            }
        }
        let fact = fact.ok_or_else(|| de::Error::missing_field("fact"))?;
        Ok(ByRuntime { fact, default, own })
    }
}

/// The keys of the runtimes are the registry's: `schema.rs` lists them where it writes the
/// schema; here any other key is a step.
impl JsonSchema for ByRuntime {
    fn schema_name() -> Cow<'static, str> {
        "ByRuntime".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let step = generator.subschema_for::<Step>();
        json_schema!({
            "description": "What each runtime should show of one fact: `fact`, then a step under the key of each runtime whose facts differ, and `default` for every runtime not named. No two of them may be the same step: a step that holds for several runtimes is the default.",
            "type": "object",
            "properties": {
                "fact": {
                    "description": "The fact, as a question each runtime's step answers: `whether the pod's containers share one UTS namespace`.",
                    "type": "string"
                },
                "default": {
                    "description": "The step of every runtime without a step of its own.",
                    "$ref": step.get("$ref").cloned().unwrap_or_default()
                }
            },
            "required": ["fact"],
            "additionalProperties": step
        })
    }
}
