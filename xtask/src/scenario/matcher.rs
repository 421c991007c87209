//! Matchers: how a step says what text it expects. Each is an object with one key.

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::one_key::{self, OneKeyEnum};

/// What text a step expects: an object with exactly one key.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(remote = "Self", rename_all = "kebab-case")]
#[schemars(rename = "Matcher")]
pub enum Matcher {
    /// The whole text, exactly.
    Equals(String),
    /// The text contains this.
    Contains(String),
    /// A regular expression (Rust regex syntax) in multi-line mode: `^` and `$` match at each line's start and end.
    Regex(String),
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

/// The derived serializer as is (`remote = "Self"` made it a plain function too), for `Step::kind`,
/// which serializes a step to read its key.
impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Matcher::serialize(self, serializer)
    }
}

impl Matcher {
    /// Checks what can be wrong in a matcher that parsed: an invalid regex, an empty `all`.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Matcher::Equals(_) | Matcher::Contains(_) => Ok(()),
            // A `${name}` is a value saved at run time: checked here as the plain word it stands for.
            Matcher::Regex(pattern) => compile(&REFERENCE.replace_all(pattern, "saved")).map(drop),
            Matcher::Not(inner) => inner.validate(),
            Matcher::All(inner) if inner.is_empty() => Err("`all` needs at least one matcher".to_string()),
            Matcher::All(inner) => inner.iter().try_for_each(Matcher::validate),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Equals(expected) => text == expected,
            Matcher::Contains(expected) => text.contains(expected.as_str()),
            Matcher::Regex(pattern) => compile(pattern).is_ok_and(|regex| regex.is_match(text)),
            Matcher::Not(inner) => !inner.matches(text),
            Matcher::All(inner) => inner.iter().all(|matcher| matcher.matches(text)),
        }
    }

    /// The same matcher with `${name}` replaced by values saved by earlier steps.
    /// Every text of the matcher (what `substitute` replaces in), in order.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Matcher::Equals(text) | Matcher::Contains(text) | Matcher::Regex(text) => vec![text.as_str()],
            Matcher::Not(inner) => inner.texts(),
            Matcher::All(inner) => inner.iter().flat_map(Matcher::texts).collect(),
        }
    }

    pub fn substitute(&self, replace: &dyn Fn(&str) -> String) -> Matcher {
        match self {
            Matcher::Equals(text) => Matcher::Equals(replace(text)),
            Matcher::Contains(text) => Matcher::Contains(replace(text)),
            Matcher::Regex(pattern) => Matcher::Regex(replace(pattern)),
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
            Matcher::Regex(pattern) => write!(formatter, "match /{pattern}/"),
            Matcher::Not(inner) => write!(formatter, "not ({inner})"),
            Matcher::All(inner) => {
                let parts: Vec<String> = inner.iter().map(ToString::to_string).collect();
                write!(formatter, "{}", parts.join(" and "))
            }
        }
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
        let matcher = Matcher::Regex(r"^\s*1 /pause$".to_string());
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
        assert_eq!(Matcher::Regex("^${pid}$".into()).validate(), Ok(()));
        assert!(Matcher::Regex("^${pid}($".into()).validate().is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(Matcher::All(vec![]).validate().unwrap_err(), "`all` needs at least one matcher");
        assert!(Matcher::Regex("(".into()).validate().unwrap_err().starts_with("invalid regex"));
    }
}
