//! The RPC reply and the call-monitor heartbeat.

use serde_json::{Map, Value};

use super::envelope::kind_of;
use super::request::{new_id, optional_string};
use crate::{Error, RemoteError, Result};

/// A reply (or, with `ending == false` and no result, a heartbeat).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The method's return value.
    pub result: Value,
    /// The server's exception, sent as oslo's failure JSON string.
    pub failure: Option<RemoteError>,
    /// True on the final reply; false on heartbeats.
    pub ending: bool,
    /// The request's `_msg_id`.
    pub msg_id: String,
    /// A fresh `_unique_id`.
    pub unique_id: String,
}

impl Reply {
    /// The final reply carrying a result or a failure.
    pub fn new(msg_id: impl Into<String>, outcome: std::result::Result<Value, RemoteError>) -> Self {
        let (result, failure) = match outcome {
            Ok(v) => (v, None),
            Err(f) => (Value::Null, Some(f)),
        };
        Reply { result, failure, ending: true, msg_id: msg_id.into(), unique_id: new_id() }
    }

    /// A call-monitor heartbeat.
    pub fn heartbeat(msg_id: impl Into<String>) -> Self {
        Reply {
            result: Value::Null,
            failure: None,
            ending: false,
            msg_id: msg_id.into(),
            unique_id: new_id(),
        }
    }

    /// A heartbeat is a reply with no result that does not end the call.
    pub fn is_heartbeat(&self) -> bool {
        !self.ending && self.result.is_null() && self.failure.is_none()
    }

    /// The inner message map.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::with_capacity(5);
        m.insert("result".into(), self.result.clone());
        m.insert(
            "failure".into(),
            self.failure.as_ref().map_or(Value::Null, |f| Value::String(f.to_json())),
        );
        m.insert("ending".into(), Value::Bool(self.ending));
        m.insert("_msg_id".into(), Value::String(self.msg_id.clone()));
        m.insert("_unique_id".into(), Value::String(self.unique_id.clone()));
        m
    }

    /// Parses an inner reply message.
    pub fn from_map(mut m: Map<String, Value>) -> Result<Reply> {
        let msg_id = optional_string(&mut m, "_msg_id")?
            .ok_or_else(|| Error::Malformed("reply has no \"_msg_id\" field".into()))?;
        let failure = match m.remove("failure") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(RemoteError::from_json(&s)?),
            Some(obj @ Value::Object(_)) => Some(RemoteError::from_value(&obj)?),
            Some(other) => {
                return Err(Error::Malformed(format!(
                    "reply field \"failure\" must be a string, got {}",
                    kind_of(&other)
                )));
            }
        };
        // Python treats any truthy value as ending; old replies may lack the key.
        let ending = match m.remove("ending") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(_) => true,
        };
        Ok(Reply {
            result: m.remove("result").unwrap_or(Value::Null),
            failure,
            ending,
            msg_id,
            unique_id: optional_string(&mut m, "_unique_id")?.unwrap_or_default(),
        })
    }
}
