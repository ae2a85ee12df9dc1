//! Where a notifier's messages go: the transport (`messaging`, `messagingv2`), the log,
//! nowhere, a test recorder, or a routing table choosing among these.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::Priority;
use super::routing::RoutingConfig;
use crate::driver::Retry;
use crate::wire::NotificationMessage;
use crate::{Error, Result};

/// One notification driver of a [`Notifier`](super::Notifier), named as oslo's
/// `[oslo_messaging_notifications] driver` values.
#[derive(Clone, Debug)]
pub enum Sink {
    /// `messaging`: the transport, without envelope (1.0 format).
    Messaging,
    /// `messagingv2`: the transport, in the 2.0 envelope.
    MessagingV2,
    /// `log`: a `tracing` event per notification, passwords masked.
    Log,
    /// `noop`: nothing.
    Noop,
    /// `test`: records notifications for assertions.
    Test(TestNotifications),
    /// `routing`: picks drivers per event type and priority from a YAML table.
    Routing(Arc<RoutingConfig>),
}

impl Sink {
    /// The sink for an oslo driver name; `routing` needs the routing table and
    /// `test` a recorder, so they are built with [`Sink::Routing`] and [`Sink::Test`].
    pub fn from_name(name: &str) -> Result<Sink> {
        match name {
            "messaging" => Ok(Sink::Messaging),
            "messagingv2" => Ok(Sink::MessagingV2),
            "log" => Ok(Sink::Log),
            "noop" => Ok(Sink::Noop),
            "test" => Ok(Sink::Test(TestNotifications::default())),
            other => Err(Error::Config(format!(
                "unknown notification driver {other:?}; known: messaging, messagingv2, log, noop, test, routing"
            ).into())),
        }
    }

    /// oslo's name of the sink.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Messaging => "messaging",
            Sink::MessagingV2 => "messagingv2",
            Sink::Log => "log",
            Sink::Noop => "noop",
            Sink::Test(_) => "test",
            Sink::Routing(_) => "routing",
        }
    }
}

/// A notification recorded by the `test` sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SentNotification {
    /// The message, context included.
    pub message: NotificationMessage,
    /// Its priority.
    pub priority: Priority,
    /// The retry it was sent with.
    pub retry: Retry,
}

/// The recorder behind [`Sink::Test`]; clones share the record.
#[derive(Clone, Debug, Default)]
pub struct TestNotifications {
    sent: Arc<Mutex<Vec<SentNotification>>>,
    added: Arc<tokio::sync::Notify>,
}

impl TestNotifications {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn record(&self, sent: SentNotification) {
        self.lock().push(sent);
        self.added.notify_waiters();
    }

    /// Everything recorded so far.
    pub fn all(&self) -> Vec<SentNotification> {
        self.lock().clone()
    }

    /// Takes and clears the record.
    pub fn take(&self) -> Vec<SentNotification> {
        std::mem::take(&mut *self.lock())
    }

    /// How many were recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until at least `n` are recorded or `limit` passes; returns the count.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let added = self.added.notified();
            let len = self.len();
            if len >= n || tokio::time::timeout_at(deadline, added).await.is_err() {
                return self.len();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SentNotification>> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub use crate::secrets::{is_secret_key, mask_passwords};

/// The `log` sink: one event per notification at the priority's level.
///
/// As oslo's `LogDriver`: the message dict alone (no `_unique_id`, no context) is
/// logged as `json.dumps` writes it, passwords masked; a priority Python loggers have
/// no method for (`audit`, `sample`) is not logged, only warned about.
pub(crate) fn log_notification(message: &NotificationMessage, priority: Priority) {
    let event_type = message.event_type.as_str();
    if matches!(priority, Priority::Audit | Priority::Sample) {
        tracing::warn!(
            target: "oslo.messaging.notification",
            event_type,
            "Unable to log message as notify cannot find a logger with the priority specified {priority}"
        );
        return;
    }
    let logged = NotificationMessage {
        unique_id: None,
        context: crate::Context::new(),
        ..message.clone()
    };
    let map = logged.to_map(crate::wire::ContextPacking::Flattened);
    let text = crate::wire::failure::python_json(&mask_passwords(&Value::Object(map)));
    match priority {
        Priority::Debug => {
            tracing::debug!(target: "oslo.messaging.notification", event_type, "{text}")
        }
        Priority::Info | Priority::Audit | Priority::Sample => {
            tracing::info!(target: "oslo.messaging.notification", event_type, "{text}")
        }
        Priority::Warn => {
            tracing::warn!(target: "oslo.messaging.notification", event_type, "{text}")
        }
        Priority::Error | Priority::Critical => {
            tracing::error!(target: "oslo.messaging.notification", event_type, "{text}")
        }
    }
}
