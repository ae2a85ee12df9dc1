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

/// Collects the context of a received message as its fields are read, whichever
/// way it was packed; flattened keys win over a nested object's.
#[derive(Default)]
pub(crate) struct ContextFields {
    flattened: Map<String, Value>,
    nested: Option<Value>,
}

impl ContextFields {
    /// Takes `key` if it carries context; gives the value back otherwise.
    pub(crate) fn take(&mut self, key: &str, value: Value) -> Option<Value> {
        if key == NESTED_CONTEXT_KEY {
            self.nested = Some(value);
        } else if let Some(k) = key.strip_prefix(CONTEXT_PREFIX) {
            self.flattened.insert(k.to_string(), value);
        } else {
            return Some(value);
        }
        None
    }

    /// The context read.
    pub(crate) fn finish(self) -> Context {
        let mut context = self.flattened;
        if let Some(Value::Object(nested)) = self.nested {
            for (k, v) in nested {
                context.entry(k).or_insert(v);
            }
        }
        Context(context)
    }
}
