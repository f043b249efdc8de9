//! The properties of one JSON hub message, read in any order (HubProtocol.md, "JSON Encoding").
//!
//! The record is read in one pass with serde: known properties are kept, unknown ones are
//! skipped without being built, and argument, item and result values become
//! `serde_json::Value`s moved straight into the message. A property of the wrong type does not
//! stop the pass (serde would add a line and column to the text); the first such problem is
//! kept and reported once the object has been read, in the words ASP.NET Core's
//! `JsonHubProtocol` uses (e.g. "Expected 'target' to be of type String.").

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// The properties of a hub message, as found; `None` when absent.
#[derive(Debug, Default)]
pub(super) struct Fields {
    /// `type`.
    pub kind: Option<i64>,
    /// `invocationId` (a `null` value counts as absent).
    pub invocation_id: Option<String>,
    /// `target` (a `null` value counts as absent).
    pub target: Option<String>,
    /// `arguments`.
    pub arguments: Option<Vec<Value>>,
    /// `streamIds`.
    pub stream_ids: Option<Vec<String>>,
    /// `item` (present even when `null`).
    pub item: Option<Value>,
    /// `result` (present even when `null`).
    pub result: Option<Value>,
    /// `error` (a `null` value counts as absent).
    pub error: Option<String>,
    /// `allowReconnect`.
    pub allow_reconnect: bool,
    /// `sequenceId`.
    pub sequence_id: Option<u64>,
    /// The first property whose value had the wrong type, described.
    pub problem: Option<String>,
}

impl Fields {
    fn fail(&mut self, problem: String) {
        if self.problem.is_none() {
            self.problem = Some(problem);
        }
    }

    /// A string property; `null` is taken as absent (the JavaScript and .NET clients omit
    /// these properties rather than send `null`, and other clients are not refused for it).
    fn string(&mut self, name: &str, value: Value) -> Option<String> {
        match value {
            Value::String(text) => Some(text),
            Value::Null => None,
            _ => {
                self.fail(format!("Expected '{name}' to be of type String."));
                None
            }
        }
    }

    fn set_type(&mut self, value: Value) {
        match value {
            Value::Number(number) => match number.as_i64() {
                Some(kind) => self.kind = Some(kind),
                None => self.fail("Expected 'type' to be an integer.".into()),
            },
            _ => self.fail("Expected 'type' to be of type Number.".into()),
        }
    }

    fn set_arguments(&mut self, value: Value) {
        match value {
            Value::Array(arguments) => self.arguments = Some(arguments),
            _ => self.fail("Expected 'arguments' to be of type Array.".into()),
        }
    }

    fn set_stream_ids(&mut self, value: Value) {
        let Value::Array(items) = value else {
            return self.fail("Expected 'streamIds' to be of type Array.".into());
        };
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::String(id) => ids.push(id),
                Value::Null => return self.fail("Null value for 'streamIds' is not valid.".into()),
                _ => return self.fail("Expected each of 'streamIds' to be a String.".into()),
            }
        }
        self.stream_ids = Some(ids);
    }

    fn set_allow_reconnect(&mut self, value: Value) {
        match value {
            Value::Bool(allow) => self.allow_reconnect = allow,
            _ => self.fail("Expected 'allowReconnect' to be true or false.".into()),
        }
    }

    fn set_sequence_id(&mut self, value: Value) {
        match value {
            Value::Number(number) => match number.as_u64() {
                Some(id) => self.sequence_id = Some(id),
                None => self.fail("Expected 'sequenceId' to be a non-negative integer.".into()),
            },
            Value::Null => {}
            _ => self.fail("Expected 'sequenceId' to be of type Number.".into()),
        }
    }

    /// `headers` must be an object of strings (the reference refuses anything else); their
    /// meaning is ignored, as the spec allows ("Message Headers").
    fn check_headers(&mut self, value: Value) {
        let Value::Object(headers) = value else {
            return self.fail("Expected 'headers' to be of type Object.".into());
        };
        if let Some((name, _)) = headers.iter().find(|(_, value)| !value.is_string()) {
            self.fail(format!("Expected header '{name}' to be of type String."));
        }
    }
}

/// The property names the protocol defines.
enum Key {
    Type,
    InvocationId,
    Target,
    Arguments,
    StreamIds,
    Item,
    Result,
    Error,
    AllowReconnect,
    SequenceId,
    Headers,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a property name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match name {
            "type" => Key::Type,
            "invocationId" => Key::InvocationId,
            "target" => Key::Target,
            "arguments" => Key::Arguments,
            "streamIds" => Key::StreamIds,
            "item" => Key::Item,
            "result" => Key::Result,
            "error" => Key::Error,
            "allowReconnect" => Key::AllowReconnect,
            "sequenceId" => Key::SequenceId,
            "headers" => Key::Headers,
            _ => Key::Other,
        })
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hub message (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => fields.set_type(map.next_value()?),
                Key::InvocationId => {
                    let value = map.next_value()?;
                    fields.invocation_id = fields.string("invocationId", value);
                }
                Key::Target => {
                    let value = map.next_value()?;
                    fields.target = fields.string("target", value);
                }
                Key::Error => {
                    let value = map.next_value()?;
                    fields.error = fields.string("error", value);
                }
                Key::Arguments => fields.set_arguments(map.next_value()?),
                Key::StreamIds => fields.set_stream_ids(map.next_value()?),
                Key::Item => fields.item = Some(map.next_value()?),
                Key::Result => fields.result = Some(map.next_value()?),
                Key::AllowReconnect => fields.set_allow_reconnect(map.next_value()?),
                Key::SequenceId => fields.set_sequence_id(map.next_value()?),
                Key::Headers => fields.check_headers(map.next_value()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}
