//! The notifier: publishes events with a priority to topics, through sinks.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use super::Priority;
use super::routing::RoutingConfig;
use super::sink::{SentNotification, Sink, is_secret_key, log_notification};
use crate::driver::{NotificationFormat, Retry};
use crate::serializer::{NoOpSerializer, Serializer};
use crate::telemetry::{self, catalog, trace_context};
use crate::wire::NotificationMessage;
use crate::wire::notification::{new_message_id, utc_now_timestamp};
use crate::wire::request::new_id;
use crate::{Context, Error, Result, Target, Transport};

/// Context keys that never leave in a notification (oslo.context's `redacted_copy`).
const REDACTED_CONTEXT_KEYS: &[&str] = &[
    "auth_token",
    "auth_token_info",
    "service_token",
    "service_catalog",
];

/// Publishes notifications. Cheap to clone; [`Notifier::prepare`] gives a copy whose
/// publisher id or retry can be changed.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use messaging_core::notify::{Notifier, Sink, TestNotifications};
/// use messaging_core::{Config, Context, DriverRegistry};
/// let transport = DriverRegistry::with_memory().transport("memory://", &Config::default()).await.unwrap();
/// let record = TestNotifications::new();
/// let notifier = Notifier::new(&transport, "compute.host1").sinks([Sink::Test(record.clone())]);
/// notifier.info(&Context::new(), "compute.instance.create.end", serde_json::json!({"id": 1})).await;
/// assert_eq!(record.all()[0].message.priority, "INFO");
/// # });
/// ```
#[derive(Clone)]
pub struct Notifier {
    transport: Transport,
    publisher_id: Option<String>,
    sinks: Arc<[Sink]>,
    topics: Arc<[String]>,
    retry: Retry,
    serializer: Arc<dyn Serializer>,
}

impl Notifier {
    /// A notifier sending `messagingv2` notifications to the configured topics
    /// (`[oslo_messaging_notifications] topics`, default `notifications`).
    pub fn new(transport: &Transport, publisher_id: impl Into<String>) -> Self {
        let cfg = &transport.config().notifications;
        Notifier {
            transport: transport.clone(),
            publisher_id: Some(publisher_id.into()),
            sinks: Arc::from([Sink::MessagingV2]),
            topics: cfg.topics.iter().cloned().collect(),
            retry: Retry::from_oslo(Some(cfg.retry)),
            serializer: Arc::new(NoOpSerializer),
        }
    }

    /// A notifier configured as oslo does from `[oslo_messaging_notifications]`:
    /// drivers from `driver` (none configured means nothing is sent), the routing table
    /// from `routing_config`.
    pub fn from_config(transport: &Transport, publisher_id: impl Into<String>) -> Result<Self> {
        let cfg = &transport.config().notifications;
        let mut sinks = Vec::new();
        for name in &cfg.driver {
            sinks.push(match name.as_str() {
                "routing" => {
                    let table = if cfg.routing_config.is_empty() {
                        RoutingConfig::default()
                    } else {
                        RoutingConfig::from_file(std::path::Path::new(&cfg.routing_config))?
                    };
                    for used in table.used_drivers() {
                        if used == "routing" {
                            return Err(Error::Config(
                                "the routing table may not route to \"routing\"".into(),
                            ));
                        }
                        Sink::from_name(used)?;
                    }
                    Sink::Routing(Arc::new(table))
                }
                other => Sink::from_name(other)?,
            });
        }
        if sinks.is_empty() {
            tracing::info!("no notification driver configured: notifications are not sent");
        }
        Ok(Notifier::new(transport, publisher_id).sinks(sinks))
    }

    /// Replaces the sinks (oslo's `driver`).
    pub fn sinks(mut self, sinks: impl IntoIterator<Item = Sink>) -> Self {
        self.sinks = sinks.into_iter().collect();
        self
    }

    /// Replaces the topics.
    pub fn topics<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the serializer of payloads and context.
    pub fn serializer(mut self, serializer: Arc<dyn Serializer>) -> Self {
        self.serializer = serializer;
        self
    }

    /// A copy to override the publisher id or retry on (oslo's `prepare`).
    pub fn prepare(&self) -> Self {
        self.clone()
    }

    /// Sets the publisher id.
    pub fn publisher_id(mut self, publisher_id: impl Into<String>) -> Self {
        self.publisher_id = Some(publisher_id.into());
        self
    }

    /// Sets the retry of sends.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// False only when the sinks are exactly `noop`.
    pub fn is_enabled(&self) -> bool {
        !matches!(&*self.sinks, [Sink::Noop])
    }

    /// Sends at `AUDIT`.
    pub async fn audit(&self, ctx: &Context, event_type: &str, payload: impl Serialize) {
        self.notify(ctx, event_type, Priority::Audit, payload).await
    }

    /// Sends at `DEBUG`.
    pub async fn debug(&self, ctx: &Context, event_type: &str, payload: impl Serialize) {
        self.notify(ctx, event_type, Priority::Debug, payload).await
    }

    /// Sends at `INFO`.
    pub async fn info(&self, ctx: &Context, event_type: &str, payload: impl Serialize) {
        self.notify(ctx, event_type, Priority::Info, payload).await
    }

    /// Sends at `WARN`.
    pub async fn warn(&self, ctx: &Context, event_type: &str, payload: impl Serialize) {
        self.notify(ctx, event_type, Priority::Warn, payload).await
    }

    /// Sends at `WARN` (oslo's alias of `warn`).
    pub async fn warning(&self, ctx: &Context, event_type: &str, payload: impl Serialize) {
        self.notify(ctx, event_type, Priority::Warn, payload).await
    }

    /// Sends at `ERROR`.
    pub async fn error(&self, ctx: &Context, event_type: &str, payload: impl Serialize) {
        self.notify(ctx, event_type, Priority::Error, payload).await
    }

    /// Sends at `CRITICAL`.
    pub async fn critical(&self, ctx: &Context, event_type: &str, payload: impl Serialize) {
        self.notify(ctx, event_type, Priority::Critical, payload)
            .await
    }

    /// Sends at `SAMPLE`.
    pub async fn sample(&self, ctx: &Context, event_type: &str, payload: impl Serialize) {
        self.notify(ctx, event_type, Priority::Sample, payload)
            .await
    }

    /// Sends at `priority`. As in oslo, failures are logged, never returned; use
    /// [`try_notify`](Self::try_notify) to see them.
    pub async fn notify(
        &self,
        ctx: &Context,
        event_type: &str,
        priority: Priority,
        payload: impl Serialize,
    ) {
        if let Err(e) = self.try_notify(ctx, event_type, priority, payload).await {
            tracing::error!(event_type, %priority, error = %e, "could not send notification");
        }
    }

    /// Sends at `priority` through every sink and returns the first failure.
    pub async fn try_notify(
        &self,
        ctx: &Context,
        event_type: &str,
        priority: Priority,
        payload: impl Serialize,
    ) -> Result<()> {
        let payload = self
            .serializer
            .serialize_entity(ctx, serde_json::to_value(payload)?)?;
        let message = NotificationMessage {
            message_id: new_message_id(),
            publisher_id: self.publisher_id.clone().unwrap_or_default(),
            event_type: event_type.to_string(),
            priority: priority.as_upper().to_string(),
            payload,
            timestamp: utc_now_timestamp(),
            unique_id: Some(new_id()),
            context: self.serializer.serialize_context(&sanitize(ctx))?,
        };
        let mut message = message;
        let span = tracing::info_span!(
            "notification.send",
            otel.name = format!("{event_type} send"),
            otel.kind = "producer",
            messaging.system = telemetry::messaging_system(self.transport.driver().name()),
            messaging.operation = "send",
            messaging.message.id = %message.message_id,
            openstack.request_id = telemetry::request_id(message.context.as_map()),
            event_type,
            %priority,
        );
        trace_context::propagate(&span, &mut message.context.0);
        async {
            let mut first_error = None;
            for sink in self.sinks.iter() {
                if let Err(e) = self.send_to(sink, &message, priority).await {
                    tracing::warn!(sink = sink.name(), error = %e, "notification sink failed");
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        }
        .instrument(span)
        .await
    }

    async fn send_to(
        &self,
        sink: &Sink,
        message: &NotificationMessage,
        priority: Priority,
    ) -> Result<()> {
        match sink {
            Sink::Messaging => {
                self.send_messaging(message, priority, NotificationFormat::V1)
                    .await
            }
            Sink::MessagingV2 => {
                self.send_messaging(message, priority, NotificationFormat::V2)
                    .await
            }
            Sink::Log => {
                log_notification(message, priority);
                Ok(())
            }
            Sink::Noop => Ok(()),
            Sink::Test(record) => {
                record.record(SentNotification {
                    message: message.clone(),
                    priority,
                    retry: self.retry,
                });
                Ok(())
            }
            Sink::Routing(table) => {
                let mut first_error = None;
                for name in table.drivers_for(&message.event_type, priority) {
                    let sent = match Sink::from_name(name) {
                        Ok(routed) => Box::pin(self.send_to(&routed, message, priority)).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = sent {
                        first_error.get_or_insert(e);
                    }
                }
                first_error.map_or(Ok(()), Err)
            }
        }
    }

    async fn send_messaging(
        &self,
        message: &NotificationMessage,
        priority: Priority,
        format: NotificationFormat,
    ) -> Result<()> {
        self.transport.require(|c| c.notify, "notifications")?;
        // As oslo, a failing topic does not keep the others from getting the message.
        let mut first_error = None;
        for topic in self.topics.iter() {
            let target = Target::topic(format!("{topic}.{}", priority.as_str()));
            let sent = self
                .transport
                .driver()
                .send_notification(&target, message.clone(), format, self.retry)
                .await;
            let labels = [
                ("topic", topic.clone()),
                ("priority", priority.as_str().to_string()),
            ];
            match sent {
                Ok(()) => metrics::counter!(catalog::NOTIFICATIONS_SENT, &labels).increment(1),
                Err(e) => {
                    metrics::counter!(catalog::NOTIFICATION_SEND_FAILURES, &labels).increment(1);
                    tracing::warn!(%topic, error = %e, "could not send notification to topic");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A copy of the context with credentials removed, so notifications never carry them.
fn sanitize(ctx: &Context) -> Context {
    Context(
        ctx.as_map()
            .iter()
            .map(|(k, v)| {
                let redact = REDACTED_CONTEXT_KEYS.contains(&k.as_str()) || is_secret_key(k);
                (k.clone(), if redact { Value::Null } else { v.clone() })
            })
            .collect(),
    )
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("publisher_id", &self.publisher_id)
            .field(
                "sinks",
                &self.sinks.iter().map(Sink::name).collect::<Vec<_>>(),
            )
            .field("topics", &self.topics)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}
