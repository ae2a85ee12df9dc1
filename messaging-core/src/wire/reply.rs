//! The RPC reply and the call-monitor heartbeat.

use serde_json::{Map, Value};

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::envelope::kind_of;
use super::request::{new_id, optional_string, to_object};
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
    pub fn new(
        msg_id: impl Into<String>,
        outcome: std::result::Result<Value, RemoteError>,
    ) -> Self {
        let (result, failure) = match outcome {
            Ok(v) => (v, None),
            Err(f) => (Value::Null, Some(f)),
        };
        Reply {
            result,
            failure,
            ending: true,
            msg_id: msg_id.into(),
            unique_id: new_id(),
        }
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
        to_object(self)
    }

    /// Encodes the reply in the 2.0 envelope.
    pub fn encode(&self) -> Result<Vec<u8>> {
        super::envelope::encode(self)
    }

    /// Decodes a reply body.
    pub fn decode(body: &[u8]) -> Result<Reply> {
        Reply::from_map(super::envelope::decode(body)?)
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

/// The inner wire message: `result`, `failure` (a JSON string or null), `ending`,
/// `_msg_id`, `_unique_id`.
impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("result", &self.result)?;
        m.serialize_entry("failure", &self.failure.as_ref().map(RemoteError::to_json))?;
        m.serialize_entry("ending", &self.ending)?;
        m.serialize_entry("_msg_id", &self.msg_id)?;
        m.serialize_entry("_unique_id", &self.unique_id)?;
        m.end()
    }
}
