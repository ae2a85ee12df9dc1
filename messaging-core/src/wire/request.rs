//! The RPC request message (oslo's `_send` and `unpack_context`).

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::context::{self, ContextPacking};
use super::envelope::kind_of;
use crate::{Context, Error, Result};

/// What a caller waiting for a reply adds to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyAddress {
    /// Correlates the reply with the call (`_msg_id`, uuid4 hex).
    pub msg_id: String,
    /// Where the reply goes (`_reply_q`).
    pub reply_q: String,
    /// The call-monitor timeout in seconds (`_timeout`); the key is sent even when null.
    pub call_monitor_timeout: Option<f64>,
}

impl ReplyAddress {
    /// The address of a call waiting on `reply_q` under `msg_id`.
    pub fn new(
        msg_id: impl Into<String>,
        reply_q: impl Into<String>,
        call_monitor_timeout: Option<std::time::Duration>,
    ) -> Self {
        ReplyAddress {
            msg_id: msg_id.into(),
            reply_q: reply_q.into(),
            call_monitor_timeout: call_monitor_timeout.map(|d| d.as_secs_f64()),
        }
    }
}

/// An RPC request as it travels.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The endpoint method to run.
    pub method: String,
    /// Keyword arguments.
    pub args: Map<String, Value>,
    /// The interface namespace; sent only when set.
    pub namespace: Option<String>,
    /// The interface version the request needs; sent only when set.
    pub version: Option<String>,
    /// Present on calls, absent on casts.
    pub reply: Option<ReplyAddress>,
    /// `_unique_id` (uuid4 hex), for duplicate detection; Kafka sends none.
    pub unique_id: Option<String>,
    /// The request context.
    pub context: Context,
}

impl Request {
    /// A cast request with a fresh unique id.
    pub fn new(method: impl Into<String>, args: Map<String, Value>, context: Context) -> Self {
        Request {
            method: method.into(),
            args,
            namespace: None,
            version: None,
            reply: None,
            unique_id: Some(new_id()),
            context,
        }
    }

    /// The inner message as a serializable view, context packed as `packing` says;
    /// encodes without copying (see [`envelope::encode`](super::envelope::encode)).
    pub fn wire(&self, packing: ContextPacking) -> RequestWire<'_> {
        RequestWire {
            request: self,
            packing,
        }
    }

    /// The inner message map, context packed as `packing` says.
    pub fn to_map(&self, packing: ContextPacking) -> Map<String, Value> {
        to_object(&self.wire(packing))
    }

    /// Encodes the request in the 2.0 envelope.
    pub fn encode(&self, packing: ContextPacking) -> Result<Vec<u8>> {
        super::envelope::encode(&self.wire(packing))
    }

    /// Decodes a request body (enveloped or not).
    pub fn decode(body: &[u8]) -> Result<Request> {
        match super::envelope::decode_inner::<RequestFields>(body)? {
            super::envelope::Inner::Typed(fields) => fields.finish(),
            super::envelope::Inner::Map(map) => Request::from_map(map),
        }
    }

    /// Parses an inner message. As oslo's `unpack_context` does, the context handed to
    /// the server gains `client_timeout` (the `_timeout` value, possibly null).
    pub fn from_map(m: Map<String, Value>) -> Result<Request> {
        let mut fields = RequestFields::default();
        for (key, value) in m {
            super::envelope::FieldSink::field(&mut fields, &key, value)?;
        }
        fields.finish()
    }
}

/// The fields of a request as they are read, in any order.
#[derive(Default)]
struct RequestFields {
    method: Option<String>,
    args: Map<String, Value>,
    namespace: Option<String>,
    version: Option<String>,
    unique_id: Option<String>,
    msg_id: Option<String>,
    reply_q: Option<String>,
    timeout: Option<f64>,
    context: context::ContextFields,
}

impl RequestFields {
    fn finish(self) -> Result<Request> {
        let mut context = self.context.finish();
        let method = self
            .method
            .ok_or_else(|| Error::Malformed("request has no \"method\" field".into()))?;
        context.insert("client_timeout", seconds_to_json(self.timeout));
        let reply = match (self.msg_id, self.reply_q) {
            (Some(msg_id), Some(reply_q)) => Some(ReplyAddress {
                msg_id,
                reply_q,
                call_monitor_timeout: self.timeout,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::Malformed(
                    "request has \"_msg_id\" but no \"_reply_q\"".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::Malformed(
                    "request has \"_reply_q\" but no \"_msg_id\"".into(),
                ));
            }
        };
        Ok(Request {
            method,
            args: self.args,
            namespace: self.namespace,
            version: self.version,
            reply,
            unique_id: self.unique_id,
            context,
        })
    }
}

impl super::envelope::FieldSink for RequestFields {
    fn field(&mut self, key: &str, value: Value) -> Result<()> {
        let Some(value) = self.context.take(key, value) else {
            return Ok(());
        };
        match key {
            "method" => match value {
                Value::String(s) => self.method = Some(s),
                other => {
                    return Err(Error::Malformed(format!(
                        "request field \"method\" must be a string, got {}",
                        kind_of(&other)
                    )));
                }
            },
            "args" => match value {
                Value::Object(a) => self.args = a,
                Value::Null => {}
                other => {
                    return Err(Error::Malformed(format!(
                        "request field \"args\" must be an object, got {}",
                        kind_of(&other)
                    )));
                }
            },
            "namespace" => self.namespace = string_field("namespace", value)?,
            "version" => self.version = string_field("version", value)?,
            "_unique_id" => self.unique_id = string_field("_unique_id", value)?,
            "_msg_id" => self.msg_id = string_field("_msg_id", value)?,
            "_reply_q" => self.reply_q = string_field("_reply_q", value)?,
            "_timeout" => {
                self.timeout = match value {
                    Value::Null => None,
                    Value::Number(n) => n.as_f64(),
                    other => {
                        return Err(Error::Malformed(format!(
                            "request field \"_timeout\" must be a number or null, got {}",
                            kind_of(&other)
                        )));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A [`Request`] as its inner wire message; see [`Request::wire`].
pub struct RequestWire<'a> {
    request: &'a Request,
    packing: ContextPacking,
}

impl Serialize for RequestWire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let r = self.request;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("method", &r.method)?;
        m.serialize_entry("args", &r.args)?;
        if let Some(ns) = &r.namespace {
            m.serialize_entry("namespace", ns)?;
        }
        if let Some(v) = &r.version {
            m.serialize_entry("version", v)?;
        }
        if let Some(reply) = &r.reply {
            m.serialize_entry("_msg_id", &reply.msg_id)?;
            m.serialize_entry("_reply_q", &reply.reply_q)?;
            m.serialize_entry("_timeout", &seconds_to_json(reply.call_monitor_timeout))?;
        }
        if let Some(id) = &r.unique_id {
            m.serialize_entry("_unique_id", id)?;
        }
        self.packing.serialize_into(&mut m, &r.context)?;
        m.end()
    }
}

/// The JSON object of a wire view (which always serializes to an object).
pub(crate) fn to_object<T: Serialize>(view: &T) -> Map<String, Value> {
    match serde_json::to_value(view) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn string_field(key: &str, value: Value) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(Error::Malformed(format!(
            "field {key:?} must be a string, got {}",
            kind_of(&other)
        ))),
    }
}

/// A fresh uuid4 in hex without dashes, as oslo's ids.
pub fn new_id() -> String {
    random_uuid().simple().to_string()
}

/// A version 4 UUID from the thread's random generator (a CSPRNG seeded by the OS):
/// `Uuid::new_v4` asks the OS for every one, a system call per message.
pub fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

pub(crate) fn optional_string(m: &mut Map<String, Value>, key: &str) -> Result<Option<String>> {
    string_field(key, m.remove(key).unwrap_or(Value::Null))
}

/// Whole seconds are written as integers, as Python sends them.
pub(crate) fn seconds_to_json(seconds: Option<f64>) -> Value {
    match seconds {
        None => Value::Null,
        Some(s) if s.fract() == 0.0 && s.abs() < 1e15 => Value::from(s as i64),
        Some(s) => serde_json::Number::from_f64(s)
            .map(Value::Number)
            .unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn ids_are_fresh_version_4_uuids() {
        let (a, b) = (random_uuid(), random_uuid());
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
        assert_eq!(new_id().len(), 32);
    }
}
