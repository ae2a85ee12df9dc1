//! The notification listener: per-priority handlers, filters, batches, pools, requeue.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tracing::Instrument;

use super::{NotificationFilter, Priority};
use crate::driver::{
    Disposition, IncomingNotification, Listener, NotificationListener as DriverListener,
};
use crate::serializer::{NoOpSerializer, Serializer};
use crate::service::Lifecycle;
use crate::telemetry::{self, TraceContext, catalog, trace_context};
use crate::wire::NotificationMessage;
use crate::wire::notification::{new_message_id, utc_now_timestamp};
use crate::{Context, Error, Result, Target, Transport};

/// `message_id` and `timestamp` of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The sender's uuid for the notification.
    pub message_id: String,
    /// When it was sent, as Python's `str(datetime)`.
    pub timestamp: String,
}

/// A received notification, as handed to a handler.
///
/// Listeners make these; to make one elsewhere (to test a handler or a filter), use
/// [`Notification::new`] and the setters: the struct is `#[non_exhaustive]`, so that a
/// field oslo adds is not a breaking change.
///
/// ```
/// use messaging_core::Context;
/// use messaging_core::notify::{Notification, Priority};
/// use serde_json::json;
///
/// let n = Notification::new("compute.host1", "compute.instance.create.end", Priority::Info)
///     .payload(json!({"state": "active"}))
///     .context(Context::new().with("user_name", "bob"));
/// assert_eq!(n.publisher_id, "compute.host1");
/// assert_eq!(n.metadata.message_id.len(), 36);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Notification {
    /// The sender's (sanitised) context.
    pub context: Context,
    /// Who sent it.
    pub publisher_id: String,
    /// What happened.
    pub event_type: String,
    /// Its priority.
    pub priority: Priority,
    /// The event's data.
    pub payload: Value,
    /// Id and time.
    pub metadata: Metadata,
}

impl Notification {
    /// A notification of `event_type` from `publisher_id` at `priority`, as a notifier
    /// sends it: an empty context, a `null` payload, a new message id and the current
    /// time (UTC, as Python's `str(datetime)`).
    pub fn new(
        publisher_id: impl Into<String>,
        event_type: impl Into<String>,
        priority: Priority,
    ) -> Self {
        Notification {
            context: Context::new(),
            publisher_id: publisher_id.into(),
            event_type: event_type.into(),
            priority,
            payload: Value::Null,
            metadata: Metadata {
                message_id: new_message_id(),
                timestamp: utc_now_timestamp(),
            },
        }
    }

    /// Sets the sender's context.
    pub fn context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// Sets the event's data.
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// Sets the message id and the time.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// What a handler decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotificationResult {
    /// Done: acknowledge.
    #[default]
    Handled,
    /// Deliver again later (only with `allow_requeue`; otherwise acknowledged).
    Requeue,
}

/// What a handler may return: a [`NotificationResult`], `()` (handled), or a
/// `Result` of either whose error is logged and requeues the message.
pub trait HandlerOutput: Send {
    /// The verdict; an `Err` is a failed handler.
    fn into_result(self) -> std::result::Result<NotificationResult, String>;
}

impl HandlerOutput for NotificationResult {
    fn into_result(self) -> std::result::Result<NotificationResult, String> {
        Ok(self)
    }
}

impl HandlerOutput for () {
    fn into_result(self) -> std::result::Result<NotificationResult, String> {
        Ok(NotificationResult::Handled)
    }
}

impl<T: HandlerOutput, E: Display + Send> HandlerOutput for std::result::Result<T, E> {
    fn into_result(self) -> std::result::Result<NotificationResult, String> {
        match self {
            Ok(v) => v.into_result(),
            Err(e) => Err(e.to_string()),
        }
    }
}

type Verdict =
    Pin<Box<dyn Future<Output = std::result::Result<NotificationResult, String>> + Send>>;
type Handler = Arc<dyn Fn(Notification) -> Verdict + Send + Sync>;
type BatchHandler = Arc<dyn Fn(Vec<Notification>) -> Verdict + Send + Sync>;

/// Boxes a typed handler into the form endpoints store.
fn erase<A, F, Fut>(handler: F) -> Arc<dyn Fn(A) -> Verdict + Send + Sync>
where
    A: 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutput,
{
    Arc::new(move |arg| {
        let fut = handler(arg);
        Box::pin(async move { fut.await.into_result() })
    })
}

/// Handlers per priority, behind an optional filter. A listener subscribes only to the
/// priorities its endpoints handle.
#[derive(Clone, Default)]
pub struct NotificationEndpoint {
    filter: Option<NotificationFilter>,
    handlers: BTreeMap<Priority, Handler>,
    batch_handlers: BTreeMap<Priority, BatchHandler>,
}

impl NotificationEndpoint {
    /// An endpoint with no handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only notifications passing `filter` reach this endpoint.
    pub fn filter(mut self, filter: NotificationFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Handles one notification of `priority` at a time.
    pub fn on<F, Fut>(mut self, priority: Priority, handler: F) -> Self
    where
        F: Fn(Notification) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerOutput,
    {
        let h: Handler = erase(handler);
        self.handlers.insert(priority, h);
        self
    }

    /// Handles notifications of `priority` in batches (for batch listeners).
    pub fn on_batch<F, Fut>(mut self, priority: Priority, handler: F) -> Self
    where
        F: Fn(Vec<Notification>) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerOutput,
    {
        let h: BatchHandler = erase(handler);
        self.batch_handlers.insert(priority, h);
        self
    }

    fn accepts(&self, n: &Notification) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(n))
    }

    fn is_empty(&self) -> bool {
        self.handlers.is_empty() && self.batch_handlers.is_empty()
    }
}

/// Builds a [`NotificationListener`].
pub struct NotificationListenerBuilder {
    transport: Transport,
    targets: Vec<Target>,
    implicit: NotificationEndpoint,
    endpoints: Vec<NotificationEndpoint>,
    pool: Option<String>,
    allow_requeue: bool,
    batch: Option<(usize, Option<Duration>)>,
    max_concurrency: usize,
    serializer: Arc<dyn Serializer>,
}

impl NotificationListenerBuilder {
    /// Adds an endpoint; endpoints see each notification in the order added.
    pub fn endpoint(mut self, endpoint: NotificationEndpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Adds a handler to the listener's own endpoint (which comes first).
    pub fn on<F, Fut>(mut self, priority: Priority, handler: F) -> Self
    where
        F: Fn(Notification) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerOutput,
    {
        self.implicit = self.implicit.on(priority, handler);
        self
    }

    /// Adds a batch handler to the listener's own endpoint.
    pub fn on_batch<F, Fut>(mut self, priority: Priority, handler: F) -> Self
    where
        F: Fn(Vec<Notification>) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerOutput,
    {
        self.implicit = self.implicit.on_batch(priority, handler);
        self
    }

    /// Filters what the listener's own endpoint sees.
    pub fn filter(mut self, filter: NotificationFilter) -> Self {
        self.implicit = self.implicit.filter(filter);
        self
    }

    /// Joins a pool: every pool gets its own copy of each notification, shared among
    /// the pool's listeners.
    pub fn pool(mut self, pool: impl Into<String>) -> Self {
        self.pool = Some(pool.into());
        self
    }

    /// Honour [`NotificationResult::Requeue`] and handler failures by requeueing
    /// (otherwise the message is acknowledged).
    pub fn allow_requeue(mut self, allow: bool) -> Self {
        self.allow_requeue = allow;
        self
    }

    /// Batch mode: handlers registered with `on_batch` get up to `size` notifications,
    /// or fewer once `timeout` has passed since the first of them (`None`: wait for `size`).
    pub fn batch(mut self, size: usize, timeout: Option<Duration>) -> Self {
        self.batch = Some((size.max(1), timeout));
        self
    }

    /// How many notifications (or batches) are handled at once; 1 (in order) by default.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// The serializer of payloads and context.
    pub fn serializer(mut self, serializer: Arc<dyn Serializer>) -> Self {
        self.serializer = serializer;
        self
    }

    /// Checks targets, filters, handlers and the driver's capabilities.
    pub fn build(self) -> Result<NotificationListener> {
        if self.targets.is_empty() {
            return Err(Error::Config(
                "a notification listener needs at least one target".into(),
            ));
        }
        for t in &self.targets {
            if t.topic.as_deref().is_none_or(str::is_empty) {
                return Err(Error::invalid_target(
                    "a notification target needs a topic",
                    t,
                ));
            }
        }
        self.transport.require(|c| c.notify, "notifications")?;
        if self.pool.is_some() {
            self.transport.require(|c| c.pools, "listener pools")?;
        }
        if self.allow_requeue {
            self.transport.require(|c| c.requeue, "requeue")?;
        }
        let mut endpoints = Vec::new();
        if !self.implicit.is_empty() || self.implicit.filter.is_some() {
            endpoints.push(self.implicit);
        }
        endpoints.extend(self.endpoints);
        let batch = self.batch.is_some();
        let mut priorities = Vec::new();
        for ep in &endpoints {
            if let Some(f) = &ep.filter {
                f.validate()?;
            }
            if batch && !ep.handlers.is_empty() {
                return Err(Error::Config(
                    "a batch listener takes batch handlers (on_batch), not on".into(),
                ));
            }
            if !batch && !ep.batch_handlers.is_empty() {
                return Err(Error::Config(
                    "batch handlers (on_batch) need a batch listener (batch)".into(),
                ));
            }
            priorities.extend(ep.handlers.keys().chain(ep.batch_handlers.keys()).copied());
        }
        priorities.sort_unstable();
        priorities.dedup();
        if priorities.is_empty() {
            return Err(Error::Config(
                "the listener has no handler for any priority".into(),
            ));
        }
        Ok(NotificationListener {
            shared: Arc::new(Shared {
                transport: self.transport,
                targets: self.targets,
                endpoints,
                priorities,
                pool: self.pool,
                allow_requeue: self.allow_requeue,
                batch: self.batch,
                max_concurrency: self.max_concurrency,
                serializer: self.serializer,
            }),
            lifecycle: Lifecycle::new(),
        })
    }

    /// Builds and starts the listener.
    pub async fn start(self) -> Result<NotificationListener> {
        let listener = self.build()?;
        listener.start().await?;
        Ok(listener)
    }
}

struct Shared {
    transport: Transport,
    targets: Vec<Target>,
    endpoints: Vec<NotificationEndpoint>,
    priorities: Vec<Priority>,
    pool: Option<String>,
    allow_requeue: bool,
    batch: Option<(usize, Option<Duration>)>,
    max_concurrency: usize,
    serializer: Arc<dyn Serializer>,
}

/// Consumes notifications. `start`, then `stop` and `wait`; restartable.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use messaging_core::notify::{Notification, NotificationListener, NotificationResult, Notifier, Priority};
/// use messaging_core::{Config, Context, DriverRegistry, Target};
/// let transport = DriverRegistry::with_memory().transport("memory:///doc", &Config::default()).await.unwrap();
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let listener = NotificationListener::new(&transport, [Target::topic("notifications")])
///     .on(Priority::Info, move |n: Notification| {
///         let tx = tx.clone();
///         async move { tx.send(n.event_type).unwrap(); NotificationResult::Handled }
///     })
///     .start().await.unwrap();
/// Notifier::new(&transport, "doc").info(&Context::new(), "thing.happened", serde_json::json!({})).await;
/// assert_eq!(rx.recv().await.unwrap(), "thing.happened");
/// listener.stop().await;
/// listener.wait().await.unwrap();
/// # });
/// ```
pub struct NotificationListener {
    shared: Arc<Shared>,
    lifecycle: Lifecycle,
}

impl NotificationListener {
    /// A builder for a listener on `targets` (each needs a topic).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        transport: &Transport,
        targets: impl IntoIterator<Item = Target>,
    ) -> NotificationListenerBuilder {
        NotificationListenerBuilder {
            transport: transport.clone(),
            targets: targets.into_iter().collect(),
            implicit: NotificationEndpoint::new(),
            endpoints: Vec::new(),
            pool: None,
            allow_requeue: false,
            batch: None,
            max_concurrency: 1,
            serializer: Arc::new(NoOpSerializer),
        }
    }

    /// The priorities subscribed to (those some endpoint handles).
    pub fn priorities(&self) -> &[Priority] {
        &self.shared.priorities
    }

    /// Starts consuming; a second start while running is ignored with a warning.
    pub async fn start(&self) -> Result<()> {
        let Some(claim) = self.lifecycle.begin_start("notification listener").await else {
            return Ok(());
        };
        let s = &self.shared;
        let pairs: Vec<(Target, Priority)> = s
            .targets
            .iter()
            .flat_map(|t| s.priorities.iter().map(move |p| (t.clone(), *p)))
            .collect();
        let listener = s
            .transport
            .driver()
            .listen_for_notifications(&pairs, s.pool.as_deref())
            .await
            .map_err(|e| {
                e.listen_failure_on(|| {
                    s.targets
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            })?;
        let shared = self.shared.clone();
        match s.batch {
            None => claim.run(listener, s.max_concurrency, None, move |incoming| {
                let shared = shared.clone();
                async move { dispatch_one(&shared, incoming).await }
            }),
            Some((size, timeout)) => {
                let batching: Box<dyn Listener<Vec<IncomingNotification>>> = Box::new(Batching {
                    inner: listener,
                    size,
                    timeout,
                    pending: Vec::new(),
                    deadline: None,
                });
                claim.run(batching, s.max_concurrency, None, move |batch| {
                    let shared = shared.clone();
                    async move { dispatch_batch(&shared, batch).await }
                })
            }
        }
        Ok(())
    }

    /// Stops taking new notifications; those already received are still handled.
    ///
    /// Stopping cannot fail (as [`RpcServer::stop`](crate::rpc::RpcServer::stop)): it
    /// only tells the listener to take nothing more. What goes wrong while it drains is
    /// reported by [`wait`](Self::wait).
    pub async fn stop(&self) {
        self.lifecycle.stop();
    }

    /// Waits for a stopped listener to finish what it holds.
    pub async fn wait(&self) -> Result<()> {
        self.lifecycle.wait(None).await
    }

    /// [`wait`](Self::wait) with a limit.
    pub async fn wait_timeout(&self, limit: Duration) -> Result<()> {
        self.lifecycle.wait(Some(limit)).await
    }
}

/// Turns a wire message into what handlers see; `None` (logged) for an unknown priority.
fn to_notification(shared: &Shared, message: &NotificationMessage) -> Option<Notification> {
    let Ok(priority) = message.priority.parse::<Priority>() else {
        tracing::warn!(priority = %message.priority, "unknown notification priority; acknowledged");
        return None;
    };
    let context = match shared
        .serializer
        .deserialize_context(message.context.clone())
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "could not deserialize the notification context; acknowledged");
            return None;
        }
    };
    let payload = match shared
        .serializer
        .deserialize_entity(&context, message.payload.clone())
    {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "could not deserialize the notification payload; acknowledged");
            return None;
        }
    };
    Some(Notification {
        context,
        publisher_id: message.publisher_id.clone(),
        event_type: message.event_type.clone(),
        priority,
        payload,
        metadata: Metadata {
            message_id: message.message_id.clone(),
            timestamp: message.timestamp.clone(),
        },
    })
}

/// Calls a handler inside a future, so that a panic while creating its future is
/// caught like one while running it.
fn call_handler<A: Send + 'static>(
    handler: &Arc<dyn Fn(A) -> Verdict + Send + Sync>,
    arg: A,
) -> Verdict {
    let handler = handler.clone();
    Box::pin(async move { handler(arg).await })
}

/// Runs a handler; a panic counts as a failure (requeue), never as a lost message.
async fn run_handler(verdict: Verdict) -> std::result::Result<NotificationResult, String> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(verdict)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            Err(format!(
                "handler panicked: {}",
                crate::service::panic_message(&panic)
            ))
        })
}

fn verdict(
    outcome: std::result::Result<NotificationResult, String>,
    event_type: &str,
) -> NotificationResult {
    outcome.unwrap_or_else(|e| {
        tracing::error!(event_type, error = %e, "notification handler failed");
        NotificationResult::Requeue
    })
}

async fn settle(shared: &Shared, incoming: IncomingNotification, result: NotificationResult) {
    let disposition = if result == NotificationResult::Requeue && shared.allow_requeue {
        Disposition::Requeue
    } else {
        Disposition::Ack
    };
    let labels = [
        ("priority", incoming.message.priority.to_lowercase()),
        (
            "result",
            match disposition {
                Disposition::Requeue => "requeued",
                _ => "handled",
            }
            .to_string(),
        ),
    ];
    metrics::counter!(catalog::NOTIFICATIONS_HANDLED, &labels).increment(1);
    if let Err(e) = incoming.settle.settle(disposition).await {
        tracing::warn!(error = %e, ?disposition, "could not settle notification");
    }
}

async fn dispatch_one(shared: &Shared, incoming: IncomingNotification) {
    let message = &incoming.message;
    let trace = TraceContext::from_map(message.context.as_map());
    let span = tracing::info_span!(
        "notification.receive",
        otel.name = format!("{} receive", message.event_type),
        otel.kind = "consumer",
        messaging.system = telemetry::messaging_system(shared.transport.driver().name()),
        messaging.operation = "receive",
        messaging.message.id = %message.message_id,
        openstack.request_id = telemetry::request_id(message.context.as_map()),
        trace_id = trace.as_ref().map(TraceContext::trace_id),
        event_type = %message.event_type,
    );
    telemetry::adopt_parent(&span, trace.as_ref());
    let work = async {
        let mut result = NotificationResult::Handled;
        if let Some(n) = to_notification(shared, &incoming.message) {
            for ep in &shared.endpoints {
                let Some(handler) = ep.handlers.get(&n.priority) else {
                    continue;
                };
                if !ep.accepts(&n) {
                    continue;
                }
                result = verdict(
                    run_handler(call_handler(handler, n.clone())).await,
                    &n.event_type,
                );
                if result == NotificationResult::Requeue {
                    break;
                }
            }
        }
        settle(shared, incoming, result).await;
    };
    trace_context::scoped(trace, work).instrument(span).await
}

async fn dispatch_batch(shared: &Shared, batch: Vec<IncomingNotification>) {
    let span = tracing::debug_span!("notify.dispatch_batch", size = batch.len());
    async {
        // Group by priority, keeping arrival order within each group.
        let mut groups: BTreeMap<Priority, Vec<(IncomingNotification, Notification)>> =
            BTreeMap::new();
        for incoming in batch {
            match to_notification(shared, &incoming.message) {
                Some(n) => groups.entry(n.priority).or_default().push((incoming, n)),
                None => settle(shared, incoming, NotificationResult::Handled).await,
            }
        }
        for (priority, members) in groups {
            let mut result = NotificationResult::Handled;
            for ep in &shared.endpoints {
                let Some(handler) = ep.batch_handlers.get(&priority) else {
                    continue;
                };
                let accepted: Vec<Notification> = members
                    .iter()
                    .filter(|(_, n)| ep.accepts(n))
                    .map(|(_, n)| n.clone())
                    .collect();
                if accepted.is_empty() {
                    continue;
                }
                result = verdict(
                    run_handler(call_handler(handler, accepted)).await,
                    priority.as_str(),
                );
                if result == NotificationResult::Requeue {
                    break;
                }
            }
            for (incoming, _) in members {
                settle(shared, incoming, result).await;
            }
        }
    }
    .instrument(span)
    .await
}

/// Groups a listener's notifications into batches of up to `size`, closing a batch
/// early once `timeout` has passed since its first notification. Cancel-safe: a batch
/// being gathered is kept until the next call returns it.
struct Batching {
    inner: Box<DriverListener>,
    size: usize,
    timeout: Option<Duration>,
    pending: Vec<IncomingNotification>,
    deadline: Option<tokio::time::Instant>,
}

#[async_trait]
impl Listener<Vec<IncomingNotification>> for Batching {
    async fn next(&mut self) -> Option<Vec<IncomingNotification>> {
        if self.pending.is_empty() {
            let first = self.inner.next().await?;
            self.pending.push(first);
            self.deadline = self.timeout.map(crate::driver::deadline_after);
        }
        while self.pending.len() < self.size {
            let next = match self.deadline {
                Some(d) => match tokio::time::timeout_at(d, self.inner.next()).await {
                    Ok(n) => n,
                    Err(_) => break,
                },
                None => self.inner.next().await,
            };
            match next {
                Some(n) => self.pending.push(n),
                None => break,
            }
        }
        Some(std::mem::take(&mut self.pending))
    }

    async fn stop(&mut self) {
        self.inner.stop().await
    }

    async fn cleanup(&mut self) {
        self.inner.cleanup().await
    }
}
