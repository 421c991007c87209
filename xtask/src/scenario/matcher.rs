//! Matchers: how a step says what text it expects. Each is an object with one key.
//! A regex is compiled once, as the file is read.

use std::borrow::Cow;

use regex::Regex;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::one_key::{self, OneKeyEnum};

/// What text a step expects: an object with exactly one key.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(remote = "Self", rename_all = "kebab-case")]
#[schemars(rename = "Matcher")]
pub enum Matcher {
    /// The whole text, exactly.
    Equals(String),
    /// The text contains this.
    Contains(String),
    /// A regular expression (Rust regex syntax) in multi-line mode: `^` and `$` match at each line's start and end.
    Regex(Pattern),
    /// The inner matcher does not match.
    Not(Box<Matcher>),
    /// Every inner matcher matches; at least one.
    All(Vec<Matcher>),
}

impl OneKeyEnum for Matcher {
    const NAME: &'static str = "matcher";
    const INSTEAD_OF_A_SECOND_KEY: &'static str = "combine matchers with `all`";

    fn derived<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Matcher::deserialize(deserializer)
    }
}

/// Wraps the derived deserializer (see `one_key`) so that `{}` and a second key say what to write.
impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_key::deserialize(deserializer)
    }
}

/// The derived serializer as is (`remote = "Self"` made it a plain function too), so that the
/// schema can show defaults (`process.status`'s `{}`).
impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Matcher::serialize(self, serializer)
    }
}

impl Matcher {
    /// Checks what can be wrong in a matcher that parsed: an empty `all` (a regex is checked as
    /// it is read).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Matcher::Equals(_) | Matcher::Contains(_) | Matcher::Regex(_) => Ok(()),
            Matcher::Not(inner) => inner.validate(),
            Matcher::All(inner) if inner.is_empty() => Err("`all` needs at least one matcher".to_string()),
            Matcher::All(inner) => inner.iter().try_for_each(Matcher::validate),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Equals(expected) => text == expected,
            Matcher::Contains(expected) => text.contains(expected.as_str()),
            Matcher::Regex(pattern) => pattern.is_match(text),
            Matcher::Not(inner) => !inner.matches(text),
            Matcher::All(inner) => inner.iter().all(|matcher| matcher.matches(text)),
        }
    }

    /// Every text of the matcher (what `substitute` replaces in), in order.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Matcher::Equals(text) | Matcher::Contains(text) => vec![text.as_str()],
            Matcher::Regex(pattern) => vec![pattern.source.as_str()],
            Matcher::Not(inner) => inner.texts(),
            Matcher::All(inner) => inner.iter().flat_map(Matcher::texts).collect(),
        }
    }

    /// The same matcher with `${name}` replaced by values saved by earlier steps.
    pub fn substitute(&self, replace: &dyn Fn(&str) -> String) -> Matcher {
        match self {
            Matcher::Equals(text) => Matcher::Equals(replace(text)),
            Matcher::Contains(text) => Matcher::Contains(replace(text)),
            Matcher::Regex(pattern) => Matcher::Regex(pattern.substitute(replace)),
            Matcher::Not(inner) => Matcher::Not(Box::new(inner.substitute(replace))),
            Matcher::All(inner) => Matcher::All(inner.iter().map(|matcher| matcher.substitute(replace)).collect()),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Equals(text) => write!(formatter, "equal {text:?}"),
            Matcher::Contains(text) => write!(formatter, "contain {text:?}"),
            Matcher::Regex(pattern) => write!(formatter, "match /{}/", pattern.source),
            Matcher::Not(inner) => write!(formatter, "not ({inner})"),
            Matcher::All(inner) => {
                let parts: Vec<String> = inner.iter().map(ToString::to_string).collect();
                write!(formatter, "{}", parts.join(" and "))
            }
        }
    }
}

/// A regex as written and compiled (in multi-line mode), read from a string.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// As written, `${name}` references included.
    source: String,
    /// Compiled at load when the pattern has no `${name}`, else once its saved values are in
    /// (`substitute`). None only before that, or when the saved values made it invalid: it then
    /// matches nothing.
    regex: Option<Regex>,
}

/// Two patterns are the same when they are written the same.
impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

impl Pattern {
    /// Compiles `source`; a `${name}` is a value saved at run time, checked here as the plain
    /// word it stands for.
    fn parse(source: String) -> Result<Pattern, String> {
        let checked = compile(&REFERENCE.replace_all(&source, "saved"))?;
        let regex = (!REFERENCE.is_match(&source)).then_some(checked);
        Ok(Pattern { source, regex })
    }

    fn is_match(&self, text: &str) -> bool {
        self.regex.as_ref().is_some_and(|regex| regex.is_match(text))
    }

    /// The pattern with its `${name}`s replaced, compiled then; one without is kept as it is.
    fn substitute(&self, replace: &dyn Fn(&str) -> String) -> Pattern {
        if !REFERENCE.is_match(&self.source) {
            return self.clone();
        }
        let source = replace(&self.source);
        let regex = compile(&source).ok();
        Pattern { source, regex }
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Pattern::parse(String::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl JsonSchema for Pattern {
    fn schema_name() -> Cow<'static, str> {
        "Pattern".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string" })
    }
}

/// A `${name}` reference to a value saved by an earlier step.
static REFERENCE: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(r"\$\{[^}]*\}").expect("a valid regex"));

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("(?m){pattern}")).map_err(|error| format!("invalid regex: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_multi_line() {
        let matcher = regex(r"^\s*1 /pause$").unwrap();
        assert!(matcher.matches("PID   COMMAND\n    1 /pause\n   12 nginx"));
        assert!(!matcher.matches("    1 /sbin/init\n"));
    }

    #[test]
    fn combinators() {
        let matcher = Matcher::All(vec![
            Matcher::Contains("ghost".into()),
            Matcher::Not(Box::new(Matcher::Contains("error".into()))),
        ]);
        assert!(matcher.matches("a ghost stand-in"));
        assert!(!matcher.matches("ghost error"));
        assert_eq!(matcher.to_string(), "contain \"ghost\" and not (contain \"error\")");
    }

    #[test]
    fn parse_errors_say_what_to_write() {
        let error = |text: &str| serde_json::from_str::<Matcher>(text).unwrap_err().to_string();
        assert!(error("{}").starts_with("an empty matcher: give one of equals, contains, regex, not, all"));
        assert!(
            error(r#"{"equals": "a", "contains": "b"}"#)
                .starts_with("a matcher has one key, this one also has `contains`")
        );
        assert!(error(r#"{"equal": "a"}"#).starts_with("unknown variant `equal`, expected one of"));
        assert!(error(r#""a""#).contains("expected a matcher"));
        let nested: Matcher = serde_json::from_str(r#"{"not": {"all": [{"regex": "^a"}, {"equals": "ab"}]}}"#).unwrap();
        assert_eq!(nested.to_string(), r#"not (match /^a/ and equal "ab")"#);
    }

    #[test]
    fn a_regex_may_use_saved_values() {
        let matcher = regex("^${pid}$").unwrap();
        let substituted = matcher.substitute(&|text| text.replace("${pid}", "42"));
        assert!(substituted.matches("7\n42\n"));
        assert!(!substituted.matches("421"));
        assert!(regex("^${pid}($").is_err());
        // A saved value that breaks the regex makes it match nothing, rather than stop the run.
        assert!(!matcher.substitute(&|text| text.replace("${pid}", "(")).matches("("));
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(Matcher::All(vec![]).validate().unwrap_err(), "`all` needs at least one matcher");
        assert!(regex("(").unwrap_err().starts_with("invalid regex"));
    }

    /// A regex matcher as a file gives it; the error as serde reports it.
    fn regex(pattern: &str) -> Result<Matcher, String> {
        serde_json::from_value(serde_json::json!({ "regex": pattern })).map_err(|error| error.to_string())
    }
}
