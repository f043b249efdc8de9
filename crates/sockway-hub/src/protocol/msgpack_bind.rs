//! Binds a received MessagePack value to a Rust type with serde, reading back every shape our
//! writer (`rmp_serde`, structs as maps) and the SignalR clients produce.
//!
//! `rmpv`'s own deserializer is close but misses three shapes: `bin` (how the JavaScript
//! client sends a `Uint8Array` and MessagePack-CSharp a `byte[]`) cannot become a `Vec<u8>`
//! or a `serde_json::Value`, and enums cannot be read as `rmp_serde` writes them (a unit
//! variant as its name, any other as a one-entry map from its name to its data), which is also
//! how `serde_json` reads them. This deserializer accepts those and otherwise presents values
//! as `rmpv` does; an extension value (e.g. a .NET timestamp, type -1) reads as a pair of its
//! type and its data.

use std::fmt;

use rmpv::Value;
use serde::de::value::{SeqDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

/// Why a value could not be bound; the text is serde's, naming the types involved.
#[derive(Debug)]
pub(super) struct BindFailure(String);

impl fmt::Display for BindFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BindFailure {}

impl de::Error for BindFailure {
    fn custom<T: fmt::Display>(message: T) -> Self {
        BindFailure(message.to_string())
    }
}

/// Binds `value` to `T`.
pub(super) fn bind<T: DeserializeOwned>(value: Value) -> Result<T, BindFailure> {
    T::deserialize(Bind(value))
}

/// A value being deserialized.
struct Bind(Value);

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Nil => de::Unexpected::Unit,
        Value::Boolean(value) => de::Unexpected::Bool(*value),
        Value::Integer(value) => match value.as_u64() {
            Some(value) => de::Unexpected::Unsigned(value),
            None => de::Unexpected::Signed(value.as_i64().unwrap_or_default()),
        },
        Value::F32(value) => de::Unexpected::Float(f64::from(*value)),
        Value::F64(value) => de::Unexpected::Float(*value),
        Value::String(_) => de::Unexpected::Other("string"),
        Value::Binary(_) => de::Unexpected::Other("binary"),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Map(_) => de::Unexpected::Map,
        Value::Ext(..) => de::Unexpected::Other("extension"),
    }
}

impl<'de> de::Deserializer<'de> for Bind {
    type Error = BindFailure;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BindFailure> {
        match self.0 {
            Value::Nil => visitor.visit_unit(),
            Value::Boolean(value) => visitor.visit_bool(value),
            Value::Integer(value) => match (value.as_u64(), value.as_i64()) {
                (Some(value), _) => visitor.visit_u64(value),
                (None, Some(value)) => visitor.visit_i64(value),
                (None, None) => Err(de::Error::custom("an integer out of range")),
            },
            Value::F32(value) => visitor.visit_f32(value),
            Value::F64(value) => visitor.visit_f64(value),
            Value::String(text) => {
                if text.is_str() {
                    visitor.visit_string(text.into_str().unwrap_or_default())
                } else {
                    visitor.visit_byte_buf(text.into_bytes())
                }
            }
            // A sequence of bytes, so `Vec<u8>` and dynamic values (`serde_json::Value`) bind
            // from it; `deserialize_bytes` hands it over whole.
            Value::Binary(bytes) => {
                let mut access = SeqDeserializer::new(bytes.into_iter());
                let seq = visitor.visit_seq(&mut access)?;
                access.end()?;
                Ok(seq)
            }
            Value::Array(items) => visit_items(items, visitor),
            Value::Map(entries) => {
                let mut access = Entries {
                    entries: entries.into_iter(),
                    value: None,
                };
                let map = visitor.visit_map(&mut access)?;
                match access.entries.len() {
                    0 => Ok(map),
                    left => Err(de::Error::custom(format!("{left} map entries left over"))),
                }
            }
            Value::Ext(kind, data) => visit_items(
                vec![Value::from(i64::from(kind)), Value::Binary(data)],
                visitor,
            ),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BindFailure> {
        match self.0 {
            Value::Nil => visitor.visit_none(),
            value => visitor.visit_some(Bind(value)),
        }
    }

    /// `bin` whole, for `serde_bytes` and the like.
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BindFailure> {
        match self.0 {
            Value::Binary(bytes) => visitor.visit_byte_buf(bytes),
            value => Bind(value).deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BindFailure> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BindFailure> {
        visitor.visit_newtype_struct(self)
    }

    /// A unit variant is its name; any other variant a one-entry map from its name to its
    /// data (`rmp_serde`'s and `serde_json`'s external tagging).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BindFailure> {
        match self.0 {
            Value::String(name) if name.is_str() => {
                let name: StringDeserializer<BindFailure> =
                    name.into_str().unwrap_or_default().into_deserializer();
                visitor.visit_enum(name)
            }
            Value::Map(entries) if entries.len() == 1 => {
                let mut entries = entries.into_iter();
                match entries.next() {
                    Some((variant, value)) => visitor.visit_enum(Variant { variant, value }),
                    None => Err(de::Error::custom("an empty map is no enum variant")),
                }
            }
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a variant name or a map from one variant name to its data",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BindFailure> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string unit unit_struct
        seq tuple map struct tuple_struct identifier
    }
}

fn visit_items<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    visitor: V,
) -> Result<V::Value, BindFailure> {
    let mut access = Items(items.into_iter());
    let seq = visitor.visit_seq(&mut access)?;
    match access.0.len() {
        0 => Ok(seq),
        left => Err(de::Error::custom(format!(
            "{left} array elements left over"
        ))),
    }
}

/// The elements of an array.
struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = BindFailure;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, BindFailure> {
        self.0
            .next()
            .map(|item| seed.deserialize(Bind(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of a map.
struct Entries {
    entries: std::vec::IntoIter<(Value, Value)>,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = BindFailure;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, BindFailure> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Bind(key)).map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, BindFailure> {
        let value = self.value.take().unwrap_or(Value::Nil);
        seed.deserialize(Bind(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum variant given as a one-entry map.
struct Variant {
    variant: Value,
    value: Value,
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = BindFailure;
    type Variant = Bind;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Bind), BindFailure> {
        let variant = seed.deserialize(Bind(self.variant))?;
        Ok((variant, Bind(self.value)))
    }
}

impl<'de> VariantAccess<'de> for Bind {
    type Error = BindFailure;

    fn unit_variant(self) -> Result<(), BindFailure> {
        match self.0 {
            Value::Nil => Ok(()),
            other => Err(de::Error::invalid_type(unexpected(&other), &"no data")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, BindFailure> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, BindFailure> {
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BindFailure> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}
