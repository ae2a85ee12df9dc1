//! The notification message (oslo's `Notifier._notify`).

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::context::{self, ContextPacking};
use super::envelope::kind_of;
use super::request::to_object;
use crate::{Context, Error, Result};

/// A notification as it travels.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationMessage {
    /// uuid4 with dashes.
    pub message_id: String,
    /// Who sent it, e.g. `compute.host1`.
    pub publisher_id: String,
    /// What happened, e.g. `compute.instance.create.end`.
    pub event_type: String,
    /// Upper-case priority, e.g. `INFO`.
    pub priority: String,
    /// The event's data.
    pub payload: Value,
    /// Python `str(datetime)` of the naive UTC send time.
    pub timestamp: String,
    /// `_unique_id` (RabbitMQ adds one; Kafka does not).
    pub unique_id: Option<String>,
    /// The (sanitised) context.
    pub context: Context,
}

impl NotificationMessage {
    /// The inner message as a serializable view (context keys omitted when the
    /// context is empty and flattened, as oslo's `pack_context` adds nothing then).
    pub fn wire(&self, packing: ContextPacking) -> NotificationWire<'_> {
        NotificationWire {
            message: self,
            packing,
        }
    }

    /// The inner message map.
    pub fn to_map(&self, packing: ContextPacking) -> Map<String, Value> {
        to_object(&self.wire(packing))
    }

    /// Encodes with the 2.0 envelope (`messagingv2`) or without (`messaging`).
    pub fn encode(&self, packing: ContextPacking, enveloped: bool) -> Result<Vec<u8>> {
        if enveloped {
            super::envelope::encode(&self.wire(packing))
        } else {
            super::envelope::encode_bare(&self.wire(packing))
        }
    }

    /// Decodes a notification body (enveloped or not).
    pub fn decode(body: &[u8]) -> Result<NotificationMessage> {
        match super::envelope::decode_inner::<NotificationFields>(body)? {
            super::envelope::Inner::Typed(fields) => fields.finish(),
            super::envelope::Inner::Map(map) => NotificationMessage::from_map(map),
        }
    }

    /// Parses an inner notification message; `payload`, `message_id` and `timestamp`
    /// may be absent (null / empty), the other fields are required strings.
    pub fn from_map(m: Map<String, Value>) -> Result<NotificationMessage> {
        let mut fields = NotificationFields::default();
        for (key, value) in m {
            super::envelope::FieldSink::field(&mut fields, &key, value)?;
        }
        fields.finish()
    }
}

/// The fields of a notification as they are read, in any order.
#[derive(Default)]
struct NotificationFields {
    message_id: Option<String>,
    publisher_id: Option<String>,
    event_type: Option<String>,
    priority: Option<String>,
    payload: Value,
    timestamp: Option<String>,
    unique_id: Option<String>,
    context: context::ContextFields,
}

impl super::envelope::FieldSink for NotificationFields {
    fn field(&mut self, key: &str, value: Value) -> Result<()> {
        let Some(value) = self.context.take(key, value) else {
            return Ok(());
        };
        let slot = match key {
            "message_id" => &mut self.message_id,
            "publisher_id" => &mut self.publisher_id,
            "event_type" => &mut self.event_type,
            "priority" => &mut self.priority,
            "timestamp" => &mut self.timestamp,
            "_unique_id" => &mut self.unique_id,
            "payload" => {
                self.payload = value;
                return Ok(());
            }
            _ => return Ok(()),
        };
        *slot = match value {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => {
                return Err(Error::Malformed(format!(
                    "notification field {key:?} must be a string, got {}",
                    kind_of(&other)
                )));
            }
        };
        Ok(())
    }
}

impl NotificationFields {
    fn finish(self) -> Result<NotificationMessage> {
        let required = |value: Option<String>, key: &str| {
            value.ok_or_else(|| Error::Malformed(format!("notification has no {key:?} field")))
        };
        Ok(NotificationMessage {
            publisher_id: required(self.publisher_id, "publisher_id")?,
            event_type: required(self.event_type, "event_type")?,
            priority: required(self.priority, "priority")?,
            message_id: self.message_id.unwrap_or_default(),
            timestamp: self.timestamp.unwrap_or_default(),
            unique_id: self.unique_id,
            payload: self.payload,
            context: self.context.finish(),
        })
    }
}

/// A [`NotificationMessage`] as its inner wire message; see [`NotificationMessage::wire`].
pub struct NotificationWire<'a> {
    message: &'a NotificationMessage,
    packing: ContextPacking,
}

impl Serialize for NotificationWire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let n = self.message;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("message_id", &n.message_id)?;
        m.serialize_entry("publisher_id", &n.publisher_id)?;
        m.serialize_entry("event_type", &n.event_type)?;
        m.serialize_entry("priority", &n.priority)?;
        m.serialize_entry("payload", &n.payload)?;
        m.serialize_entry("timestamp", &n.timestamp)?;
        if let Some(id) = &n.unique_id {
            m.serialize_entry("_unique_id", id)?;
        }
        self.packing.serialize_into(&mut m, &n.context)?;
        m.end()
    }
}

/// Python's `str(datetime)` of a naive UTC time: `YYYY-MM-DD HH:MM:SS[.ffffff]`, the
/// fraction omitted when the microseconds are zero.
pub fn python_timestamp(t: chrono::NaiveDateTime) -> String {
    use chrono::Timelike;
    let micros = t.nanosecond() / 1000 % 1_000_000;
    if micros == 0 {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", t.format("%Y-%m-%d %H:%M:%S"))
    }
}

/// The current time as [`python_timestamp`] writes it.
pub fn utc_now_timestamp() -> String {
    python_timestamp(chrono::Utc::now().naive_utc())
}

/// A fresh uuid4 with dashes, as notifications' `message_id`.
pub fn new_message_id() -> String {
    super::request::random_uuid().hyphenated().to_string()
}
