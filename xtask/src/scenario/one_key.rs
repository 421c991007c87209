//! Enums written as an object with exactly one key, the kind: steps (`{"exec": {...}}`) and
//! matchers (`{"contains": "ready"}`). serde's derive reads them; this adds messages that say
//! what to write for `{}` and for a second key, where serde would say "expected value".

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, StringDeserializer};
use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, Visitor};
use serde::forward_to_deserialize_any;

/// An externally tagged enum whose derived `Deserialize` is wrapped by [`deserialize`].
pub trait OneKeyEnum: Sized {
    /// What one is called in messages, such as "step".
    const NAME: &'static str;
    /// What to do instead of writing a second key, such as "make it a step of its own".
    const INSTEAD_OF_A_SECOND_KEY: &'static str;

    /// serde's derived deserializer: `#[serde(remote = "Self")]` makes it a plain function,
    /// so that the type's `Deserialize` impl can call [`deserialize`], which calls this.
    fn derived<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Deserializes `T` from a map with exactly one key, through its derived deserializer.
pub fn deserialize<'de, T: OneKeyEnum, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_map(OneKeyVisitor(PhantomData))
}

struct OneKeyVisitor<T>(PhantomData<T>);

impl<'de, T: OneKeyEnum> Visitor<'de> for OneKeyVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "a {0}: an object with one key, the {0}'s kind", T::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let value = T::derived(EnumInMap { map: &mut map, name: T::NAME })?;
        // Read here rather than left to the caller, which would only say "expected `}`".
        if let Some(second) = map.next_key::<String>()? {
            return Err(A::Error::custom(format!(
                "a {} has one key, this one also has `{second}`: {}",
                T::NAME,
                T::INSTEAD_OF_A_SECOND_KEY
            )));
        }
        Ok(value)
    }
}

/// What the derived deserializer reads the enum from: the map, whose first key this reads
/// itself so that an empty map gets a message listing the kinds, as serde passes them to
/// `deserialize_enum`.
struct EnumInMap<'map, A> {
    map: &'map mut A,
    name: &'static str,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for EnumInMap<'_, A> {
    type Error = A::Error;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let Some(kind) = self.map.next_key::<String>()? else {
            return Err(A::Error::custom(format!("an empty {}: give one of {}", self.name, variants.join(", "))));
        };
        // serde's own map-as-enum does the rest: an unknown kind, then the value for the kind.
        MapAccessDeserializer::new(FirstKeyAgain { first_key: Some(kind), map: self.map })
            .deserialize_enum(name, variants, visitor)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.map)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// The map with its first key, already read, handed out again. The value still comes from the
/// real map, which keeps serde_json's position and serde_path_to_error's path right.
struct FirstKeyAgain<'map, A> {
    first_key: Option<String>,
    map: &'map mut A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FirstKeyAgain<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        match self.first_key.take() {
            Some(key) => seed.deserialize(StringDeserializer::<A::Error>::new(key)).map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}
