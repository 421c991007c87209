//! A signal as scenarios name it (`SIGTERM`): parsed once at load, so that the run holds the
//! signal itself and never parses its name again.

use std::borrow::Cow;
use std::fmt;

use nix::sys::signal::Signal;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A signal, read from and written as its name (`SIGINT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalName(pub Signal);

impl SignalName {
    pub fn signal(self) -> Signal {
        self.0
    }

    /// The name as scenarios and /proc-derived listings spell it.
    pub fn as_str(self) -> &'static str {
        self.0.as_str()
    }
}

impl fmt::Display for SignalName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SignalName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        let signal = name
            .parse::<Signal>()
            .map_err(|_| D::Error::custom(format!("`{name}` is not a signal name (SIGTERM, SIGINT, ...)")))?;
        Ok(SignalName(signal))
    }
}

/// As written in the file, so that the schema can show defaults.
impl Serialize for SignalName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The names the loader accepts, from the same list it parses them with, so that editors can
/// offer them.
impl JsonSchema for SignalName {
    fn schema_name() -> Cow<'static, str> {
        "SignalName".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Signal::iterator().map(Signal::as_str).collect();
        json_schema!({ "type": "string", "enum": names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_name_reads_and_writes_as_written() {
        let signal: SignalName = serde_json::from_str(r#""SIGINT""#).unwrap();
        assert_eq!(signal.signal(), Signal::SIGINT);
        assert_eq!(serde_json::to_string(&signal).unwrap(), r#""SIGINT""#);
        let error = serde_json::from_str::<SignalName>(r#""SIGNOPE""#).unwrap_err().to_string();
        assert!(error.starts_with("`SIGNOPE` is not a signal name (SIGTERM, SIGINT, ...)"), "{error}");
    }
}
