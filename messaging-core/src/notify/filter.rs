//! Filters that decide which notifications an endpoint sees.

use regex::Regex;
use serde_json::{Map, Value};

use super::listener::Notification;
use crate::{Error, Result};

/// oslo's `NotificationFilter`: regexes matched at the start of the value (Python's
/// `re.match`). For the map rules (context, metadata, payload) each key must be present
/// with a string value that matches. All given rules must hold.
///
/// ```
/// use messaging_core::notify::NotificationFilter;
/// let filter = NotificationFilter::new()
///     .event_type(r"compute\.instance\.")
///     .payload("state", "^active$");
/// ```
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    publisher_id: Option<Regex>,
    event_type: Option<Regex>,
    context: Vec<(String, Regex)>,
    metadata: Vec<(String, Regex)>,
    payload: Vec<(String, Regex)>,
    invalid: Option<String>,
}

impl NotificationFilter {
    /// A filter that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Matches the publisher id.
    pub fn publisher_id(mut self, pattern: &str) -> Self {
        self.publisher_id = self.compile("publisher_id", pattern);
        self
    }

    /// Matches the event type.
    pub fn event_type(mut self, pattern: &str) -> Self {
        self.event_type = self.compile("event_type", pattern);
        self
    }

    /// Matches a context key.
    pub fn context(mut self, key: impl Into<String>, pattern: &str) -> Self {
        let key = key.into();
        if let Some(re) = self.compile(&format!("context[{key:?}]"), pattern) {
            self.context.push((key, re));
        }
        self
    }

    /// Matches a metadata key (`message_id`, `timestamp`).
    pub fn metadata(mut self, key: impl Into<String>, pattern: &str) -> Self {
        let key = key.into();
        if let Some(re) = self.compile(&format!("metadata[{key:?}]"), pattern) {
            self.metadata.push((key, re));
        }
        self
    }

    /// Matches a top-level payload key.
    pub fn payload(mut self, key: impl Into<String>, pattern: &str) -> Self {
        let key = key.into();
        if let Some(re) = self.compile(&format!("payload[{key:?}]"), pattern) {
            self.payload.push((key, re));
        }
        self
    }

    /// The first invalid pattern given, as an error naming the rule.
    pub fn validate(&self) -> Result<()> {
        match &self.invalid {
            Some(msg) => Err(Error::Config(msg.clone().into())),
            None => Ok(()),
        }
    }

    /// Whether the notification passes every rule.
    pub fn matches(&self, n: &Notification) -> bool {
        let metadata = Map::from_iter([
            (
                "message_id".to_string(),
                Value::String(n.metadata.message_id.clone()),
            ),
            (
                "timestamp".to_string(),
                Value::String(n.metadata.timestamp.clone()),
            ),
        ]);
        self.publisher_id
            .as_ref()
            .is_none_or(|re| re.is_match(&n.publisher_id))
            && self
                .event_type
                .as_ref()
                .is_none_or(|re| re.is_match(&n.event_type))
            && map_matches(&self.context, Some(n.context.as_map()))
            && map_matches(&self.metadata, Some(&metadata))
            && map_matches(&self.payload, n.payload.as_object())
    }

    /// Compiles anchored at the start; remembers the first error for `validate`.
    fn compile(&mut self, rule: &str, pattern: &str) -> Option<Regex> {
        match Regex::new(&format!("^(?:{pattern})")) {
            Ok(re) => Some(re),
            Err(e) => {
                self.invalid
                    .get_or_insert_with(|| format!("invalid {rule} filter regex {pattern:?}: {e}"));
                None
            }
        }
    }
}

fn map_matches(rules: &[(String, Regex)], data: Option<&Map<String, Value>>) -> bool {
    rules.iter().all(|(key, re)| {
        data.and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .is_some_and(|v| re.is_match(v))
    })
}
