//! The RPC request message (oslo's `_send` and `unpack_context`).

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

    /// The inner message map, context packed as `packing` says.
    pub fn to_map(&self, packing: ContextPacking) -> Map<String, Value> {
        let mut m = Map::with_capacity(8 + self.context.as_map().len());
        m.insert("method".into(), Value::String(self.method.clone()));
        m.insert("args".into(), Value::Object(self.args.clone()));
        if let Some(ns) = &self.namespace {
            m.insert("namespace".into(), Value::String(ns.clone()));
        }
        if let Some(v) = &self.version {
            m.insert("version".into(), Value::String(v.clone()));
        }
        if let Some(reply) = &self.reply {
            m.insert("_msg_id".into(), Value::String(reply.msg_id.clone()));
            m.insert("_reply_q".into(), Value::String(reply.reply_q.clone()));
            m.insert("_timeout".into(), seconds_to_json(reply.call_monitor_timeout));
        }
        if let Some(id) = &self.unique_id {
            m.insert("_unique_id".into(), Value::String(id.clone()));
        }
        packing.pack(&mut m, &self.context);
        m
    }

    /// Parses an inner message. As oslo's `unpack_context` does, the context handed to
    /// the server gains `client_timeout` (the `_timeout` value, possibly null).
    pub fn from_map(mut m: Map<String, Value>) -> Result<Request> {
        let mut context = context::unpack(&mut m);
        let method = match m.remove("method") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(Error::Malformed(format!(
                    "request field \"method\" must be a string, got {}",
                    kind_of(&other)
                )));
            }
            None => return Err(Error::Malformed("request has no \"method\" field".into())),
        };
        let args = match m.remove("args") {
            Some(Value::Object(a)) => a,
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                return Err(Error::Malformed(format!(
                    "request field \"args\" must be an object, got {}",
                    kind_of(&other)
                )));
            }
        };
        let namespace = optional_string(&mut m, "namespace")?;
        let version = optional_string(&mut m, "version")?;
        let unique_id = optional_string(&mut m, "_unique_id")?;
        let msg_id = optional_string(&mut m, "_msg_id")?;
        let reply_q = optional_string(&mut m, "_reply_q")?;
        let timeout = match m.remove("_timeout") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => {
                return Err(Error::Malformed(format!(
                    "request field \"_timeout\" must be a number or null, got {}",
                    kind_of(&other)
                )));
            }
        };
        context.insert("client_timeout", seconds_to_json(timeout));
        let reply = match (msg_id, reply_q) {
            (Some(msg_id), Some(reply_q)) => Some(ReplyAddress {
                msg_id,
                reply_q,
                call_monitor_timeout: timeout,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::Malformed("request has \"_msg_id\" but no \"_reply_q\"".into()));
            }
            (None, Some(_)) => {
                return Err(Error::Malformed("request has \"_reply_q\" but no \"_msg_id\"".into()));
            }
        };
        Ok(Request { method, args, namespace, version, reply, unique_id, context })
    }
}

/// A fresh uuid4 in hex without dashes, as oslo's ids.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub(crate) fn optional_string(m: &mut Map<String, Value>, key: &str) -> Result<Option<String>> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::Malformed(format!(
            "field {key:?} must be a string, got {}",
            kind_of(&other)
        ))),
    }
}

/// Whole seconds are written as integers, as Python sends them.
pub(crate) fn seconds_to_json(seconds: Option<f64>) -> Value {
    match seconds {
        None => Value::Null,
        Some(s) if s.fract() == 0.0 && s.abs() < 1e15 => Value::from(s as i64),
        Some(s) => serde_json::Number::from_f64(s).map(Value::Number).unwrap_or(Value::Null),
    }
}
