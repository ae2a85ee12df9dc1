//! The request context: a JSON map that travels with every message.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A request context (user, project, request id, ...), carried as `_context_*` keys on
/// RabbitMQ and as a nested `_context` object on Kafka.
///
/// ```
/// use messaging_core::Context;
/// use serde_json::json;
/// let ctx = Context::from_value(json!({"user": "alice", "request_id": "req-1"})).unwrap();
/// assert_eq!(ctx.get("user"), Some(&json!("alice")));
/// ```
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Context(pub Map<String, Value>);

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context from a JSON object; anything else is an error.
    pub fn from_value(value: Value) -> crate::Result<Self> {
        match value {
            Value::Object(map) => Ok(Context(map)),
            Value::Null => Ok(Context::new()),
            other => Err(crate::Error::Serialization(format!(
                "a context must be a JSON object, not {other}"
            ))),
        }
    }

    /// Adds a key, builder style.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Sets a key.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.0.insert(key.into(), value.into())
    }

    /// Reads a key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Whether the context has no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The map itself.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The call-monitor timeout the client asked for (`client_timeout` on the server side).
    pub fn client_timeout(&self) -> Option<f64> {
        self.0.get("client_timeout").and_then(Value::as_f64)
    }
}

impl From<Map<String, Value>> for Context {
    fn from(map: Map<String, Value>) -> Self {
        Context(map)
    }
}

/// Prints the context with secret-named values (tokens, passwords) masked, so a
/// logged request never shows credentials.
impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = crate::secrets::mask_passwords(&Value::Object(self.0.clone()));
        write!(f, "Context({masked})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_credentials() {
        let ctx = Context::new()
            .with("user", "alice")
            .with("auth_token", "tok-s3cret")
            .with("password", "pw-s3cret");
        let text = format!("{ctx:?}");
        assert!(text.contains("alice") && !text.contains("s3cret"), "{text}");
    }
}
