//! How a context rides inside a message: flattened `_context_<key>` keys (RabbitMQ,
//! memory) or one nested `_context` object (Kafka).

use serde_json::{Map, Value};

use crate::Context;

/// The prefix of flattened context keys.
pub const CONTEXT_PREFIX: &str = "_context_";
/// The key of a nested context.
pub const NESTED_CONTEXT_KEY: &str = "_context";

/// Where a driver puts the context in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextPacking {
    /// Each key becomes `_context_<key>` (oslo's `pack_context`, used on RabbitMQ).
    #[default]
    Flattened,
    /// The whole context is one `_context` object (oslo's Kafka driver).
    Nested,
}

impl ContextPacking {
    /// Adds `context` to `message`.
    pub fn pack(self, message: &mut Map<String, Value>, context: &Context) {
        match self {
            ContextPacking::Flattened => {
                for (k, v) in context.as_map() {
                    message.insert(format!("{CONTEXT_PREFIX}{k}"), v.clone());
                }
            }
            ContextPacking::Nested => {
                message.insert(
                    NESTED_CONTEXT_KEY.into(),
                    Value::Object(context.as_map().clone()),
                );
            }
        }
    }
}

impl ContextPacking {
    /// Writes `context` into a map being serialized.
    pub(crate) fn serialize_into<M: serde::ser::SerializeMap>(
        self,
        m: &mut M,
        context: &Context,
    ) -> Result<(), M::Error> {
        match self {
            ContextPacking::Flattened => {
                for (k, v) in context.as_map() {
                    m.serialize_entry(&Prefixed(k), v)?;
                }
                Ok(())
            }
            ContextPacking::Nested => m.serialize_entry(NESTED_CONTEXT_KEY, context.as_map()),
        }
    }
}

/// A context key with the `_context_` prefix, written without building a string.
struct Prefixed<'a>(&'a str);

impl serde::Serialize for Prefixed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{CONTEXT_PREFIX}{}", self.0))
    }
}

/// Removes the context from a received message, whichever way it was packed.
pub fn unpack(message: &mut Map<String, Value>) -> Context {
    let mut context = match message.remove(NESTED_CONTEXT_KEY) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let flattened: Vec<String> = message
        .keys()
        .filter(|k| k.starts_with(CONTEXT_PREFIX))
        .cloned()
        .collect();
    for key in flattened {
        if let Some(v) = message.remove(&key) {
            context.insert(key[CONTEXT_PREFIX.len()..].to_string(), v);
        }
    }
    Context(context)
}
