//! The notification message (oslo's `Notifier._notify`).

use serde_json::{Map, Value};

use super::context::{self, ContextPacking};
use super::envelope::kind_of;
use super::request::optional_string;
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
    /// The inner message map, context packed as `packing` says (omitted when empty
    /// and flattened, as oslo's `pack_context` adds nothing for an empty dict).
    pub fn to_map(&self, packing: ContextPacking) -> Map<String, Value> {
        let mut m = Map::with_capacity(8 + self.context.as_map().len());
        m.insert("message_id".into(), Value::String(self.message_id.clone()));
        m.insert("publisher_id".into(), Value::String(self.publisher_id.clone()));
        m.insert("event_type".into(), Value::String(self.event_type.clone()));
        m.insert("priority".into(), Value::String(self.priority.clone()));
        m.insert("payload".into(), self.payload.clone());
        m.insert("timestamp".into(), Value::String(self.timestamp.clone()));
        if let Some(id) = &self.unique_id {
            m.insert("_unique_id".into(), Value::String(id.clone()));
        }
        packing.pack(&mut m, &self.context);
        m
    }

    /// Parses an inner notification message; `payload`, `message_id` and `timestamp`
    /// may be absent (null / empty), the other fields are required strings.
    pub fn from_map(mut m: Map<String, Value>) -> Result<NotificationMessage> {
        let context = context::unpack(&mut m);
        let mut required = |key: &str| -> Result<String> {
            match m.remove(key) {
                Some(Value::String(s)) => Ok(s),
                Some(other) => Err(Error::Malformed(format!(
                    "notification field {key:?} must be a string, got {}",
                    kind_of(&other)
                ))),
                None => Err(Error::Malformed(format!("notification has no {key:?} field"))),
            }
        };
        let publisher_id = required("publisher_id")?;
        let event_type = required("event_type")?;
        let priority = required("priority")?;
        Ok(NotificationMessage {
            publisher_id,
            event_type,
            priority,
            message_id: optional_string(&mut m, "message_id")?.unwrap_or_default(),
            timestamp: optional_string(&mut m, "timestamp")?.unwrap_or_default(),
            unique_id: optional_string(&mut m, "_unique_id")?,
            payload: m.remove("payload").unwrap_or(Value::Null),
            context,
        })
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
    uuid::Uuid::new_v4().hyphenated().to_string()
}
