//! Hooks to turn application values into JSON and back, per argument and per context.

use serde_json::Value;

use crate::{Context, Result};

/// oslo's `Serializer`: the client serializes each argument and the context, the
/// server deserializes them and serializes the result. The default does nothing.
///
/// ```
/// use messaging_core::{Context, Serializer};
/// use serde_json::Value;
/// /// Upper-cases every string argument.
/// struct Shout;
/// impl Serializer for Shout {
///     fn serialize_entity(&self, _ctx: &Context, v: Value) -> messaging_core::Result<Value> {
///         Ok(match v { Value::String(s) => Value::String(s.to_uppercase()), v => v })
///     }
/// }
/// ```
pub trait Serializer: Send + Sync + 'static {
    /// Before sending: one argument, or a result on the server.
    fn serialize_entity(&self, _ctx: &Context, entity: Value) -> Result<Value> {
        Ok(entity)
    }

    /// After receiving: one argument on the server, or the result on the client.
    fn deserialize_entity(&self, _ctx: &Context, entity: Value) -> Result<Value> {
        Ok(entity)
    }

    /// The context before sending.
    fn serialize_context(&self, ctx: &Context) -> Result<Context> {
        Ok(ctx.clone())
    }

    /// The context after receiving.
    fn deserialize_context(&self, ctx: Context) -> Result<Context> {
        Ok(ctx)
    }

    /// Whether every hook leaves its input as it is, so callers may skip them (and
    /// the copies they would need). Say `true` only when none is overridden.
    fn is_identity(&self) -> bool {
        false
    }
}

/// The serializer that changes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOpSerializer;

impl Serializer for NoOpSerializer {
    fn is_identity(&self) -> bool {
        true
    }
}
